"""Request documents against the catalog: every mandatory element of every type, cited.

The missing-element cases are generated from the catalog data itself (every
type, every instrument of its legal basis, every element that instrument
requires), so a new type or article is tested as soon as it is written down.
The expected article of each case is read from the catalog's data, never from
the validator; the T-CY preservation example and the other scenarios spell
their expected citations out literally.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from comity.requests.catalog import DEFAULT_PATH, Catalog, default_catalog, load_catalog
from comity.requests.errors import (
    CatalogError,
    RequestValidationError,
    UnknownRequestTypeError,
)
from comity.requests.schemas import RequestDocument, parse_request

CATALOG = default_catalog()
DOC_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
OTHER_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
CREATED = "2026-11-29T10:00:00.000000Z"


def field_text(name: str) -> str:
    return f"Value of {name} — élément renseigné, 已填写"


def valid_document(cat: Catalog, type_slug: str, instrument: str) -> dict[str, Any]:
    """A document in normal form with every element ``instrument`` requires for the type."""
    spec = cat.types[type_slug]
    fields = {name: field_text(name) for name in spec.required_for(instrument)}
    if spec.emergency:
        fields["emergency_facts"] = "A child is held; the kidnappers set a deadline of tonight."
    return {
        "v": 1, "id": DOC_ID, "type": type_slug, "instrument": instrument,
        "reference": "FR-2026-0042", "language": "fr", "offence": "illegal-access",
        "data_categories": list(spec.data_categories[:1]),
        "flags": {"urgent": False, "emergency": spec.emergency, "confidential": False,
                  "no_user_notification": False, "use_limitation": None},
        "fields": fields, "references": [], "requested_deadline": None, "created": CREATED,
    }


def problems_of(obj: object, cat: Catalog = CATALOG, *, strict_form: bool = False
                ) -> list[dict[str, Any]]:
    with pytest.raises(RequestValidationError) as info:
        parse_request(obj, cat, strict_form=strict_form)
    return info.value.problems


def only_problem(obj: object, cat: Catalog = CATALOG) -> dict[str, Any]:
    problems = problems_of(obj, cat)
    assert len(problems) == 1, problems
    return problems[0]


TYPE_INSTRUMENTS = [(t, i) for t, spec in sorted(CATALOG.types.items())
                    for i in sorted(spec.legal_basis)]
MISSING_CASES = [(t, i, name) for t, i in TYPE_INSTRUMENTS
                 for name in sorted(CATALOG.types[t].required_for(i))]


def test_the_generated_cases_cover_the_catalog() -> None:
    # Guards the parametrisation itself: an empty or truncated list would test nothing.
    assert {t for t, _ in TYPE_INSTRUMENTS} == set(CATALOG.types)
    for t, i in TYPE_INSTRUMENTS:
        assert CATALOG.types[t].required_for(i), f"{t} requires nothing under {i}"
    for case in [("expedited-preservation", "budapest", "necessity"),
                 ("expedited-preservation", "uncc", "mla_intention"),
                 ("emergency-mla", "untoc", "emergency_facts"),
                 ("emergency-disclosure", "budapest-p2", "contact"),
                 ("domain-registration-information", "budapest-p2", "domain_name"),
                 ("mla-general", "untoc", "purpose"),
                 ("supplementary-information", "uncc", "parent_reference")]:
        assert case in MISSING_CASES
    # Budapest Art. 25 does not list the purpose: it must not be required there.
    assert ("mla-general", "budapest", "purpose") not in MISSING_CASES


@pytest.mark.parametrize(("type_slug", "instrument"), TYPE_INSTRUMENTS,
                         ids=[f"{t}-{i}" for t, i in TYPE_INSTRUMENTS])
def test_a_complete_document_parses(type_slug: str, instrument: str) -> None:
    raw = valid_document(CATALOG, type_slug, instrument)
    doc = parse_request(raw, CATALOG)
    assert isinstance(doc, RequestDocument)
    assert (doc.type, doc.instrument, doc.id) == (type_slug, instrument, DOC_ID)
    assert doc.fields == raw["fields"]
    assert doc.to_dict() == raw
    assert parse_request(raw, CATALOG, strict_form=True) == doc


@pytest.mark.parametrize(("type_slug", "instrument", "name"), MISSING_CASES,
                         ids=[f"{t}-{i}-{n}" for t, i, n in MISSING_CASES])
def test_a_missing_element_names_its_title_and_article(type_slug: str, instrument: str,
                                                       name: str) -> None:
    raw = valid_document(CATALOG, type_slug, instrument)
    del raw["fields"][name]
    problem = only_problem(raw)
    article = CATALOG.types[type_slug].required[name][instrument]  # the catalog's data
    cite = CATALOG.cite(instrument, article)
    assert problem["field"] == f"fields.{name}"
    assert problem["missing"] is True
    assert problem["article"] == cite
    assert CATALOG.fields[name].title in problem["message"]
    assert cite in problem["message"]
    assert f"Art. {article}" in problem["message"]
    assert CATALOG.instruments[instrument].short in problem["message"]


@pytest.mark.parametrize(("type_slug", "instrument", "name"), MISSING_CASES,
                         ids=[f"{t}-{i}-{n}" for t, i, n in MISSING_CASES])
def test_a_blank_element_is_not_accepted_as_given(type_slug: str, instrument: str,
                                                 name: str) -> None:
    raw = valid_document(CATALOG, type_slug, instrument)
    raw["fields"][name] = " \n\t "
    problem = only_problem(raw)
    assert problem["field"] == f"fields.{name}"
    assert "must be a non-empty text" in problem["message"]


# --- citations, written out ---------------------------------------------------------

def test_cite_marks_unconfirmed_instruments() -> None:
    assert CATALOG.cite("budapest", "29(2)(e)") == "Budapest Art. 29(2)(e)"
    assert CATALOG.cite("untoc", "18(24)") == "UNTOC Art. 18(24)"
    assert CATALOG.cite("uncc", "42(2)(e)") == "UNCC Art. 42(2)(e) [unconfirmed]"
    assert CATALOG.cite("budapest-p2", "9(3)(c)") == "Budapest P2 Art. 9(3)(c) [unconfirmed]"


@pytest.mark.parametrize(("name", "cite", "title"), [
    ("necessity", "Budapest Art. 29(2)(e)", "Necessity of the preservation"),
    ("custodian_or_location", "Budapest Art. 29(2)(d)",
     "Information identifying the custodian or the location of the computer system"),
    ("mla_intention", "Budapest Art. 29(2)(f)",
     "Intention to submit a request for mutual assistance"),
])
def test_tcy_preservation_example(name: str, cite: str, title: str) -> None:
    raw = valid_document(CATALOG, "expedited-preservation", "budapest")
    del raw["fields"][name]
    problem = only_problem(raw)
    assert problem == {
        "field": f"fields.{name}",
        "message": f"{title} ({name}) is missing: required by {cite}",
        "article": cite, "missing": True}


def test_the_same_element_cites_the_un_convention_under_it() -> None:
    raw = valid_document(CATALOG, "expedited-preservation", "uncc")
    del raw["fields"]["necessity"]
    assert only_problem(raw)["article"] == "UNCC Art. 42(2)(e) [unconfirmed]"


def test_the_error_detail_lists_every_message() -> None:
    raw = valid_document(CATALOG, "expedited-preservation", "budapest")
    del raw["fields"]["necessity"], raw["fields"]["custodian_or_location"]
    with pytest.raises(RequestValidationError) as info:
        parse_request(raw, CATALOG)
    assert "Budapest Art. 29(2)(e)" in info.value.detail
    assert "Budapest Art. 29(2)(d)" in info.value.detail
    assert info.value.extra["errors"] == info.value.problems
    assert info.value.status == 422


# --- emergencies ----------------------------------------------------------------------

def test_an_emergency_flag_needs_the_emergency_facts() -> None:
    raw = valid_document(CATALOG, "mla-general", "budapest")
    raw["flags"]["emergency"] = True
    problem = only_problem(raw)
    assert problem["field"] == "fields.emergency_facts"
    assert problem["article"] == "UNCC Art. 2(o) [unconfirmed]"
    assert "UNCC Art. 2(o) [unconfirmed]" in problem["message"]
    assert "significant and imminent risk" in problem["message"]
    raw["fields"]["emergency_facts"] = "Threat to kill a named person on 1 December."
    assert parse_request(raw, CATALOG).flags.emergency is True


def test_emergency_facts_may_accompany_any_type_when_flagged() -> None:
    raw = valid_document(CATALOG, "subscriber-information", "budapest-p2")
    raw["flags"]["emergency"] = True
    raw["fields"]["emergency_facts"] = "Imminent suicide announced from the account."
    assert parse_request(raw, CATALOG).fields["emergency_facts"].startswith("Imminent")


def test_an_emergency_type_needs_the_emergency_flag() -> None:
    raw = valid_document(CATALOG, "emergency-mla", "budapest")
    raw["flags"]["emergency"] = False
    problem = only_problem(raw)
    assert problem["field"] == "flags.emergency"
    assert "Emergency mutual assistance is an emergency request" in problem["message"]


def test_an_emergency_type_without_facts_is_reported_once() -> None:
    raw = valid_document(CATALOG, "emergency-disclosure", "budapest-p2")
    del raw["fields"]["emergency_facts"]
    problem = only_problem(raw)
    # The type's own article, not the generic definition.
    assert problem["article"] == "Budapest P2 Art. 9(3)(c) [unconfirmed]"
    assert problem["missing"] is True


# --- elements that do not belong -------------------------------------------------------

def test_an_unknown_top_level_element_is_refused() -> None:
    raw = valid_document(CATALOG, "mla-general", "untoc")
    raw["priority"] = "high"
    assert only_problem(raw) == {"field": "priority", "message": "unknown element 'priority'"}


def test_an_element_of_another_type_is_refused() -> None:
    raw = valid_document(CATALOG, "expedited-preservation", "budapest")
    raw["fields"]["domain_name"] = "example.org"
    problem = only_problem(raw)
    assert problem["field"] == "fields.domain_name"
    assert problem["message"] == ("'domain_name' is not an element of Expedited preservation "
                                  "of stored computer data requests")


def test_an_element_unknown_to_the_catalog_is_refused() -> None:
    raw = valid_document(CATALOG, "mla-general", "budapest")
    raw["fields"]["favourite_colour"] = "blue"
    assert only_problem(raw)["field"] == "fields.favourite_colour"


def test_an_unknown_flag_is_refused() -> None:
    raw = valid_document(CATALOG, "mla-general", "budapest")
    raw["flags"]["secret"] = True
    assert only_problem(raw) == {"field": "flags.secret", "message": "unknown flag 'secret'"}


@pytest.mark.parametrize(("type_slug", "instrument", "bases", "under"), [
    ("expedited-preservation", "untoc", ["Budapest Art. 29", "UNCC Art. 42 [unconfirmed]"],
     "United Nations Convention against Transnational Organized Crime"),
    ("domain-registration-information", "budapest", ["Budapest P2 Art. 6 [unconfirmed]"],
     "Council of Europe Convention on Cybercrime (CETS No. 185)"),
    ("immediate-assistance", "budapest-p2", ["Budapest Art. 35(1)", "UNCC Art. 41 [unconfirmed]"],
     "Second Additional Protocol to the Convention on Cybercrime (CETS No. 224)"),
])
def test_an_instrument_outside_the_legal_basis_names_the_bases(
        type_slug: str, instrument: str, bases: list[str], under: str) -> None:
    other = next(iter(CATALOG.types[type_slug].legal_basis))
    raw = valid_document(CATALOG, type_slug, other)
    raw["instrument"] = instrument
    # One problem: no mandatory element is demanded under an instrument that does not apply.
    problem = only_problem(raw)
    assert problem["field"] == "instrument"
    assert "has no legal basis under " + under in problem["message"]
    for cite in bases:
        assert cite in problem["message"]


def test_an_instrument_unknown_to_the_catalog_is_refused() -> None:
    raw = valid_document(CATALOG, "mla-general", "budapest")
    raw["instrument"] = "hague-1970"
    problem = only_problem(raw)
    assert problem["field"] == "instrument"
    assert "budapest-p2" in problem["message"]


def test_an_unknown_type_is_its_own_error() -> None:
    raw = valid_document(CATALOG, "mla-general", "budapest")
    raw["type"] = "extradition"
    with pytest.raises(UnknownRequestTypeError, match=r"'extradition'.*expedited-preservation"):
        parse_request(raw, CATALOG)


@pytest.mark.parametrize("bad", [None, 7, ["mla-general"]])
def test_a_type_that_is_not_a_name_is_a_problem(bad: object) -> None:
    raw = valid_document(CATALOG, "mla-general", "budapest")
    raw["type"] = bad
    assert "type" in [p["field"] for p in problems_of(raw)]


@pytest.mark.parametrize("obj", [None, [], "request", 1])
def test_a_document_must_be_an_object(obj: object) -> None:
    assert problems_of(obj) == [{"field": "request",
                                 "message": "a request must be a JSON object"}]


# --- data categories --------------------------------------------------------------

@pytest.mark.parametrize(("type_slug", "instrument", "category", "allowed"), [
    ("preserved-traffic-disclosure", "budapest", "content", "traffic"),
    ("preserved-traffic-disclosure", "uncc", "subscriber", "traffic"),
    ("subscriber-information", "budapest-p2", "traffic", "subscriber"),
    ("domain-registration-information", "budapest-p2", "content", "subscriber"),
])
def test_a_data_category_outside_the_type_is_refused(type_slug: str, instrument: str,
                                                     category: str, allowed: str) -> None:
    raw = valid_document(CATALOG, type_slug, instrument)
    raw["data_categories"] = [category]
    problem = only_problem(raw)
    assert problem["field"] == "data_categories"
    assert f"concerns only {allowed} data, not {category!r}" in problem["message"]


def test_a_type_without_categories_accepts_every_category() -> None:
    raw = valid_document(CATALOG, "mla-stored-data", "budapest")
    raw["data_categories"] = ["subscriber", "traffic", "content"]
    assert parse_request(raw, CATALOG).data_categories == ("subscriber", "traffic", "content")


@pytest.mark.parametrize(("cats", "message"), [
    (["biometric"], "unknown data category 'biometric'"),
    (["traffic", "traffic"], "data_categories lists a category twice"),
    ("traffic", "data_categories must be a list of strings"),
    ([1], "data_categories must be a list of strings"),
])
def test_malformed_data_categories(cats: object, message: str) -> None:
    raw = valid_document(CATALOG, "mla-general", "budapest")
    raw["data_categories"] = cats
    assert only_problem(raw) == {"field": "data_categories", "message": message}


# --- deadlines, ids, scalars ---------------------------------------------------------

def test_a_requested_deadline_needs_its_reasons() -> None:
    raw = valid_document(CATALOG, "mla-general", "untoc")
    for reason in ("", "   ", None):
        raw["requested_deadline"] = {"due": "2026-12-15T00:00:00.000000Z", "reason": reason}
        problem = only_problem(raw)
        assert problem["field"] == "requested_deadline.reason"
        assert "UNTOC Art. 18(24)" in problem["message"]
    raw["requested_deadline"] = {"due": "2026-12-15T00:00:00.000000Z",
                                 "reason": "Trial opens on 20 December."}
    assert parse_request(raw, CATALOG).requested_deadline == {
        "due": "2026-12-15T00:00:00.000000Z", "reason": "Trial opens on 20 December."}
    # A deadline that has passed before the request was even written is refused.
    raw["requested_deadline"] = {"due": "2026-11-29T10:00:00.000000Z", "reason": "x"}
    problem = only_problem(raw)
    assert problem["field"] == "requested_deadline.due"
    assert "not after" in problem["message"]


@pytest.mark.parametrize(("deadline", "field"), [
    ({"due": "2026-12-15T00:00:00.000000Z"}, "requested_deadline"),
    ({"due": "2026-12-15T00:00:00.000000Z", "reason": "x", "extra": 1}, "requested_deadline"),
    ("2026-12-15", "requested_deadline"),
    ({"due": "2026-12-15", "reason": "Trial."}, "requested_deadline.due"),
    ({"due": "2026-12-15T00:00:00Z", "reason": "Trial."}, "requested_deadline.due"),
    ({"due": 1765756800, "reason": "Trial."}, "requested_deadline.due"),
])
def test_a_malformed_requested_deadline(deadline: object, field: str) -> None:
    raw = valid_document(CATALOG, "mla-general", "untoc")
    raw["requested_deadline"] = deadline
    assert only_problem(raw)["field"] == field


@pytest.mark.parametrize("bad", [
    "not-a-uuid", DOC_ID.upper(), "{" + DOC_ID + "}", "urn:uuid:" + DOC_ID,
    DOC_ID.replace("-", ""), DOC_ID[:-1], 42, None,
])
def test_a_bad_uuid_is_refused(bad: object) -> None:
    raw = valid_document(CATALOG, "mla-general", "budapest")
    raw["id"] = bad
    assert only_problem(raw) == {"field": "id", "message": "id must be a lowercase UUID"}
    raw = valid_document(CATALOG, "mla-general", "budapest")
    raw["references"] = [OTHER_ID, bad]
    assert only_problem(raw) == {"field": "references", "message": f"not a request id: {bad!r}"}


def test_references_are_bounded() -> None:
    raw = valid_document(CATALOG, "mla-general", "budapest")
    raw["references"] = [OTHER_ID] * 50
    assert len(parse_request(raw, CATALOG).references) == 50
    raw["references"] = [OTHER_ID] * 51
    assert only_problem(raw)["field"] == "references"


@pytest.mark.parametrize(("key", "value"), [
    ("v", 2), ("v", None), ("reference", ""), ("reference", "x" * 101), ("language", "French"),
    ("language", "EN"), ("offence", "jaywalking"), ("created", "2026-11-29T10:00:00Z"),
    ("created", 1764410400), ("flags", ["urgent"]), ("fields", "all of them"),
])
def test_a_malformed_scalar_is_refused(key: str, value: object) -> None:
    raw = valid_document(CATALOG, "spontaneous-information", "budapest")
    raw[key] = value
    assert problems_of(raw)[0]["field"] == key


@pytest.mark.parametrize(("name", "value", "ok"), [
    ("domain_name", "d" * 500, True), ("domain_name", "d" * 501, False),
    ("summary_of_facts", "s" * 20_000, True), ("summary_of_facts", "s" * 20_001, False),
    ("summary_of_facts", 12, False),
])
def test_field_length_follows_its_kind(name: str, value: object, ok: bool) -> None:
    raw = valid_document(CATALOG, "domain-registration-information", "budapest-p2")
    raw["fields"][name] = value
    if ok:
        assert parse_request(raw, CATALOG).fields[name] == value
    else:
        assert only_problem(raw)["field"] == f"fields.{name}"


def test_several_problems_are_all_listed() -> None:
    raw = valid_document(CATALOG, "expedited-preservation", "budapest")
    raw.update({"id": "42", "language": "Français", "offence": "jaywalking",
                "data_categories": ["biometric"], "created": "yesterday", "colour": "red"})
    raw["flags"]["urgent"] = "yes"
    raw["fields"]["domain_name"] = "example.org"
    del raw["fields"]["necessity"], raw["fields"]["custodian_or_location"]
    raw["requested_deadline"] = {"due": "2026-12-15T00:00:00.000000Z", "reason": ""}
    problems = problems_of(raw)
    assert sorted(p["field"] for p in problems) == sorted([
        "colour", "id", "language", "offence", "data_categories", "flags.urgent",
        "fields.domain_name", "fields.necessity", "fields.custodian_or_location",
        "requested_deadline.reason", "created"])
    articles = {p["field"]: p.get("article") for p in problems}
    assert articles["fields.necessity"] == "Budapest Art. 29(2)(e)"
    assert articles["fields.custodian_or_location"] == "Budapest Art. 29(2)(d)"


# --- normal form ----------------------------------------------------------------------

def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw.pop(key)


def _set(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw.__setitem__(key, value)


def _drop_flag(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw["flags"].pop(name)


@pytest.mark.parametrize("change", [
    _drop("references"), _drop("data_categories"), _drop("requested_deadline"), _drop("flags"),
    _drop_flag("use_limitation"), _drop_flag("urgent"),
], ids=["no-references", "no-data_categories", "no-requested_deadline", "no-flags",
        "no-use_limitation", "no-urgent"])
def test_strict_form_refuses_a_document_not_in_normal_form(
        change: Callable[[dict[str, Any]], None]) -> None:
    raw = valid_document(CATALOG, "expedited-preservation", "budapest")
    change(raw)
    # An officer's draft may omit defaults (it is normalised on the way in)...
    normal = parse_request(raw, CATALOG)
    assert normal.to_dict() == valid_document(CATALOG, "expedited-preservation", "budapest")
    # ...but a peer's document must already be the exact bytes both sides keep.
    assert problems_of(raw, strict_form=True) == [
        {"field": "request", "message": "request document is not in normal form"}]


@pytest.mark.parametrize("version", [True, 1.0, "1"])
def test_the_version_must_be_the_integer_one(version: object) -> None:
    # True == 1 == 1.0 in Python, but `"v":true` is not the bytes the other side keeps.
    raw = valid_document(CATALOG, "expedited-preservation", "budapest")
    raw["v"] = version
    for strict in (False, True):
        assert problems_of(raw, strict_form=strict) == [{"field": "v", "message": "v must be 1"}]


def test_strict_form_accepts_the_normal_form_in_any_key_order() -> None:
    raw = valid_document(CATALOG, "expedited-preservation", "budapest")
    reordered = dict(reversed(list(raw.items())))
    reordered["fields"] = dict(reversed(list(raw["fields"].items())))
    assert parse_request(reordered, CATALOG, strict_form=True).to_dict() == raw


# --- the catalog is data ------------------------------------------------------------

def _default_yaml() -> dict[str, Any]:
    data = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_a_rewritten_default_catalog_validates_alike(tmp_path: Path) -> None:
    cat = load_catalog(_write(tmp_path, _default_yaml()))
    assert cat.to_dict() == CATALOG.to_dict()
    assert cat.source == str(tmp_path / "catalog.yaml")


def test_a_custom_catalog_changes_articles_and_requirements(tmp_path: Path) -> None:
    data = _default_yaml()
    spec = data["types"]["expedited-preservation"]
    spec["required"]["necessity"]["budapest"] = "29(2)(z)"
    del spec["required"]["mla_intention"]
    spec["optional"].append("mla_intention")
    spec["required"]["contact"] = {"budapest": "35(3)"}
    data["instruments"]["uncc"]["confirmed"] = True
    cat = load_catalog(_write(tmp_path, data))
    contact = "Officer on duty, +33 1 00 00 00 00, Europe/Paris"

    raw = valid_document(CATALOG, "expedited-preservation", "budapest")
    del raw["fields"]["necessity"]
    raw["fields"]["contact"] = contact
    assert only_problem(raw, cat)["article"] == "Budapest Art. 29(2)(z)"
    assert only_problem(raw, CATALOG)["article"] == "Budapest Art. 29(2)(e)"

    raw = valid_document(CATALOG, "expedited-preservation", "budapest")
    del raw["fields"]["mla_intention"]
    raw["fields"]["contact"] = contact
    assert parse_request(raw, cat).fields["contact"] == contact
    assert only_problem(raw, CATALOG)["field"] == "fields.mla_intention"

    raw = valid_document(CATALOG, "expedited-preservation", "budapest")
    problem = only_problem(raw, cat)
    assert problem["field"] == "fields.contact"
    assert problem["article"] == "Budapest Art. 35(3)"
    assert "Contact details and time zone of the requesting officer" in problem["message"]
    assert parse_request(raw, CATALOG).instrument == "budapest"

    raw = valid_document(CATALOG, "expedited-preservation", "uncc")
    del raw["fields"]["necessity"]
    assert only_problem(raw, cat)["article"] == "UNCC Art. 42(2)(e)"
    assert only_problem(raw, CATALOG)["article"] == "UNCC Art. 42(2)(e) [unconfirmed]"


def test_a_custom_catalog_can_add_a_legal_basis(tmp_path: Path) -> None:
    data = _default_yaml()
    spec = data["types"]["expedited-preservation"]
    spec["legal_basis"]["untoc"] = "18(3)(c)"
    spec["required"]["necessity"]["untoc"] = "18(15)(e)"
    cat = load_catalog(_write(tmp_path, data))
    raw = valid_document(CATALOG, "expedited-preservation", "budapest")
    raw["instrument"] = "untoc"
    raw["fields"] = {"necessity": "Logs rotate weekly."}
    assert parse_request(raw, cat).instrument == "untoc"
    del raw["fields"]["necessity"]
    assert only_problem(raw, cat)["article"] == "UNTOC Art. 18(15)(e)"
    assert only_problem(raw, CATALOG)["field"] == "instrument"


def _mutate(path: tuple[str, ...], value: object) -> Callable[[dict[str, Any]], None]:
    def apply(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return apply


_DELETE = object()
EP = ("types", "expedited-preservation")

BROKEN: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown-required-field", _mutate((*EP, "required", "hair_colour"), {"budapest": "29"}),
     "types.expedited-preservation.required.hair_colour: unknown field"),
    ("unknown-optional-field", _mutate((*EP, "optional"), ["contact", "shoe_size"]),
     "types.expedited-preservation.optional: unknown field 'shoe_size'"),
    ("unknown-instrument-in-basis", _mutate((*EP, "legal_basis", "hague"), "1"),
     "types.expedited-preservation.legal_basis.hague: unknown instrument"),
    ("unknown-instrument-in-required",
     _mutate((*EP, "required", "necessity", "mercosur"), "3"),
     "types.expedited-preservation.required.necessity.mercosur: unknown instrument"),
    ("unknown-instrument-in-taxon",
     _mutate(("offences", "illegal-access", "articles", "ecowas"), "2"),
     "offences.illegal-access.articles.ecowas: unknown instrument"),
    ("no-preservation-minimum", _mutate((*EP, "preservation_minimum"), _DELETE),
     "types.expedited-preservation: a preservation type needs preservation_minimum"),
    ("bad-preservation-minimum", _mutate((*EP, "preservation_minimum"), "sixty days"),
     "types.expedited-preservation.preservation_minimum: "),
    ("bad-response-period", _mutate(("types", "mla-general", "response_period"), "3w"),
     "types.mla-general.response_period: "),
    ("negative-period", _mutate(("types", "mla-general", "response_period"), "-3d"),
     "types.mla-general.response_period: "),
    ("bad-emergency-period", _mutate(("emergency_period",), "soon"), "emergency_period: "),
    ("no-legal-basis", _mutate((*EP, "legal_basis"), {}),
     "types.expedited-preservation.legal_basis: a request type needs a legal basis"),
    ("unknown-ground", _mutate((*EP, "refusal_grounds"), ["bad-weather"]),
     "types.expedited-preservation.refusal_grounds: unknown ground 'bad-weather'"),
    ("unknown-outcome", _mutate((*EP, "outcomes"), ["preserved", "forgotten"]),
     "types.expedited-preservation.outcomes: unknown outcome 'forgotten'"),
    ("unknown-category", _mutate((*EP, "data_categories"), ["dna"]),
     "types.expedited-preservation.data_categories: unknown data category 'dna'"),
    ("bad-field-kind", _mutate(("fields", "necessity", "kind"), "number"),
     "fields.necessity.kind: must be one of"),
    ("blank-title", _mutate((*EP, "title"), " "),
     "types.expedited-preservation.title: must be a non-empty string"),
    ("required-not-a-mapping", _mutate((*EP, "required"), ["necessity"]),
     "types.expedited-preservation.required: must be a mapping"),
    ("no-types", _mutate(("types",), {}), "types: the catalog defines no request type"),
]


@pytest.mark.parametrize(("change", "where"), [(c, w) for _, c, w in BROKEN],
                         ids=[name for name, _, _ in BROKEN])
def test_a_broken_catalog_names_the_entry_at_fault(
        tmp_path: Path, change: Callable[[dict[str, Any]], None], where: str) -> None:
    data = copy.deepcopy(_default_yaml())
    change(data)
    path = _write(tmp_path, data)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert where in message


@pytest.mark.parametrize("text", ["types: [unclosed", "- just\n- a list\n"])
def test_an_unreadable_catalog_names_its_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError, match=re.escape(str(path))):
        load_catalog(path)


def test_a_missing_catalog_file_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot be read"):
        load_catalog(tmp_path / "nowhere.yaml")
