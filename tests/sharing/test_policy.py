"""The release rule, exhaustively: every level, origin and kind of requester."""

from __future__ import annotations

import pytest

from comity.agreements.schemas import TLP
from comity.sharing.policy import Holding, Requester, may_release

ME, PARTY, COMMUNITY, OUTSIDER, AUTHOR = "me", "party", "community", "outsider", "author"

# (level, written here?) -> who may receive it; every requester is already allowed on the
# collection, and for an object written here AUTHOR is just another party.
EXPECTED: dict[tuple[TLP, bool], set[str]] = {
    (TLP.CLEAR, True): {PARTY, COMMUNITY, OUTSIDER, AUTHOR},
    (TLP.GREEN, True): {PARTY, COMMUNITY, OUTSIDER, AUTHOR},
    (TLP.AMBER, True): {PARTY, COMMUNITY, OUTSIDER, AUTHOR},
    (TLP.AMBER_STRICT, True): {PARTY, COMMUNITY, OUTSIDER, AUTHOR},
    (TLP.RED, True): {PARTY},  # only the named recipient
    (TLP.CLEAR, False): {PARTY, COMMUNITY, OUTSIDER, AUTHOR},
    (TLP.GREEN, False): {COMMUNITY, AUTHOR},  # the agreement it came under
    (TLP.AMBER, False): {AUTHOR},
    (TLP.AMBER_STRICT, False): {AUTHOR},
    (TLP.RED, False): {AUTHOR},
}


@pytest.mark.parametrize(("level", "ours"), list(EXPECTED))
def test_release_matrix(level: TLP, ours: bool) -> None:
    holding = Holding(tlp=level, origin=None if ours else AUTHOR,
                      received_under_parties=() if ours else (AUTHOR, COMMUNITY, ME),
                      recipients=(PARTY,) if ours else ())
    got = {who for who in (PARTY, COMMUNITY, OUTSIDER, AUTHOR)
           if may_release(holding, Requester(who), default=TLP.AMBER, ceiling=TLP.RED)}
    assert got == EXPECTED[(level, ours)]
    # The local operator sees everything, whatever the level.
    assert may_release(holding, Requester(None), default=TLP.AMBER, ceiling=None)


@pytest.mark.parametrize("ceiling", list(TLP))
def test_nothing_above_the_ceiling_leaves(ceiling: TLP) -> None:
    order = list(TLP)
    for level in TLP:
        released = may_release(Holding(tlp=level, recipients=(PARTY,)), Requester(PARTY),
                               default=TLP.AMBER, ceiling=ceiling)
        assert released == (order.index(level) <= order.index(ceiling))


def test_unmarked_objects_take_the_default_level() -> None:
    unmarked = Holding(tlp=None, origin=AUTHOR, received_under_parties=(COMMUNITY,))
    assert may_release(unmarked, Requester(COMMUNITY), default=TLP.GREEN, ceiling=TLP.RED)
    assert not may_release(unmarked, Requester(COMMUNITY), default=TLP.AMBER, ceiling=TLP.RED)
    assert not may_release(Holding(tlp=None), Requester(PARTY), default=TLP.RED,
                           ceiling=TLP.AMBER)
