"""SimulatedExchange: admission with a venue's reference prices, orders admitted without a price,
linked exits' timestamps and endings, and a few matching corners of ``process_bar``."""

from __future__ import annotations

from typing import Any

import pytest

from tradeloop.errors import InvalidOrderError
from tradeloop.execution.core.costs import (
    FixedCommission,
    FixedSlippage,
    PercentCommission,
    PerShareCommission,
)
from tradeloop.execution.core.exchange import SimulatedExchange
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.types import Fill, Order, OrderSide, OrderStatus

S = OrderStatus
DAY = 86_400_000_000_000
T0 = 19_000 * DAY  # a UTC midnight
MIN = 60_000_000_000
BRACKET: dict[str, Any] = {
    "order_class": "bracket",
    "take_profit": {"limit_price": 110.0},
    "stop_loss": {"stop_price": 95.0},
}


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


def bar(ex: SimulatedExchange, symbol: str, ts: int, price: float, v: float = 1e9) -> None:
    ex.on_bar(symbol, ts, price, price, price, price, v)


# -- admission with a venue's reference prices ---------------------------------------------------


def test_reference_prices_size_orders_on_symbols_without_a_bar() -> None:
    ex, _ = exchange(cash=10_000.0, commission=PerShareCommission(0.01, minimum=0.0))
    ex.submit("Y", "buy", 20, now=T0)  # no price yet: 20 x 200 = 4,000 at the venue's price
    refs = {"X": 100.0, "Y": 200.0}
    big = ex.book.new_order("X", "buy", 70, now=T0)
    assert ex.admission_reason(big, fallback_prices=refs) == (
        "insufficient buying power: order needs 7000.70, available 6000.00"
    )
    ok = ex.book.new_order("X", "buy", 59, now=T0)
    assert ex.admission_reason(ok, fallback_prices=refs) is None
    # without reference prices the market order has nothing to be checked against
    assert ex.admission_reason(big) is None


def test_reference_prices_count_only_the_orders_a_replace_leaves() -> None:
    ex, _ = exchange(cash=10_000.0)
    old = ex.submit("X", "buy", 90, "limit", limit_price=100.0, now=T0)
    other = ex.submit("X", "buy", 5, "limit", limit_price=100.0, now=T0)
    refs = {"X": 100.0}
    new = ex.book.replacement(old, T0, qty=94)
    assert ex.admission_reason(new, ignore=old, fallback_prices=refs) is None  # 9,400 + 500
    assert ex.admission_reason(new, fallback_prices=refs) == (
        "insufficient buying power: order needs 9400.00, available 500.00"
    )
    assert other.is_open


def test_reference_prices_count_the_pending_sells_of_the_symbol() -> None:
    ex, _ = exchange(cash=10_000.0)
    ex.portfolio.apply_fill("X", OrderSide.BUY, 10, 100.0, 0.0, T0)  # cash 9,000
    ex.submit("X", "sell", 10, "limit", limit_price=100.0, now=T0)  # closes the 10
    sell = ex.book.new_order("X", "sell", 95, "limit", limit_price=100.0, now=T0)
    # the 10 held are spoken for: all 95 open a short, 9,500 > 9,000
    assert ex.admission_reason(sell, fallback_prices={"X": 100.0}) == (
        "insufficient buying power: order needs 9500.00, available 9000.00"
    )
    ex.portfolio.apply_fill("Y", OrderSide.SELL, 5, 100.0, 0.0, T0)  # short 5 Y: cash 9,500
    # a buy of 95 closes the 5 (freeing 500) and opens 90 at 100: just affordable
    buy = ex.book.new_order("Y", "buy", 95, now=T0)
    assert ex.admission_reason(buy, fallback_prices={"Y": 100.0}) is None
    more = ex.book.new_order("Y", "buy", 96, now=T0)
    assert ex.admission_reason(more, fallback_prices={"Y": 100.0}) == (
        "insufficient buying power: order needs 9100.00, available 9000.00"
    )


def test_a_last_price_beats_the_reference_price_and_frees_what_a_sell_closes() -> None:
    ex, _ = exchange(cash=1_000.0)
    bar(ex, "X", T0, 100.0)
    ex.portfolio.apply_fill("X", OrderSide.BUY, 10, 100.0, 0.0, T0)  # cash 0, 10 held (1,000)
    # sell 30 at a limit of 50: closes 10 (freeing 10 x the last price, 100), opens 20 x 50
    sell = ex.book.new_order("X", "sell", 30, "limit", limit_price=50.0, now=T0)
    assert ex.admission_reason(sell) is None
    assert ex.admission_reason(sell, fallback_prices={"X": 1.0}) is None
    bigger = ex.book.new_order("X", "sell", 51, "limit", limit_price=50.0, now=T0)
    assert ex.admission_reason(bigger) == (
        "insufficient buying power: order needs 2050.00, available 1000.00"
    )


def test_a_limit_or_stop_order_without_a_price_is_checked_against_its_own_price() -> None:
    ex, _ = exchange(cash=10_000.0)
    lim = ex.submit("Z", "buy", 100, "limit", limit_price=200.0, now=T0)
    assert lim.status is S.REJECTED
    assert (
        lim.reject_reason == "insufficient buying power: order needs 20000.00, available 10000.00"
    )
    stop = ex.submit("Z", "buy", 100, "stop", stop_price=200.0, now=T0)
    assert stop.status is S.REJECTED
    penny = ex.submit("Z", "buy", 20_000, "limit", limit_price=0.75, now=T0)
    assert penny.reject_reason == (
        "insufficient buying power: order needs 15000.00, available 10000.00"
    )


def test_an_oco_closes_only_the_position_less_what_other_exits_hold() -> None:
    ex, _ = exchange()
    bar(ex, "X", T0, 100.0)
    ex.portfolio.apply_fill("X", OrderSide.SELL, 10, 100.0, 0.0, T0)  # short 10
    kw: dict[str, Any] = {
        "order_class": "oco",
        "take_profit": {"limit_price": 90.0},
        "stop_loss": {"stop_price": 110.0},
    }
    first = ex.submit("X", "buy", 6, "limit", now=T0, **kw)
    assert first.status is S.ACCEPTED
    second = ex.submit("X", "buy", 5, "limit", now=T0, **kw)
    assert second.reject_reason == (
        "oco orders only close a position: qty=5 X, the position it closes is 10, "
        "6 of it held by other exits"
    )
    exact = ex.submit("X", "buy", 4, "limit", now=T0, **kw)
    assert exact.status is S.ACCEPTED  # exactly what is left
    sells = {"take_profit": {"limit_price": 120.0}, "stop_loss": {"stop_price": 80.0}}
    wrong_side = ex.submit("X", "sell", 1, "limit", now=T0, **{**kw, **sells})
    assert wrong_side.reject_reason == (
        "oco orders only close a position: qty=1 X, the position it closes is 0"
    )
    bar(ex, "W", T0, 100.0)  # flat: nothing to close on either side
    assert ex.submit("W", "buy", 1, "limit", now=T0, **kw).status is S.REJECTED
    assert ex.submit("W", "sell", 1, "limit", now=T0, **{**kw, **sells}).status is S.REJECTED


# -- orders admitted without a price -------------------------------------------------------------


def test_an_order_checked_at_placement_is_not_checked_again_at_its_fill() -> None:
    ex, _ = exchange(cash=10_000.0)
    stop = ex.submit("X", "buy", 100, "stop", stop_price=50.0, now=T0)  # 5,000: affordable
    assert stop.status is S.ACCEPTED
    ex.on_bar("X", T0 + MIN, 150, 151, 149, 150, 1e9)  # gaps through: fills at 150
    assert stop.status is S.FILLED and stop.avg_fill_price == 150.0


def test_a_penny_price_is_a_price() -> None:
    ex, _ = exchange(cash=6_000.0)
    bar(ex, "P", T0, 0.5)
    o = ex.submit("P", "buy", 10_000, now=T0)  # 5,000 at 0.5: checked now
    t = ex.submit("P", "sell", 100, "trailing_stop", trail_price=0.2, now=T0)
    assert t.trail_ref == 0.5
    ex.on_bar("P", T0 + MIN, 0.8, 0.8, 0.8, 0.8, 1e9)
    assert o.status is S.FILLED and o.avg_fill_price == 0.8  # not checked again


def test_an_order_refused_at_its_fill_does_not_stop_the_next_from_filling() -> None:
    ex, _ = exchange(cash=10_000.0)
    big = ex.submit("X", "buy", 100, now=T0)
    small = ex.submit("X", "buy", 10, now=T0)
    ex.on_bar("X", T0 + MIN, 150, 150, 150, 150, 1e9)
    assert big.status is S.REJECTED and small.status is S.FILLED


def test_unpriced_orders_are_checked_against_the_others_on_their_symbol() -> None:
    ex, _ = exchange(allow_short=False)
    ex.portfolio.apply_fill("X", OrderSide.BUY, 10, 100.0, 0.0, T0)
    alone = ex.submit("X", "sell", 10, now=T0)  # closes the 10 held: no short
    ex.on_bar("X", T0 + MIN, 100, 100, 100, 100, 1e9)
    assert alone.status is S.FILLED
    ex.portfolio.apply_fill("Z", OrderSide.BUY, 10, 100.0, 0.0, T0)
    ex.submit("Z", "sell", 5, "limit", limit_price=200.0, now=T0)  # 5 of the 10 spoken for
    second = ex.submit("Z", "sell", 10, now=T0)
    ex.on_bar("Z", T0 + MIN, 100, 100, 100, 100, 1e9)
    assert second.status is S.REJECTED
    assert second.reject_reason == (
        "short selling is disabled (allow_short=False): qty=10.0 Z"
        " at its first fill, 100 (Z had no price when it was placed)"
    )


def test_an_unpriced_orders_fee_comes_from_the_commission_model_at_the_fill() -> None:
    ex, _ = exchange(cash=1_000.0, commission=PercentCommission(0.01))
    o = ex.submit("X", "buy", 10, now=T0)
    ex.on_bar("X", T0 + MIN, 99.5, 99.5, 99.5, 99.5, 1e9)  # 995 + 9.95 > 1,000
    assert o.reject_reason == (
        "insufficient buying power: order needs 1004.95, available 1000.00"
        " at its first fill, 99.5 (X had no price when it was placed)"
    )
    ex2, _ = exchange(cash=1_000.0, commission=FixedCommission(10.0))
    o2 = ex2.submit("X", "buy", 10, now=T0)
    ex2.on_bar("X", T0 + MIN, 99.5, 99.5, 99.5, 99.5, 1e9)
    assert o2.status is S.REJECTED and o2.reject_reason is not None
    assert o2.reject_reason.startswith("insufficient buying power: order needs 1005.00")


def test_an_unpriced_order_is_checked_once_and_counts_the_fee_at_the_fill_price() -> None:
    ex, _ = exchange(cash=1_000.0, commission=PerShareCommission(1.0, minimum=0.0))
    o = ex.submit("X", "buy", 10, now=T0)
    ex.on_bar("X", T0 + MIN, 99.5, 99.5, 99.5, 99.5, 1e9)  # 995 + 10 fee > 1,000
    assert o.status is S.REJECTED
    assert o.reject_reason == (
        "insufficient buying power: order needs 1005.00, available 1000.00"
        " at its first fill, 99.5 (X had no price when it was placed)"
    )
    ex2, _ = exchange(cash=1_000.0, participation_rate=0.5)
    o2 = ex2.submit("X", "buy", 10, now=T0)
    ex2.on_bar("X", T0 + MIN, 90, 90, 90, 90, 10)  # 5 fill at 90: affordable
    assert o2.filled_qty == 5
    ex2.on_bar("X", T0 + 2 * MIN, 150, 150, 150, 150, 10)  # checked once only: fills on
    assert o2.status is S.FILLED


# -- replace ---------------------------------------------------------------------------------------


def test_a_replace_is_checked_without_the_order_it_replaces() -> None:
    ex, _ = exchange(cash=10_000.0)
    bar(ex, "X", T0, 100.0)
    old = ex.submit("X", "buy", 90, "limit", limit_price=100.0, now=T0)
    new = ex.replace(old, T0 + 1, qty=95)
    assert new.status is S.ACCEPTED and old.status is S.REPLACED


# -- matching corners ------------------------------------------------------------------------------


def test_an_order_canceled_by_a_callback_is_skipped_and_the_rest_still_match() -> None:
    ex, _ = exchange()
    bar(ex, "X", T0, 100.0)
    a = ex.submit("X", "buy", 1, now=T0)
    b = ex.submit("X", "buy", 1, now=T0)
    c = ex.submit("X", "buy", 1, now=T0)

    class Canceler:
        def on_fill(self, fill: Fill) -> None:
            if fill.order_id == a.id:
                ex.cancel(b, fill.ts)

        def on_order_update(self, order: Order) -> None:
            pass

    ex.listener = Canceler()
    bar(ex, "X", T0 + MIN, 101.0)
    assert (a.status, b.status, c.status) == (S.FILLED, S.CANCELED, S.FILLED)


def test_a_day_bracket_entry_filled_in_part_keeps_its_exits_at_the_session_end() -> None:
    ex, _ = exchange(fractional=True, participation_rate=0.5)
    bar(ex, "X", T0, 100.0)
    e = ex.submit("X", "buy", 2, tif="day", now=T0, **BRACKET)
    ex.on_bar("X", T0 + MIN, 100, 100, 100, 100, 1.0)  # 0.5 fills
    assert e.filled_qty == 0.5
    ex.on_bar("X", T0 + DAY, 100, 100, 100, 100, 1.0)
    assert e.status is S.EXPIRED
    assert [m.status for m in e.legs] == [S.ACCEPTED, S.ACCEPTED]  # they protect the 0.5


def test_at_the_end_of_data_an_unfilled_day_entry_takes_its_held_legs_with_it() -> None:
    ex, _ = exchange(fractional=True, participation_rate=0.5)
    bar(ex, "X", T0, 100.0)
    e = ex.submit(
        "X",
        "buy",
        1,
        "limit",
        limit_price=50.0,
        tif="day",
        now=T0,
        **{**BRACKET, "stop_loss": {"stop_price": 45.0}},
    )
    gtc = ex.submit(
        "X",
        "buy",
        1,
        "limit",
        limit_price=50.0,
        now=T0,
        **{**BRACKET, "stop_loss": {"stop_price": 45.0}},
    )
    ex.expire_all(T0 + 9)
    assert [(m.status, m.updated_at) for m in (e, *e.legs)] == [(S.EXPIRED, T0 + 9)] * 3
    assert [m.status for m in (gtc, *gtc.legs)] == [S.ACCEPTED, S.HELD, S.HELD]
    part = ex.submit("X", "buy", 2, tif="day", now=T0 + 10, **BRACKET)
    ex.on_bar("X", T0 + MIN, 100, 100, 100, 100, 1.0)  # 0.5 fills
    ex.expire_all(T0 + 2 * MIN)
    assert part.status is S.EXPIRED and part.filled_qty == 0.5
    assert [m.status for m in part.legs] == [S.EXPIRED, S.EXPIRED]  # day legs: their session ends


def test_exits_ended_with_the_position_carry_the_bar_time() -> None:
    ex, _ = exchange()
    bar(ex, "X", T0, 100.0)
    e = ex.submit("X", "buy", 10, now=T0, **BRACKET)
    bar(ex, "X", T0 + MIN, 100.0)
    tp, sl = e.legs
    assert tp.status is S.ACCEPTED
    ex.portfolio.apply_fill("X", OrderSide.SELL, 10, 100.0, 0.0, T0 + MIN)  # closed elsewhere
    after = ex.submit("X", "buy", 1, now=T0 + MIN)  # matched after the exits, on the same bar
    ex.on_bar("X", T0 + 2 * MIN, 100, 112, 100, 111, 1e9)
    assert [(m.status, m.updated_at) for m in (tp, sl)] == [(S.CANCELED, T0 + 2 * MIN)] * 2
    assert after.status is S.FILLED


def test_a_filled_take_profit_ends_the_bracket_at_the_bar_time() -> None:
    ex, _ = exchange()
    bar(ex, "X", T0, 100.0)
    e = ex.submit("X", "buy", 10, "limit", limit_price=99.0, now=T0, **BRACKET)
    ex.participation_rate = 0.5
    ex.on_bar("X", T0 + MIN, 99, 99, 99, 99, 8)  # 4 of 10 fill
    assert e.filled_qty == 4 and e.is_open
    ex.portfolio.apply_fill("X", OrderSide.BUY, 6, 99.0, 0.0, T0 + MIN)  # 6 more, not its own
    ex.on_bar("X", T0 + 2 * MIN, 100, 112, 100, 111, 1e9)
    tp, sl = e.legs
    assert (tp.status, tp.filled_qty) == (S.FILLED, 4)
    assert ex.portfolio.qty("X") == 6  # the exit sold the bracket's 4 only
    assert (e.status, e.updated_at) == (S.CANCELED, T0 + 2 * MIN)
    assert (sl.status, sl.updated_at) == (S.CANCELED, T0 + 2 * MIN)


def test_fills_reach_the_portfolio_with_their_time() -> None:
    ex, _ = exchange()
    bar(ex, "X", T0, 100.0)
    ex.submit("X", "buy", 10, now=T0)
    bar(ex, "X", T0 + MIN, 101.0)
    ex.submit("X", "sell", 10, now=T0 + MIN)
    bar(ex, "X", T0 + 2 * MIN, 103.0)
    (trade,) = list(ex.portfolio.trades)
    assert trade.entry_ts == T0 + MIN and trade.exit_ts == T0 + 2 * MIN
    assert ex.get_order(ex.orders[0].id) is ex.orders[0]
    assert ex.open_orders("X") == []
    ex.submit("X", "buy", 10, now=T0 + 2 * MIN)
    bar(ex, "X", T0 + 3 * MIN, 100.0)
    bar(ex, "X", T0 + 4 * MIN, 105.0)  # marked to the close: 10 x 105
    assert ex.portfolio.market_value == pytest.approx(1_050.0)


def test_participation_rate_one_is_allowed_and_above_is_refused() -> None:
    ex, _ = exchange(participation_rate=1.0)
    assert ex.participation_rate == 1.0
    with pytest.raises(InvalidOrderError, match=r"must be in \(0, 1\] or None"):
        exchange(participation_rate=1.01)


def test_the_exchange_validates_symbols() -> None:
    ex, _ = exchange(symbols=("X",))
    with pytest.raises(InvalidOrderError, match="unknown symbol"):
        ex.submit("Y", "buy", 1, now=T0)


def test_canceling_an_entry_after_a_fraction_filled_keeps_its_exits() -> None:
    ex, _ = exchange(fractional=True, participation_rate=0.5)
    bar(ex, "X", T0, 100.0)
    e = ex.submit("X", "buy", 2, "limit", limit_price=100.0, now=T0, **BRACKET)
    ex.on_bar("X", T0 + MIN, 100, 100, 100, 100, 1.0)  # 0.5 fills
    ex.cancel(e, T0 + MIN + 1)
    assert [m.status for m in e.legs] == [S.ACCEPTED, S.ACCEPTED]
    assert [m.qty for m in e.legs] == [0.5, 0.5]


class QtySlippage:
    """A slippage model that grows with the quantity (a user's own model)."""

    def apply(self, price: float, qty: float, side: OrderSide) -> float:
        return price + side.sign * 0.01 * qty


class NotionalCommission:
    """A commission model that reads the order and the fill price."""

    def compute(self, order: Order, qty: float, price: float) -> float:
        return 0.001 * qty * price if order.side is OrderSide.SELL else 0.0


def test_slippage_and_commission_models_see_the_fills_quantity_price_and_order() -> None:
    ex, rec = exchange(slippage=QtySlippage(), commission=NotionalCommission())
    bar(ex, "X", T0, 100.0)
    ex.submit("X", "buy", 100, now=T0)
    ex.on_bar("X", T0 + MIN, 100, 102, 99, 100, 1e9)
    assert rec.fills[-1].price == 101.0 and rec.fills[-1].commission == 0.0
    ex.submit("X", "sell", 100, now=T0 + MIN)
    ex.on_bar("X", T0 + 2 * MIN, 100, 102, 99, 100, 1e9)
    assert rec.fills[-1].price == 99.0
    assert rec.fills[-1].commission == pytest.approx(0.001 * 100 * 99.0)


def test_sell_slippage_stops_at_the_bars_low() -> None:
    ex, rec = exchange(slippage=FixedSlippage(5.0))
    bar(ex, "X", T0, 100.0)
    ex.submit("X", "sell", 1, now=T0)
    ex.on_bar("X", T0 + MIN, 100, 101, 99, 100, 1e9)
    assert rec.fills[-1].price == 99.0


def test_short_bracket_exits_end_when_the_short_is_closed_elsewhere() -> None:
    ex, _ = exchange()
    bar(ex, "X", T0, 100.0)
    e = ex.submit(
        "X",
        "sell",
        10,
        now=T0,
        order_class="bracket",
        take_profit={"limit_price": 90.0},
        stop_loss={"stop_price": 105.0},
    )
    bar(ex, "X", T0 + MIN, 100.0)
    tp, sl = e.legs
    ex.portfolio.apply_fill("X", OrderSide.BUY, 10, 100.0, 0.0, T0 + MIN)  # flat again
    ex.on_bar("X", T0 + 2 * MIN, 100, 100, 88, 89, 1e9)
    assert [(m.status, m.filled_qty) for m in (tp, sl)] == [(S.CANCELED, 0.0)] * 2
    assert ex.portfolio.qty("X") == 0.0


def test_an_exit_that_runs_out_of_position_ends_the_exits_but_not_the_open_entry() -> None:
    ex, _ = exchange()
    bar(ex, "X", T0, 100.0)
    e = ex.submit("X", "buy", 10, "limit", limit_price=99.0, now=T0, **BRACKET)
    ex.participation_rate = 0.5
    ex.on_bar("X", T0 + MIN, 99, 99, 99, 99, 8)  # 4 of 10 fill
    ex.participation_rate = None
    ex.portfolio.apply_fill("X", OrderSide.SELL, 2, 99.0, 0.0, T0 + MIN)  # 2 sold elsewhere
    ex.on_bar("X", T0 + 2 * MIN, 100, 112, 100, 111, 1e9)
    tp, sl = e.legs
    assert (tp.status, tp.filled_qty) == (S.CANCELED, 2)  # what was left of the position
    assert sl.status is S.CANCELED
    assert e.status is S.PARTIALLY_FILLED  # its other 6 may still come


def test_open_orders_of_one_symbol() -> None:
    ex, _ = exchange()
    x = ex.submit("X", "buy", 1, "limit", limit_price=10.0, now=T0)
    ex.submit("Y", "buy", 1, "limit", limit_price=10.0, now=T0)
    assert ex.open_orders("X") == [x] and len(ex.open_orders()) == 2


def test_a_replace_of_a_sell_counts_the_new_sell_alone() -> None:
    ex, _ = exchange(cash=1_500.0)
    bar(ex, "X", T0, 100.0)
    ex.portfolio.apply_fill("X", OrderSide.BUY, 10, 100.0, 0.0, T0)  # cash 500
    old = ex.submit("X", "sell", 10, "limit", limit_price=100.0, now=T0)
    new = ex.replace(old, T0 + 1, qty=12)  # closes 10, opens 2 short: 200
    assert new.status is S.ACCEPTED and old.status is S.REPLACED


def test_an_oco_over_its_position_by_the_tolerance_is_accepted() -> None:
    ex, _ = exchange(fractional=True)
    bar(ex, "X", T0, 100.0)
    ex.portfolio.apply_fill("X", OrderSide.BUY, 10, 100.0, 0.0, T0)
    oco = ex.submit(
        "X",
        "sell",
        10 + 1e-9,
        "limit",
        now=T0,
        order_class="oco",
        take_profit={"limit_price": 110.0},
        stop_loss={"stop_price": 90.0},
    )
    assert oco.status is S.ACCEPTED


def test_fok_fills_when_the_capacity_is_short_by_the_tolerance() -> None:
    ex, _ = exchange(fractional=True, participation_rate=0.5)
    bar(ex, "X", T0, 100.0)
    o = ex.submit("X", "buy", 1, tif="fok", now=T0)
    ex.on_bar("X", T0 + MIN, 100, 100, 100, 100, 2 - 2e-9)  # capacity 1 - 1e-9
    assert o.status is S.FILLED and o.filled_qty == 1.0


def test_a_non_trailing_order_gets_no_trail_reference() -> None:
    ex, _ = exchange()
    bar(ex, "X", T0, 100.0)
    o = ex.submit("X", "buy", 1, "limit", limit_price=50.0, now=T0 + MIN)
    ex.on_bar("X", T0 + MIN, 120, 120, 120, 120, 1e9)
    assert o.trail_ref is None


def test_two_brackets_take_profit_on_one_bar() -> None:
    ex, _ = exchange()
    bar(ex, "X", T0, 100.0)
    a = ex.submit("X", "buy", 10, now=T0, **BRACKET)
    b = ex.submit("X", "buy", 5, now=T0, **{**BRACKET, "take_profit": {"limit_price": 108.0}})
    bar(ex, "X", T0 + MIN, 100.0)
    ex.on_bar("X", T0 + 2 * MIN, 100, 112, 100, 111, 1e9)
    assert [m.status for m in (*a.legs, *b.legs)] == [S.FILLED, S.CANCELED] * 2
    assert ex.portfolio.qty("X") == 0.0


def test_day_exits_of_a_bracket_expire_together_on_the_next_day() -> None:
    for start in (0, T0):  # also on the epoch's first day (day 0)
        ex, _ = exchange()
        bar(ex, "X", start, 100.0)
        e = ex.submit("X", "buy", 10, tif="day", now=start, **BRACKET)
        bar(ex, "X", start + MIN, 100.0)  # the entry fills; its exits start
        bar(ex, "X", start + 2 * MIN, 100.0)  # the exits' first bar: their session
        assert [m.status for m in e.legs] == [S.ACCEPTED, S.ACCEPTED]
        bar(ex, "X", start + DAY, 100.0)
        assert [(m.status, m.updated_at) for m in e.legs] == [(S.EXPIRED, start + DAY)] * 2


def test_a_triggered_stop_limit_and_a_take_profit_both_at_the_open_trade_in_leg_order() -> None:
    ex, _ = exchange()
    bar(ex, "X", T0, 100.0)
    e = ex.submit(
        "X",
        "buy",
        10,
        now=T0,
        order_class="bracket",
        take_profit={"limit_price": 110.0},
        stop_loss={"stop_price": 95.0, "limit_price": 96.0},
    )
    bar(ex, "X", T0 + MIN, 100.0)
    tp, sl = e.legs
    # from 97 down to 93: triggers at 95 and never gets back to its limit, 96 (matched once:
    # the 97 before the trigger does not count)
    ex.on_bar("X", T0 + 2 * MIN, 97, 97, 93, 93.5, 1e9)
    assert sl.triggered and sl.is_open and sl.filled_qty == 0.0
    ex.on_bar("X", T0 + 3 * MIN, 111, 112, 110, 111, 1e9)  # both sell at the open: tp first
    assert (tp.status, tp.avg_fill_price) == (S.FILLED, 111.0)
    assert sl.status is S.CANCELED


def test_at_the_end_of_data_orders_expire_in_book_order() -> None:
    ex, rec = exchange(fractional=True, participation_rate=0.5)
    bar(ex, "X", T0, 100.0)
    e = ex.submit("X", "buy", 2, tif="day", now=T0, **BRACKET)
    other = ex.submit("X", "buy", 1, "limit", limit_price=50.0, tif="day", now=T0)
    ex.on_bar("X", T0 + MIN, 100, 100, 100, 100, 1.0)  # 0.5 of the entry fills
    tp, sl = e.legs
    rec.events.clear()
    ex.expire_all(T0 + 9)
    assert [ev[1] for ev in rec.events] == [e.id, other.id, tp.id, sl.id]


def test_exits_of_a_position_within_the_tolerance_end_without_trading() -> None:
    ex, _ = exchange(fractional=True)
    bar(ex, "X", T0, 100.0)
    e = ex.submit("X", "buy", 1e-9, now=T0, **BRACKET)
    bar(ex, "X", T0 + MIN, 100.0)
    assert e.status is S.FILLED and ex.portfolio.qty("X") == 1e-9
    ex.on_bar("X", T0 + 2 * MIN, 100, 112, 100, 111, 1e9)
    assert [(m.status, m.filled_qty) for m in e.legs] == [(S.CANCELED, 0.0)] * 2


def test_exits_end_when_a_partial_exit_fill_leaves_only_the_tolerance_of_the_position() -> None:
    ex, _ = exchange(fractional=True)
    bar(ex, "X", T0, 100.0)
    e = ex.submit("X", "buy", 1, now=T0, **BRACKET)
    bar(ex, "X", T0 + MIN, 100.0)
    ex.portfolio.apply_fill("X", OrderSide.SELL, 1, 100.0, 0.0, T0 + MIN)  # sold elsewhere
    ex.portfolio.apply_fill("X", OrderSide.BUY, 2e-9, 100.0, 0.0, T0 + MIN)
    ex.participation_rate = 0.5
    ex.on_bar("X", T0 + 2 * MIN, 100, 112, 100, 111, 2e-9)  # the take-profit sells 1e-9
    tp, sl = e.legs
    assert tp.filled_qty == 1e-9 and ex.portfolio.qty("X") == 1e-9
    assert (tp.status, sl.status) == (S.CANCELED, S.CANCELED)  # nothing left to protect


def test_an_oco_reason_names_other_exits_only_when_they_hold_more_than_the_tolerance() -> None:
    ex, _ = exchange(fractional=True)
    bar(ex, "X", T0, 100.0)
    ex.portfolio.apply_fill("X", OrderSide.BUY, 10, 100.0, 0.0, T0)
    kw: dict[str, Any] = {
        "order_class": "oco",
        "take_profit": {"limit_price": 110.0},
        "stop_loss": {"stop_price": 90.0},
    }
    assert ex.submit("X", "sell", 1e-9, "limit", now=T0, **kw).status is S.ACCEPTED
    big = ex.submit("X", "sell", 11, "limit", now=T0, **kw)
    assert big.reject_reason == (
        "oco orders only close a position: qty=11 X, the position it closes is 10"
    )


def test_an_unpriced_order_that_waited_a_bar_is_checked_without_its_own_reservation() -> None:
    # no volume on the symbol's first bar: the order waits, and now reserves 60 x 100 itself;
    # at its fill it is checked against the rest of the account, not against itself too
    ex, _ = exchange(cash=10_000.0, participation_rate=0.5)
    o = ex.submit("X", "buy", 60, now=T0)
    ex.on_bar("X", T0 + MIN, 100, 100, 100, 100, 0)
    assert o.status is S.ACCEPTED and o.filled_qty == 0
    ex.on_bar("X", T0 + 2 * MIN, 100, 100, 100, 100, 1e9)
    assert o.status is S.FILLED
