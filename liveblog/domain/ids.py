"""Event ids: the one place that says what a Redis stream id ("1732900000000-0") is.

An event's id is the stream id Redis gave it: milliseconds, a hyphen, a sequence number,
each half at most 2**64 - 1 (Redis refuses a larger one). Ids order as (ms, seq) pairs,
which is the log's order. The HTTP layer, the stream and the service all read ids a
client sent through `parse`; a client's id that is not one is simply not an id.

Some places also accept a blog version instead ("3": the state right after the third
event); `parse_version` reads those.
"""

from __future__ import annotations

from typing import NamedTuple

from liveblog.errors import CorruptLog

MAX_PART = 2**64 - 1
# 2**64 - 1 has 20 digits: anything longer is refused before int() is asked to convert it
# (Python refuses 4,300 digits and more, and converting fewer still costs).
_MAX_DIGITS = 20
# Versions are counts of events: 18 digits is far beyond any log, and keeps int() cheap.
_MAX_VERSION_DIGITS = 18


# What the OpenAPI document declares for ids (and ids or versions) that clients send:
# `parse` is the check. Each half is declared with at most 19 digits, all of which are
# below 2**64 - 1, so every id the document allows is one `parse` accepts.
STREAM_ID_PATTERN = r"^[0-9]{1,19}-[0-9]{1,19}$"
STREAM_ID_OR_VERSION_PATTERN = r"^(?:[0-9]{1,19}-[0-9]{1,19}|[0-9]{1,18})$"


class StreamId(NamedTuple):
    """A stream id's two halves; tuples compare as the log orders ids."""

    ms: int
    seq: int

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


def digits(value: str, most: int | None = None) -> bool:
    """Whether `value` is one or more of 0-9 (and at most `most` of them). Check the
    length before int(): Python refuses to convert 4,300 digits or more."""
    # str.isdecimal() alone also accepts "²"-like digits of other scripts, which int() or
    # Redis refuse; isascii() keeps to 0-9.
    return (len(value) > 0 and (most is None or len(value) <= most)
            and value.isascii() and value.isdecimal())


def parse(value: str | None) -> StreamId | None:
    """The stream id `value` spells, or None if it spells none."""
    if not value:
        return None
    ms, sep, seq = value.partition("-")
    if not (sep and digits(ms, _MAX_DIGITS) and digits(seq, _MAX_DIGITS)):
        return None
    parsed = StreamId(int(ms), int(seq))
    if parsed.ms > MAX_PART or parsed.seq > MAX_PART:
        return None
    return parsed


def is_stream_id(value: str | None) -> bool:
    return parse(value) is not None


def parse_version(value: str | None) -> int | None:
    """A blog version ("3"), or None if `value` is not a whole number."""
    if value is None or not digits(value, _MAX_VERSION_DIGITS):
        return None
    return int(value)


def position(event_id: str) -> StreamId:
    """Where an id the log gave us sits in the log; a log whose ids are not stream ids
    is not one we can follow (CorruptLog)."""
    parsed = parse(event_id)
    if parsed is None:
        raise CorruptLog(f"the log gave {event_id[:60]!r}, which is not a stream id")
    return parsed
