"""Resampling: the whole-feed function against pandas, the incremental Resampler against the
whole-feed function, bucket boundaries, use from a strategy, and bad rules."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeloop import Context, Strategy
from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.data.resample import Resampler, parse_rule, resample
from tradeloop.data.sample import load_sample
from tradeloop.errors import ConfigError, DataError
from tradeloop.execution import AsyncEngine, SimulatedBroker, SyncEngine
from tradeloop.execution.types import Bar

S = 10**9
MIN = 60 * S
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = int(pd.Timestamp("2024-03-01T00:00:00Z").value)
RULES = ["30s", "1min", "5min", "15min", "1h", "4h", "1d"]


def ns(text: str) -> int:
    return int(pd.Timestamp(text).tz_convert("UTC").value)


def series(symbol: str, ts: list[int], seed: int = 0) -> SymbolSeries:
    """Valid random bars at ``ts`` (whole-number volumes, so sums are exact in any order)."""
    rng = np.random.default_rng(seed)
    n = len(ts)
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    open_ = close + rng.normal(0, 0.5, n)
    high = np.maximum(open_, close) + rng.uniform(0, 1, n)
    low = np.minimum(open_, close) - rng.uniform(0, 1, n)
    volume = rng.integers(0, 10_000, n).astype(float)
    return SymbolSeries(
        symbol, ts, open_.tolist(), high.tolist(), low.tolist(), close.tolist(), volume.tolist()
    )


def frame(s: SymbolSeries) -> pd.DataFrame:
    idx = pd.DatetimeIndex(pd.to_datetime(s.ts, unit="ns"))  # naive UTC: origin="epoch" works
    cols = {c: getattr(s, c) for c in ("open", "high", "low", "close", "volume")}
    return pd.DataFrame(cols, index=idx)


def pandas_resample(s: SymbolSeries, rule: str) -> pd.DataFrame:
    rule = rule[:-1] + "D" if rule.endswith("d") else rule  # pandas spells days "D"
    agg = frame(s).resample(rule, origin="epoch", label="left", closed="left")
    out = agg.agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    return out[out["open"].notna()]  # pandas keeps empty buckets; tradeloop has no bar there


def assert_same_as_pandas(got: SymbolSeries, want: pd.DataFrame) -> None:
    assert got.ts == pd.DatetimeIndex(want.index).as_unit("ns").asi8.tolist()
    for col in ("open", "high", "low", "close"):
        assert getattr(got, col) == want[col].tolist(), col
    assert got.volume == pytest.approx(want["volume"].tolist(), rel=1e-12)


def bars_of(feed: BarFeed) -> list[Bar]:
    """Every bar of ``feed`` in the engines' order (time, then symbol)."""
    _, sym, row = feed.timeline()
    out = []
    for i, r in zip(sym, row, strict=True):
        s = feed.series[feed.symbols[i]]
        out.append(Bar(s.symbol, s.ts[r], s.open[r], s.high[r], s.low[r], s.close[r], s.volume[r]))
    return out


def incremental(feed: BarFeed, rule: str) -> dict[str, list[tuple[Any, ...]]]:
    r = Resampler(rule)
    got: dict[str, list[tuple[Any, ...]]] = {s: [] for s in feed.symbols}
    shared = Bar("", 0, 0.0, 0.0, 0.0, 0.0, 0.0)  # one object reused, as the engine does
    for b in bars_of(feed):
        for slot in Bar.__slots__:
            setattr(shared, slot, getattr(b, slot))
        done = r.update(shared)
        if done is not None:
            got[done.symbol].append(as_tuple(done))
    for done in r.flush():
        got[done.symbol].append(as_tuple(done))
    return got


def as_tuple(b: Bar) -> tuple[Any, ...]:
    return (b.ts, b.open, b.high, b.low, b.close, b.volume)


def rows(s: SymbolSeries) -> list[tuple[Any, ...]]:
    return list(zip(s.ts, s.open, s.high, s.low, s.close, s.volume, strict=True))


# Random timelines: strictly increasing offsets (seconds to hours apart) from T0.
gaps = st.lists(
    st.one_of(
        st.integers(1, 120), st.sampled_from([60, 300, 3_600, 86_400]), st.integers(1, 90_000)
    ),
    min_size=1,
    max_size=200,
)


def timeline(steps: list[int], start: int = T0) -> list[int]:
    return [start + int(t) * S for t in np.cumsum(steps)]


PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(gaps, gaps, st.sampled_from(RULES), st.integers(0, 2**16))
def test_resample_matches_pandas_and_incremental_matches_batch(
    a: list[int], b: list[int], rule: str, seed: int
) -> None:
    feed = BarFeed(
        [series("AAA", timeline(a), seed), series("BBB", timeline(b, T0 - 7 * S), seed + 1)]
    )
    out = resample(feed, rule)
    assert out.symbols == feed.symbols
    for sym in feed.symbols:
        assert_same_as_pandas(out[sym], pandas_resample(feed[sym], rule))
    assert incremental(feed, rule) == {sym: rows(out[sym]) for sym in out.symbols}


def test_resample_sample_minute_bars() -> None:
    feed = load_sample("minute")
    for rule in ("5min", "1h", "1d"):
        out = resample(feed, rule)
        for sym in feed.symbols:
            assert_same_as_pandas(out[sym], pandas_resample(feed[sym], rule))
    daily = resample(feed, "1d")
    assert len(daily["ACME"]) == 20  # the 20 sessions of March 2024
    assert incremental(feed, "15min") == {
        sym: rows(s) for sym, s in resample(feed, "15min").series.items()
    }


def test_bucket_boundaries_are_utc_and_labelled_by_start() -> None:
    stamps = [
        "2024-03-01T09:59:59Z",
        "2024-03-01T10:00:00Z",  # first instant of the 10:00 bucket
        "2024-03-01T10:59:59.999999999Z",  # last instant of it
        "2024-03-01T11:00:00Z",
        "2024-03-01T18:30:00-05:00",  # 23:30 UTC
        "2024-03-01T19:00:00-05:00",  # 00:00 UTC: the next UTC day
    ]
    feed = BarFeed([series("X", [ns(t) for t in stamps])])
    hourly = resample(feed, "1h")["X"]
    assert hourly.ts == [
        ns(t)
        for t in (
            "2024-03-01T09:00Z",
            "2024-03-01T10:00Z",
            "2024-03-01T11:00Z",
            "2024-03-01T23:00Z",
            "2024-03-02T00:00Z",
        )
    ]
    s = feed["X"]
    assert hourly.open[1] == s.open[1] and hourly.close[1] == s.close[2]
    assert hourly.high[1] == max(s.high[1:3]) and hourly.low[1] == min(s.low[1:3])
    assert hourly.volume[1] == s.volume[1] + s.volume[2]
    daily = resample(feed, "1d")["X"]
    assert daily.ts == [ns("2024-03-01T00:00Z"), ns("2024-03-02T00:00Z")]
    assert daily.close == [s.close[4], s.close[5]]


def test_resample_keeps_the_input_and_empty_series() -> None:
    s = series("X", [T0 + i * MIN for i in range(10)])
    feed = BarFeed([s, SymbolSeries("EMPTY", (), (), (), (), (), ())])
    before = rows(s)
    out = resample(feed, "5min")
    assert rows(feed["X"]) == before
    assert len(out["X"]) == 2 and len(out["EMPTY"]) == 0
    same = resample(BarFeed([s]), "1min")["X"]  # one bar per bucket: nothing changes
    assert rows(same) == before


def test_resampler_emits_a_bucket_when_the_next_one_starts() -> None:
    r = Resampler("5min")
    assert r.width == 5 * MIN and repr(r) == "Resampler('5min')"
    assert r.update(Bar("X", T0, 10.0, 11.0, 9.0, 10.5, 100.0)) is None
    assert r.update(Bar("Y", T0, 50.0, 51.0, 49.0, 50.0, 7.0)) is None  # symbols are separate
    assert r.update(Bar("X", T0 + 4 * MIN, 10.5, 12.0, 10.0, 11.0, 50.0)) is None
    partial = r.current("X")
    assert partial is not None and as_tuple(partial) == (T0, 10.0, 12.0, 9.0, 11.0, 150.0)
    assert r.current("Z") is None
    done = r.update(Bar("X", T0 + 7 * MIN, 11.0, 11.5, 8.0, 9.0, 10.0))
    assert done is not None and done.symbol == "X"
    assert as_tuple(done) == (T0, 10.0, 12.0, 9.0, 11.0, 150.0)
    assert [as_tuple(b) for b in r.flush("X")] == [(T0 + 5 * MIN, 11.0, 11.5, 8.0, 9.0, 10.0)]
    assert r.flush("X") == []
    assert [(b.symbol, b.close) for b in r.flush()] == [("Y", 50.0)]
    assert r.flush() == []


def test_resampler_rejects_bars_out_of_order() -> None:
    r = Resampler("1h")
    r.update(Bar("X", T0 + 10 * MIN, 10.0, 11.0, 9.0, 10.0, 1.0))
    for ts in (T0 + 10 * MIN, T0 + 5 * MIN, T0 - HOUR):
        with pytest.raises(DataError) as info:
            r.update(Bar("X", ts, 10.0, 11.0, 9.0, 10.0, 1.0))
        assert (info.value.field, info.value.value) == ("ts", ts)
        assert "X" in info.value.reason


class TwoTimeframes(Strategy):
    """Collects the hourly bars a Resampler builds from the bars it is given."""

    def on_start(self, ctx: Context) -> None:
        self.hourly = Resampler("1h")
        self.bars: list[tuple[str, tuple[Any, ...]]] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        done = self.hourly.update(bar)
        if done is not None:
            self.bars.append((done.symbol, as_tuple(done)))

    def on_stop(self, ctx: Context) -> None:
        self.bars += [(b.symbol, as_tuple(b)) for b in self.hourly.flush()]


def test_a_strategy_gets_the_same_hourly_bars_in_both_engines() -> None:
    feed = load_sample("minute", symbols=["ACME", "BOLT"], end="2024-03-05")
    want = resample(feed, "1h")
    sync = TwoTimeframes()
    SyncEngine(feed, sync).run()
    live = TwoTimeframes()
    asyncio.run(AsyncEngine(SimulatedBroker(feed), live).run())
    assert live.bars == sync.bars
    for sym in feed.symbols:
        assert [b for s, b in sync.bars if s == sym] == rows(want[sym])


@pytest.mark.parametrize(
    ("rule", "width"),
    [("30s", 30 * S), ("1min", MIN), ("15MIN", 15 * MIN), (" 4 h ", 4 * HOUR), ("1d", DAY)],
)
def test_parse_rule(rule: str, width: int) -> None:
    assert parse_rule(rule) == width


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("", "number and a unit"),
        ("5", "number and a unit"),
        ("min", "number and a unit"),
        ("-5min", "number and a unit"),
        ("1.5h", "number and a unit"),
        ("5m", "'min'"),
        ("1w", "unknown unit 'w'"),
        ("0min", "longer than 0"),
        ("7min", "divide a day"),
        ("5h", "divide a day"),
        ("2d", "divide a day"),
        (5, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_bad_rules_are_rejected_naming_rule(rule: Any, reason: str) -> None:
    for attempt in (
        lambda: parse_rule(rule),
        lambda: Resampler(rule),
        lambda: resample(FEED, rule),
    ):
        with pytest.raises(ConfigError) as info:
            attempt()
        assert (info.value.field, info.value.value) == ("rule", rule)
        assert reason in info.value.reason


FEED = BarFeed([series("X", [T0, T0 + MIN])])


def test_resample_needs_a_feed() -> None:
    with pytest.raises(DataError) as info:
        resample(pd.DataFrame(), "1h")  # type: ignore[arg-type]
    assert (info.value.field, info.value.value) == ("feed", "DataFrame")


def test_volume_sums_are_close_for_fractional_volumes() -> None:
    s = series("X", [T0 + i * S for i in range(1000)])
    s.volume = [v + 0.1 for v in s.volume]
    out = resample(BarFeed([s]), "1min")["X"]
    want = pandas_resample(s, "1min")["volume"].tolist()
    assert all(math.isclose(g, w, rel_tol=1e-12) for g, w in zip(out.volume, want, strict=True))
