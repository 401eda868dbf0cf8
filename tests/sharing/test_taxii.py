"""The TAXII 2.1 server as the local operator uses it: every endpoint, filter and error."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.sharing.support import (
    T0,
    TAXII,
    create_collection,
    envelope,
    indicator,
    local_headers,
    objects_url,
    post_local,
)
from tests.support import LocalFederation, PeerNode


@pytest.fixture
def node(fed: LocalFederation) -> PeerNode:
    return fed.add("fr")


def test_discovery_root_and_collections(fed: LocalFederation, node: PeerNode) -> None:
    c = create_collection(node)
    d = fed.http.get(f"{node.url}/taxii2/", headers=local_headers(node))
    assert d.status_code == 200
    assert d.headers["content-type"] == TAXII
    assert d.json()["api_roots"] == [f"{node.url}/taxii2/comity/"]
    root = fed.http.get(f"{node.url}/taxii2/comity/", headers=local_headers(node)).json()
    assert root["versions"] == [TAXII]
    assert root["max_content_length"] == node.node.settings.taxii_max_content_length
    cols = fed.http.get(f"{node.url}/taxii2/comity/collections/",
                        headers=local_headers(node)).json()["collections"]
    assert [(x["id"], x["alias"], x["can_read"], x["can_write"]) for x in cols] == [
        (c["id"], "indicators", True, True)]
    one = fed.http.get(f"{node.url}/taxii2/comity/collections/{c['id']}/",
                       headers=local_headers(node)).json()
    assert one["media_types"] == ["application/stix+json;version=2.1"]


def test_add_then_page_through_every_object_once(fed: LocalFederation, node: PeerNode) -> None:
    cid = create_collection(node)["id"]
    status = post_local(fed, node, cid, *(indicator(i) for i in range(25)))
    assert (status["status"], status["total_count"], status["success_count"]) == (
        "complete", 25, 25)
    again = fed.http.get(f"{node.url}/taxii2/comity/status/{status['id']}/",
                         headers=local_headers(node)).json()
    assert again == status
    seen: list[str] = []
    params: dict[str, str] = {"limit": "10"}
    while True:
        resp = fed.http.get(objects_url(node, cid), params=params, headers=local_headers(node))
        assert resp.status_code == 200
        page = resp.json()
        seen += [o["id"] for o in page["objects"]]
        assert resp.headers["X-TAXII-Date-Added-First"].endswith("Z")
        if not page["more"]:
            assert "next" not in page
            break
        params = {"limit": "10", "next": page["next"]}
    # 25 objects added in one request share one date_added: no tie loses one.
    assert seen == [indicator(i)["id"] for i in range(25)]


def test_versions_and_version_filters(fed: LocalFederation, node: PeerNode) -> None:
    cid = create_collection(node)["id"]
    oid = indicator(0)["id"]
    stamps = ["2026-11-01T00:00:00.000Z", "2026-11-02T00:00:00.5Z", "2026-11-03T00:00:00Z"]
    # Added out of order: latest/first follow the versions, not the order of adding.
    for m in (stamps[1], stamps[2], stamps[0]):
        post_local(fed, node, cid, indicator(0, modified=m))
    h = local_headers(node)

    def modified(**params: str) -> list[str]:
        resp = fed.http.get(objects_url(node, cid, f"objects/{oid}/"), params=params,
                            headers=h)
        assert resp.status_code == 200, resp.text
        return [o["modified"] for o in resp.json().get("objects", [])]

    assert modified() == [stamps[2]]
    assert modified(**{"match[version]": "first"}) == [stamps[0]]
    assert modified(**{"match[version]": "all"}) == [stamps[1], stamps[2], stamps[0]]
    assert modified(**{"match[version]": "first,last"}) == [stamps[2], stamps[0]]
    assert modified(**{"match[version]": "2026-11-02T00:00:00.500Z"}) == [stamps[1]]
    versions = fed.http.get(objects_url(node, cid, f"objects/{oid}/versions/"),
                            headers=h).json()
    assert versions["versions"] == [stamps[1], stamps[2], stamps[0]]
    manifest = fed.http.get(objects_url(node, cid, "manifest/"), headers=h).json()
    assert [(e["id"], e["version"]) for e in manifest["objects"]] == [(oid, stamps[2])]
    # Deleting the latest version makes the previous one the latest.
    resp = fed.http.delete(objects_url(node, cid, f"objects/{oid}/"),
                           params={"match[version]": stamps[2]}, headers=h)
    assert resp.status_code == 200
    assert modified() == [stamps[1]]
    fed.http.delete(objects_url(node, cid, f"objects/{oid}/"), headers=h)
    gone = fed.http.get(objects_url(node, cid, f"objects/{oid}/"), headers=h)
    assert gone.status_code == 404


def test_type_id_and_added_after_filters(fed: LocalFederation, node: PeerNode) -> None:
    cid = create_collection(node)["id"]
    h = local_headers(node)
    post_local(fed, node, cid, indicator(1), indicator(2))
    first = fed.http.get(objects_url(node, cid), headers=h)
    cut = first.headers["X-TAXII-Date-Added-Last"]
    fed.clock.advance(1)
    malware = {"type": "malware", "spec_version": "2.1",
               "id": "malware--00000000-0000-4000-8000-000000000009",
               "created": "2026-11-01T00:00:00Z", "modified": "2026-11-01T00:00:00Z",
               "name": "Loader", "is_family": True}
    post_local(fed, node, cid, malware)

    def ids(**params: str) -> list[str]:
        return [o["id"] for o in fed.http.get(objects_url(node, cid), params=params,
                                              headers=h).json().get("objects", [])]

    assert ids(**{"match[type]": "malware"}) == [malware["id"]]
    assert ids(**{"match[type]": "indicator,malware"}) == [
        indicator(1)["id"], indicator(2)["id"], malware["id"]]
    assert ids(**{"match[id]": indicator(2)["id"]}) == [indicator(2)["id"]]
    assert ids(added_after=cut) == [malware["id"]]
    assert ids(**{"match[spec_version]": "2.0"}) == []
    empty = fed.http.get(objects_url(node, cid), params={"match[type]": "report"}, headers=h)
    assert empty.json() == {"more": False}
    assert "X-TAXII-Date-Added-First" not in empty.headers


def test_bad_objects_fail_alone(fed: LocalFederation, node: PeerNode) -> None:
    cid = create_collection(node)["id"]
    bad = indicator(5)
    bad["modified"] = "2020-01-01T00:00:00Z"  # before created
    status = post_local(fed, node, cid, indicator(4), bad, {"type": "indicator"},
                        indicator(4))
    assert (status["total_count"], status["success_count"], status["failure_count"]) == (
        4, 2, 2)
    assert [s.get("message") for s in status["successes"]] == [None, "already added"]
    assert "modified" in status["failures"][0]["message"]
    changed = indicator(4)
    changed["name"] = "different content, same version"
    status = post_local(fed, node, cid, changed)
    assert status["failure_count"] == 1
    assert "another object" in status["failures"][0]["message"]


def test_versions_of_one_id_in_one_add(fed: LocalFederation, node: PeerNode) -> None:
    """Versions, a duplicate and a clash of one id within a single envelope."""
    cid = create_collection(node)["id"]
    oid = indicator(0)["id"]
    v1, v2, v3 = "2026-11-01T12:00:00Z", "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z"
    clash = indicator(0, modified=v1)
    clash["name"] = "different content, same version"
    status = post_local(fed, node, cid, indicator(0, modified=v2), indicator(0, modified=v1),
                        indicator(0, modified=v2), indicator(0, modified=v3), clash)
    assert [(s["version"], s.get("message")) for s in status["successes"]] == [
        (v2, None), (v1, None), (v2, "already added"), (v3, None)]
    assert [(f["version"], f["message"]) for f in status["failures"]] == [
        (v1, "another object with this id and version is held")]
    h = local_headers(node)

    def modified(**params: str) -> list[str]:
        resp = fed.http.get(objects_url(node, cid, f"objects/{oid}/"), params=params,
                            headers=h)
        assert resp.status_code == 200, resp.text
        return [o["modified"] for o in resp.json()["objects"]]

    assert modified(**{"match[version]": "all"}) == [v2, v1, v3]
    assert modified() == [v3]
    assert modified(**{"match[version]": "first"}) == [v1]
    # A later add of an older version moves "first", not "last".
    assert post_local(fed, node, cid, indicator(0, modified=T0))["success_count"] == 1
    assert modified(**{"match[version]": "first"}) == [T0]
    assert modified() == [v3]


@pytest.mark.parametrize(("method", "headers", "status", "slug"), [
    ("GET", {"accept": "application/json"}, 406, "taxii-not-acceptable"),
    ("POST", {"content-type": "application/json"}, 415, "taxii-unsupported-media-type"),
    ("GET", {"authorization": ""}, 401, "taxii-unauthorized"),
    ("GET", {"authorization": "Bearer not-a-token"}, 401, "taxii-unauthorized"),
])
def test_media_types_and_authentication(fed: LocalFederation, node: PeerNode, method: str,
                                        headers: dict[str, str], status: int,
                                        slug: str) -> None:
    cid = create_collection(node)["id"]
    h = {**local_headers(node, **{"content-type": TAXII}), **headers}
    resp = fed.http.request(method, objects_url(node, cid), headers=h,
                            json=envelope(indicator(1)) if method == "POST" else None)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == TAXII
    assert resp.json()["error_code"] == slug
    assert resp.json()["http_status"] == str(status)
    if status == 401:
        assert "Bearer" in resp.headers["WWW-Authenticate"]
    listed = fed.http.get(objects_url(node, cid), headers=local_headers(node)).json()
    assert listed == {"more": False}


def test_paging_errors(fed: LocalFederation, node: PeerNode) -> None:
    cid = create_collection(node)["id"]
    other = create_collection(node, "other")["id"]
    h = local_headers(node)
    post_local(fed, node, cid, *(indicator(i) for i in range(3)))
    page = fed.http.get(objects_url(node, cid), params={"limit": "1"}, headers=h).json()
    token = page["next"]

    def status_of(url: str, **params: str) -> tuple[int, str]:
        r = fed.http.get(url, params=params, headers=h)
        return r.status_code, r.json().get("error_code", "")

    assert status_of(objects_url(node, cid), next=token, **{"match[type]": "malware"}) == (
        400, "taxii-bad-request")
    assert status_of(objects_url(node, other), next=token) == (400, "taxii-bad-request")
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert status_of(objects_url(node, cid), next=forged) == (400, "taxii-bad-request")
    assert status_of(objects_url(node, cid), limit="0") == (400, "taxii-bad-request")
    assert status_of(objects_url(node, cid), **{"match[color]": "x"}) == (
        400, "taxii-bad-request")
    assert status_of(objects_url(node, cid), added_after="yesterday") == (
        400, "taxii-bad-request")
    missing = f"{node.url}/taxii2/comity/collections/00000000-0000-4000-8000-000000000000/"
    assert status_of(missing)[0] == 404
    assert status_of(f"{node.url}/taxii2/other/")[0] == 404


def test_malformed_and_oversized_bodies(fed: LocalFederation) -> None:
    node = fed.add("fr", taxii_max_content_length=64 << 10)
    cid = create_collection(node)["id"]
    h = local_headers(node, **{"content-type": TAXII})
    bad = fed.http.post(objects_url(node, cid), content=b"{not json", headers=h)
    assert bad.status_code == 422
    assert bad.json()["error_code"] == "taxii-unprocessable"
    no_objects = fed.http.post(objects_url(node, cid), json={"objects": "x"}, headers=h)
    assert no_objects.status_code == 422
    big = fed.http.post(objects_url(node, cid), json=envelope(
        *(indicator(i) for i in range(400))), headers=h)
    assert big.status_code == 413
    listed = fed.http.get(objects_url(node, cid), headers=local_headers(node)).json()
    assert listed == {"more": False}


def test_statuses_are_kept_and_private(fed: LocalFederation, node: PeerNode) -> None:
    cid = create_collection(node)["id"]
    status = post_local(fed, node, cid, indicator(1))
    url = f"{node.url}/taxii2/comity/status/{status['id']}/"
    fed.clock.advance(dt.timedelta(days=6).total_seconds())
    post_local(fed, node, cid, indicator(2))  # purges statuses past retention
    assert fed.http.get(url, headers=local_headers(node)).status_code == 200
    fed.clock.advance(dt.timedelta(days=2).total_seconds())
    post_local(fed, node, cid, indicator(3))
    assert fed.http.get(url, headers=local_headers(node)).status_code == 404


def test_arrival_time_is_read_under_the_collection_lock(fed: LocalFederation,
                                                         node: PeerNode) -> None:
    """date_added grows in commit order: it is read after the collection's row lock.

    A time read before the lock could be older than that of a writer that
    got the lock first and committed; a client polling with added_after
    the last page's X-TAXII-Date-Added-Last would then never see the objects.
    """
    from sqlalchemy import event, select

    from comity.sharing.models import StixObject
    from comity.sharing.policy import Requester

    cid = create_collection(node)["id"]
    sharing = node.node.sharing
    events: list[tuple[str, object]] = []

    class Ticking:
        """Every reading a microsecond later, each one noted where it happened."""

        def __init__(self) -> None:
            self.at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)

        def now(self) -> dt.datetime:
            self.at += dt.timedelta(microseconds=1)
            events.append(("clock", self.at))
            return self.at

    def statement(_conn: object, _cursor: object, sql: str, *_rest: object) -> None:
        if sql.lstrip().upper().startswith("UPDATE SHARING_COLLECTIONS"):
            events.append(("lock", sql))

    engine = node.node.engine
    real = sharing.clock
    sharing.clock = Ticking()
    event.listen(engine, "before_cursor_execute", statement)
    try:
        sharing.add_objects(cid, [indicator(1)], Requester(None))
        sharing.delete_object(cid, indicator(1)["id"], Requester(None), ("all",))
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        sharing.clock = real
    with node.node.sessions() as session:
        added = list(session.execute(select(StixObject.kind, StixObject.date_added)
                                     .where(StixObject.collection_id == cid)
                                     .order_by(StixObject.seq)))
    assert [kind for kind, _ in added] == ["object", "delete"]
    locks = [i for i, (what, _) in enumerate(events) if what == "lock"]
    reads = [events.index(("clock", at)) for _, at in added]
    assert len(locks) == 2
    # Each write's arrival time was read after its own lock, before the next write's.
    assert locks[0] < reads[0] < locks[1] < reads[1]


def test_an_export_is_one_snapshot_while_the_collection_changes(fed: LocalFederation,
                                                                 node: PeerNode) -> None:
    """Objects changed during an export appear in it once each, as they were at its start."""
    import orjson

    from comity.sharing.policy import Requester
    from comity.sharing.services import export_objects

    cid = create_collection(node)["id"]
    post_local(fed, node, cid, *(indicator(n) for n in range(6)))
    stream = export_objects(node.node.sharing, cid, Requester(None), page_size=2)
    first = [orjson.loads(next(stream)) for _ in range(2)]
    # Meanwhile: a new version of an object already exported, one object
    # deleted before the export reaches it, and a new object.
    post_local(fed, node, cid, indicator(int(first[0]["name"].split()[-1]),
                                         modified="2026-11-02T00:00:00.000Z"), indicator(9))
    gone = next(indicator(n)["id"] for n in range(6)
                if indicator(n)["id"] not in {o["id"] for o in first})
    node.node.sharing.delete_object(cid, gone, Requester(None), ("all",))
    rest = [orjson.loads(b) for b in stream]
    exported = first + rest
    assert sorted(o["id"] for o in exported) == sorted(indicator(n)["id"] for n in range(6))
    assert {o["modified"] for o in exported} == {T0}
