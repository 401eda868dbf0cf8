"""Storage helpers: what BulkInsert writes is exactly what the ORM writes, on both backends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Table, select, text

from comity.config import Settings
from comity.db import (
    BulkInsert,
    make_engine,
    plain_rows,
    session_scope,
    sessionmaker_for,
    upgrade,
)
from comity.sharing.models import StixObject

COLUMNS = ("collection_id", "kind", "object_id", "type", "spec_version", "version",
           "version_at", "date_added", "latest", "first", "deleted", "revoked", "tlp",
           "origin", "received_under", "recipients", "size", "body", "provenance")


def _values(i: int, at: dt.datetime) -> dict[str, Any]:
    # Whole seconds and zero microseconds are the values a naive conversion gets wrong.
    return {"collection_id": "c", "kind": "object", "object_id": f"indicator--{i}",
            "type": "indicator", "spec_version": "2.1", "version": "v",
            "version_at": at + dt.timedelta(microseconds=i * 250_000),
            "date_added": at, "latest": i % 2 == 0, "first": True, "deleted": False,
            "revoked": False, "tlp": None if i else "red", "origin": None,
            "received_under": None, "recipients": None, "size": 2, "body": b"{}",
            "provenance": None}


def test_bulk_insert_stores_what_the_orm_stores(tmp_path: Path,
                                                db_url_factory: Callable[[str], str]) -> None:
    engine = make_engine(Settings(data_dir=tmp_path, database_url=db_url_factory("b")))
    try:
        upgrade(engine)
        sessions = sessionmaker_for(engine)
        at = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
        rows = [_values(i, at) for i in range(6)]
        with session_scope(sessions) as session:
            session.add_all(StixObject(**{**r, "collection_id": "orm"}) for r in rows)
        insert = BulkInsert(cast(Table, StixObject.__table__), COLUMNS)
        with session_scope(sessions) as session:
            insert(session.connection(),
                   [tuple({**r, "collection_id": "bulk"}[c] for c in COLUMNS) for r in rows])
        with engine.connect() as conn:
            stored = {cid: conn.execute(text(
                "SELECT object_id, CAST(version_at AS TEXT), CAST(date_added AS TEXT), latest, "
                "first, tlp, body FROM stix_objects WHERE collection_id = :c ORDER BY seq"),
                {"c": cid}).all() for cid in ("orm", "bulk")}
        assert stored["bulk"] == stored["orm"]
        assert len(stored["bulk"]) == 6
        with session_scope(sessions) as session:
            # Compared as the ORM binds a datetime: equal values match exactly.
            hits = session.scalars(select(StixObject.object_id).where(
                StixObject.collection_id == "bulk", StixObject.version_at == at)).all()
        assert hits == ["indicator--0"]
    finally:
        engine.dispose()


def test_bulk_insert_refuses_an_unknown_column() -> None:
    with pytest.raises(ValueError, match="no column 'colour'"):
        BulkInsert(cast(Table, StixObject.__table__), ("object_id", "colour"))


def test_plain_rows_converts_like_the_orm(tmp_path: Path,
                                          db_url_factory: Callable[[str], str]) -> None:
    engine = make_engine(Settings(data_dir=tmp_path, database_url=db_url_factory("p")))
    try:
        upgrade(engine)
        sessions = sessionmaker_for(engine)
        at = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
        with session_scope(sessions) as session:
            session.add_all(StixObject(**_values(i, at)) for i in range(3))
        q = select(StixObject.object_id, StixObject.date_added, StixObject.latest,
                   StixObject.body, StixObject.tlp).order_by(StixObject.seq)
        with session_scope(sessions) as session:
            plain = plain_rows(session.connection(), q)
            orm = [tuple(r) for r in session.execute(q)]
        assert plain == orm
        assert plain[0][1] == at
        assert plain[0][1].tzinfo is not None
        assert [type(v) for v in plain[1]] == [str, dt.datetime, bool, bytes, type(None)]
    finally:
        engine.dispose()
