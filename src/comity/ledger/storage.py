"""The log's tree in the database: blocks of stored hashes and entry bundles.

Stored hashes are addressed as in Go's sumdb/tlog (``merkle.stored_hash_index``)
and kept 256 to a block, so appending a batch rewrites only the last partial
block and writes whole new ones, and a proof reads a handful of blocks. Full
blocks never change again, which makes them safe to cache in memory for the
life of the process. Entries are kept as C2SP tlog-tiles entry bundles: 256
entries per bundle, each prefixed with its length as a big-endian uint16.

Trust assumptions: the database is this node's own and trusted; shapes are
still checked on read, so a damaged block fails loudly instead of producing a
wrong proof.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from comity.hazmat.merkle import HASH_SIZE
from comity.ledger.models import LogBlock

__all__ = [
    "BLOCK",
    "MAX_ENTRY_BYTES",
    "BlockCache",
    "HashStore",
    "LedgerStorageError",
    "OverlayReader",
    "block_data",
    "decode_bundle",
    "encode_bundle",
    "encode_entry",
    "write_run",
]

BLOCK = 256
MAX_ENTRY_BYTES = 0xFFFF


class LedgerStorageError(RuntimeError):
    """Stored log data is missing or damaged."""


class BlockCache:
    """Hash blocks, most recently used kept, shared by threads.

    Stored hashes never change once written; a block only grows until it is
    full. So a cached block is right for every index it covers, and a read
    beyond its end simply fetches the block again.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, block: int) -> bytes | None:
        with self._lock:
            data = self._blocks.get(block)
            if data is not None:
                self._blocks.move_to_end(block)
            return data

    def put(self, block: int, data: bytes) -> None:
        with self._lock:
            self._blocks[block] = data
            self._blocks.move_to_end(block)
            while len(self._blocks) > self._capacity:
                self._blocks.popitem(last=False)


class HashStore:
    """A :class:`~comity.hazmat.merkle.HashReader` over stored hash blocks."""

    def __init__(self, session: Session, cache: BlockCache) -> None:
        self.session = session
        self.cache = cache

    def blocks(self, needs: dict[int, int]) -> dict[int, bytes]:
        """Hash blocks, each at least ``needs[block]`` bytes long if stored so far.

        Served from the cache when the cached copy is long enough, else read.
        """
        found: dict[int, bytes] = {}
        missing = []
        for b, length in needs.items():
            data = self.cache.get(b)
            if data is None or len(data) < length:
                missing.append(b)
            else:
                found[b] = data
        if missing:
            rows = self.session.execute(select(LogBlock.block, LogBlock.data).where(
                LogBlock.kind == "h", LogBlock.block.in_(missing)))
            for block, data in rows:
                found[block] = data
                self.cache.put(block, data)
        return found

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        needs: dict[int, int] = {}
        for i in indexes:
            b, end = divmod(i, BLOCK)
            needs[b] = max(needs.get(b, 0), (end + 1) * HASH_SIZE)
        blocks = self.blocks(needs)
        out = []
        for i in indexes:
            data = blocks.get(i // BLOCK, b"")
            start = (i % BLOCK) * HASH_SIZE
            h = data[start:start + HASH_SIZE]
            if len(h) != HASH_SIZE:
                raise LedgerStorageError(f"stored hash {i} is missing")
            out.append(h)
        return out


class OverlayReader:
    """Stored hashes plus hashes appended in memory from position ``start`` on."""

    def __init__(self, base: HashStore, start: int) -> None:
        self.base = base
        self.start = start
        self.new: list[bytes] = []

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        old = [i for i in indexes if i < self.start]
        got = dict(zip(old, self.base.read_hashes(old), strict=True)) if old else {}
        return [got[i] if i < self.start else self.new[i - self.start] for i in indexes]


def write_run(session: Session, kind: str, start: int, items: list[bytes],
              existing_tail: bytes) -> None:
    """Write ``items`` (hashes or encoded entries) at item position ``start``.

    ``existing_tail`` is the current content of the block that holds
    ``start`` (empty if that block is new); it is rewritten together with
    the new items, and every following block is written whole.
    """
    first = start // BLOCK
    blocks: list[bytes] = []
    current = bytearray(existing_tail)
    pos = start
    for item in items:
        current += item
        pos += 1
        if pos % BLOCK == 0:
            blocks.append(bytes(current))
            current = bytearray()
    if current:
        blocks.append(bytes(current))
    last = first + len(blocks) - 1
    session.execute(delete(LogBlock).where(LogBlock.kind == kind, LogBlock.block >= first,
                                           LogBlock.block <= last))
    session.execute(insert(LogBlock), [{"kind": kind, "block": first + k, "data": data}
                                       for k, data in enumerate(blocks)])


def block_data(session: Session, kind: str, block: int) -> bytes:
    """The raw content of one block (empty if it does not exist yet)."""
    data = session.scalar(select(LogBlock.data).where(LogBlock.kind == kind,
                                                      LogBlock.block == block))
    return data or b""


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
