"""A small server-sent-events client for tests: reads a real stream over HTTP."""

from __future__ import annotations

import json
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
