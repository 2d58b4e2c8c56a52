"""The ASGI application: routes, error handlers, and the resources its lifespan holds."""

from __future__ import annotations

import contextlib
import logging
import resource
from collections.abc import AsyncIterator
from typing import TypedDict

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
from liveblog.orphans import end_with_supervisor
from liveblog.resources import STATIC
from liveblog.service import Service
from liveblog.store import Store
from liveblog.web.api import routes as api_routes
from liveblog.web.headers import with_security_headers
from liveblog.web.openapi import openapi_document
from liveblog.web.pages import (
    blog_page,
    home,
    newsroom,
    replay_frame,
    replay_page,
)
from liveblog.web.problems import on_http_exception, on_problem, on_unexpected
from liveblog.web.requests import session_cookie
from liveblog.web.stream import PATH as STREAM_PATH
from liveblog.web.stream import stream

access_log = logging.getLogger("liveblog.access")
# Open files a process keeps besides its reader streams and its tailers' connections.
FILES_KEPT = 256


class App:
    """The ASGI app: reader streams go straight to their own ASGI app (see stream.py for
    why they bypass Starlette's middleware); everything else to the Starlette app.

    It also writes the access log, in uvicorn's format, for every request but reader
    streams: in a spike those arrive by the ten thousand, and a log line each cost a
    quarter of a connection's CPU (profiled with 3,000 readers arriving). And it adds the
    browser's security headers (headers.py) to every response but reader streams, which
    send their own: out here, so that even Starlette's last-resort 500 carries them.
    """

    def __init__(self, starlette: Starlette, session_cookie: str) -> None:
        self.starlette = starlette
        self.session_cookie = session_cookie.encode() + b"="

    @property
    def state(self) -> StarletteState:
        return self.starlette.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.starlette(scope, receive, send)
        elif STREAM_PATH.match(scope["path"]):
            await stream(scope, receive, send)
        elif access_log.isEnabledFor(logging.INFO):
            await self._logged(scope, receive,
                               with_security_headers(scope, send, self.session_cookie))
        else:
            await self.starlette(scope, receive,
                                 with_security_headers(scope, send, self.session_cookie))

    async def _logged(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 0

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.starlette(scope, receive, noting_status)
        finally:
            client = scope.get("client")
            query = scope.get("query_string", b"").decode("latin-1")
            access_log.info(
                '%s - "%s %s HTTP/%s" %d',
                f"{client[0]}:{client[1]}" if client else "-",
                scope["method"],
                scope["path"] + ("?" + query if query else ""),
                scope["http_version"],
                status,
            )


class State(TypedDict):
    config: Config
    service: Service
    hub: Hub


def create_app(config: Config | None = None) -> App:
    config = config or Config.from_env()
    if config.redis_url is None:
        raise ConfigError(
            "LIVEBLOG_REDIS_URL is not set: `liveblog serve` starts an embedded Redis and "
            "sets it; to run the app another way, point it at a Redis"
        )
    document = openapi_document(version())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        store = Store.from_config(config)
        try:
            await _check_durability(store, config)
        except BaseException:
            await store.close()  # refusing to start must not leave connections behind
            raise
        service = Service(store)
        hub = Hub(service, queue_size=config.reader_queue,
                  heartbeat_seconds=config.heartbeat_seconds,
                  max_streams=streams_the_process_can_hold(config),
                  max_streams_per_client=config.max_streams_per_ip,
                  max_tailers=config.max_tailers,
                  max_tailers_per_client=config.max_tailers_per_ip)
        app.state.hub = hub  # for introspection: tests, and later metrics
        try:
            yield {"config": config, "service": service, "hub": hub}
        finally:
            await hub.close()
            await store.close()

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    routes: list[BaseRoute] = [*api_routes()]
    routes.append(Route("/openapi.json", openapi, methods=["GET"]))
    routes += [
        Route("/blogs/{slug}", blog_page, methods=["GET"]),
        Route("/blogs/{slug}/replay", replay_page, methods=["GET"]),
        Route("/blogs/{slug}/replay/frame", replay_frame, methods=["GET"]),
        Route("/", home, methods=["GET"]),
        Route("/newsroom", newsroom, methods=["GET"]),
        Route("/newsroom/{slug}", newsroom, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return App(session_cookie=session_cookie(config), starlette=Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            Problem: on_problem,
            HTTPException: on_http_exception,
            Exception: on_unexpected,
        },
    ))


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
    return create_app(Config.from_env())
