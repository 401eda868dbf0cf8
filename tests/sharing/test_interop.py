"""Interoperability: the ecosystem's own tools against a real node server process.

taxii2-client 2.3.0 (OASIS, built on ``requests``) is the TAXII client, stix2
3.0.2 builds and parses the objects, and stix2-validator 3.3.2 judges every
bundle the node emits, over TAXII and from ``comity sharing export``. One
``comity node serve`` process (SQLite) on loopback serves the whole module; it
is stopped even when a test or the start fails.

Every HTTP call is bounded: taxii2-client has no timeout option, so its
``requests`` sessions get an adapter with a default timeout, and pytest-timeout
bounds each test.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
import pytest
import requests.adapters
import requests.auth
import stix2
from stix2validator import ValidationOptions, validate_instance, validate_string
from taxii2client.common import TokenAuth
from taxii2client.v21 import ApiRoot, Collection, Server, Status, as_pages

from comity.agreements.schemas import TLP
from comity.localnet import LocalNode, free_port
from comity.sharing.stix import marking_definition

pytestmark = pytest.mark.timeout(180)

TAXII = "application/taxii+json;version=2.1"
STIX = "application/stix+json;version=2.1"
HTTP_TIMEOUT = 30.0
T1 = "2026-01-01T00:00:00.000Z"
T2 = "2026-01-02T00:00:00.000Z"
AMBER_STRICT = marking_definition(TLP.AMBER_STRICT)
# The TLP 2.0 id (cti-stix-common-objects), written out: a typo in stix.py must not pass.
AMBER_STRICT_ID = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"

E = TypeVar("E", Server, ApiRoot, Collection)


class _Bearer(requests.auth.AuthBase):
    """``Authorization: Bearer``: taxii2-client's own TokenAuth sends ``Token``."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


class _BoundedAdapter(requests.adapters.HTTPAdapter):
    """Gives every request without a timeout ``HTTP_TIMEOUT`` seconds."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = HTTP_TIMEOUT
        return super().send(request, **kwargs)


def _bounded(endpoint: E) -> E:
    # taxii2-client 2.3.0 has no timeout parameter; its connection object (shared
    # by an ApiRoot and the collections it lists) holds a requests.Session.
    session: requests.Session = endpoint._conn.session
    session.trust_env = False
    for prefix in ("http://", "https://"):
        session.mount(prefix, _BoundedAdapter())
    return endpoint


def _ids(envelope: dict[str, Any]) -> list[str]:
    return [o["id"] for o in envelope.get("objects", [])]


def _http_error_status(call: Any, *args: Any, **kwargs: Any) -> int:
    with pytest.raises(requests.HTTPError) as info:
        call(*args, **kwargs)
    assert info.value.response is not None
    return int(info.value.response.status_code)


# -- one server for the module ---------------------------------------------------------------

@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    # comity.localnet.spawn, step by step: spawn loses the process handle if the
    # server starts but never turns healthy, and this fixture must stop it then too.
    root = tmp_path_factory.mktemp("interop")
    local = LocalNode(key="cert", data_dir=root / "cert", url=f"http://127.0.0.1:{free_port()}")
    local.init(name="Node cert", kind="cert", jurisdiction="FR", languages=["en"])
    try:
        local.start()
        yield local
    finally:
        local.close()


@pytest.fixture(scope="module")
def http(node: LocalNode) -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=HTTP_TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def created(node: LocalNode) -> dict[str, Any]:
    return dict(node.api("POST", "/api/sharing/collections",
                         json={"name": "indicators", "title": "Indicators"}))


@pytest.fixture(scope="module")
def server(node: LocalNode) -> Iterator[Server]:
    s = _bounded(Server(node.url + "/taxii2/", auth=_Bearer(node.token)))
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def api_root(server: Server, created: dict[str, Any]) -> Iterator[ApiRoot]:
    root = _bounded(server.api_roots[0])
    try:
        yield root
    finally:
        root.close()


def _collection(api_root: ApiRoot, collection_id: str) -> Collection:
    api_root.refresh_collections()
    [found] = [c for c in api_root.collections if c.id == collection_id]
    return found


@pytest.fixture(scope="module")
def collection(api_root: ApiRoot, created: dict[str, Any]) -> Collection:
    return _collection(api_root, created["id"])


def _stix_objects() -> list[dict[str, Any]]:
    """A small TLP:AMBER+STRICT report, built and serialised by stix2 (canonical order)."""
    marked = {"object_marking_refs": [AMBER_STRICT["id"]]}
    ident = stix2.Identity(name="CERT-FR", identity_class="organization", created=T1,
                           modified=T1)
    by = {"created_by_ref": ident.id, "created": T1, "modified": T1, **marked}
    ind = stix2.Indicator(name="C2 server", pattern="[ipv4-addr:value = '198.51.100.7']",
                          pattern_type="stix", valid_from=T1, **by)
    mal = stix2.Malware(name="Loader", is_family=True, **by)
    rel = stix2.Relationship(ind, "indicates", mal, **by)
    ip = stix2.IPv4Address(value="198.51.100.7", **marked)
    rep = stix2.Report(name="Loader C2", published=T1,
                       object_refs=[ind.id, mal.id, rel.id, ip.id], **by)
    return [AMBER_STRICT, *(json.loads(o.serialize()) for o in (ident, ind, mal, rel, ip, rep))]


@pytest.fixture(scope="module")
def loaded(collection: Collection) -> tuple[Status, list[dict[str, Any]]]:
    objects = _stix_objects()
    status = collection.add_objects({"objects": objects}, poll_interval=1, timeout=10)
    return status, objects


def _by_type(objects: list[dict[str, Any]], type_: str) -> dict[str, Any]:
    [obj] = [o for o in objects if o["type"] == type_]
    return obj


# -- 1. discovery ----------------------------------------------------------------------------

def test_discovery_api_root_and_collections(node: LocalNode, server: Server, api_root: ApiRoot,
                                            created: dict[str, Any]) -> None:
    assert server.title
    assert [r.url for r in server.api_roots] == [created["api_root"]]
    assert server.default is server.api_roots[0]
    assert created["api_root"] == f"{node.url}/taxii2/comity/"
    assert api_root.title
    assert api_root.versions == [TAXII]
    assert isinstance(api_root.max_content_length, int)
    assert api_root.max_content_length > 0
    c = _collection(api_root, created["id"])
    assert c.url == created["taxii_url"]
    assert (c.title, c.alias, c.can_read, c.can_write) == ("Indicators", "indicators", True,
                                                           True)
    assert c.media_types == [STIX]
    # The collection endpoint itself, loaded lazily by a stand-alone Collection.
    with _bounded(Collection(created["taxii_url"], auth=_Bearer(node.token))) as alone:
        assert (alone.id, alone.title, alone.can_read, alone.can_write) == (
            created["id"], "Indicators", True, True)


# -- 2. objects in, objects out ----------------------------------------------------------------

def test_add_objects_completes_with_every_success(
        loaded: tuple[Status, list[dict[str, Any]]]) -> None:
    status, objects = loaded
    assert status.status == "complete"
    assert bool(status)
    assert (status.total_count, status.success_count, status.failure_count,
            status.pending_count) == (len(objects), len(objects), 0, 0)
    assert [s["id"] for s in status.successes] == [o["id"] for o in objects]
    indicator = _by_type(objects, "indicator")
    assert {s["id"]: s.get("version") for s in status.successes}[indicator["id"]] == T1
    assert AMBER_STRICT["id"] == AMBER_STRICT_ID
    assert indicator["object_marking_refs"] == [AMBER_STRICT_ID]


def test_get_objects_object_manifest_and_versions(
        collection: Collection, loaded: tuple[Status, list[dict[str, Any]]]) -> None:
    _, objects = loaded
    everything = collection.get_objects()
    assert everything["more"] is False
    assert everything["objects"] == objects  # as sent, in the order added
    for obj in objects:
        one = collection.get_object(obj["id"])
        assert one["objects"] == [obj]
    manifest = collection.get_manifest()
    entries = {e["id"]: e for e in manifest["objects"]}
    assert list(entries) == [o["id"] for o in objects]
    assert {e["media_type"] for e in entries.values()} == {STIX}
    assert len({e["date_added"] for e in entries.values()}) == 1  # one request, one instant
    for obj in objects:
        if "modified" in obj:
            assert entries[obj["id"]]["version"] == obj["modified"]
        elif "created" in obj:  # a marking definition is never modified
            assert entries[obj["id"]]["version"] == obj["created"]
    # An SCO has neither: its version is when the collection got it (TAXII 2.1 §3.4.2).
    ip = _by_type(objects, "ipv4-addr")["id"]
    assert _instant(entries[ip]["version"]) == _instant(entries[ip]["date_added"])
    indicator = _by_type(objects, "indicator")
    versions = collection.object_versions(indicator["id"])
    assert versions == {"more": False, "versions": [T1]}


def _instant(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def test_as_pages_returns_every_object_exactly_once(
        collection: Collection, loaded: tuple[Status, list[dict[str, Any]]]) -> None:
    _, objects = loaded
    pages = list(as_pages(collection.get_objects, per_request=2))
    assert [len(p.get("objects", [])) for p in pages] == [2, 2, 2, 1]
    assert [p["more"] for p in pages] == [True, True, True, False]
    assert [i for p in pages for i in _ids(p)] == [o["id"] for o in objects]
    manifest_pages = list(as_pages(collection.get_manifest, per_request=3))
    assert [i for p in manifest_pages for i in _ids(p)] == [o["id"] for o in objects]


def test_filters(collection: Collection, loaded: tuple[Status, list[dict[str, Any]]]) -> None:
    _, objects = loaded
    every = [o["id"] for o in objects]
    of = {o["type"]: o["id"] for o in objects}
    assert _ids(collection.get_objects(type="indicator")) == [of["indicator"]]
    assert _ids(collection.get_objects(type=["report", "malware"])) == [of["malware"],
                                                                       of["report"]]
    assert _ids(collection.get_objects(id=of["relationship"])) == [of["relationship"]]
    assert _ids(collection.get_objects(id=[of["ipv4-addr"], of["identity"]])) == [
        of["identity"], of["ipv4-addr"]]
    assert _ids(collection.get_objects(type="malware", id=of["indicator"])) == []  # ANDed
    assert _ids(collection.get_objects(version="all")) == every
    assert _ids(collection.get_objects(spec_version="2.1")) == every
    assert _ids(collection.get_objects(spec_version="2.0")) == []
    assert _ids(collection.get_manifest(type="identity")) == [of["identity"]]
    added = collection.get_manifest()["objects"][0]["date_added"]
    assert _ids(collection.get_objects(added_after=added)) == []  # strictly later
    just_before = _instant(added) - dt.timedelta(microseconds=1)
    assert _ids(collection.get_objects(added_after=just_before)) == every
    assert _ids(collection.get_objects(added_after="2000-01-01T00:00:00Z")) == every


def test_new_version_latest_by_default_and_delete(node: LocalNode,
                                                  api_root: ApiRoot) -> None:
    created = node.api("POST", "/api/sharing/collections",
                       json={"name": "versions", "title": "Versions"})
    c = _collection(api_root, created["id"])
    v1 = stix2.Indicator(name="C2 server", pattern="[domain-name:value = 'c2.example']",
                         pattern_type="stix", valid_from=T1, created=T1, modified=T1)
    v2 = v1.new_version(modified=T2, name="C2 server (confirmed)")
    mal = stix2.Malware(name="Loader", is_family=True, created=T1, modified=T1)
    first, second, other = (json.loads(o.serialize()) for o in (v1, v2, mal))
    assert c.add_objects({"objects": [first, other]}, timeout=10).success_count == 2
    again = c.add_objects({"objects": [second, first]}, timeout=10)
    # TAXII 2.1 §5.5: an exact duplicate is not an error.
    assert (again.success_count, again.failure_count) == (2, 0)
    oid = first["id"]

    assert c.get_object(oid)["objects"] == [second]
    assert c.get_object(oid, version="all")["objects"] == [first, second]
    assert c.get_object(oid, version="first")["objects"] == [first]
    assert c.get_object(oid, version=T1)["objects"] == [first]
    assert c.get_objects()["objects"] == [other, second]
    assert c.get_objects(version="all")["objects"] == [first, other, second]
    assert c.object_versions(oid)["versions"] == [T1, T2]
    assert [e["version"] for e in c.get_manifest(id=oid)["objects"]] == [T2]
    assert [e["version"] for e in c.get_manifest(id=oid, version="all")["objects"]] == [T1, T2]
    batch1 = c.get_manifest(id=oid, version="first")["objects"][0]["date_added"]
    assert c.get_objects(added_after=batch1)["objects"] == [second]

    c.delete_object(oid, version=T2)
    assert c.get_object(oid)["objects"] == [first]  # the previous version is the latest again
    c.delete_object(oid)
    assert _http_error_status(c.get_object, oid) == 404
    assert _http_error_status(c.object_versions, oid) == 404
    assert c.get_objects(version="all")["objects"] == [other]


def test_reposted_sco_is_not_a_new_version(node: LocalNode, api_root: ApiRoot) -> None:
    created = node.api("POST", "/api/sharing/collections",
                       json={"name": "observables", "title": "Observables"})
    c = _collection(api_root, created["id"])
    ip = json.loads(stix2.IPv4Address(value="203.0.113.9").serialize())
    for _ in range(2):
        status = c.add_objects({"objects": [ip]}, timeout=10)
        assert (status.success_count, status.failure_count) == (1, 0)
    assert c.get_object(ip["id"], version="all")["objects"] == [ip]


# -- 3. status -------------------------------------------------------------------------------

def test_status_round_trip(api_root: ApiRoot,
                           loaded: tuple[Status, list[dict[str, Any]]]) -> None:
    status, _ = loaded
    fetched = api_root.get_status(status.id)
    fields = ("id", "status", "request_timestamp", "total_count", "success_count",
              "failure_count", "pending_count", "successes", "failures", "pendings")
    assert {f: getattr(fetched, f) for f in fields} == {f: getattr(status, f) for f in fields}
    assert fetched.custom_properties == {}
    # The URL taxii2-client derives from the collection URL ("../../status/<id>") works too.
    status.refresh()
    assert (status.status, status.success_count) == ("complete", fetched.success_count)
    unknown = str(uuid.uuid4())
    assert _http_error_status(api_root.get_status, unknown) == 404


# -- 4. stix2 parses what we return ------------------------------------------------------------

def test_stix2_parses_every_object(collection: Collection,
                                   loaded: tuple[Status, list[dict[str, Any]]]) -> None:
    _, objects = loaded
    returned = collection.get_objects(version="all")["objects"]
    assert len(returned) == len(objects)
    for obj in returned:
        parsed = stix2.parse(obj, allow_custom=False)
        assert parsed.id == obj["id"]
        assert json.loads(parsed.serialize()) == obj


# -- 5. stix2-validator on every bundle we emit --------------------------------------------------

def _options() -> ValidationOptions:
    return ValidationOptions(version="2.1")


def _explain(result: Any) -> str:
    return "; ".join(str(e) for e in result.errors) or "valid"


def test_validator_rejects_a_bad_bundle() -> None:
    # Guards against a validator wheel without its schemas (3.3.1, 3.1.0, 1.1.1):
    # it fails everything, so a bad bundle must fail *for the reason it is bad*.
    indicator = json.loads(stix2.Indicator(
        pattern="[ipv4-addr:value = '198.51.100.7']", pattern_type="stix", valid_from=T1,
        created=T1, modified=T1).serialize())
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [indicator]}
    result = validate_instance(bundle, _options())
    assert result.is_valid, _explain(result)
    del indicator["pattern"]
    result = validate_string(json.dumps(bundle), _options())
    assert not result.is_valid
    assert any("'pattern' is a required property" in str(e) for e in result.errors), _explain(
        result)


def test_validator_passes_every_taxii_page(node: LocalNode, http: httpx.Client,
                                           created: dict[str, Any],
                                           loaded: tuple[Status, list[dict[str, Any]]]) -> None:
    _, objects = loaded
    headers = {"authorization": f"Bearer {node.token}", "accept": TAXII}
    params: dict[str, str] = {"limit": "3"}
    seen: list[str] = []
    for _ in range(10):
        resp = http.get(f"{created['taxii_url']}objects/", params=params, headers=headers)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == TAXII
        first, last = (_instant(resp.headers[f"x-taxii-date-added-{k}"])
                       for k in ("first", "last"))
        assert first <= last
        page = resp.json()
        bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                  "objects": page["objects"]}
        result = validate_instance(bundle, _options())
        assert result.is_valid, _explain(result)
        seen += _ids(page)
        if not page["more"]:
            break
        params = {"limit": "3", "next": page["next"]}
    assert seen == [o["id"] for o in objects]


def test_validator_passes_the_export_bundle(node: LocalNode, created: dict[str, Any],
                                            loaded: tuple[Status, list[dict[str, Any]]]
                                            ) -> None:
    _, objects = loaded
    done = subprocess.run(
        [sys.executable, "-m", "comity", "sharing", "export", "--collection", created["id"],
         "--data-dir", str(node.data_dir)],
        capture_output=True, timeout=120, check=False, env={**os.environ, **node.env})
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    text = done.stdout.decode()
    bundle = json.loads(text)
    assert bundle["type"] == "bundle"
    assert bundle["objects"] == objects
    result = validate_string(text, _options())
    assert result.is_valid, _explain(result)


# -- 6. errors -------------------------------------------------------------------------------

def test_taxii2_client_errors(node: LocalNode, created: dict[str, Any]) -> None:
    with _bounded(Server(node.url + "/taxii2/")) as anonymous:
        assert _http_error_status(getattr, anonymous, "title") == 401
    # taxii2-client's own TokenAuth speaks "Token", which this server does not.
    with _bounded(Server(node.url + "/taxii2/", auth=TokenAuth(node.token))) as token:
        assert _http_error_status(getattr, token, "title") == 401
    with _bounded(Server(node.url + "/taxii2/", auth=_Bearer("not-a-token"))) as forged:
        assert _http_error_status(getattr, forged, "title") == 401
    missing = f"{created['api_root']}collections/{uuid.uuid4()}/"
    with _bounded(Collection(missing, auth=_Bearer(node.token))) as nowhere:
        assert _http_error_status(getattr, nowhere, "title") == 404
    with _bounded(Collection(created["taxii_url"], auth=_Bearer(node.token))) as c:
        assert _http_error_status(c.get_object, f"indicator--{uuid.uuid4()}") == 404


@pytest.mark.parametrize(("method", "headers", "status"), [
    ("GET", {"accept": "application/json"}, 406),
    ("GET", {"accept": "application/taxii+json;version=2.0"}, 406),
    ("POST", {"content-type": "application/json"}, 415),
    ("GET", {"authorization": ""}, 401),
    ("POST", {"authorization": ""}, 401),
])
def test_http_errors(node: LocalNode, http: httpx.Client, created: dict[str, Any],
                     method: str, headers: dict[str, str], status: int) -> None:
    url = f"{created['taxii_url']}objects/"
    auth = {"authorization": f"Bearer {node.token}", "accept": TAXII}
    before = http.get(url, params={"match[version]": "all"}, headers=auth).json()
    h = {**auth, "content-type": TAXII, **headers}
    if not h["authorization"]:
        del h["authorization"]
    body = {"objects": [json.loads(stix2.Malware(name="Dropper", is_family=True).serialize())]}
    resp = http.request(method, url, headers=h, json=body if method == "POST" else None)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == TAXII
    error = resp.json()
    assert error["title"]
    assert error["http_status"] == str(status)
    if status == 401:
        assert resp.headers.get("www-authenticate", "").startswith("Bearer")
    assert http.get(url, params={"match[version]": "all"}, headers=auth).json() == before
