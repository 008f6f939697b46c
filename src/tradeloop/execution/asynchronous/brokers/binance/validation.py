"""BinanceOrderValidator: the core's order rules plus Binance spot's.

Binance answers ``-1013 Filter failure: ...`` for what these rules catch; checking them before
sending turns a round trip into an :class:`~tradeloop.errors.InvalidOrderError` at the ``ctx``
call that names the field and the value, as a backtest does. The filters come from
``exchangeInfo`` when the broker connects (:meth:`BinanceOrderValidator.set_filters`); before
that only the rules that need no venue data apply.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping

from tradeloop.errors import InvalidOrderError
from tradeloop.execution.asynchronous.brokers.binance.mapping import OrderFilters
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.types import Order, OrderClass, OrderType, TimeInForce

__all__ = ["CLIENT_ORDER_ID", "BinanceOrderValidator", "on_step"]

#: Binance's pattern for ``newClientOrderId``.
CLIENT_ORDER_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")

_REL = 1e-9


def on_step(value: float, step: float) -> bool:
    """Whether ``value`` is a whole multiple of ``step`` (a step of 0 allows anything), with a
    tolerance for binary floats (``0.3`` is a multiple of ``0.1``)."""
    if step <= 0:
        return True
    n = value / step
    return abs(n - round(n)) <= max(_REL * abs(n), 1e-7)


def _decimals(step: float) -> str:
    return f"{step:.8f}".rstrip("0").rstrip(".")


class BinanceOrderValidator(OrderValidator):
    """Core checks (:class:`OrderValidator`, fractions allowed) and Binance spot's: market and
    limit orders only, simple order class, ``gtc``/``ioc``/``fok`` for limits, a client order id
    Binance accepts, and each symbol's ``PRICE_FILTER`` (range, tick), ``LOT_SIZE`` (range,
    step) and ``MIN_NOTIONAL``/``NOTIONAL``. A market order's notional is checked against the
    last price (:meth:`set_price`), when one is known."""

    __slots__ = ("filters", "prices")

    def __init__(
        self,
        symbols: Collection[str] | None = None,
        filters: Mapping[str, OrderFilters] | None = None,
    ) -> None:
        super().__init__(symbols, True)
        self.filters: dict[str, OrderFilters] = dict(filters or {})
        self.prices: dict[str, float] = {}

    def set_filters(self, filters: Mapping[str, OrderFilters]) -> None:
        self.filters.update(filters)

    def set_price(self, symbol: str, price: float) -> None:
        self.prices[symbol] = price

    def validate(self, order: Order) -> None:
        super().validate(order)
        if order.type not in (OrderType.MARKET, OrderType.LIMIT):
            raise InvalidOrderError(
                "type", order.type.value, "Binance spot takes market and limit orders only"
            )
        if order.order_class is not OrderClass.SIMPLE:
            raise InvalidOrderError(
                "order_class", order.order_class.value, "Binance spot takes simple orders only"
            )
        if order.type is OrderType.LIMIT and order.tif is TimeInForce.DAY:
            raise InvalidOrderError(
                "tif", order.tif.value, "Binance has no day orders: use gtc, ioc or fok"
            )
        coid = order.client_order_id
        if not CLIENT_ORDER_ID.match(coid):
            raise InvalidOrderError(
                "client_order_id", coid, "must be 1..36 of letters, digits and . : / _ -"
            )
        f = self.filters.get(order.symbol)
        if f is None:
            return
        qty = float(order.qty)
        if f.min_qty > 0 and qty < f.min_qty * (1 - _REL):
            raise InvalidOrderError("qty", qty, f"below LOT_SIZE minQty {f.min_qty:g}")
        if f.max_qty > 0 and qty > f.max_qty * (1 + _REL):
            raise InvalidOrderError("qty", qty, f"above LOT_SIZE maxQty {f.max_qty:g}")
        if not on_step(qty, f.step_size):
            raise InvalidOrderError(
                "qty", qty, f"not a multiple of LOT_SIZE stepSize {_decimals(f.step_size)}"
            )
        price = order.limit_price
        if price is not None:
            if f.min_price > 0 and price < f.min_price * (1 - _REL):
                raise InvalidOrderError(
                    "limit_price", price, f"below PRICE_FILTER minPrice {f.min_price:g}"
                )
            if f.max_price > 0 and price > f.max_price * (1 + _REL):
                raise InvalidOrderError(
                    "limit_price", price, f"above PRICE_FILTER maxPrice {f.max_price:g}"
                )
            if not on_step(price, f.tick_size):
                raise InvalidOrderError(
                    "limit_price",
                    price,
                    f"not a multiple of PRICE_FILTER tickSize {_decimals(f.tick_size)}",
                )
        ref = price if price is not None else self.prices.get(order.symbol)
        if ref is None or not math.isfinite(ref):
            return
        notional = qty * ref
        if f.min_notional > 0 and notional < f.min_notional * (1 - _REL):
            raise InvalidOrderError(
                "qty",
                qty,
                f"notional {notional:g} (qty x price {ref:g}) below NOTIONAL minNotional "
                f"{f.min_notional:g}",
            )
        if f.max_notional > 0 and notional > f.max_notional * (1 + _REL):
            raise InvalidOrderError(
                "qty",
                qty,
                f"notional {notional:g} (qty x price {ref:g}) above NOTIONAL maxNotional "
                f"{f.max_notional:g}",
            )
