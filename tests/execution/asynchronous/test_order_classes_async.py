"""Order classes on the asynchronous engine: one request with its legs, the legs' venue ids
learned from snapshots (or later, when a leg's event comes first), refusals, replace rules."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.errors import InvalidOrderError, OrderRejectedError
from tradeloop.execution.async_protocols import EventHandler
from tradeloop.execution.asynchronous import AsyncEngine, SimulatedBroker
from tradeloop.execution.synchronous import SyncEngine
from tradeloop.execution.types import (
    Bar,
    BrokerEvent,
    Fill,
    Order,
    OrderClass,
    OrderStatus,
)
from tradeloop.results.result import BacktestResult
from tradeloop.strategy import Context, Strategy

HOUR = 3_600_000_000_000
T0 = 20_000 * 24 * HOUR


def series(symbol: str, closes: list[float]) -> SymbolSeries:
    n = len(closes)
    opens = [closes[0], *closes[:-1]]
    return SymbolSeries(
        symbol,
        [T0 + i * HOUR for i in range(n)],
        opens,
        [max(o, c) + 1 for o, c in zip(opens, closes, strict=True)],
        [min(o, c) - 1 for o, c in zip(opens, closes, strict=True)],
        closes,
        [1e6] * n,
    )


FEED = BarFeed([series("X", [100, 100, 101, 104, 108, 111, 109, 104, 99, 95, 96, 97, 98])])


class Trader(Strategy):
    """A bracket first; once it is over, an oco for a position bought by hand."""

    def on_start(self, ctx: Context) -> None:
        self.n = 0
        self.log: list[tuple[Any, ...]] = []
        self.bracket: Order | None = None
        self.oco: Order | None = None

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.n += 1
        self.log.append(("bar", self.n, ctx.position("X").qty))
        if self.n == 1:
            self.bracket = ctx.buy(
                "X",
                10,
                order_class="bracket",
                take_profit={"limit_price": 110.0},
                stop_loss={"stop_price": 95.0},
            )
        elif self.n == 7:
            ctx.buy("X", 6)
        elif self.n == 8:
            self.oco = ctx.sell(
                "X",
                6,
                type="limit",
                order_class="oco",
                take_profit={"limit_price": 120.0},
                stop_loss={"stop_price": 97.5},
            )

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        self.log.append(("fill", fill.order_id, fill.qty, fill.price, fill.position_qty))

    def on_order_update(self, ctx: Context, order: Order) -> None:
        legs = tuple((leg.id, leg.status, leg.qty) for leg in order.legs)
        self.log.append(("order", order.id, order.status, order.qty, legs, order.reject_reason))


def results(broker: SimulatedBroker, make: type[Strategy] = Trader) -> tuple[Any, ...]:
    sync_strategy, async_strategy = make(), make()
    expected = SyncEngine(FEED, sync_strategy).run()
    engine = AsyncEngine(broker, async_strategy, run_id="cls")
    got = asyncio.run(asyncio.wait_for(engine.run(), 30))
    return expected, got, sync_strategy, async_strategy, engine


def views(result: BacktestResult) -> list[tuple[object, ...]]:
    return [
        (o.id, o.status, o.qty, o.filled_qty, o.order_class, o.parent_id) for o in result.orders
    ]


def test_the_engine_learns_its_legs_venue_ids_and_matches_the_backtest() -> None:
    broker = SimulatedBroker(FEED)
    expected, got, s_sync, s_async, engine = results(broker)
    assert views(got) == views(expected)
    assert s_async.log == s_sync.log
    statuses = [o.status for o in expected.orders]
    assert statuses == [
        OrderStatus.FILLED,  # the entry
        OrderStatus.FILLED,  # its take-profit at 110
        OrderStatus.CANCELED,  # its stop
        OrderStatus.FILLED,  # the hand-made buy
        OrderStatus.CANCELED,  # the oco's take-profit
        OrderStatus.FILLED,  # the oco's stop at 97.5
    ]
    venue = broker.exchange.book
    for order in engine.manager.book.orders.values():
        assert order.broker_order_id is not None  # every leg's venue id is known
        assert venue.get(order.broker_order_id).status is order.status
    assert engine.manager._unmatched == []


class LegsUnnamed(SimulatedBroker):
    """A venue whose stream does not show an order's legs: the engine learns the legs' ids only
    from the answer to its request, after the events of an oco's stop have arrived."""

    async def connect(self, on_event: EventHandler) -> None:
        def strip(event: BrokerEvent) -> None:
            event.order.legs = ()
            self.seen.append(event)
            on_event(event)

        self.seen: list[BrokerEvent] = []
        await super().connect(strip)


def test_a_legs_event_that_comes_before_its_id_is_known_waits_for_it() -> None:
    broker = LegsUnnamed(FEED)
    expected, got, s_sync, s_async, engine = results(broker)
    assert views(got) == views(expected)
    assert s_async.log == s_sync.log
    oco_stop = engine.manager.book.get("O000006")
    assert oco_stop.parent_id == "O000005" and oco_stop.status is OrderStatus.FILLED
    # its "new" event reached the engine before the oco's answer did, and was applied later
    first = next(e for e in broker.seen if e.order.id == oco_stop.broker_order_id)
    assert first.kind == "new"
    assert engine.manager._unmatched == []


class Refusing(SimulatedBroker):
    """A venue that refuses every order class with an error answer (as Alpaca's 403/422):
    no event tells the engine about the legs."""

    async def submit_order(self, order: Order) -> Order:
        if order.order_class is not OrderClass.SIMPLE:
            raise OrderRejectedError(order.client_order_id, "insufficient buying power")
        return await super().submit_order(order)


class OneBracket(Trader):
    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.n += 1
        if self.n == 1:
            self.bracket = ctx.buy(
                "X",
                10,
                order_class="bracket",
                take_profit={"limit_price": 110.0},
                stop_loss={"stop_price": 95.0},
            )


def test_a_refused_order_takes_its_legs_with_it() -> None:
    engine = AsyncEngine(Refusing(FEED), OneBracket(), run_id="cls")
    asyncio.run(asyncio.wait_for(engine.run(), 30))
    strategy = engine.strategy
    assert isinstance(strategy, OneBracket) and strategy.bracket is not None
    entry = strategy.bracket
    assert [o.status for o in (entry, *entry.legs)] == [OrderStatus.REJECTED] * 3
    assert {o.reject_reason for o in (entry, *entry.legs)} == {"insufficient buying power"}
    updates = [(e[1], e[2]) for e in strategy.log if e[0] == "order"]
    assert updates == [
        ("O000001", OrderStatus.REJECTED),
        ("O000002", OrderStatus.REJECTED),
        ("O000003", OrderStatus.REJECTED),
    ]
    assert engine.manager.book.open_orders() == []


class ReplaceNothing(Strategy):
    def on_start(self, ctx: Context) -> None:
        self.n = 0
        self.errors: list[InvalidOrderError] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.n += 1
        if self.n == 1:
            self.order = ctx.buy("X", 5, type="limit", limit_price=50.0)
        elif self.n == 3:
            for changes in ({}, {"limit_price": 50.0}, {"qty": 5, "tif": "gtc"}):
                try:
                    ctx.replace(self.order, **changes)
                except InvalidOrderError as exc:
                    self.errors.append(exc)
            self.moved = ctx.replace(self.order, limit_price=51.0)  # a change goes through


@pytest.mark.parametrize("engine_kind", ["sync", "async"])
def test_a_replace_that_changes_nothing_is_refused_in_both_engines(engine_kind: str) -> None:
    strategy = ReplaceNothing()
    if engine_kind == "sync":
        result = SyncEngine(FEED, strategy).run()
    else:
        broker = SimulatedBroker(FEED)
        result = asyncio.run(asyncio.wait_for(AsyncEngine(broker, strategy).run(), 30))
        assert len(broker.exchange.book.orders) == 2  # the refused ones never left the engine
    assert [(e.field, e.value) for e in strategy.errors] == [
        ("changes", {}),
        ("changes", {"limit_price": 50.0}),
        ("changes", {"qty": 5, "tif": "gtc"}),
    ]
    assert all("nothing would change" in e.reason for e in strategy.errors)
    assert [(o.id, o.status) for o in result.orders] == [
        ("O000001", OrderStatus.REPLACED),  # ids were not used up by the refused requests
        ("O000002", OrderStatus.ACCEPTED),
    ]
    assert strategy.moved.limit_price == 51.0


def test_a_journaled_run_keeps_the_legs_and_reconciles_them(tmp_path: Any) -> None:
    from tradeloop.persistence.journal import OrderJournal

    journal = OrderJournal(tmp_path / "journal.sqlite")
    broker = SimulatedBroker(FEED)
    strategy = Trader()
    engine = AsyncEngine(broker, strategy, journal=journal)
    got = asyncio.run(asyncio.wait_for(engine.run(), 30))
    expected = SyncEngine(FEED, Trader()).run()
    assert views(got) == views(expected)
    assert engine.warnings == [] and engine.reconciliations >= 2  # at the start, at the end
    with OrderJournal(tmp_path / "journal.sqlite", readonly=True) as back:
        kept = {o.client_order_id: o for o in back.orders()}
        assert len(kept) == len(got.orders)
        for order in got.orders:  # every leg journaled, with its venue id, status and fills
            row = kept[order.client_order_id]
            assert (row.broker_order_id, row.status, row.filled_qty) == (
                order.broker_order_id,
                order.status,
                order.filled_qty,
            )
