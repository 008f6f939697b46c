"""BacktestResult in a notebook: a short repr, an HTML summary, pandas views and a plot."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from tradeloop.data.feed import BarFeed
from tradeloop.execution.types import OrderSide, OrderStatus, Trade
from tradeloop.results import BacktestResult

DAY = 86_400_000_000_000
T0 = 19_723 * DAY  # 2024-01-01 UTC, day 0 of the scenario
Scenario = tuple[BacktestResult, BarFeed]


def big_result() -> BacktestResult:
    """A result as large as a real minute run: its repr must not print the data."""
    n = 50_000
    trades = []
    for i in range(2_000):
        t = Trade("ACME", OrderSide.BUY, T0 + i * DAY)
        t.exit_ts, t.exit_price, t.entry_price, t.max_qty = T0 + (i + 1) * DAY, 1.0, 1.0, 1.0
        trades.append(t)
    return BacktestResult(
        initial_cash=100_000.0,
        symbols=("ACME", "BOLT", "CRUX", "DYNA", "EVOX", "FIZZ", "GLOW"),
        equity_ts=[T0 + i * 60_000_000_000 for i in range(n)],
        equity=[100_000.0 + i for i in range(n)],
        exposure=[0.0] * n,
        orders=[],
        fills=[],
        trades=trades,
        final_cash=0.0,
        bars_processed=n,
        elapsed_seconds=1.0,
        strategy_name="SmaCross",
        params={"fast": 10},
    )


def test_repr_is_one_short_line(scenario: Scenario) -> None:
    text = repr(scenario[0])
    assert text == (
        "<BacktestResult Handmade [X,Y] 2024-01-01..2024-03-30: 90 points, 6 orders "
        "(3 rejected), 1 fills, 4 trades (1 open), equity 1,000.00 -> 1,210.00 (+21.00%)>"
    )
    big = repr(big_result())
    assert "\n" not in big and len(big) < 250
    assert "[ACME,BOLT,CRUX,DYNA,EVOX,+2]" in big
    assert "50,000 points" in big and "2,000 trades (0 open)" in big
    assert str(scenario[0]) == text


def test_repr_of_an_empty_result() -> None:
    empty = BacktestResult(0.0, (), [], [], [], [], [], [], 0.0, 0, 0.0)
    assert repr(empty) == (
        "<BacktestResult (unnamed) [] no equity points: 0 points, 0 orders (0 rejected), "
        "0 fills, 0 trades (0 open), equity 0.00 -> 0.00>"
    )


def test_repr_html_is_a_compact_summary(scenario: Scenario) -> None:
    result = scenario[0]
    result.strategy_name = "<b>Evil</b>"
    text = result._repr_html_()
    assert text.startswith("<table>") and text.endswith("</table>")
    assert "&lt;b&gt;Evil&lt;/b&gt;" in text and "<b>" not in text
    assert text.count("<tr>") == 12
    for label, value in (
        ("Total return", "21.00%"),
        ("Max drawdown", "10.00%"),
        ("Closed trades", "3"),
        ("Rejected orders", "3"),
        ("Final equity", "1,210.00"),
        ("Period (UTC)", "2024-01-01..2024-03-30"),
    ):
        assert f"{label}</th><td style='text-align:right'>{value}</td>" in text, label
    assert len(big_result()._repr_html_()) < 3_000


def test_trades_df(scenario: Scenario) -> None:
    df = scenario[0].trades_df()
    assert list(df.columns) == [
        "symbol",
        "direction",
        "entry_time",
        "exit_time",
        "duration",
        "is_open",
        "qty",
        "entry_price",
        "exit_price",
        "pnl",
        "commission",
        "net_pnl",
        "return_pct",
    ]
    assert len(df) == 4
    assert str(df["entry_time"].dtype) == "datetime64[ns, UTC]"
    assert df["entry_time"].iloc[0] == pd.Timestamp("2024-01-06", tz="UTC")
    assert df["exit_time"].iloc[0] == pd.Timestamp("2024-01-21", tz="UTC")
    assert df["duration"].iloc[0] == pd.Timedelta(days=15)
    assert df["is_open"].tolist() == [False, False, False, True]
    assert pd.isna(df["exit_time"].iloc[3]) and pd.isna(df["exit_price"].iloc[3])
    assert df["direction"].tolist() == ["long", "short", "long", "long"]
    assert df["net_pnl"].tolist() == [148.0, 49.0, -52.0, -1.0]
    assert df.groupby("symbol")["net_pnl"].sum().to_dict() == {"X": 95.0, "Y": 49.0}


def test_orders_df_and_fills_df(scenario: Scenario) -> None:
    result = scenario[0]
    orders = result.orders_df()
    assert list(orders.columns) == list(result.orders[0].to_dict())
    assert (orders["status"] == "rejected").sum() == 3
    assert orders["created_at"].iloc[1] == pd.Timestamp("2024-01-03", tz="UTC")
    assert orders["reject_reason"].iloc[3] == "risk: max_position: X position could reach 20"
    assert orders["reject_reason"].iloc[0] is None
    assert np.isnan(orders["limit_price"].iloc[0])
    fills = result.fills_df()
    assert list(fills.columns) == list(result.fills[0].to_dict())
    first = fills.iloc[0].to_dict()
    assert np.isnan(first.pop("position_qty"))  # a fill made without it: unknown
    assert first == {
        "execution_id": "E1",
        "order_id": "O1",
        "symbol": "X",
        "side": "buy",
        "qty": 10.0,
        "price": 105.0,
        "commission": 2.0,
        "timestamp": pd.Timestamp("2024-01-06", tz="UTC"),
    }


def test_empty_frames_keep_their_columns() -> None:
    empty = BacktestResult(0.0, (), [], [], [], [], [], [], 0.0, 0, 0.0)
    assert empty.trades_df().empty and "net_pnl" in empty.trades_df().columns
    assert empty.orders_df().empty and "status" in empty.orders_df().columns
    assert empty.fills_df().empty and "price" in empty.fills_df().columns
    assert empty.equity_series().empty


def test_equity_series_and_frame(scenario: Scenario) -> None:
    result = scenario[0]
    s = result.equity_series()
    assert isinstance(s.index, pd.DatetimeIndex) and str(s.index.tz) == "UTC"
    assert s.name == "equity" and s.index.name == "timestamp"
    assert s.tolist() == result.equity
    assert s.index[0] == pd.Timestamp("2024-01-01", tz="UTC")
    assert s.resample("ME").last().pct_change().iloc[1] == pytest.approx(-0.05)
    assert isinstance(result.equity, list)  # the field itself stays the engines' plain list
    frame = result.equity_df()
    assert list(frame.columns) == ["equity", "exposure", "drawdown"]
    assert frame["drawdown"].max() == pytest.approx(0.1)


def test_exact_nanoseconds_in_frames(scenario: Scenario) -> None:
    result = scenario[0]
    result.equity_ts = [T0 + 123_456_789 + i * DAY for i in range(90)]
    assert result.equity_series().index[0].value == T0 + 123_456_789


def test_plot_returns_a_figure(scenario: Scenario) -> None:
    from matplotlib.figure import Figure

    result, feed = scenario
    fig = result.plot()
    assert isinstance(fig, Figure)
    equity_ax, drawdown_ax = fig.axes
    assert np.asarray(equity_ax.lines[0].get_ydata()).tolist() == result.equity
    assert len(equity_ax.lines) == 1
    assert min(np.asarray(drawdown_ax.lines[0].get_ydata())) == pytest.approx(-10.0)
    with_bench = result.plot(feed)
    assert len(with_bench.axes[0].lines) == 2  # and buy and hold of the bars


def test_plot_leaves_pyplot_alone(tmp_path: object) -> None:
    code = """
        import sys
        from tradeloop.results import BacktestResult
        r = BacktestResult(100.0, ("X",), [0, 86_400_000_000_000], [100.0, 101.0], [0.0, 0.0],
                           [], [], [], 101.0, 2, 0.1)
        fig = r.plot()
        print(type(fig).__name__, "matplotlib.pyplot" in sys.modules, "pandas" in sys.modules)
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["Figure", "False", "False"]


def test_rejected_and_open_helpers(scenario: Scenario) -> None:
    result = scenario[0]
    assert [o.id for o in result.rejected_orders] == ["O2", "O4", "O5"]
    assert all(o.status is OrderStatus.REJECTED for o in result.rejected_orders)
    assert [t.entry_price for t in result.open_trades] == [180.0]
