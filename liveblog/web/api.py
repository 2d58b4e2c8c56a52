"""The JSON API: one thin handler per operation, and the table of operations that both the
router and the OpenAPI document are built from (so neither can forget a route)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import msgspec
from markupsafe import escape
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from liveblog import markup
from liveblog.config import Config
from liveblog.domain import commands, ids
from liveblog.domain.commands import (
    ENTRY_ID_PATTERN,
    FACT_KEY_PATTERN,
    SLUG_PATTERN,
    BlogChanges,
    EditRequest,
    EntryChanges,
    EntryPreview,
    FactInput,
    NewBlog,
    NewEntry,
    PersonChanges,
    Pin,
    Publishing,
    Rejection,
    Retraction,
)
from liveblog.domain.events import BlogOpened, Event, Recorded, Role, kind
from liveblog.domain.history import EntryHistory, TimelineRow, entry_history, timeline
from liveblog.domain.render import render_uncached
from liveblog.domain.state import Blog, Entry, fold, posted_entry
from liveblog.domain.views import (
    DEFAULT_PAGE,
    HISTORY_PAGE,
    MAX_PAGE,
    FactHistory,
    NewsroomEntry,
    PublicBlog,
    PublicFact,
    Queue,
    fact_history,
    newsroom_entry,
    public_blog,
    public_entry,
    public_fact,
    queue,
)
from liveblog.domain.webhooks import (
    DELIVERIES_KEPT,
    ENDPOINT_ID_PATTERN,
    EVENT_KINDS,
    MAX_ENDPOINTS,
    CreatedWebhook,
    Deliveries,
    Endpoint,
    NewWebhook,
    WebhookList,
    WebhookView,
    check_new_webhook,
    distinct,
)
from liveblog.durability import findings
from liveblog.errors import (
    Conflict,
    EntryLocked,
    FieldError,
    InvalidInput,
    NotFound,
    NotReady,
    StoreUnavailable,
)
from liveblog.live import AUDIENCE_TTL_SECONDS, Hub
from liveblog.presence import Heartbeat, Presence, PresenceView
from liveblog.service import Renamed, Service, fingerprint, utcnow
from liveblog.store import BlogPage, Person
from liveblog.web import oembed, session
from liveblog.web.caching import READER_CACHE, cached, etag
from liveblog.web.requests import (
    IDEMPOTENCY_KEY,
    IF_MATCH,
    OVERRIDE_LOCK,
    authenticate,
    entry_id_from,
    fact_key_from,
    idempotency_key,
    if_match_revision,
    overrides_lock,
    parse_json,
    person_id_from,
    query_entry_id,
    query_event_id,
    query_int,
    query_slug,
    read_body,
    read_json,
    webhook_id_from,
)

# Re-exported: web/stream.py reads a stream's slug with it from here.
from liveblog.web.requests import slug_from as slug_from
from liveblog.web.viewcache import ViewCache
from liveblog.webhooks import new_endpoint_id, new_secret, target_problem

# -- response shapes -----------------------------------------------------------------------


class EntryResult(msgspec.Struct, frozen=True, kw_only=True):
    # With its workflow state: an unpublished entry is only the newsroom's.
    entry: NewsroomEntry
    # The event this request appended; null when the request changed nothing.
    event_id: str | None
    version: int


class RetractionResult(msgspec.Struct, frozen=True, kw_only=True):
    entry_id: str
    event_id: str | None
    version: int


class PinResult(msgspec.Struct, frozen=True, kw_only=True):
    pinned_entry_id: str | None
    event_id: str | None
    version: int


class FactResult(msgspec.Struct, frozen=True, kw_only=True):
    fact: PublicFact
    event_id: str | None
    version: int


class LoggedEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    version: int
    type: str
    at: datetime
    actor: str
    role: Role
    data: Event
    # The actor's identity; null for events logged before identities were recorded.
    actor_id: str | None
    # The actor's byline then; null for events logged before display names were.
    actor_name: str | None


class EventPage(msgspec.Struct, frozen=True, kw_only=True):
    events: list[LoggedEvent]
    # Pass as ?after= for the next page; null once the log is read to its end.
    next: str | None


class Timeline(msgspec.Struct, frozen=True):
    events: list[TimelineRow]


class Me(msgspec.Struct, frozen=True):
    name: str
    role: Role
    # The identity behind the token: what owns its entries; kept when it is rotated.
    id: str
    # The byline its updates carry.
    display_name: str


class People(msgspec.Struct, frozen=True):
    # Every identity a token was issued to, the oldest first; revoked ones too (their
    # entries keep their bylines).
    people: list[Person]


class Preview(msgspec.Struct, frozen=True, kw_only=True):
    # The body's HTML alone (what this answered before there was an article).
    html: str
    # The whole <article> exactly as the reader page renders it: the caller's byline, the
    # time now, badges, title, picture, embed, and the share link if a slug was given.
    article: str


class Health(msgspec.Struct, frozen=True):
    status: Literal["ok"]
    redis: Literal["ok"]


class Readiness(msgspec.Struct, frozen=True):
    status: Literal["ready"]
    # Each check and what it found: redis, durability, tailers, draining.
    checks: dict[str, str]


class Lag(msgspec.Struct, frozen=True):
    # Milliseconds from an update's append to its write to readers, over the last minute:
    # the worst of the server processes' medians and 95th percentiles.
    p50_ms: float
    p95_ms: float


class Audience(msgspec.Struct, frozen=True, kw_only=True):
    # Readers with the blog open now, over every server process.
    readers: int
    # Server processes holding some of them.
    processes: int
    # null when no update reached readers in the last minute.
    lag: Lag | None


class EmbedCode(msgspec.Struct, frozen=True, kw_only=True):
    # The line another site pastes where the blog should appear (static/embed.js).
    snippet: str
    # The page that line frames (web/embed.py), for a site that writes its own iframe.
    url: str
    # The sites that may frame it (LIVEBLOG_EMBED_ORIGINS): ["*"] for any.
    origins: list[str]


# -- helpers -------------------------------------------------------------------------------

# GET /api/blogs/{slug} by blog state and page (see viewcache.py); tens of KB each.
_blog_json: ViewCache[tuple[bytes, str]] = ViewCache(128)  # (body, its ETag)
# How long /readyz waits for each answer from Redis.
READY_TIMEOUT_SECONDS = 1.0
# No history is longer than its blog's log; this only keeps the number a number.
MAX_HISTORY_START = 10**12


def json_response(
    body: msgspec.Struct, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        msgspec.json.encode(body), status_code=status, headers=headers,
        media_type="application/json",
    )


def service_from(request: Request) -> Service:
    service: Service = request.state.service
    return service


def presence_from(request: Request) -> Presence:
    presence: Presence = request.state.presence
    return presence


def _event_id(recorded: Recorded | None) -> str | None:
    return None if recorded is None else recorded.id


# -- handlers ------------------------------------------------------------------------------


async def list_blogs(request: Request) -> Response:
    limit = query_int(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    before = query_slug(request, "before")
    return json_response(await service_from(request).list_blogs(limit=limit, before=before))



def snippet(base: str, slug: str) -> str:
    """The embed's one line: static/embed.js from this site, for the blog `slug`."""
    return (f'<script async src="{escape(base)}/static/embed.js" '
            f'data-liveblog="{escape(slug)}"></script>')


async def embed_code(request: Request) -> Response:
    slug = slug_from(request)
    await service_from(request).blog(slug)  # 404 for a blog that does not exist
    config: Config = request.state.config
    allowed = config.embed_origins.split()
    code = EmbedCode(snippet=snippet(config.public_url, slug),
                     url=f"{config.public_url}/blogs/{slug}/embed",
                     origins=["*"] if allowed == ["*"] else allowed[1:])  # not 'self'
    return json_response(code, headers={"Cache-Control": READER_CACHE})


async def create_blog(request: Request) -> Response:
    actor = await authenticate(request)
    cmd = await read_json(request, NewBlog)
    outcome = await service_from(request).execute(
        cmd.slug, actor, lambda blog: commands.open_blog(blog, actor, cmd)
    )
    return json_response(
        public_blog(outcome.blog), 201, headers={"Location": f"/api/blogs/{cmd.slug}"}
    )


async def get_blog(request: Request) -> Response:
    slug = slug_from(request)
    limit = query_int(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    before = query_entry_id(request, "before")
    blog = await service_from(request).blog(slug)
    key = (slug, blog.last_event_id, limit, before)
    found = _blog_json.get(key)
    if found is None:
        body = msgspec.json.encode(public_blog(blog, limit=limit, before=before))
        found = body, etag(blog.version, body)
        _blog_json.put(key, found)
    # The same for everyone: a CDN may hold it briefly (caching.py); signed in, no-store.
    return cached(request, *found, media_type="application/json")


async def update_blog(request: Request) -> Response:
    slug = slug_from(request)
    actor = await authenticate(request)
    cmd = await read_json(request, BlogChanges)
    outcome = await service_from(request).execute(
        slug, actor, lambda blog: commands.update_blog(_existing(blog, slug), actor, cmd)
    )
    return json_response(public_blog(outcome.blog))


async def post_entry(request: Request) -> Response:
    slug = slug_from(request)
    actor = await authenticate(request)
    key = idempotency_key(request)
    body = await read_body(request)
    cmd = parse_json(request, body, NewEntry)
    service = service_from(request)
    entry_id = service.new_id()
    outcome = await service.execute(
        slug,
        actor,
        lambda blog: commands.post_entry(_existing(blog, slug), actor, cmd, entry_id,
                                         now=service.clock()),
        idempotency=None if key is None else (key, fingerprint(body)),
    )
    assert outcome.recorded is not None
    entry = newsroom_entry(posted_entry(outcome.recorded), outcome.blog)
    headers = {"Location": f"/api/blogs/{slug}#entry-{entry.id}", "ETag": f'"{entry.revision}"'}
    if outcome.repeated:
        # The header's name is the one clients of idempotency keys know (Stripe's); in our
        # own words it is a repeated request, not the editors' replay.
        headers["Idempotent-Replayed"] = "true"
    result = EntryResult(
        entry=entry, event_id=outcome.recorded.id, version=outcome.recorded.version
    )
    return json_response(result, 201, headers=headers)


async def edit_entry(request: Request) -> Response:
    slug = slug_from(request)
    entry_id = entry_id_from(request)
    actor = await authenticate(request)
    revision = if_match_revision(request)
    override = overrides_lock(request)
    cmd = await read_json(request, EntryChanges)
    lock = None if override else await presence_from(request).lock(slug, entry_id)

    def decide(blog: Blog | None) -> Event | None:
        edited = commands.edit_entry(
            _existing(blog, slug), actor, entry_id, cmd, if_revision=revision)
        # After the edit's own checks: someone who may not edit the entry learns nothing
        # of who has it open.
        if lock is not None and lock.holder.id != actor.id:
            raise EntryLocked(entry_id, lock.holder.name, lock.expires_at)
        return edited

    outcome = await service_from(request).execute(slug, actor, decide)
    entry = newsroom_entry(_entry(outcome.blog, entry_id), outcome.blog)
    result = EntryResult(
        entry=entry, event_id=_event_id(outcome.recorded), version=outcome.blog.version
    )
    return json_response(result, headers={"ETag": f'"{entry.revision}"'})


async def publish_entry(request: Request) -> Response:
    slug = slug_from(request)
    entry_id = entry_id_from(request)
    actor = await authenticate(request)
    cmd = await read_json(request, Publishing, optional=True)
    service = service_from(request)
    outcome = await service.execute(
        slug, actor,
        lambda blog: commands.publish_entry(_existing(blog, slug), actor, entry_id, cmd,
                                            now=service.clock()),
    )
    entry = newsroom_entry(_entry(outcome.blog, entry_id), outcome.blog)
    return json_response(EntryResult(entry=entry, event_id=_event_id(outcome.recorded),
                                     version=outcome.blog.version))


async def reject_entry(request: Request) -> Response:
    slug = slug_from(request)
    entry_id = entry_id_from(request)
    actor = await authenticate(request)
    cmd = await read_json(request, Rejection)
    outcome = await service_from(request).execute(
        slug, actor,
        lambda blog: commands.reject_entry(_existing(blog, slug), actor, entry_id, cmd),
    )
    entry = newsroom_entry(_entry(outcome.blog, entry_id), outcome.blog)
    return json_response(EntryResult(entry=entry, event_id=_event_id(outcome.recorded),
                                     version=outcome.blog.version))


async def read_queue(request: Request) -> Response:
    """Unpublished entries: a contributor sees its own; a reporter its own and everyone's
    submissions (to follow up on them); an editor all of them."""
    slug = slug_from(request)
    actor = await authenticate(request)
    blog = await service_from(request).blog(slug)

    def visible(entry: Entry) -> bool:
        own = bool(actor.id) and entry.author_id == actor.id
        if actor.role == "editor":
            return True
        if actor.role == "reporter":
            return own or entry.state == "submitted"
        return own

    return json_response(queue(blog, visible), headers={"Cache-Control": "no-store"})


def _entry(blog: Blog, entry_id: str) -> Entry:
    """An entry a write has just changed, published or not."""
    entry = blog.entries.get(entry_id) or blog.unpublished.get(entry_id)
    if entry is None:
        raise NotFound(f"blog {blog.slug!r} has no entry {entry_id!r}")
    return entry


async def retract_entry(request: Request) -> Response:
    slug = slug_from(request)
    entry_id = entry_id_from(request)
    actor = await authenticate(request)
    cmd = await read_json(request, Retraction, optional=True)
    outcome = await service_from(request).execute(
        slug,
        actor,
        lambda blog: commands.retract_entry(_existing(blog, slug), actor, entry_id, cmd),
    )
    result = RetractionResult(
        entry_id=entry_id, event_id=_event_id(outcome.recorded), version=outcome.blog.version
    )
    return json_response(result)


async def set_pin(request: Request) -> Response:
    slug = slug_from(request)
    actor = await authenticate(request)
    cmd = await read_json(request, Pin)
    outcome = await service_from(request).execute(
        slug, actor, lambda blog: commands.change_pin(_existing(blog, slug), actor, cmd)
    )
    result = PinResult(
        pinned_entry_id=outcome.blog.pinned,
        event_id=_event_id(outcome.recorded),
        version=outcome.blog.version,
    )
    return json_response(result)


async def update_fact(request: Request) -> Response:
    slug = slug_from(request)
    actor = await authenticate(request)
    key = fact_key_from(request, creating=True)
    cmd = await read_json(request, FactInput)
    outcome = await service_from(request).execute(
        slug, actor, lambda blog: commands.update_fact(_existing(blog, slug), actor, key, cmd)
    )
    result = FactResult(
        fact=public_fact(outcome.blog.facts[key]),
        event_id=_event_id(outcome.recorded),
        version=outcome.blog.version,
    )
    return json_response(result)


async def read_fact_history(request: Request) -> Response:
    slug = slug_from(request)
    key = fact_key_from(request)
    start = query_int(request, "start", 0, 0, MAX_HISTORY_START)
    limit = query_int(request, "limit", HISTORY_PAGE, 1, HISTORY_PAGE)
    blog = await service_from(request).blog(slug)
    return json_response(fact_history(blog, key, start=start, limit=limit))


async def read_events(request: Request) -> Response:
    slug = slug_from(request)
    actor = await authenticate(request)
    commands.require_editor(actor, "read the event log")
    after = query_event_id(request, "after")
    limit = query_int(request, "limit", 100, 1, 1000)
    events, next_after = await service_from(request).events(slug, after=after, limit=limit)
    page = EventPage(
        events=[
            LoggedEvent(
                id=e.id, version=e.version, type=kind(e.event), at=e.at, actor=e.actor,
                role=e.role, data=e.event, actor_id=e.actor_id, actor_name=e.actor_name,
            )
            for e in events
        ],
        next=next_after,
    )
    return json_response(page)


async def state_at(request: Request) -> Response:
    slug = slug_from(request)
    actor = await authenticate(request)
    commands.require_editor(actor, "read past states")
    at = query_event_id(request, "at", versions=True)
    if at is None:
        raise InvalidInput([FieldError("at", "required: an event id or a version number")])
    limit = query_int(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    before = query_entry_id(request, "before")
    blog = await service_from(request).blog_at(slug, at)
    return json_response(public_blog(blog, limit=limit, before=before))


async def read_timeline(request: Request) -> Response:
    slug = slug_from(request)
    actor = await authenticate(request)
    commands.require_editor(actor, "replay the blog")
    events = await service_from(request).all_events(slug)
    return json_response(Timeline(timeline(events)))


async def read_entry_history(request: Request) -> Response:
    slug = slug_from(request)
    entry_id = entry_id_from(request)
    actor = await authenticate(request)
    commands.require_editor(actor, "read an entry's history")
    history = entry_history(await service_from(request).all_events(slug), entry_id)
    if history is None:
        raise NotFound(f"blog {slug!r} never had an entry {entry_id!r}")
    return json_response(history)


async def me(request: Request) -> Response:
    actor = await authenticate(request)
    return json_response(Me(actor.name, actor.role, actor.id, actor.byline))


async def list_people(request: Request) -> Response:
    actor = await authenticate(request)
    commands.require_editor(actor, "list the newsroom's people")
    return json_response(People(await service_from(request).store.list_people()))


async def rename_person(request: Request) -> Response:
    identity = person_id_from(request)
    actor = await authenticate(request)
    commands.require_editor(actor, "change bylines")
    cmd = await read_json(request, PersonChanges)
    renamed: Renamed = await service_from(request).rename(identity, cmd.display_name, actor)
    return json_response(renamed)


# The id a previewed article has (ids the server mints are never this).
PREVIEW_ID = "preview"


async def preview(request: Request) -> Response:
    actor = await authenticate(request)
    cmd = await read_json(request, EntryPreview)
    event = commands.preview_entry(cmd, PREVIEW_ID)
    at = service_from(request).clock()

    def recorded(version: int, event: Event) -> Recorded:
        return Recorded(id=f"0-{version}", version=version, at=at, actor=actor.name,
                        role=actor.role, event=event, actor_id=actor.id or None,
                        actor_name=actor.display_name or None)

    # The post folded into a blog of its own, as the log would fold it (state.apply,
    # views.public_entry): the byline, the time and the rest are what the page will show.
    blog = fold([recorded(1, BlogOpened(slug=cmd.slug or "preview", title="Preview")),
                 recorded(2, event)])
    assert blog is not None
    entry = public_entry(blog.entries[PREVIEW_ID], blog, markdown=render_uncached)
    return json_response(Preview(html=entry.html,
                                 article=markup.article(entry, cmd.slug or "")))


async def healthz(request: Request) -> Response:
    await service_from(request).store.ping()
    return json_response(Health("ok", "ok"))


async def readyz(request: Request) -> Response:
    """Whether a load balancer should send this server readers: Redis answers within
    READY_TIMEOUT_SECONDS and keeps what we acknowledge (as LIVEBLOG_DURABILITY wants),
    no tailer is stuck, and the server is not draining. 503 names every check that failed."""
    hub: Hub = request.state.hub
    config: Config = request.state.config
    store = service_from(request).store
    checks: dict[str, str] = {}
    failed: list[str] = []
    try:
        await asyncio.wait_for(store.ping(), READY_TIMEOUT_SECONDS)
        found = await asyncio.wait_for(store.durability(), READY_TIMEOUT_SECONDS)
    except (StoreUnavailable, TimeoutError):
        failed.append(f"redis: no answer within {READY_TIMEOUT_SECONDS:g} s")
    else:
        checks["redis"] = "ok"
        fatal, _ = findings(found)
        if fatal and config.durability == "strict":
            failed.append("durability: " + fatal[0])
        else:
            checks["durability"] = "ok" if not fatal else "warn: " + fatal[0]
    stuck = hub.stuck_tailers()
    if stuck:
        failed.append("tailers: no answer from Redis lately for " + ", ".join(stuck[:10]))
    else:
        checks["tailers"] = f"ok ({len(hub.tailers)} running)"
    if hub.draining:
        failed.append("draining: this server is shutting down")
    else:
        checks["draining"] = "no"
    if failed:
        raise NotReady("not ready: " + "; ".join(failed))
    return json_response(Readiness("ready", checks))


async def audience(request: Request) -> Response:
    await authenticate(request)
    slug = slug_from(request)
    service = service_from(request)
    await service.blog(slug)  # 404 for a blog that does not exist
    reports = await service.store.audience(
        slug, fresh_after=time.time() - AUDIENCE_TTL_SECONDS)
    lags = [(r.lag_p50, r.lag_p95) for r in reports
            if r.lag_p50 is not None and r.lag_p95 is not None]
    lag = None
    if lags:
        lag = Lag(round(max(p50 for p50, _ in lags) * 1000, 1),
                  round(max(p95 for _, p95 in lags) * 1000, 1))
    return json_response(Audience(
        readers=sum(r.readers for r in reports),
        processes=sum(1 for r in reports if r.readers), lag=lag))


# -- webhooks (liveblog/webhooks.py delivers them) -------------------------------------------


async def create_webhook(request: Request) -> Response:
    actor = await authenticate(request)
    commands.require_editor(actor, "register webhooks")
    cmd = await read_json(request, NewWebhook)
    check_new_webhook(cmd)
    config: Config = request.state.config
    if config.webhooks_forbid_private:
        problem = await target_problem(cmd.url)
        if problem is not None:
            raise InvalidInput([FieldError("url", problem)])
    store = service_from(request).store
    wanted = set(cmd.events or EVENT_KINDS)
    endpoint = Endpoint(
        id=new_endpoint_id(), url=cmd.url,
        events=[event_kind for event_kind in EVENT_KINDS if event_kind in wanted],
        blogs=None if cmd.blogs is None else distinct(cmd.blogs),
        secret=new_secret(), created_at=utcnow(), created_by=actor.name,
        created_ms=await store.server_time_ms(),
    )
    if not await store.create_webhook(endpoint, most=MAX_ENDPOINTS):
        raise Conflict(f"{MAX_ENDPOINTS} webhook endpoints are registered, the most there "
                       "may be; delete one first")
    created = CreatedWebhook(id=endpoint.id, url=endpoint.url, events=endpoint.events,
                             blogs=endpoint.blogs, created_at=endpoint.created_at,
                             secret=endpoint.secret)
    return json_response(created, 201, headers={"Location": f"/api/webhooks/{endpoint.id}"})


async def list_webhooks(request: Request) -> Response:
    actor = await authenticate(request)
    commands.require_editor(actor, "see webhooks")
    store = service_from(request).store
    endpoints = await store.webhooks()
    pending = await store.webhook_backlogs([endpoint.id for endpoint in endpoints])
    return json_response(WebhookList([
        WebhookView(id=e.id, url=e.url, events=e.events, blogs=e.blogs,
                    created_at=e.created_at, created_by=e.created_by,
                    disabled=e.disabled_at is not None, disabled_at=e.disabled_at,
                    pending=waiting)
        for e, waiting in zip(endpoints, pending, strict=True)
    ]))


async def delete_webhook(request: Request) -> Response:
    endpoint_id = webhook_id_from(request)
    actor = await authenticate(request)
    commands.require_editor(actor, "delete webhooks")
    if not await service_from(request).store.delete_webhook(endpoint_id):
        raise NotFound(f"no webhook {endpoint_id!r}")
    return Response(status_code=204)


async def webhook_deliveries(request: Request) -> Response:
    endpoint_id = webhook_id_from(request)
    actor = await authenticate(request)
    commands.require_editor(actor, "see webhook deliveries")
    store = service_from(request).store
    if await store.webhook(endpoint_id) is None:
        raise NotFound(f"no webhook {endpoint_id!r}")
    return json_response(Deliveries(await store.webhook_deliveries(endpoint_id)))


async def beat(request: Request) -> Response:
    slug = slug_from(request)
    actor = await authenticate(request)
    cmd = await read_json(request, Heartbeat)
    return json_response(await presence_from(request).beat(slug, actor, cmd.editing))


async def read_presence(request: Request) -> Response:
    await authenticate(request)
    slug = slug_from(request)
    return json_response(await presence_from(request).view(slug))


async def leave(request: Request) -> Response:
    slug = slug_from(request)
    actor = await authenticate(request)
    await presence_from(request).leave(slug, actor)
    return Response(status_code=204)


def _existing(blog: Blog | None, slug: str) -> Blog:
    if blog is None:
        raise NotFound(f"no blog {slug!r}")
    return blog


# -- the table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["path", "query", "header"]
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    endpoint: Callable[[Request], Awaitable[Response]]
    summary: str
    who: Literal["anyone", "contributor", "reporter", "editor", "author"]
    response: type[Any] | None  # None: no content
    status: int = 200
    body: type[Any] | None = None
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    # The body may be left out (DELETE's always may): e.g. publish, which without one
    # publishes now.
    body_optional: bool = False


SLUG = Param("slug", "path", "The blog's slug.", required=True)
ENTRY = Param("entry_id", "path", "The entry's id.", required=True)
BEFORE_ENTRY = Param("before", "query", "An entry id: only entries posted before it.",
                     {"type": "string", "pattern": ENTRY_ID_PATTERN})
WEBHOOK = Param("webhook_id", "path", "The webhook endpoint's id.",
                {"type": "string", "pattern": ENDPOINT_ID_PATTERN}, required=True)
WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422, 503)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET", "/api/blogs", list_blogs, "The blogs, the most recently opened first",
        "anyone", BlogPage,
        params=(
            Param("limit", "query", f"Blogs per page (1-{MAX_PAGE}, default {DEFAULT_PAGE}).",
                  {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
            Param("before", "query", "A slug from the previous page's next_before.",
                  {"type": "string", "pattern": SLUG_PATTERN}),
        ),
        errors=(404, 422, 503),
    ),
    Operation("POST", "/api/blogs", create_blog, "Open a blog", "editor", PublicBlog,
              status=201, body=NewBlog, errors=(400, 401, 403, 409, 413, 415, 422, 503)),
    Operation(
        "GET", "/api/blogs/{slug}", get_blog, "A blog as readers see it", "anyone", PublicBlog,
        params=(
            SLUG,
            Param("limit", "query", f"Entries per page (1-{MAX_PAGE}, default {DEFAULT_PAGE}).",
                  {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
            BEFORE_ENTRY,
        ),
        errors=(404, 422, 503),
    ),
    Operation("GET", "/api/blogs/{slug}/embed", embed_code,
              "The line another site pastes to embed the blog, live", "anyone", EmbedCode,
              params=(SLUG,), errors=(404, 503)),
    Operation("PATCH", "/api/blogs/{slug}", update_blog, "Change headline, description or status",
              "editor", PublicBlog, body=BlogChanges, params=(SLUG,), errors=WRITE_ERRORS),
    Operation(
        "POST", "/api/blogs/{slug}/entries", post_entry,
        "Post an entry: now, as a draft, or scheduled (contributors: submitted)", "contributor",
        EntryResult, status=201, body=NewEntry,
        params=(SLUG, Param("Idempotency-Key", "header",
                            "Retries with the same key return the first result.",
                            {"type": "string", "pattern": IDEMPOTENCY_KEY.pattern})),
        errors=WRITE_ERRORS,
    ),
    Operation(
        "PATCH", "/api/blogs/{slug}/entries/{entry_id}", edit_entry,
        "Edit an entry (its author, or an editor; a contributor until it is published)",
        "author", EntryResult, body=EditRequest,
        params=(SLUG, ENTRY,
                Param("If-Match", "header", 'The revision the edit is based on, e.g. "2".',
                      {"type": "string", "pattern": IF_MATCH.pattern}),
                Param(OVERRIDE_LOCK, "header",
                      "true: save even though someone else has the entry open (its soft "
                      "lock; without this, 409 entry-locked names them).",
                      {"type": "string", "enum": ["true", "false"]})),
        errors=(*WRITE_ERRORS, 410, 412),
    ),
    Operation(
        "DELETE", "/api/blogs/{slug}/entries/{entry_id}", retract_entry,
        "Retract an entry (its author, or an editor); the log keeps it", "author",
        RetractionResult, body=Retraction, params=(SLUG, ENTRY),
        errors=(*WRITE_ERRORS, 410),
    ),
    Operation(
        "POST", "/api/blogs/{slug}/entries/{entry_id}/publish", publish_entry,
        "Publish an unpublished entry now, or schedule it ({publish_at}): editors any, "
        "reporters their own drafts", "reporter", EntryResult, body=Publishing,
        body_optional=True, params=(SLUG, ENTRY), errors=(*WRITE_ERRORS, 410),
    ),
    Operation(
        "POST", "/api/blogs/{slug}/entries/{entry_id}/reject", reject_entry,
        "Reject an unpublished entry, with the reason its author will see", "editor",
        EntryResult, body=Rejection, params=(SLUG, ENTRY), errors=(*WRITE_ERRORS, 410),
    ),
    Operation(
        "GET", "/api/blogs/{slug}/queue", read_queue,
        "Unpublished entries (drafts, submitted, scheduled, rejected): a contributor's own; "
        "a reporter's own and all submitted; all for editors", "contributor", Queue,
        params=(SLUG,), errors=(401, 404, 503),
    ),
    Operation("PUT", "/api/blogs/{slug}/pinned", set_pin, "Pin an entry, or unpin (null)",
              "editor", PinResult, body=Pin, params=(SLUG,), errors=(*WRITE_ERRORS, 410)),
    Operation(
        "PUT", "/api/blogs/{slug}/facts/{key}", update_fact, "Update a key figure", "reporter",
        FactResult, body=FactInput,
        params=(SLUG, Param("key", "path", "The figure's key, e.g. death-toll.",
                            {"type": "string", "pattern": FACT_KEY_PATTERN}, required=True)),
        errors=WRITE_ERRORS,
    ),
    Operation(
        "GET", "/api/blogs/{slug}/facts/{key}/history", read_fact_history,
        "Every value a key figure had, oldest first, a page at a time", "anyone", FactHistory,
        params=(
            SLUG,
            Param("key", "path", "The figure's key, e.g. death-toll.",
                  {"type": "string", "pattern": FACT_KEY_PATTERN}, required=True),
            Param("start", "query", "The position of the first value (0: its first).",
                  {"type": "integer", "minimum": 0, "maximum": MAX_HISTORY_START}),
            Param("limit", "query",
                  f"Values per page (1-{HISTORY_PAGE}, default {HISTORY_PAGE}).",
                  {"type": "integer", "minimum": 1, "maximum": HISTORY_PAGE}),
        ),
        errors=(404, 422, 503),
    ),
    Operation(
        "GET", "/api/blogs/{slug}/events", read_events, "The raw event log, in order", "editor",
        EventPage,
        params=(
            SLUG,
            Param("after", "query", "An event id: only events after it.",
                  {"type": "string", "pattern": ids.STREAM_ID_PATTERN}),
            Param("limit", "query", "Events per page (1-1000, default 100).",
                  {"type": "integer", "minimum": 1, "maximum": 1000}),
        ),
        errors=(401, 403, 404, 422, 503),
    ),
    Operation(
        "GET", "/api/blogs/{slug}/state", state_at, "The public state right after an event",
        "editor", PublicBlog,
        params=(
            SLUG,
            Param("at", "query", "An event id, or a blog version number.",
                  {"type": "string", "pattern": ids.STREAM_ID_OR_VERSION_PATTERN}, required=True),
            Param("limit", "query", f"Entries per page (1-{MAX_PAGE}, default {DEFAULT_PAGE}).",
                  {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
            BEFORE_ENTRY,
        ),
        errors=(401, 403, 404, 422, 503),
    ),
    Operation("GET", "/api/blogs/{slug}/timeline", read_timeline,
              "Every event with who, when and a one-line summary", "editor", Timeline,
              params=(SLUG,), errors=(401, 403, 404, 503)),
    Operation("GET", "/api/blogs/{slug}/entries/{entry_id}/history", read_entry_history,
              "Every revision of an entry with word-level diffs, and its retraction",
              "editor", EntryHistory, params=(SLUG, ENTRY), errors=(401, 403, 404, 503)),
    Operation("GET", "/api/me", me, "Who this token belongs to", "contributor", Me,
              errors=(401, 503)),
    Operation("GET", "/api/people", list_people,
              "Every identity: token name, byline, role, active or revoked", "editor",
              People, errors=(401, 403, 503)),
    Operation("PATCH", "/api/people/{person_id}", rename_person,
              "Change someone's byline: on what they post from now on, and on their entries "
              "in every blog (a byline-changed event in each)", "editor", Renamed,
              body=PersonChanges,
              params=(Param("person_id", "path", "The identity (id in GET /api/people).",
                            {"type": "string", "pattern": commands.ACTOR_ID_PATTERN},
                            required=True),),
              errors=(400, 401, 403, 404, 409, 413, 415, 422, 503)),
    Operation("POST", "/api/preview", preview,
              "Render an entry (Markdown, title, image, embed) exactly as readers will see "
              "it: its body's HTML and its whole article", "contributor", Preview,
              body=EntryPreview, errors=(400, 401, 413, 415, 422, 503)),
    Operation("GET", "/healthz", healthz, "Health, including Redis", "anyone", Health,
              errors=(503,)),
    Operation("GET", "/readyz", readyz,
              "Ready for readers: Redis answers and keeps what it acknowledges, no tailer "
              "is stuck, not draining (503 names what failed)", "anyone", Readiness,
              errors=(503,)),
    Operation("GET", "/api/blogs/{slug}/audience", audience,
              "Readers of the blog now, over every server process, and the delivery lag",
              "reporter", Audience, params=(SLUG,), errors=(401, 404, 503)),
    Operation("POST", "/api/blogs/{slug}/presence", beat,
              "A heartbeat (every 10 s, and when focus moves): present on the blog, with "
              "`editing` open; locks that entry unless someone else holds it, and lets go "
              "of the caller's other locks", "reporter", PresenceView, body=Heartbeat,
              params=(SLUG,), errors=(400, 401, 403, 404, 409, 410, 413, 415, 422, 503)),
    Operation("GET", "/api/blogs/{slug}/presence", read_presence,
              "Who is on the blog now, what each has open, and the entries locked",
              "reporter", PresenceView, params=(SLUG,), errors=(401, 404, 503)),
    Operation("DELETE", "/api/blogs/{slug}/presence", leave,
              "Sign off the blog (the console, on leaving the page): lets go of the "
              "caller's locks", "reporter", None, status=204, params=(SLUG,),
              errors=(401, 403, 404, 503)),
    Operation("POST", "/api/session", session.create_session,
              "Sign a browser in: the token goes into an HttpOnly cookie (204)", "anyone",
              None, status=204, body=session.SignIn,
              errors=(400, 401, 403, 413, 415, 422, 503)),
    Operation("GET", "/api/session", session.read_session,
              "Who this browser is signed in as (signed_in false: nobody)", "anyone",
              session.Session, errors=(401, 503)),
    Operation("DELETE", "/api/session", session.delete_session,
              "Sign a browser out (removes the cookie)", "anyone", None, status=204),
    Operation("POST", "/api/webhooks", create_webhook,
              "Register a webhook endpoint; the answer shows its signing secret, once",
              "editor", CreatedWebhook, status=201, body=NewWebhook,
              errors=(400, 401, 403, 409, 413, 415, 422, 503)),
    Operation("GET", "/api/webhooks", list_webhooks,
              "The webhook endpoints (without their secrets), the oldest first", "editor",
              WebhookList, errors=(401, 403, 503)),
    Operation("DELETE", "/api/webhooks/{webhook_id}", delete_webhook,
              "Delete a webhook endpoint and what waits for it", "editor", None,
              status=204, params=(WEBHOOK,), errors=(401, 403, 404, 503)),
    Operation("GET", "/api/webhooks/{webhook_id}/deliveries", webhook_deliveries,
              f"An endpoint's latest delivery attempts, the newest first (at most "
              f"{DELIVERIES_KEPT})", "editor", Deliveries, params=(WEBHOOK,),
              errors=(401, 403, 404, 503)),
    Operation(
        "GET", "/oembed", oembed.oembed,
        "oEmbed 1.0: a blog's page as a rich embed (an iframe of the blog's embed page)",
        "anyone", oembed.OEmbed,
        params=(
            Param("url", "query", "A blog's reader page here, or the page of one of its "
                  "updates (either embeds the blog).",
                  {"type": "string", "minLength": 1, "maxLength": oembed.MAX_URL},
                  required=True),
            Param("format", "query", "json (the default); xml is answered 501.",
                  {"type": "string", "enum": list(oembed.FORMATS)}),
            Param("maxwidth", "query", f"Widest the iframe may be, in pixels (default and "
                  f"most {oembed.WIDTH}).",
                  {"type": "integer", "minimum": 1, "maximum": oembed.MAX_SIZE}),
            Param("maxheight", "query", f"Tallest the iframe may be, in pixels (default "
                  f"and most {oembed.HEIGHT}).",
                  {"type": "integer", "minimum": 1, "maximum": oembed.MAX_SIZE}),
        ),
        errors=(404, 422, 501, 503),
    ),
)


def routes() -> list[Route]:
    """One route per path, whatever its methods: Starlette answers a wrong method with the
    methods of the first route that matched the path, so a route per operation made the
    405 for `PUT /api/blogs` say `Allow: GET, HEAD` and leave out POST."""
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for op in OPERATIONS:
        by_path.setdefault(op.path, {})[op.method] = op.endpoint
    return [Route(path, _by_method(endpoints), methods=list(endpoints))
            for path, endpoints in by_path.items()]


def _by_method(
    endpoints: dict[str, Callable[[Request], Awaitable[Response]]],
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        # Starlette lets HEAD through wherever GET is allowed.
        method = "GET" if request.method == "HEAD" else request.method
        return await endpoints[method](request)

    return endpoint
