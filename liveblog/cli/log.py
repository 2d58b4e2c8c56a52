"""`liveblog export`, `import` and `replay`: the whole log, losslessly, and the story as it
unfolded. They read the store directly (like `token`), so they need no server."""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import IO, TypeVar

import click
import msgspec

from liveblog.cli.store import with_store
from liveblog.config import Config
from liveblog.domain.events import BlogOpened, Recorded, kind
from liveblog.domain.state import Blog, apply, fold
from liveblog.domain.views import public_blog, summarize
from liveblog.errors import InvalidImport, NotFound
from liveblog.service import Service
from liveblog.store import Store


class ExportLine(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One event per line: the same fields as GET /api/blogs/{slug}/events."""

    id: str
    version: int
    type: str
    at: str
    actor: str
    role: str
    data: msgspec.Raw
    # Absent for events logged before identities were (and in exports made before).
    actor_id: str | None = None
    # Absent for events logged before display names were (and in exports made before).
    actor_name: str | None = None


def export_line(rec: Recorded) -> bytes:
    data = msgspec.Raw(msgspec.json.encode(rec.event))
    line = ExportLine(id=rec.id, version=rec.version, type=kind(rec.event),
                      at=rec.at.isoformat(), actor=rec.actor, role=rec.role, data=data,
                      actor_id=rec.actor_id, actor_name=rec.actor_name)
    return msgspec.json.encode(line)


T = TypeVar("T")


def parse_line(line: bytes) -> Recorded:
    """One line of an export (InvalidImport if it is not one; its rules are checked later,
    with the whole log: see domain/imports.py)."""
    try:
        raw = msgspec.json.decode(line)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise InvalidImport(f"not JSON: {exc}") from None
    if not isinstance(raw, dict) or "data" not in raw:
        raise InvalidImport("not an event of an export: a JSON object with a data field")
    # The export's "data" is the tagged event; Recorded calls it "event".
    raw["event"] = raw.pop("data")
    declared = raw.pop("type", None)
    try:
        rec = msgspec.convert(raw, Recorded)
    except msgspec.ValidationError as exc:
        raise InvalidImport(str(exc)) from None
    if declared is not None and declared != kind(rec.event):
        raise InvalidImport(f"its type {declared!r} is not its data's {kind(rec.event)!r}")
    return rec


def _run(work: Callable[[Store], Awaitable[T]]) -> T:
    return with_store(Config.from_env(), work)


@click.command("export")
@click.argument("slug")
def export(slug: str) -> None:
    """Write a blog's complete log to standard output, one JSON event per line."""

    async def work(store: Store) -> int:
        events, _ = await store.read_all(slug)
        if not events:
            raise NotFound(f"no blog {slug!r}")
        out = sys.stdout.buffer
        for rec in events:
            out.write(export_line(rec) + b"\n")
        out.flush()
        return len(events)

    count = _run(work)
    click.echo(f"exported {count} events of {slug!r}", err=True)


@click.command("import")
@click.argument("file", type=click.File("rb"))
def import_(file: IO[bytes]) -> None:
    """Load an export into a store where that blog does not exist yet. The whole file is
    checked first, by the API's rules; on any error nothing is appended."""
    events: list[Recorded] = []
    lines: list[int] = []
    for number, line in enumerate(file.read().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(parse_line(line))
        except InvalidImport as exc:
            raise click.ClickException(f"not a liveblog export: line {number}: {exc}") \
                from None
        lines.append(number)
    if not events or not isinstance(events[0].event, BlogOpened):
        raise click.ClickException("not a liveblog export: it must start with blog-opened")
    slug = events[0].event.slug

    async def work(store: Store) -> Blog:
        with click.progressbar(length=len(events), label=f"importing {slug}",
                               file=sys.stderr) as bar:
            return await Service(store).import_log(slug, events, bar.update, lines=lines)

    try:
        blog = _run(work)
    except InvalidImport as exc:
        raise click.ClickException(f"refused, nothing imported: {exc}") from None
    click.echo(f"imported {len(events)} events into {slug!r} (version {blog.version})")


@click.command()
@click.argument("slug")
@click.option("--speed", type=float, default=0.0, show_default=True,
              help="Replay speed: 60 plays an hour in a minute; 0 as fast as possible.")
@click.option("--at", "at", help="Start from the blog as it stood right after this event "
                                 "(an event id or a version).")
def replay(slug: str, speed: float, at: str | None) -> None:
    """Print the story as it unfolded: who did what, when."""

    async def work(store: Store) -> list[Recorded]:
        events, _ = await store.read_all(slug)
        return events

    events = _run(work)
    if not events:
        raise click.ClickException(f"no blog {slug!r}")
    start = 0
    if at is not None:
        found = [n for n, rec in enumerate(events) if at in (rec.id, str(rec.version))]
        if not found:
            raise click.ClickException(f"blog {slug!r} has no event {at!r}")
        start = found[0] + 1
    blog = fold(events[:start])
    if blog is not None:
        click.echo(describe(blog))
    for rec, pause in _paced(events[start:], speed, events[start - 1] if start else None):
        if pause:
            time.sleep(pause)
        line = summarize(rec, blog)
        blog = apply(blog, rec)
        click.echo(f"{rec.at:%Y-%m-%d %H:%M:%S} UTC  v{rec.version:<4} {rec.actor} "
                   f"({rec.role}): {line}")


def _paced(events: list[Recorded], speed: float,
           previous: Recorded | None) -> Iterator[tuple[Recorded, float]]:
    for rec in events:
        gap = (rec.at - previous.at).total_seconds() if previous else 0.0
        # The real gap, scaled; never more than 10 s of silence in a terminal.
        yield rec, min(gap / speed, 10.0) if speed > 0 and gap > 0 else 0.0
        previous = rec


def describe(blog: Blog) -> str:
    view = public_blog(blog, limit=5)
    lines = [f"== {view.title} [{view.status}] at version {view.version} "
             f"({view.updated_at:%Y-%m-%d %H:%M} UTC)"]
    for fact in view.facts:
        source = f" ({fact.source})" if fact.source else ""
        lines.append(f"   {fact.label}: {fact.value}{source}")
    for entry in view.entries:
        title = f"{entry.title}: " if entry.title else ""
        lines.append(f"   [{entry.posted_at:%H:%M}] {entry.author_name}: {title}{entry.body[:100]}")
    return "\n".join(lines)


