"""A blog's state, and the fold that builds it from the log.

`apply(blog, recorded)` returns a new Blog and never changes the one it was given, so a
state read at version N stays the state at version N (the replay depends on it). Dicts
inside a Blog are copied when they change, never mutated.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from liveblog.domain.events import (
    BlogOpened,
    BlogUpdated,
    Embed,
    EntryEdited,
    EntryPosted,
    EntryRetracted,
    FactUpdated,
    Image,
    PinChanged,
    Recorded,
    Status,
)
from liveblog.errors import LiveblogError


class CorruptLog(LiveblogError):
    """The log holds an event that cannot follow the ones before it."""


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    author: str
    body: str
    title: str | None
    key_event: bool
    image: Image | None
    embed: Embed | None
    posted_at: datetime
    updated_at: datetime
    revision: int
    # The blog version that posted it: entries sort by it, and paging keeps working
    # across retractions because retracted entries remember theirs.
    posted_version: int


class FactPoint(msgspec.Struct, frozen=True, kw_only=True):
    value: str
    numeric: float | None
    source: str | None
    at: datetime


class Fact(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    label: str
    value: str
    numeric: float | None
    source: str | None
    updated_at: datetime
    history: tuple[FactPoint, ...]


class Blog(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    title: str
    description: str
    status: Status
    version: int
    last_event_id: str
    opened_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    pinned: str | None
    facts: dict[str, Fact]
    # Live entries in posting order (oldest first); retracted ones leave this dict.
    entries: dict[str, Entry]
    # Retracted entry ids, with the version that had posted them.
    retracted: dict[str, int]


def apply(blog: Blog | None, rec: Recorded) -> Blog:
    """The state right after `rec`, given the state right before it."""
    expected = 1 if blog is None else blog.version + 1
    if rec.version != expected:
        raise CorruptLog(f"event {rec.id} has version {rec.version}, expected {expected}")
    event = rec.event
    if blog is None:
        if not isinstance(event, BlogOpened):
            raise CorruptLog(f"event {rec.id}: a blog's log must start with blog-opened")
        return Blog(
            slug=event.slug,
            title=event.title,
            description=event.description,
            status="live",
            version=rec.version,
            last_event_id=rec.id,
            opened_at=rec.at,
            updated_at=rec.at,
            ended_at=None,
            pinned=None,
            facts={},
            entries={},
            retracted={},
        )

    def advance(**changes: object) -> Blog:
        return msgspec.structs.replace(
            blog, version=rec.version, last_event_id=rec.id, updated_at=rec.at, **changes
        )

    match event:
        case BlogOpened():
            raise CorruptLog(f"event {rec.id}: blog {blog.slug!r} is already open")
        case BlogUpdated(title=title, description=description, status=status):
            ended_at = blog.ended_at
            if status == "ended" and blog.status != "ended":
                ended_at = rec.at
            elif status == "live":
                ended_at = None
            return advance(
                title=blog.title if title is None else title,
                description=blog.description if description is None else description,
                status=blog.status if status is None else status,
                ended_at=ended_at,
            )
        case EntryPosted():
            if event.entry_id in blog.entries or event.entry_id in blog.retracted:
                raise CorruptLog(f"event {rec.id}: entry {event.entry_id} exists already")
            entry = posted_entry(rec)
            return advance(entries={**blog.entries, entry.id: entry})
        case EntryEdited():
            old = _live_entry(blog, event.entry_id, rec)
            new = msgspec.structs.replace(
                old,
                body=event.body,
                title=event.title,
                key_event=event.key_event,
                image=event.image,
                embed=event.embed,
                updated_at=rec.at,
                revision=old.revision + 1,
            )
            return advance(entries={**blog.entries, new.id: new})
        case EntryRetracted():
            gone = _live_entry(blog, event.entry_id, rec)
            entries = dict(blog.entries)
            del entries[event.entry_id]
            return advance(
                entries=entries,
                retracted={**blog.retracted, gone.id: gone.posted_version},
                # A retracted entry cannot stay pinned: the pin would point at nothing.
                pinned=None if blog.pinned == event.entry_id else blog.pinned,
            )
        case PinChanged(entry_id=entry_id):
            if entry_id is not None:
                _live_entry(blog, entry_id, rec)
            return advance(pinned=entry_id)
        case FactUpdated():
            point = FactPoint(
                value=event.value, numeric=event.numeric, source=event.source, at=rec.at
            )
            previous = blog.facts.get(event.key)
            fact = Fact(
                key=event.key,
                label=event.label,
                value=event.value,
                numeric=event.numeric,
                source=event.source,
                updated_at=rec.at,
                history=(previous.history if previous else ()) + (point,),
            )
            return advance(facts={**blog.facts, fact.key: fact})
    raise CorruptLog(f"event {rec.id}: unknown event {event!r}")  # pragma: no cover


def posted_entry(rec: Recorded) -> Entry:
    """The entry an entry-posted event creates."""
    event = rec.event
    if not isinstance(event, EntryPosted):
        raise CorruptLog(f"event {rec.id} is not entry-posted")
    return Entry(
        id=event.entry_id,
        author=rec.actor,
        body=event.body,
        title=event.title,
        key_event=event.key_event,
        image=event.image,
        embed=event.embed,
        posted_at=rec.at,
        updated_at=rec.at,
        revision=1,
        posted_version=rec.version,
    )


def fold(events: Iterable[Recorded], blog: Blog | None = None) -> Blog | None:
    """Apply every event in order, starting from `blog` (None: an empty log)."""
    for rec in events:
        blog = apply(blog, rec)
    return blog


def _live_entry(blog: Blog, entry_id: str, rec: Recorded) -> Entry:
    entry = blog.entries.get(entry_id)
    if entry is None:
        raise CorruptLog(f"event {rec.id}: no live entry {entry_id}")
    return entry
