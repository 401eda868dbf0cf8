"""DANGER: HTTP Message Signatures (RFC 9421) with Ed25519, and Content-Digest (RFC 9530).

Peers authenticate the TAXII requests they send each other by signing them:
:func:`sign_request` covers the method, the target URI, the authority and,
when there is a body, its ``Content-Digest`` (sha-256), with the parameters
``created``, ``keyid``, ``alg="ed25519"`` and an optional ``nonce``, under one
label (``comity`` by default). :func:`verify_request` checks such a request
and returns a :class:`VerifiedSignature`, or raises :class:`SignatureError`
with a short ``code``; it never returns a bool. A byte out of place in the
signature base makes honest requests fail, or worse, lets a signature over
one request authenticate another, so application code should use the
federation's client and middleware, not these functions.

Trust assumptions: the header fields and body handed to :func:`verify_request`
are untrusted. ``Signature-Input``, ``Signature`` and ``Content-Digest`` are
parsed strictly and within bounds, with only the subset of RFC 8941 structured
fields that this module writes: a dictionary whose members are an inner list
of strings with integer or string parameters, or a byte sequence. Anything
else (tokens, booleans, decimals, component parameters, non-canonical
spacing or base64, duplicate keys, unknown signature parameters such as
``expires``) is rejected, even under another label. The method and URL are
the verifier's own view of the request (its framework's, with the host taken
from the request line or ``Host``); both sides normalise the URL the same way
(lowercase scheme and host, no default port, empty path as ``/``). The
``key_for`` callback is trusted to map a key id to the right peer key;
``now`` is trusted. Replay inside ``max_age`` is not detected here: callers
that need that must remember ``(key_id, nonce)`` pairs themselves.

Example::

    headers = sign_request(key, key_id="peer-a", method="POST", url=url,
                           headers={}, body=body, created=int(time.time()))
    verified = verify_request(method="POST", url=url, headers=headers, body=body,
                              key_for=peers.__getitem__, now=int(time.time()),
                              max_age=60)        # raises SignatureError
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from comity.hazmat.keys import SIGNATURE_BYTES, BadSignature, SigningKey, VerifyKey

__all__ = [
    "ALG",
    "DEFAULT_LABEL",
    "DEFAULT_REQUIRED",
    "MAX_CLOCK_SKEW",
    "MAX_FIELD_CHARS",
    "SignatureError",
    "VerifiedSignature",
    "content_digest",
    "sign_request",
    "verify_request",
]

ALG = "ed25519"
DEFAULT_LABEL = "comity"
DEFAULT_REQUIRED: tuple[str, ...] = ("@method", "@target-uri", "@authority")
MAX_CLOCK_SKEW = 5
"""Seconds a signature's ``created`` may lie in the verifier's future."""
MAX_FIELD_CHARS = 8192
"""Longest ``Signature-Input``, ``Signature`` or ``Content-Digest`` value accepted."""
MAX_URL_CHARS = 8192
MAX_COMPONENTS = 32

_DERIVED = frozenset({"@method", "@target-uri", "@authority", "@path", "@query"})
_PARAM_TYPES: dict[str, type] = {"created": int, "keyid": str, "alg": str, "nonce": str}
_KEY_FIRST = "abcdefghijklmnopqrstuvwxyz*"
_KEY_REST = _KEY_FIRST + "0123456789_-."
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_FIELD_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
_METHOD = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_VALUE = re.compile(r"[\t\x20-\x7e]*")
_URL = re.compile(r"[\x21-\x7e]+")
_MAX_INTEGER = 999_999_999_999_999

_T = TypeVar("_T")
_Param = tuple[str, int | str]


class SignatureError(ValueError):
    """A request's HTTP message signature was missing, malformed or invalid.

    ``code`` says which check failed, for logs and tests; callers answering a
    peer should map every code to the same opaque response. Codes:
    ``missing-header``, ``malformed``, ``label-missing``, ``bad-alg``,
    ``unsupported-param``, ``keyid-missing``, ``created-missing``,
    ``created-future``, ``expired``, ``not-covered``, ``digest-not-covered``,
    ``bad-digest``, ``digest-mismatch``, ``missing-component``,
    ``unsupported-component``, ``bad-component``, ``bad-url``,
    ``unknown-key``, ``bad-signature``.
    """

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


class _ParseError(ValueError):
    """A structured field is outside the strict subset this module accepts."""


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """A request signature that verified: who signed, when, and what it covers."""

    key_id: str
    created: int
    covered: tuple[str, ...]
    nonce: str | None = None


# Structured field serialisation (RFC 8941 §4.1), for the types we emit.


def _sf_string(value: str) -> str:
    if not isinstance(value, str) or not _VALUE.fullmatch(value) or "\t" in value:
        raise ValueError(f"not a structured-field string: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sf_bare_item(value: int | str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"unsupported parameter value: {value!r}")
    if isinstance(value, str):
        return _sf_string(value)
    if abs(value) > _MAX_INTEGER:
        raise ValueError(f"integer out of range: {value}")
    return str(value)


def _sf_key(key: str) -> str:
    if not key or key[0] not in _KEY_FIRST or any(c not in _KEY_REST for c in key):
        raise ValueError(f"not a structured-field key: {key!r}")
    return key


def _sf_bytes(data: bytes) -> str:
    return ":" + base64.b64encode(data).decode("ascii") + ":"


@dataclass(frozen=True, slots=True)
class _SignatureInput:
    """One ``Signature-Input`` member: covered components and parameters."""

    covered: tuple[str, ...]
    params: tuple[_Param, ...]

    def serialize(self) -> str:
        """The inner list as RFC 8941 text: also the ``@signature-params`` value."""
        items = " ".join(_sf_string(name) for name in self.covered)
        params = "".join(f";{_sf_key(k)}={_sf_bare_item(v)}" for k, v in self.params)
        return f"({items}){params}"

    def param(self, name: str) -> int | str | None:
        return next((v for k, v in self.params if k == name), None)


# Structured field parsing (RFC 8941 §4.2), strict subset.


class _Parser:
    """A cursor over one field value; every method raises :class:`_ParseError`."""

    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        # Field values arrive trimmed (see _field_value), so leading or
        # trailing spaces are errors here.
        if len(text) > MAX_FIELD_CHARS or not text.isascii():
            raise _ParseError("field too long or not ASCII")
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise _ParseError(f"expected {char!r} at offset {self.pos}")
        self.pos += 1

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def key(self) -> str:
        start = self.pos
        if self.peek() == "" or self.peek() not in _KEY_FIRST:
            raise _ParseError(f"expected a key at offset {self.pos}")
        while self.pos < len(self.text) and self.text[self.pos] in _KEY_REST:
            self.pos += 1
        return self.text[start : self.pos]

    def string(self) -> str:
        self.expect('"')
        out: list[str] = []
        while not self.at_end():
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                return "".join(out)
            if char == "\\":
                char = self.peek()
                if char not in ('"', "\\"):
                    raise _ParseError("bad escape in string")
                self.pos += 1
            elif not " " <= char <= "~":
                raise _ParseError("control character in string")
            out.append(char)
        raise _ParseError("unterminated string")

    def integer(self) -> int:
        start = self.pos
        if self.peek() == "-":
            self.pos += 1
        digits = self.pos
        self.skip("0123456789")
        if not 1 <= self.pos - digits <= 15:
            raise _ParseError("expected an integer of 1 to 15 digits")
        return int(self.text[start : self.pos])

    def byte_sequence(self) -> bytes:
        self.expect(":")
        end = self.text.find(":", self.pos)
        encoded = self.text[self.pos : end] if end >= 0 else ""
        if end < 0 or not set(encoded) <= _B64_CHARS:
            raise _ParseError("bad byte sequence")
        self.pos = end + 1
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as e:
            raise _ParseError("bad base64 in byte sequence") from e
        if base64.b64encode(data).decode("ascii") != encoded:
            raise _ParseError("non-canonical base64 in byte sequence")
        return data

    def params(self) -> tuple[_Param, ...]:
        out: list[_Param] = []
        while self.peek() == ";":
            self.pos += 1
            self.skip(" ")
            key = self.key()
            if any(k == key for k, _ in out):
                raise _ParseError(f"duplicate parameter {key!r}")
            self.expect("=")  # Boolean (bare) parameters are outside our subset.
            first = self.peek()
            if first == '"':
                out.append((key, self.string()))
            elif first != "" and first in "-0123456789":
                out.append((key, self.integer()))
            else:
                raise _ParseError(f"unsupported value for parameter {key!r}")
        return tuple(out)


def _parse_dictionary(text: str, member: Callable[[_Parser], _T]) -> dict[str, _T]:
    """Parse a dictionary whose every member ``member`` can read."""
    parser = _Parser(text)
    out: dict[str, _T] = {}
    while True:
        key = parser.key()
        if key in out:
            raise _ParseError(f"duplicate dictionary key {key!r}")
        parser.expect("=")
        out[key] = member(parser)
        parser.skip(" \t")
        if parser.at_end():
            return out
        parser.expect(",")
        parser.skip(" \t")
        if parser.at_end():
            raise _ParseError("trailing comma")


def _signature_input_member(parser: _Parser) -> _SignatureInput:
    start = parser.pos
    parser.expect("(")
    covered: list[str] = []
    while True:
        parser.skip(" ")
        if parser.peek() == ")":
            parser.pos += 1
            break
        covered.append(parser.string())
        if len(covered) > MAX_COMPONENTS:
            raise _ParseError("too many covered components")
        if parser.peek() not in (" ", ")"):
            raise _ParseError("component parameters are not supported")
    result = _SignatureInput(tuple(covered), parser.params())
    if len(set(covered)) != len(covered):
        raise _ParseError("duplicate covered component")
    # Accept only the canonical text, so that the signature base rebuilt from
    # the parsed value is byte for byte the text the signer sent.
    if parser.text[start : parser.pos] != result.serialize():
        raise _ParseError("non-canonical signature input")
    return result


def _byte_member(parser: _Parser) -> bytes:
    # Parameters after the byte sequence are rejected by the dictionary parser,
    # which accepts only "," or the end after a member.
    return parser.byte_sequence()


# Message components (RFC 9421 §2).


@dataclass(frozen=True, slots=True)
class _Target:
    uri: str
    authority: str
    path: str
    query: str


def _parse_target(url: str) -> _Target:
    """Split and normalise an absolute http(s) URL; raise ValueError if it is not one."""
    if len(url) > MAX_URL_CHARS or not _URL.fullmatch(url) or "#" in url:
        raise ValueError("URL must be printable ASCII, bounded, without fragment")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise ValueError("URL must be absolute http(s) with a host and no userinfo")
    host = parts.hostname  # Already lowercased by urlsplit.
    if ":" in host:
        host = f"[{host}]"
    port = parts.port  # Raises ValueError on a bad port.
    default = 443 if scheme == "https" else 80
    authority = host if port is None or port == default else f"{host}:{port}"
    path = parts.path or "/"
    query = f"?{parts.query}" if parts.query else ""
    return _Target(f"{scheme}://{authority}{path}{query}", authority, path, query or "?")


def _field_value(headers: Mapping[str, str], name: str) -> str | None:
    """All lines of field ``name`` (case-insensitive), trimmed and joined (RFC 9421 §2.1)."""
    values = [v.strip(" \t") for k, v in headers.items() if k.lower() == name]
    return ", ".join(values) if values else None


def _component_values(
    covered: Sequence[str], method: str, target: _Target, headers: Mapping[str, str]
) -> dict[str, str]:
    derived = {
        "@method": method,
        "@target-uri": target.uri,
        "@authority": target.authority,
        "@path": target.path,
        "@query": target.query,
    }
    values: dict[str, str] = {}
    for name in covered:
        if name in _DERIVED:
            value: str | None = derived[name]
        elif _FIELD_NAME.fullmatch(name):
            value = _field_value(headers, name)
        else:
            raise SignatureError("unsupported-component", name)
        if value is None:
            raise SignatureError("missing-component", name)
        # A newline in a value would let one component forge lines of the base.
        if not _VALUE.fullmatch(value) or (name == "@method" and not _METHOD.fullmatch(value)):
            raise SignatureError("bad-component", name)
        values[name] = value
    return values


def _signature_base(sig_input: _SignatureInput, values: Mapping[str, str]) -> bytes:
    """The signature base of RFC 9421 §2.5."""
    lines = [f'"{name}": {values[name]}' for name in sig_input.covered]
    lines.append(f'"@signature-params": {sig_input.serialize()}')
    return "\n".join(lines).encode("ascii")


# Public API.


def content_digest(body: bytes) -> str:
    """The RFC 9530 ``Content-Digest`` value for ``body``: ``sha-256=:<base64>:``."""
    return "sha-256=" + _sf_bytes(hashlib.sha256(body).digest())


def sign_request(
    key: SigningKey,
    *,
    key_id: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    created: int,
    nonce: str | None = None,
    label: str = DEFAULT_LABEL,
) -> dict[str, str]:
    """Sign a request; return the header fields to add to it.

    Args:
        key: the sending node's signing key.
        key_id: how the receiver names ``key`` (``keyid`` parameter).
        method: the request method, as sent.
        url: the absolute request URL, as sent.
        headers: the request's other header fields; they must not already hold
            ``Signature``, ``Signature-Input`` or ``Content-Digest``.
        body: the exact body bytes, or ``None`` for a request without one.
        created: the signing time, in seconds since the epoch.
        nonce: an optional unique value the receiver may remember.
        label: the signature's dictionary key.

    Returns:
        ``Signature-Input`` and ``Signature``, plus ``Content-Digest`` when
        ``body`` is not ``None`` (it is then covered by the signature).

    Raises:
        ValueError: if an argument cannot be encoded (bad method, URL, label,
            key id or nonce, negative ``created``) or ``headers`` conflicts.
    """
    for name in ("signature", "signature-input", "content-digest"):
        if _field_value(headers, name) is not None:
            raise ValueError(f"headers already hold {name}")
    if isinstance(created, bool) or not isinstance(created, int) or created < 0:
        raise ValueError("created must be a non-negative integer")
    _sf_key(label)
    params: list[_Param] = [("created", created), ("keyid", key_id), ("alg", ALG)]
    if nonce is not None:
        params.append(("nonce", nonce))
    covered = DEFAULT_REQUIRED + (("content-digest",) if body is not None else ())
    sig_input = _SignatureInput(covered, tuple(params))
    added = {"Content-Digest": content_digest(body)} if body is not None else {}
    try:
        values = _component_values(covered, method, _parse_target(url), added)
    except SignatureError as e:
        raise ValueError(f"cannot sign: {e}") from e
    signature = key.sign(_signature_base(sig_input, values))
    added["Signature-Input"] = f"{label}={sig_input.serialize()}"
    added["Signature"] = f"{label}={_sf_bytes(signature)}"
    return added


def verify_request(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    key_for: Callable[[str], VerifyKey],
    now: int,
    max_age: int,
    label: str = DEFAULT_LABEL,
    required: Sequence[str] = DEFAULT_REQUIRED,
) -> VerifiedSignature:
    """Verify the signature ``label`` on a received request.

    Args:
        method: the request method as received.
        url: the absolute request URL as the verifier sees it.
        headers: the received header fields (a dict or starlette ``Headers``;
            names are matched case-insensitively, repeated fields combined).
        body: the exact body bytes received; ``None`` or ``b""`` when there
            is none. A non-empty body must be covered by ``content-digest``.
        key_for: maps a key id to its key; raises ``KeyError`` if unknown.
        now: the current time, in seconds since the epoch.
        max_age: the oldest acceptable ``created``, in seconds before ``now``.
        label: the signature to check; other labels are parsed, not checked.
        required: components the signature must cover.

    Returns:
        The verified key id, creation time, covered components and nonce.

    Raises:
        SignatureError: if anything is missing, malformed, stale or does not
            verify; ``code`` says what (see :class:`SignatureError`).
        ValueError: if ``max_age`` is negative (a caller bug).
    """
    if max_age < 0:
        raise ValueError("max_age must not be negative")
    sig_input, signature = _find_signature(headers, label)
    key_id, created, nonce = _check_params(sig_input, now=now, max_age=max_age)
    _check_coverage(sig_input.covered, required, body)
    if "content-digest" in sig_input.covered:
        _check_content_digest(headers, body or b"")
    try:
        target = _parse_target(url)
    except ValueError as e:
        raise SignatureError("bad-url", str(e)) from e
    base = _signature_base(sig_input, _component_values(sig_input.covered, method, target, headers))
    try:
        verify_key = key_for(key_id)
    except KeyError as e:
        raise SignatureError("unknown-key", key_id) from e
    try:
        verify_key.verify(signature, base)
    except BadSignature as e:
        raise SignatureError("bad-signature") from e
    return VerifiedSignature(key_id, created, sig_input.covered, nonce)


def _find_signature(headers: Mapping[str, str], label: str) -> tuple[_SignatureInput, bytes]:
    raw_input = _field_value(headers, "signature-input")
    raw_signature = _field_value(headers, "signature")
    if raw_input is None or raw_signature is None:
        raise SignatureError("missing-header", "Signature-Input and Signature are required")
    try:
        inputs = _parse_dictionary(raw_input, _signature_input_member)
        signatures = _parse_dictionary(raw_signature, _byte_member)
    except _ParseError as e:
        raise SignatureError("malformed", str(e)) from e
    if label not in inputs or label not in signatures:
        raise SignatureError("label-missing", label)
    if len(signatures[label]) != SIGNATURE_BYTES:
        raise SignatureError("malformed", "signature has the wrong length")
    return inputs[label], signatures[label]


def _check_params(
    sig_input: _SignatureInput, *, now: int, max_age: int
) -> tuple[str, int, str | None]:
    for name, value in sig_input.params:
        expected = _PARAM_TYPES.get(name)
        if expected is None or not isinstance(value, expected):
            raise SignatureError("unsupported-param", name)
    if sig_input.param("alg") != ALG:
        raise SignatureError("bad-alg", repr(sig_input.param("alg")))
    key_id = sig_input.param("keyid")
    if not isinstance(key_id, str):
        raise SignatureError("keyid-missing")
    created = sig_input.param("created")
    if not isinstance(created, int):
        raise SignatureError("created-missing")
    if created > now + MAX_CLOCK_SKEW:
        raise SignatureError("created-future", f"created={created}, now={now}")
    if now - created > max_age:
        raise SignatureError("expired", f"created={created}, now={now}")
    nonce = sig_input.param("nonce")
    return key_id, created, nonce if isinstance(nonce, str) else None


def _check_coverage(covered: Sequence[str], required: Sequence[str], body: bytes | None) -> None:
    missing = [name for name in required if name not in covered]
    if missing:
        raise SignatureError("not-covered", ", ".join(missing))
    if body and "content-digest" not in covered:
        raise SignatureError("digest-not-covered")


def _check_content_digest(headers: Mapping[str, str], body: bytes) -> None:
    raw = _field_value(headers, "content-digest")
    if raw is None:
        raise SignatureError("missing-component", "content-digest")
    try:
        digests = _parse_dictionary(raw, _byte_member)
    except _ParseError as e:
        raise SignatureError("bad-digest", str(e)) from e
    claimed = digests.get("sha-256")
    if claimed is None:
        raise SignatureError("bad-digest", "no sha-256 digest")
    if not hmac.compare_digest(claimed, hashlib.sha256(body).digest()):
        raise SignatureError("digest-mismatch")
