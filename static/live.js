// liveblog reader: keeps a server-rendered blog page live through its event stream.
// Plain JavaScript, no build step. The page works without it; this only applies changes.
// On an update's own page (data-mode="entry", templates/entry.html) it follows the same
// stream but applies only what concerns that update: it never inserts another one.
(function () {
  "use strict";
  var root = document.getElementById("blog");
  if (!root || !window.EventSource) return;

  var slug = root.dataset.slug;
  var single = root.dataset.mode === "entry" ? root.dataset.entryId : null;
  var version = Number(root.dataset.version);
  var lastId = root.dataset.lastEventId;
  var nextBefore = root.dataset.nextBefore || null;
  var ended = root.dataset.status === "ended";
  var baseTitle = document.title;
  var pending = [];           // entries that arrived while scrolled down, oldest first
  var entries = document.getElementById("entries");
  var button = document.getElementById("new-updates");
  var announcer = document.getElementById("announcer");
  var connection = document.getElementById("connection");
  var source = null;
  var lostTimer = null;
  // What the stream said about entries, so a page of older updates fetched meanwhile
  // cannot bring back a retracted entry or an old revision.
  var gone = {};
  var latest = {};

  // -- time --------------------------------------------------------------------------------
  // 24-hour, like the server's UTC rendering, so the swap to local time barely changes widths.
  var clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" });
  var relative = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;

  function localTimes(scope) {
    scope.querySelectorAll("time[data-abs]").forEach(function (t) {
      t.textContent = clock.format(new Date(t.getAttribute("datetime")));
    });
    refreshRelative(scope);
  }
  function refreshRelative(scope) {
    if (!relative) return;
    var now = Date.now();
    scope.querySelectorAll("[data-rel]").forEach(function (el) {
      var minutes = Math.round((new Date(el.dataset.rel).getTime() - now) / 60000);
      el.textContent = Math.abs(minutes) < 60 ? relative.format(minutes, "minute")
        : Math.abs(minutes) < 1440 ? relative.format(Math.round(minutes / 60), "hour")
        : relative.format(Math.round(minutes / 1440), "day");
    });
  }

  // -- building markup (mirrors templates/_entry.html) --------------------------------------
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text != null) node.textContent = text;
    return node;
  }
  // The host an http(s) link goes to, or null for one this browser cannot parse: `new URL`
  // throws on those, and one bad link must not take the rest of the page with it.
  function hostOf(url) {
    try {
      var parsed = new URL(url);
      return /^https?:$/.test(parsed.protocol) && parsed.hostname ? parsed.hostname : null;
    } catch (error) {
      return null;
    }
  }
  // A path on this site, as the server takes one for an image (liveblog/domain/urls.py
  // PATH_PATTERN, the same expression): never "//", which leads to another host.
  var SITE_PATH = /^\/(?!\/)(?:[A-Za-z0-9._~!$&()*+,;=:@-]|%[0-9A-Fa-f]{2}|\/(?!\/))*(?:[?#](?:[A-Za-z0-9._~!$&()*+,;=:@-]|%[0-9A-Fa-f]{2}|[\/?#])*)?$/;
  function imageSrc(url) {
    return SITE_PATH.test(url) || hostOf(url) ? url : null;
  }
  function timeEl(iso) {
    var t = el("time", { datetime: iso, "data-abs": "" });
    t.textContent = clock.format(new Date(iso));
    return t;
  }
  function entryEl(e, pinned) {
    var article = el("article", {
      "class": "entry" + (e.key_event ? " key" : ""),
      id: (pinned ? "pinned-" : "entry-") + e.id,
      "data-id": e.id, "data-revision": String(e.revision)
    });
    var meta = el("header", { "class": "entry-meta" });
    var link = el("a", { "class": "permalink", href: "#entry-" + e.id });
    link.appendChild(timeEl(e.posted_at));
    meta.appendChild(link);
    meta.appendChild(el("span", { "class": "rel", "data-rel": e.posted_at }));
    meta.appendChild(el("span", { "class": "author" }, e.author_name || e.author));
    if (e.key_event) meta.appendChild(el("span", { "class": "badge key-badge" }, "Key event"));
    meta.appendChild(el("a", { "class": "share", href: "/blogs/" + slug + "/entries/" + e.id }, "Share"));
    article.appendChild(meta);
    if (e.title) article.appendChild(el("h3", { "class": "entry-title" }, e.title));
    var body = el("div", { "class": "body" });
    body.innerHTML = e.html; // sanitized on the server (nh3 allow-list)
    article.appendChild(body);
    if (e.image) {
      var figure = el("figure");
      figure.appendChild(imageSrc(e.image.url)
        ? el("img", { src: e.image.url, alt: e.image.alt, loading: "lazy", decoding: "async" })
        : el("p", { "class": "image-unusable" }, e.image.alt)); // a URL from before they were checked
      if (e.image.caption || e.image.credit) {
        var caption = el("figcaption", {}, e.image.caption);
        if (e.image.credit) caption.appendChild(el("span", { "class": "credit" }, " Photo: " + e.image.credit));
        figure.appendChild(caption);
      }
      article.appendChild(figure);
    }
    if (e.embed) {
      var host = hostOf(e.embed.url);
      var card;
      if (host) {
        card = el("a", { "class": "embed-card", href: e.embed.url, rel: "noopener noreferrer nofollow ugc", target: "_blank" });
        card.appendChild(el("span", { "class": "embed-domain" }, host));
        card.appendChild(el("span", { "class": "embed-cta" }, "Open the embedded post ↗"));
      } else {
        // Logged before the server checked URLs as browsers parse them: shown, never followed.
        card = el("p", { "class": "embed-card embed-unusable" });
        card.appendChild(el("span", { "class": "embed-domain" }, "Embedded link"));
        card.appendChild(document.createTextNode(" "));
        card.appendChild(el("span", { "class": "embed-url" }, e.embed.url));
      }
      article.appendChild(card);
    }
    (e.corrections || []).forEach(function (c) {
      // Plain text from the newsroom: textContent, never HTML.
      var correction = el("p", { "class": "correction" }, "Correction, ");
      correction.appendChild(timeEl(c.at));
      correction.appendChild(document.createTextNode(": " + c.text));
      article.appendChild(correction);
    });
    // Edited since readers first saw it (edits of a draft before it was published are not).
    if (Date.parse(e.updated_at) > Date.parse(e.posted_at)) {
      var updated = el("p", { "class": "updated" }, "Updated ");
      updated.appendChild(timeEl(e.updated_at));
      article.appendChild(updated);
    }
    refreshRelative(article);
    return article;
  }

  // -- the "N new updates" button and the tab title ------------------------------------------
  function atTop() {
    return entries.getBoundingClientRect().top >= -40;
  }
  function showPending() {
    var n = pending.length;
    button.hidden = n === 0;
    button.textContent = n === 1 ? "1 new update" : n + " new updates";
    document.title = n ? "(" + n + ") " + baseTitle : baseTitle;
  }
  function flushPending(scroll) {
    if (!pending.length) return;
    var batch = pending; pending = [];
    batch.forEach(function (e) { insertEntry(e); });
    showPending();
    if (scroll) entries.scrollIntoView({ behavior: matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth" });
  }
  function insertEntry(e) {
    var node = entryEl(e);
    node.classList.add("arrived");
    entries.insertBefore(node, entries.firstChild);
    var empty = document.getElementById("no-entries");
    if (empty) empty.remove();
  }
  if (!single) button.addEventListener("click", function () { flushPending(true); });
  if (!single) window.addEventListener("scroll", function () { if (pending.length && atTop()) flushPending(false); }, { passive: true });

  function announce(text) {
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 50);
  }

  // -- applying changes ------------------------------------------------------------------------
  function keyEvents(e, remove) {
    var list = document.getElementById("key-events-list");
    var old = list.querySelector('li[data-id="' + (e.id || e) + '"]');
    if (remove || !(e.key_event && e.title)) { if (old) old.remove(); }
    else {
      var li = el("li", { "data-id": e.id, "data-version": e.posted_version });
      var a = el("a", { href: "#entry-" + e.id });
      a.appendChild(timeEl(e.posted_at));
      a.appendChild(document.createTextNode(" " + e.title));
      li.appendChild(a);
      if (old) { list.replaceChild(li, old); }
      else {
        // Newest first, in the log's order (an edit can make an old one key). Not by time:
        // writes share milliseconds, and ISO text does not sort (":00Z" > ":00.5Z").
        var after = [].find.call(list.children, function (other) {
          return Number(other.dataset.version) < e.posted_version;
        });
        list.insertBefore(li, after || null);
      }
    }
    document.getElementById("key-events").hidden = !list.children.length;
  }
  function setPinned(entry) {
    var box = document.getElementById("pinned-body");
    box.textContent = "";
    if (entry) box.appendChild(entryEl(entry, true));
    document.getElementById("pinned").hidden = !entry;
  }
  function sparkline(fact) {
    var points = fact.history.map(function (p) { return p.numeric; }).filter(function (v) { return v != null; });
    if (points.length < 2) return null;
    var w = 120, h = 32, low = Math.min.apply(null, points), high = Math.max.apply(null, points);
    var span = (high - low) || 1, step = (w - 4) / (points.length - 1);
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "spark"); svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("width", w); svg.setAttribute("height", h); svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", fact.label + ": " + points.join(", then "));
    var line = document.createElementNS(ns, "polyline");
    line.setAttribute("fill", "none"); line.setAttribute("stroke", "currentColor"); line.setAttribute("stroke-width", "2");
    line.setAttribute("points", points.map(function (v, n) {
      return (2 + n * step).toFixed(1) + "," + (h - 2 - (v - low) / span * (h - 4)).toFixed(1);
    }).join(" "));
    svg.appendChild(line);
    return svg;
  }
  function setFact(f) {
    var row = el("div", { "class": "fact", id: "fact-" + f.key });
    row.appendChild(el("dt", {}, f.label));
    var dd = el("dd");
    dd.appendChild(el("span", { "class": "fact-value" }, f.value));
    var chart = sparkline(f);
    if (chart) dd.appendChild(chart);
    var src = el("span", { "class": "fact-source" }, f.source ? "Source: " + f.source + ", " : "");
    src.appendChild(timeEl(f.updated_at));
    dd.appendChild(src);
    row.appendChild(dd);
    var list = document.getElementById("facts-list");
    var old = document.getElementById("fact-" + f.key);
    if (old) list.replaceChild(row, old); else list.appendChild(row);
    document.getElementById("facts").hidden = false;
  }
  function setBlog(b) {
    document.getElementById("headline").textContent = b.title;
    baseTitle = b.title + " · liveblog";
    showPending();
    var d = document.getElementById("description");
    d.textContent = b.description; d.hidden = !b.description;
    var status = document.getElementById("status");
    ended = b.status === "ended";
    status.textContent = ended ? "Ended" : "Live";
    status.className = "badge" + (ended ? "" : " live");
    document.getElementById("ended").hidden = !ended;
  }
  function replaceEntry(e) {
    pending = pending.map(function (p) { return p.id === e.id ? e : p; });
    var old = document.getElementById("entry-" + e.id);
    if (old) old.replaceWith(entryEl(e));
    var pin = document.getElementById("pinned-" + e.id);
    if (pin) setPinned(e);
  }
  function removeEntry(id) {
    pending = pending.filter(function (p) { return p.id !== id; });
    showPending();
    ["entry-", "pinned-"].forEach(function (prefix) {
      var node = document.getElementById(prefix + id);
      if (node) node.remove();
    });
    keyEvents(id, true);
  }
  // A rename: the byline of each listed entry, wherever it shows (its article, the pinned
  // copy), and of those waiting behind the button or already fetched.
  function setByline(d) {
    var ids = {};
    d.entry_ids.forEach(function (id) { ids[id] = true; });
    function renamed(e) { if (ids[e.id]) e.author_name = d.author_name; }
    pending.forEach(renamed);
    Object.keys(latest).forEach(function (id) { renamed(latest[id]); });
    d.entry_ids.forEach(function (id) {
      ["entry-", "pinned-"].forEach(function (prefix) {
        var node = document.getElementById(prefix + id);
        var author = node && node.querySelector(".entry-meta .author");
        if (author) author.textContent = d.author_name; // plain text, never HTML
      });
    });
  }
  function snapshot(s) {
    setBlog(s);
    entries.textContent = "";
    pending = []; showPending();
    s.entries.forEach(function (e) { entries.appendChild(entryEl(e)); });
    setPinned(s.pinned);
    document.getElementById("facts-list").textContent = "";
    s.facts.forEach(setFact);
    document.getElementById("facts").hidden = !s.facts.length;
    var list = document.getElementById("key-events-list");
    list.textContent = "";
    s.key_events.slice().reverse().forEach(function (k) { keyEvents({ id: k.id, title: k.title, key_event: true, posted_at: k.posted_at, posted_version: k.posted_version }); });
    setOlder(s.next_before);
  }

  // -- an update's own page -------------------------------------------------------------------
  function withdrawn() {
    var old = document.getElementById("entry-" + single);
    if (!old) return;
    var notice = el("article", { "class": "entry withdrawn", id: "entry-" + single });
    notice.appendChild(el("p", { "class": "withdrawn-notice" }, "This update was withdrawn."));
    old.replaceWith(notice);
  }
  function mine(e) {
    var shown = document.getElementById("entry-" + single);
    if (e.id === single && shown && !shown.classList.contains("withdrawn")) replaceEntry(e);
  }
  function ignore() { /* listened to all the same, so the page's last id stays current */ }
  var singleHandlers = {
    // A snapshot holds the newest page of updates and the pinned one; this one may be in
    // neither (an older update), so its absence says nothing: the page reloads it instead.
    "snapshot": function (s) {
      setBack(s.title);
      var found = [s.pinned].concat(s.entries).filter(function (e) { return e && e.id === single; })[0];
      if (found) { mine(found); return; }
      fetch(location.pathname, { cache: "no-store" }).then(function (r) {
        if (r.status === 410) { withdrawn(); return null; }
        return r.ok ? r.text() : null;
      }).then(function (html) {
        var fresh = html && new DOMParser().parseFromString(html, "text/html").getElementById("entry-" + single);
        var old = document.getElementById("entry-" + single);
        if (fresh && old && !old.classList.contains("withdrawn")) { old.replaceWith(fresh); localTimes(fresh); }
      }).catch(function () { /* keeps what it shows; the next change will come */ });
    },
    "entry-posted": function (d) { mine(d.entry); },
    "entry-edited": function (d) { mine(d.entry); },
    "entry-retracted": function (d) { if (d.entry_id === single) withdrawn(); },
    "pin-changed": ignore,
    "fact-updated": ignore,
    "byline-changed": setByline,
    "blog-updated": function (d) { setBack(d.title); ended = d.status === "ended"; }
  };
  function setBack(title) {
    document.getElementById("back").textContent = title;
  }

  var handlers = single ? singleHandlers : {
    "snapshot": snapshot,
    "entry-posted": function (d) {
      if (atTop()) { flushPending(false); insertEntry(d.entry); } else { pending.push(d.entry); showPending(); }
      keyEvents(d.entry);
      announce("New update: " + (d.entry.title || d.entry.body.slice(0, 120)));
    },
    "entry-edited": function (d) { latest[d.entry.id] = d.entry; replaceEntry(d.entry); keyEvents(d.entry); },
    "entry-retracted": function (d) {
      gone[d.entry_id] = true;
      removeEntry(d.entry_id);
      if (!d.pinned_entry_id) setPinned(null);
    },
    "pin-changed": function (d) { setPinned(d.entry); },
    "fact-updated": function (d) { setFact(d.fact); },
    "byline-changed": setByline,
    "blog-updated": function (d) {
      setBlog(d);
      if (ended) { announce("This live blog has ended."); }
    }
  };

  var failures = 0; // refused connections in a row (see the error handler)
  function connect() {
    source = new EventSource("/blogs/" + encodeURIComponent(slug) + "/stream?last_event_id=" + encodeURIComponent(lastId));
    Object.keys(handlers).forEach(function (kind) {
      source.addEventListener(kind, function (message) {
        var data = JSON.parse(message.data);
        if (kind !== "snapshot" && data.version <= version) return; // seen already
        version = data.version;
        lastId = message.lastEventId || lastId;
        root.dataset.version = String(version);
        root.dataset.lastEventId = lastId;
        handlers[kind](data);
      });
    });
    source.addEventListener("open", function () {
      failures = 0;
      window.clearTimeout(lostTimer);
      lostTimer = null;
      if (connection.dataset.state === "lost") {
        connection.textContent = "Back online";
        connection.dataset.state = "back";
        window.setTimeout(function () { if (connection.dataset.state === "back") connection.hidden = true; }, 3000);
      }
    });
    source.addEventListener("error", function () {
      if (ended) return;
      if (source.readyState === EventSource.CLOSED) {
        // A non-200 answer (a 503 while Redis is down or the server is full, a 502 from a
        // proxy mid-deploy) makes the browser give up; we do not: we try again, from the
        // last id, but back off. The server asks 2 s (Redis down) or 5 to 15 s (full) in
        // Retry-After, which EventSource cannot read: 2.5-5 s, then twice as long each
        // failure (to 1-2 min), with jitter so that a crowd turned away does not come back
        // in step. An open resets it.
        var delay = Math.min(60000, 2500 * Math.pow(2, failures)) * (1 + Math.random());
        failures += 1;
        window.setTimeout(function () { if (!ended) connect(); }, delay);
      }
      // Say so only if it lasts: a quick reconnect needs no banner. Failed attempts come
      // every few seconds; the first one starts the clock, an open stops it.
      if (lostTimer) return;
      lostTimer = window.setTimeout(function () {
        connection.hidden = false;
        connection.textContent = "Connection lost, reconnecting…";
        connection.dataset.state = "lost";
      }, 1500);
    });
  }

  // -- older updates -------------------------------------------------------------------------
  var older = document.getElementById("load-older");
  function setOlder(before) {
    if (!older) return;
    nextBefore = before;
    older.hidden = !before;
    if (before) older.href = "/blogs/" + slug + "?before=" + encodeURIComponent(before);
  }
  function loadOlder() {
    if (!nextBefore) return Promise.resolve(false);
    return fetch("/api/blogs/" + encodeURIComponent(slug) + "?limit=20&before=" + encodeURIComponent(nextBefore))
      .then(function (r) { return r.json(); })
      .then(function (page) {
        page.entries.forEach(function (e) {
          if (gone[e.id] || document.getElementById("entry-" + e.id)) return;
          var newer = latest[e.id];
          entries.appendChild(entryEl(newer && newer.revision > e.revision ? newer : e));
        });
        setOlder(page.next_before);
        return true;
      });
  }
  if (older) older.addEventListener("click", function (event) { event.preventDefault(); loadOlder(); });

  // A permalink to an older entry: load pages until it is here, then go to it.
  function reveal(tries) {
    var id = location.hash.slice(1);
    if (!/^entry-/.test(id)) return;
    var target = document.getElementById(id);
    if (target) { target.scrollIntoView(); return; }
    if (tries > 0) loadOlder().then(function (more) { if (more) reveal(tries - 1); });
  }
  if (!single) window.addEventListener("hashchange", function () { reveal(25); });

  localTimes(document);
  window.setInterval(function () { refreshRelative(document); }, 30000);
  if (!single) reveal(25);
  // Even an ended blog connects: a late correction or retraction must still arrive. Once
  // this page has had a message, a reconnect that is up to date gets 204 and stops.
  connect();
})();
