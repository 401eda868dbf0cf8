"""Statistics on cross-border requests: counts, outcomes and response times per group.

:func:`request_report` groups the requests this node has sent or received by
any subset of ``direction``, ``country`` (the partner's ISO 3166 alpha-2
code), ``type``, ``offence`` and ``year`` (UTC calendar year of ``sent_at``),
and gives for each group and for all of them together:

* ``count``: requests; ``acknowledged`` and ``executed``: how many have an
  ``acknowledged_at`` / ``executed_at`` (a partial execution counts);
  ``refused``: state ``refused``; ``open``: state not final (final: executed,
  refused, impossible, withdrawn, closed, expired, lifted, superseded_by_mla);
  ``overdue``: the next deadline (``due_at``, cleared once nothing is owed)
  is before ``now``, the same rule as the ``overdue`` filter of the listing.
* the median and 90th percentile of the time to acknowledge
  (``acknowledged_at - sent_at``) and to execute (``executed_at - sent_at``),
  in hours, ``None`` when the group has no such time.

Only requests that were sent are reported: drafts and requests awaiting
approval (``sent_at`` NULL) are left out. ``since`` (inclusive) and ``until``
(exclusive) select on ``sent_at``.

Percentiles use **linear interpolation between closest ranks** (Hyndman and
Fan type 7, as PostgreSQL ``percentile_cont``, NumPy's default and
``PERCENTILE.INC``): for n sorted values x[0..n-1] and fraction p, the rank
is h = (n - 1) * p and the result x[floor h] + (h - floor h) *
(x[floor h + 1] - x[floor h]). Times 1, 2, 3, 4, 10 h give a median of 3 h
and a 90th percentile of 4 + 0.6 * 6 = 7.6 h. Durations are taken to the
millisecond in SQL and interpolated exactly (in integers), with a single
rounding to the nearest float at the end, so both backends give the same
numbers.

Cost: one ``GROUP BY`` query, one scan of the table. The database counts,
and hands over per group only the two lists of durations (integer
milliseconds, joined by ``group_concat`` / ``string_agg``) that the
percentiles need; no request row is loaded.

Trust assumptions: the database is this node's own and trusted. Times of
received requests come from the peers' signed messages, so a peer's clock
skew shows up as is (a duration may even be negative); nothing is clamped.
CSV output neutralises cells that a spreadsheet would read as a formula.

Example::

    with read_scope(node.sessions) as session:
        report = request_report(session, now=node.clock.now(), group_by=("country",))
    report.to_csv()
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Integer, Text, case, cast, extract, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import literal_column

from comity.clock import format_ts
from comity.csvcells import csv_cell
from comity.reports.errors import InvalidReportError
from comity.requests.lifecycle import State
from comity.requests.models import Request

__all__ = [
    "COLUMNS",
    "FINAL_STATES",
    "GROUP_KEYS",
    "Durations",
    "ReportRow",
    "RequestReport",
    "percentile",
    "request_report",
]

GROUP_KEYS: tuple[str, ...] = ("direction", "country", "type", "offence", "year")

FINAL_STATES: tuple[str, ...] = tuple(s.value for s in (
    State.EXECUTED, State.REFUSED, State.IMPOSSIBLE, State.WITHDRAWN, State.CLOSED,
    State.EXPIRED, State.LIFTED, State.SUPERSEDED_BY_MLA))

# The measures of every row, in the order of the CSV columns after the keys.
COLUMNS: tuple[str, ...] = (
    "count", "acknowledged", "executed", "refused", "open", "overdue",
    "acknowledge_hours_median", "acknowledge_hours_p90",
    "execute_hours_median", "execute_hours_p90")

_MS_PER_HOUR = 3_600_000
# A spreadsheet evaluates a cell starting with one of these as a formula.

Key = tuple[str | int, ...]


def percentile(values: Sequence[int], pct: int, *, unit: int = 1) -> float | None:
    """The ``pct``-th percentile of ascending integers by linear interpolation (type 7).

    The interpolation is done in integers and divided by ``unit`` once, so
    the result is the exact value rounded once to the nearest float:
    ``percentile([1, 2, 3, 4, 10], 90)`` is exactly ``7.6``.

    Args:
        values: sorted ascending (durations in milliseconds, say).
        pct: 0 to 100.
        unit: the result is in units of this many values' units (3 600 000
            turns milliseconds into hours).

    Raises:
        ValueError: ``pct`` outside 0..100 or ``unit`` not positive (caller bugs).

    Returns:
        The percentile divided by ``unit``, or ``None`` for no values.
    """
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile {pct} is not within 0..100")
    if unit < 1:
        raise ValueError("unit must be positive")
    if not values:
        return None
    # rank = (n - 1) * pct / 100 = lo + rem / 100
    lo, rem = divmod((len(values) - 1) * pct, 100)
    if rem == 0:
        return values[lo] / unit
    # Python divides integers exactly and rounds once.
    return (100 * values[lo] + rem * (values[lo + 1] - values[lo])) / (100 * unit)


@dataclass(frozen=True)
class Durations:
    """Median and 90th percentile of one kind of time, in hours (``None``: no data)."""

    median: float | None
    p90: float | None

    @classmethod
    def of_ms(cls, values: list[int]) -> Durations:
        """From durations in milliseconds, in any order (``values`` is sorted in place)."""
        values.sort()
        return cls(percentile(values, 50, unit=_MS_PER_HOUR),
                   percentile(values, 90, unit=_MS_PER_HOUR))


@dataclass(frozen=True)
class ReportRow:
    """One group (or the totals, whose ``key`` is empty)."""

    key: dict[str, str | int]
    count: int
    acknowledged: int
    executed: int
    refused: int
    open: int
    overdue: int
    acknowledge: Durations
    execute: Durations

    def to_dict(self) -> dict[str, Any]:
        """The keys then every measure of :data:`COLUMNS`, flat."""
        return {**self.key, "count": self.count, "acknowledged": self.acknowledged,
                "executed": self.executed, "refused": self.refused, "open": self.open,
                "overdue": self.overdue,
                "acknowledge_hours_median": self.acknowledge.median,
                "acknowledge_hours_p90": self.acknowledge.p90,
                "execute_hours_median": self.execute.median,
                "execute_hours_p90": self.execute.p90}


@dataclass(frozen=True)
class RequestReport:
    """The result of :func:`request_report`; rows are sorted by their keys."""

    group_by: tuple[str, ...]
    as_of: dt.datetime
    since: dt.datetime | None
    until: dt.datetime | None
    rows: tuple[ReportRow, ...]
    totals: ReportRow

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: parameters, ``rows`` and ``totals`` (fields as in the CSV)."""
        def ts(when: dt.datetime | None) -> str | None:
            return None if when is None else format_ts(when)

        return {"report": "requests", "as_of": ts(self.as_of), "since": ts(self.since),
                "until": ts(self.until), "group_by": list(self.group_by),
                "rows": [r.to_dict() for r in self.rows], "totals": self.totals.to_dict()}

    def to_csv(self) -> str:
        """RFC 4180 CSV: a header (keys, then :data:`COLUMNS`) and one line per group.

        There is no totals line, so summing a column gives the total. An empty
        cell is a missing duration. A key that starts like a spreadsheet
        formula (``=``, ``+``, ``-``, ``@``, tab, CR) is prefixed with ``'``.
        """
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([*self.group_by, *COLUMNS])
        for row in self.rows:
            values = row.to_dict()
            writer.writerow([csv_cell(values[k]) for k in (*self.group_by, *COLUMNS)])
        return out.getvalue()



def request_report(session: Session, *, now: dt.datetime,
                   group_by: Sequence[str] = GROUP_KEYS,
                   since: dt.datetime | None = None,
                   until: dt.datetime | None = None) -> RequestReport:
    """Counts and response times of the requests sent after ``since`` and before ``until``.

    Args:
        session: any session on the node's database (read-only is enough).
        now: the reference time for ``overdue`` (from the node's clock).
        group_by: grouping keys among :data:`GROUP_KEYS`, in column order;
            empty gives a single row, equal to the totals.
        since: only requests sent at or after this instant.
        until: only requests sent before this instant.

    Raises:
        InvalidReportError: unknown or repeated key, or ``since`` not before ``until``.
        ValueError: a naive datetime (a caller bug).

    Returns:
        The report, rows sorted by their keys in ``group_by`` order.
    """
    keys = _check_group_by(group_by)
    for when in (now, since, until):
        if when is not None and when.tzinfo is None:
            raise ValueError("naive datetime; reports take UTC-aware datetimes")
    if since is not None and until is not None and since >= until:
        raise InvalidReportError("since must be before until",
                                 since=format_ts(since), until=format_ts(until))
    sql = _Sql(session.get_bind().dialect.name)
    filters = _filters(since, until)
    groups = _groups(session, sql, keys, filters, now)
    rows = tuple(_row(keys, k, g) for k, g in sorted(groups.items()))
    totals = _row((), (), _Group([sum(g.counts[i] for g in groups.values()) for i in range(6)],
                                 [ms for g in groups.values() for ms in g.ack],
                                 [ms for g in groups.values() for ms in g.done]))
    return RequestReport(keys, now, since, until, rows, totals)


def _check_group_by(group_by: Sequence[str]) -> tuple[str, ...]:
    if isinstance(group_by, str):
        raise TypeError("group_by is a sequence of keys, not a string")
    for name in group_by:
        if name not in GROUP_KEYS:
            raise InvalidReportError(
                f"cannot group by {name[:40]!r}; choose among {', '.join(GROUP_KEYS)}",
                allowed=list(GROUP_KEYS))
    repeated = sorted(n for n, times in Counter(group_by).items() if times > 1)
    if repeated:
        raise InvalidReportError(f"group_by names {', '.join(repeated)} more than once",
                                 allowed=list(GROUP_KEYS))
    return tuple(group_by)


class _Sql:
    """The few expressions that differ between SQLite and PostgreSQL.

    Constants are literal SQL, not bound parameters: PostgreSQL would see two
    different expressions in the select list and the GROUP BY otherwise.
    """

    def __init__(self, dialect: str) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise RuntimeError(f"reports do not support the {dialect} database")
        self.sqlite = dialect == "sqlite"

    def key(self, name: str) -> ColumnElement[Any]:
        if name == "year":
            return self.year().label(name)
        column = {"direction": Request.direction, "country": Request.peer_country,
                  "type": Request.type, "offence": Request.offence}[name]
        return column.label(name)

    def year(self) -> ColumnElement[int]:
        if self.sqlite:  # stored as naive UTC text
            return cast(func.strftime(literal_column("'%Y'"), Request.sent_at), Integer)
        # The session time zone may be anything; the year is the UTC one.
        utc = func.timezone(literal_column("'UTC'"), Request.sent_at)
        return cast(extract("year", utc), Integer)

    def ms_since_sent(self, column: Any) -> ColumnElement[int]:
        if self.sqlite:
            days = func.julianday(column) - func.julianday(Request.sent_at)
            return cast(func.round(days * literal_column("86400000")), BigInteger)
        seconds = extract("epoch", column - Request.sent_at)
        return cast(func.round(seconds * literal_column("1000")), BigInteger)

    def collect(self, value: ColumnElement[int]) -> ColumnElement[str]:
        """The group's non-NULL ``value``s as one comma-separated string (NULL if none)."""
        if self.sqlite:
            return func.group_concat(value)
        return func.string_agg(cast(value, Text), literal_column("','"))


def _filters(since: dt.datetime | None, until: dt.datetime | None) -> list[Any]:
    filters: list[Any] = [Request.sent_at.is_not(None)]
    if since is not None:
        filters.append(Request.sent_at >= since)
    if until is not None:
        filters.append(Request.sent_at < until)
    return filters


def _flag(condition: Any) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


@dataclass
class _Group:
    counts: list[int]  # count, acknowledged, executed, refused, open, overdue
    ack: list[int]  # milliseconds from sending to acknowledgement
    done: list[int]  # milliseconds from sending to execution


def _groups(session: Session, sql: _Sql, keys: tuple[str, ...], filters: list[Any],
            now: dt.datetime) -> dict[Key, _Group]:
    """One scan: the counts of each group and its durations, gathered by the database."""
    key_cols = [sql.key(k) for k in keys]
    stmt = (select(*key_cols, func.count(), func.count(Request.acknowledged_at),
                   func.count(Request.executed_at), _flag(Request.state == State.REFUSED.value),
                   _flag(Request.state.not_in(FINAL_STATES)), _flag(Request.due_at < now),
                   sql.collect(sql.ms_since_sent(Request.acknowledged_at)),
                   sql.collect(sql.ms_since_sent(Request.executed_at)))
            .where(*filters).group_by(*key_cols))
    groups: dict[Key, _Group] = {}
    n = len(keys)
    for row in session.connection().execute(stmt):
        if row[n]:  # without GROUP BY, an empty table still gives one row of zeros
            groups[tuple(row[:n])] = _Group([int(v or 0) for v in row[n:n + 6]],
                                            _integers(row[n + 6]), _integers(row[n + 7]))
    return groups


def _integers(joined: str | None) -> list[int]:
    return [int(v) for v in joined.split(",")] if joined else []


def _row(keys: tuple[str, ...], key: Key, group: _Group) -> ReportRow:
    count, acknowledged, executed, refused, open_, overdue = group.counts
    return ReportRow(dict(zip(keys, key, strict=True)), count, acknowledged, executed,
                     refused, open_, overdue, Durations.of_ms(group.ack),
                     Durations.of_ms(group.done))
