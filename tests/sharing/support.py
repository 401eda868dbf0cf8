"""Sharing test helpers: STIX objects with TLP markings, collections, signed peer requests."""

from __future__ import annotations

import uuid
from typing import Any

from comity.agreements.schemas import TLP
from comity.sharing.client import PeerTaxiiClient
from comity.sharing.stix import marking_definition
from tests.support import LocalFederation, PeerNode

TAXII = "application/taxii+json;version=2.1"
T0 = "2026-11-01T00:00:00.000Z"


def indicator(n: int, *, tlp: TLP | None = None, modified: str = T0,
              object_id: str | None = None, revoked: bool = False) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "indicator", "spec_version": "2.1",
        "id": object_id or f"indicator--{uuid.UUID(int=n + 1, version=4)}",
        "created": T0, "modified": modified, "name": f"C2 server {n}",
        "pattern": f"[ipv4-addr:value = '198.51.100.{n % 250}']", "pattern_type": "stix",
        "valid_from": T0}
    if tlp is not None:
        obj["object_marking_refs"] = [marking_definition(tlp)["id"]]
    if revoked:
        obj["revoked"] = True
    return obj


def envelope(*objects: dict[str, Any]) -> dict[str, Any]:
    return {"objects": list(objects)}


def local_headers(node: PeerNode, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {node.token}", "accept": TAXII, **extra}


def create_collection(node: PeerNode, name: str = "indicators", *,
                      peers_can_write: bool = False) -> dict[str, Any]:
    return dict(node.api("POST", "/api/sharing/collections", json={
        "name": name, "title": f"{name} of {node.name}", "peers_can_write": peers_can_write}))


def objects_url(node: PeerNode, cid: str, suffix: str = "objects/") -> str:
    return f"{node.url}/taxii2/comity/collections/{cid}/{suffix}"


def post_local(fed: LocalFederation, node: PeerNode, cid: str, *objects: dict[str, Any],
               recipients: tuple[str, ...] = ()) -> dict[str, Any]:
    if recipients:
        return dict(node.api("POST", f"/api/sharing/collections/{cid}/objects",
                             params={"recipient": list(recipients)},
                             json=envelope(*objects)))
    resp = fed.http.post(objects_url(node, cid), json=envelope(*objects),
                         headers=local_headers(node, **{"content-type": TAXII}))
    assert resp.status_code == 202, resp.text
    return dict(resp.json())


def peer(fed: LocalFederation, node: PeerNode) -> PeerTaxiiClient:
    """``node`` speaking TAXII to its partners, signing with its node key."""
    return PeerTaxiiClient(node.node.identity, fed.http, fed.clock)
