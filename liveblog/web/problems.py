"""Every error response is RFC 9457 problem+json, rendered here and only here."""

from __future__ import annotations

import logging
from datetime import datetime

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from liveblog.errors import EntryLocked, InvalidInput, Problem

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
    # entry-locked: who holds the entry's edit lock (their name), and when it lapses.
    holder: str | None = None
    expires_at: datetime | None = None


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    errors: list[FieldProblem] | None = None,
    holder: str | None = None,
    expires_at: datetime | None = None,
) -> Response:
    body = ProblemDetails(
        type=PROBLEM_TYPE_BASE + code,
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
        holder=holder,
        expires_at=expires_at,
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
    locked = exc if isinstance(exc, EntryLocked) else None
    return problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        errors=errors,
        holder=locked.holder if locked else None,
        expires_at=locked.expires_at if locked else None,
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
