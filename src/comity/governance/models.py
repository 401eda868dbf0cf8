"""Tables of governance: proposals, ballots, and each council's sequence of decisions.

A council is a multilateral agreement whose scope has a ``council`` section
(:mod:`comity.governance.rules`). Its chair numbers every stage change
``n = 1, 2, ...``; each member applies them strictly in that order
(``council_decisions``), holding back any that arrive early
(``council_held``). ``council_ballots`` keeps every ballot as its voter
signed it, so anyone can recompute a tally.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from comity.db import Base, UTCDateTime

__all__ = ["Ballot", "CouncilDecision", "CouncilHeld", "Proposal"]


class Proposal(Base):
    __tablename__ = "council_proposals"
    __table_args__ = (Index("ix_council_proposals_council_stage", "council", "stage"),)

    proposal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    council: Mapped[str] = mapped_column(String(36))  # the agreement id
    kind: Mapped[str] = mapped_column(String(16))  # policy | allocation | rules | consultation
    title: Mapped[str] = mapped_column(String(500))
    proposer: Mapped[str] = mapped_column(String(32))
    # The proposal document as its proposer signed it, and its hash.
    document: Mapped[str] = mapped_column(Text)
    doc_hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(100))
    stage: Mapped[str] = mapped_column(String(16))
    round: Mapped[int] = mapped_column(Integer, default=0)
    stage_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # The end of the stage's window (discussion, vote, last call), if it has one.
    window_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(Text)  # JSON: the tally that decided it
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Ballot(Base):
    __tablename__ = "council_ballots"

    proposal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True)
    voter: Mapped[str] = mapped_column(String(32), primary_key=True)
    choice: Mapped[str] = mapped_column(String(8))  # yes | no | abstain
    document: Mapped[str] = mapped_column(Text)  # the signed ballot, canonical JSON
    signature: Mapped[str] = mapped_column(String(100))
    signer_serial: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class CouncilDecision(Base):
    """Stage change ``n`` of a council, as applied here."""

    __tablename__ = "council_decisions"

    council: Mapped[str] = mapped_column(String(36), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[str] = mapped_column(String(36))
    stage: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)  # canonical JSON of the stage change
    digest: Mapped[str] = mapped_column(String(64))  # the registry after applying it
    log_index: Mapped[int] = mapped_column(BigInteger)
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class CouncilHeld(Base):
    """A stage change that arrived before the one it follows."""

    __tablename__ = "council_held"

    council: Mapped[str] = mapped_column(String(36), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
