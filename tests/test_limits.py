"""Limits on what anonymous readers can make a process hold, over a real uvicorn on a real
Redis: stream connections per client address and per process, tailers per process, the
bytes of a tailer's resume ring, the bytes buffered for a reader that stopped reading."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from liveblog import live
from liveblog.config import Config
from liveblog.errors import ConfigError
from liveblog.live import Hub, Subscription
from liveblog.service import Service
from liveblog.store import Store
from liveblog.web.stream import END_GRACE_SECONDS, READER_BUFFER_BYTES, SocketReader
from tests.processes import Processes, Served
from tests.sse import Reader, read_stream, reading
from tests.support import Api, RedisServer, Tokens, UvicornThread, app_config, wait_until

PROBLEM = "application/problem+json"
STREAM = "/blogs/tartus/stream"


async def refused(client: httpx.AsyncClient, slug: str, address: str) -> httpx.Response:
    response = await client.get(f"/blogs/{slug}/stream", headers={"X-Forwarded-For": address})
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert int(response.headers["retry-after"]) >= 1
    problem = response.json()
    assert problem["status"] == 503 and problem["type"].endswith("/overloaded")
    return response


def post(api: Api, tokens: Tokens, slug: str, body: str) -> str:
    response = api("POST", f"/api/blogs/{slug}/entries", tokens.reporter, json={"body": body})
    assert response.status_code == 201, response.text
    return str(response.json()["event_id"])


def open_blogs(api: Api, tokens: Tokens, *slugs: str) -> None:
    for slug in slugs:
        response = api("POST", "/api/blogs", tokens.editor, json={"slug": slug, "title": slug})
        assert response.status_code == 201, response.text


def streams_held(server: UvicornThread) -> int:
    return server.hub().streams


def test_streams_per_client_address_are_limited_and_a_slot_frees_when_one_leaves(
        redis_url: str, tokens: Tokens) -> None:
    with UvicornThread(app_config(redis_url, max_streams_per_ip=2)) as server:
        api = Api(server.base_url)
        open_blogs(api, tokens, "tartus")

        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
                # The first starts the tailer through the ASGI app; the second is answered
                # by the protocol's fast path: both count.
                async with reading(client, "tartus") as first, \
                        reading(client, "tartus") as second, \
                        reading(client, "tartus", "198.51.100.7") as elsewhere:
                    problem = (await refused(client, "tartus", "203.0.113.1")).json()
                    assert "203.0.113.1" not in problem["detail"]  # no address echoed
                    event_id = await asyncio.to_thread(post, api, tokens, "tartus", "One")
                    for reader in (first, second, elsewhere):
                        assert (await reader.wait_for(2))[1].id == event_id
                    async with reading(client, "tartus", "198.51.100.7"):
                        pass  # another address has its own allowance
                await asyncio.to_thread(wait_until, lambda: streams_held(server) == 0,
                                        what="the streams to be released")
                async with reading(client, "tartus"), reading(client, "tartus"):
                    await refused(client, "tartus", "203.0.113.1")

        asyncio.run(scenario())
        api.http.close()


def test_ipv6_clients_count_by_their_slash_64(redis_url: str, tokens: Tokens) -> None:
    """One IPv6 host holds a /64 and picks any address in it: the limit counts the /64."""
    with UvicornThread(app_config(redis_url, max_streams_per_ip=1)) as server:
        api = Api(server.base_url)
        open_blogs(api, tokens, "tartus")

        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client, \
                    reading(client, "tartus", "2001:db8:1:2::1"):
                await refused(client, "tartus", "2001:db8:1:2:ffff::9")
                async with reading(client, "tartus", "2001:db8:1:3::1"):
                    pass

        asyncio.run(scenario())
        api.http.close()


def test_ipv4_clients_mapped_into_ipv6_count_as_their_ipv4_address(
        redis_url: str, tokens: Tokens) -> None:
    """Behind `serve --host ::`, IPv4 peers arrive as ::ffff:a.b.c.d: each counts as its
    IPv4 address, not as the /64 that holds every IPv4 address."""
    with UvicornThread(app_config(redis_url, max_streams_per_ip=1)) as server:
        api = Api(server.base_url)
        open_blogs(api, tokens, "tartus")

        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client, \
                    reading(client, "tartus", "::ffff:203.0.113.1"):
                async with reading(client, "tartus", "::ffff:198.51.100.7"):
                    pass  # another IPv4 address has its own allowance
                await refused(client, "tartus", "203.0.113.1")  # the same address
                await refused(client, "tartus", "::ffff:203.0.113.1")

        asyncio.run(scenario())
        api.http.close()


def test_x_forwarded_for_from_a_peer_that_is_not_trusted_is_ignored(
        redis_url: str, tokens: Tokens) -> None:
    """Only a trusted proxy (127.0.0.1 here) may name the client: a peer at 127.0.0.2 that
    sends X-Forwarded-For is counted as itself, whatever address it names, on the ASGI path
    (the first reader starts the tailer) and on the fast path alike."""
    with UvicornThread(app_config(redis_url, max_streams_per_ip=2)) as server:
        api = Api(server.base_url)
        open_blogs(api, tokens, "tartus")
        hub = server.hub()
        untrusted = httpx.AsyncHTTPTransport(local_address="127.0.0.2")

        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10,
                                         transport=untrusted) as client, \
                    reading(client, "tartus", "203.0.113.1"), \
                    reading(client, "tartus", "203.0.113.2"):
                assert hub.streams_by_client == {"127.0.0.2": 2}
                await refused(client, "tartus", "203.0.113.3")

        asyncio.run(scenario())
        api.http.close()


def test_streams_per_process_are_limited(redis_url: str, tokens: Tokens) -> None:
    with UvicornThread(app_config(redis_url, max_streams=3)) as server:
        api = Api(server.base_url)
        open_blogs(api, tokens, "tartus", "jableh")

        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client, \
                    reading(client, "tartus", "192.0.2.1") as one, \
                    reading(client, "tartus", "192.0.2.2") as two:
                async with reading(client, "jableh", "192.0.2.3"):
                    await refused(client, "tartus", "192.0.2.4")  # fast path's blog
                    await refused(client, "jableh", "192.0.2.4")
                # The jableh reader left: its slot is free again.
                await asyncio.to_thread(wait_until, lambda: streams_held(server) == 2,
                                        what="the slot to be released")
                async with reading(client, "tartus", "192.0.2.4") as four:
                    event_id = await asyncio.to_thread(post, api, tokens, "tartus", "Two")
                    for reader in (one, two, four):
                        assert (await reader.wait_for(2))[-1].id == event_id

        asyncio.run(scenario())
        api.http.close()


def test_tailers_per_process_are_limited_and_an_idle_one_makes_room(
        redis_url: str, tokens: Tokens) -> None:
    with UvicornThread(app_config(redis_url, max_tailers=2)) as server:
        api = Api(server.base_url)
        open_blogs(api, tokens, "tartus", "jableh", "latakia")
        hub = server.hub()

        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client, \
                    reading(client, "jableh") as jableh:
                async with reading(client, "tartus"):
                    # Both tailers have readers: a third blog cannot be tailed.
                    await refused(client, "latakia", "203.0.113.9")
                    assert set(hub.tailers) == {"tartus", "jableh"}
                # tartus's reader left: its tailer is idle and makes room.
                await asyncio.to_thread(wait_until, lambda: streams_held(server) == 1,
                                        what="the tartus reader to leave")
                async with reading(client, "latakia") as latakia:
                    assert set(hub.tailers) == {"jableh", "latakia"}
                    for slug, reader in (("jableh", jableh), ("latakia", latakia)):
                        event_id = await asyncio.to_thread(post, api, tokens, slug, "Up")
                        assert (await reader.wait_for(2))[-1].id == event_id

        asyncio.run(scenario())
        api.http.close()


def test_a_tailers_ring_is_bounded_by_bytes_and_resuming_beyond_it_gets_a_snapshot(
        api: Api, tokens: Tokens, blog: str, server: UvicornThread, redis_url: str) -> None:
    """260 entries of 19 kB (about 40 kB a message with its HTML) are 10 MB: more than the
    ring keeps. A reader resuming from inside the ring gets exactly what it missed; one
    resuming from before it gets a snapshot, never a gap."""
    body = "A long dispatch from the port. " * 620  # 19 kB
    posts = 260

    async def scenario() -> list[str]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client, \
                reading(client, "tartus") as first:
            ids = [await asyncio.to_thread(post, api, tokens, "tartus", body)
                   for _ in range(posts)]
            await first.wait_for(1 + posts)
            ring = server.hub().tailers["tartus"].ring
            kept = [event_id for event_id, *_ in ring]
            assert sum(len(message) for _, _, message, _ in ring) <= live.RING_BYTES
            assert 1 <= len(kept) < posts and kept == ids[-len(kept):]
            resumed = await read_stream(client, STREAM, until=len(kept) - 1,
                                        last_event_id=kept[0])
            assert [m.id for m in resumed.messages] == kept[1:]  # no gap, no duplicate
            dropped = ids[posts - len(kept) - 1]  # the newest the ring no longer holds
            for behind in (dropped, ids[0]):
                older = await read_stream(client, STREAM, until=1, last_event_id=behind)
                assert older.messages[0].event == "snapshot"
                assert older.messages[0].id == ids[-1]
            return ids

    ids = asyncio.run(scenario())

    async def loaded() -> None:  # a tailer that starts on the log bounds its ring the same
        store = Store.from_url(redis_url)
        hub = Hub(Service(store))
        ring = (await hub.tailer("tartus")).ring
        assert sum(len(message) for _, _, message, _ in ring) <= live.RING_BYTES
        assert [event_id for event_id, *_ in ring] == ids[-len(ring):]
        await hub.close()
        await store.close()

    asyncio.run(loaded())


def test_a_stalled_reader_is_cut_off_with_its_buffered_bytes_bounded(
        redis_url: str, tokens: Tokens) -> None:
    """A reader that never reads (a raw socket with a 4 kB receive buffer) on a blog of
    40 kB messages (8 MB in all; the kernel holds about 4 MB of them): it is cut off once
    READER_BUFFER_BYTES wait unsent for it in the process, before it falls
    LIVEBLOG_READER_QUEUE (256) messages behind, and the reader who does read gets every
    update promptly."""
    with UvicornThread(app_config(redis_url)) as server:
        api = Api(server.base_url)
        open_blogs(api, tokens, "tartus")

        def tailer_readers() -> list[object]:
            return list(server.hub().tailers["tartus"].subscribers)

        stalled_socket = socket.socket()
        stalled_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled_socket.connect(("127.0.0.1", server.port))
        stalled_socket.sendall(f"GET {STREAM} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        wait_until(lambda: "tartus" in server.hub().tailers and len(tailer_readers()) == 1,
                   what="the stalled reader")
        stalled = tailer_readers()[0]
        assert isinstance(stalled, SocketReader)
        body = "A long dispatch from the port. " * 620  # 40 kB a message with its HTML
        posts = 200

        async def scenario() -> tuple[list[float], Reader]:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client, \
                    reading(client, "tartus") as reader:
                acknowledged = []
                for _ in range(posts):
                    await asyncio.to_thread(post, api, tokens, "tartus", body)
                    acknowledged.append(time.monotonic())
                await reader.wait_for(1 + posts)
                return acknowledged, reader

        acknowledged, reader = asyncio.run(scenario())
        assert server.hub().tailers["tartus"].dropped == 1
        assert stalled not in tailer_readers()
        # What was kept waiting for it: its opening and the allowance, no more.
        print(f"stalled reader: at most {stalled.most_buffered:,} bytes kept; cut off")
        assert 0 < stalled.most_buffered <= stalled.opening + READER_BUFFER_BYTES
        delays = [arrived - acked for arrived, acked in
                  zip(reader.arrived[1:], acknowledged, strict=True)]
        assert max(delays) < 1.0, max(delays)
        stalled_socket.close()
        api.http.close()


def test_the_limit_settings_are_read_and_a_wrong_one_is_named() -> None:
    config = Config.from_env({"LIVEBLOG_MAX_STREAMS": "500", "LIVEBLOG_MAX_STREAMS_PER_IP": "7",
                              "LIVEBLOG_MAX_TAILERS": "3", "LIVEBLOG_TAIL_BLOCK_MS": "250"})
    assert (config.max_streams, config.max_streams_per_ip, config.max_tailers,
            config.tail_block_ms) == (500, 7, 3, 250)
    defaults = Config.from_env({})
    assert (defaults.max_streams, defaults.max_streams_per_ip, defaults.max_tailers,
            defaults.tail_block_ms) == (10_000, 1000, 100, 5000)
    assert Config.from_env({"LIVEBLOG_MAX_TAILERS_PER_IP": "4"}).max_tailers_per_ip == 4
    assert defaults.max_tailers_per_ip == 10
    assert defaults.forwarded_allow_ips == "127.0.0.1"
    assert Config.from_env({"LIVEBLOG_FORWARDED_ALLOW_IPS": "10.0.0.0/8"}).forwarded_allow_ips \
        == "10.0.0.0/8"
    for name, value in (("LIVEBLOG_MAX_STREAMS", "0"), ("LIVEBLOG_MAX_STREAMS_PER_IP", "many"),
                        ("LIVEBLOG_MAX_TAILERS", "-1"), ("LIVEBLOG_TAIL_BLOCK_MS", "5"),
                        ("LIVEBLOG_MAX_TAILERS_PER_IP", "0")):
        with pytest.raises(ConfigError, match=name):
            Config.from_env({name: value})


def test_max_streams_is_lowered_to_what_the_open_file_limit_leaves_room_for() -> None:
    """With `ulimit -n 1024`, 10,000 streams would fail at accept(): the process holds
    1024 - 100 tailers' connections - 256 other files = 668, and says so."""
    code = (
        "import resource\n"
        "from liveblog.config import Config\n"
        "from liveblog.web.app import streams_the_process_can_hold\n"
        "_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))\n"
        "print(streams_the_process_can_hold(Config.from_env({})))\n"
        "print(streams_the_process_can_hold(Config.from_env({'LIVEBLOG_MAX_STREAMS': '500'})))\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert ran.stdout.split() == ["668", "500"]
    assert "LIVEBLOG_MAX_STREAMS is 10000" in ran.stderr and "ulimit -n" in ran.stderr


def test_a_reader_whose_tailer_is_stopped_to_make_room_meanwhile_is_not_left_silent(
        redis_server: RedisServer, redis_url: str, tokens: Tokens) -> None:
    """max_tailers=1. A reader of tartus (ahead of the process, so it catches up from Redis)
    is handed tartus's idle tailer; while its catch-up waits on Redis (paused), a reader of
    jableh makes room by stopping that tailer. The tartus reader must not join the stopped
    tailer (a 200, then silence for ever): it gets a tailer that runs, or a 503."""
    with UvicornThread(app_config(redis_url, max_tailers=1)) as server:
        api = Api(server.base_url)
        open_blogs(api, tokens, "tartus", "jableh")
        hub = server.hub()
        ahead = "9999999999999-0"

        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
                async with reading(client, "tartus"):
                    pass  # tartus is tailed, with no reader
                await asyncio.to_thread(wait_until, lambda: streams_held(server) == 0,
                                        what="the first reader to leave")
                with redis_server.client() as redis:
                    redis.execute_command("CLIENT", "PAUSE", "5000", "ALL")
                    try:
                        # jableh's reader waits in the check that its blog exists, before
                        # it makes room (by stopping tartus's idle tailer)...
                        jableh = asyncio.create_task(read_stream(
                            client, "/blogs/jableh/stream", until=2))
                        await asyncio.to_thread(wait_until, lambda: streams_held(server) == 1,
                                                what="the jableh reader to wait")
                        # ...then tartus's reader is handed that tailer, and waits in its
                        # catch-up. Redis answers jableh first: the tailer is stopped while
                        # tartus's reader has it and has not subscribed yet.
                        tartus = asyncio.create_task(read_stream(
                            client, STREAM, until=2, last_event_id=ahead))
                        await asyncio.to_thread(wait_until, lambda: streams_held(server) == 2,
                                                what="the tartus reader to wait too")
                    finally:
                        redis.execute_command("CLIENT", "UNPAUSE")
                await asyncio.to_thread(wait_until, lambda: streams_held(server) in (1, 2),
                                        what="the readers to be answered")
                await asyncio.sleep(0)
                for slug, task in (("tartus", tartus), ("jableh", jableh)):
                    # Each either was refused, or runs: its next update reaches it.
                    await asyncio.to_thread(
                        wait_until, lambda task=task, slug=slug: task.done() or any(
                            t.subscribers for t in hub.tailers.values() if t.slug == slug),
                        what=f"the {slug} reader to be refused or subscribed")
                    if task.done():
                        assert (await task).status == 503
                        continue
                    await asyncio.to_thread(post, api, tokens, slug, "Up")
                    stream = await asyncio.wait_for(task, 5)
                    assert stream.status == 200 and stream.messages[-1].event == "entry-posted"

        asyncio.run(scenario())
        api.http.close()


def test_a_stalled_reader_of_a_stream_that_ends_gives_back_its_slot(
        redis_server: RedisServer, redis_url: str, tokens: Tokens) -> None:
    """A reader that never reads, with bytes still waiting for it, when its stream is ended
    (here its blog left Redis, so its tailer stops): its connection is aborted within
    END_GRACE_SECONDS, not held for ever waiting for it to drain, and its slot is freed."""
    with UvicornThread(app_config(redis_url, tail_block_ms=250)) as server:
        api = Api(server.base_url)
        open_blogs(api, tokens, "tartus")
        hub = server.hub()
        stalled_socket = socket.socket()
        stalled_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled_socket.connect(("127.0.0.1", server.port))
        stalled_socket.sendall(f"GET {STREAM} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        wait_until(lambda: "tartus" in hub.tailers and len(hub.tailers["tartus"].subscribers) == 1,
                   what="the stalled reader")
        stalled = next(iter(hub.tailers["tartus"].subscribers))
        assert isinstance(stalled, SocketReader)
        body = "A long dispatch from the port. " * 620  # 40 kB a message with its HTML
        posts = 0
        while not stalled.transport.get_write_buffer_size():  # the kernel's buffers are full
            post(api, tokens, "tartus", body)
            posts += 1
            assert posts < 300
        assert stalled in hub.tailers["tartus"].subscribers  # not cut off: under its allowance
        with redis_server.client() as redis:
            redis.flushall()
        wait_until(lambda: streams_held(server) == 0, timeout=END_GRACE_SECONDS + 20,
                   what="the stalled reader's slot to be released")
        assert stalled.transport.is_closing()
        print(f"stalled reader: {posts} posts; released after the stream ended")
        stalled_socket.close()
        api.http.close()


def test_requests_pipelined_behind_a_fast_path_stream_are_not_answered(
        redis_url: str, tokens: Tokens) -> None:
    """Two stream GETs in one packet on one connection, for a blog already tailed (the
    protocol's fast path): one response, one slot held; the second request is not answered
    into the middle of the first's chunked stream."""
    with UvicornThread(app_config(redis_url)) as server:
        api = Api(server.base_url)
        open_blogs(api, tokens, "tartus")
        hub = server.hub()

        async def scenario() -> bytes:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client, \
                    reading(client, "tartus") as reader:
                request = f"GET {STREAM} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                raw_reader, raw_writer = await asyncio.open_connection("127.0.0.1", server.port)
                raw_writer.write(request * 2)
                received = b""
                while b"event: snapshot" not in received:
                    received += await asyncio.wait_for(raw_reader.read(65536), 5)
                event_id = await asyncio.to_thread(post, api, tokens, "tartus", "Up")
                assert (await reader.wait_for(2))[-1].id == event_id
                while f"id: {event_id}".encode() not in received:
                    received += await asyncio.wait_for(raw_reader.read(65536), 5)
                assert hub.streams == 2  # the reader and the raw connection's one stream
                raw_writer.close()
                return received

        received = asyncio.run(scenario())
        assert received.count(b"HTTP/1.1 ") == 1, received[:2000]
        api.http.close()


def test_a_fast_path_stream_that_fails_to_open_gives_back_its_slot(
        redis_url: str, tokens: Tokens, monkeypatch: pytest.MonkeyPatch) -> None:
    """If making a fast-path reader's first messages raises (here the tailer's snapshot is
    made to fail), uvicorn answers 400 and closes: the slot admitted for it is released."""
    with UvicornThread(app_config(redis_url)) as server:
        api = Api(server.base_url)
        open_blogs(api, tokens, "tartus")
        hub = server.hub()

        def broken() -> bytes:
            raise ValueError("the snapshot cannot be made")

        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
                async with reading(client, "tartus"):
                    monkeypatch.setattr(hub.tailers["tartus"], "snapshot", broken)
                    response = await client.get(STREAM)  # the fast path: tartus is tailed
                    assert response.status_code == 400
                    monkeypatch.undo()
                await asyncio.to_thread(wait_until, lambda: streams_held(server) == 0,
                                        what="every slot to be released")

        asyncio.run(scenario())
        api.http.close()


class Exploding(Subscription):
    """A reader whose every write raises (as a server's send may once its peer is gone)."""

    def offer(self, message: bytes, chunk: bytes) -> bool:
        raise ConnectionResetError("the peer is gone")


def test_a_reader_whose_write_raises_is_cut_off_and_silences_no_one(
        redis_url: str, tokens: Tokens) -> None:
    """A reader whose write raises, among real readers of a tailed blog: it is cut off, the
    heartbeat keeps going, and every other reader gets every update."""
    with UvicornThread(app_config(redis_url, heartbeat_seconds=0.2)) as server:
        api = Api(server.base_url)
        open_blogs(api, tokens, "tartus")
        hub = server.hub()

        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client, \
                    reading(client, "tartus") as first:
                exploding = Exploding()
                tailer = hub.tailers["tartus"]
                tailer.subscribe(None, exploding)
                async with reading(client, "tartus") as second:
                    # The next heartbeat (or update) meets it: its write raises.
                    await asyncio.to_thread(wait_until, lambda: exploding not in
                                            tailer.subscribers, what="it to be cut off")
                    event_id = await asyncio.to_thread(post, api, tokens, "tartus", "Up")
                    for reader in (first, second):
                        assert (await reader.wait_for(2))[-1].id == event_id
                    # The heartbeat still runs: a new reader hears pings after all this.
                    raw_reader, raw_writer = await asyncio.open_connection(
                        "127.0.0.1", server.port)
                    raw_writer.write(f"GET {STREAM} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    received = b""
                    while received.count(live.HEARTBEAT) < 2:
                        received += await asyncio.wait_for(raw_reader.read(65536), 5)
                    raw_writer.close()

        asyncio.run(scenario())
        api.http.close()


def test_a_slug_that_is_no_blog_gets_404_and_stops_no_tailer(
        redis_url: str, tokens: Tokens) -> None:
    """max_tailers=1: a stream of a slug that is no blog is 404, whether the one tailer has
    readers (not 503) or is idle (and it is not stopped to make room for nothing)."""
    with UvicornThread(app_config(redis_url, max_tailers=1)) as server:
        api = Api(server.base_url)
        open_blogs(api, tokens, "tartus")
        hub = server.hub()

        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
                async with reading(client, "tartus"):
                    response = await client.get("/blogs/nowhere/stream")
                    assert response.status_code == 404, response.text
                await asyncio.to_thread(wait_until, lambda: streams_held(server) == 0,
                                        what="the reader to leave")
                tailer = hub.tailers["tartus"]
                response = await client.get("/blogs/nowhere/stream")
                assert response.status_code == 404, response.text
                assert hub.tailers.get("tartus") is tailer and tailer.running

        asyncio.run(scenario())
        api.http.close()


def test_one_address_cannot_make_a_process_tail_more_than_its_share_of_blogs(
        redis_url: str, tokens: Tokens) -> None:
    """LIVEBLOG_MAX_TAILERS_PER_IP=2: an address that made the process tail two blogs gets
    503 for a third; another address may still start it."""
    with UvicornThread(app_config(redis_url, max_tailers_per_ip=2)) as server:
        api = Api(server.base_url)
        open_blogs(api, tokens, "tartus", "jableh", "latakia")
        hub = server.hub()

        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
                for slug in ("tartus", "jableh"):
                    async with reading(client, slug, "203.0.113.1"):
                        pass
                await refused(client, "latakia", "203.0.113.1")
                async with reading(client, "tartus", "203.0.113.1"):
                    pass  # a blog already tailed costs nothing
                async with reading(client, "latakia", "198.51.100.7"):
                    assert set(hub.tailers) == {"tartus", "jableh", "latakia"}

        asyncio.run(scenario())
        api.http.close()


def test_serve_trusts_the_proxies_liveblog_forwarded_allow_ips_names(
        processes: Processes, tmp_path: Path, redis_url: str, tokens: Tokens) -> None:
    """`liveblog serve` with LIVEBLOG_FORWARDED_ALLOW_IPS=127.0.0.2 and one stream per
    address: a proxy at 127.0.0.2 names two clients, each counted as itself (on the ASGI
    path and the fast path); a peer at 127.0.0.1 is no longer trusted and counts as itself."""
    served = Served(processes, tmp_path / "var", LIVEBLOG_REDIS_URL=redis_url,
                    LIVEBLOG_DURABILITY="warn", LIVEBLOG_MAX_STREAMS_PER_IP="1",
                    LIVEBLOG_FORWARDED_ALLOW_IPS="127.0.0.2")
    api = Api(served.url)
    open_blogs(api, tokens, "tartus")

    async def scenario() -> None:
        proxy = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(base_url=served.url, timeout=10,
                                     transport=proxy) as client, \
                httpx.AsyncClient(base_url=served.url, timeout=10) as local, \
                reading(client, "tartus", "203.0.113.1"), \
                reading(client, "tartus", "203.0.113.2"), \
                reading(local, "tartus", "198.51.100.1"):
            await refused(local, "tartus", "198.51.100.2")  # both count as 127.0.0.1

    asyncio.run(scenario())
    api.http.close()
    served.stop()


def test_a_spike_of_readers_on_a_blog_no_process_tails_yet_all_get_their_stream(
        redis_url: str, tokens: Tokens) -> None:
    """600 readers arrive at once on a blog this process does not tail yet: each asks the
    store whether the blog exists before one starts its tailer. With redis-py 8's pool of
    100, 500 of them got 503 (the capacity benchmark's first run); all get 200 now."""
    with UvicornThread(app_config(redis_url, max_streams_per_ip=10_000)) as server:
        api = Api(server.base_url)
        assert api("POST", "/api/blogs", tokens.editor,
                   json={"slug": "spike", "title": "Spike"}).status_code == 201

        async def reader() -> bytes:
            stream, send = await asyncio.open_connection("127.0.0.1", server.port)
            send.write(b"GET /blogs/spike/stream HTTP/1.1\r\nHost: x\r\n\r\n")
            await send.drain()
            head = await stream.readuntil(b"\r\n\r\n")
            send.close()
            return head.split(b"\r\n", 1)[0]

        async def spike() -> list[bytes]:
            return await asyncio.gather(*(reader() for _ in range(600)))

        statuses = asyncio.run(spike())
        assert statuses == [b"HTTP/1.1 200 OK"] * 600, {s: statuses.count(s) for s in statuses}
        api.http.close()
