"""Presence and bylines in the newsroom console, in Chromium (issue 10): two editors in two
browser contexts on one blog see each other by byline, see who is editing which update,
are warned before overwriting it, and see the lock go when its holder's page closes; the
timeline and the queue show bylines and follow a rename live."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from tests.support import SECOND, Api, Tokens, UvicornThread, app_config, wait_until

# Presence and locks live 6 s here (30 in production): the console is told to beat every
# 2 s, and a lock let go by a closing page is told from one that lapsed (4 s at least).
TTL = 6.0
BEAT = TTL / 3


@pytest.fixture
def quick(redis_url: str) -> Iterator[UvicornThread]:
    with UvicornThread(app_config(redis_url), presence_ttl=TTL, lock_ttl=TTL) as running:
        yield running


@pytest.fixture
def client(quick: UvicornThread) -> Iterator[Api]:
    api = Api(quick.base_url)
    yield api
    api.http.close()


def person(api: Api, tokens: Tokens, name: str) -> str:
    [found] = [p["id"] for p in api("GET", "/api/people", tokens.editor).json()["people"]
               if p["name"] == name]
    return str(found)


def rename(api: Api, tokens: Tokens, name: str, byline: str) -> None:
    response = api("PATCH", f"/api/people/{person(api, tokens, name)}", tokens.editor,
                   json={"display_name": byline})
    assert response.status_code == 200, response.text


@pytest.fixture
def newsroom(client: Api, tokens: Tokens) -> str:
    """The blog, and bylines for the two editors and a reporter."""
    assert client("POST", "/api/blogs", tokens.editor,
                  json={"slug": "tartus", "title": "Blasts in Tartus"}).status_code == 201
    rename(client, tokens, "ed", "Hala Nasser")
    rename(client, tokens, "eve", "Karim Said")
    rename(client, tokens, "rania", "Rania Abouzeid")
    return "tartus"


def desk(browser: Browser, server: UvicornThread, token: str) -> Page:
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    page.goto(server.base_url + "/newsroom/tartus")
    page.fill("#token", token)
    page.click("#signin button")
    expect(page.locator("#desk")).to_be_visible()
    return page


def body_of(api: Api, entry_id: str) -> str:
    [entry] = [e for e in api("GET", "/api/blogs/tartus").json()["entries"]
               if e["id"] == entry_id]
    return str(entry["body"])


def test_two_editors_see_each_other_and_who_is_editing_what(
        browser: Browser, quick: UvicornThread, client: Api, tokens: Tokens,
        newsroom: str) -> None:
    entry = client("POST", "/api/blogs/tartus/entries", tokens.reporter,
                   json={"body": "At least 80 dead"}).json()["entry"]["id"]
    hala = desk(browser, quick, tokens.editor)
    karim = desk(browser, quick, tokens.second_editor)
    # Each sees the other by byline, not by token name; nobody sees themself there.
    expect(hala.locator("#presence-list")).to_have_text("Karim Said", timeout=2 * SECOND)
    expect(karim.locator("#presence-list")).to_have_text("Hala Nasser",
                                                         timeout=(BEAT + 1) * SECOND)
    # The page was told its beat by the server.
    assert hala.locator("#newsroom").get_attribute("data-presence-beat") == str(BEAT)

    hala.locator(f"#desk-{entry}").get_by_role("button", name="Edit").click()
    lock = karim.locator(f"#desk-{entry} .lock")
    expect(lock).to_have_text("Hala Nasser is editing", timeout=(BEAT + 1) * SECOND)
    expect(karim.locator("#presence-list")).to_have_text("Hala Nasser · editing")
    expect(hala.locator(f"#desk-{entry} .lock")).to_have_text("")  # not to herself

    # Karim edits it anyway: he is asked first. Cancelled, nothing changes.
    row = karim.locator(f"#desk-{entry}")
    row.get_by_role("button", name="Edit").click()
    row.locator("textarea").fill("At least 92 dead")
    asked: list[str] = []

    def answer(accept: bool):  # type: ignore[no-untyped-def]
        def handle(dialog: Dialog) -> None:
            asked.append(dialog.message)
            if accept:
                dialog.accept()
            else:
                dialog.dismiss()
        return handle

    karim.once("dialog", answer(False))
    row.get_by_role("button", name="Save").click()
    expect(row.locator("form.edit .error")).to_have_text(
        "Not saved: Hala Nasser is editing this update.")
    assert asked == ["Hala Nasser is editing this update — save anyway?"]
    assert body_of(client, entry) == "At least 80 dead"
    assert client("GET", "/api/blogs/tartus").json()["version"] == 2  # nothing appended

    # Confirmed, it is saved over her lock.
    karim.once("dialog", answer(True))
    row.get_by_role("button", name="Save").click()
    expect(row.locator("form.edit")).to_have_count(0)
    assert len(asked) == 2
    assert body_of(client, entry) == "At least 92 dead"

    # Her page closes: its lock goes at once (a lapse would take 4 s at least), and
    # Karim sees it go at his next beat.
    hala.context.close()
    wait_until(lambda: client("GET", "/api/blogs/tartus/presence",
                              tokens.second_editor).json()["locks"] == [],
               timeout=1.5, what="the closed page to let go of its lock")
    expect(lock).to_have_text("", timeout=(BEAT + 1) * SECOND)
    expect(karim.locator("#presence-list")).to_have_text("only you")
    karim.context.close()


def test_bylines_in_the_timeline_and_queue_follow_a_rename(
        browser: Browser, quick: UvicornThread, client: Api, tokens: Tokens,
        newsroom: str) -> None:
    posted = client("POST", "/api/blogs/tartus/entries", tokens.reporter,
                    json={"body": "Smoke over the port"}).json()["entry"]["id"]
    draft = client("POST", "/api/blogs/tartus/entries", tokens.reporter,
                   json={"body": "Unconfirmed", "publish": "draft"}).json()["entry"]["id"]
    ed = desk(browser, quick, tokens.editor)
    expect(ed.locator("#me-name")).to_have_text("Hala Nasser")
    expect(ed.locator(f"#desk-{posted} .author")).to_have_text("Rania Abouzeid")
    expect(ed.locator(f"#queue-{draft} .author")).to_have_text("Rania Abouzeid")

    # Renamed in the People panel: the timeline and the queue change without a reload.
    ed.locator(".deskbar .tool", has_text="People").click()
    field = ed.locator("#people-list li", has_text="rania (reporter)").locator("input")
    field.fill("Rania A. Abouzeid")
    ed.locator("#people-list li", has_text="rania (reporter)").get_by_role(
        "button", name="Save").click()
    expect(ed.locator("#people-list li", has_text="rania (reporter)")).to_contain_text("Saved.")
    expect(ed.locator(f"#desk-{posted} .author")).to_have_text("Rania A. Abouzeid",
                                                               timeout=SECOND)
    expect(ed.locator(f"#queue-{draft} .author")).to_have_text("Rania A. Abouzeid",
                                                               timeout=SECOND)
    assert client("GET", "/api/blogs/tartus").json()["entries"][0]["author_name"] == \
        "Rania A. Abouzeid"

    # A rename from elsewhere (another editor, the CLI) arrives over the stream, and one's
    # own new byline shows in the bar.
    rename(client, tokens, "rania", "R. Abouzeid")
    expect(ed.locator(f"#desk-{posted} .author")).to_have_text("R. Abouzeid", timeout=SECOND)
    expect(ed.locator(f"#queue-{draft} .author")).to_have_text("R. Abouzeid", timeout=SECOND)
    client("POST", "/api/blogs/tartus/entries", tokens.editor, json={"body": "Desk note"})
    rename(client, tokens, "ed", "Hala N.")
    expect(ed.locator("#me-name")).to_have_text("Hala N.", timeout=SECOND)
    ed.context.close()
