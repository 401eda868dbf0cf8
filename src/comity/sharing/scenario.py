"""The sharing part of ``comity demo``: indicators shared under agreements, TLP at every exit.

The CERT (CN) publishes indicators at several TLP levels; the 24/7 point of
contact (KE) pulls them under the trilateral agreement, then the ministry (FR)
pulls from KE. Checked: what KE received, that the TLP:RED object stayed home,
that KE could not pass the AMBER+STRICT object on to FR (while the GREEN one
reached FR, a party to the agreement it came under), and that a revocation
made at CN reached FR through KE.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

from comity.agreements.schemas import TLP
from comity.localnet import LocalNode, StepFailed, comity_command
from comity.sharing.stix import marking_definition

__all__ = ["sharing_scenario"]

_T0 = "2026-11-20T08:00:00.000Z"


def _indicator(n: int, level: TLP, *, modified: str = _T0,
               revoked: bool = False) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "indicator", "spec_version": "2.1",
        "id": f"indicator--6f1c2d3e-{n:04d}-4a5b-8c6d-7e8f9a0b1c2d",
        "created": _T0, "modified": modified, "name": f"Ransomware C2 {n}",
        "pattern": f"[ipv4-addr:value = '203.0.113.{n}']", "pattern_type": "stix",
        "valid_from": _T0, "object_marking_refs": [marking_definition(level)["id"]]}
    if revoked:
        obj["revoked"] = True
    return obj


def _sync(node: LocalNode, peer: LocalNode) -> list[dict[str, Any]]:
    done = subprocess.run(comity_command(  # noqa: S603
        "sharing", "sync", peer.node_id, "--data-dir", str(node.data_dir), "--json"),
        capture_output=True, check=False)
    if done.returncode != 0:
        raise StepFailed(f"{node.key} syncs from {peer.key}",
                         done.stderr.decode(errors="replace")[-2000:])
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def _held(node: LocalNode) -> dict[str, dict[str, Any]]:
    cols = node.api("GET", "/api/sharing/collections")
    out: dict[str, dict[str, Any]] = {}
    for c in cols:
        page = node.client.get(c["taxii_url"] + "objects/", headers={
            "authorization": f"Bearer {node.token}",
            "accept": "application/taxii+json;version=2.1"}).json()
        out.update({o["id"]: o for o in page.get("objects", [])})
    return out


def sharing_scenario(fr: LocalNode, ke: LocalNode, cn: LocalNode,
                     progress: Callable[[str], None]) -> dict[str, Any]:
    """Run the scenario; returns the ``"sharing"`` section of the check report."""
    coll = cn.api("POST", "/api/sharing/collections",
                  json={"name": "indicators", "title": "Indicators of the national CERT"})
    objs = {level: _indicator(i, level) for i, level in enumerate(
        [TLP.CLEAR, TLP.GREEN, TLP.AMBER_STRICT, TLP.RED], start=1)}
    status = cn.api("POST", f"/api/sharing/collections/{coll['id']}/objects",
                    json={"type": "bundle", "id": "bundle--0d7c2b7a-1e2f-4a3b-9c4d-5e6f7a8b9c0d",
                          "objects": list(objs.values())})
    if status["success_count"] != len(objs):
        raise StepFailed("publish indicators", json.dumps(status))
    progress("sharing: KE pulls the CERT's indicators, FR pulls from KE")
    _sync(ke, cn)
    at_ke = _held(ke)
    _sync(fr, ke)
    at_fr = _held(fr)
    ids = {level: o["id"] for level, o in objs.items()}
    if set(at_ke) != {ids[TLP.CLEAR], ids[TLP.GREEN], ids[TLP.AMBER_STRICT]}:
        raise StepFailed("KE receives what CN shares", f"KE holds {sorted(at_ke)}")
    if set(at_fr) != {ids[TLP.CLEAR], ids[TLP.GREEN]}:
        raise StepFailed("FR receives what KE may pass on", f"FR holds {sorted(at_fr)}")
    # CN revokes the CLEAR indicator; the revocation travels CN -> KE -> FR.
    cn.api("POST", f"/api/sharing/collections/{coll['id']}/objects", json={"objects": [
        _indicator(1, TLP.CLEAR, modified="2026-11-21T08:00:00.000Z", revoked=True)]})
    _sync(ke, cn)
    _sync(fr, ke)
    revoked = _held(fr).get(ids[TLP.CLEAR], {}).get("revoked") is True
    if not revoked:
        raise StepFailed("revocation propagates", "FR still holds the unrevoked indicator")
    return {
        "published_by": cn.key, "collection": coll["name"],
        "indicators_at": {ke.key: len(at_ke), fr.key: len(at_fr)},
        "red_stayed_home": ids[TLP.RED] not in at_ke and ids[TLP.RED] not in at_fr,
        "amber_strict_reached": ke.key,
        "amber_strict_not_reshared": ids[TLP.AMBER_STRICT] not in at_fr,
        "green_reached_community": ids[TLP.GREEN] in at_fr,
        "revocation_propagated": revoked,
    }
