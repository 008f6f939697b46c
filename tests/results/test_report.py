"""write_html_report: a self-contained, escaped HTML file with embedded PNG plots."""

from __future__ import annotations

import base64
import importlib
import re
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradeloop.execution.types import OrderSide, Trade
from tradeloop.results import BacktestResult, write_html_report
from tradeloop.results.plots import thin as _thin
from tradeloop.results.report import MAX_TRADE_ROWS, NO_PLOTS_NOTE, format_metric

DAY = 86_400_000_000_000
T0 = 19_723 * DAY  # 2024-01-01 UTC
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MPL_MODULES = (
    "matplotlib",
    "matplotlib.figure",
    "matplotlib.backends",
    "matplotlib.backends.backend_agg",
    "matplotlib.dates",
)


def make_trade(i: int, pnl: float) -> Trade:
    t = Trade("X", OrderSide.BUY if i % 2 == 0 else OrderSide.SELL, T0 + i * DAY)
    t.entry_price, t.max_qty, t.pnl, t.commission = 100.0, 10.0, pnl, 1.0
    t.exit_ts, t.exit_price = T0 + (i + 1) * DAY, 100.0 + pnl / 10.0
    return t


def make_result(
    equity: list[float] | None = None, trades: list[Trade] | None = None, **kw: Any
) -> BacktestResult:
    equity = [100.0, 110.0, 99.0, 121.0] if equity is None else equity
    fields: dict[str, Any] = {
        "initial_cash": 100.0,
        "symbols": ("X", "Y&Z"),
        "equity_ts": [T0 + i * DAY for i in range(len(equity))],
        "equity": equity,
        "exposure": [0.0] * len(equity),
        "orders": [],
        "fills": [],
        "trades": [make_trade(0, 50.0), make_trade(1, -20.0)] if trades is None else trades,
        "final_cash": equity[-1] if equity else 100.0,
        "bars_processed": 2 * len(equity),
        "elapsed_seconds": 0.5,
        "strategy_name": "SmaCross",
        "params": {"fast": 10, "slow": 30},
    }
    fields.update(kw)
    return BacktestResult(**fields)


PNG_DATA = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")


def png_payloads(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in PNG_DATA.findall(text)]


def trade_rows(text: str) -> int:
    section = text.split('<h2 id="trades">Trades', 1)[1]
    return section.count("<tr") - 1  # minus the header row


def test_report_with_plots(tmp_path: Path) -> None:
    path = write_html_report(make_result(), tmp_path / "sub" / "report.html")
    assert path == tmp_path / "sub" / "report.html"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # equity, drawdown and the trade durations (no bars given: no price charts)
    assert text.count("data:image/png;base64,") == 3
    pngs = png_payloads(text)
    assert len(pngs) == 3
    assert all(p.startswith(PNG_MAGIC) and len(p) > 5_000 for p in pngs)
    alts = re.findall(r'<img alt="([^"]*)"', text)
    assert alts == ["Equity curve", "Drawdown (underwater)", "Trade durations"]
    assert NO_PLOTS_NOTE not in text
    assert "<title>Backtest report: SmaCross</title>" in text


def test_report_is_self_contained(tmp_path: Path) -> None:
    text = write_html_report(make_result(), tmp_path / "r.html").read_text()
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text and "<link" not in text
    srcs = re.findall(r'src="([^"]*)"', text)
    assert len(srcs) == 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    hrefs = re.findall(r'href="([^"]*)"', text)
    assert hrefs and all(h.startswith("#") for h in hrefs)  # only links within the page
    ids = set(re.findall(r'id="([^"]*)"', text))
    assert {h[1:] for h in hrefs} <= ids


def test_metrics_table_formatting(tmp_path: Path) -> None:
    text = write_html_report(make_result(), tmp_path / "r.html").read_text()
    assert "<tr><th>Total return</th><td>21.00%</td></tr>" in text
    assert "<tr><th>Max drawdown</th><td>10.00%</td></tr>" in text
    assert "<tr><th>Sharpe ratio</th><td>7.23</td></tr>" in text  # 7.2287...
    assert "<tr><th>Max drawdown duration</th><td>2.00 days</td></tr>" in text
    assert "<tr><th>Win rate</th><td>50.00%</td></tr>" in text
    assert "<tr><th>Closed trades</th><td>2</td></tr>" in text
    assert "<tr><th>Profit factor</th><td>2.33</td></tr>" in text  # net pnl 49 / 21
    assert "<tr><th>Best trade</th><td>5.00%</td></tr>" in text
    assert "<tr><th>Final equity</th><td>121.00</td></tr>" in text
    assert "<tr><th>Start</th><td>2024-01-01T00:00:00+00:00</td></tr>" in text
    assert "<tr><th>Symbols</th><td>X, Y&amp;Z</td></tr>" in text


def test_given_metrics_and_title_are_used(tmp_path: Path) -> None:
    metrics = {"total_return": 0.5, "profit_factor": float("inf"), "custom_score": 1.23456}
    text = write_html_report(make_result(), tmp_path / "r.html", metrics, "My <run>").read_text()
    assert "<title>My &lt;run&gt;</title>" in text
    assert "<h1>My &lt;run&gt;</h1>" in text
    assert "<tr><th>Total return</th><td>50.00%</td></tr>" in text
    assert "<tr><th>Profit factor</th><td>∞</td></tr>" in text
    assert "<tr><th>Custom score</th><td>1.23</td></tr>" in text
    assert "Sharpe" not in text  # only the given metrics are shown


def test_everything_is_escaped(tmp_path: Path) -> None:
    evil = "<script>alert('x')</script>"
    result = make_result(strategy_name=evil, params={"note": evil}, symbols=(evil,))
    result.trades[0].symbol = evil
    text = write_html_report(result, tmp_path / "r.html").read_text()
    assert "<script" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "<title>Backtest report: &lt;script&gt;" in text


def test_trades_table_rows_and_cap(tmp_path: Path) -> None:
    text = write_html_report(make_result(), tmp_path / "r.html").read_text()
    assert trade_rows(text) == 2
    assert '<h2 id="trades">Trades (2)</h2>' in text
    assert "Showing the first" not in text
    assert '<td class="num">5.00%</td>' in text  # return_pct of the first trade
    assert "<td>short</td>" in text

    many = [make_trade(i, float(i % 7 - 3)) for i in range(MAX_TRADE_ROWS + 100)]
    text = write_html_report(make_result(trades=many), tmp_path / "big.html").read_text()
    assert trade_rows(text) == MAX_TRADE_ROWS == 500
    assert "Showing the first 500 of 600 trades" in text
    assert '<h2 id="trades">Trades (600)</h2>' in text


def test_no_trades_no_equity(tmp_path: Path) -> None:
    empty = make_result(equity=[], trades=[])
    text = write_html_report(empty, tmp_path / "r.html").read_text()
    assert "No trades." in text
    assert "No equity points to plot." in text
    assert "No closed trades." in text
    assert "data:image/png" not in text
    assert "<tr><th>Final equity</th><td>100.00</td></tr>" in text


def test_single_point_still_plots(tmp_path: Path) -> None:
    text = write_html_report(make_result(equity=[100.0]), tmp_path / "r.html").read_text()
    assert len(png_payloads(text)) == 3  # equity, drawdown, durations


def test_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in MPL_MODULES:
        monkeypatch.setitem(sys.modules, name, None)  # importing any of them raises ImportError
    text = write_html_report(make_result(), tmp_path / "r.html").read_text()
    assert "install tradeloop[report] for plots" in text
    assert "data:image/png" not in text
    assert "<tr><th>Total return</th><td>21.00%</td></tr>" in text
    assert trade_rows(text) == 2


def test_plots_use_datetime_axis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.dates import ConciseDateFormatter
    from matplotlib.figure import Figure

    mdates: Any = importlib.import_module("matplotlib.dates")
    figures: list[Figure] = []
    original = Figure.savefig

    def recording_savefig(self: Figure, *args: Any, **kwargs: Any) -> None:
        figures.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_savefig)
    write_html_report(make_result(), tmp_path / "r.html")
    assert len(figures) == 3  # equity, drawdown, trade durations
    expected = np.array([T0 + i * DAY for i in range(4)], dtype="datetime64[ns]")
    for fig in figures[:2]:
        ax = fig.axes[0]
        assert isinstance(ax.xaxis.get_major_formatter(), ConciseDateFormatter)
        x = ax.lines[0].get_xdata()
        assert np.array_equal(np.asarray(x), expected)
        lo, hi = ax.get_xlim()  # the data span of 3 days plus matplotlib's margins
        first, last = (mdates.date2num(datetime(2024, 1, d, tzinfo=UTC)) for d in (1, 4))
        assert lo <= first < lo + 0.5
        assert hi - 0.5 < last <= hi
    equity_y = np.asarray(figures[0].axes[0].lines[0].get_ydata())
    assert equity_y.tolist() == [100.0, 110.0, 99.0, 121.0]
    drawdown_y = np.asarray(figures[1].axes[0].lines[0].get_ydata())
    assert drawdown_y.tolist() == pytest.approx([0.0, 0.0, -10.0, 0.0])


def test_pyplot_and_backend_untouched(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    code = f"""
        import sys, matplotlib
        before = dict.__getitem__(matplotlib.rcParams, "backend")  # raw value, no resolution
        from tradeloop.results import BacktestResult, write_html_report
        r = BacktestResult(100.0, ("X",), [0, 86_400_000_000_000], [100.0, 101.0], [0.0, 0.0],
                           [], [], [], 101.0, 2, 0.1)
        write_html_report(r, {str(out)!r})
        after = dict.__getitem__(matplotlib.rcParams, "backend")
        print("matplotlib.pyplot" in sys.modules, before == after)
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True"]
    assert out.read_text().count("data:image/png;base64,") == 2  # no trades: no durations


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("total_return", 0.21, "21.00%"),
        ("max_drawdown", 0.23456, "23.46%"),
        ("cagr", -1.0, "-100.00%"),
        ("best_trade_pct", 12.345, "12.35%"),
        ("num_trades", 1234.0, "1,234"),
        ("sharpe", 1.23456, "1.23"),
        ("final_equity", 1_234_567.891, "1,234,567.89"),
        ("max_drawdown_duration", 12.5, "12.50 days"),
        ("profit_factor", float("inf"), "∞"),
        ("calmar", float("-inf"), "-∞"),
        ("sortino", float("nan"), "n/a"),
    ],
)
def test_format_metric(key: str, value: float, text: str) -> None:
    assert format_metric(key, value) == text


def test_thin_keeps_extremes() -> None:
    rng = np.random.default_rng(7)
    values = np.cumsum(rng.normal(size=100_003))
    keep = _thin(values, 4_000)
    assert keep.size <= 4_004
    assert np.all(np.diff(keep) > 0)
    assert keep[0] == 0 and keep[-1] == values.size - 1
    assert int(values.argmin()) in keep and int(values.argmax()) in keep
    assert np.array_equal(_thin(values[:10], 4_000), np.arange(10))
