"""The ASGI application: routes, error handlers, and the resources its lifespan holds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any, TypedDict

from starlette.applications import Starlette
from starlette.datastructures import State as StarletteState
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from liveblog import version
from liveblog.config import Config
from liveblog.durability import judge
from liveblog.errors import ConfigError, Problem, StoreUnavailable
from liveblog.live import Hub
from liveblog.logs import request_id, request_id_from
from liveblog.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from liveblog.metrics import Metrics
from liveblog.orphans import end_with_supervisor
from liveblog.presence import LOCK_TTL_SECONDS, PRESENCE_TTL_SECONDS, Presence
from liveblog.resources import STATIC
from liveblog.scheduler import Scheduler
from liveblog.service import Service
from liveblog.store import Store
from liveblog.web.api import routes as api_routes
from liveblog.web.embed import embed_page
from liveblog.web.feeds import atom_feed, json_feed
from liveblog.web.headers import with_security_headers
from liveblog.web.openapi import openapi_document
from liveblog.web.pages import (
    blog_page,
    entry_page,
    home,
    newsroom,
    replay_frame,
    replay_page,
)
from liveblog.web.problems import on_http_exception, on_problem, on_unexpected
from liveblog.web.requests import session_cookie
from liveblog.web.stream import PATH as STREAM_PATH
from liveblog.web.stream import stream
from liveblog.webhooks import Retry, Webhooks

access_log = logging.getLogger("liveblog.access")
# Open files a process keeps besides its reader streams and its tailers' connections.
FILES_KEPT = 256


class App:
    """The ASGI app: reader streams go straight to their own ASGI app (see stream.py for
    why they bypass Starlette's middleware); everything else to the Starlette app.

    Every request but reader streams gets a request id (the client's X-Request-ID if it is
    a sane one, else a new one; echoed in the response's X-Request-ID), is counted and
    timed by route template and status (metrics.py), and gets one access log line
    (logs.py). Reader streams get none of that: in a spike they arrive by the ten
    thousand, and a log line each cost a quarter of a connection's CPU (profiled with
    3,000 readers arriving); they are counted by the readers and delivery figures. It
    also adds the browser's security headers (headers.py) to every response but reader
    streams, which send their own: out here, so that even Starlette's last-resort 500
    carries them.
    """

    def __init__(self, starlette: Starlette, session_cookie: str,
                 metrics: Metrics | None = None) -> None:
        self.starlette = starlette
        self.session_cookie = session_cookie.encode() + b"="
        self.metrics = metrics or Metrics()

    @property
    def state(self) -> StarletteState:
        return self.starlette.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.starlette(scope, receive, send)
        elif STREAM_PATH.match(scope["path"]):
            await stream(scope, receive, send)
        else:
            await self._observed(scope, receive,
                                 with_security_headers(scope, send, self.session_cookie))

    async def _observed(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 0
        rid = request_id_from(_header(scope, b"x-request-id"))
        token = request_id.set(rid)
        started = time.perf_counter()

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.starlette(scope, receive, noting_status)
        finally:
            seconds = time.perf_counter() - started
            # The template Starlette matched ("/api/blogs/{slug}"), never the raw path: a
            # label per path would be a series per blog, entry and typo.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.request(scope["method"], route, status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                _log_request(scope, route, status, seconds, rid)
            request_id.reset(token)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _log_request(scope: Scope, route: str, status: int, seconds: float, rid: str) -> None:
    client = scope.get("client")
    address = f"{client[0]}:{client[1]}" if client else "-"
    # The path, not the query string (it may carry what its sender thought private); and
    # none of the headers (Authorization, cookies).
    path = scope["path"]
    access_log.info(
        '%s - "%s %s HTTP/%s" %d %.1fms %s', address, scope["method"], path,
        scope["http_version"], status, seconds * 1000, rid,
        extra={"method": scope["method"], "route": route, "path": path, "status": status,
               "duration_ms": round(seconds * 1000, 3), "client": address})


class State(TypedDict):
    config: Config
    service: Service
    hub: Hub
    presence: Presence
    webhooks: Webhooks


def create_app(config: Config | None = None, *, presence_ttl: float = PRESENCE_TTL_SECONDS,
               lock_ttl: float = LOCK_TTL_SECONDS, webhook_retry: Retry | None = None) -> App:
    """The app; `presence_ttl` and `lock_ttl` (seconds) are for tests that watch presence
    and locks lapse (presence.py); `webhook_retry`, the webhooks' retry schedule if not the
    documented one (tests shrink it to milliseconds)."""
    config = config or Config.from_env()
    if config.redis_url is None:
        raise ConfigError(
            "LIVEBLOG_REDIS_URL is not set: `liveblog serve` starts an embedded Redis and "
            "sets it; to run the app another way, point it at a Redis"
        )
    document = openapi_document(version())
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        store = Store.from_config(config)
        try:
            await _check_durability(store, config)
        except BaseException:
            await store.close()  # refusing to start must not leave connections behind
            raise
        store.on_appended = lambda slug: metrics.appended.labels(metrics.blog(slug)).inc()
        store.on_unavailable = lambda operation: metrics.redis_errors.labels(operation).inc()
        service = Service(store)
        hub = Hub(service, metrics=metrics, queue_size=config.reader_queue,
                  heartbeat_seconds=config.heartbeat_seconds,
                  max_streams=streams_the_process_can_hold(config),
                  max_streams_per_client=config.max_streams_per_ip,
                  max_tailers=config.max_tailers,
                  max_tailers_per_client=config.max_tailers_per_ip,
                  drain_retry_seconds=config.drain_retry_seconds)
        app.state.hub = hub  # for introspection: tests, and later metrics
        webhooks = Webhooks(store, forbid_private=config.webhooks_forbid_private,
                            timeout_seconds=config.webhooks_timeout_seconds,
                            retry=webhook_retry)
        app.state.webhooks = webhooks
        webhooks.start()
        drain_on_signals(hub, webhooks)
        # Publishes scheduled entries at their time (one of them, whichever process).
        scheduler = Scheduler(service)
        app.state.scheduler = scheduler
        scheduler.start()
        try:
            yield {"config": config, "service": service, "hub": hub,
                   "presence": Presence(service, presence_ttl=presence_ttl,
                                        lock_ttl=lock_ttl),
                   "webhooks": webhooks}
        finally:
            await webhooks.close()
            await scheduler.close()
            await hub.close()
            await store.close()
            metrics.close()

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def exposition(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    routes: list[BaseRoute] = [*api_routes()]
    routes.append(Route("/openapi.json", openapi, methods=["GET"]))
    routes.append(Route("/metrics", exposition, methods=["GET"]))
    routes += [
        Route("/blogs/{slug}", blog_page, methods=["GET"]),
        Route("/blogs/{slug}/entries/{entry_id}", entry_page, methods=["GET"]),
        Route("/blogs/{slug}/feed.atom", atom_feed, methods=["GET"]),
        Route("/blogs/{slug}/feed.json", json_feed, methods=["GET"]),
        Route("/blogs/{slug}/embed", embed_page, methods=["GET"]),
        Route("/blogs/{slug}/replay", replay_page, methods=["GET"]),
        Route("/blogs/{slug}/replay/frame", replay_frame, methods=["GET"]),
        Route("/", home, methods=["GET"]),
        Route("/newsroom", newsroom, methods=["GET"]),
        Route("/newsroom/{slug}", newsroom, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return App(session_cookie=session_cookie(config), metrics=metrics, starlette=Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            Problem: on_problem,
            HTTPException: on_http_exception,
            Exception: on_unexpected,
        },
    ))


def drain_on_signals(hub: Hub, webhooks: Webhooks | None = None) -> None:
    """Drain the hub (and stop the webhooks: a delivery in flight is made again by the
    next process that leads) the moment SIGTERM or SIGINT arrives, then let the handler
    that was there (uvicorn's) run as before.

    uvicorn notices a signal on its next tick (up to 0.1 s later) and only then stops
    accepting; draining at once means readers are on their way before that, and the tailers
    are marked stopping before a Redis that got the same signal (the embedded one, under
    a process-group or systemd stop) goes away under them, which they would log as a fault.
    The drain itself runs on the event loop, never inside the signal handler (which can
    interrupt a broadcast half-way through the set of readers). Only from the main thread
    (where signals are delivered, and where `liveblog serve` runs its loop); uvicorn
    restores its own handlers when it returns."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if not callable(previous):
            continue  # nobody handles it (SIG_DFL, SIG_IGN): it is not ours to change

        def on_signal(received: int, frame: FrameType | None,
                      previous: Callable[[int, FrameType | None], Any] = previous) -> None:
            loop.call_soon_threadsafe(hub.drain)
            if webhooks is not None:
                loop.call_soon_threadsafe(webhooks.drain)
            previous(received, frame)

        signal.signal(signum, on_signal)


async def _check_durability(store: Store, config: Config) -> None:
    """Every process checks (see durability.py); an unreachable Redis is not a reason to
    refuse to start (readers get 503s until it is back), so that is only logged."""
    try:
        found = await store.durability()
    except StoreUnavailable:
        logging.getLogger("liveblog.durability").warning(
            "Redis unreachable at startup: its durability settings are not checked")
        return
    judge(found, config.durability)


def streams_the_process_can_hold(config: Config) -> int:
    """LIVEBLOG_MAX_STREAMS, or fewer if the open-file limit leaves no room for them: past
    it, accept() fails (uvicorn stops accepting for a second, every request waits) and
    Redis connections cannot be opened, where a 503 would have said what happened."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return config.max_streams
    # Kept for the rest: a Redis connection per tailer, the pools, other requests, files.
    room = soft - config.max_tailers - FILES_KEPT
    if config.max_streams <= room:
        return config.max_streams
    allowed = max(room, 1)
    logging.getLogger("liveblog").warning(
        "LIVEBLOG_MAX_STREAMS is %d, but the open-file limit (ulimit -n) is %d: holding at "
        "most %d streams; raise the limit to hold more", config.max_streams, soft, allowed)
    return allowed


def app_from_env() -> App:
    """The factory uvicorn's workers call (`liveblog.web.app:app_from_env`)."""
    end_with_supervisor()  # a worker of `serve --workers N` must not outlive serve
    return create_app(Config.for_worker())
