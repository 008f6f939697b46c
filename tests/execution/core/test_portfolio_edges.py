"""Portfolio: trade records kept in a log, fractional positions in the running sums, and the
pre-trade arithmetic (opening quantities, estimates, reservations, reasons) at its edges."""

from __future__ import annotations

import pytest

from tradeloop.execution.core.portfolio import Portfolio, TradeList
from tradeloop.execution.types import Order, OrderSide, OrderType, Trade
from tradeloop.results.log import TradeLog

BUY, SELL = OrderSide.BUY, OrderSide.SELL


def order(side: OrderSide, qty: float, type: OrderType = OrderType.MARKET, **kw: float) -> Order:
    return Order("O1", "X", side, qty, type, **kw)  # type: ignore[arg-type]


def test_trades_go_to_the_log_given_and_closed_ones_are_final() -> None:
    log = TradeLog()
    pf = Portfolio(10_000.0, trades=log)
    assert pf.trades is log
    pf.apply_fill("X", BUY, 10, 100.0, 0.0, 1)
    pf.apply_fill("X", SELL, 10, 110.0, 0.0, 2)  # closed
    pf.apply_fill("X", SELL, 5, 110.0, 0.0, 3)
    pf.apply_fill("X", BUY, 10, 100.0, 0.0, 4)  # flips: the short closes, a long opens
    first, second, third = list(log)
    assert (first.entry_ts, first.exit_ts, first.pnl) == (1, 2, pytest.approx(100.0))
    assert (second.side, second.exit_ts, second.pnl) == (SELL, 4, pytest.approx(50.0))
    assert (third.side, third.entry_ts, third.exit_ts) == (BUY, 4, None)


def test_a_trade_list_reserves_the_row_the_trade_landed_in() -> None:
    trades = TradeList()
    assert trades.reserve(Trade("X", BUY, 1)) == 0
    assert trades.reserve(Trade("Y", BUY, 2)) == 1


def test_positions_know_their_symbol() -> None:
    pf = Portfolio(1_000.0)
    assert pf.position("X").symbol == "X"
    pf.apply_fill("Y", BUY, 1, 10.0, 0.0, 1)
    assert pf.positions["Y"].symbol == "Y"


def test_fractional_positions_keep_gross_exposure_exact_between_resums() -> None:
    pf = Portfolio(10_000.0)
    pf.apply_fill("Y", BUY, 1, 100.0, 0.0, 1)
    pf.apply_fill("Z", SELL, 1, 100.0, 0.0, 1)
    for i, (side, qty, price) in enumerate(
        [(BUY, 0.5, 100.0), (BUY, 0.25, 104.0), (SELL, 0.5, 98.0), (SELL, 0.5, 97.0)] * 2
    ):
        pf.apply_fill("X", side, qty, price, 0.0, 2 + i)
        exact = sum(abs(p.qty) * p.last_price for p in pf.positions.values())
        assert pf.gross_exposure == pytest.approx(exact), i


def test_a_fill_of_the_tolerance_opens_a_position() -> None:
    pf = Portfolio(1_000.0)
    pf.apply_fill("X", BUY, 1e-9, 100.0, 0.0, 1)
    assert pf.qty("X") == 1e-9


def test_estimates_of_stop_and_trailing_orders() -> None:
    buy_stop = order(BUY, 1, OrderType.STOP, stop_price=105.0)
    assert Portfolio.estimate_price(buy_stop, 100.0) == 105.0  # a buy stop pays at least its stop
    sell_stop = order(SELL, 1, OrderType.STOP, stop_price=95.0)
    assert Portfolio.estimate_price(sell_stop, 100.0) == 100.0
    at_once = order(SELL, 1, OrderType.STOP, stop_price=105.0)  # above the market: sells now
    assert Portfolio.estimate_price(at_once, 100.0) == 100.0
    trailing = order(BUY, 1, OrderType.TRAILING_STOP, trail_price=5.0)
    trailing.stop_price = 120.0  # the matcher's current level
    assert Portfolio.estimate_price(trailing, 100.0) == 100.0


def test_opening_qty_around_flat_and_fractional_positions() -> None:
    pf = Portfolio(10_000.0)
    pf.apply_fill("S", SELL, 5, 100.0, 0.0, 1)
    assert pf.opening_qty("S", BUY, 10) == 5  # the first 5 close the short
    pf.apply_fill("L", BUY, 0.5, 100.0, 0.0, 1)
    assert pf.opening_qty("L", BUY, 10) == 10
    assert pf.opening_qty("L", SELL, 10) == 9.5


def test_committed_counts_fractions_and_nothing_for_unpriced_orders() -> None:
    pf = Portfolio(10_000.0)
    assert pf.committed([order(BUY, 0.5)], {"X": 100.0}) == 50.0
    assert pf.committed([order(BUY, 10)], {}) == 0.0


def test_reject_reason_counts_only_pending_orders_on_the_same_side() -> None:
    pf = Portfolio(1_000.0)
    pf.apply_fill("X", SELL, 10, 100.0, 0.0, 1)  # short 10: buying power 0
    # a pending buy of 10 closes the short: all 15 of this buy open a long
    assert pf.reject_reason(order(BUY, 15), 100.0, 0.0, 10.0, 0.0) == (
        "insufficient buying power: order needs 1500.00, available 0.00"
    )
    # alone, a buy of 20 closes the 10 (freeing 1,000) and opens 10: just affordable
    assert pf.reject_reason(order(BUY, 20), 100.0, 0.0, 0.0, 0.0) is None
    # pending buys do not excuse a sell, pending sells do not excuse a buy
    flat = Portfolio(1_000.0)
    assert flat.reject_reason(order(SELL, 11), 100.0, 0.0, 5.0, 0.0) == (
        "insufficient buying power: order needs 1100.00, available 1000.00"
    )
    assert pf.reject_reason(order(BUY, 15), 100.0, 0.0, -3.0, 0.0) is None


def test_reject_reason_edges_within_the_tolerance() -> None:
    pf = Portfolio(1_000.0, allow_short=False)
    pf.apply_fill("X", BUY, 1, 100.0, 0.0, 1)
    assert pf.reject_reason(order(SELL, 1 + 5e-10), 100.0, 0.0, 0.0, 0.0) is None
    tiny = Portfolio(1_000.0, allow_short=False)
    tiny.apply_fill("X", BUY, 1e-9, 100.0, 0.0, 1)
    assert tiny.reject_reason(order(SELL, 2e-9), 100.0, 0.0, 0.0, 0.0) is None
    assert tiny.reject_reason(order(SELL, 1), 100.0, 0.0, 0.0, 0.0) == (
        "short selling is disabled (allow_short=False): qty=1 X"
    )
    cash = Portfolio(1_000.0)
    # needs exactly the buying power plus the tolerance: still affordable
    assert cash.reject_reason(order(BUY, 10), 100.0, 0.0, 0.0, 1e-9) is None
