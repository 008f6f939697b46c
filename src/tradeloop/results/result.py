"""What a backtest returns: orders, fills, round-trip trades and the equity curve."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tradeloop.execution.types import Fill, Order, Trade

__all__ = ["BacktestResult", "EquityCurve"]


@dataclass
class BacktestResult:
    """Raw output of a run; :func:`tradeloop.results.metrics.compute_metrics` derives metrics.

    ``live``: for a run on the asynchronous engine, what happened on the wire (reconnects,
    resends, reconciliations, rate limiting, ...); empty for a backtest.

    ``equity_ts``/``equity``/``exposure`` hold one point per distinct timestamp of the feed: the
    account equity marked to the closes known at that time, and the gross market value of all
    positions (sum of |qty * price|) at that time.
    """

    initial_cash: float
    symbols: tuple[str, ...]
    equity_ts: Sequence[int]
    equity: Sequence[float]
    exposure: Sequence[float]
    orders: list[Order]
    fills: list[Fill]
    trades: list[Trade]
    final_cash: float
    bars_processed: int
    elapsed_seconds: float
    strategy_name: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    live: dict[str, Any] = field(default_factory=dict)

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if len(self.equity) else self.initial_cash

    @property
    def closed_trades(self) -> list[Trade]:
        return [t for t in self.trades if t.is_closed]

    def metrics(self) -> dict[str, float]:
        from tradeloop.results.metrics import compute_metrics

        return compute_metrics(self)


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
