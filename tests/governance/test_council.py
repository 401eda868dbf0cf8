"""A council of three nodes governs a registry by vote: every stage over the federation,
every refusal the rules call for, and the same registry on every member."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from comity.db import read_scope, session_scope
from comity.governance.documents import Choice, sign
from comity.governance.errors import (
    BallotRefusedError,
    InvalidDocumentError,
    NotAMemberError,
    QuorumError,
    TallyMismatchError,
)
from comity.governance.models import CouncilDecision
from comity.governance.services import Council
from comity.ledger.commitments import parse_opening
from comity.registry.errors import InvalidResourceError, OverlapError
from comity.registry.resources import parse_block
from tests.support import SCOPE, LocalFederation, PeerNode

WINDOW = 60


def council_scope(chair: PeerNode, **rules: Any) -> dict[str, Any]:
    return {**SCOPE, "council": {
        "name": "numbers", "chair": chair.id, "quorum_percent": 50,
        "majorities": {"policy": "simple", "allocation": "simple", "rules": "two-thirds",
                       "consultation": "simple"},
        "discussion_seconds": WINDOW, "vote_seconds": WINDOW, "last_call_seconds": WINDOW,
        "pools": ["45.64.0.0/16", "2a0f:1000::/32", "AS328000-AS328999"], **rules}}


def allocation(block: str = "45.64.1.0/24", handle: str = "KE-NET-1") -> dict[str, Any]:
    return {"kind": "allocation", "title": f"Allocate {block}", "text": "For the exchange.",
            "effect": {"block": block, "status": "allocated", "name": "KE-IXP",
                       "holder": {"handle": handle, "name": "Kenya IXP", "country": "KE"}}}


class World:
    def __init__(self, fed: LocalFederation, **rules: Any) -> None:
        self.fed = fed
        self.a, self.b, self.c = fed.add("a"), fed.add("b", jurisdiction="KE"), fed.add(
            "c", jurisdiction="CN")
        fed.introduce_all()
        self.cid = fed.agree(self.a, [self.b, self.c], scope=council_scope(self.a, **rules),
                             title="Numbers council")
        self.members = (self.a, self.b, self.c)

    def later(self, seconds: int = WINDOW + 1) -> None:
        self.fed.clock.at = self.fed.clock.now() + dt.timedelta(seconds=seconds)

    def propose(self, by: PeerNode, body: dict[str, Any], expect: int = 201) -> Any:
        out = by.api("POST", f"/api/governance/councils/{self.cid}/proposals", json=body,
                     expect=expect)
        self.fed.pump()
        return out

    def act(self, by: PeerNode, pid: str, action: str, expect: int = 200, **body: Any) -> Any:
        out = by.api("POST", f"/api/governance/proposals/{pid}/{action}",
                     json=body or None, expect=expect)
        self.fed.pump()
        return out

    @staticmethod
    def client_get(node: PeerNode, path: str) -> Any:
        """A request with no token: what anyone on the Internet may ask."""
        return node.client.get(path)

    def stage(self, node: PeerNode, pid: str) -> str:
        return str(node.api("GET", f"/api/governance/proposals/{pid}")["stage"])

    def stages(self, pid: str) -> set[str]:
        return {self.stage(n, pid) for n in self.members}

    def council(self, node: PeerNode) -> Council:
        with read_scope(node.node.sessions) as session:
            return node.node.governance.council(session, self.cid)

    def through_vote(self, pid: str, votes: dict[str, str]) -> None:
        self.later()
        self.act(self.a, pid, "open-vote")
        for name, choice in votes.items():
            self.act(getattr(self, name), pid, "vote", choice=choice)
        if len(votes) < len(self.members):
            self.later()  # not everyone voted: the window must run out first
        self.act(self.a, pid, "close-vote")


@pytest.fixture
def world(fed: LocalFederation) -> World:
    return World(fed)


def test_an_allocation_is_voted_logged_and_held_alike_by_every_member(world: World) -> None:
    pid = world.propose(world.b, allocation())["id"]
    assert world.stages(pid) == {"discussion"}
    # The discussion window is a minimum: no vote before it ends.
    err = world.act(world.a, pid, "open-vote", expect=409)
    assert "discussion window is open" in err["detail"]
    world.through_vote(pid, {"a": "yes", "b": "yes", "c": "no"})
    assert world.stages(pid) == {"last-call"}
    world.act(world.a, pid, "adopt", expect=409)  # the last call runs its course
    world.later()
    world.act(world.a, pid, "adopt")
    assert world.stages(pid) == {"adopted"}

    shown = world.c.api("GET", f"/api/governance/proposals/{pid}")
    assert shown["outcome"] == {"members": 3, "cast": 3, "yes": 2, "no": 1, "abstain": 0,
                                "quorum": 2, "majority": "simple", "quorate": True,
                                "passed": True}
    assert [s["stage"] for s in shown["stages"]] == ["discussion", "voting", "last-call",
                                                     "adopted"]
    assert [s["n"] for s in shown["stages"]] == [1, 2, 3, 4]
    assert {b["voter"] for b in shown["ballots"]} == {world.a.id, world.b.id, world.c.id}
    digests = {n.name: n.api("GET", f"/api/governance/councils/{world.cid}")["digest"]
               for n in world.members}
    assert len(set(digests.values())) == 1, digests
    for n in world.members:
        with read_scope(n.node.sessions) as session:
            found = n.node.registry.lookup(session, parse_block("45.64.1.77"))
            assert found.delegation is not None
            assert found.delegation.holder == "KE-NET-1"
            assert found.delegation.proposal == pid
            assert found.delegation.decision_seq == 4
            # Each stage change is a DECISION entry of that member's own log.
            entries = [d.log_index for d in session.query(CouncilDecision).filter_by(
                council=world.cid).order_by(CouncilDecision.n)]
            assert len(entries) == 4
            openings = [n.node.ledger.opening(session, i) for i in entries]
            assert [o.kind for o in openings if o] == ["DECISION"] * 4
            assert found.delegation.log_index == entries[-1]
            assert parse_opening(openings[-1].to_dict()).act["stage"] == "adopted"


def test_the_public_record_and_proof_of_a_settled_decision(world: World) -> None:
    pid = world.propose(world.a, allocation("45.64.8.0/22"))["id"]
    world.through_vote(pid, {"a": "yes", "b": "yes"})
    assert world.client_get(world.b, f"/governance/proposals/{pid}").status_code == 404
    world.later()
    world.act(world.a, pid, "adopt")
    record = world.client_get(world.b, f"/governance/proposals/{pid}")
    assert record.status_code == 200
    assert record.json()["stage"] == "adopted"
    world.fed.witness()
    proof = world.client_get(world.b, f"/governance/proposals/{pid}/proof")
    assert proof.status_code == 200, proof.text
    from comity.ledger.proofs import verify_entry_proof

    entry = verify_entry_proof(proof.content)
    assert entry.opening.kind == "DECISION"
    assert entry.opening.act["proposal"] == pid


def test_a_rejected_proposal_changes_nothing(world: World) -> None:
    pid = world.propose(world.c, allocation())["id"]
    before = world.council(world.a)
    world.through_vote(pid, {"a": "no", "b": "no", "c": "yes"})
    assert world.stages(pid) == {"rejected"}
    with read_scope(world.a.node.sessions) as session:
        assert world.a.node.registry.count(session, before.name) == 0


def test_a_vote_below_quorum_is_refused(fed: LocalFederation) -> None:
    world = World(fed, quorum_percent=100)
    pid = world.propose(world.b, allocation())["id"]
    world.later()
    world.act(world.a, pid, "open-vote")
    world.act(world.a, pid, "vote", choice="yes")
    world.act(world.b, pid, "vote", choice="yes")
    world.later()
    err = world.act(world.a, pid, "close-vote", expect=409)
    assert err["type"].endswith("governance-no-quorum")
    assert "2 of 3 members voted; the quorum is 3" in err["detail"]
    assert world.stages(pid) == {"voting"}


def test_double_votes_late_votes_and_votes_out_of_stage_are_refused(world: World) -> None:
    pid = world.propose(world.b, allocation())["id"]
    err = world.act(world.c, pid, "vote", expect=409, choice="yes")
    assert "not being voted on" in err["detail"]
    world.later()
    world.act(world.a, pid, "open-vote")
    world.act(world.b, pid, "vote", choice="yes")
    again = world.act(world.b, pid, "vote", expect=409, choice="no")
    assert "already voted" in again["detail"]
    # The chair refuses a second ballot of b's however it arrives.
    council = world.council(world.a)
    with read_scope(world.b.node.sessions) as session:
        doc = dict(world.b.node.governance.show(session, pid)["ballots"][0]["signed"]["doc"])
    second = sign(world.b.node.local, {**doc, "choice": "no"})
    with pytest.raises(BallotRefusedError, match="already voted"), \
            session_scope(world.a.node.sessions) as session:
        world.a.node.governance.accept_ballot(session, council, second, sender=world.b.id)
    # After the window, c's ballot does not count.
    world.later()
    late = sign(world.c.node.local, {**doc, "voter": world.c.id})
    with pytest.raises(BallotRefusedError, match="the vote closed"), \
            session_scope(world.a.node.sessions) as session:
        world.a.node.governance.accept_ballot(session, council, late, sender=world.c.id)


def test_forged_and_non_member_ballots_are_refused(world: World) -> None:
    outsider = world.fed.add("d", jurisdiction="BR")
    world.fed.introduce(world.a, outsider)
    pid = world.propose(world.b, allocation())["id"]
    world.later()
    world.act(world.a, pid, "open-vote")
    council = world.council(world.a)
    with read_scope(world.a.node.sessions) as session:
        p = world.a.node.governance.show(session, pid)
    doc = {"type": "comity.ballot", "v": 1, "council": world.cid, "proposal": pid,
           "doc_hash": p["doc_hash"], "round": 1, "choice": "yes",
           "voter": world.c.id, "cast": "2026-01-01T00:00:00Z"}
    genuine = sign(world.c.node.local, doc)
    forged = copy.deepcopy(genuine)
    object.__setattr__(forged, "doc", {**doc, "choice": "no"})
    with pytest.raises(InvalidDocumentError, match=r"forged or damaged comity\.ballot"), \
            session_scope(world.a.node.sessions) as session:
        world.a.node.governance.accept_ballot(session, council, forged, sender=world.c.id)
    stranger = sign(outsider.node.local, {**doc, "voter": outsider.id})
    with pytest.raises(NotAMemberError, match="not a member"), \
            session_scope(world.a.node.sessions) as session:
        world.a.node.governance.accept_ballot(session, council, stranger, sender=outsider.id)
    # The genuine one is taken.
    with session_scope(world.a.node.sessions) as session:
        world.a.node.governance.accept_ballot(session, council, genuine, sender=world.c.id)


def _closing(world: World, pid: str) -> dict[str, Any]:
    """The chair's stage change that closed the vote, as sent to members."""
    with read_scope(world.a.node.sessions) as session:
        shown = world.a.node.governance.show(session, pid)
    return dict(shown["stages"][-1]["change"])


@pytest.mark.parametrize(("tamper", "error", "match"), [
    (lambda b: b["tally"].update(yes=3, no=0), TallyMismatchError, "does not follow"),
    (lambda b: b.update(stage="rejected"), TallyMismatchError, "make the proposal last-call"),
    (lambda b: b["ballots"].pop(), QuorumError, "no decision can be taken"),
    (lambda b: b["ballots"].append(b["ballots"][0]), TallyMismatchError, "voted twice"),
    (lambda b: b["ballots"][0]["doc"].update(choice="no"), InvalidDocumentError, "forged"),
    (lambda b: b.update(digest="0" * 64), TallyMismatchError, "digest"),
])
def test_members_refuse_a_decision_that_does_not_follow_from_its_ballots(
        fed: LocalFederation, tamper: Any, error: type[Exception], match: str) -> None:
    world = World(fed, quorum_percent=60)
    pid = world.propose(world.b, allocation())["id"]
    world.later()
    world.act(world.a, pid, "open-vote")
    world.act(world.a, pid, "vote", choice="yes")
    world.act(world.b, pid, "vote", choice="yes")
    world.later()
    world.act(world.a, pid, "close-vote")
    # What c received, rewound: c has applied up to the vote's opening.
    body = _closing(world, pid)
    assert body["stage"] == "last-call"
    with session_scope(world.c.node.sessions) as session:
        session.query(CouncilDecision).filter_by(council=world.cid, n=body["n"]).delete()
        from comity.governance.models import Proposal

        session.get(Proposal, pid).stage = "voting"  # type: ignore[union-attr]
    bad = copy.deepcopy(body)
    tamper(bad)
    council = world.council(world.c)
    # Refused, and rolled back: nothing of it stays.
    with pytest.raises(error, match=match), session_scope(world.c.node.sessions) as session:
        world.c.node.governance.apply(session, council, bad)
    with session_scope(world.c.node.sessions) as session:  # the genuine one applies
        world.c.node.governance.apply(session, council, body)


def test_an_appeal_sends_the_decision_back_to_a_final_vote(world: World) -> None:
    pid = world.propose(world.b, allocation())["id"]
    world.through_vote(pid, {"a": "yes", "b": "yes", "c": "no"})
    world.act(world.c, pid, "appeal", grounds="The block was promised to another member.")
    assert world.stages(pid) == {"appealed"}
    world.act(world.a, pid, "open-vote")
    for node, choice in ((world.a, "no"), (world.b, "yes"), (world.c, "no")):
        world.act(node, pid, "vote", choice=choice)
    world.act(world.a, pid, "close-vote")
    assert world.stages(pid) == {"rejected"}
    shown = world.a.api("GET", f"/api/governance/proposals/{pid}")
    assert [s["stage"] for s in shown["stages"]] == [
        "discussion", "voting", "last-call", "appealed", "voting", "rejected"]
    assert shown["round"] == 2


def test_an_appeal_after_the_last_call_is_refused(world: World) -> None:
    pid = world.propose(world.b, allocation())["id"]
    world.through_vote(pid, {"a": "yes", "b": "yes"})
    world.later()
    err = world.act(world.c, pid, "appeal", expect=200, grounds="Too late")
    assert err["stage"] == "last-call"
    assert world.stages(pid) == {"last-call"}  # the chair refused it: nothing moved
    failed = world.c.api("GET", "/api/outbox?status=failed")
    assert any("last call ended" in str(m) for m in failed), failed


def test_overlapping_and_misaligned_allocations_are_refused(world: World) -> None:
    pid = world.propose(world.b, allocation("45.64.4.0/22"))["id"]
    world.through_vote(pid, {"a": "yes", "b": "yes"})
    world.later()
    world.act(world.a, pid, "adopt")
    overlap = world.propose(world.b, allocation("45.64.5.0/24", "OTHER"), expect=409)
    assert overlap["type"].endswith("registry-overlap")
    assert "45.64.4.0/22" in overlap["detail"]
    misaligned = world.propose(world.b, allocation("45.64.1.1/24"), expect=422)
    assert "host bits set" in misaligned["detail"]
    not_prefix = world.propose(world.b, allocation("45.64.9.0-45.64.9.99"), expect=422)
    assert "not one CIDR prefix" in not_prefix["detail"]
    outside = world.propose(world.b, allocation("45.65.0.0/24"), expect=409)
    assert outside["type"].endswith("registry-outside-pool")
    with session_scope(world.a.node.sessions) as session:
        with pytest.raises(OverlapError):
            world.a.node.registry.check_free(session, "numbers", parse_block("45.64.4.128/25"))
        with pytest.raises(InvalidResourceError):
            parse_block("45.64.4.0/33")


def test_a_change_of_rules_applies_to_later_decisions(world: World) -> None:
    pid = world.propose(world.b, {"kind": "rules", "title": "Unanimity for allocations",
                                  "effect": {"majorities": {
                                      "policy": "simple", "allocation": "unanimity",
                                      "rules": "two-thirds", "consultation": "simple"}}})["id"]
    world.through_vote(pid, {"a": "yes", "b": "yes", "c": "yes"})
    world.later()
    world.act(world.a, pid, "adopt")
    for n in world.members:
        assert world.council(n).rules.majorities["allocation"].value == "unanimity"
    # One "no" now stops an allocation that a simple majority would have passed.
    alloc = world.propose(world.b, allocation())["id"]
    world.through_vote(alloc, {"a": "yes", "b": "yes", "c": "no"})
    assert world.stages(alloc) == {"rejected"}


def test_withdrawal_by_the_proposer_only(world: World) -> None:
    pid = world.propose(world.b, allocation())["id"]
    err = world.act(world.c, pid, "withdraw", expect=409)
    assert "only the proposer" in err["detail"]
    world.act(world.b, pid, "withdraw")
    assert world.stages(pid) == {"withdrawn"}
    err = world.act(world.a, pid, "open-vote", expect=409)
    assert "withdrawn" in err["detail"]


def test_only_the_chair_moves_proposals_on(world: World) -> None:
    pid = world.propose(world.b, allocation())["id"]
    world.later()
    err = world.act(world.b, pid, "open-vote", expect=409)
    assert "only the chair" in err["detail"]


def test_stage_changes_are_applied_in_the_chairs_order(world: World) -> None:
    first = world.propose(world.a, allocation("45.64.16.0/24", "H1"))["id"]
    second = world.propose(world.a, allocation("45.64.17.0/24", "H2"))["id"]
    for n in world.members:
        with read_scope(n.node.sessions) as session:
            order = [(d.n, d.proposal_id) for d in session.query(CouncilDecision).filter_by(
                council=world.cid).order_by(CouncilDecision.n)]
        assert order == [(1, first), (2, second)]


def test_a_choice_must_be_a_known_one(world: World) -> None:
    pid = world.propose(world.b, allocation())["id"]
    world.b.api("POST", f"/api/governance/proposals/{pid}/vote", json={"choice": "maybe"},
                expect=422)
    assert Choice("abstain").value == "abstain"


def test_stage_changes_that_arrive_early_wait_for_those_before_them(world: World) -> None:
    from types import SimpleNamespace

    from comity.federation.registry import ReceiveContext
    from comity.governance.models import CouncilHeld, Proposal

    first = world.propose(world.a, allocation("45.64.16.0/24", "H1"))["id"]
    world.propose(world.a, allocation("45.64.17.0/24", "H2"))
    with read_scope(world.a.node.sessions) as session:
        bodies = [orjson_loads(d.body) for d in session.query(CouncilDecision).filter_by(
            council=world.cid).order_by(CouncilDecision.n)]
    # c forgets both, then receives them in the wrong order.
    with session_scope(world.c.node.sessions) as session:
        session.query(CouncilDecision).filter_by(council=world.cid).delete()
        session.query(Proposal).delete()

    def receive(body: dict[str, Any]) -> None:
        message = SimpleNamespace(body=body, sender=world.a.id, agreement=world.cid)
        with session_scope(world.c.node.sessions) as session:
            world.c.node.governance.on_stage(ReceiveContext(
                session=session, message=message, local=world.c.node.local,  # type: ignore[arg-type]
                peer=None, now=world.fed.clock.now(), verify_party=lambda *a: None))  # type: ignore[arg-type]

    receive(bodies[1])
    with read_scope(world.c.node.sessions) as session:
        assert session.query(CouncilDecision).filter_by(council=world.cid).count() == 0
        assert session.query(CouncilHeld).count() == 1
    receive(bodies[0])
    with read_scope(world.c.node.sessions) as session:
        applied = [d.n for d in session.query(CouncilDecision).filter_by(council=world.cid)]
        assert sorted(applied) == [1, 2]
        assert session.query(CouncilHeld).count() == 0
        assert session.get(Proposal, first) is not None
    receive(bodies[0])  # a repeat is ignored
    changed = {**bodies[0], "at": "2020-01-01T00:00:00Z"}
    with pytest.raises(TallyMismatchError, match="already applied with different content"):
        receive(changed)


def orjson_loads(raw: str) -> dict[str, Any]:
    import json

    return dict(json.loads(raw))


def test_a_statistics_file_cannot_be_imported_into_a_councils_registry(
        world: World, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from comity.cli import app

    stats = tmp_path / "delegated"
    stats.write_text("2|test|20260101|1|00000000|20260101|00000\n"
                     "test|KE|ipv4|45.64.200.0|256|20260101|allocated|H1\n")
    env = {"COMITY_DATABASE_URL": world.a.node.settings.database_url or ""}
    args = ["registry", "import", str(stats), "--data-dir", str(world.a.node.settings.data_dir)]
    refused = CliRunner().invoke(app, [*args, "--authority", "numbers"], env=env)
    assert refused.exit_code != 0
    assert "is a council's registry" in refused.output
    with read_scope(world.a.node.sessions) as session:
        assert world.a.node.registry.count(session, "numbers") == 0


def test_members_list_their_councils(world: World) -> None:
    for n in world.members:
        listed = n.api("GET", "/api/governance/councils")
        assert [c["council"] for c in listed] == [world.cid]
        assert listed[0]["chair"] == world.a.id
        assert sorted(listed[0]["members"]) == sorted(m.id for m in world.members)


def test_anyone_holding_the_cards_can_recount_a_public_record(world: World,
                                                              tmp_path: Any) -> None:
    import json

    from typer.testing import CliRunner

    from comity.cli import app

    pid = world.propose(world.b, allocation())["id"]
    world.through_vote(pid, {"a": "yes", "b": "no", "c": "yes"})
    world.later()
    world.act(world.a, pid, "adopt")
    record = world.client_get(world.a, f"/governance/proposals/{pid}").json()
    with read_scope(world.c.node.sessions) as session:
        result = world.c.node.governance.recount(session, record)
    assert result["ok"] is True
    [decision] = result["decisions"]
    assert decision["recounted"]["yes"] == 2
    assert decision["ballots_verified"] == 3
    # A record whose tally was edited, or whose ballot was changed, does not add up.
    edited = copy.deepcopy(record)
    closing = next(s for s in edited["stages"] if "ballots" in s["change"])
    closing["change"]["tally"]["no"] = 0
    with read_scope(world.c.node.sessions) as session:
        bad = world.c.node.governance.recount(session, edited)
    assert bad["ok"] is False
    assert "does not follow from the ballots" in bad["decisions"][0]["problems"][0]
    forged = copy.deepcopy(record)
    closing = next(s for s in forged["stages"] if "ballots" in s["change"])
    closing["change"]["ballots"][0]["doc"]["choice"] = "abstain"  # none abstained
    with read_scope(world.c.node.sessions) as session:
        bad = world.c.node.governance.recount(session, forged)
    assert any("forged or damaged" in p for p in bad["decisions"][0]["problems"])
    # The same from the command line, on a file.
    env = {"COMITY_DATABASE_URL": world.c.node.settings.database_url or ""}
    for doc, code in ((record, 0), (edited, 1)):
        path = tmp_path / f"record-{code}.json"
        path.write_text(json.dumps(doc))
        out = CliRunner().invoke(app, ["council", "recount", str(path), "--data-dir",
                                       str(world.c.node.settings.data_dir)], env=env)
        assert out.exit_code == code, out.output


def test_a_draft_stays_with_its_proposer_until_submitted(world: World) -> None:
    draft = world.propose(world.b, {**allocation(), "draft": True})
    pid = draft["id"]
    assert draft["stage"] == "draft"
    for other in (world.a, world.c):
        other.api("GET", f"/api/governance/proposals/{pid}", expect=404)
    world.act(world.c, pid, "submit", expect=404)  # c has never seen it
    world.act(world.b, pid, "submit")
    assert world.stages(pid) == {"discussion"}
    world.act(world.b, pid, "submit", expect=409)
    # A draft withdrawn is gone without anyone else hearing of it.
    other = world.propose(world.b, {**allocation("45.64.2.0/24", "H2"), "draft": True})["id"]
    world.act(world.b, other, "withdraw")
    assert world.stage(world.b, other) == "withdrawn"
    world.a.api("GET", f"/api/governance/proposals/{other}", expect=404)
