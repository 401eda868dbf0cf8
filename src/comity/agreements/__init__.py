"""Agreements: cooperation frameworks signed by every party, and the authorisation check."""

from __future__ import annotations

__all__: list[str] = []
