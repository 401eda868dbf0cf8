"""The request catalog: every request type, its legal basis and its rules, loaded from data.

The catalog is ``catalog.yaml`` next to this module, or the file a node names
in its ``requests_catalog`` setting. Nothing about a request type is written
in code: its legal basis per instrument, its mandatory elements and the
article that requires each, who may send it to whom, its channel, its
periods and its possible outcomes all come from the file. Rules from
instruments whose text is unconfirmed are therefore corrected by editing
data, not code.

The catalog is checked as a whole when loaded (every field, instrument,
refusal ground and outcome a type names must exist), so a bad edit fails at
start-up with the line at fault, never in the middle of a request.

Trust assumptions: the catalog file is the node operator's; it is trusted as
configuration, but still validated.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from comity.requests.deadlines import Period
from comity.requests.errors import CatalogError

__all__ = ["Catalog", "Instrument", "RequestTypeSpec", "Taxon", "default_catalog", "load_catalog"]

DEFAULT_PATH = Path(__file__).with_name("catalog.yaml")
FIELD_KINDS = ("text", "string")
# The outcomes a type may list: the terminal or resting states of lifecycle.py.
OUTCOMES = frozenset({"preserved", "executed", "executed_partially", "refused", "impossible",
                      "postponed", "expired", "lifted", "superseded_by_mla", "withdrawn"})


@dataclass(frozen=True)
class Instrument:
    slug: str
    title: str
    short: str
    confirmed: bool


@dataclass(frozen=True)
class Taxon:
    """An entry of a vocabulary (offence, data category, refusal ground) with its articles."""

    slug: str
    title: str
    articles: dict[str, str]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str
    title: str


@dataclass(frozen=True)
class RequestTypeSpec:
    """One request type, as the catalog defines it."""

    slug: str
    title: str
    legal_basis: dict[str, str]
    channel: str
    sender_kinds: tuple[str, ...]
    recipient_kinds: tuple[str, ...]
    required: dict[str, dict[str, str]]
    optional: tuple[str, ...]
    refusal_grounds: tuple[str, ...]
    outcomes: tuple[str, ...]
    response_period: Period
    data_categories: tuple[str, ...] = ()
    preservation: bool = False
    preservation_minimum: Period | None = None
    preservation_minimum_basis: dict[str, str] | None = None
    emergency: bool = False

    def required_for(self, instrument: str) -> dict[str, str]:
        """Mandatory elements under ``instrument``: field name -> article requiring it."""
        return {name: arts[instrument] for name, arts in self.required.items()
                if instrument in arts}

    def basis(self, instrument: str) -> str:
        """The article this type rests on under ``instrument``."""
        return self.legal_basis[instrument]


@dataclass(frozen=True)
class Catalog:
    """Every vocabulary and request type of one catalog file."""

    instruments: dict[str, Instrument]
    offences: dict[str, Taxon]
    data_categories: dict[str, Taxon]
    refusal_grounds: dict[str, Taxon]
    fields: dict[str, FieldSpec]
    types: dict[str, RequestTypeSpec]
    emergency_period: Period
    source: str

    def type(self, slug: str) -> RequestTypeSpec:
        from comity.requests.errors import UnknownRequestTypeError

        try:
            return self.types[slug]
        except KeyError:
            raise UnknownRequestTypeError(
                f"unknown request type {slug!r}; known types: {', '.join(sorted(self.types))}"
            ) from None

    def cite(self, instrument: str, article: str) -> str:
        """``"Budapest Art. 29(2)(e)"``."""
        inst = self.instruments[instrument]
        mark = "" if inst.confirmed else " [unconfirmed]"
        return f"{inst.short} Art. {article}{mark}"

    def to_dict(self) -> dict[str, Any]:
        """The catalog as JSON (for the API and ``comity requests catalog``)."""
        def period(p: Period | None) -> str | None:
            return None if p is None else str(p)

        return {
            "instruments": {k: vars(v) for k, v in self.instruments.items()},
            "offences": {k: {"title": v.title, "articles": v.articles}
                         for k, v in self.offences.items()},
            "data_categories": {k: {"title": v.title, "articles": v.articles}
                                for k, v in self.data_categories.items()},
            "refusal_grounds": {k: {"title": v.title, "articles": v.articles}
                                for k, v in self.refusal_grounds.items()},
            "fields": {k: {"kind": v.kind, "title": v.title} for k, v in self.fields.items()},
            "emergency_period": str(self.emergency_period),
            "types": {k: {
                "title": t.title, "legal_basis": t.legal_basis, "channel": t.channel,
                "sender_kinds": list(t.sender_kinds), "recipient_kinds": list(t.recipient_kinds),
                "required": t.required, "optional": list(t.optional),
                "refusal_grounds": list(t.refusal_grounds), "outcomes": list(t.outcomes),
                "response_period": str(t.response_period),
                "data_categories": list(t.data_categories), "preservation": t.preservation,
                "preservation_minimum": period(t.preservation_minimum),
                "preservation_minimum_basis": t.preservation_minimum_basis,
                "emergency": t.emergency,
            } for k, t in self.types.items()},
        }


# -- loading ------------------------------------------------------------------

class _Reader:
    """Typed access to the parsed YAML that names the path at fault."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, msg: str) -> CatalogError:
        return CatalogError(f"{self.source}: {where}: {msg}")

    def mapping(self, v: object, where: str) -> dict[str, Any]:
        if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
            raise self.fail(where, "must be a mapping")
        return v

    def text(self, v: object, where: str) -> str:
        if not isinstance(v, str) or not v.strip():
            raise self.fail(where, "must be a non-empty string")
        return v

    def strings(self, v: object, where: str) -> tuple[str, ...]:
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.fail(where, "must be a list of strings")
        return tuple(v)

    def articles(self, v: object, where: str, instruments: dict[str, Instrument]
                 ) -> dict[str, str]:
        arts = self.mapping(v, where)
        out: dict[str, str] = {}
        for inst, art in arts.items():
            if inst not in instruments:
                raise self.fail(f"{where}.{inst}", "unknown instrument")
            # YAML reads `29` as an int (fine) and `yes` as a bool (never an article).
            if isinstance(art, bool):
                raise self.fail(f"{where}.{inst}", "an article must be text such as '29(2)'")
            out[inst] = self.text(str(art) if isinstance(art, int) else art, f"{where}.{inst}")
        return out

    def period(self, v: object, where: str) -> Period:
        try:
            return Period.parse(self.text(v, where))
        except ValueError as e:
            raise self.fail(where, str(e)) from e


def load_catalog(path: Path | None = None) -> Catalog:
    """Load and check a catalog file (the built-in one by default).

    Raises:
        CatalogError: naming the file and the entry at fault.
    """
    path = path or DEFAULT_PATH
    r = _Reader(str(path))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise CatalogError(f"{path}: cannot be read: {e}") from e
    top = r.mapping(raw, "catalog")
    instruments = {
        slug: Instrument(slug, r.text(d.get("title"), f"instruments.{slug}.title"),
                         r.text(d.get("short"), f"instruments.{slug}.short"),
                         bool(d.get("confirmed", False)))
        for slug, d in ((k, r.mapping(v, f"instruments.{k}"))
                        for k, v in r.mapping(top.get("instruments"), "instruments").items())}

    def taxa(section: str) -> dict[str, Taxon]:
        out = {}
        for slug, d in r.mapping(top.get(section), section).items():
            d = r.mapping(d, f"{section}.{slug}")
            out[slug] = Taxon(slug, r.text(d.get("title"), f"{section}.{slug}.title"),
                              r.articles(d.get("articles", {}), f"{section}.{slug}.articles",
                                         instruments))
        return out

    offences, data_categories, grounds = (taxa("offences"), taxa("data_categories"),
                                          taxa("refusal_grounds"))
    fields: dict[str, FieldSpec] = {}
    for name, d in r.mapping(top.get("fields"), "fields").items():
        d = r.mapping(d, f"fields.{name}")
        kind = r.text(d.get("kind"), f"fields.{name}.kind")
        if kind not in FIELD_KINDS:
            raise r.fail(f"fields.{name}.kind", f"must be one of {FIELD_KINDS}")
        fields[name] = FieldSpec(name, kind, r.text(d.get("title"), f"fields.{name}.title"))
    types = {slug: _load_type(r, slug, r.mapping(d, f"types.{slug}"), instruments, fields,
                              grounds, data_categories)
             for slug, d in r.mapping(top.get("types"), "types").items()}
    if not types:
        raise r.fail("types", "the catalog defines no request type")
    return Catalog(instruments, offences, data_categories, grounds, fields, types,
                   r.period(top.get("emergency_period"), "emergency_period"), str(path))


def _load_type(r: _Reader, slug: str, d: dict[str, Any], instruments: dict[str, Instrument],
               fields: dict[str, FieldSpec], grounds: dict[str, Taxon],
               data_categories: dict[str, Taxon]) -> RequestTypeSpec:
    where = f"types.{slug}"
    basis = r.articles(d.get("legal_basis"), f"{where}.legal_basis", instruments)
    if not basis:
        raise r.fail(f"{where}.legal_basis", "a request type needs a legal basis")
    required = {}
    for name, arts in r.mapping(d.get("required"), f"{where}.required").items():
        if name not in fields:
            raise r.fail(f"{where}.required.{name}", "unknown field")
        required[name] = r.articles(arts, f"{where}.required.{name}", instruments)
        for inst in required[name]:
            if inst not in basis:
                raise r.fail(f"{where}.required.{name}.{inst}",
                             "the type has no legal basis under this instrument")
    optional = r.strings(d.get("optional", []), f"{where}.optional")
    for name in optional:
        if name not in fields:
            raise r.fail(f"{where}.optional", f"unknown field {name!r}")
    refusal = r.strings(d.get("refusal_grounds", []), f"{where}.refusal_grounds")
    for g in refusal:
        if g not in grounds:
            raise r.fail(f"{where}.refusal_grounds", f"unknown ground {g!r}")
    outcomes = r.strings(d.get("outcomes"), f"{where}.outcomes")
    for o in outcomes:
        if o not in OUTCOMES:
            raise r.fail(f"{where}.outcomes", f"unknown outcome {o!r}")
    cats = r.strings(d.get("data_categories", []), f"{where}.data_categories")
    for c in cats:
        if c not in data_categories:
            raise r.fail(f"{where}.data_categories", f"unknown data category {c!r}")
    preservation = bool(d.get("preservation", False))
    minimum = (r.period(d["preservation_minimum"], f"{where}.preservation_minimum")
               if "preservation_minimum" in d else None)
    if preservation and minimum is None:
        raise r.fail(where, "a preservation type needs preservation_minimum")
    min_basis = (r.articles(d["preservation_minimum_basis"],
                            f"{where}.preservation_minimum_basis", instruments)
                 if "preservation_minimum_basis" in d else None)
    return RequestTypeSpec(
        slug=slug, title=r.text(d.get("title"), f"{where}.title"), legal_basis=basis,
        channel=r.text(d.get("channel"), f"{where}.channel"),
        sender_kinds=r.strings(d.get("sender_kinds"), f"{where}.sender_kinds"),
        recipient_kinds=r.strings(d.get("recipient_kinds"), f"{where}.recipient_kinds"),
        required=required, optional=optional, refusal_grounds=refusal, outcomes=outcomes,
        response_period=r.period(d.get("response_period"), f"{where}.response_period"),
        data_categories=cats, preservation=preservation, preservation_minimum=minimum,
        preservation_minimum_basis=min_basis, emergency=bool(d.get("emergency", False)))


@functools.cache
def default_catalog() -> Catalog:
    """The built-in catalog, loaded once per process."""
    return load_catalog()


def catalog_for(path: Path | None) -> Catalog:
    """The catalog a node uses: its own file if it names one, else the built-in one."""
    return default_catalog() if path is None else _cached(path.resolve())


@functools.cache
def _cached(path: Path) -> Catalog:
    return load_catalog(path)
