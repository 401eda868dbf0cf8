"""Federation routes: the peer inbox and card exchange (``/federation/``), and
the operator's view of messages (``/api/messages``, ``/api/outbox``, ``/api/inbox``).

Peer routes need no token: every delivery is authenticated by its signature.
Operator routes need an API token.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from comity.db import read_scope, session_scope
from comity.federation.errors import UnsupportedMediaTypeError
from comity.federation.models import HeldReceipt, InboxMessage, IssuedReceipt, OutboxMessage
from comity.http import get_node, json_response, require_token
from comity.node import Node
from comity.problems import Problem

__all__ = ["api_router", "inbox_view", "outbox_view", "peer_router"]

peer_router = APIRouter(prefix="/federation", tags=["federation (peers)"])
api_router = APIRouter(prefix="/api", tags=["messages"], dependencies=[Depends(require_token)])


class MessageNotFoundError(Problem):
    slug = "message-not-found"
    status = 404
    title = "No such message"


def _require_json(request: Request) -> None:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise UnsupportedMediaTypeError(f"expected application/json, got {ctype or 'nothing'}")


@peer_router.post("/inbox", summary="Receive a signed delivery from a peer")
async def inbox(request: Request) -> Response:
    """Verify and store a batch of signed messages; answer with signed receipts."""
    node = get_node(request)
    _require_json(request)
    raw = await request.body()  # size bounded by BodyLimitMiddleware
    return json_response(await run_in_threadpool(node.federation.receive, raw))


@peer_router.get("/cards", summary="This node's card chain, first card first")
def cards(request: Request) -> Response:
    return json_response([c.doc for c in get_node(request).local.chain])


@peer_router.post("/cards", summary="A known peer announces its rotated card chain")
async def push_cards(request: Request) -> Response:
    node = get_node(request)
    _require_json(request)
    raw = await request.body()  # size bounded by BodyLimitMiddleware
    return json_response(await run_in_threadpool(node.federation.accept_cards, raw))


class SendRequest(BaseModel):
    to: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    type: str = "correspondence"
    agreement: str | None = None
    in_reply_to: str | None = None
    body: dict[str, Any]


class SendBatch(BaseModel):
    messages: Annotated[list[SendRequest], Field(min_length=1, max_length=10_000)]


def outbox_view(row: OutboxMessage) -> dict[str, Any]:
    return {"id": row.message_id, "seq": row.seq, "to": row.peer_id, "type": row.type,
            "agreement": row.agreement_id, "hash": row.message_hash, "status": row.status,
            "attempts": row.attempts, "created_at": row.created_at.isoformat(),
            "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
            "last_error": row.last_error, "receiver_seq": row.receiver_seq}


def inbox_view(row: InboxMessage) -> dict[str, Any]:
    env = orjson.loads(row.envelope)
    return {"id": row.message_id, "seq": row.seq, "from": row.sender_id, "type": row.type,
            "agreement": row.agreement_id, "hash": row.message_hash,
            "created_at": row.created_at.isoformat(), "received_at": row.received_at.isoformat(),
            "header": env["header"], "body": env["body"]}


def _send_all(node: Node, items: list[SendRequest]) -> list[dict[str, Any]]:
    # Sign outside the write transaction; authorise and store inside it.
    prepared = [node.federation.prepare(to=m.to, type=m.type, body=m.body,
                                        agreement_id=m.agreement, in_reply_to=m.in_reply_to)
                for m in items]
    with session_scope(node.sessions) as session:
        rows = [node.federation.enqueue(session, p) for p in prepared]
        session.flush()
        return [outbox_view(r) for r in rows]


@api_router.post("/messages", status_code=201, summary="Queue one signed message to a peer")
def send(request: Request, req: SendRequest) -> Response:
    return json_response(_send_all(get_node(request), [req])[0], 201)


@api_router.post("/messages/batch", status_code=201,
                 summary="Queue several messages in one transaction (all or none)")
def send_batch(request: Request, req: SendBatch) -> Response:
    return json_response({"messages": _send_all(get_node(request), req.messages)}, 201)


@api_router.get("/outbox", summary="Messages this node sent, newest first")
def outbox(request: Request,
           status: Literal["pending", "delivered", "failed"] | None = None,
           peer: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
           before: int | None = None) -> Response:
    with read_scope(get_node(request).sessions) as session:
        q = select(OutboxMessage).order_by(OutboxMessage.seq.desc()).limit(limit)
        if status:
            q = q.where(OutboxMessage.status == status)
        if peer:
            q = q.where(OutboxMessage.peer_id == peer)
        if before is not None:
            q = q.where(OutboxMessage.seq < before)
        return json_response([outbox_view(r) for r in session.scalars(q)])


@api_router.get("/inbox", summary="Messages this node received, newest first")
def inbox_list(request: Request, peer: str | None = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               before: int | None = None) -> Response:
    with read_scope(get_node(request).sessions) as session:
        q = select(InboxMessage).order_by(InboxMessage.seq.desc()).limit(limit)
        if peer:
            q = q.where(InboxMessage.sender_id == peer)
        if before is not None:
            q = q.where(InboxMessage.seq < before)
        return json_response([inbox_view(r) for r in session.scalars(q)])


@api_router.get("/messages/{message_id}", summary="One message with its signed receipt")
def message(request: Request, message_id: str) -> Response:
    with read_scope(get_node(request).sessions) as session:
        out = session.scalar(select(OutboxMessage).where(OutboxMessage.message_id == message_id))
        if out is not None:
            view = outbox_view(out)
            view["direction"] = "sent"
            view["envelope"] = orjson.loads(out.envelope)
            held = session.get(HeldReceipt, out.receipt_id) if out.receipt_id else None
            view["receipt"] = orjson.loads(held.receipt) if held else None
            return json_response(view)
        inc = session.scalar(select(InboxMessage).where(InboxMessage.message_id == message_id))
        if inc is None:
            raise MessageNotFoundError(f"no message {message_id!r} here")
        view = inbox_view(inc)
        view["direction"] = "received"
        issued = session.get(IssuedReceipt, inc.receipt_id)
        view["receipt"] = orjson.loads(issued.receipt) if issued else None
        return json_response(view)


@api_router.get("/federation/stats", summary="Counts of messages by direction and status")
def stats(request: Request) -> Response:
    with read_scope(get_node(request).sessions) as session:
        by_status = dict(session.execute(select(OutboxMessage.status, func.count()).group_by(
            OutboxMessage.status)).tuples().all())
        received = session.scalar(select(func.count()).select_from(InboxMessage)) or 0
        return json_response({"outbox": {k: by_status.get(k, 0)
                                         for k in ("pending", "delivered", "failed")},
                              "inbox": received})
