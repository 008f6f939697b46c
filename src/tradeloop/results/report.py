"""A self-contained HTML report of a :class:`~tradeloop.results.result.BacktestResult`.

One file, no external assets (no CDN, no scripts, plots embedded as base64 PNG). Its sections:

* **Run** and **Settings**: strategy, parameters, symbols, period, cash; the run's settings (costs,
  participation, leverage, shorting, ... from ``result.settings``).
* **Metrics**: every metric of :func:`~tradeloop.results.metrics.compute_metrics`.
* **Equity and drawdown**: the equity curve, with an equal-weight buy and hold of the same bars as
  a benchmark when the bars are given, and the underwater plot.
* **Monthly returns** (a year x month table) and the **worst drawdowns** (start, trough, end,
  depth, length).
* **Prices and trades**: one chart per symbol with entry and exit markers (open trades hollow),
  when the bars are given (``feed=``); skipped otherwise.
* **Per symbol**: trades, win rate, P&L, commission and orders of each symbol.
* **Trade durations**: a histogram (winners and losers) and statistics.
* **Rejected orders**: how many, counted by reason.
* **Trades**: the first :data:`MAX_TRADE_ROWS` trades, open ones marked.

The plots need matplotlib (``pip install tradeloop[report]``). It is imported lazily, drawn with the
Agg backend on :class:`matplotlib.figure.Figure` objects (pyplot's global state is never touched),
and when it is missing the report is written without plots and says how to get them.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tradeloop.execution.types import OrderStatus, Trade
from tradeloop.results import analysis
from tradeloop.results.metrics import (
    COUNT_KEYS,
    FRACTION_KEYS,
    METRIC_KEYS,
    compute_metrics,
    drawdown_series,
)
from tradeloop.results.plots import (
    draw_drawdown,
    draw_durations,
    draw_equity,
    draw_price,
    duration_unit,
    new_figure,
    png_base64,
    require_matplotlib,
)
from tradeloop.results.result import BacktestResult
from tradeloop.results.writer import TRADE_COLUMNS, iso_timestamps, round_price

if TYPE_CHECKING:
    from tradeloop.data.feed import BarFeed

__all__ = [
    "MAX_PRICE_CHARTS",
    "MAX_TRADE_ROWS",
    "NO_PLOTS_NOTE",
    "format_metric",
    "render_html",
    "write_html_report",
]

MAX_TRADE_ROWS = 500
"""The trades table lists at most this many trades (the first ones)."""

MAX_PRICE_CHARTS = 12
"""At most this many symbols get a price chart (the first ones of the run)."""

NO_PLOTS_NOTE = "Plots are not available: install tradeloop[report] for plots."
"""Shown instead of the plots when matplotlib cannot be imported."""

WORST_DRAWDOWNS = 5
"""How many drawdown periods the report lists."""

_NS_PER_DAY = 86_400 * 10**9

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

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
    "num_rejected": "Rejected orders",
    "num_fills": "Fills",
}

_SETTING_LABELS = {
    "participation_rate": "Participation (max share of a bar's volume)",
    "allow_short": "Shorting allowed (account)",
    "fractional": "Fractional quantities",
    "risk": "Risk limits",
}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
nav { font-size: 0.9rem; } nav a { margin-right: 0.8rem; }
.partial { background: #fff3cd; border: 1px solid #e0c060; padding: 0.5rem 0.8rem; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.5rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.75rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; }
table.monthly td { text-align: right; font-variant-numeric: tabular-nums; min-width: 3.2rem; }
tr.open td { background: #fff8e1; }
tr.total td { font-weight: 600; border-top: 2px solid #bbb; }
.note { color: #8a5a00; background: #fff6e0; padding: 0.5rem 0.75rem; border-radius: 4px; }
.muted { color: #666; font-size: 0.9rem; }
.wide { overflow-x: auto; }
.wide td { white-space: nowrap; }
img { max-width: 100%; height: auto; display: block; margin: 0.5rem 0; }
"""


# ---------------------------------------------------------------------------------- formatting


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


def _pct(v: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(v) else f"{v * 100:,.{digits}f}%"


def _money(v: float) -> str:
    return f"{v:,.2f}"


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
        if column in ("entry_price", "exit_price"):
            v = round_price(v) or 0.0
        return _plain_number(v), True
    return str(value), False


class _Clock:
    """Formats timestamps of one run: dates only when every equity point has the same time of
    day (daily bars), else date and minute."""

    def __init__(self, equity_ts: Sequence[int]) -> None:
        ts = np.asarray(equity_ts, dtype=np.int64)
        self.intraday = bool(ts.size) and bool(np.unique(ts % _NS_PER_DAY).size > 1)

    def __call__(self, ns: int | None) -> str:
        if ns is None:
            return ""
        text = iso_timestamps([ns])[0]
        return text[:16].replace("T", " ") if self.intraday else text[:10]


def _span(days: float) -> str:
    if days >= 1:
        return f"{days:,.1f} days"
    hours = days * 24
    return f"{hours:,.1f} hours" if hours >= 1 else f"{hours * 60:,.0f} minutes"


def _setting_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_setting_text(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(_setting_text(v) for v in value) or "none"
    return str(value)


# ------------------------------------------------------------------------------- html helpers


def _table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>\n" for k, v in rows
    )
    return f"<table>\n{body}</table>"


def _grid(
    head: Sequence[str],
    rows: Sequence[Sequence[tuple[str, bool]]],
    row_classes: Sequence[str] | None = None,
    table_class: str = "",
) -> str:
    """A table with a header row; each cell is ``(text, is_number)``."""
    cls = f' class="{table_class}"' if table_class else ""
    parts = [f"<table{cls}>\n<tr>", *(f"<th>{html.escape(h)}</th>" for h in head), "</tr>\n"]
    for i, row in enumerate(rows):
        rc = row_classes[i] if row_classes else ""
        parts.append(f'<tr class="{rc}">' if rc else "<tr>")
        for text, numeric in row:
            td = '<td class="num">' if numeric else "<td>"
            parts.append(f"{td}{html.escape(text)}</td>")
        parts.append("</tr>\n")
    parts.append("</table>")
    return "".join(parts)


def _img(caption: str, data: str) -> str:
    return f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _muted(text: str) -> str:
    return f'<p class="muted">{html.escape(text)}</p>'


# ------------------------------------------------------------------------------------- plots


class _Plots:
    """The report's figures, drawn on demand; ``available`` is False without matplotlib."""

    def __init__(self) -> None:
        try:
            require_matplotlib()
        except ImportError:
            self.available = False
        else:
            self.available = True

    def equity(
        self,
        ts: npt.NDArray[np.int64],
        equity: npt.NDArray[np.float64],
        benchmark: npt.NDArray[np.float64] | None,
    ) -> list[tuple[str, str]]:
        fig, ax = new_figure(10, 3.4)
        draw_equity(ax, ts, equity, benchmark)
        first = ("Equity curve", png_base64(fig))
        fig, ax = new_figure(10, 3.0)
        draw_drawdown(ax, ts, drawdown_series(equity))
        return [first, ("Drawdown (underwater)", png_base64(fig))]

    def price(self, feed: BarFeed, symbol: str, trades: Sequence[Trade]) -> str:
        fig, ax = new_figure(10, 3.2)
        draw_price(ax, feed[symbol], trades)
        return png_base64(fig)

    def durations(self, durations: npt.NDArray[np.int64], pnl: npt.NDArray[np.float64]) -> str:
        fig, ax = new_figure(10, 2.8)
        draw_durations(ax, durations, pnl)
        return png_base64(fig)


# ----------------------------------------------------------------------------------- sections


def _run_rows(result: BacktestResult, metrics: Mapping[str, float]) -> list[tuple[str, str]]:
    ts = result.equity_ts
    stamps = iso_timestamps([int(ts[0]), int(ts[-1])]) if len(ts) else ["", ""]
    params = json.dumps(dict(result.params), default=str, sort_keys=True)
    final_equity = metrics.get("final_equity", result.final_equity)
    partial = [("Partial", f"yes: {result.partial}")] if result.partial else []
    return [
        *partial,
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


def _partial_html(result: BacktestResult) -> str:
    if not result.partial:
        return ""
    return (
        '<p class="partial"><strong>Partial results:</strong> the run stopped early ('
        f"{html.escape(result.partial)}); everything below covers the run up to that point.</p>"
    )


def _settings_html(result: BacktestResult) -> str:
    if not result.settings:
        return _muted(
            "Not recorded: `tradeloop backtest` records costs, participation, leverage and "
            "shorting here; a run from Python can fill result.settings."
        )
    rows = [
        (_SETTING_LABELS.get(k, _label(k)), _setting_text(v)) for k, v in result.settings.items()
    ]
    return _table(rows)


def _metric_rows(metrics: Mapping[str, float]) -> list[tuple[str, str]]:
    known = [k for k in METRIC_KEYS if k in metrics]
    extra = [k for k in metrics if k not in METRIC_KEYS]
    return [(_label(k), format_metric(k, metrics[k])) for k in (*known, *extra)]


def _equity_html(
    result: BacktestResult, plots: _Plots, feed: BarFeed | None, ts: IntArray, equity: FloatArray
) -> str:
    if not plots.available:
        return _note(NO_PLOTS_NOTE)
    if equity.size == 0:
        return "<p>No equity points to plot.</p>"
    bench = analysis.buy_and_hold(feed, ts, result.initial_cash) if feed is not None else None
    parts = [_img(caption, data) for caption, data in plots.equity(ts, equity, bench)]
    if bench is not None:
        base = result.initial_cash
        ret = float(bench[-1]) / base - 1.0
        dd = float(drawdown_series(bench).max())
        parts.insert(
            1,
            _muted(
                f"Benchmark: buy and hold of {', '.join(feed.symbols if feed else ())} in equal "
                f"parts from the first bar, no costs: total return {_pct(ret)}, max drawdown "
                f"{_pct(dd)}."
            ),
        )
    else:
        parts.append(
            _muted(
                "No buy and hold comparison: the report was written without the bars (pass "
                "feed=...; a run streamed with data.stream keeps none)."
            )
        )
    return "\n".join(parts)


def _monthly_html(result: BacktestResult, ts: IntArray, equity: FloatArray) -> str:
    mr = analysis.monthly_returns(ts, equity, result.initial_cash)
    if not mr.months:
        return "<p>No equity points.</p>"

    def cell(r: float | None) -> str:
        if r is None:
            return "<td></td>"
        if not math.isfinite(r):
            return "<td>n/a</td>"
        alpha = min(abs(r) / 0.10, 1.0) * 0.55
        rgb = "44,160,44" if r >= 0 else "214,39,40"
        return f'<td style="background: rgba({rgb},{alpha:.2f})">{r * 100:,.1f}%</td>'

    head = "".join(f"<th>{m}</th>" for m in ("Year", *_MONTHS, "Year total"))
    rows = [f'<table class="monthly">\n<tr>{head}</tr>\n']
    for year in sorted(mr.months):
        cells = "".join(cell(mr.months[year].get(m)) for m in range(1, 13))
        rows.append(f"<tr><th>{year}</th>{cells}{cell(mr.years.get(year))}</tr>\n")
    rows.append("</table>")
    rows.append(_muted("Returns of the equity curve per calendar month (UTC), month end to end."))
    return "".join(rows)


def _drawdowns_html(ts: IntArray, equity: FloatArray, clock: _Clock) -> str:
    periods = analysis.drawdown_periods(ts, equity, WORST_DRAWDOWNS)
    if not periods:
        return "<p>No drawdown: equity never fell below a previous peak.</p>"
    rows = [
        [
            (str(i), True),
            (clock(p.start_ts), False),
            (clock(p.trough_ts), False),
            (clock(p.end_ts) if p.end_ts is not None else "not recovered", False),
            (_pct(p.depth), True),
            (_span(p.length_days), True),
        ]
        for i, p in enumerate(periods, 1)
    ]
    head = ("#", "Start (peak)", "Trough", "End (recovered)", "Depth", "Length")
    return _grid(head, rows)


def _prices_html(result: BacktestResult, plots: _Plots, feed: BarFeed | None) -> str:
    if feed is None:
        return _muted(
            "Skipped: the report was written without the bars (feed=...; a streamed run keeps "
            "none)."
        )
    if not plots.available:
        return _note(NO_PLOTS_NOTE)
    symbols = [s for s in result.symbols if s in feed.series and len(feed[s])]
    by_symbol: dict[str, list[Trade]] = {s: [] for s in symbols}
    for t in result.trades:
        if t.symbol in by_symbol:
            by_symbol[t.symbol].append(t)
    parts = [
        _muted(
            "Closes with each trade's entry (triangle up: long, down: short; hollow: still open) "
            "and exit (cross), joined by a dotted line."
        )
    ]
    for s in symbols[:MAX_PRICE_CHARTS]:
        parts.append(_img(f"Price and trades: {s}", plots.price(feed, s, by_symbol[s])))
    if len(symbols) > MAX_PRICE_CHARTS:
        parts.append(
            _note(f"Showing the first {MAX_PRICE_CHARTS} of {len(symbols)} symbols' charts.")
        )
    if not symbols:
        parts.append("<p>The bars hold none of the run's symbols.</p>")
    return "\n".join(parts)


def _symbols_html(result: BacktestResult) -> str:
    summaries = analysis.symbol_breakdown(result)
    if not summaries:
        return "<p>No symbols.</p>"
    rows: list[list[tuple[str, bool]]] = []
    for s in summaries:
        rows.append(
            [
                (s.symbol, False),
                (f"{s.closed_trades:,d}", True),
                (f"{s.open_trades:,d}", True),
                (_pct(s.win_rate, 1) if s.closed_trades else "", True),
                (_money(s.net_pnl), True),
                (f"{s.avg_return_pct:,.2f}%" if s.closed_trades else "", True),
                (_money(s.commission), True),
                (f"{s.orders:,d}", True),
                (f"{s.rejected:,d}", True),
            ]
        )
    closed = sum(s.closed_trades for s in summaries)
    wins = sum(1 for t in result.closed_trades if t.net_pnl > 0)
    rows.append(
        [
            ("All", False),
            (f"{closed:,d}", True),
            (f"{sum(s.open_trades for s in summaries):,d}", True),
            (_pct(wins / closed, 1) if closed else "", True),
            (_money(math.fsum(s.net_pnl for s in summaries)), True),
            ("", True),
            (_money(math.fsum(s.commission for s in summaries)), True),
            (f"{sum(s.orders for s in summaries):,d}", True),
            (f"{sum(s.rejected for s in summaries):,d}", True),
        ]
    )
    head = (
        "Symbol",
        "Closed trades",
        "Open trades",
        "Win rate",
        "Net P&L (closed)",
        "Avg return",
        "Commission",
        "Orders",
        "Rejected",
    )
    classes = [""] * len(summaries) + ["total"]
    return _grid(head, rows, classes)


def _durations_html(result: BacktestResult, plots: _Plots) -> str:
    durations, pnl = analysis.trade_durations_ns(result.trades)
    if durations.size == 0:
        return "<p>No closed trades.</p>"
    unit, per = duration_unit(durations)
    rows: list[list[tuple[str, bool]]] = []
    for name, mask in (("All", pnl == pnl), ("Winners", pnl > 0), ("Losers", pnl <= 0)):
        d = durations[mask].astype(np.float64) / per
        if d.size == 0:
            rows.append([(name, False), ("0", True), *[("", True)] * 4])
            continue
        stats = (d.min(), float(np.median(d)), d.mean(), d.max())
        rows.append([(name, False), (f"{d.size:,d}", True)] + [(f"{v:,.1f}", True) for v in stats])
    head = ("Closed trades", "Count", f"Min ({unit})", "Median", "Mean", "Max")
    parts = [_grid(head, rows)]
    open_count = len(result.trades) - int(durations.size)
    if open_count:
        parts.append(_muted(f"{open_count:,d} trade(s) still open at the end are not counted."))
    if plots.available:
        parts.append(_img("Trade durations", plots.durations(durations, pnl)))
    return "\n".join(parts)


def _rejections_html(result: BacktestResult) -> str:
    rejected = [o for o in result.orders if o.status is OrderStatus.REJECTED]
    total = len(result.orders)
    if not rejected:
        return f"<p>No order was rejected ({total:,d} orders).</p>"
    examples: dict[str, str] = {}
    for o in rejected:
        examples.setdefault(analysis.reason_kind(o.reject_reason), o.reject_reason or "")
    rows = [
        [(kind, False), (f"{count:,d}", True), (examples[kind], False)]
        for kind, count in analysis.rejection_counts(rejected)
    ]
    share = len(rejected) / total if total else 0.0
    summary = (
        f"<p><strong>{len(rejected):,d} of {total:,d} orders ({_pct(share, 1)}) were "
        "rejected</strong> and never reached the market.</p>"
    )
    return summary + _grid(("Reason", "Orders", "First such rejection"), rows)


def _trades_html(trades: Sequence[Trade], clock: _Clock) -> str:
    if not trades:
        return "<p>No trades.</p>"
    shown = trades[:MAX_TRADE_ROWS]
    parts: list[str] = []
    open_count = sum(1 for t in trades if not t.is_closed)
    note = "Times are UTC."
    if open_count:
        note += (
            f" {open_count:,d} trade(s) were still open when the run ended (status open, "
            "highlighted): no exit yet, their P&L counts only partial exits."
        )
    parts.append(_muted(note))
    if len(trades) > MAX_TRADE_ROWS:
        parts.append(
            f'<p class="note">Showing the first {MAX_TRADE_ROWS:,d} of {len(trades):,d} trades '
            "(all of them are in trades.csv of write_results).</p>"
        )
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("status", *TRADE_COLUMNS))
    parts.append(f'<div class="wide"><table>\n<tr>{head}</tr>\n')
    for trade in shown:
        d = trade.to_dict()
        is_open = not trade.is_closed
        cells = [f"<td>{'open' if is_open else 'closed'}</td>"]
        d["entry_time"] = clock(trade.entry_ts)
        d["exit_time"] = clock(trade.exit_ts) if trade.exit_ts is not None else "open"
        for c in TRADE_COLUMNS:
            text, numeric = _trade_cell(c, d.get(c))
            cls = ' class="num"' if numeric else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        row_cls = ' class="open"' if is_open else ""
        parts.append(f"<tr{row_cls}>{''.join(cells)}</tr>\n")
    parts.append("</table></div>")
    return "".join(parts)


_SECTIONS = (
    ("run", "Run"),
    ("metrics", "Metrics"),
    ("equity", "Equity"),
    ("monthly", "Monthly returns"),
    ("drawdowns", "Drawdowns"),
    ("prices", "Prices"),
    ("symbols", "Per symbol"),
    ("durations", "Durations"),
    ("rejected", "Rejected orders"),
    ("trades", "Trades"),
)


def render_html(
    result: BacktestResult,
    metrics: Mapping[str, float] | None = None,
    title: str | None = None,
    feed: BarFeed | None = None,
) -> str:
    """The report as an HTML string (what :func:`write_html_report` writes)."""
    if metrics is None:
        metrics = compute_metrics(result)
    if title is None:
        title = f"Backtest report: {result.strategy_name}" if result.strategy_name else "Backtest"
    t = html.escape(title)
    n = min(len(result.equity_ts), len(result.equity))
    ts = np.asarray(result.equity_ts, dtype=np.int64)[:n]
    equity = np.asarray(result.equity, dtype=np.float64)[:n]
    plots = _Plots()
    clock = _Clock(ts.tolist())
    nav = " ".join(f'<a href="#{anchor}">{html.escape(name)}</a>' for anchor, name in _SECTIONS)
    rejected = int(sum(1 for o in result.orders if o.status is OrderStatus.REJECTED))
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
        _partial_html(result),
        f"<nav>{nav}</nav>",
        '<h2 id="run">Run</h2>',
        _table(_run_rows(result, metrics)),
        "<h3>Settings</h3>",
        _settings_html(result),
        '<h2 id="metrics">Metrics</h2>',
        _table(_metric_rows(metrics)),
        '<h2 id="equity">Equity and drawdown</h2>',
        _equity_html(result, plots, feed, ts, equity),
        '<h2 id="monthly">Monthly returns</h2>',
        _monthly_html(result, ts, equity),
        f'<h2 id="drawdowns">Worst drawdowns (up to {WORST_DRAWDOWNS})</h2>',
        _drawdowns_html(ts, equity, clock),
        '<h2 id="prices">Prices and trades</h2>',
        _prices_html(result, plots, feed),
        '<h2 id="symbols">Per symbol</h2>',
        _symbols_html(result),
        '<h2 id="durations">Trade durations</h2>',
        _durations_html(result, plots),
        f'<h2 id="rejected">Rejected orders ({rejected:,d})</h2>',
        _rejections_html(result),
        f'<h2 id="trades">Trades ({len(result.trades):,d})</h2>',
        _trades_html(result.trades, clock),
        "</body>",
        "</html>",
    ]
    return "\n".join(sections) + "\n"


def write_html_report(
    result: BacktestResult,
    path: str | Path,
    metrics: Mapping[str, float] | None = None,
    title: str | None = None,
    feed: BarFeed | None = None,
) -> Path:
    """Write the report to ``path`` (parent directories are created) and return the path.

    ``metrics`` defaults to :func:`compute_metrics(result) <.compute_metrics>`. ``feed``: the bars
    the run traded (a :class:`~tradeloop.data.feed.BarFeed`); with them the report adds a
    buy-and-hold benchmark and a price chart with the trades per symbol.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(result, metrics, title, feed), encoding="utf-8")
    return out
