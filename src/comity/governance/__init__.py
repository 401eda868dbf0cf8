"""Councils: proposals, signed ballots and sequenced decisions, governing a registry by vote."""

from __future__ import annotations

__all__: list[str] = []
