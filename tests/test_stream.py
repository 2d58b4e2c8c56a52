"""The reader stream over a real uvicorn on a real Redis: order, completeness, resume,
snapshots, heartbeats, slow readers, several processes, the end of a blog."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from datetime import UTC, datetime

import httpx
import pytest

from liveblog import live
from liveblog.domain.events import Actor, FactUpdated
from liveblog.domain.state import Blog, Entry
from liveblog.domain.views import PublicEntry
from liveblog.live import HEARTBEAT, RING_SIZE, Hub
from liveblog.service import Service
from liveblog.web.stream import SendReader
from tests.sse import Message, Stream, messages, read_stream
from tests.support import Api, Tokens, UvicornThread, app_config, open_store, wait_until

STREAM = "/blogs/tartus/stream"

pytestmark = pytest.mark.backends  # also on a Redis Cluster


def changes(api: Api, tokens: Tokens) -> list[str]:
    """A story's worth of every kind of change; returns the kinds in order."""
    kinds = []
    first = api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                json={"body": "Blast at the bus station", "title": "Blast", "key_event": True})
    entry = first.json()["entry"]["id"]
    kinds.append("entry-posted")
    api("POST", "/api/blogs/tartus/entries", tokens.other_reporter, json={"body": "Second"})
    kinds.append("entry-posted")
    api("PATCH", f"/api/blogs/tartus/entries/{entry}", tokens.editor,
        json={"body": "Blasts at the bus station"})
    kinds.append("entry-edited")
    api("PUT", "/api/blogs/tartus/pinned", tokens.editor, json={"entry_id": entry})
    kinds.append("pin-changed")
    api("PUT", "/api/blogs/tartus/facts/deaths", tokens.reporter,
        json={"label": "Deaths", "value": "at least 80", "numeric": 80, "source": "AP"})
    kinds.append("fact-updated")
    api("PATCH", "/api/blogs/tartus", tokens.editor, json={"title": "Bombings in Tartus"})
    kinds.append("blog-updated")
    api("DELETE", f"/api/blogs/tartus/entries/{entry}", tokens.editor, json={"reason": "dup"})
    kinds.append("entry-retracted")
    return kinds


def log_ids(api: Api, tokens: Tokens) -> list[str]:
    events = api("GET", "/api/blogs/tartus/events", tokens.editor,
                 params={"limit": 1000}).json()
    assert events["next"] is None
    return [e["id"] for e in events["events"]]


def test_many_readers_get_every_change_in_order_with_log_ids(
        api: Api, tokens: Tokens, blog: str, server: UvicornThread) -> None:
    readers = 40

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            ready = [asyncio.create_task(read_stream(client, STREAM, until=8))
                     for _ in range(readers)]
            await asyncio.sleep(0)
            # Wait until every reader is subscribed (each got its snapshot) before writing.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                health = await client.get("/healthz")
                assert health.status_code == 200
                if len(await _subscribed(server)) >= readers:
                    break
                await asyncio.sleep(0.02)
            kinds = await asyncio.to_thread(changes, api, tokens)
            streams = await asyncio.gather(*ready)
        ids = log_ids(api, tokens)
        for stream in streams:
            assert stream.status == 200
            assert stream.headers["cache-control"] == "no-store"
            assert stream.headers["x-accel-buffering"] == "no"
            assert stream.retry is not None and 1000 <= stream.retry <= 4000
            snapshot, *rest = stream.messages
            assert (snapshot.event, snapshot.id) == ("snapshot", ids[0])
            assert [m.event for m in rest] == kinds
            assert [m.id for m in rest] == ids[1:]
            assert [m.data["version"] for m in rest] == list(range(2, 9))

    asyncio.run(scenario())


async def _subscribed(server: UvicornThread) -> list[object]:
    hub: Hub = server.hub()
    tailer = hub.tailers.get("tartus")
    return list(tailer.subscribers) if tailer else []


def test_change_messages_carry_the_public_shapes(api: Api, tokens: Tokens, blog: str,
                                                 server: UvicornThread) -> None:
    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            reading = asyncio.create_task(read_stream(client, STREAM, until=8))
            await _wait_for_subscribers(server, 1)
            await asyncio.to_thread(changes, api, tokens)
            stream = await reading
        by_kind = {m.event: m.data for m in stream.messages}
        assert by_kind["entry-posted"]["entry"]["html"] == "<p>Second</p>"
        assert by_kind["entry-edited"]["entry"]["revision"] == 2
        assert by_kind["pin-changed"]["entry"]["body"] == "Blasts at the bus station"
        assert by_kind["fact-updated"]["fact"]["history"][0]["source"] == "AP"
        assert by_kind["blog-updated"]["title"] == "Bombings in Tartus"
        retracted = by_kind["entry-retracted"]
        assert set(retracted) == {"version", "entry_id", "pinned_entry_id"}
        assert retracted["pinned_entry_id"] is None
        snapshot = stream.messages[0].data
        assert snapshot == api("GET", "/api/blogs/tartus/state", tokens.editor,
                               params={"at": 1}).json()

    asyncio.run(scenario())


async def _wait_for_subscribers(server: UvicornThread, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(await _subscribed(server)) < count:
        assert time.monotonic() < deadline, "readers did not subscribe"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("how", ["header", "query"])
def test_resume_gets_exactly_what_was_missed(api: Api, tokens: Tokens, blog: str,
                                             server: UvicornThread, how: str) -> None:
    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            reading = asyncio.create_task(read_stream(client, STREAM, until=3))
            await _wait_for_subscribers(server, 1)
            kinds = await asyncio.to_thread(changes, api, tokens)
            first = await reading  # snapshot + 2 changes, then the reader drops
            last_seen = first.messages[-1].id
            assert last_seen is not None
            if how == "header":
                second = await read_stream(client, STREAM, until=5, last_event_id=last_seen)
            else:
                second = await read_stream(client, STREAM, until=5,
                                           params={"last_event_id": last_seen})
        ids = log_ids(api, tokens)
        seen = [m.id for m in first.messages[1:] + second.messages]
        assert seen == ids[1:]  # no gap, no duplicate
        assert [m.event for m in second.messages] == kinds[2:]

    asyncio.run(scenario())


@pytest.mark.parametrize("bad", ["not-an-id", "1-0", "99999999999999-0", ""])
def test_an_id_that_cannot_be_placed_gets_a_snapshot(api: Api, tokens: Tokens, blog: str,
                                                     server: UvicornThread, bad: str) -> None:
    changes(api, tokens)

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            stream = await read_stream(client, STREAM, until=1, last_event_id=bad)
        message = stream.messages[0]
        assert message.event == "snapshot"
        assert message.id == log_ids(api, tokens)[-1] == message.data["last_event_id"]
        assert message.data["version"] == 8

    asyncio.run(scenario())


def test_a_reader_too_far_behind_gets_a_snapshot(api: Api, tokens: Tokens, blog: str,
                                                 server: UvicornThread, redis_url: str) -> None:
    async def write_many() -> list[str]:
        store = open_store(redis_url)
        actor = Actor("rania", "reporter")
        for n in range(RING_SIZE + 10):  # a figure each: small messages
            await store.append("tartus", FactUpdated(key=f"figure-{n}", label="Figure",
                                                     value=str(n)), actor, datetime.now(UTC))
        ids = [rec.id for rec in await store.read("tartus")]
        await store.close()
        return ids

    ids = asyncio.run(write_many())
    assert len(ids) == RING_SIZE + 11  # blog-opened, then one change each

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            old = await read_stream(client, STREAM, until=1, last_event_id=ids[1])
            # The oldest message the ring holds: everything after it, and no snapshot.
            oldest = await read_stream(client, STREAM, until=RING_SIZE - 1,
                                       last_event_id=ids[-RING_SIZE])
            # One before it: the ring cannot place it.
            outside = await read_stream(client, STREAM, until=1,
                                        last_event_id=ids[-RING_SIZE - 1])
            recent = await read_stream(client, STREAM, until=10, last_event_id=ids[-11])
        assert old.messages[0].event == "snapshot"
        assert old.messages[0].data["version"] == RING_SIZE + 11
        assert outside.messages[0].event == "snapshot"
        assert [m.id for m in oldest.messages] == ids[-RING_SIZE + 1:]
        assert {m.event for m in oldest.messages} == {"fact-updated"}
        assert [m.id for m in recent.messages] == ids[-10:]
        assert [m.data["version"] for m in recent.messages] == \
            list(range(RING_SIZE + 2, RING_SIZE + 12))

    asyncio.run(asyncio.wait_for(scenario(), 30))  # a snapshot instead would wait for ever


def test_heartbeats_are_our_ping_at_our_interval_and_nothing_else(
        redis_url: str, tokens: Tokens) -> None:
    interval = 0.3
    with UvicornThread(app_config(redis_url, heartbeat_seconds=interval)) as fast:
        opener = Api(fast.base_url)
        opener("POST", "/api/blogs", tokens.editor, json={"slug": "tartus", "title": "T"})
        opener.http.close()

        async def scenario() -> tuple[bytes, list[float]]:
            received, beats = b"", []
            async with httpx.AsyncClient(base_url=fast.base_url, timeout=20) as client, \
                    client.stream("GET", STREAM) as response:
                async for chunk in response.aiter_raw():  # the bytes as sent, de-chunked
                    received += chunk
                    beats += [time.monotonic()] * (received.count(HEARTBEAT) - len(beats))
                    if len(beats) == 6:
                        return received, beats
            return received, beats

        received, beats = asyncio.run(asyncio.wait_for(scenario(), 10))
    # The opening (retry, snapshot), then our exact heartbeat bytes, and nothing else.
    opening = rb"retry: \d+\n\nid: \d+-\d+\nevent: snapshot\ndata: [^\n]+\n\n"
    assert re.fullmatch(opening + rb"(: ping\n\n){6}", received), received[-200:]
    # At the configured pace (on average: one late read on a busy machine moves two gaps).
    pace = (beats[-1] - beats[0]) / (len(beats) - 1)
    assert 0.8 * interval <= pace <= 3 * interval, pace


def test_a_slow_reader_is_cut_off_without_delaying_the_others(
        redis_url: str, tokens: Tokens) -> None:
    # The reader that reads shares this process (and its CPU) with the server: allow it 32
    # messages of lag, so a busy machine cannot make it "slow" too; the one that never
    # reads passes any such limit within the first few dozen 40 kB messages.
    with UvicornThread(app_config(redis_url, reader_queue=32)) as small:
        api = Api(small.base_url)
        api("POST", "/api/blogs", tokens.editor, json={"slug": "tartus", "title": "T"})
        slow = _slow_reader(small)
        posts = 150
        body = "A long update. " * 1300  # ~40 kB a message (body and html): buffers fill fast

        async def scenario() -> list[str]:
            async with httpx.AsyncClient(base_url=small.base_url, timeout=30) as client:
                reading = asyncio.create_task(read_stream(client, STREAM, until=posts + 1))
                await _wait_for_subscribers_in(small, 2)
                for _ in range(posts):
                    posted = await client.post(
                        "/api/blogs/tartus/entries", json={"body": body},
                        headers={"Authorization": f"Bearer {tokens.reporter}"})
                    assert posted.status_code == 201
                stream = await reading
                return [m.event for m in stream.messages]

        events = asyncio.run(scenario())
        assert events == ["snapshot"] + ["entry-posted"] * posts
        assert small.hub().tailers["tartus"].dropped == 1
        # The fast reader has hung up too; once the server notices, nobody is subscribed.
        wait_until(lambda: len(_tailer_subscribers(small)) == 0, what="readers to leave")
        slow.close()
        api.http.close()


def test_a_cut_off_slow_reader_resumes_with_exactly_what_it_missed(
        redis_url: str, tokens: Tokens) -> None:
    server = UvicornThread(app_config(redis_url, reader_queue=4))
    # Modest kernel send buffers (accepted connections inherit the listener's): what the
    # cut-off reader loses with them then fits the resume ring. (With Linux's autotuned
    # ones, megabytes; a resume from further back gets a snapshot instead.)
    server.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    with server as small:
        api = Api(small.base_url)
        api("POST", "/api/blogs", tokens.editor, json={"slug": "tartus", "title": "T"})
        slow = _slow_reader(small)
        # A few small updates fit in its socket buffers: those it will have received.
        for n in range(3):
            assert api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                       json={"body": f"short {n}"}).status_code == 201
        # Then ~9 kB messages until the buffers are full and it is cut off.
        body = "A long update. " * 300
        posted = 0
        tailer = small.hub().tailers["tartus"]
        while tailer.dropped == 0 and posted < 1000:
            assert api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                       json={"body": body}).status_code == 201
            posted += 1
            # Paced (a broadcast goes out every 50 ms at most, with all that arrived
            # meanwhile): what it misses stays well inside the resume ring's 2 MiB.
            time.sleep(0.01)
        wait_until(lambda: tailer.dropped == 1, what="the slow reader to be cut off")
        for n in range(5):  # and some after the cut
            api("POST", "/api/blogs/tartus/entries", tokens.reporter, json={"body": f"late {n}"})
        received = _drain(slow)
        got = _complete_messages(received)
        assert got[0].event == "snapshot" and len(got) >= 4, [m.event for m in got]
        last = got[-1].id
        ids = log_ids(api, tokens)
        assert last is not None and last in ids[1:-5]
        missed = ids[ids.index(last) + 1:]

        async def resume() -> Stream:
            async with httpx.AsyncClient(base_url=small.base_url, timeout=20) as client:
                return await read_stream(client, STREAM, until=len(missed),
                                         last_event_id=last)

        resumed = asyncio.run(asyncio.wait_for(resume(), 20))
        assert [m.id for m in resumed.messages] == missed  # no snapshot, no gap, no repeat
        assert [m.id for m in got[1:] + resumed.messages] == ids[1:]
        assert resumed.messages[-1].data["entry"]["body"] == "late 4"
        print(f"\nslow reader: cut off after {len(got) - 1} of {len(ids) - 1} changes "
              f"({posted} large posts), resumed with the {len(missed)} it missed")
        api.http.close()


def _drain(sock: socket.socket) -> bytes:
    """Everything the kernel still holds for a reader that was cut off (then reset)."""
    sock.settimeout(5)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    sock.close()
    return received


def _complete_messages(raw: bytes) -> list[Message]:
    """The whole server-sent-event messages in a raw HTTP/1.1 chunked response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
    payload = b""
    while b"\r\n" in body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        payload += rest[:size]  # all of it, or as much as arrived
        if size == 0 or len(rest) < size + 2:
            break
        body = rest[size + 2:]
    found: list[Message] = []
    for block in payload.split(b"\n\n")[:-1]:  # the last piece is incomplete or empty
        fields = dict(line.split(": ", 1) for line in block.decode().split("\n")
                      if not line.startswith((":", "retry:")))
        if "data" in fields:
            found.append(Message(fields.get("id"), fields["event"], json.loads(fields["data"])))
    return found


def _slow_reader(server: UvicornThread) -> socket.socket:
    """A reader that subscribes, then reads nothing, with a tiny receive buffer."""
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", server.port))
    slow.sendall(f"GET {STREAM} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    wait_until(lambda: len(_tailer_subscribers(server)) == 1, what="the slow reader")
    return slow


def _tailer_subscribers(server: UvicornThread) -> list[object]:
    tailer = server.hub().tailers.get("tartus")
    return list(tailer.subscribers) if tailer else []


async def _wait_for_subscribers_in(server: UvicornThread, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(_tailer_subscribers(server)) < count:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


def test_a_second_process_streams_writes_made_through_the_first(
        api: Api, tokens: Tokens, blog: str, redis_url: str) -> None:
    with UvicornThread(app_config(redis_url)) as other:
        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=other.base_url, timeout=20) as client:
                reading = asyncio.create_task(read_stream(client, STREAM, until=8))
                await _wait_for_subscribers_in(other, 1)
                kinds = await asyncio.to_thread(changes, api, tokens)  # through the first
                stream = await reading
            assert [m.event for m in stream.messages[1:]] == kinds
            assert [m.id for m in stream.messages] == log_ids(api, tokens)

        asyncio.run(scenario())


def test_an_ended_blog_says_so_keeps_open_pages_current_then_tells_readers_to_stop(
        api: Api, tokens: Tokens, blog: str, server: UvicornThread) -> None:
    entry = api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                json={"body": "A claim"}).json()["entry"]

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            reading = asyncio.create_task(read_stream(client, STREAM, until=3))
            await _wait_for_subscribers(server, 1)
            await asyncio.to_thread(api, "PATCH", "/api/blogs/tartus", tokens.editor,
                                    json={"status": "ended"})
            # A legally required retraction after the end still reaches the open page.
            await asyncio.to_thread(api, "DELETE", f"/api/blogs/tartus/entries/{entry['id']}",
                                    tokens.editor, json={"reason": "legal"})
            stream = await reading
            assert [m.event for m in stream.messages] == \
                ["snapshot", "blog-updated", "entry-retracted"]
            assert stream.messages[1].data["status"] == "ended"
            last = stream.messages[-1].id or ""
            again = await client.get(STREAM, headers={"Last-Event-ID": last})
            assert again.status_code == 204  # up to date on an ended blog: stop reconnecting
            # A page rendered after the end opens its stream all the same.
            async with client.stream("GET", STREAM, params={"last_event_id": last}) as opened:
                assert opened.status_code == 200
            behind = await read_stream(client, STREAM, until=1,
                                       last_event_id=stream.messages[1].id)
            assert [m.event for m in behind.messages] == ["entry-retracted"]

    asyncio.run(scenario())


def test_unknown_blog_stream_is_404(api: Api) -> None:
    response = api("GET", "/blogs/nowhere/stream")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_an_idle_blog_stops_being_tailed(redis_url: str, tokens: Tokens, api: Api,
                                         blog: str) -> None:
    async def scenario() -> None:
        store = open_store(redis_url)
        hub = Hub(Service(store), idle_seconds=0.2, block_ms=100)
        tailer = await hub.tailer("tartus")
        sub, first = tailer.subscribe(None)
        assert len(first) == 1
        await asyncio.sleep(0.5)
        assert "tartus" in hub.tailers  # a reader keeps it
        tailer.unsubscribe(sub)
        deadline = time.monotonic() + 5
        assert tailer._task is not None
        while "tartus" in hub.tailers or not tailer._task.done():
            assert time.monotonic() < deadline, "the idle tailer was not stopped"
            await asyncio.sleep(0.02)
        await hub.close()
        await store.close()

    asyncio.run(scenario())


def test_a_head_request_leaves_no_reader_behind(api: Api, blog: str,
                                                server: UvicornThread) -> None:
    for _ in range(3):
        assert api("HEAD", STREAM).status_code == 200
    assert _tailer_subscribers(server) == []


def test_on_another_http_protocol_the_stream_works_the_same(
        redis_url: str, tokens: Tokens) -> None:
    """Off uvicorn's httptools protocol (here its h11 one), messages go through the ASGI
    send instead of straight to the socket: same messages, same resume, same cut-off."""
    with UvicornThread(app_config(redis_url, reader_queue=4), http="h11") as other:
        api = Api(other.base_url)
        api("POST", "/api/blogs", tokens.editor, json={"slug": "tartus", "title": "T"})
        slow = _slow_reader(other)
        assert all(isinstance(sub, SendReader) for sub in _tailer_subscribers(other))

        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=other.base_url, timeout=30) as client:
                reading = asyncio.create_task(read_stream(client, STREAM, until=8))
                await _wait_for_subscribers_in(other, 2)
                kinds = await asyncio.to_thread(changes, api, tokens)
                first = await reading
                assert [m.event for m in first.messages] == ["snapshot", *kinds]
                assert [m.id for m in first.messages] == log_ids(api, tokens)
                again = await read_stream(client, STREAM, until=2,
                                          last_event_id=first.messages[-3].id)
                assert [m.id for m in again.messages] == [m.id for m in first.messages[-2:]]
                body = "A long update. " * 1300
                for _ in range(150):  # far more than the slow reader's buffers hold
                    posted = await client.post(
                        "/api/blogs/tartus/entries", json={"body": body},
                        headers={"Authorization": f"Bearer {tokens.reporter}"})
                    assert posted.status_code == 201

        asyncio.run(scenario())
        assert other.hub().tailers["tartus"].dropped == 1
        wait_until(lambda: len(_tailer_subscribers(other)) == 0, what="readers to leave")
        slow.close()
        api.http.close()


def test_readers_of_a_tailed_blog_are_served_without_a_task_each(
        api: Api, tokens: Tokens, blog: str, server: UvicornThread) -> None:
    """The first reader starts the tailer through the ASGI app; later ones are answered by
    the HTTP protocol itself (protocol.py) and hold no task: same messages, same resume."""
    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            first = asyncio.create_task(read_stream(client, STREAM, until=4))
            await _wait_for_subscribers(server, 1)
            tasks_before = len(server.server.server_state.tasks)
            later = [asyncio.create_task(read_stream(client, STREAM, until=4))
                     for _ in range(5)]
            await _wait_for_subscribers(server, 6)
            assert len(server.server.server_state.tasks) == tasks_before
            kinds = await asyncio.to_thread(changes, api, tokens)
            streams = [await first] + [await reading for reading in later]
            ids = log_ids(api, tokens)
            for stream in streams:
                assert stream.status == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                assert stream.headers["cache-control"] == "no-store"
                assert stream.retry is not None and 1000 <= stream.retry <= 4000
                assert [m.event for m in stream.messages] == ["snapshot", *kinds[:3]]
                assert [m.id for m in stream.messages] == ids[:4]
            resumed = await read_stream(client, STREAM, until=3, last_event_id=ids[4])
            assert [m.id for m in resumed.messages] == ids[5:]

    asyncio.run(scenario())


def test_no_resume_replays_retracted_or_corrected_words(
        api: Api, tokens: Tokens, blog: str, server: UvicornThread) -> None:
    """Whatever id a reader resumes from (header or query), the stream never sends the text
    of a retracted entry or an entry's corrected-away revision: only what stands now."""
    def post(body: str) -> str:
        response = api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                       json={"body": body})
        return str(response.json()["entry"]["id"])

    kept = post("OLD-WORDING of the first report")
    secret = post("SECRET-WORDS that a court ordered withdrawn")
    api("PUT", "/api/blogs/tartus/pinned", tokens.editor, json={"entry_id": secret})
    post("A later update")
    api("PATCH", f"/api/blogs/tartus/entries/{kept}", tokens.editor,
        json={"body": "New wording of the first report"})
    api("DELETE", f"/api/blogs/tartus/entries/{secret}", tokens.editor,
        json={"reason": "legal"})
    ids = log_ids(api, tokens)

    async def first_messages(client: httpx.AsyncClient, headers: dict[str, str],
                             params: dict[str, str]) -> list[str]:
        seen: list[str] = []
        async with client.stream("GET", STREAM, headers=headers, params=params) as response:
            assert response.status_code == 200
            async for message in messages(response.aiter_lines(), Stream(200, response.headers)):
                seen.append(json.dumps(message.data))
                if message.id == ids[-1]:
                    return seen
        return seen

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            for event_id in ids[:-1]:  # from the last one there is nothing to send
                for how in ("header", "query"):
                    headers = {"Last-Event-ID": event_id} if how == "header" else {}
                    params = {"last_event_id": event_id} if how == "query" else {}
                    sent = " ".join(await first_messages(client, headers, params))
                    assert "SECRET-WORDS" not in sent, (event_id, how)
                    assert "OLD-WORDING" not in sent, (event_id, how)
                    if event_id in ids[:5]:  # before the correction: it must arrive
                        assert "New wording" in sent, (event_id, how)

    asyncio.run(scenario())


def test_a_corrected_message_is_re_rendered_once_not_on_every_resume(
        api: Api, tokens: Tokens, blog: str, server: UvicornThread,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """30 entries, each corrected: the first resume from the oldest id renders each of them
    as it stands now; later resumes from there render nothing again (an anonymous reader
    resuming over and over must not cost the whole ring's rendering each time)."""
    entries = []
    for n in range(30):
        response = api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                       json={"body": f"OLD-WORDING {n}"})
        entries.append(str(response.json()["entry"]["id"]))
    for n, entry in enumerate(entries):
        api("PATCH", f"/api/blogs/tartus/entries/{entry}", tokens.editor,
            json={"body": f"New wording {n}"})
    ids = log_ids(api, tokens)
    rendered: list[str] = []
    render = live.public_entry

    def counting(entry: Entry, blog: Blog) -> PublicEntry:
        rendered.append(entry.id)
        return render(entry, blog)

    monkeypatch.setattr(live, "public_entry", counting)

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            for attempt in range(3):
                # From the first post (the blog's opening is not a message kept in the ring).
                resumed = await asyncio.wait_for(read_stream(
                    client, STREAM, until=len(ids) - 2, last_event_id=ids[1]), 10)
                sent = json.dumps([m.data for m in resumed.messages])
                assert "OLD-WORDING" not in sent and "New wording 29" in sent
                if attempt == 0:
                    assert sorted(rendered) == sorted(entries[1:])  # each once (not its own)
                    rendered.clear()
            assert rendered == []  # not again

    asyncio.run(scenario())
