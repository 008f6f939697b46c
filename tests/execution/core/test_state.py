"""The order state machine: every edge of the 9x9 status grid, and terminal states are absorbing."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tradeloop.errors import InvalidTransitionError, OrderStateError
from tradeloop.execution.core.state import ALLOWED_TRANSITIONS, can_transition, transition
from tradeloop.execution.types import TERMINAL_STATUSES, Order, OrderSide, OrderStatus

S = OrderStatus
ALL_PAIRS = list(itertools.product(list(S), repeat=2))
ALLOWED_PAIRS = [(a, b) for a, b in ALL_PAIRS if b in ALLOWED_TRANSITIONS[a]]
DISALLOWED_PAIRS = [(a, b) for a, b in ALL_PAIRS if b not in ALLOWED_TRANSITIONS[a]]

# The diagram in state.py, written out independently so a change to the table is noticed.
EXPECTED_EDGES = {
    (S.NEW, S.ACCEPTED),
    (S.NEW, S.REJECTED),
    (S.NEW, S.CANCELED),
    (S.NEW, S.HELD),
    (S.HELD, S.ACCEPTED),
    (S.HELD, S.CANCELED),
    (S.HELD, S.EXPIRED),
    (S.HELD, S.REJECTED),
    (S.ACCEPTED, S.PARTIALLY_FILLED),
    (S.ACCEPTED, S.FILLED),
    (S.ACCEPTED, S.CANCELED),
    (S.ACCEPTED, S.EXPIRED),
    (S.ACCEPTED, S.REPLACED),
    (S.ACCEPTED, S.REJECTED),
    (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED),
    (S.PARTIALLY_FILLED, S.FILLED),
    (S.PARTIALLY_FILLED, S.CANCELED),
    (S.PARTIALLY_FILLED, S.EXPIRED),
    (S.PARTIALLY_FILLED, S.REPLACED),
}


def make_order(status: OrderStatus = S.NEW, ts: int = 100) -> Order:
    o = Order("o1", "X", OrderSide.BUY, 10, created_at=ts)
    o.status = status  # test setup: place the order directly in the state under test
    return o


def test_table_covers_every_status() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(S)


def test_table_matches_diagram() -> None:
    assert set(ALLOWED_PAIRS) == EXPECTED_EDGES
    assert len(ALL_PAIRS) == 81
    assert len(DISALLOWED_PAIRS) == 81 - len(EXPECTED_EDGES)


@pytest.mark.parametrize("status", list(S))
def test_terminal_statuses_have_no_exit(status: OrderStatus) -> None:
    assert (not ALLOWED_TRANSITIONS[status]) is (status in TERMINAL_STATUSES)
    assert status.is_terminal is (status in TERMINAL_STATUSES)
    assert status.is_open is (status not in TERMINAL_STATUSES)


@pytest.mark.parametrize(("current", "target"), ALLOWED_PAIRS)
def test_allowed_transition(current: OrderStatus, target: OrderStatus) -> None:
    o = make_order(current, ts=100)
    assert can_transition(current, target)
    transition(o, target, 250)
    assert o.status is target
    assert o.updated_at == 250
    assert o.created_at == 100


@pytest.mark.parametrize(("current", "target"), DISALLOWED_PAIRS)
def test_disallowed_transition(current: OrderStatus, target: OrderStatus) -> None:
    o = make_order(current, ts=100)
    assert not can_transition(current, target)
    with pytest.raises(InvalidTransitionError) as ei:
        transition(o, target, 250)
    err = ei.value
    assert isinstance(err, OrderStateError)
    assert err.order_id == "o1"
    assert err.current == current.value
    assert err.target == target.value
    assert repr(current.value) in str(err) and repr(target.value) in str(err)
    assert o.status is current
    assert o.updated_at == 100


@settings(max_examples=200, deadline=None)
@given(targets=st.lists(st.sampled_from(list(S)), max_size=20))
def test_random_transition_sequences(targets: list[OrderStatus]) -> None:
    o = make_order(S.NEW, ts=0)
    reached_terminal: OrderStatus | None = None
    for ts, target in enumerate(targets, start=1):
        before, before_ts = o.status, o.updated_at
        try:
            transition(o, target, ts)
        except InvalidTransitionError:
            assert o.status is before and o.updated_at == before_ts
            assert target not in ALLOWED_TRANSITIONS[before]
        else:
            assert target in ALLOWED_TRANSITIONS[before]
            assert o.status is target and o.updated_at == ts
        if reached_terminal is not None:
            assert o.status is reached_terminal
        elif o.status.is_terminal:
            reached_terminal = o.status


class OrderLifecycle(RuleBasedStateMachine):
    """Attempt arbitrary transitions; the status may only move along legal edges."""

    def __init__(self) -> None:
        super().__init__()
        self.order = make_order(S.NEW, ts=0)
        self.ts = 0
        self.terminal: OrderStatus | None = None

    @rule(status=st.sampled_from(list(S)))
    def attempt(self, status: OrderStatus) -> None:
        self.ts += 1
        before, before_ts = self.order.status, self.order.updated_at
        if (before, status) in EXPECTED_EDGES:
            transition(self.order, status, self.ts)
            assert self.order.status is status
            assert self.order.updated_at == self.ts
        else:
            with pytest.raises(InvalidTransitionError):
                transition(self.order, status, self.ts)
            assert self.order.status is before
            assert self.order.updated_at == before_ts
        if self.order.status.is_terminal and self.terminal is None:
            self.terminal = self.order.status

    @invariant()
    def terminal_is_absorbing(self) -> None:
        if self.terminal is not None:
            assert self.order.status is self.terminal
            assert not self.order.is_open


OrderLifecycle.TestCase.settings = settings(max_examples=50, stateful_step_count=20, deadline=None)
TestOrderLifecycle = OrderLifecycle.TestCase
