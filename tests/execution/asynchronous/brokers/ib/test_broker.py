"""IBBroker against the loopback TWS: handshake, place/cancel/fill with commission, 103, 201,
disconnect + reconnect + reconcile, 1100/1102; every test fails on an ib_async decoder error."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from tradeloop.data.sample import load_sample
from tradeloop.errors import OrderRejectedError
from tradeloop.execution.asynchronous.brokers.ib.broker import IBBroker, IBSettings
from tradeloop.execution.core.backoff import Backoff
from tradeloop.execution.types import BrokerEvent, Order, OrderSide, OrderType
from tradeloop.testing.ib.faults import parse_faults
from tradeloop.testing.ib.server import IBServer

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 25.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture(scope="module")
def feed() -> Any:
    return load_sample("minute", end="2024-03-01")


def make(server: IBServer, client_id: int = 9) -> IBBroker:
    settings = IBSettings(port=server.port, client_id=client_id, order_timeout=1.0)
    return IBBroker(settings, symbols=["ACME"], backoff=Backoff(base=0.05, cap=0.2))


def order(cid: str, qty: float = 10, type: OrderType = OrderType.MARKET, **kw: Any) -> Order:
    return Order(cid, "ACME", OrderSide.BUY, qty, type, client_order_id=cid, **kw)


async def until(cond: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_place_fill_with_commission_cancel_and_resend(feed: Any) -> None:
    async def main() -> None:
        async with IBServer(feed, speed=0) as server:
            broker = make(server)
            events: list[BrokerEvent] = []
            await broker.connect(events.append)
            assert broker.connection_state == "connected" and broker.name == "ib"
            snap = await broker.submit_order(order("run-1"))
            assert snap.client_order_id == "run-1" and snap.status.value == "accepted"
            again = await broker.submit_order(order("run-1"))  # a resend adopts, never doubles
            assert again.id == snap.id and len(server.venue.records) == 1
            await server.step(4)
            await until(lambda: any(e.kind == "fill" for e in events))
            fill = next(e for e in events if e.kind == "fill")
            assert fill.fill is not None and fill.fill.commission == 1.0
            assert fill.order.status.value == "filled" and fill.fill.order_id == snap.id
            lmt = await broker.submit_order(order("run-2", 5, OrderType.LIMIT, limit_price=1.0))
            await broker.cancel_order(lmt)
            await until(lambda: any(e.kind == "canceled" for e in events))
            account = await broker.get_account()
            assert account.cash == pytest.approx(100_000 - 10 * fill.fill.price - 1.0)
            assert [(p.symbol, p.qty) for p in await broker.get_positions()] == [("ACME", 10.0)]
            (vf,) = await broker.get_fills()
            assert vf.commission == 1.0 and vf.broker_order_id == snap.id
            assert {o.client_order_id for o in await broker.get_orders()} == {"run-1", "run-2"}
            await broker.close()
            assert broker.connection_state == "closed"

    run(main())


def test_reject_201_and_duplicate_id_103(feed: Any) -> None:
    async def main() -> None:
        plan = parse_faults("reject=next:1")
        async with IBServer(feed, speed=0, faults=plan) as server:
            broker = make(server)
            await broker.connect(lambda e: None)
            with pytest.raises(OrderRejectedError) as info:
                await broker.submit_order(order("run-r"))
            assert info.value.reason == "loopback fault" and info.value.code == 201
            assert info.value.client_order_id == "run-r"
            # the id the broker will use next was used before (another session): 103, new id
            nxt = broker.ib.client._reqIdSeq
            server.venue._used.setdefault(9, set()).update({nxt})
            snap = await broker.submit_order(order("run-d"))
            assert snap.client_order_id == "run-d"
            assert [e[1] for e in broker.errors if e[1] == 103] == [103]
            assert [r["client_order_id"] for r in server.venue.state()["orders"]] == ["run-d"]
            await broker.close()

    run(main())


def test_disconnect_reconnect_reconcile(feed: Any) -> None:
    async def main() -> None:
        plan = parse_faults("drop_connection=next:1")
        async with IBServer(feed, speed=0, faults=plan) as server:
            broker = make(server)
            events: list[BrokerEvent] = []
            reconciled: list[int] = []

            async def on_reconnect() -> None:
                reconciled.append(len(await broker.get_fills()))

            broker.on_reconnect = on_reconnect
            await broker.connect(events.append)
            snap = await broker.submit_order(order("run-x"))
            await server.step(4)  # the fill is lost with the socket
            await until(lambda: reconciled == [1])
            assert broker.reconnects == 1 and broker.connection_state == "connected"
            assert not any(e.kind == "fill" for e in events)
            (vf,) = await broker.get_fills()
            assert vf.broker_order_id == snap.id and vf.commission == 1.0
            (venue_order,) = [o for o in await broker.get_orders() if o.id == snap.id]
            assert venue_order.status.value == "filled" and venue_order.client_order_id == "run-x"
            # a resend after the reconnect finds the order at TWS by its orderRef
            assert (await broker.submit_order(order("run-x"))).id == snap.id
            assert len(server.venue.records) == 1
            # IB <-> TWS connectivity: 1100 holds orders, 1102 reconciles
            server.connectivity_lost()
            await until(lambda: broker.connection_state == "reconnecting")
            server.connectivity_restored()
            await until(lambda: broker.connection_state == "connected" and len(reconciled) == 2)
            await broker.close()

    run(main())


def test_bars_are_aggregated_and_resubscribed(feed: Any) -> None:
    async def main() -> None:
        async with IBServer(feed, speed=0, slots=12) as server:
            broker = make(server)
            await broker.connect(lambda e: None)
            stream = broker.bars(["ACME"])
            first = asyncio.ensure_future(anext(stream))
            await server.wait_for_client(["ACME"])
            (played,) = [b for b in await server.step(4) if b.symbol == "ACME"]
            bar = await asyncio.wait_for(first, 5)
            assert (bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume) == (
                played.ts,
                played.open,
                played.high,
                played.low,
                played.close,
                played.volume,
            )
            server.drop_connections()
            await until(lambda: broker.reconnects == 1)
            await server.wait_for_client(["ACME"])
            (played,) = [b for b in await server.step(4) if b.symbol == "ACME"]
            bar = await asyncio.wait_for(anext(stream), 5)
            assert bar.ts == played.ts
            await broker.close()
            await stream.aclose()

    run(main())
