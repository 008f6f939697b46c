"""The loopback Alpaca venue's state and rules, pure: no I/O, no event loop.

:class:`AlpacaVenue` is what the server's routes call. It holds a
:class:`~tradeloop.execution.core.exchange.SimulatedExchange` (no commission, fractional
quantities allowed, shorting as configured), the account, the UUIDs Alpaca uses for orders,
executions and assets, and Alpaca's request rules with its error codes. It takes decoded JSON
(bodies and query parameters) and answers JSON-ready values, or raises :class:`AlpacaError`
carrying the HTTP status and the ``{"code", "message"}`` body. Every order change becomes a
``trade_updates`` payload handed to ``on_event`` as it happens, in order.

Matching is the exchange's and only the exchange's: the venue decides *whether* Alpaca would
take a request, never *how* an order trades. Alpaca refuses what the exchange would accept and
then reject (an unaffordable order is a 403, not a ``rejected`` order), so those checks run
before the exchange sees the request.

Also here, as pure arithmetic: the rolling-window rate limit (:class:`RateLimitWindow`) and the
market session times the clock reports (:func:`market_session`).
"""

from __future__ import annotations

import math
import random
import time as _wall
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from tradeloop.errors import ConfigError, InvalidOrderError, TradeloopError
from tradeloop.execution.asynchronous.brokers.alpaca.mapping import (
    ALPACA_STATUS,
    account_to_json,
    asset_to_json,
    clock_to_json,
    decimal,
    fill_activity_to_json,
    format_ts,
    number,
    order_to_json,
    parse_ts,
    position_to_json,
)
from tradeloop.execution.core.exchange import SimulatedExchange
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.core.validation import MAX_CLIENT_ORDER_ID_LEN
from tradeloop.execution.types import (
    Account,
    Bar,
    Clock,
    EventKind,
    Fill,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    StopLossParams,
    TakeProfitParams,
    TimeInForce,
)

__all__ = [
    "ERR_FORBIDDEN",
    "ERR_INTERNAL",
    "ERR_INVALID",
    "ERR_MALFORMED",
    "ERR_METHOD",
    "ERR_NOT_FOUND",
    "ERR_RATE_LIMIT",
    "ERR_UNAUTHORIZED",
    "ERR_UNPROCESSABLE",
    "AlpacaError",
    "AlpacaOrderRequest",
    "AlpacaVenue",
    "RateLimitStatus",
    "RateLimitWindow",
    "check_price_increment",
    "market_session",
    "parse_order_request",
    "parse_replace_request",
]

JSON = dict[str, Any]
E = TypeVar("E", OrderSide, OrderType, TimeInForce)

# Alpaca's error codes (the ``code`` of every error body).
ERR_MALFORMED = 40010000  # 400: the body is not JSON
ERR_INVALID = 40010001  # 422: the request breaks a rule (also a reused client_order_id)
ERR_UNAUTHORIZED = 40110000  # 401
ERR_FORBIDDEN = 40310000  # 403: buying power, shares available, shorting
ERR_NOT_FOUND = 40410000  # 404
ERR_METHOD = 40510000  # 405
ERR_UNPROCESSABLE = 42210000  # 422: sub-penny price, order no longer open
ERR_RATE_LIMIT = 42910000  # 429
ERR_INTERNAL = 50010000  # 500

NS_PER_DAY = 86_400_000_000_000
_EPS = 1e-9
_ASSET_NAMESPACE = uuid.UUID("6f1c0d2e-58a4-4d59-9a5e-7c1b4c2e9a10")

# The order updates that are events of their own (fills are reported by the fill itself).
_EVENT = {
    OrderStatus.ACCEPTED: EventKind.NEW,
    OrderStatus.CANCELED: EventKind.CANCELED,
    OrderStatus.EXPIRED: EventKind.EXPIRED,
    OrderStatus.REPLACED: EventKind.REPLACED,
    OrderStatus.REJECTED: EventKind.REJECTED,
}


class AlpacaError(TradeloopError):
    """An error answer of the Alpaca API: HTTP ``status`` and the body ``{"code", "message"}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"HTTP {status} code={code}: {message}")

    def body(self) -> JSON:
        return {"code": self.code, "message": self.message}


def _invalid(message: str) -> AlpacaError:
    return AlpacaError(422, ERR_INVALID, message)


def _forbidden(message: str) -> AlpacaError:
    return AlpacaError(403, ERR_FORBIDDEN, message)


def _not_found(message: str) -> AlpacaError:
    return AlpacaError(404, ERR_NOT_FOUND, message)


def _unprocessable(message: str) -> AlpacaError:
    return AlpacaError(422, ERR_UNPROCESSABLE, message)


# ------------------------------------------------------------------------------ order requests


@dataclass(frozen=True, slots=True)
class AlpacaOrderRequest:
    """A ``POST /v2/orders`` body that passed Alpaca's rules (``client_order_id`` may be None:
    the venue then names the order)."""

    symbol: str
    side: OrderSide
    qty: float
    type: OrderType
    tif: TimeInForce
    limit_price: float | None = None
    stop_price: float | None = None
    trail_price: float | None = None
    trail_percent: float | None = None
    client_order_id: str | None = None
    order_class: OrderClass = OrderClass.SIMPLE
    take_profit: TakeProfitParams | None = None
    stop_loss: StopLossParams | None = None


_UNSUPPORTED_TIF = ("opg", "cls")
_UNSUPPORTED_CLASSES = ("mleg",)
_NEEDS_LIMIT = (OrderType.LIMIT, OrderType.STOP_LIMIT)
_NEEDS_STOP = (OrderType.STOP, OrderType.STOP_LIMIT)


def _choice(enum: type[E], key: str, raw: object) -> E:
    if raw is None or raw == "":
        raise _invalid(f"{key} is required")
    if isinstance(raw, str):
        try:
            return enum(raw.lower())
        except ValueError:
            pass
    allowed = ", ".join(m.value for m in enum)
    raise _invalid(f"invalid {key} {raw!r}: must be one of {allowed}")


def _time_in_force(value: object) -> TimeInForce:
    if isinstance(value, str) and value.lower() in _UNSUPPORTED_TIF:
        raise _invalid(f"time_in_force {value.lower()} is not supported by this server")
    return _choice(TimeInForce, "time_in_force", value)


def _positive(body: Mapping[str, Any], key: str, name: str | None = None) -> float | None:
    raw = body.get(key)
    if raw is None or raw == "":
        return None
    name = name or key
    try:
        value = number(raw)
    except ValueError:
        raise _invalid(f"invalid {name} {raw!r}: must be a number") from None
    if value <= 0.0:
        raise _invalid(f"invalid {name} {raw!r}: must be > 0")
    return value


def check_price_increment(field: str, value: float) -> None:
    """Alpaca's sub-penny rule: prices >= $1 have at most 2 decimals, below $1 at most 4.

    Raises :class:`AlpacaError` 422 with code 42210000 otherwise.
    """
    places = max(0, -int(Decimal(repr(float(value))).normalize().as_tuple().exponent))
    if places > (2 if value >= 1.0 else 4):
        raise _unprocessable(
            f"invalid {field} {value!r}. sub-penny increment does not fulfill minimum pricing "
            "criteria"
        )


def _check_fractional(qty: float, type: OrderType, tif: TimeInForce) -> None:
    if not qty.is_integer() and (type is not OrderType.MARKET or tif is not TimeInForce.DAY):
        raise _invalid("fractional orders must be market orders with time_in_force day")


def _client_order_id(body: Mapping[str, Any]) -> str | None:
    coid = body.get("client_order_id")
    if coid is None or coid == "":
        return None
    if not isinstance(coid, str):
        raise _invalid("client_order_id must be a string")
    if len(coid) > MAX_CLIENT_ORDER_ID_LEN:
        raise _invalid(f"client_order_id must be no more than {MAX_CLIENT_ORDER_ID_LEN} characters")
    return coid


def parse_order_request(body: object) -> AlpacaOrderRequest:
    """Check a ``POST /v2/orders`` body against Alpaca's rules (state-free ones only).

    Quantities and prices may be JSON numbers or strings. Raises :class:`AlpacaError` (422,
    code 40010001, or 42210000 for a sub-penny price) naming the first problem. Order classes
    ``bracket``, ``oco`` and ``oto`` come with ``take_profit`` ``{limit_price}`` and
    ``stop_loss`` ``{stop_price, limit_price}``: their shapes and prices are checked here, the
    rules that tie them together (which legs, time in force, prices in order) by the core when
    the venue books the order. ``mleg`` (options), ``notional`` orders, ``opg``/``cls`` and
    extended hours are refused as unsupported by this server.
    """
    if not isinstance(body, Mapping):
        raise _invalid("request body must be a JSON object")
    order_class = _order_class(body.get("order_class"))
    if body.get("legs") is not None:
        raise _invalid("legs are for multi-leg (mleg) orders, which this server does not support")
    take_profit: TakeProfitParams | None = None
    stop_loss: StopLossParams | None = None
    tp_body = _leg_body(body, "take_profit", ("limit_price",))
    sl_body = _leg_body(body, "stop_loss", ("stop_price", "limit_price"))
    if (tp_body is not None or sl_body is not None) and order_class is OrderClass.SIMPLE:
        raise _invalid("take_profit and stop_loss need order_class bracket, oco or oto")
    if tp_body is not None:
        tp = _positive(tp_body, "limit_price", "take_profit.limit_price")
        if tp is None:
            raise _invalid("take_profit.limit_price is required")
        check_price_increment("take_profit.limit_price", tp)
        take_profit = {"limit_price": tp}
    if sl_body is not None:
        stop = _positive(sl_body, "stop_price", "stop_loss.stop_price")
        if stop is None:
            raise _invalid("stop_loss.stop_price is required")
        check_price_increment("stop_loss.stop_price", stop)
        sl_limit = _positive(sl_body, "limit_price", "stop_loss.limit_price")
        if sl_limit is not None:
            check_price_increment("stop_loss.limit_price", sl_limit)
        stop_loss = {"stop_price": stop, "limit_price": sl_limit}
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise _invalid("symbol is required")
    side = _choice(OrderSide, "side", body.get("side"))
    type = _choice(OrderType, "type", body.get("type") or body.get("order_type"))
    tif = _time_in_force(body.get("time_in_force"))

    has_qty = body.get("qty") not in (None, "")
    if body.get("notional") not in (None, ""):
        if has_qty:
            raise _invalid("qty and notional are mutually exclusive: give one of them")
        raise _invalid("notional orders are not supported by this server: give qty instead")
    if not has_qty:
        raise _invalid("qty is required")
    qty = _positive(body, "qty")
    assert qty is not None
    if body.get("extended_hours") not in (None, False, "false", "False"):
        if type is not OrderType.LIMIT or tif is not TimeInForce.DAY:
            raise _invalid("extended hours orders must be limit orders with time_in_force day")
        raise _invalid("extended_hours orders are not supported by this server")

    limit_price = _positive(body, "limit_price")
    if (
        order_class is OrderClass.OCO
        and type is OrderType.LIMIT
        and limit_price is None
        and take_profit is not None
    ):
        limit_price = take_profit["limit_price"]  # an oco is its own take-profit
    stop_price = _positive(body, "stop_price")
    trail_price = _positive(body, "trail_price")
    trail_percent = _positive(body, "trail_percent")
    if type in _NEEDS_LIMIT and limit_price is None:
        raise _invalid(f"limit_price is required for {type.value} orders")
    if type not in _NEEDS_LIMIT and limit_price is not None:
        raise _invalid(f"limit_price is not allowed for {type.value} orders")
    if type in _NEEDS_STOP and stop_price is None:
        raise _invalid(f"stop_price is required for {type.value} orders")
    if type not in _NEEDS_STOP and stop_price is not None:
        raise _invalid(f"stop_price is not allowed for {type.value} orders")
    if type is OrderType.TRAILING_STOP:
        if (trail_price is None) == (trail_percent is None):
            raise _invalid("trailing_stop orders need exactly one of trail_price or trail_percent")
        if tif not in (TimeInForce.DAY, TimeInForce.GTC):
            raise _invalid("trailing_stop orders must have time_in_force day or gtc")
        if trail_percent is not None and trail_percent >= 100.0:
            raise _invalid(f"invalid trail_percent {trail_percent!r}: must be < 100")
    elif trail_price is not None or trail_percent is not None:
        raise _invalid(f"trail_price and trail_percent are not allowed for {type.value} orders")
    for field, price in (
        ("limit_price", limit_price),
        ("stop_price", stop_price),
        ("trail_price", trail_price),
    ):
        if price is not None:
            check_price_increment(field, price)
    _check_fractional(qty, type, tif)
    if order_class is not OrderClass.SIMPLE and not qty.is_integer():
        raise _invalid(f"fractional orders cannot be {order_class.value} orders")
    return AlpacaOrderRequest(
        symbol,
        side,
        qty,
        type,
        tif,
        limit_price=limit_price,
        stop_price=stop_price,
        trail_price=trail_price,
        trail_percent=trail_percent,
        client_order_id=_client_order_id(body),
        order_class=order_class,
        take_profit=take_profit,
        stop_loss=stop_loss,
    )


def _order_class(raw: object) -> OrderClass:
    if raw is None or raw == "":
        return OrderClass.SIMPLE
    if isinstance(raw, str):
        if raw.lower() in _UNSUPPORTED_CLASSES:
            raise _invalid(f"order_class {raw.lower()} is not supported by this server")
        try:
            return OrderClass(raw.lower())
        except ValueError:
            pass
    allowed = ", ".join(c.value for c in OrderClass)
    raise _invalid(f"invalid order_class {raw!r}: must be one of {allowed}")


def _leg_body(
    body: Mapping[str, Any], key: str, allowed: tuple[str, ...]
) -> Mapping[str, Any] | None:
    leg = body.get(key)
    if leg is None:
        return None
    if not isinstance(leg, Mapping):
        raise _invalid(f"{key} must be an object")
    for field in leg:
        if field not in allowed:
            raise _invalid(f"invalid {key}.{field}: {key} takes {', '.join(allowed)}")
    return leg


def parse_replace_request(body: object, old: Order) -> dict[str, Any]:
    """Check a ``PATCH /v2/orders/{id}`` body (``qty``, ``time_in_force``, ``limit_price``,
    ``stop_price``, ``trail``, ``client_order_id``) against the open order ``old``.

    Returns the changes for :meth:`SimulatedExchange.replace` (``trail`` becomes the order's
    kind of trail); raises :class:`AlpacaError` 422 like :func:`parse_order_request`.
    """
    if not isinstance(body, Mapping):
        raise _invalid("request body must be a JSON object")
    changes: dict[str, Any] = {}
    qty = _positive(body, "qty")
    if qty is not None:
        changes["qty"] = qty
    tif = old.tif
    if body.get("time_in_force") not in (None, ""):
        tif = changes["tif"] = _time_in_force(body.get("time_in_force"))
    for field, allowed in (("limit_price", _NEEDS_LIMIT), ("stop_price", _NEEDS_STOP)):
        price = _positive(body, field)
        if price is None:
            continue
        if old.type not in allowed:
            raise _invalid(f"{field} is not allowed for {old.type.value} orders")
        check_price_increment(field, price)
        changes[field] = price
    trail = _positive(body, "trail")
    if old.type is OrderType.TRAILING_STOP:
        if tif not in (TimeInForce.DAY, TimeInForce.GTC):
            raise _invalid("trailing_stop orders must have time_in_force day or gtc")
        if trail is not None and old.trail_price is not None:
            check_price_increment("trail", trail)
            changes["trail_price"] = trail
        elif trail is not None:
            if trail >= 100.0:
                raise _invalid(f"invalid trail {trail!r}: must be < 100 (a percentage)")
            changes["trail_percent"] = trail
    elif trail is not None:
        raise _invalid(f"trail is not allowed for {old.type.value} orders")
    _check_fractional(qty if qty is not None else old.remaining_qty, old.type, tif)
    coid = _client_order_id(body)
    if coid is not None:
        changes["client_order_id"] = coid
    return changes


# ------------------------------------------------------------------------------ query strings


def _query_choice(query: Mapping[str, str], key: str, default: str, allowed: Iterable[str]) -> str:
    value = (query.get(key) or default).lower()
    if value not in allowed:
        raise _invalid(f"invalid {key} {value!r}: must be one of {', '.join(allowed)}")
    return value


def _query_int(query: Mapping[str, str], key: str, default: int, lo: int, hi: int) -> int:
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(f"invalid {key} {raw!r}: must be an integer") from None
    if not lo <= value <= hi:
        raise _invalid(f"invalid {key} {value}: must be between {lo} and {hi}")
    return value


def _query_time(query: Mapping[str, str], key: str) -> int | None:
    raw = query.get(key)
    if raw is None or raw == "":
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 10**9
        return parse_ts(raw)
    except ValueError:
        raise _invalid(f"invalid {key} {raw!r}: must be an RFC 3339 timestamp or a date") from None


def _query_bool(query: Mapping[str, str], key: str) -> bool:
    raw = (query.get(key) or "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise _invalid(f"invalid {key} {raw!r}: must be true or false")
    return raw in ("true", "1")


# ------------------------------------------------------------------------------ the venue


class _Listener:
    """The exchange's listener: turns its synchronous callbacks into trade_updates payloads."""

    __slots__ = ("_after_fill", "venue")

    def __init__(self, venue: AlpacaVenue) -> None:
        self.venue = venue
        self._after_fill: Order | None = None

    def on_fill(self, fill: Fill) -> None:
        order = self.venue.exchange.book.get(fill.order_id)
        self._after_fill = order  # the order update that follows belongs to this fill
        self.venue._record_fill(fill, order)

    def on_order_update(self, order: Order) -> None:
        if order is self._after_fill:
            self._after_fill = None
            return
        kind = _EVENT.get(order.status)
        if kind is not None:
            self.venue._emit(
                {
                    "event": kind.value,
                    "order": self.venue.order_json(order),
                    "timestamp": format_ts(order.updated_at),
                }
            )


class AlpacaVenue:
    """One Alpaca account at a simulated venue (see the module docstring).

    ``symbols``: the tradable assets (``None``: any symbol). ``start``: the venue's time (int ns)
    before the first bar. ``reference_prices``: what orders are sized against before a symbol's
    first bar (Alpaca always knows a last price; a replay knows none until its first bar), used
    only to refuse what the account cannot afford. ``seed`` makes the UUIDs of orders,
    executions and the account reproducible. ``on_event`` receives every ``trade_updates``
    payload (the ``data`` of a stream message) as it happens; :attr:`events` keeps them all.
    """

    def __init__(
        self,
        *,
        symbols: Iterable[str] | None = None,
        initial_cash: float = 100_000.0,
        leverage: float = 1.0,
        allow_short: bool = True,
        start: int = 0,
        reference_prices: Mapping[str, float] | None = None,
        seed: int | None = None,
        exchange_name: str = "NASDAQ",
        on_event: Callable[[JSON], None] | None = None,
    ) -> None:
        self.symbols: tuple[str, ...] | None = tuple(symbols) if symbols is not None else None
        self.portfolio = Portfolio(initial_cash, leverage=leverage, allow_short=allow_short)
        self._listener = _Listener(self)
        self.exchange = SimulatedExchange(
            self.portfolio, symbols=self.symbols, fractional=True, listener=self._listener
        )
        self.exchange_name = exchange_name
        self.reference_prices = dict(reference_prices or {})
        self.start = start
        self.now = start
        self.is_open = True
        self.bars = 0
        self.on_event = on_event
        self.events: list[JSON] = []
        self.activities: list[JSON] = []
        self.fill_times: list[tuple[str, float, float]] = []  # (client id, cum qty, wall time)
        self._rng = random.Random(seed)
        self._uuids: dict[str, str] = {}  # internal id (order, execution) -> UUID
        self._internal: dict[str, str] = {}  # UUID -> internal id
        self.account_id = self._new_uuid()
        self.account_number = f"PA{self._rng.randrange(10**9, 10**10)}"
        self.last_equity = self.portfolio.equity
        self.lastday_prices: dict[str, float] = {}
        self._day = start // NS_PER_DAY

    # -- ids -----------------------------------------------------------------------------------

    def _new_uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def uuid_of(self, internal_id: str) -> str:
        """The UUID the venue shows for an exchange id (an order's or an execution's)."""
        found = self._uuids.get(internal_id)
        if found is None:
            found = self._uuids[internal_id] = self._new_uuid()
            self._internal[found] = internal_id
        return found

    @staticmethod
    def asset_id(symbol: str) -> str:
        """A symbol's asset UUID: the same in every run."""
        return str(uuid.uuid5(_ASSET_NAMESPACE, symbol))

    def _symbol_of(self, symbol_or_asset_id: str) -> str:
        for symbol in self.symbols or ():
            if self.asset_id(symbol) == symbol_or_asset_id:
                return symbol
        return symbol_or_asset_id

    # -- events --------------------------------------------------------------------------------

    def _emit(self, data: JSON) -> None:
        self.events.append(data)
        if self.on_event is not None:
            self.on_event(data)

    def _record_fill(self, fill: Fill, order: Order) -> None:
        execution_id = self.uuid_of(fill.execution_id)
        order_id = self.uuid_of(order.id)
        stamp = datetime.fromtimestamp(fill.ts // 10**9, tz=UTC).strftime("%Y%m%d%H%M%S")
        millis = fill.ts // 10**6 % 1000
        self.activities.append(
            fill_activity_to_json(
                fill,
                order,
                id=f"{stamp}{millis:03d}::{execution_id}",
                account_id=self.account_id,
                order_id=order_id,
                execution_id=execution_id,
            )
        )
        # when the venue filled it, by the wall clock: how long a fill takes to reach a client
        self.fill_times.append((order.client_order_id, order.filled_qty, _wall.time()))
        done = order.status is OrderStatus.FILLED
        self._emit(
            {
                "event": (EventKind.FILL if done else EventKind.PARTIAL_FILL).value,
                "order": self.order_json(order),
                "timestamp": format_ts(fill.ts),
                "execution_id": execution_id,
                "price": decimal(fill.price),
                "qty": decimal(fill.qty),
                "position_qty": decimal(self.portfolio.qty(order.symbol)),
            }
        )

    # -- rendering -----------------------------------------------------------------------------

    def order_json(self, order: Order, *, nested: bool = True) -> JSON:
        """An exchange order as Alpaca's order object, with the venue's UUIDs; an order with
        legs shows them (``legs``) when ``nested``."""
        return order_to_json(
            order,
            id=self.uuid_of(order.id),
            asset_id=self.asset_id(order.symbol),
            replaced_by=None if order.replaced_by is None else self.uuid_of(order.replaced_by),
            replaces=None if order.replaces is None else self.uuid_of(order.replaces),
            legs=[self.order_json(leg) for leg in order.legs] if nested and order.legs else None,
        )

    def _order(self, order_id: str) -> Order:
        order = self.exchange.book.orders.get(self._internal.get(order_id, ""))
        if order is None:
            raise _not_found("order not found")
        return order

    # -- checks Alpaca makes before it takes an order ------------------------------------------

    def _check_unique(self, client_order_id: str) -> None:
        if self.exchange.book.by_client_id(client_order_id) is not None:
            raise _invalid("client_order_id must be unique")

    def _held(self, symbol: str, side: OrderSide, ignore: Order | None) -> float:
        """Shares of ``symbol`` that open ``side`` orders hold; linked exits (a bracket's
        take-profit and stop-loss, an oco's two orders) hold the same shares: once."""
        held = 0.0
        groups: set[str] = set()
        for o in self.exchange.book.open_orders(symbol):
            if o.side is not side or o is ignore:
                continue
            if o.order_class is not OrderClass.SIMPLE and o.is_exit_leg:
                key = o.parent_id or o.id
                if key in groups:
                    continue
                groups.add(key)
            held += o.remaining_qty
        return held

    def _check_position(self, order: Order, ignore: Order | None) -> None:
        """Alpaca sells only shares not held for other orders and never flips a position in one
        order (long to short or short to long); it shorts only whole shares, if allowed."""
        held = self.portfolio.qty(order.symbol)
        closing = held > _EPS if order.side is OrderSide.SELL else held < -_EPS
        if closing:
            available = abs(held) - self._held(order.symbol, order.side, ignore)
            if order.qty > available + _EPS:
                direction = "long to short" if held > 0 else "short to long"
                raise _forbidden(
                    f"insufficient qty available for order (requested: {order.qty:g}, "
                    f"available: {max(available, 0.0):g}); an order cannot take a position "
                    f"from {direction}"
                )
        elif order.side is OrderSide.SELL:
            if not self.portfolio.allow_short:
                raise _forbidden("account is not allowed to short")
            if not order.qty.is_integer():
                raise _forbidden("fractional orders cannot be sold short")

    def _check_buying_power(self, order: Order, ignore: Order | None) -> None:
        """The exchange's own admission check, asked first: Alpaca answers 403 where the
        exchange would book a rejected order. Before a symbol's first bar, the reference prices
        stand in for its last price."""
        reason = self.exchange.admission_reason(order, ignore, self.reference_prices)
        if reason is not None:
            raise _forbidden(reason)

    # -- orders --------------------------------------------------------------------------------

    def submit(self, body: object) -> JSON:
        """``POST /v2/orders``: the new order (status ``new``). ``new`` goes to the stream."""
        req = parse_order_request(body)
        coid = req.client_order_id or self._new_uuid()
        self._check_unique(coid)
        params: dict[str, Any] = {
            "tif": req.tif,
            "limit_price": req.limit_price,
            "stop_price": req.stop_price,
            "trail_price": req.trail_price,
            "trail_percent": req.trail_percent,
            "client_order_id": coid,
            "order_class": req.order_class,
            "take_profit": req.take_profit,
            "stop_loss": req.stop_loss,
        }
        try:
            candidate = self.exchange.book.new_order(
                req.symbol, req.side, req.qty, req.type, now=self.now, **params
            )
        except InvalidOrderError as exc:
            raise _invalid(str(exc)) from None
        self._check_position(candidate, None)
        self._check_buying_power(candidate, None)
        order = self.exchange.submit(
            req.symbol, req.side, req.qty, req.type, now=self.now, **params
        )
        return self.order_json(order)

    def get_order(self, order_id: str) -> JSON:
        return self.order_json(self._order(order_id))

    def get_order_by_client_id(self, client_order_id: str | None) -> JSON:
        if not client_order_id:
            raise _invalid("client_order_id is required")
        order = self.exchange.book.by_client_id(client_order_id)
        if order is None:
            raise _not_found("order not found")
        return self.order_json(order)

    def list_orders(self, query: Mapping[str, str]) -> list[JSON]:
        """``GET /v2/orders``: ``status`` open|closed|all, ``limit`` (50, at most 500),
        ``after``/``until`` (submission time, exclusive), ``direction`` (desc), ``side``,
        ``symbols`` (comma-separated), ``nested`` (legs shown inside their order, not on
        their own; by default every order is listed flat, legs included)."""
        status = _query_choice(query, "status", "open", ("open", "closed", "all"))
        limit = _query_int(query, "limit", 50, 1, 500)
        after = _query_time(query, "after")
        until = _query_time(query, "until")
        direction = _query_choice(query, "direction", "desc", ("asc", "desc"))
        side = query.get("side")
        if side:
            side = _choice(OrderSide, "side", side).value
        nested = _query_bool(query, "nested")
        raw_symbols = query.get("symbols") or ""
        symbols = {s.strip() for s in raw_symbols.split(",") if s.strip()}
        picked = [
            o
            for o in self.exchange.book.orders.values()
            if (status == "all" or o.is_open == (status == "open"))
            and (after is None or o.created_at > after)
            and (until is None or o.created_at < until)
            and (not side or o.side.value == side)
            and (not symbols or o.symbol in symbols)
            and not (nested and o.parent_id is not None)
        ]
        if direction == "desc":
            picked.reverse()
        return [self.order_json(o, nested=nested) for o in picked[:limit]]

    def replace(self, order_id: str, body: object) -> JSON:
        """``PATCH /v2/orders/{id}``: a new order with a new id; the old one ends ``replaced``."""
        old = self._order(order_id)
        if not old.is_open:
            raise _unprocessable(f'order is already in "{ALPACA_STATUS[old.status]}" state')
        changes = parse_replace_request(body, old)
        coid = changes.get("client_order_id") or self._new_uuid()
        self._check_unique(coid)
        changes["client_order_id"] = coid
        try:
            candidate = self.exchange.book.replacement(old, self.now, **changes)
        except InvalidOrderError as exc:
            raise _invalid(str(exc)) from None
        self._check_position(candidate, old)
        self._check_buying_power(candidate, old)
        return self.order_json(self.exchange.replace(old, self.now, **changes))

    def cancel(self, order_id: str) -> None:
        """``DELETE /v2/orders/{id}``: a cancel request; ``canceled`` goes to the stream."""
        order = self._order(order_id)
        if not self.exchange.cancel(order, self.now):
            raise _unprocessable(f'order is already in "{ALPACA_STATUS[order.status]}" state')

    def cancel_all(self) -> list[JSON]:
        """``DELETE /v2/orders``: the 207 body, one entry per open order."""
        out = []
        for order in self.exchange.book.open_orders():
            self.exchange.cancel(order, self.now)
            out.append(
                {"id": self.uuid_of(order.id), "status": 200, "body": self.order_json(order)}
            )
        return out

    # -- positions -----------------------------------------------------------------------------

    def _position_json(self, symbol: str) -> JSON:
        pos = self.portfolio.positions[symbol]
        side = OrderSide.SELL if pos.qty > 0 else OrderSide.BUY
        held = self._held(symbol, side, None)
        return position_to_json(
            pos,
            asset_id=self.asset_id(symbol),
            exchange=self.exchange_name,
            lastday_price=self.lastday_prices.get(symbol),
            qty_available=pos.qty - held if pos.qty > 0 else pos.qty + held,
        )

    def _open_positions(self) -> list[str]:
        return sorted(s for s, p in self.portfolio.positions.items() if abs(p.qty) > _EPS)

    def positions(self) -> list[JSON]:
        return [self._position_json(s) for s in self._open_positions()]

    def position(self, symbol_or_asset_id: str) -> JSON:
        symbol = self._symbol_of(symbol_or_asset_id)
        if symbol not in self._open_positions():
            raise _not_found("position does not exist")
        return self._position_json(symbol)

    def close_position(self, symbol_or_asset_id: str, query: Mapping[str, str]) -> JSON:
        """``DELETE /v2/positions/{symbol}`` (``qty`` or ``percentage``): the market order
        that closes (part of) the position."""
        symbol = self._symbol_of(symbol_or_asset_id)
        if symbol not in self._open_positions():
            raise _not_found("position does not exist")
        held = self.portfolio.qty(symbol)
        qty = _positive(query, "qty")
        percentage = _positive(query, "percentage")
        if qty is not None and percentage is not None:
            raise _invalid("qty and percentage are mutually exclusive: give one of them")
        if percentage is not None:
            if percentage > 100.0:
                raise _invalid(f"invalid percentage {percentage!r}: must be <= 100")
            qty = round(abs(held) * percentage / 100.0, 9)
        elif qty is None:
            qty = abs(held)
        side = OrderSide.SELL if held > 0 else OrderSide.BUY
        body = {"symbol": symbol, "qty": qty, "side": side.value, "type": "market"}
        return self.submit({**body, "time_in_force": "day"})

    def close_all(self, query: Mapping[str, str] | None = None) -> list[JSON]:
        """``DELETE /v2/positions`` (``cancel_orders``: cancel open orders first): the 207 body,
        one entry per position."""
        if _query_bool(query or {}, "cancel_orders"):
            self.cancel_all()
        out: list[JSON] = []
        for symbol in self._open_positions():
            try:
                order = self.close_position(symbol, {})
            except AlpacaError as exc:
                out.append({"symbol": symbol, "status": exc.status, "body": exc.body()})
            else:
                out.append(
                    {"symbol": symbol, "status": 200, "order_id": order["id"], "body": order}
                )
        return out

    # -- account, clock, assets, activities ----------------------------------------------------

    def account(self) -> JSON:
        """``GET /v2/account``. Buying power is what new orders may still use: open orders'
        commitments are taken off, as the venue's own checks do."""
        pf = self.portfolio
        _, open_orders = self.exchange.book.commitments()
        reserved = pf.committed(open_orders, {**self.reference_prices, **self.exchange.last_prices})
        account = Account(
            pf.cash,
            pf.equity,
            max(0.0, pf.buying_power - reserved),
            leverage=pf.leverage,
            allow_short=pf.allow_short,
            id=self.account_id,
        )
        values = [p.market_value for p in pf.positions.values()]
        return account_to_json(
            account,
            account_number=self.account_number,
            long_market_value=sum(v for v in values if v > 0),
            short_market_value=sum(v for v in values if v < 0),
            last_equity=self.last_equity,
            created_at=self.start,
        )

    def clock(self) -> JSON:
        """``GET /v2/clock``: the time of the latest bar, open while the replay runs."""
        next_open, next_close = market_session(self.now)
        return clock_to_json(Clock(self.now, self.is_open, next_open, next_close))

    def asset(self, symbol_or_asset_id: str) -> JSON:
        symbol = self._symbol_of(symbol_or_asset_id)
        if self.symbols is not None and symbol not in self.symbols:
            raise _not_found(f"asset not found for {symbol}")
        return asset_to_json(
            symbol,
            id=self.asset_id(symbol),
            exchange=self.exchange_name,
            shortable=self.portfolio.allow_short,
        )

    def assets(self) -> list[JSON]:
        return [self.asset(s) for s in self.symbols or ()]

    def fill_activities(
        self, query: Mapping[str, str], activity_type: str | None = None
    ) -> list[JSON]:
        """``GET /v2/account/activities[/{type}]``: the FILL activities (the only kind this
        venue has), filtered by ``activity_types``, ``after``/``until`` (exclusive),
        ``direction`` (desc) and paged by ``page_size`` (100, at most 100) and ``page_token``
        (the id of the last activity of the previous page)."""
        types = [activity_type] if activity_type else []
        types += [t for t in (query.get("activity_types") or "").split(",") if t.strip()]
        after = _query_time(query, "after")
        until = _query_time(query, "until")
        direction = _query_choice(query, "direction", "desc", ("asc", "desc"))
        page_size = _query_int(query, "page_size", 100, 1, 100)
        token = query.get("page_token")
        if types and "FILL" not in (t.strip().upper() for t in types):
            return []
        picked = [
            a
            for a in self.activities
            if (after is None or parse_ts(a["transaction_time"]) > after)
            and (until is None or parse_ts(a["transaction_time"]) < until)
        ]
        if direction == "desc":
            picked.reverse()
        if token:
            ids = [a["id"] for a in picked]
            if token not in ids:
                raise _invalid(f"invalid page_token {token!r}")
            picked = picked[ids.index(token) + 1 :]
        return picked[:page_size]

    # -- simulated time ------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        """One bar of the replay: the venue's clock moves to it, then open orders are matched
        against it (events go to ``on_event``) and positions are marked to its close."""
        day = bar.ts // NS_PER_DAY
        if day > self._day:
            self._day = day
            self.last_equity = self.portfolio.equity
            self.lastday_prices = dict(self.exchange.last_prices)
        self.now = max(self.now, bar.ts)
        self.bars += 1
        self.exchange.on_bar(bar.symbol, bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume)

    def end_of_data(self) -> None:
        """The replay ended: the market closes and ``day`` orders expire."""
        self.exchange.expire_all(self.now)
        self.is_open = False

    def state(self) -> JSON:
        """What the venue holds, for tests (``GET /_tradeloop/state``): plain numbers for the
        account and positions, Alpaca order objects for every order ever placed."""
        pf = self.portfolio
        return {
            "clock": format_ts(self.now),
            "is_open": self.is_open,
            "bars": self.bars,
            "cash": pf.cash,
            "equity": pf.equity,
            "buying_power": pf.buying_power,
            "positions": [
                {
                    "symbol": s,
                    "qty": pf.positions[s].qty,
                    "avg_entry_price": pf.positions[s].avg_price,
                    "current_price": pf.positions[s].last_price,
                }
                for s in self._open_positions()
            ],
            "orders": [self.order_json(o) for o in self.exchange.book.orders.values()],
            "fills": len(self.exchange.fills),
            "fill_times": [
                {"client_order_id": c, "cum_qty": q, "wall": w} for c, q, w in self.fill_times
            ],
            "events": len(self.events),
        }


# ------------------------------------------------------------------------------ rate limit


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """The answer of :meth:`RateLimitWindow.hit`: whether the request may go on, and the
    values of Alpaca's ``X-Ratelimit-*`` headers (``reset`` in epoch seconds)."""

    allowed: bool
    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        return {
            "X-Ratelimit-Limit": str(self.limit),
            "X-Ratelimit-Remaining": str(self.remaining),
            "X-Ratelimit-Reset": str(self.reset),
        }


class RateLimitWindow:
    """At most ``limit`` requests per key in any ``window`` seconds (a rolling window).

    A refused request is not counted. ``reset`` is when the oldest counted request leaves the
    window, freeing a slot.
    """

    __slots__ = ("_hits", "limit", "window")

    def __init__(self, limit: int = 200, window: float = 60.0) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError("rate_limit", limit, "must be an integer >= 1")
        if isinstance(window, bool) or not isinstance(window, int | float) or not window > 0:
            raise ConfigError("rate_window", window, "must be a number of seconds > 0")
        self.limit = limit
        self.window = float(window)
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str, now: float) -> RateLimitStatus:
        """Count one request of ``key`` at ``now`` (seconds) if the window has room."""
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        allowed = len(hits) < self.limit
        if allowed:
            hits.append(now)
        reset = math.ceil(hits[0] + self.window)
        return RateLimitStatus(allowed, self.limit, self.limit - len(hits), reset)


# ------------------------------------------------------------------------------ market hours

_NEW_YORK = ZoneInfo("America/New_York")
_OPEN = time(9, 30)
_CLOSE = time(16, 0)


def market_session(now: int) -> tuple[int, int]:
    """``(next_open, next_close)`` after ``now`` (int ns) for the US equity market's regular
    session, 09:30-16:00 New York time on weekdays (exchange holidays are not modelled)."""
    local = datetime.fromtimestamp(now / 1e9, tz=_NEW_YORK)

    def following(at: time) -> int:
        for days in range(8):
            day = local.date() + timedelta(days=days)
            moment = datetime.combine(day, at, tzinfo=_NEW_YORK)
            if day.weekday() < 5 and moment > local:
                return int(moment.timestamp()) * 10**9
        raise AssertionError("unreachable: a weekday comes within a week")

    return following(_OPEN), following(_CLOSE)
