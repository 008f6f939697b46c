"""``tradeloop backtest`` when things go wrong: a strategy that raises, Ctrl-C, a bad ``--out``."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradeloop.cli import EXIT_ERROR, EXIT_INTERRUPTED, app
from tradeloop.results import load_result

runner = CliRunner()

STRATEGY = """
from __future__ import annotations

from tradeloop import Strategy


class Fragile(Strategy):
    fail_at: int = 30
    where: str = "on_bar"
    kind: str = "error"

    def on_start(self, ctx):
        self.seen = 0

    def on_bar(self, ctx, bar):
        self.seen += 1
        if self.seen == 5:
            ctx.buy(bar.symbol, 10)
        if self.where == "on_bar" and self.seen == self.fail_at:
            self.explode()

    def on_stop(self, ctx):
        if self.where == "on_stop":
            self.explode()

    def explode(self):
        if self.kind == "interrupt":
            raise KeyboardInterrupt
        return 1 / 0
"""


def make_config(tmp_path: Path, **params: object) -> Path:
    (tmp_path / "fragile.py").write_text(textwrap.dedent(STRATEGY), encoding="utf-8")
    config = tmp_path / "run.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            execution: {{mode: sync}}
            data: {{sample: daily, symbols: [ACME], start: 2022-01-01, end: 2022-12-31}}
            strategy: {{name: fragile.py:Fragile, params: {json.dumps(params)}}}
            """
        ),
        encoding="utf-8",
    )
    return config


def test_a_strategy_error_writes_partial_results_and_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["backtest", str(make_config(tmp_path)), "-o", str(out)])
    assert result.exit_code == EXIT_ERROR, result.output
    err = result.stderr
    assert "error: strategy callback on_bar for symbol='ACME' at bar 2022-02-" in err
    assert "ZeroDivisionError: division by zero" in err
    # the traceback is the strategy's: its file and callbacks, none of the engine's frames
    assert "fragile.py" in err and "in on_bar" in err and "in explode" in err
    assert "synchronous" not in err and "engine.py" not in err
    assert "partial results (29 bars up to 2022-02-" in err
    run = json.loads((out / "metrics.json").read_text())["run"]
    assert run["partial"].startswith("strategy callback on_bar for symbol='ACME'")
    assert run["bars_processed"] == 29
    back = load_result(out)
    assert back.partial == run["partial"] and back.is_partial
    assert len(back.fills) == 1  # the buy before the failure is in the results
    assert "Partial results" in (out / "report.html").read_text()


def test_an_error_in_on_stop_keeps_the_whole_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = make_config(tmp_path, where="on_stop")
    result = runner.invoke(app, ["backtest", str(config), "-o", str(out), "-q"])
    assert result.exit_code == EXIT_ERROR, result.output
    assert "error: strategy callback on_stop at bar 2022-12-30" in result.stderr
    run = json.loads((out / "metrics.json").read_text())["run"]
    assert run["partial"].startswith("strategy callback on_stop")
    assert run["bars_processed"] == 260  # every bar of the sample's 2022 ran
    assert run["end"].startswith("2022-12-30")


def test_ctrl_c_writes_partial_results_and_exits_130(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = make_config(tmp_path, kind="interrupt", fail_at=40)
    result = runner.invoke(app, ["backtest", str(config), "-o", str(out)])
    assert result.exit_code == EXIT_INTERRUPTED == 130, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0] == "interrupted (Ctrl-C)"
    assert "Traceback" not in result.stderr
    assert "partial results (39 bars up to 2022-02-25" in result.stderr
    assert json.loads((out / "metrics.json").read_text())["run"]["partial"] == "interrupted"


def test_a_complete_run_is_not_partial(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = make_config(tmp_path, fail_at=10_000)
    result = runner.invoke(app, ["backtest", str(config), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "partial" not in json.loads((out / "metrics.json").read_text())["run"]
    assert load_result(out).partial == ""
    assert "Partial results" not in (out / "report.html").read_text()


def test_out_that_is_a_file_is_refused_before_loading_data(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out in (blocker, blocker / "sub"):
        result = runner.invoke(app, ["backtest", str(make_config(tmp_path)), "-o", str(out)])
        assert result.exit_code == EXIT_ERROR
        assert f"out='{out}'" in result.stderr and "not a directory" in result.stderr
        assert "loaded" not in result.stdout and "Traceback" not in result.stderr
    assert blocker.read_text() == "x"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_out_that_is_not_writable_is_refused_before_loading_data(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        out = locked / "results"
        result = runner.invoke(app, ["backtest", str(make_config(tmp_path)), "-o", str(out)])
        assert result.exit_code == EXIT_ERROR
        assert "is not writable" in result.stderr and "loaded" not in result.stdout
    finally:
        locked.chmod(0o700)
