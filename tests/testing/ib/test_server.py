"""The loopback TWS: raw frames, then ib_async as the conformance client."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock

from tradeloop.data.sample import load_sample
from tradeloop.testing.ib import wire
from tradeloop.testing.ib.faults import parse_faults
from tradeloop.testing.ib.server import IBServer

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture(scope="module")
def feed() -> Any:
    return load_sample("minute", end="2024-03-01")


class Raw:
    """A bare TWS API client on raw frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buf = wire.FrameBuffer(expect_hello=False)
        self.pending: list[list[str]] = []

    @classmethod
    async def open(cls, port: int, hello: str = "v157..178") -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(wire.HELLO + wire.encode([hello]))
        return cls(reader, writer)

    def send(self, *fields: wire.Field) -> None:
        self.writer.write(wire.encode(list(fields)))

    async def next(self, timeout: float = 3.0) -> list[str]:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError
            self.pending += self.buf.feed(data)
        return self.pending.pop(0)

    async def until(self, msg_id: str) -> list[str]:
        while True:
            f = await self.next()
            if f[0] == msg_id:
                return f

    def close(self) -> None:
        self.writer.close()


def test_raw_handshake_versions_and_client_id_in_use(feed: Any) -> None:
    async def main() -> None:
        async with IBServer(feed, speed=0) as server:
            a = await Raw.open(server.port)
            reply = await a.next()
            assert reply[0] == "178" and len(reply) == 2
            a.send(71, 2, 5, "")
            first, second = await a.next(), await a.next()
            assert {first[0], second[0]} == {"15", "9"}
            accounts = first if first[0] == "15" else second
            assert accounts[2] == "DU1234567"
            b = await Raw.open(server.port, "v100..157")
            assert (await b.next())[0] == "157"
            b.send(71, 2, 5, "")  # same client id: 326, then closed
            err = await b.until("4")
            assert err[3] == "326"
            with pytest.raises(EOFError):
                while True:
                    await b.next()
            # an order on raw frames: openOrder, orderStatus; a reused id is 103
            head = [3, 1, 0, "ACME", "STK", "", 0.0, "", "", "SMART", "", "USD", "", "", "", ""]
            a.send(*head, "BUY", 10, "LMT", 1.0, "", "DAY", "", "", "O", 0, "tl-r-1", 1, 0, 0)
            op = await a.until("5")
            assert op[1] == "1" and "tl-r-1" in op
            st = await a.until("3")
            assert st[2] == "Submitted"
            a.send(4, 1, 1, "")
            st = await a.until("3")
            assert st[2] == "Cancelled"
            a.send(*head, "BUY", 10, "LMT", 1.0, "", "DAY", "", "", "O", 0, "tl-r-2", 1, 0, 0)
            err = await a.until("4")
            while err[3] == "202":  # the cancel's "Order Canceled"
                err = await a.until("4")
            assert err[3] == "103"
            a.close()
            b.close()

    run(main())


def test_bad_client_is_dropped(feed: Any) -> None:
    async def main() -> None:
        async with IBServer(feed, speed=0) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET / HTTP/1.1\r\n\r\n")
            assert await asyncio.wait_for(reader.read(100), 3) == b""
            writer.close()

    run(main())


@pytest.mark.parametrize("version", [157, 178])
def test_ib_async_conformance(feed: Any, version: int) -> None:
    async def main() -> None:
        async with IBServer(feed, speed=0, versions=(version,)) as server:
            ib = IB()
            await ib.connectAsync("127.0.0.1", server.port, clientId=3, timeout=5)
            assert ib.client.serverVersion() == version
            assert ib.managedAccounts() == ["DU1234567"]
            contract = Stock("ACME", "SMART", "USD")
            bars = ib.reqRealTimeBars(contract, 5, "TRADES", False)
            await server.wait_for_client(["ACME"])
            mkt = MarketOrder("BUY", 10, orderRef="tl-c-1")
            trade = ib.placeOrder(contract, mkt)
            lmt = ib.placeOrder(contract, LimitOrder("BUY", 5, 1.0, orderRef="tl-c-2"))
            await asyncio.sleep(0.1)
            assert trade.orderStatus.status == "Submitted" and trade.order.permId
            await server.step(4)
            await asyncio.sleep(0.1)
            assert trade.orderStatus.status == "Filled" and trade.orderStatus.filled == 10
            (fill,) = trade.fills
            assert fill.execution.orderRef == "tl-c-1" and fill.commissionReport.commission == 1.0
            assert len(bars) == 1 and bars[0].time.second == 55  # one 5-second slot per bar
            ib.cancelOrder(lmt.order)
            await asyncio.sleep(0.1)
            assert lmt.orderStatus.status == "Cancelled"
            ib.disconnect()
            # a new session sees the orders and fills of the last one, with their orderRef
            ib2 = IB()
            await ib2.connectAsync("127.0.0.1", server.port, clientId=3, timeout=5)
            refs = {t.order.orderRef: t.orderStatus.status for t in ib2.trades()}
            assert refs == {"tl-c-1": "Filled", "tl-c-2": "Cancelled"}
            assert [f.commissionReport.commission for f in ib2.fills()] == [1.0]
            assert [p.position for p in ib2.positions()] == [10.0]
            # an id of the last session is a duplicate (103) for a new IB()
            again = ib2.placeOrder(contract, LimitOrder("BUY", 1, 1.0, orderId=trade.order.orderId))
            await asyncio.sleep(0.1)
            assert again.orderStatus.status == "Cancelled" and again.log[-1].errorCode == 103
            ib2.disconnect()

    run(main())


def test_faults_reject_drop_and_restart(feed: Any) -> None:
    async def main() -> None:
        plan = parse_faults("reject=next:1,drop_connection=next:1,restart_downtime=0.3,seed=1")
        async with IBServer(feed, speed=0, faults=plan) as server:
            ib = IB()
            await ib.connectAsync("127.0.0.1", server.port, clientId=4, timeout=5)
            contract = Stock("ACME", "SMART", "USD")
            refused = ib.placeOrder(contract, MarketOrder("BUY", 1, orderRef="tl-f-1"))
            await asyncio.sleep(0.1)
            assert refused.orderStatus.status == "Cancelled"
            assert refused.log[-1].errorCode == 201 and "loopback fault" in refused.log[-1].message
            ok = ib.placeOrder(contract, MarketOrder("BUY", 2, orderRef="tl-f-2"))
            await asyncio.sleep(0.1)
            await server.step(4)  # the execution is about to go out: the socket drops
            await asyncio.sleep(0.2)
            assert not ib.isConnected() and not ok.fills
            assert server.venue.state()["executions"] == 1
            assert plan.counts["reject"] == 1 and plan.counts["drop_connection"] == 1
            server.restart(0.3)
            with pytest.raises((ConnectionError, OSError, TimeoutError)):
                await IB().connectAsync("127.0.0.1", server.port, clientId=4, timeout=1)
            await asyncio.sleep(0.4)
            ib2 = IB()
            await ib2.connectAsync("127.0.0.1", server.port, clientId=4, timeout=5)
            assert [f.execution.orderRef for f in ib2.fills()] == ["tl-f-2"]
            ib2.disconnect()

    run(main(), 30)
