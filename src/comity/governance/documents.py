"""The signed documents of a council: proposals, ballots and appeals.

Each is canonical JSON (RFC 8785) signed by its author's node key, the key
of the author's card at ``serial``. Each carries its ``type``, so a
signature over one kind of document can never pass for another. They
travel inside federation messages but stand on their own: anyone holding
the members' cards can check a ballot, and so recompute a tally, without
trusting whoever relayed it (the chair included).

Trust assumptions: every document arriving from outside is untrusted until
:func:`parse_proposal`, :func:`parse_ballot` or :func:`parse_appeal` has
accepted its shape and the caller has verified its signature.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Any

from comity.agreements.schemas import ProposalKind
from comity.clock import parse_ts
from comity.governance.errors import InvalidDocumentError
from comity.hazmat import canonical
from comity.hazmat.keys import b64d, b64e
from comity.identity.services import LocalIdentity
from comity.registry.errors import InvalidResourceError
from comity.registry.resources import parse_block
from comity.registry.services import STATUSES

__all__ = ["Choice", "Signed", "allocation_effect", "parse_appeal", "parse_ballot",
           "parse_proposal", "sign"]

PROPOSAL = "comity.proposal"
BALLOT = "comity.ballot"
APPEAL = "comity.appeal"
_RULE_KEYS = frozenset({"quorum_percent", "majorities", "discussion_seconds", "vote_seconds",
                        "last_call_seconds"})


class Choice(enum.StrEnum):
    YES = "yes"
    NO = "no"
    ABSTAIN = "abstain"


@dataclass(frozen=True)
class Signed:
    """A document, its author, and the author's signature over its canonical bytes."""

    doc: dict[str, Any]
    author: str
    serial: int
    signature: str  # base64url Ed25519

    @property
    def data(self) -> bytes:
        return canonical.dumps(self.doc)

    @property
    def doc_hash(self) -> str:
        return canonical.sha256_hex(canonical.dumps(self.doc))

    def to_dict(self) -> dict[str, Any]:
        return {"doc": self.doc, "serial": self.serial, "signature": self.signature}

    @property
    def signature_bytes(self) -> bytes:
        return b64d(self.signature)


def sign(local: LocalIdentity, doc: dict[str, Any]) -> Signed:
    """``doc`` signed by this node (its current card)."""
    return Signed(doc, local.node_id, local.serial,
                  b64e(local.signing_key.sign(canonical.dumps(doc))))


def _signed(unverified: object, expected_type: str, author_field: str) -> Signed:
    if not isinstance(unverified, dict) or set(unverified) != {"doc", "serial", "signature"}:
        raise InvalidDocumentError(f"a signed {expected_type} is {{doc, serial, signature}}")
    doc, serial, signature = unverified["doc"], unverified["serial"], unverified["signature"]
    if not isinstance(doc, dict) or doc.get("type") != expected_type:
        raise InvalidDocumentError(f"doc must be a {expected_type} document")
    if not isinstance(serial, int) or isinstance(serial, bool) or not 1 <= serial <= 1_000_000:
        raise InvalidDocumentError("serial must be a card serial")
    if not isinstance(signature, str):
        raise InvalidDocumentError("signature must be base64url text")
    try:
        b64d(signature, length=64)
    except ValueError as e:
        raise InvalidDocumentError(f"signature: {e}") from e
    try:
        canonical.dumps(doc)
    except canonical.CanonicalJSONError as e:
        raise InvalidDocumentError(f"doc: {e}") from e
    author = doc.get(author_field)
    if not isinstance(author, str):
        raise InvalidDocumentError(f"{author_field} must be a node id")
    return Signed(doc, author, serial, signature)


def _need(doc: dict[str, Any], keys: set[str], what: str) -> None:
    if set(doc) != keys:
        missing = sorted(keys - set(doc))
        extra = sorted(set(doc) - keys)
        raise InvalidDocumentError(f"{what}: missing {missing}, unexpected {extra}")


def _uuid(value: object, what: str) -> str:
    try:
        if not isinstance(value, str) or str(uuid.UUID(value)) != value:
            raise ValueError
    except ValueError:
        raise InvalidDocumentError(f"{what} must be a lowercase UUID") from None
    return value


def _ts(value: object, what: str) -> None:
    try:
        if not isinstance(value, str):
            raise ValueError
        parse_ts(value)
    except ValueError:
        raise InvalidDocumentError(f"{what} must be an RFC 3339 UTC timestamp") from None


def allocation_effect(effect: object) -> dict[str, Any]:
    """Check an allocation's effect: ``{block, holder: {handle, name, country}, status, name}``.

    Raises:
        InvalidDocumentError
    """
    if not isinstance(effect, dict):
        raise InvalidDocumentError("an allocation's effect must be an object")
    _need(effect, {"block", "holder", "status", "name"}, "allocation effect")
    try:
        parse_block(str(effect["block"]))
    except InvalidResourceError as e:
        raise InvalidDocumentError(f"effect.block: {e.detail}") from e
    holder = effect["holder"]
    if not isinstance(holder, dict):
        raise InvalidDocumentError("effect.holder must be {handle, name, country}")
    _need(holder, {"handle", "name", "country"}, "effect.holder")
    handle, name, country = holder["handle"], holder["name"], holder["country"]
    if not isinstance(handle, str) or not 1 <= len(handle) <= 64 or not all(
            c.isascii() and (c.isalnum() or c == "-") for c in handle):
        raise InvalidDocumentError("effect.holder.handle must be 1-64 ASCII letters, digits, '-'")
    if not isinstance(name, str) or not 1 <= len(name) <= 300:
        raise InvalidDocumentError("effect.holder.name must be 1-300 characters")
    if not isinstance(country, str) or len(country) != 2 or not country.isascii() \
            or not country.isupper():
        raise InvalidDocumentError("effect.holder.country must be an ISO 3166-1 alpha-2 code")
    if effect["status"] not in STATUSES:
        raise InvalidDocumentError(f"effect.status must be one of {', '.join(STATUSES)}")
    if not isinstance(effect["name"], str) or not 1 <= len(effect["name"]) <= 300:
        raise InvalidDocumentError("effect.name must be 1-300 characters")
    return effect


def _rules_effect(effect: object) -> dict[str, Any]:
    if not isinstance(effect, dict) or not effect or not set(effect) <= _RULE_KEYS:
        raise InvalidDocumentError(
            f"a change of rules sets some of {', '.join(sorted(_RULE_KEYS))}")
    from comity.agreements.schemas import CouncilRules

    # Checked as a complete rule set would be (ranges, every kind named).
    probe = {"name": "probe", "chair": "0" * 32, "quorum_percent": 50,
             "majorities": {k.value: "simple" for k in ProposalKind},
             "discussion_seconds": 0, "vote_seconds": 1, "last_call_seconds": 0, **effect}
    try:
        CouncilRules.model_validate(probe)
    except ValueError as e:
        raise InvalidDocumentError(f"effect: {e}") from e
    return effect


def parse_proposal(unverified: object) -> Signed:
    """A signed proposal: ``{type, v, id, council, kind, title, text, effect, proposer, created}``.

    Raises:
        InvalidDocumentError: naming the first problem.
    """
    s = _signed(unverified, PROPOSAL, "proposer")
    d = s.doc
    _need(d, {"type", "v", "id", "council", "kind", "title", "text", "effect", "proposer",
              "created"}, "proposal")
    if d["v"] != 1:
        raise InvalidDocumentError("unsupported proposal version")
    _uuid(d["id"], "id")
    _uuid(d["council"], "council")
    _ts(d["created"], "created")
    try:
        kind = ProposalKind(d["kind"])
    except ValueError:
        raise InvalidDocumentError(
            f"kind must be one of {', '.join(k.value for k in ProposalKind)}") from None
    if not isinstance(d["title"], str) or not 1 <= len(d["title"]) <= 500:
        raise InvalidDocumentError("title must be 1-500 characters")
    if not isinstance(d["text"], str) or len(d["text"]) > 100_000:
        raise InvalidDocumentError("text must be at most 100,000 characters")
    if kind is ProposalKind.ALLOCATION:
        allocation_effect(d["effect"])
    elif kind is ProposalKind.RULES:
        _rules_effect(d["effect"])
    elif d["effect"] != {}:
        raise InvalidDocumentError(f"a {kind.value} has no effect on the registry: effect is {{}}")
    return s


def parse_ballot(unverified: object) -> Signed:
    """A signed ballot: ``{type, v, council, proposal, doc_hash, round, choice, voter, cast}``.

    Raises:
        InvalidDocumentError
    """
    s = _signed(unverified, BALLOT, "voter")
    d = s.doc
    _need(d, {"type", "v", "council", "proposal", "doc_hash", "round", "choice", "voter",
              "cast"}, "ballot")
    if d["v"] != 1:
        raise InvalidDocumentError("unsupported ballot version")
    _uuid(d["council"], "council")
    _uuid(d["proposal"], "proposal")
    _ts(d["cast"], "cast")
    if not isinstance(d["doc_hash"], str) or len(d["doc_hash"]) != 64:
        raise InvalidDocumentError("doc_hash must be the proposal's SHA-256")
    if d["round"] not in (1, 2):
        raise InvalidDocumentError("round must be 1, or 2 after an appeal")
    if d["choice"] not in {c.value for c in Choice}:
        raise InvalidDocumentError("choice must be yes, no or abstain")
    return s


def parse_appeal(unverified: object) -> Signed:
    """A signed appeal: ``{type, v, council, proposal, doc_hash, grounds, appellant, made}``.

    Raises:
        InvalidDocumentError
    """
    s = _signed(unverified, APPEAL, "appellant")
    d = s.doc
    _need(d, {"type", "v", "council", "proposal", "doc_hash", "grounds", "appellant", "made"},
          "appeal")
    if d["v"] != 1:
        raise InvalidDocumentError("unsupported appeal version")
    _uuid(d["council"], "council")
    _uuid(d["proposal"], "proposal")
    _ts(d["made"], "made")
    if not isinstance(d["grounds"], str) or not 1 <= len(d["grounds"]) <= 10_000:
        raise InvalidDocumentError("grounds must be 1-10,000 characters")
    return s
