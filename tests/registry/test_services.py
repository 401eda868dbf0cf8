"""The registry's integrity rules, lookups and digest, on both storage backends."""

from __future__ import annotations

import datetime as dt

import pytest

from comity.db import read_scope, session_scope
from comity.node import Node
from comity.registry.errors import (
    InvalidResourceError,
    NotFoundError,
    OutsidePoolError,
    OverlapError,
)
from comity.registry.resources import parse_block
from comity.registry.services import LOCAL
from tests.support import LocalFederation

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def pool(node: Node, block: str, registry: str = LOCAL, name: str = "pool") -> None:
    with session_scope(node.sessions) as s:
        node.registry.add_pool(s, registry=registry, block=parse_block(block), name=name,
                               now=NOW)


def delegate(node: Node, block: str, registry: str = LOCAL, **kw: object) -> None:
    kw.setdefault("status", "allocated")
    with session_scope(node.sessions) as s:
        node.registry.delegate(s, registry=registry, block=parse_block(block), now=NOW,
                               **kw)  # type: ignore[arg-type]


def count(node: Node) -> int:
    with read_scope(node.sessions) as s:
        return node.registry.count(s)


@pytest.fixture
def node(fed: LocalFederation) -> Node:
    n = fed.add("a").node
    pool(n, "41.0.0.0/8", name="AFRINIC space")
    pool(n, "AS36864-AS37887")
    pool(n, "2c0f:f000::/20")
    pool(n, "196.0.0.0/8", registry="council-x")
    return n


@pytest.mark.parametrize(("block", "registry"), [
    ("41.0.0.0/8", LOCAL),         # the same pool again
    ("41.128.0.0/9", LOCAL),       # inside it
    ("40.0.0.0/7", LOCAL),         # around it
    ("40.255.255.0-41.0.0.5", LOCAL),  # across its start
    ("196.255.0.0/16", LOCAL),     # inside another authority's pool
    ("41.1.0.0/16", "council-x"),  # an authority may not take another's space
    ("AS37000-AS38000", LOCAL),
    ("2c0f:f800::/21", LOCAL),
])
def test_overlapping_pools_are_refused(node: Node, block: str, registry: str) -> None:
    with pytest.raises(OverlapError):
        pool(node, block, registry)
    with read_scope(node.sessions) as s:
        assert len(node.registry.pools(s)) == 4


def test_touching_pools_are_not_overlapping(node: Node) -> None:
    pool(node, "42.0.0.0/8")
    pool(node, "40.0.0.0/8")
    pool(node, "AS37888")
    with read_scope(node.sessions) as s:
        assert len(node.registry.pools(s, LOCAL)) == 6


@pytest.mark.parametrize(("block", "registry"), [
    ("42.0.0.0/24", LOCAL),           # in no pool
    ("196.1.0.0/16", LOCAL),          # in council-x's pool
    ("41.0.0.0/24", "council-x"),     # council-x delegating in the local pool
    ("40.255.255.0-41.0.0.255", LOCAL),  # half in a pool
    ("AS37887-AS37888", LOCAL),       # runs out of the pool
    ("2c0f::/16", LOCAL),             # larger than the pool
])
def test_delegation_outside_its_registry_pools_is_refused(node: Node, block: str,
                                                           registry: str) -> None:
    with pytest.raises(OutsidePoolError):
        delegate(node, block, registry)
    assert count(node) == 0


def test_overlapping_delegations_are_refused(node: Node) -> None:
    delegate(node, "41.0.0.0-41.0.4.255", holder="H1-AFRINIC")  # 1280 addresses
    delegate(node, "41.0.5.0/24")  # touching: allowed
    for block in ("41.0.0.0-41.0.4.255", "41.0.4.0/24", "41.0.0.0/16", "41.0.4.255",
                  "41.0.4.128-41.0.5.3"):
        with pytest.raises(OverlapError):
            delegate(node, block)
    delegate(node, "AS36864-AS36870")
    with pytest.raises(OverlapError):
        delegate(node, "AS36870")
    assert count(node) == 3


def test_a_council_prefix_must_be_aligned(node: Node) -> None:
    for block in ("41.0.0.0-41.0.4.255", "41.0.1.0-41.0.2.255"):  # 1280; 512 misaligned
        with pytest.raises(InvalidResourceError, match="not one CIDR prefix"):
            delegate(node, block, require_prefix=True)
    delegate(node, "41.0.0.0/22", require_prefix=True)
    delegate(node, "AS36864-AS36866", require_prefix=True)  # AS ranges have no prefix
    delegate(node, "41.0.4.0-41.0.8.255")  # an imported count needs no alignment
    assert count(node) == 3


def test_bad_status_is_refused(node: Node) -> None:
    with pytest.raises(InvalidResourceError, match="status"):
        delegate(node, "41.0.0.0/24", status="available")


def test_lookup_returns_the_most_specific(node: Node) -> None:
    delegate(node, "41.0.0.0-41.0.4.255", holder="H1-AFRINIC", country="ZA")
    with read_scope(node.sessions) as s:
        found = node.registry.lookup(s, parse_block("41.0.4.200"))
        assert found.delegation is not None
        assert found.pool is None
        assert found.delegation.holder == "H1-AFRINIC"
        assert str(found.block) == "41.0.0.0-41.0.4.255"
        assert node.registry.lookup(s, parse_block("41.0.2.0/24")).delegation is not None
        # Not wholly inside the delegation: the pool answers.
        across = node.registry.lookup(s, parse_block("41.0.4.0/23"))
        assert across.delegation is None
        assert across.pool is not None
        assert across.pool.name == "AFRINIC space"
        free = node.registry.lookup(s, parse_block("41.200.0.1"))
        assert free.delegation is None
        assert str(free.block) == "41.0.0.0/8"
        assert node.registry.lookup(s, parse_block("AS37000")).pool is not None
        other = node.registry.lookup(s, parse_block("196.1.1.1")).pool
        assert other is not None
        assert other.authority == "council-x"


@pytest.mark.parametrize("block", ["8.8.8.8", "AS1", "2001:db8::/32", "40.0.0.0/7"])
def test_lookup_outside_everything_is_not_found(node: Node, block: str) -> None:
    with read_scope(node.sessions) as s, pytest.raises(NotFoundError):
        node.registry.lookup(s, parse_block(block))


ROWS = [("41.0.0.0-41.0.4.255", "H1-AFRINIC", "ZA"), ("41.0.8.0/22", "H2-AFRINIC", "EG"),
        ("AS36864-AS36870", "H1-AFRINIC", "ZA"), ("2c0f:f000::/32", None, None)]
POOLS = ["41.0.0.0/8", "AS36864-AS37887", "2c0f:f000::/20"]


def test_digest_follows_the_rows_not_the_order_they_were_written(fed: LocalFederation) -> None:
    a, b = fed.add("a").node, fed.add("b").node
    for block in POOLS:
        pool(a, block)
    for block, holder, cc in ROWS:
        delegate(a, block, holder=holder, country=cc)
    for block in reversed(POOLS):
        pool(b, block)
    for block, holder, cc in reversed(ROWS):
        delegate(b, block, holder=holder, country=cc)

    def digest(n: Node, registry: str = LOCAL) -> str:
        with read_scope(n.sessions) as s:
            return n.registry.digest(s, registry)

    assert digest(a) == digest(b)
    assert digest(a, "council-x") == digest(b, "council-x") != digest(a)
    before = digest(a)
    delegate(a, "41.1.0.0/16", holder="H3-AFRINIC")
    assert digest(a) != before == digest(b)
    delegate(b, "41.1.0.0/16", holder="H3-AFRINIC")
    assert digest(a) == digest(b)
    # A field the decision determined changes the digest too.
    delegate(a, "41.2.0.0/16", status="reserved")
    delegate(b, "41.2.0.0/16", status="assigned")
    assert digest(a) != digest(b)
