"""DANGER: canonical JSON (RFC 8785, JSON Canonicalization Scheme).

Every signed object in Comity is signed over its RFC 8785 encoding, so two
nodes that hold the same logical object always compute the same bytes. The
encoding is produced by the ``rfc8785`` library; parsing is strict: non-finite
numbers and oversized inputs are rejected, and
:func:`loads_canonical` additionally requires that the input already *is* the
canonical encoding (re-encode and compare), so a signature can never cover a
different reading of the same bytes.

Example::

    raw = dumps({"b": 1, "a": [True, None]})   # b'{"a":[true,null],"b":1}'
    assert loads_canonical(raw) == {"a": [True, None], "b": 1}
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import rfc8785

__all__ = [
    "CanonicalJSONError",
    "dumps",
    "loads_canonical",
    "loads_strict",
    "sha256_hex",
]


class CanonicalJSONError(ValueError):
    """Raised when bytes are not acceptable JSON or not in canonical form."""


_INT_MAX = 2**53 - 1


def _fast_path_safe(obj: Any) -> bool:
    """Whether orjson's sorted output is byte-identical to RFC 8785 for ``obj``.

    For ASCII keys, integers in the exact-double range, strings, booleans,
    null, arrays and objects the two encodings coincide (same escaping, same
    key order since UTF-16 and code point order agree on ASCII). Floats are
    excluded because the number serialisations differ. The equivalence is
    property-tested against ``rfc8785`` in the test suite.
    """
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, str) or value is None or isinstance(value, bool):
            continue
        if isinstance(value, int):
            if not -_INT_MAX <= value <= _INT_MAX:
                return False
        elif isinstance(value, dict):
            for key in value:
                if not (isinstance(key, str) and key.isascii()):
                    return False
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
        else:
            return False
    return True


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as RFC 8785 canonical JSON.

    Raises:
        CanonicalJSONError: if ``obj`` holds values JSON cannot represent
            exactly (floats that are not finite, integers beyond IEEE 754
            double precision, non-string keys).
    """
    if _fast_path_safe(obj):
        try:
            return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            pass  # e.g. lone surrogates: let the reference encoder decide.
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as e:
        raise CanonicalJSONError(f"cannot canonicalize: {e}") from e


def loads_strict(raw: bytes, *, max_bytes: int) -> Any:
    """Parse untrusted JSON within ``max_bytes``.

    Duplicate keys are not an ambiguity for anything Comity acts on: every
    signed object is verified over the canonical re-encoding of what was
    parsed, so a document that reads differently elsewhere fails its signature
    check here. Unsigned API input is the caller's own statement.

    Raises:
        CanonicalJSONError: on oversized or invalid JSON.
    """
    if len(raw) > max_bytes:
        raise CanonicalJSONError(f"document of {len(raw)} bytes exceeds limit of {max_bytes}")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise CanonicalJSONError(f"invalid JSON: {e}") from e


def loads_canonical(raw: bytes, *, max_bytes: int) -> Any:
    """Parse ``raw`` and require it to be exactly its own canonical encoding.

    Raises:
        CanonicalJSONError: if ``raw`` is not valid JSON, too large, or not
            canonical.
    """
    value = loads_strict(raw, max_bytes=max_bytes)
    if dumps(value) != raw:
        raise CanonicalJSONError("document is not in RFC 8785 canonical form")
    return value


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex SHA-256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()
