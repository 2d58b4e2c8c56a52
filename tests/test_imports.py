"""Checking a log from outside before it is imported (liveblog/domain/imports.py); the
real `liveblog import` is tested in test_cli_newsroom.py."""

from __future__ import annotations

import re
from datetime import timedelta

import msgspec
import pytest

from liveblog.domain import commands
from liveblog.domain.commands import EntryChanges
from liveblog.domain.events import (
    Actor,
    Embed,
    EntryEdited,
    EntryPosted,
    Event,
    FactUpdated,
    Image,
)
from liveblog.domain.imports import check_log
from liveblog.errors import InvalidImport
from tests.support import EDITOR, RANIA, T0, Log, opened, post

NOW = T0 + timedelta(hours=1)


def test_a_log_the_api_made_is_accepted_whole() -> None:
    log = opened()
    post(log, Actor("rania", "reporter", "id-rania"), title="Blast", key_event=True)
    assert check_log(log.events, now=NOW) == log.blog


def test_a_log_from_before_identities_goes_by_the_authors_name() -> None:
    """Events without actor ids: a reporter's change of an entry of the same name was
    allowed then, and is accepted; anyone else's is not."""
    rania = Actor("rania", "reporter")
    log = opened()
    entry_id = post(log, rania)
    assert log.blog is not None
    editor = Actor("ed", "editor")
    edited = commands.edit_entry(log.blog, editor, entry_id, EntryChanges(body="v2"))
    log.append(rania, edited)  # logged under her name, as the old rule allowed
    assert check_log(log.events, now=NOW) == log.blog
    log.events[-1] = msgspec.structs.replace(log.events[-1], actor="omar")
    with pytest.raises(InvalidImport, match=r"event 3 .*only an editor"):
        check_log(log.events, now=NOW)


def test_the_refusal_names_the_line_it_was_given() -> None:
    log: Log = opened()
    log.events[0] = msgspec.structs.replace(log.events[0], actor="bad name")
    with pytest.raises(InvalidImport, match=r"^line 7 \(event '1001-0', blog-opened\): actor"):
        check_log(log.events, now=NOW, lines=[7])
    with pytest.raises(InvalidImport, match="no events"):
        check_log([], now=NOW)


def test_times_out_of_order_by_concurrency_or_clock_skew_are_accepted() -> None:
    """A request takes its time before it appends (and processes' clocks differ): the
    stream id is the order. Only a time far before the latest one is made up."""
    log = opened()
    for n in range(3):
        post(log, RANIA, f"Update {n}")
    log.events[2] = msgspec.structs.replace(log.events[2], at=log.events[1].at
                                            - timedelta(seconds=40))
    log.events[3] = msgspec.structs.replace(log.events[3], at=log.events[1].at
                                            - timedelta(minutes=59))
    assert check_log(log.events, now=NOW).version == 4
    log.events[3] = msgspec.structs.replace(log.events[3], at=log.events[1].at
                                            - timedelta(minutes=61))
    with pytest.raises(InvalidImport, match=r"event 4 .*more than 60 minutes before"):
        check_log(log.events, now=NOW)


def _logged(log: Log, event: Event) -> None:
    """Append as an earlier version did, with no command to judge it today."""
    log.append(EDITOR, event)


def test_what_earlier_versions_logged_replays_though_todays_api_refuses_it() -> None:
    log = opened()
    _logged(log, EntryPosted(entry_id="e1", body="Old", embed=Embed(url="https://[x"),
                             image=Image(url="https://example.com:99999/a.jpg", alt="Smoke")))
    _logged(log, EntryPosted(entry_id="e2", body="Older", embed=Embed(url="https://a.example/\n")))
    _logged(log, EntryEdited(entry_id="e2", body="Edited",
                             image=Image(url="https://%zz/a.jpg", alt="x")))
    for n in range(commands.MAX_FACTS + 1):
        _logged(log, FactUpdated(key=f"f{n}", label="F", value="v", numeric=-1e300))
    assert check_log(log.events, now=NOW) == log.blog


@pytest.mark.parametrize(("url", "says"), [
    ("javascript:alert(1)", "embed.url: must be an http(s):// URL"),
    ("data:text/html,<script>", "embed.url: must be an http(s):// URL"),
    ("HTTPS://a.example/", "embed.url: must be an http(s):// URL"),
    ("https://a.example/ x", "embed.url: must be an http(s):// URL"),
    ("https://a.example/\n\n", "embed.url: must be an http(s):// URL"),
    ("https://a.example/" + "x" * 1990, "embed.url: Expected `str` of length <= 2000"),
])
def test_urls_no_version_accepted_are_refused(url: str, says: str) -> None:
    log = opened()
    _logged(log, EntryPosted(entry_id="e1", body="Bad", embed=Embed(url=url)))
    with pytest.raises(InvalidImport, match=re.escape(says)):
        check_log(log.events, now=NOW)


def test_an_image_by_path_is_taken_as_the_api_takes_it() -> None:
    """Issue 9: the demo's pictures are paths on the site. A replay checks no URL again, so
    the import's own type must refuse a path to another host, and one the API would have
    stored otherwise (with its dot segments resolved)."""
    log = opened()
    post(log, RANIA, image=commands.ImageInput(url="/static/demo/tartus.svg", alt="Smoke"))
    assert check_log(log.events, now=NOW) == log.blog
    for url, says in [("//evil.example/x.png", "image.url: must be an http(s):// URL or a path"),
                      ("/\\evil.example/x.png", "image.url: must be an http(s):// URL or a path"),
                      ("/static//x.png", "image.url: must be an http(s):// URL or a path"),
                      ("/static/./demo/tartus.svg", "not what the API logs")]:
        bad = opened()
        _logged(bad, EntryPosted(entry_id="e1", body="Bad", image=Image(url=url, alt="a")))
        with pytest.raises(InvalidImport, match=re.escape(says)):
            check_log(bad.events, now=NOW)


def test_an_actor_named_before_names_were_checked_to_the_end_is_accepted() -> None:
    """`liveblog token create --name` took a final newline until 2026-12-02 (Python's `$`);
    that token's events must replay. Any other shape is refused."""
    rania = Actor("rania\n", "reporter", "id-rania")
    log = opened()
    post(log, rania)
    assert check_log(log.events, now=NOW) == log.blog
    for name in ("rania\n\n", "ra nia", "<script>", ""):
        log.events[1] = msgspec.structs.replace(log.events[1], actor=name)
        with pytest.raises(InvalidImport, match=r"event 2 .*actor: must be 1 to 64"):
            check_log(log.events, now=NOW)
