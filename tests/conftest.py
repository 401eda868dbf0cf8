"""Shared fixtures: both storage backends, and nodes wired together in-process.

``backend`` is parametrised over SQLite and PostgreSQL, so every test that
asks for a node or a database runs on both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from comity.pgcluster import Cluster
from tests.support import LocalFederation


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url_factory(backend: str, request: pytest.FixtureRequest,
                   tmp_path: Path) -> Callable[[str], str]:
    """Returns a function giving a fresh database URL for a node name."""
    if backend == "sqlite":
        return lambda name: ""  # default: SQLite inside the node's data directory
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    return lambda name: cluster.new_database()


@pytest.fixture
def fed(tmp_path: Path, db_url_factory: Callable[[str], str]) -> Iterator[LocalFederation]:
    federation = LocalFederation(tmp_path, db_url_factory)
    try:
        yield federation
    finally:
        federation.close()
