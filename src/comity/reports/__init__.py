"""Reports: aggregate statistics over this node's own records (requests sent and received).

Reports only read the local database, which is trusted (see :mod:`comity.db`);
they never contact a peer and never change anything.
"""

from __future__ import annotations

__all__: list[str] = []
