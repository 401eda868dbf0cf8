"""The number registry: pools and delegations of IPv4, IPv6 and AS numbers, served over RDAP."""

from __future__ import annotations

__all__: list[str] = []
