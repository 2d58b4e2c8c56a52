"""Live fan-out: one tailer per process per live blog, many readers.

A Tailer blocks in XREAD on the blog's stream (one Redis connection, whatever the number of
readers), folds each new event into its copy of the state, encodes the change once as
server-sent-event bytes (and once more as an HTTP/1.1 chunk), and writes those bytes to every
reader in one pass: no task wakes up per reader, nothing is encoded or copied per reader. It
never waits for a reader: a reader that falls too far behind is cut off, and its browser
reconnects with the id of the last message it did receive.

It also keeps the last RING_SIZE messages (RING_BYTES at most), so a reader that reconnects
with a Last-Event-ID gets exactly what it missed; an id it cannot place gets a snapshot,
never a gap.

The Hub runs one heartbeat for all readers of the process, not one timer per connection.
On SIGTERM it drains (Hub.drain): each reader is told, with a `retry:` field of its own, to
come back a little later (to another server, behind a load balancer) and its stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import random
import secrets
import time
from collections import deque
from collections.abc import Iterable

import msgspec

from liveblog.domain import ids
from liveblog.domain.events import Recorded
from liveblog.domain.state import Blog, CorruptLog, apply, fold
from liveblog.domain.views import (
    Change,
    EntryChange,
    FactChange,
    PinView,
    change_view,
    public_blog,
    public_entry,
    stream_kind,
    withdrawn,
)
from liveblog.errors import NotFound, Overloaded, StoreUnavailable, TailerStopped
from liveblog.markup import live_blog, live_entry, live_fact
from liveblog.metrics import Metrics
from liveblog.service import Service
from liveblog.store import BLOCK_MARGIN_SECONDS, AudienceReport

RING_SIZE = 1024
# The ring's bytes (of messages) at most, whatever their size, so that a blog of huge
# messages cannot make a tailer hold 1,024 of them (280 kB figure messages made 232 MB);
# a reader resuming from before what is kept gets a snapshot. Big enough that a reader cut
# off for falling behind still finds its last id here and resumes exactly: it was cut off
# with at most 1 MiB waiting in the process (web/stream.py) and up to 4 MiB more in the
# kernel's send buffer (Linux's default tcp_wmem maximum). A usual blog's 1,024 messages
# of 1 to 2 kB are far below it; LIVEBLOG_MAX_TAILERS (100) rings hold 800 MiB at most, and
# only if every blog's last messages are that big. The entry each message carries (for
# re-encoding, see backlog) adds about as much again.
RING_BYTES = 8 * 1024 * 1024
# Readers written to between two yields to the event loop: about 3 ms of writes here, so a
# reporter's POST, which awaits Redis three times, waits for the pass about 10 ms at most.
BROADCAST_SLICE = 256
# The shortest time between two broadcasts of a blog. Updates seconds apart never wait; in a
# burst (2,000 readers, 100 updates/s) an update waits at most this long and goes out with
# the others in one write per reader: with 20 ms the spike's burst p99 was 1.2x to 7x
# Nchan's, run to run; with 50 ms 0.2x to 2x, over four runs.
BATCH_SECONDS = 0.05
SNAPSHOT_ENTRIES = 20
# Seconds a refused stream is told to wait (Retry-After), picked at random in this range.
RETRY_AFTER = (5, 15)
# How long, at most, a drained reader is told to wait before it reconnects (retry:), by
# default (LIVEBLOG_DRAIN_RETRY_SECONDS); each reader waits a random time between a tenth
# of it and all of it, so a server's readers do not land on the others in one instant.
DRAIN_RETRY_SECONDS = 5.0
# A comment line: browsers ignore it; proxies see traffic and keep the stream open.
HEARTBEAT = b": ping\n\n"
# How often a process tells Redis how many readers it holds per blog (the newsroom's
# audience, summed over processes), and how long a process's figures count without news
# from it (a process that died drops out after this).
AUDIENCE_SECONDS = 2.0
AUDIENCE_TTL_SECONDS = 10
# The delivery lags a tailer keeps for the audience's percentiles: the last minute's, and
# at most this many broadcast slices of them.
LAG_WINDOW_SECONDS = 60.0
LAG_SAMPLES = 2048
# A tailer is stuck when Redis has not answered it for its block, the connection's margin
# and this: a second for the loop's own work (a batch's pause, a broadcast, a log check).
STUCK_MARGIN_SECONDS = BLOCK_MARGIN_SECONDS + 1.0
logger = logging.getLogger("liveblog.live")
_encode = msgspec.json.Encoder().encode


def sse_message(event_id: str, event: str, data: msgspec.Struct) -> bytes:
    # msgspec's JSON never contains a raw newline, so one data: line always suffices.
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event_id.encode(), event.encode(), _encode(data))


def http_chunk(message: bytes) -> bytes:
    """`message` framed as one HTTP/1.1 chunk. Framed once per message, not per reader."""
    return b"%x\r\n%b\r\n" % (len(message), message)


def client_key(address: str) -> str:
    """What the per-client limit counts by: the address, or for IPv6 its /64, which one
    household or host holds whole and picks addresses from at will. An IPv4 address mapped
    into IPv6 (::ffff:a.b.c.d, how IPv4 peers arrive on a server bound to ::) is that IPv4
    address: its /64 would be the whole IPv4 internet's."""
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


def drain_retry_ms(most_seconds: float) -> tuple[int, int]:
    """The range, in milliseconds, that a drained reader's retry: is picked from."""
    most = max(round(most_seconds * 1000), 1)
    return max(most // 10, 1), most


def _retry_after() -> int:
    # Spread the retries of many refused readers rather than bring them back together.
    return random.randint(RETRY_AFTER[0], RETRY_AFTER[1])


class Subscription:
    """One reader of a tailer.

    `offer` is called once per message for every reader, in one pass, so it must not block
    or wait: it hands the bytes on and says whether the reader is keeping up. This base
    class keeps them in memory (for in-process readers); the HTTP layer's readers write
    them to a socket.
    """

    __slots__ = ("limit", "messages")

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self.messages: deque[bytes] = deque()

    def offer(self, message: bytes, chunk: bytes) -> bool:
        """Take `message` (`chunk`: the same bytes as an HTTP chunk). False: too far behind."""
        if len(self.messages) >= self.limit:
            return False
        self.messages.append(message)
        return True

    def end(self) -> None:
        """The stream ends here, after what was offered (the reader will reconnect)."""

    def cut_off(self) -> None:
        """The reader fell too far behind: drop it now (it resumes from its last id)."""


class Tailer:
    def __init__(self, slug: str, service: Service, *, queue_size: int,
                 block_ms: int | None = None, metrics: Metrics | None = None) -> None:
        self.slug = slug
        self.metrics = metrics or Metrics()
        label = self.metrics.blog(slug)
        # The labelled figures this tailer moves, looked up once rather than per message.
        self._readers_gauge = self.metrics.readers.labels(label)
        self._delivered = self.metrics.delivered.labels(label)
        # (monotonic time, seconds from append to write, readers written) per broadcast
        # slice: what the newsroom's audience reports as the delivery lag.
        self.lags: deque[tuple[float, float, int]] = deque(maxlen=LAG_SAMPLES)
        # When Redis last answered this tailer's XREAD (readiness: no tailer is stuck).
        self.last_answer = time.monotonic()
        self.service = service
        # How many messages a reader may fall behind before it is cut off.
        self.queue_size = queue_size
        # The longest XREAD; by default the store's (LIVEBLOG_TAIL_BLOCK_MS).
        self.block_ms = block_ms or service.store.block_ms
        self.state: Blog
        # (event id, kind, message, and the change when it carries an entry's words)
        self.ring: deque[tuple[str, str, bytes, EntryChange | PinView | None]] = deque()
        self.ring_bytes = 0
        self.subscribers: set[Subscription] = set()
        self.idle_since = time.monotonic()
        # When readers last got bytes from us: the heartbeat skips blogs that just spoke,
        # and the next broadcast waits until BATCH_SECONDS after it.
        self.last_sent = 0.0
        self.dropped = 0
        # Times Redis did not answer its XREAD (each followed by a new connection).
        self.faults = 0
        # The blog is no longer in the log (Redis emptied): the tailer has stopped.
        self.gone = False
        # stop() was called: from then on no reader may join, even while the task winds down.
        self.stopping = False
        self._snapshot: tuple[int, bytes] | None = None
        self._task: asyncio.Task[None] | None = None
        self._publishing = asyncio.Lock()

    async def start(self) -> None:
        await self._load()
        self.last_answer = time.monotonic()
        self._task = asyncio.create_task(self._run(), name=f"tailer:{self.slug}")
        self.metrics.tailers.inc()
        self._task.add_done_callback(lambda _: self.metrics.tailers.dec())

    async def stop(self) -> None:
        self.stopping = True
        self._end_readers()
        task = self._task
        if task is None:
            return
        # Cancelled again until it is done: on Python 3.11, redis-py sends each command of
        # a client with a socket timeout (as the blocking one has) through asyncio.wait_for,
        # which loses a cancellation that lands as the send completes; the tailer would then
        # block in XREAD and carry on, and the stop would wait for ever.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        with contextlib.suppress(Exception, asyncio.CancelledError):
            task.result()

    @property
    def running(self) -> bool:
        return (self._task is not None and not self._task.done() and not self.gone
                and not self.stopping)

    async def _load(self) -> None:
        """Fold the whole log, keeping the last RING_SIZE change messages for resumes."""
        events, _ = await self.service.store.read_all(self.slug)
        if not events:
            raise NotFound(f"no blog {self.slug!r}")
        ring_from = max(len(events) - RING_SIZE, 0)
        # Only the last RING_SIZE events need the state right after each of them (for
        # their messages); everything before is one fold.
        state = fold(events[:ring_from])
        self.ring.clear()
        self.ring_bytes = 0
        for rec in events[ring_from:]:
            state = apply(state, rec)
            self._remember_message(rec, state)
        if state is None:
            raise NotFound(f"no blog {self.slug!r}")
        self.state = state
        self.service.remember(state)

    async def _run(self) -> None:
        pause = 0.1
        failed = False
        while not self.gone:
            try:
                # At most one broadcast per BATCH_SECONDS: in a burst, what arrives
                # meanwhile goes out as one write per reader, not one per update.
                wait = BATCH_SECONDS - (time.monotonic() - self.last_sent)
                if wait > 0:
                    await asyncio.sleep(wait)
                events = await self.service.store.wait_for_events(
                    self.slug, self.state.last_event_id, block_ms=self.block_ms
                )
                self.last_answer = time.monotonic()
                if failed:  # Redis had failed us: this is its first answer since
                    failed = False
                    self.metrics.redis_reconnects.inc()
                if events:
                    await self.publish(events)
                else:
                    # Nothing new for a whole block: is the log still the one we read?
                    await self._check_log()
                pause = 0.1
            except StoreUnavailable as exc:
                # Redis refused the connection, or did not answer within the block and its
                # margin (a connection dead without a FIN): the next try is a new one, from
                # the last event published, so readers get what came meanwhile, once.
                self.faults += 1
                failed = True
                # Not when the tailer is being stopped (a shutdown: the embedded Redis gets
                # the same SIGTERM and may be gone first): nobody depends on it any more.
                if not self.stopping:
                    logger.warning("tailer %s: Redis did not answer (%s); reconnecting in "
                                   "%.1fs", self.slug, exc.__cause__ or exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
            except CorruptLog as exc:
                await self._reload_or_wait(str(exc), pause)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Whatever it is, a dead tailer would leave its readers silent: log, wait,
                # carry on from the last event it published.
                logger.exception("tailer %s failed; retrying in %.1fs", self.slug, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    async def _check_log(self) -> None:
        """CorruptLog unless the log still holds our last event, at our version.

        An XREAD after our last id cannot tell: on a Redis emptied, or restored from an
        older copy (fewer events), it just waits, and readers would be shown a blog the log
        no longer says. (New events on such a log are caught by publish: their versions
        repeat ours.)"""
        last = self.state.last_event_id
        version = await self.service.store.version_of(self.slug, last)
        if version != self.state.version:
            length = await self.service.store.length(self.slug)
            raise CorruptLog(
                f"the log no longer holds event {last} as version {self.state.version}; it "
                f"has {length} events (Redis emptied, or restored from an older copy?)")

    async def _reload_or_wait(self, why: str, pause: float) -> None:
        try:
            await self._reload(why)
        except NotFound:
            pass  # gone: _run ends
        except Exception:
            logger.exception("tailer %s could not reload", self.slug)
            await asyncio.sleep(pause)

    async def _reload(self, why: str) -> None:
        """The log is not the one we folded (wiped, or restored from a backup): fold it
        again, then end every reader, who reconnects to a snapshot of what it says now.
        If the blog is not in the log at all, the tailer is done (NotFound): its readers
        reconnect to a 404."""
        logger.warning("tailer %s: %s; reloading, and its %d readers reconnect to a fresh "
                       "snapshot", self.slug, why, len(self.subscribers))
        self._snapshot = None
        try:
            await self._load()
        except NotFound:
            logger.warning("tailer %s: the blog is no longer in Redis; stopping", self.slug)
            self.gone = True
            self._end_readers()
            raise
        # After the load, nothing awaited since: no reader can reconnect in time to be
        # given the state we are throwing away.
        self._end_readers()

    def _end_readers(self) -> None:
        for sub in list(self.subscribers):
            self.unsubscribe(sub)
            sub.end()

    def drain(self, retry_ms: tuple[int, int]) -> int:
        """Stop taking readers; tell each reader to reconnect after its own random delay
        within `retry_ms`, after what it was sent, and end its stream. Returns how many
        there were. The task goes on until stop() (at shutdown), publishing to nobody."""
        self.stopping = True
        readers = list(self.subscribers)
        for sub in readers:
            self.unsubscribe(sub)
            line = b"retry: %d\n\n" % random.randint(*retry_ms)
            try:
                sub.offer(line, http_chunk(line))
                sub.end()
            except Exception:
                logger.exception("tailer %s: could not end a reader's stream", self.slug)
        return len(readers)

    async def catch_up(self) -> None:
        """Read what the stream holds beyond our state now (for a reader who is ahead)."""
        try:
            await self.publish(
                await self.service.store.read(self.slug, after=self.state.last_event_id))
        except CorruptLog as exc:
            await self._reload(str(exc))

    async def publish(self, events: Iterable[Recorded]) -> None:
        # One publish at a time (the XREAD loop, and catch_up for a reader who is ahead),
        # so readers get the batches in log order even while a broadcast yields.
        async with self._publishing:
            messages = []
            # When each message's event was appended (its id's milliseconds), for the lag.
            appended: list[float] = []
            for rec in events:
                if rec.version <= self.state.version:
                    if ids.position(rec.id) > ids.position(self.state.last_event_id):
                        raise CorruptLog(f"event {rec.id} repeats version {rec.version}")
                    continue  # already published (catch_up and the XREAD loop can overlap)
                self.state = apply(self.state, rec)
                message = self._remember_message(rec, self.state)
                if message is not None:
                    messages.append(message)
                    appended.append(ids.position(rec.id).ms / 1000)
            self.service.remember(self.state)
            if messages:
                # Whatever arrived together goes out together: one write per reader for
                # the whole batch, so a burst of updates costs fewer writes, not more.
                await self.broadcast(b"".join(messages), appended=appended)

    async def broadcast(self, message: bytes, *, appended: list[float] | None = None) -> None:
        """Hand `message` to every reader in one pass; cut off those who fell behind.

        `appended`: the append time (Unix seconds) of each event `message` carries, one per
        SSE message in it (none: a heartbeat), for the delivered and lag figures.

        The pass yields to the event loop every BROADCAST_SLICE readers, so a reporter's
        POST (or a page) is not kept waiting behind ten thousand socket writes. A reader who
        subscribes meanwhile is not written to: its first messages already include these.
        """
        self.last_sent = time.monotonic()
        chunk = http_chunk(message)
        readers = list(self.subscribers)
        for start in range(0, len(readers), BROADCAST_SLICE):
            if start:
                await asyncio.sleep(0)
            slow = []
            part = readers[start:start + BROADCAST_SLICE]
            for sub in part:
                # The hot path: one offer (one socket write) per reader. A reader whose
                # offer raises is treated as too slow: were the pass to stop there, the
                # readers after it would miss these messages for good (a gap), and the
                # heartbeat that called would die.
                try:
                    if not sub.offer(message, chunk):
                        slow.append(sub)
                except Exception:
                    logger.exception("tailer %s: a reader's write failed; cutting it off",
                                     self.slug)
                    slow.append(sub)
            if appended:
                self._count_delivery(appended, len(part) - len(slow))
            for sub in slow:
                if sub in self.subscribers:
                    self.dropped += 1
                    self.metrics.cut_off.inc()
                    self.unsubscribe(sub)
                    try:
                        sub.cut_off()
                    except Exception:
                        logger.exception("tailer %s: could not cut a reader off", self.slug)

    def _count_delivery(self, appended: list[float], readers: int) -> None:
        """One slice of a broadcast wrote `appended`'s messages to `readers` readers."""
        if readers <= 0:
            return
        self._delivered.inc(len(appended) * readers)
        now = time.time()
        for at in appended:
            # Redis stamps ids with its clock: on another machine, a skew shows up here.
            lag = max(now - at, 0.0)
            self.metrics.observe_lag(lag, readers)
            self.lags.append((time.monotonic(), lag, readers))

    def lag_percentiles(self) -> tuple[float, float] | None:
        """(p50, p95) in seconds of the last LAG_WINDOW_SECONDS' deliveries, weighted by
        readers; None if nothing was delivered in it."""
        since = time.monotonic() - LAG_WINDOW_SECONDS
        samples = sorted((lag, readers) for at, lag, readers in self.lags if at >= since)
        total = sum(readers for _, readers in samples)
        if not total:
            return None
        found: list[float] = []
        seen = 0
        wanted = [0.5 * total, 0.95 * total]
        for lag, readers in samples:
            seen += readers
            while wanted and seen >= wanted[0]:
                found.append(lag)
                wanted.pop(0)
        return found[0], found[1]

    def _rendered(self, change: Change) -> Change:
        """`change` with the markup the page inserts: an entry's article, a figure's row
        (markup.py), rendered here once per event for every reader of every process."""
        if isinstance(change, EntryChange | PinView) and change.entry is not None:
            return msgspec.structs.replace(change, entry=live_entry(change.entry, self.slug))
        if isinstance(change, FactChange):
            return msgspec.structs.replace(change, fact=live_fact(change.fact))
        return change

    def _remember_message(self, rec: Recorded, after: Blog) -> bytes | None:
        view = change_view(rec, after)
        event = stream_kind(rec)
        if view is None:
            # Nothing for readers (a draft, a blog-opened), but a page rendered right after
            # it resumes from its id: kept as an empty message, so that resuming from it
            # sends what follows rather than a whole snapshot.
            self.ring.append((rec.id, event, b"", None))
            self._trim_ring()
            return None
        change = self._rendered(view)
        message = sse_message(rec.id, event, change)
        # The view before rendering: the resume check needs only the entry's id and revision.
        carries = view if isinstance(view, EntryChange | PinView) and view.entry else None
        ring = self.ring
        ring.append((rec.id, event, message, carries))
        self.ring_bytes += len(message)
        self._trim_ring()
        return message

    def _trim_ring(self) -> None:
        ring = self.ring
        while ring and (len(ring) > RING_SIZE or self.ring_bytes > RING_BYTES):
            self.ring_bytes -= len(ring.popleft()[2])

    # -- readers -------------------------------------------------------------------------

    def subscribe(self, last_event_id: str | None,
                  sub: Subscription | None = None) -> tuple[Subscription, list[bytes]]:
        """Register a reader; return it and the messages it must get first.

        Synchronous on purpose: no event can be published between computing the first
        messages and registering the reader, so nothing falls between them. The caller
        offers the first messages before it next awaits anything. TailerStopped if this
        tailer was stopped (as _make_room may do to one just handed out, before its reader
        subscribed): nothing would ever be written to the reader, not even a heartbeat.
        """
        if not self.running:
            raise TailerStopped(f"the tailer of {self.slug!r} has stopped")
        if sub is None:
            sub = Subscription(self.queue_size)
        first = self.backlog(last_event_id)
        if first is None:
            first = [self.snapshot()]
        if sub not in self.subscribers:
            self.subscribers.add(sub)
            self._readers_gauge.inc()
        self._delivered.inc(len(first))
        return sub, first

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscribers:
            self.subscribers.discard(sub)
            # By one, not set to the count: a blog's old tailer may still be ending its
            # readers while its new one takes others, under the same label.
            self._readers_gauge.dec()
        if not self.subscribers:
            self.idle_since = time.monotonic()

    def backlog(self, last_event_id: str | None) -> list[bytes] | None:
        """The messages after `last_event_id`, or None if it cannot be placed."""
        if last_event_id is None:
            return None
        if last_event_id == self.state.last_event_id:
            return []
        # From the newest back: a reconnecting reader has usually missed only a few.
        missed: list[bytes] = []
        ring = self.ring
        for back, (event_id, event, message, carries) in enumerate(reversed(ring)):
            if event_id == last_event_id:
                missed.reverse()
                return missed
            if carries is not None and carries.entry is not None:
                stands = self.state.entries.get(carries.entry.id)
                if stands is None or stands.revision != carries.entry.revision:
                    # Words since retracted or corrected: replaying them would publish them
                    # again. Same message, same id, with the entry as it stands now (or,
                    # retracted, with no words at all; its retraction follows).
                    now = public_entry(stands, self.state) if stands else withdrawn(carries.entry)
                    carries = msgspec.structs.replace(carries, entry=now)
                    rewritten = sse_message(event_id, event, self._rendered(carries))
                    # Kept in the ring in its place, so that it is rendered once per change
                    # of its entry, not on every resume (an anonymous reader resuming from
                    # the oldest id again and again would have the whole ring re-rendered
                    # each time). A retraction is final: nothing to check any more.
                    ring[len(ring) - 1 - back] = (event_id, event, rewritten,
                                                  carries if stands else None)
                    self.ring_bytes += len(rewritten) - len(message)
                    message = rewritten
            if message:
                missed.append(message)
        return None

    def is_ahead(self, last_event_id: str | None) -> bool:
        theirs = ids.parse(last_event_id)
        ours = ids.parse(self.state.last_event_id)
        return theirs is not None and ours is not None and theirs > ours

    def is_over(self, last_event_id: str | None) -> bool:
        """True when the blog has ended and this reader has seen everything."""
        return self.state.status == "ended" and last_event_id == self.state.last_event_id

    def snapshot(self) -> bytes:
        if self._snapshot is None or self._snapshot[0] != self.state.version:
            view = live_blog(public_blog(self.state, limit=SNAPSHOT_ENTRIES))
            self._snapshot = (
                self.state.version, sse_message(self.state.last_event_id, "snapshot", view)
            )
        return self._snapshot[1]


class Hub:
    """The process's tailers, started on demand and stopped when idle, and the one
    heartbeat that keeps every idle stream of the process alive.

    It also counts the process's reader streams, whichever path serves them (the ASGI app
    or the HTTP protocol's fast path), so that anonymous readers cannot make a process hold
    more streams, or tail more blogs, than it was set up for.
    """

    def __init__(self, service: Service, *, queue_size: int = 256,
                 idle_seconds: float = 60.0, block_ms: int | None = None,
                 heartbeat_seconds: float = 15.0, max_streams: int = 10_000,
                 max_streams_per_client: int = 1000, max_tailers: int = 100,
                 max_tailers_per_client: int = 10,
                 drain_retry_seconds: float = DRAIN_RETRY_SECONDS,
                 metrics: Metrics | None = None) -> None:
        self.service = service
        self.metrics = metrics or Metrics()
        self.queue_size = queue_size
        self.idle_seconds = idle_seconds
        self.block_ms = block_ms
        self.heartbeat_seconds = heartbeat_seconds
        self.max_streams = max_streams
        self.max_streams_per_client = max_streams_per_client
        self.max_tailers = max_tailers
        self.max_tailers_per_client = max_tailers_per_client
        self.drain_retry_ms = drain_retry_ms(drain_retry_seconds)
        self.tailers: dict[str, Tailer] = {}
        # Who (client_key) made the process start tailing each blog, while it is tailed or
        # starting: one address must not take every tailer a process can hold.
        self.started_by: dict[str, str] = {}
        self.streams = 0
        self.streams_by_client: dict[str, int] = {}
        self._starting: dict[str, asyncio.Task[Tailer]] = {}
        self._chores: list[asyncio.Task[None]] = []
        # close() was called: no tailer starts from then on (its task would outlive the store).
        self.closed = False
        # drain() was called (SIGTERM): readers were sent away and no new one is kept;
        # /readyz answers 503 from then on, so a load balancer sends nobody here.
        self.draining = False
        # Who this process is in the blogs' audience hashes, and the blogs it reported on
        # last time (to withdraw from when they have no reader here any more).
        self.process_id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._audience_reported: set[str] = set()

    # -- limits --------------------------------------------------------------------------

    def admit(self, client: str | None) -> None:
        """Count a new stream from `client` (its address; None when it has none, as on a
        Unix socket), or raise Overloaded if the process or the client holds its maximum.
        Every admit is paired with one release when the stream ends."""
        if self.streams >= self.max_streams:
            raise Overloaded(
                f"this server holds its maximum of {self.max_streams} reader streams; "
                "retry later", _retry_after())
        if client is not None:
            key = client_key(client)
            held = self.streams_by_client.get(key, 0)
            if held >= self.max_streams_per_client:
                # The detail does not echo the address: it may be a proxy's idea of it.
                raise Overloaded(
                    f"your address holds its maximum of {self.max_streams_per_client} "
                    "reader streams on this server; close one or retry later", _retry_after())
            self.streams_by_client[key] = held + 1
        self.streams += 1

    def release(self, client: str | None) -> None:
        self.streams -= 1
        if client is not None:
            key = client_key(client)
            held = self.streams_by_client.get(key, 0) - 1
            if held > 0:
                self.streams_by_client[key] = held
            else:
                self.streams_by_client.pop(key, None)

    def _make_room(self) -> list[Tailer]:
        """Make room for one more tailer: take out the tailers that stopped, then, if still
        at the limit, the longest-idle one without readers (returned, to be stopped).
        Overloaded if every tailer has readers. Synchronous, so that two blogs starting at
        once cannot both take the last place."""
        stopped = [t for t in self.tailers.values() if not t.running]
        for tailer in stopped:
            del self.tailers[tailer.slug]
        if len(self.tailers) + len(self._starting) < self.max_tailers:
            return stopped
        idle = [t for t in self.tailers.values() if not t.subscribers]
        if not idle:
            raise Overloaded(
                f"this server follows its maximum of {self.max_tailers} blogs, each with "
                "readers; retry later", _retry_after())
        oldest = min(idle, key=lambda t: t.idle_since)
        logger.info("tailer %s: stopped to make room (%d blogs tailed)", oldest.slug,
                    self.max_tailers)
        del self.tailers[oldest.slug]
        return [*stopped, oldest]

    # -- tailers -------------------------------------------------------------------------

    def _budget(self, slug: str, client: str | None) -> None:
        """Overloaded if `client` already made this process tail its maximum of blogs
        (LIVEBLOG_MAX_TAILERS_PER_IP); otherwise count this one against it."""
        for started in [s for s in self.started_by
                        if s not in self.tailers and s not in self._starting]:
            del self.started_by[started]  # stopped since: no longer counted
        if client is None:
            return
        key = client_key(client)
        if sum(1 for who in self.started_by.values() if who == key) \
                >= self.max_tailers_per_client:
            raise Overloaded(
                f"your address made this server follow its maximum of "
                f"{self.max_tailers_per_client} blogs; retry later", _retry_after())
        self.started_by[slug] = key

    async def tailer(self, slug: str, client: str | None = None) -> Tailer:
        """The blog's running tailer, started if need be (at the request of `client`, an
        address, counted against its budget of blogs). NotFound if there is no such blog."""
        if self.closed or self.draining:
            raise Overloaded("this server is shutting down; retry later", _retry_after())
        tailer = self.tailers.get(slug)
        if tailer is not None and tailer.running:
            tailer.idle_since = time.monotonic()  # a request counts as use
            return tailer
        if slug not in self._starting:
            # Before making room: a slug that is no blog must not stop a real blog's tailer
            # (or get a 503 rather than its 404).
            if not await self.service.store.length(slug):
                raise NotFound(f"no blog {slug!r}")
            tailer = self.tailers.get(slug)
            if tailer is not None and tailer.running:  # started while we asked
                tailer.idle_since = time.monotonic()
                return tailer
        if not self._chores:
            self._chores = [
                asyncio.create_task(self._reap(), name="tailer-reaper"),
                asyncio.create_task(self._heartbeat(), name="heartbeat"),
                asyncio.create_task(self._report_audience(), name="audience"),
            ]
        starting = self._starting.get(slug)
        if starting is None:
            leaving = []
            if tailer is not None:  # it stopped (its blog left the log?): a new one's turn
                del self.tailers[slug]
                leaving.append(tailer)
            self._budget(slug, client)
            leaving += self._make_room()
            starting = asyncio.create_task(self._start(slug))
            self._starting[slug] = starting
            for old in leaving:
                await old.stop()
        return await asyncio.shield(starting)

    async def _start(self, slug: str) -> Tailer:
        try:
            tailer = Tailer(slug, self.service, queue_size=self.queue_size,
                            block_ms=self.block_ms, metrics=self.metrics)
            await tailer.start()
            if self.draining:  # drained while it loaded: it takes no reader either
                tailer.stopping = True
            self.tailers[slug] = tailer
            return tailer
        finally:
            # Here, not in the waiters: a waiter that is cancelled (its reader left while
            # the blog loaded) must not leave the slug counted as starting.
            del self._starting[slug]

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(max(self.idle_seconds / 4, 0.05))
            now = time.monotonic()
            for slug, tailer in list(self.tailers.items()):
                if self.tailers.get(slug) is not tailer:
                    continue  # stopped meanwhile, to make room (or replaced)
                if not tailer.running or (
                    not tailer.subscribers and now - tailer.idle_since > self.idle_seconds
                ):
                    del self.tailers[slug]
                    try:
                        await tailer.stop()
                    except Exception:  # one tailer's failure must not end the reaping
                        logger.exception("tailer %s: could not be stopped", slug)

    async def _heartbeat(self) -> None:
        interval = self.heartbeat_seconds
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for tailer in list(self.tailers.values()):
                # A blog that spoke within the interval needs no heartbeat; its newest
                # readers got their first bytes when they connected.
                if now - tailer.last_sent >= interval * 0.9:
                    try:
                        await tailer.broadcast(HEARTBEAT)
                    except Exception:  # one blog's failure must not silence every other
                        logger.exception("tailer %s: heartbeat failed", tailer.slug)

    def drain(self) -> None:
        """The server is going away (SIGTERM): end every reader's stream with a retry: of
        its own (see Tailer.drain), so browsers come back spread out, with Last-Event-ID, to
        whichever server the load balancer picks; from now on no reader is kept (stream.py
        sends one that arrives the same and ends it). Writes are not affected: one under
        way completes and is answered. Synchronous and idempotent."""
        if self.draining:
            return
        self.draining = True
        readers = sum(tailer.drain(self.drain_retry_ms) for tailer in self.tailers.values())
        logger.info("draining: %d readers told to reconnect within %.1f s", readers,
                    self.drain_retry_ms[1] / 1000)

    def stuck_tailers(self) -> list[str]:
        """The blogs whose running tailer has not heard from Redis for longer than its
        XREAD's block and the connection's margin: a tailer that works hears at least at
        every block's end."""
        now = time.monotonic()
        return sorted(
            slug for slug, tailer in self.tailers.items()
            if tailer.running
            and now - tailer.last_answer > tailer.block_ms / 1000 + STUCK_MARGIN_SECONDS)

    def audience(self) -> dict[str, AudienceReport]:
        """This process's readers and delivery lag for each blog it has readers of."""
        now = time.time()
        reports = {}
        for slug, tailer in self.tailers.items():
            if not tailer.subscribers:
                continue
            lag = tailer.lag_percentiles()
            reports[slug] = AudienceReport(
                readers=len(tailer.subscribers), lag_p50=lag and lag[0],
                lag_p95=lag and lag[1], at=now)
        return reports

    async def _report_audience(self) -> None:
        while True:
            await asyncio.sleep(AUDIENCE_SECONDS)
            reports = self.audience()
            gone = self._audience_reported - set(reports)
            try:
                await self.service.store.report_audience(
                    self.process_id, reports, gone, ttl_seconds=AUDIENCE_TTL_SECONDS)
            except StoreUnavailable:
                continue  # said by the tailers already; the next report makes up for it
            except Exception:
                logger.exception("could not report the audience")
                continue
            self._audience_reported = set(reports)

    async def _withdraw_audience(self) -> None:
        """At shutdown: this process's readers stop counting now, not in a few seconds."""
        if not self._audience_reported:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.service.store.report_audience(
                self.process_id, {}, self._audience_reported,
                ttl_seconds=AUDIENCE_TTL_SECONDS), 1.0)
        self._audience_reported = set()

    async def close(self) -> None:
        self.closed = True
        for chore in self._chores:
            chore.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await chore
        await self._withdraw_audience()
        # Tailers still loading: cancelled (a load that finished meanwhile has put its
        # tailer in self.tailers, stopped below); otherwise one would be added after this
        # and tail a closed store.
        starting = list(self._starting.values())
        for task in starting:
            task.cancel()
        for task in starting:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        for tailer in list(self.tailers.values()):
            await tailer.stop()
        self.tailers.clear()
