"""Bylines (issue 10): an identity's display name is what readers see on its entries (the
public JSON, the page, an update's own page, the JSON-LD, the stream), it stays with the
identity through `token rotate` and `revoke`, and editors change it. A rename is an event in
each blog where the identity has entries, so open pages follow it live and the log still
says what each entry was signed with before: the replay, the state at an earlier version
and an exported log all show the old name up to the rename.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import immutables
import msgspec
import pytest
import redis
from playwright.sync_api import Browser, expect

from liveblog.cli.log import parse_line
from liveblog.domain.events import (
    Actor,
    BlogOpened,
    BylineChanged,
    EntryPosted,
    Event,
    Recorded,
)
from liveblog.domain.imports import check_log
from liveblog.domain.state import fold
from liveblog.domain.views import change_view, public_blog
from liveblog.errors import InvalidImport
from liveblog.service import Service
from tests.processes import liveblog_env
from tests.sse import read_stream
from tests.support import Api, Tokens, UvicornThread, open_store, run_async

SECOND = 1000  # ms


def liveblog(env: dict[str, str], *args: str, stdin: str | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "liveblog", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)


def post(api: Api, token: str, body: str, slug: str = "tartus", **fields: Any) -> str:
    response = api("POST", f"/api/blogs/{slug}/entries", token, json={"body": body, **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["entry"]["id"])


def bylines(api: Api, slug: str = "tartus", token: str | None = None,
            at: int | None = None) -> dict[str, str]:
    """Entry id -> the byline readers see, from the public state (or the state at `at`)."""
    if at is None:
        state = api("GET", f"/api/blogs/{slug}", params={"limit": 100}).json()
    else:
        state = api("GET", f"/api/blogs/{slug}/state", token,
                    params={"at": at, "limit": 100}).json()
    return {e["id"]: e["author_name"] for e in state["entries"]}


def json_ld(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def log_lengths(api: Api, *slugs: str) -> list[int]:
    return [api("GET", f"/api/blogs/{slug}").json()["version"] for slug in slugs]


def test_a_display_name_is_the_byline_everywhere_readers_look_and_survives_rotation(
        tmp_path: Path, api: Api, tokens: Tokens, blog: str, redis_url: str) -> None:
    env = liveblog_env(tmp_path / "var", 8000, LIVEBLOG_REDIS_URL=redis_url)
    refused = liveblog(env, "token", "create", "--name", "rania-a", "--display-name",
                       "Rania\nAbouzeid", "--role", "reporter")
    assert refused.returncode != 0 and "plain text on one line" in refused.stderr
    assert "rania-a" not in liveblog(env, "token", "list").stdout  # nothing was created
    created = liveblog(env, "token", "create", "--name", "rania-a", "--display-name",
                       "  Rania Abouzeid ", "--role", "reporter")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    listed = liveblog(env, "token", "list").stdout
    assert re.search(r"^rania-a\treporter\t.*\tbyline Rania Abouzeid$", listed, re.M), listed

    me = api("GET", "/api/me", secret).json()
    assert (me["name"], me["display_name"]) == ("rania-a", "Rania Abouzeid")
    session = api("GET", "/api/session", secret).json()
    assert session["display_name"] == "Rania Abouzeid"
    # Without one, the byline is the name.
    assert api("GET", "/api/me", tokens.reporter).json()["display_name"] == "rania"

    first = api("POST", "/api/blogs/tartus/entries", secret,
                json={"body": "An explosion at the bus station.", "title": "Blast in Tartus"})
    assert first.status_code == 201, first.text
    entry = first.json()["entry"]
    assert (entry["author"], entry["author_name"]) == ("rania-a", "Rania Abouzeid")
    assert bylines(api) == {entry["id"]: "Rania Abouzeid"}

    page = api("GET", "/blogs/tartus").text
    assert '<span class="author">Rania Abouzeid</span>' in page
    assert '<span class="author">rania-a</span>' not in page
    assert json_ld(page)["liveBlogUpdate"][0]["author"] == \
        {"@type": "Person", "name": "Rania Abouzeid"}
    own = api("GET", f"/blogs/tartus/entries/{entry['id']}").text
    assert '<span class="author">Rania Abouzeid</span>' in own
    assert json_ld(own)["author"] == {"@type": "Person", "name": "Rania Abouzeid"}

    # Rotation: a new secret, the same identity, the same byline.
    rotated = liveblog(env, "token", "rotate", "rania-a")
    assert rotated.returncode == 0, rotated.stderr
    renewed = rotated.stdout.strip().splitlines()[-1]
    assert api("GET", "/api/me", renewed).json() == me
    second = post(api, renewed, "A second device, confirmed.")
    assert bylines(api) == {entry["id"]: "Rania Abouzeid", second: "Rania Abouzeid"}
    events = api("GET", "/api/blogs/tartus/events", tokens.editor).json()["events"]
    assert [(e["actor"], e["actor_name"]) for e in events] == [
        ("ed", "ed"), ("rania-a", "Rania Abouzeid"), ("rania-a", "Rania Abouzeid")]


def test_an_editor_renames_and_open_pages_follow_while_the_past_keeps_the_old_name(
        browser: Browser, api: Api, tokens: Tokens, blog: str, server: UvicornThread,
        redis_url: str) -> None:
    assert api("POST", "/api/blogs", tokens.editor,
               json={"slug": "jableh", "title": "Jableh"}).status_code == 201
    first = post(api, tokens.reporter, "First report from the port.")
    second = post(api, tokens.reporter, "Second report.")
    other = post(api, tokens.other_reporter, "Omar's report.")
    withdrawn = post(api, tokens.reporter, "To be withdrawn.")
    assert api("DELETE", f"/api/blogs/tartus/entries/{withdrawn}", tokens.editor,
               json={"reason": "duplicate"}).status_code == 200
    assert api("PUT", "/api/blogs/tartus/pinned", tokens.editor,
               json={"entry_id": first}).status_code == 200
    elsewhere = post(api, tokens.reporter, "From Jableh.", slug="jableh")
    before = api("GET", "/api/blogs/tartus").json()
    assert bylines(api) == {first: "rania", second: "rania", other: "omar"}

    # Who may see and change bylines.
    assert api("GET", "/api/people").status_code == 401
    assert api("GET", "/api/people", tokens.reporter).status_code == 403
    people = api("GET", "/api/people", tokens.editor).json()["people"]
    assert sorted((p["name"], p["display_name"], p["role"], p["status"]) for p in people) == [
        ("ed", "ed", "editor", "active"), ("eve", "eve", "editor", "active"),
        ("omar", "omar", "reporter", "active"), ("rania", "rania", "reporter", "active")]
    [her] = [p for p in people if p["name"] == "rania"]
    rania = her["id"]
    assert rania == api("GET", "/api/me", tokens.reporter).json()["id"]
    path = f"/api/people/{rania}"
    lengths = log_lengths(api, "tartus", "jableh")
    for body, field in [({"display_name": ""}, "display_name"),
                        ({"display_name": "   "}, "display_name"),
                        ({"display_name": "x" * 81}, "display_name"),
                        ({"display_name": "Rania\nAbouzeid"}, "display_name"),
                        ({"display_name": "\u202eRania"}, "display_name"),
                        ({"display_name": 7}, "display_name"),
                        ({}, "display_name"),
                        ({"display_name": "Rania", "role": "editor"}, "role")]:
        response = api("PATCH", path, tokens.editor, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in response.json()["errors"]], body
    assert api("PATCH", path, tokens.reporter,
               json={"display_name": "Rania Abouzeid"}).status_code == 403
    assert api("PATCH", path, json={"display_name": "Rania Abouzeid"}).status_code == 401
    for unknown in ("0123456789abcdef", "x" * 65, "a.b"):
        response = api("PATCH", f"/api/people/{unknown}", tokens.editor,
                       json={"display_name": "Rania Abouzeid"})
        assert response.status_code == 404, (unknown, response.text)
    # Nothing changed: no event, the same names.
    assert log_lengths(api, "tartus", "jableh") == lengths
    assert api("GET", "/api/people", tokens.editor).json()["people"] == people
    assert api("GET", "/api/me", tokens.reporter).json()["display_name"] == "rania"

    # A reader with the page open, and the rename.
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.base_url}/blogs/tartus")
    for _ in range(200):
        tailer = server.hub().tailers.get("tartus")
        if tailer and tailer.subscribers:
            break
        page.wait_for_timeout(10)
    expect(page.locator(f"#entry-{first} .author")).to_have_text("rania")
    renamed = api("PATCH", path, tokens.editor, json={"display_name": " Rania Abouzeid "})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["person"] == {**her, "display_name": "Rania Abouzeid"}
    assert [e["slug"] for e in renamed.json()["events"]] == ["jableh", "tartus"]
    for shown in (f"#entry-{first}", f"#pinned-{first}", f"#entry-{second}"):
        expect(page.locator(f"{shown} .author")).to_have_text("Rania Abouzeid", timeout=SECOND)
    expect(page.locator(f"#entry-{other} .author")).to_have_text("omar")
    assert errors == []
    context.close()

    # The public state of both blogs, and what a stream resumed from before sends.
    assert bylines(api) == {first: "Rania Abouzeid", second: "Rania Abouzeid", other: "omar"}
    assert bylines(api, "jableh") == {elsewhere: "Rania Abouzeid"}

    async def resume() -> list[Any]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            stream = await read_stream(client, "/blogs/tartus/stream", until=1,
                                       last_event_id=before["last_event_id"])
            return [(m.id, m.event, m.data) for m in stream.messages]

    [(event_id, kind, data)] = run_async(resume())
    assert (event_id, kind) == (renamed.json()["events"][1]["event_id"], "byline-changed")
    # The live entries of hers, in posting order; the withdrawn one is not named.
    assert data == {"version": before["version"] + 1, "author_name": "Rania Abouzeid",
                    "entry_ids": [first, second]}

    # The past keeps the old name: the state, and the replay's frame, before the rename.
    assert bylines(api, token=tokens.editor, at=before["version"]) == \
        {first: "rania", second: "rania", other: "omar"}
    assert bylines(api, token=tokens.editor, at=before["version"] + 1)[first] == \
        "Rania Abouzeid"
    frames = [api("GET", f"/blogs/tartus/replay/frame?at={v}", tokens.editor).text
              for v in (before["version"], before["version"] + 1)]
    assert '<span class="author">rania</span>' in frames[0] and "Rania Abouzeid" not in frames[0]
    assert '<span class="author">Rania Abouzeid</span>' in frames[1]
    rows = api("GET", "/api/blogs/tartus/timeline", tokens.editor).json()["events"]
    assert (rows[-1]["type"], rows[-1]["actor"], rows[-1]["summary"]) == (
        "byline-changed", "ed", "byline 'rania' → 'Rania Abouzeid'")

    # The same name again changes nothing; her next posts carry it.
    again = api("PATCH", path, tokens.editor, json={"display_name": "Rania Abouzeid"})
    assert again.status_code == 200 and again.json()["events"] == []
    assert api("GET", "/api/me", tokens.reporter).json()["display_name"] == "Rania Abouzeid"
    third = post(api, tokens.reporter, "Third report.")
    assert bylines(api)[third] == "Rania Abouzeid"

    # Revoked, she is still listed, and her entries keep her byline; an editor may still
    # correct it (a reporter who left).
    async def revoke() -> None:
        store = open_store(redis_url)
        try:
            assert await store.revoke_token("rania")
        finally:
            await store.close()

    run_async(revoke())
    listed = api("GET", "/api/people", tokens.editor).json()["people"]
    assert [(p["display_name"], p["status"]) for p in listed if p["id"] == rania] == [
        ("Rania Abouzeid", "revoked")]
    assert len(listed) == 4
    assert bylines(api)[third] == "Rania Abouzeid"
    fixed = api("PATCH", path, tokens.editor, json={"display_name": "Rania Abouzeid-Haddad"})
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["person"]["status"] == "revoked"
    assert set(bylines(api).values()) == {"Rania Abouzeid-Haddad", "omar"}


def test_token_set_renames_from_the_terminal_as_the_holder(
        tmp_path: Path, api: Api, tokens: Tokens, blog: str, redis_url: str) -> None:
    env = liveblog_env(tmp_path / "var", 8000, LIVEBLOG_REDIS_URL=redis_url)
    entry = post(api, tokens.reporter, "A report.")
    assert liveblog(env, "token", "set", "nobody", "--display-name", "X").returncode != 0
    bad = liveblog(env, "token", "set", "rania", "--display-name", "x" * 81)
    assert bad.returncode != 0 and "--display-name" in bad.stderr
    done = liveblog(env, "token", "set", "rania", "--display-name", "Rania A.")
    assert done.returncode == 0, done.stderr
    assert "blogs changed: tartus" in done.stdout
    assert bylines(api) == {entry: "Rania A."}
    me = api("GET", "/api/me", tokens.reporter).json()
    last = api("GET", "/api/blogs/tartus/events", tokens.editor).json()["events"][-1]
    # Logged as hers: the terminal acts as the token's holder.
    assert (last["type"], last["actor"], last["actor_id"], last["actor_name"]) == (
        "byline-changed", "rania", me["id"], "Rania A.")
    assert last["data"] == {"type": "byline-changed", "author_id": me["id"], "name": "Rania A."}


def test_an_exported_log_imported_again_keeps_every_byline_as_it_was(
        tmp_path: Path, api: Api, tokens: Tokens, blog: str, redis_url: str,
        raw_redis: redis.Redis) -> None:
    env = liveblog_env(tmp_path / "var", 8000, LIVEBLOG_REDIS_URL=redis_url)
    first = post(api, tokens.reporter, "First.")
    post(api, tokens.other_reporter, "Omar's.")
    rania = api("GET", "/api/me", tokens.reporter).json()["id"]
    assert api("PATCH", f"/api/people/{rania}", tokens.editor,
               json={"display_name": "Rania Abouzeid"}).status_code == 200
    post(api, tokens.reporter, "After the rename.")
    version = api("GET", "/api/blogs/tartus").json()["version"]
    seen = [bylines(api, token=tokens.editor, at=v) for v in range(1, version + 1)]
    assert seen[2][first] == "rania"  # version 3, before the rename
    assert seen[3][first] == seen[4][first] == "Rania Abouzeid"

    exported = liveblog(env, "export", "tartus")
    assert exported.returncode == 0, exported.stderr
    lines = exported.stdout.splitlines()
    assert '"actor_name":"Rania Abouzeid"' in lines[-1]
    # Only the blog goes: its identities (and their tokens) stay, as on another server
    # sharing them.
    raw_redis.delete(*raw_redis.keys("liveblog:{tartus}:*"), f"{{liveblog}}:authored:{rania}")
    file = tmp_path / "tartus.jsonl"
    file.write_text(exported.stdout)
    imported = liveblog(env, "import", str(file))
    assert imported.returncode == 0, imported.stderr

    async def states() -> list[dict[str, str]]:
        store = open_store(redis_url)  # a process that never saw the blog: a fresh fold
        try:
            service = Service(store)
            return [{e.id: e.author_name for e in public_blog(
                await service.blog_at("tartus", str(v)), limit=100).entries}
                for v in range(1, version + 1)]
        finally:
            await store.close()

    assert run_async(states()) == seen
    # The import told the store where she posts: a rename reaches the imported blog.
    again = api("PATCH", f"/api/people/{rania}", tokens.editor,
                json={"display_name": "Rania A."})
    assert [e["slug"] for e in again.json()["events"]] == ["tartus"]

    # An export edited to forge a rename, or a byline no request could give, is refused.
    records = [parse_line(line.encode()) for line in lines]
    rename = next(r for r in records if isinstance(r.event, BylineChanged))
    forged = [*records[:records.index(rename)],
              Recorded(id=rename.id, version=rename.version, at=rename.at, actor="omar",
                       role="reporter", actor_id="omar-identity", actor_name="Omar",
                       event=rename.event)]
    with pytest.raises(InvalidImport, match="only editors may change someone else's byline"):
        check_log(forged, now=datetime.now(UTC))
    bad_name = [records[0], _with(records[1], actor_name="Rania\u202e")]
    with pytest.raises(InvalidImport, match="actor_name: must be 1 to 80 characters"):
        check_log(bad_name, now=datetime.now(UTC))
    padded = [records[0], _with(records[1], actor_name=" Rania ")]
    with pytest.raises(InvalidImport, match="stripped"):
        check_log(padded, now=datetime.now(UTC))
    assert check_log(records, now=datetime.now(UTC)).version == version


def _with(rec: Recorded, **changes: Any) -> Recorded:
    return msgspec.structs.replace(rec, **changes)


# -- the fold, without Redis -------------------------------------------------------------------

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _log(*steps: tuple[Actor, Event]) -> list[Recorded]:
    return [Recorded(id=f"{1767603600000 + n}-0", version=n + 1,
                     at=T0 + timedelta(minutes=n), actor=actor.name, role=actor.role,
                     actor_id=actor.id or None, actor_name=actor.display_name or None,
                     event=event)
            for n, (actor, event) in enumerate(steps)]


def test_the_fold_keeps_each_identity_s_byline_as_the_log_says_it_was() -> None:
    editor = Actor("ed", "editor", "ed-id", "The Desk")
    rania = Actor("rania", "reporter", "rania-id", "Rania")
    renamed = Actor("rania", "reporter", "rania-id", "Rania Abouzeid")
    legacy = Actor("omar", "reporter")  # logged before identities and display names
    log = _log(
        (editor, BlogOpened(slug="tartus", title="Tartus")),
        (rania, EntryPosted(entry_id="a", body="A")),
        (legacy, EntryPosted(entry_id="b", body="B")),
        (editor, BylineChanged(author_id="rania-id", name="R. Abouzeid")),
        (renamed, EntryPosted(entry_id="c", body="C")),  # her newest name, from then on
    )
    states = [fold(log[:n]) for n in range(1, len(log) + 1)]
    names = [{e.id: e.author_name for e in public_blog(s).entries} for s in states if s]
    assert names[1:] == [
        {"a": "Rania"},
        {"a": "Rania", "b": "omar"},
        {"a": "R. Abouzeid", "b": "omar"},
        {"a": "Rania Abouzeid", "b": "omar", "c": "Rania Abouzeid"},
    ]
    assert states[0] is not None and states[0].bylines == immutables.Map({"ed-id": "The Desk"})
    after = states[3]
    assert after is not None
    change = change_view(log[3], after)
    assert msgspec.to_builtins(change) == {"version": 4, "author_name": "R. Abouzeid",
                                           "entry_ids": ["a"]}
