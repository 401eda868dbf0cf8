"""ledger: checkpoint history, cosignatures, witness state, alarms

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import comity.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, comity.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "log_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=False),
        _ts("signed_at"),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_log_checkpoints")),
    )
    op.create_table(
        "log_cosignatures",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("witness_id", sa.String(length=32), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        _ts("cosigned_at"),
        sa.PrimaryKeyConstraint("size", "witness_id", name=op.f("pk_log_cosignatures")),
    )
    op.create_table(
        "witness_progress",
        sa.Column("peer_id", sa.String(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("peer_id", name=op.f("pk_witness_progress")),
    )
    op.create_table(
        "witnessed_logs",
        sa.Column("peer_id", sa.String(length=32), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=False),
        _ts("updated_at"),
        _ts("recorded_at", nullable=True),
        sa.PrimaryKeyConstraint("peer_id", name=op.f("pk_witnessed_logs")),
    )
    op.create_table(
        "peer_checkpoints",
        sa.Column("peer_id", sa.String(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=False),
        _ts("seen_at"),
        sa.Column("cosignature", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("peer_id", "size", name=op.f("pk_peer_checkpoints")),
    )
    op.create_table(
        "ledger_alarms",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("peer_id", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        _ts("raised_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_alarms")),
    )


def downgrade() -> None:
    for table in ("ledger_alarms", "peer_checkpoints", "witnessed_logs", "witness_progress",
                  "log_cosignatures", "log_checkpoints"):
        op.drop_table(table)
