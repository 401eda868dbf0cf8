"""Shared request fixtures: two authorities under an agreement applying the Budapest Convention."""

from __future__ import annotations

import datetime as dt
from typing import Any

from comity.clock import format_ts
from comity.identity.schemas import NodeKind
from tests.support import LocalFederation, PeerNode

REQUEST_SCOPE: dict[str, Any] = {
    "request_types": ["expedited-preservation", "mla-stored-data", "mla-general",
                      "subscriber-information", "emergency-mla", "immediate-assistance",
                      "supplementary-information"],
    "offence_categories": ["illegal-access", "computer-related-fraud", "csam"],
    "data_categories": ["subscriber", "traffic", "content"],
    "default_deadlines": {"mla-stored-data": 45},
    "languages": ["en", "fr"],
    "instruments": ["budapest", "untoc"],
}

PRESERVATION_FIELDS = {
    "requesting_authority": "Parquet de Paris, section J3 (cybercriminalité)",
    "summary_of_facts": "Intrusion into a hospital network on 2026-11-20; ransom note left.",
    "data_to_preserve": "Traffic data and stored logs of account 'x9' at the hosting provider.",
    "relationship_to_offence": "The account hosted the command-and-control server.",
    "custodian_or_location": "ExampleHost Ltd, Nairobi data centre.",
    "necessity": "Logs are overwritten after 30 days.",
    "mla_intention": "An MLA request for disclosure will follow.",
}

MLA_FIELDS = {
    "requesting_authority": "Ministère de la Justice, BEPI",
    "proceedings": "Criminal investigation no. 2026/1234 by the Paris prosecutor.",
    "summary_of_facts": "Intrusion into a hospital network on 2026-11-20.",
    "assistance_sought": "Disclosure of the preserved traffic data and logs.",
    "purpose": "To identify the perpetrators.",
}


def preservation(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "expedited-preservation", "reference": "FR-2026-0001", "language": "en",
        "offence": "illegal-access", "data_categories": ["traffic"],
        "flags": {"urgent": True}, "fields": dict(PRESERVATION_FIELDS)}
    doc.update(over)
    return doc


def mla(references: list[str], **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "mla-stored-data", "reference": "FR-2026-0002", "language": "en",
        "offence": "illegal-access", "data_categories": ["traffic", "content"],
        "fields": dict(MLA_FIELDS), "references": references}
    doc.update(over)
    return doc


def two_authorities(fed: LocalFederation) -> tuple[PeerNode, PeerNode, str]:
    fr = fed.add("fr", kind=NodeKind.CENTRAL_AUTHORITY, jurisdiction="FR")
    ke = fed.add("ke", kind=NodeKind.CENTRAL_AUTHORITY, jurisdiction="KE")
    fed.introduce(fr, ke)
    aid = fed.agree(fr, [ke], scope=REQUEST_SCOPE)
    return fr, ke, aid


def send_request(fed: LocalFederation, fr: PeerNode, ke: PeerNode, aid: str,
                 doc: dict[str, Any]) -> str:
    """Draft, submit, approve (by someone else), send and deliver; returns the id."""
    r = fr.api("POST", "/api/requests", json={"to": ke.id, "agreement": aid, "request": doc,
                                              "by": "officer"})
    rid = str(r["id"])
    fr.api("POST", f"/api/requests/{rid}/submit", json={"by": "officer"})
    fr.api("POST", f"/api/requests/{rid}/approve", json={"by": "supervisor"})
    fr.api("POST", f"/api/requests/{rid}/send", json={"by": "officer"})
    fed.pump()
    return rid


def act(fed: LocalFederation, node: PeerNode, rid: str, event: str, **data: Any) -> Any:
    out = node.api("POST", f"/api/requests/{rid}/events", json={"event": event, "data": data})
    fed.pump()
    return out


def ts(when: dt.datetime) -> str:
    return format_ts(when)
