"""The registry's rules: pools, delegations, lookups and the state digest.

Every write goes through :class:`Registry`, which enforces the integrity
rules: a block is a valid range of its kind (CIDR-aligned where a prefix is
required), no two pools and no two delegations of one kind overlap, and a
delegation lies inside a pool of its own registry. Writers of one kind take
a lock first (SQLite: the database's single write lock; PostgreSQL: a
transaction-scoped advisory lock), so two transactions cannot both pass
the overlap check with blocks that overlap each other.

Lookups are longest-prefix matches in one index seek each: delegations
never overlap, so the delegation covering a block, if any, is the one with
the greatest start not after the block's start; failing that, the pool
covering it. The cost grows with the logarithm of the table.

Trust assumptions: callers have authorised the write (a council decision
applied by governance, or the node's operator importing a file); the
values themselves are checked here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from comity.clock import format_ts
from comity.db import advisory_lock
from comity.registry.errors import (
    InvalidResourceError,
    NotFoundError,
    OutsidePoolError,
    OverlapError,
)
from comity.registry.models import Delegation, RegistryEntity, RegistryPool
from comity.registry.resources import Block, Kind

__all__ = ["LOCAL", "STATUSES", "Found", "Registry", "delegation_dict", "lock_kind", "pool_dict"]

LOCAL = "local"
STATUSES = ("allocated", "assigned", "reserved")


@dataclass(frozen=True)
class Found:
    """The most specific registration covering a query: a delegation, else a pool."""

    block: Block
    delegation: Delegation | None
    pool: RegistryPool | None


def pool_dict(p: RegistryPool) -> dict[str, Any]:
    block = Block.from_keys(p.kind, p.start_key, p.end_key)
    return {"authority": p.authority, "kind": p.kind, "block": str(block), "name": p.name,
            "size": block.size, "created_at": format_ts(p.created_at)}


def delegation_dict(d: Delegation) -> dict[str, Any]:
    block = Block.from_keys(d.kind, d.start_key, d.end_key)
    return {"handle": d.handle, "authority": d.authority, "kind": d.kind, "block": str(block),
            "size": block.size, "holder": d.holder, "country": d.country, "status": d.status,
            "name": d.name,
            "registered_at": None if d.registered_at is None else format_ts(d.registered_at),
            "changed_at": format_ts(d.changed_at), "proposal": d.proposal,
            "decision_seq": d.decision_seq, "log_index": d.log_index}


def lock_kind(session: Session, kind: Kind) -> None:
    """Take the write lock for ``kind`` before checking for overlaps and writing.

    SQLite needs nothing more: every write transaction holds the database's
    single write lock from its start.
    """
    # One lock per kind: writers of IPv4 do not wait for writers of AS numbers.
    advisory_lock(session, f"comity.registry.{kind.value}")


class Registry:
    """Pools, delegations and entities of one node (local and council registries)."""

    # -- writing ---------------------------------------------------------------

    def add_pool(self, session: Session, *, registry: str, block: Block, name: str,
                 now: dt.datetime) -> RegistryPool:
        """A pool of ``registry``.

        Raises:
            OverlapError: it overlaps a pool already held (of any registry).
        """
        lock_kind(session, block.kind)
        clash = self._covering_start(session, RegistryPool, block)
        if clash is not None:
            raise OverlapError(f"{block} overlaps the pool {_block_of(clash)} of "
                               f"{clash.authority}")
        pool = RegistryPool(authority=registry, kind=block.kind.value, start_key=block.start_key,
                            end_key=block.end_key, name=name, created_at=now)
        session.add(pool)
        session.flush()
        return pool

    def delegate(self, session: Session, *, registry: str, block: Block, status: str,
                 now: dt.datetime, holder: str | None = None, country: str | None = None,
                 name: str | None = None, registered_at: dt.datetime | None = None,
                 require_prefix: bool = False, proposal: str | None = None,
                 decision_seq: int | None = None, log_index: int | None = None,
                 check: bool = True) -> Delegation:
        """Delegate ``block`` (or reserve it) in ``registry``.

        ``require_prefix``: the block must be exactly one CIDR prefix (what a
        council allocates; imported IPv4 records are counts of addresses).
        ``check=False`` skips the overlap and pool checks, for a caller that
        has checked a whole sorted batch itself (the importer).

        Raises:
            InvalidResourceError: a bad status, or not one aligned prefix
                when one is required.
            OverlapError: it overlaps a delegation already held.
            OutsidePoolError: no pool of ``registry`` contains it.
        """
        if status not in STATUSES:
            raise InvalidResourceError(f"status must be one of {', '.join(STATUSES)}, "
                                       f"not {status!r}")
        if require_prefix and block.kind is not Kind.ASN and block.prefix_length is None:
            raise InvalidResourceError(
                f"{block} is not one CIDR prefix: its size must be a power of two and its "
                "start a multiple of that size")
        if check:
            lock_kind(session, block.kind)
            self.check_free(session, registry, block)
        d = Delegation(handle=handle_for(block), authority=registry, kind=block.kind.value,
                       start_key=block.start_key, end_key=block.end_key, holder=holder,
                       country=country, status=status, name=name, registered_at=registered_at,
                       changed_at=now, proposal=proposal, decision_seq=decision_seq,
                       log_index=log_index)
        session.add(d)
        session.flush()
        return d

    def check_free(self, session: Session, registry: str, block: Block) -> None:
        """Raise unless ``block`` lies in a pool of ``registry`` and overlaps no delegation.

        Raises:
            OverlapError, OutsidePoolError
        """
        clash = self._covering_start(session, Delegation, block)
        if clash is not None:
            raise OverlapError(f"{block} overlaps {clash.handle}, delegated to "
                               f"{clash.holder or 'the registry'} ({clash.status})")
        pool = self._covering(session, RegistryPool, block)
        if pool is None or pool.authority != registry:
            where = "no pool" if pool is None else f"a pool of {pool.authority}"
            raise OutsidePoolError(f"{block} is in {where}, not in a pool of {registry}")

    def ensure_entity(self, session: Session, *, handle: str, name: str, country: str | None,
                      registry: str, now: dt.datetime) -> RegistryEntity:
        e = session.get(RegistryEntity, handle)
        if e is None:
            e = RegistryEntity(handle=handle, name=name, country=country, authority=registry,
                               created_at=now)
            session.add(e)
        return e

    # -- reading ---------------------------------------------------------------

    @staticmethod
    def _last_starting(session: Session, table: Any, kind: Kind, at: str) -> Any:
        """The row of ``table`` with the greatest start not after ``at`` (one index seek)."""
        return session.scalar(select(table).where(
            table.kind == kind.value, table.start_key <= at,
        ).order_by(table.start_key.desc()).limit(1))

    def _covering_start(self, session: Session, table: Any, block: Block) -> Any:
        """The row of ``table`` overlapping ``block``, if any (rows never overlap)."""
        row = self._last_starting(session, table, block.kind, block.end_key)
        return row if row is not None and row.end_key >= block.start_key else None

    def _covering(self, session: Session, table: Any, block: Block) -> Any:
        """The row of ``table`` containing all of ``block``, if any."""
        row = self._last_starting(session, table, block.kind, block.start_key)
        return row if row is not None and row.end_key >= block.end_key else None

    def lookup(self, session: Session, block: Block) -> Found:
        """The most specific registration containing ``block``.

        Raises:
            NotFoundError: neither a delegation nor a pool contains it.
        """
        d = self._covering(session, Delegation, block)
        if d is not None:
            return Found(_block_of(d), d, None)
        p = self._covering(session, RegistryPool, block)
        if p is not None:
            return Found(_block_of(p), None, p)
        raise NotFoundError(f"no registration contains {block}")

    def entity(self, session: Session, handle: str) -> RegistryEntity:
        e = session.get(RegistryEntity, handle)
        if e is None:
            raise NotFoundError(f"no entity {handle!r}")
        return e

    def delegations(self, session: Session, *, registry: str | None = None,
                    holder: str | None = None, kind: Kind | None = None,
                    after: tuple[str, str] | None = None, limit: int = 100
                    ) -> list[Delegation]:
        """Delegations in (kind, start) order, optionally after a (kind, start_key) cursor."""
        q = select(Delegation)
        if registry is not None:
            q = q.where(Delegation.authority == registry)
        if holder is not None:
            q = q.where(Delegation.holder == holder)
        if kind is not None:
            q = q.where(Delegation.kind == kind.value)
        if after is not None:
            q = q.where((Delegation.kind > after[0]) | (
                (Delegation.kind == after[0]) & (Delegation.start_key > after[1])))
        return list(session.scalars(q.order_by(Delegation.kind, Delegation.start_key)
                                    .limit(limit)))

    def pools(self, session: Session, registry: str | None = None) -> list[RegistryPool]:
        q = select(RegistryPool)
        if registry is not None:
            q = q.where(RegistryPool.authority == registry)
        return list(session.scalars(q.order_by(RegistryPool.kind, RegistryPool.start_key)))

    def count(self, session: Session, registry: str | None = None) -> int:
        q = select(func.count()).select_from(Delegation)
        if registry is not None:
            q = q.where(Delegation.authority == registry)
        return int(session.scalar(q) or 0)

    def digest(self, session: Session, registry: str) -> str:
        """SHA-256 over ``registry``'s pools and delegations, in a fixed order and form.

        Members of a council that applied the same decisions in the same order
        hold the same digest; comparing digests proves they hold the same
        registry. Local bookkeeping (times of writing, log indexes) is left
        out: only what the decisions determined is covered.
        """
        h = hashlib.sha256(b"comity.registry.digest.v1\n")
        for p in session.execute(select(RegistryPool.kind, RegistryPool.start_key,
                                        RegistryPool.end_key, RegistryPool.name).where(
                RegistryPool.authority == registry).order_by(RegistryPool.kind,
                                                            RegistryPool.start_key)):
            h.update("P|{}|{}|{}|{}\n".format(*p).encode())
        for d in session.execute(select(
                Delegation.kind, Delegation.start_key, Delegation.end_key, Delegation.holder,
                Delegation.country, Delegation.status, Delegation.name, Delegation.proposal,
                Delegation.decision_seq).where(Delegation.authority == registry).order_by(
                Delegation.kind, Delegation.start_key)):
            h.update("D|{}|{}|{}|{}|{}|{}|{}|{}|{}\n".format(*d).encode())
        return h.hexdigest()


def _block_of(row: Delegation | RegistryPool) -> Block:
    return Block.from_keys(row.kind, row.start_key, row.end_key)


def handle_for(block: Block) -> str:
    """A delegation's handle: its block as text (``45.64.0.0/24``, ``AS328001``)."""
    return str(block)
