"""Slippage and commission models against hand-computed numbers, and their parameter checks."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from tradeloop.errors import ConfigError
from tradeloop.execution.core.costs import (
    FixedCommission,
    FixedSlippage,
    NoCommission,
    NoSlippage,
    PercentCommission,
    PercentSlippage,
    PerShareCommission,
)
from tradeloop.execution.types import Order, OrderSide

BUY, SELL = OrderSide.BUY, OrderSide.SELL


def order(qty: float = 100.0, filled: float = 0.0) -> Order:
    o = Order("o1", "X", BUY, qty)
    o.filled_qty = filled
    return o


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


# -- slippage ---------------------------------------------------------------------------------


@pytest.mark.parametrize("side", [BUY, SELL])
def test_no_slippage(side: OrderSide) -> None:
    assert NoSlippage().apply(101.25, 10, side) == 101.25


@pytest.mark.parametrize(
    ("amount", "price", "side", "expected"),
    [
        (0.01, 100.0, BUY, 100.01),
        (0.01, 100.0, SELL, 99.99),
        (0.05, 20.0, BUY, 20.05),
        (0.05, 20.0, SELL, 19.95),
        (0.0, 50.0, BUY, 50.0),
        (0.0, 50.0, SELL, 50.0),
        (1.0, 0.5, SELL, 0.0),  # a sell never fills below zero
        (1.0, 1.0, SELL, 0.0),
        (1.0, 0.5, BUY, 1.5),
    ],
)
def test_fixed_slippage(amount: float, price: float, side: OrderSide, expected: float) -> None:
    assert close(FixedSlippage(amount).apply(price, 10, side), expected)


def test_fixed_slippage_is_independent_of_qty() -> None:
    s = FixedSlippage(0.02)
    assert s.apply(10.0, 1, BUY) == s.apply(10.0, 1_000_000, BUY)


@pytest.mark.parametrize(
    ("rate", "price", "side", "expected"),
    [
        (0.0005, 100.0, BUY, 100.05),  # 5 bps
        (0.0005, 100.0, SELL, 99.95),
        (0.01, 250.0, BUY, 252.5),
        (0.01, 250.0, SELL, 247.5),
        (0.0, 42.0, BUY, 42.0),
        (0.0, 42.0, SELL, 42.0),
    ],
)
def test_percent_slippage(rate: float, price: float, side: OrderSide, expected: float) -> None:
    assert close(PercentSlippage(rate).apply(price, 10, side), expected)


@pytest.mark.parametrize("model", [FixedSlippage(0.03), PercentSlippage(0.002)], ids=repr)
@pytest.mark.parametrize("price", [0.5, 10.0, 999.0])
def test_slippage_is_always_against_the_trader(model: Any, price: float) -> None:
    assert model.apply(price, 5, BUY) > price
    assert model.apply(price, 5, SELL) < price


# -- commission -------------------------------------------------------------------------------


def test_no_commission() -> None:
    assert NoCommission().compute(order(), 100, 50.0) == 0.0


@pytest.mark.parametrize(
    ("rate", "minimum", "maximum", "qty", "expected"),
    [
        (0.005, 0.0, None, 100, 0.5),
        (0.005, 1.0, None, 100, 1.0),  # minimum applies: 0.5 -> 1.0
        (0.005, 1.0, None, 1000, 5.0),  # above the minimum
        (0.005, 1.0, 3.0, 1000, 3.0),  # maximum caps 5.0 -> 3.0
        (0.005, 1.0, 3.0, 400, 2.0),  # between the clamps
        (0.005, 1.0, 3.0, 10, 1.0),  # minimum still applies with a maximum
        (0.005, 2.0, 2.0, 10_000, 2.0),  # minimum == maximum: a flat fee
        (0.0, 0.0, None, 100, 0.0),
    ],
)
def test_per_share_commission(
    rate: float, minimum: float, maximum: float | None, qty: float, expected: float
) -> None:
    c = PerShareCommission(rate, minimum=minimum, maximum=maximum)
    assert close(c.compute(order(qty), qty, 123.45), expected)


def test_per_share_commission_ignores_price() -> None:
    c = PerShareCommission(0.01)
    assert c.compute(order(), 50, 1.0) == c.compute(order(), 50, 1000.0) == 0.5


@pytest.mark.parametrize(
    ("rate", "minimum", "qty", "price", "expected"),
    [
        (0.001, 0.0, 100, 50.0, 5.0),  # 10 bps of 5000
        (0.001, 10.0, 100, 50.0, 10.0),  # minimum applies
        (0.001, 1.0, 100, 50.0, 5.0),
        (0.0025, 0.0, 3, 200.0, 1.5),
        (0.0, 0.0, 100, 50.0, 0.0),
        (0.0, 2.0, 100, 50.0, 2.0),
    ],
)
def test_percent_commission(
    rate: float, minimum: float, qty: float, price: float, expected: float
) -> None:
    c = PercentCommission(rate, minimum=minimum)
    assert close(c.compute(order(qty), qty, price), expected)


def test_fixed_commission_only_on_first_fill() -> None:
    c = FixedCommission(4.95)
    o = order(qty=100)
    assert c.compute(o, 40, 10.0) == 4.95  # first fill
    o.filled_qty = 40.0
    assert c.compute(o, 30, 10.0) == 0.0  # later fills of the same order are free
    o.filled_qty = 70.0
    assert c.compute(o, 30, 10.0) == 0.0
    assert c.compute(order(qty=5), 5, 10.0) == 4.95  # a new order pays again


def test_fixed_commission_ignores_qty_and_price() -> None:
    c = FixedCommission(1.0)
    assert c.compute(order(), 1, 1.0) == c.compute(order(), 1000, 999.0) == 1.0


@pytest.mark.parametrize(
    "model",
    [
        FixedSlippage(0.01),
        PercentSlippage(0.001),
        PerShareCommission(0.005, 1.0, 2.0),
        PercentCommission(0.001, 1.0),
        FixedCommission(1.0),
        NoSlippage(),
        NoCommission(),
    ],
)
def test_repr_names_the_model(model: object) -> None:
    assert repr(model).startswith(type(model).__name__ + "(")


# -- bad parameters ---------------------------------------------------------------------------

Factory = Callable[[], object]


@pytest.mark.parametrize(
    ("factory", "field", "shown"),
    [
        (lambda: FixedSlippage(-0.01), "slippage.amount", "-0.01"),
        (lambda: FixedSlippage(math.nan), "slippage.amount", "nan"),
        (lambda: PercentSlippage(-0.1), "slippage.rate", "-0.1"),
        (lambda: PercentSlippage(math.nan), "slippage.rate", "nan"),
        (lambda: PercentSlippage(1.0), "slippage.rate", "1.0"),
        (lambda: PercentSlippage(1.5), "slippage.rate", "1.5"),
        (lambda: PercentSlippage(math.inf), "slippage.rate", "inf"),
        (lambda: PerShareCommission(-0.005), "commission.rate", "-0.005"),
        (lambda: PerShareCommission(math.nan), "commission.rate", "nan"),
        (lambda: PerShareCommission(0.005, minimum=-1.0), "commission.minimum", "-1.0"),
        (lambda: PerShareCommission(0.005, minimum=math.nan), "commission.minimum", "nan"),
        (lambda: PerShareCommission(0.005, maximum=-1.0), "commission.maximum", "-1.0"),
        (lambda: PerShareCommission(0.005, maximum=math.nan), "commission.maximum", "nan"),
        (
            lambda: PerShareCommission(0.005, minimum=2.0, maximum=1.0),
            "commission.maximum",
            "1.0",
        ),
        (lambda: PercentCommission(-0.001), "commission.rate", "-0.001"),
        (lambda: PercentCommission(math.nan), "commission.rate", "nan"),
        (lambda: PercentCommission(1.0), "commission.rate", "1.0"),
        (lambda: PercentCommission(2.0), "commission.rate", "2.0"),
        (lambda: PercentCommission(0.001, minimum=-5.0), "commission.minimum", "-5.0"),
        (lambda: PercentCommission(0.001, minimum=math.nan), "commission.minimum", "nan"),
        (lambda: FixedCommission(-1.0), "commission.amount", "-1.0"),
        (lambda: FixedCommission(math.nan), "commission.amount", "nan"),
    ],
)
def test_bad_parameters_raise_config_error(factory: Factory, field: str, shown: str) -> None:
    with pytest.raises(ConfigError) as ei:
        factory()
    assert ei.value.field == field
    assert f"{field}={shown}" in str(ei.value)


def test_maximum_equal_to_minimum_is_allowed() -> None:
    c = PerShareCommission(0.01, minimum=1.0, maximum=1.0)
    assert c.maximum == c.minimum == 1.0


def test_parameters_are_stored_as_floats() -> None:
    assert type(FixedSlippage(1).amount) is float
    assert type(PercentCommission(0, minimum=1).minimum) is float
    assert type(PerShareCommission(0, 0, 3).maximum) is float


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: FixedSlippage(float("inf")), "slippage.amount"),
        (lambda: PerShareCommission(rate=float("inf")), "commission.rate"),
        (lambda: FixedCommission(float("inf")), "commission.amount"),
    ],
)
def test_infinite_parameters_rejected(factory: Callable[[], object], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        factory()
    assert err.value.field == field
    assert "inf" in str(err.value)
