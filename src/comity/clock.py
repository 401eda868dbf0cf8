"""Time as an injected dependency, and the wire format for timestamps.

Verification code takes the current time as an argument (or a ``Clock``) so
tests can move time freely; nothing deep inside a check calls ``now()``.
Timestamps travel as RFC 3339 UTC strings with microseconds and a ``Z``.

Example::

    clock = FixedClock(parse_ts("2026-01-01T00:00:00.000000Z"))
    format_ts(clock.now())   # '2026-01-01T00:00:00.000000Z'
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Protocol

__all__ = ["Clock", "FixedClock", "SystemClock", "format_ts", "parse_ts"]

_TS = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z\Z")


class Clock(Protocol):
    """Something that tells the current UTC time."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """A clock for tests: it says what it is told."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


def format_ts(when: dt.datetime) -> str:
    """Format an aware datetime as the canonical wire timestamp.

    Raises:
        ValueError: for naive datetimes (a caller bug).
    """
    if when.tzinfo is None:
        raise ValueError("naive datetime")
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: object) -> dt.datetime:
    """Parse a wire timestamp, accepting only the exact canonical form.

    Raises:
        ValueError: if ``text`` is not a canonical timestamp.
    """
    if not isinstance(text, str) or not _TS.match(text):
        raise ValueError(f"not a canonical UTC timestamp: {text!r}")
    # The pattern fixed the exact shape; fromisoformat only fills in the values
    # (and rejects impossible ones such as month 13).
    return dt.datetime.fromisoformat(text)
