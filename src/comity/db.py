"""Storage: SQLAlchemy engine and sessions for SQLite (default) and PostgreSQL.

The schema is owned by Alembic migrations (``comity/migrations``); nothing
calls ``create_all``. SQLite runs in WAL mode with ``BEGIN IMMEDIATE`` for
every transaction, so two writers never deadlock on a lock upgrade, and with
``synchronous=FULL`` by default so a commit that was acknowledged survives a
crash. PostgreSQL runs at READ COMMITTED; code that needs a single winner
relies on unique constraints or row locks, never on read-then-write.

Trust assumptions: the database belongs to this node alone and is trusted.

Example::

    engine = make_engine(settings)
    upgrade(engine)
    with session_scope(sessionmaker_for(engine)) as session:
        ...
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    Table,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker
from sqlalchemy.pool import QueuePool
from sqlalchemy.types import TypeDecorator

from comity.config import Settings

__all__ = [
    "Base",
    "BulkInsert",
    "PreparedSelect",
    "UTCDateTime",
    "advisory_lock",
    "bigint_pk",
    "make_engine",
    "read_scope",
    "session_scope",
    "sessionmaker_for",
    "upgrade",
]

READ_ONLY = "comity_read_only"
WRITE_LOCK = "comity.write_lock"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every Comity table."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware values")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    # SQLite stores the text of SQLAlchemy's DATETIME ("YYYY-MM-DD HH:MM:SS.ffffff",
    # which sorts as time does). Its own conversion builds a dictionary per value, and
    # was a tenth of the cost of storing a STIX object; these make and read the same
    # text with the datetime's C methods (tests/test_db.py holds them to the original).

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: dt.datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetimes are not stored; use UTC-aware values")
            if value.tzinfo is not dt.UTC:
                value = value.astimezone(dt.UTC)
            # A tuple, not replace() and isoformat(): a third of their cost.
            return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031
                value.year, value.month, value.day, value.hour, value.minute, value.second,
                value.microsecond)
        return process

    def result_processor(self, dialect: Dialect, coltype: object
                         ) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> dt.datetime | None:
            if value is None:
                return None
            return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
        return process


# SQLite only auto-increments INTEGER PRIMARY KEY; BigInteger elsewhere.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
bigint_pk = Annotated[int, mapped_column(BigIntPK, primary_key=True, autoincrement=True)]


# Text that can stand between quotes in SQL as it is: no quote, backslash or
# anything else a dialect could read as more than the value.
_PLAIN_TEXT = re.compile(r"[0-9A-Za-z .:+_-]{0,200}")

_Converters = list[tuple[int, Callable[[Any], Any]]]


class BulkInsert:
    """An INSERT of many rows handed to the driver's ``executemany`` as plain tuples.

    For hot write paths only. SQLAlchemy's own executemany builds and
    processes a parameter dictionary for every row, which costs more than
    SQLite's insert of a small row. Here rows are tuples in ``columns``
    order; only the columns whose type converts values on the way in (the
    datetimes; not booleans and bytes, which the drivers take as they are)
    go through that conversion, and a value equal to the one in
    the row before (one arrival time for a whole batch) is converted once.

    Values every row of a call shares (its collection, its arrival time) are
    passed once as ``shared`` and left out of the rows. Binding costs the
    driver about as much per value as storing it; a shared value is written
    into the statement instead, as a SQL literal, when it is NULL, a boolean,
    an integer, or (once converted) text of :data:`_PLAIN_TEXT`, which has
    nothing to escape. Any other shared value is bound, once per row.
    """

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        missing = [name for name in self.columns if name not in table.c]
        if missing:  # a typo fails at import, not at the first write
            raise ValueError(f"{table.name} has no column {missing[0]!r}")
        # Per dialect and set of shared columns: the converters of the rows' columns.
        self._plans: dict[tuple[str, frozenset[str]], _Converters] = {}
        self._processors: dict[tuple[str, str], Callable[[Any], Any] | None] = {}

    def _processor(self, dialect: Dialect, name: str) -> Callable[[Any], Any] | None:
        key = (dialect.name, name)
        if key not in self._processors:
            # dialect_impl: a TypeDecorator alone would skip the dialect's own step
            # (SQLite's fixed-width datetime text, which ordering relies on).
            type_ = self.table.c[name].type
            # Both drivers take bool and bytes as they are (SQLite: 1/0 and a
            # BLOB; psycopg: boolean and bytea), as these types would make them.
            self._processors[key] = (None if isinstance(type_, Boolean | LargeBinary)
                                     else type_.dialect_impl(dialect).bind_processor(dialect))
        return self._processors[key]

    def _converters(self, dialect: Dialect, shared: frozenset[str]) -> _Converters:
        plan = self._plans.get((dialect.name, shared))
        if plan is None:
            plan = []
            for i, name in enumerate(c for c in self.columns if c not in shared):
                proc = self._processor(dialect, name)
                if proc is not None:
                    plan.append((i, proc))
            self._plans[(dialect.name, shared)] = plan
        return plan

    @staticmethod
    def _literal(value: Any, dialect: Dialect) -> str | None:
        """``value`` (converted) as a SQL literal, or None if it must be bound."""
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            if dialect.name == "sqlite":
                return "1" if value else "0"
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, dt.datetime):
            value = value.isoformat()  # PostgreSQL's driver takes datetimes as they are
        if isinstance(value, str) and _PLAIN_TEXT.fullmatch(value):
            return f"'{value}'"
        return None

    def __call__(self, conn: Connection, rows: Sequence[tuple[Any, ...]],
                 shared: Mapping[str, Any] | None = None) -> None:
        """Insert ``rows``: tuples of the columns not in ``shared``, in ``columns`` order."""
        if not rows:
            return
        dialect = conn.dialect
        shared = shared or {}
        unknown = [name for name in shared if name not in self.columns]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not one of the columns inserted")
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.paramstyle in ("qmark", "numeric") else "%s"
        names = [c for c in self.columns if c not in shared]
        marks = [mark] * len(names)
        tail: list[Any] = []  # shared values bound with every row
        for name, value in shared.items():
            proc = self._processor(dialect, name)
            if value is not None and proc is not None:
                value = proc(value)
            names.append(name)
            literal = self._literal(value, dialect)
            if literal is None:
                marks.append(mark)
                tail.append(value)
            else:
                marks.append(literal)
        # Names come from the table definition; literals only from _literal.
        sql = (f"INSERT INTO {quote(self.table.name)} "  # noqa: S608
               f"({', '.join(quote(c) for c in names)}) VALUES ({', '.join(marks)})")
        converters = self._converters(dialect, frozenset(shared))
        extra = tuple(tail)
        if converters or extra:
            out: list[tuple[Any, ...]] = []
            last: dict[int, tuple[Any, Any]] = {}
            for row in rows:
                values = list(row)
                for i, proc in converters:
                    v = values[i]
                    if v is None:
                        continue
                    seen = last.get(i)
                    if seen is not None and seen[0] == v:
                        values[i] = seen[1]
                    else:
                        values[i] = converted = proc(v)
                        last[i] = (v, converted)
                out.append((*values, *extra))
            rows = out
        conn.exec_driver_sql(sql, list(rows))


def advisory_lock(session: Session, name: str) -> None:
    """Hold the lock ``name`` until the transaction ends, so its writers go one at a time.

    PostgreSQL: a transaction-scoped advisory lock keyed by the name's CRC-32.
    SQLite needs nothing: every write transaction holds the database's single
    write lock from its start.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                        {"k": zlib.crc32(name.encode())})


class PreparedSelect:
    """A SELECT built once per shape, compiled once per dialect, then run on the driver.

    For the hottest reads (a TAXII page, the version check of a TAXII add, an
    RDAP lookup). On every execute SQLAlchemy builds the expression anew,
    computes its cache key and sets up an execution context; for a page of a
    thousand rows that cost as much as SQLite's own work. Here ``build(shape)``
    makes the statement once per shape, with every value a named
    ``bindparam``; each call binds the values through their columns' own
    converters (so they compare with stored values as the ORM's would) and
    returns the driver's tuples, only the columns whose type converts values
    on the way out converted.

    A shape is any hashable that fixes the statement's text (which filters,
    how many values in an ``IN``); the last ``shapes`` used are kept. The
    connection's transaction must have begun (any statement of the session, or
    ``session.connection()``, begins it).
    """

    def __init__(self, build: Callable[[Any], Select[*tuple[Any, ...]]], *,
                 shapes: int = 128) -> None:
        self._build = build
        self._shapes = shapes
        self._plans: OrderedDict[tuple[str, Any], _Plan] = OrderedDict()
        self._lock = threading.Lock()

    def rows(self, conn: Connection, shape: Any, params: Mapping[str, Any]
             ) -> list[tuple[Any, ...]]:
        """The rows of the statement of ``shape`` with ``params`` as its values."""
        plan = self._plan(conn.dialect, shape)
        # The driver's own cursor, on the connection's transaction (begun by then).
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(plan.sql, plan.bind(params))
            rows: list[tuple[Any, ...]] = cursor.fetchall()
        finally:
            cursor.close()
        if not plan.out:
            return rows
        converted = []
        for row in rows:
            values = list(row)
            for i, convert in plan.out:
                values[i] = convert(values[i])
            converted.append(tuple(values))
        return converted

    def _plan(self, dialect: Dialect, shape: Any) -> _Plan:
        key = (dialect.name, shape)
        with self._lock:
            plan = self._plans.get(key)
            if plan is not None:
                self._plans.move_to_end(key)
                return plan
        plan = _Plan.compile(self._build(shape), dialect)
        with self._lock:
            self._plans[key] = plan
            while len(self._plans) > self._shapes:
                self._plans.popitem(last=False)
        return plan


@dataclass(frozen=True)
class _Plan:
    """One compiled statement: its text, how to bind its values, how to read its rows."""

    sql: str
    names: tuple[str, ...]  # in the order of the statement's markers (repeats included)
    unique: tuple[str, ...]
    positional: bool
    defaults: dict[str, Any]
    binders: dict[str, Callable[[Any], Any]]
    out: tuple[tuple[int, Callable[[Any], Any]], ...]

    @classmethod
    def compile(cls, stmt: Select[*tuple[Any, ...]], dialect: Dialect) -> _Plan:
        compiled = stmt.compile(dialect=dialect)
        sql = compiled.string
        if "POSTCOMPILE" in sql:  # an expanding IN: its text depends on the values
            raise ValueError("a prepared statement takes one bindparam per value")
        positional = bool(compiled.positional)
        names = tuple(compiled.positiontup or ()) if positional else tuple(compiled.binds)
        binders: dict[str, Callable[[Any], Any]] = {}
        defaults: dict[str, Any] = {}
        for name, bind in compiled.binds.items():
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                binders[name] = proc
            if bind.value is not None:  # a literal of the statement, not a parameter
                defaults[name] = bind.value
        out = []
        for i, col in enumerate(stmt.selected_columns):
            proc_out = col.type.dialect_impl(dialect).result_processor(dialect, None)
            if proc_out is not None:
                out.append((i, proc_out))
        return cls(sql, names, tuple(dict.fromkeys(names)), positional, defaults, binders,
                   tuple(out))

    def bind(self, params: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self.unique:
            value = params[name] if name in params else self.defaults[name]
            binder = self.binders.get(name)
            values[name] = value if binder is None or value is None else binder(value)
        if self.positional:
            return tuple(values[name] for name in self.names)
        return values


def make_engine(settings: Settings) -> Engine:
    """Create the engine for ``settings``, with per-backend durability settings."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        return _sqlite_engine(url, settings.sqlite_synchronous)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)


def _sqlite_engine(url: str, synchronous: str) -> Engine:
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # A pooled connection is used by one thread at a time, so sharing the
    # pool across threads is safe once the same-thread check is off.
    engine = create_engine(url, poolclass=QueuePool, pool_size=4, max_overflow=12,
                           connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE itself.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front (no deadlock on upgrade);
        # readers never wait for it, WAL gives them a snapshot.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def sessionmaker_for(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit.

    For SQLite it carries a lock that :func:`session_scope` holds for each
    write transaction: threads of one process then queue for the single write
    lock in order, instead of SQLite's busy handler making them sleep and
    retry (which turns contention into latencies of hundreds of ms).
    """
    info: dict[str, Any] = {}
    if engine.dialect.name == "sqlite":
        info[WRITE_LOCK] = threading.RLock()
    return sessionmaker(engine, expire_on_commit=False, info=info)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception."""
    lock = factory.kw.get("info", {}).get(WRITE_LOCK) or nullcontext()
    with lock, factory() as session, session.begin():
        yield session


@contextmanager
def read_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A read-only transaction: it never takes SQLite's write lock.

    It ends with a commit that writes nothing (not a rollback, which would
    expire the objects read), so what was loaded stays usable afterwards.
    """
    with factory() as session:
        session.connection(execution_options={READ_ONLY: True})
        yield session
        session.commit()


@contextmanager
def snapshot_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A read-only transaction that sees one snapshot throughout, on both backends.

    For long reads that must be consistent across many queries (verifying the
    log, exporting a collection page by page). SQLite's read transaction is
    one snapshot already; PostgreSQL's READ COMMITTED takes one per statement,
    so this asks it for REPEATABLE READ. Nothing is written; it ends with a
    rollback.
    """
    with factory() as session:
        options: dict[str, Any] = {READ_ONLY: True}
        if session.get_bind().dialect.name == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"
        session.connection(execution_options=options)
        try:
            yield session
        finally:
            session.rollback()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` with Alembic."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
