"""The RDAP server (RFC 7480, 9082, 9083): the conformance checklist, longest-prefix answers,
decision links, errors in the RDAP shape, on both storage backends."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import random
from typing import Any

import httpx
import pytest

from comity.app import create_app
from comity.db import read_scope, session_scope
from comity.registry import rdap
from comity.registry.errors import NotFoundError
from comity.registry.resources import Block, Kind, parse_block
from tests.registry.support import COUNCIL, NOW, REGISTERED, add_east_pools
from tests.support import LocalFederation, PeerNode

PROPOSAL = "5f0c8c1e-1b1a-4c55-9a0e-2f6d3a2b7c10"
# Quotes, a backslash, non-ASCII letters, markup and a line separator: what a holder's
# name may hold, which must reach the client intact and as valid JSON.
ODD_NAME = 'Kenya "Net" \\ Ltd — ñ 東京 </script>\u2028'
RDAP = "application/rdap+json"
BASE = "http://fr.test"


@pytest.fixture
def node(fed: LocalFederation) -> PeerNode:
    n = fed.add("fr")
    r = n.node.registry
    with session_scope(n.node.sessions) as s:
        add_east_pools(r, s)
        r.ensure_entity(s, handle="ORG-KE-1", name=ODD_NAME, country="KE", registry=COUNCIL,
                        now=NOW)
        r.ensure_entity(s, handle="ORG-ÉTÉ 2", name="Été Réseaux", country="FR",
                        registry=COUNCIL, now=NOW)

        def delegate(block: str, status: str, **kw: Any) -> None:
            r.delegate(s, registry=COUNCIL, block=parse_block(block), status=status, now=NOW,
                       **kw)

        # 768 addresses: not a power of two, so two prefixes.
        delegate("45.64.1.0-45.64.3.255", "allocated", holder="ORG-KE-1", country="KE",
                 name='KE-"NET"-1', registered_at=REGISTERED, proposal=PROPOSAL,
                 decision_seq=4, log_index=17)
        delegate("45.64.8.0/24", "assigned", holder="ORG-ÉTÉ 2", country="FR",
                 name="FR-NET-8", registered_at=REGISTERED)
        delegate("45.64.9.0/24", "reserved")
        delegate("45.64.10.0/24", "assigned", holder="ORG-GHOST")  # no entity row
        delegate("2a0f:1000:10::/48", "allocated", holder="ORG-KE-1", country="KE",
                 name="KE-V6")
        delegate("AS328001", "assigned", holder="ORG-KE-1", country="KE", name="KE-AS")
        delegate("AS328010-AS328019", "allocated", holder="ORG-ÉTÉ 2", country="FR",
                 name="FR-AS-BLOCK")
    return n


def get(node: PeerNode, path: str, **kw: Any) -> Any:
    return node.client.get(path, **kw)


def ok(node: PeerNode, path: str, **kw: Any) -> dict[str, Any]:
    resp = get(node, path, **kw)
    assert resp.status_code == 200, (path, resp.status_code, resp.text)
    assert resp.headers["content-type"] == RDAP
    assert resp.headers["access-control-allow-origin"] == "*"
    doc: dict[str, Any] = json.loads(resp.content)
    return doc


def assert_rdap_error(resp: Any, status: int) -> dict[str, Any]:
    """The RFC 9083 §6 error body, with the RDAP media type and CORS, never problem+json."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == RDAP
    assert resp.headers["access-control-allow-origin"] == "*"
    doc: dict[str, Any] = resp.json()
    assert set(doc) == {"errorCode", "title", "description", "rdapConformance"}
    assert doc["errorCode"] == status
    assert isinstance(doc["title"], str)
    assert doc["title"]
    assert isinstance(doc["description"], list)
    assert doc["description"]
    assert all(isinstance(line, str) for line in doc["description"])
    assert doc["rdapConformance"] == ["rdap_level_0"]
    return doc


def objects(doc: Any, top: bool = True) -> list[dict[str, Any]]:
    """Every RDAP object instance in ``doc``: the top one and those nested in it.

    Also asserts that ``rdapConformance`` appears in the topmost object only.
    """
    found: list[dict[str, Any]] = []
    if isinstance(doc, dict):
        if not top:
            assert "rdapConformance" not in doc, doc
        if top or "objectClassName" in doc or "handle" in doc:
            found.append(doc)
        for key, value in doc.items():
            if key in ("entities", "networks", "autnums") and isinstance(value, list):
                for item in value:
                    assert isinstance(item, dict)
                    assert "objectClassName" in item, item
            found += objects(value, top=False)
    elif isinstance(doc, list):
        for item in doc:
            found += objects(item, top=False)
    return found


def rfc3339(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert when.tzinfo is not None
    return when


# -- lookups: the objects ----------------------------------------------------------------------

def test_ip_inside_a_delegation_gets_the_delegation(node: PeerNode) -> None:
    doc = ok(node, "/rdap/ip/45.64.2.200")
    assert doc["objectClassName"] == "ip network"
    assert (doc["handle"], doc["startAddress"], doc["endAddress"], doc["ipVersion"]) == (
        "45.64.1.0-45.64.3.255", "45.64.1.0", "45.64.3.255", "v4")
    assert (doc["name"], doc["type"], doc["country"], doc["status"]) == (
        'KE-"NET"-1', "ALLOCATED", "KE", ["active"])
    assert doc["parentHandle"] == "POOL-45.64.0.0/16"
    # cidr0 for a range that is not one prefix: the prefixes that make it up.
    assert doc["cidr0_cidrs"] == [{"v4prefix": "45.64.1.0", "length": 24},
                                  {"v4prefix": "45.64.2.0", "length": 23}]
    assert doc["rdapConformance"] == ["rdap_level_0", "cidr0"]
    events = {e["eventAction"]: rfc3339(e["eventDate"]) for e in doc["events"]}
    assert events == {"registration": REGISTERED, "last changed": NOW}
    [holder] = doc["entities"]
    assert holder["objectClassName"] == "entity"
    assert (holder["handle"], holder["roles"]) == ("ORG-KE-1", ["registrant"])
    assert ["fn", {}, "text", ODD_NAME] in holder["vcardArray"][1]
    assert holder["links"][0]["href"] == f"{BASE}/rdap/entity/ORG-KE-1"
    self_link = next(x for x in doc["links"] if x["rel"] == "self")
    assert self_link == {"value": f"{BASE}/rdap/ip/45.64.1.0/24", "rel": "self",
                         "href": f"{BASE}/rdap/ip/45.64.1.0/24", "type": RDAP}
    # The self link leads back to the same object.
    assert ok(node, "/rdap/ip/45.64.1.0/24")["handle"] == doc["handle"]
    [notice] = doc["notices"]
    assert notice["title"] == "Terms of use"
    assert notice["description"]
    assert notice["links"][0]["href"] == f"{BASE}/rdap/help"


def test_v6_and_autnum_objects(node: PeerNode) -> None:
    v6 = ok(node, "/rdap/ip/2a0f:1000:10:ffff::1")
    assert (v6["handle"], v6["ipVersion"], v6["startAddress"], v6["endAddress"]) == (
        "2a0f:1000:10::/48", "v6", "2a0f:1000:10::", "2a0f:1000:10:ffff:ffff:ffff:ffff:ffff")
    assert v6["cidr0_cidrs"] == [{"v6prefix": "2a0f:1000:10::", "length": 48}]
    assert v6["parentHandle"] == "POOL-2a0f:1000::/32"
    assert [e["eventAction"] for e in v6["events"]] == ["last changed"]  # never registered
    one = ok(node, "/rdap/autnum/328001")
    assert one["objectClassName"] == "autnum"
    assert (one["handle"], one["startAutnum"], one["endAutnum"], one["type"]) == (
        "AS328001", 328001, 328001, "ASSIGNED")
    assert one["rdapConformance"] == ["rdap_level_0"]  # no cidr0 member in an autnum
    assert one["links"][0]["href"] == f"{BASE}/rdap/autnum/328001"
    block = ok(node, "/rdap/autnum/328015")
    assert (block["handle"], block["startAutnum"], block["endAutnum"]) == (
        "AS328010-AS328019", 328010, 328019)
    assert block["startAutnum"] <= block["endAutnum"]
    assert block["entities"][0]["handle"] == "ORG-ÉTÉ 2"


def test_reserved_delegation_and_pool_answers(node: PeerNode) -> None:
    reserved = ok(node, "/rdap/ip/45.64.9.1")
    assert (reserved["handle"], reserved["status"], reserved["type"]) == (
        "45.64.9.0/24", ["reserved"], "RESERVED")
    assert "entities" not in reserved
    pool = ok(node, "/rdap/ip/45.64.200.1")
    assert (pool["handle"], pool["type"], pool["status"], pool["name"]) == (
        "POOL-45.64.0.0/16", "POOL", ["active"], "East IPv4")
    assert "parentHandle" not in pool
    assert pool["remarks"][0]["title"] == "Not delegated"
    assert pool["links"][0]["href"] == f"{BASE}/rdap/ip/45.64.0.0/16"


LONGEST_PREFIX = [
    # (query, expected handle or None for 404)
    ("/rdap/ip/45.64.1.0", "45.64.1.0-45.64.3.255"),     # first address
    ("/rdap/ip/45.64.3.255", "45.64.1.0-45.64.3.255"),   # last address
    ("/rdap/ip/45.64.4.0", "POOL-45.64.0.0/16"),         # just after: in the pool
    ("/rdap/ip/45.64.0.255", "POOL-45.64.0.0/16"),       # just before
    ("/rdap/ip/45.64.8.0/24", "45.64.8.0/24"),           # the delegation itself
    ("/rdap/ip/45.64.8.128/25", "45.64.8.0/24"),         # a prefix inside it
    ("/rdap/ip/45.64.2.0/23", "45.64.1.0-45.64.3.255"),  # one of the range's prefixes
    ("/rdap/ip/45.64.8.0/23", "POOL-45.64.0.0/16"),      # wider than the delegation
    ("/rdap/ip/45.64.0.0/16", "POOL-45.64.0.0/16"),      # the pool itself
    ("/rdap/ip/45.64.0.0/15", None),                     # wider than the pool
    ("/rdap/ip/45.65.0.1", None),                        # outside every pool
    ("/rdap/ip/2a0f:1000:10::", "2a0f:1000:10::/48"),
    ("/rdap/ip/2a0f:1000:11::1", "POOL-2a0f:1000::/32"),
    ("/rdap/ip/2a0f:1000::/33", "POOL-2a0f:1000::/32"),
    ("/rdap/ip/2a0f:1001::1", None),
    ("/rdap/autnum/328010", "AS328010-AS328019"),
    ("/rdap/autnum/328019", "AS328010-AS328019"),
    ("/rdap/autnum/328020", "POOL-AS328000-AS328999"),
    ("/rdap/autnum/329000", None),
    ("/rdap/autnum/0", None),
]


def test_longest_prefix_answers(node: PeerNode) -> None:
    for path, handle in LONGEST_PREFIX:
        resp = get(node, path)
        if handle is None:
            doc = assert_rdap_error(resp, 404)
            assert doc["title"] == "Not found"
        else:
            assert resp.status_code == 200, (path, resp.text)
            assert resp.json()["handle"] == handle, path


def test_fast_path_agrees_with_registry_lookup(node: PeerNode) -> None:
    """rdap.find is a fast path of Registry.lookup: on random queries around every
    boundary they must name the same registration."""
    rng = random.Random(7)
    edges = {Kind.IPV4: [int(b.first) for b in map(parse_block, (
        "45.64.0.0", "45.64.1.0", "45.64.3.255", "45.64.8.0", "45.64.9.255", "45.65.0.0"))],
             Kind.IPV6: [int(parse_block("2a0f:1000:10::").first),
                         int(parse_block("2a0f:1000::").first)],
             Kind.ASN: [328000, 328001, 328010, 328019, 328999]}
    with read_scope(node.node.sessions) as session:
        for _ in range(300):
            kind = rng.choice(list(edges))
            first = max(0, rng.choice(edges[kind]) + rng.randint(-3, 3))
            last = first + rng.choice([0, 0, 1, 255, 511, 2**16]) if kind is not Kind.ASN \
                else first + rng.choice([0, 0, 3, 20])
            block = Block(kind, first, min(last, 2**kind.bits - 1))
            try:
                expected = node.node.registry.lookup(session, block)
            except NotFoundError:
                with pytest.raises(NotFoundError):
                    rdap.find(session, block)
                continue
            d, p = rdap.find(session, block)
            got = (d.handle if d is not None else None,
                   None if d is not None or p is None else (p.start_key, p.end_key))
            want = (expected.delegation.handle if expected.delegation is not None else None,
                    None if expected.pool is None else (expected.pool.start_key,
                                                        expected.pool.end_key))
            assert got == want, block


# -- the conformance checklist -----------------------------------------------------------------

def test_object_class_names_everywhere_and_conformance_only_at_top(node: PeerNode) -> None:
    for path in ("/rdap/ip/45.64.2.1", "/rdap/ip/45.64.200.1", "/rdap/ip/2a0f:1000:10::1",
                 "/rdap/autnum/328001", "/rdap/entity/ORG-KE-1"):
        doc = ok(node, path)
        assert "rdap_level_0" in doc["rdapConformance"]
        found = objects(doc)
        assert found[0] is doc
        for obj in found:
            assert obj["objectClassName"] in ("ip network", "autnum", "entity"), (path, obj)
            assert obj["handle"], (path, obj)
            if obj["objectClassName"] == "ip network":
                start, end = (ipaddress.ip_address(obj[k]) for k in ("startAddress",
                                                                     "endAddress"))
                assert start.version == end.version == int(obj["ipVersion"][1]), path
                assert start <= end, path
            if obj["objectClassName"] == "autnum":
                assert 0 <= obj["startAutnum"] <= obj["endAutnum"] < 2**32, path
            assert set(obj.get("status", [])) <= {"active", "reserved"}, path
            for event in obj.get("events", []):
                assert event["eventAction"] in ("registration", "last changed"), path
                rfc3339(event["eventDate"])
            assert obj.get("links"), (path, obj)
            self_link = next(x for x in obj["links"] if x["rel"] == "self")
            assert self_link["type"] == RDAP
            assert self_link["href"].startswith(f"{BASE}/rdap/")
    help_doc = ok(node, "/rdap/help")
    assert help_doc["rdapConformance"] == ["rdap_level_0", "cidr0"]
    assert help_doc["notices"][0]["title"] == "Terms of use"
    objects(help_doc)


def test_decision_links_when_a_council_decided(node: PeerNode) -> None:
    decided = ok(node, "/rdap/ip/45.64.1.1")
    target = f"{BASE}/governance/proposals/{PROPOSAL}"
    related = [x for x in decided["links"] if x["rel"] == "related"]
    assert [(x["title"], x["href"]) for x in related] == [
        ("Council decision", target), ("Log proof of the decision", f"{target}/proof")]
    assert all(x["value"] == f"{BASE}/rdap/ip/45.64.1.0/24" for x in related)
    registration = next(e for e in decided["events"] if e["eventAction"] == "registration")
    assert [x["href"] for x in registration["links"]] == [target, f"{target}/proof"]
    assert COUNCIL in decided["remarks"][0]["description"][0]
    plain = ok(node, "/rdap/ip/45.64.8.1")
    assert [x["rel"] for x in plain["links"]] == ["self"]
    assert all("links" not in e for e in plain["events"])
    assert "remarks" not in plain


def test_head_has_the_headers_of_get_and_no_body(node: PeerNode) -> None:
    for path, status in (("/rdap/ip/45.64.1.1", 200), ("/rdap/ip/2a0f:1000:10::1", 200),
                         ("/rdap/ip/45.64.8.0/24", 200), ("/rdap/autnum/328001", 200),
                         ("/rdap/entity/ORG-KE-1", 200), ("/rdap/help", 200),
                         ("/rdap/ip/45.65.0.1", 404), ("/rdap/ip/300.1.1.1", 400),
                         ("/rdap/domain/example.com", 501)):
        full = get(node, path)
        head = node.client.head(path)
        assert (head.status_code, full.status_code) == (status, status), path
        assert head.content == b"", path
        for name in ("content-type", "content-length", "access-control-allow-origin"):
            assert head.headers[name] == full.headers[name], (path, name)
        assert int(head.headers["content-length"]) == len(full.content)


def test_accept_headers_and_unknown_query_parameters(node: PeerNode) -> None:
    expected = ok(node, "/rdap/ip/45.64.1.1")
    for accept in (RDAP, "application/json", "*/*", "application/rdap+json;q=0.9, */*;q=0.1",
                   None):
        headers = {} if accept is None else {"accept": accept}
        assert ok(node, "/rdap/ip/45.64.1.1", headers=headers) == expected, accept
    assert ok(node, "/rdap/ip/45.64.1.1?asdf=zxcv&jscard=1") == expected
    assert ok(node, "/rdap/autnum/328001?asdf=zxcv")["handle"] == "AS328001"


def test_public_without_a_token(node: PeerNode) -> None:
    resp = get(node, "/rdap/ip/45.64.1.1", headers={"authorization": "Bearer nonsense"})
    assert resp.status_code == 200


@pytest.mark.parametrize("path", [
    "/rdap/ip/300.1.1.1", "/rdap/ip/45.64.1", "/rdap/ip/45.64.01.1", "/rdap/ip/abc",
    "/rdap/ip/45.64.1.1/24",            # host bits set
    "/rdap/ip/45.64.0.0/33", "/rdap/ip/45.64.0.0/-1", "/rdap/ip/45.64.0.0/255.255.0.0",
    "/rdap/ip/2a0f:1000::/129", "/rdap/ip/2a0f:1000::g", "/rdap/ip/fe80::1%25eth0",
    "/rdap/ip/" + "1" * 5000, "/rdap/ip/45.64.0.0/" + "1" * 5000,
    "/rdap/autnum/abc", "/rdap/autnum/AS328001", "/rdap/autnum/-1", "/rdap/autnum/1.5",
    "/rdap/autnum/4294967296", "/rdap/autnum/99999999999", "/rdap/autnum/%EF%BC%91",
    "/rdap/ip/", "/rdap/", "/rdap/nonsense/1", "/rdap/ip/45.64.0.0/16/1",
])
def test_malformed_queries_are_400(node: PeerNode, path: str) -> None:
    doc = assert_rdap_error(get(node, path), 400)
    assert doc["title"] == "Malformed query"


def test_documented_but_unsupported_queries_are_501(node: PeerNode) -> None:
    for path in ("/rdap/domain/example.com", "/rdap/domain/1.64.45.in-addr.arpa",
                 "/rdap/nameserver/ns1.example.com", "/rdap/domains?name=example*",
                 "/rdap/nameservers?ip=45.64.1.1", "/rdap/entities?fn=Kenya*",
                 "/rdap/entities?handle=ORG-*"):
        doc = assert_rdap_error(get(node, path), 501)
        assert doc["title"] == "Not implemented", path


def test_other_methods_keep_the_rdap_shape(node: PeerNode) -> None:
    resp = node.client.post("/rdap/ip/45.64.1.1", content=b"x" * 10_000)
    assert_rdap_error(resp, 405)
    assert resp.headers["allow"] == "GET, HEAD"
    assert_rdap_error(node.client.delete("/rdap/autnum/328001"), 405)
    preflight = node.client.options("/rdap/ip/45.64.1.1")
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"


def test_an_unexpected_fault_is_a_500_in_the_rdap_shape(
        node: PeerNode, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(rdap, "find", broken)
    resp = get(node, "/rdap/ip/45.64.1.1")
    assert_rdap_error(resp, 500)
    assert "secret" not in resp.text  # details go to the log only
    assert "secret detail" in caplog.text


# -- entities, strings and links -------------------------------------------------------------

def test_entities(node: PeerNode) -> None:
    doc = ok(node, "/rdap/entity/ORG-KE-1")
    assert (doc["objectClassName"], doc["handle"]) == ("entity", "ORG-KE-1")
    assert ["fn", {}, "text", ODD_NAME] in doc["vcardArray"][1]
    assert doc["events"][0]["eventAction"] == "registration"
    # A handle with a space and accents, percent-encoded in the path and in the links.
    odd = ok(node, "/rdap/entity/ORG-%C3%89T%C3%89%202")
    assert odd["handle"] == "ORG-ÉTÉ 2"
    assert odd["links"][0]["href"] == f"{BASE}/rdap/entity/ORG-%C3%89T%C3%89%202"
    assert_rdap_error(get(node, "/rdap/entity/ORG-NONE"), 404)
    assert_rdap_error(get(node, "/rdap/entity/" + "X" * 500), 404)


def test_a_holder_without_an_entity_row(node: PeerNode) -> None:
    [holder] = ok(node, "/rdap/ip/45.64.10.1")["entities"]
    assert holder["objectClassName"] == "entity"
    assert (holder["handle"], holder["roles"]) == ("ORG-GHOST", ["registrant"])
    assert ["fn", {}, "text", "ORG-GHOST"] in holder["vcardArray"][1]  # fn is required
    assert "links" not in holder  # no object to link to
    assert_rdap_error(get(node, "/rdap/entity/ORG-GHOST"), 404)


def test_strings_from_the_database_are_escaped_json(node: PeerNode) -> None:
    resp = get(node, "/rdap/ip/45.64.1.1")
    # Strict JSON (no control characters inside strings), and every string intact.
    doc = json.loads(resp.content.decode("utf-8"), strict=True)
    assert doc["name"] == 'KE-"NET"-1'
    assert doc["entities"][0]["vcardArray"][1][1][3] == ODD_NAME
    assert b"</script>" in resp.content
    assert b'\\"Net\\"' in resp.content


def test_links_follow_the_host_asked_unless_it_is_not_a_host(node: PeerNode) -> None:
    doc = ok(node, "/rdap/ip/45.64.1.1", headers={"host": "rdap.example:8443"})
    assert doc["links"][0]["href"] == "http://rdap.example:8443/rdap/ip/45.64.1.0/24"
    v6host = ok(node, "/rdap/ip/45.64.1.1", headers={"host": "[::1]:8080"})
    assert v6host["links"][0]["href"].startswith("http://[::1]:8080/rdap/")
    for bad in ("evil.example/<script>", 'a"b', "a b", "x" * 300):
        doc = ok(node, "/rdap/ip/45.64.1.1", headers={"host": bad})
        assert doc["links"][0]["href"] == f"{BASE}/rdap/ip/45.64.1.0/24", bad


def test_rdap_errors_are_not_problem_json(node: PeerNode) -> None:
    """The app's problem+json handlers do not reach under /rdap."""
    for resp in (get(node, "/rdap/zzz"), get(node, "/rdap/ip/300.1.1.1"),
                 node.client.put("/rdap/help", content=b"{}")):
        assert resp.headers["content-type"] == RDAP
        assert "type" not in resp.json()


def test_the_lookups_are_in_the_openapi_document(node: PeerNode) -> None:
    """GET once per path (HEAD would repeat its operation id: a warning, an error here)."""
    paths = node.client.get("/openapi.json").json()["paths"]
    for path in ("/rdap/ip/{addr}", "/rdap/ip/{prefix}/{length}", "/rdap/autnum/{n}",
                 "/rdap/entity/{handle}", "/rdap/help"):
        assert list(paths[path]) == ["get"], path


# -- lookups served in batches -----------------------------------------------------------------

def gather_get(apps: dict[str, Any], paths: list[tuple[str, str]]) -> list[httpx.Response]:
    """GET every (host, path) concurrently, in one event loop, through the apps' ASGI."""
    async def run() -> list[httpx.Response]:
        clients = {host: httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                           base_url=f"http://{host}")
                   for host, app in apps.items()}
        try:
            return list(await asyncio.gather(*(clients[host].get(path)
                                               for host, path in paths)))
        finally:
            for c in clients.values():
                await c.aclose()
    return asyncio.run(run())


def record_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real = rdap._answer_all

    def recording(batch: list[Any]) -> list[Any]:
        sizes.append(len(batch))
        return real(batch)

    monkeypatch.setattr(rdap, "_answer_all", recording)
    return sizes


def test_concurrent_lookups_are_batched_and_each_gets_its_own_answer(
        fed: LocalFederation, node: PeerNode, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = record_batches(monkeypatch)
    other = fed.add("de")  # a second node in the same event loop: its own registry
    with session_scope(other.node.sessions) as s:
        other.node.registry.add_pool(s, registry=COUNCIL, block=parse_block("45.64.0.0/16"),
                                     name="DE pool", now=NOW)
    expected = {path: handle for path, handle in LONGEST_PREFIX}
    paths = [("fr.test", path) for path, _ in LONGEST_PREFIX] * 5
    paths += [("de.test", "/rdap/ip/45.64.2.1"), ("fr.test", "/rdap/ip/300.1.1.1")] * 5
    apps = {"fr.test": create_app(node.node, deliver=False),
            "de.test": create_app(other.node, deliver=False)}
    for (host, path), resp in zip(paths, gather_get(apps, paths), strict=True):
        if host == "de.test":
            assert resp.json()["handle"] == "POOL-45.64.0.0/16"  # no delegation there
            assert resp.json()["links"][0]["href"].startswith("http://de.test/")
        elif path == "/rdap/ip/300.1.1.1":
            assert resp.status_code == 400  # refused before any batch
        elif expected[path] is None:
            assert resp.status_code == 404, path
        else:
            assert resp.json()["handle"] == expected[path], path
    assert sum(sizes) == len(LONGEST_PREFIX) * 5 + 5
    assert max(sizes) == rdap._Batches.MAX_BATCH  # they waited for one another


def test_one_failing_lookup_does_not_fail_its_batch(
        node: PeerNode, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    sizes = record_batches(monkeypatch)
    real = rdap.find

    def find(session: Any, block: Block) -> Any:
        if block.kind is Kind.ASN:
            raise RuntimeError("broken for AS numbers")
        return real(session, block)

    monkeypatch.setattr(rdap, "find", find)
    paths = [("fr.test", p) for p in ("/rdap/ip/45.64.1.1", "/rdap/autnum/328001",
                                      "/rdap/ip/45.65.0.1", "/rdap/ip/2a0f:1000:10::1")]
    got = gather_get({"fr.test": create_app(node.node, deliver=False)}, paths)
    assert [r.status_code for r in got] == [200, 500, 404, 200]
    assert sizes == [4]
    assert "broken for AS numbers" in caplog.text


def test_a_broken_batch_fails_its_lookups_and_the_next_batch_works(
        node: PeerNode, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(node.node, deliver=False)
    real = rdap._answer_all

    def broken(batch: list[Any]) -> list[Any]:
        raise RuntimeError("the batch itself failed")

    monkeypatch.setattr(rdap, "_answer_all", broken)
    paths = [("fr.test", "/rdap/ip/45.64.1.1")] * 3
    assert [r.status_code for r in gather_get({"fr.test": app}, paths)] == [500] * 3
    assert "RDAP lookups failed" in caplog.text
    monkeypatch.setattr(rdap, "_answer_all", real)
    assert [r.status_code for r in gather_get({"fr.test": app}, paths)] == [200] * 3


def test_a_lookup_whose_request_went_away_is_skipped(node: PeerNode) -> None:
    batches = rdap._Batches()
    block = parse_block("45.64.1.1")

    async def run() -> tuple[list[Any], bytes]:
        gone = asyncio.ensure_future(batches.answer(node.node, BASE, block))
        kept = asyncio.ensure_future(batches.answer(node.node, BASE, block))
        await asyncio.sleep(0)  # both queued, their batch under way
        gone.cancel()
        outcome = await asyncio.gather(gone, return_exceptions=True)
        return outcome, await kept

    outcome, body = asyncio.run(run())
    assert isinstance(outcome[0], asyncio.CancelledError)
    # Its answer was dropped, not set on a cancelled future (which would fail the batch).
    assert json.loads(body)["handle"] == "45.64.1.0-45.64.3.255"
