"""Errors of governance: each names the rule a proposal, ballot or decision broke."""

from __future__ import annotations

from comity.problems import Problem

__all__ = [
    "BallotRefusedError",
    "CouncilNotFoundError",
    "GovernanceError",
    "InvalidDocumentError",
    "NotAMemberError",
    "ProposalNotFoundError",
    "QuorumError",
    "StageError",
    "TallyMismatchError",
]


class GovernanceError(Problem):
    slug = "governance"
    title = "Council action refused"


class InvalidDocumentError(GovernanceError):
    slug = "governance-invalid-document"
    status = 422
    title = "Not a valid council document"


class CouncilNotFoundError(GovernanceError):
    slug = "governance-no-council"
    status = 404
    title = "No such council"


class ProposalNotFoundError(GovernanceError):
    slug = "governance-no-proposal"
    status = 404
    title = "No such proposal"


class NotAMemberError(GovernanceError):
    slug = "governance-not-a-member"
    status = 403
    title = "Not a member of the council"


class StageError(GovernanceError):
    """The act is not allowed at the proposal's stage, or not yet (a window still open)."""

    slug = "governance-stage"
    status = 409
    title = "Not allowed at this stage"


class BallotRefusedError(GovernanceError):
    """A double vote, a vote after the window, a ballot for another round or proposal."""

    slug = "governance-ballot-refused"
    status = 409
    title = "Ballot refused"


class QuorumError(GovernanceError):
    slug = "governance-no-quorum"
    status = 409
    title = "Quorum not reached"


class TallyMismatchError(GovernanceError):
    """A decision whose ballots, tally or resulting registry do not match what it claims."""

    slug = "governance-tally-mismatch"
    status = 422
    title = "Decision does not match its ballots"
