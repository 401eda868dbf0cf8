"""Sharing security information: STIX 2.1 over TAXII 2.1, TLP enforced at every exit."""

from __future__ import annotations

__all__: list[str] = []
