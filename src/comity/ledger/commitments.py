"""Log entries as salted commitments, and their openings.

Every partner may read a node's tiles, so an entry must reveal neither the
counterparty, nor the kind of act, nor the agreement. An entry is therefore
32 bytes::

    SHA-256("comity.ledger.commitment.v1\\x00" || RFC 8785 JSON of the opening)

where the **opening** is ``{"kind": ..., "act": {...}, "salt": "<base64url>"}``:
the kind of act (SENT, RECEIVED, AGREEMENT, CUSTODY, DECISION,
PEER-CHECKPOINT), what it was (message hash, parties, agreement, ...) and 32
random bytes. Without the salt nobody can test guesses against an entry; with
the opening anyone can check it. A federation message carries its salt in its
signed header, so sender and receiver can both open both the SENT and the
RECEIVED entry (which differ, since their kinds differ, so two logs cannot be
linked by equal entries). The node keeps the opening of every entry it writes
(``log_openings``).

Trust assumptions: openings handed in by others are untrusted and parsed
strictly; the domain tag keeps commitments apart from any other SHA-256 use.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from comity.hazmat import canonical
from comity.hazmat.keys import KeyFormatError, b64d, b64e

__all__ = [
    "KINDS",
    "Opening",
    "OpeningError",
    "message_opening",
    "new_salt",
    "parse_opening",
]

KINDS = frozenset({"SENT", "RECEIVED", "AGREEMENT", "CUSTODY", "DECISION", "PEER-CHECKPOINT"})
_DOMAIN = b"comity.ledger.commitment.v1\x00"
SALT_BYTES = 32


class OpeningError(ValueError):
    """Not a valid opening of a log entry."""


def new_salt() -> str:
    """32 random bytes, base64url: the secret that hides one act."""
    return b64e(secrets.token_bytes(SALT_BYTES))


@dataclass(frozen=True)
class Opening:
    """What one entry commits to."""

    kind: str
    act: dict[str, Any]
    salt: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise OpeningError(f"unknown entry kind {self.kind!r}")
        try:
            b64d(self.salt, length=SALT_BYTES)
        except KeyFormatError as e:
            raise OpeningError(f"salt: {e}") from e

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "act": self.act, "salt": self.salt}

    def to_json(self) -> str:
        return canonical.dumps(self.to_dict()).decode()

    def commitment(self) -> bytes:
        """The 32-byte log entry."""
        return hashlib.sha256(_DOMAIN + canonical.dumps(self.to_dict())).digest()


def parse_opening(unverified: object) -> Opening:
    """An opening from JSON text or a decoded object.

    Raises:
        OpeningError: if it is not exactly ``{kind, act, salt}`` of the right types.
    """
    if isinstance(unverified, str | bytes):
        try:
            unverified = json.loads(unverified)
        except ValueError as e:
            raise OpeningError(f"opening is not JSON: {e}") from e
    if not isinstance(unverified, dict) or set(unverified) != {"kind", "act", "salt"}:
        raise OpeningError("an opening is an object with exactly kind, act and salt")
    if not isinstance(unverified["act"], dict) or not isinstance(unverified["salt"], str):
        raise OpeningError("act must be an object and salt a string")
    try:
        canonical.dumps(unverified["act"])
    except canonical.CanonicalJSONError as e:
        raise OpeningError(f"act: {e}") from e
    return Opening(str(unverified["kind"]), unverified["act"], unverified["salt"])


def message_opening(kind: str, *, message_hash: str, sender: str, recipient: str,
                    salt: str) -> Opening:
    """The SENT or RECEIVED opening of one federation message."""
    if kind not in ("SENT", "RECEIVED"):
        raise OpeningError(f"a message is logged as SENT or RECEIVED, not {kind}")
    return Opening(kind, {"message": message_hash, "from": sender, "to": recipient}, salt)
