"""``on_bars``: one callback per timestamp with its bars, in a backtest and in a stream."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.execution.core.cross import overrides_on_bars
from tradeloop.execution.synchronous import SyncEngine
from tradeloop.execution.types import Bar, Fill
from tradeloop.strategy import Context, Strategy

DAY = 86_400_000_000_000
T0 = 20_000 * DAY


def gappy_feed() -> BarFeed:
    """A trades every day; B misses day 2; C trades on days 1 and 3 only."""
    days = {"A": [0, 1, 2, 3], "B": [0, 1, 3], "C": [1, 3]}
    out = []
    for k, (sym, ds) in enumerate(days.items()):
        closes = [100.0 * (k + 1) + d for d in ds]
        out.append(
            SymbolSeries(
                sym, [T0 + d * DAY for d in ds], closes, closes, closes, closes, [1e6] * len(ds)
            )
        )
    return BarFeed(out)


class CrossLog(Strategy):
    def on_start(self, ctx: Context) -> None:
        self.log: list[tuple[Any, ...]] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.log.append(("bar", bar.ts, bar.symbol))

    def on_bars(self, ctx: Context, bars: Mapping[str, Bar]) -> None:
        assert all(b.ts == ctx.now for b in bars.values())
        closes = {s: (b.close, ctx.history(s, 1)[-1]) for s, b in bars.items()}
        self.log.append(("bars", ctx.now, tuple(sorted(bars)), closes))


def expected_cross(feed: BarFeed) -> list[tuple[int, tuple[str, ...]]]:
    ts_list, sym_idx, _ = feed.timeline()
    by_ts: dict[int, list[str]] = {}
    for ts, si in zip(ts_list, sym_idx, strict=True):
        by_ts.setdefault(ts, []).append(feed.symbols[si])
    return [(ts, tuple(sorted(syms))) for ts, syms in by_ts.items()]


def test_on_bars_gets_each_timestamps_bars_once_after_their_on_bar() -> None:
    feed = gappy_feed()
    s = CrossLog()
    SyncEngine(feed, s).run()
    crosses = [(e[1], e[2]) for e in s.log if e[0] == "bars"]
    assert crosses == expected_cross(feed)
    assert crosses[1] == (T0 + DAY, ("A", "B", "C"))
    assert crosses[2] == (T0 + 2 * DAY, ("A",))  # B and C have no bar that day: absent
    for i, entry in enumerate(s.log):  # every on_bar of a timestamp comes before its on_bars
        if entry[0] == "bars":
            bars_before = {e[2] for e in s.log[:i] if e[0] == "bar" and e[1] == entry[1]}
            assert bars_before == set(entry[2])
            assert all(a == b for a, b in entry[3].values())  # history agrees with the bar


def test_on_bars_is_the_same_with_progress_chunks_and_max_bars() -> None:
    feed = gappy_feed()
    whole, chunked = CrossLog(), CrossLog()
    SyncEngine(feed, whole).run()
    SyncEngine(feed, chunked).run(progress=lambda done, total: None)
    assert chunked.log == whole.log
    cut = CrossLog()
    SyncEngine(feed, cut).run(max_bars=4)  # day 0 (A, B) and two of day 1's three bars
    assert [(e[1], e[2]) for e in cut.log if e[0] == "bars"] == [
        (T0, ("A", "B")),
        (T0 + DAY, ("A", "B")),  # the last timestamp, cut short, is still delivered
    ]


class Pairs(Strategy):
    """Buys A on a timestamp where A's close is below B's; orders come from on_bars."""

    def on_start(self, ctx: Context) -> None:
        self.fills: list[tuple[int, str]] = []

    def on_bars(self, ctx: Context, bars: Mapping[str, Bar]) -> None:
        if "A" in bars and "B" in bars and not ctx.open_orders():
            ctx.buy("A", 1)

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        self.fills.append((fill.ts, fill.symbol))


def test_orders_from_on_bars_fill_on_the_next_bar() -> None:
    feed = gappy_feed()
    s = Pairs()
    result = SyncEngine(feed, s).run()
    # ordered after day 0 and day 1 (both have A and B); each fills on A's next bar
    assert s.fills == [(T0 + DAY, "A"), (T0 + 2 * DAY, "A")]
    assert result.fills[0].ts == T0 + DAY


def test_a_strategy_without_on_bars_is_not_cross_sectioned() -> None:
    assert not overrides_on_bars(Strategy())
    assert overrides_on_bars(CrossLog())


def stream_of(feed: BarFeed) -> list[Bar]:
    ts_list, sym_idx, rows = feed.timeline()
    out = []
    for ts, si, r in zip(ts_list, sym_idx, rows, strict=True):
        s = feed[feed.symbols[si]]
        out.append(Bar(s.symbol, ts, s.open[r], s.high[r], s.low[r], s.close[r], s.volume[r]))
    return out


def test_a_stream_delivers_the_same_cross_sections_as_a_backtest() -> None:
    feed = gappy_feed()
    backtest, stream = CrossLog(), CrossLog()
    SyncEngine(feed, backtest).run()
    SyncEngine(stream_of(feed), stream, symbols=feed.symbols).run()
    assert stream.log == backtest.log


def test_a_stream_delivers_when_complete_and_skips_late_bars() -> None:
    def bar(sym: str, day: int) -> Bar:
        return Bar(sym, T0 + day * DAY, 10.0, 10.0, 10.0, 10.0, 1.0)

    bars = [bar("A", 0), bar("B", 0), bar("A", 1), bar("B", 2), bar("A", 2), bar("C", 1)]
    s = CrossLog()
    SyncEngine(bars, s, symbols=["A", "B"]).run()  # C is not traded
    kinds = [(e[0], e[1], e[2]) for e in s.log]
    assert kinds == [
        ("bar", T0, "A"),
        ("bar", T0, "B"),
        ("bars", T0, ("A", "B")),  # complete: delivered at once
        ("bar", T0 + DAY, "A"),
        ("bars", T0 + DAY, ("A",)),  # B's next bar is a day later: day 1 goes without it
        ("bar", T0 + 2 * DAY, "B"),
        ("bar", T0 + 2 * DAY, "A"),
        ("bars", T0 + 2 * DAY, ("A", "B")),
    ]


def test_a_stream_that_ends_delivers_what_it_gathered() -> None:
    bars = [Bar("A", T0, 1.0, 1.0, 1.0, 1.0, 1.0)]
    s = CrossLog()
    SyncEngine(bars, s, symbols=["A", "B"]).run()
    assert [e[:3] for e in s.log] == [("bar", T0, "A"), ("bars", T0, ("A",))]


def test_a_late_bar_reaches_on_bar_but_no_cross_section() -> None:
    def bar(sym: str, day: int) -> Bar:
        return Bar(sym, T0 + day * DAY, 10.0, 10.0, 10.0, 10.0, 1.0)

    s = CrossLog()
    SyncEngine([bar("A", 0), bar("B", 0), bar("A", 2), bar("B", 1)], s, symbols=["A", "B"]).run()
    assert [e[:3] for e in s.log] == [
        ("bar", T0, "A"),
        ("bar", T0, "B"),
        ("bars", T0, ("A", "B")),
        ("bar", T0 + 2 * DAY, "A"),
        ("bar", T0 + DAY, "B"),  # B's day-1 bar, late: on_bar only
        ("bars", T0 + 2 * DAY, ("A",)),
    ]
