"""Deadlines of treaty-based cooperation requests: periods, due instants, status.

Instruments count time in different units. For example, Budapest Convention
Art. 29(7) keeps preserved data "for a period not less than sixty days".
Responses are due within N days, emergency requests within N hours, and some
instruments count in months. This module turns such a period into the instant
it ends, says whether a deadline is overdue, and refuses a period shorter than
a legal minimum.

Assumptions:

* Every datetime is timezone-aware. Naive datetimes are caller bugs and raise
  ``ValueError``. Results are always in UTC, which is how they are stored.
* Hours are exact elapsed time. Days and months are calendar arithmetic in the
  local calendar of a named IANA zone, chosen by the caller (usually the zone
  of the authority that counts the period). Wall-clock time is kept across
  DST changes. Months clamp to the last day of the target month.
* When the resulting wall time does not exist (a DST gap) or occurs twice (a
  DST fold), the later valid instant is chosen, so nobody gets less than the
  nominal period. See ``add_period``.
* Time zone rules come from the system tz database (``/usr/share/zoneinfo``).
  An unknown zone is an error, never a silent fallback to UTC.
* Nothing here reads the clock. Callers pass ``now`` from an injected
  ``comity.clock.Clock``.

Example::

    start = parse_ts("2026-01-15T10:00:00.000000Z")
    due = add_period(start, Period.parse("60d"), "Europe/Paris")
    format_ts(due)                       # '2026-03-16T10:00:00.000000Z'
    deadline = Deadline("preservation-expiry", due,
                        "Budapest Art. 29(7): at least 60 days")
    status(deadline, clock.now(), soon=dt.timedelta(days=7))   # 'pending'
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from comity.clock import format_ts

__all__ = [
    "Deadline",
    "DeadlineStatus",
    "Period",
    "Unit",
    "add_period",
    "end_of_local_day",
    "minimum_violation",
    "status",
]

Unit = Literal["hours", "days", "months"]
DeadlineStatus = Literal["overdue", "due-soon", "pending"]

_UNITS: tuple[Unit, ...] = get_args(Unit)
_SHORT_SUFFIX: dict[Unit, str] = {"hours": "h", "days": "d", "months": "m"}
_SHORT_UNIT: dict[str, Unit] = {"h": "hours", "d": "days", "m": "months"}
_ISO_UNIT: dict[str, Unit] = {"TH": "hours", "D": "days", "M": "months"}

# Six digits allow about 2,700 years of days, far beyond any instrument, while
# keeping untrusted input bounded. The amount has no leading zeros, so each
# period has exactly one spelling in each form. Only ASCII digits count.
_MAX_DIGITS = 6
_AMOUNT = rf"(0|[1-9][0-9]{{0,{_MAX_DIGITS - 1}}})"
_SHORT = re.compile(rf"\A{_AMOUNT}([hdm])\Z")
_ISO = re.compile(rf"\AP(?:{_AMOUNT}([DM])|T{_AMOUNT}H)\Z")
_EXAMPLES = "'60d', '48h', '3m', 'P60D', 'PT48H' or 'P3M'"

_TICK = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class Period:
    """A non-negative amount of hours, days or months.

    Raises:
        ValueError: if ``amount`` is not a non-negative int or ``unit`` is unknown.
    """

    amount: int
    unit: Unit

    def __post_init__(self) -> None:
        # bool is a subclass of int, but True days is a caller bug, not one day.
        if type(self.amount) is not int:
            raise ValueError(f"period amount must be an int, got {type(self.amount).__name__}")
        if self.amount < 0:
            raise ValueError(f"negative periods are not allowed: {self.amount} {self.unit}")
        if self.unit not in _UNITS:
            raise ValueError(f"period unit must be one of {', '.join(_UNITS)}: {self.unit!r}")

    def __str__(self) -> str:
        return f"{self.amount}{_SHORT_SUFFIX[self.unit]}"

    @classmethod
    def parse(cls, text: object) -> Period:
        """Parse a short form (``60d``, ``48h``, ``3m``) or an ISO 8601 one.

        The ISO 8601 forms are ``P60D``, ``PT48H`` and ``P3M``. Each has
        exactly one unit. Weeks, years, minutes and combined durations are
        refused rather than converted, because an instrument states its
        period in one unit.

        Raises:
            ValueError: if ``text`` is not exactly one of the accepted forms.
        """
        if not isinstance(text, str):
            raise ValueError(f"period must be a string, got {type(text).__name__}")
        if match := _SHORT.match(text):
            return cls(int(match[1]), _SHORT_UNIT[match[2]])
        if match := _ISO.match(text):
            if match[3] is not None:
                return cls(int(match[3]), "hours")
            return cls(int(match[1]), _ISO_UNIT[match[2]])
        raise ValueError(_diagnose(text))


def _diagnose(text: str) -> str:
    """Explain why ``text`` is not a period, as precisely as cheaply possible."""
    shown = text if len(text) <= 40 else text[:40] + "..."
    if text.startswith(("-", "P-", "PT-")):
        return f"negative periods are not allowed: {shown!r}"
    if re.fullmatch(r"PT[0-9]+M", text):
        return (f"{shown!r} is minutes in ISO 8601 and minutes are not supported;"
                f" months are written 'P{text[2:]}'")
    digits = re.search(r"[0-9]+", text)
    if digits and len(digits[0]) > 1 and digits[0].startswith("0"):
        return f"period amount has a leading zero: {shown!r}"
    if digits and len(digits[0]) > _MAX_DIGITS:
        return f"period amount has more than {_MAX_DIGITS} digits: {shown!r}"
    return f"not a period: {shown!r}; expected one unit, such as {_EXAMPLES}"


@dataclass(frozen=True)
class Deadline:
    """When something is due, and the legal text that makes it so.

    ``due`` is the last instant that is still on time. It is stored in UTC.
    An aware ``due`` in another zone is converted.

    Raises:
        ValueError: if ``due`` is naive, or ``kind`` or ``basis`` is empty.
    """

    kind: str
    due: dt.datetime
    basis: str
    reason: str | None = None

    def __post_init__(self) -> None:
        if not self.kind:
            raise ValueError("deadline kind must not be empty")
        if not self.basis:
            raise ValueError("deadline basis must not be empty: name the legal source")
        # A frozen dataclass cannot assign normally. The UTC value is the same instant.
        object.__setattr__(self, "due", _to_utc(self.due, "due"))


def add_period(start: dt.datetime, period: Period, tz: str | ZoneInfo = "UTC") -> dt.datetime:
    """Return the instant ``period`` after ``start``, in UTC.

    Hours are exact elapsed time. ``tz`` does not change them. Days and months
    move the wall-clock date in the calendar of ``tz`` and keep the wall-clock
    time. Months clamp to the end of the target month: Jan 31 + 1 month is
    Feb 28 (Feb 29 in a leap year), and Feb 29 + 12 months is Feb 28.

    A resulting wall time may not exist (spring-forward gap) or may occur twice
    (autumn fold). Then the later valid instant is chosen. In a gap, this reads
    the wall time with the offset in force before the change, like RFC 5545
    and java.time: Paris 02:30 on the spring-forward day becomes 03:30 CEST.
    In a fold, it is the second occurrence. The reason: these periods are
    minimums or time granted to the other party ("not less than sixty days").
    The earlier choice would cut the period short by the DST shift, while the
    later one never gives less than the nominal period.

    Args:
        start: aware start instant.
        period: how long.
        tz: IANA zone name or ``ZoneInfo`` whose calendar counts days and months.

    Raises:
        ValueError: if ``start`` is naive, ``tz`` is unknown, or the result is
            outside the supported date range (years 1-9999).
        TypeError: if ``tz`` is neither a string nor a ``ZoneInfo``.

    Returns:
        The end instant, with ``tzinfo`` UTC.
    """
    start_utc = _to_utc(start, "start")
    zone = _zone(tz)
    try:
        if period.unit == "hours":
            return start_utc + dt.timedelta(hours=period.amount)
        wall = start_utc.astimezone(zone).replace(tzinfo=None, fold=0)
        return _resolve_later(_shift_wall(wall, period), zone)
    except (OverflowError, ValueError) as e:
        raise ValueError(f"{format_ts(start_utc)} + {period} is out of range: {e}") from e


def end_of_local_day(at: dt.datetime, tz: str | ZoneInfo) -> dt.datetime:
    """Return the last instant of the local day containing ``at``, in UTC.

    This is what "due by the end of day N" means. The result is one microsecond
    before the next local day begins. That is 23:59:59.999999 local time, except
    where a DST change happens at midnight:

    * If the next midnight falls in a gap, the next day begins at the change
      (America/Havana and America/Toronto 1919).
    * If midnight occurs twice, the day ends before the midnight that follows
      it. If the clock went back across midnight (America/Goose_Bay 2010),
      that is the later midnight. The day in force keeps every instant that
      carries its date, so this time is never cut short either.

    Args:
        at: aware instant.
        tz: IANA zone name or ``ZoneInfo`` that defines the local day.

    Raises:
        ValueError: if ``at`` is naive, ``tz`` is unknown, or the day is at the
            edge of the supported date range.
        TypeError: if ``tz`` is neither a string nor a ``ZoneInfo``.

    Returns:
        The last instant of the day, with ``tzinfo`` UTC.
    """
    at_utc = _to_utc(at, "at")
    zone = _zone(tz)
    try:
        day = at_utc.astimezone(zone).date()
        return _start_of_local_day(day + dt.timedelta(days=1), zone) - _TICK
    except (OverflowError, ValueError) as e:
        raise ValueError(f"end of local day of {format_ts(at_utc)} is out of range") from e


def status(deadline: Deadline, now: dt.datetime, *, soon: dt.timedelta) -> DeadlineStatus:
    """Classify ``deadline`` at ``now``.

    ``due`` itself is still on time, so a deadline is overdue only once ``now``
    is after it. It is due soon when at most ``soon`` remains.

    Raises:
        ValueError: if ``now`` is naive or ``soon`` is negative.
    """
    now_utc = _to_utc(now, "now")
    if soon < dt.timedelta(0):
        raise ValueError(f"soon must not be negative: {soon}")
    if now_utc > deadline.due:
        return "overdue"
    if deadline.due - now_utc <= soon:
        return "due-soon"
    return "pending"


def minimum_violation(
    start: dt.datetime, end: dt.datetime, minimum: Period, tz: str | ZoneInfo
) -> str | None:
    """Explain why ``end`` is too early, or return None if it respects ``minimum``.

    This is used to refuse, for example, a preservation shorter than the sixty
    days of Budapest Art. 29(7). ``end`` may equal the earliest allowed instant.
    The minimum is counted with ``add_period``, in the calendar of ``tz``.

    Raises:
        ValueError: if a datetime is naive, ``tz`` is unknown, or the minimum
            reaches outside the supported date range.
        TypeError: if ``tz`` is neither a string nor a ``ZoneInfo``.

    Returns:
        A message for the requester, or None.
    """
    end_utc = _to_utc(end, "end")
    earliest = add_period(start, minimum, tz)
    if end_utc >= earliest:
        return None
    return (f"ends at {format_ts(end_utc)}, before {format_ts(earliest)}: the minimum is"
            f" {minimum} from {format_ts(_to_utc(start, 'start'))}, counted in {_zone(tz)}")


def _to_utc(when: dt.datetime, name: str) -> dt.datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {when.isoformat()}")
    return when.astimezone(dt.UTC)


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    if isinstance(tz, ZoneInfo):
        return tz
    if not isinstance(tz, str):
        raise TypeError(f"tz must be an IANA zone name or ZoneInfo, got {type(tz).__name__}")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as e:
        # ZoneInfoNotFoundError is a KeyError. For a caller it is a bad value like any other.
        raise ValueError(f"unknown time zone {tz!r}") from e


def _shift_wall(wall: dt.datetime, period: Period) -> dt.datetime:
    """Move a naive wall-clock time by whole days or months."""
    if period.unit == "days":
        return wall + dt.timedelta(days=period.amount)
    year, month0 = divmod(wall.year * 12 + wall.month - 1 + period.amount, 12)
    last_day = calendar.monthrange(year, month0 + 1)[1]
    return wall.replace(year=year, month=month0 + 1, day=min(wall.day, last_day))


def _resolve_later(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Return the later UTC reading of a naive wall time in ``zone``.

    Under PEP 495, ``fold=0`` and ``fold=1`` are the same instant for ordinary
    times, the two occurrences in a fold, and the readings with the offsets
    before and after a gap. The maximum is the rule that ``add_period`` documents.
    """
    return max(wall.replace(tzinfo=zone, fold=fold).astimezone(dt.UTC) for fold in (0, 1))


def _start_of_local_day(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """Return the instant, in UTC, from which ``day`` follows the day before."""
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    readings = sorted({midnight.replace(fold=fold).astimezone(dt.UTC) for fold in (0, 1)})
    naive_midnight = midnight.replace(tzinfo=None)
    existing = [r for r in readings if r.astimezone(zone).replace(tzinfo=None) == naive_midnight]
    if existing:
        # If midnight occurs twice, the day follows the later one only when the
        # clock went back across midnight. Otherwise the fold lies inside ``day``,
        # and the first midnight ends the day before.
        later = existing[-1]
        return later if (later - _TICK).astimezone(zone).date() < day else existing[0]
    # Midnight falls in a gap. The day begins at the change, which lies between
    # the two readings. The offset table is not public, so bisect to the microsecond.
    before, after = readings[0], readings[-1]
    while after - before > _TICK:
        middle = before + (after - before) // 2
        if middle.astimezone(zone).date() >= day:
            after = middle
        else:
            before = middle
    return after
