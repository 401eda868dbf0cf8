"""Agreement lifecycle: drafting, proposing, signing, amending and the parties' acts.

Lifecycle of a version: ``draft`` (local only) -> ``proposed`` (the proposer
signed it and sent it to every party) -> ``signed`` (every party's signature
over the same canonical bytes is held). A signed version is *in force* while
its validity window covers the moment asked about, no party has it suspended,
and at least two parties remain; a later signed version *supersedes* it. A
party that withdraws terminates a bilateral agreement; a multilateral one
continues among the others.

Every step that other parties must learn of is sent through the durable
outbox in the same transaction as the local change (``Sender``), and every
step received from a peer is verified and applied inside the federation's
receive transaction (:mod:`comity.agreements.messages`).

Trust assumptions: local calls come from an authenticated operator of this
node; documents and signatures from peers are verified here before storage.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from comity.agreements.errors import (
    AgreementNotFoundError,
    AgreementStateError,
    InvalidAgreementError,
    NotAPartyError,
)
from comity.agreements.models import (
    AgreementSignature,
    AgreementSuspension,
    AgreementVersion,
    AgreementWithdrawal,
)
from comity.agreements.schemas import (
    AgreementDocument,
    AgreementStatus,
    Scope,
    Supersedes,
    parse_document,
)
from comity.clock import format_ts
from comity.hazmat.keys import KeyFormatError, b64d, b64e
from comity.identity.services import LocalIdentity, get_peer
from comity.ledger.commitments import Opening, new_salt
from comity.ledger.services import record_at_commit

__all__ = [
    "AgreementView",
    "Sender",
    "amend",
    "create_draft",
    "get_agreement",
    "list_agreements",
    "propose",
    "resume",
    "sign",
    "suspend",
    "withdraw",
]



class Sender(Protocol):
    """What the agreements domain needs from the federation: a durable send."""

    def send(
        self, session: Session, *, to: str, type: str, body: dict[str, Any],
        agreement_id: str | None, in_reply_to: str | None = None,
    ) -> object: ...


@dataclass
class AgreementView:
    """Everything known about one agreement, for display and decisions."""

    agreement_id: str
    versions: list[AgreementVersion]
    documents: dict[int, AgreementDocument]
    signatures: dict[int, list[AgreementSignature]]
    withdrawn: dict[str, AgreementWithdrawal]
    suspended: dict[str, AgreementSuspension]
    effective: AgreementDocument | None = field(default=None)

    @property
    def latest(self) -> AgreementVersion:
        return self.versions[-1]

    @property
    def active_parties(self) -> tuple[str, ...]:
        doc = self.effective or self.documents[self.latest.version]
        return tuple(p for p in doc.parties if p not in self.withdrawn)

    def status(self, at: dt.datetime) -> AgreementStatus:
        """The status of the agreement as a whole at ``at``."""
        doc = self.effective
        if doc is None:
            return AgreementStatus(self.latest.state)
        if (doc.bilateral and self.withdrawn) or len(self.active_parties) < 2:
            return AgreementStatus.TERMINATED
        if self.suspended:
            return AgreementStatus.SUSPENDED
        if at < doc.valid_from_dt:
            return AgreementStatus.SIGNED
        until = doc.valid_until_dt
        if until is not None and at >= until:
            return AgreementStatus.EXPIRED
        return AgreementStatus.IN_FORCE

    def version_status(self, version: int, at: dt.datetime) -> AgreementStatus:
        row = next(v for v in self.versions if v.version == version)
        if row.state != AgreementStatus.SIGNED:
            return AgreementStatus(row.state)
        if self.effective is not None and version < self.effective.version:
            return AgreementStatus.SUPERSEDED
        return self.status(at)

    def to_dict(self, at: dt.datetime) -> dict[str, Any]:
        return {
            "id": self.agreement_id,
            "status": self.status(at).value,
            "effective_version": None if self.effective is None else self.effective.version,
            "active_parties": list(self.active_parties),
            "withdrawn": sorted(self.withdrawn),
            "suspended_by": sorted(self.suspended),
            "versions": [
                {
                    "version": v.version,
                    "status": self.version_status(v.version, at).value,
                    "hash": v.doc_hash,
                    "document": self.documents[v.version].to_dict(),
                    "signed_by": sorted(s.party for s in self.signatures.get(v.version, [])),
                }
                for v in self.versions
            ],
        }


# -- reading ------------------------------------------------------------------

def get_agreement(session: Session, agreement_id: str) -> AgreementView:
    """Load every version and party act of ``agreement_id``.

    Raises:
        AgreementNotFoundError: if this node holds no such agreement.
    """
    versions = list(session.scalars(
        select(AgreementVersion).where(AgreementVersion.agreement_id == agreement_id)
        .order_by(AgreementVersion.version)))
    if not versions:
        raise AgreementNotFoundError(f"no agreement {agreement_id!r}")
    docs = {v.version: AgreementDocument.model_validate_json(v.document) for v in versions}
    sigs: dict[int, list[AgreementSignature]] = {}
    for s in session.scalars(select(AgreementSignature).where(
            AgreementSignature.agreement_id == agreement_id)):
        sigs.setdefault(s.version, []).append(s)
    withdrawn = {w.party: w for w in session.scalars(select(AgreementWithdrawal).where(
        AgreementWithdrawal.agreement_id == agreement_id))}
    suspended = {s.party: s for s in session.scalars(select(AgreementSuspension).where(
        AgreementSuspension.agreement_id == agreement_id))}
    signed = [v for v in versions if v.state == AgreementStatus.SIGNED]
    effective = docs[signed[-1].version] if signed else None
    return AgreementView(agreement_id, versions, docs, sigs, withdrawn, suspended, effective)


def list_agreements(session: Session) -> list[AgreementView]:
    """Every agreement this node holds, newest first."""
    ids = session.scalars(select(AgreementVersion.agreement_id).distinct())
    views = [get_agreement(session, i) for i in ids]
    views.sort(key=lambda v: v.versions[0].created_at, reverse=True)
    return views


# -- local acts -------------------------------------------------------------------

def _scope_from(raw: dict[str, Any]) -> Scope:
    from pydantic import ValidationError

    try:
        return Scope.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "scope"
        raise InvalidAgreementError(f"scope.{where}: {first['msg']}") from e


def _store_version(session: Session, doc: AgreementDocument, state: AgreementStatus,
                   now: dt.datetime) -> AgreementVersion:
    row = AgreementVersion(
        agreement_id=doc.id, version=doc.version, document=doc.canonical_bytes(),
        doc_hash=doc.doc_hash(), title=doc.title, proposed_by=doc.proposed_by,
        state=state.value, created_at=now, updated_at=now)
    session.add(row)
    return row


def _build(fields: dict[str, Any]) -> AgreementDocument:
    try:
        return AgreementDocument.model_validate(fields)
    except InvalidAgreementError:
        raise
    except ValueError as e:
        raise InvalidAgreementError(str(e).splitlines()[-1].strip() or str(e)) from e


def create_draft(
    session: Session, local: LocalIdentity, *, title: str, parties: Iterable[str],
    scope: dict[str, Any], valid_from: dt.datetime, valid_until: dt.datetime | None,
) -> AgreementView:
    """Create version 1 of a new agreement as a local draft.

    ``parties`` are the other parties' node ids; this node is always a party.

    Raises:
        UnknownPeerError: if a party is not a known peer.
        InvalidAgreementError: if the document is not valid.
    """
    others = sorted(set(parties) - {local.node_id})
    for p in others:
        get_peer(session, p)
    doc = _build({
        "id": str(uuid.uuid4()), "version": 1, "title": title,
        "parties": sorted([local.node_id, *others]), "scope": _scope_from(scope),
        "valid_from": format_ts(valid_from),
        "valid_until": None if valid_until is None else format_ts(valid_until),
        "proposed_by": local.node_id,
    })
    _store_version(session, doc, AgreementStatus.DRAFT, valid_from)
    session.flush()
    return get_agreement(session, doc.id)


def amend(
    session: Session, local: LocalIdentity, agreement_id: str, *, now: dt.datetime,
    title: str | None = None, scope: dict[str, Any] | None = None,
    valid_until: dt.datetime | None = None, parties: Iterable[str] | None = None,
) -> AgreementView:
    """Draft the next version of a signed agreement, to be signed by all again.

    Raises:
        AgreementStateError: if the latest version is not signed yet, or the
            agreement has ended.
        InvalidAgreementError: if the new document is not valid.
    """
    view = get_agreement(session, agreement_id)
    if view.latest.state != AgreementStatus.SIGNED or view.effective is None:
        raise AgreementStateError("only a signed agreement can be amended; "
                                  f"version {view.latest.version} is {view.latest.state}")
    if view.status(now) == AgreementStatus.TERMINATED:
        raise AgreementStateError("a terminated agreement cannot be amended")
    if local.node_id not in view.active_parties:
        raise NotAPartyError("this node is not an active party")
    old = view.effective
    new_parties = (sorted({*parties, local.node_id}) if parties is not None
                   else list(view.active_parties))
    for p in new_parties:
        if p != local.node_id:
            get_peer(session, p)
    doc = _build({
        **old.to_dict(),
        "version": old.version + 1,
        "title": title if title is not None else old.title,
        "scope": _scope_from(scope) if scope is not None else old.scope,
        "valid_until": format_ts(valid_until) if valid_until is not None else old.valid_until,
        "parties": new_parties,
        "supersedes": Supersedes(version=old.version, hash=old.doc_hash()),
        "proposed_by": local.node_id,
    })
    _store_version(session, doc, AgreementStatus.DRAFT, now)
    session.flush()
    return get_agreement(session, agreement_id)


def _signature_body(doc: AgreementDocument, local: LocalIdentity) -> dict[str, Any]:
    return {"party": local.node_id, "serial": local.serial,
            "sig": b64e(local.signing_key.sign(doc.canonical_bytes()))}


def _add_signature(session: Session, doc: AgreementDocument, party: str, serial: int,
                   sig: bytes, now: dt.datetime) -> None:
    if session.get(AgreementSignature, (doc.id, doc.version, party)) is None:
        session.add(AgreementSignature(agreement_id=doc.id, version=doc.version, party=party,
                                       signer_serial=serial, signature=sig, signed_at=now))
        _log_act(session, doc.id, doc.version, "signature", party, doc.doc_hash())
        session.flush()


def _complete_if_signed(session: Session, doc: AgreementDocument, now: dt.datetime) -> None:
    row = session.get(AgreementVersion, (doc.id, doc.version))
    assert row is not None
    signers = set(session.scalars(select(AgreementSignature.party).where(
        AgreementSignature.agreement_id == doc.id, AgreementSignature.version == doc.version)))
    if row.state != AgreementStatus.SIGNED and signers >= set(doc.parties):
        row.state = AgreementStatus.SIGNED.value
        row.updated_at = now
        _log_act(session, doc.id, doc.version, "signed-by-all", None, doc.doc_hash())


def _broadcast(session: Session, sender: Sender, local: LocalIdentity, parties: Iterable[str],
               type: str, body: dict[str, Any], agreement_id: str) -> None:
    for p in parties:
        if p != local.node_id:
            sender.send(session, to=p, type=type, body=body, agreement_id=agreement_id)


def propose(session: Session, local: LocalIdentity, sender: Sender, agreement_id: str,
            *, now: dt.datetime) -> AgreementView:
    """Sign the latest draft and send it to every other party.

    Raises:
        AgreementStateError: if the latest version is not a local draft.
    """
    view = get_agreement(session, agreement_id)
    row = view.latest
    if row.state != AgreementStatus.DRAFT:
        raise AgreementStateError(f"version {row.version} is {row.state}, not a draft")
    doc = view.documents[row.version]
    sig = _signature_body(doc, local)
    row.state = AgreementStatus.PROPOSED.value
    row.updated_at = now
    _add_signature(session, doc, local.node_id, local.serial, b64d(sig["sig"], length=64), now)
    _broadcast(session, sender, local, doc.parties, "agreement.propose",
               {"document": doc.to_dict(), "signature": sig}, doc.id)
    _complete_if_signed(session, doc, now)
    return get_agreement(session, agreement_id)


def sign(session: Session, local: LocalIdentity, sender: Sender, agreement_id: str,
         *, now: dt.datetime) -> AgreementView:
    """Sign the proposed latest version and tell every other party.

    Raises:
        AgreementStateError: if there is nothing proposed to sign, or this
            node signed already.
        NotAPartyError: if this node is not a party to that version.
    """
    view = get_agreement(session, agreement_id)
    row = view.latest
    doc = view.documents[row.version]
    if local.node_id not in doc.parties:
        raise NotAPartyError("this node is not a party to the agreement")
    if row.state != AgreementStatus.PROPOSED:
        raise AgreementStateError(f"version {row.version} is {row.state}; nothing to sign")
    if any(s.party == local.node_id for s in view.signatures.get(row.version, [])):
        raise AgreementStateError(f"this node already signed version {row.version}")
    sig = _signature_body(doc, local)
    _add_signature(session, doc, local.node_id, local.serial, b64d(sig["sig"], length=64), now)
    _broadcast(session, sender, local, doc.parties, "agreement.sign",
               {"document": doc.to_dict(), "signature": sig}, doc.id)
    _complete_if_signed(session, doc, now)
    return get_agreement(session, agreement_id)


def _party_act(session: Session, local: LocalIdentity, sender: Sender, agreement_id: str,
               type: str, reason: str, now: dt.datetime) -> AgreementView:
    view = get_agreement(session, agreement_id)
    if view.effective is None:
        raise AgreementStateError("the agreement was never signed by all parties")
    if local.node_id not in view.active_parties:
        raise NotAPartyError("this node is not an active party")
    recipients = list(view.active_parties)
    apply_party_act(session, view, local.node_id, type, reason, now)
    _broadcast(session, sender, local, recipients, type,
               {"agreement_id": agreement_id, "reason": reason, "at": format_ts(now)},
               agreement_id)
    return get_agreement(session, agreement_id)


def apply_party_act(session: Session, view: AgreementView, party: str, type: str,
                    reason: str, now: dt.datetime) -> None:
    """Record a withdrawal, suspension or resumption by ``party``.

    Raises:
        AgreementStateError: if the act does not fit the current state.
    """
    aid = view.agreement_id
    if type == "agreement.withdraw":
        if party in view.withdrawn:
            raise AgreementStateError("this party has already withdrawn")
        session.add(AgreementWithdrawal(agreement_id=aid, party=party, withdrawn_at=now,
                                        reason=reason))
        if party in view.suspended:
            session.delete(view.suspended[party])
    elif type == "agreement.suspend":
        if party in view.suspended:
            raise AgreementStateError("already suspended by this party")
        session.add(AgreementSuspension(agreement_id=aid, party=party, suspended_at=now,
                                        reason=reason))
    elif type == "agreement.resume":
        if party not in view.suspended:
            raise AgreementStateError("not suspended by this party")
        session.delete(view.suspended[party])
    else:  # pragma: no cover - callers pass one of the three
        raise ValueError(type)
    _log_act(session, aid, view.latest.version, type.removeprefix("agreement."), party, None)
    session.flush()


def _log_act(session: Session, agreement_id: str, version: int, event: str,
             party: str | None, doc_hash: str | None) -> None:
    """An AGREEMENT entry in this node's log, committed with the act."""
    record_at_commit(session, Opening("AGREEMENT", {
        "agreement": agreement_id, "version": version, "event": event, "party": party,
        "document": doc_hash}, new_salt()))


def withdraw(session: Session, local: LocalIdentity, sender: Sender, agreement_id: str,
             *, reason: str, now: dt.datetime) -> AgreementView:
    """Withdraw this node from the agreement and tell the other parties."""
    return _party_act(session, local, sender, agreement_id, "agreement.withdraw", reason, now)


def suspend(session: Session, local: LocalIdentity, sender: Sender, agreement_id: str,
            *, reason: str, now: dt.datetime) -> AgreementView:
    """Suspend the agreement (until this node resumes it) and tell the others."""
    return _party_act(session, local, sender, agreement_id, "agreement.suspend", reason, now)


def resume(session: Session, local: LocalIdentity, sender: Sender, agreement_id: str,
           *, reason: str, now: dt.datetime) -> AgreementView:
    """Lift this node's suspension and tell the others."""
    return _party_act(session, local, sender, agreement_id, "agreement.resume", reason, now)


def _check_amendment(session: Session, doc: AgreementDocument, sender_id: str,
                     now: dt.datetime) -> None:
    """A received amendment must amend the version in force, by an active party.

    Raises:
        AgreementStateError: if it amends anything but the signed version
            this node holds as effective, or the agreement has ended.
        NotAPartyError: if the sender has withdrawn.
    """
    assert doc.supersedes is not None
    view = get_agreement(session, doc.id)
    effective = view.effective
    if (effective is None or effective.version != doc.supersedes.version
            or effective.doc_hash() != doc.supersedes.hash):
        raise AgreementStateError("amendment of a version that is not the one in force here")
    if sender_id not in view.active_parties:
        raise NotAPartyError("only an active party may propose an amendment")
    if view.status(now) in (AgreementStatus.TERMINATED, AgreementStatus.EXPIRED):
        raise AgreementStateError(f"the agreement is {view.status(now).value}")


def receive_signed_document(
    session: Session, *, sender_id: str, local_id: str, body: dict[str, Any],
    verify: Callable[[str, int, bytes, bytes], None], now: dt.datetime,
) -> None:
    """Apply a peer's proposal or signature (body: document + signature).

    ``verify(party, serial, sig, data)`` checks a party's signature with the
    key of that party's card ``serial`` and raises on failure.

    Raises:
        InvalidAgreementError: malformed document or signature.
        NotAPartyError: the sender or this node is not a party.
        AgreementStateError: a different document under the same version.
    """
    doc = parse_document(body.get("document"))
    sig = body.get("signature")
    if not (isinstance(sig, dict) and set(sig) == {"party", "serial", "sig"}
            and isinstance(sig["serial"], int) and sig["party"] == sender_id):
        raise InvalidAgreementError("signature must be the sender's {party, serial, sig}")
    if sender_id not in doc.parties or local_id not in doc.parties:
        raise NotAPartyError("both the sender and this node must be parties")
    try:
        raw_sig = b64d(sig["sig"], length=64)
    except KeyFormatError as e:
        raise InvalidAgreementError(f"signature: {e}") from e
    verify(sender_id, sig["serial"], raw_sig, doc.canonical_bytes())
    row = session.get(AgreementVersion, (doc.id, doc.version))
    if row is None:
        if doc.supersedes is not None:
            _check_amendment(session, doc, sender_id, now)
        _store_version(session, doc, AgreementStatus.PROPOSED, now)
        session.flush()
    elif row.doc_hash != doc.doc_hash():
        raise AgreementStateError(
            f"version {doc.version} of {doc.id} differs from the one held here")
    _add_signature(session, doc, sender_id, sig["serial"], raw_sig, now)
    _complete_if_signed(session, doc, now)
