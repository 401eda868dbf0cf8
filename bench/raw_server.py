"""The raw baseline for ``bench.federation``: a minimal endpoint that only inserts.

It accepts the same payloads the federation carries (a JSON list of signed
envelopes per POST), does no parsing beyond splitting the list, no signing and
no checks, and inserts each payload into one table in one transaction, with
the same durability settings a node uses (SQLite WAL + synchronous=FULL, or a
PostgreSQL commit). Run: ``python -m bench.raw_server DB_URL PORT``.
"""

from __future__ import annotations

import sqlite3
import sys
import threading

import orjson
import psycopg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def make_app(db_url: str) -> Starlette:
    lock = threading.Lock()
    if db_url.startswith("sqlite:///"):
        conn: object = sqlite3.connect(db_url.removeprefix("sqlite:///"),
                                       check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")  # type: ignore[attr-defined]
        conn.execute("PRAGMA synchronous=FULL")  # type: ignore[attr-defined]
        conn.execute("CREATE TABLE IF NOT EXISTS raw (id INTEGER PRIMARY KEY, "  # type: ignore[attr-defined]
                     "payload BLOB NOT NULL)")

        def insert(rows: list[bytes]) -> None:
            with lock:
                conn.execute("BEGIN IMMEDIATE")  # type: ignore[attr-defined]
                conn.executemany("INSERT INTO raw (payload) VALUES (?)",  # type: ignore[attr-defined]
                                 [(r,) for r in rows])
                conn.execute("COMMIT")  # type: ignore[attr-defined]
    else:
        pg = psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"))
        pg.execute("CREATE TABLE IF NOT EXISTS raw (id BIGSERIAL PRIMARY KEY, payload BYTEA)")
        pg.commit()

        def insert(rows: list[bytes]) -> None:
            with lock, pg.cursor() as cur:
                cur.executemany("INSERT INTO raw (payload) VALUES (%s)", [(r,) for r in rows])
                pg.commit()

    async def ingest(request: Request) -> Response:
        body = await request.body()
        items = orjson.loads(body)
        rows = [orjson.dumps(i) for i in items]
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(insert, rows)
        return Response(orjson.dumps({"stored": len(rows)}), media_type="application/json")

    return Starlette(routes=[Route("/ingest", ingest, methods=["POST"])])


if __name__ == "__main__":
    uvicorn.run(make_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]),
                log_level="warning", access_log=False)
