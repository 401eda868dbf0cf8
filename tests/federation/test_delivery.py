"""The sending side: durable outbox, retries with backoff, receipts, key rotation."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from sqlalchemy import select

from comity.db import session_scope
from comity.federation.models import HeldReceipt, OutboxMessage
from comity.identity.services import rotate_keys
from tests.federation.test_inbox import deliver, make_message
from tests.support import LocalFederation, PeerNode, letter


def outbox(node: PeerNode) -> list[OutboxMessage]:
    with session_scope(node.node.sessions) as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.seq)))


def send(a: PeerNode, b: PeerNode, aid: str, n: int = 1, **body: Any) -> list[str]:
    resp = a.api("POST", "/api/messages/batch",
                 json={"messages": [letter(b, aid, **body) for _ in range(n)]}, expect=201)
    return [m["id"] for m in resp["messages"]]


def test_messages_arrive_in_order_with_receipts(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    ids = send(a, b, aid, 25)
    assert fed.pump() == 25
    rows = [r for r in outbox(a) if r.type == "correspondence"]
    assert [r.message_id for r in rows] == ids
    assert all(r.status == "delivered" and r.receipt_id for r in rows)
    received = b.api("GET", "/api/inbox", params={"limit": 1000})
    got = [m["id"] for m in sorted(received, key=lambda m: m["seq"])
           if m["type"] == "correspondence"]
    assert got == ids
    # The sender holds the receiver's signed receipt for each message.
    shown = a.api("GET", f"/api/messages/{ids[0]}")
    assert shown["receipt"]["from"] == b.id
    assert any(e["id"] == ids[0] and e["hash"] == shown["hash"]
               for e in shown["receipt"]["entries"])


def test_unreachable_peer_is_retried_with_backoff_then_delivered_once(
        fed: LocalFederation) -> None:
    a, b = fed.add("a", retry_base_seconds=2, retry_max_seconds=60), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    ids = send(a, b, aid, 3)
    fed.router.down.add("b.test")
    delays = []
    for attempt in range(1, 6):
        out = a.node.federation.deliver_batch(b.id, fed.http)
        assert out.delivered == 0
        assert out.retry_at is not None
        head = outbox(a)[-3]
        assert head.attempts == attempt
        assert head.status == "pending"
        assert "ConnectError" in (head.last_error or "")
        delay = (out.retry_at - fed.clock.now()).total_seconds()
        nominal = min(60, 2 * 2 ** (attempt - 1))
        assert nominal / 2 <= delay <= nominal  # exponential, with jitter
        delays.append(delay)
        # Before the retry time nothing is attempted.
        assert a.node.federation.deliver_batch(b.id, fed.http).retry_at == out.retry_at
        fed.clock.at = out.retry_at
    assert delays[-1] > delays[0]
    fed.router.down.clear()
    assert fed.pump() == 3
    assert [m["id"] for m in b.api("GET", "/api/inbox", params={"peer": a.id})
            if m["type"] == "correspondence"][::-1] == ids


def test_lost_answer_is_retried_and_the_original_receipt_returned(fed: LocalFederation) -> None:
    """Crashed after the receiver wrote, before the sender heard back."""
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    send(a, b, aid, 2)

    class LoseAnswer(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            fed.router.handle_request(request)  # the receiver stores it ...
            raise httpx.ReadTimeout("answer lost", request=request)  # ... we never hear

    with httpx.Client(transport=LoseAnswer()) as lossy:
        out = a.node.federation.deliver_batch(b.id, lossy)
    assert out.delivered == 0
    fed.pump()
    rows = [r for r in outbox(a) if r.type == "correspondence"]
    assert all(r.status == "delivered" for r in rows)
    inbox = [m for m in b.api("GET", "/api/inbox") if m["type"] == "correspondence"]
    assert len(inbox) == 2


def test_forged_receipt_leaves_message_pending(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    send(a, b, aid, 1)

    class ForgeReceipt(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            resp = fed.router.handle_request(request)
            answer = orjson.loads(resp.read())
            answer["receipts"][0]["received"] = "2000-01-01T00:00:00.000000Z"
            return httpx.Response(200, content=orjson.dumps(answer))

    with httpx.Client(transport=ForgeReceipt()) as forging:
        out = a.node.federation.deliver_batch(b.id, forging)
    assert out.delivered == 0
    row = outbox(a)[-1]
    assert row.status == "pending"
    assert "BadSignatureError" in (row.last_error or "")
    with session_scope(a.node.sessions) as s:
        assert s.scalar(select(HeldReceipt).where(HeldReceipt.peer_id == b.id).where(
            HeldReceipt.receipt.contains(b"2000-01-01"))) is None


def test_final_rejection_fails_one_message_and_the_rest_flow(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    send(a, b, aid, 1)
    # B stops speaking "correspondence" (e.g. an older version): a final answer.
    b.node.federation.types._types.pop("correspondence")
    fed.pump()
    row = outbox(a)[-1]
    assert row.status == "failed"
    assert "unknown-message-type" in (row.last_error or "")


def test_retryable_rejection_waits_and_keeps_order(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    b.api("POST", f"/api/agreements/{aid}/suspend", json={"reason": "audit"})
    ids = send(a, b, aid, 3)  # A has not heard of the suspension yet
    out = a.node.federation.deliver_batch(b.id, fed.http)
    assert out.delivered == 0
    assert out.retry_at is not None
    assert [r.status for r in outbox(a)[-3:]] == ["pending"] * 3
    b.api("POST", f"/api/agreements/{aid}/resume", json={})
    fed.pump()
    got = [m["id"] for m in b.api("GET", "/api/inbox", params={"peer": a.id})
           if m["type"] == "correspondence"][::-1]
    assert got == ids


def test_rotation_is_learned_and_old_key_is_refused(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    old_key = a.node.local.signing_key
    queued = send(a, b, aid, 2)  # signed with the old key, not yet delivered
    rotate_keys(a.node.settings.data_dir, clock=fed.clock)
    assert a.node.local.serial == 2
    # B learns the new card from A's next delivery (stale card -> chain push).
    assert fed.pump() >= 2
    assert b.api("GET", f"/api/peers/{a.id}")["serial"] == 2
    rows = {r.message_id: r for r in outbox(a)}
    assert all(rows[m].status == "delivered" and rows[m].signed_serial == 2 for m in queued)
    # A message signed with the old key after the rotation is refused ...
    stale = make_message(a, b, aid, key=old_key)
    answer = deliver(a, b, [stale])
    assert answer.status_code == 200
    assert answer.json()["results"][0]["problem"]["type"].endswith("bad-signature")
    # ... and so is a delivery signed with it.
    resp = deliver(a, b, [make_message(a, b, aid)], key=old_key)
    assert resp.status_code == 401
    # The new key is accepted.
    assert deliver(a, b, [make_message(a, b, aid)]).json()["results"][0]["status"] == "accepted"


def test_receiver_rotation_is_learned_from_its_receipts(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    rotate_keys(b.node.settings.data_dir, clock=fed.clock)
    rotate_keys(b.node.settings.data_dir, clock=fed.clock)
    send(a, b, aid, 1)
    fed.pump()
    assert outbox(a)[-1].status == "delivered"
    assert a.api("GET", f"/api/peers/{b.id}")["serial"] == 3


def test_message_over_the_receivers_limit_fails_alone(fed: LocalFederation) -> None:
    """The receiver's limit is smaller than the sender's: that message fails, others flow."""
    a = fed.add("a")
    b = fed.add("b", max_message_bytes=2048)
    fed.introduce_all()
    aid = fed.agree(a, [b])
    big = send(a, b, aid, 1, text="x" * 4000)
    small = send(a, b, aid, 2)
    fed.pump()
    rows = {r.message_id: r for r in outbox(a)}
    assert rows[big[0]].status == "failed"
    assert "payload-too-large" in (rows[big[0]].last_error or "")
    assert [rows[m].status for m in small] == ["delivered", "delivered"]
