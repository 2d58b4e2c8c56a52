"""The load generator of bench/spike.py: one process holding many SSE readers.

    .venv/bin/python bench/loadgen.py HOST PORT PATH COUNT

Plain asyncio protocols (uvloop when installed) speaking minimal HTTP/1.1; no HTTP library.
It is driven by one JSON command per line on stdin and answers one JSON line on stdout:

  {"cmd": "connect", "concurrency": C}   open COUNT readers, at most C handshakes at a time;
                                         a reader counts as connected at the first body
                                         bytes after a 200 head (the server's first message
                                         or comment, sent once it has subscribed the reader)
  {"cmd": "status"}                      per mark: readers that have it, last receipt time
  {"cmd": "order"}                       the order of marks most readers received
  {"cmd": "report", "marks": {n: t}, "order": [n, ...], "out": PATH}
                                         latencies (receipt - t) of every (reader, mark)
                                         pair received, as float64 seconds, into PATH;
                                         counts of delivered, missing, gaps, duplicates
  {"cmd": "disconnect"}                  close every reader (they keep their last id)
  {"cmd": "reconnect", "concurrency": C} reopen every reader with Last-Event-ID
  {"cmd": "quit"}

Updates are recognised by the text `bench-mark-N-end` in a message (each distinct N once
per message, so a body repeated as HTML counts once). Every reader must get the marks in the
stream's order (the order most readers saw: posts may overlap in a burst), each exactly
once: a mark that does not follow the previous one in that order counts a gap (as does a
missing tail), a mark seen before counts a duplicate.
Receipt time is time.perf_counter() when the bytes come off the socket (CLOCK_MONOTONIC,
comparable with the poster's clock in another process on this machine). A stream the
server closes is reopened with Last-Event-ID after 100 ms, as EventSource does (counted).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import json
import re
import resource
import sys
import time

MARK = re.compile(rb"bench-mark-(\d+)-end")


class Generator:
    def __init__(self, host: str, port: int, path: str, count: int) -> None:
        self.host = host
        self.port = port
        self.path = path
        self.readers = [Reader(self, i) for i in range(count)]
        self.mark_count: list[int] = []  # per mark: readers that have it
        self.mark_last: list[float] = []  # per mark: when the last of them got it
        self.closing = False
        self.reconnects = 0
        self.errors: dict[str, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def request(self, last_id: bytes | None) -> bytes:
        resume = b"Last-Event-ID: " + last_id + b"\r\n" if last_id else b""
        return (b"GET " + self.path.encode() + b" HTTP/1.1\r\nHost: bench\r\n"
                b"Accept: text/event-stream\r\nCache-Control: no-cache\r\n" + resume + b"\r\n")

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    async def open_all(self, concurrency: int) -> dict[str, object]:
        self.closing = False
        gate = asyncio.Semaphore(concurrency)
        started = time.perf_counter()

        async def one(reader: Reader) -> None:
            async with gate:
                await reader.open(seconds=60)

        await asyncio.gather(*(one(reader) for reader in self.readers))
        ended = time.perf_counter()
        connected = sum(1 for reader in self.readers if reader.connected)
        return {"connected": connected, "started": started, "ended": ended,
                "errors": self.errors}

    def close_all(self) -> None:
        self.closing = True
        for reader in self.readers:
            reader.close()

    def status(self) -> dict[str, object]:
        return {"count": {m: n for m, n in enumerate(self.mark_count) if n},
                "last": {m: t for m, t in enumerate(self.mark_last) if t},
                "open": sum(1 for reader in self.readers if reader.connected),
                "reconnects": self.reconnects}

    def order(self) -> dict[str, object]:
        """The order most of these readers got the marks in, and how many got exactly it."""
        orders: dict[bytes, int] = {}
        for reader in self.readers:
            key = reader.marks.tobytes()
            orders[key] = orders.get(key, 0) + 1
        best = max(orders, key=lambda key: (len(key), orders[key]), default=b"")
        return {"order": array.array("q", best).tolist(), "readers": orders.get(best, 0)}

    def report(self, marks: dict[int, float], order: list[int], out: str) -> dict[str, object]:
        """Latencies into `out`; a gap is a mark that is not the one after the previous in
        `order` (the stream's order), a duplicate one that came again."""
        position = {mark: i for i, mark in enumerate(order)}
        latencies = array.array("d")
        delivered = gaps = duplicates = 0
        for reader in self.readers:
            duplicates += reader.duplicates
            previous = -1
            for mark, at in zip(reader.marks, reader.times, strict=True):
                here = position.get(mark, -2)
                if here != previous + 1:
                    gaps += 1
                previous = here
                if mark in marks:
                    latencies.append(at - marks[mark])
                    delivered += 1
            if reader.marks and previous != len(order) - 1:
                gaps += 1  # the last ones never came
        with open(out, "wb") as file:
            latencies.tofile(file)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"delivered": delivered, "missing": len(self.readers) * len(marks) - delivered,
                "gaps": gaps, "duplicates": duplicates, "reconnects": self.reconnects,
                "cpu": usage.ru_utime + usage.ru_stime, "errors": self.errors}


class Reader(asyncio.Protocol):
    def __init__(self, generator: Generator, index: int) -> None:
        self.generator = generator
        self.index = index
        self.transport: asyncio.Transport | None = None
        self.connected = False
        self.ready: asyncio.Future[bool] | None = None
        self.head = b""
        self.in_head = True
        self.buffer = b""
        self.separator: bytes | None = None
        self.last_id: bytes | None = None
        self.seen = bytearray()
        self.marks = array.array("q")
        self.times = array.array("d")
        self.duplicates = 0

    async def open(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()
        self.head, self.in_head, self.buffer = b"", True, b""
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: self, self.generator.host, self.generator.port),
                seconds)
            await asyncio.wait_for(self.ready, seconds)
        except (OSError, TimeoutError) as exc:
            self.generator.error(type(exc).__name__)
            self.close()

    def close(self) -> None:
        self.connected = False
        if self.transport is not None:
            self.transport.abort()
            self.transport = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        transport.write(self.generator.request(self.last_id))

    def connection_lost(self, exc: Exception | None) -> None:
        was = self.connected
        self.connected = False
        self.transport = None
        if self.ready is not None and not self.ready.done():
            self.ready.set_result(False)
        if was and not self.generator.closing:
            # The server ended the stream: come back with Last-Event-ID, like EventSource.
            self.generator.reconnects += 1
            asyncio.get_running_loop().call_later(0.1, self._reopen)

    def _reopen(self) -> None:
        if not self.generator.closing:
            task = asyncio.ensure_future(self.open(seconds=60))
            self.generator.tasks.add(task)
            task.add_done_callback(self.generator.tasks.discard)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if self.in_head:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end == -1:
                return
            data = self.head[end + 4:]
            if not self.head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
                self.generator.error("status " + self.head[9:12].decode("latin-1"))
                self.close()
                if self.ready is not None and not self.ready.done():
                    self.ready.set_result(False)
                return
            self.in_head = False
            self.head = b""
            if not data:
                return
        if not self.connected:
            self.connected = True
            if self.ready is not None and not self.ready.done():
                self.ready.set_result(True)
        buffer = self.buffer + data if self.buffer else data
        separator = self.separator
        if separator is None:
            # Messages end in a blank line: "\n\n", or "\r\n\r\n" (sse-starlette's style).
            lf, crlf = buffer.find(b"\n\n"), buffer.find(b"\r\n\r\n")
            if lf == crlf == -1:
                self.buffer = buffer
                return
            separator = self.separator = b"\n\n" if crlf == -1 or -1 < lf < crlf \
                else b"\r\n\r\n"
        end = buffer.rfind(separator)
        if end == -1:
            self.buffer = buffer
            return
        self.buffer = buffer[end + len(separator):]
        done = buffer[:end]
        if b"bench-mark-" in done:
            for part in done.split(separator):
                if b"bench-mark-" in part:
                    found = MARK.findall(part)
                    if found.count(found[0]) == len(found):  # one update (its body, its HTML)
                        self.receive(int(found[0]), now)
                    else:  # a snapshot, carrying many
                        for mark in sorted({int(m) for m in found}):
                            self.receive(mark, now)
        at = done.rfind(b"\nid:")
        if at != -1 or done.startswith(b"id:"):
            at += 1
            line_end = done.find(b"\n", at)
            self.last_id = done[at + 3:line_end if line_end != -1 else len(done)].strip()

    def receive(self, mark: int, now: float) -> None:
        seen = self.seen
        if mark >= len(seen):
            seen.extend(bytes(mark - len(seen) + 64))
        if seen[mark]:
            self.duplicates += 1
            return
        seen[mark] = 1
        self.marks.append(mark)
        self.times.append(now)
        generator = self.generator
        counts = generator.mark_count
        if mark >= len(counts):
            counts.extend([0] * (mark - len(counts) + 64))
            generator.mark_last.extend([0.0] * (mark - len(generator.mark_last) + 64))
        counts[mark] += 1
        generator.mark_last[mark] = now


async def main(host: str, port: int, path: str, count: int) -> None:
    generator = Generator(host, port, path, count)
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)

    def answer(value: object) -> None:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    while line := await commands.readline():
        command = json.loads(line)
        match command["cmd"]:
            case "connect" | "reconnect":
                answer(await generator.open_all(command["concurrency"]))
            case "status":
                answer(generator.status())
            case "report":
                marks = {int(n): t for n, t in command["marks"].items()}
                answer(generator.report(marks, command["order"], command["out"]))
            case "order":
                answer(generator.order())
            case "disconnect":
                generator.close_all()
                await asyncio.sleep(0)
                answer({"closed": True})
            case "quit":
                generator.close_all()
                answer({"bye": True})
                return


def run() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    host, port, path, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    runner = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    runner(main(host, port, path, count))


if __name__ == "__main__":
    run()
