"""Errors of the registry domain."""

from __future__ import annotations

from comity.problems import Problem

__all__ = [
    "InvalidResourceError",
    "NotFoundError",
    "OutsidePoolError",
    "OverlapError",
    "RegistryError",
]


class RegistryError(Problem):
    slug = "registry"
    title = "Registry request rejected"


class InvalidResourceError(RegistryError):
    """Not an address, prefix, range or AS number, or not aligned as it must be."""

    slug = "registry-invalid-resource"
    status = 422
    title = "Not a valid number resource"


class OverlapError(RegistryError):
    slug = "registry-overlap"
    status = 409
    title = "Overlaps a resource already held"


class OutsidePoolError(RegistryError):
    slug = "registry-outside-pool"
    status = 409
    title = "Not inside a pool of its registry"


class NotFoundError(RegistryError):
    slug = "registry-not-found"
    status = 404
    title = "No such resource"
