"""The ``tradeloop`` command line, through typer's CliRunner (and one real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tradeloop import __version__
from tradeloop.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

runner = CliRunner()


def write_config(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


SMALL_CONFIG = """
execution: {mode: sync, participation_rate: 0.1}
data: {sample: daily, symbols: [ACME, BOLT], start: 2022-01-01, end: 2022-12-31}
strategy: {name: sma_cross, params: {fast: 5, slow: 20}}
costs: {commission: {type: per_share, rate: 0.005, minimum: 1.0}}
"""


def test_demo_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    for name in ("report.html", "metrics.json", "trades.csv", "equity.csv", "orders.csv"):
        assert (out / name).is_file(), name
    assert result.stdout.strip() == str(out / "report.html")
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["num_trades"] > 0
    assert "<html" in (out / "report.html").read_text().lower()


def test_demo_prints_summary(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--timeframe", "daily"])
    assert result.exit_code == 0, result.output
    assert "Sharpe" in result.stdout
    assert "report.html" in result.stdout


def test_demo_rejects_unknown_timeframe(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--timeframe", "hourly"])
    assert result.exit_code == 2
    assert not (tmp_path / "report.html").exists()


def test_backtest_example(tmp_path: Path) -> None:
    out = tmp_path / "sma"
    result = runner.invoke(app, ["backtest", str(EXAMPLES / "sma_cross.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for label in ("Sharpe", "Sortino", "CAGR", "Max drawdown", "Final equity", "Bars/s"):
        assert label in result.stdout, label
    assert "SmaCross" in result.stdout
    assert (out / "report.html").is_file()
    assert (out / "metrics.json").is_file()


def test_backtest_no_report_and_quiet(tmp_path: Path) -> None:
    config = write_config(tmp_path / "small.yaml", SMALL_CONFIG)
    out = tmp_path / "out"
    result = runner.invoke(app, ["backtest", str(config), "-o", str(out), "--no-report", "-q"])
    assert result.exit_code == 0, result.output
    assert not (out / "report.html").exists()
    assert (out / "trades.csv").is_file()
    printed = result.stdout.split()
    assert str(out / "metrics.json") in printed
    assert "Sharpe" not in result.stdout


def test_backtest_default_output_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path / "small.yaml", SMALL_CONFIG)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["backtest", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "results" / "small" / "report.html").is_file()


def test_validate(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLES / "sma_cross.yaml")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "valid" in out
    for symbol in ("ACME", "BOLT", "CRUX", "DYNA"):
        assert symbol in out
    assert "SmaCross" in out and "fast=10" in out
    assert "2020-01-02" in out and "2023-12-29" in out
    assert "4,168" in out


def test_validate_shows_risk_limits_and_backtest_applies_them(tmp_path: Path) -> None:
    body = SMALL_CONFIG + "risk: {max_open_orders: 1, daily_loss_limit: 2500}\n"
    config = write_config(tmp_path / "risky.yaml", body)
    checked = runner.invoke(app, ["validate", str(config)])
    assert checked.exit_code == 0, checked.output
    assert "max_open_orders 1, daily_loss_limit 2,500.00" in checked.stdout
    out = tmp_path / "out"
    ran = runner.invoke(app, ["backtest", str(config), "--out", str(out), "--quiet"])
    assert ran.exit_code == 0, ran.output
    orders = (out / "orders.csv").read_text(encoding="utf-8")
    # ACME and BOLT signal on the same day: the second order is refused
    assert "risk: max_open_orders: 1 open order + this one > limit 1" in orders


def test_validate_custom_strategy() -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLES / "custom_strategy.yaml")])
    assert result.exit_code == 0, result.output
    assert "RsiReversion" in result.stdout


def test_bad_config_gives_one_error_line(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "bad.yaml",
        """
        execution: {mode: paper}
        data: {sample: daily}
        strategy: {name: sma_cross}
        """,
    )
    for command in ("backtest", "validate"):
        result = runner.invoke(app, [command, str(config)])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ")
        assert "execution.mode" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.output
        assert result.stdout == ""


def test_missing_config_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["backtest", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "error: config=" in result.stderr
    assert "not found" in result.stderr


def test_unknown_strategy_param_error(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "param.yaml",
        """
        data: {sample: daily}
        strategy: {name: sma_cross, params: {fastt: 3}}
        """,
    )
    result = runner.invoke(app, ["validate", str(config)])
    assert result.exit_code == 2
    assert "strategy.params.fastt" in result.stderr
    assert "Traceback" not in result.output


def test_bad_data_is_reported_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "bars.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        "2022-01-03,10,11,9,10.5,100\n"
        "2022-01-04,10,9,11,10.5,100\n",  # high < low
        encoding="utf-8",
    )
    config = write_config(
        tmp_path / "data.yaml",
        """
        data: {path: bars.csv, symbol: X}
        strategy: {name: buy_and_hold}
        """,
    )
    result = runner.invoke(app, ["backtest", str(config), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


def test_live_mode_is_refused_by_backtest_but_validates(tmp_path: Path) -> None:
    config = write_config(tmp_path / "live.yaml", SMALL_CONFIG.replace("mode: sync", "mode: live"))
    result = runner.invoke(app, ["backtest", str(config), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "execution.mode='live'" in result.stderr
    assert "tradeloop live" in result.stderr
    assert "loaded" not in result.output  # refused before any data is read
    checked = runner.invoke(app, ["validate", str(config)])
    assert checked.exit_code == 0, checked.output
    assert "simulated" in checked.stdout  # the broker it would run against
    assert checked.stderr == ""  # aiohttp is installed here: nothing to warn about


def test_version_option() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"tradeloop {__version__}"


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "backtest" in result.output and "demo" in result.output


def test_python_dash_m_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tradeloop", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"tradeloop {__version__}"


def test_python_dash_m_error_exit_code(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tradeloop", "validate", str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: config=")
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------------- tradeloop live

LIVE_CONFIG = """
execution: {mode: live, participation_rate: 0.1, cancel_on_stop: true}
broker: {name: simulated, speed: 0}
data: {sample: minute, symbols: [ACME, BOLT]}
strategy: {name: sma_cross, params: {fast: 5, slow: 20, allow_short: true}}
costs: {commission: {type: per_share, rate: 0.005, minimum: 1.0}}
"""


def test_live_example_writes_results_and_report(tmp_path: Path) -> None:
    out = tmp_path / "live"
    args = ["live", str(EXAMPLES / "simulated_live.yaml"), "--max-bars", "60", "--out", str(out)]
    result = runner.invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    for name in ("report.html", "metrics.json", "fills.csv", "orders.csv", "equity.csv"):
        assert (out / name).is_file(), name
    run = json.loads((out / "metrics.json").read_text())["run"]
    assert run["bars_processed"] == 60
    assert result.stdout.split() == [str(p) for p in sorted(out.iterdir(), key=_order_written)]


def _order_written(path: Path) -> int:
    order = ["equity.csv", "trades.csv", "orders.csv", "fills.csv", "metrics.json", "report.html"]
    return order.index(path.name)


def test_live_equals_backtest_of_the_same_config(tmp_path: Path) -> None:
    live_cfg = write_config(tmp_path / "live.yaml", LIVE_CONFIG)
    sync_cfg = write_config(tmp_path / "sync.yaml", LIVE_CONFIG.replace("mode: live", "mode: sync"))
    a = runner.invoke(app, ["live", str(live_cfg), "--out", str(tmp_path / "a"), "--quiet"])
    b = runner.invoke(app, ["backtest", str(sync_cfg), "--out", str(tmp_path / "b"), "--quiet"])
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    for name in ("fills.csv", "trades.csv", "equity.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text(), name


def test_live_shows_status_and_summary(tmp_path: Path) -> None:
    config = write_config(tmp_path / "live.yaml", LIVE_CONFIG)
    result = runner.invoke(app, ["live", str(config), "-n", "200", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ("simulated", "equity", "positions", "open", "last event", "Sharpe", "report.html"):
        assert text in out, text


def test_live_refuses_a_sync_config(tmp_path: Path) -> None:
    config = write_config(tmp_path / "s.yaml", SMALL_CONFIG)
    result = runner.invoke(app, ["live", str(config), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "execution.mode='sync'" in result.stderr and "tradeloop backtest" in result.stderr


def test_live_checks_the_output_folder_before_running(tmp_path: Path) -> None:
    config = write_config(tmp_path / "live.yaml", LIVE_CONFIG)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = runner.invoke(app, ["live", str(config), "--out", str(blocker / "sub")])
    assert result.exit_code == 2
    assert "out=" in result.stderr and "not a directory" in result.stderr
    assert "loaded" not in result.stdout  # refused before any data was read


def test_live_without_aiohttp_names_the_extra(tmp_path: Path) -> None:
    config = write_config(tmp_path / "live.yaml", LIVE_CONFIG)
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["aiohttp"] = None
        from tradeloop.cli import main
        main(["live", {str(config)!r}, "--out", {str(tmp_path / "o")!r}])
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "pip install 'tradeloop[live]'" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_live_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    import signal
    import time

    config = write_config(
        tmp_path / "slow.yaml", LIVE_CONFIG.replace("speed: 0", "speed: 120, max_sleep: 0.5")
    )
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "tradeloop", "live", str(config), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(4.0)  # loading, then a paced replay: it would run for minutes
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "stopped by Ctrl-C" in stdout
    assert "Traceback" not in stderr
    assert (out / "report.html").is_file()
    run = json.loads((out / "metrics.json").read_text())["run"]
    assert 0 < run["bars_processed"] < 31_200 // 2


# -------------------------------------------------------------- tradeloop alpaca-server + live


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_json(url: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def test_live_against_the_loopback_alpaca_server(tmp_path: Path) -> None:
    """The README walkthrough: the server in one process, `tradeloop live` in another; the
    venue's orders and positions equal the engine's and no key appears anywhere."""
    import os
    import time

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "tradeloop", "alpaca-server", "--port", str(port)),
            *("--data", "sample:minute", "--speed", "1000", "--max-seconds", "90"),
            *("--linger", "5"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get_json(f"{base}/_tradeloop/state")
                break
            except OSError:
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        key, secret = "tradeloop-test-key", "tradeloop-test-secret"
        env = dict(os.environ, APCA_API_KEY_ID=key, APCA_API_SECRET_KEY=secret)
        out = tmp_path / "out"
        live = subprocess.run(
            [
                *(sys.executable, "-m", "tradeloop", "live", str(EXAMPLES / "alpaca_paper.yaml")),
                *("--base-url", base, "--max-bars", "200", "--out", str(out)),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert live.returncode == 0, live.stderr
        state = _get_json(f"{base}/_tradeloop/state")
    finally:
        server.terminate()
        srv_out, srv_err = server.communicate(timeout=30)
    assert (out / "report.html").is_file()
    run = json.loads((out / "metrics.json").read_text())["run"]
    assert run["bars_processed"] == 200
    import csv

    with (out / "orders.csv").open() as fh:
        orders = {row["client_order_id"]: row for row in csv.DictReader(fh)}
    assert orders, "the SMA strategy traded"
    venue = {o["client_order_id"]: o for o in state["orders"]}
    assert set(orders) == set(venue)
    for cid, row in orders.items():
        assert float(row["filled_qty"]) == float(venue[cid]["filled_qty"])
        assert row["broker_order_id"] == venue[cid]["id"]
    with (out / "fills.csv").open() as fh:
        held: dict[str, float] = {}
        for row in csv.DictReader(fh):
            sign = 1 if row["side"] == "buy" else -1
            held[row["symbol"]] = held.get(row["symbol"], 0.0) + sign * float(row["qty"])
    assert {s: q for s, q in held.items() if q} == {
        p["symbol"]: p["qty"] for p in state["positions"]
    }
    texts = [live.stdout, live.stderr, srv_out, srv_err]
    texts += [p.read_text(errors="replace") for p in out.iterdir()]
    assert not any(secret in t for t in texts)
    assert not any(key in t for t in texts[:2] + texts[4:])  # the engine never prints its key


def test_orders_command_lists_a_journal(tmp_path: Path) -> None:
    from tradeloop.execution.types import Order, OrderSide, OrderStatus
    from tradeloop.persistence.journal import OrderJournal

    path = tmp_path / "journal.sqlite"
    with OrderJournal(path) as journal:
        for n, status in ((1, OrderStatus.ACCEPTED), (2, OrderStatus.REJECTED)):
            order = Order(
                f"O00000{n}", "ACME", OrderSide.BUY, 5.0, client_order_id=f"run-O00000{n}"
            )
            journal.record_intent(order)
            journal.record_status(order.client_order_id, status, 10, reason="no money")
    table = runner.invoke(app, ["orders", str(path)])
    assert table.exit_code == 0, table.output
    assert "run-O000001" in table.stdout and "rejected" in table.stdout
    opened = runner.invoke(app, ["orders", str(path), "--open", "--json"])
    lines = [json.loads(line) for line in opened.stdout.splitlines() if line.strip()]
    assert [d["client_order_id"] for d in lines] == ["run-O000001"]
    missing = runner.invoke(app, ["orders", str(tmp_path / "nope.sqlite")])
    assert missing.exit_code == 2 and "no such file" in missing.stderr


@pytest.mark.parametrize(
    ("command", "example", "target"),
    [
        ("binance-server", "binance_paper.yaml", "--base-url"),
        ("ib-server", "ib_paper.yaml", "--port"),
    ],
)
def test_live_against_the_binance_and_ib_loopback_servers(
    tmp_path: Path, command: str, example: str, target: str
) -> None:
    """The README walkthroughs of the other brokers: the server in one process, `tradeloop
    live` in another, 200 bars of SmaCross; the run is written and the server stops."""
    import csv
    import socket
    import time

    port = _free_port()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "tradeloop", command, "--port", str(port)),
            *("--data", "sample:minute", "--speed", "1000", "--max-seconds", "90"),
            *("--linger", "5"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        where = f"http://127.0.0.1:{port}" if target == "--base-url" else str(port)
        out = tmp_path / "out"
        live = subprocess.run(
            [
                *(sys.executable, "-m", "tradeloop", "live", str(EXAMPLES / example)),
                *(target, where, "--max-bars", "200", "--out", str(out)),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert live.returncode == 0, live.stderr
    finally:
        server.terminate()
        server.communicate(timeout=30)
    assert (out / "report.html").is_file() and (out / "journal.sqlite").is_file()
    assert json.loads((out / "metrics.json").read_text())["run"]["bars_processed"] == 200
    with (out / "orders.csv").open() as fh:
        orders = list(csv.DictReader(fh))
    assert orders, "the SMA strategy traded"
    assert all(o["broker_order_id"] for o in orders if o["status"] != "rejected")
    with (out / "fills.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) >= 1
