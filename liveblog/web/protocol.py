"""uvicorn's HTTP/1.1 protocol, with reader streams answered where the request is parsed.

A reader who connects to a blog this process already tails needs nothing the ASGI app
does for other requests: no routing, no scope, no task, no coroutine that lives as long as
the connection. So when the request's head is complete and it is a plain GET of a live
blog's stream, the protocol writes the headers and the first messages in one write and
hands the connection to the blog's tailer; from then on the connection is only a
transport the tailer writes to, and its end (connection_lost) is the unsubscribe.

Everything else, including every stream request that needs a decision with I/O (a blog
not tailed yet, a reader ahead of us, an ended blog, HEAD), goes to the ASGI app as usual:
stream.py serves those with the same messages.

`liveblog serve` runs uvicorn with this protocol (`http="liveblog.web.protocol:..."`).
"""

from __future__ import annotations

import asyncio
import time

import httptools
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import get_local_addr, get_remote_addr, is_ssl

from liveblog.errors import Overloaded
from liveblog.live import Hub, Tailer, http_chunk
from liveblog.web.stream import (
    HEADERS,
    PATH,
    SocketReader,
    last_event_id_header,
    opening_of,
    query_value,
)

_HEAD = b"HTTP/1.1 200 OK\r\n" + b"".join(
    name + b": " + value + b"\r\n" for name, value in HEADERS
) + b"transfer-encoding: chunked\r\n"


class StreamingHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that serves reader streams of tailed blogs without a task."""

    reader: SocketReader | None = None
    tailer: Tailer | None = None
    hub: Hub | None = None
    client_address: str | None = None
    addressed = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # As uvicorn's, but the addresses are looked up only for a request that goes to
        # the app: a reader's stream never needs them, and making a socket object for each
        # was a fifth of a connection's CPU in a profile of 8,000 readers arriving.
        self.connections.add(self)
        self.transport = transport
        self.flow = FlowControl(transport)

    def on_message_begin(self) -> None:
        # The ASGI scope is made in on_headers_complete, once the request is known to go
        # to the app.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def on_headers_complete(self) -> None:
        if self.reader is not None:
            # A request pipelined behind the stream, in the same packet (later packets are
            # not even parsed, see data_received): answering it would write a second
            # response into the middle of the chunked stream, and hold a second slot.
            return
        if self.cycle is None and self._stream_here():
            return
        if not self.addressed:
            self.server = get_local_addr(self.transport)
            self.client = get_remote_addr(self.transport)
            self.scheme = "https" if is_ssl(self.transport) else "http"
            self.addressed = True
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()  # the scope, as uvicorn makes it
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers
        super().on_headers_complete()

    def _stream_here(self) -> bool:
        parser = self.parser
        if parser.get_method() != b"GET" or parser.get_http_version() != "1.1":
            return False
        url = httptools.parse_url(self.url)
        match = PATH.match(url.path.decode("latin-1"))
        if match is None or b"%" in url.path:
            return False
        hub: Hub | None = self.app_state.get("hub")
        if hub is None:
            return False
        tailer = hub.tailers.get(match.group(1))
        if tailer is None or not tailer.running:
            return False
        reconnecting_from = last_event_id_header(self.headers)
        last_id = reconnecting_from or query_value(url.query or b"", "last_event_id")
        if tailer.is_ahead(last_id) or tailer.is_over(reconnecting_from):
            return False  # the ASGI app reads the log, or answers 204
        address = self._client_address()
        try:
            hub.admit(address)
        except Overloaded:
            return False  # the ASGI app refuses it, as problem+json like every error
        # Recorded before anything else can raise: connection_lost releases the slot and
        # unsubscribes, even if what follows fails (uvicorn then answers 400 and closes).
        self.hub, self.client_address = hub, address
        tailer.idle_since = time.monotonic()  # a request counts as use
        reader = SocketReader(tailer.queue_size, self.transport, chunked=True)
        self.reader, self.tailer = reader, tailer
        _, first = tailer.subscribe(last_id, reader)
        opening = opening_of(first)
        head = [_HEAD]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"\r\n")
        # Headers and the first messages in one write: one packet, not two.
        first_write = b"".join(head) + http_chunk(opening)
        reader.opening = len(first_write)
        self.transport.write(first_write)
        return True

    def _client_address(self) -> str | None:
        """The client's address as the ASGI app would see it in scope["client"]: the
        peer's, or, when uvicorn runs with proxy headers and trusts the peer
        (LIVEBLOG_FORWARDED_ALLOW_IPS), the one X-Forwarded-For names, picked by uvicorn's rule."""
        peer = self.transport.get_extra_info("peername")  # kept by the transport: no call
        address = str(peer[0]) if isinstance(peer, tuple | list) and peer else None
        proxy = self.app  # uvicorn puts its proxy-headers middleware outermost
        if not isinstance(proxy, ProxyHeadersMiddleware) or address not in proxy.trusted_hosts:
            return address
        forwarded = [value for name, value in self.headers if name == b"x-forwarded-for"]
        if not forwarded:
            return address
        host, _ = proxy.trusted_hosts.get_trusted_client_address(
            b", ".join(forwarded).decode("latin-1"))
        return host or address

    # Once a connection is a stream, nothing more it sends is a request.
    def data_received(self, data: bytes) -> None:
        if self.reader is None:
            super().data_received(data)

    def on_body(self, body: bytes) -> None:
        if self.reader is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.reader is None:
            super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.reader is not None and self.tailer is not None:
            self.tailer.unsubscribe(self.reader)
        if self.hub is not None:
            self.hub.release(self.client_address)
            self.hub = None  # released once, whatever calls follow
        super().connection_lost(exc)

    def shutdown(self) -> None:
        # uvicorn is shutting down (it calls this on every connection): the hub sends every
        # reader away with a retry: of its own, whichever path serves it. Usually done
        # already, on the signal itself (app.py); not when uvicorn is stopped otherwise.
        hub: Hub | None = self.app_state.get("hub")
        if hub is not None:
            hub.drain()
        if self.reader is not None:
            self.reader.end()  # the browser reconnects, to another process
            return
        super().shutdown()
