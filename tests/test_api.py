"""Every API route, its success and its errors, over HTTP to a real uvicorn on a real Redis."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
import redis
from openapi_spec_validator import validate

from liveblog.domain.commands import MAX_FACTS
from liveblog.domain.events import Actor, EntryPosted, FactUpdated
from liveblog.domain.views import FACT_HISTORY_POINTS
from liveblog.web.api import OPERATIONS
from tests.support import Api, Tokens, UvicornThread, assert_problem, open_store

pytestmark = pytest.mark.backends  # also on a Redis Cluster

@pytest.fixture
def log_length(raw_redis: redis.Redis) -> Callable[[str], int]:
    def length(slug: str) -> int:
        return int(raw_redis.xlen(f"liveblog:{{{slug}}}:log"))

    return length


def post(api: Api, token: str, body: str = "Blasts at the Tartus bus station", **fields: object):  # type: ignore[no-untyped-def]
    response = api("POST", "/api/blogs/tartus/entries", token, json={"body": body, **fields})
    assert response.status_code == 201, response.text
    return response.json()


# -- blogs -----------------------------------------------------------------------------------


def test_open_list_get_and_update_a_blog(api: Api, tokens: Tokens) -> None:
    created = api("POST", "/api/blogs", tokens.editor,
                  json={"slug": "tartus", "title": "Blasts in Tartus and Jableh",
                        "description": "Live coverage"})
    assert created.status_code == 201
    assert created.headers["location"] == "/api/blogs/tartus"
    blog = created.json()
    assert (blog["slug"], blog["status"], blog["version"]) == ("tartus", "live", 1)
    assert blog["last_event_id"] and blog["entries"] == [] and blog["facts"] == []

    listed = api("GET", "/api/blogs").json()["blogs"]
    assert [(b["slug"], b["title"], b["status"], b["version"]) for b in listed] == \
        [("tartus", "Blasts in Tartus and Jableh", "live", 1)]
    assert listed[0]["updated_at"]

    updated = api("PATCH", "/api/blogs/tartus", tokens.editor,
                  json={"title": "Bombings in Tartus and Jableh", "status": "ended"})
    assert updated.status_code == 200
    assert (updated.json()["title"], updated.json()["status"]) == \
        ("Bombings in Tartus and Jableh", "ended")
    assert updated.json()["ended_at"] is not None
    listed = api("GET", "/api/blogs").json()["blogs"]
    assert (listed[0]["title"], listed[0]["status"], listed[0]["version"]) == \
        ("Bombings in Tartus and Jableh", "ended", 2)


def test_blog_creation_errors(api: Api, tokens: Tokens, blog: str,
                              log_length: Callable[[str], int]) -> None:
    good = {"slug": "jableh", "title": "Jableh"}
    assert_problem(api("POST", "/api/blogs", json=good), 401)
    assert "Bearer" in api("POST", "/api/blogs", json=good).headers["www-authenticate"]
    assert_problem(api("POST", "/api/blogs", "no-such-token", json=good), 401)
    assert_problem(api("POST", "/api/blogs", tokens.reporter, json=good), 403)
    assert_problem(api("POST", "/api/blogs", tokens.editor,
                       json={"slug": "tartus", "title": "Again"}), 409)
    assert_problem(api("POST", "/api/blogs", tokens.editor,
                       json={"slug": "Not A Slug!", "title": "", "colour": "red"}), 422,
                   fields={"slug", "title", "colour"})
    assert_problem(api("POST", "/api/blogs", tokens.editor, json={"title": "x"}), 422,
                   fields={"slug"})
    assert_problem(api("POST", "/api/blogs", tokens.editor, json=["a", "list"]), 422)
    assert_problem(api("POST", "/api/blogs", tokens.editor, content=b"{not json",
                       headers={"content-type": "application/json"}), 400)
    assert_problem(api("POST", "/api/blogs", tokens.editor, content=b"slug=x",
                       headers={"content-type": "application/x-www-form-urlencoded"}), 415)
    assert_problem(api("POST", "/api/blogs", tokens.editor,
                       json={"slug": "big", "title": "x" * 300_000}), 413)
    def chunks():  # no Content-Length: the limit is enforced while reading
        yield b'{"slug": "big", "title": "'
        for _ in range(300):
            yield b"x" * 1000
        yield b'"}'

    assert_problem(api("POST", "/api/blogs", tokens.editor, content=chunks(),
                       headers={"content-type": "application/json"}), 413)
    assert log_length("jableh") == 0 and log_length("tartus") == 1 and log_length("big") == 0
    assert [b["slug"] for b in api("GET", "/api/blogs").json()["blogs"]] == ["tartus"]


def test_update_blog_errors(api: Api, tokens: Tokens, blog: str) -> None:
    assert_problem(api("PATCH", "/api/blogs/tartus", tokens.reporter, json={"title": "x"}), 403)
    assert_problem(api("PATCH", "/api/blogs/nowhere", tokens.editor, json={"title": "x"}), 404)
    assert_problem(api("PATCH", "/api/blogs/tartus", tokens.editor,
                       json={"status": "paused", "title": 3}), 422, fields={"status", "title"})


def test_unknown_blog_and_unknown_route_are_problem_404s(api: Api) -> None:
    assert_problem(api("GET", "/api/blogs/nowhere"), 404)
    assert_problem(api("GET", "/api/blogs/NOT_A_SLUG"), 404)
    assert_problem(api("GET", "/no/such/route"), 404)
    assert_problem(api("DELETE", "/api/blogs"), 405)


# -- entries ---------------------------------------------------------------------------------


def test_post_an_entry_with_image_and_embed(api: Api, tokens: Tokens, blog: str) -> None:
    result = post(api, tokens.reporter, "**Seven** blasts: four in Jableh, three in Tartus",
                  title="Seven blasts", key_event=True,
                  image={"url": "https://img.example/jableh.jpg", "alt": "Smoke over Jableh",
                         "caption": "Jableh, Monday", "credit": "Stringer / AFP"},
                  embed={"url": "https://twitter.com/x/status/1"})
    entry = result["entry"]
    assert result["version"] == 2 and result["event_id"]
    assert entry["author"] == "rania" and entry["revision"] == 1
    assert entry["html"] == "<p><strong>Seven</strong> blasts: four in Jableh, three in Tartus</p>"
    assert entry["image"]["credit"] == "Stringer / AFP"
    state = api("GET", "/api/blogs/tartus").json()
    # Read-your-writes; the newsroom's answer adds where the entry stands (issue 10).
    assert {name: entry[name] for name in state["entries"][0]} == state["entries"][0]
    assert (entry["state"], entry["publish_at"]) == ("published", None)
    assert state["key_events"] == [{"id": entry["id"], "title": "Seven blasts",
                                    "posted_at": entry["posted_at"],
                                    "posted_version": entry["posted_version"]}]


def test_post_errors_append_nothing(api: Api, tokens: Tokens, blog: str,
                                    log_length: Callable[[str], int]) -> None:
    path = "/api/blogs/tartus/entries"
    assert_problem(api("POST", path, json={"body": "x"}), 401)
    assert_problem(api("POST", "/api/blogs/nowhere/entries", tokens.reporter,
                       json={"body": "x"}), 404)
    problem = assert_problem(
        api("POST", path, tokens.reporter,
            json={"body": "   ", "key_event": "yes", "image": {"url": "ftp://x", "alt": "a"},
                  "embed": {"url": "javascript:alert(1)"}}),
        422, fields={"key_event", "image.url", "embed.url"})
    messages = {e["field"]: e["message"] for e in problem["errors"]}
    assert messages["embed.url"] == "must be: an http(s):// URL"
    assert messages["image.url"] == "must be: an http(s):// URL or a path on this site (/...)"
    assert_problem(api("POST", path, tokens.reporter, json={"body": "  \n "}), 422,
                   fields={"body"})
    assert_problem(api("POST", path, tokens.reporter,
                       json={"body": "x", "image": {"url": "https://i.example/a.jpg"}}), 422,
                   fields={"image.alt"})
    api("PATCH", "/api/blogs/tartus", tokens.editor, json={"status": "ended"})
    assert_problem(api("POST", path, tokens.editor, json={"body": "after the end"}), 409)
    assert log_length("tartus") == 2


def test_idempotency_key_returns_the_original_result(api: Api, tokens: Tokens, blog: str,
                                                     log_length: Callable[[str], int]) -> None:
    headers = {"Idempotency-Key": "c0ffee-1"}
    path = "/api/blogs/tartus/entries"
    first = api("POST", path, tokens.reporter, json={"body": "Death toll 80"}, headers=headers)
    again = api("POST", path, tokens.reporter, json={"body": "Death toll 80"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert log_length("tartus") == 2
    # A retry after the entry was edited still gets the original result, and appends nothing.
    entry_id = first.json()["entry"]["id"]
    api("PATCH", f"{path}/{entry_id}", tokens.reporter, json={"body": "Death toll 81"})
    later = api("POST", path, tokens.reporter, json={"body": "Death toll 80"}, headers=headers)
    assert later.json() == first.json() and log_length("tartus") == 3
    assert_problem(api("POST", path, tokens.reporter, json={"body": "different"},
                       headers=headers), 422)
    other = api("POST", path, tokens.other_reporter, json={"body": "Death toll 80"},
                headers=headers)
    assert other.status_code == 201 and other.json()["event_id"] != first.json()["event_id"]


def test_concurrent_posts_with_one_idempotency_key_make_one_event_and_one_answer(
        api: Api, tokens: Tokens, blog: str, server: UvicornThread, redis_url: str,
        log_length: Callable[[str], int]) -> None:
    """A client retrying impatiently, through two processes: 24 POSTs with the same key at
    the same moment append one entry, and every one of them gets the same answer."""
    from tests.support import app_config

    with UvicornThread(app_config(redis_url)) as other:
        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as first, \
                    httpx.AsyncClient(base_url=other.base_url, timeout=30) as second:
                return list(await asyncio.gather(*(
                    (first, second)[n % 2].post(
                        "/api/blogs/tartus/entries", json={"body": "Death toll 80"},
                        headers={"Authorization": f"Bearer {tokens.reporter}",
                                 "Idempotency-Key": "toll-80"})
                    for n in range(24))))

        answers = asyncio.run(burst())
    assert [a.status_code for a in answers] == [201] * 24
    assert len({a.content for a in answers}) == 1
    assert len({a.headers["location"] for a in answers}) == 1
    # One of them made it; the rest say they repeat it.
    assert sum("idempotent-replayed" not in a.headers for a in answers) == 1
    assert log_length("tartus") == 2


def test_a_key_whose_event_the_log_lost_is_a_404_not_a_500(
        api: Api, tokens: Tokens, blog: str, raw_redis: redis.Redis) -> None:
    """The log was restored from a backup older than the key: the key's event is gone."""
    headers = {"Idempotency-Key": "lost-1"}
    path = "/api/blogs/tartus/entries"
    assert api("POST", path, tokens.reporter, json={"body": "x"}, headers=headers).status_code \
        == 201
    raw_redis.delete("liveblog:{tartus}:log", "liveblog:{tartus}:meta")
    api("POST", "/api/blogs", tokens.editor, json={"slug": "tartus", "title": "Restored"})
    problem = assert_problem(api("POST", path, tokens.reporter, json={"body": "x"},
                                 headers=headers), 404)
    assert "no event" in problem["detail"]


def test_edit_by_author_and_editor_with_if_match(api: Api, tokens: Tokens, blog: str) -> None:
    entry = post(api, tokens.reporter, "At least 80 dead")["entry"]
    path = f"/api/blogs/tartus/entries/{entry['id']}"
    edited = api("PATCH", path, tokens.reporter, json={"body": "At least 100 dead",
                                                       "note": "new toll"},
                 headers={"If-Match": '"1"'})
    assert edited.status_code == 200 and edited.headers["etag"] == '"2"'
    assert edited.json()["entry"]["revision"] == 2
    assert edited.json()["entry"]["html"] == "<p>At least 100 dead</p>"
    assert_problem(api("PATCH", path, tokens.editor, json={"body": "stale"},
                       headers={"If-Match": '"1"'}), 412)
    by_editor = api("PATCH", path, tokens.editor, json={"title": "Toll rises"},
                    headers={"If-Match": '"2"'})
    assert by_editor.status_code == 200
    assert by_editor.json()["entry"]["author"] == "rania"  # the author stays the author
    unchanged = api("PATCH", path, tokens.editor, json={"title": "Toll rises"})
    assert unchanged.status_code == 200 and unchanged.json()["event_id"] is None


def test_edit_errors(api: Api, tokens: Tokens, blog: str,
                     log_length: Callable[[str], int]) -> None:
    entry = post(api, tokens.reporter)["entry"]
    path = f"/api/blogs/tartus/entries/{entry['id']}"
    before = log_length("tartus")
    assert_problem(api("PATCH", path, tokens.other_reporter, json={"body": "mine"}), 403)
    assert_problem(api("PATCH", "/api/blogs/tartus/entries/nope", tokens.editor,
                       json={"body": "x"}), 404)
    assert_problem(api("PATCH", path, tokens.editor, json={"body": "x"},
                       headers={"If-Match": "yesterday"}), 400)
    assert_problem(api("PATCH", path, tokens.editor, json={"note": "only a note"}), 422)
    assert_problem(api("PATCH", path, tokens.editor, json={"body": 5}), 422, fields={"body"})
    assert log_length("tartus") == before
    api("DELETE", path, tokens.editor)
    assert_problem(api("PATCH", path, tokens.editor, json={"body": "x"}), 410)


def test_a_correction_is_shown_to_readers_oldest_first(
        api: Api, tokens: Tokens, blog: str, log_length: Callable[[str], int]) -> None:
    entry = post(api, tokens.reporter, "At least 80 dead")["entry"]
    assert entry["corrections"] == []
    path = f"/api/blogs/tartus/entries/{entry['id']}"
    # A correction alone is an edit: it appends one event and bumps the revision.
    before = log_length("tartus")
    alone = api("PATCH", path, tokens.reporter,
                json={"correction": "  An earlier version said 60.  "},
                headers={"If-Match": '"1"'})
    assert alone.status_code == 200, alone.text
    assert alone.headers["etag"] == '"2"' and alone.json()["event_id"] is not None
    assert log_length("tartus") == before + 1
    first = alone.json()["entry"]["corrections"]
    assert [c["text"] for c in first] == ["An earlier version said 60."]
    assert alone.json()["entry"]["body"] == "At least 80 dead"
    # Alongside a change of the body: still one edit, one event.
    both = api("PATCH", path, tokens.editor, json={
        "body": "At least 100 dead", "note": "SOHR", "correction": "The toll was wrong."})
    assert both.status_code == 200 and both.json()["entry"]["revision"] == 3
    assert log_length("tartus") == before + 2
    state = api("GET", "/api/blogs/tartus").json()
    shown = state["entries"][0]
    assert shown["body"] == "At least 100 dead"
    assert [c["text"] for c in shown["corrections"]] == [
        "An earlier version said 60.", "The toll was wrong."]
    assert shown["corrections"][0]["at"] == first[0]["at"]
    assert shown["corrections"][0]["at"] <= shown["corrections"][1]["at"]
    event = api("GET", "/api/blogs/tartus/events", tokens.editor).json()["events"][-1]
    assert event["type"] == "entry-edited" and event["data"]["correction"] == "The toll was wrong."
    # Bad corrections: 422 naming the field, and nothing appended.
    for bad in ("", "   \n ", "x" * 1001, 5, None):
        assert_problem(api("PATCH", path, tokens.editor, json={"correction": bad}), 422,
                       fields={"correction"})
    assert_problem(api("PATCH", path, tokens.editor,
                       json={"body": "At least 120 dead", "correction": " "}), 422,
                   fields={"correction"})
    assert log_length("tartus") == before + 2
    assert api("GET", "/api/blogs/tartus").json()["entries"][0] == shown
    # 1000 characters is the most.
    longest = api("PATCH", path, tokens.editor, json={"correction": "y" * 1000})
    assert longest.status_code == 200
    assert longest.json()["entry"]["corrections"][-1]["text"] == "y" * 1000


def test_retraction_leaves_the_public_state_and_stays_in_the_log(
        api: Api, tokens: Tokens, blog: str) -> None:
    entry = post(api, tokens.reporter, "Claim of responsibility (unverified)")["entry"]
    path = f"/api/blogs/tartus/entries/{entry['id']}"
    assert_problem(api("DELETE", path, tokens.other_reporter), 403)
    retracted = api("DELETE", path, tokens.reporter, json={"reason": "not confirmed"})
    assert retracted.status_code == 200
    assert retracted.json()["entry_id"] == entry["id"] and retracted.json()["version"] == 3
    state = api("GET", "/api/blogs/tartus").json()
    assert state["entries"] == [] and state["total_entries"] == 0
    assert_problem(api("DELETE", path, tokens.editor), 410)
    log = api("GET", "/api/blogs/tartus/events", tokens.editor).json()["events"]
    assert [e["type"] for e in log] == ["blog-opened", "entry-posted", "entry-retracted"]
    assert log[1]["data"]["body"] == "Claim of responsibility (unverified)"
    assert log[2]["data"]["reason"] == "not confirmed" and log[2]["actor"] == "rania"


def test_retraction_without_a_body(api: Api, tokens: Tokens, blog: str) -> None:
    entry = post(api, tokens.reporter)["entry"]
    response = api("DELETE", f"/api/blogs/tartus/entries/{entry['id']}", tokens.editor)
    assert response.status_code == 200


# -- pin and facts ---------------------------------------------------------------------------


def test_pin_and_unpin(api: Api, tokens: Tokens, blog: str) -> None:
    entry = post(api, tokens.reporter, "What we know so far")["entry"]
    pinned = api("PUT", "/api/blogs/tartus/pinned", tokens.editor, json={"entry_id": entry["id"]})
    assert pinned.status_code == 200 and pinned.json()["pinned_entry_id"] == entry["id"]
    state = api("GET", "/api/blogs/tartus").json()
    assert state["pinned_entry_id"] == entry["id"] and state["pinned"]["id"] == entry["id"]
    assert_problem(api("PUT", "/api/blogs/tartus/pinned", tokens.reporter,
                       json={"entry_id": None}), 403)
    assert_problem(api("PUT", "/api/blogs/tartus/pinned", tokens.editor,
                       json={"entry_id": "nope"}), 404)
    assert_problem(api("PUT", "/api/blogs/tartus/pinned", tokens.editor, json={}), 422,
                   fields={"entry_id"})
    unpinned = api("PUT", "/api/blogs/tartus/pinned", tokens.editor, json={"entry_id": None})
    assert unpinned.json()["pinned_entry_id"] is None
    assert api("GET", "/api/blogs/tartus").json()["pinned"] is None


def test_a_figure_keeps_its_history(api: Api, tokens: Tokens, blog: str) -> None:
    path = "/api/blogs/tartus/facts/deaths"
    first = api("PUT", path, tokens.reporter,
                json={"label": "Deaths", "value": "at least 80", "numeric": 80, "source": "AP"})
    assert first.status_code == 200
    second = api("PUT", path, tokens.editor,
                 json={"label": "Deaths", "value": "121", "numeric": 121, "source": "SOHR"})
    fact = second.json()["fact"]
    assert (fact["value"], fact["numeric"], fact["source"]) == ("121", 121, "SOHR")
    assert [(p["value"], p["source"]) for p in fact["history"]] == \
        [("at least 80", "AP"), ("121", "SOHR")]
    assert api("GET", "/api/blogs/tartus").json()["facts"] == [fact]
    assert_problem(api("PUT", "/api/blogs/tartus/facts/Death%20Toll", tokens.reporter,
                       json={"label": "x", "value": "1"}), 422, fields={"key"})
    assert_problem(api("PUT", path, tokens.reporter, json={"value": "1", "numeric": "many"}),
                   422, fields={"label", "numeric"})
    assert_problem(api("PUT", path, json={"label": "x", "value": "1"}), 401)


def test_a_path_that_cannot_name_a_thing_is_404_but_a_key_to_create_is_422(
        api: Api, tokens: Tokens, blog: str) -> None:
    """Review finding 15: one rule for path parameters. A path names something that exists,
    so a malformed name is one nothing has: 404, as for a well-formed name nothing has.
    Only PUT .../facts/{key} names what it creates: a malformed key there is input (422)."""
    entry = api("POST", "/api/blogs/tartus/entries", tokens.reporter, json={"body": "x"})
    assert entry.status_code == 201
    api("PUT", "/api/blogs/tartus/facts/deaths", tokens.reporter,
        json={"label": "Deaths", "value": "1"})
    for method, path in (
            ("GET", "/api/blogs/Not%20A%20Slug"),
            ("GET", "/api/blogs/Not%20A%20Slug/facts/deaths/history"),
            ("PATCH", "/api/blogs/tartus/entries/a%20b"),
            ("DELETE", "/api/blogs/tartus/entries/a%20b"),
            ("GET", "/api/blogs/tartus/entries/a%20b/history"),
            ("GET", "/api/blogs/tartus/facts/Death%20Toll/history"),
            ("GET", "/api/blogs/tartus/facts/nothing/history")):
        body = {"body": "y"} if method == "PATCH" else None
        assert_problem(api(method, path, tokens.editor, json=body), 404)
    assert_problem(api("PUT", "/api/blogs/tartus/facts/Death%20Toll", tokens.reporter,
                       json={"label": "x", "value": "1"}), 422, fields={"key"})


def test_a_figure_updated_3000_times_travels_with_its_last_points_only(
        api: Api, tokens: Tokens, blog: str, server: UvicornThread, redis_url: str) -> None:
    """Every fact-updated message, snapshot and state carried the figure's whole history:
    280 KB per message after 3,000 updates. Now the last FACT_HISTORY_POINTS and a count;
    the history endpoint pages through all of it."""
    updates = 3000

    async def append_updates() -> list[str]:
        store = open_store(redis_url)
        ids = []
        for n in range(updates):
            appended = await store.append(
                "tartus", FactUpdated(key="deaths", label="Deaths", value=f"at least {n}",
                                      numeric=n, source="Ministry of Health"),
                Actor("rania", "reporter"), datetime.now(UTC))
            ids.append(appended.recorded.id)
        await store.close()
        return ids

    ids = asyncio.run(append_updates())

    async def raw_messages(last_event_id: str | None, count: int) -> list[bytes]:
        headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
        found = []
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client, \
                client.stream("GET", "/blogs/tartus/stream", headers=headers) as response:
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    found.append(line.encode())
                    if len(found) == count:
                        return found
        raise AssertionError("the stream ended early")

    [update] = asyncio.run(raw_messages(ids[-2], 1))
    [snapshot] = asyncio.run(raw_messages(None, 1))
    state = api("GET", "/api/blogs/tartus")
    sizes = {"message": len(update), "snapshot": len(snapshot), "state": len(state.content)}
    print(f"after {updates} updates of one figure, bytes: {sizes}")
    assert max(sizes.values()) < 10_000, sizes
    fact = state.json()["facts"][0]
    assert fact["history_total"] == updates and len(fact["history"]) == FACT_HISTORY_POINTS
    assert [p["numeric"] for p in fact["history"]] == \
        list(range(updates - FACT_HISTORY_POINTS, updates))

    every: list[float] = []
    start: int | None = 0
    while start is not None:
        page = api("GET", "/api/blogs/tartus/facts/deaths/history",
                   params={"start": start}).json()
        assert page["total"] == updates and page["start"] == start
        every += [p["numeric"] for p in page["points"]]
        start = page["next_start"]
    assert every == list(range(updates))
    short = api("GET", "/api/blogs/tartus/facts/deaths/history",
                params={"start": 2990, "limit": 5}).json()
    assert [p["numeric"] for p in short["points"]] == [2990, 2991, 2992, 2993, 2994]
    assert short["next_start"] == 2995
    assert_problem(api("GET", "/api/blogs/tartus/facts/nothing/history"), 404)
    assert_problem(api("GET", "/api/blogs/tartus/facts/deaths/history",
                       params={"limit": 501}), 422, fields={"limit"})


def test_the_blog_list_reads_a_few_fields_per_blog_not_every_entry(
        api: Api, tokens: Tokens, blog: str, raw_redis: redis.Redis, redis_url: str) -> None:
    """Each entry's revision sat in the blog's meta hash, and the list read whole hashes:
    its Redis reply grew with every entry ever posted."""
    def listed_bytes() -> int:
        def sent() -> int:
            stats = raw_redis.info("stats")
            # A cluster's client asks every node and answers per node: their sum.
            per_node = stats.values() if "total_net_output_bytes" not in stats else [stats]
            return sum(int(node["total_net_output_bytes"]) for node in per_node)
        idle = -sent() + sent()  # what one INFO reply itself adds
        before = sent()
        assert api("GET", "/api/blogs").status_code == 200
        return sent() - before - idle

    small = listed_bytes()

    async def post_entries(count: int) -> None:
        store = open_store(redis_url)
        rania = Actor("rania", "reporter", "id-rania")
        for n in range(count):
            await store.append("tartus", EntryPosted(entry_id=f"e{n}", body="x"), rania,
                               datetime.now(UTC), entry_revision=(f"e{n}", "0", "1"))
        await store.close()

    asyncio.run(post_entries(5000))
    large = listed_bytes()
    print(f"GET /api/blogs, Redis reply bytes: {small} with no entries, {large} with 5,000")
    assert large - small < 100, (small, large)


def test_the_blog_list_counts_the_updates_readers_see(
        api: Api, tokens: Tokens, blog: str, raw_redis: redis.Redis) -> None:
    """Issue 10: the home page shows each blog's number of updates. Drafts, rejections and
    retractions count as readers see them, and only what readers see moves "last update";
    posts appended side by side (a burst) each add one."""
    def listed() -> dict:  # type: ignore[type-arg]
        [row] = [b for b in api("GET", "/api/blogs").json()["blogs"] if b["slug"] == blog]
        return row  # type: ignore[no-any-return]

    assert listed()["entries"] == 0
    first = post(api, tokens.reporter)["entry"]["id"]
    post(api, tokens.reporter, "A second update")
    assert listed()["entries"] == 2
    seen = listed()["updated_at"]
    draft = post(api, tokens.reporter, "Unconfirmed", publish="draft")["entry"]["id"]
    edited = api("PATCH", f"/api/blogs/tartus/entries/{draft}", tokens.reporter,
                 json={"body": "Still unconfirmed"})
    assert edited.status_code == 200, edited.text
    assert (listed()["entries"], listed()["updated_at"]) == (2, seen)  # readers saw nothing
    published = api("POST", f"/api/blogs/tartus/entries/{draft}/publish", tokens.editor)
    assert published.status_code == 200, published.text
    assert listed()["entries"] == 3 and listed()["updated_at"] > seen
    retracted = api("DELETE", f"/api/blogs/tartus/entries/{first}", tokens.editor,
                    json={"reason": "duplicate"})
    assert retracted.status_code == 200, retracted.text
    assert listed()["entries"] == 2

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: post(api, tokens.reporter, f"Burst {n}"), range(16)))
    assert listed()["entries"] == 18 == api("GET", "/api/blogs/tartus").json()["total_entries"]

    # A blog last changed before the listing counted: no number, until a change that knows
    # it exactly (a post alone only adds one, so it waits).
    raw_redis.hdel("liveblog:{tartus}:meta", "entries")
    assert listed()["entries"] is None
    post(api, tokens.reporter, "One more")
    assert listed()["entries"] is None
    fact = api("PUT", "/api/blogs/tartus/facts/deaths", tokens.reporter,
               json={"label": "Deaths", "value": "80"})
    assert fact.status_code == 200, fact.text
    assert listed()["entries"] == 19


def test_the_blog_list_pages_newest_first_and_covers_every_blog_once(
        api: Api, tokens: Tokens, redis_url: str) -> None:
    from datetime import timedelta

    from liveblog.domain.events import BlogOpened

    async def open_blogs() -> list[str]:
        store = open_store(redis_url)
        editor = Actor("ed", "editor", "id-ed")
        base = datetime(2026, 5, 23, 9, 0, tzinfo=UTC)
        slugs = []
        for n in range(31):
            # Some opened in the same millisecond: ties in the list's sorted set.
            at = base + timedelta(seconds=n // 3)
            slug = f"blog-{n:02d}"
            await store.register_blog(slug, at)
            await store.append(slug, BlogOpened(slug=slug, title=f"Blog {n}"), editor, at,
                               expected_version=0,
                               summary={"title": f"Blog {n}", "status": "live",
                                        "opened_at": at.isoformat()})
            slugs.append(slug)
        # Registered, but its blog-opened never landed: never listed.
        await store.register_blog("empty", base + timedelta(seconds=5))
        await store.close()
        return slugs

    slugs = asyncio.run(open_blogs())
    newest_first = sorted(slugs, key=lambda s: (int(s[5:]) // 3, s), reverse=True)
    seen: list[str] = []
    before = None
    while True:
        params = {"limit": 4} | ({"before": before} if before else {})
        page = api("GET", "/api/blogs", params=params).json()
        assert len(page["blogs"]) <= 4
        seen += [b["slug"] for b in page["blogs"]]
        if len(seen) == 8:  # a blog opened meanwhile goes to the front, moves nothing
            api("POST", "/api/blogs", tokens.editor, json={"slug": "late", "title": "Late"})
        before = page["next_before"]
        if before is None:
            break
    assert seen == newest_first
    assert [b["slug"] for b in api("GET", "/api/blogs").json()["blogs"]][:2] == \
        ["late", newest_first[0]]
    assert len(api("GET", "/api/blogs").json()["blogs"]) == 20  # the default page
    assert_problem(api("GET", "/api/blogs", params={"limit": 101}), 422, fields={"limit"})
    assert_problem(api("GET", "/api/blogs", params={"before": "Not A Slug"}), 422,
                   fields={"before"})
    assert_problem(api("GET", "/api/blogs", params={"before": "nowhere"}), 404)
    home = api("GET", "/")
    assert home.status_code == 200 and 'href="/?before=' in home.text
    older = api("GET", "/", params={"before": newest_first[-2]})
    assert f'href="/blogs/{newest_first[-1]}"' in older.text and "/?before=" not in older.text


# -- paging ------------------------------------------------------------------------------------


def test_entries_page_newest_first(api: Api, tokens: Tokens, blog: str) -> None:
    ids = [post(api, tokens.reporter, f"update {n}")["entry"]["id"] for n in range(7)]
    first = api("GET", "/api/blogs/tartus", params={"limit": 3}).json()
    assert [e["id"] for e in first["entries"]] == ids[::-1][:3]
    assert first["total_entries"] == 7
    second = api("GET", "/api/blogs/tartus",
                 params={"limit": 3, "before": first["next_before"]}).json()
    assert [e["id"] for e in second["entries"]] == ids[::-1][3:6]
    third = api("GET", "/api/blogs/tartus",
                params={"limit": 3, "before": second["next_before"]}).json()
    assert [e["id"] for e in third["entries"]] == [ids[0]] and third["next_before"] is None
    assert_problem(api("GET", "/api/blogs/tartus", params={"limit": 0}), 422, fields={"limit"})
    assert_problem(api("GET", "/api/blogs/tartus", params={"limit": "ten"}), 422)
    assert_problem(api("GET", "/api/blogs/tartus", params={"before": "nope"}), 404)


# -- the log and the past ----------------------------------------------------------------------


def test_the_event_log_pages_for_editors_only(api: Api, tokens: Tokens, blog: str) -> None:
    for n in range(4):
        post(api, tokens.reporter, f"update {n}")
    assert_problem(api("GET", "/api/blogs/tartus/events"), 401)
    assert_problem(api("GET", "/api/blogs/tartus/events", tokens.reporter), 403)
    page = api("GET", "/api/blogs/tartus/events", tokens.editor, params={"limit": 2}).json()
    assert [e["version"] for e in page["events"]] == [1, 2]
    event = page["events"][0]
    assert set(event) == {"id", "version", "type", "at", "actor", "actor_id", "actor_name",
                          "role", "data"}
    assert (event["type"], event["actor"], event["role"]) == ("blog-opened", "ed", "editor")
    rest = api("GET", "/api/blogs/tartus/events", tokens.editor,
               params={"after": page["next"]}).json()
    assert [e["version"] for e in rest["events"]] == [3, 4, 5] and rest["next"] is None
    assert_problem(api("GET", "/api/blogs/tartus/events", tokens.editor,
                       params={"after": "not-an-id"}), 422, fields={"after"})
    assert_problem(api("GET", "/api/blogs/nowhere/events", tokens.editor), 404)


def test_state_at_an_event_or_version_is_the_past_exactly(
        api: Api, tokens: Tokens, blog: str) -> None:
    snapshots = {}
    entry = post(api, tokens.reporter, "At least 80 dead")["entry"]
    path = f"/api/blogs/tartus/entries/{entry['id']}"
    snapshots[2] = api("GET", "/api/blogs/tartus").json()
    api("PATCH", path, tokens.reporter, json={"body": "At least 121 dead"})
    api("PUT", "/api/blogs/tartus/pinned", tokens.editor, json={"entry_id": entry["id"]})
    snapshots[4] = api("GET", "/api/blogs/tartus").json()
    api("DELETE", path, tokens.editor, json={"reason": "duplicate"})
    snapshots[5] = api("GET", "/api/blogs/tartus").json()
    for version, expected in snapshots.items():
        by_version = api("GET", "/api/blogs/tartus/state", tokens.editor,
                         params={"at": version}).json()
        by_id = api("GET", "/api/blogs/tartus/state", tokens.editor,
                    params={"at": expected["last_event_id"]}).json()
        assert by_version == by_id == expected
    assert snapshots[2]["entries"][0]["body"] == "At least 80 dead"
    assert_problem(api("GET", "/api/blogs/tartus/state", tokens.reporter,
                       params={"at": 1}), 403)
    assert_problem(api("GET", "/api/blogs/tartus/state", tokens.editor, params={"at": 99}), 404)
    assert_problem(api("GET", "/api/blogs/tartus/state", tokens.editor,
                       params={"at": "1-0"}), 404)
    assert_problem(api("GET", "/api/blogs/tartus/state", tokens.editor,
                       params={"at": "yesterday"}), 422, fields={"at"})
    assert_problem(api("GET", "/api/blogs/tartus/state", tokens.editor), 422, fields={"at"})


# -- the rest ----------------------------------------------------------------------------------


def test_openapi_describes_every_route(api: Api) -> None:
    document = api("GET", "/openapi.json").json()
    validate(document)
    served = {(op.method.lower(), op.path) for op in OPERATIONS} | {("get", "/openapi.json")}
    described = {(method, path) for path, item in document["paths"].items() for method in item}
    assert described == served


def _unbounded(schema: dict, schemas: dict, where: str) -> list[str]:  # type: ignore[type-arg]
    """The places in a JSON schema that accept a value of any size."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _unbounded(schemas[name], schemas, where)
    if "anyOf" in schema:
        return [bad for option in schema["anyOf"] for bad in _unbounded(option, schemas, where)]
    kind = schema.get("type")
    if kind == "object":
        return [bad for name, prop in schema.get("properties", {}).items()
                for bad in _unbounded(prop, schemas, f"{where}.{name}")]
    if kind == "string":
        pattern = re.sub(r"\\.", "", schema.get("pattern", ""))
        bounded_pattern = pattern and not re.search(r"[*+]|\{\d+,\}", pattern)
        return [] if "maxLength" in schema or "enum" in schema or bounded_pattern else [where]
    if kind in ("integer", "number"):
        return [] if "maximum" in schema and "minimum" in schema else [where]
    if kind == "array":
        return [] if "maxItems" in schema else [where]
    return []


def test_every_field_and_parameter_a_client_sends_is_bounded(api: Api) -> None:
    document = api("GET", "/openapi.json").json()
    schemas = document["components"]["schemas"]
    unbounded = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                unbounded += _unbounded(body["schema"], schemas, f"{method} {path} body")
            for param in op.get("parameters", []):
                if param["in"] != "path":  # a path that matches no pattern is a 404
                    unbounded += _unbounded(param["schema"], schemas,
                                            f"{method} {path} {param['name']}")
    assert unbounded == []


def test_new_bounds_are_422s_naming_the_field(
        api: Api, tokens: Tokens, blog: str, log_length: Callable[[str], int]) -> None:
    facts = "/api/blogs/tartus/facts"
    for bad in (1e16, -1e16):
        assert_problem(api("PUT", f"{facts}/money", tokens.reporter,
                           json={"label": "Money", "value": "a lot", "numeric": bad}),
                       422, fields={"numeric"})
    for n in range(MAX_FACTS):
        assert api("PUT", f"{facts}/f{n}", tokens.reporter,
                   json={"label": f"F{n}", "value": "1"}).status_code == 200
    before = log_length("tartus")
    assert_problem(api("PUT", f"{facts}/one-too-many", tokens.reporter,
                       json={"label": "More", "value": "1"}), 422, fields={"key"})
    assert api("PUT", f"{facts}/f0", tokens.reporter,  # the figures it has still update
               json={"label": "F0", "value": "2"}).status_code == 200
    assert log_length("tartus") == before + 1
    assert_problem(api("GET", "/api/blogs/tartus", params={"before": "x" * 65}), 422,
                   fields={"before"})
    assert_problem(api("GET", "/api/blogs/tartus/state", tokens.editor,
                       params={"at": 1, "before": "../x"}), 422, fields={"before"})


def test_health(api: Api) -> None:
    assert api("GET", "/healthz").json() == {"status": "ok", "redis": "ok"}


def test_a_second_process_reads_writes_made_through_the_first(
        api: Api, tokens: Tokens, blog: str, redis_url: str) -> None:
    from tests.support import UvicornThread, app_config

    with UvicornThread(app_config(redis_url)) as other:
        second = Api(other.base_url)
        assert second("GET", "/api/blogs/tartus").json()["version"] == 1
        entry = post(api, tokens.reporter, "First")["entry"]
        assert second("GET", "/api/blogs/tartus").json()["entries"][0]["id"] == entry["id"]
        edited = second("PATCH", f"/api/blogs/tartus/entries/{entry['id']}", tokens.editor,
                        json={"body": "First, corrected"}, headers={"If-Match": '"1"'})
        assert edited.status_code == 200
        assert api("GET", "/api/blogs/tartus").json()["entries"][0]["revision"] == 2
        second.http.close()


def test_redis_down_is_503_with_retry_after(tmp_path, tokens: Tokens) -> None:  # type: ignore[no-untyped-def]
    from tests.support import UvicornThread, app_config, create_tokens, start_redis, stop_redis

    own = start_redis(tmp_path / "redis")
    create_tokens(own.url)
    try:
        with UvicornThread(app_config(own.url)) as server:
            client = Api(server.base_url)
            assert client("GET", "/healthz").status_code == 200
            stop_redis(own)
            for method, path, body in (("GET", "/healthz", None), ("GET", "/api/blogs", None),
                                       ("POST", "/api/blogs", {"slug": "x", "title": "X"})):
                response = client(method, path, "test-token-ed", json=body)
                assert_problem(response, 503)
                assert response.headers["retry-after"].isdigit()
                # Where Redis lives is for the log, not for whoever asked.
                assert str(own.directory) not in response.text
            own = start_redis(tmp_path / "redis")
            assert client("GET", "/healthz").status_code == 200
            client.http.close()
    finally:
        if own.process.poll() is None:
            stop_redis(own)
    assert own.process.poll() is not None


def test_urls_a_parser_refuses_and_non_ascii_digits_are_client_errors(
        api: Api, tokens: Tokens, blog: str, log_length: Callable[[str], int]) -> None:
    assert_problem(api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                       json={"body": "x", "embed": {"url": "https://[x"}}), 422,
                   fields={"embed.url"})
    assert log_length("tartus") == 1
    assert api("GET", "/blogs/tartus").status_code == 200
    assert_problem(api("GET", "/api/blogs/tartus", params={"limit": "²"}), 422)
    assert_problem(api("GET", "/api/blogs/tartus/events", tokens.editor,
                       params={"after": "\u0661-\u0661"}), 422)  # Arabic-Indic digits
    assert_problem(api("GET", "/api/blogs/tartus/state", tokens.editor,
                       params={"at": "²"}), 422)


def test_a_burst_of_concurrent_posts_all_land(api: Api, tokens: Tokens, blog: str,
                                              server: UvicornThread) -> None:
    """Forty reporters' posts at the same moment: each is accepted once, none gives up
    on conflicts, and the log holds them all."""
    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            async def post(n: int) -> int:
                response = await client.post(
                    "/api/blogs/tartus/entries", json={"body": f"Update {n}"},
                    headers={"Authorization": f"Bearer {tokens.reporter}"})
                return response.status_code
            return list(await asyncio.gather(*(post(n) for n in range(40))))

    assert asyncio.run(burst()) == [201] * 40
    events = api("GET", "/api/blogs/tartus/events", tokens.editor, params={"limit": 100})
    bodies = sorted(e["data"]["body"] for e in events.json()["events"][1:])
    assert bodies == sorted(f"Update {n}" for n in range(40))


@pytest.mark.parametrize(("method", "path", "headers", "body", "status"), [
    ("GET", "/api/blogs/tartus?limit=" + "9" * 5000, {}, None, 422),
    ("GET", "/api/blogs/tartus/events?limit=" + "9" * 5000, {}, None, 422),
    ("PATCH", "/api/blogs/tartus/entries/{entry}", {"If-Match": '"' + "9" * 5000 + '"'},
     b'{"body": "x"}', 400),
    ("POST", "/api/blogs/tartus/entries", {}, b"[" * 1000 + b"]" * 1000, 400),
    ("POST", "/api/blogs/tartus/entries", {}, b'{"body": ' + b"[" * 1000 + b"]" * 1000 + b"}",
     400),
    ("GET", "/api/blogs/tartus/events?after=99999999999999999999-0", {}, None, 422),
    ("GET", "/api/blogs/tartus/state?at=99999999999999999999-99999999999999999999", {}, None,
     422),
])
def test_oversized_numbers_and_deep_json_are_client_errors(
        api: Api, tokens: Tokens, blog: str, method: str, path: str,
        headers: dict[str, str], body: bytes | None, status: int) -> None:
    entry = api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                json={"body": "Blast"}).json()["entry"]["id"]
    path = path.replace("{entry}", entry)
    before = api("GET", "/api/blogs/tartus/events", tokens.editor).json()["events"]
    response = api(method, path, tokens.editor,
                   headers={"Content-Type": "application/json", **headers}, content=body)
    assert_problem(response, status)
    assert api("GET", "/api/blogs/tartus/events", tokens.editor).json()["events"] == before
