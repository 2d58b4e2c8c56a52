"""Signing in the newsroom console and the replay: the token is posted once and kept in an
HttpOnly cookie, out of reach of any script in the page (issue 8, item 6: in
sessionStorage, one sanitiser gap would have handed it over).

The cookie is SameSite=Strict, Path=/, Secure when LIVEBLOG_PUBLIC_URL is https, and lasts
as long as the browser session. The API takes it as it takes `Authorization: Bearer`, but
a change made with it must come from this site's own pages (requests.require_same_origin).
The CLI and scripts keep sending the bearer header.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from liveblog.domain.events import Role
from liveblog.errors import Unauthorized
from liveblog.web.requests import (
    actor_for,
    authenticate,
    read_json,
    require_same_origin,
    session_cookie,
)


class SignIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Session(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    signed_in: bool
    name: str | None = None
    role: Role | None = None
    # The identity behind the token (as GET /api/me): what owns entries, so the console
    # tells its own by it, not by a token name a later token may reuse.
    id: str | None = None
    # The byline their updates carry.
    display_name: str | None = None


async def create_session(request: Request) -> Response:
    # Signing a browser in as someone else is an attack too (login CSRF).
    require_same_origin(request)
    cmd = await read_json(request, SignIn)
    secret = cmd.token.strip()
    await actor_for(request, secret)  # 401 for a token we do not know
    config = request.state.config
    response = Response(status_code=204)
    response.set_cookie(session_cookie(config), secret, path="/", httponly=True,
                        samesite="strict", secure=config.public_url.startswith("https:"))
    return response


async def read_session(request: Request) -> Response:
    """Who this browser is signed in as. Not being signed in is an answer, not an error:
    the console asks on every load (and a failed request is a console error)."""
    secret = request.cookies.get(session_cookie(request.state.config))
    if request.headers.get("authorization") is None and not secret:
        return _json(Session(signed_in=False))
    try:
        actor = await authenticate(request)
    except Unauthorized:
        if request.headers.get("authorization") is not None:
            raise  # a bad bearer token is the caller's error
        return _forget(request, _json(Session(signed_in=False)))  # revoked since
    return _json(Session(signed_in=True, name=actor.name, role=actor.role,
                         id=actor.id or None, display_name=actor.byline))


async def delete_session(request: Request) -> Response:
    return _forget(request, Response(status_code=204))


def _json(session: Session) -> Response:
    # Who is signed in changes with the cookie, never with the URL: nothing may keep it.
    return Response(msgspec.json.encode(session), media_type="application/json",
                    headers={"Cache-Control": "no-store"})


def _forget(request: Request, response: Response) -> Response:
    config = request.state.config
    response.delete_cookie(session_cookie(config), path="/", httponly=True, samesite="strict",
                           secure=config.public_url.startswith("https:"))
    return response
