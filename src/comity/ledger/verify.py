"""Verify this node's whole log: recompute it from its entry bundles, check every stored byte.

``comity log verify`` runs :func:`verify_log`. It reads, in one snapshot of
the database:

* the entry bundles (``log_blocks`` kind ``e``), streamed in index order a
  chunk at a time, never the whole log in memory: each bundle must decode and
  hold 256 entries (the last one ``size % 256``);
* every hash tile (``log_tiles``), rebuilt from the leaf hashes of the entries
  exactly as C2SP tlog-tiles define them (tile ``(L, N)`` holds the hashes of
  tree level ``8L`` from ``256N`` on) and compared byte for byte with the
  stored row, internal levels included; no row may lie beyond the tree;
* the entry openings (``log_openings``): each commits to the entry at its index;
* ``log_state``: its root is the tree's root as the tiles give it, and its
  checkpoint is signed by this node, for its origin, size and root;
* every signed checkpoint (``log_checkpoints``): signed by a key of this
  node's card chain (older checkpoints were signed with older keys), and its
  root is that of the tree of its size, read from the tiles;
* every cosignature (``log_cosignatures``): a valid cosignature/v1 line over
  that checkpoint by a card of the partner that gave it.

Nothing is repaired. Each problem names the damaged item (``tile 0/12: ...``,
``entry bundle 3: ...``, ``checkpoint 4711: ...``, ``log state: ...``,
``entry 42: ...``, ``cosignature of checkpoint 9 by <peer>: ...``); damaged
data never raises. When a tile and its entry bundle disagree and neither is
broken in itself, the signed checkpoint decides which one changed: the tile
if the entries still give the signed root, the bundle if the tiles do.

Trust assumptions: nothing read from the ledger's tables is trusted, unlike
everywhere else in the ledger. Trusted are this node's card chain (from its
data directory; its keys signed the checkpoints) and the peers' stored cards,
verified when they were imported (a damaged one leaves the cosignatures it
should check unverified, which is reported). A signed checkpoint vouches for
the tree only as far as the node's key was kept safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from comity.db import snapshot_scope
from comity.hazmat import merkle
from comity.hazmat.merkle import HASH_SIZE
from comity.hazmat.note import (
    Checkpoint,
    CosignatureVerifier,
    NoteSignatureError,
    NoteVerifier,
    UnverifiedNoteError,
    add_signature_lines,
    cosignatures,
    open_note,
    parse_checkpoint,
)
from comity.identity.models import PeerCard
from comity.identity.schemas import NodeCard
from comity.identity.services import stored_card
from comity.ledger.commitments import parse_opening
from comity.ledger.keys import log_verifier, witness_verifier
from comity.ledger.models import (
    LogBlock,
    LogCheckpoint,
    LogCosignature,
    LogOpening,
    LogState,
    LogTile,
)
from comity.ledger.storage import (
    HEIGHT,
    TILE,
    LedgerStorageError,
    TileCache,
    TileStore,
    decode_bundle,
    expand_tile,
    tile_layout,
    tile_root,
    tile_width,
)
from comity.problems import Problem

if TYPE_CHECKING:
    from comity.node import Node

__all__ = ["CHUNK_BUNDLES", "MAX_PROBLEMS", "VerifyReport", "verify_log"]

CHUNK_BUNDLES = 64
"""Entry bundles read (and checked) per query: 16,384 entries."""

MAX_PROBLEMS = 1000
"""Problems listed in full; the rest are only counted."""

_PAGE = 500  # checkpoint rows per query
_STATE_ID = 1

# What damaged data can raise while it is parsed, opened or hashed.
_DAMAGE: tuple[type[Exception], ...] = (
    LedgerStorageError, ValueError, RuntimeError, TypeError, KeyError, IndexError, Problem)


@dataclass
class VerifyReport:
    """What :func:`verify_log` checked, and every problem it found."""

    size: int = 0
    checked_tiles: int = 0
    checked_checkpoints: int = 0
    checked_cosignatures: int = 0
    checked_openings: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "size": self.size, "checked_tiles": self.checked_tiles,
                "checked_checkpoints": self.checked_checkpoints,
                "checked_cosignatures": self.checked_cosignatures,
                "checked_openings": self.checked_openings, "problems": list(self.problems)}


def verify_log(node: Node, *, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Recompute ``node``'s log from its entry bundles and check everything stored.

    Args:
        node: the node whose own log is checked.
        progress: called as ``progress(entries_done, size)`` after each chunk
            of entry bundles, with increasing counts ending at ``size``.

    Returns:
        The report; ``report.ok`` is False if anything is damaged.
    """
    verifiers = _log_verifiers(node.local.chain)
    with snapshot_scope(node.sessions) as session:
        return _Verification(session, node.ledger.origin, verifiers, progress).run()


def _log_verifiers(chain: Iterable[NodeCard]) -> list[NoteVerifier]:
    """The log key of every card of the chain, once each."""
    out: dict[tuple[str, bytes], NoteVerifier] = {}
    for card in chain:
        v = log_verifier(card)
        out.setdefault((v.name, v.key_id), v)
    return list(out.values())


def _hashes(data: bytes, width: int) -> list[bytes]:
    return [data[i:i + HASH_SIZE] for i in range(0, width * HASH_SIZE, HASH_SIZE)]


def _root_of(levels: list[list[bytes]]) -> bytes:
    """The tree's root from the right-edge hashes of each tile level (level 0 first)."""
    peaks: list[bytes] = []  # roots of the maximal complete subtrees, left to right
    for hashes in reversed(levels):
        pos = 0
        for bit in range(HEIGHT - 1, -1, -1):
            if len(hashes) >> bit & 1:
                part = hashes[pos:pos + (1 << bit)]
                peaks.append(merkle.subtree_levels(part, bit + 1)[-1][0])
                pos += 1 << bit
    if not peaks:
        return merkle.EMPTY_ROOT
    root = peaks[-1]
    for left in reversed(peaks[:-1]):
        root = merkle.node_hash(left, root)
    return root


def _internal_difference(data: bytes, expected: bytes, width: int) -> tuple[int, int, int]:
    """The first differing internal hash of a tile (level, position), and how many differ."""
    offsets = tile_layout(width)
    found: list[tuple[int, int]] = []
    for k in range(1, HEIGHT):
        for j in range(width >> k):
            at = offsets[k] + j * HASH_SIZE
            if data[at:at + HASH_SIZE] != expected[at:at + HASH_SIZE]:
                found.append((k, j))
    k, j = found[0] if found else (0, 0)
    return k, j, len(found)


def _more(count: int) -> str:
    return f" (and {count} more)" if count > 0 else ""


class _Child(NamedTuple):
    """One hash of a tile above level 0: the root of a full tile below it."""

    expected: bytes  # recomputed from the entries
    stored: bytes | None  # what the stored tile below gives (None: missing or damaged)
    guessed: bool  # the entries below could not be read: ``expected`` is a stand-in


class _Verification:
    def __init__(self, session: Session, origin: str, verifiers: list[NoteVerifier],
                 progress: Callable[[int, int], None] | None) -> None:
        self.session = session
        self.origin = origin
        self.verifiers = verifiers
        self.progress = progress
        self.report = VerifyReport()
        self.omitted = 0
        # A cache of its own, so nothing the ledger cached hides stored damage.
        self.store = TileStore(session, TileCache(capacity=1024))
        # Per tile level (from 1): the hashes of its right-edge tile gathered so far.
        self.gathered: list[list[_Child]] = [[]]
        self.next_tile: list[int] = [0]
        # The recomputed hashes of the final partial tile of each level.
        self.edges: dict[int, list[bytes]] = {}
        self.guessed = False  # some entries were unreadable and had no stand-in
        # Level-0 tiles that disagree with their entry bundle though neither is
        # broken in itself: (tile index, first differing position, how many).
        self.disputed: list[tuple[int, int, int]] = []

    def problem(self, text: str) -> None:
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(text)
        else:
            self.omitted += 1

    def run(self) -> VerifyReport:
        state = self.session.get(LogState, _STATE_ID)
        if state is None:
            self.problem("log state: missing")
            return self.report
        size = int(state.size)
        self.report.size = size
        if not 0 <= size <= int(state.next_index):
            self.problem(f"log state: size {size} is not within 0 and the next index "
                         f"{state.next_index}")
            return self.report
        self.check_entries(size)
        self.check_extra_rows(size)
        tiles_root = self.tiles_root(size)
        signed_root = self.check_state(state, tiles_root)
        signed_row = self.check_checkpoints(size)
        self.settle_disputes(tiles_root, signed_root or signed_row)
        if self.omitted:
            self.report.problems.append(f"... and {self.omitted} more problems")
        return self.report

    # -- entries and tiles ---------------------------------------------------

    def check_entries(self, size: int) -> None:
        """Stream the entry bundles, a chunk per query, checking the tiles they make."""
        bundles = -(-size // TILE)
        if size == 0 and self.progress is not None:
            self.progress(0, 0)
        for first in range(0, bundles, CHUNK_BUNDLES):
            last = min(first + CHUNK_BUNDLES, bundles)
            end = min(last * TILE, size)
            blocks = {int(n): bytes(d or b"") for n, d in self.session.execute(
                select(LogBlock.block, LogBlock.data).where(
                    LogBlock.kind == "e", LogBlock.block >= first, LogBlock.block < last))}
            tiles = {int(n): bytes(d or b"") for n, d in self.session.execute(
                select(LogTile.idx, LogTile.data).where(
                    LogTile.level == 0, LogTile.idx >= first, LogTile.idx < last))}
            openings: dict[int, list[tuple[int, str]]] = {}
            for i, opening in self.session.execute(
                    select(LogOpening.idx, LogOpening.opening).where(
                        LogOpening.idx >= first * TILE, LogOpening.idx < end)
                    .order_by(LogOpening.idx)):
                openings.setdefault(int(i) // TILE, []).append((int(i), str(opening)))
            for n in range(first, last):
                width = min(TILE, size - n * TILE)
                self.check_bundle(n, width, blocks.get(n), tiles.get(n), openings.get(n, []))
            if self.progress is not None:
                self.progress(end, size)
        for level in range(1, len(self.gathered)):
            if self.gathered[level]:
                self.close_tile(level)  # the final partial tile of that level

    def check_bundle(self, n: int, width: int, data: bytes | None, tile: bytes | None,
                     openings: list[tuple[int, str]]) -> None:
        """Check one entry bundle, the openings of its entries, and its level-0 tile."""
        entries: list[bytes] | None = None
        if data is None:
            self.problem(f"entry bundle {n}: missing")
        else:
            try:
                entries = decode_bundle(data)
            except LedgerStorageError as e:
                self.problem(f"entry bundle {n}: {e}")
            else:
                if len(entries) != width:
                    self.problem(f"entry bundle {n}: holds {len(entries)} entries, not {width}")
                    entries = None
        guessed = False
        if entries is not None:
            leaves = [merkle.leaf_hash(e) for e in entries]
        elif tile is not None and len(tile) == tile_layout(width)[-1]:
            # Unreadable entries: go on with the stored hashes as stand-ins, so
            # the rest of the tree is still checked (this tile only for itself).
            leaves = _hashes(tile, width)
        else:
            leaves, guessed = [bytes(HASH_SIZE)] * width, True
            self.guessed = True
        for index, opening in openings:
            self.report.checked_openings += 1
            try:
                commitment = parse_opening(opening).commitment()
            except _DAMAGE as e:
                self.problem(f"entry {index}: its opening is damaged ({e})")
                continue
            pos = index - n * TILE
            if entries is not None:
                if commitment != entries[pos]:
                    self.problem(f"entry {index}: does not match its opening")
            elif not guessed and merkle.leaf_hash(commitment) != leaves[pos]:
                self.problem(f"entry {index}: does not match its opening")
        if width < TILE:
            self.edges[0] = leaves
        self.check_tile(0, n, leaves, tile, [guessed] * width)

    def close_tile(self, level: int) -> None:
        """Check the tile of ``level`` gathered so far (full, or the final partial one)."""
        index = self.next_tile[level]
        children, self.gathered[level] = self.gathered[level], []
        hashes = [c.expected for c in children]
        if len(children) == TILE:
            self.next_tile[level] += 1
        else:
            self.edges[level] = hashes
        data = self.session.scalar(select(LogTile.data).where(LogTile.level == level,
                                                              LogTile.idx == index))
        self.check_tile(level, index, hashes, None if data is None else bytes(data),
                        [c.guessed for c in children], [c.stored for c in children])

    def check_tile(self, level: int, index: int, hashes: list[bytes], data: bytes | None,
                   guessed: list[bool], below: list[bytes | None] | None = None) -> None:
        """Compare one stored tile with its recomputed form; carry a full one upward."""
        self.report.checked_tiles += 1
        expected = expand_tile(hashes)
        sound = self.compare_tile(level, index, hashes, expected, data, guessed, below)
        if len(hashes) == TILE:
            child = _Child(tile_root(expected), tile_root(data) if sound and data else None,
                           any(guessed))
            while len(self.gathered) <= level + 1:
                self.gathered.append([])
                self.next_tile.append(0)
            self.gathered[level + 1].append(child)
            if len(self.gathered[level + 1]) == TILE:
                self.close_tile(level + 1)

    def compare_tile(self, level: int, index: int, hashes: list[bytes], expected: bytes,
                     data: bytes | None, guessed: list[bool],
                     below: list[bytes | None] | None) -> bool:
        """Report how a stored tile differs from ``expected``; True if it is sound in itself."""
        if data == expected:
            return True
        name = f"tile {level}/{index}"
        width = len(hashes)
        if data is None:
            self.problem(f"{name}: missing")
            return False
        try:
            stored_width = tile_width(data)
        except LedgerStorageError:
            self.problem(f"{name}: wrong width ({len(data)} bytes is no tile's length)")
            return False
        if stored_width != width:
            self.problem(f"{name}: wrong width ({stored_width} hashes, not {width})")
            return False
        stored = _hashes(data, width)
        # Above level 0, a hash equal to the root of the stored tile below only
        # repeats a difference found there; one that differs from it is damage
        # here. A stand-in for unreadable entries proves nothing either way.
        differ = [j for j in range(width) if stored[j] != hashes[j] and (
            below[j] != stored[j] if below is not None and below[j] is not None
            else not guessed[j])]
        if expand_tile(stored) != data:
            if differ:
                self.problem(f"{name}: stored hash {differ[0]} at level 0 differs"
                             + _more(len(differ) - 1))
            else:
                k, j, count = _internal_difference(data, expand_tile(stored), width)
                self.problem(f"{name}: stored hash {j} at internal level {k} differs"
                             + _more(count - 1))
            return False
        if not differ:
            return True
        if level == 0:
            # Sound in itself, yet not made of these entries: the signed
            # checkpoint will tell whether the tile or the bundle changed.
            self.disputed.append((index, differ[0], len(differ)))
        else:
            self.problem(f"{name}: stored hash {differ[0]} at level 0 differs"
                         + _more(len(differ) - 1))
        return True

    def check_extra_rows(self, size: int) -> None:
        """Entry bundles and tiles stored beyond the tree of ``size``."""
        bundles = -(-size // TILE)
        for block in self.session.scalars(
                select(LogBlock.block).where(LogBlock.kind == "e", or_(
                    LogBlock.block < 0, LogBlock.block >= bundles))
                .order_by(LogBlock.block).limit(MAX_PROBLEMS)):
            self.problem(f"entry bundle {block}: beyond the log's size {size}")
        counts = []  # tiles per tile level
        count = size
        while count:
            counts.append(-(-count // TILE))
            count //= TILE
        outside = or_(LogTile.level < 0, LogTile.level >= len(counts), *(
            and_(LogTile.level == level, or_(LogTile.idx < 0, LogTile.idx >= n))
            for level, n in enumerate(counts)))
        for level, index in self.session.execute(
                select(LogTile.level, LogTile.idx).where(outside)
                .order_by(LogTile.level, LogTile.idx).limit(MAX_PROBLEMS)):
            self.problem(f"tile {level}/{index}: beyond the log's size {size}")

    # -- roots and checkpoints -----------------------------------------------

    def tiles_root(self, size: int) -> bytes | None:
        """The root of the tree of ``size`` as the stored tiles give it."""
        try:
            return merkle.tree_hash(size, self.store)
        except _DAMAGE as e:
            self.problem(f"log state: its root cannot be read from the tiles ({e})")
            return None

    def open_checkpoint(self, prefix: str, text: str) -> Checkpoint | None:
        """A checkpoint signed by a key of this node's chain, or None (reported)."""
        try:
            note = open_note(text.encode(), self.verifiers)
            checkpoint = parse_checkpoint(note.text)
        except NoteSignatureError:
            self.problem(f"{prefix}signature does not verify")
            return None
        except UnverifiedNoteError:
            self.problem(f"{prefix}not signed by any key of this node")
            return None
        except _DAMAGE as e:
            self.problem(f"{prefix}malformed ({e})")
            return None
        if checkpoint.origin not in {sig.name for sig in note.signatures}:
            self.problem(f"{prefix}signed for origin {checkpoint.origin!r} by another name")
            return None
        return checkpoint

    def check_state(self, state: LogState, tiles_root: bytes | None) -> bytes | None:
        """Check ``log_state``; returns the root its checkpoint signs, if it verifies."""
        size = int(state.size)
        root = bytes(state.root or b"")
        if len(root) != HASH_SIZE:
            self.problem(f"log state: root is {len(root)} bytes, not {HASH_SIZE}")
        elif tiles_root is not None and root != tiles_root:
            self.problem("log state: root differs from the tiles")
        checkpoint = self.open_checkpoint("log state: checkpoint ", str(state.checkpoint))
        if checkpoint is None:
            return None
        if checkpoint.origin != self.origin:
            self.problem(f"log state: checkpoint is for origin {checkpoint.origin!r}, "
                         f"not {self.origin!r}")
        if checkpoint.size != size:
            self.problem(f"log state: checkpoint is for size {checkpoint.size}, not {size}")
            return None
        if checkpoint.root_hash != root:
            self.problem("log state: root differs from its signed checkpoint")
        return checkpoint.root_hash

    def check_checkpoints(self, size: int) -> bytes | None:
        """Check every signed checkpoint and its cosignatures, a page at a time.

        Returns the root signed for ``size`` in ``log_checkpoints``, if it verifies.
        """
        signed: bytes | None = None
        found = False
        peers: dict[str, list[CosignatureVerifier] | str] = {}
        last: int | None = None
        while True:
            query = select(LogCheckpoint.size, LogCheckpoint.root, LogCheckpoint.checkpoint)
            if last is not None:
                query = query.where(LogCheckpoint.size > last)
            rows = [(int(n), bytes(r or b""), str(t)) for n, r, t in self.session.execute(
                query.order_by(LogCheckpoint.size).limit(_PAGE))]
            texts: dict[int, str] = {}
            for row_size, root, text in rows:
                texts[row_size] = text
                root_signed = self.check_checkpoint(row_size, root, text, size)
                if row_size == size:
                    found, signed = True, root_signed
            cosigned = select(LogCosignature.size, LogCosignature.witness_id, LogCosignature.line)
            if last is not None:
                cosigned = cosigned.where(LogCosignature.size > last)
            if rows:
                cosigned = cosigned.where(LogCosignature.size <= rows[-1][0])
            for n, peer_id, line in self.session.execute(
                    cosigned.order_by(LogCosignature.size, LogCosignature.witness_id)):
                self.check_cosignature(int(n), str(peer_id), str(line), texts.get(int(n)), peers)
            if not rows:
                break
            last = rows[-1][0]
        if not found:
            self.problem(f"checkpoint {size}: missing (the log state's size)")
        return signed

    def check_checkpoint(self, row_size: int, root: bytes, text: str, size: int) -> bytes | None:
        """Check one ``log_checkpoints`` row; returns its signed root if all is well."""
        self.report.checked_checkpoints += 1
        prefix = f"checkpoint {row_size}: "
        if not 0 <= row_size <= size:
            self.problem(f"{prefix}beyond the log's size {size}")
            return None
        checkpoint = self.open_checkpoint(prefix, text)
        if checkpoint is None:
            return None
        if checkpoint.size != row_size:
            self.problem(f"{prefix}its signed text is for size {checkpoint.size}")
            return None
        if checkpoint.root_hash != root:
            self.problem(f"{prefix}stored root differs from its signed text")
        try:
            from_tiles = merkle.tree_hash(row_size, self.store)
        except _DAMAGE as e:
            self.problem(f"{prefix}its root cannot be read from the tiles ({e})")
            return checkpoint.root_hash
        if from_tiles != checkpoint.root_hash:
            self.problem(f"{prefix}root differs from the tiles")
        return checkpoint.root_hash

    def check_cosignature(self, size: int, peer_id: str, line: str, text: str | None,
                          peers: dict[str, list[CosignatureVerifier] | str]) -> None:
        self.report.checked_cosignatures += 1
        prefix = f"cosignature of checkpoint {size} by {peer_id}: "
        if text is None:
            self.problem(f"{prefix}no checkpoint of that size")
            return
        keys = peers.get(peer_id)
        if keys is None:
            keys = peers[peer_id] = self.witness_keys(peer_id)
        if isinstance(keys, str):
            self.problem(prefix + keys)
            return
        try:
            note = add_signature_lines(text.encode(), [line])
        except _DAMAGE as e:
            self.problem(f"{prefix}malformed ({e})")
            return
        for key in keys:  # one at a time: a peer's cards share one cosigner name
            try:
                if key.name in cosignatures(note, [key]):
                    return
            except _DAMAGE:
                continue
        self.problem(f"{prefix}does not verify")

    def witness_keys(self, peer_id: str) -> list[CosignatureVerifier] | str:
        """The witness key of each stored card of the peer, or why there is none."""
        raws = list(self.session.scalars(select(PeerCard.card).where(
            PeerCard.node_id == peer_id).order_by(PeerCard.serial)))
        if not raws:
            return "no card of that peer"
        keys: list[CosignatureVerifier] = []
        errors: list[str] = []
        for raw in raws:
            try:
                keys.append(witness_verifier(stored_card(bytes(raw))))
            except _DAMAGE as e:
                errors.append(str(e))
        return keys or f"no readable card of that peer ({errors[0]})"

    # -- tiles against bundles -----------------------------------------------

    def settle_disputes(self, tiles_root: bytes | None, signed_root: bytes | None) -> None:
        """Blame the tile or the bundle where a sound tile and its bundle disagree."""
        if not self.disputed:
            return
        levels = [self.edges.get(level, []) for level in range(max(self.edges, default=-1) + 1)]
        recomputed = None if self.guessed else _root_of(levels)
        for index, first, count in self.disputed:
            more = _more(count - 1)
            entry = f"entry {first} (index {index * TILE + first})"
            if signed_root is not None and recomputed == signed_root:
                self.problem(f"tile 0/{index}: stored hash {first} at level 0 differs{more}")
            elif signed_root is not None and tiles_root == signed_root:
                self.problem(f"entry bundle {index}: {entry} is not the one the log signed "
                             f"(tile 0/{index} holds another hash){more}")
            else:
                self.problem(f"entry bundle {index}: {entry} and tile 0/{index} disagree, "
                             f"and no signed checkpoint tells which is damaged{more}")
