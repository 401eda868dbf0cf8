"""Comity: sovereign nodes cooperating on Internet security and cybercrime.

Every participant runs a node of its own. Nodes know each other by signed node
cards, cooperate under agreements that every party signs, and exchange signed
messages through a durable outbox that loses and duplicates nothing.

The package's public surface is deliberately small: most code lives in domain
packages (``comity.identity``, ``comity.agreements``, ``comity.federation``) and
is reached through the CLI (``comity``), the REST API or the federation
endpoints.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
