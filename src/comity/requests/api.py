"""Request routes (``/api/requests``): the catalog, drafting, approval, sending, every act,
listing with filters and keyset paging, deadlines due, and a request's timeline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from comity.db import read_scope, session_scope
from comity.http import get_node, json_response, require_token
from comity.requests.deadlines import Period
from comity.requests.errors import RequestValidationError
from comity.requests.services import EventInput, RequestFilter

__all__ = ["router"]

router = APIRouter(prefix="/api/requests", tags=["requests"],
                   dependencies=[Depends(require_token)])


class CreateBody(BaseModel):
    to: Annotated[str, Field(description="Node id of the requested party.")]
    agreement: Annotated[str, Field(description="Agreement the request is made under.")]
    request: dict[str, Any]
    by: Annotated[str | None, Field(max_length=200)] = None


class ByBody(BaseModel):
    by: Annotated[str | None, Field(max_length=200)] = None
    reasons: Annotated[str | None, Field(max_length=20_000)] = None


class EventBody(BaseModel):
    event: str
    data: dict[str, Any] = Field(default_factory=dict)
    by: Annotated[str | None, Field(max_length=200)] = None


@router.get("/catalog", summary="The request catalog: types, legal bases, mandatory elements")
def catalog(request: Request) -> Response:
    return json_response(get_node(request).requests.catalog.to_dict())


@router.post("", status_code=201, summary="Draft a request (validated against the catalog)")
def create(request: Request, body: CreateBody) -> Response:
    node = get_node(request)
    with session_scope(node.sessions) as session:
        row = node.requests.create(session, body.request, to=body.to,
                                   agreement_id=body.agreement, by=body.by)
        rid = row.request_id
    with read_scope(node.sessions) as session:
        return json_response(node.requests.show(session, rid), 201)


@router.get("", summary="List requests, newest first, with filters and a cursor")
def listing(
    request: Request,
    direction: Annotated[str | None, Query(pattern="^(in|out)$")] = None,
    state: Annotated[list[str] | None, Query()] = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    peer: Annotated[str | None, Query(max_length=32)] = None,
    offence: Annotated[str | None, Query(max_length=64)] = None,
    country: Annotated[str | None, Query(min_length=2, max_length=2)] = None,
    overdue: bool = False,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    node = get_node(request)
    f = RequestFilter(direction=direction, states=tuple(state or ()), type=type, peer=peer,
                      offence=offence, country=country, overdue=overdue)
    with read_scope(node.sessions) as session:
        page = node.requests.listing(session, f, cursor=cursor, limit=limit)
    return json_response({"items": page.items, "next": page.next})


@router.get("/due", summary="Requests with a deadline within a period (overdue included)")
def due(request: Request, within: Annotated[str, Query(max_length=16)] = "7d") -> Response:
    node = get_node(request)
    try:
        period = Period.parse(within)
    except ValueError as e:
        raise RequestValidationError([{"field": "within", "message": str(e)}]) from e
    with read_scope(node.sessions) as session:
        return json_response(node.requests.due(session, within=period))


@router.get("/{request_id}", summary="A request with its timeline, deadlines and allowed acts")
def show(request: Request, request_id: str) -> Response:
    node = get_node(request)
    with read_scope(node.sessions) as session:
        return json_response(node.requests.show(session, request_id))


def _local(request: Request, request_id: str, step: str, body: ByBody) -> Response:
    node = get_node(request)
    with session_scope(node.sessions) as session:
        node.requests.local_step(session, request_id, step, by=body.by, reasons=body.reasons)
    with read_scope(node.sessions) as session:
        return json_response(node.requests.show(session, request_id))


@router.post("/{request_id}/submit", summary="Submit a draft for approval")
def submit(request: Request, request_id: str, body: ByBody) -> Response:
    return _local(request, request_id, "submit", body)


@router.post("/{request_id}/approve", summary="Approve a request (not by its author)")
def approve(request: Request, request_id: str, body: ByBody) -> Response:
    return _local(request, request_id, "approve", body)


@router.post("/{request_id}/return", summary="Send a request back to draft")
def return_to_draft(request: Request, request_id: str, body: ByBody) -> Response:
    return _local(request, request_id, "return", body)


@router.post("/{request_id}/send", summary="Send an approved request to the requested party")
def send(request: Request, request_id: str, body: ByBody) -> Response:
    return _local(request, request_id, "send", body)


@router.post("/{request_id}/events", summary="Act on a sent request (acknowledge, refuse...)")
def act(request: Request, request_id: str, body: EventBody) -> Response:
    node = get_node(request)
    with session_scope(node.sessions) as session:
        node.requests.act(session, request_id, EventInput(body.event, body.data), by=body.by)
    with read_scope(node.sessions) as session:
        return json_response(node.requests.show(session, request_id))
