"""``tradeloop sweep``: files written, progress and summary, failures, bad sweep sections."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tradeloop.cli import app

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sweep.yaml"


def _config(tmp_path: Path, **sweep: Any) -> Path:
    cfg = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    cfg["data"].update({"symbols": ["ACME", "BOLT"], "start": "2021-01-01"})
    cfg["sweep"] = {
        "grid": {"fast": [5, 10], "slow": [10, 30, 60]},
        "constraint": "fast < slow",
        **sweep,
    }
    cfg["output"] = {"dir": str(tmp_path / "out")}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def test_example_writes_the_table_heatmap_and_walk_forward(tmp_path: Path) -> None:
    path = _config(tmp_path, walk_forward={"in_sample": "1y", "out_of_sample": "6mo"})
    res = runner.invoke(app, ["sweep", str(path), "--max-workers", "2"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    assert "5/5 runs" in res.output  # the progress bar's final state
    assert "top 5 of 5 runs by sharpe" in res.output and "best: fast=" in res.output
    assert "stitched OOS" in res.output
    table = pd.read_csv(out / "sweep.csv")
    assert list(table["run"]) == [0, 1, 2, 3, 4] and (table["fast"] < table["slow"]).all()
    assert pd.read_parquet(out / "sweep.parquet").shape == table.shape
    html = (out / "sweep.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and "<script" not in html
    assert "sharpe over fast (x) and slow (y)" in html
    wf = pd.read_csv(out / "walkforward.csv")
    assert len(wf) == 4 and {"is_sharpe", "oos_sharpe", "fast", "slow"} <= set(wf.columns)
    eq = pd.read_csv(out / "walkforward_equity.csv")
    assert list(eq.columns) == ["timestamp", "equity", "window"]
    assert (out / "walkforward.html").is_file() and (out / "walkforward_summary.csv").is_file()


def test_quiet_prints_the_files(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["sweep", str(_config(tmp_path)), "-q", "-e", "serial", "-o", str(tmp_path / "q")]
    )
    assert res.exit_code == 0, res.output
    assert res.output.split() == [
        str(tmp_path / "q" / f) for f in ("sweep.csv", "sweep.parquet", "sweep.html")
    ]


def test_a_failing_run_is_a_row_with_its_error(tmp_path: Path) -> None:
    (tmp_path / "flaky.py").write_text(
        textwrap.dedent(
            """
            from tradeloop import Strategy

            class Flaky(Strategy):
                boom: int = 0

                def on_bar(self, ctx, bar):
                    if self.boom:
                        raise RuntimeError("bad luck")
                    if not ctx.position(bar.symbol).qty:
                        ctx.buy(bar.symbol, 1)
            """
        ),
        encoding="utf-8",
    )
    path = _config(tmp_path)
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg["strategy"] = {"name": "flaky.py:Flaky"}
    cfg["sweep"] = {"grid": {"boom": [0, 1]}, "executor": "serial"}
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    res = runner.invoke(app, ["sweep", str(path)])
    assert res.exit_code == 0, res.output
    assert "1 of 2 runs failed" in res.output and "RuntimeError: bad luck" in res.output
    table = pd.read_csv(tmp_path / "out" / "sweep.csv", keep_default_na=False)
    assert "RuntimeError: bad luck" in table.loc[1, "error"] and table.loc[0, "error"] == ""
    cfg["sweep"]["grid"] = {"boom": [1, 2]}
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    res = runner.invoke(app, ["sweep", str(path)])
    assert res.exit_code == 2
    assert "all 2 runs failed" in res.output
    assert (tmp_path / "out" / "sweep.csv").is_file()


@pytest.mark.parametrize(
    ("sweep", "field"),
    [
        ({"grid": {"fsat": [5]}}, "sweep.grid.fsat"),
        ({"grid": {"fast": [5.5]}}, "sweep.grid.fast"),
        ({"grid": {"fast": [5]}, "objective": "sharp"}, "sweep.objective"),
        ({"grid": {"fast": [5]}, "constraint": "fast <"}, "sweep.constraint"),
        ({"grid": {"fast": [5]}, "constraint": "fsat < slow"}, "sweep.constraint"),
        ({"grid": {"fast": [5]}, "executor": "dask"}, "sweep.executor"),
        ({"grid": {"fast": [5]}, "address": "auto"}, "sweep.address"),
        ({"grid": {"fast": [5]}, "max_workers": 0}, "sweep.max_workers"),
        (
            {"grid": {"fast": [5]}, "walk_forward": {"in_sample": "2x", "out_of_sample": 5}},
            "sweep.walk_forward.in_sample",
        ),
        (
            {"grid": {"fast": [5]}, "walk_forward": {"in_sample": "5y", "out_of_sample": "1y"}},
            "sweep.walk_forward.in_sample",
        ),
        ({"grdi": {"fast": [5]}}, "sweep.grid"),
    ],
)
def test_bad_sweep_sections_name_the_field(tmp_path: Path, sweep: Any, field: str) -> None:
    path = _config(tmp_path)
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg["sweep"] = sweep
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    res = runner.invoke(
        app,
        ["sweep", str(path), "-e", "serial", "--no-walk-forward"]
        if "walk_forward" not in sweep or "5y" not in str(sweep)
        else ["sweep", str(path), "-e", "serial"],
    )
    assert res.exit_code == 2, res.output
    assert f"error: {field}=" in res.output


def test_a_config_without_a_sweep_section(tmp_path: Path) -> None:
    cfg = yaml.safe_load((EXAMPLE.parent / "sma_cross.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    res = runner.invoke(app, ["sweep", str(path)])
    assert res.exit_code == 2 and "error: sweep=None: the config has no sweep: section" in (
        res.output
    )
