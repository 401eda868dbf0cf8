"""Shared registry fixtures: a council's pools and the dates the RDAP tests register under."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from comity.registry.resources import parse_block
from comity.registry.services import Registry

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
REGISTERED = dt.datetime(2025, 11, 5, 8, 30, tzinfo=dt.UTC)
COUNCIL = "council-east"
EAST_POOLS = (("45.64.0.0/16", "East IPv4"), ("2a0f:1000::/32", "East IPv6"),
              ("AS328000-AS328999", "East AS numbers"))


def add_east_pools(registry: Registry, session: Session) -> None:
    """The council's three pools (IPv4, IPv6, AS numbers), registered at NOW."""
    for block, name in EAST_POOLS:
        registry.add_pool(session, registry=COUNCIL, block=parse_block(block), name=name,
                          now=NOW)
