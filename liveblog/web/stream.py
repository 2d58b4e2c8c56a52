"""GET /blogs/{slug}/stream: the reader's server-sent events, as a plain ASGI app.

The first message is a snapshot, unless the reader names (Last-Event-ID, or last_event_id
for a page's first connection) an event this process can place, in which case it gets
exactly the changes after it. Then every change, as the blog's tailer publishes it.

This is the hot path of the whole product (tens of thousands of readers, every change to
each of them), so it is built for it rather than on a general streaming response:

- The app sends the headers and the first messages through ASGI, registers the reader
  with the tailer and then only waits for the disconnect. It runs no task, timer or queue
  per reader: the tailer writes each message to every reader in one pass, and the hub's
  one heartbeat covers every idle stream.
- On uvicorn's HTTP/1.1 protocol (what `liveblog serve` runs), a reader is its
  connection's transport: the tailer writes each message, already framed as an HTTP
  chunk, straight to it. A reader whose unsent bytes have piled up for more messages than
  LIVEBLOG_READER_QUEUE allows is cut off (its connection is aborted; the browser resumes
  from its last id), so one slow phone never delays or bloats the others.
- On any other ASGI server, each message goes through the ASGI `send`, driven one step by
  hand: a send that cannot complete at once means the reader's transport is paused, and
  that reader is cut off the same way.

It is mounted in front of Starlette's router (see app.py) because Starlette's middleware
wraps `send`, and the transport is only reachable through the server's own `send`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from urllib.parse import parse_qs

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

# The fast path needs uvicorn's httptools protocol (uvicorn[standard]); any other server
# or protocol gets the ASGI path.
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from liveblog.errors import Overloaded, Problem, TailerStopped
from liveblog.live import RETRY_AFTER, Hub, Subscription, Tailer, http_chunk
from liveblog.web.api import slug_from
from liveblog.web.headers import with_security_headers
from liveblog.web.problems import on_http_exception, on_problem, on_unexpected

PATH = re.compile(r"^/blogs/([^/]+)/stream$")
# How long a browser waits before reconnecting: 1 to 4 s, different for every reader, so a
# restart does not bring every reader back in the same instant.
RETRY_MS = (1000, 4000)
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    # nginx (and proxies that follow it) must pass each message on at once.
    (b"x-accel-buffering", b"no"),
    (b"x-content-type-options", b"nosniff"),
]
# Chosen from, rather than formatted for every connection.
_RETRY_LINES = [b"retry: %d\n\n" % ms for ms in range(RETRY_MS[0], RETRY_MS[1] + 1, 25)]
# The most bytes that may wait unsent for one reader (beyond its opening): the messages
# limit (LIVEBLOG_READER_QUEUE) alone let a reader that stopped reading hold 256 messages,
# 10 MB of 40 kB ones. 1 MiB is minutes of a busy blog for a slow phone; a reader that far
# behind is cut off and resumes from its last id. 10,000 stalled readers hold 10 GiB at
# worst, 512 MiB with a usual blog's 2 kB messages (the messages limit cuts first then).
READER_BUFFER_BYTES = 1024 * 1024
# How long a stream we end (its tailer stopped or reloaded, the server shutting down) may
# take to send what still waits for its reader before the connection is aborted: close()
# alone waits for ever for a reader that stopped reading, and that reader would keep its
# socket, up to READER_BUFFER_BYTES and its stream slot. A reader aborted here resumes from
# its last id, as one cut off does.
END_GRACE_SECONDS = 5.0
_START = {"type": "http.response.start", "status": 200, "headers": HEADERS}
_END = {"type": "http.response.body", "body": b"", "more_body": False}


class SocketReader(Subscription):
    """A reader on uvicorn's HTTP/1.1 protocol: each message goes straight to its transport
    (here, or in protocol.py for a connection that never reaches the ASGI app)."""

    __slots__ = ("behind", "chunked", "most_buffered", "opening", "transport")

    def __init__(self, limit: int, transport: asyncio.Transport, *, chunked: bool) -> None:
        super().__init__(limit)
        self.transport = transport
        # Whether the response is framed as HTTP/1.1 chunks (uvicorn chooses when it sends
        # the headers; protocol.py always does).
        self.chunked = chunked
        self.behind = 0
        # The first write's size (its snapshot may be large): allowed on top of
        # READER_BUFFER_BYTES, or a slow phone would be cut off before its snapshot is
        # through, reconnect, get the snapshot again, and never get further.
        self.opening = 0
        # The most bytes kept waiting for it (for tests and metrics): past the limits, the
        # write that went over is dropped with the rest when the tailer cuts it off.
        self.most_buffered = 0

    def offer(self, message: bytes, chunk: bytes) -> bool:
        transport = self.transport
        data = chunk if self.chunked else message
        try:
            transport.write(data)
        except RuntimeError:  # the connection is already closed; the handler will notice
            return True
        if not self.opening:
            self.opening = len(data)
        # The kernel took what it could; bytes it did not take wait in the transport. A
        # reader is behind by one more message each time something is still waiting, and
        # too far behind past either limit (its cut-off drops what waits).
        waiting = transport.get_write_buffer_size()
        if waiting:
            self.behind += 1
            if self.behind > self.limit or waiting > READER_BUFFER_BYTES + self.opening:
                return False  # cut off at once, and what waits with it
            self.most_buffered = max(self.most_buffered, waiting)
            return True
        self.behind = 0
        return True

    def end(self) -> None:
        if self.chunked and not self.transport.is_closing():
            self.transport.write(b"0\r\n\r\n")
        transport = self.transport
        transport.close()  # after what is buffered; the handler then sees a disconnect
        if transport.get_write_buffer_size():
            asyncio.get_running_loop().call_later(END_GRACE_SECONDS, transport.abort)

    def cut_off(self) -> None:
        self.transport.abort()  # drop what is buffered: the reader resumes from its last id


class SendReader(Subscription):
    """A reader on any ASGI server: messages go through `send`, which must not wait."""

    __slots__ = ("done", "send")

    def __init__(self, limit: int, send: Send) -> None:
        super().__init__(limit)
        self.send = send
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def offer(self, message: bytes, chunk: bytes) -> bool:
        step = self.send({"type": "http.response.body", "body": message, "more_body": True})
        try:
            step.send(None)  # type: ignore[attr-defined]
        except StopIteration:
            return True  # written without waiting
        # The server is waiting for the reader's socket to drain: it is too slow.
        step.close()  # type: ignore[attr-defined]
        return False

    def end(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    cut_off = end


async def stream(scope: Scope, receive: Receive, send: Send) -> None:
    hub: Hub = scope["state"]["hub"]
    # The peer's address, or, when uvicorn trusts the peer as a proxy (its proxy_headers
    # and LIVEBLOG_FORWARDED_ALLOW_IPS), the client's address from X-Forwarded-For: uvicorn's
    # middleware rewrote it before we got here. protocol.py works it out the same way.
    client = scope.get("client")
    address = client[0] if client else None
    try:
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(405, headers={"Allow": "GET, HEAD"})
        hub.admit(address)  # before anything is loaded: a refused stream costs nothing
    except Exception as exc:
        await (await _error_response(Request(scope), exc))(
            scope, receive, with_security_headers(scope, send))
        return
    try:
        await _stream(hub, scope, receive, send, address)
    finally:
        hub.release(address)


async def _stream(hub: Hub, scope: Scope, receive: Receive, send: Send,
                  address: str | None) -> None:
    if hub.draining:
        await _send_away(hub, send)
        return
    try:
        match = PATH.match(scope["path"])
        assert match is not None, "app.py routes only stream paths here"
        scope["path_params"] = {"slug": match.group(1)}
        slug = slug_from(Request(scope))
        reconnecting_from = last_event_id_header(scope["headers"])
        last_id = reconnecting_from or query_value(scope.get("query_string", b""),
                                                   "last_event_id")
        tailer = await _running_tailer(hub, slug, last_id, address)
    except Exception as exc:
        await (await _error_response(Request(scope), exc))(
            scope, receive, with_security_headers(scope, send))
        return
    if tailer.is_over(reconnecting_from):
        # 204 is how a server tells EventSource to stop reconnecting: the blog has ended
        # and this reader has everything. A page's first connection (last_event_id in the
        # query) is still served, so a page opened after the end hears a late retraction.
        await Response(status_code=204, headers={"Cache-Control": "no-store"})(
            scope, receive, with_security_headers(scope, send))
        return
    await send(_START)
    if scope["method"] == "HEAD":
        await send(_END)  # a HEAD must not leave a reader behind
        return
    # On an ended blog, a stream that is open stays open: an editor may still retract or
    # correct there, and open pages must see it. Only a reader who reconnects with
    # everything already gets told to stop (204, above).
    cycle = getattr(send, "__self__", None)
    if isinstance(cycle, RequestResponseCycle):
        reader = SocketReader(tailer.queue_size, cycle.transport,
                              chunked=bool(cycle.chunked_encoding))
        await _serve_socket(tailer, last_id, reader, receive, send)
    else:
        await _serve_send(tailer, last_id, SendReader(tailer.queue_size, send), receive, send)


async def _send_away(hub: Hub, send: Send) -> None:
    """A reader arriving while the server drains (between SIGTERM and uvicorn closing its
    sockets): told, as the readers it had were, to reconnect after a random delay, which
    brings it to another server. A 503 would make EventSource give up instead."""
    await send(_START)
    retry = b"retry: %d\n\n" % random.randint(*hub.drain_retry_ms)
    await send({"type": "http.response.body", "body": retry, "more_body": True})
    await send(_END)


async def _running_tailer(hub: Hub, slug: str, last_id: str | None,
                          address: str | None) -> Tailer:
    """The blog's tailer, caught up with the reader, and still running after the awaits:
    while this request awaited (the blog's load, a catch-up), the hub may have stopped the
    tailer to make room for another blog's (it had no readers yet); joining it would leave
    the reader with a 200 and then silence. Then it asks the hub again, a few times."""
    for _ in range(3):
        tailer = await hub.tailer(slug, address)
        if tailer.is_ahead(last_id):
            # The reader saw events (through another process) that we have not read yet.
            await tailer.catch_up()
        if tailer.running:
            return tailer
    raise Overloaded("this server is busy starting blogs for other readers; retry later",
                     random.randint(*RETRY_AFTER))


def _start(tailer: Tailer, last_id: str | None, reader: Subscription) -> bool:
    """Subscribe and offer the first messages, with nothing awaited in between."""
    try:
        _, first = tailer.subscribe(last_id, reader)
    except TailerStopped:
        # Stopped while the headers went out: end the stream; the browser reconnects.
        return False
    opening = opening_of(first)
    if reader.offer(opening, http_chunk(opening)):
        return True
    tailer.unsubscribe(reader)
    return False


async def _serve_socket(tailer: Tailer, last_id: str | None, reader: SocketReader,
                        receive: Receive, send: Send) -> None:
    if not _start(tailer, last_id, reader):
        reader.cut_off()
    try:
        # The tailer writes; this only waits for the connection to end (the reader left,
        # or the tailer cut it off or ended it, which closes the transport).
        while (await receive())["type"] != "http.disconnect":
            pass
    except asyncio.CancelledError:
        # The server is shutting down and has run out of patience: end the response
        # properly (the browser reconnects to another process) instead of dying mid-way.
        if not _finish_now(send):
            reader.cut_off()
    finally:
        tailer.unsubscribe(reader)


def _finish_now(send: Send) -> bool:
    """End the response if that needs no waiting; False if it would have to wait."""
    step = send(_END)
    try:
        step.send(None)  # type: ignore[attr-defined]
    except StopIteration:
        return True
    except Exception:  # the connection is going away whatever happens here
        return False
    step.close()  # type: ignore[attr-defined]
    return False


async def _serve_send(tailer: Tailer, last_id: str | None, reader: SendReader,
                      receive: Receive, send: Send) -> None:
    if not _start(tailer, last_id, reader):
        reader.cut_off()

    async def disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    # Off uvicorn's fast path, ending a stream from the tailer's side needs a way to wake
    # this handler: one extra task per reader.
    watcher = asyncio.ensure_future(disconnect())
    try:
        await asyncio.wait([watcher, reader.done], return_when=asyncio.FIRST_COMPLETED)
        if not watcher.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(send(_END), 5)
    except asyncio.CancelledError:
        _finish_now(send)  # shutting down, as above
    finally:
        tailer.unsubscribe(reader)
        watcher.cancel()


async def _error_response(request: Request, exc: Exception) -> Response:
    if isinstance(exc, Problem):
        return await on_problem(request, exc)
    if isinstance(exc, HTTPException):
        return await on_http_exception(request, exc)
    return await on_unexpected(request, exc)


def opening_of(first: list[bytes]) -> bytes:
    """What a new stream starts with: its retry line, then its first messages."""
    return random.choice(_RETRY_LINES) + b"".join(first)


def last_event_id_header(headers: list[tuple[bytes, bytes]]) -> str | None:
    for key, value in headers:
        if key == b"last-event-id":
            return value.decode("latin-1")
    return None


def query_value(query: bytes, name: str) -> str | None:
    if not query:
        return None
    values = parse_qs(query.decode("latin-1")).get(name)
    return values[0] if values else None
