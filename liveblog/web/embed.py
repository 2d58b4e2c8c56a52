"""The embed (issue 11): a blog in another site's page.

That site pastes one line (api.py's `snippet`, which GET /api/blogs/{slug}/embed gives the
console); static/embed.js, run there, puts the blog's embed page (`embed_page`,
templates/embed.html: the reader page made compact, live through the same stream) in an
iframe after the script, and keeps the iframe as tall as the page says it is
(static/embedded.js posts its height; embed.js believes only that frame, from this
origin). Only the embed page may be framed by other sites, and only by those
LIVEBLOG_EMBED_ORIGINS names (its CSP frame-ancestors; any, by default); every other page
refuses to be framed (headers.py)."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from liveblog.domain.views import public_blog
from liveblog.markup import render
from liveblog.web.api import service_from
from liveblog.web.caching import cached, etag
from liveblog.web.headers import content_security_policy
from liveblog.web.requests import slug_from
from liveblog.web.viewcache import ViewCache

# Updates the embed shows (the newest); its "Full coverage" link leads to the rest. Live
# ones are added above them, as on the reader page.
EMBED_ENTRIES = 10
# Embed pages by blog state, with their ETags, kept as long as a cache may keep them
# (relative times age), as the reader page's are (pages.py).
_pages: ViewCache[tuple[bytes, str]] = ViewCache(64, ttl=5)


@lru_cache(maxsize=4)
def policy(origins: str) -> str:
    """The embed page's Content-Security-Policy: the reader page's, framed by `origins`
    (Config.embed_origins: "*", or "'self'" and origins)."""
    return content_security_policy(origins)


async def embed_page(request: Request) -> Response:
    slug = slug_from(request)
    state = await service_from(request).blog(slug)
    config = request.state.config
    canonical = f"{config.public_url}/blogs/{slug}"
    key = (canonical, state.last_event_id)
    found = _pages.get(key)
    if found is None:
        blog = public_blog(state, limit=EMBED_ENTRIES)
        html = render("embed.html", blog=blog, canonical=canonical,
                      site=urlsplit(config.public_url).netloc).encode()
        found = html, etag(state.version, html)
        _pages.put(key, found)
    # The same for everyone, like the reader page: a CDN may hold it briefly (caching.py).
    return cached(request, *found, media_type="text/html; charset=utf-8",
                  headers={"Content-Security-Policy": policy(config.embed_origins)})
