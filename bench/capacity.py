# ruff: noqa: RUF001
"""Capacity (issue 9): how many readers one liveblog process, and one core, carries.

    .venv/bin/python bench/capacity.py                  # writes docs/deploy.md's table
    .venv/bin/python bench/capacity.py --readers 100,200 --posts 3 --no-doc

For each size, in one invocation, under the same load from the same generator as the spike
benchmark (bench/spike.py's machinery: its generator processes, servers, Redis with
appendonly yes and appendfsync always), one `liveblog serve` process and Nchan (one nginx
worker, the peer) each get that many readers and a series of updates a second apart; then
`liveblog serve --workers 2` gets the largest size. Reported per size: delivery (every
update to every reader, no gap, no duplicate), latency p50/p99 from the POST to each
reader's socket, liveblog's p99 as a ratio to Nchan's, the server's CPU per delivered message
and its memory per reader.

From those, per process: the most readers it delivered to with p99 under a second. Per core:
one core's second divided by the CPU a reader costs per update (µs/msg), at one update a
second (a blog posting one every 10 s carries ten times as many): a reader of a blog posting
one update a second costs `µs/msg` µs of a core each second. The generator shares this
machine's two cores with the server, so the figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import spike

ROOT = spike.ROOT
BEGIN, END = "<!-- capacity:begin -->", "<!-- capacity:end -->"
SECOND_MS = 1000.0


async def run(args: argparse.Namespace) -> list[tuple[int, list[spike.Result]]]:
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    workdir = Path(tempfile.mkdtemp(prefix="capacity-"))
    sizes: list[tuple[int, list[spike.Result]]] = []
    try:
        plan = [(n, ["liveblog", "nchan"] + (["liveblog-w2"] if n == max(args.readers)
                                              else [])) for n in args.readers]
        for n, systems in plan:
            scenario = spike.Scenario("capacity", f"{n:,} readers", n, args.posts,
                                      args.interval, systems)
            results = []
            for name in systems:
                system = spike.SYSTEMS[name](workdir / f"{n}-{name}")
                result = await spike.measure(system, scenario, args)
                results.append(result)
                print(f"  {n:,} {name}: {result.connected:,} connected, "
                      f"{result.delivered_pct:.2f}% delivered, p99 {spike.fmt(result.p99)} ms, "
                      f"{spike.fmt(result.cpu_us)} µs/msg"
                      + (f"  [{result.error}]" if result.error else ""), flush=True)
                await asyncio.sleep(args.pause)
            sizes.append((n, results))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return sizes


def render(args: argparse.Namespace, command: str,
           sizes: list[tuple[int, list[spike.Result]]]) -> str:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    by_name: dict[str, list[spike.Result]] = {}
    for n, results in sizes:
        peer = next((r for r in results if r.system.startswith("nchan")), None)
        for r in results:
            by_name.setdefault(r.system, []).append(r)
            ratio = (f"{r.p99 / peer.p99:.2f}×" if peer is not None and r is not peer
                     and peer.p99 == peer.p99 and peer.p99 else "")
            rows.append([r.system, f"{n:,}", f"{r.connected:,}", f"{r.delivered_pct:.2f}%",
                         str(r.gaps), str(r.duplicates), spike.fmt(r.p50), spike.fmt(r.p99),
                         ratio, spike.fmt(r.cpu_us), spike.fmt(r.rss_kb)])
    table = spike.md_table(["server", "readers", "connected", "delivered", "gaps", "dups",
                            "p50 ms", "p99 ms", "p99 ÷ Nchan's", "server µs/msg",
                            "KB/reader"], rows)
    summary = []
    for name, results in by_name.items():
        good = [r for r in results if r.complete and r.p99 < SECOND_MS]
        most = max((r.readers for r in good), default=0)
        # The largest size's cost per message: fixed costs (the POST, Redis, the loop) are
        # spread thinnest there, so it is what one more reader costs.
        largest = max(results, key=lambda r: r.readers)
        cost = largest.cpu_us
        per_core = int(1e6 / cost) if cost == cost and cost > 0 else 0
        summary.append([name, f"{most:,}" + (" (the largest size run)" if most and most ==
                                            max(args.readers) else ""),
                        f"{spike.fmt(cost)} (at {largest.readers:,})", f"{per_core:,}"])
    capacity = spike.md_table(["server", "readers delivered with p99 < 1 s",
                               "server µs/msg", "readers per core at 1 update/s"],
                              summary)
    return "\n".join([
        BEGIN, "", "```sh", command, "```", "",
        f"{when}, liveblog at {spike.revision()}, on {spike.machine()}. Generator and "
        "servers share the machine's cores.", "",
        f"{args.posts} updates, {args.interval:g} s apart, per size; latency from just before "
        "each POST to the update's receipt on each reader's socket, over every (reader, "
        "update) pair; server CPU is the server processes' utime+stime over the delivery per "
        "delivered message.", "", table, "", capacity, "",
        "Readers per core: one core-second (10⁶ µs) over the µs/msg at the largest size, for a "
        "blog posting one update a second; a blog posting one every 10 s carries ten times "
        "as many. The delivery is the work that grows with readers; at these sizes Redis "
        "costs under a µs per message (see docs/benchmarks.md).", "", END])


def write_doc(path: Path, section: str) -> None:
    text = path.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> list[tuple[int, list[spike.Result]]]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", default="2500,5000,10000,15000",
                        help="comma-separated sizes [2500,5000,10000,15000]")
    parser.add_argument("--posts", type=int, default=20, help="updates per size [20]")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds apart [1]")
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--pause", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "deploy.md")
    parser.add_argument("--no-doc", action="store_true", help="print only")
    args = parser.parse_args(argv)
    args.readers = [int(n) for n in str(args.readers).split(",")]
    args.profile = False
    command = ".venv/bin/python bench/capacity.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    runner = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    sizes = runner(run(args))
    section = render(args, command.strip(), sizes)
    print(section)
    if not args.no_doc:
        write_doc(args.out, section)
    return sizes


if __name__ == "__main__":
    main()
