"""The embed (liveblog/web/embed.py, static/embed.js, static/embedded.js): the snippet on
a page of another site, in a real Chromium, against a real uvicorn and Redis.

Layout shift, as measured here: the host page records every `layout-shift` entry
(PerformanceObserver, buffered) with each shifted node and its rectangle before and after.
"No layout shift above the embed" means no entry names the iframe or anything before it, and
the iframe's top never moves. Content below the iframe does move when it grows while in
view: that is the content arriving. While the reader is below the embed, the browser's
scroll anchoring absorbs its growth: no entry at all, and what they read stays put.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Frame, Page, expect

from liveblog.config import Config
from liveblog.errors import ConfigError
from liveblog.web.caching import READER_CACHE
from tests.support import (
    SECOND,
    Api,
    OtherSite,
    Tokens,
    UvicornThread,
    app_config,
    free_port,
)

# In the host page only (the init script runs in every frame): its layout shifts.
SHIFTS = """
if (window.top === window) {
  window.shifts = [];
  new PerformanceObserver(function (list) {
    list.getEntries().forEach(function (e) {
      window.shifts.push({
        value: e.value, recent: e.hadRecentInput, scrollY: window.scrollY,
        sources: e.sources.map(function (s) {
          return { node: s.node ? (s.node.id || s.node.nodeName) : null,
                   before: s.previousRect.top, after: s.currentRect.top };
        })
      });
    });
  }).observe({ type: "layout-shift", buffered: true });
}
"""
HOST = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Partner site</title>
<style>
  body { margin: 0; font: 17px/1.5 Georgia, serif; background: #faf7f0; }
  article { max-width: 40rem; margin: 0 auto; padding: 1rem; background: #fff; }
  #above { min-height: 220px; }
  #below { min-height: 2400px; }
  .reserved { min-height: 600px; }
</style></head>
<body><article>
<h1 id="host-title">Partner site: our coverage of the coast</h1>
<p id="above">A partner's own article, above the embed: it must never move.</p>
SNIPPET
<p id="below">The rest of the partner's article, below the embed.</p>
</article></body></html>
"""
FRAME = "iframe[data-liveblog-frame=tartus]"


def serve(redis_url: str, **settings: object) -> UvicornThread:
    """A server whose public URL is its own address: the snippet names it."""
    port = free_port()
    config = app_config(redis_url, public_url=f"http://127.0.0.1:{port}", **settings)
    return UvicornThread(config, port=port)


@pytest.fixture
def server(redis_url: str) -> Iterator[UvicornThread]:
    with serve(redis_url) as running:
        yield running


@pytest.fixture
def other_site() -> Iterator[OtherSite]:
    site = OtherSite()
    yield site
    site.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 900, "height": 800})
    context.add_init_script(SHIFTS)
    problems: list[str] = []
    context.on("page", lambda page: page.on("pageerror", lambda e: problems.append(str(e))))
    context.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    yield context
    context.close()
    # No script error and no CSP refusal (Chromium logs those as errors), in either frame.
    assert problems == []


def snippet(api: Api) -> str:
    response = api("GET", "/api/blogs/tartus/embed")
    assert response.status_code == 200, response.text
    return str(response.json()["snippet"])


def host(other_site: OtherSite, api: Api, page: Page, reserved: bool = False) -> None:
    """The blog's snippet on the other site's page, opened from localhost: another site
    than the server's 127.0.0.1. `reserved`: in an element as tall as the iframe starts
    (what the README suggests to a host that wants nothing to move when the script runs)."""
    line = snippet(api)
    if reserved:
        line = f'<div class="reserved">{line}</div>'
    other_site.html = HOST.replace("SNIPPET", line)
    page.goto(f"http://localhost:{other_site.port}/")


def embedded(page: Page) -> Frame:
    expect(page.locator(FRAME)).to_be_attached()
    handle = page.locator(FRAME).element_handle()
    assert handle is not None
    for _ in range(500):
        frame = handle.content_frame()
        if frame is not None and frame.url.endswith("/blogs/tartus/embed"):
            return frame
        page.wait_for_timeout(10)
    raise AssertionError("the iframe did not load the embed page")


def listening(server: UvicornThread, page: Page, readers: int = 1) -> None:
    """Wait until the embed's stream is open (the server counts it a reader)."""
    for _ in range(500):
        tailer = server.hub().tailers.get("tartus")
        if tailer and len(tailer.subscribers) >= readers:
            return
        page.wait_for_timeout(10)
    raise AssertionError("the embed did not open its stream")


def heights(page: Page, frame: Frame) -> tuple[int, int]:
    """The iframe's height on the host, and its document's height inside."""
    outer = page.locator(FRAME).evaluate("f => f.getBoundingClientRect().height")
    inner = frame.evaluate("document.documentElement.getBoundingClientRect().height")
    return round(outer), round(inner)


def fitted(page: Page, frame: Frame, taller_than: int = 0,
           shorter_than: int = 10**6) -> int:
    """Wait until the iframe is as tall as its document (within 2 px), and taller than
    `taller_than` and shorter than `shorter_than`; that height."""
    for _ in range(500):
        outer, inner = heights(page, frame)
        if abs(outer - inner) <= 2 and taller_than < outer < shorter_than:
            return outer
        page.wait_for_timeout(10)
    raise AssertionError(f"the iframe is {outer}px, its document {inner}px")


def post(api: Api, tokens: Tokens, body: str, **fields: Any) -> str:
    response = api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                   json={"body": body, **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["entry"]["id"])


def shifts(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate("window.shifts")
    return found


def top_of(page: Page, selector: str) -> float:
    return float(page.locator(selector).evaluate(
        "e => e.getBoundingClientRect().top + window.scrollY"))


# -- the snippet and the page ------------------------------------------------------------------


def test_the_api_gives_the_snippet(api: Api, tokens: Tokens, blog: str,
                                   server: UvicornThread) -> None:
    response = api("GET", "/api/blogs/tartus/embed")
    assert response.status_code == 200
    assert response.headers["cache-control"] == READER_CACHE
    assert response.json() == {
        "snippet": f'<script async src="{server.base_url}/static/embed.js" '
                   'data-liveblog="tartus"></script>',
        "url": f"{server.base_url}/blogs/tartus/embed",
        "origins": ["*"],
    }
    missing = api("GET", "/api/blogs/nowhere/embed")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_the_embed_page_is_compact_cacheable_and_framed_as_the_setting_says(
        api: Api, tokens: Tokens, blog: str, server: UvicornThread) -> None:
    for n in range(12):
        post(api, tokens, f"Update number {n}")
    response = api("GET", "/blogs/tartus/embed")
    assert response.status_code == 200
    html = response.text
    assert 'class="site"' not in html and "Skip to content" not in html  # no site chrome
    assert '<base target="_top">' in html
    assert html.count('<article class="entry') == 10  # the newest ten
    assert "Update number 11" in html and "Update number 1<" not in html
    assert f'href="{server.base_url}/blogs/tartus">Full coverage on 127.0.0.1:{server.port}' in html
    # Framed by anyone (the default), where the reader page is framed only by this site.
    assert policy(response)["frame-ancestors"] == "*"
    assert policy(response)["base-uri"] == "'none'"
    assert policy(api("GET", "/blogs/tartus"))["frame-ancestors"] == "'self'"
    assert policy(api("GET", "/"))["frame-ancestors"] == "'none'"
    # Cached like the reader page, and revalidated with its ETag.
    assert response.headers["cache-control"] == READER_CACHE
    again = api("GET", "/blogs/tartus/embed", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert policy(again)["frame-ancestors"] == "*"
    post(api, tokens, "One more")
    changed = api("GET", "/blogs/tartus/embed", headers={"If-None-Match": response.headers["etag"]})
    assert changed.status_code == 200 and "One more" in changed.text


def policy(response: httpx.Response) -> dict[str, str]:
    header = response.headers["content-security-policy"]
    pairs = (part.strip().partition(" ") for part in header.split(";"))
    return {name: value for name, _, value in pairs}


@pytest.mark.parametrize(("given", "sources"), [
    ("*", "*"),
    ("https://news.example", "'self' https://news.example"),
    ("  HTTPS://News.Example/  http://localhost:8080 https://*.partner.example ",
     "'self' https://news.example http://localhost:8080 https://*.partner.example"),
    ("https://[::1]:8443 http://10.0.0.7", "'self' https://[::1]:8443 http://10.0.0.7"),
])
def test_embed_origins_are_origins(given: str, sources: str) -> None:
    assert Config.from_env({"LIVEBLOG_EMBED_ORIGINS": given}).embed_origins == sources


@pytest.mark.parametrize("given", [
    "", "none", "news.example", "ftp://news.example", "https://news.example/live",
    "https://news.example?x", "https://user@news.example", "https://news.example:99999",
    "* https://news.example", "https://news.example; script-src *", "'self'",
    "https://[zz::1]", "https://news.*.example",
])
def test_anything_else_stops_the_server_naming_the_setting(given: str) -> None:
    with pytest.raises(ConfigError, match="LIVEBLOG_EMBED_ORIGINS"):
        Config.from_env({}, embed_origins=given)


# -- in Chromium --------------------------------------------------------------------------------


@pytest.mark.parametrize("reserved", [False, True], ids=["bare", "reserved"])
def test_the_embed_appears_on_another_site_and_keeps_the_height_of_its_content(
        context: BrowserContext, api: Api, tokens: Tokens, blog: str, server: UvicornThread,
        other_site: OtherSite, reserved: bool) -> None:
    api("PUT", "/api/blogs/tartus/facts/deaths", tokens.reporter,
        json={"label": "Deaths", "value": "at least 80", "numeric": 80, "source": "AP"})
    api("PUT", "/api/blogs/tartus/facts/deaths", tokens.reporter,
        json={"label": "Deaths", "value": "at least 121", "numeric": 121, "source": "AP"})
    first = post(api, tokens, "A blast at the **Tartus bus station**.", title="Blast in Tartus")
    api("PUT", "/api/blogs/tartus/pinned", tokens.editor, json={"entry_id": first})
    post(api, tokens, "A second blast in Jableh, witnesses say.")
    page = context.new_page()
    host(other_site, api, page, reserved)
    iframe = page.locator(FRAME)
    assert iframe.get_attribute("src") == f"{server.base_url}/blogs/tartus/embed"
    assert iframe.get_attribute("title") == "Live blog: tartus"
    assert iframe.get_attribute("loading") == "lazy"
    # Right after the script, at the host column's full width, no border.
    assert page.evaluate("document.querySelector('script[data-liveblog]').nextElementSibling"
                         ".dataset.liveblogFrame") == "tartus"
    assert iframe.evaluate("f => [f.offsetWidth, getComputedStyle(f.parentNode).width, "
                           "getComputedStyle(f).borderTopWidth]") == [640, "640px", "0px"]
    frame = embedded(page)
    expect(frame.locator("#entries article")).to_have_count(2)
    expect(frame.locator("h1")).to_have_text("Blasts in Tartus and Jableh")
    expect(frame.locator("#pinned-body")).to_contain_text("Blast in Tartus")
    expect(frame.locator(".fact-value")).to_have_text("at least 121")
    expect(frame.locator(".site")).to_have_count(0)
    height = fitted(page, frame)
    iframe_top, title_top = top_of(page, FRAME), top_of(page, "#host-title")
    listening(server, page)

    live = []
    for n in range(3):  # each update makes the embed taller, and the iframe follows
        live.append(post(api, tokens, f"Live update {n}: the toll rises, officials say."))
        expect(frame.locator("#entries article")).to_have_count(3 + n, timeout=SECOND)
        height = fitted(page, frame, taller_than=height)
        # Nothing scrolls inside: the whole document is shown.
        assert frame.evaluate("document.documentElement.scrollHeight") <= height + 2
    expect(frame.locator("#entries article").first).to_contain_text("Live update 2")
    # A retraction makes it shorter, and the iframe follows down too.
    assert api("DELETE", f"/api/blogs/tartus/entries/{live[1]}", tokens.editor).status_code == 200
    expect(frame.locator("#entries article")).to_have_count(4, timeout=SECOND)
    height = fitted(page, frame, shorter_than=height)

    # No layout shift above the embed: nothing there moved, nor the iframe's top.
    assert top_of(page, FRAME) == iframe_top and top_of(page, "#host-title") == title_top
    recorded = shifts(page)
    print("layout shifts:", recorded)
    if reserved:
        # The iframe took the reserved place; it grew while what is below it was out of view.
        assert recorded == []
    else:
        # An async script runs after the host's first paint: inserting the iframe moved the
        # text below it, once, and nothing else moved.
        assert len(recorded) == 1 and not recorded[0]["recent"], recorded
        assert [s["node"] for s in recorded[0]["sources"]] == ["below"], recorded
        assert recorded[0]["sources"][0]["before"] >= iframe_top - 0.5, recorded
    name = "reserved" if reserved else "bare"
    page.screenshot(path=f"/tmp/embed-host-{name}.png", full_page=True)


def test_a_reader_below_the_embed_sees_no_shift_while_it_grows(
        context: BrowserContext, api: Api, tokens: Tokens, blog: str, server: UvicornThread,
        other_site: OtherSite) -> None:
    post(api, tokens, "First report from the coast.")
    page = context.new_page()
    host(other_site, api, page)
    frame = embedded(page)
    height = fitted(page, frame)
    listening(server, page)
    # Read on below the embed: it is out of view, above.
    page.evaluate("window.scrollTo(0, document.getElementById('below').offsetTop + 300)")
    page.wait_for_function("window.scrollY > 0")
    before = page.evaluate("window.shifts.length")
    below = page.locator("#below").evaluate("e => e.getBoundingClientRect().top")
    for n in range(3):
        post(api, tokens, f"Live update {n}, posted while the reader is further down.")
        expect(frame.locator("#entries article")).to_have_count(2 + n, timeout=SECOND)
        height = fitted(page, frame, taller_than=height)
    # What the reader has in view did not move: scroll anchoring took the growth.
    assert page.locator("#below").evaluate("e => e.getBoundingClientRect().top") == below
    assert shifts(page)[before:] == []


def test_links_open_in_the_top_window(context: BrowserContext, api: Api, tokens: Tokens,
                                      blog: str, server: UvicornThread,
                                      other_site: OtherSite) -> None:
    post(api, tokens, "Rendered on the server, with [a link](https://example.org/a).",
         embed={"url": "https://example.org/post/1"})
    page = context.new_page()
    host(other_site, api, page)
    frame = embedded(page)
    listening(server, page)
    live = post(api, tokens, "Arrived live.")
    expect(frame.locator(f"#entry-{live}")).to_be_visible(timeout=SECOND)
    # Every link leaves the frame: the page's base target is the top window, links out to
    # other sites open a new one, and none is an in-page link (the embed's own URL would
    # then open in the top window).
    assert frame.evaluate("document.querySelector('base').target") == "_top"
    targets = frame.eval_on_selector_all(
        "a[href]", "links => links.map(a => [a.getAttribute('href'), a.target])")
    assert len(targets) >= 7  # headline, times, shares, a link, an embed card, full coverage
    for href, target in targets:
        assert target in ("", "_blank"), href
        assert href.startswith(("/blogs/tartus/entries/", server.base_url + "/blogs/tartus",
                                "https://example.org/")), href
    frame.click(f"#entry-{live} .permalink")  # an entry that arrived live: its time
    expect(page).to_have_url(f"{server.base_url}/blogs/tartus#entry-{live}")
    expect(page.locator(f"#entry-{live}")).to_be_visible()
    page.go_back()
    frame = embedded(page)
    frame.click("text=Full coverage on")
    expect(page).to_have_url(f"{server.base_url}/blogs/tartus")


def forged(to: str, slug: str, height: int) -> str:
    """Script that posts a height message to the window `to`."""
    return (f"{to}.postMessage({{type: 'liveblog:height', slug: '{slug}', "
            f"height: {height}}}, '*')")


def test_height_messages_from_elsewhere_are_ignored(
        context: BrowserContext, api: Api, tokens: Tokens, blog: str, server: UvicornThread,
        other_site: OtherSite) -> None:
    post(api, tokens, "First report.")
    page = context.new_page()
    host(other_site, api, page)
    frame = embedded(page)
    height = fitted(page, frame)
    # Heard after embed.js's own listener: each message, and the iframe's height then.
    page.evaluate("""() => {
      window.seen = [];
      window.addEventListener("message", function (e) {
        if (!e.data || e.data.type !== "liveblog:height") return;
        window.seen.push([e.origin, e.data.slug, e.data.height,
                          document.querySelector("iframe").getBoundingClientRect().height]);
      });
    }""")

    def heard(value: int) -> list[Any]:
        page.wait_for_function(f"window.seen.some(m => m[2] === {value})")
        found: list[Any] = next(m for m in page.evaluate("window.seen") if m[2] == value)
        return found

    host_origin = f"http://localhost:{other_site.port}"
    # The host page itself (the wrong origin and the wrong window).
    page.evaluate(forged("window", "tartus", 123))
    assert heard(123) == [host_origin, "tartus", 123, height]
    # The embed's frame, for another blog.
    frame.evaluate(forged("parent", "other", 124))
    assert heard(124) == [server.base_url, "other", 124, height]
    # The right window, once it shows another origin's page.
    page.locator(FRAME).evaluate("(f, url) => { f.src = url; }", f"{host_origin}/plain")
    for _ in range(500):
        plain = page.frame(url=f"{host_origin}/plain")
        if plain is not None:
            break
        page.wait_for_timeout(10)
    assert plain is not None
    expect(plain.locator("p")).to_have_text("plain")  # its own document, loaded
    plain.evaluate(forged("parent", "tartus", 126))
    assert heard(126) == [host_origin, "tartus", 126, height]
    assert page.locator(FRAME).evaluate("f => f.getBoundingClientRect().height") == height


# -- LIVEBLOG_EMBED_ORIGINS ---------------------------------------------------------------------


def test_a_site_the_setting_does_not_name_cannot_frame_the_embed(
        browser: Browser, redis_url: str, tokens: Tokens, other_site: OtherSite) -> None:
    allowed = f"http://localhost:{other_site.port}"
    with serve(redis_url, embed_origins=allowed) as server:
        api = Api(server.base_url)
        assert api("POST", "/api/blogs", tokens.editor,
                   json={"slug": "tartus", "title": "Blasts"}).status_code == 201
        post(api, tokens, "First report.")
        embed = api("GET", "/blogs/tartus/embed")
        assert policy(embed)["frame-ancestors"] == f"'self' {allowed}"
        assert api("GET", "/api/blogs/tartus/embed").json()["origins"] == [allowed]
        other_site.html = HOST.replace("SNIPPET", snippet(api))
        page = browser.new_page()
        # The site it names: the embed loads.
        page.goto(f"{allowed}/")
        expect(embedded(page).locator("#entries article")).to_have_count(1)
        # The same page from another origin (127.0.0.1, another port than the server's):
        # Chromium refuses the frame and shows its error page instead.
        page.goto(f"http://127.0.0.1:{other_site.port}/")
        expect(page.locator(FRAME)).to_be_attached()
        for _ in range(500):
            if [f.url for f in page.frames[1:]] == ["chrome-error://chromewebdata/"]:
                break
            page.wait_for_timeout(10)
        assert [f.url for f in page.frames[1:]] == ["chrome-error://chromewebdata/"]
        assert page.frames[1].locator("#entries").count() == 0
        page.close()
        api.http.close()
