"""Every error liveblog raises on purpose, in one tree.

    LiveblogError
    ├── ConfigError                a setting is missing or wrong (names the setting)
    ├── EmbeddedRedisError         the embedded redis-server could not be started
    ├── CorruptLog                 the log holds an event that cannot follow the ones
    │                              before it (wiped or restored under us, or hand-edited)
    ├── InvalidImport              a file given to `liveblog import` breaks a rule the API
    │                              enforces (names the line and the event); nothing appended
    ├── TailerStopped              a reader tried to join a blog's tailer that was stopped
    │                              (to make room, or at shutdown); it goes to a new one
    └── Problem                    what a client did wrong or cannot have now; carries an
        │                          HTTP status and is rendered as RFC 9457 problem+json
        ├── MalformedRequest       400  the body is not JSON, or a header is malformed
        ├── Unauthorized           401  no token, or a token we do not know
        ├── Forbidden              403  the wrong role, or not the entry's author
        │   └── CrossSiteRequest   403  a change sent with the session cookie from a page
        │                               that is not ours (CSRF)
        ├── NotFound               404  no such blog, entry or event
        ├── Conflict               409  the slug is taken, or the blog has ended
        │   ├── VersionConflict    409  the log moved on since the state was read (the
        │   │                           service layer retries these; clients rarely see one)
        │   └── EntryLocked        409  someone else holds the entry's soft edit lock (names
        │                               them and when it lapses); the edit may override it
        ├── Gone                   410  the entry was retracted
        ├── PreconditionFailed     412  If-Match names a revision that is no longer current
        ├── PayloadTooLarge        413  the body is over LIVEBLOG_MAX_BODY_BYTES
        ├── UnsupportedMediaType   415  a body that is not application/json
        ├── InvalidInput           422  fields that are missing, unknown or wrong (each named)
        ├── IdempotencyKeyReused   422  an Idempotency-Key sent again with another request
        ├── FormatNotImplemented   501  /oembed asked for a format we do not write (xml)
        ├── StoreUnavailable       503  Redis cannot be reached; retry later
        ├── Overloaded             503  a limit on reader streams or tailed blogs is
        │                               reached (per client address or per process);
        │                               retry later
        └── NotReady               503  /readyz: this server should not be sent readers
                                        now (Redis, its durability, a stuck tailer, or
                                        draining); names each check that failed

The domain raises these too: they say what went wrong in the newsroom's terms, and the
status is how HTTP happens to spell it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class LiveblogError(Exception):
    """The root: catch this to catch anything liveblog raises on purpose."""


class ConfigError(LiveblogError):
    """A setting is missing or has a value we cannot use; the message names it."""


class EmbeddedRedisError(LiveblogError):
    """The embedded redis-server could not be found, started or reached."""


class CorruptLog(LiveblogError):
    """The log holds an event that cannot follow the ones before it. Readers of the log
    catch it to start over from what the log holds now."""


class TailerStopped(LiveblogError):
    """A reader tried to join a tailer that was stopped (to make room for another blog, or
    at shutdown) after it was handed out: nothing would ever be written to that reader."""


class InvalidImport(LiveblogError):
    """An export given to `liveblog import` holds something the API would never have
    accepted or logged; the message names the line and the event. Nothing was appended."""


@dataclass(frozen=True)
class FieldError:
    """One bad field: `field` is a dotted path into the request ("image.url")."""

    field: str
    message: str


class Problem(LiveblogError):
    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class MalformedRequest(Problem):
    status, code, title = 400, "malformed-request", "Malformed request"


class Unauthorized(Problem):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="liveblog"'})


class Forbidden(Problem):
    status, code, title = 403, "forbidden", "Not allowed"


class CrossSiteRequest(Forbidden):
    code, title = "cross-site-request", "Cross-site request refused"


class NotFound(Problem):
    status, code, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, code, title = 409, "conflict", "Conflict"


class VersionConflict(Conflict):
    code, title = "version-conflict", "The blog changed meanwhile"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected blog version {expected}, but it is at {actual}")
        self.expected = expected
        self.actual = actual


class EntryLocked(Conflict):
    """An edit of an entry someone else has open in the console (presence.py): nothing is
    changed; sending it again with `Liveblog-Override-Lock: true` saves it anyway."""

    code, title = "entry-locked", "Someone else is editing this entry"

    def __init__(self, entry_id: str, holder: str, expires_at: datetime) -> None:
        super().__init__(
            f"{holder} is editing entry {entry_id}; to save anyway, send the edit again with "
            "'Liveblog-Override-Lock: true'")
        self.holder = holder
        self.expires_at = expires_at


class Gone(Problem):
    status, code, title = 410, "gone", "Retracted"


class PreconditionFailed(Problem):
    status, code, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(Problem):
    status, code, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(Problem):
    status, code, title = 415, "unsupported-media-type", "Unsupported media type"


class InvalidInput(Problem):
    status, code, title = 422, "invalid-input", "Invalid input"

    def __init__(self, errors: list[FieldError]) -> None:
        names = ", ".join(e.field for e in errors)
        super().__init__(f"invalid fields: {names}")
        self.errors = errors


class IdempotencyKeyReused(Problem):
    status, code, title = 422, "idempotency-key-reused", "Idempotency key reused"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for a different request; "
            "use a new key for a new request"
        )


class FormatNotImplemented(Problem):
    """What oEmbed answers a format the provider does not write: 501, by its spec."""

    status, code, title = 501, "format-not-implemented", "Format not implemented"


class StoreUnavailable(Problem):
    status, code, title = 503, "store-unavailable", "Storage unavailable"

    def __init__(self, detail: str = "the event store cannot be reached") -> None:
        super().__init__(detail, headers={"Retry-After": "2"})


class Overloaded(Problem):
    """A stream this process will not take now: it, or the client's address, already holds
    its maximum (LIVEBLOG_MAX_STREAMS, LIVEBLOG_MAX_STREAMS_PER_IP, LIVEBLOG_MAX_TAILERS)."""

    status, code, title = 503, "overloaded", "Too busy"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class NotReady(Problem):
    """GET /readyz: a check failed; the detail names each one that did."""

    status, code, title = 503, "not-ready", "Not ready"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "5"})
