"""Every request type survives the wire: document -> signed message -> bytes -> document.

Documents are generated from the catalog (any instrument of the type's legal
basis, its mandatory elements, a random choice of its optional ones, flags,
data categories, references and requested deadline) with texts in several
scripts. The receiving side parses them with ``strict_form=True``, as a peer
does, and must get back exactly the document that was written; a single
changed byte anywhere in the envelope must never yield a different verified
message.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comity.clock import format_ts
from comity.federation.envelope import Message, new_message_id, parse_message, seal_message
from comity.federation.errors import (
    BadSignatureError,
    MalformedMessageError,
    PayloadTooLargeError,
)
from comity.hazmat import canonical
from comity.hazmat.keys import SigningKey
from comity.ledger.commitments import new_salt
from comity.requests.catalog import default_catalog
from comity.requests.errors import RequestValidationError
from comity.requests.schemas import FLAG_NAMES, RequestDocument, parse_request

CATALOG = default_catalog()
MAX_BYTES = 1 << 20
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LANGUAGES = ["en", "fr", "zh", "zh-Hans", "pt-BR", "sw", "ar", "es-419"]
SAMPLES = [
    "Parquet de Paris — section J3 (cybercriminalité), « réquisition » n° 2026/0042",
    "Données de trafic conservées jusqu'au 28 février ; l'hébergeur est à Nairobi.",
    "北京市公安局网络安全保卫总队",
    "请求保全该账户自2026年11月1日起的登录记录和IP地址。",
    "Заявка о сохранении данных",
    "طلب المساعدة القانونية المتبادلة",
    "Line one\nline two\ttabbed \"quoted\" \\ backslash",
    "Emoji 🔐 and combining e\u0301 and NBSP\u00a0here",
]


def _nonblank(max_size: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from([s[:max_size] for s in SAMPLES]),
        st.text(min_size=1, max_size=min(max_size, 60)).filter(lambda s: bool(s.strip())),
    )


def _uuid() -> st.SearchStrategy[str]:
    return st.uuids().map(str)


@st.composite
def documents(draw: st.DrawFn, type_slug: str) -> dict[str, Any]:
    """A valid request document of ``type_slug``, in normal form."""
    spec = CATALOG.types[type_slug]
    instrument = draw(st.sampled_from(sorted(spec.legal_basis)))
    emergency = spec.emergency or draw(st.booleans())
    names = set(spec.required_for(instrument))
    names |= set(draw(st.lists(st.sampled_from(spec.optional), unique=True))
                 if spec.optional else [])
    if emergency:
        names.add("emergency_facts")
    fields = {name: draw(_nonblank(500 if CATALOG.fields[name].kind == "string" else 2000))
              for name in sorted(names)}
    allowed = sorted(spec.data_categories or CATALOG.data_categories)
    flags: dict[str, Any] = {name: draw(st.booleans()) for name in FLAG_NAMES}
    flags["emergency"] = emergency
    flags["use_limitation"] = draw(st.none() | _nonblank(200))
    created = draw(st.integers(min_value=0, max_value=10 * 365 * 86400 * 1_000_000))
    # A requested deadline falls after the request was written.
    deadline = draw(st.none() | st.fixed_dictionaries({
        "due": st.integers(min_value=1, max_value=365 * 86400 * 1_000_000).map(
            lambda later: format_ts(EPOCH + dt.timedelta(microseconds=created + later))),
        "reason": _nonblank(300)}))
    return {
        "v": 1, "id": draw(_uuid()), "type": type_slug, "instrument": instrument,
        "reference": draw(_nonblank(100)), "language": draw(st.sampled_from(LANGUAGES)),
        "offence": draw(st.sampled_from(sorted(CATALOG.offences))),
        "data_categories": draw(st.lists(st.sampled_from(allowed), unique=True)),
        "flags": flags, "fields": fields,
        "references": draw(st.lists(_uuid(), max_size=3)),
        "requested_deadline": deadline,
        "created": format_ts(EPOCH + dt.timedelta(microseconds=created)),
    }


def _node() -> str:
    return uuid.uuid4().hex


def seal(key: SigningKey, body: dict[str, Any]) -> Message:
    """Sign ``body`` as a ``request.submit`` message, with a header like the federation's."""
    header = {"v": 1, "id": new_message_id(), "from": _node(), "to": _node(),
              "agreement": str(uuid.uuid4()), "type": "request.submit",
              "created": format_ts(dt.datetime.now(dt.UTC)), "in_reply_to": None,
              "salt": new_salt()}
    return seal_message(key, header, body)


def receive(envelope: bytes, key: SigningKey) -> RequestDocument:
    """What the receiving node does with the bytes: parse, verify, parse the request."""
    message = parse_message(orjson.loads(envelope), max_bytes=MAX_BYTES)
    message.verify(key.public)
    return parse_request(message.body, CATALOG, strict_form=True)


TYPES = sorted(CATALOG.types)
KEY = SigningKey.generate()


@pytest.mark.parametrize("type_slug", TYPES)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_every_type_round_trips_through_the_wire(type_slug: str, data: st.DataObject) -> None:
    raw = data.draw(documents(type_slug), label="document")
    key = SigningKey.generate()
    doc = parse_request(raw, CATALOG)
    body = doc.to_dict()
    assert body == raw  # the generated document is already in normal form
    sealed = seal(key, body)
    envelope = sealed.envelope_bytes()
    assert envelope == canonical.dumps(sealed.envelope())
    received = receive(envelope, key)
    assert received == doc
    assert received.to_dict() == raw
    assert received.fields == raw["fields"]
    assert parse_message(orjson.loads(envelope), max_bytes=MAX_BYTES).hash == sealed.hash


@pytest.mark.parametrize("type_slug", TYPES)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_a_flipped_byte_never_yields_another_verified_message(type_slug: str,
                                                             data: st.DataObject) -> None:
    raw = data.draw(documents(type_slug), label="document")
    sealed = seal(KEY, raw)
    envelope = bytearray(sealed.envelope_bytes())
    index = data.draw(st.integers(0, len(envelope) - 1), label="index")
    envelope[index] ^= data.draw(st.integers(1, 255), label="mask")
    _assert_never_another_message(bytes(envelope), sealed)


def _assert_never_another_message(envelope: bytes, sealed: Message) -> None:
    try:
        message = parse_message(orjson.loads(envelope), max_bytes=MAX_BYTES)
        message.verify(KEY.public)
    except (orjson.JSONDecodeError, MalformedMessageError, PayloadTooLargeError,
            BadSignatureError):
        return
    # Only a different spelling of the same message may pass (e.g. the case of
    # a hex digit in a \u escape); its content and hash are the original's.
    assert message.header == sealed.header
    assert message.body == sealed.body
    assert message.hash == sealed.hash


def _fixed_document() -> dict[str, Any]:
    spec = CATALOG.types["expedited-preservation"]
    return {
        "v": 1, "id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "type": spec.slug,
        "instrument": "budapest", "reference": "FR-2026-0042 « conservation »",
        "language": "fr", "offence": "illegal-access", "data_categories": ["traffic"],
        "flags": {"urgent": True, "emergency": False, "confidential": True,
                  "no_user_notification": True, "use_limitation": "Usage limité à l'enquête"},
        "fields": {name: f"{name}: 保全 — données « {name} »"
                   for name in spec.required_for("budapest")},
        "references": ["0f8fad5b-d9cb-469f-a165-70867728950e"],
        "requested_deadline": {"due": "2026-12-15T00:00:00.000000Z",
                               "reason": "Les journaux sont écrasés après 30 jours."},
        "created": "2026-11-29T10:00:00.000000Z",
    }


def test_every_single_byte_flip_is_caught() -> None:
    sealed = seal(KEY, _fixed_document())
    envelope = sealed.envelope_bytes()
    for index in range(len(envelope)):
        for mask in (0x01, 0x20, 0x80):
            flipped = bytearray(envelope)
            flipped[index] ^= mask
            _assert_never_another_message(bytes(flipped), sealed)


def test_a_changed_element_fails_verification_though_the_request_is_still_valid() -> None:
    sealed = seal(KEY, _fixed_document())
    tampered = orjson.loads(sealed.envelope_bytes())
    tampered["body"]["fields"]["custodian_or_location"] = "Another provider, elsewhere."
    # Still a perfectly valid request: only the signature tells the change.
    assert parse_request(tampered["body"], CATALOG, strict_form=True).fields[
        "custodian_or_location"] == "Another provider, elsewhere."
    with pytest.raises(BadSignatureError):
        receive(orjson.dumps(tampered), KEY)


@pytest.mark.parametrize("where", ["header.to", "header.type", "header.created", "body.type"])
def test_a_changed_header_or_type_fails_verification(where: str) -> None:
    sealed = seal(KEY, _fixed_document())
    tampered = orjson.loads(sealed.envelope_bytes())
    part, name = where.split(".")
    tampered[part][name] = {
        "header.to": _node(), "header.type": "request.event",
        "header.created": "2026-11-30T10:00:00.000000Z", "body.type": "mla-general",
    }[where]
    with pytest.raises(BadSignatureError):
        receive(orjson.dumps(tampered), KEY)


def test_another_key_does_not_verify() -> None:
    sealed = seal(KEY, _fixed_document())
    with pytest.raises(BadSignatureError):
        receive(sealed.envelope_bytes(), SigningKey.generate())


def test_a_verified_message_whose_body_is_not_normal_is_refused() -> None:
    # A peer that signs a document with a default left out is refused even though
    # the signature is good: both sides must keep the same bytes.
    body = _fixed_document()
    del body["references"]
    sealed = seal(KEY, body)
    with pytest.raises(RequestValidationError) as info:
        receive(sealed.envelope_bytes(), KEY)
    assert info.value.problems == [{"field": "request",
                                    "message": "request document is not in normal form"}]
