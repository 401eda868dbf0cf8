"""Identity routes: this node's card and the peers it trusts (``/api``)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Body, Depends, Request
from starlette.responses import Response

from comity.db import read_scope, session_scope
from comity.http import get_node, json_response, require_token
from comity.identity.errors import PeerNotFoundError
from comity.identity.models import Peer
from comity.identity.services import import_cards, list_peers

__all__ = ["peer_view", "router"]

router = APIRouter(prefix="/api", tags=["identity"], dependencies=[Depends(require_token)])


def peer_view(peer: Peer) -> dict[str, Any]:
    return {"node_id": peer.node_id, "name": peer.name, "kind": peer.kind,
            "jurisdiction": peer.jurisdiction, "url": peer.url, "serial": peer.serial,
            "card": orjson.loads(peer.card), "added_at": peer.added_at.isoformat(),
            "updated_at": peer.updated_at.isoformat()}


@router.get("/node", summary="This node's current card")
def node_card(request: Request) -> Response:
    return json_response(get_node(request).local.card.doc)


@router.get("/node/chain", summary="This node's card chain, first card first")
def node_chain(request: Request) -> Response:
    return json_response([c.doc for c in get_node(request).local.chain])


@router.get("/peers", summary="Known peers")
def peers(request: Request) -> Response:
    with read_scope(get_node(request).sessions) as session:
        return json_response([peer_view(p) for p in list_peers(session)])


@router.post("/peers", status_code=201, summary="Import a peer's card or card chain")
def add_peer(request: Request, cards: Any = Body(...)) -> Response:  # noqa: B008
    node = get_node(request)
    with session_scope(node.sessions) as session:
        peer, added = import_cards(session, cards, local_node_id=node.local.node_id,
                                   clock=node.clock)
        view = peer_view(peer)
        view["accepted_cards"] = added
        return json_response(view, 201 if added else 200)


@router.get("/peers/{node_id}", summary="One peer")
def peer(request: Request, node_id: str) -> Response:
    with read_scope(get_node(request).sessions) as session:
        row = session.get(Peer, node_id)
        if row is None:
            raise PeerNotFoundError(f"no peer {node_id!r}")
        return json_response(peer_view(row))
