"""The persistent sparse vector against a dict: same contents, same order, and no update
ever changes a vector already made."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from liveblog.domain.persistent import SparseVector

keys = st.one_of(st.integers(0, 80), st.integers(0, 40_000))
ops = st.lists(st.tuples(st.booleans(), keys), max_size=120)


@settings(max_examples=300, deadline=None)
@given(ops, st.integers(0, 41_000))
def test_a_sparse_vector_behaves_like_a_sorted_dict_and_never_changes(
    steps: list[tuple[bool, int]], below: int,
) -> None:
    vector: SparseVector[str] = SparseVector()
    model: dict[int, str] = {}
    history: list[tuple[SparseVector[str], dict[int, str]]] = []
    for put, key in steps:
        if put:
            vector, model = vector.set(key, f"v{key}"), {**model, key: f"v{key}"}
        else:
            vector = vector.remove(key)
            model = {k: v for k, v in model.items() if k != key}
        history.append((vector, model))
    for kept, expected in history:  # every vector made along the way is as it was made
        ordered = sorted(expected.items())
        assert list(kept.items()) == ordered
        assert list(kept.newest()) == ordered[::-1]
        assert list(kept.newest(below)) == [kv for kv in ordered[::-1] if kv[0] < below]
        assert len(kept) == len(expected) and bool(kept) == bool(expected)
        for key in (*expected, below):
            assert kept.get(key) == expected.get(key)


def test_append_keeps_order_past_many_tails() -> None:
    vector: SparseVector[int] = SparseVector()
    for n in range(5000):
        vector = vector.append(n)
    assert list(vector) == list(range(5000)) and len(vector) == 5000
    assert [k for k, _ in vector.newest(4000)][:3] == [3999, 3998, 3997]
