"""Registry pages: delegations and pools, councils and their proposals, and a delegate's ballot.

* ``/ui/registry`` (any signed-in role): delegations, a page at a time,
  newest first or in block order, filtered by kind and registry; the pools;
  and the councils this node is a member of with their proposals and stages.
* ``/ui/registry/proposals/{id}`` (any role): a proposal's signed text, its
  stage history (each stage change with its log entry), the ballots held
  here and the tally that decided it.
* ``POST /ui/registry/proposals/{id}/ballot`` (delegates): cast this node's
  signed ballot (yes, no or abstain) with the same governance call as
  ``POST /api/governance/proposals/{id}/vote``; the service checks the stage,
  membership and that the node has not voted in this round.

Trust assumptions: the actor is authenticated and authorised by
:func:`~comity.web.core.view` / :func:`~comity.web.core.action` (CSRF
checked). A delegate votes *for the node*: the ballot is signed with the
node's key, so the UI's role check is what stops anyone else casting it.
Proposal texts, titles and holder names come from members and imported
files: untrusted text, rendered only through autoescaping.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from comity.db import read_scope, session_scope
from comity.governance.documents import Choice
from comity.http import get_node
from comity.node import Node
from comity.problems import Problem
from comity.registry.models import Delegation, RegistryEntity
from comity.registry.resources import Block, Kind
from comity.web.accounts import Actor, Role
from comity.web.core import Act, action, redirect, render, view
from comity.web.federation_pages import participant_names

__all__ = ["BadChoiceError", "router"]

router = APIRouter(include_in_schema=False)
PAGE = 50


class BadChoiceError(Problem):
    slug = "bad-choice"
    status = 422
    title = "Not a ballot choice"


def _delegation_query(order: str, kind: str, authority: str,
                      cursor: str) -> Select[Delegation, str]:
    q = select(Delegation, RegistryEntity.name).outerjoin(
        RegistryEntity, RegistryEntity.handle == Delegation.holder)
    if kind:
        q = q.where(Delegation.kind == kind)
    if authority:
        q = q.where(Delegation.authority == authority)
    if order == "block":
        if cursor:
            after_kind, _, after_key = cursor.partition(":")
            q = q.where((Delegation.kind > after_kind) | (
                (Delegation.kind == after_kind) & (Delegation.start_key > after_key)))
        return q.order_by(Delegation.kind, Delegation.start_key).limit(PAGE + 1)
    if cursor.isdigit():
        q = q.where(Delegation.seq < int(cursor))
    return q.order_by(Delegation.seq.desc()).limit(PAGE + 1)


def _delegations(session: Session, order: str, kind: str, authority: str,
                 cursor: str) -> tuple[list[dict[str, Any]], str | None]:
    found = session.execute(_delegation_query(order, kind, authority, cursor)).all()
    more = len(found) > PAGE
    rows = []
    for d, holder_name in found[:PAGE]:
        rows.append({"block": str(Block.from_keys(d.kind, d.start_key, d.end_key)),
                     "kind": d.kind, "holder": d.holder, "holder_name": holder_name,
                     "country": d.country, "status": d.status, "authority": d.authority,
                     "name": d.name, "registered_at": d.registered_at,
                     "changed_at": d.changed_at, "proposal": d.proposal})
    nxt = None
    if more:
        last = found[PAGE - 1][0]
        nxt = f"{last.kind}:{last.start_key}" if order == "block" else str(last.seq)
    return rows, nxt


def _councils(session: Session, node: Node, names: dict[str, str]) -> list[dict[str, Any]]:
    gov = node.governance
    out = []
    for c in gov.councils(session):
        proposals = gov.proposals(session, c.council_id)
        for p in proposals:
            p["proposer_name"] = names.get(p["proposer"], p["proposer"])
        out.append({"id": c.council_id, "name": c.name,
                    "chair": names.get(c.chair, c.chair),
                    "members": [names.get(m, m) for m in c.members],
                    "quorum": c.rules.quorum_percent,
                    "pools": list(c.rules.pools), "decisions": gov.last_n(session, c.council_id),
                    "delegations": node.registry.count(session, c.name),
                    "proposals": proposals})
    return out


@router.get("/registry")
def registry_page(request: Request, actor: Annotated[Actor, Depends(view())]) -> Response:
    """Delegations (paged), pools, and the councils with their proposals."""
    node = get_node(request)
    q = request.query_params
    order = "block" if q.get("order") == "block" else "newest"
    kind = q.get("kind", "") if q.get("kind", "") in {k.value for k in Kind} else ""
    authority = q.get("authority", "")[:64]
    cursor = q.get("cursor", "")[:80]
    with read_scope(node.sessions) as session:
        names = participant_names(session, node)
        rows, nxt = _delegations(session, order, kind, authority, cursor)
        pools = [{"block": str(Block.from_keys(p.kind, p.start_key, p.end_key)),
                  "kind": p.kind, "name": p.name, "authority": p.authority,
                  "created_at": p.created_at} for p in node.registry.pools(session)]
        total = node.registry.count(session, authority or None)
        councils = _councils(session, node, names)
    return render(request, "registry.html", actor=actor, rows=rows, next=nxt, pools=pools,
                  councils=councils, total=total, kinds=[k.value for k in Kind],
                  filters={"order": order, "kind": kind, "authority": authority})


@router.get("/registry/proposals/{proposal_id}")
def proposal_page(request: Request, proposal_id: str,
                  actor: Annotated[Actor, Depends(view())]) -> Response:
    """A proposal: its signed text, stage history, ballots and tally."""
    node = get_node(request)
    local = node.local.node_id
    with read_scope(node.sessions) as session:
        names = participant_names(session, node)
        shown = node.governance.show(session, proposal_id[:64])
    doc = shown["document"]["doc"]
    stages = [{"n": s["n"], "stage": s["stage"], "log_index": s["log_index"],
               "at": s["change"].get("at")} for s in shown["stages"]]
    ballots = [{"round": b["round"], "voter": names.get(b["voter"], b["voter"]),
                "choice": b["choice"], "cast": b["signed"]["doc"].get("cast")}
               for b in shown["ballots"]]
    voted = any(b["voter"] == local and b["round"] == shown["round"] for b in shown["ballots"])
    return render(request, "proposal.html", actor=actor, p=shown, doc=doc, stages=stages,
                  ballots=ballots, proposer=names.get(shown["proposer"], shown["proposer"]),
                  can_vote=shown["stage"] == "voting" and not voted,
                  voted=voted, choices=[c.value for c in Choice],
                  done=request.query_params.get("done", "")[:16])


@router.post("/registry/proposals/{proposal_id}/ballot")
def ballot(proposal_id: str,
           act: Annotated[Act, Depends(action("cast-ballot", Role.DELEGATE))]) -> Response:
    """Sign this node's ballot and send it to the council's chair."""
    node = act.node
    try:
        choice = Choice(act.text("choice", limit=16))
    except ValueError:
        raise BadChoiceError("choose yes, no or abstain") from None
    with session_scope(node.sessions) as session:
        node.governance.cast(session, proposal_id[:64], choice)
        act.record("cast-ballot", proposal_id, detail=choice.value, session=session)
    return redirect(f"/ui/registry/proposals/{proposal_id}?done=voted")
