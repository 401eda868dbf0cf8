"""``correspondence``: a plain letter between parties under an agreement.

The simplest message that needs an agreement in force: a subject and a text
in one of the agreement's languages, optionally about a request type, an
offence category and data categories, each of which must be within the
agreement's scope.
"""

from __future__ import annotations

from typing import Any

from comity.agreements.authorization import Purpose
from comity.federation.errors import InvalidBodyError
from comity.federation.registry import MessageType

__all__ = ["CORRESPONDENCE"]

_FIELDS = {"subject", "text", "language", "request_type", "offence_category",
           "data_categories"}
_MAX_TEXT = 256 * 1024


def _str(body: dict[str, Any], name: str, *, limit: int, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise InvalidBodyError(f"correspondence.{name} must be a string of 1 to {limit} "
                               "characters")
    return value


def validate(body: dict[str, Any]) -> Purpose:
    """Check a correspondence body and say what it is about.

    Raises:
        InvalidBodyError: on unknown or malformed fields.
    """
    extra = set(body) - _FIELDS
    if extra:
        raise InvalidBodyError(f"unknown correspondence fields: {sorted(extra)}")
    _str(body, "subject", limit=500, required=True)
    _str(body, "text", limit=_MAX_TEXT, required=True)
    language = _str(body, "language", limit=35, required=True)
    cats = body.get("data_categories", [])
    if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
        raise InvalidBodyError("correspondence.data_categories must be a list of strings")
    return Purpose(
        request_type=_str(body, "request_type", limit=64, required=False),
        offence_category=_str(body, "offence_category", limit=64, required=False),
        data_categories=tuple(cats),
        language=language,
    )


CORRESPONDENCE = MessageType(name="correspondence", validate=validate)
