"""States of one blog kept at regular versions, so a past state is a short fold away.

`state?at=` and every replay frame ask for the blog as it stood at some version. Folding
the log from the start each time costs the whole log (seconds for 100,000 events); from
the nearest checkpoint at or before the version it costs at most `every` events. States
share all but what changed between them (the fold's collections are persistent), so a
checkpoint costs what the `every` events before it changed, not a copy of the blog.

Checkpoints sit at versions every, 2*every, 3*every, ... with no gap: whoever folds past
the next one offers it. When there are more than `limit`, every other one is dropped and
the spacing doubles, so a blog keeps at most `limit` of them however long its log grows.
The last state folded is kept too, so a replay stepping forward one event at a time folds
one event per frame. Nothing here reads Redis: the Service reads the events and keeps one
Checkpoints per blog.

Memory (bench/fold.py): each checkpoint holds what about `every` events changed, about a
quarter of a MiB for a blog of 100,000 events (24 MiB for its 97 checkpoints, on top of
14 MiB for the state itself); a blog of a few thousand events keeps a few, well under a
MiB. The price besides memory: the entries map's nodes (immutables.Map hashes its keys,
so a thousand posts touch a thousand paths) are objects the garbage collector walks, and
a full pass with such a blog's checkpoints in memory takes about 0.3 s on the bench machine.
"""

from __future__ import annotations

from collections.abc import Sequence

from liveblog.domain.events import Recorded
from liveblog.domain.state import Blog, fold

CHECKPOINT_EVERY = 1024
MAX_CHECKPOINTS = 128


class Checkpoints:
    def __init__(self, every: int = CHECKPOINT_EVERY, limit: int = MAX_CHECKPOINTS) -> None:
        self.every = every
        self.limit = limit
        self._states: list[Blog] = []  # at versions every, 2 * every, ...
        self._recent: Blog | None = None

    def __len__(self) -> int:
        return len(self._states)

    @property
    def _next(self) -> int:
        return (len(self._states) + 1) * self.every

    def nearest(self, version: int) -> Blog | None:
        """The latest checkpoint at or before `version` (None: start from the empty log)."""
        n = min(version // self.every, len(self._states))
        nearest = self._states[n - 1] if n else None
        recent = self._recent
        if recent is not None and (nearest.version if nearest else 0) < recent.version <= version:
            return recent
        return nearest

    def offer(self, blog: Blog) -> None:
        """Keep `blog` if it is the next checkpoint (anything else is ignored)."""
        if blog.version != self._next:
            return
        self._states.append(blog)
        if len(self._states) > self.limit:
            self._states = self._states[1::2]
            self.every *= 2

    def fold(self, events: Sequence[Recorded], blog: Blog | None) -> Blog | None:
        """`state.fold(events, blog)`, keeping the checkpoints it passes on the way
        (when they follow the last one kept without a gap)."""
        version = 0 if blog is None else blog.version
        done = 0
        while version < self._next <= version + len(events) - done:
            step = self._next - version
            blog = fold(events[done:done + step], blog)
            assert blog is not None
            done += step
            version = blog.version
            self.offer(blog)
        if done < len(events):
            blog = fold(events[done:], blog)
        self._recent = blog
        return blog

    def forget(self) -> None:
        """Drop every checkpoint (the log is not the one they were folded from)."""
        self._states.clear()
        self._recent = None
