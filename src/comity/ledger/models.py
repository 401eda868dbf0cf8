"""Tables of the ledger.

``log_state`` is one row: the next index to hand out, the integrated tree
size and root, and the signed checkpoint. ``log_pending`` holds entries that
have an index but are not yet in the tree. ``log_tiles`` holds the tree as
C2SP hash tiles (with their internal levels, see ``storage``) and
``log_blocks`` the C2SP entry bundles of 256 entries (kind ``e``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from comity.db import Base, UTCDateTime, bigint_pk

__all__ = [
    "LedgerAlarm",
    "LogBlock",
    "LogCheckpoint",
    "LogCosignature",
    "LogOpening",
    "LogPending",
    "LogState",
    "LogTile",
    "PeerCheckpoint",
    "WitnessProgress",
    "WitnessedLog",
]


class LogState(Base):
    __tablename__ = "log_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_index: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    checkpoint: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class LogPending(Base):
    __tablename__ = "log_pending"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class LogBlock(Base):
    __tablename__ = "log_blocks"

    kind: Mapped[str] = mapped_column(String(1), primary_key=True)
    block: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class LogTile(Base):
    __tablename__ = "log_tiles"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class LogOpening(Base):
    """The opening (act and salt) of an entry this node wrote: never served."""

    __tablename__ = "log_openings"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    opening: Mapped[str] = mapped_column(Text)


class LogCheckpoint(Base):
    """Every checkpoint this log signed (the latest is also in ``log_state``)."""

    __tablename__ = "log_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    checkpoint: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class LogCosignature(Base):
    """A partner's witness cosignature of one of our checkpoints (a note signature line)."""

    __tablename__ = "log_cosignatures"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    witness_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    line: Mapped[str] = mapped_column(Text)
    cosigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class WitnessProgress(Base):
    """Log side: the size each partner's witness last cosigned for us."""

    __tablename__ = "witness_progress"

    peer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class WitnessedLog(Base):
    """Witness side: the latest checkpoint of a partner's log that we cosigned."""

    __tablename__ = "witnessed_logs"

    peer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    origin: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    checkpoint: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # When a PEER-CHECKPOINT entry last went into our own log for this peer.
    recorded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class PeerCheckpoint(Base):
    """Every checkpoint of a partner's log we cosigned: what `comity log audit` checks."""

    __tablename__ = "peer_checkpoints"

    peer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    checkpoint: Mapped[str] = mapped_column(Text)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    cosignature: Mapped[str] = mapped_column(Text)  # our signature line for it


class LedgerAlarm(Base):
    """Evidence that a log misbehaved: two signed checkpoints that cannot both be true."""

    __tablename__ = "ledger_alarms"

    id: Mapped[bigint_pk]
    peer_id: Mapped[str | None] = mapped_column(String(32))  # None: about our own log
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)  # JSON: the signed checkpoints involved
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
