"""What a backtest returns: orders, fills, round-trip trades and the equity curve.

This module stays light (no numpy, pandas or matplotlib at import): the notebook helpers of
:class:`BacktestResult` import what they need when called.
"""

from __future__ import annotations

import html
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tradeloop.execution.types import Fill, Order, OrderStatus, Trade

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from tradeloop.data.feed import BarFeed

__all__ = ["BacktestResult", "EquityCurve"]

# (label, metric key) of the summary table of _repr_html_, in display order
_HTML_SUMMARY: tuple[tuple[str, str], ...] = (
    ("Total return", "total_return"),
    ("CAGR", "cagr"),
    ("Sharpe", "sharpe"),
    ("Max drawdown", "max_drawdown"),
    ("Win rate", "win_rate"),
    ("Closed trades", "num_trades"),
    ("Orders", "num_orders"),
    ("Rejected orders", "num_rejected"),
    ("Final equity", "final_equity"),
)


def _day(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).date().isoformat()


@dataclass(repr=False)
class BacktestResult:
    """Raw output of a run; :func:`tradeloop.results.metrics.compute_metrics` derives metrics.

    ``live``: for a run on the asynchronous engine, what happened on the wire (reconnects,
    resends, reconciliations, rate limiting, ...); empty for a backtest.

    ``settings``: how the run was set up beyond the strategy's parameters (costs, participation,
    leverage, shorting, ...), as plain JSON-able values; ``tradeloop backtest`` fills it from the
    config, a run from Python leaves it empty unless you fill it. It is written to
    ``metrics.json`` and shown in the report.

    In a notebook: ``repr`` is one line, ``_repr_html_`` a small table of key metrics;
    :meth:`trades_df`, :meth:`orders_df`, :meth:`fills_df`, :meth:`equity_series` and
    :meth:`equity_df` are pandas views, :meth:`plot` draws equity and drawdown.

    ``partial``: empty for a run that finished; otherwise why it stopped early (the strategy
    error, or ``"interrupted"``): the orders, fills, trades and equity up to that point.

    ``equity_ts``/``equity``/``exposure`` hold one point per distinct timestamp of the feed: the
    account equity marked to the closes known at that time, and the gross market value of all
    positions (sum of |qty * price|) at that time.

    ``orders``, ``fills`` and ``trades`` are sequences of :class:`Order`, :class:`Fill` and
    :class:`Trade` (``len``, indexing, slices, iteration). From an engine they are compact logs
    (:mod:`tradeloop.results.log`): each item is rebuilt from typed columns when read (equal
    field by field to what the run made, not the same object; an order or trade still open is
    the live object), and a long run's rows are spilled to Parquet files in a temporary
    directory. :meth:`close` (or ``with result:``) removes those files at once; otherwise they
    go when the result is garbage-collected or the interpreter exits.
    """

    initial_cash: float
    symbols: tuple[str, ...]
    equity_ts: Sequence[int]
    equity: Sequence[float]
    exposure: Sequence[float]
    orders: Sequence[Order]
    fills: Sequence[Fill]
    trades: Sequence[Trade]
    final_cash: float
    bars_processed: int
    elapsed_seconds: float
    strategy_name: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    live: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    partial: str = ""

    def close(self) -> None:
        """Remove the files the result's logs spilled to disk (their rows still in memory stay
        readable). Idempotent; also what leaving a ``with result:`` block does."""
        for seq in (self.orders, self.fills, self.trades):
            close = getattr(seq, "close", None)
            if close is not None and hasattr(seq, "spill_files"):
                close()

    def __enter__(self) -> BacktestResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_partial(self) -> bool:
        """The run did not finish: a strategy callback raised or the run was interrupted
        (``partial`` says which); everything up to that point is here."""
        return bool(self.partial)

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if len(self.equity) else self.initial_cash

    @property
    def closed_trades(self) -> list[Trade]:
        return [t for t in self.trades if t.is_closed]

    @property
    def open_trades(self) -> list[Trade]:
        """Trades still open when the run ended (their ``pnl`` counts only partial exits)."""
        return [t for t in self.trades if not t.is_closed]

    @property
    def rejected_orders(self) -> list[Order]:
        """Orders that ended ``rejected``; each has its ``reject_reason``."""
        return [o for o in self.orders if o.status is OrderStatus.REJECTED]

    def metrics(self) -> dict[str, float]:
        from tradeloop.results.metrics import compute_metrics

        return compute_metrics(self)

    # -- notebooks ------------------------------------------------------------------------------

    def _period(self) -> str:
        ts = self.equity_ts
        return f"{_day(int(ts[0]))}..{_day(int(ts[-1]))}" if len(ts) else "no equity points"

    def __repr__(self) -> str:
        """One line: strategy, symbols, period, counts and the final equity (never the data)."""
        symbols = ",".join(self.symbols[:5]) + (
            f",+{len(self.symbols) - 5}" if len(self.symbols) > 5 else ""
        )
        base = self.initial_cash
        change = f" ({self.final_equity / base - 1.0:+.2%})" if base > 0 else ""
        open_trades = len(self.trades) - len(self.closed_trades)
        partial = " PARTIAL" if self.partial else ""
        return (
            f"<BacktestResult{partial} {self.strategy_name or '(unnamed)'} [{symbols}] "
            f"{self._period()}: "
            f"{len(self.equity):,} points, {len(self.orders):,} orders "
            f"({len(self.rejected_orders):,} rejected), {len(self.fills):,} fills, "
            f"{len(self.trades):,} trades ({open_trades:,} open), "
            f"equity {base:,.2f} -> {self.final_equity:,.2f}{change}>"
        )

    def _repr_html_(self) -> str:
        """A compact HTML table of the run and its key metrics (Jupyter shows it)."""
        from tradeloop.results.report import format_metric

        metrics = self.metrics()
        title = html.escape(self.strategy_name or "(unnamed)")
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        rows = [
            ("Strategy", f"{self.strategy_name or '(unnamed)'}({params})"),
            ("Symbols", ", ".join(self.symbols[:12]) + (" ..." if len(self.symbols) > 12 else "")),
            ("Period (UTC)", self._period()),
        ]
        if self.partial:
            rows.append(("Partial", self.partial))
        rows += [(label, format_metric(key, metrics[key])) for label, key in _HTML_SUMMARY]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:right'>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        return f"<table><caption>BacktestResult: {title}</caption>{body}</table>"

    def trades_df(self) -> pd.DataFrame:
        """The trades as a DataFrame (UTC times, ``duration``, ``is_open``); see
        :func:`tradeloop.results.frames.trades_frame`."""
        from tradeloop.results.frames import trades_frame
        from tradeloop.results.log import TradeLog

        if isinstance(self.trades, TradeLog):
            return self.trades.frame()  # straight from the columns
        return trades_frame(self.trades)

    def orders_df(self) -> pd.DataFrame:
        """The orders as a DataFrame (the columns of ``Order.to_dict()``, UTC times)."""
        from tradeloop.results.frames import orders_frame
        from tradeloop.results.log import OrderLog

        if isinstance(self.orders, OrderLog):
            return self.orders.frame()  # straight from the columns
        return orders_frame(self.orders)

    def fills_df(self) -> pd.DataFrame:
        """The fills as a DataFrame (the columns of ``Fill.to_dict()``, UTC times)."""
        from tradeloop.results.frames import fills_frame
        from tradeloop.results.log import FillLog

        if isinstance(self.fills, FillLog):
            return self.fills.frame()  # straight from the columns
        return fills_frame(self.fills)

    def equity_series(self) -> pd.Series[float]:
        """The equity curve as a pandas Series on a UTC DatetimeIndex (``equity`` itself stays
        the plain sequence the engines wrote)."""
        from tradeloop.results.frames import equity_series

        return equity_series(self)

    def equity_df(self) -> pd.DataFrame:
        """``equity``, ``exposure`` and ``drawdown`` on a UTC DatetimeIndex."""
        from tradeloop.results.frames import equity_frame

        return equity_frame(self)

    def plot(self, feed: BarFeed | None = None) -> Figure:
        """Equity (with an equal-weight buy and hold of ``feed``'s symbols, if given) above the
        drawdown, as a matplotlib Figure (``fig.savefig(...)``; Jupyter displays it)."""
        from tradeloop.results.plots import plot_result

        return plot_result(self, feed)


class EquityCurve:
    """The equity curve of a run of unknown length (a stream): one point per distinct timestamp,
    the last bar of a timestamp overwriting the point the earlier ones wrote."""

    __slots__ = ("equity", "exposure", "last_ts", "ts")

    def __init__(self) -> None:
        self.ts: array[int] = array("q")
        self.equity: array[float] = array("d")
        self.exposure: array[float] = array("d")
        self.last_ts: int | None = None

    def record(self, ts: int, equity: float, exposure: float) -> None:
        if ts != self.last_ts:
            self.ts.append(ts)
            self.equity.append(equity)
            self.exposure.append(exposure)
            self.last_ts = ts
        else:
            self.equity[-1] = equity
            self.exposure[-1] = exposure
