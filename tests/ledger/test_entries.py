"""What the federation and the agreements write to the log: salted commitments only."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select

from comity.db import read_scope, session_scope
from comity.federation.models import HeldReceipt, InboxMessage, OutboxMessage
from comity.ledger.commitments import Opening, OpeningError, new_salt, parse_opening
from comity.ledger.models import LogOpening, LogPending
from comity.ledger.services import record_at_commit
from comity.ledger.storage import decode_bundle
from tests.federation.test_delivery import send
from tests.support import LocalFederation, PeerNode


def log_entries(node: PeerNode) -> list[bytes]:
    """Every entry of the node's log, integrated or still pending."""
    ledger = node.node.ledger
    while ledger.integrate():
        pass
    size = ledger.head().size
    out: list[bytes] = []
    for n in range((size + 255) // 256):
        width = min(256, size - 256 * n)
        path = f"{n:03d}" + ("" if width == 256 else f".p/{width}")
        out += decode_bundle(node.client.get(f"/log/tile/entries/{path}").content)
    return out


def openings(node: PeerNode, kind: str) -> dict[int, Opening]:
    with read_scope(node.node.sessions) as s:
        return {row.idx: parse_opening(row.opening) for row in s.scalars(
            select(LogOpening).where(LogOpening.kind == kind))}


def test_each_message_is_sent_and_received_in_both_logs_and_the_receipt_names_it(
        fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    ids = send(a, b, aid, 3)
    fed.pump()
    a_log, b_log = log_entries(a), log_entries(b)
    sent, received = openings(a, "SENT"), openings(b, "RECEIVED")
    with read_scope(a.node.sessions) as s:
        rows = {r.message_id: r for r in s.scalars(select(OutboxMessage))}
        held = [orjson.loads(h.receipt) for h in s.scalars(select(HeldReceipt))]
    with read_scope(b.node.sessions) as s:
        inbox = {r.message_id: r for r in s.scalars(select(InboxMessage))}
    receipt_entries = {e["id"]: e for r in held for e in r["entries"]}
    for mid in ids:
        row, copy = rows[mid], inbox[mid]
        assert row.log_index is not None
        assert copy.log_index is not None
        s_open, r_open = sent[row.log_index], received[copy.log_index]
        # Each log's entry is the commitment to its opening, and both openings
        # use the salt of the message, so either party can open either entry.
        assert a_log[row.log_index] == s_open.commitment()
        assert b_log[copy.log_index] == r_open.commitment()
        assert s_open.salt == r_open.salt
        assert s_open.act == r_open.act == {"message": row.message_hash, "from": a.id,
                                            "to": b.id}
        # The receipt names the receiver's entry; the sender stored it.
        assert receipt_entries[mid]["log"] == copy.log_index == row.receiver_log_index
    # Entries reveal nothing: no message hash, node id or agreement id inside,
    # and the two logs share no entry.
    secrets_ = [bytes.fromhex(r.message_hash) for r in rows.values()]
    secrets_ += [x.encode() for x in (a.id, b.id, aid, *ids)]
    for entry in a_log + b_log:
        assert len(entry) == 32
        assert not any(s in entry for s in secrets_)
    assert not set(a_log) & set(b_log)


def test_agreement_acts_are_logged_with_the_act_and_vanish_with_a_rollback(
        fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    acts = [o.act for o in openings(a, "AGREEMENT").values()]
    assert {(x["event"], x["party"]) for x in acts if x["agreement"] == aid} >= {
        ("signature", a.id), ("signature", b.id), ("signed-by-all", None)}
    before = len(openings(b, "AGREEMENT"))
    b.api("POST", f"/api/agreements/{aid}/suspend", json={"reason": "audit"}, expect=200)
    after = [o.act for o in openings(b, "AGREEMENT").values()]
    assert len(after) == before + 1
    assert after[-1]["event"] == "suspend"
    assert after[-1]["party"] == b.id

    # An act that fails leaves no entry behind, pending or kept.
    with read_scope(b.node.sessions) as s:
        pending = s.scalars(select(LogPending.idx)).all()

    def failing_act() -> None:
        with session_scope(b.node.sessions) as s:
            record_at_commit(s, Opening("AGREEMENT", {"event": "x"}, new_salt()))
            raise RuntimeError("the act failed")

    with pytest.raises(RuntimeError):
        failing_act()
    with read_scope(b.node.sessions) as s:
        assert s.scalars(select(LogPending.idx)).all() == pending
    assert len(openings(b, "AGREEMENT")) == before + 1


def test_openings_are_parsed_strictly() -> None:
    good = Opening("SENT", {"message": "00" * 32}, new_salt())
    assert parse_opening(good.to_json()) == good
    assert parse_opening(good.to_json()).commitment() == good.commitment()
    bad = [
        "not json", "[]", '{"kind": "SENT", "act": {}}',
        '{"kind": "LIE", "act": {}, "salt": "' + good.salt + '"}',
        '{"kind": "SENT", "act": [], "salt": "' + good.salt + '"}',
        '{"kind": "SENT", "act": {}, "salt": "short"}',
        '{"kind": "SENT", "act": {}, "salt": "' + good.salt + '", "extra": 1}',
    ]
    for text in bad:
        with pytest.raises(OpeningError):
            parse_opening(text)
    other = Opening("SENT", {"message": "00" * 32}, new_salt())
    assert other.commitment() != good.commitment()
    assert Opening("RECEIVED", good.act, good.salt).commitment() != good.commitment()
