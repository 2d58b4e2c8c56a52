"""Helpers the tests share: starting a real redis-server and a real uvicorn, the API client
and tokens, waiting for a condition, the browser's launch options, and the pure domain's
little in-memory log. Test modules and bench/ import these from here; conftest.py holds only
the fixtures built on them, and no test module imports another.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import redis
import uvicorn
from hypothesis import strategies as st
from playwright.sync_api import Page, expect
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Receive, Scope, Send

from liveblog.config import Config
from liveblog.domain import commands
from liveblog.domain.commands import (
    BlogChanges,
    EntryChanges,
    FactInput,
    NewBlog,
    NewEntry,
    Pin,
    Retraction,
)
from liveblog.domain.events import Actor, Event, Recorded
from liveblog.domain.state import Blog, apply
from liveblog.embedded import find_redis_server
from liveblog.live import Hub
from liveblog.store import Store
from liveblog.web.app import create_app

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

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


# The URLs of clusters the tests started: app_config and open_store set
# LIVEBLOG_REDIS_CLUSTER for them, so a test names a Redis by its URL alone.
CLUSTER_URLS: set[str] = set()

def open_store(url: str, **options: object) -> Store:
    """Store.from_url, as a cluster's if `url` is one the tests started."""
    return Store.from_url(url, cluster=url in CLUSTER_URLS, **options)  # type: ignore[arg-type]

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
                 **app_options: object) -> None:
        self.sock = free_socket(port)
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        # app_options: create_app's own (shorter presence and lock times, a shorter
        # webhook retry schedule).
        self.app = create_app(config, **app_options)  # type: ignore[arg-type]
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


# -- the pure domain: actors, a start time, and an in-memory log to fold ----------------------

EDITOR = Actor("ed", "editor", "id-ed")
RANIA = Actor("rania", "reporter", "id-rania")
OMAR = Actor("omar", "reporter", "id-omar")
T0 = datetime(2026, 5, 23, 9, 0, tzinfo=UTC)


class Log:
    """A tiny in-memory stand-in for the store's append, for pure tests of the fold."""

    def __init__(self) -> None:
        self.events: list[Recorded] = []
        self.states: list[Blog] = []
        self.ids = (f"e{n}" for n in itertools.count(1))

    @property
    def blog(self) -> Blog | None:
        return self.states[-1] if self.states else None

    def append(self, actor: Actor, event: Event | None) -> Blog | None:
        if event is not None:
            version = len(self.events) + 1
            rec = Recorded(
                id=f"{1000 + version}-0", version=version, at=T0 + timedelta(minutes=version),
                actor=actor.name, role=actor.role, event=event, actor_id=actor.id or None,
            )
            self.events.append(rec)
            self.states.append(apply(self.blog, rec))
        return self.blog


def opened() -> Log:
    log = Log()
    log.append(EDITOR, commands.open_blog(None, EDITOR, NewBlog(slug="tartus", title="Blasts")))
    return log


def post(log: Log, actor: Actor, body: str = "Blast at the bus station", **kw: object) -> str:
    """Post an entry to an in-memory log; its id."""
    entry_id = next(log.ids)
    assert log.blog is not None
    log.append(actor, commands.post_entry(log.blog, actor, NewEntry(body=body, **kw), entry_id))
    return entry_id



# Random steps of a newsroom, for property tests of the fold (test_domain, test_checkpoints).
actors = st.sampled_from([EDITOR, RANIA, OMAR])
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
               min_size=1, max_size=30)
action = st.one_of(
    st.tuples(st.just("post"), actors, text, st.none() | text, st.booleans()),
    st.tuples(st.just("edit"), actors, st.integers(0, 20), text, st.none() | text),
    st.tuples(st.just("retract"), actors, st.integers(0, 20), text),
    st.tuples(st.just("pin"), actors, st.none() | st.integers(0, 20)),
    st.tuples(st.just("fact"), actors, st.sampled_from(["deaths", "injured"]), text,
              st.none() | st.integers(0, 500)),
    st.tuples(st.just("status"), actors, st.sampled_from(["live", "ended"])),
    st.tuples(st.just("title"), actors, text),
)


def run(log: Log, step: tuple[object, ...]) -> None:
    actor = step[1]
    assert isinstance(actor, Actor)
    blog = log.blog
    assert blog is not None
    posted = [e.event.entry_id for e in log.events if e.event.__class__.__name__ == "EntryPosted"]

    def pick(n: object) -> str:
        return posted[int(n) % len(posted)] if posted else "none"

    match step:
        case ("post", _, body, title, key_event):
            log.append(actor, commands.post_entry(
                blog, actor, NewEntry(body=body, title=title, key_event=key_event),
                next(log.ids)))
        case ("edit", _, n, body, note):
            log.append(actor, commands.edit_entry(blog, actor, pick(n),
                                                  EntryChanges(body=body, note=note)))
        case ("retract", _, n, reason):
            log.append(actor, commands.retract_entry(blog, actor, pick(n),
                                                     Retraction(reason=reason)))
        case ("pin", _, n):
            log.append(actor, commands.change_pin(
                blog, actor, Pin(entry_id=None if n is None else pick(n))))
        case ("fact", _, key, value, numeric):
            log.append(actor, commands.update_fact(
                blog, actor, key, FactInput(label=key.title(), value=value, numeric=numeric)))
        case ("status", _, status):
            log.append(actor, commands.update_blog(blog, actor, BlogChanges(status=status)))
        case ("title", _, title):
            log.append(actor, commands.update_blog(blog, actor, BlogChanges(title=title)))
        case ("key", _, n, title, key_event):
            log.append(actor, commands.edit_entry(
                blog, actor, pick(n), EntryChanges(title=title, key_event=key_event)))

# -- the HTTP API -----------------------------------------------------------------------------

PROBLEM = "application/problem+json"
SECOND = 1000  # ms: "within a second", for Playwright's expect timeouts


def assert_problem(response, status: int, *, fields: set[str] | None = None) -> dict:  # type: ignore[no-untyped-def, type-arg]
    """An RFC 9457 problem with this status (and, if given, exactly these fields in error)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith("https://") and problem["title"] and problem["detail"]
    if fields is not None:
        assert {e["field"] for e in problem["errors"]} == fields
    return problem  # type: ignore[no-any-return]


def post_entry(api: Api, tokens: Tokens, body: str) -> tuple[str, str]:
    """Post an entry to the blog "tartus" as the reporter; its id and its event's id."""
    response = api("POST", "/api/blogs/tartus/entries", tokens.reporter, json={"body": body})
    assert response.status_code == 201, response.text
    return response.json()["entry"]["id"], response.json()["event_id"]


# -- pages in Chromium -------------------------------------------------------------------------

def open_live(page: Page, server: UvicornThread, path: str = "/blogs/tartus") -> None:
    """A live page of the blog "tartus" (the reader page, or `path`), once its stream is
    open: the server has registered this page as a reader."""
    response = page.goto(server.base_url + path)
    assert response is not None and response.status == 200
    tailer = None
    for _ in range(200):
        tailer = server.hub().tailers.get("tartus")
        if tailer and tailer.subscribers:
            return
        page.wait_for_timeout(10)
    raise AssertionError("the page did not open its stream")


# Records, in the page, every message its EventSource delivers: [kind, id].
RECORD_STREAM = """
(() => {
  const Native = window.EventSource;
  const kinds = ["snapshot", "entry-posted", "entry-edited", "entry-retracted",
                 "pin-changed", "fact-updated", "blog-updated"];
  window.received = [];
  window.EventSource = class extends Native {
    constructor(url, options) {
      super(url, options);
      for (const kind of kinds) {
        this.addEventListener(kind, (m) => window.received.push([kind, m.lastEventId]));
      }
    }
  };
})();
"""


def wait_for_frame(page: Page, event_id: str) -> None:
    expect(page.locator("#frame")).to_have_attribute("data-event-id", event_id)
    expect(page.frame_locator("#frame").locator("h1")).to_be_visible()



class OtherSite:
    """Another site on this machine (a plain http.server on its own port): `html` at /, a
    plain page anywhere else. Loopback like the app, so Chromium's private network rules
    stay out of it."""

    def __init__(self) -> None:
        self.html = ""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = (site.html if self.path == "/" else "<p>plain</p>").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()

# -- webhooks -------------------------------------------------------------------------------

@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    # What the receiver answered (None while it has not yet).
    status: int | None = None

    @property
    def json(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.body)  # type: ignore[no-any-return]


class Receiver:
    """A webhook endpoint (for test_webhooks and the console's test): records every
    request, answers `answer(n)` to the n-th (from 0), and while `gate` is clear holds each
    request unanswered."""

    def __init__(self, answer: Callable[[int], int] = lambda n: 200) -> None:
        self.answer = answer
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                got = Received(body, {k.lower(): v for k, v in self.headers.items()})
                with receiver.lock:
                    n = len(receiver.received)
                    receiver.received.append(got)
                receiver.gate.wait(60)
                status = receiver.answer(n)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                got.status = status

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def requests(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def delivered(self) -> list[Received]:
        """What it took (answered 2xx), in the order it was sent."""
        return [r for r in self.requests() if r.status is not None and 200 <= r.status < 300]

    def close(self) -> None:
        self.gate.set()
        self.http.shutdown()
        self.http.server_close()


# -- /metrics -----------------------------------------------------------------------------------

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(base_url: str) -> Samples:
    response = httpx.get(f"{base_url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for one never exported (a counter nothing has moved)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
