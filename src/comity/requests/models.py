"""Tables of the requests domain: requests and their timeline of events.

A request row is the same on both sides (its id is the one the requester
chose); ``direction`` says whether this node sent it or received it. The
columns after ``document`` are derived from the events by replaying them
(:func:`comity.requests.lifecycle.replay`) and are kept for listing, filtering
and reporting without reading the timeline.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from comity.db import Base, UTCDateTime, bigint_pk

__all__ = ["Request", "RequestEvent"]


class Request(Base):
    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_direction_seq", "direction", "seq"),
        Index("ix_requests_state_seq", "state", "seq"),
        Index("ix_requests_type_seq", "type", "seq"),
        Index("ix_requests_peer_seq", "peer_id", "seq"),
        Index("ix_requests_offence_seq", "offence", "seq"),
        Index("ix_requests_country_seq", "peer_country", "seq"),
        Index("ix_requests_due_at", "due_at"),
    )

    seq: Mapped[bigint_pk]
    request_id: Mapped[str] = mapped_column(String(36), unique=True)
    direction: Mapped[str] = mapped_column(String(8))  # out | in
    peer_id: Mapped[str] = mapped_column(String(32))
    peer_country: Mapped[str] = mapped_column(String(2))
    agreement_id: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(64))
    instrument: Mapped[str] = mapped_column(String(64))
    offence: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(100))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    # The request document as sent (canonical JSON).
    document: Mapped[str] = mapped_column(Text)
    submit_message_id: Mapped[str | None] = mapped_column(String(36))
    created_by: Mapped[str | None] = mapped_column(String(200))
    approved_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # -- derived from the events -------------------------------------------
    state: Mapped[str] = mapped_column(String(40))
    # The requested party's reference, given when it acknowledges.
    recipient_reference: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    executed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    preserved_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    due_kind: Mapped[str | None] = mapped_column(String(40))
    due_basis: Mapped[str | None] = mapped_column(Text)


class RequestEvent(Base):
    __tablename__ = "request_events"
    __table_args__ = (Index("ix_request_events_request", "request_id", "seq"),)

    seq: Mapped[bigint_pk]
    request_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(16))  # requester | requested
    actor: Mapped[str] = mapped_column(String(32))  # node id
    # Signed time of the message; see lifecycle.canonical_order for how it is used.
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    message_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    # The how-manieth shared event of its side (1, 2, ...): each side's events
    # keep their order in the merge both nodes compute.
    n: Mapped[int | None] = mapped_column(Integer)
    # How many events of the other side the sender held when it acted.
    seen: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)  # JSON
    applied: Mapped[bool] = mapped_column(Boolean, default=True)
    note: Mapped[str | None] = mapped_column(Text)
    by: Mapped[str | None] = mapped_column(String(200))  # the local operator, if any
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    log_index: Mapped[int | None] = mapped_column(BigInteger)
