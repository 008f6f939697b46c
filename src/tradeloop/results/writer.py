"""Write a :class:`~tradeloop.results.result.BacktestResult` to a directory as CSV and JSON files.

========================  =========================================================================
file                      content
========================  =========================================================================
``equity.csv``            ``timestamp`` (ISO-8601, UTC), ``equity``, ``exposure``, ``drawdown``
                          (positive fraction below the running peak), one row per equity point
``trades.csv``            one row per trade, the columns of ``Trade.to_dict()``
``orders.csv``            one row per order, the columns of ``Order.to_dict()``
``fills.csv``             one row per fill, the columns of ``Fill.to_dict()``
``metrics.json``          ``{"metrics": {...}, "run": {...}}``: the metrics of
                          :func:`~tradeloop.results.metrics.compute_metrics` and the run's
                          description (strategy, params, symbols, start/end, cash, bars, time)
========================  =========================================================================

CSV files always have a header row, even without data rows; ``None`` is written as an empty field.
``metrics.json`` is strict JSON: ``inf``/``-inf`` are written as the strings ``"inf"``/``"-inf"``
(``float()`` reads them back) and NaN as ``null``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tradeloop.execution.types import Fill, Order, OrderSide, Trade
from tradeloop.results.metrics import COUNT_KEYS, compute_metrics, drawdown_series
from tradeloop.results.result import BacktestResult

__all__ = ["iso_timestamps", "json_safe", "run_info", "write_results"]

EQUITY_COLUMNS = ("timestamp", "equity", "exposure", "drawdown")
# Column names come from to_dict() of throwaway instances, so they follow the types.
TRADE_COLUMNS = tuple(Trade("", OrderSide.BUY, 0).to_dict())
ORDER_COLUMNS = tuple(Order("", "", OrderSide.BUY, 0.0).to_dict())
FILL_COLUMNS = tuple(Fill("", "", OrderSide.BUY, 0.0, 0.0, 0.0, 0).to_dict())


def iso_timestamps(ts: Sequence[int] | npt.NDArray[np.int64]) -> list[str]:
    """Nanosecond epoch timestamps -> exact ISO-8601 UTC strings (``...T00:00:00+00:00``).

    Vectorised with numpy. Fractional seconds are written with as many digits as the whole
    series needs (none, 6 or 9), like :meth:`datetime.isoformat`.
    """
    arr = np.asarray(ts, dtype=np.int64)
    if arr.size == 0:
        return []
    unit: Literal["s", "us", "ns"]
    if not (arr % 10**9).any():
        unit = "s"
    elif not (arr % 1_000).any():
        unit = "us"
    else:
        unit = "ns"
    text = np.datetime_as_string(arr.astype(np.dtype("datetime64[ns]")), unit=unit)
    return [f"{s}+00:00" for s in text.tolist()]


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced: ``inf`` -> ``"inf"``, NaN -> ``None``.

    Recurses into mappings, lists and tuples; numpy scalars and arrays become Python values.
    """
    if isinstance(value, float | np.floating):
        f = float(value)
        if math.isnan(f):
            return None
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return f
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    return value


def run_info(result: BacktestResult) -> dict[str, Any]:
    """The run's description as written to ``metrics.json`` under ``"run"``."""
    ts = result.equity_ts
    stamps = iso_timestamps([int(ts[0]), int(ts[-1])]) if len(ts) else []
    return {
        "strategy_name": result.strategy_name,
        "params": dict(result.params),
        "symbols": list(result.symbols),
        "start": stamps[0] if stamps else None,
        "end": stamps[-1] if stamps else None,
        "initial_cash": result.initial_cash,
        "final_cash": result.final_cash,
        "bars_processed": result.bars_processed,
        "elapsed_seconds": result.elapsed_seconds,
        **({"live": result.live} if result.live else {}),
    }


def _write_csv(path: Path, columns: tuple[str, ...], rows: Iterable[Iterable[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        w.writerows(rows)


def _dict_rows(
    columns: tuple[str, ...], items: Iterable[Trade | Order | Fill]
) -> Iterable[list[object]]:
    for item in items:
        d = item.to_dict()
        yield [d.get(c) for c in columns]


def _json_default(value: object) -> object:
    item = getattr(value, "item", None)  # numpy scalars not caught by json_safe
    if callable(item):
        return item()
    return str(value)


def write_results(
    result: BacktestResult, out_dir: str | Path, metrics: Mapping[str, float] | None = None
) -> dict[str, Path]:
    """Write the files of the module table into ``out_dir`` (created if missing).

    ``metrics`` defaults to :func:`compute_metrics(result) <.compute_metrics>`. Returns
    ``{"equity": ..., "trades": ..., "orders": ..., "fills": ..., "metrics": ...}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if metrics is None:
        metrics = compute_metrics(result)

    paths = {
        "equity": out / "equity.csv",
        "trades": out / "trades.csv",
        "orders": out / "orders.csv",
        "fills": out / "fills.csv",
        "metrics": out / "metrics.json",
    }

    n = min(len(result.equity_ts), len(result.equity), len(result.exposure))
    equity = np.asarray(result.equity, dtype=np.float64)[:n]
    _write_csv(
        paths["equity"],
        EQUITY_COLUMNS,
        zip(
            iso_timestamps(np.asarray(result.equity_ts, dtype=np.int64)[:n]),
            equity.tolist(),
            np.asarray(result.exposure, dtype=np.float64)[:n].tolist(),
            drawdown_series(equity).tolist(),
            strict=True,
        ),
    )
    _write_csv(paths["trades"], TRADE_COLUMNS, _dict_rows(TRADE_COLUMNS, result.trades))
    _write_csv(paths["orders"], ORDER_COLUMNS, _dict_rows(ORDER_COLUMNS, result.orders))
    _write_csv(paths["fills"], FILL_COLUMNS, _dict_rows(FILL_COLUMNS, result.fills))

    metric_values: dict[str, Any] = {
        k: int(v) if k in COUNT_KEYS and math.isfinite(v) else v for k, v in metrics.items()
    }
    doc = json_safe({"metrics": metric_values, "run": run_info(result)})
    text = json.dumps(doc, indent=2, allow_nan=False, default=_json_default)
    paths["metrics"].write_text(text + "\n", encoding="utf-8")
    return paths
