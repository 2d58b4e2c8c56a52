// liveblog replay: every event of a blog, and the blog exactly as readers saw it right after
// any of them. Editors only (the API checks who is signed in); signing in posts the token
// once to /api/session, which keeps it in an HttpOnly cookie, as in the newsroom console.
(function () {
  "use strict";
  var root = document.getElementById("replay");
  var slug = root.dataset.slug;
  var rows = [];          // the timeline, oldest first
  var current = -1;       // index of the moment shown
  var playing = null;     // timer while playing
  var frameRequest = 0;   // frames can arrive out of order; only the latest is shown

  var scrubber = document.getElementById("scrubber");
  var moment = document.getElementById("moment");
  var frame = document.getElementById("frame");
  var playButton = document.getElementById("play");
  var list = document.getElementById("timeline");

  function failed(r) {
    return r.json().then(function (p) { var e = new Error(p.detail || r.statusText); e.status = r.status; throw e; });
  }
  function get(path) {
    return fetch(path, { credentials: "same-origin" }).then(function (r) { return r.ok ? r : failed(r); });
  }
  function clock(iso) { return iso.slice(0, 19).replace("T", " ") + " UTC"; }

  // -- signing in -----------------------------------------------------------------------------
  var signin = document.getElementById("signin");
  var signinError = signin.querySelector(".error");
  sessionStorage.removeItem("liveblog-token"); // where tokens were kept before the cookie
  signin.addEventListener("submit", function (event) {
    event.preventDefault();
    var field = document.getElementById("token");
    fetch("/api/session", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: field.value.trim() })
    }).then(function (r) { return r.ok ? r : failed(r); }).then(function () {
      field.value = "";
      signinError.textContent = "";
      start();
    }, function (error) { signinError.textContent = error.message; });
  });
  function start() {
    get("/api/session").then(function (r) { return r.json(); }).then(function (who) {
      if (!who.signed_in) { signin.hidden = false; return; }
      return get("/api/blogs/" + slug + "/timeline").then(function (r) { return r.json(); }).then(show);
    }).catch(function (error) {
      signin.hidden = false;
      signinError.textContent = error.message; // e.g. a reporter: only editors may replay
    });
  }
  function show(data) {
    rows = data.events;
    signin.hidden = true;
    document.getElementById("player").hidden = false;
    scrubber.max = String(rows.length);
    build();
    var wanted = new URLSearchParams(location.search).get("at");
    var index = rows.findIndex(function (row) { return row.id === wanted || String(row.version) === wanted; });
    select(index >= 0 ? index : rows.length - 1);
  }

  // -- the timeline ---------------------------------------------------------------------------
  function option(select, value) {
    if ([].some.call(select.options, function (o) { return o.value === value; })) return;
    var o = document.createElement("option"); o.value = o.textContent = value; select.appendChild(o);
  }
  // Who did it: the byline they had then, and their token's name and role.
  function who(row) {
    var byline = row.actor_name && row.actor_name !== row.actor ? row.actor_name + ", " : "";
    return byline + row.actor + " (" + row.role + ")";
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
    return get("/blogs/" + slug + "/replay/frame?at=" + encodeURIComponent(row.id))
      .then(function (r) { return r.text(); })
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
    get("/api/blogs/" + slug + "/entries/" + entryId + "/history").then(function (r) { return r.json(); }).then(function (h) {
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

  start();
})();
