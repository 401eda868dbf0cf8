"""The migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from comity.config import Settings
from comity.db import make_engine, upgrade
from comity.tables import metadata


def test_no_drift_between_models_and_migrations(tmp_path: Path,
                                                db_url_factory: Callable[[str], str]) -> None:
    engine = make_engine(Settings(data_dir=tmp_path, database_url=db_url_factory("m")))
    try:
        upgrade(engine)
        upgrade(engine)  # idempotent
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        engine.dispose()
