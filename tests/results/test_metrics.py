"""compute_metrics on small hand-made results whose metrics are worked out by hand."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from tradeloop.errors import ConfigError
from tradeloop.execution.types import Fill, Order, OrderSide, Trade
from tradeloop.results import BacktestResult, compute_metrics
from tradeloop.results.metrics import METRIC_KEYS, drawdown_series, infer_periods_per_year

MINUTE = 60_000_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
T0 = 19_723 * DAY  # 2024-01-01 00:00 UTC, a Monday


@pytest.fixture(autouse=True)
def strict_numpy() -> Iterator[None]:
    """Any numpy floating-point warning (or any warning at all) fails the test."""
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        yield


def make_result(
    equity: Sequence[float],
    *,
    step: int = DAY,
    ts: Sequence[int] | None = None,
    exposure: Sequence[float] | None = None,
    initial_cash: float | None = None,
    trades: Sequence[Trade] = (),
    fills: Sequence[Fill] = (),
    orders: Sequence[Order] = (),
) -> BacktestResult:
    if ts is None:
        ts = [T0 + i * step for i in range(len(equity))]
    return BacktestResult(
        initial_cash=initial_cash if initial_cash is not None else (equity[0] if equity else 100.0),
        symbols=("X",),
        equity_ts=list(ts),
        equity=list(equity),
        exposure=list(exposure) if exposure is not None else [0.0] * len(equity),
        orders=list(orders),
        fills=list(fills),
        trades=list(trades),
        final_cash=equity[-1] if equity else 100.0,
        bars_processed=len(equity),
        elapsed_seconds=0.01,
        strategy_name="Test",
    )


def closed_trade(
    pnl: float, commission: float, entry_price: float = 100.0, qty: float = 10.0
) -> Trade:
    t = Trade("X", OrderSide.BUY, T0)
    t.entry_price = entry_price
    t.max_qty = qty
    t.pnl = pnl
    t.commission = commission
    t.exit_ts = T0 + DAY
    t.exit_price = entry_price + pnl / qty
    return t


# ---------------------------------------------------------------- the reference curve


def test_reference_curve_daily() -> None:
    # equity 100 -> 110 -> 99 -> 121 on consecutive days; returns 1/10, -1/10, 2/9
    m = compute_metrics(make_result([100.0, 110.0, 99.0, 121.0]))

    assert m["periods_per_year"] == 252.0
    assert m["total_return"] == pytest.approx(0.21)
    assert m["final_equity"] == 121.0
    assert m["max_drawdown"] == pytest.approx(0.1)  # 110 -> 99
    assert m["max_drawdown_duration"] == pytest.approx(2.0)  # under 110 from day 1 until day 3

    # mean = 2/27, sample variance (ddof=1) = 643/24300
    mean = 2 / 27
    std = math.sqrt(643 / 24300)
    assert m["annual_volatility"] == pytest.approx(std * math.sqrt(252))
    assert m["annual_volatility"] == pytest.approx(2.5822757691904)
    assert m["sharpe"] == pytest.approx(mean / std * math.sqrt(252))
    assert m["sharpe"] == pytest.approx(7.2287657613419)
    # downside deviation = sqrt((0 + 0.01 + 0) / 3)
    assert m["sortino"] == pytest.approx(mean / math.sqrt(0.01 / 3) * math.sqrt(252))
    assert m["sortino"] == pytest.approx(20.367003088693)

    # 3 calendar days = 3 / 365.25 years
    cagr = 1.21 ** (365.25 / 3) - 1
    assert m["cagr"] == pytest.approx(cagr, rel=1e-9)
    assert m["calmar"] == pytest.approx(cagr / 0.1, rel=1e-9)


def test_keys_order_and_plain_floats() -> None:
    m = compute_metrics(make_result([100.0, 110.0, 99.0, 121.0]))
    assert tuple(m) == METRIC_KEYS
    assert all(type(v) is float for v in m.values())


def test_result_metrics_method_delegates() -> None:
    r = make_result([100.0, 110.0, 99.0, 121.0])
    assert r.metrics() == compute_metrics(r)


def test_total_return_and_cagr_use_initial_cash() -> None:
    # one year (365.25 days) from 1000 to 1100 of which the first point already lost 50
    r = make_result([950.0, 1100.0], ts=[T0, T0 + int(365.25 * DAY)], initial_cash=1000.0)
    m = compute_metrics(r)
    assert m["total_return"] == pytest.approx(0.1)
    assert m["cagr"] == pytest.approx(0.1)
    # two years -> sqrt(1.21) - 1
    r = make_result([1000.0, 1210.0], ts=[T0, T0 + int(2 * 365.25 * DAY)])
    assert compute_metrics(r)["cagr"] == pytest.approx(0.1)


# ---------------------------------------------------------------- drawdowns


def test_drawdown_series() -> None:
    dd = drawdown_series([100.0, 120.0, 90.0, 130.0, 65.0])
    assert dd.tolist() == pytest.approx([0.0, 0.0, 0.25, 0.0, 0.5])
    assert drawdown_series([]).size == 0


def test_drawdown_duration_picks_longest_including_unrecovered() -> None:
    # peak 120 (day 1) recovered on day 3: 2 days; peak 130 (day 3) never recovered: 5 days
    eq = [100.0, 120.0, 100.0, 130.0, 90.0, 100.0, 110.0, 120.0, 125.0]
    m = compute_metrics(make_result(eq))
    assert m["max_drawdown"] == pytest.approx(40 / 130)
    assert m["max_drawdown_duration"] == pytest.approx(5.0)


def test_drawdown_duration_uses_calendar_time() -> None:
    # peak at hour 0, under water at hour 1 and at day 3, back at the peak 3.5 days after it
    ts = [T0, T0 + HOUR, T0 + 3 * DAY, T0 + 3 * DAY + 12 * HOUR, T0 + 4 * DAY]
    m = compute_metrics(make_result([100.0, 95.0, 99.0, 100.0, 80.0], ts=ts))
    # 1st episode 0 -> 3.5 days (equal to the peak counts as recovered); 2nd 3.5 -> 4 days
    assert m["max_drawdown_duration"] == pytest.approx(3.5)
    assert m["max_drawdown"] == pytest.approx(0.2)


def test_no_drawdown() -> None:
    m = compute_metrics(make_result([100.0, 101.0, 101.0, 105.0]))
    assert m["max_drawdown"] == 0.0
    assert m["max_drawdown_duration"] == 0.0
    assert m["calmar"] == 0.0


# ---------------------------------------------------------------- periods per year


def test_periods_per_year_inference() -> None:
    assert infer_periods_per_year([T0 + i * DAY for i in range(10)]) == 252.0
    assert infer_periods_per_year([T0 + i * 7 * DAY for i in range(10)]) == 52.0
    assert infer_periods_per_year([T0 + i * 30 * DAY for i in range(10)]) == 12.0
    assert infer_periods_per_year([T0 + i * 91 * DAY for i in range(10)]) == 4.0
    assert infer_periods_per_year([T0 + i * 365 * DAY for i in range(3)]) == 1.0
    assert infer_periods_per_year([T0 + i * MINUTE for i in range(10)]) == pytest.approx(98_280)
    assert infer_periods_per_year([T0 + i * 5 * MINUTE for i in range(10)]) == pytest.approx(19_656)
    assert infer_periods_per_year([T0 + i * HOUR for i in range(10)]) == pytest.approx(1_638)
    assert infer_periods_per_year([T0]) == 252.0
    assert infer_periods_per_year([]) == 252.0
    assert infer_periods_per_year([T0, T0, T0]) == 252.0


def test_periods_per_year_business_days_with_weekends() -> None:
    # four weeks of Monday..Friday closes: gaps of 1 day and 3 days, median 1 day
    ts = [T0 + (w * 7 + d) * DAY + 21 * HOUR for w in range(4) for d in range(5)]
    assert infer_periods_per_year(ts) == 252.0


def test_periods_per_year_minute_bars_with_overnight_gaps() -> None:
    # two sessions of 390 one-minute bars separated by an overnight gap
    day1 = [T0 + 14 * HOUR + 30 * MINUTE + i * MINUTE for i in range(390)]
    day2 = [t + DAY for t in day1]
    m = compute_metrics(make_result([100.0] * 780, ts=day1 + day2))
    assert m["periods_per_year"] == pytest.approx(252 * 390)


def test_periods_per_year_override() -> None:
    r = make_result([100.0, 110.0, 99.0, 121.0])
    daily = compute_metrics(r)
    crypto = compute_metrics(r, periods_per_year=365)
    assert crypto["periods_per_year"] == 365.0
    assert crypto["sharpe"] == pytest.approx(daily["sharpe"] * math.sqrt(365 / 252))
    assert crypto["annual_volatility"] == pytest.approx(math.sqrt(643 / 24300) * math.sqrt(365))
    assert crypto["cagr"] == daily["cagr"]  # calendar based, not period based


@pytest.mark.parametrize("bad", [0.0, -252.0, math.inf, math.nan])
def test_periods_per_year_override_must_be_positive(bad: float) -> None:
    with pytest.raises(ConfigError) as exc:
        compute_metrics(make_result([100.0, 110.0]), periods_per_year=bad)
    assert exc.value.field == "periods_per_year"


# ---------------------------------------------------------------- trades, fills, exposure


def test_trade_metrics() -> None:
    trades = [
        closed_trade(55.0, 5.0),  # net +50, return 5.5 %
        closed_trade(-18.0, 2.0),  # net -20, return -1.8 %
        closed_trade(30.0, 0.0),  # net +30, return 3.0 %
        closed_trade(3.0, 3.0),  # net 0: neither a win nor a loss, return 0.3 %
    ]
    still_open = Trade("X", OrderSide.BUY, T0)
    still_open.entry_price, still_open.max_qty, still_open.pnl = 100.0, 10.0, 1_000.0
    m = compute_metrics(make_result([100.0, 101.0], trades=[*trades, still_open]))
    assert m["num_trades"] == 4.0
    assert m["win_rate"] == 0.5
    assert m["profit_factor"] == pytest.approx(80 / 20)
    assert m["avg_trade_net_pnl"] == pytest.approx(60 / 4)
    assert m["best_trade_pct"] == pytest.approx(5.5)
    assert m["worst_trade_pct"] == pytest.approx(-1.8)


def test_profit_factor_edges() -> None:
    only_wins = compute_metrics(make_result([100.0], trades=[closed_trade(10.0, 1.0)]))
    assert only_wins["profit_factor"] == math.inf
    assert only_wins["win_rate"] == 1.0
    only_losses = compute_metrics(make_result([100.0], trades=[closed_trade(-10.0, 1.0)]))
    assert only_losses["profit_factor"] == 0.0
    assert only_losses["win_rate"] == 0.0
    flat = compute_metrics(make_result([100.0], trades=[closed_trade(1.0, 1.0)]))
    assert flat["profit_factor"] == 0.0
    assert flat["num_trades"] == 1.0


def test_no_trades() -> None:
    m = compute_metrics(make_result([100.0, 105.0]))
    for key in (
        "win_rate",
        "num_trades",
        "profit_factor",
        "avg_trade_net_pnl",
        "best_trade_pct",
        "worst_trade_pct",
    ):
        assert m[key] == 0.0, key


def test_fills_orders_exposure() -> None:
    fills = [
        Fill("O1", "X", OrderSide.BUY, 10.0, 100.0, 1.0, T0 + DAY),
        Fill("O2", "X", OrderSide.SELL, 10.0, 110.0, 1.5, T0 + 3 * DAY),
    ]
    orders = [
        Order("O1", "X", OrderSide.BUY, 10.0),
        Order("O2", "X", OrderSide.SELL, 10.0),
        Order("O3", "X", OrderSide.BUY, 5.0),
    ]
    r = make_result(
        [1000.0, 1000.0, 1200.0, 1200.0],
        exposure=[0.0, 1000.0, 1200.0, 0.0],
        fills=fills,
        orders=orders,
    )
    m = compute_metrics(r)
    assert m["num_fills"] == 2.0
    assert m["num_orders"] == 3.0
    assert m["total_commission"] == pytest.approx(2.5)
    assert m["turnover"] == pytest.approx((1000 + 1100) / 1100)  # traded value / mean equity
    assert m["exposure"] == 0.5  # 2 of 4 points in the market
    assert m["avg_gross_leverage"] == pytest.approx((0 + 1 + 1 + 0) / 4)


def test_short_exposure_counts_as_exposure() -> None:
    # gross exposure is |qty * price|, so a short position is exposure too
    r = make_result([100.0, 100.0, 100.0], exposure=[50.0, 0.0, 200.0])
    m = compute_metrics(r)
    assert m["exposure"] == pytest.approx(2 / 3)
    assert m["avg_gross_leverage"] == pytest.approx((0.5 + 0 + 2.0) / 3)


# ---------------------------------------------------------------- edge cases


def test_no_equity_points() -> None:
    r = make_result([], initial_cash=1_000.0)
    m = compute_metrics(r)
    assert m["final_equity"] == 1_000.0
    assert m["periods_per_year"] == 252.0
    assert all(v == 0.0 for k, v in m.items() if k not in ("final_equity", "periods_per_year"))


def test_one_equity_point() -> None:
    m = compute_metrics(make_result([1_050.0], initial_cash=1_000.0))
    assert m["total_return"] == pytest.approx(0.05)
    assert m["cagr"] == 0.0  # zero calendar span
    assert m["sharpe"] == 0.0
    assert m["sortino"] == 0.0
    assert m["annual_volatility"] == 0.0
    assert m["max_drawdown"] == 0.0
    assert m["max_drawdown_duration"] == 0.0


def test_two_points_one_return_has_no_volatility() -> None:
    m = compute_metrics(make_result([100.0, 90.0]))
    assert m["annual_volatility"] == 0.0
    assert m["sharpe"] == 0.0
    # sortino is defined with one return: -0.1 / sqrt(0.01) * sqrt(252)
    assert m["sortino"] == pytest.approx(-math.sqrt(252))


def test_flat_equity_zero_volatility() -> None:
    m = compute_metrics(make_result([100.0] * 50))
    assert m["annual_volatility"] == 0.0
    assert m["sharpe"] == 0.0
    assert m["sortino"] == 0.0
    assert m["total_return"] == 0.0
    assert m["cagr"] == 0.0


def test_constant_growth_counts_as_zero_volatility() -> None:
    # every return is 1 % up to rounding: no volatility, no downside -> 0.0, never inf
    m = compute_metrics(make_result([100.0 * 1.01**i for i in range(30)]))
    assert m["sharpe"] == 0.0
    assert m["sortino"] == 0.0
    assert m["total_return"] == pytest.approx(1.01**29 - 1)


def test_equity_hits_zero() -> None:
    m = compute_metrics(make_result([100.0, 50.0, 0.0, 0.0]))
    assert m["cagr"] == -1.0
    assert m["total_return"] == -1.0
    assert m["max_drawdown"] == 1.0
    assert m["final_equity"] == 0.0
    # returns of periods starting above zero only: -0.5 and -1.0
    r = np.array([-0.5, -1.0])
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    assert m["calmar"] == -1.0
    assert all(math.isfinite(v) for v in m.values())


def test_equity_below_zero() -> None:
    m = compute_metrics(make_result([100.0, -20.0, -30.0], exposure=[0.0, 50.0, 50.0]))
    assert m["cagr"] == -1.0
    assert m["total_return"] == pytest.approx(-1.3)
    assert m["max_drawdown"] == pytest.approx(1.3)
    assert m["avg_gross_leverage"] == 0.0  # only points with positive equity count
    assert all(math.isfinite(v) for v in m.values())


def test_tiny_span_cagr_overflow_is_inf_not_error() -> None:
    m = compute_metrics(make_result([100.0, 110.0], step=MINUTE))
    assert m["cagr"] == math.inf
    assert m["total_return"] == pytest.approx(0.1)
