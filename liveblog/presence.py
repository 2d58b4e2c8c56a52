"""Presence: who is signed in on a blog now, which entry each of them has open, and the
soft edit lock that comes with an open entry (issue 10).

None of it is in the log: it lives in Redis with times to live (store.py), so it survives
nothing, needs no cleanup, and every server process sharing the Redis sees the same. The
console beats every 10 s and whenever its focus moves (POST .../presence): a beat keeps
its sender present for `presence_ttl` and the entry it has open locked to it for `lock_ttl`
(30 s each: three missed beats, so a phone that lost its signal lets go within half a
minute). A lock is soft: an edit by someone else is refused with EntryLocked (409) unless
it says it overrides (api.py); it only keeps two people from overwriting each other
unawares.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from liveblog.domain import commands
from liveblog.domain.commands import EntryId
from liveblog.domain.events import Actor, Role
from liveblog.service import Service
from liveblog.store import PresenceRecord, PresenceSnapshot

PRESENCE_TTL_SECONDS = 30.0
LOCK_TTL_SECONDS = 30.0


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # The entry its sender has open to edit (its lock is taken or renewed), or null.
    editing: EntryId | None = None


class Person(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    # Their byline (the identity's display name); null for a token without one: show
    # `name`.
    display_name: str | None
    role: Role
    # The entry they have open; the lock on it may be someone else's (see `locks`).
    editing: str | None
    seen_at: datetime


class Holder(msgspec.Struct, frozen=True):
    id: str
    name: str


class EntryLock(msgspec.Struct, frozen=True, kw_only=True):
    entry_id: str
    holder: Holder
    expires_at: datetime


class PresenceView(msgspec.Struct, frozen=True, kw_only=True):
    """Who is on the blog now (by name), and the entries locked (by entry id)."""

    people: list[Person]
    locks: list[EntryLock]


class Presence:
    def __init__(self, service: Service, *, presence_ttl: float = PRESENCE_TTL_SECONDS,
                 lock_ttl: float = LOCK_TTL_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.service = service
        self.store = service.store
        self.presence_ttl_ms = round(presence_ttl * 1000)
        self.lock_ttl_ms = round(lock_ttl * 1000)
        self.clock = clock

    @property
    def beat_seconds(self) -> float:
        """How often the console beats (the page is told, newsroom.html): three beats to
        the shorter time to live, so a lost beat or two lets go of nothing."""
        return min(self.presence_ttl_ms, self.lock_ttl_ms) / 3000

    async def beat(self, slug: str, actor: Actor, editing: str | None) -> PresenceView:
        """Mark `actor` present on the blog with `editing` open, and lock that entry to
        them unless someone else holds it. An entry they may not edit is refused with the
        edit's own error (403, 404, 410), and nothing changes."""
        blog = await self.service.blog(slug)
        if editing is not None:
            commands.open_for_editing(blog, actor, editing)
        now = self._now_ms()
        person = PresenceRecord(id=actor.id, name=actor.name, role=actor.role,
                                editing=editing, seen=now, expires=now + self.presence_ttl_ms,
                                display_name=actor.display_name or None)
        return _view(await self.store.beat(slug, person, now_ms=now,
                                           lock_ttl_ms=self.lock_ttl_ms))

    async def view(self, slug: str) -> PresenceView:
        await self.service.blog(slug)  # 404 for a blog that does not exist
        return _view(await self.store.presence(slug, now_ms=self._now_ms()))

    async def leave(self, slug: str, actor: Actor) -> None:
        """Sign `actor` off the blog and let go of their locks on it."""
        await self.service.blog(slug)
        await self.store.leave(slug, actor.id)

    async def lock(self, slug: str, entry_id: str) -> EntryLock | None:
        """The lock held on an entry now, if any."""
        found = await self.store.lock(slug, entry_id, now_ms=self._now_ms())
        if found is None:
            return None
        return EntryLock(entry_id=entry_id, holder=Holder(found.holder, found.name),
                         expires_at=_time(found.expires))

    def _now_ms(self) -> int:
        return round(self.clock() * 1000)


def _view(snapshot: PresenceSnapshot) -> PresenceView:
    people = sorted(snapshot.people, key=lambda p: (p.name, p.id))
    return PresenceView(
        people=[Person(id=p.id, name=p.name, display_name=p.display_name, role=p.role,
                       editing=p.editing, seen_at=_time(p.seen)) for p in people],
        locks=[EntryLock(entry_id=entry, holder=Holder(lock.holder, lock.name),
                         expires_at=_time(lock.expires))
               for entry, lock in sorted(snapshot.locks.items())],
    )


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
