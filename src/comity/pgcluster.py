"""A throw-away PostgreSQL 15 cluster, for the test suite and the benchmarks.

Started from Debian's server binaries in a temporary directory owned by the
``postgres`` user (PostgreSQL refuses to run as root), on a free loopback
port, with trust authentication on loopback only, and removed when stopped.
If the binaries are missing it raises: storage tests must run on both
backends, never skip one. Not for production nodes.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

__all__ = ["Cluster"]

BIN = Path(os.environ.get("COMITY_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One PostgreSQL cluster in a temporary directory."""

    def __init__(self) -> None:
        if not (BIN / "initdb").exists():
            raise RuntimeError(
                f"PostgreSQL 15 server binaries not found in {BIN}; run "
                "scripts/ensure-postgres.sh (make test does) or set COMITY_PG_BIN")
        self.root = Path(tempfile.mkdtemp(prefix="comity-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o700)

    def _run(self, *args: str) -> None:
        # Our own fixed binaries with arguments we build: no untrusted input.
        cmd = [str(a) for a in args]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, cwd="/")  # noqa: S603

    def start(self) -> None:
        """initdb and start; raises CalledProcessError with PostgreSQL's output."""
        self._run(str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-instructions")
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                "-c max_connections=300 -c shared_buffers=128MB")
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
                  str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        """Stop immediately and delete the cluster."""
        try:
            self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def admin_url(self) -> str:
        """libpq URL of the maintenance database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """Create a fresh database; returns its SQLAlchemy URL."""
        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name is generated above
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"
