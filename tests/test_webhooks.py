"""Webhooks (liveblog/webhooks.py), against a real Redis, real servers and real receivers:
each receiver is an HTTP server in this process, on its own port, that verifies nothing
itself and records what it was sent, for the tests to verify with the `standardwebhooks`
package, as a newsroom's receiver would."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import redis
import redis.cluster
import standardwebhooks

from liveblog.domain.webhooks import EVENT_KINDS, backoff
from liveblog.webhooks import Retry, is_public
from tests.processes import Processes, Served
from tests.sse import reading
from tests.support import (
    Api,
    Received,
    Receiver,
    Tokens,
    UvicornThread,
    app_config,
    assert_problem,
    create_tokens,
    free_port,
    wait_until,
)

# Small enough for a test to see three retries in about a second.
QUICK = Retry(base=0.2, cap=5.0, give_up_after=3600.0)


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(answer: Callable[[int], int] = lambda n: 200) -> Receiver:
        made.append(Receiver(answer))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def client() -> Iterator[Callable[[str], Api]]:
    """Api clients for servers a test starts itself, closed when it ends."""
    made: list[Api] = []

    def make(base_url: str) -> Api:
        made.append(Api(base_url))
        return made[-1]

    yield make
    for api in made:
        api.http.close()


def register(api: Api, token: str, url: str, **options: object) -> dict:  # type: ignore[type-arg]
    response = api("POST", "/api/webhooks", token, json={"url": url, **options})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def verified(secret: str, received: Received) -> dict:  # type: ignore[type-arg]
    """The body, once its signature checks out (raises if it does not)."""
    payload = standardwebhooks.Webhook(secret).verify(received.body, received.headers)
    assert isinstance(payload, dict)
    return payload


def public_events(api: Api, token: str, slug: str) -> list[dict]:  # type: ignore[type-arg]
    """The blog's log but blog-opened (which no reader's stream carries either)."""
    events = api("GET", f"/api/blogs/{slug}/events", token, params={"limit": 1000}).json()
    return [e for e in events["events"] if e["type"] != "blog-opened"]


def settled(api: Api, token: str, raw: redis.Redis | redis.cluster.RedisCluster,
            slugs: list[str]) -> bool:
    """Every change of `slugs` is queued and every outbox is empty: nothing more is coming."""
    cursors = raw.hgetall("{liveblog}:webhooks:cursors")
    for slug in slugs:
        last = api("GET", f"/api/blogs/{slug}").json()["last_event_id"]
        if cursors.get(slug.encode()) != last.encode():
            return False
    return all(w["pending"] == 0 for w in api("GET", "/api/webhooks", token).json()["webhooks"])


def tell_a_story(api: Api, tokens: Tokens, slug: str = "tartus") -> None:
    """A short story with one event of each kind a webhook carries."""
    def ok(response: httpx.Response) -> dict:  # type: ignore[type-arg]
        assert response.status_code in (200, 201), response.text
        return response.json()  # type: ignore[no-any-return]

    ok(api("POST", "/api/blogs", tokens.editor, json={"slug": slug, "title": "Blasts"}))
    first = ok(api("POST", f"/api/blogs/{slug}/entries", tokens.reporter,
                   json={"body": "An explosion at the bus station.", "title": "Blast"}))
    entry = first["entry"]["id"]
    ok(api("PATCH", f"/api/blogs/{slug}/entries/{entry}", tokens.reporter,
           json={"body": "Two explosions at the bus station."}))
    ok(api("PUT", f"/api/blogs/{slug}/facts/deaths", tokens.reporter,
           json={"label": "Deaths", "value": "at least 80", "numeric": 80, "source": "AP"}))
    ok(api("PUT", f"/api/blogs/{slug}/pinned", tokens.editor, json={"entry_id": entry}))
    second = ok(api("POST", f"/api/blogs/{slug}/entries", tokens.reporter,
                    json={"body": "A duplicate report."}))
    ok(api("DELETE", f"/api/blogs/{slug}/entries/{second['entry']['id']}", tokens.editor,
           json={"reason": "duplicate"}))
    ok(api("PATCH", f"/api/blogs/{slug}", tokens.editor, json={"status": "ended"}))


# -- registering -----------------------------------------------------------------------------


def test_an_editor_registers_lists_and_deletes_an_endpoint(api: Api, tokens: Tokens) -> None:
    response = api("POST", "/api/webhooks", tokens.editor,
                   json={"url": "https://alerts.example/hooks/liveblog"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"/api/webhooks/{created['id']}"
    assert created["secret"].startswith("whsec_")
    standardwebhooks.Webhook(created["secret"])  # a secret the library takes
    assert created["events"] == list(EVENT_KINDS) and created["blogs"] is None

    filtered = register(api, tokens.second_editor, "http://archive.example:8080/in",
                        events=["fact-updated", "entry-posted", "fact-updated"],
                        blogs=["tartus", "jableh", "tartus"])
    assert filtered["events"] == ["entry-posted", "fact-updated"]  # the usual order, once
    assert filtered["blogs"] == ["tartus", "jableh"]
    assert filtered["secret"] != created["secret"]

    listed = api("GET", "/api/webhooks", tokens.editor).json()["webhooks"]
    assert [w["id"] for w in listed] == [created["id"], filtered["id"]]
    assert all("secret" not in w for w in listed)  # shown once, at creation
    assert listed[0]["url"] == "https://alerts.example/hooks/liveblog"
    assert listed[0]["disabled"] is False and listed[0]["disabled_at"] is None
    assert listed[0]["pending"] == 0 and listed[1]["created_by"] == "eve"
    assert api("GET", f"/api/webhooks/{created['id']}/deliveries",
               tokens.editor).json() == {"deliveries": []}

    assert api("DELETE", f"/api/webhooks/{created['id']}", tokens.editor).status_code == 204
    assert [w["id"] for w in api("GET", "/api/webhooks", tokens.editor).json()["webhooks"]] \
        == [filtered["id"]]
    assert_problem(api("DELETE", f"/api/webhooks/{created['id']}", tokens.editor), 404)
    assert_problem(api("GET", f"/api/webhooks/{created['id']}/deliveries", tokens.editor),
                   404)
    assert_problem(api("GET", "/api/webhooks/not-an-id/deliveries", tokens.editor), 404)


def test_bad_registrations_are_refused_and_store_nothing(
        api: Api, tokens: Tokens, raw_redis: redis.Redis) -> None:
    cases: list[tuple[object, set[str]]] = [
        ({"url": "ftp://example.com/x"}, {"url"}),
        ({"url": "https://user:pw@example.com/x"}, {"url"}),
        ({"url": "https://example.com:99999/x"}, {"url"}),
        ({"url": "https://example.com:0/x"}, {"url"}),
        ({"url": "https://" + "a" * 2000 + ".example/"}, {"url"}),
        ({"url": "https:///x"}, {"url"}),
        ({"url": "https://example.com/x", "events": ["entry-deleted"]}, {"events[0]"}),
        ({"url": "https://example.com/x", "events": []}, {"events"}),
        ({"url": "https://example.com/x", "blogs": ["Not A Slug"]}, {"blogs[0]"}),
        ({"url": "https://example.com/x", "blogs": []}, {"blogs"}),
        ({"url": "https://example.com/x", "secret": "mine"}, {"secret"}),
        ({}, {"url"}),
    ]
    for body, fields in cases:
        assert_problem(api("POST", "/api/webhooks", tokens.editor, json=body), 422,
                       fields=fields)
    assert_problem(api("POST", "/api/webhooks", tokens.editor, content=b"{",
                       headers={"Content-Type": "application/json"}), 400)
    assert api("GET", "/api/webhooks", tokens.editor).json() == {"webhooks": []}
    assert not raw_redis.keys("*webhook*")


def test_only_editors_manage_webhooks(api: Api, tokens: Tokens) -> None:
    hook = register(api, tokens.editor, "https://alerts.example/in")
    calls = [("POST", "/api/webhooks", {"url": "https://other.example/"}),
             ("GET", "/api/webhooks", None),
             ("GET", f"/api/webhooks/{hook['id']}/deliveries", None),
             ("DELETE", f"/api/webhooks/{hook['id']}", None)]
    for method, path, body in calls:
        assert_problem(api(method, path, tokens.reporter, json=body), 403)
        assert_problem(api(method, path, None, json=body), 401)
    assert len(api("GET", "/api/webhooks", tokens.editor).json()["webhooks"]) == 1


def test_forbidding_private_addresses(redis_url: str, receivers: Callable[..., Receiver],
                                      raw_redis: redis.Redis,
        client: Callable[[str], Api]) -> None:
    """At registration (the host, or what it resolves to), and at every delivery: an
    endpoint whose name now resolves inward (here: registered while it was allowed)."""
    receiver = receivers()
    tokens = create_tokens(redis_url)
    with UvicornThread(app_config(redis_url)) as lax:
        allowed = register(client(lax.base_url), tokens.editor, receiver.url)
    config = app_config(redis_url, webhooks_forbid_private=True)
    with UvicornThread(config, webhook_retry=QUICK) as server:
        api = client(server.base_url)
        for url in ("http://127.0.0.1:9/x", "http://localhost:9/x", "http://10.1.2.3/x",
                    "http://169.254.169.254/latest", "http://[::1]:9/x", "http://0.0.0.0/",
                    "http://100.64.0.1/", "http://[::ffff:127.0.0.1]/"):
            problem = assert_problem(api("POST", "/api/webhooks", tokens.editor,
                                         json={"url": url}), 422, fields={"url"})
            assert "not a public address" in problem["errors"][0]["message"], url
        problem = assert_problem(api("POST", "/api/webhooks", tokens.editor,
                                     json={"url": "https://no-such-host.invalid/"}), 422)
        assert "does not resolve" in problem["errors"][0]["message"]
        assert len(api("GET", "/api/webhooks", tokens.editor).json()["webhooks"]) == 1

        api("POST", "/api/blogs", tokens.editor, json={"slug": "tartus", "title": "Blasts"})
        api("POST", "/api/blogs/tartus/entries", tokens.reporter, json={"body": "Blast"})
        path = f"/api/webhooks/{allowed['id']}/deliveries"
        wait_until(lambda: len(api("GET", path, tokens.editor).json()["deliveries"]) >= 2,
                   what="two refused attempts")
        attempts = api("GET", path, tokens.editor).json()["deliveries"]
        assert all(a["status_code"] is None and "not a public address" in a["error"]
                   for a in attempts), attempts
        assert receiver.requests() == []


def test_what_counts_as_public() -> None:
    for private in ("127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
                    "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1%eth0", "fc00::1",
                    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2001:db8::1"):
        assert not is_public(private), private
    for public in ("93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"):
        assert is_public(public), public


def test_the_backoff_doubles_from_the_base_within_its_jitter_up_to_the_cap() -> None:
    exact = [backoff(n, base=1, cap=600, jitter=0.2, draw=0.5) for n in range(1, 12)]
    assert exact == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600]
    assert backoff(3, base=1, cap=600, jitter=0.2, draw=0.0) == pytest.approx(3.2)
    assert backoff(3, base=1, cap=600, jitter=0.2, draw=1.0) == pytest.approx(4.8)
    assert backoff(10_000, base=1, cap=600, jitter=0.2, draw=1.0) == 600


# -- delivering ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["single", "cluster"], indirect=True)
def test_a_receiver_gets_every_event_of_a_story_in_order_signed(
        api: Api, tokens: Tokens, receivers: Callable[..., Receiver], backend: str) -> None:
    receiver = receivers()
    hook = register(api, tokens.editor, receiver.url)
    tell_a_story(api, tokens)
    logged = public_events(api, tokens.editor, "tartus")
    assert [e["type"] for e in logged] == [
        "entry-posted", "entry-edited", "fact-updated", "pin-changed", "entry-posted",
        "entry-retracted", "blog-updated"]
    wait_until(lambda: len(receiver.delivered()) >= len(logged), what="every event delivered")

    got = receiver.delivered()
    bodies = [verified(hook["secret"], r) for r in got]
    assert [r.headers["webhook-id"] for r in got] == [e["id"] for e in logged]
    assert [b["type"] for b in bodies] == [e["type"] for e in logged]
    assert [b["data"]["event_id"] for b in bodies] == [e["id"] for e in logged]
    assert [b["data"]["version"] for b in bodies] == [e["version"] for e in logged]
    assert all(b["data"]["blog"] == "tartus" for b in bodies)
    assert [b["timestamp"] for b in bodies] == [e["at"] for e in logged]
    assert all(r.headers["content-type"] == "application/json" for r in got)
    assert all(r.headers["webhook-signature"].startswith("v1,") for r in got)
    # The change is the one readers' streams carry.
    posted, edited = bodies[0]["data"]["change"], bodies[1]["data"]["change"]
    assert posted["entry"]["title"] == "Blast" and "<p>An explosion" in posted["entry"]["html"]
    assert edited["entry"]["body"] == "Two explosions at the bus station."
    assert bodies[2]["data"]["change"]["fact"]["value"] == "at least 80"
    assert bodies[3]["data"]["change"]["pinned_entry_id"] == posted["entry"]["id"]
    assert bodies[5]["data"]["change"]["entry_id"] == bodies[4]["data"]["change"]["entry"]["id"]
    assert bodies[6]["data"]["change"]["status"] == "ended"
    # A tampered body does not verify.
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(hook["secret"]).verify(got[0].body + b" ", got[0].headers)

    attempts = api("GET", f"/api/webhooks/{hook['id']}/deliveries", tokens.editor).json()
    assert [a["event_id"] for a in attempts["deliveries"]] == [e["id"] for e in logged][::-1]
    assert all(a["status_code"] == 200 and a["error"] is None and a["attempt"] == 1
               and a["next_retry_at"] is None for a in attempts["deliveries"])
    assert len(receiver.requests()) == len(logged)  # nothing twice


def test_a_draft_is_never_sent_and_publishing_it_is_an_entry_posted(
        api: Api, tokens: Tokens, receivers: Callable[..., Receiver]) -> None:
    receiver = receivers()
    hook = register(api, tokens.editor, receiver.url)
    api("POST", "/api/blogs", tokens.editor, json={"slug": "tartus", "title": "Blasts"})
    draft = api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                json={"body": "Unconfirmed: a third blast.", "publish": "draft"})
    assert draft.status_code == 201, draft.text
    entry = draft.json()["entry"]["id"]
    fixed = api("PATCH", f"/api/blogs/tartus/entries/{entry}", tokens.reporter,
                json={"body": "Confirmed: a third blast."})
    assert fixed.status_code == 200, fixed.text
    published = api("POST", f"/api/blogs/tartus/entries/{entry}/publish", tokens.editor)
    assert published.status_code == 200, published.text
    wait_until(lambda: len(receiver.delivered()) >= 1, what="the published entry delivered")
    last = api("GET", "/api/blogs/tartus").json()["last_event_id"]
    wait_until(lambda: api("GET", "/api/webhooks", tokens.editor).json()["webhooks"][0][
        "pending"] == 0 and last in {r.headers["webhook-id"] for r in receiver.delivered()},
        what="everything queued delivered")
    [only] = [verified(hook["secret"], r) for r in receiver.delivered()]
    assert only["type"] == "entry-posted"
    assert only["data"]["change"]["entry"]["body"] == "Confirmed: a third blast."
    assert "Unconfirmed" not in json.dumps(only)


def test_a_failed_delivery_is_retried_with_backoff(redis_url: str, tokens: Tokens,
                                                   receivers: Callable[..., Receiver],
        client: Callable[[str], Api]) -> None:
    receiver = receivers(lambda n: 500 if n < 2 else 200)
    with UvicornThread(app_config(redis_url), webhook_retry=QUICK) as server:
        api = client(server.base_url)
        hook = register(api, tokens.editor, receiver.url)
        api("POST", "/api/blogs", tokens.editor, json={"slug": "tartus", "title": "Blasts"})
        posted = api("POST", "/api/blogs/tartus/entries", tokens.reporter,
                     json={"body": "Blast"}).json()
        wait_until(lambda: receiver.delivered(), what="the third attempt to be taken")
        path = f"/api/webhooks/{hook['id']}/deliveries"
        wait_until(lambda: len(api("GET", path, tokens.editor).json()["deliveries"]) == 3,
                   what="three attempts recorded")
        newest_first = api("GET", path, tokens.editor).json()["deliveries"]
        listed = api("GET", "/api/webhooks", tokens.editor).json()["webhooks"]
    got = receiver.requests()
    assert [r.status for r in got] == [500, 500, 200]
    # The same message each time: same id, same body, each signed afresh.
    assert {r.headers["webhook-id"] for r in got} == {posted["event_id"]}
    assert len({r.body for r in got}) == 1
    assert all(verified(hook["secret"], r)["type"] == "entry-posted" for r in got)

    first, second, third = newest_first[::-1]
    assert [a["attempt"] for a in (first, second, third)] == [1, 2, 3]
    assert [a["status_code"] for a in (first, second, third)] == [500, 500, 200]
    assert first["error"] == second["error"] == "answered 500" and third["error"] is None
    assert third["next_retry_at"] is None
    at = [datetime.fromisoformat(a["at"]).timestamp() for a in (first, second, third)]
    ended = [a + f["duration_ms"] / 1000 for a, f in zip(at, (first, second), strict=False)]
    due = [datetime.fromisoformat(a["next_retry_at"]).timestamp() for a in (first, second)]
    # Each retry was due base, then 2 base, after the failure ended (within the jitter, a
    # fifth either way), and came when it was due, not before.
    for n, delay in enumerate((QUICK.base, 2 * QUICK.base)):
        waited = due[n] - ended[n]
        assert 0.8 * delay - 0.02 <= waited <= 1.2 * delay + 0.02, (n, waited)
        assert due[n] - 0.005 <= at[n + 1] <= due[n] + 1.0, (n, at[n + 1] - due[n])
    assert listed[0]["pending"] == 0 and listed[0]["disabled"] is False


def test_an_endpoint_failing_for_the_whole_window_is_disabled(
        redis_url: str, tokens: Tokens, receivers: Callable[..., Receiver],
        client: Callable[[str], Api]) -> None:
    failing, healthy = receivers(lambda n: 503), receivers()
    retry = Retry(base=0.005, cap=0.01, give_up_after=2.0)
    with UvicornThread(app_config(redis_url), webhook_retry=retry) as server:
        api = client(server.base_url)
        hook = register(api, tokens.editor, failing.url)
        api("POST", "/api/blogs", tokens.editor, json={"slug": "tartus", "title": "Blasts"})
        api("POST", "/api/blogs/tartus/entries", tokens.reporter, json={"body": "Blast"})

        def listed() -> dict:  # type: ignore[type-arg]
            return api("GET", "/api/webhooks", tokens.editor).json()["webhooks"][0]  # type: ignore[no-any-return]

        wait_until(lambda: listed()["disabled"], what="the endpoint to be disabled")
        disabled = listed()
        assert disabled["disabled_at"] is not None and disabled["pending"] == 1
        deliveries = api("GET", f"/api/webhooks/{hook['id']}/deliveries",
                         tokens.editor).json()["deliveries"]
        tried = len(failing.requests())
        assert tried > 50 and len(deliveries) == 50  # the list is bounded
        last = deliveries[0]
        assert last["attempt"] == tried and last["next_retry_at"] is None
        assert last["status_code"] == 503 and last["error"] == "answered 503"
        disabled_at = datetime.fromisoformat(disabled["disabled_at"])
        assert 0 <= (disabled_at - datetime.fromisoformat(last["at"])).total_seconds() < 0.5
        assert (disabled_at - datetime.fromisoformat(
            disabled["created_at"])).total_seconds() >= retry.give_up_after

        # Nothing more is queued for it, nor tried: another endpoint gets the next post.
        register(api, tokens.editor, healthy.url)
        api("POST", "/api/blogs/tartus/entries", tokens.reporter, json={"body": "More"})
        wait_until(lambda: healthy.delivered(), what="the healthy endpoint's delivery")
        assert listed()["pending"] == 1 and listed()["disabled"]
        assert len(failing.requests()) == tried


def test_filters_pick_the_kinds_and_blogs(api: Api, tokens: Tokens,
                                          receivers: Callable[..., Receiver],
                                          raw_redis: redis.Redis) -> None:
    figures, other_blog, posts_here = receivers(), receivers(), receivers()
    register(api, tokens.editor, figures.url, events=["fact-updated"])
    register(api, tokens.editor, other_blog.url, blogs=["jableh"])
    register(api, tokens.editor, posts_here.url, blogs=["tartus"], events=["entry-posted"])
    for slug in ("tartus", "jableh"):
        api("POST", "/api/blogs", tokens.editor, json={"slug": slug, "title": slug.title()})
        api("POST", f"/api/blogs/{slug}/entries", tokens.reporter, json={"body": f"In {slug}"})
        api("PUT", f"/api/blogs/{slug}/facts/deaths", tokens.reporter,
            json={"label": "Deaths", "value": "12"})
    api("PATCH", "/api/blogs/tartus", tokens.editor, json={"title": "Blasts in Tartus"})
    wait_until(lambda: settled(api, tokens.editor, raw_redis, ["tartus", "jableh"]),
               what="every change queued and delivered")

    def seen(receiver: Receiver) -> list[tuple[str, str]]:
        return [(r.json["data"]["blog"], r.json["type"]) for r in receiver.delivered()]

    assert seen(figures) == [("tartus", "fact-updated"), ("jableh", "fact-updated")]
    assert seen(other_blog) == [("jableh", "entry-posted"), ("jableh", "fact-updated")]
    assert seen(posts_here) == [("tartus", "entry-posted")]


def test_an_endpoint_gets_what_is_logged_after_it_is_registered(
        api: Api, tokens: Tokens, receivers: Callable[..., Receiver],
        raw_redis: redis.Redis) -> None:
    api("POST", "/api/blogs", tokens.editor, json={"slug": "tartus", "title": "Blasts"})
    api("POST", "/api/blogs/tartus/entries", tokens.reporter, json={"body": "Before"})
    receiver = receivers()
    register(api, tokens.editor, receiver.url)
    api("POST", "/api/blogs/tartus/entries", tokens.reporter, json={"body": "After"})
    wait_until(lambda: settled(api, tokens.editor, raw_redis, ["tartus"]),
               what="every change queued and delivered")
    assert [r.json["data"]["change"]["entry"]["body"] for r in receiver.delivered()] == ["After"]


def test_a_restart_between_an_event_and_its_delivery_still_delivers_it(
        tmp_path: Path, processes: Processes, receivers: Callable[..., Receiver],
        client: Callable[[str], Api]) -> None:
    """`liveblog serve` (its embedded Redis in its data directory) is stopped while the
    receiver still refuses the event (503), and started again; the new process delivers
    it, then what comes next, in order."""
    accepting = threading.Event()
    receiver = receivers(lambda n: 200 if accepting.is_set() else 503)
    served = Served(processes, tmp_path / "var")
    token = served.editor_token()
    api = client(served.url)
    hook = register(api, token, receiver.url)
    api("POST", "/api/blogs", token, json={"slug": "tartus", "title": "Blasts"})
    first = api("POST", "/api/blogs/tartus/entries", token, json={"body": "First"}).json()
    wait_until(lambda: receiver.requests(), what="a first, refused, attempt")
    output = served.stop()
    assert "Traceback" not in output, output
    assert receiver.delivered() == []

    accepting.set()
    served = Served(processes, tmp_path / "var")
    api = client(served.url)
    second = api("POST", "/api/blogs/tartus/entries", token, json={"body": "Second"}).json()
    wait_until(lambda: len(receiver.delivered()) >= 2, what="both delivered")
    got = receiver.delivered()
    assert [verified(hook["secret"], r)["data"]["event_id"] for r in got] == [
        first["event_id"], second["event_id"]]
    attempts = api("GET", f"/api/webhooks/{hook['id']}/deliveries", token).json()["deliveries"]
    first_attempts = [a for a in attempts if a["event_id"] == first["event_id"]]
    # Its count of attempts carried over the restart.
    assert first_attempts[0]["status_code"] == 200
    assert first_attempts[0]["attempt"] == len(first_attempts) >= 2
    assert "Traceback" not in served.stop()


def test_two_servers_on_one_redis_deliver_each_event_once(
        redis_url: str, tokens: Tokens, receivers: Callable[..., Receiver],
        raw_redis: redis.Redis,
        client: Callable[[str], Api]) -> None:
    """One of them delivers; when it stops, it hands over to the other, which carries on."""
    receiver = receivers()
    servers = [UvicornThread(app_config(redis_url)), UvicornThread(app_config(redis_url))]
    for server in servers:
        server.__enter__()
    try:
        apis = [client(server.base_url) for server in servers]
        hook = register(apis[0], tokens.editor, receiver.url)
        apis[1]("POST", "/api/blogs", tokens.editor, json={"slug": "tartus", "title": "Blasts"})
        for n in range(10):
            response = apis[n % 2]("POST", "/api/blogs/tartus/entries", tokens.reporter,
                                   json={"body": f"Update {n}"})
            assert response.status_code == 201
        wait_until(lambda: settled(apis[0], tokens.editor, raw_redis, ["tartus"]),
                   what="every change delivered")
        leading = [server.app.state.webhooks.leading for server in servers]
        assert sorted(leading) == [False, True]
        leader, follower = (0, 1) if leading[0] else (1, 0)
        servers[leader].__exit__(None, None, None)  # it hands the lease back

        for n in range(10, 13):
            apis[follower]("POST", "/api/blogs/tartus/entries", tokens.reporter,
                           json={"body": f"Update {n}"})
        wait_until(lambda: settled(apis[follower], tokens.editor, raw_redis, ["tartus"]),
                   what="the rest delivered by the other server")
        assert servers[follower].app.state.webhooks.leading
    finally:
        for server in servers:
            if server.thread.is_alive():
                server.__exit__(None, None, None)
    bodies = [verified(hook["secret"], r)["data"]["change"]["entry"]["body"]
              for r in receiver.requests()]
    assert bodies == [f"Update {n}" for n in range(13)]  # each once, in order


def test_a_hanging_endpoint_delays_neither_another_endpoint_nor_readers(
        redis_url: str, tokens: Tokens, receivers: Callable[..., Receiver],
        client: Callable[[str], Api]) -> None:
    hanging, prompt = receivers(), receivers()
    hanging.gate.clear()
    config = app_config(redis_url, webhooks_timeout_seconds=30)
    with UvicornThread(config) as server:
        api = client(server.base_url)
        register(api, tokens.editor, hanging.url)
        register(api, tokens.editor, prompt.url)
        api("POST", "/api/blogs", tokens.editor, json={"slug": "tartus", "title": "Blasts"})

        async def scenario() -> list[float]:
            took = []
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http, \
                    reading(http, "tartus") as reader:
                for n in range(3):
                    started = time.monotonic()
                    posted = await http.post(
                        "/api/blogs/tartus/entries", json={"body": f"Update {n}"},
                        headers={"Authorization": f"Bearer {tokens.reporter}"})
                    assert posted.status_code == 201
                    # Seconds at most, however loaded the machine: the hanging endpoint
                    # holds its delivery for 30.
                    await reader.wait_for(2 + n, within=5)
                    while len(prompt.delivered()) < n + 1:
                        assert time.monotonic() - started < 5, "the prompt endpoint waited"
                        await asyncio.sleep(0.01)
                    took.append(time.monotonic() - started)
            return took

        took = asyncio.run(scenario())
        # The hanging one holds its first delivery, unanswered, all along.
        assert len(hanging.requests()) == 1 and hanging.requests()[0].status is None
    print(f"a prompt endpoint's deliveries beside a hanging one: {took}")
    assert [r.json["data"]["change"]["entry"]["body"] for r in prompt.delivered()] == [
        "Update 0", "Update 1", "Update 2"]


def test_the_readmes_receiver_verifies_and_takes_deliveries(
        api: Api, tokens: Tokens, tmp_path: Path, processes: Processes) -> None:
    """The receiver the README shows, run as written (but for its port)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("\n## Webhooks\n"):readme.index("\n## Security")]
    [code] = re.findall(r"```python\n(.*?)```", section, re.S)
    port = free_port()
    assert '("", 8080)' in code
    hook = register(api, tokens.editor, f"http://127.0.0.1:{port}/")
    spawned = processes.spawn(
        [sys.executable, "-u", "-c", code.replace('("", 8080)', f'("127.0.0.1", {port})')],
        env={**os.environ, "LIVEBLOG_WEBHOOK_SECRET": hook["secret"]},
        log=tmp_path / "receiver.out")
    wait_until(lambda: _listens(port), what="the README's receiver to listen")
    forged = httpx.post(f"http://127.0.0.1:{port}/", content=b'{"type": "entry-posted"}',
                        headers={"webhook-id": "1-0", "webhook-timestamp": str(int(time.time())),
                                 "webhook-signature": "v1,bm90IGEgc2lnbmF0dXJl"})
    assert forged.status_code == 400
    api("POST", "/api/blogs", tokens.editor, json={"slug": "tartus", "title": "Blasts"})
    api("POST", "/api/blogs/tartus/entries", tokens.reporter, json={"body": "Blast"})
    path = f"/api/webhooks/{hook['id']}/deliveries"
    wait_until(lambda: api("GET", path, tokens.editor).json()["deliveries"],
               what="a delivery to the README's receiver")
    [attempt] = api("GET", path, tokens.editor).json()["deliveries"]
    assert attempt["status_code"] == 204 and attempt["type"] == "entry-posted"
    wait_until(lambda: "entry-posted {" in spawned.output(), what="the receiver to print it")
    assert "Blast" in spawned.output()


def _listens(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
