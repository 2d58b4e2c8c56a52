"""The application layer: load a blog's state, run a command on it, append its event.

A write reads the current state, lets a domain command decide the event, and appends it
with the version it decided on. If another write landed in between, the store refuses
(VersionConflict), and the write runs again on the newer state: every event in the log
was decided on exactly the state it follows. The one exception is a new entry, whose
meaning does not depend on what else was posted meanwhile: it only needs the blog to be
still live (the store checks that, and that its id is new), so posts never conflict.

Each process keeps the latest state of the blogs it served and catches up from the log
(one round trip for the new events) before every read, so a read right after a write
shows it, whichever process made the write. It also keeps checkpoints of past states of
the blogs whose past was asked for (see checkpoints.py), so a state at some version is a
fold of at most a thousand-odd events, not of the whole log.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import msgspec

from liveblog.checkpoints import CHECKPOINT_EVERY, Checkpoints
from liveblog.domain import commands, ids
from liveblog.domain.events import (
    Actor,
    BlogOpened,
    BlogUpdated,
    EntryEdited,
    EntryPosted,
    EntryRetracted,
    EntryScheduled,
    Event,
    Recorded,
)
from liveblog.domain.imports import check_log
from liveblog.domain.state import Blog, apply, fold, listing_change
from liveblog.errors import (
    Conflict,
    CorruptLog,
    IdempotencyKeyReused,
    InvalidImport,
    NotFound,
    VersionConflict,
)
from liveblog.store import BlogPage, Person, Store

Decide = Callable[[Blog | None], Event | None]


def _noop(_: int) -> None:
    pass

MAX_ATTEMPTS = 20


def utcnow() -> datetime:
    now = datetime.now(UTC)
    # Milliseconds are what a stream id resolves and what JSON readers expect.
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def new_entry_id() -> str:
    """8 characters of [a-z2-7]: short enough for a URL fragment, 40 random bits."""
    return base64.b32encode(secrets.token_bytes(5)).decode().lower()


def fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


class Outcome(msgspec.Struct, frozen=True):
    """The state after a write, the event it appended (None: nothing to change), and
    whether the request repeated an earlier one (same idempotency key), whose event it is."""

    blog: Blog
    recorded: Recorded | None
    repeated: bool = False


class BylineEvent(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    event_id: str


class Renamed(msgspec.Struct, frozen=True, kw_only=True):
    """A new byline, and the byline-changed event it appended to each blog where the
    identity has entries (none where the blog shows that name already), in slug order."""

    person: Person
    events: list[BylineEvent]


# The (identity, slug) pairs this process told the store of (Store.note_author), so a
# reporter's hundredth post to a blog costs no extra round trip. Bounded: past it, it
# starts over (telling the store again is harmless).
AUTHORS_REMEMBERED = 10_000


class Service:
    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime] = utcnow,
        new_id: Callable[[], str] = new_entry_id,
        cache_size: int = 256,
        checkpoint_blogs: int = 8,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> None:
        self.store = store
        self.clock = clock
        self.new_id = new_id
        self._cache: OrderedDict[str, Blog] = OrderedDict()
        self._cache_size = cache_size
        self._writing: dict[str, asyncio.Lock] = {}
        # Checkpoints of past states (see checkpoints.py) of the blogs folded or replayed
        # most recently. Bounded: at most MAX_CHECKPOINTS states per blog, each holding what
        # about CHECKPOINT_EVERY events changed; bench/fold.py measures 24 MiB for a
        # 100,000-event blog, well under 1 MiB for a blog of a few thousand events.
        self._checkpoints: OrderedDict[str, Checkpoints] = OrderedDict()
        self._checkpoint_blogs = checkpoint_blogs
        self._checkpoint_every = checkpoint_every
        self._authors: set[tuple[str, str]] = set()

    # -- reads ---------------------------------------------------------------------------

    async def blog(self, slug: str) -> Blog:
        """The latest state of a blog (NotFound if it was never opened)."""
        blog = await self._load(slug)
        if blog is None:
            raise NotFound(f"no blog {slug!r}")
        return blog

    async def list_blogs(self, *, limit: int, before: str | None = None) -> BlogPage:
        """A page of blogs, the most recently opened first (see Store.list_blogs)."""
        return await self.store.list_blogs(limit=limit, before=before)

    async def events(
        self, slug: str, *, after: str | None, limit: int
    ) -> tuple[list[Recorded], str | None]:
        """A page of the raw log, and the id to pass as `after` for the next (None: end)."""
        await self.blog(slug)
        events = await self.store.read(slug, after=after, count=limit + 1)
        if len(events) > limit:
            return events[:limit], events[limit - 1].id
        return events, None

    async def all_events(self, slug: str) -> list[Recorded]:
        """The whole log of a blog (NotFound if it was never opened)."""
        events, _ = await self.store.read_all(slug)
        if not events:
            raise NotFound(f"no blog {slug!r}")
        return events

    async def blog_at(self, slug: str, at: str) -> Blog:
        """The state right after the event `at` (a stream id, or a version number).

        Folded from the nearest checkpoint at or before it, so it reads and folds at most
        about CHECKPOINT_EVERY events once the checkpoints up to it exist; the first call
        on a long blog makes them (one fold of the log up to `at`)."""
        latest = await self.blog(slug)
        asked = ids.parse_version(at)
        if asked is not None:
            version = asked
            if not 0 < version <= latest.version:
                raise NotFound(f"blog {slug!r} has no version {version}")
        elif ids.is_stream_id(at):
            version = (await self.store.event(slug, at)).version
        else:
            raise NotFound(f"blog {slug!r} has no event {at[:60]!r}")
        if version == latest.version:
            return latest
        checkpoints = self._checkpoints_for(slug)
        base = checkpoints.nearest(version)
        if base is not None and base.version == version:
            return base
        start = 0 if base is None else base.version
        events = await self.store.read(
            slug, after=None if base is None else base.last_event_id, count=version - start
        )
        try:
            blog = checkpoints.fold(events, base)
        except CorruptLog:
            # The log changed under the checkpoints (wiped or restored since): start over.
            checkpoints.forget()
            blog = checkpoints.fold(await self.store.read(slug, count=version), None)
        if blog is None or blog.version != version:
            raise NotFound(f"blog {slug!r} has no version {version}")
        return blog

    # -- writes --------------------------------------------------------------------------

    async def execute(
        self,
        slug: str,
        actor: Actor,
        decide: Decide,
        *,
        idempotency: tuple[str, str] | None = None,
    ) -> Outcome:
        """Decide an event on the current state and append it, retrying on conflicts.

        idempotency: (key, request fingerprint). A key this actor already used on this
        blog returns the original event and appends nothing.
        """
        if idempotency is not None:
            earlier = await self._repeat(slug, actor, idempotency)
            if earlier is not None:
                # Indexed again: the first attempt may have failed between its append and
                # its index write (its client got a 503, and retries with the same key).
                return await self._indexed(earlier)
        outcome = await self._attempt(slug, actor, decide, idempotency)
        if outcome is not None:
            return await self._indexed(outcome)
        # It conflicted: writes to this blog from this process now take turns, or racing
        # each other they would only conflict again (a burst of 8 concurrent posts made 125
        # of 1,000 give up after MAX_ATTEMPTS). Across processes the store still decides.
        async with self._writing.setdefault(slug, asyncio.Lock()):
            for _ in range(MAX_ATTEMPTS - 1):
                outcome = await self._attempt(slug, actor, decide, idempotency)
                if outcome is not None:
                    return await self._indexed(outcome)
        raise Conflict(f"blog {slug!r} is changing too fast to apply this; try again")

    async def _indexed(self, outcome: Outcome) -> Outcome:
        """Keep the store's index of scheduled entries (Store.schedule) up with a write
        that scheduled one, or reopened a blog holding some. The index is derived: the
        schedulers rebuild it from the blogs at startup (scheduler.py), so a crash between
        the append and this write loses nothing."""
        rec, blog = outcome.recorded, outcome.blog
        event = None if rec is None else rec.event
        if isinstance(event, EntryPosted | EntryScheduled):
            entry = blog.unpublished.get(event.entry_id)
            if entry is not None and entry.state == "scheduled" and entry.publish_at:
                await self.store.schedule(blog.slug, entry.id, entry.publish_at)
        elif isinstance(event, BlogUpdated) and event.status == "live":
            await self.index_schedule(blog)
        return outcome

    async def index_schedule(self, blog: Blog) -> int:
        """Put every scheduled entry of `blog` in the store's index; how many there were."""
        scheduled = [e for e in blog.unpublished.values()
                     if e.state == "scheduled" and e.publish_at is not None]
        for entry in scheduled:
            assert entry.publish_at is not None
            await self.store.schedule(blog.slug, entry.id, entry.publish_at)
        return len(scheduled)

    async def _attempt(self, slug: str, actor: Actor, decide: Decide,
                       idempotency: tuple[str, str] | None) -> Outcome | None:
        """Decide on the current state and append; None if the store saw a conflict."""
        blog = await self._load(slug)
        event = decide(blog)
        if event is None:
            if blog is None:  # pragma: no cover - commands raise NotFound first
                raise NotFound(f"no blog {slug!r}")
            return Outcome(blog, None)
        at = self.clock()
        if isinstance(event, BlogOpened):
            await self.store.register_blog(slug, at)
        if isinstance(event, EntryPosted) and actor.id:
            await self._note_author(actor.id, slug)
        # A new entry means the same whatever landed before it, as long as the blog is
        # still live (its id is checked by the store too): posts never conflict with each
        # other, so a burst of them is appended side by side.
        commutes = isinstance(event, EntryPosted) and blog is not None
        try:
            appended = await self.store.append(
                slug,
                event,
                actor,
                at,
                expected_version=0 if blog is None else blog.version,
                while_live=commutes,
                entry_revision=_revision_guard(blog, event),
                summary=_summary(blog, event, at, counted=not commutes),
                listed=listing_change(blog, event).public,
                idempotency=idempotency,
            )
        except VersionConflict:
            return None
        if appended.repeated:
            return Outcome(await self.blog(slug), appended.recorded, repeated=True)
        recorded = appended.recorded
        if blog is not None and recorded.version != blog.version + 1:
            # Others' events landed first: read them, and ours, from the log.
            return Outcome(await self.blog(slug), recorded)
        after = apply(blog, recorded)
        self.remember(after)
        checkpoints = self._checkpoints.get(slug)
        if checkpoints is not None:
            checkpoints.offer(after)
        return Outcome(after, recorded)

    async def _note_author(self, identity: str, slug: str) -> None:
        if (identity, slug) in self._authors:
            return
        await self.store.note_author(identity, slug)
        if len(self._authors) >= AUTHORS_REMEMBERED:
            self._authors.clear()
        self._authors.add((identity, slug))

    async def rename(self, identity: str, name: str, actor: Actor) -> Renamed:
        """Give the identity the byline `name` (checked and stripped: InvalidInput), for
        what it posts from now on, and, by a byline-changed event from `actor` in each blog
        where it has entries, on those entries (NotFound: no such identity).

        Safe to repeat: a rename cut short (Redis gone half-way) is finished by the same
        rename again, which appends only where a blog does not show the name yet."""
        name = commands.display_name(name)
        person = await self.store.set_display_name(identity, name)
        if person is None:
            raise NotFound(f"no identity {identity[:80]!r}")
        appended = []
        for slug in await self.store.authored_blogs(identity):
            try:
                outcome = await self.execute(
                    slug, actor, _byline_change(slug, actor, identity, name))
            except NotFound:
                continue  # the blog is gone (its store emptied since): nothing to sign
            if outcome.recorded is not None:
                appended.append(BylineEvent(slug=slug, event_id=outcome.recorded.id))
        return Renamed(person=person, events=appended)

    async def _repeat(
        self, slug: str, actor: Actor, idempotency: tuple[str, str]
    ) -> Outcome | None:
        """The earlier request's outcome, if this one repeats it (same key, same body)."""
        seen = await self.store.find_idempotent(slug, actor, idempotency[0])
        if seen is None:
            return None
        event_id, seen_fingerprint = seen
        if seen_fingerprint != idempotency[1]:
            raise IdempotencyKeyReused(idempotency[0])
        recorded = await self.store.event(slug, event_id)
        return Outcome(await self.blog(slug), recorded, repeated=True)

    async def import_log(
        self, slug: str, events: Sequence[Recorded], progress: Callable[[int], None] = _noop,
        *, lines: Sequence[int] | None = None,
    ) -> Blog:
        """Append an exported log to an empty blog, keeping ids, times and actors, so the
        state and the replay come out identical.

        The whole log is checked first (see domain/imports.py: every event must be one the
        API could have logged where it stands), and nothing is appended unless all of it
        holds up: InvalidImport names the first event (its line, given `lines`) that does
        not."""
        blog = check_log(events, now=self.clock(), lines=lines)
        if blog.slug != slug:
            raise InvalidImport(f"the export is of blog {blog.slug!r}, not {slug!r}")
        if await self.store.length(slug) > 0:
            raise Conflict(f"blog {slug!r} exists already; import into an empty store")
        before: Blog | None = None
        for rec in events:
            if isinstance(rec.event, BlogOpened):
                await self.store.register_blog(slug, rec.at)
            if isinstance(rec.event, EntryPosted) and rec.actor_id:
                # A rename of someone known here reaches their imported entries too.
                await self._note_author(rec.actor_id, slug)
            await self.store.append(
                slug, rec.event,
                Actor(rec.actor, rec.role, rec.actor_id or "", rec.actor_name or ""), rec.at,
                expected_version=0 if before is None else before.version,
                entry_revision=_revision_guard(before, rec.event),
                summary=_summary(before, rec.event, rec.at, counted=True),
                listed=listing_change(before, rec.event).public,
                event_id=rec.id,
            )
            before = apply(before, rec)
            progress(1)
        self.remember(blog)
        return blog

    # -- the per-process cache -----------------------------------------------------------

    async def _load(self, slug: str) -> Blog | None:
        cached = self._cache.get(slug)
        after = None if cached is None else cached.last_event_id
        events, length = await self.store.read_all(slug, after=after)
        try:
            if cached is not None and length < cached.version:
                raise CorruptLog("the log is shorter than the cached state")
            blog = self._fold(slug, events, cached)
        except CorruptLog:
            if cached is None:
                raise
            # The store no longer holds what we cached (restored from a backup, or wiped):
            # forget it, and its checkpoints, and fold the log as it is now.
            self._cache.pop(slug, None)
            self._checkpoints.pop(slug, None)
            events, _ = await self.store.read_all(slug)
            blog = self._fold(slug, events, None)
        if blog is not None:
            self.remember(blog)
        return blog

    def _fold(self, slug: str, events: list[Recorded], blog: Blog | None) -> Blog | None:
        """Fold, keeping the checkpoints passed on the way. A fold from the start makes
        them for the blog; a fold of a few new events extends those it has, if any (a
        request for a blog that does not exist makes none)."""
        checkpoints = self._checkpoints.get(slug)
        if checkpoints is None and (blog is not None or not events):
            return fold(events, blog)
        return self._checkpoints_for(slug).fold(events, blog)

    def _checkpoints_for(self, slug: str) -> Checkpoints:
        checkpoints = self._checkpoints.get(slug)
        if checkpoints is None:
            checkpoints = self._checkpoints[slug] = Checkpoints(self._checkpoint_every)
            while len(self._checkpoints) > self._checkpoint_blogs:
                self._checkpoints.popitem(last=False)
        self._checkpoints.move_to_end(slug)
        return checkpoints

    def remember(self, blog: Blog) -> None:
        cached = self._cache.get(blog.slug)
        if cached is None or cached.version <= blog.version:
            self._cache[blog.slug] = blog
        self._cache.move_to_end(blog.slug)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def _byline_change(slug: str, actor: Actor, identity: str, name: str) -> Decide:
    def decide(blog: Blog | None) -> Event | None:
        if blog is None:
            raise NotFound(f"no blog {slug!r}")
        return commands.change_byline(blog, actor, identity, name)

    return decide


def _revision_guard(blog: Blog | None, event: Event) -> tuple[str, str, str] | None:
    """The store's entry-revision check for an event: (entry id, expected, new)."""
    if isinstance(event, EntryPosted):
        return event.entry_id, "0", "1"
    if blog is None:
        return None
    if isinstance(event, EntryEdited):
        entry = blog.entries.get(event.entry_id) or blog.unpublished[event.entry_id]
        return event.entry_id, str(entry.revision), str(entry.revision + 1)
    if isinstance(event, EntryRetracted):
        revision = blog.entries[event.entry_id].revision
        return event.entry_id, str(revision), "x"
    return None


def _summary(before: Blog | None, event: Event, at: datetime, *,
             counted: bool) -> dict[str, str]:
    """The listing fields (besides version and time) that an event changes.

    counted: `before` is exactly the state the event lands on (its append checks the
    version), so the number of updates is set outright, which also counts a blog's updates
    the first time it changes after the listing began to; otherwise (a post appended side
    by side with others) the store adds the post's one to the number it has."""
    if isinstance(event, BlogOpened):
        return {"title": event.title, "description": event.description, "status": "live",
                "opened_at": at.isoformat(), "entries": "0"}
    changed: dict[str, str] = {}
    if isinstance(event, BlogUpdated):
        fields = {"title": event.title, "description": event.description,
                  "status": event.status}
        changed = {name: value for name, value in fields.items() if value is not None}
    delta = listing_change(before, event).entries
    if counted and before is not None:
        changed["entries"] = str(len(before.entries) + delta)
    elif delta:
        changed["entries+"] = str(delta)
    return changed
