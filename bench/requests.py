"""Benchmark: listing and filtering 100,000 requests through the API, page by page.

One node (``comity node serve``, SQLite by default, PostgreSQL with
``--postgres``) holding ``--requests`` requests of every type, state, offence,
direction and partner country, inserted in bulk. For each listing scenario
(no filter, by state, by type, by direction and state, by country, overdue,
and 20 pages followed by their cursors), ``--pages`` pages of 50 are fetched
over HTTP with the node's API token; per page the client-side time is kept.
Side by side, the same page queries run straight against the database (SQL
text, no ORM, no HTTP): the raw baseline.

Target: p95 under 50 ms per page. Prints one JSON object per backend.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, insert, text

from bench import write_results
from bench.federation import percentile
from comity.localnet import LocalNode, spawn
from comity.node import Node
from comity.pgcluster import Cluster
from comity.requests.lifecycle import State
from comity.requests.models import Request

TYPES = ["expedited-preservation", "mla-stored-data", "mla-general", "immediate-assistance",
         "emergency-disclosure", "subscriber-information", "spontaneous-information"]
OFFENCES = ["illegal-access", "computer-related-fraud", "csam", "data-interference",
            "system-interference", "misuse-of-devices"]
COUNTRIES = ["FR", "KE", "CN", "BR", "IN", "ZA", "DE", "JP", "NG", "AR", "EG", "ID"]
STATES = [s.value for s in State]


def fill(node: Node, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    now = node.clock.now()
    peers = [uuid.uuid4().hex for _ in COUNTRIES]
    rows = []
    for i in range(n):
        c = rng.randrange(len(COUNTRIES))
        created = now - dt.timedelta(minutes=n - i)
        state = rng.choice(STATES)
        due = (created + dt.timedelta(days=rng.randint(1, 90))
               if state not in ("closed", "executed", "refused", "draft") else None)
        rows.append({
            "request_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "direction": rng.choice(("in", "out")), "peer_id": peers[c],
            "peer_country": COUNTRIES[c], "agreement_id": str(uuid.uuid4()),
            "type": rng.choice(TYPES), "instrument": "budapest",
            "offence": rng.choice(OFFENCES), "reference": f"REF-{i:07d}",
            "urgent": rng.random() < 0.2, "emergency": rng.random() < 0.05,
            "document": "{}", "created_at": created, "state": state, "updated_at": created,
            "sent_at": created, "due_at": due, "due_kind": "response" if due else None})
    with node.sessions.begin() as session:
        for start in range(0, n, 10_000):
            session.execute(insert(Request), rows[start:start + 10_000])
    # What autovacuum (PostgreSQL) or a periodic optimize would have done by
    # the time a real node holds this many requests: statistics for the planner.
    with node.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


SCENARIOS: dict[str, dict[str, Any]] = {
    "all": {},
    "state": {"state": "under_assessment"},
    "type": {"type": "mla-stored-data"},
    "direction+state": {"direction": "in", "state": "acknowledged"},
    "country": {"country": "KE"},
    "overdue": {"overdue": "true"},
}


def _raw_sql(params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    where, args = [], {}
    for key, col in (("state", "state"), ("type", "type"), ("direction", "direction"),
                     ("country", "peer_country")):
        if key in params:
            where.append(f"{col} = :{key}")
            args[key] = params[key]
    if params.get("overdue"):
        where.append("due_at < :now")
        args["now"] = dt.datetime.now(dt.UTC)
    sql = ("SELECT * FROM requests" + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY seq DESC LIMIT 51")
    return sql, args


def timed(fn: Callable[[], Any], pages: int) -> list[float]:
    out = []
    for _ in range(pages):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def stats(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(ms, 50), 2), "p95_ms": round(percentile(ms, 95), 2),
            "max_ms": round(max(ms), 2)}


def run(backend: str, cluster: Cluster | None, n: int, pages: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"comity-bench-requests-{backend}-") as tmp:
        root = Path(tmp)
        url = cluster.new_database() if cluster else ""
        node: LocalNode = spawn(root, "node", database_url=url, kind="central-authority")
        try:
            db = node.open_node()
            try:
                t = time.perf_counter()
                fill(db, n)
                fill_s = time.perf_counter() - t
                engine = create_engine(db.settings.resolved_database_url)
            finally:
                db.close()
            headers = {"authorization": f"Bearer {node.token}"}
            results: dict[str, Any] = {}
            with httpx.Client(base_url=node.url, headers=headers, trust_env=False,
                              timeout=30) as client, engine.connect() as conn:
                for name, params in SCENARIOS.items():
                    def page(p: dict[str, Any] = params) -> None:
                        r = client.get("/api/requests", params=p)
                        r.raise_for_status()

                    def raw(p: dict[str, Any] = params) -> None:
                        sql, args = _raw_sql(p)
                        conn.execute(text(sql), args).fetchall()

                    page()  # warm up the connection and the caches
                    results[name] = {"api": stats(timed(page, pages)),
                                     "raw_db": stats(timed(raw, pages))}
                # Following cursors: each next page of the whole list.
                cursor: list[str | None] = [None]

                def follow() -> None:
                    p = {"cursor": cursor[0]} if cursor[0] else {}
                    r = client.get("/api/requests", params=p).json()
                    assert len(r["items"]) == 50
                    cursor[0] = r["next"]

                results["cursor_pages"] = {"api": stats(timed(follow, min(pages, 1000)))}
            engine.dispose()
        finally:
            node.close()
    worst = max(v["api"]["p95_ms"] for v in results.values())
    return {"benchmark": "requests", "backend": backend, "requests": n,
            "pages_per_scenario": pages, "fill_s": round(fill_s, 2), "scenarios": results,
            "worst_p95_ms": worst, "targets": {"p95_ms<50": worst < 50}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--postgres", action="store_true", help="also run on PostgreSQL")
    ap.add_argument("--out", type=Path, help="write the results here as JSON")
    args = ap.parse_args()
    results = [run("sqlite", None, args.requests, args.pages)]
    print(json.dumps(results[-1]), flush=True)
    if args.postgres:
        cluster = Cluster()
        cluster.start()
        try:
            results.append(run("postgresql", cluster, args.requests, args.pages))
            print(json.dumps(results[-1]), flush=True)
        finally:
            cluster.stop()
    write_results(args.out, results)


if __name__ == "__main__":
    main()
