"""Ledger: this node's verifiable append-only log of commitments (RFC 9162, C2SP)."""

from __future__ import annotations

__all__: list[str] = []
