"""AlpacaOrderValidator: the core's order rules plus Alpaca's own.

Alpaca refuses (422) what these rules catch; checking them before sending turns a venue round
trip into an :class:`~tradeloop.errors.InvalidOrderError` at the ``ctx`` call that names the field,
as a backtest does.
"""

from __future__ import annotations

from collections.abc import Collection

from tradeloop.errors import InvalidOrderError
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.types import Order, OrderType, TimeInForce

__all__ = ["AlpacaOrderValidator", "check_sub_penny"]

_EPS = 1e-9


def check_sub_penny(field: str, price: float | None) -> None:
    """Alpaca's tick rule: prices >= $1 in whole cents, below $1 at most four decimals."""
    if price is None:
        return
    places = 2 if price >= 1.0 else 4
    if abs(round(price, places) - price) > _EPS:
        raise InvalidOrderError(
            field, price, f"sub-penny increment: at most {places} decimals for a price of this size"
        )


class AlpacaOrderValidator(OrderValidator):
    """Core checks (:class:`OrderValidator`) and Alpaca's: sub-penny prices, fractional quantities
    only for market orders with ``day``, ``trail_price`` in cents. ``fractional`` (default on)
    says whether the account may trade fractions at all."""

    __slots__ = ()

    def __init__(self, symbols: Collection[str] | None = None, fractional: bool = True) -> None:
        super().__init__(symbols, fractional)

    def validate(self, order: Order) -> None:
        super().validate(order)
        check_sub_penny("limit_price", order.limit_price)
        check_sub_penny("stop_price", order.stop_price)
        check_sub_penny("trail_price", order.trail_price)
        if not float(order.qty).is_integer():
            if order.type is not OrderType.MARKET:
                raise InvalidOrderError(
                    "qty", order.qty, "fractional quantities are only allowed for market orders"
                )
            if order.tif is not TimeInForce.DAY:
                raise InvalidOrderError(
                    "tif", order.tif.value, "fractional orders must be time_in_force 'day'"
                )
