"""Receipts proven to third parties, and audits of partners' logs over their tiles."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from comity.db import read_scope, session_scope
from comity.federation.models import InboxMessage
from comity.hazmat.note import Checkpoint, NoteSigner, sign_note
from comity.ledger.audit import AuditError, audit_peer, prove_entry, prove_receipt
from comity.ledger.models import LedgerAlarm, LogBlock, LogTile, PeerCheckpoint
from comity.ledger.proofs import ProofBundleError, verify_entry_proof
from tests.federation.test_delivery import send
from tests.support import LocalFederation, PeerNode


def exchange(fed: LocalFederation) -> tuple[PeerNode, PeerNode, list[str]]:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    ids = send(a, b, aid, 3)
    fed.pump()
    return a, b, ids


def test_both_sides_can_prove_the_receipt_to_a_third_party(fed: LocalFederation) -> None:
    a, b, ids = exchange(fed)
    with pytest.raises(AuditError, match="cosign"):
        prove_entry(b.node, 0)  # nothing witnessed yet
    fed.witness()
    # The sender, from the receiver's public tiles and cosigned checkpoint.
    from_sender = verify_entry_proof(prove_receipt(a.node, fed.http, ids[1]),
                                     require_receipt=True)
    with read_scope(b.node.sessions) as s:
        copy = s.scalar(select(InboxMessage).where(InboxMessage.message_id == ids[1]))
        assert copy is not None
        index = copy.log_index
        message_hash = copy.message_hash
    assert index is not None
    assert (from_sender.log_node, from_sender.index, from_sender.message_id,
            from_sender.message_hash, from_sender.sender) == (b.id, index, ids[1],
                                                              message_hash, a.id)
    assert from_sender.opening.kind == "RECEIVED"
    assert set(from_sender.cosigned_by) == {a.id}
    # The receiver, from its own log.
    from_receiver = verify_entry_proof(prove_entry(b.node, index), require_receipt=True)
    assert (from_receiver.log_node, from_receiver.index, from_receiver.message_id) == (
        b.id, index, ids[1])
    # Asking for more cosignatures than exist is refused, not faked.
    with pytest.raises(AuditError, match="2 cosignature"):
        prove_entry(b.node, index, min_cosignatures=2)
    with pytest.raises(ProofBundleError, match="cosignature"):
        verify_entry_proof(prove_entry(b.node, index), min_cosignatures=2)


def test_a_receipt_proof_needs_a_delivered_message(fed: LocalFederation) -> None:
    a, b, ids = exchange(fed)
    with pytest.raises(AuditError, match="no message"):
        prove_receipt(a.node, fed.http, "00000000-0000-4000-8000-000000000000")
    with pytest.raises(AuditError, match="not integrated yet"):
        prove_receipt(a.node, fed.http, ids[0])
    while b.node.ledger.integrate():
        pass
    with pytest.raises(AuditError, match="not cosigned"):
        prove_receipt(a.node, fed.http, ids[0])


def test_an_audit_recomputes_the_partners_log_and_catches_tampering(
        fed: LocalFederation) -> None:
    a, b, _ = exchange(fed)
    fed.witness()
    seen: list[int] = []
    report = audit_peer(a.node, fed.http, b.id, progress=lambda done, total: seen.append(done))
    assert report.ok, report.problems
    assert report.size == b.node.ledger.head().size
    assert report.checked_checkpoints >= 1
    assert seen[-1] == report.size
    # b rewrites an entry behind its checkpoint: the served bundle no longer
    # hashes to the tiles, and the audit names it.
    with session_scope(b.node.sessions) as s:
        data = s.scalar(select(LogBlock.data).where(LogBlock.kind == "e", LogBlock.block == 0))
        assert data is not None
        s.execute(update(LogBlock).where(LogBlock.kind == "e", LogBlock.block == 0)
                  .values(data=data[:5] + bytes([data[5] ^ 1]) + data[6:]))
    report = audit_peer(a.node, fed.http, b.id)
    assert not report.ok
    assert any(p.startswith("entry 0 ") for p in report.problems)


def test_an_audit_of_damaged_tiles_reports_without_accusing(fed: LocalFederation) -> None:
    a, b, _ = exchange(fed)
    fed.witness()
    # b's tiles change under its own signed checkpoint: the server is damaged
    # or lying, but nothing b signed contradicts itself, so no alarm.
    with session_scope(b.node.sessions) as s:
        data = s.scalar(select(LogTile.data).where(LogTile.level == 0, LogTile.idx == 0))
        assert data is not None
        s.execute(update(LogTile).where(LogTile.level == 0, LogTile.idx == 0)
                  .values(data=bytes([data[0] ^ 1]) + data[1:]))
    b.node.ledger.cache.clear()
    report = audit_peer(a.node, fed.http, b.id)
    assert not report.ok
    assert any("differs from the served tiles" in p for p in report.problems)
    with read_scope(a.node.sessions) as s:
        assert s.scalars(select(LedgerAlarm.kind)).all() == []


def test_an_audit_that_finds_two_signed_histories_raises_an_alarm(
        fed: LocalFederation) -> None:
    a, b, _ = exchange(fed)
    fed.witness()
    # Earlier, b had shown a a checkpoint of another history (signed by b).
    size = 2
    other = sign_note(Checkpoint(b.node.ledger.origin, size, b"\x07" * 32).to_text(),
                      [NoteSigner(b.node.ledger.origin,
                                  b.node.local.signing_key.to_cryptography())])
    with session_scope(a.node.sessions) as s:
        s.add(PeerCheckpoint(peer_id=b.id, size=size, root=b"\x07" * 32,
                             checkpoint=other.decode(), seen_at=fed.clock.now(),
                             cosignature=""))
    report = audit_peer(a.node, fed.http, b.id)
    assert any(f"checkpoint {size} we cosigned is not a prefix" in p for p in report.problems)
    with read_scope(a.node.sessions) as s:
        assert s.scalars(select(LedgerAlarm.kind)).all() == ["audit"]
