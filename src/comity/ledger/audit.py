"""Proofs to hand out, and audits of partners' logs over their public tiles.

- :func:`prove_entry` exports an offline-verifiable proof (``ledger.proofs``)
  that an entry is in this node's log, under the newest checkpoint that
  enough partners cosigned; for a RECEIVED entry it adds the receipt we
  issued for it.
- :func:`prove_receipt` does the same from the sender's side for a message
  we sent: it fetches the receiver's cosigned checkpoint and tiles, computes
  the inclusion proof itself (trusting nothing the receiver says but its
  signatures), and opens the RECEIVED entry with the message's salt.
- :func:`audit_peer` fetches a partner's checkpoint, hash tiles and entry
  bundles, recomputes its tree, and checks it against every checkpoint of
  that log we ever cosigned. A contradiction is raised as an alarm.

Trust assumptions: everything fetched is untrusted; a partner's checkpoints
count only if its pinned card chain's keys signed them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from comity.db import read_scope, session_scope
from comity.federation.envelope import parse_message
from comity.federation.models import HeldReceipt, InboxMessage, IssuedReceipt, OutboxMessage
from comity.hazmat import merkle
from comity.hazmat.note import (
    Checkpoint,
    NoteError,
    add_signature_lines,
    cosignatures,
    open_note,
    parse_checkpoint,
)
from comity.identity.models import PeerCard
from comity.identity.schemas import NodeCard
from comity.identity.services import get_peer, stored_card
from comity.ledger.commitments import message_opening
from comity.ledger.keys import log_verifier, witness_verifier
from comity.ledger.models import LogCheckpoint, LogCosignature, PeerCheckpoint
from comity.ledger.proofs import build_entry_proof
from comity.ledger.storage import TILE, decode_bundle
from comity.ledger.tiles import tile_path
from comity.ledger.witness import raise_alarm
from comity.node import Node

__all__ = ["AuditError", "AuditReport", "audit_peer", "prove_entry", "prove_receipt"]

Progress = Callable[[int, int], None]


class AuditError(RuntimeError):
    """A proof cannot be made, or a partner's log cannot be fetched or read."""


def peer_chain(session: Session, node_id: str) -> list[NodeCard]:
    """Every card of a peer we accepted, serial 1 first."""
    return [stored_card(row.card) for row in session.scalars(
        select(PeerCard).where(PeerCard.node_id == node_id).order_by(PeerCard.serial))]


def prove_entry(node: Node, index: int, *, min_cosignatures: int = 1) -> bytes:
    """A proof file for entry ``index`` of this node's log.

    Raises:
        AuditError: if the entry is unknown here or no checkpoint covering it
            has ``min_cosignatures`` cosignatures yet.
    """
    ledger = node.ledger
    with read_scope(node.sessions) as session:
        opening = ledger.opening(session, index)
        if opening is None:
            raise AuditError(f"entry {index} is not in this log (or its opening is not kept)")
        counts = (select(LogCosignature.size, func.count().label("n"))
                  .group_by(LogCosignature.size).subquery())
        size = session.scalar(
            select(func.max(LogCheckpoint.size)).join(counts, counts.c.size == LogCheckpoint.size)
            .where(LogCheckpoint.size > index, counts.c.n >= min_cosignatures))
        if size is None:
            raise AuditError(f"no checkpoint covering entry {index} has {min_cosignatures} "
                             "cosignature(s) yet; try again once partners have witnessed it")
        proof = merkle.inclusion_proof(index, size, ledger.reader(session))
        checkpoint = ledger.cosigned_checkpoint(session, size)
        witnesses = sorted(session.scalars(select(LogCosignature.witness_id).where(
            LogCosignature.size == size)))
        witness_chains = [peer_chain(session, w) for w in witnesses]
        receipt: dict[str, Any] | None = None
        message_id: str | None = None
        copy = session.scalar(select(InboxMessage).where(InboxMessage.log_index == index))
        if copy is not None:
            issued = session.get(IssuedReceipt, copy.receipt_id)
            if issued is not None:
                receipt, message_id = orjson.loads(issued.receipt), copy.message_id
    return build_entry_proof(opening=opening, index=index, proof=proof, checkpoint=checkpoint,
                             log_chain=node.local.chain, witness_chains=witness_chains,
                             receipt=receipt, message_id=message_id)


def _get(client: httpx.Client, url: str) -> bytes:
    try:
        resp = client.get(url)
    except httpx.HTTPError as e:
        raise AuditError(f"{url}: {e}") from e
    if resp.status_code != 200:
        raise AuditError(f"{url}: HTTP {resp.status_code}")
    return resp.content


def _open_checkpoint(note: bytes, chain: Sequence[NodeCard]) -> Checkpoint:
    for card in reversed(chain):
        try:
            return parse_checkpoint(open_note(note, [log_verifier(card)]).text)
        except NoteError:
            continue
    raise AuditError("the checkpoint is not signed by any key of the log's card chain")


@dataclass
class RemoteLog:
    """A partner's log as fetched: its level-0 hashes and entries up to ``size``."""

    base: str
    size: int
    leaf_hashes: list[bytes] = field(default_factory=list)
    entries: list[bytes] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def reader(self) -> merkle.HashReader:
        levels = merkle.subtree_levels(self.leaf_hashes, max(1, self.size.bit_length()))

        class _Levels:
            def read_nodes(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
                return [levels[level][n] for level, n in nodes]

        return _Levels()


def fetch_log(client: httpx.Client, base: str, size: int, *, entries: bool,
              progress: Progress | None = None) -> RemoteLog:
    """Fetch level-0 tiles (and entry bundles) of a tree of ``size``, and check them.

    Upper-level tiles are fetched too and compared with what the level-0
    hashes imply, so a log serving inconsistent tiles is caught.
    """
    remote = RemoteLog(base, size)
    for n in range((size + TILE - 1) // TILE):
        width = min(TILE, size - n * TILE)
        data = _get(client, f"{base}/tile/0/{tile_path(n, width)}")
        if len(data) != width * merkle.HASH_SIZE:
            raise AuditError(f"tile 0/{n} has {len(data)} bytes, not {width * 32}")
        hashes = [data[i:i + 32] for i in range(0, len(data), 32)]
        remote.leaf_hashes += hashes
        if entries:
            bundle = decode_bundle(_get(client, f"{base}/tile/entries/{tile_path(n, width)}"))
            if len(bundle) != width:
                remote.problems.append(f"entry bundle {n} holds {len(bundle)} entries, "
                                       f"not {width}")
            for k, (entry, h) in enumerate(zip(bundle, hashes, strict=False)):
                if merkle.leaf_hash(entry) != h:
                    remote.problems.append(f"entry {n * TILE + k} does not hash to tile 0/{n}")
            remote.entries += bundle
        if progress is not None:
            progress(min(size, (n + 1) * TILE), size)
    level, count, below = 1, size >> 8, remote.leaf_hashes
    while count:
        roots = [merkle.subtree_levels(below[i:i + TILE], 9)[8][0]
                 for i in range(0, len(below) - TILE + 1, TILE)]
        for n in range((count + TILE - 1) // TILE):
            width = min(TILE, count - n * TILE)
            data = _get(client, f"{base}/tile/{level}/{tile_path(n, width)}")
            if data != b"".join(roots[n * TILE:n * TILE + width]):
                remote.problems.append(f"tile {level}/{n} does not match the tiles below it")
        below, level, count = roots, level + 1, count >> 8
    return remote


def prove_receipt(node: Node, client: httpx.Client, message_id: str) -> bytes:
    """A proof file that the receiver of our message ``message_id`` logged it.

    Raises:
        AuditError: unknown or undelivered message, receiver unreachable,
            its checkpoint not yet covering the entry or not cosigned.
    """
    with read_scope(node.sessions) as session:
        row = session.scalar(select(OutboxMessage).where(OutboxMessage.message_id == message_id))
        if row is None:
            raise AuditError(f"no message {message_id} was sent from this node")
        if row.receiver_log_index is None or row.receipt_id is None:
            raise AuditError(f"message {message_id} has no receipt naming a log entry yet")
        held = session.get(HeldReceipt, row.receipt_id)
        if held is None:
            raise AuditError(f"the receipt of message {message_id} is missing")
        receipt = orjson.loads(held.receipt)
        peer = get_peer(session, row.peer_id)
        chain = peer_chain(session, row.peer_id)
        others = {p: peer_chain(session, p) for p in session.scalars(
            select(PeerCard.node_id).distinct()) if p != row.peer_id}
        msg = parse_message(orjson.loads(row.envelope), max_bytes=1 << 30)
    index = row.receiver_log_index
    base = peer.url.rstrip("/") + "/log"
    witness_chains: list[Sequence[NodeCard]] = [node.local.chain]
    names = {witness_verifier(node.local.card).name}
    for other in others.values():
        if other and witness_verifier(other[-1]).name not in names:
            names.add(witness_verifier(other[-1]).name)
            witness_chains.append(other)
    cosigners = [witness_verifier(c[-1]) for c in witness_chains]
    note = _get(client, f"{base}/checkpoint")
    checkpoint = _open_checkpoint(note, chain)
    try:
        cosigned = bool(cosignatures(note, cosigners))
    except (NoteError, ValueError):
        cosigned = False  # a bad line on the served note: use our own cosignature
    if checkpoint.size <= index or not cosigned:
        # The receiver's newest checkpoint may not be witnessed yet: use the
        # newest one covering the entry that we cosigned ourselves.
        with read_scope(node.sessions) as session:
            ours = session.scalar(select(PeerCheckpoint).where(
                PeerCheckpoint.peer_id == row.peer_id, PeerCheckpoint.size > index)
                .order_by(PeerCheckpoint.size.desc()).limit(1))
            if ours is None:
                if checkpoint.size <= index:
                    raise AuditError(f"the receiver's log has {checkpoint.size} entries; "
                                     f"entry {index} is not integrated yet")
                raise AuditError("the receiver's checkpoint covering the entry is not "
                                 "cosigned yet; try later")
            note = add_signature_lines(ours.checkpoint.encode(), [ours.cosignature])
        checkpoint = _open_checkpoint(note, chain)
    remote = fetch_log(client, base, checkpoint.size, entries=False)
    if remote.problems:
        raise AuditError("the receiver's tiles are inconsistent: " + "; ".join(remote.problems))
    reader = remote.reader()
    if merkle.tree_hash(checkpoint.size, reader) != checkpoint.root_hash:
        raise AuditError("the receiver's tiles do not match its checkpoint")
    proof = merkle.inclusion_proof(index, checkpoint.size, reader)
    opening = message_opening("RECEIVED", message_hash=msg.hash, sender=msg.sender,
                              recipient=msg.recipient, salt=msg.header["salt"])
    if remote.leaf_hashes[index] != merkle.leaf_hash(opening.commitment()):
        raise AuditError(f"entry {index} of the receiver's log is not this message's RECEIVED "
                         "entry")
    used = []
    for c in witness_chains:
        try:
            if cosignatures(note, [witness_verifier(c[-1])]):
                used.append(c)
        except (NoteError, ValueError):
            continue
    return build_entry_proof(opening=opening, index=index, proof=proof, checkpoint=note,
                             log_chain=chain, witness_chains=used, receipt=receipt,
                             message_id=message_id)


@dataclass
class AuditReport:
    peer: str
    size: int
    root: str
    checked_checkpoints: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"peer": self.peer, "size": self.size, "root": self.root, "ok": self.ok,
                "checked_checkpoints": self.checked_checkpoints, "problems": self.problems}


def audit_peer(node: Node, client: httpx.Client, peer_id: str, *,
               progress: Progress | None = None) -> AuditReport:
    """Recompute a partner's log from its tiles and check every checkpoint we hold.

    Raises:
        AuditError: if the partner cannot be reached or its checkpoint is not
            signed by its key.
    """
    with read_scope(node.sessions) as session:
        peer = get_peer(session, peer_id)
        chain = peer_chain(session, peer_id)
        held = [(r.size, r.root, r.checkpoint) for r in session.scalars(
            select(PeerCheckpoint).where(PeerCheckpoint.peer_id == peer_id)
            .order_by(PeerCheckpoint.size))]
    base = peer.url.rstrip("/") + "/log"
    note = _get(client, f"{base}/checkpoint")
    latest = _open_checkpoint(note, chain)
    remote = fetch_log(client, base, latest.size, entries=True, progress=progress)
    problems = list(remote.problems)
    reader = remote.reader()
    tiles_match = merkle.tree_hash(latest.size, reader) == latest.root_hash
    if not tiles_match:
        problems.append(f"checkpoint {latest.size}: root differs from the served tiles")
    contradicted = []
    for old_size, old_root, old_note in held:
        if old_size > latest.size:
            problems.append(f"checkpoint {old_size} we cosigned is larger than the log now "
                            f"({latest.size}): rolled back, or an old checkpoint served")
        elif merkle.tree_hash(old_size, reader) != old_root:
            problems.append(f"checkpoint {old_size} we cosigned is not a prefix of the log")
            if tiles_match:
                # Tiles that match the log's signed latest root, and a signed
                # older root they do not contain: two signed, contradicting
                # statements of the log. That is evidence.
                contradicted.append(old_note)
    if contradicted:
        with session_scope(node.sessions) as session:
            raise_alarm(session, peer_id=peer_id, kind="audit",
                        detail=f"audit at size {latest.size}: " + "; ".join(problems),
                        evidence={"latest": note.decode(), "held": contradicted},
                        now=node.clock.now())
    return AuditReport(peer_id, latest.size, base64.b64encode(latest.root_hash).decode(),
                       len(held), problems)
