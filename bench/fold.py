"""How long a blog's state takes to build from its log, and a past state to come back.

    .venv/bin/python bench/fold.py [--events 100000]

Starts its own redis-server (private Unix socket in a temp dir, no persistence), writes a
story of N events to one blog (mostly entries of a few sentences, with edits, retractions,
pins, figures updated thousands of times and a few headline changes), then measures in
the same run:

- read+decode: every event read from Redis and decoded (Store.read_all);
- full fold: the same plus the fold, as a fresh process loads the blog (Service.blog);
- state at a version: Service.blog_at at 50 random versions (what `state?at=` and replay
  frames call), the first call on a fresh process reported apart from the rest.

Targets (issue 7): full fold <= 3x read+decode; state at a version p99 <= 1/10 of a full
fold. Timings are the median of 3 runs; the machine is shared, so ratios are what counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).parent.parent))

from liveblog.checkpoints import Checkpoints
from liveblog.domain.events import (
    BlogOpened,
    BlogUpdated,
    EntryEdited,
    EntryPosted,
    EntryRetracted,
    Event,
    FactUpdated,
    PinChanged,
    event_encoder,
    kind,
)
from liveblog.domain.state import fold
from liveblog.embedded import find_redis_server
from liveblog.service import Service
from liveblog.store import Store

SLUG = "bench"
T0 = datetime(2026, 5, 23, 6, 0, tzinfo=UTC)
Row = tuple[str, str, str, bool]
_TEXT = """the a of in at near after before more than police said officials witnesses
reported blast bus station hospital injured dead civilians city center road closed
ambulances arrived smoke rising residents fled army statement confirmed second explosion
minutes later casualties rose according to ministry health local sources footage shows
damage buildings windows shattered"""
WORDS = _TEXT.split()


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A private redis-server on a Unix socket in a temp dir; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="lb-fold-") as directory:
        sock = Path(directory) / "redis.sock"
        process = subprocess.Popen(
            [find_redis_server(), "--port", "0", "--unixsocket", str(sock),
             "--dir", directory, "--save", "", "--appendonly", "no",
             "--logfile", str(Path(directory) / "redis.log")],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    with redis.Redis(unix_socket_path=str(sock)) as client:
                        client.ping()
                    break
                except (redis.exceptions.ConnectionError, OSError):
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.02)
            yield f"unix://{sock}"
        finally:
            process.terminate()
            process.wait(timeout=10)


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
    return " ".join(words).capitalize() + "."


def _body(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(2, 4)))


def story(events: int, *, seed: int = 7, posts_only: bool = False,
          ) -> list[tuple[Event, str, str]]:
    """A realistic log: (event, actor, role) in order, starting with blog-opened.

    About 82% entries posted (5% of them key events with a title), 7% edits, 2%
    retractions, 1% pin changes, 7% figure updates (4 figures, so each is updated
    thousands of times in a long log), 1% headline changes. posts_only: entries only."""
    rng = random.Random(seed)
    log: list[tuple[Event, str, str]] = [
        (BlogOpened(slug=SLUG, title="Blasts in Tartus", description="Live"), "ed", "editor")
    ]
    live: list[str] = []
    reporters = ("rania", "omar", "lina", "karim")
    figures = (("deaths", "Deaths"), ("injured", "Injured"), ("missing", "Missing"),
               ("displaced", "Displaced"))
    counts = dict.fromkeys((key for key, _ in figures), 0)
    while len(log) < events:
        roll = 0.0 if posts_only else rng.random()
        reporter = rng.choice(reporters)
        event: Event
        if roll < 0.82 or len(live) < 10:
            entry_id = f"{len(log):08x}"
            key = rng.random() < 0.05
            event = EntryPosted(entry_id=entry_id, body=_body(rng),
                                title=_sentence(rng)[:60] if key else None, key_event=key)
            live.append(entry_id)
            log.append((event, reporter, "reporter"))
        elif roll < 0.89:
            event = EntryEdited(entry_id=rng.choice(live), body=_body(rng),
                                note="corrected the figures")
            log.append((event, "ed", "editor"))
        elif roll < 0.91:
            gone = live.pop(rng.randrange(len(live)))
            log.append((EntryRetracted(entry_id=gone, reason="duplicate"), "ed", "editor"))
        elif roll < 0.92:
            log.append((PinChanged(entry_id=rng.choice(live)), "ed", "editor"))
        elif roll < 0.99:
            key, label = rng.choice(figures)
            counts[key] += 1
            event = FactUpdated(key=key, label=label, value=f"at least {counts[key]}",
                                numeric=counts[key], source="ministry")
            log.append((event, reporter, "reporter"))
        else:
            log.append((BlogUpdated(title=f"Blasts in Tartus: {_sentence(rng)[:40]}"),
                        "ed", "editor"))
    return log


async def write_log(client: aioredis.Redis, events: list[tuple[Event, str, str]]) -> None:
    """Write the log straight into the stream, in the fields Store.append writes (see
    store.py's docstring), pipelined: 100,000 appends one by one would take minutes. The
    benchmark then folds what it reads back, which checks every version follows."""
    log, meta = f"liveblog:{{{SLUG}}}:log", f"liveblog:{{{SLUG}}}:meta"
    at = T0
    for start in range(0, len(events), 5000):
        async with client.pipeline(transaction=False) as pipe:
            for version, (event, actor, role) in enumerate(events[start:start + 5000],
                                                           start + 1):
                at = T0 + timedelta(seconds=version)
                pipe.xadd(log, {"v": str(version), "type": kind(event), "at": at.isoformat(),
                                "actor": actor, "role": role,
                                "data": event_encoder.encode(event)})
            ids = await pipe.execute()
    await client.hset(meta, mapping={
        "version": str(len(events)), "last_event_id": ids[-1], "title": "Blasts in Tartus",
        "status": "live", "opened_at": T0.isoformat(), "updated_at": at.isoformat(),
    })
    await client.zadd("{liveblog}:blogs", {SLUG: T0.timestamp()})


def _median_of(runs: list[float]) -> float:
    return statistics.median(runs)


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(url: str, events: int) -> list[Row]:
    store = Store.from_url(url)
    try:
        started = time.perf_counter()
        log = story(events)
        await write_log(store.redis, log)
        print(f"wrote {events:,} events in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)

        decode_runs, fold_runs = [], []
        for _ in range(3):
            gc.collect()
            t = time.perf_counter()
            read, _ = await store.read_all(SLUG)
            decode_runs.append(time.perf_counter() - t)
            del read
            gc.collect()
            t = time.perf_counter()
            blog = await Service(store).blog(SLUG)
            fold_runs.append(time.perf_counter() - t)
            assert blog.version == events
        decode, full = _median_of(decode_runs), _median_of(fold_runs)

        rng = random.Random(11)
        versions = [rng.randint(1, events) for _ in range(51)]
        service = Service(store)
        t = time.perf_counter()
        first = await service.blog_at(SLUG, str(versions[0]))
        cold = time.perf_counter() - t
        assert first.version == versions[0]
        warm = []
        gc.callbacks.append(_full_collections)
        try:
            for version in versions[1:]:
                t = time.perf_counter()
                past = await service.blog_at(SLUG, str(version))
                warm.append(time.perf_counter() - t)
                assert past.version == version
        finally:
            gc.callbacks.remove(_full_collections)
        # Spot check: a state from a checkpoint is the state a fold from scratch gives.
        read, _ = await store.read_all(SLUG)
        assert past == fold(read[:versions[-1]])
        memory = _checkpoint_memory(read)
    finally:
        await store.close()

    p50, p99 = _pct(warm, 50), _pct(warm, 99)
    ms = 1000
    return [
        (f"read+decode {events:,} events", f"{decode * ms:,.0f} ms", "", True),
        ("read+decode+fold (fresh Service.blog)", f"{full * ms:,.0f} ms", "", True),
        ("  fold / read+decode", f"{full / decode:.2f}x", "<= 3x", full <= 3 * decode),
        ("state at a version, first call (cold)", f"{cold * ms:,.0f} ms", "", True),
        ("state at a version, 50 random: p50", f"{p50 * ms:.1f} ms", "", True),
        ("state at a version, 50 random: p99", f"{p99 * ms:.1f} ms", "", True),
        ("  p99 / full fold", f"1/{full / p99:.0f}", "<= 1/10", p99 * 10 <= full),
        ("  full GC passes during the 50 (total)",
         f"{len(_collections)} ({sum(_collections) * ms:,.0f} ms)", "", True),
        ("state in memory / with checkpoints", memory, "", True),
    ]


_collections: list[float] = []
_started = [0.0]


def _full_collections(phase: str, info: dict[str, int]) -> None:
    """Time the garbage collector's full passes (they walk every tracked object, the
    persistent maps' nodes included, and land on whichever request is running)."""
    if info["generation"] != 2:
        return
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _collections.append(time.perf_counter() - _started[0])


def _checkpoint_memory(events: list[object]) -> str:
    """What the final state holds (entries, maps, trie nodes; not the decoded bodies,
    which the log read had already allocated), and what the checkpoints add to it."""
    gc.collect()
    tracemalloc.start()
    state = fold(events)  # type: ignore[arg-type]
    alone = tracemalloc.get_traced_memory()[0]
    del state
    gc.collect()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    checkpoints = Checkpoints()
    checkpoints.fold(events, None)  # type: ignore[arg-type]
    both = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return (f"{alone / 2**20:.0f} MiB / +{(both - alone) / 2**20:.0f} MiB "
            f"({len(checkpoints)} checkpoints)")


def run(events: int = 100_000) -> list[Row]:
    with redis_server() as url:
        return asyncio.run(measure(url, events))


def table(rows: list[Row]) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [f"{'figure':<{width}}  {'measured':>22}  {'target':>8}  ok"]
    for figure, value, target, ok in rows:
        lines.append(f"{figure:<{width}}  {value:>22}  {target:>8}  "
                     f"{('yes' if ok else 'NO') if target else ''}")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    rows = run(parser.parse_args().events)
    print(table(rows))
    sys.exit(0 if all(ok for *_, ok in rows) else 1)
