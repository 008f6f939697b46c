"""SimulatedBroker and ReplayBarSource: the async broker protocol over the pure exchange."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.errors import (
    ConfigError,
    DuplicateOrderError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderStateError,
)
from tradeloop.execution.async_protocols import AsyncBarSource, AsyncBroker
from tradeloop.execution.asynchronous import ReplayBarSource, SimulatedBroker
from tradeloop.execution.core.costs import FixedCommission
from tradeloop.execution.types import (
    Bar,
    BrokerEvent,
    EventKind,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)

T = TypeVar("T")
MIN = 60_000_000_000
T0 = 1_700_000_000_000_000_000 // MIN * MIN


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 10))


def feed(n: int = 5, symbols: tuple[str, ...] = ("X",)) -> BarFeed:
    series = []
    for k, sym in enumerate(symbols):
        opens = [100.0 + k + i for i in range(n)]
        series.append(
            SymbolSeries(
                sym,
                [T0 + i * MIN for i in range(n)],
                opens,
                [o + 2 for o in opens],
                [o - 2 for o in opens],
                [o + 1 for o in opens],
                [1e6] * n,
            )
        )
    return BarFeed(series)


def request(
    side: str = "buy",
    qty: float = 10,
    type: str = "market",
    cid: str = "c1",
    **kw: Any,
) -> Order:
    return Order(
        "",
        "X",
        OrderSide(side),
        qty,
        OrderType(type),
        TimeInForce(kw.pop("tif", "gtc")),
        client_order_id=cid,
        **kw,
    )


class Collector:
    def __init__(self) -> None:
        self.events: list[BrokerEvent] = []

    def __call__(self, event: BrokerEvent) -> None:
        self.events.append(event)

    @property
    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def test_satisfies_the_protocols() -> None:
    broker = SimulatedBroker(feed())
    assert isinstance(broker, AsyncBroker)
    assert isinstance(ReplayBarSource(feed()), AsyncBarSource)
    assert broker.name == "simulated"
    assert broker.symbols == ("X",)
    assert broker.now == T0 - 1  # a replay's clock starts just before its first bar


def test_submit_answers_with_a_venue_snapshot_and_reports_new() -> None:
    async def go() -> tuple[Order, Collector, SimulatedBroker]:
        broker = SimulatedBroker(feed())
        events = Collector()
        await broker.connect(events)
        assert broker.connection_state == "connected"
        snap = await broker.submit_order(request(type="limit", limit_price=90.0))
        return snap, events, broker

    snap, events, broker = run(go())
    assert snap.status is OrderStatus.ACCEPTED
    assert snap.client_order_id == "c1" and snap.id
    assert events.kinds == [EventKind.NEW]
    assert events.events[0].order.id == snap.id
    # a snapshot is a copy: the venue's order does not change under the caller
    venue = broker.exchange.book.get(snap.id)
    assert venue is not snap and venue.status is snap.status


def test_bars_match_before_they_are_handed_on() -> None:
    async def go() -> tuple[list[tuple[str, int]], Collector]:
        broker = SimulatedBroker(feed(3), commission=FixedCommission(1.0))
        events = Collector()
        await broker.connect(events)
        await broker.submit_order(request())
        seen: list[tuple[str, int]] = []
        async for bar in broker.bars():
            seen.append((bar.symbol, len(events.events)))
        return seen, events

    seen, events = run(go())
    # the market order fills on the first bar, and its fill is reported before the bar
    assert seen == [("X", 2), ("X", 2), ("X", 2)]
    fill_event = events.events[1]
    assert fill_event.kind == EventKind.FILL
    assert fill_event.fill is not None
    assert fill_event.fill.price == 100.0 and fill_event.fill.qty == 10
    assert fill_event.fill.commission == 1.0
    assert fill_event.fill.execution_id
    assert fill_event.order.status is OrderStatus.FILLED
    assert fill_event.ts == T0


def test_partial_fills_are_reported_as_partial() -> None:
    async def go() -> Collector:
        broker = SimulatedBroker(feed(3), participation_rate=0.000004)  # 4 shares a bar
        events = Collector()
        await broker.connect(events)
        await broker.submit_order(request(qty=10))
        async for _ in broker.bars():
            pass
        return events

    events = run(go())
    assert events.kinds == [
        EventKind.NEW,
        EventKind.PARTIAL_FILL,
        EventKind.PARTIAL_FILL,
        EventKind.FILL,
    ]
    assert [e.fill.qty for e in events.events[1:] if e.fill] == [4, 4, 2]
    assert len({e.fill.execution_id for e in events.events[1:] if e.fill}) == 3


def test_account_positions_and_clock_follow_fills() -> None:
    async def go() -> tuple[Any, ...]:
        broker = SimulatedBroker(feed(2), initial_cash=50_000, leverage=2.0, allow_short=False)
        await broker.connect(Collector())
        before = await broker.get_account()
        await broker.submit_order(request(qty=10))
        async for _ in broker.bars():
            pass
        return (
            before,
            await broker.get_account(),
            await broker.get_positions(),
            (await broker.get_clock()),
        )

    before, after, positions, clock = run(go())
    assert (before.cash, before.equity, before.leverage, before.allow_short) == (
        50_000,
        50_000,
        2.0,
        False,
    )
    assert after.cash == 50_000 - 10 * 100.0
    assert [(p.symbol, p.qty, p.avg_price, p.last_price) for p in positions] == [
        ("X", 10, 100.0, 102.0)
    ]
    assert after.equity == after.cash + 10 * 102.0
    assert clock.ts == T0 + MIN and clock.is_open


def test_cancel_is_reported_on_the_stream() -> None:
    async def go() -> tuple[Collector, Order]:
        broker = SimulatedBroker(feed())
        events = Collector()
        await broker.connect(events)
        snap = await broker.submit_order(request(type="limit", limit_price=50.0))
        answer = await broker.cancel_order(snap)
        assert answer is None  # a cancel is a request; its result is an event
        with pytest.raises(OrderStateError, match="no longer be canceled"):
            await broker.cancel_order(snap)
        return events, await broker.get_order(snap.id)

    events, final = run(go())
    assert events.kinds == [EventKind.NEW, EventKind.CANCELED]
    assert final.status is OrderStatus.CANCELED


def test_replace_reports_the_new_order_then_the_old_one_replaced() -> None:
    async def go() -> tuple[Collector, Order, Order]:
        broker = SimulatedBroker(feed())
        events = Collector()
        await broker.connect(events)
        old = await broker.submit_order(request(type="limit", limit_price=50.0))
        new_req = request(type="limit", limit_price=60.0, cid="c2", qty=5)
        new = await broker.replace_order(old, new_req)
        return events, new, await broker.get_order(old.id)

    events, new, old = run(go())
    assert events.kinds == [EventKind.NEW, EventKind.NEW, EventKind.REPLACED]
    assert new.client_order_id == "c2" and new.limit_price == 60.0 and new.qty == 5
    assert new.replaces == old.id
    assert old.status is OrderStatus.REPLACED and old.replaced_by == new.id
    assert events.events[2].order.replaced_by == new.id


def test_lookups_by_id_and_client_id() -> None:
    async def go() -> None:
        broker = SimulatedBroker(feed())
        await broker.connect(Collector())
        snap = await broker.submit_order(request(type="limit", limit_price=50.0))
        assert (await broker.get_order(snap.id)).client_order_id == "c1"
        assert (await broker.get_order_by_client_id("c1")).id == snap.id
        assert [o.id for o in await broker.get_open_orders()] == [snap.id]
        with pytest.raises(OrderNotFoundError):
            await broker.get_order("nope")
        with pytest.raises(OrderNotFoundError):
            await broker.get_order_by_client_id("nope")
        ghost = request(cid="ghost")
        with pytest.raises(OrderNotFoundError):
            await broker.cancel_order(ghost)

    run(go())


def test_venue_refusals() -> None:
    async def go() -> tuple[Order, Collector]:
        broker = SimulatedBroker(feed(), initial_cash=1_000)
        events = Collector()
        await broker.connect(events)
        async for _ in broker.bars():  # a reference price for the buying-power check
            break
        with pytest.raises(OrderRejectedError) as info:
            await broker.submit_order(request(qty=1.5))  # whole shares only
        assert info.value.client_order_id == "c1" and "qty=1.5" in info.value.reason
        too_big = await broker.submit_order(request(qty=1000, cid="c2"))
        with pytest.raises(DuplicateOrderError) as dup:
            await broker.submit_order(request(qty=1, cid="c2"))
        assert dup.value.client_order_id == "c2"
        return too_big, events

    too_big, events = run(go())
    assert too_big.status is OrderStatus.REJECTED
    assert too_big.reject_reason is not None and "buying power" in too_big.reject_reason
    assert events.kinds == [EventKind.REJECTED]


def test_close_is_idempotent_and_closes_the_source() -> None:
    async def go() -> list[Bar]:
        source = ReplayBarSource(feed(5))
        broker = SimulatedBroker(source)
        await broker.connect(Collector())
        await broker.close()
        await broker.close()
        assert broker.connection_state == "closed"
        return [b async for b in source.bars()]

    assert run(go()) == []


# ---------------------------------------------------------------------------- ReplayBarSource


def test_replay_order_and_symbol_filter() -> None:
    source = ReplayBarSource(feed(3, ("A", "B")))

    async def collect(symbols: list[str] | None) -> list[tuple[str, int, float]]:
        return [(b.symbol, b.ts, b.open) async for b in source.bars(symbols)]

    everything = run(collect(None))
    assert [(s, t) for s, t, _ in everything] == [
        (s, T0 + i * MIN) for i in range(3) for s in ("A", "B")
    ]
    assert run(collect(["B"])) == [x for x in everything if x[0] == "B"]
    with pytest.raises(ConfigError) as info:
        run(collect(["Z"]))
    assert info.value.field == "symbols"


def test_replay_bars_are_fresh_objects() -> None:
    async def go() -> list[Bar]:
        return [b async for b in ReplayBarSource(feed(3)).bars()]

    bars = run(go())
    assert len({id(b) for b in bars}) == 3
    assert [b.close for b in bars] == [101.0, 102.0, 103.0]


def test_replay_pacing() -> None:
    source = ReplayBarSource(feed(4), speed=600.0)  # one minute of bars = 0.1 s

    async def go() -> float:
        t = time.perf_counter()
        async for _ in source.bars():
            pass
        return time.perf_counter() - t

    elapsed = run(go())
    assert 0.28 <= elapsed < 2.0  # three gaps of 0.1 s


def test_replay_pacing_is_capped_by_max_sleep() -> None:
    f = feed(2)
    f["X"].ts[1] = T0 + 86_400 * 10**9  # a day's gap
    source = ReplayBarSource(f, speed=1.0, max_sleep=0.05)

    async def go() -> float:
        t = time.perf_counter()
        async for _ in source.bars():
            pass
        return time.perf_counter() - t

    assert run(go()) < 1.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"speed": -1}, "speed"),
        ({"speed": "fast"}, "speed"),
        ({"max_sleep": -0.5}, "max_sleep"),
    ],
)
def test_replay_rejects_bad_settings(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        ReplayBarSource(feed(), **kwargs)
    assert info.value.field == field


def test_bad_sources_are_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        ReplayBarSource([1, 2, 3])  # type: ignore[arg-type]
    assert info.value.field == "feed"
    with pytest.raises(ConfigError) as info:
        SimulatedBroker(object())  # type: ignore[arg-type]
    assert info.value.field == "source"


def test_the_replays_end_expires_day_orders_and_only_its_end() -> None:
    async def go(stop_early: bool) -> tuple[Collector, SimulatedBroker]:
        broker = SimulatedBroker(feed(3))
        events = Collector()
        await broker.connect(events)
        await broker.submit_order(request(type="limit", limit_price=1.0, tif="day", cid="d"))
        await broker.submit_order(request(type="limit", limit_price=1.0, cid="g"))
        stream = broker.bars()
        async for _ in stream:
            if stop_early:
                break
        await stream.aclose()  # type: ignore[attr-defined]
        return events, broker

    events, broker = run(go(False))
    assert events.kinds == [EventKind.NEW, EventKind.NEW, EventKind.EXPIRED]
    expired = events.events[-1].order
    assert (expired.client_order_id, expired.updated_at) == ("d", T0 + 2 * MIN)
    assert broker.exchange.book.by_client_id("g").status is OrderStatus.ACCEPTED  # type: ignore[union-attr]
    events, _ = run(go(True))  # a stream closed early is not the end of the data
    assert events.kinds == [EventKind.NEW, EventKind.NEW]
