"""A small server-sent-events client for tests: reads a real stream over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Message:
    id: str | None
    event: str
    data: Any


@dataclass
class Stream:
    status: int
    headers: httpx.Headers
    messages: list[Message] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None


async def read_stream(client: httpx.AsyncClient, url: str, *, until: int | None = None,
                      last_event_id: str | None = None, params: dict[str, str] | None = None,
                      comments: int = 0, stream: Stream | None = None) -> Stream:
    """Read until `until` messages (and `comments` heartbeats) arrived, or the server ends."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with client.stream("GET", url, headers=headers, params=params) as response:
        result = stream or Stream(response.status_code, response.headers)
        result.status, result.headers = response.status_code, response.headers
        async for message in messages(response.aiter_lines(), result):
            result.messages.append(message)
            if until is not None and len(result.messages) >= until \
                    and len(result.comments) >= comments:
                break
        return result


async def messages(lines: AsyncIterator[str], into: Stream) -> AsyncIterator[Message]:
    fields: dict[str, str] = {}
    async for line in lines:
        if line == "":
            if "data" in fields:
                yield Message(fields.get("id"), fields.get("event", "message"),
                              json.loads(fields["data"]))
            elif "retry" in fields:
                into.retry = int(fields["retry"])
            fields = {}
        elif line.startswith(":"):
            into.comments.append(line)
        else:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


class Reader:
    """A stream held open; its messages arrive in the background."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.messages: list[Message] = []
        self.arrived: list[float] = []  # time.monotonic() of each message
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        into = Stream(self.response.status_code, self.response.headers)
        with contextlib.suppress(httpx.HTTPError):
            async for message in messages(self.response.aiter_lines(), into):
                self.messages.append(message)
                self.arrived.append(time.monotonic())

    @property
    def ended(self) -> bool:
        """The server ended the stream."""
        return self.task.done()

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


class Follower:
    """A reader that reconnects with Last-Event-ID whenever its stream ends or breaks,
    as a browser's EventSource does."""

    def __init__(self, client: httpx.AsyncClient, slug: str = "tartus") -> None:
        self.client = client
        self.slug = slug
        self.messages: list[Message] = []
        self.connections = 0
        self.task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            headers = {"Accept": "text/event-stream"}
            last = next((m.id for m in reversed(self.messages) if m.id), None)
            if last is not None:
                headers["Last-Event-ID"] = last
            with contextlib.suppress(httpx.HTTPError):
                async with self.client.stream("GET", f"/blogs/{self.slug}/stream",
                                              headers=headers) as response:
                    if response.status_code == 200:
                        self.connections += 1
                        into = Stream(response.status_code, response.headers)
                        async for message in messages(response.aiter_lines(), into):
                            self.messages.append(message)
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
