"""Agreement routes (``/api/agreements``): draft, propose, sign, amend, suspend,
resume and withdraw, each step sent to the other parties through the outbox."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from comity.agreements import services
from comity.agreements.services import AgreementView
from comity.db import read_scope, session_scope
from comity.http import get_node, json_response, require_token
from comity.node import Node

__all__ = ["router"]

router = APIRouter(prefix="/api/agreements", tags=["agreements"],
                   dependencies=[Depends(require_token)])


class DraftRequest(BaseModel):
    title: Annotated[str, Field(min_length=1, max_length=500)]
    parties: Annotated[list[str], Field(min_length=1)]
    scope: dict[str, Any] = Field(default_factory=dict)
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None


class AmendRequest(BaseModel):
    title: str | None = None
    scope: dict[str, Any] | None = None
    valid_until: dt.datetime | None = None
    parties: list[str] | None = None


class ActRequest(BaseModel):
    reason: Annotated[str, Field(max_length=2000)] = ""


def _aware(when: dt.datetime | None) -> dt.datetime | None:
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=dt.UTC)
    return when


def _view(node: Node, view: AgreementView) -> Response:
    return json_response(view.to_dict(node.clock.now()))


@router.get("", summary="Agreements held by this node")
def list_all(request: Request) -> Response:
    node = get_node(request)
    now = node.clock.now()
    with read_scope(node.sessions) as session:
        return json_response([v.to_dict(now) for v in services.list_agreements(session)])


@router.post("", status_code=201, summary="Draft a new agreement (version 1)")
def draft(request: Request, req: DraftRequest) -> Response:
    node = get_node(request)
    with session_scope(node.sessions) as session:
        view = services.create_draft(
            session, node.local, title=req.title, parties=req.parties, scope=req.scope,
            valid_from=_aware(req.valid_from) or node.clock.now(),
            valid_until=_aware(req.valid_until))
        return json_response(view.to_dict(node.clock.now()), 201)


@router.get("/{agreement_id}", summary="One agreement with all its versions")
def show(request: Request, agreement_id: str) -> Response:
    node = get_node(request)
    with read_scope(node.sessions) as session:
        return _view(node, services.get_agreement(session, agreement_id))


@router.post("/{agreement_id}/propose", summary="Sign the draft and send it to every party")
def propose(request: Request, agreement_id: str) -> Response:
    node = get_node(request)
    with session_scope(node.sessions) as session:
        return _view(node, services.propose(session, node.local, node.federation, agreement_id,
                                            now=node.clock.now()))


@router.post("/{agreement_id}/sign", summary="Sign the proposed version")
def sign(request: Request, agreement_id: str) -> Response:
    node = get_node(request)
    with session_scope(node.sessions) as session:
        return _view(node, services.sign(session, node.local, node.federation, agreement_id,
                                         now=node.clock.now()))


@router.post("/{agreement_id}/amend", status_code=201, summary="Draft the next version")
def amend(request: Request, agreement_id: str, req: AmendRequest) -> Response:
    node = get_node(request)
    with session_scope(node.sessions) as session:
        view = services.amend(session, node.local, agreement_id, now=node.clock.now(),
                              title=req.title, scope=req.scope,
                              valid_until=_aware(req.valid_until), parties=req.parties)
        return json_response(view.to_dict(node.clock.now()), 201)


def _act(request: Request, agreement_id: str, req: ActRequest, action: Any) -> Response:
    node = get_node(request)
    with session_scope(node.sessions) as session:
        return _view(node, action(session, node.local, node.federation, agreement_id,
                                  reason=req.reason, now=node.clock.now()))


@router.post("/{agreement_id}/suspend", summary="Suspend the agreement")
def suspend(request: Request, agreement_id: str, req: ActRequest) -> Response:
    return _act(request, agreement_id, req, services.suspend)


@router.post("/{agreement_id}/resume", summary="Lift this node's suspension")
def resume(request: Request, agreement_id: str, req: ActRequest) -> Response:
    return _act(request, agreement_id, req, services.resume)


@router.post("/{agreement_id}/withdraw", summary="Withdraw this node from the agreement")
def withdraw(request: Request, agreement_id: str, req: ActRequest) -> Response:
    return _act(request, agreement_id, req, services.withdraw)
