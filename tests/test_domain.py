"""The pure core: commands decide events, `apply` folds them. No Redis here."""

from __future__ import annotations

import contextlib

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveblog.domain import commands
from liveblog.domain.commands import (
    BlogChanges,
    EntryChanges,
    FactInput,
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
    FactUpdated,
    PinChanged,
    Recorded,
    event_decoder,
    event_encoder,
)
from liveblog.domain.state import Blog, CorruptLog, Entry, fold, posted_entry
from liveblog.domain.views import FACT_HISTORY_POINTS, fact_history, public_blog
from liveblog.errors import Conflict, Forbidden, Gone, NotFound, PreconditionFailed, Problem
from tests.support import EDITOR, OMAR, RANIA, action, actors, opened, post, run, text


def test_a_blog_starts_live_at_version_1() -> None:
    log = opened()
    assert log.blog is not None
    assert (log.blog.version, log.blog.status, log.blog.title) == (1, "live", "Blasts")


def test_only_editors_open_blogs_and_slugs_are_unique() -> None:
    with pytest.raises(Forbidden):
        commands.open_blog(None, RANIA, NewBlog(slug="x", title="X"))
    log = opened()
    with pytest.raises(Conflict):
        commands.open_blog(log.blog, EDITOR, NewBlog(slug="tartus", title="Again"))


def test_edit_keeps_author_bumps_revision_and_changes_only_what_is_given() -> None:
    log = opened()
    entry_id = post(log, RANIA, title="First blasts", key_event=True)
    assert log.blog is not None
    edit = commands.edit_entry(log.blog, EDITOR, entry_id,
                               EntryChanges(body="Blasts at the bus station", note="plural"))
    blog = log.append(EDITOR, edit)
    assert blog is not None
    entry = blog.entries[entry_id]
    assert (entry.author, entry.revision, entry.body) == ("rania", 2, "Blasts at the bus station")
    assert (entry.title, entry.key_event) == ("First blasts", True)
    assert entry.updated_at > entry.posted_at


def test_a_reporter_cannot_change_anothers_entry_but_an_editor_can() -> None:
    log = opened()
    entry_id = post(log, RANIA)
    assert log.blog is not None
    with pytest.raises(Forbidden):
        commands.edit_entry(log.blog, OMAR, entry_id, EntryChanges(body="mine now"))
    with pytest.raises(Forbidden):
        commands.retract_entry(log.blog, OMAR, entry_id, Retraction())
    assert commands.retract_entry(log.blog, EDITOR, entry_id, Retraction(reason="wrong city"))


def test_an_entry_is_its_authors_identity_not_its_authors_name() -> None:
    log = opened()
    entry_id = post(log, RANIA)
    assert log.blog is not None
    # The name was revoked and given to someone else: a new identity, not the author.
    new_rania = Actor("rania", "reporter", "id-someone-new")
    with pytest.raises(Forbidden):
        commands.edit_entry(log.blog, new_rania, entry_id, EntryChanges(body="mine now"))
    with pytest.raises(Forbidden):
        commands.retract_entry(log.blog, new_rania, entry_id, Retraction())
    assert commands.edit_entry(log.blog, RANIA, entry_id, EntryChanges(body="still mine"))


def test_an_entry_logged_without_its_authors_identity_is_for_editors_only() -> None:
    log = opened()
    legacy = Actor("rania", "reporter")  # events logged before identities were recorded
    entry_id = post(log, legacy)
    assert log.blog is not None and log.blog.entries[entry_id].author_id is None
    for reporter in (RANIA, legacy):
        with pytest.raises(Forbidden, match="only an editor"):
            commands.edit_entry(log.blog, reporter, entry_id, EntryChanges(body="mine"))
        with pytest.raises(Forbidden, match="only an editor"):
            commands.retract_entry(log.blog, reporter, entry_id, Retraction())
    assert commands.edit_entry(log.blog, EDITOR, entry_id, EntryChanges(body="fixed"))
    assert log.blog.entries[entry_id].author == "rania"  # the byline stays


def test_if_revision_must_match_the_current_revision() -> None:
    log = opened()
    entry_id = post(log, RANIA)
    assert log.blog is not None
    log.append(RANIA, commands.edit_entry(log.blog, RANIA, entry_id, EntryChanges(body="v2")))
    with pytest.raises(PreconditionFailed):
        commands.edit_entry(log.blog, RANIA, entry_id, EntryChanges(body="v3"), if_revision=1)
    assert commands.edit_entry(log.blog, RANIA, entry_id, EntryChanges(body="v3"), if_revision=2)


def test_retraction_removes_the_entry_and_its_pin_and_later_changes_are_gone() -> None:
    log = opened()
    entry_id = post(log, RANIA)
    assert log.blog is not None
    log.append(EDITOR, commands.change_pin(log.blog, EDITOR, Pin(entry_id=entry_id)))
    assert log.blog.pinned == entry_id
    blog = log.append(EDITOR, commands.retract_entry(log.blog, EDITOR, entry_id, Retraction()))
    assert blog is not None
    assert entry_id not in blog.entries and blog.pinned is None
    with pytest.raises(Gone):
        commands.edit_entry(blog, EDITOR, entry_id, EntryChanges(body="back"))
    with pytest.raises(Gone):
        commands.change_pin(blog, EDITOR, Pin(entry_id=entry_id))
    with pytest.raises(NotFound):
        commands.change_pin(blog, EDITOR, Pin(entry_id="nope"))


def test_an_ended_blog_takes_no_posts_or_figures_but_editors_may_still_correct() -> None:
    log = opened()
    entry_id = post(log, RANIA)
    assert log.blog is not None
    log.append(EDITOR, commands.update_blog(log.blog, EDITOR, BlogChanges(status="ended")))
    blog = log.blog
    assert blog.status == "ended" and blog.ended_at is not None
    with pytest.raises(Conflict):
        commands.post_entry(blog, EDITOR, NewEntry(body="late"), "x")
    with pytest.raises(Conflict):
        commands.update_fact(blog, EDITOR, "deaths", FactInput(label="Deaths", value="80"))
    with pytest.raises(Conflict):
        commands.edit_entry(blog, RANIA, entry_id, EntryChanges(body="typo"))
    assert commands.edit_entry(blog, EDITOR, entry_id, EntryChanges(body="corrected"))
    reopened = log.append(EDITOR, commands.update_blog(blog, EDITOR, BlogChanges(status="live")))
    assert reopened is not None and reopened.status == "live" and reopened.ended_at is None


def test_facts_keep_their_history() -> None:
    log = opened()
    for value, numeric, source in (("at least 80", 80, "AP"), ("121", 121, "SOHR")):
        assert log.blog is not None
        log.append(RANIA, commands.update_fact(
            log.blog, RANIA, "deaths",
            FactInput(label="Deaths", value=value, numeric=numeric, source=source),
        ))
    assert log.blog is not None
    fact = log.blog.facts["deaths"]
    assert (fact.value, fact.numeric, fact.source) == ("121", 121, "SOHR")
    assert [(p.numeric, p.source) for p in fact.history] == [(80, "AP"), (121, "SOHR")]


def test_requests_that_change_nothing_make_no_event() -> None:
    log = opened()
    entry_id = post(log, RANIA, body="same")
    assert log.blog is not None
    assert commands.edit_entry(log.blog, RANIA, entry_id, EntryChanges(body="same")) is None
    assert commands.update_blog(log.blog, EDITOR, BlogChanges(title="Blasts")) is None
    assert commands.change_pin(log.blog, EDITOR, Pin(entry_id=None)) is None


def test_apply_refuses_a_log_out_of_order() -> None:
    log = opened()
    post(log, RANIA)
    with pytest.raises(CorruptLog):
        fold([log.events[1]])
    with pytest.raises(CorruptLog):
        fold([log.events[0], log.events[0]])


def test_public_view_pages_newest_first_and_across_retractions() -> None:
    log = opened()
    ids = [post(log, RANIA, body=f"update {n}") for n in range(5)]
    assert log.blog is not None
    log.append(EDITOR, commands.retract_entry(log.blog, EDITOR, ids[3], Retraction()))
    view = public_blog(log.blog, limit=2)
    assert [e.id for e in view.entries] == [ids[4], ids[2]]
    assert view.next_before == ids[2]
    older = public_blog(log.blog, limit=2, before=ids[3])  # a retracted id still pages
    assert [e.id for e in older.entries] == [ids[2], ids[1]]
    last = public_blog(log.blog, limit=2, before=ids[1])
    assert [e.id for e in last.entries] == [ids[0]] and last.next_before is None


# -- property: the state at version N is the fold of the first N events ----------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(action, max_size=40))
def test_replaying_any_prefix_gives_the_state_at_that_version(
    steps: list[tuple[object, ...]],
) -> None:
    log = opened()
    for step in steps:
        before = log.blog
        try:
            run(log, step)
        except Problem:
            assert log.blog is before  # a refused command appends nothing
    # The log survives the store's encoding, and every prefix folds to the state it made.
    stored = [
        msgspec.structs.replace(rec, event=event_decoder.decode(event_encoder.encode(rec.event)))
        for rec in log.events
    ]
    for n in range(1, len(stored) + 1):
        state = fold(stored[:n])
        assert state == log.states[n - 1]
        assert state is not None and state.version == n
    final = log.blog
    assert final is not None
    edits = {e.entry_id: 0 for e in (r.event for r in log.events) if hasattr(e, "entry_id")}
    for rec in log.events:
        if rec.event.__class__.__name__ == "EntryEdited":
            edits[rec.event.entry_id] += 1
    for entry in final.entries.values():
        assert entry.revision == 1 + edits[entry.id]
        assert entry.id not in final.retracted
    assert final.pinned is None or final.pinned in final.entries


# -- property: the persistent fold is the dict fold it replaced ----------------------------


def reference_fold(events: list[Recorded]) -> dict[str, object]:
    """The fold as it was before the state became persistent: dicts copied per event, the
    entries dict in posting order, figures in the order they first appeared."""
    head: dict[str, object] = {}
    entries: dict[str, Entry] = {}
    retracted: dict[str, int] = {}
    facts: dict[str, tuple[object, ...]] = {}
    for rec in events:
        event = rec.event
        if isinstance(event, BlogOpened):
            head = {"title": event.title, "status": "live", "pinned": None}
        elif isinstance(event, BlogUpdated):
            head = {**head, "title": event.title or head["title"],
                    "status": event.status or head["status"]}
        elif isinstance(event, EntryPosted):
            entries = {**entries, event.entry_id: posted_entry(rec)}
        elif isinstance(event, EntryEdited):
            old = entries[event.entry_id]
            entries = {**entries, old.id: msgspec.structs.replace(
                old, body=event.body, title=event.title, key_event=event.key_event,
                image=event.image, embed=event.embed, updated_at=rec.at,
                revision=old.revision + 1)}
        elif isinstance(event, EntryRetracted):
            gone = entries[event.entry_id]
            entries = {k: v for k, v in entries.items() if k != gone.id}
            retracted = {**retracted, gone.id: gone.posted_version}
            if head["pinned"] == gone.id:
                head = {**head, "pinned": None}
        elif isinstance(event, PinChanged):
            head = {**head, "pinned": event.entry_id}
        elif isinstance(event, FactUpdated):
            history = facts[event.key][-1] if event.key in facts else ()
            point = (event.value, event.numeric, event.source, rec.at)
            facts = {**facts, event.key: (event.label, event.value, event.numeric,
                                          event.source, rec.at, (*history, point))}  # type: ignore[misc]
    return {"head": head, "entries": list(entries.values()), "retracted": retracted,
            "facts": [(key, *value) for key, value in facts.items()]}


def plain(blog: Blog) -> dict[str, object]:
    """The same shape, read from a (persistent) Blog."""
    return {
        "head": {"title": blog.title, "status": blog.status, "pinned": blog.pinned},
        "entries": list(blog.entries.values()),
        "retracted": dict(blog.retracted),
        "facts": [(f.key, f.label, f.value, f.numeric, f.source, f.updated_at,
                   tuple((p.value, p.numeric, p.source, p.at) for p in f.history))
                  for f in sorted(blog.facts.values(), key=lambda f: f.since)],
    }


def reference_page(model: dict[str, object], limit: int, before: str | None) -> list[str]:
    """The ids of a page of entries, as public_blog paged them before."""
    entries = model["entries"]
    retracted = model["retracted"]
    assert isinstance(entries, list) and isinstance(retracted, dict)
    newest_first = list(reversed(entries))
    if before is not None:
        cutoff = next((e.posted_version for e in entries if e.id == before), None)
        cutoff = retracted[before] if cutoff is None else cutoff
        newest_first = [e for e in newest_first if e.posted_version < cutoff]
    return [e.id for e in newest_first[:limit]]


# Edits that make an entry a key event, or no longer one.
key_edit = st.tuples(st.just("key"), actors, st.integers(0, 20), st.none() | text, st.booleans())


@settings(max_examples=150, deadline=None)
@given(st.lists(action | key_edit, max_size=60), st.integers(1, 4))
def test_the_persistent_fold_is_the_dict_fold_and_never_changes_a_state(
    steps: list[tuple[object, ...]], limit: int,
) -> None:
    log = opened()
    seen: list[tuple[dict[str, object], bytes]] = []

    def look(state: Blog) -> tuple[dict[str, object], bytes]:
        return plain(state), msgspec.json.encode(public_blog(state, limit=100))

    for step in [None, *steps]:
        if step is not None:
            with contextlib.suppress(Problem):
                run(log, step)
        # What each state looked like when it was made, before any later event.
        seen.extend(look(state) for state in log.states[len(seen):])
    for n, state in enumerate(log.states):  # fold on again from every state kept
        assert fold(log.events[n + 1:], state) == log.blog
    for n, (state, (made, view)) in enumerate(zip(log.states, seen, strict=True), 1):
        model = reference_fold(log.events[:n])
        assert look(state) == (made, view)  # never changed since it was made
        assert made == model  # and equal to what the old fold made
        ids = [e.id for e in model["entries"]]  # type: ignore[attr-defined]
        for before in (None, *ids[-3:], *list(state.retracted)[:2]):
            page = public_blog(state, limit=limit, before=before)
            expected = reference_page(model, limit, before)
            assert [e.id for e in page.entries] == expected
            older = reference_page(model, limit + 1, before)
            assert page.next_before == (expected[-1] if len(older) > limit else None)
            assert page.total_entries == len(ids)
        assert [k.id for k in public_blog(state).key_events] == [
            e.id for e in reversed(model["entries"])  # type: ignore[call-overload]
            if e.key_event and e.title]


def test_a_figure_updated_thousands_of_times_keeps_every_value_in_order() -> None:
    log = opened()
    for n in range(3000):
        assert log.blog is not None
        log.append(RANIA, commands.update_fact(
            log.blog, RANIA, "deaths", FactInput(label="Deaths", value=str(n), numeric=n)))
    assert log.blog is not None
    assert [p.numeric for p in log.blog.facts["deaths"].history] == list(range(3000))
    assert [p.numeric for p in log.states[100].facts["deaths"].history] == list(range(100))
    # What travels is the newest FACT_HISTORY_POINTS and the count; the rest pages.
    public = public_blog(log.blog).facts[0]
    assert [p.numeric for p in public.history] == list(range(3000 - FACT_HISTORY_POINTS, 3000))
    assert public.history_total == 3000
    pages = [fact_history(log.blog, "deaths", start=start, limit=700)
             for start in range(0, 3000, 700)]
    assert [p.numeric for page in pages for p in page.points] == list(range(3000))
    assert [page.next_start for page in pages] == [700, 1400, 2100, 2800, None]
