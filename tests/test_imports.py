"""Checking a log from outside before it is imported (liveblog/domain/imports.py); the
real `liveblog import` is tested in test_cli_newsroom.py."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from liveblog.domain import commands
from liveblog.domain.commands import EntryChanges
from liveblog.domain.events import Actor
from liveblog.domain.imports import check_log
from liveblog.errors import InvalidImport
from tests.test_domain import T0, Log, opened, post

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
