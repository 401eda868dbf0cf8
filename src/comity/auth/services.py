"""Issue and check API tokens.

A token is 32 random bytes (base64url) shown once; only its SHA-256 is stored,
so a copy of the database does not let anyone call the API. Comparison is by
hash lookup, which does not leak the token through timing.

Trust assumptions: whoever holds a token is a trusted operator of this node.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from comity.auth.models import ApiToken
from comity.clock import Clock
from comity.problems import Problem

__all__ = ["InvalidTokenError", "TokenCache", "check_token", "issue_token", "list_tokens",
           "revoke_token"]


class InvalidTokenError(Problem):
    slug = "unauthorized"
    status = 401
    title = "Missing or invalid API token"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, *, name: str, clock: Clock,
                expires_in: dt.timedelta | None = None) -> str:
    """Create a token (valid for ``expires_in``, or until revoked); returns its only copy."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(ApiToken(token_hash=_hash(token), name=name, created_at=now,
                         expires_at=None if expires_in is None else now + expires_in))
    return token


def check_token(session: Session, token: str | None, now: dt.datetime) -> ApiToken:
    """The token's record if it may be used at ``now``.

    Raises:
        InvalidTokenError: missing, unknown, expired or revoked.
    """
    if not token:
        raise InvalidTokenError("send `Authorization: Bearer <token>`")
    row = session.get(ApiToken, _hash(token))
    if row is None:
        raise InvalidTokenError("unknown API token")
    if row.revoked_at is not None:
        raise InvalidTokenError(f"API token {row.token_id} was revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise InvalidTokenError(f"API token {row.token_id} expired")
    return row


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.created_at)))


def revoke_token(session: Session, token_id: str, *, clock: Clock) -> ApiToken:
    """Revoke the token whose id (start of its hash) is ``token_id``.

    A running server may accept it for at most the token cache's time to
    live (30 s) afterwards.

    Raises:
        InvalidTokenError: no single token has that id.
    """
    rows = [r for r in list_tokens(session) if r.token_id == token_id]
    if len(rows) != 1:
        raise InvalidTokenError(f"no API token {token_id!r}")
    rows[0].revoked_at = rows[0].revoked_at or clock.now()
    return rows[0]


def cache_for(row: ApiToken, now: dt.datetime, ttl: float) -> float:
    """How long a just-checked token may be trusted without asking again."""
    if row.expires_at is None:
        return ttl
    return max(0.0, min(ttl, (row.expires_at - now).total_seconds()))


class TokenCache:
    """Remembers tokens found valid for ``ttl`` seconds (never invalid ones).

    The API checks a token on every call; this keeps that from costing a
    database transaction each time. ``ttl`` bounds how long a revoked token
    keeps working in a running server; an expiring token is never cached past
    its expiry.
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

    @property
    def ttl(self) -> float:
        return self._ttl

    def remember(self, token: str | None, for_seconds: float | None = None) -> None:
        """Record that ``token`` was just found valid (for ``ttl`` or less)."""
        if token:
            span = self._ttl if for_seconds is None else min(self._ttl, for_seconds)
            with self._lock:
                self._valid[_hash(token)] = self._clock() + span
