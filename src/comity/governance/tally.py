"""Counting votes: the pure function every member (and any auditor) runs on signed ballots.

One member, one vote: a tally counts at most one ballot per member (the
caller refuses a second one). Abstentions count towards the quorum but not
towards the majority. No clock, no database: given the members, the rules
and the ballots, everyone gets the same result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from comity.agreements.schemas import Majority

__all__ = ["Tally", "count"]


@dataclass(frozen=True)
class Tally:
    members: int
    cast: int
    yes: int
    no: int
    abstain: int
    quorum: int  # ballots needed
    majority: Majority
    quorate: bool
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"members": self.members, "cast": self.cast, "yes": self.yes, "no": self.no,
                "abstain": self.abstain, "quorum": self.quorum,
                "majority": self.majority.value, "quorate": self.quorate,
                "passed": self.passed}


def quorum_of(members: int, quorum_percent: int) -> int:
    """Ballots needed: ``quorum_percent`` of the members, rounded up, at least one."""
    return max(1, math.ceil(members * quorum_percent / 100))


def count(members: Iterable[str], choices: dict[str, str], *, majority: Majority,
          quorum_percent: int | None = None, quorum: int | None = None) -> Tally:
    """The tally of ``choices`` (voter → yes | no | abstain) among ``members``.

    The quorum is ``quorum_percent`` of the members, or ``quorum`` ballots
    when given as a number (to recount a record that states it). Ballots of
    non-members are not counted (the caller refuses them first). A vote
    below quorum neither passes nor fails: it is not a decision.
    """
    if (quorum_percent is None) == (quorum is None):
        raise ValueError("give the quorum as a percentage or as a number, not both")
    roll = set(members)
    valid = {v: c for v, c in choices.items() if v in roll}
    yes = sum(1 for c in valid.values() if c == "yes")
    no = sum(1 for c in valid.values() if c == "no")
    abstain = sum(1 for c in valid.values() if c == "abstain")
    need = quorum if quorum is not None else quorum_of(len(roll), quorum_percent or 100)
    quorate = len(valid) >= need
    if majority is Majority.SIMPLE:
        passed = yes > no
    elif majority is Majority.TWO_THIRDS:
        passed = yes >= 1 and yes >= 2 * no
    else:
        passed = yes >= 1 and no == 0
    return Tally(len(roll), len(valid), yes, no, abstain, need, majority, quorate,
                 quorate and passed)
