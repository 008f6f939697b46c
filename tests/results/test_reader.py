"""load_result: what write_results wrote comes back as a BacktestResult."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradeloop.data.feed import BarFeed
from tradeloop.errors import DataError
from tradeloop.execution.types import Fill, Order, Trade
from tradeloop.results import BacktestResult, load_result, write_results
from tradeloop.results.reader import parse_iso_timestamps
from tradeloop.results.writer import iso_timestamps

DAY = 86_400_000_000_000
Scenario = tuple[BacktestResult, BarFeed]

# what the files keep of each record: every field of to_dict() (times included, exactly)
MONEY = {"pnl", "net_pnl", "equity", "exposure"}


def close(a: object, b: object, key: str) -> bool:
    """Equal, or for floats equal within what the writer's rounding keeps."""
    if isinstance(a, float) and isinstance(b, float):
        tol = 0.005 if key in MONEY else 5e-5 if key in ("return_pct", "trail_percent") else 5e-7
        return abs(a - b) <= tol + 1e-9 * abs(b)
    return a == b


def assert_same_records(
    got: list[Trade] | list[Order] | list[Fill], want: list[Trade] | list[Order] | list[Fill]
) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        gd, wd = g.to_dict(), w.to_dict()
        assert list(gd) == list(wd)
        bad = {k: (gd[k], wd[k]) for k in wd if not close(gd[k], wd[k], k)}
        assert not bad, bad


def assert_round_trip(result: BacktestResult, loaded: BacktestResult) -> None:
    assert_same_records(loaded.trades, result.trades)
    assert_same_records(loaded.orders, result.orders)
    assert_same_records(loaded.fills, result.fills)
    assert [t.entry_ts for t in loaded.trades] == [t.entry_ts for t in result.trades]
    assert [t.exit_ts for t in loaded.trades] == [t.exit_ts for t in result.trades]
    assert [f.ts for f in loaded.fills] == [f.ts for f in result.fills]
    assert [o.created_at for o in loaded.orders] == [o.created_at for o in result.orders]
    assert [o.updated_at for o in loaded.orders] == [o.updated_at for o in result.orders]
    assert list(loaded.equity_ts) == list(result.equity_ts)
    assert list(loaded.equity) == pytest.approx(list(result.equity), abs=0.005)
    assert list(loaded.exposure) == pytest.approx(list(result.exposure), abs=0.005)
    for name in ("initial_cash", "final_cash", "bars_processed", "elapsed_seconds"):
        assert getattr(loaded, name) == getattr(result, name), name
    assert loaded.symbols == result.symbols
    assert loaded.strategy_name == result.strategy_name


def test_round_trip_of_the_scenario(tmp_path: Path, scenario: Scenario) -> None:
    result = scenario[0]
    result.live = {"broker": "simulated", "reconnects": 2}
    write_results(result, tmp_path)
    loaded = load_result(tmp_path)
    assert_round_trip(result, loaded)
    assert loaded.params == result.params
    assert loaded.settings == result.settings
    assert loaded.live == result.live
    assert [t.is_closed for t in loaded.trades] == [True, True, True, False]
    assert [o.reject_reason for o in loaded.orders] == [o.reject_reason for o in result.orders]
    assert loaded.metrics() == pytest.approx(result.metrics())
    assert repr(loaded) == repr(result)


def test_round_trip_of_a_real_backtest(tmp_path: Path) -> None:
    from tradeloop.data.sample import load_sample
    from tradeloop.execution import PercentSlippage, PerShareCommission, SyncEngine
    from tradeloop.strategies import SmaCross

    feed = load_sample("daily")
    result = SyncEngine(
        feed,
        SmaCross(fast=10, slow=30, allow_short=True),
        initial_cash=100_000,
        commission=PerShareCommission(0.005, minimum=1.0),
        slippage=PercentSlippage(0.0005),
        participation_rate=0.1,
    ).run()
    assert len(result.trades) > 50 and any(not t.is_closed for t in result.trades)
    write_results(result, tmp_path / "run")
    loaded = load_result(tmp_path / "run")
    assert_round_trip(result, loaded)
    got, want = loaded.metrics(), result.metrics()
    assert got["num_trades"] == want["num_trades"]
    assert got["total_return"] == pytest.approx(want["total_return"], abs=1e-7)
    assert got["sharpe"] == pytest.approx(want["sharpe"], rel=1e-4)
    assert loaded.trades_df()["net_pnl"].sum() == pytest.approx(
        result.trades_df()["net_pnl"].sum(), abs=0.005 * len(result.trades)
    )


def test_loaded_result_writes_the_same_files(tmp_path: Path, scenario: Scenario) -> None:
    write_results(scenario[0], tmp_path / "a")
    write_results(load_result(tmp_path / "a"), tmp_path / "b")
    for name in ("equity.csv", "trades.csv", "orders.csv", "fills.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text(), name
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a["run"] == b["run"]


def test_parse_iso_timestamps_is_exact() -> None:
    stamps = [0, DAY, 1_700_000_000_123_456_789, 1_500_000]
    assert parse_iso_timestamps(iso_timestamps(stamps)) == stamps
    assert parse_iso_timestamps(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00"]) == [
        19_723 * DAY,
        19_723 * DAY,
    ]
    # another offset goes through datetime
    assert parse_iso_timestamps(["2024-01-01T01:00:00+01:00"]) == [19_723 * DAY]
    assert parse_iso_timestamps([]) == []
    with pytest.raises(DataError, match="not an ISO-8601 timestamp"):
        parse_iso_timestamps(["yesterday"])


def test_missing_files_and_bad_content(tmp_path: Path, scenario: Scenario) -> None:
    with pytest.raises(FileNotFoundError, match=r"metrics\.json not found"):
        load_result(tmp_path / "nowhere")
    write_results(scenario[0], tmp_path)
    (tmp_path / "fills.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"fills\.csv not found"):
        load_result(tmp_path)
    write_results(scenario[0], tmp_path)
    text = (tmp_path / "trades.csv").read_text().replace(",120.0,", ",lots,", 1)
    (tmp_path / "trades.csv").write_text(text)
    with pytest.raises(DataError, match=r"trades\.csv row 1 exit_price"):
        load_result(tmp_path)
    write_results(scenario[0], tmp_path)
    (tmp_path / "orders.csv").write_text("id,symbol\nO1,X\n")
    with pytest.raises(DataError, match="missing columns"):
        load_result(tmp_path)
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(DataError, match="not JSON"):
        load_result(tmp_path)


def test_round_trip_keeps_order_classes_and_positions_after_fills(tmp_path: Path) -> None:
    from tradeloop.data.sample import load_sample
    from tradeloop.execution import SyncEngine
    from tradeloop.execution.types import Bar, OrderClass
    from tradeloop.strategy import Context, Strategy

    class Brackets(Strategy):
        def on_bar(self, ctx: Context, bar: Bar) -> None:
            if not ctx.position(bar.symbol).qty and not ctx.open_orders(bar.symbol):
                c = round(bar.close, 2)
                ctx.buy(
                    bar.symbol,
                    10,
                    order_class="bracket",
                    take_profit={"limit_price": round(c * 1.04, 2)},
                    stop_loss={"stop_price": round(c * 0.97, 2)},
                )

    result = SyncEngine(load_sample("daily"), Brackets(), initial_cash=100_000).run()
    write_results(result, tmp_path)
    loaded = load_result(tmp_path)
    assert_round_trip(result, loaded)
    entries = [o for o in loaded.orders if o.legs]
    assert entries and all(o.order_class is OrderClass.BRACKET for o in loaded.orders)
    want = {o.id: [leg.id for leg in o.legs] for o in result.orders if o.legs}
    assert {o.id: [leg.id for leg in o.legs] for o in entries} == want
    assert all(leg.parent_id == o.id for o in entries for leg in o.legs)
    assert [f.position_qty for f in loaded.fills] == [f.position_qty for f in result.fills]
    assert None not in [f.position_qty for f in loaded.fills]
