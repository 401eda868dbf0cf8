"""Receiving: every check at the inbox, and storing what passes with a signed receipt.

:meth:`Receiver.receive` checks, in order: size, JSON, delivery structure,
recipient, sender's card, delivery freshness and signature; then for each
message its signature, replay, freshness, type, body and agreement scope.
Accepted messages, what receiving them changes, and the signed receipt are
stored in one transaction; a message seen before with the same hash gets its
original receipt back, with different content a specific error. A rejection
stores nothing for that message.

Trust assumptions: everything arriving over HTTP is untrusted until verified
here; the local database and identity are trusted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import orjson
from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from comity.db import read_scope, session_scope
from comity.federation.envelope import (
    Message,
    check_freshness,
    parse_delivery,
    seal_receipt,
)
from comity.federation.errors import (
    BadSignatureError,
    ConcurrentDeliveryError,
    InvalidBodyError,
    MalformedJSONError,
    MalformedMessageError,
    PayloadTooLargeError,
    ReplayedMessageError,
    StaleCardError,
    WrongRecipientError,
)
from comity.federation.models import InboxMessage, IssuedReceipt
from comity.federation.registry import ReceiveContext
from comity.hazmat import canonical
from comity.hazmat.keys import VerifyKey
from comity.identity.errors import UnknownPeerError
from comity.identity.models import Peer, PeerCard
from comity.identity.services import LocalIdentity, get_peer, import_cards, stored_card
from comity.ledger.commitments import message_opening
from comity.problems import Problem

if TYPE_CHECKING:
    from comity.federation.services import Federation

__all__ = ["CARD_CHAIN_BYTES", "RETRYABLE_SLUGS", "Receiver", "party_verifier"]

# Per-message rejections that may succeed later unchanged: the agreement is
# still converging on the receiver (a signature in flight), or is suspended.
RETRYABLE_SLUGS = frozenset({"no-agreement", "agreement-not-in-force", "stale-peer-card"})
_AUTH_MEMO = "comity.federation.authorized"
# A card chain is a handful of cards of at most 16 KiB each.
CARD_CHAIN_BYTES = 256 * 1024


@dataclass(frozen=True)
class _Pending:
    """What replay detection needs of a stored (or just accepted) message."""

    receipt_id: str
    message_hash: str


class Receiver:
    """The inbox side of one node's federation."""

    def __init__(self, fed: Federation) -> None:
        self.fed = fed

    def receive(self, raw: bytes) -> dict[str, Any]:
        """Check and store one delivery; return the JSON answer for the peer.

        Raises:
            PeerDataError (or a subclass), UnknownPeerError: for problems with
                the delivery as a whole; per-message problems are reported in
                the answer's ``results`` instead.
        """
        now = self.fed.clock.now()
        s = self.fed.settings
        try:
            obj = canonical.loads_strict(raw, max_bytes=s.max_delivery_bytes)
        except canonical.CanonicalJSONError as e:
            if len(raw) > s.max_delivery_bytes:
                raise PayloadTooLargeError(str(e)) from e
            raise MalformedJSONError(str(e)) from e
        delivery = parse_delivery(obj, max_messages=max(s.delivery_batch_size, 1024))
        local = self.fed.identity.get()
        if delivery.recipient != local.node_id:
            raise WrongRecipientError(f"this is node {local.node_id}, not {delivery.recipient}")
        with read_scope(self.fed.sessions) as session:
            peer = get_peer(session, delivery.sender)
            peer_serial, peer_key = peer.serial, VerifyKey(peer.signing_key)
        if delivery.serial > peer_serial:
            raise StaleCardError(
                f"delivery is signed under card {delivery.serial}; card {peer_serial} is held",
                held_serial=peer_serial)
        check_freshness(delivery.sent, now, max_age=s.clock_skew_seconds,
                        skew=s.clock_skew_seconds, what="delivery")
        parsed = delivery.open(peer_key, max_message_bytes=s.max_message_bytes)
        try:
            with session_scope(self.fed.sessions) as session:
                # Messages are checked with the key the delivery verified
                # under, even if the peer's card was updated in between: both
                # were signed together, and a later card must not turn them
                # into (final) signature failures.
                return self._store(session, parsed, local,
                                   get_peer(session, delivery.sender), peer_key, now)
        except IntegrityError as e:
            # Another copy of the same delivery committed first (PostgreSQL,
            # two requests at once): nothing of this one was stored, and a
            # retry will be answered as a duplicate.
            raise ConcurrentDeliveryError("the same messages are being stored by another "
                                          "request; retry") from e

    def _store(self, session: Session, parsed: Sequence[Message | Exception],
               local: LocalIdentity, peer: Peer, key: VerifyKey,
               now: dt.datetime) -> dict[str, Any]:
        ids = [m.id for m in parsed if isinstance(m, Message)]
        seen: dict[str, _Pending] = {
            mid: _Pending(rid, h) for mid, rid, h in session.execute(
                select(InboxMessage.message_id, InboxMessage.receipt_id,
                       InboxMessage.message_hash).where(InboxMessage.message_id.in_(ids)))
        } if ids else {}
        receipt_id = str(uuid.uuid4())
        results: list[dict[str, Any]] = []
        new_rows: list[dict[str, Any]] = []
        new_salts: list[str] = []
        old_receipts: dict[str, int] = {}
        receipts: list[dict[str, Any]] = [{}]  # slot 0: this delivery's new receipt
        blocked = False
        for item in parsed:
            if blocked:
                results.append({"id": _id_of(item), "status": "deferred",
                                "problem": {"detail": "an earlier message was deferred"}})
                continue
            if isinstance(item, Exception):
                results.append(_rejected(item.extra.get("message_id")
                                         if isinstance(item, Problem) else None, item))
                continue
            try:
                dup = self._check(session, item, local, peer, key, now, seen)
            except Problem as e:
                results.append(_rejected(item.id, e))
                blocked = e.slug in RETRYABLE_SLUGS
                continue
            if dup is not None and dup.receipt_id == receipt_id:
                # The same message twice in one delivery: one receipt entry.
                results.append({"id": item.id, "status": "duplicate", "receipt": 0})
                continue
            if dup is not None:
                if dup.receipt_id not in old_receipts:
                    issued = session.get(IssuedReceipt, dup.receipt_id)
                    assert issued is not None
                    old_receipts[dup.receipt_id] = len(receipts)
                    receipts.append(orjson.loads(issued.receipt))
                results.append({"id": item.id, "status": "duplicate",
                                "receipt": old_receipts[dup.receipt_id]})
                continue
            row = {"message_id": item.id, "sender_id": item.sender, "type": item.type,
                   "agreement_id": item.agreement, "envelope": item.envelope_bytes(),
                   "message_hash": item.hash, "created_at": item.created,
                   "received_at": now, "receipt_id": receipt_id}
            seen[item.id] = _Pending(receipt_id, item.hash)
            new_rows.append(row)
            new_salts.append(item.header["salt"])
            results.append({"id": item.id, "status": "accepted", "receipt": 0})
        if new_rows:
            # Core insert: the ORM's per-row bookkeeping costs more than the insert.
            table = cast(Table, InboxMessage.__table__)
            # RECEIVED entries commit with the inbox rows; the receipt names them.
            log_indexes = self.fed.ledger.record(session, [message_opening(
                "RECEIVED", message_hash=r["message_hash"], sender=r["sender_id"],
                recipient=local.node_id, salt=salt) for r, salt in zip(
                    new_rows, new_salts, strict=True)])
            for r, i in zip(new_rows, log_indexes, strict=True):
                r["log_index"] = i
            seqs = session.execute(
                insert(table).returning(table.c.seq, sort_by_parameter_order=True),
                new_rows).scalars().all()
            doc = seal_receipt(
                local.signing_key, receiver=local.node_id, sender=peer.node_id,
                serial=local.serial, received=now,
                entries=[{"id": r["message_id"], "hash": r["message_hash"], "seq": seq,
                          "log": r["log_index"]}
                         for r, seq in zip(new_rows, seqs, strict=True)])
            session.add(IssuedReceipt(receipt_id=receipt_id, peer_id=peer.node_id,
                                      receipt=orjson.dumps(doc), issued_at=now))
            receipts[0] = doc
        return {"receipts": receipts, "results": results}

    def _check(self, session: Session, m: Message, local: LocalIdentity, peer: Peer,
               key: VerifyKey,
               now: dt.datetime, seen: dict[str, _Pending]) -> _Pending | None:
        """All per-message checks; the stored original if ``m`` is a duplicate."""
        s = self.fed.settings
        if m.sender != peer.node_id:
            raise MalformedMessageError(f"message {m.id} is from {m.sender}, not the sender "
                                        "of the delivery")
        if m.recipient != local.node_id:
            raise WrongRecipientError(f"message {m.id} is addressed to {m.recipient}")
        m.verify(key)
        original = seen.get(m.id)
        if original is not None:
            if original.message_hash != m.hash:
                raise ReplayedMessageError(f"message id {m.id} was already used for other "
                                           "content")
            return original
        check_freshness(m.created, now, max_age=s.message_max_age_seconds,
                        skew=s.clock_skew_seconds, what=f"message {m.id}")
        mt = self.fed.types.get(m.type)
        if mt.sealed:
            # Handlers see the opened body; the inbox keeps the envelope as signed.
            m = self.fed.open_body(m)
        purpose = mt.validate(m.body)
        if not mt.control:
            self.fed.authorize_in(session, agreement_id=m.agreement, local_id=local.node_id,
                              peer_id=peer.node_id, purpose=purpose, at=now)
        if mt.on_receive is not None:
            session.info.pop(_AUTH_MEMO, None)  # it may change what is authorised
            ctx = ReceiveContext(session=session, message=m, local=local, peer=peer, now=now,
                                 verify_party=self._party_verifier(session, local))
            try:
                with session.begin_nested():
                    mt.on_receive(ctx)
            except (ValueError, TypeError, KeyError) as e:
                # Malformed content that slipped past the type's validation:
                # refuse this message, do not fail the whole delivery.
                raise InvalidBodyError(f"message {m.id}: {e}") from e
        return None

    def _party_verifier(self, session: Session, local: LocalIdentity) -> Callable[
            [str, int, bytes, bytes], None]:
        return party_verifier(session, local)

    def accept_cards(self, raw: bytes) -> dict[str, Any]:
        """A known peer pushes its card chain after rotating its keys.

        Unknown nodes are refused: first contact is always out of band.

        Raises:
            MalformedJSONError, UnknownPeerError, CardError
        """
        try:
            chain = canonical.loads_strict(raw, max_bytes=CARD_CHAIN_BYTES)
        except canonical.CanonicalJSONError as e:
            raise MalformedJSONError(str(e)) from e
        first = chain[0] if isinstance(chain, list) and chain else chain
        node_id = first.get("node_id") if isinstance(first, dict) else None
        with session_scope(self.fed.sessions) as session:
            if not isinstance(node_id, str) or session.get(Peer, node_id) is None:
                raise UnknownPeerError("cards are only accepted from known peers; first "
                                       "contact is made out of band")
            local_id = self.fed.identity.get().node_id
            peer, added = import_cards(session, chain, local_node_id=local_id,
                                       clock=self.fed.clock)
            return {"node_id": peer.node_id, "serial": peer.serial, "accepted": added}


def _id_of(item: Message | Exception) -> str | None:
    return item.id if isinstance(item, Message) else None


def _rejected(message_id: str | None, e: Exception) -> dict[str, Any]:
    problem = e.to_dict() if isinstance(e, Problem) else {"detail": str(e)}
    status = "deferred" if isinstance(e, Problem) and e.slug in RETRYABLE_SLUGS else "rejected"
    return {"id": message_id, "status": status, "problem": problem}


def party_verifier(session: Session, local: LocalIdentity) -> Callable[
        [str, int, bytes, bytes], None]:
    """``verify(party, serial, signature, data)``: check ``party``'s signature under the
    key of its card ``serial`` (this node's own chain, or a peer card held here).

    The check raises :class:`BadSignatureError`, also when no such card is held.
    """
    def verify(party: str, serial: int, sig: bytes, data: bytes) -> None:
        if party == local.node_id:
            cards = [c for c in local.chain if c.serial == serial]
            key = cards[0].signing_key if cards else None
        else:
            row = session.get(PeerCard, (party, serial))
            key = None if row is None else stored_card(row.card).signing_key
        if key is None:
            raise BadSignatureError(f"no card {serial} of {party} is held to check with")
        try:
            key.verify(sig, data)
        except Exception as e:
            raise BadSignatureError(f"signature of {party} does not verify") from e
    return verify
