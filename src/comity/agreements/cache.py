"""A per-process cache of agreement views that is never stale.

Every flush that touches an agreement's rows bumps that agreement's row in
``agreement_generations`` (a session event, so no code path can forget it).
:meth:`AgreementCache.get` reads that one number and reuses the cached view
only if it matches; otherwise it loads the agreement afresh. The authorisation
check on every message therefore costs one small read, not a reload.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, sessionmaker

from comity.agreements.models import (
    AgreementGeneration,
    AgreementSignature,
    AgreementSuspension,
    AgreementVersion,
    AgreementWithdrawal,
)
from comity.agreements.services import AgreementView, get_agreement

__all__ = ["AgreementCache", "track_generations"]

_TOUCHED = "comity.agreements.touched"
_TRACKED = (AgreementVersion, AgreementSignature, AgreementWithdrawal, AgreementSuspension)


def _bump(session: Session, _ctx: Any, _instances: Any) -> None:
    touched = {obj.agreement_id for obj in (*session.new, *session.dirty, *session.deleted)
               if isinstance(obj, _TRACKED)}
    if not touched:
        return
    # Remembered for the rest of the transaction: views of these agreements
    # read now include uncommitted changes and must never be cached.
    session.info.setdefault(_TOUCHED, set()).update(touched)
    conn = session.connection()
    for aid in sorted(touched):
        done = conn.execute(update(AgreementGeneration)
                            .where(AgreementGeneration.agreement_id == aid)
                            .values(generation=AgreementGeneration.generation + 1))
        if done.rowcount == 0:
            conn.execute(AgreementGeneration.__table__.insert().values(  # type: ignore[attr-defined]
                agreement_id=aid, generation=1))


def track_generations(factory: sessionmaker[Session]) -> None:
    """Bump generations on every flush of sessions made by ``factory``."""
    event.listen(factory, "before_flush", _bump)


class AgreementCache:
    """Agreement views by id, checked against their generation on every use."""

    def __init__(self) -> None:
        self._views: dict[str, tuple[int, AgreementView]] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, agreement_id: str) -> AgreementView:
        """The current view of ``agreement_id``.

        Raises:
            AgreementNotFoundError: if this node holds no such agreement.
        """
        if (agreement_id in session.info.get(_TOUCHED, ()) or session.new or session.dirty
                or session.deleted):
            # This transaction changed it (or may be about to): its view is
            # not committed state, so it is neither served from nor put in
            # the cache. A rollback would otherwise leave a view in the cache
            # under a generation number that a later real change reuses.
            return get_agreement(session, agreement_id)
        gen = session.scalar(select(AgreementGeneration.generation).where(
            AgreementGeneration.agreement_id == agreement_id))
        with self._lock:
            hit = self._views.get(agreement_id)
        if hit is not None and gen is not None and hit[0] == gen:
            return hit[1]
        view = get_agreement(session, agreement_id)
        if gen is not None:
            with self._lock:
                self._views[agreement_id] = (gen, view)
        return view
