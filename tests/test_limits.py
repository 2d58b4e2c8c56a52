"""Limits on what anonymous readers can make a process hold, over a real uvicorn on a real
Redis: stream connections per client address and per process, tailers per process, the
bytes of a tailer's resume ring, the bytes buffered for a reader that stopped reading."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx

from liveblog import live
from liveblog.live import Hub
from liveblog.service import Service
from liveblog.store import Store
from tests.conftest import Api, Tokens, UvicornThread, app_config, wait_until
from tests.sse import Message, Stream, messages, read_stream

PROBLEM = "application/problem+json"
STREAM = "/blogs/tartus/stream"


class Reader:
    """A stream held open; its messages arrive in the background."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.messages: list[Message] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        into = Stream(self.response.status_code, self.response.headers)
        with contextlib.suppress(httpx.HTTPError):
            async for message in messages(self.response.aiter_lines(), into):
                self.messages.append(message)

    async def wait_for(self, count: int, within: float = 10.0) -> list[Message]:
        deadline = time.monotonic() + within
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} of {count} messages"
            await asyncio.sleep(0.01)
        return self.messages


@contextlib.asynccontextmanager
async def reading(client: httpx.AsyncClient, slug: str,
                  address: str = "203.0.113.1") -> AsyncIterator[Reader]:
    """A reader of `slug` from `address` (the test's uvicorn trusts X-Forwarded-For from
    127.0.0.1, as `liveblog serve` does behind a local proxy)."""
    async with client.stream("GET", f"/blogs/{slug}/stream",
                             headers={"X-Forwarded-For": address}) as response:
        assert response.status_code == 200, await response.aread()
        reader = Reader(response)
        try:
            await reader.wait_for(1)  # its snapshot
            yield reader
        finally:
            reader.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader.task


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
    """Eighty entries of 19 kB (about 40 kB a message with its HTML) are 3 MB: more than
    the ring keeps. A reader resuming from inside the ring gets exactly what it missed; one
    resuming from before it gets a snapshot, never a gap."""
    body = "A long dispatch from the port. " * 620  # 19 kB
    posts = 80

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
