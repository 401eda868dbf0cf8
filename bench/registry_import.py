"""Benchmark: importing a delegated-extended file of N lines, beside a raw SQLite baseline.

Method:

- **file**: a synthetic delegated-extended file of ``--lines`` lines (default
  1,000,000), deterministic: a version line, three summary lines, then
  records of the three kinds interleaved (about 60 % IPv4, 25 % IPv6, 15 %
  AS numbers), none overlapping, with gaps now and then (so there are many
  pools). IPv4 counts cycle through powers of two and others (768, 1280,
  2304, ...); IPv6 prefixes are /29 to /48, aligned; AS ranges count 1 to 10.
  Statuses cycle allocated, assigned, reserved and available (one in six);
  50,000 holders.
- **comity**: ``import_delegated`` into a fresh node (SQLite in a temporary
  directory, ``synchronous=FULL`` as a node runs): the whole import, from
  reading the first byte to the commit. Then the same file again
  (``reimport``): every record now overlaps a stored delegation, which is
  the path that consults the database; it adds nothing.
- **raw**: the same file parsed with the standard library (split, and
  ``ipaddress`` for the keys) and the same delegation rows handed to
  ``executemany`` on a bare SQLite table (WAL, ``synchronous=FULL``, one
  transaction, no index, no checks, no pools, no entities): what storing
  alone costs. ``ratio`` is comity's time over raw's.

Peak RSS is the process's, after each import and at the end (the importer
holds the file's records in memory while it checks them, about 200 bytes
each).

Run ``python -m bench.registry_import`` (``--lines`` to change). Prints one
JSON object; ``--out FILE`` writes it there too. Stops by itself: one file,
two imports and the baseline.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import resource
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import write_results
from comity.clock import SystemClock
from comity.config import Settings
from comity.db import read_scope
from comity.identity.schemas import NodeKind
from comity.identity.services import init_node
from comity.node import Node
from comity.registry.importer import import_delegated

IPV4_COUNTS = [256, 1280, 512, 768, 1024, 256, 2304, 4096, 256, 1536, 8192, 256]
IPV6_LENGTHS = [32, 48, 40, 36, 44, 29, 48, 32]
ASN_COUNTS = [1, 1, 1, 4, 1, 2, 10, 1]
STATUSES = ["allocated", "assigned", "allocated", "reserved", "allocated", "available"]
COUNTRIES = ["ZA", "EG", "MA", "NG", "KE", "TN", "GH", "MU", "EU"]
HEADER = 4


def records(n: int) -> Any:
    """``n`` record lines, deterministic and non-overlapping."""
    v4, v6, asn = int(ipaddress.IPv4Address("1.0.0.0")), 0x2000 << 112, 1000
    for i in range(n):
        status = STATUSES[i % len(STATUSES)]
        free = status in ("available", "reserved")
        cc = "ZZ" if free else COUNTRIES[i % len(COUNTRIES)]
        date = "" if free else f"{1990 + i % 34}{1 + i % 12:02d}{1 + i % 28:02d}"
        holder = "" if free else f"{(i * 2654435761) % 50_000:08X}"
        gap = i % 97 == 0  # now and then a hole: the file's space is many pools
        r = i % 20
        if r < 12:
            count = IPV4_COUNTS[i % len(IPV4_COUNTS)]
            v4 += 4096 if gap else 0
            start, v4 = str(ipaddress.IPv4Address(v4)), v4 + count
            yield f"bench|{cc}|ipv4|{start}|{count}|{date}|{status}|{holder}\n", "ipv4"
        elif r < 17:
            length = IPV6_LENGTHS[i % len(IPV6_LENGTHS)]
            size = 1 << (128 - length)
            v6 = -(-(v6 + (1 << 96 if gap else 0)) // size) * size  # aligned
            start, v6 = str(ipaddress.IPv6Address(v6)), v6 + size
            yield f"bench|{cc}|ipv6|{start}|{length}|{date}|{status}|{holder}\n", "ipv6"
        else:
            count = ASN_COUNTS[i % len(ASN_COUNTS)]
            asn += 100 if gap else 0
            start, asn = str(asn), asn + count
            yield f"bench|{cc}|asn|{start}|{count}|{date}|{status}|{holder}\n", "asn"


def write_file(path: Path, lines: int) -> None:
    n = max(lines - HEADER, 0)
    per_kind = {"ipv4": 0, "ipv6": 0, "asn": 0}
    for _, kind in records(n):
        per_kind[kind] += 1
    with open(path, "w", encoding="ascii") as f:
        f.write(f"2.3|bench|20260301|{n}|19900101|20260301|+0000\n")
        for kind in ("asn", "ipv4", "ipv6"):
            f.write(f"bench|*|{kind}|*|{per_kind[kind]}|summary\n")
        f.writelines(line for line, _ in records(n))


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def comity_import(root: Path, path: Path, lines: int) -> dict[str, Any]:
    init_node(root / "node", name="Bench", kind=NodeKind.CERT, jurisdiction="FR",
              url="http://127.0.0.1:1", languages=["en"], clock=SystemClock())
    node = Node.open(Settings(data_dir=root / "node"))
    try:
        out: dict[str, Any] = {}
        for phase in ("import", "reimport"):
            t = time.perf_counter()
            with open(path, "rb") as f:
                s = import_delegated(node.sessions, f, now=node.clock.now())
            elapsed = time.perf_counter() - t
            out[phase] = {
                "seconds": round(elapsed, 3),
                "s_per_100k_lines": round(elapsed / lines * 100_000, 3),
                "lines_per_s": round(lines / elapsed),
                "delegations": sum(s.delegations.values()), "pools": s.pools_added,
                "entities": s.entities_added, "malformed": s.malformed_total,
                "overlaps": s.overlaps, "warnings": s.warnings,
                "peak_rss_mib_so_far": peak_rss_mib()}
        with read_scope(node.sessions) as session:
            out["stored_delegations"] = node.registry.count(session)
        return out
    finally:
        node.close()


def _keys(kind: str, start: str, value: str) -> tuple[str, str]:
    if kind == "ipv4":
        first = int(ipaddress.IPv4Address(start))
        return f"{first:08x}", f"{first + int(value) - 1:08x}"
    if kind == "ipv6":
        net = ipaddress.IPv6Network(f"{start}/{value}")
        return f"{int(net.network_address):032x}", f"{int(net.broadcast_address):032x}"
    return f"{int(start):08x}", f"{int(start) + int(value) - 1:08x}"


def raw_baseline(root: Path, path: Path, lines: int) -> dict[str, Any]:
    t = time.perf_counter()
    conn = sqlite3.connect(root / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE delegations (kind TEXT, start_key TEXT, end_key TEXT, "
                 "holder TEXT, country TEXT, status TEXT, registered TEXT)")
    rows = []
    with open(path, encoding="ascii") as f:
        for line in f:
            p = line.rstrip("\n").split("|")
            if len(p) < 8 or p[1] == "*" or p[6] == "available":
                continue
            a, b = _keys(p[2], p[3], p[4])
            rows.append((p[2], a, b, p[7] or None, p[1], p[6], p[5] or None))
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO delegations VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    conn.close()
    elapsed = time.perf_counter() - t
    return {"seconds": round(elapsed, 3),
            "s_per_100k_lines": round(elapsed / lines * 100_000, 3),
            "lines_per_s": round(lines / elapsed), "rows": len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, help="write the result here as JSON")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="comity-bench-registry-") as tmp:
        root = Path(tmp)
        path = root / "delegated-bench-extended"
        t = time.perf_counter()
        write_file(path, args.lines)
        generated = round(time.perf_counter() - t, 1)
        comity = comity_import(root, path, args.lines)
        raw = raw_baseline(root, path, args.lines)
        size = path.stat().st_size
    result = {"benchmark": "registry-import", "backend": "sqlite", "lines": args.lines,
              "file_bytes": size, "generate_s": generated, "comity": comity, "raw": raw,
              "ratio": round(comity["import"]["seconds"] / raw["seconds"], 2),
              "peak_rss_mib": peak_rss_mib(),
              "targets": {"lines_per_s>=20000": comity["import"]["lines_per_s"] >= 20_000}}
    print(json.dumps(result), flush=True)
    write_results(args.out, result)


if __name__ == "__main__":
    main()
