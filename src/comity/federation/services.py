"""The federation: durable sending and idempotent, all-checks receiving.

Sending (:meth:`Federation.send`) authorises the exchange, signs the message
and writes it to the outbox inside the caller's transaction, so the business
change and the promise to deliver it commit or vanish together. The delivery
worker (:mod:`comity.federation.delivery`) later calls
:meth:`Federation.deliver_batch`, which POSTs the oldest pending messages of
one peer in order and stores the receipts the peer signs.

Receiving (:meth:`Federation.receive`) is done by
:class:`~comity.federation.receiving.Receiver`, which shares this object's
settings, identity, sessions, message types and authorisation memo.

Trust assumptions: answers from peers (receipts, results, card chains) are
untrusted until verified here; the local database and identity are trusted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import httpx
import orjson
from sqlalchemy import Table, event, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from comity.agreements.authorization import Purpose, authorize
from comity.agreements.cache import AgreementCache
from comity.clock import Clock, format_ts
from comity.config import Settings
from comity.db import read_scope, session_scope
from comity.federation.envelope import (
    Message,
    Receipt,
    new_message_id,
    parse_message,
    parse_receipt,
    receipt_serial,
    resign,
    seal_delivery,
    seal_message,
)
from comity.federation.errors import (
    BadSignatureError,
    PayloadTooLargeError,
    PeerDataError,
    TooLargeForPeerError,
    TransportError,
)
from comity.federation.models import (
    HeldReceipt,
    OutboxMessage,
)
from comity.federation.receiving import _AUTH_MEMO, RETRYABLE_SLUGS, Receiver
from comity.federation.registry import MessageTypes
from comity.federation.sealing import open_body, seal_body
from comity.hazmat import canonical
from comity.hazmat.keys import VerifyKey, b64d
from comity.identity.errors import CardError, UnknownPeerError
from comity.identity.models import PeerCard
from comity.identity.services import (
    IdentityHolder,
    LocalIdentity,
    get_peer,
    import_cards,
    require_peer,
    stored_card,
)
from comity.ledger.commitments import message_opening, new_salt
from comity.ledger.services import Ledger

__all__ = ["RETRYABLE_SLUGS", "BatchOutcome", "Federation"]

log = logging.getLogger(__name__)

_NOTIFY_KEY = "comity.federation.notify"


@dataclass(frozen=True)
class Prepared:
    """A message validated and signed, not yet authorised or stored."""

    message: Message
    purpose: Purpose
    control: bool
    local_id: str
    serial: int
    created: dt.datetime


@dataclass(frozen=True)
class BatchOutcome:
    """What one delivery attempt did, for the worker's scheduling."""

    delivered: int = 0
    failed: int = 0
    retry_at: dt.datetime | None = None  # head of line must wait until then
    idle: bool = False  # nothing pending for that peer


class Federation:
    """One node's federation endpoint: outbox, inbox and delivery logic."""

    def __init__(
        self, settings: Settings, identity: IdentityHolder, sessions: sessionmaker[Session],
        types: MessageTypes, clock: Clock, *, ledger: Ledger,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.identity = identity
        self.sessions = sessions
        self.types = types
        self.clock = clock
        # Jitter only spreads retries out; it needs no cryptographic randomness.
        self._rng = rng or random.Random()  # noqa: S311
        self._listeners: list[Callable[[str], None]] = []
        self._delivered_listeners: list[Callable[[str], None]] = []
        self._failed_listeners: list[Callable[[str, str, str], None]] = []
        self.agreements = AgreementCache()
        # Peers whose body limit turned out smaller than ours: batch size to use.
        self._batch_cap: dict[str, int] = {}
        self.receiver = Receiver(self)
        event.listen(sessions, "after_commit", self._after_commit)

    # -- sending ---------------------------------------------------------------

    def on_enqueue(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(peer_id)`` after a transaction that queued mail commits."""
        self._listeners.append(listener)

    def on_delivered(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(peer_id)`` after messages to that peer were delivered."""
        self._delivered_listeners.append(listener)

    def on_failed(self, listener: Callable[[str, str, str], None]) -> None:
        """Call ``listener(message_id, type, error)`` after a peer finally refused a message."""
        self._failed_listeners.append(listener)

    def _after_commit(self, session: Session) -> None:
        peers = session.info.pop(_NOTIFY_KEY, None)
        for peer_id in peers or ():
            for listener in self._listeners:
                listener(peer_id)

    def send(
        self, session: Session, *, to: str, type: str, body: dict[str, Any],
        agreement_id: str | None, in_reply_to: str | None = None,
    ) -> OutboxMessage:
        """Authorise, sign and queue one message inside ``session``'s transaction.

        Raises:
            UnknownPeerError: ``to`` is not a known peer.
            UnknownMessageTypeError, InvalidBodyError: bad type or body.
            PayloadTooLargeError: the signed message exceeds the size limit.
            AuthorizationError: no agreement in force allows it.
        """
        return self.enqueue(session, self.prepare(
            to=to, type=type, body=body, agreement_id=agreement_id, in_reply_to=in_reply_to))

    def prepare(self, *, to: str, type: str, body: dict[str, Any], agreement_id: str | None,
                in_reply_to: str | None = None) -> Prepared:
        """Validate and sign a message, outside any transaction.

        The signing and validation work is done here so that the write
        transaction of :meth:`enqueue` stays short. Nothing is authorised or
        stored yet.

        Raises:
            UnknownMessageTypeError, InvalidBodyError, PayloadTooLargeError
        """
        local = self.identity.get()
        now = self.clock.now()
        mt = self.types.get(type)
        purpose = mt.validate(body)
        salt = new_salt()
        header = {"v": 1, "id": new_message_id(), "from": local.node_id, "to": to,
                  "agreement": agreement_id, "type": type, "created": format_ts(now),
                  "in_reply_to": in_reply_to, "salt": salt}
        if mt.sealed:
            public, serial = self._encryption_key_of(to)
            body = seal_body(body, salt=salt, recipient_public=public,
                             recipient_serial=serial)
        msg = seal_message(local.signing_key, header, body)
        if len(msg.signed_bytes) > self.settings.max_message_bytes:
            raise PayloadTooLargeError(f"message is {len(msg.signed_bytes)} bytes; the limit "
                                       f"is {self.settings.max_message_bytes}")
        return Prepared(msg, purpose, mt.control, local.node_id, local.serial, now)

    def _encryption_key_of(self, peer_id: str) -> tuple[bytes, int]:
        """The X25519 key and serial of the peer's pinned card.

        Raises:
            UnknownPeerError
        """
        with read_scope(self.sessions) as session:
            peer = get_peer(session, peer_id)
            card = stored_card(peer.card)
        return b64d(card.encryption_key_b64, length=32), card.serial

    def open_body(self, message: Message) -> Message:
        """``message`` with its sealed body opened and checked (see federation.sealing).

        Raises:
            InvalidBodyError
        """
        body = open_body(message.body, salt=message.header["salt"],
                         key_for=self.identity.encryption_key)
        return dataclasses.replace(message, body=body)

    def enqueue(self, session: Session, prepared: Prepared) -> OutboxMessage:
        """Authorise a prepared message and write it to the outbox in ``session``.

        Authorisation happens here, inside the transaction that stores the
        message, so what is queued was allowed at the moment it was queued.

        Raises:
            UnknownPeerError, AuthorizationError
        """
        msg = prepared.message
        to = msg.recipient
        require_peer(session, to)
        if not prepared.control:
            self.authorize_in(session, agreement_id=msg.agreement, local_id=prepared.local_id,
                            peer_id=to, purpose=prepared.purpose, at=self.clock.now())
        # The SENT entry commits in the same transaction as the outbox row.
        log_index = self.ledger.record(session, [message_opening(
            "SENT", message_hash=msg.hash, sender=msg.sender, recipient=to,
            salt=msg.header["salt"])])[0]
        values: dict[str, Any] = {
            "message_id": msg.id, "peer_id": to, "type": msg.type, "log_index": log_index,
            "agreement_id": msg.agreement, "envelope": msg.envelope_bytes(),
            "message_hash": msg.hash, "signed_serial": prepared.serial,
            "created_at": prepared.created, "status": "pending", "attempts": 0,
            "next_attempt_at": prepared.created}
        # Core insert: one statement, none of the ORM's per-object bookkeeping.
        table = cast(Table, OutboxMessage.__table__)
        seq = session.execute(insert(table).returning(table.c.seq), values).scalar_one()
        session.info.setdefault(_NOTIFY_KEY, set()).add(to)
        # A detached copy for the caller to read; the row itself is stored.
        return OutboxMessage(seq=seq, **values)

    def authorize_in(self, session: Session, *, agreement_id: str | None, local_id: str,
                   peer_id: str, purpose: Purpose, at: dt.datetime) -> None:
        """:func:`authorize`, remembered for the rest of this transaction.

        A batch of messages under one agreement asks the same question many
        times; the answer cannot change inside one transaction, except through
        a control message applied in it, which clears the memo. Agreement
        views come from a cache that checks their generation first.
        """
        memo: dict[tuple[Any, ...], None] = session.info.setdefault(_AUTH_MEMO, {})
        key = (agreement_id, local_id, peer_id, purpose, at)
        if key in memo:
            return
        authorize(session, agreement_id=agreement_id, local_id=local_id, peer_id=peer_id,
                  purpose=purpose, at=at, load=self.agreements.get)
        memo[key] = None

    # -- receiving -------------------------------------------------------------

    def receive(self, raw: bytes) -> dict[str, Any]:
        """Check and store one delivery (see :class:`~comity.federation.receiving.Receiver`)."""
        return self.receiver.receive(raw)

    def accept_cards(self, raw: bytes) -> dict[str, Any]:
        """A known peer pushes its rotated card chain (see ``Receiver.accept_cards``)."""
        return self.receiver.accept_cards(raw)

    # -- delivering ------------------------------------------------------------

    def backoff(self, attempts: int) -> float:
        """Exponential backoff with jitter: half fixed, half random."""
        s = self.settings
        delay = min(s.retry_max_seconds, s.retry_base_seconds * 2 ** max(attempts - 1, 0))
        return float(delay / 2 + self._rng.random() * delay / 2)

    def pending_peers(self) -> list[str]:
        """Peers that have messages waiting."""
        with read_scope(self.sessions) as session:
            return list(session.scalars(select(OutboxMessage.peer_id).where(
                OutboxMessage.status == "pending").distinct()))

    def deliver_batch(self, peer_id: str, client: httpx.Client) -> BatchOutcome:
        """Deliver the oldest pending messages to ``peer_id``, in order, once.

        Never raises for peer or transport problems: they are recorded on the
        head-of-line message and scheduled for retry.
        """
        now = self.clock.now()
        local = self.identity.get()
        limit = self._batch_cap.get(peer_id, self.settings.delivery_batch_size)
        with read_scope(self.sessions) as session:
            rows = _within_bytes(list(session.scalars(
                select(OutboxMessage).where(OutboxMessage.peer_id == peer_id,
                                            OutboxMessage.status == "pending")
                .order_by(OutboxMessage.seq).limit(limit))),
                self.settings.max_delivery_bytes)
            if not rows:
                return BatchOutcome(idle=True)
            if rows[0].next_attempt_at > now:
                return BatchOutcome(retry_at=rows[0].next_attempt_at)
            peer = get_peer(session, peer_id)
            url, peer_key, peer_serial = peer.url, VerifyKey(peer.signing_key), peer.serial
        if any(row.signed_serial != local.serial for row in rows):
            rows = self._resign_all(rows, local)
        body = seal_delivery(local.signing_key, sender=local.node_id, recipient=peer_id,
                             serial=local.serial, sent=now,
                             hashes=[r.message_hash for r in rows],
                             envelopes=[r.envelope for r in rows])
        try:
            answer = self._post(client, url, body)
            if answer.get("__stale_card__"):
                self._push_cards(client, url, local)
                # Retry soon, not at once: a peer that keeps asking must not
                # keep this worker spinning.
                return BatchOutcome(retry_at=now + dt.timedelta(
                    seconds=self.settings.retry_base_seconds))
            receipts = self._verify_receipts(client, answer, peer_id, url, local, peer_key,
                                             peer_serial)
            outcome = self._apply(answer, receipts, rows, peer_id)
            self._batch_cap.pop(peer_id, None)
            return outcome
        except TooLargeForPeerError as e:
            if len(rows) > 1:
                # The peer's body limit is below ours: send smaller batches.
                self._batch_cap[peer_id] = max(1, len(rows) // 2)
                return BatchOutcome(retry_at=now)
            return self._fail(rows[0].seq, f"payload-too-large: {e}")
        except (TransportError, PeerDataError, CardError, UnknownPeerError) as e:
            return self._defer(rows[0].seq, f"{type(e).__name__}: {e}")

    def _resign_all(self, rows: list[OutboxMessage],
                    local: LocalIdentity) -> list[OutboxMessage]:
        """Keys were rotated while these waited: same messages (same hashes), new signatures.

        Only the envelope and its serial are written, and only while the row
        is still pending: the rows in hand were read earlier, and writing
        them back whole could undo what another worker recorded since.
        """
        updates = []
        for row in rows:
            if row.signed_serial != local.serial:
                msg = resign(local.signing_key, parse_message(orjson.loads(row.envelope),
                                                              max_bytes=1 << 62))
                row.envelope = msg.envelope_bytes()
                row.signed_serial = local.serial
                updates.append(row)
        with session_scope(self.sessions) as session:
            for row in updates:
                session.execute(update(OutboxMessage).where(
                    OutboxMessage.seq == row.seq, OutboxMessage.status == "pending").values(
                    envelope=row.envelope, signed_serial=row.signed_serial))
        return rows

    def _post(self, client: httpx.Client, url: str, body: bytes) -> dict[str, Any]:
        try:
            resp = client.post(f"{url}/federation/inbox", content=body,
                               headers={"content-type": "application/json"},
                               timeout=self.settings.delivery_timeout_seconds)
        except httpx.HTTPError as e:
            raise TransportError(f"{type(e).__name__}: {e}") from e
        try:
            answer = orjson.loads(resp.content)
        except orjson.JSONDecodeError as e:
            raise TransportError(f"HTTP {resp.status_code} with a body that is not JSON") from e
        if resp.status_code == 409 and isinstance(answer, dict) and str(
                answer.get("type", "")).endswith(":stale-peer-card"):
            return {"__stale_card__": True}
        if resp.status_code == 413:
            raise TooLargeForPeerError(str(answer.get("detail") if isinstance(answer, dict)
                                           else "delivery too large"))
        if resp.status_code != 200 or not isinstance(answer, dict):
            detail = answer.get("detail") if isinstance(answer, dict) else None
            raise TransportError(f"HTTP {resp.status_code}: {detail or 'unexpected answer'}")
        return answer

    def _push_cards(self, client: httpx.Client, url: str, local: LocalIdentity) -> None:
        chain = [c.doc for c in local.chain]
        try:
            resp = client.post(f"{url}/federation/cards", content=orjson.dumps(chain),
                               headers={"content-type": "application/json"},
                               timeout=self.settings.delivery_timeout_seconds)
        except httpx.HTTPError as e:
            raise TransportError(f"pushing our card chain: {e}") from e
        if resp.status_code != 200:
            raise TransportError(f"peer refused our card chain: HTTP {resp.status_code}")

    def _refresh_peer_card(self, client: httpx.Client, url: str,
                           peer_id: str) -> tuple[VerifyKey, int]:
        """Fetch a peer's card chain (after it rotated) and pin its newest card."""
        try:
            resp = client.get(f"{url}/federation/cards",
                              timeout=self.settings.delivery_timeout_seconds)
            chain = orjson.loads(resp.content)
        except (httpx.HTTPError, orjson.JSONDecodeError) as e:
            raise TransportError(f"fetching the peer's card chain: {e}") from e
        with session_scope(self.sessions) as session:
            peer, _ = import_cards(session, chain, local_node_id=self.identity.get().node_id,
                                   clock=self.clock)
            if peer.node_id != peer_id:
                raise CardError("the peer served another node's cards")
            return VerifyKey(peer.signing_key), peer.serial

    def _verify_receipts(self, client: httpx.Client, answer: dict[str, Any], peer_id: str,
                         url: str, local: LocalIdentity, key: VerifyKey,
                         serial: int) -> list[Receipt | None]:
        raw = answer.get("receipts")
        if not isinstance(raw, list):
            raise TransportError("answer has no receipts list")
        out: list[Receipt | None] = []
        keys = {serial: key}
        for r in raw:
            if r == {}:
                out.append(None)
                continue
            named = receipt_serial(r)
            if named > serial:
                key, serial = self._refresh_peer_card(client, url, peer_id)
                keys[serial] = key
            if named not in keys:
                # A duplicate's original receipt, signed under an older card.
                keys[named] = self._peer_key_at(peer_id, named)
            out.append(parse_receipt(r, keys[named], receiver=peer_id, sender=local.node_id))
        return out

    def _peer_key_at(self, peer_id: str, serial: int) -> VerifyKey:
        """The signing key of the peer's card ``serial``, from the chain we accepted.

        Raises:
            BadSignatureError: if we never accepted a card with that serial.
        """
        with read_scope(self.sessions) as session:
            row = session.get(PeerCard, (peer_id, serial))
            if row is None:
                raise BadSignatureError(f"receipt names card {serial} of {peer_id}, "
                                        "which was never accepted here")
            return stored_card(row.card).signing_key

    def _apply(self, answer: dict[str, Any], receipts: list[Receipt | None],
               rows: list[OutboxMessage], peer_id: str) -> BatchOutcome:
        results = answer.get("results")
        if not isinstance(results, list) or len(results) != len(rows):
            raise TransportError("answer does not have one result per message")
        now = self.clock.now()
        delivered: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        deferred: tuple[int, str] | None = None
        refused: list[tuple[str, str, str]] = []
        receipt_ids: dict[int, str] = {}
        for row, res in zip(rows, results, strict=True):
            if not isinstance(res, dict) or res.get("id") != row.message_id:
                raise TransportError("results are not in the order of the messages")
            status = res.get("status")
            if status in ("accepted", "duplicate"):
                idx = res.get("receipt")
                if not isinstance(idx, int) or not 0 <= idx < len(receipts):
                    raise TransportError(f"no receipt for message {row.message_id}")
                receipt = receipts[idx]
                if receipt is None:
                    raise TransportError(f"no receipt for message {row.message_id}")
                entry = receipt.entry_for(row.message_id, row.message_hash)
                receipt_ids.setdefault(idx, "")
                delivered.append({"seq": row.seq, "idx": idx, "receiver_seq": entry["seq"],
                                  "receiver_log_index": entry["log"]})
                continue
            raw_problem = res.get("problem")
            problem: dict[str, Any] = raw_problem if isinstance(raw_problem, dict) else {}
            slug = str(problem.get("type", "")).rsplit(":", 1)[-1]
            detail = f"{slug or status}: {problem.get('detail', '')}"
            if status == "rejected" and slug not in RETRYABLE_SLUGS:
                failed.append({"seq": row.seq, "status": "failed", "last_error": detail[:2000]})
                refused.append((row.message_id, row.type, detail[:2000]))
                continue
            # Deferred: keep order, retry this one (and what follows) later.
            deferred = (row.seq, detail)
            break
        with session_scope(self.sessions) as session:
            for idx in receipt_ids:
                receipt = receipts[idx]
                assert receipt is not None
                receipt_ids[idx] = self._hold_receipt(session, receipt, peer_id, now)
            if delivered:
                session.execute(update(OutboxMessage), [
                    {"seq": d["seq"], "status": "delivered", "delivered_at": now,
                     "receipt_id": receipt_ids[d["idx"]], "receiver_seq": d["receiver_seq"],
                     "receiver_log_index": d["receiver_log_index"], "last_error": None}
                    for d in delivered])
            if failed:
                session.execute(update(OutboxMessage), failed)
            outcome = (self._defer_in(session, deferred[0], deferred[1], len(delivered),
                                      len(failed)) if deferred is not None else
                       BatchOutcome(delivered=len(delivered), failed=len(failed)))
        if delivered:
            for listener in self._delivered_listeners:
                listener(peer_id)
        self._notify_failed(refused)
        return outcome

    def _hold_receipt(self, session: Session, receipt: Receipt, peer_id: str,
                      now: dt.datetime) -> str:
        digest = canonical.sha256_hex(canonical.dumps(receipt.doc))
        # Insert-or-keep in one statement: two workers holding the same
        # receipt (a lease handed over mid-batch) cannot collide on it.
        table = cast(Table, HeldReceipt.__table__)
        values = {"receipt_id": str(uuid.uuid4()), "peer_id": peer_id, "receipt_hash": digest,
                  "receipt": orjson.dumps(receipt.doc), "stored_at": now}
        dialect = session.get_bind().dialect.name
        stmt = (pg_insert(table) if dialect == "postgresql" else sqlite_insert(table))
        session.execute(stmt.values(**values).on_conflict_do_nothing(
            index_elements=["receipt_hash"]))
        held = session.scalar(select(HeldReceipt.receipt_id).where(
            HeldReceipt.receipt_hash == digest))
        assert held is not None
        return str(held)

    def _fail(self, seq: int, error: str) -> BatchOutcome:
        """A final refusal of one message: it will never be accepted as it is."""
        with session_scope(self.sessions) as session:
            row = session.get(OutboxMessage, seq)
            assert row is not None
            row.status = "failed"
            row.last_error = error[:2000]
            message_id, type_ = row.message_id, row.type
        self._notify_failed([(message_id, type_, error[:2000])])
        return BatchOutcome(failed=1)

    def _notify_failed(self, refused: list[tuple[str, str, str]]) -> None:
        for message_id, type_, error in refused:
            for on_failed in self._failed_listeners:
                try:
                    on_failed(message_id, type_, error)
                except Exception:  # the refusal is recorded; a listener must not undo that
                    log.exception("handling the refusal of message %s failed", message_id)

    def _defer(self, seq: int, error: str) -> BatchOutcome:
        with session_scope(self.sessions) as session:
            return self._defer_in(session, seq, error, 0, 0)

    def _defer_in(self, session: Session, seq: int, error: str, delivered: int,
                  failed: int) -> BatchOutcome:
        row = session.get(OutboxMessage, seq)
        assert row is not None
        row.attempts += 1
        row.last_error = error[:2000]
        row.next_attempt_at = self.clock.now() + dt.timedelta(seconds=self.backoff(row.attempts))
        log.info("delivery of %s to %s deferred: %s", row.message_id, row.peer_id, error)
        return BatchOutcome(delivered=delivered, failed=failed, retry_at=row.next_attempt_at)



def _within_bytes(rows: list[OutboxMessage], limit: int) -> list[OutboxMessage]:
    """The longest prefix of ``rows`` whose delivery stays under ``limit`` bytes.

    At least one row is always kept: a message that alone exceeds a peer's
    limit is refused by that peer, and then fails on its own.
    """
    budget = limit - 4096  # the delivery's own fields and signature
    out: list[OutboxMessage] = []
    for row in rows:
        budget -= len(row.envelope) + 1
        if budget < 0 and out:
            break
        out.append(row)
    return out
