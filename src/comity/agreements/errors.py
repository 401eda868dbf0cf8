"""Errors of the agreements domain.

``AuthorizationError`` is what the authorisation function raises when
something may not cross a border; each subclass names the exact reason so the
operator (or the peer, in a problem+json answer) knows what to fix.
``AgreementError`` covers invalid agreement documents and lifecycle moves.
"""

from __future__ import annotations

from comity.problems import Problem

__all__ = [
    "AgreementEndedError",
    "AgreementError",
    "AgreementNotFoundError",
    "AgreementNotInForceError",
    "AgreementStateError",
    "AuthorizationError",
    "InvalidAgreementError",
    "NoAgreementError",
    "NotAPartyError",
    "OutOfScopeError",
]


class AuthorizationError(Problem):
    """Base: an exchange is not allowed by any agreement in force."""

    status = 403
    title = "Not authorised by an agreement"


class NoAgreementError(AuthorizationError):
    slug = "no-agreement"
    title = "No such agreement"


class NotAPartyError(AuthorizationError):
    slug = "not-a-party"
    title = "Not a party to the agreement"


class AgreementNotInForceError(AuthorizationError):
    slug = "agreement-not-in-force"
    title = "Agreement is not in force"


class AgreementEndedError(AgreementNotInForceError):
    """Expired or terminated: it will not come back into force by waiting."""

    slug = "agreement-ended"
    title = "Agreement has ended"


class OutOfScopeError(AuthorizationError):
    slug = "out-of-scope"
    title = "Outside the agreement's scope"


class AgreementError(Problem):
    """Base: an agreement document or lifecycle step is not acceptable."""

    slug = "invalid-agreement"
    title = "Agreement rejected"


class InvalidAgreementError(AgreementError):
    pass


class AgreementStateError(AgreementError):
    slug = "agreement-state"
    status = 409
    title = "Not allowed in the agreement's current state"


class AgreementNotFoundError(AgreementError):
    slug = "agreement-not-found"
    status = 404
    title = "No such agreement"
