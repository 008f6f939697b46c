"""Benchmark: a 1,000,000-bar single-symbol SMA-crossover backtest on the synchronous engine.

Prints bars/second for three runs measured in the same process, so their ratios are meaningful
on any machine:

* ``bare loop``    the same SMA arithmetic in a plain Python loop over lists, no engine at all;
* ``engine, noop`` the engine with a strategy that does nothing (cost of the loop itself);
* ``engine, sma``  the engine running :class:`tradeloop.strategies.SmaCross`.

Usage: ``python bench/bench_sma.py [--bars N] [--repeat R] [--json PATH]`` (best of R runs).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np

from tradeloop.data.feed import BarFeed
from tradeloop.execution.synchronous import SyncExecutionEngine
from tradeloop.strategies import SmaCross
from tradeloop.strategy import Strategy

MINUTE_NS = 60_000_000_000
START_NS = 1_577_836_800_000_000_000  # 2020-01-01T00:00:00Z


def make_feed(n: int, seed: int = 7) -> BarFeed:
    """A deterministic random walk of ``n`` one-minute bars with consistent OHLC."""
    rng = np.random.default_rng(seed)
    rets = rng.normal(0.0, 0.001, n)
    close = 100.0 * np.exp(np.cumsum(rets))
    open_ = np.concatenate(([100.0], close[:-1]))
    wiggle = np.abs(rng.normal(0.0, 0.0005, n))
    high = np.maximum(open_, close) * (1.0 + wiggle)
    low = np.minimum(open_, close) * (1.0 - wiggle)
    volume = rng.integers(1_000, 10_000, n).astype(np.float64)
    ts = START_NS + np.arange(n, dtype=np.int64) * MINUTE_NS
    return BarFeed.from_arrays("BENCH", ts, open_, high, low, close, volume)  # kept, no copy


def bare_loop(closes: list[float], fast: int, slow: int) -> int:
    """The SMA-crossover signal alone: incremental sums, counting crossings."""
    window: list[float] = []
    fs = ss = 0.0
    state = 0
    crossings = 0
    for close in closes:
        window.append(close)
        n = len(window)
        fs += close
        ss += close
        if n > fast:
            fs -= window[n - 1 - fast]
        if n > slow:
            ss -= window[n - 1 - slow]
            del window[0]
        if n < slow:
            continue
        want = 1 if fs * slow > ss * fast else 0
        if want != state:
            state = want
            crossings += 1
    return crossings


class Noop(Strategy):
    pass


def best_of(repeat: int, fn: object) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fast", type=int, default=10)
    ap.add_argument("--slow", type=int, default=30)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    n = args.bars

    feed = make_feed(n)
    closes = feed["BENCH"].close.tolist()
    trades: list[int] = []

    def run_sma() -> None:
        result = SyncExecutionEngine(
            feed, SmaCross(fast=args.fast, slow=args.slow), initial_cash=1_000_000
        ).run()
        trades.append(len(result.fills))

    t_bare = best_of(args.repeat, lambda: bare_loop(closes, args.fast, args.slow))
    t_noop = best_of(args.repeat, lambda: SyncExecutionEngine(feed, Noop()).run())
    t_sma = best_of(args.repeat, run_sma)

    figures = {
        "bars": n,
        "bare_loop_bars_per_s": n / t_bare,
        "engine_noop_bars_per_s": n / t_noop,
        "engine_sma_bars_per_s": n / t_sma,
        "engine_sma_seconds": t_sma,
        "sma_fills": trades[-1],
        "sma_time_vs_bare_loop": t_sma / t_bare,
    }
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{n:,} bars, best of {args.repeat}"
    )
    print(f"  bare loop (SMA math only) {figures['bare_loop_bars_per_s']:>12,.0f} bars/s")
    print(f"  engine, no-op strategy    {figures['engine_noop_bars_per_s']:>12,.0f} bars/s")
    print(
        f"  engine, SMA crossover     {figures['engine_sma_bars_per_s']:>12,.0f} bars/s"
        f"  ({t_sma:.2f} s, {trades[-1]:,} fills)"
    )
    print(f"  SMA backtest takes {figures['sma_time_vs_bare_loop']:.1f}x the bare loop's time")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2)
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
