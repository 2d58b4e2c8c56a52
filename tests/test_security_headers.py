"""The browser's security headers (issue 8, item 6) on every kind of response, and the pages
working under their Content-Security-Policy in Chromium without a single violation."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from liveblog.web.caching import READER_CACHE
from tests.support import SECOND, Api, OtherSite, Tokens, UvicornThread, open_live, wait_for_frame

NOSNIFF = "nosniff"

def picture(server: UvicornThread) -> str:
    """A reporter's picture: from another host in real life, the demo's one here."""
    return f"{server.base_url}/static/demo/jableh.svg"


def policy(response: httpx.Response) -> dict[str, str]:
    header = response.headers["content-security-policy"]
    pairs = (part.strip().partition(" ") for part in header.split(";"))
    return {name: value for name, _, value in pairs}


def assert_strict(response: httpx.Response, framed_by: str = "'none'") -> None:
    assert response.headers["x-content-type-options"] == NOSNIFF, response.url
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    csp = policy(response)
    header = response.headers["content-security-policy"]
    assert "unsafe-inline" not in header and "unsafe-eval" not in header
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'"
    assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
    # The inlined CSS by its hash (the console's pages: theirs, and the readers' for the
    # replay's frames, which live under the replay page's policy).
    assert re.fullmatch(r"'sha256-[A-Za-z0-9+/]{43}='( 'sha256-[A-Za-z0-9+/]{43}=')?",
                        csp["style-src"])
    assert csp["frame-ancestors"] == framed_by, response.url


def test_every_response_has_the_headers(api: Api, tokens: Tokens, blog: str) -> None:
    entry = api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                json={"body": "x"}).json()
    framed_by = {"/blogs/tartus": "'self'", "/blogs/tartus/replay/frame": "'self'",
                 "/blogs/tartus/embed": "*"}  # LIVEBLOG_EMBED_ORIGINS, by default
    for method, path, token, status in [
        ("GET", "/", None, 200),
        ("GET", "/blogs/tartus", None, 200),
        ("GET", "/blogs/tartus?before=" + entry["entry"]["id"], None, 200),
        ("GET", "/blogs/tartus/embed", None, 200),
        ("GET", "/api/blogs/tartus/embed", None, 200),
        ("GET", "/newsroom", None, 200),
        ("GET", "/newsroom/tartus", None, 200),
        ("GET", "/blogs/tartus/replay", None, 200),
        ("GET", f"/blogs/tartus/replay/frame?at={entry['event_id']}", tokens.editor, 200),
        ("GET", "/blogs/tartus/replay/frame?at=1", None, 401),
        ("GET", "/api/blogs", None, 200),
        ("GET", "/api/blogs/tartus", None, 200),
        ("GET", "/api/blogs/nowhere", None, 404),
        ("POST", "/api/blogs/tartus/entries", None, 401),
        ("GET", "/openapi.json", None, 200),
        ("GET", "/blogs/tartus/feed.atom", None, 200),
        ("GET", "/blogs/tartus/feed.json", None, 200),
        ("GET", "/blogs/nowhere/feed.atom", None, 404),
        ("GET", "/oembed?url=http://127.0.0.1:8000/blogs/tartus", None, 200),
        ("GET", "/oembed?url=http://127.0.0.1:8000/blogs/tartus&format=xml", None, 501),
        ("GET", "/healthz", None, 200),
        ("GET", "/static/live.js", None, 200),
        ("GET", "/static/embed.js", None, 200),
        ("GET", "/static/style.css", None, 200),
        ("GET", "/no/such/page", None, 404),
        ("DELETE", "/", None, 405),
        ("GET", "/blogs/Not-A-Slug!/stream", None, 404),
        ("POST", "/blogs/tartus/stream", None, 405),
    ]:
        response = api(method, path, token)
        assert response.status_code == status, (path, response.text)
        framed = framed_by.get(path.split("?")[0], "'none'") if status == 200 else "'none'"
        assert_strict(response, framed)


def test_reader_streams_are_nosniff_on_both_paths(api: Api, tokens: Tokens, blog: str,
                                                  server: UvicornThread) -> None:
    # The first stream of a blog goes through the ASGI app; once the blog is tailed, the
    # next is answered in the HTTP protocol (protocol.py). Both send the same headers.
    with httpx.Client(base_url=server.base_url, timeout=5) as client:
        with client.stream("GET", "/blogs/tartus/stream") as first:
            assert first.headers["x-content-type-options"] == NOSNIFF
            assert first.headers["content-type"].startswith("text/event-stream")
            with client.stream("GET", "/blogs/tartus/stream") as fast:
                assert fast.headers["x-content-type-options"] == NOSNIFF
        api("PATCH", "/api/blogs/tartus", tokens.editor, json={"status": "ended"})
        last = api("GET", "/api/blogs/tartus").json()["last_event_id"]
        over = client.get("/blogs/tartus/stream", headers={"Last-Event-ID": last})
        assert over.status_code == 204
        assert over.headers["x-content-type-options"] == NOSNIFF


def test_nothing_signed_in_or_written_is_cached(api: Api, tokens: Tokens, blog: str) -> None:
    def cache(method: str, path: str, token: str | None = None, **kw: object) -> str | None:
        return api(method, path, token, **kw).headers.get("cache-control")

    assert cache("GET", "/newsroom") == "no-store"
    assert cache("GET", "/newsroom/tartus") == "no-store"
    assert cache("GET", "/blogs/tartus/replay") == "no-store"
    path = "/api/blogs/tartus/entries"
    assert cache("POST", path, tokens.reporter, json={"body": "x"}) == "no-store"  # 201
    assert cache("POST", path, tokens.reporter, json={"body": ""}) == "no-store"  # 422
    assert cache("POST", path, json={"body": "x"}) == "no-store"  # 401
    assert cache("PATCH", "/api/blogs/tartus", tokens.editor, json={"title": "T"}) == "no-store"
    assert cache("GET", "/api/blogs/tartus", tokens.reporter) == "no-store"
    assert cache("GET", "/api/me", tokens.reporter) == "no-store"
    assert cache("GET", "/api/blogs/tartus/timeline", tokens.editor) == "no-store"
    # Anonymous reads of the blog are for a CDN to hold briefly (test_caching.py).
    assert cache("GET", "/api/blogs/tartus") == READER_CACHE
    assert cache("GET", "/blogs/tartus") == READER_CACHE


# -- in Chromium ----------------------------------------------------------------------------

WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI + " " + e.sample);
});
"""


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    context.add_init_script(WATCH)
    problems: list[str] = []

    def watch(page: Page) -> None:
        page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
        page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
        # CSP refusals are also logged as console errors, in every frame (the replay's
        # sandboxed frame runs no script that could listen for the event).
        page.on("console", lambda m: problems.append(f"console: {m.text}")
                if m.type == "error" else None)

    context.on("page", watch)
    yield context
    for page in context.pages:
        for frame in page.frames:
            if frame.url.startswith("http"):
                problems += frame.evaluate("window.__violations || []")
    context.close()
    assert problems == []


def test_the_reader_page_works_under_the_policy(
        context: BrowserContext, api: Api, tokens: Tokens, blog: str,
        server: UvicornThread) -> None:
    api("PUT", "/api/blogs/tartus/facts/deaths", tokens.reporter,
        json={"label": "Deaths", "value": "80", "numeric": 80, "source": "AP"})
    api("PUT", "/api/blogs/tartus/facts/deaths", tokens.reporter,
        json={"label": "Deaths", "value": "121", "numeric": 121, "source": "AP"})
    for n in range(22):
        api("POST", "/api/blogs/tartus/entries", tokens.reporter,
            json={"body": f"Update {n}\n\n| a | b |\n|:-|-:|\n| 1 | 2 |", "key_event": n == 3,
                  "title": "Key" if n == 3 else None})
    page = context.new_page()
    open_live(page, server)
    expect(page.locator("#facts svg.spark")).to_be_visible()
    expect(page.locator("#entries td[align=right]").first).to_have_css("text-align", "right")
    expect(page.locator(".site")).to_have_css("font-weight", "700")  # the inline CSS applies
    page.click("#load-older")  # fetch() of an older page
    expect(page.locator("#entries article")).to_have_count(22)
    page.evaluate("window.scrollTo(0, 0)")  # at the top, a new entry goes straight in
    api("POST", "/api/blogs/tartus/entries", tokens.reporter, json={
        "body": "Live, with a picture", "image": {"url": picture(server), "alt": "A"},
        "embed": {"url": "https://example.org/p/1"}})
    expect(page.locator("#entries article")).to_have_count(23, timeout=SECOND)
    expect(page.locator("#entries article").first).to_contain_text("Live, with a picture")
    page.screenshot(path="/tmp/browser-reader.png", full_page=False)


def test_the_newsroom_works_under_the_policy(
        context: BrowserContext, api: Api, tokens: Tokens, blog: str,
        server: UvicornThread) -> None:
    desk = context.new_page()
    desk.goto(f"{server.base_url}/newsroom/tartus")
    desk.fill("#token", tokens.reporter)
    desk.click("#signin button")
    expect(desk.locator("#desk")).to_be_visible()
    desk.fill("#compose-body", "Blast at the **bus station**\n\n| a | b |\n|--:|:-:|\n| 1 | 2 |")
    expect(desk.locator("#compose-preview strong")).to_have_text("bus station")
    desk.locator("#compose summary", has_text="Image and embed").click()
    desk.fill('[name="image.url"]', picture(server))
    desk.fill('[name="image.alt"]', "The station")
    desk.fill('[name="embed.url"]', "https://example.org/p/1")
    desk.click("#compose button[type=submit]")
    expect(desk.locator("#desk-entries li")).to_have_count(1)
    desk.locator(".deskbar .tool", has_text="Reader view").click()
    reader = desk.frame_locator("#reader")
    expect(reader.locator("#entries article")).to_have_count(1, timeout=SECOND)
    expect(reader.locator(".embed-domain")).to_have_text("example.org")
    sandbox = desk.locator("#reader").get_attribute("sandbox") or ""
    assert "allow-top-navigation" not in sandbox and "allow-forms" not in sandbox
    desk.screenshot(path="/tmp/browser-newsroom.png", full_page=True)


def test_the_replay_works_under_the_policy(
        context: BrowserContext, api: Api, tokens: Tokens, blog: str,
        server: UvicornThread) -> None:
    first = api("POST", "/api/blogs/tartus/entries", tokens.reporter, json={
        "body": "First", "image": {"url": picture(server), "alt": "A"}}).json()
    api("PATCH", f"/api/blogs/tartus/entries/{first['entry']['id']}", tokens.reporter,
        json={"body": "First, corrected"})
    replay = context.new_page()
    replay.goto(f"{server.base_url}/blogs/tartus/replay")
    replay.fill("#token", tokens.editor)
    replay.click("#signin button")
    last = api("GET", "/api/blogs/tartus/events", tokens.editor).json()["events"][-1]["id"]
    wait_for_frame(replay, last)
    frame = replay.frame_locator("#frame")
    expect(frame.locator("#entries article")).to_contain_text("First, corrected")
    expect(frame.locator(".site")).to_have_css("font-weight", "700")  # inline CSS, by hash
    assert replay.locator("#frame").get_attribute("sandbox") == \
        "allow-popups allow-popups-to-escape-sandbox"  # no scripts, an origin of its own
    replay.click(".history-link >> nth=-1")
    expect(replay.locator("#history .revision")).to_have_count(2)
    expect(replay.locator("#history ins")).to_contain_text("corrected")
    replay.screenshot(path="/tmp/browser-replay.png", full_page=False)


@pytest.fixture
def other_site() -> Iterator[OtherSite]:
    site = OtherSite()
    yield site
    site.close()


def test_other_sites_cannot_frame_any_page(browser: Browser, blog: str, server: UvicornThread,
                                           other_site: OtherSite) -> None:
    paths = ["/", "/blogs/tartus", "/newsroom", "/newsroom/tartus", "/blogs/tartus/replay"]
    # A control first: a page with no policy, which this other site may frame.
    frames = [f"http://127.0.0.1:{other_site.port}/plain"] + [server.base_url + p for p in paths]
    other_site.html = "".join(f'<iframe src="{src}"></iframe>' for src in frames)
    page = browser.new_page()
    page.goto(f"http://localhost:{other_site.port}/")  # another site than 127.0.0.1
    # Chromium shows its error page instead of a page whose frame-ancestors refuse it.
    refused = frames[:1] + ["chrome-error://chromewebdata/"] * len(paths)
    for _ in range(500):
        if [f.url for f in page.frames[1:]] == refused:
            break
        page.wait_for_timeout(10)
    assert [f.url for f in page.frames[1:]] == refused
    page.close()
