"""The embedded sample data: loads offline, is valid, deterministic and shaped as documented."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import tradeloop.data
from tradeloop.data import SAMPLE_SYMBOLS, load_sample, sample_frame, sample_path
from tradeloop.data.loaders import validate_bars
from tradeloop.errors import DataError

DAILY_BARS = 1042  # business days 2020-01-02 .. 2023-12-29
SESSIONS = 20  # March 2024 weekdays, without Good Friday (29th)
MINUTE_BARS = SESSIONS * 390


def utc(ts: str) -> int:
    return int(pd.Timestamp(ts, tz="UTC").value)


def test_symbols() -> None:
    assert SAMPLE_SYMBOLS == ("ACME", "BOLT", "CRUX", "DYNA")
    assert load_sample().symbols == SAMPLE_SYMBOLS
    assert load_sample("minute").symbols == SAMPLE_SYMBOLS


def test_daily_shape() -> None:
    feed = load_sample("daily")
    expected = pd.bdate_range("2020-01-02", "2023-12-29") + pd.Timedelta(hours=21)
    for sym in SAMPLE_SYMBOLS:
        s = feed[sym]
        assert len(s) == DAILY_BARS
        assert s.ts == [int(t.value) for t in expected.tz_localize("UTC").as_unit("ns")]
    assert feed.start == utc("2020-01-02 21:00")
    assert feed.end == utc("2023-12-29 21:00")


def test_minute_shape() -> None:
    frame = sample_frame("minute")
    assert len(frame) == 4 * MINUTE_BARS
    local = frame["timestamp"].dt.tz_convert("America/New_York")
    per_session = local.groupby([frame["symbol"], local.dt.date]).agg(["size", "min", "max"])
    assert len(per_session) == 4 * SESSIONS
    assert (per_session["size"] == 390).all()
    assert set(per_session["min"].dt.strftime("%H:%M")) == {"09:30"}
    assert set(per_session["max"].dt.strftime("%H:%M")) == {"15:59"}
    days = sorted({d for _, d in per_session.index})
    assert days[0].isoformat() == "2024-03-01" and days[-1].isoformat() == "2024-03-28"
    assert all(d.weekday() < 5 for d in days)
    # New York switched to daylight time on 10 March: the UTC open moves an hour earlier.
    feed = load_sample("minute")
    assert feed["ACME"].ts[0] == utc("2024-03-01 14:30")
    assert feed.end == utc("2024-03-28 19:59")
    assert utc("2024-03-11 13:30") in feed["ACME"].ts


@pytest.mark.parametrize("timeframe", ["daily", "minute"])
def test_sample_is_valid_market_like_data(timeframe: str) -> None:
    frame = sample_frame(timeframe)  # type: ignore[arg-type]
    assert list(frame.columns) == ["timestamp", "symbol", "open", "high", "low", "close", "volume"]
    out = validate_bars(frame)  # raises on any problem
    assert len(out) == len(frame)
    prices = frame[["open", "high", "low", "close"]].to_numpy()
    assert np.allclose(prices, np.round(prices, 2))
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    assert (frame["low"] > 0).all()
    assert frame["volume"].dtype == np.int64 and (frame["volume"] > 0).all()
    # Symbols differ in volatility.
    vol = frame.groupby("symbol")["close"].agg(lambda c: np.log(c).diff().std())
    assert vol.max() > 1.5 * vol.min()


def test_minute_volume_is_u_shaped() -> None:
    frame = sample_frame("minute")
    minute = frame["timestamp"].dt.tz_convert("America/New_York")
    of_day = minute.dt.hour * 60 + minute.dt.minute - (9 * 60 + 30)
    by_minute = frame["volume"].groupby(of_day).mean()
    midday = by_minute.loc[150:240].mean()
    assert by_minute.loc[:29].mean() > 1.5 * midday
    assert by_minute.loc[360:].mean() > 1.5 * midday


def test_files_are_small_and_raw_format() -> None:
    paths = [sample_path("daily"), sample_path("minute")]
    assert [p.name for p in paths] == ["daily.csv.gz", "minute.csv.gz"]
    assert sum(p.stat().st_size for p in paths) < 1_500_000
    raw = pd.read_csv(paths[0], nrows=2)
    assert list(raw.columns) == ["timestamp", "symbol", "open", "high", "low", "close", "volume"]
    assert raw["timestamp"][0] == "2020-01-02T21:00:00Z"


def test_deterministic() -> None:
    a, b = load_sample("daily"), load_sample("daily")
    for sym in SAMPLE_SYMBOLS:
        assert a[sym].ts == b[sym].ts and a[sym].close == b[sym].close
    pd.testing.assert_frame_equal(sample_frame("minute"), sample_frame("minute"))
    # Pinned: the committed files are the source of truth and must not change by accident.
    first = sample_frame("daily").iloc[0]
    assert (first["symbol"], first["close"]) == ("ACME", 120.85)


def test_sample_matches_sample_frame() -> None:
    frame = sample_frame("daily")
    feed = load_sample("daily")
    acme = frame[frame["symbol"] == "ACME"]
    assert feed["ACME"].close == acme["close"].tolist()
    assert feed["ACME"].volume == acme["volume"].astype(float).tolist()


def test_filters() -> None:
    feed = load_sample("daily", symbols=["CRUX", "ACME"], start="2021-01-01", end="2021-12-31")
    assert feed.symbols == ("ACME", "CRUX")
    assert len(feed["ACME"]) == len(pd.bdate_range("2021-01-01", "2021-12-31"))
    assert feed.start == utc("2021-01-01 21:00") and feed.end == utc("2021-12-31 21:00")
    one_day = load_sample("minute", symbols="BOLT", start="2024-03-15", end="2024-03-15")
    assert len(one_day) == 390


def test_unknown_symbol() -> None:
    with pytest.raises(DataError) as info:
        load_sample(symbols=["NOPE"])
    assert info.value.field == "symbols"
    assert "ACME, BOLT, CRUX, DYNA" in str(info.value)


@pytest.mark.parametrize("bad", ["hourly", "Daily", ""])
def test_bad_timeframe(bad: str) -> None:
    for fn in (load_sample, sample_frame, sample_path):
        with pytest.raises(DataError) as info:
            fn(bad)  # type: ignore[arg-type]
        assert (info.value.field, info.value.value) == ("timeframe", bad)


def test_import_tradeloop_data_does_not_import_pandas() -> None:
    code = """
        import sys
        import tradeloop.data
        from tradeloop.data import BarFeed, SymbolSeries, SAMPLE_SYMBOLS
        print(sorted(m for m in ("pandas", "numpy") if m in sys.modules))
        from tradeloop.data import load_bars
        print("pandas" in sys.modules)
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["[]", "True"]


def test_lazy_exports() -> None:
    for name in tradeloop.data.__all__:
        assert getattr(tradeloop.data, name) is not None
    assert "load_bars" in dir(tradeloop.data)
    with pytest.raises(AttributeError):
        tradeloop.data.no_such_thing  # noqa: B018
