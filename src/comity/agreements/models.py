"""Tables of the agreements domain.

``agreement_versions`` holds each version's canonical document (exactly the
bytes signed); ``agreement_signatures`` one verified signature per party and
version; ``agreement_withdrawals`` and ``agreement_suspensions`` the acts of
individual parties, which apply to the agreement as a whole.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKeyConstraint, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from comity.db import Base, UTCDateTime

__all__ = [
    "AgreementGeneration",
    "AgreementSignature",
    "AgreementSuspension",
    "AgreementVersion",
    "AgreementWithdrawal",
]


class AgreementVersion(Base):
    __tablename__ = "agreement_versions"

    agreement_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[bytes] = mapped_column(LargeBinary)
    doc_hash: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    proposed_by: Mapped[str] = mapped_column(String(32))
    # draft (local only), proposed (sent to the parties), signed (every party
    # signed); in force / expired are derived from validity and the clock.
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AgreementSignature(Base):
    __tablename__ = "agreement_signatures"
    __table_args__ = (
        ForeignKeyConstraint(
            ["agreement_id", "version"],
            ["agreement_versions.agreement_id", "agreement_versions.version"],
            ondelete="CASCADE",
        ),
    )

    agreement_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    party: Mapped[str] = mapped_column(String(32), primary_key=True)
    signer_serial: Mapped[int] = mapped_column(Integer)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AgreementWithdrawal(Base):
    __tablename__ = "agreement_withdrawals"

    agreement_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    party: Mapped[str] = mapped_column(String(32), primary_key=True)
    withdrawn_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(2000), default="")


class AgreementSuspension(Base):
    __tablename__ = "agreement_suspensions"

    agreement_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    party: Mapped[str] = mapped_column(String(32), primary_key=True)
    suspended_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(2000), default="")


class AgreementGeneration(Base):
    """A counter bumped by every change to an agreement, in the same transaction.

    Readers compare it with the generation of a cached view: one indexed read
    instead of reloading and re-parsing every version, and never stale, even
    when another process (the CLI) changed the agreement.
    """

    __tablename__ = "agreement_generations"

    agreement_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)
