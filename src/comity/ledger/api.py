"""The log, served read-only to partners under ``/log/`` (C2SP tlog-tiles).

``/log/checkpoint`` is the latest signed checkpoint (``text/plain``, cache for
seconds); ``/log/tile/...`` the hash tiles and entry bundles (immutable when
full). Entries are salted commitments, so what anyone can read here reveals
nothing about the acts behind them.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from comity.db import read_scope
from comity.http import get_node, json_response, require_token
from comity.ledger.tiles import TilePathError, entry_bundle, hash_tile, parse_tile_path
from comity.ledger.witness import list_alarms, log_status
from comity.problems import Problem

__all__ = ["api_router", "router"]

router = APIRouter(prefix="/log", tags=["log"])


class TileNotFoundError(Problem):
    slug = "tile-not-found"
    status = 404
    title = "No such tile"


class BadTilePathError(Problem):
    slug = "bad-tile-path"
    status = 400
    title = "Not a tile path"


@router.get("/checkpoint", summary="The log's latest checkpoint, with its cosignatures")
def checkpoint(request: Request) -> Response:
    ledger = get_node(request).ledger
    with read_scope(ledger.sessions) as session:
        note = ledger.cosigned_checkpoint(session)
    return Response(note, media_type="text/plain; charset=utf-8",
                    headers={"cache-control": "no-cache"})


@router.post("/add-checkpoint", summary="Witness a partner's checkpoint (C2SP tlog-witness)",
             responses={409: {"description": "the size this witness holds, as text/x.tlog.size"}})
async def add_checkpoint(request: Request) -> Response:
    body = await request.body()
    node = get_node(request)
    answer = await run_in_threadpool(node.witness().add_checkpoint, body)
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type)


@router.get("/tile/{path:path}", summary="A hash tile or an entry bundle")
def tile(request: Request, path: str) -> Response:
    try:
        ref = parse_tile_path(path)
    except TilePathError as e:
        raise BadTilePathError(str(e)) from e
    ledger = get_node(request).ledger
    with read_scope(ledger.sessions) as session:
        size = ledger.head(session).size
        reader = ledger.reader(session)
        data = (entry_bundle(reader, size, ref.index, ref.width) if ref.level is None
                else hash_tile(reader, size, ref.level, ref.index, ref.width))
    if data is None:
        raise TileNotFoundError(f"tile {path} is not in the log yet")
    cache = "public, max-age=31536000, immutable" if ref.width == 256 else "no-cache"
    return Response(data, media_type="application/octet-stream",
                    headers={"cache-control": cache})


api_router = APIRouter(prefix="/api/ledger", tags=["ledger"],
                       dependencies=[Depends(require_token)])


@api_router.get("", summary="The log's head, its cosignatures and what this node witnesses")
def status(request: Request) -> Response:
    ledger = get_node(request).ledger
    with read_scope(ledger.sessions) as session:
        return json_response(log_status(session, ledger))


@api_router.get("/alarms", summary="Evidence of misbehaving logs, newest first")
def alarms(request: Request) -> Response:
    with read_scope(get_node(request).sessions) as session:
        return json_response(list_alarms(session))
