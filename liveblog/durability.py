"""Whether the Redis we were given keeps what we acknowledge.

liveblog answers a reporter's POST once Redis has the event. That is only a promise if
Redis writes it to disk (an append-only file) and never evicts a key to make room. Which
keys a full Redis evicts depends on its maxmemory-policy:

- allkeys-*: any key, so a blog's log (the blog gone) or a token.
- volatile-*: only keys with a time to live. Ours are the idempotency keys alone (kept
  25 hours; blogs and tokens have none), so no update is lost, but a client that retries
  with the same Idempotency-Key, as a 503 tells it to, gets its post appended twice.

The embedded Redis is started that way; an external one is checked at startup, by every
process, against LIVEBLOG_DURABILITY:

- strict (the default): refuse to start on a Redis that would lose acknowledged updates
  (no append-only file, an allkeys-* policy) or break the retry promise (a volatile-*
  policy). The latter is refused too: the duplicate comes silently, just when memory is
  short, while under noeviction the same full Redis refuses the write and the client
  knows; noeviction costs nothing else.
- warn: log the same findings and serve anyway (development, or a deployment that
  relies on replicas and WAIT instead; see docs/deploy.md).

`appendfsync everysec` is reported but allowed in both: Redis's own default, it loses at
most a second of writes on a power cut of the machine (not on a crash of the process),
which is the usual trade for a replicated Redis.
"""

from __future__ import annotations

import logging
from typing import Literal

import msgspec

from liveblog.errors import ConfigError

Policy = Literal["strict", "warn"]
logger = logging.getLogger("liveblog.durability")


class Durability(msgspec.Struct, frozen=True, kw_only=True):
    """What a Redis says about its persistence; None where it would not tell (managed
    services often disable CONFIG)."""

    appendonly: bool | None
    appendfsync: str | None
    maxmemory_policy: str | None
    # Which server said it (of a cluster, a master's address); None: the one Redis.
    node: str | None = None


def findings(d: Durability) -> tuple[list[str], list[str]]:
    """(what loses acknowledged updates, what a careful operator should know)."""
    fatal: list[str] = []
    notes: list[str] = []
    redis = "Redis" if d.node is None else f"Redis (the cluster's master {d.node})"
    if d.appendonly is False:
        fatal.append(
            f"{redis} keeps no append-only file (appendonly no): a crash loses every update "
            "since its last snapshot. Fix: `CONFIG SET appendonly yes` and `appendonly yes` "
            "in redis.conf"
        )
    elif d.appendonly is None:
        notes.append(f"{redis} did not say whether it keeps an append-only file")
    fix = "Fix: `CONFIG SET maxmemory-policy noeviction`"
    if d.maxmemory_policy is not None and d.maxmemory_policy.startswith("volatile-"):
        fatal.append(
            f"{redis} evicts keys with a time to live when full (maxmemory-policy "
            f"{d.maxmemory_policy}): those are liveblog's idempotency keys, so a post "
            f"retried with its Idempotency-Key could be posted twice (blogs are kept). {fix}"
        )
    elif d.maxmemory_policy is not None and d.maxmemory_policy != "noeviction":
        fatal.append(
            f"{redis} evicts keys when full (maxmemory-policy {d.maxmemory_policy}): it "
            f"would delete whole blogs. {fix}"
        )
    elif d.maxmemory_policy is None:
        notes.append(f"{redis} did not say what it does when its memory is full")
    if d.appendonly and d.appendfsync not in (None, "always"):
        notes.append(
            f"{redis} syncs its append-only file {d.appendfsync}: a power cut of its machine "
            "can lose up to a second of acknowledged updates (a replica, or WAIT, covers it)"
        )
    return fatal, notes


def judge(d: Durability, policy: Policy) -> None:
    """Log what was found; raise ConfigError if it would lose updates and policy is strict."""
    fatal, notes = findings(d)
    for note in notes:
        logger.warning("%s", note)
    if not fatal:
        return
    if policy == "warn":
        for finding in fatal:
            logger.warning("%s (serving anyway: LIVEBLOG_DURABILITY=warn)", finding)
        return
    raise ConfigError(
        "; ".join(fatal)
        + ". Or set LIVEBLOG_DURABILITY=warn to serve on this Redis anyway."
    )
