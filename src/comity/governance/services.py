"""Councils at work: proposals through their stages, ballots, tallies, and the registry they govern.

A council is formed by a multilateral agreement whose scope has a
``council`` section (:class:`~comity.agreements.schemas.CouncilRules`):
its members are the agreement's active parties, one member one vote.

**Order.** The chair numbers every stage change of the council
``n = 1, 2, ...`` and sends it to every member as ``council.stage``. Each
member (the chair included) applies stage changes strictly in that order
(:meth:`Governance.apply`), holding back any that arrive early, so every
member applies the same decisions in the same order and holds the same
registry; each stage change carries the chair's digest of the council's
registry after it, and a member whose own digest differs refuses it.

**No trust in the chair.** The chair only sequences. A stage change that
closes a vote carries every signed ballot: each member checks each
signature against the voter's card, that the voter is a member who voted
once, for this proposal, round and text, and recomputes the tally
(:mod:`comity.governance.tally`) under the rules in force; a decision that
does not follow from its ballots, or is below quorum, is refused.

**The log.** Each stage change applied is a DECISION entry of the node's
log, whose act is public to the council (it names the council, ``n``, the
proposal, the stage and the hash of the stage change).

Stages: ``draft`` (at the proposer only) → ``submitted`` (on its way to the chair) →
``discussion`` (a minimum window) → ``voting`` → ``last-call`` (passed) or
``rejected``; ``last-call`` → ``adopted`` when the window ends without an
appeal, or ``appealed`` → ``voting`` again (round 2, whose result is
final). A proposal may be ``withdrawn`` by its proposer until it is voted on.
Adopting an allocation delegates its block in the council's registry;
adopting a change of rules changes the rules for every later decision.

Trust assumptions: members' cards are held as peer cards (the agreement's
parties exchanged them); everything received is checked here before it
changes anything.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from comity.agreements.schemas import AgreementStatus, CouncilRules, Majority, ProposalKind
from comity.agreements.services import AgreementView, get_agreement, list_agreements
from comity.clock import Clock, format_ts, parse_ts
from comity.db import advisory_lock
from comity.federation.errors import BadSignatureError
from comity.federation.receiving import party_verifier
from comity.federation.registry import ReceiveContext
from comity.federation.services import Federation
from comity.governance.documents import (
    APPEAL,
    BALLOT,
    PROPOSAL,
    Choice,
    Signed,
    allocation_effect,
    parse_appeal,
    parse_ballot,
    parse_proposal,
    sign,
)
from comity.governance.errors import (
    BallotRefusedError,
    CouncilNotFoundError,
    GovernanceError,
    InvalidDocumentError,
    NotAMemberError,
    ProposalNotFoundError,
    QuorumError,
    StageError,
    TallyMismatchError,
)
from comity.governance.models import Ballot, CouncilDecision, CouncilHeld, Proposal
from comity.governance.tally import Tally, count
from comity.hazmat import canonical
from comity.identity.services import IdentityHolder
from comity.ledger.commitments import Opening, new_salt
from comity.ledger.services import Ledger
from comity.problems import Problem
from comity.registry.errors import InvalidResourceError
from comity.registry.resources import Kind, parse_block
from comity.registry.services import Registry

__all__ = ["REQUEST_MESSAGE", "STAGE_MESSAGE", "Council", "Governance"]

STAGE_MESSAGE = "council.stage"
REQUEST_MESSAGE = "council.request"
_MAX_HELD = 1000  # stage changes held back per council, waiting for a gap to fill

# Which stage may follow which (the first stage change of a proposal opens it).
_FROM: dict[str, frozenset[str]] = {
    "discussion": frozenset({"", "draft", "submitted"}),
    "voting": frozenset({"discussion", "appealed"}),
    "last-call": frozenset({"voting"}),
    "rejected": frozenset({"voting"}),
    "adopted": frozenset({"last-call", "voting"}),
    "appealed": frozenset({"last-call"}),
    "withdrawn": frozenset({"discussion", "voting"}),
}


@dataclass(frozen=True)
class Council:
    """A council as this node holds it: its agreement, rules in force and members."""

    council_id: str
    rules: CouncilRules
    members: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.rules.name

    @property
    def chair(self) -> str:
        return self.rules.chair


def _json(doc: Any) -> str:
    return canonical.dumps(doc).decode()


def _summary(p: Proposal) -> dict[str, Any]:
    return {"id": p.proposal_id, "council": p.council, "kind": p.kind, "title": p.title,
            "proposer": p.proposer, "stage": p.stage, "round": p.round,
            "stage_at": format_ts(p.stage_at),
            "window_until": None if p.window_until is None else format_ts(p.window_until)}


def _lock_council(session: Session, council_id: str) -> None:
    """One writer of a council's sequence at a time."""
    advisory_lock(session, f"comity.council.{council_id}")


class Governance:
    """The councils this node is a member of."""

    def __init__(self, federation: Federation, identity: IdentityHolder, ledger: Ledger,
                 registry: Registry, clock: Clock) -> None:
        self.federation = federation
        self.identity = identity
        self.ledger = ledger
        self.registry = registry
        self.clock = clock

    # -- councils ----------------------------------------------------------------------

    def councils(self, session: Session) -> list[Council]:
        """Councils formed by agreements in force that this node is a party to."""
        out = []
        now = self.clock.now()
        local = self.identity.get().node_id
        for view in list_agreements(session):
            doc = view.effective
            if doc is None or doc.scope.council is None or local not in view.active_parties:
                continue
            if view.status(now) is not AgreementStatus.IN_FORCE:
                continue
            out.append(self._council(session, view))
        return out

    def council(self, session: Session, council_id: str) -> Council:
        """Raises: CouncilNotFoundError, NotAMemberError."""
        try:
            view = get_agreement(session, council_id)
        except Problem:
            raise CouncilNotFoundError(f"no agreement {council_id} is held here") from None
        if view.effective is None or view.effective.scope.council is None:
            raise CouncilNotFoundError(f"agreement {council_id} forms no council in force")
        if self.identity.get().node_id not in view.active_parties:
            raise NotAMemberError(f"this node is not a member of council {council_id}")
        return self._council(session, view)

    def _council(self, session: Session, view: AgreementView) -> Council:
        assert view.effective is not None
        assert view.effective.scope.council is not None
        rules = view.effective.scope.council
        # Later adopted changes of rules replace what they name, in decision order.
        changes = session.execute(select(Proposal.document).join(
            CouncilDecision, CouncilDecision.proposal_id == Proposal.proposal_id).where(
            CouncilDecision.council == view.agreement_id, CouncilDecision.stage == "adopted",
            Proposal.kind == ProposalKind.RULES.value).order_by(CouncilDecision.n)).scalars()
        for raw in changes:
            effect = orjson.loads(raw)["effect"]
            rules = CouncilRules.model_validate({**rules.model_dump(mode="json"), **effect})
        return Council(view.agreement_id, rules, view.active_parties)

    def ensure_pools(self, session: Session, council: Council) -> None:
        """The council's pools, as its agreement names them (the same on every member)."""
        held = {(p.kind, p.start_key) for p in self.registry.pools(session, council.name)}
        for pool in council.rules.pools:
            block = parse_block(pool)
            if (block.kind.value, block.start_key) not in held:
                self.registry.add_pool(session, registry=council.name, block=block,
                                       name=f"pool of council {council.name}",
                                       now=self.clock.now())

    def last_n(self, session: Session, council_id: str) -> int:
        return int(session.scalar(select(func.max(CouncilDecision.n)).where(
            CouncilDecision.council == council_id)) or 0)

    # -- proposals ---------------------------------------------------------------------

    def propose(self, session: Session, council_id: str, *, kind: ProposalKind, title: str,
                text: str, effect: dict[str, Any], draft: bool = False) -> dict[str, Any]:
        """Make and sign a proposal; the chair opens it for discussion.

        A ``draft`` stays here, seen by nobody else, until :meth:`submit`.

        Raises:
            CouncilNotFoundError, NotAMemberError, InvalidDocumentError,
            RegistryError: an allocation that cannot be made as things stand.
        """
        council = self.council(session, council_id)
        local = self.identity.get()
        doc = {"type": PROPOSAL, "v": 1, "id": str(uuid.uuid4()), "council": council_id,
               "kind": kind.value, "title": title, "text": text, "effect": effect,
               "proposer": local.node_id, "created": format_ts(self.clock.now())}
        signed = parse_proposal(sign(local, doc).to_dict())
        self._check_effect(session, council, signed)
        if draft:
            self._store_proposal(session, signed, stage="draft")
        else:
            self._submit(session, council, signed)
        return self.show(session, str(doc["id"]))

    def submit(self, session: Session, proposal_id: str) -> dict[str, Any]:
        """Send a draft to the chair, who opens it for discussion.

        Raises:
            StageError: not a draft, or not this node's.
        """
        p = self._proposal(session, proposal_id)
        if p.stage != "draft" or p.proposer != self.identity.get().node_id:
            raise StageError(f"the proposal is {p.stage}; only the proposer submits a draft")
        council = self.council(session, p.council)
        signed = self._signed_proposal(p)
        self._check_effect(session, council, signed)
        self._submit(session, council, signed, stored=p)
        return self.show(session, proposal_id)

    def _check_effect(self, session: Session, council: Council, signed: Signed) -> None:
        if signed.doc["kind"] != ProposalKind.ALLOCATION.value:
            return
        self.ensure_pools(session, council)
        block = parse_block(signed.doc["effect"]["block"])
        if block.kind is not Kind.ASN and block.prefix_length is None:
            raise InvalidResourceError(f"{block} is not one CIDR prefix: a council "
                                       "allocates whole prefixes")
        self.registry.check_free(session, council.name, block)

    def _submit(self, session: Session, council: Council, signed: Signed, *,
                stored: Proposal | None = None) -> None:
        if self.identity.get().node_id == council.chair:
            self._emit(session, council, {"proposal": signed.doc["id"], "stage": "discussion",
                                          "proposal_doc": signed.to_dict()})
            return
        if stored is None:
            self._store_proposal(session, signed, stage="submitted")
        else:
            stored.stage, stored.stage_at = "submitted", self.clock.now()
        self._to_chair(session, council, {"action": "propose", "document": signed.to_dict()})

    def _store_proposal(self, session: Session, signed: Signed, *, stage: str) -> Proposal:
        d = signed.doc
        p = Proposal(proposal_id=d["id"], council=d["council"], kind=d["kind"],
                     title=d["title"], proposer=signed.author, document=_json(d),
                     doc_hash=signed.doc_hash, signature=f"{signed.serial}:{signed.signature}",
                     stage=stage, round=0, stage_at=self.clock.now(), window_until=None,
                     outcome=None, created_at=self.clock.now())
        session.add(p)
        session.flush()
        return p

    def _proposal(self, session: Session, proposal_id: str) -> Proposal:
        p = session.get(Proposal, proposal_id)
        if p is None:
            raise ProposalNotFoundError(f"no proposal {proposal_id} here")
        return p

    def _signed_proposal(self, p: Proposal) -> Signed:
        serial, _, sig = p.signature.partition(":")
        return Signed(orjson.loads(p.document), p.proposer, int(serial), sig)

    # -- the chair's acts --------------------------------------------------------------

    def _chair_only(self, session: Session, proposal_id: str) -> tuple[Council, Proposal]:
        p = self._proposal(session, proposal_id)
        council = self.council(session, p.council)
        if self.identity.get().node_id != council.chair:
            raise StageError(f"only the chair ({council.chair}) moves a proposal on")
        return council, p

    def _window_over(self, p: Proposal, what: str) -> None:
        now = self.clock.now()
        if p.window_until is not None and now < p.window_until:
            raise StageError(f"the {what} window is open until {format_ts(p.window_until)}")

    def open_vote(self, session: Session, proposal_id: str) -> dict[str, Any]:
        """Chair: open the vote once the discussion window has passed (or after an appeal).

        Raises:
            StageError
        """
        council, p = self._chair_only(session, proposal_id)
        if p.stage not in ("discussion", "appealed"):
            raise StageError(f"the proposal is {p.stage}; a vote opens after discussion "
                             "or an appeal")
        if p.stage == "discussion":
            self._window_over(p, "discussion")
        self._emit(session, council, {"proposal": proposal_id, "stage": "voting"})
        return self.show(session, proposal_id)

    def close_vote(self, session: Session, proposal_id: str) -> dict[str, Any]:
        """Chair: count the ballots once the window has closed (or every member has voted).

        Raises:
            StageError, QuorumError: too few ballots to decide anything.
        """
        council, p = self._chair_only(session, proposal_id)
        if p.stage != "voting":
            raise StageError(f"the proposal is {p.stage}, not being voted on")
        ballots = self._ballots(session, proposal_id, p.round)
        if len(ballots) < len(council.members):
            self._window_over(p, "voting")
        tally = self._tally(council, p, {b.voter: b.choice for b in ballots})
        if not tally.quorate:
            raise QuorumError(f"{tally.cast} of {tally.members} members voted; the quorum is "
                              f"{tally.quorum}: the vote stays open to more ballots")
        stage = ("last-call" if p.round == 1 else "adopted") if tally.passed else "rejected"
        self._emit(session, council, {
            "proposal": proposal_id, "stage": stage, "tally": tally.to_dict(),
            "ballots": [self._signed_ballot(b).to_dict() for b in ballots]})
        return self.show(session, proposal_id)

    def adopt(self, session: Session, proposal_id: str) -> dict[str, Any]:
        """Chair: adopt once the last call has passed without appeal.

        Raises:
            StageError, RegistryError: the allocation can no longer be made.
        """
        council, p = self._chair_only(session, proposal_id)
        if p.stage != "last-call":
            raise StageError(f"the proposal is {p.stage}; it is adopted after its last call")
        self._window_over(p, "last call")
        self._emit(session, council, {"proposal": proposal_id, "stage": "adopted"})
        return self.show(session, proposal_id)

    # -- every member's acts -----------------------------------------------------------

    def cast(self, session: Session, proposal_id: str, choice: Choice) -> dict[str, Any]:
        """Sign a ballot and send it to the chair.

        Raises:
            StageError, BallotRefusedError: this node already voted in this round.
        """
        p = self._proposal(session, proposal_id)
        council = self.council(session, p.council)
        if p.stage != "voting":
            raise StageError(f"the proposal is {p.stage}, not being voted on")
        local = self.identity.get()
        doc = {"type": BALLOT, "v": 1, "council": p.council, "proposal": proposal_id,
               "doc_hash": p.doc_hash, "round": p.round, "choice": choice.value,
               "voter": local.node_id, "cast": format_ts(self.clock.now())}
        signed = sign(local, doc)
        if local.node_id == council.chair:
            self.accept_ballot(session, council, signed, sender=local.node_id)
        else:
            self._keep_ballot(session, signed)
            self._to_chair(session, council, {"action": "ballot", "document": signed.to_dict()})
        return signed.to_dict()

    def appeal(self, session: Session, proposal_id: str, grounds: str) -> dict[str, Any]:
        """Appeal a decision during its last call: the council votes again.

        Raises:
            StageError
        """
        p = self._proposal(session, proposal_id)
        council = self.council(session, p.council)
        if p.stage != "last-call":
            raise StageError(f"the proposal is {p.stage}; appeals are made during last call")
        local = self.identity.get()
        signed = sign(local, {"type": APPEAL, "v": 1, "council": p.council,
                              "proposal": proposal_id, "doc_hash": p.doc_hash,
                              "grounds": grounds, "appellant": local.node_id,
                              "made": format_ts(self.clock.now())})
        parse_appeal(signed.to_dict())
        if local.node_id == council.chair:
            self._accept_appeal(session, council, signed)
        else:
            self._to_chair(session, council, {"action": "appeal", "document": signed.to_dict()})
        return self.show(session, proposal_id)

    def withdraw(self, session: Session, proposal_id: str) -> dict[str, Any]:
        """The proposer withdraws its proposal before it is decided.

        Raises:
            StageError
        """
        p = self._proposal(session, proposal_id)
        council = self.council(session, p.council)
        local = self.identity.get().node_id
        if local != p.proposer:
            raise StageError("only the proposer may withdraw a proposal")
        if p.stage == "draft":  # nobody else has seen it
            p.stage, p.stage_at = "withdrawn", self.clock.now()
            return self.show(session, proposal_id)
        if p.stage not in _FROM["withdrawn"]:
            raise StageError(f"the proposal is {p.stage}; it can be withdrawn during "
                             "discussion or voting")
        if local == council.chair:
            self._emit(session, council, {"proposal": proposal_id, "stage": "withdrawn"})
        else:
            self._to_chair(session, council, {"action": "withdraw", "proposal": proposal_id})
        return self.show(session, proposal_id)

    def _to_chair(self, session: Session, council: Council, body: dict[str, Any]) -> None:
        self.federation.send(session, to=council.chair, type=REQUEST_MESSAGE,
                             body={"council": council.council_id, **body},
                             agreement_id=council.council_id)

    # -- at the chair: what members ask --------------------------------------------------

    def _council_of(self, ctx: ReceiveContext) -> Council:
        body = ctx.message.body
        if ctx.message.agreement != body["council"]:
            raise InvalidDocumentError("a council's messages travel under its own agreement")
        return self.council(ctx.session, body["council"])

    def on_request(self, ctx: ReceiveContext) -> None:
        """A member's proposal, ballot, appeal or withdrawal, at the chair."""
        body = ctx.message.body
        council = self._council_of(ctx)
        if ctx.local.node_id != council.chair:
            raise StageError("this node is not the council's chair")
        sender = ctx.message.sender
        action = body["action"]
        if action == "withdraw":
            p = self._proposal(ctx.session, body["proposal"])
            if p.proposer != sender:
                raise StageError("only the proposer may withdraw a proposal")
            if p.stage not in _FROM["withdrawn"]:
                raise StageError(f"the proposal is {p.stage}; too late to withdraw")
            self._emit(ctx.session, council, {"proposal": p.proposal_id, "stage": "withdrawn"})
            return
        parse = {"propose": parse_proposal, "ballot": parse_ballot,
                 "appeal": parse_appeal}[action]
        signed = parse(body["document"])
        if signed.author != sender:
            raise NotAMemberError(f"the document is signed for {signed.author}, but was sent "
                                  f"by {sender}")
        if action == "propose":
            self._verify(ctx.session, signed)
            if signed.doc["council"] != council.council_id:
                raise InvalidDocumentError("the proposal names another council")
            if ctx.session.get(Proposal, signed.doc["id"]) is not None:
                raise StageError(f"proposal {signed.doc['id']} is already before the council")
            self._emit(ctx.session, council, {"proposal": signed.doc["id"],
                                              "stage": "discussion",
                                              "proposal_doc": signed.to_dict()})
        elif action == "ballot":
            self.accept_ballot(ctx.session, council, signed, sender=sender)
        else:
            self._accept_appeal(ctx.session, council, signed)

    def accept_ballot(self, session: Session, council: Council, signed: Signed, *,
                      sender: str) -> None:
        """The chair takes one ballot in, or refuses it saying why.

        Raises:
            NotAMemberError, BallotRefusedError, StageError
        """
        d = signed.doc
        if sender not in council.members or d["voter"] not in council.members:
            raise NotAMemberError(f"{d['voter']} is not a member of council {council.name}")
        p = self._proposal(session, d["proposal"])
        if p.council != council.council_id or d["council"] != council.council_id:
            raise BallotRefusedError("the ballot names another council")
        if p.stage != "voting":
            raise BallotRefusedError(f"the proposal is {p.stage}: no vote is open")
        if d["round"] != p.round:
            raise BallotRefusedError(f"the ballot is for round {d['round']}; round {p.round} "
                                     "is open")
        if d["doc_hash"] != p.doc_hash:
            raise BallotRefusedError("the ballot is for another text of the proposal")
        now = self.clock.now()
        if p.window_until is not None and now > p.window_until:
            raise BallotRefusedError(f"the vote closed at {format_ts(p.window_until)}")
        if session.get(Ballot, (p.proposal_id, p.round, d["voter"])) is not None:
            raise BallotRefusedError(f"{d['voter']} has already voted in round {p.round}")
        self._verify(session, signed)
        self._keep_ballot(session, signed)

    def _keep_ballot(self, session: Session, signed: Signed) -> None:
        d = signed.doc
        if session.get(Ballot, (d["proposal"], d["round"], d["voter"])) is not None:
            raise BallotRefusedError(f"{d['voter']} has already voted in round {d['round']}")
        session.add(self._ballot_row(signed))
        session.flush()

    def _ballot_row(self, signed: Signed) -> Ballot:
        d = signed.doc
        return Ballot(proposal_id=d["proposal"], round=d["round"], voter=d["voter"],
                      choice=d["choice"], document=_json(d), signature=signed.signature,
                      signer_serial=signed.serial, received_at=self.clock.now())

    def _accept_appeal(self, session: Session, council: Council, signed: Signed) -> None:
        d = signed.doc
        if d["appellant"] not in council.members:
            raise NotAMemberError(f"{d['appellant']} is not a member of council {council.name}")
        p = self._proposal(session, d["proposal"])
        if p.stage != "last-call":
            raise StageError(f"the proposal is {p.stage}; appeals are made during last call")
        if p.window_until is not None and self.clock.now() > p.window_until:
            raise StageError(f"the last call ended at {format_ts(p.window_until)}")
        if d["doc_hash"] != p.doc_hash:
            raise StageError("the appeal is about another text of the proposal")
        self._verify(session, signed)
        self._emit(session, council, {"proposal": p.proposal_id, "stage": "appealed",
                                      "appeal": signed.to_dict()})

    def _ballots(self, session: Session, proposal_id: str, round_: int) -> list[Ballot]:
        return list(session.scalars(select(Ballot).where(
            Ballot.proposal_id == proposal_id, Ballot.round == round_).order_by(Ballot.voter)))

    @staticmethod
    def _signed_ballot(b: Ballot) -> Signed:
        return Signed(orjson.loads(b.document), b.voter, b.signer_serial, b.signature)

    def _verify(self, session: Session, signed: Signed) -> None:
        """Raises: InvalidDocumentError when the author's signature does not verify."""
        try:
            party_verifier(session, self.identity.get())(
                signed.author, signed.serial, signed.signature_bytes, signed.data)
        except BadSignatureError as e:
            raise InvalidDocumentError(f"forged or damaged {signed.doc.get('type')} of "
                                       f"{signed.author}: {e.detail}") from e

    def _tally(self, council: Council, p: Proposal, choices: dict[str, str]) -> Tally:
        majority: Majority = council.rules.majorities[ProposalKind(p.kind)]
        return count(council.members, choices, quorum_percent=council.rules.quorum_percent,
                     majority=majority)

    # -- stage changes: made by the chair, applied by everyone ---------------------------

    def _emit(self, session: Session, council: Council, change: dict[str, Any]) -> None:
        """The chair numbers a stage change, applies it here and sends it to every member."""
        _lock_council(session, council.council_id)
        body = {"council": council.council_id, "n": self.last_n(session, council.council_id) + 1,
                "at": format_ts(self.clock.now()), **change}
        body["digest"] = self.apply(session, council, body, check_digest=False)
        local = self.identity.get().node_id
        for member in council.members:
            if member != local:
                self.federation.send(session, to=member, type=STAGE_MESSAGE, body=body,
                                     agreement_id=council.council_id)

    def on_stage(self, ctx: ReceiveContext) -> None:
        """A stage change from the chair: apply it, or hold it until those before it came."""
        body = ctx.message.body
        council = self._council_of(ctx)
        if ctx.message.sender != council.chair:
            raise NotAMemberError("only the council's chair sends its stage changes")
        last = self.last_n(ctx.session, council.council_id)
        n = body["n"]
        if n <= last:
            held = ctx.session.get(CouncilDecision, (council.council_id, n))
            if held is not None and held.body == _json(body):
                return  # a repeat of what was applied
            raise TallyMismatchError(f"stage change {n} of council {council.name} was "
                                     "already applied with different content")
        if n > last + 1:
            waiting = ctx.session.scalar(select(func.count()).select_from(CouncilHeld).where(
                CouncilHeld.council == council.council_id)) or 0
            if waiting >= _MAX_HELD:
                raise StageError("too many stage changes are waiting for earlier ones")
            if ctx.session.get(CouncilHeld, (council.council_id, n)) is None:
                ctx.session.add(CouncilHeld(council=council.council_id, n=n, body=_json(body),
                                            received_at=ctx.now))
            return
        self.apply(ctx.session, council, body)
        # Apply whatever was waiting for this one, in order.
        while True:
            nxt = ctx.session.get(CouncilHeld, (council.council_id, n + 1))
            if nxt is None:
                break
            ctx.session.delete(nxt)
            ctx.session.flush()
            council = self.council(ctx.session, council.council_id)  # rules may have changed
            self.apply(ctx.session, council, orjson.loads(nxt.body))
            n += 1

    def apply(self, session: Session, council: Council, body: dict[str, Any], *,
              check_digest: bool = True) -> str:
        """Apply stage change ``body`` (the next in the council's order); returns the digest.

        Raises:
            StageError, TallyMismatchError, QuorumError, InvalidDocumentError,
            RegistryError
        """
        stage = body["stage"]
        _lock_council(session, council.council_id)
        if body["n"] != self.last_n(session, council.council_id) + 1:
            raise StageError(f"stage change {body['n']} is not the next of council "
                             f"{council.name}")
        self.ensure_pools(session, council)
        now = parse_ts(body["at"])
        p = session.get(Proposal, body["proposal"])
        current = "" if p is None else p.stage
        if current not in _FROM[stage]:
            raise StageError(f"a proposal that is {current or 'unknown here'} cannot become "
                             f"{stage}")
        if stage == "discussion":
            signed = parse_proposal(body["proposal_doc"])
            if signed.doc["id"] != body["proposal"] or signed.doc["council"] != \
                    council.council_id:
                raise InvalidDocumentError("the proposal document does not match the change")
            if signed.author not in council.members:
                raise NotAMemberError(f"{signed.author} is not a member of council "
                                      f"{council.name}")
            self._verify(session, signed)
            if p is None:
                p = self._store_proposal(session, signed, stage="discussion")
            elif p.doc_hash != signed.doc_hash:
                raise InvalidDocumentError("the proposal opened differs from the one submitted")
            p.window_until = now + dt.timedelta(seconds=council.rules.discussion_seconds)
        assert p is not None
        if stage == "voting":
            p.round += 1
            if p.round > 2:
                raise StageError("a proposal is voted on at most twice")
            p.window_until = now + dt.timedelta(seconds=council.rules.vote_seconds)
        elif stage in ("last-call", "rejected") or (stage == "adopted" and "tally" in body):
            self._check_decision(session, council, p, body)
            p.outcome = _json(body["tally"])
            p.window_until = (now + dt.timedelta(seconds=council.rules.last_call_seconds)
                              if stage == "last-call" else None)
        elif stage == "appealed":
            appeal = parse_appeal(body["appeal"])
            if appeal.doc["proposal"] != p.proposal_id or appeal.author not in council.members:
                raise InvalidDocumentError("the appeal is not a member's, about this proposal")
            self._verify(session, appeal)
            p.window_until = None
        elif stage in ("adopted", "withdrawn"):
            p.window_until = None
        if stage == "adopted":
            self._adopt(session, council, p, body)
        p.stage, p.stage_at = stage, now
        session.flush()
        digest = self.registry.digest(session, council.name)
        if check_digest and digest != body.get("digest"):
            raise TallyMismatchError(
                f"after stage change {body['n']} this node's registry of {council.name} has "
                f"digest {digest}, the chair's {body.get('digest')}")
        opening = Opening("DECISION", {"council": council.council_id, "n": body["n"],
                                       "proposal": p.proposal_id, "stage": stage,
                                       "change": canonical.sha256_hex(canonical.dumps(body))},
                          new_salt())
        [index] = self.ledger.record(session, [opening])
        if stage == "adopted":
            for d in self.registry.delegations(session, registry=council.name):
                if d.proposal == p.proposal_id:
                    d.decision_seq, d.log_index = body["n"], index
        session.add(CouncilDecision(council=council.council_id, n=body["n"],
                                    proposal_id=p.proposal_id, stage=stage,
                                    body=_json({**body, "digest": digest}), digest=digest,
                                    log_index=index, applied_at=self.clock.now()))
        session.flush()
        return digest

    def _sort_ballots(self, session: Session, council: Council, ballots: list[Any], *,
                      proposal_id: str, doc_hash: str, round_: int | None,
                      closed_at: dt.datetime | None) -> tuple[dict[str, Signed],
                                                              list[GovernanceError]]:
        """The signed ballots that count (one per voting member), and what is wrong with the rest.

        A ballot counts if its voter is a member who has not voted already in
        this list, it is for this proposal, council, round and text, it was
        cast before ``closed_at`` (when given), and its signature verifies.

        Raises:
            InvalidDocumentError: a ballot is not even shaped like one.
        """
        valid: dict[str, Signed] = {}
        problems: list[GovernanceError] = []
        for raw in ballots:
            b = parse_ballot(raw)
            d = b.doc
            if b.author not in council.members:
                problems.append(NotAMemberError(f"a ballot of {b.author}, who is not a member"))
            elif b.author in valid:
                problems.append(TallyMismatchError(f"{b.author} voted twice"))
            elif (d["proposal"], d["council"], d["round"], d["doc_hash"]) != (
                    proposal_id, council.council_id, round_, doc_hash):
                problems.append(TallyMismatchError(
                    f"the ballot of {b.author} is for another proposal, round or text"))
            elif closed_at is not None and parse_ts(d["cast"]) > closed_at:
                problems.append(TallyMismatchError(
                    f"the ballot of {b.author} was cast after the vote closed"))
            else:
                try:
                    self._verify(session, b)
                except InvalidDocumentError as e:
                    problems.append(e)
                else:
                    valid[b.author] = b
        return valid, problems

    def _check_decision(self, session: Session, council: Council, p: Proposal,
                        body: dict[str, Any]) -> None:
        """Recompute the tally from the signed ballots; refuse a decision that differs."""
        valid, problems = self._sort_ballots(
            session, council, body.get("ballots") or [], proposal_id=p.proposal_id,
            doc_hash=p.doc_hash, round_=p.round, closed_at=p.window_until)
        if problems:
            raise problems[0]
        for b in valid.values():
            if session.get(Ballot, (p.proposal_id, p.round, b.author)) is None:
                session.add(self._ballot_row(b))
        choices = {voter: b.doc["choice"] for voter, b in valid.items()}
        tally = self._tally(council, p, choices)
        if not tally.quorate:
            raise QuorumError(f"{tally.cast} of {tally.members} members voted; the quorum is "
                              f"{tally.quorum}: no decision can be taken")
        if tally.to_dict() != body.get("tally"):
            raise TallyMismatchError("the tally does not follow from the ballots")
        expected = ("last-call" if p.round == 1 else "adopted") if tally.passed else "rejected"
        if body["stage"] != expected:
            raise TallyMismatchError(f"the ballots make the proposal {expected}, not "
                                     f"{body['stage']}")

    def _adopt(self, session: Session, council: Council, p: Proposal,
               body: dict[str, Any]) -> None:
        doc = orjson.loads(p.document)
        if p.kind != ProposalKind.ALLOCATION.value:
            return  # policies and consultations are recorded; rules apply via _council
        effect = allocation_effect(doc["effect"])
        holder = effect["holder"]
        now = parse_ts(body["at"])
        self.registry.ensure_entity(session, handle=holder["handle"], name=holder["name"],
                                    country=holder["country"], registry=council.name, now=now)
        self.registry.delegate(session, registry=council.name, block=parse_block(effect["block"]),
                               status=effect["status"], now=now, holder=holder["handle"],
                               country=holder["country"], name=effect["name"],
                               registered_at=now, require_prefix=True,
                               proposal=p.proposal_id, decision_seq=body["n"])

    # -- auditing ------------------------------------------------------------------------

    def recount(self, session: Session, record: dict[str, Any]) -> dict[str, Any]:
        """Recount a proposal's public record (``GET /governance/proposals/{id}``) here.

        Checks the proposer's signature on the text, every ballot's signature
        (against the cards this node holds), that each voter is a member of
        the council and voted once, for this proposal, round and text, and
        recomputes every tally under the quorum and majority it states.
        Trusts nothing in the record but the signatures it checks.

        Raises:
            CouncilNotFoundError, NotAMemberError, InvalidDocumentError
        """
        proposal = parse_proposal(record.get("document"))
        self._verify(session, proposal)
        council = self.council(session, proposal.doc["council"])
        decisions = []
        for stage in record.get("stages") or []:
            change = stage.get("change") or {}
            if "ballots" not in change:
                continue
            round_ = next((parse_ballot(r).doc["round"] for r in change["ballots"]), None)
            valid, errors = self._sort_ballots(
                session, council, change["ballots"], proposal_id=proposal.doc["id"],
                doc_hash=proposal.doc_hash, round_=round_, closed_at=None)
            problems = [e.detail for e in errors]
            choices = {voter: b.doc["choice"] for voter, b in valid.items()}
            stated = change.get("tally") or {}
            try:
                tally = count(council.members, choices, quorum=int(stated["quorum"]),
                              majority=Majority(stated["majority"]))
                recounted: dict[str, Any] | None = tally.to_dict()
            except (KeyError, ValueError, TypeError):
                recounted = None
                problems.append("the stage change states no usable tally")
            if recounted is not None and recounted != stated:
                problems.append("the stated tally does not follow from the ballots")
            decisions.append({"n": stage.get("n"), "stage": stage.get("stage"),
                              "stated": stated, "recounted": recounted,
                              "ballots_verified": len(choices), "problems": problems,
                              "ok": not problems})
        return {"proposal": proposal.doc["id"], "council": council.council_id,
                "text_signed_by": proposal.author, "decisions": decisions,
                "ok": bool(decisions) and all(d["ok"] for d in decisions)}

    # -- reading -------------------------------------------------------------------------

    def show(self, session: Session, proposal_id: str) -> dict[str, Any]:
        """A proposal with its document, stages (each with its log entry) and ballots."""
        p = self._proposal(session, proposal_id)
        stages = [{"n": d.n, "stage": d.stage, "log_index": d.log_index,
                   "digest": d.digest, "change": orjson.loads(d.body)}
                  for d in session.scalars(select(CouncilDecision).where(
                      CouncilDecision.council == p.council,
                      CouncilDecision.proposal_id == proposal_id).order_by(CouncilDecision.n))]
        ballots = [{"round": b.round, "voter": b.voter, "choice": b.choice,
                    "signed": self._signed_ballot(b).to_dict()}
                   for b in session.scalars(select(Ballot).where(
                       Ballot.proposal_id == proposal_id).order_by(Ballot.round, Ballot.voter))]
        return {**_summary(p),
                "outcome": None if p.outcome is None else orjson.loads(p.outcome),
                "document": self._signed_proposal(p).to_dict(), "doc_hash": p.doc_hash,
                "stages": stages, "ballots": ballots}

    def proposals(self, session: Session, council_id: str | None = None,
                  stage: str | None = None) -> list[dict[str, Any]]:
        q = select(Proposal)
        if council_id is not None:
            q = q.where(Proposal.council == council_id)
        if stage is not None:
            q = q.where(Proposal.stage == stage)
        return [_summary(p) for p in session.scalars(q.order_by(Proposal.created_at.desc()))]

    def status(self, session: Session, council_id: str) -> dict[str, Any]:
        """A council's rules in force, members, last decision and registry digest."""
        council = self.council(session, council_id)
        return {"council": council_id, "name": council.name, "chair": council.chair,
                "members": list(council.members),
                "rules": council.rules.model_dump(mode="json"),
                "decisions": self.last_n(session, council_id),
                "digest": self.registry.digest(session, council.name),
                "delegations": self.registry.count(session, council.name)}

    def drop_held(self, session: Session, council_id: str) -> int:
        """Forget stage changes held back for a council (an operator's repair)."""
        res = session.execute(delete(CouncilHeld).where(CouncilHeld.council == council_id))
        return int(getattr(res, "rowcount", 0) or 0)

