"""Federation: signed messages between nodes, through a durable outbox, with receipts."""

from __future__ import annotations

__all__: list[str] = []
