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
