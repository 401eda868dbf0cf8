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

from comity.db import Base, UTCDateTime

__all__ = ["LogBlock", "LogOpening", "LogPending", "LogState", "LogTile"]


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
