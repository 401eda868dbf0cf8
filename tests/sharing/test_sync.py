"""Syncing a partner's collection: incremental, signed, idempotent, TLP-respecting."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from comity.agreements.schemas import TLP
from comity.db import read_scope
from comity.sharing.models import SharingProvenance, StixObject
from comity.sharing.policy import Requester
from comity.sharing.services import export_objects
from comity.sharing.sync import SyncError, sync_peer
from tests.sharing.support import (
    create_collection,
    indicator,
    local_headers,
    objects_url,
    peer,
    post_local,
)
from tests.support import LocalFederation, PeerNode

SCOPE = {"collections": [{"name": "indicators", "tlp_ceiling": "red"}], "languages": ["en"]}


def held(node: PeerNode, cid: str) -> dict[str, dict[str, Any]]:
    """Latest version of every object the node holds, by id (as its operator sees it)."""
    return {o["id"]: o for o in (orjson.loads(b) for b in export_objects(
        node.node.sharing, cid, Requester(None)))}


def local_collection(node: PeerNode) -> str:
    return str(node.api("GET", "/api/sharing/collections")[0]["id"])


@pytest.fixture
def pair(fed: LocalFederation) -> tuple[PeerNode, PeerNode, str]:
    fr, ke = fed.add("fr"), fed.add("ke")
    fed.introduce(fr, ke)
    fed.agree(fr, [ke], scope=SCOPE)
    cid = create_collection(fr)["id"]
    return fr, ke, cid


def test_sync_pulls_what_the_partner_may_have_once(fed: LocalFederation,
                                                   pair: tuple[PeerNode, PeerNode, str]
                                                   ) -> None:
    fr, ke, cid = pair
    objs = {lvl: indicator(i, tlp=lvl) for i, lvl in enumerate(TLP)}
    for obj in objs.values():
        post_local(fed, fr, cid, obj)  # RED with no named recipient: stays home
    [summary] = sync_peer(ke.node, fr.id, fed.http)
    assert (summary.added, summary.already_held, summary.deleted) == (4, 0, 0)
    got = held(ke, summary.local)
    assert set(got) == {objs[lvl]["id"] for lvl in TLP if lvl is not TLP.RED}
    # Stored as received from FR, with FR's signed answers kept as provenance.
    with read_scope(ke.node.sessions) as session:
        origins = set(session.scalars(select(StixObject.origin).where(
            StixObject.collection_id == summary.local)))
        kept = session.scalar(select(func.count()).select_from(SharingProvenance))
    assert origins == {fr.id}
    assert kept is not None
    assert kept >= 3
    # A second round finds nothing new and changes nothing.
    [again] = sync_peer(ke.node, fr.id, fed.http)
    assert (again.added, again.already_held, again.deleted) == (0, 0, 0)
    assert held(ke, summary.local) == got


def test_new_versions_revocations_and_deletions_propagate(
        fed: LocalFederation, pair: tuple[PeerNode, PeerNode, str]) -> None:
    fr, ke, cid = pair
    a, b = indicator(1, tlp=TLP.GREEN), indicator(2, tlp=TLP.GREEN)
    post_local(fed, fr, cid, a, b)
    [first] = sync_peer(ke.node, fr.id, fed.http)
    revoked = indicator(1, tlp=TLP.GREEN, modified="2026-11-05T00:00:00.000Z", revoked=True)
    post_local(fed, fr, cid, revoked)
    resp = fed.http.delete(objects_url(fr, cid, f"objects/{b['id']}/"),
                           headers=local_headers(fr))
    assert resp.status_code == 200
    [second] = sync_peer(ke.node, fr.id, fed.http)
    assert (second.added, second.deleted) == (1, 1)
    got = held(ke, first.local)
    assert set(got) == {a["id"]}
    assert got[a["id"]]["revoked"] is True


def test_nothing_is_stored_from_an_answer_that_is_not_signed(
        fed: LocalFederation, pair: tuple[PeerNode, PeerNode, str]) -> None:
    fr, ke, cid = pair
    post_local(fed, fr, cid, indicator(1, tlp=TLP.CLEAR))

    class Tamper(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            resp = fed.router.handle_request(request)
            if "/objects/" in request.url.path:
                body = resp.read().replace(b"C2 server", b"C2 SERVER")
                return httpx.Response(resp.status_code, headers=resp.headers, content=body)
            return resp

    with httpx.Client(transport=Tamper()) as http, pytest.raises(SyncError, match="not signed"):
        sync_peer(ke.node, fr.id, http)
    assert held(ke, local_collection(ke)) == {}


def test_received_amber_is_not_reshared(fed: LocalFederation,
                                        pair: tuple[PeerNode, PeerNode, str]) -> None:
    fr, ke, cid = pair
    cn = fed.add("cn")
    fed.introduce(ke, cn)
    fed.agree(ke, [cn], scope=SCOPE)
    objs = {lvl: indicator(i, tlp=lvl) for i, lvl in enumerate(
        [TLP.CLEAR, TLP.GREEN, TLP.AMBER, TLP.AMBER_STRICT])}
    for obj in objs.values():
        post_local(fed, fr, cid, obj)
    [s] = sync_peer(ke.node, fr.id, fed.http)
    assert s.added == 4
    # CN reads KE's collection: only what FR marked CLEAR (GREEN's community is
    # FR–KE's agreement, which CN is not a party to).
    resp = peer(fed, cn).get(objects_url(ke, s.local))
    assert {o["id"] for o in resp.json().get("objects", [])} == {objs[TLP.CLEAR]["id"]}
