"""The public shapes of a blog: what readers (and the API) see.

Retracted entries are absent; each entry carries its sanitized HTML. The same shapes serve
`GET /api/blogs/{slug}`, the state at an event for editors, and (later) the reader stream.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from liveblog.domain.events import (
    BlogOpened,
    BlogUpdated,
    BylineChanged,
    Embed,
    EntryEdited,
    EntryPosted,
    EntryPublished,
    EntryRejected,
    EntryRetracted,
    EntryScheduled,
    FactUpdated,
    Image,
    PinChanged,
    Recorded,
    Status,
    kind,
)
from liveblog.domain.render import render_markdown
from liveblog.domain.state import Blog, Correction, Entry, Fact, FactPoint, Workflow
from liveblog.errors import NotFound

DEFAULT_PAGE = 20
MAX_PAGE = 100
# The points of a figure's history that travel with it (stream messages, snapshots, the
# public state, pages): the newest ones, enough for the page's sparkline, which is 120 px
# wide, so 60 points are 2 px apart and more would not show. The whole history used to
# ride along: 3,000 updates of one figure made every fact-updated message 280 KB, to every
# reader. The rest is one request away: GET /api/blogs/{slug}/facts/{key}/history.
FACT_HISTORY_POINTS = 60
HISTORY_PAGE = 500


class PublicEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    # The author's token name, and the byline readers see (their display name).
    author: str
    author_name: str
    title: str | None
    body: str
    html: str
    key_event: bool
    image: Image | None
    embed: Embed | None
    posted_at: datetime
    updated_at: datetime
    revision: int
    # The blog's version when it was posted: the log's order, which times (to the
    # millisecond, and shared by writes in the same one) cannot always tell.
    posted_version: int
    # Corrections readers see under the entry, oldest first (plain text, not Markdown).
    corrections: list[Correction]


class NewsroomEntry(PublicEntry, frozen=True, kw_only=True):
    """An entry as the newsroom sees it (API responses, the queue): where it stands in the
    workflow, besides what readers see once it is published."""

    state: Workflow
    # A scheduled entry's time; null otherwise.
    publish_at: datetime | None
    # When it was written (posted_at: when readers got it, or will; for an unpublished
    # entry, when it was written too).
    created_at: datetime
    # The author's identity (null for entries logged before identities were).
    author_id: str | None
    # Why it was rejected; null otherwise.
    reason: str | None


class Queue(msgspec.Struct, frozen=True, kw_only=True):
    """GET /api/blogs/{slug}/queue: the unpublished entries one may see, scheduled ones
    first (soonest first), then the others newest first."""

    entries: list[NewsroomEntry]


class PublicFact(msgspec.Struct, frozen=True, kw_only=True):
    """A key figure, with the newest FACT_HISTORY_POINTS values of its history."""

    key: str
    label: str
    value: str
    numeric: float | None
    source: str | None
    updated_at: datetime
    # The newest values it had, oldest first: at most FACT_HISTORY_POINTS of them.
    history: list[FactPoint]
    # How many values it has had in all (history holds the last of them).
    history_total: int


class FactHistory(msgspec.Struct, frozen=True, kw_only=True):
    """A page of a figure's whole history, oldest first."""

    key: str
    label: str
    total: int
    # The position (0 = its first value) of points[0].
    start: int
    points: list[FactPoint]
    # Pass as ?start= for the next page; null on the last.
    next_start: int | None


class KeyEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    title: str
    posted_at: datetime
    posted_version: int


class PublicBlog(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    title: str
    description: str
    status: Status
    version: int
    last_event_id: str
    opened_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    pinned_entry_id: str | None
    pinned: PublicEntry | None
    facts: list[PublicFact]
    key_events: list[KeyEvent]
    entries: list[PublicEntry]
    total_entries: int
    # Pass as ?before= to get the next (older) page; null on the last page.
    next_before: str | None


def public_entry(entry: Entry, blog: Blog, *,
                 markdown: Callable[[str], str] = render_markdown) -> PublicEntry:
    """`entry` as readers see it in `blog` (whose bylines say who signs it). `markdown`:
    the body's renderer; a preview's, typed once, skips the cache."""
    return PublicEntry(
        id=entry.id,
        author=entry.author,
        author_name=blog.author_name(entry),
        title=entry.title,
        body=entry.body,
        html=markdown(entry.body),
        key_event=entry.key_event,
        image=entry.image,
        embed=entry.embed,
        posted_at=entry.posted_at,
        updated_at=entry.updated_at,
        revision=entry.revision,
        posted_version=entry.posted_version,
        corrections=list(entry.corrections),
    )


def newsroom_entry(entry: Entry, blog: Blog) -> NewsroomEntry:
    public = public_entry(entry, blog)
    return NewsroomEntry(
        **{f: getattr(public, f) for f in public.__struct_fields__},
        state=entry.state, publish_at=entry.publish_at, created_at=entry.created_at,
        author_id=entry.author_id, reason=entry.reason)


def queue(blog: Blog, visible: Callable[[Entry], bool]) -> Queue:
    """The unpublished entries `visible` lets through (the roles' rules are the caller's)."""
    shown = [e for e in blog.unpublished.values() if visible(e)]
    scheduled = sorted((e for e in shown if e.publish_at is not None),
                       key=lambda e: (e.publish_at, e.posted_version))
    others = sorted((e for e in shown if e.publish_at is None),
                    key=lambda e: e.posted_version, reverse=True)
    return Queue(entries=[newsroom_entry(e, blog) for e in scheduled + others])


def public_fact(fact: Fact) -> PublicFact:
    # Costs the points it carries: the newest ones are read from the end of the history.
    newest = [point for _, point in
              itertools.islice(fact.history.newest(), FACT_HISTORY_POINTS)]
    newest.reverse()
    return PublicFact(
        key=fact.key,
        label=fact.label,
        value=fact.value,
        numeric=fact.numeric,
        source=fact.source,
        updated_at=fact.updated_at,
        history=newest,
        history_total=len(fact.history),
    )


def fact_history(blog: Blog, key: str, *, start: int = 0,
                 limit: int = HISTORY_PAGE) -> FactHistory:
    """Points start .. start + limit - 1 of a figure's history (NotFound: no such figure)."""
    fact = blog.facts.get(key)
    if fact is None:
        raise NotFound(f"blog {blog.slug!r} has no figure {key!r}")
    total = len(fact.history)
    end = min(start + limit, total)
    points = [fact.history.get(n) for n in range(start, end)]
    return FactHistory(
        key=fact.key, label=fact.label, total=total, start=start,
        points=[point for point in points if point is not None],
        next_start=end if end < total else None,
    )


def withdrawn(entry: PublicEntry) -> PublicEntry:
    """A retracted entry as a resumed stream may still name it: no words, no media."""
    return msgspec.structs.replace(entry, title=None, body="", html="", key_event=False,
                                   image=None, embed=None, corrections=[])


def public_blog(blog: Blog, *, limit: int = DEFAULT_PAGE, before: str | None = None) -> PublicBlog:
    """The blog as readers see it, with one page of entries, newest first.

    It costs the page, not the blog: a 5,000-entry blog reads 20 entries (and one more, to
    know whether there is a next page)."""
    cutoff = None if before is None else _posted_version(blog, before)
    page = list(itertools.islice(blog.entries.newest_first(cutoff), limit + 1))
    more = len(page) > limit
    del page[limit:]
    pinned = blog.entries.get(blog.pinned) if blog.pinned else None
    return PublicBlog(
        slug=blog.slug,
        title=blog.title,
        description=blog.description,
        status=blog.status,
        version=blog.version,
        last_event_id=blog.last_event_id,
        opened_at=blog.opened_at,
        updated_at=blog.updated_at,
        ended_at=blog.ended_at,
        pinned_entry_id=blog.pinned,
        pinned=public_entry(pinned, blog) if pinned else None,
        facts=[public_fact(f) for f in sorted(blog.facts.values(), key=lambda f: f.since)],
        key_events=[
            KeyEvent(id=e.id, title=e.title or "", posted_at=e.posted_at,
                     posted_version=e.posted_version)
            for e in blog.entries.key_events()
        ],
        entries=[public_entry(e, blog) for e in page],
        total_entries=len(blog.entries),
        next_before=page[-1].id if more and page else None,
    )


def _posted_version(blog: Blog, entry_id: str) -> int:
    entry = blog.entries.get(entry_id)
    if entry is not None:
        return entry.posted_version
    if entry_id in blog.retracted:
        return blog.retracted[entry_id]
    raise NotFound(f"blog {blog.slug!r} has no entry {entry_id!r} to page before")


# -- changes, as the reader stream sends them ------------------------------------------------


class EntryChange(msgspec.Struct, frozen=True, kw_only=True):
    """entry-posted and entry-edited: the entry as it now is."""

    version: int
    entry: PublicEntry


class EntryGone(msgspec.Struct, frozen=True, kw_only=True):
    """entry-retracted: which entry left, and the pin after it left."""

    version: int
    entry_id: str
    pinned_entry_id: str | None


class PinView(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    pinned_entry_id: str | None
    entry: PublicEntry | None


class BylineChange(msgspec.Struct, frozen=True, kw_only=True):
    """byline-changed: the entries (live, in posting order) that now show `author_name`.
    Their ids and the name only: no words, so a resumed stream replaying it can never
    bring back what was retracted since."""

    version: int
    author_name: str
    entry_ids: list[str]


class FactChange(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    fact: PublicFact


class BlogChange(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    title: str
    description: str
    status: Status
    ended_at: datetime | None


Change = EntryChange | EntryGone | PinView | FactChange | BlogChange | BylineChange


def stream_kind(rec: Recorded) -> str:
    """The stream message's `event:` name: the event's kind, except that a published
    entry reaches readers as a new one ("entry-posted")."""
    return "entry-posted" if isinstance(rec.event, EntryPublished) else kind(rec.event)


def change_view(rec: Recorded, after: Blog) -> Change | None:
    """What readers need to apply `rec`, given the state right after it (None: nothing,
    as for blog-opened, which no open page can precede, and for everything that happens
    to entries readers do not see: drafts, submissions, schedules, rejections)."""
    event = rec.event
    if isinstance(event, EntryPosted | EntryEdited | EntryPublished):
        entry = after.entries.get(event.entry_id)
        if entry is None:  # unpublished
            return None
        return EntryChange(version=after.version, entry=public_entry(entry, after))
    if isinstance(event, EntryRetracted):
        return EntryGone(version=after.version, entry_id=event.entry_id,
                         pinned_entry_id=after.pinned)
    if isinstance(event, PinChanged):
        pinned = after.entries.get(after.pinned) if after.pinned else None
        return PinView(version=after.version, pinned_entry_id=after.pinned,
                       entry=public_entry(pinned, after) if pinned else None)
    if isinstance(event, FactUpdated):
        return FactChange(version=after.version, fact=public_fact(after.facts[event.key]))
    if isinstance(event, BlogUpdated):
        return BlogChange(version=after.version, title=after.title,
                          description=after.description, status=after.status,
                          ended_at=after.ended_at)
    if isinstance(event, BylineChanged):
        # Every entry of the blog is looked at: a rename is rare, and readers need the
        # ids of that author's entries, which the state keeps by id only.
        return BylineChange(
            version=after.version, author_name=event.name,
            entry_ids=[entry.id for entry in after.entries.values()
                       if entry.author_id == event.author_id])
    return None


def summarize(rec: Recorded, before: Blog | None) -> str:
    """One line on what an event did, for timelines ("posted 'Blast in Tartus'")."""
    event = rec.event

    def entry_name(entry_id: str) -> str:
        entry = (before.entries.get(entry_id) or before.unpublished.get(entry_id)
                 if before else None)
        if entry is None:
            return entry_id
        return repr(entry.title) if entry.title else repr(_first_words(entry.body))

    match event:
        case BlogOpened():
            return f"opened the blog {event.title!r}"
        case BlogUpdated():
            parts = []
            if event.title is not None:
                parts.append(f"headline → {event.title!r}")
            if event.description is not None:
                parts.append("changed the description")
            if event.status == "ended":
                parts.append("ended the blog")
            elif event.status == "live":
                parts.append("reopened the blog")
            return "; ".join(parts) or "updated the blog"
        case EntryPosted():
            what = repr(event.title or _first_words(event.body)) + (
                " (key event)" if event.key_event else "")
            if event.workflow == "draft":
                return "wrote a draft " + what
            if event.workflow == "submitted":
                return "submitted " + what
            if event.workflow == "scheduled" and event.publish_at is not None:
                return f"scheduled {what} for {_when(event.publish_at)}"
            return "posted " + what
        case EntryPublished():
            return (f"published {entry_name(event.entry_id)}"
                    + (" on schedule" if event.scheduled else ""))
        case EntryRejected():
            return f"rejected {entry_name(event.entry_id)}" + (
                f": {event.reason}" if event.reason else "")
        case EntryScheduled():
            return f"scheduled {entry_name(event.entry_id)} for {_when(event.publish_at)}"
        case EntryEdited():
            return f"edited {entry_name(event.entry_id)}" + (
                f": {event.note}" if event.note else "") + (
                f" (correction: {event.correction})" if event.correction else "")
        case EntryRetracted():
            return f"retracted {entry_name(event.entry_id)}" + (
                f": {event.reason}" if event.reason else "")
        case PinChanged():
            return "unpinned" if event.entry_id is None else f"pinned {entry_name(event.entry_id)}"
        case FactUpdated():
            return f"{event.label}: {event.value}" + (f" ({event.source})" if event.source else "")
        case BylineChanged():
            old = before.bylines.get(event.author_id) if before else None
            return f"byline {old!r} → {event.name!r}" if old else f"byline → {event.name!r}"
    return rec.event.__class__.__name__  # pragma: no cover


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _first_words(text: str, limit: int = 60) -> str:
    words = " ".join(text.replace("*", "").replace("_", "").split())
    return words if len(words) <= limit else words[: limit - 1].rstrip() + "…"
