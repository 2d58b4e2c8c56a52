"""The HTML pages. Reader pages are rendered on the server and work without JavaScript,
then stay live through the stream (static/live.js). The newsroom console and the replay are
shells whose data comes from the API with the editor's session cookie (static/newsroom.js,
static/replay.js); the replay's frames are reader pages rendered at a past event.

Every page's Content-Security-Policy comes from headers.py; one that may be framed says
by whom here (its frame-ancestors), and every other page may be framed by no one."""

from __future__ import annotations

from typing import Any, get_args
from urllib.parse import urlencode

import msgspec
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from liveblog.domain.commands import require_editor
from liveblog.domain.events import Event
from liveblog.domain.state import Blog
from liveblog.domain.urls import absolute, image_src
from liveblog.domain.views import (
    DEFAULT_PAGE,
    MAX_PAGE,
    PublicBlog,
    PublicEntry,
    public_blog,
    public_entry,
)
from liveblog.domain.webhooks import EVENT_KINDS
from liveblog.errors import FieldError, InvalidInput, NotFound
from liveblog.markup import iso, plain, render
from liveblog.web.api import service_from
from liveblog.web.caching import READER_CACHE, cached, etag
from liveblog.web.headers import CONSOLE_CSS, CONSOLE_POLICY, SAME_ORIGIN_FRAMES
from liveblog.web.requests import (
    authenticate,
    entry_id_from,
    query_entry_id,
    query_event_id,
    query_slug,
    slug_from,
)
from liveblog.web.viewcache import ViewCache

# A cached copy is fine for a few seconds: the page resumes its stream from the event it
# was rendered at, so it catches up the moment it opens.
PAGE_CACHE = "public, max-age=5"
# Reader pages by blog state, with their ETags (caching.py), kept as long as a cache may
# keep them without asking (relative times age); about 80 KB each for a big blog.
_pages: ViewCache[tuple[bytes, str]] = ViewCache(64, ttl=5)
# Update pages (issue 10), with their status: 200, or 410 for a withdrawn update.
_entry_pages: ViewCache[tuple[bytes, str, int]] = ViewCache(256, ttl=5)
# The kinds of message a blog's stream sends (a snapshot, then each event by its kind): the
# console listens for each without a list of its own to fall behind the server's.
STREAM_KINDS = ("snapshot", *(t.__struct_config__.tag for t in get_args(Event)))
# The console's pages: their CSS (the readers' and the console's) and its policy.
_CONSOLE = {"css": Markup(CONSOLE_CSS)}
_CONSOLE_HEADERS = {"Cache-Control": "no-store", "Content-Security-Policy": CONSOLE_POLICY}


def picture(entry: PublicEntry, base: str) -> str | None:
    """The entry's image as a whole URL (a path on this site joined to the public URL), for
    readers elsewhere: a search engine, another site's preview card. None if it has none
    a browser can show."""
    if entry.image is None or image_src(entry.image.url) is None:
        return None
    return absolute(entry.image.url, base)


def share_image(blog: PublicBlog, base: str) -> str | None:
    """og:image: the pinned update's picture, else the newest one on the page."""
    for entry in ([blog.pinned] if blog.pinned else []) + blog.entries:
        if (found := picture(entry, base)) is not None:
            return found
    return None


def corrections_ld(entry: PublicEntry) -> list[dict[str, str]]:
    """schema.org's CreativeWork.correction, as CorrectionComment items (oldest first)."""
    return [{"@type": "CorrectionComment", "text": c.text, "datePublished": iso(c.at)}
            for c in entry.corrections]


def json_ld(blog: PublicBlog, url: str, base: str) -> Markup:
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "LiveBlogPosting",
        "headline": blog.title,
        "description": blog.description or blog.title,
        "url": url,
        "datePublished": iso(blog.opened_at),
        "dateModified": iso(blog.updated_at),
        "coverageStartTime": iso(blog.opened_at),
        "liveBlogUpdate": [update_ld(e, f"{url}#entry-{e.id}", base) for e in blog.entries],
    }
    if blog.ended_at is not None:
        data["coverageEndTime"] = iso(blog.ended_at)
    return ld_markup(data)


def update_ld(e: PublicEntry, url: str, base: str) -> dict[str, Any]:
    """One update as a schema.org BlogPosting: an item of the blog's liveBlogUpdate, and
    the whole of the update's own page."""
    return {
        "@type": "BlogPosting",
        "headline": e.title or plain(e),
        "datePublished": iso(e.posted_at),
        "dateModified": iso(e.updated_at),
        "url": url,
        "articleBody": plain(e, 5000),
        "author": {"@type": "Person", "name": e.author_name},
        **({"image": image} if (image := picture(e, base)) else {}),
        **({"correction": corrections_ld(e)} if e.corrections else {}),
    }


def entry_ld(blog: Blog, e: PublicEntry, url: str, base: str) -> Markup:
    data = {"@context": "https://schema.org", **update_ld(e, url, base),
            "isPartOf": {"@type": "LiveBlogPosting", "headline": blog.title,
                         "url": f"{base}/blogs/{blog.slug}"}}
    return ld_markup(data)


def ld_markup(data: dict[str, Any]) -> Markup:
    # "</script>" inside a string must not end the element.
    return Markup(msgspec.json.encode(data).decode().replace("<", "\\u003c"))


def oembed_url(page: str, base: str) -> str:
    """The oEmbed endpoint's answer for `page` (oembed.py), as a page names it."""
    return f"{base}/oembed?" + urlencode({"url": page, "format": "json"})


async def home(request: Request) -> Response:
    # A page of blogs, the most recently opened first (the list used to read every blog,
    # and every blog's every entry revision, on each visit).
    before = query_slug(request, "before")
    page = await service_from(request).list_blogs(limit=DEFAULT_PAGE, before=before)
    base = request.state.config.public_url
    html = render("home.html", blogs=page.blogs, next_before=page.next_before,
                  older=before is not None, canonical=f"{base}/")
    return HTMLResponse(html, headers={"Cache-Control": PAGE_CACHE})


async def blog_page(request: Request) -> Response:
    slug = slug_from(request)
    before = query_entry_id(request, "before")
    state = await service_from(request).blog(slug)
    base = request.state.config.public_url
    canonical = f"{base}/blogs/{slug}"
    key = (canonical, state.last_event_id, before)
    found = _pages.get(key)
    if found is None:
        blog = public_blog(state, limit=DEFAULT_PAGE, before=before)
        html = render("blog.html", blog=blog, canonical=canonical,
                      ld=json_ld(blog, canonical, base), image=share_image(blog, base),
                      older=before is not None, oembed=oembed_url(canonical, base)).encode()
        found = html, etag(state.version, html)
        _pages.put(key, found)
    # The same for everyone, signed in or not: a CDN may hold it briefly (caching.py).
    # The newsroom shows the reader page in a frame; other sites may not (clickjacking).
    return cached(request, *found, media_type="text/html; charset=utf-8",
                  headers={"Content-Security-Policy": SAME_ORIGIN_FRAMES})


async def entry_page(request: Request) -> Response:
    """One update alone, the page a share links to: its own title, picture and canonical
    URL for the preview card, the blog's title linking back to it in the blog, and live
    for that one update (live.js in its entry mode: edits, corrections, a retraction).
    A retracted update answers 410 Gone with a withdrawn notice: the URL was shared and
    people will follow it, so it says what happened rather than that nothing is there."""
    slug = slug_from(request)
    entry_id = entry_id_from(request)
    state = await service_from(request).blog(slug)
    base = request.state.config.public_url
    canonical = f"{base}/blogs/{slug}/entries/{entry_id}"
    key = (canonical, state.last_event_id)
    found = _entry_pages.get(key)
    if found is None:
        found = await _render_entry_page(request, state, entry_id, canonical, base)
        _entry_pages.put(key, found)
    html, tag, status = found
    if status == 200:
        return cached(request, html, tag, media_type="text/html; charset=utf-8")
    # Withdrawn for good (the log is append-only): a cache may keep saying so.
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": READER_CACHE})


async def _render_entry_page(request: Request, state: Blog, entry_id: str, canonical: str,
                             base: str) -> tuple[bytes, str, int]:
    live = state.entries.get(entry_id)
    if live is not None:
        e = public_entry(live, state)
        html = render("entry.html", blog=state, e=e, canonical=canonical,
                      ld=entry_ld(state, e, canonical, base), image=picture(e, base),
                      share_title=e.title or plain(e, 70), share_text=plain(e, 200),
                      blog_url=f"{base}/blogs/{state.slug}",
                      oembed=oembed_url(canonical, base)).encode()
        return html, etag(state.version, html), 200
    if entry_id not in state.retracted:
        raise NotFound(f"blog {state.slug!r} has no entry {entry_id!r}")
    # Not the reason: it is written for the newsroom's record (a legal one, often) and stays
    # in the editors' history and replay; readers learn only that the update was withdrawn.
    html = render("entry.html", blog=state, e=None, canonical=canonical).encode()
    return html, etag(state.version, html), 410


async def newsroom(request: Request) -> Response:
    slug = request.path_params.get("slug")
    if slug is not None:
        slug_from(request)
    base = request.state.config.public_url
    html = render("newsroom.html", slug=slug, canonical=f"{base}/newsroom",
                  stream_kinds=STREAM_KINDS, webhook_kinds=EVENT_KINDS, public_url=base,
                  presence_beat=request.state.presence.beat_seconds, **_CONSOLE)
    return HTMLResponse(html, headers=_CONSOLE_HEADERS)


async def replay_page(request: Request) -> Response:
    slug = slug_from(request)
    base = request.state.config.public_url
    html = render("replay.html", slug=slug, canonical=f"{base}/blogs/{slug}/replay",
                  **_CONSOLE)
    return HTMLResponse(html, headers=_CONSOLE_HEADERS)


async def replay_frame(request: Request) -> Response:
    """The reader page exactly as it stood right after an event (editors: it may show what
    was later retracted). Static: no script, times as they read at that moment."""
    slug = slug_from(request)
    actor = await authenticate(request)
    require_editor(actor, "replay the blog")
    at = query_event_id(request, "at", versions=True)
    if at is None:
        raise InvalidInput([FieldError("at", "required: an event id or a version number")])
    state = await service_from(request).blog_at(slug, at)
    blog = public_blog(state, limit=MAX_PAGE)
    base = request.state.config.public_url
    canonical = f"{base}/blogs/{slug}"
    html = render("blog.html", blog=blog, canonical=canonical,
                  ld=json_ld(blog, canonical, base), image=share_image(blog, base),
                  older=False, moment=state.updated_at, frozen=True)
    return HTMLResponse(html, headers={"Cache-Control": "no-store",
                                       "Content-Security-Policy": SAME_ORIGIN_FRAMES})
