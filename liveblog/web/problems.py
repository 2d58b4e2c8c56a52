"""Every error response is RFC 9457 problem+json, rendered here and only here."""

from __future__ import annotations

import logging

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from liveblog.errors import InvalidInput, Problem

PROBLEM_TYPE_BASE = "https://liveblog.dev/problems/"
logger = logging.getLogger("liveblog")


class FieldProblem(msgspec.Struct, frozen=True):
    field: str
    message: str


class ProblemDetails(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldProblem] | None = None


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    errors: list[FieldProblem] | None = None,
) -> Response:
    body = ProblemDetails(
        type=PROBLEM_TYPE_BASE + code,
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
    )
    return Response(
        msgspec.json.encode(body),
        status_code=status,
        headers=headers,
        media_type="application/problem+json",
    )


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    errors = None
    if isinstance(exc, InvalidInput):
        errors = [FieldProblem(e.field, e.message) for e in exc.errors]
    return problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        errors=errors,
    )


_HTTP_CODES = {404: ("not-found", "Not found"), 405: ("method-not-allowed", "Method not allowed")}


async def on_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (an unknown path, a wrong method) in the same format."""
    assert isinstance(exc, HTTPException)
    code, title = _HTTP_CODES.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if exc.status_code != 404 else f"nothing at {request.url.path}"
    return problem_response(
        request, status=exc.status_code, code=code, title=title, detail=str(detail),
        headers=dict(exc.headers or {}),
    )


async def on_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem_response(
        request, status=500, code="internal-error", title="Internal server error",
        detail="something went wrong on our side; it has been logged",
    )
