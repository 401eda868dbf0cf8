"""API tokens: stored as hashes; the validity cache forgets and never caches refusals."""

from __future__ import annotations

from sqlalchemy import select

from comity.auth.models import ApiToken
from comity.auth.services import TokenCache
from comity.db import session_scope
from tests.support import LocalFederation


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
