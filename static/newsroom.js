// liveblog newsroom console: sign in with a token (posted once to /api/session, which keeps
// it in an HttpOnly cookie that no script here can read; never put in a URL), then post,
// edit, retract, pin and update figures.
(function () {
  "use strict";
  var root = document.getElementById("newsroom");
  var slug = root.dataset.slug;
  var me = null;
  var entries = {};   // id -> entry, as last read

  // One API call. Errors come back as RFC 9457 problems; `form` shows them in plain words.
  function api(method, path, body, headers) {
    // The session cookie goes along (same origin); the server refuses it from other sites.
    var init = { method: method, headers: Object.assign({}, headers || {}), credentials: "same-origin" };
    if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
    return fetch(path, init).then(function (r) {
      return r.text().then(function (text) {
        var data = text ? JSON.parse(text) : null;
        if (!r.ok) { var e = new Error((data && data.detail) || r.statusText); e.problem = data || {}; e.status = r.status; throw e; }
        return data;
      });
    }, function () {
      var e = new Error("The server cannot be reached. Nothing was lost: try again.");
      e.problem = {}; e.status = 0; throw e;
    });
  }
  function showError(form, error) {
    var out = form.querySelector(".error");
    form.querySelectorAll("[aria-invalid]").forEach(function (f) { f.removeAttribute("aria-invalid"); });
    if (!error) { out.textContent = ""; return; }
    var lines = [error.message];
    (error.problem.errors || []).forEach(function (fe) {
      lines.push(fe.field + ": " + fe.message);
      var field = form.querySelector('[name="' + fe.field + '"]');
      if (field) field.setAttribute("aria-invalid", "true");
    });
    out.textContent = lines.join(" · ");
  }
  function values(form) {
    var data = {};
    form.querySelectorAll("input, textarea").forEach(function (f) {
      if (!f.name) return;
      var value = f.type === "checkbox" ? f.checked : f.value.trim();
      if (value === "" ) return;
      var parts = f.name.split(".");
      if (parts.length === 2) { data[parts[0]] = data[parts[0]] || {}; data[parts[0]][parts[1]] = value; }
      else data[f.name] = value;
    });
    return data;
  }

  // -- signing in -----------------------------------------------------------------------------
  var signin = document.getElementById("signin");
  // Tokens were kept in sessionStorage before the cookie: none may linger there.
  sessionStorage.removeItem("liveblog-token");
  signin.addEventListener("submit", function (event) {
    event.preventDefault();
    var field = document.getElementById("token");
    api("POST", "/api/session", { token: field.value.trim() }).then(function () {
      field.value = "";
      start(signin);
    }, function (error) { showError(signin, error); });
  });
  document.getElementById("signout").addEventListener("click", function () {
    api("DELETE", "/api/session").then(function () { location.reload(); });
  });
  function start(form) {
    api("GET", "/api/session").then(function (who) {
      if (!who.signed_in) { signin.hidden = false; return; }
      me = who;
      document.getElementById("me-name").textContent = who.name;
      document.getElementById("me-role").textContent = who.role;
      signin.hidden = true;
      document.getElementById("desk").hidden = false;
      document.querySelectorAll(".editor-only").forEach(function (el) { el.hidden = who.role !== "editor"; });
      if (slug) openBlog(); else listBlogs();
    }, function (error) {
      signin.hidden = false;
      showError(signin, error);
    });
  }

  // -- the list of blogs ----------------------------------------------------------------------
  function listBlogs() {
    api("GET", "/api/blogs?limit=100").then(function (data) {
      var list = document.getElementById("blog-list");
      list.textContent = "";
      data.blogs.forEach(function (b) {
        var li = document.createElement("li");
        var a = document.createElement("a");
        a.href = "/newsroom/" + b.slug; a.textContent = b.title;
        li.appendChild(a);
        li.appendChild(document.createTextNode(" (" + b.status + ", version " + b.version + ")"));
        list.appendChild(li);
      });
    });
  }
  var create = document.getElementById("create-blog");
  if (create) create.addEventListener("submit", function (event) {
    event.preventDefault();
    api("POST", "/api/blogs", values(create)).then(function (b) {
      location.href = "/newsroom/" + b.slug;
    }, function (error) { showError(create, error); });
  });

  // -- one blog ---------------------------------------------------------------------------------
  function openBlog() {
    refresh();
    var source = new EventSource("/blogs/" + encodeURIComponent(slug) + "/stream");
    ["snapshot", "entry-posted", "entry-edited", "entry-retracted", "pin-changed", "fact-updated", "blog-updated"]
      .forEach(function (kind) { source.addEventListener(kind, refresh); });
    audience();
    window.setInterval(audience, 5000);
  }
  // Readers with the blog open now, on every server, and how fast updates reach them.
  function audience() {
    if (document.hidden) return; // a console in a background tab asks nothing
    api("GET", "/api/blogs/" + encodeURIComponent(slug) + "/audience").then(function (a) {
      document.getElementById("audience-readers").textContent = a.readers.toLocaleString();
      document.getElementById("audience-lag").textContent = a.lag
        ? "median " + Math.round(a.lag.p50_ms) + " ms, 95% within " + Math.round(a.lag.p95_ms) + " ms"
        : "none in the last minute";
    }, function () {});
  }
  var blog = null;
  function refresh() {
    return api("GET", "/api/blogs/" + slug + "?limit=100").then(function (b) {
      blog = b;
      document.getElementById("blog-title").textContent = b.title;
      document.getElementById("toggle-status").textContent = b.status === "live" ? "End the blog" : "Reopen the blog";
      var list = document.getElementById("desk-entries");
      // An update being edited keeps its form (and the text typed so far) across refreshes.
      var editing = {};
      list.querySelectorAll("li.editing").forEach(function (li) { editing[li.id] = li; });
      list.textContent = "";
      entries = {};
      b.entries.forEach(function (e) {
        entries[e.id] = e;
        list.appendChild(editing["desk-" + e.id] || deskEntry(e, b));
      });
    });
  }
  function button(text, onclick) {
    var b = document.createElement("button");
    b.type = "button"; b.textContent = text; b.addEventListener("click", onclick);
    return b;
  }
  function deskEntry(e, b) {
    var li = document.createElement("li");
    li.id = "desk-" + e.id;
    var head = document.createElement("p");
    head.className = "meta";
    head.textContent = e.author + " · revision " + e.revision + (e.key_event ? " · key event" : "") +
      (b.pinned_entry_id === e.id ? " · pinned" : "");
    li.appendChild(head);
    if (e.title) { var t = document.createElement("strong"); t.textContent = e.title; li.appendChild(t); }
    var body = document.createElement("div");
    body.className = "body"; body.innerHTML = e.html; // sanitized on the server
    li.appendChild(body);
    var mine = me.role === "editor" || e.author === me.name;
    var form = document.createElement("form");
    form.appendChild(document.createElement("p")).className = "error";
    form.querySelector("p").setAttribute("role", "alert");
    if (mine) {
      li.appendChild(button("Edit", function () { editForm(li, e); }));
      li.appendChild(button("Retract", function () {
        var reason = window.prompt("Why is this update retracted? (kept in the log)");
        if (reason === null) return;
        api("DELETE", "/api/blogs/" + slug + "/entries/" + e.id, { reason: reason })
          .then(refresh, function (error) { showError(form, error); });
      }));
    }
    if (me.role === "editor") {
      var pinned = b.pinned_entry_id === e.id;
      li.appendChild(button(pinned ? "Unpin" : "Pin", function () {
        api("PUT", "/api/blogs/" + slug + "/pinned", { entry_id: pinned ? null : e.id })
          .then(refresh, function (error) { showError(form, error); });
      }));
    }
    li.appendChild(form);
    return li;
  }
  function editForm(li, e) {
    var form = document.createElement("form");
    form.className = "edit";
    form.innerHTML = '<label>Text <textarea name="body" rows="4"></textarea></label>' +
      '<label>What was corrected (for the newsroom) <input name="note"></label>' +
      '<label>Correction (shown to readers) <input name="correction" maxlength="1000"></label>' +
      '<button type="submit">Save</button><p class="error" role="alert"></p><div class="conflict-box"></div>';
    form.querySelector("textarea").value = e.body;
    li.classList.add("editing");
    li.appendChild(form);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      save(form, e, e.revision);
    });
  }
  function save(form, e, revision) {
    var data = values(form);
    api("PATCH", "/api/blogs/" + slug + "/entries/" + e.id, data, { "If-Match": '"' + revision + '"' })
      .then(function () { form.parentNode.classList.remove("editing"); refresh(); }, function (error) {
        if (error.status !== 412) { showError(form, error); return; }
        // Someone changed it meanwhile: show both versions instead of overwriting.
        api("GET", "/api/blogs/" + slug + "?limit=100").then(function (b) {
          var theirs = b.entries.filter(function (x) { return x.id === e.id; })[0];
          if (!theirs) { showError(form, new Error("This update was retracted meanwhile.")); return; }
          var box = form.querySelector(".conflict-box");
          box.className = "conflict-box conflict";
          box.textContent = "";
          [["Theirs (revision " + theirs.revision + ")", theirs.body], ["Yours", data.body || ""]].forEach(function (pair) {
            var col = document.createElement("div");
            var h = document.createElement("strong"); h.textContent = pair[0];
            var p = document.createElement("p"); p.textContent = pair[1];
            col.appendChild(h); col.appendChild(p); box.appendChild(col);
          });
          box.appendChild(button("Save mine over theirs", function () { save(form, e, theirs.revision); }));
          box.appendChild(button("Keep theirs", function () {
            form.parentNode.classList.remove("editing");
            refresh();
          }));
          showError(form, new Error("Someone changed this update while you were editing it."));
        });
      });
  }

  var compose = document.getElementById("compose");
  if (compose) {
    // One key per update being written: a retry after a failure cannot post it twice.
    var key = null;
    var timer = null;
    compose.querySelector("textarea").addEventListener("input", function () {
      window.clearTimeout(timer);
      var text = this.value;
      timer = window.setTimeout(function () {
        if (!text.trim()) { document.getElementById("compose-preview").textContent = ""; return; }
        api("POST", "/api/preview", { body: text }).then(function (p) {
          document.getElementById("compose-preview").innerHTML = p.html; // the server's own renderer
        }, function () {});
      }, 250);
    });
    compose.addEventListener("submit", function (event) {
      event.preventDefault();
      key = key || (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
      var data = values(compose);
      if (data.key_event !== undefined) data.key_event = true;
      api("POST", "/api/blogs/" + slug + "/entries", data, { "Idempotency-Key": key }).then(function () {
        key = null;
        compose.reset();
        document.getElementById("compose-preview").textContent = "";
        showError(compose, null);
        refresh();
      }, function (error) { showError(compose, error); }); // the text stays for a retry
    });
    var factForm = document.getElementById("fact-form");
    factForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var data = values(factForm);
      var factKey = data.key; delete data.key;
      if (data.numeric !== undefined) data.numeric = Number(data.numeric);
      api("PUT", "/api/blogs/" + slug + "/facts/" + encodeURIComponent(factKey || ""), data)
        .then(function () { factForm.reset(); showError(factForm, null); }, function (error) { showError(factForm, error); });
    });
    var blogForm = document.getElementById("blog-form");
    blogForm.addEventListener("submit", function (event) {
      event.preventDefault();
      api("PATCH", "/api/blogs/" + slug, values(blogForm))
        .then(function () { showError(blogForm, null); refresh(); }, function (error) { showError(blogForm, error); });
    });
    document.getElementById("toggle-status").addEventListener("click", function () {
      api("PATCH", "/api/blogs/" + slug, { status: blog && blog.status === "live" ? "ended" : "live" })
        .then(refresh, function (error) { showError(blogForm, error); });
    });
  }

  start(null);
})();
