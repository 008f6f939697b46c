"""What `tradeloop backtest` says and writes about a run: rejections, settings, the full report."""

from __future__ import annotations

import csv
import json
import re
import textwrap
from pathlib import Path

from typer.testing import CliRunner

from tradeloop.cli import _rejections_line, app
from tradeloop.execution.types import Order, OrderSide, OrderStatus
from tradeloop.results import BacktestResult

runner = CliRunner()

# The strategy wants to go short; the account may not: every short entry is rejected.
SHORTS_REFUSED = """
execution: {mode: sync, participation_rate: 0.1, allow_short: false, leverage: 1.5}
data: {sample: daily, symbols: [ACME, BOLT], start: 2022-01-01, end: 2022-12-31}
strategy: {name: sma_cross, params: {fast: 5, slow: 20, allow_short: true}}
costs:
  commission: {type: per_share, rate: 0.005, minimum: 1.0}
  slippage: {type: percent, rate: 0.0005}
risk: {max_open_orders: 50}
"""


def run_backtest(tmp_path: Path) -> tuple[str, Path]:
    config = tmp_path / "shorts.yaml"
    config.write_text(textwrap.dedent(SHORTS_REFUSED), encoding="utf-8")
    out = tmp_path / "out"
    result = runner.invoke(app, ["backtest", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result.stdout, out


def test_summary_shows_rejections_and_their_reasons(tmp_path: Path) -> None:
    stdout, out = run_backtest(tmp_path)
    with (out / "orders.csv").open(newline="") as fh:
        orders = list(csv.DictReader(fh))
    rejected = [o for o in orders if o["status"] == "rejected"]
    assert len(rejected) > 10 and len(rejected) < len(orders)
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["num_rejected"] == len(rejected)
    row = re.search(r"Rejected orders\s*│\s*([\d,]+) of ([\d,]+)", stdout)
    assert row is not None, stdout
    assert (int(row[1]), int(row[2])) == (len(rejected), len(orders))
    line = (
        f"{len(rejected):,} of {len(orders):,} orders were rejected: "
        f"short selling is disabled (allow_short=False) ({len(rejected):,})"
    )
    assert line in stdout


def test_settings_reach_metrics_json_and_the_report(tmp_path: Path) -> None:
    _, out = run_backtest(tmp_path)
    settings = json.loads((out / "metrics.json").read_text())["run"]["settings"]
    assert settings == {
        "data": "sample: daily",
        "initial_cash": 100_000.0,
        "commission": {"type": "per_share", "rate": 0.005, "minimum": 1.0},
        "slippage": {"type": "percent", "rate": 0.0005},
        "participation_rate": 0.1,
        "leverage": 1.5,
        "allow_short": False,
        "fractional": False,
        "risk": "max_open_orders 50",
    }
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "<tr><th>Shorting allowed (account)</th><td>no</td></tr>" in text
    assert "<tr><th>Leverage</th><td>1.5</td></tr>" in text
    assert "<tr><th>Commission</th><td>type per_share, rate 0.005, minimum 1</td></tr>" in text


def test_report_of_a_backtest_has_the_price_charts(tmp_path: Path) -> None:
    _, out = run_backtest(tmp_path)
    text = (out / "report.html").read_text(encoding="utf-8")
    alts = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,', text)
    assert alts == [
        "Equity curve",
        "Drawdown (underwater)",
        "Price and trades: ACME",
        "Price and trades: BOLT",
    ]
    assert "No closed trades." in text  # every exit was a refused flip to short
    assert "Benchmark: buy and hold of ACME, BOLT in equal parts" in text
    assert "short selling is disabled (allow_short=False)" in text  # the rejections table


def order(n: int, reason: str | None) -> Order:
    o = Order(f"O{n}", "X", OrderSide.BUY, 1.0)
    o.status = OrderStatus.REJECTED if reason is not None else OrderStatus.FILLED
    o.reject_reason = reason
    return o


def test_rejections_line_names_the_top_reasons() -> None:
    reasons = ["a: 1", "a: 2", "a: 3", "b: 1", "b: 2", "c", "d", None, None]
    orders = [order(i, r) for i, r in enumerate(reasons)]
    result = BacktestResult(1.0, ("X",), [], [], [], orders, [], [], 1.0, 0, 0.0)
    line = _rejections_line(result)
    assert line is not None
    assert line.plain == "7 of 9 orders were rejected: a (3), b (2), c (1), 1 more reason(s)"
    assert (
        _rejections_line(BacktestResult(1.0, ("X",), [], [], [], [], [], [], 1.0, 0, 0.0)) is None
    )
