"""Screenshots for the README: the reader page (desktop and phone width), the newsroom
console and the replay.

    .venv/bin/python bench/screenshots.py    # writes docs/reader-*.png, replay.png and
                                             # docs/screenshots/console-*.png
    .venv/bin/python bench/screenshots.py console    # only the console's

Starts its own redis-server and server, tells the demo story, and shoots with Debian's
Chromium through Playwright.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

sys.path.insert(0, str(Path(__file__).parent.parent))

from liveblog.service import utcnow
from liveblog.story import SLUG
from tests.story import story_server
from tests.support import ARGS, CHROMIUM, Api, Tokens, open_store, run_async

DOCS = Path(__file__).parent.parent / "docs"


# The newsroom's bylines (identities' display names), by token name.
BYLINES = {"ed": "Hala Nasser", "eve": "Karim Said", "rania": "Rania Abouzeid",
           "omar": "Omar Darwish", "sami": "Sami Khoury"}


def newsroom(api: Api, tokens: Tokens, redis_url: str, entries: list[str]) -> None:
    """What a console shows on a working day: bylines, a contributor's submission waiting,
    an update scheduled for later, and another editor with an update open."""
    async def contributor() -> None:
        store = open_store(redis_url)
        assert await store.create_token("sami", "contributor", "screenshot-token-sami", utcnow())
        await store.close()

    run_async(contributor())
    for person in api("GET", "/api/people", tokens.editor).json()["people"]:
        api("PATCH", f"/api/people/{person['id']}", tokens.editor,
            json={"display_name": BYLINES[person["name"]]})
    posted = api("POST", f"/api/blogs/{SLUG}/entries", "screenshot-token-sami", json={
        "body": "Witnesses at the Jableh hospital say the emergency ward is full."})
    assert posted.status_code == 201, posted.text
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds")
    scheduled = api("POST", f"/api/blogs/{SLUG}/entries", tokens.editor, json={
        "title": "Governor's press conference", "publish": later,
        "body": "The governor of Tartus speaks to the press at the port."})
    assert scheduled.status_code == 201, scheduled.text
    # The newest update has a picture: the timeline shows its thumbnail.
    photo = api("POST", f"/api/blogs/{SLUG}/entries", tokens.other_reporter, json={
        "body": "Smoke still rises over the bus station in Jableh this evening.",
        "image": {"url": "/static/demo/jableh.svg", "alt": "Smoke over Jableh",
                  "caption": "Jableh, this evening", "credit": "Omar Darwish"}})
    assert photo.status_code == 201, photo.text
    # Karim is on the blog, editing the newest update (presence lasts 30 s: enough).
    beat = api("POST", f"/api/blogs/{SLUG}/presence", tokens.second_editor,
               json={"editing": entries[-1]})
    assert beat.status_code == 200, beat.text


def console(browser: Browser, base_url: str, token: str) -> None:
    """The newsroom console on a desktop and on a phone, composing an update."""
    for name, viewport in (("desktop", {"width": 1440, "height": 900}),
                           ("phone", {"width": 390, "height": 844})):
        context = browser.new_context(viewport=viewport, is_mobile=name == "phone",
                                      has_touch=name == "phone", timezone_id="Asia/Damascus")
        page = context.new_page()
        page.goto(f"{base_url}/newsroom/{SLUG}")
        page.fill("#token", token)
        page.click("#signin button")
        page.wait_for_selector("#desk-entries li")
        page.wait_for_selector("#queue li .state-scheduled")
        page.wait_for_selector("#desk-entries .lock:not(:empty)")
        page.fill('#compose [name="title"]', "Appeal for blood donors")
        page.fill("#compose-body", "Hospitals in both cities are **appealing for "
                                   "blood donors**, state media say.")
        page.wait_for_selector("#compose-preview strong")
        page.evaluate("document.fonts.ready")
        (DOCS / "screenshots").mkdir(exist_ok=True)
        # A phone shows compose first: two and a half screens, to reach the timeline.
        page.screenshot(path=str(DOCS / "screenshots" / f"console-{name}.png"),
                        full_page=name == "phone",
                        clip={"x": 0, "y": 0, "width": viewport["width"],
                              "height": viewport["height"] * (2.5 if name == "phone" else 1)})
        context.close()


def main() -> None:
    only_console = sys.argv[1:] == ["console"]
    with story_server() as (server, api, tokens, ids, redis_url), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        newsroom(api, tokens, redis_url, ids)
        console(browser, server.base_url, tokens.editor)
        if only_console:
            browser.close()
            return
        for name, viewport in (("desktop", {"width": 1200, "height": 1100}),
                               ("phone", {"width": 390, "height": 844})):
            context = browser.new_context(viewport=viewport, is_mobile=name == "phone",
                                          timezone_id="Asia/Damascus")
            page = context.new_page()
            page.goto(f"{server.base_url}/blogs/{SLUG}")
            page.wait_for_selector("#entries article")
            page.screenshot(path=str(DOCS / f"reader-{name}.png"))
            context.close()
        context = browser.new_context(viewport={"width": 1300, "height": 1000})
        page = context.new_page()
        sign = page.goto(f"{server.base_url}/blogs/{SLUG}/replay?at=7")
        assert sign is not None
        page.fill("#token", tokens.editor)
        page.click("#signin button")
        page.wait_for_selector("#timeline li.current")
        page.frame_locator("#frame").locator("h1").wait_for()
        edited = page.locator("#timeline li[data-type=entry-edited] .history-link")
        edited.click()
        page.wait_for_selector("#history .revision")
        page.screenshot(path=str(DOCS / "replay.png"), full_page=True)
        context.close()
        browser.close()


if __name__ == "__main__":
    main()
