"""SimulatedExchange: what a listener sees, when, and at which price, in the corners.

Covers the rule for orders placed before their symbol has a price (checked at their first fill),
the timestamps and events of every state change, the trailing stop's reference at placement,
time in force at day boundaries, and linked exits on one bar.
"""

from __future__ import annotations

from typing import Any

import pytest

from tradeloop.execution.core.costs import FixedSlippage, PerShareCommission
from tradeloop.execution.core.exchange import SimulatedExchange
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.types import Fill, Order, OrderSide, OrderStatus

S = OrderStatus
DAY = 86_400_000_000_000
T0 = 19_000 * DAY  # a UTC midnight
MIN = 60_000_000_000


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.fills: list[Fill] = []

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        self.events.append(("fill", fill.order_id, fill.qty, fill.price))

    def on_order_update(self, order: Order) -> None:
        self.events.append(("order", order.id, order.status, order.updated_at))


def exchange(
    cash: float = 100_000.0, allow_short: bool = True, **kw: Any
) -> tuple[SimulatedExchange, Recorder]:
    rec = Recorder()
    ex = SimulatedExchange(Portfolio(cash, allow_short=allow_short), listener=rec, **kw)
    return ex, rec


# -- a market order placed before its symbol's first bar --------------------------------------


def test_market_order_before_any_price_is_checked_at_its_fill_and_rejected_if_unaffordable() -> (
    None
):
    ex, rec = exchange(cash=10_000.0)
    o = ex.submit("X", "buy", 100, now=T0)
    assert o.status is S.ACCEPTED  # nothing to check it against yet
    ex.on_bar("X", T0 + MIN, 150, 151, 149, 150, 1e6)  # 100 x 150 = 15,000 > 10,000
    assert o.status is S.REJECTED
    assert o.filled_qty == 0.0 and rec.fills == []
    assert o.reject_reason == (
        "insufficient buying power: order needs 15000.00, available 10000.00"
        " at its first fill, 150 (X had no price when it was placed)"
    )
    assert rec.events == [("order", o.id, S.ACCEPTED, T0), ("order", o.id, S.REJECTED, T0 + MIN)]
    assert ex.portfolio.cash == 10_000.0 and ex.portfolio.qty("X") == 0.0
    assert ex.open_orders() == []


def test_market_order_before_any_price_fills_when_the_account_can_afford_it() -> None:
    ex, _ = exchange(cash=10_000.0, commission=PerShareCommission(0.5))
    o = ex.submit("X", "buy", 66, now=T0)
    ex.on_bar("X", T0 + MIN, 150, 151, 149, 150, 1e6)  # 9,900 + 33 fee
    assert o.status is S.FILLED and o.avg_fill_price == 150.0
    o2 = ex.submit("Y", "buy", 67, now=T0 + MIN)
    ex.on_bar("Y", T0 + 2 * MIN, 1.0, 1.0, 1.0, 1.0, 1e6)  # needs 67 + 33.5 fee, has 67
    assert o2.status is S.REJECTED
    assert o2.reject_reason is not None
    assert o2.reject_reason.startswith("insufficient buying power: order needs 100.50, available")


def test_orders_placed_before_the_first_bar_are_checked_one_after_the_other() -> None:
    ex, _ = exchange(cash=10_000.0)
    first = ex.submit("X", "buy", 60, now=T0)
    second = ex.submit("X", "buy", 60, now=T0)  # each affordable alone, not both
    ex.on_bar("X", T0 + MIN, 100, 100, 100, 100, 1e6)
    assert first.status is S.FILLED
    assert second.status is S.REJECTED
    assert second.reject_reason == (
        "insufficient buying power: order needs 6000.00, available 4000.00"
        " at its first fill, 100 (X had no price when it was placed)"
    )


def test_market_sell_before_any_price_may_not_open_a_short_when_shorting_is_off() -> None:
    ex, _ = exchange(allow_short=False)
    o = ex.submit("X", "sell", 5, now=T0)
    ex.on_bar("X", T0 + MIN, 20, 21, 19, 20, 1e6)
    assert o.status is S.REJECTED
    assert o.reject_reason == (
        "short selling is disabled (allow_short=False): qty=5.0 X"
        " at its first fill, 20 (X had no price when it was placed)"
    )
    assert ex.portfolio.qty("X") == 0.0


def test_bracket_entry_refused_at_its_fill_takes_its_held_legs_with_it() -> None:
    ex, _ = exchange(cash=1_000.0)
    entry = ex.submit(
        "X",
        "buy",
        10,
        now=T0,
        order_class="bracket",
        take_profit={"limit_price": 500.0},
        stop_loss={"stop_price": 50.0},
    )
    assert [leg.status for leg in entry.legs] == [S.HELD, S.HELD]
    ex.on_bar("X", T0 + MIN, 200, 201, 199, 200, 1e6)
    assert entry.status is S.REJECTED
    assert [leg.status for leg in entry.legs] == [S.REJECTED, S.REJECTED]
    assert all(leg.reject_reason == entry.reject_reason for leg in entry.legs)


def test_trailing_stop_before_any_price_is_checked_at_its_fill() -> None:
    ex, _ = exchange(cash=1_000.0)
    o = ex.submit("X", "buy", 10, "trailing_stop", trail_price=1.0, now=T0)
    assert o.trail_ref is None  # nothing to trail from yet: it starts at the first bar's open
    ex.on_bar("X", T0 + MIN, 200, 202, 199, 201, 1e6)  # ref 199, stop 200: hit on the rise
    assert o.status is S.REJECTED
    assert o.reject_reason is not None and "at its first fill, 200 (X had no price" in (
        o.reject_reason
    )


def test_a_market_order_placed_once_there_is_a_price_is_checked_when_placed() -> None:
    ex, _ = exchange(cash=1_000.0)
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e6)
    o = ex.submit("X", "buy", 11, now=T0)
    assert o.status is S.REJECTED
    assert o.reject_reason == "insufficient buying power: order needs 1100.00, available 1000.00"
    ok = ex.submit("X", "buy", 10, now=T0)
    ex.on_bar("X", T0 + MIN, 105, 105, 105, 105, 1e6)  # gapped up: not checked again at the fill
    assert ok.status is S.FILLED
    assert ex.portfolio.cash == pytest.approx(1_000.0 - 1_050.0)


# -- linked exits: which one the path reaches first --------------------------------------------


def test_a_stop_limit_exit_triggered_on_an_earlier_bar_competes_as_a_limit() -> None:
    # the stop-loss (stop 95, limit 94) triggered on a gap below both; on the next bar the price
    # climbs from 92 to 111: it passes the stop-loss's limit 94 long before the take-profit 110
    ex, rec = exchange()
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e9)
    entry = ex.submit(
        "X",
        "buy",
        10,
        now=T0,
        order_class="bracket",
        take_profit={"limit_price": 110.0},
        stop_loss={"stop_price": 95.0, "limit_price": 94.0},
    )
    ex.on_bar("X", T0 + MIN, 100, 100, 100, 100, 1e9)
    tp, sl = entry.legs
    ex.on_bar("X", T0 + 2 * MIN, 93, 93.5, 92, 93, 1e9)
    assert sl.triggered and sl.status is S.ACCEPTED
    ex.on_bar("X", T0 + 3 * MIN, 93, 111, 92, 110, 1e9)
    assert sl.status is S.FILLED and sl.avg_fill_price == 94.0
    assert tp.status is S.CANCELED
    assert rec.fills[-1].price == 94.0


# -- timestamps and events of every change ----------------------------------------------------


def test_every_state_change_is_reported_with_its_time() -> None:
    ex, rec = exchange(slippage=FixedSlippage(0.25))
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e6)
    a = ex.submit("X", "buy", 10, "limit", limit_price=99.0, now=T0 + 1)
    b = ex.replace(a, T0 + 2, limit_price=99.5)
    ex.cancel(b, T0 + 3)
    c = ex.submit("X", "buy", 10, now=T0 + 4)
    ex.on_bar("X", T0 + MIN, 101, 102, 100, 101, 1e6)
    assert rec.events == [
        ("order", a.id, S.ACCEPTED, T0 + 1),
        ("order", b.id, S.ACCEPTED, T0 + 2),
        ("order", a.id, S.REPLACED, T0 + 2),
        ("order", b.id, S.CANCELED, T0 + 3),
        ("order", c.id, S.ACCEPTED, T0 + 4),
        ("fill", c.id, 10.0, 101.25),  # the open, slipped against the buyer
        ("order", c.id, S.FILLED, T0 + MIN),
    ]
    assert a.replaced_by == b.id and b.replaces == a.id
    assert (a.created_at, b.created_at, c.created_at) == (T0 + 1, T0 + 2, T0 + 4)
    (fill,) = rec.fills
    assert (fill.order_id, fill.symbol, fill.side, fill.qty, fill.price) == (
        c.id,
        "X",
        OrderSide.BUY,
        10.0,
        101.25,
    )
    assert (fill.commission, fill.ts, fill.execution_id, fill.position_qty) == (
        0.0,
        T0 + MIN,
        "E000001",
        10.0,
    )


def test_execution_ids_count_up_across_orders() -> None:
    ex, rec = exchange()
    ex.on_bar("X", T0, 10, 10, 10, 10, 1e6)
    for _ in range(3):
        ex.submit("X", "buy", 1, now=T0)
    ex.on_bar("X", T0 + MIN, 10, 10, 10, 10, 1e6)
    assert [f.execution_id for f in rec.fills] == ["E000001", "E000002", "E000003"]
    assert [f.position_qty for f in rec.fills] == [1.0, 2.0, 3.0]


# -- time in force, eligibility and linked exits, with their times -----------------------------


def test_ioc_and_day_endings_carry_the_bar_time() -> None:
    ex, rec = exchange(participation_rate=0.5)
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e6)
    ioc = ex.submit("X", "buy", 10, tif="ioc", now=T0)
    day = ex.submit("X", "buy", 1, "limit", limit_price=50.0, tif="day", now=T0)
    ex.on_bar("X", T0 + MIN, 100, 100, 100, 100, 8)  # capacity 4
    assert (ioc.status, ioc.filled_qty, ioc.updated_at) == (S.CANCELED, 4.0, T0 + MIN)
    ex.on_bar("X", T0 + DAY, 100, 100, 100, 100, 8)
    assert (day.status, day.updated_at) == (S.EXPIRED, T0 + DAY)
    assert rec.events[-1] == ("order", day.id, S.EXPIRED, T0 + DAY)


def test_fok_fills_when_the_capacity_is_exactly_its_quantity() -> None:
    ex, _ = exchange(participation_rate=0.5)
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e6)
    fok = ex.submit("X", "buy", 4, tif="fok", now=T0)
    ex.on_bar("X", T0 + MIN, 100, 100, 100, 100, 8)
    assert fok.status is S.FILLED


def test_day_orders_on_the_epochs_first_days() -> None:
    ex, _ = exchange()
    ex.on_bar("X", 0, 100, 100, 100, 100, 1e6)
    o = ex.submit("X", "buy", 1, "limit", limit_price=50.0, tif="day", now=0)
    ex.on_bar("X", MIN, 100, 100, 100, 100, 1e6)  # day 0: its session
    ex.on_bar("X", 2 * MIN, 100, 100, 100, 100, 1e6)
    assert o.is_open
    ex.on_bar("X", DAY + MIN, 100, 100, 100, 100, 1e6)
    assert o.status is S.EXPIRED


def test_an_order_not_yet_eligible_does_not_hold_up_the_others() -> None:
    ex, _ = exchange()
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e6)
    first = ex.submit("X", "buy", 1, now=T0)
    late = ex.submit("X", "buy", 1, "limit", limit_price=100.0, now=T0 + MIN)
    after = ex.submit("X", "buy", 1, now=T0)
    ex.on_bar("X", T0 + MIN, 100, 100, 100, 100, 1e6)
    assert (first.status, late.status, after.status) == (S.FILLED, S.ACCEPTED, S.FILLED)


def test_a_trailing_stop_placed_from_another_symbols_bar_trails_from_this_close() -> None:
    ex, _ = exchange()
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e6)
    t = ex.submit("X", "sell", 1, "trailing_stop", trail_price=5.0, now=T0 + MIN)
    assert t.trail_ref == 100.0  # the last price at placement
    other = ex.submit("X", "buy", 1, "limit", limit_price=50.0, now=T0 + MIN)
    ex.on_bar("X", T0 + MIN, 120, 120, 120, 120, 1e6)  # the bar of its own timestamp
    assert t.trail_ref == 120.0 and t.is_open and other.is_open
    ex.on_bar("X", T0 + 2 * MIN, 116, 116, 114, 114.5, 1e6)  # stop 115: hit
    assert t.status is S.FILLED and t.avg_fill_price == 115.0


def test_bracket_legs_move_with_the_entry_and_end_at_the_bar_time() -> None:
    ex, rec = exchange()
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e9)
    entry = ex.submit(
        "X",
        "buy",
        10,
        now=T0,
        order_class="bracket",
        take_profit={"limit_price": 110.0},
        stop_loss={"stop_price": 95.0},
    )
    tp, sl = entry.legs
    assert (tp.status, tp.updated_at, sl.updated_at) == (S.HELD, T0, T0)
    ex.on_bar("X", T0 + MIN, 100, 100, 100, 100, 1e9)
    assert (tp.status, tp.updated_at, sl.status, sl.updated_at) == (
        S.ACCEPTED,
        T0 + MIN,
        S.ACCEPTED,
        T0 + MIN,
    )
    ex.on_bar("X", T0 + 2 * MIN, 100, 111, 99, 110, 1e9)
    assert (tp.status, tp.updated_at) == (S.FILLED, T0 + 2 * MIN)
    assert (sl.status, sl.updated_at) == (S.CANCELED, T0 + 2 * MIN)
    assert ex.portfolio.qty("X") == 0.0
    assert rec.fills[-1].ts == T0 + 2 * MIN


def test_canceling_an_exit_or_an_unfilled_entry_ends_the_group_at_that_time() -> None:
    ex, _ = exchange()
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e9)
    kw: dict[str, Any] = {
        "order_class": "bracket",
        "take_profit": {"limit_price": 110.0},
        "stop_loss": {"stop_price": 95.0},
    }
    e1 = ex.submit("X", "buy", 1, "limit", limit_price=99.0, now=T0, **kw)
    ex.cancel(e1, T0 + 5)
    assert [(m.status, m.updated_at) for m in e1.legs] == [(S.CANCELED, T0 + 5)] * 2
    e2 = ex.submit("X", "buy", 1, now=T0, **kw)
    ex.on_bar("X", T0 + MIN, 100, 100, 100, 100, 1e9)
    ex.cancel(e2.legs[0], T0 + MIN + 7)
    assert [(m.status, m.updated_at) for m in e2.legs] == [(S.CANCELED, T0 + MIN + 7)] * 2


def test_a_rejected_bracket_rejects_its_legs_at_the_same_time() -> None:
    ex, _ = exchange(cash=100.0)
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e9)
    e = ex.submit(
        "X",
        "buy",
        10,
        now=T0 + 3,
        order_class="bracket",
        take_profit={"limit_price": 110.0},
        stop_loss={"stop_price": 95.0},
    )
    assert [(m.status, m.updated_at) for m in (e, *e.legs)] == [(S.REJECTED, T0 + 3)] * 3


def test_an_oco_works_at_once_and_expires_whole_at_the_end_of_data() -> None:
    ex, _ = exchange()
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e9)
    ex.portfolio.apply_fill("X", OrderSide.BUY, 10, 100.0, 0.0, T0)
    oco = ex.submit(
        "X",
        "sell",
        10,
        "limit",
        tif="day",
        now=T0 + 1,
        order_class="oco",
        take_profit={"limit_price": 110.0},
        stop_loss={"stop_price": 90.0},
    )
    (leg,) = oco.legs
    assert (oco.status, leg.status, leg.updated_at) == (S.ACCEPTED, S.ACCEPTED, T0 + 1)
    ex.expire_all(T0 + 9)
    assert [(m.status, m.updated_at) for m in (oco, leg)] == [(S.EXPIRED, T0 + 9)] * 2


def test_a_day_bracket_entry_expiring_unfilled_takes_its_held_legs() -> None:
    ex, _ = exchange()
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e9)
    e = ex.submit(
        "X",
        "buy",
        1,
        "limit",
        limit_price=50.0,
        tif="day",
        now=T0,
        order_class="bracket",
        take_profit={"limit_price": 110.0},
        stop_loss={"stop_price": 45.0},
    )
    ex.on_bar("X", T0 + MIN, 100, 100, 100, 100, 1e9)
    ex.on_bar("X", T0 + DAY, 100, 100, 100, 100, 1e9)
    assert [(m.status, m.updated_at) for m in (e, *e.legs)] == [(S.EXPIRED, T0 + DAY)] * 3


def test_linked_exits_trade_in_path_order_and_share_the_bar_volume() -> None:
    # the stop 95 is reached (at 0.5 on the first leg) before the take-profit 105 (on the rise)
    ex, rec = exchange(participation_rate=0.5)
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e9)
    ex.portfolio.apply_fill("X", OrderSide.BUY, 10, 100.0, 0.0, T0)
    oco = ex.submit(
        "X",
        "sell",
        10,
        "limit",
        now=T0,
        order_class="oco",
        take_profit={"limit_price": 105.0},
        stop_loss={"stop_price": 95.0},
    )
    (stop,) = oco.legs
    ex.on_bar("X", T0 + MIN, 100, 106, 90, 101, 8)  # up bar 100 -> 90 -> 106: capacity 4
    assert [(f.order_id, f.qty, f.price) for f in rec.fills] == [(stop.id, 4.0, 95.0)]
    assert oco.qty == 10.0 - 4.0 + oco.filled_qty  # resized to the shares left
    # the stop fired: its remainder is a market order, ahead of the take-profit on the next bar
    ex.on_bar("X", T0 + 2 * MIN, 101, 106, 100, 105.5, 100)
    assert [(f.order_id, f.qty, f.price) for f in rec.fills[1:]] == [(stop.id, 6.0, 101.0)]
    assert ex.portfolio.qty("X") == 0.0
    assert (oco.status, oco.updated_at) == (S.CANCELED, T0 + 2 * MIN)
