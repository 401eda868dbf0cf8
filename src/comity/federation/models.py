"""Tables of the federation layer: the outbox, the inbox and their receipts.

The outbox row for a message is written in the same transaction as the
business change that caused it; the inbox row and the receipt for a message
in the same transaction as whatever receiving it changes. ``seq`` columns are
the per-node order of writing, which delivery follows per peer.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from comity.db import Base, UTCDateTime, bigint_pk

__all__ = ["DeliveryLease", "HeldReceipt", "InboxMessage", "IssuedReceipt", "OutboxMessage"]


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_peer_status_seq", "peer_id", "status", "seq"),)

    seq: Mapped[bigint_pk]
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    peer_id: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(64))
    agreement_id: Mapped[str | None] = mapped_column(String(36))
    # The signed message exactly as it will be POSTed (canonical JSON).
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    message_hash: Mapped[str] = mapped_column(String(64))
    signed_serial: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # pending -> delivered | failed (a final rejection by the peer).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    receipt_id: Mapped[str | None] = mapped_column(String(36))
    receiver_seq: Mapped[int | None] = mapped_column(Integer)
    # This node's SENT entry, and the receiver's RECEIVED entry (from its receipt).
    log_index: Mapped[int | None] = mapped_column(BigInteger)
    receiver_log_index: Mapped[int | None] = mapped_column(BigInteger)


class HeldReceipt(Base):
    """A receipt a peer signed for messages we sent."""

    __tablename__ = "held_receipts"

    receipt_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    peer_id: Mapped[str] = mapped_column(String(32))
    receipt_hash: Mapped[str] = mapped_column(String(64), unique=True)
    receipt: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class InboxMessage(Base):
    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_sender_seq", "sender_id", "seq"),)

    seq: Mapped[bigint_pk]
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    sender_id: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(64))
    agreement_id: Mapped[str | None] = mapped_column(String(36))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    message_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    receipt_id: Mapped[str] = mapped_column(String(36))
    log_index: Mapped[int | None] = mapped_column(BigInteger)  # this node's RECEIVED entry


class IssuedReceipt(Base):
    """A receipt this node signed; returned again on duplicate deliveries."""

    __tablename__ = "issued_receipts"

    receipt_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    peer_id: Mapped[str] = mapped_column(String(32))
    receipt: Mapped[bytes] = mapped_column(LargeBinary)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class DeliveryLease(Base):
    """Which worker process delivers to a peer, so per-peer order holds."""

    __tablename__ = "delivery_leases"

    peer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
