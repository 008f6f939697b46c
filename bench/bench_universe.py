"""Benchmark: the same total number of bars spread over 1 to 5,000 symbols.

A backtest over a universe should cost per bar what a single-symbol one does: nothing the
engine does for one bar may grow with the number of symbols, positions or open orders. Each row
runs the synchronous engine over ``--bars`` bars in total (``bars // symbols`` per symbol, every
symbol trading at every timestamp) with three strategies, measured in the same process:

* ``no-op``     a strategy that does nothing: the bar loop itself;
* ``sma``       :class:`tradeloop.strategies.SmaCross` (10/30) on every symbol, each sized to an
  equal share of equity;
* ``momentum``  a cross-sectional rebalance in ``on_bars``: every 21 timestamps ("monthly", as
  on daily bars) it sells what left the top decile of 20-bar momentum, and on the next timestamp
  buys the top decile at equal weight.

It prints bars/s per row and each row's ratio to the 1-symbol row (1.00 = as fast per bar as a
single symbol). Usage: ``python bench/bench_universe.py [--bars N] [--symbols 1,10,...]
[--strategies no-op,sma,momentum] [--repeat R] [--clock wall|cpu] [--json PATH]`` (best of R
runs). ``--clock cpu`` times the process's CPU seconds instead of wall time: on a shared machine
other jobs then steal less of the measurement.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.execution.synchronous import SyncExecutionEngine
from tradeloop.execution.types import Bar
from tradeloop.strategies import SmaCross
from tradeloop.strategy import Context, Strategy

MINUTE_NS = 60_000_000_000
START_NS = 1_577_836_800_000_000_000  # 2020-01-01T00:00:00Z
INITIAL_CASH = 100_000_000.0


def make_feed(symbols: int, per_symbol: int, seed: int = 5) -> BarFeed:
    """``symbols`` deterministic random walks of ``per_symbol`` one-minute bars each, all on
    the same timestamps."""
    rng = np.random.default_rng(seed)
    ts = (START_NS + np.arange(per_symbol, dtype=np.int64) * MINUTE_NS).tolist()
    rets = rng.normal(0.0, 0.001, (symbols, per_symbol))
    close = 100.0 * np.exp(np.cumsum(rets, axis=1))
    open_ = np.concatenate((np.full((symbols, 1), 100.0), close[:, :-1]), axis=1)
    wiggle = np.abs(rng.normal(0.0, 0.0005, (symbols, per_symbol)))
    high = np.maximum(open_, close) * (1.0 + wiggle)
    low = np.minimum(open_, close) * (1.0 - wiggle)
    volume = rng.integers(1_000, 10_000, (symbols, per_symbol)).astype(np.float64)
    width = len(str(symbols - 1))
    return BarFeed(
        SymbolSeries(
            f"S{i:0{width}d}",
            ts,
            open_[i].tolist(),
            high[i].tolist(),
            low[i].tolist(),
            close[i].tolist(),
            volume[i].tolist(),
        )
        for i in range(symbols)
    )


class Noop(Strategy):
    pass


class Momentum(Strategy):
    """Top-decile momentum, equal weight, rebalanced every ``period`` timestamps."""

    lookback: int = 21
    period: int = 21
    top: float = 0.1
    allocation: float = 0.95

    def on_start(self, ctx: Context) -> None:
        self._n = 0
        self._held: set[str] = set()
        self._chosen: list[str] = []

    def on_bars(self, ctx: Context, bars: Mapping[str, Bar]) -> None:
        self._n += 1
        phase = self._n % self.period
        if phase == 0 and self._n > self.lookback:
            scores = []
            for sym, bar in bars.items():
                closes = ctx.history(sym, self.lookback)
                if len(closes) == self.lookback:
                    scores.append((bar.close / closes[0], sym))
            scores.sort(reverse=True)
            k = max(1, int(len(scores) * self.top))
            self._chosen = [sym for _, sym in scores[:k]]
            for sym in self._held.difference(self._chosen):
                ctx.order_target_qty(sym, 0.0)  # sells first: they free the cash
        elif phase == 1 and self._chosen:
            weight = self.allocation / len(self._chosen)
            for sym in self._chosen:
                ctx.order_target_percent(sym, weight)
            self._held = set(self._chosen)
            self._chosen = []


STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "no-op": Noop,
    "sma": lambda: SmaCross(fast=10, slow=30),
    "momentum": Momentum,
}


def best_of(repeat: int, fn: Callable[[], int], clock: Callable[[], float]) -> tuple[float, int]:
    best = float("inf")
    fills = 0
    for _ in range(repeat):
        t0 = clock()
        fills = fn()
        best = min(best, clock() - t0)
    return best, fills


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--bars", type=int, default=500_000, help="bars in total, per row")
    ap.add_argument("--symbols", default="1,10,100,1000,5000", help="comma-separated")
    ap.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    widths = [int(s) for s in args.symbols.split(",")]
    names = [s for s in args.strategies.split(",") if s]
    rows: list[dict[str, Any]] = []
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{args.bars:,} bars per row, best of {args.repeat}, {args.clock} time"
    )
    header = f"{'symbols x bars':>16}" + "".join(
        f"{name + ' bars/s':>22}{'ratio':>7}" for name in names
    )
    print(header)
    for width in widths:
        per = args.bars // width
        feed = make_feed(width, per)
        n = width * per
        row: dict[str, Any] = {"symbols": width, "bars_per_symbol": per, "bars": n}
        line = f"{f'{width:,} x {per:,}':>16}"
        for name in names:
            make = STRATEGIES[name]

            def run(make: Callable[[], Strategy] = make, feed: BarFeed = feed) -> int:
                engine = SyncExecutionEngine(feed, make(), initial_cash=INITIAL_CASH)
                return len(engine.run().fills)

            seconds, fills = best_of(args.repeat, run, clock)
            rate = n / seconds
            base = rows[0][name]["bars_per_s"] if rows else rate
            row[name] = {"bars_per_s": rate, "fills": fills, "ratio": rate / base}
            line += f"{rate:>22,.0f}{rate / base:>7.2f}"
        rows.append(row)
        print(line, flush=True)
    figures: dict[str, Any] = {
        "python": platform.python_version(),
        "clock": args.clock,
        "rows": rows,
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2)
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
