"""API tokens: stored as hashes; the validity cache forgets and never caches refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from comity.auth.models import ApiToken
from comity.auth.services import (
    InvalidTokenError,
    TokenCache,
    cache_for,
    issue_token,
    list_tokens,
    revoke_token,
)
from comity.db import session_scope
from tests.support import LocalFederation, PeerNode


def test_cache_expires_and_ignores_missing_tokens() -> None:
    now = [100.0]
    cache = TokenCache(ttl=30, clock=lambda: now[0])
    assert not cache.known("t")
    cache.remember("t")
    assert cache.known("t")
    assert not cache.known("other")
    now[0] += 31
    assert not cache.known("t")
    cache.remember(None)
    assert not cache.known(None)
    assert not cache.known("")


def test_tokens_are_stored_only_as_hashes(fed: LocalFederation) -> None:
    a = fed.add("a")
    with session_scope(a.node.sessions) as s:
        hashes = list(s.scalars(select(ApiToken.token_hash)))
    assert a.token not in hashes
    assert all(len(h) == 64 for h in hashes)
    # A refused token is refused again: nothing about it was remembered.
    for _ in range(2):
        resp = a.client.get("/api/peers", headers={"authorization": "Bearer nope"})
        assert resp.status_code == 401
    assert a.client.get("/api/peers", headers={"authorization": f"Bearer {a.token}"}
                        ).status_code == 200


def _status(node: PeerNode, token: str) -> tuple[int, int]:
    """(REST API, TAXII) status codes for a request with ``token``."""
    api = node.client.get("/api/peers", headers={"authorization": f"Bearer {token}"})
    taxii = node.client.get("/taxii2/", headers={
        "authorization": f"Bearer {token}", "accept": "application/taxii+json;version=2.1"})
    return api.status_code, taxii.status_code


def test_tokens_expire_everywhere(fed: LocalFederation) -> None:
    a = fed.add("a")
    with session_scope(a.node.sessions) as s:
        token = issue_token(s, name="analyst", clock=fed.clock,
                            expires_in=dt.timedelta(hours=1))
    assert _status(a, token) == (200, 200)
    fed.clock.advance(3601)
    # The cache keeps a token at most until its expiry (test_cache_time_is_capped_
    # by_expiry); the test clock moves only the wall clock, so start a fresh cache
    # as the passing hour would have emptied it.
    a.client.app.state.tokens = TokenCache()
    assert _status(a, token) == (401, 401)
    resp = a.client.get("/api/peers", headers={"authorization": f"Bearer {token}"})
    assert "expired" in resp.json()["detail"]


def test_cache_time_is_capped_by_expiry() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    row = ApiToken(token_hash="x" * 64, name="n", created_at=now,
                   expires_at=now + dt.timedelta(seconds=5))
    assert cache_for(row, now, 30.0) == 5.0
    row.expires_at = None
    assert cache_for(row, now, 30.0) == 30.0


def test_revoked_tokens_are_refused(fed: LocalFederation) -> None:
    a = fed.add("a")
    with session_scope(a.node.sessions) as s:
        token = issue_token(s, name="contractor", clock=fed.clock)
    with session_scope(a.node.sessions) as s:
        rows = {r.name: r.token_id for r in list_tokens(s)}
        revoke_token(s, rows["contractor"], clock=fed.clock)
    assert _status(a, token) == (401, 401)
    assert _status(a, a.token) == (200, 200)
    with session_scope(a.node.sessions) as s, pytest.raises(InvalidTokenError):
        revoke_token(s, "nosuchtoken", clock=fed.clock)
