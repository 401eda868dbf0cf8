"""Requests: drafting, approving, sending, acting on and receiving cross-border requests.

Every act after sending is a signed federation message (``request.submit``,
``request.event``) written to the outbox in the same transaction as the
event row and the derived state, so the act, its promise of delivery and its
SENT log entry commit or vanish together. The state of a request is never
edited directly: it is replayed from its events
(:func:`comity.requests.lifecycle.replay`), on both sides, in the same order.

Acts before sending (drafting, submitting for approval, approving) are local
to the requesting node and kept in the same timeline without a message.

Trust assumptions: bodies from peers arrive verified (signature, agreement,
freshness) by the federation; everything in them is still checked here
against the catalog, the request's parties and its state.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from comity.agreements.authorization import Purpose, authorize
from comity.agreements.errors import AgreementNotFoundError
from comity.agreements.services import get_agreement
from comity.clock import Clock, format_ts, parse_ts
from comity.db import session_scope
from comity.evidence.services import Evidence
from comity.federation.errors import InvalidBodyError
from comity.federation.registry import ReceiveContext
from comity.federation.services import Federation
from comity.hazmat import canonical
from comity.identity.services import IdentityHolder, get_peer
from comity.requests import lifecycle
from comity.requests.catalog import OUTCOMES, Catalog, RequestTypeSpec
from comity.requests.deadlines import Deadline, Period, add_period, minimum_violation
from comity.requests.errors import (
    IllegalTransitionError,
    RequestConflictError,
    RequestError,
    RequestNotFoundError,
    RequestValidationError,
)
from comity.requests.lifecycle import EVENTS, Shared, Side, State
from comity.requests.models import Request, RequestEvent
from comity.requests.schemas import RequestDocument, parse_request

__all__ = ["EventInput", "Listing", "RequestFilter", "Requests"]

SUBMIT = "request.submit"
EVENT = "request.event"
MLA_TYPES = frozenset({"mla-stored-data", "mla-general", "emergency-mla"})
LOCAL_EVENTS = {"create": State.DRAFT, "submit": State.PENDING_APPROVAL,
                "approve": State.APPROVED, "return": State.DRAFT}


@dataclass(frozen=True)
class EventInput:
    """An act an officer asks for: the event and its elements."""

    name: str
    data: dict[str, Any]


@dataclass(frozen=True)
class RequestFilter:
    direction: str | None = None
    states: tuple[str, ...] = ()
    type: str | None = None
    peer: str | None = None
    offence: str | None = None
    country: str | None = None
    overdue: bool = False
    due_before: dt.datetime | None = None


@dataclass(frozen=True)
class Listing:
    items: list[dict[str, Any]]
    next: str | None


def _side(row: Request) -> Side:
    return Side.REQUESTER if row.direction == "out" else Side.REQUESTED


def _other(side: Side) -> Side:
    return Side.REQUESTED if side == Side.REQUESTER else Side.REQUESTER


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


class Requests:
    """The requests of one node."""

    def __init__(self, federation: Federation, identity: IdentityHolder, clock: Clock,
                 catalog: Catalog, *, evidence: Evidence, timezone: str = "UTC") -> None:
        self.federation = federation
        self.sessions = federation.sessions
        self.identity = identity
        self.clock = clock
        self.catalog = catalog
        self.tz = ZoneInfo(timezone)
        # Records (and checks) the evidence packages an act carries.
        self.evidence = evidence

    # -- drafting (local) ------------------------------------------------------

    def create(self, session: Session, raw: dict[str, Any], *, to: str, agreement_id: str,
               by: str | None = None) -> Request:
        """Validate a request and store it as a draft addressed to ``to``.

        Missing ``v``, ``id``, ``created`` and ``instrument`` are filled in (the
        instrument from the agreement). Nothing is stored unless every check
        passes.

        Raises:
            RequestValidationError, UnknownRequestTypeError, AuthorizationError,
            UnknownPeerError
        """
        local = self.identity.get()
        peer = get_peer(session, to)
        now = self.clock.now()
        # The creation time is this node's, whatever the document says: a
        # backdated draft must not make deadlines look met or missed.
        raw = {"v": 1, "id": str(uuid.uuid4()), **raw, "created": format_ts(now)}
        spec = self.catalog.type(raw["type"]) if isinstance(raw.get("type"), str) else None
        view = get_agreement(session, agreement_id) if agreement_id else None
        if spec is not None and "instrument" not in raw:
            raw["instrument"] = self._instrument(spec, agreement_id, view)
        doc = parse_request(raw, self.catalog)
        spec = self.catalog.type(doc.type)
        problems = []
        if doc.instrument not in self._agreed_instruments(view):
            problems.append({"field": "instrument", "message":
                             f"agreement {agreement_id} does not apply "
                             f"{self.catalog.instruments[doc.instrument].title}"})
        if local.card.kind not in spec.sender_kinds:
            problems.append({"field": "type", "message":
                             f"a {local.card.kind} node may not send {spec.title} requests "
                             f"(senders: {', '.join(spec.sender_kinds)})"})
        if peer.kind not in spec.recipient_kinds:
            problems.append({"field": "to", "message":
                             f"{spec.title} requests go to {', '.join(spec.recipient_kinds)} "
                             f"nodes; {peer.name} is a {peer.kind}"})
        if problems:
            raise RequestValidationError(problems)
        authorize(session, agreement_id=agreement_id, local_id=local.node_id, peer_id=to,
                  purpose=self._purpose(doc), at=now)
        for ref in doc.references:
            other = session.scalar(select(Request).where(Request.request_id == ref))
            if other is None or other.peer_id != to:
                raise RequestValidationError([{"field": "references", "message":
                                               f"no request {ref} with this peer is held here"}])
        if session.scalar(select(Request.seq).where(Request.request_id == doc.id)) is not None:
            raise RequestConflictError(f"a request with id {doc.id} already exists")
        row = Request(
            request_id=doc.id, direction="out", peer_id=to, peer_country=peer.jurisdiction,
            agreement_id=agreement_id, type=doc.type, instrument=doc.instrument,
            offence=doc.offence, reference=doc.reference, urgent=doc.flags.urgent,
            emergency=doc.flags.emergency, document=canonical.dumps(doc.to_dict()).decode(),
            created_by=by, created_at=now, state=State.DRAFT.value, updated_at=now)
        session.add(row)
        self._local_event(session, row, "create", {}, by)
        session.flush()
        return row

    def _agreed_instruments(self, view: Any) -> tuple[str, ...]:
        doc = None if view is None else (view.effective or view.documents[view.latest.version])
        return () if doc is None else tuple(doc.scope.instruments)

    def _instrument(self, spec: RequestTypeSpec, agreement_id: str, view: Any) -> str:
        agreed = self._agreed_instruments(view)
        for inst in agreed:
            if inst in spec.legal_basis:
                return inst
        if not agreed:
            raise RequestValidationError([{"field": "instrument", "message":
                f"agreement {agreement_id} names no treaty instrument (scope.instruments); "
                "the legal basis of a request must come from the agreement"}])
        raise RequestValidationError([{"field": "instrument", "message":
            f"{spec.title} has no legal basis under the instruments of agreement "
            f"{agreement_id} ({', '.join(agreed)})"}])

    @staticmethod
    def _purpose(doc: RequestDocument) -> Purpose:
        return Purpose(request_type=doc.type, offence_category=doc.offence,
                       data_categories=doc.data_categories, language=doc.language)

    def submit(self, session: Session, request_id: str, *, by: str | None = None) -> Request:
        """Draft -> pending approval."""
        return self._local_move(session, request_id, "submit", (State.DRAFT,), by)

    def approve(self, session: Session, request_id: str, *, by: str | None = None) -> Request:
        """Pending approval -> approved, by a named officer other than its author."""
        row = self._load_out(session, request_id)
        if not by:
            raise RequestValidationError([{"field": "by", "message": "an approval must name "
                                           "the officer who approves"}])
        if by == row.created_by or by in self._submitters(session, row.request_id):
            raise IllegalTransitionError("a request must be approved by someone other than "
                                         "the officer who drafted it")
        row = self._local_move(session, request_id, "approve", (State.PENDING_APPROVAL,), by)
        row.approved_by = by
        return row

    def local_step(self, session: Session, request_id: str, step: str, *,
                   by: str | None = None, reasons: str | None = None) -> Request:
        """One of the requesting node's own steps: submit, approve, return or send.

        Raises:
            IllegalTransitionError: ``step`` is none of them (or not allowed now).
        """
        if step == "submit":
            return self.submit(session, request_id, by=by)
        if step == "approve":
            return self.approve(session, request_id, by=by)
        if step == "return":
            return self.return_to_draft(session, request_id, by=by, reasons=reasons)
        if step == "send":
            return self.send(session, request_id, by=by)
        raise IllegalTransitionError(f"unknown step {step!r}")

    @staticmethod
    def _submitters(session: Session, request_id: str) -> set[str]:
        return {b for b in session.scalars(select(RequestEvent.by).where(
            RequestEvent.request_id == request_id,
            RequestEvent.name.in_(("create", "submit")))) if b}

    def return_to_draft(self, session: Session, request_id: str, *, by: str | None = None,
                        reasons: str | None = None) -> Request:
        """Pending approval -> draft (the supervisor sends it back)."""
        return self._local_move(session, request_id, "return", (State.PENDING_APPROVAL,), by,
                                {"reasons": reasons} if reasons else {})

    def _load_out(self, session: Session, request_id: str) -> Request:
        row = self.get_row(session, request_id, for_update=True)
        if row.direction != "out":
            raise IllegalTransitionError("only the requesting node drafts, approves and sends")
        return row

    def _local_move(self, session: Session, request_id: str, name: str,
                    sources: tuple[State, ...], by: str | None,
                    data: dict[str, Any] | None = None) -> Request:
        row = self._load_out(session, request_id)
        if State(row.state) not in sources:
            raise IllegalTransitionError(
                f"cannot {name} a request that is {row.state}; allowed from: "
                f"{', '.join(s.value for s in sources)}", state=row.state, event=name)
        row.state = LOCAL_EVENTS[name].value
        row.updated_at = self.clock.now()
        self._local_event(session, row, name, data or {}, by)
        return row

    def _local_event(self, session: Session, row: Request, name: str, data: dict[str, Any],
                     by: str | None) -> None:
        now = self.clock.now()
        session.add(RequestEvent(request_id=row.request_id, name=name, side=Side.REQUESTER.value,
                                 actor=self.identity.get().node_id, at=now, message_id=None,
                                 body=_dumps(data), applied=True, by=by, recorded_at=now))

    # -- sending and acting (messages) -----------------------------------------

    def send(self, session: Session, request_id: str, *, by: str | None = None) -> Request:
        """Approved -> sent: the signed request goes to the outbox.

        An MLA request that references a preservation held by the same peer
        also supersedes it (Budapest Art. 29(7)), in the same transaction.
        """
        row = self._load_out(session, request_id)
        if row.state != State.APPROVED.value:
            raise IllegalTransitionError(f"cannot send a request that is {row.state}; it must "
                                         "be approved first", state=row.state, event="send")
        body = orjson.loads(row.document)
        out = self.federation.send(session, to=row.peer_id, type=SUBMIT, body=body,
                                   agreement_id=row.agreement_id)
        row.submit_message_id = out.message_id
        row.sent_at = out.created_at
        row.state = State.SENT.value
        row.updated_at = out.created_at
        session.add(RequestEvent(request_id=row.request_id, name="send",
                                 side=Side.REQUESTER.value, actor=self.identity.get().node_id,
                                 at=out.created_at, message_id=None, body="{}", applied=True,
                                 by=by, recorded_at=self.clock.now(), log_index=out.log_index))
        self._derive(session, row)
        if row.type in MLA_TYPES:
            for ref in body["references"]:
                prior = session.scalar(select(Request).where(Request.request_id == ref))
                if (prior is not None and prior.direction == "out"
                        and prior.state in {s.value for s in lifecycle.PRESERVING}):
                    self.act(session, ref, EventInput("supersede", {"mla_request": row.request_id}),
                             by=by)
        return row

    def act(self, session: Session, request_id: str, event: EventInput, *,
            by: str | None = None) -> Request:
        """Perform ``event`` on a sent request: check it, apply it, send it to the peer.

        Raises:
            IllegalTransitionError: the event is unknown, not this side's, or
                not allowed in the request's state.
            RequestValidationError: its elements are missing or malformed.
        """
        row = self.get_row(session, request_id, for_update=True)
        if row.state in {s.value for s in lifecycle.LOCAL}:
            raise IllegalTransitionError(f"the request is still {row.state}: it has not been "
                                         "sent", state=row.state, event=event.name)
        spec = self.catalog.type(row.type)
        lifecycle.check_event(event.name, _side(row), State(row.state),
                              preservation=spec.preservation)
        data = self.check_data(row, event.name, event.data)
        self._check_supersede(session, row, event.name, data)
        n = self._last(session, row.request_id, _side(row)) + 1
        seen = self._last(session, row.request_id, _other(_side(row)))
        out = self.federation.send(session, to=row.peer_id, type=EVENT, body={
            "request": row.request_id, "event": event.name, "data": data, "n": n,
            "seen": seen}, agreement_id=row.agreement_id)
        session.add(RequestEvent(
            request_id=row.request_id, name=event.name, side=_side(row).value,
            actor=self.identity.get().node_id, at=out.created_at, message_id=out.message_id,
            n=n, seen=seen, body=_dumps(data), applied=True, by=by,
            recorded_at=self.clock.now(),
            log_index=out.log_index))
        if data.get("evidence"):
            self.evidence.attach(session, row, data["evidence"], outgoing=True,
                                 message_id=out.message_id, by=by)
        session.flush()
        self._derive(session, row)
        return row

    def check_data(self, row: Request, name: str, data: object) -> dict[str, Any]:
        """Check an event's elements against the event, the request and the catalog.

        Raises:
            RequestValidationError: naming every problem.
        """
        spec = EVENTS[name]
        rtype = self.catalog.type(row.type)
        problems: list[dict[str, Any]] = []
        if not isinstance(data, dict):
            raise RequestValidationError([{"field": "data", "message": "must be an object"}])
        allowed = {*spec.required, *spec.optional}
        if name == "refuse":
            allowed.add("grounds")
        for k in sorted(set(data) - allowed):
            problems.append({"field": k, "message": f"{name!r} takes no element {k!r}"})
        for k in spec.required:
            if k not in data or data[k] in (None, "", []):
                problems.append({"field": k, "message": f"{name!r} requires {k!r}",
                                 "missing": True})
        for k, v in data.items():
            if k in lifecycle.TEXT_ELEMENTS and (not isinstance(v, str) or not v.strip()
                                                 or len(v) > 20_000):
                problems.append({"field": k, "message": f"{k!r} must be a non-empty text"})
            if k in lifecycle.TIME_ELEMENTS:
                try:
                    if format_ts(parse_ts(v)) != v:
                        raise ValueError
                except (ValueError, TypeError):
                    problems.append({"field": k, "message": f"{k!r} must be a timestamp "
                                                           "such as 2026-12-01T00:00:00Z"})
        if name == "refuse":
            grounds = data.get("grounds")
            if not isinstance(grounds, list) or not grounds or not all(
                    isinstance(g, str) for g in grounds):
                problems.append({"field": "grounds", "message":
                                 "a refusal must name its grounds (Budapest Art. 27(7))"})
            else:
                for g in grounds:
                    if g not in rtype.refusal_grounds:
                        allowed_g = ", ".join(rtype.refusal_grounds) or "none"
                        problems.append({"field": "grounds", "message":
                                         f"{g!r} is not a ground for refusing {rtype.title} "
                                         f"requests (allowed: {allowed_g})"})
        if name == "supersede":
            try:
                if str(uuid.UUID(data.get("mla_request", ""))) != data["mla_request"]:
                    raise ValueError
            except (ValueError, TypeError, AttributeError):
                problems.append({"field": "mla_request", "message": "must be a request id"})
        if name == "acknowledge" and isinstance(data.get("reference"), str) and len(
                data["reference"]) > 100:
            problems.append({"field": "reference", "message": "a reference is at most 100 "
                                                              "characters"})
        if "evidence" in data and (not isinstance(data["evidence"], list)
                                   or not data["evidence"] or len(data["evidence"]) > 16):
            problems.append({"field": "evidence", "message":
                             "evidence must be a list of 1 to 16 signed manifests"})
        if name == "notify_confidentiality_not_possible" and not orjson.loads(
                row.document)["flags"]["confidential"]:
            raise IllegalTransitionError("the request did not ask for confidentiality "
                                         "(Budapest Art. 27(8))", event=name)
        if spec.target is not None and spec.target.value in OUTCOMES and (
                spec.target.value not in rtype.outcomes):
            raise IllegalTransitionError(
                f"{rtype.title} requests cannot end {spec.target.value}; their outcomes are: "
                f"{', '.join(rtype.outcomes)}", event=name)
        if not problems:
            try:
                problems += self._time_rules(row, rtype, name, data)
            except (OverflowError, ValueError):
                problems.append({"field": "until", "message": "the dates are out of range"})
        if problems:
            raise RequestValidationError(problems)
        return data

    @staticmethod
    def _check_supersede(session: Session, row: Request, name: str,
                         data: dict[str, Any]) -> None:
        """A preservation is superseded only by an MLA request held here that cites it."""
        if name != "supersede":
            return
        mla = session.scalar(select(Request).where(Request.request_id == data["mla_request"]))
        if (mla is None or mla.peer_id != row.peer_id or mla.direction != row.direction
                or mla.type not in MLA_TYPES
                or row.request_id not in orjson.loads(mla.document)["references"]):
            raise RequestValidationError([{"field": "mla_request", "message":
                f"{data['mla_request']} is not a request for mutual assistance held here "
                "that refers to this preservation"}])

    def _time_rules(self, row: Request, rtype: RequestTypeSpec, name: str,
                    data: dict[str, Any]) -> list[dict[str, Any]]:
        if name == "preserve":
            start, until = parse_ts(data["preserved_at"]), parse_ts(data["until"])
            assert rtype.preservation_minimum is not None
            # Counted in UTC, not in this node's zone: both parties must reach
            # the same answer, or one would refuse what the other committed.
            why = minimum_violation(start, until, rtype.preservation_minimum, "UTC")
            if why is not None:
                basis = (rtype.preservation_minimum_basis or {}).get(row.instrument)
                cite = self.catalog.cite(row.instrument, basis) if basis else "the catalog"
                return [{"field": "until", "article": cite, "message":
                         f"data must be preserved for at least {rtype.preservation_minimum} "
                         f"({cite}): {why}"}]
        if name in ("extend", "request_extension") and row.preserved_until is not None and (
                parse_ts(data["until"]) <= row.preserved_until):
            return [{"field": "until", "message": "an extension must end after the current "
                                                  f"expiry {format_ts(row.preserved_until)}"}]
        return []

    # -- receiving -------------------------------------------------------------

    def on_submit(self, ctx: ReceiveContext) -> None:
        """A peer's request arrives: check it against the catalog and store it."""
        session, msg, peer = ctx.session, ctx.message, ctx.peer
        try:
            doc = parse_request(msg.body, self.catalog, strict_form=True)
        except RequestError as e:
            raise InvalidBodyError(f"request: {e.detail}") from e
        spec = self.catalog.type(doc.type)
        view = get_agreement(session, str(msg.agreement))
        if doc.instrument not in self._agreed_instruments(view):
            raise InvalidBodyError(f"agreement {msg.agreement} does not apply instrument "
                                   f"{doc.instrument!r}")
        if peer.kind not in spec.sender_kinds or ctx.local.card.kind not in spec.recipient_kinds:
            raise InvalidBodyError(f"{spec.title} requests do not go from a {peer.kind} "
                                   f"to a {ctx.local.card.kind}")
        if session.scalar(select(Request.seq).where(Request.request_id == doc.id)) is not None:
            raise InvalidBodyError(f"request id {doc.id} is already in use here")
        row = Request(
            request_id=doc.id, direction="in", peer_id=peer.node_id,
            peer_country=peer.jurisdiction, agreement_id=str(msg.agreement), type=doc.type,
            instrument=doc.instrument, offence=doc.offence, reference=doc.reference,
            urgent=doc.flags.urgent, emergency=doc.flags.emergency,
            document=canonical.dumps(doc.to_dict()).decode(), submit_message_id=msg.id,
            created_at=ctx.now, state=State.SENT.value, updated_at=ctx.now,
            sent_at=parse_ts(msg.header["created"]))
        session.add(row)
        session.add(RequestEvent(request_id=doc.id, name="send", side=Side.REQUESTER.value,
                                 actor=peer.node_id, at=row.sent_at, message_id=None,
                                 body="{}", applied=True, recorded_at=ctx.now))
        session.flush()
        self._derive(session, row)

    def on_event(self, ctx: ReceiveContext) -> None:
        """A peer's act on a request both sides hold."""
        session, msg, body = ctx.session, ctx.message, ctx.message.body
        row = session.scalar(select(Request).where(Request.request_id == body["request"])
                             .with_for_update())
        if row is None or row.peer_id != ctx.peer.node_id:
            raise InvalidBodyError(f"no request {body['request']} with this peer is held here")
        if msg.agreement != row.agreement_id:
            raise InvalidBodyError("the event names another agreement than its request")
        spec = EVENTS[body["event"]]
        peer_side = Side.REQUESTED if row.direction == "out" else Side.REQUESTER
        last = self._last(session, row.request_id, peer_side)
        if body["n"] <= last:
            # Delivery is in order per peer: a number not above the last one
            # is a repeat. (A gap is an event this node refused: the sender
            # then drops it from its own timeline too.)
            raise InvalidBodyError(f"event number {body['n']} of the {peer_side.value} "
                                   f"party arrives after number {last}")
        ours = self._last(session, row.request_id, _other(peer_side))
        before = session.scalar(select(func.max(RequestEvent.seen)).where(
            RequestEvent.request_id == row.request_id, RequestEvent.side == peer_side.value))
        if before is not None and body["seen"] < before:
            raise InvalidBodyError("the event claims to have seen fewer events of this node "
                                   "than the sender's previous one")
        if body["seen"] > ours:
            raise InvalidBodyError(f"the event claims to have seen event {body['seen']} of "
                                   f"this node, which is at {ours}")
        rtype = self.catalog.type(row.type)
        if spec.side != peer_side:
            raise InvalidBodyError(f"only the {spec.side.value} party may {spec.name!r}")
        if spec.preservation_only and not rtype.preservation:
            raise InvalidBodyError(f"{spec.name!r} applies only to preservation requests")
        try:
            data = self.check_data(row, spec.name, body["data"])
        except RequestError as e:
            raise InvalidBodyError(f"{spec.name}: {e.detail}") from e
        try:
            self._check_supersede(session, row, spec.name, data)
        except RequestError as e:
            raise InvalidBodyError(e.detail) from e
        if body["seen"] >= ours:
            # The sender had seen everything of ours: this is no crossing, so
            # an act that is not allowed now is refused, never stored.
            try:
                lifecycle.check_event(spec.name, peer_side, State(row.state),
                                      preservation=rtype.preservation)
            except RequestError as e:
                raise InvalidBodyError(e.detail) from e
        event = RequestEvent(
            request_id=row.request_id, name=spec.name, side=peer_side.value,
            actor=ctx.peer.node_id, at=parse_ts(msg.header["created"]), message_id=msg.id,
            n=body["n"], seen=body["seen"], body=_dumps(data), applied=True,
            recorded_at=ctx.now)
        session.add(event)
        session.flush()
        self._derive(session, row)
        if data.get("evidence") and event.applied:
            # Evidence of an act that did not apply (it crossed another) is
            # not taken into custody.
            self.evidence.attach(session, row, data["evidence"], outgoing=False,
                                 message_id=msg.id, peer=ctx.peer)

    def peer_refused(self, message_id: str, type: str, error: str) -> None:
        """The peer finally refused one of our request messages: drop it from our timeline.

        The peer stored nothing of it, so the act leaves the shared events
        (its number is simply skipped) and the state is replayed without it:
        both sides agree again. The refusal stays visible in the timeline.
        """
        if type not in (SUBMIT, EVENT):
            return
        with session_scope(self.sessions) as session:
            if type == EVENT:
                ev = session.scalar(select(RequestEvent).where(
                    RequestEvent.message_id == message_id))
                if ev is None or ev.n is None:
                    return
                ev.n = None
                ev.applied = False
                ev.note = f"refused by the peer: {error}"[:2000]
                session.flush()
                row = self.get_row(session, ev.request_id, for_update=True)
                self._derive(session, row)
                for pkg in self.evidence.for_message(session, message_id):
                    pkg.status = "refused"
            else:
                sent = session.scalar(select(Request).where(
                    Request.submit_message_id == message_id))
                if sent is None:
                    return
                session.add(RequestEvent(
                    request_id=sent.request_id, name="refused_on_arrival",
                    side=Side.REQUESTED.value, actor=sent.peer_id, at=self.clock.now(),
                    message_id=None, body=_dumps({"error": error[:2000]}), applied=True,
                    note="the requested party refused the request on arrival",
                    recorded_at=self.clock.now()))

    # -- derived state ---------------------------------------------------------

    def _derive(self, session: Session, row: Request) -> None:
        """Replay the shared events and store the state, dates and next deadline."""
        events = list(session.scalars(
            select(RequestEvent).where(RequestEvent.request_id == row.request_id,
                                       RequestEvent.n.is_not(None))))
        by_key = {(Side(e.side), int(e.n or 0)): e for e in events}
        spec = self.catalog.type(row.type)
        result = lifecycle.replay(
            (Shared(side, n, int(e.seen or 0), format_ts(e.at), e.name)
             for (side, n), e in by_key.items()),
            preservation=spec.preservation)
        row.state = result.state.value
        row.acknowledged_at = row.executed_at = row.closed_at = None
        row.preserved_until = None
        row.recipient_reference = None
        for applied in result.events:
            ev = by_key[(applied.side, applied.n)]
            ev.applied, ev.note = applied.applied, applied.note
            if not applied.applied:
                continue
            data = orjson.loads(ev.body)
            if applied.name == "acknowledge":
                row.acknowledged_at = row.acknowledged_at or ev.at
                row.recipient_reference = data["reference"]
            elif applied.name in ("execute", "execute_partially"):
                row.executed_at = row.executed_at or ev.at
            elif applied.name == "close":
                row.closed_at = ev.at
            elif applied.name in ("preserve", "extend"):
                row.preserved_until = parse_ts(data["until"])
            row.updated_at = max(row.updated_at, ev.at)
        postponed_until = None
        if result.events and result.events[-1].name == "postpone":
            last = by_key[(result.events[-1].side, result.events[-1].n)]
            until = orjson.loads(last.body).get("until")
            postponed_until = parse_ts(until) if until else None
        nxt = self._next_deadline(session, row, spec, postponed_until)
        row.due_at = nxt.due if nxt else None
        row.due_kind = nxt.kind if nxt else None
        row.due_basis = nxt.basis if nxt else None

    @staticmethod
    def _last(session: Session, request_id: str, side: Side) -> int:
        """The number of the side's last shared event (0: none yet)."""
        return int(session.scalar(select(func.max(RequestEvent.n)).where(
            RequestEvent.request_id == request_id, RequestEvent.side == side.value)) or 0)

    @staticmethod
    def deadlines(row: Request) -> list[Deadline]:
        """The deadline in force, as the last replay stored it (never recomputed apart)."""
        if row.due_at is None or row.due_kind is None:
            return []
        reason = None
        if row.due_kind == "response":
            asked = orjson.loads(row.document)["requested_deadline"]
            reason = asked["reason"] if asked else None
        return [Deadline(row.due_kind, row.due_at, row.due_basis or "", reason)]

    def _next_deadline(self, session: Session, row: Request, spec: RequestTypeSpec,
                       postponed_until: dt.datetime | None) -> Deadline | None:
        state = State(row.state)
        if state in lifecycle.PRESERVING and row.preserved_until is not None:
            basis = (spec.preservation_minimum_basis or {}).get(row.instrument)
            cite = (self.catalog.cite(row.instrument, basis) if basis else "the catalog")
            return Deadline("preservation-expiry", row.preserved_until,
                            f"preserved data kept at least {spec.preservation_minimum} "
                            f"({cite})", None)
        if state == State.POSTPONED and postponed_until is not None:
            return Deadline("postponement-ends", postponed_until, "postponed (Budapest Art. "
                            "27(5))", None)
        if state not in lifecycle.OPEN or row.sent_at is None or state == (
                State.CLARIFICATION_REQUESTED):
            return None
        doc = orjson.loads(row.document)
        if doc["requested_deadline"]:
            return Deadline("response", parse_ts(doc["requested_deadline"]["due"]),
                            "deadline requested by the requesting party",
                            doc["requested_deadline"]["reason"])
        if row.emergency:
            return Deadline("emergency-response", add_period(
                row.sent_at, self.catalog.emergency_period, self.tz),
                f"emergency: answer within {self.catalog.emergency_period}", None)
        days = None
        try:
            view = get_agreement(session, row.agreement_id)
            if view.effective is not None:
                days = view.effective.scope.default_deadlines.get(row.type)
        except AgreementNotFoundError:
            days = None  # fall back on the catalog's period
        if days is not None:
            return Deadline("response", add_period(row.sent_at, Period(days, "days"), self.tz),
                            f"agreement default for {row.type}: {days} days", None)
        return Deadline("response", add_period(row.sent_at, spec.response_period, self.tz),
                        f"catalog default for {spec.title}: {spec.response_period}", None)

    # -- reading ---------------------------------------------------------------

    def get_row(self, session: Session, request_id: str, *, for_update: bool = False
                ) -> Request:
        q = select(Request).where(Request.request_id == request_id)
        if for_update:
            q = q.with_for_update()
        row = session.scalar(q)
        if row is None:
            raise RequestNotFoundError(f"no request {request_id!r} here")
        return row

    def show(self, session: Session, request_id: str) -> dict[str, Any]:
        """A request with its document, timeline, deadlines and the acts allowed now."""
        from comity.federation.models import InboxMessage, OutboxMessage

        row = self.get_row(session, request_id)
        spec = self.catalog.type(row.type)
        events = list(session.scalars(select(RequestEvent).where(
            RequestEvent.request_id == row.request_id).order_by(RequestEvent.seq)))
        ids = [e.message_id for e in events if e.message_id] + (
            [row.submit_message_id] if row.submit_message_id else [])
        transport: dict[str, str] = {}
        if ids:
            for mid, status in session.execute(select(
                    OutboxMessage.message_id, OutboxMessage.status).where(
                    OutboxMessage.message_id.in_(ids))):
                transport[mid] = status
            for (mid,) in session.execute(select(InboxMessage.message_id).where(
                    InboxMessage.message_id.in_(ids))):
                transport[mid] = "received"
        now = self.clock.now()
        deadlines = self.deadlines(row)
        state = State(row.state)
        allowed = ([] if state in lifecycle.LOCAL else
                   list(lifecycle.allowed_events(_side(row), state,
                                                 preservation=spec.preservation)))
        out = summary(row, now)
        out.update({
            "document": orjson.loads(row.document),
            "legal_basis": self.catalog.cite(row.instrument, spec.basis(row.instrument)),
            "type_title": spec.title,
            "timeline": [{
                "event": e.name, "side": e.side, "actor": e.actor, "at": format_ts(e.at),
                "message_id": e.message_id, "data": orjson.loads(e.body),
                "applied": e.applied, "note": e.note, "by": e.by,
                "transport": transport.get(e.message_id or "") if e.message_id else (
                    transport.get(row.submit_message_id or "") if e.name == "send" else None),
                "log_index": e.log_index,
            } for e in events],
            "deadlines": [{"kind": d.kind, "due": format_ts(d.due), "basis": d.basis,
                           "reason": d.reason, "status": _due_status(d.due, now)}
                          for d in deadlines],
            "allowed_events": allowed,
            "evidence": self.evidence.for_request(session, row.request_id),
            "created_by": row.created_by, "approved_by": row.approved_by,
        })
        return out

    def listing(self, session: Session, f: RequestFilter, *, cursor: str | None = None,
             limit: int = 50) -> Listing:
        """One page of requests, newest first, filtered (keyset paging on ``seq``)."""
        limit = max(1, min(limit, 500))
        q: Select[Any] = select(Request)
        if f.direction:
            q = q.where(Request.direction == f.direction)
        if f.states:
            q = q.where(Request.state.in_(f.states))
        if f.type:
            q = q.where(Request.type == f.type)
        if f.peer:
            q = q.where(Request.peer_id == f.peer)
        if f.offence:
            q = q.where(Request.offence == f.offence)
        if f.country:
            q = q.where(Request.peer_country == f.country.upper())
        now = self.clock.now()
        if f.overdue:
            q = q.where(Request.due_at < now)
        if f.due_before is not None:
            q = q.where(Request.due_at <= f.due_before)
        if cursor:
            try:
                q = q.where(Request.seq < int(cursor))
            except ValueError:
                raise RequestValidationError([{"field": "cursor",
                                               "message": "not a cursor"}]) from None
            if not 0 <= int(cursor) < 2**62:
                raise RequestValidationError([{"field": "cursor", "message": "not a cursor"}])
        rows = list(session.scalars(q.order_by(Request.seq.desc()).limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        return Listing([summary(r, now) for r in rows],
                       str(rows[-1].seq) if more and rows else None)

    def due(self, session: Session, *, within: Period) -> list[dict[str, Any]]:
        """Requests with a deadline before now + ``within``, soonest first (overdue included)."""
        now = self.clock.now()
        try:
            horizon = add_period(now, within, self.tz)
        except (OverflowError, ValueError) as e:
            raise RequestValidationError([{"field": "within", "message":
                                           f"{within} is too far ahead"}]) from e
        rows = session.scalars(select(Request).where(
            Request.due_at.is_not(None), Request.due_at <= horizon)
            .order_by(Request.due_at).limit(1000))
        return [summary(r, now) for r in rows]


def _due_status(due: dt.datetime | None, now: dt.datetime) -> str | None:
    if due is None:
        return None
    if due < now:
        return "overdue"
    return "due-soon" if due - now <= dt.timedelta(days=2) else "pending"


def summary(row: Request, now: dt.datetime) -> dict[str, Any]:
    """The listing view of a request."""
    def ts(v: dt.datetime | None) -> str | None:
        return None if v is None else format_ts(v)

    return {"id": row.request_id, "direction": row.direction, "peer": row.peer_id,
            "country": row.peer_country, "agreement": row.agreement_id, "type": row.type,
            "instrument": row.instrument, "offence": row.offence, "reference": row.reference,
            "recipient_reference": row.recipient_reference, "state": row.state,
            "urgent": row.urgent, "emergency": row.emergency,
            "created_at": ts(row.created_at), "sent_at": ts(row.sent_at),
            "acknowledged_at": ts(row.acknowledged_at), "executed_at": ts(row.executed_at),
            "closed_at": ts(row.closed_at), "preserved_until": ts(row.preserved_until),
            "updated_at": ts(row.updated_at),
            "due": None if row.due_at is None else {
                "kind": row.due_kind, "at": ts(row.due_at), "basis": row.due_basis,
                "status": _due_status(row.due_at, now)}}
