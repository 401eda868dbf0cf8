"""C2SP tlog-tiles paths and contents: hash tiles and entry bundles, from the store.

Paths are ``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``, where
``N`` is written in groups of three digits, every group but the last prefixed
with ``x`` (``x001/x234/067``). A tile is served only if the current tree
holds all ``W`` of its items (256 for a full tile); a full tile never changes.

Trust assumptions: paths are untrusted input and parsed strictly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from comity.ledger.storage import TILE, TileStore, block_data, decode_bundle, encode_bundle

__all__ = [
    "TilePathError",
    "TileRef",
    "entry_bundle",
    "hash_tile",
    "parse_tile_path",
    "tile_path",
]

_GROUP = re.compile(r"\Ax\d{3}\Z")
_LAST = re.compile(r"\A\d{3}\Z")
_WIDTH = re.compile(r"\A[1-9]\d{0,2}\Z")
_LEVEL = re.compile(r"\A(0|[1-9]\d?)\Z")


class TilePathError(ValueError):
    """Not a valid tile path."""


@dataclass(frozen=True)
class TileRef:
    """A parsed tile path: ``level`` is None for entry bundles."""

    level: int | None
    index: int
    width: int  # 256 for a full tile


def parse_tile_path(path: str) -> TileRef:
    """Parse the part of a tile URL after ``tile/``.

    Raises:
        TilePathError: on any deviation from the C2SP encoding.
    """
    parts = path.split("/")
    if len(parts) < 2:
        raise TilePathError("a tile path needs a level and an index")
    head, rest = parts[0], parts[1:]
    width = TILE
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        if not _WIDTH.match(rest[-1]) or int(rest[-1]) >= TILE:
            raise TilePathError("partial width must be 1 to 255")
        width = int(rest[-1])
        rest = [*rest[:-2], rest[-2][:-2]]
    if not rest or not _LAST.match(rest[-1]) or not all(_GROUP.match(g) for g in rest[:-1]):
        raise TilePathError("tile index must be x-prefixed groups of three digits")
    index = int("".join(g.lstrip("x") for g in rest))
    if head == "entries":
        return TileRef(None, index, width)
    if not _LEVEL.match(head) or int(head) > 7:
        raise TilePathError("tile level must be 0 to 7")
    return TileRef(int(head), index, width)


def tile_path(index: int, width: int = TILE) -> str:
    """The ``N[.p/W]`` part of a tile path: ``1234067`` is ``x001/x234/067``."""
    digits = f"{index:03d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i:i + 3] for i in range(0, len(digits), 3)]
    path = "/".join([f"x{g}" for g in groups[:-1]] + groups[-1:])
    return path if width == TILE else f"{path}.p/{width}"


def hash_tile(reader: TileStore, size: int, level: int, index: int, width: int) -> bytes | None:
    """The hash tile, or None if the tree of ``size`` does not hold it yet."""
    if index * TILE + width > size >> (8 * level):
        return None
    return reader.c2sp_tile(level, index, width)


def entry_bundle(reader: TileStore, size: int, index: int, width: int) -> bytes | None:
    """The entry bundle, or None if the tree of ``size`` does not hold it yet."""
    if index * TILE + width > size:
        return None
    entries = decode_bundle(block_data(reader.session, index))
    if len(entries) < width:
        return None
    return encode_bundle(entries[:width])
