"""The event store: the only module that speaks Redis.

Keys (the `{slug}` hash tag puts all of one blog's keys in one Redis Cluster slot, so the
append script may touch them together):

    liveblog:{slug}:log          stream: the blog's events, never trimmed
    liveblog:{slug}:meta         hash: title, description, status, version, last_event_id,
                                 times (what the list of blogs shows: a few fields,
                                 whatever the size)
    liveblog:{slug}:revs         hash: entry id -> its revision ("x" once retracted).
                                 Stores written before it held these in meta, as
                                 rev:<entry id>; the append script still reads those
    liveblog:{slug}:idem:<hash>  string: "<event id> <request fingerprint>", expires
    liveblog:{slug}:audience     hash: server process -> its readers of the blog now and
                                 its delivery lag (JSON, with when it said so); expires
                                 when no process refreshes it (see Store.report_audience)
    {liveblog}:blogs             sorted set: every slug ever opened (score: opening time)
    {liveblog}:due               sorted set: "<slug> <entry id>" of each scheduled entry
                                 (score: its time, Unix seconds). Derived from the logs:
                                 the schedulers rebuild it at startup (scheduler.py)
    {liveblog}:tokens            hash: sha256(token) -> {name, role, created_at, id}
    {liveblog}:token-names       hash: name -> sha256(token)

A stream entry's fields: v (blog version), type, at (ISO 8601), actor, role, actor_id (the
actor's identity; absent from events logged before identities were), data (the event's
tagged JSON).
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
from typing import Any, ParamSpec, TypeVar

import msgspec
import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.commands.core import AsyncScript

from liveblog.config import Config, sentinel_address
from liveblog.domain.events import Actor, Event, Recorded, event_decoder, event_encoder, kind
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
for i = 9, 8 + 2 * npairs do summary[#summary + 1] = ARGV[i] end
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

_CREATE_TOKEN = """
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1
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
_LISTED = ("title", "status", "version", "opened_at", "updated_at", "description")
_TOKENS = "{liveblog}:tokens"
_TOKEN_NAMES = "{liveblog}:token-names"

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


class BlogSummary(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    title: str
    status: str
    version: int
    opened_at: datetime
    updated_at: datetime
    # "" for a blog whose description has not been set since the listing kept it.
    description: str = ""


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
        self._revoke_token = client.register_script(_REVOKE_TOKEN)
        self._rotate_token = client.register_script(_ROTATE_TOKEN)
        self._version_of = client.register_script(_VERSION_OF)
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
        for slug, (title, status, version, opened_at, updated_at, description) in zip(
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
        keys = [_log(slug), _meta(slug), _revs(slug)]
        if idempotency is not None:
            keys.append(_idempotency(slug, actor, idempotency[0]))
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
        ]
        if actor.id:
            args += ["actor_id", actor.id]
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
                event=event, actor_id=actor.id or None,
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

    # -- tokens --------------------------------------------------------------------------

    @_unavailable_on_redis_errors
    async def create_token(self, name: str, role: str, secret: str, at: datetime) -> bool:
        """Store a token by its hash, for a new identity; False if the name is taken."""
        record = msgspec.json.encode(
            TokenRecord(name=name, role=role, created_at=at, id=new_identity()))
        created = await self._create_token(
            keys=[_TOKENS, _TOKEN_NAMES], args=[name, _digest(secret), record]
        )
        return bool(created)

    @_unavailable_on_redis_errors
    async def find_token(self, secret: str) -> TokenRecord | None:
        digest = _digest(secret)
        raw = await self.redis.hget(_TOKENS, digest)
        return None if raw is None else _token_record(digest, raw)

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
        return bool(await self._revoke_token(keys=[_TOKENS, _TOKEN_NAMES], args=[name]))


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
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _log(slug: str) -> str:
    return f"liveblog:{{{slug}}}:log"


def _meta(slug: str) -> str:
    return f"liveblog:{{{slug}}}:meta"


def _audience(slug: str) -> str:
    return f"liveblog:{{{slug}}}:audience"


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


def _token_record(digest: str, raw: bytes) -> TokenRecord:
    record = msgspec.json.decode(raw, type=TokenRecord)
    if not record.id:
        record = msgspec.structs.replace(record, id=legacy_identity(digest))
    return record


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
