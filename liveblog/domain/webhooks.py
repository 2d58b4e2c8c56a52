"""Webhook endpoints and what they are sent, as data (liveblog/webhooks.py delivers them).

An endpoint is registered by an editor: a URL, the kinds of change it wants (all six by
default) and the blogs it wants (every blog by default). Each public change of a blog it
wants is POSTed to it as `{type, timestamp, data: {blog, event_id, version, change}}`,
where `change` is exactly what readers' streams get for that event (views.change_view):
what is not public (blog-opened; later, drafts) is sent to nobody.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal, get_args

import msgspec
from msgspec import Meta

from liveblog.domain.commands import END, SLUG_PATTERN
from liveblog.domain.events import Recorded
from liveblog.domain.urls import url_problem
from liveblog.domain.views import Change
from liveblog.errors import FieldError, InvalidInput

EventKind = Literal["entry-posted", "entry-edited", "entry-retracted", "pin-changed",
                    "fact-updated", "blog-updated"]
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)
# "wh_" and 16 hex digits (64 random bits).
ENDPOINT_ID_PATTERN = r"^wh_[0-9a-f]{16}" + END
# Endpoints a newsroom may register at once: each is a task and an outbox on the process
# that delivers, and a POST per change.
MAX_ENDPOINTS = 100
# Delivery attempts kept per endpoint (GET /api/webhooks/{id}/deliveries), newest first.
DELIVERIES_KEPT = 50

WebhookUrl = Annotated[str, Meta(
    pattern=r"^https?://\S+" + END, max_length=2000,
    description="an http(s):// URL, without a user name or password")]
BlogSlug = Annotated[str, Meta(pattern=SLUG_PATTERN,
                               description="1 to 64 lowercase letters, digits and inner hyphens")]


class NewWebhook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: WebhookUrl
    # Leave out for all six kinds.
    events: Annotated[list[EventKind], Meta(min_length=1, max_length=6)] | None = None
    # Leave out for every blog, those opened later included. A slug may name a blog not
    # opened yet (coverage planned ahead): it is sent that blog's changes once it is.
    blogs: Annotated[list[BlogSlug], Meta(min_length=1, max_length=100)] | None = None


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    """An endpoint as the store keeps it. Its secret signs what it is sent."""

    id: str
    url: str
    events: list[str]
    # None: every blog.
    blogs: list[str] | None
    secret: str
    created_at: datetime
    created_by: str
    # Redis's clock (ms) at registration: it is sent the events logged after it (a stream
    # id is stamped with the same clock), never a blog's past.
    created_ms: int
    # Set when its deliveries failed for the whole retry window: nothing more is queued
    # for it (register it again to start over).
    disabled_at: datetime | None = None

    def wants(self, slug: str, event_kind: str, event_ms: int) -> bool:
        return (self.disabled_at is None and event_ms >= self.created_ms
                and event_kind in self.events and (self.blogs is None or slug in self.blogs))


class WebhookView(msgspec.Struct, frozen=True, kw_only=True):
    """An endpoint as editors see it: never its secret."""

    id: str
    url: str
    events: list[str]
    # null: every blog.
    blogs: list[str] | None
    created_at: datetime
    created_by: str
    disabled: bool
    disabled_at: datetime | None
    # Changes waiting to be delivered to it, in order.
    pending: int


class CreatedWebhook(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a registration: the only time the secret is shown."""

    id: str
    url: str
    events: list[str]
    blogs: list[str] | None
    created_at: datetime
    # "whsec_" and base64: verify each delivery with it (the Standard Webhooks scheme).
    secret: str


class WebhookList(msgspec.Struct, frozen=True):
    webhooks: list[WebhookView]


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt to deliver one change to an endpoint."""

    event_id: str
    blog: str
    type: str
    # 1 for the first try of this change, 2 for its first retry, ...
    attempt: int
    # The endpoint's answer; null when there was none (refused, timed out).
    status_code: int | None
    # Why it failed; null when it succeeded (a 2xx).
    error: str | None
    at: datetime
    duration_ms: float
    # When it is tried again; null after a success, or when the endpoint was disabled.
    next_retry_at: datetime | None


class Deliveries(msgspec.Struct, frozen=True):
    # The newest first, at most DELIVERIES_KEPT.
    deliveries: list[Delivery]


class WebhookData(msgspec.Struct, frozen=True, kw_only=True):
    blog: str
    event_id: str
    version: int
    change: Change


class WebhookMessage(msgspec.Struct, frozen=True, kw_only=True):
    """The body of a delivery."""

    type: str
    # When the change was logged.
    timestamp: datetime
    data: WebhookData


def message(slug: str, rec: Recorded, change: Change, event_kind: str) -> WebhookMessage:
    """The body for `rec`, whose `change` readers' streams carry as `event_kind`."""
    return WebhookMessage(type=event_kind, timestamp=rec.at,
                          data=WebhookData(blog=slug, event_id=rec.id, version=rec.version,
                                           change=change))


def check_new_webhook(cmd: NewWebhook) -> None:
    """What the schema cannot say: a URL a client library can use, no user name."""
    problem = url_problem(cmd.url)
    if problem is None and re.match(r"^https?://[^/?#]*:0*(?:[/?#]|$)", cmd.url):
        problem = "has port 0, which nothing listens on"
    if problem is not None:
        raise InvalidInput([FieldError("url", problem)])


def distinct(values: list[str]) -> list[str]:
    """`values` without repeats, in their order."""
    return list(dict.fromkeys(values))


def backoff(failures: int, *, base: float, cap: float, jitter: float, draw: float) -> float:
    """Seconds to wait after the `failures`-th failure in a row: base, 2 base, 4 base, ...
    (1, 2, 4, ... s), each moved by up to ±`jitter` of itself (`draw`, from 0 to 1, picks
    where), so endpoints failing together do not retry together; never more than `cap`."""
    delay = base * 2.0 ** min(failures - 1, 62)
    return min(cap, delay * (1 - jitter + 2 * jitter * draw))
