"""Local API authentication: bearer tokens for this node's own operators and tools."""

from __future__ import annotations

__all__: list[str] = []
