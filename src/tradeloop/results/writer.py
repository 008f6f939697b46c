"""Write a :class:`~tradeloop.results.result.BacktestResult` to a directory as CSV and JSON files.

========================  =========================================================================
file                      content
========================  =========================================================================
``equity.csv``            ``timestamp``, ``equity``, ``exposure``, ``drawdown`` (positive fraction
                          below the running peak), one row per equity point
``trades.csv``            one row per trade, the columns of ``Trade.to_dict()`` (an open trade has
                          empty ``exit_time`` and ``exit_price``)
``orders.csv``            one row per order, the columns of ``Order.to_dict()``
``fills.csv``             one row per fill, the columns of ``Fill.to_dict()``
``metrics.json``          ``{"metrics": {...}, "run": {...}}``: the metrics of
                          :func:`~tradeloop.results.metrics.compute_metrics` and the run's
                          description (strategy, params, settings, symbols, start/end, cash, bars,
                          time; ``live`` for a live run; ``partial``, why, for a run
                          that stopped early)
========================  =========================================================================

Every time is an exact ISO-8601 UTC timestamp (``2024-03-01T14:30:00+00:00``; fractional seconds
only when a series has them). Numbers are rounded to what they are worth; the result in memory
keeps full precision:

==============================================  ===================================================
columns                                         written as
==============================================  ===================================================
prices (entry/exit, fill, limit, stop, trail,   6 decimals (6 significant digits below 1)
average fill)
money (equity, exposure, P&L)                   cents
commissions                                     6 decimals (per-share rates charge fractions of a
                                                cent)
quantities                                      8 decimals
``return_pct``, ``trail_percent``, drawdown     ``return_pct``/``trail_percent`` 4 decimals (in
                                                percent), ``drawdown`` 6 decimals (a fraction)
==============================================  ===================================================

CSV files always have a header row, even without data rows; ``None`` is written as an empty field.
``metrics.json`` is strict JSON: ``inf``/``-inf`` are written as the strings ``"inf"``/``"-inf"``
(``float()`` reads them back) and NaN as ``null``. :func:`tradeloop.results.load_result` reads a
directory back into a :class:`~tradeloop.results.result.BacktestResult`.
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

__all__ = [
    "iso_timestamps",
    "json_safe",
    "round_fee",
    "round_money",
    "round_price",
    "round_qty",
    "run_info",
    "write_results",
]

PRICE_DIGITS = 6
MONEY_DIGITS = 2
FEE_DIGITS = 6
QTY_DIGITS = 8
PCT_DIGITS = 4
FRACTION_DIGITS = 6

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


def _iso_optional(ts: Sequence[int | None]) -> list[str | None]:
    """:func:`iso_timestamps` of a column that may hold ``None`` (kept as ``None``)."""
    known = [(i, v) for i, v in enumerate(ts) if v is not None]
    out: list[str | None] = [None] * len(ts)
    texts = iso_timestamps([v for _, v in known])
    for (i, _), text in zip(known, texts, strict=True):
        out[i] = text
    return out


def _round(value: float | None, digits: int) -> float | None:
    if value is None:
        return None
    v = float(value)
    return round(v, digits) if math.isfinite(v) else v


def round_price(value: float | None) -> float | None:
    """A price as written: 6 decimals, or 6 significant digits for prices below 1."""
    if value is None:
        return None
    v = float(value)
    if v == 0.0 or not math.isfinite(v):
        return v
    magnitude = math.floor(math.log10(abs(v)))
    return round(v, PRICE_DIGITS if magnitude >= 0 else PRICE_DIGITS - 1 - magnitude)


def round_money(value: float | None) -> float | None:
    """An amount of money (equity, exposure, P&L) as written: cents."""
    return _round(value, MONEY_DIGITS)


def round_fee(value: float | None) -> float | None:
    """A commission as written: 6 decimals (per-share rates charge fractions of a cent)."""
    return _round(value, FEE_DIGITS)


def round_qty(value: float | None) -> float | None:
    """A quantity as written: 8 decimals."""
    return _round(value, QTY_DIGITS)


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
        "settings": dict(result.settings),
        "symbols": list(result.symbols),
        "start": stamps[0] if stamps else None,
        "end": stamps[-1] if stamps else None,
        "initial_cash": result.initial_cash,
        "final_cash": result.final_cash,
        "bars_processed": result.bars_processed,
        "elapsed_seconds": result.elapsed_seconds,
        **({"live": result.live} if result.live else {}),
        **({"partial": result.partial} if result.partial else {}),
    }


def _write_csv(path: Path, columns: tuple[str, ...], rows: Iterable[Iterable[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        w.writerows(rows)


def _trade_rows(trades: Sequence[Trade]) -> Iterable[list[object]]:
    entries = iso_timestamps([t.entry_ts for t in trades])
    exits = _iso_optional([t.exit_ts for t in trades])
    for t, entry, exit_ in zip(trades, entries, exits, strict=True):
        row = t.to_dict()  # every column, then the exact times and the rounded numbers
        row.update(
            entry_time=entry,
            exit_time=exit_,
            qty=round_qty(t.max_qty),
            entry_price=round_price(t.entry_price),
            exit_price=round_price(t.exit_price),
            pnl=round_money(t.pnl),
            commission=round_fee(t.commission),
            net_pnl=round_money(t.net_pnl),
            return_pct=_round(t.return_pct, PCT_DIGITS),
        )
        yield [row.get(c) for c in TRADE_COLUMNS]


_ORDER_PRICES = ("limit_price", "stop_price", "trail_price", "avg_fill_price")


def _order_rows(orders: Sequence[Order]) -> Iterable[list[object]]:
    created = iso_timestamps([o.created_at for o in orders])
    updated = iso_timestamps([o.updated_at for o in orders])
    for o, c_at, u_at in zip(orders, created, updated, strict=True):
        d = o.to_dict()
        d["qty"], d["filled_qty"] = round_qty(o.qty), round_qty(o.filled_qty)
        for key in _ORDER_PRICES:
            d[key] = round_price(getattr(o, key))
        d["trail_percent"] = _round(o.trail_percent, PCT_DIGITS)
        d["commission"] = round_fee(o.commission)
        d["created_at"], d["updated_at"] = c_at, u_at
        yield [d.get(c) for c in ORDER_COLUMNS]


def _fill_rows(fills: Sequence[Fill]) -> Iterable[list[object]]:
    stamps = iso_timestamps([f.ts for f in fills])
    for f, stamp in zip(fills, stamps, strict=True):
        row = f.to_dict()
        row.update(
            qty=round_qty(f.qty),
            price=round_price(f.price),
            commission=round_fee(f.commission),
            timestamp=stamp,
            position_qty=round_qty(f.position_qty),
        )
        yield [row.get(c) for c in FILL_COLUMNS]


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
            np.round(equity, MONEY_DIGITS).tolist(),
            np.round(np.asarray(result.exposure, dtype=np.float64)[:n], MONEY_DIGITS).tolist(),
            np.round(drawdown_series(equity), FRACTION_DIGITS).tolist(),
            strict=True,
        ),
    )
    _write_csv(paths["trades"], TRADE_COLUMNS, _trade_rows(result.trades))
    _write_csv(paths["orders"], ORDER_COLUMNS, _order_rows(result.orders))
    _write_csv(paths["fills"], FILL_COLUMNS, _fill_rows(result.fills))

    metric_values: dict[str, Any] = {
        k: int(v) if k in COUNT_KEYS and math.isfinite(v) else v for k, v in metrics.items()
    }
    doc = json_safe({"metrics": metric_values, "run": run_info(result)})
    text = json.dumps(doc, indent=2, allow_nan=False, default=_json_default)
    paths["metrics"].write_text(text + "\n", encoding="utf-8")
    return paths
