"""AlpacaBroker against the loopback Alpaca server: REST, both streams, errors, the engine.

Everything talks to 127.0.0.1 only; every server stops at the end of its test.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.errors import (
    DuplicateOrderError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderStateError,
)
from tradeloop.execution.asynchronous import AsyncEngine
from tradeloop.execution.asynchronous.brokers.alpaca.broker import AlpacaBroker
from tradeloop.execution.asynchronous.components import BrokerConfig, RateLimiter
from tradeloop.execution.asynchronous.components.connection import BrokerAuthError
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
from tradeloop.strategies import SmaCross
from tradeloop.testing.alpaca import DEFAULT_KEY_ID, DEFAULT_SECRET, AlpacaServer

T = TypeVar("T")
MIN = 60_000_000_000
T0 = 1_709_303_400_000_000_000  # 2024-03-01 14:30 UTC


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def feed(n: int = 40, symbols: tuple[str, ...] = ("AAA", "BBB")) -> BarFeed:
    series = []
    for k, sym in enumerate(symbols):
        closes = [50.0 + k + 3 * math.sin(i / 4) for i in range(n)]
        opens = [closes[0], *closes[:-1]]
        series.append(
            SymbolSeries(
                sym,
                [T0 + i * MIN for i in range(n)],
                opens,
                [max(o, c) + 0.5 for o, c in zip(opens, closes, strict=True)],
                [min(o, c) - 0.5 for o, c in zip(opens, closes, strict=True)],
                closes,
                [1e5] * n,
            )
        )
    return BarFeed(series)


def config(url: str, **kw: Any) -> BrokerConfig:
    return BrokerConfig(
        key_id=kw.pop("key_id", DEFAULT_KEY_ID),
        secret_key=kw.pop("secret_key", DEFAULT_SECRET),
        base_url=url,
        **kw,
    )


def request(
    symbol: str = "AAA",
    side: str = "buy",
    qty: float = 10,
    type: str = "market",
    cid: str = "c1",
    **kw: Any,
) -> Order:
    return Order(
        "",
        symbol,
        OrderSide(side),
        qty,
        OrderType(type),
        TimeInForce(kw.pop("tif", "gtc")),
        client_order_id=cid,
        **kw,
    )


@asynccontextmanager
async def venue(
    data: BarFeed | None = None, **kw: Any
) -> AsyncIterator[tuple[AlpacaServer, AlpacaBroker, list[BrokerEvent]]]:
    async with AlpacaServer(data if data is not None else feed(), port=0, **kw) as server:
        broker = AlpacaBroker(config(server.url), symbols=["AAA", "BBB"])
        events: list[BrokerEvent] = []
        await broker.connect(events.append)
        try:
            yield server, broker, events
        finally:
            await broker.close()


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def test_order_round_trip_and_its_events() -> None:
    async def go() -> None:
        async with venue() as (server, broker, events):
            await server.step(1)
            assert broker.connection_state == "connected"
            snap = await broker.submit_order(
                request(type="limit", limit_price=40.0, tif="day", cid="rt-1")
            )
            assert snap.status is OrderStatus.ACCEPTED and len(snap.id) == 36  # a UUID
            assert snap.client_order_id == "rt-1" and snap.limit_price == 40.0
            assert (await broker.get_order(snap.id)).client_order_id == "rt-1"
            assert (await broker.get_order_by_client_id("rt-1")).id == snap.id
            assert [o.id for o in await broker.get_open_orders()] == [snap.id]
            new_req = request(type="limit", limit_price=41.0, tif="day", cid="rt-2")
            new = await broker.replace_order(snap, new_req)
            assert new.id != snap.id and new.client_order_id == "rt-2"
            assert new.limit_price == 41.0 and new.replaces == snap.id
            await broker.cancel_order(new)
            await until(lambda: len(events) >= 4)
            kinds = [(e.kind, e.order.client_order_id) for e in events]
            assert kinds == [
                ("new", "rt-1"),
                ("new", "rt-2"),
                ("replaced", "rt-1"),
                ("canceled", "rt-2"),
            ]
            assert (await broker.get_order(snap.id)).status is OrderStatus.REPLACED
            assert await broker.get_open_orders() == []

    run(go())


def test_fills_arrive_with_execution_ids_and_update_account_and_positions() -> None:
    async def go() -> None:
        async with venue() as (server, broker, events):
            await server.step(2)  # one bar of each symbol
            before = await broker.get_account()
            assert await broker.get_positions() == []  # cached now
            await broker.submit_order(request(qty=10, cid="f-1"))
            played = await server.step(2)
            next_open = next(b.open for b in played.bars if b.symbol == "AAA")
            await until(lambda: any(e.kind == EventKind.FILL for e in events))
            fill = next(e for e in events if e.kind == EventKind.FILL).fill
            assert fill is not None
            assert fill.qty == 10 and fill.price == pytest.approx(next_open)
            assert len(fill.execution_id) == 36
            positions = await broker.get_positions()  # the fill invalidated the cache
            assert [(p.symbol, p.qty) for p in positions] == [("AAA", 10)]
            after = await broker.get_account()
            assert after.cash == pytest.approx(before.cash - 10 * next_open)
            clock = await broker.get_clock()
            assert clock.ts == played.clock

    run(go())


def test_venue_errors_become_tradeloop_errors() -> None:
    async def go() -> None:
        async with venue(initial_cash=1_000) as (server, broker, _):
            await server.step(2)
            await broker.submit_order(request(qty=1, cid="dup"))
            with pytest.raises(DuplicateOrderError) as dup:
                await broker.submit_order(request(qty=1, cid="dup"))
            assert dup.value.client_order_id == "dup"
            with pytest.raises(OrderRejectedError) as bp:
                await broker.submit_order(request(qty=1000, cid="big"))
            assert bp.value.code == 40310000 and "buying power" in bp.value.reason
            with pytest.raises(OrderRejectedError) as sub_penny:
                await broker.submit_order(
                    request(type="limit", limit_price=40.123, cid="penny")
                )  # bypasses the validator: the venue refuses
            assert sub_penny.value.code == 42210000
            with pytest.raises(OrderNotFoundError):
                await broker.get_order("0c6c7f3a-8f5a-4a39-9a52-5d7b0d8f0000")
            with pytest.raises(OrderNotFoundError):
                await broker.get_order_by_client_id("never-sent")
            await server.step(2)  # "dup" fills
            filled = await broker.get_order_by_client_id("dup")
            assert filled.status is OrderStatus.FILLED
            with pytest.raises(OrderStateError):
                await broker.cancel_order(filled)

    run(go())


def test_the_validator_catches_what_alpaca_would_refuse() -> None:
    async def go() -> None:
        async with venue() as (_, broker, _):
            v = broker.validator
            for bad, field in [
                (request(type="limit", limit_price=40.123), "limit_price"),
                (request(type="stop", stop_price=0.12345), "stop_price"),
                (request(qty=1.5, type="limit", limit_price=40.0), "qty"),
                (request(qty=1.5, tif="gtc"), "tif"),
                (request(type="trailing_stop", trail_price=1.0, tif="ioc"), "tif"),
                (request(symbol="ZZZ"), "symbol"),
            ]:
                with pytest.raises(InvalidOrderError) as info:
                    v.validate(bad)
                assert info.value.field == field
            v.validate(request(qty=1.5, tif="day"))  # fractional market day: fine
            v.validate(request(type="limit", limit_price=0.1234))  # four decimals below $1

    run(go())


def test_wrong_keys_fail_at_connect_and_never_show() -> None:
    async def go() -> None:
        async with AlpacaServer(feed(), port=0) as server:
            broker = AlpacaBroker(
                config(server.url, key_id="PKWRONGKEY0001", secret_key="s3cr3t-never-shown"),
                symbols=["AAA"],
            )
            with pytest.raises(BrokerAuthError) as info:
                await broker.connect(lambda e: None)
            text = f"{info.value!r} {info.value} {broker!r} {broker.config!r}"
            assert "s3cr3t-never-shown" not in text and "PKWRONGKEY0001" not in text
            await broker.close()

    run(go())


def test_bar_stream_delivers_bars_in_order() -> None:
    async def go() -> None:
        async with venue() as (server, broker, _):
            got: list[Bar] = []

            async def read() -> None:
                async for bar in broker.bars(["AAA", "BBB"]):
                    got.append(bar)
                    if len(got) == 6:
                        return

            reader = asyncio.create_task(read())
            await until(
                lambda: bool(server.state()["streams"]) and len(server.state()["streams"]) == 2
            )
            played = await server.step(6)
            await asyncio.wait_for(reader, 5)
            assert [(b.symbol, b.ts, b.close) for b in got] == [
                (b.symbol, b.ts, b.close) for b in played.bars
            ]

    run(go())


def test_streams_reconnect_after_the_venue_drops_them() -> None:
    async def go() -> None:
        async with venue() as (server, broker, events):
            reconnected: list[float] = []

            async def hook() -> None:
                reconnected.append(time.monotonic())

            broker.on_reconnect = hook
            stream = broker.streams[0]
            stream.backoff = type(stream.backoff)(base=0.01, cap=0.05)
            assert await server.drop_streams() == 1
            await until(lambda: bool(reconnected))
            assert stream.reconnects == 1 and broker.connection_state == "connected"
            await server.step(1)
            await broker.submit_order(request(cid="after-reconnect"))
            await until(lambda: any(e.order.client_order_id == "after-reconnect" for e in events))

    run(go())


def test_the_rate_limit_is_kept_without_a_429() -> None:
    async def go() -> None:
        async with AlpacaServer(feed(), port=0, rate_limit=5, rate_window=1.0) as server:
            # our own budget (200 a second) would allow all eight: only the venue's headers
            # (limit 5, remaining 0, reset) can make it wait
            limiter = RateLimiter(200, window=1.0)
            broker = AlpacaBroker(config(server.url), symbols=["AAA"], limiter=limiter)
            started = time.monotonic()
            for _ in range(8):
                broker.cache.invalidate("clock")
                await broker.get_clock()
            elapsed = time.monotonic() - started
            assert broker.limiter.throttled == 0  # the headers taught it to wait, not the 429
            assert elapsed >= 0.9  # the sixth request waited for the window to roll
            await broker.close()

    run(go())


class Recorder(SmaCross):
    def on_start(self, ctx: Any) -> None:
        super().on_start(ctx)
        self.fills = 0

    def on_fill(self, ctx: Any, fill: Any) -> None:
        self.fills += 1


def test_the_engine_trades_through_alpaca_and_agrees_with_the_venue(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The whole replay, bar for bar: orders sent on the last bar are answered before the run
    ends and can never fill, so at the end the engine and the venue must agree exactly."""
    data = feed(120)

    async def go() -> tuple[AsyncEngine, dict[str, Any], Recorder]:
        async with AlpacaServer(data, port=0, speed=12_000) as server:  # 5 ms a minute
            broker = AlpacaBroker(config(server.url), symbols=["AAA", "BBB"])
            # long only: Alpaca refuses an order that takes a position from long to short
            strategy = Recorder(fast=3, slow=8)
            engine = AsyncEngine(broker, strategy, run_id="e2e")
            await engine.run(max_bars=len(data))
            return engine, server.state(), strategy

    with caplog.at_level(logging.DEBUG):
        engine, state, strategy = run(go(), timeout=60)
    mgr = engine.manager
    assert engine.bars_processed == len(data)
    assert len(mgr.fills) > 4 and strategy.fills == len(mgr.fills)
    venue_orders = {o["client_order_id"]: o for o in state["orders"]}
    assert set(venue_orders) == {o.client_order_id for o in mgr.book.orders.values()}
    for order in mgr.book.orders.values():
        v = venue_orders[order.client_order_id]
        assert order.broker_order_id == v["id"]
        assert order.filled_qty == float(v["filled_qty"])
        assert {"new": "accepted"}.get(v["status"], v["status"]) == order.status.value
    venue_positions = {p["symbol"]: p["qty"] for p in state["positions"]}
    engine_positions = {s: p.qty for s, p in engine.portfolio.positions.items() if p.qty}
    assert engine_positions == venue_positions
    assert engine.portfolio.cash == pytest.approx(state["cash"])
    assert DEFAULT_SECRET not in caplog.text


def test_blocking_bars_over_alpaca_feed_the_sync_paper_engine() -> None:
    from tradeloop.execution import BlockingBars, SyncEngine
    from tradeloop.testing.alpaca import AlpacaServerThread

    with AlpacaServerThread(feed(60), port=0, speed=12_000) as server:
        broker = AlpacaBroker(config(server.url), symbols=["AAA", "BBB"])
        with BlockingBars(broker, ["AAA", "BBB"], timeout=10) as bars:
            result = SyncEngine(bars, SmaCross(fast=3, slow=8), symbols=["AAA", "BBB"]).run(
                max_bars=60
            )
    assert result.bars_processed == 60
    assert result.fills  # the paper engine filled with its own matching


class BracketTrader(SmaCross):
    """SMA entries as bracket orders; exits are the legs' business."""

    def on_start(self, ctx: Any) -> None:
        super().on_start(ctx)
        self.fills: list[Any] = []
        self.updates: list[Any] = []

    def on_bar(self, ctx: Any, bar: Bar) -> None:
        closes = ctx.history(bar.symbol, 2)
        if len(closes) < 2 or ctx.position(bar.symbol).qty or ctx.open_orders(bar.symbol):
            return
        if closes[-1] > closes[-2]:
            c = round(bar.close, 2)
            ctx.buy(
                bar.symbol,
                5,
                order_class="bracket",
                take_profit={"limit_price": round(c + 1.0, 2)},
                stop_loss={"stop_price": round(c - 1.0, 2)},
            )

    def on_fill(self, ctx: Any, fill: Any) -> None:
        self.fills.append(fill)

    def on_order_update(self, ctx: Any, order: Any) -> None:
        self.updates.append((order.id, order.status))


def test_bracket_orders_go_over_the_wire_and_the_engine_learns_their_legs() -> None:
    data = feed(80)

    async def go() -> tuple[AsyncEngine, dict[str, Any], BracketTrader, list[Any]]:
        async with AlpacaServer(data, port=0, speed=12_000) as server:
            requests: list[Any] = []
            broker = AlpacaBroker(config(server.url), symbols=["AAA", "BBB"])
            sent = broker.connection.request

            async def spy(method: str, url: str, **kw: Any) -> Any:
                if method == "POST":
                    requests.append(kw.get("json_body"))
                return await sent(method, url, **kw)

            broker.connection.request = spy  # type: ignore[method-assign]
            strategy = BracketTrader()
            engine = AsyncEngine(broker, strategy, run_id="brk")
            await engine.run(max_bars=len(data))
            return engine, server.state(), strategy, requests

    engine, state, strategy, requests = run(go(), timeout=60)
    assert requests and all(r["order_class"] == "bracket" for r in requests)
    assert all({"take_profit", "stop_loss"} <= r.keys() for r in requests)
    mgr = engine.manager
    venue = {o["id"]: o for o in state["orders"]}
    legs = [o for o in mgr.book.orders.values() if o.parent_id is not None]
    assert legs and len(venue) == len(mgr.book.orders)
    for order in mgr.book.orders.values():
        v = venue[order.broker_order_id]  # every order's venue id is known, legs' too
        assert order.filled_qty == float(v["filled_qty"]), order
        assert {"new": "accepted"}.get(v["status"], v["status"]) == order.status.value
        assert v["order_class"] == "bracket"
    assert any(leg.status is OrderStatus.FILLED for leg in legs)
    assert any(leg.status is OrderStatus.CANCELED for leg in legs)
    assert {f.order_id for f in strategy.fills} & {leg.id for leg in legs}
    assert all(f.position_qty is not None for f in strategy.fills)
    venue_positions = {p["symbol"]: p["qty"] for p in state["positions"]}
    engine_positions = {s: p.qty for s, p in engine.portfolio.positions.items() if p.qty}
    assert engine_positions == venue_positions
