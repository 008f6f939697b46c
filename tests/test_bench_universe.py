"""bench/bench_universe.py runs on small inputs, and its strategies trade on every row."""

from __future__ import annotations

import importlib.util
import json
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


def test_bench_universe_small(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    figures = load("bench_universe").main(
        ["--bars", "6000", "--symbols", "1,10,100", "--repeat", "1", "--json", str(out)]
    )
    rows = figures["rows"]
    assert [r["symbols"] for r in rows] == [1, 10, 100]
    assert [r["bars"] for r in rows] == [6000, 6000, 6000]
    for row in rows:
        assert row["no-op"]["fills"] == 0
        assert row["sma"]["fills"] > 0
        assert row["momentum"]["fills"] > 0
        assert row["sma"]["bars_per_s"] > 0
    assert rows[0]["sma"]["ratio"] == 1.0
    printed = capsys.readouterr().out
    assert "symbols x bars" in printed and "100 x 60" in printed
    assert json.loads(out.read_text())["rows"][2]["symbols"] == 100
