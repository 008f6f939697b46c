"""Breakdowns of a :class:`~tradeloop.results.result.BacktestResult` for the report and the CLI.

Plain numpy, no plotting: rejected orders by reason, the worst drawdown periods, monthly returns,
a per-symbol summary of trades, trade durations, and an equal-weight buy-and-hold benchmark on the
bars the run traded. Timestamps are int nanoseconds since the epoch, UTC, as everywhere else.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from tradeloop.execution.types import Order, OrderSide, OrderStatus, Trade
from tradeloop.results.metrics import drawdown_series

if TYPE_CHECKING:
    from tradeloop.data.feed import BarFeed
    from tradeloop.results.result import BacktestResult

__all__ = [
    "DrawdownPeriod",
    "MonthlyReturns",
    "SymbolSummary",
    "buy_and_hold",
    "drawdown_periods",
    "monthly_returns",
    "reason_kind",
    "rejection_counts",
    "symbol_breakdown",
    "trade_durations_ns",
]

NS_PER_DAY = 86_400 * 10**9

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# ------------------------------------------------------------------------------ rejected orders


def reason_kind(reason: str | None) -> str:
    """The rule a rejection reason names, without the numbers that make each reason unique.

    ``"insufficient buying power: order needs 1,234.50, available 99.00"`` ->
    ``"insufficient buying power"``; ``"risk: max_position: ..."`` -> ``"risk: max_position"``;
    a reason without a colon is kept whole; an empty one is ``"(no reason given)"``.
    """
    text = (reason or "").strip()
    if not text:
        return "(no reason given)"
    head, sep, rest = text.partition(":")
    if sep and head == "risk":
        rule = rest.strip().partition(":")[0].strip()
        return f"risk: {rule}" if rule else "risk"
    return head.strip() if sep else text


def rejection_counts(orders: Iterable[Order]) -> list[tuple[str, int]]:
    """``[(reason kind, count)]`` of the rejected orders, most frequent first (ties by name)."""
    counts = Counter(
        reason_kind(o.reject_reason) for o in orders if o.status is OrderStatus.REJECTED
    )
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


# ------------------------------------------------------------------------------------ drawdowns


@dataclass(frozen=True)
class DrawdownPeriod:
    """One stretch under water: from a peak, down to a trough, back to the peak's level.

    ``end_ts`` is ``None`` if equity never got back to the peak before the run ended; then
    ``length_days`` runs to the last point.
    """

    start_ts: int
    trough_ts: int
    end_ts: int | None
    depth: float  # positive fraction below the peak, at the trough
    length_days: float


def drawdown_periods(
    equity_ts: Sequence[int] | IntArray, equity: Sequence[float] | FloatArray, top: int = 5
) -> list[DrawdownPeriod]:
    """The ``top`` deepest drawdown periods of the curve, deepest first."""
    e = np.asarray(equity, dtype=np.float64)
    ts = np.asarray(equity_ts, dtype=np.int64)
    n = min(e.size, ts.size)
    e, ts = e[:n], ts[:n]
    if n < 2 or top <= 0:
        return []
    dd = drawdown_series(e)
    under = dd > 0
    if not under.any():
        return []
    # runs of consecutive under-water points: [first, last] inclusive
    edges = np.diff(np.concatenate(([0], under.astype(np.int8), [0])))
    firsts = np.flatnonzero(edges == 1)
    lasts = np.flatnonzero(edges == -1) - 1
    periods: list[DrawdownPeriod] = []
    for first, last in zip(firsts.tolist(), lasts.tolist(), strict=True):
        start = max(first - 1, 0)  # the peak the fall started from
        trough = first + int(dd[first : last + 1].argmax())
        end = last + 1 if last + 1 < n else None
        stop_ts = int(ts[end]) if end is not None else int(ts[-1])
        periods.append(
            DrawdownPeriod(
                start_ts=int(ts[start]),
                trough_ts=int(ts[trough]),
                end_ts=int(ts[end]) if end is not None else None,
                depth=float(dd[trough]),
                length_days=(stop_ts - int(ts[start])) / NS_PER_DAY,
            )
        )
    periods.sort(key=lambda p: (-p.depth, p.start_ts))
    return periods[:top]


# ------------------------------------------------------------------------------ monthly returns


@dataclass(frozen=True)
class MonthlyReturns:
    """Calendar-month returns of an equity curve (UTC months).

    ``months[year][m]`` is the simple return of month ``m`` (1..12) of ``year``: its last equity
    point over the previous month's last point (the first month's base is the initial cash, or
    the first point without positive initial cash); ``years[year]`` is the same over the year.
    Months without a point are absent.
    """

    months: dict[int, dict[int, float]]
    years: dict[int, float]


def monthly_returns(
    equity_ts: Sequence[int] | IntArray,
    equity: Sequence[float] | FloatArray,
    initial_cash: float,
) -> MonthlyReturns:
    """Calendar-month and calendar-year returns of the curve (see :class:`MonthlyReturns`)."""
    e = np.asarray(equity, dtype=np.float64)
    ts = np.asarray(equity_ts, dtype=np.int64)
    n = min(e.size, ts.size)
    e, ts = e[:n], ts[:n]
    if n == 0:
        return MonthlyReturns({}, {})
    month = (
        ts.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    )  # months since 1970
    last = np.flatnonzero(np.append(month[1:] != month[:-1], True))  # last point of each month
    month_end = e[last]
    base = float(initial_cash) if initial_cash > 0 else float(e[0])

    def ret(now: float, before: float) -> float:
        return now / before - 1.0 if before > 0 else math.nan

    months: dict[int, dict[int, float]] = {}
    prev = base
    for m, value in zip(month[last].tolist(), month_end.tolist(), strict=True):
        year, mon = 1970 + m // 12, m % 12 + 1
        months.setdefault(year, {})[mon] = ret(value, prev)
        prev = value
    years: dict[int, float] = {}
    prev = base
    year_of = 1970 + month[last] // 12
    year_last = np.flatnonzero(np.append(year_of[1:] != year_of[:-1], True))
    for y, value in zip(year_of[year_last].tolist(), month_end[year_last].tolist(), strict=True):
        years[int(y)] = ret(value, prev)
        prev = value
    return MonthlyReturns(months, years)


# ------------------------------------------------------------------------------------- symbols


@dataclass(frozen=True)
class SymbolSummary:
    """What happened in one symbol: its trades (closed and open), orders and costs."""

    symbol: str
    closed_trades: int
    open_trades: int
    win_rate: float  # winning closed trades / closed trades (0.0 without any)
    net_pnl: float  # sum of closed trades' net P&L
    avg_return_pct: float  # mean return_pct of closed trades (0.0 without any)
    commission: float  # commission of all its trades, closed and open
    orders: int
    rejected: int


def symbol_breakdown(result: BacktestResult) -> list[SymbolSummary]:
    """One :class:`SymbolSummary` per symbol of the run (and any other symbol it traded)."""
    symbols = list(result.symbols)
    seen = set(symbols)
    for sym in [t.symbol for t in result.trades] + [o.symbol for o in result.orders]:
        if sym not in seen:
            seen.add(sym)
            symbols.append(sym)
    trades: dict[str, list[Trade]] = {s: [] for s in symbols}
    for t in result.trades:
        trades[t.symbol].append(t)
    orders = Counter(o.symbol for o in result.orders)
    rejected = Counter(o.symbol for o in result.orders if o.status is OrderStatus.REJECTED)
    out: list[SymbolSummary] = []
    for s in symbols:
        closed = [t for t in trades[s] if t.is_closed]
        wins = sum(1 for t in closed if t.net_pnl > 0)
        out.append(
            SymbolSummary(
                symbol=s,
                closed_trades=len(closed),
                open_trades=len(trades[s]) - len(closed),
                win_rate=wins / len(closed) if closed else 0.0,
                net_pnl=math.fsum(t.net_pnl for t in closed),
                avg_return_pct=math.fsum(t.return_pct for t in closed) / len(closed)
                if closed
                else 0.0,
                commission=math.fsum(t.commission for t in trades[s]),
                orders=orders[s],
                rejected=rejected[s],
            )
        )
    return out


def trade_durations_ns(trades: Iterable[Trade]) -> tuple[IntArray, FloatArray]:
    """``(durations, net_pnl)`` of the closed trades: exit minus entry time (ns), and P&L."""
    closed = [t for t in trades if t.exit_ts is not None]
    durations = np.fromiter(
        ((t.exit_ts or 0) - t.entry_ts for t in closed), dtype=np.int64, count=len(closed)
    )
    pnl = np.fromiter((t.net_pnl for t in closed), dtype=np.float64, count=len(closed))
    return durations, pnl


# ------------------------------------------------------------------------------------ benchmark


def buy_and_hold(
    feed: BarFeed, equity_ts: Sequence[int] | IntArray, initial_cash: float
) -> FloatArray | None:
    """Value at each of ``equity_ts`` of an equal-weight buy and hold of the feed's symbols.

    ``initial_cash`` is split equally across the symbols that have bars; each share is spent at
    that symbol's first close (no costs, fractional quantities) and stays in cash until then; a
    position is marked at the last close at or before each timestamp. ``None`` without any bars
    or without positive ``initial_cash``.
    """
    ts = np.asarray(equity_ts, dtype=np.int64)
    usable = [s for s in feed.symbols if len(feed[s]) and feed[s].close[0] > 0]
    if not usable or initial_cash <= 0 or ts.size == 0:
        return None
    share = float(initial_cash) / len(usable)
    value = np.zeros(ts.size, dtype=np.float64)
    for sym in usable:
        series = feed[sym]
        bar_ts = np.asarray(series.ts, dtype=np.int64)
        close = np.asarray(series.close, dtype=np.float64)
        idx = np.searchsorted(bar_ts, ts, side="right") - 1
        held = idx >= 0
        marked = np.where(held, close[np.maximum(idx, 0)], close[0])
        value += share * marked / close[0]
    return value


def side_of(trade: Trade) -> str:
    """``"long"`` or ``"short"``."""
    return "long" if trade.side is OrderSide.BUY else "short"
