"""Request pages: the inbox and outbox, drafting, a request's timeline, and every act on it.

The acts offered on a request's page are those its state allows
(:func:`comity.requests.lifecycle.allowed_events`), each a form built from
the act's own required and optional elements, so the UI can never offer
what the service would refuse. The service checks everything again.

Four eyes: the officer who drafts or submits a request cannot approve it;
the service compares the signed-in account names, so the rule holds by
identity, not by a name typed into a form.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from starlette.datastructures import UploadFile
from starlette.responses import Response

from comity.agreements.schemas import AgreementStatus
from comity.agreements.services import list_agreements
from comity.clock import format_ts
from comity.db import read_scope, session_scope
from comity.http import get_node
from comity.identity.models import Peer
from comity.identity.services import list_peers
from comity.requests import lifecycle
from comity.requests.catalog import OUTCOMES
from comity.requests.errors import RequestValidationError
from comity.requests.services import EventInput, RequestFilter
from comity.web.accounts import Actor, Role
from comity.web.core import Act, action, partial, redirect, render, view

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
READERS = (Role.OFFICER, Role.SUPERVISOR)
PAGE = 50


def _filter(request: Request) -> tuple[RequestFilter, dict[str, str]]:
    q = request.query_params
    raw = {k: q.get(k, "")[:64] for k in ("direction", "state", "type", "peer", "overdue")}
    direction = raw["direction"] if raw["direction"] in ("in", "out") else None
    states = tuple(s for s in raw["state"].split(",") if s in {x.value for x in
                                                              lifecycle.State})
    f = RequestFilter(direction=direction, states=states, type=raw["type"] or None,
                      peer=raw["peer"] or None, overdue=raw["overdue"] == "1")
    return f, raw


@router.get("/requests")
def inbox(request: Request, actor: Annotated[Actor, Depends(view(*READERS))]) -> Response:
    """Incoming and outgoing requests, newest first, with filters and a cursor."""
    node = get_node(request)
    f, raw = _filter(request)
    cursor = request.query_params.get("cursor") or None
    with read_scope(node.sessions) as session:
        page = node.requests.listing(session, f, cursor=cursor, limit=PAGE)
        peers = {p.node_id: p.name for p in list_peers(session)}
    template = "_requests_table.html" if partial(request) else "requests.html"
    return render(request, template, actor=actor, items=page.items, next=page.next,
                  filters=raw, peers=peers, states=[s.value for s in lifecycle.State],
                  types=sorted(node.requests.catalog.types))


@router.get("/requests/new")
def new_request(request: Request, actor: Annotated[Actor, Depends(view(Role.OFFICER))],
                type: str | None = None) -> Response:
    """Draft a request: first its type, then its elements (the catalog's, with their articles)."""
    node = get_node(request)
    catalog = node.requests.catalog
    spec = catalog.types.get(type or "")
    now = node.clock.now()
    with read_scope(node.sessions) as session:
        peers = {p.node_id: p for p in list_peers(session)}
        agreements = [a for a in list_agreements(session)
                      if a.status(now) is AgreementStatus.IN_FORCE]
    choices = []
    for a in agreements:
        doc = a.effective
        if doc is None:
            continue
        for party in a.active_parties:
            if party in peers:
                choices.append({"value": f"{party}|{a.agreement_id}",
                                "label": f"{peers[party].name} ({peers[party].jurisdiction}) "
                                         f"— {doc.title}"})
    fields: list[dict[str, Any]] = []
    if spec is not None:
        required = {name for arts in [spec.required] for name in arts}
        for name in [*spec.required, *spec.optional]:
            f = catalog.fields[name]
            articles = spec.required.get(name, {})
            fields.append({"name": name, "title": f.title, "kind": f.kind,
                           "required": name in required,
                           "articles": ", ".join(catalog.cite(i, a) for i, a in
                                                 articles.items())})
    return render(request, "request_new.html", actor=actor, spec=spec, fields=fields,
                  types=sorted(catalog.types.values(), key=lambda t: t.title),
                  offences=catalog.offences, categories=catalog.data_categories,
                  choices=choices)


@router.post("/requests")
def create_request(act: Annotated[Act, Depends(action("draft-request", Role.OFFICER))]
                   ) -> Response:
    """Store a draft (and submit it for approval when asked to)."""
    node = act.node
    catalog = node.requests.catalog
    spec = catalog.type(act.text("type", limit=64))
    target = act.text("target", limit=80)
    to, _, agreement = target.partition("|")
    if not to or not agreement:
        raise RequestValidationError([{"field": "target", "message":
                                       "choose the requested party and agreement"}])
    doc: dict[str, Any] = {
        "type": spec.slug, "reference": act.text("reference", limit=100),
        "language": act.text("language", limit=8) or act.actor.language,
        "offence": act.text("offence", limit=64),
        "data_categories": [str(c) for c in act.form.getlist("data_categories")],
        "flags": {"urgent": act.text("urgent") == "1"},
        "fields": {name: act.text(f"field_{name}") for name in [*spec.required,
                                                                  *spec.optional]
                   if act.text(f"field_{name}")},
    }
    submit = act.text("submit") == "1"
    with session_scope(node.sessions) as session:
        row = node.requests.create(session, doc, to=to, agreement_id=agreement,
                                   by=act.actor.username)
        rid = row.request_id
        if submit:
            node.requests.submit(session, rid, by=act.actor.username)
        act.record("draft-request", rid, detail=f"{spec.slug} {doc['reference']}"
                   + (" submitted" if submit else ""), session=session)
    return redirect(f"/ui/requests/{rid}")


@router.get("/requests/{request_id}")
def request_page(request: Request, request_id: str,
                 actor: Annotated[Actor, Depends(view(*READERS))]) -> Response:
    """A request: its document, timeline of signed events, deadlines, evidence, and acts."""
    node = get_node(request)
    with read_scope(node.sessions) as session:
        shown = node.requests.show(session, request_id)
        peer = session.get(Peer, shown["peer"])
    catalog = node.requests.catalog
    spec = catalog.type(shown["type"])
    acts = []
    for name in shown["allowed_events"]:
        event = lifecycle.EVENTS[name]
        if event.preservation_only and not spec.preservation:
            continue
        if (event.target is not None and event.target.value in OUTCOMES
                and event.target.value not in spec.outcomes):
            continue  # an outcome this type of request cannot have
        acts.append({"name": name, "title": event.title,
                     "elements": [{"name": e, "required": e in event.required,
                                   "kind": _kind(e)}
                                  for e in [*event.required, *event.optional]
                                  + (["grounds"] if name == "refuse" and "grounds" not in
                                     event.required else [])]})
    part = request.query_params.get("part") if partial(request) else None
    template = {"state": "_request_state.html",
                "record": "_request_record.html"}.get(part or "", "request.html")
    return render(request, template, actor=actor, r=shown, peer=peer, acts=acts,
                  grounds={g: catalog.refusal_grounds[g].title for g in spec.refusal_grounds
                           if g in catalog.refusal_grounds},
                  fields=catalog.fields, since=request.query_params.get("since", "")[:40])


def _kind(element: str) -> str:
    if element in lifecycle.TIME_ELEMENTS:
        return "time"
    if element == "grounds":
        return "grounds"
    if element == "evidence":
        return "file"
    return "text" if element in lifecycle.TEXT_ELEMENTS else "string"


def _local(act: Act, request_id: str, audit_name: str, *steps: str, detail: str = "") -> Response:
    """The requesting node's own steps (``Requests.local_step``), in one transaction."""
    with session_scope(act.node.sessions) as session:
        for step in steps:
            act.node.requests.local_step(session, request_id, step, by=act.actor.username,
                                         reasons=act.text("reasons") or None)
        act.record(audit_name, request_id, detail=detail, session=session)
    return redirect(f"/ui/requests/{request_id}")


@router.post("/requests/{request_id}/submit")
def submit(request_id: str,
           act: Annotated[Act, Depends(action("submit-request", Role.OFFICER))]) -> Response:
    return _local(act, request_id, "submit-request", "submit")


@router.post("/requests/{request_id}/approve")
def approve(request_id: str,
            act: Annotated[Act, Depends(action("approve-request", Role.SUPERVISOR))]
            ) -> Response:
    """Approve and send in one transaction: approval is the supervisor's go."""
    return _local(act, request_id, "approve-request", "approve", "send",
                  detail="approved and sent")


@router.post("/requests/{request_id}/return")
def return_to_draft(request_id: str,
                    act: Annotated[Act, Depends(action("return-request", Role.SUPERVISOR))]
                    ) -> Response:
    return _local(act, request_id, "return-request", "return")


@router.post("/requests/{request_id}/send")
def send(request_id: str,
         act: Annotated[Act, Depends(action("send-request", Role.SUPERVISOR))]) -> Response:
    """Send an approved request that was not sent on approval (an older approval)."""
    return _local(act, request_id, "send-request", "send")


def _element(act: Act, name: str) -> Any:
    kind = _kind(name)
    if kind == "time":
        raw = act.text(name, limit=40)
        if not raw:
            return ""
        try:
            local = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise RequestValidationError([{"field": name, "message":
                                           f"{name!r} must be a date and time"}]) from None
        if local.tzinfo is None:
            from zoneinfo import ZoneInfo

            local = local.replace(tzinfo=ZoneInfo(act.actor.timezone))
        return format_ts(local.astimezone(dt.UTC))
    if kind == "grounds":
        return [str(g) for g in act.form.getlist("grounds")]
    return act.text(name)


@router.post("/requests/{request_id}/events/{event}")
def perform(request_id: str, event: str,
            act: Annotated[Act, Depends(action("request-event", Role.OFFICER))]) -> Response:
    """One act of the request's lifecycle; ``execute`` may carry an evidence file."""
    node = act.node
    spec = lifecycle.EVENTS.get(event)
    if spec is None:
        raise RequestValidationError([{"field": "event", "message": f"unknown act {event!r}"}])
    elements = [*spec.required, *spec.optional] + (["grounds"] if event == "refuse" else [])
    data: dict[str, Any] = {}
    for name in elements:
        if name == "evidence":
            continue
        value = _element(act, name)
        if value not in ("", []):
            data[name] = value
    upload = act.form.get("evidence")
    if "evidence" in elements and isinstance(upload, UploadFile) and upload.filename:
        data["evidence"] = [_package(act, request_id, upload)]
    with session_scope(node.sessions) as session:
        node.requests.act(session, request_id, EventInput(event, data),
                          by=act.actor.username)
        act.record(f"request-{event}", request_id,
                   detail=", ".join(sorted(data)) if data else "", session=session)
    return redirect(f"/ui/requests/{request_id}")


def _package(act: Act, request_id: str, upload: UploadFile) -> dict[str, Any]:
    """Seal an uploaded file as an evidence package for the request's peer."""
    node = act.node
    with node.evidence.staged(Path(upload.filename or "evidence").name) as path:
        with open(path, "wb") as f:
            shutil.copyfileobj(upload.file, f, node.settings.evidence_chunk_bytes)
        signed = node.evidence.prepare(node.sessions, request_id, [path])
    return signed.to_dict()


@router.post("/evidence/{package_id}/verify")
def verify(package_id: str,
           act: Annotated[Act, Depends(action("verify-evidence", Role.OFFICER))]) -> Response:
    """Decrypt and check every byte of a received package; the result joins its custody."""
    node = act.node
    shown = node.evidence.verify(package_id, by=act.actor.username)
    act.record("verify-evidence", package_id, detail=str(shown.get("status")))
    with read_scope(node.sessions) as session:
        from comity.evidence.models import EvidencePackage

        rid = session.scalar(select(EvidencePackage.request_id).where(
            EvidencePackage.package_id == package_id))
    return redirect(f"/ui/requests/{rid}" if rid else "/ui/requests")
