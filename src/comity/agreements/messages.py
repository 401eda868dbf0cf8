"""The agreement control messages and what receiving each one changes.

``agreement.propose`` and ``agreement.sign`` carry the full document and the
sender's signature over it; ``agreement.withdraw``, ``agreement.suspend`` and
``agreement.resume`` a party's act on an agreement both sides hold. These are
the control types: they travel between peers that have exchanged cards,
without an agreement in force, and each handler checks that the sender is a
party to the agreement it acts on.
"""

from __future__ import annotations

from typing import Any

from comity.agreements.authorization import Purpose
from comity.agreements.errors import (
    AgreementNotFoundError,
    AgreementNotInForceError,
    NoAgreementError,
    NotAPartyError,
)
from comity.agreements.services import (
    apply_party_act,
    get_agreement,
    receive_signed_document,
)
from comity.clock import parse_ts
from comity.federation.errors import InvalidBodyError
from comity.federation.registry import MessageType, MessageTypes, ReceiveContext

__all__ = ["register"]


def _validate_signed(body: dict[str, Any]) -> Purpose:
    if set(body) != {"document", "signature"}:
        raise InvalidBodyError("body must be {document, signature}")
    return Purpose()


def _validate_act(body: dict[str, Any]) -> Purpose:
    if set(body) != {"agreement_id", "reason", "at"} or not isinstance(
            body["agreement_id"], str) or not isinstance(body["reason"], str) or len(
            body["reason"]) > 2000:
        raise InvalidBodyError("body must be {agreement_id, reason, at}")
    try:
        parse_ts(body["at"])
    except ValueError as e:
        raise InvalidBodyError(str(e)) from e
    return Purpose()


def _on_signed(ctx: ReceiveContext) -> None:
    receive_signed_document(ctx.session, sender_id=ctx.peer.node_id,
                            local_id=ctx.local.node_id, body=ctx.message.body,
                            verify=ctx.verify_party, now=ctx.now)


def _on_act(ctx: ReceiveContext) -> None:
    body = ctx.message.body
    if ctx.message.agreement != body["agreement_id"]:
        raise InvalidBodyError("header.agreement and body.agreement_id differ")
    try:
        view = get_agreement(ctx.session, body["agreement_id"])
    except AgreementNotFoundError as e:
        # Possibly still on its way from another party: the sender retries.
        raise NoAgreementError(str(e)) from e
    if view.effective is None:
        raise AgreementNotInForceError("the agreement is not signed by all parties here yet")
    if ctx.peer.node_id not in view.active_parties:
        raise NotAPartyError("the sender is not an active party to the agreement")
    apply_party_act(ctx.session, view, ctx.peer.node_id, ctx.message.type, body["reason"],
                    parse_ts(body["at"]))


def register(types: MessageTypes) -> None:
    """Register the agreement control message types."""
    for name in ("agreement.propose", "agreement.sign"):
        types.register(MessageType(name, _validate_signed, control=True, on_receive=_on_signed))
    for name in ("agreement.withdraw", "agreement.suspend", "agreement.resume"):
        types.register(MessageType(name, _validate_act, control=True, on_receive=_on_act))
