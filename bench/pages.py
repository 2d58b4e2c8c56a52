"""How long the reader page and the state API take on a big blog, next to a health check.

    .venv/bin/python bench/pages.py [--entries 5000] [--requests 2000] [--concurrency 4]

Starts its own redis-server, writes a blog of N entries (with a few figures) into it, and
starts `liveblog serve` (one uvicorn worker) on it. One client process then sends GET
/blogs/{slug}, GET /api/blogs/{slug} and GET /healthz over keep-alive connections (raw
HTTP/1.1 on asyncio, so the client costs little of the two cores it shares with the
server), in interleaved rounds so that noise from other work on the machine falls on all
three alike, and reports p50/p99 of each.

Target (issue 7): the page and the API at p99 <= 3x the p99 of /healthz, i.e. the work per
request does not grow with the number of entries.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.fold import SLUG, Row, redis_server, story, table, write_log
from liveblog.domain.events import FactUpdated
from liveblog.store import Store

_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
               request: bytes) -> None:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected answer: {head[:200]!r}")
    length = _LENGTH.search(head)
    if length is None:
        raise RuntimeError("no content-length in the answer")
    await reader.readexactly(int(length.group(1)))


async def _round(port: int, path: str, requests: int, concurrency: int) -> list[float]:
    request = (f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: */*\r\n\r\n").encode()
    times: list[float] = []
    left = [requests]

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while left[0] > 0:
                left[0] -= 1
                started = time.perf_counter()
                await _get(reader, writer, request)
                times.append(time.perf_counter() - started)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return times


async def _measure(port: int, paths: list[str], requests: int,
                   concurrency: int) -> dict[str, list[float]]:
    for path in paths:  # warm up: caches, the first fold, connection setup
        await _round(port, path, 100, concurrency)
    times: dict[str, list[float]] = {path: [] for path in paths}
    rounds = 5
    for _ in range(rounds):
        for path in paths:
            times[path] += await _round(port, path, requests // rounds, concurrency)
    return times


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _write_blog(url: str, entries: int) -> None:
    log = story(entries + 1, posts_only=True)
    # A few figures, so the page shows what a real blog shows.
    for n in range(30):
        log.append((FactUpdated(key="deaths", label="Deaths", value=f"at least {n}",
                                numeric=n, source="ministry"), "rania", "reporter"))
    store = Store.from_url(url)
    try:
        await write_log(store.redis, log)
    finally:
        await store.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("liveblog serve exited")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("liveblog serve did not answer")


def run(entries: int = 5000, requests: int = 2000, concurrency: int = 4) -> list[Row]:
    page, api, health = f"/blogs/{SLUG}", f"/api/blogs/{SLUG}", "/healthz"
    with redis_server() as url, tempfile.TemporaryDirectory(prefix="lb-pages-") as tmp:
        asyncio.run(_write_blog(url, entries))
        port = _free_port()
        env = {**os.environ, "LIVEBLOG_REDIS_URL": url, "LIVEBLOG_PORT": str(port),
               "LIVEBLOG_HOST": "127.0.0.1", "LIVEBLOG_DATA_DIR": tmp,
               # The page timings are the point here, not a Redis that keeps them.
               "LIVEBLOG_DURABILITY": "warn"}
        server = subprocess.Popen([sys.executable, "-m", "liveblog", "serve"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_up(f"http://127.0.0.1:{port}", server)
            times = asyncio.run(_measure(port, [page, api, health], requests, concurrency))
        finally:
            server.terminate()
            server.wait(timeout=30)
    ms = 1000
    rows: list[Row] = []
    for path in (page, api, health):
        p50, p99 = _pct(times[path], 50), _pct(times[path], 99)
        rows.append((f"GET {path} ({entries:,} entries): p50 / p99",
                     f"{p50 * ms:.1f} / {p99 * ms:.1f} ms", "", True))
    base = _pct(times[health], 99)
    for name, path in (("page", page), ("API", api)):
        ratio = _pct(times[path], 99) / base
        rows.append((f"  {name} p99 / healthz p99", f"{ratio:.2f}x", "<= 3x", ratio <= 3))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    rows = run(args.entries, args.requests, args.concurrency)
    print(table(rows))
    sys.exit(0 if all(ok for *_, ok in rows) else 1)
