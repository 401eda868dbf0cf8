"""The raw baseline for ``bench.taxii``: the same envelopes straight into SQLite, no server.

Ingest: each TAXII envelope (the very bytes the benchmark POSTs to a server)
is parsed with orjson, and each of its objects inserted into one table
``objects (id, version, date_added, body)`` in one transaction per envelope,
with the durability a node uses (WAL, ``synchronous=FULL``). ``version`` is
the object's ``modified``, ``date_added`` the envelope's arrival time and
``body`` the object re-serialised. No index besides the rowid, no checks, no
duplicate detection: this is what storing alone costs.

With ``indexed=True`` (reported apart, as context: the targets compare with
the plain table) the table also has a ``type`` column and the two indexes
any TAXII collection needs to answer its filters in order: a unique index
on ``(id, version)`` (an object's versions, duplicates refused) and one on
``type`` (``match[type]`` in rowid order: the rowid ends every index). A
node has these and a third, per collection (its ``seq`` order), besides its
STIX checks.

Read: pages of ``page_size`` rows ordered by rowid (keyset: ``rowid > last``),
each assembled into an envelope's bytes from the stored bodies: what a server
would send. Parsing those bytes again, as a client would, is timed apart (as
``bench.taxii`` times a server's pages apart from parsing them).

Run alone: ``python -m bench.taxii_raw --objects 100000``; ``bench.taxii``
runs it beside the servers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from bench import write_results

SCHEMA = ("CREATE TABLE objects (id TEXT NOT NULL, version TEXT NOT NULL, "
          "date_added TEXT NOT NULL, body BLOB NOT NULL)")
INDEXED_SCHEMA = (
    "CREATE TABLE objects (id TEXT NOT NULL, type TEXT NOT NULL, version TEXT NOT NULL, "
    "date_added TEXT NOT NULL, body BLOB NOT NULL)",
    "CREATE UNIQUE INDEX objects_version ON objects (id, version)",
    "CREATE INDEX objects_type ON objects (type)",  # the rowid ends every index
)


def connect(path: Path, *, indexed: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    for statement in INDEXED_SCHEMA if indexed else (SCHEMA,):
        conn.execute(statement)
    return conn


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ingest(conn: sqlite3.Connection, envelopes: Iterable[bytes],
           deadline: float, *, indexed: bool = False) -> dict[str, Any]:
    """Store every envelope's objects, one transaction per envelope, until ``deadline``.

    Only the parsing and the transactions are timed, not producing the envelopes.
    """
    elapsed, stored, done = 0.0, 0, True
    insert = ("INSERT INTO objects VALUES (?, ?, ?, ?, ?)" if indexed
              else "INSERT INTO objects VALUES (?, ?, ?, ?)")
    for envelope in envelopes:
        if time.monotonic() > deadline:
            done = False
            break
        t = time.perf_counter()
        added = _now()
        objects = orjson.loads(envelope)["objects"]
        rows: list[tuple[Any, ...]]
        if indexed:
            rows = [(o["id"], o["type"], o["modified"], added, orjson.dumps(o)) for o in objects]
        else:
            rows = [(o["id"], o["modified"], added, orjson.dumps(o)) for o in objects]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert, rows)
        conn.execute("COMMIT")
        elapsed += time.perf_counter() - t
        stored += len(rows)
    return {"objects": stored, "seconds": round(elapsed, 3), "completed": done,
            "objects_per_s": round(stored / elapsed, 1) if elapsed else None}


def read(conn: sqlite3.Connection, page_size: int, deadline: float,
         on_page: Callable[[list[dict[str, Any]]], None] | None = None) -> dict[str, Any]:
    """Read every object back in rowid order, ``page_size`` at a time, until ``deadline``.

    Timed per page: the query and assembling the envelope's bytes (what a
    server sends). Parsing the page again, as a client would, is timed apart.
    """
    elapsed, parse_s, count, pages, last, done = 0.0, 0.0, 0, 0, 0, True
    while True:
        if time.monotonic() > deadline:
            done = False
            break
        t = time.perf_counter()
        rows = conn.execute("SELECT rowid, body FROM objects WHERE rowid > ? ORDER BY rowid "
                            "LIMIT ?", (last, page_size)).fetchall()
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
                 directory: Path | None = None, *, indexed: bool = False) -> dict[str, Any]:
    """Ingest ``envelopes`` into a fresh SQLite file, then read it all back.

    Each of the two phases stops after ``budget_s`` seconds and says so
    (``completed: false``). ``on_page`` sees every page read (for the id
    check); the temporary database is removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="comity-bench-taxii-raw-", dir=directory) as tmp:
        conn = connect(Path(tmp) / "raw.db", indexed=indexed)
        try:
            ing = ingest(conn, envelopes, time.monotonic() + budget_s, indexed=indexed)
            got = read(conn, page_size, time.monotonic() + budget_s, on_page)
        finally:
            conn.close()
    store = "sqlite WAL synchronous=FULL, one transaction per envelope"
    if indexed:
        store += ", unique (id, version) and (type) indexes"
    return {"store": store, "ingest": ing, "read": got}


def main() -> None:
    from bench.taxii import ENVELOPE, IdTally, envelopes

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--budget-s", type=float, default=1800, help="per phase")
    ap.add_argument("--out", type=Path, help="write the result here as JSON")
    args = ap.parse_args()
    tally = IdTally(args.objects)
    result = raw_baseline(envelopes(0, args.objects, ENVELOPE), args.page_size, args.budget_s,
                          tally.page)
    result["read"]["check"] = tally.check(result["ingest"]["objects"])
    result = {"benchmark": "taxii-raw", "objects": args.objects, "page_size": args.page_size,
              **result}
    print(json.dumps(result), flush=True)
    write_results(args.out, result)


if __name__ == "__main__":
    main()
