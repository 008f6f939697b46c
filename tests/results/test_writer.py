"""write_results: the CSV and JSON files read back to exactly what was written."""

from __future__ import annotations

import csv
import json
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest

from tradeloop.execution.types import Fill, Order, OrderSide, OrderStatus, OrderType, Trade
from tradeloop.results import BacktestResult, compute_metrics, write_results
from tradeloop.results.writer import iso_timestamps, json_safe

DAY = 86_400_000_000_000
T0 = 19_723 * DAY + 21 * 3_600_000_000_000  # 2024-01-01 21:00 UTC


def no_constants(name: str) -> NoReturn:
    raise AssertionError(f"metrics.json contains the non-JSON constant {name}")


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def as_csv_text(value: object) -> str:
    return "" if value is None else str(value)


def sample_result(**overrides: Any) -> BacktestResult:
    o1 = Order("O1", "AAPL", OrderSide.BUY, 10.0, created_at=T0)
    o1.status, o1.filled_qty, o1.avg_fill_price = OrderStatus.FILLED, 10.0, 100.0
    o1.commission = 1.0
    o1.updated_at = T0 + DAY
    o2 = Order(
        "O2", "AAPL", OrderSide.SELL, 10.0, OrderType.LIMIT, limit_price=110.5, tag="exit, take"
    )
    o2.status, o2.filled_qty, o2.avg_fill_price = OrderStatus.FILLED, 10.0, 110.5
    o2.commission = 1.0
    o3 = Order("O3", "AAPL", OrderSide.BUY, 5.0, created_at=T0 + 2 * DAY)
    o3.status, o3.reject_reason = OrderStatus.REJECTED, 'insufficient "buying power"'
    fills = [
        Fill("O1", "AAPL", OrderSide.BUY, 10.0, 100.0, 1.0, T0 + DAY),
        Fill("O2", "AAPL", OrderSide.SELL, 10.0, 110.5, 1.0, T0 + 3 * DAY),
    ]
    closed = Trade("AAPL", OrderSide.BUY, T0 + DAY)
    closed.entry_price, closed.exit_price, closed.max_qty = 100.0, 110.5, 10.0
    closed.pnl, closed.commission, closed.exit_ts = 105.0, 2.0, T0 + 3 * DAY
    still_open = Trade("AAPL", OrderSide.SELL, T0 + 3 * DAY)
    still_open.entry_price, still_open.max_qty, still_open.pnl = 110.5, 3.0, -1.5
    fields: dict[str, Any] = {
        "initial_cash": 1_000.0,
        "symbols": ("AAPL",),
        "equity_ts": [T0 + i * DAY for i in range(4)],
        "equity": [1_000.0, 1_010.0, 909.0, 1_103.0],
        "exposure": [0.0, 1_000.0, 900.0, 331.5],
        "orders": [o1, o2, o3],
        "fills": fills,
        "trades": [closed, still_open],
        "final_cash": 1_434.5,
        "bars_processed": 4,
        "elapsed_seconds": 0.125,
        "strategy_name": "Breakout",
        "params": {"window": 20, "threshold": 1.5, "symbols": ("AAPL",)},
    }
    fields.update(overrides)
    return BacktestResult(**fields)


def test_writes_all_files_into_new_nested_dir(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "first"
    paths = write_results(sample_result(), str(out))
    assert set(paths) == {"equity", "trades", "orders", "fills", "metrics"}
    assert {p.name for p in paths.values()} == {
        "equity.csv",
        "trades.csv",
        "orders.csv",
        "fills.csv",
        "metrics.json",
    }
    assert all(p.parent == out and p.is_file() for p in paths.values())
    # writing again into the existing directory overwrites
    assert write_results(sample_result(), out) == paths


def test_equity_csv_round_trip(tmp_path: Path) -> None:
    result = sample_result()
    header, rows = read_csv(write_results(result, tmp_path)["equity"])
    assert header == ["timestamp", "equity", "exposure", "drawdown"]
    assert len(rows) == 4
    assert rows[0]["timestamp"] == "2024-01-01T21:00:00+00:00"
    stamps = [datetime.fromisoformat(r["timestamp"]) for r in rows]
    assert stamps == [datetime(2024, 1, d, 21, tzinfo=UTC) for d in (1, 2, 3, 4)]
    assert all(s.tzinfo is not None and s.utcoffset() == timedelta(0) for s in stamps)
    assert [float(r["equity"]) for r in rows] == list(result.equity)
    assert [float(r["exposure"]) for r in rows] == list(result.exposure)
    # running peak 1000, 1010, 1010, 1103 -> drawdown 0, 0, 101/1010, 0
    assert [float(r["drawdown"]) for r in rows] == pytest.approx([0.0, 0.0, 0.1, 0.0])


@pytest.mark.parametrize("name", ["trades", "orders", "fills"])
def test_record_csv_round_trip(tmp_path: Path, name: str) -> None:
    result = sample_result()
    records: list[Trade] | list[Order] | list[Fill] = getattr(result, name)
    header, rows = read_csv(write_results(result, tmp_path)[name])
    expected = [r.to_dict() for r in records]
    assert header == list(expected[0])
    assert len(rows) == len(expected)
    for row, exp in zip(rows, expected, strict=True):
        assert set(row) == set(exp)
        for k, v in exp.items():
            if isinstance(v, float):  # numbers come back as written: rounded, close to exact
                assert float(row[k]) == pytest.approx(v, abs=5e-5), k
            else:  # everything else exactly as to_dict() has it (times included)
                assert row[k] == as_csv_text(v), k


def test_numbers_are_rounded_to_what_they_are_worth(tmp_path: Path) -> None:
    o1 = Order(
        "O1", "AAPL", OrderSide.BUY, 181.000000000004, OrderType.LIMIT, limit_price=0.1 + 0.2
    )
    o1.status, o1.filled_qty, o1.avg_fill_price = OrderStatus.FILLED, 181.0, 131.505724999999996
    o1.commission = 2.6149999999999998
    fill = Fill("O1", "AAPL", OrderSide.BUY, 181.0, 131.505724999999996, 2.6149999999999998, T0)
    penny = Fill("O2", "PENNY", OrderSide.BUY, 1e6, 0.000123456789, 0.0, T0)
    trade = Trade("AAPL", OrderSide.BUY, T0)
    trade.entry_price, trade.exit_price = 131.505724999999996, 133.95299000000003
    trade.max_qty, trade.pnl, trade.commission = 181.0, 442.9558700000057, 2.0
    trade.exit_ts = T0 + DAY
    result = sample_result(
        orders=[o1],
        fills=[fill, penny],
        trades=[trade],
        equity=[1_000.0, 1_010.123456, 909.999, 1_103.0049],
        exposure=[0.0, 1_000.004, 900.0, 331.5],
    )
    paths = write_results(result, tmp_path)
    _, trades = read_csv(paths["trades"])
    assert trades[0]["entry_price"] == "131.505725"  # 6 decimals
    assert trades[0]["exit_price"] == "133.95299"  # float noise gone
    assert trades[0]["pnl"] == "442.96"  # money: cents
    assert trades[0]["net_pnl"] == "440.96"
    assert trades[0]["return_pct"] == "1.861"  # percent, 4 decimals
    _, fills = read_csv(paths["fills"])
    assert fills[0]["price"] == "131.505725"
    assert fills[0]["commission"] == "2.615"  # fractions of a cent are kept (6 decimals)
    assert fills[1]["price"] == "0.000123457"  # below 1: 6 significant digits
    _, orders = read_csv(paths["orders"])
    assert orders[0]["qty"] == "181.0"
    assert orders[0]["limit_price"] == "0.3"
    assert orders[0]["avg_fill_price"] == "131.505725"
    _, equity = read_csv(paths["equity"])
    assert [r["equity"] for r in equity] == ["1000.0", "1010.12", "910.0", "1103.0"]
    assert [r["exposure"] for r in equity] == ["0.0", "1000.0", "900.0", "331.5"]
    assert equity[2]["drawdown"] == "0.099121"  # (1010.123456 - 909.999) / 1010.123456
    # full precision stays in memory
    assert result.equity[1] == 1_010.123456
    assert trade.exit_price == 133.95299000000003


def test_every_time_is_an_exact_iso_timestamp(tmp_path: Path) -> None:
    ns = T0 + 123_456_789  # a fraction of a second, to the nanosecond
    order = Order("O1", "AAPL", OrderSide.BUY, 1.0, created_at=ns)
    order.updated_at = ns + 1
    trade = Trade("AAPL", OrderSide.BUY, ns)
    trade.exit_ts = ns + DAY
    fill = Fill("O1", "AAPL", OrderSide.BUY, 1.0, 100.0, 0.0, ns)
    result = sample_result(orders=[order], fills=[fill], trades=[trade])
    paths = write_results(result, tmp_path)
    stamp = "2024-01-01T21:00:00.123456789+00:00"
    _, orders = read_csv(paths["orders"])
    assert orders[0]["created_at"] == stamp
    assert orders[0]["updated_at"] == "2024-01-01T21:00:00.123456790+00:00"
    _, trades = read_csv(paths["trades"])
    assert trades[0]["entry_time"] == stamp
    assert trades[0]["exit_time"] == "2024-01-02T21:00:00.123456789+00:00"
    _, fills = read_csv(paths["fills"])
    assert fills[0]["timestamp"] == stamp
    iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")
    for name, columns in (
        ("orders", ("created_at", "updated_at")),
        ("trades", ("entry_time",)),
        ("fills", ("timestamp",)),
        ("equity", ("timestamp",)),
    ):
        for row in read_csv(paths[name])[1]:
            for column in columns:
                assert iso.match(row[column]), (name, column, row[column])


def test_trades_csv_content(tmp_path: Path) -> None:
    _, rows = read_csv(write_results(sample_result(), tmp_path)["trades"])
    assert rows[0]["direction"] == "long"
    assert float(rows[0]["net_pnl"]) == 103.0
    assert float(rows[0]["return_pct"]) == pytest.approx(10.5)
    assert rows[0]["exit_time"] == "2024-01-04T21:00:00+00:00"
    assert rows[1]["direction"] == "short"
    assert rows[1]["exit_time"] == ""  # open trade
    assert rows[1]["exit_price"] == ""


def test_orders_csv_quotes_commas_and_quotes(tmp_path: Path) -> None:
    _, rows = read_csv(write_results(sample_result(), tmp_path)["orders"])
    assert rows[1]["tag"] == "exit, take"
    assert rows[1]["limit_price"] == "110.5"
    assert rows[2]["reject_reason"] == 'insufficient "buying power"'
    assert rows[2]["status"] == "rejected"


def test_empty_result_writes_headers(tmp_path: Path) -> None:
    empty = sample_result(
        equity_ts=[], equity=[], exposure=[], orders=[], fills=[], trades=[], final_cash=1_000.0
    )
    paths = write_results(empty, tmp_path)
    for name, sample in (
        ("trades", Trade("X", OrderSide.BUY, 0)),
        ("orders", Order("O", "X", OrderSide.BUY, 1.0)),
        ("fills", Fill("O", "X", OrderSide.BUY, 1.0, 1.0, 0.0, 0)),
    ):
        header, rows = read_csv(paths[name])
        assert header == list(sample.to_dict()), name
        assert rows == []
    header, rows = read_csv(paths["equity"])
    assert header == ["timestamp", "equity", "exposure", "drawdown"]
    assert rows == []
    doc = json.loads(paths["metrics"].read_text(), parse_constant=no_constants)
    assert doc["run"]["start"] is None
    assert doc["run"]["end"] is None
    assert doc["metrics"]["final_equity"] == 1_000.0
    assert doc["metrics"]["num_trades"] == 0


def test_metrics_json_round_trip(tmp_path: Path) -> None:
    result = sample_result()
    text = write_results(result, tmp_path)["metrics"].read_text(encoding="utf-8")
    doc = json.loads(text, parse_constant=no_constants)
    assert set(doc) == {"metrics", "run"}

    expected = compute_metrics(result)
    assert expected["profit_factor"] == math.inf  # one winning trade, no losers
    got = doc["metrics"]
    assert list(got) == list(expected)
    assert got["profit_factor"] == "inf"
    assert float(got["profit_factor"]) == math.inf
    for key, value in expected.items():
        if key != "profit_factor":
            assert got[key] == value, key
    assert got["num_trades"] == 1 and isinstance(got["num_trades"], int)
    assert got["num_orders"] == 3 and isinstance(got["num_orders"], int)
    assert got["num_rejected"] == 1 and isinstance(got["num_rejected"], int)
    assert got["total_return"] == pytest.approx(0.103)
    assert got["max_drawdown"] == pytest.approx(0.1)

    assert doc["run"] == {
        "strategy_name": "Breakout",
        "params": {"window": 20, "threshold": 1.5, "symbols": ["AAPL"]},
        "settings": {},
        "symbols": ["AAPL"],
        "start": "2024-01-01T21:00:00+00:00",
        "end": "2024-01-04T21:00:00+00:00",
        "initial_cash": 1_000.0,
        "final_cash": 1_434.5,
        "bars_processed": 4,
        "elapsed_seconds": 0.125,
    }


def test_metrics_json_maps_non_finite_values(tmp_path: Path) -> None:
    metrics = {"sharpe": math.nan, "profit_factor": math.inf, "calmar": -math.inf, "cagr": 0.5}
    params = {"lookback": np.int64(5), "scale": np.float64(math.nan), "weights": np.array([1.5])}
    result = sample_result(params=params)
    text = write_results(result, tmp_path, metrics=metrics)["metrics"].read_text()
    assert "NaN" not in text and "Infinity" not in text
    doc = json.loads(text, parse_constant=no_constants)
    assert doc["metrics"] == {"sharpe": None, "profit_factor": "inf", "calmar": "-inf", "cagr": 0.5}
    assert doc["run"]["params"] == {"lookback": 5, "scale": None, "weights": [1.5]}


def test_settings_are_written_to_metrics_json(tmp_path: Path) -> None:
    settings = {
        "commission": {"type": "per_share", "rate": 0.005},
        "participation_rate": None,
        "leverage": 2.0,
        "allow_short": False,
        "max_loss": math.inf,
    }
    doc = json.loads(
        write_results(sample_result(settings=settings), tmp_path)["metrics"].read_text(),
        parse_constant=no_constants,
    )
    assert doc["run"]["settings"] == {**settings, "max_loss": "inf"}


def test_unserialisable_params_fall_back_to_str(tmp_path: Path) -> None:
    result = sample_result(params={"path": Path("/data/x.csv"), "side": OrderSide.BUY})
    doc = json.loads(write_results(result, tmp_path)["metrics"].read_text())
    assert doc["run"]["params"] == {"path": "/data/x.csv", "side": "buy"}


def test_iso_timestamps_exact() -> None:
    assert iso_timestamps([]) == []
    assert iso_timestamps([0, DAY]) == ["1970-01-01T00:00:00+00:00", "1970-01-02T00:00:00+00:00"]
    assert iso_timestamps([1_500_000]) == ["1970-01-01T00:00:00.001500+00:00"]
    ns = 1_700_000_000_123_456_789
    assert iso_timestamps([ns]) == ["2023-11-14T22:13:20.123456789+00:00"]
    assert datetime.fromisoformat(iso_timestamps([T0])[0]) == datetime(2024, 1, 1, 21, tzinfo=UTC)


def test_json_safe() -> None:
    assert json_safe({"a": (1.0, math.inf), 2: {"b": -math.inf, "c": math.nan}}) == {
        "a": [1.0, "inf"],
        "2": {"b": "-inf", "c": None},
    }
    assert json_safe(np.bool_(True)) is True
    assert json_safe("text") == "text"
