"""Shared fixtures: a real redis-server the tests start themselves (private Unix socket in a
temp dir), and a real uvicorn server in a thread serving the app against it. What they are
built on is in tests/support.py, which tests import; nothing imports this module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import redis
import redis.cluster
from playwright.sync_api import Browser, Page, sync_playwright

from liveblog.store import Store
from tests.support import (
    ARGS,
    CHROMIUM,
    CLUSTER_URLS,
    Api,
    RedisServer,
    Tokens,
    UvicornThread,
    app_config,
    create_tokens,
    open_store,
    start_redis,
    stop_redis,
)

if TYPE_CHECKING:
    from tests.cluster import Cluster
    from tests.processes import Processes

@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope: Playwright's sync API keeps an event loop running in this thread while
    # it lives, and the other test modules need to call asyncio.run.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context; the test fails if a script on it threw."""
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []


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


@pytest.fixture
def store(redis_url: str) -> Iterator[Store]:
    yield open_store(redis_url)


@pytest.fixture
def server(redis_url: str) -> Iterator[UvicornThread]:
    # One per test: its in-process state (tailers, caches) starts as empty as its Redis.
    with UvicornThread(app_config(redis_url)) as running:
        yield running


@pytest.fixture
def tokens(redis_url: str) -> Tokens:
    return create_tokens(redis_url)


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
