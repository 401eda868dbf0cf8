"""Agreement documents: the canonical text every party signs.

An agreement version is one canonical JSON document (RFC 8785). Every party
signs exactly those bytes with its node key; an amendment is a new document
with the same id, the next version number and the hash of the version it
replaces, and is signed again by all its parties.

Scope says what may flow: request types, offence categories, data
categories, shared collections with a TLP ceiling, default deadlines (days per
request type), languages, and the treaty instruments the parties apply to
each other's requests (the first one both the catalog and the agreement name
is the legal basis of a request). An empty list means "none", never "any".

Example::

    doc = AgreementDocument.model_validate({...})
    doc.canonical_bytes()   # what parties sign
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from comity.clock import format_ts, parse_ts
from comity.hazmat import canonical

__all__ = [
    "AGREEMENT_TYPE",
    "TLP",
    "AgreementDocument",
    "AgreementStatus",
    "CollectionScope",
    "CouncilRules",
    "Majority",
    "ProposalKind",
    "Scope",
    "parse_document",
]

AGREEMENT_TYPE = "comity.agreement"
_SLUG = re.compile(r"\A[a-z0-9][a-z0-9.+-]{0,63}\Z")
_LANG = re.compile(r"\A[a-z]{2,3}(-[A-Za-z0-9]{2,8})*\Z")
_NODE = re.compile(r"\A[0-9a-f]{32}\Z")

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.+-]{0,63}$")]


class TLP(enum.StrEnum):
    """TLP 2.0 levels, ordered from least to most restrictive."""

    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"


class AgreementStatus(enum.StrEnum):
    """Where an agreement version is in its life."""

    DRAFT = "draft"
    PROPOSED = "proposed"
    SIGNED = "signed"  # all parties signed, validity not yet begun
    IN_FORCE = "in_force"
    SUSPENDED = "suspended"
    SUPERSEDED = "superseded"
    TERMINATED = "terminated"
    EXPIRED = "expired"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectionScope(_Strict):
    name: Slug
    tlp_ceiling: TLP


class Majority(enum.StrEnum):
    """How many of the ballots cast (abstentions apart) a decision needs."""

    SIMPLE = "simple"  # more yes than no
    TWO_THIRDS = "two-thirds"  # yes at least twice no, and at least one yes
    UNANIMITY = "unanimity"  # no "no" at all, and at least one yes


class ProposalKind(enum.StrEnum):
    POLICY = "policy"
    ALLOCATION = "allocation"
    RULES = "rules"  # a change of the council's voting rules
    CONSULTATION = "consultation"  # to settle a disagreement; changes nothing by itself


class CouncilRules(_Strict):
    """A council the agreement's parties form: one member one vote, by these rules.

    ``pools`` are the blocks the council governs (its registry's pools);
    ``chair`` is the party that numbers the council's decisions (it cannot
    decide anything alone: every member recomputes each tally from the
    signed ballots). Windows are in seconds.
    """

    name: Slug
    chair: str
    quorum_percent: Annotated[int, Field(ge=1, le=100)]
    majorities: dict[ProposalKind, Majority]
    discussion_seconds: Annotated[int, Field(ge=0, le=366 * 86400)]
    vote_seconds: Annotated[int, Field(ge=1, le=366 * 86400)]
    last_call_seconds: Annotated[int, Field(ge=0, le=366 * 86400)]
    pools: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _complete(self) -> CouncilRules:
        missing = [k.value for k in ProposalKind if k not in self.majorities]
        if missing:
            raise ValueError(f"majorities must name a rule for {', '.join(missing)}")
        if not _NODE.match(self.chair):
            raise ValueError(f"chair is not a node id: {self.chair!r}")
        return self


class Scope(_Strict):
    request_types: tuple[Slug, ...] = ()
    offence_categories: tuple[Slug, ...] = ()
    data_categories: tuple[Slug, ...] = ()
    collections: tuple[CollectionScope, ...] = ()
    default_deadlines: dict[Slug, Annotated[int, Field(ge=1, le=3650)]] = Field(
        default_factory=dict)
    languages: tuple[str, ...] = ()
    # Omitted from the signed form when empty, so that documents written
    # before instruments existed keep their bytes (and their signatures).
    instruments: tuple[Slug, ...] = ()
    # Likewise omitted when None: the council the parties form, if any.
    council: CouncilRules | None = None

    @field_validator("languages")
    @classmethod
    def _langs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for lang in v:
            if not _LANG.match(lang):
                raise ValueError(f"not a language tag: {lang!r}")
        return v

    @model_validator(mode="after")
    def _deadlines_in_scope(self) -> Scope:
        for key in self.default_deadlines:
            if key not in self.request_types:
                raise ValueError(f"deadline given for {key!r}, which is not in request_types")
        return self


class Supersedes(_Strict):
    version: Annotated[int, Field(ge=1)]
    hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class AgreementDocument(_Strict):
    """One version of an agreement, exactly as its parties sign it."""

    type: str = AGREEMENT_TYPE
    v: int = 1
    id: str
    version: Annotated[int, Field(ge=1)]
    title: Annotated[str, Field(min_length=1, max_length=500)]
    parties: tuple[str, ...]
    scope: Scope
    valid_from: str
    valid_until: str | None = None
    supersedes: Supersedes | None = None
    proposed_by: str

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v != AGREEMENT_TYPE:
            raise ValueError(f"type must be {AGREEMENT_TYPE!r}")
        return v

    @field_validator("v")
    @classmethod
    def _v(cls, v: int) -> int:
        if v != 1:
            raise ValueError("unsupported agreement format version")
        return v

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if str(uuid.UUID(v)) != v:
            raise ValueError("id must be a lowercase UUID")
        return v

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _ts(cls, v: str | None) -> str | None:
        if v is not None:
            parse_ts(v)
        return v

    @model_validator(mode="after")
    def _check(self) -> AgreementDocument:
        if len(self.parties) < 2:
            raise ValueError("an agreement needs at least two parties")
        if list(self.parties) != sorted(set(self.parties)):
            raise ValueError("parties must be sorted and distinct")
        for p in self.parties:
            if not _NODE.match(p):
                raise ValueError(f"not a node id: {p!r}")
        if self.proposed_by not in self.parties:
            raise ValueError("the proposer must be a party")
        if self.scope.council is not None and self.scope.council.chair not in self.parties:
            raise ValueError("the council's chair must be a party")
        if self.valid_until is not None and parse_ts(self.valid_until) <= parse_ts(
                self.valid_from):
            raise ValueError("valid_until must be after valid_from")
        if (self.version == 1) != (self.supersedes is None):
            raise ValueError("version 1 supersedes nothing; later versions name their predecessor")
        if self.supersedes is not None and self.supersedes.version != self.version - 1:
            raise ValueError("an amendment supersedes the version just before it")
        return self

    @property
    def bilateral(self) -> bool:
        return len(self.parties) == 2

    @property
    def valid_from_dt(self) -> dt.datetime:
        return parse_ts(self.valid_from)

    @property
    def valid_until_dt(self) -> dt.datetime | None:
        return None if self.valid_until is None else parse_ts(self.valid_until)

    def to_dict(self) -> dict[str, Any]:
        d = self.model_dump(mode="json")
        if not d["scope"]["instruments"]:
            del d["scope"]["instruments"]
        if d["scope"]["council"] is None:
            del d["scope"]["council"]
        return d

    def canonical_bytes(self) -> bytes:
        """The bytes each party signs."""
        return canonical.dumps(self.to_dict())

    def doc_hash(self) -> str:
        return canonical.sha256_hex(self.canonical_bytes())


def parse_document(unverified: object) -> AgreementDocument:
    """Validate an agreement document received from outside.

    The document must be exactly the normal form of what it parses to (no
    coerced types, no omitted defaults), so the bytes we verify signatures
    over are the bytes its author signed.

    Raises:
        InvalidAgreementError: with the first problem found.
    """
    from pydantic import ValidationError

    from comity.agreements.errors import InvalidAgreementError

    try:
        doc = AgreementDocument.model_validate(unverified)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "document"
        raise InvalidAgreementError(f"{where}: {first['msg']}") from e
    if doc.to_dict() != unverified:
        raise InvalidAgreementError("agreement document is not in normal form")
    return doc


def default_valid_from(now: dt.datetime) -> str:
    """Validity starting now, in the wire format."""
    return format_ts(now)
