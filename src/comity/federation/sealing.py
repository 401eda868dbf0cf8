"""Sealed message bodies: what a message says, readable only by its recipient.

Types marked ``sealed`` (requests and their acts: they carry personal data and
the facts of investigations) travel with a body of the form::

    {"sealed": <b64url libsodium sealed box of JCS(body)>,
     "key": <serial of the recipient card whose X25519 key sealed it>,
     "digest": <hex SHA-256("comity.sealed-body.v1\\0" || salt || JCS(body))>}

The sender signs the message as usual, so its signature covers the digest:
either party can later prove to anyone what the body was by revealing the
body and the message's salt (which only the two parties hold), without ever
revealing a key. A relay, a log reader or anyone holding a copy of the
envelope learns nothing of the content.

Trust assumptions: the recipient's card (pinned, verified) gives the key to
seal to; a sealed body is trusted only after it opens under our key *and* its
digest matches, so a sender cannot sign one body and deliver another.
"""

from __future__ import annotations

import hashlib
from typing import Any

from comity.federation.errors import InvalidBodyError
from comity.hazmat import canonical
from comity.hazmat.keys import EncryptionKey, KeyFormatError, b64d, b64e
from comity.hazmat.sealing import SealingError, open_sealed, seal

__all__ = ["body_digest", "open_body", "seal_body"]

_DOMAIN = b"comity.sealed-body.v1\0"
_KEYS = {"sealed", "key", "digest"}


def body_digest(body: dict[str, Any], salt: str) -> str:
    """The commitment the signature covers: hiding (salted) and binding."""
    return hashlib.sha256(_DOMAIN + b64d(salt) + canonical.dumps(body)).hexdigest()


def seal_body(body: dict[str, Any], *, salt: str, recipient_public: bytes,
              recipient_serial: int) -> dict[str, Any]:
    """The wire form of ``body``, sealed to the recipient's card key."""
    return {"sealed": b64e(seal(recipient_public, canonical.dumps(body))),
            "key": recipient_serial, "digest": body_digest(body, salt)}


def open_body(wire: dict[str, Any], *, salt: str, key_for: Any) -> dict[str, Any]:
    """The body of a sealed message, checked against the digest its sender signed.

    ``key_for(serial)`` returns this node's X25519 key of that card serial.

    Raises:
        InvalidBodyError: not a sealed body, not for a key of ours, does not
            open, is not canonical JSON, or differs from what was signed.
    """
    if set(wire) != _KEYS or not isinstance(wire["sealed"], str) or type(
            wire["key"]) is not int or not isinstance(wire["digest"], str):
        raise InvalidBodyError("a sealed body is exactly {sealed, key, digest}")
    try:
        key: EncryptionKey = key_for(wire["key"])
    except (FileNotFoundError, KeyFormatError, ValueError) as e:
        raise InvalidBodyError(f"the body is sealed to card {wire['key']}, whose key this "
                               "node does not hold") from e
    try:
        plain = open_sealed(key, b64d(wire["sealed"]))
    except (SealingError, KeyFormatError) as e:
        raise InvalidBodyError("the sealed body does not open with this node's key") from e
    try:
        body = canonical.loads_strict(plain, max_bytes=len(plain))
    except canonical.CanonicalJSONError as e:
        raise InvalidBodyError(f"the sealed body is not canonical JSON: {e}") from e
    if not isinstance(body, dict) or canonical.dumps(body) != plain:
        raise InvalidBodyError("the sealed body is not a canonical JSON object")
    if body_digest(body, salt) != wire["digest"]:
        raise InvalidBodyError("the sealed body is not the one its sender signed")
    return body
