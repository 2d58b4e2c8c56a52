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
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

sys.path.insert(0, str(Path(__file__).parent.parent))

from liveblog.story import SLUG
from tests.story import story_server
from tests.support import ARGS, CHROMIUM

DOCS = Path(__file__).parent.parent / "docs"


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
        page.fill('#compose [name="title"]', "Appeal for blood donors")
        page.fill("#compose-body", "Hospitals in both cities are **appealing for "
                                   "blood donors**, state media say.")
        page.wait_for_selector("#compose-preview strong")
        page.evaluate("document.fonts.ready")
        (DOCS / "screenshots").mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / "screenshots" / f"console-{name}.png"))
        context.close()


def main() -> None:
    only_console = sys.argv[1:] == ["console"]
    with story_server() as (server, _api, tokens, _ids), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
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
