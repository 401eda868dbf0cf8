"""ledger: store the tree as C2SP tiles instead of hashes in Go tlog order

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

The tiles are rebuilt from the entry bundles, which hold every integrated
entry, so no stored hash has to be trusted or translated. The code is kept
here on purpose (not imported from the ledger) so this step never changes.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _bundle_entries(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 2], "big")
        out.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    return out


def _expand(hashes: list[bytes]) -> tuple[bytes, bytes | None]:
    """A tile's stored form (its hashes and 7 internal levels), and its root if full."""
    levels = [hashes]
    for _ in range(7):
        below = levels[-1]
        levels.append([hashlib.sha256(b"\x01" + below[i] + below[i + 1]).digest()
                       for i in range(0, len(below) - 1, 2)])
    top = levels[-1]
    root = hashlib.sha256(b"\x01" + top[0] + top[1]).digest() if len(hashes) == 256 else None
    return b"".join(b"".join(level) for level in levels), root


def upgrade() -> None:
    tiles = op.create_table(
        "log_tiles",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_log_tiles")),
    )
    conn = op.get_bind()
    size = conn.execute(sa.text("SELECT size FROM log_state")).scalar() or 0
    bundles = conn.execute(sa.text(
        "SELECT data FROM log_blocks WHERE kind = 'e' ORDER BY block"))
    level_hashes = [
        hashlib.sha256(b"\x00" + entry).digest()
        for (data,) in bundles for entry in _bundle_entries(bytes(data))][:size]
    level = 0
    while level_hashes:
        rows, above = [], []
        for index in range(0, len(level_hashes), 256):
            stored, root = _expand(level_hashes[index:index + 256])
            rows.append({"level": level, "idx": index // 256, "data": stored})
            if root is not None:
                above.append(root)
        op.bulk_insert(tiles, rows)
        level_hashes, level = above, level + 1
    conn.execute(sa.text("DELETE FROM log_blocks WHERE kind = 'h'"))


def downgrade() -> None:
    raise NotImplementedError("the Go tlog hash layout is not rebuilt; restore a backup")
