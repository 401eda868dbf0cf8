"""evidence: the card serial that signed each manifest

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evidence_packages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signer_serial", sa.BigInteger(), nullable=False,
                                      server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("evidence_packages", schema=None) as batch_op:
        batch_op.drop_column("signer_serial")
