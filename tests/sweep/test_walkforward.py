"""Walk-forward: window arithmetic (rolling, anchored, bars, durations), stitching, the tables."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloop.errors import ConfigError
from tradeloop.sweep import walk_forward
from tradeloop.sweep.runner import RunOutcome
from tradeloop.sweep.walkforward import make_windows, parse_length, stitch

from .conftest import small_config  # type: ignore[import-not-found]

DAY = 86_400 * 10**9


def _spans(ws: list) -> list[tuple[int, int, int, int]]:  # type: ignore[type-arg]
    return [(w.is_start, w.is_end, w.oos_start, w.oos_end) for w in ws]


def test_rolling_and_anchored_in_bars() -> None:
    t = np.arange(10) * DAY
    assert _spans(make_windows(t, 4, 2, "rolling")) == [
        (0, 4, 4, 6),
        (2, 6, 6, 8),
        (4, 8, 8, 10),
    ]
    assert _spans(make_windows(t, 4, 4, "anchored")) == [(0, 4, 4, 8), (0, 8, 8, 10)]
    assert make_windows(t, 10, 2) == []


def test_durations_follow_the_calendar() -> None:
    days = pd.bdate_range("2020-01-01", "2022-12-31", tz="UTC")
    t = days.as_unit("ns").asi8
    ws = make_windows(t, "1y", "6mo", "rolling")
    assert len(ws) == 4
    starts = [days[w.oos_start].strftime("%Y-%m-%d") for w in ws]
    assert starts == ["2021-01-01", "2021-07-01", "2022-01-03", "2022-07-01"]
    assert days[ws[1].is_start].strftime("%Y-%m-%d") == "2020-07-01"
    anchored = make_windows(t, "1y", "6mo", "anchored")
    assert all(w.is_start == 0 for w in anchored)


@pytest.mark.parametrize(
    ("value", "want"), [(252, 252), ("252", 252), ("2y", (2, "y")), ("6mo", (6, "mo"))]
)
def test_parse_length(value: object, want: object) -> None:
    assert parse_length(value, "in_sample") == want


@pytest.mark.parametrize("value", [0, -3, "2x", "y", True, 1.5, "0d"])
def test_parse_length_refuses(value: object) -> None:
    with pytest.raises(ConfigError) as err:
        parse_length(value, "sweep.walk_forward.in_sample")
    assert err.value.field == "sweep.walk_forward.in_sample"


def test_mixed_kinds_are_refused() -> None:
    with pytest.raises(ConfigError, match="as bars or both as durations"):
        make_windows(np.arange(100) * DAY, 20, "1mo")


def _check(ws: list, n: int, is_len: int | None, mode: str) -> None:  # type: ignore[type-arg]
    for a, b in itertools.pairwise(ws):
        assert a.oos_end == b.oos_start  # out-of-sample parts meet: no gap, no overlap
    for w in ws:
        assert w.is_end == w.oos_start  # in-sample right before out-of-sample
        assert w.is_start < w.is_end < w.oos_end <= n
        if mode == "anchored":
            assert w.is_start == 0
        elif is_len is not None:
            assert w.is_bars == is_len
    if ws:
        assert ws[-1].oos_end == n  # up to the end of the data


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 300),
    st.integers(1, 100),
    st.integers(1, 60),
    st.sampled_from(["rolling", "anchored"]),
)
def test_window_properties_in_bars(n: int, is_len: int, oos_len: int, mode: str) -> None:
    ws = make_windows(np.arange(n) * DAY, is_len, oos_len, mode)  # type: ignore[arg-type]
    _check(ws, n, is_len, mode)
    assert bool(ws) == (is_len < n)
    if ws:
        assert ws[0].oos_start == is_len


@settings(max_examples=60, deadline=None)
@given(
    st.integers(30, 900),
    st.integers(1, 12),
    st.integers(1, 6),
    st.sampled_from(["rolling", "anchored"]),
    st.integers(0, 30),
)
def test_window_properties_in_months(n: int, is_m: int, oos_m: int, mode: str, offset: int) -> None:
    t = (
        (pd.bdate_range("2019-01-01", periods=n, tz="UTC") + pd.Timedelta(days=offset))
        .as_unit("ns")
        .asi8
    )
    ws = make_windows(t, f"{is_m}mo", f"{oos_m}mo", mode)  # type: ignore[arg-type]
    _check(ws, n, None, mode)


def test_stitching_chains_the_windows() -> None:
    a = RunOutcome(0, {}, {}, None, 0.0, [1, 2, 3], [100.0, 110.0, 120.0], 100.0)
    b = RunOutcome(1, {}, {}, None, 0.0, [4, 5], [100.0, 90.0], 100.0)
    c = RunOutcome(2, {}, {}, None, 0.0, [6, 7], [105.0, 126.0], 100.0)
    ts, eq, win = stitch([a, b, c], 100.0)
    assert ts == [1, 2, 3, 4, 5, 6, 7]
    assert eq == pytest.approx([100, 110, 120, 120, 108, 113.4, 136.08])
    assert win == [0, 0, 0, 1, 1, 2, 2]
    total = eq[-1] / 100 - 1
    assert total == pytest.approx((1.2 * 0.9 * 1.26) - 1)  # returns compound


def test_walk_forward_on_the_sample() -> None:
    cfg = small_config()
    cfg["data"]["symbols"] = ["ACME", "BOLT", "CRUX"]
    cfg["data"]["start"] = "2020-01-01"
    grid = {"fast": [5, 10], "slow": [20, 40]}
    wf = walk_forward(cfg, grid, in_sample="1y", out_of_sample="6mo", executor="serial")
    w = wf.windows
    assert len(w) == 4 and list(w["window"]) == [0, 1, 2, 3]
    assert {"fast", "slow", "is_sharpe", "oos_sharpe", "is_total_return", "oos_error"} <= set(w)
    assert (w["oos_error"] == "").all()
    assert list(wf.summary.columns) == ["in_sample", "out_of_sample", "out_of_sample_stitched"]
    assert wf.summary.index[0] == "sharpe"
    # each window's chosen parameters are the best of its in-sample sweep
    for k, s in enumerate(wf.sweeps):
        assert s.best_params == {"fast": w.loc[k, "fast"], "slow": w.loc[k, "slow"]}
        assert s.best is not None and s.best["sharpe"] == w.loc[k, "is_sharpe"]
    # the stitched curve: out-of-sample only, in time order, chained window to window
    eq = wf.equity
    assert eq.index.is_monotonic_increasing
    assert eq.index[0] == w.loc[0, "oos_start"] and eq.index[-1] == w.loc[3, "oos_end"]
    growth = np.prod([1 + r for r in w["oos_total_return"]])
    assert eq.iloc[-1] / 100_000 == pytest.approx(growth, rel=1e-9)
    stitched = wf.summary.loc["total_return", "out_of_sample_stitched"]
    assert stitched == pytest.approx(growth - 1, rel=1e-9)
    assert wf.summary.loc["num_trades", "out_of_sample_stitched"] == w["oos_num_trades"].sum()
    assert math.isfinite(wf.efficiency) or math.isnan(wf.efficiency)
    anchored = walk_forward(
        cfg, grid, in_sample=252, out_of_sample=126, mode="anchored", executor="serial"
    )
    assert (anchored.windows["is_start"] == anchored.windows["is_start"].iloc[0]).all()


def test_walk_forward_needs_room() -> None:
    with pytest.raises(ConfigError, match="no out-of-sample bars") as err:
        walk_forward(
            small_config(),
            {"fast": [5]},
            in_sample="5y",
            out_of_sample="1y",
            executor="serial",
            windows_prefix="sweep.walk_forward.",
        )
    assert err.value.field == "sweep.walk_forward.in_sample"
