"""Image and embed URLs (issue 8, item 5): the server accepts only what Chromium's own URL
parser takes, to the same host; and a URL logged before that check (here written straight
to the log) never breaks a page, server-rendered, live, or in a snapshot. An image may be a
path on the site (issue 9): it stays on the page's own host, wherever that is."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from liveblog.domain.events import Actor, Embed, EntryPosted, Image
from liveblog.domain.urls import (
    absolute,
    host_of,
    image_src,
    image_url_problem,
    normal_path,
    path_problem,
    url_problem,
)
from liveblog.service import Service
from liveblog.store import Store
from tests.support import (
    SECOND,
    Api,
    Tokens,
    UvicornThread,
    app_config,
    assert_problem,
    open_live,
    run_async,
)

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


# -- images by path on this site (issue 9) --------------------------------------------------

BAD_PATHS = [
    ("//evil.com/x.png", "single /"),
    ("/\\evil.com/x.png", "single /"),
    ("javascript:alert(1)", "http://, https:// or /"),
    ("static/demo/a.svg", "http://, https:// or /"),
    ("/static//demo/a.svg", "//"),
    ("/static/demo/a b.svg", "spaces"),
    ("/static/demo/a\x00.svg", "control"),
    ("/static/demo/a\n", "control"),
    ("/static\\demo/a.svg", "backslash"),
    ("/static/d\u00e9mo/a.svg", "letters, digits"),
    ("/static/%zz.svg", "%-escapes"),
    ("/static/<script>.svg", "letters, digits"),
    ("/static/a'.svg", "letters, digits"),
    ("/" + "a" * 2000, "2000"),
]
GOOD_PATHS = [
    ("/static/demo/tartus.svg", "/static/demo/tartus.svg"),
    ("/", "/"),
    ("/static/./demo/../demo/a.svg", "/static/demo/a.svg"),
    ("/../../static/a.svg", "/static/a.svg"),
    ("/a/%2E%2e/b", "/b"),
    ("/a/.%2E/b/%2e", "/b/"),
    ("/a/b/..", "/a/"),
    ("/a/.", "/a/"),
    ("/a.svg?v=2&x=/../y#top", "/a.svg?v=2&x=/../y#top"),
    ("/a/..?q", "/?q"),
    ("/~r/(1)*;p=1:@!$,+%20.svg", "/~r/(1)*;p=1:@!$,+%20.svg"),
]


@pytest.mark.parametrize(("url", "says"), BAD_PATHS)
def test_image_paths_that_lead_elsewhere_or_that_browsers_rewrite_are_refused(
        url: str, says: str) -> None:
    problem = image_url_problem(url)
    assert problem is not None and says in problem
    assert url_problem(url) is not None  # and never as an embed, a link to another site


@pytest.mark.parametrize(("url", "normal"), GOOD_PATHS)
def test_image_paths_on_this_site_are_taken_without_dot_segments(url: str, normal: str) -> None:
    assert image_url_problem(url) is None and path_problem(url) is None
    assert normal_path(url) == normal
    assert image_src(normal) == normal
    assert absolute(normal, "https://news.example") == "https://news.example" + normal
    assert absolute("https://cdn.example/a.jpg", "https://news.example") == \
        "https://cdn.example/a.jpg"


def generated_paths(count: int, seed: int = 9) -> list[str]:
    rng = random.Random(seed)
    segments = ["a", "b.svg", ".", "..", "%2e", "%2E", ".%2e", "%2e.", "%2E%2E", "...", "%2e%2f",
                "~x", "a:b", "@", ";p=1", "(x)", "a*b", "%20", "%41", "x$y", "", "%5C", "%2F"]
    tails = ["", "?", "?a=1", "?a=/../b", "#", "#f/../g", "?x#y", "?%2e%2e"]
    paths = []
    for _ in range(count):
        parts = [rng.choice(segments) for _ in range(rng.randint(1, 5))]
        paths.append("/" + "/".join(parts) + rng.choice(tails))
    return paths


def test_chromium_takes_every_accepted_path_to_this_site_as_it_is_stored(
        browser: Browser) -> None:
    """Resolved against a page of the blog, an accepted path stays on the page's host and
    port, and asks for exactly the normalised path (the same the demo's pictures rely on)."""
    paths = [url for url, _ in GOOD_PATHS] + generated_paths(3000)
    accepted = [url for url in paths if image_url_problem(url) is None]
    assert 1000 < len(accepted) < len(paths)  # both kinds in the corpus
    page = browser.new_page()
    seen = page.evaluate("""paths => paths.map(p => {
        const u = new URL(p, "http://news.example:8123/blogs/tartus?x=1");
        return [u.origin, u.href.slice(u.origin.length)];
    })""", accepted)
    page.close()
    wrong = [(url, got) for url, got in zip(accepted, seen, strict=True)
             if got != ["http://news.example:8123", normal_path(url)]]
    assert wrong == []


def test_live_js_never_decides_an_image_source_the_server_renders_them_all() -> None:
    """static/live.js had its own copy of image_src's expression, to render a live entry's
    picture as the server would. Since one renderer (issue 10) the stream carries the
    server's article, so no script decides a picture's source: there is no second copy to
    drift (tests/test_markup.py checks live entries are the server's bytes)."""
    source = (Path(__file__).parent.parent / "static" / "live.js").read_text()
    assert "SITE_PATH" not in source
    assert not re.search(r'"img"|"figure"|\bsrc\b|setAttribute\("src"', source)
    assert "e.article" in source  # what it inserts instead


def test_the_api_takes_a_path_for_an_image_and_refuses_the_bad_ones_with_422(
        api: Api, tokens: Tokens, blog: str) -> None:
    path = "/api/blogs/tartus/entries"
    for bad in ("//evil.com/x.png", "/\\evil", "javascript:alert(1)", "/static//a.svg",
                "/static/a.svg\n"):
        problem = assert_problem(api("POST", path, tokens.reporter, json={
            "body": "x", "image": {"url": bad, "alt": "a"}}), 422, fields={"image.url"})
        assert problem["errors"][0]["message"], problem
        # An embed is a link to another site: never a path.
        assert_problem(api("POST", path, tokens.reporter, json={
            "body": "x", "embed": {"url": bad}}), 422, fields={"embed.url"})
    assert_problem(api("POST", path, tokens.reporter, json={
        "body": "x", "embed": {"url": "/static/demo/tartus.svg"}}), 422, fields={"embed.url"})
    assert api("GET", "/api/blogs/tartus").json()["version"] == 1  # nothing appended

    posted = api("POST", path, tokens.reporter, json={
        "body": "Smoke", "image": {"url": "/static/demo/../demo/./tartus.svg", "alt": "Smoke"}})
    assert posted.status_code == 201, posted.text
    entry = posted.json()["entry"]
    assert entry["image"]["url"] == "/static/demo/tartus.svg"
    assert_problem(api("PATCH", f"{path}/{entry['id']}", tokens.reporter,
                       json={"image": {"url": "//evil.com/x.png", "alt": "a"}}),
                   422, fields={"image.url"})
    edited = api("PATCH", f"{path}/{entry['id']}", tokens.reporter,
                 json={"image": {"url": "/static/demo/jableh.svg", "alt": "Ambulances"}})
    assert edited.status_code == 200, edited.text
    assert api("GET", "/api/blogs/tartus").json()["version"] == 3


def test_an_image_by_path_shows_on_a_blog_served_under_another_public_url(
        browser: Browser, redis_url: str, tokens: Tokens) -> None:
    """The page puts the path in <img src> as it is (the page's own host, whatever the
    public URL says), server-rendered and live; og:image and the JSON-LD, read by other
    sites, get it whole, with the public URL."""
    config = dataclasses.replace(app_config(redis_url), public_url="https://news.example")
    with UvicornThread(config) as server:
        api = Api(server.base_url)
        with api.http:
            assert api("POST", "/api/blogs", tokens.editor,
                       json={"slug": "tartus", "title": "Tartus"}).status_code == 201
            first = api("POST", "/api/blogs/tartus/entries", tokens.reporter, json={
                "body": "Smoke", "image": {"url": "/static/demo/tartus.svg", "alt": "Smoke"}})
            assert first.status_code == 201, first.text
            html = api("GET", "/blogs/tartus").text
            assert '<img src="/static/demo/tartus.svg"' in html
            whole = "https://news.example/static/demo/tartus.svg"
            assert f'<meta property="og:image" content="{whole}">' in html
            ld = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>',
                                      html, re.S).group(1))  # type: ignore[union-attr]
            assert [u.get("image") for u in ld["liveBlogUpdate"]] == [whole]

            context = browser.new_context()
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            open_live(page, server)
            live = api("POST", "/api/blogs/tartus/entries", tokens.reporter, json={
                "body": "Ambulances", "image": {"url": "/static/demo/jableh.svg", "alt": "Cars"}})
            assert live.status_code == 201, live.text
            img = page.locator(f"#entry-{live.json()['entry']['id']} figure img")
            expect(img).to_have_attribute("src", "/static/demo/jableh.svg", timeout=SECOND)
            images = page.locator("#entries figure img")
            expect(images).to_have_count(2)
            page.wait_for_function("""() => [...document.querySelectorAll('#entries figure img')]
                .every(i => i.complete && i.naturalWidth > 0)""")
            assert images.evaluate_all("els => els.map(e => e.currentSrc)") == [
                f"{server.base_url}/static/demo/{name}.svg" for name in ("jableh", "tartus")]
            context.close()
            assert errors == []


def test_a_path_to_another_host_in_the_log_shows_as_text(
        page: Page, api: Api, tokens: Tokens, blog: str, server: UvicornThread,
        redis_url: str) -> None:
    """A log written around the API (an old import, a hand edit) may hold `//evil.example`:
    neither the server nor live.js puts it in <img src>."""
    ids = [log_unchecked(redis_url, "Before", "//evil.example/x.png")]
    open_live(page, server)
    ids.append(log_unchecked(redis_url, "Live", "/\\evil.example/x.png"))
    expect(page.locator(f"#entry-{ids[-1]}")).to_be_visible(timeout=SECOND)
    for entry_id in ids:
        expect(page.locator(f"#entry-{entry_id} figure img")).to_have_count(0)
        expect(page.locator(f"#entry-{entry_id} .image-unusable")).to_have_text("broken image")
