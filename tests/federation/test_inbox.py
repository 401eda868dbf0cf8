"""The receiving side: every check at the inbox, each with its own error, nothing stored.

Deliveries here are built by hand with the sender's real keys (or forged ones)
and POSTed to the receiver's real ``/federation/inbox`` route.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from comity.clock import format_ts
from comity.db import session_scope
from comity.federation.envelope import Message, new_message_id, seal_delivery_of, seal_message
from comity.federation.models import InboxMessage, IssuedReceipt
from comity.hazmat import canonical
from comity.hazmat.keys import SigningKey, b64e
from comity.ledger.commitments import new_salt
from comity.ledger.models import LogOpening
from tests.support import LocalFederation, PeerNode


def stored(node: PeerNode) -> tuple[int, int, int]:
    """Inbox rows, receipts issued and log entries (nothing may be stored half-way)."""
    with session_scope(node.node.sessions) as s:
        return (s.scalar(select(func.count()).select_from(InboxMessage)) or 0,
                s.scalar(select(func.count()).select_from(IssuedReceipt)) or 0,
                s.scalar(select(func.count()).select_from(LogOpening)) or 0)


def make_message(sender: PeerNode, to: PeerNode, agreement: str | None, *,
                 type: str = "correspondence", body: dict[str, Any] | None = None,
                 created: dt.datetime | None = None, key: SigningKey | None = None,
                 message_id: str | None = None) -> Message:
    header = {"v": 1, "id": message_id or new_message_id(), "from": sender.id, "to": to.id,
              "agreement": agreement, "type": type,
              "created": format_ts(created or sender.node.clock.now()), "in_reply_to": None,
              "salt": new_salt()}
    body = body if body is not None else {"subject": "s", "text": "t", "language": "en"}
    return seal_message(key or sender.node.local.signing_key, header, body)


def deliver(sender: PeerNode, to: PeerNode, messages: list[Message], *,
            key: SigningKey | None = None, sent: dt.datetime | None = None,
            serial: int | None = None) -> Any:
    body = seal_delivery_of(key or sender.node.local.signing_key, sender=sender.id,
                         recipient=to.id, serial=serial or sender.node.local.serial,
                         sent=sent or sender.node.clock.now(), messages=messages)
    return to.client.post("/federation/inbox", content=body,
                          headers={"content-type": "application/json"})


@pytest.fixture
def trio(fed: LocalFederation) -> tuple[PeerNode, PeerNode, PeerNode, str, str]:
    a, b, c = fed.add("a"), fed.add("b"), fed.add("c")
    fed.introduce_all()
    ab = fed.agree(a, [b])
    bc = fed.agree(b, [c])
    return a, b, c, ab, bc


def test_valid_message_is_stored_with_a_signed_receipt(trio: Any) -> None:
    a, b, _, ab, _ = trio
    before = stored(b)
    msg = make_message(a, b, ab)
    resp = deliver(a, b, [msg])
    assert resp.status_code == 200
    answer = resp.json()
    assert answer["results"] == [{"id": msg.id, "status": "accepted", "receipt": 0}]
    receipt = answer["receipts"][0]
    assert receipt["entries"][0]["hash"] == msg.hash
    assert stored(b) == (before[0] + 1, before[1] + 1, before[2] + 1)


def _problem_of(resp: Any) -> str:
    if resp.status_code != 200:
        return str(resp.json()["type"]).rsplit(":", 1)[-1]
    result = resp.json()["results"][0]
    assert result["status"] in ("rejected", "deferred"), result
    return str(result["problem"]["type"]).rsplit(":", 1)[-1]


CASES = [
    "forged-message-signature", "forged-delivery-signature", "unknown-sender",
    "party-outside-agreement", "unknown-message-type", "out-of-scope-request-type",
    "stale-message", "future-message", "stale-delivery", "future-delivery",
    "wrong-recipient-delivery", "wrong-recipient-message", "malformed-header",
    "invalid-body", "no-agreement-named", "bad-salt",
]
EXPECTED = {
    "forged-message-signature": "bad-signature",
    "forged-delivery-signature": "bad-signature",
    "unknown-sender": "unknown-sender",
    "party-outside-agreement": "not-a-party",
    "unknown-message-type": "unknown-message-type",
    "out-of-scope-request-type": "out-of-scope",
    "stale-message": "stale-timestamp",
    "future-message": "future-timestamp",
    "stale-delivery": "stale-timestamp",
    "future-delivery": "future-timestamp",
    "wrong-recipient-delivery": "wrong-recipient",
    "wrong-recipient-message": "wrong-recipient",
    "malformed-header": "malformed-message",
    "invalid-body": "invalid-body",
    "no-agreement-named": "no-agreement",
    "bad-salt": "malformed-message",
}


@pytest.mark.parametrize("case", CASES)
def test_each_bad_input_has_its_own_error_and_stores_nothing(
        trio: Any, fed: LocalFederation, case: str) -> None:
    a, b, c, ab, bc = trio
    now = fed.clock.now()
    stranger = fed.add("stranger")  # known to nobody
    before = stored(b)
    if case == "forged-message-signature":
        resp = deliver(a, b, [make_message(a, b, ab, key=SigningKey.generate())])
    elif case == "forged-delivery-signature":
        resp = deliver(a, b, [make_message(a, b, ab)], key=SigningKey.generate())
    elif case == "unknown-sender":
        resp = deliver(stranger, b, [make_message(stranger, b, ab)])
    elif case == "party-outside-agreement":
        resp = deliver(a, b, [make_message(a, b, bc)])
    elif case == "unknown-message-type":
        resp = deliver(a, b, [make_message(a, b, ab, type="exotic.type")])
    elif case == "out-of-scope-request-type":
        resp = deliver(a, b, [make_message(a, b, ab, body={
            "subject": "s", "text": "t", "language": "en", "request_type": "joint-team"})])
    elif case == "stale-message":
        resp = deliver(a, b, [make_message(a, b, ab, created=now - dt.timedelta(days=8))])
    elif case == "future-message":
        resp = deliver(a, b, [make_message(a, b, ab, created=now + dt.timedelta(hours=1))])
    elif case == "stale-delivery":
        resp = deliver(a, b, [make_message(a, b, ab)], sent=now - dt.timedelta(minutes=10))
    elif case == "future-delivery":
        resp = deliver(a, b, [make_message(a, b, ab)], sent=now + dt.timedelta(minutes=10))
    elif case == "wrong-recipient-delivery":
        resp = deliver(a, c, [make_message(a, b, ab)])
        before, b = stored(c), c
    elif case == "wrong-recipient-message":
        resp = deliver(a, b, [make_message(a, c, ab)])
    elif case in ("malformed-header", "bad-salt"):
        msg = make_message(a, b, ab)
        header = ({**msg.header, "type": "Not A Type!"} if case == "malformed-header"
                  else {**msg.header, "salt": "c2hvcnQ"})
        signed = canonical.dumps({"header": header, "body": msg.body})
        broken = Message(header, msg.body, a.node.local.signing_key.sign(signed), signed,
                         canonical.sha256_hex(signed))
        resp = deliver(a, b, [broken])
    elif case == "invalid-body":
        resp = deliver(a, b, [make_message(a, b, ab, body={"subject": "s"})])
    elif case == "no-agreement-named":
        resp = deliver(a, b, [make_message(a, b, None)])
    else:  # pragma: no cover
        raise AssertionError(case)
    assert _problem_of(resp) == EXPECTED[case]
    assert stored(b) == before


def test_replay_with_different_content_is_refused(trio: Any) -> None:
    a, b, _, ab, _ = trio
    first = make_message(a, b, ab)
    assert deliver(a, b, [first]).json()["results"][0]["status"] == "accepted"
    before = stored(b)
    forged = make_message(a, b, ab, message_id=first.id,
                          body={"subject": "other", "text": "t", "language": "en"})
    resp = deliver(a, b, [forged])
    assert _problem_of(resp) == "replayed-message-id"
    assert stored(b) == before


def test_duplicate_delivery_returns_the_original_receipt(trio: Any, fed: LocalFederation) -> None:
    a, b, _, ab, _ = trio
    msg = make_message(a, b, ab)
    first = deliver(a, b, [msg]).json()
    before = stored(b)
    fed.clock.advance(30)
    again = deliver(a, b, [msg]).json()
    assert again["results"] == [{"id": msg.id, "status": "duplicate", "receipt": 1}]
    assert again["receipts"][1] == first["receipts"][0]
    assert stored(b) == before


def test_same_message_twice_in_one_delivery_is_stored_once(trio: Any) -> None:
    a, b, _, ab, _ = trio
    msg = make_message(a, b, ab)
    before = stored(b)
    answer = deliver(a, b, [msg, msg]).json()
    assert [r["status"] for r in answer["results"]] == ["accepted", "duplicate"]
    assert stored(b) == (before[0] + 1, before[1] + 1, before[2] + 1)


def test_one_bad_message_does_not_sink_the_batch(trio: Any) -> None:
    a, b, _, ab, _ = trio
    good1, good2 = make_message(a, b, ab), make_message(a, b, ab)
    bad = make_message(a, b, ab, type="exotic.type")
    before = stored(b)
    answer = deliver(a, b, [good1, bad, good2]).json()
    assert [r["status"] for r in answer["results"]] == ["accepted", "rejected", "accepted"]
    assert stored(b) == (before[0] + 2, before[1] + 1, before[2] + 2)


def test_a_deferred_message_holds_back_those_after_it(trio: Any, fed: LocalFederation) -> None:
    """Order per peer: nothing after a retryable rejection is stored out of order."""
    a, b, _, ab, _ = trio
    unknown_agreement = "00000000-0000-4000-8000-000000000000"
    first = make_message(a, b, unknown_agreement)
    second = make_message(a, b, ab)
    before = stored(b)
    answer = deliver(a, b, [first, second]).json()
    assert [r["status"] for r in answer["results"]] == ["deferred", "deferred"]
    assert stored(b) == before


@pytest.mark.parametrize(("content", "ctype", "status", "slug"), [
    (b"{not json", "application/json", 400, "malformed-json"),
    (b"[1, 2]", "application/json", 400, "malformed-message"),
    (b'{"type": "comity.delivery"}', "application/json", 400, "malformed-message"),
    (b"{}", "text/plain", 415, "unsupported-media-type"),
])
def test_malformed_deliveries(trio: Any, content: bytes, ctype: str, status: int,
                              slug: str) -> None:
    _, b, _, _, _ = trio
    before = stored(b)
    resp = b.client.post("/federation/inbox", content=content, headers={"content-type": ctype})
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["type"] == f"urn:comity:problem:{slug}"
    assert stored(b) == before


def test_oversized_bodies_are_refused(fed: LocalFederation) -> None:
    a = fed.add("a", max_delivery_bytes=64 * 1024, max_message_bytes=8 * 1024)
    b = fed.add("b", max_delivery_bytes=64 * 1024, max_message_bytes=8 * 1024)
    fed.introduce_all()
    ab = fed.agree(a, [b])
    before = stored(b)
    huge = b"{" + b" " * (70 * 1024) + b"}"
    resp = b.client.post("/federation/inbox", content=huge,
                         headers={"content-type": "application/json"})
    assert resp.status_code == 413
    assert resp.json()["type"].endswith("payload-too-large")
    # One message over the per-message limit inside an acceptable delivery.
    big = make_message(a, b, ab, body={"subject": "s", "text": "x" * 10_000, "language": "en"})
    assert _problem_of(deliver(a, b, [big])) == "payload-too-large"
    assert stored(b) == before
    # The sender refuses to queue it in the first place.
    resp = a.client.post("/api/messages", headers={"authorization": f"Bearer {a.token}"},
                         json={"to": b.id, "agreement": ab, "type": "correspondence",
                               "body": {"subject": "s", "text": "x" * 10_000,
                                        "language": "en"}})
    assert resp.status_code == 413


def test_api_body_limit(fed: LocalFederation) -> None:
    a = fed.add("a", max_api_body_bytes=4096)
    resp = a.client.post("/api/peers", headers={"authorization": f"Bearer {a.token}",
                                                "content-type": "application/json"},
                         content=b"[" + b"0," * 5000 + b"0]")
    assert resp.status_code == 413


def test_cards_are_only_accepted_from_known_peers(fed: LocalFederation) -> None:
    b = fed.add("b")
    stranger = fed.add("stranger")
    chain = [c.doc for c in stranger.node.local.chain]
    resp = b.client.post("/federation/cards", content=orjson.dumps(chain),
                         headers={"content-type": "application/json"})
    assert resp.status_code == 403
    assert resp.json()["type"].endswith("unknown-sender")
    assert b.api("GET", "/api/peers") == []


def test_api_requires_a_valid_token(fed: LocalFederation) -> None:
    a = fed.add("a")
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": a.token}):
        resp = a.client.get("/api/peers", headers=headers)
        assert resp.status_code == 401
        assert resp.json()["type"].endswith("unauthorized")
    assert a.client.get("/healthz").status_code == 200
    assert "/api/agreements" in a.client.get("/openapi.json").json()["paths"]


def test_delivery_signature_covers_every_message(trio: Any) -> None:
    """Swapping in another signed message after signing the delivery breaks it."""
    a, b, _, ab, _ = trio
    m1, m2 = make_message(a, b, ab), make_message(a, b, ab)
    body = orjson.loads(seal_delivery_of(a.node.local.signing_key, sender=a.id, recipient=b.id,
                                      serial=1, sent=a.node.clock.now(), messages=[m1]))
    body["messages"] = [m2.envelope()]
    before = stored(b)
    resp = b.client.post("/federation/inbox", content=orjson.dumps(body),
                         headers={"content-type": "application/json"})
    assert resp.status_code == 401
    assert stored(b) == before
    body["messages"] = [m1.envelope()]
    body["sig"] = b64e(b"\0" * 64)
    assert b.client.post("/federation/inbox", content=orjson.dumps(body),
                         headers={"content-type": "application/json"}).status_code == 401


def test_card_push_body_limit(fed: LocalFederation) -> None:
    b = fed.add("b")
    resp = b.client.post("/federation/cards", content=b"[" + b" " * (300 * 1024) + b"]",
                         headers={"content-type": "application/json"})
    assert resp.status_code == 413
    assert resp.json()["type"].endswith("payload-too-large")
