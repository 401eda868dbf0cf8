"""Importing delegated-extended files: a real AFRINIC file, bad lines, overlaps, re-imports.

Expectations about the real file are computed here with the standard library
alone (counting and sorting its lines), never with the importer's parser.
Every test runs on both storage backends.
"""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from comity.cli import app
from comity.db import read_scope, session_scope
from comity.node import Node
from comity.registry import importer
from comity.registry.importer import ImportSummary, import_delegated
from comity.registry.resources import Block, parse_block
from comity.registry.services import LOCAL, handle_for
from tests.support import LocalFederation

AFRINIC = Path("/work/shared/data/delegated-afrinic-extended-20230323")
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def run(node: Node, data: bytes | Path, authority: str = LOCAL) -> ImportSummary:
    if isinstance(data, Path):
        with open(data, "rb") as f:
            return import_delegated(node.sessions, f, now=NOW, authority=authority)
    return import_delegated(node.sessions, io.BytesIO(data), now=NOW, authority=authority)


def stored(node: Node) -> list[Any]:
    with read_scope(node.sessions) as s:
        return node.registry.delegations(s, limit=1_000_000)


def pools(node: Node) -> list[Any]:
    with read_scope(node.sessions) as s:
        return node.registry.pools(s)


def digest(node: Node) -> str:
    with read_scope(node.sessions) as s:
        return node.registry.digest(s, LOCAL)


@pytest.fixture
def node(fed: LocalFederation) -> Node:
    return fed.add("a").node


# -- the real file, measured with the standard library --------------------------------

def afrinic_records() -> list[list[str]]:
    # A missing file is a broken test environment, not a reason to skip.
    assert AFRINIC.is_file(), f"{AFRINIC} is missing: the import test needs the real file"
    with open(AFRINIC, encoding="ascii") as f:
        rows = [line.rstrip("\n").split("|") for line in f]
    return [r for r in rows if len(r) == 8 and r[1] != "*"]


def span(r: list[str]) -> tuple[str, int, int]:
    if r[2] == "asn":
        return "asn", int(r[3]), int(r[3]) + int(r[4]) - 1
    if r[2] == "ipv4":
        first = int(ipaddress.IPv4Address(r[3]))
        return "ipv4", first, first + int(r[4]) - 1
    net = ipaddress.IPv6Network(f"{r[3]}/{r[4]}")
    return "ipv6", int(net.network_address), int(net.broadcast_address)


def overlapping_lines(records: list[list[str]]) -> set[int]:
    """Indexes of the records overlapping any other of their kind."""
    by_kind: dict[str, list[tuple[int, int, int]]] = {}
    for i, r in enumerate(records):
        kind, a, b = span(r)
        by_kind.setdefault(kind, []).append((a, b, i))
    out: set[int] = set()
    for items in by_kind.values():
        items.sort()
        for j, (_, b, i) in enumerate(items):
            for a2, _, i2 in items[j + 1:]:
                if a2 > b:
                    break
                out.update((i, i2))
    return out


def merged_ranges(records: list[list[str]]) -> int:
    """How many runs of touching or overlapping records there are, per kind."""
    count, kind, end = 0, "", -2
    for k, a, b in sorted(span(r) for r in records):
        if k != kind or a > end + 1:
            count, kind, end = count + 1, k, b
        else:
            end = max(end, b)
    return count


def test_import_the_real_afrinic_file(node: Node) -> None:
    records = afrinic_records()
    statuses = Counter(r[6] for r in records)
    assert statuses == {"allocated": 6363, "assigned": 1798, "reserved": 3782,
                        "available": 3076}
    clashing = overlapping_lines(records)
    kept = [r for i, r in enumerate(records) if i not in clashing and r[6] != "available"]
    per_kind = Counter(r[2] for r in kept)
    with open(AFRINIC, "rb") as f:
        lines = sum(1 for _ in f)

    s = run(node, AFRINIC)

    assert (s.registry, s.serial, s.lines, s.records) == ("afrinic", "20230323", lines,
                                                           len(records))
    assert s.malformed == []
    assert s.malformed_total == 0
    assert s.warnings == []  # the summary lines agree with the records
    assert s.overlaps_in_file == len(clashing)
    assert s.overlaps_in_database == 0
    assert s.in_other_pools == 0
    assert s.delegations == dict(per_kind)
    assert sum(s.delegations.values()) == 6363 + 1798 + 3782 - len(
        [i for i in clashing if records[i][6] != "available"])
    assert s.available == 3076
    assert s.pools_added == merged_ranges(records) == len(pools(node))
    holders = {f"{r[7]}-AFRINIC".upper() for r in kept if r[7]}
    assert s.entities_added == len(holders)
    with read_scope(node.sessions) as session:
        e = node.registry.entity(session, "F36B9F4B-AFRINIC")
        assert (e.name, e.country, e.authority) == ("F36B9F4B-AFRINIC", "ZA", LOCAL)

    rows = stored(node)
    assert len(rows) == len(kept)
    assert Counter(d.status for d in rows) == Counter(r[6] for r in kept)
    for d in rows:  # the importer's own handle formatting matches the registry's
        assert d.handle == handle_for(Block.from_keys(d.kind, d.start_key, d.end_key))
        assert d.authority == LOCAL
    first = next(d for d in rows if d.handle == "AS1228")
    assert first.holder == "F36B9F4B-AFRINIC"
    assert first.registered_at == dt.datetime(1991, 3, 1, tzinfo=dt.UTC)
    reserved = next(d for d in rows if d.status == "reserved")
    assert reserved.holder is None
    assert reserved.country is None


def test_lookup_inside_a_non_power_of_two_record(node: Node) -> None:
    records = afrinic_records()
    r = next(r for r in records if r[2] == "ipv4" and r[6] == "allocated"
             and int(r[4]) & (int(r[4]) - 1))  # e.g. 1280 addresses
    first = int(ipaddress.IPv4Address(r[3]))
    run(node, AFRINIC)
    with read_scope(node.sessions) as s:
        for inside in (first, first + int(r[4]) // 2 + 1, first + int(r[4]) - 1):
            found = node.registry.lookup(s, parse_block(str(ipaddress.IPv4Address(inside))))
            assert found.delegation is not None
            assert found.block == Block.from_keys("ipv4", f"{first:08x}",
                                                  f"{first + int(r[4]) - 1:08x}")
            assert found.delegation.holder == f"{r[7]}-AFRINIC".upper()
            assert found.delegation.country == r[1]
            assert found.block.prefix_length is None


def test_reimport_reports_overlaps_and_adds_nothing(node: Node) -> None:
    first = run(node, AFRINIC)
    before, count = digest(node), len(stored(node))
    again = run(node, AFRINIC)
    assert sum(again.delegations.values()) == 0
    assert again.pools_added == again.pools_extended == again.entities_added == 0
    assert again.overlaps_in_database == sum(first.delegations.values()) == count
    assert again.conflicts[0][1].startswith("overlaps the delegation ")
    assert again.conflicts[0][1].endswith(" (local) already held")
    # The summary lists the first lines of the file that it left out, in order.
    with open(AFRINIC, encoding="ascii") as f:
        delegated = [n for n, line in enumerate(f, 1)
                     if line.split("|")[6:7] in (["allocated"], ["assigned"], ["reserved"])]
    assert [n for n, _ in again.conflicts] == delegated[:importer.KEEP]
    assert digest(node) == before
    assert len(stored(node)) == count


def test_records_in_another_authoritys_pool_are_refused(node: Node) -> None:
    with session_scope(node.sessions) as s:
        node.registry.add_pool(s, registry="council-x", block=parse_block("41.0.0.0/8"),
                               name="theirs", now=NOW)
    records = afrinic_records()
    in_41 = [r for r in records if r[2] == "ipv4" and r[3].startswith("41.")]
    assert in_41
    s = run(node, AFRINIC)
    assert s.in_other_pools == len(in_41)
    assert (s.conflicts[0][1]) == "lies in the pool 41.0.0.0/8 of council-x"
    assert not any(d.handle.startswith("41.") for d in stored(node))
    assert all(p.authority == "council-x" for p in pools(node) if p.start_key[:2] == "29")


# -- synthetic files -------------------------------------------------------------------

BAD = "\n".join([
    "# a comment",                                                            # 1
    "2|testrir|20260101|12|19700101|20260101|+0000",                          # 2
    "testrir|*|ipv4|*|6|summary",                                             # 3
    "testrir|*|asn|*|3|summary",                                              # 4
    "testrir|*|ipv6|*|3|summary",                                             # 5
    "testrir|ZA|ipv4|41.0.0.0|1280|20200102|allocated|aaa",                   # 6 good
    "testrir|ZA|ipv4|41.0.5.0|256|20200102|allocated",                        # 7
    "testrir|ZA|ipv5|41.0.6.0|256|20200102|allocated|aaa",                    # 8
    "testrir|ZA|ipv4|41.0.300.0|256|20200102|allocated|aaa",                  # 9
    "testrir|ZA|ipv4|41.0.6.0|0|20200102|allocated|aaa",                      # 10
    "testrir|ZA|ipv6|2c0f:f000::1|32|20200102|allocated|aaa",                 # 11
    "testrir|ZA|ipv6|2c0f:f000::|129|20200102|allocated|aaa",                 # 12
    "testrir|ZA|ipv4|41.0.6.0|256|20201302|allocated|aaa",                    # 13
    "testrir|ZA|ipv4|41.0.6.0|256|20200102|stolen|aaa",                       # 14
    "testrir|zaf|ipv4|41.0.6.0|256|20200102|allocated|aaa",                   # 15
    "testrir|EG|ipv6|2c0f:f000::|32|20200103|assigned|BBB",                   # 16 good
    "testrir|ZZ|asn|36864|8||reserved|",                                      # 17 good
    "testrir|ZA|asn|4294967290|10|20200102|allocated|aaa",                    # 18
    "otherrir|ZA|asn|36900|1|20200102|allocated|aaa",                         # 19
    "testrir||ipv4|41.0.8.0|512||available|",                                 # 20 good
    "testrir|ZA|asn|AS1|1|20200102|allocated|aaa",                            # 21
    "",                                                                       # 22 blank
    "testrir|EU|ipv4|41.0.10.0|256|20200102|assigned|CCC|ext1|ext2",          # 23 good
    "testrir|ZA|ipv4|41.0.11.0|256|20200102|allocated|" + "x" * 5000,         # 24
]).encode() + b"\ntestrir|ZA|ipv4|41.0.12.0|256|20200102|allocated|\xff\xfe\n"  # 25

BAD_REASONS = [
    (7, "expected 8 fields (or more, with extensions), found 7"),
    (8, "unknown type 'ipv5' (not asn, ipv4 or ipv6)"),
    (9, "bad IPv4 address '41.0.300.0'"),
    (10, "bad ipv4 count '0': not a positive integer"),
    (11, "2c0f:f000::1/32 has host bits set: the start is not aligned to its prefix length"),
    (12, "bad IPv6 prefix length '129': not 0 to 128"),
    (13, "bad date '20201302': not YYYYMMDD"),
    (14, "unknown status 'stolen'"),
    (15, "bad country code 'zaf': not two capital letters (ISO 3166 alpha-2)"),
    (18, "10 AS numbers from 4294967290 run past the end of the number space"),
    (19, "registry 'otherrir' differs from the file's 'testrir'"),
    (21, "bad AS number 'AS1': not 0 to 4294967295"),
    (24, "longer than 4096 bytes"),
    (25, "not UTF-8 text"),
]


def test_malformed_lines_are_reported_and_good_lines_imported(node: Node) -> None:
    s = run(node, BAD)
    assert s.malformed == BAD_REASONS
    assert s.malformed_total == len(BAD_REASONS)
    assert s.lines == 25
    assert s.records == 5  # lines 6, 16, 17, 20 and 23
    assert s.available == 1
    assert s.delegations == {"ipv4": 2, "ipv6": 1, "asn": 1}
    assert s.entities_added == 3
    assert s.warnings == [
        "the summary line (line 4) counts 3 asn records, the file has 4",
        "the summary line (line 3) counts 6 ipv4 records, the file has 8",
        "the version line (line 2) counts 12 records, the file has 16",
    ]
    assert s.conflicts == []
    assert sorted(str(Block.from_keys(p.kind, p.start_key, p.end_key)) for p in pools(node)) == [
        "2c0f:f000::/32", "41.0.0.0-41.0.4.255", "41.0.8.0-41.0.10.255", "AS36864-AS36871"]
    by_handle = {d.handle: d for d in stored(node)}
    assert set(by_handle) == {"41.0.0.0-41.0.4.255", "41.0.10.0/24", "2c0f:f000::/32",
                              "AS36864-AS36871"}
    d = by_handle["41.0.0.0-41.0.4.255"]
    assert (d.holder, d.country, d.status) == ("AAA-TESTRIR", "ZA", "allocated")
    assert d.registered_at == dt.datetime(2020, 1, 2, tzinfo=dt.UTC)
    assert by_handle["41.0.10.0/24"].country == "EU"
    assert by_handle["AS36864-AS36871"].holder is None
    assert by_handle["AS36864-AS36871"].registered_at is None


OVERLAPS = "\n".join([
    "r|ZA|ipv4|10.0.0.0|1024|20200101|allocated|A",    # 1: 10.0.0.0-10.0.3.255
    "r|ZA|ipv4|10.0.1.0|256|20200101|assigned|B",      # 2: inside line 1
    "r|ZA|ipv4|10.0.4.0|256|20200101|allocated|C",     # 3: touches line 1 only
    "r|ZA|ipv4|10.0.3.128|128|20200101|allocated|D",   # 4: inside line 1
    "r|ZA|asn|100|10|20200101|allocated|A",            # 5: AS100-AS109
    "r|ZA|asn|109|1|20200101|allocated|B",             # 6: AS109
    "r|ZA|asn|110|1|20200101|allocated|B",             # 7: touches line 5 only
    "r|ZZ|ipv6|2001:db8::|32||available|",             # 8
    "r|ZA|ipv6|2001:db8:1::|48|20200101|allocated|A",  # 9: inside the available line 8
]).encode()


def test_overlaps_within_a_file_are_each_reported(node: Node) -> None:
    s = run(node, OVERLAPS)
    assert s.malformed == []
    assert s.conflicts == [
        (1, "overlaps line 2 of the file"), (2, "overlaps line 1 of the file"),
        (4, "overlaps line 1 of the file"), (5, "overlaps line 6 of the file"),
        (6, "overlaps line 5 of the file"), (8, "overlaps line 9 of the file"),
        (9, "overlaps line 8 of the file"),
    ]
    assert s.overlaps_in_file == s.overlaps == 7
    assert s.delegations == {"ipv4": 1, "ipv6": 0, "asn": 1}
    assert {d.handle for d in stored(node)} == {"10.0.4.0/24", "AS110"}
    # The space is the registry's all the same: one pool per run of records.
    assert sorted(str(Block.from_keys(p.kind, p.start_key, p.end_key)) for p in pools(node)) == [
        "10.0.0.0-10.0.4.255", "2001:db8::/32", "AS100-AS110"]
    with read_scope(node.sessions) as session:
        found = node.registry.lookup(session, parse_block("10.0.1.5"))
        assert found.delegation is None
        assert found.pool is not None


def test_pools_join_the_authoritys_pools_they_touch(node: Node) -> None:
    with session_scope(node.sessions) as s:
        node.registry.add_pool(s, registry=LOCAL, block=parse_block("10.0.0.0/24"),
                               name="mine", now=NOW)
        node.registry.add_pool(s, registry=LOCAL, block=parse_block("10.0.5.0/24"),
                               name="untouched", now=NOW)
    s = run(node, b"r|ZA|ipv4|10.0.1.0|256|20200101|allocated|A\n"
                  b"r|ZA|ipv4|10.0.3.0|256|20200101|allocated|A\n")
    assert (s.pools_added, s.pools_extended) == (1, 1)
    assert [(str(Block.from_keys(p.kind, p.start_key, p.end_key)), p.name)
            for p in pools(node)] == [("10.0.0.0/23", "mine"),
                                      ("10.0.3.0/24", "r (delegated-extended)"),
                                      ("10.0.5.0/24", "untouched")]
    # Importing a neighbour joins the pools on both sides into one.
    s = run(node, b"r|ZA|ipv4|10.0.2.0|256|20200101|allocated|B\n")
    assert (s.pools_added, s.pools_extended) == (0, 1)
    assert [str(Block.from_keys(p.kind, p.start_key, p.end_key)) for p in pools(node)] == [
        "10.0.0.0/22", "10.0.5.0/24"]
    with read_scope(node.sessions) as session:  # one pool contains what spans the three
        found = node.registry.lookup(session, parse_block("10.0.2.0/23"))
        assert found.pool is not None
        assert found.pool.name == "mine"


def test_the_summary_keeps_a_bounded_list(node: Node) -> None:
    bad = b"".join(b"r|ZA|ipv4|10.0.0.%d|x|20200101|allocated|A\n" % (i % 250)
                   for i in range(importer.KEEP + 500))
    s = run(node, bad)
    assert s.malformed_total == importer.KEEP + 500
    assert len(s.malformed) == importer.KEEP
    assert s.malformed[-1][0] == importer.KEEP


def test_a_failed_import_stores_nothing(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = importer._DELEGATIONS

    def failing(conn: Any, rows: Any) -> None:
        calls.append(len(rows))
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        real(conn, rows)

    monkeypatch.setattr(importer, "BATCH", 1000)
    monkeypatch.setattr(importer, "_DELEGATIONS", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        run(node, AFRINIC)
    assert calls[:2] == [1000, 1000]
    assert stored(node) == []
    assert pools(node) == []
    with read_scope(node.sessions) as s:
        assert node.registry.delegations(s) == []
    monkeypatch.undo()
    assert sum(run(node, AFRINIC).delegations.values()) > 0


def test_authority_must_be_named(node: Node) -> None:
    with pytest.raises(ValueError, match="authority"):
        run(node, b"", authority="")


def test_cli_import(node: Node, tmp_path: Path) -> None:
    env = {"COMITY_DATABASE_URL": node.settings.database_url} if node.settings.database_url \
        else {}
    runner = CliRunner()
    data_dir = str(node.settings.data_dir)
    path = tmp_path / "bad.txt"
    path.write_bytes(BAD)
    result = runner.invoke(app, ["registry", "import", "--data-dir", data_dir, str(path),
                                 "--json"], env=env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["malformed"][0] == [7, BAD_REASONS[0][1]]
    assert doc["delegations"] == {"ipv4": 2, "ipv6": 1, "asn": 1}
    result = runner.invoke(app, ["registry", "import", "--data-dir", data_dir, str(path)],
                           env=env)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "4 overlapping stored delegations" in text
    assert "line 9: bad IPv4 address '41.0.300.0'" in text
    result = runner.invoke(app, ["registry", "import", "--data-dir", data_dir,
                                 str(tmp_path / "missing.txt")], env=env)
    assert result.exit_code == 1


def test_header_lines_are_checked(node: Node) -> None:
    s = run(node, b"\r\n".join([
        b"2.3|apnic|20260929|3||20260928|+1000",               # 1: APNIC's empty start date
        b"apnic|*|ipv4|*|1|summary",                            # 2
        b"apnic|*|ipv4|*|1|summary",                            # 3: twice
        b"apnic|*|ipv7|*|1|summary",                            # 4
        b"apnic|JP|ipv4|1.0.16.0|4096|20110412|allocated|A91872ED",  # 5 (CRLF lines)
        b"2.3|apnic|20260930|3||20260928|+1000",               # 6: not first
        b"apnic|JP|asn|2497|32|19910521|allocated",             # 7: the normal format
    ]) + b"\r\n")
    assert s.malformed == [
        (3, "a second summary line for ipv4"),
        (4, "bad summary line: expected registry|*|type|*|count|summary"),
        (6, "a version line must come first, and only once"),
        (7, "expected 8 fields (or more, with extensions), found 7"),
    ]
    assert (s.registry, s.serial, s.records) == ("apnic", "20260929", 1)
    assert s.warnings == ["the version line (line 1) counts 3 records, the file has 1"]
    assert [d.handle for d in stored(node)] == ["1.0.16.0/20"]
    assert stored(node)[0].holder == "A91872ED-APNIC"
