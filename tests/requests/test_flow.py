"""Requests between two nodes: both sides always agree on the state, on both backends."""

from __future__ import annotations

import datetime as dt

from tests.requests.support import (
    act,
    mla,
    preservation,
    send_request,
    ts,
    two_authorities,
)
from tests.support import LocalFederation


def test_preservation_then_mla_supersedes_it(fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    rid = send_request(fed, fr, ke, aid, preservation())
    theirs = ke.api("GET", f"/api/requests/{rid}")
    assert theirs["direction"] == "in"
    assert theirs["state"] == "sent"
    assert theirs["due"]["kind"] == "response"
    act(fed, ke, rid, "acknowledge", reference="KE-PoC-77")
    now = fed.clock.now()
    act(fed, ke, rid, "preserve", preserved_at=ts(now), until=ts(now + dt.timedelta(days=60)))
    for side in (fr, ke):
        shown = side.api("GET", f"/api/requests/{rid}")
        assert shown["state"] == "preserved"
        assert shown["recipient_reference"] == "KE-PoC-77"
        assert shown["preserved_until"] == ts(now + dt.timedelta(days=60))
        assert shown["due"]["kind"] == "preservation-expiry"
    mid = send_request(fed, fr, ke, aid, mla([rid]))
    for side in (fr, ke):
        assert side.api("GET", f"/api/requests/{rid}")["state"] == "superseded_by_mla"
        assert side.api("GET", f"/api/requests/{mid}")["state"] == "sent"
    act(fed, ke, mid, "acknowledge", reference="KE-CA-9")
    act(fed, ke, mid, "execute", summary="Logs disclosed.")
    mine, theirs = fr.api("GET", f"/api/requests/{mid}"), ke.api("GET", f"/api/requests/{mid}")
    assert mine["state"] == theirs["state"] == "executed"
    assert [e["event"] for e in mine["timeline"]] == [
        "create", "submit", "approve", "send", "acknowledge", "execute"]
    assert all(e["transport"] == "delivered" for e in mine["timeline"] if e["event"] == "send")


def test_preservation_shorter_than_sixty_days_is_refused(fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    rid = send_request(fed, fr, ke, aid, preservation())
    now = fed.clock.now()
    resp = ke.client.post(f"/api/requests/{rid}/events",
                          headers={"authorization": f"Bearer {ke.token}"},
                          json={"event": "preserve", "data": {
                              "preserved_at": ts(now),
                              "until": ts(now + dt.timedelta(days=59))}})
    assert resp.status_code == 422, resp.text
    assert "Budapest Art. 29(7)" in resp.json()["detail"]
    assert ke.api("GET", f"/api/requests/{rid}")["state"] == "sent"


def test_crossing_acts_settle_alike_on_both_sides(fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    rid = send_request(fed, fr, ke, aid, mla([]))
    # Neither has seen the other's act when it acts: they cross in flight.
    fr.api("POST", f"/api/requests/{rid}/events",
           json={"event": "withdraw", "data": {"reasons": "No longer needed."}})
    fed.clock.advance(1)
    ke.api("POST", f"/api/requests/{rid}/events",
           json={"event": "execute", "data": {"summary": "Done."}})
    fed.pump()
    views = [side.api("GET", f"/api/requests/{rid}") for side in (fr, ke)]
    assert views[0]["state"] == views[1]["state"] == "withdrawn"
    for view in views:
        marks = {e["event"]: (e["applied"], e["note"]) for e in view["timeline"]
                 if e["event"] in ("withdraw", "execute")}
        assert marks["withdraw"] == (True, None)
        assert marks["execute"][0] is False
        assert "withdrawn" in marks["execute"][1]


def test_deadlines_fall_due_with_the_clock(fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    rid = send_request(fed, fr, ke, aid, mla([]))
    due = ke.api("GET", f"/api/requests/{rid}")["due"]
    # The agreement sets 45 days for MLA requests (tests/requests/support.py).
    assert due["basis"] == "agreement default for mla-stored-data: 45 days"
    sent = fed.clock.now()
    assert due["at"] == ts(sent + dt.timedelta(days=45))
    assert ke.api("GET", "/api/requests", params={"overdue": "true"})["items"] == []
    fed.clock.at = sent + dt.timedelta(days=45, seconds=1)
    overdue = ke.api("GET", "/api/requests", params={"overdue": "true"})["items"]
    assert [r["id"] for r in overdue] == [rid]
    assert overdue[0]["due"]["status"] == "overdue"
    assert [r["id"] for r in ke.api("GET", "/api/requests/due",
                                    params={"within": "1d"})] == [rid]


def test_listing_filters_and_pages(fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    ids = [send_request(fed, fr, ke, aid, mla([], reference=f"FR-{i}")) for i in range(5)]
    pres = send_request(fed, fr, ke, aid, preservation())
    act(fed, ke, ids[0], "acknowledge", reference="K0")
    page = ke.api("GET", "/api/requests", params={"limit": 2})
    seen = [r["id"] for r in page["items"]]
    while page["next"]:
        page = ke.api("GET", "/api/requests", params={"limit": 2, "cursor": page["next"]})
        seen += [r["id"] for r in page["items"]]
    assert seen == [pres, *reversed(ids)]
    by_type = ke.api("GET", "/api/requests", params={"type": "expedited-preservation"})
    assert [r["id"] for r in by_type["items"]] == [pres]
    by_state = ke.api("GET", "/api/requests", params={"state": "acknowledged"})
    assert [r["id"] for r in by_state["items"]] == [ids[0]]
    assert ke.api("GET", "/api/requests", params={"direction": "out"})["items"] == []
    assert len(fr.api("GET", "/api/requests", params={"country": "KE"})["items"]) == 6
    bad = ke.client.get("/api/requests", params={"cursor": "x"},
                        headers={"authorization": f"Bearer {ke.token}"})
    assert bad.status_code == 422


def test_acts_from_the_wrong_side_or_unknown_requests_are_refused(
        fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    rid = send_request(fed, fr, ke, aid, mla([]))
    resp = fr.client.post(f"/api/requests/{rid}/events",
                          headers={"authorization": f"Bearer {fr.token}"},
                          json={"event": "acknowledge", "data": {"reference": "x"}})
    assert resp.status_code == 409
    assert "only the requested party" in resp.json()["detail"]
    missing = ke.client.post(f"/api/requests/{rid}/events",
                             headers={"authorization": f"Bearer {ke.token}"},
                             json={"event": "refuse", "data": {"reasons": "no"}})
    assert missing.status_code == 422
    assert "grounds" in missing.json()["detail"]
    wrong_ground = ke.client.post(f"/api/requests/{rid}/events",
                                  headers={"authorization": f"Bearer {ke.token}"},
                                  json={"event": "refuse", "data": {
                                      "grounds": ["fiscal"], "reasons": "no"}})
    assert wrong_ground.status_code == 422
    assert "not a ground" in wrong_ground.json()["detail"]
    unknown = ke.client.get("/api/requests/00000000-0000-4000-8000-000000000000",
                            headers={"authorization": f"Bearer {ke.token}"})
    assert unknown.status_code == 404
    # Nothing of the refused acts was stored or sent.
    assert [e["event"] for e in ke.api("GET", f"/api/requests/{rid}")["timeline"]] == ["send"]


def test_confidentiality_notice_only_for_confidential_requests(fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    plain = send_request(fed, fr, ke, aid, mla([]))
    act(fed, ke, plain, "acknowledge", reference="K0")
    resp = ke.client.post(f"/api/requests/{plain}/events",
                          headers={"authorization": f"Bearer {ke.token}"},
                          json={"event": "notify_confidentiality_not_possible",
                                "data": {"reasons": "Court disclosure rules."}})
    assert resp.status_code == 409
    assert "did not ask for confidentiality" in resp.json()["detail"]
    secret = send_request(fed, fr, ke, aid, mla([], reference="FR-C",
                                                flags={"confidential": True}))
    act(fed, ke, secret, "acknowledge", reference="K")
    act(fed, ke, secret, "notify_confidentiality_not_possible",
        reasons="Court disclosure rules.")
    assert fr.api("GET", f"/api/requests/{secret}")["state"] == "confidentiality_not_possible"
    act(fed, fr, secret, "proceed")
    assert ke.api("GET", f"/api/requests/{secret}")["state"] == "under_assessment"
