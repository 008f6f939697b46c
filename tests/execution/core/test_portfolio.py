"""Portfolio accounting: hand-computed cases, pre-trade checks and property tests of identities."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.types import Order, OrderSide, OrderType

BUY, SELL = OrderSide.BUY, OrderSide.SELL


def approx(a: float, b: float, scale: float = 1.0) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * max(scale, 1.0))


def order(
    side: OrderSide, qty: float, type: OrderType = OrderType.MARKET, symbol: str = "X", **kw: Any
) -> Order:
    return Order("o1", symbol, side, qty, type, **kw)


# -- hand-computed fills ----------------------------------------------------------------------


def test_buy_then_partial_sell() -> None:
    p = Portfolio(10_000)
    p.apply_fill("X", BUY, 10, 100.0, 1.0, 1)
    assert p.cash == 10_000 - 1_000 - 1
    assert p.equity == 9_999
    p.apply_fill("X", SELL, 4, 110.0, 1.0, 2)
    pos = p.positions["X"]
    assert pos.qty == 6
    assert pos.avg_price == 100.0  # a partial close does not move the average
    assert pos.last_price == 110.0
    assert pos.realized_pnl == 40.0 and p.realized_pnl == 40.0
    assert p.cash == 10_000 - 1_000 - 1 + 440 - 1  # 9438
    assert p.market_value == 660.0 and p.gross_exposure == 660.0
    assert p.equity == 10_098.0
    assert p.unrealized_pnl == 60.0
    assert p.commission_paid == 2.0
    assert p.equity == p.initial_cash + p.realized_pnl + p.unrealized_pnl - p.commission_paid
    assert p.qty("X") == 6 and p.qty("NONE") == 0.0
    assert len(p.trades) == 1 and not p.trades[0].is_closed


def test_flip_long_to_short_in_one_fill() -> None:
    p = Portfolio(10_000)
    p.apply_fill("X", BUY, 10, 100.0, 0.0, 1)
    p.apply_fill("X", SELL, 15, 120.0, 3.0, 2)
    pos = p.positions["X"]
    assert pos.qty == -5
    assert pos.avg_price == 120.0  # the new short is entered at the fill price
    assert p.realized_pnl == 200.0  # (120 - 100) * 10
    assert p.cash == 10_000 - 1_000 + 1_800 - 3
    assert p.market_value == -600.0 and p.gross_exposure == 600.0
    assert p.equity == 10_197.0
    assert p.unrealized_pnl == 0.0

    closed, opened = p.trades
    assert closed.side is BUY and closed.is_closed
    assert closed.entry_price == 100.0 and closed.exit_price == 120.0
    assert closed.max_qty == 10 and closed.pnl == 200.0
    assert (closed.entry_ts, closed.exit_ts) == (1, 2)
    assert math.isclose(closed.commission, 2.0)  # 3.0 * 10/15 of the fill closed the long
    assert opened.side is SELL and not opened.is_closed
    assert opened.entry_price == 120.0 and opened.max_qty == 5 and opened.entry_ts == 2
    assert math.isclose(opened.commission, 1.0)  # the remaining 5/15
    assert opened.pnl == 0.0 and opened.exit_price is None
    assert math.isclose(closed.commission + opened.commission, p.commission_paid)


def test_flip_short_to_long_in_one_fill() -> None:
    p = Portfolio(10_000)
    p.apply_fill("X", SELL, 4, 50.0, 0.0, 1)
    p.apply_fill("X", BUY, 10, 45.0, 1.0, 2)
    assert p.qty("X") == 6 and p.positions["X"].avg_price == 45.0
    assert p.realized_pnl == 20.0  # (50 - 45) * 4
    closed, opened = p.trades
    assert closed.side is SELL and closed.is_closed and closed.pnl == 20.0
    assert opened.side is BUY and opened.max_qty == 6
    assert math.isclose(closed.commission, 0.4) and math.isclose(opened.commission, 0.6)


def test_short_then_cover_with_loss() -> None:
    p = Portfolio(10_000)
    p.apply_fill("X", SELL, 10, 50.0, 0.5, 1)
    assert p.cash == 10_000 + 500 - 0.5
    assert p.market_value == -500.0 and p.gross_exposure == 500.0
    assert p.equity == 9_999.5
    p.apply_fill("X", BUY, 10, 55.0, 0.5, 2)
    pos = p.positions["X"]
    assert pos.qty == 0.0 and pos.is_flat and pos.avg_price == 0.0
    assert p.realized_pnl == -50.0
    assert p.cash == 10_000 + 500 - 550 - 1.0
    assert p.equity == 9_949.0
    assert p.market_value == 0.0 and p.gross_exposure == 0.0
    (t,) = p.trades
    assert t.side is SELL and t.is_closed
    assert (t.entry_price, t.exit_price, t.max_qty) == (50.0, 55.0, 10)
    assert t.pnl == -50.0 and t.commission == 1.0 and t.net_pnl == -51.0
    assert math.isclose(t.return_pct, -10.0)
    assert t.to_dict()["direction"] == "short"


def test_adding_to_a_position_averages_the_price() -> None:
    p = Portfolio(100_000)
    p.apply_fill("X", BUY, 10, 100.0, 0.0, 1)
    p.apply_fill("X", BUY, 30, 120.0, 0.0, 2)
    pos = p.positions["X"]
    assert pos.qty == 40
    assert math.isclose(pos.avg_price, (1_000 + 3_600) / 40)  # 115
    assert math.isclose(pos.unrealized_pnl, 5 * 40)
    (t,) = p.trades
    assert math.isclose(t.entry_price, 115.0) and t.max_qty == 40


def test_adding_to_a_short_averages_the_price() -> None:
    p = Portfolio(100_000)
    p.apply_fill("X", SELL, 10, 100.0, 0.0, 1)
    p.apply_fill("X", SELL, 10, 90.0, 0.0, 2)
    pos = p.positions["X"]
    assert pos.qty == -20 and pos.avg_price == 95.0
    assert pos.unrealized_pnl == (90.0 - 95.0) * -20  # +100 for the short


def test_mark_updates_equity_and_gross_exposure() -> None:
    p = Portfolio(10_000)
    p.apply_fill("A", BUY, 10, 100.0, 0.0, 1)
    p.apply_fill("B", SELL, 5, 20.0, 0.0, 1)
    assert p.equity == 10_000 and p.gross_exposure == 1_100
    p.mark("A", 105.0)
    assert p.market_value == 1_050 - 100
    assert p.gross_exposure == 1_050 + 100
    assert p.equity == 10_050
    p.mark("B", 22.0)
    assert p.market_value == 1_050 - 110
    assert p.gross_exposure == 1_050 + 110
    assert p.equity == 10_040
    assert p.unrealized_pnl == 50 - 10
    assert p.positions["A"].last_price == 105.0


def test_mark_unknown_symbol_is_a_noop() -> None:
    p = Portfolio(1_000)
    p.mark("NONE", 5.0)
    assert p.positions == {} and p.equity == 1_000


def test_mark_flat_position_only_moves_last_price() -> None:
    p = Portfolio(1_000)
    p.apply_fill("X", BUY, 1, 10.0, 0.0, 1)
    p.apply_fill("X", SELL, 1, 12.0, 0.0, 2)
    p.mark("X", 50.0)
    assert p.positions["X"].last_price == 50.0
    assert p.equity == 1_002 and p.gross_exposure == 0.0


def test_trade_round_trip_fields() -> None:
    p = Portfolio(100_000)
    p.apply_fill("X", BUY, 10, 100.0, 1.0, 1)
    p.apply_fill("X", BUY, 10, 110.0, 1.0, 2)
    p.apply_fill("X", SELL, 5, 120.0, 0.5, 3)
    p.apply_fill("X", SELL, 15, 115.0, 1.5, 4)
    (t,) = p.trades
    assert t.symbol == "X" and t.side is BUY and t.is_closed
    assert (t.entry_ts, t.exit_ts) == (1, 4)
    assert t.entry_price == 105.0
    assert math.isclose(t.exit_price or 0.0, (5 * 120 + 15 * 115) / 20)  # 116.25
    assert t.max_qty == 20
    assert math.isclose(t.pnl, 5 * 15 + 15 * 10)  # 225 against avg 105
    assert math.isclose(t.commission, 4.0)
    assert math.isclose(t.net_pnl, 221.0)
    assert math.isclose(t.return_pct, 100 * 225 / (105 * 20))
    assert math.isclose(p.realized_pnl, t.pnl)
    d = t.to_dict()
    assert d["direction"] == "long" and d["qty"] == 20 and d["exit_time"] is not None
    assert p._open_trades == {}


def test_new_trade_after_flat() -> None:
    p = Portfolio(100_000)
    p.apply_fill("X", BUY, 1, 10.0, 0.0, 1)
    p.apply_fill("X", SELL, 1, 11.0, 0.0, 2)
    p.apply_fill("X", BUY, 2, 12.0, 0.0, 3)
    first, second = p.trades
    assert first.is_closed and not second.is_closed
    assert second.entry_ts == 3 and second.entry_price == 12.0 and second.max_qty == 2


def test_max_qty_is_the_peak_position() -> None:
    p = Portfolio(100_000)
    p.apply_fill("X", BUY, 10, 10.0, 0.0, 1)
    p.apply_fill("X", SELL, 8, 10.0, 0.0, 2)
    p.apply_fill("X", BUY, 3, 10.0, 0.0, 3)
    assert p.trades[0].max_qty == 10  # peak 10, not the latest 5 nor the sum of buys 13


# -- buying power -----------------------------------------------------------------------------


def test_buying_power_leverage_1() -> None:
    p = Portfolio(10_000)
    assert p.buying_power == 10_000
    p.apply_fill("X", BUY, 50, 100.0, 0.0, 1)
    assert p.buying_power == 5_000


def test_buying_power_leverage_2() -> None:
    p = Portfolio(10_000, leverage=2)
    assert p.buying_power == 20_000
    p.apply_fill("X", BUY, 50, 100.0, 0.0, 1)
    assert p.buying_power == 15_000


@pytest.mark.parametrize(("leverage", "expected"), [(1, 5_000), (2, 15_000)])
def test_buying_power_with_a_short(leverage: float, expected: float) -> None:
    p = Portfolio(10_000, leverage=leverage)
    p.apply_fill("X", SELL, 50, 100.0, 0.0, 1)
    assert p.cash == 15_000 and p.equity == 10_000 and p.gross_exposure == 5_000
    assert p.buying_power == expected


def test_buying_power_never_negative() -> None:
    p = Portfolio(10_000)
    p.apply_fill("X", SELL, 100, 100.0, 0.0, 1)
    p.mark("X", 150.0)  # equity 5000, exposure 15000
    assert p.equity == 5_000
    assert p.buying_power == 0.0


# -- pre-trade checks -------------------------------------------------------------------------


def test_estimate_price() -> None:
    est = Portfolio.estimate_price
    assert est(order(BUY, 1), 100.0) == 100.0
    assert est(order(BUY, 1, OrderType.LIMIT, limit_price=90.0), 100.0) == 90.0
    assert est(order(SELL, 1, OrderType.LIMIT, limit_price=110.0), 100.0) == 110.0
    assert est(order(BUY, 1, OrderType.STOP_LIMIT, stop_price=1, limit_price=95.0), 100.0) == 95.0
    assert est(order(BUY, 1, OrderType.STOP, stop_price=105.0), 100.0) == 105.0
    assert est(order(BUY, 1, OrderType.STOP, stop_price=95.0), 100.0) == 100.0
    assert est(order(SELL, 1, OrderType.STOP, stop_price=95.0), 100.0) == 100.0
    assert est(order(SELL, 1, OrderType.TRAILING_STOP, trail_price=1.0), 100.0) == 100.0


@pytest.mark.parametrize(
    ("held", "side", "qty", "pending", "expected"),
    [
        (0, BUY, 10, 0, 10),
        (0, SELL, 10, 0, 10),
        (5, BUY, 10, 0, 10),
        (5, SELL, 3, 0, 0),
        (5, SELL, 5, 0, 0),
        (5, SELL, 8, 0, 3),
        (-5, BUY, 8, 0, 3),
        (-5, BUY, 5, 0, 0),
        (-5, SELL, 2, 0, 2),
        (5, SELL, 3, -5, 3),  # an open sell already closes the long
        (5, SELL, 3, -4, 2),
        (0, BUY, 3, -10, 0),  # an open short sale would be covered first
    ],
)
def test_opening_qty(
    held: float, side: OrderSide, qty: float, pending: float, expected: float
) -> None:
    p = Portfolio(1e9)
    if held:
        p.apply_fill("X", BUY if held > 0 else SELL, abs(held), 10.0, 0.0, 0)
    assert p.opening_qty("X", side, qty, pending) == expected


def test_reject_insufficient_buying_power() -> None:
    p = Portfolio(1_000)
    reason = p.reject_reason(order(BUY, 20), 100.0, reserved=0.0, pending=0.0, est_commission=0)
    assert reason == "insufficient buying power: order needs 2000.00, available 1000.00"


def test_reject_counts_the_estimated_commission() -> None:
    p = Portfolio(1_000)
    assert p.reject_reason(order(BUY, 10), 100.0, 0.0, 0.0, 0.0) is None  # exactly affordable
    reason = p.reject_reason(order(BUY, 10), 100.0, 0.0, 0.0, 1.0)
    assert reason == "insufficient buying power: order needs 1001.00, available 1000.00"


def test_reject_counts_reserved_buying_power() -> None:
    p = Portfolio(1_000)
    reason = p.reject_reason(order(BUY, 5), 100.0, reserved=600.0, pending=0.0, est_commission=0)
    assert reason == "insufficient buying power: order needs 500.00, available 400.00"


def test_reject_sizes_limit_orders_at_their_limit() -> None:
    p = Portfolio(950)
    o = order(BUY, 10, OrderType.LIMIT, limit_price=90.0)
    assert p.reject_reason(o, 100.0, 0.0, 0.0, 0.0) is None


def test_reject_short_sale_needs_buying_power() -> None:
    p = Portfolio(1_000)
    assert p.reject_reason(order(SELL, 10), 100.0, 0.0, 0.0, 0.0) is None
    reason = p.reject_reason(order(SELL, 11), 100.0, 0.0, 0.0, 0.0)
    assert reason is not None and reason.startswith("insufficient buying power")


def test_reject_short_selling_disabled() -> None:
    p = Portfolio(1_000_000, allow_short=False)
    reason = p.reject_reason(order(SELL, 1, symbol="AAPL"), 100.0, 0.0, 0.0, 0.0)
    assert reason == "short selling is disabled (allow_short=False): qty=1 AAPL"
    p.apply_fill("AAPL", BUY, 10, 100.0, 0.0, 1)
    assert p.reject_reason(order(SELL, 10, symbol="AAPL"), 100.0, 0.0, 0.0, 0.0) is None
    reason = p.reject_reason(order(SELL, 15, symbol="AAPL"), 100.0, 0.0, 0.0, 0.0)
    assert reason is not None and reason.startswith("short selling is disabled")


def test_selling_an_existing_long_never_needs_buying_power() -> None:
    p = Portfolio(1_000)
    p.apply_fill("X", BUY, 10, 100.0, 0.0, 1)  # all in
    assert p.buying_power == 0.0
    for qty in (1, 5, 10):
        assert p.reject_reason(order(SELL, qty), 100.0, 1e9, 0.0, 50.0) is None
    p.mark("X", 10.0)  # a crash does not change that
    assert p.reject_reason(order(SELL, 10), 10.0, 1e9, 0.0, 50.0) is None


def test_covering_an_existing_short_never_needs_buying_power() -> None:
    p = Portfolio(1_000)
    p.apply_fill("X", SELL, 10, 100.0, 0.0, 1)
    p.mark("X", 200.0)
    assert p.buying_power == 0.0
    assert p.reject_reason(order(BUY, 10), 200.0, 0.0, 0.0, 5.0) is None


def test_flip_frees_the_capital_of_the_closed_side() -> None:
    p = Portfolio(1_000)
    p.apply_fill("X", BUY, 10, 100.0, 0.0, 1)
    assert p.reject_reason(order(SELL, 20), 100.0, 0.0, 0.0, 0.0) is None  # 10 close + 10 open
    reason = p.reject_reason(order(SELL, 25), 100.0, 0.0, 0.0, 0.0)
    assert reason == "insufficient buying power: order needs 1500.00, available 1000.00"


def test_pending_orders_count() -> None:
    p = Portfolio(1_000)
    p.apply_fill("X", BUY, 10, 100.0, 0.0, 1)
    assert p.reject_reason(order(SELL, 5), 100.0, 0.0, pending=0.0, est_commission=0) is None
    # another open order already sells the whole long: this one would open a short
    reason = p.reject_reason(order(SELL, 5), 100.0, 0.0, pending=-10.0, est_commission=0)
    assert reason == "insufficient buying power: order needs 500.00, available 0.00"


def test_pending_orders_count_for_allow_short() -> None:
    p = Portfolio(1_000_000, allow_short=False)
    p.apply_fill("X", BUY, 10, 100.0, 0.0, 1)
    assert p.reject_reason(order(SELL, 6), 100.0, 0.0, pending=-4.0, est_commission=0) is None
    reason = p.reject_reason(order(SELL, 7), 100.0, 0.0, pending=-4.0, est_commission=0)
    assert reason is not None and reason.startswith("short selling is disabled")


def test_allow_short_false_is_not_bypassed_by_an_unfilled_buy_order() -> None:
    p = Portfolio(1_000_000, allow_short=False)
    # flat; an open buy limit for 10 has not filled; a market sell for 10 would fill first
    reason = p.reject_reason(order(SELL, 10), 100.0, 1_000.0, pending=10.0, est_commission=0)
    assert reason is not None and reason.startswith("short selling is disabled")


# -- property tests ---------------------------------------------------------------------------

SYMBOLS = ("A", "B", "C")
INITIAL_CASH = 1_000_000.0

prices = st.floats(min_value=1.0, max_value=1_000.0, allow_nan=False)
fill_op = st.tuples(
    st.just("fill"),
    st.sampled_from(SYMBOLS),
    st.sampled_from([BUY, SELL]),
    # quantities below the portfolio's 1e-9 flat threshold are covered by a separate test
    st.floats(min_value=1e-6, max_value=1_000.0, allow_nan=False),
    prices,
    st.floats(min_value=0.0, max_value=10.0, allow_nan=False),
)
mark_op = st.tuples(st.just("mark"), st.sampled_from(SYMBOLS), prices)
ops_lists = st.lists(st.one_of(fill_op, fill_op, mark_op), max_size=40)

PROPERTY = settings(max_examples=150, deadline=None)


class Model:
    """An independent record of what the portfolio should hold."""

    def __init__(self) -> None:
        self.cash = INITIAL_CASH
        self.qty: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.scale = INITIAL_CASH  # magnitude of the amounts involved, for tolerances

    def market_value(self) -> float:
        return sum(self.qty[s] * self.last[s] for s in self.qty)

    def gross(self) -> float:
        return sum(abs(self.qty[s]) * self.last[s] for s in self.qty)


def replay(ops: list[tuple[Any, ...]]) -> Iterator[tuple[Portfolio, Model]]:
    p = Portfolio(INITIAL_CASH)
    m = Model()
    yield p, m
    for ts, op in enumerate(ops, start=1):
        if op[0] == "fill":
            _, sym, side, qty, price, fee = op
            p.apply_fill(sym, side, qty, price, fee, ts)
            m.qty[sym] = m.qty.get(sym, 0.0) + side.sign * qty
            m.last[sym] = price
            m.cash -= side.sign * qty * price + fee
            m.scale += qty * price + fee
        else:
            _, sym, price = op
            p.mark(sym, price)
            if sym in m.qty:
                m.last[sym] = price
            m.scale += abs(m.qty.get(sym, 0.0)) * price
        yield p, m


@PROPERTY
@given(ops_lists)
def test_property_equity_is_cash_plus_market_value(ops: list[tuple[Any, ...]]) -> None:
    for p, m in replay(ops):
        assert approx(p.cash, m.cash, m.scale)
        assert approx(p.market_value, m.market_value(), m.scale)
        assert approx(p.equity, m.cash + m.market_value(), m.scale)
        positions_value = sum(pos.qty * pos.last_price for pos in p.positions.values())
        assert approx(p.equity, p.cash + positions_value, m.scale)


@PROPERTY
@given(ops_lists)
def test_property_equity_is_initial_plus_pnl_minus_fees(ops: list[tuple[Any, ...]]) -> None:
    for p, m in replay(ops):
        expected = p.initial_cash + p.realized_pnl + p.unrealized_pnl - p.commission_paid
        assert approx(p.equity, expected, m.scale)
        by_symbol = sum(pos.realized_pnl for pos in p.positions.values())
        assert approx(p.realized_pnl, by_symbol, m.scale)


@PROPERTY
@given(ops_lists)
def test_property_gross_exposure(ops: list[tuple[Any, ...]]) -> None:
    for p, m in replay(ops):
        assert approx(p.gross_exposure, m.gross(), m.scale)
        own = sum(abs(pos.qty) * pos.last_price for pos in p.positions.values())
        assert approx(p.gross_exposure, own, m.scale)
        assert p.buying_power >= 0.0


@PROPERTY
@given(ops_lists)
def test_property_trades_match_positions(ops: list[tuple[Any, ...]]) -> None:
    for p, m in replay(ops):
        assert approx(sum(t.pnl for t in p.trades), p.realized_pnl, m.scale)
        open_trades: dict[str, list[Any]] = {}
        for t in p.trades:
            if not t.is_closed:
                open_trades.setdefault(t.symbol, []).append(t)
        assert all(len(ts) == 1 for ts in open_trades.values()), open_trades
        for sym, pos in p.positions.items():
            if pos.qty != 0.0:
                (t,) = open_trades[sym]
                assert t.side is (BUY if pos.qty > 0 else SELL)
                assert t.max_qty >= abs(pos.qty) - 1e-9
            else:
                assert sym not in open_trades
        for t in p.trades:
            if t.is_closed:
                assert t.exit_price is not None and t.exit_ts is not None


def test_sub_epsilon_fill_from_flat_does_not_corrupt_trades() -> None:
    p = Portfolio(1_000)
    p.apply_fill("X", BUY, 1e-10, 100.0, 0.0, 1)
    p.apply_fill("X", SELL, 5, 100.0, 0.0, 2)
    assert p.qty("X") == -5
    open_trades = [t for t in p.trades if not t.is_closed]
    assert len(open_trades) == 1
    assert open_trades[0].side is SELL


def test_committed_counts_only_same_side_pending() -> None:
    pf = Portfolio(10_000.0)
    pf.apply_fill("X", OrderSide.BUY, 10, 100.0, 0.0, 0)
    sell_close = Order("s", "X", OrderSide.SELL, 10)  # closes the long: needs nothing
    sell_short = Order("t", "X", OrderSide.SELL, 5)  # after the first sell it opens a short
    buy = Order("b", "X", OrderSide.BUY, 3, OrderType.LIMIT, limit_price=90.0)
    # the buy adds to the long whatever the sells do: 3 * 90 reserved
    assert pf.committed([sell_close, sell_short, buy], {"X": 100.0}) == 5 * 100.0 + 3 * 90.0
    assert pf.committed([], {}) == 0.0


def test_seed_position_starts_from_an_existing_holding() -> None:
    pf = Portfolio(10_000.0)
    pf.seed_position("AAPL", -20, 150.0, 155.0)
    assert pf.qty("AAPL") == -20
    assert pf.market_value == -20 * 155.0 and pf.gross_exposure == 20 * 155.0
    assert pf.equity == 10_000.0 - 3_100.0
    assert pf.trades == []  # the round trip began before this run
    pf.apply_fill("AAPL", OrderSide.BUY, 20, 150.0, 0.0, 1)  # closing it realizes against avg
    assert pf.qty("AAPL") == 0 and pf.realized_pnl == 0.0
    assert pf.cash == 10_000.0 - 3_000.0
