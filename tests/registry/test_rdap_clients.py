"""Real RDAP clients from PyPI against a node's RDAP server on loopback, on both backends.

Three independent clients (``rdap`` by 20C, ``whoisit``, ``ipwhois``) query a
live server (uvicorn in a thread, the node's real app) and their own parsers
read the answers: a server that only passes our own tests but not theirs
would fail here. They are imported unconditionally: a missing client fails
the run rather than skipping it.

None of them may reach a public registry. Each has public defaults (20C's
``https://rdap.org/``, whoisit's bootstrap from IANA and its fallbacks to
ARIN, RIPE and APNIC, ipwhois's ARIN URLs), all replaced here with the local
server; and a guard on the socket layer refuses, and records, any name
resolution or connection to a host that is not loopback, which every test
then asserts did not happen.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from ipaddress import IPv4Network, IPv6Network
from typing import Any

import ipwhois.rdap as ipwhois_rdap
import pytest
import uvicorn
import whoisit
import whoisit.errors
from ipwhois.net import Net
from rdap.exceptions import RdapNotFoundError
from whoisit.bootstrap import BaseBootstrap

from comity.app import create_app
from comity.db import session_scope
from comity.localnet import free_port
from comity.registry.resources import parse_block
from rdap import RdapClient
from tests.registry.support import COUNCIL, NOW, REGISTERED, add_east_pools
from tests.support import LocalFederation, PeerNode

HOLDER = "ORG-KE-1"
HOLDER_NAME = "Kenya Net Ltd"


# -- no traffic beyond loopback ----------------------------------------------------------------

def _loopback(host: object) -> bool:
    if host is None:
        return True  # a wildcard bind, not a peer
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse (and record) every lookup of, or connection to, a host not on loopback."""
    attempts: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        if not _loopback(host):
            attempts.append(f"resolve {host!r}")
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: {host!r} is not loopback")
        return real_getaddrinfo(host, *args, **kw)

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            attempts.append(f"connect {address!r}")
            raise ConnectionRefusedError(f"test guard: {address!r} is not loopback")
        real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "*")
    yield attempts
    assert attempts == [], f"a client tried to leave loopback: {attempts}"


def test_the_guard_refuses_public_hosts(loopback_only: list[str]) -> None:
    with pytest.raises(OSError, match="test guard"):
        socket.create_connection(("rdap.arin.net", 443), timeout=1)
    with pytest.raises(OSError, match="test guard"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    assert len(loopback_only) == 2
    loopback_only.clear()


# -- the live server ---------------------------------------------------------------------------

@pytest.fixture
def node(fed: LocalFederation) -> PeerNode:
    n = fed.add("fr")
    r = n.node.registry
    with session_scope(n.node.sessions) as s:
        add_east_pools(r, s)
        r.ensure_entity(s, handle=HOLDER, name=HOLDER_NAME, country="KE", registry=COUNCIL,
                        now=NOW)
        common: dict[str, Any] = {"registry": COUNCIL, "now": NOW, "holder": HOLDER,
                                  "country": "KE", "registered_at": REGISTERED}
        r.delegate(s, block=parse_block("45.64.1.0-45.64.3.255"), status="allocated",
                   name="KE-NET-1", proposal="5f0c8c1e-1b1a-4c55-9a0e-2f6d3a2b7c10",
                   decision_seq=4, log_index=17, **common)
        r.delegate(s, block=parse_block("45.64.8.0/24"), status="assigned", name="KE-NET-8",
                   **common)
        r.delegate(s, block=parse_block("2a0f:1000:10::/48"), status="allocated",
                   name="KE-V6", **common)
        r.delegate(s, block=parse_block("AS328001"), status="assigned", name="KE-AS",
                   **common)
    return n


@pytest.fixture
def base(node: PeerNode) -> Iterator[str]:
    """The node's app served by uvicorn on a loopback port: its RDAP base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        create_app(node.node, deliver=False), host="127.0.0.1", port=port, lifespan="off",
        ws="none", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="rdap-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the live server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/rdap"
    finally:
        server.should_exit = True
        thread.join(30)


# -- rdap (20C) ----------------------------------------------------------------------------------

def test_rdap_20c(base: str) -> None:
    client = RdapClient({"bootstrap_url": f"{base}/", "timeout": 10})
    net = client.get_ip("45.64.2.7")
    assert (net.handle, net.name) == ("45.64.1.0-45.64.3.255", "KE-NET-1")
    assert net.data["country"] == "KE"
    assert net.data["cidr0_cidrs"] == [{"v4prefix": "45.64.1.0", "length": 24},
                                       {"v4prefix": "45.64.2.0", "length": 23}]
    assert net.org_name == HOLDER_NAME  # from the registrant's vCard
    normal = net.normalized
    assert str(normal["prefix"]) in ("45.64.1.0/24", "45.64.2.0/23")
    v6 = client.get_ip("2a0f:1000:10::1")
    assert v6.handle == "2a0f:1000:10::/48"
    assert v6.data["cidr0_cidrs"] == [{"v6prefix": "2a0f:1000:10::", "length": 48}]
    # A prefix query: the client's get_ip strips a prefix to its address, so the full URL.
    prefix = client.get_rdap(f"{base}/ip/45.64.8.0/24")
    assert (prefix.handle, prefix.name) == ("45.64.8.0/24", "KE-NET-8")
    asn = client.get_asn(328001)
    assert (asn.handle, asn.data["startAutnum"], asn.data["endAutnum"]) == (
        "AS328001", 328001, 328001)
    assert asn.org_name == HOLDER_NAME
    assert client.get("AS328001").handle == "AS328001"
    ent = client.get_entity(HOLDER)
    assert ent.handle == HOLDER
    assert ["fn", {}, "text", HOLDER_NAME] in ent.data["vcardArray"][1]
    with pytest.raises(RdapNotFoundError):
        client.get_ip("45.65.0.1")
    with pytest.raises(RdapNotFoundError):
        client.get_asn(1)
    assert all(url.startswith(base) for url, _ in client.history)


# -- whoisit -----------------------------------------------------------------------------------

@pytest.fixture
def whoisit_local(base: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """whoisit bootstrapped to the local server only, its public fallbacks replaced."""
    root = f"{base}/"
    monkeypatch.setattr(BaseBootstrap, "DEFAULT_RDAP_FALLBACKS", (root,))
    monkeypatch.setattr(BaseBootstrap, "RIR_RDAP_ENDPOINTS",
                        dict.fromkeys([*BaseBootstrap.RIR_RDAP_ENDPOINTS, "local"], root))

    def service(entries: list[str]) -> dict[str, Any]:
        return {"version": "1.0", "publication": "2026-01-01T00:00:00Z",
                "description": "local test registry", "services": [[entries, [root]]]}

    blob = {"timestamp": int(time.time()), "asn": service(["328000-328999"]),
            "ipv4": service(["45.64.0.0/16"]), "ipv6": service(["2a0f:1000::/32"]),
            "dns": service(["example"]),
            "object": {"version": "1.0", "publication": "2026-01-01T00:00:00Z",
                       "description": "local", "services": [[["noc@example"], ["MLR"],
                                                             [root]]]}}
    whoisit.clear_bootstrapping()
    whoisit.load_bootstrap_data(json.dumps(blob), allow_insecure=True)
    try:
        yield root
    finally:
        whoisit.clear_bootstrapping()


def test_whoisit(whoisit_local: str) -> None:
    got = whoisit.ip("45.64.2.7")
    assert (got["handle"], got["name"], got["country"]) == (
        "45.64.1.0-45.64.3.255", "KE-NET-1", "KE")
    assert got["network"] == IPv4Network("45.64.2.0/23")  # the prefix holding the query
    assert got["cidrs"] == [IPv4Network("45.64.1.0/24"), IPv4Network("45.64.2.0/23")]
    assert got["ip_version"] == 4
    assert got["parent_handle"] == "POOL-45.64.0.0/16"
    assert got["registration_date"] == REGISTERED
    [registrant] = got["entities"]["registrant"]
    assert (registrant["handle"], registrant["name"]) == (HOLDER, HOLDER_NAME)
    prefix = whoisit.ip("45.64.8.0/24")
    assert (prefix["handle"], prefix["network"]) == ("45.64.8.0/24",
                                                     IPv4Network("45.64.8.0/24"))
    v6 = whoisit.ip("2a0f:1000:10::1")
    # whoisit upper-cases handles.
    assert (v6["handle"], v6["network"]) == ("2A0F:1000:10::/48",
                                             IPv6Network("2a0f:1000:10::/48"))
    asn = whoisit.asn(328001)
    assert (asn["handle"], asn["name"], asn["asn_range"]) == ("AS328001", "KE-AS",
                                                              [328001, 328001])
    ent = whoisit.entity(HOLDER, rir="local")
    assert (ent["handle"], ent["name"]) == (HOLDER, HOLDER_NAME)
    with pytest.raises(whoisit.errors.ResourceDoesNotExist):
        whoisit.ip("45.65.0.1")
    # An AS number no bootstrap entry covers goes to a fallback: the local one here.
    with pytest.raises(whoisit.errors.ResourceDoesNotExist):
        whoisit.asn(1)


# -- ipwhois -------------------------------------------------------------------------------------

@pytest.fixture
def ipwhois_local(base: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """ipwhois's module-level URLs (every RIR's and the bootstrap's) pointed at loopback."""
    local = {"ip_url": f"{base}/ip/{{0}}", "entity_url": f"{base}/entity/{{0}}"}
    for rir in list(ipwhois_rdap.RIR_RDAP):
        monkeypatch.setitem(ipwhois_rdap.RIR_RDAP, rir, dict(local))
    monkeypatch.setattr(ipwhois_rdap, "BOOTSTRAP_URL", base)
    return base


def _net(address: str) -> Net:
    # No proxy handler from the environment: straight to loopback.
    return Net(address, timeout=10,
               proxy_opener=urllib.request.build_opener(urllib.request.ProxyHandler({})))


def test_ipwhois(ipwhois_local: str) -> None:
    got = ipwhois_rdap.RDAP(_net("45.64.2.7")).lookup(asn_data={"asn_registry": "arin"},
                                                       depth=0, retry_count=0)
    net = got["network"]
    assert (net["handle"], net["name"], net["country"]) == (
        "45.64.1.0-45.64.3.255", "KE-NET-1", "KE")
    assert net["cidr"] == "45.64.1.0/24, 45.64.2.0/23"
    assert (net["start_address"], net["end_address"], net["ip_version"]) == (
        "45.64.1.0", "45.64.3.255", "v4")
    assert net["parent_handle"] == "POOL-45.64.0.0/16"
    assert got["entities"] == [HOLDER]
    holder = got["objects"][HOLDER]
    assert (holder["contact"]["name"], holder["roles"]) == (HOLDER_NAME, ["registrant"])
    v6 = ipwhois_rdap.RDAP(_net("2a0f:1000:10::1")).lookup(
        asn_data={"asn_registry": "ripencc"}, depth=0, retry_count=0)
    assert (v6["network"]["handle"], v6["network"]["cidr"]) == ("2a0f:1000:10::/48",
                                                                "2a0f:1000:10::/48")
    # Through its bootstrap URL, and with depth=1 (it then fetches the entity itself).
    deep = ipwhois_rdap.RDAP(_net("45.64.8.9")).lookup(bootstrap=True, depth=1,
                                                        retry_count=0)
    assert (deep["network"]["handle"], deep["network"]["cidr"]) == ("45.64.8.0/24",
                                                                    "45.64.8.0/24")
    assert deep["objects"][HOLDER]["contact"]["name"] == HOLDER_NAME


def test_ipwhois_prefix_query(ipwhois_local: str) -> None:
    """ipwhois looks up addresses only; a prefix answer is fetched with its own HTTP
    client and read by its own parser."""
    net = _net("45.64.2.0")
    answer = net.get_http_json(url=f"{ipwhois_local}/ip/45.64.2.0/23", retry_count=0)
    got = ipwhois_rdap.RDAP(net).lookup(response=answer, asn_data={"asn_registry": "arin"},
                                        depth=0)
    assert (got["network"]["handle"], got["network"]["cidr"]) == (
        "45.64.1.0-45.64.3.255", "45.64.1.0/24, 45.64.2.0/23")
    wider = net.get_http_json(url=f"{ipwhois_local}/ip/45.64.0.0/20", retry_count=0)
    pool = ipwhois_rdap.RDAP(net).lookup(response=wider, asn_data={"asn_registry": "arin"},
                                         depth=0)
    assert (pool["network"]["handle"], pool["network"]["type"]) == ("POOL-45.64.0.0/16",
                                                                    "POOL")
