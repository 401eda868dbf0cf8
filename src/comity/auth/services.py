"""Issue and check API tokens.

A token is 32 random bytes (base64url) shown once; only its SHA-256 is stored,
so a copy of the database does not let anyone call the API. Comparison is by
hash lookup, which does not leak the token through timing.

Trust assumptions: whoever holds a token is a trusted operator of this node.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from comity.auth.models import ApiToken
from comity.clock import Clock
from comity.problems import Problem

__all__ = ["InvalidTokenError", "TokenCache", "check_token", "issue_token"]


class InvalidTokenError(Problem):
    slug = "unauthorized"
    status = 401
    title = "Missing or invalid API token"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, *, name: str, clock: Clock) -> str:
    """Create a token; returns its only plain-text copy."""
    token = secrets.token_urlsafe(32)
    session.add(ApiToken(token_hash=_hash(token), name=name, created_at=clock.now()))
    return token


def check_token(session: Session, token: str | None) -> ApiToken:
    """Raises: InvalidTokenError if ``token`` is missing or unknown."""
    if not token:
        raise InvalidTokenError("send `Authorization: Bearer <token>`")
    row = session.get(ApiToken, _hash(token))
    if row is None:
        raise InvalidTokenError("unknown API token")
    return row


class TokenCache:
    """Remembers tokens found valid for ``ttl`` seconds (never invalid ones).

    The API checks a token on every call; this keeps that from costing a
    database transaction each time. Tokens cannot be revoked yet; when they
    can, ``ttl`` bounds how long a revoked one keeps working in a running
    server.
    """

    def __init__(self, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._valid: dict[str, float] = {}
        self._lock = threading.Lock()

    def known(self, token: str | None) -> bool:
        """Whether ``token`` was found valid less than ``ttl`` seconds ago."""
        if not token:
            return False
        with self._lock:
            until = self._valid.get(_hash(token))
        return until is not None and until > self._clock()

    def remember(self, token: str | None) -> None:
        """Record that ``token`` was just found valid."""
        if token:
            with self._lock:
                self._valid[_hash(token)] = self._clock() + self._ttl
