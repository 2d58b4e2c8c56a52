"""Soak: a long run of readers, posts, edits, retractions and reconnects (issue 8).

    .venv/bin/python bench/soak.py [--minutes 30] [--readers 200] [--write-docs]

Starts a durable redis-server (appendonly, appendfsync always) and `liveblog serve` (one
process), opens a blog, then for the given time:

- a newsroom writes about twice a second: mostly new entries, some edits, retractions and
  figures; every acknowledged write is remembered;
- readers hold streams and each reconnects after a random time (mean 60 s) with its
  Last-Event-ID, the way a phone changing networks does;
- every 30 s it samples the server's resident memory and open file descriptors, and
  Redis's connected clients and memory.

At the end it checks, from the blog's log (read as an editor): every acknowledged write is
there (lost: 0); each reader got every message of the log exactly once and in order
across all its reconnections (gaps, duplicates: 0; a resume the server could not place is
a snapshot, counted apart); and memory, descriptors and Redis clients are flat (first
sample after warm-up against the last). With --write-docs the figures replace the part
of docs/reliability.md between `soak:begin` and `soak:end`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.spike import Liveblog, descendants, rss_bytes

DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"
SLUG = "bench"


@dataclass
class Reader:
    number: int
    ids: list[str] = field(default_factory=list)  # every change message id, in order
    resumed_from: list[str | None] = field(default_factory=list)
    snapshots: int = 0
    connections: int = 0
    errors: int = 0
    duplicates: int = 0

    @property
    def last(self) -> str | None:
        return self.ids[-1] if self.ids else None


@dataclass
class Sample:
    at: float
    rss: int
    fds: int
    redis_clients: int
    redis_memory: int
    readers: int
    events: int  # writes acknowledged so far: the blog's state grows with them


@dataclass
class Newsroom:
    acknowledged: dict[str, str] = field(default_factory=dict)  # event id -> what
    entries: list[str] = field(default_factory=list)
    failed: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def position(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq)


async def read_stream(base: str, reader: Reader, stop: asyncio.Event, connected: set[int],
                      mean_life: float) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10, read=40)) as client:
        while not stop.is_set():
            headers = {"Accept": "text/event-stream"}
            if reader.last:
                headers["Last-Event-ID"] = reader.last.removeprefix("snapshot:")
            life = random.expovariate(1 / mean_life)
            reader.resumed_from.append(reader.last)
            reader.connections += 1
            try:
                async with asyncio.timeout(life):
                    async with client.stream("GET", f"/blogs/{SLUG}/stream",
                                             headers=headers) as response:
                        if response.status_code != 200:
                            reader.errors += 1
                            await asyncio.sleep(1)
                            continue
                        connected.add(reader.number)
                        await take(response, reader, stop)
            except (TimeoutError, httpx.TransportError):
                pass
            finally:
                connected.discard(reader.number)


async def take(response: httpx.Response, reader: Reader, stop: asyncio.Event) -> None:
    event_id = kind = None
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            kind = line[7:]
        elif line == "" and event_id is not None:
            if kind == "snapshot":
                reader.snapshots += 1
                # Everything up to the snapshot's id is in it; the next message follows it.
                reader.ids.append("snapshot:" + event_id)
            elif reader.last and not reader.last.startswith("snapshot:") and \
                    position(event_id) <= position(reader.last):
                reader.duplicates += 1
            else:
                reader.ids.append(event_id)
            event_id = kind = None
        if stop.is_set():
            return


async def write(base: str, token: str, newsroom: Newsroom, stop: asyncio.Event,
                interval: float) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        n = 0
        while not stop.is_set():
            n += 1
            roll = random.random()
            if roll < 0.1 and newsroom.entries:
                what, method, path = "edit", "PATCH", \
                    f"/api/blogs/{SLUG}/entries/{random.choice(newsroom.entries)}"
                body: dict[str, object] = {"body": f"Update {n}, corrected", "note": "soak"}
            elif roll < 0.15 and newsroom.entries:
                entry = newsroom.entries.pop(random.randrange(len(newsroom.entries)))
                what, method, path = "retract", "DELETE", f"/api/blogs/{SLUG}/entries/{entry}"
                body = {"reason": "soak"}
            elif roll < 0.3:
                what, method, path = "fact", "PUT", f"/api/blogs/{SLUG}/facts/deaths"
                body = {"label": "Deaths", "value": str(n), "numeric": n}
            else:
                what, method, path = "post", "POST", f"/api/blogs/{SLUG}/entries"
                body = {"body": f"Update {n}: **soak** test entry with some words in it."}
            try:
                response = await client.request(method, path, json=body)
            except httpx.TransportError:
                newsroom.failed += 1
                continue
            if response.is_success:
                data = response.json()
                event_id = data.get("event_id")
                if event_id:
                    newsroom.acknowledged[event_id] = what
                    newsroom.counts[what] = newsroom.counts.get(what, 0) + 1
                if what == "post":
                    newsroom.entries.append(data["entry"]["id"])
            else:
                newsroom.failed += 1
            await asyncio.sleep(interval)


async def sample(system: Liveblog, connected: set[int], samples: list[Sample],
                 newsroom: Newsroom, stop: asyncio.Event, every: float,
                 started: float) -> None:
    assert system.redis is not None
    while not stop.is_set():
        pids = system.pids()
        fds = open_files(pids)
        info = await redis_info(system.redis.url)
        samples.append(Sample(time.monotonic() - started, rss_bytes(pids), fds,
                              int(info["connected_clients"]), int(info["used_memory"]),
                              len(connected), len(newsroom.acknowledged)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def behind(readers: list[Reader], last: str) -> bool:
    return any((r.last or "").removeprefix("snapshot:") != last for r in readers)


def open_files(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{pid}/fd"))
    return total


async def redis_info(url: str) -> dict[str, str]:
    reader, writer = await asyncio.open_unix_connection(url.removeprefix("unix://"))
    writer.write(b"INFO\r\n")
    header = await reader.readline()
    body = await reader.readexactly(int(header[1:]) + 2)
    writer.close()
    return dict(line.split(":", 1) for line in body.decode().splitlines() if ":" in line)


def check(readers: list[Reader], log: list[dict[str, object]]) -> dict[str, int]:
    """Each reader's messages against the log: gaps and duplicates."""
    ids = [str(e["id"]) for e in log if e["type"] != "blog-opened"]
    index = {event_id: i for i, event_id in enumerate(ids)}
    gaps = duplicates = 0
    for reader in readers:
        duplicates += reader.duplicates
        expected: int | None = None  # index of the next message this reader must get
        for got in reader.ids:
            if got.startswith("snapshot:"):
                expected = index[got.removeprefix("snapshot:")] + 1 \
                    if got.removeprefix("snapshot:") in index else 0
                continue
            at = index[got]
            if expected is not None and at != expected:
                if at > expected:
                    gaps += at - expected
                else:
                    duplicates += 1
            expected = at + 1
        if expected is not None and expected < len(ids):
            gaps += len(ids) - expected  # it never got the last ones
    return {"gaps": gaps, "duplicates": duplicates}


async def soak(minutes: float, readers_n: int, interval: float, every: float,
               mean_life: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="lb-soak-") as tmp:
        system = Liveblog(Path(tmp) / "liveblog")
        await system.start()
        try:
            assert system.token is not None
            stop = asyncio.Event()
            connected: set[int] = set()
            readers = [Reader(i) for i in range(readers_n)]
            newsroom = Newsroom()
            samples: list[Sample] = []
            started = time.monotonic()
            tasks = [asyncio.create_task(read_stream(system.base, r, stop, connected,
                                                     mean_life)) for r in readers]
            writer = asyncio.create_task(write(system.base, system.token, newsroom, stop,
                                               interval))
            sampler = asyncio.create_task(sample(system, connected, samples, newsroom, stop,
                                                 every, started))
            await asyncio.sleep(minutes * 60)
            stop.set()
            await writer
            # Let every reader catch up with the last write, then hang up.
            log = await read_log(system.base, system.token)
            last = str(log[-1]["id"])
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and behind(readers, last):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, sampler, return_exceptions=True)
            found = {str(e["id"]) for e in log}
            lost = [i for i in newsroom.acknowledged if i not in found]
            checked = check(readers, log)
            warm = next((s for s in samples if s.at >= 120), samples[0])
            final = samples[-1]
            return {
                "minutes": minutes, "readers": readers_n, "events": len(log),
                "acknowledged": len(newsroom.acknowledged), "lost": len(lost),
                "failed_writes": newsroom.failed, "writes": newsroom.counts,
                "connections": sum(r.connections for r in readers),
                # A reader's first connection names no id and gets a snapshot by design.
                "snapshots": sum(r.snapshots for r in readers) - readers_n,
                "stream_errors": sum(r.errors for r in readers),
                "messages": sum(len(r.ids) for r in readers), **checked,
                "samples": [s.__dict__ for s in samples],
                "warm": warm.__dict__, "final": final.__dict__,
                "pids": len(descendants(system.process.pid)) if system.process else 0,
            }
        finally:
            system.stop()


async def read_log(base: str, token: str) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    after = None
    async with httpx.AsyncClient(base_url=base, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        while True:
            params = {"limit": "1000", **({"after": after} if after else {})}
            page = (await client.get(f"/api/blogs/{SLUG}/events", params=params)).json()
            events += page["events"]
            after = page.get("next")
            if not after:
                return events


def report(result: dict[str, object]) -> str:
    mib = 1024 * 1024
    warm, final = result["warm"], result["final"]
    assert isinstance(warm, dict) and isinstance(final, dict)
    lines = [
        f"`bench/soak.py --minutes {result['minutes']} --readers {result['readers']}`, "
        f"one `liveblog serve` process, durable Redis:",
        "",
        "| what | figure |",
        "|---|---|",
        f"| events in the log | {result['events']:,} |",
        f"| writes acknowledged / lost | {result['acknowledged']:,} / {result['lost']} |",
        f"| writes by kind | {json.dumps(result['writes'])} |",
        f"| writes refused or failed | {result['failed_writes']} |",
        f"| reader connections (reconnects included) | {result['connections']:,} |",
        f"| messages received | {result['messages']:,} |",
        f"| gaps / duplicates | {result['gaps']} / {result['duplicates']} |",
        f"| resumes answered with a snapshot | {result['snapshots']:,} |",
        f"| stream errors (non-200) | {result['stream_errors']} |",
        "",
        "| at | writes so far | server RSS | server fds | Redis clients | Redis memory "
        "| readers connected |",
        "|---|---|---|---|---|---|---|",
    ]
    samples = result["samples"]
    assert isinstance(samples, list)
    step = max(len(samples) // 10, 1)
    for s in [*samples[::step][:-1], samples[-1]]:
        lines.append(f"| {s['at'] / 60:.1f} min | {s['events']:,} | {s['rss'] / mib:.1f} MiB | "
                     f"{s['fds']} | {s['redis_clients']} | {s['redis_memory'] / mib:.2f} MiB | "
                     f"{s['readers']} |")
    return "\n".join(lines)


def write_docs(text: str) -> None:
    doc = DOC.read_text()
    doc = re.sub(r"(<!-- soak:begin -->\n).*?(<!-- soak:end -->)",
                 lambda m: m.group(1) + text + "\n" + m.group(2), doc, flags=re.S)
    DOC.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between writes")
    parser.add_argument("--sample", type=float, default=30, help="seconds between samples")
    parser.add_argument("--life", type=float, default=60, help="mean seconds per connection")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    result = asyncio.run(soak(args.minutes, args.readers, args.interval, args.sample,
                              args.life))
    text = report(result)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.write_docs:
        write_docs(text)
    ok = result["lost"] == 0 and result["gaps"] == 0 and result["duplicates"] == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
