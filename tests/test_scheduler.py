"""Scheduled entries (issue 10): published within a second of their time by exactly one of
several server processes on one Redis, and still published after the servers were stopped
over their time and started again, even with the index of scheduled entries lost."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx

from tests.sse import reading
from tests.support import Api, Tokens, UvicornThread, app_config, wait_until

ENTRIES = 6


def published_events(api: Api, token: str) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    """entry id -> its entry-published events, from the log."""
    events = api("GET", "/api/blogs/tartus/events?limit=1000", token).json()["events"]
    found: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for event in events:
        if event["type"] == "entry-published":
            found.setdefault(event["data"]["entry_id"], []).append(event)
    return found


def schedule(api: Api, token: str, at: datetime, body: str) -> dict:  # type: ignore[type-arg]
    response = api("POST", "/api/blogs/tartus/entries", token,
                   json={"body": body, "publish": at.isoformat()})
    assert response.status_code == 201, response.text
    entry: dict = response.json()["entry"]  # type: ignore[type-arg]
    assert entry["state"] == "scheduled"
    return entry


def test_two_servers_publish_each_scheduled_entry_once_within_a_second(
        server: UvicornThread, api: Api, tokens: Tokens, blog: str, redis_url: str) -> None:
    with UvicornThread(app_config(redis_url)) as other:
        due: dict[str, datetime] = {}

        async def watch() -> dict[str, dict[str, float]]:
            """When each entry reached a reader of each server (Unix seconds)."""
            arrived: dict[str, dict[str, float]] = {}
            async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as one, \
                    httpx.AsyncClient(base_url=other.base_url, timeout=20) as two, \
                    reading(one, "tartus") as first, reading(two, "tartus") as second:
                # Scheduled once both readers are there, so each must get every entry.
                start = datetime.now(UTC)
                for n in range(ENTRIES):
                    at = start + timedelta(seconds=1.2 + n * 0.15)
                    entry = await asyncio.to_thread(
                        schedule, api, tokens.reporter if n % 2 else tokens.editor, at,
                        f"Update {n}")
                    due[entry["id"]] = datetime.fromisoformat(entry["publish_at"])
                readers = {"first": first, "second": second}

                def note() -> None:
                    for name, reader in readers.items():
                        for message in reader.messages:
                            if message.event == "entry-posted":
                                arrived.setdefault(name, {}).setdefault(
                                    message.data["entry"]["id"], time.time())

                deadline = time.monotonic() + 15
                while any(sum(m.event == "entry-posted" for m in r.messages) < ENTRIES
                          for r in readers.values()):
                    assert time.monotonic() < deadline, "not every entry arrived"
                    note()
                    await asyncio.sleep(0.01)
                note()
            return arrived

        arrived = asyncio.run(watch())
        lateness = []
        for name in ("first", "second"):
            assert set(arrived[name]) == set(due)
            for entry_id, at in due.items():
                late = arrived[name][entry_id] - at.timestamp()
                assert -0.05 < late < 1.0, (name, entry_id, late)
                lateness.append(late)
        print(f"{ENTRIES} entries on 2 servers' readers: {min(lateness) * 1000:.0f} to "
              f"{max(lateness) * 1000:.0f} ms after their time")
        published = published_events(api, tokens.editor)
        assert {entry_id: len(events) for entry_id, events in published.items()} == {
            entry_id: 1 for entry_id in due}
        # Each in the name of whoever scheduled it, marked as the schedule's doing.
        for n, (entry_id, _) in enumerate(due.items()):
            event = published[entry_id][0]
            assert event["data"]["scheduled"] is True
            assert event["actor"] == ("rania" if n % 2 else "ed")
        state = api("GET", "/api/blogs/tartus").json()
        assert [e["body"] for e in state["entries"]] == [
            f"Update {n}" for n in reversed(range(ENTRIES))]
        assert api("GET", "/api/blogs/tartus/queue", tokens.editor).json()["entries"] == []
        schedulers = [s.app.state.scheduler for s in (server, other)]
        assert sum(s.published for s in schedulers) == ENTRIES


def test_a_schedule_survives_the_servers_stopping_over_its_time(
        api: Api, tokens: Tokens, blog: str, redis_url: str, server: UvicornThread,
        raw_redis: object) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1.0)
    kept = schedule(api, tokens.editor, soon, "Published after a restart")
    lost = schedule(api, tokens.editor, soon, "Published with its index lost")
    server.__exit__()
    wait_until(lambda: datetime.now(UTC) > soon + timedelta(seconds=0.5),
               what="the scheduled time to pass with no server running")
    # The index is derived: a crash between the append and its index write loses it.
    raw_redis.zrem("{liveblog}:due", f"tartus {lost['id']}")  # type: ignore[attr-defined]
    with UvicornThread(app_config(redis_url)) as one, \
            UvicornThread(app_config(redis_url)) as two:
        started = time.monotonic()
        with httpx.Client(base_url=one.base_url, timeout=10) as http:
            wait_until(lambda: len(http.get("/api/blogs/tartus").json()["entries"]) == 2,
                       timeout=5, what="both entries to be published")
        assert time.monotonic() - started < 2.0
        later = Api(two.base_url)
        published = published_events(later, tokens.editor)
        later.http.close()
        assert sorted(published) == sorted([kept["id"], lost["id"]])
        assert all(len(events) == 1 for events in published.values())


def test_a_schedule_waits_while_its_blog_has_ended(
        api: Api, tokens: Tokens, blog: str, server: UvicornThread, raw_redis: object) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=0.6)
    entry = schedule(api, tokens.editor, soon, "After the end")
    member = f"tartus {entry['id']}"
    assert raw_redis.zscore("{liveblog}:due", member) is not None  # type: ignore[attr-defined]
    assert api("PATCH", "/api/blogs/tartus", tokens.editor, json={"status": "ended"}).is_success
    # Its time came on an ended blog: the scheduler looked, and let it wait, unpublished.
    wait_until(lambda: raw_redis.zscore("{liveblog}:due", member) is None,  # type: ignore[attr-defined]
               what="the scheduler to set it aside")
    assert api("GET", "/api/blogs/tartus").json()["entries"] == []
    assert api("GET", "/api/blogs/tartus/queue", tokens.editor).json()["entries"][0][
        "state"] == "scheduled"
    assert api("PATCH", "/api/blogs/tartus", tokens.editor, json={"status": "live"}).is_success
    started = time.monotonic()
    wait_until(lambda: [e["id"] for e in api("GET", "/api/blogs/tartus").json()["entries"]]
               == [entry["id"]], timeout=3, what="publishing once the blog is reopened")
    assert time.monotonic() - started < 1.0
    # (Counted once its append returns, which may be just after the read above saw it.)
    wait_until(lambda: server.app.state.scheduler.published == 1, what="the count")
    assert [len(events) for events in published_events(api, tokens.editor).values()] == [1]
