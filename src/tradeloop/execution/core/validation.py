"""OrderValidator: static checks of an order request, before it reaches a book or a broker.

A malformed request is a programming error and raises :class:`InvalidOrderError` naming the field
and the value; nothing is registered. Whether the account can *afford* an order is a different
question, answered by the portfolio at submission time (the order is then ``rejected``, as a broker
would do), see :meth:`tradeloop.execution.core.portfolio.Portfolio.buying_power_shortfall`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from enum import StrEnum
from typing import TypeVar

from tradeloop.errors import InvalidOrderError
from tradeloop.execution.types import Order, OrderType, TimeInForce

__all__ = ["MAX_CLIENT_ORDER_ID_LEN", "OrderValidator", "coerce_enum"]

MAX_CLIENT_ORDER_ID_LEN = 48

E = TypeVar("E", bound=StrEnum)


def coerce_enum(enum: type[E], field: str, value: object) -> E:
    """``"buy"`` -> ``OrderSide.BUY``; anything not a member raises naming the allowed values."""
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value.lower())
        except ValueError:
            pass
    allowed = ", ".join(m.value for m in enum)
    raise InvalidOrderError(field, value, f"must be one of: {allowed}")


def _positive_price(field: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidOrderError(field, value, "must be a number")
    if not (math.isfinite(value) and value > 0.0):
        raise InvalidOrderError(field, value, "must be a finite number > 0")


_NEEDS_LIMIT = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
_NEEDS_STOP = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})


class OrderValidator:
    """Checks quantities, prices and field combinations of orders.

    ``symbols``: the tradable universe (``None`` accepts any symbol). ``fractional``: whether
    non-integer quantities are allowed.
    """

    __slots__ = ("fractional", "symbols")

    def __init__(self, symbols: Collection[str] | None = None, fractional: bool = False) -> None:
        self.symbols = frozenset(symbols) if symbols is not None else None
        self.fractional = fractional

    def check_qty(self, qty: object, field: str = "qty") -> float:
        if isinstance(qty, bool) or not isinstance(qty, numbers.Real):
            raise InvalidOrderError(field, qty, "must be a number")
        value = float(qty)
        if not (math.isfinite(value) and value > 0):
            raise InvalidOrderError(field, qty, "must be a finite number > 0")
        if not self.fractional and not value.is_integer():
            raise InvalidOrderError(
                field, qty, "must be a whole number (fractional quantities are disabled)"
            )
        return value

    def validate(self, order: Order) -> None:
        """Raise :class:`InvalidOrderError` if ``order`` is not a well-formed request."""
        if not isinstance(order.symbol, str) or not order.symbol:
            raise InvalidOrderError("symbol", order.symbol, "must be a non-empty string")
        if self.symbols is not None and order.symbol not in self.symbols:
            known = ", ".join(sorted(self.symbols))
            raise InvalidOrderError("symbol", order.symbol, f"unknown symbol (known: {known})")
        self.check_qty(order.qty)
        for name in ("limit_price", "stop_price", "trail_price"):
            _positive_price(name, getattr(order, name))
        if order.trail_percent is not None:
            tp = order.trail_percent
            if isinstance(tp, bool) or not isinstance(tp, numbers.Real) or not (0.0 < tp < 100.0):
                raise InvalidOrderError("trail_percent", tp, "must be a number in (0, 100)")
        t = order.type
        if t in _NEEDS_LIMIT and order.limit_price is None:
            raise InvalidOrderError("limit_price", None, f"required for type={t.value!r}")
        if t not in _NEEDS_LIMIT and order.limit_price is not None:
            raise InvalidOrderError(
                "limit_price", order.limit_price, f"not allowed for type={t.value!r}"
            )
        if t in _NEEDS_STOP and order.stop_price is None:
            raise InvalidOrderError("stop_price", None, f"required for type={t.value!r}")
        if t not in _NEEDS_STOP and order.stop_price is not None:
            raise InvalidOrderError(
                "stop_price", order.stop_price, f"not allowed for type={t.value!r}"
            )
        if t is OrderType.TRAILING_STOP:
            if (order.trail_price is None) == (order.trail_percent is None):
                raise InvalidOrderError(
                    "trail_price",
                    order.trail_price,
                    "trailing_stop needs exactly one of trail_price or trail_percent",
                )
            if order.tif not in (TimeInForce.DAY, TimeInForce.GTC):
                raise InvalidOrderError(
                    "tif", order.tif.value, "trailing_stop orders must be 'day' or 'gtc'"
                )
        elif order.trail_price is not None or order.trail_percent is not None:
            field = "trail_price" if order.trail_price is not None else "trail_percent"
            raise InvalidOrderError(
                field,
                getattr(order, field),
                f"only allowed for type='trailing_stop', not {t.value!r}",
            )
        coid = order.client_order_id
        if not isinstance(coid, str) or not coid or len(coid) > MAX_CLIENT_ORDER_ID_LEN:
            raise InvalidOrderError(
                "client_order_id", coid, f"must be a string of 1..{MAX_CLIENT_ORDER_ID_LEN} chars"
            )
