"""``data.stream: true`` through the command line: backtest, validate, and the refusals."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tradeloop.cli import app

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
from tradeloop.testing.bars import bars_table  # noqa: E402

runner = CliRunner()

SYMS = {"ACME": 300, "BOLT": 250}
RESULT_FILES = ("equity.csv", "trades.csv", "orders.csv")


def write_data(root: Path) -> None:
    """The same bars twice: ``root/hive/symbol=NAME/part.parquet`` and ``root/bars.parquet``."""
    for i, (sym, n) in enumerate(SYMS.items()):
        (root / "hive" / f"symbol={sym}").mkdir(parents=True, exist_ok=True)
        pq.write_table(bars_table(sym, n, i), root / "hive" / f"symbol={sym}" / "part.parquet")
    flat = [bars_table(s, n, i, with_symbol=True) for i, (s, n) in enumerate(SYMS.items())]
    pq.write_table(pa.concat_tables(flat), root / "bars.parquet")


def write_config(path: Path, data: str, extra: str = "") -> Path:
    body = f"""
    execution: {{mode: sync, participation_rate: 0.1}}
    data: {data}
    strategy: {{name: sma_cross, params: {{fast: 5, slow: 20}}}}
    costs: {{commission: {{type: per_share, rate: 0.005, minimum: 1.0}}}}
    """
    path.write_text(textwrap.dedent(body) + textwrap.dedent(extra), encoding="utf-8")
    return path


def test_streamed_backtest_equals_the_in_memory_one(tmp_path: Path) -> None:
    write_data(tmp_path)
    streamed = write_config(tmp_path / "streamed.yaml", "{path: hive, stream: true}")
    loaded = write_config(tmp_path / "loaded.yaml", "{path: bars.parquet, stream: false}")
    res = runner.invoke(app, ["backtest", str(streamed), "-o", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    assert "streaming 550 bars: ACME, BOLT" in res.stdout
    assert "read as the run goes" in res.stdout
    assert "Sharpe" in res.stdout
    res = runner.invoke(app, ["backtest", str(loaded), "-o", str(tmp_path / "m"), "-q"])
    assert res.exit_code == 0, res.output
    for name in RESULT_FILES:
        got = (tmp_path / "s" / name).read_text(encoding="utf-8")
        assert got == (tmp_path / "m" / name).read_text(encoding="utf-8"), name
    assert len((tmp_path / "s" / "trades.csv").read_text().splitlines()) > 2
    # the report is written; its buy-and-hold benchmark and price charts need every close
    html = (tmp_path / "s" / "report.html").read_text(encoding="utf-8")
    assert "<html" in html.lower()


def test_streamed_backtest_with_filters_prints_the_period(tmp_path: Path) -> None:
    write_data(tmp_path)
    config = write_config(
        tmp_path / "c.yaml",
        "{path: 'hive/symbol=*/*.parquet', stream: true, symbols: [BOLT], "
        "start: 2020-02-01, end: 2020-02-29}",
    )
    res = runner.invoke(app, ["backtest", str(config), "-o", str(tmp_path / "o"), "--no-report"])
    assert res.exit_code == 0, res.output
    assert "streaming 29 bars: BOLT, 2020-02-01 to 2020-02-29" in res.stdout


def test_validate_a_streamed_config_reads_no_bars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradeloop.data import loaders
    from tradeloop.data.stream import BarDataset

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("bars were read")

    monkeypatch.setattr(loaders, "load_bars", refuse)
    monkeypatch.setattr(BarDataset, "batches", refuse)
    monkeypatch.setattr(BarDataset, "chunks", refuse)
    write_data(tmp_path)
    config = write_config(tmp_path / "c.yaml", "{path: hive, stream: true}")
    res = runner.invoke(app, ["validate", str(config)])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "is valid" in out
    assert "path: " in out and "(streamed)" in out
    assert "ACME, BOLT" in out
    assert "550 (ACME 300, BOLT 250), streamed" in out
    assert "read as the run goes" in out


def test_validate_streamed_with_filters(tmp_path: Path) -> None:
    write_data(tmp_path)
    config = write_config(
        tmp_path / "c.yaml", "{path: hive, stream: true, start: 2020-01-02, end: 2020-01-11}"
    )
    res = runner.invoke(app, ["validate", str(config)])
    assert res.exit_code == 0, res.output
    assert "20 (ACME 10, BOLT 10), streamed" in res.stdout
    assert "2020-01-02 to 2020-01-11" in res.stdout


def test_streamed_path_not_found(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", "{path: nowhere, stream: true}")
    res = runner.invoke(app, ["backtest", str(config), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: data.path=")
    assert "no such file or folder" in res.stderr


def test_sweep_refuses_a_streamed_config(tmp_path: Path) -> None:
    write_data(tmp_path)
    config = write_config(
        tmp_path / "c.yaml", "{path: hive, stream: true}", "sweep: {grid: {fast: [3, 5]}}\n"
    )
    res = runner.invoke(app, ["sweep", str(config), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "error: data.stream=True" in res.stderr
    assert "tradeloop sweep" in res.stderr and "in memory" in res.stderr
    assert "Traceback" not in res.output


def test_simulated_live_refuses_a_streamed_config(tmp_path: Path) -> None:
    pytest.importorskip("aiohttp")
    write_data(tmp_path)
    body = write_config(tmp_path / "c.yaml", "{path: hive, stream: true}").read_text()
    config = tmp_path / "live.yaml"
    config.write_text(body.replace("mode: sync", "mode: live"), encoding="utf-8")
    for command in (["live", str(config), "-o", str(tmp_path / "o")], ["validate", str(config)]):
        res = runner.invoke(app, command)
        assert res.exit_code == 2, command
        assert "error: data.stream=True" in res.stderr
        assert "broker: simulated" in res.stderr
