"""Requests through the UI, end to end between two nodes: draft, approve, answer, evidence."""

from __future__ import annotations

import re

from comity.web.accounts import Role
from tests.requests.support import two_authorities
from tests.support import LocalFederation
from tests.web.support import Ui, make_user
from tests.web.test_security import draft


def _state(html: str) -> str:
    found = re.search(r'id="request-state" data-state="([a-z_]+)"', html)
    assert found, "no state on the page"
    return found.group(1)


def test_preservation_request_from_draft_to_verified_evidence(fed: LocalFederation) -> None:
    fr, ke, _ = two_authorities(fed)
    make_user(fr, "dupont", Role.OFFICER)
    make_user(fr, "martin", Role.SUPERVISOR)
    make_user(ke, "otieno", Role.OFFICER, language="fr", timezone="Africa/Nairobi")
    officer, supervisor, poc = Ui(fr, "dupont"), Ui(fr, "martin"), Ui(ke, "otieno")

    rid = draft(officer, reference="FR-BEPI-7")
    page = officer.get(f"/ui/requests/{rid}").text
    assert _state(page) == "pending_approval"
    assert "Approve and send" not in page  # an officer is not offered the approval
    assert "FR-BEPI-7" in supervisor.get("/ui/").text  # waiting for the supervisor
    assert supervisor.post(f"/ui/requests/{rid}/approve").status_code == 303
    fed.pump()

    inbox = poc.get("/ui/requests?direction=in")
    assert inbox.status_code == 200
    assert f"/ui/requests/{rid}" in inbox.text
    assert inbox.headers["content-language"] == "fr"
    # htmx asks for the table alone when a filter changes.
    partial = poc.get("/ui/requests?direction=in&state=sent", headers={"hx-request": "true"})
    assert "<html" not in partial.text
    assert f"/ui/requests/{rid}" in partial.text
    page = poc.get(f"/ui/requests/{rid}").text
    assert _state(page) == "sent"
    assert f'action="/ui/requests/{rid}/events/acknowledge"' in page
    assert f'action="/ui/requests/{rid}/events/execute"' not in page  # not a preservation outcome

    assert poc.post(f"/ui/requests/{rid}/events/acknowledge",
                    {"reference": "KE-247-1"}).status_code == 303
    missing = poc.post(f"/ui/requests/{rid}/events/execute_partially", {"summary": "Logs"})
    assert missing.status_code == 422
    assert "not_executed" in missing.text
    evidence = b"2026-11-20T03:12:00Z 41.0.0.7 -> 10.0.0.5:445\n" * 500
    resp = poc.post(f"/ui/requests/{rid}/events/execute_partially",
                    {"summary": "Traffic logs disclosed.", "not_executed": "Content data."},
                    files={"evidence": ("traffic.log", evidence, "text/plain")})
    assert resp.status_code == 303, resp.text
    fed.pump()
    for pid in ke.node.evidence.due_uploads():
        ke.node.evidence.upload(pid, fed.http)

    page = officer.get(f"/ui/requests/{rid}").text
    assert _state(page) == "executed_partially"
    assert "KE-247-1" in page
    package = re.search(r'id="package-([0-9a-f-]+)"', page)
    assert package, "no evidence package on the requester's page"
    assert 'data-status="received"' in page
    assert officer.post(f"/ui/evidence/{package.group(1)}/verify").status_code == 303
    page = officer.get(f"/ui/requests/{rid}").text
    assert 'data-status="verified"' in page
    assert "traffic.log" in page
    # The live part the page polls shows the same, and offers a reload once the state moves.
    live = officer.get(f"/ui/requests/{rid}?part=state&since=sent",
                       headers={"hx-request": "true"}).text
    assert "<html" not in live
    assert 'data-state="executed_partially"' in live
    assert "reload" in live
    record = officer.get(f"/ui/requests/{rid}?part=record", headers={"hx-request": "true"}).text
    assert "<html" not in record
    assert 'data-status="verified"' in record


def test_supervisor_can_return_a_draft_with_reasons(fed: LocalFederation) -> None:
    fr, _, _ = two_authorities(fed)
    make_user(fr, "dupont", Role.OFFICER)
    make_user(fr, "martin", Role.SUPERVISOR)
    officer, supervisor = Ui(fr, "dupont"), Ui(fr, "martin")
    rid = draft(officer)
    assert supervisor.post(f"/ui/requests/{rid}/return",
                           {"reasons": "Name the custodian."}).status_code == 303
    page = officer.get(f"/ui/requests/{rid}").text
    assert _state(page) == "draft"
    assert "Name the custodian." in page
    # Dates are shown in the reader's zone, named.
    assert "UTC" in page


def test_incomplete_draft_is_refused_with_the_article(fed: LocalFederation) -> None:
    fr, _, _ = two_authorities(fed)
    make_user(fr, "dupont", Role.OFFICER)
    officer = Ui(fr, "dupont")
    page = officer.get("/ui/requests/new?type=expedited-preservation")
    target = re.findall(r'<option value="([0-9a-f]{32}\|[0-9a-f-]{36})"', page.text)[0]
    resp = officer.post("/ui/requests", {"type": "expedited-preservation", "target": target,
                                         "reference": "X", "offence": "illegal-access",
                                         "data_categories": "traffic", "submit": "1"})
    assert resp.status_code == 422
    assert "Budapest Art. 29(2)" in resp.text
    listing = officer.get("/ui/requests").text
    assert "No requests match." in listing  # nothing stored half-way


def test_refusal_needs_grounds_and_reaches_the_requester(fed: LocalFederation) -> None:
    fr, ke, _ = two_authorities(fed)
    make_user(fr, "dupont", Role.OFFICER)
    make_user(fr, "martin", Role.SUPERVISOR)
    make_user(ke, "otieno", Role.OFFICER)
    rid = draft(Ui(fr, "dupont"))
    Ui(fr, "martin").post(f"/ui/requests/{rid}/approve")
    fed.pump()
    poc = Ui(ke, "otieno")
    page = poc.get(f"/ui/requests/{rid}").text
    assert 'name="grounds" value="essential-interests"' in page
    no_grounds = poc.post(f"/ui/requests/{rid}/events/refuse", {"reasons": "No."})
    assert no_grounds.status_code == 422
    assert "Budapest Art. 27(7)" in no_grounds.text
    resp = poc.post(f"/ui/requests/{rid}/events/refuse",
                    {"grounds": "essential-interests", "reasons": "Sovereignty."})
    assert resp.status_code == 303, resp.text
    fed.pump()
    page = Ui(fr, "dupont").get(f"/ui/requests/{rid}").text
    assert _state(page) == "refused"
    assert "essential-interests" in page
    assert "Sovereignty." in page
