"""Past states from checkpoints are the states a fold from scratch gives: in the pure core,
and through Service.blog_at on a real Redis at every version of a generated log."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from liveblog.checkpoints import Checkpoints
from liveblog.domain.events import Actor, Recorded
from liveblog.domain.state import fold
from liveblog.errors import NotFound, Problem
from liveblog.service import Service
from liveblog.store import Store
from tests.support import EDITOR, OMAR, RANIA, Log, action, opened, run


def generated_log(steps: list[tuple[object, ...]]) -> Log:
    log = opened()
    for step in steps:
        with contextlib.suppress(Problem):
            run(log, step)
    return log


@settings(max_examples=100, deadline=None)
@given(st.lists(action, max_size=50), st.integers(1, 5), st.integers(1, 4), st.randoms())
def test_a_state_from_the_nearest_checkpoint_is_the_fold_from_scratch(
    steps: list[tuple[object, ...]], every: int, limit: int, rng: random.Random,
) -> None:
    log = generated_log(steps)
    checkpoints = Checkpoints(every, limit)
    versions = list(range(1, len(log.events) + 1))
    rng.shuffle(versions)
    for version in versions:  # in any order: each call may add checkpoints
        base = checkpoints.nearest(version)
        start = 0 if base is None else base.version
        assert start <= version
        state = checkpoints.fold(log.events[start:version], base)
        assert state == fold(log.events[:version]) == log.states[version - 1]
        assert len(checkpoints) <= limit


def test_state_at_every_version_through_checkpoints_on_redis(redis_url: str) -> None:
    rng = random.Random(5)
    log = opened()
    for n in range(240):  # a varied story: posts, edits, retractions, pins, figures, ...
        actor = rng.choice([EDITOR, RANIA, OMAR])
        step = rng.choice([
            ("post", actor, f"update {n}", None if n % 3 else f"Title {n}", n % 4 == 0),
            ("post", actor, f"update {n}", None, False),
            ("edit", actor, n, f"edit {n}", "typo"),
            ("retract", actor, n, "wrong"),
            ("pin", EDITOR, n),
            ("fact", actor, rng.choice(["deaths", "injured"]), str(n), n),
            ("status", EDITOR, "ended" if n % 2 else "live"),
            ("title", EDITOR, f"Headline {n}"),
        ])
        with contextlib.suppress(Problem):
            run(log, step)
    assert len(log.events) > 100

    async def check() -> None:
        store = Store.from_url(redis_url)
        try:
            for rec in log.events:
                actor = Actor(rec.actor, rec.role, rec.actor_id or "")
                await store.append("tartus", rec.event, actor, rec.at, event_id=rec.id)
            read = store.read
            counted = [0]

            async def counting_read(*args: Any, **kwargs: Any) -> list[Recorded]:
                events = await read(*args, **kwargs)
                counted[0] += len(events)
                return events

            store.read = counting_read  # type: ignore[method-assign]
            service = Service(store, checkpoint_every=4)
            versions = list(range(1, len(log.events) + 1))
            rng.shuffle(versions)
            for version in versions:
                state = await service.blog_at("tartus", str(version))
                assert state == log.states[version - 1], version
            # Loading the blog made the checkpoints: each state read at most 3 events.
            assert counted[0] <= 3 * len(versions)
            for version in (1, len(log.events) // 2, len(log.events)):
                rec = log.events[version - 1]
                assert await service.blog_at("tartus", rec.id) == log.states[version - 1]
            # A fresh process, stepping through every version as a replay plays.
            fresh = Service(store, checkpoint_every=16)
            for version in range(1, len(log.events) + 1):
                assert await fresh.blog_at("tartus", str(version)) == log.states[version - 1]
            for missing in ("0", str(len(log.events) + 1), "1-0"):
                try:
                    await service.blog_at("tartus", missing)
                except NotFound:
                    continue
                raise AssertionError(f"{missing} should be NotFound")
        finally:
            await store.close()

    asyncio.run(check())
