"""Merkle core: reference vectors, an RFC 6962 model, and tampering with every proof bit."""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comity.hazmat.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    subtree_levels,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "merkle"

# The reference accepts this vector although its "roots" are 12 bytes long
# ("don't care 2"); Comity requires every hash to be exactly 32 bytes, so it
# must be refused here. test_equal_sizes_need_no_proof covers the same case
# with real hashes.
STRICTER_THAN_REFERENCE = {"consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"}


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _load(kind: str) -> list[Any]:
    return [
        pytest.param(path.relative_to(VECTORS).as_posix(), json.loads(path.read_text()),
                     id=path.relative_to(VECTORS / kind).as_posix())
        for path in sorted((VECTORS / kind).rglob("*.json"))
    ]


INCLUSION = _load("inclusion")
CONSISTENCY = _load("consistency")


def _go_function(name: str) -> str:
    text = (VECTORS / "constants.go.txt").read_text()
    return text.split(f"func {name}()", 1)[1].split("\nfunc ", 1)[0]


def _go_hex(body: str) -> list[bytes]:
    return [bytes.fromhex(h) for h in re.findall(r'hd\("([0-9a-f]*)"\)', body)]


LEAVES = _go_hex(_go_function("LeafInputs"))
NODE_HASHES = [_go_hex(level) for level in _go_function("NodeHashes").split("}, {")]
ROOTS = [EMPTY_ROOT, *_go_hex(_go_function("RootHashes"))]


class LevelReader:
    """In-memory storage of every complete subtree of a tree; a missing node raises."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        height = max(1, len(leaf_hashes).bit_length())
        self.levels = subtree_levels(leaf_hashes, height)

    def read_nodes(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
        return [self.levels[level][n] for level, n in nodes]


def _reader_at(leaf_hashes: Sequence[bytes], size: int) -> LevelReader:
    """A reader that holds only what storage held when the tree had ``size`` leaves."""
    return LevelReader(leaf_hashes[:size])


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# The vectors.


def test_all_vectors_are_present() -> None:
    assert len(INCLUSION) == 98
    assert len(CONSISTENCY) == 98
    assert (len(LEAVES), [len(level) for level in NODE_HASHES], len(ROOTS)) == (8, [8, 4, 2, 1], 9)


@pytest.mark.parametrize(("name", "vector"), INCLUSION)
def test_inclusion_vector(name: str, vector: dict[str, Any]) -> None:
    args = (_b64(vector["leafHash"]), vector["leafIdx"], vector["treeSize"],
            [_b64(p) for p in vector["proof"] or []], _b64(vector["root"]))
    if vector["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize(("name", "vector"), CONSISTENCY)
def test_consistency_vector(name: str, vector: dict[str, Any]) -> None:
    args = (vector["size1"], vector["size2"], _b64(vector["root1"]), _b64(vector["root2"]),
            [_b64(p) for p in vector["proof"] or []])
    if vector["wantErr"] or name in STRICTER_THAN_REFERENCE:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_the_one_vector_we_refuse_is_refused_for_its_short_hashes() -> None:
    (vector,) = [p.values[1] for p in CONSISTENCY if p.values[0] in STRICTER_THAN_REFERENCE]
    assert vector["wantErr"] is False
    with pytest.raises(ProofError, match="32 bytes"):
        verify_consistency(vector["size1"], vector["size2"], _b64(vector["root1"]),
                           _b64(vector["root2"]), [])


# The reference tree of constants.go.


REF_LEAVES = [leaf_hash(leaf) for leaf in LEAVES]


def test_known_hashes() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex().startswith("6e340b9c")
    assert node_hash(NODE_HASHES[0][0], NODE_HASHES[0][1]) == NODE_HASHES[1][0]
    assert [leaf_hash(leaf) for leaf in LEAVES] == NODE_HASHES[0]


def test_subtree_levels_are_the_reference_node_hashes() -> None:
    assert subtree_levels(NODE_HASHES[0], 4) == NODE_HASHES
    # An unpaired last hash gets no parent; a partial tile's levels shrink by half.
    levels = subtree_levels(NODE_HASHES[0][:7], 4)
    assert [len(level) for level in levels] == [7, 3, 1, 0]
    assert levels[1] == NODE_HASHES[1][:3]


@pytest.mark.parametrize("size", range(9))
def test_tree_hash_matches_reference_roots(size: int) -> None:
    assert tree_hash(size, _reader_at(REF_LEAVES, size)) == ROOTS[size]


def test_generated_proofs_equal_the_vectors_happy_paths() -> None:
    checked = 0
    for param in INCLUSION:
        v = param.values[1]
        size, index = v["treeSize"], v["leafIdx"]
        if v["wantErr"] or size > 8 or _b64(v["root"]) != ROOTS[size]:
            continue
        assert _b64(v["leafHash"]) == leaf_hash(LEAVES[index])
        reader = _reader_at(REF_LEAVES, size)
        assert inclusion_proof(index, size, reader) == [_b64(p) for p in v["proof"] or []]
        checked += 1
    for param in CONSISTENCY:
        v = param.values[1]
        old, new = v["size1"], v["size2"]
        if v["wantErr"] or new > 8 or _b64(v["root2"]) != ROOTS[new]:
            continue
        assert _b64(v["root1"]) == ROOTS[old]
        reader = _reader_at(REF_LEAVES, new)
        assert consistency_proof(old, new, reader) == [_b64(p) for p in v["proof"] or []]
        checked += 1
    assert checked == 10  # The five inclusion and five consistency base cases of proofgen.


# Argument checking: caller bugs are ValueError, bad proofs ProofError.


def test_generators_refuse_impossible_arguments() -> None:
    reader = _reader_at(REF_LEAVES, 8)
    bad_calls = [
        lambda: inclusion_proof(8, 8, reader),
        lambda: inclusion_proof(-1, 8, reader),
        lambda: consistency_proof(0, 5, reader),
        lambda: consistency_proof(6, 5, reader),
        lambda: tree_hash(-1, reader),
        lambda: tree_hash(2**64, reader),
        lambda: subtree_levels([b"\x00" * 32], 0),
        lambda: subtree_levels([b"\x00" * 31], 2),
        lambda: node_hash(b"\x00" * 32, b"\x00" * 33),
    ]
    for call in bad_calls:
        with pytest.raises(ValueError):
            call()


def test_a_reader_that_breaks_its_contract_is_caught() -> None:
    FULL = _reader_at(REF_LEAVES, 8)

    class Short:
        def read_nodes(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
            return FULL.read_nodes(nodes)[:-1]

    class Truncated:
        def read_nodes(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
            return [h[:31] for h in FULL.read_nodes(nodes)]

    for reader in (Short(), Truncated()):
        with pytest.raises(RuntimeError):
            tree_hash(7, reader)


def test_verifiers_require_32_byte_hashes_everywhere() -> None:
    reader = _reader_at(REF_LEAVES, 8)
    proof = inclusion_proof(5, 8, reader)
    leaf = leaf_hash(LEAVES[5])
    verify_inclusion(leaf, 5, 8, proof, ROOTS[8])
    for bad in (b"", leaf[:31], leaf + b"\x00"):
        with pytest.raises(ProofError, match="32 bytes"):
            verify_inclusion(bad, 5, 8, proof, ROOTS[8])
        with pytest.raises(ProofError, match="32 bytes"):
            verify_inclusion(leaf, 5, 8, [*proof[:-1], bad], ROOTS[8])
        with pytest.raises(ProofError, match="32 bytes"):
            verify_consistency(8, 8, bad, bad, [])


def test_sizes_out_of_range_are_refused() -> None:
    leaf, root = leaf_hash(LEAVES[0]), ROOTS[1]
    for index, size in [(-1, 1), (1, 1), (0, 0), (0, 2**64)]:
        with pytest.raises(ProofError, match="outside"):
            verify_inclusion(leaf, index, size, [], root)
    for old, new in [(-1, 1), (2, 1), (1, 2**64)]:
        with pytest.raises(ProofError, match="no consistency"):
            verify_consistency(old, new, root, root, [])


def test_equal_sizes_need_no_proof() -> None:
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(5, 5, ROOTS[5], ROOTS[5], [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(5, 5, ROOTS[5], ROOTS[5], [ROOTS[5]])
    with pytest.raises(ProofError, match="different roots"):
        verify_consistency(5, 5, ROOTS[5], ROOTS[6], [])
    with pytest.raises(ProofError, match="empty tree"):
        verify_consistency(0, 0, ROOTS[5], ROOTS[5], [])


def test_a_proof_from_the_empty_tree_is_refused() -> None:
    with pytest.raises(ProofError, match="empty tree"):
        verify_consistency(0, 8, EMPTY_ROOT, ROOTS[8], [])
    with pytest.raises(ProofError, match="is empty"):
        verify_consistency(3, 8, ROOTS[3], ROOTS[8], [])


# An independent RFC 6962 model over a larger tree, and tampering.


MAX_SIZE = 300
BIG_LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_SIZE)]



def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@functools.cache
def _mth(lo: int, hi: int) -> bytes:
    if hi == lo:
        return EMPTY_ROOT
    if hi - lo == 1:
        return BIG_LEAVES[lo]
    k = _k(hi - lo)
    return node_hash(_mth(lo, lo + k), _mth(lo + k, hi))


def _path(m: int, lo: int, hi: int) -> list[bytes]:
    if hi - lo == 1:
        return []
    k = _k(hi - lo)
    if m < k:
        return [*_path(m, lo, lo + k), _mth(lo + k, hi)]
    return [*_path(m - k, lo + k, hi), _mth(lo, lo + k)]


def _subproof(m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
    if m == hi - lo:
        return [] if whole else [_mth(lo, hi)]
    k = _k(hi - lo)
    if m <= k:
        return [*_subproof(m, lo, lo + k, whole), _mth(lo + k, hi)]
    return [*_subproof(m - k, lo + k, hi, False), _mth(lo, lo + k)]


def _big_reader(size: int) -> LevelReader:
    return _reader_at(BIG_LEAVES, size)


def test_every_inclusion_proof_of_small_trees_matches_the_model() -> None:
    for size in range(1, 70):
        reader = _big_reader(size)
        for index in range(size):
            assert inclusion_proof(index, size, reader) == _path(index, 0, size), (index, size)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_inclusion_proofs_match_the_model_and_resist_bit_flips(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, MAX_SIZE))
    index = data.draw(st.integers(0, size - 1))
    reader = _big_reader(size)
    root = tree_hash(size, reader)
    assert root == _mth(0, size)
    proof = inclusion_proof(index, size, reader)
    assert proof == _path(index, 0, size)
    verify_inclusion(BIG_LEAVES[index], index, size, proof, root)

    fields = [BIG_LEAVES[index], root, *proof]
    bit = data.draw(st.integers(0, len(fields) * HASH_SIZE * 8 - 1))
    which, offset = divmod(bit, HASH_SIZE * 8)
    fields[which] = _flip(fields[which], offset)
    with pytest.raises(ProofError):
        verify_inclusion(fields[0], index, size, fields[2:], fields[1])

    if size > 1:
        # The same proof, claimed for another leaf position, must not verify.
        other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
        with pytest.raises(ProofError):
            verify_inclusion(BIG_LEAVES[index], other, size, proof, root)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_consistency_proofs_match_the_model_and_resist_bit_flips(data: st.DataObject) -> None:
    new = data.draw(st.integers(1, MAX_SIZE))
    old = data.draw(st.integers(1, new))
    reader = _big_reader(new)
    old_root, new_root = tree_hash(old, _big_reader(old)), tree_hash(new, reader)
    proof = consistency_proof(old, new, reader)
    assert proof == _subproof(old, 0, new, True)
    verify_consistency(old, new, old_root, new_root, proof)

    fields = [old_root, new_root, *proof]
    bit = data.draw(st.integers(0, len(fields) * HASH_SIZE * 8 - 1))
    which, offset = divmod(bit, HASH_SIZE * 8)
    fields[which] = _flip(fields[which], offset)
    with pytest.raises(ProofError):
        verify_consistency(old, new, fields[0], fields[1], fields[2:])


def test_every_bit_of_one_inclusion_proof_matters() -> None:
    size, index = MAX_SIZE, 123
    root, leaf = _mth(0, size), BIG_LEAVES[index]
    proof = inclusion_proof(index, size, _big_reader(size))
    verify_inclusion(leaf, index, size, proof, root)
    for which in range(len(proof)):
        for bit in range(HASH_SIZE * 8):
            tampered = [*proof]
            tampered[which] = _flip(proof[which], bit)
            with pytest.raises(ProofError):
                verify_inclusion(leaf, index, size, tampered, root)
    for bit in range(HASH_SIZE * 8):
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, proof, _flip(root, bit))
    with pytest.raises(ProofError, match="too short"):
        verify_inclusion(leaf, index, size, proof[:-1], root)
    for too_long in ([*proof, proof[0]], [proof[0], *proof]):
        with pytest.raises(ProofError, match="too long"):
            verify_inclusion(leaf, index, size, too_long, root)


def test_every_bit_of_one_consistency_proof_matters() -> None:
    old, new = 77, MAX_SIZE
    old_root, new_root = _mth(0, old), _mth(0, new)
    proof = consistency_proof(old, new, _big_reader(new))
    verify_consistency(old, new, old_root, new_root, proof)
    for which in range(len(proof)):
        for bit in range(HASH_SIZE * 8):
            tampered = [*proof]
            tampered[which] = _flip(proof[which], bit)
            with pytest.raises(ProofError):
                verify_consistency(old, new, old_root, new_root, tampered)
    for bit in range(HASH_SIZE * 8):
        with pytest.raises(ProofError):
            verify_consistency(old, new, _flip(old_root, bit), new_root, proof)
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, _flip(new_root, bit), proof)
    with pytest.raises(ProofError, match="too short"):
        verify_consistency(old, new, old_root, new_root, proof[:-1])
    for too_long in ([*proof, proof[0]], [proof[0], *proof]):
        with pytest.raises(ProofError, match="too long"):
            verify_consistency(old, new, old_root, new_root, too_long)
