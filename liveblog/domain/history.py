"""What editors reconstruct from the log: a timeline of who did what, and every revision of
an entry with a word-level diff, the correction notes, and what a retraction removed."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

import msgspec

from liveblog.domain.events import (
    EntryEdited,
    EntryPosted,
    EntryPublished,
    EntryRejected,
    EntryRetracted,
    EntryScheduled,
    Recorded,
    Role,
    kind,
)
from liveblog.domain.state import Blog, apply
from liveblog.domain.views import summarize

DiffOp = tuple[Literal["equal", "insert", "delete"], str]


class TimelineRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    version: int
    at: datetime
    actor: str
    role: Role
    # The actor's byline then (null: logged before display names were).
    actor_name: str | None
    type: str
    summary: str
    # The entry the event concerns, if any (for its revision history).
    entry_id: str | None


class Revision(msgspec.Struct, frozen=True, kw_only=True):
    revision: int
    event_id: str
    at: datetime
    actor: str
    title: str | None
    body: str
    note: str | None
    # Word-level changes from the previous revision's body (empty for revision 1).
    diff: list[DiffOp]


class Withdrawal(msgspec.Struct, frozen=True, kw_only=True):
    event_id: str
    at: datetime
    actor: str
    reason: str


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """A step of the entry's workflow: who moved it where, and when ("who approved this,
    and when"). `state` is where it stood after the step."""

    event_id: str
    at: datetime
    actor: str
    role: Role
    state: Literal["draft", "submitted", "scheduled", "published", "rejected"]
    # True when the server published it at its scheduled time (the actor scheduled it).
    on_schedule: bool = False
    publish_at: datetime | None = None
    reason: str | None = None


class EntryHistory(msgspec.Struct, frozen=True, kw_only=True):
    entry_id: str
    author: str
    # The byline it was posted under (the author's token name if the log has none).
    author_name: str
    revisions: list[Revision]
    retracted: Withdrawal | None
    # Oldest first; an entry published at once has one step, "published".
    steps: list[Step] = []


def timeline(events: Iterable[Recorded]) -> list[TimelineRow]:
    rows = []
    blog: Blog | None = None
    for rec in events:
        rows.append(TimelineRow(
            id=rec.id, version=rec.version, at=rec.at, actor=rec.actor, role=rec.role,
            actor_name=rec.actor_name, type=kind(rec.event), summary=summarize(rec, blog),
            entry_id=getattr(rec.event, "entry_id", None),
        ))
        blog = apply(blog, rec)
    return rows


def entry_history(events: Iterable[Recorded], entry_id: str) -> EntryHistory | None:
    revisions: list[Revision] = []
    steps: list[Step] = []
    author = author_name = ""
    retracted = None
    for rec in events:
        event = rec.event
        if getattr(event, "entry_id", None) != entry_id:
            continue
        step = _step(rec)
        if step is not None:
            steps.append(step)
        if isinstance(event, EntryPosted | EntryEdited):
            if isinstance(event, EntryPosted):
                author = rec.actor
                author_name = rec.actor_name or rec.actor
            previous = revisions[-1].body if revisions else None
            revisions.append(Revision(
                revision=len(revisions) + 1, event_id=rec.id, at=rec.at, actor=rec.actor,
                title=event.title, body=event.body,
                note=event.note if isinstance(event, EntryEdited) else None,
                diff=[] if previous is None else word_diff(previous, event.body),
            ))
        elif isinstance(event, EntryRetracted):
            retracted = Withdrawal(event_id=rec.id, at=rec.at, actor=rec.actor,
                                   reason=event.reason)
    if not revisions:
        return None
    return EntryHistory(entry_id=entry_id, author=author, author_name=author_name,
                        revisions=revisions,
                        retracted=retracted, steps=steps)


def _step(rec: Recorded) -> Step | None:
    event = rec.event
    step = Step(event_id=rec.id, at=rec.at, actor=rec.actor, role=rec.role, state="published")
    match event:
        case EntryPosted():
            return msgspec.structs.replace(step, state=event.workflow or "published",
                                           publish_at=event.publish_at)
        case EntryPublished():
            return msgspec.structs.replace(step, on_schedule=event.scheduled)
        case EntryScheduled():
            return msgspec.structs.replace(step, state="scheduled", publish_at=event.publish_at)
        case EntryRejected():
            return msgspec.structs.replace(step, state="rejected", reason=event.reason)
    return None


_TOKENS = re.compile(r"\s+|[^\s]+")


def word_diff(old: str, new: str) -> list[DiffOp]:
    """The changes from `old` to `new`, word by word (white space kept with the words)."""
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    ops: list[DiffOp] = []

    def add(op: Literal["equal", "insert", "delete"], words: list[str]) -> None:
        text = "".join(words)
        if not text:
            return
        if ops and ops[-1][0] == op:
            ops[-1] = (op, ops[-1][1] + text)
        else:
            ops.append((op, text))

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            add("equal", a[i1:i2])
        else:
            add("delete", a[i1:i2])
            add("insert", b[j1:j2])
    return ops
