"""Conformance with a client nobody here wrote: the official alpaca-py, unchanged, against the
loopback server through its ``url_override``. REST calls are blocking (the server runs in its
own thread); alpaca-py's streams run their own event loop in ``run()``, here in threads that are
stopped and joined within a bounded time."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.live import StockDataStream
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import (
    AccountStatus,
    AssetExchange,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionSide,
    QueryOrderStatus,
)
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopOrderRequest,
    TrailingStopOrderRequest,
)
from alpaca.trading.stream import TradingStream

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.testing.alpaca import DEFAULT_KEY_ID, DEFAULT_SECRET
from tradeloop.testing.alpaca.server import AlpacaServerThread

KEY, SECRET = DEFAULT_KEY_ID, DEFAULT_SECRET
MIN = 60_000_000_000
T0 = 1_709_303_400_000_000_000  # 2024-03-01 14:30 UTC

pytestmark = pytest.mark.timeout(120)


def feed(n: int = 20) -> BarFeed:
    series = []
    for k, sym in enumerate(("ACME", "BOLT")):
        opens = [100.0 + 10 * k + 0.5 * i for i in range(n)]
        series.append(
            SymbolSeries(
                sym,
                [T0 + i * MIN for i in range(n)],
                opens,
                [o + 2 for o in opens],
                [o - 2 for o in opens],
                [o + 1 for o in opens],
                [1000.0] * n,
            )
        )
    return BarFeed(series)


@pytest.fixture
def server() -> Iterator[AlpacaServerThread]:
    with AlpacaServerThread(feed(), seed=11) as srv:
        yield srv
    assert srv.thread is not None and not srv.thread.is_alive()


@pytest.fixture
def client(server: AlpacaServerThread) -> Iterator[TradingClient]:
    trading = TradingClient(KEY, SECRET, paper=True, url_override=server.url)
    yield trading
    trading._session.close()


def api_error(call: Callable[[], Any]) -> APIError:
    with pytest.raises(APIError) as info:
        call()
    return info.value


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


@contextmanager
def running(stream: TradingStream | StockDataStream) -> Iterator[threading.Thread]:
    """Run an alpaca-py stream in a thread; always stop it and join it."""
    thread = threading.Thread(target=stream.run, name="alpaca-py-stream", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        deadline = time.monotonic() + 20
        while thread.is_alive() and time.monotonic() < deadline:
            if stream._loop is not None:
                with suppress(Exception):
                    stream.stop()
            thread.join(0.5)
        assert not thread.is_alive(), "the alpaca-py stream did not stop"


def test_orders_of_every_type_by_id_and_by_client_order_id(client: TradingClient) -> None:
    requests = [
        MarketOrderRequest(symbol="ACME", qty=1, side=OrderSide.BUY, time_in_force="day"),
        LimitOrderRequest(
            symbol="ACME", qty=2, side=OrderSide.BUY, time_in_force="gtc", limit_price=95.5
        ),
        StopOrderRequest(
            symbol="BOLT", qty=1, side=OrderSide.BUY, time_in_force="gtc", stop_price=120
        ),
        StopLimitOrderRequest(
            symbol="BOLT",
            qty=1,
            side=OrderSide.BUY,
            time_in_force="day",
            stop_price=120,
            limit_price=121.25,
        ),
        TrailingStopOrderRequest(
            symbol="ACME", qty=1, side=OrderSide.BUY, time_in_force="gtc", trail_percent=2.5
        ),
        TrailingStopOrderRequest(
            symbol="ACME", qty=1, side=OrderSide.BUY, time_in_force="day", trail_price=1.5
        ),
    ]
    placed = []
    for i, req in enumerate(requests):
        req.client_order_id = f"type-{i}"
        order = client.submit_order(req)
        assert (order.status, order.order_class, order.client_order_id) == (
            OrderStatus.NEW,
            OrderClass.SIMPLE,
            f"type-{i}",
        )
        assert order.type == req.type and order.symbol == req.symbol
        assert isinstance(order.id, uuid.UUID) and order.extended_hours is False
        assert client.get_order_by_id(order.id).model_dump() == order.model_dump()
        assert client.get_order_by_client_id(f"type-{i}").id == order.id
        placed.append(order)
    market, limit, stop, stop_limit, trail_pct, trail_px = placed
    assert float(limit.limit_price) == 95.5 and float(stop.stop_price) == 120
    assert (float(stop_limit.stop_price), float(stop_limit.limit_price)) == (120, 121.25)
    assert (trail_pct.trail_percent, trail_px.trail_price) == ("2.5", "1.5")
    assert market.type is OrderType.MARKET
    open_orders = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
    assert [o.id for o in open_orders] == [o.id for o in reversed(placed)]


def test_replace_and_cancel(client: TradingClient) -> None:
    old = client.submit_order(
        LimitOrderRequest(
            symbol="ACME", qty=1, side=OrderSide.BUY, time_in_force="gtc", limit_price=50
        )
    )
    new = client.replace_order_by_id(
        old.id, ReplaceOrderRequest(qty=2, limit_price=51.5, client_order_id="replacement")
    )
    assert new.id != old.id and new.replaces == old.id
    assert (new.qty, new.limit_price, new.client_order_id) == ("2", "51.5", "replacement")
    stale = client.get_order_by_id(old.id)
    assert (stale.status, stale.replaced_by) == (OrderStatus.REPLACED, new.id)
    assert client.cancel_order_by_id(new.id) is None
    assert client.get_order_by_id(new.id).status is OrderStatus.CANCELED
    err = api_error(lambda: client.cancel_order_by_id(new.id))
    assert (err.status_code, err.code) == (422, 42210000)
    err = api_error(lambda: client.replace_order_by_id(new.id, ReplaceOrderRequest(qty=3)))
    assert (err.status_code, err.code) == (422, 42210000)
    resting = client.submit_order(
        LimitOrderRequest(
            symbol="BOLT", qty=1, side=OrderSide.BUY, time_in_force="gtc", limit_price=1
        )
    )
    [canceled] = client.cancel_orders()
    assert (canceled.id, canceled.status) == (resting.id, 200)


def test_account_clock_and_positions_after_a_fill(
    server: AlpacaServerThread, client: TradingClient
) -> None:
    account = client.get_account()
    assert (account.status, account.cash, account.buying_power) == (
        AccountStatus.ACTIVE,
        "100000",
        "100000",
    )
    clock = client.get_clock()
    assert clock.is_open and clock.timestamp == datetime(2024, 3, 1, 14, 29, 59, tzinfo=UTC)
    assert client.get_all_positions() == []
    order = client.submit_order(
        MarketOrderRequest(symbol="ACME", qty=3, side=OrderSide.BUY, time_in_force="day")
    )
    server.step(2)
    assert client.get_order_by_id(order.id).status is OrderStatus.FILLED
    assert client.get_clock().timestamp == datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
    [position] = client.get_all_positions()
    assert (position.symbol, position.qty, position.side) == ("ACME", "3", PositionSide.LONG)
    assert (position.avg_entry_price, position.exchange) == ("100", AssetExchange.NASDAQ)
    assert client.get_open_position("ACME").asset_id == position.asset_id
    assert client.get_asset("ACME").id == position.asset_id
    assert client.get_account().cash == "99700"
    closing = client.close_position("ACME", ClosePositionRequest(qty="1"))
    assert (closing.side, closing.qty, closing.type) == (OrderSide.SELL, "1", OrderType.MARKET)
    [rest] = client.close_all_positions(cancel_orders=True)
    assert (rest.symbol, rest.status, rest.body.qty) == ("ACME", 200, "3")
    server.step(2)
    assert client.get_all_positions() == []
    closed = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED, symbols=["ACME"]))
    assert [o.status for o in closed] == [
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.FILLED,
    ]


def test_alpaca_error_codes_reach_the_client(client: TradingClient) -> None:
    def buy(qty: float, **kwargs: Any) -> Any:
        req = MarketOrderRequest(symbol="ACME", qty=qty, side=OrderSide.BUY, **kwargs)
        return client.submit_order(req)

    buy(1, time_in_force="day", client_order_id="once")
    err = api_error(lambda: buy(1, time_in_force="day", client_order_id="once"))
    assert (err.status_code, err.code, err.message) == (
        422,
        40010001,
        "client_order_id must be unique",
    )
    err = api_error(lambda: buy(100_000, time_in_force="day"))
    assert (err.status_code, err.code) == (403, 40310000)
    assert "insufficient buying power" in err.message
    err = api_error(lambda: client.get_order_by_id(uuid.uuid4()))
    assert (err.status_code, err.code) == (404, 40410000)
    err = api_error(lambda: client.get_order_by_client_id("never-used"))
    assert (err.status_code, err.code) == (404, 40410000)
    err = api_error(lambda: buy(0.5, time_in_force="gtc"))
    assert (err.status_code, err.code) == (422, 40010001)
    sub_penny = LimitOrderRequest(
        symbol="ACME", qty=1, side=OrderSide.BUY, time_in_force="day", limit_price=100.001
    )
    err = api_error(lambda: client.submit_order(sub_penny))
    assert (err.status_code, err.code) == (422, 42210000)


def test_trade_stream_receives_new_and_fill(
    server: AlpacaServerThread, client: TradingClient
) -> None:
    stream = TradingStream(KEY, SECRET, paper=True, url_override=server.stream_url)
    updates: list[Any] = []

    async def on_update(update: Any) -> None:
        updates.append(update)
        if update.event == "fill":
            await stream.stop_ws()

    stream.subscribe_trade_updates(on_update)
    with running(stream) as thread:
        wait_until(lambda: {"streams": ["trade_updates"]}.items() <= _trade_conn(server).items())
        order = client.submit_order(
            MarketOrderRequest(symbol="BOLT", qty=2, side=OrderSide.BUY, time_in_force="day")
        )
        server.step(2)
        thread.join(15)
    assert [u.event for u in updates] == ["new", "fill"]
    new, fill = updates
    assert new.order.id == order.id and new.execution_id is None
    assert (fill.order.status, fill.price, fill.qty, fill.position_qty) == (
        OrderStatus.FILLED,
        110.0,
        2.0,
        2.0,
    )
    assert isinstance(fill.execution_id, uuid.UUID)
    assert fill.timestamp == datetime(2024, 3, 1, 14, 30, tzinfo=UTC)


def _trade_conn(server: AlpacaServerThread) -> dict[str, Any]:
    for conn in server.state()["streams"]:
        if conn["endpoint"] == "/stream":
            return dict(conn)
    return {}


def test_stock_data_stream_receives_bars_in_msgpack(server: AlpacaServerThread) -> None:
    stream = StockDataStream(KEY, SECRET, url_override=server.data_url("iex"))
    bars: list[Any] = []

    async def on_bar(bar: Any) -> None:
        bars.append(bar)
        if len(bars) == 3:
            await stream.stop_ws()

    stream.subscribe_bars(on_bar, "ACME")

    def subscribed() -> bool:
        conns = server.state()["streams"]
        return any(c.get("bars") == ["ACME"] and c["encoding"] == "msgpack" for c in conns)

    with running(stream) as thread:
        wait_until(subscribed)
        server.step(8)
        thread.join(15)
    assert [(b.symbol, b.open, b.timestamp) for b in bars] == [
        ("ACME", 100.0 + 0.5 * i, datetime(2024, 3, 1, 14, 30 + i, tzinfo=UTC)) for i in range(3)
    ]
    assert (bars[0].high, bars[0].low, bars[0].close, bars[0].volume) == (102.0, 98.0, 101.0, 1000)
    assert bars[0].trade_count is None and bars[0].vwap is None


def test_bracket_and_oco_orders_with_their_legs(
    server: AlpacaServerThread, client: TradingClient
) -> None:
    from alpaca.trading.requests import StopLossRequest, TakeProfitRequest

    entry = client.submit_order(
        MarketOrderRequest(
            symbol="ACME",
            qty=4,
            side=OrderSide.BUY,
            time_in_force="gtc",
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=104),
            stop_loss=StopLossRequest(stop_price=95, limit_price=94.5),
        )
    )
    assert entry.order_class is OrderClass.BRACKET and entry.legs is not None
    tp, sl = entry.legs
    assert (tp.type, tp.limit_price, tp.status) == (OrderType.LIMIT, "104", OrderStatus.HELD)
    assert (sl.type, sl.stop_price, sl.status) == (OrderType.STOP_LIMIT, "95", OrderStatus.HELD)
    server.step(2)  # the entry fills at 100, its legs become active
    legs = client.get_order_by_id(entry.id).legs
    assert legs is not None and [leg.status for leg in legs] == [OrderStatus.NEW] * 2
    nested = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, nested=True))
    assert [o.id for o in nested] == [entry.id]
    server.step(8)  # ACME rises past 104: the take-profit fills, the stop is canceled
    assert client.get_order_by_id(tp.id).status is OrderStatus.FILLED
    assert client.get_order_by_id(sl.id).status is OrderStatus.CANCELED
    assert client.get_all_positions() == []

    client.submit_order(
        MarketOrderRequest(symbol="BOLT", qty=3, side=OrderSide.BUY, time_in_force="day")
    )
    server.step(2)
    oco = client.submit_order(
        LimitOrderRequest(
            symbol="BOLT",
            qty=3,
            side=OrderSide.SELL,
            time_in_force="gtc",
            order_class=OrderClass.OCO,
            take_profit=TakeProfitRequest(limit_price=150),
            stop_loss=StopLossRequest(stop_price=100),
        )
    )
    assert (oco.order_class, oco.limit_price, oco.status) == (
        OrderClass.OCO,
        "150",
        OrderStatus.NEW,
    )
    assert oco.legs is not None and oco.legs[0].status is OrderStatus.NEW
    err = api_error(
        lambda: client.replace_order_by_id(oco.id, ReplaceOrderRequest(limit_price=151))
    )
    assert (err.status_code, err.code) == (422, 40010001)
    client.cancel_order_by_id(oco.legs[0].id)  # one cancels the other
    assert client.get_order_by_id(oco.id).status is OrderStatus.CANCELED
