"""Node cards: the signed, self-describing identity documents nodes exchange.

A card is canonical JSON (RFC 8785). Its signed bytes are the card without its
``sig`` and ``rotation_sig`` members; ``sig`` is made with the card's own
signing key, and for every card after the first, ``rotation_sig`` is made over
the same bytes with the *previous* card's signing key. The node id is derived
from the first card's signing key, so a first card is self-certifying and
every later card is tied to it by an unbroken chain of rotation signatures.

Unknown members are kept (and signed over), so newer nodes can add fields
without breaking older verifiers.

Example::

    card = NodeCard.parse_unverified(doc)   # structure only
    card.verify_self()                      # raises CardSignatureError
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from comity.clock import parse_ts
from comity.hazmat import canonical
from comity.hazmat.keys import BadSignature, KeyFormatError, SigningKey, VerifyKey, b64d, b64e
from comity.identity.errors import CardChainError, CardSignatureError, InvalidCardError

__all__ = ["CARD_TYPE", "NodeCard", "NodeKind", "node_id_for", "sign_card"]

CARD_TYPE = "comity.node-card"
CARD_VERSION = 1
_NODE_ID = re.compile(r"\A[0-9a-f]{32}\Z")
_CC = re.compile(r"\A[A-Z]{2}\Z")
_LANG = re.compile(r"\A[a-z]{2,3}(-[A-Za-z0-9]{2,8})*\Z")
_MAX_CARD_BYTES = 16 * 1024


class NodeKind(enum.StrEnum):
    """The kinds of participant a node can represent."""

    CENTRAL_AUTHORITY = "central-authority"
    POINT_OF_CONTACT = "point-of-contact-24-7"
    LAW_ENFORCEMENT = "law-enforcement"
    CERT = "cert"
    REGULATOR = "regulator"
    SERVICE_PROVIDER = "service-provider"
    REGISTRY = "registry"
    PROFESSIONAL_ORGANISATION = "professional-organisation"
    ACADEMIC_ORGANISATION = "academic-organisation"
    INTERNATIONAL_ORGANISATION = "international-organisation"


def node_id_for(first_signing_key: VerifyKey) -> str:
    """The node id: hex of the first 16 bytes of SHA-256 of the first key."""
    return hashlib.sha256(first_signing_key.raw).hexdigest()[:32]


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise InvalidCardError(message)


@dataclass(frozen=True)
class NodeCard:
    """A node card whose *structure* has been checked.

    Signatures are checked by :meth:`verify_self` and :meth:`verify_successor`;
    callers obtain verified cards through ``identity.services`` only.
    """

    doc: dict[str, Any]

    @classmethod
    def parse_unverified(cls, unverified: object) -> NodeCard:
        """Check the structure of a card document.

        Raises:
            InvalidCardError: if any member is missing or malformed.
        """
        _require(isinstance(unverified, dict), "a node card is a JSON object")
        assert isinstance(unverified, dict)
        doc = unverified
        _require(doc.get("type") == CARD_TYPE, f"type must be {CARD_TYPE!r}")
        _require(doc.get("v") == CARD_VERSION, f"unsupported card version {doc.get('v')!r}")
        _require(isinstance(doc.get("node_id"), str) and bool(_NODE_ID.match(doc["node_id"])),
                 "node_id must be 32 lowercase hex digits")
        raw_serial = doc.get("serial")
        _require(isinstance(raw_serial, int) and not isinstance(raw_serial, bool)
                 and raw_serial >= 1, "serial must be a positive integer")
        serial = int(raw_serial)  # type: ignore[arg-type]
        for name in ("name", "url"):
            _require(isinstance(doc.get(name), str) and 0 < len(doc[name]) <= 512,
                     f"{name} must be a non-empty string")
        _require(str(doc["url"]).startswith(("http://", "https://")), "url must be http(s)")
        try:
            NodeKind(str(doc.get("kind")))
        except ValueError as e:
            raise InvalidCardError(f"unknown participant kind {doc.get('kind')!r}") from e
        _require(isinstance(doc.get("jurisdiction"), str) and bool(_CC.match(doc["jurisdiction"])),
                 "jurisdiction must be an ISO 3166-1 alpha-2 code")
        langs = doc.get("languages")
        _require(isinstance(langs, list) and all(isinstance(x, str) and _LANG.match(x)
                                                 for x in langs),
                 "languages must be a list of language tags")
        origin = doc.get("log_origin")
        _require(isinstance(origin, str) and 0 < len(origin) <= 255 and "+" not in origin
                 and not any(c.isspace() or c < " " for c in origin),
                 "log_origin must be a note key name: no spaces, '+' or control characters")
        keys = doc.get("keys")
        _require(isinstance(keys, dict), "keys must be an object")
        assert isinstance(keys, dict)
        try:
            VerifyKey.from_b64(keys.get("signing"))  # type: ignore[arg-type]
            b64d(keys.get("encryption"), length=32)  # type: ignore[arg-type]
            b64d(doc.get("sig"), length=64)  # type: ignore[arg-type]
            if serial > 1:
                b64d(doc.get("rotation_sig"), length=64)  # type: ignore[arg-type]
        except KeyFormatError as e:
            raise InvalidCardError(f"bad key or signature encoding: {e}") from e
        try:
            parse_ts(doc.get("issued"))
        except ValueError as e:
            raise InvalidCardError(str(e)) from e
        prev = doc.get("previous")
        if serial == 1:
            _require(prev is None, "a first card has no previous card")
            _require("rotation_sig" not in doc, "a first card has no rotation signature")
        else:
            _require(isinstance(prev, dict) and prev.get("serial") == serial - 1
                     and isinstance(prev.get("hash"), str) and len(prev["hash"]) == 64,
                     "previous must name the preceding card's serial and hash")
        try:
            size = len(canonical.dumps(doc))
        except canonical.CanonicalJSONError as e:
            raise InvalidCardError(str(e)) from e
        _require(size <= _MAX_CARD_BYTES, "card too large")
        return cls(doc=dict(doc))

    # -- accessors -------------------------------------------------------
    @property
    def node_id(self) -> str:
        return str(self.doc["node_id"])

    @property
    def serial(self) -> int:
        return int(self.doc["serial"])

    @property
    def name(self) -> str:
        return str(self.doc["name"])

    @property
    def kind(self) -> NodeKind:
        return NodeKind(self.doc["kind"])

    @property
    def jurisdiction(self) -> str:
        return str(self.doc["jurisdiction"])

    @property
    def url(self) -> str:
        return str(self.doc["url"]).rstrip("/")

    @property
    def signing_key(self) -> VerifyKey:
        return VerifyKey.from_b64(self.doc["keys"]["signing"])

    @property
    def encryption_key_b64(self) -> str:
        return str(self.doc["keys"]["encryption"])

    @property
    def signed_bytes(self) -> bytes:
        """The exact bytes both signatures cover."""
        body = {k: v for k, v in self.doc.items() if k not in ("sig", "rotation_sig")}
        return canonical.dumps(body)

    @property
    def card_hash(self) -> str:
        """SHA-256 over the full signed card, as successors reference it."""
        return canonical.sha256_hex(canonical.dumps(self.doc))

    def to_json(self) -> bytes:
        """The card's canonical JSON."""
        return canonical.dumps(self.doc)

    # -- verification ----------------------------------------------------
    def verify_self(self) -> None:
        """Check the self-signature, and for a first card the derived node id.

        Raises:
            CardSignatureError: if the signature does not verify.
            InvalidCardError: if a first card's node id is not its key's.
        """
        key = self.signing_key
        try:
            key.verify(b64d(self.doc["sig"], length=64), self.signed_bytes)
        except BadSignature as e:
            raise CardSignatureError("card is not signed by its own signing key") from e
        if self.serial == 1 and node_id_for(key) != self.node_id:
            raise InvalidCardError("node_id is not derived from the first signing key")

    def verify_successor(self, unverified_next: NodeCard) -> NodeCard:
        """Verify that ``unverified_next`` is a valid rotation of this card.

        Raises:
            CardChainError: if it is not the next card of the same node.
            CardSignatureError: if either signature fails.
        """
        nxt = unverified_next
        if nxt.node_id != self.node_id:
            raise CardChainError("card belongs to another node")
        if nxt.serial != self.serial + 1:
            raise CardChainError(f"expected card serial {self.serial + 1}, got {nxt.serial}")
        if nxt.doc["previous"]["hash"] != self.card_hash:
            raise CardChainError("card does not reference the card we hold")
        nxt.verify_self()
        try:
            self.signing_key.verify(b64d(nxt.doc["rotation_sig"], length=64), nxt.signed_bytes)
        except BadSignature as e:
            raise CardSignatureError("rotation is not signed by the previous key") from e
        return nxt


def sign_card(
    body: dict[str, Any], *, key: SigningKey, previous_key: SigningKey | None = None
) -> dict[str, Any]:
    """Attach ``sig`` (and ``rotation_sig``) to an unsigned card body.

    ``key`` and ``previous_key`` are ``hazmat.keys.SigningKey`` objects.
    """
    data = canonical.dumps(body)
    doc = dict(body)
    doc["sig"] = b64e(key.sign(data))
    if previous_key is not None:
        doc["rotation_sig"] = b64e(previous_key.sign(data))
    return doc
