"""TLP at the TAXII exit: for every level and every kind of requester, nothing leaks and
nothing is wrongly withheld. Peers authenticate with HTTP message signatures."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from comity.agreements.schemas import TLP
from comity.sharing.policy import Requester
from comity.sharing.services import export_objects
from tests.sharing.support import (
    TAXII,
    create_collection,
    envelope,
    indicator,
    objects_url,
    peer,
    post_local,
)
from tests.support import LocalFederation, PeerNode

LEVELS = [TLP.CLEAR, TLP.GREEN, TLP.AMBER, TLP.AMBER_STRICT, TLP.RED]


def scope(ceiling: str = "red") -> dict[str, Any]:
    return {"collections": [{"name": "indicators", "tlp_ceiling": ceiling}],
            "languages": ["en"]}


class World:
    """FR holds the collection; KE and UG share it under A, CN under B; DZ has nothing."""

    def __init__(self, fed: LocalFederation, ceiling_b: str = "red") -> None:
        self.fed = fed
        self.fr, self.ke, self.ug, self.cn, self.dz = (
            fed.add(n) for n in ("fr", "ke", "ug", "cn", "dz"))
        fed.introduce_all()
        self.a = fed.agree(self.fr, [self.ke, self.ug], scope=scope())
        self.b = fed.agree(self.fr, [self.cn], scope=scope(ceiling_b))
        self.cid = create_collection(self.fr, peers_can_write=True)["id"]
        self.own: dict[str, str] = {}  # label -> object id

    def publish_own(self) -> None:
        for n, level in enumerate(LEVELS, start=1):
            obj = indicator(n, tlp=level)
            rcpt = (self.ke.id,) if level is TLP.RED else ()
            post_local(self.fed, self.fr, self.cid, obj, recipients=rcpt)
            self.own[level.value] = obj["id"]
        unmarked = indicator(50)
        post_local(self.fed, self.fr, self.cid, unmarked)
        self.own["unmarked"] = unmarked["id"]
        red_nobody = indicator(51, tlp=TLP.RED)
        post_local(self.fed, self.fr, self.cid, red_nobody)
        self.own["red-nobody"] = red_nobody["id"]

    def read(self, who: PeerNode) -> set[str]:
        resp = peer(self.fed, who).get(objects_url(self.fr, self.cid), limit=1000)
        if resp.status_code == 404:
            return set()
        assert resp.status_code == 200, resp.text
        return {o["id"] for o in resp.json().get("objects", [])}


@pytest.fixture
def world(fed: LocalFederation) -> World:
    w = World(fed)
    w.publish_own()
    return w


def labels(world: World, ids: set[str]) -> set[str]:
    back = {v: k for k, v in world.own.items()}
    return {back.get(i, i) for i in ids}


def test_our_objects_reach_exactly_whom_their_level_allows(world: World) -> None:
    every = {"clear", "green", "amber", "amber+strict", "unmarked"}
    assert labels(world, world.read(world.ke)) == every | {"red"}  # the named recipient
    assert labels(world, world.read(world.ug)) == every
    assert labels(world, world.read(world.cn)) == every
    assert world.read(world.dz) == set()  # no agreement: not even the collection
    cols = peer(world.fed, world.dz).get(f"{world.fr.url}/taxii2/comity/collections/")
    assert cols.json() == {}
    for who in (world.ke, world.ug, world.cn, world.dz):
        # The manifest and every single-object read follow the same rule.
        m = peer(world.fed, who).get(objects_url(world.fr, world.cid, "manifest/"))
        listed = {e["id"] for e in m.json().get("objects", [])} if m.status_code == 200 else set()
        assert listed == world.read(who)
        red = peer(world.fed, who).get(
            objects_url(world.fr, world.cid, f"objects/{world.own['red']}/"))
        assert red.status_code == (200 if who is world.ke else 404)


def test_received_objects_are_never_reshared_beyond_their_level(world: World) -> None:
    # KE writes into FR's collection under agreement A: FR holds them as received.
    theirs = {level.value: indicator(100 + i, tlp=level) for i, level in enumerate(LEVELS)}
    status = peer(world.fed, world.ke).post(objects_url(world.fr, world.cid),
                                            envelope(*theirs.values()))
    assert status.status_code == 202, status.text
    assert status.json()["success_count"] == 5
    ids = {k: v["id"] for k, v in theirs.items()}
    # KE gets back all it wrote; UG (A's community) its GREEN too; CN (not in A) only CLEAR.
    assert set(ids.values()) <= world.read(world.ke)
    assert world.read(world.ug) & set(ids.values()) == {ids["clear"], ids["green"]}
    assert world.read(world.cn) & set(ids.values()) == {ids["clear"]}
    assert world.read(world.dz) == set()
    # The same decisions at the export exit.
    for who in (world.ke, world.ug, world.cn):
        exported = {orjson.loads(b)["id"] for b in export_objects(
            world.fr.node.sharing, world.cid, Requester(who.id))}
        assert exported == world.read(who)


def test_the_agreements_ceiling_caps_reads_and_writes(fed: LocalFederation) -> None:
    w = World(fed, ceiling_b="green")
    w.publish_own()
    assert labels(w, w.read(w.cn)) == {"clear", "green"}
    above = indicator(300, tlp=TLP.AMBER)
    status = peer(fed, w.cn).post(objects_url(w.fr, w.cid), envelope(above, indicator(301)))
    body = status.json()
    # The unmarked object counts as the default level (AMBER), above GREEN too.
    assert (body["success_count"], body["failure_count"]) == (0, 2)
    assert "ceiling" in body["failures"][0]["message"]


def test_a_suspended_agreement_closes_the_collection(world: World) -> None:
    world.fr.api("POST", f"/api/agreements/{world.b}/suspend", json={"reason": "review"})
    world.fed.pump()
    assert world.read(world.cn) == set()
    assert world.read(world.ke) != set()


def test_peer_signatures_are_checked(world: World) -> None:
    url = objects_url(world.fr, world.cid)
    client = peer(world.fed, world.ke)
    ok = client.get(url)
    assert ok.status_code == 200
    http = world.fed.http

    def refused(resp: Any) -> None:
        assert resp.status_code == 401, resp.text
        assert resp.json()["error_code"] == "taxii-unauthorized"
        assert "objects" not in resp.json()

    refused(http.get(url, headers={"accept": TAXII}))
    signed = client.request("GET", url)  # a valid request to copy headers from
    headers = dict(signed.request.headers)
    # Replayed against another URL, or with the key id of another node.
    refused(http.get(url + "?limit=1", headers=headers))
    forged = {**headers, "signature-input": headers["signature-input"].replace(
        world.ke.id, world.cn.id)}
    refused(http.get(url, headers=forged))
    # Too old.
    world.fed.clock.advance(3600)
    refused(http.get(url, headers=headers))
    # A node this one does not know (its card was never imported).
    stranger = world.fed.add("zz")
    refused(peer(world.fed, stranger).get(url))


def test_a_peer_without_write_access_is_refused(fed: LocalFederation) -> None:
    w = World(fed)
    ro = create_collection(w.fr, "readonly")
    resp = peer(fed, w.ke).post(objects_url(w.fr, ro["id"]), envelope(indicator(1)))
    # Not shared under any agreement: not even visible.
    assert resp.status_code == 404
    resp = peer(fed, w.ke).post(objects_url(w.fr, w.cid), envelope(indicator(1)))
    assert resp.status_code == 202


def test_a_shared_collection_that_takes_no_writes_answers_403(fed: LocalFederation) -> None:
    fr, ke = fed.add("fr"), fed.add("ke")
    fed.introduce(fr, ke)
    fed.agree(fr, [ke], scope=scope())
    cid = create_collection(fr)["id"]  # peers may read, not write
    listed = peer(fed, ke).get(f"{fr.url}/taxii2/comity/collections/{cid}/").json()
    assert (listed["can_read"], listed["can_write"]) == (True, False)
    resp = peer(fed, ke).post(objects_url(fr, cid), envelope(indicator(1)))
    assert resp.status_code == 403
    assert resp.json()["error_code"] == "taxii-forbidden"
    target = objects_url(fr, cid, f"objects/{indicator(1)['id']}/")
    deleted = peer(fed, ke).request("DELETE", target)
    assert deleted.status_code == 403
    with fr.node.sessions() as session:
        assert fr.node.sharing.stats(session)["objects"] == 0
