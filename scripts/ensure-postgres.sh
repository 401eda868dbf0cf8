#!/usr/bin/env bash
# Make sure Debian's PostgreSQL 15 server binaries are installed, for the
# throw-away clusters the test suite starts. Installs them when missing
# (needs root, as in CI); prints where they are.
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
if [ ! -x "$BIN/initdb" ] || [ ! -x "$BIN/pg_ctl" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "PostgreSQL 15 server is missing; run as root or: apt-get install postgresql-15" >&2
        exit 1
    fi
    echo "Installing PostgreSQL 15 server (Debian package postgresql-15) ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql-15 >/dev/null
fi
if ! id postgres >/dev/null 2>&1; then
    echo "the postgres system user is missing (the postgresql-15 package creates it)" >&2
    exit 1
fi
echo "$BIN"
