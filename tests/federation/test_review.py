"""Regression tests for defects found in review: each failed before its fix."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from comity.agreements import services
from comity.agreements.authorization import Purpose
from comity.agreements.errors import AgreementNotInForceError
from comity.agreements.schemas import AgreementDocument
from comity.clock import format_ts
from comity.db import session_scope
from comity.hazmat.keys import b64e
from comity.identity.services import rotate_keys
from tests.federation.test_delivery import outbox, send
from tests.federation.test_inbox import deliver, make_message
from tests.support import LocalFederation


def test_rolled_back_change_never_poisons_the_agreement_cache(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    fed_a = a.node.federation

    def authorize(s: Any) -> None:
        fed_a.authorize_in(s, agreement_id=aid, local_id=a.id, peer_id=b.id,
                           purpose=Purpose(), at=fed.clock.now())

    with pytest.raises(RuntimeError), session_scope(a.node.sessions) as s:  # noqa: PT012
        services.amend(s, a.node.local, aid, now=fed.clock.now(), title="draft")
        authorize(s)  # sees the uncommitted draft; must not cache it
        raise RuntimeError("the request failed; everything rolls back")
    with session_scope(a.node.sessions) as s:  # a real change, same generation number
        services.suspend(s, a.node.local, a.node.federation, aid, reason="audit",
                         now=fed.clock.now())
    with pytest.raises(AgreementNotInForceError), session_scope(a.node.sessions) as s:
        authorize(s)


def test_duplicate_receipt_from_before_a_rotation_still_verifies(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    first = send(a, b, aid, 1)

    class LoseAnswer(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            fed.router.handle_request(request)
            raise httpx.ReadTimeout("answer lost", request=request)

    with httpx.Client(transport=LoseAnswer()) as lossy:
        a.node.federation.deliver_batch(b.id, lossy)
    rotate_keys(b.node.settings.data_dir, clock=fed.clock)
    second = send(a, b, aid, 1)
    fed.pump()
    rows = {r.message_id: r for r in outbox(a)}
    assert [rows[m].status for m in first + second] == ["delivered", "delivered"]


def test_batches_shrink_to_fit_a_peer_with_a_smaller_body_limit(fed: LocalFederation) -> None:
    a = fed.add("a")
    b = fed.add("b", max_delivery_bytes=8192, max_message_bytes=3000)
    fed.introduce_all()
    aid = fed.agree(a, [b])
    ids = send(a, b, aid, 4, text="x" * 2200)
    fed.pump()
    rows = {r.message_id: r for r in outbox(a)}
    assert [rows[m].status for m in ids] == ["delivered"] * 4


def test_ended_agreement_fails_the_message_and_does_not_block_the_peer(
        fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    until = format_ts(fed.clock.now() + dt.timedelta(hours=1))
    short = fed.agree(a, [b], valid_until=until)
    lasting = fed.agree(a, [b])
    fed.router.down.add("b.test")
    doomed = send(a, b, short, 1)
    later = send(a, b, lasting, 1)
    fed.clock.advance(2 * 3600)
    fed.router.down.clear()
    fed.pump()
    rows = {r.message_id: r for r in outbox(a)}
    assert rows[doomed[0]].status == "failed"
    assert "agreement-ended" in (rows[doomed[0]].last_error or "")
    assert rows[later[0]].status == "delivered"


def test_a_withdrawn_party_cannot_propose_an_amendment(fed: LocalFederation) -> None:
    a, b, c = fed.add("a"), fed.add("b"), fed.add("c")
    fed.introduce_all()
    aid = fed.agree(a, [b, c])
    c.api("POST", f"/api/agreements/{aid}/withdraw", json={"reason": "leaving"})
    fed.pump()
    v1 = AgreementDocument.model_validate(a.api("GET", f"/api/agreements/{aid}")[
        "versions"][0]["document"])
    v2 = AgreementDocument.model_validate({
        **v1.to_dict(), "version": 2, "title": "hijack", "proposed_by": c.id,
        "supersedes": {"version": 1, "hash": v1.doc_hash()}})
    sig = {"party": c.id, "serial": 1,
           "sig": b64e(c.node.local.signing_key.sign(v2.canonical_bytes()))}
    msg = make_message(c, a, aid, type="agreement.propose",
                       body={"document": v2.to_dict(), "signature": sig})
    result = deliver(c, a, [msg]).json()["results"][0]
    assert result["status"] == "rejected"
    assert result["problem"]["type"].endswith("not-a-party")
    assert len(a.api("GET", f"/api/agreements/{aid}")["versions"]) == 1


def test_malformed_agreement_signature_is_refused_alone(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    doc = a.api("GET", f"/api/agreements/{aid}")["versions"][0]["document"]
    bad = make_message(b, a, aid, type="agreement.sign", body={
        "document": doc, "signature": {"party": b.id, "serial": 1, "sig": "!!"}})
    good = make_message(b, a, aid)
    answer = deliver(b, a, [bad, good])
    assert answer.status_code == 200
    statuses = [r["status"] for r in answer.json()["results"]]
    assert statuses == ["rejected", "accepted"]
    assert answer.json()["results"][0]["problem"]["type"].endswith("invalid-agreement")



def test_a_colliding_copy_of_a_delivery_is_told_to_retry(
        fed: LocalFederation, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two copies of one delivery at once (PostgreSQL): the loser stores nothing, gets 503."""
    from sqlalchemy.exc import IntegrityError

    from comity.federation.receiving import Receiver

    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    real = Receiver._store

    def collide(self: Receiver, session: Any, *args: Any) -> Any:
        real(self, session, *args)
        session.flush()
        raise IntegrityError("INSERT INTO inbox", {}, Exception("duplicate key"))

    monkeypatch.setattr(Receiver, "_store", collide)
    msg = make_message(a, b, aid)
    resp = deliver(a, b, [msg])
    assert resp.status_code == 503
    assert resp.json()["type"].endswith("retry-later")
    monkeypatch.setattr(Receiver, "_store", real)
    assert all(m["id"] != msg.id for m in b.api("GET", "/api/inbox", params={"peer": a.id}))
    assert deliver(a, b, [msg]).json()["results"][0]["status"] == "accepted"


def test_holding_the_same_receipt_twice_keeps_one_copy(fed: LocalFederation) -> None:
    from sqlalchemy import func, select

    from comity.federation.envelope import Receipt
    from comity.federation.models import HeldReceipt

    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    doc = {"type": "comity.receipt", "v": 1, "from": b.id, "to": a.id, "serial": 1,
           "received": format_ts(fed.clock.now()), "entries": [], "sig": "x"}
    ids = []
    for _ in range(2):
        with session_scope(a.node.sessions) as s:
            ids.append(a.node.federation._hold_receipt(s, Receipt(doc), b.id, fed.clock.now()))
    assert ids[0] == ids[1]
    with session_scope(a.node.sessions) as s:
        assert s.scalar(select(func.count()).select_from(HeldReceipt)) == 1
