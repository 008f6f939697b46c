"""Corners of the live path's pure parts: reconciliation, the rate-limit window, backoff."""

from __future__ import annotations

import random

import pytest

from tradeloop.errors import ConfigError
from tradeloop.execution.core.backoff import Backoff
from tradeloop.execution.core.ratelimit import RollingWindow, parse_ratelimit_headers
from tradeloop.execution.core.reconcile import (
    Accept,
    Adopt,
    ApplyFill,
    Finish,
    LocalOrder,
    VenueFill,
    compare_positions,
    reconcile,
)
from tradeloop.execution.types import Fill, Order, OrderSide, OrderStatus, OrderType

S = OrderStatus
T = 1_700_000_000_000_000_000


def venue(
    vid: str,
    cid: str,
    status: OrderStatus = S.ACCEPTED,
    filled: float = 0.0,
    avg: float | None = None,
    ts: int = T,
    updated: int | None = None,
    side: OrderSide = OrderSide.BUY,
) -> Order:
    o = Order(vid, "X", side, 10, OrderType.MARKET, client_order_id=cid, created_at=ts)
    o.status = status
    o.filled_qty = filled
    o.avg_fill_price = avg
    o.updated_at = ts if updated is None else updated
    return o


def fields(f: Fill) -> tuple[object, ...]:
    return (f.order_id, f.symbol, f.side, f.qty, f.price, f.commission, f.ts, f.execution_id)


# -- reconciliation ---------------------------------------------------------------------------


def test_a_missed_part_of_a_fill_carries_its_share_of_the_commission() -> None:
    # the engine has 2 of a 6-share execution (its stream split it): 4 remain, with 4/6 of the fee
    plan = reconcile(
        [LocalOrder("c1", S.PARTIALLY_FILLED, 2, "v1", 10.0)],
        [venue("v1", "c1", S.PARTIALLY_FILLED, filled=6, avg=10.0, side=OrderSide.SELL)],
        [VenueFill("e1", "v1", 6, 10.0, T + 1, cum_qty=6, commission=1.2)],
    )
    (af,) = plan.actions
    assert isinstance(af, ApplyFill) and (af.client_order_id, af.ts) == ("c1", T + 1)
    assert fields(af.fill) == (
        "v1",
        "X",
        OrderSide.SELL,
        4.0,
        10.0,
        pytest.approx(0.8),
        T + 1,
        "e1",
    )


def test_a_fill_without_cum_qty_is_applied_whole_and_a_zero_qty_one_is_skipped() -> None:
    plan = reconcile(
        [LocalOrder("c1", S.ACCEPTED, 0, "v1")],
        [venue("v1", "c1", S.PARTIALLY_FILLED, filled=3, avg=5.0)],
        [VenueFill("e0", "v1", 0.0, 5.0, T + 1), VenueFill("e1", "v1", 3, 5.0, T + 2)],
    )
    assert [(a.fill.execution_id, a.fill.qty, a.fill.commission) for a in plan.fills] == [
        ("e1", 3, 0.0)
    ]


def test_fills_of_one_instant_are_applied_in_cumulative_order() -> None:
    plan = reconcile(
        [LocalOrder("c1", S.ACCEPTED, 0, "v1")],
        [venue("v1", "c1", S.FILLED, filled=10, avg=5.6)],
        [
            VenueFill("e2", "v1", 6, 6.0, T + 1, cum_qty=10),
            VenueFill("e1", "v1", 4, 5.0, T + 1, cum_qty=4),
        ],
    )
    assert [(a.fill.execution_id, a.fill.qty) for a in plan.fills] == [("e1", 4), ("e2", 6)]


def test_skipped_orders_and_fills_do_not_stop_the_rest() -> None:
    local = [
        LocalOrder("gone", S.ACCEPTED, 0, "v0"),  # the venue did not return it
        LocalOrder("c1", S.NEW, 0),  # in flight, found by its client id
        LocalOrder("c2", S.ACCEPTED, 0, "v2"),
    ]
    fills = [
        VenueFill("f0", "v9", 1, 5.0, T),  # not ours
        VenueFill("f1", "v2", 0.0, 5.0, T + 1),  # nothing in it
        VenueFill("f2", "v0", 1, 5.0, T + 1),  # ours, but its order was not fetched
        VenueFill("f3", "v2", 2, 5.0, T + 2),
    ]
    plan = reconcile(
        local, [venue("v1", "c1"), venue("v2", "c2", S.PARTIALLY_FILLED, 2, 5.0)], fills
    )
    accept, af = plan.actions
    assert accept == Accept("c1", "v1", T)
    assert isinstance(af, ApplyFill) and (af.client_order_id, af.ts) == ("c2", T + 2)
    assert fields(af.fill) == ("v2", "X", OrderSide.BUY, 2, 5.0, 0.0, T + 2, "f3")


def test_actions_are_in_venue_time_order_whatever_their_kind() -> None:
    plan = reconcile(
        [LocalOrder("c1", S.ACCEPTED, 0, "v1"), LocalOrder("c2", S.ACCEPTED, 0, "v2")],
        [venue("v1", "c1", S.PARTIALLY_FILLED, 1, 5.0), venue("v2", "c2", S.CANCELED, ts=T + 1)],
        [VenueFill("f1", "v1", 1, 5.0, T + 5)],
    )
    assert [type(a) for a in plan.actions] == [Finish, ApplyFill]
    assert plan.mark == T + 5


def test_an_adopted_order_is_adopted_at_its_creation_and_its_unseen_fills_reconstructed() -> None:
    snap = venue("v7", "eng-7", S.FILLED, filled=10, avg=5.0, ts=T + 1, updated=T + 4)
    plan = reconcile([], [snap], [], client_id_prefix="eng-")
    adopt, fill = plan.actions
    assert adopt == Adopt(snap, T + 1)
    assert isinstance(fill, ApplyFill) and (fill.client_order_id, fill.ts) == ("eng-7", T + 4)
    assert fields(fill.fill) == (
        "v7",
        "X",
        OrderSide.BUY,
        10.0,
        5.0,
        0.0,
        T + 4,
        "reconciled:v7:10",
    )
    assert reconcile([], [snap], []).foreign == [snap]  # without a prefix it is not ours


@pytest.mark.parametrize(
    ("local_avg", "local_filled", "expected"),
    [
        (None, 4.0, 5.0),  # the engine's own average unknown: the venue's stands for it
        (5.0, 5.0, 5.0),  # (50 - 25) / 5
        (9.9, 5.0, 0.1),  # (50 - 49.5) / 5: small but a price
        (10.0, 5.0, 5.0),  # (50 - 50) / 5 = 0 is no price: the venue's average instead
    ],
)
def test_the_price_of_a_reconstructed_fill_is_what_the_known_fills_leave(
    local_avg: float | None, local_filled: float, expected: float
) -> None:
    plan = reconcile(
        [LocalOrder("c1", S.PARTIALLY_FILLED, local_filled, "v1", local_avg)],
        [venue("v1", "c1", S.FILLED, filled=10, avg=5.0)],
        [],
    )
    (af,) = plan.fills
    assert af.client_order_id == "c1"
    assert af.fill.qty == 10 - local_filled
    assert af.fill.price == pytest.approx(expected)


def test_a_reconstructed_fill_counts_only_this_orders_applied_fills() -> None:
    plan = reconcile(
        [LocalOrder("c1", S.ACCEPTED, 0, "v1"), LocalOrder("c2", S.ACCEPTED, 0, "v2")],
        [
            venue("v1", "c1", S.FILLED, filled=10, avg=5.6, updated=T + 9),
            venue("v2", "c2", S.PARTIALLY_FILLED, filled=1, avg=100.0),
        ],
        [
            VenueFill("a", "v1", 4, 5.0, T + 1),
            VenueFill("b", "v2", 1, 100.0, T + 1),
        ],
    )
    rest = [a for a in plan.fills if a.fill.execution_id.startswith("reconciled")]
    (r,) = rest
    assert r.client_order_id == "c1"
    assert (r.fill.qty, r.fill.price) == (6.0, pytest.approx((56.0 - 20.0) / 6))


def test_finish_carries_a_reason_only_for_a_rejection() -> None:
    canceled = venue("v1", "c1", S.CANCELED)
    canceled.reject_reason = "stale text"
    rejected = venue("v2", "c2", S.REJECTED)
    rejected.reject_reason = "insufficient buying power"
    plan = reconcile(
        [LocalOrder("c1", S.ACCEPTED, 0, "v1"), LocalOrder("c2", S.ACCEPTED, 0, "v2")],
        [canceled, rejected],
        [],
    )
    assert plan.actions == [
        Finish("c1", S.CANCELED, T, None, None),
        Finish("c2", S.REJECTED, T, "insufficient buying power", None),
    ]


def test_positions_differing_by_the_tolerance_or_less_match() -> None:
    assert compare_positions({"X": 1.0}, {"X": 1.0 + 1e-6}) == []
    assert [m.symbol for m in compare_positions({"X": 0.0}, {"X": 2e-6})] == ["X"]
    assert compare_positions({"X": 0.0}, {"X": 0.5}, tolerance=0.5) == []


# -- the rate-limit window --------------------------------------------------------------------


def test_times_must_be_real_numbers_not_booleans() -> None:
    with pytest.raises(ConfigError) as ei:
        RollingWindow().delay(True)
    assert str(ei.value) == "now=True: must be a finite number of seconds"
    with pytest.raises(ConfigError) as ei:
        RollingWindow().correct(float("inf"), remaining=1)
    assert str(ei.value) == "now=inf: must be a finite number of seconds"


def test_a_server_limit_of_one_is_accepted() -> None:
    w = RollingWindow(limit=5)
    w.correct(0.0, limit=1)
    assert w.limit == 1 and w.server_limit == 1


def test_the_servers_budget_ends_exactly_at_its_reset() -> None:
    w = RollingWindow()
    w.correct(0.0, remaining=5, reset_at=10.0)
    w.record(10.0)  # sent at the reset: the old budget is over, not counted down
    assert w.server_remaining is None and w.server_reset_at is None


def test_a_reset_that_is_already_now_teaches_nothing() -> None:
    w = RollingWindow()
    w.correct(10.0, remaining=0, reset_at=10.0)
    assert w.server_remaining is None
    assert w.delay(10.0) == 0.0


def test_resets_exactly_one_second_apart_are_the_same_server_window() -> None:
    w = RollingWindow()
    w.correct(0.0, remaining=5, reset_at=10.0)
    w.correct(0.0, remaining=7, reset_at=11.0)
    assert (w.server_remaining, w.server_reset_at) == (5, 11.0)
    w.correct(0.0, remaining=7, reset_at=12.5)  # another window: the latest word
    assert (w.server_remaining, w.server_reset_at) == (7, 12.5)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Ratelimit-Limit": "1"}, (1, None, None)),
        ({"X-Ratelimit-Reset": "0.5"}, (None, None, 0.5)),
        ({"X-Ratelimit-Reset": "inf"}, (None, None, None)),
        ({"x-ratelimit-remaining": "3, 2, 1"}, (None, 3, None)),
    ],
)
def test_header_corners(
    headers: dict[str, str], expected: tuple[int | None, int | None, float | None]
) -> None:
    assert parse_ratelimit_headers(headers) == expected


# -- backoff ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"factor": 1.0},  # no growth: a constant delay
        {"base": 0.1, "cap": 0.5},  # a cap below one second
        {"base": 1.0, "cap": 1.0},  # cap = base
        {"jitter": 0.0},  # no jitter
    ],
)
def test_boundary_settings_are_valid(kw: dict[str, float]) -> None:
    b = Backoff(rng=random.Random(1), **kw)
    for _ in range(4):
        assert 0.0 < b.next_delay() <= b.cap
    assert b.attempts == 4
