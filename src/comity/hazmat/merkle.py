"""DANGER: RFC 6962 / RFC 9162 Merkle tree hashing, proof generation and proof checks.

This module is the arithmetic core of the node's ledger. A single wrong
prefix, split point or loop bound here lets a log rewrite history, or lets a
forged proof pass, without any other part of Comity noticing. Application code
should use the ledger's high-level recipes, never these functions directly.

Role: pure functions, no database, HTTP or logging. Hashing follows RFC 6962
(leaves are ``SHA-256(0x00 || data)``, interior nodes
``SHA-256(0x01 || left || right)``, the empty tree is ``SHA-256("")``). Proofs
are generated over a one-method storage protocol, :class:`HashReader`, that
reads the hashes of complete subtrees by ``(level, n)``; how they are stored
is the caller's business (the ledger keeps them as C2SP tiles, built with
:func:`subtree_levels`). Verification implements RFC 9162 §2.1.3.2 and
§2.1.4.2 step for step.

Trust assumptions: a :class:`HashReader` is the node's own storage and is
trusted to return what was stored (its answer is still checked for shape).
Everything passed to ``verify_*`` is untrusted. The verifiers never return a
bool: they return ``None`` or raise :class:`ProofError`, and they accept only
hashes of exactly 32 bytes.

Example::

    class Levels:
        def __init__(self, leaf_hashes: list[bytes]) -> None:
            self.levels = subtree_levels(leaf_hashes, max(1, len(leaf_hashes).bit_length()))

        def read_nodes(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
            return [self.levels[level][n] for level, n in nodes]

    reader = Levels([leaf_hash(e) for e in entries])
    root = tree_hash(len(entries), reader)
    proof = inclusion_proof(3, len(entries), reader)
    verify_inclusion(leaf_hash(entries[3]), 3, len(entries), proof, root)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "HashReader",
    "ProofError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "subtree_levels",
    "tree_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

MAX_TREE_SIZE = 2**64 - 1
"""Largest tree size accepted: RFC 9162 encodes sizes as uint64."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""Root of the empty tree: SHA-256 of the empty string, not a leaf hash."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class ProofError(ValueError):
    """A Merkle proof, or a hash or size given with it, failed verification."""


class HashReader(Protocol):
    """Read access to the hashes of complete subtrees.

    Node ``(level, n)`` is the root of the complete subtree over records
    ``n * 2**level`` to ``(n + 1) * 2**level - 1``; level 0 holds leaf hashes.
    """

    def read_nodes(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
        """Return the hash of each ``(level, n)`` in ``nodes``, in the same order."""
        ...


def leaf_hash(data: bytes) -> bytes:
    """Hash a record as a tree leaf: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two child hashes into their parent: ``SHA-256(0x01 || left || right)``.

    Raises:
        ValueError: if either child is not exactly 32 bytes.
    """
    if len(left) != HASH_SIZE or len(right) != HASH_SIZE:
        raise ValueError(f"child hashes must be {HASH_SIZE} bytes")
    return _node(left, right)


def _node(left: bytes, right: bytes) -> bytes:
    """:func:`node_hash` for inputs whose length the caller already checked."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def subtree_levels(nodes: Sequence[bytes], height: int) -> list[list[bytes]]:
    """The complete subtrees above ``nodes``, level by level, ``height`` levels in all.

    ``nodes`` are consecutive hashes at one level, the first at an even
    position (a C2SP tile's hashes, for instance). Level 0 of the answer is
    ``nodes`` itself; level ``k`` holds the parents of adjacent pairs of
    level ``k - 1``, so its length is ``len(nodes) >> k``. An unpaired last
    hash has no parent yet and gets none.

    Raises:
        ValueError: if a hash is not 32 bytes or ``height`` is below 1.
    """
    if height < 1:
        raise ValueError("a subtree has at least one level")
    if any(len(h) != HASH_SIZE for h in nodes):
        raise ValueError(f"hashes must be {HASH_SIZE} bytes")
    levels = [list(nodes)]
    sha = hashlib.sha256
    for _ in range(height - 1):
        below = levels[-1]
        levels.append([sha(_NODE_PREFIX + below[i] + below[i + 1]).digest()
                       for i in range(0, len(below) - 1, 2)])
    return levels


def tree_hash(size: int, reader: HashReader) -> bytes:
    """The root hash (RFC 6962 MTH) of the first ``size`` records.

    Raises:
        ValueError: if ``size`` is negative or exceeds :data:`MAX_TREE_SIZE`.
        RuntimeError: if ``reader`` breaks its contract.
    """
    _check_size(size)
    if size == 0:
        return EMPTY_ROOT
    return _range_hashes([(0, size)], reader)[0]


def inclusion_proof(index: int, size: int, reader: HashReader) -> list[bytes]:
    """The RFC 6962 audit path proving record ``index`` is in the tree of ``size``.

    The path runs from the leaf's sibling up to a child of the root.

    Raises:
        ValueError: if ``index`` is not inside a tree of ``size`` records.
        RuntimeError: if ``reader`` breaks its contract.
    """
    _check_size(size)
    if not 0 <= index < size:
        raise ValueError(f"record {index} is not in a tree of size {size}")
    # Split from the top only while the part holding the record is not a
    # complete subtree; inside a complete subtree of 2**k records the path is
    # simply the sibling at each level below k, stored as it is.
    upper: list[tuple[int, int]] = []
    lo, hi = 0, size
    while (hi - lo) & (hi - lo - 1):
        mid = lo + _split(hi - lo)
        if index < mid:
            upper.append((mid, hi))
            hi = mid
        else:
            upper.append((lo, mid))
            lo = mid
    siblings = [(level, (index >> level) ^ 1) for level in range((hi - lo).bit_length() - 1)]
    upper.reverse()
    parts = [_complete_subtrees(a, b) for a, b in upper]
    stored = _read(reader, siblings + [node for part in parts for node in part])
    proof = stored[:len(siblings)]
    end = len(siblings)
    for part in parts:
        start, end = end, end + len(part)
        root = stored[end - 1]
        for left in reversed(stored[start:end - 1]):
            root = _node(left, root)
        proof.append(root)
    return proof


def consistency_proof(old_size: int, new_size: int, reader: HashReader) -> list[bytes]:
    """The RFC 6962 proof that the tree of ``old_size`` is a prefix of ``new_size``.

    A proof from the empty tree is meaningless and is refused here, as in
    transparency-dev/merkle; the tlog-witness layer special-cases old size 0.

    Raises:
        ValueError: unless ``0 < old_size <= new_size <= MAX_TREE_SIZE``.
        RuntimeError: if ``reader`` breaks its contract.
    """
    _check_size(new_size)
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    return _range_hashes(_consistency_ranges(old_size, new_size), reader)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof, as RFC 9162 §2.1.3.2.

    Args:
        leaf_hash: the :func:`leaf_hash` of the record (untrusted).
        index: the record's zero-based position (untrusted).
        size: the size of the tree whose root is ``root``.
        proof: the audit path, leaf side first (untrusted).
        root: the trusted root hash of the tree of ``size``.

    Raises:
        ProofError: if any hash is not 32 bytes, ``index`` is not inside the
            tree, the proof has the wrong length, or it leads to another root.
    """
    _check_hashes(leaf_hash, root, *proof)
    if not 0 <= index < size <= MAX_TREE_SIZE:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    if _root_from_inclusion(leaf_hash, index, size, proof) != root:
        raise ProofError("inclusion proof leads to a different root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check a consistency proof, as RFC 9162 §2.1.4.2.

    Equal sizes need an empty proof and equal roots (and size 0 the empty-tree
    root). A proof from old size 0 is refused: it proves nothing, and the
    witness protocol handles that case itself.

    Raises:
        ProofError: if any hash is not 32 bytes, the sizes are out of order or
            range, or the proof does not link ``old_root`` to ``new_root``.
    """
    _check_hashes(old_root, new_root, *proof)
    if not 0 <= old_size <= new_size <= MAX_TREE_SIZE:
        raise ProofError(f"no consistency from size {old_size} to size {new_size}")
    if old_size == new_size:
        _verify_same_tree(old_size, old_root, new_root, proof)
        return
    if old_size == 0:
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if not proof:
        raise ProofError("consistency proof is empty")
    old_calc, new_calc = _roots_from_consistency(old_size, new_size, old_root, proof)
    if old_calc != old_root:
        raise ProofError("consistency proof does not match the old root")
    if new_calc != new_root:
        raise ProofError("consistency proof leads to a different new root")


def _verify_same_tree(size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """The trivial consistency case: a tree is consistent only with itself."""
    if proof:
        raise ProofError("consistency proof between equal sizes must be empty")
    if old_root != new_root:
        raise ProofError("different roots for the same tree size")
    if size == 0 and old_root != EMPTY_ROOT:
        raise ProofError("the empty tree has only one root")


def _root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2 steps 2 to 5, except the final root comparison."""
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            # On the right edge, skip the levels where this node has no sibling.
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def _roots_from_consistency(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 2 to 7: the (old, new) roots the proof implies."""
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # The old tree is one complete subtree, so the proof omits its root.
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    return fr, sr


def _check_hashes(*hashes: bytes) -> None:
    """Refuse any untrusted hash that is not exactly 32 bytes."""
    for h in hashes:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ProofError(f"hashes must be {HASH_SIZE} bytes")


def _check_size(size: int) -> None:
    """Refuse a tree size outside ``0 .. MAX_TREE_SIZE`` (a caller bug)."""
    if not 0 <= size <= MAX_TREE_SIZE:
        raise ValueError(f"tree size {size} is out of range")


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (for ``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Record ranges whose MTH form RFC 6962 ``PROOF(old_size, D[0:new_size])``."""
    ranges: list[tuple[int, int]] = []
    lo, hi, whole_old_tree = 0, new_size, True
    while hi != old_size:
        mid = lo + _split(hi - lo)
        if old_size <= mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo, whole_old_tree = mid, False
    if not whole_old_tree:
        # SUBPROOF(m, D[m], false): the verifier cannot rebuild this subtree.
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def _range_hashes(ranges: Sequence[tuple[int, int]], reader: HashReader) -> list[bytes]:
    """MTH of each record range ``[lo, hi)``, read from storage in one call.

    Every range must start at a multiple of the largest power of two not above
    its length, which holds for all ranges of RFC 6962 proofs and roots.
    """
    parts = [_complete_subtrees(lo, hi) for lo, hi in ranges]
    stored = _read(reader, [node for part in parts for node in part])
    result: list[bytes] = []
    end = 0
    for part in parts:
        start, end = end, end + len(part)
        chunk = stored[start:end]
        root = chunk[-1]
        for left in reversed(chunk[:-1]):
            root = _node(left, root)
        result.append(root)
    return result


def _complete_subtrees(lo: int, hi: int) -> list[tuple[int, int]]:
    """Split ``[lo, hi)`` into maximal complete subtrees ``(level, n)``, left first."""
    size = hi - lo
    if size & (size - 1) == 0:  # one complete subtree: most ranges of a proof
        level = size.bit_length() - 1
        return [(level, lo >> level)]
    subtrees: list[tuple[int, int]] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        subtrees.append((level, lo >> level))
        lo += 1 << level
    return subtrees


def _read(reader: HashReader, nodes: list[tuple[int, int]]) -> list[bytes]:
    """Read ``nodes`` from ``reader`` and check the answer's shape."""
    if not nodes:
        return []
    hashes = reader.read_nodes(nodes)
    if len(hashes) != len(nodes) or any(len(h) != HASH_SIZE for h in hashes):
        raise RuntimeError("hash reader returned the wrong number or size of hashes")
    return list(hashes)
