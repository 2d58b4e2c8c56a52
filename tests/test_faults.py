"""Faults on real processes: what the resilience promises say survives, survives.

- Redis killed with SIGKILL in the middle of a burst of posts, and restarted on the same
  data: every post that was acknowledged is in the log, once; nothing is duplicated.
- One of two `liveblog serve` processes killed with SIGKILL while its readers listen:
  they reconnect to the other with Last-Event-ID and end up with every event exactly
  once, in order.

Each test prints its counts (run with -s to see them; docs/reliability.md quotes them).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from liveblog.embedded import EmbeddedRedis
from tests.processes import (
    Processes,
    Served,
    children_of,
    group_members,
    read_log,
    redis_processes_for,
    start_redis_like_embedded,
)
from tests.sse import Stream, messages
from tests.support import wait_until

# -- Redis killed mid-story -------------------------------------------------------------------

POSTERS = 8
POSTS_EACH = 40
KILL_AFTER = 100  # acknowledged posts
FAILURES_BEFORE_RESTART = 2 * POSTERS  # posts that failed while Redis was down


def test_redis_killed_mid_story_loses_nothing_acknowledged(
        tmp_path: Path, processes: Processes) -> None:
    data = tmp_path / "var"
    served = Served(processes, data)  # the real CLI, with its embedded Redis
    editor = served.editor_token()
    auth = {"Authorization": f"Bearer {editor}"}
    opened = httpx.post(f"{served.url}/api/blogs", headers=auth,
                        json={"slug": "crash", "title": "Crash"})
    assert opened.status_code == 201, opened.text
    [embedded_pid] = redis_processes_for(data)

    acknowledged: dict[str, str] = {}  # idempotency key -> event id, from a 2xx answer
    failed: list[str] = []  # keys whose first attempt got an error (or no answer at all)
    answers: dict[str, str] = {}  # what those first attempts got
    after_restart: Counter[int] = Counter()  # statuses of first attempts once Redis is back
    killed, down_long_enough, restarted = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def post(client: httpx.AsyncClient, key: str) -> httpx.Response:
        return await client.post("/api/blogs/crash/entries", json={"body": f"update {key}"},
                                 headers={**auth, "Idempotency-Key": key})

    def failing(key: str) -> None:
        failed.append(key)
        if len(failed) >= FAILURES_BEFORE_RESTART:
            down_long_enough.set()

    async def poster(client: httpx.AsyncClient, number: int) -> None:
        for n in range(POSTS_EACH):
            key = f"p{number}-{n}"
            back = restarted.is_set()
            try:
                response = await post(client, key)
            except httpx.TransportError as exc:
                answers[key] = type(exc).__name__
                failing(key)
                continue
            if back:
                after_restart[response.status_code] += 1
            if response.status_code == 201:
                acknowledged[key] = response.json()["event_id"]
            else:
                assert response.status_code == 503, response.text
                assert response.headers["content-type"] == "application/problem+json"
                answers[key] = "503"
                failing(key)
            if len(acknowledged) >= KILL_AFTER and not killed.is_set():
                # Other posters have requests in flight right now.
                os.kill(embedded_pid, signal.SIGKILL)
                killed.set()
            if killed.is_set() and not restarted.is_set():
                await asyncio.sleep(0.05)  # Redis is down: do not spin

    async def restart() -> None:
        await killed.wait()
        await down_long_enough.wait()
        # On the same data directory, with the same command line `serve` used.
        await asyncio.to_thread(start_redis_like_embedded, processes, data)
        restarted.set()

    async def scenario() -> None:
        limits = httpx.Limits(max_connections=POSTERS)
        async with httpx.AsyncClient(base_url=served.url, timeout=20, limits=limits) as client:
            restarting = asyncio.create_task(restart())
            await asyncio.gather(*(poster(client, n) for n in range(POSTERS)))
            await asyncio.wait_for(restarting, 30)

    started = time.monotonic()
    asyncio.run(scenario())
    elapsed = time.monotonic() - started
    assert killed.is_set() and restarted.is_set()
    assert redis_processes_for(data) != [embedded_pid]  # a new redis-server serves now

    # Every post that failed is sent again with its key: each lands once, whether its first
    # attempt had reached the log (the key answers with that entry) or not.
    landed_unacknowledged: Counter[str] = Counter()  # by what the first attempt got
    with httpx.Client(base_url=served.url, timeout=20) as client:
        for key in failed:
            response = client.post("/api/blogs/crash/entries", json={"body": f"update {key}"},
                                   headers={**auth, "Idempotency-Key": key})
            assert response.status_code == 201, response.text
            if response.headers.get("idempotent-replayed") == "true":
                landed_unacknowledged[answers[key]] += 1
            acknowledged.setdefault(key, response.json()["event_id"])
    events = read_log(served.url, editor, "crash")

    posts = [e for e in events if e["type"] == "entry-posted"]
    bodies = Counter(str(e["data"]["body"]) for e in posts)  # type: ignore[index]
    by_body = {str(e["data"]["body"]): e["id"] for e in posts}  # type: ignore[index]
    sent = POSTERS * POSTS_EACH
    first_time = sent - len(failed)
    lost = [key for key, event_id in acknowledged.items()
            if by_body.get(f"update {key}") != event_id]
    duplicates = sum(count - 1 for count in bodies.values())
    versions = [e["version"] for e in events]
    print(f"\nredis kill -9: {sent} posts by {POSTERS} concurrent posters in {elapsed:.1f}s; "
          f"{first_time} acknowledged at once, {len(failed)} failed while Redis was down "
          f"({dict(Counter(answers.values()))}; of those, {dict(landed_unacknowledged)} had "
          f"reached the log all the same: their retry replayed the entry); "
          f"after the restart, first attempts answered {dict(after_restart)}; "
          f"log: {len(posts)} entries, lost {len(lost)}, duplicated {duplicates}, "
          f"version gaps {len(versions) - len(set(versions))}")
    assert first_time >= KILL_AFTER and len(failed) >= FAILURES_BEFORE_RESTART
    assert after_restart[201] > 0  # the server went on by itself once Redis was back
    assert lost == []
    assert duplicates == 0
    assert len(posts) == sent
    assert versions == list(range(1, len(events) + 1))  # no gap, no repeat
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, str(i).split("-"))))
    served.stop()


# -- one of two servers killed ----------------------------------------------------------------

READERS = 12
STORY = 150  # posts
KILL_AT = 50  # posts made before server A is killed
STREAM = "/blogs/story/stream"


@dataclass
class Reader:
    ids: list[str] = field(default_factory=list)  # every change message, in arrival order
    snapshot_id: str | None = None
    on_a: int = 0
    on_b: int = 0
    reconnects: int = 0
    snapshots_after_reconnect: int = 0


def test_readers_of_a_killed_server_resume_on_the_other_without_gap_or_duplicate(
        tmp_path: Path, processes: Processes) -> None:
    redis_dir = tmp_path / "redis"
    start_redis_like_embedded(processes, redis_dir)
    url = EmbeddedRedis(redis_dir).url
    server_a = Served(processes, tmp_path / "a", LIVEBLOG_REDIS_URL=url)
    server_b = Served(processes, tmp_path / "b", LIVEBLOG_REDIS_URL=url)
    editor = server_a.editor_token()  # the first to start made it; they share one Redis
    auth = {"Authorization": f"Bearer {editor}"}
    assert httpx.post(f"{server_b.url}/api/blogs", headers=auth,
                      json={"slug": "story", "title": "Story"}).status_code == 201

    readers = [Reader() for _ in range(READERS)]
    subscribed = 0
    everyone_in = asyncio.Event()
    killed_after: list[int] = []

    async def read(client: httpx.AsyncClient, reader: Reader) -> None:
        nonlocal subscribed
        base, last = server_a.url, None
        while True:
            headers = {"Last-Event-ID": last} if last else {}
            stream = Stream(0, httpx.Headers())
            try:
                async with client.stream("GET", base + STREAM, headers=headers) as response:
                    assert response.status_code == 200
                    async for message in messages(response.aiter_lines(), stream):
                        if message.event == "snapshot":
                            if last is None:
                                reader.snapshot_id = message.id
                                subscribed += 1
                                if subscribed == READERS:
                                    everyone_in.set()
                            else:
                                reader.snapshots_after_reconnect += 1
                        else:
                            assert message.id is not None
                            reader.ids.append(message.id)
                            if base == server_a.url:
                                reader.on_a += 1
                            else:
                                reader.on_b += 1
                        last = message.id
                        if message.event == "entry-posted" and \
                                message.data["entry"]["body"] == "the end":
                            return
            except httpx.TransportError:
                # Server A is gone. Like a browser: wait the retry time the stream gave,
                # then reconnect (to the other server) with the last id received.
                assert base == server_a.url, "server B dropped a reader"
                reader.reconnects += 1
                base = server_b.url
                await asyncio.sleep((stream.retry or 1000) / 1000)

    async def post_story(client: httpx.AsyncClient) -> None:
        await asyncio.wait_for(everyone_in.wait(), 20)
        for n in range(STORY):
            if n == KILL_AT:
                server_a.spawned.kill_group(signal.SIGKILL)
                killed_after.append(n)
            body = "the end" if n == STORY - 1 else f"update {n}"
            response = await client.post(f"{server_b.url}/api/blogs/story/entries",
                                         json={"body": body}, headers=auth)
            assert response.status_code == 201, response.text
            await asyncio.sleep(0.02)  # a steady story, about 30 posts a second

    async def scenario() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            reading = [asyncio.create_task(read(client, reader)) for reader in readers]
            await post_story(client)
            await asyncio.wait_for(asyncio.gather(*reading), 60)

    started = time.monotonic()
    asyncio.run(scenario())
    elapsed = time.monotonic() - started
    events = read_log(server_b.url, editor, "story")
    ids = [str(e["id"]) for e in events]
    assert killed_after == [KILL_AT] and server_a.process.poll() == -signal.SIGKILL

    for reader in readers:
        assert reader.snapshot_id is not None
        expected = ids[ids.index(reader.snapshot_id) + 1:]
        assert len(set(reader.ids)) == len(reader.ids)  # no duplicate
        assert reader.ids == expected  # no gap, in order
        assert reader.reconnects == 1 and reader.snapshots_after_reconnect == 0
        assert reader.on_a > 0 and reader.on_b > 0
    on_a = [r.on_a for r in readers]
    on_b = [r.on_b for r in readers]
    print(f"\nserver killed: {READERS} readers on A, {STORY} posts through B in "
          f"{elapsed:.1f}s, A killed after post {KILL_AT}; each reader got "
          f"{len(readers[0].ids)} events ({min(on_a)}-{max(on_a)} from A, "
          f"{min(on_b)}-{max(on_b)} from B after one reconnect each, no snapshot); "
          f"gaps 0, duplicates 0")
    server_b.stop()


# -- `serve` itself killed ---------------------------------------------------------------------

def test_a_killed_serve_takes_its_workers_and_redis_with_it_and_starts_again(
        tmp_path: Path, processes: Processes) -> None:
    """kill -9 of the process a user started (its workers and embedded Redis are its
    children): nothing it started keeps running (holding the port and the data), so the
    same command starts again on the same port, with the data intact."""
    data = tmp_path / "var"
    served = Served(processes, data, "--workers", "2")
    editor = served.editor_token()
    assert httpx.post(f"{served.url}/api/blogs", headers={"Authorization": f"Bearer {editor}"},
                      json={"slug": "kept", "title": "Kept"}).status_code == 201
    started = children_of(served.process.pid)
    assert len(started) >= 3  # two workers and redis-server (and multiprocessing's helper)
    os.kill(served.process.pid, signal.SIGKILL)
    wait_until(lambda: not group_members(served.spawned.pgid), timeout=15,
               what="everything serve started to end with it")
    again = Served(processes, data, "--workers", "2", port=served.port)
    assert httpx.get(f"{again.url}/api/blogs/kept").status_code == 200
    again.stop()
