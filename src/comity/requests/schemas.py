"""The request document: what a requesting authority sends, checked against the catalog.

A request travels as one JSON object in a signed ``request.submit`` message::

    {"v": 1, "id": "<uuid>", "type": "expedited-preservation", "instrument": "budapest",
     "reference": "FR-2026-0042", "language": "en", "offence": "illegal-access",
     "data_categories": ["traffic"], "flags": {...}, "fields": {...},
     "references": ["<uuid of an earlier request>"], "requested_deadline": null,
     "created": "2026-11-29T10:00:00Z"}

:func:`parse_request` collects *every* problem of a document before failing,
each naming the element at fault and, for a missing mandatory element, the
article of the applicable instrument that requires it.

Trust assumptions: documents come from officers (through the API or CLI) or
from peers; both are untrusted until parsed here.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from comity.clock import format_ts, parse_ts
from comity.requests.catalog import Catalog
from comity.requests.errors import RequestValidationError

__all__ = ["FLAG_NAMES", "Flags", "RequestDocument", "parse_request"]

_SLUG = re.compile(r"\A[a-z0-9][a-z0-9.+-]{0,63}\Z")
_LANG = re.compile(r"\A[a-z]{2,3}(-[A-Za-z0-9]{2,8})*\Z")
TEXT_LIMIT = 20_000
STRING_LIMIT = 500
MAX_REFERENCES = 50
FLAG_NAMES = ("urgent", "emergency", "confidential", "no_user_notification")
_KEYS = {"v", "id", "type", "instrument", "reference", "language", "offence",
         "data_categories", "flags", "fields", "references", "requested_deadline", "created"}
# The definition of "emergency" every emergency flag must be backed by.
_EMERGENCY_BASIS = ("uncc", "2(o)")


@dataclass(frozen=True)
class Flags:
    urgent: bool = False
    emergency: bool = False
    confidential: bool = False
    no_user_notification: bool = False
    use_limitation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"urgent": self.urgent, "emergency": self.emergency,
                "confidential": self.confidential,
                "no_user_notification": self.no_user_notification,
                "use_limitation": self.use_limitation}


@dataclass(frozen=True)
class RequestDocument:
    """A request that passed every check of :func:`parse_request`."""

    id: str
    type: str
    instrument: str
    reference: str
    language: str
    offence: str
    data_categories: tuple[str, ...]
    flags: Flags
    fields: dict[str, str]
    created: str
    references: tuple[str, ...] = ()
    requested_deadline: dict[str, str] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"v": 1, "id": self.id, "type": self.type, "instrument": self.instrument,
                "reference": self.reference, "language": self.language,
                "offence": self.offence, "data_categories": list(self.data_categories),
                "flags": self.flags.to_dict(), "fields": dict(sorted(self.fields.items())),
                "references": list(self.references),
                "requested_deadline": self.requested_deadline, "created": self.created}


class _Problems:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, where: str, message: str, **extra: Any) -> None:
        self.items.append({"field": where, "message": message, **extra})


def _text(p: _Problems, obj: dict[str, Any], key: str, limit: int, where: str) -> str:
    v = obj.get(key)
    if not isinstance(v, str) or not v.strip() or len(v) > limit:
        p.add(where, f"{where} must be a non-empty string of at most {limit} characters")
        return ""
    return v


def parse_request(obj: object, catalog: Catalog, *, strict_form: bool = False
                  ) -> RequestDocument:
    """Check a request document against the catalog and return it parsed.

    ``strict_form`` (for documents from peers) also requires the document to
    be exactly its normal form, so the bytes both sides keep are the same.

    Raises:
        UnknownRequestTypeError: the type is not in the catalog.
        RequestValidationError: listing every problem found.
    """
    p = _Problems()
    if not isinstance(obj, dict):
        raise RequestValidationError([{"field": "request", "message":
                                       "a request must be a JSON object"}])
    for k in sorted(set(obj) - _KEYS):
        p.add(k, f"unknown element {k!r}")
    # `type(...) is int`: True and 1.0 compare equal to 1 but are not the normal form.
    if type(obj.get("v")) is not int or obj["v"] != 1:
        p.add("v", "v must be 1")
    rid = obj.get("id")
    try:
        if not isinstance(rid, str) or str(uuid.UUID(rid)) != rid:
            raise ValueError
    except ValueError:
        p.add("id", "id must be a lowercase UUID")
    spec = catalog.type(obj["type"]) if isinstance(obj.get("type"), str) else None
    if spec is None:
        p.add("type", "type must name a request type of the catalog")
    instrument = obj.get("instrument")
    if not isinstance(instrument, str) or instrument not in catalog.instruments:
        p.add("instrument", f"instrument must be one of {sorted(catalog.instruments)}")
        instrument = None
    elif spec is not None and instrument not in spec.legal_basis:
        bases = ", ".join(catalog.cite(i, a) for i, a in spec.legal_basis.items())
        p.add("instrument", f"{spec.title} has no legal basis under "
                            f"{catalog.instruments[instrument].title} (it rests on {bases})")
    reference = _text(p, obj, "reference", 100, "reference")
    language = obj.get("language")
    if not isinstance(language, str) or not _LANG.match(language):
        p.add("language", "language must be a language tag such as 'en' or 'fr'")
    offence = obj.get("offence")
    if not isinstance(offence, str) or offence not in catalog.offences:
        p.add("offence", f"offence must be one of {sorted(catalog.offences)}")
    cats = obj.get("data_categories", [])
    if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
        p.add("data_categories", "data_categories must be a list of strings")
        cats = []
    for c in cats:
        if c not in catalog.data_categories:
            p.add("data_categories", f"unknown data category {c!r}")
        elif spec is not None and spec.data_categories and c not in spec.data_categories:
            p.add("data_categories", f"{spec.title} concerns only "
                                     f"{', '.join(spec.data_categories)} data, not {c!r}")
    if len(set(cats)) != len(cats):
        p.add("data_categories", "data_categories lists a category twice")
    flags = _flags(p, obj.get("flags"))
    fields = _fields(p, obj.get("fields"), catalog, spec, instrument)
    if spec is not None and spec.emergency and not flags.emergency:
        p.add("flags.emergency", f"{spec.title} is an emergency request: flags.emergency "
                                 "must be true")
    if (flags.emergency or (spec is not None and spec.emergency)) and not fields.get(
            "emergency_facts") and not any(x["field"] == "fields.emergency_facts"
                                           for x in p.items):
        p.add("fields.emergency_facts",
              "an emergency request must state the facts showing a significant and imminent "
              f"risk to the life or safety of a person ({catalog.cite(*_EMERGENCY_BASIS)})",
              article=catalog.cite(*_EMERGENCY_BASIS))
    refs = obj.get("references", [])
    if not isinstance(refs, list) or len(refs) > MAX_REFERENCES:
        p.add("references", f"references must be a list of at most {MAX_REFERENCES} request ids")
        refs = []
    for r in refs:
        try:
            if not isinstance(r, str) or str(uuid.UUID(r)) != r:
                raise ValueError
        except ValueError:
            p.add("references", f"not a request id: {r!r}")
    deadline = _deadline(p, obj.get("requested_deadline"))
    created = obj.get("created")
    try:
        if not isinstance(created, str):
            raise ValueError
        created_at = parse_ts(created)
        if deadline is not None and parse_ts(deadline["due"]) <= created_at:
            p.add("requested_deadline.due", "the requested deadline is not after the "
                                            "request's creation")
    except ValueError:
        p.add("created", "created must be a timestamp such as 2026-11-29T10:00:00Z")
    if p.items:
        raise RequestValidationError(p.items)
    assert spec is not None
    assert isinstance(instrument, str)
    doc = RequestDocument(
        id=str(rid), type=spec.slug, instrument=instrument, reference=reference,
        language=str(language), offence=str(offence), data_categories=tuple(cats),
        flags=flags, fields=fields, created=str(created), references=tuple(refs),
        requested_deadline=deadline)
    if strict_form and doc.to_dict() != obj:
        raise RequestValidationError([{"field": "request",
                                       "message": "request document is not in normal form"}])
    return doc


def _flags(p: _Problems, v: object) -> Flags:
    if v is None:
        return Flags()
    if not isinstance(v, dict):
        p.add("flags", "flags must be an object")
        return Flags()
    for k in sorted(set(v) - {*FLAG_NAMES, "use_limitation"}):
        p.add(f"flags.{k}", f"unknown flag {k!r}")
    values = {}
    for name in FLAG_NAMES:
        x = v.get(name, False)
        if not isinstance(x, bool):
            p.add(f"flags.{name}", f"flags.{name} must be true or false")
            x = False
        values[name] = x
    limit = v.get("use_limitation")
    if limit is not None and (not isinstance(limit, str) or not limit.strip()
                              or len(limit) > TEXT_LIMIT):
        p.add("flags.use_limitation", "flags.use_limitation must be a non-empty text or null")
        limit = None
    return Flags(**values, use_limitation=limit)


def _fields(p: _Problems, v: object, catalog: Catalog, spec: Any, instrument: str | None
            ) -> dict[str, str]:
    if not isinstance(v, dict):
        p.add("fields", "fields must be an object")
        v = {}
    out: dict[str, str] = {}
    allowed = set()
    if spec is not None:
        allowed = {*spec.required, *spec.optional, "emergency_facts"}
    for name, value in v.items():
        fs = catalog.fields.get(name)
        if fs is None or (spec is not None and name not in allowed):
            what = f"{spec.title} requests" if spec is not None else "requests"
            p.add(f"fields.{name}", f"{name!r} is not an element of {what}")
            continue
        limit = TEXT_LIMIT if fs.kind == "text" else STRING_LIMIT
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            p.add(f"fields.{name}", f"{fs.title} ({name}) must be a non-empty text of at most "
                                    f"{limit} characters")
            continue
        out[name] = value
    if spec is not None and instrument is not None and instrument in spec.legal_basis:
        for name, article in spec.required_for(instrument).items():
            if name not in out and f"fields.{name}" not in {x["field"] for x in p.items}:
                cite = catalog.cite(instrument, article)
                p.add(f"fields.{name}",
                      f"{catalog.fields[name].title} ({name}) is missing: required by {cite}",
                      article=cite, missing=True)
    return out


def _deadline(p: _Problems, v: object) -> dict[str, str] | None:
    if v is None:
        return None
    if not isinstance(v, dict) or set(v) != {"due", "reason"}:
        p.add("requested_deadline", "requested_deadline must be {due, reason} or null")
        return None
    try:
        due = format_ts(parse_ts(v["due"]))
        if due != v["due"]:
            raise ValueError
    except (ValueError, TypeError):
        p.add("requested_deadline.due", "requested_deadline.due must be a timestamp "
                                        "such as 2026-12-01T00:00:00Z")
        return None
    reason = v.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > TEXT_LIMIT:
        # UNTOC 18(24): the requesting Party may suggest a deadline, giving reasons.
        p.add("requested_deadline.reason", "a requested deadline must give its reasons "
                                           "(UNTOC Art. 18(24))")
        return None
    return {"due": due, "reason": reason}
