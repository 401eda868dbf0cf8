"""Identity: this node's keys and card, and the peers it trusts."""

from __future__ import annotations

__all__: list[str] = []
