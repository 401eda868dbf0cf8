"""Deadlines: calendar arithmetic across month ends, leap years, DST and far-off zones.

Every expected instant is written out by hand (and checked against ``zdump -v``
for the zone transitions), never recomputed with the code under test. Zones come
from the system tz database. A missing zone makes these tests fail; they never skip.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comity.clock import FixedClock
from comity.requests.deadlines import (
    Deadline,
    Period,
    Unit,
    add_period,
    end_of_local_day,
    minimum_violation,
    status,
)

UTC = dt.UTC
TICK = dt.timedelta(microseconds=1)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)


P60D = Period(60, "days")
P1D = Period(1, "days")
P1M = Period(1, "months")


# --- the tz database is there ----------------------------------------------------------

ZONES_USED = [
    "UTC", "Europe/Paris", "America/New_York", "America/Havana", "America/Toronto",
    "America/Goose_Bay", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Pacific/Apia",
    "Australia/Lord_Howe",
]


@pytest.mark.parametrize("key", ZONES_USED)
def test_zone_data_is_installed(key: str) -> None:
    # ZoneInfo raises if the zone is missing; a missing zone must fail the suite.
    assert ZoneInfo(key).key == key


def test_zone_data_has_the_2026_paris_rules() -> None:
    # If the tz data were empty or stale, Paris would not be on summer time in July.
    paris = ZoneInfo("Europe/Paris")
    assert utc(2026, 7, 1).astimezone(paris).utcoffset() == dt.timedelta(hours=2)
    assert utc(2026, 1, 1).astimezone(paris).utcoffset() == dt.timedelta(hours=1)


# --- Period ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "amount", "unit"), [
    ("60d", 60, "days"),
    ("48h", 48, "hours"),
    ("3m", 3, "months"),
    ("0d", 0, "days"),
    ("999999d", 999999, "days"),
    ("P60D", 60, "days"),
    ("PT48H", 48, "hours"),
    ("P3M", 3, "months"),
    ("P0D", 0, "days"),
])
def test_parse_accepts(text: str, amount: int, unit: Unit) -> None:
    assert Period.parse(text) == Period(amount, unit)


@pytest.mark.parametrize(("period", "text"), [
    (Period(60, "days"), "60d"),
    (Period(48, "hours"), "48h"),
    (Period(3, "months"), "3m"),
    (Period(0, "hours"), "0h"),
])
def test_str_is_the_short_form(period: Period, text: str) -> None:
    assert str(period) == text


@pytest.mark.parametrize(("text", "message"), [
    ("-1m", "negative periods are not allowed"),
    ("P-1M", "negative periods are not allowed"),
    ("PT-2H", "negative periods are not allowed"),
    ("PT3M", "minutes in ISO 8601"),
    ("060d", "leading zero"),
    ("P007D", "leading zero"),
    ("1000000d", "more than 6 digits"),
    ("9" * 5000 + "d", "more than 6 digits"),
    ("", "not a period"),
    ("60", "not a period"),
    ("d", "not a period"),
    ("60D", "not a period"),
    ("60w", "not a period"),
    ("1y", "not a period"),
    ("60 d", "not a period"),
    (" 60d", "not a period"),
    ("60d\n", "not a period"),
    ("1.5d", "not a period"),
    ("\u0666\u0660d", "not a period"),  # Arabic-Indic digits: only ASCII counts
    ("p60d", "not a period"),
    ("PT48h", "not a period"),
    ("P60", "not a period"),
    ("P", "not a period"),
    ("PT", "not a period"),
    ("P2W", "not a period"),
    ("P1Y", "not a period"),
    ("P1M2D", "not a period"),
    ("P60DT1H", "not a period"),
    ("PT48H0M", "not a period"),
    ("P60D ", "not a period"),
])
def test_parse_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Period.parse(text)


def test_parse_error_message_is_bounded_and_helpful() -> None:
    with pytest.raises(ValueError, match="expected one unit") as info:
        Period.parse("x" * 10_000)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("value", [60, None, b"60d", Period(1, "days")])
def test_parse_rejects_non_strings(value: object) -> None:
    with pytest.raises(ValueError, match="period must be a string"):
        Period.parse(value)


@pytest.mark.parametrize(("amount", "unit", "message"), [
    (-1, "months", "negative periods are not allowed"),
    (True, "days", "must be an int"),
    (1.0, "days", "must be an int"),
    ("1", "days", "must be an int"),
    (1, "weeks", "unit must be one of hours, days, months"),
    (1, "Days", "unit must be one of"),
])
def test_period_rejects_bad_fields(amount: object, unit: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Period(amount, unit)  # type: ignore[arg-type]


def test_period_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        P60D.amount = 30  # type: ignore[misc]


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=999_999), st.sampled_from(["hours", "days", "months"]))
def test_short_form_round_trips(amount: int, unit: Unit) -> None:
    period = Period(amount, unit)
    assert Period.parse(str(period)) == period


# --- months: end-of-month clamping, no negative periods ------------------------------------

@pytest.mark.parametrize(("start", "months", "expected"), [
    (utc(2026, 1, 31, 18, 45, 30, 123456), 1, utc(2026, 2, 28, 18, 45, 30, 123456)),
    (utc(2028, 1, 31), 1, utc(2028, 2, 29)),
    (utc(2026, 3, 31), 1, utc(2026, 4, 30)),
    (utc(2026, 5, 31), 1, utc(2026, 6, 30)),
    # The clamp does not accumulate: two months from Jan 31 is Mar 31, not Mar 28.
    (utc(2026, 1, 31), 2, utc(2026, 3, 31)),
    (utc(2026, 8, 31), 6, utc(2027, 2, 28)),
    (utc(2027, 8, 31), 6, utc(2028, 2, 29)),
    (utc(2026, 11, 30), 3, utc(2027, 2, 28)),
    (utc(2026, 12, 15), 1, utc(2027, 1, 15)),
    (utc(2026, 1, 31), 25, utc(2028, 2, 29)),
    (utc(2026, 1, 15, 7), 0, utc(2026, 1, 15, 7)),
])
def test_months_clamp_to_the_end_of_the_month(start: dt.datetime, months: int,
                                              expected: dt.datetime) -> None:
    assert add_period(start, Period(months, "months")) == expected


def test_no_negative_periods_so_no_march_31_minus_one_month() -> None:
    with pytest.raises(ValueError, match="negative"):
        Period(-1, "months")
    with pytest.raises(ValueError, match="negative"):
        Period.parse("-1m")


# --- leap years ------------------------------------------------------------------------

@pytest.mark.parametrize(("start", "period", "expected"), [
    (utc(2028, 2, 29, 9), Period(12, "months"), utc(2029, 2, 28, 9)),
    (utc(2028, 2, 29, 9), Period(48, "months"), utc(2032, 2, 29, 9)),
    (utc(2027, 12, 31), Period(2, "months"), utc(2028, 2, 29)),
    (utc(2026, 12, 31), Period(2, "months"), utc(2027, 2, 28)),
    # Sixty days across February: one day later in a non-leap year.
    (utc(2028, 1, 15, 10), P60D, utc(2028, 3, 15, 10)),
    (utc(2027, 1, 15, 10), P60D, utc(2027, 3, 16, 10)),
    (utc(2028, 2, 1), P60D, utc(2028, 4, 1)),
    (utc(2027, 2, 1), P60D, utc(2027, 4, 2)),
    (utc(2028, 2, 28), P1D, utc(2028, 2, 29)),
    (utc(2028, 2, 29), P1D, utc(2028, 3, 1)),
    (utc(2000, 2, 28), P1D, utc(2000, 2, 29)),  # divisible by 400: leap
    (utc(2100, 2, 28), P1D, utc(2100, 3, 1)),  # divisible by 100 only: not leap
])
def test_leap_years(start: dt.datetime, period: Period, expected: dt.datetime) -> None:
    assert add_period(start, period) == expected


# --- DST: days keep the wall clock, hours are elapsed time -----------------------------

@pytest.mark.parametrize(("tz", "start", "period", "expected"), [
    # Paris springs forward on 2026-03-29 at 01:00 UTC (02:00 CET -> 03:00 CEST).
    ("Europe/Paris", utc(2026, 3, 28, 11), P1D, utc(2026, 3, 29, 10)),  # 12:00 -> 12:00
    ("Europe/Paris", utc(2026, 3, 1, 9), P60D, utc(2026, 4, 30, 8)),  # 10:00 -> 10:00
    ("Europe/Paris", utc(2026, 1, 15, 8), Period(6, "months"), utc(2026, 7, 15, 7)),
    # Paris falls back on 2026-10-25 at 01:00 UTC (03:00 CEST -> 02:00 CET).
    ("Europe/Paris", utc(2026, 10, 24, 10), P1D, utc(2026, 10, 25, 11)),  # 12:00 -> 12:00
    # New York springs forward on 2026-03-08 at 07:00 UTC, falls back on 2026-11-01 at 06:00.
    ("America/New_York", utc(2026, 3, 7, 14), P1D, utc(2026, 3, 8, 13)),  # 09:00 -> 09:00
    ("America/New_York", utc(2026, 1, 15, 14), P60D, utc(2026, 3, 16, 13)),
    ("America/New_York", utc(2026, 10, 31, 16), P1D, utc(2026, 11, 1, 17)),  # 12:00 -> 12:00
])
def test_days_and_months_keep_the_local_wall_clock(tz: str, start: dt.datetime,
                                                   period: Period,
                                                   expected: dt.datetime) -> None:
    assert add_period(start, period, tz) == expected


@pytest.mark.parametrize(("tz", "start", "expected"), [
    # 02:30 on the spring-forward day does not exist. The offset from before the
    # gap gives 03:30 summer time, the later reading.
    ("Europe/Paris", utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30)),
    ("America/New_York", utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 30)),
])
def test_nonexistent_wall_time_takes_the_later_instant(tz: str, start: dt.datetime,
                                                       expected: dt.datetime) -> None:
    result = add_period(start, P1D, tz)
    assert result == expected
    assert result.astimezone(ZoneInfo(tz)).hour == 3


@pytest.mark.parametrize(("tz", "start", "expected"), [
    # Paris 02:30 CEST on Oct 24; 02:30 on Oct 25 happens at 00:30Z and 01:30Z.
    ("Europe/Paris", utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 1, 30)),
    # New York 01:30 EDT on Oct 31; 01:30 on Nov 1 happens at 05:30Z and 06:30Z.
    ("America/New_York", utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 6, 30)),
])
def test_ambiguous_wall_time_takes_the_later_instant(tz: str, start: dt.datetime,
                                                     expected: dt.datetime) -> None:
    assert add_period(start, P1D, tz) == expected


@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris", "America/New_York",
                                "Pacific/Kiritimati", "Pacific/Pago_Pago"])
@pytest.mark.parametrize(("start", "period", "expected"), [
    (utc(2026, 3, 29, 0, 30), Period(48, "hours"), utc(2026, 3, 31, 0, 30)),
    (utc(2026, 10, 25, 0, 0), Period(24, "hours"), utc(2026, 10, 26, 0, 0)),
    (utc(2026, 3, 8, 6, 0), Period(1, "hours"), utc(2026, 3, 8, 7, 0)),
    (utc(2026, 11, 1, 5, 59), Period(2, "hours"), utc(2026, 11, 1, 7, 59)),
])
def test_hours_are_elapsed_time_whatever_the_zone(tz: str, start: dt.datetime,
                                                  period: Period,
                                                  expected: dt.datetime) -> None:
    assert add_period(start, period, tz) == expected


def test_result_is_utc_whatever_the_input_zone() -> None:
    start = dt.datetime(2026, 3, 28, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))
    result = add_period(start, P1D, "Europe/Paris")
    assert result == utc(2026, 3, 29, 10)
    assert result.tzinfo is UTC
    assert add_period(start, Period(0, "hours")).tzinfo is UTC


# --- zones far from UTC: the local date is not the UTC date ------------------------------

@pytest.mark.parametrize(("tz", "start", "expected"), [
    # 2026-01-30 12:00Z is Jan 31 02:00 on Kiritimati (+14): one month is Feb 28 there.
    ("Pacific/Kiritimati", utc(2026, 1, 30, 12), utc(2026, 2, 27, 12)),
    ("UTC", utc(2026, 1, 30, 12), utc(2026, 2, 28, 12)),
    # 2026-03-01 05:00Z is Feb 28 18:00 in Pago Pago (-11): one month is Mar 28 there.
    ("Pacific/Pago_Pago", utc(2026, 3, 1, 5), utc(2026, 3, 29, 5)),
    ("UTC", utc(2026, 3, 1, 5), utc(2026, 4, 1, 5)),
])
def test_months_count_in_the_local_calendar(tz: str, start: dt.datetime,
                                            expected: dt.datetime) -> None:
    assert add_period(start, P1M, tz) == expected


def test_skipped_local_day_is_resolved_forward() -> None:
    # Kiritimati jumped from -10 to +14 on 1994-12-31 10:00Z: local Dec 31 1994
    # never existed. Dec 30 12:00 + 1 day lands on Jan 1 1995 12:00, as does + 2 days.
    start = utc(1994, 12, 30, 22)
    assert add_period(start, P1D, "Pacific/Kiritimati") == utc(1994, 12, 31, 22)
    assert add_period(start, Period(2, "days"), "Pacific/Kiritimati") == utc(1994, 12, 31, 22)


@pytest.mark.parametrize(("tz", "at", "expected"), [
    ("UTC", utc(2026, 3, 1, 5), utc(2026, 3, 1, 23, 59, 59, 999999)),
    # Kiritimati (+14): 2026-03-01 12:00Z is Mar 2 02:00 local, which ends at 09:59:59Z.
    ("Pacific/Kiritimati", utc(2026, 3, 1, 12), utc(2026, 3, 2, 9, 59, 59, 999999)),
    # Pago Pago (-11): 2026-03-01 05:00Z is Feb 28 18:00 local, which ends at 10:59:59Z.
    ("Pacific/Pago_Pago", utc(2026, 3, 1, 5), utc(2026, 3, 1, 10, 59, 59, 999999)),
    # Paris: 2026-03-28 23:30Z is already Mar 29 00:30 local. That day ends in summer time.
    ("Europe/Paris", utc(2026, 3, 28, 23, 30), utc(2026, 3, 29, 21, 59, 59, 999999)),
    ("Europe/Paris", utc(2026, 10, 25, 12), utc(2026, 10, 25, 22, 59, 59, 999999)),
    ("America/New_York", utc(2026, 3, 8, 3), utc(2026, 3, 8, 4, 59, 59, 999999)),
    # Havana springs forward at midnight: Mar 8 starts at 01:00 CDT (05:00Z).
    ("America/Havana", utc(2026, 3, 7, 17), utc(2026, 3, 8, 4, 59, 59, 999999)),
    # Havana falls back at 01:00 CDT to 00:00 CST: midnight of Nov 1 happens twice,
    # and the first one (04:00Z) ends Oct 31.
    ("America/Havana", utc(2026, 10, 31, 16), utc(2026, 11, 1, 3, 59, 59, 999999)),
    ("America/Havana", utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 4, 59, 59, 999999)),
    # Toronto 1919: 23:30 EST -> 00:30 EDT. Midnight never happened, and Mar 31
    # began at the change, 04:30Z.
    ("America/Toronto", utc(1919, 3, 30, 17), utc(1919, 3, 31, 4, 29, 59, 999999)),
    # Goose Bay 2010: 00:01 ADT Nov 7 -> 23:01 AST Nov 6. Nov 6 came back for an
    # hour and ends before the second midnight (00:00 AST = 04:00Z).
    ("America/Goose_Bay", utc(2010, 11, 6, 16), utc(2010, 11, 7, 3, 59, 59, 999999)),
    ("America/Goose_Bay", utc(2010, 11, 7, 3, 30), utc(2010, 11, 7, 3, 59, 59, 999999)),
    ("America/Goose_Bay", utc(2010, 11, 7, 3, 0, 30), utc(2010, 11, 8, 3, 59, 59, 999999)),
    # Kiritimati skipped Dec 31 1994: Dec 30 ran until the jump at 10:00Z.
    ("Pacific/Kiritimati", utc(1994, 12, 30, 22), utc(1994, 12, 31, 9, 59, 59, 999999)),
    # Apia skipped Dec 30 2011: Dec 29 ran until the jump at 10:00Z.
    ("Pacific/Apia", utc(2011, 12, 29, 22), utc(2011, 12, 30, 9, 59, 59, 999999)),
])
def test_end_of_local_day(tz: str, at: dt.datetime, expected: dt.datetime) -> None:
    result = end_of_local_day(at, tz)
    assert result == expected
    assert result.tzinfo is UTC


def test_end_of_local_day_accepts_a_zoneinfo() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert end_of_local_day(utc(2026, 7, 1, 12), paris) == utc(2026, 7, 1, 21, 59, 59, 999999)


# --- caller bugs ---------------------------------------------------------------------------

NAIVE = dt.datetime(2026, 1, 1, 12, 0)


def test_naive_datetimes_are_rejected() -> None:
    deadline = Deadline("response", utc(2026, 2, 1), "test")
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        add_period(NAIVE, P1D)
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        add_period(NAIVE, Period(1, "hours"), "Europe/Paris")
    with pytest.raises(ValueError, match="at must be timezone-aware"):
        end_of_local_day(NAIVE, "UTC")
    with pytest.raises(ValueError, match="due must be timezone-aware"):
        Deadline("response", NAIVE, "test")
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        status(deadline, NAIVE, soon=dt.timedelta(days=1))
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        minimum_violation(NAIVE, utc(2026, 6, 1), P60D, "UTC")
    with pytest.raises(ValueError, match="end must be timezone-aware"):
        minimum_violation(utc(2026, 1, 1), NAIVE, P60D, "UTC")


class _NoOffset(dt.tzinfo):
    """A tzinfo that declines to give an offset: the datetime is naive in effect."""

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta | None:
        return None

    def dst(self, when: dt.datetime | None) -> dt.timedelta | None:
        return None

    def tzname(self, when: dt.datetime | None) -> str | None:
        return None


def test_tzinfo_without_an_offset_counts_as_naive() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_period(dt.datetime(2026, 1, 1, tzinfo=_NoOffset()), P1D)


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "utc", "Europe", "", "../etc/passwd"])
def test_unknown_zones_are_rejected_even_for_hours(tz: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        add_period(utc(2026, 1, 1), Period(1, "hours"), tz)
    with pytest.raises(ValueError, match="unknown time zone"):
        end_of_local_day(utc(2026, 1, 1), tz)


def test_zone_of_the_wrong_type_is_rejected() -> None:
    with pytest.raises(TypeError, match="tz must be"):
        add_period(utc(2026, 1, 1), P1D, dt.timezone(dt.timedelta(hours=1)))  # type: ignore[arg-type]


@pytest.mark.parametrize(("start", "period"), [
    (utc(9999, 12, 31), P1D),
    (utc(9999, 12, 31, 23), Period(1, "hours")),
    (utc(2026, 1, 1), Period(999_999, "months")),
    (utc(8000, 1, 1), Period(999_999, "days")),
    (utc(9999, 12, 15), P1M),
])
def test_results_beyond_year_9999_are_value_errors(start: dt.datetime, period: Period) -> None:
    with pytest.raises(ValueError, match="out of range"):
        add_period(start, period, "Europe/Paris")


def test_end_of_the_last_representable_day_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="out of range"):
        end_of_local_day(utc(9999, 12, 31, 12), "UTC")


# --- Deadline and status -------------------------------------------------------------------

BUDAPEST = "Budapest Art. 29(7): at least 60 days"


def test_deadline_stores_due_in_utc() -> None:
    due = dt.datetime(2026, 3, 16, 11, 0, tzinfo=ZoneInfo("Europe/Paris"))
    deadline = Deadline("preservation-expiry", due, BUDAPEST)
    assert deadline.due == utc(2026, 3, 16, 10)
    assert deadline.due.tzinfo is UTC
    assert deadline.reason is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        deadline.due = utc(2027, 1, 1)  # type: ignore[misc]


@pytest.mark.parametrize(("kind", "basis", "message"), [
    ("", BUDAPEST, "kind must not be empty"),
    ("response", "", "basis must not be empty"),
])
def test_deadline_needs_a_kind_and_a_basis(kind: str, basis: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Deadline(kind, utc(2026, 1, 1), basis)


def test_status_moves_from_pending_to_overdue_with_the_clock() -> None:
    deadline = Deadline("response", utc(2026, 3, 16, 10), "MLAT Art. 7: 30 days",
                        reason="request received 2026-02-14")
    soon = dt.timedelta(days=7)
    clock = FixedClock(utc(2026, 3, 1))
    assert status(deadline, clock.now(), soon=soon) == "pending"
    clock.at = utc(2026, 3, 9, 9, 59, 59, 999999)  # seven days and a microsecond left
    assert status(deadline, clock.now(), soon=soon) == "pending"
    clock.advance(0.000001)  # exactly seven days left
    assert status(deadline, clock.now(), soon=soon) == "due-soon"
    clock.at = utc(2026, 3, 16, 10)  # the due instant itself is still on time
    assert status(deadline, clock.now(), soon=soon) == "due-soon"
    assert status(deadline, clock.now(), soon=dt.timedelta(0)) == "due-soon"
    clock.advance(0.000001)
    assert status(deadline, clock.now(), soon=soon) == "overdue"
    assert status(deadline, clock.now(), soon=dt.timedelta(days=365)) == "overdue"


def test_status_compares_instants_not_wall_times() -> None:
    deadline = Deadline("emergency", utc(2026, 3, 16, 10), "Budapest Art. 31: 24 hours")
    # 11:30 in Paris is 10:30Z: overdue, although 11:30 > 10:00 says nothing by itself.
    now = dt.datetime(2026, 3, 16, 11, 30, tzinfo=ZoneInfo("Europe/Paris"))
    assert status(deadline, now, soon=dt.timedelta(hours=1)) == "overdue"
    # 05:30 in New York is 09:30Z: half an hour left.
    now = dt.datetime(2026, 3, 16, 5, 30, tzinfo=ZoneInfo("America/New_York"))
    assert status(deadline, now, soon=dt.timedelta(hours=1)) == "due-soon"


def test_negative_soon_is_rejected() -> None:
    deadline = Deadline("response", utc(2026, 3, 16), "test")
    with pytest.raises(ValueError, match="soon must not be negative"):
        status(deadline, utc(2026, 3, 1), soon=dt.timedelta(seconds=-1))


# --- minimum_violation -----------------------------------------------------------------------

def test_preservation_of_exactly_sixty_days_is_accepted() -> None:
    start = utc(2026, 1, 15, 10)
    assert minimum_violation(start, utc(2026, 3, 16, 10), P60D, "Europe/Paris") is None
    assert minimum_violation(start, utc(2026, 6, 1), P60D, "Europe/Paris") is None


def test_preservation_one_microsecond_short_is_refused() -> None:
    message = minimum_violation(utc(2026, 1, 15, 10), utc(2026, 3, 16, 9, 59, 59, 999999),
                                P60D, "Europe/Paris")
    assert message == (
        "ends at 2026-03-16T09:59:59.999999Z, before 2026-03-16T10:00:00.000000Z:"
        " the minimum is 60d from 2026-01-15T10:00:00.000000Z, counted in Europe/Paris"
    )


def test_preservation_of_fifty_nine_days_is_refused() -> None:
    message = minimum_violation(utc(2026, 1, 15, 10), utc(2026, 3, 15, 10), P60D, "UTC")
    assert message is not None
    assert "60d" in message


def test_minimum_counts_in_the_given_zone() -> None:
    # 60 days from Paris 10:00 CET on Mar 1 is 10:00 CEST on Apr 30 (08:00Z). In the
    # UTC calendar it would be 09:00Z, so 08:30Z is long enough only in Paris.
    start, end = utc(2026, 3, 1, 9), utc(2026, 4, 30, 8, 30)
    assert minimum_violation(start, end, P60D, "Europe/Paris") is None
    assert minimum_violation(start, end, P60D, "UTC") is not None


# --- properties ------------------------------------------------------------------------------

PROPERTY_ZONES = ["UTC", "Europe/Paris", "America/New_York", "America/Havana",
                  "Pacific/Kiritimati", "Pacific/Pago_Pago", "Australia/Lord_Howe"]
units = st.sampled_from(["hours", "days", "months"])
starts = st.datetimes(min_value=dt.datetime(1996, 1, 1), max_value=dt.datetime(2037, 12, 31),
                      timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(starts, units, st.integers(0, 1200), st.integers(0, 1200),
       st.sampled_from([*PROPERTY_ZONES, "Pacific/Apia", "America/Goose_Bay"]))
def test_add_period_is_monotonic_in_amount(start: dt.datetime, unit: Unit, a: int, b: int,
                                           tz: str) -> None:
    low, high = min(a, b), max(a, b)
    assert add_period(start, Period(low, unit), tz) <= add_period(start, Period(high, unit), tz)


@settings(max_examples=300, deadline=None)
@given(starts, st.integers(0, 100_000))
def test_days_in_utc_are_exactly_24_hours(start: dt.datetime, n: int) -> None:
    assert add_period(start, Period(n, "days")) == start + dt.timedelta(days=n)
    assert add_period(start, Period(n, "days"), "UTC") == start + dt.timedelta(days=n)


@settings(max_examples=300, deadline=None)
@given(starts, st.integers(0, 100_000), st.sampled_from(PROPERTY_ZONES))
def test_hours_are_exact_in_every_zone(start: dt.datetime, n: int, tz: str) -> None:
    assert add_period(start, Period(n, "hours"), tz) == start + dt.timedelta(hours=n)


@settings(max_examples=300, deadline=None)
@given(starts, st.integers(0, 1000), st.sampled_from(PROPERTY_ZONES))
def test_days_move_the_local_date_by_exactly_n(start: dt.datetime, n: int, tz: str) -> None:
    # None of these zones skips a date after 1995, so the local date always moves by n.
    zone = ZoneInfo(tz)
    result = add_period(start, Period(n, "days"), tz)
    expected_date = start.astimezone(zone).date() + dt.timedelta(days=n)
    assert result.astimezone(zone).date() == expected_date


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2037, 12, 31),
                    timezones=st.just(UTC)),
       st.sampled_from([*PROPERTY_ZONES, "Pacific/Apia", "America/Goose_Bay",
                        "America/Toronto"]))
def test_end_of_local_day_is_the_last_instant_of_that_date(at: dt.datetime, tz: str) -> None:
    zone = ZoneInfo(tz)
    end = end_of_local_day(at, tz)
    assert end >= at
    assert end.astimezone(zone).date() == at.astimezone(zone).date()
    assert (end + TICK).astimezone(zone).date() > at.astimezone(zone).date()
