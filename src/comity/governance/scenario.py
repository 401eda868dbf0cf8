"""The registry part of ``comity demo``: a council of the three nodes allocates a block by vote.

KE, FR and CN form a numbers council (KE chairs) by a trilateral agreement
whose text names the pools and the voting rules. FR proposes allocating
45.64.1.0/24 to a Kenyan exchange; after the discussion window the chair
opens the vote, all three cast signed ballots, the chair closes the vote,
and after the last call adopts it. Checked: every member applied the same
stage changes (each a DECISION entry of its own log), all three registries
hold the same digest, and the block answers over each node's RDAP with a
link to the decision.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from comity.localnet import LocalNode, StepFailed, agree, wait_for

__all__ = ["registry_scenario"]

BLOCK = "45.64.1.0/24"
PROBE = "45.64.1.77"
WINDOW = 1  # seconds: the demo's discussion window and last call


def _stage_is(node: LocalNode, pid: str, stage: str) -> bool:
    resp = node.client.get(f"{node.url}/api/governance/proposals/{pid}",
                           headers={"authorization": f"Bearer {node.token}"})
    return resp.status_code == 200 and resp.json()["stage"] == stage


def _ballots(node: LocalNode, pid: str) -> int:
    return len(node.api("GET", f"/api/governance/proposals/{pid}")["ballots"])


def registry_scenario(fr: LocalNode, ke: LocalNode, cn: LocalNode,
                      progress: Callable[[str], None]) -> dict[str, Any]:
    """Run the scenario; returns the ``"registry"`` section of the check report."""
    members = [ke, fr, cn]
    council = {"name": "numbers", "chair": ke.node_id, "quorum_percent": 60,
               "majorities": {"policy": "simple", "allocation": "simple",
                              "rules": "two-thirds", "consultation": "simple"},
               "discussion_seconds": WINDOW, "vote_seconds": 600,
               "last_call_seconds": WINDOW,
               "pools": ["45.64.0.0/16", "2a0f:1000::/32", "AS328000-AS328999"]}
    progress("registry: KE, FR and CN form a numbers council")
    cid = agree(ke, [fr, cn], title="Council for Internet number resources",
                scope={"council": council}, step="council")
    progress(f"registry: FR proposes allocating {BLOCK}; the council votes")
    pid = fr.api("POST", f"/api/governance/councils/{cid}/proposals", json={
        "kind": "allocation", "title": f"Allocate {BLOCK} to the Nairobi exchange",
        "text": "Address space for the exchange's peering LAN.",
        "effect": {"block": BLOCK, "status": "allocated", "name": "NBO-IXP-LAN",
                   "holder": {"handle": "NBO-IXP", "name": "Nairobi Internet Exchange",
                              "country": "KE"}}})["id"]
    for node in members:
        wait_for(f"council: proposal open at {node.key}",
                 partial(_stage_is, node, pid, "discussion"))
    time.sleep(WINDOW + 0.2)  # the discussion window is a minimum
    ke.api("POST", f"/api/governance/proposals/{pid}/open-vote")
    for node in members:
        wait_for(f"council: vote open at {node.key}", partial(_stage_is, node, pid, "voting"))
    for node, choice in ((ke, "yes"), (fr, "yes"), (cn, "abstain")):
        node.api("POST", f"/api/governance/proposals/{pid}/vote", json={"choice": choice})
    wait_for("council: ballots reach the chair", lambda: _ballots(ke, pid) == 3)
    ke.api("POST", f"/api/governance/proposals/{pid}/close-vote")
    for node in members:
        wait_for(f"council: last call at {node.key}",
                 partial(_stage_is, node, pid, "last-call"))
    time.sleep(WINDOW + 0.2)
    ke.api("POST", f"/api/governance/proposals/{pid}/adopt")
    for node in members:
        wait_for(f"council: adopted at {node.key}", partial(_stage_is, node, pid, "adopted"))

    shown = {n.key: n.api("GET", f"/api/governance/proposals/{pid}") for n in members}
    status = {n.key: n.api("GET", f"/api/governance/councils/{cid}") for n in members}
    digests = {k: s["digest"] for k, s in status.items()}
    if len(set(digests.values())) != 1:
        raise StepFailed("registries agree", f"digests differ: {digests}")
    rdap: dict[str, Any] = {}
    for node in members:
        resp = node.client.get(f"{node.url}/rdap/ip/{PROBE}",
                               headers={"accept": "application/rdap+json"})
        if resp.status_code != 200:
            raise StepFailed(f"RDAP at {node.key}", f"HTTP {resp.status_code} {resp.text}")
        body = resp.json()
        decision = [link["href"] for link in body.get("links", [])
                    if link.get("href", "").endswith(f"/governance/proposals/{pid}")]
        if body.get("handle") != BLOCK or not decision:
            raise StepFailed(f"RDAP at {node.key}", f"answered {body}")
        rdap[node.key] = {"handle": body["handle"], "decision": decision[0]}
    tally = shown[ke.key]["outcome"]
    return {
        "council": council["name"], "chair": ke.key, "proposal": pid, "block": BLOCK,
        "stages": [s["stage"] for s in shown[ke.key]["stages"]],
        "tally": {k: tally[k] for k in ("yes", "no", "abstain", "quorum", "majority",
                                         "passed")},
        "ballots_signed_by": sorted(b["voter"][:8] for b in shown[ke.key]["ballots"]),
        "decisions_logged": {k: [s["log_index"] for s in v["stages"]]
                             for k, v in shown.items()},
        "digests_agree": True, "digest": digests[ke.key],
        "rdap": rdap,
    }
