"""Sharing routes for the local operator (``/api/sharing``): collections, and adding objects
with the named recipients a TLP:RED object of this node may go to."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from comity.db import read_scope, session_scope
from comity.http import get_node, json_response, require_token
from comity.sharing.errors import BadFilterError
from comity.sharing.policy import Requester
from comity.sharing.stix import StixError, check_envelope
from comity.sharing.taxii import API_ROOT

__all__ = ["router"]

router = APIRouter(prefix="/api/sharing", tags=["sharing"],
                   dependencies=[Depends(require_token)])


class CollectionBody(BaseModel):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.+-]{0,63}$",
                               description="The name agreements share it by.")]
    title: Annotated[str, Field(min_length=1, max_length=500)]
    description: Annotated[str | None, Field(max_length=5000)] = None
    peers_can_write: bool = False


def _with_urls(request: Request, c: dict[str, Any]) -> dict[str, Any]:
    base = get_node(request).local.card.url.rstrip("/")
    root = f"{base}/taxii2/{API_ROOT}/"
    return {**c, "api_root": root, "taxii_url": f"{root}collections/{c['id']}/"}


@router.get("/collections", summary="This node's collections, with their TAXII URLs")
def list_collections(request: Request) -> Response:
    node = get_node(request)
    with read_scope(node.sessions) as session:
        return json_response([_with_urls(request, c)
                              for c in node.sharing.collections(session)])


@router.post("/collections", status_code=201, summary="Create a collection")
def create_collection(request: Request, body: CollectionBody) -> Response:
    node = get_node(request)
    with session_scope(node.sessions) as session:
        c = node.sharing.create_collection(session, name=body.name, title=body.title,
                                           description=body.description,
                                           peers_can_write=body.peers_can_write)
    return json_response(_with_urls(request, c), 201)


@router.post("/collections/{cid}/objects", status_code=202,
             summary="Add a STIX bundle or TAXII envelope (with named recipients for RED)")
async def add_objects(
    request: Request, cid: str,
    recipient: Annotated[list[str] | None, Query(
        description="Node id a TLP:RED object may go to (repeatable).")] = None,
) -> Response:
    node = get_node(request)
    raw = await request.body()

    def work() -> dict[str, Any]:
        try:
            objects = check_envelope(orjson.loads(raw),
                                     max_objects=node.settings.taxii_max_objects)
        except (orjson.JSONDecodeError, StixError) as e:
            raise BadFilterError(f"not a STIX bundle or TAXII envelope: {e}") from e
        return node.sharing.add_objects(cid, objects, Requester(None),
                                        recipients=recipient or ())
    return json_response(await run_in_threadpool(work), 202)
