"""A blog's feeds (issue 11): Atom 1.0 at /blogs/{slug}/feed.atom and JSON Feed 1.1 at
/blogs/{slug}/feed.json, for apps and aggregators.

Both list the newest LIVEBLOG_FEED_ENTRIES public entries, newest first, each as the reader
page shows it (public_blog: retracted entries are absent, and so is whatever else is not
public), with its permalink (the update's own page) as its id: an edit keeps the id and
moves `updated`, a retraction drops the item, which is how a feed says both. The Atom
document is written by feedgenerator (Django's), the JSON one from msgspec Structs: no markup is put
together here by hand. Like the reader page, a feed is the same for everyone, so a cache
may hold it briefly and revalidate with either validator (caching.py).
"""

from __future__ import annotations

import mimetypes
import re
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec
from feedgenerator import Atom1Feed
from starlette.requests import Request
from starlette.responses import Response

from liveblog.domain.views import PublicBlog, PublicEntry, public_blog
from liveblog.markup import hhmm, plain, render
from liveblog.web.api import service_from
from liveblog.web.caching import cached, etag
from liveblog.web.pages import picture
from liveblog.web.requests import slug_from
from liveblog.web.viewcache import ViewCache

ATOM = "application/atom+xml"
JSON_FEED = "application/feed+json"
Kind = Literal["atom", "json"]
# Feeds by blog state, as the reader pages are (pages.py); polled by every feed reader.
_feeds: ViewCache[tuple[bytes, str]] = ViewCache(128, ttl=5)
# What XML 1.0 cannot carry at all, even escaped (C0 controls but tab and newlines, lone
# surrogates, U+FFFE/U+FFFF): a reporter's text with one would make the writer refuse the
# whole feed (it raises rather than write a document no reader could parse).
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Author(msgspec.Struct, frozen=True):
    name: str


class Attachment(msgspec.Struct, frozen=True):
    url: str
    mime_type: str


class Item(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: str
    url: str
    title: str
    content_html: str
    date_published: datetime
    date_modified: datetime
    authors: list[Author]
    image: str | None = None
    attachments: list[Attachment] | None = None


class JsonFeed(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/)."""

    version: str
    title: str
    home_page_url: str
    feed_url: str
    language: str
    description: str | None = None
    items: list[Item]


class Shown(msgspec.Struct, frozen=True, kw_only=True):
    """One entry as both feeds carry it."""

    url: str
    title: str
    html: str
    author: str
    image: str | None
    image_type: str | None


async def atom_feed(request: Request) -> Response:
    return await _feed(request, "atom")


async def json_feed(request: Request) -> Response:
    return await _feed(request, "json")


async def _feed(request: Request, kind: Kind) -> Response:
    slug = slug_from(request)
    state = await service_from(request).blog(slug)
    config = request.state.config
    key = (kind, config.public_url, state.last_event_id, config.feed_entries)
    found = _feeds.get(key)
    if found is None:
        blog = public_blog(state, limit=config.feed_entries)
        body = (atom if kind == "atom" else json)(blog, config.public_url)
        found = body, etag(state.version, body)
        _feeds.put(key, found)
    return cached(request, *found, media_type=ATOM if kind == "atom" else JSON_FEED,
                  changed=state.updated_at)


class _Atom(Atom1Feed):  # type: ignore[misc]  # feedgenerator is untyped
    """feedgenerator's Atom 1.0 writer, with two things said our way: the feed's `updated`
    is the blog's (it would take the newest item's, and for no item the time of the
    request, so an empty blog's feed would never revalidate), and an entry's picture is a
    link rel=enclosure whose type is given only when the URL tells it (its own enclosures
    must state a length in bytes, which we do not know)."""

    def latest_post_date(self) -> datetime:
        updated: datetime = self.feed["updated"]
        return updated

    def add_item_elements(self, handler: Any, item: dict[str, Any]) -> None:
        super().add_item_elements(handler, item)
        shown: Shown = item["shown"]
        if shown.image is not None:
            handler.addQuickElement("link", "", {
                "rel": "enclosure", "href": shown.image,
                **({"type": shown.image_type} if shown.image_type else {})})


def atom(blog: PublicBlog, base: str) -> bytes:
    page = f"{base}/blogs/{blog.slug}"
    feed = _Atom(
        title=_xml(blog.title), link=page, description=None,
        subtitle=_xml(blog.description) or None, language="en", feed_guid=page,
        feed_url=f"{page}/feed.atom", updated=blog.updated_at)
    for e in blog.entries:
        shown = _shown(e, blog.slug, base)
        feed.add_item(
            title=_xml(shown.title), link=shown.url, unique_id=shown.url, description=None,
            content=_xml(shown.html), author_name=_xml(shown.author),
            pubdate=e.posted_at, updateddate=e.updated_at, shown=shown)
    document: str = feed.writeString("utf-8")
    return document.encode()


def json(blog: PublicBlog, base: str) -> bytes:
    page = f"{base}/blogs/{blog.slug}"
    items = []
    for e in blog.entries:
        shown = _shown(e, blog.slug, base)
        attachments = None
        if shown.image is not None and shown.image_type is not None:
            attachments = [Attachment(shown.image, shown.image_type)]
        items.append(Item(
            id=shown.url, url=shown.url, title=shown.title, content_html=shown.html,
            date_published=e.posted_at, date_modified=e.updated_at,
            authors=[Author(shown.author)], image=shown.image, attachments=attachments))
    return msgspec.json.encode(JsonFeed(
        version="https://jsonfeed.org/version/1.1", language="en", title=blog.title,
        home_page_url=page, feed_url=f"{page}/feed.json",
        description=blog.description or None, items=items))


def _shown(e: PublicEntry, slug: str, base: str) -> Shown:
    image = picture(e, base)
    guessed = mimetypes.guess_type(urlsplit(image).path)[0] if image else None
    return Shown(
        url=f"{base}/blogs/{slug}/entries/{e.id}",
        # An update without a title is named by its first words, as its own page is.
        title=e.title or plain(e, 80) or f"Update at {hhmm(e.posted_at)}",
        html=render("_feed_entry.html", e=e, image=image).strip(),
        # The byline once entries carry one (issue 10), the account's name until then.
        author=getattr(e, "author_name", None) or e.author,
        image=image,
        image_type=guessed if guessed and guessed.startswith("image/") else None,
    )


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)
