"""HTTP message signatures: the RFC 9421 vector, every rejection, tampering anywhere."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

from comity.hazmat import httpsig
from comity.hazmat.httpsig import (
    DEFAULT_REQUIRED,
    MAX_CLOCK_SKEW,
    MAX_FIELD_CHARS,
    SignatureError,
    VerifiedSignature,
    content_digest,
    sign_request,
    verify_request,
)
from comity.hazmat.keys import SigningKey, VerifyKey

KEY = SigningKey.generate()
OTHER = SigningKey.generate()
KEY_ID = "peer-a"
KEYS = {KEY_ID: KEY.public}
URL = "https://peer-b.example:8443/taxii2/api1/collections/c1/objects/?added_after=2024-01-01"
BODY = b'{"type": "bundle", "objects": []}'
NOW = 1_700_000_000
MAX_AGE = 60


def _sign(
    *, method: str = "POST", url: str = URL, body: bytes | None = BODY, **kw: Any
) -> dict[str, str]:
    kw.setdefault("created", NOW)
    kw.setdefault("headers", {})
    return sign_request(KEY, key_id=KEY_ID, method=method, url=url, body=body, **kw)


def _verify(
    headers: Mapping[str, str],
    *,
    method: str = "POST",
    url: str = URL,
    body: bytes | None = BODY,
    **kw: Any,
) -> VerifiedSignature:
    kw.setdefault("key_for", KEYS.__getitem__)
    kw.setdefault("now", NOW)
    kw.setdefault("max_age", MAX_AGE)
    return verify_request(method=method, url=url, headers=headers, body=body, **kw)


def _code(headers: Mapping[str, str], **kw: Any) -> str:
    with pytest.raises(SignatureError) as info:
        _verify(headers, **kw)
    return info.value.code


def _params(
    *, created: Any = NOW, keyid: Any = KEY_ID, alg: Any = "ed25519", **extra: Any
) -> list[tuple[str, Any]]:
    pairs = [("created", created), ("keyid", keyid), ("alg", alg), *extra.items()]
    return [(k, v) for k, v in pairs if v is not None]


def _craft(
    covered: tuple[str, ...] = (*DEFAULT_REQUIRED, "content-digest"),
    params: list[tuple[str, Any]] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
    url: str = URL,
    body: bytes | None = BODY,
    label: str = "comity",
) -> dict[str, str]:
    """A correctly signed request with any components and parameters."""
    out = dict(headers or {})
    if body is not None and "content-digest" in covered:
        out.setdefault("Content-Digest", content_digest(body))
    sig_input = httpsig._SignatureInput(covered, tuple(_params() if params is None else params))
    values = httpsig._component_values(covered, method, httpsig._parse_target(url), out)
    signature = KEY.sign(httpsig._signature_base(sig_input, values))
    out["Signature-Input"] = f"{label}={sig_input.serialize()}"
    out["Signature"] = f"{label}=:{base64.b64encode(signature).decode()}:"
    return out


# Round trips.


def test_get_round_trip_without_body() -> None:
    headers = _sign(method="GET", body=None)
    assert set(headers) == {"Signature-Input", "Signature"}
    for body in (None, b""):
        verified = _verify(headers, method="GET", body=body)
        assert verified == VerifiedSignature(KEY_ID, NOW, DEFAULT_REQUIRED, None)


def test_post_round_trip_covers_the_body() -> None:
    headers = _sign(nonce="n-1")
    assert headers["Content-Digest"] == content_digest(BODY)
    verified = _verify(headers)
    assert verified.covered == (*DEFAULT_REQUIRED, "content-digest")
    assert (verified.key_id, verified.created, verified.nonce) == (KEY_ID, NOW, "n-1")


def test_empty_body_is_covered_when_signed_and_checks_against_none() -> None:
    headers = _sign(body=b"")
    assert headers["Content-Digest"] == content_digest(b"")
    assert _verify(headers, body=None).covered[-1] == "content-digest"
    assert _verify(headers, body=b"").covered[-1] == "content-digest"


def test_emitted_signature_input_is_exact() -> None:
    headers = _sign(nonce='a"b\\c')
    assert headers["Signature-Input"] == (
        'comity=("@method" "@target-uri" "@authority" "content-digest")'
        f';created={NOW};keyid="peer-a";alg="ed25519";nonce="a\\"b\\\\c"'
    )
    assert _verify(headers).nonce == 'a"b\\c'


def test_signature_base_layout() -> None:
    sig_input = httpsig._SignatureInput(
        (*DEFAULT_REQUIRED, "content-digest"), (("created", 1), ("keyid", "k"), ("alg", "ed25519"))
    )
    values = httpsig._component_values(
        sig_input.covered,
        "POST",
        httpsig._parse_target("HTTPS://Peer.Example:443/a?b=c"),
        {"Content-Digest": " sha-256=:x: "},
    )
    assert httpsig._signature_base(sig_input, values) == (
        b'"@method": POST\n'
        b'"@target-uri": https://peer.example/a?b=c\n'
        b'"@authority": peer.example\n'
        b'"content-digest": sha-256=:x:\n'
        b'"@signature-params": ("@method" "@target-uri" "@authority" "content-digest")'
        b';created=1;keyid="k";alg="ed25519"'
    )


def test_starlette_headers_are_read_case_insensitively() -> None:
    signed = _sign()
    raw = [(k.encode(), v.encode()) for k, v in signed.items()]
    assert _verify(Headers(raw=[(b"host", b"peer-b.example:8443"), *raw])).key_id == KEY_ID
    lowered = [(k.lower(), v) for k, v in raw]
    assert _verify(Headers(raw=lowered)).key_id == KEY_ID
    assert _verify({k.upper(): v for k, v in signed.items()}).key_id == KEY_ID


def test_url_is_normalised_the_same_way_on_both_sides() -> None:
    headers = _sign(url="HTTPS://Peer-B.Example:443")
    assert _verify(headers, url="https://peer-b.example/").key_id == KEY_ID
    assert _code(headers, url="https://peer-b.example:8443/") == "bad-signature"


def test_other_labels_are_ignored_when_well_formed() -> None:
    ours = _sign()
    theirs = _craft(label="proxy", params=_params(keyid="someone-else"))
    headers = {
        "Content-Digest": ours["Content-Digest"],
        "Signature-Input": f"{theirs['Signature-Input']}, {ours['Signature-Input']}",
        "Signature": f"{ours['Signature']},{theirs['Signature']}",
    }
    assert _verify(headers).key_id == KEY_ID


@settings(max_examples=40, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.text("abcXYZ019-._~%/", max_size=30),
    query=st.text("abc=&+%019", max_size=20),
    body=st.one_of(st.none(), st.binary(max_size=200)),
)
def test_hypothesis_round_trip_and_body_flip(
    method: str, path: str, query: str, body: bytes | None
) -> None:
    url = f"https://node.example/{path}" + (f"?{query}" if query else "")
    headers = _sign(method=method, url=url, body=body)
    assert _verify(headers, method=method, url=url, body=body).key_id == KEY_ID
    if body:
        flipped = bytes([body[0] ^ 1]) + body[1:]
        assert _code(headers, method=method, url=url, body=flipped) == "digest-mismatch"


# Reference vectors.

RFC_SEED = "9f8362f87a484a954e6e740c5b4c0e84229139a20aa8ab56ff66586f6a7d29c5"
RFC_PUBLIC = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"
RFC_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
    ';created=1618884473;keyid="test-key-ed25519"'
)
RFC_SIGNATURE = (
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1"
    "u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
)
RFC_BASE = (
    b'"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
    b'"@method": POST\n'
    b'"@path": /foo\n'
    b'"@authority": example.com\n'
    b'"content-type": application/json\n'
    b'"content-length": 18\n'
    b'"@signature-params": ("date" "@method" "@path" "@authority" "content-type"'
    b' "content-length");created=1618884473;keyid="test-key-ed25519"'
)
RFC_URL = "https://example.com/foo?param=Value&Pet=dog"
RFC_HEADERS = {
    "Host": "example.com",
    "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
    "Content-Type": "application/json",
    "Content-Length": "18",
}


def test_rfc9421_b26_ed25519_vector_is_reproduced_byte_for_byte() -> None:
    """RFC 9421 Appendix B.2.6, with test-key-ed25519 from Appendix B.1.4."""
    key = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC_SEED)))
    assert key.public == VerifyKey.from_b64(RFC_PUBLIC)
    sig_input = httpsig._parse_dictionary(RFC_INPUT, httpsig._signature_input_member)["sig-b26"]
    values = httpsig._component_values(
        sig_input.covered, "POST", httpsig._parse_target(RFC_URL), RFC_HEADERS
    )
    base = httpsig._signature_base(sig_input, values)
    assert base == RFC_BASE
    expected = httpsig._parse_dictionary(RFC_SIGNATURE, httpsig._byte_member)["sig-b26"]
    assert key.sign(base) == expected
    key.public.verify(expected, base)


def test_rfc9421_b26_message_fails_only_our_alg_policy() -> None:
    headers = {**RFC_HEADERS, "Signature-Input": RFC_INPUT, "Signature": RFC_SIGNATURE}
    kw: dict[str, Any] = {
        "method": "POST",
        "url": RFC_URL,
        "body": None,
        "label": "sig-b26",
        "required": ("@method", "@path", "@authority"),
        "now": 1618884473,
        "key_for": {"test-key-ed25519": VerifyKey.from_b64(RFC_PUBLIC)}.__getitem__,
    }
    assert _code(headers, **kw) == "bad-alg"


def test_rfc9530_content_digest_of_the_example_body() -> None:
    """The sha-256 value the RFC 9530 / RFC 9421 examples give for this body."""
    assert (
        content_digest(b'{"hello": "world"}')
        == "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    )
    assert content_digest(b"") == "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"


# Each rejection, with its code.


@pytest.mark.parametrize("drop", ["Signature-Input", "Signature"])
def test_missing_signature_headers(drop: str) -> None:
    headers = _sign()
    del headers[drop]
    assert _code(headers) == "missing-header"


MALFORMED_INPUTS = [
    "",
    "comity",
    "comity=",
    'Comity=("@method")',
    'comity=(@method "@target-uri")',
    'comity=("@method";req "@target-uri")',
    'comity=("@method"  "@target-uri")',
    'comity=( "@method")',
    'comity=("@method");created=1.5',
    'comity=("@method");created=01',
    'comity=("@method");created=-0',
    'comity=("@method");created=1234567890123456',
    'comity=("@method");flag',
    'comity=("@method");keyid=tok',
    'comity=("@method");keyid="a\\nb"',
    'comity=("@method");keyid="a',
    'comity=("@method");keyid="é"',
    'comity=("@method");keyid="a\x01b"',
    'comity=("@method");keyid="a\x7fb"',
    "comity=(" + " ".join(f'"x-h{i}"' for i in range(httpsig.MAX_COMPONENTS + 1)) + ")",
    'comity=("@method");created=1;created=2',
    'comity=("@method" "@method")',
    'comity=("@method"),',
    'comity=("@method"),comity=("@method")',
    'comity=("@method");keyid="' + "a" * MAX_FIELD_CHARS + '"',
    "comity=:AAAA:",
]


@pytest.mark.parametrize("signature_input", MALFORMED_INPUTS)
def test_malformed_signature_input(signature_input: str) -> None:
    headers = _sign()
    headers["Signature-Input"] = signature_input
    assert _code(headers) == "malformed"


@pytest.mark.parametrize(
    ("signature_input", "reason"),
    [
        ('comity=("@method";req)', "component parameters are not supported"),
        ('comity=("@method""@path")', "component parameters are not supported"),
        ('comity=("@method");keyid="a\\nb"', "bad escape"),
        ('comity=("@method");keyid="a\x01"', "control character"),
        ('comity=("@method");keyid="a', "unterminated string"),
        ('comity=("@method");created=01', "non-canonical"),
        ('comity=("@method");created=1.5', "expected ','"),
    ],
)
def test_malformed_signature_input_says_why(signature_input: str, reason: str) -> None:
    headers = _sign()
    headers["Signature-Input"] = signature_input
    with pytest.raises(SignatureError, match=r"^malformed: ") as info:
        httpsig._find_signature(headers, "comity")
    assert reason in str(info.value)


def test_non_canonical_spacing_is_rejected_even_though_the_signature_matches() -> None:
    headers = _sign()
    headers["Signature-Input"] = headers["Signature-Input"].replace('" "', '"  "', 1)
    assert _code(headers) == "malformed"


def _sig_b64(headers: Mapping[str, str]) -> str:
    return headers["Signature"].split("=", 1)[1].strip(":")


def _urlsafe(b: str) -> str:
    if "+" in b or "/" in b:
        return b.replace("+", "-").replace("/", "_")
    return "-" + b[1:]


def _set_unused_bits(encoded: str) -> str:
    """The same 64 bytes in non-canonical base64: the last character's spare bits set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = encoded[-3]
    changed = encoded[:-3] + alphabet[alphabet.index(last) ^ 1] + encoded[-2:]
    assert base64.b64decode(changed) == base64.b64decode(encoded)
    return changed


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: f"comity={b}",
        lambda b: f"comity=:{b.rstrip('=')}:",
        lambda b: f"comity=:{b}:;x=1",
        lambda b: f"comity=:{b[:-4]}:",
        # base64url instead of base64 (forced, in case the value has no + or /).
        lambda b: f"comity=:{_urlsafe(b)}:",
        lambda b: f"comity=:{_set_unused_bits(b)}:",
        lambda b: f'comity="{b}"',
        lambda b: f"comity=:{b}",
    ],
)
def test_malformed_signature(mutate: Any) -> None:
    headers = _sign()
    headers["Signature"] = mutate(_sig_b64(headers))
    assert _code(headers) == "malformed"


def test_signature_of_wrong_length_is_malformed() -> None:
    headers = _sign()
    headers["Signature"] = "comity=:" + base64.b64encode(b"\x00" * 63).decode() + ":"
    assert _code(headers) == "malformed"


def test_repeated_fields_are_combined_and_duplicate_labels_rejected() -> None:
    signed = _sign()
    raw = [(k.encode(), v.encode()) for k, v in signed.items()]
    raw.append((b"signature", signed["Signature"].encode()))
    assert _code(Headers(raw=raw)) == "malformed"


def test_other_label_outside_our_subset_is_rejected() -> None:
    headers = _sign()
    headers["Signature-Input"] += ', proxy=("@status";req);created=1'
    assert _code(headers) == "malformed"


def test_label_missing() -> None:
    headers = _sign()
    assert _code(headers, label="other") == "label-missing"
    theirs = _craft(label="other")
    assert _code({**headers, "Signature": theirs["Signature"]}) == "label-missing"


@pytest.mark.parametrize("alg", ["rsa-pss-sha512", "ED25519", "hmac-sha256", None])
def test_alg_other_than_ed25519_is_rejected(alg: str | None) -> None:
    assert _code(_craft(params=_params(alg=alg))) == "bad-alg"


@pytest.mark.parametrize(
    "params",
    [
        _params(expires=NOW + 60),
        _params(tag="x"),
        _params(keyid=7),
        _params(created="1700000000"),
        _params(nonce=5),
    ],
)
def test_unsupported_or_mistyped_params(params: list[tuple[str, Any]]) -> None:
    assert _code(_craft(params=params)) == "unsupported-param"


def test_keyid_missing() -> None:
    assert _code(_craft(params=_params(keyid=None))) == "keyid-missing"


def test_created_missing() -> None:
    assert _code(_craft(params=_params(created=None))) == "created-missing"


def test_created_in_the_future_beyond_the_skew() -> None:
    assert _verify(_sign(created=NOW + MAX_CLOCK_SKEW)).created == NOW + MAX_CLOCK_SKEW
    assert _code(_sign(created=NOW + MAX_CLOCK_SKEW + 1)) == "created-future"


def test_created_older_than_max_age() -> None:
    assert _verify(_sign(created=NOW - MAX_AGE)).created == NOW - MAX_AGE
    assert _code(_sign(created=NOW - MAX_AGE - 1)) == "expired"


def test_replay_after_max_age_fails() -> None:
    headers = _sign()
    assert _verify(headers, now=NOW + MAX_AGE).key_id == KEY_ID
    assert _code(headers, now=NOW + MAX_AGE + 1) == "expired"


@pytest.mark.parametrize("drop", DEFAULT_REQUIRED)
def test_required_component_not_covered(drop: str) -> None:
    covered = tuple(c for c in (*DEFAULT_REQUIRED, "content-digest") if c != drop)
    assert _code(_craft(covered)) == "not-covered"


def test_caller_required_component_not_covered() -> None:
    headers = _sign()
    assert _code(headers, required=(*DEFAULT_REQUIRED, "content-type")) == "not-covered"


def test_body_without_covered_content_digest() -> None:
    headers = _craft(DEFAULT_REQUIRED)
    assert _verify(headers, body=b"").key_id == KEY_ID
    assert _code(headers) == "digest-not-covered"


@pytest.mark.parametrize(
    "value",
    ["sha-256=abc", "sha-256=:AAAA", "sha-512=:" + base64.b64encode(b"\x00" * 64).decode() + ":"],
)
def test_bad_content_digest(value: str) -> None:
    headers = _craft(headers={"Content-Digest": value})
    assert _code(headers) == "bad-digest"


def test_content_digest_mismatching_the_body() -> None:
    headers = _sign()
    assert _code(headers, body=BODY + b" ") == "digest-mismatch"
    assert _code(headers, body=None) == "digest-mismatch"


def test_content_digest_may_carry_other_algorithms() -> None:
    value = content_digest(BODY) + ", sha-512=:" + base64.b64encode(b"\x01" * 64).decode() + ":"
    assert _verify(_craft(headers={"Content-Digest": value})).key_id == KEY_ID


def test_covered_component_missing_from_the_message() -> None:
    headers = _sign()
    del headers["Content-Digest"]
    assert _code(headers) == "missing-component"
    crafted = _craft(
        (*DEFAULT_REQUIRED, "content-type"), headers={"Content-Type": "a/b"}, body=None
    )
    del crafted["Content-Type"]
    assert _code(crafted, body=None) == "missing-component"


@pytest.mark.parametrize(
    "component", ["@status", "@request-target", "@signature-params", "@scheme", "Content-Type"]
)
def test_unsupported_component(component: str) -> None:
    sig_input = f'comity=("@method" "@target-uri" "@authority" "{component}")' + (
        f';created={NOW};keyid="{KEY_ID}";alg="ed25519"'
    )
    headers = {**_sign(body=None), "Signature-Input": sig_input, "Content-Type": "a/b"}
    assert _code(headers, body=None) == "unsupported-component"


def test_component_value_that_could_forge_base_lines() -> None:
    sig_input = f'comity=("@method" "@target-uri" "@authority" "x-note");created={NOW}' + (
        f';keyid="{KEY_ID}";alg="ed25519"'
    )
    headers = {**_sign(body=None), "Signature-Input": sig_input}
    forged = '"@authority": evil.example'
    assert _code({**headers, "X-Note": f"a\n{forged}"}, body=None) == "bad-component"
    assert _code(_sign(body=None), method="GET\nX", body=None) == "bad-component"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://peer-b.example/",
        "/taxii2/",
        "https:///nohost",
        "https://user@peer-b.example/",
        "https://peer-b.example/#frag",
        "https://peer-b.example:99999/",
        "https://peer-b.example/a b",
        "https://peer-b.example/" + "a" * httpsig.MAX_URL_CHARS,
    ],
)
def test_bad_url(url: str) -> None:
    assert _code(_sign(), url=url) == "bad-url"


def test_unknown_key() -> None:
    assert _code(_sign(), key_for={}.__getitem__) == "unknown-key"


def test_signature_by_another_key() -> None:
    headers = sign_request(
        OTHER, key_id=KEY_ID, method="POST", url=URL, headers={}, body=BODY, created=NOW
    )
    assert _code(headers) == "bad-signature"


# Tampering.


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("method", "PUT"),
        ("method", "post"),
        ("url", URL.replace("/objects/", "/manifest/")),
        ("url", URL.replace("2024-01-01", "2023-01-01")),
        ("url", URL.split("?")[0]),
        ("url", URL + "&limit=1"),
        ("url", URL.replace("https://", "http://")),
        ("url", URL.replace("peer-b.example", "peer-c.example")),
        ("url", URL.replace(":8443", ":8444")),
        ("url", URL.replace(":8443", "")),
    ],
)
def test_tampered_method_or_url(field: str, value: str) -> None:
    assert _code(_sign(), **{field: value}) == "bad-signature"


def test_authority_alone_is_protected() -> None:
    headers = _craft(("@method", "@path", "@authority", "content-digest"))
    required = ("@method", "@authority")
    assert _verify(headers, required=required).key_id == KEY_ID
    other = URL.replace("peer-b.example", "peer-c.example")
    assert _code(headers, required=required, url=other) == "bad-signature"


def test_tampered_body_with_recomputed_digest() -> None:
    headers = _sign()
    forged = BODY.replace(b"[]", b"[1]")
    headers["Content-Digest"] = content_digest(forged)
    assert _code(headers, body=forged) == "bad-signature"


def test_tampered_covered_header() -> None:
    covered = (*DEFAULT_REQUIRED, "content-digest", "content-type")
    headers = _craft(covered, headers={"Content-Type": "application/taxii+json;version=2.1"})
    assert _verify(headers).covered == covered
    headers["Content-Type"] = "application/json"
    assert _code(headers) == "bad-signature"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (f"created={NOW}", f"created={NOW - 1}"),
        ('nonce="n-1"', 'nonce="n-2"'),
        ('keyid="peer-a"', 'keyid="peer-a2"'),
    ],
)
def test_tampered_signature_params(old: str, new: str) -> None:
    headers = _sign(nonce="n-1")
    headers["Signature-Input"] = headers["Signature-Input"].replace(old, new)
    keys = {**KEYS, "peer-a2": KEY.public}
    assert _code(headers, key_for=keys.__getitem__) == "bad-signature"


def test_dropping_a_covered_component_breaks_the_signature() -> None:
    headers = _sign()
    headers["Signature-Input"] = headers["Signature-Input"].replace(' "content-digest"', "")
    assert _code(headers, body=None) == "bad-signature"


def test_every_flipped_bit_of_the_signature_is_rejected() -> None:
    headers = _sign()
    signature = base64.b64decode(_sig_b64(headers))
    for i in range(len(signature) * 8):
        forged = bytearray(signature)
        forged[i // 8] ^= 1 << (i % 8)
        tampered = {**headers, "Signature": f"comity=:{base64.b64encode(forged).decode()}:"}
        assert _code(tampered) == "bad-signature"


def test_every_changed_character_of_signature_input_is_rejected() -> None:
    headers = _sign(nonce="n-1")
    text = headers["Signature-Input"]
    for i, char in enumerate(text):
        for replacement in {"x", "1", '"', " "} - {char}:
            tampered = {**headers, "Signature-Input": text[:i] + replacement + text[i + 1 :]}
            with pytest.raises(SignatureError):
                _verify(tampered)


# Caller bugs are ValueError, not SignatureError.


@pytest.mark.parametrize(
    "kw",
    [
        {"label": "Comity"},
        {"label": ""},
        {"key_id": "a\nb"},
        {"key_id": "clé"},
        {"nonce": "tab\there"},
        {"created": -1},
        {"created": True},
        {"method": "GE T"},
        {"url": "https://peer-b.example/#x"},
        {"url": "ftp://peer-b.example/"},
        {"headers": {"content-digest": "sha-256=:AA==:"}},
        {"headers": {"Signature": "x"}},
    ],
)
def test_sign_rejects_bad_arguments(kw: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "key_id": KEY_ID,
        "method": "POST",
        "url": URL,
        "headers": {},
        "body": BODY,
        "created": NOW,
        **kw,
    }
    with pytest.raises(ValueError) as info:
        sign_request(KEY, **args)
    assert not isinstance(info.value, SignatureError)


def test_negative_max_age_is_a_caller_bug() -> None:
    with pytest.raises(ValueError) as info:
        _verify(_sign(), max_age=-1)
    assert not isinstance(info.value, SignatureError)


def test_digest_is_sha256_of_exact_bytes() -> None:
    body = bytes(range(256))
    expected = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert content_digest(body) == f"sha-256=:{expected}:"
