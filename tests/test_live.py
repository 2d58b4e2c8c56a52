"""The tailer under faults, over a real uvicorn and real redis-servers: a connection that
dies without a word, Redis stopped and started again, Redis emptied or restored from an
older copy. Readers get every event once, in order, or a fresh snapshot; never a gap."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from liveblog.embedded import find_redis_server
from liveblog.errors import Overloaded
from liveblog.live import Hub
from liveblog.service import Service
from liveblog.store import BLOCK_MARGIN_SECONDS, Store
from tests.proxy import BlackholeProxy
from tests.sse import read_stream, reading
from tests.support import (
    Api,
    RedisServer,
    Tokens,
    UvicornThread,
    app_config,
    create_tokens,
    wait_until,
)

BLOCK_MS = 300
# On top of the block and its margin: this machine is shared, its scheduling uneven.
SLACK = 1.5
STREAM = "/blogs/tartus/stream"


class RestartableRedis:
    """A redis-server of the test's own on a Unix socket, that can be stopped and started
    again on the same socket, keeping its data in an append-only file (fsync always), which
    a test can copy aside and later put back: Redis restored from an older backup."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.aof = directory / "appendonlydir"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket))

    def start(self) -> None:
        self.process = subprocess.Popen(
            [find_redis_server(), "--port", "0", "--unixsocket", str(self.socket),
             "--dir", str(self.directory), "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--appenddirname", self.aof.name,
             "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL)
        wait_until(self._pings, what="redis-server to answer")

    def _pings(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except (redis.exceptions.ConnectionError, OSError):
            return False

    def stop(self) -> None:
        assert self.process is not None
        # It goes away mid-answer, as it should.
        with self.client() as client, contextlib.suppress(redis.exceptions.ConnectionError):
            client.shutdown()
        self.process.wait(timeout=10)
        self.process = None

    def back_up(self) -> Path:
        """A copy of the data as it is now (every write is already fsynced)."""
        copy = self.directory.parent / "backup"
        shutil.copytree(self.aof, copy)
        return copy

    def restore(self, backup: Path) -> None:
        """Put a backup in place of the data (stopped first)."""
        assert self.process is None
        shutil.rmtree(self.aof)
        shutil.copytree(backup, self.aof)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    server = RestartableRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def post(api: Api, token: str, body: str) -> str:
    response = api("POST", "/api/blogs/tartus/entries", token, json={"body": body})
    assert response.status_code == 201, response.text
    return str(response.json()["event_id"])


def post_retrying(api: Api, token: str, body: str) -> str:
    """Post; a 503 (Redis just came back) is retried, as its Retry-After invites."""
    deadline = time.monotonic() + 10
    while True:
        response = api("POST", "/api/blogs/tartus/entries", token, json={"body": body},
                       headers={"Idempotency-Key": body[:40].replace(" ", "-")})
        if response.status_code != 503 or time.monotonic() > deadline:
            assert response.status_code == 201, response.text
            return str(response.json()["event_id"])
        time.sleep(0.1)


def log_ids(api: Api, token: str) -> list[str]:
    response = api("GET", "/api/blogs/tartus/events", token)
    assert response.status_code == 200, response.text
    return [event["id"] for event in response.json()["events"]]


def open_tartus(api: Api, tokens: Tokens) -> None:
    response = api("POST", "/api/blogs", tokens.editor, json={"slug": "tartus", "title": "T"})
    assert response.status_code == 201, response.text


def test_a_tailer_notices_a_silently_dead_connection_within_its_block_and_margin(
        redis_server: RedisServer, redis_url: str, tokens: Tokens) -> None:
    """The tailer's connection is blackholed: open at both ends, nothing goes through, no
    FIN. It gives the connection up within the block and its margin, reconnects, and its
    readers get the update posted meanwhile: no gap, no duplicate."""
    bound = BLOCK_MS / 1000 + BLOCK_MARGIN_SECONDS
    with BlackholeProxy(str(redis_server.socket_path)) as proxy, \
            UvicornThread(app_config(proxy.url, tail_block_ms=BLOCK_MS)) as server, \
            UvicornThread(app_config(redis_url)) as other:  # on Redis directly
        api, direct = Api(server.base_url), Api(other.base_url)
        open_tartus(api, tokens)

        async def scenario() -> tuple[float, float]:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client, \
                    reading(client, "tartus") as reader:
                await asyncio.to_thread(post, api, tokens.reporter, "Before")
                await reader.wait_for(2)
                tailer = server.hub().tailers["tartus"]
                faults = tailer.faults
                assert proxy.blackhole() >= 1
                silenced = time.monotonic()
                # Every connection of the first server is silent now: post through the other.
                await asyncio.to_thread(post, direct, tokens.reporter, "While the line was dead")
                noticed = delivered = 0.0
                while not (noticed and delivered):
                    elapsed = time.monotonic() - silenced
                    assert elapsed < bound + SLACK + 5, (tailer.faults, len(reader.messages))
                    if not noticed and tailer.faults > faults:
                        noticed = elapsed
                    if not delivered and len(reader.messages) >= 3:
                        delivered = elapsed
                    await asyncio.sleep(0.005)
                await asyncio.sleep(3 * BLOCK_MS / 1000)  # nothing more may come
                ids = await asyncio.to_thread(log_ids, direct, tokens.editor)
                assert [m.id for m in reader.messages] == ids  # no gap, no duplicate
                return noticed, delivered

        noticed, delivered = asyncio.run(scenario())
        print(f"blackholed: noticed after {noticed:.2f}s, update delivered after "
              f"{delivered:.2f}s (block {BLOCK_MS} ms + margin {BLOCK_MARGIN_SECONDS} s)")
        assert noticed <= bound + SLACK
        assert delivered <= bound + SLACK + 1
        api.http.close()
        direct.http.close()


def test_a_tailer_rides_through_a_redis_restart(own_redis: RestartableRedis) -> None:
    """Redis stops and starts again on the same socket: readers get the events posted
    after it is back, each once, in order."""
    tokens = create_tokens(own_redis.url)
    with UvicornThread(app_config(own_redis.url, tail_block_ms=BLOCK_MS)) as server:
        api = Api(server.base_url)
        open_tartus(api, tokens)

        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client, \
                    reading(client, "tartus") as reader:
                await asyncio.to_thread(post, api, tokens.reporter, "Before the outage")
                await reader.wait_for(2)
                tailer = server.hub().tailers["tartus"]
                faults = tailer.faults
                await asyncio.to_thread(own_redis.stop)
                await asyncio.to_thread(wait_until, lambda: tailer.faults > faults,
                                        what="the tailer to notice the outage")
                await asyncio.to_thread(own_redis.start)
                for n in range(3):
                    await asyncio.to_thread(post_retrying, api, tokens.reporter,
                                            f"After the outage {n}")
                await reader.wait_for(5)
                await asyncio.sleep(3 * BLOCK_MS / 1000)  # nothing more may come
                ids = await asyncio.to_thread(log_ids, api, tokens.editor)
                assert len(ids) == 5
                assert [m.id for m in reader.messages] == ids  # no gap, no duplicate
                assert not reader.ended

        asyncio.run(scenario())
        api.http.close()


def test_a_redis_emptied_under_a_tailer_ends_its_readers(
        own_redis: RestartableRedis, caplog: pytest.LogCaptureFixture) -> None:
    """FLUSHALL: the blog is gone. The tailer notices within its block (an XREAD after its
    last id would just wait), says so in the log and ends its readers, whose reconnect gets
    a 404; nobody keeps being shown a blog that Redis no longer holds."""
    tokens = create_tokens(own_redis.url)
    with UvicornThread(app_config(own_redis.url, tail_block_ms=BLOCK_MS)) as server, \
            caplog.at_level(logging.WARNING, logger="liveblog.live"):
        api = Api(server.base_url)
        open_tartus(api, tokens)

        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client, \
                    reading(client, "tartus") as reader:
                await asyncio.to_thread(post, api, tokens.reporter, "Soon gone")
                await reader.wait_for(2)
                with own_redis.client() as direct:
                    direct.flushall()
                emptied = time.monotonic()
                await asyncio.to_thread(wait_until, lambda: reader.ended, 10.0,
                                        "the reader's stream to end")
                assert time.monotonic() - emptied <= BLOCK_MS / 1000 + SLACK
                again = await client.get(STREAM, headers={
                    "Last-Event-ID": reader.messages[-1].id or ""})
                assert again.status_code == 404
                assert again.headers["content-type"] == "application/problem+json"

        asyncio.run(scenario())
        assert "tartus" not in server.hub().tailers or not server.hub().tailers["tartus"].running
        api.http.close()
    said = " ".join(record.getMessage() for record in caplog.records)
    assert "no longer holds event" in said and "no longer in Redis" in said


def test_a_redis_restored_from_an_older_copy_gives_readers_a_fresh_snapshot(
        own_redis: RestartableRedis, caplog: pytest.LogCaptureFixture) -> None:
    """Redis comes back with an older copy (3 events where the tailer had read 5): the
    tailer notices, says so, reloads, and ends its readers; a reader reconnecting with its
    last id (which the log no longer holds) gets a snapshot of the log as it is now."""
    tokens = create_tokens(own_redis.url)
    with UvicornThread(app_config(own_redis.url, tail_block_ms=BLOCK_MS)) as server, \
            caplog.at_level(logging.WARNING, logger="liveblog.live"):
        api = Api(server.base_url)
        open_tartus(api, tokens)

        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client, \
                    reading(client, "tartus") as reader:
                for n in range(2):
                    await asyncio.to_thread(post, api, tokens.reporter, f"Kept {n}")
                older = await asyncio.to_thread(log_ids, api, tokens.editor)
                backup = await asyncio.to_thread(own_redis.back_up)  # 3 events
                for n in range(2):
                    await asyncio.to_thread(post, api, tokens.reporter, f"Lost {n}")
                await reader.wait_for(5)
                await asyncio.to_thread(own_redis.stop)
                own_redis.restore(backup)
                await asyncio.to_thread(own_redis.start)
                restored = time.monotonic()
                await asyncio.to_thread(wait_until, lambda: reader.ended, 15.0,
                                        "the reader's stream to end")
                print(f"older copy: readers ended {time.monotonic() - restored:.2f}s after "
                      "Redis was back")
                last_seen = reader.messages[-1].id
                assert last_seen not in older
                fresh = await read_stream(client, STREAM, until=1, last_event_id=last_seen)
                snapshot = fresh.messages[0]
                assert (snapshot.event, snapshot.id) == ("snapshot", older[-1])
                assert snapshot.data["version"] == 3
                assert [e["body"] for e in snapshot.data["entries"]] == ["Kept 1", "Kept 0"]

        asyncio.run(scenario())
        api.http.close()
    said = " ".join(record.getMessage() for record in caplog.records)
    assert "no longer holds event" in said and "restored from an older copy" in said


def test_a_tailer_stops_promptly_whenever_it_is_stopped(
        redis_url: str, tokens: Tokens, api: Api) -> None:
    """Stopped at any moment of its XREAD (here: right after it starts, over and over), a
    tailer stops at once. On Python 3.11 one cancellation can be lost inside redis-py (see
    Tailer.stop); a lost one left the stop waiting for ever."""
    open_tartus(api, tokens)

    async def scenario() -> list[float]:
        store = Store.from_url(redis_url, block_ms=BLOCK_MS)
        took = []
        for _ in range(40):
            hub = Hub(Service(store))
            await hub.tailer("tartus")
            for _ in range(len(took) % 4):
                await asyncio.sleep(0)  # stop at slightly different moments each time
            started = time.monotonic()
            await asyncio.wait_for(hub.close(), 5)
            took.append(time.monotonic() - started)
        await store.close()
        return took

    took = asyncio.run(scenario())
    assert max(took) < 1.0, max(took)



def test_closing_the_hub_stops_a_tailer_that_was_still_loading(
        redis_server: RedisServer, redis_url: str, blog: str) -> None:
    """A blog whose tailer is loading when the hub closes (the server shuts down): no
    tailer is left running afterwards, and none starts once the hub is closed."""

    async def scenario() -> None:
        store = Store.from_url(redis_url)
        hub = Hub(Service(store))
        waiter = asyncio.create_task(hub.tailer(blog))
        for _ in range(100_000):  # one loop turn at a time: it asks whether the blog
            if blog in hub._starting:  # exists, then starts loading it
                break
            await asyncio.sleep(0)
        assert blog in hub._starting
        await hub.close()  # while the load waits for Redis
        # The waiter ends when the load does (finished, or cancelled by close).
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await waiter
        running = [task.get_name() for task in asyncio.all_tasks()
                   if task.get_name().startswith("tailer:") and not task.done()]
        for tailer in list(hub.tailers.values()):  # left over (the defect): stopped, to end
            await tailer.stop()
        assert running == []
        with pytest.raises(Overloaded):
            await hub.tailer(blog)
        await store.close()

    asyncio.run(scenario())




def test_the_blackhole_proxy_leaves_no_task_pending(redis_server: RedisServer) -> None:
    """The test proxy's connection handlers end with it (a blackholed connection too):
    none is left pending when its loop is closed ("Task was destroyed but it is pending")."""

    async def tasks() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    with BlackholeProxy(str(redis_server.socket_path)) as proxy:
        clients = [redis.Redis.from_url(proxy.url) for _ in range(3)]
        for client in clients:
            assert client.ping()
        assert proxy.blackhole() == 3
        handlers = proxy._call(tasks())
        assert len(handlers) >= 3
    for client in clients:
        client.close()
    assert [t for t in handlers if not t.done()] == []
