"""The log's tree in the database: C2SP hash tiles and entry bundles.

Hashes are stored as C2SP tlog-tiles: tile ``N`` at tile level ``L`` holds
the 256 hashes of tree level ``8L`` from ``256N`` on (fewer in the right-edge
partial tile). Each row also keeps the tile's seven internal levels (``W >> k``
hashes at level ``k``, for a tile of width ``W``), so a proof reads one row
per tile level and no hashing, and the C2SP tile served to partners is
simply the row's first ``W * 32`` bytes. A full tile never changes again,
which makes it safe to cache for the life of the process; a partial tile
only grows, so a cached copy is right for every node it holds.

Entries are kept as C2SP entry bundles: 256 entries per bundle, each prefixed
with its length as a big-endian uint16.

Trust assumptions: the database is this node's own and trusted; shapes are
still checked on read, so a damaged row fails loudly instead of producing a
wrong proof (``comity log verify`` recomputes everything to find such damage).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from comity.hazmat import merkle
from comity.hazmat.merkle import HASH_SIZE
from comity.ledger.models import LogBlock, LogTile

__all__ = [
    "HEIGHT",
    "MAX_ENTRY_BYTES",
    "TILE",
    "LedgerStorageError",
    "TileBuilder",
    "TileCache",
    "TileStore",
    "block_data",
    "decode_bundle",
    "encode_bundle",
    "encode_entry",
    "expand_tile",
    "tile_layout",
    "tile_root",
    "tile_width",
    "write_bundles",
    "write_tiles",
]

TILE = 256
HEIGHT = 8
MAX_ENTRY_BYTES = 0xFFFF


class LedgerStorageError(RuntimeError):
    """Stored log data is missing or damaged."""


def tile_layout(width: int) -> tuple[int, ...]:
    """Byte offset of each internal level in a stored tile of ``width``, and its end."""
    offsets = [0]
    for k in range(HEIGHT):
        offsets.append(offsets[-1] + (width >> k) * HASH_SIZE)
    return tuple(offsets)


_LAYOUT = {w: tile_layout(w) for w in range(1, TILE + 1)}
_WIDTH_OF_LENGTH = {layout[-1]: w for w, layout in _LAYOUT.items()}
_LAYOUT_OF_LENGTH = {layout[-1]: layout for layout in _LAYOUT.values()}


def tile_width(data: bytes) -> int:
    """The width of a stored tile, from its length.

    Raises:
        LedgerStorageError: if no width has that length.
    """
    width = _WIDTH_OF_LENGTH.get(len(data))
    if width is None:
        raise LedgerStorageError(f"a stored tile of {len(data)} bytes is damaged")
    return width


def expand_tile(hashes: Sequence[bytes]) -> bytes:
    """A tile's stored form: its hashes and every complete internal level above them."""
    return b"".join(b"".join(level) for level in merkle.subtree_levels(hashes, HEIGHT))


def tile_root(stored: bytes) -> bytes:
    """The hash one level above a full tile (the next tile level's entry for it)."""
    top = _LAYOUT[TILE][HEIGHT - 1]
    return merkle.node_hash(stored[top:top + HASH_SIZE],
                            stored[top + HASH_SIZE:top + 2 * HASH_SIZE])


class TileCache:
    """Stored tiles, most recently used kept, shared by threads."""

    def __init__(self, capacity: int = 8192) -> None:
        self._tiles: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, key: tuple[int, int]) -> bytes | None:
        with self._lock:
            data = self._tiles.get(key)
            if data is not None:
                self._tiles.move_to_end(key)
            return data

    def get_many(self, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The cached ones of ``keys`` (one lock round for all)."""
        out = {}
        with self._lock:
            tiles = self._tiles
            for key in keys:
                data = tiles.get(key)
                if data is not None:
                    tiles.move_to_end(key)
                    out[key] = data
        return out

    def put(self, key: tuple[int, int], data: bytes) -> None:
        with self._lock:
            old = self._tiles.get(key)
            if old is not None and len(old) > len(data):
                return  # a slower reader's older, narrower copy
            self._tiles[key] = data
            self._tiles.move_to_end(key)
            while len(self._tiles) > self._capacity:
                self._tiles.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._tiles.clear()


class TileStore:
    """A :class:`~comity.hazmat.merkle.HashReader` over stored tiles.

    ``overlay`` holds tiles computed but not yet written (during integration);
    they take precedence over storage.
    """

    def __init__(self, session: Session, cache: TileCache,
                 overlay: dict[tuple[int, int], bytes] | None = None) -> None:
        self.session = session
        self.cache = cache
        self.overlay = overlay if overlay is not None else {}

    def tiles(self, needs: dict[tuple[int, int], int]) -> dict[tuple[int, int], bytes]:
        """Stored tiles, each at least ``needs[key]`` wide if stored so far."""
        found = self.cache.get_many(needs)
        if self.overlay:
            found.update((k, self.overlay[k]) for k in needs if k in self.overlay)
        missing = [key for key, width in needs.items()
                   if key not in found or _WIDTH_OF_LENGTH.get(len(found[key]), 0) < width]
        # One query per tile level, ``level = ? AND idx IN (...)``: a row-value
        # IN over both key columns makes SQLite scan the whole table.
        for level, indexes in _by_level(missing).items():
            for index, data in self.session.execute(
                    select(LogTile.idx, LogTile.data)
                    .where(LogTile.level == level, LogTile.idx.in_(indexes))):
                key = (level, int(index))
                found[key] = bytes(data)
                self.cache.put(key, found[key])
        return found

    def read_nodes(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
        # Node (level, n) is at internal level k of tile (level // 8, n >> (8 - k)).
        where = []
        needs: dict[tuple[int, int], int] = {}
        for level, n in nodes:
            k = level & 7
            shift = HEIGHT - k
            key = (level >> 3, n >> shift)
            pos = n & ((1 << shift) - 1)
            width = (pos + 1) << k
            if needs.get(key, 0) < width:
                needs[key] = width
            where.append((key, k, pos))
        tiles = self.tiles(needs)
        out = []
        for key, k, pos in where:
            data = tiles.get(key, b"")
            layout = _LAYOUT_OF_LENGTH.get(len(data))
            if layout is None:
                raise LedgerStorageError(f"tile {key[0]}/{key[1]} is missing or damaged")
            start = layout[k] + pos * HASH_SIZE
            if start + HASH_SIZE > layout[k + 1]:
                raise LedgerStorageError(f"tile {key[0]}/{key[1]} is too narrow")
            out.append(data[start:start + HASH_SIZE])
        return out

    def prefetch(self, indexes: Iterable[int], size: int) -> None:
        """Load every tile the inclusion proofs of ``indexes`` will read, in few queries.

        For proving many entries at once (an audit, a case file's receipts):
        one query per tile level instead of one per proof.
        """
        needs: dict[tuple[int, int], int] = {}
        for index in indexes:
            level, n, count = 0, index, size
            while count > 1:
                key = (level, n // TILE)
                needs[key] = max(needs.get(key, 0), min(TILE, count - key[1] * TILE))
                level, n, count = level + 1, n // TILE, count // TILE
        self.tiles(needs)

    def c2sp_tile(self, level: int, index: int, width: int) -> bytes | None:
        """The C2SP hash tile of ``width`` hashes, or None if not stored that wide."""
        data = self.tiles({(level, index): width}).get((level, index))
        if data is None or tile_width(data) < width:
            return None
        return data[:width * HASH_SIZE]


class TileBuilder:
    """Appends leaf hashes to the right edge of the tree, in memory.

    Loads the right-edge partial tile of each level, adds hashes, closes full
    tiles into the level above, and collects every tile that changed:
    :attr:`changed` (stored form by ``(level, index)``) is what to write, and
    the store it was given reads the tree as it will be.
    """

    def __init__(self, store: TileStore, size: int) -> None:
        self.store = store
        self.size = size
        self.edge: list[list[bytes]] = []  # per tile level: hashes of its partial tile
        self.changed: dict[tuple[int, int], bytes] = {}
        level, count = 0, size
        while count:
            width = count % TILE
            hashes: list[bytes] = []
            if width:
                tile = store.c2sp_tile(level, count // TILE, width)
                if tile is None:
                    raise LedgerStorageError(f"partial tile {level}/{count // TILE} is missing")
                hashes = [tile[i:i + HASH_SIZE] for i in range(0, len(tile), HASH_SIZE)]
            self.edge.append(hashes)
            level, count = level + 1, count // TILE

    def append(self, leaf_hashes: Iterable[bytes]) -> None:
        for h in leaf_hashes:
            self._add(0, self.size, h)
            self.size += 1
        # A tile still marked empty was touched but not filled: it is the
        # partial tile of its level now, and is expanded once per batch.
        for key, stored in self.changed.items():
            if not stored:
                self.changed[key] = expand_tile(self.edge[key[0]])
        self.store.overlay.update(self.changed)

    def _add(self, level: int, position: int, h: bytes) -> None:
        """Add the hash at ``position`` of tree level ``8 * level``."""
        while len(self.edge) <= level:
            self.edge.append([])
        hashes = self.edge[level]
        hashes.append(h)
        key = (level, position // TILE)
        self.changed[key] = b""  # partial: expanded once the batch is in
        if len(hashes) == TILE:
            stored = expand_tile(hashes)
            self.changed[key] = stored
            self.edge[level] = []
            self._add(level + 1, position // TILE, tile_root(stored))


def _by_level(keys: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for level, index in keys:
        out.setdefault(level, []).append(index)
    return out


def write_tiles(session: Session, tiles: dict[tuple[int, int], bytes]) -> None:
    """Write (or rewrite) stored tiles."""
    if not tiles:
        return
    for level, indexes in _by_level(tiles).items():
        session.execute(delete(LogTile).where(LogTile.level == level,
                                              LogTile.idx.in_(indexes)))
    session.execute(insert(LogTile), [{"level": lv, "idx": n, "data": data}
                                      for (lv, n), data in tiles.items()])


def write_bundles(session: Session, start: int, entries: list[bytes], tail: bytes) -> None:
    """Append encoded entries at index ``start``, rewriting the partial bundle there.

    ``tail`` is that partial bundle as it is stored (empty if ``start`` opens
    a new bundle).
    """
    first = start // TILE
    current = bytearray(tail)
    blocks: list[bytes] = []
    pos = start
    for item in entries:
        current += item
        pos += 1
        if pos % TILE == 0:
            blocks.append(bytes(current))
            current = bytearray()
    if current:
        blocks.append(bytes(current))
    last = first + len(blocks) - 1
    session.execute(delete(LogBlock).where(LogBlock.kind == "e", LogBlock.block >= first,
                                           LogBlock.block <= last))
    session.execute(insert(LogBlock), [{"kind": "e", "block": first + k, "data": data}
                                       for k, data in enumerate(blocks)])


def block_data(session: Session, block: int) -> bytes:
    """The raw content of one entry bundle (empty if it does not exist yet)."""
    data = session.scalar(select(LogBlock.data).where(LogBlock.kind == "e",
                                                      LogBlock.block == block))
    return bytes(data) if data else b""


def encode_entry(data: bytes) -> bytes:
    """One entry as it appears in a C2SP entry bundle."""
    if len(data) > MAX_ENTRY_BYTES:
        raise ValueError(f"log entries are at most {MAX_ENTRY_BYTES} bytes")
    return len(data).to_bytes(2, "big") + data


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """A C2SP entry bundle of ``entries``."""
    return b"".join(encode_entry(e) for e in entries)


def decode_bundle(data: bytes) -> list[bytes]:
    """The entries of an entry bundle.

    Raises:
        LedgerStorageError: if the bundle is truncated.
    """
    out = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise LedgerStorageError("truncated entry bundle")
        n = int.from_bytes(data[pos:pos + 2], "big")
        if pos + 2 + n > len(data):
            raise LedgerStorageError("truncated entry bundle")
        out.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    return out
