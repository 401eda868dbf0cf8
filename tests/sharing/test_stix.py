"""STIX 2.1 common-property checks, TLP extraction and TLP 2.0 marking objects.

The positive cases are objects the reference library (``stix2``) produces, and
the emitted marking definitions and bundles go through the OASIS validator
(``stix2-validator``), so our reading of the spec is checked against theirs.
Every rule has a table entry that breaks it and must be rejected naming the
property at fault; the expected TLP ids are written out literally from the
specifications, never read from the module under test.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest
import stix2
from stix2validator import ValidationOptions, validate_instance

from comity.agreements.schemas import TLP
from comity.sharing.errors import BadFilterError
from comity.sharing.services import parse_rfc3339
from comity.sharing.stix import (
    SCO_TYPES,
    TLP2_EXTENSION,
    TLP_MARKINGS,
    StixError,
    StixMeta,
    check_envelope,
    check_object,
    is_tlp_marking,
    marking_definition,
    tlp_of,
)

CREATED = "2026-11-29T10:00:00.000Z"
MODIFIED = "2026-11-29T11:30:00.250Z"
IDENTITY_ID = "identity--311b2d2d-f010-4473-83ec-1edf84858f4c"
INDICATOR_ID = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
MALWARE_ID = "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b"
STATEMENT_ID = "marking-definition--d2cbbdc8-a6e7-4a0d-8e4d-8b0c8f0d7a7e"

# The specifications' ids, written out (threat-sharing.md §3.7).
TLP1 = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": TLP.CLEAR,  # WHITE
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": TLP.GREEN,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": TLP.AMBER,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": TLP.RED,
}
TLP2 = {
    "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": TLP.CLEAR,
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": TLP.GREEN,
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": TLP.AMBER,
    "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": TLP.AMBER_STRICT,
    "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": TLP.RED,
}
ID_OF = {level: marking for marking, level in TLP2.items()}
TLP1_ID_OF = {level: marking for marking, level in TLP1.items()}
DROP = object()


def as_dict(obj: Any) -> dict[str, Any]:
    """A stix2 object as the JSON a peer would send."""
    return json.loads(obj.serialize())


def indicator(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": INDICATOR_ID,
        "created": CREATED,
        "modified": MODIFIED,
        "created_by_ref": IDENTITY_ID,
        "name": "C2 address",
        "pattern": "[ipv4-addr:value = '198.51.100.7']",
        "pattern_type": "stix",
        "valid_from": CREATED,
        "labels": ["c2"],
        "external_references": [{"source_name": "cert-fr", "external_id": "CERTFR-2026-ALE-001"}],
        "object_marking_refs": [ID_OF[TLP.GREEN]],
        "granular_markings": [{"marking_ref": ID_OF[TLP.AMBER], "selectors": ["pattern"]}],
    }
    for key, value in changes.items():
        if value is DROP:
            del obj[key]
        else:
            obj[key] = value
    return obj


def sco(**changes: Any) -> dict[str, Any]:
    obj = as_dict(stix2.v21.IPv4Address(value="198.51.100.7"))
    obj.update(changes)
    return obj


def validator_errors(obj: dict[str, Any]) -> list[str]:
    result = validate_instance(obj, ValidationOptions(version="2.1"))
    return [str(e) for e in result.errors]


# --- objects the reference library produces --------------------------------------------------


def stix2_objects() -> list[tuple[dict[str, Any], str | None]]:
    """(object, expected TAXII version) pairs made by the stix2 library."""
    kw = {"created": CREATED, "modified": MODIFIED}
    identity = stix2.v21.Identity(id=IDENTITY_ID, name="CERT-X", identity_class="organization",
                                  **kw)
    ind = stix2.v21.Indicator(id=INDICATOR_ID, pattern="[ipv4-addr:value = '198.51.100.7']",
                              pattern_type="stix", created_by_ref=identity, **kw)
    malware = stix2.v21.Malware(id=MALWARE_ID, name="Lumen", is_family=True, **kw)
    rel = stix2.v21.Relationship(ind, "indicates", malware, **kw)
    report = stix2.v21.Report(name="Advisory", published=CREATED, object_refs=[ind.id], **kw)
    sighting = stix2.v21.Sighting(sighting_of_ref=ind.id, created=CREATED, modified=CREATED)
    return [
        (as_dict(identity), MODIFIED),
        (as_dict(ind), MODIFIED),
        (as_dict(malware), MODIFIED),
        (as_dict(rel), MODIFIED),
        (as_dict(report), MODIFIED),
        (as_dict(sighting), CREATED),
        (as_dict(stix2.v21.IPv4Address(value="198.51.100.7")), None),
        (as_dict(stix2.v21.TLP_AMBER), "2017-01-20T00:00:00.000Z"),
    ]


@pytest.mark.parametrize(("obj", "version"), stix2_objects(),
                         ids=lambda v: v["type"] if isinstance(v, dict) else None)
def test_stix2_library_objects_pass_with_their_version(obj: dict[str, Any],
                                                       version: str | None) -> None:
    meta = check_object(obj)
    assert meta.id == obj["id"]
    assert meta.type == obj["type"]
    assert meta.spec_version == "2.1"
    assert meta.version == version
    assert meta.created == obj.get("created")
    assert meta.modified == obj.get("modified")
    assert meta.revoked is False


def test_stix2_default_timestamps_pass() -> None:
    # The library's own clock output (microseconds), not our fixed strings.
    obj = as_dict(stix2.v21.Malware(name="Lumen", is_family=True))
    assert check_object(obj).version == obj["modified"]


def test_meta_of_a_full_object() -> None:
    meta = check_object(indicator(revoked=True))
    assert meta == StixMeta(
        id=INDICATOR_ID, type="indicator", spec_version="2.1", version=MODIFIED,
        created=CREATED, modified=MODIFIED, revoked=True,
        marking_refs=(ID_OF[TLP.GREEN], ID_OF[TLP.AMBER]), tlp=TLP.AMBER,
        version_at=parse_rfc3339(MODIFIED),
    )


def test_check_object_does_not_change_the_object() -> None:
    obj = indicator()
    before = copy.deepcopy(obj)
    check_object(obj)
    assert obj == before


def test_sco_without_spec_version_defaults_to_2_1() -> None:
    obj = sco()
    del obj["spec_version"]
    meta = check_object(obj)
    assert meta.spec_version == "2.1"
    assert meta.version is None


def test_sco_with_modified_uses_it_as_version() -> None:
    assert check_object(sco(modified=MODIFIED)).version == MODIFIED


def test_marking_definition_needs_no_modified() -> None:
    obj = as_dict(stix2.v21.MarkingDefinition(
        id=STATEMENT_ID, created=CREATED, definition_type="statement",
        definition={"statement": "Copyright CERT-X"}))
    assert "modified" not in obj
    meta = check_object(obj)
    assert meta.version == CREATED
    assert meta.tlp is None


def test_custom_new_sco_type_needs_no_created() -> None:
    ext = "extension-definition--c2d40b0a-3d4a-4cc1-a0c5-9a7d1f1b0f43"
    obj = {"type": "x-sensor", "spec_version": "2.1",
           "id": "x-sensor--0b1e1c1a-6a7f-5f0e-9f1c-2a1a7c3e0b8d",
           "extensions": {ext: {"extension_type": "new-sco"}}, "x_reading": 3}
    assert check_object(obj).version is None
    del obj["extensions"]
    with pytest.raises(StixError) as err:
        check_object(obj)
    assert err.value.prop == "created"


def test_custom_type_and_property_pass() -> None:
    custom = "x-" + "a" * 248  # 250 characters, the longest type allowed
    meta = check_object(indicator(type=custom, id=custom + "--" + INDICATOR_ID.split("--")[1],
                                  x_comity_note="ok", **{"p" * 250: 1}))
    assert meta.type == custom


def test_sco_type_list_is_the_18_of_stix_2_1() -> None:
    assert frozenset({
        "artifact", "autonomous-system", "directory", "domain-name", "email-addr",
        "email-message", "file", "ipv4-addr", "ipv6-addr", "mac-addr", "mutex",
        "network-traffic", "process", "software", "url", "user-account",
        "windows-registry-key", "x509-certificate",
    }) == SCO_TYPES


def test_timestamps_compare_beyond_microseconds() -> None:
    assert check_object(indicator(created="2026-01-01T00:00:00.5Z",
                                  modified="2026-01-01T00:00:00.500000000Z"))
    assert check_object(indicator(created="2026-01-01T00:00:00.500Z",
                                  modified="2026-01-01T00:00:00.5Z"))
    assert check_object(indicator(created="2026-01-01T00:00:00.1234567Z",
                                  modified="2026-01-01T00:00:00.1234568Z"))
    assert check_object(indicator(created="2026-01-01T00:00:00Z",
                                  modified="2026-01-01T00:00:00.000001Z"))


@pytest.mark.parametrize(("created", "modified", "expected"), [
    ("2026-01-01T00:00:00Z", None, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
    ("2026-01-01T00:00:00Z", "2026-02-03T04:05:06.5Z",
     dt.datetime(2026, 2, 3, 4, 5, 6, 500000, tzinfo=dt.UTC)),
    ("2026-01-01T00:00:00.123Z", "2026-01-01T00:00:00.123Z",
     dt.datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=dt.UTC)),
    ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00.1234569Z",
     dt.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=dt.UTC)),
    ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00.000000Z",
     dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
])
def test_version_instant_is_the_version_to_the_microsecond(
        created: str, modified: str | None, expected: dt.datetime) -> None:
    obj = marking_definition(TLP.GREEN) if modified is None else indicator(
        created=created, modified=modified)
    if modified is None:
        obj["created"] = created
    meta = check_object(obj)
    assert meta.version_at == expected
    assert meta.version is not None
    assert meta.version_at == parse_rfc3339(meta.version)


def test_sco_without_times_has_no_version_instant() -> None:
    assert check_object(sco()).version_at is None


def test_timestamp_filters_take_ascii_digits_only() -> None:
    with pytest.raises(BadFilterError):
        parse_rfc3339("\u0662026-01-01T00:00:00Z")


# --- every rule, broken ----------------------------------------------------------------------

UUID = "8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
BAD_OBJECTS: list[tuple[str, Any, str]] = [
    ("not a dict", ["indicator"], "object"),
    ("uppercase property", indicator(X_note="x"), "property name 'X_note'"),
    ("short property", indicator(ab="x"), "property name 'ab'"),
    ("dash in property", indicator(**{"x-note": "x"}), "property name 'x-note'"),
    ("property too long", indicator(**{"p" * 251: 1}), "property name 'ppppp"),
    ("null value", indicator(name=None), "name"),
    ("empty list value", indicator(x_tags=[]), "x_tags"),
    ("type missing", indicator(type=DROP), "type"),
    ("type not a string", indicator(type=7), "type"),
    ("type uppercase", indicator(type="Indicator", id="Indicator--" + UUID), "type"),
    ("type too short", indicator(type="ab", id="ab--" + UUID), "type"),
    ("type double dash", indicator(type="x--y", id="x--y--" + UUID), "type"),
    ("type leading dash", indicator(type="-xyz", id="-xyz--" + UUID), "type"),
    ("type trailing dash", indicator(type="xyz-", id="xyz---" + UUID), "type"),
    ("type too long", indicator(type="x" * 251, id="x" * 251 + "--" + UUID), "type"),
    ("id missing", indicator(id=DROP), "id"),
    ("id not a string", indicator(id=3), "id"),
    ("id of another type", indicator(id=MALWARE_ID), "id"),
    ("id uppercase uuid", indicator(id="indicator--" + UUID.upper()), "id"),
    ("id uuid without dashes", indicator(id="indicator--" + UUID.replace("-", "")), "id"),
    ("id uuid wrong variant", indicator(id="indicator--8e2e2d2b-17d4-4cbf-c38f-98ee46b3cd3f"),
     "id"),
    ("id trailing newline", indicator(id=INDICATOR_ID + "\n"), "id"),
    ("id braces", indicator(id="indicator--{" + UUID + "}"), "id"),
    ("spec_version missing", indicator(spec_version=DROP), "spec_version"),
    ("spec_version 2.0", indicator(spec_version="2.0"), "spec_version"),
    ("spec_version a number", indicator(spec_version=2.1), "spec_version"),
    ("sco spec_version 2.0", sco(spec_version="2.0"), "spec_version"),
    ("created missing", indicator(created=DROP), "created"),
    ("modified missing", indicator(modified=DROP), "modified"),
    ("relationship modified missing",
     {k: v for k, v in as_dict(stix2.v21.Relationship(
         INDICATOR_ID, "indicates", MALWARE_ID, created=CREATED, modified=CREATED)).items()
      if k != "modified"}, "modified"),
    ("language-content modified missing",
     {"type": "language-content", "spec_version": "2.1",
      "id": "language-content--b86bd89f-98bb-4fa9-8cb2-9ad421da981d", "created": CREATED,
      "object_ref": INDICATOR_ID, "contents": {"fr": {"name": "Adresse C2"}}}, "modified"),
    ("created without Z", indicator(created="2026-11-29T10:00:00.000"), "created"),
    ("created with offset", indicator(created="2026-11-29T10:00:00.000+00:00"), "created"),
    ("created lowercase t", indicator(created="2026-11-29t10:00:00.000Z"), "created"),
    ("created lowercase z", indicator(created="2026-11-29T10:00:00.000z"), "created"),
    ("created without seconds", indicator(created="2026-11-29T10:00Z"), "created"),
    ("created empty fraction", indicator(created="2026-11-29T10:00:00.Z"), "created"),
    ("created space", indicator(created="2026-11-29 10:00:00.000Z"), "created"),
    ("created not a date", indicator(created="2026-02-30T10:00:00.000Z"), "created"),
    ("created hour 24", indicator(created="2026-11-29T24:00:00.000Z"), "created"),
    ("created 29 February, not a leap year", indicator(created="2026-02-29T10:00:00Z"),
     "created"),
    ("created leap second", indicator(created="2026-12-31T23:59:60Z"), "created"),
    ("created minute 60", indicator(created="2026-11-29T10:60:00Z"), "created"),
    ("created year 0", indicator(created="0000-11-29T10:00:00Z"), "created"),
    ("created other digits", indicator(created="٢٠٢٦-11-29T10:00:00.000Z"), "created"),
    ("created a number", indicator(created=1764410400), "created"),
    ("modified malformed", indicator(modified="yesterday"), "modified"),
    ("modified before created", indicator(modified="2026-11-29T09:59:59.999Z"), "modified"),
    ("modified before created, sub-ms",
     indicator(created="2026-01-01T00:00:00.5Z", modified="2026-01-01T00:00:00.49Z"),
     "modified"),
    ("sco created malformed", sco(created="2026-11-29"), "created"),
    ("revoked a string", indicator(revoked="true"), "revoked"),
    ("revoked a number", indicator(revoked=1), "revoked"),
    ("object_marking_refs a string", indicator(object_marking_refs=ID_OF[TLP.RED]),
     "object_marking_refs"),
    ("object_marking_refs an identity", indicator(object_marking_refs=[IDENTITY_ID]),
     "object_marking_refs[0]"),
    ("object_marking_refs uppercase TLP:RED",
     indicator(object_marking_refs=[ID_OF[TLP.RED].upper()]), "object_marking_refs[0]"),
    ("object_marking_refs second bad",
     indicator(object_marking_refs=[ID_OF[TLP.GREEN], "marking-definition--x"]),
     "object_marking_refs[1]"),
    ("sco object_marking_refs bad", sco(object_marking_refs=["tlp:red"]),
     "object_marking_refs[0]"),
    ("granular_markings a dict", indicator(granular_markings={"selectors": ["name"]}),
     "granular_markings"),
    ("granular marking a string", indicator(granular_markings=[ID_OF[TLP.RED]]),
     "granular_markings[0]"),
    ("granular marking ref and lang",
     indicator(granular_markings=[{"marking_ref": ID_OF[TLP.RED], "lang": "fr",
                                   "selectors": ["name"]}]), "granular_markings[0]"),
    ("granular marking neither ref nor lang",
     indicator(granular_markings=[{"selectors": ["name"]}]), "granular_markings[0]"),
    ("granular marking unknown property",
     indicator(granular_markings=[{"marking_ref": ID_OF[TLP.RED], "selectors": ["name"],
                                   "x_scope": "all"}]), "granular_markings[0]"),
    ("granular marking without selectors",
     indicator(granular_markings=[{"marking_ref": ID_OF[TLP.RED]}]),
     "granular_markings[0].selectors"),
    ("granular marking empty selectors",
     indicator(granular_markings=[{"marking_ref": ID_OF[TLP.RED], "selectors": []}]),
     "granular_markings[0].selectors"),
    ("granular marking bad selector",
     indicator(granular_markings=[{"marking_ref": ID_OF[TLP.RED], "selectors": ["Name"]}]),
     "granular_markings[0].selectors[0]"),
    ("granular marking selector not a string",
     indicator(granular_markings=[{"marking_ref": ID_OF[TLP.RED], "selectors": [0]}]),
     "granular_markings[0].selectors[0]"),
    ("granular marking ref an identity",
     indicator(granular_markings=[{"marking_ref": IDENTITY_ID, "selectors": ["name"]}]),
     "granular_markings[0].marking_ref"),
    ("granular marking ref uppercase TLP:RED",
     indicator(granular_markings=[{"marking_ref": ID_OF[TLP.RED].upper(),
                                   "selectors": ["name"]}]),
     "granular_markings[0].marking_ref"),
    ("granular marking lang empty",
     indicator(granular_markings=[{"lang": "", "selectors": ["name"]}]),
     "granular_markings[0].lang"),
    ("created_by_ref not an identity", indicator(created_by_ref=MALWARE_ID), "created_by_ref"),
    ("created_by_ref malformed", indicator(created_by_ref="identity--cert-x"), "created_by_ref"),
    ("created_by_ref a list", indicator(created_by_ref=[IDENTITY_ID]), "created_by_ref"),
    ("external_references a dict", indicator(external_references={"source_name": "x"}),
     "external_references"),
    ("external reference a string", indicator(external_references=["https://x.example"]),
     "external_references[0]"),
    ("external reference without source_name",
     indicator(external_references=[{"url": "https://x.example"}]),
     "external_references[0].source_name"),
    ("external reference source_name only",
     indicator(external_references=[{"source_name": "cert-fr"}]), "external_references[0]"),
    ("external reference url not a string",
     indicator(external_references=[{"source_name": "x", "url": ["https://x.example"]}]),
     "external_references[0].url"),
    ("external reference hashes not an object",
     indicator(external_references=[{"source_name": "x", "external_id": "1",
                                     "hashes": "d41d8cd9"}]),
     "external_references[0].hashes"),
    ("labels a string", indicator(labels="c2"), "labels"),
    ("label not a string", indicator(labels=["c2", 2]), "labels[1]"),
    ("extensions a list", indicator(extensions=["x-ext"]), "extensions"),
    ("extensions empty", indicator(extensions={}), "extensions"),
    ("extension key bad", indicator(extensions={"x_thing": {"a": 1}}), "extensions"),
    ("extension body empty", indicator(extensions={"x-thing-ext": {}}),
     "extensions.x-thing-ext"),
    ("extension type unknown",
     indicator(extensions={TLP2_EXTENSION: {"extension_type": "new-thing"}}),
     f"extensions.{TLP2_EXTENSION}.extension_type"),
    ("TLP 2.0 CLEAR id defining red",
     marking_definition(TLP.CLEAR) | {"extensions": marking_definition(TLP.RED)["extensions"]},
     "extensions"),
    ("TLP 2.0 id without the extension",
     {k: v for k, v in marking_definition(TLP.GREEN).items() if k != "extensions"}
     | {"definition_type": "statement", "definition": {"statement": "green"}}, "extensions"),
    ("TLP 1.0 WHITE id defining red",
     as_dict(stix2.v21.TLP_WHITE) | {"definition": {"tlp": "red"}}, "definition"),
    ("TLP 1.0 id as a statement",
     as_dict(stix2.v21.TLP_RED) | {"definition_type": "statement",
                                   "definition": {"statement": "red"}}, "definition"),
]


@pytest.mark.parametrize(("obj", "prop"), [(o, p) for _, o, p in BAD_OBJECTS],
                         ids=[name for name, _, _ in BAD_OBJECTS])
def test_rule_broken_is_rejected_naming_the_property(obj: Any, prop: str) -> None:
    with pytest.raises(StixError) as err:
        check_object(obj)
    assert str(err.value).startswith(prop)
    assert err.value.prop.startswith(prop)


def test_stix_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^revoked: "):
        check_object(indicator(revoked="no"))


def test_non_string_property_name_is_rejected() -> None:
    obj: dict[Any, Any] = indicator()
    obj[1] = "x"
    with pytest.raises(StixError, match=r"^property name 1: "):
        check_object(obj)


def test_long_names_are_cut_short_in_messages() -> None:
    with pytest.raises(StixError) as err:
        check_object(indicator(**{"X" * 10_000: 1}))
    assert len(str(err.value)) < 120


# --- TLP ---------------------------------------------------------------------------------------


def test_tlp_markings_are_exactly_the_spec_ids() -> None:
    assert dict(TLP_MARKINGS) == TLP1 | TLP2


@pytest.mark.parametrize(("marking", "level"), list((TLP1 | TLP2).items()))
def test_every_tlp_id_object_level_and_granular(marking: str, level: TLP) -> None:
    assert is_tlp_marking(marking)
    assert tlp_of(indicator(object_marking_refs=[marking], granular_markings=DROP)) == level
    granular = [{"marking_ref": marking, "selectors": ["name"]}]
    assert tlp_of(indicator(object_marking_refs=DROP, granular_markings=granular)) == level


@pytest.mark.parametrize("obj", [
    indicator(object_marking_refs=DROP, granular_markings=DROP),
    indicator(object_marking_refs=[STATEMENT_ID], granular_markings=DROP),
    indicator(object_marking_refs=DROP,
              granular_markings=[{"lang": "fr", "selectors": ["name"]}]),
    sco(),
], ids=["unmarked", "statement only", "lang only", "sco"])
def test_no_tlp_marking_gives_none(obj: dict[str, Any]) -> None:
    assert tlp_of(obj) is None


def test_unknown_ids_are_not_tlp() -> None:
    assert not is_tlp_marking(STATEMENT_ID)
    assert not is_tlp_marking(ID_OF[TLP.RED].upper())
    assert not is_tlp_marking(TLP2_EXTENSION)


@pytest.mark.parametrize(("object_level", "granular", "expected"), [
    ([ID_OF[TLP.GREEN]], [ID_OF[TLP.RED]], TLP.RED),
    ([ID_OF[TLP.RED]], [ID_OF[TLP.CLEAR]], TLP.RED),
    ([ID_OF[TLP.CLEAR], ID_OF[TLP.AMBER]], [], TLP.AMBER),
    ([ID_OF[TLP.AMBER], ID_OF[TLP.CLEAR]], [], TLP.AMBER),
    ([TLP1_ID_OF[TLP.AMBER]], [ID_OF[TLP.AMBER_STRICT]], TLP.AMBER_STRICT),
    ([ID_OF[TLP.AMBER_STRICT]], [TLP1_ID_OF[TLP.AMBER]], TLP.AMBER_STRICT),
    ([TLP1_ID_OF[TLP.CLEAR]], [ID_OF[TLP.GREEN]], TLP.GREEN),
    ([STATEMENT_ID], [ID_OF[TLP.CLEAR], TLP1_ID_OF[TLP.RED]], TLP.RED),
    ([], [STATEMENT_ID, ID_OF[TLP.AMBER]], TLP.AMBER),
])
def test_most_restrictive_tlp_wins(object_level: list[str], granular: list[str],
                                   expected: TLP) -> None:
    obj = indicator(
        object_marking_refs=object_level or DROP,
        granular_markings=[{"marking_ref": m, "selectors": ["pattern"]} for m in granular]
        or DROP,
    )
    meta = check_object(obj)
    assert meta.tlp == expected
    assert tlp_of(meta) == expected
    assert tlp_of(obj) == expected
    assert set(meta.marking_refs) == set(object_level) | set(granular)


def test_marking_refs_listed_once() -> None:
    amber = ID_OF[TLP.AMBER]
    meta = check_object(indicator(
        object_marking_refs=[amber, amber],
        granular_markings=[{"marking_ref": amber, "selectors": ["name"]},
                           {"marking_ref": STATEMENT_ID, "selectors": ["pattern"]}]))
    assert meta.marking_refs == (amber, STATEMENT_ID)


def test_tlp_of_a_bad_raw_object_raises() -> None:
    with pytest.raises(StixError):
        tlp_of(indicator(object_marking_refs=[ID_OF[TLP.RED].upper()]))


def test_tlp_marking_definitions_read_as_their_level() -> None:
    for obj, level in [(as_dict(stix2.v21.TLP_WHITE), TLP.CLEAR),
                       (as_dict(stix2.v21.TLP_GREEN), TLP.GREEN),
                       (as_dict(stix2.v21.TLP_AMBER), TLP.AMBER),
                       (as_dict(stix2.v21.TLP_RED), TLP.RED)]:
        assert is_tlp_marking(obj["id"])
        assert TLP_MARKINGS[obj["id"]] == level


# --- emitting TLP 2.0 ------------------------------------------------------------------------


def test_marking_definition_is_the_oasis_object() -> None:
    # cti-stix-common-objects, extension-definition-specifications/tlp-2.0/examples.
    assert marking_definition(TLP.AMBER_STRICT) == {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        "created": "2022-10-01T00:00:00.000Z",
        "name": "TLP:AMBER+STRICT",
        "extensions": {
            "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                "extension_type": "property-extension",
                "tlp_2_0": "amber+strict",
            },
        },
    }


@pytest.mark.parametrize("level", list(TLP))
def test_marking_definition_every_level(level: TLP) -> None:
    obj = marking_definition(level)
    assert obj["id"] == ID_OF[level]
    assert obj["name"] == {"clear": "TLP:CLEAR", "green": "TLP:GREEN", "amber": "TLP:AMBER",
                           "amber+strict": "TLP:AMBER+STRICT", "red": "TLP:RED"}[level.value]
    assert obj["extensions"][TLP2_EXTENSION]["tlp_2_0"] == level.value
    meta = check_object(obj)
    assert meta.version == "2022-10-01T00:00:00.000Z"
    assert meta.tlp is None  # the definition is not itself marked
    assert validator_errors(obj) == []


def test_marking_definition_is_a_fresh_copy() -> None:
    first = marking_definition(TLP.RED)
    first["extensions"][TLP2_EXTENSION]["tlp_2_0"] = "clear"
    first["name"] = "TLP:CLEAR"
    assert marking_definition(TLP.RED)["extensions"][TLP2_EXTENSION]["tlp_2_0"] == "red"
    assert marking_definition(TLP.RED)["name"] == "TLP:RED"


def test_validator_is_live() -> None:
    # A broken stix2-validator wheel (3.3.1 shipped no schemas) must not pass silently:
    # the same checks reject a bad object.
    assert validator_errors(indicator(pattern=DROP)) != []
    bad = marking_definition(TLP.AMBER) | {"created": "2022-10-01"}
    assert validator_errors(bad) != []


def test_bundle_with_amber_strict_indicator_validates() -> None:
    marking = marking_definition(TLP.AMBER_STRICT)
    ind = as_dict(stix2.v21.Indicator(
        id=INDICATOR_ID, created=CREATED, modified=MODIFIED, name="C2 address",
        description="Command and control server", pattern="[ipv4-addr:value = '198.51.100.7']",
        pattern_type="stix", valid_from=CREATED, object_marking_refs=[marking["id"]],
        allow_custom=True))
    bundle = {"type": "bundle", "id": "bundle--6a3ad6ea-9a3e-4d1d-9f5e-2a4b8c3e7f10",
              "objects": [marking, ind]}
    assert validator_errors(bundle) == []
    objects = check_envelope(bundle, max_objects=10)
    metas = [check_object(o) for o in objects]
    assert metas[1].tlp == TLP.AMBER_STRICT
    assert metas[1].marking_refs == (marking["id"],)


# --- envelopes ---------------------------------------------------------------------------------


def test_taxii_envelope_returns_raw_objects() -> None:
    bad = {"type": "indicator"}
    body = {"objects": [indicator(), bad, 7], "more": False}
    objects = check_envelope(body, max_objects=3)
    assert objects == [indicator(), bad, 7]  # one bad object does not fail the request
    objects.clear()
    assert len(body["objects"]) == 3


def test_stix2_bundle_is_accepted() -> None:
    bundle = as_dict(stix2.v21.Bundle(as_dict(stix2.v21.TLP_RED), sco()))
    objects = check_envelope(bundle, max_objects=2)
    assert [check_object(o).type for o in objects] == ["marking-definition", "ipv4-addr"]


def test_envelope_may_be_empty() -> None:
    assert check_envelope({"objects": []}, max_objects=1) == []


@pytest.mark.parametrize(("body", "prop"), [
    ([indicator()], "envelope"),
    ('{"objects": []}', "envelope"),
    ({}, "objects"),
    ({"more": False}, "objects"),
    ({"objects": None}, "objects"),
    ({"objects": {"0": indicator()}}, "objects"),
    ({"objects": [indicator()] * 4}, "objects"),
    ({"type": "envelope", "objects": []}, "type"),
    ({"type": "bundle", "objects": []}, "id"),
    ({"type": "bundle", "id": "bundle--" + UUID.upper(), "objects": []}, "id"),
    ({"type": "bundle", "id": INDICATOR_ID, "objects": []}, "id"),
], ids=["list", "string", "empty", "no objects", "null objects", "dict objects",
        "too many", "wrong type", "bundle without id", "bundle id uppercase",
        "bundle id of an indicator"])
def test_bad_envelopes_are_rejected(body: Any, prop: str) -> None:
    with pytest.raises(StixError) as err:
        check_envelope(body, max_objects=3)
    assert err.value.prop == prop
    assert str(err.value).startswith(prop + ": ")


def test_envelope_limit_is_inclusive() -> None:
    assert len(check_envelope({"objects": [1, 2, 3]}, max_objects=3)) == 3


@pytest.mark.parametrize("limit", [0, -1])
def test_non_positive_limit_is_a_caller_bug(limit: int) -> None:
    with pytest.raises(ValueError, match="max_objects") as err:
        check_envelope({"objects": []}, max_objects=limit)
    assert not isinstance(err.value, StixError)


def test_no_stix2_import_at_runtime() -> None:
    import ast
    import inspect

    import comity.sharing.stix as module

    tree = ast.parse(inspect.getsource(module))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in (node.names if isinstance(node, ast.Import) else [])}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"stix2", "stix2validator", "sqlalchemy"}
