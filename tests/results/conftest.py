"""A small hand-made run whose report sections are worked out by hand (the ``scenario`` fixture).

Test modules cannot import this file (``--import-mode=importlib``): they use the fixture and keep
their own copies of ``DAY`` and ``T0``.
"""

from __future__ import annotations

import numpy as np
import pytest

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.execution.types import Fill, Order, OrderSide, OrderStatus, Trade
from tradeloop.results import BacktestResult

DAY = 86_400_000_000_000
T0 = 19_723 * DAY  # 2024-01-01 00:00 UTC; day 30 = Jan 31, day 59 = Feb 29, day 89 = Mar 30


def scenario_equity() -> list[float]:
    """Jan flat at 1000 then 1100 on Jan 31 (+10 %); a dip to 990 on Feb 10 (-10 % from the
    peak), 1045 on Feb 29 (-5 % for Feb), back to the peak 1100 on Mar 5; 1150 from Mar 6, a dip
    to 1130 on Mar 11 only, 1210 on Mar 30 (+15.79 % for Mar, +21 % for the year)."""
    e = np.full(90, 1000.0)
    e[30] = 1100.0
    e[31:40] = 1050.0
    e[40] = 990.0
    e[41:59] = 1020.0
    e[59] = 1045.0
    e[60:64] = 1080.0
    e[64] = 1100.0
    e[65:89] = 1150.0
    e[70] = 1130.0
    e[89] = 1210.0
    return e.tolist()


def trade(
    symbol: str,
    side: OrderSide,
    entry_day: int,
    entry: float,
    qty: float,
    exit_day: int | None = None,
    exit_: float | None = None,
    commission: float = 0.0,
) -> Trade:
    t = Trade(symbol, side, T0 + entry_day * DAY)
    t.entry_price, t.max_qty, t.commission = entry, qty, commission
    if exit_day is not None and exit_ is not None:
        t.exit_ts, t.exit_price = T0 + exit_day * DAY, exit_
        t.pnl = (exit_ - entry) * qty * side.sign
    return t


def order(n: int, symbol: str, status: OrderStatus, reason: str | None = None) -> Order:
    o = Order(f"O{n}", symbol, OrderSide.BUY, 1.0, created_at=T0 + n * DAY)
    o.status, o.reject_reason = status, reason
    return o


def make_scenario() -> tuple[BacktestResult, BarFeed]:
    """Symbols X (closes 100, 101, ... every day from day 0) and Y (50 on days 10..44, then 40).

    Trades: X long day 5 @105 -> day 20 @120 (qty 10, pnl 150, fee 2), Y short day 15 @50 ->
    day 50 @40 (qty 5, pnl 50, fee 1), X long day 30 @130 -> day 35 @125 (qty 10, pnl -50,
    fee 2), X long day 80 @180 still open (qty 3, fee 1). Orders: 6, 3 rejected.
    """
    days = np.arange(90)
    x = SymbolSeries(
        "X",
        (T0 + days * DAY).tolist(),
        [100.0 + d for d in days],
        [101.0 + d for d in days],
        [99.0 + d for d in days],
        [100.0 + d for d in days],
        [1e6] * 90,
    )
    y_days = np.arange(10, 90)
    y_close = [50.0 if d < 45 else 40.0 for d in y_days]
    y = SymbolSeries(
        "Y", (T0 + y_days * DAY).tolist(), y_close, y_close, y_close, y_close, [1e6] * 80
    )
    feed = BarFeed([x, y])
    equity = scenario_equity()
    trades = [
        trade("X", OrderSide.BUY, 5, 105.0, 10.0, 20, 120.0, commission=2.0),
        trade("Y", OrderSide.SELL, 15, 50.0, 5.0, 50, 40.0, commission=1.0),
        trade("X", OrderSide.BUY, 30, 130.0, 10.0, 35, 125.0, commission=2.0),
        trade("X", OrderSide.BUY, 80, 180.0, 3.0, commission=1.0),
    ]
    orders = [
        order(1, "X", OrderStatus.FILLED),
        order(
            2,
            "X",
            OrderStatus.REJECTED,
            "insufficient buying power: order needs 1234.00, available 99.00",
        ),
        order(3, "Y", OrderStatus.FILLED),
        order(4, "X", OrderStatus.REJECTED, "risk: max_position: X position could reach 20"),
        order(5, "Y", OrderStatus.REJECTED, "insufficient buying power: order needs 5.00"),
        order(6, "X", OrderStatus.CANCELED),
    ]
    fills = [Fill("O1", "X", OrderSide.BUY, 10.0, 105.0, 2.0, T0 + 5 * DAY, "E1")]
    result = BacktestResult(
        initial_cash=1_000.0,
        symbols=("X", "Y"),
        equity_ts=[T0 + d * DAY for d in range(90)],
        equity=equity,
        exposure=[0.0] * 90,
        orders=orders,
        fills=fills,
        trades=trades,
        final_cash=1_210.0,
        bars_processed=170,
        elapsed_seconds=0.01,
        strategy_name="Handmade",
        params={"window": 3},
        settings={
            "commission": {"type": "per_share", "rate": 0.005},
            "participation_rate": 0.1,
            "leverage": 2.0,
            "allow_short": False,
        },
    )
    return result, feed


@pytest.fixture
def scenario() -> tuple[BacktestResult, BarFeed]:
    """``(result, feed)`` of :func:`make_scenario` (fresh for every test)."""
    return make_scenario()
