"""Entry proofs: offline evidence that an entry is in a node's log, and what it says.

An entry proof is one file anyone can check without asking a node anything.
It shows that a log entry (a salted commitment, see
:mod:`comity.ledger.commitments`) sits at some index of a node's log, under a
checkpoint that node signed and its witnesses cosigned. It can also carry
the receipt the node signed when it received a federation message, which
ties the entry to that message: "node B logged that it received message M
from node A, as entry 1234".

Format: a C2SP tlog proof (``c2sp.org/tlog-proof@v1``, see
:mod:`comity.hazmat.tlogproof`) whose ``extra`` data is the RFC 8785
canonical JSON of::

    {"type": "comity.entry-proof", "v": 1,
     "opening": {"kind": ..., "act": {...}, "salt": ...},
     "log_cards": [<the log node's cards, serial 1 to n>],
     "witness_cards": [[<witness 1's cards, serial 1 to n>], ...],
     "receipt": <the receipt document, or null>,
     "message_id": <the message id the receipt acknowledges, or null>}

Each witness chain should end at the card the witness cosigned under: its
newest card is the key its cosignature is checked with.

Trust assumptions: the whole file is untrusted, ``extra`` included (the tlog
proof format does not authenticate it). The verifier trusts nothing but the
node ids it reports, which the user must compare out-of-band with the ids of
the nodes they mean to trust. That is enough because node ids are
self-certifying: a node id is derived from the key of the node's first
card, and each later card is signed by the key before it, so a card chain
that verifies from serial 1 proves which keys the node has held. Every
signature in the file (checkpoint, cosignatures, receipt) is then checked
against keys from those verified chains, and the entry against the opening
in the file. Cosignature timestamps and the receipt's time are reported, not
judged.

Example::

    data = build_entry_proof(opening=opening, index=i, proof=hashes, checkpoint=cosigned,
                             log_chain=identity.chain, witness_chains=[w.chain],
                             receipt=receipt, message_id=message_id)
    entry = verify_entry_proof(data, min_cosignatures=1, require_receipt=True)
    entry.log_node, entry.cosigned_by, entry.sender   # compare node ids out-of-band
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from comity.federation.envelope import parse_receipt
from comity.federation.errors import BadSignatureError, MalformedMessageError
from comity.hazmat import canonical, merkle
from comity.hazmat.keys import KeyFormatError
from comity.hazmat.note import (
    MAX_SIGNATURES,
    CosignatureVerifier,
    NoteError,
    NoteVerifier,
    UnverifiedNoteError,
    open_note,
)
from comity.hazmat.tlogproof import (
    MAX_TLOG_PROOF_BYTES,
    TlogProof,
    TlogProofError,
    parse_tlog_proof,
    verify_tlog_proof,
)
from comity.identity.errors import CardError
from comity.identity.schemas import NodeCard
from comity.ledger.commitments import Opening, OpeningError, parse_opening
from comity.ledger.keys import (
    log_origin,
    log_verifier,
    verified_chain,
    witness_name,
    witness_verifier,
)

__all__ = [
    "PROOF_TYPE",
    "ProofBundleError",
    "VerifiedEntry",
    "build_entry_proof",
    "verify_entry_proof",
]

PROOF_TYPE = "comity.entry-proof"
"""The ``type`` member of an entry proof's ``extra`` data."""

PROOF_VERSION = 1
_KEYS = frozenset({"type", "v", "opening", "log_cards", "witness_cards", "receipt",
                   "message_id"})
_NODE_ID = re.compile(r"\A[0-9a-f]{32}\Z")


class ProofBundleError(ValueError):
    """An entry proof is malformed or does not prove what it claims."""


@dataclass(frozen=True)
class VerifiedEntry:
    """What an entry proof proved; only :func:`verify_entry_proof` should make one.

    The node ids (``log_node``, the keys of ``cosigned_by``, ``sender``) are
    the only facts a reader can anchor: compare them with ids known from
    elsewhere. ``log_name`` is the name the log node's newest card gives
    itself, which any node can choose.

    The receipt fields are ``None`` for a proof without a receipt. With one,
    the log node signed that it received message ``message_id``, of hash
    ``message_hash``, from ``sender`` at ``received``, and logged it as the
    entry at ``index``.
    """

    log_node: str
    log_name: str
    origin: str
    index: int
    tree_size: int
    root: str
    opening: Opening = field(hash=False)
    cosigned_by: dict[str, int] = field(hash=False)
    message_id: str | None = None
    message_hash: str | None = None
    sender: str | None = None
    received: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The proven facts as a JSON-ready object."""
        return {
            "log_node": self.log_node,
            "log_name": self.log_name,
            "origin": self.origin,
            "index": self.index,
            "tree_size": self.tree_size,
            "root": self.root,
            "opening": self.opening.to_dict(),
            "cosigned_by": dict(self.cosigned_by),
            "message_id": self.message_id,
            "message_hash": self.message_hash,
            "sender": self.sender,
            "received": self.received,
        }


def build_entry_proof(
    *,
    opening: Opening,
    index: int,
    proof: Sequence[bytes],
    checkpoint: bytes,
    log_chain: Sequence[NodeCard],
    witness_chains: Sequence[Sequence[NodeCard]],
    receipt: dict[str, Any] | None = None,
    message_id: str | None = None,
) -> bytes:
    """Encode an entry proof (a tlog proof with the bundle as ``extra``).

    Nothing is verified here: the inputs are the node's own, and the result
    is for :func:`verify_entry_proof` to check like any other file.

    Args:
        opening: the opening of the entry at ``index``.
        index: the entry's position in the log.
        proof: the inclusion proof of the entry in the checkpoint's tree.
        checkpoint: the signed checkpoint note with its cosignatures.
        log_chain: the log node's cards, from serial 1.
        witness_chains: for each witness, its cards from serial 1 to the one
            it cosigned under.
        receipt: the receipt naming the entry, or ``None``.
        message_id: the message the receipt acknowledges; given with
            ``receipt`` and only then.

    Returns:
        The tlog proof's bytes.

    Raises:
        ProofBundleError: if ``receipt`` and ``message_id`` are not given
            together, or the result is not a valid tlog proof (too large,
            index or hashes out of range, malformed checkpoint).
    """
    if (receipt is None) != (message_id is None):
        raise ProofBundleError("a receipt and its message_id go together")
    extra = canonical.dumps({
        "type": PROOF_TYPE,
        "v": PROOF_VERSION,
        "opening": opening.to_dict(),
        "log_cards": [card.doc for card in log_chain],
        "witness_cards": [[card.doc for card in chain] for chain in witness_chains],
        "receipt": receipt,
        "message_id": message_id,
    })
    try:
        return TlogProof(index, tuple(proof), checkpoint, extra).to_bytes()
    except TlogProofError as e:
        raise ProofBundleError(f"cannot encode the tlog proof: {e}") from e


def verify_entry_proof(
    data: bytes, *, min_cosignatures: int = 1, require_receipt: bool = False
) -> VerifiedEntry:
    """Check an entry proof from end to end.

    Card chains first (they yield every key), then the checkpoint signature
    by a key of the log node, the witnesses' cosignatures, the entry's
    inclusion, and finally the receipt, if any.

    Args:
        data: the proof file (untrusted).
        min_cosignatures: how many of the listed witnesses must have cosigned
            the checkpoint. Which witnesses count is for the reader to judge
            from the node ids in the result.
        require_receipt: refuse a proof that carries no receipt.

    Returns:
        The facts proven, to be anchored by comparing node ids out-of-band.

    Raises:
        ProofBundleError: on any defect, with a message naming it.
        ValueError: if ``min_cosignatures`` is negative (a caller bug).
    """
    if min_cosignatures < 0:
        raise ValueError("min_cosignatures must not be negative")
    try:
        tlog = parse_tlog_proof(data)
    except TlogProofError as e:
        raise ProofBundleError(f"not a valid tlog proof: {e}") from e
    bundle = _parse_extra(tlog.extra)

    log_chain = _chain(bundle["log_cards"], "log card chain")
    log_node = log_chain[0].node_id
    log_keys = {card.signing_key.raw for card in log_chain}
    witnesses = _witnesses(bundle["witness_cards"], log_node, log_keys)

    try:
        opening = parse_opening(bundle["opening"])
    except OpeningError as e:
        raise ProofBundleError(f"opening: {e}") from e
    leaf = merkle.leaf_hash(opening.commitment())

    signer = _checkpoint_signer(tlog.checkpoint, log_chain)
    by_name = {name: node for node, name, _ in witnesses}
    try:
        verified = verify_tlog_proof(
            tlog, leaf, _log_key(signer), [v for _, _, v in witnesses], min_cosignatures,
            origin=log_origin(signer),
        )
    except TlogProofError as e:
        if isinstance(e.__cause__, merkle.ProofError):
            raise ProofBundleError(
                f"inclusion proof does not verify: the opened entry is not at index"
                f" {tlog.index} of the checkpoint's tree") from e
        raise ProofBundleError(f"checkpoint: {e}") from e
    checkpoint = verified.checkpoint
    entry = VerifiedEntry(
        log_node=log_node,
        log_name=log_chain[-1].name,
        origin=checkpoint.origin,
        index=verified.index,
        tree_size=checkpoint.size,
        root=checkpoint.root_hash.hex(),
        opening=opening,
        cosigned_by={by_name[name]: ts for name, ts in verified.cosigned_by.items()},
    )

    receipt, message_id = bundle["receipt"], bundle["message_id"]
    if receipt is None:
        if message_id is not None:
            raise ProofBundleError("message_id is given without a receipt")
        if require_receipt:
            raise ProofBundleError("the proof carries no receipt")
        return entry
    return _with_receipt(entry, receipt, message_id, log_chain)


def _parse_extra(extra: bytes | None) -> dict[str, Any]:
    """The bundle in ``extra``: canonical JSON with exactly the expected members."""
    if extra is None:
        raise ProofBundleError("the tlog proof has no extra data: it is not an entry proof")
    try:
        bundle = canonical.loads_canonical(extra, max_bytes=MAX_TLOG_PROOF_BYTES)
    except canonical.CanonicalJSONError as e:
        raise ProofBundleError(f"extra data is not canonical JSON: {e}") from e
    if not isinstance(bundle, dict):
        raise ProofBundleError("extra data is not a JSON object")
    if set(bundle) != _KEYS:
        unknown, missing = sorted(set(bundle) - _KEYS), sorted(_KEYS - set(bundle))
        raise ProofBundleError(
            f"extra data must have exactly the members {sorted(_KEYS)}"
            f" (unknown: {unknown}, missing: {missing})")
    if bundle["type"] != PROOF_TYPE:
        raise ProofBundleError(f"extra data is of type {bundle['type']!r}, not {PROOF_TYPE!r}")
    if type(bundle["v"]) is not int or bundle["v"] != PROOF_VERSION:
        raise ProofBundleError(f"unsupported entry proof version {bundle['v']!r}")
    if not isinstance(bundle["log_cards"], list):
        raise ProofBundleError("log_cards must be a list of cards")
    witness_cards = bundle["witness_cards"]
    if not isinstance(witness_cards, list) or not all(
            isinstance(chain, list) for chain in witness_cards):
        raise ProofBundleError("witness_cards must be a list of card lists")
    # A checkpoint carries at most MAX_SIGNATURES lines: more witnesses than
    # that can only cost the verifier time.
    if len(witness_cards) > MAX_SIGNATURES:
        raise ProofBundleError(f"more than {MAX_SIGNATURES} witness card chains")
    return bundle


def _chain(docs: list[Any], what: str) -> list[NodeCard]:
    """A card chain verified from serial 1, or a ProofBundleError naming ``what``."""
    try:
        return verified_chain(docs)
    except CardError as e:
        raise ProofBundleError(f"{what} does not verify: {e}") from e


def _witnesses(
    chains: list[list[Any]], log_node: str, log_keys: set[bytes]
) -> list[tuple[str, str, CosignatureVerifier]]:
    """(node id, cosigner name, cosigner key) of each witness, under its newest card."""
    out: list[tuple[str, str, CosignatureVerifier]] = []
    for i, docs in enumerate(chains, start=1):
        chain = _chain(docs, f"witness {i} card chain")
        node, card = chain[0].node_id, chain[-1]
        if node == log_node:
            raise ProofBundleError(f"witness {i} is the log's own node {node}")
        if card.signing_key.raw in log_keys:
            raise ProofBundleError(f"witness {i} signs with a key of the log's node")
        try:
            verifier = witness_verifier(card)
        except KeyFormatError as e:
            raise ProofBundleError(
                f"witness {i}: {witness_name(card)!r} is not a valid cosigner name") from e
        for j, (other, name, key) in enumerate(out, start=1):
            if other == node:
                raise ProofBundleError(f"witnesses {j} and {i} are the same node {node}")
            if name == verifier.name:
                raise ProofBundleError(f"witnesses {j} and {i} share the cosigner name {name}")
            if key.public == verifier.public:
                raise ProofBundleError(f"witnesses {j} and {i} share one signing key")
        out.append((node, verifier.name, verifier))
    return out


def _log_key(card: NodeCard) -> NoteVerifier:
    try:
        return log_verifier(card)
    except KeyFormatError as e:
        raise ProofBundleError(
            f"log card serial {card.serial}: log_origin {log_origin(card)!r}"
            " is not a valid key name") from e


def _checkpoint_signer(checkpoint: bytes, chain: list[NodeCard]) -> NodeCard:
    """The newest card of ``chain`` whose log key signed ``checkpoint``."""
    for card in reversed(chain):
        try:
            open_note(checkpoint, [_log_key(card)], max_bytes=MAX_TLOG_PROOF_BYTES)
        except UnverifiedNoteError:
            continue
        except NoteError as e:
            raise ProofBundleError(f"checkpoint signature: {e}") from e
        return card
    raise ProofBundleError(
        f"checkpoint signature: the checkpoint is not signed by the log key of any card"
        f" of node {chain[0].node_id}")


def _with_receipt(entry: VerifiedEntry, receipt: object, message_id: object,
                  log_chain: list[NodeCard]) -> VerifiedEntry:
    """Check that the log node's receipt names exactly this entry, and say what it names."""
    opening, log_node = entry.opening, entry.log_node
    if opening.kind != "RECEIVED":
        raise ProofBundleError(
            f"a receipt names a RECEIVED entry, but the opening is of kind {opening.kind}")
    act = opening.act
    if set(act) != {"message", "from", "to"} or not all(isinstance(v, str)
                                                         for v in act.values()):
        raise ProofBundleError("opening does not match: its act is not a message's act")
    if not isinstance(message_id, str):
        raise ProofBundleError("a proof with a receipt needs message_id as a string")
    if not isinstance(receipt, dict):
        raise ProofBundleError("receipt is not a JSON object")
    serial, sender = receipt.get("serial"), receipt.get("to")
    if receipt.get("from") != log_node:
        raise ProofBundleError(f"receipt is not from the log's node {log_node}")
    if not (isinstance(sender, str) and _NODE_ID.match(sender)):
        raise ProofBundleError("receipt does not name its sender's node id in 'to'")
    card = next((c for c in log_chain if type(serial) is int and c.serial == serial), None)
    if card is None:
        raise ProofBundleError(
            f"receipt was signed under card serial {serial!r}, which log_cards does not hold")
    try:
        verified = parse_receipt(receipt, card.signing_key, receiver=log_node, sender=sender)
    except BadSignatureError as e:
        raise ProofBundleError(
            f"receipt signature does not verify under the key of log card serial {serial}"
        ) from e
    except MalformedMessageError as e:
        raise ProofBundleError(f"receipt is malformed: {e}") from e
    message_hash = act["message"]
    try:
        named = verified.entry_for(message_id, message_hash)
    except MalformedMessageError as e:
        raise ProofBundleError(f"receipt does not name this entry: {e}") from e
    expected = {"message": message_hash, "from": sender, "to": log_node}
    if act != expected:
        raise ProofBundleError(
            f"opening does not match the receipt: it is not the RECEIVED act of message"
            f" {message_id} from {sender} to {log_node}")
    if named["log"] != entry.index:
        raise ProofBundleError(
            f"receipt does not name this entry: it names log index {named['log']},"
            f" the proof is for index {entry.index}")
    return replace(entry, message_id=message_id, message_hash=message_hash, sender=sender,
                   received=str(verified.doc["received"]))
