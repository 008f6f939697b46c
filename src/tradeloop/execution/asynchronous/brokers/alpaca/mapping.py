"""Alpaca's JSON <-> tradeloop types. Pure functions: no I/O, no event loop.

Both directions live here, once: the broker renders requests and parses answers and stream
messages; the loopback server (:mod:`tradeloop.testing.alpaca`) parses requests and renders
answers. Wire facts follow Alpaca's Trading API v2: decimals are JSON strings in responses
(requests may use numbers or strings), absent values are explicit ``null``, timestamps are
RFC 3339 with up to nine fractional digits, ids are UUIDs.

A message that lacks a field tradeloop needs raises :class:`MalformedMessageError` naming it;
fields tradeloop does not use are ignored, and unknown values of open-ended fields (an order
status, an event kind) are tolerated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tradeloop.errors import BrokerError
from tradeloop.execution.core.book import class_params
from tradeloop.execution.core.reconcile import VenueFill
from tradeloop.execution.types import (
    Account,
    Bar,
    BrokerEvent,
    Clock,
    EventKind,
    Fill,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
)

__all__ = [
    "ALPACA_STATUS",
    "MalformedMessageError",
    "account_from_json",
    "account_to_json",
    "asset_to_json",
    "bar_from_json",
    "bar_to_json",
    "clock_from_json",
    "clock_to_json",
    "decimal",
    "fill_activity_to_json",
    "format_ts",
    "number",
    "order_from_json",
    "order_request_json",
    "order_to_json",
    "parse_ts",
    "position_from_json",
    "position_to_json",
    "replace_request_json",
    "status_from_alpaca",
    "trade_update_from_json",
]

JSON = dict[str, Any]


class MalformedMessageError(BrokerError):
    """A broker message lacks a field tradeloop needs, or holds a value it cannot read."""

    def __init__(self, what: str, field: str, value: object, reason: str) -> None:
        self.what = what
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{what}: {field}={value!r}: {reason}")


# ----------------------------------------------------------------------------------- scalars

_TS = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:?\d\d)?$"
)


def parse_ts(text: str) -> int:
    """RFC 3339 timestamp -> int nanoseconds since the epoch (UTC). Keeps all nine digits."""
    m = _TS.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second, frac, tz = m.groups()
    dt = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    seconds = int(dt.timestamp())
    if tz and tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    nanos = int((frac or "").ljust(9, "0")) if frac else 0
    return seconds * 1_000_000_000 + nanos


def format_ts(ns: int) -> str:
    """Int nanoseconds -> RFC 3339 in UTC with ``Z``; fractional digits only as many as needed
    (none, 6 or 9)."""
    seconds, nanos = divmod(int(ns), 1_000_000_000)
    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos == 0:
        return base + "Z"
    if nanos % 1000 == 0:
        return f"{base}.{nanos // 1000:06d}Z"
    return f"{base}.{nanos:09d}Z"


def decimal(value: float | None) -> str | None:
    """A float as Alpaca writes decimals: a JSON string, whole numbers without ``.0``."""
    if value is None:
        return None
    f = float(value)
    if f.is_integer() and abs(f) < 1e15:
        return str(int(f))
    return repr(f)


def number(value: object) -> float:
    """A decimal from JSON (string or number) -> float. Raises ValueError if it is neither."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int | float):
        f = float(value)
    elif isinstance(value, str):
        f = float(value.strip())
    else:
        raise ValueError(f"not a number: {value!r}")
    if not math.isfinite(f):
        raise ValueError(f"not a finite number: {value!r}")
    return f


def _req(d: Mapping[str, Any], what: str, key: str) -> Any:
    value = d.get(key)
    if value is None:
        raise MalformedMessageError(what, key, value, "required")
    return value


def _num(d: Mapping[str, Any], what: str, key: str, default: float | None = None) -> float:
    value = d.get(key)
    if value is None:
        if default is not None:
            return default
        raise MalformedMessageError(what, key, value, "required")
    try:
        return number(value)
    except ValueError as exc:
        raise MalformedMessageError(what, key, value, str(exc)) from None


def _opt_num(d: Mapping[str, Any], what: str, key: str) -> float | None:
    return None if d.get(key) is None else _num(d, what, key)


def _ts(d: Mapping[str, Any], what: str, key: str, default: int | None = None) -> int:
    value = d.get(key)
    if value is None:
        if default is not None:
            return default
        raise MalformedMessageError(what, key, value, "required")
    try:
        return parse_ts(value)
    except ValueError as exc:
        raise MalformedMessageError(what, key, value, str(exc)) from None


def _enum(enum: type[Any], d: Mapping[str, Any], what: str, key: str) -> Any:
    value = _req(d, what, key)
    try:
        return enum(str(value).lower())
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise MalformedMessageError(what, key, value, f"must be one of: {allowed}") from None


# ------------------------------------------------------------------------------------ orders

# Alpaca status -> tradeloop status. Statuses in which an order is still working map to
# ACCEPTED or PARTIALLY_FILLED by its filled quantity (see status_from_alpaca).
_TERMINAL = {
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "replaced": OrderStatus.REPLACED,
    "rejected": OrderStatus.REJECTED,
}

ALPACA_STATUS: dict[OrderStatus, str] = {
    OrderStatus.NEW: "pending_new",
    OrderStatus.HELD: "held",
    OrderStatus.ACCEPTED: "new",
    OrderStatus.PARTIALLY_FILLED: "partially_filled",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELED: "canceled",
    OrderStatus.EXPIRED: "expired",
    OrderStatus.REPLACED: "replaced",
    OrderStatus.REJECTED: "rejected",
}
"""tradeloop status -> the Alpaca status a venue reports for it."""


def status_from_alpaca(status: str, filled_qty: float) -> OrderStatus:
    """Any Alpaca status (``new``, ``pending_cancel``, ``done_for_day``, ``suspended``, ...) ->
    tradeloop's: terminal ones map one to one, ``held`` (a leg waiting for its entry) too; every
    other status means the order is working."""
    terminal = _TERMINAL.get(status.lower())
    if terminal is not None:
        return terminal
    if status.lower() == "held":
        return OrderStatus.HELD
    return OrderStatus.PARTIALLY_FILLED if filled_qty > 0 else OrderStatus.ACCEPTED


def order_from_json(d: Mapping[str, Any]) -> Order:
    """An Alpaca order object -> an :class:`Order` snapshot (``id`` is Alpaca's id)."""
    what = "order"
    if not isinstance(d, Mapping):
        raise MalformedMessageError(what, "order", d, "must be a JSON object")
    raw_class = d.get("order_class") or "simple"
    try:
        order_class = OrderClass(str(raw_class).lower())
    except ValueError:
        raise MalformedMessageError(
            what, "order_class", raw_class, "not supported (simple, bracket, oco, oto)"
        ) from None
    raw_legs = d.get("legs")
    if raw_legs is not None and not isinstance(raw_legs, list):
        raise MalformedMessageError(what, "legs", raw_legs, "must be a list of orders or null")
    if d.get("qty") is None:
        raise MalformedMessageError(
            what, "qty", None, "required (notional orders are not supported)"
        )
    otype = d.get("type") or d.get("order_type")
    order = Order(
        str(_req(d, what, "id")),
        str(_req(d, what, "symbol")),
        _enum(OrderSide, d, what, "side"),
        _num(d, what, "qty"),
        _enum(OrderType, {"type": otype}, what, "type"),
        _time_in_force(d, what),
        limit_price=_opt_num(d, what, "limit_price"),
        stop_price=_opt_num(d, what, "stop_price"),
        trail_price=_opt_num(d, what, "trail_price"),
        trail_percent=_opt_num(d, what, "trail_percent"),
        client_order_id=str(_req(d, what, "client_order_id")),
        created_at=_ts(d, what, "created_at"),
    )
    order.filled_qty = _num(d, what, "filled_qty", default=0.0)
    avg = _opt_num(d, what, "filled_avg_price")
    order.avg_fill_price = avg if order.filled_qty > 0 else None
    order.status = status_from_alpaca(str(_req(d, what, "status")), order.filled_qty)
    order.updated_at = _ts(d, what, "updated_at", default=order.created_at)
    order.replaced_by = None if d.get("replaced_by") is None else str(d["replaced_by"])
    order.replaces = None if d.get("replaces") is None else str(d["replaces"])
    order.broker_order_id = order.id
    if order.status is OrderStatus.REJECTED:
        order.reject_reason = str(d.get("reject_reason") or "rejected by the venue")
    order.order_class = order_class
    if raw_legs:
        order.legs = tuple(order_from_json(leg) for leg in raw_legs)
        for leg in order.legs:
            leg.parent_id = order.id
    return order


def _time_in_force(d: Mapping[str, Any], what: str) -> TimeInForce:
    value = str(_req(d, what, "time_in_force")).lower()
    try:
        return TimeInForce(value)
    except ValueError:
        raise MalformedMessageError(
            what, "time_in_force", value, "not supported by tradeloop (day, gtc, ioc, fok)"
        ) from None


def order_to_json(
    order: Order,
    *,
    id: str,
    asset_id: str,
    replaced_by: str | None = None,
    replaces: str | None = None,
    status: str | None = None,
    legs: list[JSON] | None = None,
) -> JSON:
    """An :class:`Order` as an Alpaca order object (what the venue answers and streams).

    ``id``, ``replaced_by`` and ``replaces`` are the venue's UUIDs; ``status`` overrides the
    Alpaca status (``pending_cancel``, say); ``legs``: the order's legs, rendered (``null``
    for a simple order, or a listing that shows legs on their own).
    """
    created = format_ts(order.created_at)
    updated = format_ts(order.updated_at)
    st = order.status
    return {
        "id": id,
        "client_order_id": order.client_order_id,
        "created_at": created,
        "updated_at": updated,
        "submitted_at": created,
        "filled_at": updated if st is OrderStatus.FILLED else None,
        "expired_at": updated if st is OrderStatus.EXPIRED else None,
        "expires_at": None,
        "canceled_at": updated if st is OrderStatus.CANCELED else None,
        "failed_at": updated if st is OrderStatus.REJECTED else None,
        "replaced_at": updated if st is OrderStatus.REPLACED else None,
        "replaced_by": replaced_by,
        "replaces": replaces,
        "asset_id": asset_id,
        "symbol": order.symbol,
        "asset_class": "us_equity",
        "notional": None,
        "qty": decimal(order.qty),
        "filled_qty": decimal(order.filled_qty),
        "filled_avg_price": decimal(order.avg_fill_price),
        "order_class": order.order_class.value,
        "order_type": order.type.value,
        "type": order.type.value,
        "side": order.side.value,
        "position_intent": None,
        "time_in_force": order.tif.value,
        "limit_price": decimal(order.limit_price),
        "stop_price": decimal(order.stop_price),
        "status": status or ALPACA_STATUS[st],
        "extended_hours": False,
        "legs": legs,
        "trail_percent": decimal(order.trail_percent),
        "trail_price": decimal(order.trail_price),
        "hwm": decimal(order.trail_ref) if order.type is OrderType.TRAILING_STOP else None,
        "subtag": None,
        "source": None,
    }


def order_request_json(order: Order) -> JSON:
    """The body of ``POST /v2/orders`` for ``order`` (decimals as strings, as Alpaca's docs).

    An order with legs (bracket, oco, oto) goes as one request: ``order_class`` with
    ``take_profit`` ``{limit_price}`` and ``stop_loss`` ``{stop_price, limit_price}``; an oco
    names its limit price only as its take-profit's, as Alpaca's examples do."""
    body: JSON = {
        "symbol": order.symbol,
        "qty": decimal(order.qty),
        "side": order.side.value,
        "type": order.type.value,
        "time_in_force": order.tif.value,
        "client_order_id": order.client_order_id,
    }
    for key in ("limit_price", "stop_price", "trail_price", "trail_percent"):
        value = getattr(order, key)
        if value is not None:
            body[key] = decimal(value)
    if order.order_class is not OrderClass.SIMPLE:
        order_class, take_profit, stop_loss = class_params(order)
        body["order_class"] = order_class.value
        if order_class is OrderClass.OCO:
            body.pop("limit_price", None)
        if take_profit is not None:
            body["take_profit"] = {"limit_price": decimal(take_profit["limit_price"])}
        if stop_loss is not None:
            leg: JSON = {"stop_price": decimal(stop_loss["stop_price"])}
            if stop_loss.get("limit_price") is not None:
                leg["limit_price"] = decimal(stop_loss.get("limit_price"))
            body["stop_loss"] = leg
    return body


def replace_request_json(old: Order, new: Order) -> JSON:
    """The body of ``PATCH /v2/orders/{id}``: the new order's client order id and quantity, and
    the other fields of ``new`` that differ from ``old``."""
    body: JSON = {"client_order_id": new.client_order_id, "qty": decimal(new.qty)}
    if new.tif is not old.tif:
        body["time_in_force"] = new.tif.value
    if new.limit_price is not None and new.limit_price != old.limit_price:
        body["limit_price"] = decimal(new.limit_price)
    if (
        new.type is not OrderType.TRAILING_STOP
        and new.stop_price is not None
        and new.stop_price != old.stop_price
    ):
        body["stop_price"] = decimal(new.stop_price)
    trail = new.trail_price if new.trail_price is not None else new.trail_percent
    if new.type is OrderType.TRAILING_STOP and trail is not None:
        body["trail"] = decimal(trail)
    return body


# ------------------------------------------------------------------------------ trade updates


def trade_update_from_json(data: Mapping[str, Any]) -> BrokerEvent:
    """The ``data`` of a ``trade_updates`` message -> a :class:`BrokerEvent`.

    Any event name is accepted (unknown ones are the engine's to ignore); fill and partial_fill
    events need ``price``, ``qty`` and ``execution_id`` (the deduplication key).
    """
    what = "trade_update"
    if not isinstance(data, Mapping):
        raise MalformedMessageError(what, "data", data, "must be a JSON object")
    kind = str(_req(data, what, "event"))
    order = order_from_json(_req(data, what, "order"))
    ts = _ts(data, what, "timestamp", default=order.updated_at)
    fill = None
    if kind in (EventKind.FILL, EventKind.PARTIAL_FILL):
        fill = Fill(
            order.id,
            order.symbol,
            order.side,
            _num(data, what, "qty"),
            _num(data, what, "price"),
            0.0,  # Alpaca charges no commission on US equities
            ts,
            str(_req(data, what, "execution_id")),
            _opt_num(data, what, "position_qty"),
        )
    return BrokerEvent(kind, order, ts, fill)


def fill_activity_from_json(d: Mapping[str, Any]) -> VenueFill:
    """A ``FILL`` account activity -> a :class:`VenueFill` for reconciliation (its ``id`` is
    the execution's key; ``cum_qty`` tells which part of the order it was)."""
    what = "activity"
    cum = d.get("cum_qty")
    return VenueFill(
        str(_req(d, what, "id")),
        str(_req(d, what, "order_id")),
        _num(d, what, "qty"),
        _num(d, what, "price"),
        _ts(d, what, "transaction_time"),
        None if cum is None else _num(d, what, "cum_qty"),
    )


# ---------------------------------------------------------------------------------- account


def account_from_json(d: Mapping[str, Any]) -> Account:
    what = "account"
    cash = _num(d, what, "cash")
    equity = _num(d, what, "equity", default=_num(d, what, "portfolio_value", default=cash))
    return Account(
        cash,
        equity,
        _num(d, what, "buying_power", default=cash),
        leverage=_num(d, what, "multiplier", default=1.0),
        allow_short=bool(d.get("shorting_enabled", True)),
        currency=str(d.get("currency") or "USD"),
        id=str(d.get("id") or ""),
    )


def position_from_json(d: Mapping[str, Any]) -> Position:
    what = "position"
    pos = Position(str(_req(d, what, "symbol")))
    qty = _num(d, what, "qty")
    side = str(d.get("side") or ("short" if qty < 0 else "long")).lower()
    pos.qty = -abs(qty) if side == "short" else abs(qty)
    pos.avg_price = _num(d, what, "avg_entry_price")
    pos.last_price = _num(d, what, "current_price", default=pos.avg_price)
    return pos


def clock_from_json(d: Mapping[str, Any]) -> Clock:
    what = "clock"
    nxt_open = d.get("next_open")
    nxt_close = d.get("next_close")
    return Clock(
        _ts(d, what, "timestamp"),
        bool(_req(d, what, "is_open")),
        None if nxt_open is None else _ts(d, what, "next_open"),
        None if nxt_close is None else _ts(d, what, "next_close"),
    )


# --------------------------------------------------------------------------------- bars


def bar_from_json(d: Mapping[str, Any]) -> Bar:
    """A market-data bar message (``{"T": "b", "S", "o", "h", "l", "c", "v", "t"}``) -> Bar.

    ``t`` is an RFC 3339 string (JSON), a msgpack Timestamp or a datetime (msgpack, decoded)."""
    what = "bar"
    t = _req(d, what, "t")
    to_nano = getattr(t, "to_unix_nano", None)
    if callable(to_nano):
        ts = int(to_nano())
    elif isinstance(t, datetime):
        ts = int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000
    else:
        ts = _ts(d, what, "t")
    return Bar(
        str(_req(d, what, "S")),
        ts,
        _num(d, what, "o"),
        _num(d, what, "h"),
        _num(d, what, "l"),
        _num(d, what, "c"),
        _num(d, what, "v", default=0.0),
    )


# ------------------------------------------------------------------ server side (loopback venue)
# What a venue answers: the loopback server (tradeloop.testing.alpaca) renders its state with
# these. Money is rounded to cents, as Alpaca reports it; prices keep their digits.


def _money(value: float) -> str:
    text = decimal(round(value, 2))
    assert text is not None
    return "0" if text == "-0" else text


def account_to_json(
    account: Account,
    *,
    account_number: str,
    long_market_value: float = 0.0,
    short_market_value: float = 0.0,
    last_equity: float | None = None,
    created_at: int = 0,
) -> JSON:
    """An :class:`Account` as Alpaca's account object (``status`` ``ACTIVE``, money as strings).

    ``account.id`` must be a UUID; ``short_market_value`` is negative (or zero), as Alpaca's.
    """
    equity = _money(account.equity)
    buying_power = _money(account.buying_power)
    return {
        "id": account.id,
        "account_number": account_number,
        "status": "ACTIVE",
        "crypto_status": None,
        "currency": account.currency,
        "buying_power": buying_power,
        "regt_buying_power": buying_power,
        "daytrading_buying_power": buying_power,
        "non_marginable_buying_power": buying_power,
        "options_buying_power": "0",
        "cash": _money(account.cash),
        "accrued_fees": "0",
        "pending_transfer_out": None,
        "pending_transfer_in": "0",
        "portfolio_value": equity,
        "equity": equity,
        "last_equity": _money(account.equity if last_equity is None else last_equity),
        "long_market_value": _money(long_market_value),
        "short_market_value": _money(short_market_value),
        "initial_margin": "0",
        "maintenance_margin": "0",
        "last_maintenance_margin": "0",
        "sma": "0",
        "multiplier": decimal(account.leverage),
        "shorting_enabled": account.allow_short,
        "pattern_day_trader": False,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "trade_suspended_by_user": False,
        "daytrade_count": 0,
        "created_at": format_ts(created_at),
    }


def position_to_json(
    position: Position,
    *,
    asset_id: str,
    exchange: str = "NASDAQ",
    lastday_price: float | None = None,
    qty_available: float | None = None,
) -> JSON:
    """A :class:`Position` as Alpaca's position object: ``qty``, ``market_value`` and
    ``cost_basis`` are signed (negative when short), ``side`` is ``long`` or ``short``.

    ``exchange`` must be one of Alpaca's exchange names (clients validate it);
    ``lastday_price`` (default: the current price) gives the intraday figures.
    """
    qty = position.qty
    last = position.last_price
    prev = last if lastday_price is None else lastday_price
    cost = qty * position.avg_price
    pnl = (last - position.avg_price) * qty
    intraday = (last - prev) * qty
    return {
        "asset_id": asset_id,
        "symbol": position.symbol,
        "exchange": exchange,
        "asset_class": "us_equity",
        "asset_marginable": True,
        "qty": decimal(qty),
        "qty_available": decimal(qty if qty_available is None else qty_available),
        "avg_entry_price": decimal(round(position.avg_price, 9)),
        "side": "short" if qty < 0 else "long",
        "market_value": _money(qty * last),
        "cost_basis": _money(cost),
        "unrealized_pl": _money(pnl),
        "unrealized_plpc": decimal(pnl / abs(cost) if cost else 0.0),
        "unrealized_intraday_pl": _money(intraday),
        "unrealized_intraday_plpc": decimal(intraday / abs(qty * prev) if qty and prev else 0.0),
        "current_price": decimal(last),
        "lastday_price": decimal(prev),
        "change_today": decimal(last / prev - 1.0 if prev else 0.0),
    }


def clock_to_json(clock: Clock) -> JSON:
    """A :class:`Clock` as Alpaca's clock object. Clients require ``next_open`` and
    ``next_close``: a clock without them reports its own time there."""
    now = format_ts(clock.ts)
    return {
        "timestamp": now,
        "is_open": clock.is_open,
        "next_open": now if clock.next_open is None else format_ts(clock.next_open),
        "next_close": now if clock.next_close is None else format_ts(clock.next_close),
    }


def asset_to_json(
    symbol: str, *, id: str, exchange: str = "NASDAQ", shortable: bool = True
) -> JSON:
    """A tradable US equity as Alpaca's asset object (``class``, not ``asset_class``)."""
    return {
        "id": id,
        "class": "us_equity",
        "exchange": exchange,
        "symbol": symbol,
        "name": symbol,
        "status": "active",
        "tradable": True,
        "marginable": True,
        "maintenance_margin_requirement": 30,
        "shortable": shortable,
        "easy_to_borrow": shortable,
        "fractionable": True,
        "attributes": [],
    }


def bar_to_json(bar: Bar) -> JSON:
    """A :class:`Bar` as a market-data bar message with ``t`` in RFC 3339 (the JSON encoding;
    a msgpack encoder puts a msgpack Timestamp there). Prices and volume are JSON numbers; the
    trade count ``n`` and ``vw`` are present and ``null`` (replayed bars do not know them)."""
    volume = float(bar.volume)
    return {
        "T": "b",
        "S": bar.symbol,
        "o": bar.open,
        "h": bar.high,
        "l": bar.low,
        "c": bar.close,
        "v": int(volume) if volume.is_integer() else volume,
        "t": format_ts(bar.ts),
        "n": None,
        "vw": None,
    }


def fill_activity_to_json(
    fill: Fill,
    order: Order,
    *,
    id: str,
    account_id: str,
    order_id: str,
    execution_id: str,
) -> JSON:
    """One execution as Alpaca's ``FILL`` account activity.

    ``order`` is the order as it stood right after this fill (``leaves_qty``, ``cum_qty`` and
    ``order_status`` come from it); ``id`` is the activity id, which pages activities.
    """
    partial = order.status is not OrderStatus.FILLED
    return {
        "id": id,
        "account_id": account_id,
        "activity_type": "FILL",
        "transaction_time": format_ts(fill.ts),
        "type": "partial_fill" if partial else "fill",
        "price": decimal(fill.price),
        "qty": decimal(fill.qty),
        "side": fill.side.value,
        "symbol": fill.symbol,
        "leaves_qty": decimal(max(order.remaining_qty, 0.0)),
        "order_id": order_id,
        "cum_qty": decimal(order.filled_qty),
        "order_status": ALPACA_STATUS[order.status],
        "execution_id": execution_id,
    }
