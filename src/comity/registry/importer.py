"""Importing a registry's delegated-extended statistics file into this node's registry.

A regional registry publishes what it manages as a ``delegated-extended``
file: a version line, one summary line per type, then one record per block,
``registry|cc|type|start|value|date|status|opaque-id[|extensions]``, where
``value`` is a count of addresses for IPv4 (not necessarily a power of two),
a prefix length for IPv6 and a count of AS numbers for ASNs.
:func:`import_delegated` stores such a file under one authority (``local``
by default):

- pools: the union of all the records (available and reserved included),
  contiguous and overlapping ranges merged, and joined to the pools the
  authority already holds where they touch;
- delegations: the allocated, assigned and reserved records (an available
  record is free space, stored as nothing but its pool);
- entities: one per holder, ``<OPAQUE-ID>-<REGISTRY>`` in capitals, named by
  that handle (the file says nothing better), with the record's country.

A record's country is stored as it is, except ``ZZ`` and empty (no country);
its date becomes midnight UTC of that day. A record with no opaque-id (as
reserved ones are) has no holder. Header lines are checked, not stored: a
summary count that differs from the records read is a warning.

Trust assumptions: the file is untrusted. Lines are read one at a time and
at most :data:`MAX_LINE` bytes long; every field is parsed strictly. A bad
line is reported with its number and the reason and left out, and the rest
is imported. Records that contradict each other (overlapping) or what is
already stored (an existing delegation, another authority's pool) are
reported and left out too, so every integrity rule of
:class:`~comity.registry.services.Registry` holds for what goes in. The
operator running the import is trusted to name the authority.

All or nothing: the file is read and checked in memory first (about 200
bytes per record, so a file of a million lines takes some 200 MB); then
every row is written in one transaction, so a failure (a database error, a
crash, an interrupt) leaves nothing of the file stored. On SQLite that
transaction holds the database's write lock while it checks and writes
(one to two seconds per 100,000 records), so the node's other writers wait
for it: import large files when the node is quiet. On PostgreSQL it holds
the registry's lock of each kind it writes, as every registry writer does.

Example::

    with open(path, "rb") as f:
        summary = import_delegated(node.sessions, f, now=node.clock.now())
    print(summary.delegations, summary.malformed[:10])
"""

from __future__ import annotations

import datetime as dt
import heapq
import ipaddress
import itertools
import re
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO, TypeVar, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from comity.db import BulkInsert, session_scope
from comity.registry.models import Delegation, RegistryEntity, RegistryPool
from comity.registry.resources import Kind, key, unkey
from comity.registry.services import LOCAL, lock_kind

__all__ = ["KEEP", "MAX_LINE", "ImportSummary", "Progress", "import_delegated"]

MAX_LINE = 4096
"""Longest line accepted, in bytes; real records are under 100."""

KEEP = 1000
"""How many malformed lines, and how many conflicts, a summary lists (all are counted)."""

BATCH = 5000

# Why a record is left out, in a byte per record (a file may hold millions).
_IN_FILE, _IN_OTHER_POOL = 1, 2
_T = TypeVar("_T")

Progress = Callable[[str, int, int | None], None]
"""Told ``(phase, done, total)``: ``reading`` in bytes, then ``writing`` in delegations."""

# A record as kept in memory: (first, last, line, status, country, registered_at,
# opaque-id). Tuples sort by first address, and the line breaks ties.
Record = tuple[int, int, int, str, str | None, dt.datetime | None, str | None]

_KINDS = {k.value: k for k in Kind}
_STATUSES = {s: s for s in ("allocated", "assigned", "available", "reserved")}
_NUMBER = re.compile(r"[0-9]{1,10}")
_VERSION = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3})?")
_REGISTRY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")
_SERIAL = re.compile(r"[A-Za-z0-9._-]{0,40}")
_OPAQUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_COUNTRY = re.compile(r"[A-Z]{2}")
_DATE = re.compile(r"[0-9]{8}")
_TOP = {Kind.IPV4: 2**32 - 1, Kind.IPV6: 2**128 - 1, Kind.ASN: 2**32 - 1}
_ENTITY_HANDLE_MAX = 64  # registry_entities.handle


@dataclass
class ImportSummary:
    """What an import read, stored and left out.

    ``records`` counts the well-formed records, ``available`` those of free
    space among them; ``delegations`` what was stored, per kind. A record
    left out is counted once, under its first reason: ``malformed_total``
    (the line could not be parsed), ``overlaps_in_file``, ``in_other_pools``
    (it lies in another authority's pool), ``overlaps_in_database``.
    ``malformed`` and ``conflicts`` list the reasons of the lowest-numbered
    lines, at most :data:`KEEP` each, as ``(line, reason)``. ``warnings``
    are header counts that disagree with the records.
    """

    authority: str
    registry: str | None = None
    serial: str | None = None
    lines: int = 0
    records: int = 0
    available: int = 0
    delegations: dict[str, int] = field(default_factory=lambda: {k.value: 0 for k in Kind})
    pools_added: int = 0
    pools_extended: int = 0
    entities_added: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)
    malformed_total: int = 0
    conflicts: list[tuple[int, str]] = field(default_factory=list)
    overlaps_in_file: int = 0
    overlaps_in_database: int = 0
    in_other_pools: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def overlaps(self) -> int:
        return self.overlaps_in_file + self.overlaps_in_database

    def bad(self, line: int, reason: str) -> None:
        self.malformed_total += 1
        if len(self.malformed) < KEEP:
            self.malformed.append((line, reason))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "overlaps": self.overlaps}


class _Malformed(ValueError):
    """A line's reason for being left out."""


class _Reader:
    """Parses lines into records per kind, noting what is malformed and why."""

    def __init__(self, summary: ImportSummary) -> None:
        self.summary = summary
        self.records: dict[Kind, list[Record]] = {k: [] for k in Kind}
        self.record_lines = 0
        self.typed: dict[str, int] = {k.value: 0 for k in Kind}
        self.declared: dict[str, tuple[int, int]] = {}  # type -> (line, count)
        self.version: tuple[int, int] | None = None  # (line, records declared)
        # The same few values recur on every line; one object each saves memory,
        # and a date is parsed once however many records share it. 00000000 is
        # the files' placeholder for no date, as ZZ is for no country.
        self._dates: dict[str, dt.datetime | None] = {"": None, "00000000": None}
        self._countries: dict[str, str | None] = {"": None, "ZZ": None}
        self._holders: dict[str, str] = {}

    def line(self, number: int, raw: bytes) -> None:
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            self.summary.bad(number, "not UTF-8 text")
            return
        if not text or text.startswith("#"):
            return
        fields = text.split("|")
        try:
            if len(fields) >= 8:
                self.record_lines += 1
                self._record(number, fields)
            elif len(fields) == 6 and fields[5] == "summary":
                self._declared(number, fields)
            elif len(fields) == 7 and _VERSION.fullmatch(fields[0]):
                self._version(number, fields)
            else:
                raise _Malformed(f"expected 8 fields (or more, with extensions), "
                                 f"found {len(fields)}")
        except _Malformed as e:
            self.summary.bad(number, str(e))

    def _version(self, number: int, fields: list[str]) -> None:
        if self.version is not None or self.record_lines or self.declared:
            raise _Malformed("a version line must come first, and only once")
        if not (_REGISTRY.fullmatch(fields[1]) and _SERIAL.fullmatch(fields[2])
                and _NUMBER.fullmatch(fields[3])):
            raise _Malformed("bad version line: expected version|registry|serial|records|"
                             "startdate|enddate|UTCoffset")
        self.summary.registry, self.summary.serial = fields[1], fields[2]
        self.version = (number, int(fields[3]))

    def _declared(self, number: int, fields: list[str]) -> None:
        registry, star, type_, star2, count, _ = fields
        if star != "*" or star2 != "*" or type_ not in _KINDS or not _NUMBER.fullmatch(count):
            raise _Malformed("bad summary line: expected registry|*|type|*|count|summary")
        if type_ in self.declared:
            raise _Malformed(f"a second summary line for {type_}")
        self._check_registry(registry)
        self.declared[type_] = (number, int(count))

    def _check_registry(self, registry: str) -> None:
        if self.summary.registry is None:
            if not _REGISTRY.fullmatch(registry):
                raise _Malformed(f"bad registry name {registry!r}")
            self.summary.registry = registry
        elif registry != self.summary.registry:
            raise _Malformed(f"registry {registry!r} differs from the file's "
                             f"{self.summary.registry!r}")

    def _record(self, number: int, fields: list[str]) -> None:
        registry, cc, type_, start, value, date, status, opaque = fields[:8]
        kind = _KINDS.get(type_)
        if kind is None:
            raise _Malformed(f"unknown type {type_[:20]!r} (not asn, ipv4 or ipv6)")
        self.typed[type_] += 1
        self._check_registry(registry)
        country = self._country(cc)
        first, last = _span(kind, start, value)
        registered = self._date(date)
        canonical = _STATUSES.get(status)
        if canonical is None:
            raise _Malformed(f"unknown status {status[:20]!r}")
        holder = self._holder(opaque)
        self.records[kind].append((first, last, number, canonical, country, registered, holder))

    def _country(self, cc: str) -> str | None:
        try:
            return self._countries[cc]
        except KeyError:
            pass
        if not _COUNTRY.fullmatch(cc):
            raise _Malformed(f"bad country code {cc[:20]!r}: not two capital letters "
                             "(ISO 3166 alpha-2)")
        self._countries[cc] = cc
        return cc

    def _date(self, date: str) -> dt.datetime | None:
        try:
            return self._dates[date]
        except KeyError:
            pass
        try:
            if not _DATE.fullmatch(date):
                raise ValueError
            when = dt.datetime(int(date[:4]), int(date[4:6]), int(date[6:]), tzinfo=dt.UTC)
        except ValueError:
            raise _Malformed(f"bad date {date[:20]!r}: not YYYYMMDD") from None
        self._dates[date] = when
        return when

    def _holder(self, opaque: str) -> str | None:
        if not opaque:
            return None  # reserved and available records have no holder
        handle = self._holders.get(opaque)
        if handle is None:
            handle = f"{opaque}-{self.summary.registry}".upper()
            if not _OPAQUE.fullmatch(opaque) or len(handle) > _ENTITY_HANDLE_MAX:
                raise _Malformed(f"bad opaque-id {opaque[:20]!r}: letters, digits, '.', '_' "
                                 f"and '-', and a handle of at most {_ENTITY_HANDLE_MAX}")
            self._holders[opaque] = handle
        return handle

    def finish(self) -> None:
        """Compare what the header lines declared with the records read (warnings only)."""
        s = self.summary
        for type_, (number, count) in sorted(self.declared.items()):
            if count != self.typed[type_]:
                s.warnings.append(f"the summary line (line {number}) counts {count} {type_} "
                                  f"records, the file has {self.typed[type_]}")
        if self.version is not None and self.version[1] != self.record_lines:
            s.warnings.append(f"the version line (line {self.version[0]}) counts "
                              f"{self.version[1]} records, the file has {self.record_lines}")
        s.records = sum(len(r) for r in self.records.values())


def _span(kind: Kind, start: str, value: str) -> tuple[int, int]:
    """The closed range a record names.

    Raises:
        _Malformed: a bad start, count or prefix length, or a misaligned IPv6 start.
    """
    if kind is Kind.IPV6:
        if not _NUMBER.fullmatch(value) or int(value) > 128:
            raise _Malformed(f"bad IPv6 prefix length {value[:20]!r}: not 0 to 128")
        try:
            # A zone (%eth0) is an interface's, never a registry's.
            first = int(ipaddress.IPv6Address(start)) if "%" not in start else -1
        except ValueError:
            first = -1
        if first < 0:
            raise _Malformed(f"bad IPv6 address {start[:60]!r}")
        size = 1 << (128 - int(value))
        if first & (size - 1):
            raise _Malformed(f"{start}/{value} has host bits set: the start is not aligned "
                             "to its prefix length")
        return first, first + size - 1
    if not _NUMBER.fullmatch(value) or int(value) < 1:
        raise _Malformed(f"bad {kind.value} count {value[:20]!r}: not a positive integer")
    if kind is Kind.IPV4:
        try:
            first = int(ipaddress.IPv4Address(start))
        except ValueError:
            raise _Malformed(f"bad IPv4 address {start[:60]!r}") from None
    elif _NUMBER.fullmatch(start) and int(start) <= _TOP[kind]:
        first = int(start)
    else:
        raise _Malformed(f"bad AS number {start[:20]!r}: not 0 to {_TOP[kind]}")
    last = first + int(value) - 1
    if last > _TOP[kind]:
        unit = "AS numbers" if kind is Kind.ASN else "addresses"
        raise _Malformed(f"{value} {unit} from {start} run past the end of the number space")
    return first, last


def _read(stream: BinaryIO, reader: _Reader, on_progress: Progress | None,
          total: int | None) -> None:
    """Feed ``stream`` to ``reader`` a line at a time, never more than MAX_LINE bytes."""
    readline = stream.readline
    number = position = 0
    while raw := readline(MAX_LINE + 1):
        number += 1
        position += len(raw)
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            # Skip the rest of the overlong line without holding it.
            while raw and not raw.endswith(b"\n"):
                raw = readline(65536)
                position += len(raw)
            reader.summary.bad(number, f"longer than {MAX_LINE} bytes")
        else:
            reader.line(number, raw)
        if on_progress is not None and not number % 8192:
            on_progress("reading", position, total)
    reader.summary.lines = number
    if on_progress is not None:
        on_progress("reading", position, total)


def _overlapping(records: list[Record]) -> dict[int, int]:
    """Index of each record (sorted by start) overlapping another → a line it overlaps.

    Every record of a run of overlapping ones is named, the first as much as
    the others: when the file contradicts itself, no record of the run can be
    trusted over another.
    """
    clash: dict[int, int] = {}
    end, holder = -1, -1
    for i, r in enumerate(records):
        if r[0] <= end:
            clash[i] = records[holder][2]
            clash.setdefault(holder, r[2])
        if r[1] > end:
            end, holder = r[1], i
    return clash


def _against(records: list[Record], rows: Iterable[tuple[int, int, _T]],
             on_clash: Callable[[int, _T], None]) -> None:
    """Call ``on_clash(index, payload)`` for each record overlapping one of ``rows``.

    Both are sorted by start and ``rows`` never overlap one another, so one
    pass over each suffices, and ``rows`` can be streamed from the database:
    the only row that can overlap a record is the first one not ending
    before it.
    """
    it = iter(rows)
    row = next(it, None)
    for i, r in enumerate(records):
        while row is not None and row[1] < r[0]:
            row = next(it, None)
        if row is None:
            return
        if row[0] <= r[1]:
            on_clash(i, row[2])


def _union(records: Iterable[Record]) -> list[list[int]]:
    """Merge records (sorted by start) into ranges, touching ones included."""
    out: list[list[int]] = []
    for r in records:
        if out and r[0] <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], r[1])
        else:
            out.append([r[0], r[1]])
    return out


def _handle(kind: Kind, first: int, last: int) -> str:
    """What ``services.handle_for`` gives for this block, without building a Block.

    It runs once per delegation stored; the tests compare it with
    ``handle_for`` over a whole real file.
    """
    if kind is Kind.ASN:
        return f"AS{first}" if first == last else f"AS{first}-AS{last}"
    size = last - first + 1
    aligned = not size & (size - 1) and not first % size
    if kind is Kind.IPV4:
        start = socket.inet_ntoa(first.to_bytes(4, "big"))
        if aligned:
            return f"{start}/{32 - size.bit_length() + 1}"
        return f"{start}-{socket.inet_ntoa(last.to_bytes(4, 'big'))}"
    a = ipaddress.IPv6Address(first)
    if aligned:
        return f"{a}/{128 - size.bit_length() + 1}"
    return f"{a}-{ipaddress.IPv6Address(last)}"


_POOLS = BulkInsert(cast(Table, RegistryPool.__table__),
                    ("authority", "kind", "start_key", "end_key", "name", "created_at"))
_ENTITIES = BulkInsert(cast(Table, RegistryEntity.__table__),
                       ("handle", "name", "country", "authority", "created_at"))
_DELEGATIONS = BulkInsert(cast(Table, Delegation.__table__), (
    "handle", "authority", "kind", "start_key", "end_key", "holder", "country", "status",
    "registered_at", "changed_at"))


class _Writer:
    """Checks the records against the database and writes them, in the caller's transaction."""

    def __init__(self, session: Session, summary: ImportSummary, conflicts: _FirstLines,
                 now: dt.datetime) -> None:
        self.session = session
        self.summary = summary
        self.conflicts = conflicts
        self.authority = summary.authority
        self.now = now
        self.pool_name = f"{summary.registry or 'unknown'} (delegated-extended)"

    def pools(self, kind: Kind, records: list[Record], flags: bytearray) -> None:
        """Add the space of ``records`` (sorted) to the authority's pools.

        A record lying in another authority's pool is flagged, reported
        (unless ``flags`` has it overlapping in the file already) and adds no
        space; a record overlapping others in the file adds its space.
        """
        rows = self.session.execute(select(
            RegistryPool.start_key, RegistryPool.end_key, RegistryPool.authority,
            RegistryPool.seq, RegistryPool.name).where(RegistryPool.kind == kind.value)
            .order_by(RegistryPool.start_key)).all()

        def clash(i: int, pool: tuple[int, int, str]) -> None:
            if not flags[i]:
                self.summary.in_other_pools += 1
                if self.conflicts.wants(records[i][2]):
                    self.conflicts.add(records[i][2], f"lies in the pool "
                                       f"{_handle(kind, pool[0], pool[1])} of {pool[2]}")
            flags[i] = _IN_OTHER_POOL

        _against(records, [(unkey(a), unkey(b), (unkey(a), unkey(b), who))
                           for a, b, who, _, _ in rows if who != self.authority], clash)
        own = [(unkey(a), unkey(b), seq, name) for a, b, who, seq, name in rows
               if who == self.authority]
        ranges = _union(r for r, f in zip(records, flags, strict=True) if f != _IN_OTHER_POOL)
        self._merge_pools(kind, ranges, own)

    def _merge_pools(self, kind: Kind, ranges: list[list[int]],
                     own: list[tuple[int, int, int, str]]) -> None:
        """Store ``ranges`` as pools, merged with the authority's pools they touch.

        A run of ranges and pools that touch becomes one pool (a delegation
        must lie inside a single pool): the first pool of the run is
        stretched to cover it and the others are removed; a run with no pool
        yet is a new pool. A run that adds no space is left as it is.
        """
        new: list[tuple[Any, ...]] = []
        run: list[tuple[int, int, int, str]] = []
        end = -2
        for item in sorted([(a, b, -1, "") for a, b in ranges] + own):
            if run and item[0] <= end + 1:
                run.append(item)
                end = max(end, item[1])
                continue
            if run:
                self._store_run(kind, run, end, new)
            run, end = [item], item[1]
        if run:
            self._store_run(kind, run, end, new)
        _POOLS(self.session.connection(), new)
        self.summary.pools_added += len(new)

    def _store_run(self, kind: Kind, run: list[tuple[int, int, int, str]], last: int,
                   new: list[tuple[Any, ...]]) -> None:
        first = run[0][0]
        pools = [r for r in run if r[2] >= 0]
        if sum(b - a + 1 for a, b, _, _ in pools) == last - first + 1:
            return  # the authority's pools already cover it
        if not pools:
            new.append((self.authority, kind.value, key(kind, first), key(kind, last),
                        self.pool_name, self.now))
            return
        keep, *drop = (seq for _, _, seq, _ in pools)
        if drop:
            self.session.execute(delete(RegistryPool).where(RegistryPool.seq.in_(drop)))
        self.session.execute(update(RegistryPool).where(RegistryPool.seq == keep).values(
            start_key=key(kind, first), end_key=key(kind, last)))
        self.summary.pools_extended += 1

    def free(self, kind: Kind, records: list[Record]) -> list[Record]:
        """The records that overlap no delegation already stored (the others reported).

        The delegations are streamed in address order beside the records, so
        a file imported twice costs one index scan, not a query per record.
        """
        if not records or self.session.scalar(
                select(Delegation.seq).where(Delegation.kind == kind.value).limit(1)) is None:
            return records
        lo, hi = key(kind, records[0][0]), key(kind, max(r[1] for r in records))
        cols = (Delegation.start_key, Delegation.end_key, Delegation.handle,
                Delegation.authority)
        # The one delegation starting before the first record may reach into it.
        before = self.session.execute(select(*cols).where(
            Delegation.kind == kind.value, Delegation.start_key < lo)
            .order_by(Delegation.start_key.desc()).limit(1)).all()
        inside = self.session.execute(select(*cols).where(
            Delegation.kind == kind.value, Delegation.start_key >= lo,
            Delegation.start_key <= hi).order_by(Delegation.start_key)
            .execution_options(yield_per=10_000))
        held = bytearray(len(records))

        def clash(i: int, row: tuple[str, str]) -> None:
            held[i] = 1
            if self.conflicts.wants(records[i][2]):
                self.conflicts.add(records[i][2], f"overlaps the delegation {row[0]} "
                                                  f"({row[1]}) already held")

        try:
            _against(records, ((unkey(a), unkey(b), (h, who))
                               for a, b, h, who in itertools.chain(before, inside)), clash)
        finally:
            inside.close()
        overlapping = sum(held)
        self.summary.overlaps_in_database += overlapping
        if not overlapping:
            return records
        return [r for r, h in zip(records, held, strict=True) if not h]

    def entities(self, delegations: dict[Kind, list[Record]]) -> None:
        """Add the holders not known yet (an existing entity is left as it is)."""
        holders: dict[str, str | None] = {}
        for records in delegations.values():
            for r in records:
                if r[6] is not None and r[6] not in holders:
                    holders[r[6]] = r[4]
        handles = list(holders)
        for i in range(0, len(handles), 500):
            for handle in self.session.scalars(select(RegistryEntity.handle).where(
                    RegistryEntity.handle.in_(handles[i:i + 500]))):
                del holders[handle]
        _ENTITIES(self.session.connection(), [
            (h, h, cc, self.authority, self.now) for h, cc in holders.items()])
        self.summary.entities_added = len(holders)

    def delegations(self, delegations: dict[Kind, list[Record]],
                    on_progress: Progress | None) -> None:
        total = sum(len(r) for r in delegations.values())
        done = 0
        conn = self.session.connection()
        for kind, records in delegations.items():
            for i in range(0, len(records), BATCH):
                _DELEGATIONS(conn, [
                    (_handle(kind, first, last), self.authority, kind.value,
                     key(kind, first), key(kind, last), holder, cc, status, registered,
                     self.now)
                    for first, last, _, status, cc, registered, holder in records[i:i + BATCH]])
                done += len(records[i:i + BATCH])
                if on_progress is not None:
                    on_progress("writing", done, total)
            self.summary.delegations[kind.value] += len(records)


class _FirstLines:
    """The KEEP lowest-numbered lines reported, of however many (a bounded heap)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []  # (-line, reason): the root is the highest

    def wants(self, line: int) -> bool:
        return len(self._heap) < KEEP or -line > self._heap[0][0]

    def add(self, line: int, reason: str) -> None:
        if len(self._heap) < KEEP:
            heapq.heappush(self._heap, (-line, reason))
        elif -line > self._heap[0][0]:
            heapq.heapreplace(self._heap, (-line, reason))

    def sorted(self) -> list[tuple[int, str]]:
        return sorted((-n, reason) for n, reason in self._heap)


def _in_file(summary: ImportSummary, conflicts: _FirstLines, records: list[Record]
             ) -> bytearray:
    """Sort ``records`` and report those overlapping one another; returns their flags."""
    records.sort()
    flags = bytearray(len(records))
    for i, other in _overlapping(records).items():
        flags[i] = _IN_FILE
        summary.overlaps_in_file += 1
        if conflicts.wants(records[i][2]):
            conflicts.add(records[i][2], f"overlaps line {other} of the file")
    return flags


def import_delegated(sessions: sessionmaker[Session], stream: BinaryIO, *,
                     now: dt.datetime, authority: str = LOCAL, total_bytes: int | None = None,
                     on_progress: Progress | None = None) -> ImportSummary:
    """Import a delegated-extended file read from ``stream`` under ``authority``.

    Malformed lines and conflicting records are reported in the summary and
    left out; the rest is stored in one transaction (all or nothing).

    Args:
        sessions: the node's session factory.
        stream: the file, opened in binary mode.
        now: when the rows are written (``created_at``, ``changed_at``).
        authority: whose pools and delegations they become.
        total_bytes: the file's size, if known, for ``on_progress``.
        on_progress: told how far reading, then writing, has gone.

    Raises:
        ValueError: ``authority`` is empty or longer than 64 characters.
        OSError: the stream cannot be read (nothing was written).
        sqlalchemy.exc.SQLAlchemyError: the database failed (nothing was written).

    Returns:
        What was read, stored and left out.
    """
    if not 0 < len(authority) <= 64:
        raise ValueError("an authority is 1 to 64 characters")
    started = time.perf_counter()
    summary = ImportSummary(authority=authority)
    reader = _Reader(summary)
    _read(stream, reader, on_progress, total_bytes)
    reader.finish()
    records = {k: r for k, r in reader.records.items() if r}
    conflicts = _FirstLines()
    in_file = {k: _in_file(summary, conflicts, r) for k, r in records.items()}
    with session_scope(sessions) as session:
        writer = _Writer(session, summary, conflicts, now)
        stored: dict[Kind, list[Record]] = {}
        for kind, recs in records.items():
            lock_kind(session, kind)
            flags = in_file[kind]
            writer.pools(kind, recs, flags)
            summary.available += sum(1 for r in recs if r[3] == "available")
            stored[kind] = writer.free(kind, [
                r for r, f in zip(recs, flags, strict=True) if not f and r[3] != "available"])
        writer.entities(stored)
        writer.delegations(stored, on_progress)
    summary.conflicts = conflicts.sorted()
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary
