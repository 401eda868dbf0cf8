"""The council's messages: ``council.request`` (member to chair), ``council.stage`` (chair to all).

Both travel under the council's own agreement (the service checks that the
agreement a message came under is the council its body names). Bodies are
checked for shape here; what they change is decided by
:class:`~comity.governance.services.Governance`, attached once the node is
built. Council proceedings are public to the council: bodies are not sealed.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from comity.agreements.authorization import Purpose
from comity.federation.errors import InvalidBodyError
from comity.federation.registry import MessageType, MessageTypes, ReceiveContext
from comity.governance.services import REQUEST_MESSAGE, STAGE_MESSAGE

if TYPE_CHECKING:
    from comity.governance.services import Governance

__all__ = ["CouncilHandlers", "register"]

_ACTIONS = {"propose": {"council", "action", "document"},
            "ballot": {"council", "action", "document"},
            "appeal": {"council", "action", "document"},
            "withdraw": {"council", "action", "proposal"}}
_STAGE_KEYS = {"council", "n", "at", "proposal", "stage", "digest"}
_STAGE_EXTRA = {"discussion": {"proposal_doc"}, "voting": set(), "last-call": {"tally", "ballots"},
                "rejected": {"tally", "ballots"}, "adopted": {"tally", "ballots"},
                "appealed": {"appeal"}, "withdrawn": set()}


def _uuid(value: object, what: str) -> None:
    try:
        if not isinstance(value, str) or str(uuid.UUID(value)) != value:
            raise ValueError
    except ValueError:
        raise InvalidBodyError(f"{what} must be a lowercase UUID") from None


class CouncilHandlers:
    """Late binding between the message types and the governance service."""

    def __init__(self) -> None:
        self.service: Governance | None = None

    def _svc(self) -> Governance:
        if self.service is None:  # pragma: no cover - wiring error
            raise RuntimeError("governance service not attached")
        return self.service

    @staticmethod
    def validate_request(body: dict[str, Any]) -> Purpose:
        action = body.get("action")
        if action not in _ACTIONS:
            raise InvalidBodyError(f"action must be one of {', '.join(sorted(_ACTIONS))}")
        if set(body) != _ACTIONS[action]:
            raise InvalidBodyError(f"a {action} request is {sorted(_ACTIONS[action])}")
        _uuid(body["council"], "council")
        if action == "withdraw":
            _uuid(body["proposal"], "proposal")
        elif not isinstance(body["document"], dict):
            raise InvalidBodyError("document must be a signed document")
        return Purpose()

    @staticmethod
    def validate_stage(body: dict[str, Any]) -> Purpose:
        stage = body.get("stage")
        if stage not in _STAGE_EXTRA:
            raise InvalidBodyError(f"stage must be one of {', '.join(sorted(_STAGE_EXTRA))}")
        allowed = _STAGE_KEYS | _STAGE_EXTRA[stage]
        optional = {"tally", "ballots"} if stage == "adopted" else set()
        if not (allowed - optional) <= set(body) <= allowed:
            raise InvalidBodyError(f"a {stage} stage change is {sorted(allowed)}")
        _uuid(body["council"], "council")
        _uuid(body["proposal"], "proposal")
        n = body["n"]
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10**9:
            raise InvalidBodyError("n must be a positive integer")
        if not isinstance(body["digest"], str) or len(body["digest"]) != 64:
            raise InvalidBodyError("digest must be a SHA-256 in hex")
        if "ballots" in body and (not isinstance(body["ballots"], list)
                                  or len(body["ballots"]) > 10_000):
            raise InvalidBodyError("ballots must be a list of signed ballots")
        return Purpose()

    def on_request(self, ctx: ReceiveContext) -> None:
        self._svc().on_request(ctx)

    def on_stage(self, ctx: ReceiveContext) -> None:
        self._svc().on_stage(ctx)


def register(types: MessageTypes, handlers: CouncilHandlers) -> None:
    """Register the council message types."""
    types.register(MessageType(REQUEST_MESSAGE, handlers.validate_request,
                               on_receive=handlers.on_request))
    types.register(MessageType(STAGE_MESSAGE, handlers.validate_stage,
                               on_receive=handlers.on_stage))
