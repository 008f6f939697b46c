"""OrderValidator: static checks of an order request, before it reaches a book or a broker.

A malformed request is a programming error and raises :class:`InvalidOrderError` naming the field
and the value; nothing is registered. Whether the account can *afford* an order is a different
question, answered by the portfolio at submission time (the order is then ``rejected``, as a broker
would do), see :meth:`tradeloop.execution.core.portfolio.Portfolio.buying_power_shortfall`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from tradeloop.errors import InvalidOrderError
from tradeloop.execution.types import Order, OrderClass, OrderSide, OrderType, TimeInForce

__all__ = [
    "MAX_CLIENT_ORDER_ID_LEN",
    "ExitLegs",
    "OrderValidator",
    "check_order_class",
    "coerce_enum",
]

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


# ------------------------------------------------------------------------------ order classes

_CLASS_TIFS = (TimeInForce.DAY, TimeInForce.GTC)
_SIMPLE = OrderClass.SIMPLE
_LEG_KEYS = {"take_profit": ("limit_price",), "stop_loss": ("stop_price", "limit_price")}


@dataclass(frozen=True, slots=True)
class ExitLegs:
    """The exit legs an order class asks for, checked: the take-profit's limit price, the
    stop-loss's stop price and optional limit price (``None`` where a leg is absent)."""

    take_profit: float | None
    stop_loss: float | None
    stop_loss_limit: float | None


_NO_EXITS = ExitLegs(None, None, None)  # a simple order's (frozen: one instance serves all)


def _leg(name: str, value: object) -> dict[str, object] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidOrderError(name, value, "must be a mapping such as {'limit_price': 101.5}")
    allowed = _LEG_KEYS[name]
    for key in value:
        if key not in allowed:
            raise InvalidOrderError(
                f"{name}.{key}", value[key], f"unknown field (allowed: {', '.join(allowed)})"
            )
    return dict(value)


def _leg_price(name: str, leg: Mapping[str, object], key: str, required: bool) -> float | None:
    value = leg.get(key)
    field = f"{name}.{key}"
    if value is None:
        if required:
            raise InvalidOrderError(field, None, "required")
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidOrderError(field, value, "must be a number")
    price = float(value)
    if not (math.isfinite(price) and price > 0.0):
        raise InvalidOrderError(field, value, "must be a finite number > 0")
    return price


def check_order_class(
    order_class: OrderClass,
    *,
    side: OrderSide,
    type: OrderType,
    tif: TimeInForce,
    limit_price: float | None,
    stop_price: float | None,
    take_profit: object,
    stop_loss: object,
) -> ExitLegs:
    """Alpaca's rules for an order class (raises :class:`InvalidOrderError` naming the field):

    * ``simple`` takes no legs;
    * ``bracket`` needs both legs, ``oto`` exactly one, ``oco`` both; all three need time in
      force ``day`` or ``gtc``; a bracket or oto entry cannot be a trailing stop, an oco is a
      ``limit`` order (its take-profit: its limit price is the take-profit's);
    * the take-profit lies on the profitable side of the stop-loss (for exits that sell, above
      it) and, when the entry names a price, beyond it (for a buy entry: take-profit above,
      stop-loss below).
    """
    if take_profit is None and stop_loss is None and order_class is _SIMPLE:
        return _NO_EXITS  # the common case, without the checks below
    tp = _leg("take_profit", take_profit)
    sl = _leg("stop_loss", stop_loss)
    if order_class is _SIMPLE:
        for name, leg in (("take_profit", tp), ("stop_loss", sl)):
            if leg is not None:
                raise InvalidOrderError(
                    name, leg, "only allowed with order_class bracket, oco or oto"
                )
        return _NO_EXITS
    cls = order_class.value
    if tif not in _CLASS_TIFS:
        raise InvalidOrderError("tif", tif.value, f"{cls} orders must be 'day' or 'gtc'")
    if order_class is OrderClass.OTO:
        if (tp is None) == (sl is None):
            raise InvalidOrderError(
                "take_profit" if tp is None else "stop_loss",
                None if tp is None else sl,
                "an oto order needs exactly one of take_profit or stop_loss",
            )
    else:
        for name, leg in (("take_profit", tp), ("stop_loss", sl)):
            if leg is None:
                raise InvalidOrderError(name, None, f"required for order_class {cls!r}")
    tp_price = _leg_price("take_profit", tp, "limit_price", True) if tp is not None else None
    sl_stop = _leg_price("stop_loss", sl, "stop_price", True) if sl is not None else None
    sl_limit = _leg_price("stop_loss", sl, "limit_price", False) if sl is not None else None
    if order_class is OrderClass.OCO:
        if type is not OrderType.LIMIT:
            raise InvalidOrderError("type", type.value, "oco orders must be type 'limit'")
        if limit_price is not None and limit_price != tp_price:
            raise InvalidOrderError(
                "limit_price",
                limit_price,
                f"an oco order's limit price is its take-profit's ({tp_price}); give one",
            )
        exit_sells = side is OrderSide.SELL
    else:
        if type is OrderType.TRAILING_STOP:
            raise InvalidOrderError("type", type.value, f"a {cls} entry cannot be a trailing stop")
        exit_sells = side is OrderSide.BUY
        entry = limit_price if limit_price is not None else stop_price
        if isinstance(entry, bool) or not isinstance(entry, numbers.Real):
            entry = None  # no price, or a bad one (the order's own check names it)
        if entry is not None:
            above, below = ("above", "below") if exit_sells else ("below", "above")
            if tp_price is not None and (tp_price <= entry if exit_sells else tp_price >= entry):
                raise InvalidOrderError(
                    "take_profit.limit_price",
                    tp_price,
                    f"must be {above} the entry price {entry} for a {side.value} {cls} order",
                )
            if sl_stop is not None and (sl_stop >= entry if exit_sells else sl_stop <= entry):
                raise InvalidOrderError(
                    "stop_loss.stop_price",
                    sl_stop,
                    f"must be {below} the entry price {entry} for a {side.value} {cls} order",
                )
    if (
        tp_price is not None
        and sl_stop is not None
        and (tp_price <= sl_stop if exit_sells else tp_price >= sl_stop)
    ):
        word = "above" if exit_sells else "below"
        raise InvalidOrderError(
            "take_profit.limit_price",
            tp_price,
            f"must be {word} stop_loss.stop_price {sl_stop} (exits that "
            f"{'sell' if exit_sells else 'buy'})",
        )
    return ExitLegs(tp_price, sl_stop, sl_limit)
