"""The breakdowns behind the report and the CLI summary, on runs worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tradeloop.data.feed import BarFeed
from tradeloop.execution.types import Order, OrderSide, OrderStatus
from tradeloop.results import BacktestResult
from tradeloop.results.analysis import (
    DrawdownPeriod,
    buy_and_hold,
    drawdown_periods,
    monthly_returns,
    reason_kind,
    rejection_counts,
    symbol_breakdown,
    trade_durations_ns,
)

DAY = 86_400_000_000_000
T0 = 19_723 * DAY  # 2024-01-01 UTC, day 0 of the scenario fixture (conftest.py)
Scenario = tuple[BacktestResult, BarFeed]


BUYING_POWER = "insufficient buying power: order needs 25109.17, available 25108.26"
NO_SHORTS = "short selling is disabled (allow_short=False): qty=5 X"


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        (BUYING_POWER, "insufficient buying power"),
        (NO_SHORTS, "short selling is disabled (allow_short=False)"),
        ("risk: max_position: X position could reach 20, size 20 > limit 10", "risk: max_position"),
        ("risk: daily_loss_limit: equity fell to 9,000.00", "risk: daily_loss_limit"),
        ("rejected by the venue", "rejected by the venue"),
        ("", "(no reason given)"),
        (None, "(no reason given)"),
    ],
)
def test_reason_kind(reason: str | None, kind: str) -> None:
    assert reason_kind(reason) == kind


def test_rejection_counts_most_frequent_first(scenario: Scenario) -> None:
    assert rejection_counts(scenario[0].orders) == [
        ("insufficient buying power", 2),
        ("risk: max_position", 1),
    ]
    filled = Order("O9", "X", OrderSide.BUY, 1.0)
    filled.status = OrderStatus.FILLED
    assert rejection_counts([filled]) == []


def test_drawdown_periods(scenario: Scenario) -> None:
    r = scenario[0]
    periods = drawdown_periods(r.equity_ts, r.equity, top=5)
    # Jan 31 (1100) -> Feb 10 (990) -> Mar 5 (1100 again); Mar 10 (1150) -> 11 (1130) -> 12
    assert [(p.start_ts, p.trough_ts, p.end_ts, p.length_days) for p in periods] == [
        (T0 + 30 * DAY, T0 + 40 * DAY, T0 + 64 * DAY, 34.0),
        (T0 + 69 * DAY, T0 + 70 * DAY, T0 + 71 * DAY, 2.0),
    ]
    assert [p.depth for p in periods] == pytest.approx([0.1, 20 / 1150])
    assert all(isinstance(p, DrawdownPeriod) for p in periods)
    assert drawdown_periods(r.equity_ts, r.equity, top=1) == periods[:1]


def test_drawdown_period_not_recovered() -> None:
    ts = [T0 + i * DAY for i in range(5)]
    (period,) = drawdown_periods(ts, [100.0, 120.0, 90.0, 60.0, 80.0])
    assert period.start_ts == T0 + DAY
    assert period.trough_ts == T0 + 3 * DAY
    assert period.end_ts is None
    assert period.depth == pytest.approx(0.5)
    assert period.length_days == 3.0  # to the last point
    assert drawdown_periods(ts, [1.0, 2.0, 3.0, 4.0, 5.0]) == []
    assert drawdown_periods([], []) == []


def test_monthly_returns(scenario: Scenario) -> None:
    r = scenario[0]
    mr = monthly_returns(r.equity_ts, r.equity, r.initial_cash)
    assert list(mr.months) == [2024]
    assert mr.months[2024] == pytest.approx({1: 0.1, 2: -0.05, 3: 1210 / 1045 - 1})
    assert mr.years == pytest.approx({2024: 0.21})


def test_monthly_returns_across_years_and_gaps() -> None:
    stamps = [T0 - 2 * DAY, T0 + 40 * DAY, T0 + 100 * DAY]  # Dec 30 2023, Feb 10, Apr 10 2024
    mr = monthly_returns(stamps, [110.0, 99.0, 108.9], initial_cash=100.0)
    assert mr.months == {2023: {12: pytest.approx(0.1)}, 2024: pytest.approx({2: -0.1, 4: 0.1})}
    assert mr.years == {2023: pytest.approx(0.1), 2024: pytest.approx(108.9 / 110 - 1)}
    assert monthly_returns([], [], 100.0).months == {}


def test_symbol_breakdown(scenario: Scenario) -> None:
    x, y = symbol_breakdown(scenario[0])
    assert (x.symbol, x.closed_trades, x.open_trades, x.orders, x.rejected) == ("X", 2, 1, 4, 2)
    assert x.win_rate == 0.5
    assert x.net_pnl == pytest.approx(148.0 - 52.0)
    assert x.avg_return_pct == pytest.approx((150 / 1050 - 50 / 1300) * 100 / 2)
    assert x.commission == 5.0  # open trade's commission included
    assert (y.symbol, y.closed_trades, y.open_trades, y.orders, y.rejected) == ("Y", 1, 0, 2, 1)
    assert (y.win_rate, y.net_pnl, y.commission) == (1.0, 49.0, 1.0)


def test_symbol_breakdown_adds_symbols_only_traded(scenario: Scenario) -> None:
    r = scenario[0]
    r.symbols = ("Y",)
    assert [s.symbol for s in symbol_breakdown(r)] == ["Y", "X"]


def test_trade_durations(scenario: Scenario) -> None:
    durations, pnl = trade_durations_ns(scenario[0].trades)
    assert (durations // DAY).tolist() == [15, 35, 5]  # the open trade is left out
    assert pnl.tolist() == [148.0, 49.0, -52.0]


def test_buy_and_hold(scenario: Scenario) -> None:
    r = scenario[0]
    bench = buy_and_hold(scenario[1], r.equity_ts, r.initial_cash)
    assert bench is not None
    # 500 in X bought at 100 (5 shares), 500 in Y bought at 50 on day 10 (10 shares), cash before
    days = np.arange(90)
    y_value = np.where(days < 10, 500.0, np.where(days < 45, 500.0, 400.0))
    assert bench.tolist() == pytest.approx((5 * (100.0 + days) + y_value).tolist())
    assert bench[0] == 1_000.0 and bench[-1] == 5 * 189 + 400


def test_buy_and_hold_marks_at_the_last_close_before() -> None:
    feed = BarFeed.from_arrays(
        "X", [10, 20], [1.0] * 2, [1.0] * 2, [1.0] * 2, [2.0, 4.0], [1.0] * 2
    )
    bench = buy_and_hold(feed, [5, 10, 15, 20, 25], 100.0)
    assert bench is not None
    assert bench.tolist() == [100.0, 100.0, 100.0, 200.0, 200.0]
    assert buy_and_hold(feed, [5], 0.0) is None
    assert buy_and_hold(BarFeed([]), [5], 100.0) is None
    assert not math.isnan(float(bench.sum()))
