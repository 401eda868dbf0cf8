"""Number resources as closed integer ranges: IPv4 and IPv6 blocks, AS number ranges.

Everything the registry stores or looks up is a :class:`Block` — a kind
(``ipv4``, ``ipv6``, ``asn``) and a closed range ``first..last`` of integers.
Stored, each end is a fixed-width lowercase hex key per kind (8 digits for
IPv4 and AS numbers, 32 for IPv6), so that text order is numeric order on
every database and a longest-prefix lookup is one index seek: among blocks
that never overlap, the one covering ``x`` is the one with the greatest
start not after ``x``, if it reaches ``x``.

Parsing is strict (Python's :mod:`ipaddress`): host bits set in a prefix,
a count that runs past the end of the space, or an AS number over 32 bits
is an :class:`~comity.registry.errors.InvalidResourceError` naming the
value. Input is untrusted.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass

from comity.registry.errors import InvalidResourceError

__all__ = ["Block", "Kind", "key", "parse_block", "unkey"]

_ASN_MAX = 2**32 - 1
_ASN = re.compile(r"(?:AS)?([0-9]{1,10})", re.IGNORECASE)
_ASN_RANGE = re.compile(r"(?:AS)?([0-9]{1,10})\s*-\s*(?:AS)?([0-9]{1,10})", re.IGNORECASE)


class Kind(enum.StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    ASN = "asn"

    @property
    def bits(self) -> int:
        return 128 if self is Kind.IPV6 else 32

    @property
    def width(self) -> int:
        """Hex digits of a stored key."""
        return self.bits // 4


def key(kind: Kind, value: int) -> str:
    """The stored form of ``value``: fixed-width hex, so text order is numeric order."""
    return format(value, f"0{kind.width}x")


def unkey(text: str) -> int:
    return int(text, 16)


@dataclass(frozen=True, order=True)
class Block:
    """A closed range of one kind of number resource."""

    kind: Kind
    first: int
    last: int

    def __post_init__(self) -> None:
        top = 2**self.kind.bits - 1
        if not 0 <= self.first <= self.last <= top:
            raise InvalidResourceError(f"{self.kind.value} range {self.first}..{self.last} is "
                                       "empty or outside the number space")

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    @property
    def start_key(self) -> str:
        return key(self.kind, self.first)

    @property
    def end_key(self) -> str:
        return key(self.kind, self.last)

    def contains(self, other: Block) -> bool:
        return self.kind == other.kind and self.first <= other.first and other.last <= self.last

    def overlaps(self, other: Block) -> bool:
        return self.kind == other.kind and self.first <= other.last and other.first <= self.last

    # -- addresses ----------------------------------------------------------------

    def _address(self, value: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        if self.kind is Kind.IPV4:
            return ipaddress.IPv4Address(value)
        if self.kind is Kind.IPV6:
            return ipaddress.IPv6Address(value)
        raise TypeError("AS numbers have no addresses")

    @property
    def start_address(self) -> str:
        return str(self._address(self.first))

    @property
    def end_address(self) -> str:
        return str(self._address(self.last))

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The fewest CIDR prefixes that make up the block (one when it is aligned)."""
        return list(ipaddress.summarize_address_range(self._address(self.first),
                                                      self._address(self.last)))

    @property
    def prefix_length(self) -> int | None:
        """The prefix length when the block is exactly one CIDR prefix, else None."""
        if self.kind is Kind.ASN:
            return None
        size = self.size
        if size & (size - 1) or self.first % size:
            return None
        return self.kind.bits - (size.bit_length() - 1)

    def __str__(self) -> str:
        if self.kind is Kind.ASN:
            return f"AS{self.first}" if self.first == self.last else f"AS{self.first}-AS{self.last}"
        length = self.prefix_length
        if length is not None:
            return f"{self.start_address}/{length}"
        return f"{self.start_address}-{self.end_address}"

    @classmethod
    def from_network(cls, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Block:
        kind = Kind.IPV4 if net.version == 4 else Kind.IPV6
        return cls(kind, int(net.network_address), int(net.broadcast_address))

    @classmethod
    def from_keys(cls, kind: str, start_key: str, end_key: str) -> Block:
        return cls(Kind(kind), unkey(start_key), unkey(end_key))


def parse_block(text: str) -> Block:
    """A prefix (``45.64.0.0/16``, ``2a0f:1000::/32``), a single address, an address
    range (``a-b``), an AS number (``AS328001``, ``328001``) or AS range (``AS1-AS9``).

    Raises:
        InvalidResourceError: not one of these, a prefix with host bits set,
            or out of range.
    """
    value = text.strip()
    asn = _ASN_RANGE.fullmatch(value) or _ASN.fullmatch(value)
    if asn:
        numbers = [int(g) for g in asn.groups()]
        if any(n > _ASN_MAX for n in numbers):
            raise InvalidResourceError(f"{text!r}: AS numbers are 32-bit (at most {_ASN_MAX})")
        if numbers[-1] < numbers[0]:
            raise InvalidResourceError(f"{text!r}: the range ends before it starts")
        return Block(Kind.ASN, numbers[0], numbers[-1])
    if "-" in value:
        lo, _, hi = value.partition("-")
        try:
            a, b = ipaddress.ip_address(lo.strip()), ipaddress.ip_address(hi.strip())
        except ValueError:
            raise InvalidResourceError(f"{text!r} is not an address range") from None
        if a.version != b.version or int(b) < int(a):
            raise InvalidResourceError(f"{text!r}: the range must run upwards within one family")
        return Block(Kind.IPV4 if a.version == 4 else Kind.IPV6, int(a), int(b))
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as e:
        raise InvalidResourceError(f"{text!r} is not an address, prefix or AS number: {e}"
                                   ) from None
    return Block.from_network(net)


def ipv4_count_block(start: str, count: int) -> Block:
    """The IPv4 block a delegated-statistics record names: a start and a count of addresses
    (not necessarily a power of two).

    Raises:
        InvalidResourceError
    """
    try:
        first = int(ipaddress.IPv4Address(start))
    except ValueError:
        raise InvalidResourceError(f"{start!r} is not an IPv4 address") from None
    if count < 1:
        raise InvalidResourceError(f"an IPv4 count must be positive, not {count}")
    return Block(Kind.IPV4, first, first + count - 1)
