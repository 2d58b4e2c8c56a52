"""Event ids: the one parser every layer uses (liveblog/domain/ids.py)."""

from __future__ import annotations

import pytest

from liveblog.domain import ids
from liveblog.domain.ids import StreamId
from liveblog.errors import CorruptLog


@pytest.mark.parametrize(("value", "expected"), [
    ("1732900000000-0", StreamId(1732900000000, 0)),
    ("0-1", StreamId(0, 1)),
    (f"{2**64 - 1}-{2**64 - 1}", StreamId(2**64 - 1, 2**64 - 1)),
])
def test_stream_ids_parse_to_their_halves(value: str, expected: StreamId) -> None:
    assert ids.parse(value) == expected
    assert str(ids.parse(value)) == value
    assert ids.position(value) == expected


@pytest.mark.parametrize("value", [
    None, "", "-", "1-", "-1", "1", "1-2-3", "a-1", " 1-0", "1-0 ", "+1-0", "1_0-0",
    "\u0661-\u0661",  # Arabic-Indic digits: isdecimal() says yes, Redis says no
    "²-0",
    f"{2**64}-0", f"0-{2**64}",  # past what Redis accepts
    "9" * 21 + "-0", "1-" + "9" * 5000,
])
def test_anything_else_is_no_stream_id(value: str | None) -> None:
    assert ids.parse(value) is None and not ids.is_stream_id(value)


def test_an_id_from_the_log_that_is_no_stream_id_means_a_corrupt_log() -> None:
    with pytest.raises(CorruptLog):
        ids.position("not-an-id")


def test_ids_order_as_the_log_does() -> None:
    # Numerically, not as strings: "9-0" comes before "10-0".
    assert ids.parse("9-0") < ids.parse("10-0") < ids.parse("10-1")  # type: ignore[operator]


@pytest.mark.parametrize(("value", "expected"), [
    ("3", 3), ("0", 0), ("9" * 18, int("9" * 18)),
    ("9" * 19, None), ("", None), (None, None), ("-1", None), ("²", None), ("1-0", None),
])
def test_versions(value: str | None, expected: int | None) -> None:
    assert ids.parse_version(value) == expected
