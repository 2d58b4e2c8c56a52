"""The reference limit for fan-out: the least a Python server can do per delivered message.

    .venv/bin/python bench/limit.py --port 8123

A bare asyncio (uvloop when installed) server. `GET <anything>` answers with SSE response
headers and a `: ok` comment, and keeps the socket as a subscriber. `POST <anything>` with a
body encodes one SSE message once (`id`, `event: entry-posted`, `data: <the body>`) and
writes those same bytes to every subscriber socket in one pass, then answers 201. No
framework, no per-reader task, no per-reader encoding: what is left is the system calls.
`GET /healthz` answers 200 and closes. bench/spike.py runs it as one of the peers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
        b"Connection: close\r\n\r\n: ok\n\n")
CREATED = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
HEALTHY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class Hub:
    def __init__(self) -> None:
        self.subscribers: set[asyncio.Transport] = set()
        self.next_id = 0

    def publish(self, body: bytes) -> None:
        self.next_id += 1
        message = b"id: %d\nevent: entry-posted\ndata: %s\n\n" % (self.next_id,
                                                                  body.replace(b"\n", b" "))
        for transport in self.subscribers:
            transport.write(message)


class Connection(asyncio.Protocol):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end == -1:
                return
            head = self.buffer[:end].decode("latin-1")
            method, path = head.split(" ", 2)[:2]
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            if method == "POST":
                self.hub.publish(body)
                self.transport.write(CREATED)
            elif path == "/healthz":
                self.transport.write(HEALTHY)
                self.transport.close()
                return
            else:
                self.transport.write(HEAD)
                self.hub.subscribers.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.hub.subscribers.discard(self.transport)


async def serve(host: str, port: int) -> None:
    hub = Hub()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(hub), host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    run = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        run = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
