// liveblog replay: every event of a blog, and the blog exactly as readers saw it right after
// any of them. Editors only (the API checks who is signed in); signing in, the API call and
// its errors are the console's shared module (static/console/api.js).
import { api, fetchText, signIn } from "/static/console/api.js";

const root = document.getElementById("replay");
const slug = root.dataset.slug;
let rows = [];          // the timeline, oldest first
let current = -1;       // index of the moment shown
let playing = null;     // timer while playing
let frameRequest = 0;   // frames can arrive out of order; only the latest is shown

const scrubber = document.getElementById("scrubber");
const moment = document.getElementById("moment");
const frame = document.getElementById("frame");
const playButton = document.getElementById("play");
const list = document.getElementById("timeline");

// Who did it: the byline they had then, and their token's name and role.
function who(row) {
  const byline = row.actor_name && row.actor_name !== row.actor ? row.actor_name + ", " : "";
  return byline + row.actor + " (" + row.role + ")";
}
function clock(iso) { return iso.slice(0, 19).replace("T", " ") + " UTC"; }

// -- signing in -------------------------------------------------------------------------------
// A reporter gets the API's 403 ("only editors ...") next to the sign-in form.
signIn(document.getElementById("signin"), () =>
  api("GET", "/api/blogs/" + slug + "/timeline").then(show));

function show(data) {
  rows = data.events;
  document.getElementById("player").hidden = false;
  scrubber.max = String(rows.length);
  build();
  const wanted = new URLSearchParams(location.search).get("at");
  const index = rows.findIndex((row) => row.id === wanted || String(row.version) === wanted);
  select(index >= 0 ? index : rows.length - 1);
}

// -- the timeline ---------------------------------------------------------------------------
function option(select, value) {
  if ([].some.call(select.options, function (o) { return o.value === value; })) return;
  var o = document.createElement("option"); o.value = o.textContent = value; select.appendChild(o);
}
function build() {
  list.textContent = "";
  var kinds = document.getElementById("filter-kind"), actors = document.getElementById("filter-actor");
  rows.forEach(function (row, index) {
    option(kinds, row.type); option(actors, row.actor);
    var li = document.createElement("li");
    li.dataset.type = row.type; li.dataset.actor = row.actor; li.id = "event-" + row.id;
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = clock(row.at) + " · v" + row.version + " · " + who(row) + " · " + row.type + ": " + row.summary;
    b.addEventListener("click", function () { stop(); select(index); });
    li.appendChild(b);
    if (row.entry_id) {
      var h = document.createElement("button");
      h.type = "button"; h.className = "history-link"; h.textContent = "↳ every version of this entry";
      h.addEventListener("click", function () { showHistory(row.entry_id); });
      li.appendChild(h);
    }
    list.appendChild(li);
  });
  [kinds, actors].forEach(function (s) { s.addEventListener("change", filter); });
}
function filter() {
  var kind = document.getElementById("filter-kind").value, actor = document.getElementById("filter-actor").value;
  list.querySelectorAll("li").forEach(function (li) {
    li.hidden = (kind && li.dataset.type !== kind) || (actor && li.dataset.actor !== actor);
  });
}

// -- one moment -----------------------------------------------------------------------------
function select(index) {
  current = index;
  var row = rows[index];
  scrubber.value = String(index + 1);
  moment.textContent = "v" + row.version + " · " + clock(row.at) + " · " + who(row) + ": " + row.summary;
  list.querySelectorAll("li.current").forEach(function (li) { li.classList.remove("current"); });
  var li = document.getElementById("event-" + row.id);
  li.classList.add("current");
  // Scroll the timeline, not the window: scrollIntoView would scroll every scrollable
  // ancestor, the page included, and push the title out of view on load.
  if (li.offsetTop < list.scrollTop) list.scrollTop = li.offsetTop;
  else if (li.offsetTop + li.offsetHeight > list.scrollTop + list.clientHeight)
    list.scrollTop = li.offsetTop + li.offsetHeight - list.clientHeight;
  var link = location.pathname + "?at=" + encodeURIComponent(row.id);
  document.getElementById("permalink").href = link;
  history.replaceState(null, "", link);
  var ticket = ++frameRequest;
  return fetchText("/blogs/" + slug + "/replay/frame?at=" + encodeURIComponent(row.id))
    .then(function (html) {
      if (ticket !== frameRequest) return;
      frame.dataset.eventId = row.id;
      frame.srcdoc = html;
    });
}
var scrubTimer = null;
scrubber.addEventListener("input", function () {
  stop();
  window.clearTimeout(scrubTimer);
  var index = Number(scrubber.value) - 1;
  scrubTimer = window.setTimeout(function () { select(index); }, 80);
});

// "What did the page say at 14:32?": the last event at or before that time.
document.getElementById("goto").addEventListener("change", function () {
  if (!this.value) return;
  var when = new Date(this.value + "Z").getTime();
  var index = -1;
  rows.forEach(function (row, n) { if (new Date(row.at).getTime() <= when) index = n; });
  stop();
  select(Math.max(index, 0));
});

// -- playing --------------------------------------------------------------------------------
function stop() {
  window.clearTimeout(playing); playing = null;
  playButton.textContent = "Play";
}
function step() {
  if (current >= rows.length - 1) { stop(); return; }
  var speed = Number(document.getElementById("speed").value);
  var gap = new Date(rows[current + 1].at) - new Date(rows[current].at);
  var wait = speed > 0 ? Math.max(0, gap / speed) : 0;
  playing = window.setTimeout(function () {
    select(current + 1).then(function () { if (playing !== null) step(); });
  }, wait);
}
playButton.addEventListener("click", function () {
  if (playing !== null) { stop(); return; }
  if (current >= rows.length - 1) select(0);
  playButton.textContent = "Pause";
  playing = 0;
  step();
});

// -- an entry's versions ----------------------------------------------------------------------
function showHistory(entryId) {
  api("GET", "/api/blogs/" + slug + "/entries/" + entryId + "/history").then(function (h) {
    var box = document.getElementById("history");
    box.textContent = "";
    var title = document.createElement("h3");
    title.textContent = "Every version of " + entryId + " (by " + (h.author_name || h.author) + ")";
    box.appendChild(title);
    h.revisions.forEach(function (rev) {
      var div = document.createElement("div");
      div.className = "revision"; div.id = "revision-" + rev.revision;
      var meta = document.createElement("p");
      meta.className = "meta";
      meta.textContent = "Revision " + rev.revision + " · " + clock(rev.at) + " · " + rev.actor +
        (rev.note ? " · note: " + rev.note : "");
      div.appendChild(meta);
      var text = document.createElement("p");
      if (rev.diff.length) {
        rev.diff.forEach(function (op) {
          var span = document.createElement(op[0] === "insert" ? "ins" : op[0] === "delete" ? "del" : "span");
          span.textContent = op[1];
          text.appendChild(span);
        });
      } else text.textContent = rev.body;
      div.appendChild(text);
      box.appendChild(div);
    });
    if (h.retracted) {
      var gone = document.createElement("p");
      gone.className = "error retraction";
      gone.textContent = "Retracted " + clock(h.retracted.at) + " by " + h.retracted.actor +
        (h.retracted.reason ? ": " + h.retracted.reason : "");
      box.appendChild(gone);
    }
    box.hidden = false;
  });
}

