"""Who signs what in the ledger: log, witness and card-chain keys, from node cards.

A node's log key and its witness key are both its card's signing key, under
two names: the log key is named after the card's ``log_origin`` (``host/log``)
and signs checkpoints as C2SP note signatures (type 0x01); the witness key is
named ``host/witness`` and signs cosignature/v1 lines (type 0x04). The two
signed formats cannot be confused: a cosignature signs text starting
``cosignature/v1``, which no origin line can be, and every other thing the
key signs is canonical JSON starting ``{``. After a key rotation, checkpoints
signed under an older card stay verifiable with that card's key, which is
why verifiers are built per card of a chain.

Trust assumptions: the cards given here are verified (pinned peers, our own
chain, or a chain checked with :func:`verified_chain`).
"""

from __future__ import annotations

from collections.abc import Sequence

from comity.hazmat.note import CosignatureVerifier, NoteVerifier
from comity.identity.errors import CardChainError, InvalidCardError
from comity.identity.schemas import NodeCard

__all__ = ["log_origin", "log_verifier", "verified_chain", "witness_name", "witness_verifier"]


def log_origin(card: NodeCard) -> str:
    return str(card.doc["log_origin"])


def witness_name(card: NodeCard) -> str:
    """The cosigner name of a node's witness: its log origin with ``/witness``."""
    return log_origin(card).removesuffix("/log") + "/witness"


def log_verifier(card: NodeCard) -> NoteVerifier:
    """The key that signed this node's checkpoints while ``card`` was current."""
    return NoteVerifier(log_origin(card), card.signing_key)


def witness_verifier(card: NodeCard) -> CosignatureVerifier:
    """The key that cosigned as this node's witness while ``card`` was current."""
    return CosignatureVerifier(witness_name(card), card.signing_key)


def verified_chain(unverified: Sequence[object]) -> list[NodeCard]:
    """Check a whole card chain from serial 1: self-certifying start, signed rotations.

    Raises:
        InvalidCardError, CardSignatureError, CardChainError: on any defect.
    """
    cards = [NodeCard.parse_unverified(d) for d in unverified]
    if not cards:
        raise InvalidCardError("no card given")
    if cards[0].serial != 1:
        raise CardChainError("a card chain must start at serial 1")
    cards[0].verify_self()
    chain = [cards[0]]
    for card in cards[1:]:
        chain.append(chain[-1].verify_successor(card))
    return chain
