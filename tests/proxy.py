"""A TCP proxy for tests, between the app and a redis-server's Unix socket, that can
blackhole its connections: both sockets stay open, nothing more goes through either way,
and no FIN or RST is ever sent. That is how a connection dies when a NAT forgets it or a
failover leaves it dangling; the peer's kernel keeps acknowledging, so TCP keepalive
alone does not notice either."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Link:
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    dead: bool = False


class BlackholeProxy:
    def __init__(self, unix_path: str) -> None:
        self.unix_path = unix_path
        self.links: list[Link] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0
        self._server: asyncio.Server | None = None
        # The connections' handlers, cancelled and awaited on exit (else the loop is closed
        # with them pending: "Task was destroyed but it is pending").
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def __enter__(self) -> BlackholeProxy:
        self.thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()

    def blackhole(self) -> int:
        """Silence every connection open now (new ones go through); how many."""
        async def silence() -> int:
            live = [link for link in self.links if not link.dead]
            for link in live:
                link.dead = True
            return len(live)

        return self._call(silence())

    def open_links(self) -> int:
        """Connections that still carry traffic."""
        async def count() -> int:
            return sum(1 for link in self.links
                       if not link.dead and not any(w.is_closing() for w in link.writers))

        return self._call(count())

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        handler.add_done_callback(self._handlers.discard)
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.unix_path)
        except OSError:
            writer.close()
            return
        link = Link([writer, up_writer])
        self.links.append(link)
        await asyncio.gather(self._pump(reader, up_writer, link),
                             self._pump(up_reader, writer, link))

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter,
                    link: Link) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await source.read(65536):
                if link.dead:
                    continue  # swallowed: the other side hears nothing, not even a FIN
                sink.write(data)
                await sink.drain()
            if not link.dead:
                sink.close()

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for link in self.links:
            for writer in link.writers:
                writer.close()
        handlers = list(self._handlers)
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
