"""matplotlib drawings of a result, shared by the HTML report and :meth:`BacktestResult.plot`.

matplotlib is imported inside the functions (never at module import), so that this module can be
imported without it and :func:`require_matplotlib` is where a missing install shows. Figures are
plain :class:`matplotlib.figure.Figure` objects with an Agg canvas: pyplot's global state (its
figure list, its backend) is never touched.
"""

from __future__ import annotations

import base64
import importlib
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tradeloop.execution.types import OrderSide, Trade

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from tradeloop.data.feed import BarFeed, SymbolSeries
    from tradeloop.results.result import BacktestResult

__all__ = [
    "MAX_PLOT_POINTS",
    "draw_drawdown",
    "draw_durations",
    "draw_equity",
    "draw_price",
    "duration_unit",
    "new_figure",
    "plot_result",
    "png_base64",
    "require_matplotlib",
    "thin",
]

MAX_PLOT_POINTS = 4_000
"""Longer series are thinned to about this many points, keeping every bucket's min and max."""

EQUITY_COLOR = "#1f77b4"
BENCHMARK_COLOR = "#7f7f7f"
DRAWDOWN_COLOR = "#d62728"
LONG_COLOR = "#2ca02c"
SHORT_COLOR = "#d62728"
EXIT_COLOR = "#222222"

_NS_PER_MINUTE = 60 * 10**9
_NS_PER_HOUR = 60 * _NS_PER_MINUTE
_NS_PER_DAY = 24 * _NS_PER_HOUR


def require_matplotlib() -> None:
    """Import what the drawings need; raises ImportError when matplotlib is not installed."""
    importlib.import_module("matplotlib")
    importlib.import_module("matplotlib.figure")
    importlib.import_module("matplotlib.backends.backend_agg")
    importlib.import_module("matplotlib.dates")


def new_figure(width: float, height: float, rows: int = 1, sharex: bool = False) -> tuple[Any, Any]:
    """``(figure, axes)``: a constrained-layout Figure on an Agg canvas (100 dpi) with ``rows``
    subplots stacked; ``axes`` is one Axes for ``rows == 1``, else a list."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    # fixed margins in inches (constrained layout would cost about as much as the drawing)
    fig.subplots_adjust(
        left=1.0 / width,
        right=1 - 0.2 / width,
        top=1 - 0.35 / height,
        bottom=0.55 / height,
        hspace=0.35,
    )
    FigureCanvasAgg(fig)
    if rows == 1:
        return fig, fig.add_subplot()
    axes = fig.subplots(rows, 1, sharex=sharex, squeeze=False)[:, 0].tolist()
    return fig, axes


def png_base64(fig: Any) -> str:
    """The figure as a base64 PNG (for a ``data:`` URL)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def thin(values: npt.NDArray[np.float64], max_points: int) -> npt.NDArray[np.intp]:
    """Indices of at most about ``max_points`` points keeping each bucket's extremes."""
    n = values.size
    if n <= max_points:
        return np.arange(n)
    size = math.ceil(n / (max_points // 2))
    m = (n // size) * size
    blocks = values[:m].reshape(-1, size)
    starts = np.arange(0, m, size)
    parts = [starts + blocks.argmin(axis=1), starts + blocks.argmax(axis=1), np.array([0, n - 1])]
    if m < n:
        tail = values[m:]
        parts.append(np.array([m + int(tail.argmin()), m + int(tail.argmax())]))
    return np.unique(np.concatenate(parts))


def _dates(ts: npt.NDArray[np.int64]) -> npt.NDArray[np.datetime64]:
    return ts.astype(np.dtype("datetime64[ns]"))  # naive datetime64 = UTC in matplotlib


def _date_axis(ax: Any, label: bool = True) -> None:
    mdates: Any = importlib.import_module("matplotlib.dates")  # untyped in some versions
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if label:
        ax.set_xlabel("time (UTC)")
    ax.grid(True, alpha=0.3)


def _thousands(ax: Any) -> None:
    ticker: Any = importlib.import_module("matplotlib.ticker")
    ax.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))


def draw_equity(
    ax: Any,
    ts: npt.NDArray[np.int64],
    equity: npt.NDArray[np.float64],
    benchmark: npt.NDArray[np.float64] | None = None,
    title: str | None = "Equity curve",
) -> None:
    """The equity line (first line of ``ax``), and the benchmark's if given, on a date axis."""
    keep = thin(equity, MAX_PLOT_POINTS)
    marker = "o" if equity.size == 1 else None
    ax.plot(
        _dates(ts[keep]),
        equity[keep],
        color=EQUITY_COLOR,
        linewidth=1.2,
        marker=marker,
        label="strategy",
    )
    if benchmark is not None:
        keep_b = thin(benchmark, MAX_PLOT_POINTS)
        ax.plot(
            _dates(ts[keep_b]),
            benchmark[keep_b],
            color=BENCHMARK_COLOR,
            linewidth=1.0,
            linestyle="--",
            marker=marker,
            label="buy and hold (equal weight)",
        )
        ax.legend(loc="upper left", fontsize="small", frameon=False)
    ax.set_ylabel("equity")
    _thousands(ax)
    if title:
        ax.set_title(title)
    _date_axis(ax)


def draw_drawdown(
    ax: Any,
    ts: npt.NDArray[np.int64],
    drawdown: npt.NDArray[np.float64],
    title: str | None = "Drawdown (underwater)",
) -> None:
    """The drawdown (a positive fraction) as a filled negative percentage below zero."""
    values = -100.0 * drawdown
    keep = thin(values, MAX_PLOT_POINTS)
    x, y = _dates(ts[keep]), values[keep]
    ax.fill_between(x, y, 0.0, color=DRAWDOWN_COLOR, alpha=0.35, linewidth=0)
    ax.plot(x, y, color=DRAWDOWN_COLOR, linewidth=1.0, marker="o" if values.size == 1 else None)
    ax.set_ylabel("drawdown (%)")
    if title:
        ax.set_title(title)
    _date_axis(ax)


def draw_price(ax: Any, series: SymbolSeries, trades: Sequence[Trade]) -> None:
    """A symbol's closes with its trades: entries as triangles (up: long, down: short), exits as
    black crosses joined to their entry by a dotted line; open trades' entries are hollow."""
    ts = np.asarray(series.ts, dtype=np.int64)
    close = np.asarray(series.close, dtype=np.float64)
    keep = thin(close, MAX_PLOT_POINTS)
    ax.plot(_dates(ts[keep]), close[keep], color="#555555", linewidth=0.9, label="close")
    groups: dict[tuple[bool, bool], list[Trade]] = {}
    for t in trades:
        groups.setdefault((t.side is OrderSide.BUY, t.is_closed), []).append(t)
    for (long, closed), group in sorted(groups.items(), reverse=True):
        color = LONG_COLOR if long else SHORT_COLOR
        what = "long" if long else "short"
        x = _dates(np.array([t.entry_ts for t in group], dtype=np.int64))
        y = [t.entry_price for t in group]
        ax.scatter(
            x,
            y,
            marker="^" if long else "v",
            s=36,
            zorder=3,
            facecolors=color if closed else "none",
            edgecolors=color,
            linewidths=1.2,
            label=f"{what} entry" if closed else f"{what} entry (open)",
        )
    exits = [t for t in trades if t.exit_ts is not None and t.exit_price is not None]
    if exits:
        ex_x = _dates(np.array([t.exit_ts for t in exits], dtype=np.int64))
        ax.scatter(
            ex_x,
            [t.exit_price for t in exits],
            marker="x",
            s=30,
            color=EXIT_COLOR,
            zorder=3,
            linewidths=1.2,
            label="exit",
        )
        # each exit joined to its entry by a dotted line: one LineCollection, however many
        from matplotlib.collections import LineCollection

        mdates: Any = importlib.import_module("matplotlib.dates")
        x0 = mdates.date2num(_dates(np.array([t.entry_ts for t in exits], dtype=np.int64)))
        x1 = mdates.date2num(ex_x)
        y0 = np.array([t.entry_price for t in exits], dtype=np.float64)
        y1 = np.array([t.exit_price for t in exits], dtype=np.float64)
        segments = list(np.stack([np.column_stack([x0, y0]), np.column_stack([x1, y1])], axis=1))
        colors = [LONG_COLOR if t.side is OrderSide.BUY else SHORT_COLOR for t in exits]
        ax.add_collection(
            LineCollection(segments, colors=colors, linewidths=0.7, linestyles=":", alpha=0.8),
            autolim=False,
        )
    ax.set_title(series.symbol, loc="left", fontweight="bold")
    ax.set_ylabel("price")
    ax.legend(
        loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False, ncols=5
    )
    _date_axis(ax)


def duration_unit(durations_ns: npt.NDArray[np.int64]) -> tuple[str, float]:
    """``(unit name, ns per unit)`` fitting the median duration: days, hours or minutes."""
    median = float(np.median(durations_ns)) if durations_ns.size else 0.0
    if median >= _NS_PER_DAY:
        return "days", float(_NS_PER_DAY)
    if median >= _NS_PER_HOUR:
        return "hours", float(_NS_PER_HOUR)
    return "minutes", float(_NS_PER_MINUTE)


def draw_durations(
    ax: Any, durations_ns: npt.NDArray[np.int64], net_pnl: npt.NDArray[np.float64]
) -> None:
    """A histogram of closed trades' durations, winners and losers stacked (on a log scale when
    the longest trade lasts over 20 times the median one)."""
    unit, per = duration_unit(durations_ns)
    d = durations_ns.astype(np.float64) / per
    count = min(30, max(5, d.size // 3))
    bins: Any = count
    if d.size and d.min() > 0 and d.max() > 20 * float(np.median(d)):
        # a long tail (positions held overnight among intraday ones): logarithmic bins
        bins = np.geomspace(d.min(), d.max(), count + 1)
        ax.set_xscale("log")
    elif d.size:
        bins = np.histogram_bin_edges(d, bins=count)
    wins, losses = d[net_pnl > 0], d[net_pnl <= 0]
    ax.hist(
        [wins, losses],
        bins=bins,
        stacked=True,
        color=[LONG_COLOR, DRAWDOWN_COLOR],
        label=[f"winners ({wins.size})", f"losers ({losses.size})"],
        alpha=0.8,
    )
    ax.set_xlabel(f"duration ({unit})")
    ax.set_ylabel("closed trades")
    ax.set_title("Trade durations")
    ax.legend(fontsize="small", frameon=False)
    ax.grid(True, alpha=0.3)


def plot_result(result: BacktestResult, feed: BarFeed | None = None) -> Figure:
    """Equity (and buy and hold of ``feed``, if given) above the drawdown, sharing the time axis.

    What :meth:`BacktestResult.plot` returns. Raises ImportError without matplotlib.
    """
    from tradeloop.results.analysis import buy_and_hold
    from tradeloop.results.metrics import drawdown_series

    n = min(len(result.equity_ts), len(result.equity))
    ts = np.asarray(result.equity_ts, dtype=np.int64)[:n]
    equity = np.asarray(result.equity, dtype=np.float64)[:n]
    fig, (top, bottom) = new_figure(10, 6, rows=2, sharex=True)
    name = result.strategy_name or "Backtest"
    if n:
        bench = buy_and_hold(feed, ts, result.initial_cash) if feed is not None else None
        draw_equity(top, ts, equity, bench, title=f"{name}: equity")
        draw_drawdown(bottom, ts, drawdown_series(equity), title="Drawdown")
        top.set_xlabel("")
    else:
        top.set_title(f"{name}: no equity points")
    figure: Figure = fig
    return figure
