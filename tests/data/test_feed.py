"""GrowingFeed (bars appended as they arrive) and the equity curve of a stream."""

from __future__ import annotations

from tradeloop.data.feed import GrowingFeed
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
