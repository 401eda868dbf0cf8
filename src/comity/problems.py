"""RFC 9457 problem details: the one shape every Comity error takes on the wire.

Each domain's ``errors.py`` defines exceptions that inherit from
:class:`Problem`; each concrete class names its own ``slug`` (which becomes the
problem ``type`` URI ``urn:comity:problem:<slug>``), HTTP status and title. The
HTTP layer turns any ``Problem`` into ``application/problem+json``; the
federation layer embeds the same object per message in batch results, so a
peer always learns exactly which check failed.

Details are meant for the peer or operator who made the request; they never
contain secrets or another party's data.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["PROBLEM_MEDIA_TYPE", "Problem", "problem_type"]

PROBLEM_MEDIA_TYPE = "application/problem+json"
_PREFIX = "urn:comity:problem:"


def problem_type(slug: str) -> str:
    """The problem ``type`` URI for ``slug``."""
    return _PREFIX + slug


class Problem(Exception):
    """Base of every error that has a wire representation."""

    slug: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request rejected"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        """The RFC 9457 JSON object for this error."""
        doc: dict[str, Any] = {
            "type": problem_type(self.slug),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        doc.update(self.extra)
        return doc
