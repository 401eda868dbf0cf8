"""Tables of the sharing domain: collections, STIX object versions, TAXII status resources.

Every version of every object is one row of ``stix_objects``; ``seq`` is the
order objects were added, strictly increasing within a collection (writers
of one collection queue on its row lock, so they also commit in ``seq``
order and a reader's cursor never skips a row that commits later). A DELETE
marks the versions ``deleted`` and adds a ``kind = 'delete'`` row, so that
partners syncing by cursor see the deletion too.

``origin`` is the node an object came from (NULL: written here),
``received_under`` the agreement it came under, ``recipients`` the node ids a
TLP:RED object of ours may go to: the inputs of the release policy
(:mod:`comity.sharing.policy`). None of them ever leaves the node.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from comity.db import Base, UTCDateTime, bigint_pk

__all__ = ["IS_OBJECT", "SharingCollection", "SharingCursor", "SharingProvenance", "StixObject",
           "TaxiiStatus"]


class SharingCollection(Base):
    __tablename__ = "sharing_collections"

    seq: Mapped[bigint_pk]
    collection_id: Mapped[str] = mapped_column(String(36), unique=True)
    # The name agreements use in scope.collections (a slug).
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    # Peers may write here (under an agreement that shares the collection).
    peers_can_write: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Bumped on every write: the row every writer of the collection locks.
    writes: Mapped[int] = mapped_column(BigInteger, default=0)


class StixObject(Base):
    __tablename__ = "stix_objects"
    __table_args__ = (
        Index("ix_stix_objects_collection_seq", "collection_id", "seq"),
        Index("ix_stix_objects_collection_type_seq", "collection_id", "type", "seq"),
        # One row per (collection, object, version) among live objects; also
        # the index of every lookup by object id (see IS_OBJECT).
        Index("uq_stix_objects_version", "collection_id", "object_id", "version_at",
              unique=True, sqlite_where=text("kind = 'object'"),
              postgresql_where=text("kind = 'object'")),
    )

    seq: Mapped[bigint_pk]
    collection_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(8))  # object | delete
    object_id: Mapped[str] = mapped_column(String(300))
    type: Mapped[str] = mapped_column(String(250))
    spec_version: Mapped[str] = mapped_column(String(8))
    # The version as the object states it, and as an instant for ordering.
    version: Mapped[str] = mapped_column(String(40))
    version_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    date_added: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    latest: Mapped[bool] = mapped_column(Boolean, default=True)
    first: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    tlp: Mapped[str | None] = mapped_column(String(16))
    origin: Mapped[str | None] = mapped_column(String(32))
    received_under: Mapped[str | None] = mapped_column(String(36))
    recipients: Mapped[str | None] = mapped_column(Text)  # JSON list of node ids
    size: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # The signed page of a partner it was fetched in (sharing_provenance.seq).
    provenance: Mapped[int | None] = mapped_column(BigInteger)


# "Is an object version, not a deletion", written as a literal rather than a
# bound parameter: only then can SQLite and PostgreSQL (with prepared
# statements) see that a query falls under the partial unique index
# uq_stix_objects_version, the one index on object ids.
IS_OBJECT = StixObject.kind == literal_column("'object'")


class SharingProvenance(Base):
    """A partner's signed answer that objects were taken from, kept as received."""

    __tablename__ = "sharing_provenance"

    seq: Mapped[bigint_pk]
    peer_id: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    body_sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(100))
    signer_serial: Mapped[int] = mapped_column(Integer)
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class SharingCursor(Base):
    """Where syncing a partner's collection stands."""

    __tablename__ = "sharing_cursors"

    peer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    remote_collection: Mapped[str] = mapped_column(String(36), primary_key=True)
    local_collection: Mapped[str] = mapped_column(String(36))
    cursor: Mapped[str] = mapped_column(Text)
    synced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class TaxiiStatus(Base):
    __tablename__ = "taxii_status"
    __table_args__ = (Index("ix_taxii_status_completed", "completed_at"),)

    status_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    collection_id: Mapped[str] = mapped_column(String(36))
    # Who may read it: "local" or the peer's node id.
    owner: Mapped[str] = mapped_column(String(32))
    request_timestamp: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    total: Mapped[int] = mapped_column(Integer)
    successes: Mapped[str] = mapped_column(Text)  # JSON list of {id, version, message}
    failures: Mapped[str] = mapped_column(Text)
