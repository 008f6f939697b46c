"""Alpaca JSON <-> tradeloop types: pure, no I/O."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeloop.execution.asynchronous.brokers.alpaca.mapping import (
    MalformedMessageError,
    account_from_json,
    bar_from_json,
    clock_from_json,
    decimal,
    format_ts,
    number,
    order_from_json,
    order_request_json,
    order_to_json,
    parse_ts,
    position_from_json,
    replace_request_json,
    status_from_alpaca,
    trade_update_from_json,
)
from tradeloop.execution.types import (
    EventKind,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)

UUID1 = "61e69015-8549-4bfd-b9c3-01e75843f47d"
UUID2 = "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415"
ASSET = "b0b6dd9d-8b9b-48a9-ba46-b9d54906e416"
T = 1_709_303_400_000_000_000  # 2024-03-01T14:30:00Z


def alpaca_order(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": UUID1,
        "client_order_id": "run-O000001",
        "created_at": "2024-03-01T14:30:00.123456789Z",
        "updated_at": "2024-03-01T14:31:00Z",
        "submitted_at": "2024-03-01T14:30:00Z",
        "filled_at": None,
        "replaced_by": None,
        "replaces": None,
        "asset_id": ASSET,
        "symbol": "AAPL",
        "asset_class": "us_equity",
        "notional": None,
        "qty": "10",
        "filled_qty": "0",
        "filled_avg_price": None,
        "order_class": "simple",
        "order_type": "limit",
        "type": "limit",
        "side": "buy",
        "time_in_force": "day",
        "limit_price": "101.25",
        "stop_price": None,
        "status": "new",
        "extended_hours": False,
        "legs": None,
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
    }
    base.update(over)
    return base


# ------------------------------------------------------------------------------------ scalars


def test_timestamps_keep_nanoseconds_and_offsets() -> None:
    assert parse_ts("2024-03-01T14:30:00Z") == T
    assert parse_ts("2024-03-01T14:30:00.123456789Z") == T + 123_456_789
    assert parse_ts("2024-03-01T14:30:00.5Z") == T + 500_000_000
    assert parse_ts("2024-03-01T09:30:00-05:00") == T
    assert parse_ts("2024-03-01T15:30:00+0100") == T
    for bad in ("2024-03-01", "yesterday", "2024-13-01T00:00:00Z", ""):
        with pytest.raises(ValueError):
            parse_ts(bad)


@given(st.integers(0, 4_000_000_000 * 10**9))
def test_format_and_parse_round_trip(ns: int) -> None:
    text = format_ts(ns)
    assert text.endswith("Z")
    assert parse_ts(text) == ns
    # the whole seconds read the same with the standard library
    whole = dt.datetime.fromisoformat(text[:19]).replace(tzinfo=dt.UTC)
    assert int(whole.timestamp()) == ns // 10**9


def test_format_uses_only_the_digits_needed() -> None:
    assert format_ts(T) == "2024-03-01T14:30:00Z"
    assert format_ts(T + 1_000) == "2024-03-01T14:30:00.000001Z"
    assert format_ts(T + 1) == "2024-03-01T14:30:00.000000001Z"


def test_decimals() -> None:
    assert decimal(10.0) == "10"
    assert decimal(101.25) == "101.25"
    assert decimal(0.0001) == "0.0001"
    assert decimal(None) is None
    assert number("101.25") == 101.25 and number(7) == 7.0 and number(" 3 ") == 3.0
    for bad in (True, "abc", None, "nan", float("inf"), [1]):
        with pytest.raises(ValueError):
            number(bad)


# ------------------------------------------------------------------------------------ orders


def test_order_from_json() -> None:
    o = order_from_json(alpaca_order())
    assert (o.id, o.broker_order_id, o.client_order_id) == (UUID1, UUID1, "run-O000001")
    assert (o.symbol, o.side, o.qty, o.type, o.tif) == (
        "AAPL",
        OrderSide.BUY,
        10.0,
        OrderType.LIMIT,
        TimeInForce.DAY,
    )
    assert o.limit_price == 101.25 and o.stop_price is None
    assert o.status is OrderStatus.ACCEPTED and o.filled_qty == 0 and o.avg_fill_price is None
    assert o.created_at == T + 123_456_789 and o.updated_at == T + 60 * 10**9


def test_order_statuses() -> None:
    cases = {
        ("new", 0): OrderStatus.ACCEPTED,
        ("accepted", 0): OrderStatus.ACCEPTED,
        ("pending_new", 0): OrderStatus.ACCEPTED,
        ("partially_filled", 4): OrderStatus.PARTIALLY_FILLED,
        ("pending_cancel", 4): OrderStatus.PARTIALLY_FILLED,
        ("done_for_day", 0): OrderStatus.ACCEPTED,
        ("some_future_status", 0): OrderStatus.ACCEPTED,
        ("filled", 10): OrderStatus.FILLED,
        ("canceled", 0): OrderStatus.CANCELED,
        ("expired", 0): OrderStatus.EXPIRED,
        ("replaced", 0): OrderStatus.REPLACED,
        ("rejected", 0): OrderStatus.REJECTED,
        ("FILLED", 10): OrderStatus.FILLED,
    }
    for (status, filled), want in cases.items():
        assert status_from_alpaca(status, filled) is want, status


def test_filled_order_fields() -> None:
    o = order_from_json(
        alpaca_order(status="filled", filled_qty="10", filled_avg_price="101.2", replaces=UUID2)
    )
    assert o.status is OrderStatus.FILLED and o.filled_qty == 10 and o.avg_fill_price == 101.2
    assert o.replaces == UUID2


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"id": None}, "id"),
        ({"symbol": None}, "symbol"),
        ({"side": "sideways"}, "side"),
        ({"type": "hidden", "order_type": None}, "type"),
        ({"qty": None, "notional": "100"}, "qty"),
        ({"qty": "ten"}, "qty"),
        ({"time_in_force": "opg"}, "time_in_force"),
        ({"created_at": "soon"}, "created_at"),
        ({"status": None}, "status"),
        ({"order_class": "mleg"}, "order_class"),  # multi-leg options: not supported
        ({"client_order_id": None}, "client_order_id"),
    ],
)
def test_malformed_orders_name_the_field(over: dict[str, Any], field: str) -> None:
    with pytest.raises(MalformedMessageError) as info:
        order_from_json(alpaca_order(**over))
    assert info.value.field == field
    assert field in str(info.value)


def test_unused_fields_are_ignored() -> None:
    o = order_from_json(alpaca_order(something_new={"x": 1}, legs=[], extended_hours=None))
    assert o.symbol == "AAPL"


def test_order_to_json_round_trips_through_the_parser() -> None:
    o = Order(
        "O000007",
        "MSFT",
        OrderSide.SELL,
        5.0,
        OrderType.TRAILING_STOP,
        TimeInForce.GTC,
        trail_percent=1.5,
        client_order_id="c-7",
        created_at=T,
    )
    o.status = OrderStatus.PARTIALLY_FILLED
    o.filled_qty = 2.0
    o.avg_fill_price = 330.5
    o.stop_price = 325.0
    o.updated_at = T + 5
    d = order_to_json(o, id=UUID1, asset_id=ASSET, replaces=UUID2)
    assert d["qty"] == "5" and d["filled_qty"] == "2" and d["status"] == "partially_filled"
    assert d["order_class"] == "simple" and d["extended_hours"] is False
    assert d["trail_percent"] == "1.5" and d["trail_price"] is None
    back = order_from_json(d)
    assert (back.id, back.client_order_id, back.symbol, back.side, back.type, back.tif) == (
        UUID1,
        "c-7",
        "MSFT",
        OrderSide.SELL,
        OrderType.TRAILING_STOP,
        TimeInForce.GTC,
    )
    assert (back.qty, back.filled_qty, back.avg_fill_price, back.stop_price) == (5, 2, 330.5, 325)
    assert (back.status, back.created_at, back.updated_at) == (
        OrderStatus.PARTIALLY_FILLED,
        T,
        T + 5,
    )
    assert back.replaces == UUID2


def test_order_request_and_replace_bodies() -> None:
    o = Order(
        "O1",
        "AAPL",
        OrderSide.BUY,
        3.0,
        OrderType.STOP_LIMIT,
        TimeInForce.GTC,
        limit_price=10.5,
        stop_price=10.25,
        client_order_id="run-O1",
    )
    assert order_request_json(o) == {
        "symbol": "AAPL",
        "qty": "3",
        "side": "buy",
        "type": "stop_limit",
        "time_in_force": "gtc",
        "client_order_id": "run-O1",
        "limit_price": "10.5",
        "stop_price": "10.25",
    }
    new = Order(
        "O2",
        "AAPL",
        OrderSide.BUY,
        3.0,
        OrderType.STOP_LIMIT,
        TimeInForce.GTC,
        limit_price=10.75,
        stop_price=10.25,
        client_order_id="run-O2",
    )
    assert replace_request_json(o, new) == {
        "client_order_id": "run-O2",
        "qty": "3",
        "limit_price": "10.75",
    }
    trail_old = Order("O3", "AAPL", OrderSide.SELL, 1.0, OrderType.TRAILING_STOP, trail_price=2.0)
    trail_new = Order("O4", "AAPL", OrderSide.SELL, 1.0, OrderType.TRAILING_STOP, trail_price=2.5)
    trail_new.client_order_id = "run-O4"
    assert replace_request_json(trail_old, trail_new) == {
        "client_order_id": "run-O4",
        "qty": "1",
        "trail": "2.5",
    }


# ----------------------------------------------------------------------------- trade updates


def test_fill_event() -> None:
    ev = trade_update_from_json(
        {
            "event": "fill",
            "execution_id": UUID2,
            "order": alpaca_order(status="filled", filled_qty="10", filled_avg_price="101"),
            "timestamp": "2024-03-01T14:32:00Z",
            "price": "101",
            "qty": "10",
            "position_qty": "10",
        }
    )
    assert ev.kind == EventKind.FILL and ev.ts == T + 120 * 10**9
    assert ev.fill is not None
    assert (ev.fill.execution_id, ev.fill.qty, ev.fill.price, ev.fill.commission) == (
        UUID2,
        10,
        101,
        0.0,
    )
    assert ev.fill.order_id == UUID1 and ev.order.status is OrderStatus.FILLED


def test_unknown_events_are_kept_and_fills_need_their_fields() -> None:
    ev = trade_update_from_json({"event": "order_cancel_rejected", "order": alpaca_order()})
    assert ev.kind == "order_cancel_rejected" and ev.fill is None
    assert ev.ts == ev.order.updated_at  # no timestamp: the order's
    for missing in ("price", "qty", "execution_id"):
        data = {
            "event": "partial_fill",
            "order": alpaca_order(status="partially_filled", filled_qty="1"),
            "timestamp": "2024-03-01T14:32:00Z",
            "price": "1",
            "qty": "1",
            "execution_id": UUID2,
        }
        del data[missing]
        with pytest.raises(MalformedMessageError) as info:
            trade_update_from_json(data)
        assert info.value.field == missing
    with pytest.raises(MalformedMessageError):
        trade_update_from_json({"event": "new"})
    with pytest.raises(MalformedMessageError):
        trade_update_from_json("garbage")  # type: ignore[arg-type]


# --------------------------------------------------------------------- account, positions, clock


def test_account_positions_clock() -> None:
    acct = account_from_json(
        {
            "id": UUID1,
            "account_number": "PA1",
            "status": "ACTIVE",
            "currency": "USD",
            "cash": "1000.5",
            "equity": "1500",
            "buying_power": "3000",
            "multiplier": "2",
            "shorting_enabled": False,
        }
    )
    assert (acct.cash, acct.equity, acct.buying_power, acct.leverage, acct.allow_short) == (
        1000.5,
        1500,
        3000,
        2,
        False,
    )
    short = position_from_json(
        {"symbol": "AAPL", "qty": "-5", "side": "short", "avg_entry_price": "100"}
    )
    assert (short.qty, short.avg_price, short.last_price) == (-5, 100, 100)
    long = position_from_json(
        {
            "symbol": "MSFT",
            "qty": "3",
            "side": "long",
            "avg_entry_price": "9",
            "current_price": "11",
        }
    )
    assert (long.qty, long.last_price) == (3, 11)
    clock = clock_from_json(
        {
            "timestamp": "2024-03-01T14:30:00Z",
            "is_open": True,
            "next_open": "2024-03-04T14:30:00Z",
            "next_close": "2024-03-01T21:00:00Z",
        }
    )
    assert clock.ts == T and clock.is_open and clock.next_close == T + int(6.5 * 3600e9)
    with pytest.raises(MalformedMessageError) as info:
        account_from_json({"equity": "1"})
    assert info.value.field == "cash"


def test_bars_from_json_and_msgpack() -> None:
    msg = {
        "T": "b",
        "S": "AAPL",
        "o": 1.0,
        "h": 2.0,
        "l": 0.5,
        "c": 1.5,
        "v": 100,
        "t": "2024-03-01T14:30:00Z",
        "n": None,
        "vw": None,
    }
    bar = bar_from_json(msg)
    assert (bar.symbol, bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        "AAPL",
        T,
        1.0,
        2.0,
        0.5,
        1.5,
        100.0,
    )
    packed = msgpack.packb(dict(msg, t=msgpack.Timestamp.from_unix_nano(T)))
    assert bar_from_json(msgpack.unpackb(packed)).ts == T
    as_datetime = msgpack.unpackb(packed, timestamp=3)
    assert bar_from_json(as_datetime).ts == T
    with pytest.raises(MalformedMessageError) as info:
        bar_from_json(dict(msg, c="x"))
    assert info.value.field == "c"


# ----------------------------------------------------------------------------- order classes


def test_bracket_and_oco_request_bodies() -> None:
    from tradeloop.execution.core.book import OrderBook
    from tradeloop.execution.core.validation import OrderValidator

    book = OrderBook(OrderValidator(), client_id_prefix="run-")
    entry = book.new_order(
        "AAPL",
        "buy",
        10,
        "limit",
        limit_price=100.0,
        tif="day",
        order_class="bracket",
        take_profit={"limit_price": 110.5},
        stop_loss={"stop_price": 95.0, "limit_price": 94.5},
    )
    assert order_request_json(entry) == {
        "symbol": "AAPL",
        "qty": "10",
        "side": "buy",
        "type": "limit",
        "time_in_force": "day",
        "client_order_id": "run-O000001",
        "limit_price": "100",
        "order_class": "bracket",
        "take_profit": {"limit_price": "110.5"},
        "stop_loss": {"stop_price": "95", "limit_price": "94.5"},
    }
    oco = book.new_order(
        "AAPL",
        "sell",
        5,
        "limit",
        order_class="oco",
        take_profit={"limit_price": 120.0},
        stop_loss={"stop_price": 90.0},
    )
    body = order_request_json(oco)
    assert "limit_price" not in body  # the oco's limit is its take-profit's, as Alpaca shows
    assert (body["order_class"], body["take_profit"], body["stop_loss"]) == (
        "oco",
        {"limit_price": "120"},
        {"stop_price": "90"},
    )
    oto = book.new_order("AAPL", "buy", 1, order_class="oto", stop_loss={"stop_price": 1.5})
    assert "take_profit" not in order_request_json(oto)


def test_orders_with_legs_and_held_statuses_parse() -> None:
    tp = alpaca_order(
        id=UUID2, client_order_id="venue-tp", side="sell", limit_price="110", status="held"
    )
    sl = alpaca_order(
        id=ASSET,
        client_order_id="venue-sl",
        side="sell",
        type="stop",
        order_type="stop",
        limit_price=None,
        stop_price="95",
        status="held",
        order_class="bracket",
    )
    o = order_from_json(alpaca_order(order_class="bracket", legs=[tp, sl]))
    assert o.order_class is OrderClass.BRACKET and o.parent_id is None
    assert [(leg.id, leg.type, leg.status, leg.parent_id) for leg in o.legs] == [
        (UUID2, OrderType.LIMIT, OrderStatus.HELD, UUID1),
        (ASSET, OrderType.STOP, OrderStatus.HELD, UUID1),
    ]
    assert status_from_alpaca("held", 0.0) is OrderStatus.HELD
    assert order_from_json(alpaca_order(legs=[])).legs == ()
    with pytest.raises(MalformedMessageError) as info:
        order_from_json(alpaca_order(legs={"a": 1}))
    assert info.value.field == "legs"
    rendered = order_to_json(o, id=UUID1, asset_id=ASSET, legs=[tp, sl])
    assert rendered["order_class"] == "bracket" and rendered["legs"] == [tp, sl]
    held = o.legs[0]
    assert order_to_json(held, id=UUID2, asset_id=ASSET)["status"] == "held"


def test_a_fill_event_carries_the_position_after_it() -> None:
    data = {
        "event": "fill",
        "order": alpaca_order(status="filled", filled_qty="10", filled_avg_price="101"),
        "timestamp": "2024-03-01T14:31:00Z",
        "execution_id": UUID2,
        "price": "101",
        "qty": "10",
        "position_qty": "-5",
    }
    event = trade_update_from_json(data)
    assert event.fill is not None and event.fill.position_qty == -5.0
    del data["position_qty"]
    unknown = trade_update_from_json(data).fill
    assert unknown is not None and unknown.position_qty is None
    with pytest.raises(MalformedMessageError) as info:
        trade_update_from_json({**data, "position_qty": "many"})
    assert (info.value.field, info.value.value) == ("position_qty", "many")
