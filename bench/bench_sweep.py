"""Benchmark: a parameter sweep of SMA crossovers on 100,000 synthetic bars.

Runs the same grid (at least 100 parameter sets) three ways in one process and prints runs per
second for each, so the ratios are meaningful on any machine:

* ``serial``  every run in this process, one after another (``executor="serial"``);
* ``local``   the local process pool, one worker per core (``executor="local"``): the bars go to
  the workers once, through shared memory;
* ``ray``     a local Ray started with one CPU per core (``executor="ray"``; skipped when Ray is
  not installed): the bars go into the object store once, one task per run.

Speed-up per core is (runs/s of the executor / runs/s serial) / workers: 1.0 is perfect scaling.
The pool's and Ray's figures include starting their workers (and Ray itself: about 10 s on a small
machine; ``ray startup`` is printed apart and the Ray figure is also given without it). The
tables of the three must be equal (checked).

Usage: ``python bench/bench_sweep.py [--bars N] [--runs R] [--workers W] [--no-ray] [--json P]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np

from tradeloop.data.feed import BarFeed
from tradeloop.execution.synchronous import SyncExecutionEngine
from tradeloop.strategies import SmaCross
from tradeloop.sweep import sweep

MINUTE_NS = 60_000_000_000
START_NS = 1_577_836_800_000_000_000  # 2020-01-01T00:00:00Z


def make_feed(n: int, seed: int = 7) -> BarFeed:
    """A deterministic random walk of ``n`` one-minute bars with consistent OHLC."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    wiggle = np.abs(rng.normal(0.0, 0.0005, n))
    high = np.maximum(open_, close) * (1.0 + wiggle)
    low = np.minimum(open_, close) * (1.0 - wiggle)
    volume = rng.integers(1_000, 10_000, n).astype(np.float64)
    ts = START_NS + np.arange(n, dtype=np.int64) * MINUTE_NS
    return BarFeed.from_arrays(
        "BENCH",
        ts.tolist(),
        open_.tolist(),
        high.tolist(),
        low.tolist(),
        close.tolist(),
        volume.tolist(),
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def engine(params: dict[str, Any], feed: BarFeed) -> SyncExecutionEngine:
    """The factory every executor calls (importable: ``bench_sweep.engine``)."""
    return SyncExecutionEngine(feed, SmaCross(**params), initial_cash=100_000.0)


def grid_for(runs: int) -> dict[str, list[int]]:
    """A fast x slow grid of at least ``runs`` parameter sets with fast < slow everywhere."""
    n_fast = max(2, int(np.sqrt(runs)))
    n_slow = -(-runs // n_fast)
    return {"fast": list(range(5, 5 + 2 * n_fast, 2)), "slow": list(range(60, 60 + 5 * n_slow, 5))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    feed = make_feed(args.bars)
    grid = grid_for(args.runs)
    n = len(grid["fast"]) * len(grid["slow"])
    w = args.workers
    print(
        f"{n} runs of SmaCross on {args.bars:,} bars; {w} workers; Python "
        f"{platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores"
    )
    figures: dict[str, Any] = {"runs": n, "bars": args.bars, "workers": w}
    print("load average at start (other processes on the machine):", _load())

    def timed(executor: str, **kw: Any) -> tuple[float, Any]:
        started = time.perf_counter()
        res = sweep(engine, grid, data=feed, executor=executor, **kw)
        return time.perf_counter() - started, res

    t_serial, serial = timed("serial")
    rate_serial = n / t_serial
    per_run = float(serial.table["seconds"].mean())
    print(f"{'serial':<10} {t_serial:8.2f} s  {rate_serial:8.2f} runs/s  ({per_run:.2f} s per run)")
    figures["serial_runs_per_s"] = rate_serial

    def report(name: str, seconds: float, res: Any) -> None:
        a = serial.table.drop(columns="seconds")
        b = res.table.drop(columns="seconds")
        assert a.equals(b), f"{name}: the table differs from the serial one"
        rate = n / seconds
        speedup = rate / rate_serial
        per_run = float(res.table["seconds"].mean())
        print(
            f"{name:<10} {seconds:8.2f} s  {rate:8.2f} runs/s  speed-up {speedup:5.2f}x  "
            f"per core {speedup / w:5.2f}  ({per_run:.2f} s per run inside a worker)"
        )
        figures[f"{name}_runs_per_s"] = rate
        figures[f"{name}_speedup"] = speedup
        figures[f"{name}_speedup_per_core"] = speedup / w

    t_local, local = timed("local", max_workers=w)
    report("local", t_local, local)

    if not args.no_ray and importlib.util.find_spec("ray") is not None:
        import ray

        started = time.perf_counter()
        ray.init(num_cpus=w, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
        startup = time.perf_counter() - started
        try:
            t_ray, on_ray = timed("ray")
        finally:
            ray.shutdown()
        print(f"{'ray startup':<10} {startup:8.2f} s (not in the figure below)")
        report("ray", t_ray, on_ray)
        report("ray+start", t_ray + startup, on_ray)
        figures["ray_startup_s"] = startup
    else:
        print("ray        skipped (not installed: pip install 'tradeloop[ray]')")
    print("load average at end:", _load())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
