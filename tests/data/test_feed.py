"""GrowingFeed (bars appended as they arrive) and the equity curve of a stream."""

from __future__ import annotations

from array import array

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tradeloop.data.feed import Column, GrowingFeed, merge_pieces
from tradeloop.results.result import EquityCurve


def test_growing_feed_appends_and_reports_rows() -> None:
    feed = GrowingFeed(["A"], max_bars=100)
    assert feed.symbols == ("A",) and len(feed) == 0
    assert feed.append("A", 1, 1.0, 2.0, 0.5, 1.5, 10.0) == 0
    assert feed.append("A", 2, 1.5, 2.5, 1.0, 2.0, 20.0) == 1
    assert feed["A"].close == [1.5, 2.0] and feed["A"].ts == [1, 2]
    assert feed.append("B", 2, 5.0, 5.0, 5.0, 5.0, 1.0) == 0  # a new symbol joins
    assert feed.symbols == ("A", "B")
    assert feed.timeline() == ([1, 2, 2], [0, 0, 1], [0, 1, 0])


def test_growing_feed_keeps_at_most_max_bars_per_symbol() -> None:
    feed = GrowingFeed(["A"], max_bars=3)
    rows = [feed.append("A", i, i, i, i, float(i), 1.0) for i in range(10)]
    s = feed["A"]
    assert 3 <= len(s) <= 6  # trimmed in batches: amortised O(1)
    assert s.close[-1] == 9.0 and s.close[rows[-1]] == 9.0  # the row still points at the bar
    assert s.ts == sorted(s.ts) and s.ts[-3:] == [7, 8, 9]
    assert all(len(col) == len(s.ts) for col in (s.open, s.high, s.low, s.close, s.volume))


def test_equity_curve_one_point_per_timestamp() -> None:
    curve = EquityCurve()
    curve.record(10, 100.0, 0.0)
    curve.record(10, 101.0, 5.0)  # a later bar of the same timestamp overwrites
    curve.record(20, 99.0, 4.0)
    assert curve.ts.tolist() == [10, 20]
    assert curve.equity.tolist() == [101.0, 99.0]
    assert curve.exposure.tolist() == [5.0, 4.0]
    assert curve.last_ts == 20


# -- merging per-symbol pieces into one timeline -------------------------------------------------


@st.composite
def piece_sets(draw: st.DrawFn) -> list[tuple[int, tuple[np.ndarray, ...]] | None]:
    """Per-symbol pieces of a chunk: sorted timestamps, each symbol's own or all the same."""
    n_sym = draw(st.integers(2, 6))
    aligned = draw(st.booleans())
    shared = sorted(set(draw(st.lists(st.integers(0, 40), min_size=1, max_size=12))))
    pieces: list[tuple[int, tuple[np.ndarray, ...]] | None] = []
    for _ in range(n_sym):
        if draw(st.integers(0, 4)) == 0:
            pieces.append(None)
            continue
        ts = shared if aligned else sorted(set(draw(st.lists(st.integers(0, 40), max_size=12))))
        arr = np.asarray(ts, dtype=np.int64)
        first_row = draw(st.integers(0, 100))
        pieces.append((first_row, (arr, *(arr.astype(np.float64),) * 5)))
    return pieces


@given(piece_sets())
def test_merge_pieces_orders_bars_by_time_then_symbol(
    pieces: list[tuple[int, tuple[np.ndarray, ...]] | None],
) -> None:
    chunk = merge_pieces(pieces)
    want = sorted(
        (int(t), si, k)
        for si, p in enumerate(pieces)
        if p is not None
        for k, t in enumerate(p[1][0])
    )
    assert chunk.sym is not None and chunk.pos is not None
    got = list(zip(chunk.ts.tolist(), chunk.sym.tolist(), chunk.pos.tolist(), strict=True))
    assert got == want


def test_column_view_shares_memory_and_keeps_the_type() -> None:
    ints = np.array([3, 1, 2], dtype=np.int64)
    col = Column.view(ints)  # a numpy array: its own dtype, not read as floats
    assert col.values is ints and col.tolist() == [3, 1, 2] and isinstance(col[0], int)
    q: array[int] = array("q", [5, 6])
    d: array[float] = array("d", [0.5])
    assert Column.view(q).tolist() == [5, 6] and Column.view(d).tolist() == [0.5]
    assert np.shares_memory(Column.view(q).values, np.frombuffer(q, dtype=np.int64))
