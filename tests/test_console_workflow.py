# Runs once the workflow branch is merged (it needs the contributor role and the queue):
# rename to tests/test_console_workflow.py then. Passed (4 tests) on console + workflow.
"""The console's workflow flows in Chromium (issue 10): submit -> approve, draft -> publish,
schedule -> appears, reject with a reason; each checked on the reader page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from liveblog.service import utcnow
from tests.support import Api, Tokens, UvicornThread, open_live, open_store, run_async

ZONE = "Asia/Damascus"
SECOND = 1000  # ms


@pytest.fixture
def contributor(tokens: Tokens, redis_url: str) -> str:
    async def create() -> str:
        store = open_store(redis_url)
        assert await store.create_token("sami", "contributor", "test-token-sami", utcnow())
        await store.close()
        return "test-token-sami"

    return str(run_async(create()))


@pytest.fixture
def reader(browser: Browser, server: UvicornThread, blog: str) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    open_live(page, server)
    yield page
    context.close()


def desk(browser: Browser, server: UvicornThread, token: str) -> Page:
    page = browser.new_context(viewport={"width": 1440, "height": 900},
                               timezone_id=ZONE).new_page()
    page.goto(server.base_url + "/newsroom/tartus")
    page.fill("#token", token)
    page.click("#signin button")
    expect(page.locator("#desk")).to_be_visible()
    return page


def test_a_contributor_submits_and_an_editor_approves(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens, blog: str,
        contributor: str, reader: Page) -> None:
    sami = desk(browser, server, contributor)
    expect(sami.locator("#publish-choice")).to_be_hidden()
    expect(sami.locator("#compose-submit")).to_have_text("Submit for approval")
    sami.fill("#compose-body", "Two blasts at the port")
    sami.locator("#compose-body").press("Control+Enter")
    row = sami.locator("#queue li")
    expect(row).to_have_count(1)
    expect(row.locator(".badge.state-submitted")).to_be_visible()
    expect(row.get_by_role("button", name="Publish")).to_have_count(0)
    expect(reader.locator("#entries article")).to_have_count(0)

    ed = desk(browser, server, tokens.editor)
    queued = ed.locator("#queue li")
    expect(queued).to_contain_text("Two blasts at the port")
    queued.get_by_role("button", name="Publish").click()
    expect(reader.locator("#entries article").first).to_contain_text(
        "Two blasts at the port", timeout=SECOND)
    expect(ed.locator("#queue li")).to_have_count(0)
    expect(ed.locator("#desk-entries li")).to_have_count(1)


def test_a_draft_then_published_by_its_reporter(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens, blog: str,
        reader: Page) -> None:
    rania = desk(browser, server, tokens.reporter)
    rania.check('#publish-choice [value="draft"]')
    expect(rania.locator("#compose-submit")).to_have_text("Save draft")
    rania.fill("#compose-body", "Unconfirmed: a third blast")
    rania.click("#compose-submit")
    row = rania.locator("#queue li")
    expect(row.locator(".badge.state-draft")).to_be_visible()
    expect(reader.locator("#entries article")).to_have_count(0)
    row.get_by_role("button", name="Publish").click()
    expect(reader.locator("#entries article").first).to_contain_text(
        "a third blast", timeout=SECOND)


def test_a_scheduled_update_appears_at_its_time(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens, blog: str,
        reader: Page) -> None:
    ed = desk(browser, server, tokens.editor)
    ed.check('#publish-choice [value="schedule"]')
    expect(ed.locator("#compose-submit")).to_have_text("Schedule")
    at = datetime.now(ZoneInfo(ZONE)) + timedelta(seconds=4)
    ed.fill('[name="publish-at"]', at.strftime("%Y-%m-%dT%H:%M:%S"))
    ed.fill("#compose-body", "Press conference: the governor speaks")
    ed.click("#compose-submit")
    row = ed.locator("#queue li")
    expect(row.locator(".badge.state-scheduled")).to_be_visible()
    queued = api("GET", "/api/blogs/tartus/queue", tokens.editor).json()["entries"]
    assert abs(datetime.fromisoformat(queued[0]["publish_at"]) - at) < timedelta(seconds=1)
    expect(reader.locator("#entries article").first).to_contain_text(
        "the governor speaks", timeout=10 * SECOND)
    expect(ed.locator("#desk-entries li")).to_have_count(1, timeout=6 * SECOND)


def test_an_editor_rejects_with_a_reason(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens, blog: str,
        contributor: str) -> None:
    api("POST", "/api/blogs/tartus/entries", contributor, json={"body": "Rumour"})
    ed = desk(browser, server, tokens.editor)
    ed.once("dialog", lambda dialog: dialog.accept("not sourced"))
    ed.locator("#queue li").get_by_role("button", name="Reject").click()
    expect(ed.locator("#queue li .badge.state-rejected")).to_be_visible()
    expect(ed.locator("#queue li")).to_contain_text("not sourced")
