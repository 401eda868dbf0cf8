"""Errors of the sharing domain, each mapped to the TAXII 2.1 error the spec names."""

from __future__ import annotations

from comity.problems import Problem

__all__ = [
    "BadFilterError",
    "CollectionNotFoundError",
    "NotAcceptableError",
    "ObjectNotFoundError",
    "SharingError",
    "TaxiiForbiddenError",
    "TaxiiUnauthorizedError",
    "UnsupportedContentTypeError",
]


class SharingError(Problem):
    slug = "sharing"
    title = "Sharing request rejected"


class BadFilterError(SharingError):
    slug = "taxii-bad-request"
    status = 400
    title = "Bad request"


class TaxiiUnauthorizedError(SharingError):
    slug = "taxii-unauthorized"
    status = 401
    title = "Authentication required"


class TaxiiForbiddenError(SharingError):
    slug = "taxii-forbidden"
    status = 403
    title = "Not allowed"


class CollectionNotFoundError(SharingError):
    slug = "taxii-collection-not-found"
    status = 404
    title = "No such collection"


class ObjectNotFoundError(SharingError):
    slug = "taxii-not-found"
    status = 404
    title = "Not found"


class NotAcceptableError(SharingError):
    slug = "taxii-not-acceptable"
    status = 406
    title = "Media type not acceptable"


class UnsupportedContentTypeError(SharingError):
    slug = "taxii-unsupported-media-type"
    status = 415
    title = "Unsupported media type"


class DuplicateCollectionError(SharingError):
    slug = "sharing-duplicate-collection"
    status = 409
    title = "A collection of that name exists"
