"""sharing: drop an index the unique version index already provides

``ix_stix_objects_collection_object`` had the same columns as
``uq_stix_objects_version`` (collection_id, object_id, version_at), whose
``kind = 'object'`` condition every object-id lookup now states literally,
so the planners use that one. Each insert paid for both.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_stix_objects_collection_object", table_name="stix_objects")


def downgrade() -> None:
    op.create_index("ix_stix_objects_collection_object", "stix_objects",
                    ["collection_id", "object_id", "version_at"])
