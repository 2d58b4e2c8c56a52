"""The event store: the only module that speaks Redis.

Keys (the `{slug}` hash tag puts all of one blog's keys in one Redis Cluster slot, so the
append script may touch them together):

    liveblog:{slug}:log          stream: the blog's events, never trimmed
    liveblog:{slug}:meta         hash: title, status, version, last_event_id, times, and
                                 rev:<entry id> (each entry's revision, "x" once retracted)
    liveblog:{slug}:idem:<hash>  string: "<event id> <request fingerprint>", expires
    {liveblog}:blogs             sorted set: every slug ever opened (score: opening time)
    {liveblog}:tokens            hash: sha256(token) -> {name, role, created_at}
    {liveblog}:token-names       hash: name -> sha256(token)

A stream entry's fields: v (blog version), type, at (ISO 8601), actor, role, data (the
event's tagged JSON).
"""

from __future__ import annotations

import functools
import hashlib
import socket
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import msgspec
import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff

from liveblog.domain.events import Actor, Event, Recorded, event_decoder, event_encoder, kind
from liveblog.errors import (
    Conflict,
    IdempotencyKeyReused,
    PreconditionFailed,
    StoreUnavailable,
    VersionConflict,
)

IDEMPOTENCY_TTL_SECONDS = 25 * 3600  # "at least 24 hours", with an hour to spare
# The longest a tailer's XREAD blocks (LIVEBLOG_TAIL_BLOCK_MS), and how much longer its
# connection waits for the answer before it gives the connection up as dead: Redis answers
# an empty XREAD at the block's end; the margin covers a Redis busy for a moment (a fork, a
# long script) and the network. A connection that died without a FIN (a NAT that forgot
# it, a failover that left it dangling) would otherwise leave the tailer waiting for ever.
BLOCK_MS = 5_000
BLOCK_MARGIN_SECONDS = 2.0
# TCP keepalive on the blocking connection: probes after 10 s of silence, every 5 s, 3 of
# them. The socket timeout above notices first at the default block; this still ends a
# connection whose peer vanished when the block is set long (up to 60 s).
KEEPALIVE = {
    option: value
    for option, value in ((getattr(socket, "TCP_KEEPIDLE", None), 10),
                          (getattr(socket, "TCP_KEEPINTVL", None), 5),
                          (getattr(socket, "TCP_KEEPCNT", None), 3))
    if option is not None
}

# KEYS: log, meta[, idempotency]
# ARGV: expected version ('' = any, 'live' = any while the blog is live), entry id
#       ('' = none), expected revision ('' = any, '0' = must not exist, 'N'),
#       new revision ('' = keep, 'N', 'x' = retracted),
#       fingerprint, ttl, stream id ('*' = new; an import keeps the original),
#       number of summary pairs, summary pairs..., event field pairs...
_APPEND = """
local log, meta, idem = KEYS[1], KEYS[2], KEYS[3]
if idem then
  local seen = redis.call('GET', idem)
  if seen then return {'seen', seen} end
end
local version = redis.call('XLEN', log)
if ARGV[1] == 'live' then
  if version == 0 or redis.call('HGET', meta, 'status') == 'ended' then
    return {'conflict', tostring(version)}
  end
elseif ARGV[1] ~= '' and tonumber(ARGV[1]) ~= version then
  return {'conflict', tostring(version)}
end
local entry = ARGV[2]
if entry ~= '' and ARGV[3] ~= '' then
  local rev = redis.call('HGET', meta, 'rev:' .. entry) or '0'
  if rev ~= ARGV[3] then return {'stale', rev} end
end
version = version + 1
local npairs = tonumber(ARGV[8])
local fields = {'v', tostring(version)}
for i = 9 + 2 * npairs, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', log, ARGV[7], unpack(fields))
local summary = {'version', tostring(version), 'last_event_id', id}
for i = 9, 8 + 2 * npairs do summary[#summary + 1] = ARGV[i] end
if entry ~= '' and ARGV[4] ~= '' then
  summary[#summary + 1] = 'rev:' .. entry
  summary[#summary + 1] = ARGV[4]
end
redis.call('HSET', meta, unpack(summary))
if idem then redis.call('SET', idem, id .. ' ' .. ARGV[5], 'EX', tonumber(ARGV[6])) end
return {'ok', id, tostring(version)}
"""

_CREATE_TOKEN = """
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1
"""

_REVOKE_TOKEN = """
local digest = redis.call('HGET', KEYS[2], ARGV[1])
if not digest then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], digest)
return 1
"""

# KEYS: log. ARGV: an event id. The version (field v) of that event, or nil if the log
# has no such event: the answer is a number, not the whole entry.
_VERSION_OF = """
local rows = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #rows == 0 then return false end
local fields = rows[1][2]
for i = 1, #fields, 2 do
  if fields[i] == 'v' then return tonumber(fields[i + 1]) end
end
return false
"""

_BLOGS = "{liveblog}:blogs"
_TOKENS = "{liveblog}:tokens"
_TOKEN_NAMES = "{liveblog}:token-names"

P = ParamSpec("P")
T = TypeVar("T")


def _unavailable_on_redis_errors(
    method: Callable[P, Awaitable[T]],
) -> Callable[P, Awaitable[T]]:
    """Turn "Redis cannot be reached" into StoreUnavailable (503 with Retry-After)."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.BusyLoadingError, OSError) as exc:
            # The cause names Redis's address: it stays chained for logs and the CLI, and
            # never reaches a client's problem body.
            raise StoreUnavailable() from exc

    return wrapper


class TokenRecord(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    role: str
    created_at: datetime


class BlogSummary(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    title: str
    status: str
    version: int
    opened_at: datetime
    updated_at: datetime


class Appended(msgspec.Struct, frozen=True):
    """The outcome of an append: the new event, or the one an idempotency key already made."""

    recorded: Recorded
    replayed: bool


class Store:
    def __init__(self, client: aioredis.Redis, blocking: aioredis.Redis | None = None,
                 writer: aioredis.Redis | None = None, *, block_ms: int = BLOCK_MS) -> None:
        # redis-py's return types are unions of every reply shape; this module knows which
        # shape each command returns (bytes, as decode_responses is off), so it reads them
        # as Any and decodes explicitly.
        self.redis: Any = client
        # The append runs on a client that never retries by itself: a retry after a lost
        # reply would run the script twice. The caller gets 503 instead, and a retry with
        # its Idempotency-Key is safe.
        self.writer: Any = writer or client
        # Tailers block in XREAD on connections of their own, so as not to starve the
        # request pool; their socket timeout is the block plus a margin (see from_url).
        self.blocking: Any = blocking or client
        self.block_ms = block_ms
        self._append = self.writer.register_script(_APPEND)
        self._create_token = client.register_script(_CREATE_TOKEN)
        self._revoke_token = client.register_script(_REVOKE_TOKEN)
        self._version_of = client.register_script(_VERSION_OF)

    @classmethod
    def from_url(cls, url: str, *, block_ms: int = BLOCK_MS) -> Store:
        """Clients for `url`; tailers' XREADs block for `block_ms` at most."""
        client = aioredis.from_url(
            url,
            socket_connect_timeout=2,
            socket_timeout=10,
            health_check_interval=15,
            # Ride over a blip (a restart, a failover) for about half a second, then answer
            # 503 quickly rather than hold the request for seconds.
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=4),
        )
        tcp = {} if url.startswith("unix://") else {
            "socket_keepalive": True, "socket_keepalive_options": KEEPALIVE}
        blocking = aioredis.from_url(
            url, socket_connect_timeout=2,
            socket_timeout=block_ms / 1000 + BLOCK_MARGIN_SECONDS, health_check_interval=0,
            # No retry inside redis-py (its default retries ten times, with backoff): the
            # tailer sees the timeout at once, says so in the log, and reconnects itself.
            retry=Retry(NoBackoff(), 0), **tcp,
        )
        writer = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=10,
                                   health_check_interval=15, retry=Retry(NoBackoff(), 0))
        return cls(client, blocking, writer, block_ms=block_ms)

    async def close(self) -> None:
        await self.redis.aclose()
        for other in (self.blocking, self.writer):
            if other is not self.redis:
                await other.aclose()

    @_unavailable_on_redis_errors
    async def ping(self) -> None:
        await self.redis.ping()

    # -- blogs ---------------------------------------------------------------------------

    @_unavailable_on_redis_errors
    async def register_blog(self, slug: str, at: datetime) -> None:
        """Remember the slug for listing; listing skips slugs whose log is still empty."""
        await self.redis.zadd(_BLOGS, {slug: at.timestamp()}, nx=True)

    @_unavailable_on_redis_errors
    async def list_blogs(self) -> list[BlogSummary]:
        slugs = [s.decode() for s in await self.redis.zrange(_BLOGS, 0, -1)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for slug in slugs:
                pipe.hgetall(_meta(slug))
            metas: list[dict[bytes, bytes]] = await pipe.execute()
        blogs = []
        for slug, meta in zip(slugs, metas, strict=True):
            if b"version" not in meta:
                continue
            blogs.append(BlogSummary(
                slug=slug,
                title=meta[b"title"].decode(),
                status=meta[b"status"].decode(),
                version=int(meta[b"version"]),
                opened_at=datetime.fromisoformat(meta[b"opened_at"].decode()),
                updated_at=datetime.fromisoformat(meta[b"updated_at"].decode()),
            ))
        return blogs

    # -- the log -------------------------------------------------------------------------

    @_unavailable_on_redis_errors
    async def append(
        self,
        slug: str,
        event: Event,
        actor: Actor,
        at: datetime,
        *,
        expected_version: int | None = None,
        while_live: bool = False,
        entry_revision: tuple[str, str, str] | None = None,
        summary: Mapping[str, str] | None = None,
        idempotency: tuple[str, str] | None = None,
        event_id: str = "*",
    ) -> Appended:
        """Append one event atomically, or raise without appending anything.

        expected_version: the blog version the caller decided on (VersionConflict if not).
        while_live: instead of a version, only require the blog to be live (for events
            that mean the same whatever else landed first, such as a new entry).
        entry_revision: (entry id, expected revision, new revision), see _APPEND.
        summary: fields of the blog's meta hash to set with it (title, status, times).
        idempotency: (key, request fingerprint); a key seen before returns its event.
        event_id: the stream id to use; only an import sets it (to the exported id).
        """
        keys = [_log(slug), _meta(slug)]
        if idempotency is not None:
            keys.append(_idempotency(slug, actor.name, idempotency[0]))
        entry, expected_rev, new_rev = entry_revision or ("", "", "")
        pairs = {"updated_at": at.isoformat(), **(summary or {})}
        args: list[str | bytes] = [
            "live" if while_live else "" if expected_version is None else str(expected_version),
            entry, expected_rev, new_rev,
            idempotency[1] if idempotency else "",
            str(IDEMPOTENCY_TTL_SECONDS),
            event_id,
            str(len(pairs)),
        ]
        for name, value in pairs.items():
            args += [name, value]
        args += [
            "type", kind(event),
            "at", at.isoformat(),
            "actor", actor.name,
            "role", actor.role,
            "data", event_encoder.encode(event),
        ]
        reply = await self._append(keys=keys, args=args)
        outcome = reply[0].decode()
        if outcome == "ok":
            event_id = reply[1].decode()
            recorded = Recorded(
                id=event_id, version=int(reply[2]), at=at, actor=actor.name, role=actor.role,
                event=event,
            )
            return Appended(recorded, replayed=False)
        if outcome == "conflict":
            raise VersionConflict(expected_version or 0, int(reply[1]))
        if outcome == "stale":
            current = reply[1].decode()
            if current == "x":
                raise Conflict(f"entry {entry} was retracted meanwhile")
            raise PreconditionFailed(
                f"entry {entry} is at revision {current}, not {expected_rev}"
            )
        # "seen": the idempotency key was used before.
        event_id, _, fingerprint = reply[1].decode().partition(" ")
        if idempotency is not None and fingerprint != idempotency[1]:
            raise IdempotencyKeyReused(idempotency[0])
        recorded_before = await self.event(slug, event_id)
        return Appended(recorded_before, replayed=True)

    @_unavailable_on_redis_errors
    async def find_idempotent(self, slug: str, actor: Actor, key: str) -> tuple[str, str] | None:
        """The (event id, fingerprint) an idempotency key produced, if it is remembered."""
        seen = await self.redis.get(_idempotency(slug, actor.name, key))
        if seen is None:
            return None
        event_id, _, fingerprint = seen.decode().partition(" ")
        return event_id, fingerprint

    @_unavailable_on_redis_errors
    async def event(self, slug: str, event_id: str) -> Recorded:
        rows = await self.redis.xrange(_log(slug), min=event_id, max=event_id)
        if not rows:
            raise LookupError(f"no event {event_id} in blog {slug!r}")
        return _decode(rows[0])

    @_unavailable_on_redis_errors
    async def read(
        self,
        slug: str,
        *,
        after: str | None = None,
        upto: str | None = None,
        count: int | None = None,
    ) -> list[Recorded]:
        """Events in log order, after `after` (exclusive) up to `upto` (inclusive)."""
        low = "-" if after is None else "(" + after
        high = "+" if upto is None else upto
        rows = await self.redis.xrange(_log(slug), min=low, max=high, count=count)
        return [_decode(row) for row in rows]

    @_unavailable_on_redis_errors
    async def read_all(self, slug: str, *, after: str | None = None,
                       page: int = 2000) -> tuple[list[Recorded], int]:
        """Every event after `after`, and the log's length, read in pages."""
        events: list[Recorded] = []
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(_log(slug))
            pipe.xrange(_log(slug), min="-" if after is None else "(" + after, count=page)
            length, rows = await pipe.execute()
        while True:
            events.extend(_decode(row) for row in rows)
            if len(rows) < page:
                return events, int(length)
            rows = await self.redis.xrange(_log(slug), min="(" + events[-1].id, count=page)

    @_unavailable_on_redis_errors
    async def wait_for_events(
        self, slug: str, after: str, *, block_ms: int, count: int = 1000
    ) -> list[Recorded]:
        """Events after `after`, waiting up to `block_ms` for the first (XREAD BLOCK), or
        the store's block if that is shorter (its connection would time out first).
        StoreUnavailable if Redis does not answer within the block and its margin."""
        block = min(block_ms, self.block_ms)
        reply = await self.blocking.xread({_log(slug): after}, block=block, count=count)
        if not reply:
            return []
        return [_decode(row) for row in reply[0][1]]

    @_unavailable_on_redis_errors
    async def version_of(self, slug: str, event_id: str) -> int | None:
        """The version of the event `event_id` in the blog's log; None if it has none."""
        version = await self._version_of(keys=[_log(slug)], args=[event_id])
        return None if version is None else int(version)

    @_unavailable_on_redis_errors
    async def length(self, slug: str) -> int:
        return int(await self.redis.xlen(_log(slug)))

    # -- tokens --------------------------------------------------------------------------

    @_unavailable_on_redis_errors
    async def create_token(self, name: str, role: str, secret: str, at: datetime) -> bool:
        """Store a token by its hash; False if the name is taken."""
        record = msgspec.json.encode(TokenRecord(name=name, role=role, created_at=at))
        created = await self._create_token(
            keys=[_TOKENS, _TOKEN_NAMES], args=[name, _digest(secret), record]
        )
        return bool(created)

    @_unavailable_on_redis_errors
    async def find_token(self, secret: str) -> TokenRecord | None:
        raw = await self.redis.hget(_TOKENS, _digest(secret))
        return None if raw is None else msgspec.json.decode(raw, type=TokenRecord)

    @_unavailable_on_redis_errors
    async def list_tokens(self) -> list[TokenRecord]:
        raw = await self.redis.hgetall(_TOKENS)
        records = [msgspec.json.decode(value, type=TokenRecord) for value in raw.values()]
        return sorted(records, key=lambda r: r.created_at)

    @_unavailable_on_redis_errors
    async def revoke_token(self, name: str) -> bool:
        return bool(await self._revoke_token(keys=[_TOKENS, _TOKEN_NAMES], args=[name]))


def _decode(row: tuple[bytes, dict[bytes, bytes]]) -> Recorded:
    event_id, fields = row
    return Recorded(
        id=event_id.decode(),
        version=int(fields[b"v"]),
        at=datetime.fromisoformat(fields[b"at"].decode()),
        actor=fields[b"actor"].decode(),
        role=fields[b"role"].decode(),  # type: ignore[arg-type]
        event=event_decoder.decode(fields[b"data"]),
    )


def _log(slug: str) -> str:
    return f"liveblog:{{{slug}}}:log"


def _meta(slug: str) -> str:
    return f"liveblog:{{{slug}}}:meta"


def _idempotency(slug: str, actor: str, key: str) -> str:
    scope = hashlib.sha256(f"{actor}\0{key}".encode()).hexdigest()[:32]
    return f"liveblog:{{{slug}}}:idem:{scope}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
