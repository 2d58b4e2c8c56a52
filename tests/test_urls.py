"""Image and embed URLs (issue 8, item 5): the server accepts only what Chromium's own URL
parser takes, to the same host; and a URL logged before that check (here written straight
to the log) never breaks a page, server-rendered, live, or in a snapshot."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from liveblog.domain.events import Actor, Embed, EntryPosted, Image
from liveblog.domain.urls import host_of, url_problem
from liveblog.service import Service
from liveblog.store import Store
from tests.conftest import Api, Tokens, UvicornThread, run_async
from tests.test_api import assert_problem
from tests.test_pages import SECOND, open_live

BAD = [
    ("https://example.com:99999/", "port"),
    ("https://%zz/", "host name"),
    ("https://%41.example/", "host name"),
    ("https://example.com:-1/", "port"),
    ("https://example.com:8o/", "port"),
    ("https://user:pw@example.com/", "user name"),
    ("https://bbc.co.uk@evil.example/", "user name"),
    ("https://evil.example\\@bbc.co.uk/", "backslash"),
    ("https://ex ample.com/", "spaces"),
    ("https://example.com/\x00", "control"),
    ("https://1.2.3.256/", "IP address"),
    ("https://foo.09/", "IP address"),
    ("https://0x7f.1/", "IP address"),
    ("https:///example.com", "host name"),
    ("https://[fe80::1%25eth0]/", "IPv6"),
    ("https://[::1/", "IPv6"),
    ("https://a\u202eb.example/", "host name"),
    ("https://\u0661.example/", "host name"),
    ("https://-a-.example/", "host name"),
    ("https://a..b/", "host name"),
    ("javascript://example.com/%0aalert(1)", "http"),
    ("HTTPS://example.com/", "http"),
    ("https://example.com/" + "a" * 2000, "2000"),
]
GOOD = [
    ("https://example.com/", "example.com"),
    ("http://Example.COM:8080/a/b?c=d#e", "example.com"),
    ("https://example.com:/", "example.com"),
    ("https://example.com:0/", "example.com"),
    ("https://example.com:65535/x", "example.com"),
    ("https://example.com./", "example.com."),
    ("https://a_b.example/", "a_b.example"),
    ("https://münchen.de/", "xn--mnchen-3ya.de"),
    ("https://x.com/%zz<script>\"'", "x.com"),
    ("https://192.168.0.1/", "192.168.0.1"),
    ("https://[::1]:443/", "[::1]"),
    ("https://x.com?a", "x.com"),
]


@pytest.mark.parametrize(("url", "says"), BAD)
def test_urls_a_browser_cannot_use_are_refused_in_plain_words(url: str, says: str) -> None:
    problem = url_problem(url)
    assert problem is not None and says in problem
    assert host_of(url) is None


@pytest.mark.parametrize(("url", "host"), GOOD)
def test_links_browsers_take_are_accepted(url: str, host: str) -> None:
    assert url_problem(url) is None
    assert host_of(url) == host


def generated_urls(count: int, seed: int = 8) -> list[str]:
    """URL-shaped strings built from the pieces parsers disagree on."""
    rng = random.Random(seed)
    hosts = ["example.com", "EXAMPLE.com", "a_b.c", "xn--a", "xn--mnchen-3ya.de", "münchen.de",
             "ß.de", "\uff21.com", "exa\u00admple.com", "\u200bx.com", "1.2.3.4", "1.2.3",
             "01.2.3.4", "256.1.1.1", "0x7f.1", "foo.09", "a..b", ".a", "a.", "-a", "a-",
             "[::1]", "[::ffff:1.2.3.4]", "[fe80::1%25x]", "[::1", "%41", "%zz", "", "a b",
             "a*b", "a!b", "a~b", "\u0661", "a\u202eb", "😀.la", "a\\b", "a@b", "u:p@h",
             "ΑΒΓ.gr", "x" * 64 + ".com", "a\tb", "a|b", "a^b"]
    ports = ["", ":", ":0", ":80", ":080", ":65535", ":65536", ":99999", ":-1", ":+1", ":1a",
             ":1" + "0" * 6]
    tails = ["", "/", "/a/b", "?q=1", "#f", "/%zz", "/<x>", "\\x", "/ x", "/\u00e9", "?\\"]
    schemes = ["https://", "http://", "https:/", "https:///", "HTTP://"]
    usable = ["example.com", "EXAMPLE.com", "a_b.c", "münchen.de", "ß.de", "\uff21.com", "1.2.3.4",
              "[::1]", "ΑΒΓ.gr", "a.", "xn--a"]
    urls = []
    for _ in range(count):
        host = rng.choice(usable if rng.random() < 0.5 else hosts)
        if rng.random() < 0.3:
            host = host + "." + rng.choice(hosts)
        urls.append(rng.choice(schemes) + host + rng.choice(ports) + rng.choice(tails))
    return urls


def test_what_the_server_accepts_chromium_parses_to_the_same_host(browser: Browser) -> None:
    urls = [url for url, _ in BAD + GOOD] + generated_urls(4000)
    page = browser.new_page()
    parsed = page.evaluate("""urls => urls.map(u => {
        try { const p = new URL(u); return [p.protocol, p.hostname]; } catch (e) { return null; }
    })""", urls)
    page.close()
    accepted = [(url, seen) for url, seen in zip(urls, parsed, strict=True)
                if url_problem(url) is None]
    assert len(accepted) > 250  # the corpus is not all junk
    wrong = [(url, seen, host_of(url)) for url, seen in accepted
             if seen is None or seen[0] not in ("http:", "https:") or seen[1] != host_of(url)]
    assert wrong == []


def test_the_api_refuses_them_with_422_naming_the_field(
        api: Api, tokens: Tokens, blog: str) -> None:
    path = "/api/blogs/tartus/entries"
    for bad, says in (("https://example.com:99999/", "port"), ("https://%zz/", "host name")):
        problem = assert_problem(
            api("POST", path, tokens.reporter, json={
                "body": "x", "image": {"url": bad, "alt": "a"}, "embed": {"url": bad}}),
            422, fields={"image.url", "embed.url"})
        assert all(says in e["message"] for e in problem["errors"])
    entry = api("POST", path, tokens.reporter, json={"body": "fine"}).json()["entry"]
    assert_problem(api("PATCH", f"{path}/{entry['id']}", tokens.reporter,
                       json={"embed": {"url": "https://example.com:99999/"}}),
                   422, fields={"embed.url"})
    assert api("GET", "/api/blogs/tartus").json()["version"] == 2  # opened, one good post


# -- pages, with bad URLs already in the log ----------------------------------------------

BROKEN = ["https://example.com:99999/", "https://%zz/", "https://[::1/"]


def log_unchecked(redis_url: str, body: str, url: str) -> str:
    """Append an entry the way the log may hold one from before the check: no command."""
    async def append() -> str:
        store = Store.from_url(redis_url)
        service = Service(store)
        entry_id = service.new_id()
        try:
            await service.execute("tartus", Actor("rania", "reporter"), lambda blog: EntryPosted(
                entry_id=entry_id, body=body, embed=Embed(url=url),
                image=Image(url=url, alt="broken image")))
        finally:
            await store.close()
        return entry_id

    result: str = run_async(append())
    return result


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []  # new URL() threw here before the fix


def post(api: Api, tokens: Tokens, body: str) -> str:
    response = api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                   json={"body": body, "embed": {"url": "https://example.org/post/1"}})
    assert response.status_code == 201, response.text
    entry_id: str = response.json()["entry"]["id"]
    return entry_id


def assert_entries(page: Page, ids: list[str]) -> None:
    """Every entry, newest first; the broken links inert, the good ones links."""
    expect(page.locator("#entries article")).to_have_count(len(ids), timeout=SECOND)
    assert page.locator("#entries article").evaluate_all(
        "els => els.map(e => e.dataset.id)") == ids[::-1]
    for n, entry_id in enumerate(ids):
        card = page.locator(f"#entry-{entry_id} .embed-card")
        if n % 2:
            # The picture too: its alt text, never an <img> with a URL no browser can use.
            expect(page.locator(f"#entry-{entry_id} figure img")).to_have_count(0)
            expect(page.locator(f"#entry-{entry_id} .image-unusable")).to_have_text(
                "broken image")
            expect(card).to_have_class(re.compile("embed-unusable"))
            assert card.evaluate("e => e.tagName") == "P"
            expect(card.locator(".embed-url")).to_have_text(BROKEN[n // 2])
        else:
            expect(card).to_have_attribute("href", "https://example.org/post/1")
            expect(card.locator(".embed-domain")).to_have_text("example.org")


def test_a_bad_url_in_the_log_breaks_no_page(
        page: Page, api: Api, tokens: Tokens, blog: str, server: UvicornThread,
        redis_url: str) -> None:
    ids = [post(api, tokens, "Before")]
    ids.append(log_unchecked(redis_url, "A bad port", BROKEN[0]))
    ids.append(post(api, tokens, "Between"))
    open_live(page, server)
    assert_entries(page, ids)  # server-rendered
    # Live: a bad one arrives, and so does everything after it.
    ids.append(log_unchecked(redis_url, "A bad host", BROKEN[1]))
    ids.append(post(api, tokens, "After"))
    expect(page.locator(f"#entry-{ids[-1]}")).to_be_visible(timeout=SECOND)
    assert_entries(page, ids)


def test_a_snapshot_with_bad_urls_renders_every_entry(
        page: Page, api: Api, tokens: Tokens, blog: str, server: UvicornThread,
        redis_url: str) -> None:
    ids = []
    for n in range(3):
        ids.append(post(api, tokens, f"Good {n}"))
        if n < 2:
            ids.append(log_unchecked(redis_url, f"Bad {n}", BROKEN[n]))

    def stale(route: Route) -> None:
        # The page as a stale cache would serve it: no entries, and an event id the server
        # cannot place, so its stream starts with a snapshot that must rebuild them all.
        html = route.fetch().text()
        html = re.sub(r'data-last-event-id="[^"]*"', 'data-last-event-id="1-0"', html)
        html = re.sub(r'(<div id="entries" class="entries">).*?(</div>\s*<p)',
                      r"\1\2", html, flags=re.S)
        route.fulfill(body=html, content_type="text/html; charset=utf-8")

    page.route(f"{server.base_url}/blogs/tartus", stale)
    open_live(page, server)
    assert_entries(page, ids)
    ids.append(log_unchecked(redis_url, "Bad after", BROKEN[2]))
    ids.append(post(api, tokens, "After the snapshot"))
    assert_entries(page, ids)
