"""The requests part of ``comity demo``: preservation, then MLA with evidence, end to end.

Driven over the REST API of two running nodes (:class:`~comity.localnet.LocalNode`),
exactly as an operator's tools would: the requesting central authority asks
the 24/7 point of contact to preserve data, the data is preserved with its
60-day expiry, an MLA request that references the preservation supersedes it
and is executed with an evidence package that the requester verifies; and a
request missing a mandatory element is refused with an error naming the
article that requires it.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import partial
from pathlib import Path
from typing import Any

from comity.clock import format_ts, parse_ts
from comity.localnet import LocalNode, StepFailed, wait_for

__all__ = ["requests_scenario"]

PRESERVATION: dict[str, Any] = {
    "type": "expedited-preservation", "reference": "FR-BEPI-2026-0417", "language": "fr",
    "offence": "illegal-access", "data_categories": ["traffic"], "flags": {"urgent": True},
    "fields": {
        "requesting_authority": "Parquet de Paris — section J3 cybercriminalité",
        "summary_of_facts": "Intrusion dans le réseau d'un hôpital le 20 novembre 2026; "
                            "rançongiciel déployé depuis un serveur loué à Nairobi.",
        "data_to_preserve": "Journaux de connexion et données de trafic du serveur 41.x",
        "relationship_to_offence": "Le serveur a servi de relais de commande.",
        "custodian_or_location": "Hébergeur ExampleHost Ltd, centre de données de Nairobi",
        "necessity": "Les journaux sont écrasés au bout de 30 jours.",
        "mla_intention": "Une demande d'entraide suivra pour la communication des données.",
    },
}


def _mla(preservation_id: str) -> dict[str, Any]:
    return {
        "type": "mla-stored-data", "reference": "FR-BEPI-2026-0418", "language": "fr",
        "offence": "illegal-access", "data_categories": ["traffic", "content"],
        "references": [preservation_id],
        "fields": {
            "requesting_authority": "Ministère de la Justice — BEPI",
            "proceedings": "Information judiciaire no 2026/0417, juge d'instruction de Paris",
            "summary_of_facts": "Intrusion et rançongiciel contre un hôpital, 20 novembre 2026.",
            "assistance_sought": "Communication des données conservées (article 31).",
            "purpose": "Identifier les auteurs.",
        },
    }


def _state(node: LocalNode, rid: str, state: str) -> bool:
    resp = node.client.get(f"{node.url}/api/requests/{rid}",
                           headers={"authorization": f"Bearer {node.token}"})
    # 404 until the message has arrived.
    return resp.status_code == 200 and resp.json()["state"] == state


def _send(fr: LocalNode, ke: LocalNode, agreement: str, doc: dict[str, Any]) -> str:
    r = fr.api("POST", "/api/requests", json={"to": ke.node_id, "agreement": agreement,
                                               "request": doc, "by": "officer.dupont"})
    rid = str(r["id"])
    fr.api("POST", f"/api/requests/{rid}/submit", json={"by": "officer.dupont"})
    fr.api("POST", f"/api/requests/{rid}/approve", json={"by": "supervisor.martin"})
    fr.api("POST", f"/api/requests/{rid}/send", json={"by": "officer.dupont"})
    wait_for(f"request {doc['reference']} received", partial(_state, ke, rid, "sent"))
    return rid


def _act(node: LocalNode, other: LocalNode, rid: str, event: str, state: str,
         **data: Any) -> dict[str, Any]:
    out: dict[str, Any] = node.api("POST", f"/api/requests/{rid}/events",
                                   json={"event": event, "data": data, "by": "poc.otieno"})
    wait_for(f"{event} reaches the other side", partial(_state, other, rid, state))
    return out


def requests_scenario(fr: LocalNode, ke: LocalNode, agreement: str, root: Path
                      ) -> dict[str, Any]:
    """Run the scenario; returns the ``"requests"`` section of the check report."""
    # 1. Incomplete: refused before anything is stored, naming the article.
    incomplete = {**PRESERVATION, "fields": {
        k: v for k, v in PRESERVATION["fields"].items() if k != "necessity"}}
    resp = fr.client.post(f"{fr.url}/api/requests",
                          headers={"authorization": f"Bearer {fr.token}"},
                          json={"to": ke.node_id, "agreement": agreement,
                                "request": incomplete})
    problems = resp.json().get("errors", []) if resp.status_code == 422 else []
    if [p["field"] for p in problems] != ["fields.necessity"] or (
            "Budapest Art. 29(2)(e)" not in problems[0]["message"]):
        raise StepFailed("incomplete request refused", f"HTTP {resp.status_code} {resp.text}")
    # 2. Preservation: sent, acknowledged, preserved for 60 days.
    pid = _send(fr, ke, agreement, PRESERVATION)
    _act(ke, fr, pid, "acknowledge", "acknowledged", reference="KE-247-2026-88")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    until = now + dt.timedelta(days=60)
    _act(ke, fr, pid, "preserve", "preserved", preserved_at=format_ts(now),
         until=format_ts(until))
    preserved = fr.api("GET", f"/api/requests/{pid}")
    expiry = preserved["deadlines"][0]
    # 3. MLA referencing it: the preservation is superseded (Budapest Art. 29(7)).
    mid = _send(fr, ke, agreement, _mla(pid))
    wait_for("preservation superseded", partial(_state, ke, pid, "superseded_by_mla"))
    _act(ke, fr, mid, "acknowledge", "acknowledged", reference="KE-CA-2026-12")
    # 4. Executed with an evidence package, streamed and verified.
    evidence = root / "evidence-to-return"
    evidence.mkdir(parents=True, exist_ok=True)
    sample = evidence / "server-41-logs.txt"
    sample.write_bytes(os.urandom(3 << 20))
    with open(sample, "rb") as f:
        manifest = ke.api("POST", "/api/evidence/packages",
                          params={"request": mid, "name": sample.name}, content=f.read())
    package = manifest["manifest"]["package_id"]
    _act(ke, fr, mid, "execute", "executed", summary="Journaux communiqués.",
         evidence=[manifest])

    def received() -> bool:
        return bool(fr.api("GET", f"/api/evidence/{package}")["status"] == "received")

    wait_for("evidence received", received, timeout=120)
    verified = fr.api("POST", f"/api/evidence/{package}/verify", json={"by": "analyst.roux"})
    if verified["status"] != "verified":
        raise StepFailed("evidence verified", str(verified))
    sender_view = ke.api("GET", f"/api/evidence/{package}")
    mla_view = fr.api("GET", f"/api/requests/{mid}")
    return {
        "refused_incomplete": {"status": resp.status_code, "field": problems[0]["field"],
                               "error": problems[0]["message"]},
        "preservation": {
            "id": pid, "state_when_preserved": preserved["state"],
            "recipient_reference": preserved["recipient_reference"],
            "preserved_until": preserved["preserved_until"],
            "expiry_days": (parse_ts(preserved["preserved_until"]) - now).days,
            "deadline": {"kind": expiry["kind"], "due": expiry["due"], "basis": expiry["basis"]},
            "state_after_mla": fr.api("GET", f"/api/requests/{pid}")["state"],
        },
        "mla": {"id": mid, "references": mla_view["document"]["references"],
                "state": mla_view["state"], "legal_basis": mla_view["legal_basis"],
                "timeline": [e["event"] for e in mla_view["timeline"]]},
        "evidence": {
            "package": package, "bytes": verified["total_size"], "status": verified["status"],
            "custody_requester": [e["event"] for e in verified["custody"]],
            "custody_sender": [e["event"] for e in sender_view["custody"]],
            "receipt_signed": sender_view["receipt"] is not None,
        },
    }
