"""Defects found in review, each with the test that would fail if it came back."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import httpx

from comity.db import session_scope
from comity.identity.schemas import NodeKind
from comity.identity.services import rotate_keys
from tests.requests.support import (
    REQUEST_SCOPE,
    act,
    mla,
    preservation,
    send_request,
    ts,
    two_authorities,
)
from tests.support import LocalFederation


def test_a_refused_act_is_dropped_by_its_sender_and_the_request_moves_on(
        fed: LocalFederation, tmp_path: Path) -> None:
    fr = fed.add("fr", kind=NodeKind.CENTRAL_AUTHORITY, evidence_max_bytes=1 << 20)
    ke = fed.add("ke", kind=NodeKind.CENTRAL_AUTHORITY, jurisdiction="KE")
    fed.introduce(fr, ke)
    aid = fed.agree(fr, [ke], scope=REQUEST_SCOPE)
    rid = send_request(fed, fr, ke, aid, mla([]))
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom((1 << 20) + 1))
    signed = ke.node.evidence.prepare(ke.node.sessions, rid, [big])
    act(fed, ke, rid, "execute", summary="x", evidence=[signed.to_dict()])
    mine = ke.api("GET", f"/api/requests/{rid}")
    assert mine["state"] == fr.api("GET", f"/api/requests/{rid}")["state"] == "sent"
    refused = next(e for e in mine["timeline"] if e["event"] == "execute")
    assert refused["applied"] is False
    assert "refused by the peer" in refused["note"]
    # The next act is accepted: the refused number is simply skipped.
    act(fed, ke, rid, "execute", summary="Executed without the oversized file.")
    assert ke.api("GET", f"/api/requests/{rid}")["state"] == "executed"
    assert fr.api("GET", f"/api/requests/{rid}")["state"] == "executed"


def test_an_illegal_act_that_crossed_nothing_is_refused_not_stored(
        fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    rid = send_request(fed, fr, ke, aid, mla([]))
    act(fed, ke, rid, "acknowledge", reference="K1")
    with session_scope(ke.node.sessions) as session:
        out = ke.node.federation.send(session, to=fr.id, type="request.event", body={
            "request": rid, "event": "acknowledge", "data": {"reference": "again"},
            "n": 2, "seen": 0}, agreement_id=aid)
    fed.pump()
    assert ke.api("GET", f"/api/messages/{out.message_id}")["status"] == "failed"
    events = [e["event"] for e in fr.api("GET", f"/api/requests/{rid}")["timeline"]]
    assert events.count("acknowledge") == 1


def test_a_preservation_is_superseded_only_by_an_mla_request_that_exists(
        fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    pres = send_request(fed, fr, ke, aid, preservation())
    now = fed.clock.now()
    act(fed, ke, pres, "acknowledge", reference="K")
    act(fed, ke, pres, "preserve", preserved_at=ts(now), until=ts(now + dt.timedelta(days=90)))
    with session_scope(fr.node.sessions) as session:
        out = fr.node.federation.send(session, to=ke.id, type="request.event", body={
            "request": pres, "event": "supersede",
            "data": {"mla_request": "00000000-0000-4000-8000-000000000001"},
            "n": 1, "seen": 2}, agreement_id=aid)
    fed.pump()
    msg = fr.api("GET", f"/api/messages/{out.message_id}")
    assert msg["status"] == "failed"
    assert "not a request for mutual assistance held here" in msg["last_error"]
    assert ke.api("GET", f"/api/requests/{pres}")["state"] == "preserved"


def test_approval_names_someone_other_than_the_author(fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    rid = fr.api("POST", "/api/requests", json={"to": ke.id, "agreement": aid,
                                                "request": preservation()})["id"]
    fr.api("POST", f"/api/requests/{rid}/submit", json={"by": "dupont"})
    h = {"authorization": f"Bearer {fr.token}"}
    anonymous = fr.client.post(f"/api/requests/{rid}/approve", json={}, headers=h)
    assert anonymous.status_code == 422
    self_approved = fr.client.post(f"/api/requests/{rid}/approve", json={"by": "dupont"},
                                   headers=h)
    assert self_approved.status_code == 409
    fr.api("POST", f"/api/requests/{rid}/approve", json={"by": "martin"})


def test_creation_time_is_the_nodes(fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    doc = preservation(created="2020-01-01T00:00:00.000000Z")
    shown = fr.api("POST", "/api/requests", json={"to": ke.id, "agreement": aid,
                                                  "request": doc})
    assert shown["document"]["created"] == ts(fed.clock.now())


def test_out_of_range_input_is_a_clear_error_not_a_crash(fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    rid = send_request(fed, fr, ke, aid, preservation())
    h = {"authorization": f"Bearer {ke.token}"}

    def status(method: str, path: str, **kw: object) -> int:
        return ke.client.request(method, path, headers=h, **kw).status_code  # type: ignore[arg-type]

    assert status("GET", "/api/requests", params={"cursor": "9" * 25}) == 422
    assert status("GET", "/api/requests/due", params={"within": "999999m"}) == 422
    assert status("POST", f"/api/requests/{rid}/events", json={"event": "preserve", "data": {
        "preserved_at": "9999-12-01T00:00:00.000000Z",
        "until": "9999-12-31T00:00:00.000000Z"}}) == 422
    assert status("POST", f"/api/requests/{rid}/events", json={
        "event": "acknowledge", "data": {"reference": "x" * 101}}) == 422


def test_evidence_survives_key_rotation_on_both_sides(fed: LocalFederation,
                                                      tmp_path: Path) -> None:
    fr, ke, aid = two_authorities(fed)
    rid = send_request(fed, fr, ke, aid, mla([]))
    src = tmp_path / "a.txt"
    src.write_bytes(b"evidence" * 1000)
    signed = ke.node.evidence.prepare(ke.node.sessions, rid, [src])
    act(fed, ke, rid, "execute", summary="x", evidence=[signed.to_dict()])
    pid = signed.manifest.package_id
    # The sender rotates before uploading, the receiver before verifying.
    rotate_keys(ke.node.settings.data_dir, clock=fed.clock)
    fed.introduce(ke, fr)
    for p in ke.node.evidence.due_uploads():
        assert ke.node.evidence.upload(p, fed.http)
    rotate_keys(fr.node.settings.data_dir, clock=fed.clock)
    assert fr.node.evidence.verify(pid)["status"] == "verified"


def test_a_hostile_receiver_cannot_stall_the_uploader(fed: LocalFederation,
                                                      tmp_path: Path) -> None:
    fr, ke, aid = two_authorities(fed)
    rid = send_request(fed, fr, ke, aid, mla([]))
    src = tmp_path / "a.txt"
    src.write_bytes(b"x" * 100)
    signed = ke.node.evidence.prepare(ke.node.sessions, rid, [src])
    act(fed, ke, rid, "execute", summary="x", evidence=[signed.to_dict()])
    pid = signed.manifest.package_id

    def hostile(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"status": "announced", "receipt": None, "files": [
                {"index": 0, "received": -5, "complete": False}]})
        return httpx.Response(200, json=[])

    with httpx.Client(transport=httpx.MockTransport(hostile)) as client:
        assert ke.node.evidence.upload(pid, client) is False
    shown = ke.api("GET", f"/api/evidence/{pid}")
    assert shown["attempts"] == 1
    assert "-5" in shown["last_error"]


def test_evidence_stops_when_the_agreement_ends(fed: LocalFederation, tmp_path: Path) -> None:
    fr, ke, aid = two_authorities(fed)
    rid = send_request(fed, fr, ke, aid, mla([]))
    src = tmp_path / "a.txt"
    src.write_bytes(b"personal data" * 100)
    signed = ke.node.evidence.prepare(ke.node.sessions, rid, [src])
    act(fed, ke, rid, "execute", summary="x", evidence=[signed.to_dict()])
    fr.api("POST", f"/api/agreements/{aid}/withdraw", json={"reason": "ended"})
    fed.pump()
    for p in ke.node.evidence.due_uploads():
        assert ke.node.evidence.upload(p, fed.http) is False
    pid = signed.manifest.package_id
    assert fr.api("GET", f"/api/evidence/{pid}")["status"] == "announced"
    assert not any(fr.node.evidence.in_dir(pid).glob("*.enc"))
    assert "agreement" in ke.api("GET", f"/api/evidence/{pid}")["last_error"]


def test_the_deadline_shown_is_the_one_in_force(fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    rid = send_request(fed, fr, ke, aid, mla([]))
    act(fed, ke, rid, "acknowledge", reference="K")
    until = ts(fed.clock.now() + dt.timedelta(days=10))
    act(fed, ke, rid, "postpone", reasons="Our own investigation.", until=until)
    for side in (fr, ke):
        shown = side.api("GET", f"/api/requests/{rid}")
        assert shown["due"]["kind"] == "postponement-ends"
        assert [(d["kind"], d["due"]) for d in shown["deadlines"]] == [
            ("postponement-ends", until)]
