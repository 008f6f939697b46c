"""How the synchronous engine walks a feed: chunk sizes, progress, and what a wide universe's bar
loop keeps per symbol (rows for ``ctx.history``, positions marked without a lookup)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tradeloop.data.feed import DEFAULT_CHUNK, BarChunk, BarFeed, SymbolSeries
from tradeloop.errors import ConfigError
from tradeloop.execution.synchronous import SyncExecutionEngine
from tradeloop.execution.synchronous.engine import MIN_SYMBOL_BARS
from tradeloop.execution.types import Bar, Fill
from tradeloop.results.result import BacktestResult
from tradeloop.strategy import Context, Strategy

MINUTE = 60_000_000_000
T0 = 1_700_000_000_000_000_000


def wide_feed(symbols: int, bars: int, seed: int = 3) -> BarFeed:
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(bars, dtype=np.int64) * MINUTE
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, (symbols, bars)), axis=1))
    opens = np.concatenate((np.full((symbols, 1), 50.0), close[:, :-1]), axis=1)
    high = np.maximum(opens, close) * 1.002
    low = np.minimum(opens, close) * 0.998
    return BarFeed(
        SymbolSeries(f"S{i:03d}", ts, opens[i], high[i], low[i], close[i], np.full(bars, 1e6))
        for i in range(symbols)
    )


class SizeSpy(BarFeed):
    """A feed that records the chunk size the engine asks for."""

    __slots__ = ("sizes",)

    def chunks(self, size: int = DEFAULT_CHUNK) -> Iterator[BarChunk]:
        self.sizes.append(size)
        return super().chunks(size)


def spy(feed: BarFeed) -> SizeSpy:
    s = SizeSpy(feed.series.values())
    s.sizes = []
    return s


class Churn(Strategy):
    """Trades every symbol often, reads history and positions: exercises every per-bar path."""

    lookback: int = 40

    def on_start(self, ctx: Context) -> None:
        self.seen: list[tuple[str, int, float, float]] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        closes = ctx.history(bar.symbol, 5)
        assert closes[-1] == bar.close  # the history ends at this very bar
        self.seen.append((bar.symbol, bar.ts, bar.open, sum(closes)))
        n = len(self.seen)
        if n % 7 == 0:
            ctx.buy(bar.symbol, 3.0)
        elif n % 11 == 0 and ctx.position(bar.symbol).qty:
            ctx.sell(bar.symbol, 5.0)  # sometimes a flip to short

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        # the fill's bar is already this symbol's latest in the history
        assert ctx.history(fill.symbol, 1)[-1] > 0


def run(feed: BarFeed, **kwargs: Any) -> tuple[BacktestResult, Churn]:
    strategy = Churn()
    result = SyncExecutionEngine(feed, strategy, initial_cash=1e7, **kwargs).run()
    return result, strategy


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "big"])
def test_chunk_size_must_be_a_positive_integer_or_none(bad: object) -> None:
    with pytest.raises(ConfigError) as e:
        SyncExecutionEngine(wide_feed(1, 3), Strategy(), chunk_size=bad)  # type: ignore[arg-type]
    assert e.value.field == "chunk_size"
    assert e.value.value == bad


def test_automatic_chunks_give_every_symbol_enough_bars() -> None:
    wide = spy(wide_feed(300, 3))
    SyncExecutionEngine(wide, Strategy()).run()
    assert wide.sizes == [MIN_SYMBOL_BARS * 300]  # more than the default for this many symbols
    narrow = spy(wide_feed(2, 3))
    SyncExecutionEngine(narrow, Strategy()).run()
    assert narrow.sizes == [DEFAULT_CHUNK]


def test_an_explicit_chunk_size_is_kept_even_with_progress() -> None:
    feed = spy(wide_feed(300, 3))
    SyncExecutionEngine(feed, Strategy(), chunk_size=50).run(progress=lambda d, t: None)
    assert feed.sizes == [50]


def test_progress_on_a_wide_feed_is_fine_grained_without_small_chunks() -> None:
    feed = spy(wide_feed(40, 60))  # 2,400 bars: one automatic chunk
    calls: list[tuple[int, int]] = []
    without, _ = run(feed)
    got = SyncExecutionEngine(feed, Churn(), initial_cash=1e7).run(
        progress=lambda d, t: calls.append((d, t))
    )
    assert feed.sizes == [DEFAULT_CHUNK] * 2  # not shrunk to 1% of the bars for progress
    assert len(calls) >= 100
    assert calls[-1] == (2_400, 2_400)
    assert [d for d, _ in calls] == sorted({d for d, _ in calls})  # increasing, no repeats
    # walking a chunk in stretches changes nothing in the run
    assert list(got.equity) == list(without.equity)
    assert len(got.fills) == len(without.fills) > 0


@pytest.mark.parametrize("chunk_size", [1, 37, 1_000, None])
def test_a_wide_run_does_not_depend_on_how_it_is_chunked(chunk_size: int | None) -> None:
    feed = wide_feed(25, 80)
    want, ws = run(feed, chunk_size=10_000_000)  # one chunk: the reference
    got, gs = run(feed, chunk_size=chunk_size)
    assert gs.seen == ws.seen  # same bars, same history sums, same opens, in the same order
    assert list(got.equity) == list(want.equity)
    assert [(f.symbol, f.ts, f.qty, f.price) for f in got.fills] == [
        (f.symbol, f.ts, f.qty, f.price) for f in want.fills
    ]


def test_positions_opened_by_fills_are_marked_every_bar() -> None:
    """The loop finds a position once the portfolio has one, however it was made (here by a
    fill, never by the strategy asking for it), and marks it on every later bar: each equity
    point equals cash plus every position at its symbol's latest close."""
    feed = wide_feed(6, 50)
    closes = {s: feed[s].close.values for s in feed.symbols}

    class BuyOnce(Strategy):
        def on_bar(self, ctx: Context, bar: Bar) -> None:
            if ctx.now == T0 + 3 * MINUTE and bar.symbol in ("S001", "S004"):
                ctx.buy(bar.symbol, 10.0 if bar.symbol == "S001" else 7.0)

    engine = SyncExecutionEngine(feed, BuyOnce(), initial_cash=1e6)
    result = engine.run()
    fills = {f.symbol: f for f in result.fills}
    assert set(fills) == {"S001", "S004"}
    cash = engine.portfolio.cash
    for k in range(5, 50):
        want = cash + sum(f.qty * closes[s][k] for s, f in fills.items())
        assert math.isclose(result.equity[k], want, rel_tol=1e-12)


class Trader(Strategy):
    """Buys and sells in turn every seventh bar: an equity curve that moves."""

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        n = int((ctx.now - T0) // MINUTE)
        if n % 7 == 0:
            ctx.buy(bar.symbol, 1.0) if n % 14 == 0 else ctx.sell(bar.symbol, 1.0)


def test_a_one_symbol_curve_views_the_feeds_timestamps() -> None:
    """One symbol in memory: the curve's timestamps are the feed's own array, not a copy, and
    the curve is the one the copying path gives (taken for any other source, a subclass of
    BarFeed included)."""
    feed = wide_feed(1, 300)
    ts = feed["S000"].ts.values
    got = SyncExecutionEngine(feed, Trader(), chunk_size=64).run()
    assert np.shares_memory(got.equity_ts.values, ts)
    assert list(got.equity_ts) == ts.tolist() and len(got.equity) == 300
    copied = SyncExecutionEngine(spy(feed), Trader(), chunk_size=64).run()  # a subclass: copied
    assert not np.shares_memory(copied.equity_ts.values, ts)
    assert list(copied.equity_ts) == list(got.equity_ts)
    assert list(copied.equity) == list(got.equity) and list(copied.exposure) == list(got.exposure)


def test_a_stopped_one_symbol_run_has_the_curve_so_far() -> None:
    feed = wide_feed(1, 300)
    got = SyncExecutionEngine(feed, Trader(), chunk_size=64).run(max_bars=100)
    assert list(got.equity_ts) == feed["S000"].ts.values[:100].tolist() and len(got.equity) == 100


def test_repeated_timestamps_in_a_trusted_feed_give_one_point_each() -> None:
    """``from_arrays`` trusts its input: if a timestamp repeats (here in the second chunk), the
    curve still has one point per timestamp, and stops viewing the feed's array."""
    feed = wide_feed(1, 200)
    ts = feed["S000"].ts.values.copy()
    ts[150:] -= MINUTE  # bar 150 repeats bar 149's timestamp
    o, h, lo, c, v = (a for a in feed["S000"].arrays()[1:])
    twice = BarFeed.from_arrays("S000", ts, o, h, lo, c, v)
    got = SyncExecutionEngine(twice, Trader(), chunk_size=100).run()
    assert list(got.equity_ts) == sorted(set(ts.tolist())) and len(got.equity) == 199
    assert not np.shares_memory(got.equity_ts.values, ts)
