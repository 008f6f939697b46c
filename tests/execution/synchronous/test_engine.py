"""SyncExecutionEngine end to end on small hand-made feeds."""

from __future__ import annotations

import math

import pytest

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.errors import ConfigError, DataError, EngineError
from tradeloop.execution.core.costs import PerShareCommission
from tradeloop.execution.synchronous import SyncEngine, SyncExecutionEngine
from tradeloop.execution.types import Bar, Fill, Order, OrderStatus
from tradeloop.strategies import SmaCross
from tradeloop.strategy import Context, Strategy

DAY = 86_400_000_000_000
T0 = 19_000 * DAY + 21 * 3_600_000_000_000


def series(symbol: str, closes: list[float], start: int = T0, step: int = DAY) -> SymbolSeries:
    n = len(closes)
    opens = [closes[0], *closes[:-1]]  # each bar opens at the previous close
    return SymbolSeries(
        symbol,
        [start + i * step for i in range(n)],
        opens,
        [max(o, c) + 1 for o, c in zip(opens, closes, strict=True)],
        [min(o, c) - 1 for o, c in zip(opens, closes, strict=True)],
        closes,
        [1e6] * n,
    )


class Recorder(Strategy):
    """Buys on a given bar index and logs every callback."""

    buy_on: int = 0
    qty: float = 10.0

    def on_start(self, ctx: Context) -> None:
        self.log: list[tuple[str, object]] = [("start", None)]
        self.i = 0
        self.in_callback = False

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        assert not self.in_callback
        self.in_callback = True
        self.log.append(("bar", bar.close))
        if self.i == self.buy_on:
            self.order = ctx.buy(bar.symbol, self.qty)
            self.log.append(("submitted", self.order.status))
        self.i += 1
        self.in_callback = False

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        assert not self.in_callback  # events are never delivered from inside another callback
        self.log.append(("fill", fill.price))

    def on_order_update(self, ctx: Context, order: Order) -> None:
        assert not self.in_callback
        self.log.append(("update", order.status))

    def on_stop(self, ctx: Context) -> None:
        self.log.append(("stop", None))


def test_order_fills_at_next_open_and_events_are_ordered() -> None:
    feed = BarFeed([series("X", [100, 102, 105, 104])])
    strat = Recorder(buy_on=1)
    result = SyncExecutionEngine(feed, strat, initial_cash=10_000).run()
    assert strat.log == [
        ("start", None),
        ("bar", 100),
        ("bar", 102),
        ("submitted", OrderStatus.ACCEPTED),
        ("update", OrderStatus.ACCEPTED),
        ("fill", 102),  # bar 2 opens at the previous close, 102: no look-ahead
        ("update", OrderStatus.FILLED),
        ("bar", 105),
        ("bar", 104),
        ("stop", None),
    ]
    assert [f.price for f in result.fills] == [102]
    # equity: flat until the fill, then 10 shares marked to each close
    assert result.equity == [10_000, 10_000, 10_000 + 10 * 3, 10_000 + 10 * 2]
    assert result.exposure == [0, 0, 1050, 1040]
    assert result.bars_processed == 4
    assert result.final_cash == 10_000 - 1020


def test_order_in_on_start_fills_on_first_bar_open() -> None:
    class Early(Strategy):
        def on_start(self, ctx: Context) -> None:
            ctx.buy("X", 1)

    result = SyncEngine(BarFeed([series("X", [100, 101])]), Early()).run()
    assert result.fills[0].price == 100
    assert result.fills[0].ts == T0


def test_multi_symbol_no_fill_on_same_timestamp_bar_of_other_symbol() -> None:
    class CrossBuy(Strategy):
        def on_start(self, ctx: Context) -> None:
            self.done = False

        def on_bar(self, ctx: Context, bar: Bar) -> None:
            if bar.symbol == "A" and not self.done:
                self.done = True
                ctx.buy("B", 1)  # decided on A's first bar; B's first bar has the same timestamp

    feed = BarFeed([series("A", [10, 11, 12]), series("B", [50, 60, 70])])
    result = SyncExecutionEngine(feed, CrossBuy()).run()
    assert result.fills[0].symbol == "B"
    assert result.fills[0].ts == T0 + DAY
    assert result.fills[0].price == 50  # B's second bar opens at B's first close
    assert len(result.equity) == 3  # one point per timestamp, not per bar
    assert result.equity_ts == [T0, T0 + DAY, T0 + 2 * DAY]


def test_history_never_includes_future_bars() -> None:
    class Hist(Strategy):
        def on_start(self, ctx: Context) -> None:
            self.seen: list[list[float]] = []

        def on_bar(self, ctx: Context, bar: Bar) -> None:
            self.seen.append(list(ctx.history("X", 2)))

    strat = Hist()
    SyncExecutionEngine(BarFeed([series("X", [1, 2, 3])]), strat).run()
    assert strat.seen == [[1], [1, 2], [2, 3]]


def test_history_bad_arguments() -> None:
    ctx = SyncExecutionEngine(BarFeed([series("X", [1, 2])]), Strategy()).ctx
    for kwargs, field in [
        ({"symbol": "X", "length": 0}, "length"),
        ({"symbol": "X", "length": 2, "field": "vwap"}, "field"),
        ({"symbol": "Q", "length": 2}, "symbol"),
    ]:
        with pytest.raises(ConfigError) as err:
            ctx.history(**kwargs)  # type: ignore[arg-type]
        assert err.value.field == field


def test_stop_loss_placed_in_on_fill_protects_position() -> None:
    class Protected(Strategy):
        def on_start(self, ctx: Context) -> None:
            ctx.buy("X", 10)

        def on_fill(self, ctx: Context, fill: Fill) -> None:
            if fill.side == "buy":
                ctx.sell("X", fill.qty, type="stop", stop_price=fill.price - 5)

    # fills at 100; bar 3 falls from 101 through the 95 stop
    result = SyncExecutionEngine(BarFeed([series("X", [100, 101, 90, 92])]), Protected()).run()
    assert [(f.side.value, f.price) for f in result.fills] == [("buy", 100), ("sell", 95)]
    trade = result.trades[0]
    assert trade.is_closed and trade.pnl == pytest.approx(-50)


def test_accounting_identity_on_sma_run() -> None:
    closes = [100 + 10 * math.sin(i / 7) + i * 0.05 for i in range(400)]
    engine = SyncExecutionEngine(
        BarFeed([series("X", closes)]),
        SmaCross(fast=5, slow=20, allow_short=True),
        commission=PerShareCommission(0.01, minimum=1.0),
    )
    result = engine.run()
    pf = engine.portfolio
    assert len(result.fills) > 10
    assert result.final_equity == pytest.approx(
        pf.initial_cash + pf.realized_pnl + pf.unrealized_pnl - pf.commission_paid
    )
    assert sum(t.pnl for t in result.trades) == pytest.approx(pf.realized_pnl)
    assert sum(f.commission for f in result.fills) == pytest.approx(pf.commission_paid)


def test_progress_callback_reaches_total() -> None:
    calls: list[tuple[int, int]] = []
    SyncExecutionEngine(BarFeed([series("X", [1.0] * 250)]), Strategy()).run(
        progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1] == (250, 250)
    assert len(calls) >= 100
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_runs_once() -> None:
    engine = SyncExecutionEngine(BarFeed([series("X", [1, 2])]), Strategy())
    engine.run()
    with pytest.raises(EngineError):
        engine.run()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"initial_cash": 0}, "initial_cash"),
        ({"initial_cash": float("nan")}, "initial_cash"),
        ({"leverage": 0.5}, "leverage"),
        ({"participation_rate": 0.0}, "participation_rate"),
        ({"participation_rate": 2.0}, "participation_rate"),
    ],
)
def test_bad_engine_arguments(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        SyncExecutionEngine(BarFeed([series("X", [1, 2])]), Strategy(), **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


def test_empty_feed_and_wrong_types() -> None:
    with pytest.raises(DataError):
        SyncExecutionEngine(BarFeed([]), Strategy())
    with pytest.raises(ConfigError) as err:
        SyncExecutionEngine([1, 2], Strategy())  # type: ignore[arg-type]
    assert err.value.field == "feed"
    with pytest.raises(ConfigError) as err:
        SyncExecutionEngine(BarFeed([series("X", [1])]), object())  # type: ignore[arg-type]
    assert err.value.field == "strategy"


def test_strategy_params_are_checked() -> None:
    assert SmaCross(fast=3).params == {
        "fast": 3,
        "slow": 30,
        "allocation": 0.95,
        "allow_short": False,
    }
    assert SmaCross(allocation=1).allocation == 1.0
    with pytest.raises(ConfigError) as err:
        SmaCross(fsat=3)
    assert err.value.field == "strategy.params.fsat"
    with pytest.raises(ConfigError) as err:
        SmaCross(fast="3")
    assert err.value.field == "strategy.params.fast"
    with pytest.raises(ConfigError):
        SmaCross(allow_short=1)


class KeepsOldHandle(Strategy):
    """Replaces a resting limit twice through the *first* handle, then cancels through it."""

    def on_start(self, ctx: Context) -> None:
        self.n = 0
        self.first: Order | None = None
        self.results: list[tuple[str, str | None, bool | None]] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.n += 1
        if self.n == 1:
            self.first = ctx.buy("X", 1, type="limit", limit_price=1.0)
        elif self.n in (2, 3) and self.first is not None:
            new = ctx.replace(self.first, limit_price=1.0 + self.n / 100)
            self.results.append(("replace", new.replaces, None))
        elif self.n == 4 and self.first is not None:
            self.results.append(("cancel", None, ctx.cancel(self.first)))
            self.results.append(("again", None, ctx.cancel(self.first)))


def test_a_handle_kept_across_replaces_acts_on_the_newest_order() -> None:
    strat = KeepsOldHandle()
    result = SyncEngine(BarFeed([series("X", [100.0] * 6)]), strat).run()
    by_id = {o.id: o for o in result.orders}
    # the second replace followed O000001 -> O000002 and replaced that one
    assert strat.results[:2] == [("replace", "O000001", None), ("replace", "O000002", None)]
    assert by_id["O000001"].status is OrderStatus.REPLACED
    assert by_id["O000002"].status is OrderStatus.REPLACED
    # cancelling through the first handle cancelled the working order O000003
    assert strat.results[2:] == [("cancel", None, True), ("again", None, False)]
    assert by_id["O000003"].status is OrderStatus.CANCELED
    assert by_id["O000003"].limit_price == 1.03


class RestingDay(Strategy):
    """Leaves a day and a gtc limit order open; records what on_stop sees."""

    def on_start(self, ctx: Context) -> None:
        self.updates: list[tuple[str, OrderStatus]] = []
        self.n = 0

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.n += 1
        if self.n == 2:
            self.day = ctx.buy(bar.symbol, 1, type="limit", limit_price=1.0, tif="day")
            self.gtc = ctx.buy(bar.symbol, 1, type="limit", limit_price=1.0)

    def on_order_update(self, ctx: Context, order: Order) -> None:
        self.updates.append((order.id, order.status))

    def on_stop(self, ctx: Context) -> None:
        self.open_at_stop = [o.id for o in ctx.open_orders()]


@pytest.mark.parametrize("how", ["feed", "stream", "max_bars"])
def test_day_orders_expire_when_the_data_ends(how: str) -> None:
    feed = BarFeed([series("X", [100, 101, 102, 103], step=3_600_000_000_000)])
    strategy = RestingDay()
    if how == "feed":
        result = SyncEngine(feed, strategy).run()
    elif how == "stream":
        x = feed.series["X"]
        rows = zip(x.ts, x.open, x.high, x.low, x.close, x.volume, strict=True)
        bars = [Bar("X", t, o, h, lo, c, v) for t, o, h, lo, c, v in rows]
        result = SyncEngine(bars, strategy, symbols=["X"]).run()
    else:  # a run stopped early is not the end of the data: nothing expires
        result = SyncEngine(feed, strategy).run(max_bars=3)
    statuses = {o.id: o.status for o in result.orders}
    if how == "max_bars":
        assert statuses == {"O000001": OrderStatus.ACCEPTED, "O000002": OrderStatus.ACCEPTED}
        return
    assert statuses == {"O000001": OrderStatus.EXPIRED, "O000002": OrderStatus.ACCEPTED}
    assert strategy.updates[-1] == ("O000001", OrderStatus.EXPIRED)  # delivered before on_stop
    assert strategy.open_at_stop == ["O000002"]
    assert result.orders[0].updated_at == feed.series["X"].ts[-1]
