"""Distribution in the newsroom console, in Chromium (issue 11): the blog's embed line with
its Copy button and its two feeds, and the editors' webhooks: registered against a real
receiver (its secret shown once), its deliveries listed as they happen, and deleted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import standardwebhooks
from playwright.sync_api import Browser, Page, expect

from tests.support import SECOND, Api, Receiver, Tokens, UvicornThread, wait_until


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def desk(browser: Browser, server: UvicornThread, token: str, path: str = "/newsroom/tartus",
         **options: object) -> Page:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, **options)  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(server.base_url + path)
    page.fill("#token", token)
    page.click("#signin button")
    expect(page.locator("#desk")).to_be_visible()
    return page


def open_tool(page: Page, name: str) -> None:
    page.locator(".deskbar .tool", has_text=name).click()


def test_the_embed_line_and_the_feeds(browser: Browser, server: UvicornThread, api: Api,
                                      tokens: Tokens, blog: str) -> None:
    page = desk(browser, server, tokens.reporter,
                permissions=["clipboard-read", "clipboard-write"])
    open_tool(page, "Embed & feeds")
    code = api("GET", "/api/blogs/tartus/embed").json()
    snippet = code["snippet"]
    expect(page.locator("#embed-snippet")).to_have_value(snippet)
    expect(page.locator("#embed-origins")).to_have_text("Any site may show it.")
    page.locator("#share-panel").get_by_role("button", name="Copy").click()
    expect(page.locator("#share-panel .copied")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == snippet
    # Both feeds are linked, at the address readers use (as the embed's), and answer.
    public = code["url"].removesuffix("/blogs/tartus/embed")
    for ext, kind in (("atom", "application/atom+xml"), ("json", "application/feed+json")):
        href = page.locator(f"#feed-{ext}").get_attribute("href") or ""
        assert href == f"{public}/blogs/tartus/feed.{ext}"
        response = api("GET", href.removeprefix(public))
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
    page.context.close()


def test_an_editor_registers_watches_and_deletes_a_webhook(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens, blog: str,
        receiver: Receiver) -> None:
    page = desk(browser, server, tokens.editor)
    open_tool(page, "Webhooks")
    panel = page.locator("#webhooks")
    expect(panel.locator("#webhooks-empty")).to_be_visible()
    # The six kinds, from the server's own list, all checked to start with.
    boxes = panel.locator("#webhook-kinds input")
    expect(boxes).to_have_count(6)
    assert all(box.is_checked() for box in boxes.all())

    # A bad URL: the reason next to the field, and nothing registered.
    panel.locator('[name="url"]').fill("ftp://alerts.example/x")
    panel.get_by_role("button", name="Register endpoint").click()
    expect(panel.locator("#webhook-form .error")).to_contain_text("url")
    assert api("GET", "/api/webhooks", tokens.editor).json()["webhooks"] == []

    panel.locator('[name="url"]').fill(receiver.url)
    panel.locator('#webhook-kinds input[value="fact-updated"]').uncheck()
    panel.locator('[name="blogs"]').fill("tartus")
    panel.get_by_role("button", name="Register endpoint").click()
    secret_box = panel.locator("#webhook-secret")
    expect(secret_box).to_be_visible()
    expect(secret_box).to_contain_text("will not be shown again")
    secret = panel.locator("#webhook-secret-value").input_value()
    assert secret.startswith("whsec_")
    [hook] = api("GET", "/api/webhooks", tokens.editor).json()["webhooks"]
    assert (hook["url"], hook["blogs"]) == (receiver.url, ["tartus"])
    assert sorted(hook["events"]) == sorted(
        ["entry-posted", "entry-edited", "entry-retracted", "pin-changed", "blog-updated"])
    row = panel.locator(f"#webhook-{hook['id']}")
    expect(row).to_contain_text(receiver.url)
    expect(row).to_contain_text("Blogs: tartus")
    expect(row.locator(".badge")).to_have_text("active")
    # Done: the secret leaves the page.
    panel.get_by_role("button", name="Done").click()
    expect(secret_box).to_be_hidden()
    assert panel.locator("#webhook-secret-value").input_value() == ""

    # An update is posted: the receiver gets it, signed with that secret, and the
    # endpoint's deliveries show it with the receiver's 200.
    row.get_by_role("button", name="Deliveries").click()
    expect(row.locator(".deliveries")).to_contain_text("Nothing sent yet.")
    posted = api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                 json={"body": "Blast at the port"}).json()
    wait_until(lambda: len(receiver.delivered()) == 1, what="the delivery")
    got = receiver.delivered()[0]
    assert standardwebhooks.Webhook(secret).verify(got.body, got.headers)["type"] == \
        "entry-posted"
    delivery = row.locator(".deliveries tbody tr")
    expect(delivery).to_have_count(1, timeout=10 * SECOND)
    expect(delivery).to_contain_text(posted["event_id"])
    expect(delivery).to_contain_text("entry-posted")
    expect(delivery.locator(".status")).to_have_text("200")

    # Deleted, after a confirmation: gone from the list and from the server.
    page.once("dialog", lambda dialog: dialog.dismiss())
    row.get_by_role("button", name="Delete").click()
    expect(row).to_be_visible()
    assert len(api("GET", "/api/webhooks", tokens.editor).json()["webhooks"]) == 1
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    expect(panel.locator("#webhooks-empty")).to_be_visible()
    assert api("GET", "/api/webhooks", tokens.editor).json()["webhooks"] == []
    page.context.close()


def test_webhooks_are_for_editors_and_on_the_list_of_blogs(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens, blog: str,
        receiver: Receiver) -> None:
    reporter = desk(browser, server, tokens.reporter)
    expect(reporter.locator(".deskbar .tool", has_text="Embed & feeds")).to_be_visible()
    expect(reporter.locator(".deskbar .tool", has_text="Webhooks")).to_be_hidden()
    reporter.goto(server.base_url + "/newsroom")
    expect(reporter.locator("#blog-list li")).to_have_count(1)
    expect(reporter.locator("#webhooks")).to_be_hidden()
    reporter.context.close()

    made = api("POST", "/api/webhooks", tokens.editor, json={"url": receiver.url}).json()
    editor = desk(browser, server, tokens.editor, "/newsroom")
    row = editor.locator(f"#webhook-{made['id']}")
    expect(row).to_contain_text("Sends: every change")
    expect(row).to_contain_text("Blogs: every blog")
    expect(row).to_contain_text("Waiting: 0")
    editor.context.close()
