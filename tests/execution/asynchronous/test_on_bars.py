"""``on_bars`` on the asynchronous engine: the backtest's cross-sections, and a timeout for
symbols that send no bar."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.data.sample import load_sample
from tradeloop.errors import ConfigError
from tradeloop.execution.asynchronous import AsyncEngine, SimulatedBroker
from tradeloop.execution.synchronous import SyncEngine
from tradeloop.execution.types import Bar, Fill, Order
from tradeloop.strategy import Context, Strategy

DAY = 86_400_000_000_000
T0 = 20_000 * DAY


class Ranker(Strategy):
    """Cross-sectional: holds the symbol with the lowest close relative to its first close,
    rebalanced in on_bars; logs every callback with what it could see."""

    def on_start(self, ctx: Context) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.first: dict[str, float] = {}

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.first.setdefault(bar.symbol, bar.close)
        self.log.append(("bar", bar.symbol, bar.ts, ctx.equity))

    def on_bars(self, ctx: Context, bars: Mapping[str, Bar]) -> None:
        self.log.append(("bars", ctx.now, tuple(sorted(bars)), ctx.equity, ctx.cash))
        if len(bars) < 2 or ctx.open_orders():
            return
        pick = min(bars, key=lambda s: bars[s].close / self.first[s])
        for sym in bars:
            if sym != pick and ctx.position(sym).qty:
                ctx.close_position(sym)
        if not ctx.position(pick).qty:
            ctx.buy(pick, int(ctx.equity * 0.3 / bars[pick].close))

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        self.log.append(("fill", fill.symbol, fill.qty, fill.price, fill.ts))

    def on_order_update(self, ctx: Context, order: Order) -> None:
        self.log.append(("order", order.id, order.status))


def gappy_feed() -> BarFeed:
    days = {"A": range(0, 30), "B": [d for d in range(30) if d % 4], "C": range(1, 30, 2)}
    out = []
    for k, (sym, ds) in enumerate(days.items()):
        closes = [100.0 + 10 * k + ((d * (k + 3)) % 7) for d in ds]
        ts = [T0 + d * DAY for d in ds]
        out.append(SymbolSeries(sym, ts, closes, closes, closes, closes, [1e6] * len(closes)))
    return BarFeed(out)


def run_async(broker: Any, strategy: Strategy, **kw: Any) -> Any:
    engine = AsyncEngine(broker, strategy, run_id="cross", **kw)
    return asyncio.run(asyncio.wait_for(engine.run(), 60))


@pytest.mark.parametrize("feed_name", ["gappy", "sample"])
def test_on_bars_strategy_matches_the_backtest(feed_name: str) -> None:
    feed = gappy_feed() if feed_name == "gappy" else load_sample("daily")
    s_sync, s_async = Ranker(), Ranker()
    expected = SyncEngine(feed, s_sync).run()
    got = run_async(SimulatedBroker(feed), s_async)
    assert s_async.log == s_sync.log
    assert [f.to_dict() for f in got.fills] == [f.to_dict() for f in expected.fills]
    assert list(got.equity) == list(expected.equity)
    assert sum(1 for e in s_sync.log if e[0] == "bars") == len(set(feed.timeline()[0]))
    assert any(e[0] == "fill" for e in s_sync.log)


class SlowB(SimulatedBroker):
    """B's bar of the second day comes half a second after A's: a quiet symbol, live."""

    async def bars(self, symbols: Sequence[str] | None = None) -> AsyncIterator[Bar]:
        async for bar in super().bars(symbols):
            if bar.symbol == "B" and bar.ts == T0 + DAY:
                await asyncio.sleep(0.5)
            yield bar


class Log(Strategy):
    def on_start(self, ctx: Context) -> None:
        self.log: list[tuple[Any, ...]] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.log.append(("bar", bar.symbol, bar.ts))

    def on_bars(self, ctx: Context, bars: Mapping[str, Bar]) -> None:
        self.log.append(("bars", ctx.now, tuple(sorted(bars))))


def two_symbols(days: int = 3) -> BarFeed:
    ts = [T0 + d * DAY for d in range(days)]
    px = [10.0] * days
    return BarFeed(SymbolSeries(s, ts, px, px, px, px, [1.0] * days) for s in ("A", "B"))


def test_a_cross_section_waits_at_most_the_timeout_for_a_quiet_symbol() -> None:
    s = Log()
    run_async(SlowB(two_symbols()), s, cross_section_timeout=0.1)
    assert s.log == [
        ("bar", "A", T0),
        ("bar", "B", T0),
        ("bars", T0, ("A", "B")),
        ("bar", "A", T0 + DAY),
        ("bars", T0 + DAY, ("A",)),  # B was quiet for longer than the timeout
        ("bar", "B", T0 + DAY),  # late for its cross-section: on_bar only
        ("bar", "A", T0 + 2 * DAY),
        ("bar", "B", T0 + 2 * DAY),
        ("bars", T0 + 2 * DAY, ("A", "B")),
    ]


def test_without_a_timeout_the_cross_section_waits_for_the_quiet_symbol() -> None:
    s = Log()
    run_async(SlowB(two_symbols()), s, cross_section_timeout=None)
    assert ("bars", T0 + DAY, ("A", "B")) in s.log


def test_stop_while_a_cross_section_waits_ends_the_run() -> None:
    s = Log()

    async def main() -> Any:
        engine = AsyncEngine(SlowB(two_symbols()), s, run_id="cross", cross_section_timeout=5.0)
        task = asyncio.create_task(engine.run())
        while not any(e[0] == "bar" and e[2] == T0 + DAY for e in getattr(s, "log", [])):
            await asyncio.sleep(0.01)
        engine.stop()
        return await asyncio.wait_for(task, 5)

    result = asyncio.run(asyncio.wait_for(main(), 30))
    assert result.bars_processed == 3
    assert s.log[-1] == ("bar", "A", T0 + DAY)  # a half-gathered cross-section is dropped


@pytest.mark.parametrize("bad", [0, -1.0, "2s", True])
def test_cross_section_timeout_must_be_positive_seconds(bad: Any) -> None:
    with pytest.raises(ConfigError) as err:
        AsyncEngine(SimulatedBroker(two_symbols()), Log(), cross_section_timeout=bad)
    assert err.value.field == "cross_section_timeout"
