"""The event store against a real redis-server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from redis.crc import key_slot

from liveblog.domain.events import Actor, BlogOpened, EntryEdited, EntryPosted, FactUpdated
from liveblog.errors import (
    IdempotencyKeyReused,
    PreconditionFailed,
    StoreUnavailable,
    VersionConflict,
)
from liveblog.service import Service
from liveblog.store import Store
from tests.support import open_store

pytestmark = pytest.mark.backends  # also on a Redis Cluster

ED = Actor("ed", "editor")
RANIA = Actor("rania", "reporter")
AT = datetime(2026, 5, 23, 9, 0, tzinfo=UTC)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def opened(url: str) -> Store:
    store = open_store(url)
    await store.append("tartus", BlogOpened(slug="tartus", title="Blasts"), ED, AT,
                       expected_version=0)
    return store


def test_appends_number_versions_and_read_back_in_order(redis_url: str) -> None:
    async def scenario() -> None:
        store = await opened(redis_url)
        for n in range(5):
            appended = await store.append(
                "tartus", EntryPosted(entry_id=f"e{n}", body=f"update {n}"), RANIA, AT
            )
            assert appended.recorded.version == n + 2
        events = await store.read("tartus")
        assert [e.version for e in events] == [1, 2, 3, 4, 5, 6]
        assert events[1].event == EntryPosted(entry_id="e0", body="update 0")
        assert (events[1].actor, events[1].role, events[1].at) == ("rania", "reporter", AT)
        assert [e.id for e in await store.read("tartus", after=events[2].id, count=2)] == \
            [events[3].id, events[4].id]
        assert [e.id for e in await store.read("tartus", upto=events[1].id)] == \
            [events[0].id, events[1].id]
        everything, length = await store.read_all("tartus", page=2)
        assert [e.id for e in everything] == [e.id for e in events] and length == 6
        await store.close()

    run(scenario())


def test_an_expected_version_lets_exactly_one_of_concurrent_writers_win(redis_url: str) -> None:
    async def scenario() -> None:
        store = await opened(redis_url)

        async def attempt(n: int) -> str:
            try:
                await store.append("tartus", EntryPosted(entry_id=f"e{n}", body="x"), RANIA, AT,
                                   expected_version=1)
                return "won"
            except VersionConflict as conflict:
                assert conflict.actual == 2
                return "lost"

        outcomes = await asyncio.gather(*(attempt(n) for n in range(20)))
        assert outcomes.count("won") == 1
        assert await store.length("tartus") == 2
        await store.close()

    run(scenario())


def test_the_entry_revision_check_refuses_a_stale_edit(redis_url: str) -> None:
    async def scenario() -> None:
        store = await opened(redis_url)
        await store.append("tartus", EntryPosted(entry_id="e1", body="v1"), RANIA, AT,
                           entry_revision=("e1", "0", "1"))
        edit = EntryEdited(entry_id="e1", body="v2")
        await store.append("tartus", edit, RANIA, AT, entry_revision=("e1", "1", "2"))
        with pytest.raises(PreconditionFailed):
            await store.append("tartus", edit, RANIA, AT, entry_revision=("e1", "1", "2"))
        with pytest.raises(PreconditionFailed):  # "0": the entry must not exist yet
            await store.append("tartus", EntryPosted(entry_id="e1", body="dup"), RANIA, AT,
                               entry_revision=("e1", "0", "1"))
        assert await store.length("tartus") == 3
        await store.close()

    run(scenario())


def test_revisions_written_into_meta_by_older_versions_still_guard_edits(
        redis_url: str) -> None:
    """Stores written before the revs key kept each entry's revision in meta as rev:<id>:
    the check falls back to it, and the entry's next change moves it out of meta."""
    async def scenario() -> None:
        store = await opened(redis_url)
        await store.append("tartus", EntryPosted(entry_id="e1", body="v1"), RANIA, AT)
        await store.redis.hset("liveblog:{tartus}:meta", "rev:e1", "1")  # as they wrote it
        edit = EntryEdited(entry_id="e1", body="v2")
        with pytest.raises(PreconditionFailed):
            await store.append("tartus", edit, RANIA, AT, entry_revision=("e1", "2", "3"))
        with pytest.raises(PreconditionFailed):  # it exists: it cannot be posted again
            await store.append("tartus", EntryPosted(entry_id="e1", body="dup"), RANIA, AT,
                               entry_revision=("e1", "0", "1"))
        await store.append("tartus", edit, RANIA, AT, entry_revision=("e1", "1", "2"))
        assert await store.redis.hget("liveblog:{tartus}:revs", "e1") == b"2"
        assert await store.redis.hget("liveblog:{tartus}:meta", "rev:e1") is None
        with pytest.raises(PreconditionFailed):
            await store.append("tartus", edit, RANIA, AT, entry_revision=("e1", "1", "2"))
        assert await store.length("tartus") == 3
        await store.close()

    run(scenario())


def test_concurrent_retries_with_one_idempotency_key_append_once(redis_url: str) -> None:
    async def scenario() -> None:
        await (await opened(redis_url)).close()
        # Several processes' worth of services, each with its own connection pool.
        services = [Service(open_store(redis_url)) for _ in range(4)]

        async def post(service: Service) -> str:
            from liveblog.domain import commands
            from liveblog.domain.commands import NewEntry

            entry_id = service.new_id()
            outcome = await service.execute(
                "tartus", RANIA,
                lambda blog: commands.post_entry(blog, RANIA, NewEntry(body="Blast"), entry_id),
                idempotency=("retry-1", "fingerprint-a"),
            )
            assert outcome.recorded is not None
            return outcome.recorded.id

        ids = await asyncio.gather(*(post(services[n % 4]) for n in range(24)))
        assert len(set(ids)) == 1
        events = await services[0].store.read("tartus")
        assert [e.event.__class__.__name__ for e in events] == ["BlogOpened", "EntryPosted"]
        # The same key from another token is another request.
        other = Actor("omar", "reporter")
        appended = await services[0].store.append(
            "tartus", EntryPosted(entry_id="o1", body="x"), other, AT,
            idempotency=("retry-1", "fingerprint-a"),
        )
        assert not appended.repeated
        # The same key with another body is refused, not silently merged.
        with pytest.raises(IdempotencyKeyReused):
            await services[0].store.append(
                "tartus", EntryPosted(entry_id="r2", body="other"), RANIA, AT,
                idempotency=("retry-1", "fingerprint-b"),
            )
        keys = [k async for k in services[0].store.redis.scan_iter("*idem*")]
        ttl = await services[0].store.redis.ttl(keys[0])
        assert 24 * 3600 < ttl <= 25 * 3600
        for service in services:
            await service.store.close()

    run(scenario())


def test_the_log_is_never_trimmed(redis_url: str) -> None:
    async def scenario() -> None:
        store = await opened(redis_url)
        for n in range(3000):
            await store.append("tartus", FactUpdated(key="deaths", label="Deaths", value=str(n)),
                               RANIA, AT)
        events, length = await store.read_all("tartus")
        assert length == 3001 and len(events) == 3001
        assert events[0].event == BlogOpened(slug="tartus", title="Blasts")
        await store.close()

    run(scenario())


def test_tokens_are_stored_hashed_and_can_be_revoked(redis_url: str) -> None:
    async def scenario() -> None:
        store = open_store(redis_url)
        assert await store.create_token("rania", "reporter", "lb_secret-value", AT)
        assert not await store.create_token("rania", "editor", "lb_other", AT)
        found = await store.find_token("lb_secret-value")
        assert found is not None and (found.name, found.role) == ("rania", "reporter")
        assert await store.find_token("lb_wrong") is None
        dump = b"".join(
            [k + b"".join((await store.redis.hgetall(k)).values())
             async for k in store.redis.scan_iter()]
        )
        assert b"lb_secret-value" not in dump
        assert [t.name for t in await store.list_tokens()] == ["rania"]
        assert await store.revoke_token("rania")
        assert await store.find_token("lb_secret-value") is None
        assert not await store.revoke_token("rania")
        await store.close()

    run(scenario())


def test_each_token_is_an_identity_that_rotation_keeps(redis_url: str) -> None:
    async def scenario() -> None:
        store = open_store(redis_url)
        assert await store.create_token("rania", "reporter", "lb_first", AT)
        first = await store.find_token("lb_first")
        assert first is not None and len(first.id) == 16
        rotated = await store.rotate_token("rania", "lb_second")
        assert rotated is not None and rotated.id == first.id
        assert await store.find_token("lb_first") is None
        assert await store.find_token("lb_second") == first
        assert await store.rotate_token("nobody", "lb_x") is None
        assert await store.revoke_token("rania")
        assert await store.create_token("rania", "reporter", "lb_third", AT)
        third = await store.find_token("lb_third")
        assert third is not None and third.id != first.id
        await store.close()

    run(scenario())


def test_records_and_events_from_before_identities_still_work(redis_url: str) -> None:
    """Token records and log entries written before identities were: a token gets an
    identity of its own, derived from its digest and kept by rotation; an event decodes
    with no actor_id, and its entry then belongs to no reporter."""
    import hashlib

    from liveblog.domain import commands
    from liveblog.domain.commands import EntryChanges
    from liveblog.errors import Forbidden

    async def scenario() -> None:
        store = await opened(redis_url)
        digest = hashlib.sha256(b"lb_legacy").hexdigest()
        await store.redis.hset("{liveblog}:tokens", digest,
                               b'{"name":"old","role":"reporter",'
                               b'"created_at":"2025-01-01T00:00:00+00:00"}')
        await store.redis.hset("{liveblog}:token-names", "old", digest)
        legacy = await store.find_token("lb_legacy")
        assert legacy is not None and legacy.id.startswith("legacy-")
        assert await store.find_token("lb_legacy") == legacy  # stable
        rotated = await store.rotate_token("old", "lb_new")
        assert rotated is not None and rotated.id == legacy.id
        assert await store.find_token("lb_new") == legacy

        # An entry-posted event exactly as the code before identities wrote it.
        await store.redis.xadd("liveblog:{tartus}:log", {
            "v": "2", "type": "entry-posted", "at": AT.isoformat(), "actor": "rania",
            "role": "reporter", "data": b'{"type":"entry-posted","entry_id":"e1","body":"x"}',
        })
        [rec] = await store.read("tartus", after=(await store.read("tartus"))[0].id)
        assert rec.actor_id is None and rec.actor == "rania"
        blog = await Service(store).blog("tartus")
        assert blog.entries["e1"].author_id is None
        with pytest.raises(Forbidden):
            commands.edit_entry(blog, Actor("rania", "reporter", "any-id"), "e1",
                                EntryChanges(body="y"))
        assert commands.edit_entry(blog, ED, "e1", EntryChanges(body="y"))
        await store.close()

    run(scenario())


def test_a_missing_redis_is_store_unavailable() -> None:
    async def scenario() -> None:
        store = Store.from_url("unix:///nonexistent/redis.sock")
        with pytest.raises(StoreUnavailable):
            await store.ping()
        await store.close()

    run(scenario())


def test_an_append_that_may_have_landed_says_how_to_find_out(redis_url: str) -> None:
    """Redis can die after running the append and before answering: the 503 must not say
    "nothing happened" but how to retry without posting twice."""
    import redis.asyncio as aioredis

    async def scenario() -> None:
        good = open_store(redis_url)
        store = Store(good.redis, writer=aioredis.from_url("unix:///nonexistent/redis.sock"))
        with pytest.raises(StoreUnavailable) as refused:
            await store.append("tartus", BlogOpened(slug="tartus", title="Blasts"), ED, AT,
                               expected_version=0)
        assert "may or may not have been recorded" in refused.value.detail
        assert "same Idempotency-Key" in refused.value.detail
        with pytest.raises(StoreUnavailable) as read:  # a read is simply unavailable
            await Store.from_url("unix:///nonexistent/redis.sock").length("tartus")
        assert "may" not in read.value.detail
        await store.writer.aclose()
        await good.close()

    run(scenario())


def test_keys_of_a_blog_share_one_cluster_slot(redis_url: str) -> None:
    async def scenario() -> None:
        store = await opened(redis_url)
        await store.append("tartus", EntryPosted(entry_id="e1", body="x"), RANIA, AT,
                           idempotency=("k", "f"), entry_revision=("e1", "0", "1"))
        keys = [k.decode() async for k in store.redis.scan_iter("liveblog:*")]
        assert len(keys) == 4 and all("{tartus}" in k for k in keys)
        assert len({key_slot(k.encode()) for k in keys}) == 1
        await store.close()

    run(scenario())


def test_a_post_needs_a_live_blog_not_a_version(redis_url: str) -> None:
    """A new entry appended while_live lands whatever else landed first, but never on a
    blog that has ended meanwhile, and never on a blog that does not exist."""
    from liveblog.domain.events import BlogUpdated

    async def scenario() -> None:
        store = open_store(redis_url)
        with pytest.raises(VersionConflict):
            await store.append("nowhere", EntryPosted(entry_id="n0", body="x"), RANIA, AT,
                               while_live=True)
        assert await store.length("nowhere") == 0
        await store.close()
        store = await opened(redis_url)
        for n in range(3):  # others' posts: the version moves on
            await store.append("tartus", EntryPosted(entry_id=f"e{n}", body="x"), RANIA, AT)
        appended = await store.append("tartus", EntryPosted(entry_id="late", body="x"),
                                      RANIA, AT, expected_version=1, while_live=True)
        assert appended.recorded.version == 5
        await store.append("tartus", BlogUpdated(status="ended"), ED, AT,
                           summary={"status": "ended"})
        with pytest.raises(VersionConflict):
            await store.append("tartus", EntryPosted(entry_id="after", body="x"), RANIA, AT,
                               while_live=True)
        assert await store.length("tartus") == 6
        await store.close()

    run(scenario())


def test_a_burst_of_commands_past_the_connection_pool_waits_for_connections(
        redis_url: str) -> None:
    """A spike of readers opening a blog no process tails yet sends hundreds of commands at
    once. redis-py 8 caps a client's pool at 100 connections and fails the 101st command
    at once (MaxConnectionsError, which we answered 503): 500 of 600 readers of the
    capacity benchmark were turned away. The store's pool is bounded but waits."""
    async def scenario() -> None:
        store = await opened(redis_url)
        try:
            lengths = await asyncio.gather(*(store.length("tartus") for _ in range(600)))
            assert lengths == [1] * 600
        finally:
            await store.close()

    run(scenario())


def test_presence_and_soft_locks_lapse_by_themselves_beside_the_log(redis_url: str) -> None:
    """Presence (issue 10): each record carries when it lapses, a beat takes a free lock
    and lets go of the beater's others, leaving signs off; the keys share the blog's slot,
    expire by themselves, and nothing reaches the log."""
    from liveblog.store import LockRecord, PresenceRecord

    ttl = 30_000

    def person(who: str, editing: str | None, now: int) -> PresenceRecord:
        return PresenceRecord(id=who, name=f"name-{who}", role="reporter", editing=editing,
                              seen=now, expires=now + ttl)

    async def scenario() -> None:
        store = await opened(redis_url)
        now = 1_780_000_000_000
        seen = await store.beat("tartus", person("a", "e1", now), now_ms=now, lock_ttl_ms=ttl)
        assert [p.id for p in seen.people] == ["a"]
        assert seen.locks == {"e1": LockRecord(holder="a", name="name-a", expires=now + ttl)}
        # b opens the same entry: a keeps the lock; b is present with it open.
        seen = await store.beat("tartus", person("b", "e1", now + 1), now_ms=now + 1,
                                lock_ttl_ms=ttl)
        assert {p.id: p.editing for p in seen.people} == {"a": "e1", "b": "e1"}
        assert {e: lock.holder for e, lock in seen.locks.items()} == {"e1": "a"}
        # a moves on to e2 and lets go of e1, which b's next beat takes.
        await store.beat("tartus", person("a", "e2", now + 2), now_ms=now + 2, lock_ttl_ms=ttl)
        seen = await store.beat("tartus", person("b", "e1", now + 3), now_ms=now + 3,
                                lock_ttl_ms=ttl)
        assert {e: lock.holder for e, lock in seen.locks.items()} == {"e1": "b", "e2": "a"}
        found = await store.lock("tartus", "e1", now_ms=now + 3)
        assert found is not None and found.holder == "b"

        # Past a's time a is gone from what is read, and from Redis at the next beat.
        later = now + 2 + ttl
        seen = await store.presence("tartus", now_ms=later)
        assert [p.id for p in seen.people] == ["b"] and set(seen.locks) == {"e1"}
        assert await store.lock("tartus", "e2", now_ms=later) is None
        await store.beat("tartus", person("b", None, later), now_ms=later, lock_ttl_ms=ttl)
        assert await store.redis.hkeys("liveblog:{tartus}:presence") == [b"b"]
        assert await store.redis.exists("liveblog:{tartus}:locks") == 0  # b closed e1

        # The keys share the blog's slot and expire by themselves within the ttl.
        await store.beat("tartus", person("b", "e1", later), now_ms=later, lock_ttl_ms=ttl)
        keys = [k.decode() async for k in store.redis.scan_iter("liveblog:*")]
        assert len({key_slot(k.encode()) for k in keys}) == 1
        for key in ("liveblog:{tartus}:presence", "liveblog:{tartus}:locks"):
            assert key in keys and 0 < await store.redis.pttl(key) <= ttl

        await store.leave("tartus", "b")
        assert (await store.presence("tartus", now_ms=later)).people == []
        left = [k.decode() async for k in store.redis.scan_iter("liveblog:*")]
        assert not [k for k in left if k.endswith((":presence", ":locks"))]
        assert await store.length("tartus") == 1  # the blog-opened event alone
        await store.close()

    run(scenario())
