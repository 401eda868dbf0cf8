"""The raw baseline for ``bench.taxii``: the same envelopes straight into SQLite, no server.

Ingest: each TAXII envelope (the very bytes the benchmark POSTs to a server)
is parsed with orjson, and each of its objects inserted into one table
``objects (id, version, date_added, body)`` in one transaction per envelope,
with the durability a node uses (WAL, ``synchronous=FULL``). ``version`` is
the object's ``modified``, ``date_added`` the envelope's arrival time and
``body`` the object re-serialised. No index besides the rowid, no checks, no
duplicate detection: this is what storing alone costs.

With ``layout="indexed"`` (reported apart, as context: the targets compare with
the plain table) the table also has a ``type`` column and the two indexes
any TAXII collection needs to answer its filters in order: a unique index
on ``(id, version)`` (an object's versions, duplicates refused) and one on
``type`` (``match[type]`` in rowid order: the rowid ends every index). A
node has these and a third, per collection (its ``seq`` order), besides its
STIX checks.

With ``layout="node"`` (also context) the rows go into a node's own STIX
table, made from its schema with its three indexes: every column a node
stores, each version's instant parsed from ``modified``, the collection's
id on every row, the values an envelope's rows share written into the
statement as a node writes them; still no checks, no duplicate detection, no
server. It is the floor of what a node's storage layout costs, apart from all
else a node does.

Read: pages of ``page_size`` rows in key order (keyset: ``rowid > last``, in
the node's table ``seq > last`` within the collection),
each assembled into an envelope's bytes from the stored bodies: what a server
would send. Parsing those bytes again, as a client would, is timed apart (as
``bench.taxii`` times a server's pages apart from parsing them).

Run alone: ``python -m bench.taxii_raw --objects 100000 [--layout indexed|node]``;
``bench.taxii`` runs all three beside the servers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import write_results

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Layout:
    """A table to store into: its DDL, its insert, one object's row, a page's query."""

    ddl: tuple[str, ...]
    insert: Callable[[str], str]  # (date_added text) -> the statement of one envelope
    row: Callable[[dict[str, Any], str], Row]  # (object, date_added text) -> row
    page: str  # (last key, limit) -> rows of (key, body), in key order
    store: str
    now: Callable[[], str]  # the text of an arrival time

    def connect(self, path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        for statement in self.ddl:
            conn.execute(statement)
        return conn


_STORE = "sqlite WAL synchronous=FULL, one transaction per envelope"

PLAIN = Layout(
    ("CREATE TABLE objects (id TEXT NOT NULL, version TEXT NOT NULL, "
     "date_added TEXT NOT NULL, body BLOB NOT NULL)",),
    lambda _added: "INSERT INTO objects VALUES (?, ?, ?, ?)",
    lambda o, added: (o["id"], o["modified"], added, orjson.dumps(o)),
    "SELECT rowid, body FROM objects WHERE rowid > ? ORDER BY rowid LIMIT ?",
    _STORE, lambda: _now())

INDEXED = Layout(
    ("CREATE TABLE objects (id TEXT NOT NULL, type TEXT NOT NULL, version TEXT NOT NULL, "
     "date_added TEXT NOT NULL, body BLOB NOT NULL)",
     "CREATE UNIQUE INDEX objects_version ON objects (id, version)",
     "CREATE INDEX objects_type ON objects (type)"),  # the rowid ends every index
    lambda _added: "INSERT INTO objects VALUES (?, ?, ?, ?, ?)",
    lambda o, added: (o["id"], o["type"], o["modified"], added, orjson.dumps(o)),
    "SELECT rowid, body FROM objects WHERE rowid > ? ORDER BY rowid LIMIT ?",
    _STORE + ", unique (id, version) and (type) indexes", lambda: _now())


def node_layout() -> Layout:
    """A node's own STIX table (from its schema), filled as a node fills it, minus the checks."""
    from sqlalchemy import Table
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    from comity.db import UTCDateTime
    from comity.sharing.models import StixObject

    table = StixObject.__table__
    assert isinstance(table, Table)
    dialect = sqlite.dialect()
    ddl = (str(CreateTable(table).compile(dialect=dialect)),
           *(str(CreateIndex(i).compile(dialect=dialect)) for i in table.indexes))
    instant = UTCDateTime().bind_processor(dialect)
    assert instant is not None
    collection = "6f1c3a8e-2b4d-4e5f-9a7b-0c1d2e3f4a5b"
    # As a node writes them: what every row of an envelope shares is a literal of
    # the statement (db.BulkInsert's ``shared``), the rest is bound per row.
    bound = ("object_id", "type", "spec_version", "version", "version_at", "latest", "first",
             "revoked", "tlp", "size", "body")
    shared = ("collection_id", "kind", "date_added", "deleted", "origin", "received_under",
              "recipients", "provenance")
    assert set(bound) | set(shared) == {c.name for c in table.columns} - {"seq"}

    def insert(added: str) -> str:
        literals = (f"'{collection}'", "'object'", f"'{added}'", "0", "NULL", "NULL", "NULL",
                    "NULL")
        return (f"INSERT INTO stix_objects ({', '.join(bound + shared)}) "
                f"VALUES ({', '.join(('?',) * len(bound) + literals)})")

    def row(o: dict[str, Any], _added: str) -> Row:
        body = orjson.dumps(o)
        at = dt.datetime.fromisoformat(o["modified"])
        return (o["id"], o["type"], o.get("spec_version", "2.1"), o["modified"], instant(at),
                True, True, False, None, len(body), body)

    return Layout(
        ddl, insert, row,
        f"SELECT seq, body FROM stix_objects WHERE collection_id = '{collection}' "
        "AND seq > ? ORDER BY seq LIMIT ?",
        _STORE + ", a node's STIX table and its three indexes",
        lambda: instant(dt.datetime.now(dt.UTC)))


# By name; the node's is made on demand (it imports the node's schema).
LAYOUTS: dict[str, Callable[[], Layout]] = {
    "plain": lambda: PLAIN, "indexed": lambda: INDEXED, "node": node_layout}


def layout(name: str) -> Layout:
    """The layout called ``name`` (a key of :data:`LAYOUTS`)."""
    return LAYOUTS[name]()


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ingest(conn: sqlite3.Connection, envelopes: Iterable[bytes],
           deadline: float, table: Layout = PLAIN) -> dict[str, Any]:
    """Store every envelope's objects, one transaction per envelope, until ``deadline``.

    Only the parsing and the transactions are timed, not producing the envelopes.
    """
    elapsed, stored, done = 0.0, 0, True
    row = table.row
    for envelope in envelopes:
        if time.monotonic() > deadline:
            done = False
            break
        t = time.perf_counter()
        added = table.now()
        rows = [row(o, added) for o in orjson.loads(envelope)["objects"]]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(table.insert(added), rows)
        conn.execute("COMMIT")
        elapsed += time.perf_counter() - t
        stored += len(rows)
    return {"objects": stored, "seconds": round(elapsed, 3), "completed": done,
            "objects_per_s": round(stored / elapsed, 1) if elapsed else None}


def read(conn: sqlite3.Connection, page_size: int, deadline: float,
         on_page: Callable[[list[dict[str, Any]]], None] | None = None,
         table: Layout = PLAIN) -> dict[str, Any]:
    """Read every object back in key order, ``page_size`` at a time, until ``deadline``.

    Timed per page: the query and assembling the envelope's bytes (what a
    server sends). Parsing the page again, as a client would, is timed apart.
    """
    elapsed, parse_s, count, pages, last, done = 0.0, 0.0, 0, 0, 0, True
    while True:
        if time.monotonic() > deadline:
            done = False
            break
        t = time.perf_counter()
        rows = conn.execute(table.page, (last, page_size)).fetchall()
        more = b"true" if len(rows) == page_size else b"false"
        envelope = (b'{"more":' + more + b',"objects":[' + b",".join(r[1] for r in rows)
                    + b"]}")
        t1 = time.perf_counter()
        elapsed += t1 - t
        page = orjson.loads(envelope)
        parse_s += time.perf_counter() - t1
        if not rows:
            break
        pages += 1
        count += len(rows)
        last = rows[-1][0]
        if on_page is not None:
            on_page(page["objects"])
    return {"objects": count, "pages": pages, "seconds": round(elapsed, 3), "completed": done,
            "objects_per_s": round(count / elapsed, 1) if elapsed else None,
            "client_parse_s": round(parse_s, 3)}


def raw_baseline(envelopes: Iterable[bytes], page_size: int, budget_s: float,
                 on_page: Callable[[list[dict[str, Any]]], None] | None = None,
                 directory: Path | None = None, *, table: Layout = PLAIN) -> dict[str, Any]:
    """Ingest ``envelopes`` into a fresh SQLite file laid out as ``table``, then read it back.

    Each of the two phases stops after ``budget_s`` seconds and says so
    (``completed: false``). ``on_page`` sees every page read (for the id
    check); the temporary database is removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="comity-bench-taxii-raw-", dir=directory) as tmp:
        conn = table.connect(Path(tmp) / "raw.db")
        try:
            ing = ingest(conn, envelopes, time.monotonic() + budget_s, table)
            got = read(conn, page_size, time.monotonic() + budget_s, on_page, table)
        finally:
            conn.close()
    return {"store": table.store, "ingest": ing, "read": got}


def main() -> None:
    from bench.taxii import ENVELOPE, IdTally, envelopes

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--budget-s", type=float, default=1800, help="per phase")
    ap.add_argument("--layout", choices=tuple(LAYOUTS), default="plain",
                    help="the table stored into (see the module's documentation)")
    ap.add_argument("--out", type=Path, help="write the result here as JSON")
    args = ap.parse_args()
    tally = IdTally(args.objects)
    result = raw_baseline(envelopes(0, args.objects, ENVELOPE), args.page_size, args.budget_s,
                          tally.page, table=layout(args.layout))
    result["read"]["check"] = tally.check(result["ingest"]["objects"])
    result = {"benchmark": "taxii-raw", "objects": args.objects, "page_size": args.page_size,
              **result}
    print(json.dumps(result), flush=True)
    write_results(args.out, result)


if __name__ == "__main__":
    main()
