"""STIX 2.1 objects as a strict TAXII 2.1 server accepts them, and their TLP.

A peer's POST body is untrusted JSON, already parsed and bounded in size by
the HTTP layer. :func:`check_envelope` checks the envelope (a TAXII 2.1
envelope or a STIX bundle) and hands back its objects unverified, so that one
bad object fails alone, as TAXII's status resource expects; :func:`check_object`
then checks each object's STIX 2.1 *common* properties and returns the
:class:`StixMeta` a store needs (id, type, spec version, TAXII version,
revocation, markings, TLP). Anything else is the object's own business and is
kept as sent: type-specific properties, extension bodies, whether granular
selectors point at properties that exist. Only the marking definitions that
carry a TLP id are read further, since a peer must not redefine TLP:CLEAR.

TLP comes from the exact marking-definition ids of TLP 1.0 (STIX 2.1 §7.2.1.4)
and TLP 2.0 (the OASIS extension ``extension-definition--60a3c5c5-…``);
TLP:WHITE reads as CLEAR. Object-level and granular markings count alike, and
the most restrictive level wins; a marking this module does not know is not a
TLP marking, and an object without one has no TLP (the policy decides what
that means). Identifiers must be canonical lowercase, so a TLP id cannot slip
past in capitals and be read as "unmarked".

Everything here is pure: no database, no clock, no stix2 library (which is only
a test peer).

Example::

    for raw in check_envelope(body, max_objects=config.max_objects):
        try:
            meta = check_object(raw)
        except StixError as e:
            failures.append(str(e))   # names the property at fault
            continue
        store(meta.id, meta.version, meta.tlp, raw)
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from comity.agreements.schemas import TLP

__all__ = [
    "SCO_TYPES",
    "TLP2_EXTENSION",
    "TLP_MARKINGS",
    "StixError",
    "StixMeta",
    "check_envelope",
    "check_object",
    "is_tlp_marking",
    "marking_definition",
    "tlp_of",
]


class StixError(ValueError):
    """A STIX object or envelope breaks the rules; ``prop`` names the property at fault."""

    def __init__(self, prop: str, reason: str) -> None:
        super().__init__(f"{prop}: {reason}")
        self.prop = prop


#: The 18 STIX Cyber-observable Object types of STIX 2.1 (§6). They have no
#: ``created``/``modified`` and may omit ``spec_version`` (it then means 2.1).
SCO_TYPES: Final = frozenset({
    "artifact", "autonomous-system", "directory", "domain-name", "email-addr",
    "email-message", "file", "ipv4-addr", "ipv6-addr", "mac-addr", "mutex",
    "network-traffic", "process", "software", "url", "user-account",
    "windows-registry-key", "x509-certificate",
})

#: The TLP 2.0 marking extension (OASIS cti-stix-common-objects).
TLP2_EXTENSION: Final = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
_TLP1: Final[Mapping[str, tuple[TLP, str]]] = MappingProxyType({
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": (TLP.CLEAR, "white"),
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": (TLP.GREEN, "green"),
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": (TLP.AMBER, "amber"),
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": (TLP.RED, "red"),
})
_TLP2: Final[Mapping[TLP, str]] = MappingProxyType({
    TLP.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    TLP.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    TLP.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    TLP.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    TLP.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
})
_TLP2_CREATED: Final = "2022-10-01T00:00:00.000Z"

#: Every TLP 1.0 and TLP 2.0 marking-definition id, with the level it stands for.
TLP_MARKINGS: Final[Mapping[str, TLP]] = MappingProxyType(
    {marking: level for marking, (level, _) in _TLP1.items()}
    | {marking: level for level, marking in _TLP2.items()}
)

# TLP.__doc__ promises the enum runs from least to most restrictive.
_RANK: Final = {level: rank for rank, level in enumerate(TLP)}

# Lowercase only, RFC 4122 variant (STIX 2.1 §2.9), any version.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_TYPE = re.compile(r"[a-z0-9][a-z0-9-]{1,248}[a-z0-9]")
_PROPERTY = re.compile(r"[a-z0-9_]{3,250}")
# [0-9], never \d: \d also matches other scripts' digits.
_TIMESTAMP = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]+))?Z"
)
_SELECTOR = re.compile(r"[a-z0-9_-]{3,249}(?:\.(?:\[[0-9]+\]|[a-z0-9_-]{1,250}))*|id")
_EXTENSION_KEY = re.compile(
    r"extension-definition--" + _UUID.pattern + r"|[a-z0-9][a-z0-9-]*[a-z0-9]-ext"
)
_EXTENSION_TYPES: Final = frozenset({
    "new-sdo", "new-sco", "new-sro", "property-extension", "toplevel-property-extension",
})
_GRANULAR_KEYS: Final = frozenset({"marking_ref", "lang", "selectors"})
_REFERENCE_TEXTS: Final = ("description", "url", "external_id")


class StixMeta(NamedTuple):
    """What a store needs to know about one checked STIX object.

    ``version`` is the object's TAXII version: ``modified``, else ``created``,
    else None (an SCO has neither). ``marking_refs`` lists the object-level
    markings, then the granular ones, each once. ``tlp`` is the most
    restrictive TLP among them, None if none is a TLP marking.
    ``version_at`` is ``version`` as an instant, to the microsecond.
    (A named tuple: immutable, and made for every object a node ingests, at a
    fraction of a frozen dataclass's cost.)
    """

    id: str
    type: str
    spec_version: str
    version: str | None
    created: str | None
    modified: str | None
    revoked: bool
    marking_refs: tuple[str, ...]
    tlp: TLP | None
    version_at: dt.datetime | None = None


def check_object(obj: object) -> StixMeta:
    """Check the STIX 2.1 common properties of one untrusted object.

    Args:
        obj: One parsed JSON value from an envelope's ``objects``.

    Raises:
        StixError: The object breaks a rule; the message names the property.

    Returns:
        The object's metadata. The object itself is not copied or changed.
    """
    if not isinstance(obj, dict):
        raise StixError("object", "must be a JSON object")
    _check_property_names(obj)
    type_ = _check_type(obj.get("type"))
    id_ = _check_identifier(obj.get("id"), "id", type_)
    sco = type_ in SCO_TYPES or "new-sco" in _check_extensions(obj)
    spec_version = _check_spec_version(obj, sco)
    created, modified, version_key = _check_times(obj, type_, sco)
    revoked = obj.get("revoked", False)
    if not isinstance(revoked, bool):
        raise StixError("revoked", "must be a boolean")
    if "created_by_ref" in obj:
        _check_identifier(obj["created_by_ref"], "created_by_ref", "identity")
    _check_external_references(obj)
    _check_labels(obj)
    if type_ == "marking-definition":
        _check_tlp_definition(obj, id_)
    refs = _check_markings(obj)
    return StixMeta(
        id=id_, type=type_, spec_version=spec_version, version=modified or created,
        created=created, modified=modified, revoked=revoked,
        marking_refs=refs, tlp=_most_restrictive(refs),
        version_at=None if version_key is None else version_key[0],
    )


def check_envelope(obj: object, *, max_objects: int) -> list[object]:
    """Check a POSTed TAXII 2.1 envelope or STIX 2.1 bundle; return its objects unchecked.

    Args:
        obj: The parsed request body.
        max_objects: The most objects one request may carry.

    Raises:
        StixError: Not an envelope or bundle, no ``objects`` list, or too many.
        ValueError: ``max_objects`` is not positive (a caller bug).

    Returns:
        The raw objects, in order, each still to go through :func:`check_object`.
    """
    if max_objects < 1:
        raise ValueError("max_objects must be positive")
    if not isinstance(obj, dict):
        raise StixError("envelope", "must be a JSON object")
    if "type" in obj:
        if obj["type"] != "bundle":
            raise StixError("type", "an envelope has no type, and a bundle's is 'bundle'")
        _check_identifier(obj.get("id"), "id", "bundle")
    objects = obj.get("objects")
    if not isinstance(objects, list):
        raise StixError("objects", "must be a list")
    if len(objects) > max_objects:
        raise StixError("objects", f"{len(objects)} objects, more than the {max_objects} allowed")
    return list(objects)


def is_tlp_marking(marking_id: str) -> bool:
    """Whether ``marking_id`` is one of the TLP 1.0 or TLP 2.0 marking-definition ids."""
    return marking_id in TLP_MARKINGS


def tlp_of(item: StixMeta | dict[str, Any]) -> TLP | None:
    """The most restrictive TLP marking an object carries, object-level or granular.

    Args:
        item: Checked metadata, or a raw object (which is checked first).

    Raises:
        StixError: ``item`` is a raw object that breaks a rule.

    Returns:
        The level, or None when the object carries no TLP marking.
    """
    if isinstance(item, StixMeta):
        return item.tlp
    return check_object(item).tlp


def marking_definition(level: TLP) -> dict[str, Any]:
    """The canonical TLP 2.0 marking-definition object for ``level``, to emit in bundles.

    Exactly the OASIS object (cti-stix-common-objects, tlp-2.0); a new dict on
    every call, so callers may change theirs.
    """
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": _TLP2[level],
        "created": _TLP2_CREATED,
        "name": f"TLP:{level.value.upper()}",
        "extensions": {
            TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level.value},
        },
    }


def _show(value: object) -> str:
    # Names come from peers: bound what reaches messages and logs.
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _valid_type(name: str) -> bool:
    return _TYPE.fullmatch(name) is not None and "--" not in name


# Property names already found valid. Objects of one kind repeat the same
# few names, so most checks are one set lookup instead of a regex match;
# bounded, so a flood of distinct names cannot grow it without limit.
_GOOD_NAMES: set[str] = set()
_GOOD_NAMES_MAX = 4096


def _check_property_names(obj: dict[Any, Any]) -> None:
    for name, value in obj.items():
        if name not in _GOOD_NAMES:
            if not isinstance(name, str) or (name != "id" and _PROPERTY.fullmatch(name) is None):
                raise StixError(f"property name {_show(name)}", "must match ^[a-z0-9_]{3,250}$")
            if len(_GOOD_NAMES) < _GOOD_NAMES_MAX:
                _GOOD_NAMES.add(name)
        # The 2.1 JSON schemas allow neither null nor an empty list as a value.
        if value is None:
            raise StixError(name, "must not be null")
        if isinstance(value, list) and not value:
            raise StixError(name, "must not be an empty list")


def _check_type(value: object) -> str:
    if not isinstance(value, str) or not _valid_type(value):
        raise StixError("type", "must be 3-250 of a-z, 0-9 and single '-', not at either end")
    return value


def _check_identifier(value: object, prop: str, expected_type: str) -> str:
    if not isinstance(value, str):
        raise StixError(prop, "must be a string identifier")
    type_, _, uuid = value.rpartition("--")
    if not _valid_type(type_) or _UUID.fullmatch(uuid) is None:
        raise StixError(prop, "must be <type>--<UUID>, the UUID in lowercase RFC 4122 form")
    if type_ != expected_type:
        raise StixError(prop, f"must identify a {expected_type}, not a {_show(type_)}")
    return value


def _check_extensions(obj: dict[str, Any]) -> set[str]:
    """Check ``extensions`` and return the extension types it declares."""
    extensions = obj.get("extensions")
    if extensions is None:
        return set()
    if not isinstance(extensions, dict) or not extensions:
        raise StixError("extensions", "must be a non-empty JSON object")
    declared: set[str] = set()
    for key, body in extensions.items():
        if not isinstance(key, str) or _EXTENSION_KEY.fullmatch(key) is None:
            raise StixError("extensions", f"{_show(key)} is no extension-definition id or -ext")
        if not isinstance(body, dict) or not body:
            raise StixError(f"extensions.{key}", "must be a non-empty JSON object")
        if "extension_type" in body:
            if body["extension_type"] not in _EXTENSION_TYPES:
                raise StixError(f"extensions.{key}.extension_type", "unknown extension type")
            declared.add(body["extension_type"])
    return declared


def _check_spec_version(obj: dict[str, Any], sco: bool) -> str:
    if "spec_version" not in obj and sco:
        return "2.1"
    if obj.get("spec_version") != "2.1":
        raise StixError("spec_version", "must be '2.1'")
    return "2.1"


def _check_times(obj: dict[str, Any], type_: str, sco: bool
                 ) -> tuple[str | None, str | None, tuple[dt.datetime, str] | None]:
    """``created``, ``modified``, and the sort key of the version (modified, else created)."""
    created, modified = obj.get("created"), obj.get("modified")
    if not sco:
        if created is None:
            raise StixError("created", f"required on a {type_}")
        # Marking definitions are immutable: they have one version and no modified.
        if modified is None and type_ != "marking-definition":
            raise StixError("modified", f"required on a {type_}")
    created_at = None if created is None else _instant(created, "created")
    if modified is None or modified == created:
        return created, modified, created_at  # a first version: nothing more to compare
    modified_at = _instant(modified, "modified")
    if created_at is not None and modified_at < created_at:
        raise StixError("modified", "must not be earlier than created")
    return created, modified, modified_at


def _instant(value: object, prop: str) -> tuple[dt.datetime, str]:
    """A sort key for an RFC 3339 UTC timestamp, exact at any sub-second precision."""
    key = _instant_key(value) if isinstance(value, str) else None
    if key is None:
        raise StixError(prop, "must be an RFC 3339 UTC timestamp YYYY-MM-DDTHH:MM:SS[.s+]Z")
    if isinstance(key, str):
        raise StixError(prop, key)
    return key


def _instant_key(value: str) -> tuple[dt.datetime, str] | str | None:
    """A timestamp's sort key: the instant to the microsecond (the store's
    precision), then every digit of its fraction without trailing zeros (digit
    strings so made compare as the fractions they spell), so that stamps equal
    to the microsecond still order exactly."""
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        return None
    try:
        # The pattern leaves only the plain form, which fromisoformat reads as UTC (its
        # "Z"), truncating a fraction to the microsecond; it refuses dates that do not exist.
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        return "is not a calendar date and time"
    return at, (match[2] or "").rstrip("0")


def _nonempty_list(value: object, prop: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise StixError(prop, "must be a non-empty list")
    return value


def _check_markings(obj: dict[str, Any]) -> tuple[str, ...]:
    refs: list[str] = []
    if "object_marking_refs" in obj:
        for i, ref in enumerate(_nonempty_list(obj["object_marking_refs"], "object_marking_refs")):
            refs.append(_check_identifier(ref, f"object_marking_refs[{i}]", "marking-definition"))
    if "granular_markings" in obj:
        for i, item in enumerate(_nonempty_list(obj["granular_markings"], "granular_markings")):
            ref = _check_granular(item, f"granular_markings[{i}]")
            if ref is not None:
                refs.append(ref)
    return tuple(dict.fromkeys(refs))


def _check_granular(item: object, prop: str) -> str | None:
    """Check one granular marking; return its marking_ref, None for a lang marking."""
    if not isinstance(item, dict):
        raise StixError(prop, "must be a JSON object")
    unknown = [key for key in item if key not in _GRANULAR_KEYS]
    if unknown:
        raise StixError(prop, f"unknown property {_show(unknown[0])}")
    if ("marking_ref" in item) == ("lang" in item):
        raise StixError(prop, "needs exactly one of marking_ref and lang")
    for j, selector in enumerate(_nonempty_list(item.get("selectors"), f"{prop}.selectors")):
        if not isinstance(selector, str) or _SELECTOR.fullmatch(selector) is None:
            raise StixError(f"{prop}.selectors[{j}]", "is not a selector")
    if "lang" in item:
        if not isinstance(item["lang"], str) or not item["lang"]:
            raise StixError(f"{prop}.lang", "must be a non-empty string")
        return None
    return _check_identifier(item["marking_ref"], f"{prop}.marking_ref", "marking-definition")


def _check_external_references(obj: dict[str, Any]) -> None:
    if "external_references" not in obj:
        return
    for i, ref in enumerate(_nonempty_list(obj["external_references"], "external_references")):
        prop = f"external_references[{i}]"
        if not isinstance(ref, dict):
            raise StixError(prop, "must be a JSON object")
        if not isinstance(ref.get("source_name"), str):
            raise StixError(f"{prop}.source_name", "required, a string")
        for key in _REFERENCE_TEXTS:
            if key in ref and not isinstance(ref[key], str):
                raise StixError(f"{prop}.{key}", "must be a string")
        if not any(key in ref for key in _REFERENCE_TEXTS):
            raise StixError(prop, "needs at least one of description, url and external_id")
        if "hashes" in ref and not isinstance(ref["hashes"], dict):
            raise StixError(f"{prop}.hashes", "must be a JSON object")


def _check_labels(obj: dict[str, Any]) -> None:
    if "labels" not in obj:
        return
    for i, label in enumerate(_nonempty_list(obj["labels"], "labels")):
        if not isinstance(label, str):
            raise StixError(f"labels[{i}]", "must be a string")


def _check_tlp_definition(obj: dict[str, Any], id_: str) -> None:
    """A marking definition with a TLP id must define that very level."""
    level = TLP_MARKINGS.get(id_)
    if level is None:
        return
    if id_ in _TLP1:
        word = _TLP1[id_][1]
        if obj.get("definition_type") != "tlp" or obj.get("definition") != {"tlp": word}:
            name = f"TLP:{word.upper()}"
            raise StixError("definition", f"the TLP 1.0 id of {name} defines another level")
        return
    extensions = obj.get("extensions")
    body = extensions.get(TLP2_EXTENSION) if isinstance(extensions, dict) else None
    if not isinstance(body, dict) or body.get("tlp_2_0") != level.value:
        name = f"TLP:{level.value.upper()}"
        raise StixError("extensions", f"the TLP 2.0 id of {name} defines another level")


def _most_restrictive(refs: tuple[str, ...]) -> TLP | None:
    if not refs:
        return None
    levels = [TLP_MARKINGS[ref] for ref in refs if ref in TLP_MARKINGS]
    return max(levels, key=_RANK.__getitem__, default=None)
