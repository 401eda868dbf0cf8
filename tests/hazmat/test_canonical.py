"""Canonical JSON: the fast path must be byte-identical to RFC 8785, and parsing strict."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from comity.hazmat import canonical

json_scalars = (st.none() | st.booleans() | st.text()
                | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=400)
@given(json_values)
def test_fast_path_matches_reference_encoder(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(canonical.CanonicalJSONError):
            canonical.dumps(value)
        return
    assert canonical.dumps(value) == expected


@settings(max_examples=200)
@given(json_values)
def test_round_trip_is_canonical(value: object) -> None:
    try:
        raw = canonical.dumps(value)
    except canonical.CanonicalJSONError:
        return
    assert canonical.loads_canonical(raw, max_bytes=1 << 20) == value


def test_floats_and_unicode_keys_use_the_reference_encoder() -> None:
    doc = {"é": 1.5, "\U0001f600": [1e21, -0.0], "a": "\u2028"}
    assert canonical.dumps(doc) == rfc8785.dumps(doc)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**53, {1: "x"}, object()])
def test_unrepresentable_values_are_refused(value: object) -> None:
    with pytest.raises(canonical.CanonicalJSONError):
        canonical.dumps(value)


@pytest.mark.parametrize("raw", [b'{"b":1,"a":2}', b'{"a": 1}', b'{"a":1.0}', b'"\\u0041"'])
def test_non_canonical_input_is_refused(raw: bytes) -> None:
    with pytest.raises(canonical.CanonicalJSONError, match="canonical"):
        canonical.loads_canonical(raw, max_bytes=1024)


def test_size_limit_and_invalid_json() -> None:
    with pytest.raises(canonical.CanonicalJSONError, match="exceeds"):
        canonical.loads_strict(b"[" + b"1," * 100 + b"1]", max_bytes=50)
    with pytest.raises(canonical.CanonicalJSONError, match="invalid JSON"):
        canonical.loads_strict(b"{", max_bytes=50)
