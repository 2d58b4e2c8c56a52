"""Redis Cluster, replicas and WAIT, Sentinel: real redis-server processes (tests/cluster.py)
and a real uvicorn serving the app on them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from liveblog.config import Config, SentinelAddress, redacted, sentinel_address
from liveblog.errors import ConfigError
from liveblog.store import Store
from tests.cluster import Cluster, Node, post_until_acknowledged, start_cluster, start_node
from tests.sse import Follower, Message
from tests.support import CLUSTER_URLS, UvicornThread, app_config, create_tokens, wait_until

MAYBE = "may or may not have been recorded"


# -- settings ---------------------------------------------------------------------------------


def test_a_sentinel_url_names_its_sentinels_service_database_and_passwords() -> None:
    assert sentinel_address("redis+sentinel://s1,s2:26380,[::1]:26381/news") == \
        SentinelAddress(sentinels=(("s1", 26379), ("s2", 26380), ("::1", 26381)),
                        service="news")
    assert sentinel_address(
        "redis+sentinel://app:s%40cret@s1:5000/news/2?sentinel_password=other") == \
        SentinelAddress(sentinels=(("s1", 5000),), service="news", db=2, username="app",
                        password="s@cret", sentinel_password="other")
    assert sentinel_address("redis+sentinel://:pw@s1/news").password == "pw"
    config = Config.from_env({"LIVEBLOG_REDIS_URL": "redis+sentinel://s1/news"})
    assert config.redis_url == "redis+sentinel://s1/news" and not config.redis_cluster
    shown = redacted("redis+sentinel://:pw@s1,s2/news?sentinel_password=other")
    assert "pw" not in shown and "other" not in shown


@pytest.mark.parametrize(("env", "named"), [
    ({"LIVEBLOG_REDIS_URL": "redis+sentinel://s1"}, "names no Sentinel service"),
    ({"LIVEBLOG_REDIS_URL": "redis+sentinel://s1/news/x"}, "only a database number"),
    ({"LIVEBLOG_REDIS_URL": "redis+sentinel://s1:99999/news"}, "is not a port"),
    ({"LIVEBLOG_REDIS_URL": "redis+sentinel://s1,/news"}, "without a host"),
    ({"LIVEBLOG_REDIS_URL": "redis+sentinel://s1/news?db=2"}, "unknown option 'db'"),
    ({"LIVEBLOG_REDIS_URL": "http://:secret@x"}, "must start with redis://"),
    ({"LIVEBLOG_REDIS_CLUSTER": "true"}, "needs LIVEBLOG_REDIS_URL"),
    ({"LIVEBLOG_REDIS_CLUSTER": "maybe", "LIVEBLOG_REDIS_URL": "redis://x"},
     "LIVEBLOG_REDIS_CLUSTER must be true or false"),
    ({"LIVEBLOG_REDIS_CLUSTER": "true", "LIVEBLOG_REDIS_URL": "unix:///r.sock"},
     "needs a redis:// or rediss:// URL"),
    ({"LIVEBLOG_REDIS_CLUSTER": "true", "LIVEBLOG_REDIS_URL": "redis+sentinel://s/n"},
     "not a redis+sentinel:// one"),
    ({"LIVEBLOG_REDIS_WAIT_REPLICAS": "-1"}, "LIVEBLOG_REDIS_WAIT_REPLICAS must be between"),
    ({"LIVEBLOG_REDIS_WAIT_TIMEOUT_MS": "0"}, "LIVEBLOG_REDIS_WAIT_TIMEOUT_MS must be between"),
])
def test_a_wrong_redis_setting_is_a_config_error_naming_it(env: dict[str, str],
                                                           named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Config.from_env(env)
    assert named in str(raised.value)
    assert "secret" not in str(raised.value)


# -- durability on a cluster ------------------------------------------------------------------


def test_the_durability_check_asks_every_master_of_a_cluster(redis_cluster: Cluster) -> None:
    """The cluster is as careful as its least careful master: each holds some blogs."""
    redis_cluster.flush()
    careless = redis_cluster.masters()[-1]

    async def found() -> tuple[list[str], str | None]:
        store = Store.from_url(redis_cluster.url, cluster=True)
        try:
            from liveblog.durability import findings

            durability = await store.durability()
            return findings(durability)[0], durability.node
        finally:
            await store.close()

    assert asyncio.run(found())[0] == []
    with careless.client() as client:
        client.config_set("appendonly", "no")
    try:
        fatal, node = asyncio.run(found())
    finally:
        with careless.client() as client:
            client.config_set("appendonly", "yes")
    assert node == careless.address
    assert len(fatal) == 1
    assert f"master {careless.address}) keeps no append-only file" in fatal[0]


# -- WAIT -------------------------------------------------------------------------------------


@contextlib.contextmanager
def stopped(node: Node) -> Iterator[None]:
    """SIGSTOP: the replica is there, but acknowledges nothing."""
    os.kill(node.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(node.process.pid, signal.SIGCONT)


def start_replica(master: Node, directory: Path) -> Node:
    replica = start_node(directory, "--replicaof", "127.0.0.1", str(master.port))
    wait_until(lambda: replica.info("replication").get("master_link_status") == "up",
               what="the replica to sync")
    return replica


def test_a_change_no_replica_confirms_is_a_503_and_its_retry_is_acknowledged_once_one_does(
        tmp_path: Path) -> None:
    master = start_node(tmp_path / "master")
    replica = start_replica(master, tmp_path / "replica")
    url = f"redis://{master.address}"
    try:
        tokens = create_tokens(url)
        config = app_config(url, wait_replicas=1, wait_timeout_ms=300)
        with UvicornThread(config) as server, httpx.Client(base_url=server.base_url,
                                                            timeout=10) as http:
            editor = {"Authorization": f"Bearer {tokens.editor}"}
            assert http.post("/api/blogs", headers=editor,
                             json={"slug": "tartus", "title": "Blasts"}).status_code == 201
            path = "/api/blogs/tartus/entries"
            post = {"headers": {**editor, "Idempotency-Key": "k1"}, "json": {"body": "Blast"}}
            with stopped(replica):
                started = time.monotonic()
                refused = http.post(path, **post)  # type: ignore[arg-type]
                waited = time.monotonic() - started
                assert refused.status_code == 503, refused.text
                assert MAYBE in refused.json()["detail"] and "Idempotency-Key" in \
                    refused.json()["detail"]
                assert refused.headers["retry-after"]
                assert waited >= 0.3  # it did wait for the replica
                # It is in the master's log, but not acknowledged; a retry while the
                # replica still has nothing is refused too.
                with master.client() as client:
                    assert client.xlen("liveblog:{tartus}:log") == 2
                assert http.post(path, **post).status_code == 503  # type: ignore[arg-type]
            retried = http.post(path, **post)  # type: ignore[arg-type]
            assert retried.status_code == 201, retried.text
            assert retried.headers["idempotent-replayed"] == "true"
            with replica.client() as client:
                assert client.xlen("liveblog:{tartus}:log") == 2  # on the replica, once
            # With the replica answering, a new post is acknowledged at once.
            fine = http.post(path, headers=editor, json={"body": "Second"})
            assert fine.status_code == 201
            with replica.client() as client:
                ids = [i.decode() for i, _ in client.xrange("liveblog:{tartus}:log")]
            assert fine.json()["event_id"] in ids
    finally:
        replica.stop()
        master.stop()


# -- failover ---------------------------------------------------------------------------------


def test_killing_the_master_of_a_blog_loses_no_acknowledged_change_and_readers_resume(
        tmp_path: Path) -> None:
    """kill -9 of the master that holds the blog's slot, while a reporter posts (WAIT 1)
    and readers read through a real server: its replica takes over, every acknowledged
    post is in the log exactly once, every reader has every event once, in order."""
    cluster = start_cluster(tmp_path / "cluster")
    CLUSTER_URLS.add(cluster.url)
    try:
        tokens = create_tokens(cluster.url)
        config = app_config(cluster.url, wait_replicas=1, wait_timeout_ms=1000)
        with UvicornThread(config) as server:
            acknowledged, readers, log, stats = asyncio.run(
                _post_through_a_failover(cluster, server.base_url, tokens.reporter,
                                         tokens.editor))
    finally:
        CLUSTER_URLS.discard(cluster.url)
        cluster.stop()
    print(f"failover: {stats}")
    log_ids = [event["id"] for event in log]
    posted = [event for event in log if event["type"] == "entry-posted"]
    # Every acknowledged post is in the log, and each post (one per key) is there once.
    assert set(acknowledged.values()) <= set(log_ids)
    assert len(posted) == len(acknowledged) == stats["posts"]
    assert len({event["data"]["entry_id"] for event in posted}) == len(posted)
    assert stats["refused"] > 0  # the failover was felt, and ridden over
    for reader in readers:
        snapshot, *rest = reader
        assert snapshot.event == "snapshot"
        assert [m.event for m in rest] == ["entry-posted"] * len(rest)
        assert [m.id for m in rest] == log_ids[log_ids.index(snapshot.id) + 1:]


async def _post_through_a_failover(
        cluster: Cluster, base_url: str, reporter: str, editor: str,
) -> tuple[dict[str, str], list[list[Message]], list[dict[str, object]], dict[str, float]]:
    posts, kill_after = 30, 10
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
        master = cluster.master_of("liveblog:{tartus}:log")
        killed_at = recovered_at = 0.0

        def restart_the_old_master() -> None:
            if not master.alive() and time.monotonic() - killed_at > 3:
                # WAIT 1 holds every change until the promoted replica has a replica of
                # its own: the old master, restarted, rejoins as one (as a supervisor
                # would restart it).
                master.restart()

        for number in range(posts):
            if number == kill_after:
                master.kill()
                killed_at = time.monotonic()
            event_id, tries = await post_until_acknowledged(
                http, reporter, number, restart_the_old_master)
            acknowledged[f"post-{number}"] = event_id
            refused += tries
            if number == kill_after:
                recovered_at = time.monotonic()
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
             "failover_seconds": round(recovered_at - killed_at, 2),
             "reconnects": sum(f.connections - 1 for f in followers)}
    return acknowledged, [f.messages for f in followers], log, stats
