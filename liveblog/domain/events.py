"""The events a live blog is made of.

Each event is a frozen msgspec Struct tagged with its kind ("entry-posted", ...). The log
stores the tagged JSON; schema evolution follows msgspec's rule: a new field gets a default,
an existing field never changes type, so every event ever written still decodes.

`Recorded` wraps an event with what the log adds: its stream id, the blog version it
produced (1, 2, 3, ...), the server time, and who did it.

Events hold only strings, numbers, times and other frozen Structs, so they can never be
part of a reference cycle: they are declared gc=False, and the garbage collector does not
walk the hundred thousand of them a long log decodes to (bench/fold.py: reading such a
log took a third less time).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

Role = Literal["contributor", "reporter", "editor"]
Status = Literal["live", "ended"]
# Where an unpublished entry stands when it is posted (EntryPosted.workflow).
Unpublished = Literal["draft", "submitted", "scheduled"]


class Image(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    url: str
    alt: str
    caption: str = ""
    credit: str = ""


class Embed(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    url: str


class EventBase(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """What every event shares: immutable, and encoded without fields left at default."""


class BlogOpened(EventBase, frozen=True, tag="blog-opened"):
    """A blog was opened: slug, title, description. Always version 1."""

    slug: str
    title: str
    description: str = ""


class BlogUpdated(EventBase, frozen=True, tag="blog-updated"):
    """The headline, description or status changed; None means unchanged."""

    title: str | None = None
    description: str | None = None
    status: Status | None = None


class EntryPosted(EventBase, frozen=True, tag="entry-posted"):
    """A new entry; its author is the event's actor.

    workflow: None (every entry logged before the workflow was) means published at once;
    "draft" (its author and editors only), "submitted" (a contributor's, waiting for an
    editor) or "scheduled" (published by the server at `publish_at`) mean readers do not
    see it until an entry-published event.
    """

    entry_id: str
    body: str
    title: str | None = None
    key_event: bool = False
    image: Image | None = None
    embed: Embed | None = None
    workflow: Unpublished | None = None
    # With workflow "scheduled" only: when it is to be published (timezone-aware).
    publish_at: datetime | None = None


class EntryEdited(EventBase, frozen=True, tag="entry-edited"):
    """An entry's whole new content (so each revision stands alone), and why it changed."""

    entry_id: str
    body: str
    title: str | None = None
    key_event: bool = False
    image: Image | None = None
    embed: Embed | None = None
    note: str | None = None
    # A correction readers see under the entry (the note is for the newsroom): plain text,
    # stripped, 1 to 1000 characters. None in every edit logged before corrections were.
    correction: str | None = None


class EntryRetracted(EventBase, frozen=True, tag="entry-retracted"):
    """An entry is withdrawn from the public blog; the log keeps what it said."""

    entry_id: str
    reason: str = ""


class EntryPublished(EventBase, frozen=True, tag="entry-published"):
    """An unpublished entry reaches readers, as if posted at this moment. `scheduled`:
    the server published it at its time; the actor is then whoever scheduled it."""

    entry_id: str
    scheduled: bool = False


class EntryRejected(EventBase, frozen=True, tag="entry-rejected"):
    """An unpublished entry will not be published (an editor's decision, or its author
    withdrawing it); it stays in the log and the newsroom's queue."""

    entry_id: str
    reason: str = ""


class EntryScheduled(EventBase, frozen=True, tag="entry-scheduled"):
    """An unpublished entry is to be published at `publish_at` (a draft scheduled, or a
    scheduled entry moved to another time)."""

    entry_id: str
    publish_at: datetime


class PinChanged(EventBase, frozen=True, tag="pin-changed"):
    """The pinned entry is now `entry_id` (None: nothing is pinned)."""

    entry_id: str | None


class BylineChanged(EventBase, frozen=True, tag="byline-changed"):
    """The identity `author_id`'s byline is now `name`: its entries in this blog show it
    from here on. A rename appends one to each blog where the identity has entries, so
    the blog's own log says what each entry was signed with at every moment."""

    author_id: str
    name: str


class FactUpdated(EventBase, frozen=True, tag="fact-updated"):
    """A key figure has a new value ("Deaths", "at least 80", 80, "AP")."""

    key: str
    label: str
    value: str
    numeric: float | None = None
    source: str | None = None


Event = (
    BlogOpened | BlogUpdated | EntryPosted | EntryEdited | EntryRetracted | PinChanged
    | FactUpdated | BylineChanged | EntryPublished | EntryRejected | EntryScheduled
)

def kind(event: Event) -> str:
    """The event's tag, e.g. "entry-posted"."""
    return str(event.__struct_config__.tag)


class Actor(msgspec.Struct, frozen=True):
    """Who acts: a token's name and role, and the identity the token was issued to.

    The name is for people (bylines, timelines); the id is what owns things (entries,
    idempotency keys). A name can be revoked and given to someone else; an id is minted
    with a token, kept when the token is rotated, and never given to anyone else.
    """

    name: str
    role: Role
    # "" when no token stands behind the actor (an import of a log that predates ids).
    id: str = ""
    # The byline readers see ("Rania Abouzeid"); "" when none is known, and the name
    # stands in for it.
    display_name: str = ""

    @property
    def is_editor(self) -> bool:
        return self.role == "editor"

    @property
    def byline(self) -> str:
        return self.display_name or self.name


class Recorded(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An event as the log holds it."""

    id: str
    version: int
    at: datetime
    actor: str
    role: Role
    event: Event
    # The actor's identity (Actor.id). None for events logged before identities were
    # recorded, or by an actor without one: who owns what they made is unknown.
    actor_id: str | None = None
    # The actor's display name when the event was appended (its byline then), so the log
    # alone tells what each entry was signed with at any moment. None for events logged
    # before display names were.
    actor_name: str | None = None


event_encoder = msgspec.json.Encoder()
event_decoder = msgspec.json.Decoder(Event)
