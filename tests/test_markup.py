"""One renderer for an update (issue 10), liveblog/markup.py: the reader page, the stream
and the newsroom's preview all carry the article rendered by templates/_entry.html (and a
figure's row by _fact.html), so an entry that arrives live is, to the byte, what a reload
shows, and a preview is what the page will show. Real Redis, uvicorn and Chromium."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
from playwright.sync_api import Page, Route, expect

from tests.sse import read_stream
from tests.support import Api, Tokens, UvicornThread, open_live, run_async

PICTURE = "/static/demo/tartus.svg"
# Everything an article can show: title, key event, Markdown, picture, embed.
RICH = {
    "title": "Second blast at the bus station",
    "body": "A second explosion hit the **bus station** in Jableh, "
            "[witnesses](https://example.com/w) say.\n\n- at least 80 dead\n- roads closed",
    "key_event": True,
    "image": {"url": PICTURE, "alt": "Smoke over the station", "caption": "Jableh, 09:40",
              "credit": "Stringer / AFP"},
    "embed": {"url": "https://x.com/SANA_English/status/1"},
}

# An element's outerHTML with its relative times ("2 minutes ago") emptied: they are told
# from the clock when each copy was shown, so they alone may differ.
OUTER = """(selector) => {
  const found = document.querySelector(selector);
  if (!found) return null;
  const copy = found.cloneNode(true);
  copy.querySelectorAll("[data-rel]").forEach((e) => { e.textContent = ""; });
  return copy.outerHTML;
}"""


def post(api: Api, token: str, **entry: object) -> str:
    response = api("POST", "/api/blogs/tartus/entries", token, json=entry)
    assert response.status_code == 201, response.text
    entry_id: str = response.json()["entry"]["id"]
    return entry_id


def shown(page: Page, selectors: list[str]) -> dict[str, str | None]:
    return {s: page.evaluate(OUTER, s) for s in selectors}


def test_an_entry_that_arrives_live_is_byte_identical_to_the_page_after_a_reload(
        page: Page, api: Api, tokens: Tokens, blog: str, server: UvicornThread) -> None:
    """Posted, edited with a correction, pinned, its author renamed, and a figure charted,
    all while the page is open: every element the stream brought is, to the byte, what the
    server renders on a reload, and what a page rebuilt from the stream's snapshot shows."""
    open_live(page, server)
    rich = post(api, tokens.reporter, **RICH)
    plain = post(api, tokens.other_reporter, body="Roads around the station are closed.")
    api("PUT", "/api/blogs/tartus/facts/deaths", tokens.reporter,
        json={"label": "Deaths", "value": "at least 80", "numeric": 80, "source": "AP"})
    api("PUT", "/api/blogs/tartus/facts/deaths", tokens.reporter,
        json={"label": "Deaths", "value": "121", "numeric": 121, "source": "SOHR"})
    edited = api("PATCH", f"/api/blogs/tartus/entries/{rich}", tokens.editor,
                 json={"body": RICH["body"] + " Updated toll.",
                       "correction": "An earlier version named the wrong city."})
    assert edited.status_code == 200, edited.text
    api("PUT", "/api/blogs/tartus/pinned", tokens.editor, json={"entry_id": rich})
    # A new byline for the author, from then on and on what she posted (byline-changed).
    rania = api("GET", "/api/me", tokens.reporter).json()["id"]
    renamed = api("PATCH", f"/api/people/{rania}", tokens.editor,
                  json={"display_name": "Rania Abouzeid"})
    assert renamed.status_code == 200, renamed.text

    selectors = [f"#entry-{rich}", f"#entry-{plain}", f"#pinned-{rich}", "#fact-deaths"]
    expect(page.locator(f"#pinned-{rich} .correction")).to_have_count(1)
    expect(page.locator("#fact-deaths svg.spark")).to_have_count(1)
    expect(page.locator(f"#entry-{rich} .correction")).to_have_count(1)
    expect(page.locator(f"#pinned-{rich} .author")).to_have_text("Rania Abouzeid")
    # The arrival highlight is the live page's alone, and only while it lasts.
    expect(page.locator("#entries .arrived")).to_have_count(0, timeout=3000)
    live = shown(page, selectors)
    assert all(live.values()), live
    assert 'class="entry key"' in (live[f"#entry-{rich}"] or "")
    assert "<figure>" in (live[f"#entry-{rich}"] or "")

    page.reload()
    assert shown(page, selectors) == live

    # A page whose stream opens with a snapshot (an id the server cannot place) rebuilds
    # the same elements from it.
    def stale(route: Route) -> None:
        html = re.sub(r'data-last-event-id="[^"]*"', 'data-last-event-id="1-0"',
                      route.fetch().text())
        html = re.sub(r'(<div id="entries" class="entries">).*?(</div>\s*<p)', r"\1\2", html,
                      flags=re.S)
        html = re.sub(r'(<dl id="facts-list">).*?(</dl>)', r"\1\2", html, flags=re.S)
        html = re.sub(r'(<div id="pinned-body">).*?(</div>)', r"\1\2", html, flags=re.S)
        route.fulfill(body=html, content_type="text/html; charset=utf-8")

    page.route(f"{server.base_url}/blogs/tartus", stale)
    page.reload()
    expect(page.locator(f"#pinned-{rich}")).to_have_count(1)
    expect(page.locator(f"#entry-{plain}")).to_have_count(1)
    assert shown(page, selectors) == live


def test_older_updates_are_the_pages_own_articles(
        page: Page, api: Api, tokens: Tokens, blog: str, server: UvicornThread) -> None:
    """"Load older updates" takes the next page's articles as the server rendered them."""
    ids = [post(api, tokens.reporter, body=f"Update {n}", title=f"Headline {n}")
           for n in range(23)]
    page.goto(f"{server.base_url}/blogs/tartus")
    expect(page.locator("#entries article")).to_have_count(20)
    page.click("#load-older")
    expect(page.locator("#entries article")).to_have_count(23)
    expect(page.locator("#load-older")).to_be_hidden()
    loaded = shown(page, [f"#entry-{i}" for i in ids[:3]])
    page.goto(f"{server.base_url}/blogs/tartus?before={ids[3]}")
    assert shown(page, [f"#entry-{i}" for i in ids[:3]]) == loaded


def page_article(html: str, entry_id: str) -> str:
    found = re.search(rf'<article [^>]*id="entry-{entry_id}".*?</article>', html, re.S)
    assert found, f"no article {entry_id} in the page"
    return found.group(0)


def timeless(article: str, entry_id: str) -> str:
    """An article with its id, times and relative time made the same for any entry."""
    article = article.replace(entry_id, "ID")
    article = re.sub(r'datetime="[^"]*"', 'datetime=""', article)
    article = re.sub(r'data-rel="[^"]*">[^<]*<', 'data-rel=""><', article)
    return re.sub(r"\d\d:\d\d UTC", "HH:MM UTC", article)


def test_the_preview_is_the_article_the_page_shows_once_posted(
        api: Api, tokens: Tokens, blog: str) -> None:
    shape = {k: v for k, v in RICH.items()}
    preview = api("POST", "/api/preview", tokens.reporter, json={**shape, "slug": "tartus"})
    assert preview.status_code == 200, preview.text
    shown_first = preview.json()
    assert set(shown_first) == {"html", "article"}
    assert "<strong>bus station</strong>" in shown_first["html"]
    assert '<span class="author">rania</span>' in shown_first["article"]  # the caller

    entry_id = post(api, tokens.reporter, **shape)
    page = api("GET", "/blogs/tartus").text
    assert timeless(shown_first["article"], "preview") == \
        timeless(page_article(page, entry_id), entry_id)
    assert shown_first["html"] == api("GET", "/api/blogs/tartus").json()["entries"][0]["html"]

    # Without a blog there is no share link; the rest is the same.
    bare = api("POST", "/api/preview", tokens.reporter, json=shape).json()["article"]
    assert 'class="share"' not in bare
    assert timeless(re.sub(r'\s*<a class="share"[^>]*>Share</a>', "", shown_first["article"]),
                    "preview") == timeless(bare, "preview")
    # Only Markdown, as the console sent before there were articles: still answered.
    old = api("POST", "/api/preview", tokens.reporter, json={"body": "*one*"})
    assert old.status_code == 200 and old.json()["html"] == "<p><em>one</em></p>"
    assert api("POST", "/api/preview", tokens.reporter, json={"body": ""}).status_code == 200


def test_a_preview_checks_its_fields_as_posting_does_and_appends_nothing(
        api: Api, tokens: Tokens, blog: str) -> None:
    before = api("GET", "/api/blogs/tartus/events", tokens.editor).json()["events"]
    for body, field in [
        ({"body": "x", "image": {"url": "https://example.com:99999/a.jpg", "alt": "a"}},
         "image.url"),
        ({"body": "x", "image": {"url": "https://example.com/a.jpg"}}, "image.alt"),
        ({"body": "x", "embed": {"url": "javascript:alert(1)"}}, "embed.url"),
        ({"body": "x", "title": "   "}, "title"),
        ({"body": "x", "title": "t" * 121}, "title"),
        ({"body": "x", "slug": "Not A Slug"}, "slug"),
    ]:
        response = api("POST", "/api/preview", tokens.reporter, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == [field], response.text
        # Posting the same says the same.
        if field != "slug":
            posted = api("POST", "/api/blogs/tartus/entries", tokens.reporter, json=body)
            assert posted.status_code == 422
            assert [e["field"] for e in posted.json()["errors"]] == [field]
    assert api("POST", "/api/preview", json={"body": "x"}).status_code == 401
    assert api("GET", "/api/blogs/tartus/events", tokens.editor).json()["events"] == before


def test_stream_messages_carry_the_pages_markup(
        api: Api, tokens: Tokens, blog: str, server: UvicornThread) -> None:
    """entry-posted, entry-edited, pin-changed and fact-updated carry what the page renders,
    and the snapshot carries it for each entry, the pinned one and each figure."""
    post(api, tokens.reporter, body="First reports of a blast.")
    entry_id = post(api, tokens.reporter, **RICH)
    api("PATCH", f"/api/blogs/tartus/entries/{entry_id}", tokens.editor,
        json={"correction": "The toll was 80, not 90."})
    api("PUT", "/api/blogs/tartus/pinned", tokens.editor, json={"entry_id": entry_id})
    for value in (80, 121):
        api("PUT", "/api/blogs/tartus/facts/deaths", tokens.reporter,
            json={"label": "Deaths", "value": str(value), "numeric": value})
    page = api("GET", "/blogs/tartus").text

    # The first entry's event: the messages after it are in the tailer's ring.
    first_post = api("GET", "/api/blogs/tartus/events", tokens.editor).json()["events"][1]

    async def read() -> list[Any]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            first = await asyncio.wait_for(
                read_stream(client, "/blogs/tartus/stream", until=1), 10)
            resumed = await asyncio.wait_for(read_stream(
                client, "/blogs/tartus/stream", until=5, last_event_id=first_post["id"]), 10)
        return [first.messages[0].data, *(m.data for m in resumed.messages)]

    snapshot, posted, edited, pinned, _, fact = run_async(read())
    article = timeless(page_article(page, entry_id), entry_id)
    assert snapshot["entries"][0]["id"] == entry_id
    for carried in (snapshot["entries"][0], snapshot["pinned"],
                    edited["entry"], pinned["entry"]):
        assert timeless(carried["article"], entry_id) == article
    # Resumed, the first message has the entry as it stands now (its correction too).
    assert timeless(posted["entry"]["article"], entry_id) == article
    row = re.search(r'<div class="fact" id="fact-deaths">.*?</div>', page, re.S)
    assert row is not None and "<svg" in row.group(0)
    assert fact["fact"]["markup"] == row.group(0)
    assert snapshot["facts"][0]["markup"] == row.group(0)
