"""initial schema: identity, agreements, federation, auth

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import comity.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agreement_suspensions",
        sa.Column("agreement_id", sa.String(length=36), nullable=False),
        sa.Column("party", sa.String(length=32), nullable=False),
        sa.Column("suspended_at", comity.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.PrimaryKeyConstraint("agreement_id", "party", name=op.f("pk_agreement_suspensions")),
    )
    op.create_table(
        "agreement_versions",
        sa.Column("agreement_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("doc_hash", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("proposed_by", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", comity.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", comity.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agreement_id", "version", name=op.f("pk_agreement_versions")),
    )
    op.create_table(
        "agreement_withdrawals",
        sa.Column("agreement_id", sa.String(length=36), nullable=False),
        sa.Column("party", sa.String(length=32), nullable=False),
        sa.Column("withdrawn_at", comity.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.PrimaryKeyConstraint("agreement_id", "party", name=op.f("pk_agreement_withdrawals")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", comity.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_api_tokens")),
    )
    op.create_table(
        "delivery_leases",
        sa.Column("peer_id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("expires_at", comity.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("peer_id", name=op.f("pk_delivery_leases")),
    )
    op.create_table(
        "held_receipts",
        sa.Column("receipt_id", sa.String(length=36), nullable=False),
        sa.Column("peer_id", sa.String(length=32), nullable=False),
        sa.Column("receipt_hash", sa.String(length=64), nullable=False),
        sa.Column("receipt", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", comity.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("receipt_id", name=op.f("pk_held_receipts")),
        sa.UniqueConstraint("receipt_hash", name=op.f("uq_held_receipts_receipt_hash")),
    )
    op.create_table(
        "inbox",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("sender_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("agreement_id", sa.String(length=36), nullable=True),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("message_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", comity.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", comity.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("receipt_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_inbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_inbox_message_id")),
    )
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_sender_seq", ["sender_id", "seq"], unique=False)

    op.create_table(
        "issued_receipts",
        sa.Column("receipt_id", sa.String(length=36), nullable=False),
        sa.Column("peer_id", sa.String(length=32), nullable=False),
        sa.Column("receipt", sa.LargeBinary(), nullable=False),
        sa.Column("issued_at", comity.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("receipt_id", name=op.f("pk_issued_receipts")),
    )
    op.create_table(
        "outbox",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("peer_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("agreement_id", sa.String(length=36), nullable=True),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("message_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_serial", sa.Integer(), nullable=False),
        sa.Column("created_at", comity.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", comity.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", comity.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("receipt_id", sa.String(length=36), nullable=True),
        sa.Column("receiver_seq", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_message_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_peer_status_seq", ["peer_id", "status", "seq"], unique=False
        )

    op.create_table(
        "peers",
        sa.Column("node_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("jurisdiction", sa.String(length=2), nullable=False),
        sa.Column("url", sa.String(length=512), nullable=False),
        sa.Column("signing_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("card", sa.LargeBinary(), nullable=False),
        sa.Column("added_at", comity.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", comity.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_peers")),
    )
    op.create_table(
        "agreement_signatures",
        sa.Column("agreement_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("party", sa.String(length=32), nullable=False),
        sa.Column("signer_serial", sa.Integer(), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("signed_at", comity.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agreement_id", "version"],
            ["agreement_versions.agreement_id", "agreement_versions.version"],
            name=op.f("fk_agreement_signatures_agreement_id_agreement_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "agreement_id", "version", "party", name=op.f("pk_agreement_signatures")
        ),
    )
    op.create_table(
        "peer_cards",
        sa.Column("node_id", sa.String(length=32), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("card", sa.LargeBinary(), nullable=False),
        sa.Column("accepted_at", comity.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["peers.node_id"],
            name=op.f("fk_peer_cards_node_id_peers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("node_id", "serial", name=op.f("pk_peer_cards")),
    )


def downgrade() -> None:
    op.drop_table("peer_cards")
    op.drop_table("agreement_signatures")
    op.drop_table("peers")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_peer_status_seq")

    op.drop_table("outbox")
    op.drop_table("issued_receipts")
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_sender_seq")

    op.drop_table("inbox")
    op.drop_table("held_receipts")
    op.drop_table("delivery_leases")
    op.drop_table("api_tokens")
    op.drop_table("agreement_withdrawals")
    op.drop_table("agreement_versions")
    op.drop_table("agreement_suspensions")
