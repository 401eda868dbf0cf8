"""agreement generations: a change counter per agreement, for exact caching

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agreement_generations",
        sa.Column("agreement_id", sa.String(length=36), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("agreement_id", name=op.f("pk_agreement_generations")),
    )
    op.execute(
        "INSERT INTO agreement_generations (agreement_id, generation) "
        "SELECT DISTINCT agreement_id, 1 FROM agreement_versions"
    )


def downgrade() -> None:
    op.drop_table("agreement_generations")
