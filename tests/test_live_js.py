"""static/live.js in a real Chromium against a real uvicorn and Redis: how the page
reconnects when its stream is refused."""

from __future__ import annotations

import socket
import time

from playwright.sync_api import Browser

from tests.support import Api, Tokens, UvicornThread, app_config, wait_until


def test_a_refused_page_backs_off_instead_of_retrying_every_few_seconds(
        browser: Browser, redis_url: str, tokens: Tokens) -> None:
    """One stream per address, held by another connection from 127.0.0.1: the page's
    stream gets 503. It tries again after 2.5-5 s, then 5-10 s, then 10-20 s: at most 3
    attempts in 17 s (retrying every 2-5 s made at least 4)."""
    with UvicornThread(app_config(redis_url, max_streams_per_ip=1)) as server:
        api = Api(server.base_url)
        response = api("POST", "/api/blogs", tokens.editor, json={"slug": "tartus", "title": "T"})
        assert response.status_code == 201, response.text
        holder = socket.create_connection(("127.0.0.1", server.port))
        holder.sendall(b"GET /blogs/tartus/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: server.hub().streams == 1, what="the stream to be held")
        context = browser.new_context()
        page = context.new_page()
        attempts: list[tuple[float, int]] = []
        page.on("response", lambda r: attempts.append((time.monotonic(), r.status))
                if "/stream" in r.url else None)
        page.goto(f"{server.base_url}/blogs/tartus")
        for _ in range(100):  # Playwright delivers events while the page is waited on
            if attempts:
                break
            page.wait_for_timeout(100)
        assert attempts, "the page never asked for its stream"
        started = attempts[0][0]
        deadline = started + 17
        while time.monotonic() < deadline:
            page.wait_for_timeout(200)  # the page runs; its requests are counted meanwhile
        within = [status for at, status in attempts if at - started < 17]
        print(f"stream attempts in 17 s: {len(within)} {within}")
        assert set(within) == {503}
        assert len(within) <= 3, within
        context.close()
        holder.close()
        api.http.close()
