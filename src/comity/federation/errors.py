"""Errors of the federation layer.

Two families, kept apart on purpose:

* :class:`PeerDataError` (a :class:`~comity.problems.Problem`): what a peer sent
  us is unacceptable. Each subclass has its own problem type, so the sender
  learns exactly which check failed. ``retryable`` says whether the same
  message may succeed later unchanged (e.g. the agreement it relies on is
  still being signed here), which the sender's delivery worker honours.
* :class:`TransportError`: we could not talk to a peer (refused, timed out,
  5xx, a receipt that did not verify). Always retried with backoff.
"""

from __future__ import annotations

from typing import ClassVar

from comity.problems import Problem

__all__ = [
    "BadSignatureError",
    "ConcurrentDeliveryError",
    "FutureTimestampError",
    "InvalidBodyError",
    "MalformedJSONError",
    "MalformedMessageError",
    "PayloadTooLargeError",
    "PeerDataError",
    "ReplayedMessageError",
    "StaleCardError",
    "StaleTimestampError",
    "TooLargeForPeerError",
    "TransportError",
    "UnknownMessageTypeError",
    "UnsupportedMediaTypeError",
    "WrongRecipientError",
]


class PeerDataError(Problem):
    """Base: data received from a peer was rejected."""

    retryable: ClassVar[bool] = False


class MalformedJSONError(PeerDataError):
    slug = "malformed-json"
    title = "Body is not valid JSON"


class UnsupportedMediaTypeError(PeerDataError):
    slug = "unsupported-media-type"
    status = 415
    title = "Unsupported media type"


class MalformedMessageError(PeerDataError):
    slug = "malformed-message"
    title = "Message or delivery does not have the required structure"


class PayloadTooLargeError(PeerDataError):
    slug = "payload-too-large"
    status = 413
    title = "Body exceeds the size limit"


class BadSignatureError(PeerDataError):
    slug = "bad-signature"
    status = 401
    title = "Signature does not verify under the sender's current key"


class StaleTimestampError(PeerDataError):
    slug = "stale-timestamp"
    title = "Timestamp is older than the freshness window allows"


class FutureTimestampError(PeerDataError):
    slug = "future-timestamp"
    title = "Timestamp is in the future beyond the allowed clock skew"


class ReplayedMessageError(PeerDataError):
    slug = "replayed-message-id"
    status = 409
    title = "Message id already used for different content"


class WrongRecipientError(PeerDataError):
    slug = "wrong-recipient"
    status = 421
    title = "Message is addressed to another node"


class UnknownMessageTypeError(PeerDataError):
    slug = "unknown-message-type"
    title = "This node does not accept messages of that type"


class InvalidBodyError(PeerDataError):
    slug = "invalid-body"
    title = "Message body is not valid for its type"


class StaleCardError(PeerDataError):
    """The sender signs with a newer card than we hold: it must send its chain."""

    slug = "stale-peer-card"
    status = 409
    title = "Sender's card is newer than the one held here"
    retryable = True


class ConcurrentDeliveryError(PeerDataError):
    """Two copies of one delivery raced; this one stored nothing. Retry."""

    slug = "retry-later"
    status = 503
    title = "Delivery collided with a concurrent copy; retry"
    retryable = True


class TransportError(Exception):
    """A peer could not be reached or answered unusably; retry later."""


class TooLargeForPeerError(TransportError):
    """The peer refused a delivery as too large (HTTP 413): send less at once."""
