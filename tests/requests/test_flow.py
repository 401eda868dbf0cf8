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
