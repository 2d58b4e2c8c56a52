"""Redis Sentinel: the store on a real master, replica and three Sentinels
(tests/sentinel.py), named only by a redis+sentinel:// URL, under a real uvicorn."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from liveblog.errors import ConfigError
from tests.cluster import Node, post_until_acknowledged, start_node
from tests.sentinel import Sentinels, start_sentinels
from tests.sse import Follower, Message, reading
from tests.support import UvicornThread, app_config, create_tokens, wait_until

LOG = "liveblog:{tartus}:log"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sentinels]:
    """One master, two replicas, three Sentinels, shared by the module's tests."""
    started = start_sentinels(tmp_path_factory.mktemp("sentinel"), replicas=2)
    yield started
    started.stop()


@pytest.fixture
def sentinels(deployment: Sentinels) -> Sentinels:
    """The deployment, settled (an earlier test may have failed it over) and emptied
    (FLUSHALL reaches the replicas before the test reads them)."""
    wait_until(deployment.settled, timeout=30, what="the Sentinels to settle")
    with deployment.master().client() as client:
        client.flushall()
        assert client.execute_command("WAIT", 2, 2000) == 2
    return deployment


def test_a_blog_is_written_read_and_streamed_through_the_sentinels(
        sentinels: Sentinels) -> None:
    """The URL names only the Sentinels: the store finds the master through them, and what
    it writes is on the master and its replica."""
    tokens = create_tokens(sentinels.url)
    with UvicornThread(app_config(sentinels.url)) as server:
        posted, state, streamed = asyncio.run(_post_and_follow(server.base_url, tokens.editor,
                                                               tokens.reporter))
    assert [e["id"] for e in state["entries"]] == \
        [p["entry"]["id"] for p in reversed(posted)]  # newest first
    assert [m.event for m in streamed] == ["entry-posted"] * 3
    assert [m.id for m in streamed] == [p["event_id"] for p in posted]
    for node in (sentinels.master(), *sentinels.replicas()):
        with node.client() as client:
            ids = [i.decode() for i, _ in client.xrange(LOG)]
        assert ids[1:] == [p["event_id"] for p in posted]


async def _post_and_follow(base_url: str, editor: str, reporter: str,
                           ) -> tuple[list[dict[str, object]], dict[str, object],
                                      list[Message]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        opened = await http.post("/api/blogs", json={"slug": "tartus", "title": "Blasts"},
                                 headers={"Authorization": f"Bearer {editor}"})
        assert opened.status_code == 201, opened.text
        async with reading(http, "tartus") as reader:
            posted = []
            for number in range(3):
                answer = await http.post("/api/blogs/tartus/entries",
                                         json={"body": f"Update {number}"},
                                         headers={"Authorization": f"Bearer {reporter}"})
                assert answer.status_code == 201, answer.text
                posted.append(answer.json())
            streamed = (await reader.wait_for(4))[1:]
        state = (await http.get("/api/blogs/tartus")).json()
    return posted, state, streamed


def test_the_durability_check_reads_the_master_the_sentinels_name(
        sentinels: Sentinels) -> None:
    """A replica without an append-only file is not what acknowledges writes; a master
    without one is, and a strict server refuses to start on it."""
    master, replica = sentinels.master(), sentinels.replicas()[0]
    with replica.client() as client:
        client.config_set("appendonly", "no")
    try:
        with UvicornThread(app_config(sentinels.url)) as server:
            assert httpx.get(f"{server.base_url}/healthz").status_code == 200
        with master.client() as client:
            client.config_set("appendonly", "no")
        try:
            with pytest.raises(ConfigError) as refused, \
                    UvicornThread(app_config(sentinels.url)):
                pass
        finally:
            with master.client() as client:
                client.config_set("appendonly", "yes")
    finally:
        with replica.client() as client:
            client.config_set("appendonly", "yes")
    assert "keeps no append-only file" in str(refused.value)


def test_a_master_short_of_replicas_refuses_with_a_503_and_records_nothing(
        tmp_path: Path) -> None:
    """min-replicas-to-write, the guard Sentinel's documentation gives a master cut off
    from its replicas, makes Redis refuse writes (NOREPLICAS) while it has too few: that
    is a 503 with Retry-After, as when Redis is down, and nothing is recorded."""
    master = start_node(tmp_path / "master")
    url = f"redis://{master.address}"
    try:
        tokens = create_tokens(url)
        editor = {"Authorization": f"Bearer {tokens.editor}"}
        with UvicornThread(app_config(url)) as server, \
                httpx.Client(base_url=server.base_url, timeout=10) as http:
            assert http.post("/api/blogs", headers=editor,
                             json={"slug": "tartus", "title": "Blasts"}).status_code == 201
            with master.client() as client:
                client.config_set("min-replicas-to-write", "1")
            for path, body in (("/api/blogs", {"slug": "jableh", "title": "Blast"}),
                               ("/api/blogs/tartus/entries", {"body": "Blast"})):
                refused = http.post(path, headers=editor, json=body)
                assert refused.status_code == 503, refused.text
                assert refused.headers["content-type"] == "application/problem+json"
                assert refused.headers["retry-after"]
            with master.client() as client:
                assert client.xlen(LOG) == 1 and not client.exists("liveblog:{jableh}:log")
                client.config_set("min-replicas-to-write", "0")
            assert http.post("/api/blogs/tartus/entries", headers=editor,
                             json={"body": "Blast"}).status_code == 201
    finally:
        master.stop()


# -- failover ---------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_failover_on_demand_loses_nothing_acknowledged_when_every_replica_has_it(
        sentinels: Sentinels) -> None:
    """SENTINEL FAILOVER (an upgrade, a move): the old master stays up and takes writes
    until the Sentinels make it a replica, about ten seconds later, and what it took
    meanwhile is then dropped for the new master's copy. The other replica follows the old
    master until the Sentinels move it, so WAIT 1 would acknowledge some of those (seen
    here: 4 of 12 acknowledged posts lost); WAIT for every replica (2) acknowledges none,
    as the promoted one has left, and the retries land on the new master.

    Readers may have been sent a post the old master took but could not replicate (the
    server's tailer reads the master): when the new master's log disagrees, the server
    reloads the blog and its readers get a fresh snapshot, once, then every event."""
    tokens = create_tokens(sentinels.url)
    config = app_config(sentinels.url, wait_replicas=2, wait_timeout_ms=1000)

    def fail_over(_: Node) -> None:
        with sentinels.sentinels[0].client() as client:
            assert client.execute_command("SENTINEL", "FAILOVER", sentinels.service)

    with UvicornThread(config) as server:
        outcome = asyncio.run(_post_through_a_failover(
            sentinels, server.base_url, tokens.reporter, tokens.editor, fail=fail_over,
            restart=False, posts=12, fail_after=4, pace=0.25))
    print(f"sentinel, SENTINEL FAILOVER: {outcome[-1]}")
    _assert_each_acknowledged_post_logged_and_read_once(*outcome, reloads_allowed=1)


@pytest.mark.timeout(60)
def test_with_two_replicas_a_killed_master_holds_writes_only_until_the_promotion(
        sentinels: Sentinels) -> None:
    """The same kill -9 with two replicas: the Sentinels point the other replica at the
    promoted one as part of the failover, so WAIT 1 is met again at once. (Last in the
    module, as it costs a node: the killed one is started again at the end.)"""
    tokens = create_tokens(sentinels.url)
    config = app_config(sentinels.url, wait_replicas=1, wait_timeout_ms=1000)
    master = sentinels.master()
    try:
        with UvicornThread(config) as server:
            outcome = asyncio.run(_post_through_a_failover(
                sentinels, server.base_url, tokens.reporter, tokens.editor,
                fail=Node.kill, restart=False))
    finally:
        if not master.alive():
            master.restart()  # it rejoins as a replica for whatever test comes next
    print(f"sentinel, kill -9 of the master, 2 replicas: {outcome[-1]}")
    _assert_each_acknowledged_post_logged_and_read_once(*outcome)
    assert outcome[-1]["longest_wait_seconds"] < 8  # no wait for the old master


@pytest.mark.timeout(60)
def test_killing_the_master_loses_no_acknowledged_change_and_readers_resume(
        tmp_path: Path) -> None:
    """kill -9 of the master while a reporter posts (WAIT 1) and readers read through a
    real server: the Sentinels promote the replica, every acknowledged post is in the log
    exactly once, every reader has every event once, in order.

    The promoted replica has no replica of its own, so WAIT 1 holds every change until
    the old master, started again (as a supervisor would), has been made one by the
    Sentinels: they leave a returning master alone for 8 s first."""
    deployment = start_sentinels(tmp_path / "sentinel", replicas=1)
    try:
        tokens = create_tokens(deployment.url)
        config = app_config(deployment.url, wait_replicas=1, wait_timeout_ms=1000)
        with UvicornThread(config) as server:
            outcome = asyncio.run(_post_through_a_failover(
                deployment, server.base_url, tokens.reporter, tokens.editor,
                fail=Node.kill, restart=True))
    finally:
        deployment.stop()
    print(f"sentinel, kill -9 of the master, 1 replica: {outcome[-1]}")
    _assert_each_acknowledged_post_logged_and_read_once(*outcome)


def _assert_each_acknowledged_post_logged_and_read_once(
        acknowledged: dict[str, str], readers: list[list[Message]],
        log: list[dict[str, object]], stats: dict[str, float], *,
        reloads_allowed: int = 0) -> None:
    """Every acknowledged post in the log once; every reader has every event of the log
    once, in order, after its snapshot (or after its last one, if its server reloaded it:
    see the failover on demand)."""
    log_ids = [event["id"] for event in log]
    posted = [event for event in log if event["type"] == "entry-posted"]
    assert set(acknowledged.values()) <= set(log_ids)
    assert len(posted) == len(acknowledged) == stats["posts"]
    assert len({event["data"]["entry_id"] for event in posted}) == len(posted)
    assert stats["refused"] > 0  # the failover was felt, and ridden over
    for reader in readers:
        assert reader[0].event == "snapshot"
        reloads = [n for n, m in enumerate(reader) if m.event == "snapshot"][1:]
        assert len(reloads) <= reloads_allowed
        snapshot, *rest = reader[reloads[-1]:] if reloads else reader
        assert [m.event for m in rest] == ["entry-posted"] * len(rest)
        assert [m.id for m in rest] == log_ids[log_ids.index(snapshot.id) + 1:]


async def _post_through_a_failover(
        deployment: Sentinels, base_url: str, reporter: str, editor: str, *,
        fail: Callable[[Node], None], restart: bool, posts: int = 20, fail_after: int = 8,
        pace: float = 0.0,
) -> tuple[dict[str, str], list[list[Message]], list[dict[str, object]], dict[str, float]]:
    """Post `posts` updates, `pace` seconds apart, each retried with its key until
    acknowledged, while three readers follow; `fail` the master before post `fail_after`."""
    acknowledged: dict[str, str] = {}  # idempotency key -> event id
    refused = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
        opened = await http.post("/api/blogs", json={"slug": "tartus", "title": "Blasts"},
                                 headers={"Authorization": f"Bearer {editor}"})
        assert opened.status_code == 201, opened.text
        followers = [Follower(http) for _ in range(3)]
        wait_for = time.monotonic() + 10
        while not all(f.messages for f in followers):
            assert time.monotonic() < wait_for, "readers did not get their snapshots"
            await asyncio.sleep(0.02)
        master: Node = deployment.master()
        failed_at = longest = 0.0
        promoted = asyncio.Event()

        def restart_the_old_master() -> None:
            if restart and promoted.is_set() and not master.alive():
                # The promoted replica has no replica of its own: the old master, started
                # again (as a supervisor would), is made one by the Sentinels.
                master.restart()

        for number in range(posts):
            if number == fail_after:
                fail(master)
                failed_at = time.monotonic()
                watcher = asyncio.create_task(_promotion(deployment, master, promoted))
            first_try = time.monotonic()
            event_id, tries = await post_until_acknowledged(
                http, reporter, number, restart_the_old_master)
            acknowledged[f"post-{number}"] = event_id
            refused += tries
            longest = max(longest, time.monotonic() - first_try)
            await asyncio.sleep(pace)
        log_answer = await http.get("/api/blogs/tartus/events", params={"limit": 1000},
                                    headers={"Authorization": f"Bearer {editor}"})
        assert log_answer.status_code == 200, log_answer.text
        log: list[dict[str, object]] = log_answer.json()["events"]
        wait_for = time.monotonic() + 20
        while not all(f.messages[-1].id == log[-1]["id"] for f in followers):
            assert time.monotonic() < wait_for, "readers did not catch up"
            await asyncio.sleep(0.05)
        for follower in followers:
            await follower.stop()
    stats = {"posts": posts, "refused": refused,
             "promoted_seconds": round(await watcher - failed_at, 2),
             # The longest a post took from its first try to its acknowledgement.
             "longest_wait_seconds": round(longest, 2),
             "reader_reconnects": sum(f.connections - 1 for f in followers),
             "reader_reloads": sum(m.event == "snapshot" for f in followers
                                   for m in f.messages[1:])}
    return acknowledged, [f.messages for f in followers], log, stats


async def _promotion(deployment: Sentinels, old: Node, promoted: asyncio.Event) -> float:
    """When the Sentinels first name another master than `old` (time.monotonic())."""
    while True:
        if await asyncio.to_thread(deployment.master_port) != old.port:
            break
        await asyncio.sleep(0.05)
    promoted.set()
    return time.monotonic()
