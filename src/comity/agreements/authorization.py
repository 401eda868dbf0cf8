"""The one authorisation check every border crossing passes.

Every domain calls :func:`authorize` before anything leaves this node for a
peer, and again when anything arrives from one: an agreement must be named,
held here, signed by all its parties and in force now, both nodes must be
active parties, and what the exchange is about (:class:`Purpose`) must lie
inside the agreement's scope. Each failure has its own error, so the operator
or the peer learns exactly what to fix.

Example::

    authorize(session, agreement_id=aid, local_id=me, peer_id=them,
              purpose=Purpose(request_type="expedited-preservation"), at=now)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from comity.agreements.errors import (
    AgreementEndedError,
    AgreementNotFoundError,
    AgreementNotInForceError,
    NoAgreementError,
    NotAPartyError,
    OutOfScopeError,
)
from comity.agreements.schemas import TLP, AgreementDocument, AgreementStatus, Scope
from comity.agreements.services import AgreementView, get_agreement

__all__ = ["Purpose", "authorize", "check_scope"]

_TLP_ORDER = list(TLP)


@dataclass(frozen=True)
class Purpose:
    """What an exchange is for, checked against an agreement's scope.

    ``None`` and empty tuples mean "not about that"; anything given must be
    inside the scope.
    """

    request_type: str | None = None
    offence_category: str | None = None
    data_categories: tuple[str, ...] = ()
    language: str | None = None
    collection: str | None = None
    tlp: TLP | None = None


# -- authorisation ------------------------------------------------------------

def authorize(
    session: Session, *, agreement_id: str | None, local_id: str, peer_id: str,
    purpose: Purpose, at: dt.datetime,
    load: Callable[[Session, str], AgreementView] | None = None,
) -> AgreementDocument:
    """Allow an exchange between this node and ``peer_id``, or raise why not.

    Every domain calls this before anything crosses a border, in either
    direction.

    Returns:
        The agreement version in force that allows the exchange.

    Raises:
        NoAgreementError: no agreement named, or none with that id here.
        NotAPartyError: this node or the peer is not (or no longer) a party.
        AgreementNotInForceError: not yet fully signed, suspended or not yet
            valid (may change by waiting).
        AgreementEndedError: expired or terminated (will not).
        OutOfScopeError: the purpose falls outside the agreement's scope.

    ``load`` replaces :func:`get_agreement` (e.g. by a cache's ``get``).
    """
    if agreement_id is None:
        raise NoAgreementError("this exchange must name the agreement it is made under")
    try:
        view = (load or get_agreement)(session, agreement_id)
    except AgreementNotFoundError as e:
        raise NoAgreementError(f"no agreement {agreement_id!r} is held here") from e
    doc = view.effective or view.documents[view.latest.version]
    for node, who in ((local_id, "this node"), (peer_id, "the peer")):
        if node not in doc.parties:
            raise NotAPartyError(f"{who} ({node}) is not a party to agreement {agreement_id}")
        if node in view.withdrawn:
            raise NotAPartyError(f"{who} ({node}) has withdrawn from agreement {agreement_id}")
    status = view.status(at)
    if status in (AgreementStatus.EXPIRED, AgreementStatus.TERMINATED):
        # Final: unlike a suspension or a signature still in flight, this
        # will not change by waiting, so senders must not retry.
        raise AgreementEndedError(f"agreement {agreement_id} is {status.value}")
    if status != AgreementStatus.IN_FORCE or view.effective is None:
        raise AgreementNotInForceError(f"agreement {agreement_id} is {status.value}")
    check_scope(view.effective.scope, purpose)
    return view.effective


def check_scope(scope: Scope, purpose: Purpose) -> None:
    """Raise :class:`OutOfScopeError` naming the first facet out of scope."""
    def need(value: str | None, allowed: Iterable[str], facet: str) -> None:
        if value is not None and value not in allowed:
            raise OutOfScopeError(f"{facet} {value!r} is outside the agreement's scope",
                                  facet=facet)

    need(purpose.request_type, scope.request_types, "request type")
    need(purpose.offence_category, scope.offence_categories, "offence category")
    for cat in purpose.data_categories:
        need(cat, scope.data_categories, "data category")
    need(purpose.language, scope.languages, "language")
    if purpose.collection is not None:
        match = [c for c in scope.collections if c.name == purpose.collection]
        if not match:
            raise OutOfScopeError(f"collection {purpose.collection!r} is not shared under "
                                  "this agreement", facet="collection")
        if purpose.tlp is not None and (
                _TLP_ORDER.index(purpose.tlp) > _TLP_ORDER.index(match[0].tlp_ceiling)):
            raise OutOfScopeError(
                f"TLP:{purpose.tlp.value.upper()} is above the collection's ceiling "
                f"TLP:{match[0].tlp_ceiling.value.upper()}", facet="tlp")


