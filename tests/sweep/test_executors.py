"""Executors: the local pool gives the serial table; failures, dead workers, Ctrl-C, cleanup."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tradeloop.config import build_feed, parse_config
from tradeloop.errors import ConfigError
from tradeloop.sweep import SweepInterrupted, sweep
from tradeloop.sweep.executors import WORKER_DIED, LocalExecutor
from tradeloop.sweep.runner import FeedArrays, RunOutcome, RunSpec

from .conftest import small_config  # type: ignore[import-not-found]

GRID = {"fast": [5, 10, 20], "slow": [15, 30, 60]}


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))


def test_local_pool_equals_serial() -> None:
    serial = sweep(small_config(), GRID, constraint="fast < slow", executor="serial")
    local = sweep(small_config(), GRID, constraint="fast < slow", max_workers=2)
    assert len(serial.table) == 8 and serial.n_failed == 0
    _same(serial.table, local.table)
    assert local.best_params == serial.best_params
    assert list(serial.table["run"]) == list(range(8))
    assert sorted(serial.table["rank"]) == list(range(1, 9))
    best = serial.table.loc[serial.table["rank"] == 1, "sharpe"].iloc[0]
    assert best == serial.table["sharpe"].max()
    assert local.executor == "local" and local.workers == 2


def test_failures_are_rows_and_dead_workers_are_found(flaky_config: dict[str, Any]) -> None:
    grid = {"boom": [0, 1, 2, 0], "size": [5]}
    with pytest.raises(ConfigError, match="duplicate"):
        sweep(flaky_config, grid, executor="serial")
    grid = {"boom": [0, 1, 2, 3], "size": [5]}
    res = sweep(flaky_config, grid, max_workers=2)
    t = res.table.set_index("boom")
    assert t.loc[0, "error"] == "" and t.loc[3, "error"] == ""
    assert "StrategyError: strategy callback on_bar" in t.loc[1, "error"]
    assert "ValueError: boom on purpose" in t.loc[1, "error"]
    assert t.loc[2, "error"] == WORKER_DIED
    assert res.n_failed == 2 and res.best_params is not None
    assert pd.isna(t.loc[1, "sharpe"]) and pd.isna(t.loc[1, "rank"])
    assert "boom on purpose" in res.tracebacks[1]  # the full traceback, kept aside


def test_shared_memory_is_released_also_on_interrupt() -> None:
    cfg = parse_config(small_config())
    arrays = FeedArrays.from_feed(build_feed(cfg))
    from tradeloop.sweep.core import plan

    p = plan(cfg, {"fast": [5, 10, 15, 20]})
    with LocalExecutor(arrays, max_workers=2) as ex:
        name = ex.shm_name
        assert name is not None
        shared_memory.SharedMemory(name=name).close()  # exists while the executor is open
        outs = list(ex.run(p.template, [RunSpec(i, q) for i, q in enumerate(p.points)]))
        assert sorted(o.index for o in outs) == [0, 1, 2, 3] and all(o.ok for o in outs)
    with pytest.raises(FileNotFoundError):
        shared_memory.SharedMemory(name=name)

    seen: list[RunOutcome] = []
    with pytest.raises(KeyboardInterrupt), LocalExecutor(arrays, max_workers=2) as ex:
        name = ex.shm_name
        procs = list(getattr(ex._pool, "_processes", {}).values())
        for out in ex.run(p.template, [RunSpec(i, q) for i, q in enumerate(p.points * 5)]):
            seen.append(out)
            procs = list(getattr(ex._pool, "_processes", {}).values())
            raise KeyboardInterrupt
    assert len(seen) == 1
    with pytest.raises(FileNotFoundError):
        shared_memory.SharedMemory(name=name)
    assert procs and not any(p.is_alive() for p in procs)


def test_ctrl_c_keeps_what_finished() -> None:
    def stop_after_three(done: int, total: int, out: RunOutcome) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(SweepInterrupted) as stop:
        sweep(
            small_config(), {"fast": [2, 3, 4, 5, 6, 7]}, progress=stop_after_three, max_workers=2
        )
    res = stop.value.result
    assert res.interrupted and len(res.table) == 3 and res.total == 6
    assert isinstance(stop.value, KeyboardInterrupt)


def test_factories_run_on_the_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sweep_factories.py").write_text(
        textwrap.dedent(
            """
            from tradeloop.execution import SyncEngine
            from tradeloop.strategies import SmaCross

            def make(params, feed):
                return SyncEngine(feed, SmaCross(**params), initial_cash=50_000)
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    make = importlib.import_module("sweep_factories").make
    feed = build_feed(parse_config(small_config()))
    grid = {"fast": [5, 10], "slow": [30, 60]}
    a = sweep(make, grid, data=feed, executor="serial", objective="max_drawdown")
    b = sweep(make, grid, data=feed, max_workers=2, objective="max_drawdown")
    _same(a.table, b.table)
    assert not a.maximize  # a drawdown is minimised
    assert a.best is not None and a.best["max_drawdown"] == a.table["max_drawdown"].min()
    with pytest.raises(ConfigError, match="top level of an importable module"):
        sweep(lambda p, f: make(p, f), grid, data=feed)
    with pytest.raises(ConfigError, match="factory"):
        sweep(lambda p: None, grid, data=feed, executor="serial")


def test_importing_tradeloop_does_not_import_ray() -> None:
    code = (
        "import sys, tradeloop, tradeloop.sweep, tradeloop.sweep.executors, tradeloop.cli\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
