"""pandas views of a :class:`~tradeloop.results.result.BacktestResult` (for notebooks).

Every time column is ``datetime64[ns, UTC]`` built from the exact integer nanoseconds (``NaT``
for an open trade's exit); a missing price is ``NaN``. The frames are fresh copies: changing them
changes nothing in the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tradeloop.results.result import BacktestResult
from tradeloop.results.writer import FILL_COLUMNS, ORDER_COLUMNS

if TYPE_CHECKING:
    from tradeloop.execution.types import Fill, Order, Trade

__all__ = [
    "FILL_FRAME_COLUMNS",
    "ORDER_FRAME_COLUMNS",
    "TRADE_FRAME_COLUMNS",
    "equity_frame",
    "equity_series",
    "fills_frame",
    "orders_frame",
    "trades_frame",
]

TRADE_FRAME_COLUMNS = (
    "symbol",
    "direction",
    "entry_time",
    "exit_time",
    "duration",
    "is_open",
    "qty",
    "entry_price",
    "exit_price",
    "pnl",
    "commission",
    "net_pnl",
    "return_pct",
)
# the columns of Order.to_dict() and Fill.to_dict(), as the CSV files have them
ORDER_FRAME_COLUMNS = ORDER_COLUMNS
FILL_FRAME_COLUMNS = FILL_COLUMNS


def _times(ns: Sequence[int | None]) -> pd.DatetimeIndex:
    """Exact UTC datetimes of int ns timestamps; ``None`` becomes ``NaT``."""
    arr = np.array([np.iinfo(np.int64).min if v is None else v for v in ns], dtype=np.int64)
    return pd.DatetimeIndex(arr.view("datetime64[ns]"), tz="UTC")  # int64 min is NaT


def _floats(values: Sequence[float | None]) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _strings(values: Sequence[str | None]) -> pd.Series[str]:
    return pd.Series(list(values), dtype="object")


def trades_frame(trades: Sequence[Trade]) -> pd.DataFrame:
    """One row per trade, in order: the columns of :data:`TRADE_FRAME_COLUMNS`.

    ``duration`` is ``exit_time - entry_time`` (``NaT`` while open), ``is_open`` marks trades
    still open at the end of the run (their ``pnl`` counts only partial exits so far).
    """
    entry = _times([t.entry_ts for t in trades])
    exit_ = _times([t.exit_ts for t in trades])
    frame = pd.DataFrame(
        {
            "symbol": _strings([t.symbol for t in trades]),
            "direction": _strings(["long" if t.side.value == "buy" else "short" for t in trades]),
            "entry_time": entry,
            "exit_time": exit_,
            "duration": exit_ - entry,
            "is_open": np.array([not t.is_closed for t in trades], dtype=bool),
            "qty": _floats([t.max_qty for t in trades]),
            "entry_price": _floats([t.entry_price for t in trades]),
            "exit_price": _floats([t.exit_price for t in trades]),
            "pnl": _floats([t.pnl for t in trades]),
            "commission": _floats([t.commission for t in trades]),
            "net_pnl": _floats([t.net_pnl for t in trades]),
            "return_pct": _floats([t.return_pct for t in trades]),
        },
        columns=list(TRADE_FRAME_COLUMNS),
    )
    return frame


def orders_frame(orders: Sequence[Order]) -> pd.DataFrame:
    """One row per order, in order: the columns of ``Order.to_dict()``
    (:data:`ORDER_FRAME_COLUMNS`), with ``created_at``/``updated_at`` as UTC datetimes and enums
    as their string values."""
    return pd.DataFrame(
        {
            "id": _strings([o.id for o in orders]),
            "client_order_id": _strings([o.client_order_id for o in orders]),
            "symbol": _strings([o.symbol for o in orders]),
            "side": _strings([o.side.value for o in orders]),
            "type": _strings([o.type.value for o in orders]),
            "tif": _strings([o.tif.value for o in orders]),
            "qty": _floats([o.qty for o in orders]),
            "limit_price": _floats([o.limit_price for o in orders]),
            "stop_price": _floats([o.stop_price for o in orders]),
            "trail_price": _floats([o.trail_price for o in orders]),
            "trail_percent": _floats([o.trail_percent for o in orders]),
            "status": _strings([o.status.value for o in orders]),
            "filled_qty": _floats([o.filled_qty for o in orders]),
            "avg_fill_price": _floats([o.avg_fill_price for o in orders]),
            "commission": _floats([o.commission for o in orders]),
            "created_at": _times([o.created_at for o in orders]),
            "updated_at": _times([o.updated_at for o in orders]),
            "reject_reason": _strings([o.reject_reason for o in orders]),
            "replaces": _strings([o.replaces for o in orders]),
            "replaced_by": _strings([o.replaced_by for o in orders]),
            "broker_order_id": _strings([o.broker_order_id for o in orders]),
            "tag": _strings([o.tag for o in orders]),
            "order_class": _strings([o.order_class.value for o in orders]),
            "parent_id": _strings([o.parent_id for o in orders]),
        },
        columns=list(ORDER_FRAME_COLUMNS),
    )


def fills_frame(fills: Sequence[Fill]) -> pd.DataFrame:
    """One row per fill, in order: the columns of ``Fill.to_dict()`` (:data:`FILL_FRAME_COLUMNS`),
    ``timestamp`` as a UTC datetime."""
    return pd.DataFrame(
        {
            "execution_id": _strings([f.execution_id for f in fills]),
            "order_id": _strings([f.order_id for f in fills]),
            "symbol": _strings([f.symbol for f in fills]),
            "side": _strings([f.side.value for f in fills]),
            "qty": _floats([f.qty for f in fills]),
            "price": _floats([f.price for f in fills]),
            "commission": _floats([f.commission for f in fills]),
            "timestamp": _times([f.ts for f in fills]),
            "position_qty": _floats([f.position_qty for f in fills]),
        },
        columns=list(FILL_FRAME_COLUMNS),
    )


def _curve(result: BacktestResult) -> tuple[pd.DatetimeIndex, int]:
    n = min(len(result.equity_ts), len(result.equity), len(result.exposure))
    index = _times([int(v) for v in result.equity_ts[:n]])
    index.name = "timestamp"
    return index, n


def equity_series(result: BacktestResult) -> pd.Series[float]:
    """The equity curve as a float Series named ``equity`` on a UTC DatetimeIndex."""
    index, n = _curve(result)
    return pd.Series(_floats(list(result.equity[:n])), index=index, name="equity")


def equity_frame(result: BacktestResult) -> pd.DataFrame:
    """``equity``, ``exposure`` and ``drawdown`` (positive fraction below the running peak) on a
    UTC DatetimeIndex: the columns of ``equity.csv``, unrounded."""
    from tradeloop.results.metrics import drawdown_series

    index, n = _curve(result)
    equity = _floats(list(result.equity[:n]))
    return pd.DataFrame(
        {
            "equity": equity,
            "exposure": _floats(list(result.exposure[:n])),
            "drawdown": drawdown_series(equity),
        },
        index=index,
    )
