"""The naive baseline: how a live blog's stream is usually first written.

    LIVEBLOG_REDIS_URL=unix:///tmp/r.sock .venv/bin/python bench/naive.py --port 8124

A minimal Starlette app on uvicorn (one process). `POST /blogs/{slug}/entries` with
`{"body": ...}` XADDs the update to the blog's Redis stream and answers 201.
`GET /blogs/{slug}/stream` is one sse-starlette generator per reader, each with its own Redis
connection doing its own blocking XREAD, decoding and JSON-encoding every message for itself.
`Last-Event-ID` resumes after that stream id. bench/spike.py runs it as one of the peers.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
import uvicorn
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

URL = os.environ.get("LIVEBLOG_REDIS_URL", "redis://127.0.0.1:6379")


def connect() -> aioredis.Redis:
    # No socket timeout: a blocking XREAD must not time out under redis-py.
    return aioredis.Redis.from_url(URL, socket_timeout=None, single_connection_client=True)


async def post(request: Request) -> Response:
    body = (await request.json())["body"]
    client: aioredis.Redis = request.app.state.redis
    event_id = await client.xadd(f"naive:{request.path_params['slug']}", {"body": body})
    return JSONResponse({"event_id": event_id.decode()}, status_code=201)


async def stream(request: Request) -> Response:
    key = f"naive:{request.path_params['slug']}"
    last = request.headers.get("last-event-id")
    return EventSourceResponse(_messages(key, last), ping=15)


async def _messages(key: str, last: str | None) -> AsyncIterator[dict[str, str]]:
    client = connect()
    try:
        if last is None:
            newest = await client.xrevrange(key, count=1)
            last = newest[0][0].decode() if newest else "0-0"
        yield {"comment": "connected"}
        while True:
            found = await client.xread({key: last}, block=15000, count=100)
            for _, entries in found:
                for event_id, fields in entries:
                    last = event_id.decode()
                    data = json.dumps({"body": fields[b"body"].decode()})
                    yield {"id": last, "event": "entry-posted", "data": data}
    finally:
        await client.aclose()


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def create_app() -> Starlette:
    app = Starlette(routes=[
        Route("/blogs/{slug}/entries", post, methods=["POST"]),
        Route("/blogs/{slug}/stream", stream),
        Route("/healthz", healthz),
    ])
    app.state.redis = aioredis.Redis.from_url(URL)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning",
                backlog=4096, timeout_graceful_shutdown=1)


if __name__ == "__main__":
    main()
