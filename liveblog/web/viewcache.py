"""Rendered answers kept per blog state, so a reader's GET between two writes costs a
lookup, not a render.

A reader page or a page of the blog's JSON is a function of the blog's state, and the
state is named by its last event id (it changes with every write, and two logs that reach
the same version number have different ids), so that id is part of every key: a write
makes new keys, and answers for older states age out of the LRU. Rendering grows with what
the page shows (a 5,000-entry blog's page lists hundreds of key events); a lookup does not.

Reader pages also show relative times ("5 minutes ago"), so an entry may set a time to
live: a page is kept no longer than PAGE_CACHE lets a browser or a CDN keep it anyway.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class ViewCache(Generic[V]):
    def __init__(self, size: int, ttl: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.ttl = ttl
        self.clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()

    def get(self, key: Hashable) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        made, body = found
        if self.ttl is not None and self.clock() - made >= self.ttl:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return body

    def put(self, key: Hashable, body: V) -> None:
        self._entries[key] = (self.clock(), body)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
