"""/healthz and /readyz on a real uvicorn and a real Redis that the tests stop, reconfigure
and start again."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from tests.support import (
    RedisServer,
    UvicornThread,
    app_config,
    create_tokens,
    scrape,
    start_redis,
    stop_redis,
    value,
    wait_until,
)


def test_ready_says_what_it_checked(server: UvicornThread) -> None:
    assert httpx.get(f"{server.base_url}/healthz").json() == {"status": "ok", "redis": "ok"}
    ready = httpx.get(f"{server.base_url}/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {
        "redis": "ok", "durability": "ok", "tailers": "ok (0 running)", "draining": "no"}}


def test_not_ready_while_draining(server: UvicornThread) -> None:
    server.hub().draining = True
    ready = httpx.get(f"{server.base_url}/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    problem = ready.json()
    assert problem["type"].endswith("/not-ready") and problem["status"] == 503
    assert problem["detail"] == "not ready: draining: this server is shutting down"
    assert ready.headers["retry-after"]
    server.hub().draining = False
    assert httpx.get(f"{server.base_url}/readyz").status_code == 200


def test_not_ready_on_a_redis_that_stopped_keeping_what_it_acknowledges(
        server: UvicornThread, redis_server: RedisServer) -> None:
    with redis_server.client() as client:
        client.config_set("appendonly", "no")
        try:
            ready = httpx.get(f"{server.base_url}/readyz")
        finally:
            client.config_set("appendonly", "yes")
    assert ready.status_code == 503
    assert ready.json()["detail"].startswith(
        "not ready: durability: Redis keeps no append-only file")
    wait_until(lambda: httpx.get(f"{server.base_url}/readyz").status_code == 200,
               what="ready again once the append-only file is back")


def test_not_ready_without_redis_nor_with_a_stuck_tailer_and_ready_again(
        tmp_path: Path) -> None:
    redis_dir = tmp_path / "redis"
    redis = start_redis(redis_dir)
    tokens = create_tokens(redis.url)
    # A short block: a tailer that hears nothing for 0.2 s + 3 s is stuck.
    with UvicornThread(app_config(redis.url, tail_block_ms=200)) as server, \
            socket.socket() as reader:
        url = server.base_url
        assert httpx.post(f"{url}/api/blogs", json={"slug": "tartus", "title": "T"},
                          headers={"Authorization": f"Bearer {tokens.editor}"}
                          ).status_code == 201
        reader.connect(("127.0.0.1", server.port))
        reader.sendall(b"GET /blogs/tartus/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: "tartus" in server.hub().tailers, what="the blog to be tailed")
        assert httpx.get(f"{url}/readyz").json()["checks"]["tailers"] == "ok (1 running)"

        stop_redis(redis)
        try:
            down = httpx.get(f"{url}/readyz", timeout=10)
            assert down.status_code == 503
            assert down.json()["detail"].startswith("not ready: redis: no answer within 1 s")

            def tailer_stuck() -> bool:
                return "tailers: no answer from Redis lately for tartus" in \
                    httpx.get(f"{url}/readyz", timeout=10).json()["detail"]

            wait_until(tailer_stuck, timeout=15, what="/readyz to name the stuck tailer")
        finally:
            redis = start_redis(redis_dir)  # the same socket and append-only file
        try:
            wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, timeout=15,
                       what="ready again")
            samples = scrape(url)
            assert value(samples, "liveblog_redis_reconnects_total") >= 1
            assert value(samples, "liveblog_redis_errors_total",
                         operation="wait_for_events") >= 1
            assert value(samples, "liveblog_redis_errors_total", operation="ping") >= 1
        finally:
            stop_redis(redis)
