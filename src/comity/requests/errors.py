"""Errors of the requests domain, each with its own problem type.

A validation error lists every problem found in a request, each naming the
element at fault and the article that requires it, so an officer can fix a
whole draft in one pass.
"""

from __future__ import annotations

from typing import Any

from comity.problems import Problem

__all__ = [
    "CatalogError",
    "IllegalTransitionError",
    "RequestError",
    "RequestNotFoundError",
    "RequestValidationError",
    "UnknownRequestTypeError",
]


class CatalogError(Exception):
    """The catalog file is unreadable or inconsistent (a configuration error)."""


class RequestError(Problem):
    slug = "request-rejected"
    title = "Request rejected"


class UnknownRequestTypeError(RequestError):
    slug = "unknown-request-type"
    title = "Unknown request type"


class RequestValidationError(RequestError):
    """One or more elements of a request are missing or malformed."""

    slug = "invalid-request"
    status = 422
    title = "The request is incomplete or malformed"

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        detail = "; ".join(p["message"] for p in problems)
        super().__init__(detail, errors=problems)
        self.problems = problems


class RequestNotFoundError(RequestError):
    slug = "request-not-found"
    status = 404
    title = "No such request"


class IllegalTransitionError(RequestError):
    slug = "illegal-transition"
    status = 409
    title = "Not allowed in the request's current state"


class RequestConflictError(RequestError):
    slug = "request-conflict"
    status = 409
    title = "Request conflicts with one held here"
