"""A blog's state, and the fold that builds it from the log.

`apply(blog, recorded)` returns a new Blog and never changes the one it was given, so a
state read at version N stays the state at version N (the replay depends on it). The
collections inside a Blog are persistent (immutables.Map, SparseVector): an event copies
only the path to what it changes, O(log n), and shares the rest with the state before it.
A dict copied per event made folding 32,000 entries take seconds; states at many versions
(checkpoints, the replay) now cost little more than one. Like events, the Structs here are
built bottom-up and never changed, so they cannot form cycles: gc=False keeps the garbage
collector from walking every entry of every blog in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Literal

import immutables
import msgspec

from liveblog.domain.events import (
    Actor,
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
    Event,
    FactUpdated,
    Image,
    PinChanged,
    Recorded,
    Status,
)
from liveblog.domain.persistent import SparseVector

# CorruptLog lives in the errors tree; re-exported because the log's readers (live.py)
# know it as the fold's error.
from liveblog.errors import CorruptLog as CorruptLog


class Correction(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A correction shown to readers under its entry: when it was made, and what it says."""

    at: datetime
    text: str


# Where an entry stands in the newsroom's workflow; readers see "published" ones only.
Workflow = Literal["draft", "submitted", "scheduled", "published", "rejected"]


class Entry(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    id: str
    author: str
    # The author's identity (Actor.id); None when the log did not record it (entries
    # posted before it did): then only editors may change the entry.
    author_id: str | None
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
    # Oldest first; an entry gets a few at most, so a tuple copied per correction is cheap.
    corrections: tuple[Correction, ...] = ()
    # When it was written (posted_at is when readers got it: its publishing).
    created_at: datetime
    state: Workflow = "published"
    # A scheduled entry's time, and who set it (the scheduled publishing is theirs).
    publish_at: datetime | None = None
    scheduled_by: Actor | None = None
    # Why it was rejected.
    reason: str | None = None


class FactPoint(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    value: str
    numeric: float | None
    source: str | None
    at: datetime


class Fact(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    key: str
    label: str
    value: str
    numeric: float | None
    source: str | None
    updated_at: datetime
    # Every value it had, oldest first. Persistent: a figure updated 3,000 times would
    # otherwise copy a 3,000-point tuple per update. Views turn it into a list.
    history: SparseVector[FactPoint]
    # The version that first set it: figures are shown in the order they first appeared.
    since: int


def _is_key_event(entry: Entry) -> bool:
    return entry.key_event and bool(entry.title)


class Entries(Mapping[str, Entry]):
    """A blog's live entries by id, iterated in posting order (oldest first).

    Persistent: `posted`, `edited` and `without` return new Entries in O(log n) and leave
    this one as it was. The order is kept by each entry's posted_version, so a page of the
    newest entries, or those posted before some entry (retracted or not), costs the page,
    not the whole blog; key events are kept the same way.
    """

    __slots__ = ("_by_id", "_keys", "_order")

    def __init__(
        self,
        by_id: immutables.Map[str, Entry] | None = None,
        order: SparseVector[str] | None = None,
        keys: SparseVector[str] | None = None,
    ) -> None:
        self._by_id = immutables.Map() if by_id is None else by_id
        self._order = SparseVector() if order is None else order  # posted_version -> id
        # posted_version -> id, of key events with a title only
        self._keys = SparseVector() if keys is None else keys

    def __getitem__(self, entry_id: str) -> Entry:
        return self._by_id[entry_id]

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._by_id

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._by_id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entries):
            return NotImplemented
        return self._by_id == other._by_id and self._order == other._order

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Entries({list(self.values())!r})"

    def newest_first(self, before: int | None = None) -> Iterator[Entry]:
        """Entries newest first; only those posted before version `before`, if given."""
        by_id = self._by_id
        for _, entry_id in self._order.newest(before):
            yield by_id[entry_id]

    def key_events(self) -> Iterator[Entry]:
        """Entries marked as key events that have a title, newest first."""
        by_id = self._by_id
        for _, entry_id in self._keys.newest():
            yield by_id[entry_id]

    def posted(self, entry: Entry) -> Entries:
        keys = self._keys
        if _is_key_event(entry):
            keys = keys.set(entry.posted_version, entry.id)
        return Entries(self._by_id.set(entry.id, entry),
                       self._order.set(entry.posted_version, entry.id), keys)

    def edited(self, entry: Entry) -> Entries:
        """The same entries with `entry` (already among them) in its new revision."""
        keys = self._keys
        if _is_key_event(entry):
            keys = keys.set(entry.posted_version, entry.id)
        else:
            keys = keys.remove(entry.posted_version)
        return Entries(self._by_id.set(entry.id, entry), self._order, keys)

    def without(self, entry: Entry) -> Entries:
        return Entries(self._by_id.delete(entry.id), self._order.remove(entry.posted_version),
                       self._keys.remove(entry.posted_version))


class Blog(msgspec.Struct, frozen=True, kw_only=True, gc=False):
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
    facts: immutables.Map[str, Fact]
    # Live entries in posting order (oldest first); retracted ones leave them.
    entries: Entries
    # Retracted entry ids, with the version that had posted them.
    retracted: immutables.Map[str, int]
    # Entries readers do not see (draft, submitted, scheduled, rejected), by id. Kept apart
    # from `entries`, so that every public view, which reads only `entries`, cannot show
    # one by mistake. Publishing moves an entry from here to there.
    unpublished: immutables.Map[str, Entry] = immutables.Map()

    # Identity (Actor.id) -> the byline its entries show: the display name its latest
    # event here carried, or a byline-changed's. An entry whose author is not in it (logged
    # before display names were) shows its token name.
    bylines: immutables.Map[str, str] = immutables.Map()

    def author_name(self, entry: Entry) -> str:
        """The byline `entry` shows in this state."""
        if entry.author_id is not None:
            name = self.bylines.get(entry.author_id)
            if name:
                return name
        return entry.author


class ListingChange(msgspec.Struct, frozen=True):
    """What an event changes in the list of blogs: the number of updates readers see, and
    whether readers see the event at all (the list's "last update" moves only then)."""

    entries: int
    public: bool


def listing_change(before: Blog | None, event: Event) -> ListingChange:
    """`event`'s change to the listing, decided on the state it is appended to: the one
    rule of what readers see, for the fold's `updated_at` (apply) and for the store's list
    of blogs, which counts with every append, side by side with others' posts (a post's
    count does not depend on what landed beside it)."""
    unpublished = before.unpublished if before is not None else None
    match event:
        case EntryPosted():
            published = event.workflow is None
            return ListingChange(1 if published else 0, published)
        case EntryPublished():
            return ListingChange(1, True)
        case EntryRetracted():
            shown = before is not None and event.entry_id in before.entries
            return ListingChange(-1 if shown else 0, shown)
        case EntryRejected() | EntryScheduled():
            return ListingChange(0, False)
        case EntryEdited():
            return ListingChange(0, unpublished is None or event.entry_id not in unpublished)
    return ListingChange(0, True)


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
            facts=immutables.Map(),
            entries=Entries(),
            retracted=immutables.Map(),
            bylines=_bylines(immutables.Map(), rec),
            unpublished=immutables.Map(),
        )

    public = listing_change(blog, event).public

    def advance(**changes: object) -> Blog:
        # What readers cannot see does not change the time the blog says it was updated.
        return msgspec.structs.replace(
            blog, version=rec.version, last_event_id=rec.id,
            updated_at=rec.at if public else blog.updated_at,
            bylines=_bylines(blog.bylines, rec), **changes
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
            if (event.entry_id in blog.entries or event.entry_id in blog.retracted
                    or event.entry_id in blog.unpublished):
                raise CorruptLog(f"event {rec.id}: entry {event.entry_id} exists already")
            entry = posted_entry(rec)
            if entry.state != "published":
                return advance(unpublished=blog.unpublished.set(entry.id, entry))
            return advance(entries=blog.entries.posted(entry))
        case EntryPublished():
            waiting = _unpublished_entry(blog, event.entry_id, rec)
            # To readers it is new: posted now, at the top of the page.
            published = msgspec.structs.replace(
                waiting, state="published", posted_at=rec.at, updated_at=rec.at,
                posted_version=rec.version, publish_at=None, scheduled_by=None, reason=None)
            return advance(entries=blog.entries.posted(published),
                           unpublished=blog.unpublished.delete(event.entry_id))
        case EntryRejected():
            waiting = _unpublished_entry(blog, event.entry_id, rec)
            rejected = msgspec.structs.replace(waiting, state="rejected", reason=event.reason,
                                               publish_at=None, scheduled_by=None)
            return advance(unpublished=blog.unpublished.set(event.entry_id, rejected))
        case EntryScheduled():
            waiting = _unpublished_entry(blog, event.entry_id, rec)
            scheduled = msgspec.structs.replace(
                waiting, state="scheduled", publish_at=event.publish_at, reason=None,
                scheduled_by=Actor(rec.actor, rec.role, rec.actor_id or ""))
            return advance(unpublished=blog.unpublished.set(event.entry_id, scheduled))
        case EntryEdited() if event.entry_id in blog.unpublished:
            old = blog.unpublished[event.entry_id]
            return advance(unpublished=blog.unpublished.set(
                event.entry_id, _edited(old, event, rec.at)))
        case EntryEdited():
            old = _live_entry(blog, event.entry_id, rec)
            return advance(entries=blog.entries.edited(_edited(old, event, rec.at)))
        case EntryRetracted():
            gone = _live_entry(blog, event.entry_id, rec)
            return advance(
                entries=blog.entries.without(gone),
                retracted=blog.retracted.set(gone.id, gone.posted_version),
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
                history=(previous.history if previous else SparseVector()).append(point),
                since=previous.since if previous else rec.version,
            )
            return advance(facts=blog.facts.set(fact.key, fact))
        case BylineChanged(author_id=author_id, name=name):
            return msgspec.structs.replace(
                blog, version=rec.version, last_event_id=rec.id, updated_at=rec.at,
                bylines=_bylines(blog.bylines, rec).set(author_id, name))
    raise CorruptLog(f"event {rec.id}: unknown event {event!r}")  # pragma: no cover


def _bylines(bylines: immutables.Map[str, str], rec: Recorded) -> immutables.Map[str, str]:
    """The bylines after `rec`: its actor's display name then, if the log recorded both
    (the newest name an identity acted under is its byline from there on)."""
    if rec.actor_id is None or not rec.actor_name or bylines.get(rec.actor_id) == rec.actor_name:
        return bylines
    return bylines.set(rec.actor_id, rec.actor_name)


def posted_entry(rec: Recorded) -> Entry:
    """The entry an entry-posted event creates."""
    event = rec.event
    if not isinstance(event, EntryPosted):
        raise CorruptLog(f"event {rec.id} is not entry-posted")
    scheduled = event.workflow == "scheduled"
    return Entry(
        id=event.entry_id,
        author=rec.actor,
        author_id=rec.actor_id,
        body=event.body,
        title=event.title,
        key_event=event.key_event,
        image=event.image,
        embed=event.embed,
        posted_at=rec.at,
        updated_at=rec.at,
        revision=1,
        posted_version=rec.version,
        created_at=rec.at,
        state=event.workflow or "published",
        publish_at=event.publish_at if scheduled else None,
        scheduled_by=Actor(rec.actor, rec.role, rec.actor_id or "") if scheduled else None,
    )


def fold(events: Iterable[Recorded], blog: Blog | None = None) -> Blog | None:
    """Apply every event in order, starting from `blog` (None: an empty log)."""
    for rec in events:
        blog = apply(blog, rec)
    return blog


def _edited(old: Entry, event: EntryEdited, at: datetime) -> Entry:
    return msgspec.structs.replace(
        old,
        body=event.body,
        title=event.title,
        key_event=event.key_event,
        image=event.image,
        embed=event.embed,
        updated_at=at,
        revision=old.revision + 1,
        corrections=old.corrections if event.correction is None
        else (*old.corrections, Correction(at=at, text=event.correction)),
    )


def _unpublished_entry(blog: Blog, entry_id: str, rec: Recorded) -> Entry:
    try:
        return blog.unpublished[entry_id]
    except KeyError:
        raise CorruptLog(f"event {rec.id}: no unpublished entry {entry_id}") from None


def _live_entry(blog: Blog, entry_id: str, rec: Recorded) -> Entry:
    try:
        return blog.entries[entry_id]
    except KeyError:
        raise CorruptLog(f"event {rec.id}: no live entry {entry_id}") from None
