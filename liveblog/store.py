"""The event store: the only module that speaks Redis.

Keys (the `{slug}` hash tag puts all of one blog's keys in one Redis Cluster slot, so the
append script may touch them together):

    liveblog:{slug}:log          stream: the blog's events, never trimmed
    liveblog:{slug}:meta         hash: title, description, status, version, last_event_id,
                                 times, entries (the updates readers see) (what the list
                                 of blogs shows: a few fields, whatever the size)
    liveblog:{slug}:revs         hash: entry id -> its revision ("x" once retracted).
                                 Stores written before it held these in meta, as
                                 rev:<entry id>; the append script still reads those
    liveblog:{slug}:idem:<hash>  string: "<event id> <request fingerprint>", expires
    liveblog:{slug}:audience     hash: server process -> its readers of the blog now and
                                 its delivery lag (JSON, with when it said so); expires
                                 when no process refreshes it (see Store.report_audience)
    liveblog:{slug}:presence     hash: identity -> who is signed in on the blog now and
                                 what they have open (JSON, with when it lapses); expires
                                 when nobody beats (see Store.beat)
    liveblog:{slug}:locks        hash: entry id -> its soft edit lock (JSON: holder, when
                                 it lapses); expires likewise. Neither is ever in the log
    {liveblog}:blogs             sorted set: every slug ever opened (score: opening time)
    {liveblog}:due               sorted set: "<slug> <entry id>" of each scheduled entry
                                 (score: its time, Unix seconds). Derived from the logs:
                                 the schedulers rebuild it at startup (scheduler.py)
    {liveblog}:tokens            hash: sha256(token) -> {name, role, created_at, id}
    {liveblog}:token-names       hash: name -> sha256(token)
    {liveblog}:people            hash: identity -> {id, name, role, display_name,
                                 created_at}: every identity a token was issued to since
                                 display names exist, revoked ones included (their bylines
                                 stay on their entries)
    {liveblog}:authored:<id>     set: the slugs of the blogs where the identity posted
                                 (where a rename must append byline-changed)
    {liveblog}:webhooks          hash: endpoint id -> the endpoint (JSON, secret included)
    {liveblog}:webhooks:cursors  hash: slug -> the last event of the blog handed to the
                                 endpoints' outboxes
    {liveblog}:webhooks:leader   string: the server process that queues and delivers
                                 webhooks now (a lease: it expires unless renewed)
    {liveblog}:webhook:<id>:outbox      stream: deliveries waiting for the endpoint, in
                                        order; each leaves once the endpoint took it
    {liveblog}:webhook:<id>:retry       hash: the failures of the outbox's first delivery
                                        (job, attempts, since, next: Unix ms)
    {liveblog}:webhook:<id>:deliveries  list: its latest attempts, newest first (JSON)

Every webhook key shares the {liveblog} hash tag, so that queueing a change for several
endpoints and moving the blog's cursor is one script on one Cluster slot: a change is
queued once, or not at all, whoever crashes when.

A stream entry's fields: v (blog version), type, at (ISO 8601), actor, role, actor_id (the
actor's identity; absent from events logged before identities were), actor_name (the
actor's display name then; absent from events logged before display names were), data (the
event's tagged JSON).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, ParamSpec, TypeVar

import msgspec
import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.commands.core import AsyncScript

from liveblog.config import Config, sentinel_address
from liveblog.domain.events import (
    Actor,
    Event,
    Recorded,
    Role,
    event_decoder,
    event_encoder,
    kind,
)
from liveblog.domain.webhooks import DELIVERIES_KEPT, Delivery, Endpoint
from liveblog.durability import Durability, findings
from liveblog.errors import (
    ConfigError,
    Conflict,
    IdempotencyKeyReused,
    NotFound,
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
# Store methods running at once in one process; more wait their turn. The request and
# writer clients' pools hold this many connections, so a burst (a spike of readers opening
# a blog no process tails yet: a command each) waits for a connection instead of failing
# for want of one (redis-py 8 caps a pool at 100 and fails the next command at once).
COMMANDS_AT_ONCE = 256
# Tailers' blocking reads: one connection each, bounded by LIVEBLOG_MAX_TAILERS.
TAILING_CONNECTIONS = 100_000
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

# KEYS: log, meta, revs[, idempotency]
# ARGV: expected version ('' = any, 'live' = any while the blog is live), entry id
#       ('' = none), expected revision ('' = any, '0' = must not exist, 'N'),
#       new revision ('' = keep, 'N', 'x' = retracted),
#       fingerprint, ttl, stream id ('*' = new; an import keeps the original),
#       number of summary pairs, summary pairs..., event field pairs...
_APPEND = """
local log, meta, revs, idem = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if idem then
  local seen = redis.call('GET', idem)
  if seen then
    -- A write, so that a WAIT after this script (LIVEBLOG_REDIS_WAIT_REPLICAS) counts
    -- replicas that have everything up to now, the earlier event included: a retry is
    -- acknowledged only once what it repeats is replicated.
    redis.call('EXPIRE', idem, tonumber(ARGV[6]))
    return {'seen', seen}
  end
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
  -- A store written before revs existed keeps an entry's revision in meta as rev:<id>.
  local rev = redis.call('HGET', revs, entry) or redis.call('HGET', meta, 'rev:' .. entry)
    or '0'
  if rev ~= ARGV[3] then return {'stale', rev} end
end
version = version + 1
local npairs = tonumber(ARGV[8])
local fields = {'v', tostring(version)}
for i = 9 + 2 * npairs, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', log, ARGV[7], unpack(fields))
local summary = {'version', tostring(version), 'last_event_id', id}
for i = 9, 7 + 2 * npairs, 2 do
  if ARGV[i] == 'entries+' then
    -- A count moved by a post appended side by side with others (see Store.append).
    if redis.call('HEXISTS', meta, 'entries') == 1 then
      redis.call('HINCRBY', meta, 'entries', tonumber(ARGV[i + 1]))
    end
  else
    summary[#summary + 1] = ARGV[i]
    summary[#summary + 1] = ARGV[i + 1]
  end
end
redis.call('HSET', meta, unpack(summary))
if entry ~= '' and ARGV[4] ~= '' then
  redis.call('HSET', revs, entry, ARGV[4])
  -- An old rev:<id> field moves out of meta the first time its entry changes.
  redis.call('HDEL', meta, 'rev:' .. entry)
end
if idem then redis.call('SET', idem, id .. ' ' .. ARGV[5], 'EX', tonumber(ARGV[6])) end
return {'ok', id, tostring(version)}
"""

# KEYS: an idempotency key. ARGV: its time to live. What it holds, refreshed (a write, for
# the WAIT that follows it: see _APPEND).
_SEEN = """
local seen = redis.call('GET', KEYS[1])
if seen then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1])) end
return seen
"""

# KEYS: tokens, token-names, people. ARGV: name, digest, token record, identity, person.
_CREATE_TOKEN = """
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
return 1
"""

# KEYS: tokens, people. ARGV: a digest. The token's record and its person's (false when it
# has none, or when its record predates identities: the caller derives that identity), in
# one round trip: every authenticated request asks.
_FIND_TOKEN = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local ok, record = pcall(cjson.decode, raw)
local person = false
if ok and type(record) == 'table' and type(record.id) == 'string' and record.id ~= '' then
  person = redis.call('HGET', KEYS[2], record.id)
end
return {raw, person}
"""

# KEYS: tokens, token-names. ARGV: name, the digest it must still point at, new digest,
# the record under the new digest. The old secret stops working in the same step.
_ROTATE_TOKEN = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""

# KEYS: tokens, token-names, people. ARGV: name, the digest it must still point at, its
# identity, a person record for an identity that has none yet (one from before display
# names), so that it stays listed: HSETNX, as a rename meanwhile must not be undone.
_REVOKE_TOKEN = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('HSETNX', KEYS[3], ARGV[3], ARGV[4])
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

# KEYS: the lease. ARGV: holder, ttl (ms). Take it if free, renew it if ours: 1; else 0.
_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: endpoints. ARGV: id, the endpoint, the most endpoints there may be.
_CREATE_WEBHOOK = """
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# KEYS: endpoints, outbox, retry, deliveries. ARGV: id.
_DELETE_WEBHOOK = """
local gone = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
return gone
"""

# Queue a blog's changes for their endpoints and move the blog's cursor, in one step, only
# for the lease's holder and from the cursor it read (so two processes never queue the
# same change twice, even one that lost its lease without knowing it yet).
# KEYS: lease, cursors, endpoints, then each endpoint's outbox.
# ARGV: holder, slug, expected cursor ('' = none), new cursor, number of changes,
#       number of endpoints, then per change: event id, type, body; then the endpoints'
#       ids; then pairs (change, endpoint), 1-based: what goes to which outbox, in order.
_QUEUE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'lost' end
local cursor = redis.call('HGET', KEYS[2], ARGV[2]) or ''
if cursor ~= ARGV[3] then return 'moved' end
local changes, endpoints = tonumber(ARGV[5]), tonumber(ARGV[6])
local ids = 6 + 3 * changes
local live = {}
for e = 1, endpoints do
  -- An endpoint deleted meanwhile: its outbox must not come back.
  live[e] = redis.call('HEXISTS', KEYS[3], ARGV[ids + e]) == 1
end
for i = ids + endpoints + 1, #ARGV, 2 do
  local c, e = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if live[e] then
    local at = 6 + 3 * (c - 1)
    redis.call('XADD', KEYS[3 + e], '*', 'event', ARGV[at + 1], 'blog', ARGV[2],
               'type', ARGV[at + 2], 'body', ARGV[at + 3])
  end
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
return 'ok'
"""

# KEYS: endpoints, outbox, retry, deliveries. ARGV: id, job, the attempt, attempts kept,
# then for a failure: attempts, since, next (Unix ms), the endpoint disabled ('' = not).
# Nothing for an endpoint deleted meanwhile (its keys must not come back).
_ATTEMPTED = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[4], ARGV[3])
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[4]) - 1)
if not ARGV[5] then
  redis.call('XDEL', KEYS[2], ARGV[2])
  redis.call('DEL', KEYS[3])
  return 1
end
redis.call('HSET', KEYS[3], 'job', ARGV[2], 'attempts', ARGV[5], 'since', ARGV[6],
           'next', ARGV[7])
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[8]) end
return 1
"""

# Presence (see liveblog/presence.py). Redis 7.0 has no expiry per hash field, so each
# record carries its own (`expires`, Unix milliseconds, from the app's clock); a beat
# sweeps lapsed ones and extends the whole key's expiry, never shortens it, so the key
# outlives every record in it and goes by itself when nobody beats any more.
# KEYS: presence, locks. ARGV: now, presence ttl, lock ttl (ms), identity, its presence
# record (JSON), the entry it has open ('' = none), the lock it would take (JSON).
_BEAT = """
local presence, locks = KEYS[1], KEYS[2]
local now, me, entry = tonumber(ARGV[1]), ARGV[4], ARGV[6]
local function extend(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
local people = redis.call('HGETALL', presence)
for i = 1, #people, 2 do
  if cjson.decode(people[i + 1]).expires <= now then redis.call('HDEL', presence, people[i]) end
end
-- One lock per person and blog: opening another entry lets go of the last one.
local held = redis.call('HGETALL', locks)
for i = 1, #held, 2 do
  local lock = cjson.decode(held[i + 1])
  if lock.expires <= now or (lock.holder == me and held[i] ~= entry) then
    redis.call('HDEL', locks, held[i])
  end
end
if entry ~= '' then
  local current = redis.call('HGET', locks, entry)
  if not current or cjson.decode(current).holder == me then
    redis.call('HSET', locks, entry, ARGV[7])
    extend(locks, tonumber(ARGV[3]))
  end
end
redis.call('HSET', presence, me, ARGV[5])
extend(presence, tonumber(ARGV[2]))
return {redis.call('HGETALL', presence), redis.call('HGETALL', locks)}
"""

# KEYS: presence, locks. ARGV: identity. Signs it off the blog and lets go of its locks.
_LEAVE = """
redis.call('HDEL', KEYS[1], ARGV[1])
local held = redis.call('HGETALL', KEYS[2])
for i = 1, #held, 2 do
  if cjson.decode(held[i + 1]).holder == ARGV[1] then redis.call('HDEL', KEYS[2], held[i]) end
end
return 1
"""

_BLOGS = "{liveblog}:blogs"
_DUE = "{liveblog}:due"

# KEYS: the due index. ARGV: a member, the score it must still have. Removes it only if
# nobody scheduled it anew (another time) since it was read.
_UNSCHEDULE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""
# The meta fields the list of blogs shows (HMGET: never the whole hash).
_LISTED = ("title", "status", "version", "opened_at", "updated_at", "description", "entries")
_TOKENS = "{liveblog}:tokens"
_TOKEN_NAMES = "{liveblog}:token-names"
_PEOPLE = "{liveblog}:people"
_WEBHOOKS = "{liveblog}:webhooks"
_WEBHOOK_CURSORS = "{liveblog}:webhooks:cursors"
_WEBHOOK_LEADER = "{liveblog}:webhooks:leader"

_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
               redis.exceptions.BusyLoadingError, OSError,
               # A cluster in a failover: no master for the slot yet, or one still taking
               # it over. A node demoted to replica under a fixed address refuses writes.
               redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError,
               redis.exceptions.SlotNotCoveredError, redis.exceptions.MasterDownError,
               redis.exceptions.ReadOnlyError)
# What an append that may have landed tells the client (503).
MAYBE_RECORDED = (
    "the event store cannot be reached; the change may or may not have been recorded: "
    "send it again with the same Idempotency-Key (or check the blog) rather than as a new "
    "request"
)
P = ParamSpec("P")
T = TypeVar("T")


def _unavailable_on_redis_errors(
    method: Callable[P, Awaitable[T]],
) -> Callable[P, Awaitable[T]]:
    """Turn "Redis cannot be reached" into StoreUnavailable (503 with Retry-After); and
    hold one of the store's COMMANDS_AT_ONCE places while the method runs."""
    return _guarded(method, queued=True)


def _unavailable_while_tailing(
    method: Callable[P, Awaitable[T]],
) -> Callable[P, Awaitable[T]]:
    """The same for a tailer's blocking read, which waits on a connection of its own (the
    blocking client's) and so takes no place among COMMANDS_AT_ONCE: a hundred tailers
    blocked for seconds must not make requests wait."""
    return _guarded(method, queued=False)


# Whether this task holds one of the store's places already (a method that calls another).
_holding: contextvars.ContextVar[bool] = contextvars.ContextVar("holding", default=False)


def _guarded(method: Callable[P, Awaitable[T]], *, queued: bool) -> Callable[P, Awaitable[T]]:
    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        store = args[0] if args and isinstance(args[0], Store) else None
        if not queued or store is None or _holding.get():
            return await _run(method, store, *args, **kwargs)
        async with store.places:
            holding = _holding.set(True)
            try:
                return await _run(method, store, *args, **kwargs)
            finally:
                _holding.reset(holding)

    return wrapper


async def _run(method: Callable[P, Awaitable[T]], store: Store | None,
               *args: P.args, **kwargs: P.kwargs) -> T:
    try:
        if store is not None and store.cluster:
            await store.discovered()
        return await method(*args, **kwargs)
    except _REDIS_DOWN as exc:
        _tell_unavailable(args, method.__name__)
        if store is not None:
            store.rediscover()
        # The cause names Redis's address: it stays chained for logs and the CLI, and
        # never reaches a client's problem body.
        raise StoreUnavailable() from exc
    except StoreUnavailable:  # raised by the method itself (the append says more)
        _tell_unavailable(args, method.__name__)
        raise
    except redis.exceptions.ResponseError as exc:
        # NOREPLICAS: a master with min-replicas-to-write (Sentinel's guard for a master
        # cut off from its replicas) has too few, and refused the write before making it.
        # redis-py has no class for it.
        if not str(exc).startswith("NOREPLICAS"):
            raise
        _tell_unavailable(args, method.__name__)
        raise StoreUnavailable() from exc


def _tell_unavailable(args: tuple[object, ...], operation: str) -> None:
    store = args[0] if args else None
    if isinstance(store, Store):
        store.on_unavailable(operation)


def _ignore(_: str) -> None:
    pass


class TokenRecord(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    role: str
    created_at: datetime
    # The identity the token was issued to (Actor.id): random, minted with the token, kept
    # by `token rotate`. "" in records stored before identities were; those read as
    # legacy_identity(their digest): theirs alone, and gone with the token.
    id: str = ""


class PersonRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An identity as the store keeps it (see _PEOPLE): whether it is active is whether a
    token of it exists, so revoking changes nothing here."""

    id: str
    name: str
    role: str
    display_name: str
    created_at: datetime


class Person(msgspec.Struct, frozen=True, kw_only=True):
    """An identity as editors see it: its token's name, its byline, and whether a token of
    it still works."""

    id: str
    name: str
    display_name: str
    role: Role
    status: Literal["active", "revoked"]
    created_at: datetime


class BlogSummary(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    title: str
    status: str
    version: int
    opened_at: datetime
    updated_at: datetime
    # "" for a blog whose description has not been set since the listing kept it.
    description: str = ""
    # The updates readers see; None for a blog not changed since the listing counted them
    # (its next change but a post counts them).
    entries: int | None = None


class BlogPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of the list of blogs, the most recently opened first."""

    blogs: list[BlogSummary]
    # Pass as ?before= for the next page; null on the last.
    next_before: str | None


class Appended(msgspec.Struct, frozen=True):
    """The outcome of an append: the new event, or (repeated) the one an earlier request
    with the same idempotency key made."""

    recorded: Recorded
    repeated: bool


class AudienceReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one server process says about one blog: its readers now, its delivery lag
    (seconds; None when it delivered nothing lately), and when it said so (Unix seconds)."""

    readers: int
    lag_p50: float | None
    lag_p95: float | None
    at: float


_audience_decoder = msgspec.json.Decoder(AudienceReport)


class PresenceRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Someone signed in on a blog: their identity, name and role, the entry they have open
    (None: none), their last beat and when that lapses (Unix milliseconds)."""

    id: str
    name: str
    role: Role
    editing: str | None
    seen: int
    expires: int
    # Their byline when they last beat (None: show the name).
    display_name: str | None = None


class LockRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A soft edit lock: who holds it (identity and name) and when it lapses (Unix ms)."""

    holder: str
    name: str
    expires: int


class PresenceSnapshot(msgspec.Struct, frozen=True):
    """Who is on a blog now, and the locks held on its entries (by entry id)."""

    people: list[PresenceRecord]
    locks: dict[str, LockRecord]


_person_decoder = msgspec.json.Decoder(PresenceRecord)
_lock_decoder = msgspec.json.Decoder(LockRecord)


class Store:
    def __init__(self, client: aioredis.Redis | RedisCluster,
                 blocking: aioredis.Redis | RedisCluster | None = None,
                 writer: aioredis.Redis | RedisCluster | None = None, *,
                 block_ms: int = BLOCK_MS, wait_replicas: int = 0,
                 wait_timeout_ms: int = 1000,
                 closers: Sequence[Callable[[], Awaitable[None]]] = ()) -> None:
        # redis-py's return types are unions of every reply shape; this module knows which
        # shape each command returns (bytes, as decode_responses is off), so it reads them
        # as Any and decodes explicitly.
        self.redis: Any = client
        self.cluster = isinstance(client, RedisCluster)
        # The append runs on a client that never retries by itself: a retry after a lost
        # reply would run the script twice. The caller gets 503 instead, and a retry with
        # its Idempotency-Key is safe.
        self.writer: Any = writer or client
        # Tailers block in XREAD on connections of their own, so as not to starve the
        # request pool; their socket timeout is the block plus a margin (see from_url).
        self.blocking: Any = blocking or client
        self.block_ms = block_ms
        # Redis WAIT after each append: this many replicas must have it within the timeout.
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._closers = list(closers)  # what else from_url opened (Sentinel clients)
        self._discovered = self._failed = False
        self._discovering = asyncio.Lock()
        self.places = asyncio.Semaphore(COMMANDS_AT_ONCE)
        self._append = self.writer.register_script(_APPEND)
        self._seen = self.writer.register_script(_SEEN)
        self._create_token = client.register_script(_CREATE_TOKEN)
        self._find_token = client.register_script(_FIND_TOKEN)
        self._revoke_token = client.register_script(_REVOKE_TOKEN)
        self._rotate_token = client.register_script(_ROTATE_TOKEN)
        self._version_of = client.register_script(_VERSION_OF)
        self._lease = client.register_script(_LEASE)
        self._release = client.register_script(_RELEASE)
        self._create_webhook = client.register_script(_CREATE_WEBHOOK)
        self._delete_webhook = client.register_script(_DELETE_WEBHOOK)
        # Not retried by the client on a lost reply: the queue is checked against the
        # cursor, so a repeat is refused ('moved'), and an attempt's record is a list push.
        self._queue = self.writer.register_script(_QUEUE)
        self._attempted = self.writer.register_script(_ATTEMPTED)
        self._beat = client.register_script(_BEAT)
        self._leave = client.register_script(_LEAVE)
        self._unschedule = client.register_script(_UNSCHEDULE)
        # Told of what the app counts (see liveblog/metrics.py): each event appended (its
        # blog's slug), and each operation that failed for want of Redis (its name).
        self.on_appended: Callable[[str], None] = _ignore
        self.on_unavailable: Callable[[str], None] = _ignore

    @classmethod
    def from_config(cls, config: Config, url: str | None = None) -> Store:
        """The store the settings name (`url`: instead of LIVEBLOG_REDIS_URL, such as the
        embedded Redis's)."""
        target = url or config.redis_url
        if target is None:
            raise ConfigError("LIVEBLOG_REDIS_URL is not set")
        return cls.from_url(target, block_ms=config.tail_block_ms,
                            cluster=config.redis_cluster, wait_replicas=config.wait_replicas,
                            wait_timeout_ms=config.wait_timeout_ms)

    @classmethod
    def from_url(cls, url: str, *, block_ms: int = BLOCK_MS, cluster: bool = False,
                 wait_replicas: int = 0, wait_timeout_ms: int = 1000) -> Store:
        """Clients for `url` (a node of a cluster with `cluster`; a redis+sentinel:// URL
        asks its Sentinels for the master); tailers' XREADs block for `block_ms` at most."""
        connect = _Connector(url, cluster)
        # A few more than the places: cluster discovery and closing take connections too.
        pool = COMMANDS_AT_ONCE + 16
        client = connect(
            max_connections=pool,
            socket_connect_timeout=2,
            socket_timeout=10,
            health_check_interval=15,
            # Ride over a blip (a restart, a failover) for about half a second, then answer
            # 503 quickly rather than hold the request for seconds.
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=4),
        )
        tcp = {} if url.startswith("unix://") else {
            "socket_keepalive": True, "socket_keepalive_options": KEEPALIVE}
        blocking = connect(
            max_connections=TAILING_CONNECTIONS,
            socket_connect_timeout=2,
            socket_timeout=block_ms / 1000 + BLOCK_MARGIN_SECONDS, health_check_interval=0,
            # No retry inside redis-py (its default retries ten times, with backoff): the
            # tailer sees the timeout at once, says so in the log, and reconnects itself.
            retry=Retry(NoBackoff(), 0), **tcp,
        )
        # A WAIT holds the writer's connection up to its timeout: the socket waits longer.
        writer = connect(max_connections=pool, socket_connect_timeout=2,
                         socket_timeout=10 + (wait_timeout_ms / 1000 if wait_replicas else 0),
                         health_check_interval=15, retry=Retry(NoBackoff(), 0))
        return cls(client, blocking, writer, block_ms=block_ms, wait_replicas=wait_replicas,
                   wait_timeout_ms=wait_timeout_ms, closers=connect.closers)

    async def close(self) -> None:
        await self.redis.aclose()
        for other in (self.blocking, self.writer):
            if other is not self.redis:
                await other.aclose()
        for close in self._closers:
            await close()

    async def discovered(self) -> None:
        """A cluster's clients learn its nodes and slots before their first command, one
        client at a time, and again after a failure. redis-py's cluster client does the
        first on first use, but when many commands make that first use at once it closes
        connections under some of them (seen here: 24 concurrent posts, "Connection closed
        by server" and sockets left open); and a failure in a pipeline (the append with
        WAIT) leaves it sending to a dead master for ever."""
        if self._discovered:
            return
        async with self._discovering:
            if self._discovered:
                return
            try:
                for client in {id(c): c for c in (self.redis, self.writer, self.blocking)
                               }.values():
                    await client.initialize()  # nothing for one that knows the cluster
                    if self._failed:
                        await client.nodes_manager.initialize()
            except redis.exceptions.RedisClusterException as exc:  # no node answered
                raise redis.exceptions.ConnectionError(str(exc)) from exc
            self._discovered, self._failed = True, False

    def rediscover(self) -> None:
        """After a failure (a node gone, a failover), learn the cluster again before the
        next command (see discovered)."""
        self._discovered, self._failed = False, True

    async def _replicated(self, script: AsyncScript, keys: list[str],
                          args: list[str | bytes]) -> Any:
        """Run `script` on the writer; with wait_replicas, then WAIT until that many
        replicas have what it wrote, or raise NotReplicated.

        WAIT counts what the connection it is sent on wrote, so it follows the script down
        the same one: a pipeline of two commands to the master of the keys' slot."""
        if not self.wait_replicas:
            return await script(keys=keys, args=args)
        for _ in range(3):
            async with self.writer.pipeline(transaction=False) as pipe:
                # (A cluster pipeline refuses its evalsha method; the raw command is routed.)
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                if self.cluster:
                    await self.writer.initialize()  # nothing if it knows the slots
                    node = self.writer.get_node_from_key(keys[0])
                    pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms,
                                         target_nodes=node)
                    # A redirected script would run on another connection than the WAIT.
                    reply, acked = await pipe.execute(raise_on_error=False,
                                                      allow_redirections=False)
                else:
                    pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
                    reply, acked = await pipe.execute(raise_on_error=False)
            # The script did not run in these two cases: load it, or learn where the slot
            # went (a failover), and send it again.
            if isinstance(reply, redis.exceptions.NoScriptError):
                await self.writer.script_load(script.script)
                continue
            if isinstance(reply, (redis.exceptions.MovedError, redis.exceptions.AskError)):
                await self.writer.nodes_manager.initialize()
                continue
            if isinstance(reply, Exception):
                raise reply
            if isinstance(acked, Exception):
                raise NotReplicated(f"WAIT failed: {acked}")
            if int(acked) < self.wait_replicas:
                raise NotReplicated(
                    f"{acked} of {self.wait_replicas} replicas had it after "
                    f"{self.wait_timeout_ms} ms")
            return reply
        raise redis.exceptions.TryAgainError("the slot kept moving")

    @_unavailable_on_redis_errors
    async def ping(self) -> None:
        await self.redis.ping()

    @_unavailable_on_redis_errors
    async def durability(self) -> Durability:
        """What Redis says about keeping our writes (see durability.py); of a cluster,
        what its least careful master says (each holds some blogs)."""
        if not self.cluster:
            return await self._durability_of({})
        nodes = self.redis.get_primaries()
        found = [await self._durability_of({"target_nodes": node}) for node in nodes]
        return min(found, key=lambda d: (not findings(d)[0], not findings(d)[1]))

    async def _durability_of(self, where: dict[str, Any]) -> Durability:
        persistence = await self.redis.info("persistence", **where)
        memory = await self.redis.info("memory", **where)
        try:
            fsync = (await self.redis.config_get("appendfsync", **where)).get("appendfsync")
        except redis.exceptions.ResponseError:  # CONFIG disabled, as managed Redis often is
            fsync = None
        aof = persistence.get("aof_enabled")
        policy = memory.get("maxmemory_policy")
        node = where.get("target_nodes")
        return Durability(
            appendonly=None if aof is None else bool(int(aof)),
            appendfsync=None if fsync is None else _text(fsync),
            maxmemory_policy=None if policy is None else _text(policy),
            node=None if node is None else node.name,
        )

    # -- blogs ---------------------------------------------------------------------------

    @_unavailable_on_redis_errors
    async def register_blog(self, slug: str, at: datetime) -> None:
        """Remember the slug for listing; listing skips slugs whose log is still empty."""
        await self.redis.zadd(_BLOGS, {slug: at.timestamp()}, nx=True)

    @_unavailable_on_redis_errors
    async def list_blogs(self, *, limit: int, before: str | None = None) -> BlogPage:
        """A page of blogs, the most recently opened first; `before`: a slug of an earlier
        page's, to continue after it (NotFound if no blog has it).

        It reads `limit` and a few more slugs and six fields of each one's meta hash: the
        reply is the page's size, whatever the blogs' sizes or their number."""
        cursor: tuple[bytes, float] | None = None
        if before is not None:
            score = await self.redis.zscore(_BLOGS, before)
            if score is None:
                raise NotFound(f"no blog {before!r} to page after")
            cursor = (before.encode(), score)
        blogs: list[BlogSummary] = []
        while True:
            # One more than the page, to know whether there is a next one; and again if a
            # slug was skipped (registered, but its blog-opened never landed).
            want = limit + 1 - len(blogs)
            found = await self._slugs_after(cursor, want)
            blogs += await self._summaries([slug.decode() for slug, _ in found])
            if len(blogs) > limit or len(found) < want:
                break
            cursor = found[-1]
        more = len(blogs) > limit
        del blogs[limit:]
        return BlogPage(blogs=blogs, next_before=blogs[-1].slug if more else None)

    async def _slugs_after(self, cursor: tuple[bytes, float] | None,
                           count: int) -> list[tuple[bytes, float]]:
        """Up to `count` (slug, score) pairs after `cursor`, newest first. A position, not
        an offset: blogs opened meanwhile go to the front and move nothing after it."""
        if cursor is None:
            first: list[tuple[bytes, float]] = await self.redis.zrevrangebyscore(
                _BLOGS, "+inf", "-inf", start=0, num=count, withscores=True)
            return first
        slug, score = cursor
        # Blogs opened in the same millisecond share a score; the set orders them by slug
        # (reversed here, as the page is): those below the cursor's slug come first.
        same = await self.redis.zrangebyscore(_BLOGS, score, score)
        found = [(other, score) for other in reversed(same) if other < slug][:count]
        if len(found) < count:
            found += await self.redis.zrevrangebyscore(
                _BLOGS, f"({score!r}", "-inf", start=0, num=count - len(found),
                withscores=True)
        return found

    async def _summaries(self, slugs: list[str]) -> list[BlogSummary]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for slug in slugs:
                pipe.hmget(_meta(slug), *_LISTED)
            rows: list[list[bytes | None]] = await pipe.execute()
        blogs = []
        for slug, (title, status, version, opened_at, updated_at, description,
                   entries) in zip(
                slugs, rows, strict=True):
            if version is None or title is None or status is None or opened_at is None \
                    or updated_at is None:
                continue  # registered, but its blog-opened never landed
            blogs.append(BlogSummary(
                slug=slug,
                title=title.decode(),
                status=status.decode(),
                version=int(version),
                opened_at=datetime.fromisoformat(opened_at.decode()),
                updated_at=datetime.fromisoformat(updated_at.decode()),
                description=description.decode() if description is not None else "",
                entries=int(entries) if entries is not None else None,
            ))
        return blogs

    @_unavailable_on_redis_errors
    async def slugs(self, *, after: str | None = None, count: int = 500) -> list[str]:
        """Up to `count` slugs ever registered, in slug order, after `after`."""
        low = "-" if after is None else "(" + after
        found = await self.redis.zrangebylex(_BLOGS, low, "+", start=0, num=count)
        return [slug.decode() for slug in found]

    # -- scheduled entries ---------------------------------------------------------------

    @_unavailable_on_redis_errors
    async def schedule(self, slug: str, entry_id: str, at: datetime) -> None:
        """Index a scheduled entry by its time (a new time replaces the old)."""
        await self.redis.zadd(_DUE, {f"{slug} {entry_id}": at.timestamp()})

    @_unavailable_on_redis_errors
    async def due(self, now: datetime, *, count: int = 100) -> list[tuple[str, str, float]]:
        """Up to `count` (slug, entry id, indexed time) of entries due at `now`, soonest
        first."""
        rows = await self.redis.zrangebyscore(_DUE, "-inf", now.timestamp(), start=0,
                                              num=count, withscores=True)
        found = []
        for member, score in rows:
            slug, _, entry_id = member.decode().partition(" ")
            found.append((slug, entry_id, float(score)))
        return found

    @_unavailable_on_redis_errors
    async def unschedule(self, slug: str, entry_id: str, indexed: float) -> bool:
        """Drop an entry from the index if its time there is still `indexed`."""
        removed = await self._unschedule(keys=[_DUE], args=[f"{slug} {entry_id}",
                                                             repr(indexed)])
        return bool(removed)

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
        listed: bool = True,
    ) -> Appended:
        """Append one event atomically, or raise without appending anything.

        expected_version: the blog version the caller decided on (VersionConflict if not).
        while_live: instead of a version, only require the blog to be live (for events
            that mean the same whatever else landed first, such as a new entry).
        entry_revision: (entry id, expected revision, new revision), see _APPEND.
        summary: fields of the blog's meta hash to set with it (title, status, times,
            `entries`: the number of updates readers see). `entries+`: add this to that
            number instead, if the blog has one yet: a post appended side by side with
            others (while_live) cannot know the number, only that it adds one.
        listed: whether readers see the event; only then does the list's "last update"
            (updated_at) move.
        idempotency: (key, request fingerprint); a key seen before returns its event.
        event_id: the stream id to use; only an import sets it (to the exported id).
        """
        keys = [_log(slug), _meta(slug), _revs(slug)]
        if idempotency is not None:
            keys.append(_idempotency(slug, actor, idempotency[0]))
        entry, expected_rev, new_rev = entry_revision or ("", "", "")
        pairs = {**({"updated_at": at.isoformat()} if listed else {}), **(summary or {})}
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
        ]
        if actor.id:
            args += ["actor_id", actor.id]
        if actor.display_name:
            args += ["actor_name", actor.display_name]
        args += ["data", event_encoder.encode(event)]
        try:
            reply = await self._replicated(self._append, keys, args)
        except _REDIS_DOWN as exc:
            # Redis may have run the script and died before it answered: the client cannot
            # know, so it is told how to find out without posting twice.
            raise StoreUnavailable(MAYBE_RECORDED) from exc
        outcome = reply[0].decode()
        if outcome == "ok":
            self.on_appended(slug)
            event_id = reply[1].decode()
            recorded = Recorded(
                id=event_id, version=int(reply[2]), at=at, actor=actor.name, role=actor.role,
                event=event, actor_id=actor.id or None, actor_name=actor.display_name or None,
            )
            return Appended(recorded, repeated=False)
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
        earlier = await self.event(slug, event_id)
        return Appended(earlier, repeated=True)

    @_unavailable_on_redis_errors
    async def find_idempotent(self, slug: str, actor: Actor, key: str) -> tuple[str, str] | None:
        """The (event id, fingerprint) an idempotency key produced, if it is remembered."""
        name = _idempotency(slug, actor, key)
        seen = await self.redis.get(name)
        if seen is not None and self.wait_replicas:
            # Acknowledged only once replicated, as the first answer would have been (that
            # one may have been a 503 because the replicas were behind).
            try:
                seen = await self._replicated(self._seen, [name],
                                              [str(IDEMPOTENCY_TTL_SECONDS)])
            except _REDIS_DOWN as exc:
                raise StoreUnavailable(MAYBE_RECORDED) from exc
        if seen is None:
            return None
        event_id, _, fingerprint = seen.decode().partition(" ")
        return event_id, fingerprint

    @_unavailable_on_redis_errors
    async def event(self, slug: str, event_id: str) -> Recorded:
        rows = await self.redis.xrange(_log(slug), min=event_id, max=event_id)
        if not rows:
            raise NotFound(f"blog {slug!r} has no event {event_id!r}")
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

    @_unavailable_while_tailing
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

    # -- the audience (readers per blog, summed over server processes) ------------------

    @_unavailable_on_redis_errors
    async def report_audience(self, process: str, reports: Mapping[str, AudienceReport],
                              gone: Iterable[str] = (), *, ttl_seconds: int) -> None:
        """Set this process's figures for each blog of `reports` and withdraw them from
        the blogs of `gone`, in one round trip. A blog's hash expires `ttl_seconds` after
        its last report, whoever made it: when every process has stopped, it goes."""
        pipe = self.redis.pipeline(transaction=False)
        for slug, report in reports.items():
            pipe.hset(_audience(slug), process, msgspec.json.encode(report))
            pipe.expire(_audience(slug), ttl_seconds)
        for slug in gone:
            pipe.hdel(_audience(slug), process)
        await pipe.execute()

    @_unavailable_on_redis_errors
    async def audience(self, slug: str, *, fresh_after: float) -> list[AudienceReport]:
        """Every process's report on the blog made after `fresh_after` (Unix seconds);
        older ones (processes that died without withdrawing them) are dropped."""
        raw = await self.redis.hgetall(_audience(slug))
        reports, stale = [], []
        for process, value in raw.items():
            try:
                report = _audience_decoder.decode(value)
            except msgspec.DecodeError:
                stale.append(process)
                continue
            if report.at < fresh_after:
                stale.append(process)
            else:
                reports.append(report)
        if stale:
            await self.redis.hdel(_audience(slug), *stale)
        return reports

    # -- presence (who is on a blog, soft edit locks: never in the log) ------------------

    @_unavailable_on_redis_errors
    async def beat(self, slug: str, person: PresenceRecord, *, now_ms: int,
                   lock_ttl_ms: int) -> PresenceSnapshot:
        """Mark `person` present (until person.expires) and, if they have an entry open
        (person.editing), take or renew its lock for `lock_ttl_ms` unless someone else holds
        it; let go of their other locks on the blog. The blog's presence then."""
        editing = person.editing or ""
        lock = LockRecord(holder=person.id, name=person.name, expires=now_ms + lock_ttl_ms)
        reply = await self._beat(
            keys=[_presence(slug), _locks(slug)],
            args=[now_ms, person.expires - now_ms, lock_ttl_ms, person.id,
                  msgspec.json.encode(person), editing, msgspec.json.encode(lock)])
        return _snapshot(reply[0], reply[1], now_ms)

    @_unavailable_on_redis_errors
    async def presence(self, slug: str, *, now_ms: int) -> PresenceSnapshot:
        """Who is on the blog and which locks are held, as of `now_ms` (lapsed records are
        left out; the next beat sweeps them)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(_presence(slug))
            pipe.hgetall(_locks(slug))
            people, locks = await pipe.execute()
        return _snapshot(_pairs(people), _pairs(locks), now_ms)

    @_unavailable_on_redis_errors
    async def lock(self, slug: str, entry_id: str, *, now_ms: int) -> LockRecord | None:
        """The lock held on an entry now, if any."""
        raw = await self.redis.hget(_locks(slug), entry_id)
        found = None if raw is None else _lock_decoder.decode(raw)
        return found if found is not None and found.expires > now_ms else None

    @_unavailable_on_redis_errors
    async def leave(self, slug: str, identity: str) -> None:
        """Sign an identity off the blog and let go of its locks there."""
        await self._leave(keys=[_presence(slug), _locks(slug)], args=[identity])

    # -- tokens --------------------------------------------------------------------------

    @_unavailable_on_redis_errors
    async def create_token(self, name: str, role: str, secret: str, at: datetime, *,
                           display_name: str | None = None) -> bool:
        """Store a token by its hash, for a new identity whose byline is `display_name`
        (by default the name); False if the name is taken."""
        identity = new_identity()
        record = msgspec.json.encode(
            TokenRecord(name=name, role=role, created_at=at, id=identity))
        person = msgspec.json.encode(PersonRecord(
            id=identity, name=name, role=role, display_name=display_name or name,
            created_at=at))
        created = await self._create_token(
            keys=[_TOKENS, _TOKEN_NAMES, _PEOPLE],
            args=[name, _digest(secret), record, identity, person],
        )
        return bool(created)

    @_unavailable_on_redis_errors
    async def find_actor(self, secret: str) -> Actor | None:
        """Who a token is: its name, role, identity and byline; None if it is unknown."""
        digest = _digest(secret)
        found = await self._find_token(keys=[_TOKENS, _PEOPLE], args=[digest])
        if not found:
            return None
        raw, person = found
        record = _token_record(digest, raw)
        if person is None and record.id.startswith("legacy-"):
            person = await self.redis.hget(_PEOPLE, record.id)
        display_name = _person_record(person).display_name if person else record.name
        return Actor(record.name, record.role, record.id,  # type: ignore[arg-type]
                     display_name)

    @_unavailable_on_redis_errors
    async def find_token(self, secret: str) -> TokenRecord | None:
        digest = _digest(secret)
        raw = await self.redis.hget(_TOKENS, digest)
        return None if raw is None else _token_record(digest, raw)

    @_unavailable_on_redis_errors
    async def token_named(self, name: str) -> TokenRecord | None:
        """The record of the token named `name`; None if there is none."""
        digest = await self.redis.hget(_TOKEN_NAMES, name)
        raw = None if digest is None else await self.redis.hget(_TOKENS, digest)
        return None if digest is None or raw is None else _token_record(digest.decode(), raw)

    @_unavailable_on_redis_errors
    async def list_tokens(self) -> list[TokenRecord]:
        raw = await self.redis.hgetall(_TOKENS)
        records = [_token_record(digest.decode(), value) for digest, value in raw.items()]
        return sorted(records, key=lambda r: r.created_at)

    @_unavailable_on_redis_errors
    async def rotate_token(self, name: str, secret: str) -> TokenRecord | None:
        """Give the identity named `name` a new secret; the old one stops working. None if
        there is no such token (or it was revoked or rotated meanwhile)."""
        digest = await self.redis.hget(_TOKEN_NAMES, name)
        raw = None if digest is None else await self.redis.hget(_TOKENS, digest)
        if digest is None or raw is None:
            return None
        record = _token_record(digest.decode(), raw)  # a legacy record keeps its identity
        rotated = await self._rotate_token(
            keys=[_TOKENS, _TOKEN_NAMES],
            args=[name, digest, _digest(secret), msgspec.json.encode(record)],
        )
        return record if rotated else None

    @_unavailable_on_redis_errors
    async def revoke_token(self, name: str) -> bool:
        """End the token named `name` and its identity; the identity stays listed among
        the people (its entries keep its byline). False if there is no such token."""
        digest = await self.redis.hget(_TOKEN_NAMES, name)
        raw = None if digest is None else await self.redis.hget(_TOKENS, digest)
        if digest is None or raw is None:
            return False
        record = _token_record(digest.decode(), raw)
        person = PersonRecord(id=record.id, name=record.name, role=record.role,
                              display_name=record.name, created_at=record.created_at)
        return bool(await self._revoke_token(
            keys=[_TOKENS, _TOKEN_NAMES, _PEOPLE],
            args=[name, digest, record.id, msgspec.json.encode(person)]))

    # -- people (identities and their bylines) -------------------------------------------

    @_unavailable_on_redis_errors
    async def list_people(self) -> list[Person]:
        """Every identity, active or revoked, the oldest first. Those issued before
        display names (no person record yet) are listed while their token works, with
        their name as their byline."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(_PEOPLE)
            pipe.hgetall(_TOKENS)
            people_raw, tokens_raw = await pipe.execute()
        tokens = _by_identity(tokens_raw)
        records = {record.id: record for record in map(_person_record, people_raw.values())}
        for identity, token in tokens.items():
            records.setdefault(identity, _person_of(token))
        people = [_person(record, active=record.id in tokens) for record in records.values()]
        return sorted(people, key=lambda p: (p.created_at, p.id))

    @_unavailable_on_redis_errors
    async def set_display_name(self, identity: str, display_name: str) -> Person | None:
        """Give the identity a new byline (for what it does from now on: the blogs' logs
        learn it by byline-changed events, which the service appends). None if no such
        identity is known."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(_PEOPLE, identity)
            pipe.hgetall(_TOKENS)
            raw, tokens_raw = await pipe.execute()
        tokens = _by_identity(tokens_raw)
        if raw is not None:
            record = _person_record(raw)
        elif identity in tokens:  # issued before display names: its first person record
            record = _person_of(tokens[identity])
        else:
            return None
        record = msgspec.structs.replace(record, display_name=display_name)
        await self.redis.hset(_PEOPLE, identity, msgspec.json.encode(record))
        return _person(record, active=identity in tokens)

    @_unavailable_on_redis_errors
    async def note_author(self, identity: str, slug: str) -> None:
        """Remember that the identity posts to the blog (before the post is appended, so
        that a rename meanwhile finds the blog: at worst it finds one it need not)."""
        await self.redis.sadd(_authored(identity), slug)

    @_unavailable_on_redis_errors
    async def authored_blogs(self, identity: str) -> list[str]:
        """The slugs of the blogs where the identity posted (see note_author), sorted."""
        return sorted(slug.decode() for slug in await self.redis.smembers(_authored(identity)))


    # -- webhooks (liveblog/webhooks.py) -----------------------------------------------

    @_unavailable_on_redis_errors
    async def server_time_ms(self) -> int:
        """Redis's clock, the one that stamps stream ids, in Unix milliseconds."""
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    @_unavailable_on_redis_errors
    async def create_webhook(self, endpoint: Endpoint, *, most: int) -> bool:
        """Register an endpoint; False if `most` are registered already."""
        created = await self._create_webhook(
            keys=[_WEBHOOKS], args=[endpoint.id, msgspec.json.encode(endpoint), str(most)])
        return bool(created)

    @_unavailable_on_redis_errors
    async def webhooks(self) -> list[Endpoint]:
        """Every endpoint, the oldest first."""
        raw = await self.redis.hgetall(_WEBHOOKS)
        endpoints = [_endpoint_decoder.decode(value) for value in raw.values()]
        return sorted(endpoints, key=lambda e: (e.created_at, e.id))

    @_unavailable_on_redis_errors
    async def has_webhooks(self) -> bool:
        return bool(await self.redis.hlen(_WEBHOOKS))

    @_unavailable_on_redis_errors
    async def webhook(self, endpoint_id: str) -> Endpoint | None:
        raw = await self.redis.hget(_WEBHOOKS, endpoint_id)
        return None if raw is None else _endpoint_decoder.decode(raw)

    @_unavailable_on_redis_errors
    async def delete_webhook(self, endpoint_id: str) -> bool:
        """Forget an endpoint, what waits for it and its attempts; False if there is none."""
        gone = await self._delete_webhook(
            keys=[_WEBHOOKS, _outbox(endpoint_id), _retry(endpoint_id),
                  _deliveries(endpoint_id)], args=[endpoint_id])
        return bool(gone)

    @_unavailable_on_redis_errors
    async def webhook_backlogs(self, endpoint_ids: Sequence[str]) -> list[int]:
        """How many deliveries wait for each endpoint."""
        if not endpoint_ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for endpoint_id in endpoint_ids:
                pipe.xlen(_outbox(endpoint_id))
            return [int(n) for n in await pipe.execute()]

    @_unavailable_on_redis_errors
    async def webhook_deliveries(self, endpoint_id: str) -> list[Delivery]:
        raw = await self.redis.lrange(_deliveries(endpoint_id), 0, DELIVERIES_KEPT - 1)
        return [_delivery_decoder.decode(value) for value in raw]

    @_unavailable_on_redis_errors
    async def take_lease(self, holder: str, ttl_ms: int) -> bool:
        """Take the webhooks' lease, or renew it if `holder` has it: whether it has."""
        return bool(await self._lease(keys=[_WEBHOOK_LEADER], args=[holder, str(ttl_ms)]))

    @_unavailable_on_redis_errors
    async def release_lease(self, holder: str) -> None:
        await self._release(keys=[_WEBHOOK_LEADER], args=[holder])

    @_unavailable_on_redis_errors
    async def blog_heads(self, slugs: Sequence[str] | None) -> dict[str, str]:
        """The last event id of each blog of `slugs` (None: of every blog) that has one."""
        if slugs is None:
            slugs = [slug.decode() for slug in await self.redis.zrange(_BLOGS, 0, -1)]
        if not slugs:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for slug in slugs:
                pipe.hget(_meta(slug), "last_event_id")
            heads = await pipe.execute()
        return {slug: head.decode() for slug, head in zip(slugs, heads, strict=True)
                if head is not None}

    @_unavailable_on_redis_errors
    async def webhook_cursors(self) -> dict[str, str]:
        raw = await self.redis.hgetall(_WEBHOOK_CURSORS)
        return {slug.decode(): cursor.decode() for slug, cursor in raw.items()}

    @_unavailable_on_redis_errors
    async def queue_webhooks(self, holder: str, slug: str, cursor: str | None, new_cursor: str,
                             changes: Sequence[tuple[str, str, bytes]],
                             targets: Sequence[tuple[int, str]]) -> str:
        """Append `changes` ((event id, type, body), in log order) to the outboxes of
        `targets` ((index of the change, endpoint id), in the order to queue them) and move
        the blog's cursor from `cursor` to `new_cursor`, all or nothing: "ok"; "lost" if
        `holder` does not hold the lease; "moved" if the cursor is not `cursor`."""
        endpoint_ids = list(dict.fromkeys(endpoint_id for _, endpoint_id in targets))
        position = {endpoint_id: n for n, endpoint_id in enumerate(endpoint_ids, 1)}
        args: list[str | bytes] = [holder, slug, cursor or "", new_cursor, str(len(changes)),
                                   str(len(endpoint_ids))]
        for event_id, event_kind, body in changes:
            args += [event_id, event_kind, body]
        args += endpoint_ids
        for change, endpoint_id in targets:
            args += [str(change + 1), str(position[endpoint_id])]
        keys = [_WEBHOOK_LEADER, _WEBHOOK_CURSORS, _WEBHOOKS,
                *(_outbox(endpoint_id) for endpoint_id in endpoint_ids)]
        outcome = await self._queue(keys=keys, args=args)
        return _text(outcome)

    @_unavailable_on_redis_errors
    async def next_webhook_job(
        self, endpoint_id: str,
    ) -> tuple[WebhookJob, RetryState | None] | None:
        """The first delivery waiting for an endpoint, and its failures so far, if any."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xrange(_outbox(endpoint_id), count=1)
            pipe.hgetall(_retry(endpoint_id))
            rows, retry = await pipe.execute()
        if not rows:
            return None
        job_id, fields = rows[0]
        job = WebhookJob(id=job_id.decode(), event_id=fields[b"event"].decode(),
                         blog=fields[b"blog"].decode(), type=fields[b"type"].decode(),
                         body=fields[b"body"])
        state = None
        if retry and retry.get(b"job") == job_id:
            state = RetryState(attempts=int(retry[b"attempts"]), since_ms=int(retry[b"since"]),
                               next_ms=int(retry[b"next"]))
        return job, state

    @_unavailable_on_redis_errors
    async def webhook_attempted(self, endpoint_id: str, job: WebhookJob, attempt: Delivery,
                                failed: RetryState | None = None,
                                disabled: Endpoint | None = None) -> bool:
        """Record an attempt. A success (`failed` None) takes the job off the outbox;
        a failure keeps it first, with `failed` (and `disabled`: the endpoint, disabled).
        False if the endpoint was deleted meanwhile."""
        args: list[str | bytes] = [endpoint_id, job.id, msgspec.json.encode(attempt),
                                   str(DELIVERIES_KEPT)]
        if failed is not None:
            args += [str(failed.attempts), str(failed.since_ms), str(failed.next_ms),
                     msgspec.json.encode(disabled) if disabled is not None else ""]
        done = await self._attempted(
            keys=[_WEBHOOKS, _outbox(endpoint_id), _retry(endpoint_id),
                  _deliveries(endpoint_id)], args=args)
        return bool(done)


class WebhookJob(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery waiting in an endpoint's outbox: its id there, and what to send."""

    id: str
    event_id: str
    blog: str
    type: str
    body: bytes


class RetryState(msgspec.Struct, frozen=True, kw_only=True):
    """The failures in a row of an outbox's first delivery (times in Unix ms)."""

    attempts: int
    since_ms: int
    next_ms: int


_endpoint_decoder = msgspec.json.Decoder(Endpoint)
_delivery_decoder = msgspec.json.Decoder(Delivery)


class NotReplicated(redis.exceptions.ConnectionError):
    """The append is on the master, but not on LIVEBLOG_REDIS_WAIT_REPLICAS replicas in
    time: a failover now could lose it, so it is not acknowledged (503, retry with the same
    Idempotency-Key: see MAYBE_RECORDED)."""


class _Connector:
    """Makes clients of one Redis deployment: a server, a cluster or Sentinel's master.
    `closers`: what it opened besides the clients (the Sentinels' own connections)."""

    def __init__(self, url: str, cluster: bool) -> None:
        self.url = url
        self.cluster = cluster
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self._sentinel: Sentinel | None = None

    def __call__(self, **options: Any) -> Any:
        if self.cluster:
            return RedisCluster.from_url(self.url, **options)
        if not self.url.startswith("redis+sentinel://"):
            return aioredis.from_url(self.url, **options)
        address = sentinel_address(self.url)
        if self._sentinel is None:
            self._sentinel = Sentinel(  # type: ignore[no-untyped-call]
                list(address.sentinels),
                sentinel_kwargs={"socket_connect_timeout": 2, "socket_timeout": 2,
                                 "password": address.sentinel_password},
            )
            self.closers += [sentinel.aclose for sentinel in self._sentinel.sentinels]
        # The master's address comes from the Sentinels at each new connection; one that
        # finds its master demoted (READONLY) disconnects and asks again.
        return self._sentinel.master_for(
            address.service, db=address.db, username=address.username,
            password=address.password, **options)


def _decode(row: tuple[bytes, dict[bytes, bytes]]) -> Recorded:
    event_id, fields = row
    return Recorded(
        id=event_id.decode(),
        version=int(fields[b"v"]),
        at=datetime.fromisoformat(fields[b"at"].decode()),
        actor=fields[b"actor"].decode(),
        role=fields[b"role"].decode(),  # type: ignore[arg-type]
        event=event_decoder.decode(fields[b"data"]),
        actor_id=actor_id.decode() if (actor_id := fields.get(b"actor_id")) else None,
        actor_name=name.decode() if (name := fields.get(b"actor_name")) else None,
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _log(slug: str) -> str:
    return f"liveblog:{{{slug}}}:log"


def _meta(slug: str) -> str:
    return f"liveblog:{{{slug}}}:meta"


def _audience(slug: str) -> str:
    return f"liveblog:{{{slug}}}:audience"


def _outbox(endpoint_id: str) -> str:
    return f"{{liveblog}}:webhook:{endpoint_id}:outbox"


def _retry(endpoint_id: str) -> str:
    return f"{{liveblog}}:webhook:{endpoint_id}:retry"


def _deliveries(endpoint_id: str) -> str:
    return f"{{liveblog}}:webhook:{endpoint_id}:deliveries"


def _presence(slug: str) -> str:
    return f"liveblog:{{{slug}}}:presence"


def _locks(slug: str) -> str:
    return f"liveblog:{{{slug}}}:locks"


def _pairs(mapping: dict[bytes, bytes]) -> list[bytes]:
    """HGETALL as redis-py answers it (a dict) in the flat form a script returns."""
    return [item for pair in mapping.items() for item in pair]


def _snapshot(people: list[bytes], locks: list[bytes], now_ms: int) -> PresenceSnapshot:
    present = [_person_decoder.decode(raw) for raw in people[1::2]]
    held = {entry.decode(): _lock_decoder.decode(raw)
            for entry, raw in zip(locks[::2], locks[1::2], strict=True)}
    return PresenceSnapshot(
        people=[p for p in present if p.expires > now_ms],
        locks={entry: lock for entry, lock in held.items() if lock.expires > now_ms})


def _revs(slug: str) -> str:
    return f"liveblog:{{{slug}}}:revs"


def _idempotency(slug: str, actor: Actor, key: str) -> str:
    # A key is its identity's, not its name's: whoever is given a revoked name later must
    # not get the former holder's answers. (An actor without an identity, which no request
    # has, would fall back to its name.)
    who = actor.id or f"name\0{actor.name}"
    scope = hashlib.sha256(f"{who}\0{key}".encode()).hexdigest()[:32]
    return f"liveblog:{{{slug}}}:idem:{scope}"


def new_identity() -> str:
    """An identity for a new token: 16 hex digits, 64 random bits."""
    return secrets.token_hex(8)


def legacy_identity(digest: str) -> str:
    """The identity of a token stored before identities were: derived from the token's
    digest, so it is stable for that token's life and no other token (a new one with the
    same name included) ever has it."""
    return "legacy-" + hashlib.sha256(f"identity\0{digest}".encode()).hexdigest()[:16]


def _by_identity(tokens: dict[bytes, bytes]) -> dict[str, TokenRecord]:
    """The tokens hash's records by identity."""
    records = (_token_record(digest.decode(), value) for digest, value in tokens.items())
    return {record.id: record for record in records}


def _authored(identity: str) -> str:
    return f"{{liveblog}}:authored:{identity}"


def _person_record(raw: bytes) -> PersonRecord:
    return msgspec.json.decode(raw, type=PersonRecord)


def _person_of(token: TokenRecord) -> PersonRecord:
    """The person record of an identity issued before display names: its name is its
    byline."""
    return PersonRecord(id=token.id, name=token.name, role=token.role,
                        display_name=token.name, created_at=token.created_at)


def _person(record: PersonRecord, *, active: bool) -> Person:
    return Person(id=record.id, name=record.name, display_name=record.display_name,
                  role=record.role,  # type: ignore[arg-type]
                  status="active" if active else "revoked", created_at=record.created_at)


def _token_record(digest: str, raw: bytes) -> TokenRecord:
    record = msgspec.json.decode(raw, type=TokenRecord)
    if not record.id:
        record = msgspec.structs.replace(record, id=legacy_identity(digest))
    return record


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
