"""Corners of the book, the risk rules, the cross-section, costs and validation that the broader
tests do not reach: float tolerances at the limits, fractional positions, linked exits counted
once, replacement chains, and the values that are valid only just."""

from __future__ import annotations

from typing import Any

import pytest

from tradeloop.errors import InvalidOrderError
from tradeloop.execution.core.book import OrderBook, class_params
from tradeloop.execution.core.costs import PercentCommission
from tradeloop.execution.core.cross import CrossSection
from tradeloop.execution.core.exchange import SimulatedExchange
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.core.risk import RiskLimits, RiskManager
from tradeloop.execution.core.validation import OrderValidator, check_order_class
from tradeloop.execution.types import (
    Bar,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)

S = OrderStatus
BUY, SELL = OrderSide.BUY, OrderSide.SELL
DAY = 86_400_000_000_000
T0 = 19_000 * DAY
MIN = 60_000_000_000


def risky(cash: float = 1e6, **limits: Any) -> SimulatedExchange:
    ex = SimulatedExchange(Portfolio(cash), risk=RiskManager(RiskLimits(**limits)))
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e9)
    ex.on_bar("Y", T0, 10, 10, 10, 10, 1e9)
    return ex


def hold(ex: SimulatedExchange, symbol: str, qty: float) -> None:
    ex.portfolio.apply_fill(symbol, BUY if qty > 0 else SELL, abs(qty), 100.0, 0.0, T0)


# -- risk, as the exchange asks it --------------------------------------------------------------


def test_max_position_counts_open_orders_on_the_same_symbol_and_side_only() -> None:
    ex = risky(max_position=10)
    ex.submit("X", "buy", 6, "limit", limit_price=90.0, now=T0)
    ex.submit("X", "sell", 50, "limit", limit_price=200.0, now=T0)  # the other side
    ex.submit("Y", "buy", 50, "limit", limit_price=9.0, now=T0)  # another symbol
    assert ex.submit("X", "buy", 4, "limit", limit_price=90.0, now=T0).status is S.ACCEPTED
    refused = ex.submit("X", "buy", 1, "limit", limit_price=90.0, now=T0)
    assert refused.reject_reason == (
        "risk: max_position: X position could reach 11, size 11 > limit 10 "
        "(held 0, open buy orders 10, this order 1)"
    )


def test_linked_exits_count_once_toward_max_position() -> None:
    ex = risky(max_position=10)
    hold(ex, "X", -8)
    ex.submit(
        "X",
        "buy",
        8,
        "limit",
        limit_price=90.0,
        now=T0,
        order_class="oco",
        take_profit={"limit_price": 90.0},
        stop_loss={"stop_price": 110.0},
    )
    # the oco's two buy orders close the same 8 shares: pending is 8, not 16
    assert ex.submit("X", "buy", 10, "limit", limit_price=50.0, now=T0).status is S.ACCEPTED


def test_a_replacement_is_judged_without_the_order_it_replaces() -> None:
    ex = risky(max_position=10, max_open_orders=1)
    o = ex.submit("X", "buy", 8, "limit", limit_price=90.0, now=T0)
    new = ex.replace(o, T0 + 1, qty=10)  # neither the old 8 shares nor the old order count
    assert new.status is S.ACCEPTED and o.status is S.REPLACED


def test_notional_of_a_market_order_is_estimated_at_the_last_price() -> None:
    ex = risky(max_order_notional=1_000)
    assert ex.submit("X", "buy", 10, now=T0).status is S.ACCEPTED  # 10 x 100
    refused = ex.submit("X", "buy", 11, now=T0)
    assert refused.reject_reason == (
        "risk: max_order_notional: order notional 1,100.00 > limit 1,000.00"
    )


def test_notional_tolerance_scales_with_the_limit() -> None:
    small = RiskManager(RiskLimits(max_order_notional=1.0))
    big = RiskManager(RiskLimits(max_order_notional=1e6))

    def check(rm: RiskManager, price: float) -> str | None:
        o = Order("o", "X", BUY, 1, OrderType.LIMIT, limit_price=price)
        return rm.check(
            o, ref_price=None, position=0, pending_same_side=0, open_orders=0, equity=1e9, now=T0
        )

    assert check(small, 1.0 + 5e-10) is None  # within 1e-9 of 1
    assert check(small, 1.0 + 2e-9) is not None
    assert check(big, 1e6 + 1e-4) is None  # within 1e-9 x 1e6 of 1e6
    assert check(big, 1e6 + 1e-2) is not None
    assert check(small, 0.5) is None  # a price below one is a price


def test_a_manager_starts_unhalted_with_no_day() -> None:
    rm = RiskManager(RiskLimits(daily_loss_limit=100))
    assert rm.halted is False and rm.start_equity is None


def test_a_flip_to_the_same_size_does_not_grow_the_position() -> None:
    rm = RiskManager(RiskLimits(max_position=5))
    o = Order("o", "X", SELL, 20, OrderType.MARKET)
    # held 10 (above the limit): selling 20 ends at -10, no larger than now
    assert (
        rm.check(
            o, ref_price=1, position=10, pending_same_side=0, open_orders=0, equity=1e6, now=T0
        )
        is None
    )


def test_while_halted_closing_a_fractional_long_passes() -> None:
    rm = RiskManager(RiskLimits(daily_loss_limit=100))
    rm.observe(T0, 10_000)
    rm.observe(T0 + MIN, 9_800)
    assert rm.halted
    o = Order("o", "X", SELL, 0.5, OrderType.MARKET)
    state: dict[str, Any] = {"ref_price": 1, "pending_same_side": 0, "open_orders": 0}
    assert rm.check(o, position=0.5, equity=9_800, now=T0 + MIN, **state) is None
    b = Order("b", "X", BUY, 0.25, OrderType.MARKET)
    assert rm.check(b, position=0.5, equity=9_800, now=T0 + MIN, **state) is not None


# -- the book ---------------------------------------------------------------------------------


def test_class_params_of_each_order_class() -> None:
    book = OrderBook(OrderValidator())
    simple = book.new_order("X", "buy", 1)
    assert class_params(simple) == (OrderClass.SIMPLE, None, None)
    bracket = book.new_order(
        "X",
        "buy",
        1,
        order_class="bracket",
        take_profit={"limit_price": 110},
        stop_loss={"stop_price": 90, "limit_price": 89},
    )
    assert class_params(bracket) == (
        OrderClass.BRACKET,
        {"limit_price": 110.0},
        {"stop_price": 90.0, "limit_price": 89.0},
    )
    oco = book.new_order(
        "X",
        "sell",
        1,
        "limit",
        order_class="oco",
        take_profit={"limit_price": 110},
        stop_loss={"stop_price": 90},
    )
    assert class_params(oco) == (
        OrderClass.OCO,
        {"limit_price": 110.0},
        {"stop_price": 90.0, "limit_price": None},
    )
    assert oco.limit_price == 110.0  # an oco is its own take-profit


def test_legs_inherit_the_entry_and_get_their_own_ids() -> None:
    book = OrderBook(OrderValidator(), client_id_prefix="run-")
    e = book.new_order(
        "X",
        "buy",
        3,
        tif="day",
        tag="t",
        now=42,
        order_class="bracket",
        take_profit={"limit_price": 110},
        stop_loss={"stop_price": 90},
    )
    tp, sl = e.legs
    assert [leg.id for leg in e.legs] == ["O000002", "O000003"]
    assert [leg.client_order_id for leg in e.legs] == ["run-O000002", "run-O000003"]
    assert all(leg.parent_id == e.id and leg.qty == 3 for leg in e.legs)
    assert all(leg.tif is TimeInForce.DAY and leg.tag == "t" for leg in e.legs)
    assert all(leg.created_at == 42 and leg.side is SELL for leg in e.legs)
    assert (tp.type, tp.limit_price, sl.type, sl.stop_price) == (
        OrderType.LIMIT,
        110.0,
        OrderType.STOP,
        90.0,
    )


def test_current_follows_a_chain_of_replacements() -> None:
    ex = SimulatedExchange(Portfolio(1e6))
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e9)
    a = ex.submit("X", "buy", 1, "limit", limit_price=90.0, now=T0)
    b = ex.replace(a, T0 + 1, limit_price=91.0)
    c = ex.replace(b, T0 + 2, limit_price=92.0)
    assert ex.book.current(a) is c and ex.book.current(b.id) is c and ex.book.current(c) is c
    d = ex.submit("X", "buy", 1, "limit", limit_price=80.0, now=T0)
    assert ex.book.current(d) is d


def test_held_by_exits_counts_active_exits_on_one_side_once_per_group() -> None:
    ex = SimulatedExchange(Portfolio(1e6))
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e9)
    hold(ex, "X", 10)
    kw: dict[str, Any] = {
        "order_class": "oco",
        "take_profit": {"limit_price": 120.0},
        "stop_loss": {"stop_price": 80.0},
        "now": T0,
    }
    first = ex.submit("X", "sell", 4, "limit", **kw)
    ex.submit("X", "sell", 3, "limit", **kw)
    ex.submit("X", "sell", 2, "limit", limit_price=150.0, now=T0)  # a plain sell: no exit
    assert ex.book.held_by_exits("X", SELL) == 7.0
    assert ex.book.held_by_exits("X", BUY) == 0.0
    assert ex.book.held_by_exits("X", SELL, ignore=first) == 7.0  # its leg still holds them
    assert ex.book.held_by_exits("Y", SELL) == 0.0
    over = ex.submit("X", "sell", 4, "limit", **kw)  # 10 held, 7 taken: 3 left
    assert over.reject_reason == (
        "oco orders only close a position: qty=4 X, the position it closes is 10, "
        "7 of it held by other exits"
    )


def test_commitments_count_each_group_of_linked_exits_once() -> None:
    ex = SimulatedExchange(Portfolio(1e6))
    ex.on_bar("X", T0, 100, 100, 100, 100, 1e9)
    hold(ex, "X", 10)
    kw: dict[str, Any] = {
        "order_class": "oco",
        "take_profit": {"limit_price": 120.0},
        "stop_loss": {"stop_price": 80.0},
        "now": T0,
    }
    ex.submit("X", "sell", 4, "limit", **kw)
    ex.submit("X", "sell", 3, "limit", **kw)
    ex.submit("X", "buy", 1, "limit", limit_price=90.0, now=T0)
    pending, orders = ex.book.commitments()
    assert pending == {"X": -7.0 + 1.0}
    assert len(orders) == 3
    assert ex.book.commitments_of("X") == (pending["X"], orders)


def test_a_fill_of_exactly_the_remainder_completes_the_order() -> None:
    book = OrderBook(OrderValidator(fractional=True))
    o = book.new_order("X", "buy", 1.5)
    book.register(o)
    book.set_status(o, S.ACCEPTED, 1)
    book.record_fill(o, 0.5, 10.0, 0.0, 2)
    assert o.status is S.PARTIALLY_FILLED
    book.record_fill(o, 1.0, 12.0, 0.0, 3)
    assert o.status is S.FILLED and o.filled_qty == 1.5
    assert o.avg_fill_price == pytest.approx((0.5 * 10 + 12.0) / 1.5)


# -- cross-section, costs, validation ------------------------------------------------------------


def test_a_bar_of_the_gathered_timestamp_is_added_and_an_older_one_is_late() -> None:
    c = CrossSection(["A", "B"])
    assert c.add(Bar("A", 5, 1, 1, 1, 1, 1)) is False
    assert c.add(Bar("B", 4, 1, 1, 1, 1, 1)) is False  # older than the one gathered: late
    assert c.add(Bar("B", 5, 1, 1, 1, 1, 1)) is True
    assert set(c.view) == {"A", "B"}
    c.delivered()
    assert c.add(Bar("A", 5, 1, 1, 1, 1, 1)) is False  # its timestamp was delivered
    assert not c.pending


def test_percent_commission_has_no_minimum_by_default() -> None:
    o = Order("o", "X", BUY, 1, OrderType.MARKET)
    assert PercentCommission(0.001).compute(o, 1, 10.0) == pytest.approx(0.01)


def test_a_leg_price_below_one_is_a_price() -> None:
    legs = check_order_class(
        OrderClass.BRACKET,
        side=BUY,
        type=OrderType.LIMIT,
        tif=TimeInForce.GTC,
        limit_price=0.5,
        stop_price=None,
        take_profit={"limit_price": 0.75},
        stop_loss={"stop_price": 0.25, "limit_price": 0.2},
    )
    assert (legs.take_profit, legs.stop_loss, legs.stop_loss_limit) == (0.75, 0.25, 0.2)


def _cls(order_class: OrderClass, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "side": BUY,
        "type": OrderType.MARKET,
        "tif": TimeInForce.GTC,
        "limit_price": None,
        "stop_price": None,
        "take_profit": None,
        "stop_loss": None,
    }
    args.update(kw)
    return check_order_class(order_class, **args)


def test_order_class_corners() -> None:
    # an oto with only a take-profit: no stop-loss to read
    legs = _cls(OrderClass.OTO, take_profit={"limit_price": 110})
    assert (legs.take_profit, legs.stop_loss, legs.stop_loss_limit) == (110.0, None, None)
    # a sell bracket with an entry price: exits buy, the stop-loss above the entry
    legs = _cls(
        OrderClass.BRACKET,
        side=SELL,
        type=OrderType.LIMIT,
        limit_price=100.0,
        take_profit={"limit_price": 90},
        stop_loss={"stop_price": 110},
    )
    assert (legs.take_profit, legs.stop_loss) == (90.0, 110.0)
    # a malformed entry price is left to the order's own check
    legs = _cls(
        OrderClass.BRACKET,
        type=OrderType.LIMIT,
        limit_price="abc",
        take_profit={"limit_price": 110},
        stop_loss={"stop_price": 90},
    )
    assert legs.take_profit == 110.0


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"take_profit": {"limit_price": 110}},
            "take_profit={'limit_price': 110}: only allowed with order_class bracket, oco or oto",
        ),
        (
            {"stop_loss": {"stop_price": 90, "price": 1}},
            "stop_loss.price=1: unknown field (allowed: stop_price, limit_price)",
        ),
    ],
)
def test_simple_orders_take_no_legs_and_leg_fields_are_named(
    kw: dict[str, Any], message: str
) -> None:
    cls_ = OrderClass.OCO if "price" in kw.get("stop_loss", {}) else OrderClass.SIMPLE
    with pytest.raises(InvalidOrderError) as ei:
        _cls(cls_, side=SELL, type=OrderType.LIMIT, **kw)
    assert str(ei.value) == message


def test_a_bad_stop_loss_limit_is_named_as_such() -> None:
    with pytest.raises(InvalidOrderError) as ei:
        _cls(
            OrderClass.BRACKET,
            take_profit={"limit_price": 110},
            stop_loss={"stop_price": 90, "limit_price": "x"},
        )
    assert str(ei.value) == "stop_loss.limit_price='x': must be a number"
