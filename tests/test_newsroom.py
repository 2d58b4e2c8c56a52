"""The newsroom console in headless Chromium: sign in, post, edit with a conflict, retract,
pin, update a figure, and see each on a reader page open in a second browser context."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support import SECOND, Api, Tokens, UvicornThread, open_live, wait_until


@pytest.fixture
def reader(browser: Browser, server: UvicornThread, blog: str) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    open_live(page, server)
    yield page
    context.close()


def sign_in(browser: Browser, server: UvicornThread, token: str, path: str) -> Page:
    page = browser.new_context().new_page()
    page.goto(server.base_url + path)
    page.fill("#token", token)
    page.click("#signin button")
    expect(page.locator("#desk")).to_be_visible()
    return page


def open_tool(desk: Page, name: str) -> None:
    """Opens one of the bar's tools (figures, headline, people, reader view)."""
    desk.locator(".deskbar .tool", has_text=name).click()


def test_a_reporter_posts_from_the_console_and_readers_see_it(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens,
        blog: str, reader: Page) -> None:
    desk = sign_in(browser, server, tokens.reporter, "/newsroom/tartus")
    expect(desk.locator("#me-name")).to_have_text("rania")
    expect(desk.locator("#me-role")).to_have_text("reporter")
    expect(desk.locator("#blog-form")).to_be_hidden()  # editors only
    assert "test-token" not in desk.url

    desk.fill("#compose-body", "Blast at the **bus station**")
    expect(desk.locator("#compose-preview strong")).to_have_text("bus station")
    # A failed post says why, next to the fields, and keeps the text.
    desk.locator("#compose summary", has_text="Image and embed").click()
    desk.fill('[name="image.url"]', "ftp://nope")
    desk.click("#compose button[type=submit]")
    expect(desk.locator("#compose .error")).to_contain_text("image.url")
    expect(desk.locator("#compose .error")).to_contain_text("image.alt")
    expect(desk.locator('[name="image.url"]')).to_have_attribute("aria-invalid", "true")
    expect(desk.locator("#compose-body")).to_have_value("Blast at the **bus station**")

    desk.fill('[name="image.url"]', "")
    desk.fill('#compose [name="title"]', "Blast in Tartus")
    desk.check('[name="key_event"]')
    desk.click("#compose button[type=submit]")
    expect(reader.locator("#entries article").first).to_contain_text("Blast in Tartus",
                                                                     timeout=SECOND)
    expect(reader.locator("#key-events li")).to_contain_text("Blast in Tartus")
    expect(desk.locator("#compose-body")).to_have_value("")
    expect(desk.locator("#desk-entries li")).to_have_count(1)
    assert api("GET", "/api/blogs/tartus").json()["version"] == 2  # posted exactly once

    open_tool(desk, "Key figures")
    desk.fill('#fact-form [name="key"]', "deaths")
    desk.fill('#fact-form [name="label"]', "Deaths")
    desk.fill('#fact-form [name="value"]', "at least 80")
    desk.fill('#fact-form [name="numeric"]', "80")
    desk.fill('#fact-form [name="source"]', "AP")
    desk.click("#fact-form button[type=submit]")
    expect(reader.locator("#fact-deaths .fact-value")).to_have_text("at least 80",
                                                                    timeout=SECOND)


def test_an_edit_that_meets_another_shows_both_versions(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens,
        blog: str, reader: Page) -> None:
    entry = api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                json={"body": "At least 80 dead"}).json()["entry"]
    other = api("POST", "/api/blogs/tartus/entries", tokens.other_reporter,
                json={"body": "Omar's update"}).json()["entry"]
    desk = sign_in(browser, server, tokens.reporter, "/newsroom/tartus")
    mine = desk.locator(f"#desk-{entry['id']}")
    # Not the author: no edit or retract for a reporter on someone else's update.
    expect(desk.locator(f"#desk-{other['id']} button")).to_have_count(0)
    mine.get_by_role("button", name="Edit").click()
    mine.locator("textarea").fill("At least 100 dead")
    # Meanwhile an editor corrects the same entry, over the lock Rania's open form holds.
    path = f"/api/blogs/tartus/entries/{entry['id']}"
    changes = {"body": "At least 121 dead", "note": "SOHR figure"}
    wait_until(lambda: api("PATCH", path, tokens.editor, json=changes).status_code == 409,
               what="the open form's lock")
    assert api("PATCH", path, tokens.editor, json=changes,
               headers={"Liveblog-Override-Lock": "true"}).status_code == 200
    mine.get_by_role("button", name="Save").click()
    conflict = desk.locator(".conflict")
    expect(conflict).to_contain_text("Theirs (revision 2)")
    expect(conflict).to_contain_text("At least 121 dead")
    expect(conflict).to_contain_text("At least 100 dead")
    assert api("GET", "/api/blogs/tartus").json()["entries"][1]["body"] == "At least 121 dead"
    conflict.get_by_role("button", name="Save mine over theirs").click()
    expect(reader.locator(f"#entry-{entry['id']} .body")).to_have_text("At least 100 dead",
                                                                       timeout=SECOND)


def test_a_correction_from_the_console_is_shown_to_readers(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens,
        blog: str, reader: Page) -> None:
    entry = api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                json={"body": "At least 60 dead"}).json()["entry"]
    desk = sign_in(browser, server, tokens.reporter, "/newsroom/tartus")
    mine = desk.locator(f"#desk-{entry['id']}")
    mine.get_by_role("button", name="Edit").click()
    mine.locator("textarea").fill("At least 80 dead")
    mine.get_by_label("Correction (shown to readers)").fill(
        "An earlier version of this update gave the toll as 60.")
    mine.get_by_role("button", name="Save").click()
    correction = reader.locator(f"#entry-{entry['id']} .correction")
    expect(correction).to_contain_text(
        ": An earlier version of this update gave the toll as 60.", timeout=SECOND)
    expect(reader.locator(f"#entry-{entry['id']} .body")).to_have_text("At least 80 dead")
    shown = api("GET", "/api/blogs/tartus").json()["entries"][0]
    assert shown["revision"] == 2  # the new text and the correction: one edit
    assert [c["text"] for c in shown["corrections"]] == [
        "An earlier version of this update gave the toll as 60."]


def test_an_editor_pins_retracts_and_ends_from_the_console(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens,
        blog: str, reader: Page) -> None:
    entry = api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                json={"body": "Unverified claim"}).json()["entry"]
    desk = sign_in(browser, server, tokens.editor, "/newsroom/tartus")
    row = desk.locator(f"#desk-{entry['id']}")
    row.get_by_role("button", name="Pin").click()
    expect(reader.locator(f"#pinned-{entry['id']}")).to_be_visible(timeout=SECOND)
    desk.once("dialog", lambda dialog: dialog.accept("not confirmed"))
    row.get_by_role("button", name="Retract").click()
    expect(reader.locator(f"#entry-{entry['id']}")).to_have_count(0, timeout=SECOND)
    events = api("GET", "/api/blogs/tartus/events", tokens.editor).json()["events"]
    assert events[-1]["data"] == {"type": "entry-retracted", "entry_id": entry["id"],
                                  "reason": "not confirmed"}
    open_tool(desk, "Headline & status")
    desk.fill('#blog-form [name="title"]', "Bombings in Tartus and Jableh")
    desk.click("#blog-form button[type=submit]")
    expect(reader.locator("h1")).to_have_text("Bombings in Tartus and Jableh", timeout=SECOND)
    desk.click("#toggle-status")
    expect(reader.locator("#ended")).to_be_visible(timeout=SECOND)


def test_sign_in_with_a_bad_token_says_so(browser: Browser,
                                          server: UvicornThread) -> None:
    page = browser.new_context().new_page()
    page.goto(server.base_url + "/newsroom")
    page.fill("#token", "lb_wrong")
    page.click("#signin button")
    expect(page.locator("#signin .error")).to_contain_text("unknown or has been revoked")
    expect(page.locator("#desk")).to_be_hidden()


def test_an_editor_opens_a_blog_and_reopens_it(browser: Browser, server: UvicornThread,
                                               api: Api, tokens: Tokens) -> None:
    desk = sign_in(browser, server, tokens.editor, "/newsroom")
    desk.fill('#create-blog [name="slug"]', "jableh")
    desk.fill('#create-blog [name="title"]', "Blasts in Jableh")
    desk.click("#create-blog button[type=submit]")
    expect(desk).to_have_url(f"{server.base_url}/newsroom/jableh")
    expect(desk.locator("#blog-title")).to_have_text("Blasts in Jableh")
    open_tool(desk, "Headline & status")
    desk.click("#toggle-status")
    expect(desk.locator("#toggle-status")).to_have_text("Reopen the blog")
    desk.click("#toggle-status")
    expect(desk.locator("#toggle-status")).to_have_text("End the blog")
    assert api("GET", "/api/blogs/jableh").json()["status"] == "live"
    # The same slug again: the reason, in plain words, next to the form.
    desk.goto(f"{server.base_url}/newsroom")
    desk.fill('#create-blog [name="slug"]', "jableh")
    desk.fill('#create-blog [name="title"]', "Again")
    desk.click("#create-blog button[type=submit]")
    expect(desk.locator("#create-blog .error")).to_contain_text("exists already")
    reporter = sign_in(browser, server, tokens.reporter, "/newsroom")
    expect(reporter.locator("#create-blog")).to_be_hidden()
    expect(reporter.locator("#blog-list a")).to_have_text("Blasts in Jableh")


def test_the_console_shows_the_audience_now(browser: Browser, server: UvicornThread,
                                            api: Api, tokens: Tokens, blog: str,
                                            reader: Page) -> None:
    desk = sign_in(browser, server, tokens.editor, "/newsroom/tartus")
    open_tool(desk, "Reader view")  # its frame opens a reader's stream only when opened
    # The reader page, and the console's own stream and its reader-page frame.
    tailer = server.hub().tailers["tartus"]
    wait_until(lambda: len(tailer.subscribers) == 3, what="three streams of the blog")
    expect(desk.locator("#audience-readers")).to_have_text("3", timeout=15 * SECOND)
    expect(desk.locator("#audience-lag")).to_have_text("none in the last minute")
    assert api("POST", "/api/blogs/tartus/entries", tokens.reporter,
               json={"body": "Blast"}).status_code == 201
    expect(desk.locator("#audience-lag")).to_have_text(
        re.compile(r"^median \d+ ms, 95% within \d+ ms$"), timeout=15 * SECOND)
    reader.context.close()
    expect(desk.locator("#audience-readers")).to_have_text("2", timeout=15 * SECOND)
    desk.context.close()


def seed_console(api: Api, tokens: Tokens, server: UvicornThread) -> None:
    """Enough for a long timeline: a picture, a key event, a long unbroken word."""
    for n in range(8):
        body = {"body": f"Update {n}: witnesses describe the scene " + "x" * (60 if n == 3 else 3)}
        if n == 2:
            body["image"] = {"url": f"{server.base_url}/static/demo/jableh.svg", "alt": "Jableh"}
        if n == 5:
            body |= {"title": "Blast in Jableh", "key_event": True}
        assert api("POST", "/api/blogs/tartus/entries", tokens.reporter, json=body).is_success


def box(page: Page, selector: str) -> dict[str, float]:
    found = page.locator(selector).bounding_box()
    assert found is not None, selector
    return found


def test_compose_and_timeline_side_by_side_on_a_desktop(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens, blog: str) -> None:
    seed_console(api, tokens, server)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    desk = context.new_page()
    desk.goto(server.base_url + "/newsroom/tartus")
    desk.fill("#token", tokens.editor)
    desk.click("#signin button")
    expect(desk.locator("#desk-entries li")).to_have_count(8)
    compose, timeline = box(desk, "#compose"), box(desk, "#desk-entries")
    assert compose["x"] + compose["width"] <= timeline["x"]  # side by side
    # Both start in the first viewport, and so does the preview and the post button.
    for name in ("#compose", "#desk-entries", "#compose-preview", "#compose-submit"):
        assert box(desk, name)["y"] + 40 < 900, name
    # Every update shows its time, author and state; the one with a picture, a thumbnail.
    first = desk.locator("#desk-entries li").first
    expect(first.locator("time")).to_have_text(re.compile(r"^\d\d:\d\d$"))
    expect(first.locator(".author")).to_have_text("rania")
    expect(first.locator(".badge.state-published")).to_have_text("published")
    expect(desk.locator("#desk-entries img.thumb")).to_have_count(1)
    share = first.get_by_role("link", name="Share link")
    entry_id = first.get_attribute("data-id")
    assert share.get_attribute("href") == f"/blogs/tartus/entries/{entry_id}"
    # The compose column stays in view while the timeline scrolls under it.
    desk.evaluate("window.scrollTo(0, 1500)")
    assert desk.evaluate("window.scrollY") > 200
    assert box(desk, "#compose-submit")["y"] < 900
    # Figures and the headline are one click away, not below everything.
    desk.locator(".deskbar .tool", has_text="Key figures").click()
    assert box(desk, "#fact-form")["y"] < 900
    context.close()


def test_one_column_on_a_phone_and_nothing_wider_than_it(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens, blog: str) -> None:
    seed_console(api, tokens, server)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    desk = context.new_page()
    desk.goto(server.base_url + "/newsroom/tartus")
    desk.fill("#token", tokens.editor)
    desk.click("#signin button")
    expect(desk.locator("#desk-entries li")).to_have_count(8)
    compose, timeline = box(desk, "#compose"), box(desk, "#desk-entries")
    assert compose["y"] + compose["height"] <= timeline["y"]  # compose first, then the rest
    assert box(desk, "#compose-body")["y"] < 844
    for tool in ("Key figures", "Headline & status", "Reader view"):
        desk.locator(".deskbar .tool", has_text=tool).click()
    desk.locator("#compose summary").click()
    desk.locator("#desk-entries li").first.get_by_role("button", name="Edit").click()
    assert desk.evaluate("document.documentElement.scrollWidth") <= desk.evaluate(
        "window.innerWidth")
    # Touch targets: every button at least 44 px tall.
    heights = desk.locator("#desk button:visible").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().height)")
    assert heights and min(heights) >= 44, heights
    context.close()


def test_ctrl_enter_posts(browser: Browser, server: UvicornThread, api: Api, tokens: Tokens,
                          blog: str) -> None:
    desk = sign_in(browser, server, tokens.reporter, "/newsroom/tartus")
    desk.fill("#compose-body", "Sirens in **Jableh**")
    desk.locator("#compose-body").press("Control+Enter")
    expect(desk.locator("#desk-entries li")).to_have_count(1)
    expect(desk.locator("#compose-body")).to_have_value("")
    desk.fill('#compose [name="title"]', "Second blast")
    desk.fill("#compose-body", "A second blast")
    desk.locator('#compose [name="title"]').press("Meta+Enter")  # Cmd+Enter on a Mac
    expect(desk.locator("#desk-entries li")).to_have_count(2)
    bodies = [e["body"] for e in api("GET", "/api/blogs/tartus").json()["entries"]]
    assert bodies == ["A second blast", "Sirens in **Jableh**"]


def test_the_preview_is_the_article_readers_get(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens, blog: str,
        reader: Page) -> None:
    desk = sign_in(browser, server, tokens.reporter, "/newsroom/tartus")
    preview = desk.locator("#compose-preview")
    # Before anything is typed it is there, and says what will appear in it.
    expect(preview).to_be_visible()
    expect(preview).to_contain_text("will appear here as readers will see it")
    desk.fill('#compose [name="title"]', "Blast in Jableh")
    desk.fill("#compose-body", "Smoke over the **port**, [video](https://example.org/v)")
    desk.check('#compose [name="key_event"]')
    desk.locator("#compose summary").click()
    desk.fill('[name="image.url"]', f"{server.base_url}/static/demo/jableh.svg")
    desk.fill('[name="image.alt"]', "The port")
    desk.fill('[name="image.caption"]', "Smoke over the port")
    desk.fill('[name="image.credit"]', "SANA")
    expect(preview.locator("article .body strong")).to_have_text("port")
    expect(preview.locator("article figcaption")).to_contain_text("SANA")

    def parts(article: Locator) -> dict[str, object]:
        return {
            # ("arrived" only flashes a new update on the live page)
            "classes": set((article.get_attribute("class") or "").split()) - {"arrived"},
            "title": article.locator(".entry-title").inner_text(),
            "body": article.locator(".body").inner_html().strip(),
            "image": article.locator("figure img").get_attribute("src"),
            "alt": article.locator("figure img").get_attribute("alt"),
            "caption": article.locator("figcaption").inner_text(),
            "badges": article.locator(".badge").all_inner_texts(),
        }

    previewed = parts(preview.locator("article"))
    desk.locator("#compose-body").press("Control+Enter")
    posted = reader.locator("#entries article").first
    expect(posted).to_contain_text("Blast in Jableh", timeout=SECOND)
    assert parts(posted) == previewed
    expect(preview).to_contain_text("will appear here as readers will see it")
