"""A self-contained HTML report of a :class:`~tradeloop.results.result.BacktestResult`.

One file, no external assets (no CDN, no scripts): run info, the metrics table, an equity curve and
an underwater (drawdown) plot embedded as base64 PNG, and the first :data:`MAX_TRADE_ROWS` trades.

The plots need matplotlib (``pip install tradeloop[report]``). It is imported lazily, drawn with the
Agg backend on a :class:`matplotlib.figure.Figure` (pyplot's global state is never touched), and
when it is missing the report is written without plots and says how to get them.
"""

from __future__ import annotations

import base64
import html
import importlib
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeloop.execution.types import Trade
from tradeloop.results.metrics import (
    COUNT_KEYS,
    FRACTION_KEYS,
    METRIC_KEYS,
    compute_metrics,
    drawdown_series,
)
from tradeloop.results.result import BacktestResult
from tradeloop.results.writer import TRADE_COLUMNS, iso_timestamps

__all__ = ["MAX_TRADE_ROWS", "NO_PLOTS_NOTE", "format_metric", "write_html_report"]

MAX_TRADE_ROWS = 500
"""The trades table lists at most this many trades (the first ones)."""

NO_PLOTS_NOTE = "Plots are not available: install tradeloop[report] for plots."
"""Shown instead of the plots when matplotlib cannot be imported."""

_MAX_PLOT_POINTS = 4_000  # longer series are thinned, keeping every bucket's min and max

_LABELS = {
    "cagr": "CAGR",
    "sharpe": "Sharpe ratio",
    "sortino": "Sortino ratio",
    "calmar": "Calmar ratio",
    "max_drawdown_duration": "Max drawdown duration",
    "num_trades": "Closed trades",
    "avg_trade_net_pnl": "Avg trade net P&L",
    "best_trade_pct": "Best trade",
    "worst_trade_pct": "Worst trade",
    "num_orders": "Orders",
    "num_fills": "Fills",
}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.75rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; }
.note { color: #8a5a00; background: #fff6e0; padding: 0.5rem 0.75rem; border-radius: 4px; }
img { max-width: 100%; height: auto; display: block; margin: 0.5rem 0; }
"""


def _label(key: str) -> str:
    return _LABELS.get(key, key.replace("_", " ").capitalize())


def format_metric(key: str, value: float) -> str:
    """Display form of one metric: fractions as percentages, ``_pct`` keys with ``%``, counts as
    whole numbers, durations in days, everything else with 2 decimals."""
    v = float(value)
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    if key in FRACTION_KEYS:
        return f"{v * 100:,.2f}%"
    if key.endswith("_pct"):
        return f"{v:,.2f}%"
    if key in COUNT_KEYS:
        return f"{round(v):,d}"
    if key == "max_drawdown_duration":
        return f"{v:,.2f} days"
    return f"{v:,.2f}"


def _plain_number(v: float) -> str:
    """Prices and quantities: up to 8 decimals, no trailing zeros."""
    if not math.isfinite(v):
        return str(v)
    text = f"{v:,.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _trade_cell(column: str, value: object) -> tuple[str, bool]:
    """(text, is_number) of one trades-table cell."""
    if value is None:
        return "", False
    if isinstance(value, float | int) and not isinstance(value, bool):
        v = float(value)
        if column == "return_pct":
            return f"{v:,.2f}%", True
        if column in ("pnl", "commission", "net_pnl"):
            return f"{v:,.2f}", True
        return _plain_number(v), True
    return str(value), False


def _thin(values: npt.NDArray[np.float64], max_points: int) -> npt.NDArray[np.intp]:
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


def _render_plots(result: BacktestResult) -> list[tuple[str, str]] | None:
    """[(caption, base64 PNG)] of the equity and drawdown plots; None without matplotlib."""
    try:
        import matplotlib  # noqa: F401  (fails first when matplotlib is absent)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        mdates: Any = importlib.import_module("matplotlib.dates")  # untyped in some versions
    except ImportError:
        return None

    n = min(len(result.equity_ts), len(result.equity))
    if n == 0:
        return []
    ts = np.asarray(result.equity_ts, dtype=np.int64)[:n]
    equity = np.asarray(result.equity, dtype=np.float64)[:n]
    drawdown = drawdown_series(equity)

    def draw(caption: str, values: npt.NDArray[np.float64], underwater: bool) -> str:
        keep = _thin(values, _MAX_PLOT_POINTS)
        x = ts[keep].astype(np.dtype("datetime64[ns]"))  # naive datetime64 = UTC in matplotlib
        y = values[keep]
        fig = Figure(figsize=(10, 3.4), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        marker = "o" if n == 1 else None
        if underwater:
            ax.fill_between(x, y, 0.0, color="#d62728", alpha=0.35, linewidth=0)
            ax.plot(x, y, color="#d62728", linewidth=1.0, marker=marker)
            ax.set_ylabel("drawdown (%)")
        else:
            ax.plot(x, y, color="#1f77b4", linewidth=1.2, marker=marker)
            ax.set_ylabel("equity")
        ax.set_title(caption)
        ax.grid(True, alpha=0.3)
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_xlabel("time (UTC)")
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return base64.b64encode(buf.getvalue()).decode("ascii")

    return [
        ("Equity curve", draw("Equity curve", equity, underwater=False)),
        ("Drawdown (underwater)", draw("Drawdown (underwater)", -100.0 * drawdown, True)),
    ]


def _table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>\n" for k, v in rows
    )
    return f"<table>\n{body}</table>"


def _run_rows(result: BacktestResult, metrics: Mapping[str, float]) -> list[tuple[str, str]]:
    ts = result.equity_ts
    stamps = iso_timestamps([int(ts[0]), int(ts[-1])]) if len(ts) else ["", ""]
    params = json.dumps(dict(result.params), default=str, sort_keys=True)
    final_equity = metrics.get("final_equity", result.final_equity)
    return [
        ("Strategy", result.strategy_name or "(unnamed)"),
        ("Parameters", params),
        ("Symbols", ", ".join(result.symbols)),
        ("Start", stamps[0]),
        ("End", stamps[-1]),
        ("Initial cash", f"{result.initial_cash:,.2f}"),
        ("Final cash", f"{result.final_cash:,.2f}"),
        ("Final equity", f"{final_equity:,.2f}"),
        ("Bars processed", f"{result.bars_processed:,d}"),
        ("Elapsed", f"{result.elapsed_seconds:,.2f} s"),
    ]


def _metric_rows(metrics: Mapping[str, float]) -> list[tuple[str, str]]:
    known = [k for k in METRIC_KEYS if k in metrics]
    extra = [k for k in metrics if k not in METRIC_KEYS]
    return [(_label(k), format_metric(k, metrics[k])) for k in (*known, *extra)]


def _trades_html(trades: Sequence[Trade]) -> str:
    if not trades:
        return "<p>No trades.</p>"
    shown = trades[:MAX_TRADE_ROWS]
    parts: list[str] = []
    if len(trades) > MAX_TRADE_ROWS:
        parts.append(
            f'<p class="note">Showing the first {MAX_TRADE_ROWS:,d} of {len(trades):,d} trades '
            "(all of them are in trades.csv of write_results).</p>"
        )
    head = "".join(f"<th>{html.escape(c)}</th>" for c in TRADE_COLUMNS)
    parts.append(f"<table>\n<tr>{head}</tr>\n")
    for trade in shown:
        d = trade.to_dict()
        cells = []
        for c in TRADE_COLUMNS:
            text, numeric = _trade_cell(c, d.get(c))
            cls = ' class="num"' if numeric else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        parts.append(f"<tr>{''.join(cells)}</tr>\n")
    parts.append("</table>")
    return "".join(parts)


def _plots_html(plots: list[tuple[str, str]] | None) -> str:
    if plots is None:
        return f'<p class="note">{html.escape(NO_PLOTS_NOTE)}</p>'
    if not plots:
        return "<p>No equity points to plot.</p>"
    return "\n".join(
        f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        for caption, data in plots
    )


def render_html(
    result: BacktestResult, metrics: Mapping[str, float] | None = None, title: str | None = None
) -> str:
    """The report as an HTML string (what :func:`write_html_report` writes)."""
    if metrics is None:
        metrics = compute_metrics(result)
    if title is None:
        title = f"Backtest report: {result.strategy_name}" if result.strategy_name else "Backtest"
    t = html.escape(title)
    sections: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{t}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{t}</h1>",
        "<h2>Run</h2>",
        _table(_run_rows(result, metrics)),
        "<h2>Metrics</h2>",
        _table(_metric_rows(metrics)),
        "<h2>Equity and drawdown</h2>",
        _plots_html(_render_plots(result)),
        f"<h2>Trades ({len(result.trades):,d})</h2>",
        _trades_html(result.trades),
        "</body>",
        "</html>",
    ]
    return "\n".join(sections) + "\n"


def write_html_report(
    result: BacktestResult,
    path: str | Path,
    metrics: Mapping[str, float] | None = None,
    title: str | None = None,
) -> Path:
    """Write the report to ``path`` (parent directories are created) and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(result, metrics, title), encoding="utf-8")
    return out
