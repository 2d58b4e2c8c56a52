"""Pages a CDN can hold (issue 9): the reader page and the public state carry an ETag and
a short public Cache-Control, answer 304 to a matching If-None-Match, are the same for
everyone, and a page served from a cache catches up through its stream at once. And the
public URL (LIVEBLOG_PUBLIC_URL) is what canonical links name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from liveblog.config import Config
from liveblog.web.caching import READER_CACHE, last_modified
from tests.support import RECORD_STREAM, SECOND, Api, Tokens, UvicornThread, post_entry

CACHED = ["/blogs/tartus", "/api/blogs/tartus"]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []


@pytest.mark.parametrize("path", CACHED)
def test_etag_and_a_short_public_cache_then_304_while_nothing_changed(
        api: Api, tokens: Tokens, blog: str, path: str) -> None:
    post_entry(api, tokens, "First report")
    first = api("GET", path)
    assert first.status_code == 200
    assert first.headers["cache-control"] == READER_CACHE
    assert "vary" not in first.headers  # the same for everyone (see below)
    tag = first.headers["etag"]
    assert re.fullmatch(r'"v2-[0-9a-f]{16}"', tag), tag  # version 2: opened, one post

    for matching in (tag, f"W/{tag}", f'"nope", {tag}', f'W/"x",W/{tag}', "*"):
        again = api("GET", path, headers={"If-None-Match": matching})
        assert again.status_code == 304, matching
        assert again.content == b""
        assert again.headers["etag"] == tag
        assert again.headers["cache-control"] == READER_CACHE
    other = tag.replace('"v2-', '"v1-')
    assert api("GET", path, headers={"If-None-Match": other}).status_code == 200
    assert api("GET", path, headers={"If-None-Match": "v2"}).status_code == 200  # unquoted

    # A change makes a new tag: the old one no longer matches, the new one does.
    post_entry(api, tokens, "Second report")
    changed = api("GET", path, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert changed.headers["etag"].startswith('"v3-')
    assert "Second report" in changed.text
    assert api("GET", path, headers={"If-None-Match": changed.headers["etag"]}
               ).status_code == 304


def test_the_page_and_state_are_the_same_for_everyone_and_signed_in_api_is_not_stored(
        api: Api, tokens: Tokens, blog: str, server: UvicornThread) -> None:
    """No Vary is needed because nothing depends on who asks: a signed-in editor gets the
    same bytes and tag (the API then with no-store, so nothing an editor saw is kept)."""
    post_entry(api, tokens, "First report")
    signed_in = api("POST", "/api/session", json={"token": tokens.editor},
                    headers={"Origin": server.base_url})
    assert signed_in.status_code == 204
    cookie = signed_in.headers["set-cookie"].split(";", 1)[0]
    for path in CACHED:
        anonymous = api("GET", path)
        for who in ({"Cookie": cookie}, {"Authorization": f"Bearer {tokens.editor}"}):
            theirs = api("GET", path, headers=who)
            assert theirs.content == anonymous.content
            assert theirs.headers["etag"] == anonymous.headers["etag"]
    bearer = api("GET", "/api/blogs/tartus", tokens.editor)
    assert bearer.headers["cache-control"] == "no-store"
    assert api("GET", "/api/blogs/tartus", headers={"Cookie": cookie}
               ).headers["cache-control"] == "no-store"


def test_an_older_page_from_a_cache_catches_up_through_its_stream(
        page: Page, api: Api, tokens: Tokens, blog: str, server: UvicornThread) -> None:
    """The page as a CDN holds it, rendered before two updates: opened, it shows them
    within a second, got exactly those two (resumed from its version, no snapshot), and
    still shows what it was rendered with."""
    earlier, _ = post_entry(api, tokens, "Rendered with the page")
    cached = api("GET", "/blogs/tartus")
    assert cached.status_code == 200
    missed = [post_entry(api, tokens, f"Posted after it was cached {n}") for n in range(2)]
    assert api("GET", "/blogs/tartus", headers={"If-None-Match": cached.headers["etag"]}
               ).status_code == 200  # the origin has moved on

    def from_the_cache(route: Route) -> None:
        route.fulfill(status=200, body=cached.content, headers=dict(cached.headers))

    page.add_init_script(RECORD_STREAM)
    page.route(f"{server.base_url}/blogs/tartus", from_the_cache)
    page.goto(f"{server.base_url}/blogs/tartus")
    for entry_id, _ in missed:
        expect(page.locator(f"#entry-{entry_id}")).to_be_visible(timeout=SECOND)
    shown = page.locator("#entries article").evaluate_all("els => els.map(e => e.dataset.id)")
    assert shown == [missed[1][0], missed[0][0], earlier]
    assert page.evaluate("window.received") == [["entry-posted", event] for _, event in missed]


@pytest.mark.parametrize("base", ["https://news.example", "https://news.example/live"])
def test_canonical_links_name_the_public_url(redis_url: str, tokens: Tokens,
                                             base: str) -> None:
    """Behind a proxy the server's own host and port are not what readers use: canonical,
    og:url and the JSON-LD's url (and its updates' urls) name LIVEBLOG_PUBLIC_URL, with
    its path. (The pages' own links, scripts and stream are root-relative: a path prefix
    in the public URL is for the links others follow, the proxy must still serve the app
    at the root of its host.)"""
    config = Config.from_env({"LIVEBLOG_PUBLIC_URL": base + "/"}, redis_url=redis_url)
    with UvicornThread(config) as server:
        api = Api(server.base_url)
        assert api("POST", "/api/blogs", tokens.editor,
                   json={"slug": "tartus", "title": "Tartus"}).status_code == 201
        entry, _ = post_entry(api, tokens, "First report")
        html = api("GET", "/blogs/tartus").text
        home = api("GET", "/").text
        api.http.close()
    page = f"{base}/blogs/tartus"
    assert f'<link rel="canonical" href="{page}">' in html
    assert f'<meta property="og:url" content="{page}">' in html
    found = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert found is not None
    ld = json.loads(found.group(1))
    assert ld["url"] == page
    assert [u["url"] for u in ld["liveBlogUpdate"]] == [f"{page}#entry-{entry}"]
    assert f'<link rel="canonical" href="{base}/">' in home
    assert str(server.port) not in html.split("<body", 1)[0]  # no host:port in the head
    assert "127.0.0.1" not in html


def test_last_modified_waits_for_its_second_to_end() -> None:
    """A copy served in the second of its last change carries no date: a second change in
    that second would otherwise be answered 304 to whoever holds it."""
    changed = datetime(2026, 5, 23, 9, 0, 0, 400_000, tzinfo=UTC)
    assert last_modified(changed, now=changed + timedelta(milliseconds=100)) is None
    assert last_modified(changed, now=changed.replace(microsecond=999_999)) is None
    assert last_modified(changed, now=changed + timedelta(milliseconds=600)) == (
        "Sat, 23 May 2026 09:00:00 GMT")
