"""The oEmbed provider (issue 11): GET /oembed?url=<a blog's page>&format=json answers a
`rich` oEmbed 1.0 response whose html is the blog's embed page in an iframe, so pasting a
blog's URL into WordPress, or any other oEmbed consumer, embeds it live. The reader page
names this endpoint (its `application/json+oembed` alternate link), which is how consumers
that know nothing of liveblog find it.

The URL may be the reader page, the page of one of its updates (it embeds the whole blog:
an update's news goes on in the blog) or the embed page itself, at the public URL
(LIVEBLOG_PUBLIC_URL) or at the address the request came to, http or https alike. The
iframe always points at the public URL: it is what other sites will load, for as long as
they keep the snippet.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import SplitResult, urlsplit

import msgspec
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from liveblog.domain.commands import SLUG_PATTERN
from liveblog.errors import FieldError, FormatNotImplemented, InvalidInput, NotFound
from liveblog.service import Service
from liveblog.web.caching import cached, etag
from liveblog.web.requests import query_int

# The iframe's size when the consumer sets no maximum: a column of a news site's article.
WIDTH = 640
HEIGHT = 800
# Nothing a browser shows is wider or taller; the number only has to stay a number.
MAX_SIZE = 10_000
# Longer than any URL of a blog here (a slug is at most 64 characters, an entry id 64).
MAX_URL = 2048
FORMATS = ("json", "xml")
PROVIDER = "liveblog"
_PAGE = re.compile(r"/blogs/(?P<slug>[^/]+)(?:/entries/[^/]+|/embed)?/?")
_SLUG = re.compile(SLUG_PATTERN)
_DEFAULT_PORT = {"http": 80, "https": 443}


class OEmbed(msgspec.Struct, frozen=True, kw_only=True):
    """A rich oEmbed 1.0 response (https://oembed.com/, 2.3.4)."""

    type: Literal["rich"] = "rich"
    version: Literal["1.0"] = "1.0"
    title: str
    provider_name: str
    provider_url: str
    # The iframe of the blog's embed page, to put in the consumer's page as it is.
    html: str
    width: int
    height: int


async def oembed(request: Request) -> Response:
    form = request.query_params.get("format", "json")
    if form not in FORMATS:
        raise InvalidInput([FieldError("format", "must be json (or xml, which is not served)")])
    url = request.query_params.get("url")
    if not url:
        raise InvalidInput([FieldError("url", "required: the address of a blog's page here")])
    if len(url) > MAX_URL:
        raise InvalidInput([FieldError("url", f"must be at most {MAX_URL} characters")])
    width = min(WIDTH, query_int(request, "maxwidth", WIDTH, 1, MAX_SIZE))
    height = min(HEIGHT, query_int(request, "maxheight", HEIGHT, 1, MAX_SIZE))
    # Only a request that is well formed hears that its format is not served.
    if form != "json":
        raise FormatNotImplemented("only format=json is served; there is no XML oEmbed here")
    base: str = request.state.config.public_url
    slug = blog_slug(url, [base, str(request.base_url)])
    if slug is None:
        raise NotFound("not the address of a blog here: expected "
                       f"{base}/blogs/<slug> (or the page of one of its updates)")
    service: Service = request.state.service
    blog = await service.blog(slug)
    src = f"{base}/blogs/{slug}/embed"
    html = Markup('<iframe src="{}" width="{}" height="{}" title="{}" loading="lazy" '
                  'style="border:0"></iframe>').format(src, width, height, blog.title)
    body = msgspec.json.encode(OEmbed(
        title=blog.title, provider_name=PROVIDER, provider_url=f"{base}/", html=str(html),
        width=width, height=height))
    # Public, and the same for whoever asks: cached like the reader page it embeds.
    return cached(request, body, etag(blog.version, body), media_type="application/json")


def blog_slug(url: str, sites: list[str]) -> str | None:
    """The slug of the blog whose page `url` is, on one of `sites` (base URLs, a path
    kept), or None if it names no blog page there. Whether the blog exists is not asked."""
    try:
        given = urlsplit(url.strip())
        origin = _origin(given)
    except ValueError:
        return None
    for site in sites:
        here = urlsplit(site)
        if origin is None or origin != _origin(here):
            continue
        prefix = here.path.rstrip("/")
        if not given.path.startswith(prefix + "/"):
            continue
        found = _PAGE.fullmatch(given.path[len(prefix):])
        if found and _SLUG.fullmatch(found["slug"]):
            return found["slug"]
    return None


def _origin(parts: SplitResult) -> tuple[str, int | None] | None:
    """Host and port, the scheme's own port left out, so that http:// and https:// of one
    host are one site (a reader may paste either); None for what is not http(s)."""
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORT or not parts.hostname:
        return None
    port = parts.port  # ValueError for a port that is not one
    return parts.hostname.lower(), None if port == _DEFAULT_PORT[scheme] else port
