"""Engine factory: building engines directly and from configs, in every mode."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import tradeloop.execution as ex
from tradeloop.config import parse_config
from tradeloop.data.feed import BarFeed
from tradeloop.errors import ConfigError
from tradeloop.execution.asynchronous import AsyncExecutionEngine, SimulatedBroker
from tradeloop.execution.core.costs import PercentSlippage, PerShareCommission
from tradeloop.execution.factory import (
    __all__ as factory_all,
)
from tradeloop.execution.factory import (
    create_async_engine,
    create_backtest_engine,
    create_engine,
    create_live_engine,
    create_sync_engine,
)
from tradeloop.execution.synchronous import SyncExecutionEngine
from tradeloop.results.result import BacktestResult
from tradeloop.strategies import BuyAndHold, SmaCross

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SMALL: dict[str, Any] = {
    "execution": {"mode": "backtest", "initial_cash": 25_000},
    "data": {"sample": "daily", "symbols": ["ACME"], "start": "2022-01-01", "end": "2022-12-31"},
    "strategy": {"name": "sma_cross", "params": {"fast": 5, "slow": 20}},
    "costs": {
        "commission": {"type": "per_share", "rate": 0.005, "minimum": 1.0},
        "slippage": {"type": "percent", "rate": 0.0005},
    },
}


def tiny_feed(n: int = 60) -> BarFeed:
    closes = [100.0 + (i % 20) - (i % 7) for i in range(n)]
    return BarFeed.from_arrays(
        "TINY",
        [(i + 1) * 86_400 * 10**9 for i in range(n)],
        closes,
        [c + 1 for c in closes],
        [c - 1 for c in closes],
        closes,
        [1e6] * n,
    )


def test_aliases_and_exports() -> None:
    assert create_backtest_engine is create_sync_engine
    assert create_live_engine is create_async_engine
    assert {
        "create_async_engine",
        "create_backtest_engine",
        "create_engine",
        "create_live_engine",
        "create_sync_engine",
    } <= set(factory_all)
    assert ex.create_engine is create_engine
    assert ex.create_sync_engine is create_sync_engine
    assert ex.create_async_engine is create_async_engine
    assert ex.create_live_engine is create_async_engine
    assert ex.create_backtest_engine is create_sync_engine


def test_create_sync_engine_passes_kwargs() -> None:
    engine = create_sync_engine(
        tiny_feed(), SmaCross(fast=2, slow=5), initial_cash=5_000.0, leverage=2.0
    )
    assert isinstance(engine, SyncExecutionEngine)
    assert engine.portfolio.initial_cash == 5_000.0
    result = engine.run()
    assert result.bars_processed == 60


def test_create_sync_engine_rejects_bad_kwargs() -> None:
    with pytest.raises(ConfigError) as info:
        create_sync_engine(tiny_feed(), SmaCross(), initial_cash=-1.0)
    assert info.value.field == "initial_cash"


@pytest.mark.parametrize("mode", ["live", "async"])
def test_async_modes_build_the_async_engine_on_a_simulated_broker(mode: str) -> None:
    engine = create_engine(dict(SMALL, execution={"mode": mode, "initial_cash": 25_000}))
    assert isinstance(engine, AsyncExecutionEngine)
    assert isinstance(engine.broker, SimulatedBroker)
    assert engine.symbols == ("ACME",)
    assert isinstance(engine.strategy, SmaCross)
    exchange = engine.broker.exchange
    assert exchange.portfolio.initial_cash == 25_000.0
    assert isinstance(exchange.commission, PerShareCommission)
    assert isinstance(exchange.slippage, PercentSlippage)


def test_async_config_run_equals_the_backtest_of_the_same_config() -> None:
    backtest = create_engine(SMALL)
    assert isinstance(backtest, SyncExecutionEngine)
    expected = backtest.run()
    engine = create_engine(dict(SMALL, execution={"mode": "live", "initial_cash": 25_000}))
    assert isinstance(engine, AsyncExecutionEngine)
    got = asyncio.run(engine.run())
    assert got.fills and [f.to_dict() for f in got.fills] == [f.to_dict() for f in expected.fills]
    assert list(got.equity) == list(expected.equity)


def test_create_async_engine_passes_kwargs() -> None:
    broker = SimulatedBroker(tiny_feed())
    engine = create_async_engine(broker, BuyAndHold(), run_id="r1", cancel_on_stop=True)
    assert engine.broker is broker and engine.run_id == "r1" and engine.cancel_on_stop
    assert engine.symbols == ("TINY",)


def test_async_modes_without_aiohttp_name_the_extra() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["aiohttp"] = None  # importing aiohttp now fails, as if not installed
        from tradeloop.errors import ConfigError
        from tradeloop.execution import create_engine, create_async_engine, _ASYNC_AVAILABLE
        print(_ASYNC_AVAILABLE)
        cfg = {"execution": {"mode": "live"}, "data": {"sample": "daily"},
               "strategy": {"name": "buy_and_hold"}}
        try:
            create_engine(cfg)
        except ConfigError as exc:
            print(exc.field, exc.value, "|", exc.reason)
        try:
            create_async_engine(None, None)
        except ConfigError as exc:
            print(exc.field, "|", exc.reason)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "False"
    assert lines[1].startswith("execution.mode live |")
    assert "pip install 'tradeloop[live]'" in lines[1]
    assert lines[2].startswith("mode |") and "tradeloop[live]" in lines[2]


def test_create_engine_from_mapping_applies_config() -> None:
    engine = create_engine(SMALL)
    assert engine.feed.symbols == ("ACME",)
    assert isinstance(engine.strategy, SmaCross)
    assert engine.strategy.params["slow"] == 20
    assert engine.portfolio.initial_cash == 25_000.0
    assert isinstance(engine.manager.commission, PerShareCommission)
    assert isinstance(engine.manager.slippage, PercentSlippage)


def test_create_engine_from_config_object_with_overrides() -> None:
    cfg = parse_config(SMALL)
    strategy = BuyAndHold()
    engine = create_engine(cfg, feed=tiny_feed(), strategy=strategy)
    assert engine.feed.symbols == ("TINY",)
    assert engine.strategy is strategy
    result = engine.run()
    assert result.bars_processed == 60


def test_create_engine_from_path_runs(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        textwrap.dedent(
            """
            execution: {mode: sync, participation_rate: 0.1}
            data: {sample: daily, symbols: [ACME, BOLT], start: 2021-01-01, end: 2021-12-31}
            strategy: {name: sma_cross, params: {fast: 5, slow: 20}}
            costs: {commission: {type: fixed, amount: 1.0}}
            """
        ),
        encoding="utf-8",
    )
    for source in (path, str(path)):
        result = create_engine(source).run()
        assert isinstance(result, BacktestResult)
        assert result.symbols == ("ACME", "BOLT")
        assert result.bars_processed > 400
        assert result.orders
        assert result.strategy_name == "SmaCross"


def test_create_engine_example_custom_strategy_trades() -> None:
    result = create_engine(EXAMPLES / "custom_strategy.yaml").run()
    types = {o.type.value for o in result.orders}
    assert {"limit", "stop"} <= types
    assert result.fills


def test_create_engine_rejects_other_types() -> None:
    with pytest.raises(ConfigError) as info:
        create_engine(42)  # type: ignore[arg-type]
    assert info.value.field == "config"


def test_create_engine_invalid_config_raises_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        create_engine(dict(SMALL, execution={"initial_cash": 0}))
    assert info.value.field == "execution.initial_cash"


def test_factory_import_is_light() -> None:
    code = textwrap.dedent(
        """
        import sys
        import tradeloop.execution.factory
        heavy = ("asyncio", "aiohttp", "pandas", "pydantic", "yaml")
        print(sorted(m for m in heavy if m in sys.modules))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
