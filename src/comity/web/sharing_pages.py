"""Sharing pages (analysts only, read-only): collections, the agreements that share them, objects.

* ``/ui/sharing``: every collection, how many objects it holds, and which
  agreements share it with whom, up to which TLP level.
* ``/ui/sharing/{collection}``: the newest objects of a collection (latest
  version of each, newest first, at most :data:`OBJECTS`) with their type,
  id, name, version and TLP level as a badge.

An object's level is its own marking when it has one, else the node's
default level for unmarked objects (``COMITY_SHARING_DEFAULT_TLP``): the same
rule :func:`comity.sharing.policy.may_release` applies at every exit, so the
badge says what the policy will treat the object as.

Trust assumptions: the actor is an authenticated analyst of this node, who
sees everything the node holds (as the local operator does through the
API). Names and ids inside objects may come from peers: they are untrusted
text, rendered only through autoescaping, and the stored bodies are parsed
with a size bound and never re-served from here.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from comity.agreements.schemas import TLP
from comity.agreements.services import list_agreements
from comity.db import read_scope
from comity.http import get_node
from comity.identity.services import list_peers
from comity.node import Node
from comity.sharing.errors import CollectionNotFoundError
from comity.sharing.models import IS_OBJECT, SharingCollection, StixObject
from comity.sharing.policy import Holding
from comity.web.accounts import Actor, Role
from comity.web.core import render, view
from comity.web.federation_pages import participant_names

__all__ = ["OBJECTS", "level_of", "router"]

router = APIRouter(include_in_schema=False)
OBJECTS = 100
_MAX_BODY = 1 << 20


def level_of(stored: str | None, default: TLP) -> TLP:
    """The TLP level the release policy treats a stored object version as."""
    holding = Holding(tlp=None if stored is None else TLP(stored))
    return holding.tlp or default


def _bindings(session: Session, node: Node) -> dict[str, list[dict[str, Any]]]:
    """Collection name → the agreements whose effective version shares it."""
    now = node.clock.now()
    names = participant_names(session, node)
    out: dict[str, list[dict[str, Any]]] = {}
    for v in list_agreements(session):
        doc = v.effective
        if doc is None:
            continue
        for shared in doc.scope.collections:
            out.setdefault(shared.name, []).append({
                "id": v.agreement_id, "title": doc.title, "status": v.status(now).value,
                "ceiling": shared.tlp_ceiling.value,
                "parties": [names.get(p, p) for p in v.active_parties
                            if p != node.local.node_id]})
    return out


@router.get("/sharing")
def sharing_page(request: Request,
                 actor: Annotated[Actor, Depends(view(Role.ANALYST))]) -> Response:
    """Collections with their object counts and the agreements that share them."""
    node = get_node(request)
    with read_scope(node.sessions) as session:
        collections = node.sharing.collections(session)
        counts = dict(session.execute(
            select(StixObject.collection_id, func.count()).where(
                IS_OBJECT, StixObject.deleted.is_(False), StixObject.latest.is_(True))
            .group_by(StixObject.collection_id)).all())
        bindings = _bindings(session, node)
    rows = [{**c, "objects": int(counts.get(c["id"], 0)),
             "agreements": bindings.get(c["name"], [])} for c in collections]
    rows.sort(key=lambda c: str(c["name"]))
    return render(request, "sharing.html", actor=actor, rows=rows,
                  default=node.sharing.default_tlp.value)


def _name(body: bytes) -> str | None:
    """The object's ``name`` property, if it has a textual one."""
    if len(body) > _MAX_BODY:
        return None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    name = doc.get("name") if isinstance(doc, dict) else None
    return name[:300] if isinstance(name, str) else None


@router.get("/sharing/{collection}")
def collection_page(request: Request, collection: str,
                    actor: Annotated[Actor, Depends(view(Role.ANALYST))]) -> Response:
    """The newest objects of one collection (by its name or id), each with its TLP level."""
    node = get_node(request)
    key = collection[:64]
    default = node.sharing.default_tlp
    with read_scope(node.sessions) as session:
        c = session.scalar(select(SharingCollection).where(
            (SharingCollection.name == key) | (SharingCollection.collection_id == key)))
        if c is None:
            raise CollectionNotFoundError(f"no collection {key!r}")
        rows = session.execute(
            select(StixObject.object_id, StixObject.type, StixObject.version_at,
                   StixObject.date_added, StixObject.tlp, StixObject.origin,
                   StixObject.revoked, StixObject.body)
            .where(StixObject.collection_id == c.collection_id, IS_OBJECT,
                   StixObject.deleted.is_(False), StixObject.latest.is_(True))
            .order_by(StixObject.seq.desc()).limit(OBJECTS)).all()
        names = {p.node_id: p.name for p in list_peers(session)}
        bindings = _bindings(session, node).get(c.name, [])
        shown = {"id": c.collection_id, "name": c.name, "title": c.title,
                 "description": c.description, "peers_can_write": c.peers_can_write,
                 "created_at": c.created_at}
    objects = []
    for r in rows:
        level = level_of(r.tlp, default)
        objects.append({"id": r.object_id, "type": r.type, "version": r.version_at,
                        "added": r.date_added, "name": _name(r.body), "level": level.value,
                        "css": level.value.replace("+", "-"), "marked": r.tlp is not None,
                        "origin": None if r.origin is None else names.get(r.origin, r.origin),
                        "revoked": r.revoked})
    return render(request, "collection.html", actor=actor, c=shown, objects=objects,
                  agreements=bindings, default=default.value, limit=OBJECTS)
