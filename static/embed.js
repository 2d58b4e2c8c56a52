// liveblog embed, for other sites' pages. The one line the console shows,
//   <script async src="https://live.example/static/embed.js" data-liveblog="SLUG"></script>
// puts the blog's embed page (/blogs/SLUG/embed, from this script's own origin) in an
// iframe right after the script, and keeps the iframe as tall as that page: the page posts
// {type: "liveblog:height", slug, height} whenever its height changes (static/embedded.js),
// and only a message from that very iframe, from this script's origin, is believed.
//
// No layout shift above the embed: the iframe is in place at once, at a reserved height
// (data-height="800" on the script, else DEFAULT_HEIGHT), then takes its content's height
// and grows as updates arrive, moving only what is below it; while the reader is below the
// embed, the browser's scroll anchoring keeps what they read still (tests/test_embed.py).
// Plain JavaScript, nothing global: it runs on other people's pages.
(function () {
  "use strict";
  var SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/; // commands.py SLUG_PATTERN
  var DEFAULT_HEIGHT = 600;
  var MAX_HEIGHT = 100000; // px: a sane bound on what a message may ask for
  var DONE = "data-liveblog-embedded";

  function embed(script) {
    if (script.hasAttribute(DONE)) return;
    script.setAttribute(DONE, "");
    var slug = script.getAttribute("data-liveblog") || "";
    if (!SLUG.test(slug) || !script.src) {
      if (window.console) console.warn("liveblog embed: data-liveblog is not a blog's slug: " + slug);
      return;
    }
    var origin = new URL(script.src).origin;
    var reserved = Number(script.getAttribute("data-height"));
    if (!(reserved >= 100 && reserved <= MAX_HEIGHT)) reserved = DEFAULT_HEIGHT;

    var frame = document.createElement("iframe");
    frame.src = origin + "/blogs/" + slug + "/embed";
    frame.title = script.getAttribute("data-title") || "Live blog: " + slug;
    frame.loading = "lazy"; // its height is reserved: loading later moves nothing
    frame.setAttribute("data-liveblog-frame", slug);
    // Properties, not a style attribute: a host page's CSP may refuse inline styles.
    frame.style.display = "block";
    frame.style.width = "100%";
    frame.style.border = "0";
    frame.style.height = reserved + "px";
    script.parentNode.insertBefore(frame, script.nextSibling);

    window.addEventListener("message", function (event) {
      if (event.origin !== origin || event.source !== frame.contentWindow) return;
      var data = event.data;
      if (!data || data.type !== "liveblog:height" || data.slug !== slug) return;
      var height = Math.ceil(Number(data.height));
      if (!(height > 0 && height <= MAX_HEIGHT)) return;
      frame.style.height = height + "px";
    });
  }

  // An async script runs whenever it arrives: document.currentScript is this one where
  // browsers set it; elsewhere, every snippet on the page not yet handled.
  var current = document.currentScript;
  if (current && current.hasAttribute("data-liveblog")) embed(current);
  else [].forEach.call(document.querySelectorAll("script[data-liveblog]"), embed);
})();
