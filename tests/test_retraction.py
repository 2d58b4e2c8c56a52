"""Retraction is total (issue 8): once an entry is retracted, or corrected, no public
surface yields its withdrawn words, whichever id or page a reader asks for, from a process
that served the blog all along (live tailer ring, cached pages) or from one started after
(ring loaded from the log). Only the editors' log and replay still hold them.

The words to withdraw are markers in every field a reporter fills (body, title, image url,
alt, caption, credit, embed url); the same markers are asserted present in the editors'
log first, so a test that looked in the wrong place could not pass.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.sse import Message, Stream, messages
from tests.support import Api, Tokens, UvicornThread, app_config, run_async

RETRACTED = ["SECRET-BODY-1", "SECRET-TITLE-1", "SECRET-IMAGE", "SECRET-ALT",
             "SECRET-CAPTION", "SECRET-CREDIT", "SECRET-BODY-2", "SECRET-EMBED"]
CORRECTED = ["OLD-WORDING-3", "OLD-TITLE-3", "OLD-CAPTION-3"]
WITHDRAWN = RETRACTED + CORRECTED
STILL_PUBLIC = ["Still here", "toll of 80", "Corrected caption"]
# The blog's feeds (issue 11), which feed readers and aggregators poll and keep.
FEEDS = ["/blogs/tartus/feed.atom", "/blogs/tartus/feed.json"]


def leaks(text: str) -> list[str]:
    return [marker for marker in WITHDRAWN if marker in text]


@pytest.fixture
def story(server: UvicornThread, api: Api, tokens: Tokens) -> Iterator[dict[str, str]]:
    """Tell a story whose withdrawn words sit in every field; return its entry ids."""
    assert api("POST", "/api/blogs", tokens.editor,
               json={"slug": "tartus", "title": "Tartus"}).status_code == 201

    def post(body: dict[str, object], token: str = tokens.reporter) -> str:
        response = api("POST", "/api/blogs/tartus/entries", token, json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["entry"]["id"])

    ids = {
        "retracted": post({
            "body": "SECRET-BODY-1: a blast at the port", "title": "SECRET-TITLE-1",
            "key_event": True,
            "image": {"url": "https://example.com/SECRET-IMAGE.jpg", "alt": "SECRET-ALT",
                      "caption": "SECRET-CAPTION", "credit": "SECRET-CREDIT"},
        }),
        "embed": post({"body": "SECRET-BODY-2",
                       "embed": {"url": "https://example.com/SECRET-EMBED"}}),
        "corrected": post({
            "body": "A toll of OLD-WORDING-3", "title": "OLD-TITLE-3", "key_event": True,
            "image": {"url": "https://example.com/toll.jpg", "alt": "Toll",
                      "caption": "OLD-CAPTION-3"},
        }),
        "kept": post({"body": "Still here"}),
    }
    yield ids


def withdraw(api: Api, tokens: Tokens, ids: dict[str, str]) -> None:
    def ok(response: httpx.Response) -> None:
        assert response.status_code in (200, 201), response.text

    ok(api("PUT", "/api/blogs/tartus/pinned", tokens.editor,
           json={"entry_id": ids["retracted"]}))
    ok(api("PATCH", f"/api/blogs/tartus/entries/{ids['corrected']}", tokens.editor, json={
        "body": "A toll of 80", "title": "Toll", "key_event": True,
        "image": {"url": "https://example.com/toll.jpg", "alt": "Toll",
                  "caption": "Corrected caption"},
        "note": "the earlier figure was wrong",
    }))
    # The correction's new words are what readers see: "A toll of 80" renders as such.
    for entry in ("retracted", "embed"):
        ok(api("DELETE", f"/api/blogs/tartus/entries/{ids[entry]}", tokens.editor,
               json={"reason": "legal order"}))
    # End on a message every stream carries, so a reader knows its opening is complete.
    ok(api("PUT", "/api/blogs/tartus/facts/deaths", tokens.reporter,
           json={"label": "Deaths", "value": "80", "numeric": 80}))


async def opening(base_url: str, *, last_event_id: str | None = None,
                  query: str | None = None, until: str) -> tuple[str, list[Message]]:
    """The raw text of a stream's first messages, read up to the message with id `until`."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    url = f"{base_url}/blogs/tartus/stream" + (f"?last_event_id={query}" if query else "")
    raw: list[str] = []
    got: list[Message] = []

    async def lines(response: httpx.Response):  # type: ignore[no-untyped-def]
        async for line in response.aiter_lines():
            raw.append(line)
            yield line

    async with httpx.AsyncClient(timeout=10) as client, \
            client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        async for message in messages(lines(response), Stream(200, response.headers)):
            got.append(message)
            if message.id == until:
                break
    return "\n".join(raw), got


def every_public_read(base_url: str, event_ids: list[str], entry_ids: list[str],
                      tokens: Tokens) -> dict[str, str]:
    """Every public path (and every editor path as a non-editor) with every id: name -> text."""
    texts: dict[str, str] = {}
    near = set()
    for event_id in event_ids:
        ms, seq = (int(part) for part in event_id.split("-"))
        near |= {event_id, f"{ms}-{seq + 1}", f"{ms - 1}-0", f"{ms + 1}-0"}
    ids = [*sorted(near), "0-0", "0-1", "garbage", ""]
    with httpx.Client(base_url=base_url, timeout=10) as http:
        gets = ["/api/blogs", "/api/blogs/tartus", "/api/blogs/tartus?limit=1",
                "/blogs/tartus", "/", "/newsroom", "/newsroom/tartus", "/blogs/tartus/replay",
                *FEEDS, "/oembed?url=http://127.0.0.1:8000/blogs/tartus",
                "/blogs/tartus/embed", "/api/blogs/tartus/embed"]
        gets += [f"/api/blogs/tartus?before={e}" for e in entry_ids]
        gets += [f"/api/blogs/tartus?before={e}&limit=1" for e in entry_ids]
        gets += [f"/blogs/tartus?before={e}" for e in entry_ids]
        # Editors' paths, asked anonymously and by a reporter: refused without the words.
        editors = ["/api/blogs/tartus/events", "/api/blogs/tartus/timeline"]
        editors += [f"/api/blogs/tartus/state?at={e}" for e in event_ids]
        editors += [f"/blogs/tartus/replay/frame?at={e}" for e in event_ids]
        editors += [f"/api/blogs/tartus/entries/{e}/history" for e in entry_ids]
        for path in gets:
            response = http.get(path)
            assert response.status_code == 200, (path, response.status_code)
            texts[path] = response.text
        # Each update's own page (issue 10): a withdrawn one answers 410, saying only that.
        for entry_id in entry_ids:
            path = f"/blogs/tartus/entries/{entry_id}"
            response = http.get(path)
            assert response.status_code in (200, 410), (path, response.status_code)
            texts[path] = response.text
        for path in editors:
            for who, token in (("anonymous", None), ("reporter", tokens.reporter)):
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = http.get(path, headers=headers)
                assert response.status_code in (401, 403), (path, who, response.status_code)
                texts[f"{who} {path}"] = response.text
        # Writes as a reporter on the withdrawn entries: their refusals must not quote them.
        for entry_id in entry_ids:
            for method in ("PATCH", "DELETE"):
                response = http.request(
                    method, f"/api/blogs/tartus/entries/{entry_id}",
                    headers={"Authorization": f"Bearer {tokens.other_reporter}"},
                    json={"body": "x"} if method == "PATCH" else {"reason": "x"})
                assert response.status_code >= 400
                texts[f"{method} {entry_id}"] = response.text

    last = event_ids[-1]

    async def streams() -> None:
        async def one(name: str, **kwargs: str | None) -> None:
            text, got = await opening(base_url, until=last, **kwargs)
            assert got and got[-1].id == last, name
            texts[name] = text

        # (A reader already at the last id is sent nothing: there is nothing to check.)
        resumable = [i for i in ids if i and i != last]
        jobs = [one("stream"), *(one(f"stream Last-Event-ID {i}", last_event_id=i)
                                 for i in resumable)]
        jobs += [one(f"stream ?last_event_id={i}", query=i) for i in resumable]
        for start in range(0, len(jobs), 20):
            await asyncio.gather(*jobs[start:start + 20])

    run_async(streams())
    return texts


def test_no_public_surface_yields_withdrawn_words(server: UvicornThread, api: Api,
                                                  tokens: Tokens, story: dict[str, str],
                                                  redis_url: str) -> None:
    # A reader was there all along: the tailer's ring holds the words as they went out,
    # and the pages were cached with them.
    before = run_async(opening(server.base_url, until=_last_id(api, tokens)))[0]
    assert "SECRET-BODY-1" in before and "OLD-WORDING-3" in before
    for path in ("/blogs/tartus", "/api/blogs/tartus", *FEEDS):
        assert "SECRET-BODY-1" in api("GET", path).text

    withdraw(api, tokens, story)

    log = api("GET", "/api/blogs/tartus/events?limit=1000", tokens.editor).json()["events"]
    event_ids = [event["id"] for event in log]
    entry_ids = list(story.values())
    # The editors' log keeps every word: the markers are real, and where they should be.
    assert leaks(str(log)) == WITHDRAWN
    frame = api("GET", f"/blogs/tartus/replay/frame?at={event_ids[1]}", tokens.editor).text
    assert "SECRET-BODY-1" in frame

    later = UvicornThread(app_config(redis_url))  # a process that never saw the words
    with later:
        for name, base_url in (("serving all along", server.base_url),
                               ("started after", later.base_url)):
            texts = every_public_read(base_url, event_ids, entry_ids, tokens)
            leaked = {path: leaks(text) for path, text in texts.items() if leaks(text)}
            assert leaked == {}, name
            for path in ("/blogs/tartus", *FEEDS):
                assert all(words in texts[path] for words in STILL_PUBLIC), (name, path)
            resumed = texts[f"stream Last-Event-ID {event_ids[1]}"]
            assert re.search(r"event: entry-retracted", resumed), name
    print(f"{len(texts)} reads per process, {len(event_ids)} event ids, "
          f"{len(WITHDRAWN)} withdrawn markers: none leaked")


def _last_id(api: Api, tokens: Tokens) -> str:
    events = api("GET", "/api/blogs/tartus/events?limit=1000", tokens.editor).json()["events"]
    return str(events[-1]["id"])
