"""Webhooks: each public change of a blog POSTed, signed, to the endpoints that want it.

Endpoints are registry data, not events (they are no part of any blog's story): the store
keeps them, and all the state below, under the {liveblog} hash tag (see store.py).

One process at a time. Every server process (every worker) runs a Webhooks; the one that
holds a lease in Redis (LEASE_MS, renewed every tick of SCAN_SECONDS) queues and delivers,
so with any number of servers each change is queued once. When it stops (SIGTERM: it
hands the lease back) another takes over within a tick; when it dies, once the lease
expires. While no endpoint is registered nobody takes the lease, and a tick costs each
process one HLEN.

Queueing. Each tick the leader compares every wanted blog's last event id (in its meta
hash) with the blog's cursor (the last event it queued), reads what is new from the log,
folds it into its copy of the blog's state and, for each event that readers' streams
carry (views.change_view: not blog-opened, nor anything not public), encodes the body
once and appends it to the outbox (a Redis stream) of each endpoint that wants it. The
appends and the cursor's move are one script that also checks the lease and the cursor,
so a change is queued exactly once even while two processes both think they lead. The
log is only read: never trimmed, never rewritten. An endpoint is sent what was logged
after its registration (by Redis's clock, which stamps the log's ids), not a blog's past.

Delivery. Per endpoint, one task delivers its outbox in order, the first job until the
endpoint answers 2xx; only then does the job leave the outbox, so one in flight when a
process stops or dies is sent again by the next leader (at least once, never skipped).
No answer within LIVEBLOG_WEBHOOKS_TIMEOUT_SECONDS, a refused connection, a redirect or
any other status is a failure: the job is tried again after 1, 2, 4, ... s (each moved
by up to a fifth, at most 10 minutes), and the count, the first failure's time and the
next try are kept in Redis, so a restart keeps the schedule. After 24 hours of failures
in a row the endpoint is disabled. Every attempt is recorded (the last DELIVERIES_KEPT).
Each endpoint has its own task and its own connection: a slow or failing one delays only
itself, and readers never wait for any (the tailers feed their streams, not this).

Signing follows the Standard Webhooks specification, with its reference library:
`webhook-id` is the event id (the same on every retry; unique within its blog, so a
receiver deduplicates by blog and id), `webhook-timestamp` the attempt's time, and
`webhook-signature` "v1," and the base64 HMAC-SHA256 of "id.timestamp.body" keyed with
the endpoint's secret ("whsec_" and base64 of 24 random bytes, shown once).

With LIVEBLOG_WEBHOOKS_FORBID_PRIVATE, a URL whose host is or resolves to a non-public
address is refused at registration, and every delivery resolves the host itself, checks
each address and connects to the address it checked (httpcore's network backend), so a
name re-pointed inward after registration is refused too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import logging
import os
import random
import secrets
import socket
import time
import typing
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpcore
import msgspec
import standardwebhooks

from liveblog import version
from liveblog.domain import ids
from liveblog.domain.state import Blog, CorruptLog, apply, fold
from liveblog.domain.views import change_view, stream_kind
from liveblog.domain.webhooks import Delivery, Endpoint, backoff, message
from liveblog.errors import StoreUnavailable
from liveblog.store import RetryState, Store, WebhookJob

logger = logging.getLogger("liveblog.webhooks")

LEASE_MS = 10_000
SCAN_SECONDS = 0.25
# Events read and queued per script: a blog's backlog goes in slices, the lease renewed
# between them.
QUEUE_BATCH = 200
# Blogs whose state the leader keeps (to tell the change each new event makes).
STATES_KEPT = 64
# An idle deliverer looks at its outbox this often even if nobody wakes it (a job queued
# by another process that led for a moment).
IDLE_SECONDS = 5.0
# How long a registration waits for DNS (LIVEBLOG_WEBHOOKS_FORBID_PRIVATE).
RESOLVE_SECONDS = 5.0
USER_AGENT = f"liveblog-webhooks/{version()}".encode()
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Retry:
    """The retry schedule: `base` seconds after the first failure, doubling, each moved by
    up to ±`jitter` of itself, at most `cap`; the endpoint is disabled once its deliveries
    have failed for `give_up_after` seconds in a row. Tests shrink it."""

    base: float = 1.0
    cap: float = 600.0
    give_up_after: float = 24 * 3600.0
    jitter: float = 0.2


class Refused(Exception):
    """A target address that LIVEBLOG_WEBHOOKS_FORBID_PRIVATE forbids."""


def new_endpoint_id() -> str:
    return "wh_" + secrets.token_hex(8)


def new_secret() -> str:
    """A Standard Webhooks secret: "whsec_" and the base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def is_public(address: str) -> bool:
    """Whether an IP address is one on the public internet: not loopback, private,
    link-local, shared (carrier NAT), reserved, unspecified or multicast."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        address.split("%", 1)[0])  # an IPv6 zone ("fe80::1%eth0") is not part of it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def public_addresses(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to; Refused if any of them is not public (a name
    that resolves both ways is refused: which one a client picks is not ours to know)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    private = [address for address in addresses if not is_public(address)]
    if private:
        shown = host if host == private[0] else f"{host} resolves to {private[0]}, which"
        raise Refused(f"{shown} is not a public address")
    return addresses


async def target_problem(url: str) -> str | None:
    """Why LIVEBLOG_WEBHOOKS_FORBID_PRIVATE refuses `url`; None if it does not."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        await asyncio.wait_for(public_addresses(host, port), RESOLVE_SECONDS)
    except Refused as exc:
        return f"{exc} (LIVEBLOG_WEBHOOKS_FORBID_PRIVATE is on)"
    except (OSError, TimeoutError):
        return "has a host name that does not resolve"
    return None


class _Backend(httpcore.AsyncNetworkBackend):
    """httpcore's own network backend, but connecting only to public addresses, each one
    checked right before the connection is made to it (when `forbid_private`)."""

    def __init__(self, forbid_private: bool) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.forbid_private = forbid_private

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 - its interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if not self.forbid_private:
            return await self.inner.connect_tcp(host, port, timeout, local_address,
                                                socket_options)
        failure: Exception | None = None
        for address in await public_addresses(host, port):
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address,
                                                    socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"{host} has no address")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,  # noqa: ASYNC109 - its interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks go over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def _moment(unix: float) -> datetime:
    return datetime.fromtimestamp(round(unix, 3), UTC)


class Webhooks:
    """The process's part in webhooks: trying for the lease each tick, and, holding it,
    queueing new changes and running one Deliverer per enabled endpoint."""

    def __init__(self, store: Store, *, forbid_private: bool = False,
                 timeout_seconds: float = 10.0, retry: Retry | None = None,
                 clock: Callable[[], float] = time.time, lease_ms: int = LEASE_MS,
                 scan_seconds: float = SCAN_SECONDS,
                 draw: Callable[[], float] = random.random) -> None:
        self.store = store
        self.forbid_private = forbid_private
        self.timeout_seconds = timeout_seconds
        self.retry = retry or Retry()
        self.clock = clock
        self.lease_ms = lease_ms
        self.scan_seconds = scan_seconds
        self.draw = draw
        self.holder = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.leading = False
        self.stopping = False
        self.deliverers: dict[str, Deliverer] = {}
        # The state of each blog at its cursor (the last event queued), the most recently
        # used last.
        self.states: OrderedDict[str, Blog] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._stopped: asyncio.Task[None] | None = None
        self._said_down = False

    def start(self) -> None:
        if not self.stopping:
            self._task = asyncio.create_task(self._run(), name="webhooks")

    def drain(self) -> None:
        """Stop now (SIGTERM): a delivery in flight is cancelled, and made again by the
        next process to lead (it is still first in its outbox), which can take over as
        soon as the lease is handed back, right after. Synchronous and idempotent."""
        self.stopping = True
        if self._stopped is None:
            self._stopped = asyncio.get_running_loop().create_task(self._stop())

    async def close(self) -> None:
        self.drain()
        assert self._stopped is not None
        await self._stopped

    async def _stop(self) -> None:
        if self._task is not None:
            await _cancelled(self._task)
        for deliverer in list(self.deliverers.values()):
            await deliverer.stop()
        self.deliverers.clear()
        if self.leading:
            self.leading = False
            # Handed back, so another process takes over at its next tick rather than when
            # the lease expires; if Redis is gone too (the embedded one, stopping with us),
            # the lease expires by itself.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.store.release_lease(self.holder), 1.0)

    async def _run(self) -> None:
        while not self.stopping:
            try:
                await self.tick()
                if self._said_down:
                    logger.info("webhooks: Redis answers again")
                    self._said_down = False
            except StoreUnavailable as exc:
                # Not while stopping: the embedded Redis may stop first (same signal).
                if not self._said_down and not self.stopping:
                    logger.warning("webhooks: Redis is unavailable (%s); trying again every "
                                   "%.2g s", exc.__cause__ or exc, self.scan_seconds)
                    self._said_down = True
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("webhooks: a round of queueing failed; trying again")
            await asyncio.sleep(self.scan_seconds)

    async def tick(self) -> None:
        """One round: take or renew the lease; leading, queue what is new."""
        if not self.leading and not await self.store.has_webhooks():
            return
        if not await self._lead():
            return
        endpoints = [e for e in await self.store.webhooks() if e.disabled_at is None]
        await self._sync_deliverers(endpoints)
        if not endpoints:
            await self.store.release_lease(self.holder)
            self.leading = False
            return
        await self._queue(endpoints)

    async def _lead(self) -> bool:
        leading = await self.store.take_lease(self.holder, self.lease_ms)
        if leading and not self.leading:
            logger.info("webhooks: this process delivers them now (%s)", self.holder)
        if not leading:
            if self.leading:
                logger.warning("webhooks: another process took over delivering them")
            await self._stop_leading()
        self.leading = leading
        return leading

    async def _stop_leading(self) -> None:
        self.leading = False
        self.states.clear()
        await self._sync_deliverers([])

    async def _sync_deliverers(self, endpoints: list[Endpoint]) -> None:
        """One deliverer per endpoint of `endpoints`, and none for any other."""
        wanted = {endpoint.id: endpoint for endpoint in endpoints}
        for endpoint_id in [i for i in self.deliverers if i not in wanted]:
            await self.deliverers.pop(endpoint_id).stop()
        for endpoint_id, endpoint in wanted.items():
            deliverer = self.deliverers.get(endpoint_id)
            if deliverer is not None and deliverer.task.done():
                await self.deliverers.pop(endpoint_id).stop()  # it ended (disabled)
                deliverer = None
            if deliverer is None and not self.stopping:
                self.deliverers[endpoint_id] = Deliverer(self, endpoint)

    # -- queueing ------------------------------------------------------------------------

    async def _queue(self, endpoints: list[Endpoint]) -> None:
        every_blog = any(endpoint.blogs is None for endpoint in endpoints)
        wanted = None if every_blog else sorted(
            {slug for endpoint in endpoints for slug in endpoint.blogs or ()})
        heads = await self.store.blog_heads(wanted)
        cursors = await self.store.webhook_cursors()
        for slug, head in heads.items():
            cursor = cursors.get(slug)
            if cursor == head:
                continue
            interested = [e for e in endpoints if e.blogs is None or slug in e.blogs]
            try:
                if not await self._queue_blog(slug, cursor, head, interested):
                    return  # the lease is lost
            except CorruptLog as exc:
                # The log is not the one the cursor points into (restored from an older
                # copy, or emptied): carry on from what it holds now.
                logger.warning("webhooks: blog %s: %s; queueing from its last event on",
                               slug, exc)
                self.states.pop(slug, None)
                await self.store.queue_webhooks(self.holder, slug, cursor, head, [], [])

    async def _queue_blog(self, slug: str, cursor: str | None, head: str,
                          endpoints: list[Endpoint]) -> bool:
        """Queue the blog's events after `cursor` for `endpoints`; False if the lease was
        lost on the way."""
        head_at = ids.position(head)
        if cursor is not None and head_at < ids.position(cursor):
            raise CorruptLog(f"its last event {head} is older than {cursor}, the last queued")
        if head_at.ms < min(e.created_ms for e in endpoints):
            # Nothing logged since any of them was registered: no need to read the log.
            self.states.pop(slug, None)
            return await self._queued(slug, await self.store.queue_webhooks(
                self.holder, slug, cursor, head, [], []))
        state = await self._state_at(slug, cursor)
        while True:
            events = await self.store.read(slug, after=cursor, count=QUEUE_BATCH)
            if not events:
                return True
            changes: list[tuple[str, str, bytes]] = []
            targets: list[tuple[int, str]] = []
            for rec in events:
                state = apply(state, rec)
                change = change_view(rec, state)
                if change is None:
                    continue
                # The kind readers' streams name it by, the type endpoints filter on: a
                # draft published is, to them, an entry posted.
                event_kind, event_ms = stream_kind(rec), ids.position(rec.id).ms
                wanting = [e.id for e in endpoints if e.wants(slug, event_kind, event_ms)]
                if wanting:
                    targets += [(len(changes), endpoint_id) for endpoint_id in wanting]
                    body = _encode(message(slug, rec, change, event_kind))
                    changes.append((rec.id, event_kind, body))
            outcome = await self.store.queue_webhooks(self.holder, slug, cursor, events[-1].id,
                                                      changes, targets)
            if not await self._queued(slug, outcome):
                return outcome != "lost"
            cursor = events[-1].id
            self._remember(slug, state)
            for endpoint_id in {endpoint_id for _, endpoint_id in targets}:
                deliverer = self.deliverers.get(endpoint_id)
                if deliverer is not None:
                    deliverer.wake.set()
            if len(events) < QUEUE_BATCH:
                return True
            if not await self._lead():
                return False

    async def _queued(self, slug: str, outcome: str) -> bool:
        if outcome == "ok":
            return True
        self.states.pop(slug, None)
        if outcome == "lost":
            logger.warning("webhooks: the lease was lost while queueing")
            await self._stop_leading()
        # "moved": another process queued meanwhile; the next tick starts from its cursor.
        return False

    async def _state_at(self, slug: str, cursor: str | None) -> Blog | None:
        if cursor is None:
            return None
        cached = self.states.get(slug)
        if cached is not None and cached.last_event_id == cursor:
            return cached
        state = fold(await self.store.read(slug, upto=cursor))
        if state is None or state.last_event_id != cursor:
            raise CorruptLog(f"the log does not hold {cursor}, the last event queued")
        return state

    def _remember(self, slug: str, state: Blog | None) -> None:
        if state is None:
            return
        self.states[slug] = state
        self.states.move_to_end(slug)
        while len(self.states) > STATES_KEPT:
            self.states.popitem(last=False)


class Deliverer:
    """Delivers one endpoint's outbox, in order, for as long as its process leads."""

    def __init__(self, owner: Webhooks, endpoint: Endpoint) -> None:
        self.owner = owner
        self.endpoint = endpoint
        self.wake = asyncio.Event()
        self.signer = standardwebhooks.Webhook(endpoint.secret)
        # One connection: deliveries to an endpoint go one at a time, in order.
        self.pool = httpcore.AsyncConnectionPool(
            max_connections=1, network_backend=_Backend(owner.forbid_private),
            # httpcore writes a request's head and body apart: without this, Nagle's
            # algorithm holds the body for the receiver's delayed ACK (40 ms here).
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self.task = asyncio.create_task(self._run(), name=f"webhook:{endpoint.id}")

    async def stop(self) -> None:
        await _cancelled(self.task)
        with contextlib.suppress(Exception):
            await self.pool.aclose()

    async def _run(self) -> None:
        pause = self.owner.scan_seconds
        while True:
            try:
                self.wake.clear()  # before looking: a job queued after this wakes it
                found = await self.owner.store.next_webhook_job(self.endpoint.id)
                if found is None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), IDLE_SECONDS)
                    continue
                job, failed = found
                if failed is not None:
                    wait = failed.next_ms / 1000 - self.owner.clock()
                    if wait > 0:
                        await asyncio.sleep(wait)
                        continue
                if not await self._attempt(job, failed):
                    return  # disabled, or deleted: nothing more to deliver
                pause = self.owner.scan_seconds
            except StoreUnavailable:
                await asyncio.sleep(pause)  # said by the owner's tick
                pause = min(pause * 2, 5.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("webhook %s: delivery failed; trying again",
                                 self.endpoint.id)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    async def _attempt(self, job: WebhookJob, failed: RetryState | None) -> bool:
        """Send `job` once and record how it went; False if the endpoint is no more (or
        is disabled by this attempt)."""
        owner, endpoint = self.owner, self.endpoint
        began = owner.clock()
        started = time.monotonic()
        status, error = await self._send(job, int(began))
        took = round((time.monotonic() - started) * 1000, 1)
        attempt = (failed.attempts if failed else 0) + 1
        if error is None:
            record = Delivery(event_id=job.event_id, blog=job.blog, type=job.type,
                              attempt=attempt, status_code=status, error=None,
                              at=_moment(began), duration_ms=took, next_retry_at=None)
            return await owner.store.webhook_attempted(endpoint.id, job, record)
        ended = owner.clock()
        since_ms = failed.since_ms if failed else int(began * 1000)
        disabled = None
        next_at: float | None = None
        if ended * 1000 - since_ms >= owner.retry.give_up_after * 1000:
            disabled = msgspec.structs.replace(endpoint, disabled_at=_moment(ended))
        else:
            next_at = ended + backoff(attempt, base=owner.retry.base, cap=owner.retry.cap,
                                      jitter=owner.retry.jitter, draw=owner.draw())
        record = Delivery(event_id=job.event_id, blog=job.blog, type=job.type,
                          attempt=attempt, status_code=status, error=error,
                          at=_moment(began), duration_ms=took,
                          next_retry_at=None if next_at is None else _moment(next_at))
        state = RetryState(attempts=attempt, since_ms=since_ms,
                           next_ms=0 if next_at is None else int(next_at * 1000))
        kept = await owner.store.webhook_attempted(endpoint.id, job, record, state, disabled)
        if disabled is not None and kept:
            logger.warning("webhook %s disabled: its deliveries failed for %.0f s in a row "
                           "(the last: %s)", endpoint.id, ended - since_ms / 1000, error)
        return kept and disabled is None

    async def _send(self, job: WebhookJob, timestamp: int) -> tuple[int | None, str | None]:
        """POST the job: (the status, None) for a 2xx; else (the status or None, why)."""
        signature = self.signer.sign(job.event_id, datetime.fromtimestamp(timestamp, UTC),
                                     job.body.decode())
        headers = [
            (b"Content-Type", b"application/json"),
            (b"User-Agent", USER_AGENT),
            (b"webhook-id", job.event_id.encode()),
            (b"webhook-timestamp", str(timestamp).encode()),
            (b"webhook-signature", signature.encode()),
        ]
        timeout = self.owner.timeout_seconds
        limits = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        try:
            # The whole attempt, not only each read: an endpoint dripping a byte a second
            # would otherwise hold it for ever.
            async with asyncio.timeout(timeout):
                async with self.pool.stream("POST", self.endpoint.url, headers=headers,
                                            content=job.body,
                                            extensions={"timeout": limits}) as response:
                    # The answer's status is all we need; its body is never read.
                    status = response.status
        except (TimeoutError, httpcore.TimeoutException):
            return None, f"no answer within {timeout:g} s"
        except Refused as exc:
            return None, f"refused: {exc}"
        except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300]
        if 200 <= status < 300:
            return status, None
        return status, f"answered {status}"


async def _cancelled(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait for it to end. Again until it does: on Python 3.11 redis-py
    sends a command through asyncio.wait_for, which can lose a cancellation (see
    live.Tailer.stop)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    with contextlib.suppress(Exception, asyncio.CancelledError):
        task.result()
