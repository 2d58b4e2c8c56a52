"""What the fuzzing in test_fuzz_harness found, each pinned down: the OpenAPI document and
the handlers agree on what a request may be."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from tests.conftest import Api, Tokens
from tests.test_api import assert_problem

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
    for body in ({}, {"note": "typo"}, {"body": "Blasts"}, {"key_event": True, "note": "key"}):
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
