"""IB <-> tradeloop, pure: orders, statuses, executions, error codes and bar aggregation.

No I/O and no event loop. It reads ib_async's plain dataclasses (``Order``, ``Trade``, ``Fill``)
and builds tradeloop's types; the broker only moves them. Facts from the TWS API as ib_async
2.1.0 speaks it (``/work/shared/specs/ib.md``):

* tradeloop's client order id travels in ``orderRef`` (echoed in openOrder, completedOrder and
  every execution); the venue id tradeloop keeps is the ``permId`` (the only key shared by
  openOrder, orderStatus, execDetails and completedOrder, and stable across sessions);
* IB's error codes become tradeloop's typed errors (:func:`order_error`); 1100 / 1101 / 1102
  are connectivity changes (:func:`connectivity`), not order errors;
* real-time bars are 5-second bars: :class:`BarAggregator` folds them into the bar size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from tradeloop.errors import (
    BrokerConnectionError,
    BrokerError,
    DuplicateOrderError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderStateError,
    TradeloopError,
)
from tradeloop.execution.core.reconcile import VenueFill
from tradeloop.execution.types import (
    Bar,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)

__all__ = [
    "ACKED",
    "REJECT_CODES",
    "BarAggregator",
    "Connectivity",
    "ack_status",
    "connectivity",
    "fill_from_ib",
    "ib_order_fields",
    "is_warning",
    "order_error",
    "snapshot",
    "status_from_ib",
    "to_ns",
    "venue_fill",
]

_EPS = 1e-9

ERR_DUPLICATE_ID: Final = 103
ERR_REJECTED: Final = 201
ERR_CANCELED: Final = 202
ERR_CLIENT_ID_IN_USE: Final = 326
ERR_NOT_FOUND: Final = frozenset({135, 10147, 161})
REJECT_CODES: Final = frozenset({ERR_REJECTED, 110, 200, 203, 383, 387, 388, 10148, 10268})
# ib_async's warning codes: the order stays live (``wrapper.error``)
_WARNINGS: Final = frozenset({105, 110, 165, 321, 329, 399, 404, 434, 492, 10167})

ACKED: Final = frozenset({"PreSubmitted", "Submitted", "Filled", "PendingCancel"})
"""Statuses that prove TWS took an order."""

_STATUS: Final = {
    "PendingSubmit": OrderStatus.NEW,
    "ApiPending": OrderStatus.NEW,
    "PreSubmitted": OrderStatus.ACCEPTED,
    "Submitted": OrderStatus.ACCEPTED,
    "PendingCancel": OrderStatus.ACCEPTED,
    "ValidationError": OrderStatus.ACCEPTED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELED,
    "ApiCancelled": OrderStatus.CANCELED,
    "Inactive": OrderStatus.REJECTED,
}

_TYPES: Final = {
    OrderType.MARKET: "MKT",
    OrderType.LIMIT: "LMT",
    OrderType.STOP: "STP",
    OrderType.STOP_LIMIT: "STP LMT",
    OrderType.TRAILING_STOP: "TRAIL",
}
_FROM_TYPES: Final = {v: k for k, v in _TYPES.items()}
_UNSET = 1.7976931348623157e308


def to_ns(when: datetime | None, default: int = 0) -> int:
    """A (tz-aware) datetime -> int ns since the epoch."""
    if when is None or not isinstance(when, datetime):
        return default
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def _price(x: Any) -> float | None:
    if x is None or x == "":
        return None
    v = float(x)
    if not math.isfinite(v) or v >= _UNSET or v == 0.0:
        return None
    return v


# ---------------------------------------------------------------------------------- orders


def ib_order_fields(order: Order, account: str = "") -> dict[str, Any]:
    """The ib_async ``Order`` fields for a tradeloop order (``orderRef`` = its client order id).
    Order classes (bracket/oto/oco) are not mapped: :class:`InvalidOrderError`."""
    if order.legs or order.order_class.value != "simple":
        raise InvalidOrderError(
            "order_class", order.order_class.value, "the IB broker sends simple orders only"
        )
    fields: dict[str, Any] = {
        "action": "BUY" if order.side is OrderSide.BUY else "SELL",
        "totalQuantity": float(order.qty),
        "orderType": _TYPES[order.type],
        "tif": order.tif.value.upper(),
        "orderRef": order.client_order_id,
        "transmit": True,
    }
    if account:
        fields["account"] = account
    if order.type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        fields["lmtPrice"] = order.limit_price
    if order.type in (OrderType.STOP, OrderType.STOP_LIMIT):
        fields["auxPrice"] = order.stop_price
    if order.type is OrderType.TRAILING_STOP:
        if order.trail_price is not None:
            fields["auxPrice"] = order.trail_price
        else:
            fields["trailingPercent"] = order.trail_percent
    return fields


def status_from_ib(status: str, filled: float, qty: float) -> OrderStatus:
    """An IB status string (with the filled quantity) -> tradeloop's status."""
    mapped = _STATUS.get(status, OrderStatus.ACCEPTED)
    if mapped is OrderStatus.ACCEPTED and filled > _EPS:
        return OrderStatus.FILLED if filled >= qty - _EPS else OrderStatus.PARTIALLY_FILLED
    return mapped


def ack_status(status: str) -> bool:
    return status in ACKED


def snapshot(
    trade: Any,
    *,
    now: int = 0,
    filled: float | None = None,
    avg_price: float | None = None,
    status: OrderStatus | None = None,
) -> Order:
    """An ib_async ``Trade`` -> a tradeloop order snapshot: ``id`` = permId, client order id =
    orderRef. ``filled``/``avg_price``/``status`` override what the trade says (a fill event
    describes the order right after its execution). Times: the last execution's, else ``now``."""
    o = trade.order
    contract = trade.contract
    st = trade.orderStatus
    qty = float(o.totalQuantity)
    done = max(float(st.filled or 0.0), _filled_quantity(o))
    if filled is not None:
        done = filled
    otype = _FROM_TYPES.get(o.orderType, OrderType.MARKET)
    tif = {"DAY": TimeInForce.DAY, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}.get(
        o.tif, TimeInForce.GTC
    )
    snap = Order(
        str(o.permId) if o.permId else "",
        contract.symbol,
        OrderSide.BUY if o.action == "BUY" else OrderSide.SELL,
        qty,
        otype,
        tif,
        limit_price=_price(o.lmtPrice)
        if otype in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        else None,
        stop_price=_price(o.auxPrice) if otype in (OrderType.STOP, OrderType.STOP_LIMIT) else None,
        trail_price=_price(o.auxPrice) if otype is OrderType.TRAILING_STOP else None,
        client_order_id=o.orderRef or f"ib-{o.permId}",
    )
    snap.filled_qty = done
    avg = avg_price if avg_price is not None else _price(st.avgFillPrice)
    if avg is None and trade.fills:
        avg = float(trade.fills[-1].execution.avgPrice) or None
    snap.avg_fill_price = avg if done > _EPS else None
    snap.commission = sum(
        float(f.commissionReport.commission or 0.0) for f in trade.fills if f.commissionReport
    )
    snap.status = status if status is not None else status_from_ib(st.status, done, qty)
    times = [to_ns(f.execution.time) for f in trade.fills]
    stamp = max(times) if times else now
    snap.created_at = min(times) if times else now
    snap.updated_at = stamp
    snap.broker_order_id = snap.id or None
    if snap.status is OrderStatus.REJECTED:
        snap.reject_reason = last_error(trade)[1] or "inactive at IB"
    return snap


def _filled_quantity(o: Any) -> float:
    v = getattr(o, "filledQuantity", 0.0)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return 0.0
    return v if math.isfinite(v) and v < _UNSET else 0.0


def last_error(trade: Any) -> tuple[int, str]:
    """The last error code and text in a trade's log (``(0, "")`` if none)."""
    for entry in reversed(trade.log):
        if entry.errorCode:
            return int(entry.errorCode), str(entry.message)
    return 0, ""


# ------------------------------------------------------------------------------- executions


def fill_from_ib(trade: Any, ib_fill: Any, commission: float) -> tuple[Fill, Order]:
    """An execution (with its commission, joined by execId) -> the tradeloop fill and the
    order's snapshot right after it."""
    ex = ib_fill.execution
    ts = to_ns(ex.time)
    qty = float(trade.order.totalQuantity)
    cum = float(ex.cumQty)
    status = OrderStatus.FILLED if cum >= qty - _EPS else OrderStatus.PARTIALLY_FILLED
    snap = snapshot(trade, now=ts, filled=cum, avg_price=float(ex.avgPrice), status=status)
    snap.updated_at = max(snap.updated_at, ts)
    fill = Fill(
        snap.id,
        snap.symbol,
        snap.side,
        float(ex.shares),
        float(ex.price),
        float(commission),
        ts,
        str(ex.execId),
    )
    return fill, snap


def venue_fill(ib_fill: Any) -> VenueFill:
    """An ib_async ``Fill`` (from reqExecutions or the session) -> a reconciliation record."""
    ex = ib_fill.execution
    report = ib_fill.commissionReport
    return VenueFill(
        str(ex.execId),
        str(ex.permId),
        float(ex.shares),
        float(ex.price),
        to_ns(ex.time),
        float(ex.cumQty),
        float(report.commission or 0.0) if report is not None else 0.0,
    )


# ---------------------------------------------------------------------------------- errors


def is_warning(code: int) -> bool:
    """ib_async's view: the order stays live after this code."""
    return code in _WARNINGS or 2100 <= code < 2200


def order_error(code: int, message: str, client_order_id: str) -> TradeloopError:
    """The tradeloop error an IB error code on an order means.

    201 (and the other refusals) -> :class:`OrderRejectedError` with IB's reason; 103 (duplicate
    order id) -> :class:`DuplicateOrderError`; 135/161/10147 (no such order / not cancellable)
    -> :class:`OrderNotFoundError`/:class:`OrderStateError`; 1100 and socket failures ->
    :class:`BrokerConnectionError` (the outcome is unknown); anything else -> BrokerError."""
    reason = message.split("reason:", 1)[1].strip() if "reason:" in message else message
    if code == ERR_DUPLICATE_ID:
        return DuplicateOrderError(client_order_id)
    if code in REJECT_CODES:
        return OrderRejectedError(client_order_id, reason or f"IB error {code}", code)
    if code in (135, 10147):
        return OrderNotFoundError(client_order_id)
    if code == 161:
        return OrderStateError(f"{client_order_id}: not cancellable ({message})")
    if code in (1100, 1300, 502, 504):
        return BrokerConnectionError(f"IB error {code}: {message}")
    return BrokerError(f"IB error {code} on {client_order_id}: {message}")


Connectivity = Literal["lost", "restored", "restored_data_lost"]


def connectivity(code: int) -> Connectivity | None:
    """1100: IB <-> TWS connectivity lost; 1102: restored, data kept; 1101: restored, market
    data subscriptions lost (resubscribe). ``None`` for any other code."""
    return {1100: "lost", 1101: "restored_data_lost", 1102: "restored"}.get(code)  # type: ignore[return-value]


# ------------------------------------------------------------------------------------- bars


@dataclass
class _Bucket:
    start: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class BarAggregator:
    """5-second real-time bars -> bars of ``bar_seconds`` (a multiple of 5), per symbol.

    A bar is complete when the 5-second bar of its last slot arrives (``time % bar_seconds ==
    bar_seconds - 5``), or, if that one never comes, when a bar of a later bucket does (the
    unfinished one is emitted first). Timestamps are the buckets' starts (int ns)."""

    def __init__(self, bar_seconds: int = 60) -> None:
        if not (isinstance(bar_seconds, int) and bar_seconds >= 5 and bar_seconds % 5 == 0):
            raise ValueError("bar_seconds must be a multiple of 5")
        self.bar_seconds = bar_seconds
        self._open: dict[str, _Bucket] = {}
        self._emitted: dict[str, int] = {}  # symbol -> start of its last bar out

    def add(
        self, symbol: str, epoch: int, o: float, h: float, lo: float, c: float, v: float
    ) -> list[Bar]:
        size = self.bar_seconds
        start = epoch - epoch % size
        out: list[Bar] = []
        if start <= self._emitted.get(symbol, -1):
            return out  # late or repeated: that bar is out already
        cur = self._open.get(symbol)
        if cur is not None and cur.start != start:
            if start < cur.start:
                return out  # late or repeated: that bar is out already
            out.append(self._emit(symbol, cur))
            cur = None
        if cur is None:
            cur = self._open[symbol] = _Bucket(start, o, h, lo, c, v)
        else:
            cur.high = max(cur.high, h)
            cur.low = min(cur.low, lo)
            cur.close = c
            cur.volume += v
        if epoch % size == size - 5:
            out.append(self._emit(symbol, cur))
        return out

    def _emit(self, symbol: str, b: _Bucket) -> Bar:
        self._open.pop(symbol, None)
        self._emitted[symbol] = b.start
        return Bar(symbol, b.start * 1_000_000_000, b.open, b.high, b.low, b.close, b.volume)

    def reset(self) -> None:
        """Forget unfinished bars (after a gap in the data, e.g. a lost subscription)."""
        self._open.clear()
