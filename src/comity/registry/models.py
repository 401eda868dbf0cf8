"""Tables of the registry: pools, delegations and the entities that hold them.

A pool is space a registry manages; a delegation is a block given to a
holder (or reserved), always inside a pool of the same registry. Neither
pools nor delegations of one kind ever overlap (checked by
:class:`~comity.registry.services.Registry` under the registry's write
lock), which makes the unique index on ``(kind, start_key)`` enough for a
longest-prefix lookup in one seek.

``authority`` names who governs a row: ``local`` for what this node imported
from a statistics file, or a council's name for what that council decided
(the rows every member of the council holds identically).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from comity.db import Base, UTCDateTime, bigint_pk

__all__ = ["Delegation", "RegistryEntity", "RegistryPool"]


class RegistryEntity(Base):
    __tablename__ = "registry_entities"

    handle: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    country: Mapped[str | None] = mapped_column(String(2))
    authority: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class RegistryPool(Base):
    __tablename__ = "registry_pools"
    __table_args__ = (Index("uq_registry_pools_start", "kind", "start_key", unique=True),)

    seq: Mapped[bigint_pk]
    authority: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # ipv4 | ipv6 | asn
    start_key: Mapped[str] = mapped_column(String(32))
    end_key: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Delegation(Base):
    __tablename__ = "registry_delegations"
    __table_args__ = (
        Index("uq_registry_delegations_start", "kind", "start_key", unique=True),
        Index("ix_registry_delegations_holder", "holder"),
    )

    seq: Mapped[bigint_pk]
    handle: Mapped[str] = mapped_column(String(100), unique=True)
    authority: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    start_key: Mapped[str] = mapped_column(String(32))
    end_key: Mapped[str] = mapped_column(String(32))
    holder: Mapped[str | None] = mapped_column(String(64))  # registry_entities.handle
    country: Mapped[str | None] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(16))  # allocated | assigned | reserved
    name: Mapped[str | None] = mapped_column(String(300))
    registered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # The council decision that made it: proposal id, its place in the
    # council's sequence, and the DECISION entry of this node's log.
    proposal: Mapped[str | None] = mapped_column(String(36))
    decision_seq: Mapped[int | None] = mapped_column(Integer)
    log_index: Mapped[int | None] = mapped_column(BigInteger)
