"""Child processes for tests (`liveblog serve`, redis-server), each in a process group of
its own, so that ending one ends everything it started (uvicorn's workers, an embedded
redis-server) even when the test that started it fails half-way."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from liveblog.embedded import EmbeddedRedis
from tests.support import free_socket, wait_until


def _stat(pid: str) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...)."""
    try:
        return (Path("/proc") / pid / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def live_pids() -> Iterator[tuple[int, list[str]]]:
    """Every process that is not a zombie, with its stat fields."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdecimal():
            fields = _stat(proc.name)
            if fields is not None and fields[0] != "Z":
                yield int(proc.name), fields


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group (from /proc)."""
    return [pid for pid, fields in live_pids() if int(fields[2]) == pgid]


def children_of(pid: int) -> list[int]:
    return [child for child, fields in live_pids() if int(fields[1]) == pid]


def cmdline(pid: int) -> list[str]:
    try:
        raw = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def redis_processes_for(data_dir: Path) -> list[int]:
    """Pids of redis-server processes serving this data directory."""
    return [pid for pid, _ in live_pids()
            if any("redis-server" in part for part in cmdline(pid)[:1])
            and str(data_dir.resolve()) in " ".join(cmdline(pid))]


class Spawned:
    """A command run in a new session (so a new process group). `close` kills the whole
    group and waits until none of it is left."""

    def __init__(self, args: list[str], *, env: dict[str, str] | None = None,
                 log: Path | None = None) -> None:
        self.args = args
        self.log = log
        out = open(log, "wb") if log else None  # noqa: SIM115 - the child holds it
        try:
            self.process = subprocess.Popen(
                args, env=env, stdin=subprocess.DEVNULL,
                stdout=out or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if out:
                out.close()
        self.pgid = self.process.pid  # a session leader leads its own process group

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log else ""

    def kill_group(self, signum: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signum)

    def close(self) -> None:
        self.kill_group()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        wait_until(lambda: not group_members(self.pgid), what=f"group {self.pgid} to end")

    def __enter__(self) -> Spawned:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Processes:
    """What a test started; a fixture closes them all when the test ends, pass or fail."""

    def __init__(self) -> None:
        self.started: list[Spawned] = []

    def spawn(self, args: list[str], **kwargs: object) -> Spawned:
        spawned = Spawned(args, **kwargs)  # type: ignore[arg-type]
        self.started.append(spawned)
        return spawned

    def close(self) -> None:
        for spawned in reversed(self.started):
            spawned.close()


def liveblog_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEBLOG_")}
    env.update({"LIVEBLOG_DATA_DIR": str(data_dir), "LIVEBLOG_PORT": str(port), **extra})
    return env


class Served:
    """`liveblog serve` in a child process, as a user starts it."""

    def __init__(self, processes: Processes, data_dir: Path, *args: str,
                 port: int | None = None, **env: str) -> None:
        if port is None:
            sock = free_socket()
            port = sock.getsockname()[1]
            sock.close()
        self.port = port
        self.env = liveblog_env(data_dir, self.port, **env)
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.spawned = processes.spawn(
            [sys.executable, "-m", "liveblog", "serve", *args], env=self.env,
            log=data_dir.parent / f"serve-{self.port}-{time.monotonic_ns()}.log")
        self.process = self.spawned.process
        wait_until(self._healthy, timeout=30, what="liveblog serve to answer /healthz")

    def editor_token(self) -> str:
        """The editor token it printed on its first start (on an empty store)."""
        found = re.search(r"export LIVEBLOG_TOKEN=(\S+)", self.output())
        assert found is not None, self.output()
        return found.group(1)

    def output(self) -> str:
        return self.spawned.output()

    def _healthy(self) -> bool:
        assert self.process.poll() is None, self.output()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> str:
        """Stop it as a user would (SIGTERM); it must exit cleanly, leaving nothing."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        assert self.process.returncode == 0, self.output()
        wait_until(lambda: not group_members(self.spawned.pgid),
                   what="serve's processes to end (it must leave none behind)")
        return self.output()


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in (Path("/proc") / str(pid) / "fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def connection_owner(client_port: int, server_port: int, among: list[int]) -> int | None:
    """Which of the pids `among` holds the server side of the TCP connection from
    127.0.0.1:client_port to server_port (from /proc/net/tcp and each pid's open files)."""
    wanted = f":{server_port:04X}", f":{client_port:04X}"
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (fields[1][-5:], fields[2][-5:]) == wanted and fields[3] == "01":  # ESTABLISHED
            inode = int(fields[9])
    if inode is None:
        return None
    owners = [pid for pid in among if inode in _socket_inodes(pid)]
    return owners[0] if len(owners) == 1 else None


def start_redis_like_embedded(processes: Processes, data_dir: Path) -> Spawned:
    """A redis-server exactly as `liveblog serve` starts its embedded one (append-only
    file, fsync before every reply), on `data_dir`, in a process group of its own.
    Its URL is EmbeddedRedis(data_dir).url."""
    embedded = EmbeddedRedis(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    spawned = processes.spawn(embedded.command())
    wait_until(embedded.answers, what="redis-server to answer")
    return spawned


def first_editor_token(spawned: Spawned, base_url: str, timeout: float = 30) -> str:
    """Wait for a `liveblog serve` started on an empty store to answer, and return the
    editor token it printed on its first start."""

    def answers() -> bool:
        assert spawned.process.poll() is None, spawned.output()
        try:
            return httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(answers, timeout=timeout, what=f"liveblog serve to answer on {base_url}")
    token = re.search(r"export LIVEBLOG_TOKEN=(\S+)", spawned.output())
    assert token is not None, spawned.output()
    return token.group(1)


def read_log(url: str, token: str, slug: str) -> list[dict[str, object]]:
    """A blog's whole event log, page by page, through the editors' API."""
    events: list[dict[str, object]] = []
    after: str | None = None
    with httpx.Client(base_url=url, timeout=10,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        while True:
            params = {"limit": "1000", **({"after": after} if after else {})}
            page = client.get(f"/api/blogs/{slug}/events", params=params)
            assert page.status_code == 200, page.text
            events += page.json()["events"]
            after = page.json()["next"]
            if after is None:
                return events
