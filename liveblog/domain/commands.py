"""Commands: what a newsroom asks for, checked against the current state.

Each command takes the state, the actor and a validated request, and returns the event to
append (or None when the request would change nothing). They raise the errors of
`liveblog.errors`; they never touch the store. Field shapes and limits live in the request
Structs below, so the API, its OpenAPI schema and the CLI share one definition.

A command rebuilt from a logged event (an import, see imports.py) passes `replay=True`:
rules added after events were first logged (a URL a browser must parse, at most MAX_FACTS
figures) then do not apply, because every event any version logged must replay.

Rules a newsroom would expect and that the issue leaves open:
- An ended blog takes no new entries or figures. Editors may still correct, retract and
  pin there (a legally required retraction cannot wait for the blog to reopen); reporters
  cannot change anything on an ended blog.
- A request that would leave everything as it is appends nothing.

The workflow (issue 10). An entry is published, or waits unseen by readers as a draft,
submitted (a contributor's), scheduled, or rejected:
- A contributor's entries are always submitted (asking for "publish" is 403). It may edit
  its own until they are published, and withdraw them; nothing else (figures, pins, any
  published entry: 403).
- A draft is its author's and the editors'. A reporter publishes or schedules its own
  drafts (and reschedules its own scheduled entries); an editor publishes, schedules or
  rejects any unpublished entry, a rejected one included (a change of mind).
- Publishing makes the entry new to readers: posted at that moment, at the top.
  Publishing a published entry appends nothing; rescheduling it is 409.
- A scheduled time must be timezone-aware and in the future (422). At its time the server
  publishes the entry under the name of whoever scheduled it (`publish_due`); on an ended
  blog it waits until the blog is reopened.
- Editing an unpublished entry never reaches readers; a correction is for what readers
  saw, so one on an unpublished entry is 422 (edit the text instead). A rejected entry is
  changed by editors only.
- Retracting (DELETE) an unpublished entry withdraws it: logged as entry-rejected with the
  reason (its author, or an editor), since readers never saw it. Rejecting a published
  entry is 409 (retract it instead).
- Pinning an unpublished entry is 409: the pin would show readers nothing. Marking one a
  key event is only its content; it becomes a key event for readers when published.
- Publishing, scheduling and rejecting are decided on the current state and appended with
  the log's version check, so two processes racing to publish a scheduled entry cannot
  both do it: the loser decides again on the newer state and finds nothing to do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from liveblog.domain.events import (
    Actor,
    BlogOpened,
    BlogUpdated,
    BylineChanged,
    Embed,
    EntryEdited,
    EntryPosted,
    EntryPublished,
    EntryRejected,
    EntryRetracted,
    EntryScheduled,
    FactUpdated,
    Image,
    PinChanged,
    Unpublished,
)
from liveblog.domain.state import Blog, Entry
from liveblog.domain.urls import image_url_problem, normal_path, url_problem
from liveblog.errors import (
    Conflict,
    FieldError,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)

# The end of a pattern, for msgspec (Python's re, whose $ also matches before a final
# newline: "tartus\n" passed as a slug, and a Location header with it broke the response)
# and for the OpenAPI document's readers (ECMA regexes) alike.
END = r"(?!\n)$"
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?" + END
Slug = Annotated[
    str,
    Meta(
        pattern=SLUG_PATTERN,
        description="1 to 64 lowercase letters, digits and inner hyphens",
    ),
]
# A key figure's key, in its URL: /api/blogs/{slug}/facts/{key}.
FACT_KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}" + END
Headline = Annotated[str, Meta(min_length=1, max_length=200)]
Description = Annotated[str, Meta(max_length=2000)]
Body = Annotated[str, Meta(min_length=1, max_length=20000, description="Markdown.")]
ShortTitle = Annotated[
    str, Meta(min_length=1, max_length=120, description="Shown in the key events list.")
]
Url = Annotated[
    str, Meta(pattern=r"^https?://\S+" + END, max_length=2000, description="an http(s):// URL")
]
# An image may be a path on this site, so a blog's own pictures (the demo's) do not name
# the host and port they were first served on; urls.py says which paths.
ImageUrl = Annotated[
    str, Meta(pattern=r"^(?:https?://\S+|/\S*)" + END, max_length=2000,
              description="an http(s):// URL or a path on this site (/...)")
]
Text = Annotated[str, Meta(max_length=500)]
CorrectionText = Annotated[str, Meta(
    min_length=1, max_length=1000,
    description="A correction shown to readers under the entry, as plain text.")]
ENTRY_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}" + END
EntryId = Annotated[str, Meta(pattern=ENTRY_ID_PATTERN, description="an entry id")]
FactKey = Annotated[str, Meta(
    pattern=FACT_KEY_PATTERN,
    description="1 to 40 lowercase letters, digits and hyphens, e.g. death-toll",
)]
# A token's name: who the newsroom sees as the author of its posts.
ACTOR_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}" + END
ActorName = Annotated[str, Meta(pattern=ACTOR_NAME_PATTERN,
                                description="1 to 64 letters, digits, '.', '_' or '-'")]
# An identity (Actor.id): 16 hex digits, or "legacy-" and 16 for tokens from before.
ACTOR_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}" + END
ActorId = Annotated[str, Meta(pattern=ACTOR_ID_PATTERN, description="an identity")]
# A byline ("Rania Abouzeid"): plain text on one line, shown to readers (escaped, like every
# field). No control characters, line breaks, or bidirectional overrides and isolates,
# which would make a byline read as something else around it; the joiners some scripts
# need within a name (U+200C, U+200D) are fine. Stripped, then 1 to 80 characters.
DISPLAY_NAME_PATTERN = (r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]{1,80}"
                        + END)
DisplayName = Annotated[str, Meta(
    min_length=1, max_length=80, pattern=DISPLAY_NAME_PATTERN,
    description="1 to 80 characters of plain text on one line (no control characters)")]


def _check_urls(image: str | None, embed: str | None) -> None:
    """The pattern lets "https://example.com:99999/" through; a browser must parse it too."""
    bad = [FieldError(name, problem) for name, url, check in (
               ("image.url", image, image_url_problem), ("embed.url", embed, url_problem))
           if url is not None and (problem := check(url)) is not None]
    if bad:
        raise InvalidInput(bad)


class ImageInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: ImageUrl
    alt: Annotated[str, Meta(min_length=1, max_length=500, description="Required: alt text.")]
    caption: Text = ""
    credit: Text = ""

    def to_event(self) -> Image:
        # A path as the browser will ask for it ("/static/./a.svg" is "/static/a.svg").
        url = normal_path(self.url) if self.url.startswith("/") else self.url
        return Image(url=url, alt=self.alt, caption=self.caption, credit=self.credit)


class EmbedInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: Url

    def to_event(self) -> Embed:
        return Embed(url=self.url)


class NewBlog(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    slug: Slug
    title: Headline
    description: Description = ""


class BlogChanges(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Headline | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    status: Literal["live", "ended"] | UnsetType = UNSET


# When an entry is to reach readers: "now", "draft" (not until someone publishes it), or an
# ISO 8601 time with its zone (scheduled). A pattern here, the rest in post_entry: msgspec
# cannot take a union of a string and a time.
ISO_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})"
PUBLISH_PATTERN = r"^(?:now|draft|" + ISO_TIME + ")" + END
Publish = Annotated[str, Meta(
    pattern=PUBLISH_PATTERN, max_length=64,
    description='"now" (the default), "draft", or an ISO 8601 time with its time zone, '
                'in the future (scheduled)')]
PublishAt = Annotated[str, Meta(
    pattern=r"^" + ISO_TIME + END, max_length=64,
    description="An ISO 8601 time with its time zone, in the future")]


class NewEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    body: Body
    title: ShortTitle | None = None
    key_event: bool = False
    image: ImageInput | None = None
    embed: EmbedInput | None = None
    # Not for contributors: theirs are always submitted.
    publish: Publish | None = None


class Publishing(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST .../publish: now, or (publish_at) schedule or reschedule it."""

    publish_at: PublishAt | None = None


class Rejection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(min_length=1, max_length=500,
                                description="Why: its author sees it in the queue.")]


class EntryPreview(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An entry as it would be posted (NewEntry's fields, checked the same way), to be shown
    as readers would see it. The body may be empty: a preview follows one's typing."""

    body: Annotated[str, Meta(max_length=20000, description="Markdown.")] = ""
    title: ShortTitle | None = None
    key_event: bool = False
    image: ImageInput | None = None
    embed: EmbedInput | None = None
    # The blog it is for: the article's share link names it.
    slug: Slug | None = None


class EntryChanges(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    body: Body | UnsetType = UNSET
    title: ShortTitle | UnsetType | None = UNSET
    key_event: bool | UnsetType = UNSET
    image: ImageInput | UnsetType | None = UNSET
    embed: EmbedInput | UnsetType | None = UNSET
    note: Annotated[str, Meta(max_length=500)] | None = None
    correction: CorrectionText | UnsetType = UNSET


# An edit changes at least one of these (a note alone changes nothing; a correction alone
# does: readers see it). The OpenAPI document says so too: its request schema is EditRequest.
EDITABLE = ("body", "title", "key_event", "image", "embed", "correction")
EditRequest = Annotated[
    EntryChanges,
    Meta(extra_json_schema={"anyOf": [{"required": [name]} for name in EDITABLE]}),
]


class Retraction(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(max_length=500)] = ""


class Pin(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    entry_id: EntryId | None


# Every whole number up to 10**15 is exact as a float; and the sparkline's arithmetic
# (max - min) on numbers near the float's limit would overflow into a broken chart.
Numeric = Annotated[float, Meta(ge=-1e15, le=1e15, description="For the chart of its history.")]
# Each figure travels with its last values in every snapshot (see views.py): a blog's
# "key figures" are a handful, and this keeps a snapshot's size bounded whoever posts.
MAX_FACTS = 32


class PersonChanges(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    display_name: DisplayName


class FactInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    label: Annotated[str, Meta(min_length=1, max_length=80)]
    value: Annotated[str, Meta(min_length=1, max_length=200)]
    numeric: Numeric | None = None
    source: Annotated[str, Meta(max_length=200)] | None = None


def open_blog(existing: Blog | None, actor: Actor, cmd: NewBlog) -> BlogOpened:
    require_editor(actor, "open a blog")
    if existing is not None:
        raise Conflict(f"a blog with slug {cmd.slug!r} exists already")
    _require_text(("title", cmd.title))
    return BlogOpened(slug=cmd.slug, title=cmd.title.strip(), description=cmd.description)


def update_blog(blog: Blog, actor: Actor, cmd: BlogChanges) -> BlogUpdated | None:
    require_editor(actor, "change a blog")
    if cmd.title is not UNSET:
        _require_text(("title", cmd.title))
    title = None if cmd.title is UNSET or cmd.title.strip() == blog.title else cmd.title.strip()
    description = (
        None if cmd.description is UNSET or cmd.description == blog.description
        else cmd.description
    )
    status = None if cmd.status is UNSET or cmd.status == blog.status else cmd.status
    if title is None and description is None and status is None:
        return None
    return BlogUpdated(title=title, description=description, status=status)


def post_entry(blog: Blog, actor: Actor, cmd: NewEntry, entry_id: str, *,
               now: datetime | None = None, replay: bool = False) -> EntryPosted:
    """`now`: the time the request is decided at (a scheduled time must be after it);
    needed to schedule."""
    _require_live(blog, "post to")
    _require_text(("body", cmd.body), ("title", cmd.title))
    if not replay:
        _check_urls(cmd.image.url if cmd.image else None,
                    cmd.embed.url if cmd.embed else None)
    workflow: Unpublished | None = None
    publish_at = None
    if actor.role == "contributor":
        if cmd.publish is not None:
            raise Forbidden(f"a contributor's entries are submitted for an editor to publish; "
                            f"{actor.name!r} may not set 'publish'")
        workflow = "submitted"
    elif cmd.publish == "draft":
        workflow = "draft"
    elif cmd.publish not in (None, "now"):
        if now is None:
            raise TypeError("post_entry needs `now` to schedule an entry")
        workflow = "scheduled"
        publish_at = _publish_time(cmd.publish, now)
    return EntryPosted(
        entry_id=entry_id,
        body=cmd.body,
        title=cmd.title.strip() if cmd.title else None,
        key_event=cmd.key_event,
        image=cmd.image.to_event() if cmd.image else None,
        embed=cmd.embed.to_event() if cmd.embed else None,
        workflow=workflow,
        publish_at=publish_at,
    )


def preview_entry(cmd: EntryPreview, entry_id: str) -> EntryPosted:
    """The event posting `cmd` would append, for a preview: no blog, nothing appended."""
    _require_text(("title", cmd.title))
    _check_urls(cmd.image.url if cmd.image else None, cmd.embed.url if cmd.embed else None)
    return EntryPosted(
        entry_id=entry_id,
        body=cmd.body,
        title=cmd.title.strip() if cmd.title else None,
        key_event=cmd.key_event,
        image=cmd.image.to_event() if cmd.image else None,
        embed=cmd.embed.to_event() if cmd.embed else None,
    )


def publish_entry(blog: Blog, actor: Actor, entry_id: str, cmd: Publishing, *,
                  now: datetime) -> EntryPublished | EntryScheduled | None:
    """Publish an unpublished entry now, or schedule it (cmd.publish_at)."""
    if actor.role == "contributor":
        raise Forbidden(f"only editors, and reporters their own drafts, may publish; "
                        f"{actor.name!r} is a contributor")
    entry = _find_entry(blog, entry_id)
    if entry.state == "published":
        if cmd.publish_at is not None:
            raise Conflict(f"entry {entry_id} is published already; it cannot be scheduled")
        return None
    if not actor.is_editor and not (_owns(actor, entry) and entry.state in ("draft",
                                                                           "scheduled")):
        raise Forbidden(f"a reporter may publish its own drafts only; entry {entry_id} is "
                        f"{entry.author!r}'s and {entry.state}")
    _require_live(blog, "publish on")
    if cmd.publish_at is None:
        return EntryPublished(entry_id=entry_id)
    at = _publish_time(cmd.publish_at, now, "publish_at")
    if entry.state == "scheduled" and entry.publish_at == at:
        return None
    return EntryScheduled(entry_id=entry_id, publish_at=at)


def publish_due(blog: Blog, actor: Actor, entry_id: str, *,
                now: datetime) -> EntryPublished | None:
    """The server's publishing of a scheduled entry whose time has come, as `actor`, who
    must be who scheduled it. None when there is nothing to do: published already (by
    another process, or by hand), rescheduled, rejected, or the blog has ended."""
    entry = blog.unpublished.get(entry_id)
    if (entry is None or entry.state != "scheduled" or entry.publish_at is None
            or entry.publish_at > now or entry.scheduled_by != actor
            or blog.status == "ended"):
        return None
    return EntryPublished(entry_id=entry_id, scheduled=True)


def reject_entry(blog: Blog, actor: Actor, entry_id: str,
                 cmd: Rejection) -> EntryRejected | None:
    require_editor(actor, "reject entries")
    _require_text(("reason", cmd.reason))
    entry = _find_entry(blog, entry_id)
    if entry.state == "published":
        raise Conflict(f"entry {entry_id} is published; retract it instead")
    if entry.state == "rejected":
        return None
    return EntryRejected(entry_id=entry_id, reason=cmd.reason.strip())


def edit_entry(
    blog: Blog,
    actor: Actor,
    entry_id: str,
    cmd: EntryChanges,
    *,
    if_revision: int | None = None,
    replay: bool = False,
) -> EntryEdited | None:
    entry = _entry_for_change(blog, actor, entry_id, "edit")
    if if_revision is not None and if_revision != entry.revision:
        raise PreconditionFailed(
            f"entry {entry_id} is at revision {entry.revision}, not {if_revision}: "
            "someone changed it meanwhile"
        )
    if all(getattr(cmd, name) is UNSET for name in EDITABLE):
        raise InvalidInput([FieldError("body", "give at least one of " + ", ".join(EDITABLE))])
    if not replay:
        _check_urls(cmd.image.url if cmd.image else None,
                    cmd.embed.url if cmd.embed else None)
    if cmd.body is not UNSET:
        _require_text(("body", cmd.body))
    if cmd.title is not UNSET:
        _require_text(("title", cmd.title))
    if cmd.correction is not UNSET:
        _require_text(("correction", cmd.correction))
        if entry.state != "published":
            raise InvalidInput([FieldError(
                "correction", f"entry {entry_id} is not published: readers saw nothing to "
                              "correct; edit its text instead")])
    image = entry.image if cmd.image is UNSET else cmd.image.to_event() if cmd.image else None
    embed = entry.embed if cmd.embed is UNSET else cmd.embed.to_event() if cmd.embed else None
    edited = EntryEdited(
        entry_id=entry_id,
        body=entry.body if cmd.body is UNSET else cmd.body,
        title=entry.title if cmd.title is UNSET else (cmd.title and cmd.title.strip()),
        key_event=entry.key_event if cmd.key_event is UNSET else cmd.key_event,
        image=image,
        embed=embed,
        note=cmd.note or None,
        correction=None if cmd.correction is UNSET else cmd.correction.strip(),
    )
    unchanged = (
        edited.correction is None
        and edited.body == entry.body
        and edited.title == entry.title
        and edited.key_event == entry.key_event
        and edited.image == entry.image
        and edited.embed == entry.embed
    )
    return None if unchanged else edited


def open_for_editing(blog: Blog, actor: Actor, entry_id: str) -> Entry:
    """An entry someone opens in the console to edit, taking its soft lock (presence.py):
    only one they may edit (the same errors as an edit's)."""
    return _entry_for_change(blog, actor, entry_id, "edit")


def retract_entry(blog: Blog, actor: Actor, entry_id: str,
                  cmd: Retraction) -> EntryRetracted | EntryRejected | None:
    entry = _entry_for_change(blog, actor, entry_id, "retract")
    if entry.state == "rejected":
        return None
    if entry.state != "published":
        # Readers never saw it: it is withdrawn from the queue, not from the blog.
        return EntryRejected(entry_id=entry_id, reason=cmd.reason.strip())
    return EntryRetracted(entry_id=entry_id, reason=cmd.reason.strip())


def change_pin(blog: Blog, actor: Actor, cmd: Pin) -> PinChanged | None:
    require_editor(actor, "pin entries")
    if cmd.entry_id is not None and _find_entry(blog, cmd.entry_id).state != "published":
        raise Conflict(f"entry {cmd.entry_id} is not published: a pin would show nothing")
    if cmd.entry_id == blog.pinned:
        return None
    return PinChanged(entry_id=cmd.entry_id)


def update_fact(blog: Blog, actor: Actor, key: str, cmd: FactInput, *,
                replay: bool = False) -> FactUpdated | None:
    if actor.role == "contributor":
        raise Forbidden(f"contributors may not update figures; {actor.name!r} is one")
    _require_live(blog, "update figures on")
    _require_text(("label", cmd.label), ("value", cmd.value))
    if not replay and key not in blog.facts and len(blog.facts) >= MAX_FACTS:
        raise InvalidInput([FieldError(
            "key", f"a blog holds at most {MAX_FACTS} figures; update one of them instead")])
    event = FactUpdated(
        key=key,
        label=cmd.label.strip(),
        value=cmd.value.strip(),
        numeric=cmd.numeric,
        source=cmd.source.strip() if cmd.source else None,
    )
    current = blog.facts.get(key)
    if current is not None and (current.label, current.value, current.numeric, current.source) \
            == (event.label, event.value, event.numeric, event.source):
        return None
    return event


def display_name(raw: str, field: str = "display_name") -> str:
    """A byline as given (a request, the CLI, a log), checked and stripped; InvalidInput
    naming `field` otherwise."""
    try:
        msgspec.convert(raw, DisplayName)
    except msgspec.ValidationError:
        raise InvalidInput([FieldError(field, "must be 1 to 80 characters of plain text on "
                                              "one line (no control characters)")]) from None
    _require_text((field, raw))
    return raw.strip()


def change_byline(blog: Blog, actor: Actor, author_id: str, name: str) -> BylineChanged | None:
    """The identity `author_id` now signs as `name` on this blog (None: it does already).
    Editors rename anyone; anyone else only themselves (`liveblog token set`, which acts
    as the token's holder). An ended blog takes it too: it changes no words, and the
    bylines of a closed story must still be right."""
    if not actor.is_editor and (not actor.id or actor.id != author_id):
        raise Forbidden(f"only editors may change someone else's byline; {actor.name!r} is "
                        f"a {actor.role}")
    name = display_name(name)
    if blog.bylines.get(author_id) == name:
        return None
    return BylineChanged(author_id=author_id, name=name)


def require_editor(actor: Actor, what: str) -> None:
    if not actor.is_editor:
        raise Forbidden(f"only editors may {what}; {actor.name!r} is a {actor.role}")


def _require_live(blog: Blog, what: str) -> None:
    if blog.status == "ended":
        raise Conflict(f"blog {blog.slug!r} has ended; an editor must reopen it to {what} it")


def _require_text(*fields: tuple[str, str | None]) -> None:
    blank = [FieldError(name, "must not be blank") for name, value in fields
             if value is not None and not value.strip()]
    if blank:
        raise InvalidInput(blank)


def _publish_time(value: str, now: datetime, field: str = "publish") -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput([FieldError(
            field, "must be an ISO 8601 time such as 2026-05-01T14:30:00+00:00")]) from None
    if at.tzinfo is None:
        raise InvalidInput([FieldError(field, "a time needs its time zone (Z, +02:00)")])
    return _future(at, now, field)


def _future(at: datetime, now: datetime, field: str) -> datetime:
    """`at` in UTC to the millisecond, as the log keeps times, if it is after `now`."""
    at = at.astimezone(UTC)
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)
    if at <= now:
        raise InvalidInput([FieldError(field, f"must be in the future (it is now "
                                              f"{now.isoformat()})")])
    return at


def _owns(actor: Actor, entry: Entry) -> bool:
    return bool(actor.id) and entry.author_id == actor.id


def _find_entry(blog: Blog, entry_id: str) -> Entry:
    """A published or unpublished entry (NotFound, or Gone if retracted)."""
    entry = blog.entries.get(entry_id) or blog.unpublished.get(entry_id)
    if entry is not None:
        return entry
    if entry_id in blog.retracted:
        raise Gone(f"entry {entry_id} was retracted")
    raise NotFound(f"blog {blog.slug!r} has no entry {entry_id!r}")


def _entry_for_change(blog: Blog, actor: Actor, entry_id: str, what: str) -> Entry:
    entry = _find_entry(blog, entry_id)
    if not actor.is_editor:
        # Ownership is by identity, not by name: a name revoked and given to someone else
        # does not hand them the entries of its former holder.
        if entry.author_id is None:
            raise Forbidden(
                f"entry {entry_id} was posted before authors were recorded by identity; "
                f"only an editor may {what} it"
            )
        if not actor.id or entry.author_id != actor.id:
            raise Forbidden(
                f"only its author ({entry.author!r}) or an editor may {what} entry {entry_id}"
            )
        if entry.state == "rejected":
            raise Forbidden(f"entry {entry_id} was rejected; only an editor may {what} it")
        if actor.role == "contributor" and entry.state == "published":
            raise Forbidden(f"entry {entry_id} is published; a contributor may {what} its "
                            "entries only until then")
        if blog.status == "ended":
            raise Conflict(f"blog {blog.slug!r} has ended; only editors may {what} entries now")
    return entry
