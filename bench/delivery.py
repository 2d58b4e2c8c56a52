"""How long from a reporter's POST to every open reader having the update.

    .venv/bin/python bench/delivery.py --readers 1000 --posts 20

Starts a redis-server (appendfsync always, as the embedded default) and `liveblog serve` in
a child process, opens N reader streams (plain sockets, one client process), then posts
updates one at a time, a second apart, and times from just before each POST is sent until
the update's text has arrived on each reader's socket. Prints percentiles over all
(reader, update) pairs. Client and server share this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent.parent))

from tests.conftest import create_tokens, free_socket, wait_until


async def reader(port: int, marks: dict[int, float], got: list[dict[int, float]],
                 ready: asyncio.Event, count: list[int], total: int) -> None:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET /blogs/bench/stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
    await w.drain()
    seen: dict[int, float] = {}
    got.append(seen)
    buffer = b""
    first = True
    while True:
        chunk = await r.read(65536)
        if not chunk:
            return
        now = time.perf_counter()
        buffer = buffer[-64:] + chunk
        if first and b"event: snapshot" in buffer:
            first = False
            count[0] += 1
            if count[0] == total:
                ready.set()
        start = 0
        while (at := buffer.find(b"bench-mark-", start)) != -1:
            end = buffer.find(b"-end", at)
            if end == -1:
                break
            n = int(buffer[at + 11:end])
            seen.setdefault(n, now)
            start = end


async def main(readers: int, posts: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lb-bench-"))
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "LIVEBLOG_DATA_DIR": str(tmp / "var"), "LIVEBLOG_PORT": str(port),
           "LIVEBLOG_READER_QUEUE": "1024"}
    env.pop("LIVEBLOG_REDIS_URL", None)
    server = subprocess.Popen(  # noqa: ASYNC220 - setup, before any timing
        [sys.executable, "-m", "liveblog", "serve"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _up(base), timeout=30, what="the server")
        tokens = create_tokens(f"unix://{tmp / 'var' / 'redis.sock'}")
        auth = {"Authorization": f"Bearer {tokens.editor}"}
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=30) as client:
            await client.post("/api/blogs", json={"slug": "bench", "title": "Bench"})
            marks: dict[int, float] = {}
            got: list[dict[int, float]] = []
            ready = asyncio.Event()
            count = [0]
            tasks = [asyncio.create_task(reader(port, marks, got, ready, count, readers))
                     for _ in range(readers)]
            await asyncio.wait_for(ready.wait(), timeout=120)
            for n in range(posts):
                marks[n] = time.perf_counter()
                response = await client.post("/api/blogs/bench/entries",
                                              json={"body": f"Update bench-mark-{n}-end"})
                assert response.status_code == 201
                await asyncio.sleep(1.0)
            await asyncio.sleep(2.0)
            for task in tasks:
                task.cancel()
        latencies = [seen[n] - marks[n] for seen in got for n in marks if n in seen]
        missing = readers * posts - len(latencies)
        latencies.sort()

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

        print(f"readers={readers} posts={posts} deliveries={len(latencies)} missing={missing}")
        print(f"p50={pct(50):.1f} ms  p90={pct(90):.1f} ms  p99={pct(99):.1f} ms  "
              f"max={latencies[-1] * 1000:.1f} ms  mean={statistics.mean(latencies) * 1000:.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=30)


def _up(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.readers, args.posts))
