"""Reconciliation: the order of actions at one venue time, fills at the tolerance, fractional
fills' commissions, and the price of a fill rebuilt from an order."""

from __future__ import annotations

from typing import Any

import pytest

from tradeloop.execution.core.reconcile import (
    Accept,
    ApplyFill,
    LocalOrder,
    VenueFill,
    reconcile,
)
from tradeloop.execution.types import Order, OrderSide, OrderStatus, OrderType

S = OrderStatus
T = 1_700_000_000_000_000_000


def venue(
    vid: str,
    cid: str,
    status: OrderStatus = S.ACCEPTED,
    qty: float = 10,
    filled: float = 0,
    avg: float | None = None,
    ts: int = T,
    **kw: Any,
) -> Order:
    o = Order(vid, "X", OrderSide.BUY, qty, OrderType.MARKET, client_order_id=cid, created_at=ts)
    o.status = status
    o.filled_qty = filled
    o.avg_fill_price = avg
    o.updated_at = kw.pop("updated", ts)
    return o


def test_held_legs_are_accepted_after_an_entry_fill_rebuilt_from_the_order() -> None:
    # the venue's activity for the entry's fill is missing: the fill is rebuilt from the order,
    # and the legs it activated are accepted after it, as after a fill found as an activity
    local = [
        LocalOrder("r-1", S.ACCEPTED, 0, "v1"),
        LocalOrder("r-2", S.HELD, 0, "v2"),
        LocalOrder("r-3", S.HELD, 0, "v3"),
    ]
    snaps = [
        venue("v1", "r-1", S.FILLED, filled=10, avg=5.0, updated=T + 4),
        venue("v2", "r-2", S.ACCEPTED, updated=T + 4),
        venue("v3", "r-3", S.ACCEPTED, updated=T + 4),
    ]
    actions = reconcile(local, snaps, []).actions
    assert isinstance(actions[0], ApplyFill) and actions[0].client_order_id == "r-1"
    assert actions[0].fill.qty == 10 and actions[0].fill.price == 5.0
    assert actions[1:] == [Accept("r-2", "v2", T + 4), Accept("r-3", "v3", T + 4)]


def test_a_fractional_fill_carries_its_share_of_the_commission() -> None:
    local = [LocalOrder("r-1", S.PARTIALLY_FILLED, 0.4, "v1", avg_fill_price=5.0)]
    snaps = [venue("v1", "r-1", S.PARTIALLY_FILLED, qty=1, filled=0.8, avg=5.0)]
    fills = [VenueFill("e1", "v1", 0.8, 5.0, T + 1, cum_qty=0.8, commission=0.2)]
    (action,) = reconcile(local, snaps, fills).actions
    assert isinstance(action, ApplyFill)
    assert action.fill.qty == pytest.approx(0.4)
    assert action.fill.commission == pytest.approx(0.1)  # half of the execution is new
    whole = [VenueFill("e1", "v1", 0.5, 5.0, T + 1, commission=0.2)]
    half = [venue("v1", "r-1", S.PARTIALLY_FILLED, qty=1, filled=0.5, avg=5.0)]
    (action,) = reconcile([LocalOrder("r-1", S.ACCEPTED, 0, "v1")], half, whole).fills
    assert (action.fill.qty, action.fill.commission) == (0.5, 0.2)


def test_without_a_prefix_no_unknown_venue_order_is_adopted() -> None:
    snaps = [venue("v9", "XXXX-manual"), venue("v8", "r-8")]
    plan = reconcile([], snaps, [])
    assert plan.actions == [] and [o.id for o in plan.foreign] == ["v9", "v8"]


def test_fills_of_one_time_keep_their_cumulative_order() -> None:
    local = [LocalOrder("r-1", S.ACCEPTED, 0, "v1")]
    snaps = [venue("v1", "r-1", S.PARTIALLY_FILLED, filled=3, avg=5.0)]
    plain = [VenueFill("e1", "v1", 1, 5.0, T + 1), VenueFill("e2", "v1", 2, 5.0, T + 1)]
    assert [a.fill.execution_id for a in reconcile(local, snaps, plain).fills] == ["e1", "e2"]
    # one without a cumulative quantity sorts first at its time
    mixed = [
        VenueFill("e2", "v1", 2, 5.0, T + 1, cum_qty=3),
        VenueFill("e1", "v1", 1, 5.0, T + 1),
    ]
    got = reconcile(local, snaps, mixed).fills
    assert [(a.fill.execution_id, a.fill.qty) for a in got] == [("e1", 1), ("e2", 2)]


def test_quantities_within_the_tolerance_are_not_fills() -> None:
    local = [LocalOrder("r-1", S.ACCEPTED, 0, "v1")]
    snaps = [venue("v1", "r-1", S.ACCEPTED, filled=1e-9, avg=5.0)]
    assert reconcile(local, snaps, []).actions == []
    tiny = [VenueFill("e1", "v1", 1e-9, 5.0, T + 1)]
    assert reconcile(local, [venue("v1", "r-1")], tiny).actions == []


def test_a_rebuilt_fill_is_priced_from_all_the_fills_known_before_it() -> None:
    # 4 @ 100 known here, 3 @ 110 found as an activity, 10 filled at 107 on average at the
    # venue: the 3 not seen cost (1,070 - 400 - 330) / 3
    local = [LocalOrder("r-1", S.PARTIALLY_FILLED, 4, "v1", avg_fill_price=100.0)]
    snaps = [venue("v1", "r-1", S.FILLED, filled=10, avg=107.0, updated=T + 9)]
    fills = [
        VenueFill("e2", "v1", 1, 110.0, T + 5, cum_qty=5),
        VenueFill("e3", "v1", 2, 110.0, T + 6, cum_qty=7),
    ]
    got = reconcile(local, snaps, fills).fills
    assert [a.fill.qty for a in got] == [1, 2, 3]
    assert got[-1].fill.price == pytest.approx((1_070.0 - 400.0 - 330.0) / 3)


def test_a_fill_without_a_cumulative_quantity_cannot_push_the_total_past_the_venues() -> None:
    # at one time: an execution that says the order has 0.3 filled, and one that does not say;
    # applied with the silent one first, the total stays the venue's 0.3
    local = [LocalOrder("r-1", S.ACCEPTED, 0, "v1")]
    snaps = [venue("v1", "r-1", S.PARTIALLY_FILLED, qty=1, filled=0.3, avg=5.0)]
    fills = [
        VenueFill("e2", "v1", 0.3, 5.0, T + 1, cum_qty=0.3),
        VenueFill("e1", "v1", 0.2, 5.0, T + 1),
    ]
    got = reconcile(local, snaps, fills).actions
    assert [a.fill.execution_id for a in got if isinstance(a, ApplyFill)] == ["e1", "e2"]
    assert sum(a.fill.qty for a in got if isinstance(a, ApplyFill)) == pytest.approx(0.3)
