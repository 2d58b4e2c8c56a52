"""Signing the console in with an HttpOnly cookie (issue 8, item 6): no script in the page
can read the token, the console works across reloads, and a change sent with the cookie
from anywhere but our own pages is refused (CSRF)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from liveblog.store import Store
from tests.support import (
    SECOND,
    Api,
    OtherSite,
    Tokens,
    UvicornThread,
    app_config,
    assert_problem,
    run_async,
    wait_for_frame,
)

ENTRIES = "/api/blogs/tartus/entries"


@contextlib.contextmanager
def signed_in(server: UvicornThread, token: str) -> Iterator[httpx.Client]:
    """A client holding the session cookie, as a browser would after signing in."""
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        response = client.post("/api/session", json={"token": token},
                               headers={"Origin": server.base_url})
        assert response.status_code == 204, response.text
        yield client


def test_signing_in_sets_an_http_only_strict_cookie(server: UvicornThread, tokens: Tokens,
                                                    blog: str) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        same = {"Origin": server.base_url}
        nobody = client.get("/api/session")
        assert nobody.json() == {"signed_in": False}
        assert nobody.headers["cache-control"] == "no-store"
        assert_problem(client.post("/api/session", json={"token": "nope"}, headers=same), 401)
        assert_problem(client.post("/api/session", json={}, headers=same), 422)
        # Another site may not sign this browser in (login CSRF).
        assert_problem(client.post("/api/session", json={"token": tokens.editor},
                                   headers={"Sec-Fetch-Site": "cross-site"}), 403)
        assert not client.cookies
        response = client.post("/api/session", json={"token": tokens.editor}, headers=same)
        assert response.status_code == 204
        cookie = response.headers["set-cookie"]
        attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
        assert cookie.startswith("liveblog-session=")
        assert {"httponly", "samesite", "path"} <= attributes and "secure" not in attributes
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "Path=/;" in cookie + ";"
        me = client.get("/api/me").json()
        assert (me["name"], me["role"]) == ("ed", "editor") and me["id"]
        # The identity too: the console tells its own entries by it (issue 10).
        assert client.get("/api/session").json() == {
            "signed_in": True, "name": "ed", "role": "editor", "id": me["id"],
            "display_name": "ed"}
        gone = client.delete("/api/session")
        assert gone.status_code == 204 and "Max-Age=0" in gone.headers["set-cookie"]
        assert client.get("/api/session").json() == {"signed_in": False}


def test_on_https_the_cookie_is_secure_and_host_only(redis_url: str, tokens: Tokens) -> None:
    config = app_config(redis_url)
    config = dataclasses.replace(config, public_url="https://news.example")
    with UvicornThread(config) as server, httpx.Client(base_url=server.base_url) as client:
        response = client.post("/api/session", json={"token": tokens.editor},
                               headers={"Origin": "https://news.example"})
        assert response.status_code == 204, response.text
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("__Host-liveblog-session=")
        assert "Secure" in cookie and "HttpOnly" in cookie and "Domain" not in cookie


def test_a_change_with_the_cookie_from_elsewhere_is_refused(
        server: UvicornThread, api: Api, tokens: Tokens, blog: str) -> None:
    with signed_in(server, tokens.reporter) as client:
        body = {"body": "From another page"}
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                        {"Origin": "http://evil.example"}, {"Origin": "null"}, {}):
            problem = assert_problem(client.post(ENTRIES, json=body, headers=headers), 403)
            assert problem["type"].endswith("/cross-site-request")
            assert_problem(client.patch("/api/blogs/tartus", json={"title": "x"},
                                        headers=headers), 403)
        assert api("GET", "/api/blogs/tartus").json()["version"] == 1  # nothing appended
        # From our own pages it works; reading needs no such proof.
        for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Origin": server.base_url}):
            assert client.post(ENTRIES, json=body, headers=headers).status_code == 201
        assert client.get("/api/blogs/tartus/events").status_code == 403  # a reporter's cookie
        # Scripts and the CLI send the bearer header, with no Origin at all.
        assert api("POST", ENTRIES, tokens.reporter, json=body).status_code == 201


def test_a_revoked_token_signs_the_browser_out(server: UvicornThread, tokens: Tokens,
                                               redis_url: str, blog: str) -> None:
    async def revoke() -> None:
        store = Store.from_url(redis_url)
        assert await store.revoke_token("omar")
        await store.close()

    with signed_in(server, tokens.other_reporter) as client:
        run_async(revoke())
        assert_problem(client.get("/api/me"), 401)
        response = client.get("/api/session")
        assert response.json() == {"signed_in": False}
        assert "Max-Age=0" in response.headers["set-cookie"]


# -- in Chromium ----------------------------------------------------------------------------

@pytest.fixture
def sibling() -> Iterator[OtherSite]:
    site = OtherSite()
    yield site
    site.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    yield context
    context.close()


def test_the_console_signs_in_without_any_script_seeing_the_token(
        context: BrowserContext, server: UvicornThread, api: Api, tokens: Tokens,
        blog: str) -> None:
    desk = context.new_page()
    desk.goto(f"{server.base_url}/newsroom/tartus")
    desk.fill("#token", tokens.editor)
    desk.click("#signin button")
    expect(desk.locator("#me-name")).to_have_text("ed")
    storage = desk.evaluate("""() => ({cookie: document.cookie,
        session: JSON.stringify(sessionStorage), local: JSON.stringify(localStorage),
        field: document.getElementById("token").value})""")
    assert storage == {"cookie": "", "session": "{}", "local": "{}", "field": ""}
    assert tokens.editor not in desk.content()
    cookies = context.cookies()
    assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [
        ("liveblog-session", True, "Strict")]

    desk.fill("#compose-body", "Posted with the cookie")
    desk.click("#compose button[type=submit]")
    expect(desk.locator("#desk-entries li")).to_have_count(1)
    # A reload keeps the console signed in, and it still works.
    desk.reload()
    expect(desk.locator("#desk")).to_be_visible()
    expect(desk.locator("#signin")).to_be_hidden()
    desk.locator("#desk-entries li button", has_text="Pin").click()
    expect(desk.locator("#desk-entries li .pinned-badge")).to_have_text("Pinned")
    # The replay, in another tab, is signed in too.
    replay = context.new_page()
    replay.goto(f"{server.base_url}/blogs/tartus/replay")
    last = api("GET", "/api/blogs/tartus/events", tokens.editor).json()["events"][-1]["id"]
    wait_for_frame(replay, last)
    expect(replay.frame_locator("#frame").locator("#pinned-body")).to_contain_text(
        "Posted with the cookie")
    # Signing out ends it for both.
    desk.click("#signout")
    expect(desk.locator("#signin")).to_be_visible(timeout=SECOND * 5)
    assert context.cookies() == []
    replay.reload()
    expect(replay.locator("#signin")).to_be_visible()
    expect(replay.locator("#player")).to_be_hidden()


def test_a_reporter_in_the_replay_is_told_it_is_for_editors(
        context: BrowserContext, server: UvicornThread, tokens: Tokens, blog: str) -> None:
    replay = context.new_page()
    replay.goto(f"{server.base_url}/blogs/tartus/replay")
    replay.fill("#token", tokens.reporter)
    replay.click("#signin button")
    expect(replay.locator("#signin .error")).to_contain_text("only editors")
    replay.fill("#token", "wrong")
    replay.click("#signin button")
    expect(replay.locator("#signin .error")).to_contain_text("unknown")


def test_a_form_on_a_sibling_site_cannot_post_with_the_cookie(
        context: BrowserContext, server: UvicornThread, api: Api, tokens: Tokens, blog: str,
        sibling: OtherSite) -> None:
    signed = context.new_page()
    signed.goto(f"{server.base_url}/newsroom/tartus")
    signed.fill("#token", tokens.editor)
    signed.click("#signin button")
    expect(signed.locator("#desk")).to_be_visible()
    # 127.0.0.1 on another port: another origin but the same site, so even a SameSite=Strict
    # cookie goes along; only the server's origin check stands in the way.
    sibling.html = (
        f'<form method="post" action="{server.base_url}{ENTRIES}" enctype="text/plain">'
        '<input name=\'{"body": "forged", "x": "\' value=\'"}\'><button>go</button></form>')
    attacker = context.new_page()
    attacker.goto(f"http://127.0.0.1:{sibling.port}/")
    with attacker.expect_response(f"{server.base_url}{ENTRIES}") as answer:
        attacker.click("button")
    response = answer.value
    assert response.status == 403
    assert "liveblog-session=" in (response.request.all_headers().get("cookie") or "")
    assert response.json()["type"].endswith("/cross-site-request")
    assert api("GET", "/api/blogs/tartus").json()["version"] == 1
