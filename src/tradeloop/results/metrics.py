"""Performance metrics of a :class:`~tradeloop.results.result.BacktestResult` (numpy, vectorised).

:func:`compute_metrics` returns a flat ``dict[str, float]`` (plain Python floats, counts too).
Fractions are fractions (``0.21`` is 21 %); only keys ending in ``_pct`` are in percent.

Returns ``r`` are the per-period simple returns of the equity curve, ``e[i] / e[i-1] - 1``;
periods that start at an equity <= 0 (a blown-up account) have no defined return and are left out.
``N`` is ``periods_per_year``. A return standard deviation (or downside deviation) below 1e-12
counts as zero, so a curve growing by the same rate every period (up to float rounding) has
``sharpe == sortino == 0.0`` rather than an astronomically large ratio.

=========================  =========================================================================
key                        meaning
=========================  =========================================================================
total_return               ``final_equity / initial_cash - 1`` (base: first equity point if
                           ``initial_cash <= 0``)
cagr                       ``(final_equity / initial_cash) ** (1 / years) - 1``, ``years`` being the
                           calendar span of ``equity_ts`` in 365.25-day years; ``-1.0`` once final
                           equity is <= 0; ``0.0`` if the span is zero; ``inf`` if annualising a
                           very short run overflows a float
annual_volatility          ``std(r, ddof=1) * sqrt(N)``
sharpe                     ``mean(r) / std(r, ddof=1) * sqrt(N)``, risk-free rate 0; ``0.0`` when
                           the volatility is zero or fewer than two returns exist
sortino                    ``mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(N)``; ``0.0`` when there is
                           no downside
max_drawdown               largest fall from a running peak of the equity curve, as a positive
                           fraction (``0.23`` = 23 % below the peak)
max_drawdown_duration      longest time, in days, from a peak until equity is back at or above it
                           (or until the last point, if it never recovers)
calmar                     ``cagr / max_drawdown``; ``0.0`` without a drawdown (``inf`` if ``cagr``
                           is)
win_rate                   closed trades with ``net_pnl > 0`` / closed trades (``0.0`` if none)
num_trades                 number of closed trades
profit_factor              sum of winning ``net_pnl`` / -sum of losing ``net_pnl``; ``inf`` with
                           wins but no losses, ``0.0`` with neither
avg_trade_net_pnl          mean ``net_pnl`` of closed trades (money)
best_trade_pct             highest ``Trade.return_pct`` of closed trades (percent)
worst_trade_pct            lowest ``Trade.return_pct`` of closed trades (percent)
exposure                   fraction of equity points with gross exposure > 0 (time in the market)
avg_gross_leverage         mean of ``exposure / equity`` over the points with equity > 0
turnover                   ``sum(|fill.qty * fill.price|) / mean(equity)``
total_commission           sum of fill commissions (money)
final_equity               last equity point (``initial_cash`` without any)
num_orders                 number of orders
num_rejected               number of orders that ended ``rejected`` (buying power, shorting rules,
                           risk limits, the venue); see :mod:`tradeloop.results.analysis` for the
                           reasons
num_fills                  number of fills
periods_per_year           ``N`` used above, given or inferred (see :func:`infer_periods_per_year`)
=========================  =========================================================================

Degenerate inputs (no or one equity point, flat equity, no trades, equity at or below zero) yield
finite, documented values and never emit numpy warnings. Only ``profit_factor`` (no losing trade)
and ``cagr``/``calmar`` (annualising a tiny span) can be ``inf``; nothing is ever NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeloop.errors import ConfigError
from tradeloop.execution.types import OrderStatus
from tradeloop.results.result import BacktestResult

__all__ = [
    "COUNT_KEYS",
    "FRACTION_KEYS",
    "METRIC_KEYS",
    "compute_metrics",
    "drawdown_series",
    "infer_periods_per_year",
]

METRIC_KEYS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_duration",
    "calmar",
    "win_rate",
    "num_trades",
    "profit_factor",
    "avg_trade_net_pnl",
    "best_trade_pct",
    "worst_trade_pct",
    "exposure",
    "avg_gross_leverage",
    "turnover",
    "total_commission",
    "final_equity",
    "num_orders",
    "num_rejected",
    "num_fills",
    "periods_per_year",
)
"""Every key :func:`compute_metrics` returns, in a stable display order."""

FRACTION_KEYS = frozenset(
    {"total_return", "cagr", "annual_volatility", "max_drawdown", "win_rate", "exposure"}
)
"""Keys whose value is a fraction best shown as a percentage."""

COUNT_KEYS = frozenset({"num_trades", "num_orders", "num_rejected", "num_fills"})
"""Keys whose value is a whole number (still returned as a float)."""

_NS_PER_HOUR = 3_600 * 10**9
_NS_PER_DAY = 24 * _NS_PER_HOUR
_DAYS_PER_YEAR = 365.25
_TRADING_DAYS = 252.0
_SESSION_HOURS = 6.5
_ZERO_VOL = 1e-12  # a return standard deviation below this counts as zero volatility
_MAX_EXP = 709.0  # math.exp overflows a float above ~709.78

FloatArray = npt.NDArray[np.float64]


def infer_periods_per_year(equity_ts: Sequence[int] | npt.NDArray[np.int64]) -> float:
    """Periods per year implied by the median spacing of ``equity_ts`` (int ns).

    ============================  ==================================================
    median spacing                periods per year
    ============================  ==================================================
    >= 300 days                   1 (yearly)
    >= 80 days                    4 (quarterly)
    >= 20 days                    12 (monthly)
    >= 5 days                     52 (weekly)
    >= 20 hours                   252 (daily; weekends/holidays do not matter)
    < 20 hours (intraday)         ``252 * 6.5 h / spacing``, e.g. 98 280 for minutes
    ============================  ==================================================

    The intraday rule assumes US equity sessions (252 days of 6.5 trading hours); pass an explicit
    ``periods_per_year`` to :func:`compute_metrics` for markets that trade around the clock.
    Fewer than two points, or no positive spacing, give 252.
    """
    ts = np.asarray(equity_ts, dtype=np.int64)
    if ts.size < 2:
        return _TRADING_DAYS
    steps = np.diff(ts)
    steps = steps[steps > 0]
    if steps.size == 0:
        return _TRADING_DAYS
    spacing = float(np.median(steps))
    if spacing >= 300 * _NS_PER_DAY:
        return 1.0
    if spacing >= 80 * _NS_PER_DAY:
        return 4.0
    if spacing >= 20 * _NS_PER_DAY:
        return 12.0
    if spacing >= 5 * _NS_PER_DAY:
        return 52.0
    if spacing >= 20 * _NS_PER_HOUR:
        return _TRADING_DAYS
    return _TRADING_DAYS * (_SESSION_HOURS * _NS_PER_HOUR) / spacing


def drawdown_series(equity: Sequence[float] | FloatArray) -> FloatArray:
    """Drawdown of every point below the running peak, as a positive fraction (0 at a new high).

    Points whose running peak is <= 0 have a drawdown of 0 (there is nothing to fall from).
    """
    e = np.asarray(equity, dtype=np.float64)
    if e.size == 0:
        return np.zeros(0, dtype=np.float64)
    peak = np.maximum.accumulate(e)
    dd = np.zeros_like(e)
    np.divide(peak - e, peak, out=dd, where=peak > 0)
    return dd


def _returns(e: FloatArray) -> FloatArray:
    if e.size < 2:
        return np.zeros(0, dtype=np.float64)
    prev = e[:-1]
    ok = prev > 0
    return np.asarray(e[1:][ok] / prev[ok] - 1.0, dtype=np.float64)


def _max_drawdown_duration_days(ts: npt.NDArray[np.int64], e: FloatArray) -> float:
    n = e.size
    if n < 2:
        return 0.0
    peaks = np.flatnonzero(e >= np.maximum.accumulate(e))  # always contains 0
    ends = np.append(peaks[1:], n - 1)  # next peak (recovery), or the last point
    # Between two consecutive peaks there is time under water only if they are not adjacent;
    # after the last peak, every remaining point is under water.
    gap = ends - peaks
    is_last = np.zeros(peaks.size, dtype=bool)
    is_last[-1] = True
    under = np.where(is_last, gap > 0, gap > 1)
    if not under.any():
        return 0.0
    longest = int((ts[ends[under]] - ts[peaks[under]]).max())
    return longest / _NS_PER_DAY


def _closed_pnl(result: BacktestResult) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """``net_pnl`` and ``return_pct`` of the closed trades (from a log's columns if it is one)."""
    from tradeloop.results.log import TradeLog

    if isinstance(result.trades, TradeLog):
        return result.trades.closed_pnl()
    closed = result.closed_trades
    net = np.fromiter((t.net_pnl for t in closed), dtype=np.float64, count=len(closed))
    pct = np.fromiter((t.return_pct for t in closed), dtype=np.float64, count=len(closed))
    return net, pct


def _trade_metrics(result: BacktestResult) -> dict[str, float]:
    net, pct = _closed_pnl(result)
    if not net.size:
        return {
            "win_rate": 0.0,
            "num_trades": 0.0,
            "profit_factor": 0.0,
            "avg_trade_net_pnl": 0.0,
            "best_trade_pct": 0.0,
            "worst_trade_pct": 0.0,
        }
    gross_win = float(net[net > 0].sum())
    gross_loss = float(-net[net < 0].sum())
    profit_factor = math.inf if gross_win > 0 else 0.0
    if gross_loss > 0:
        profit_factor = gross_win / gross_loss
    return {
        "win_rate": float(np.count_nonzero(net > 0)) / net.size,
        "num_trades": float(net.size),
        "profit_factor": profit_factor,
        "avg_trade_net_pnl": float(net.mean()),
        "best_trade_pct": float(pct.max()),
        "worst_trade_pct": float(pct.min()),
    }


def _fill_sums(result: BacktestResult) -> tuple[float, float]:
    """Notional traded and commission paid over the fills (a log's from its columns)."""
    from tradeloop.results.log import FillLog

    if isinstance(result.fills, FillLog):
        return result.fills.sums()
    traded = sum(abs(f.qty * f.price) for f in result.fills)
    return traded, sum(f.commission for f in result.fills)


def _count_rejected(result: BacktestResult) -> int:
    from tradeloop.results.log import OrderLog

    if isinstance(result.orders, OrderLog):
        return result.orders.count_status(OrderStatus.REJECTED)
    return sum(1 for o in result.orders if o.status is OrderStatus.REJECTED)


def compute_metrics(
    result: BacktestResult, periods_per_year: float | None = None
) -> dict[str, float]:
    """Every metric of the module table for ``result``, as plain Python floats.

    ``periods_per_year`` overrides the value inferred from the equity timestamps (e.g. 365 for a
    daily crypto series, ``365 * 24`` for hourly bars of a 24/7 market).
    """
    if periods_per_year is not None and not (
        math.isfinite(periods_per_year) and periods_per_year > 0
    ):
        raise ConfigError("periods_per_year", periods_per_year, "must be a finite number > 0")

    e = np.asarray(result.equity, dtype=np.float64)
    ts = np.asarray(result.equity_ts, dtype=np.int64)
    gross = np.asarray(result.exposure, dtype=np.float64)
    n = min(e.size, ts.size, gross.size)
    e, ts, gross = e[:n], ts[:n], gross[:n]
    ppy = float(periods_per_year) if periods_per_year is not None else infer_periods_per_year(ts)
    ann = math.sqrt(ppy)

    final = float(e[-1]) if n else float(result.initial_cash)
    base = float(result.initial_cash) if result.initial_cash > 0 else (float(e[0]) if n else 0.0)
    total_return = final / base - 1.0 if base > 0 else 0.0

    years = (int(ts[-1]) - int(ts[0])) / _NS_PER_DAY / _DAYS_PER_YEAR if n >= 2 else 0.0
    if final <= 0 and base > 0:
        cagr = -1.0
    elif years > 0 and base > 0:
        growth = math.log(final / base) / years
        cagr = math.expm1(growth) if growth < _MAX_EXP else math.inf
    else:
        cagr = 0.0

    r = _returns(e)
    mean_r = float(r.mean()) if r.size else 0.0
    std_r = float(r.std(ddof=1)) if r.size >= 2 else 0.0
    if std_r < _ZERO_VOL:
        std_r = 0.0
    sharpe = mean_r / std_r * ann if std_r > 0 else 0.0
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))) if r.size else 0.0
    sortino = mean_r / downside * ann if downside >= _ZERO_VOL else 0.0

    max_dd = float(drawdown_series(e).max()) if n else 0.0
    calmar = cagr / max_dd if max_dd > 0 else 0.0

    positive = e > 0
    avg_leverage = float(np.mean(gross[positive] / e[positive])) if positive.any() else 0.0
    traded, commission = _fill_sums(result)
    mean_equity = float(e.mean()) if n else 0.0
    turnover = traded / mean_equity if mean_equity > 0 else 0.0

    out: dict[str, Any] = {
        "total_return": total_return,
        "cagr": cagr,
        "annual_volatility": std_r * ann,
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown": max_dd,
        "max_drawdown_duration": _max_drawdown_duration_days(ts, e),
        "calmar": calmar,
        **_trade_metrics(result),
        "exposure": float(np.count_nonzero(gross > 0)) / n if n else 0.0,
        "avg_gross_leverage": avg_leverage,
        "turnover": float(turnover),
        "total_commission": float(commission),
        "final_equity": final,
        "num_orders": float(len(result.orders)),
        "num_rejected": float(_count_rejected(result)),
        "num_fills": float(len(result.fills)),
        "periods_per_year": ppy,
    }
    return {k: float(out[k]) for k in METRIC_KEYS}
