"""Storage helpers: BulkInsert and PreparedSelect write and read exactly as the ORM, on both
backends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Select, Table, bindparam, event, select, text

from comity.config import Settings
from comity.db import (
    BulkInsert,
    PreparedSelect,
    UTCDateTime,
    make_engine,
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


SHARED = ("collection_id", "kind", "date_added", "deleted", "origin", "received_under",
          "recipients", "provenance")


@pytest.mark.parametrize("collection", ["c-1", "x'); DROP TABLE stix_objects; --"])
def test_bulk_insert_shared_values_are_stored_as_the_orm_stores_them(
        tmp_path: Path, db_url_factory: Callable[[str], str], collection: str) -> None:
    """Shared values are written as literals only when nothing in them needs escaping."""
    engine = make_engine(Settings(data_dir=tmp_path, database_url=db_url_factory("s")))
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_a: statements.append(sql))
    try:
        upgrade(engine)
        sessions = sessionmaker_for(engine)
        at = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
        shared = {"collection_id": collection, "kind": "object", "date_added": at,
                  "deleted": False, "origin": None, "received_under": "agreement-1",
                  "recipients": '["a", "b"]', "provenance": 7}
        rows = [{**_values(i, at), **shared} for i in range(4)]
        with session_scope(sessions) as session:
            session.add_all(StixObject(**{**r, "object_id": "orm-" + r["object_id"]})
                            for r in rows)
        insert = BulkInsert(cast(Table, StixObject.__table__), COLUMNS)
        statements.clear()
        with session_scope(sessions) as session:
            insert(session.connection(),
                   [tuple(r[c] for c in COLUMNS if c not in SHARED) for r in rows],
                   shared=shared)
        [sql] = [s for s in statements if s.startswith("INSERT")]
        with engine.connect() as conn:
            stored = [conn.execute(text(
                "SELECT collection_id, kind, CAST(date_added AS TEXT), deleted, origin, "
                "received_under, recipients, provenance, CAST(version_at AS TEXT), latest "
                "FROM stix_objects WHERE object_id LIKE :p ORDER BY seq"), {"p": p}).all()
                for p in ("orm-%", "indicator-%")]
        assert stored[1] == stored[0]
        assert len(stored[1]) == 4
        assert stored[1][0][0] == collection
        # Plain text and numbers are in the statement; JSON (quotes) never is.
        assert "'agreement-1'" in sql
        assert " 7" in sql or ",7" in sql
        assert '"a"' not in sql
        assert (f"'{collection}'" in sql) is (collection == "c-1")
    finally:
        engine.dispose()


def test_bulk_insert_refuses_a_shared_column_it_does_not_insert(tmp_path: Path) -> None:
    engine = make_engine(Settings(data_dir=tmp_path))
    try:
        upgrade(engine)
        insert = BulkInsert(cast(Table, StixObject.__table__), ("object_id",))
        with engine.begin() as conn, pytest.raises(ValueError, match="'colour' is not one"):
            insert(conn, [("x",)], shared={"colour": "red"})
    finally:
        engine.dispose()


def test_bulk_insert_refuses_an_unknown_column() -> None:
    with pytest.raises(ValueError, match="no column 'colour'"):
        BulkInsert(cast(Table, StixObject.__table__), ("object_id", "colour"))


def test_prepared_select_binds_and_converts_like_the_orm(
        tmp_path: Path, db_url_factory: Callable[[str], str]) -> None:
    engine = make_engine(Settings(data_dir=tmp_path, database_url=db_url_factory("p")))
    try:
        upgrade(engine)
        sessions = sessionmaker_for(engine)
        at = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
        with session_scope(sessions) as session:
            session.add_all(StixObject(**_values(i, at)) for i in range(3))
        built: list[int] = []

        def build(n: int) -> Select[*tuple[Any, ...]]:
            built.append(n)
            ids = [bindparam(f"id{i}") for i in range(n)]
            return (select(StixObject.object_id, StixObject.date_added, StixObject.latest,
                           StixObject.body, StixObject.tlp)
                    .where(StixObject.object_id.in_(ids), StixObject.kind == "object",
                           StixObject.version_at >= bindparam("since"))
                    .order_by(StixObject.seq))

        prepared = PreparedSelect(build, shapes=1)
        # A whole second and one a quarter later: bound as the ORM binds them, or
        # the comparison with the stored text goes wrong at the edge.
        since = at + dt.timedelta(microseconds=250_000)
        with session_scope(sessions) as session:
            got = prepared.rows(session.connection(), 2, {
                "id0": "indicator--0", "id1": "indicator--1", "since": since})
            orm = [tuple(r) for r in session.execute(build(2), {
                "id0": "indicator--0", "id1": "indicator--1", "since": since})]
            assert got == orm
            assert [r[0] for r in got] == ["indicator--1"]
            assert got[0][1] == at
            assert got[0][1].tzinfo is not None
            assert [type(v) for v in got[0]] == [str, dt.datetime, bool, bytes, type(None)]
            # A shape is built once while kept; one more shape evicts the oldest.
            prepared.rows(session.connection(), 2, {"id0": "x", "id1": "y", "since": at})
            prepared.rows(session.connection(), 1, {"id0": "indicator--2", "since": at})
            prepared.rows(session.connection(), 2, {"id0": "x", "id1": "y", "since": at})
        assert built == [2, 2, 1, 2]  # the ORM's own run of build(2) included
        with pytest.raises(KeyError, match="since"), session_scope(sessions) as session:
            prepared.rows(session.connection(), 1, {"id0": "x"})
    finally:
        engine.dispose()


def test_prepared_select_refuses_an_expanding_in() -> None:
    from sqlalchemy.dialects import sqlite

    prepared = PreparedSelect(lambda _: select(StixObject.seq).where(
        StixObject.object_id.in_(["a", "b"])))
    with pytest.raises(ValueError, match="one bindparam per value"):
        prepared._plan(sqlite.dialect(), None)


def test_utc_datetime_on_sqlite_is_sqlalchemys_own_text() -> None:
    """UTCDateTime's quick SQLite conversions make and read exactly SQLAlchemy's text."""
    from sqlalchemy import DateTime
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect)
    bind, read = ours.bind_processor(dialect), ours.result_processor(dialect, None)
    theirs = DateTime().dialect_impl(dialect)
    their_bind, their_read = theirs.bind_processor(dialect), theirs.result_processor(dialect,
                                                                                      None)
    assert bind is not None
    assert read is not None
    assert their_bind is not None
    assert their_read is not None
    paris = dt.timezone(dt.timedelta(hours=2))
    values = [dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC),  # no fraction at all
              dt.datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=dt.UTC),
              dt.datetime(999, 1, 2, 3, 4, 5, 600_000, tzinfo=dt.UTC),  # a short year
              dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC),
              dt.datetime(2026, 3, 1, 1, 30, tzinfo=paris)]  # the day before, in UTC
    for value in values:
        text_ = bind(value)
        assert text_ == their_bind(value.astimezone(dt.UTC).replace(tzinfo=None))
        assert read(text_) == value
        assert read(text_).tzinfo is dt.UTC
        assert read(text_) == their_read(text_).replace(tzinfo=dt.UTC)
    # Text SQLAlchemy itself reads (fewer digits, none) reads the same here.
    for stored in ("2026-03-01 12:00:00", "2026-03-01 12:00:00.5", "2026-03-01 12:00:00.123"):
        assert read(stored) == their_read(stored).replace(tzinfo=dt.UTC)
    assert bind(None) is None
    assert read(None) is None
    with pytest.raises(ValueError, match="naive"):
        bind(dt.datetime(2026, 3, 1))
