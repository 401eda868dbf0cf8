"""Errors of the identity domain.

``CardError`` and its subclasses mean that a node card handed to us (by an
operator or by a peer) is not acceptable; ``IdentityError`` means the local
node's own identity on disk is missing or inconsistent (an operator problem,
not a peer problem).
"""

from __future__ import annotations

from comity.problems import Problem

__all__ = [
    "CardChainError",
    "CardError",
    "CardSignatureError",
    "IdentityError",
    "InvalidCardError",
    "PeerNotFoundError",
    "UnknownPeerError",
]


class IdentityError(RuntimeError):
    """The local node identity is missing or unusable."""


class CardError(Problem):
    """A node card failed verification."""

    slug = "invalid-card"
    status = 400
    title = "Node card rejected"


class InvalidCardError(CardError):
    """The card's structure or fields are wrong."""


class CardSignatureError(CardError):
    slug = "card-signature"
    title = "Node card signature does not verify"


class CardChainError(CardError):
    slug = "card-chain"
    title = "Node card does not follow the card we hold"
    status = 409


class UnknownPeerError(Problem):
    slug = "unknown-sender"
    status = 403
    title = "Sender is not a known peer"


class PeerNotFoundError(Problem):
    slug = "peer-not-found"
    status = 404
    title = "No such peer"
