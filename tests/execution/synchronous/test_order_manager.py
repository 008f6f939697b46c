"""SyncOrderManager: time in force, volume caps, cancel/replace, risk checks, fills."""

from __future__ import annotations

import pytest

from tradeloop.errors import InvalidOrderError, OrderNotFoundError, OrderStateError
from tradeloop.execution.core.costs import (
    FixedCommission,
    PercentSlippage,
    PerShareCommission,
)
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.synchronous import SyncOrderManager
from tradeloop.execution.types import Fill, Order, OrderSide, OrderStatus

DAY_NS = 86_400_000_000_000
T0 = 19_000 * DAY_NS  # a UTC midnight
MIN = 60_000_000_000


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, object]] = []

    def on_fill(self, fill: Fill) -> None:
        self.events.append(("fill", fill.order_id, (fill.qty, fill.price)))

    def on_order_update(self, order: Order) -> None:
        self.events.append(("order", order.id, order.status))


def manager(cash: float = 1_000_000.0, **kw: object) -> tuple[SyncOrderManager, Recorder]:
    rec = Recorder()
    pf = Portfolio(cash, allow_short=bool(kw.pop("allow_short", True)))
    m = SyncOrderManager(pf, symbols=("X", "Y"), listener=rec, **kw)  # type: ignore[arg-type]
    m.last_prices["X"] = 100.0
    m.last_prices["Y"] = 50.0
    return m, rec


def bar(
    m: SyncOrderManager, ts: int, o: float, h: float, lo: float, c: float, v: float = 1e9
) -> None:
    m.process_bar("X", ts, o, h, lo, c, v)
    m.last_prices["X"] = c


def test_submit_accepts_and_reports() -> None:
    m, rec = manager()
    o = m.submit("X", "buy", 10, now=T0)
    assert o.status is OrderStatus.ACCEPTED
    assert rec.events == [("order", o.id, OrderStatus.ACCEPTED)]


def test_no_fill_on_the_bar_the_order_was_placed_on() -> None:
    m, _ = manager()
    o = m.submit("X", "buy", 10, now=T0 + MIN)
    bar(m, T0 + MIN, 100, 101, 99, 100)  # same timestamp as the decision: never
    assert o.filled_qty == 0
    bar(m, T0 + 2 * MIN, 101, 102, 100, 101)
    assert o.status is OrderStatus.FILLED
    assert o.avg_fill_price == 101


def test_market_fill_updates_portfolio_and_events() -> None:
    m, rec = manager(commission=PerShareCommission(0.01, minimum=1.0))
    o = m.submit("X", "buy", 10, now=T0)
    bar(m, T0 + MIN, 100, 101, 99, 100.5)
    assert m.portfolio.qty("X") == 10
    assert m.portfolio.cash == pytest.approx(1_000_000 - 1000 - 1.0)
    assert rec.events[1:] == [
        ("fill", o.id, (10.0, 100.0)),
        ("order", o.id, OrderStatus.FILLED),
    ]
    assert o.commission == 1.0


def test_slippage_applies_to_market_not_limit_and_stays_in_bar() -> None:
    m, _ = manager(slippage=PercentSlippage(0.01))
    mkt = m.submit("X", "buy", 1, now=T0)
    lim = m.submit("X", "buy", 1, "limit", limit_price=99.0, now=T0)
    bar(m, T0 + MIN, 100, 100.5, 98, 100)
    assert mkt.avg_fill_price == pytest.approx(100.5)  # 101 clamped to the bar high
    assert lim.avg_fill_price == 99.0


def test_ioc_fills_what_it_can_then_cancels() -> None:
    m, _ = manager(participation_rate=0.1)
    o = m.submit("X", "buy", 50, tif="ioc", now=T0)
    bar(m, T0 + MIN, 100, 101, 99, 100, v=300)  # cap 30
    assert o.filled_qty == 30
    assert o.status is OrderStatus.CANCELED


def test_ioc_limit_not_reached_cancels_without_fill() -> None:
    m, _ = manager()
    o = m.submit("X", "buy", 5, "limit", limit_price=90.0, tif="ioc", now=T0)
    bar(m, T0 + MIN, 100, 101, 99, 100)
    assert (o.status, o.filled_qty) == (OrderStatus.CANCELED, 0.0)


def test_fok_all_or_nothing() -> None:
    m, _ = manager(participation_rate=0.1)
    small = m.submit("X", "buy", 20, tif="fok", now=T0)
    big = m.submit("X", "buy", 50, tif="fok", now=T0)
    bar(m, T0 + MIN, 100, 101, 99, 100, v=300)  # cap 30: small takes 20, big needs 50 > 10 left
    assert (small.status, small.filled_qty) == (OrderStatus.FILLED, 20.0)
    assert (big.status, big.filled_qty) == (OrderStatus.CANCELED, 0.0)


def test_participation_cap_shared_and_carried_over() -> None:
    m, _ = manager(participation_rate=0.25)
    a = m.submit("X", "buy", 30, now=T0)
    b = m.submit("X", "buy", 30, now=T0)
    bar(m, T0 + MIN, 100, 101, 99, 100, v=100)  # cap 25 -> a gets 25, b nothing
    assert (a.filled_qty, a.status) == (25.0, OrderStatus.PARTIALLY_FILLED)
    assert b.filled_qty == 0.0
    bar(m, T0 + 2 * MIN, 102, 103, 101, 102, v=100)  # a: 5 more @102, b: 20 @102
    assert (a.filled_qty, a.status) == (30.0, OrderStatus.FILLED)
    assert a.avg_fill_price == pytest.approx((25 * 100 + 5 * 102) / 30)
    assert b.filled_qty == 20.0


def test_participation_floors_to_whole_units_unless_fractional() -> None:
    m, _ = manager(participation_rate=0.1)
    o = m.submit("X", "buy", 10, now=T0)
    bar(m, T0 + MIN, 100, 101, 99, 100, v=39)  # 3.9 -> 3
    assert o.filled_qty == 3.0
    mf, _ = manager(participation_rate=0.1, fractional=True)
    of = mf.submit("X", "buy", 10, now=T0)
    bar(mf, T0 + MIN, 100, 101, 99, 100, v=39)
    assert of.filled_qty == pytest.approx(3.9)


def test_day_order_expires_on_next_day_gtc_stays() -> None:
    m, rec = manager()
    day = m.submit("X", "buy", 1, "limit", limit_price=90.0, tif="day", now=T0 + 100 * MIN)
    gtc = m.submit("X", "buy", 1, "limit", limit_price=90.0, now=T0 + 100 * MIN)
    bar(m, T0 + 101 * MIN, 100, 101, 99, 100)
    bar(m, T0 + 300 * MIN, 100, 101, 99, 100)  # same UTC day: still open
    assert day.status is OrderStatus.ACCEPTED
    bar(m, T0 + DAY_NS + MIN, 95, 96, 89, 95)  # next day: expires before it could fill at 90
    assert day.status is OrderStatus.EXPIRED
    assert day.filled_qty == 0
    assert gtc.status is OrderStatus.FILLED
    assert ("order", day.id, OrderStatus.EXPIRED) in rec.events


def test_day_order_placed_after_daily_close_lives_through_next_session() -> None:
    m, _ = manager()
    o = m.submit("X", "buy", 1, "limit", limit_price=90.0, tif="day", now=T0 + 21 * 60 * MIN)
    bar(m, T0 + DAY_NS + 21 * 60 * MIN, 100, 101, 95, 100)  # the next daily bar: live, no fill
    assert o.status is OrderStatus.ACCEPTED
    bar(m, T0 + 2 * DAY_NS + 21 * 60 * MIN, 92, 93, 85, 90)
    assert o.status is OrderStatus.EXPIRED


def test_cancel_open_and_terminal() -> None:
    m, rec = manager()
    o = m.submit("X", "buy", 1, "limit", limit_price=90.0, now=T0)
    assert m.cancel(o, T0) is True
    assert o.status is OrderStatus.CANCELED
    assert m.open_orders("X") == []
    assert m.cancel(o.id, T0) is False  # already terminal: nothing to do
    bar(m, T0 + MIN, 80, 81, 79, 80)
    assert o.filled_qty == 0
    with pytest.raises(OrderNotFoundError):
        m.cancel("nope", T0)
    assert rec.events[-1] == ("order", o.id, OrderStatus.CANCELED)


def test_replace_creates_new_order_old_replaced() -> None:
    m, _ = manager()
    old = m.submit("X", "buy", 10, "limit", limit_price=90.0, now=T0)
    new = m.replace(old, T0 + 1, limit_price=99.5)
    assert old.status is OrderStatus.REPLACED
    assert old.replaced_by == new.id and new.replaces == old.id
    assert (new.qty, new.limit_price, new.status) == (10.0, 99.5, OrderStatus.ACCEPTED)
    bar(m, T0 + MIN, 100, 101, 99, 100)
    assert new.status is OrderStatus.FILLED and new.avg_fill_price == 99.5
    with pytest.raises(OrderStateError):
        m.replace(old, T0 + MIN, limit_price=98.0)


def test_replace_partially_filled_defaults_to_remaining() -> None:
    m, _ = manager(participation_rate=0.5)
    old = m.submit("X", "buy", 10, now=T0)
    bar(m, T0 + MIN, 100, 101, 99, 100, v=8)
    assert old.filled_qty == 4
    new = m.replace(old, T0 + MIN, qty=None, tif="day")  # (with no change at all it is refused)
    assert new.qty == 6


def test_replace_bad_value_changes_nothing() -> None:
    m, _ = manager()
    old = m.submit("X", "buy", 10, "limit", limit_price=90.0, now=T0)
    with pytest.raises(InvalidOrderError) as err:
        m.replace(old, T0, limit_price=-1.0)
    assert err.value.field == "limit_price"
    assert old.status is OrderStatus.ACCEPTED
    assert m.open_orders("X") == [old]


def test_replace_unaffordable_is_rejected_old_stays() -> None:
    m, _ = manager(cash=10_000.0)
    old = m.submit("X", "buy", 50, "limit", limit_price=100.0, now=T0)
    new = m.replace(old, T0, qty=500)
    assert new.status is OrderStatus.REJECTED
    assert "buying power" in (new.reject_reason or "")
    assert old.status is OrderStatus.ACCEPTED


def test_buying_power_counts_open_orders() -> None:
    m, _ = manager(cash=10_000.0)
    a = m.submit("X", "buy", 60, now=T0)  # 6000 of 10000
    b = m.submit("X", "buy", 60, now=T0)  # would need 6000 more
    assert a.status is OrderStatus.ACCEPTED
    assert b.status is OrderStatus.REJECTED
    assert "insufficient buying power" in (b.reject_reason or "")
    # closing a long never needs buying power
    bar(m, T0 + MIN, 100, 101, 99, 100)
    c = m.submit("X", "sell", 60, now=T0 + MIN)
    assert c.status is OrderStatus.ACCEPTED


def test_short_disabled_rejects_naked_sell() -> None:
    m, _ = manager(allow_short=False)
    o = m.submit("X", "sell", 1, now=T0)
    assert o.status is OrderStatus.REJECTED
    assert "allow_short" in (o.reject_reason or "")


def test_short_position_and_cover() -> None:
    m, _ = manager(cash=10_000.0)
    m.submit("X", "sell", 10, now=T0)
    bar(m, T0 + MIN, 100, 101, 99, 100)
    assert m.portfolio.qty("X") == -10
    assert m.portfolio.cash == 11_000
    m.submit("X", "buy", 10, now=T0 + MIN)
    bar(m, T0 + 2 * MIN, 90, 91, 89, 90)
    assert m.portfolio.qty("X") == 0
    assert m.portfolio.realized_pnl == 100
    assert m.portfolio.equity == 10_100


def test_fixed_commission_once_per_order() -> None:
    m, _ = manager(participation_rate=0.5, commission=FixedCommission(2.0))
    o = m.submit("X", "buy", 10, now=T0)
    bar(m, T0 + MIN, 100, 101, 99, 100, v=10)
    bar(m, T0 + 2 * MIN, 100, 101, 99, 100, v=10)
    assert o.status is OrderStatus.FILLED
    assert o.commission == 2.0
    assert [f.commission for f in m.fills] == [2.0, 0.0]


def test_orders_of_other_symbols_untouched() -> None:
    m, _ = manager()
    y = m.submit("Y", "buy", 1, now=T0)
    bar(m, T0 + MIN, 100, 101, 99, 100)
    assert y.filled_qty == 0
    m.process_bar("Y", T0 + MIN, 50, 51, 49, 50, 1e6)
    assert y.status is OrderStatus.FILLED


def test_bad_participation_rate() -> None:
    with pytest.raises(InvalidOrderError) as err:
        manager(participation_rate=1.5)
    assert err.value.field == "participation_rate"


def test_replace_trailing_stop_after_it_has_trailed() -> None:
    m, _ = manager()
    m.portfolio.apply_fill("X", OrderSide.BUY, 10, 100.0, 0.0, T0)
    old = m.submit("X", "sell", 10, "trailing_stop", trail_price=3.0, now=T0)
    bar(m, T0 + MIN, 100, 104, 99, 103)  # trails up to 104: the stop is now 101
    assert old.stop_price == 101.0
    new = m.replace(old, T0 + MIN, trail_percent=1.0)
    assert (new.trail_price, new.trail_percent, new.stop_price) == (None, 1.0, None)
    assert new.status is OrderStatus.ACCEPTED
    assert old.status is OrderStatus.REPLACED


def test_open_sell_does_not_free_buying_power_for_a_buy() -> None:
    # flat: a sell of 60 (short, 6000) and a buy of 60 (6000) are both reserved; the sell may
    # fill and the buy not, or the other way round, so neither offsets the other.
    m, _ = manager(cash=13_000.0)
    sell = m.submit("X", "sell", 60, "limit", limit_price=100.0, now=T0)
    buy = m.submit("X", "buy", 60, "limit", limit_price=100.0, now=T0)
    third = m.submit("X", "buy", 20, "limit", limit_price=100.0, now=T0)  # 2000 > 13000 - 12000
    assert (sell.status, buy.status) == (OrderStatus.ACCEPTED, OrderStatus.ACCEPTED)
    assert third.status is OrderStatus.REJECTED


def test_a_trailing_stop_placed_before_its_symbols_bar_of_that_time_trails_from_it() -> None:
    """Regression: placed from another symbol's bar at T, before this symbol's bar at T was
    processed, a trailing stop trailed from the previous close and could fill at once."""
    m, rec = manager()
    m.last_prices["X"] = 100.0  # X's close at T - 1 min
    stop = m.submit("X", "buy", 5, "trailing_stop", trail_percent=5.0, now=T0)  # from Y's bar
    assert stop.trail_ref == 100.0  # all that is known of X when the order is placed
    bar(m, T0, 100, 120, 100, 120)  # X's bar of the same timestamp: not matched, but its price
    assert stop.trail_ref == 120.0 and stop.filled_qty == 0
    bar(m, T0 + MIN, 118, 119, 117, 118)  # a buy stop at 126 (120 + 5%), lowered to 122.85
    assert stop.status is OrderStatus.ACCEPTED and stop.filled_qty == 0  # not 105: no fill
    assert stop.stop_price == pytest.approx(117 * 1.05)
    assert [e[2] for e in rec.events] == [OrderStatus.ACCEPTED]


def test_a_fill_reports_the_position_it_left() -> None:
    m, rec = manager()
    m.submit("X", "buy", 3, now=T0)
    m.submit("X", "buy", 4, now=T0)
    m.submit("X", "sell", 10, now=T0)
    bar(m, T0 + MIN, 100, 101, 99, 100)
    assert [f.position_qty for f in m.fills] == [3.0, 7.0, -3.0]
    assert [e[2] for e in rec.events if e[0] == "fill"] == [(3, 100.0), (4, 100.0), (10, 100.0)]
