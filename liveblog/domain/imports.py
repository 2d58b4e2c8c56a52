"""Checking a log from outside (`liveblog import`) before any of it is appended.

An export is a file, and anyone may have edited it. Each event in it must be one the API
could have logged on the state the events before it made: it is turned back into the
request that would have made it (so the request Structs' patterns and sizes apply: the
slug, entry ids and figure keys, URLs, the length of every field), run through the same
command (roles, authorship, an ended blog, URL hosts), and must come out as the very same
event. What the log adds around it must hold up too: a stream id after the one before,
versions 1, 2, 3, ..., times in order and not from the future, an actor's name and
identity of the right shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from liveblog.domain import commands, ids
from liveblog.domain.commands import (
    ActorId,
    ActorName,
    BlogChanges,
    EntryChanges,
    EntryId,
    FactInput,
    FactKey,
    NewBlog,
    NewEntry,
    Pin,
    Retraction,
)
from liveblog.domain.events import (
    Actor,
    BlogOpened,
    BlogUpdated,
    EntryEdited,
    EntryPosted,
    EntryRetracted,
    Event,
    FactUpdated,
    PinChanged,
    Recorded,
    kind,
)
from liveblog.domain.state import Blog, apply
from liveblog.errors import CorruptLog, InvalidImport, InvalidInput, Problem

# Servers' clocks differ by seconds, not days: a time later than this is made up.
FUTURE_SLACK = timedelta(days=1)


def check_log(events: Sequence[Recorded], *, now: datetime,
              lines: Sequence[int] | None = None) -> Blog:
    """The state the log folds into, if every event in it holds up. Otherwise
    InvalidImport, naming the first event that does not (and its line in the file, when
    `lines` gives each event's)."""
    blog: Blog | None = None
    previous: Recorded | None = None
    for n, rec in enumerate(events):
        try:
            _check_record(rec, previous, now)
            if _as_requested(blog, rec) != rec.event:
                raise InvalidImport("it is not what the API logs for the request it stands for")
            blog = apply(blog, rec)
        except (InvalidImport, Problem, CorruptLog) as exc:
            where = f"line {lines[n]}" if lines is not None else f"event {n + 1}"
            raise InvalidImport(
                f"{where} (event {rec.id[:60]!r}, {kind(rec.event)}): {_reason(exc)}"
            ) from None
        previous = rec
    if blog is None:
        raise InvalidImport("the export holds no events")
    return blog


def _check_record(rec: Recorded, previous: Recorded | None, now: datetime) -> None:
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
    if previous is not None and rec.at < previous.at:
        raise InvalidImport(f"its time is before the one before ({previous.at.isoformat()})")
    if rec.at > latest:
        raise InvalidImport("its time is in the future")
    if rec.role not in ("reporter", "editor"):
        raise InvalidImport(f"role: {rec.role!r} is neither reporter nor editor")
    _value(ActorName, rec.actor, "actor")
    if rec.actor_id is not None:
        _value(ActorId, rec.actor_id, "actor_id")


def _as_requested(blog: Blog | None, rec: Recorded) -> Event | None:
    """The event the API would log for the request `rec` stands for."""
    actor = Actor(rec.actor, rec.role, rec.actor_id or "")
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
                NewEntry, body=event.body, title=event.title, key_event=event.key_event,
                image=msgspec.to_builtins(event.image), embed=msgspec.to_builtins(event.embed),
            ), event.entry_id)
        case EntryEdited():
            state, author = _as_author(_opened(blog), actor, event.entry_id)
            return commands.edit_entry(state, author, event.entry_id, _request(
                EntryChanges, body=event.body, title=event.title, key_event=event.key_event,
                image=msgspec.to_builtins(event.image), embed=msgspec.to_builtins(event.embed),
                note=event.note,
            ))
        case EntryRetracted():
            state, author = _as_author(_opened(blog), actor, event.entry_id)
            return commands.retract_entry(state, author, event.entry_id,
                                          _request(Retraction, reason=event.reason))
        case PinChanged():
            return commands.change_pin(_opened(blog), actor, _request(Pin, entry_id=event.entry_id))
        case FactUpdated():
            _value(FactKey, event.key, "key")
            return commands.update_fact(_opened(blog), actor, event.key, _request(
                FactInput, label=event.label, value=event.value, numeric=event.numeric,
                source=event.source))
    raise InvalidImport(f"unknown event {event!r}")  # pragma: no cover


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
