"""The newsroom's audience: readers of a blog on two `liveblog serve` processes sharing one
Redis, summed by GET /api/blogs/{slug}/audience on either of them."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from liveblog.embedded import EmbeddedRedis
from tests.processes import Processes, Served, first_editor_token, start_redis_like_embedded
from tests.support import wait_until


def _open_streams(port: int, count: int) -> list[socket.socket]:
    streams = []
    for _ in range(count):
        conn = socket.create_connection(("127.0.0.1", port))
        conn.sendall(b"GET /blogs/b/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(65536).startswith(b"HTTP/1.1 200 ")
        streams.append(conn)
    return streams


def test_the_audience_is_summed_over_processes(tmp_path: Path, processes: Processes) -> None:
    start_redis_like_embedded(processes, tmp_path / "redis")
    url = EmbeddedRedis(tmp_path / "redis").url
    first = Served(processes, tmp_path / "one" / "var", LIVEBLOG_REDIS_URL=url)
    token = first_editor_token(first.spawned, first.url)
    second = Served(processes, tmp_path / "two" / "var", LIVEBLOG_REDIS_URL=url)
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.post(f"{first.url}/api/blogs", headers=auth,
                      json={"slug": "b", "title": "B"}).status_code == 201

    def audience(served: Served) -> dict[str, object]:
        response = httpx.get(f"{served.url}/api/blogs/b/audience", headers=auth, timeout=10)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    assert audience(second) == {"readers": 0, "processes": 0, "lag": None}
    streams = _open_streams(first.port, 2) + _open_streams(second.port, 3)
    try:
        wait_until(lambda: audience(first) == audience(second) == {
            "readers": 5, "processes": 2, "lag": None}, timeout=15,
            what="both processes' readers to be counted")
        # An update reaches them all: both report how long it took.
        assert httpx.post(f"{second.url}/api/blogs/b/entries", headers=auth,
                          json={"body": "Blast"}).status_code == 201

        def lag_reported() -> bool:
            lag = audience(first)["lag"]
            return isinstance(lag, dict) and 0 <= lag["p50_ms"] <= lag["p95_ms"] < 10_000

        wait_until(lag_reported, timeout=15, what="the delivery lag")
        # A process that stops takes its readers out of the count at once.
        second.stop()
        assert audience(first)["readers"] == 2
    finally:
        for conn in streams:
            conn.close()
    wait_until(lambda: audience(first)["readers"] == 0, timeout=15,
               what="the readers who left to stop counting")

    # Editors and reporters only; a blog that does not exist is a 404.
    anonymous = httpx.get(f"{first.url}/api/blogs/b/audience")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{first.url}/api/blogs/nope/audience", headers=auth).status_code == 404
    first.stop()
