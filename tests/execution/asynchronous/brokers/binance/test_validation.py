"""BinanceOrderValidator: every refused input names its field and its value."""

from __future__ import annotations

from typing import Any

import pytest

from tradeloop.errors import InvalidOrderError
from tradeloop.execution.asynchronous.brokers.binance.mapping import OrderFilters
from tradeloop.execution.asynchronous.brokers.binance.validation import (
    BinanceOrderValidator,
    on_step,
)
from tradeloop.execution.types import Order, OrderClass, OrderSide, OrderType, TimeInForce

FILTERS = OrderFilters(
    min_price=0.01,
    max_price=1000.0,
    tick_size=0.01,
    min_qty=0.001,
    max_qty=100.0,
    step_size=0.001,
    min_notional=5.0,
    max_notional=50_000.0,
)


def validator() -> BinanceOrderValidator:
    v = BinanceOrderValidator(["ACMEUSDT"], {"ACMEUSDT": FILTERS})
    v.set_price("ACMEUSDT", 100.0)
    return v


def order(**kw: Any) -> Order:
    o = Order(
        "o1",
        kw.pop("symbol", "ACMEUSDT"),
        OrderSide.BUY,
        kw.pop("qty", 1.0),
        kw.pop("type", OrderType.LIMIT),
        kw.pop("tif", TimeInForce.GTC),
        limit_price=kw.pop("limit_price", 100.0),
        stop_price=kw.pop("stop_price", None),
        client_order_id=kw.pop("client_order_id", "run-1"),
    )
    for k, v in kw.items():
        setattr(o, k, v)
    return o


def test_valid_orders_pass() -> None:
    v = validator()
    v.validate(order())
    v.validate(order(qty=0.123, limit_price=99.99))
    v.validate(order(type=OrderType.MARKET, limit_price=None, tif=TimeInForce.DAY, qty=0.3))
    BinanceOrderValidator(["ACMEUSDT"]).validate(order(qty=0.0001))  # no filters yet: core only


@pytest.mark.parametrize(
    ("kw", "field", "value", "words"),
    [
        (
            {"type": OrderType.STOP, "stop_price": 90.0, "limit_price": None},
            "type",
            "stop",
            "market and limit",
        ),
        ({"order_class": OrderClass.BRACKET}, "order_class", "bracket", "simple"),
        ({"tif": TimeInForce.DAY}, "tif", "day", "no day orders"),
        ({"client_order_id": "has space"}, "client_order_id", "has space", "letters"),
        ({"client_order_id": "x" * 37}, "client_order_id", "x" * 37, "1..36"),
        ({"qty": 0.0001}, "qty", 0.0001, "LOT_SIZE minQty"),
        ({"qty": 101.0, "limit_price": 1.0}, "qty", 101.0, "LOT_SIZE maxQty"),
        ({"qty": 1.0005}, "qty", 1.0005, "LOT_SIZE stepSize 0.001"),
        ({"limit_price": 0.001, "qty": 10.0}, "limit_price", 0.001, "PRICE_FILTER minPrice"),
        ({"limit_price": 1000.5}, "limit_price", 1000.5, "PRICE_FILTER maxPrice"),
        ({"limit_price": 100.005}, "limit_price", 100.005, "PRICE_FILTER tickSize 0.01"),
        ({"qty": 0.04}, "qty", 0.04, "NOTIONAL minNotional 5"),
        ({"qty": 60.0, "limit_price": 900.0}, "qty", 60.0, "NOTIONAL maxNotional 50000"),
        ({"type": OrderType.MARKET, "limit_price": None, "qty": 0.01}, "qty", 0.01, "price 100"),
        ({"symbol": "BOLTUSDT"}, "symbol", "BOLTUSDT", "unknown symbol"),
        ({"qty": -1.0}, "qty", -1.0, "> 0"),
    ],
)
def test_rejected_inputs_name_field_and_value(
    kw: dict[str, Any], field: str, value: object, words: str
) -> None:
    with pytest.raises(InvalidOrderError) as info:
        validator().validate(order(**kw))
    err = info.value
    assert err.field == field and err.value == value
    assert words in str(err) and field in str(err)


def test_on_step_tolerates_binary_floats() -> None:
    assert on_step(0.3, 0.1) and on_step(1.001, 0.001) and on_step(5.0, 0.0)
    assert not on_step(1.0005, 0.001)
