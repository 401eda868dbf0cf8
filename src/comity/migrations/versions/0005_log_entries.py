"""ledger: openings of this node's entries; log indexes on federation messages

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_openings",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("opening", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_log_openings")),
    )
    op.create_index(op.f("ix_log_openings_kind"), "log_openings", ["kind"])
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("log_index", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("receiver_log_index", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("log_index", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("log_index")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("receiver_log_index")
        batch.drop_column("log_index")
    op.drop_index(op.f("ix_log_openings_kind"), table_name="log_openings")
    op.drop_table("log_openings")
