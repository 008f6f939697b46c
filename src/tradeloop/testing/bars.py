"""Synthetic bars as a pyarrow table: datasets for tests, examples and benchmarks of streaming.

``bars_table(symbol, n)`` is a deterministic random walk of ``n`` daily bars (a ``timestamp``
column in UTC nanoseconds, ``open``, ``high``, ``low``, ``close``, ``volume``, and ``symbol`` with
``with_symbol=True``), ready for ``pyarrow.parquet.write_table``. Needs pyarrow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DAY_NS", "bars_table"]

DAY_NS = 86_400 * 10**9
START_NS = 1_577_923_200 * 10**9  # 2020-01-02T00:00:00Z


def bars_table(
    symbol: str,
    n: int,
    seed: int = 0,
    *,
    with_symbol: bool = False,
    start_ns: int = START_NS,
    step_ns: int = DAY_NS,
) -> Any:
    """``n`` bars of ``symbol`` from ``start_ns``, one every ``step_ns`` (same seed, same bars)."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    cols: dict[str, Any] = {
        "timestamp": pa.array(
            start_ns + np.arange(n, dtype=np.int64) * step_ns, pa.timestamp("ns", "UTC")
        ),
        "open": open_,
        "high": np.maximum(open_, close) * 1.01,
        "low": np.minimum(open_, close) * 0.99,
        "close": close,
        "volume": rng.integers(1_000, 10_000, n).astype(float),
    }
    if with_symbol:
        cols["symbol"] = pa.array([symbol] * n)
    return pa.table(cols)
