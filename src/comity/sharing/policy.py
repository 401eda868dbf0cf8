"""Who may receive an object: TLP 2.0 (and 1.0) enforced at every exit.

Every exit — the TAXII server, sync, export, reports — asks :func:`may_release`
for each object and each recipient; nothing else decides. The rule, for a
recipient that is already allowed on the collection (a party to an agreement
in force that shares it):

============  ==================================  ==========================================
level         an object written here               an object received from another node
============  ==================================  ==========================================
CLEAR         anyone allowed on the collection     anyone allowed on the collection
GREEN         the agreement's parties              the community it came from: the parties
                                                   of the agreement it was received under
AMBER         the agreement's parties              never re-shared
AMBER+STRICT  the agreement's parties              never re-shared
RED           only the named recipient nodes       never re-shared
============  ==================================  ==========================================

An object goes back to the node it came from in any case (nothing is
disclosed), never above the TLP ceiling the agreement sets for the
collection, and an unmarked object counts as the node's default level
(``COMITY_SHARING_DEFAULT_TLP``, AMBER unless set). The local operator (an
API token of this node) sees everything: it is this organisation.

Trust assumptions: the stored origin, agreement and recipients are this
node's own records, set when the object arrived or was written; a peer's
statements inside STIX objects (``created_by_ref``, markings it may have
stripped) never widen what is released, since an unmarked object falls to
the default level.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from comity.agreements.schemas import TLP

__all__ = ["Holding", "Requester", "level_order", "may_release"]

_ORDER = {level: i for i, level in enumerate(TLP)}


def level_order(level: TLP) -> int:
    """CLEAR 0 < GREEN 1 < AMBER 2 < AMBER+STRICT 3 < RED 4."""
    return _ORDER[level]


@dataclass(frozen=True)
class Requester:
    """Who asks: this node's own operator (``node_id`` None) or a peer node."""

    node_id: str | None

    @property
    def local(self) -> bool:
        return self.node_id is None


@dataclass(frozen=True)
class Holding:
    """What this node knows about one stored object version."""

    tlp: TLP | None
    origin: str | None = None  # None: written here
    received_under_parties: Collection[str] = ()  # parties of the agreement it came under
    recipients: Collection[str] = ()  # named recipients of our own TLP:RED object


def may_release(holding: Holding, requester: Requester, *, default: TLP,
                ceiling: TLP | None) -> bool:
    """Whether ``requester`` may receive the object (see the module's table).

    ``ceiling`` is the collection's TLP ceiling under the agreement that lets
    this requester read it (None for the local operator).
    """
    if requester.local:
        return True
    level = holding.tlp or default
    if ceiling is None or level_order(level) > level_order(ceiling):
        return False
    if holding.origin is not None and requester.node_id == holding.origin:
        return True
    if holding.origin is None:
        if level is TLP.RED:
            return requester.node_id in holding.recipients
        return True
    if level is TLP.CLEAR:
        return True
    if level is TLP.GREEN:
        return requester.node_id in holding.received_under_parties
    return False
