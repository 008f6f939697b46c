"""The benchmark scripts run, on small inputs, and report the figures the README quotes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_sma_small(capsys: pytest.CaptureFixture[str]) -> None:
    figures = load("bench_sma").main(["--bars", "5000", "--repeat", "1"])
    assert figures["bars"] == 5000
    assert figures["engine_sma_bars_per_s"] > 0
    assert "bars/s" in capsys.readouterr().out


def test_bench_sync_vs_async_small(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    figures = load("bench_sync_vs_async").main(
        ["--bars", "4000", "--repeat", "1", "--json", str(out)]
    )
    assert figures["sma_fills"] > 0  # the SMA run trades, and both engines agreed on every fill
    assert figures["sma_ratio"] > 0 and figures["no-op_ratio"] > 0
    printed = capsys.readouterr().out
    assert f"{figures['sma_ratio']:.2f}x" in printed
    assert out.is_file()


def test_bench_scale_small(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    rows = load("bench_scale").main(
        ["--symbols", "2", "--bars", "3000", "--dir", str(tmp_path / "data")]
    )
    assert [r["case"] for r in rows] == [
        "0.003M in memory (1 sym)",
        "0.003M streamed (1 sym)",
        "0.006M streamed (2 sym)",
    ]
    for row in rows:
        assert row["bars_per_s"] > 0 and row["fills"] > 0  # type: ignore[operator]
        assert row["peak_above_baseline_mb"] >= 0  # type: ignore[operator]
    # the same bars, in memory or streamed: the same run
    assert rows[0]["fills"] == rows[1]["fills"]
    assert "peak MB" in capsys.readouterr().out
