"""How number resources are distributed across countries and regions: shares, Gini, HHI.

:func:`distribution` reads the delegations this node holds (optionally of
one authority, optionally as of a date) and gives, for each kind, the units
every country and every UN M49 region holds, their shares, units per 1,000
people where the population is known, the Gini coefficient, the
Herfindahl-Hirschman index (HHI), the top-5 shares, the Lorenz curve, and
the Gini at the end of every year.

Definitions, the same for every kind:

* *Held*: status ``allocated`` or ``assigned``. Reserved space is held by
  no one and is left out.
* *Units*: IPv4 addresses; IPv6 ``/48`` equivalents (a block of ``2**k``
  addresses is ``2**(k-80)`` of them: a ``/32`` is 65,536, a ``/56`` is
  1/256); AS numbers.
* *Countries* are the ISO 3166-1 alpha-2 codes of
  :mod:`comity.registry.regions`. ``EU``, ``AP``, ``ZZ``, an empty code and
  any other code are *non-country* buckets: reported with their units, but
  left out of every share, Gini, HHI and top share. ``share`` is a share of
  what countries hold; ``share_of_all`` includes the non-country buckets.
* *Gini* is over the ``n`` countries holding at least one unit of the kind
  (countries holding none are not counted, as in published RIR figures):
  ``G = sum_i sum_j |x_i - x_j| / (2 n^2 mean)``, computed on ascending
  ``x`` as ``(2 sum_i i x_i - (n + 1) sum x) / (n sum x)``. It is 0 when all
  hold the same and ``(n - 1) / n`` when one of ``n`` holds everything (no
  small-sample correction), so its maximum grows towards 1 with ``n``.
* *HHI* is the sum of squared shares, from ``1/n`` (equal) to 1 (one holder).
* *Gini by year*: for each calendar year (UTC) from the first registration
  date of a country's delegation to the last, the Gini of what each country
  held at the end of that year, each delegation counted from its
  ``registered_at``. This reconstructs the past from what is held *now*:
  space returned or moved since is not seen, and delegations without a
  registration date are counted only in the totals (``undated``).

Every figure is computed exactly in integers (sizes of IPv6 blocks run to
2**128) and rounded once to a float, so both database backends give the
same numbers, bit for bit.

Cost: one pass over ``registry_delegations``, streamed in batches
(``yield_per``; a server-side cursor on PostgreSQL), reading four columns
and the UTC year of registration (computed by the database); memory grows
with countries times years, not with rows. A million rows take about 3.5 s
on either backend.

Trust assumptions: the database is this node's own and trusted, but the
values in it came from imported files or council decisions, so country
codes are looked up, never assumed valid. Population figures come from the
:class:`~comity.registry.regions.Populations` given (by default
:func:`~comity.registry.regions.default_populations`) and are
only as good as their source, which the report names.

Example::

    with read_scope(node.sessions) as session:
        report = distribution(session, authority="local",
                              populations=default_populations())  # from regions
    report.kind(Kind.IPV4).gini
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Integer, cast, extract, func, literal_column, select
from sqlalchemy.orm import Session

from comity.csvcells import csv_cell
from comity.registry.models import Delegation
from comity.registry.regions import (
    ISO_CODES,
    REGION_OF,
    Populations,
    Region,
    UnknownPopulations,
    non_country_meaning,
    normalise_code,
)
from comity.registry.resources import Kind

__all__ = [
    "CSV_COLUMNS",
    "HELD_STATUSES",
    "NO_REGION",
    "UNIT_NAMES",
    "CountryRow",
    "Distribution",
    "KindStats",
    "NonCountryRow",
    "RegionRow",
    "YearPoint",
    "distribution",
    "gini",
    "hhi",
    "units",
]

HELD_STATUSES: tuple[str, ...] = ("allocated", "assigned")
UNIT_NAMES: Mapping[Kind, str] = {Kind.IPV4: "addresses", Kind.IPV6: "/48 equivalents",
                                  Kind.ASN: "AS numbers"}
# Addresses (or AS numbers) per unit: a /48 is 2**80 IPv6 addresses.
_PER_UNIT: Mapping[Kind, int] = {Kind.IPV4: 1, Kind.IPV6: 2**80, Kind.ASN: 1}
_PER_PEOPLE = 1000
_TOP = 5
_BATCH = 10_000
NO_REGION = "(none)"

CSV_COLUMNS: tuple[str, ...] = (
    "kind", "scope", "code", "region", "units", "delegations", "share", "share_of_all",
    "population", "per_1000_people")
# A spreadsheet evaluates a cell starting with one of these as a formula.

_NOTES: tuple[str, ...] = (
    "Only allocated and assigned delegations are counted.",
    "Countries are ISO 3166-1 alpha-2 codes; EU, AP, ZZ, empty and other codes are "
    "reported under non_country and left out of shares, Gini, HHI and top shares.",
    "Gini is over the countries holding at least one resource of the kind: 0 when all "
    "hold the same, (n-1)/n when one of n holds everything.",
    "gini_by_year counts each delegation held now from its registration date; space "
    "returned or moved since is not reconstructed, and undated delegations are left out.",
    "A country code says where a resource was first delegated, not where it is used.",
)


# -- measures ------------------------------------------------------------------------------

def gini(values: Iterable[int]) -> float | None:
    """The Gini coefficient of non-negative integers (population form, no correction).

    0 for equal values; ``(n - 1) / n`` for ``n`` values of which one is not
    zero. Exact in integers, rounded once.

    Raises:
        ValueError: a negative value (a caller bug).

    Returns:
        The coefficient, or ``None`` for no values or a zero sum.
    """
    xs = sorted(values)
    if xs and xs[0] < 0:
        raise ValueError("Gini of negative values")
    n, total = len(xs), sum(xs)
    if n == 0 or total == 0:
        return None
    weighted = sum(i * x for i, x in enumerate(xs, start=1))
    return (2 * weighted - (n + 1) * total) / (n * total)


def hhi(values: Iterable[int]) -> float | None:
    """The Herfindahl-Hirschman index: the sum of squared shares, ``None`` for a zero sum."""
    xs = list(values)
    total = sum(xs)
    if total == 0:
        return None
    return sum(x * x for x in xs) / (total * total)


def units(kind: Kind, size: int) -> int | float:
    """``size`` addresses (or AS numbers) in the kind's unit: an int when whole."""
    whole, rest = divmod(size, _PER_UNIT[kind])
    return whole if rest == 0 else size / _PER_UNIT[kind]


def _per_people(kind: Kind, size: int, population: int | None) -> float | None:
    if not population:
        return None
    return (size * _PER_PEOPLE) / (population * _PER_UNIT[kind])


# -- the report ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CountryRow:
    country: str
    region: Region | None
    size: int
    delegations: int
    population: int | None


@dataclass(frozen=True)
class RegionRow:
    """A macro-region (or :data:`NO_REGION`: Antarctica). ``population`` sums the
    region's countries whose population is known; per-capita figures count the
    units of those countries only."""

    region: str
    countries: int
    size: int
    delegations: int
    population: int | None
    population_unknown: tuple[str, ...]
    size_with_population: int


@dataclass(frozen=True)
class NonCountryRow:
    code: str
    meaning: str
    size: int
    delegations: int


@dataclass(frozen=True)
class YearPoint:
    """Cumulative holdings of countries at the end of ``year``."""

    year: int
    countries: int
    size: int
    gini: float | None


@dataclass(frozen=True)
class KindStats:
    """The distribution of one kind; ``countries`` are largest first."""

    kind: Kind
    countries: tuple[CountryRow, ...]
    regions: tuple[RegionRow, ...]
    non_country: tuple[NonCountryRow, ...]
    by_year: tuple[YearPoint, ...]
    undated_delegations: int
    undated_size: int
    country_size: int = field(init=False)
    size: int = field(init=False)

    def __post_init__(self) -> None:
        country = sum(r.size for r in self.countries)
        object.__setattr__(self, "country_size", country)
        object.__setattr__(self, "size", country + sum(r.size for r in self.non_country))

    @property
    def delegations(self) -> int:
        return (sum(r.delegations for r in self.countries)
                + sum(r.delegations for r in self.non_country))

    @property
    def gini(self) -> float | None:
        return gini(r.size for r in self.countries)

    @property
    def hhi(self) -> float | None:
        return hhi(r.size for r in self.countries)

    def share(self, size: int) -> float | None:
        """``size`` as a share of what countries hold."""
        return size / self.country_size if self.country_size else None

    def share_of_all(self, size: int) -> float | None:
        return size / self.size if self.size else None

    def top(self, k: int = _TOP) -> list[tuple[str, float]]:
        return [(r.country, r.size / self.country_size) for r in self.countries[:k]]

    def lorenz(self) -> list[tuple[float, float]]:
        """Points of the Lorenz curve: (share of countries, share of units), smallest first."""
        n, running = len(self.countries), 0
        points = [(0.0, 0.0)]
        for i, row in enumerate(reversed(self.countries), start=1):
            running += row.size
            points.append((i / n, running / self.country_size))
        return points

    @property
    def gini_population(self) -> str:
        n = len(self.countries)
        return (f"the {n} {'country' if n == 1 else 'countries'} holding at least one "
                f"{self.kind.value} resource (allocated or assigned); countries holding "
                "none and non-country codes are left out")

    def to_json(self) -> dict[str, Any]:
        k = self.kind
        return {
            "kind": k.value, "unit": UNIT_NAMES[k], "delegations": self.delegations,
            "units": units(k, self.size), "country_units": units(k, self.country_size),
            "non_country_units": units(k, self.size - self.country_size),
            "countries": len(self.countries), "gini": self.gini,
            "gini_population": self.gini_population, "hhi": self.hhi,
            "top": [{"country": c, "share": s} for c, s in self.top()],
            "by_country": [self._country_json(r) for r in self.countries],
            "by_region": [self._region_json(r) for r in self.regions],
            "non_country": [{"code": r.code, "meaning": r.meaning, "units": units(k, r.size),
                             "delegations": r.delegations,
                             "share_of_all": self.share_of_all(r.size)}
                            for r in self.non_country],
            "lorenz": [list(p) for p in self.lorenz()],
            "gini_by_year": [{"year": p.year, "countries": p.countries,
                              "units": units(k, p.size), "gini": p.gini}
                             for p in self.by_year],
            "undated": {"delegations": self.undated_delegations,
                        "units": units(k, self.undated_size)},
        }

    def _country_json(self, r: CountryRow) -> dict[str, Any]:
        return {"country": r.country, "region": None if r.region is None else r.region.value,
                "units": units(self.kind, r.size), "delegations": r.delegations,
                "share": self.share(r.size), "share_of_all": self.share_of_all(r.size),
                "population": r.population,
                "per_1000_people": _per_people(self.kind, r.size, r.population)}

    def _region_json(self, r: RegionRow) -> dict[str, Any]:
        return {"region": r.region, "countries": r.countries,
                "units": units(self.kind, r.size), "delegations": r.delegations,
                "share": self.share(r.size), "share_of_all": self.share_of_all(r.size),
                "population": r.population, "population_unknown": list(r.population_unknown),
                "per_1000_people": _per_people(self.kind, r.size_with_population,
                                               r.population)}


@dataclass(frozen=True)
class Distribution:
    """The result of :func:`distribution`: one :class:`KindStats` per kind asked for."""

    authority: str | None
    as_of: dt.date | None
    population_source: str | None
    kinds: tuple[KindStats, ...]

    def kind(self, kind: Kind) -> KindStats:
        """Raises: KeyError: that kind was not asked for."""
        for k in self.kinds:
            if k.kind is kind:
                return k
        raise KeyError(kind.value)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: parameters, notes, and per kind every figure."""
        return {"report": "registry-distribution", "authority": self.authority,
                "as_of": None if self.as_of is None else self.as_of.isoformat(),
                "statuses": list(HELD_STATUSES), "population_source": self.population_source,
                "per_capita": f"units per {_PER_PEOPLE:,} people",
                "notes": list(_NOTES), "kinds": {k.kind.value: k.to_json() for k in self.kinds}}

    def to_csv(self) -> str:
        """RFC 4180 CSV, one line per country, region and non-country bucket of each kind
        (:data:`CSV_COLUMNS`); the summary figures (Gini, HHI, by year) are in the JSON.

        An empty cell is unknown or not applicable. A code that starts like a
        spreadsheet formula is prefixed with ``'``.
        """
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for k in self.kinds:
            doc = k.to_json()
            for c in doc["by_country"]:
                writer.writerow(_cells(k.kind, "country", c["country"], c["region"], c))
            for r in doc["by_region"]:
                writer.writerow(_cells(k.kind, "region", r["region"], r["region"], r))
            for x in doc["non_country"]:
                writer.writerow(_cells(k.kind, "non-country", x["code"], None,
                                       {**x, "share": None}))
        return out.getvalue()


def _cells(kind: Kind, scope: str, code: str, region: str | None,
           row: dict[str, Any]) -> list[str]:
    values = [kind.value, scope, code, region, row["units"], row["delegations"], row["share"],
              row["share_of_all"], row.get("population"), row.get("per_1000_people")]
    return [csv_cell(v) for v in values]


# -- computing -----------------------------------------------------------------------------

# (kind, normalised country code, UTC year of registration or None) -> [size, delegations]
_Cells = dict[tuple[str, str, int | None], list[int]]


def distribution(session: Session, *, authority: str | None = None,
                 kinds: Sequence[Kind] = tuple(Kind), as_of: dt.date | None = None,
                 populations: Populations | None = None) -> Distribution:
    """The distribution of held resources across countries and regions.

    Args:
        session: any session on the node's database (read-only is enough;
            give one from ``read_scope`` so the pass sees one snapshot).
        authority: only this registry's delegations (``local`` or a
            council's name); all of them by default.
        kinds: the kinds to report, in this order.
        as_of: only delegations registered on or before this day (UTC);
            undated ones are then left out, since nothing says they were held.
        populations: population figures; unknown for every country if ``None``.

    Raises:
        ValueError: no kinds, or one twice (a caller bug).

    Returns:
        The report.
    """
    if not kinds or len(set(kinds)) != len(kinds):
        raise ValueError("kinds must name each kind at most once, and at least one")
    pops: Populations = populations if populations is not None else UnknownPopulations()
    before = None if as_of is None else dt.datetime.combine(
        as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    cells = _scan(session, authority=authority, kinds=kinds, before=before)
    per_kind: dict[str, dict[tuple[str, int | None], list[int]]] = {k.value: {} for k in kinds}
    for (kind, code, year), cell in cells.items():
        per_kind[kind][code, year] = cell
    return Distribution(authority, as_of, pops.source,
                        tuple(_kind_stats(k, per_kind[k.value], pops) for k in kinds))


def _scan(session: Session, *, authority: str | None, kinds: Sequence[Kind],
          before: dt.datetime | None) -> _Cells:
    """One streamed pass: sizes and counts per kind, country and year of registration."""
    d = Delegation
    q = select(d.kind, d.start_key, d.end_key, d.country, _utc_year(session)).where(
        d.status.in_(HELD_STATUSES), d.kind.in_([k.value for k in kinds]))
    if authority is not None:
        q = q.where(d.authority == authority)
    if before is not None:
        # NULL compares as unknown in SQL, so undated rows drop out here, as documented.
        q = q.where(d.registered_at < before)
    cells: _Cells = {}
    # Core rows, not ORM ones, and the year computed by the database: per-row Python
    # work is what a million rows cost.
    rows = session.connection().execute(q.execution_options(yield_per=_BATCH))
    for kind, start, end, country, year in rows:
        key = (kind, normalise_code(country), year)
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = [0, 0]
        # Keys are fixed-width hex (resources.key); sizes are exact Python integers.
        cell[0] += int(end, 16) - int(start, 16) + 1
        cell[1] += 1
    return cells


def _utc_year(session: Session) -> ColumnElement[int | None]:
    """The UTC calendar year of ``registered_at``, NULL when it is."""
    column = Delegation.registered_at
    if session.get_bind().dialect.name == "sqlite":  # stored as naive UTC text
        return cast(func.strftime(literal_column("'%Y'"), column), Integer)
    # The session time zone may be anything; the year is the UTC one.
    return cast(extract("year", func.timezone(literal_column("'UTC'"), column)), Integer)


def _kind_stats(kind: Kind, cells: dict[tuple[str, int | None], list[int]],
                pops: Populations) -> KindStats:
    totals: dict[str, list[int]] = {}
    undated = [0, 0]
    for (code, year), (size, count) in cells.items():
        total = totals.setdefault(code, [0, 0])
        total[0] += size
        total[1] += count
        if year is None:
            undated[0] += size
            undated[1] += count
    countries = sorted(
        (CountryRow(code, REGION_OF[code], size, count, pops.of(code))
         for code, (size, count) in totals.items() if code in ISO_CODES),
        key=lambda r: (-r.size, r.country))
    non_country = sorted(
        (NonCountryRow(code, non_country_meaning(code), size, count)
         for code, (size, count) in totals.items() if code not in ISO_CODES),
        key=lambda r: (-r.size, r.code))
    return KindStats(kind, tuple(countries), _regions(countries, pops), tuple(non_country),
                     _by_year(cells), undated[1], undated[0])


def _regions(countries: Sequence[CountryRow], pops: Populations) -> tuple[RegionRow, ...]:
    """Every macro-region (zeros included, for comparison), then Antarctica if it holds any."""
    names: list[Region | None] = list(Region)
    if any(r.region is None for r in countries):
        names.append(None)
    rows = []
    for region in names:
        members = [r for r in countries if r.region is region]
        codes = sorted(c for c, reg in REGION_OF.items() if reg is region)
        known = {c: p for c in codes if (p := pops.of(c)) is not None}
        rows.append(RegionRow(
            region=NO_REGION if region is None else region.value, countries=len(members),
            size=sum(r.size for r in members), delegations=sum(r.delegations for r in members),
            population=sum(known.values()) if known else None,
            population_unknown=tuple(c for c in codes if c not in known),
            size_with_population=sum(r.size for r in members if r.country in known)))
    return tuple(rows)


def _by_year(cells: Mapping[tuple[str, int | None], list[int]]) -> tuple[YearPoint, ...]:
    """The Gini of countries' cumulative holdings at the end of each year, first to last."""
    added: dict[int, dict[str, int]] = {}
    for (code, year), (size, _) in cells.items():
        if year is not None and code in ISO_CODES:
            added.setdefault(year, {})[code] = size
    if not added:
        return ()
    held: dict[str, int] = {}
    points = []
    for year in range(min(added), max(added) + 1):
        for code, size in added.get(year, {}).items():
            held[code] = held.get(code, 0) + size
        points.append(YearPoint(year, len(held), sum(held.values()), gini(held.values())))
    return tuple(points)
