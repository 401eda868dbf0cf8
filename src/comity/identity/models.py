"""Tables of the identity domain: the peers this node knows and their cards."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from comity.db import Base, UTCDateTime

__all__ = ["Peer", "PeerCard"]


class Peer(Base):
    """A peer node, pinned to the newest card of its chain that we verified."""

    __tablename__ = "peers"

    node_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(64))
    jurisdiction: Mapped[str] = mapped_column(String(2))
    url: Mapped[str] = mapped_column(String(512))
    signing_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    serial: Mapped[int] = mapped_column(Integer)
    card: Mapped[bytes] = mapped_column(LargeBinary)
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class PeerCard(Base):
    """Every card of a peer's chain we ever accepted, kept as evidence."""

    __tablename__ = "peer_cards"

    node_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("peers.node_id", ondelete="CASCADE"), primary_key=True
    )
    serial: Mapped[int] = mapped_column(Integer, primary_key=True)
    card: Mapped[bytes] = mapped_column(LargeBinary)
    accepted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
