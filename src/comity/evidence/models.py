"""Tables of the evidence domain: packages and their chain of custody.

The package's bytes live in the data directory (``evidence/out/<id>/`` for
packages this node made, ``evidence/in/<id>/`` for those it receives); the
database holds the signed manifest, where the transfer stands, and every
custody event, each also committed to the log as a CUSTODY entry.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from comity.db import Base, UTCDateTime, bigint_pk

__all__ = ["CustodyEvent", "EvidencePackage"]


class EvidencePackage(Base):
    __tablename__ = "evidence_packages"
    __table_args__ = (Index("ix_evidence_packages_request", "request_id"),
                      Index("ix_evidence_packages_status", "direction", "status"))

    seq: Mapped[bigint_pk]
    package_id: Mapped[str] = mapped_column(String(36), unique=True)
    request_id: Mapped[str] = mapped_column(String(36))
    direction: Mapped[str] = mapped_column(String(8))  # out | in
    peer_id: Mapped[str] = mapped_column(String(32))
    # The signed manifest (canonical JSON) and the digest of the manifest.
    manifest: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    total_size: Mapped[int] = mapped_column(BigInteger)
    files: Mapped[int] = mapped_column(BigInteger)
    # out: packaged -> sent ; in: announced -> received -> verified | rejected
    status: Mapped[str] = mapped_column(String(16))
    # The message that carried the manifest; upload waits for its delivery.
    message_id: Mapped[str | None] = mapped_column(String(36))
    # Serial of the sender's card whose key signed the manifest.
    signer_serial: Mapped[int] = mapped_column(BigInteger, default=1)
    attempts: Mapped[int] = mapped_column(BigInteger, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    # The receiver's signed statement that it holds the package intact.
    receipt: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class CustodyEvent(Base):
    __tablename__ = "custody_events"
    __table_args__ = (Index("ix_custody_events_package", "package_id", "seq"),)

    seq: Mapped[bigint_pk]
    package_id: Mapped[str] = mapped_column(String(36))
    # collected | packaged | sent | received | opened | verified | rejected
    event: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(32))  # node id
    by: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    detail: Mapped[str] = mapped_column(Text)  # JSON
    log_index: Mapped[int] = mapped_column(BigInteger)
