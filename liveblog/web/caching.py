"""Answers a CDN may hold: the reader page and the blog's public state (issue 9).

Both are the same for everyone (nothing in them depends on who asks, so they need no
`Vary`), and both go stale the moment the blog changes, which a cache cannot know. So
they are kept briefly (READER_CACHE): a cached reader page resumes its stream from the
event it was rendered at (its data-last-event-id) and catches up at once, and while a CDN
revalidates, it may go on serving its copy for a little longer rather than make readers
wait. A revalidation that finds nothing changed costs a 304, not the page.

The ETag names the blog's version and a hash of the bytes: whatever changes what is sent
(an event, the templates or the CSS of a new release, a relative time that moved on, the
public URL) changes the tag, and two servers of the same release give the same tag for the
same answer, so a CDN can revalidate against any of them. A signed-in API request is
answered `no-store` whatever this says (headers.py).

Feeds (issue 11) also carry `Last-Modified`, since feed readers revalidate with
`If-Modified-Since` as often as with `If-None-Match`. HTTP dates count whole seconds, and a
blog may change twice in one: a copy served in the second of its last change could be
answered 304 after a second change in that same second. So an answer names its time only
once that second is over; until then it has only its ETag.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response

# A cached copy is fine for a few seconds (see above); then 30 s more while the cache
# revalidates in the background. A retraction reaches open pages through their streams at
# once; a page opened from such a stale copy gets it in its first stream message.
READER_CACHE = "public, max-age=5, stale-while-revalidate=30"
_TAG = re.compile(r'(?:W/)?"([^"]*)"')


def etag(version: int, body: bytes) -> str:
    return f'"v{version}-{hashlib.blake2b(body, digest_size=8).hexdigest()}"'


def not_modified(request: Request, tag: str) -> bool:
    """Whether the request's If-None-Match matches `tag`: `*`, or any tag in its list,
    compared weakly (RFC 9110, 13.1.2: W/"x" matches "x")."""
    wanted = request.headers.get("if-none-match")
    if wanted is None:
        return False
    if wanted.strip() == "*":
        return True
    return tag.strip('"') in _TAG.findall(wanted)


def last_modified(changed: datetime, now: datetime | None = None) -> str | None:
    """The Last-Modified of an answer last changed at `changed` (aware), or None while the
    second it changed in is not over (see above)."""
    second = changed.astimezone(UTC).replace(microsecond=0)
    if (now or datetime.now(UTC)).replace(microsecond=0) <= second:
        return None
    return format_datetime(second, usegmt=True)


def unmodified_since(request: Request, modified: str) -> bool:
    """Whether the request's If-Modified-Since is at or after `modified` (an HTTP date).
    Only without If-None-Match, which wins when both are sent (RFC 9110, 13.1.3); a date
    that cannot be parsed is ignored, as the RFC asks."""
    since = request.headers.get("if-modified-since")
    if since is None or "if-none-match" in request.headers:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    if when.tzinfo is None:  # "-0000": a date whose zone is not known; HTTP's is GMT
        when = when.replace(tzinfo=UTC)
    return parsedate_to_datetime(modified) <= when


def cached(request: Request, body: bytes, tag: str, media_type: str,
           headers: dict[str, str] | None = None, changed: datetime | None = None) -> Response:
    """`body` with its ETag and READER_CACHE, or 304 (no body, the same headers) if the
    client already holds it. With `changed` (when what it shows last changed), also a
    Last-Modified, and a 304 for an If-Modified-Since at or after it."""
    sent = {**(headers or {}), "ETag": tag, "Cache-Control": READER_CACHE}
    modified = None if changed is None else last_modified(changed)
    if modified is not None:
        sent["Last-Modified"] = modified
    if not_modified(request, tag) or (
            modified is not None and unmodified_since(request, modified)):
        return Response(status_code=304, headers=sent)
    return Response(body, media_type=media_type, headers=sent)
