"""A persistent sparse vector: values under non-negative integer keys, kept in key order.

A blog's state is kept at many versions at once (the checkpoints behind `state?at=` and the
replay, the state before and after a write), so an update must not copy the whole state: it
copies only the path to the key it changes (a 32-way trie, 4 levels for a million keys) and
shares everything else with the vector it came from. Every subtree knows how many values it
holds, so a subtree whose values were all removed is dropped, and walking from the newest
key down skips what was removed without visiting it.

Keys mostly grow (entries are keyed by the version that posted them, a figure's history by
its position), so, as in Clojure's vectors, the rightmost 32 slots live apart in a "tail":
setting a key there copies one small tuple, and only a full tail goes down into the trie.

Nodes are plain tuples, `(count, child, child, ...)`, holding only as many slots as they
use: cheap to build and, holding no cycles, soon ignored by the garbage collector.

immutables.Map (a HAMT) does the same for lookups by key but keeps no order; this keeps the
order: entries in posting order, and the points of a figure's history.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_BITS = 5
_WIDTH = 1 << _BITS
_MASK = _WIDTH - 1

# (count, child, child, ...); a child is a node, a value at the bottom level, or None.
Node = tuple[Any, ...]


class SparseVector(Generic[T]):
    """Values by integer key, iterated in key order; `set` and `remove` return a new vector
    in O(log n) (O(1) near the highest key) and leave this one as it was."""

    __slots__ = ("_root", "_shift", "_tail", "_tail_base")

    def __init__(self, _root: Node | None = None, _shift: int = 0, _tail: Node | None = None,
                 _tail_base: int = 0) -> None:
        # Keys below _tail_base, in a trie whose root spans keys below 1 << (_shift + 5).
        self._root = _root
        self._shift = _shift
        # Keys _tail_base .. _tail_base + 31, in one bottom-level node.
        self._tail = _tail
        self._tail_base = _tail_base

    def __len__(self) -> int:
        return (0 if self._root is None else self._root[0]) + (
            0 if self._tail is None else self._tail[0])

    def __bool__(self) -> bool:
        return self._root is not None or self._tail is not None

    def __iter__(self) -> Iterator[T]:
        """The values, lowest key first."""
        for _, value in self.items():
            yield value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SparseVector):
            return NotImplemented
        return list(self.items()) == list(other.items())

    __hash__ = None  # type: ignore[assignment]  # equal by content, like a list

    def __repr__(self) -> str:
        return f"SparseVector({dict(self.items())!r})"

    def get(self, key: int) -> T | None:
        if key >= self._tail_base:
            tail, i = self._tail, key - self._tail_base + 1
            value: T | None = tail[i] if tail is not None and i < len(tail) else None
            return value
        node, shift = self._root, self._shift
        if node is None or key < 0 or key >> (shift + _BITS):
            return None
        while True:
            i = ((key >> shift) & _MASK) + 1
            if i >= len(node):
                return None
            child = node[i]
            if shift == 0 or child is None:
                return child  # type: ignore[no-any-return]
            node, shift = child, shift - _BITS

    def set(self, key: int, value: T) -> SparseVector[T]:
        """A vector with `value` under `key` (values must not be None)."""
        tail, base = self._tail, self._tail_base
        if key >= base + _WIDTH:
            # Past the tail: the tail goes down into the trie, a new one starts at `key`.
            root, shift = self._root, self._shift
            if tail is not None:
                root, shift = _grown(root, shift, base)
                root = _put_leaf(root, shift, base, tail)
            return SparseVector(root, shift, (1, *(None,) * (key & _MASK), value),
                                key & ~_MASK)
        if key >= base:
            return SparseVector(self._root, self._shift, _with(tail, key - base, value), base)
        if key < 0:
            raise ValueError(f"keys are non-negative, not {key}")
        root, shift = _grown(self._root, self._shift, key)
        return SparseVector(_set(root, shift, key, value), shift, tail, base)

    def append(self, value: T) -> SparseVector[T]:
        """A vector with `value` after the others (for vectors whose keys are 0..n-1)."""
        return self.set(len(self), value)

    def remove(self, key: int) -> SparseVector[T]:
        """A vector without `key` (this one if it has no such key)."""
        if self.get(key) is None:
            return self
        if key >= self._tail_base:
            return SparseVector(self._root, self._shift,
                                _with(self._tail, key - self._tail_base, None), self._tail_base)
        assert self._root is not None
        return SparseVector(_remove(self._root, self._shift, key), self._shift, self._tail,
                            self._tail_base)

    def items(self) -> Iterator[tuple[int, T]]:
        """(key, value) pairs, lowest key first."""
        if self._root is not None:
            yield from _forward(self._root, self._shift, 0)
        if self._tail is not None:
            yield from _forward(self._tail, 0, self._tail_base)

    def newest(self, below: int | None = None) -> Iterator[tuple[int, T]]:
        """(key, value) pairs, highest key first; only keys below `below`, if given."""
        if below is None:
            below = self._tail_base + _WIDTH
        if self._tail is not None:
            yield from _backward(self._tail, 0, self._tail_base, below)
        if self._root is not None:
            yield from _backward(self._root, self._shift, 0, below)


def _with(node: Node | None, i: int, child: Any) -> Node | None:
    """`node` with slot i holding `child` (None: emptied); None once nothing is left."""
    old = None if node is None or i + 1 >= len(node) else node[i + 1]
    count = (0 if node is None else node[0]) + (child is not None) - (old is not None)
    if count == 0:
        return None
    if node is None:
        return (count, *(None,) * i, child)
    if i + 1 < len(node):
        slots = list(node)
        slots[0], slots[i + 1] = count, child
        return tuple(slots)
    return (count, *node[1:], *(None,) * (i + 1 - len(node)), child)


def _grown(root: Node | None, shift: int, key: int) -> tuple[Node | None, int]:
    """The trie grown upwards until its root spans `key`: the old root becomes child 0."""
    if root is None:
        shift = 0
    while key >> (shift + _BITS):
        if root is not None:
            root = (root[0], root)
        shift += _BITS
    return root, shift


def _set(node: Node | None, shift: int, key: int, value: Any) -> Node:
    i = (key >> shift) & _MASK
    if shift == 0:
        result = _with(node, i, value)
    else:
        child = None if node is None or i + 1 >= len(node) else node[i + 1]
        new_child = _set(child, shift - _BITS, key, value)
        result = _with_child(node, i, child, new_child)
    assert result is not None
    return result


def _put_leaf(node: Node | None, shift: int, base: int, leaf: Node) -> Node:
    """The trie with a whole bottom-level node placed at `base` (where nothing is yet)."""
    if shift == 0:
        return leaf
    i = (base >> shift) & _MASK
    child = None if node is None or i + 1 >= len(node) else node[i + 1]
    new_child = _put_leaf(child, shift - _BITS, base, leaf)
    result = _with_child(node, i, child, new_child)
    assert result is not None
    return result


def _remove(node: Node, shift: int, key: int) -> Node | None:
    """The node without `key` (which is known to be under it); None once it is empty."""
    i = (key >> shift) & _MASK
    if shift == 0:
        return _with(node, i, None)
    child = node[i + 1]
    return _with_child(node, i, child, _remove(child, shift - _BITS, key))


def _with_child(node: Node | None, i: int, old: Node | None, new: Node | None) -> Node | None:
    """An inner node with child i replaced, its count following the child's."""
    count = ((0 if node is None else node[0]) + (0 if new is None else new[0])
             - (0 if old is None else old[0]))
    if count == 0:
        return None
    if node is None:
        return (count, *(None,) * i, new)
    if i + 1 < len(node):
        slots = list(node)
        slots[0], slots[i + 1] = count, new
        return tuple(slots)
    return (count, *node[1:], *(None,) * (i + 1 - len(node)), new)


def _forward(node: Node, shift: int, base: int) -> Iterator[tuple[int, Any]]:
    for i in range(1, len(node)):
        child = node[i]
        if child is None:
            continue
        key = base | ((i - 1) << shift)
        if shift == 0:
            yield key, child
        else:
            yield from _forward(child, shift - _BITS, key)


def _backward(node: Node, shift: int, base: int, below: int) -> Iterator[tuple[int, Any]]:
    for i in range(len(node) - 1, 0, -1):
        child = node[i]
        key = base | ((i - 1) << shift)
        # `key` is the lowest key this child can hold: skip it if even that is too high.
        if child is None or key >= below:
            continue
        if shift == 0:
            yield key, child
        else:
            yield from _backward(child, shift - _BITS, key, below)
