"""Number resources: strict parsing, prefix lengths, CIDR splits and the stored keys."""

from __future__ import annotations

import ipaddress
import random

import pytest

from comity.registry.errors import InvalidResourceError
from comity.registry.resources import Block, Kind, ipv4_count_block, key, parse_block, unkey


@pytest.mark.parametrize(("text", "kind", "first", "last"), [
    ("45.64.0.0/16", Kind.IPV4, 0x2D400000, 0x2D40FFFF),
    ("10.0.0.1", Kind.IPV4, 0x0A000001, 0x0A000001),
    ("0.0.0.0/0", Kind.IPV4, 0, 2**32 - 1),
    ("2a0f:1000::/32", Kind.IPV6, 0x2A0F1000 << 96, (0x2A0F1000 << 96) + 2**96 - 1),
    ("2001:db8::/128", Kind.IPV6, 0x20010DB8 << 96, 0x20010DB8 << 96),
    ("10.0.0.0-10.0.4.255", Kind.IPV4, 0x0A000000, 0x0A0004FF),
    ("2001:db8::-2001:db8::ff", Kind.IPV6, 0x20010DB8 << 96, (0x20010DB8 << 96) + 0xFF),
    ("AS328001", Kind.ASN, 328001, 328001),
    ("as328001", Kind.ASN, 328001, 328001),
    ("328001", Kind.ASN, 328001, 328001),
    ("AS1-AS9", Kind.ASN, 1, 9),
    ("AS4294967295", Kind.ASN, 2**32 - 1, 2**32 - 1),
])
def test_parse_block(text: str, kind: Kind, first: int, last: int) -> None:
    assert parse_block(text) == Block(kind, first, last)


@pytest.mark.parametrize(("text", "why"), [
    ("45.64.0.1/16", "host bits"),               # host bits set
    ("2a0f:1000::1/32", "host bits"),
    ("AS4294967296", "32-bit"),                  # over 2**32 - 1
    ("AS9-AS1", "ends before it starts"),        # reversed AS range
    ("10.0.0.9-10.0.0.1", "run upwards"),        # reversed address range
    ("10.0.0.0-2001:db8::", "run upwards"),      # two families
    ("10.0.0.0/33", "not an address"),
    ("256.0.0.0", "not an address"),
    ("banana", "not an address"),
    ("10.0.0.x-10.0.0.9", "not an address range"),
    ("", "not an address"),
])
def test_parse_block_rejects(text: str, why: str) -> None:
    with pytest.raises(InvalidResourceError, match=why):
        parse_block(text)


@pytest.mark.parametrize(("first", "last"), [(5, 4), (-1, 3), (0, 2**32)])
def test_block_must_be_a_range_in_its_space(first: int, last: int) -> None:
    with pytest.raises(InvalidResourceError):
        Block(Kind.IPV4, first, last)


@pytest.mark.parametrize(("text", "length"), [
    ("45.64.0.0/16", 16), ("10.0.0.1", 32), ("0.0.0.0/0", 0), ("2a0f:1000::/32", 32),
    ("10.0.0.0-10.0.4.255", None),   # 1280 addresses: not a power of two
    ("10.0.0.128-10.0.1.127", None),  # 256 addresses, but not aligned on 256
    ("AS1-AS8", None),
])
def test_prefix_length(text: str, length: int | None) -> None:
    assert parse_block(text).prefix_length == length


def test_networks_of_a_non_power_of_two_ipv4_count() -> None:
    block = ipv4_count_block("41.0.0.0", 1280)  # as in delegated-extended files
    assert block.size == 1280
    assert [str(n) for n in block.networks()] == ["41.0.0.0/22", "41.0.4.0/24"]
    assert str(block) == "41.0.0.0-41.0.4.255"
    odd = ipv4_count_block("196.1.0.0", 768)
    assert [str(n) for n in odd.networks()] == ["196.1.0.0/23", "196.1.2.0/24"]
    assert sum(n.num_addresses for n in odd.networks()) == 768


def test_an_aligned_block_is_one_network() -> None:
    block = ipv4_count_block("41.0.0.0", 1024)
    assert [str(n) for n in block.networks()] == ["41.0.0.0/22"]
    assert str(block) == "41.0.0.0/22"


@pytest.mark.parametrize(("start", "count"), [
    ("41.0.0.0", 0), ("255.255.255.0", 257), ("41.0.0", 256), ("041.0.0.0", 256)])
def test_ipv4_count_block_rejects(start: str, count: int) -> None:
    with pytest.raises(InvalidResourceError):
        ipv4_count_block(start, count)


def test_asn_has_no_addresses() -> None:
    with pytest.raises(TypeError):
        parse_block("AS1-AS4").networks()


@pytest.mark.parametrize("kind", list(Kind))
def test_key_order_is_numeric_order(kind: Kind) -> None:
    rng = random.Random(7)
    top = 2**kind.bits - 1
    values = [0, 1, 9, 10, 15, 16, 255, 256, top - 1, top]
    values += [rng.randrange(0, top + 1) for _ in range(2000)]
    values += [rng.randrange(0, 2**rng.randrange(1, kind.bits + 1)) for _ in range(2000)]
    keys = [key(kind, v) for v in values]
    assert all(len(k) == kind.width for k in keys)
    assert sorted(keys) == [key(kind, v) for v in sorted(values)]
    assert [unkey(k) for k in keys] == values


def test_block_keys_round_trip() -> None:
    for text in ("41.0.0.0-41.0.4.255", "2c0f:fff8::/29", "AS1228-AS1231"):
        b = parse_block(text)
        assert Block.from_keys(b.kind.value, b.start_key, b.end_key) == b
        assert parse_block(str(b)) == b


def test_block_from_network() -> None:
    net = ipaddress.ip_network("2c0f:fff8::/29")
    assert Block.from_network(net).networks() == [net]
