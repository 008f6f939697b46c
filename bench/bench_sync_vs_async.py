"""Benchmark: the same backtest through the synchronous and the asynchronous engine.

Both engines run the same strategy over the same bars with the same costs; the asynchronous one
trades against the simulated broker (the backtest's matching behind the async broker protocol)
on an asyncio event loop. The script checks that both produced the same fills and equity, then
prints each engine's bars/second and the ratio, measured in one process:

* ``no-op``  a strategy that does nothing: the cost of each engine's bar loop itself;
* ``sma``    :class:`tradeloop.strategies.SmaCross` on four symbols, with orders and fills.

Usage: ``python bench/bench_sync_vs_async.py [--bars N] [--repeat R] [--json PATH]``
(best of R runs; N bars in total, spread over the symbols).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.execution.asynchronous import AsyncEngine, SimulatedBroker
from tradeloop.execution.core.costs import PercentSlippage, PerShareCommission
from tradeloop.execution.synchronous import SyncEngine
from tradeloop.results.result import BacktestResult
from tradeloop.strategies import SmaCross
from tradeloop.strategy import Strategy

MINUTE_NS = 60_000_000_000
START_NS = 1_577_836_800_000_000_000  # 2020-01-01T00:00:00Z
SYMBOLS = ("AAA", "BBB", "CCC", "DDD")


def make_feed(n: int, seed: int = 11) -> BarFeed:
    """Deterministic random walks of one-minute bars, ``n`` bars in total over four symbols."""
    rng = np.random.default_rng(seed)
    per = n // len(SYMBOLS)
    ts = (START_NS + np.arange(per, dtype=np.int64) * MINUTE_NS).tolist()
    series = []
    for sym in SYMBOLS:
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, per)))
        open_ = np.concatenate(([100.0], close[:-1]))
        wiggle = np.abs(rng.normal(0.0, 0.0005, per))
        high = np.maximum(open_, close) * (1.0 + wiggle)
        low = np.minimum(open_, close) * (1.0 - wiggle)
        volume = rng.integers(1_000, 10_000, per).astype(np.float64)
        cols = [a.tolist() for a in (open_, high, low, close, volume)]
        series.append(SymbolSeries(sym, ts, *cols))
    return BarFeed(series)


class Noop(Strategy):
    pass


SETTINGS: dict[str, Any] = {
    "initial_cash": 1_000_000.0,
    "commission": PerShareCommission(0.005, minimum=1.0),
    "slippage": PercentSlippage(0.0005),
    "participation_rate": 0.1,
}


def run_sync(feed: BarFeed, make: Callable[[], Strategy]) -> BacktestResult:
    return SyncEngine(feed, make(), **SETTINGS).run()


def run_async(feed: BarFeed, make: Callable[[], Strategy]) -> BacktestResult:
    engine = AsyncEngine(SimulatedBroker(feed, **SETTINGS), make(), run_id="bench")
    return asyncio.run(engine.run())


def bind(
    run: Callable[[BarFeed, Callable[[], Strategy]], BacktestResult],
    feed: BarFeed,
    make: Callable[[], Strategy],
) -> Callable[[], BacktestResult]:
    return lambda: run(feed, make)


def best_of(repeat: int, fn: Callable[[], BacktestResult]) -> tuple[float, BacktestResult]:
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    assert result is not None
    return best, result


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--bars", type=int, default=400_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    feed = make_feed(args.bars)
    n = len(feed)
    runs: dict[str, Callable[[], Strategy]] = {
        "no-op": Noop,
        "sma": lambda: SmaCross(fast=10, slow=30, allow_short=True),
    }
    figures: dict[str, float] = {"bars": n}
    print(
        f"python {platform.python_version()} on {platform.machine()}, {n:,} bars "
        f"({len(SYMBOLS)} symbols), best of {args.repeat}"
    )
    print(f"  {'strategy':<8} {'sync bars/s':>14} {'async bars/s':>14} {'sync/async':>11}")
    for name, make in runs.items():
        t_sync, r_sync = best_of(args.repeat, bind(run_sync, feed, make))
        t_async, r_async = best_of(args.repeat, bind(run_async, feed, make))
        same_fills = [f.to_dict() for f in r_sync.fills] == [f.to_dict() for f in r_async.fills]
        if not same_fills or list(r_sync.equity) != list(r_async.equity):
            raise SystemExit(f"{name}: the engines disagree; this is a bug, not a benchmark")
        ratio = t_async / t_sync
        figures[f"{name}_sync_bars_per_s"] = n / t_sync
        figures[f"{name}_async_bars_per_s"] = n / t_async
        figures[f"{name}_ratio"] = ratio
        figures[f"{name}_fills"] = len(r_sync.fills)
        print(
            f"  {name:<8} {n / t_sync:>14,.0f} {n / t_async:>14,.0f} {ratio:>10.2f}x"
            f"   ({len(r_sync.fills):,} fills, identical in both)"
        )
    print(
        f"the synchronous engine is {figures['sma_ratio']:.2f}x as fast as the asynchronous one "
        "on the SMA run"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2)
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
