"""Reading a request: its token, its JSON body, its path and query parameters. Each failure
is a Problem with the status a client needs to fix it."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from msgspec import UnsetType
from starlette.requests import Request

from liveblog.config import Config
from liveblog.domain import ids
from liveblog.domain.commands import (
    ACTOR_ID_PATTERN,
    ENTRY_ID_PATTERN,
    FACT_KEY_PATTERN,
    SLUG_PATTERN,
)
from liveblog.domain.events import Actor
from liveblog.domain.webhooks import ENDPOINT_ID_PATTERN
from liveblog.errors import (
    CrossSiteRequest,
    FieldError,
    InvalidInput,
    MalformedRequest,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)

S = TypeVar("S", bound=msgspec.Struct)


async def authenticate(request: Request) -> Actor:
    """The actor behind a bearer token (the CLI, scripts) or the session cookie (the
    newsroom console and replay, see web/session.py)."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        return await actor_for(request, secret.strip())
    cookie = request.cookies.get(session_cookie(request.state.config))
    if not cookie:
        raise Unauthorized("this needs a token: send 'Authorization: Bearer <token>'")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        require_same_origin(request)
    return await actor_for(request, cookie)


async def actor_for(request: Request, secret: str) -> Actor:
    actor: Actor | None = await request.state.service.store.find_actor(secret)
    if actor is None:
        raise Unauthorized("this token is unknown or has been revoked")
    return actor


def session_cookie(config: Config) -> str:
    """The console's cookie. On https its name starts __Host-: browsers then keep it only
    if it is Secure, for the whole site and this host alone (no sibling subdomain can set
    it)."""
    return "__Host-liveblog-session" if config.public_url.startswith("https:") else \
        "liveblog-session"


def require_same_origin(request: Request) -> None:
    """A browser sends the cookie with whatever request a page makes, so a change made with
    it must come from our own pages: Sec-Fetch-Site says where a request comes from (all
    current browsers send it); without it, Origin must be ours. Neither: refused."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        ok = site == "same-origin"
    else:
        origin = request.headers.get("origin")
        own = {request.state.config.public_url,
               f"{request.url.scheme}://{request.headers.get('host', '')}"}
        ok = origin is not None and origin in own
    if not ok:
        raise CrossSiteRequest(
            "a change signed in with the session cookie must come from this site's own pages "
            "(scripts send 'Authorization: Bearer <token>' instead)")


async def read_body(request: Request) -> bytes:
    limit: int = request.state.config.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and ids.digits(declared) and (len(declared) > 18
                                                       or int(declared) > limit):
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, type_: type[S], *, optional: bool = False) -> S:
    """Decode the body into `type_`, naming every bad field at once (422)."""
    return parse_json(request, await read_body(request), type_, optional=optional)


def parse_json(request: Request, body: bytes, type_: type[S], *, optional: bool = False) -> S:
    # No body at all is no body; a body of spaces is, like any other, not JSON.
    if not body and optional:
        return msgspec.convert({}, type_)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"send the body as application/json (got {media or 'no Content-Type'})"
        )
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise MalformedRequest("the body's JSON is nested too deeply") from None
    return convert(data, type_)


def convert(data: Any, type_: type[S]) -> S:
    """msgspec stops at the first bad field; a reporter fixing a form wants all of them."""
    if not isinstance(data, dict):
        raise InvalidInput([FieldError("$", "the body must be a JSON object")])
    errors = _field_errors(data, type_, "")
    if errors:
        raise InvalidInput(errors)
    return msgspec.convert(data, type_)


def _field_errors(data: dict[str, Any], type_: type[Any], prefix: str) -> list[FieldError]:
    fields = msgspec.structs.fields(type_)
    known = {f.encode_name for f in fields}
    errors = [FieldError(prefix + name, "unknown field") for name in data if name not in known]
    for f in fields:
        name = prefix + f.encode_name
        if f.encode_name not in data:
            if f.required:
                errors.append(FieldError(name, "required"))
            continue
        value = data[f.encode_name]
        nested = _struct_in(f.type)
        if nested is not None and isinstance(value, dict):
            errors.extend(_field_errors(value, nested, name + "."))
            continue
        try:
            msgspec.convert(value, _without_unset(f.type))
        except msgspec.ValidationError as exc:
            errors.append(_field_error(name, str(exc), f.type))
    return errors


def _members(tp: Any) -> tuple[Any, ...]:
    return getattr(tp, "__args__", None) or (tp,)


def _struct_in(tp: Any) -> type[msgspec.Struct] | None:
    for member in _members(tp):
        if isinstance(member, type) and issubclass(member, msgspec.Struct):
            return member
    return None


def _without_unset(tp: Any) -> Any:
    members = _members(tp)
    if UnsetType not in members:
        return tp
    rest = [m for m in members if m is not UnsetType]
    union = rest[0]
    for member in rest[1:]:
        union = union | member
    return union


def _description(tp: Any) -> str | None:
    for member in (tp, *_members(tp)):
        for meta in getattr(member, "__metadata__", ()):
            if isinstance(meta, msgspec.Meta) and meta.description:
                return meta.description
    return None


_AT = re.compile(r" - at `\$((?:\.\w+|\[\d+\])*)`$")


def _field_error(name: str, message: str, tp: Any) -> FieldError:
    # "Expected `str`, got `int` - at `$[0]`" inside field "tags" -> "tags[0]".
    match = _AT.search(message)
    if match:
        name, message = name + match.group(1), message[: match.start()]
    description = _description(tp)
    if "matching regex" in message and description:
        # A regex is no help to a reporter; the field's description says what is wanted.
        message = f"must be: {description}"
    return FieldError(name, message)


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not ids.digits(raw, 18) or not low <= int(raw) <= high:
        raise InvalidInput([FieldError(name, f"must be a whole number from {low} to {high}")])
    return int(raw)


# What the OpenAPI document declares for If-Match (api.py), and what is checked here.
IF_MATCH = re.compile(r'^(?:\*|[0-9]{1,18}|"[0-9]{1,18}")$')


_SLUG = re.compile(SLUG_PATTERN)
_ENTRY_ID = re.compile(ENTRY_ID_PATTERN)
_FACT_KEY = re.compile(FACT_KEY_PATTERN)
_ACTOR_ID = re.compile(ACTOR_ID_PATTERN)
_WEBHOOK_ID = re.compile(ENDPOINT_ID_PATTERN)


# Path parameters, one rule: a path names something that exists, so a name that cannot
# be one (a malformed slug, entry id or key) is a name nothing has, 404, like a well-formed
# name nothing has; the client learns nothing more from a 422. The exception is PUT
# .../facts/{key}, whose path names what the request creates: a malformed key there is
# bad input (422) and the error says what a key must be.

def _path_id(request: Request, param: str, pattern: re.Pattern[str], what: str) -> str:
    value: str = request.path_params[param]
    if not pattern.fullmatch(value):
        raise NotFound(f"no {what} {value[:80]!r}")
    return value


def slug_from(request: Request) -> str:
    return _path_id(request, "slug", _SLUG, "blog")


def entry_id_from(request: Request) -> str:
    return _path_id(request, "entry_id", _ENTRY_ID, "entry")


def person_id_from(request: Request) -> str:
    return _path_id(request, "person_id", _ACTOR_ID, "identity")


def webhook_id_from(request: Request) -> str:
    return _path_id(request, "webhook_id", _WEBHOOK_ID, "webhook")


def fact_key_from(request: Request, *, creating: bool = False) -> str:
    key: str = request.path_params["key"]
    if _FACT_KEY.fullmatch(key):
        return key
    if creating:
        raise InvalidInput([FieldError(
            "key", "must be 1 to 40 lowercase letters, digits and hyphens, e.g. death-toll"
        )])
    raise NotFound(f"no figure {key[:80]!r}")


def query_entry_id(request: Request, name: str) -> str | None:
    entry_id = request.query_params.get(name)
    if entry_id is not None and not _ENTRY_ID.fullmatch(entry_id):
        raise InvalidInput([FieldError(name, "must be an entry id")])
    return entry_id


def query_slug(request: Request, name: str) -> str | None:
    slug = request.query_params.get(name)
    if slug is not None and not _SLUG.fullmatch(slug):
        raise InvalidInput([FieldError(name, "must be a blog's slug")])
    return slug


def query_event_id(request: Request, name: str, *, versions: bool = False) -> str | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if ids.is_stream_id(raw) or (versions and ids.parse_version(raw) is not None):
        return raw
    expected = "an event id like 1732900000000-0" + (" or a version number" if versions else "")
    raise InvalidInput([FieldError(name, f"must be {expected}")])


def if_match_revision(request: Request) -> int | None:
    """If-Match: "<revision>" (the ETag of an entry). None when absent or '*'."""
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    value = raw.strip()
    if not IF_MATCH.fullmatch(value):
        raise MalformedRequest(f'If-Match must be an entry revision like "3", got {raw[:40]!r}')
    return None if value == "*" else int(value.strip('"'))


# Liveblog-Override-Lock: an edit saved although someone else holds the entry's soft lock
# (the console asks first: "Omar is editing this update; save anyway?").
OVERRIDE_LOCK = "Liveblog-Override-Lock"


def overrides_lock(request: Request) -> bool:
    raw = request.headers.get(OVERRIDE_LOCK.lower())
    if raw is None:
        return False
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise MalformedRequest(f"{OVERRIDE_LOCK} must be true or false, got {raw[:40]!r}")
    return value == "true"


# 1 to 255 visible ASCII characters but '"', bare or (as the IETF draft writes it, a
# structured-field string) in double quotes. The OpenAPI document declares this pattern.
IDEMPOTENCY_KEY = re.compile(r'^(?:[!#-~]{1,255}|"[!#-~]{1,255}")$')


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise MalformedRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces or quotes "
            "inside), optionally in double quotes"
        )
    return key.strip('"')
