"""Streaming bars from Parquet/CSV: merge order, pushdown filters, bounded history, chunking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.errors import ConfigError, DataError, StrategyError
from tradeloop.execution.synchronous import SyncExecutionEngine
from tradeloop.execution.types import Bar
from tradeloop.strategies import SmaCross
from tradeloop.strategy import Context, Strategy

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
from tradeloop.data.stream import open_dataset  # noqa: E402

T0 = 1_704_067_200 * 10**9
MIN = 60 * 10**9


def series(sym: str, ts: np.ndarray, seed: int) -> SymbolSeries:
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(ts))))
    o = np.concatenate(([100.0], c[:-1]))
    return SymbolSeries(
        sym,
        ts,
        o,
        np.maximum(o, c) * 1.001,
        np.minimum(o, c) * 0.999,
        c,
        rng.integers(1, 1000, len(ts)).astype(float),
    )


def write(feed: BarFeed, root: Path, by_symbol: bool = True) -> None:
    for sym in feed.symbols:
        ts, o, h, lo, c, v = feed[sym].arrays()
        table = pa.table(
            {
                "timestamp": pa.array(ts, pa.timestamp("ns", tz="UTC")),
                "open": o,
                "high": h,
                "low": lo,
                "close": c,
                "volume": v,
            }
        )
        if by_symbol:
            (root / f"symbol={sym}").mkdir(parents=True, exist_ok=True)
            pq.write_table(table, root / f"symbol={sym}" / "part.parquet", row_group_size=50)
        else:
            table = table.append_column("symbol", pa.array([sym] * len(ts)))
            pq.write_table(table, root / f"{sym}.parquet", row_group_size=50)


def random_feed(draw_ts: list[list[int]]) -> BarFeed:
    return BarFeed(
        series(f"S{i}", T0 + np.array(sorted(set(t)), dtype=np.int64) * MIN, i)
        for i, t in enumerate(draw_ts)
        if t
    )


def merged(chunks: Any) -> list[tuple[int, int, float]]:
    out = []
    for ch in chunks:
        for j in range(len(ch)):
            si = 0 if ch.sym is None else int(ch.sym[j])
            p = j if ch.pos is None else int(ch.pos[j])
            out.append((int(ch.ts[j]), si, float(ch.pieces[si][1][4][p])))
    return out


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 300), max_size=80), min_size=1, max_size=4), st.integers(1, 40)
)
def test_stream_merge_equals_in_memory_merge(tmp_path_factory: Any, ts: Any, size: int) -> None:
    feed = random_feed(ts)
    if not feed.symbols:
        return
    root = tmp_path_factory.mktemp("ds")
    write(feed, root)
    ds = open_dataset(root, batch_size=7)
    assert ds.symbols == tuple(sorted(feed.symbols))
    want_ts, want_sym, want_rows = feed.timeline()
    got = merged(ds.chunks(size))
    names = ds.symbols
    assert [(t, names[s]) for t, s, _ in got] == [
        (t, feed.symbols[s]) for t, s in zip(want_ts, want_sym, strict=True)
    ]
    assert [c for _, _, c in got] == [
        feed[feed.symbols[s]].close[r] for s, r in zip(want_sym, want_rows, strict=True)
    ]
    assert merged(feed.chunks(size)) == merged(feed.chunks(10**6))


def two_symbols() -> BarFeed:
    ts = T0 + np.arange(500, dtype=np.int64) * MIN
    return BarFeed([series("A", ts, 1), series("B", ts[::2], 2)])


def fills(result: Any) -> list[tuple[Any, ...]]:
    return [(f.ts, f.symbol, f.qty, f.price) for f in result.fills]


@pytest.mark.parametrize("by_symbol", [True, False])
def test_a_streamed_run_equals_the_in_memory_run(tmp_path: Path, by_symbol: bool) -> None:
    feed = two_symbols()
    write(feed, tmp_path, by_symbol)
    want = SyncExecutionEngine(feed, SmaCross(fast=3, slow=8)).run()
    got = SyncExecutionEngine(
        open_dataset(tmp_path, batch_size=13), SmaCross(fast=3, slow=8), chunk_size=29
    ).run()
    assert fills(got) == fills(want) and list(got.equity) == list(want.equity)
    assert got.bars_processed == 750


def test_chunk_size_does_not_change_a_run() -> None:
    feed = two_symbols()
    a = SyncExecutionEngine(feed, SmaCross(fast=3, slow=8), chunk_size=7).run()
    b = SyncExecutionEngine(feed, SmaCross(fast=3, slow=8)).run()
    assert fills(a) == fills(b) and list(a.equity) == list(b.equity)


def test_filters_are_pushed_down(tmp_path: Path) -> None:
    feed = two_symbols()
    write(feed, tmp_path)
    ds = open_dataset(tmp_path, symbols=["B"], start=T0 + 100 * MIN, end=T0 + 199 * MIN)
    assert ds.symbols == ("B",) and ds.total_bars() == 50
    (chunk,) = list(ds.chunks(1000))
    assert int(chunk.ts[0]) == T0 + 100 * MIN and int(chunk.ts[-1]) == T0 + 198 * MIN


class Hist(Strategy):
    lookback = 20
    want: int = 10

    def on_start(self, ctx: Context) -> None:
        self.seen: list[list[float]] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.seen.append(list(ctx.history(bar.symbol, self.want)))


def test_history_is_bounded_by_the_declared_lookback(tmp_path: Path) -> None:
    feed = two_symbols()
    write(feed, tmp_path)
    want = Hist(want=15)
    SyncExecutionEngine(feed, want, chunk_size=5).run()
    got = Hist(want=15)
    SyncExecutionEngine(open_dataset(tmp_path), got, chunk_size=5).run()
    assert got.seen == want.seen
    with pytest.raises(StrategyError, match="lookback") as info:
        SyncExecutionEngine(open_dataset(tmp_path), Hist(want=21)).run()
    assert isinstance(info.value.error, ConfigError)
    # in memory, a longer history still comes from the feed's arrays
    long = Hist(want=400)
    SyncExecutionEngine(feed, long, chunk_size=5).run()
    assert long.seen[-1] == feed["A"].close.tolist()[-400:]


def test_bad_data_is_rejected_with_symbol_and_time(tmp_path: Path) -> None:
    ts = T0 + np.arange(10, dtype=np.int64) * MIN
    s = series("A", ts, 1)
    s.high.values[4] = s.low.values[4] / 2
    write(BarFeed([s]), tmp_path)
    with pytest.raises(DataError, match=r"high is below low.*symbol A"):
        SyncExecutionEngine(open_dataset(tmp_path), SmaCross(fast=2, slow=3)).run()


def test_csv_files_stream_too(tmp_path: Path) -> None:
    feed = two_symbols()
    for sym in feed.symbols:
        ts, *cols = feed[sym].arrays()
        import pandas as pd

        pd.DataFrame(
            {
                "timestamp": pd.to_datetime(ts, utc=True),
                "symbol": sym,
                **dict(zip(("open", "high", "low", "close", "volume"), cols, strict=True)),
            }
        ).to_csv(tmp_path / f"{sym}.csv", index=False)
    want = SyncExecutionEngine(feed, SmaCross(fast=3, slow=8)).run()
    got = SyncExecutionEngine(open_dataset(tmp_path, format="csv"), SmaCross(fast=3, slow=8)).run()
    assert fills(got) == fills(want)


def arrays_of(feed: BarFeed) -> dict[str, list[list[float]]]:
    return {s: [a.tolist() for a in feed[s].arrays()] for s in feed.symbols}


@pytest.mark.parametrize("by_symbol", [True, False])
def test_load_gives_the_feed_that_was_written(tmp_path: Path, by_symbol: bool) -> None:
    feed = two_symbols()
    write(feed, tmp_path, by_symbol)
    ds = open_dataset(tmp_path, batch_size=13)
    assert ds.bars_per_symbol() == {"A": 500, "B": 250}
    loaded = ds.load()
    assert isinstance(loaded, BarFeed) and arrays_of(loaded) == arrays_of(feed)
    # each batch is at most batch_size rows, whatever the row groups (50 rows here)
    assert {len(b[0]) for b in ds.batches("A")} == {13, 11, 50 - 39}


@pytest.mark.parametrize("by_symbol", [True, False])
def test_time_and_symbol_filters_cut_inside_row_groups(tmp_path: Path, by_symbol: bool) -> None:
    feed = two_symbols()
    write(feed, tmp_path, by_symbol)  # row groups of 50 rows: the bounds fall inside them
    ds = open_dataset(tmp_path, symbols=["B"], start=T0 + 101 * MIN, end=T0 + 177 * MIN)
    assert ds.bars_per_symbol() == {"B": 38}
    got = ds.load()["B"]
    want = feed["B"].ts.values
    keep = (want >= T0 + 101 * MIN) & (want <= T0 + 177 * MIN)
    assert got.ts.tolist() == want[keep].tolist()
    assert got.close.tolist() == feed["B"].close.values[keep].tolist()


def test_symbols_without_bars_in_the_range_are_not_found(tmp_path: Path) -> None:
    feed = two_symbols()  # B's last bar is at minute 498
    write(feed, tmp_path)
    assert open_dataset(tmp_path).symbols == ("A", "B")
    assert open_dataset(tmp_path, start=T0 + 499 * MIN).symbols == ("A",)
    with pytest.raises(DataError, match="no bars for it") as info:
        open_dataset(tmp_path, symbols=["A", "B"], start=T0 + 499 * MIN).load()
    assert info.value.field == "symbols" and info.value.value == "B"


def test_integer_timestamps_and_a_dictionary_symbol_column(tmp_path: Path) -> None:
    feed = two_symbols()
    for sym in feed.symbols:
        ts, o, h, lo, c, v = feed[sym].arrays()
        table = pa.table(
            {
                "time": pa.array(ts // 10**6, pa.int64()),  # epoch milliseconds
                "symbol": pa.array([sym] * len(ts)).dictionary_encode(),
                "open": o,
                "high": h,
                "low": lo,
                "close": c.astype(np.float32).astype(np.float64),
                "volume": v.astype(np.int64),  # an integer column, read as floats
            }
        )
        pq.write_table(table, tmp_path / f"{sym}.parquet", row_group_size=64)
    ds = open_dataset(tmp_path, start=T0 + 10 * MIN)
    assert ds.symbols == ("A", "B")
    loaded = ds.load()
    assert loaded["A"].ts.tolist() == feed["A"].ts.values[10:].tolist()
    assert loaded["B"].volume.tolist() == feed["B"].volume.values[5:].tolist()


@pytest.mark.parametrize("counted", [90, 110])
def test_rows_other_than_counted_are_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counted: int
) -> None:
    """The files changed between the count and the read: no half-filled feed."""
    from tradeloop.data.stream import BarDataset

    ts = T0 + np.arange(100, dtype=np.int64) * MIN
    write(BarFeed([series("A", ts, 1)]), tmp_path)
    monkeypatch.setattr(BarDataset, "bars_per_symbol", lambda self: {"A": counted})
    with pytest.raises(DataError, match="changed") as info:
        open_dataset(tmp_path).load()
    assert info.value.field == "rows" and info.value.value == counted


@pytest.mark.parametrize("by_symbol", [True, False])
def test_symbols_found_at_open_are_not_counted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by_symbol: bool
) -> None:
    from tradeloop.data.stream import BarDataset

    write(two_symbols(), tmp_path, by_symbol)
    ds = open_dataset(tmp_path, start=T0 + 100 * MIN)

    def again(*args: Any) -> None:
        raise AssertionError("counted again")

    monkeypatch.setattr(BarDataset, "_partition_counts", again)
    monkeypatch.setattr(BarDataset, "_symbol_counts", again)
    assert ds.bars_per_symbol() == {"A": 400, "B": 200}
