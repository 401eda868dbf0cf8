"""DANGER: C2SP tlog proofs, offline-verifiable evidence that a record is in a log.

A tlog proof (https://c2sp.org/tlog-proof, ``c2sp.org/tlog-proof@v1``) is a
small text file: a header line, optional unauthenticated ``extra`` data, the
record's ``index``, its Merkle inclusion proof (one base64 hash per line, the
leaf's sibling first), an empty line, then the log's checkpoint verbatim with
the log's signature and the witnesses' cosignatures. It is the receipt one
party hands another: whoever trusts the log key and enough witnesses can check
it without asking anyone. Parsing it loosely would let two readers see
different proofs in the same bytes; verifying it loosely would let a log show
one party a tree nobody else sees. Application code should use the ledger's
recipes, not these functions.

Trust assumptions: the bytes given to :func:`parse_tlog_proof` and every
field of a :class:`TlogProof` are untrusted; parsing is strict and bounded
(:data:`MAX_TLOG_PROOF_BYTES`, :data:`MAX_PROOF_HASHES`, canonical decimal and
base64). The arguments of :func:`verify_tlog_proof` other than the proof are
trusted: the leaf hash is computed by the caller from the record it holds, and
the log key, cosigner keys, quorum and origin come from the federation's
configuration. ``extra`` is never authenticated, and cosignature timestamps
are returned, not judged: both are the caller's policy.

Example::

    proof = parse_tlog_proof(data)                       # raises on any defect
    verified = verify_tlog_proof(
        proof, merkle.leaf_hash(record), log_key, witnesses, min_cosignatures=2
    )
    verified.checkpoint.size, verified.cosigned_by       # {"witness.example/w1": 1679315147}
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from comity.hazmat import merkle
from comity.hazmat.note import (
    MAX_SIGNATURES,
    Checkpoint,
    CosignatureVerifier,
    MalformedCheckpointError,
    NoteError,
    NoteVerifier,
    _b64decode,
    _split_note,
    cosignatures,
    open_note,
    parse_checkpoint,
)

__all__ = [
    "HEADER",
    "MAX_INDEX",
    "MAX_PROOF_HASHES",
    "MAX_TLOG_PROOF_BYTES",
    "TlogProof",
    "TlogProofError",
    "VerifiedTlogProof",
    "parse_tlog_proof",
    "verify_tlog_proof",
]

HEADER = "c2sp.org/tlog-proof@v1"
"""The first line of every tlog proof: format name and version."""

MAX_TLOG_PROOF_BYTES = 1 << 20
"""Cap on a whole encoded proof, extra data and checkpoint included."""

# Go's tlog, the reference implementation, keeps indices and tree sizes in
# int64: a tree has fewer than 2**63 leaves, so an audit path is at most 63
# hashes long. Anything larger cannot come from a real log.
MAX_INDEX = 2**63 - 1
"""Largest record index a proof may carry."""

MAX_PROOF_HASHES = 63
"""Most inclusion-proof hashes a proof may carry."""

_INDEX = re.compile(r"0|[1-9][0-9]{0,18}")
_EXTRA = "extra "
_INDEX_PREFIX = "index "
_SIZE_ERROR = f"tlog proof is longer than {MAX_TLOG_PROOF_BYTES} bytes (extra data included)"


class TlogProofError(ValueError):
    """A tlog proof is malformed, or does not prove what it claims under the given keys."""


@dataclass(frozen=True, slots=True)
class TlogProof:
    """A parsed tlog proof; nothing in it is verified yet.

    Args:
        index: the record's zero-based position in the log.
        proof: the inclusion proof, the leaf's sibling first.
        checkpoint: the signed checkpoint note, with all its signature lines.
        extra: opaque application data, not authenticated; ``None`` when absent.

    Raises:
        TlogProofError: on construction, if a field is out of range or
            malformed, or the encoded proof would exceed the size cap, so that
            every ``TlogProof`` encodes to bytes :func:`parse_tlog_proof` accepts.
    """

    index: int
    proof: tuple[bytes, ...]
    checkpoint: bytes
    extra: bytes | None = None

    def __post_init__(self) -> None:
        if isinstance(self.index, bool) or not 0 <= self.index <= MAX_INDEX:
            raise TlogProofError(f"index {self.index!r} is out of range (0 to 2**63 - 1)")
        if len(self.proof) > MAX_PROOF_HASHES:
            raise TlogProofError(
                f"inclusion proof has {len(self.proof)} hashes, more than {MAX_PROOF_HASHES}"
            )
        for i, h in enumerate(self.proof):
            if not isinstance(h, bytes):
                raise TlogProofError(f"proof hash {i} is not bytes")
            if len(h) != merkle.HASH_SIZE:
                raise TlogProofError(f"proof hash {i} is {len(h)} bytes, not {merkle.HASH_SIZE}")
        # An empty extra would encode as "extra " with nothing after it; the
        # format says to omit the line instead, so there is one spelling.
        if self.extra is not None and not self.extra:
            raise TlogProofError("extra data is empty: use None and omit the line")
        _check_checkpoint(self.checkpoint)
        if len(self.to_bytes()) > MAX_TLOG_PROOF_BYTES:
            raise TlogProofError(_SIZE_ERROR)

    def to_bytes(self) -> bytes:
        """The encoded proof: header, extra, index, hashes, empty line, checkpoint."""
        lines = [HEADER]
        if self.extra is not None:
            lines.append(_EXTRA + base64.b64encode(self.extra).decode("ascii"))
        lines.append(f"{_INDEX_PREFIX}{self.index}")
        lines.extend(base64.b64encode(h).decode("ascii") for h in self.proof)
        head = "".join(f"{line}\n" for line in lines) + "\n"
        return head.encode("ascii") + self.checkpoint


@dataclass(frozen=True, slots=True)
class VerifiedTlogProof:
    """What a tlog proof proved; only :func:`verify_tlog_proof` should make one.

    ``checkpoint`` was signed by the log key, the record whose leaf hash was
    checked sits at ``index`` in its tree, and ``cosigned_by`` maps each
    trusted witness that cosigned the checkpoint to its cosignature time.
    """

    checkpoint: Checkpoint
    index: int
    cosigned_by: dict[str, int] = field(hash=False)


def parse_tlog_proof(data: bytes) -> TlogProof:
    """Parse an encoded tlog proof strictly.

    Args:
        data: the proof file's bytes (untrusted).

    Returns:
        The proof's fields; verify them with :func:`verify_tlog_proof`.

    Raises:
        TlogProofError: if the proof exceeds :data:`MAX_TLOG_PROOF_BYTES`, is
            not UTF-8, lacks the exact header line, the ``index`` line or the
            empty line before the checkpoint, has a non-canonical index,
            extra or hash, more than :data:`MAX_PROOF_HASHES` hashes, or a
            checkpoint that is not a well-formed signed checkpoint note.
    """
    if len(data) > MAX_TLOG_PROOF_BYTES:
        raise TlogProofError(_SIZE_ERROR)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TlogProofError("tlog proof is not valid UTF-8") from e
    # The first empty line ends the proof lines: none of them may be empty,
    # while the checkpoint after it holds an empty line of its own.
    head, sep, checkpoint = data.partition(b"\n\n")
    if not sep:
        raise TlogProofError("tlog proof has no empty line before its checkpoint")
    lines = head.decode("utf-8").split("\n")
    if lines[0] != HEADER:
        raise TlogProofError(f"tlog proof must start with the line {HEADER!r}")
    pos = 1
    extra = None
    if pos < len(lines) and lines[pos].startswith(_EXTRA):
        extra = _decode(lines[pos][len(_EXTRA) :], "extra data")
        pos += 1
    if pos >= len(lines) or not lines[pos].startswith(_INDEX_PREFIX):
        raise TlogProofError("tlog proof has no 'index' line after its header")
    index_text = lines[pos][len(_INDEX_PREFIX) :]
    if not _INDEX.fullmatch(index_text):
        raise TlogProofError("index must be decimal below 2**63, without sign or leading zeros")
    hash_lines = lines[pos + 1 :]
    # Count before decoding: the cap bounds the work as well as the result.
    if len(hash_lines) > MAX_PROOF_HASHES:
        raise TlogProofError(
            f"inclusion proof has {len(hash_lines)} hashes, more than {MAX_PROOF_HASHES}"
        )
    proof = tuple(_decode(line, f"proof hash {i}") for i, line in enumerate(hash_lines))
    return TlogProof(int(index_text), proof, checkpoint, extra)


def verify_tlog_proof(
    proof: TlogProof,
    leaf_hash: bytes,
    log: NoteVerifier,
    cosigners: Sequence[CosignatureVerifier],
    min_cosignatures: int,
    *,
    origin: str | None = None,
) -> VerifiedTlogProof:
    """Check a tlog proof: log signature, origin, witness quorum, then inclusion.

    Args:
        proof: the parsed proof (untrusted).
        leaf_hash: the :func:`~comity.hazmat.merkle.leaf_hash` of the record,
            computed by the caller from the record it holds.
        log: the log's trusted checkpoint key.
        cosigners: the trusted witnesses; cosignatures by others are ignored.
        min_cosignatures: how many of ``cosigners`` must have cosigned.
        origin: the log's expected origin line; ``None`` means ``log.name``,
            as tlog-checkpoint recommends and Comity's ledger does. Checking it
            keeps a key that signs several logs from passing one log's
            checkpoint off as another's.

    Returns:
        The verified checkpoint, index and cosigners with their timestamps.

    Raises:
        TlogProofError: if the checkpoint is malformed, not signed by ``log``,
            for another origin, carries a bad cosignature by a trusted
            witness, has fewer than ``min_cosignatures`` valid cosignatures,
            or the inclusion proof does not lead to its root.
        ValueError: if ``min_cosignatures`` is negative, or two cosigners
            share a name or a public key (caller bugs).
    """
    if min_cosignatures < 0:
        raise ValueError("min_cosignatures must not be negative")
    try:
        note = open_note(proof.checkpoint, [log], max_bytes=MAX_TLOG_PROOF_BYTES)
        checkpoint = parse_checkpoint(note.text)
    except (NoteError, MalformedCheckpointError) as e:
        raise TlogProofError(f"checkpoint: {e}") from e
    expected = log.name if origin is None else origin
    if checkpoint.origin != expected:
        raise TlogProofError(f"checkpoint is for origin {checkpoint.origin!r}, not {expected!r}")
    try:
        cosigned_by = cosignatures(proof.checkpoint, cosigners, max_bytes=MAX_TLOG_PROOF_BYTES)
    except NoteError as e:
        raise TlogProofError(f"checkpoint cosignature: {e}") from e
    if len(cosigned_by) < min_cosignatures:
        raise TlogProofError(
            f"checkpoint has {len(cosigned_by)} valid cosignatures,"
            f" fewer than the {min_cosignatures} required"
        )
    # Inclusion last: a proof against a root nobody vouched for proves nothing.
    try:
        merkle.verify_inclusion(
            leaf_hash, proof.index, checkpoint.size, proof.proof, checkpoint.root_hash
        )
    except merkle.ProofError as e:
        raise TlogProofError("inclusion proof does not verify") from e
    return VerifiedTlogProof(checkpoint, proof.index, cosigned_by)


def _decode(text: str, what: str) -> bytes:
    """Decode one canonical standard base64 line, naming ``what`` on failure."""
    try:
        return _b64decode(text)
    except ValueError as e:
        raise TlogProofError(f"{what}: {e}") from e


def _check_checkpoint(checkpoint: bytes) -> None:
    """Refuse anything but a well-formed checkpoint note; signatures are checked later."""
    if not checkpoint:
        raise TlogProofError("checkpoint is empty")
    if not checkpoint.endswith(b"\n"):
        raise TlogProofError("checkpoint must end with a newline")
    try:
        text, _ = _split_note(checkpoint, MAX_TLOG_PROOF_BYTES, MAX_SIGNATURES)
        parse_checkpoint(text)
    except (NoteError, MalformedCheckpointError) as e:
        raise TlogProofError(f"checkpoint: {e}") from e
