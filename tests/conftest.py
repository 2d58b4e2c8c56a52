"""Shared fixtures: a real redis-server the tests start themselves (private Unix socket in a
temp dir), and a real uvicorn server in a thread serving the app against it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import redis
import redis.cluster
import uvicorn
from playwright.sync_api import Browser, sync_playwright
from starlette.types import Receive, Scope, Send

from liveblog.config import Config
from liveblog.embedded import find_redis_server
from liveblog.live import Hub
from liveblog.store import Store
from liveblog.web.app import create_app

if TYPE_CHECKING:
    from tests.cluster import Cluster
    from tests.processes import Processes

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope: Playwright's sync API keeps an event loop running in this thread while
    # it lives, and the other test modules need to call asyncio.run.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()



@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    socket_path: Path
    directory: Path

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket_path))


def start_redis(directory: Path) -> RedisServer:
    directory.mkdir(parents=True, exist_ok=True)
    sock = directory / "redis.sock"
    process = subprocess.Popen(
        [find_redis_server(), "--port", "0", "--unixsocket", str(sock), "--dir", str(directory),
         "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
         "--logfile", str(directory / "redis.log")],
        stdout=subprocess.DEVNULL,
    )
    server = RedisServer(process, sock, directory)
    try:
        wait_until(lambda: _pings(server), what="redis-server to answer")
    except BaseException:
        process.kill()
        process.wait()
        raise
    return server


def stop_redis(server: RedisServer) -> None:
    server.process.terminate()
    server.process.wait(timeout=10)


def _pings(server: RedisServer) -> bool:
    try:
        with server.client() as client:
            return bool(client.ping())
    except (redis.exceptions.ConnectionError, OSError):
        return False


def wait_until(condition, timeout: float = 10.0, what: str = "a condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    stop_redis(server)


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Start child processes through this: when the test ends, pass or fail, each is
    killed with everything it started (its process group) and waited for."""
    from tests.processes import Processes

    started = Processes()
    try:
        yield started
    finally:
        started.close()


# Modules marked `backends` run each test that uses Redis twice: on the single
# redis-server and on a real 3-master cluster (started once, on the first such test).
BACKENDS = ("single", "cluster")
# The URLs of clusters the tests started: app_config and open_store set
# LIVEBLOG_REDIS_CLUSTER for them, so a test names a Redis by its URL alone.
CLUSTER_URLS: set[str] = set()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "backends: run the module's Redis tests on a single Redis and a cluster")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
            "backends"):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from tests.cluster import start_cluster

    cluster = start_cluster(tmp_path_factory.mktemp("cluster"))
    CLUSTER_URLS.add(cluster.url)
    yield cluster
    CLUSTER_URLS.discard(cluster.url)
    cluster.stop()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """"single" unless the module is marked `backends` (then each of BACKENDS)."""
    return str(getattr(request, "param", "single"))


@pytest.fixture
def redis_url(backend: str, request: pytest.FixtureRequest) -> str:
    """A real, empty Redis for each test."""
    if backend == "cluster":
        cluster: Cluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        return cluster.url
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def raw_redis(redis_url: str) -> Iterator[redis.Redis | redis.cluster.RedisCluster]:
    """A plain (synchronous) client of the test's Redis, to look under the store."""
    if redis_url in CLUSTER_URLS:
        client: redis.Redis | redis.cluster.RedisCluster = (
            redis.cluster.RedisCluster.from_url(redis_url))
    else:
        client = redis.Redis(unix_socket_path=redis_url.removeprefix("unix://"))
    with client:
        yield client


def open_store(url: str, **options: object) -> Store:
    """Store.from_url, as a cluster's if `url` is one the tests started."""
    return Store.from_url(url, cluster=url in CLUSTER_URLS, **options)  # type: ignore[arg-type]


@pytest.fixture
def store(redis_url: str) -> Iterator[Store]:
    yield open_store(redis_url)


def free_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def free_port() -> int:
    """A port nothing listens on now (for a server started in another process)."""
    with free_socket() as sock:
        return int(sock.getsockname()[1])


class UvicornThread:
    """The app served by a real uvicorn, in a thread of the test process, with the HTTP
    protocol `liveblog serve` runs. If it cannot start, entering raises why (the app's
    startup error, such as a ConfigError) as soon as the thread ends."""

    def __init__(self, config: Config, port: int = 0,
                 http: str = "liveblog.web.protocol:StreamingHttpToolsProtocol",
                 **app_options: float) -> None:
        self.sock = free_socket(port)
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(config, **app_options)
        self.failure: BaseException | None = None
        self.server = uvicorn.Server(
            # Streams never end by themselves; on exit, cut them after half a second (in a
            # thread there are no signal handlers for sse-starlette to notice a shutdown by).
            uvicorn.Config(self._serve_app, log_level="warning", lifespan="on", interface="asgi3",
                           timeout_graceful_shutdown=0.5, http=http)
        )
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def _serve_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            # uvicorn only logs a failed startup, then exits its loop with SystemExit(3).
            if scope["type"] == "lifespan" and not self.server.started:
                self.failure = exc
            raise

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:
            if self.failure is None:
                self.failure = exc

    def hub(self) -> Hub:
        hub: Hub = self.app.state.hub
        return hub

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        wait_until(lambda: self.server.started or self.failure is not None
                   or not self.thread.is_alive(), what="uvicorn to start")
        if not self.server.started:
            self.thread.join(timeout=2)  # its loop is closing; nothing to wait for
            self.sock.close()
            if self.failure is not None:
                raise self.failure
            raise AssertionError("uvicorn stopped before it started")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def app_config(redis_url: str, **overrides: object) -> Config:
    overrides.setdefault("redis_cluster", redis_url in CLUSTER_URLS)
    return Config.from_env({}, redis_url=redis_url, **overrides)


@pytest.fixture
def server(redis_url: str) -> Iterator[UvicornThread]:
    # One per test: its in-process state (tailers, caches) starts as empty as its Redis.
    with UvicornThread(app_config(redis_url)) as running:
        yield running


@dataclass(frozen=True)
class Tokens:
    editor: str
    reporter: str
    other_reporter: str
    second_editor: str


def create_tokens(url: str) -> Tokens:
    async def create() -> Tokens:
        store = open_store(url)
        from liveblog.service import utcnow

        made = {}
        for name, role in (("ed", "editor"), ("rania", "reporter"), ("omar", "reporter"),
                           ("eve", "editor")):
            secret = f"test-token-{name}"
            assert await store.create_token(name, role, secret, utcnow())
            made[name] = secret
        await store.close()
        return Tokens(made["ed"], made["rania"], made["omar"], made["eve"])

    return run_async(create())


def run_async(coro):  # type: ignore[no-untyped-def]
    """asyncio.run in a thread of its own: Playwright's sync API keeps a loop running here."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture
def tokens(redis_url: str) -> Tokens:
    return create_tokens(redis_url)


class Api:
    """An httpx client for the running server, with a bearer token per call."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def __call__(self, method: str, path: str, token: str | None = None,
                 **kwargs: object) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, path, headers=headers, **kwargs)


@pytest.fixture
def api(server: UvicornThread, redis_url: str) -> Iterator[Api]:
    client = Api(server.base_url)
    yield client
    client.http.close()


@pytest.fixture
def blog(api: Api, tokens: Tokens) -> str:
    """A freshly opened blog's slug."""
    response = api("POST", "/api/blogs", tokens.editor,
                   json={"slug": "tartus", "title": "Blasts in Tartus and Jableh"})
    assert response.status_code == 201, response.text
    return "tartus"
