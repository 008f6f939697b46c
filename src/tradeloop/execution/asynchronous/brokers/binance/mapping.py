"""Binance spot's wire formats <-> tradeloop types. Pure functions: no I/O, no event loop.

Both directions live here, once: the broker renders requests and parses answers and stream
events; the loopback server (:mod:`tradeloop.testing.binance`) renders answers and events with
the same field names. Wire facts follow ``/work/shared/specs/binance.md`` (ccxt 4.5.90 and
binance-spot-api-docs): decimals are strings, times are epoch milliseconds, order ids are
integers unique per symbol.

Naming, chosen once for every module of the broker:

* a tradeloop symbol is Binance's pair id (``ACMEUSDT``); ccxt names it ``ACME/USDT``;
* a venue order id is ``"<pair>:<orderId>"`` (``ACMEUSDT:17``) and an execution id
  ``"<pair>:<tradeId>"``: Binance numbers orders and trades per symbol, and the pair in the id
  lets ``get_order`` find an order without asking which symbol it trades.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

from tradeloop.errors import BrokerError
from tradeloop.execution.core.reconcile import VenueFill
from tradeloop.execution.types import (
    Account,
    Bar,
    BrokerEvent,
    EventKind,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
)

__all__ = [
    "QUOTE_ASSETS",
    "MalformedMessageError",
    "OrderFilters",
    "account_from_binance",
    "bar_from_kline",
    "ccxt_symbol",
    "error_body",
    "event_from_execution_report",
    "execution_id",
    "fill_from_trade",
    "filters_from_symbol_info",
    "ms_to_ns",
    "ns_to_ms",
    "order_from_binance",
    "order_request",
    "positions_from_balances",
    "split_pair",
    "split_venue_id",
    "status_from_binance",
    "venue_order_id",
    "weight_headers",
    "ws_signature",
]

JSON = dict[str, Any]

#: Quote assets recognised at the end of a pair id, longest first where one ends another.
QUOTE_ASSETS: Final = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "EUR", "TRY", "BTC", "ETH", "BNB")

_NS_PER_MS: Final = 1_000_000

_STATUS: Final[Mapping[str, OrderStatus]] = {
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}

# executionReport ``x`` -> the event kind tradeloop acts on (TRADE: fill or partial_fill by X)
_EXEC_KIND: Final[Mapping[str, str]] = {
    "NEW": EventKind.NEW.value,
    "CANCELED": EventKind.CANCELED.value,
    "REJECTED": EventKind.REJECTED.value,
    "EXPIRED": EventKind.EXPIRED.value,
    "TRADE_PREVENTION": EventKind.EXPIRED.value,
    "REPLACED": EventKind.REPLACED.value,
}

_TYPES: Final[Mapping[OrderType, str]] = {OrderType.MARKET: "MARKET", OrderType.LIMIT: "LIMIT"}
_TYPES_BACK: Final[Mapping[str, OrderType]] = {
    "MARKET": OrderType.MARKET,
    "LIMIT": OrderType.LIMIT,
    "LIMIT_MAKER": OrderType.LIMIT,
    "STOP_LOSS": OrderType.STOP,
    "STOP_LOSS_LIMIT": OrderType.STOP_LIMIT,
    "TAKE_PROFIT": OrderType.STOP,
    "TAKE_PROFIT_LIMIT": OrderType.STOP_LIMIT,
}


class MalformedMessageError(BrokerError):
    """A Binance message lacks a field tradeloop needs, or holds a value it cannot read."""

    def __init__(self, what: str, field: str, value: object, reason: str) -> None:
        self.what = what
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{what}: {field}={value!r}: {reason}")


# ----------------------------------------------------------------------------------- scalars


def ms_to_ns(ms: int | float) -> int:
    return int(ms) * _NS_PER_MS


def ns_to_ms(ns: int) -> int:
    return ns // _NS_PER_MS


def _req(d: Mapping[str, Any], what: str, key: str) -> Any:
    value = d.get(key)
    if value is None:
        raise MalformedMessageError(what, key, None, "required")
    return value


def _num(d: Mapping[str, Any], what: str, key: str, default: float | None = None) -> float:
    value = d.get(key)
    if value is None:
        if default is not None:
            return default
        raise MalformedMessageError(what, key, None, "required")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise MalformedMessageError(what, key, value, "not a number") from None
    if not math.isfinite(out):
        raise MalformedMessageError(what, key, value, "not a finite number")
    return out


def _ms(d: Mapping[str, Any], what: str, *keys: str) -> int:
    for key in keys:
        value = d.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise MalformedMessageError(what, key, value, "not a time in ms")
            try:
                return ms_to_ns(int(value))
            except ValueError:
                raise MalformedMessageError(what, key, value, "not a time in ms") from None
    return 0


# ------------------------------------------------------------------------------------- names


def split_pair(pair: str, quotes: Iterable[str] = QUOTE_ASSETS) -> tuple[str, str]:
    """``ACMEUSDT`` -> ``("ACME", "USDT")`` (the quote is a known suffix; ValueError if none)."""
    for quote in quotes:
        if pair.endswith(quote) and len(pair) > len(quote):
            return pair[: -len(quote)], quote
    raise ValueError(f"{pair!r}: no known quote asset at its end ({', '.join(quotes)})")


def ccxt_symbol(pair: str) -> str:
    """``ACMEUSDT`` -> ``ACME/USDT``, ccxt's unified spot symbol."""
    base, quote = split_pair(pair)
    return f"{base}/{quote}"


def venue_order_id(pair: str, order_id: object) -> str:
    return f"{pair}:{order_id}"


def execution_id(pair: str, trade_id: object) -> str:
    return f"{pair}:{trade_id}"


def split_venue_id(venue_id: str) -> tuple[str, str]:
    """``ACMEUSDT:17`` -> ``("ACMEUSDT", "17")``; ValueError for anything else."""
    pair, sep, number = venue_id.rpartition(":")
    if not sep or not pair or not number.isdigit():
        raise ValueError(f"{venue_id!r} is not a Binance order id of the form PAIR:NUMBER")
    return pair, number


# ------------------------------------------------------------------------------------ orders


def order_request(order: Order) -> tuple[str, str, str, float, float | None, JSON]:
    """The arguments of ccxt's ``create_order`` for ``order``:
    ``(symbol, type, side, amount, price, params)``.

    A market order goes without a price: given one, ccxt would send ``quoteOrderQty`` instead
    of ``quantity``. The client order id travels as ``newClientOrderId``; a limit order names
    its time in force (Binance spot has no ``day``: the validator refuses it first).
    """
    otype = _TYPES.get(order.type)
    if otype is None:
        raise ValueError(f"order type {order.type.value!r} is not supported on Binance spot")
    params: JSON = {"newClientOrderId": order.client_order_id}
    price: float | None = None
    if order.type is OrderType.LIMIT:
        price = order.limit_price
        params["timeInForce"] = order.tif.value.upper()
    return ccxt_symbol(order.symbol), otype.lower(), order.side.value, order.qty, price, params


def status_from_binance(status: str, filled_qty: float) -> OrderStatus:
    """Binance's order status -> tradeloop's (NEW, PARTIALLY_FILLED, PENDING_CANCEL are working)."""
    terminal = _STATUS.get(status.upper())
    if terminal is not None:
        return terminal
    return OrderStatus.PARTIALLY_FILLED if filled_qty > 0 else OrderStatus.ACCEPTED


def _tif(value: object) -> TimeInForce:
    try:
        return TimeInForce(str(value or "GTC").lower())
    except ValueError:
        return TimeInForce.GTC


def order_from_binance(d: Mapping[str, Any]) -> Order:
    """A Binance order object (``POST``/``GET``/``DELETE /api/v3/order``, ``openOrders``,
    ``allOrders``) -> an :class:`Order` snapshot whose ``id`` is the venue id ``PAIR:orderId``.

    A cancel's answer names the order's own id ``origClientOrderId`` (its ``clientOrderId`` is
    the cancel request's), and is read so."""
    what = "order"
    if not isinstance(d, Mapping):
        raise MalformedMessageError(what, "order", d, "must be a JSON object")
    pair = str(_req(d, what, "symbol"))
    raw_type = str(_req(d, what, "type")).upper()
    otype = _TYPES_BACK.get(raw_type)
    if otype is None:
        raise MalformedMessageError(what, "type", raw_type, "not an order type tradeloop knows")
    raw_side = str(_req(d, what, "side")).lower()
    if raw_side not in ("buy", "sell"):
        raise MalformedMessageError(what, "side", raw_side, "must be BUY or SELL")
    coid = d.get("origClientOrderId") or _req(d, what, "clientOrderId")
    created = _ms(d, what, "time", "transactTime", "workingTime")
    price = _num(d, what, "price", default=0.0)
    order = Order(
        venue_order_id(pair, _req(d, what, "orderId")),
        pair,
        OrderSide(raw_side),
        _num(d, what, "origQty"),
        otype,
        _tif(d.get("timeInForce")),
        limit_price=price
        if price > 0 and otype in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        else None,
        stop_price=_num(d, what, "stopPrice", default=0.0) or None,
        client_order_id=str(coid),
        created_at=created,
    )
    filled = _num(d, what, "executedQty", default=0.0)
    order.filled_qty = filled
    if filled > 0:
        quote = _num(d, what, "cummulativeQuoteQty", default=0.0)
        order.avg_fill_price = quote / filled if quote > 0 else None
    order.status = status_from_binance(str(_req(d, what, "status")), filled)
    order.updated_at = _ms(d, what, "updateTime", "transactTime") or created
    order.broker_order_id = order.id
    if order.status is OrderStatus.REJECTED:
        order.reject_reason = "rejected by the venue"
    return order


def execution_report_order(d: Mapping[str, Any]) -> Order:
    """The order as an ``executionReport`` shows it after the event."""
    what = "executionReport"
    pair = str(_req(d, what, "s"))
    raw_type = str(_req(d, what, "o")).upper()
    otype = _TYPES_BACK.get(raw_type)
    if otype is None:
        raise MalformedMessageError(what, "o", raw_type, "not an order type tradeloop knows")
    raw_side = str(_req(d, what, "S")).lower()
    if raw_side not in ("buy", "sell"):
        raise MalformedMessageError(what, "S", raw_side, "must be BUY or SELL")
    coid = d.get("C") or _req(d, what, "c")  # on a cancel, C is the order's own id
    price = _num(d, what, "p", default=0.0)
    order = Order(
        venue_order_id(pair, _req(d, what, "i")),
        pair,
        OrderSide(raw_side),
        _num(d, what, "q"),
        otype,
        _tif(d.get("f")),
        limit_price=price
        if price > 0 and otype in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        else None,
        stop_price=_num(d, what, "P", default=0.0) or None,
        client_order_id=str(coid),
        created_at=_ms(d, what, "O", "T", "E"),
    )
    filled = _num(d, what, "z", default=0.0)
    order.filled_qty = filled
    if filled > 0:
        quote = _num(d, what, "Z", default=0.0)
        order.avg_fill_price = quote / filled if quote > 0 else None
    order.status = status_from_binance(str(_req(d, what, "X")), filled)
    order.updated_at = _ms(d, what, "T", "E") or order.created_at
    order.broker_order_id = order.id
    if order.status is OrderStatus.REJECTED:
        order.reject_reason = str(d.get("r") or "rejected by the venue")
    return order


def _commission(amount: float, asset: object, pair: str, price: float) -> float:
    """A fee in the quote asset (what the portfolio's cash pays); a fee in the base asset is
    valued at the fill price; one in a third asset (BNB) is not cash and counts 0."""
    if amount <= 0 or not isinstance(asset, str):
        return 0.0
    try:
        base, quote = split_pair(pair)
    except ValueError:
        return 0.0
    if asset == quote:
        return amount
    if asset == base:
        return amount * price
    return 0.0


def event_from_execution_report(d: Mapping[str, Any]) -> BrokerEvent | None:
    """An ``executionReport`` -> a :class:`BrokerEvent` (``None`` for an execution type
    tradeloop does not act on, e.g. ``PENDING_NEW``). A ``TRADE`` carries the fill, keyed by
    ``PAIR:t``."""
    what = "executionReport"
    if not isinstance(d, Mapping):
        raise MalformedMessageError(what, "event", d, "must be a JSON object")
    x = str(_req(d, what, "x")).upper()
    order = execution_report_order(d)
    ts = _ms(d, what, "T", "E") or order.updated_at
    if x == "TRADE":
        qty = _num(d, what, "l")
        price = _num(d, what, "L")
        fill = Fill(
            order.id,
            order.symbol,
            order.side,
            qty,
            price,
            _commission(_num(d, what, "n", default=0.0), d.get("N"), order.symbol, price),
            ts,
            execution_id(order.symbol, _req(d, what, "t")),
        )
        done = order.status is OrderStatus.FILLED
        kind = EventKind.FILL if done else EventKind.PARTIAL_FILL
        return BrokerEvent(kind.value, order, ts, fill)
    kind_name = _EXEC_KIND.get(x)
    if kind_name is None:
        return None
    return BrokerEvent(kind_name, order, ts)


def fill_from_trade(d: Mapping[str, Any]) -> VenueFill:
    """One element of ``GET /api/v3/myTrades`` -> a :class:`VenueFill` for reconciliation."""
    what = "trade"
    pair = str(_req(d, what, "symbol"))
    price = _num(d, what, "price")
    return VenueFill(
        execution_id(pair, _req(d, what, "id")),
        venue_order_id(pair, _req(d, what, "orderId")),
        _num(d, what, "qty"),
        price,
        _ms(d, what, "time"),
        None,
        _commission(
            _num(d, what, "commission", default=0.0), d.get("commissionAsset"), pair, price
        ),
    )


# ----------------------------------------------------------------------------------- account


def _balances(d: Mapping[str, Any]) -> dict[str, float]:
    raw = d.get("balances")
    if not isinstance(raw, list):
        raise MalformedMessageError("account", "balances", raw, "must be a list")
    out: dict[str, float] = {}
    for item in raw:
        if not isinstance(item, Mapping):
            raise MalformedMessageError("account", "balances", item, "must hold objects")
        asset = str(_req(item, "balance", "asset"))
        out[asset] = _num(item, "balance", "free", 0.0) + _num(item, "balance", "locked", 0.0)
    return out


def account_from_binance(
    d: Mapping[str, Any], quote: str, prices: Mapping[str, float], pairs: Iterable[str]
) -> Account:
    """``GET /api/v3/account`` -> an :class:`Account` in ``quote``: cash is the quote asset
    (free + locked), equity adds the traded base assets at ``prices`` (last prices by pair),
    buying power is the free quote. Spot: no leverage, no shorting."""
    balances = _balances(d)
    cash = balances.get(quote, 0.0)
    free = 0.0
    for item in d.get("balances") or ():
        if isinstance(item, Mapping) and item.get("asset") == quote:
            free = _num(item, "balance", "free", 0.0)
    equity = cash
    for pair in pairs:
        base, _ = split_pair(pair)
        equity += balances.get(base, 0.0) * prices.get(pair, 0.0)
    return Account(
        cash,
        equity,
        free,
        leverage=1.0,
        allow_short=False,
        currency=quote,
        id=str(d.get("uid", "")),
    )


def positions_from_balances(
    d: Mapping[str, Any], pairs: Iterable[str], prices: Mapping[str, float]
) -> list[Position]:
    """The base-asset holdings of ``pairs`` as positions (long only; spot has no average entry
    price: the last price stands in for it)."""
    balances = _balances(d)
    out: list[Position] = []
    for pair in pairs:
        base, _ = split_pair(pair)
        qty = balances.get(base, 0.0)
        if qty > 0:
            pos = Position(pair)
            pos.qty = qty
            pos.last_price = prices.get(pair, 0.0)
            pos.avg_price = pos.last_price
            out.append(pos)
    return out


# ------------------------------------------------------------------------------ market data


def bar_from_kline(k: Mapping[str, Any]) -> Bar:
    """A stream kline ``k`` object (``t, o, h, l, c, v, s``) -> a :class:`Bar` stamped at its
    open time."""
    what = "kline"
    return Bar(
        str(_req(k, what, "s")),
        _ms(k, what, "t"),
        _num(k, what, "o"),
        _num(k, what, "h"),
        _num(k, what, "l"),
        _num(k, what, "c"),
        _num(k, what, "v", default=0.0),
    )


# ---------------------------------------------------------------------------------- filters


class OrderFilters:
    """One symbol's order filters (``PRICE_FILTER``, ``LOT_SIZE``, ``MIN_NOTIONAL``/``NOTIONAL``)
    as numbers; 0 disables a bound, as on Binance."""

    __slots__ = (
        "max_notional",
        "max_price",
        "max_qty",
        "min_notional",
        "min_price",
        "min_qty",
        "step_size",
        "tick_size",
    )

    def __init__(
        self,
        *,
        min_price: float = 0.0,
        max_price: float = 0.0,
        tick_size: float = 0.0,
        min_qty: float = 0.0,
        max_qty: float = 0.0,
        step_size: float = 0.0,
        min_notional: float = 0.0,
        max_notional: float = 0.0,
    ) -> None:
        self.min_price = min_price
        self.max_price = max_price
        self.tick_size = tick_size
        self.min_qty = min_qty
        self.max_qty = max_qty
        self.step_size = step_size
        self.min_notional = min_notional
        self.max_notional = max_notional

    def to_json(self) -> list[JSON]:
        """The ``filters`` list of an exchangeInfo symbol."""

        def s(v: float) -> str:
            return f"{v:.8f}"

        return [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": s(self.min_price),
                "maxPrice": s(self.max_price),
                "tickSize": s(self.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": s(self.min_qty),
                "maxQty": s(self.max_qty),
                "stepSize": s(self.step_size),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": s(self.min_notional),
                "applyMinToMarket": True,
                "maxNotional": s(self.max_notional),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ]

    def __repr__(self) -> str:
        return (
            f"OrderFilters(tick={self.tick_size:g}, price={self.min_price:g}..{self.max_price:g}, "
            f"step={self.step_size:g}, qty={self.min_qty:g}..{self.max_qty:g}, "
            f"notional>={self.min_notional:g})"
        )


def filters_from_symbol_info(info: Mapping[str, Any]) -> OrderFilters:
    """An exchangeInfo ``symbols[]`` entry -> its :class:`OrderFilters`."""
    what = "exchangeInfo"
    out = OrderFilters()
    for f in info.get("filters") or ():
        if not isinstance(f, Mapping):
            continue
        kind = f.get("filterType")
        if kind == "PRICE_FILTER":
            out.min_price = _num(f, what, "minPrice", 0.0)
            out.max_price = _num(f, what, "maxPrice", 0.0)
            out.tick_size = _num(f, what, "tickSize", 0.0)
        elif kind == "LOT_SIZE":
            out.min_qty = _num(f, what, "minQty", 0.0)
            out.max_qty = _num(f, what, "maxQty", 0.0)
            out.step_size = _num(f, what, "stepSize", 0.0)
        elif kind in ("MIN_NOTIONAL", "NOTIONAL"):
            out.min_notional = _num(f, what, "minNotional", 0.0)
            out.max_notional = _num(f, what, "maxNotional", 0.0)
    return out


# ----------------------------------------------------------------------------- wire helpers


def ws_signature(secret: str, params: Mapping[str, object]) -> str:
    """The WebSocket API signature: HMAC-SHA256 (hex) over the params sorted by name, ``k=v``
    joined by ``&``, not URL-encoded, ``signature`` left out."""
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def error_body(text: str) -> tuple[int | None, str]:
    """``(code, msg)`` of a Binance error body found in ``text`` (ccxt's exception messages
    are ``"binance {json}"``); ``(None, "")`` when there is none."""
    start = text.find("{")
    if start < 0:
        return None, ""
    try:
        data = json.loads(text[start:])
    except ValueError:
        return None, ""
    if not isinstance(data, Mapping):
        return None, ""
    code = data.get("code")
    msg = data.get("msg")
    return (code if isinstance(code, int) and not isinstance(code, bool) else None), (
        str(msg) if msg is not None else ""
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == lowered:
            return str(value)
    return None


def weight_headers(headers: Mapping[str, str], limit: int, wall: float) -> dict[str, str]:
    """Binance's ``X-MBX-USED-WEIGHT-1M`` (weight used in the current calendar minute) as the
    generic ``X-Ratelimit-Limit/Remaining/Reset`` the shared
    :class:`~tradeloop.execution.asynchronous.components.rate_limiter.RateLimiter` reads, in
    weight units (``limit`` a minute; the reset is the next minute boundary after ``wall``, epoch
    seconds). ``Retry-After`` is passed through. Empty when the header is absent or garbled."""
    out: dict[str, str] = {}
    retry = _header(headers, "Retry-After")
    if retry is not None:
        out["Retry-After"] = retry
    used_text = _header(headers, "X-MBX-USED-WEIGHT-1M")
    if used_text is None:
        return out
    try:
        used = int(used_text.strip())
    except ValueError:
        return out
    if used < 0:
        return out
    out["X-Ratelimit-Limit"] = str(limit)
    out["X-Ratelimit-Remaining"] = str(max(limit - used, 0))
    out["X-Ratelimit-Reset"] = str(int(math.floor(wall / 60.0) + 1) * 60)
    return out
