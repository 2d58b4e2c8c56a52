// liveblog newsroom console (issue 10): compose on one side with the preview readers will
// see, the blog's live timeline on the other, the queue of unpublished updates above it,
// and figures, headline, people and the reader page one click away. The session, the API
// call and its errors are the module it shares with the replay (static/console/api.js).
//
// A console newer than its server hides what the server cannot do yet (the queue, drafts and
// schedules, presence, people): it reads what exists from the server's OpenAPI document.
import {
  api, farewell, features, isoWithOffset, localInput, localTime, showError, signIn, signOut, values,
} from "/static/console/api.js";

const root = document.getElementById("newsroom");
const slug = root.dataset.slug;
const blogPath = "/api/blogs/" + encodeURIComponent(slug);
const $ = (id) => document.getElementById(id);
let me = null;        // {name, role, display_name?}
let can = null;       // what the server can do (features())
let blog = null;      // the blog as last read
let locks = {};       // entry id -> who holds its edit lock (presence)
let editing = null;   // the id of the entry whose edit form is open here

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}
function button(text, onclick, className) {
  const b = el("button", className, text);
  b.type = "button";
  b.addEventListener("click", onclick);
  return b;
}
const isEditor = () => me.role === "editor";
const mine = (e) => e.author === me.name || (me.id !== undefined && e.author_id === me.id);
const byline = (e) => e.author_name || e.author;
// An image URL a thumbnail may load: http(s), or a path on this site (as the server checks).
const showable = (url) => /^https?:\/\//i.test(url || "") || /^\/(?![/\\])/.test(url || "");

// -- signing in -------------------------------------------------------------------------------
signIn($("signin"), async (who) => {
  me = who;
  can = await features();
  $("me-name").textContent = who.display_name || who.name;
  $("me-role").textContent = who.role;
  $("whoami").hidden = false;
  $("desk").hidden = false;
  const needs = {
    publish: () => can.takes("POST", "/api/blogs/{slug}/entries").includes("publish"),
    people: () => can.has("GET", "/api/people") && isEditor(),
  };
  // Hidden from those who may not use them (a folded tool panel stays folded for editors).
  if (!isEditor()) document.querySelectorAll(".editor-only").forEach((node) => { node.hidden = true; });
  document.querySelectorAll("[data-needs]").forEach((node) => {
    node.hidden = !needs[node.dataset.needs]();
  });
  if (slug) openBlog(); else listBlogs();
});
$("signout").addEventListener("click", signOut);

// -- the list of blogs ------------------------------------------------------------------------
async function listBlogs() {
  const data = await api("GET", "/api/blogs?limit=100");
  const list = $("blog-list");
  list.textContent = "";
  for (const b of data.blogs) {
    const li = el("li");
    const a = el("a", "", b.title);
    a.href = "/newsroom/" + b.slug;
    li.append(a, " (" + b.status + ", version " + b.version + ")");
    list.append(li);
  }
}
const create = $("create-blog");
if (create) create.addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const b = await api("POST", "/api/blogs", values(create));
    location.href = "/newsroom/" + b.slug;
  } catch (error) { showError(create, error); }
});

// -- one blog ---------------------------------------------------------------------------------
function openBlog() {
  refresh();
  // Every change the stream tells of, whatever its kind (the server lists them), re-reads.
  const source = new EventSource("/blogs/" + encodeURIComponent(slug) + "/stream");
  for (const kind of root.dataset.streamKinds.split(" ")) source.addEventListener(kind, refresh);
  audience();
  setInterval(audience, 5000);
  if (can.has("GET", "/api/blogs/{slug}/queue")) {
    $("queue-panel").hidden = false;
    refreshQueue();
    // Unpublished updates are not on the readers' stream: ask while the console is seen.
    setInterval(() => { if (!document.hidden) refreshQueue(); }, 5000);
  }
  if (can.has("POST", "/api/blogs/{slug}/presence")) startPresence();
  tools();
  composer();
}

// Reads the blog again; calls made while one is under way make one more read after it.
let reading = null, again = false;
function refresh() {
  if (reading) { again = true; return reading; }
  reading = api("GET", blogPath + "?limit=100").then(show, () => {}).finally(() => {
    reading = null;
    if (again) { again = false; refresh(); }
  });
  return reading;
}
function changed() { refresh(); if (!$("queue-panel").hidden) refreshQueue(); }

function show(b) {
  blog = b;
  $("blog-title").textContent = b.title;
  const status = $("blog-status");
  status.textContent = b.status === "live" ? "Live" : "Ended";
  status.className = "badge" + (b.status === "live" ? " live" : "");
  $("toggle-status").textContent = b.status === "live" ? "End the blog" : "Reopen the blog";
  const headline = document.querySelector('#blog-form [name="title"]');
  headline.placeholder = b.title;
  render($("desk-entries"), b.entries, (e) => deskEntry(e, "desk-"));
  $("timeline-empty").hidden = b.entries.length > 0;
  showFacts(b.facts || []);
}

// Replaces a list's rows, keeping any row whose edit form is open (and what was typed).
function render(list, items, make) {
  const open = {};
  list.querySelectorAll("li.editing").forEach((li) => { open[li.id] = li; });
  list.textContent = "";
  for (const item of items) {
    const li = make(item);
    list.append(open[li.id] || li);
  }
  markLocks();
}

function deskEntry(e, prefix) {
  const li = el("li", "desk-entry");
  li.id = prefix + e.id;
  li.dataset.id = e.id;
  const state = e.state || "published";
  const head = el("p", "entry-meta");
  const when = state === "scheduled" && e.publish_at ? e.publish_at : e.posted_at || e.created_at;
  if (when) {
    const time = el("time", "", (state === "scheduled" ? "for " : "") + localTime(when));
    time.dateTime = when;
    head.append(time);
  }
  head.append(el("span", "author", byline(e)));
  head.append(el("span", "badge state-" + state, state));
  if (e.key_event) head.append(el("span", "badge key-badge", "Key event"));
  if (blog && blog.pinned_entry_id === e.id) head.append(el("span", "badge pinned-badge", "Pinned"));
  if (e.revision > 1) head.append(el("span", "meta", "edited"));
  head.append(el("span", "lock"));
  li.append(head);
  if (e.image && showable(e.image.url)) {
    const img = el("img", "thumb");
    img.src = e.image.url; img.alt = e.image.alt || ""; img.loading = "lazy";
    li.append(img);
  }
  if (e.title) li.append(el("h3", "entry-title", e.title));
  const body = el("div", "body");
  body.innerHTML = e.html || ""; // sanitised by the server's renderer
  if (!e.html) body.textContent = e.body;
  li.append(body);
  if (state === "rejected" && e.reason) li.append(el("p", "meta", "Rejected: " + e.reason));
  const actions = el("div", "actions");
  const errors = el("p", "error");
  errors.setAttribute("role", "alert");
  const fail = (error) => { errors.textContent = error.message; };
  if (state === "published") publishedActions(e, li, actions, fail);
  else queueActions(e, actions, fail);
  li.append(actions, errors);
  return li;
}

function publishedActions(e, li, actions, fail) {
  if (isEditor() || mine(e)) {
    actions.append(button("Edit", () => editForm(li, e)));
    actions.append(button("Correction", () => editForm(li, e, "correction")));
    actions.append(button("Retract", () => {
      const reason = prompt("Why is this update retracted? (kept in the log)");
      if (reason === null) return;
      api("DELETE", blogPath + "/entries/" + e.id, { reason }).then(changed, fail);
    }));
  }
  if (isEditor()) {
    const pinned = blog.pinned_entry_id === e.id;
    actions.append(button(pinned ? "Unpin" : "Pin", () => {
      api("PUT", blogPath + "/pinned", { entry_id: pinned ? null : e.id }).then(refresh, fail);
    }));
  }
  const share = el("a", "share-link", "Share link");
  share.href = "/blogs/" + encodeURIComponent(slug) + "/entries/" + e.id;
  share.target = "_blank";
  actions.append(share);
}

// -- the queue: drafts, submissions, scheduled updates ------------------------------------------
function refreshQueue() {
  return api("GET", blogPath + "/queue").then((data) => {
    const items = Array.isArray(data) ? data : data.entries || data.queue || [];
    render($("queue"), items, (e) => deskEntry(e, "queue-"));
    $("queue-count").textContent = items.length ? "(" + items.length + ")" : "";
    $("queue-empty").hidden = items.length > 0;
  }, () => {});
}

function queueActions(e, actions, fail) {
  const path = blogPath + "/entries/" + e.id;
  const done = () => changed();
  if (isEditor() || (me.role === "reporter" && mine(e) && e.state === "draft")) {
    actions.append(button("Publish", () => api("POST", path + "/publish", {}).then(done, fail), "primary"));
  }
  if (isEditor() && e.state !== "rejected") {
    actions.append(button("Reject", () => {
      const reason = prompt("Why is this update rejected? (its author sees it)");
      if (reason === null) return;
      api("POST", path + "/reject", { reason }).then(done, fail);
    }));
  }
  if (isEditor() || (me.role !== "contributor" && mine(e))) {
    const form = el("form", "reschedule");
    const at = el("input");
    at.type = "datetime-local"; at.required = true; at.step = "1";
    at.setAttribute("aria-label", "Publish at (your time)");
    if (e.publish_at) at.value = localInput(e.publish_at);
    const go = el("button", "", e.state === "scheduled" ? "Reschedule" : "Schedule");
    go.type = "submit";
    form.append(at, go);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      api("POST", path + "/publish", { publish_at: isoWithOffset(at.value) }).then(done, fail);
    });
    actions.append(form);
  }
}

// -- editing ----------------------------------------------------------------------------------
function editForm(li, e, focus) {
  let form = li.querySelector("form.edit");
  if (!form) {
    form = el("form", "edit");
    form.innerHTML = '<label>Text <textarea name="body" rows="4"></textarea></label>' +
      '<label>What was corrected (for the newsroom) <input name="note"></label>' +
      '<label>Correction (shown to readers) <input name="correction" maxlength="1000"></label>' +
      '<button type="submit" class="primary">Save</button>' +
      '<p class="error" role="alert"></p><div class="conflict-box"></div>';
    form.querySelector("textarea").value = e.body;
    form.append(button("Cancel", () => closeEdit(li)));
    li.classList.add("editing");
    li.append(form);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      save(form, e, e.revision, false);
    });
    editing = e.id;
    beat(); // take the soft lock now, not at the next heartbeat
  }
  form.querySelector(focus === "correction" ? '[name="correction"]' : "textarea").focus();
}
function closeEdit(li) {
  li.classList.remove("editing");
  const form = li.querySelector("form.edit");
  if (form) form.remove();
  if (editing === li.dataset.id) { editing = null; beat(); }
  changed();
}

async function save(form, e, revision, override) {
  const data = values(form);
  const headers = { "If-Match": '"' + revision + '"' };
  if (override) headers["Liveblog-Override-Lock"] = "true";
  try {
    await api("PATCH", blogPath + "/entries/" + e.id, data, headers);
  } catch (error) {
    if (error.status === 409 && error.code === "entry-locked") {
      const holder = (error.problem.holder && error.problem.holder.name) || locks[e.id] || "Someone";
      if (confirm(holder + " is editing this update — save anyway?")) save(form, e, revision, true);
      else showError(form, error);
      return;
    }
    if (error.status === 412) { conflict(form, e, data); return; }
    showError(form, error);
    return;
  }
  closeEdit(form.parentNode);
}

// Someone changed it meanwhile: show both versions instead of overwriting.
async function conflict(form, e, data) {
  const b = await api("GET", blogPath + "?limit=100");
  const theirs = b.entries.filter((x) => x.id === e.id)[0];
  if (!theirs) { showError(form, new Error("This update was retracted meanwhile.")); return; }
  const box = form.querySelector(".conflict-box");
  box.className = "conflict-box conflict";
  box.textContent = "";
  for (const [title, text] of [["Theirs (revision " + theirs.revision + ")", theirs.body], ["Yours", data.body || ""]]) {
    const col = el("div");
    col.append(el("strong", "", title), el("p", "", text));
    box.append(col);
  }
  box.append(button("Save mine over theirs", () => save(form, e, theirs.revision, false)));
  box.append(button("Keep theirs", () => closeEdit(form.parentNode)));
  showError(form, new Error("Someone changed this update while you were editing it."));
}

// -- presence: who is on the blog, who is editing what (never written to the log) -----------------
function startPresence() {
  $("presence").hidden = false;
  beat();
  setInterval(beat, 10000);
  addEventListener("pagehide", () => {
    farewell("DELETE", blogPath + "/presence");
  });
}
function beat() {
  if (!can || !can.has("POST", "/api/blogs/{slug}/presence")) return;
  api("POST", blogPath + "/presence", { editing }).then((p) => {
    const list = $("presence-list");
    list.textContent = "";
    for (const person of p.people || []) {
      const name = person.display_name || person.name;
      list.append(el("span", "presence-person", name + (person.editing ? " ✎" : "")));
    }
    locks = {};
    for (const lock of p.locks || []) {
      if (lock.holder && lock.holder.name !== me.name) locks[lock.entry_id] = lock.holder.display_name || lock.holder.name;
    }
    markLocks();
  }, () => {});
}
function markLocks() {
  document.querySelectorAll(".desk-entry").forEach((li) => {
    const note = li.querySelector(".lock");
    if (note) note.textContent = locks[li.dataset.id] ? locks[li.dataset.id] + " is editing" : "";
  });
}

// -- audience ---------------------------------------------------------------------------------
// Readers with the blog open now, on every server, and how fast updates reach them.
function audience() {
  if (document.hidden) return; // a console in a background tab asks nothing
  api("GET", blogPath + "/audience").then((a) => {
    $("audience-readers").textContent = a.readers.toLocaleString();
    $("audience-lag").textContent = a.lag
      ? "median " + Math.round(a.lag.p50_ms) + " ms, 95% within " + Math.round(a.lag.p95_ms) + " ms"
      : "none in the last minute";
  }, () => {});
}

// -- the tools: figures, headline and status, people, the reader page ---------------------------
function tools() {
  document.querySelectorAll(".deskbar .tool").forEach((toggle) => {
    toggle.addEventListener("click", () => {
      const panel = $(toggle.getAttribute("aria-controls"));
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      panel.hidden = !open;
      if (open && panel.id === "reader-panel") {
        const frame = $("reader");
        if (!frame.src) frame.src = frame.dataset.src; // a reader's stream only when looked at
      }
      if (open && panel.id === "people") people();
      if (open) (panel.querySelector("input") || panel).focus();
    });
  });
  const factForm = $("fact-form");
  factForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = values(factForm);
    const key = data.key; delete data.key;
    if (data.numeric !== undefined) data.numeric = Number(data.numeric);
    try {
      await api("PUT", blogPath + "/facts/" + encodeURIComponent(key || ""), data);
      factForm.reset();
      showError(factForm, null);
    } catch (error) { showError(factForm, error); }
  });
  const blogForm = $("blog-form");
  blogForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("PATCH", blogPath, values(blogForm));
      showError(blogForm, null);
      blogForm.reset();
      refresh();
    } catch (error) { showError(blogForm, error); }
  });
  $("toggle-status").addEventListener("click", () => {
    api("PATCH", blogPath, { status: blog && blog.status === "live" ? "ended" : "live" })
      .then(refresh, (error) => showError(blogForm, error));
  });
}

// The figures as they stand; "Change" fills the form with one.
function showFacts(facts) {
  const list = $("fact-list");
  list.textContent = "";
  const form = $("fact-form");
  for (const f of facts) {
    const li = el("li");
    li.append(el("strong", "", f.label + ": "), f.value + (f.source ? " (" + f.source + ")" : ""), " ");
    li.append(button("Change", () => {
      for (const name of ["key", "label", "value", "numeric", "source"]) {
        form.querySelector('[name="' + name + '"]').value = f[name] === null || f[name] === undefined ? "" : f[name];
      }
      form.querySelector('[name="value"]').focus();
    }, "link"));
    list.append(li);
  }
}

async function people() {
  const list = $("people-list");
  let data;
  try { data = await api("GET", "/api/people"); } catch (error) { list.textContent = error.message; return; }
  list.textContent = "";
  for (const person of Array.isArray(data) ? data : data.people || []) {
    const li = el("li");
    const form = el("form");
    const label = el("label", "", person.name + " (" + person.role + ") ");
    const input = el("input");
    input.name = "display_name"; input.value = person.display_name || "";
    label.append(input);
    const save = el("button", "", "Save");
    save.type = "submit";
    const out = el("p", "error");
    form.append(label, save, out);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api("PATCH", "/api/people/" + encodeURIComponent(person.id), { display_name: input.value.trim() });
        showError(form, null);
        refresh();
      } catch (error) { showError(form, error); }
    });
    li.append(form);
    list.append(li);
  }
}

// -- composing --------------------------------------------------------------------------------
function composer() {
  const compose = $("compose");
  const submit = $("compose-submit");
  const preview = $("compose-preview");
  const atField = compose.querySelector('[name="publish-at"]');
  const contributor = me.role === "contributor";
  // Contributors only submit: an editor publishes (the server makes it "submitted"). A
  // server without drafts and schedules leaves one choice: none to make.
  $("publish-choice").hidden = contributor ||
    !can.takes("POST", "/api/blogs/{slug}/entries").includes("publish");
  const mode = () => compose.querySelector('[name="publish-mode"]:checked').value;
  const labels = { now: "Publish", draft: "Save draft", schedule: "Schedule" };
  function chosen() {
    submit.textContent = contributor ? "Submit for approval" : labels[mode()];
    atField.parentNode.hidden = mode() !== "schedule";
    atField.required = mode() === "schedule";
  }
  compose.querySelectorAll('[name="publish-mode"]').forEach((r) => r.addEventListener("change", chosen));
  chosen();

  // One key per update being written: a retry after a failure cannot post it twice.
  let key = null;
  compose.addEventListener("submit", async (event) => {
    event.preventDefault();
    key = key || (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
    const data = values(compose);
    if (!contributor && mode() === "draft") data.publish = "draft";
    if (!contributor && mode() === "schedule") data.publish = isoWithOffset(atField.value);
    try {
      await api("POST", blogPath + "/entries", data, { "Idempotency-Key": key });
    } catch (error) { showError(compose, error); return; } // the text stays for a retry
    key = null;
    compose.reset();
    chosen();
    showError(compose, null);
    emptyPreview();
    changed();
  });
  // Ctrl+Enter (Cmd+Enter on a Mac) posts from any field.
  compose.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      compose.requestSubmit();
    }
  });

  // The preview: what readers will see, from the server's own renderer, always in view.
  const takes = can.takes("POST", "/api/preview");
  let timer = null, ticket = 0;
  function emptyPreview() {
    preview.textContent = "";
    preview.append(el("p", "preview-empty",
      "Your update will appear here as readers will see it: the time, your name, the title, " +
      "the text, the picture and the embed."));
  }
  compose.addEventListener("input", (event) => {
    if (event.target.dataset.local !== undefined) return;
    clearTimeout(timer);
    timer = setTimeout(renderPreview, 250);
  });
  async function renderPreview() {
    const data = values(compose);
    if (!data.body && !data.title) { emptyPreview(); return; }
    const asked = { body: data.body || "" };
    // What the server's preview takes beyond the text (the whole article, when it can).
    if (takes.includes("title") && data.title) asked.title = data.title;
    if (takes.includes("key_event") && data.key_event) asked.key_event = true;
    if (takes.includes("image") && data.image && data.image.url && data.image.alt) asked.image = data.image;
    if (takes.includes("embed") && data.embed && URL.canParse && URL.canParse(data.embed.url)) asked.embed = data.embed;
    const asking = ++ticket;
    let p;
    try { p = await api("POST", "/api/preview", asked); } catch (_) { return; } // keeps the last
    if (asking !== ticket) return; // an older answer after a newer one
    if (p.article) { preview.innerHTML = p.article; return; } // the server's, as the page renders it
    preview.textContent = "";
    preview.append(article(p.html, data));
  }
  emptyPreview();
}

// The entry as the reader page shows it (_entry.html), around the server's rendering of the
// text: for a server whose preview gives only that.
function article(html, data) {
  const node = el("article", "entry" + (data.key_event ? " key" : ""));
  const head = el("header", "entry-meta");
  const now = new Date().toISOString();
  const time = el("time", "", localTime(now));
  time.dateTime = now;
  head.append(el("span", "permalink"), el("span", "rel", "just now"), el("span", "author", me.display_name || me.name));
  head.firstChild.append(time);
  if (data.key_event) head.append(el("span", "badge key-badge", "Key event"));
  node.append(head);
  if (data.title) node.append(el("h3", "entry-title", data.title));
  const body = el("div", "body");
  body.innerHTML = html; // the server's renderer, sanitised
  node.append(body);
  const image = data.image || {};
  if (image.url) {
    const figure = el("figure");
    if (showable(image.url)) {
      const img = el("img");
      img.src = image.url; img.alt = image.alt || "";
      figure.append(img);
    } else figure.append(el("p", "image-unusable", image.alt || image.url));
    if (image.caption || image.credit) {
      const caption = el("figcaption", "", image.caption || "");
      if (image.credit) caption.append(" ", el("span", "credit", "Photo: " + image.credit));
      figure.append(caption);
    }
    node.append(figure);
  }
  if (data.embed && data.embed.url) {
    let host = "";
    try { host = new URL(data.embed.url).host; } catch (_) { host = ""; }
    const card = el(host ? "span" : "p", "embed-card");
    card.append(el("span", "embed-domain", host || "Embedded link"),
                el("span", host ? "embed-cta" : "embed-url", host ? "Open the embedded post ↗" : data.embed.url));
    node.append(card);
  }
  return node;
}
