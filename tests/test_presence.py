"""Presence (issue 10): who is signed in on a blog, who has which entry open, and the soft
edit lock that holds off others' edits; over HTTP to real uvicorn servers on a real Redis.
None of it is ever in the log."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import redis

from tests.support import Api, Tokens, UvicornThread, app_config, wait_until

PRESENCE = "/api/blogs/tartus/presence"
PROBLEM = "application/problem+json"
LOCKED = "https://liveblog.dev/problems/entry-locked"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def post(api: Api, token: str, body: str) -> str:
    response = api("POST", "/api/blogs/tartus/entries", token, json={"body": body})
    assert response.status_code == 201, response.text
    entry_id: str = response.json()["entry"]["id"]
    return entry_id


def beat(api: Api, token: str, editing: str | None = None) -> dict[str, Any]:
    response = api("POST", PRESENCE, token, json={"editing": editing})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def presence(api: Api, token: str) -> dict[str, Any]:
    response = api("GET", PRESENCE, token)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def identity(api: Api, token: str) -> str:
    me: str = api("GET", "/api/me", token).json()["id"]
    return me


def events(api: Api, token: str) -> list[tuple[str, str]]:
    page = api("GET", "/api/blogs/tartus/events", token, params={"limit": 1000}).json()
    return [(e["type"], e["id"]) for e in page["events"]]


def test_who_is_on_the_blog_and_what_they_have_open(api: Api, tokens: Tokens,
                                                    blog: str) -> None:
    entry = post(api, tokens.reporter, "Blast at the Tartus bus station")
    before = datetime.now().astimezone()
    first = beat(api, tokens.reporter)
    assert [p["name"] for p in first["people"]] == ["rania"] and first["locks"] == []
    answered = beat(api, tokens.editor, entry)
    # A beat answers what a read does.
    assert answered == presence(api, tokens.reporter) == presence(api, tokens.editor)
    people = {p["name"]: p for p in answered["people"]}
    assert list(people) == ["ed", "rania"]  # by name
    assert people["ed"] == {
        "id": identity(api, tokens.editor), "name": "ed", "display_name": "ed",
        "role": "editor", "editing": entry, "seen_at": people["ed"]["seen_at"]}
    assert (people["rania"]["role"], people["rania"]["editing"]) == ("reporter", None)
    # The byline of the moment: a new display name shows from the next beat.
    renamed = api("PATCH", f"/api/people/{identity(api, tokens.reporter)}", tokens.editor,
                  json={"display_name": "Rania Abouzeid"})
    assert renamed.status_code == 200, renamed.text
    again = {p["name"]: p for p in beat(api, tokens.reporter)["people"]}
    assert again["rania"]["display_name"] == "Rania Abouzeid"
    for person in people.values():
        seen = datetime.fromisoformat(person["seen_at"])
        assert before - timedelta(seconds=1) <= seen <= datetime.now().astimezone()
    [lock] = answered["locks"]
    assert lock["entry_id"] == entry
    assert lock["holder"] == {"id": identity(api, tokens.editor), "name": "ed"}
    expires = datetime.fromisoformat(lock["expires_at"])
    assert timedelta(seconds=25) < expires - before < timedelta(seconds=35)

    # The editor closes the entry: the lock goes, the editor stays.
    closed = beat(api, tokens.editor, None)
    assert closed["locks"] == [] and [p["editing"] for p in closed["people"]] == [None, None]


def test_a_lock_holds_off_anyone_elses_edit_unless_they_override(
        api: Api, tokens: Tokens, blog: str) -> None:
    entry = post(api, tokens.reporter, "At least 80 dead")
    path = f"/api/blogs/tartus/entries/{entry}"
    beat(api, tokens.reporter, entry)  # rania, its author, has it open
    # Another editor opening it does not take it: rania keeps the lock, both show it open.
    seen = beat(api, tokens.editor, entry)
    assert [lock["holder"]["name"] for lock in seen["locks"]] == ["rania"]
    assert {p["name"]: p["editing"] for p in seen["people"]} == {"ed": entry, "rania": entry}

    logged = events(api, tokens.editor)
    refused = problem(api("PATCH", path, tokens.editor, json={"body": "At least 100 dead"},
                          headers={"If-Match": '"1"'}), 409)
    assert refused["type"] == LOCKED and refused["holder"] == "rania"
    assert refused["expires_at"] == seen["locks"][0]["expires_at"]
    assert "rania" in refused["detail"] and "Liveblog-Override-Lock" in refused["detail"]
    assert events(api, tokens.editor) == logged  # nothing changed
    assert api("GET", "/api/blogs/tartus").json()["entries"][0]["body"] == "At least 80 dead"
    # A bad override header is a 400; "false" is as good as none.
    problem(api("PATCH", path, tokens.editor, json={"body": "x"},
                headers={"Liveblog-Override-Lock": "yes please"}), 400)
    problem(api("PATCH", path, tokens.editor, json={"body": "x"},
                headers={"Liveblog-Override-Lock": "false"}), 409)
    # A reporter who may not edit it learns nothing of who has it open: 403, as ever.
    forbidden = problem(api("PATCH", path, tokens.other_reporter, json={"body": "x"}), 403)
    assert "holder" not in forbidden
    problem(api("POST", PRESENCE, tokens.other_reporter, json={"editing": entry}), 403)
    assert events(api, tokens.editor) == logged

    # "Rania is editing this update; save anyway?" - yes.
    overridden = api("PATCH", path, tokens.editor, json={"body": "At least 100 dead"},
                     headers={"If-Match": '"1"', "Liveblog-Override-Lock": "true"})
    assert overridden.status_code == 200, overridden.text
    assert overridden.json()["entry"]["body"] == "At least 100 dead"
    # The holder's own edits go through as before (her lock stays hers).
    own = api("PATCH", path, tokens.reporter, json={"body": "At least 120 dead"},
              headers={"If-Match": '"2"'})
    assert own.status_code == 200, own.text
    assert [t for t, _ in events(api, tokens.editor)][-2:] == ["entry-edited", "entry-edited"]
    assert api("GET", "/api/blogs/tartus").json()["entries"][0]["body"] == "At least 120 dead"
    assert [lock["holder"]["name"] for lock in presence(api, tokens.editor)["locks"]] == \
        ["rania"]

    # Opening another entry lets go of the first; an entry nobody holds edits as ever.
    other = post(api, tokens.reporter, "A second blast in Jableh")
    assert [lock["entry_id"] for lock in beat(api, tokens.reporter, other)["locks"]] == [other]
    freed = api("PATCH", path, tokens.editor, json={"body": "At least 130 dead"})
    assert freed.status_code == 200, freed.text


def test_signing_off_lets_go_of_the_locks(api: Api, tokens: Tokens, blog: str) -> None:
    entry = post(api, tokens.reporter, "Blast")
    beat(api, tokens.reporter, entry)
    beat(api, tokens.editor)
    path = f"/api/blogs/tartus/entries/{entry}"
    problem(api("PATCH", path, tokens.editor, json={"body": "Blasts"}), 409)
    gone = api("DELETE", PRESENCE, tokens.reporter)
    assert gone.status_code == 204 and gone.content == b""
    after = presence(api, tokens.editor)
    assert [p["name"] for p in after["people"]] == ["ed"] and after["locks"] == []
    assert api("PATCH", path, tokens.editor, json={"body": "Blasts"}).status_code == 200
    # Signing off twice is no error; nobody else is signed off by it.
    assert api("DELETE", PRESENCE, tokens.reporter).status_code == 204
    assert [p["name"] for p in presence(api, tokens.editor)["people"]] == ["ed"]


def test_presence_and_locks_lapse_when_the_beats_stop(redis_url: str, tokens: Tokens,
                                                      raw_redis: redis.Redis) -> None:
    with UvicornThread(app_config(redis_url), presence_ttl=1, lock_ttl=1) as server:
        api = Api(server.base_url)
        assert api("POST", "/api/blogs", tokens.editor,
                   json={"slug": "tartus", "title": "Blasts"}).status_code == 201
        entry = post(api, tokens.reporter, "Blast")
        path = f"/api/blogs/tartus/entries/{entry}"
        beat(api, tokens.reporter, entry)
        problem(api("PATCH", path, tokens.editor, json={"body": "Blasts"}), 409)
        # Nobody beats any more: within the ttl both go, and so do their keys in Redis.
        wait_until(lambda: presence(api, tokens.editor) == {"people": [], "locks": []},
                   timeout=5, what="presence and the lock to lapse")
        assert api("PATCH", path, tokens.editor, json={"body": "Blasts"}).status_code == 200
        wait_until(lambda: raw_redis.exists("liveblog:{tartus}:presence",
                                            "liveblog:{tartus}:locks") == 0,
                   timeout=5, what="the presence keys to expire")
        api.http.close()


def test_presence_is_never_in_the_log_or_the_public_blog(api: Api, tokens: Tokens,
                                                         blog: str) -> None:
    entry = post(api, tokens.reporter, "Blast")
    logged = events(api, tokens.editor)
    public = api("GET", "/api/blogs/tartus").json()
    beat(api, tokens.reporter, entry)
    beat(api, tokens.editor)
    api("DELETE", PRESENCE, tokens.editor)
    assert events(api, tokens.editor) == logged
    assert api("GET", "/api/blogs/tartus").json() == public


def test_two_servers_on_one_redis_share_presence(api: Api, tokens: Tokens, blog: str,
                                                 redis_url: str) -> None:
    entry = post(api, tokens.reporter, "Blast")
    beat(api, tokens.reporter, entry)
    with UvicornThread(app_config(redis_url)) as other:
        second = Api(other.base_url)
        seen = presence(second, tokens.editor)
        assert [p["name"] for p in seen["people"]] == ["rania"]
        assert [lock["entry_id"] for lock in seen["locks"]] == [entry]
        problem(second("PATCH", f"/api/blogs/tartus/entries/{entry}", tokens.editor,
                       json={"body": "Blasts"}), 409)
        # A beat on the second is seen on the first, and signing off there counts here.
        beat(second, tokens.editor)
        assert [p["name"] for p in presence(api, tokens.reporter)["people"]] == \
            ["ed", "rania"]
        assert second("DELETE", PRESENCE, tokens.reporter).status_code == 204
        assert presence(api, tokens.editor)["locks"] == []
        second.http.close()


def test_presence_errors(api: Api, tokens: Tokens, blog: str, server: UvicornThread) -> None:
    entry = post(api, tokens.reporter, "Blast")
    for method in ("GET", "POST", "DELETE"):
        problem(api(method, PRESENCE, json={"editing": None}), 401)
        problem(api(method, "/api/blogs/nope/presence", tokens.editor,
                    json={"editing": None}), 404)
    problem(api("POST", PRESENCE, tokens.editor, json={"editing": "../x"}), 422)
    problem(api("POST", PRESENCE, tokens.editor, json={"editing": None, "at": 1}), 422)
    problem(api("POST", PRESENCE, tokens.editor, content=b"{", headers={
        "Content-Type": "application/json"}), 400)
    problem(api("POST", PRESENCE, tokens.editor, json={"editing": "nosuchentry"}), 404)
    api("DELETE", f"/api/blogs/tartus/entries/{entry}", tokens.editor)
    problem(api("POST", PRESENCE, tokens.editor, json={"editing": entry}), 410)
    # Refused beats change nothing.
    assert presence(api, tokens.editor) == {"people": [], "locks": []}

    # The console's session cookie works as a token does; from another site it is refused.
    with httpx.Client(base_url=server.base_url, timeout=10) as browser:
        same = {"Origin": server.base_url}
        assert browser.post("/api/session", json={"token": tokens.reporter},
                            headers=same).status_code == 204
        problem(browser.post(PRESENCE, json={"editing": None},
                             headers={"Sec-Fetch-Site": "cross-site"}), 403)
        assert presence(api, tokens.editor)["people"] == []
        signed_in = browser.post(PRESENCE, json={"editing": None},
                                 headers={"Sec-Fetch-Site": "same-origin"})
        assert signed_in.status_code == 200, signed_in.text
        assert [p["name"] for p in signed_in.json()["people"]] == ["rania"]
        assert browser.delete(PRESENCE, headers={"Sec-Fetch-Site": "same-origin"}
                              ).status_code == 204
    assert presence(api, tokens.editor)["people"] == []
