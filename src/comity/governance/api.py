"""Council routes: the operator's (``/api/governance``, token), the public record (``/governance``).

The public routes show a proposal once it is settled (adopted, rejected or
withdrawn) — its signed text, every stage change with its log entry, and
every signed ballot — and the proof that the node's log holds the decision:
what RDAP links every council delegation to. Proposals still in progress
are the council's business and are not shown there.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from comity.agreements.schemas import ProposalKind
from comity.db import read_scope, session_scope
from comity.governance.documents import Choice
from comity.governance.errors import ProposalNotFoundError, StageError
from comity.http import get_node, json_response, require_token

__all__ = ["api_router", "public_router"]

api_router = APIRouter(prefix="/api/governance", tags=["governance"],
                       dependencies=[Depends(require_token)])
public_router = APIRouter(prefix="/governance", tags=["governance"])

SETTLED = ("adopted", "rejected", "withdrawn")


class ProposalBody(BaseModel):
    kind: ProposalKind
    title: Annotated[str, Field(min_length=1, max_length=500)]
    text: Annotated[str, Field(max_length=100_000)] = ""
    effect: dict[str, Any] = Field(
        default_factory=dict,
        description="allocation: {block, holder: {handle, name, country}, status, name}; "
                    "rules: the rules it changes; otherwise {}")
    draft: bool = Field(False, description="Keep it here, unseen, until submitted.")


class VoteBody(BaseModel):
    choice: Choice


class AppealBody(BaseModel):
    grounds: Annotated[str, Field(min_length=1, max_length=10_000)]


@api_router.get("/councils", summary="Councils this node is a member of")
def councils(request: Request) -> Response:
    gov = get_node(request).governance
    with read_scope(get_node(request).sessions) as session:
        return json_response([gov.status(session, c.council_id)
                              for c in gov.councils(session)])


@api_router.get("/councils/{council_id}", summary="A council: rules in force, members, digest")
def council(request: Request, council_id: str) -> Response:
    node = get_node(request)
    with read_scope(node.sessions) as session:
        return json_response(node.governance.status(session, council_id))


@api_router.post("/councils/{council_id}/proposals", status_code=201,
                 summary="Make a proposal (the chair opens it for discussion)")
def propose(request: Request, council_id: str, body: ProposalBody) -> Response:
    node = get_node(request)
    with session_scope(node.sessions) as session:
        shown = node.governance.propose(session, council_id, kind=body.kind, title=body.title,
                                        text=body.text, effect=body.effect, draft=body.draft)
    return json_response(shown, 201)


@api_router.get("/proposals", summary="Proposals, newest first")
def proposals(request: Request,
              council: Annotated[str | None, Query(description="Only this council's.")] = None,
              stage: Annotated[str | None, Query(description="Only at this stage.")] = None,
              ) -> Response:
    node = get_node(request)
    with read_scope(node.sessions) as session:
        return json_response(node.governance.proposals(session, council, stage))


@api_router.get("/proposals/{proposal_id}", summary="A proposal, its stages and ballots")
def show(request: Request, proposal_id: str) -> Response:
    node = get_node(request)
    with read_scope(node.sessions) as session:
        return json_response(node.governance.show(session, proposal_id))


@api_router.post("/proposals/{proposal_id}/vote", summary="Cast this node's signed ballot")
def vote(request: Request, proposal_id: str, body: VoteBody) -> Response:
    node = get_node(request)
    with session_scope(node.sessions) as session:
        return json_response(node.governance.cast(session, proposal_id, body.choice))


@api_router.post("/proposals/{proposal_id}/appeal", summary="Appeal during the last call")
def appeal(request: Request, proposal_id: str, body: AppealBody) -> Response:
    node = get_node(request)
    with session_scope(node.sessions) as session:
        return json_response(node.governance.appeal(session, proposal_id, body.grounds))


def _proposal_act(name: str, summary: str) -> None:
    @api_router.post(f"/proposals/{{proposal_id}}/{name}", summary=summary,
                     name=f"governance_{name.replace('-', '_')}")
    def act(request: Request, proposal_id: str) -> Response:
        node = get_node(request)
        gov = node.governance
        method = {"open-vote": gov.open_vote, "close-vote": gov.close_vote,
                  "adopt": gov.adopt, "withdraw": gov.withdraw, "submit": gov.submit}[name]
        with session_scope(node.sessions) as session:
            return json_response(method(session, proposal_id))


_proposal_act("open-vote", "Chair: open the vote after the discussion window")
_proposal_act("close-vote", "Chair: count the signed ballots and decide")
_proposal_act("adopt", "Chair: adopt after a last call without appeal")
_proposal_act("withdraw", "Proposer: withdraw the proposal")
_proposal_act("submit", "Proposer: send a draft to the chair")


def _settled(request: Request, proposal_id: str) -> dict[str, Any]:
    node = get_node(request)
    with read_scope(node.sessions) as session:
        shown = node.governance.show(session, proposal_id)
    if shown["stage"] not in SETTLED:
        raise ProposalNotFoundError(f"no settled proposal {proposal_id} here")
    return shown


@public_router.get("/proposals/{proposal_id}", summary="A settled proposal, public record")
def public_show(request: Request, proposal_id: str) -> Response:
    return json_response(_settled(request, proposal_id))


@public_router.get("/proposals/{proposal_id}/proof",
                   summary="Proof that this node's log holds the proposal's final decision")
def public_proof(request: Request, proposal_id: str) -> Response:
    from comity.ledger.audit import AuditError, prove_entry

    shown = _settled(request, proposal_id)
    final = shown["stages"][-1]
    try:
        data = prove_entry(get_node(request), final["log_index"])
    except AuditError as e:
        raise StageError(str(e)) from e
    return Response(data, media_type="text/plain; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{proposal_id}.tlog-proof"'})
