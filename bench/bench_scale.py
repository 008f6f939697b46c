"""Benchmark: bars/s and peak memory on large data, in-memory and streamed from Parquet.

Writes a synthetic dataset (``--symbols`` x ``--bars`` one-minute bars, one Parquet file per
symbol under ``symbol=<name>/``, hive style), then runs an SMA-crossover backtest in a fresh child
process for each case and reports, from the child: the peak RSS above the child's baseline once
its libraries are imported (``resource.getrusage``), the time to get the data ready, and bars/s.

* ``1M in memory``: one symbol's file read into a :class:`BarFeed` (the load target: < 0.2 s);
* ``1M streamed``, ``10M streamed``, ``20M streamed``: :func:`tradeloop.data.stream.open_dataset`
  over 1, 10 and 20 symbols, read batch by batch while the run goes.

Usage: ``python bench/bench_scale.py [--symbols 20] [--bars 1000000] [--dir PATH] [--json PATH]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np, pyarrow.parquet as pq, pyarrow.dataset
from tradeloop.data.feed import BarFeed
from tradeloop.data.stream import open_dataset
from tradeloop.execution.synchronous import SyncExecutionEngine
from tradeloop.strategies import SmaCross
root, mode, nsym = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if mode == "memory":
    # the library's loader: the feed's columns allocated once and filled batch by batch
    data = open_dataset(f"{root}/symbol=S000/part.parquet", symbol="S000").load()
else:
    data = open_dataset(root, symbols=[f"S{i:03d}" for i in range(nsym)])
    data.total_bars()
load = time.perf_counter() - t0
t1 = time.perf_counter()
r = SyncExecutionEngine(data, SmaCross(fast=10, slow=30), initial_cash=1_000_000).run()
run = time.perf_counter() - t1
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"bars": r.bars_processed, "load_s": load, "run_s": run,
                  "bars_per_s": r.bars_processed / run, "fills": len(r.fills),
                  "peak_above_baseline_mb": (peak - base) / 1024, "baseline_mb": base / 1024}))
"""


def write_dataset(root: Path, symbols: int, bars: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    start = 1_577_836_800 * 10**9
    for i in range(symbols):
        path = root / f"symbol=S{i:03d}" / "part.parquet"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(i)
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, bars)))
        open_ = np.concatenate(([100.0], close[:-1]))
        wiggle = np.abs(rng.normal(0.0, 0.0005, bars))
        table = pa.table(
            {
                "timestamp": pa.array(
                    start + np.arange(bars, dtype=np.int64) * 60 * 10**9, pa.timestamp("ns", "UTC")
                ),
                "open": open_,
                "high": np.maximum(open_, close) * (1 + wiggle),
                "low": np.minimum(open_, close) * (1 - wiggle),
                "close": close,
                "volume": rng.integers(1_000, 10_000, bars).astype(np.float64),
            }
        )
        pq.write_table(table, path, row_group_size=131_072)


def write_dataset_in_child(root: Path, symbols: int, bars: int) -> None:
    """:func:`write_dataset` in a child process. On Linux a process's peak RSS
    (``ru_maxrss``) carries over through fork and exec, so the cases' children would start
    from this process's peak: generating the data here would hide their own."""
    code = (
        "import pathlib, runpy, sys; ns = runpy.run_path(sys.argv[1]); "
        "ns['write_dataset'](pathlib.Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))"
    )
    subprocess.run(
        [sys.executable, "-c", code, __file__, str(root), str(symbols), str(bars)], check=True
    )


def run_child(root: Path, mode: str, symbols: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), mode, str(symbols)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--symbols", type=int, default=20)
    ap.add_argument("--bars", type=int, default=1_000_000, help="bars per symbol")
    ap.add_argument("--dir", help="where to write the dataset (kept; default: a temp folder)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.dir or tmp)
        write_dataset_in_child(root, args.symbols, args.bars)
        cases = [("in memory", "memory", 1), ("streamed", "stream", 1)]
        cases += [("streamed", "stream", n) for n in (10, args.symbols) if 1 < n <= args.symbols]
        rows: list[dict[str, object]] = []
        print(f"{'case':<24}{'bars':>12}{'load s':>9}{'bars/s':>12}{'peak MB':>10}")
        for label, mode, n in cases:
            fig = run_child(root, mode, n)
            name = f"{fig['bars'] / 1e6:g}M {label} ({n} sym)"
            rows.append({"case": name, **fig})
            print(
                f"{name:<24}{fig['bars']:>12,.0f}{fig['load_s']:>9.3f}"
                f"{fig['bars_per_s']:>12,.0f}{fig['peak_above_baseline_mb']:>10.0f}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
