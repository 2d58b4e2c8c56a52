"""Checking a log from outside (`liveblog import`) before any of it is appended.

An export is a file, and anyone may have edited it; it may also come from a server of
any earlier version. Each event in it must be one some version of the API could have
logged on the state the events before it made: it is turned back into the request that
would have made it and run through the same command (roles, authorship, an ended blog,
blank text), and must come out as the very same event. The request is read with the
shapes every version has enforced (the slug, entry ids and figure keys, the length of
every field, http(s) URLs without spaces), not with rules added since (a URL a browser
must parse, at most 32 figures, a figure within 10**15: see `replay` in commands.py),
because whatever a server once logged must always replay. What could break the fold or
a page is refused whatever its age.

What the log adds around each event must hold up too: a stream id after the one before
(the ids are the log's order), versions 1, 2, 3, ..., an actor's name, identity and byline
of the right shape, times with a zone and not from the future. Times need not be in order:
a request takes its time before it appends, so concurrent writes land out of order by
their latency, and several processes' clocks differ; only a time far before the latest
so far (CLOCK_SKEW) is refused as made up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from liveblog.domain import commands, ids
from liveblog.domain.commands import (
    ActorId,
    BlogChanges,
    EmbedInput,
    EntryChanges,
    EntryId,
    FactInput,
    FactKey,
    ImageInput,
    NewBlog,
    NewEntry,
    Pin,
    Publishing,
    Retraction,
)
from liveblog.domain.events import (
    Actor,
    BlogOpened,
    BlogUpdated,
    BylineChanged,
    EntryEdited,
    EntryPosted,
    EntryPublished,
    EntryRejected,
    EntryRetracted,
    EntryScheduled,
    Event,
    FactUpdated,
    PinChanged,
    Recorded,
    kind,
)
from liveblog.domain.state import Blog, apply
from liveblog.domain.urls import PATH_PATTERN
from liveblog.errors import CorruptLog, InvalidImport, InvalidInput, Problem

# Servers' clocks differ by seconds, not days: a time later than this is made up.
FUTURE_SLACK = timedelta(days=1)
# How far an event's time may be before the latest time logged before it. Concurrent
# writes land out of order by their latency (50 concurrent posts: by up to 20 ms here), and
# processes on several machines by their clocks' difference (seconds; minutes where time
# sync failed). An hour is far beyond both and still catches a time pasted from elsewhere.
CLOCK_SKEW = timedelta(hours=1)
# A request is decided a moment before its event is logged with its time: a scheduled time
# in the future when decided may be a few milliseconds from the logged time.
DECIDED_BEFORE = timedelta(seconds=5)

# A URL as the request pattern took it before 2026-12-02: http(s), no spaces, at most
# 2,000 characters; Python's `$` also let a final newline through. Anything else (another
# scheme, a space) no version accepted. Pages show a URL a browser cannot use as text.
LoggedUrl = Annotated[str, Meta(pattern=r"^https?://\S+\n?\Z", max_length=2000,
                                description="an http(s):// URL")]


# A token's name as `liveblog token create` took it before 2026-12-02 (the same `$`).
LoggedActorName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9._-]{1,64}\n?\Z",
                                      description="1 to 64 letters, digits, '.', '_' or '-'")]


# An image's, likewise; or a path on the site, as the API takes since 2026-12-02 (issue 9),
# checked in full here because a replay does not check URLs again.
LoggedImageUrl = Annotated[str, Meta(pattern=r"^https?://\S+\n?\Z|" + PATH_PATTERN,
                                     max_length=2000,
                                     description="an http(s):// URL or a path on this site")]


class LoggedImage(ImageInput, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: LoggedImageUrl


class LoggedEmbed(EmbedInput, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: LoggedUrl


class LoggedEntry(NewEntry, frozen=True, kw_only=True, forbid_unknown_fields=True):
    image: LoggedImage | None = None
    embed: LoggedEmbed | None = None


class LoggedChanges(EntryChanges, frozen=True, kw_only=True, forbid_unknown_fields=True):
    image: LoggedImage | UnsetType | None = UNSET
    embed: LoggedEmbed | UnsetType | None = UNSET


class LoggedFact(FactInput, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Any number JSON holds (a log cannot hold an infinity: msgspec refuses to read one).
    numeric: float | None = None


def check_log(events: Sequence[Recorded], *, now: datetime,
              lines: Sequence[int] | None = None) -> Blog:
    """The state the log folds into, if every event in it holds up. Otherwise
    InvalidImport, naming the first event that does not (and its line in the file, when
    `lines` gives each event's)."""
    blog: Blog | None = None
    previous: Recorded | None = None
    latest: datetime | None = None
    for n, rec in enumerate(events):
        try:
            _check_record(rec, previous, latest, now)
            if _as_requested(blog, rec) != rec.event:
                raise InvalidImport("it is not what the API logs for the request it stands for")
            blog = apply(blog, rec)
            latest = rec.at if latest is None else max(latest, rec.at)
        except (InvalidImport, Problem, CorruptLog) as exc:
            where = f"line {lines[n]}" if lines is not None else f"event {n + 1}"
            raise InvalidImport(
                f"{where} (event {rec.id[:60]!r}, {kind(rec.event)}): {_reason(exc)}"
            ) from None
        previous = rec
    if blog is None:
        raise InvalidImport("the export holds no events")
    return blog


def _check_record(rec: Recorded, previous: Recorded | None, latest_at: datetime | None,
                  now: datetime) -> None:
    position = ids.parse(rec.id)
    if position is None or position == (0, 0):
        raise InvalidImport("its id is not a stream id like 1732900000000-0")
    if previous is not None and position <= ids.position(previous.id):
        raise InvalidImport(f"its id does not come after the one before ({previous.id})")
    latest = now + FUTURE_SLACK
    if position.ms > latest.timestamp() * 1000:
        raise InvalidImport("its id is from the future")
    if rec.at.tzinfo is None:
        raise InvalidImport("its time has no time zone")
    if latest_at is not None and rec.at < latest_at - CLOCK_SKEW:
        raise InvalidImport(f"its time is more than {CLOCK_SKEW.total_seconds() / 60:g} "
                            f"minutes before an earlier event's ({latest_at.isoformat()})")
    if rec.at > latest:
        raise InvalidImport("its time is in the future")
    if rec.role not in ("contributor", "reporter", "editor"):
        raise InvalidImport(f"role: {rec.role!r} is not contributor, reporter or editor")
    _value(LoggedActorName, rec.actor, "actor")
    if rec.actor_id is not None:
        _value(ActorId, rec.actor_id, "actor_id")
    if rec.actor_name is not None and commands.display_name(rec.actor_name,
                                                            "actor_name") != rec.actor_name:
        raise InvalidImport("actor_name: a byline is logged stripped")


def _as_requested(blog: Blog | None, rec: Recorded) -> Event | None:
    """The event the API would log for the request `rec` stands for."""
    actor = Actor(rec.actor, rec.role, rec.actor_id or "", rec.actor_name or "")
    event = rec.event
    match event:
        case BlogOpened():
            return commands.open_blog(blog, actor, _request(
                NewBlog, slug=event.slug, title=event.title, description=event.description))
        case BlogUpdated():
            changes = {name: value for name, value in (
                ("title", event.title), ("description", event.description),
                ("status", event.status)) if value is not None}
            return commands.update_blog(_opened(blog), actor, _request(BlogChanges, **changes))
        case EntryPosted():
            _value(EntryId, event.entry_id, "entry_id")
            return commands.post_entry(_opened(blog), actor, _request(
                LoggedEntry, body=event.body, title=event.title, key_event=event.key_event,
                image=msgspec.to_builtins(event.image), embed=msgspec.to_builtins(event.embed),
                **_publish_request(event),
            ), event.entry_id, now=rec.at - DECIDED_BEFORE, replay=True)
        case EntryPublished(scheduled=True):
            return commands.publish_due(_opened(blog), actor, event.entry_id, now=rec.at)
        case EntryPublished():
            return commands.publish_entry(_opened(blog), actor, event.entry_id, Publishing(),
                                          now=rec.at)
        case EntryScheduled():
            return commands.publish_entry(
                _opened(blog), actor, event.entry_id,
                _request(Publishing, publish_at=event.publish_at.isoformat()),
                now=rec.at - DECIDED_BEFORE)
        case EntryRejected():
            # An editor's rejection and a withdrawal (DELETE) log the same event; the
            # withdrawal's rules (its author, or an editor) take in both.
            state, author = _as_author(_opened(blog), actor, event.entry_id)
            return commands.retract_entry(state, author, event.entry_id,
                                          _request(Retraction, reason=event.reason))
        case EntryEdited():
            state, author = _as_author(_opened(blog), actor, event.entry_id)
            return commands.edit_entry(state, author, event.entry_id, _request(
                LoggedChanges, body=event.body, title=event.title, key_event=event.key_event,
                image=msgspec.to_builtins(event.image), embed=msgspec.to_builtins(event.embed),
                note=event.note,
                # Left out when None: a request without a correction leaves it unset.
                **({} if event.correction is None else {"correction": event.correction}),
            ), replay=True)
        case EntryRetracted():
            state, author = _as_author(_opened(blog), actor, event.entry_id)
            return commands.retract_entry(state, author, event.entry_id,
                                          _request(Retraction, reason=event.reason))
        case PinChanged():
            return commands.change_pin(_opened(blog), actor, _request(Pin, entry_id=event.entry_id))
        case FactUpdated():
            _value(FactKey, event.key, "key")
            return commands.update_fact(_opened(blog), actor, event.key, _request(
                LoggedFact, label=event.label, value=event.value, numeric=event.numeric,
                source=event.source), replay=True)
        case BylineChanged():
            _value(ActorId, event.author_id, "author_id")
            return commands.change_byline(_opened(blog), actor, event.author_id, event.name)
    raise InvalidImport(f"unknown event {event!r}")  # pragma: no cover


def _publish_request(event: EntryPosted) -> dict[str, str]:
    """The "publish" of the request that logged `event` (a contributor's sends none)."""
    if event.workflow == "draft":
        return {"publish": "draft"}
    if event.workflow == "scheduled" and event.publish_at is not None:
        return {"publish": event.publish_at.isoformat()}
    return {}


def _as_author(blog: Blog, actor: Actor, entry_id: str) -> tuple[Blog, Actor]:
    """The state and actor to judge a change of an entry by. An entry and a change both
    logged before identities were recorded went by the author's name, as the rule then
    was; live requests always carry an identity, so this holds for imports only."""
    entry = blog.entries.get(entry_id)
    if (entry is None or actor.is_editor or actor.id or entry.author_id is not None
            or entry.author != actor.name):
        return blog, actor
    stand_in = "legacy-author"
    owned = msgspec.structs.replace(entry, author_id=stand_in)
    return (msgspec.structs.replace(blog, entries=blog.entries.edited(owned)),
            Actor(actor.name, actor.role, stand_in))


def _opened(blog: Blog | None) -> Blog:
    if blog is None:
        raise InvalidImport("a blog's log must start with blog-opened")
    return blog


def _request(type_: type[Any], **fields: Any) -> Any:
    try:
        return msgspec.convert(fields, type_)
    except msgspec.ValidationError as exc:
        # msgspec says "Expected `str` of length <= 20000 - at `$.body`": field first.
        text, _, path = str(exc).rpartition(" - at `$.")
        path = path.rstrip("`")
        raise InvalidImport(f"{path}: {_plain(text, _field_type(type_, path))}") from None


def _value(type_: Any, value: str, name: str) -> None:
    try:
        msgspec.convert(value, type_)
    except msgspec.ValidationError as exc:
        raise InvalidImport(f"{name}: {_plain(str(exc), type_)}") from None


def _plain(message: str, type_: Any) -> str:
    """A regex is no help to whoever fixes the file; the field's description says what is
    wanted."""
    if "matching regex" not in message:
        return message
    for member in (type_, *getattr(type_, "__args__", ())):
        for meta in getattr(member, "__metadata__", ()):
            if isinstance(meta, msgspec.Meta) and meta.description:
                return f"must be {meta.description}"
    return message


def _field_type(type_: Any, path: str) -> Any:
    """The declared type of a dotted field path ("image.url") of a request Struct."""
    for name in path.split("."):
        struct = next((member for member in (type_, *getattr(type_, "__args__", ()))
                       if isinstance(member, type) and issubclass(member, msgspec.Struct)),
                      None)
        if struct is None:
            return None
        found = [f.type for f in msgspec.structs.fields(struct) if f.encode_name == name]
        if not found:
            return None
        type_ = found[0]
    return type_


def _reason(exc: Exception) -> str:
    if isinstance(exc, InvalidInput):
        return "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
    if isinstance(exc, Problem):
        return exc.detail
    return str(exc)
