"""Federation pages: agreements and the acts of signing and withdrawing, peers, and the log.

* ``/ui/agreements`` and ``/ui/agreements/{id}`` (any signed-in role): every
  agreement this node holds, its versions, document, signatures and the
  parties' acts. A supervisor signs the proposed version or withdraws this
  node, through the same service calls as ``/api/agreements``: the step is
  signed with the node's key and sent to every party through the outbox in
  the same transaction.
* ``/ui/peers`` (any role): the pinned peers. An administrator imports a
  peer's card chain pasted as JSON, verified exactly as ``POST /api/peers``
  verifies it; text that is not JSON is refused (422) and nothing is stored.
* ``/ui/log`` (any role, read-only): this node's log head and checkpoint,
  partners' cosignatures, the partners' logs this node witnesses, alarms,
  and the receipts peers signed for messages delivered to them.

Trust assumptions: the actor is authenticated and authorised by
:func:`~comity.web.core.view` / :func:`~comity.web.core.action` (CSRF
checked for every POST). Names, titles and reasons shown come from peers'
signed documents and are untrusted text: they are only ever rendered through
Jinja's autoescaping. A pasted card chain is untrusted until
:func:`~comity.identity.services.import_cards` has verified every signature.

Example::

    GET  /ui/agreements/7d0c...                      (any role)
    POST /ui/agreements/7d0c.../sign   csrf=...     (supervisor)
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from comity.agreements import services as agreements
from comity.agreements.schemas import AgreementDocument, AgreementStatus
from comity.agreements.services import AgreementView
from comity.db import read_scope, session_scope
from comity.federation.models import HeldReceipt, OutboxMessage
from comity.http import get_node
from comity.identity.models import Peer
from comity.identity.services import import_cards, list_peers
from comity.ledger.witness import list_alarms, log_status
from comity.node import Node
from comity.problems import Problem
from comity.web.accounts import Actor, Role
from comity.web.core import Act, action, redirect, render, view

__all__ = ["PastedTextError", "participant_names", "router"]

router = APIRouter(include_in_schema=False)
RECEIPTS = 50
ALARMS = 20
MAX_PASTE = 64 << 10


class PastedTextError(Problem):
    """What was pasted into a form is not the JSON the form asks for."""

    slug = "not-json"
    status = 422
    title = "Not valid JSON"


def participant_names(session: Session, node: Node) -> dict[str, str]:
    """Node id → participant name, this node included."""
    names = {p.node_id: p.name for p in list_peers(session)}
    names[node.local.node_id] = node.local.card.name
    return names


def _scope_summary(doc: AgreementDocument) -> list[tuple[str, list[str]]]:
    """The scope as (part, identifiers) pairs, empty parts left out.

    Collections are given as ``name`` then ``TLP ceiling``, in pairs.
    """
    scope = doc.scope
    parts = [("request_types", list(scope.request_types)),
             ("offence_categories", list(scope.offence_categories)),
             ("data_categories", list(scope.data_categories)),
             ("collections", [x for c in scope.collections
                              for x in (c.name, c.tlp_ceiling.value)]),
             ("languages", list(scope.languages)),
             ("instruments", list(scope.instruments)),
             ("council", [scope.council.name] if scope.council else [])]
    return [(k, v) for k, v in parts if v]


def _summary(v: AgreementView, node: Node, names: dict[str, str]) -> dict[str, Any]:
    now = node.clock.now()
    doc = v.effective or v.documents[v.latest.version]
    signed = {s.party for s in v.signatures.get(v.latest.version, [])}
    local = node.local.node_id
    return {"id": v.agreement_id, "title": doc.title, "status": v.status(now).value,
            "effective": None if v.effective is None else v.effective.version,
            "latest": v.latest.version, "latest_state": v.latest.state,
            "parties": [{"id": p, "name": names.get(p, p), "withdrawn": p in v.withdrawn}
                        for p in doc.parties],
            "awaits_us": (v.latest.state == AgreementStatus.PROPOSED
                          and local in v.documents[v.latest.version].parties
                          and local not in signed)}


@router.get("/agreements")
def agreements_page(request: Request, actor: Annotated[Actor, Depends(view())]) -> Response:
    """Every agreement held here, newest first, with status, parties and effective version."""
    node = get_node(request)
    with read_scope(node.sessions) as session:
        names = participant_names(session, node)
        rows = [_summary(v, node, names) for v in agreements.list_agreements(session)]
    return render(request, "agreements.html", actor=actor, rows=rows)


def _detail(v: AgreementView, node: Node, names: dict[str, str]) -> dict[str, Any]:
    now = node.clock.now()
    versions = []
    for row in reversed(v.versions):
        doc = v.documents[row.version]
        sigs = sorted(v.signatures.get(row.version, []), key=lambda s: s.signed_at)
        versions.append({
            "version": row.version, "status": v.version_status(row.version, now).value,
            "hash": row.doc_hash, "title": doc.title, "proposed_by": names.get(
                doc.proposed_by, doc.proposed_by),
            "parties": [names.get(p, p) for p in doc.parties],
            "valid_from": doc.valid_from, "valid_until": doc.valid_until,
            "scope": _scope_summary(doc), "created_at": row.created_at,
            "signatures": [{"party": names.get(s.party, s.party), "serial": s.signer_serial,
                            "at": s.signed_at} for s in sigs],
            "unsigned": [names.get(p, p) for p in doc.parties
                         if p not in {s.party for s in sigs}]})
    return {**_summary(v, node, names), "versions": versions,
            "withdrawn": [{"party": names.get(p, p), "at": w.withdrawn_at, "reason": w.reason}
                          for p, w in sorted(v.withdrawn.items())],
            "suspended": [{"party": names.get(p, p), "at": s.suspended_at, "reason": s.reason}
                          for p, s in sorted(v.suspended.items())],
            "can_withdraw": (v.effective is not None
                             and node.local.node_id in v.active_parties)}


@router.get("/agreements/{agreement_id}")
def agreement_page(request: Request, agreement_id: str,
                   actor: Annotated[Actor, Depends(view())]) -> Response:
    """One agreement: its versions, each version's document, and who signed it when."""
    node = get_node(request)
    with read_scope(node.sessions) as session:
        names = participant_names(session, node)
        shown = _detail(agreements.get_agreement(session, agreement_id[:64]), node, names)
    return render(request, "agreement.html", actor=actor, a=shown,
                  done=request.query_params.get("done", "")[:16])


@router.post("/agreements/{agreement_id}/sign")
def sign(agreement_id: str,
         act: Annotated[Act, Depends(action("sign-agreement", Role.SUPERVISOR))]) -> Response:
    """Sign the proposed version with the node's key and send the signature to every party."""
    node = act.node
    with session_scope(node.sessions) as session:
        shown = agreements.sign(session, node.local, node.federation, agreement_id[:64],
                                now=node.clock.now())
        version = shown.latest.version
        act.record("sign-agreement", agreement_id, detail=f"version {version}", session=session)
    return redirect(f"/ui/agreements/{agreement_id}?done=signed")


@router.post("/agreements/{agreement_id}/withdraw")
def withdraw(agreement_id: str,
             act: Annotated[Act, Depends(action("withdraw-agreement", Role.SUPERVISOR))]
             ) -> Response:
    """Withdraw this node from the agreement, with reasons, and tell the other parties."""
    node = act.node
    reason = act.text("reason", limit=2000)
    with session_scope(node.sessions) as session:
        agreements.withdraw(session, node.local, node.federation, agreement_id[:64],
                            reason=reason, now=node.clock.now())
        act.record("withdraw-agreement", agreement_id, detail=reason[:200], session=session)
    return redirect(f"/ui/agreements/{agreement_id}?done=withdrawn")


def _fingerprint(key: bytes) -> str:
    """The first 64 bits of a signing key in hex, in groups of four (enough to compare)."""
    text = key.hex()[:16]
    return " ".join(text[i:i + 4] for i in range(0, len(text), 4))


def _peer_row(p: Peer) -> dict[str, Any]:
    return {"id": p.node_id, "name": p.name, "kind": p.kind, "jurisdiction": p.jurisdiction,
            "url": p.url, "fingerprint": _fingerprint(p.signing_key),
            "key": p.signing_key.hex(), "serial": p.serial, "added_at": p.added_at,
            "updated_at": p.updated_at}


@router.get("/peers")
def peers_page(request: Request, actor: Annotated[Actor, Depends(view())]) -> Response:
    """The peers this node trusts, each pinned to the newest card of its chain."""
    node = get_node(request)
    with read_scope(node.sessions) as session:
        rows = [_peer_row(p) for p in list_peers(session)]
    imported = request.query_params.get("imported", "")[:32]
    return render(request, "peers.html", actor=actor, rows=rows, imported=imported,
                  accepted=request.query_params.get("accepted", "")[:4])


@router.post("/peers")
def import_peer(act: Annotated[Act, Depends(action("import-peer", Role.ADMINISTRATOR))]
                ) -> Response:
    """Verify a pasted card or card chain and pin the peer (as ``POST /api/peers``)."""
    node = act.node
    raw = act.form.get("cards")
    text = raw if isinstance(raw, str) else ""
    if not text.strip():
        raise PastedTextError("paste the peer's card chain (`comity node card --chain`)")
    if len(text) > MAX_PASTE:
        raise PastedTextError(f"the pasted text is longer than {MAX_PASTE} characters")
    try:
        unverified = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise PastedTextError(f"the pasted text is not JSON: {e}") from None
    with session_scope(node.sessions) as session:
        peer, added = import_cards(session, unverified, local_node_id=node.local.node_id,
                                   clock=node.clock)
        peer_id = peer.node_id
        act.record("import-peer", peer_id, detail=f"{added} card(s) accepted", session=session)
    return redirect(f"/ui/peers?imported={peer_id}&accepted={added}")


def _receipts(session: Session, names: dict[str, str]) -> list[dict[str, Any]]:
    """The newest delivered messages with the receipt the receiver signed for each."""
    q = (select(OutboxMessage, HeldReceipt)
         .join(HeldReceipt, HeldReceipt.receipt_id == OutboxMessage.receipt_id)
         .where(OutboxMessage.status == "delivered")
         .order_by(OutboxMessage.seq.desc()).limit(RECEIPTS))
    return [{"message": m.message_id, "type": m.type, "peer": names.get(m.peer_id, m.peer_id),
             "delivered_at": m.delivered_at, "receipt": r.receipt_id,
             "receipt_hash": r.receipt_hash, "log_index": m.log_index,
             "receiver_log_index": m.receiver_log_index}
            for m, r in session.execute(q)]


@router.get("/log")
def log_page(request: Request, actor: Annotated[Actor, Depends(view())]) -> Response:
    """This node's log and its witnesses, the logs it witnesses, alarms and receipts held."""
    node = get_node(request)
    with read_scope(node.sessions) as session:
        names = participant_names(session, node)
        status = log_status(session, node.ledger)
        alarms = list_alarms(session)[:ALARMS]
        receipts = _receipts(session, names)
    cosigned = sorted(({"peer": names.get(p, p), "size": size}
                       for p, size in status["cosigned_by"].items()),
                      key=lambda c: str(c["peer"]))
    witnessing = sorted(({"peer": names.get(p, p), **w}
                         for p, w in status["witnessing"].items()),
                        key=lambda w: str(w["peer"]))
    for a in alarms:
        a["peer_name"] = names.get(a["peer"], a["peer"]) if a["peer"] else None
    return render(request, "log.html", actor=actor, head=status, cosigned=cosigned,
                  witnessing=witnessing, alarms=alarms, receipts=receipts)
