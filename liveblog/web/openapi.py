"""The OpenAPI 3.1 document, built from the operation table and the msgspec types, so it
describes exactly the routes the app serves."""

from __future__ import annotations

from typing import Any

import msgspec

from liveblog.web.api import OPERATIONS, Operation
from liveblog.web.problems import ProblemDetails

_REF = "#/components/schemas/{name}"
_WHO = {
    "anyone": "Anyone may call this.",
    "contributor": "Needs a token: contributor, reporter or editor.",
    "reporter": "Needs a reporter or editor token.",
    "editor": "Needs an editor token.",
    "author": "Needs the token of the entry's author, or an editor token.",
}
_ERRORS = {
    400: "Malformed JSON or header",
    401: "Missing or unknown token",
    403: "Wrong role, not the entry's author, or a change with the session cookie from "
         "another site",
    404: "No such blog, entry, event or webhook",
    409: "Slug taken, the blog has ended, (entry-locked) someone else has the entry open, "
         "the entry is not where the workflow allows this (pinning an unpublished entry, "
         "rejecting a published one), or the most webhooks there may be are registered",
    410: "The entry was retracted",
    412: "If-Match names an old revision",
    413: "Body too large",
    415: "Body is not application/json",
    422: "Invalid fields (each named in `errors`)",
    501: "A format this server does not write (oEmbed's xml)",
    503: "Redis is unreachable; retry after Retry-After seconds",
}


def openapi_document(version: str) -> dict[str, Any]:
    types = {op.response for op in OPERATIONS if op.response} | {
        op.body for op in OPERATIONS if op.body}
    ordered = [*sorted(types, key=lambda t: t.__name__), ProblemDetails]
    schemas, components = msgspec.json.schema_components(ordered, ref_template=_REF)
    refs = dict(zip(ordered, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    paths["/openapi.json"] = {"get": {
        "operationId": "openapi",
        "summary": "This document",
        "responses": {"200": {"description": "OpenAPI 3.1",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
    }}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "liveblog",
            "version": version,
            "description": "An event-sourced live blog. Every change is an event in the "
                           "blog's Redis stream; errors are RFC 9457 problem+json.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                # Set by POST /api/session (named __Host-liveblog-session on https); a
                # change made with it must come from this site's own pages, else 403.
                "session": {"type": "apiKey", "in": "cookie", "name": "liveblog-session"},
            },
        },
    }


def _operation(op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": refs[ProblemDetails]}}
    responses: dict[str, Any] = {
        str(op.status): {"description": "Success"} if op.response is None else {
            "description": "Success",
            "content": {"application/json": {"schema": refs[op.response]}},
        }
    }
    for status in sorted(op.errors):
        responses[str(status)] = {"description": _ERRORS[status], "content": problem}
    doc: dict[str, Any] = {
        "operationId": op.endpoint.__name__,
        "summary": op.summary,
        "description": _WHO[op.who],
        "parameters": [
            {"name": p.name, "in": p.where, "description": p.description,
             "required": p.required or p.where == "path", "schema": p.schema}
            for p in op.params
        ],
        "responses": responses,
    }
    if op.who != "anyone":
        doc["security"] = [{"bearer": []}, {"session": []}]
    if op.body is not None:
        doc["requestBody"] = {
            "required": op.method != "DELETE" and not op.body_optional,
            "content": {"application/json": {"schema": refs[op.body]}},
        }
    return doc
