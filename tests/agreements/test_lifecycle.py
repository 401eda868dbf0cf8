"""Agreements over the federation: propose, sign, in force, amend, suspend, withdraw."""

from __future__ import annotations

import datetime as dt

import pytest

from comity.clock import format_ts
from tests.support import SCOPE, LocalFederation, letter


def test_bilateral_agreement_comes_into_force_only_when_both_signed(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    draft = a.api("POST", "/api/agreements", json={
        "title": "A–B", "parties": [b.id], "scope": SCOPE}, expect=201)
    aid = draft["id"]
    assert draft["status"] == "draft"
    assert fed.pump() == 0  # drafts stay home
    a.api("POST", f"/api/agreements/{aid}/propose")
    assert a.agreement_status(aid) == "proposed"
    assert fed.pump() == 1
    assert b.agreement_status(aid) == "proposed"
    # Not in force while B has not signed: B may not send under it.
    resp = b.client.post("/api/messages", headers={"authorization": f"Bearer {b.token}"},
                         json=letter(a, aid))
    assert resp.status_code == 403
    assert resp.json()["type"] == "urn:comity:problem:agreement-not-in-force"
    b.api("POST", f"/api/agreements/{aid}/sign")
    assert b.agreement_status(aid) == "in_force"
    fed.pump()
    assert a.agreement_status(aid) == "in_force"
    shown = a.api("GET", f"/api/agreements/{aid}")
    assert shown["versions"][0]["signed_by"] == sorted([a.id, b.id])
    assert shown["versions"][0]["hash"] == b.api("GET", f"/api/agreements/{aid}")[
        "versions"][0]["hash"]


def test_trilateral_needs_every_signature(fed: LocalFederation) -> None:
    a, b, c = fed.add("a"), fed.add("b"), fed.add("c")
    fed.introduce_all()
    draft = a.api("POST", "/api/agreements", json={
        "title": "ABC", "parties": [b.id, c.id], "scope": SCOPE})
    aid = draft["id"]
    a.api("POST", f"/api/agreements/{aid}/propose")
    fed.pump()
    b.api("POST", f"/api/agreements/{aid}/sign")
    fed.pump()
    assert {n.agreement_status(aid) for n in (a, b, c)} == {"proposed"}
    c.api("POST", f"/api/agreements/{aid}/sign")
    fed.pump()
    assert {n.agreement_status(aid) for n in (a, b, c)} == {"in_force"}


def test_signing_twice_and_signing_a_draft_are_refused(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = a.api("POST", "/api/agreements", json={"title": "x", "parties": [b.id]})["id"]
    resp = a.client.post(f"/api/agreements/{aid}/sign",
                         headers={"authorization": f"Bearer {a.token}"})
    assert resp.status_code == 409
    a.api("POST", f"/api/agreements/{aid}/propose")
    resp = a.client.post(f"/api/agreements/{aid}/sign",
                         headers={"authorization": f"Bearer {a.token}"})
    assert resp.status_code == 409
    assert "already signed" in resp.json()["detail"]


def test_amendment_keeps_old_version_in_force_until_all_sign(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    new_scope = {**SCOPE, "request_types": [*SCOPE["request_types"], "mla-stored-data"]}
    a.api("POST", f"/api/agreements/{aid}/amend", json={"scope": new_scope}, expect=201)
    a.api("POST", f"/api/agreements/{aid}/propose")
    fed.pump()
    # Version 1 still governs: the new request type is not yet allowed.
    resp = a.client.post("/api/messages", headers={"authorization": f"Bearer {a.token}"},
                         json=letter(b, aid, request_type="mla-stored-data"))
    assert resp.status_code == 403
    assert resp.json()["type"].endswith("out-of-scope")
    b.api("POST", f"/api/agreements/{aid}/sign")
    fed.pump()
    for node in (a, b):
        view = node.api("GET", f"/api/agreements/{aid}")
        assert view["effective_version"] == 2
        assert [v["status"] for v in view["versions"]] == ["superseded", "in_force"]
    a.api("POST", "/api/messages", json=letter(b, aid, request_type="mla-stored-data"),
          expect=201)
    assert fed.pump() == 1


def test_suspend_and_resume(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    b.api("POST", f"/api/agreements/{aid}/suspend", json={"reason": "review"})
    fed.pump()
    assert a.agreement_status(aid) == b.agreement_status(aid) == "suspended"
    resp = a.client.post("/api/messages", headers={"authorization": f"Bearer {a.token}"},
                         json=letter(b, aid))
    assert resp.json()["type"].endswith("agreement-not-in-force")
    # Only the suspending party can lift its suspension.
    resp = a.client.post(f"/api/agreements/{aid}/resume",
                         headers={"authorization": f"Bearer {a.token}"}, json={})
    assert resp.status_code == 409
    b.api("POST", f"/api/agreements/{aid}/resume", json={})
    fed.pump()
    assert a.agreement_status(aid) == "in_force"


def test_bilateral_withdrawal_terminates(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    b.api("POST", f"/api/agreements/{aid}/withdraw", json={"reason": "ended"})
    fed.pump()
    assert a.agreement_status(aid) == b.agreement_status(aid) == "terminated"
    resp = a.client.post("/api/messages", headers={"authorization": f"Bearer {a.token}"},
                         json=letter(b, aid))
    assert resp.json()["type"].endswith("not-a-party")


def test_multilateral_continues_without_withdrawn_party(fed: LocalFederation) -> None:
    a, b, c = fed.add("a"), fed.add("b"), fed.add("c")
    fed.introduce_all()
    aid = fed.agree(a, [b, c])
    c.api("POST", f"/api/agreements/{aid}/withdraw", json={"reason": "leaving"})
    fed.pump()
    assert a.agreement_status(aid) == b.agreement_status(aid) == "in_force"
    a.api("POST", "/api/messages", json=letter(b, aid), expect=201)
    resp = a.client.post("/api/messages", headers={"authorization": f"Bearer {a.token}"},
                         json=letter(c, aid))
    assert resp.status_code == 403
    assert resp.json()["type"].endswith("not-a-party")
    assert fed.pump() == 1


def test_expiry_and_not_yet_valid(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    now = fed.clock.now()
    aid = fed.agree(a, [b], valid_until=format_ts(now + dt.timedelta(days=1)))
    assert a.agreement_status(aid) == "in_force"
    fed.clock.advance(2 * 86400)
    assert a.agreement_status(aid) == b.agreement_status(aid) == "expired"
    later = fed.agree(a, [b], valid_from=format_ts(fed.clock.now() + dt.timedelta(days=3)))
    assert a.agreement_status(later) == "signed"


@pytest.mark.parametrize(("scope", "message"), [
    ({"request_types": ["Bad Type"]}, "request_types"),
    ({"languages": ["english!"]}, "language"),
    ({"collections": [{"name": "x", "tlp_ceiling": "purple"}]}, "tlp_ceiling"),
    ({"default_deadlines": {"mla-stored-data": 30}}, "not in request_types"),
    ({"unknown": []}, "unknown"),
])
def test_invalid_scope_is_refused(fed: LocalFederation, scope: dict[str, object],
                                  message: str) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    resp = a.client.post("/api/agreements", headers={"authorization": f"Bearer {a.token}"},
                         json={"title": "x", "parties": [b.id], "scope": scope})
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["detail"]
    assert a.api("GET", "/api/agreements") == []


def test_party_must_be_a_known_peer(fed: LocalFederation) -> None:
    a = fed.add("a")
    resp = a.client.post("/api/agreements", headers={"authorization": f"Bearer {a.token}"},
                         json={"title": "x", "parties": ["0" * 32]})
    assert resp.status_code == 403
    assert resp.json()["type"].endswith("unknown-sender") or "peer" in resp.json()["detail"]
