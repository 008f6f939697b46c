"""BinanceBroker (ccxt 4.5.90 inside) against the loopback Binance server: submit, cancel, fill,
stream, reconnect, resend with the same id, reconcile, and the error mapping."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.errors import (
    BrokerConnectionError,
    DuplicateOrderError,
    OrderNotFoundError,
    OrderRejectedError,
)
from tradeloop.execution.asynchronous import AsyncEngine
from tradeloop.execution.asynchronous.brokers.binance.broker import BinanceBroker
from tradeloop.execution.asynchronous.brokers.binance.config import BinanceConfig
from tradeloop.execution.asynchronous.components.rate_limiter import RateLimiter
from tradeloop.execution.types import BrokerEvent, Order, OrderSide, OrderStatus, OrderType
from tradeloop.strategies import SmaCross
from tradeloop.testing.alpaca.faults import FaultPlan
from tradeloop.testing.binance import DEFAULT_API_KEY, DEFAULT_SECRET, BinanceServer

pytestmark = pytest.mark.timeout(60)
T = TypeVar("T")
MIN = 60_000_000_000
T0 = 1_709_303_400_000_000_000


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def feed(n: int = 60, symbols: tuple[str, ...] = ("AAA", "BBB")) -> BarFeed:
    series = []
    for k, sym in enumerate(symbols):
        closes = [round(50.0 + k + 3 * math.sin(i / 4), 2) for i in range(n)]
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


PAIRS = ("AAAUSDT", "BBBUSDT")


def make_broker(url: str, **kw: Any) -> BinanceBroker:
    config = BinanceConfig(base_url=url, api_key=DEFAULT_API_KEY, secret=DEFAULT_SECRET, timeout=5)
    limiter = RateLimiter(6000, 60.0, jitter_429=0.0, rng=random.Random(1))
    return BinanceBroker(config, symbols=PAIRS, limiter=limiter, **kw)


@asynccontextmanager
async def venue(**kw: Any) -> AsyncIterator[tuple[BinanceServer, BinanceBroker, list[BrokerEvent]]]:
    server = BinanceServer(feed(), linger=None, max_seconds=50, **kw)
    await server.start()
    broker = make_broker(server.url)
    events: list[BrokerEvent] = []
    try:
        await broker.connect(events.append)
        yield server, broker, events
    finally:
        await broker.close()
        await server.stop()


def order(coid: str, qty: float = 1.0, limit: float | None = None, side: str = "buy") -> Order:
    return Order(
        coid,
        "AAAUSDT",
        OrderSide(side),
        qty,
        OrderType.LIMIT if limit is not None else OrderType.MARKET,
        limit_price=limit,
        client_order_id=coid,
    )


async def until(cond: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.01)


def test_startup_submit_cancel_fill_and_reads() -> None:
    async def go() -> None:
        async with venue() as (server, broker, events):
            assert server.requests == [("GET", "exchangeInfo")]  # startup: one request
            assert broker.validator.filters["AAAUSDT"].tick_size == 0.01
            await server.step(2)
            resting = await broker.submit_order(order("t-1", 1.0, limit=10.0))
            assert resting.id == "AAAUSDT:1" and resting.status is OrderStatus.ACCEPTED
            await until(lambda: [e.kind for e in events] == ["new"])
            await broker.cancel_order(resting)
            await until(lambda: events[-1].kind == "canceled")
            assert events[-1].order.client_order_id == "t-1"
            snap = await broker.submit_order(order("t-2", 2.0))
            await server.step(2)
            await until(lambda: any(e.kind == "fill" for e in events))
            fill = next(e.fill for e in events if e.fill is not None)
            assert fill is not None and fill.execution_id == "AAAUSDT:1" and fill.qty == 2.0
            assert fill.commission == pytest.approx(fill.price * 2 * 0.001)
            assert (await broker.get_order(snap.id)).status is OrderStatus.FILLED
            by_id = await broker.get_order_by_client_id("t-2")
            assert by_id.id == snap.id
            (vf,) = await broker.get_fills()
            assert (vf.execution_id, vf.broker_order_id, vf.qty) == ("AAAUSDT:1", snap.id, 2.0)
            assert await broker.get_fills(since=vf.ts + 1_000_000) == []  # ms resolution
            orders = {o.client_order_id: o.status for o in await broker.get_orders(since=0)}
            assert orders == {"t-1": OrderStatus.CANCELED, "t-2": OrderStatus.FILLED}
            assert await broker.get_open_orders() == []
            (pos,) = await broker.get_positions()
            assert (pos.symbol, pos.qty) == ("AAAUSDT", 2.0)
            account = await broker.get_account()
            assert account.cash == pytest.approx(100_000 - 2 * fill.price * 1.001)
            with pytest.raises(OrderNotFoundError):
                await broker.get_order_by_client_id("nope")
            with pytest.raises(OrderNotFoundError):
                await broker.get_order("AAAUSDT:999")

    run(go())


def test_bars_from_klines() -> None:
    async def go() -> list[tuple[str, float]]:
        async with venue() as (server, broker, _):
            got: list[tuple[str, float]] = []

            async def read() -> None:
                async for bar in broker.bars():
                    got.append((bar.symbol, bar.close))
                    if len(got) == 4:
                        return

            task = asyncio.create_task(read())
            await server.wait_for_client(PAIRS)
            await server.step(4)
            await asyncio.wait_for(task, 5)
            assert broker.prices["AAAUSDT"] == got[2][1]
            return got

    got = run(go())
    assert [s for s, _ in got] == ["AAAUSDT", "BBBUSDT", "AAAUSDT", "BBBUSDT"]


def test_errors_map_to_tradeloop() -> None:
    async def go() -> None:
        async with venue() as (server, broker, _):
            await server.step(2)
            with pytest.raises(OrderRejectedError) as info:
                await broker.submit_order(order("big", 5000.0, limit=50.0))
            assert info.value.code == -2010 and "insufficient balance" in info.value.reason
            with pytest.raises(OrderRejectedError) as info:
                await broker.submit_order(order("short", 1.0, side="sell"))  # spot: no shorting
            assert info.value.code == -2010
            await broker.submit_order(order("dup", 1.0, limit=10.0))
            other = make_broker(server.url)  # a second process: it never sent "dup"
            try:
                with pytest.raises(DuplicateOrderError):
                    await other.submit_order(order("dup", 1.0, limit=10.0))
            finally:
                await other.close()
            with pytest.raises(OrderRejectedError):
                await broker.replace_order(order("dup"), order("dup2"))

    run(go())


def test_resend_same_id_after_unknown_outcome_and_429_and_clock_skew() -> None:
    async def go() -> None:
        plan = FaultPlan(next={"error_after_accept": 1}, seed=1)
        async with venue(faults=plan) as (server, broker, _):
            await server.step(2)
            with pytest.raises(BrokerConnectionError, match="outcome unknown"):
                await broker.submit_order(order("r-1", 1.0, limit=10.0))  # placed, answered 500
            again = await broker.submit_order(order("r-1", 1.0, limit=10.0))  # the same id
            assert again.client_order_id == "r-1" and again.status is OrderStatus.ACCEPTED
            state = server.state()
            assert state["client_order_ids"].count("r-1") == 1 and state["orders"] == 1
            assert ("GET", "order") in server.requests  # looked up before resending
            # a 429 is waited out (Retry-After) and the call goes through
            plan.set("rate_limit", next=1)
            plan.rate_limit_burst = 1
            await broker.submit_order(order("r-2", 1.0, limit=10.0))
            assert broker.limiter.throttled == 1 and server.status_counts.get(429) == 1
            assert server.status_counts.get(418) is None  # Retry-After was respected
            # the server's clock runs 30 s ahead: -1021, ccxt resyncs, the order goes
            server.clock_skew = 30.0
            await broker.submit_order(order("r-3", 1.0, limit=10.0))
            assert ("GET", "time") in server.requests
            assert server.state()["orders"] == 3

    run(go(), timeout=30)


def test_reconnect_is_reported_and_engine_reconciles_a_lost_fill() -> None:
    """The user-data socket is dropped twice, each time just before a fill is sent: the fills
    are lost on the wire, the reconnect reconciles them over REST, exactly once."""

    async def go() -> tuple[Any, dict[str, Any], int, int]:
        plan = FaultPlan(next={"drop_stream": 2}, seed=3)
        server = BinanceServer(feed(), linger=None, max_seconds=50, speed=3000, faults=plan)
        await server.start()
        try:
            broker = make_broker(server.url)
            strategy = SmaCross(fast=3, slow=8, allocation=0.4)
            engine = AsyncEngine(broker, strategy, run_id="bn", symbols=PAIRS)
            result = await engine.run(max_bars=110)
            trades = [f"{t['symbol']}:{t['id']}" for t in server.venue.trades]
            state = {**server.state(), "trades": trades}
            return result, state, broker.streams[0].reconnects, engine.reconciliations
        finally:
            await server.stop()

    result, state, reconnects, reconciliations = run(go(), timeout=45)
    assert state["faults"]["counts"]["drop_stream"] == 2
    assert reconnects >= 1 and reconciliations >= 1
    ids = [f.execution_id for f in result.fills]
    assert len(ids) == len(set(ids)) > 0  # no duplicate
    assert set(ids) <= set(state["trades"])
    assert state["trades"][:2] == ids[:2]  # the two fills lost on the wire were reconciled
