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
let me = null;        // {name, role, id, display_name?}: the session
let can = null;       // what the server can do (features())
let blog = null;      // the blog as last read
let locks = {};       // entry id -> the byline of whoever else holds its edit lock (presence)
let present = [];     // who is on the blog, as the last beat said
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
// Identities, not token names: a revoked token's name may be someone else's now. Entries as
// readers see them carry no identity; only for those is the name all there is to go by
// (the server, which knows the identity, refuses an edit that is not theirs).
const mine = (e) => (e.author_id !== undefined ? Boolean(me.id) && e.author_id === me.id
  : e.author === me.name);
const byline = (e) => e.author_name || e.author;
const nameOf = (person) => person.display_name || person.name;
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
    webhooks: () => can.has("GET", "/api/webhooks") && isEditor(),
  };
  // Hidden from those who may not use them (a folded tool panel stays folded for editors).
  if (!isEditor()) document.querySelectorAll(".editor-only").forEach((node) => { node.hidden = true; });
  document.querySelectorAll("[data-needs]").forEach((node) => {
    node.hidden = !needs[node.dataset.needs]();
  });
  copying();
  if (slug) openBlog();
  else {
    listBlogs();
    if (!$("webhooks").hidden) webhooks().show();
  }
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
  // Every change the stream tells of, whatever its kind (the server lists them), re-reads
  // the timeline and the queue (whose bylines change with the timeline's).
  const source = new EventSource("/blogs/" + encodeURIComponent(slug) + "/stream");
  for (const kind of root.dataset.streamKinds.split(" ")) source.addEventListener(kind, changed);
  // A new byline may be this console's own, or someone's who is here.
  source.addEventListener("byline-changed", () => { whoAmI(); beat(); });
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

// The name in the bar, as the session says it now (after a change of byline).
function whoAmI() {
  api("GET", "/api/session").then((who) => {
    if (!who.signed_in) return;
    me = who;
    $("me-name").textContent = nameOf(who);
  }, () => {});
}

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
      const holder = await holderOf(e.id, error.problem.holder);
      if (confirm(holder + " is editing this update — save anyway?")) save(form, e, revision, true);
      else showError(form, new Error("Not saved: " + holder + " is editing this update."));
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
// The server says how often to beat (a third of its presence and lock times to live).
const beatEvery = (Number(root.dataset.presenceBeat) || 10) * 1000;
function startPresence() {
  $("presence").hidden = false;
  beat();
  setInterval(beat, beatEvery);
  // Leaving lets go at once, rather than when the lock lapses; back from the history
  // cache, it is taken again.
  addEventListener("pagehide", () => farewell("DELETE", blogPath + "/presence"));
  addEventListener("pageshow", (event) => { if (event.persisted) beat(); });
}
function beat() {
  if (!can || !can.has("POST", "/api/blogs/{slug}/presence")) return Promise.resolve();
  return api("POST", blogPath + "/presence", { editing }).then(showPresence, (error) => {
    // The open entry cannot be held (retracted meanwhile, say): be here without it.
    if (editing && [403, 404, 410].includes(error.status)) { editing = null; beat(); }
  });
}
function showPresence(p) {
  present = p.people || [];
  const byId = {};
  for (const person of present) byId[person.id] = person;
  const list = $("presence-list");
  list.textContent = "";
  const others = present.filter((person) => person.id !== me.id);
  for (const person of others) {
    const chip = el("span", "presence-person", nameOf(person));
    chip.dataset.id = person.id;
    if (person.editing) chip.append(el("span", "presence-editing", " · editing"));
    list.append(chip);
  }
  if (!others.length) list.append(el("span", "", "only you"));
  // A lock names its holder's identity: their byline is in the people beside it.
  locks = {};
  for (const lock of p.locks || []) {
    if (lock.holder.id === me.id) continue;
    const holder = byId[lock.holder.id];
    locks[lock.entry_id] = holder ? nameOf(holder) : lock.holder.name;
  }
  markLocks();
}
// Whoever holds an entry's lock, by byline: a 409 names only their token's name.
async function holderOf(entryId, name) {
  try { showPresence(await api("GET", blogPath + "/presence")); } catch (_) { /* as it was */ }
  if (locks[entryId]) return locks[entryId];
  const person = present.find((p) => p.name === name);
  return person ? nameOf(person) : name || "Someone";
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
      if (open && panel.id === "share-panel") embedCode();
      if (panel.id === "webhooks") { if (open) webhooks().show(); else webhooks().hide(); }
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
    out.setAttribute("role", "alert");
    const saved = el("span", "meta saved", "Saved.");
    input.addEventListener("input", () => saved.remove());
    form.append(label, save, out);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const renamed = await api("PATCH", "/api/people/" + encodeURIComponent(person.id),
                                  { display_name: input.value.trim() });
        showError(form, null);
        out.textContent = "";
        form.append(saved);
        if (person.id === me.id) whoAmI();
        beat(); // their name here, at once
        refresh();
        input.value = (renamed && renamed.display_name) || input.value.trim();
      } catch (error) { showError(form, error); }
    });
    li.append(form);
    list.append(li);
  }
}

// -- embed and feeds --------------------------------------------------------------------------
// The line another site pastes to show the blog, live (static/embed.js), as the server says.
async function embedCode() {
  const out = $("embed-origins");
  try {
    const code = await api("GET", blogPath + "/embed");
    $("embed-snippet").value = code.snippet;
    out.textContent = code.origins.includes("*") ? "Any site may show it."
      : "Only these sites may show it: " + code.origins.join(", ") + ".";
  } catch (error) { out.textContent = error.message; }
}

// "Copy" next to a field (data-copy: its id); what happened is said beside it.
function copying() {
  root.addEventListener("click", async (event) => {
    const button = event.target.closest("button.copy");
    if (!button) return;
    const field = $(button.dataset.copy);
    const said = button.parentNode.querySelector(".copied");
    let done = false;
    try { await navigator.clipboard.writeText(field.value); done = true; } catch (_) {
      field.select(); // no clipboard API (http, say): the old way, from the selection
      try { done = document.execCommand("copy"); } catch (_) { done = false; }
    }
    if (said) said.textContent = done ? "Copied." : "Selected: press Ctrl+C (Cmd+C) to copy.";
  });
}

// -- webhooks (editors): endpoints, registering one, and each one's recent deliveries ----------
let hooks = null;
function webhooks() {
  hooks = hooks || webhookPanel();
  return hooks;
}
function webhookPanel() {
  const form = $("webhook-form");
  const kinds = root.dataset.webhookKinds.split(" ").filter(Boolean);
  const choices = $("webhook-kinds");
  for (const kind of kinds) {
    const label = el("label", "inline");
    const box = el("input");
    box.type = "checkbox"; box.value = kind; box.checked = true; box.dataset.local = "";
    label.append(box, " " + kind);
    choices.append(label);
  }
  const secret = $("webhook-secret");
  const opened = new Set();  // endpoints whose deliveries are shown
  let timer = null;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = [...choices.querySelectorAll("input:checked")].map((box) => box.value);
    if (!chosen.length) { showError(form, new Error("Choose at least one change to send.")); return; }
    const data = { url: form.querySelector('[name="url"]').value.trim() };
    if (chosen.length < kinds.length) data.events = chosen; // left out: every kind, later ones too
    const blogs = form.querySelector('[name="blogs"]').value.split(/[\s,]+/).filter(Boolean);
    if (blogs.length) data.blogs = blogs;
    let created;
    try { created = await api("POST", "/api/webhooks", data); } catch (error) { showError(form, error); return; }
    showError(form, null);
    form.reset();
    choices.querySelectorAll("input").forEach((box) => { box.checked = true; });
    $("webhook-secret-url").textContent = created.url;
    $("webhook-secret-value").value = created.secret;
    secret.querySelector(".copied").textContent = "";
    secret.hidden = false;
    $("webhook-secret-value").select();
    list();
  });
  // Once seen and copied it goes from the page too.
  $("webhook-secret-done").addEventListener("click", () => {
    $("webhook-secret-value").value = "";
    secret.hidden = true;
  });

  async function list() {
    let data;
    try { data = await api("GET", "/api/webhooks"); } catch (error) { showError(form, error); return; }
    const ul = $("webhook-list");
    ul.textContent = "";
    for (const hook of data.webhooks) ul.append(endpoint(hook));
    $("webhooks-empty").hidden = data.webhooks.length > 0;
    for (const id of [...opened]) {
      if (data.webhooks.some((hook) => hook.id === id)) deliveries(id); else opened.delete(id);
    }
  }

  function endpoint(hook) {
    const li = el("li", "webhook");
    li.id = "webhook-" + hook.id;
    const head = el("p", "webhook-head");
    head.append(el("code", "webhook-url", hook.url), " ");
    head.append(hook.disabled
      ? el("span", "badge state-rejected", "disabled" + (hook.disabled_at ? " " + localTime(hook.disabled_at) : ""))
      : el("span", "badge state-scheduled", "active"));
    li.append(head);
    const every = hook.events.length >= kinds.length && kinds.every((k) => hook.events.includes(k));
    li.append(el("p", "meta webhook-filters",
      "Sends: " + (every ? "every change" : hook.events.join(", ")) +
      " · Blogs: " + (hook.blogs ? hook.blogs.join(", ") : "every blog") +
      " · Waiting: " + hook.pending));
    const actions = el("div", "actions");
    const show = button("Deliveries", () => {
      const open = show.getAttribute("aria-expanded") !== "true";
      show.setAttribute("aria-expanded", String(open));
      if (open) { opened.add(hook.id); deliveries(hook.id); } else {
        opened.delete(hook.id);
        li.querySelector(".deliveries").hidden = true;
      }
    });
    show.setAttribute("aria-expanded", String(opened.has(hook.id)));
    actions.append(show);
    actions.append(button("Delete", async () => {
      if (!confirm("Delete the endpoint " + hook.url + "? Nothing more is sent to it, and " +
                   "what waits for it is dropped.")) return;
      try { await api("DELETE", "/api/webhooks/" + encodeURIComponent(hook.id)); } catch (error) {
        showError(form, error); return;
      }
      opened.delete(hook.id);
      list();
    }));
    li.append(actions);
    const box = el("div", "deliveries");
    box.hidden = true;
    li.append(box);
    return li;
  }

  async function deliveries(id) {
    const li = $("webhook-" + id);
    let data;
    try { data = await api("GET", "/api/webhooks/" + encodeURIComponent(id) + "/deliveries"); } catch (error) {
      if (li) li.querySelector(".deliveries").textContent = error.message;
      return;
    }
    const box = $("webhook-" + id) && $("webhook-" + id).querySelector(".deliveries");
    if (!box) return;
    box.textContent = "";
    box.hidden = false;
    if (!data.deliveries.length) { box.append(el("p", "meta", "Nothing sent yet.")); return; }
    const table = el("table");
    table.append(el("caption", "sr-only", "Latest deliveries, the newest first"));
    const head = el("tr");
    for (const title of ["Time", "Change", "Status", "Error", "Next retry"]) head.append(el("th", "", title));
    table.append(el("thead"));
    table.tHead.append(head);
    const body = el("tbody");
    for (const d of data.deliveries) {
      const row = el("tr", d.error ? "failed" : "delivered");
      const when = el("time", "", localTime(d.at));
      when.dateTime = d.at;
      const cell = el("td");
      cell.append(when);
      row.append(cell);
      row.append(el("td", "", d.event_id + " · " + d.type + " · " + d.blog +
                    (d.attempt > 1 ? " · attempt " + d.attempt : "")));
      row.append(el("td", "status", d.status_code === null ? "no answer" : String(d.status_code)));
      row.append(el("td", "", d.error || ""));
      row.append(el("td", "", d.next_retry_at ? localTime(d.next_retry_at) : ""));
      body.append(row);
    }
    table.append(body);
    const scroll = el("div", "table-scroll");
    scroll.append(table);
    box.append(scroll);
  }

  return {
    // Read now, and again every few seconds while it is open and seen.
    show() {
      list();
      clearInterval(timer);
      timer = setInterval(() => { if (!document.hidden) list(); }, 5000);
    },
    hide() { clearInterval(timer); timer = null; },
  };
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
