"""The node's log: assign indexes inside business transactions, integrate in batches.

Appending is two steps, as in Tessera:

1. **Assign** (:meth:`Ledger.assign`), inside the transaction that does the
   act being logged: the entry gets the next index (a counter row, so indexes
   are dense and ordered by commit) and waits in ``log_pending``. The act and
   its log entry commit or vanish together, and the index is known at once
   (a receipt can name it).
2. **Integrate** (:meth:`Ledger.integrate`), by the single sequencer: takes
   pending entries in index order, appends their hashes and entry bundles,
   computes the new root, checks it is consistent with the last checkpoint,
   signs a C2SP checkpoint with the node's key, and moves the checkpoint by
   compare-and-swap on the old size, all in one transaction. A crash at any
   point leaves the previous checkpoint and every assigned entry in place;
   the next integration redoes the work.

Trust assumptions: entries are commitments chosen by this node's own code;
the database and the node's key are trusted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from comity.clock import Clock
from comity.db import read_scope, session_scope
from comity.hazmat import merkle
from comity.hazmat.note import Checkpoint, NoteSigner, add_signature_lines, sign_note
from comity.identity.services import IdentityHolder
from comity.ledger.commitments import Opening, parse_opening
from comity.ledger.models import (
    LogCheckpoint,
    LogCosignature,
    LogOpening,
    LogPending,
    LogState,
)
from comity.ledger.storage import (
    TILE,
    TileBuilder,
    TileCache,
    TileStore,
    block_data,
    encode_entry,
    write_bundles,
    write_tiles,
)

__all__ = ["Ledger", "LedgerError", "TreeHead", "record_at_commit"]

_STATE_ID = 1
_AT_COMMIT = "comity.ledger.at_commit"


def record_at_commit(session: Session, opening: Opening) -> None:
    """Log ``opening`` in ``session``'s transaction, just before it commits.

    For domain code that has no ledger at hand (agreements): the node's
    ledger writes these entries in the same transaction as the act, so a
    rolled-back act leaves no entry and a committed one always has one.
    """
    session.info.setdefault(_AT_COMMIT, []).append(opening)


class LedgerError(RuntimeError):
    """The log cannot move forward safely (a bug or damaged storage): stop and alarm."""


@dataclass(frozen=True)
class _Integration:
    """An integration computed and signed, waiting to be written."""

    old_size: int
    new_size: int
    new_root: bytes
    tiles: dict[tuple[int, int], bytes]
    entries: list[bytes]
    tail: bytes  # the partial entry bundle the new entries continue
    checkpoint: str


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes
    checkpoint: bytes


class Ledger:
    """One node's log."""

    def __init__(self, sessions: sessionmaker[Session], identity: IdentityHolder,
                 clock: Clock, *, batch_size: int = 10_000, cache_tiles: int = 16_384) -> None:
        self.sessions = sessions
        self.identity = identity
        self.clock = clock
        self.batch_size = batch_size
        self.cache = TileCache(cache_tiles)
        self._listeners: list[Callable[[], None]] = []
        self._integrated: list[Callable[[], None]] = []
        self._integrate_lock = threading.Lock()

    @property
    def origin(self) -> str:
        """The log's origin line: the node card's ``log_origin``."""
        return str(self.identity.get().card.doc["log_origin"])

    def signer(self) -> NoteSigner:
        """The checkpoint key: the node's signing key, named after the origin."""
        return NoteSigner(self.origin, self.identity.get().signing_key.to_cryptography())

    def _sign(self, size: int, root: bytes) -> bytes:
        return sign_note(Checkpoint(self.origin, size, root).to_text(), [self.signer()])

    def ensure_state(self) -> None:
        """Create the empty log (and its first signed checkpoint) if there is none."""
        with session_scope(self.sessions) as session:
            if session.get(LogState, _STATE_ID) is not None:
                return
        try:
            with session_scope(self.sessions) as session:
                checkpoint = self._sign(0, merkle.EMPTY_ROOT).decode()
                session.add(LogState(
                    id=_STATE_ID, next_index=0, size=0, root=merkle.EMPTY_ROOT,
                    checkpoint=checkpoint, updated_at=self.clock.now()))
                session.add(LogCheckpoint(size=0, root=merkle.EMPTY_ROOT, checkpoint=checkpoint,
                                          signed_at=self.clock.now()))
        except IntegrityError:
            pass  # another process created it first

    def on_integrated(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after an integration moved the checkpoint."""
        self._integrated.append(listener)

    def on_assign(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after a transaction that assigned entries commits."""
        self._listeners.append(listener)

    def assign(self, session: Session, data: bytes) -> int:
        """Give ``data`` the next log index, inside ``session``'s transaction.

        Raises:
            ValueError: if ``data`` is longer than an entry may be.
        """
        return self.assign_many(session, [data])[0]

    def assign_many(self, session: Session, items: Sequence[bytes]) -> list[int]:
        """Give each of ``items`` the next log index, in order, in one statement pair.

        Raises:
            ValueError: if an item is longer than an entry may be (nothing is
                written then).
        """
        if not items:
            return []
        for data in items:
            encode_entry(data)  # size checks before anything is written
        end = session.execute(
            update(LogState).where(LogState.id == _STATE_ID)
            .values(next_index=LogState.next_index + len(items))
            .returning(LogState.next_index)).scalar_one()
        first = int(end) - len(items)
        session.execute(insert(cast(Table, LogPending.__table__)),
                        [{"idx": first + k, "data": d} for k, d in enumerate(items)])
        session.info["comity.ledger.assigned"] = True
        return list(range(first, first + len(items)))

    def record(self, session: Session, openings: Sequence[Opening]) -> list[int]:
        """Log salted commitments to ``openings`` in ``session``; keep the openings.

        Returns:
            The log index of each entry, in order.
        """
        indexes = self.assign_many(session, [o.commitment() for o in openings])
        if indexes:
            session.execute(insert(cast(Table, LogOpening.__table__)), [
                {"idx": i, "kind": o.kind, "opening": o.to_json()}
                for i, o in zip(indexes, openings, strict=True)])
        return indexes

    def record_deferred(self, session: Session) -> None:
        """Session hook (before commit): write what :func:`record_at_commit` queued."""
        queued = session.info.pop(_AT_COMMIT, None)
        if queued:
            self.record(session, queued)

    def opening(self, session: Session, index: int) -> Opening | None:
        """The opening of this node's entry ``index`` (None if not kept)."""
        row = session.get(LogOpening, index)
        return None if row is None else parse_opening(row.opening)

    def notify_committed(self, session: Session) -> None:
        """Session hook: wake the sequencer if entries were assigned."""
        if session.info.pop("comity.ledger.assigned", False):
            for listener in self._listeners:
                listener()

    def head(self, session: Session | None = None) -> TreeHead:
        """The latest signed tree head, as ``session`` sees it if given.

        A reader that goes on to read tiles or checkpoints must pass its own
        session: a head read elsewhere may be newer than that session's
        snapshot, which then lacks the rows of its size.
        """
        if session is None:
            with read_scope(self.sessions) as own:
                return self.head(own)
        state = session.get(LogState, _STATE_ID)
        if state is None:
            raise LedgerError("the log has not been created")
        return TreeHead(state.size, state.root, state.checkpoint.encode())

    def integrate(self) -> int:
        """Move pending entries into the tree; returns how many were integrated.

        The work (tiles, root, consistency check, signature) is done in a
        read transaction, so writers elsewhere in the node are not held up by
        it; the result is then written in a short write transaction that first
        moves the checkpoint by compare-and-swap on the old size. If another
        sequencer got there first, nothing is written and 0 is returned.

        Raises:
            LedgerError: if the new tree would not be consistent with the last
                checkpoint (nothing is signed then).
        """
        with self._integrate_lock:
            with read_scope(self.sessions) as session:
                state = session.get(LogState, _STATE_ID)
                if state is None:
                    raise LedgerError("the log has not been created")
                pending = [(int(i), bytes(d)) for i, d in session.execute(
                    select(LogPending.idx, LogPending.data).where(LogPending.idx >= state.size)
                    .order_by(LogPending.idx).limit(self.batch_size))]
                if not pending:
                    return 0
                work = self._prepare(session, state.size, state.root, pending)
            with session_scope(self.sessions) as session:
                moved = self._commit(session, work)
        if moved:
            for listener in self._integrated:
                listener()
        return moved

    def _prepare(self, session: Session, old_size: int, old_root: bytes,
                 pending: list[tuple[int, bytes]]) -> _Integration:
        if [i for i, _ in pending] != list(range(old_size, old_size + len(pending))):
            raise LedgerError(f"pending entries do not continue the log at {old_size}")
        reader = TileStore(session, self.cache, overlay={})
        builder = TileBuilder(reader, old_size)
        builder.append(merkle.leaf_hash(data) for _, data in pending)
        new_size = old_size + len(pending)
        new_root = merkle.tree_hash(new_size, reader)
        if old_size:
            proof = merkle.consistency_proof(old_size, new_size, reader)
            try:
                merkle.verify_consistency(old_size, new_size, old_root, new_root, proof)
            except merkle.ProofError as e:
                raise LedgerError(f"new tree is not consistent with checkpoint {old_size}") from e
        tail = block_data(session, old_size // TILE) if old_size % TILE else b""
        return _Integration(old_size, new_size, new_root, builder.changed,
                            [encode_entry(d) for _, d in pending], tail,
                            self._sign(new_size, new_root).decode())

    def _commit(self, session: Session, work: _Integration) -> int:
        now = self.clock.now()
        moved = cast(CursorResult[Any], session.execute(update(LogState).where(
            LogState.id == _STATE_ID, LogState.size == work.old_size).values(
            size=work.new_size, root=work.new_root, updated_at=now,
            checkpoint=work.checkpoint)))
        if moved.rowcount != 1:
            return 0  # another sequencer integrated these entries first
        write_tiles(session, work.tiles)
        write_bundles(session, work.old_size, work.entries, work.tail)
        session.execute(insert(LogCheckpoint).values(
            size=work.new_size, root=work.new_root, checkpoint=work.checkpoint, signed_at=now))
        session.execute(delete(LogPending).where(LogPending.idx < work.new_size),
                        execution_options={"synchronize_session": False})
        return work.new_size - work.old_size

    def cosigned_checkpoint(self, session: Session, size: int | None = None) -> bytes:
        """Our checkpoint of ``size`` (the latest if None) with the cosignatures it got.

        Raises:
            LedgerError: if this log never signed a checkpoint of that size.
        """
        if size is None:
            size = self.head(session).size
        row = session.get(LogCheckpoint, size)
        if row is None:
            raise LedgerError(f"this log signed no checkpoint of size {size}")
        lines = list(session.scalars(select(LogCosignature.line).where(
            LogCosignature.size == size).order_by(LogCosignature.witness_id)))
        return add_signature_lines(row.checkpoint.encode(), lines)

    def reader(self, session: Session) -> TileStore:
        """A hash reader over the integrated tree, for proofs and tiles."""
        return TileStore(session, self.cache)
