"""The entry workflow (issue 10): contributors, drafts, submissions, scheduling, publishing
and rejecting, against a real Redis and uvicorn. Every role is tried on every operation,
and nothing unpublished reaches a public path (the API, the page, its JSON-LD, the update's
own page, the stream) until it is published; then readers get it as a new entry."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from liveblog.service import utcnow
from tests.sse import read_stream, reading
from tests.support import Api, Tokens, UvicornThread, open_store, run_async

SECRET = "EMBARGOED-WORDS"


@dataclass(frozen=True)
class Team:
    editor: str
    reporter: str
    other_reporter: str
    contributor: str
    other_contributor: str


@pytest.fixture
def team(tokens: Tokens, redis_url: str) -> Team:
    async def create() -> list[str]:
        store = open_store(redis_url)
        made = []
        for name in ("sami", "lina"):
            secret = f"test-token-{name}"
            assert await store.create_token(name, "contributor", secret, utcnow())
            made.append(secret)
        await store.close()
        return made

    sami, lina = run_async(create())
    return Team(tokens.editor, tokens.reporter, tokens.other_reporter, sami, lina)


def post(api: Api, token: str, body: str = "A stringer's report", expect: int = 201,
         **fields: object) -> dict:  # type: ignore[type-arg]
    response = api("POST", "/api/blogs/tartus/entries", token, json={"body": body, **fields})
    assert response.status_code == expect, response.text
    return response.json()  # type: ignore[no-any-return]


def entry_of(result: dict) -> dict:  # type: ignore[type-arg]
    return result["entry"]  # type: ignore[no-any-return]


def publish(api: Api, token: str, entry_id: str, **body: object) -> httpx.Response:
    return api("POST", f"/api/blogs/tartus/entries/{entry_id}/publish", token,
               json=body or None)


def reject(api: Api, token: str, entry_id: str, reason: str = "not confirmed") -> httpx.Response:
    return api("POST", f"/api/blogs/tartus/entries/{entry_id}/reject", token,
               json={"reason": reason})


def queue(api: Api, token: str) -> list[dict]:  # type: ignore[type-arg]
    response = api("GET", "/api/blogs/tartus/queue", token)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()["entries"]  # type: ignore[no-any-return]


def in_future(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


# -- roles x operations ----------------------------------------------------------------------


def test_a_contributor_submits_and_edits_its_own_until_published_and_nothing_else(
        api: Api, team: Team, blog: str) -> None:
    me = api("GET", "/api/me", team.contributor).json()
    assert me["role"] == "contributor"
    submitted = entry_of(post(api, team.contributor, "From the port", title="Port"))
    assert (submitted["state"], submitted["publish_at"]) == ("submitted", None)
    sid = submitted["id"]
    # Asking to publish, even as a draft or at a time, is not a contributor's to do.
    for publish_as in ("now", "draft", in_future(60)):
        assert_problem(api("POST", "/api/blogs/tartus/entries", team.contributor,
                           json={"body": "x", "publish": publish_as}), 403)
    edited = api("PATCH", f"/api/blogs/tartus/entries/{sid}", team.contributor,
                 json={"body": "From the port: two blasts"})
    assert edited.status_code == 200 and edited.json()["entry"]["state"] == "submitted"
    assert edited.json()["event_id"] and edited.json()["entry"]["revision"] == 2
    others = entry_of(post(api, team.other_contributor, "Lina's"))["id"]
    reporters = entry_of(post(api, team.reporter, "Rania's"))["id"]
    refused = [
        api("PATCH", f"/api/blogs/tartus/entries/{others}", team.contributor, json={"body": "x"}),
        api("DELETE", f"/api/blogs/tartus/entries/{reporters}", team.contributor, json={}),
        publish(api, team.contributor, sid),
        publish(api, team.contributor, sid, publish_at=in_future(60)),
        reject(api, team.contributor, others),
        api("PUT", "/api/blogs/tartus/facts/deaths", team.contributor,
            json={"label": "Deaths", "value": "80"}),
        api("PUT", "/api/blogs/tartus/pinned", team.contributor, json={"entry_id": reporters}),
        api("PATCH", "/api/blogs/tartus", team.contributor, json={"title": "x"}),
        api("GET", "/api/blogs/tartus/timeline", team.contributor),
        api("GET", f"/api/blogs/tartus/entries/{sid}/history", team.contributor),
    ]
    for response in refused:
        assert_problem(response, 403)
    # Published by an editor, it is no longer the contributor's to change.
    assert publish(api, team.editor, sid).status_code == 200
    for method, body in (("PATCH", {"body": "late fix"}), ("DELETE", {"reason": "mine"})):
        assert_problem(api(method, f"/api/blogs/tartus/entries/{sid}", team.contributor,
                           json=body), 403)
    public = api("GET", "/api/blogs/tartus").json()
    assert [e["id"] for e in public["entries"]] == [sid, reporters]
    assert public["entries"][0]["body"] == "From the port: two blasts"


def test_who_may_publish_and_reject_what(api: Api, team: Team, blog: str) -> None:
    own_draft = entry_of(post(api, team.reporter, "Rania's draft", publish="draft"))["id"]
    others_draft = entry_of(post(api, team.other_reporter, "Omar's draft", publish="draft"))["id"]
    submitted = entry_of(post(api, team.contributor, "Sami's"))["id"]
    editors_draft = entry_of(post(api, team.editor, "Desk draft", publish="draft"))["id"]
    # A reporter: its own drafts only; never a submission or someone else's draft.
    for entry_id in (others_draft, submitted, editors_draft):
        assert_problem(publish(api, team.reporter, entry_id), 403)
        assert_problem(reject(api, team.reporter, entry_id), 403)
        assert_problem(api("PATCH", f"/api/blogs/tartus/entries/{entry_id}", team.reporter,
                           json={"body": "x"}), 403)
    done = publish(api, team.reporter, own_draft)
    assert done.status_code == 200 and done.json()["entry"]["state"] == "published"
    assert done.json()["event_id"]
    again = publish(api, team.reporter, own_draft)  # nothing left to do: nothing appended
    assert again.status_code == 200 and again.json()["event_id"] is None
    # An editor: anything unpublished.
    assert publish(api, team.editor, others_draft).json()["entry"]["state"] == "published"
    rejected = reject(api, team.editor, submitted, "  a duplicate of Rania's  ")
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["entry"]["state"], rejected.json()["entry"]["reason"]) == (
        "rejected", "a duplicate of Rania's")
    assert reject(api, team.editor, submitted).json()["event_id"] is None
    # Rejecting what readers saw is a retraction's job; a rejected entry is the editors'.
    assert_problem(reject(api, team.editor, own_draft), 409)
    assert_problem(api("PATCH", f"/api/blogs/tartus/entries/{submitted}", team.contributor,
                       json={"body": "please"}), 403)
    assert_problem(reject(api, team.editor, submitted, ""), 422)
    assert_problem(reject(api, team.editor, "nosuchentry"), 404)
    assert_problem(publish(api, team.editor, "nosuchentry"), 404)
    # An editor may change its mind about a rejected entry.
    assert publish(api, team.editor, submitted).json()["entry"]["state"] == "published"
    assert publish(api, team.editor, editors_draft).status_code == 200
    public = api("GET", "/api/blogs/tartus").json()
    assert [e["id"] for e in public["entries"]] == [editors_draft, submitted, others_draft,
                                                    own_draft]


def test_every_state_and_what_each_allows(api: Api, team: Team, blog: str) -> None:
    states = {
        "published": entry_of(post(api, team.reporter, "Now")),
        "draft": entry_of(post(api, team.reporter, "Later", publish="draft")),
        "submitted": entry_of(post(api, team.contributor, "Please")),
        "scheduled": entry_of(post(api, team.reporter, "At noon", publish=in_future(3600))),
    }
    for state, entry in states.items():
        assert entry["state"] == state
        assert entry["created_at"] == entry["posted_at"]
    assert states["scheduled"]["publish_at"].endswith("Z")
    assert states["published"]["publish_at"] is None
    # Pinning what readers cannot see would show them nothing; so is a correction of it.
    for state in ("draft", "submitted", "scheduled"):
        entry_id = states[state]["id"]
        assert_problem(api("PUT", "/api/blogs/tartus/pinned", team.editor,
                           json={"entry_id": entry_id}), 409)
        assert_problem(api("PATCH", f"/api/blogs/tartus/entries/{entry_id}", team.editor,
                           json={"correction": "it said 80"}), 422)
    # Withdrawing one's own unpublished entry rejects it: readers never saw it.
    gone = api("DELETE", f"/api/blogs/tartus/entries/{states['draft']['id']}", team.reporter,
               json={"reason": "overtaken"})
    assert gone.status_code == 200 and gone.json()["event_id"]
    withdrawn = {e["id"]: e for e in queue(api, team.reporter)}[states["draft"]["id"]]
    assert (withdrawn["state"], withdrawn["reason"]) == ("rejected", "overtaken")
    # A time must be aware, in the future and a time.
    for bad in ("2020-01-01T00:00:00Z", "2999-01-01T00:00:00", "2026-13-45T99:00Z", "soon",
                "tomorrow"):
        assert_problem(api("POST", "/api/blogs/tartus/entries", team.reporter,
                           json={"body": "x", "publish": bad}), 422)
        assert_problem(publish(api, team.editor, states["submitted"]["id"], publish_at=bad),
                       422)
    assert api("GET", "/api/blogs/tartus").json()["total_entries"] == 1
    # An ended blog takes no publishing, and no schedule fires there (tested in
    # test_scheduler); reopened, it does again.
    assert api("PATCH", "/api/blogs/tartus", team.editor, json={"status": "ended"}).is_success
    assert_problem(publish(api, team.editor, states["submitted"]["id"]), 409)
    assert api("PATCH", "/api/blogs/tartus", team.editor, json={"status": "live"}).is_success
    assert publish(api, team.editor, states["submitted"]["id"]).is_success


def test_the_queue_per_role(api: Api, team: Team, blog: str) -> None:
    ids = {
        "rania draft": entry_of(post(api, team.reporter, "r1", publish="draft"))["id"],
        "rania soon": entry_of(post(api, team.reporter, "r2", publish=in_future(7200)))["id"],
        "omar draft": entry_of(post(api, team.other_reporter, "o1", publish="draft"))["id"],
        "omar sooner": entry_of(post(api, team.other_reporter, "o2",
                                     publish=in_future(3600)))["id"],
        "sami": entry_of(post(api, team.contributor, "s1"))["id"],
        "lina": entry_of(post(api, team.other_contributor, "l1"))["id"],
        "desk draft": entry_of(post(api, team.editor, "d1", publish="draft"))["id"],
    }
    post(api, team.reporter, "published at once")
    name = {v: k for k, v in ids.items()}

    def seen(token: str) -> list[str]:
        return [name[e["id"]] for e in queue(api, token)]

    # Scheduled first, soonest first; then the rest, newest first.
    assert seen(team.editor) == ["omar sooner", "rania soon", "desk draft", "lina", "sami",
                                 "omar draft", "rania draft"]
    assert seen(team.reporter) == ["rania soon", "lina", "sami", "rania draft"]
    assert seen(team.other_reporter) == ["omar sooner", "lina", "sami", "omar draft"]
    assert seen(team.contributor) == ["sami"]
    assert seen(team.other_contributor) == ["lina"]
    row = queue(api, team.contributor)[0]
    assert {"id", "title", "body", "state", "author", "author_id", "publish_at", "created_at",
            "revision"} <= set(row)
    assert (row["author"], row["state"], row["body"], row["revision"]) == (
        "sami", "submitted", "s1", 1)
    assert row["author_id"] == api("GET", "/api/me", team.contributor).json()["id"]
    assert_problem(api("GET", "/api/blogs/tartus/queue"), 401)
    assert_problem(api("GET", "/api/blogs/nowhere/queue", team.editor), 404)
    publish(api, team.editor, ids["sami"])
    assert seen(team.contributor) == []


# -- what readers see ------------------------------------------------------------------------


def public_texts(base_url: str, entry_ids: list[str]) -> dict[str, str]:
    with httpx.Client(base_url=base_url, timeout=10) as http:
        texts = {path: http.get(path).text for path in (
            "/api/blogs/tartus", "/blogs/tartus", "/", "/api/blogs")}
        for entry_id in entry_ids:
            page = http.get(f"/blogs/tartus/entries/{entry_id}")
            assert page.status_code == 404, entry_id
            texts[page.url.path] = page.text
            paged = http.get(f"/api/blogs/tartus?before={entry_id}")
            assert paged.status_code == 404
    return texts


def test_nothing_unpublished_leaks_and_publishing_is_a_new_post_to_readers(
        server: UvicornThread, api: Api, team: Team, blog: str) -> None:
    first = entry_of(post(api, team.reporter, "Already public", title="First"))

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client, \
                reading(client, "tartus") as reader:
            hidden = {
                "draft": entry_of(post(api, team.reporter, f"{SECRET} draft", publish="draft",
                                       title=f"{SECRET} title", key_event=True,
                                       image={"url": "https://example.com/x.jpg",
                                              "alt": f"{SECRET} alt"})),
                "submitted": entry_of(post(api, team.contributor, f"{SECRET} submitted")),
                "scheduled": entry_of(post(api, team.reporter, f"{SECRET} scheduled",
                                           publish=in_future(3600))),
            }
            draft_id = hidden["draft"]["id"]
            edit = api("PATCH", f"/api/blogs/tartus/entries/{draft_id}", team.reporter,
                       json={"body": f"{SECRET} draft, second thoughts", "title": "Confirmed",
                             "key_event": True})
            assert edit.status_code == 200
            reject(api, team.editor, hidden["submitted"]["id"])
            publish(api, team.editor, hidden["scheduled"]["id"], publish_at=in_future(7200))
            # A message every reader gets, after all of that: nothing came before it.
            fact = api("PUT", "/api/blogs/tartus/facts/deaths", team.editor,
                       json={"label": "Deaths", "value": "80"})
            assert fact.status_code == 200
            got = await reader.wait_for(2)
            assert [m.event for m in got] == ["snapshot", "fact-updated"]
            assert SECRET not in json.dumps([m.data for m in got])
            texts = public_texts(server.base_url, [e["id"] for e in hidden.values()])
            leaked = [path for path, text in texts.items() if SECRET in text]
            assert leaked == []
            state = api("GET", "/api/blogs/tartus").json()
            assert state["total_entries"] == 1
            assert [e["id"] for e in state["entries"]] == [first["id"]]
            assert state["key_events"] == [] and "Confirmed" not in texts["/blogs/tartus"]
            page = texts["/blogs/tartus"]
            ld = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>',
                                      page, re.S).group(1))  # type: ignore[union-attr]
            assert [u["headline"] for u in ld["liveBlogUpdate"]] == ["First"]
            fresh = await read_fresh_snapshot(client)
            assert SECRET not in json.dumps(fresh)

            # Published: a new entry to readers, at the top, as of the publishing.
            done = publish(api, team.editor, draft_id)
            assert done.status_code == 200, done.text
            message = (await reader.wait_for(3))[2]
            assert message.event == "entry-posted" and message.id == done.json()["event_id"]
            entry = message.data["entry"]
            assert entry["id"] == draft_id and entry["title"] == "Confirmed"
            assert entry["posted_version"] == done.json()["version"]
            assert entry["posted_at"] == entry["updated_at"] > first["posted_at"]
            assert entry["posted_at"] > hidden["draft"]["created_at"]
            assert entry["revision"] == 2 and entry["body"].endswith("second thoughts")
            assert "state" not in entry  # readers' shape: nothing of the workflow

    asyncio.run(scenario())
    state = api("GET", "/api/blogs/tartus").json()
    draft_id = state["entries"][0]["id"]
    assert [e["title"] for e in state["entries"]] == ["Confirmed", "First"]
    assert state["key_events"][0]["id"] == draft_id
    page = api("GET", "/blogs/tartus").text
    assert page.index("Confirmed") < page.index("Already public")
    # Edits made before readers saw it are not "updates" to them.
    article = page[page.index(f'id="entry-{draft_id}"'):]
    assert 'class="updated"' not in article[:article.index("</article>")]
    assert api("GET", f"/blogs/tartus/entries/{draft_id}").status_code == 200


async def read_fresh_snapshot(client: httpx.AsyncClient) -> object:
    stream = await read_stream(client, "/blogs/tartus/stream", until=1)
    assert stream.messages[0].event == "snapshot"
    return stream.messages[0].data


def test_the_newsroom_sees_who_moved_an_entry_and_when(api: Api, team: Team,
                                                       blog: str) -> None:
    sid = entry_of(post(api, team.contributor, "From the port", title="Port"))["id"]
    reject(api, team.editor, sid, "needs a second source")
    at = in_future(3600)
    scheduled = publish(api, team.editor, sid, publish_at=at).json()["entry"]
    assert scheduled["state"] == "scheduled" and scheduled["reason"] is None
    rescheduled = publish(api, team.editor, sid, publish_at=in_future(60)).json()["entry"]
    assert rescheduled["publish_at"] < scheduled["publish_at"]
    assert publish(api, team.editor, sid).json()["entry"]["state"] == "published"
    assert_problem(publish(api, team.editor, sid, publish_at=in_future(60)), 409)
    timeline = api("GET", "/api/blogs/tartus/timeline", team.editor).json()["events"]
    rows = [(row["type"], row["actor"], row["role"]) for row in timeline[1:]]
    assert rows == [("entry-posted", "sami", "contributor"), ("entry-rejected", "ed", "editor"),
                    ("entry-scheduled", "ed", "editor"), ("entry-scheduled", "ed", "editor"),
                    ("entry-published", "ed", "editor")]
    summaries = [row["summary"] for row in timeline[1:]]
    assert summaries[0] == "submitted 'Port'"
    assert summaries[1] == "rejected 'Port': needs a second source"
    assert summaries[2].startswith("scheduled 'Port' for ")
    assert summaries[4] == "published 'Port'"
    history = api("GET", f"/api/blogs/tartus/entries/{sid}/history", team.editor).json()
    assert [(s["state"], s["actor"]) for s in history["steps"]] == [
        ("submitted", "sami"), ("rejected", "ed"), ("scheduled", "ed"), ("scheduled", "ed"),
        ("published", "ed")]
    assert history["steps"][-1]["at"] == api("GET", "/api/blogs/tartus").json()[
        "entries"][0]["posted_at"]


def test_the_cli_drafts_schedules_publishes_and_rejects(server: UvicornThread, api: Api,
                                                        team: Team, blog: str,
                                                        redis_url: str) -> None:
    def liveblog(token: str, *args: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVEBLOG_")}
        return subprocess.run(
            [sys.executable, "-m", "liveblog", *args], capture_output=True, text=True,
            timeout=60, env={**clean, "LIVEBLOG_URL": server.base_url, "LIVEBLOG_TOKEN": token,
                             "LIVEBLOG_REDIS_URL": redis_url})

    draft = liveblog(team.reporter, "post", "tartus", "A draft", "--draft")
    assert draft.returncode == 0 and draft.stdout.startswith("saved draft "), draft.stderr
    draft_id = draft.stdout.split()[2]
    later = liveblog(team.reporter, "post", "tartus", "Later", "--at", in_future(3600))
    assert later.returncode == 0 and later.stdout.startswith("scheduled "), later.stderr
    submitted = liveblog(team.contributor, "post", "tartus", "Sami's")
    assert submitted.returncode == 0 and submitted.stdout.startswith("submitted ")
    sid = submitted.stdout.split()[1]
    refused = liveblog(team.contributor, "publish", "tartus", sid)
    assert refused.returncode == 1 and "(403)" in refused.stderr
    published = liveblog(team.reporter, "publish", "tartus", draft_id)
    assert published.returncode == 0 and published.stdout == f"published {draft_id}\n"
    rejected = liveblog(team.editor, "reject", "tartus", sid, "--reason", "unverified")
    assert rejected.returncode == 0, rejected.stderr
    bad = liveblog(team.reporter, "post", "tartus", "x", "--at", "2020-01-01T00:00Z")
    assert bad.returncode == 1 and "publish: must be in the future" in bad.stderr
    assert [e["id"] for e in api("GET", "/api/blogs/tartus").json()["entries"]] == [draft_id]
    assert {e["id"]: e["state"] for e in queue(api, team.editor)}[sid] == "rejected"
    made = liveblog(team.editor, "token", "create", "--name", "stringer", "--role",
                    "contributor")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert api("GET", "/api/me", secret).json()["role"] == "contributor"
