"""Read a directory written by :func:`~tradeloop.results.writer.write_results` back.

:func:`load_result` rebuilds the :class:`~tradeloop.results.result.BacktestResult`: orders, fills,
trades and the equity curve from the CSV files, and the run's description (cash, symbols,
strategy, params, settings, bars, time, ``live``) from ``metrics.json``. Numbers come back as
written (prices to 6 decimals, money to cents, ...: see :mod:`tradeloop.results.writer`), times
exactly. What the files do not keep is not restored: an order's simulation state (eligibility,
trailing reference) and a trade's running notionals.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tradeloop.errors import DataError
from tradeloop.execution.types import (
    Fill,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
    Trade,
)
from tradeloop.results.result import BacktestResult
from tradeloop.results.writer import EQUITY_COLUMNS, FILL_COLUMNS, ORDER_COLUMNS

__all__ = ["load_result", "parse_iso_timestamps"]

T = TypeVar("T")

# the columns each file must have (what the records are rebuilt from); others are ignored
TRADE_FIELDS = (
    "symbol",
    "direction",
    "entry_time",
    "exit_time",
    "qty",
    "entry_price",
    "exit_price",
    "pnl",
    "commission",
)
# columns added later: a file written before them still loads (their defaults)
_LATER_COLUMNS = frozenset({"order_class", "parent_id", "position_qty"})
ORDER_FIELDS = tuple(c for c in ORDER_COLUMNS if c not in _LATER_COLUMNS)
FILL_FIELDS = tuple(c for c in FILL_COLUMNS if c not in _LATER_COLUMNS)

_NS_PER_SECOND = 10**9
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _parse_one(text: str) -> int:
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _NS_PER_SECOND + delta.microseconds * 1_000


def parse_iso_timestamps(texts: Sequence[str]) -> list[int]:
    """ISO-8601 timestamps -> int ns since the epoch, exactly (the inverse of
    :func:`~tradeloop.results.writer.iso_timestamps`).

    UTC stamps (``+00:00`` or ``Z``, or none) go through numpy and keep nanoseconds; other
    offsets are converted to UTC with :mod:`datetime` (microsecond precision).
    """
    if not texts:
        return []
    bare: list[str] = []
    for text in texts:
        if text.endswith("+00:00"):
            bare.append(text[:-6])
        elif text.endswith("Z"):
            bare.append(text[:-1])
        elif "T" in text and ("+" in text[10:] or "-" in text[10:]):
            return [_parse_one(t) for t in texts]  # some stamp has another offset
        else:
            bare.append(text)
    try:
        arr = np.array(bare, dtype="datetime64[ns]")
    except ValueError as exc:
        raise DataError("timestamp", texts[0], f"not an ISO-8601 timestamp ({exc})") from None
    values: list[int] = arr.astype(np.int64).tolist()
    return values


def _read_rows(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (written by write_results)")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise DataError(path.name, ", ".join(missing), "missing columns")
        return list(reader)


def _opt_str(text: str) -> str | None:
    return text if text != "" else None


def _opt_float(text: str) -> float | None:
    return float(text) if text != "" else None


def _field(path: Path, row: int, column: str, text: str, parse: Callable[[str], T]) -> T:
    try:
        return parse(text)
    except ValueError:
        raise DataError(f"{path.name} row {row + 1} {column}", text, "cannot be read") from None


def _load_trades(path: Path) -> list[Trade]:
    rows = _read_rows(path, TRADE_FIELDS)
    entries = parse_iso_timestamps([r["entry_time"] for r in rows])
    exits_known = [r["exit_time"] for r in rows if r["exit_time"]]
    exits = iter(parse_iso_timestamps(exits_known))
    trades: list[Trade] = []
    for i, (r, entry) in enumerate(zip(rows, entries, strict=True)):
        side = OrderSide.BUY if r["direction"] == "long" else OrderSide.SELL
        t = Trade(r["symbol"], side, entry)
        t.exit_ts = next(exits) if r["exit_time"] else None
        t.max_qty = _field(path, i, "qty", r["qty"], float)
        t.entry_price = _field(path, i, "entry_price", r["entry_price"], float)
        t.exit_price = _field(path, i, "exit_price", r["exit_price"], _opt_float)
        t.pnl = _field(path, i, "pnl", r["pnl"], float)
        t.commission = _field(path, i, "commission", r["commission"], float)
        trades.append(t)
    return trades


def _load_orders(path: Path) -> list[Order]:
    rows = _read_rows(path, ORDER_FIELDS)
    created = parse_iso_timestamps([r["created_at"] for r in rows])
    updated = parse_iso_timestamps([r["updated_at"] for r in rows])
    orders: list[Order] = []
    for i, r in enumerate(rows):

        def num(column: str, row: dict[str, str] = r, index: int = i) -> float | None:
            return _field(path, index, column, row[column], _opt_float)

        o = Order(
            r["id"],
            r["symbol"],
            _field(path, i, "side", r["side"], OrderSide),
            _field(path, i, "qty", r["qty"], float),
            _field(path, i, "type", r["type"], OrderType),
            _field(path, i, "tif", r["tif"], TimeInForce),
            limit_price=num("limit_price"),
            stop_price=num("stop_price"),
            trail_price=num("trail_price"),
            trail_percent=num("trail_percent"),
            client_order_id=r["client_order_id"],
            tag=_opt_str(r["tag"]),
            created_at=created[i],
        )
        o.status = _field(path, i, "status", r["status"], OrderStatus)
        o.filled_qty = _field(path, i, "filled_qty", r["filled_qty"], float)
        o.avg_fill_price = num("avg_fill_price")
        o.commission = _field(path, i, "commission", r["commission"], float)
        o.updated_at = updated[i]
        o.reject_reason = _opt_str(r["reject_reason"])
        o.replaces = _opt_str(r["replaces"])
        o.replaced_by = _opt_str(r["replaced_by"])
        o.broker_order_id = _opt_str(r["broker_order_id"])
        o.order_class = _field(path, i, "order_class", r.get("order_class") or "simple", OrderClass)
        o.parent_id = _opt_str(r.get("parent_id") or "")
        orders.append(o)
    by_id = {o.id: o for o in orders}
    for o in orders:  # a leg back in its parent's legs (take-profit first, as written)
        parent = by_id.get(o.parent_id or "")
        if parent is not None:
            parent.legs = (*parent.legs, o)
    return orders


def _load_fills(path: Path) -> list[Fill]:
    rows = _read_rows(path, FILL_FIELDS)
    stamps = parse_iso_timestamps([r["timestamp"] for r in rows])
    return [
        Fill(
            r["order_id"],
            r["symbol"],
            _field(path, i, "side", r["side"], OrderSide),
            _field(path, i, "qty", r["qty"], float),
            _field(path, i, "price", r["price"], float),
            _field(path, i, "commission", r["commission"], float),
            ts,
            execution_id=r["execution_id"],
            position_qty=_field(path, i, "position_qty", r.get("position_qty") or "", _opt_float),
        )
        for i, (r, ts) in enumerate(zip(rows, stamps, strict=True))
    ]


def _number(run: dict[str, Any], key: str, default: float) -> float:
    value = run.get(key, default)
    try:
        return float(value if value is not None else math.nan)
    except (TypeError, ValueError):
        raise DataError(f"metrics.json run.{key}", value, "not a number") from None


def load_result(directory: str | Path) -> BacktestResult:
    """The :class:`BacktestResult` whose files :func:`write_results` wrote into ``directory``.

    Raises FileNotFoundError when a file is missing and DataError when one cannot be read.
    """
    out = Path(directory)
    meta_path = out / "metrics.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found (written by write_results)")
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError("metrics.json", str(meta_path), f"not JSON ({exc})") from None
    run = doc.get("run") if isinstance(doc, dict) else None
    if not isinstance(run, dict):
        raise DataError("metrics.json", str(meta_path), 'has no "run" object')

    rows = _read_rows(out / "equity.csv", EQUITY_COLUMNS)
    equity_ts = parse_iso_timestamps([r["timestamp"] for r in rows])
    equity = [float(r["equity"]) for r in rows]
    exposure = [float(r["exposure"]) for r in rows]
    initial_cash = _number(run, "initial_cash", equity[0] if equity else 0.0)
    return BacktestResult(
        initial_cash=initial_cash,
        symbols=tuple(str(s) for s in run.get("symbols", ())),
        equity_ts=equity_ts,
        equity=equity,
        exposure=exposure,
        orders=_load_orders(out / "orders.csv"),
        fills=_load_fills(out / "fills.csv"),
        trades=_load_trades(out / "trades.csv"),
        final_cash=_number(run, "final_cash", initial_cash),
        bars_processed=int(_number(run, "bars_processed", 0)),
        elapsed_seconds=_number(run, "elapsed_seconds", 0.0),
        strategy_name=str(run.get("strategy_name") or ""),
        params=dict(run.get("params") or {}),
        live=dict(run.get("live") or {}),
        settings=dict(run.get("settings") or {}),
        partial=str(run.get("partial") or ""),
    )
