"""Blocking adapters (BlockingBars, BlockingBroker) and SyncEngine's stream mode (paper trading).

Everything runs in-process: replayed feeds, the simulated broker and tiny hand-written sources.
Every adapter a test creates is closed by the test (or by a fixture), and an autouse fixture checks
that no adapter loop thread outlives its test.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import pytest

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.data.sample import load_sample
from tradeloop.errors import (
    BrokerConnectionError,
    ConfigError,
    EngineError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderStateError,
)
from tradeloop.execution.asynchronous.brokers.simulated import SimulatedBroker
from tradeloop.execution.asynchronous.sources import ReplayBarSource
from tradeloop.execution.core.costs import PercentSlippage, PerShareCommission
from tradeloop.execution.synchronous import SyncEngine, paper
from tradeloop.execution.synchronous.paper import BlockingBars, BlockingBroker
from tradeloop.execution.types import Bar, BrokerEvent, Fill, Order, OrderSide, OrderStatus
from tradeloop.results.result import BacktestResult
from tradeloop.strategies import SmaCross
from tradeloop.strategy import Context, Strategy

pytestmark = pytest.mark.timeout(20)

DAY = 86_400_000_000_000
T0 = 19_000 * DAY + 21 * 3_600_000_000_000

# One symbol, five daily bars. Each bar opens away from the previous close, so "fills at the next
# bar's open" and "fills at the close" give different prices.
TS = [T0 + i * DAY for i in range(5)]
OPEN = [100.0, 101.0, 103.0, 106.0, 104.0]
HIGH = [101.0, 103.0, 106.0, 107.0, 111.0]
LOW = [99.0, 100.0, 102.0, 103.0, 103.0]
CLOSE = [100.5, 102.0, 105.0, 104.5, 110.0]

SAMPLE_SYMBOLS = ("ACME", "BOLT", "CRUX")


def small_feed(volume: float = 1e6) -> BarFeed:
    return BarFeed.from_arrays("X", TS, OPEN, HIGH, LOW, CLOSE, [volume] * len(TS))


def two_symbol_feed() -> BarFeed:
    """A and B with overlapping but different timestamps (B starts one day later, ends later)."""
    a = SymbolSeries(
        "A",
        [T0, T0 + DAY, T0 + 2 * DAY],
        [10.0, 11.0, 12.0],
        [11.0, 12.0, 13.0],
        [9.0, 10.0, 11.0],
        [10.5, 11.5, 12.5],
        [100.0, 200.0, 300.0],
    )
    b = SymbolSeries(
        "B",
        [T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY],
        [50.0, 51.0, 52.0],
        [51.0, 52.0, 53.0],
        [49.0, 50.0, 51.0],
        [50.5, 51.5, 52.5],
        [10.0, 20.0, 30.0],
    )
    return BarFeed([a, b])


def as_tuple(bar: Bar) -> tuple[str, int, float, float, float, float, float]:
    return (bar.symbol, bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume)


def timeline_tuples(feed: BarFeed) -> list[tuple[str, int, float, float, float, float, float]]:
    """The feed's bars in the order a backtest visits them."""
    out = []
    ts_list, sym_idx, rows = feed.timeline()
    for ts, si, r in zip(ts_list, sym_idx, rows, strict=True):
        s = feed[feed.symbols[si]]
        out.append((s.symbol, ts, s.open[r], s.high[r], s.low[r], s.close[r], s.volume[r]))
    return out


def adapter_threads(prefix: str = "tradeloop-") -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix)]


@pytest.fixture(autouse=True)
def loop_threads(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[list[Any]]:
    """Tracks every adapter loop thread a test starts; fails the test if one outlives it."""
    created: list[Any] = []
    original = paper._LoopThread

    class Tracked(original):  # type: ignore[misc, valid-type]
        def __init__(self, name: str) -> None:
            super().__init__(name)
            created.append(self)

    monkeypatch.setattr(paper, "_LoopThread", Tracked)
    yield created
    leaked = [r for r in created if r.running]
    for r in leaked:  # clean up whatever a failing test left behind
        r.stop()
    assert not leaked, f"{len(leaked)} adapter loop thread(s) left running"
    assert adapter_threads() == []


@pytest.fixture(scope="module")
def sample_feed() -> BarFeed:
    return load_sample("daily", symbols=SAMPLE_SYMBOLS)


def costs() -> dict[str, Any]:
    # participation 0.02% of the sample's ~1e6 daily volume: many orders fill over several bars
    return {
        "participation_rate": 0.0002,
        "commission": PerShareCommission(0.005, minimum=1.0),
        "slippage": PercentSlippage(0.0005),
    }


def assert_same_run(paper_run: BacktestResult, backtest: BacktestResult) -> None:
    assert [f.to_dict() for f in paper_run.fills] == [f.to_dict() for f in backtest.fills]
    assert [t.to_dict() for t in paper_run.trades] == [t.to_dict() for t in backtest.trades]
    assert [(o.id, o.status, o.filled_qty, o.avg_fill_price) for o in paper_run.orders] == [
        (o.id, o.status, o.filled_qty, o.avg_fill_price) for o in backtest.orders
    ]
    assert [o.to_dict() for o in paper_run.orders] == [o.to_dict() for o in backtest.orders]
    assert paper_run.equity_ts == backtest.equity_ts
    assert paper_run.equity == backtest.equity
    assert paper_run.exposure == backtest.exposure
    assert paper_run.final_cash == backtest.final_cash
    assert paper_run.bars_processed == backtest.bars_processed
    assert paper_run.symbols == backtest.symbols


# -- SyncEngine stream mode: paper trading on BlockingBars ---------------------------------------


def test_paper_trading_on_replayed_sample_matches_the_backtest(sample_feed: BarFeed) -> None:
    backtest = SyncEngine(sample_feed, SmaCross(allow_short=True), **costs()).run()
    with BlockingBars(ReplayBarSource(sample_feed)) as bars:
        paper_run = SyncEngine(
            bars, SmaCross(allow_short=True), symbols=list(SAMPLE_SYMBOLS), **costs()
        ).run()

    # the comparison is only worth something if the run exercised the interesting paths
    assert len(backtest.fills) > 100
    per_order: dict[str, int] = {}
    for f in backtest.fills:
        per_order[f.order_id] = per_order.get(f.order_id, 0) + 1
    assert max(per_order.values()) > 1  # partial fills (participation cap)
    assert any(t.side is OrderSide.SELL for t in backtest.trades)  # short trades
    assert any(f.commission > 0 for f in backtest.fills)
    assert backtest.bars_processed == len(sample_feed)

    assert_same_run(paper_run, backtest)


def test_stream_symbols_default_to_the_blocking_bars_symbols(sample_feed: BarFeed) -> None:
    backtest = SyncEngine(sample_feed, SmaCross(fast=5, slow=20), **costs()).run()
    with BlockingBars(ReplayBarSource(sample_feed)) as bars:
        paper_run = SyncEngine(bars, SmaCross(fast=5, slow=20), **costs()).run()
    assert paper_run.symbols == SAMPLE_SYMBOLS
    assert len(paper_run.fills) > 0
    assert_same_run(paper_run, backtest)


def test_max_bars_stops_the_stream_after_that_many_bars(sample_feed: BarFeed) -> None:
    backtest = SyncEngine(sample_feed, SmaCross(allow_short=True), **costs()).run(max_bars=400)
    with BlockingBars(ReplayBarSource(sample_feed)) as bars:
        paper_run = SyncEngine(
            bars, SmaCross(allow_short=True), symbols=list(SAMPLE_SYMBOLS), **costs()
        ).run(max_bars=400)
        # bars are pulled only when the engine asks: the next one is the 401st of the timeline
        following = next(iter(bars))
    assert paper_run.bars_processed == 400
    assert paper_run.equity_ts[-1] == sample_feed.timeline()[0][399]
    assert len(paper_run.fills) > 0
    assert_same_run(paper_run, backtest)
    assert as_tuple(following) == timeline_tuples(sample_feed)[400]


def test_orders_from_on_start_use_the_sources_clock(sample_feed: BarFeed) -> None:
    class EarlyBuy(Strategy):
        def on_start(self, ctx: Context) -> None:
            self.now_at_start = ctx.now
            ctx.buy("BOLT", 10)

    backtest = SyncEngine(sample_feed, EarlyBuy()).run()
    strat = EarlyBuy()
    with BlockingBars(ReplayBarSource(sample_feed)) as bars:
        assert bars.start == sample_feed.start
        paper_run = SyncEngine(bars, strat).run()
    assert strat.now_at_start == sample_feed.start - 1
    assert paper_run.orders[0].created_at == sample_feed.start - 1
    assert paper_run.fills[0].ts == sample_feed["BOLT"].ts[0]
    assert paper_run.fills[0].price == sample_feed["BOLT"].open[0]
    assert_same_run(paper_run, backtest)


class Tape(Strategy):
    """Records what it sees; on start buys 10 X at market and bids for 5 X at 60."""

    def on_start(self, ctx: Context) -> None:
        self.now_at_start = ctx.now
        self.seen: list[tuple[str, int, float]] = []
        self.fills: list[Fill] = []
        self.market = ctx.buy("X", 10)
        self.bid = ctx.buy("X", 5, type="limit", limit_price=60.0)

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.seen.append((bar.symbol, bar.ts, bar.close))

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        self.fills.append(fill)


def test_stream_skips_repeated_late_and_unknown_bars() -> None:
    stream = [
        Bar("X", T0, 100.0, 101.0, 99.0, 100.5, 1e6),
        Bar("X", T0, 50.0, 55.0, 50.0, 50.0, 1e6),  # repeat: would fill the bid and mark at 50
        Bar("Z", T0 + DAY, 1.0, 1.0, 1.0, 1.0, 1e6),  # a symbol not traded
        Bar("X", T0 - DAY, 50.0, 55.0, 50.0, 51.0, 1e6),  # late
        Bar("Y", T0 + DAY, 200.0, 201.0, 199.0, 200.0, 1e6),
        Bar("X", T0 + DAY, 101.0, 103.0, 100.0, 102.0, 1e6),
        Bar("X", T0 + DAY, 1.0, 1.0, 1.0, 1.0, 1e6),  # repeat
        Bar("X", T0 + 2 * DAY, 103.0, 106.0, 102.0, 105.0, 1e6),
    ]
    strat = Tape()
    engine = SyncEngine(stream, strat, symbols=["X", "Y"], initial_cash=10_000)
    result = engine.run()

    assert strat.now_at_start == 0  # a plain list has no start
    assert strat.seen == [
        ("X", T0, 100.5),
        ("Y", T0 + DAY, 200.0),
        ("X", T0 + DAY, 102.0),
        ("X", T0 + 2 * DAY, 105.0),
    ]
    assert result.bars_processed == 4
    # the market order filled at the first X bar's open; skipped bars never matched the bid at 60
    assert [(f.symbol, f.qty, f.price, f.ts) for f in result.fills] == [("X", 10.0, 100.0, T0)]
    assert [f.price for f in strat.fills] == [100.0]
    assert strat.bid.status is OrderStatus.ACCEPTED
    assert strat.bid.filled_qty == 0.0
    # positions were marked only to the closes of accepted bars
    assert result.equity_ts == [T0, T0 + DAY, T0 + 2 * DAY]
    assert result.equity == [9_000 + 1_005, 9_000 + 1_020, 9_000 + 1_050]
    assert result.exposure == [1_005, 1_020, 1_050]
    assert list(engine.ctx.history("X", 10)) == [100.5, 102.0, 105.0]
    assert list(engine.ctx.history("Y", 10)) == [200.0]
    assert engine.ctx.position("X").last_price == 105.0


def test_stream_fills_and_events_come_as_in_a_backtest() -> None:
    class BuyOnSecondBar(Strategy):
        def on_start(self, ctx: Context) -> None:
            self.i = 0
            self.log: list[tuple[str, object]] = []

        def on_bar(self, ctx: Context, bar: Bar) -> None:
            self.log.append(("bar", bar.close))
            if self.i == 1:
                ctx.buy("X", 10)
                ctx.sell("X", 4, type="limit", limit_price=105.5)
            self.i += 1

        def on_fill(self, ctx: Context, fill: Fill) -> None:
            self.log.append(("fill", fill.price))

        def on_order_update(self, ctx: Context, order: Order) -> None:
            self.log.append(("update", order.status.value))

    feed = small_feed()
    strat_bt = BuyOnSecondBar()
    backtest = SyncEngine(feed, strat_bt, initial_cash=10_000).run()
    stream = (
        Bar("X", t, o, h, lo, c, 1e6)
        for t, o, h, lo, c in zip(TS, OPEN, HIGH, LOW, CLOSE, strict=True)
    )  # a generator: any iterable of bars will do
    strat = BuyOnSecondBar()
    paper_run = SyncEngine(stream, strat, symbols=["X"], initial_cash=10_000).run()
    # both orders wait for bar 2: the market order takes its open (103), the limit sell is reached
    # inside it (high 106 >= 105.5) and fills at its limit
    assert [(f.side, f.qty, f.price, f.ts) for f in paper_run.fills] == [
        (OrderSide.BUY, 10.0, OPEN[2], TS[2]),
        (OrderSide.SELL, 4.0, 105.5, TS[2]),
    ]
    # events are delivered after the callback that caused them, and a bar's fills before the bar
    assert strat.log == [
        ("bar", CLOSE[0]),
        ("bar", CLOSE[1]),
        ("update", "accepted"),
        ("update", "accepted"),
        ("fill", OPEN[2]),
        ("update", "filled"),
        ("fill", 105.5),
        ("update", "filled"),
        ("bar", CLOSE[2]),
        ("bar", CLOSE[3]),
        ("bar", CLOSE[4]),
    ]
    assert strat.log == strat_bt.log
    assert_same_run(paper_run, backtest)


def test_history_in_stream_mode_never_sees_future_bars() -> None:
    closes = {"X": [float(100 + i) for i in range(12)], "Y": [float(500 - i) for i in range(12)]}

    class Hist(Strategy):
        def on_start(self, ctx: Context) -> None:
            self.records: list[tuple[str, int, list[float]]] = []
            self.y_before_any_y_bar: list[float] | None = None

        def on_bar(self, ctx: Context, bar: Bar) -> None:
            if self.y_before_any_y_bar is None:
                self.y_before_any_y_bar = list(ctx.history("Y", 3))
            self.records.append((bar.symbol, bar.ts, list(ctx.history(bar.symbol, 3))))

    stream = []
    for i in range(12):
        for sym in ("X", "Y"):
            c = closes[sym][i]
            stream.append(Bar(sym, T0 + i * DAY, c, c + 1, c - 1, c, 1e3))
    strat = Hist()
    engine = SyncEngine(stream, strat, symbols=["X", "Y"], history_bars=3)
    engine.run()

    assert strat.y_before_any_y_bar == []
    assert len(strat.records) == 24
    for k, (sym, ts, hist) in enumerate(strat.records):
        i = k // 2
        assert ts == T0 + i * DAY
        assert hist == closes[sym][max(0, i - 2) : i + 1]
    # history_bars bounds what is kept (amortised: at most twice as many)
    for sym in ("X", "Y"):
        assert 3 <= len(engine.feed[sym].close) <= 6
        assert list(engine.ctx.history(sym, 3)) == closes[sym][-3:]

    # and the same strategy in a backtest over the same bars sees the same history
    feed = BarFeed(
        SymbolSeries(
            sym,
            [T0 + i * DAY for i in range(12)],
            closes[sym],
            [c + 1 for c in closes[sym]],
            [c - 1 for c in closes[sym]],
            closes[sym],
            [1e3] * 12,
        )
        for sym in ("X", "Y")
    )
    strat_bt = Hist()
    SyncEngine(feed, strat_bt).run()
    assert strat_bt.records == strat.records


def test_stream_without_symbols_is_a_config_error() -> None:
    bars = [Bar("X", T0, 1.0, 1.0, 1.0, 1.0, 1.0)]
    with pytest.raises(ConfigError) as err:
        SyncEngine(bars, Strategy())
    assert err.value.field == "symbols"
    with pytest.raises(ConfigError) as err:
        SyncEngine(iter(bars), Strategy(), symbols=[])
    assert err.value.field == "symbols"


@pytest.mark.parametrize("history_bars", [0, -1, 2.5])
def test_stream_history_bars_must_be_a_positive_int(history_bars: Any) -> None:
    bars = [Bar("X", T0, 1.0, 1.0, 1.0, 1.0, 1.0)]
    with pytest.raises(ConfigError) as err:
        SyncEngine(bars, Strategy(), symbols=["X"], history_bars=history_bars)
    assert err.value.field == "history_bars"


@pytest.mark.parametrize("feed", [42, [Bar("X", T0, 1.0, 1.0, 1.0, 1.0, 1.0), "not a bar"]])
def test_stream_that_is_not_bars_is_a_config_error(feed: Any) -> None:
    with pytest.raises(ConfigError) as err:
        SyncEngine(feed, Strategy(), symbols=["X"])
    assert err.value.field == "feed"


def test_stream_engine_runs_once_and_checks_max_bars() -> None:
    bars = [Bar("X", T0, 1.0, 1.0, 1.0, 1.0, 1.0)]
    with pytest.raises(ConfigError) as err:
        SyncEngine(bars, Strategy(), symbols=["X"]).run(max_bars=0)
    assert err.value.field == "max_bars"
    engine = SyncEngine(bars, Strategy(), symbols=["X"])
    assert engine.run().bars_processed == 1
    with pytest.raises(EngineError):
        engine.run()


# -- BlockingBars ----------------------------------------------------------------------------


class TrackingSource:
    """A ReplayBarSource wrapper that records where its stream runs and how it is shut down."""

    def __init__(self, feed: BarFeed) -> None:
        self.inner = ReplayBarSource(feed)
        self.symbols = self.inner.symbols
        self.start = self.inner.start
        self.closed = 0
        self.stream_finalised = False
        self.threads: set[str] = set()

    async def bars(self, symbols: Sequence[str] | None = None) -> AsyncIterator[Bar]:
        try:
            async for bar in self.inner.bars(symbols):
                self.threads.add(threading.current_thread().name)
                yield bar
        finally:
            self.stream_finalised = True

    async def close(self) -> None:
        self.closed += 1
        await self.inner.close()


class NeverSource:
    """A source whose stream waits forever for its first bar."""

    def __init__(self) -> None:
        self.never = asyncio.Event()
        self.closed = 0

    async def bars(self, symbols: Sequence[str] | None = None) -> AsyncIterator[Bar]:
        await self.never.wait()
        yield Bar("X", T0, 1.0, 1.0, 1.0, 1.0, 1.0)

    async def close(self) -> None:
        self.closed += 1


class SlowSource:
    """A source whose first bar takes ``delay`` seconds to arrive."""

    symbols = ("X",)

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def bars(self, symbols: Sequence[str] | None = None) -> AsyncIterator[Bar]:
        await asyncio.sleep(self.delay)
        yield Bar("X", T0, 1.0, 2.0, 0.5, 1.5, 10.0)

    async def close(self) -> None:
        pass


def test_blocking_bars_yields_the_sources_bars_in_order() -> None:
    feed = two_symbol_feed()
    source = TrackingSource(feed)
    with BlockingBars(source) as bars:
        got = [as_tuple(b) for b in bars]
        assert next(iter(bars), None) is None  # exhausted stays exhausted
    assert got == timeline_tuples(feed)
    assert [(s, t) for s, t, *_ in got] == [
        ("A", T0),
        ("A", T0 + DAY),
        ("B", T0 + DAY),
        ("A", T0 + 2 * DAY),
        ("B", T0 + 2 * DAY),
        ("B", T0 + 3 * DAY),
    ]
    # the async stream ran on the adapter's own loop thread, not the caller's
    assert len(source.threads) == 1
    assert next(iter(source.threads)).startswith("tradeloop-bars")
    assert threading.current_thread().name not in source.threads


def test_blocking_bars_passes_symbols_to_the_source() -> None:
    feed = two_symbol_feed()
    with BlockingBars(ReplayBarSource(feed), symbols=["B"]) as bars:
        assert bars.symbols == ("B",)
        got = [as_tuple(b) for b in bars]
    assert got == [t for t in timeline_tuples(feed) if t[0] == "B"]


def test_blocking_bars_raises_the_sources_errors() -> None:
    with BlockingBars(ReplayBarSource(two_symbol_feed()), symbols=["NOPE"]) as bars:
        with pytest.raises(ConfigError) as err:
            next(iter(bars))
        assert err.value.field == "symbols"


def test_blocking_bars_start_and_symbols_pass_through() -> None:
    feed = two_symbol_feed()
    with BlockingBars(ReplayBarSource(feed)) as bars:
        assert bars.start == feed.start == T0
        assert bars.symbols == ("A", "B")
    with BlockingBars(ReplayBarSource(feed), symbols=("A",)) as bars:
        assert bars.symbols == ("A",)
        assert bars.start == T0
    with BlockingBars(NeverSource()) as bars:  # a source without either attribute
        assert bars.start is None
        assert bars.symbols is None


def test_blocking_bars_close_stops_the_thread_and_is_idempotent() -> None:
    source = TrackingSource(two_symbol_feed())
    bars = BlockingBars(source)
    it = iter(bars)
    assert next(it).symbol == "A"
    assert len(adapter_threads("tradeloop-bars")) == 1
    bars.close()
    assert adapter_threads("tradeloop-bars") == []
    assert source.stream_finalised  # the suspended stream was closed, not abandoned
    assert source.closed == 1
    bars.close()  # safe to call twice
    assert source.closed == 1
    assert next(it, None) is None  # a closed stream yields nothing more


def test_blocking_bars_as_context_manager_closes_it() -> None:
    source = TrackingSource(two_symbol_feed())
    with BlockingBars(source) as bars:
        assert isinstance(bars, BlockingBars)
        first = next(iter(bars))
        assert (first.symbol, first.ts) == ("A", T0)
        assert len(adapter_threads("tradeloop-bars")) == 1
    assert adapter_threads("tradeloop-bars") == []
    assert source.closed == 1
    assert source.stream_finalised


def test_blocking_bars_closes_when_the_with_block_raises() -> None:
    source = TrackingSource(two_symbol_feed())
    with pytest.raises(RuntimeError, match="boom"), BlockingBars(source) as bars:
        next(iter(bars))
        raise RuntimeError("boom")
    assert adapter_threads("tradeloop-bars") == []
    assert source.closed == 1


def test_blocking_bars_timeout_on_a_silent_source() -> None:
    source = NeverSource()
    bars = BlockingBars(source, symbols=["X"], timeout=0.2)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        next(iter(bars))
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 5.0
    bars.close()  # still closes cleanly after a timeout
    assert source.closed == 1
    assert adapter_threads("tradeloop-bars") == []
    bars.close()


def test_blocking_bars_stream_survives_a_timeout() -> None:
    with BlockingBars(SlowSource(delay=0.5), timeout=0.2) as bars:
        it = iter(bars)
        with pytest.raises(TimeoutError):
            next(it)
        # the bar arrives well within a further timeout-bounded wait; a silent end of the stream
        # would make the engine finish as if the source had run out of bars
        got = None
        for _ in range(10):
            try:
                got = next(it, None)
                break
            except TimeoutError:
                continue
        assert got is not None
        assert as_tuple(got) == ("X", T0, 1.0, 2.0, 0.5, 1.5, 10.0)


def test_blocking_bars_constructor_failure_leaves_no_thread() -> None:
    class Eager:
        symbols = ("X",)

        def bars(self, symbols: Sequence[str] | None = None) -> AsyncIterator[Bar]:
            raise ConfigError("symbols", symbols, "checked eagerly")

        async def close(self) -> None:
            pass

    with pytest.raises(ConfigError):
        BlockingBars(Eager(), symbols=["Q"])
    assert adapter_threads("tradeloop-bars") == []


# -- BlockingBroker over SimulatedBroker -----------------------------------------------------


@pytest.fixture
def make_broker() -> Iterator[Callable[..., BlockingBroker]]:
    made: list[BlockingBroker] = []

    def make(volume: float = 1e6, **kwargs: Any) -> BlockingBroker:
        sim = SimulatedBroker(small_feed(volume), initial_cash=10_000, **kwargs)
        bb = BlockingBroker(sim, timeout=5.0)
        made.append(bb)
        return bb

    yield make
    for bb in made:
        bb.close()


def kinds(events: list[BrokerEvent]) -> list[str]:
    return [str(e.kind) for e in events]


def test_submit_limit_order_is_accepted_with_a_broker_id(
    make_broker: Callable[..., BlockingBroker],
) -> None:
    bb = make_broker()
    assert len(adapter_threads("tradeloop-broker")) == 1
    order = bb.submit("X", "buy", 10, "limit", limit_price=95.0)
    assert order.status is OrderStatus.ACCEPTED
    assert order.client_order_id.startswith("bb-")
    assert order.id and order.id != order.client_order_id  # the venue's own id
    assert (order.qty, order.limit_price, order.filled_qty) == (10.0, 95.0, 0.0)
    assert order.created_at == TS[0] - 1  # the venue's clock starts just before the first bar
    venue = bb.broker.exchange.book.get(order.id)  # type: ignore[attr-defined]
    assert venue.client_order_id == order.client_order_id
    assert venue is not order  # a snapshot, not the venue's live object

    events = bb.events()
    assert kinds(events) == ["new"]
    assert events[0].order.id == order.id
    assert events[0].order.client_order_id == order.client_order_id
    assert events[0].order.status is OrderStatus.ACCEPTED
    assert events[0].fill is None
    assert bb.events() == []  # taken once
    assert [o.id for o in bb.open_orders()] == [order.id]


def test_market_order_fills_at_the_next_bar_open(
    make_broker: Callable[..., BlockingBroker],
) -> None:
    bb = make_broker()
    bars = bb.bars()
    first = next(bars)
    assert (first.ts, first.close) == (TS[0], CLOSE[0])
    assert bb.clock().ts == TS[0]
    order = bb.submit("X", "buy", 10)
    assert order.status is OrderStatus.ACCEPTED
    assert kinds(bb.events()) == ["new"]
    assert bb.positions() == []

    second = next(bars)
    assert second.ts == TS[1]
    events = bb.events()
    assert kinds(events) == ["fill"]
    ev = events[0]
    assert ev.fill is not None
    assert (ev.fill.qty, ev.fill.price, ev.fill.ts) == (10.0, OPEN[1], TS[1])
    assert ev.fill.side is OrderSide.BUY
    assert ev.fill.order_id == order.id
    assert ev.order.status is OrderStatus.FILLED
    assert (ev.order.filled_qty, ev.order.avg_fill_price) == (10.0, OPEN[1])

    [pos] = bb.positions()
    assert (pos.symbol, pos.qty, pos.avg_price, pos.last_price) == ("X", 10.0, OPEN[1], CLOSE[1])
    account = bb.account()
    assert account.cash == 10_000 - 10 * OPEN[1]
    assert account.equity == 10_000 - 10 * OPEN[1] + 10 * CLOSE[1]
    got = bb.get_order(order.id)
    assert (got.status, got.filled_qty, got.avg_fill_price) == (OrderStatus.FILLED, 10.0, 101.0)
    assert bb.open_orders() == []

    next(bars)  # marking continues with later bars
    assert bb.positions()[0].last_price == CLOSE[2]
    assert bb.account().equity == 10_000 - 10 * OPEN[1] + 10 * CLOSE[2]


def test_limit_orders_fill_only_when_the_bar_reaches_the_limit(
    make_broker: Callable[..., BlockingBroker],
) -> None:
    bb = make_broker()
    bars = bb.bars()
    next(bars)
    buy = bb.submit("X", "buy", 5, "limit", limit_price=100.5)  # bar 1: open 101, low 100
    sell = bb.submit("X", "sell", 2, "limit", limit_price=200.0)  # never reached
    bb.events()
    next(bars)
    events = bb.events()
    assert kinds(events) == ["fill"]
    assert events[0].fill is not None
    assert (events[0].fill.order_id, events[0].fill.price) == (buy.id, 100.5)
    assert [o.id for o in bb.open_orders()] == [sell.id]
    rest = list(bars)
    assert [b.ts for b in rest] == TS[2:]
    assert bb.events() == []
    assert bb.get_order(sell.id).status is OrderStatus.ACCEPTED


def test_partial_fills_under_a_participation_cap(
    make_broker: Callable[..., BlockingBroker],
) -> None:
    bb = make_broker(volume=10.0, participation_rate=0.5)  # at most 5 units a bar
    order = bb.submit("X", "buy", 8)
    assert kinds(bb.events()) == ["new"]
    bars = bb.bars()
    next(bars)
    events = bb.events()
    assert kinds(events) == ["partial_fill"]
    assert events[0].fill is not None
    assert (events[0].fill.qty, events[0].fill.price) == (5.0, OPEN[0])
    assert events[0].order.status is OrderStatus.PARTIALLY_FILLED
    next(bars)
    events = bb.events()
    assert kinds(events) == ["fill"]
    assert events[0].fill is not None
    assert (events[0].fill.qty, events[0].fill.price) == (3.0, OPEN[1])
    got = bb.get_order(order.id)
    assert got.status is OrderStatus.FILLED
    assert got.avg_fill_price == pytest.approx((5 * OPEN[0] + 3 * OPEN[1]) / 8)
    assert bb.positions()[0].qty == 8.0


def test_cancel_an_open_order(make_broker: Callable[..., BlockingBroker]) -> None:
    bb = make_broker()
    order = bb.submit("X", "buy", 10, "limit", limit_price=50.0)
    bb.events()
    bb.cancel(order)
    events = bb.events()
    assert kinds(events) == ["canceled"]
    assert events[0].order.id == order.id
    assert events[0].order.status is OrderStatus.CANCELED
    assert bb.get_order(order.id).status is OrderStatus.CANCELED
    assert bb.open_orders() == []
    with pytest.raises(OrderStateError):
        bb.cancel(order)  # already canceled at the venue
    assert list(bb.bars())  # the whole replay goes by without a fill
    assert bb.events() == []
    assert bb.positions() == []


def test_cancel_a_filled_order_is_refused(make_broker: Callable[..., BlockingBroker]) -> None:
    bb = make_broker()
    order = bb.submit("X", "buy", 1)
    bars = bb.bars()
    next(bars)
    assert kinds(bb.events()) == ["new", "fill"]
    with pytest.raises(OrderStateError):
        bb.cancel(order)
    assert bb.events() == []
    assert bb.get_order(order.id).status is OrderStatus.FILLED


def test_replace_a_limit_order(make_broker: Callable[..., BlockingBroker]) -> None:
    bb = make_broker()
    old = bb.submit("X", "buy", 10, "limit", limit_price=90.0)
    bb.events()
    new = bb.replace(old, qty=7, limit_price=100.5)
    assert new.id != old.id
    assert new.client_order_id != old.client_order_id
    assert new.status is OrderStatus.ACCEPTED
    assert (new.qty, new.limit_price, new.replaces) == (7.0, 100.5, old.id)

    events = bb.events()
    assert kinds(events) == ["new", "replaced"]
    assert events[0].order.id == new.id
    assert events[1].order.id == old.id
    assert events[1].order.status is OrderStatus.REPLACED
    assert events[1].order.replaced_by == new.id
    assert bb.get_order(old.id).status is OrderStatus.REPLACED
    assert [o.id for o in bb.open_orders()] == [new.id]
    with pytest.raises(OrderStateError):
        bb.replace(bb.get_order(old.id), limit_price=91.0)  # a replaced order is done

    bars = bb.bars()
    next(bars)  # bar 0 opens at 100, inside the new limit: fills at the open
    events = bb.events()
    assert kinds(events) == ["fill"]
    assert events[0].fill is not None
    assert (events[0].fill.order_id, events[0].fill.qty, events[0].fill.price) == (
        new.id,
        7.0,
        OPEN[0],
    )
    assert bb.positions()[0].qty == 7.0


def test_lookups_by_broker_id_and_client_id(make_broker: Callable[..., BlockingBroker]) -> None:
    bb = make_broker()
    a = bb.submit("X", "buy", 1, "limit", limit_price=90.0, client_order_id="mine-1")
    b = bb.submit("X", "sell", 2, "limit", limit_price=120.0, tag="exit")
    assert a.client_order_id == "mine-1"
    assert bb.get_order(a.id).client_order_id == "mine-1"
    assert bb.get_order_by_client_id("mine-1").id == a.id
    got = bb.get_order_by_client_id(b.client_order_id)
    assert (got.id, got.side, got.qty, got.tag) == (b.id, OrderSide.SELL, 2.0, "exit")
    assert sorted(o.id for o in bb.open_orders()) == sorted([a.id, b.id])
    with pytest.raises(OrderNotFoundError):
        bb.get_order("nope")
    with pytest.raises(OrderNotFoundError):
        bb.get_order_by_client_id("nope")
    with pytest.raises(InvalidOrderError) as err:
        bb.submit("X", "buy", 1, "limit", limit_price=90.0, client_order_id="mine-1")
    assert err.value.field == "client_order_id"


@pytest.mark.parametrize(
    ("args", "params", "field"),
    [
        (("X", "buy", -1), {}, "qty"),
        (("X", "buy", 0), {}, "qty"),
        (("ZZZ", "buy", 1), {}, "symbol"),
        (("X", "hold", 1), {}, "side"),
        (("X", "buy", 1, "limit"), {}, "limit_price"),
        (("X", "buy", 1, "market"), {"limit_price": 10.0}, "limit_price"),
    ],
)
def test_malformed_request_raises_before_anything_is_sent(
    make_broker: Callable[..., BlockingBroker],
    args: tuple[Any, ...],
    params: dict[str, Any],
    field: str,
) -> None:
    bb = make_broker()
    with pytest.raises(InvalidOrderError) as err:
        bb.submit(*args, **params)
    assert err.value.field == field
    assert bb.events(timeout=0.05) == []
    assert bb.open_orders() == []
    assert bb.broker.exchange.book.orders == {}  # type: ignore[attr-defined]


def test_order_beyond_buying_power_is_rejected(
    make_broker: Callable[..., BlockingBroker],
) -> None:
    bb = make_broker()
    bars = bb.bars()
    next(bars)  # the venue now has a price for X: 100.5
    order = bb.submit("X", "buy", 1_000)
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason is not None
    assert "buying power" in order.reject_reason
    events = bb.events()
    assert kinds(events) == ["rejected"]
    assert events[0].order.id == order.id
    assert bb.open_orders() == []
    next(bars)
    assert bb.events() == []
    assert bb.positions() == []
    assert bb.account().cash == 10_000


def test_events_waits_at_most_the_timeout(make_broker: Callable[..., BlockingBroker]) -> None:
    bb = make_broker()
    started = time.monotonic()
    assert bb.events(timeout=0.1) == []
    assert 0.05 <= time.monotonic() - started < 5.0
    bb.submit("X", "buy", 1, "limit", limit_price=90.0)
    assert kinds(bb.events(timeout=1.0)) == ["new"]


def test_broker_close_joins_the_thread_and_later_calls_fail() -> None:
    bb = BlockingBroker(SimulatedBroker(small_feed(), initial_cash=10_000), timeout=5.0)
    bars = bb.bars()
    next(bars)
    order = bb.submit("X", "buy", 1, "limit", limit_price=90.0)
    assert len(adapter_threads("tradeloop-broker")) == 1
    bb.close()
    assert adapter_threads("tradeloop-broker") == []
    assert bb.broker.connection_state == "closed"
    bb.close()  # safe to call twice

    calls: list[Callable[[], object]] = [
        bb.account,
        bb.positions,
        bb.open_orders,
        bb.clock,
        lambda: bb.get_order(order.id),
        lambda: bb.get_order_by_client_id(order.client_order_id),
        lambda: bb.submit("X", "buy", 1),
        lambda: bb.cancel(order),
        lambda: bb.replace(order, limit_price=91.0),
        lambda: next(bb.bars()),
    ]
    for call in calls:
        with pytest.raises(EngineError):
            call()
    gc.collect()
    assert next(bars, None) is None  # the open stream was closed with the broker


def test_broker_as_context_manager_closes_stream_and_source() -> None:
    source = TrackingSource(small_feed())
    with BlockingBroker(SimulatedBroker(source, initial_cash=10_000), timeout=5.0) as bb:
        assert isinstance(bb, BlockingBroker)
        bars = bb.bars()
        assert next(bars).ts == TS[0]
        assert len(adapter_threads("tradeloop-broker")) == 1
    assert adapter_threads("tradeloop-broker") == []
    assert source.stream_finalised
    assert source.closed == 1
    assert bb.broker.connection_state == "closed"


def test_broker_connect_failure_stops_the_thread() -> None:
    class Unreachable:
        async def connect(self, on_event: Callable[[BrokerEvent], None]) -> None:
            raise BrokerConnectionError("venue unreachable")

        async def close(self) -> None:
            pass

    with pytest.raises(BrokerConnectionError, match="unreachable"):
        BlockingBroker(Unreachable(), timeout=5.0)  # type: ignore[arg-type]
    assert adapter_threads("tradeloop-broker") == []


def test_calls_after_close_leave_no_unawaited_coroutine() -> None:
    bb = BlockingBroker(SimulatedBroker(small_feed()), timeout=5.0)
    bb.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(EngineError):
            bb.account()
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []


def test_blocking_broker_returns_snapshots_not_live_orders(
    make_broker: Callable[..., BlockingBroker],
) -> None:
    bb = make_broker()
    order = bb.submit("X", "buy", 3)
    assert isinstance(order, Order)
    next(bb.bars())
    # the snapshot the caller holds does not change behind its back; asking again does
    assert order.status is OrderStatus.ACCEPTED
    assert bb.get_order(order.id).status is OrderStatus.FILLED
