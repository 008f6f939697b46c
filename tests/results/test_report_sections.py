"""The report's sections on the hand-made ``scenario`` run (conftest.py), cell by cell."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradeloop.data.feed import BarFeed
from tradeloop.results import BacktestResult, write_html_report

DAY = 86_400_000_000_000
T0 = 19_723 * DAY  # 2024-01-01 UTC, day 0 of the scenario
Scenario = tuple[BacktestResult, BarFeed]


def section(text: str, anchor: str) -> str:
    """The HTML from ``<h2 id="anchor">`` to the next ``<h2``."""
    start = text.index(f'<h2 id="{anchor}"')
    end = text.find("<h2", start + 1)
    return text[start : end if end >= 0 else len(text)]


def rows(fragment: str) -> list[list[str]]:
    """The text of every cell (th or td) of every table row in ``fragment``."""
    out = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", fragment, re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        out.append([html.unescape(c) for c in cells])
    return out


def image_alts(fragment: str) -> list[str]:
    return re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,', fragment)


def report(tmp_path: Path, result: BacktestResult, feed: BarFeed | None = None) -> str:
    return write_html_report(result, tmp_path / "report.html", feed=feed).read_text("utf-8")


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every matplotlib Figure the report saves, in order."""
    from matplotlib.figure import Figure

    saved: list[Any] = []
    original = Figure.savefig

    def recording_savefig(self: Figure, *args: Any, **kwargs: Any) -> None:
        saved.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_savefig)
    return saved


def test_sections_in_order(tmp_path: Path, scenario: Scenario) -> None:
    text = report(tmp_path, scenario[0], scenario[1])
    anchors = re.findall(r'<h2 id="([^"]+)"', text)
    assert anchors == [
        "run",
        "metrics",
        "equity",
        "monthly",
        "drawdowns",
        "prices",
        "symbols",
        "durations",
        "rejected",
        "trades",
    ]
    assert image_alts(text) == [
        "Equity curve",
        "Drawdown (underwater)",
        "Price and trades: X",
        "Price and trades: Y",
        "Trade durations",
    ]


def test_settings(tmp_path: Path, scenario: Scenario) -> None:
    run = section(report(tmp_path, scenario[0]), "run")
    settings = run.split("<h3>Settings</h3>", 1)[1]
    assert rows(settings) == [
        ["Commission", "type per_share, rate 0.005"],
        ["Participation (max share of a bar's volume)", "0.1"],
        ["Leverage", "2"],
        ["Shorting allowed (account)", "no"],
    ]
    scenario[0].settings = {}
    run = section(report(tmp_path, scenario[0]), "run")
    assert "Not recorded" in run.split("<h3>Settings</h3>", 1)[1]


def test_metrics_count_rejected_orders(tmp_path: Path, scenario: Scenario) -> None:
    assert ["Rejected orders", "3"] in rows(section(report(tmp_path, scenario[0]), "metrics"))


def test_benchmark_on_the_equity_chart(
    tmp_path: Path, scenario: Scenario, figures: list[Any]
) -> None:
    result, feed = scenario
    text = report(tmp_path, result, feed)
    ax = figures[0].axes[0]
    strategy, bench = ax.lines
    assert np.asarray(strategy.get_ydata()).tolist() == result.equity
    days = np.arange(90)
    expected = 5 * (100.0 + days) + np.where(days < 45, 500.0, 400.0)
    assert np.asarray(bench.get_ydata()) == pytest.approx(expected)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "strategy",
        "buy and hold (equal weight)",
    ]
    # (5 * 189 + 400) / 1000 - 1; the deepest fall: 1000 at day 44 -> 5 * 145 + 400 = 1125 ...
    assert "buy and hold of X, Y in equal parts" in text
    assert "total return 34.50%" in text


def test_no_feed_no_benchmark_no_prices(
    tmp_path: Path, scenario: Scenario, figures: list[Any]
) -> None:
    text = report(tmp_path, scenario[0])
    assert len(figures[0].axes[0].lines) == 1  # the strategy only
    assert "No buy and hold comparison: the report was written without the bars (pass feed=" in text
    prices = section(text, "prices")
    assert "Skipped: the report was written without the bars" in prices
    assert image_alts(prices) == []


def test_price_charts_mark_entries_and_exits(
    tmp_path: Path, scenario: Scenario, figures: list[Any]
) -> None:
    result, feed = scenario
    report(tmp_path, result, feed)
    import matplotlib.dates as mdates

    x_fig, y_fig = figures[2], figures[3]
    ax = x_fig.axes[0]
    assert ax.get_title(loc="left") == "X"
    close = ax.lines[0]
    assert np.asarray(close.get_ydata()).tolist() == [100.0 + d for d in range(90)]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["close", "long entry", "long entry (open)", "exit"]

    def points(collection: Any) -> list[tuple[float, float]]:
        return [(round(float(x), 6), float(y)) for x, y in collection.get_offsets()]

    def day(n: int) -> float:
        return round(float(mdates.date2num(np.datetime64(T0 + n * DAY, "ns"))), 6)

    closed, still_open, exits = ax.collections[:3]
    assert points(closed) == [(day(5), 105.0), (day(30), 130.0)]
    assert points(still_open) == [(day(80), 180.0)]
    assert still_open.get_facecolor().size == 0 or still_open.get_facecolor()[0][3] == 0
    assert points(exits) == [(day(20), 120.0), (day(35), 125.0)]
    segments = ax.collections[3].get_segments()  # entry -> exit lines
    assert len(segments) == 2

    ay = y_fig.axes[0]
    assert ay.get_title(loc="left") == "Y"
    legend = [t.get_text() for t in ay.get_legend().get_texts()]
    assert legend == ["close", "short entry", "exit"]
    assert points(ay.collections[0]) == [(day(15), 50.0)]


def test_monthly_returns_table(tmp_path: Path, scenario: Scenario) -> None:
    table = rows(section(report(tmp_path, scenario[0]), "monthly"))
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    assert table[0] == ["Year", *months, "Year total"]
    assert table[1] == ["2024", "10.0%", "-5.0%", "15.8%", *[""] * 9, "21.0%"]
    fragment = section(report(tmp_path, scenario[0]), "monthly")
    assert 'style="background: rgba(214,39,40,0.28)">-5.0%' in fragment  # red, half of 10 %


def test_worst_drawdowns_table(tmp_path: Path, scenario: Scenario) -> None:
    table = rows(section(report(tmp_path, scenario[0]), "drawdowns"))
    assert table == [
        ["#", "Start (peak)", "Trough", "End (recovered)", "Depth", "Length"],
        ["1", "2024-01-31", "2024-02-10", "2024-03-05", "10.00%", "34.0 days"],
        ["2", "2024-03-10", "2024-03-11", "2024-03-12", "1.74%", "2.0 days"],
    ]


def test_per_symbol_table(tmp_path: Path, scenario: Scenario) -> None:
    table = rows(section(report(tmp_path, scenario[0]), "symbols"))
    assert table[0][:5] == [
        "Symbol",
        "Closed trades",
        "Open trades",
        "Win rate",
        "Net P&L (closed)",
    ]
    assert table[1] == ["X", "2", "1", "50.0%", "96.00", "5.22%", "5.00", "4", "2"]
    assert table[2] == ["Y", "1", "0", "100.0%", "49.00", "20.00%", "1.00", "2", "1"]
    assert table[3] == ["All", "3", "1", "66.7%", "145.00", "", "6.00", "6", "3"]


def test_trade_durations(tmp_path: Path, scenario: Scenario) -> None:
    fragment = section(report(tmp_path, scenario[0]), "durations")
    assert rows(fragment) == [
        ["Closed trades", "Count", "Min (days)", "Median", "Mean", "Max"],
        ["All", "3", "5.0", "15.0", "18.3", "35.0"],
        ["Winners", "2", "15.0", "25.0", "25.0", "35.0"],
        ["Losers", "1", "5.0", "5.0", "5.0", "5.0"],
    ]
    assert "1 trade(s) still open at the end are not counted." in fragment
    assert image_alts(fragment) == ["Trade durations"]


def test_rejected_orders(tmp_path: Path, scenario: Scenario) -> None:
    text = report(tmp_path, scenario[0])
    assert '<h2 id="rejected">Rejected orders (3)</h2>' in text
    fragment = section(text, "rejected")
    assert "3 of 6 orders (50.0%) were rejected" in fragment
    assert rows(fragment) == [
        ["Reason", "Orders", "First such rejection"],
        [
            "insufficient buying power",
            "2",
            "insufficient buying power: order needs 1234.00, available 99.00",
        ],
        ["risk: max_position", "1", "risk: max_position: X position could reach 20"],
    ]
    for o in scenario[0].orders:
        o.reject_reason = None
        o.status = o.status if o.status.value != "rejected" else type(o.status).CANCELED
    fragment = section(report(tmp_path, scenario[0]), "rejected")
    assert "No order was rejected (6 orders)." in fragment


def test_open_trades_are_marked(tmp_path: Path, scenario: Scenario) -> None:
    fragment = section(report(tmp_path, scenario[0]), "trades")
    assert fragment.count('<tr class="open">') == 1
    table = rows(fragment)
    assert table[0][:5] == ["status", "symbol", "direction", "entry_time", "exit_time"]
    assert [r[0] for r in table[1:]] == ["closed", "closed", "closed", "open"]
    assert table[4][1:5] == ["X", "long", "2024-03-21", "open"]
    assert table[1][3:5] == ["2024-01-06", "2024-01-21"]  # dates only: daily points
    assert "1 trade(s) were still open when the run ended" in fragment


def test_intraday_times_show_the_minute(tmp_path: Path, scenario: Scenario) -> None:
    result = scenario[0]
    result.equity_ts = [T0 + i * 60_000_000_000 for i in range(90)]  # one point a minute
    for t in result.trades:
        t.entry_ts = T0 + 90 * 60_000_000_000
    table = rows(section(report(tmp_path, result), "trades"))
    assert table[1][3] == "2024-01-01 01:30"


def test_report_of_the_daily_sample_is_fast(tmp_path: Path) -> None:
    from tradeloop.data.sample import load_sample
    from tradeloop.execution import SyncEngine
    from tradeloop.strategies import SmaCross

    feed = load_sample("daily")
    result = SyncEngine(feed, SmaCross(fast=10, slow=30), initial_cash=100_000).run()
    write_html_report(result, tmp_path / "warm.html", feed=feed)  # imports, font cache
    started = time.perf_counter()
    text = write_html_report(result, tmp_path / "report.html", feed=feed).read_text()
    elapsed = time.perf_counter() - started
    assert len(image_alts(text)) == 2 + 4 + 1  # equity, drawdown, 4 symbols, durations
    # about 1 s here; the bound leaves room for a loaded shared machine
    assert elapsed < 6.0, f"report took {elapsed:.2f}s"
