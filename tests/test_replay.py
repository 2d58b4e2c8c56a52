"""The editors' replay in headless Chromium: the timeline, the scrubber, playback, permalinks
and revision diffs, checked against GET /api/blogs/{slug}/state?at= at the same events."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from playwright.sync_api import Browser, Page, expect

from liveblog.cli.log import export_line
from liveblog.domain import commands
from liveblog.domain.commands import NewBlog, NewEntry
from tests.story import tell
from tests.support import EDITOR, Api, Log, RedisServer, Tokens, UvicornThread, wait_for_frame


def sign_in(browser: Browser, server: UvicornThread, token: str, query: str = "",
            slug: str = "tartus") -> Page:
    page = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
    page.goto(f"{server.base_url}/blogs/{slug}/replay{query}")
    page.fill("#token", token)
    page.click("#signin button")
    return page


def shown(page: Page) -> dict[str, object]:
    """What the replay's frame shows: headline, status, entry ids, figures, pinned entry."""
    frame = page.frame_locator("#frame")
    return {
        "title": frame.locator("h1").inner_text(),
        "status": (frame.locator("#status").text_content() or "").strip(),
        "entries": frame.locator("#entries article").evaluate_all(
            "els => els.map(e => e.dataset.id)"),
        "facts": frame.locator(".fact-value").all_inner_texts(),
        "pinned": frame.locator("#pinned-body article").evaluate_all(
            "els => els.map(e => e.dataset.id)"),
    }


def expected(api: Api, tokens: Tokens, at: str) -> dict[str, object]:
    state = api("GET", "/api/blogs/tartus/state", tokens.editor,
                params={"at": at, "limit": 100}).json()
    return {
        "title": state["title"],
        "status": "Live" if state["status"] == "live" else "Ended",
        "entries": [e["id"] for e in state["entries"]],
        "facts": [f["value"] for f in state["facts"]],
        "pinned": [state["pinned_entry_id"]] if state["pinned_entry_id"] else [],
    }


def story(api: Api, tokens: Tokens) -> tuple[list[str], list[dict[str, object]]]:
    ids = tell(api, tokens)
    api("DELETE", f"/api/blogs/tartus/entries/{ids[10]}", tokens.editor,
        json={"reason": "quote not confirmed"})
    api("PATCH", "/api/blogs/tartus", tokens.editor, json={"status": "ended"})
    events = api("GET", "/api/blogs/tartus/events", tokens.editor).json()["events"]
    return ids, events


def test_every_moment_shows_what_the_state_api_says(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens, blog: str) -> None:
    ids, events = story(api, tokens)
    page = sign_in(browser, server, tokens.editor)
    expect(page.locator("#timeline li")).to_have_count(len(events))
    wait_for_frame(page, events[-1]["id"])  # opens at the latest moment
    assert shown(page) == expected(api, tokens, events[-1]["id"])
    assert shown(page)["status"] == "Ended"

    for event in (events[0], events[4], events[9], events[-2]):
        page.locator(f"#event-{event['id']} button").first.click()
        wait_for_frame(page, event["id"])
        assert shown(page) == expected(api, tokens, event["id"])
        assert page.url.endswith(f"?at={event['id']}")
        expect(page.locator("#moment")).to_contain_text(f"v{event['version']} ")

    # The scrubber: drag to version 6.
    page.eval_on_selector("#scrubber",
                          "el => { el.value = 6; el.dispatchEvent(new Event('input')); }")
    wait_for_frame(page, events[5]["id"])
    assert shown(page) == expected(api, tokens, events[5]["id"])

    # "What did the page say at that time?": the last event at or before it.
    moment = events[10]["at"][:23]  # to the millisecond, as the input takes it
    page.fill("#goto", moment)
    page.dispatch_event("#goto", "change")
    wait_for_frame(page, events[10]["id"])
    assert shown(page) == expected(api, tokens, events[10]["id"])

    # A permalink to a moment opens there.
    again = sign_in(browser, server, tokens.editor, f"?at={events[7]['id']}")
    wait_for_frame(again, events[7]["id"])
    assert shown(again) == expected(api, tokens, events[7]["id"])
    # A retracted entry is gone now, but the replay shows it where readers saw it.
    posted = next(e for e in events
                  if e["type"] == "entry-posted" and e["data"]["entry_id"] == ids[10])
    again.locator(f"#event-{posted['id']} button").first.click()
    wait_for_frame(again, posted["id"])
    assert shown(again)["entries"][0] == ids[10]
    assert ids[10] not in expected(api, tokens, events[-1]["id"])["entries"]


def test_play_from_the_start_as_fast_as_possible(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens, blog: str) -> None:
    _, events = story(api, tokens)
    page = sign_in(browser, server, tokens.editor, f"?at={events[0]['id']}")
    wait_for_frame(page, events[0]["id"])
    page.select_option("#speed", "0")
    page.click("#play")
    expect(page.locator("#play")).to_have_text("Pause")
    wait_for_frame(page, events[-1]["id"])
    expect(page.locator("#play")).to_have_text("Play")
    assert shown(page) == expected(api, tokens, events[-1]["id"])


def test_filters_and_every_version_of_an_entry(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens, blog: str) -> None:
    ids, events = story(api, tokens)
    page = sign_in(browser, server, tokens.editor)
    expect(page.locator("#timeline li")).to_have_count(len(events))
    page.select_option("#filter-kind", "entry-posted")
    expect(page.locator("#timeline li:visible")).to_have_count(11)
    page.select_option("#filter-kind", "")
    page.select_option("#filter-actor", "omar")
    expect(page.locator("#timeline li:visible")).to_have_count(
        sum(1 for e in events if e["actor"] == "omar"))
    page.select_option("#filter-actor", "")

    edited = next(e for e in events if e["type"] == "entry-edited")
    page.locator(f"#event-{edited['id']} .history-link").click()
    history = page.locator("#history")
    expect(history.locator(".revision")).to_have_count(2)
    expect(history.locator("#revision-2 .meta")).to_contain_text(
        "note: Correction: there were two attackers")
    expect(history.locator("#revision-2 ins").first).to_contain_text("suicide bomber")

    retracted = next(e for e in events if e["type"] == "entry-retracted")
    page.locator(f"#event-{retracted['id']} .history-link").click()
    expect(history.locator(".retraction")).to_contain_text("quote not confirmed")
    expect(history.locator("#revision-1")).to_contain_text("Kremlin spokesman")
    assert retracted["data"]["entry_id"] == ids[10]


def test_only_editors_may_replay(browser: Browser, server: UvicornThread, api: Api,
                                 tokens: Tokens, blog: str) -> None:
    page = sign_in(browser, server, tokens.reporter)
    expect(page.locator("#signin .error")).to_contain_text("only editors")
    expect(page.locator("#player")).to_be_hidden()
    frame = api("GET", "/blogs/tartus/replay/frame", tokens.reporter, params={"at": 1})
    assert frame.status_code == 403
    history = api("GET", "/api/blogs/tartus/entries/nope/history", tokens.editor)
    assert history.status_code == 404


def test_the_title_stays_in_view_and_the_frame_fits_the_window(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens, blog: str) -> None:
    """Issue 10: opening at the latest moment scrolled the window down to the timeline's
    last row (cutting off the title), and the frame was taller than the window."""
    _, events = story(api, tokens)
    page = sign_in(browser, server, tokens.editor)
    wait_for_frame(page, events[-1]["id"])
    current = page.locator("#timeline li.current")
    expect(current).to_have_id(f"event-{events[-1]['id']}")
    assert page.evaluate("window.scrollY") == 0
    title = page.locator("#replay h1").bounding_box()
    assert title is not None and title["y"] >= 0 and title["y"] + title["height"] <= 900
    # The timeline itself scrolled to the moment shown.
    assert page.evaluate("""() => {
        const list = document.getElementById("timeline").getBoundingClientRect();
        const row = document.querySelector("#timeline li.current").getBoundingClientRect();
        return row.top >= list.top && row.bottom <= list.bottom + 1; }""")
    # Scrolled down to it, the frame fits the window, on a laptop's as well (it was 40rem).
    for height in (900, 560):
        page.set_viewport_size({"width": 1300, "height": height})
        frame = page.locator("#frame").bounding_box()
        assert frame is not None and 240 <= frame["height"] <= height, (height, frame)


def test_the_frame_says_how_long_ago_as_of_the_replayed_moment(
        browser: Browser, server: UvicornThread, tokens: Tokens, redis_server: RedisServer,
        tmp_path: Path) -> None:
    """Issue 10: relative times in the frame are as readers read them then, not now."""
    opened_at = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
    log = Log()
    log.append(EDITOR, commands.open_blog(None, EDITOR, NewBlog(slug="jableh", title="J")))
    for n in range(3):
        assert log.blog is not None
        log.append(EDITOR, commands.post_entry(log.blog, EDITOR, NewEntry(
            body=f"Update {n}", title=f"Headline {n}"), f"e{n}"))
    # e0 at the opening, e1 ten minutes later, e2 an hour after that.
    offsets = [0, 0, 10, 70]
    dump = tmp_path / "jableh.jsonl"
    dump.write_bytes(b"\n".join(
        export_line(msgspec.structs.replace(
            rec, id=f"{int((opened_at + timedelta(minutes=m)).timestamp() * 1000)}-{n}",
            at=opened_at + timedelta(minutes=m)))
        for n, (rec, m) in enumerate(zip(log.events, offsets, strict=True))))
    imported = subprocess.run(
        [sys.executable, "-m", "liveblog", "import", str(dump)], capture_output=True,
        text=True, timeout=60, env={**os.environ, "LIVEBLOG_REDIS_URL": redis_server.url})
    assert imported.returncode == 0, imported.stderr

    def ago(page: Page) -> dict[str, str]:
        return dict(page.frame_locator("#frame").locator("#entries article").evaluate_all(
            "els => els.map(e => [e.dataset.id, e.querySelector('.rel').textContent])"))

    # Right after e1: e0 was posted 10 minutes before, although that is 3 hours ago now.
    page = sign_in(browser, server, tokens.editor, "?at=3", slug="jableh")
    expect(page.locator("#moment")).to_contain_text("v3 ")
    expect(page.frame_locator("#frame").locator("#entries article")).to_have_count(2)
    assert ago(page) == {"e1": "this minute", "e0": "10 minutes ago"}
    # Right after e2, an hour later.
    page.locator("#timeline li").last.locator("button").first.click()
    expect(page.locator("#moment")).to_contain_text("v4 ")
    expect(page.frame_locator("#frame").locator("#entries article")).to_have_count(3)
    assert ago(page) == {"e2": "this minute", "e1": "1 hour ago", "e0": "1 hour ago"}


def test_the_replay_signs_in_through_the_consoles_shared_module(
        browser: Browser, server: UvicornThread, api: Api, tokens: Tokens, blog: str) -> None:
    page = browser.new_context().new_page()
    scripts: list[str] = []
    page.on("request", lambda r: scripts.append(r.url.removeprefix(server.base_url))
            if r.resource_type == "script" else None)
    page.goto(f"{server.base_url}/blogs/tartus/replay")
    page.fill("#token", "lb_wrong")
    page.click("#signin button")
    # The API's problem, in the shared module's words, next to the form.
    expect(page.locator("#signin .error")).to_contain_text("unknown or has been revoked")
    page.fill("#token", tokens.editor)
    page.click("#signin button")
    expect(page.locator("#player")).to_be_visible()
    expect(page.locator("#signin")).to_be_hidden()
    assert scripts == ["/static/replay.js", "/static/console/api.js"]
    # Neither page script speaks HTTP itself any more: the shared module does.
    for name in ("replay.js", "newsroom.js"):
        source = api("GET", f"/static/{name}").text
        assert 'from "/static/console/api.js"' in source and "fetch(" not in source, name
