"""tlog proofs (c2sp.org/tlog-proof@v1): encoding, strict parsing, and verification."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from comity.hazmat.merkle import (
    ProofError,
    inclusion_proof,
    leaf_hash,
    subtree_levels,
    tree_hash,
)
from comity.hazmat.note import (
    Checkpoint,
    CosignatureSigner,
    NoteSignatureError,
    NoteSigner,
    UnverifiedNoteError,
    add_signature_lines,
    sign_note,
)
from comity.hazmat.tlogproof import (
    MAX_PROOF_HASHES,
    MAX_TLOG_PROOF_BYTES,
    TlogProof,
    TlogProofError,
    VerifiedTlogProof,
    parse_tlog_proof,
    verify_tlog_proof,
)


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


class _Levels:
    def __init__(self, leaves: list[bytes]) -> None:
        self.levels = subtree_levels(leaves, max(1, len(leaves).bit_length()))

    def read_nodes(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
        return [self.levels[level][n] for level, n in nodes]


LOG = NoteSigner("example.com/log", _key(1))
WITNESSES = [CosignatureSigner(f"witness{i}.example", _key(10 + i)) for i in range(3)]
TRUSTED = [w.verifier for w in WITNESSES]

RECORDS = [f"record {i}".encode() for i in range(7)]
LEAVES = [leaf_hash(r) for r in RECORDS]
READER = _Levels(LEAVES)
SIZE = len(RECORDS)
ROOT = tree_hash(SIZE, READER)
INDEX = 3
HASHES = tuple(inclusion_proof(INDEX, SIZE, READER))

TEXT = Checkpoint(LOG.name, SIZE, ROOT).to_text()
SIGNED = sign_note(TEXT, [LOG])
COSIGNED = add_signature_lines(SIGNED, [w.cosign(TEXT, 1000 + i) for i, w in enumerate(WITNESSES)])
PROOF = TlogProof(INDEX, HASHES, COSIGNED)
ENCODED = PROOF.to_bytes()

HEADER = b"c2sp.org/tlog-proof@v1\n"


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def _head(*lines: bytes) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def _encode(index: bytes, hashes: Sequence[bytes], checkpoint: bytes = COSIGNED) -> bytes:
    return HEADER + _head(b"index " + index, *hashes) + b"\n" + checkpoint


GOOD_HASHES = [_b64(h) for h in HASHES]
URLSAFE = bytes.maketrans(b"+/", b"-_")


# Encoding.


def test_to_bytes_is_the_documented_layout() -> None:
    assert len(HASHES) == 3
    expected = (
        b"c2sp.org/tlog-proof@v1\n"
        b"index 3\n"
        + b"".join(_b64(h) + b"\n" for h in HASHES)
        + b"\n"
        + COSIGNED
    )
    assert expected == ENCODED
    with_extra = TlogProof(INDEX, HASHES, COSIGNED, extra=b"context")
    assert with_extra.to_bytes() == expected.replace(
        b"index 3\n", b"extra " + _b64(b"context") + b"\nindex 3\n", 1
    )


def test_round_trips() -> None:
    assert parse_tlog_proof(ENCODED) == PROOF
    for proof in (
        TlogProof(INDEX, HASHES, COSIGNED, extra=b"\x00\xff opaque"),
        TlogProof(0, (), COSIGNED),
        TlogProof(2**63 - 1, (bytes(32),) * MAX_PROOF_HASHES, COSIGNED, extra=b"x"),
    ):
        assert parse_tlog_proof(proof.to_bytes()) == proof
        assert parse_tlog_proof(proof.to_bytes()).to_bytes() == proof.to_bytes()


def test_the_specification_example_head_parses() -> None:
    # Head lines from the tlog-proof specification's example, with a real checkpoint
    # (the example's own signature lines are elided and cannot parse).
    extra = b"YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ"
    hashes = [
        b"gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=",
        b"B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=",
        b"EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=",
        b"RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=",
        b"AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=",
    ]
    data = HEADER + _head(b"extra " + extra, b"index 73894", *hashes) + b"\n" + COSIGNED
    proof = parse_tlog_proof(data)
    assert proof.index == 73894
    assert proof.extra == base64.b64decode(extra)
    assert proof.proof == tuple(base64.b64decode(h) for h in hashes)
    assert proof.checkpoint == COSIGNED
    assert proof.to_bytes() == data


# Strict parsing.


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (ENCODED[len(HEADER):], "must start with the line"),
        (ENCODED.replace(b"@v1", b"@v2", 1), "must start with the line"),
        (ENCODED.replace(b"@v1\n", b"@v1 \n", 1), "must start with the line"),
        (ENCODED.replace(b"\n", b"\r\n", 1), "must start with the line"),
        (b"\n" + ENCODED, "must start with the line"),
        (HEADER + b"\n" + COSIGNED, "no 'index' line"),
        (HEADER + _head(*GOOD_HASHES) + b"\n" + COSIGNED, "no 'index' line"),
        (HEADER + _head(b"extra " + _b64(b"x")) + b"\n" + COSIGNED, "no 'index' line"),
        (ENCODED.replace(b"index 3", b"index: 3", 1), "no 'index' line"),
        (ENCODED.replace(b"index 3", b"Index 3", 1), "no 'index' line"),
    ],
)
def test_a_bad_header_or_missing_index_line_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(TlogProofError, match=message):
        parse_tlog_proof(data)


@pytest.mark.parametrize(
    "index", [b"01", b"-1", b"+1", b" 3", b"3 ", b"", b"0x1", b"3.0", b"\xd9\xa3", b"1" * 20]
)
def test_a_non_canonical_index_is_refused(index: bytes) -> None:
    with pytest.raises(TlogProofError, match="index must be decimal below 2\\*\\*63"):
        parse_tlog_proof(_encode(index, GOOD_HASHES))


def test_an_index_of_2_to_the_63_is_refused() -> None:
    assert parse_tlog_proof(_encode(str(2**63 - 1).encode(), [])).index == 2**63 - 1
    with pytest.raises(TlogProofError, match="out of range"):
        parse_tlog_proof(_encode(str(2**63).encode(), []))


def test_at_most_63_proof_hashes() -> None:
    assert len(parse_tlog_proof(_encode(b"0", [_b64(bytes(32))] * 63)).proof) == 63
    with pytest.raises(TlogProofError, match="64 hashes, more than 63"):
        parse_tlog_proof(_encode(b"0", [_b64(bytes(32))] * 64))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (_b64(bytes(31)), "proof hash 1 is 31 bytes, not 32"),
        (_b64(bytes(33)), "proof hash 1 is 33 bytes, not 32"),
        # Same bytes as "AAAA...A=", but with the unused low bits set.
        (b"A" * 42 + b"B=", "proof hash 1: non-canonical base64"),
        (_b64(bytes(32)).rstrip(b"="), "proof hash 1: invalid base64"),
        (_b64(b"\xfb" * 32).translate(URLSAFE), "proof hash 1: invalid base64"),
        (b" " + _b64(bytes(32)), "proof hash 1: invalid base64"),
        (_b64(bytes(32)) + b"\r", "proof hash 1: invalid base64"),
    ],
)
def test_a_bad_proof_hash_is_refused(line: bytes, message: str) -> None:
    hashes = [GOOD_HASHES[0], line, GOOD_HASHES[2]]
    with pytest.raises(TlogProofError, match=message):
        parse_tlog_proof(_encode(b"3", hashes))


def test_a_missing_empty_line_is_refused() -> None:
    with pytest.raises(TlogProofError, match="no empty line before its checkpoint"):
        parse_tlog_proof(HEADER + _head(b"index 3", *GOOD_HASHES))
    # Checkpoint lines glued to the hashes read as more (invalid) hashes.
    glued = HEADER + _head(b"index 3", *GOOD_HASHES) + COSIGNED
    with pytest.raises(TlogProofError, match="proof hash 3: invalid base64"):
        parse_tlog_proof(glued)


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (b"garbage", "checkpoint must end with a newline"),
        (b"garbage\n", "checkpoint: signature line must start with an em dash"),
        (b"\n", "checkpoint: signature block is empty"),
        (b"\n\n", "checkpoint: signature block is empty"),
        (b"\x00\n", "checkpoint: note contains control characters"),
        (b"\n" + COSIGNED, "checkpoint: checkpoint lines must be non-empty"),
    ],
)
def test_trailing_garbage_after_the_checkpoint_is_refused(tail: bytes, message: str) -> None:
    with pytest.raises(TlogProofError, match=message):
        parse_tlog_proof(ENCODED + tail)


def test_a_checkpoint_that_is_not_a_signed_checkpoint_is_refused() -> None:
    with pytest.raises(TlogProofError, match="checkpoint is empty"):
        parse_tlog_proof(_encode(b"3", GOOD_HASHES, b""))
    with pytest.raises(TlogProofError, match="checkpoint: note has no blank line"):
        parse_tlog_proof(_encode(b"3", GOOD_HASHES, TEXT.encode()))
    not_a_checkpoint = sign_note("hello\n", [LOG])
    with pytest.raises(TlogProofError, match="checkpoint: checkpoint needs origin"):
        parse_tlog_proof(_encode(b"3", GOOD_HASHES, not_a_checkpoint))


def test_extra_data_must_be_canonical_non_empty_base64_in_second_place() -> None:
    base = HEADER + b"extra %s\nindex 3\n" + b"\n" + COSIGNED
    with pytest.raises(TlogProofError, match="extra data is empty"):
        parse_tlog_proof(base % b"")
    with pytest.raises(TlogProofError, match="extra data: non-canonical base64"):
        parse_tlog_proof(base % b"eQ==".replace(b"Q", b"R"))
    with pytest.raises(TlogProofError, match="extra data: invalid base64"):
        parse_tlog_proof(base % b"e")
    after_index = HEADER + _head(b"index 3", b"extra " + _b64(b"x")) + b"\n" + COSIGNED
    with pytest.raises(TlogProofError, match="proof hash 0: invalid base64"):
        parse_tlog_proof(after_index)
    with pytest.raises(TlogProofError, match="extra data is empty"):
        TlogProof(INDEX, HASHES, COSIGNED, extra=b"")


def test_a_proof_that_is_not_utf8_is_refused() -> None:
    bad = ENCODED.replace(b"example.com/log\n", b"example.com/\xfflog\n", 1)
    with pytest.raises(TlogProofError, match="not valid UTF-8"):
        parse_tlog_proof(bad)


def test_the_size_cap_includes_extra_data() -> None:
    room = MAX_TLOG_PROOF_BYTES - len(ENCODED) - len(b"extra \n")
    fits = TlogProof(INDEX, HASHES, COSIGNED, extra=b"x" * (room // 4 * 3))
    assert len(fits.to_bytes()) <= MAX_TLOG_PROOF_BYTES
    assert parse_tlog_proof(fits.to_bytes()) == fits
    message = "longer than 1048576 bytes \\(extra data included\\)"
    with pytest.raises(TlogProofError, match=message):
        TlogProof(INDEX, HASHES, COSIGNED, extra=b"x" * (room // 4 * 3 + 3))
    padding = b"\n" * (MAX_TLOG_PROOF_BYTES + 1 - len(fits.to_bytes()))
    with pytest.raises(TlogProofError, match=message):
        parse_tlog_proof(fits.to_bytes() + padding)


def test_the_constructor_refuses_bad_fields() -> None:
    for index in (-1, 2**63, True):
        with pytest.raises(TlogProofError, match="out of range"):
            TlogProof(index, HASHES, COSIGNED)
    with pytest.raises(TlogProofError, match="proof hash 1 is 31 bytes"):
        TlogProof(INDEX, (HASHES[0], bytes(31)), COSIGNED)
    with pytest.raises(TlogProofError, match="proof hash 0 is not bytes"):
        TlogProof(INDEX, ("A" * 32,), COSIGNED)  # type: ignore[arg-type]
    with pytest.raises(TlogProofError, match="64 hashes"):
        TlogProof(INDEX, (bytes(32),) * 64, COSIGNED)
    with pytest.raises(TlogProofError, match="checkpoint must end with a newline"):
        TlogProof(INDEX, HASHES, COSIGNED[:-1])


# Verification.


def test_a_good_proof_verifies() -> None:
    verified = verify_tlog_proof(PROOF, LEAVES[INDEX], LOG.verifier, TRUSTED, 3)
    assert verified == VerifiedTlogProof(
        Checkpoint(LOG.name, SIZE, ROOT),
        INDEX,
        {"witness0.example": 1000, "witness1.example": 1001, "witness2.example": 1002},
    )


def test_every_record_of_the_tree_verifies_at_its_own_index_only() -> None:
    for i, leaf in enumerate(LEAVES):
        proof = TlogProof(i, tuple(inclusion_proof(i, SIZE, READER)), COSIGNED)
        assert verify_tlog_proof(proof, leaf, LOG.verifier, TRUSTED, 2).index == i
        for j, other in enumerate(LEAVES):
            if j != i:
                with pytest.raises(TlogProofError, match="inclusion proof does not verify"):
                    verify_tlog_proof(proof, other, LOG.verifier, TRUSTED, 2)


def test_too_few_cosignatures_are_refused() -> None:
    with pytest.raises(TlogProofError, match="3 valid cosignatures, fewer than the 4 required"):
        verify_tlog_proof(PROOF, LEAVES[INDEX], LOG.verifier, TRUSTED, 4)
    with pytest.raises(TlogProofError, match="2 valid cosignatures, fewer than the 3 required"):
        verify_tlog_proof(PROOF, LEAVES[INDEX], LOG.verifier, TRUSTED[:2], 3)
    only_log = TlogProof(INDEX, HASHES, SIGNED)
    with pytest.raises(TlogProofError, match="0 valid cosignatures, fewer than the 1 required"):
        verify_tlog_proof(only_log, LEAVES[INDEX], LOG.verifier, TRUSTED, 1)
    assert verify_tlog_proof(only_log, LEAVES[INDEX], LOG.verifier, TRUSTED, 0).cosigned_by == {}


def test_cosignatures_by_untrusted_witnesses_do_not_count() -> None:
    strangers = [CosignatureSigner(f"stranger{i}.example", _key(40 + i)) for i in range(3)]
    raw = add_signature_lines(SIGNED, [s.cosign(TEXT, 5) for s in strangers])
    raw = add_signature_lines(raw, [WITNESSES[0].cosign(TEXT, 6)])
    proof = TlogProof(INDEX, HASHES, raw)
    verified = verify_tlog_proof(proof, LEAVES[INDEX], LOG.verifier, TRUSTED, 1)
    assert verified.cosigned_by == {"witness0.example": 6}
    with pytest.raises(TlogProofError, match="1 valid cosignatures, fewer than the 2"):
        verify_tlog_proof(proof, LEAVES[INDEX], LOG.verifier, TRUSTED, 2)


def test_a_wrong_leaf_is_refused() -> None:
    with pytest.raises(TlogProofError, match="inclusion proof does not verify") as info:
        verify_tlog_proof(PROOF, leaf_hash(b"another record"), LOG.verifier, TRUSTED, 3)
    assert isinstance(info.value.__cause__, ProofError)
    with pytest.raises(TlogProofError, match="inclusion proof does not verify"):
        verify_tlog_proof(PROOF, LEAVES[INDEX][:31], LOG.verifier, TRUSTED, 3)


def test_a_wrong_index_is_refused() -> None:
    for index in (INDEX - 1, INDEX + 1, SIZE, SIZE + INDEX, 2**63 - 1):
        moved = TlogProof(index, HASHES, COSIGNED)
        with pytest.raises(TlogProofError, match="inclusion proof does not verify"):
            verify_tlog_proof(moved, LEAVES[INDEX], LOG.verifier, TRUSTED, 3)


def test_a_changed_proof_is_refused() -> None:
    for i in range(len(HASHES)):
        for bit in (0, 255):
            forged = bytearray(HASHES[i])
            forged[bit // 8] ^= 1 << (bit % 8)
            hashes = (*HASHES[:i], bytes(forged), *HASHES[i + 1:])
            with pytest.raises(TlogProofError, match="inclusion proof does not verify"):
                verify_tlog_proof(
                    TlogProof(INDEX, hashes, COSIGNED), LEAVES[INDEX], LOG.verifier, TRUSTED, 3
                )
    for hashes in (HASHES[:-1], (*HASHES, HASHES[0])):
        with pytest.raises(TlogProofError, match="inclusion proof does not verify"):
            verify_tlog_proof(
                TlogProof(INDEX, hashes, COSIGNED), LEAVES[INDEX], LOG.verifier, TRUSTED, 3
            )


def test_a_checkpoint_not_signed_by_the_log_is_refused() -> None:
    other_log = NoteSigner(LOG.name, _key(99))
    with pytest.raises(TlogProofError, match="checkpoint: no signature by a known key") as info:
        verify_tlog_proof(PROOF, LEAVES[INDEX], other_log.verifier, TRUSTED, 3)
    assert isinstance(info.value.__cause__, UnverifiedNoteError)


def test_a_tampered_checkpoint_is_refused() -> None:
    # A checkpoint for a bigger tree, under the genuine signature lines.
    lines = COSIGNED[len(TEXT):]
    forged = Checkpoint(LOG.name, SIZE + 1, ROOT).to_text().encode() + lines
    with pytest.raises(TlogProofError, match=r"checkpoint: signature by example\.com/log") as info:
        verify_tlog_proof(
            TlogProof(INDEX, HASHES, forged), LEAVES[INDEX], LOG.verifier, TRUSTED, 3
        )
    assert isinstance(info.value.__cause__, NoteSignatureError)


def test_a_bad_cosignature_by_a_trusted_witness_is_refused() -> None:
    payload = bytearray(base64.b64decode(WITNESSES[1].cosign(TEXT, 7).split(" ")[2]))
    payload[-1] ^= 1
    bad = f"\u2014 {WITNESSES[1].name} {base64.b64encode(bytes(payload)).decode()}\n"
    raw = add_signature_lines(SIGNED, [WITNESSES[0].cosign(TEXT, 7), bad])
    with pytest.raises(TlogProofError, match="checkpoint cosignature: cosignature by witness1"):
        verify_tlog_proof(TlogProof(INDEX, HASHES, raw), LEAVES[INDEX], LOG.verifier, TRUSTED, 1)


def test_the_origin_must_be_the_expected_one() -> None:
    # The same log key, signing under a name that is not the checkpoint's origin.
    renamed = NoteSigner("example.com/other-log", _key(1))
    raw = sign_note(TEXT, [renamed])
    proof = TlogProof(INDEX, HASHES, raw)
    message = r"origin 'example\.com/log', not 'example\.com/other-log'"
    with pytest.raises(TlogProofError, match=message):
        verify_tlog_proof(proof, LEAVES[INDEX], renamed.verifier, TRUSTED, 0)
    verified = verify_tlog_proof(
        proof, LEAVES[INDEX], renamed.verifier, TRUSTED, 0, origin=LOG.name
    )
    assert verified.checkpoint.origin == LOG.name
    with pytest.raises(TlogProofError, match="not 'elsewhere'"):
        verify_tlog_proof(PROOF, LEAVES[INDEX], LOG.verifier, TRUSTED, 0, origin="elsewhere")


def test_caller_bugs_are_plain_value_errors() -> None:
    with pytest.raises(ValueError, match="must not be negative") as info:
        verify_tlog_proof(PROOF, LEAVES[INDEX], LOG.verifier, TRUSTED, -1)
    assert not isinstance(info.value, TlogProofError)
    alias = type(TRUSTED[0])("alias.example", TRUSTED[0].public)
    with pytest.raises(ValueError, match="share one public key") as info:
        verify_tlog_proof(PROOF, LEAVES[INDEX], LOG.verifier, [*TRUSTED, alias], 1)
    assert not isinstance(info.value, TlogProofError)


def test_a_parsed_proof_verifies_end_to_end() -> None:
    proof = parse_tlog_proof(ENCODED)
    verified = verify_tlog_proof(proof, leaf_hash(RECORDS[INDEX]), LOG.verifier, TRUSTED, 2)
    assert (verified.index, verified.checkpoint.size, verified.checkpoint.root_hash) == (
        INDEX, SIZE, ROOT
    )
    assert set(verified.cosigned_by) == {w.name for w in WITNESSES}
