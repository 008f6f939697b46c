"""OrderValidator and coerce_enum: one test per rejected input, naming the field and the value."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tradeloop.errors import InvalidOrderError
from tradeloop.execution.core.validation import (
    MAX_CLIENT_ORDER_ID_LEN,
    OrderValidator,
    coerce_enum,
)
from tradeloop.execution.types import Order, OrderSide, OrderType, TimeInForce

BUY = OrderSide.BUY
T = OrderType


def make(
    type: OrderType = T.MARKET,
    qty: Any = 10,
    symbol: Any = "AAPL",
    tif: TimeInForce = TimeInForce.GTC,
    **kw: Any,
) -> Order:
    return Order("o1", symbol, BUY, qty, type, tif, **kw)


def rejects(
    order: Order, field: str, shown: str, validator: OrderValidator | None = None
) -> InvalidOrderError:
    v = validator if validator is not None else OrderValidator()
    with pytest.raises(InvalidOrderError) as ei:
        v.validate(order)
    err = ei.value
    assert err.field == field
    assert shown in str(err), str(err)
    assert str(err).startswith(f"{field}=")
    return err


# -- valid orders -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "order",
    [
        make(T.MARKET),
        make(T.LIMIT, limit_price=100.0),
        make(T.STOP, stop_price=100.0),
        make(T.STOP_LIMIT, stop_price=100.0, limit_price=101.0),
        make(T.TRAILING_STOP, trail_price=2.5),
        make(T.TRAILING_STOP, trail_percent=5.0, tif=TimeInForce.DAY),
        make(T.MARKET, tif=TimeInForce.IOC),
        make(T.LIMIT, limit_price=1, tif=TimeInForce.FOK),  # int prices are fine
        make(T.MARKET, client_order_id="x" * MAX_CLIENT_ORDER_ID_LEN),
    ],
    ids=repr,
)
def test_valid_orders_pass(order: Order) -> None:
    OrderValidator(symbols={"AAPL"}).validate(order)


# -- quantity ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qty", "shown"),
    [
        (0, "qty=0"),
        (0.0, "qty=0.0"),
        (-5, "qty=-5"),
        (-0.5, "qty=-0.5"),
        (math.nan, "qty=nan"),
        (math.inf, "qty=inf"),
        (-math.inf, "qty=-inf"),
        (True, "qty=True"),
        (False, "qty=False"),
        ("10", "qty='10'"),
        (None, "qty=None"),
    ],
)
def test_check_qty_rejects(qty: Any, shown: str) -> None:
    with pytest.raises(InvalidOrderError) as ei:
        OrderValidator(fractional=True).check_qty(qty)
    assert ei.value.field == "qty"
    assert ei.value.value is qty
    assert shown in str(ei.value)


def test_check_qty_custom_field_name() -> None:
    with pytest.raises(InvalidOrderError) as ei:
        OrderValidator().check_qty(-1, field="size")
    assert ei.value.field == "size"
    assert "size=-1" in str(ei.value)


def test_check_qty_fractional_disabled() -> None:
    with pytest.raises(InvalidOrderError) as ei:
        OrderValidator(fractional=False).check_qty(2.5)
    assert ei.value.field == "qty"
    assert "qty=2.5" in str(ei.value)
    assert "whole number" in str(ei.value)


def test_check_qty_fractional_enabled() -> None:
    assert OrderValidator(fractional=True).check_qty(2.5) == 2.5


@pytest.mark.parametrize("qty", [1, 7, 3.0, 1e6])
def test_check_qty_whole_numbers_accepted_and_floated(qty: float) -> None:
    out = OrderValidator(fractional=False).check_qty(qty)
    assert out == qty
    assert type(out) is float


@pytest.mark.parametrize(
    ("qty", "shown"),
    [(0, "qty=0"), (-3, "qty=-3"), (math.nan, "qty=nan"), (math.inf, "qty=inf")],
)
def test_validate_rejects_bad_qty(qty: float, shown: str) -> None:
    rejects(make(qty=qty), "qty", shown)


def test_validate_rejects_fractional_qty_when_disabled() -> None:
    rejects(make(qty=0.5), "qty", "qty=0.5", OrderValidator(fractional=False))


def test_validate_accepts_fractional_qty_when_enabled() -> None:
    OrderValidator(fractional=True).validate(make(qty=0.5))


# -- symbol -----------------------------------------------------------------------------------


def test_unknown_symbol() -> None:
    err = rejects(make(symbol="MSFT"), "symbol", "symbol='MSFT'", OrderValidator({"AAPL", "SPY"}))
    assert "AAPL, SPY" in str(err)


def test_any_symbol_when_universe_is_none() -> None:
    OrderValidator(symbols=None).validate(make(symbol="ANYTHING"))


def test_empty_symbol() -> None:
    rejects(make(symbol=""), "symbol", "symbol=''")


def test_non_string_symbol() -> None:
    rejects(make(symbol=123), "symbol", "symbol=123")


# -- prices per order type --------------------------------------------------------------------


def test_limit_without_limit_price() -> None:
    err = rejects(make(T.LIMIT), "limit_price", "limit_price=None")
    assert "'limit'" in str(err)


def test_market_with_limit_price() -> None:
    err = rejects(make(T.MARKET, limit_price=99.5), "limit_price", "limit_price=99.5")
    assert "'market'" in str(err)


def test_market_with_stop_price() -> None:
    rejects(make(T.MARKET, stop_price=99.5), "stop_price", "stop_price=99.5")


def test_limit_with_stop_price() -> None:
    rejects(make(T.LIMIT, limit_price=100.0, stop_price=98.0), "stop_price", "stop_price=98.0")


def test_stop_without_stop_price() -> None:
    err = rejects(make(T.STOP), "stop_price", "stop_price=None")
    assert "'stop'" in str(err)


def test_stop_with_limit_price() -> None:
    rejects(make(T.STOP, stop_price=100.0, limit_price=99.0), "limit_price", "limit_price=99.0")


def test_stop_limit_missing_limit_price() -> None:
    err = rejects(make(T.STOP_LIMIT, stop_price=100.0), "limit_price", "limit_price=None")
    assert "'stop_limit'" in str(err)


def test_stop_limit_missing_stop_price() -> None:
    err = rejects(make(T.STOP_LIMIT, limit_price=100.0), "stop_price", "stop_price=None")
    assert "'stop_limit'" in str(err)


def test_stop_limit_missing_both() -> None:
    rejects(make(T.STOP_LIMIT), "limit_price", "limit_price=None")


@pytest.mark.parametrize("field", ["limit_price", "stop_price", "trail_price"])
@pytest.mark.parametrize(
    ("value", "shown"),
    [(-1.0, "=-1.0"), (0.0, "=0.0"), (0, "=0"), (math.nan, "=nan"), (math.inf, "=inf")],
)
def test_non_positive_or_non_finite_price(field: str, value: float, shown: str) -> None:
    type_for = {
        "limit_price": T.LIMIT,
        "stop_price": T.STOP,
        "trail_price": T.TRAILING_STOP,
    }
    kw: dict[str, Any] = {field: value}
    rejects(make(type_for[field], **kw), field, field + shown)


@pytest.mark.parametrize("field", ["limit_price", "stop_price", "trail_price"])
@pytest.mark.parametrize(("value", "shown"), [("100", "='100'"), (True, "=True")])
def test_non_numeric_price(field: str, value: Any, shown: str) -> None:
    err = rejects(make(T.MARKET, **{field: value}), field, field + shown)
    assert "must be a number" in str(err)


# -- trailing stops ---------------------------------------------------------------------------


def test_trailing_stop_with_neither_trail_field() -> None:
    err = rejects(make(T.TRAILING_STOP), "trail_price", "trail_price=None")
    assert "exactly one of trail_price or trail_percent" in str(err)


def test_trailing_stop_with_both_trail_fields() -> None:
    err = rejects(
        make(T.TRAILING_STOP, trail_price=2.0, trail_percent=5.0), "trail_price", "trail_price=2.0"
    )
    assert "exactly one" in str(err)


@pytest.mark.parametrize(
    ("pct", "shown"),
    [
        (0.0, "=0.0"),
        (0, "=0"),
        (-1.0, "=-1.0"),
        (100.0, "=100.0"),
        (150, "=150"),
        (math.nan, "=nan"),
        (math.inf, "=inf"),
        (True, "=True"),
        ("5", "='5'"),
    ],
)
def test_trail_percent_out_of_range(pct: Any, shown: str) -> None:
    o = make(T.TRAILING_STOP, trail_percent=pct)
    err = rejects(o, "trail_percent", "trail_percent" + shown)
    assert "(0, 100)" in str(err)


@pytest.mark.parametrize("pct", [0.001, 1, 50.0, 99.999])
def test_trail_percent_in_range(pct: float) -> None:
    OrderValidator().validate(make(T.TRAILING_STOP, trail_percent=pct))


@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.FOK])
def test_trailing_stop_with_immediate_tif(tif: TimeInForce) -> None:
    err = rejects(make(T.TRAILING_STOP, trail_price=1.0, tif=tif), "tif", f"tif={tif.value!r}")
    assert "'day' or 'gtc'" in str(err)


@pytest.mark.parametrize(
    "type_kw",
    [
        (T.MARKET, {}),
        (T.LIMIT, {"limit_price": 100.0}),
        (T.STOP, {"stop_price": 100.0}),
        (T.STOP_LIMIT, {"stop_price": 100.0, "limit_price": 100.0}),
    ],
    ids=lambda p: p[0].value,
)
def test_trail_price_on_non_trailing_order(type_kw: tuple[OrderType, dict[str, Any]]) -> None:
    t, kw = type_kw
    err = rejects(make(t, trail_price=2.0, **kw), "trail_price", "trail_price=2.0")
    assert f"not {t.value!r}" in str(err)


def test_trail_percent_on_non_trailing_order() -> None:
    err = rejects(
        make(T.LIMIT, limit_price=100.0, trail_percent=3.0), "trail_percent", "trail_percent=3.0"
    )
    assert "only allowed for type='trailing_stop'" in str(err)


# -- client order id --------------------------------------------------------------------------


def test_client_order_id_too_long() -> None:
    coid = "c" * (MAX_CLIENT_ORDER_ID_LEN + 1)
    err = rejects(make(client_order_id=coid), "client_order_id", repr(coid))
    assert f"1..{MAX_CLIENT_ORDER_ID_LEN}" in str(err)


def test_client_order_id_empty() -> None:
    rejects(make(client_order_id=""), "client_order_id", "client_order_id=''")


def test_client_order_id_not_a_string() -> None:
    o = make()
    o.client_order_id = 42  # type: ignore[assignment]
    rejects(o, "client_order_id", "client_order_id=42")


def test_client_order_id_defaults_to_order_id() -> None:
    o = make()
    assert o.client_order_id == "o1"
    OrderValidator().validate(o)


# -- coerce_enum ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("enum", "raw", "expected"),
    [
        (OrderSide, "buy", OrderSide.BUY),
        (OrderSide, "BUY", OrderSide.BUY),
        (OrderSide, "Sell", OrderSide.SELL),
        (OrderSide, OrderSide.SELL, OrderSide.SELL),
        (OrderType, "STOP_LIMIT", OrderType.STOP_LIMIT),
        (OrderType, "trailing_stop", OrderType.TRAILING_STOP),
        (TimeInForce, "IOC", TimeInForce.IOC),
        (TimeInForce, TimeInForce.DAY, TimeInForce.DAY),
    ],
)
def test_coerce_enum_accepts(enum: Any, raw: object, expected: object) -> None:
    assert coerce_enum(enum, "f", raw) is expected


@pytest.mark.parametrize(
    ("enum", "field", "raw", "shown", "allowed"),
    [
        (OrderSide, "side", "hold", "side='hold'", "buy, sell"),
        (OrderSide, "side", "", "side=''", "buy, sell"),
        (OrderSide, "side", " buy", "side=' buy'", "buy, sell"),
        (OrderSide, "side", 1, "side=1", "buy, sell"),
        (OrderSide, "side", None, "side=None", "buy, sell"),
        (OrderType, "type", "stoplimit", "type='stoplimit'", "market, limit, stop"),
        (OrderType, "type", OrderSide.BUY, "type=", "trailing_stop"),
        (TimeInForce, "tif", "opg", "tif='opg'", "day, gtc, ioc, fok"),
        (TimeInForce, "tif", "GTX", "tif='GTX'", "day, gtc, ioc, fok"),
    ],
)
def test_coerce_enum_rejects(enum: Any, field: str, raw: object, shown: str, allowed: str) -> None:
    with pytest.raises(InvalidOrderError) as ei:
        coerce_enum(enum, field, raw)
    assert ei.value.field == field
    assert ei.value.value is raw
    assert shown in str(ei.value)
    assert allowed in str(ei.value)


def test_numpy_numbers_accepted() -> None:
    np = pytest.importorskip("numpy")
    assert OrderValidator().check_qty(np.int64(5)) == 5.0
    assert OrderValidator().check_qty(np.float64(2.0)) == 2.0
