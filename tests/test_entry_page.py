"""One update, one page (issue 10): GET /blogs/{slug}/entries/{id}, its preview card and
JSON-LD, its live mode (this update only), the withdrawn notice, and the Share links that
lead to it. Real Redis, uvicorn and Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support import Api, Tokens, UvicornThread, app_config, open_live

SECOND = 1000  # ms: "within a second"
PUBLIC = "https://live.example.org"


@pytest.fixture
def server(redis_url: str) -> Iterator[UvicornThread]:
    # A public URL unlike the address the tests use: absolute URLs must be built from it.
    with UvicornThread(app_config(redis_url, public_url=PUBLIC)) as running:
        yield running


def post(api: Api, tokens: Tokens, **entry: object) -> str:
    response = api("POST", "/api/blogs/tartus/entries", tokens.reporter, json=entry)
    assert response.status_code == 201, response.text
    entry_id: str = response.json()["entry"]["id"]
    return entry_id


def test_the_page_of_one_update_has_its_own_card_canonical_and_json_ld(
        browser: Browser, api: Api, tokens: Tokens, blog: str, server: UvicornThread) -> None:
    titled = post(api, tokens, title="Second blast at the bus station",
                  body="A second explosion hit the **bus station** in Jableh, witnesses say.",
                  image={"url": "/static/demo/tartus.svg", "alt": "Smoke over the station",
                         "caption": "Jableh", "credit": "Stringer"})
    untitled = post(api, tokens, body="Ambulances are arriving from Latakia. More soon.")
    path = f"/blogs/tartus/entries/{titled}"

    response = api("GET", path)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=5, stale-while-revalidate=30"
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    again = api("GET", path, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304

    context = browser.new_context(java_script_enabled=False)
    bare = context.new_page()
    bare.goto(server.base_url + path)

    def meta(prop: str) -> str | None:
        return bare.locator(f'meta[property="{prop}"]').get_attribute("content")

    assert bare.locator('link[rel="canonical"]').get_attribute("href") == PUBLIC + path
    assert meta("og:url") == PUBLIC + path
    assert meta("og:title") == "Second blast at the bus station"
    assert meta("og:description") == \
        "A second explosion hit the bus station in Jableh, witnesses say."
    assert meta("og:image") == PUBLIC + "/static/demo/tartus.svg"
    expect(bare.locator("article")).to_have_count(1)
    expect(bare.locator(f"article#entry-{titled} .body")).to_have_text(
        "A second explosion hit the bus station in Jableh, witnesses say.")
    expect(bare.locator(f"article#entry-{titled} figcaption")).to_contain_text("Jableh")
    back = bare.locator("#back")
    expect(back).to_have_text("Blasts in Tartus and Jableh")
    expect(back).to_have_attribute("href", f"/blogs/tartus#entry-{titled}")
    ld = json.loads(bare.locator('script[type="application/ld+json"]').inner_text())
    assert ld["@type"] == "BlogPosting" and ld["url"] == PUBLIC + path
    assert ld["headline"] == "Second blast at the bus station"
    assert ld["image"] == PUBLIC + "/static/demo/tartus.svg"
    assert ld["isPartOf"] == {"@type": "LiveBlogPosting",
                              "headline": "Blasts in Tartus and Jableh",
                              "url": PUBLIC + "/blogs/tartus"}

    # An update with no title is named by its first words, and has no picture to show.
    bare.goto(f"{server.base_url}/blogs/tartus/entries/{untitled}")
    assert meta("og:title") == "Ambulances are arriving from Latakia. More soon."
    expect(bare.locator('meta[property="og:image"]')).to_have_count(0)
    expect(bare.locator("article")).to_have_count(1)
    context.close()


def test_an_unknown_blog_or_update_is_a_404_problem(
        api: Api, tokens: Tokens, blog: str) -> None:
    known = post(api, tokens, body="Something happened.")
    for path in ("/blogs/nowhere/entries/" + known, "/blogs/tartus/entries/nothing",
                 "/blogs/tartus/entries/a%20b"):
        response = api("GET", path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 404


def test_an_open_update_page_follows_that_update_and_no_other(
        page: Page, api: Api, tokens: Tokens, blog: str, server: UvicornThread) -> None:
    mine = post(api, tokens, title="Blast at the port", body="Casualties reported.")
    other = post(api, tokens, body="An older, different update.")
    open_live(page, server, f"/blogs/tartus/entries/{mine}")
    article = page.locator(f"#entry-{mine}")
    expect(article.locator(".entry-title")).to_have_text("Blast at the port")

    edited = api("PATCH", f"/api/blogs/tartus/entries/{mine}", tokens.reporter, json={
        "title": "Blast at the port of Tartus", "body": "At least 12 dead.",
        "correction": "An earlier version placed the blast in Jableh."})
    assert edited.status_code == 200, edited.text
    expect(article.locator(".entry-title")).to_have_text(
        "Blast at the port of Tartus", timeout=SECOND)
    expect(article.locator(".body")).to_have_text("At least 12 dead.")
    expect(article.locator(".correction")).to_contain_text(
        "An earlier version placed the blast in Jableh.")

    # A new post, then an edit of another update, then one more of this one: once that
    # last one shows, the page has had the others too, and shows neither.
    new = post(api, tokens, title="Another story", body="Nothing to do with the port.")
    api("PATCH", f"/api/blogs/tartus/entries/{other}", tokens.reporter,
        json={"body": "Changed elsewhere."})
    api("PATCH", f"/api/blogs/tartus/entries/{mine}", tokens.reporter,
        json={"title": "Blast at the port of Tartus", "body": "At least 14 dead."})
    expect(article.locator(".body")).to_have_text("At least 14 dead.", timeout=SECOND)
    expect(page.locator("article")).to_have_count(1)
    expect(page.locator(f"#entry-{new}")).to_have_count(0)
    expect(page.get_by_text("Changed elsewhere.")).to_have_count(0)
    # Still live for the blog's title, which leads back to this update in the blog.
    api("PATCH", "/api/blogs/tartus", tokens.editor, json={"title": "Tartus: live"})
    expect(page.locator("#back")).to_have_text("Tartus: live", timeout=SECOND)


def test_a_withdrawn_update_says_so_live_and_answers_410(
        page: Page, api: Api, tokens: Tokens, blog: str, server: UvicornThread) -> None:
    gone = post(api, tokens, title="Unverified claim", body="Words that must disappear.")
    path = f"/blogs/tartus/entries/{gone}"
    open_live(page, server, path)
    retracted = api("DELETE", f"/api/blogs/tartus/entries/{gone}", tokens.editor,
                    json={"reason": "The claim could not be verified."})
    assert retracted.status_code == 200, retracted.text
    notice = page.locator("article.withdrawn")
    expect(notice.locator(".withdrawn-notice")).to_have_text(
        "This update was withdrawn.", timeout=SECOND)
    # The reason is the newsroom's record (often a legal one), not the readers'.
    expect(page.get_by_text("could not be verified")).to_have_count(0)
    expect(page.get_by_text("Words that must disappear.")).to_have_count(0)

    response = api("GET", path)
    assert response.status_code == 410
    assert "This update was withdrawn." in response.text
    assert "could not be verified" not in response.text
    assert "must disappear" not in response.text and "Unverified claim" not in response.text
    assert 'rel="canonical"' in response.text and "og:title" not in response.text


def test_every_update_on_the_blog_page_has_a_share_link_to_its_page(
        page: Page, api: Api, tokens: Tokens, blog: str, server: UvicornThread) -> None:
    first = post(api, tokens, title="First", body="Served with the page.")
    open_live(page, server, "/blogs/tartus")
    share = page.locator(f"#entry-{first} a.share")
    expect(share).to_have_text("Share")
    expect(share).to_have_attribute("href", f"/blogs/tartus/entries/{first}")
    # An update that arrives live carries the same link.
    live = post(api, tokens, title="Second", body="Arrived while the page was open.")
    arrived = page.locator(f"#entry-{live} a.share")
    expect(arrived).to_have_attribute("href", f"/blogs/tartus/entries/{live}", timeout=SECOND)
    served = page.locator(f"#entry-{first} header").inner_html()
    assert served.count('class="share"') == 1
    assert page.locator(f"#entry-{live} header a.share").evaluate("a => a.outerHTML") == \
        f'<a class="share" href="/blogs/tartus/entries/{live}">Share</a>'

    with page.expect_response(lambda r: r.url.endswith(f"/entries/{live}")) as answer:
        arrived.click()
    assert answer.value.status == 200
    expect(page.locator(f"article#entry-{live} .entry-title")).to_have_text("Second")
    expect(page.locator("article")).to_have_count(1)
