"""Slippage and commission models (pure functions of a fill; pluggable through the protocols).

Slippage moves the fill price against the trader: up for buys, down for sells. Commission is a
non-negative cash amount charged per fill, except :class:`FixedCommission`, charged once per order.
"""

from __future__ import annotations

import math

from tradeloop.errors import ConfigError
from tradeloop.execution.types import Order, OrderSide

__all__ = [
    "FixedCommission",
    "FixedSlippage",
    "NoCommission",
    "NoSlippage",
    "PerShareCommission",
    "PercentCommission",
    "PercentSlippage",
]


def _non_negative(name: str, value: float) -> float:
    if not (value >= 0.0 and math.isfinite(value)):  # also rejects NaN
        raise ConfigError(name, value, "must be a finite number >= 0")
    return float(value)


class NoSlippage:
    __slots__ = ()

    def apply(self, price: float, qty: float, side: OrderSide) -> float:
        return price

    def __repr__(self) -> str:
        return "NoSlippage()"


class FixedSlippage:
    """A fixed price amount per share (e.g. 0.01 = one cent) against the trader."""

    __slots__ = ("amount",)

    def __init__(self, amount: float) -> None:
        self.amount = _non_negative("slippage.amount", amount)

    def apply(self, price: float, qty: float, side: OrderSide) -> float:
        return price + self.amount if side is OrderSide.BUY else max(price - self.amount, 0.0)

    def __repr__(self) -> str:
        return f"FixedSlippage(amount={self.amount})"


class PercentSlippage:
    """A fraction of the price against the trader (``rate=0.0005`` is 5 basis points)."""

    __slots__ = ("rate",)

    def __init__(self, rate: float) -> None:
        self.rate = _non_negative("slippage.rate", rate)
        if self.rate >= 1.0:
            raise ConfigError("slippage.rate", rate, "must be < 1 (it is a fraction of the price)")

    def apply(self, price: float, qty: float, side: OrderSide) -> float:
        return price * (1.0 + self.rate) if side is OrderSide.BUY else price * (1.0 - self.rate)

    def __repr__(self) -> str:
        return f"PercentSlippage(rate={self.rate})"


class NoCommission:
    __slots__ = ()

    def compute(self, order: Order, qty: float, price: float) -> float:
        return 0.0

    def __repr__(self) -> str:
        return "NoCommission()"


class PerShareCommission:
    """``rate`` per share, at least ``minimum`` and at most ``maximum`` per fill (IBKR-style)."""

    __slots__ = ("maximum", "minimum", "rate")

    def __init__(self, rate: float, minimum: float = 0.0, maximum: float | None = None) -> None:
        self.rate = _non_negative("commission.rate", rate)
        self.minimum = _non_negative("commission.minimum", minimum)
        self.maximum = None if maximum is None else _non_negative("commission.maximum", maximum)
        if self.maximum is not None and self.maximum < self.minimum:
            raise ConfigError("commission.maximum", maximum, "must be >= commission.minimum")

    def compute(self, order: Order, qty: float, price: float) -> float:
        fee = max(self.rate * qty, self.minimum)
        if self.maximum is not None:
            fee = min(fee, self.maximum)
        return fee

    def __repr__(self) -> str:
        return (
            f"PerShareCommission(rate={self.rate}, minimum={self.minimum}, maximum={self.maximum})"
        )


class PercentCommission:
    """A fraction of traded notional (``rate=0.001`` is 10 bps), at least ``minimum`` a fill."""

    __slots__ = ("minimum", "rate")

    def __init__(self, rate: float, minimum: float = 0.0) -> None:
        self.rate = _non_negative("commission.rate", rate)
        if self.rate >= 1.0:
            raise ConfigError("commission.rate", rate, "must be < 1 (it is a fraction of notional)")
        self.minimum = _non_negative("commission.minimum", minimum)

    def compute(self, order: Order, qty: float, price: float) -> float:
        return max(self.rate * qty * price, self.minimum)

    def __repr__(self) -> str:
        return f"PercentCommission(rate={self.rate}, minimum={self.minimum})"


class FixedCommission:
    """A flat ``amount`` per order, charged on the order's first fill only."""

    __slots__ = ("amount",)

    def __init__(self, amount: float) -> None:
        self.amount = _non_negative("commission.amount", amount)

    def compute(self, order: Order, qty: float, price: float) -> float:
        return self.amount if order.filled_qty == 0.0 else 0.0

    def __repr__(self) -> str:
        return f"FixedCommission(amount={self.amount})"
