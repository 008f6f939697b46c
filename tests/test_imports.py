"""Import hygiene: light imports, no asyncio on the synchronous path, old names still work."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import warnings

import pytest


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )


def test_synchronous_path_never_imports_asyncio() -> None:
    proc = run_python(
        """
        import sys
        import tradeloop
        import tradeloop.execution
        from tradeloop.execution import SyncEngine, create_sync_engine
        from tradeloop.execution.synchronous import SyncExecutionEngine
        from tradeloop.data.feed import BarFeed
        from tradeloop.strategies import SmaCross
        feed = BarFeed.from_arrays("X", list(range(1, 101)), [10.0] * 100, [11.0] * 100,
                                   [9.0] * 100, [10.0] * 100, [1e6] * 100)
        SyncExecutionEngine(feed, SmaCross(fast=2, slow=5)).run()
        prefixes = ("asyncio", "aiohttp")
        bad = sorted(m for m in sys.modules if m.split(".")[0] in prefixes)
        print(bad)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_import_tradeloop_is_light() -> None:
    proc = run_python(
        """
        import sys
        import tradeloop, tradeloop.execution, tradeloop.data, tradeloop.results
        print(sorted(m for m in ("pandas", "numpy", "matplotlib", "asyncio") if m in sys.modules))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_works_without_aiohttp() -> None:
    proc = run_python(
        """
        import sys
        sys.modules["aiohttp"] = None  # any import of aiohttp now raises ImportError
        import tradeloop
        import tradeloop.execution
        from tradeloop.execution import SyncEngine, BacktestEngine, create_engine
        from tradeloop.execution.synchronous import SyncOrderManager
        engine = create_engine({"data": {"sample": "daily", "symbols": ["ACME"]},
                                "strategy": {"name": "sma_cross"}})
        result = engine.run()
        print(tradeloop.execution._ASYNC_AVAILABLE, len(result.fills) > 0)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False True"


def test_async_available_when_aiohttp_is_installed() -> None:
    import tradeloop.execution as ex

    assert ex._ASYNC_AVAILABLE is True
    proc = run_python(
        """
        import sys
        import tradeloop.execution as ex
        print(ex._ASYNC_AVAILABLE, "aiohttp" in sys.modules, "asyncio" in sys.modules)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True False False"


def test_new_and_old_names() -> None:
    import tradeloop.execution as ex

    assert ex.SyncEngine is ex.SyncExecutionEngine
    assert ex.BacktestExecutionEngine is ex.SyncExecutionEngine
    assert ex.BacktestEngine is ex.SyncExecutionEngine
    assert ex.BacktestOrderManager is ex.SyncOrderManager
    assert ex.create_backtest_engine is ex.create_sync_engine
    assert ex.AsyncEngine is ex.AsyncExecutionEngine
    assert ex.LiveExecutionEngine is ex.AsyncExecutionEngine
    assert ex.LiveEngine is ex.AsyncExecutionEngine
    assert ex.LiveOrderManager is ex.AsyncOrderManager
    assert ex.create_live_engine is ex.create_async_engine
    for name in ex.__all__:
        assert getattr(ex, name) is not None
    with pytest.raises(AttributeError):
        ex.NoSuchThing  # noqa: B018


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("tradeloop.execution.backtest", "tradeloop.execution.synchronous", "BacktestEngine"),
        ("tradeloop.execution.shared_types", "tradeloop.execution.types", "Order"),
        (
            "tradeloop.execution.backtest_protocols",
            "tradeloop.execution.sync_protocols",
            "SlippageModel",
        ),
        ("tradeloop.execution.factories", "tradeloop.execution.factory", "create_backtest_engine"),
        ("tradeloop.execution.live", "tradeloop.execution.asynchronous", "LiveEngine"),
        ("tradeloop.execution.live", "tradeloop.execution.asynchronous", "AsyncOrderManager"),
        (
            "tradeloop.execution.live_protocols",
            "tradeloop.execution.async_protocols",
            "AsyncBroker",
        ),
    ],
)
def test_old_module_paths_warn_and_reexport(old: str, new: str, name: str) -> None:
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mod = importlib.import_module(old)
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught)
    assert getattr(mod, name) is getattr(importlib.import_module(new), name)
