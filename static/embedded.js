// The embed page's own script (templates/embed.html), beside static/live.js, which keeps it
// live as it keeps the reader page. In another site's iframe (static/embed.js) it tells
// the host how tall this document is whenever that changes, so the iframe can be exactly
// as tall (no scrollbar of its own). And it points in-page links (an update's time,
// "#entry-ID") at the reader page: every link here opens in the top window
// (<base target="_top">), where this page's own URL would be a dead end.
(function () {
  "use strict";
  var root = document.getElementById("blog");
  if (!root) return;
  var slug = root.dataset.slug;
  var reader = root.dataset.reader;

  function retarget() {
    root.querySelectorAll('a[href^="#"]').forEach(function (a) {
      a.setAttribute("href", reader + a.getAttribute("href"));
    });
  }

  var framed = window.parent !== window; // else opened on its own: no host to tell
  var told = 0;
  function tell() {
    if (!framed) return;
    // The root element's box, not scrollHeight: that is never less than the iframe's own
    // height, so a page that got shorter (a retraction) could never say so.
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height === told) return;
    told = height;
    // A public page's height: nothing to keep from anyone, so any host may hear it ("*");
    // the host's script checks that it comes from this origin and this frame.
    window.parent.postMessage({ type: "liveblog:height", slug: slug, height: height }, "*");
  }

  retarget();
  // Entries that arrive live bring their own links (only added and removed nodes are
  // watched, so the rewrite does not wake this again). And the height is told from here
  // too: Chromium does not render a frame from another site while it is out of view, so
  // its ResizeObserver waits until the reader scrolls back to it; measuring forces the
  // layout, and the host, told at once, grows the iframe while the reader is below it,
  // where the host's scroll anchoring keeps what they read still.
  new MutationObserver(function () { retarget(); tell(); })
    .observe(root, { childList: true, subtree: true, characterData: true });
  // Everything else that changes the height: the width (the host's column), pictures.
  if (window.ResizeObserver) new ResizeObserver(tell).observe(document.documentElement);
  else window.setInterval(tell, 500);
  tell();
})();
