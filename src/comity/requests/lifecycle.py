"""The legal life of a request: states, the events that move it, and who may send each.

Legal states are kept apart from transport: whether a message has reached
the peer is the federation's business (its outbox and receipts); this module
says only what a request *means* after each act of the parties.

The table :data:`EVENTS` is the whole state machine. An event names the side
that may perform it (the requesting or the requested party), the states it
may leave from, the state it leads to (``None``: the state does not change,
e.g. a disclosed path), the elements its body must carry, and whether it
applies only to preservation requests.

Both parties hold the same set of events (every event after sending is a
signed federation message, numbered per side), and :func:`replay` derives the
state from them in one canonical order: each side's events in the order it
sent them, the two sides merged by signed time. Two acts that cross in flight
(a withdrawal and an execution sent at the same moment) are therefore settled
the same way on both sides: the later one in that order is kept in the
timeline, marked as not applied, with the reason.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["EVENTS", "EventSpec", "Replayed", "Shared", "Side", "State", "canonical_order",
           "check_event", "replay"]


class State(enum.StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    REFERRED = "referred"
    UNDER_ASSESSMENT = "under_assessment"
    CLARIFICATION_REQUESTED = "clarification_requested"
    CONDITIONS_PROPOSED = "conditions_proposed"
    CONDITIONS_ACCEPTED = "conditions_accepted"
    CONDITIONS_REJECTED = "conditions_rejected"
    CONFIDENTIALITY_NOT_POSSIBLE = "confidentiality_not_possible"
    POSTPONED = "postponed"
    IN_EXECUTION = "in_execution"
    DELAY_NOTIFIED = "delay_notified"
    PRESERVED = "preserved"
    EXTENSION_REQUESTED = "extension_requested"
    EXTENDED = "extended"
    EXPIRED = "expired"
    LIFTED = "lifted"
    SUPERSEDED_BY_MLA = "superseded_by_mla"
    EXECUTED_PARTIALLY = "executed_partially"
    EXECUTED = "executed"
    REFUSED = "refused"
    IMPOSSIBLE = "impossible"
    WITHDRAWN = "withdrawn"
    CLOSED = "closed"


class Side(enum.StrEnum):
    REQUESTER = "requester"
    REQUESTED = "requested"


S = State
# States in which the requested party still owes an answer.
OPEN = (S.SENT, S.ACKNOWLEDGED, S.REFERRED, S.UNDER_ASSESSMENT, S.CLARIFICATION_REQUESTED,
        S.CONDITIONS_PROPOSED, S.CONDITIONS_ACCEPTED, S.CONDITIONS_REJECTED,
        S.CONFIDENTIALITY_NOT_POSSIBLE, S.POSTPONED, S.IN_EXECUTION, S.DELAY_NOTIFIED)
# Where the requested party may decide (execute, refuse, preserve...).
DECIDABLE = (S.SENT, S.ACKNOWLEDGED, S.REFERRED, S.UNDER_ASSESSMENT, S.CONDITIONS_ACCEPTED,
             S.CONDITIONS_REJECTED, S.POSTPONED, S.IN_EXECUTION, S.DELAY_NOTIFIED)
PRESERVING = (S.PRESERVED, S.EXTENSION_REQUESTED, S.EXTENDED)
# Outcomes after which only closing is left.
ENDED = (S.EXECUTED, S.REFUSED, S.IMPOSSIBLE, S.WITHDRAWN, S.EXPIRED, S.LIFTED,
         S.SUPERSEDED_BY_MLA)
# States in which the request is still alive for the requester to withdraw it.
WITHDRAWABLE = (*OPEN, *PRESERVING, S.EXECUTED_PARTIALLY)
# States before sending: local to the requesting node, never on the wire.
LOCAL = (S.DRAFT, S.PENDING_APPROVAL, S.APPROVED)


@dataclass(frozen=True)
class EventSpec:
    name: str
    side: Side
    sources: tuple[State, ...]
    target: State | None
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    preservation_only: bool = False
    title: str = ""


R, P = Side.REQUESTER, Side.REQUESTED
EVENTS: dict[str, EventSpec] = {e.name: e for e in (
    EventSpec("acknowledge", P, (S.SENT, S.REFERRED), S.ACKNOWLEDGED, ("reference",),
              title="Acknowledged, with the requested party's reference"),
    EventSpec("refer", P, (S.SENT, S.ACKNOWLEDGED, S.UNDER_ASSESSMENT), S.REFERRED,
              ("referred_to",), ("reasons",),
              title="Referred to the competent authority (Budapest Art. 27(9)(c))"),
    EventSpec("assess", P, (S.ACKNOWLEDGED, S.REFERRED), S.UNDER_ASSESSMENT,
              title="Under assessment"),
    EventSpec("request_clarification", P, (S.SENT, S.ACKNOWLEDGED, S.UNDER_ASSESSMENT,
                                           S.IN_EXECUTION),
              S.CLARIFICATION_REQUESTED, ("questions",),
              title="Clarification requested (UNTOC Art. 18(16))"),
    EventSpec("answer_clarification", R, (S.CLARIFICATION_REQUESTED,), S.UNDER_ASSESSMENT,
              ("answers",), title="Clarification answered"),
    EventSpec("propose_conditions", P, (S.ACKNOWLEDGED, S.UNDER_ASSESSMENT,
                                        S.CONDITIONS_REJECTED),
              S.CONDITIONS_PROPOSED, ("conditions",),
              title="Conditions proposed (Budapest Arts. 27(6), 28)"),
    EventSpec("accept_conditions", R, (S.CONDITIONS_PROPOSED,), S.CONDITIONS_ACCEPTED,
              title="Conditions accepted"),
    EventSpec("reject_conditions", R, (S.CONDITIONS_PROPOSED,), S.CONDITIONS_REJECTED,
              optional=("reasons",), title="Conditions rejected"),
    EventSpec("notify_confidentiality_not_possible", P,
              (S.ACKNOWLEDGED, S.UNDER_ASSESSMENT, S.IN_EXECUTION),
              S.CONFIDENTIALITY_NOT_POSSIBLE, ("reasons",),
              title="Confidentiality cannot be kept (Budapest Art. 27(8))"),
    EventSpec("proceed", R, (S.CONFIDENTIALITY_NOT_POSSIBLE,), S.UNDER_ASSESSMENT,
              title="Requester decides to proceed"),
    EventSpec("postpone", P, (S.ACKNOWLEDGED, S.UNDER_ASSESSMENT, S.CONDITIONS_ACCEPTED,
                              S.IN_EXECUTION), S.POSTPONED, ("reasons",), ("until",),
              title="Postponed (Budapest Art. 27(5))"),
    EventSpec("start_execution", P, (S.SENT, S.ACKNOWLEDGED, S.UNDER_ASSESSMENT,
                                     S.CONDITIONS_ACCEPTED, S.POSTPONED, S.REFERRED),
              S.IN_EXECUTION, title="In execution"),
    EventSpec("notify_delay", P, (S.IN_EXECUTION,), S.DELAY_NOTIFIED, ("reasons",),
              title="Significant delay notified (Budapest Art. 27(7))"),
    EventSpec("preserve", P, DECIDABLE, S.PRESERVED, ("preserved_at", "until"), ("notes",),
              preservation_only=True, title="Data preserved (Budapest Art. 29(3), 29(7))"),
    EventSpec("disclose_path", P, PRESERVING, None, ("providers",), ("notes",),
              preservation_only=True, title="Traffic path disclosed (Budapest Art. 30)"),
    EventSpec("request_extension", R, (S.PRESERVED, S.EXTENDED), S.EXTENSION_REQUESTED,
              ("until", "reasons"), preservation_only=True, title="Extension requested"),
    EventSpec("extend", P, (S.EXTENSION_REQUESTED,), S.EXTENDED, ("until",),
              preservation_only=True, title="Preservation extended"),
    EventSpec("decline_extension", P, (S.EXTENSION_REQUESTED,), S.PRESERVED, ("reasons",),
              preservation_only=True,
              title="Extension declined: preserved until the current expiry"),
    EventSpec("expire", P, PRESERVING, S.EXPIRED, preservation_only=True,
              title="Preservation expired"),
    EventSpec("lift", R, PRESERVING, S.LIFTED, optional=("reasons",), preservation_only=True,
              title="Preservation lifted: no longer needed"),
    EventSpec("supersede", R, PRESERVING, S.SUPERSEDED_BY_MLA, ("mla_request",),
              preservation_only=True,
              title="Superseded by a request for mutual assistance (Budapest Art. 29(7))"),
    EventSpec("execute_partially", P, (*DECIDABLE, *PRESERVING), S.EXECUTED_PARTIALLY,
              ("summary", "not_executed"), ("evidence",),
              title="Partially executed (Budapest Art. 27(6))"),
    EventSpec("execute", P, (*DECIDABLE, S.EXECUTED_PARTIALLY), S.EXECUTED, ("summary",),
              ("evidence",), title="Executed"),
    EventSpec("refuse", P, (*DECIDABLE, S.CONFIDENTIALITY_NOT_POSSIBLE, S.CLARIFICATION_REQUESTED,
                            S.CONDITIONS_PROPOSED),
              S.REFUSED, ("grounds", "reasons"),
              title="Refused, with grounds and reasons (Budapest Art. 27(7))"),
    EventSpec("declare_impossible", P, DECIDABLE, S.IMPOSSIBLE, ("reasons",),
              title="Execution impossible (Budapest Art. 27(7))"),
    EventSpec("withdraw", R, WITHDRAWABLE, S.WITHDRAWN, ("reasons",),
              title="Withdrawn by the requester (UNTOC Art. 18(24))"),
    EventSpec("close", R, (*ENDED, S.EXECUTED_PARTIALLY, S.CONDITIONS_REJECTED), S.CLOSED,
              title="Closed (use limits and confidentiality survive)"),
)}

# Body elements of events: what each must be.
TEXT_ELEMENTS = frozenset({"reference", "referred_to", "reasons", "questions", "answers",
                           "conditions", "notes", "providers", "summary", "not_executed"})
TIME_ELEMENTS = frozenset({"until", "preserved_at"})


@dataclass(frozen=True)
class Shared:
    """One shared event as both sides hold it."""

    side: Side
    n: int  # the how-manieth event of its side
    seen: int  # how many of the other side's events its sender held when acting
    at: str  # signed time, ISO 8601 in UTC
    name: str


@dataclass(frozen=True)
class Applied:
    """One event in canonical order, and whether it changed the state."""

    side: Side
    n: int
    name: str
    applied: bool
    before: State
    after: State
    note: str | None = None


@dataclass(frozen=True)
class Replayed:
    state: State
    events: tuple[Applied, ...]


def check_event(name: str, side: Side, state: State, *, preservation: bool) -> EventSpec:
    """The spec of event ``name`` if ``side`` may perform it now, else raise why not.

    Raises:
        IllegalTransitionError: naming the event, the state and who may act.
    """
    from comity.requests.errors import IllegalTransitionError

    spec = EVENTS.get(name)
    if spec is None:
        raise IllegalTransitionError(f"unknown event {name!r}; events are: "
                                     f"{', '.join(sorted(EVENTS))}")
    if spec.preservation_only and not preservation:
        raise IllegalTransitionError(f"{name!r} applies only to preservation requests")
    if spec.side != side:
        raise IllegalTransitionError(f"only the {spec.side.value} party may {name!r}; "
                                     f"this node is the {side.value} party")
    if state not in spec.sources:
        allowed = ", ".join(s.value for s in spec.sources)
        raise IllegalTransitionError(
            f"cannot {name!r} a request that is {state.value}; allowed from: {allowed}",
            state=state.value, event=name)
    return spec


def canonical_order(events: Iterable[Shared]) -> list[Shared]:
    """Both sides' events merged in an order both sides compute alike.

    Each side's own sequence is kept as sent (by ``n``). Between the sides,
    an event goes after every event of the other side its sender had seen
    (``seen``), whatever the clocks say; only acts that crossed in flight
    (neither had seen the other) are ordered by signed time, and at equal
    times the requester's goes first.
    """
    listed = list(events)
    mine = {s: sorted((e for e in listed if e.side == s), key=lambda e: e.n)
            for s in (Side.REQUESTER, Side.REQUESTED)}
    a, b = mine[Side.REQUESTER], mine[Side.REQUESTED]
    out: list[Shared] = []
    i = j = 0
    while i < len(a) or j < len(b):
        if j >= len(b) or (i < len(a) and _first(a[i], b[j])):
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    return out


def _first(a: Shared, b: Shared) -> bool:
    """Whether requester event ``a`` goes before requested event ``b``."""
    if a.seen >= b.n:
        return False  # a was sent after its sender had received b
    if b.seen >= a.n:
        return True
    return a.at <= b.at


def replay(events: Iterable[Shared], *, preservation: bool) -> Replayed:
    """Derive the state from the shared events, in :func:`canonical_order`.

    An event that is not legal at its place (two acts that crossed) is kept
    but not applied.
    """
    from comity.requests.errors import IllegalTransitionError

    state = State.SENT
    out: list[Applied] = []
    for e in canonical_order(list(events)):
        try:
            spec = check_event(e.name, e.side, state, preservation=preservation)
        except IllegalTransitionError as err:
            out.append(Applied(e.side, e.n, e.name, False, state, state, err.detail))
            continue
        after = spec.target or state
        out.append(Applied(e.side, e.n, e.name, True, state, after))
        state = after
    return Replayed(state, tuple(out))


def allowed_events(side: Side, state: State, *, preservation: bool) -> Sequence[str]:
    """The events ``side`` may perform in ``state`` (for the UI and ``show``)."""
    return [e.name for e in EVENTS.values()
            if e.side == side and state in e.sources
            and (preservation or not e.preservation_only)]
