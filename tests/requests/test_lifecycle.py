"""The request state machine: every refused transition, and one order for both sides.

The table tests go over every event of :data:`EVENTS` and every shared state.
Who may perform each event, what it leads to and which events are for
preservation only are written out below by hand, so an accidental edit of the
table fails here. The ordering tests generate causal histories (each side
numbers its own events and says how many of the other side's it had seen)
with arbitrary, skewed clocks, and check the properties both nodes rely on to
agree on a request's state.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comity.clock import format_ts
from comity.requests.errors import IllegalTransitionError
from comity.requests.lifecycle import (
    EVENTS,
    Replayed,
    Shared,
    Side,
    State,
    allowed_events,
    canonical_order,
    check_event,
    replay,
)

R, P = Side.REQUESTER, Side.REQUESTED
LOCAL = {State.DRAFT, State.PENDING_APPROVAL, State.APPROVED}
SHARED_STATES = [s for s in State if s not in LOCAL]
EPOCH = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)

# Who performs each event and where it leads (None: the state does not change).
EXPECTED: dict[str, tuple[Side, str | None]] = {
    "acknowledge": (P, "acknowledged"),
    "refer": (P, "referred"),
    "assess": (P, "under_assessment"),
    "request_clarification": (P, "clarification_requested"),
    "answer_clarification": (R, "under_assessment"),
    "propose_conditions": (P, "conditions_proposed"),
    "accept_conditions": (R, "conditions_accepted"),
    "reject_conditions": (R, "conditions_rejected"),
    "notify_confidentiality_not_possible": (P, "confidentiality_not_possible"),
    "proceed": (R, "under_assessment"),
    "postpone": (P, "postponed"),
    "start_execution": (P, "in_execution"),
    "notify_delay": (P, "delay_notified"),
    "preserve": (P, "preserved"),
    "disclose_path": (P, None),
    "request_extension": (R, "extension_requested"),
    "extend": (P, "extended"),
    "decline_extension": (P, "preserved"),
    "expire": (P, "expired"),
    "lift": (R, "lifted"),
    "supersede": (R, "superseded_by_mla"),
    "execute_partially": (P, "executed_partially"),
    "execute": (P, "executed"),
    "refuse": (P, "refused"),
    "declare_impossible": (P, "impossible"),
    "withdraw": (R, "withdrawn"),
    "close": (R, "closed"),
}
PRESERVATION_ONLY = {"preserve", "disclose_path", "request_extension", "extend",
                     "decline_extension", "expire", "lift", "supersede"}
# The events allowed from each shared state (either side), written out.
DECIDE = {"preserve", "execute_partially", "execute", "refuse", "declare_impossible",
          "withdraw"}
KEEP = {"disclose_path", "expire", "lift", "supersede", "execute_partially", "withdraw"}
ALLOWED_FROM: dict[str, set[str]] = {
    "sent": {"acknowledge", "refer", "request_clarification", "start_execution", *DECIDE},
    "acknowledged": {"refer", "assess", "request_clarification", "propose_conditions",
                     "notify_confidentiality_not_possible", "postpone", "start_execution",
                     *DECIDE},
    "referred": {"acknowledge", "assess", "start_execution", *DECIDE},
    "under_assessment": {"refer", "request_clarification", "propose_conditions",
                         "notify_confidentiality_not_possible", "postpone", "start_execution",
                         *DECIDE},
    "clarification_requested": {"answer_clarification", "refuse", "withdraw"},
    "conditions_proposed": {"accept_conditions", "reject_conditions", "refuse", "withdraw"},
    "conditions_accepted": {"postpone", "start_execution", *DECIDE},
    "conditions_rejected": {"propose_conditions", "close", *DECIDE},
    "confidentiality_not_possible": {"proceed", "refuse", "withdraw"},
    "postponed": {"start_execution", *DECIDE},
    "in_execution": {"request_clarification", "notify_confidentiality_not_possible", "postpone",
                     "notify_delay", *DECIDE},
    "delay_notified": DECIDE,
    "preserved": {"request_extension", *KEEP},
    "extension_requested": {"extend", "decline_extension", *KEEP},
    "extended": {"request_extension", *KEEP},
    "expired": {"close"},
    "lifted": {"close"},
    "superseded_by_mla": {"close"},
    "executed_partially": {"execute", "withdraw", "close"},
    "executed": {"close"},
    "refused": {"close"},
    "impossible": {"close"},
    "withdrawn": {"close"},
    "closed": set(),
}


def ts(seconds: int) -> str:
    return format_ts(EPOCH + dt.timedelta(seconds=seconds))


def other(side: Side) -> Side:
    return P if side is R else R


def sequential(names: list[str], *, start: int = 0) -> list[Shared]:
    """Shared events for acts done one after the other, each seeing all before it."""
    count = {R: 0, P: 0}
    out = []
    for k, name in enumerate(names):
        side = EXPECTED[name][0]
        count[side] += 1
        out.append(Shared(side, count[side], count[other(side)], ts(start + k), name))
    return out


def _paths_from_sent() -> dict[State, list[str]]:
    """A shortest sequence of events from ``sent`` to each reachable state."""
    paths: dict[State, list[str]] = {State.SENT: []}
    queue = deque([State.SENT])
    while queue:
        state = queue.popleft()
        for spec in EVENTS.values():
            if state in spec.sources and spec.target is not None and spec.target not in paths:
                paths[spec.target] = [*paths[state], spec.name]
                queue.append(spec.target)
    return paths


PATHS = _paths_from_sent()
REFUSED = [(name, state) for name, spec in EVENTS.items() for state in SHARED_STATES
           if state not in spec.sources]
ALLOWED = [(name, state) for name, spec in EVENTS.items() for state in spec.sources]


# --- the table -----------------------------------------------------------------------

def test_the_table_is_the_one_written_here() -> None:
    assert set(EVENTS) == set(EXPECTED)
    for name, spec in EVENTS.items():
        side, target = EXPECTED[name]
        assert spec.name == name
        assert spec.side is side, name
        assert (None if spec.target is None else spec.target.value) == target, name
        assert spec.preservation_only == (name in PRESERVATION_ONLY), name
        assert spec.title, name


def test_the_sources_are_the_ones_written_here() -> None:
    assert set(ALLOWED_FROM) == {s.value for s in SHARED_STATES}
    for state in SHARED_STATES:
        found = {name for name, spec in EVENTS.items() if state in spec.sources}
        assert found == ALLOWED_FROM[state.value], state.value


def test_no_shared_event_starts_from_a_local_state() -> None:
    for spec in EVENTS.values():
        assert not LOCAL & set(spec.sources), spec.name
        assert spec.target not in LOCAL, spec.name


def test_every_shared_state_is_reachable_from_sent() -> None:
    assert set(PATHS) == set(SHARED_STATES)


def test_the_cases_cover_every_event_and_state() -> None:
    assert {n for n, _ in REFUSED} == set(EVENTS)
    assert {s for _, s in REFUSED} == set(SHARED_STATES)
    assert len(REFUSED) + len(ALLOWED) == len(EVENTS) * len(SHARED_STATES)


@pytest.mark.parametrize(("name", "state"), REFUSED,
                         ids=[f"{n}-from-{s.value}" for n, s in REFUSED])
def test_an_event_is_refused_outside_its_sources(name: str, state: State) -> None:
    side = EXPECTED[name][0]
    with pytest.raises(IllegalTransitionError) as info:
        check_event(name, side, state, preservation=True)
    assert info.value.detail.startswith(f"cannot {name!r} a request that is {state.value};")
    assert info.value.extra == {"state": state.value, "event": name}
    assert info.value.status == 409
    assert name not in allowed_events(side, state, preservation=True)


@pytest.mark.parametrize(("name", "state"), ALLOWED,
                         ids=[f"{n}-from-{s.value}" for n, s in ALLOWED])
def test_the_wrong_side_is_refused_even_from_a_source(name: str, state: State) -> None:
    side = EXPECTED[name][0]
    with pytest.raises(IllegalTransitionError) as info:
        check_event(name, other(side), state, preservation=True)
    assert f"only the {side.value} party may {name!r}" in info.value.detail
    assert name not in allowed_events(other(side), state, preservation=True)


@pytest.mark.parametrize(("name", "state"), [c for c in ALLOWED if c[0] in PRESERVATION_ONLY],
                         ids=[f"{n}-from-{s.value}" for n, s in ALLOWED
                              if n in PRESERVATION_ONLY])
def test_preservation_events_are_refused_on_other_requests(name: str, state: State) -> None:
    side = EXPECTED[name][0]
    with pytest.raises(IllegalTransitionError, match="applies only to preservation requests"):
        check_event(name, side, state, preservation=False)
    assert name not in allowed_events(side, state, preservation=False)


@pytest.mark.parametrize(("name", "state"), ALLOWED,
                         ids=[f"{n}-from-{s.value}" for n, s in ALLOWED])
def test_an_event_from_each_source_leads_to_its_target(name: str, state: State) -> None:
    side, target = EXPECTED[name]
    expected = State(target) if target is not None else state
    preservation_values = (True,) if name in PRESERVATION_ONLY else (True, False)
    for preservation in preservation_values:
        assert check_event(name, side, state, preservation=preservation).name == name
        assert name in allowed_events(side, state, preservation=preservation)
    # The same act at the end of a real history, through replay.
    events = sequential([*PATHS[state], name])
    result = replay(events, preservation=True)
    assert [e.applied for e in result.events] == [True] * len(events)
    assert result.events[-1].before is state
    assert result.state is expected


def test_an_unknown_event_is_refused() -> None:
    with pytest.raises(IllegalTransitionError, match="unknown event 'escalate'"):
        check_event("escalate", R, State.SENT, preservation=True)


def test_allowed_events_written_out() -> None:
    assert allowed_events(R, State.SENT, preservation=False) == ["withdraw"]
    assert allowed_events(P, State.SENT, preservation=False) == [
        "acknowledge", "refer", "request_clarification", "start_execution",
        "execute_partially", "execute", "refuse", "declare_impossible"]
    assert "preserve" in allowed_events(P, State.SENT, preservation=True)
    assert allowed_events(R, State.PRESERVED, preservation=True) == [
        "request_extension", "lift", "supersede", "withdraw"]
    assert allowed_events(P, State.CLOSED, preservation=True) == []
    assert allowed_events(R, State.CLOSED, preservation=True) == []


# --- canonical order ----------------------------------------------------------------

@st.composite
def histories(draw: st.DrawFn) -> list[Shared]:
    """A causally possible history: each side sends, and receives the other's in order.

    ``seen`` is what the sender had received when it acted. Signed times are
    drawn independently of everything (clocks may be skewed either way), from a
    small range so that equal times occur.
    """
    steps = draw(st.lists(st.sampled_from(["send R", "send P", "to R", "to P"]), max_size=40))
    sent = {R: 0, P: 0}
    received = {R: 0, P: 0}
    out = []
    for step in steps:
        verb, who = step.split()
        side = R if who == "R" else P
        if verb == "send":
            sent[side] += 1
            at = draw(st.integers(min_value=0, max_value=20))
            out.append(Shared(side, sent[side], received[side], ts(at), f"{who}{sent[side]}"))
        elif received[side] < sent[other(side)]:
            received[side] += 1
    return out


@settings(max_examples=300, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_canonical_order_respects_causality_and_ignores_input_order(
        events: list[Shared], rnd: random.Random) -> None:
    ordered = canonical_order(events)
    assert sorted(ordered, key=lambda e: (e.side, e.n)) == sorted(events,
                                                                   key=lambda e: (e.side, e.n))
    position = {(e.side, e.n): i for i, e in enumerate(ordered)}
    for side in (R, P):
        mine = [e.n for e in ordered if e.side == side]
        assert mine == list(range(1, len(mine) + 1))
    for e in ordered:
        if e.seen:
            # After the other side's seen-th event, whatever the two clocks said.
            assert position[(e.side, e.n)] > position[(other(e.side), e.seen)]
    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert canonical_order(shuffled) == ordered
    assert canonical_order(reversed(events)) == ordered


@settings(max_examples=300, deadline=None)
@given(tw=st.integers(0, 50), t_ack=st.integers(0, 50), gaps=st.tuples(
    st.integers(0, 10), st.integers(0, 10)), seen=st.integers(0, 2))
def test_crossing_withdraw_and_execute_settle_alike(tw: int, t_ack: int,
                                                   gaps: tuple[int, int], seen: int) -> None:
    t_start = t_ack + gaps[0]
    t_exec = t_start + gaps[1]
    # The requester withdraws having seen `seen` (< 3) of the requested party's
    # events; the requested party executes without having seen the withdrawal.
    withdraw = Shared(R, 1, seen, ts(tw), "withdraw")
    theirs = [Shared(P, 1, 0, ts(t_ack), "acknowledge"),
              Shared(P, 2, 0, ts(t_start), "start_execution"),
              Shared(P, 3, 0, ts(t_exec), "execute")]
    one = replay([withdraw, *theirs], preservation=False)
    two = replay([*reversed(theirs), withdraw], preservation=False)
    assert one == two
    # With each side's clock running forward, the earlier signed time wins, and
    # the requester at equal times.
    winner, loser, final = (("withdraw", "execute", State.WITHDRAWN) if tw <= t_exec
                            else ("execute", "withdraw", State.EXECUTED))
    assert one.state is final
    by_name = {e.name: e for e in one.events}
    assert by_name[winner].applied
    assert not by_name[loser].applied
    assert by_name[loser].before is by_name[loser].after is one.state
    assert by_name[loser].note == (f"cannot {loser!r} a request that is {one.state.value}; "
                                   f"allowed from: "
                                   + ", ".join(s.value for s in EVENTS[loser].sources))


# --- scenarios ------------------------------------------------------------------------

def _state(result: Replayed) -> list[tuple[str, bool, str]]:
    return [(e.name, e.applied, e.after.value) for e in result.events]


def test_acknowledge_preserve_supersede_at_one_instant() -> None:
    t = ts(0)
    events = [Shared(P, 1, 0, t, "acknowledge"), Shared(P, 2, 0, t, "preserve"),
              Shared(R, 1, 2, t, "supersede")]
    for order in (events, events[::-1]):
        result = replay(order, preservation=True)
        # At equal times the requester's event would go first; `seen` puts it last.
        assert result.state is State.SUPERSEDED_BY_MLA
        assert _state(result) == [("acknowledge", True, "acknowledged"),
                                  ("preserve", True, "preserved"),
                                  ("supersede", True, "superseded_by_mla")]


def test_seen_beats_a_requester_clock_running_behind() -> None:
    events = [Shared(P, 1, 0, ts(100), "acknowledge"), Shared(P, 2, 0, ts(200), "preserve"),
              Shared(R, 1, 2, ts(5), "supersede")]
    assert replay(events, preservation=True).state is State.SUPERSEDED_BY_MLA


def test_without_seen_the_same_clocks_leave_the_supersede_unapplied() -> None:
    # The counter-case: had the requester seen nothing, its earlier signed time
    # would put the supersede first, where it is illegal.
    events = [Shared(P, 1, 0, ts(100), "acknowledge"), Shared(P, 2, 0, ts(200), "preserve"),
              Shared(R, 1, 0, ts(5), "supersede")]
    result = replay(events, preservation=True)
    assert result.state is State.PRESERVED
    assert _state(result)[0] == ("supersede", False, "sent")


def test_withdraw_crossing_a_later_execute() -> None:
    withdraw = Shared(R, 1, 0, ts(10), "withdraw")
    execute = Shared(P, 1, 0, ts(11), "execute")
    for order in ([withdraw, execute], [execute, withdraw]):
        result = replay(order, preservation=False)
        assert result.state is State.WITHDRAWN
        assert _state(result) == [("withdraw", True, "withdrawn"),
                                  ("execute", False, "withdrawn")]
        note = result.events[1].note
        assert note is not None
        assert note.startswith("cannot 'execute' a request that is withdrawn;")


def test_execute_crossing_a_later_withdraw() -> None:
    withdraw = Shared(R, 1, 0, ts(11), "withdraw")
    execute = Shared(P, 1, 0, ts(10), "execute")
    for order in ([withdraw, execute], [execute, withdraw]):
        result = replay(order, preservation=False)
        assert result.state is State.EXECUTED
        assert _state(result) == [("execute", True, "executed"),
                                  ("withdraw", False, "executed")]


def test_a_disclosed_path_keeps_the_state() -> None:
    events = sequential(["acknowledge", "preserve", "disclose_path", "request_extension",
                         "extend", "disclose_path", "lift", "close"])
    result = replay(events, preservation=True)
    assert [e.after.value for e in result.events] == [
        "acknowledged", "preserved", "preserved", "extension_requested", "extended",
        "extended", "lifted", "closed"]
    assert result.state is State.CLOSED


def test_replay_of_nothing_is_sent() -> None:
    assert replay([], preservation=False) == Replayed(State.SENT, ())
