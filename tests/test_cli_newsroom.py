"""The newsroom from a terminal: post/edit/retract/pin/fact over HTTP, and export, import
and replay of the log, each run as a real `liveblog` process."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from liveblog.domain.events import Actor, Embed, EntryPosted, Event, FactUpdated, Image
from liveblog.service import utcnow
from liveblog.store import Store
from tests.story import tell
from tests.support import (
    Api,
    RedisServer,
    Tokens,
    UvicornThread,
    app_config,
    run_async,
    start_redis,
    stop_redis,
)


def liveblog(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVEBLOG_")}
    return subprocess.run([sys.executable, "-m", "liveblog", *args], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def test_a_reporter_runs_a_story_from_the_terminal(api: Api, tokens: Tokens, blog: str,
                                                   server: UvicornThread) -> None:
    as_reporter = {"LIVEBLOG_URL": server.base_url, "LIVEBLOG_TOKEN": tokens.reporter}
    posted = liveblog("post", "tartus", "Blast at the **bus station**", "--title", "Blast",
                      "--key-event", "--image", "https://img.example/a.jpg", "--alt", "Smoke",
                      "--credit", "Stringer / AFP", **as_reporter)
    assert posted.returncode == 0, posted.stderr
    entry_id = posted.stdout.split()[1]
    edited = liveblog("edit", "tartus", entry_id, "Blasts at the **bus station**",
                      "--note", "two blasts", "--revision", "1", **as_reporter)
    assert edited.returncode == 0 and "revision 2" in edited.stdout
    stale = liveblog("edit", "tartus", entry_id, "x", "--revision", "1", **as_reporter)
    assert stale.returncode == 1 and "(412)" in stale.stderr
    corrected = liveblog("edit", "tartus", entry_id, "--correction",
                         "An earlier version said one blast.", **as_reporter)
    assert corrected.returncode == 0 and "revision 3" in corrected.stdout, corrected.stderr
    figure = liveblog("fact", "tartus", "deaths", "Deaths", "at least 80", "--numeric", "80",
                      "--source", "AP", **as_reporter)
    assert figure.returncode == 0 and "Deaths: at least 80" in figure.stdout
    not_mine = liveblog("retract", "tartus", entry_id, **{
        **as_reporter, "LIVEBLOG_TOKEN": tokens.other_reporter})
    assert not_mine.returncode == 1 and "(403)" in not_mine.stderr
    no_pin = liveblog("pin", "tartus", entry_id, **as_reporter)
    assert no_pin.returncode == 1 and "only editors" in no_pin.stderr
    pinned = liveblog("pin", "tartus", entry_id, **{**as_reporter,
                                                     "LIVEBLOG_TOKEN": tokens.editor})
    assert pinned.returncode == 0

    state = api("GET", "/api/blogs/tartus").json()
    entry = state["entries"][0]
    assert (entry["id"], entry["revision"], entry["key_event"]) == (entry_id, 3, True)
    assert [c["text"] for c in entry["corrections"]] == ["An earlier version said one blast."]
    assert entry["image"] == {"url": "https://img.example/a.jpg", "alt": "Smoke",
                              "caption": "", "credit": "Stringer / AFP"}
    assert state["pinned_entry_id"] == entry_id and state["facts"][0]["numeric"] == 80

    retracted = liveblog("retract", "tartus", entry_id, "--reason", "wrong city",
                         **as_reporter)
    assert retracted.returncode == 0
    assert api("GET", "/api/blogs/tartus").json()["entries"] == []
    bad = liveblog("post", "tartus", "x", "--image", "ftp://x", **as_reporter)
    assert bad.returncode == 1 and "image.url" in bad.stderr and "image.alt" in bad.stderr
    down = liveblog("post", "tartus", "x", LIVEBLOG_URL="http://127.0.0.1:9",
                    LIVEBLOG_TOKEN=tokens.reporter)
    assert down.returncode == 1 and "cannot reach" in down.stderr


def test_export_then_import_reproduces_the_log_and_the_replay(
        api: Api, tokens: Tokens, blog: str, redis_server: RedisServer, tmp_path: Path) -> None:
    ids = tell(api, tokens)
    api("PATCH", f"/api/blogs/tartus/entries/{ids[1]}", tokens.editor,
        json={"body": "Corrected: a suicide bomber and a car bomb.", "note": "second device",
              "correction": "An earlier version mentioned one device."})
    api("DELETE", f"/api/blogs/tartus/entries/{ids[2]}", tokens.editor, json={"reason": "dup"})
    source = {"LIVEBLOG_REDIS_URL": redis_server.url}
    exported = liveblog("export", "tartus", **source)
    assert exported.returncode == 0, exported.stderr
    lines = exported.stdout.splitlines()
    assert '"correction":"An earlier version mentioned one device."' in exported.stdout
    assert len(lines) == api("GET", "/api/blogs/tartus").json()["version"] == 19
    dump = tmp_path / "blog.jsonl"
    dump.write_text(exported.stdout)

    empty = start_redis(tmp_path / "other")
    try:
        target = {"LIVEBLOG_REDIS_URL": empty.url}
        imported = liveblog("import", str(dump), **target)
        assert imported.returncode == 0, imported.stderr
        assert "imported 19 events" in imported.stdout
        assert liveblog("export", "tartus", **target).stdout == exported.stdout
        replayed = liveblog("replay", "tartus", **target).stdout
        assert replayed == liveblog("replay", "tartus", **source).stdout
        assert "(correction: An earlier version mentioned one device.)" in replayed
        again = liveblog("import", str(dump), **target)
        assert again.returncode == 2 and "exists already" in again.stderr

        with UvicornThread(app_config(empty.url)) as copy:
            twin = Api(copy.base_url)
            assert twin("GET", "/api/blogs/tartus").json() == \
                api("GET", "/api/blogs/tartus").json()
            assert twin("GET", "/api/blogs").json() == api("GET", "/api/blogs").json()
            twin.http.close()
    finally:
        stop_redis(empty)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines[1:]))
    refused = liveblog("import", str(broken), LIVEBLOG_REDIS_URL=empty.url)
    assert refused.returncode == 1 and "must start with blog-opened" in refused.stderr


def _burst(base_urls: list[str], token: str, count: int) -> list[httpx.Response]:
    """`count` posts sent at once, as a busy newsroom does, spread over the servers."""

    async def send() -> list[httpx.Response]:
        clients = [httpx.AsyncClient(base_url=url, timeout=30) for url in base_urls]
        try:
            return await asyncio.gather(*(
                clients[n % len(clients)].post(
                    "/api/blogs/tartus/entries", json={"body": f"Update {n}"},
                    headers={"Authorization": f"Bearer {token}"})
                for n in range(count)))
        finally:
            for client in clients:
                await client.aclose()

    return run_async(send())


def _as_an_older_version_logged(url: str, version: int) -> int:
    """Append straight to the store what earlier versions accepted and today's API refuses
    (so an import must still take it): image and embed URLs logged before URLs were
    parsed (a port beyond 65535, an unclosed IPv6 bracket, a final newline that slipped
    past the pattern's `$`), more than 32 figures, a figure beyond 10**15. Returns the
    blog's version after."""
    editor = Actor("ed", "editor", "0123456789abcdef")
    events: list[Event] = [
        EntryPosted(entry_id="oldurls1", body="From before URLs were parsed",
                    image=Image(url="https://example.com:99999/a.jpg", alt="Smoke"),
                    embed=Embed(url="https://[x")),
        EntryPosted(entry_id="oldurls2", body="A final newline",
                    embed=Embed(url="https://example.com/video\n")),
        *(FactUpdated(key=f"figure-{n}", label=f"Figure {n}", value=str(n), numeric=n * 1e20)
          for n in range(33)),
    ]

    async def append() -> int:
        store = Store.from_url(url)
        current = version
        for event in events:
            appended = await store.append("tartus", event, editor, utcnow(),
                                          expected_version=current)
            current = appended.recorded.version
        await store.close()
        return current

    return run_async(append())


def test_import_takes_back_a_log_of_concurrent_writes_and_of_older_versions(
        api: Api, tokens: Tokens, blog: str, server: UvicornThread, redis_server: RedisServer,
        redis_url: str, tmp_path: Path) -> None:
    """Finding 2 and 3 of the review: `at` is taken before the append, so concurrent
    writes land with times out of order (by their latency, and by the difference between
    processes' clocks), and what earlier versions accepted must replay."""
    with UvicornThread(app_config(redis_url)) as behind:
        # A second process whose clock is 5 s behind the first one's.
        service = behind.hub().service
        service.clock = lambda: utcnow() - timedelta(seconds=5)
        responses = _burst([server.base_url, behind.base_url], tokens.reporter, 50)
        # And one more from it, surely after the burst: its time is before theirs.
        responses += _burst([behind.base_url], tokens.reporter, 1)
    assert [r.status_code for r in responses] == [201] * 51, responses[0].text
    version = _as_an_older_version_logged(redis_server.url, 52)
    source = {"LIVEBLOG_REDIS_URL": redis_server.url}
    exported = liveblog("export", "tartus", **source)
    assert exported.returncode == 0, exported.stderr
    times = [datetime.fromisoformat(json.loads(line)["at"])
             for line in exported.stdout.splitlines()]
    assert len(times) == version == 52 + 2 + 33
    out_of_order = sum(1 for before, after in itertools.pairwise(times) if after < before)
    assert out_of_order > 0, "the burst landed in order: it tests nothing"
    dump = tmp_path / "blog.jsonl"
    dump.write_text(exported.stdout)

    empty = start_redis(tmp_path / "other")
    try:
        target = {"LIVEBLOG_REDIS_URL": empty.url}
        imported = liveblog("import", str(dump), **target)
        assert imported.returncode == 0, imported.stderr
        assert liveblog("export", "tartus", **target).stdout == exported.stdout
        with UvicornThread(app_config(empty.url)) as copy_:
            twin = Api(copy_.base_url)
            for path in ("/api/blogs/tartus", "/blogs/tartus"):
                assert twin("GET", path).text == api("GET", path).text.replace(
                    server.base_url, copy_.base_url)
            twin.http.close()
    finally:
        stop_redis(empty)


def _at(events: list[dict[str, Any]], kind: str, nth: int = 0) -> dict[str, Any]:
    return [e for e in events if e["type"] == kind][nth]


def _later(events: list[dict[str, Any]], n: int, **changes: Any) -> None:
    events[n].update(changes)


# (what is wrong, how to break a good export, what the refusal must say). Each breaks an
# event half-way through the file, after events an import that appends as it goes would
# already have appended.
BROKEN: list[tuple[str, Callable[[list[dict[str, Any]]], None], str]] = [
    ("slug", lambda ev: ev[0]["data"].update(slug="Not A Slug!"), "line 1 "),
    ("entry id", lambda ev: _at(ev, "entry-posted", 3)["data"].update(entry_id="../x"),
     "entry_id: must be an entry id"),
    ("embed url", lambda ev: _at(ev, "entry-posted", 3)["data"].update(
        embed={"url": "javascript:alert(1)"}), "embed.url: must be an http(s):// URL"),
    ("image url with a space", lambda ev: _at(ev, "entry-posted", 3)["data"].update(
        image={"url": "https://a.example/ onerror=x", "alt": "a"}), "image.url"),
    ("image url size", lambda ev: _at(ev, "entry-posted", 3)["data"].update(
        image={"url": "https://a.example/" + "x" * 1990, "alt": "a"}), "image.url"),
    ("body size", lambda ev: _at(ev, "entry-posted", 3)["data"].update(body="x" * 20001),
     "body: Expected `str` of length <= 20000"),
    ("fact key", lambda ev: _at(ev, "fact-updated", 1)["data"].update(key="Death Toll"),
     "key: must be 1 to 40 lowercase"),
    ("fact source size", lambda ev: _at(ev, "fact-updated", 1)["data"].update(
        source="s" * 201), "source: Expected `str` of length <= 200"),
    ("role", lambda ev: _at(ev, "entry-posted", 3).update(role="admin"), "role"),
    ("a reporter pins", lambda ev: _at(ev, "pin-changed").update(role="reporter"),
     "only editors may pin"),
    ("someone else's entry", lambda ev: _at(ev, "entry-edited").update(
        role="reporter", actor="mallory", actor_id="0123456789abcdef"), "only its author"),
    ("actor name", lambda ev: _at(ev, "entry-posted", 3).update(actor="<script>"), "actor:"),
    ("actor id", lambda ev: _at(ev, "entry-posted", 3).update(actor_id="x y"), "actor_id:"),
    ("time going back", lambda ev: _at(ev, "entry-posted", 3).update(
        at="2001-01-01T00:00:00+00:00"), "its time is more than 60 minutes before"),
    ("time without a zone", lambda ev: _at(ev, "entry-posted", 3).update(
        at="2026-05-23T09:00:00"), "no time zone"),
    ("time from the future", lambda ev: _at(ev, "entry-posted", 3).update(
        at="2999-01-01T00:00:00+00:00"), "in the future"),
    ("stream id", lambda ev: _at(ev, "entry-posted", 3).update(id="1-2-3"),
     "not a stream id"),
    ("stream id order", lambda ev: _at(ev, "entry-posted", 3).update(id="5-0"),
     "does not come after"),
    ("version", lambda ev: _at(ev, "entry-posted", 3).update(version=99), "version 99"),
    ("type", lambda ev: _at(ev, "entry-posted", 3).update(type="entry-edited"),
     "is not its data's"),
    ("correction size", lambda ev: _at(ev, "entry-edited")["data"].update(
        correction="c" * 1001), "correction: Expected `str` of length <= 1000"),
    ("blank correction", lambda ev: _at(ev, "entry-edited")["data"].update(correction=" "),
     "correction: must not be blank"),
    ("not JSON", lambda ev: ev.insert(6, "{not json"), "line 7: not JSON"),
]


def test_import_refuses_a_file_the_api_would_not_have_made_and_appends_nothing(
        api: Api, tokens: Tokens, blog: str, redis_server: RedisServer, tmp_path: Path) -> None:
    ids = tell(api, tokens)
    api("PATCH", f"/api/blogs/tartus/entries/{ids[1]}", tokens.editor,
        json={"body": "Corrected: a suicide bomber and a car bomb.", "note": "second device"})
    exported = liveblog("export", "tartus", LIVEBLOG_REDIS_URL=redis_server.url)
    assert exported.returncode == 0, exported.stderr
    good = [json.loads(line) for line in exported.stdout.splitlines()]
    target = start_redis(tmp_path / "target")
    try:
        for what, breaks, says in BROKEN:
            events: list[Any] = copy.deepcopy(good)
            breaks(events)
            dump = tmp_path / "broken.jsonl"
            dump.write_text("\n".join(e if isinstance(e, str) else json.dumps(e)
                                      for e in events) + "\n")
            refused = liveblog("import", str(dump), LIVEBLOG_REDIS_URL=target.url)
            assert refused.returncode == 1, (what, refused.stdout, refused.stderr)
            assert says in refused.stderr and "line " in refused.stderr, \
                (what, refused.stderr)
            with target.client() as client:
                assert client.keys("*") == [], (what, client.keys("*"))
        dump.write_text(exported.stdout)
        imported = liveblog("import", str(dump), LIVEBLOG_REDIS_URL=target.url)
        assert imported.returncode == 0, imported.stderr
    finally:
        stop_redis(target)


def test_replay_prints_who_did_what_and_the_blog_at_a_moment(
        api: Api, tokens: Tokens, blog: str, redis_server: RedisServer) -> None:
    ids = tell(api, tokens)
    api("DELETE", f"/api/blogs/tartus/entries/{ids[0]}", tokens.editor,
        json={"reason": "superseded"})
    source = {"LIVEBLOG_REDIS_URL": redis_server.url}
    whole = liveblog("replay", "tartus", **source).stdout.splitlines()
    assert len(whole) == 18
    assert "v1    ed (editor): opened the blog 'Blasts in Tartus and Jableh'" in whole[0]
    assert "rania (reporter): posted 'Explosions in two coastal cities' (key event)" in whole[1]
    assert "Deaths: 121 (Syrian Observatory for Human Rights)" in whole[7]
    assert whole[-1].endswith(
        "ed (editor): retracted 'Explosions in two coastal cities': superseded")
    at = liveblog("replay", "tartus", "--at", "6", **source).stdout.splitlines()
    assert at[0].startswith("== Blasts in Tartus and Jableh [live] at version 6")
    assert "   Deaths: at least 80 (Associated Press)" in at
    assert at[-10:] == whole[-10:]
    missing = liveblog("replay", "tartus", "--at", "99", **source)
    assert missing.returncode == 1 and "no event '99'" in missing.stderr
