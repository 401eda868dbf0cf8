"""Kill -9 the receiver, and separately the sender, while 10,000 messages flow.

Two real ``comity node serve`` processes on loopback. The test queues 10,000
messages at the sender (through the same outbox the CLI writes to) while a
chaos loop SIGKILLs one process or the other at random moments and restarts
it. Afterwards every message must have been delivered exactly once, with the
same content hash on both sides, in the sender's order, and every receipt must
name the receiver's stored copy. Bounded in time: it fails, never hangs.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from comity.db import session_scope
from comity.federation.envelope import parse_message
from comity.federation.models import HeldReceipt, InboxMessage, OutboxMessage
from comity.hazmat.keys import VerifyKey
from comity.ledger.commitments import parse_opening
from comity.ledger.models import LogOpening
from comity.localnet import LocalNode, agree, introduce, spawn, wait_for
from comity.node import Node
from tests.support import SCOPE

TOTAL = 10_000
CHUNK = 500
DEADLINE_S = 420


def _start_pair(tmp_path: Path, db_url: Callable[[str], str]) -> tuple[LocalNode, LocalNode]:
    env = {"COMITY_POLL_INTERVAL_SECONDS": "0.2", "COMITY_RETRY_BASE_SECONDS": "0.05",
           "COMITY_RETRY_MAX_SECONDS": "0.5", "COMITY_DELIVERY_TIMEOUT_SECONDS": "10"}
    nodes = [spawn(tmp_path, key, jurisdiction=cc, env=env, database_url=db_url(key))
             for key, cc in (("sender", "FR"), ("receiver", "KE"))]
    introduce(nodes)
    return nodes[0], nodes[1]


def _chaos(nodes: list[LocalNode], stop: threading.Event, kills: dict[str, int],
           rng: random.Random) -> None:
    while not stop.is_set():
        if stop.wait(rng.uniform(0.3, 1.5)):
            return
        victim = rng.choice(nodes)
        victim.kill()
        kills[victim.key] += 1
        time.sleep(rng.uniform(0.0, 0.4))
        victim.start(wait=False)
        victim.wait_healthy(timeout=60)


def _check_exactly_once(sender: Node, receiver: Node, sender_id: str) -> dict[str, Any]:
    with session_scope(sender.sessions) as s:
        out = list(s.scalars(select(OutboxMessage).where(OutboxMessage.type == "correspondence")
                             .order_by(OutboxMessage.seq)))
        receipts = {r.receipt_id: orjson.loads(r.receipt) for r in s.scalars(select(HeldReceipt))}
        sent_open = {r.idx: parse_opening(r.opening) for r in s.scalars(
            select(LogOpening).where(LogOpening.kind == "SENT"))}
    with session_scope(receiver.sessions) as s:
        inbox = list(s.scalars(select(InboxMessage).where(
            InboxMessage.sender_id == sender_id, InboxMessage.type == "correspondence")
            .order_by(InboxMessage.seq)))
        received_open = {r.idx: parse_opening(r.opening) for r in s.scalars(
            select(LogOpening).where(LogOpening.kind == "RECEIVED"))}
    assert len(out) == TOTAL
    assert [r.status for r in out if r.status != "delivered"] == []
    assert len(inbox) == TOTAL, "lost or duplicated messages"
    # Same messages, same content, same order.
    assert [(r.message_id, r.message_hash) for r in out] == [
        (r.message_id, r.message_hash) for r in inbox]
    for row in inbox[:: max(1, TOTAL // 500)]:
        assert parse_message(orjson.loads(row.envelope), max_bytes=1 << 20).hash == (
            row.message_hash)
    # Every receipt names the receiver's stored copy.
    by_id = {r.message_id: r for r in inbox}
    key = VerifyKey(receiver.local.card.signing_key.raw)
    for row in out:
        receipt = receipts[row.receipt_id]
        entry = next(e for e in receipt["entries"] if e["id"] == row.message_id)
        assert entry["hash"] == row.message_hash
        assert entry["seq"] == row.receiver_seq == by_id[row.message_id].seq
        # ... and its entry in the receiver's log, as does the sender's own entry.
        assert entry["log"] == row.receiver_log_index == by_id[row.message_id].log_index
        assert received_open[entry["log"]].act["message"] == row.message_hash
        assert row.log_index is not None
        assert sent_open[row.log_index].act["message"] == row.message_hash
    # One entry per stored copy: none lost, none written twice.
    assert len({r.log_index for r in inbox}) == TOTAL
    assert {r.log_index for r in inbox} <= set(received_open)
    assert key.raw == receiver.local.card.signing_key.raw
    return {"messages": len(out), "receipts": len(receipts)}


@pytest.mark.slow
def test_kill9_sender_and_receiver_loses_and_duplicates_nothing(
        tmp_path: Path, db_url_factory: Callable[[str], str]) -> None:
    sender, receiver = _start_pair(tmp_path, db_url_factory)
    rng = random.Random(20261129)
    stop = threading.Event()
    kills = {"sender": 0, "receiver": 0}
    chaos = threading.Thread(target=_chaos, args=([sender, receiver], stop, kills, rng))
    sender_db = receiver_db = None
    try:
        aid = agree(sender, [receiver], title="Crash test", scope=SCOPE)
        sender_db, receiver_db = sender.open_node(), receiver.open_node()
        started = time.monotonic()
        chaos.start()
        body = {"subject": "Preservation", "text": "x" * 200, "language": "en"}
        for _ in range(TOTAL // CHUNK):
            with session_scope(sender_db.sessions) as s:
                for _ in range(CHUNK):
                    sender_db.federation.send(s, to=receiver.node_id, type="correspondence",
                                              body=body, agreement_id=aid)
            time.sleep(rng.uniform(0, 0.3))

        def all_delivered() -> bool:
            assert sender_db is not None
            with session_scope(sender_db.sessions) as s:
                return s.scalar(select(OutboxMessage.seq).where(
                    OutboxMessage.status != "delivered").limit(1)) is None

        # Keep killing until at least three of each have happened, then let it drain.
        wait_for("chaos", lambda: min(kills.values()) >= 3 or not chaos.is_alive(),
                 timeout=DEADLINE_S / 2)
        stop.set()
        chaos.join(90)
        for node in (sender, receiver):
            if not node.running():
                node.start()
        remaining = DEADLINE_S - (time.monotonic() - started)
        wait_for("every message delivered", all_delivered, timeout=max(remaining, 30),
                 interval=0.5)
        result = _check_exactly_once(sender_db, receiver_db, sender.node_id)
        assert min(kills.values()) >= 3, kills
        print(f"\ncrash test: {result}, kills {kills}")
    finally:
        stop.set()
        if chaos.is_alive():
            chaos.join(90)
        for node in (sender, receiver):
            node.close()
        for db in (sender_db, receiver_db):
            if db is not None:
                db.close()
