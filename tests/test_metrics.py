"""GET /metrics against what the test did: a real uvicorn (and `liveblog serve --workers 2`)
on a real Redis, its exposition parsed with prometheus-client's own parser."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import time
from pathlib import Path

import httpx
from prometheus_client import Histogram

from liveblog.metrics import Metrics, observe_many
from tests.processes import (
    Processes,
    Served,
    children_of,
    cmdline,
    connection_owner,
    first_editor_token,
)
from tests.sse import reading
from tests.support import (
    Api,
    Samples,
    Tokens,
    UvicornThread,
    app_config,
    parse,
    scrape,
    value,
    wait_until,
)


def test_metrics_say_exactly_what_the_server_did(
        server: UvicornThread, api: Api, tokens: Tokens) -> None:
    readers, posts = 3, 5
    assert api("POST", "/api/blogs", tokens.editor,
               json={"slug": "tartus", "title": "T"}).status_code == 201
    assert api("GET", "/no/such/page").status_code == 404
    assert api("GET", "/api/blogs/nope").status_code == 404

    async def scenario() -> tuple[Samples, float]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client, \
                contextlib.AsyncExitStack() as stack:
            opened = [await stack.enter_async_context(reading(client, "tartus"))
                      for _ in range(readers)]
            started = time.time()
            for n in range(posts):
                posted = await client.post(
                    "/api/blogs/tartus/entries", json={"body": f"update {n}"},
                    headers={"Authorization": f"Bearer {tokens.reporter}"})
                assert posted.status_code == 201
            for reader in opened:
                await reader.wait_for(1 + posts)
            took = time.time() - started
            return parse((await client.get("/metrics")).text), took

    samples, took = asyncio.run(scenario())
    blog = {"blog": "tartus"}
    assert value(samples, "liveblog_events_appended_total", **blog) == 1 + posts
    assert value(samples, "liveblog_readers_connected", **blog) == readers
    assert value(samples, "liveblog_tailers_running") == 1
    # A snapshot each, then every post to every reader.
    assert value(samples, "liveblog_messages_delivered_total", **blog) == readers * (1 + posts)
    lag = "liveblog_delivery_lag_seconds"
    assert value(samples, f"{lag}_count") == readers * posts
    # Each delivery took at most the time from the first post to the last arrival.
    assert 0 < value(samples, f"{lag}_sum") <= readers * posts * took
    assert value(samples, f"{lag}_bucket", le="+Inf") == readers * posts
    assert value(samples, "liveblog_slow_readers_cut_off_total") == 0
    assert value(samples, "liveblog_redis_reconnects_total") == 0
    assert not [key for key in samples if key[0] == "liveblog_redis_errors_total"]
    requests = "liveblog_http_requests_total"
    assert value(samples, requests, method="POST", route="/api/blogs", status="201") == 1
    assert value(samples, requests, method="POST", route="/api/blogs/{slug}/entries",
                 status="201") == posts
    assert value(samples, requests, method="GET", route="unmatched", status="404") == 1
    assert value(samples, requests, method="GET", route="/api/blogs/{slug}",
                 status="404") == 1
    assert value(samples, "liveblog_http_request_duration_seconds_count", method="POST",
                 route="/api/blogs/{slug}/entries") == posts
    # Reader streams are not requests here, and no raw path is a label.
    assert not [key for key in samples if key[0] == requests
                and dict(key[1])["route"] not in ("/api/blogs", "/api/blogs/{slug}",
                                                  "/api/blogs/{slug}/entries", "unmatched")]

    # The readers left: the gauge says so (the tailer stays, idle, for a while).
    def gone() -> bool:
        return value(scrape(server.base_url), "liveblog_readers_connected", **blog) == 0

    wait_until(gone, what="readers_connected to go back to 0")
    after = scrape(server.base_url)
    assert value(after, "liveblog_tailers_running") == 1
    # The earlier scrape was counted, by its route.
    assert value(after, requests, method="GET", route="/metrics", status="200") >= 1


def test_a_slow_reader_cut_off_is_counted(redis_url: str, tokens: Tokens) -> None:
    server = UvicornThread(app_config(redis_url, reader_queue=4))
    # Modest kernel send buffers (see test_stream.py): the stalled reader is behind soon.
    server.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    with server, Api(server.base_url).http as http, contextlib.ExitStack() as stack:
        auth = {"Authorization": f"Bearer {tokens.reporter}"}
        assert http.post("/api/blogs", json={"slug": "tartus", "title": "T"},
                         headers={"Authorization": f"Bearer {tokens.editor}"}
                         ).status_code == 201
        stalled = socket.socket()
        stack.callback(stalled.close)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", server.port))
        stalled.sendall(b"GET /blogs/tartus/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: "tartus" in server.hub().tailers
                   and len(server.hub().tailers["tartus"].subscribers) == 1,
                   what="the stalled reader to subscribe")
        tailer = server.hub().tailers["tartus"]
        body = "A long update. " * 1300  # near the 20,000 characters allowed
        posted = 0
        while tailer.dropped == 0 and posted < 500:
            assert http.post("/api/blogs/tartus/entries", json={"body": body},
                             headers=auth).status_code == 201
            posted += 1
        wait_until(lambda: tailer.dropped == 1, what="the stalled reader to be cut off")
        samples = scrape(server.base_url)
        assert value(samples, "liveblog_slow_readers_cut_off_total") == 1
        assert value(samples, "liveblog_readers_connected", blog="tartus") == 0
        assert value(samples, "liveblog_events_appended_total", blog="tartus") == 1 + posted


def test_many_observations_at_once_are_as_many_observations() -> None:
    one_by_one, at_once = Metrics(), Metrics()
    for seconds, count in ((0.003, 7), (0.2, 1), (0.2, 250), (3.0, 2), (99.0, 4)):
        for _ in range(count):
            one_by_one.lag.observe(seconds)
        at_once.observe_lag(seconds, count)
    observe_many(at_once.lag, 1.0, 0)  # nothing
    lag = "liveblog_delivery_lag_seconds"
    expected = {k: v for k, v in parse(one_by_one.exposition().decode()).items()
                if k[0].startswith(lag) and not k[0].endswith("_created")}
    got = {k: v for k, v in parse(at_once.exposition().decode()).items()
           if k[0].startswith(lag) and not k[0].endswith("_created")}
    # The sum is one multiplication instead of many additions: equal up to rounding.
    total = (f"{lag}_sum", frozenset())
    assert abs(got.pop(total) - expected.pop(total)) < 1e-9
    assert got == expected and expected[(f"{lag}_count", frozenset())] == 264
    assert isinstance(at_once.lag, Histogram)


def test_workers_add_up_their_figures(tmp_path: Path, processes: Processes) -> None:
    """`serve --workers 2`: any worker answers a scrape with the sum over both; a worker
    killed stops counting its readers."""
    served = Served(processes, tmp_path / "var", "--workers", "2")
    token = first_editor_token(served.spawned, served.url)
    auth = {"Authorization": f"Bearer {token}"}
    workers = [pid for pid in children_of(served.process.pid)
               if "--multiprocessing-fork" in cmdline(pid)]
    assert len(workers) == 2
    # Their shared directory: serve's own, as the user set none.
    environ = Path(f"/proc/{workers[0]}/environ").read_bytes().split(b"\0")
    shared = Path(next(v for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR="))
                  .split(b"=", 1)[1].decode())
    assert shared.is_dir() and shared.name.startswith("liveblog-metrics-")
    assert httpx.post(f"{served.url}/api/blogs", headers=auth,
                      json={"slug": "b", "title": "B"}).status_code == 201
    posts = 10
    for n in range(posts):  # new connections: either worker appends
        assert httpx.post(f"{served.url}/api/blogs/b/entries", headers=auth,
                          json={"body": f"update {n}"}).status_code == 201

    # Streams until both workers hold some (the kernel hands connections to either).
    streams: list[socket.socket] = []
    held: dict[int, int] = {}
    try:
        while (len(held) < 2 or min(held.values()) < 2) and len(streams) < 200:
            conn = socket.create_connection(("127.0.0.1", served.port))
            conn.sendall(b"GET /blogs/b/stream HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.recv(65536).startswith(b"HTTP/1.1 200 ")
            owner = connection_owner(conn.getsockname()[1], served.port, workers)
            assert owner is not None
            held[owner] = held.get(owner, 0) + 1
            streams.append(conn)
        assert len(held) == 2, held
        total = len(streams)

        # Every scrape, whichever worker answers it, says the same sums.
        answered_by: set[int] = set()
        for _ in range(200):
            with socket.create_connection(("127.0.0.1", served.port)) as conn:
                conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                raw = _http_response(conn)
                # Asked while the connection is still open, after its answer: a worker has
                # accepted it by then (asked before, a slow worker's was often not yet).
                owner = connection_owner(conn.getsockname()[1], served.port, workers)
            samples = parse(_http_body(raw))
            assert value(samples, "liveblog_readers_connected", blog="b") == total
            assert value(samples, "liveblog_events_appended_total", blog="b") == 1 + posts
            assert value(samples, "liveblog_tailers_running") == 2
            if owner is not None:
                answered_by.add(owner)
            if len(answered_by) == 2:
                break
        assert answered_by == set(workers)

        # A worker killed without its shutdown: its readers no longer count (uvicorn starts
        # another in its place, which holds none yet).
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        survivor_held = held[workers[1]]

        def only_the_survivors() -> bool:
            try:
                samples = scrape(served.url)
            except httpx.TransportError:
                return False
            return value(samples, "liveblog_readers_connected", blog="b") == survivor_held

        wait_until(only_the_survivors, timeout=20, what="the dead worker's readers to go")
        # Counters keep what the dead worker counted: totals never go down.
        assert value(scrape(served.url), "liveblog_events_appended_total",
                     blog="b") == 1 + posts
    finally:
        for conn in streams:
            conn.close()
    served.stop()
    assert not shared.exists()  # removed with serve


def _http_response(conn: socket.socket) -> bytes:
    """One whole response read off a kept-alive connection (by its length or chunks)."""
    raw = b""
    while True:
        head, found, body = raw.partition(b"\r\n\r\n")
        if found:
            lower = head.lower()
            if b"transfer-encoding: chunked" in lower and body.endswith(b"0\r\n\r\n"):
                return raw
            length = re.search(rb"content-length: *(\d+)", lower)
            if length is not None and len(body) >= int(length.group(1)):
                return raw
        chunk = conn.recv(65536)
        assert chunk, "the server closed the connection mid-response"
        raw += chunk


def _http_body(raw: bytes) -> str:
    head, _, body = raw.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        decoded = b""
        while body:
            size_line, _, rest = body.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            decoded += rest[:size]
            body = rest[size + 2:]
        body = decoded
    return body.decode()
