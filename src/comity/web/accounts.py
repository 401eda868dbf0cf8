"""Local accounts of the web UI: roles, argon2id passwords, sessions, the audit trail.

Roles separate duties: an officer drafts and answers requests, a supervisor
approves outgoing ones (never their own), an analyst works with shared
security information, a delegate votes in councils, an administrator manages
accounts and peers. No role implies another, the administrator's included.

Trust assumptions: whoever can write to the node's database or run ``comity``
on its host is an administrator. A session token is a bearer secret held in
an HttpOnly cookie; only its SHA-256 is stored. Sign-in failures say nothing
about whether the account exists, and cost the same time either way.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import re
import secrets
import threading
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from comity.clock import Clock
from comity.problems import Problem
from comity.web.models import AuditEntry, UiSession, UiUser

__all__ = [
    "LANGUAGES",
    "AccountError",
    "Actor",
    "AddressThrottle",
    "Role",
    "SignInError",
    "TooManyAttemptsError",
    "add_user",
    "audit",
    "end_session",
    "list_users",
    "open_session",
    "resume_session",
    "set_password",
    "sign_in",
    "touch_session",
    "update_user",
]

# The languages the UI speaks; the first is the default.
LANGUAGES = ("en", "fr", "zh")
SESSION_IDLE = dt.timedelta(hours=2)
SESSION_MAX = dt.timedelta(hours=12)
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
# Idle time is counted in minutes: a session's last use is written at most this often.
TOUCH_AFTER = dt.timedelta(minutes=1)
MIN_PASSWORD = 12

_USERNAME = re.compile(r"\A[a-z0-9][a-z0-9._-]{1,63}\Z")
_hasher = PasswordHasher()
# Verified against when the account does not exist, so that an unknown name
# takes as long to refuse as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class Role(enum.StrEnum):
    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    ANALYST = "analyst"
    DELEGATE = "delegate"
    ADMINISTRATOR = "administrator"


class AccountError(Problem):
    slug = "invalid-account"
    status = 422
    title = "Account not valid"


class SignInError(Problem):
    slug = "sign-in-failed"
    status = 401
    title = "Sign-in failed"


class TooManyAttemptsError(SignInError):
    slug = "sign-in-throttled"
    status = 429
    title = "Too many sign-in attempts"


class AddressThrottle:
    """Counts failed sign-ins per client address, and refuses an address that failed too often.

    The per-account lock stops guessing one account's password; this stops one
    address from guessing across many accounts (or locking them all out) at
    speed. It lives in the server process: several processes each keep their
    own count, which a reverse proxy's limit should back up.
    """

    def __init__(self, limit: int = 20, window: dt.timedelta = LOCKOUT,
                 max_addresses: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self._failures: dict[str, list[dt.datetime]] = {}
        self._lock = threading.Lock()

    def check(self, address: str, now: dt.datetime) -> None:
        """Raises:
            TooManyAttemptsError: ``address`` failed ``limit`` times within ``window``.
        """
        with self._lock:
            recent = [t for t in self._failures.get(address, ()) if now - t < self.window]
            if recent:
                self._failures[address] = recent
            else:
                self._failures.pop(address, None)
        if len(recent) >= self.limit:
            wait = int((recent[0] + self.window - now).total_seconds() // 60) + 1
            raise TooManyAttemptsError(f"too many failed sign-ins from your address; try "
                                       f"again in {wait} minute(s)")

    def failed(self, address: str, now: dt.datetime) -> None:
        with self._lock:
            if address not in self._failures and len(self._failures) >= self.max_addresses:
                # Bounded memory: forget the address seen longest ago.
                self._failures.pop(next(iter(self._failures)))
            self._failures.setdefault(address, []).append(now)


@dataclass(frozen=True)
class Actor:
    """The person behind a request: who they are, what they may do, how they read."""

    username: str
    display_name: str
    roles: frozenset[Role]
    language: str
    timezone: str
    csrf: str
    # The session's last recorded use is older than TOUCH_AFTER.
    idle: bool = False

    def has(self, *roles: Role) -> bool:
        """Whether the actor holds at least one of ``roles``."""
        return any(r in self.roles for r in roles)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_roles(names: list[str] | tuple[str, ...]) -> frozenset[Role]:
    """Role names as roles.

    Raises:
        AccountError: an unknown name.
    """
    out = set()
    for name in names:
        try:
            out.add(Role(name.strip().lower()))
        except ValueError:
            raise AccountError(f"unknown role {name!r}; the roles are: "
                               f"{', '.join(r.value for r in Role)}") from None
    return frozenset(out)


def _roles_text(roles: frozenset[Role]) -> str:
    return " ".join(r.value for r in Role if r in roles)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise AccountError("a password has at most 1024 characters")


def _check_preferences(language: str, timezone: str) -> None:
    if language not in LANGUAGES:
        raise AccountError(f"unknown language {language!r}; one of: {', '.join(LANGUAGES)}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise AccountError(f"unknown time zone {timezone!r}") from None


def add_user(session: Session, *, username: str, password: str, roles: frozenset[Role],
             clock: Clock, display_name: str = "", language: str = "en",
             timezone: str = "UTC") -> UiUser:
    """Create an account.

    Raises:
        AccountError: a malformed or taken name, a short password, an unknown
            language or time zone.
    """
    if not _USERNAME.match(username):
        raise AccountError("a username is 2 to 64 lowercase letters, digits, dots, dashes "
                           "or underscores, starting with a letter or digit")
    _check_password(password)
    _check_preferences(language, timezone)
    if session.get(UiUser, username) is not None:
        raise AccountError(f"there is already an account {username!r}")
    user = UiUser(username=username, display_name=display_name.strip()[:200] or username,
                  password_hash=_hasher.hash(password), roles=_roles_text(roles),
                  language=language, timezone=timezone, created_at=clock.now(),
                  disabled=False, failed_logins=0, locked_until=None)
    session.add(user)
    return user


def _get(session: Session, username: str) -> UiUser:
    user = session.get(UiUser, username, with_for_update=True)
    if user is None:
        raise AccountError(f"no account {username!r}")
    return user


def update_user(session: Session, username: str, *, roles: frozenset[Role] | None = None,
                disabled: bool | None = None, language: str | None = None,
                timezone: str | None = None, display_name: str | None = None) -> UiUser:
    """Change an account; disabling one also ends its sessions.

    Raises:
        AccountError: no such account, or an unknown language or time zone.
    """
    user = _get(session, username)
    _check_preferences(language or user.language, timezone or user.timezone)
    if roles is not None:
        user.roles = _roles_text(roles)
    if language is not None:
        user.language = language
    if timezone is not None:
        user.timezone = timezone
    if display_name is not None and display_name.strip():
        user.display_name = display_name.strip()[:200]
    if disabled is not None:
        user.disabled = disabled
        if disabled:
            session.execute(delete(UiSession).where(UiSession.username == username))
        else:
            user.failed_logins, user.locked_until = 0, None
    return user


def set_password(session: Session, username: str, password: str) -> UiUser:
    """Replace an account's password and end all its sessions.

    Raises:
        AccountError: no such account, or a short password.
    """
    _check_password(password)
    user = _get(session, username)
    user.password_hash = _hasher.hash(password)
    user.failed_logins, user.locked_until = 0, None
    session.execute(delete(UiSession).where(UiSession.username == username))
    return user


def list_users(session: Session) -> list[UiUser]:
    return list(session.scalars(select(UiUser).order_by(UiUser.username)))


def user_roles(user: UiUser) -> frozenset[Role]:
    return frozenset(Role(r) for r in user.roles.split())


def sign_in(session: Session, username: str, password: str, *, clock: Clock) -> UiUser:
    """Check a name and password, counting failures against the account.

    After :data:`MAX_FAILURES` failures in a row the account is locked for
    :data:`LOCKOUT`, so a password cannot be guessed online at speed.

    Raises:
        SignInError: with the same words whether the name, the password or
            the account's state was wrong, except for a lock, which its
            owner needs to know about.
    """
    now = clock.now()
    user = session.get(UiUser, username, with_for_update=True) if username else None
    try:
        _hasher.verify(user.password_hash if user is not None else _DUMMY_HASH, password)
        good = user is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        good = False
    if user is None:
        raise SignInError("wrong username or password")
    if user.locked_until is not None and user.locked_until > now:
        raise SignInError("too many failed attempts: this account is locked for a while; "
                          "an administrator can unlock it")
    if not good or user.disabled:
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
        raise SignInError("wrong username or password")
    user.failed_logins, user.locked_until = 0, None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def open_session(session: Session, user: UiUser, *, clock: Clock) -> str:
    """Start a session for ``user``; returns its token (the cookie's only copy)."""
    now = clock.now()
    token = secrets.token_urlsafe(32)
    session.execute(delete(UiSession).where(UiSession.expires_at < now))
    session.add(UiSession(token_hash=_hash_token(token), username=user.username,
                          csrf=secrets.token_urlsafe(32), created_at=now, last_seen=now,
                          expires_at=now + SESSION_MAX))
    return token


def resume_session(session: Session, token: str | None, *, clock: Clock) -> Actor | None:
    """The actor of a live session, or None (unknown, expired, idle too long, or disabled).

    Only reads: a page view must not take the database's write lock. Call
    :func:`touch_session` when :attr:`Actor.idle` says the session's last use
    is worth recording.
    """
    if not token or len(token) > 100:
        return None
    row = session.get(UiSession, _hash_token(token))
    if row is None:
        return None
    now = clock.now()
    if row.expires_at <= now or row.last_seen + SESSION_IDLE <= now:
        return None
    user = session.get(UiUser, row.username)
    if user is None or user.disabled:
        return None
    return Actor(username=user.username, display_name=user.display_name,
                 roles=user_roles(user), language=user.language, timezone=user.timezone,
                 csrf=row.csrf, idle=now - row.last_seen > TOUCH_AFTER)


def touch_session(session: Session, token: str, *, clock: Clock) -> None:
    """Record that the session of ``token`` was used now (its idle time restarts)."""
    row = session.get(UiSession, _hash_token(token), with_for_update=True)
    if row is not None:
        row.last_seen = max(row.last_seen, clock.now())


def end_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(UiSession).where(UiSession.token_hash == _hash_token(token)))


def audit(session: Session, *, at: dt.datetime, username: str, action: str, target: str = "",
          outcome: str = "done", detail: str = "", address: str = "") -> None:
    """Record one act (or refusal) in the audit trail, in the caller's transaction."""
    session.add(AuditEntry(at=at, username=username[:64], action=action[:64],
                           target=target[:200], outcome=outcome[:16], detail=detail[:4000],
                           address=address[:64]))
