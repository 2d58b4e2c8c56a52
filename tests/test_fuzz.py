"""schemathesis over the OpenAPI document, against a real uvicorn on a real Redis.

Every operation gets generated requests, valid and invalid (schemathesis's coverage phase:
boundary values, missing and wrongly typed fields; then its fuzzing phase), sent with a
real reporter's or editor's token. About half aim at a blog and an entry that exist
(opened and posted for that case), so the writes get past the 404 and do their work. Each
response must not be a 5xx, must have a status the document declares for the operation
and match the schema it declares for it, and, when it is an error, be RFC 9457
problem+json naming that status. A request the document allows must be accepted, but for
what only the state decides; one it forbids must be refused.

Below it, each defect the fuzzing found, pinned down by a test of its own.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from jsonschema import Draft202012Validator
from schemathesis import Case, CheckContext, Response

from liveblog import version
from liveblog.web.openapi import openapi_document
from tests.support import (
    Api,
    RedisServer,
    Tokens,
    UvicornThread,
    app_config,
    assert_problem,
    create_tokens,
)

# Generated cases per operation in the fuzzing phase; the coverage phase adds its own
# (a bounded set, 10 to 140 per operation). All of it takes about 30 s.
MAX_EXAMPLES = 100
PROBLEM = "application/problem+json"

DOCUMENT = openapi_document(version())
schema = schemathesis.openapi.from_dict(openapi_document(version()))
# Unknown query parameters are ignored on purpose (a cache buster, a campaign tag on a
# shared link), so a request that adds some is not invalid. Derandomized: every run sends
# the same cases, so a red run is a regression, not a new find (to hunt for new ones, turn
# it off and raise MAX_EXAMPLES locally).
schema.config.generation.update(max_examples=MAX_EXAMPLES, allow_extra_parameters=False,
                                deterministic=True)
# 501 is oEmbed's answer to format=xml (GET /oembed), as its spec asks and the document
# declares; no other operation sends it, and every other 5xx is still a failure.
schema.config.checks.not_a_server_error.expected_statuses = ["2xx", "3xx", "4xx", "501"]
# Replaced by schema_valid_is_accepted below, which knows what the document cannot say.
schema.config.checks.positive_data_acceptance.enabled = False
# An invalid request may be refused for the state before its body is read: an If-Match
# naming an old revision is 412 whatever the edit (RFC 9110 evaluates preconditions before
# the content), a retracted entry is 410, an oversized body 413. Never a 5xx, though.
schema.config.checks.negative_data_rejection.expected_statuses = [
    "400", "401", "403", "404", "405", "409", "410", "412", "413", "415", "422",
]

# A request the document allows may still be refused for what only the state decides (no
# such blog or entry, the wrong role or author, an ended blog, a retracted entry, an old
# revision) or for its size on the wire (a 20,000-character body, JSON-escaped, can pass
# LIVEBLOG_MAX_BODY_BYTES).
STATE_OR_SIZE = {401, 403, 404, 409, 410, 412, 413}


def beyond_the_schema(error: dict[str, str]) -> bool:
    """A 422 for what a JSON Schema cannot state: text that is only spaces (as Python's
    str.strip() sees them), and links a browser could not follow (a host and port that
    parse: the domain checks them with a URL parser), nor a webhook be posted to, and a
    time to publish at that is not a date (month 13) or not in the future."""
    return error["message"] == "must not be blank" or error["field"] == "url" \
        or error["field"].endswith(".url") or error["field"] in ("publish", "publish_at")


@schemathesis.check
def schema_valid_is_accepted(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """What the document allows, the handler accepts, but for the state and the size."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status in STATE_OR_SIZE:
        return True
    if status == 501 and (case.query or {}).get("format") == "xml":
        return True  # oEmbed's xml: declared, and not served (501, as oEmbed says)
    problem = response.json()
    if status == 422 and problem["type"].endswith("/idempotency-key-reused"):
        return True  # the state again: this key went with another request before
    errors = problem.get("errors")
    if status == 422 and errors and all(beyond_the_schema(e) for e in errors):
        return True
    raise AssertionError(f"a request the document allows was refused: {response.text}")


@schemathesis.check
def problem_json(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every error is RFC 9457 problem+json, and says the status it was sent with."""
    if response.status_code < 400:
        return None
    media = response.headers.get("content-type", [""])[0]
    assert media == PROBLEM, f"{response.status_code} sent as {media!r}, not {PROBLEM}"
    body = response.json()
    assert body["status"] == response.status_code, f"problem says {body['status']}"
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    return True


@dataclass
class World:
    base_url: str
    tokens: Tokens
    http: httpx.Client
    slugs: Iterator[int] = field(default_factory=itertools.count)
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    phases: Counter[str] = field(default_factory=Counter)

    def fresh_blog(self) -> tuple[str, str]:
        """A new live blog with one entry by the reporter: (slug, entry id)."""
        slug = f"fuzz-{next(self.slugs)}"
        opened = self.http.post("/api/blogs", json={"slug": slug, "title": "Fuzzed"},
                                headers=bearer(self.tokens.editor))
        assert opened.status_code == 201, opened.text
        posted = self.http.post(f"/api/blogs/{slug}/entries", json={"body": "First report"},
                                headers=bearer(self.tokens.reporter))
        assert posted.status_code == 201, posted.text
        return slug, posted.json()["entry"]["id"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def world(redis_server: RedisServer, request: pytest.FixtureRequest) -> Iterator[World]:
    # One server and one Redis for the module: a server per operation would cost more than
    # its cases. Each case that wants a blog opens its own (fresh_blog).
    with redis_server.client() as client:
        client.flushall()
    with UvicornThread(app_config(redis_server.url)) as server, \
            httpx.Client(base_url=server.base_url, timeout=10) as http:
        world = World(server.base_url, create_tokens(redis_server.url), http)
        yield world
    # How much was tried, for whoever reads the run (pytest would capture a print).
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"\nfuzzed {len(world.cases)} operations with {sum(world.cases.values())} "
                f"cases ({', '.join(f'{n} {p}' for p, n in sorted(world.phases.items()))}); "
                f"statuses: {dict(sorted(world.statuses.items()))}"
            )


@schema.parametrize()
def test_every_operation(case: Case, world: World) -> None:
    # Which token, and whether to aim at a blog that exists, are chosen from the case
    # itself, so that a case replayed (Hypothesis shrinking it) is sent the same way; not
    # drawn with @schema.given, since schemathesis skips its coverage phase for tests that
    # draw more than the case.
    choice = zlib.crc32(repr((case.path_parameters, case.query, case.headers,
                              case.body)).encode())
    token = (world.tokens.reporter, world.tokens.editor)[choice % 2]
    if "slug" in case.path_parameters and choice // 2 % 2:
        aim_at_a_blog(case, *world.fresh_blog())
    world.cases[case.operation.label] += 1
    if case.meta is not None:
        world.phases[f"{case.meta.phase.name.value} {case.meta.generation.mode.value}"] += 1
    response = case.call_and_validate(base_url=world.base_url, headers=bearer(token))
    world.statuses[response.status_code] += 1


def declares(case: Case, name: str, value: object) -> bool:
    """Whether the document allows `value` for the parameter `name` of the case's operation."""
    operation = DOCUMENT["paths"][case.operation.path][case.operation.method.lower()]
    [param] = [p for p in operation["parameters"] if p["name"] == name]
    return allows(param["schema"], value)


def aim_at_a_blog(case: Case, slug: str, entry_id: str) -> None:
    """Point the case at a blog and an entry that exist, and at its first event; only
    values the document allows are replaced, so an invalid case stays invalid."""
    case.path_parameters["slug"] = slug
    if "entry_id" in case.path_parameters:
        case.path_parameters["entry_id"] = entry_id
    query = case.query or {}
    if "at" in query and declares(case, "at", query["at"]):
        query["at"] = "1"
    if "after" in query and declares(case, "after", query["after"]):
        query["after"] = "0-1"
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("entry_id"), str) \
            and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", body["entry_id"]):
        body["entry_id"] = entry_id


# -- what the fuzzing found, each pinned down ------------------------------------------------


def declared(api: Api, method: str, path: str, name: str) -> dict[str, Any]:
    """The schema the served document declares for a parameter of an operation."""
    operation = api("GET", "/openapi.json").json()["paths"][path][method]
    [param] = [p for p in operation["parameters"] if p["name"] == name]
    return param["schema"]  # type: ignore[no-any-return]


def allows(schema: dict[str, Any], value: object) -> bool:
    return Draft202012Validator(schema).is_valid(value)


def test_idempotency_keys_are_accepted_exactly_as_declared(
        api: Api, tokens: Tokens, blog: str) -> None:
    # The document said any string; the handler refused an empty one with a 400.
    schema = declared(api, "post", "/api/blogs/{slug}/entries", "Idempotency-Key")
    for key in ("c0ffee-1", '"c0ffee-2"', "x" * 255, "", '""', "a b", "x" * 256, "clé"):
        response = api("POST", f"/api/blogs/{blog}/entries", tokens.reporter,
                       json={"body": "Blast"}, headers={"Idempotency-Key": key.encode()})
        if allows(schema, key):
            assert response.status_code == 201, (key, response.text)
        else:
            assert_problem(response, 400)


def declared_body(api: Api, method: str, path: str) -> dict[str, Any]:
    """The request body schema of an operation, with the components its $refs point to."""
    document = api("GET", "/openapi.json").json()
    body = document["paths"][path][method]["requestBody"]["content"]["application/json"]
    return {**body["schema"], "components": document["components"]}


def test_edits_are_accepted_exactly_as_declared(api: Api, tokens: Tokens, blog: str) -> None:
    # The document allowed {}, and an edit with only a note; both got a 422.
    schema = declared_body(api, "patch", "/api/blogs/{slug}/entries/{entry_id}")
    posted = api("POST", f"/api/blogs/{blog}/entries", tokens.reporter, json={"body": "Blast"})
    path = f"/api/blogs/{blog}/entries/{posted.json()['entry']['id']}"
    for body in ({}, {"note": "typo"}, {"body": "Blasts"}, {"key_event": True, "note": "key"},
                 {"correction": "It said Blast."}):
        response = api("PATCH", path, tokens.reporter, json=body)
        if allows(schema, body):
            assert response.status_code == 200, (body, response.text)
        else:
            assert_problem(response, 422, fields={"body"})


def test_figure_keys_are_accepted_exactly_as_declared(
        api: Api, tokens: Tokens, blog: str) -> None:
    # The document allowed any key; the handler refused all but lowercase ones with a 422.
    schema = declared(api, "put", "/api/blogs/{slug}/facts/{key}", "key")
    for key in ("deaths", "death-toll", "x" * 40, "Deaths", "-x", "x" * 41, "dé"):
        response = api("PUT", f"/api/blogs/{blog}/facts/{key}", tokens.reporter,
                       json={"label": "Deaths", "value": "80"})
        if allows(schema, key):
            assert response.status_code == 200, (key, response.text)
        else:
            assert_problem(response, 422, fields={"key"})


def test_event_ids_versions_page_sizes_and_if_match_are_checked_as_declared(
        api: Api, tokens: Tokens, blog: str) -> None:
    # The document allowed any string for at, after and If-Match, and any integer for the
    # state's limit; the handlers refused most of them (422, or 400 for a header).
    cases: list[tuple[str, str, str, str, dict[str, Any]]] = []
    posted = api("POST", f"/api/blogs/{blog}/entries", tokens.reporter, json={"body": "Blast"})
    entry = f"/api/blogs/{blog}/entries/{posted.json()['entry']['id']}"
    for at in ("1", "1-0", "9999999999999999999-0", "yesterday", "1.5", "2-",
               "18446744073709551616-0"):
        cases.append(("get", "/api/blogs/{slug}/state", "at", f"/api/blogs/{blog}/state",
                      {"params": {"at": at}}))
    for limit in ("1", "100", "0", "101"):
        cases.append(("get", "/api/blogs/{slug}/state", "limit", f"/api/blogs/{blog}/state",
                      {"params": {"at": "1", "limit": limit}}))
    for after in ("0-0", "1", "yesterday"):
        cases.append(("get", "/api/blogs/{slug}/events", "after", f"/api/blogs/{blog}/events",
                      {"params": {"after": after}}))
    for revision in ("*", '"1"', "2", 'W/"1"', '"1'):
        cases.append(("patch", "/api/blogs/{slug}/entries/{entry_id}", "If-Match", entry,
                      {"headers": {"If-Match": revision}, "json": {"key_event": True}}))
    for method, template, name, path, request in cases:
        value = {**request.get("params", {}), **request.get("headers", {})}[name]
        response = api(method.upper(), path, tokens.editor, **request)
        refused = 400 if name == "If-Match" else 422
        if allows(declared(api, method, template, name), int(value) if name == "limit" else value):
            assert response.status_code < 400 or response.status_code in (404, 412), \
                (name, value, response.text)
        else:
            assert_problem(response, refused)


def test_a_wrong_method_is_told_every_method_of_the_path(api: Api) -> None:
    # With a route per operation, OPTIONS /api/blogs was told "Allow: GET, HEAD" (no POST).
    for path, item in api("GET", "/openapi.json").json()["paths"].items():
        url = path.replace("{slug}", "tartus").replace("{entry_id}", "e1").replace("{key}", "k")
        response = api("OPTIONS", url)
        assert_problem(response, 405)
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert {m.upper() for m in item} <= allowed, (path, allowed)


def test_an_optional_body_is_absent_or_json(api: Api, tokens: Tokens, blog: str) -> None:
    # A retraction's body is optional; one of blanks (b"\x0c") was taken as no body and the
    # entry retracted, though the document's schema allows no such body.
    for body, status in ((b" ", 400), (b"\x0c\n", 400), (b"", 200), (b'{"reason": "x"}', 200)):
        posted = api("POST", f"/api/blogs/{blog}/entries", tokens.reporter, json={"body": "B"})
        response = api("DELETE", f"/api/blogs/{blog}/entries/{posted.json()['entry']['id']}",
                       tokens.editor, content=body,
                       headers={"Content-Type": "application/json"})
        if status == 200:
            assert response.status_code == 200, (body, response.text)
        else:
            assert_problem(response, status)


def test_a_final_newline_does_not_pass_a_pattern(api: Api, tokens: Tokens, blog: str) -> None:
    # msgspec checks patterns with Python's re, where $ also matches before a final "\n":
    # the slug "jableh\n" opened a blog, and its Location header then broke the response
    # (the client got no answer at all); a URL or a pinned id could end in "\n" too.
    assert_problem(api("POST", "/api/blogs", tokens.editor,
                       json={"slug": "jableh\n", "title": "Jableh"}), 422, fields={"slug"})
    assert [b["slug"] for b in api("GET", "/api/blogs").json()["blogs"]] == [blog]
    assert_problem(api("POST", f"/api/blogs/{blog}/entries", tokens.reporter,
                       json={"body": "Blast", "embed": {"url": "https://example.com/\n"}}),
                   422, fields={"embed.url"})
    assert_problem(api("PUT", f"/api/blogs/{blog}/pinned", tokens.editor,
                       json={"entry_id": "abc\n"}), 422, fields={"entry_id"})
    assert api("GET", f"/api/blogs/{blog}").json()["version"] == 1
