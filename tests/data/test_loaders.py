"""Loaders: every kind of bad input is rejected with a precise DataError; good input loads."""

from __future__ import annotations

import gzip
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tradeloop.data import BarFeed
from tradeloop.data.loaders import (
    from_dataframe,
    load_bars,
    load_csv,
    load_parquet,
    validate_bars,
)
from tradeloop.errors import DataError

HOUR = 3_600 * 10**9
DAY = 24 * HOUR
T0 = int(pd.Timestamp("2020-01-02T21:00:00Z").value)  # Thursday


def bars(n: int = 5, symbol: str | None = None, start: str = "2020-01-02 21:00") -> pd.DataFrame:
    """``n`` valid daily bars as a raw frame with an ISO timestamp column."""
    close = 100.0 + np.arange(n, dtype=float)
    df = pd.DataFrame(
        {
            "timestamp": pd.date_range(start, periods=n, freq="D").strftime("%Y-%m-%dT%H:%M:%SZ"),
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": 1000.0 + np.arange(n),
        }
    )
    if symbol is not None:
        df.insert(1, "symbol", symbol)
    return df


def long_bars(symbols: tuple[str, ...] = ("AAA", "BBB"), n: int = 4) -> pd.DataFrame:
    """Interleaved multi-symbol bars, rows ordered by time then symbol."""
    df = pd.concat([bars(n, s) for s in symbols])
    return df.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def reject(df: pd.DataFrame, symbol: str | None = "X", source: str = "bars.csv") -> DataError:
    with pytest.raises(DataError) as info:
        validate_bars(df, source, symbol)
    assert source in str(info.value)
    return info.value


def set_cell(df: pd.DataFrame, row: int, col: str, value: Any) -> pd.DataFrame:
    """A copy of ``df`` with one cell changed (``row`` 0-based); object column if needed."""
    out = df.copy()
    if isinstance(value, str) and out[col].dtype != object:
        out[col] = out[col].astype(object)
    out.loc[row, col] = value
    return out


# --------------------------------------------------------------------------------------------------
# rejections


def test_missing_columns_names_them_and_lists_found() -> None:
    err = reject(bars().drop(columns=["close", "volume"]))
    assert err.field == "columns"
    assert err.value == ["close", "volume"]
    assert "found columns" in str(err) and "'high'" in str(err)


def test_missing_timestamp_column() -> None:
    err = reject(bars().drop(columns=["timestamp"]))
    assert err.field == "columns"
    assert err.value == ["timestamp"]


@pytest.mark.parametrize("col", ["open", "high", "low", "close", "volume"])
def test_nan_in_value_column(col: str) -> None:
    err = reject(set_cell(bars(), 2, col, np.nan))
    assert err.field == col
    assert "missing value at row 3" in str(err)
    assert "2020-01-04T21:00:00Z" in str(err)


@pytest.mark.parametrize("missing", [None, np.nan])
def test_missing_timestamp(missing: Any) -> None:
    err = reject(set_cell(bars(), 1, "timestamp", missing))
    assert err.field == "timestamp"
    assert "missing value at row 2" in str(err)


def test_missing_symbol_value() -> None:
    err = reject(set_cell(long_bars(), 3, "symbol", None), symbol=None)
    assert err.field == "symbol"
    assert "row 4" in str(err)


def test_first_missing_value_across_columns_is_reported() -> None:
    df = set_cell(set_cell(bars(), 3, "open", np.nan), 1, "volume", np.nan)
    err = reject(df)
    assert err.field == "volume"
    assert "row 2" in str(err)


def test_duplicate_timestamp() -> None:
    df = set_cell(bars(), 2, "timestamp", bars()["timestamp"][1])
    err = reject(df)
    assert err.field == "timestamp"
    assert err.value == "2020-01-03T21:00:00Z"
    assert "duplicate timestamp at row 3" in str(err)
    assert "same as row 2" in str(err)


def test_unsorted_timestamp() -> None:
    df = set_cell(bars(), 3, "timestamp", "2020-01-01T21:00:00Z")
    err = reject(df)
    assert err.field == "timestamp"
    assert err.value == "2020-01-01T21:00:00Z"
    assert "unsorted timestamp at row 4" in str(err)
    assert "earlier than row 3" in str(err)


def test_sortedness_is_checked_on_the_data_as_given() -> None:
    # Every timestamp is unique and the set is valid once sorted: the order itself is the error.
    df = bars().iloc[[0, 2, 1, 3, 4]].reset_index(drop=True)
    err = reject(df)
    assert err.field == "timestamp"
    assert "unsorted" in str(err) and "row 3" in str(err)


def test_long_format_checks_order_per_symbol() -> None:
    df = long_bars()  # AAA and BBB share every timestamp: fine
    assert len(validate_bars(df)) == 8
    # Row 6 (BBB, day 3) gets BBB's day-2 timestamp, still later than AAA's row 5.
    bad = set_cell(df, 5, "timestamp", df["timestamp"][3])
    err = reject(bad, symbol=None)
    assert err.field == "timestamp"
    assert "duplicate timestamp at row 6" in str(err)
    assert "symbol BBB" in str(err)
    assert "same as row 4 of the same symbol" in str(err)


def test_long_format_unsorted_within_one_symbol() -> None:
    df = long_bars()
    # Swap AAA's last two bars (rows 5 and 7); BBB stays sorted.
    swapped = df.copy()
    swapped.loc[[4, 6]] = df.loc[[6, 4]].to_numpy()
    err = reject(swapped, symbol=None)
    assert "unsorted timestamp at row 7" in str(err)
    assert "symbol AAA" in str(err)


def test_high_below_low() -> None:
    df = set_cell(set_cell(bars(), 2, "high", 90.0), 2, "open", 90.0)
    df = set_cell(df, 2, "close", 90.0)
    err = reject(df)
    assert err.field == "high"
    assert err.value == 90.0
    assert "below low=101.0" in str(err)
    assert "row 3" in str(err)


@pytest.mark.parametrize(("col", "value"), [("open", 200.0), ("open", 1.0), ("close", 250.0)])
def test_open_or_close_outside_range(col: str, value: float) -> None:
    err = reject(set_cell(bars(), 4, col, value))
    assert err.field == col
    assert err.value == value
    assert "outside [low, high]=[103.0, 105.0]" in str(err)
    assert "row 5" in str(err)


@pytest.mark.parametrize("col", ["open", "high", "low", "close"])
@pytest.mark.parametrize("value", [0.0, -5.0])
def test_non_positive_price(col: str, value: float) -> None:
    err = reject(set_cell(bars(), 1, col, value))
    assert err.field == col  # checked before the range checks it also fails
    assert err.value == value
    assert "price must be > 0 at row 2 (timestamp 2020-01-03T21:00:00Z) of bars.csv" in str(err)


def test_negative_volume() -> None:
    err = reject(set_cell(bars(), 3, "volume", -1.0))
    assert err.field == "volume"
    assert err.value == -1.0
    assert "volume must be >= 0 at row 4" in str(err)


def test_zero_volume_is_fine() -> None:
    assert validate_bars(set_cell(bars(), 3, "volume", 0.0), symbol="X")["volume"][3] == 0.0


@pytest.mark.parametrize("col", ["open", "high", "low", "close", "volume"])
def test_non_numeric_value_in_csv(tmp_path: Path, col: str) -> None:
    path = write_csv(set_cell(bars(), 2, col, "12,5"), tmp_path / "bars.csv")
    with pytest.raises(DataError) as info:
        load_csv(path, "X")
    assert info.value.field == col
    assert info.value.value == "12,5"
    assert "not a finite number at row 3" in str(info.value)
    assert "bars.csv" in str(info.value)


def test_infinite_price() -> None:
    err = reject(set_cell(bars(), 1, "high", np.inf))
    assert err.field == "high"
    assert "not a finite number at row 2" in str(err)


def test_unparseable_timestamp() -> None:
    err = reject(set_cell(bars(), 2, "timestamp", "yesterday-ish"))
    assert err.field == "timestamp"
    assert err.value == "yesterday-ish"
    assert "cannot be parsed" in str(err) and "row 3" in str(err)


def test_empty_dataframe() -> None:
    err = reject(bars().iloc[0:0], source="<dataframe>")
    assert err.field == "rows"
    assert err.value == 0


def test_header_only_csv(tmp_path: Path) -> None:
    path = write_csv(bars().iloc[0:0], tmp_path / "empty.csv")
    with pytest.raises(DataError) as info:
        load_csv(path, "X")
    assert (info.value.field, info.value.value) == ("rows", 0)
    assert "empty.csv" in str(info.value)


def test_zero_byte_csv(tmp_path: Path) -> None:
    path = tmp_path / "nothing.csv"
    path.write_text("")
    with pytest.raises(DataError) as info:
        load_bars(path, symbol="X")
    assert (info.value.field, info.value.value) == ("rows", 0)


def test_no_symbol_column_needs_symbol_argument() -> None:
    err = reject(bars(), symbol=None)
    assert err.field == "symbol"
    assert "pass symbol=" in str(err)


def test_symbol_column_must_match_symbol_argument() -> None:
    err = reject(long_bars(), symbol="AAA")
    assert err.field == "symbol"
    assert err.value == "BBB"
    assert "row 2" in str(err)


def test_duplicate_and_ambiguous_columns() -> None:
    df = bars()
    df["Close "] = df["close"]
    assert reject(df).field == "columns"
    df = bars()
    df["date"] = df["timestamp"]
    err = reject(df)
    assert err.field == "columns"
    assert err.value == ["date", "timestamp"]
    assert "ambiguous" in str(err)


def test_first_offending_row_wins_across_value_checks() -> None:
    df = set_cell(bars(), 3, "volume", -1.0)  # row 4
    df = set_cell(df, 1, "close", 500.0)  # row 2: reported first
    err = reject(df)
    assert err.field == "close"
    assert "row 2" in str(err)


def test_bad_input_is_not_modified() -> None:
    df = bars()
    before = df.copy()
    validate_bars(df, symbol="X")
    pd.testing.assert_frame_equal(df, before)


# --------------------------------------------------------------------------------------------------
# load_bars: sources, formats, filters (errors)


def test_missing_file() -> None:
    with pytest.raises(DataError) as info:
        load_bars("/no/such/dir/bars.csv", symbol="X")
    assert info.value.field == "path"
    assert info.value.value == "/no/such/dir/bars.csv"


def test_unknown_suffix(tmp_path: Path) -> None:
    path = write_csv(bars(), tmp_path / "bars.txt")
    with pytest.raises(DataError) as info:
        load_bars(path, symbol="X")
    assert info.value.field == "format"
    assert info.value.value == ".txt"
    assert "bars.txt" in str(info.value)


def test_bad_format_argument(tmp_path: Path) -> None:
    path = write_csv(bars(), tmp_path / "bars.csv")
    with pytest.raises(DataError) as info:
        load_bars(path, symbol="X", format="xlsx")
    assert (info.value.field, info.value.value) == ("format", "xlsx")


def test_requested_symbol_not_in_data(tmp_path: Path) -> None:
    path = write_csv(long_bars(), tmp_path / "long.csv")
    with pytest.raises(DataError) as info:
        load_bars(path, symbols=["AAA", "ZZZ"])
    assert info.value.field == "symbols"
    assert info.value.value == ["ZZZ"]
    assert "available: AAA, BBB" in str(info.value)


def test_requested_symbol_not_in_mapping(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_bars({"AAA": bars()}, symbols="ZZZ")
    assert info.value.field == "symbols"
    assert "ZZZ" in str(info.value) and "available: AAA" in str(info.value)


@pytest.mark.parametrize(
    ("start", "end"),
    [("2021-01-01", None), (None, "2019-12-31"), ("2020-01-03 22:00", "2020-01-04 20:59")],
)
def test_time_filter_leaving_nothing(start: str | None, end: str | None) -> None:
    with pytest.raises(DataError) as info:
        from_dataframe(bars(), "X", start=start, end=end)
    assert (info.value.field, info.value.value) == ("rows", 0)


def test_end_before_start() -> None:
    with pytest.raises(DataError) as info:
        from_dataframe(bars(), "X", start="2020-01-05", end="2020-01-03")
    assert info.value.field == "end"


def test_unparseable_start() -> None:
    with pytest.raises(DataError) as info:
        from_dataframe(bars(), "X", start="not a date")
    assert (info.value.field, info.value.value) == ("start", "not a date")


def test_parquet_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bars.parquet"
    bars(symbol="X").to_parquet(path)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert info.value.field == "format"
    assert "pip install 'tradeloop[parquet]'" in str(info.value)


def test_mapping_with_symbol_argument_is_rejected() -> None:
    with pytest.raises(DataError) as info:
        load_bars({"AAA": bars()}, symbol="AAA")
    assert info.value.field == "symbol"


def test_mapping_file_with_other_symbol(tmp_path: Path) -> None:
    path = write_csv(bars(symbol="BBB"), tmp_path / "aaa.csv")
    with pytest.raises(DataError) as info:
        load_bars({"AAA": path})
    assert (info.value.field, info.value.value) == ("symbol", "BBB")
    assert "aaa.csv" in str(info.value)


def test_unsupported_source_type() -> None:
    with pytest.raises(DataError) as info:
        load_bars(42)  # type: ignore[arg-type]
    assert (info.value.field, info.value.value) == ("source", "int")


# --------------------------------------------------------------------------------------------------
# happy paths


def assert_feed(feed: BarFeed, symbols: tuple[str, ...], n: int) -> None:
    assert feed.symbols == symbols
    for sym in symbols:
        s = feed[sym]
        assert len(s) == n
        assert s.ts == [T0 + i * DAY for i in range(n)]
        assert s.close == [100.0 + i for i in range(n)]
        assert all(isinstance(x, float) for x in s.volume)


def test_validate_bars_output_format() -> None:
    out = validate_bars(long_bars()[::-1].reset_index(drop=True).iloc[::2].iloc[::-1])
    assert list(out.columns) == ["symbol", "ts", "open", "high", "low", "close", "volume"]
    assert out["ts"].dtype == np.int64
    for col in ("open", "high", "low", "close", "volume"):
        assert out[col].dtype == np.float64
    assert list(out.index) == list(range(len(out)))
    keys = list(zip(out["symbol"], out["ts"], strict=True))
    assert keys == sorted(keys)


def test_load_csv(tmp_path: Path) -> None:
    path = write_csv(bars(), tmp_path / "x.csv")
    assert_feed(load_csv(path, "X"), ("X",), 5)
    assert_feed(load_bars(str(path), symbol="X"), ("X",), 5)


def test_load_csv_gz(tmp_path: Path) -> None:
    path = tmp_path / "long.csv.gz"
    with gzip.open(path, "wt") as fh:
        long_bars().to_csv(fh, index=False)
    assert_feed(load_bars(path), ("AAA", "BBB"), 4)
    assert_feed(load_csv(path), ("AAA", "BBB"), 4)


def test_csv_column_names_are_case_and_space_insensitive(tmp_path: Path) -> None:
    df = long_bars().rename(columns={"timestamp": " Date ", "symbol": "Ticker", "open": "OPEN"})
    df.columns = [c if c != "close" else "Close " for c in df.columns]
    assert_feed(load_bars(write_csv(df, tmp_path / "odd.csv")), ("AAA", "BBB"), 4)


def test_csv_keeps_symbols_as_text(tmp_path: Path) -> None:
    path = write_csv(bars(symbol="0700"), tmp_path / "hk.csv")
    assert load_bars(path).symbols == ("0700",)


def test_format_argument_overrides_suffix(tmp_path: Path) -> None:
    path = write_csv(bars(), tmp_path / "bars.data")
    assert_feed(load_bars(path, symbol="X", format="csv"), ("X",), 5)


def test_load_parquet(tmp_path: Path) -> None:
    path = tmp_path / "long.parquet"
    long_bars().to_parquet(path)
    assert_feed(load_parquet(path), ("AAA", "BBB"), 4)
    pq = tmp_path / "x.pq"
    bars().to_parquet(pq)
    assert_feed(load_bars(pq, symbol="X"), ("X",), 5)


def test_parquet_with_datetime_index(tmp_path: Path) -> None:
    df = bars()
    df.index = pd.DatetimeIndex(pd.to_datetime(df.pop("timestamp")), name="Date")
    path = tmp_path / "indexed.parquet"
    df.to_parquet(path)
    assert_feed(load_bars(path, symbol="X"), ("X",), 5)


def test_dataframe_source() -> None:
    assert_feed(from_dataframe(bars(), "X"), ("X",), 5)
    assert_feed(load_bars(long_bars()), ("AAA", "BBB"), 4)


def test_dataframe_with_datetime_index() -> None:
    df = bars()
    df.index = pd.DatetimeIndex(pd.to_datetime(df.pop("timestamp")).dt.tz_localize(None))
    assert df.index.tz is None  # naive: taken as UTC
    assert_feed(from_dataframe(df, "X"), ("X",), 5)


def test_tz_aware_index_is_converted_to_utc() -> None:
    df = bars()
    stamps = pd.to_datetime(df.pop("timestamp")).dt.tz_convert("America/New_York")
    df.index = pd.DatetimeIndex(stamps)
    assert str(df.index[0]) == "2020-01-02 16:00:00-05:00"
    assert_feed(from_dataframe(df, "X"), ("X",), 5)


def test_named_index_and_multiindex() -> None:
    df = bars().rename(columns={"timestamp": "time"}).set_index("time")
    assert_feed(from_dataframe(df, "X"), ("X",), 5)
    multi = long_bars().set_index(["symbol", "timestamp"])
    assert_feed(from_dataframe(multi), ("AAA", "BBB"), 4)


def test_timestamp_formats() -> None:
    df = bars(3)
    df["timestamp"] = ["2020-01-02 16:00:00-05:00", "2020-01-03T21:00:00Z", "2020-01-04 21:00"]
    assert from_dataframe(df, "X")["X"].ts == [T0, T0 + DAY, T0 + 2 * DAY]
    df["timestamp"] = [T0, T0 + DAY, T0 + 2 * DAY]  # integers: ns since the epoch
    assert from_dataframe(df, "X")["X"].ts == [T0, T0 + DAY, T0 + 2 * DAY]


def test_mapping_of_per_symbol_sources(tmp_path: Path) -> None:
    csv = write_csv(bars(), tmp_path / "bbb.csv")
    pq = tmp_path / "ccc.parquet"
    bars(symbol="CCC").to_parquet(pq)
    feed = load_bars({"CCC": pq, "BBB": csv, "AAA": bars()})
    assert_feed(feed, ("AAA", "BBB", "CCC"), 5)
    only = load_bars({"CCC": pq, "BBB": csv, "AAA": tmp_path / "missing.csv"}, symbols=["BBB"])
    assert_feed(only, ("BBB",), 5)  # unrequested sources are not even read


def test_symbol_filter(tmp_path: Path) -> None:
    path = write_csv(long_bars(("AAA", "BBB", "CCC")), tmp_path / "long.csv")
    assert_feed(load_bars(path, symbols=["CCC", "AAA"]), ("AAA", "CCC"), 4)
    assert_feed(load_csv(path, symbols="BBB"), ("BBB",), 4)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2020-01-03", None, [1, 2, 3, 4]),
        (None, "2020-01-04", [0, 1, 2]),  # a date-only end includes that whole day
        ("2020-01-03 21:00", "2020-01-05 21:00", [1, 2, 3]),  # inclusive both ends
        (pd.Timestamp("2020-01-03 16:00", tz="America/New_York"), None, [1, 2, 3, 4]),
        (datetime(2020, 1, 4, 21, 0, 1), date(2020, 1, 5), [3]),
    ],
)
def test_time_filter(start: Any, end: Any, expected: list[int]) -> None:
    feed = from_dataframe(bars(), "X", start=start, end=end)
    assert feed["X"].ts == [T0 + i * DAY for i in expected]


def test_multi_symbol_timeline_order() -> None:
    # BBB trades every day, AAA every other day; both share day 0.
    aaa = bars(3).assign(symbol="AAA")
    aaa["timestamp"] = pd.date_range("2020-01-02 21:00", periods=3, freq="2D").strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    df = pd.concat([bars(4, "BBB"), aaa])
    feed = load_bars(df)
    assert feed.symbols == ("AAA", "BBB")
    ts, sym, row = feed.timeline()
    assert ts == sorted(ts)
    pairs = [(feed.symbols[s], r) for s, r in zip(sym, row, strict=True)]
    assert pairs == [
        ("AAA", 0),
        ("BBB", 0),
        ("BBB", 1),
        ("AAA", 1),
        ("BBB", 2),
        ("BBB", 3),
        ("AAA", 2),
    ]
    assert feed.start == T0 and feed.end == T0 + 4 * DAY


# ------------------------------------------------------------------------------ epoch numbers

T0_S = T0 // 10**9  # 1577998800: 2020-01-02T21:00:00Z in seconds
DAY_S = 86_400


def epoch_bars(ts: list[Any], column: str = "timestamp") -> pd.DataFrame:
    df = bars(len(ts)).drop(columns="timestamp")
    df.insert(0, column, ts)
    return df


@pytest.mark.parametrize(
    ("unit", "factor"), [("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1)]
)
def test_integer_timestamps_in_each_unit_are_detected(unit: str, factor: int) -> None:
    ts = [T0_S * 10**9 // factor + i * DAY_S * 10**9 // factor for i in range(3)]
    want = [T0, T0 + DAY, T0 + 2 * DAY]
    assert from_dataframe(epoch_bars(ts), "X")["X"].ts == want
    assert from_dataframe(epoch_bars(ts), "X", timestamp_unit=unit)["X"].ts == want


def test_epoch_seconds_in_a_csv_file_load_as_2020(tmp_path: Path) -> None:
    # The bug this fixes: seconds were read as nanoseconds, putting every bar in January 1970.
    iso = write_csv(bars(5), tmp_path / "iso.csv")
    epoch = write_csv(epoch_bars([T0_S + i * DAY_S for i in range(5)]), tmp_path / "epoch.csv")
    assert pd.read_csv(epoch)["timestamp"].dtype == np.int64
    assert load_csv(epoch, "X")["X"].ts == load_csv(iso, "X")["X"].ts
    ms = write_csv(epoch_bars([(T0_S + i * DAY_S) * 1000 for i in range(5)]), tmp_path / "ms.csv")
    assert load_bars(ms, symbol="X", timestamp_unit="ms")["X"].ts == load_csv(iso, "X")["X"].ts
    assert load_bars({"X": ms}, timestamp_unit="ms")["X"].ts == load_csv(iso, "X")["X"].ts


def test_epoch_seconds_in_parquet(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "bars.parquet"
    epoch_bars([(T0_S + i * DAY_S) * 1000 for i in range(3)]).to_parquet(path)
    assert load_parquet(path, "X")["X"].ts == [T0, T0 + DAY, T0 + 2 * DAY]


def test_fractional_and_float_epoch_seconds() -> None:
    ts = [T0_S + 0.5, T0_S + 1.25, T0_S + 2.0]
    got = from_dataframe(epoch_bars(ts), "X")["X"].ts
    assert got == [T0 + 500_000_000, T0 + 1_250_000_000, T0 + 2 * 10**9]
    whole = [float(T0_S * 1000), float((T0_S + 1) * 1000)]  # whole milliseconds stored as floats
    assert from_dataframe(epoch_bars(whole), "X")["X"].ts == [T0, T0 + 10**9]


def test_eight_digit_integers_are_yyyymmdd_dates(tmp_path: Path) -> None:
    path = write_csv(epoch_bars([20200102, 20200103, 20200106], "date"), tmp_path / "d.csv")
    midnight = T0 - 21 * HOUR
    assert load_csv(path, "X")["X"].ts == [midnight, midnight + DAY, midnight + 4 * DAY]
    err = reject(epoch_bars([20200102, 20201301], "date"))
    assert (err.field, err.value) == ("timestamp", 20201301)
    assert "YYYYMMDD" in err.reason and "at row 2" in err.reason and "'date'" in err.reason


def test_an_explicit_unit_reads_early_1970s_values() -> None:
    # 10 and 11 days after the epoch in seconds: too few digits to detect, fine when told.
    ts = [10 * DAY_S, 11 * DAY_S]
    assert reject(epoch_bars(ts)).field == "timestamp"
    got = from_dataframe(epoch_bars(ts), "X", timestamp_unit="s")["X"].ts
    assert got == [10 * DAY, 11 * DAY]


@pytest.mark.parametrize(
    ("ts", "row", "value", "words"),
    [
        ([T0_S, T0_S + 1, (T0_S + 2) * 1000], 3, (T0_S + 2) * 1000, "mixes units: ms"),
        ([T0_S * 10**9, T0_S], 2, T0_S, "mixes units: s"),
        ([T0_S, 12_345], 2, 12_345, "not an epoch time"),
        ([T0_S * 10, T0_S * 11], 1, T0_S * 10, "not an epoch time"),  # 11 digits
        ([-T0_S], 1, -T0_S, "not an epoch time"),
        ([0], 1, 0, "not an epoch time"),
        ([9_999_999_999], 1, 9_999_999_999, "2200 or later"),  # 10 digits: year 2286
    ],
)
def test_implausible_epoch_numbers_are_rejected(
    ts: list[int], row: int, value: int, words: str
) -> None:
    err = reject(epoch_bars(ts, "time"))
    assert (err.field, err.value) == ("timestamp", value)
    assert words in err.reason
    assert f"at row {row} " in err.reason
    assert "column 'time'" in err.reason
    assert "timestamp_unit" in err.reason  # says what to set


@pytest.mark.parametrize(
    ("ts", "unit", "words"),
    [
        ([T0_S], "ms", None),  # 1970-01-19: odd but possible, so accepted
        ([T0_S * 1000], "s", "2200 or later"),  # milliseconds read as seconds
        ([T0_S], "us", "before 1970-01-02"),  # seconds read as microseconds
        ([T0_S], "ns", "before 1970-01-02"),  # seconds read as nanoseconds: the old behaviour
        ([-1], "s", "before 1970-01-02"),
        ([T0_S + 0.5], "ns", "before 1970-01-02"),
    ],
)
def test_an_explicit_unit_is_checked(ts: list[Any], unit: str, words: str | None) -> None:
    if words is None:
        assert from_dataframe(epoch_bars(ts), "X", timestamp_unit=unit)["X"].ts == [T0_S * 10**6]
        return
    with pytest.raises(DataError) as info:
        from_dataframe(epoch_bars(ts), "X", timestamp_unit=unit)
    err = info.value
    assert (err.field, err.value) == ("timestamp", ts[0])
    assert words in err.reason and f"timestamp_unit={unit!r}" in err.reason
    assert "at row 1 " in err.reason and "column 'timestamp'" in err.reason


@pytest.mark.parametrize("unit", ["sec", "S", "", "minutes", 1])
def test_bad_timestamp_unit_argument(unit: Any) -> None:
    for call in (
        lambda: from_dataframe(bars(), "X", timestamp_unit=unit),
        lambda: load_bars(bars(), symbol="X", timestamp_unit=unit),
        lambda: validate_bars(bars(), symbol="X", timestamp_unit=unit),
    ):
        if unit == "S":  # case and spaces do not matter
            assert call() is not None
            continue
        with pytest.raises(DataError) as info:
            call()
        assert (info.value.field, info.value.value) == ("timestamp_unit", unit)


def test_text_timestamps_ignore_the_unit() -> None:
    feed = from_dataframe(bars(3), "X", timestamp_unit="ms")
    assert feed["X"].ts == [T0, T0 + DAY, T0 + 2 * DAY]
