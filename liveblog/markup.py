"""The one HTML renderer (issue 10): the Jinja2 environment of every page, and the pieces of
a page that the reader stream carries ready-made.

An entry's `<article>` (templates/_entry.html) and a key figure's row with its chart
(templates/_fact.html) are rendered here, by the same macros, for the page, for the stream
(live.py renders each once per event, never per reader) and for the newsroom's preview.
The page's script (static/live.js) only inserts them: it builds no markup of its own, so
what arrives live is what a reload shows.

Everything is escaped by the template except an entry's body, which is the Markdown
renderer's sanitized HTML (domain/render.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from liveblog.domain.render import text_of
from liveblog.domain.urls import host_of, image_src
from liveblog.domain.views import PublicBlog, PublicEntry, PublicFact
from liveblog.resources import TEMPLATES
from liveblog.web.headers import CSS


def hhmm(value: datetime) -> str:
    return value.strftime("%H:%M UTC")


def full_time(value: datetime) -> str:
    return value.strftime("%-d %b %Y, %H:%M UTC")


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def ago(value: datetime, now: datetime | None = None) -> str:
    """English relative time, as Intl.RelativeTimeFormat says it (the page's script keeps
    it fresh; rendering it here means the text is there before the script runs)."""
    minutes = round(((now or datetime.now(UTC)) - value).total_seconds() / 60)
    if minutes < 1:
        return "this minute"
    if minutes < 60:
        return "1 minute ago" if minutes == 1 else f"{minutes} minutes ago"
    hours = round(minutes / 60)
    if hours < 24:
        return "1 hour ago" if hours == 1 else f"{hours} hours ago"
    days = round(hours / 24)
    return "yesterday" if days == 1 else f"{days} days ago"


def plain(entry: PublicEntry, limit: int = 110) -> str:
    text = text_of(entry.html)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def sparkline(fact: PublicFact, width: int = 120, height: int = 32) -> Markup:
    """An inline SVG of a numeric figure's history (e.g. a death toll from 80 to 121)."""
    points = [p.numeric for p in fact.history if p.numeric is not None]
    if len(points) < 2:
        return Markup("")
    # In halves: a figure logged before values were bounded (any float, up to ±1.8e308,
    # which an import still takes) would overflow max - min to inf, and the chart to NaN.
    low, high = min(points) / 2, max(points) / 2
    span = (high - low) or 1
    step = (width - 4) / (len(points) - 1)
    coords = " ".join(
        f"{2 + n * step:.1f},{height - 2 - (value / 2 - low) / span * (height - 4):.1f}"
        for n, value in enumerate(points)
    )
    label = f"{fact.label}: " + ", then ".join(f"{v:g}" for v in points)
    return Markup(
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{Markup.escape(label)}"><polyline fill="none" '
        f'stroke="currentColor" stroke-width="2" points="{coords}"/></svg>'
    )


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(hhmm=hhmm, full_time=full_time, iso=iso, host=host_of, plain=plain,
                       ago=ago, image_src=image_src)
    env.globals.update(sparkline=sparkline, css=Markup(CSS))
    return env


environment = _environment()


def render(name: str, **context: Any) -> str:
    return environment.get_template(name).render(**context)


def article(entry: PublicEntry, slug: str, *, pinned: bool = False,
            moment: datetime | None = None) -> str:
    """The entry's `<article>` exactly as the pages render it (templates/_entry.html)."""
    macro = environment.get_template("_entry.html").module.entry  # type: ignore[attr-defined]
    return str(macro(entry, pinned=pinned, moment=moment, slug=slug)).strip()


def fact_row(fact: PublicFact) -> str:
    """The figure's row in the page's key figures, chart included (templates/_fact.html)."""
    macro = environment.get_template("_fact.html").module.fact  # type: ignore[attr-defined]
    return str(macro(fact)).strip()


# -- what the stream carries ----------------------------------------------------------------


class LiveEntry(PublicEntry, frozen=True, kw_only=True):
    """A public entry with its article as the page renders it, for the reader stream.
    The article's id is entry-<id>; the pinned copy's page id, pinned-<id>, is live.js's
    to set (one rendering serves both places, and an edit's message serves both)."""

    article: str


class LiveFact(PublicFact, frozen=True, kw_only=True):
    """A public figure with its row in the page (value, chart, source), for the stream."""

    markup: str


def live_entry(entry: PublicEntry, slug: str) -> LiveEntry:
    # Field by field, so that a field added to PublicEntry rides along (and is rendered by
    # the template when it uses it) with nothing to change here.
    return LiveEntry(**msgspec.structs.asdict(entry), article=article(entry, slug))


def live_fact(fact: PublicFact) -> LiveFact:
    return LiveFact(**msgspec.structs.asdict(fact), markup=fact_row(fact))


def live_blog(view: PublicBlog) -> PublicBlog:
    """A snapshot: the public state with every entry's article and every figure's row."""
    return msgspec.structs.replace(
        view,
        pinned=None if view.pinned is None else live_entry(view.pinned, view.slug),
        entries=[live_entry(e, view.slug) for e in view.entries],
        facts=[live_fact(f) for f in view.facts],
    )
