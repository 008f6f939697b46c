"""RiskManager at the rounding allowance of each limit, the halted day's reducing orders at
their edges, and ``risk_reason``'s count of pending quantity and open orders."""

from __future__ import annotations

from typing import Any

from tradeloop.execution.core.book import OrderBook
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.core.risk import RiskLimits, RiskManager, risk_reason
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.types import Order, OrderSide, OrderStatus, OrderType

DAY = 86_400_000_000_000
T0 = 19_000 * DAY
EPS = 1e-9


def order(side: str, qty: float, limit_price: float | None = None) -> Order:
    kind = OrderType.MARKET if limit_price is None else OrderType.LIMIT
    return Order("O1", "X", OrderSide(side), qty, kind, limit_price=limit_price)


def check(rm: RiskManager, o: Order, **state: Any) -> str | None:
    kw: dict[str, Any] = {
        "ref_price": 100.0,
        "position": 0.0,
        "pending_same_side": 0.0,
        "open_orders": 0,
        "equity": 100_000.0,
        "now": T0,
    }
    kw.update(state)
    return rm.check(o, **kw)


def test_limits_allow_their_rounding_allowance_exactly() -> None:
    rm = RiskManager(RiskLimits(max_order_notional=1_000, max_position=100))
    assert check(rm, order("buy", 1, limit_price=1_000.0 + EPS * 1_000.0)) is None
    assert check(rm, order("buy", 100.0 + EPS * 100.0), ref_price=1.0) is None
    # over the limit already: an add within the tolerance does not grow the position
    assert check(rm, order("buy", EPS), position=200.0, ref_price=1.0) is None
    assert check(rm, order("buy", 1.0), position=200.0, ref_price=1.0) == (
        "risk: max_position: X position could reach 201, size 201 > limit 100 "
        "(held 200, open buy orders 0, this order 1)"
    )


def halted_manager() -> RiskManager:
    rm = RiskManager(RiskLimits(daily_loss_limit=500))
    rm.observe(T0, 10_000.0)
    rm.observe(T0 + 1, 9_000.0)
    assert rm.halted
    return rm


def test_the_halt_trips_at_exactly_the_floor() -> None:
    rm = RiskManager(RiskLimits(daily_loss_limit=500))
    rm.observe(T0, 10_000.0)
    rm.observe(T0 + 1, 10_000.0 - 500.0 + EPS * 500.0)
    assert rm.halted


def test_a_halted_day_lets_reducing_orders_pass_to_the_tolerance() -> None:
    rm = halted_manager()
    eq = {"equity": 9_000.0, "now": T0 + 2}
    # flat: even a tiny order opens a position
    assert check(rm, order("buy", EPS), **eq) is not None
    assert check(rm, order("sell", EPS), **eq) is not None
    # long: selling to flat within the tolerance, or adding the tolerance, still reduces
    assert check(rm, order("sell", 2 * EPS), position=EPS, **eq) is None
    assert check(rm, order("buy", EPS), position=10.0, **eq) is None
    assert check(rm, order("buy", 1.0), position=10.0, **eq) is not None
    # short: the same on the other side
    assert check(rm, order("buy", 2 * EPS), position=-EPS, **eq) is None
    assert check(rm, order("sell", EPS), position=-10.0, **eq) is None
    assert check(rm, order("sell", 1.0), position=-10.0, **eq) is not None
    assert check(rm, order("buy", 10.0), position=-10.0, **eq) is None
    assert check(rm, order("buy", 1.0), **eq) == (
        "risk: daily_loss_limit: equity fell to 9,000.00, 1,000.00 below the day's start "
        "10,000.00 (limit 500.00); until the next UTC day only orders that reduce a position "
        "pass"
    )


def placed(b: OrderBook, *args: Any, **kw: Any) -> Order:
    o = b.new_order(*args, **kw)
    b.register(o)
    b.set_status(o, OrderStatus.ACCEPTED, 1)
    return o


def test_pending_counts_each_brackets_exits_once_and_every_other_order() -> None:
    b = OrderBook(OrderValidator(None, True))
    pf = Portfolio(1_000_000.0)
    for qty in (10.0, 5.0):
        e = placed(
            b,
            "X",
            "buy",
            qty,
            order_class="bracket",
            take_profit={"limit_price": 110.0},
            stop_loss={"stop_price": 90.0},
        )
        b.record_fill(e, qty, 100.0, 0.0, 2)
        for leg in e.legs:
            b.set_status(leg, OrderStatus.ACCEPTED, 2)
        pf.apply_fill("X", OrderSide.BUY, qty, 100.0, 0.0, 2)
    placed(b, "X", "sell", 3.0, "limit", limit_price=120.0)
    rm = RiskManager(RiskLimits(max_position=10))
    new = b.new_order("X", "sell", 30.0)
    reason = risk_reason(rm, new, book=b, portfolio=pf, ref_price=100.0, now=T0)
    assert reason == (
        "risk: max_position: X position could reach -33, size 33 > limit 10 "
        "(held 15, open sell orders 18, this order 30)"
    )


def test_a_replace_does_not_count_the_order_it_replaces_as_open() -> None:
    b = OrderBook(OrderValidator(None, True))
    pf = Portfolio(1_000_000.0)
    orders = [placed(b, "X", "buy", 1.0, "limit", limit_price=50.0) for _ in range(4)]
    rm = RiskManager(RiskLimits(max_open_orders=3))
    new = b.new_order("X", "buy", 1.0, "limit", limit_price=51.0)
    assert risk_reason(
        rm, new, book=b, portfolio=pf, ref_price=100.0, now=T0, ignore=orders[0]
    ) == ("risk: max_open_orders: 3 open orders + this one > limit 3")


def test_start_equity_is_none_before_any_observation() -> None:
    rm = RiskManager(RiskLimits(daily_loss_limit=500))
    assert rm.start_equity is None and not rm.halted
    assert check(rm, order("buy", 1.0), equity=100.0) is None
    assert rm.start_equity == 100.0
