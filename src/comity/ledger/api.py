"""The log, served read-only to partners under ``/log/`` (C2SP tlog-tiles).

``/log/checkpoint`` is the latest signed checkpoint (``text/plain``, cache for
seconds); ``/log/tile/...`` the hash tiles and entry bundles (immutable when
full). Entries are salted commitments, so what anyone can read here reveals
nothing about the acts behind them.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from comity.db import read_scope
from comity.http import get_node
from comity.ledger.tiles import TilePathError, entry_bundle, hash_tile, parse_tile_path
from comity.problems import Problem

__all__ = ["router"]

router = APIRouter(prefix="/log", tags=["log"])


class TileNotFoundError(Problem):
    slug = "tile-not-found"
    status = 404
    title = "No such tile"


class BadTilePathError(Problem):
    slug = "bad-tile-path"
    status = 400
    title = "Not a tile path"


@router.get("/checkpoint", summary="The log's latest signed checkpoint")
def checkpoint(request: Request) -> Response:
    head = get_node(request).ledger.head()
    return Response(head.checkpoint, media_type="text/plain; charset=utf-8",
                    headers={"cache-control": "no-cache"})


@router.get("/tile/{path:path}", summary="A hash tile or an entry bundle")
def tile(request: Request, path: str) -> Response:
    try:
        ref = parse_tile_path(path)
    except TilePathError as e:
        raise BadTilePathError(str(e)) from e
    ledger = get_node(request).ledger
    with read_scope(ledger.sessions) as session:
        size = ledger.head().size
        reader = ledger.reader(session)
        data = (entry_bundle(reader, size, ref.index, ref.width) if ref.level is None
                else hash_tile(reader, size, ref.level, ref.index, ref.width))
    if data is None:
        raise TileNotFoundError(f"tile {path} is not in the log yet")
    cache = "public, max-age=31536000, immutable" if ref.width == 256 else "no-cache"
    return Response(data, media_type="application/octet-stream",
                    headers={"cache-control": cache})
