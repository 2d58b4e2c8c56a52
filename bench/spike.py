# ruff: noqa: RUF001
"""The spike benchmark (issue 7): liveblog's fan-out side by side with its peers.

    .venv/bin/python bench/spike.py                 # the issue's sizes; writes docs/benchmarks.md
    .venv/bin/python bench/spike.py --quick --out /tmp/spike.md

In one invocation, under the same load from the same generator (bench/loadgen.py, its own
processes; its CPU is reported), each scenario runs each system on a freshly started server
(and a fresh redis-server with appendonly yes, appendfsync always, where one is used):

  liveblog     `liveblog serve` (one process), and `--workers 2` in the 20,000 scenario
  naive        bench/naive.py: one Redis XREAD and one sse-starlette generator per reader
  nchan        Debian nginx-light + libnginx-mod-nchan (bench/nchan.conf), one worker
               (two in the 20,000 scenario: one nginx worker cannot hold 20,000 sockets
               under a 20,000 open-file limit either)
  limit        bench/limit.py: bare asyncio writing pre-encoded bytes to every socket in
               one pass

Scenarios: `main` (10,000 readers, updates a second apart, POST latency with 0 and with N
readers, then a reconnect storm: every reader disconnects, 5 updates are posted, every reader
reconnects at once with Last-Event-ID), `baseline` (1,000 readers, liveblog and naive),
`workers2` (20,000 readers, two generator processes) and `burst` (2,000 readers, 100
updates/s for 10 s).

Latency runs from time.perf_counter() just before each POST is sent to the update's receipt
on each reader's socket (CLOCK_MONOTONIC in both processes). Server CPU is utime+stime from
/proc of the server process and its children over the delivery phase, divided by the
(reader, update) pairs delivered; RSS per reader is the server tree's RSS with the readers
connected minus before, over the readers. Prints a table per scenario, liveblog's figures
as ratios to each peer, and PASS/FAIL against the issue's targets; writes it all into the
doc (--out) between `<!-- spike:begin -->` and `<!-- spike:end -->`.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import dataclasses
import datetime
import importlib
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
BEGIN, END = "<!-- spike:begin -->", "<!-- spike:end -->"
NCHAN_MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so"
READERS_PER_GENERATOR = 9000  # each generator process stays well under 20,000 open files
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
STORM_BEHIND = 5
POSTERS = 8

Row = tuple[str, str, str, bool]  # (figure, value, target, ok)


# --- processes -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def descendants(root: int) -> list[int]:
    """root and every process under it (uvicorn workers, nginx workers)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of these processes: every thread's run time from schedstat (nanoseconds),
    or utime+stime from stat (clock ticks) where schedstat is missing."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            threads = os.listdir(f"/proc/{pid}/task")
            try:
                total += sum(int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
                             for tid in threads) / 1e9
            except (OSError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    return total


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    return total


def stop(process: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    """Stop a process we started (and its process group, which it leads)."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=ROOT, start_new_session=True)


async def wait_http(url: str, what: str, process: subprocess.Popen[bytes],
                    seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited with {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {seconds:.0f} s")


class Redis:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.socket = directory / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.process = spawn(
            [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", "0",
             "--unixsocket", str(self.socket), "--dir", str(directory), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--maxclients", "20000",
             "--logfile", str(directory / "redis.log")],
            directory / "redis.out")

    async def ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.socket.exists():
                try:
                    reader, writer = await asyncio.open_unix_connection(str(self.socket))
                    writer.write(b"PING\r\n")
                    if (await reader.readline()).startswith(b"+PONG"):
                        writer.close()
                        return
                except OSError:
                    pass
            await asyncio.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        stop(self.process)


# --- the systems under test ----------------------------------------------------------------

class System:
    name = ""
    resumes = True  # Last-Event-ID gives exactly what was missed
    stream_path = ""
    redis: Redis | None = None
    process: subprocess.Popen[bytes] | None = None
    token: str | None = None

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        raise NotImplementedError

    def post_path(self, slug: str) -> str:
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def pids(self) -> list[int]:
        return descendants(self.process.pid) if self.process else []

    def stop(self) -> None:
        stop(self.process)
        if self.redis is not None:
            self.redis.stop()

    def logs(self) -> str:
        texts = []
        for log in sorted(self.dir.rglob("*.log")) + sorted(self.dir.rglob("*.out")):
            text = log.read_text(errors="replace").strip().splitlines()[-15:]
            texts.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(texts)


class Liveblog(System):
    stream_path = "/blogs/bench/stream"

    def __init__(self, workdir: Path, workers: int = 1) -> None:
        super().__init__(workdir)
        self.workers = workers
        self.name = "liveblog" if workers == 1 else f"liveblog w{workers}"

    async def start(self) -> None:
        self.redis = Redis(self.dir / "redis")
        await self.redis.ready()
        env = {**os.environ, "LIVEBLOG_REDIS_URL": self.redis.url,
               "LIVEBLOG_PORT": str(self.port), "LIVEBLOG_DATA_DIR": str(self.dir / "var"),
               # Every simulated reader comes from 127.0.0.1, up to 20,000 of them.
               "LIVEBLOG_MAX_STREAMS": "100000", "LIVEBLOG_MAX_STREAMS_PER_IP": "100000"}
        made = subprocess.run(  # noqa: ASYNC221 - setup, before any timing
            [PYTHON, "-m", "liveblog", "token", "create", "--name", "bench", "--role", "editor"],
            env=env, capture_output=True, text=True, cwd=ROOT, check=True)
        self.token = made.stdout.strip().splitlines()[-1]
        args = [PYTHON, "-m", "liveblog", "serve"]
        if self.workers > 1:
            args += ["--workers", str(self.workers)]
        self.process = spawn(args, self.dir / "server.log", env)
        await wait_http(self.base + "/healthz", self.name, self.process)
        async with httpx.AsyncClient(base_url=self.base, headers=self.headers(),
                                     timeout=30) as client:
            for slug in ("bench", "quiet"):
                response = await client.post("/api/blogs", json={"slug": slug, "title": slug})
                if response.status_code != 201:
                    raise RuntimeError(f"opening a blog: {response.status_code} "
                                       f"{response.text}")

    def post_path(self, slug: str) -> str:
        return f"/api/blogs/{slug}/entries"


class Naive(System):
    name = "naive"
    stream_path = "/blogs/bench/stream"

    async def start(self) -> None:
        self.redis = Redis(self.dir / "redis")
        await self.redis.ready()
        env = {**os.environ, "LIVEBLOG_REDIS_URL": self.redis.url}
        self.process = spawn([PYTHON, str(BENCH / "naive.py"), "--port", str(self.port)],
                             self.dir / "server.log", env)
        await wait_http(self.base + "/healthz", self.name, self.process)

    def post_path(self, slug: str) -> str:
        return f"/blogs/{slug}/entries"


class Nchan(System):
    stream_path = "/sub/bench"

    def __init__(self, workdir: Path, workers: int = 1) -> None:
        super().__init__(workdir)
        self.workers = workers
        self.name = "nchan" if workers == 1 else f"nchan w{workers}"

    async def start(self) -> None:
        conf = Template((BENCH / "nchan.conf").read_text()).substitute(
            dir=self.dir, port=self.port, workers=self.workers)
        (self.dir / "nchan.conf").write_text(conf)
        self.process = spawn([shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(self.dir),
                              "-c", str(self.dir / "nchan.conf"), "-g", "daemon off;"],
                             self.dir / "nginx.out")
        await wait_http(self.base + "/healthz", self.name, self.process)

    def post_path(self, slug: str) -> str:
        return f"/pub/{slug}"


class Limit(System):
    name = "limit"
    resumes = False
    stream_path = "/sub"

    async def start(self) -> None:
        self.process = spawn([PYTHON, str(BENCH / "limit.py"), "--port", str(self.port)],
                             self.dir / "server.log")
        await wait_http(self.base + "/healthz", self.name, self.process)

    def post_path(self, slug: str) -> str:
        return "/pub"


SYSTEMS: dict[str, Callable[[Path], System]] = {
    "liveblog": Liveblog,
    "liveblog-w2": lambda d: Liveblog(d, workers=2),
    "naive": Naive,
    "nchan": Nchan,
    "nchan-w2": lambda d: Nchan(d, workers=2),
    "limit": Limit,
}


# --- the load generator, driven from here --------------------------------------------------

class Generators:
    def __init__(self, processes: list[asyncio.subprocess.Process]) -> None:
        self.processes = processes

    @classmethod
    async def start(cls, system: System, readers: int) -> Generators:
        count = max(1, math.ceil(readers / READERS_PER_GENERATOR))
        shares = [readers // count + (1 if i < readers % count else 0) for i in range(count)]
        processes = [
            await asyncio.create_subprocess_exec(
                PYTHON, str(BENCH / "loadgen.py"), "127.0.0.1", str(system.port),
                system.stream_path, str(share), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, limit=2**26)
            for share in shares]
        return cls(processes)

    async def call(self, command: dict[str, object],
                   each: Callable[[int], dict[str, object]] | None = None) -> list[dict]:
        async def one(i: int, process: asyncio.subprocess.Process) -> dict:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write((json.dumps(each(i) if each else command) + "\n").encode())
            await process.stdin.drain()
            line = await process.stdout.readline()
            if not line:
                raise RuntimeError("a load generator exited")
            return dict(json.loads(line))

        return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(self.processes))))

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    async def counts(self) -> tuple[dict[int, int], dict[int, float]]:
        count: dict[int, int] = {}
        last: dict[int, float] = {}
        for status in await self.call({"cmd": "status"}):
            for mark, n in status["count"].items():
                count[int(mark)] = count.get(int(mark), 0) + n
            for mark, at in status["last"].items():
                last[int(mark)] = max(last.get(int(mark), 0.0), at)
        return count, last

    async def quit(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.call({"cmd": "quit"}), 30)
        for process in self.processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            await process.wait()


# --- one system in one scenario --------------------------------------------------------------

@dataclass
class Scenario:
    name: str
    title: str
    readers: int
    posts: int
    interval: float
    systems: list[str]
    storm: bool = False
    profile: bool = False


@dataclass
class Result:
    system: str
    readers: int
    connected: int = 0
    expected: int = 0
    delivered: int = 0
    missing: int = 0
    gaps: int = 0
    duplicates: int = 0
    reconnects: int = 0
    p50: float = math.nan
    p99: float = math.nan
    max: float = math.nan
    connect_s: float = math.nan
    cpu_us: float = math.nan
    redis_us: float = math.nan
    rss_kb: float = math.nan
    generator_cpu: float = math.nan
    post0_p50: float = math.nan
    post0_p99: float = math.nan
    postn_p50: float = math.nan
    postn_p99: float = math.nan
    post_rate: float = math.nan
    post_conflicts: int = 0
    storm: dict[str, float] = field(default_factory=dict)
    profile: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def delivered_pct(self) -> float:
        return 100.0 * self.delivered / self.expected if self.expected else 0.0

    @property
    def complete(self) -> bool:
        return (self.connected == self.readers and self.expected > 0
                and self.delivered == self.expected and self.gaps == 0
                and self.duplicates == 0)


def percentile(values: list[float] | array.array, p: float) -> float:
    if not values:
        return math.nan
    return float(values[min(len(values) - 1, int(p / 100 * len(values)))])


class Connection:
    """One keep-alive HTTP/1.1 connection, spoken by hand: httpx costs milliseconds of CPU per
    request here, enough to make the poster, not the server, the bottleneck of a burst."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used = time.monotonic()

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        self.writer.write(head + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length, chunked = 0, False
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        parts = []
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await self.reader.readexactly(size + 2))
        await self.reader.readuntil(b"\r\n")
        return status, b"".join(part[:-2] for part in parts)


class Poster:
    """POSTs on a pool of keep-alive connections; the mark is taken just before each is sent."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.idle: list[Connection] = []
        self.all: list[Connection] = []
        self.conflicts = 0
        # At most this many POSTs in flight (a newsroom's worth of reporters); more wait for
        # a free connection, and their clock starts when they are sent.
        self.gate = asyncio.Semaphore(POSTERS)

    async def post(self, slug: str, text: str) -> tuple[float, float]:
        async with self.gate:
            return await self._post(slug, text)

    async def _post(self, slug: str, text: str) -> tuple[float, float]:
        """POST one update; a 409 (a concurrent append won) is retried, as a newsroom client
        would, and counted; the clock runs from the first attempt."""
        path = self.system.post_path(slug)
        body = json.dumps({"body": text}).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n"
                f"Idempotency-Key: {slug}-{text.split(' at ')[0].replace(' ', '-')}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in self.system.headers().items())
                + "\r\n").encode()
        while self.idle and time.monotonic() - self.idle[-1].used > 2:
            self.idle.pop().writer.close()  # servers close idle keep-alives (uvicorn: 5 s)
        if self.idle:
            connection = self.idle.pop()
        else:
            connection = Connection(*await asyncio.open_connection("127.0.0.1",
                                                                   self.system.port))
            self.all.append(connection)
        started = time.perf_counter()
        for attempt in range(20):
            status, answer = await connection.request(head, body)
            if status != 409:
                break
            self.conflicts += 1
            await asyncio.sleep(0.001 * (attempt + 1))
        took = time.perf_counter() - started
        connection.used = time.monotonic()
        self.idle.append(connection)
        if status not in (200, 201, 202):
            raise RuntimeError(f"POST {path}: {status} {answer[:200]!r}")
        return started, took

    async def series(self, slug: str, first: int, count: int, interval: float,
                     marks: dict[int, float], label: str = "bench-mark") -> list[float]:
        """`count` POSTs, one every `interval` seconds on the clock, whether or not the ones
        before have been answered (a burst must not slow down to the server's pace)."""
        took: list[float] = []

        async def one(n: int) -> None:
            at, seconds = await self.post(slug, f"Update {label}-{n}-end at {time.time():.3f}")
            marks[n] = at
            took.append(seconds)

        tasks = []
        start = time.perf_counter()
        for i in range(count):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(first + i)))
        await asyncio.gather(*tasks)
        return took

    async def close(self) -> None:
        for connection in self.all:
            connection.writer.close()


async def measure(system: System, scenario: Scenario, args: argparse.Namespace) -> Result:
    result = Result(system.name, scenario.readers)
    generators: Generators | None = None
    poster: Poster | None = None
    spy: subprocess.Popen[bytes] | None = None
    try:
        await system.start()
        poster = Poster(system)
        # POST latency with no reader connected (on another blog/channel), after a warm-up.
        quiet = await poster.series("quiet", 0, 3, 0.02, {}, "quiet")
        quiet = sorted(await poster.series("quiet", 3, 50, 0.05, {}, "quiet"))
        result.post0_p50, result.post0_p99 = percentile(quiet, 50), percentile(quiet, 99)

        generators = await Generators.start(system, scenario.readers)
        await asyncio.sleep(0.3)
        rss_before = rss_bytes(system.pids())
        replies = await generators.call({"cmd": "connect", "concurrency": args.concurrency})
        result.connected = sum(int(r["connected"]) for r in replies)
        result.connect_s = max(r["ended"] for r in replies) - min(r["started"] for r in replies)
        await asyncio.sleep(1.0)
        rss_after = rss_bytes(system.pids())
        result.rss_kb = (rss_after - rss_before) / 1024 / max(1, result.connected)
        if result.connected < scenario.readers:
            errors: dict[str, int] = {}
            for reply in replies:
                for what, n in reply["errors"].items():
                    errors[what] = errors.get(what, 0) + n
            result.error = f"connect errors: {errors}"

        spy_path = Path(PYTHON).parent / "py-spy"
        if scenario.profile and isinstance(system, Liveblog) and spy_path.exists():
            spy = spawn([str(spy_path), "record", "-p",
                         str(system.process.pid if system.process else 0), "--subprocesses",
                         "-r", "100", "--nonblocking", "-f", "raw",
                         "-o", str(system.dir / "profile.txt")],
                        system.dir / "py-spy.out")
            await asyncio.sleep(1.0)

        # Delivery: the CPU of the server tree, Redis and the generators from here to the end.
        pids = system.pids()
        redis_pids = [system.redis.process.pid] if system.redis else []
        server_cpu = cpu_seconds(pids)
        redis_cpu = cpu_seconds(redis_pids)
        generator_cpu = cpu_seconds(generators.pids())
        marks: dict[int, float] = {}
        took = await poster.series("bench", 0, scenario.posts, scenario.interval, marks)
        elapsed = max(1e-9, (marks[scenario.posts - 1] - marks[0]))
        result.post_rate = (scenario.posts - 1) / elapsed if scenario.posts > 1 else math.nan
        result.post_conflicts = poster.conflicts
        took.sort()
        result.postn_p50, result.postn_p99 = percentile(took, 50), percentile(took, 99)
        result.expected = scenario.readers * scenario.posts
        await wait_delivered(generators, range(scenario.posts), scenario.readers, args.settle)
        server_cpu = cpu_seconds(pids) - server_cpu
        redis_cpu = cpu_seconds(redis_pids) - redis_cpu
        result.generator_cpu = cpu_seconds(generators.pids()) - generator_cpu
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.wait(timeout=60)
            result.profile = top_of_profile(system.dir / "profile.txt")

        report = await report_all(generators, marks, system.dir, "delivery")
        latencies: array.array = report.pop("latencies")
        result.delivered = int(report["delivered"])
        result.missing = int(report["missing"])
        result.gaps, result.duplicates = int(report["gaps"]), int(report["duplicates"])
        result.reconnects = int(report["reconnects"])
        if len(latencies):
            result.p50 = percentile(latencies, 50) * 1000
            result.p99 = percentile(latencies, 99) * 1000
            result.max = latencies[-1] * 1000
        if result.delivered:
            result.cpu_us = server_cpu / result.delivered * 1e6
            if redis_pids:
                result.redis_us = redis_cpu / result.delivered * 1e6

        if scenario.storm and system.resumes:
            result.storm = await storm(system, scenario, args, generators, poster, marks,
                                       report)
    except Exception as exc:  # the run goes on; the failure is in the table and the doc
        result.error = f"{type(exc).__name__}: {exc}"
        print(f"  {system.name}: {result.error}\n{system.logs()}", file=sys.stderr)
    finally:
        if spy is not None and spy.poll() is None:
            stop(spy)
        if poster is not None:
            await poster.close()
        if generators is not None:
            await generators.quit()
        system.stop()
    return result


async def wait_delivered(generators: Generators, marks: range | list[int], readers: int,
                         settle: float) -> dict[int, float]:
    """Until every reader has every mark, or nothing new arrived for `settle` seconds."""
    expected = readers * len(marks)
    progress, quiet_since = -1, time.monotonic()
    while True:
        count, last = await generators.counts()
        have = sum(count.get(m, 0) for m in marks)
        if have >= expected:
            return last
        if have != progress:
            progress, quiet_since = have, time.monotonic()
        elif time.monotonic() - quiet_since > settle:
            return last
        await asyncio.sleep(0.1)


async def report_all(generators: Generators, marks: dict[int, float], directory: Path,
                     name: str) -> dict:
    outs = [str(directory / f"latencies-{name}-{i}.bin")
            for i in range(len(generators.processes))]
    orders = await generators.call({"cmd": "order"})
    order = max(orders, key=lambda o: (len(o["order"]), o["readers"]))["order"]
    replies = await generators.call(
        {}, lambda i: {"cmd": "report", "marks": marks, "order": order, "out": outs[i]})
    total: dict = {key: sum(r[key] for r in replies)
                   for key in ("delivered", "missing", "gaps", "duplicates", "reconnects")}
    latencies = array.array("d")
    for out in outs:
        latencies.frombytes(Path(out).read_bytes())  # noqa: ASYNC240 - after timing
    total["latencies"] = array.array("d", sorted(latencies))
    return total


async def storm(system: System, scenario: Scenario, args: argparse.Namespace,
                generators: Generators, poster: Poster, marks: dict[int, float],
                before: dict) -> dict[str, float]:
    """Every reader drops; 5 updates are posted; every reader reconnects with Last-Event-ID."""
    await generators.call({"cmd": "disconnect"})
    await asyncio.sleep(1.0)
    behind = list(range(scenario.posts, scenario.posts + STORM_BEHIND))
    await poster.series("bench", behind[0], STORM_BEHIND, 0.05, marks)
    replies = await generators.call({"cmd": "reconnect", "concurrency": args.concurrency})
    started = min(r["started"] for r in replies)
    reconnected = sum(int(r["connected"]) for r in replies)
    last = await wait_delivered(generators, behind, scenario.readers, args.settle)
    count, last = await generators.counts()
    after = await report_all(generators, marks, system.dir, "storm")
    caught_up = min(count.get(m, 0) for m in behind)
    done = max((last.get(m, math.nan) for m in behind), default=math.nan)
    exact = (reconnected == scenario.readers and caught_up == scenario.readers
             and after["duplicates"] == before["duplicates"] and after["gaps"] == before["gaps"])
    return {"reconnected": reconnected, "caught_up": caught_up,
            "duplicates": after["duplicates"] - before["duplicates"],
            "gaps": after["gaps"] - before["gaps"],
            "seconds": done - started, "exact": float(exact)}


def top_of_profile(path: Path, lines: int = 15) -> list[str]:
    """py-spy's collapsed stacks, as the functions with the most samples on top (self)."""
    if not path.exists():
        return ["(no profile written; py-spy needs ptrace permission)"]
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        leaf = stack.split(";")[-1]
        own[leaf] = own.get(leaf, 0) + int(count)
        total += int(count)
    top = sorted(own.items(), key=lambda item: -item[1])[:lines]
    return [f"{100 * n / total:5.1f}%  {frame}" for frame, n in top]


# --- scenarios, tables, targets ----------------------------------------------------------------

def scenarios(args: argparse.Namespace) -> list[Scenario]:
    n, posts = args.readers, args.posts
    quick = args.quick
    burst_posts = 20 if quick else 1000
    made = [
        Scenario("main", f"{n:,} readers, one process", n, posts, args.interval,
                 ["liveblog", "nchan", "limit"], storm=True, profile=args.profile),
        Scenario("baseline", f"{args.naive_readers:,} readers against the naive baseline",
                 args.naive_readers, posts, args.interval, ["liveblog", "naive"]),
        Scenario("workers2", f"{args.wide_readers:,} readers, two processes",
                 args.wide_readers, posts, args.interval, ["liveblog-w2", "nchan-w2"]),
        Scenario("burst", f"burst: {args.burst_readers:,} readers, 100 updates/s for "
                 f"{burst_posts / 100:g} s", args.burst_readers, burst_posts, 0.01,
                 ["liveblog", "nchan"]),
    ]
    if args.only:
        picked = set(args.only.split(","))
        names = {s.name for s in made}
        unknown = picked - names - set(SYSTEMS)
        if unknown:
            raise SystemExit(f"--only: unknown {sorted(unknown)}; "
                             f"scenarios {sorted(names)}, systems {sorted(SYSTEMS)}")
        if picked & names:
            made = [s for s in made if s.name in picked]
        if picked & set(SYSTEMS):
            for s in made:
                s.systems = [name for name in s.systems if name in picked]
            made = [s for s in made if s.systems]
    return made


def fmt(value: float, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


HEADER = ["system", "readers", "connected", "delivered", "gaps", "dups", "p50 ms", "p99 ms",
          "max ms", "connect s", "posts/s", "server µs/msg", "redis µs/msg", "KB/reader",
          "gen CPU s", "POST p99 ms (0 / N readers)"]


def table(results: list[Result]) -> list[list[str]]:
    rows = []
    for r in results:
        rows.append([
            r.system + (" (failed)" if r.error and not r.delivered else ""),
            f"{r.readers:,}", f"{r.connected:,}", f"{r.delivered_pct:.2f}%", str(r.gaps),
            str(r.duplicates), fmt(r.p50), fmt(r.p99), fmt(r.max), fmt(r.connect_s, 2),
            fmt(r.post_rate), fmt(r.cpu_us), fmt(r.redis_us), fmt(r.rss_kb),
            fmt(r.generator_cpu, 2),
            f"{fmt(r.post0_p99 * 1000)} / {fmt(r.postn_p99 * 1000)}"])
    return rows


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def md_table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    align = ["---" if i < left else "---:" for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def ratios(results: list[Result]) -> list[list[str]]:
    ours = [r for r in results if r.system.startswith("liveblog")]
    rows = []
    for mine in ours:
        for peer in results:
            if peer.system.startswith("liveblog"):
                continue

            def ratio(a: float, b: float) -> str:
                return "–" if not b or math.isnan(a) or math.isnan(b) else f"{a / b:.2f}×"

            rows.append([f"{mine.system} / {peer.system}", ratio(mine.p99, peer.p99),
                         ratio(mine.p50, peer.p50), ratio(mine.cpu_us, peer.cpu_us),
                         ratio(mine.rss_kb, peer.rss_kb),
                         ratio(mine.connect_s, peer.connect_s)])
    return rows


RATIO_HEADER = ["liveblog ÷ peer", "p99", "p50", "CPU/msg", "RSS/reader", "connect time"]


def targets(runs: dict[str, list[Result]]) -> list[Row]:
    def get(scenario: str, system: str) -> Result | None:
        return next((r for r in runs.get(scenario, []) if r.system == system), None)

    rows: list[Row] = []

    def check(figure: str, value: str, target: str, ok: bool) -> None:
        rows.append((figure, value, target, ok))

    def le(a: float, b: float, factor: float = 1.0) -> bool:
        return not (math.isnan(a) or math.isnan(b)) and a <= factor * b

    def x(a: float, b: float) -> str:
        return "–" if math.isnan(a) or math.isnan(b) or not b else f"{a / b:.2f}×"

    lb, nchan, limit = get("main", "liveblog"), get("main", "nchan"), get("main", "limit")
    if lb:
        n = f"{lb.readers:,}"
        check(f"{n} readers, one process: connected, delivered, gaps, dups",
              f"{lb.connected:,}, {lb.delivered_pct:.2f}%, {lb.gaps}, {lb.duplicates}",
              "all, 100%, 0, 0", lb.complete)
        if nchan:
            check("p99 vs Nchan", f"{fmt(lb.p99)} vs {fmt(nchan.p99)} ms = "
                  f"{x(lb.p99, nchan.p99)}", "≤ 1×", le(lb.p99, nchan.p99))
        if limit:
            check("p99 vs the reference limit", f"{fmt(lb.p99)} vs {fmt(limit.p99)} ms = "
                  f"{x(lb.p99, limit.p99)}", "≤ 1.5×", le(lb.p99, limit.p99, 1.5))
            check("server CPU per delivered message vs the limit",
                  f"{fmt(lb.cpu_us)} vs {fmt(limit.cpu_us)} µs = {x(lb.cpu_us, limit.cpu_us)}",
                  "≤ 2×", le(lb.cpu_us, limit.cpu_us, 2))
        if nchan:
            check("RSS per connected reader vs Nchan",
                  f"{fmt(lb.rss_kb)} vs {fmt(nchan.rss_kb)} KB = {x(lb.rss_kb, nchan.rss_kb)}",
                  "≤ 1×", le(lb.rss_kb, nchan.rss_kb))
            check(f"time to connect {n} readers vs Nchan",
                  f"{fmt(lb.connect_s, 2)} vs {fmt(nchan.connect_s, 2)} s = "
                  f"{x(lb.connect_s, nchan.connect_s)}", "≤ 2×",
                  le(lb.connect_s, nchan.connect_s, 2))
        check(f"POST p99 with {n} readers vs with none",
              f"{fmt(lb.postn_p99 * 1000)} vs {fmt(lb.post0_p99 * 1000)} ms = "
              f"{x(lb.postn_p99, lb.post0_p99)}", "≤ 3×", le(lb.postn_p99, lb.post0_p99, 3))
        if lb.storm:
            s = lb.storm
            check(f"reconnect storm: {n} readers {STORM_BEHIND} behind, all caught up exactly",
                  f"{int(s['reconnected']):,} back, {int(s['caught_up']):,} caught up, "
                  f"{int(s['gaps'])} gaps, {int(s['duplicates'])} dups",
                  "all, exactly", bool(s["exact"]))
            check("reconnect storm time vs a fresh connect",
                  f"{fmt(s['seconds'], 2)} vs {fmt(lb.connect_s, 2)} s = "
                  f"{x(s['seconds'], lb.connect_s)}", "≤ 2×",
                  bool(s["exact"]) and le(s["seconds"], lb.connect_s, 2))
    lb, naive = get("baseline", "liveblog"), get("baseline", "naive")
    if lb and naive:
        check(f"{lb.readers:,} readers: naive p99 ÷ liveblog p99; liveblog delivered",
              f"{fmt(naive.p99)} / {fmt(lb.p99)} ms = {x(naive.p99, lb.p99)}; "
              f"{lb.delivered_pct:.2f}%", "≥ 3×; 100%",
              lb.complete and le(3 * lb.p99, naive.p99))
    lb, nchan = get("workers2", "liveblog w2"), get("workers2", "nchan w2")
    if lb:
        check(f"--workers 2, {lb.readers:,} readers: delivered",
              f"{lb.connected:,} connected, {lb.delivered_pct:.2f}%, {lb.gaps} gaps, "
              f"{lb.duplicates} dups", "all, 100%", lb.complete)
        if nchan:
            check(f"--workers 2, {lb.readers:,} readers: p99 vs Nchan's",
                  f"{fmt(lb.p99)} vs {fmt(nchan.p99)} ms = {x(lb.p99, nchan.p99)}", "≤ 1×",
                  le(lb.p99, nchan.p99))
    lb, nchan = get("burst", "liveblog"), get("burst", "nchan")
    if lb:
        check(f"burst, {lb.readers:,} readers: delivered",
              f"{lb.delivered_pct:.2f}%, {lb.gaps} gaps, {lb.duplicates} dups "
              f"({fmt(lb.post_rate, 0)} posts/s sent, {lb.post_conflicts} answered 409 and "
              "retried)", "100%", lb.complete)
        check("burst: updates accepted per second (POSTs sent on schedule, 8 in flight)",
              f"{fmt(lb.post_rate)}/s" + (f" (Nchan {fmt(nchan.post_rate)}/s)" if nchan else ""),
              "100/s", lb.post_rate >= 95)
        if nchan:
            check("burst p99 vs Nchan's", f"{fmt(lb.p99)} vs {fmt(nchan.p99)} ms = "
                  f"{x(lb.p99, nchan.p99)}", "≤ 2×", le(lb.p99, nchan.p99, 2))
    return rows


def other_figures(enabled: bool) -> list[Row]:
    """bench/fold.py and bench/pages.py, when they exist: run() -> [(figure, value, target, ok)]."""
    rows: list[Row] = []
    if not enabled:
        return rows
    sys.path.insert(0, str(BENCH))
    for name in ("fold", "pages"):
        if not (BENCH / f"{name}.py").exists():
            continue
        try:
            module = importlib.import_module(name)
            rows += [(str(f), str(v), str(t), bool(ok)) for f, v, t, ok in module.run()]
        except Exception as exc:  # another engineer's module; report, do not stop
            rows.append((f"bench/{name}.py", f"failed: {type(exc).__name__}: {exc}", "runs",
                         False))
    return rows


def machine() -> str:
    model = next((line.split(":", 1)[1].strip()
                  for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) // 1024 // 1024
                   for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)

    def version(args: list[str]) -> str:
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=10)
        except OSError:
            return "absent"
        return (done.stdout + done.stderr).strip().splitlines()[0] if done.stdout + \
            done.stderr else "?"

    redis = version(["redis-server", "--version"]).split(" sha=")[0]
    nginx = version(["nginx", "-v"]).replace("nginx version: ", "")
    nchan = version(["dpkg-query", "-W", "-f", "${Version}", "libnginx-mod-nchan"])
    uvloop = version([PYTHON, "-c", "import uvloop; print(uvloop.__version__)"])
    return (f"{os.cpu_count()} cores ({model}), {memory} GiB, Linux {platform.release()}, "
            f"Python {platform.python_version()} (uvloop {uvloop}), {redis} "
            f"(appendonly, appendfsync always), {nginx} with Nchan {nchan}; "
            f"open-file limit {resource.getrlimit(resource.RLIMIT_NOFILE)[1]:,} per process")


def revision() -> str:
    """The commit measured, and whether liveblog/ had uncommitted changes then."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except OSError:
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "an unknown commit"
    dirty = git("status", "--porcelain", "--", "liveblog")
    return commit + (" with uncommitted changes in liveblog/" if dirty else "")


def render(args: argparse.Namespace, command: str, runs: dict[str, list[Result]],
           plan: list[Scenario], rows: list[Row], others: list[Row], when: str,
           spreads: dict[str, list[str]] | None = None) -> str:
    out = [BEGIN, "", "```sh", command, "```", "",
           f"{when}, liveblog at {revision()}, on {machine()}. Generator and servers share "
           "the machine's cores.", "",
           "Latency: from just before each POST is sent to the update's receipt on each "
           "reader's socket, over every (reader, update) pair. Server CPU: utime+stime of "
           "the server's processes over the delivery phase per delivered message (Redis "
           "separately). RSS: the server's growth from no readers to all connected, per "
           "reader. POST p99: with no reader connected, and during the delivery with all "
           "connected; at most "
           f"{POSTERS} POSTs in flight, each sent on schedule once a connection is free (posts/s "
           "is the rate they were sent at). Connect: bounded at "
           f"{args.concurrency} handshakes in flight per generator process "
           f"(one per {READERS_PER_GENERATOR:,} readers).", ""]
    for scenario in plan:
        results = runs.get(scenario.name, [])
        if not results:
            continue
        rounds = (f" Each system's median round of {args.repeat} by p99 (every round: "
                  + "; ".join((spreads or {}).get(scenario.name, [])) + ")."
                  if args.repeat > 1 else "")
        out += [f"#### {scenario.title}", "",
                f"{scenario.posts:,} updates, {scenario.interval:g} s apart.{rounds}", "",
                md_table(HEADER, table(results)), ""]
        failed = [r for r in results if r.error]
        for r in failed:
            out += [f"{r.system}: {r.error}", ""]
        rat = ratios(results)
        if rat:
            out += [md_table(RATIO_HEADER, rat), ""]
        storms = [r for r in results if r.storm]
        if storms:
            out += [md_table(["reconnect storm", "reconnected", "caught up exactly",
                              "gaps", "dups", "seconds", "fresh connect s"],
                             [[r.system, f"{int(r.storm['reconnected']):,}",
                               f"{int(r.storm['caught_up']):,}", str(int(r.storm['gaps'])),
                               str(int(r.storm['duplicates'])), fmt(r.storm["seconds"], 2),
                               fmt(r.connect_s, 2)] for r in storms]), ""]
        for r in results:
            if r.profile:
                out += [f"py-spy, {r.system} during the delivery (self time, top "
                        f"{len(r.profile)}):", "", "```text", *r.profile, "```", ""]
    if rows:
        out += ["#### Targets", "",
                md_table(["figure", "measured", "target", ""],
                         [[f, v, t, "PASS" if ok else "FAIL"] for f, v, t, ok in rows], 3), ""]
    if others:
        out += ["#### From bench/fold.py and bench/pages.py", "",
                md_table(["figure", "measured", "target", ""],
                         [[f, v, t, "PASS" if ok else "FAIL"] for f, v, t, ok in others], 3),
                ""]
    if any(r.profile for results in runs.values() for r in results):
        out += ["(With `--profile`, py-spy samples liveblog during its 10,000-reader delivery, "
                "without stopping it; its figures there include that cost.)", ""]
    out.append(END)
    return "\n".join(out)


def write_doc(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + section + tail
    else:
        text = (text.rstrip("\n") + "\n\n## Spike: liveblog against Nchan, the naive "
                "baseline and the bare limit\n\n" + section + "\n")
    path.write_text(text)


async def run(args: argparse.Namespace
              ) -> tuple[dict[str, list[Result]], list[Row], dict[str, list[str]]]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the servers inherit it
    plan = scenarios(args)
    workdir = Path(tempfile.mkdtemp(prefix="spike-"))
    # Every round runs every scenario and system once, so a noisy minute on the shared
    # machine lands on one round of all of them, not on one system.
    rounds: dict[str, dict[str, list[Result]]] = {}
    try:
        for round_ in range(args.repeat):
            for scenario in plan:
                print(f"\n== {scenario.title}: {scenario.posts} updates, "
                      f"{scenario.interval:g} s apart"
                      + (f" (round {round_ + 1} of {args.repeat})" if args.repeat > 1 else ""),
                      flush=True)
                for name in scenario.systems:
                    system = SYSTEMS[name](workdir / f"{scenario.name}-{name}-{round_}")
                    result = await measure(system, scenario, args)
                    rounds.setdefault(scenario.name, {}).setdefault(name, []).append(result)
                    print(f"  {name}: {result.connected:,}/{result.readers:,} connected, "
                          f"{result.delivered_pct:.2f}% delivered, p99 {fmt(result.p99)} ms"
                          + (f"  [{result.error}]" if result.error else ""), flush=True)
                    await asyncio.sleep(args.pause)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    runs: dict[str, list[Result]] = {}
    spreads: dict[str, list[str]] = {}
    for scenario in plan:
        by_system = rounds.get(scenario.name, {})
        spreads[scenario.name] = spread(by_system)
        runs[scenario.name] = [median_round(by_system[name]) for name in scenario.systems
                               if name in by_system]
        results = runs[scenario.name]
        print(f"\n== {scenario.title}" + (f": the median round of {args.repeat} by p99, "
                                           "for each system" if args.repeat > 1 else ""))
        print(text_table(HEADER, table(results)))
        if rat := ratios(results):
            print("\n" + text_table(RATIO_HEADER, rat))
        for r in results:
            if r.storm:
                print(f"  reconnect storm, {r.system}: {r.storm}")
        for line in spreads[scenario.name]:
            print("  " + line)
    return runs, targets(runs), spreads


def median_round(results: list[Result]) -> Result:
    """The round whose p99 is the median (the lower middle one of an even number)."""
    ordered = sorted(results, key=lambda r: (bool(r.error), r.p99))
    return ordered[(len(ordered) - 1) // 2]


def spread(by_system: dict[str, list[Result]]) -> list[str]:
    """Each system's p99 in every round, when there was more than one."""
    return [f"{results[0].system}: p99 by round " + ", ".join(fmt(r.p99) for r in results)
            + " ms" for results in by_system.values() if len(results) > 1]


def main(argv: list[str] | None = None) -> dict[str, list[Result]]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, help="readers in `main` [10,000; quick 30]")
    parser.add_argument("--naive-readers", type=int, help="in `baseline` [1,000; quick 30]")
    parser.add_argument("--wide-readers", type=int, help="in `workers2` [20,000; quick 60]")
    parser.add_argument("--burst-readers", type=int, help="in `burst` [2,000; quick 30]")
    parser.add_argument("--posts", type=int, help="updates per scenario [20; quick 3]")
    parser.add_argument("--interval", type=float, help="seconds between updates [1; quick 0.3]")
    parser.add_argument("--only", help="comma-separated scenarios (main, baseline, workers2, "
                        "burst) and/or systems (liveblog, liveblog-w2, naive, nchan, "
                        "nchan-w2, limit)")
    parser.add_argument("--quick", action="store_true", help="small sizes (for the test)")
    parser.add_argument("--concurrency", type=int, default=500,
                        help="handshakes in flight per generator process [500]")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="give up waiting for deliveries after this many quiet seconds")
    parser.add_argument("--pause", type=float, default=2.0,
                        help="seconds between systems (sockets in TIME_WAIT, CPU settles)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md",
                        help="the doc to write the section into [docs/benchmarks.md]")
    parser.add_argument("--no-doc", action="store_true", help="print only")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy record liveblog during the `main` delivery")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    parser.add_argument("--json", type=Path, help="also write every result here, as JSON")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every scenario; each system's median round by p99 "
                        "is the one reported, every round's p99 is shown [1]")
    args = parser.parse_args(argv)
    small = args.quick
    args.readers = args.readers or (30 if small else 10_000)
    args.naive_readers = args.naive_readers or (30 if small else 1_000)
    args.wide_readers = args.wide_readers or (60 if small else 20_000)
    args.burst_readers = args.burst_readers or (30 if small else 2_000)
    args.posts = args.posts or (3 if small else 20)
    args.interval = args.interval if args.interval is not None else (0.3 if small else 1.0)
    if small:
        args.settle = min(args.settle, 5.0)
        args.pause = min(args.pause, 0.2)
    if not Path(NCHAN_MODULE).exists():
        print(f"warning: {NCHAN_MODULE} is missing (apt-get install nginx-light "
              "libnginx-mod-nchan); the nchan runs will fail", file=sys.stderr)

    command = ".venv/bin/python bench/spike.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    runner = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    runs, rows, spreads = runner(run(args))
    others = other_figures(not args.quick and not args.only)
    plan = scenarios(args)
    for title, table_rows in (("Targets (liveblog, measured in this run)", rows),
                              ("From bench/fold.py and bench/pages.py", others)):
        if table_rows:
            print(f"\n{title}:")
            print(text_table(["", "figure", "measured", "target"],
                             [["PASS" if ok else "FAIL", f, v, t] for f, v, t, ok in table_rows]))
    for results in runs.values():
        for r in results:
            if r.profile:
                print(f"\npy-spy, {r.system}:\n" + "\n".join(r.profile))
    if args.json:
        args.json.write_text(json.dumps(
            {"command": command, "when": when, "machine": machine(),
             "runs": {name: [dataclasses.asdict(r) for r in results]
                      for name, results in runs.items()},
             "targets": rows, "others": others}, indent=1, default=str))
    if not args.no_doc:
        write_doc(args.out, render(args, command.strip(), runs, plan, rows, others, when,
                                   spreads))
        print(f"\nwrote {args.out}")
    return runs


if __name__ == "__main__":
    main()
