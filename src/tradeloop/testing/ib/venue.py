"""The loopback IB venue's state and rules, pure: no I/O, no event loop.

:class:`IBVenue` holds a :class:`~tradeloop.execution.core.exchange.SimulatedExchange` (whole
shares, IB's fixed-rate commission of $0.005 a share with a $1 minimum per execution), the
account, and what TWS keeps per API client: order ids (each client id's ids are used once, for
ever: a reused one is error 103), permIds (one per order, the key shared by openOrder,
orderStatus, execDetails and completedOrder) and execution ids. It takes parsed requests and
reports what TWS would send as :class:`VenueEvent` values, in order, to ``on_event``; the server
turns them into frames for the connections of that client id at their negotiated version.

Matching is the exchange's and only the exchange's, so a run against the fake fills exactly as a
backtest of the same bars does.
"""

from __future__ import annotations

import time as _wall
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tradeloop.errors import InvalidOrderError
from tradeloop.execution.core.costs import PerShareCommission
from tradeloop.execution.core.exchange import SimulatedExchange
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.types import Bar, Fill, Order, OrderSide, OrderStatus, OrderType
from tradeloop.testing.ib.wire import PlaceOrderRequest, WireOrder, format_time

__all__ = [
    "ERR_CANCEL_UNKNOWN",
    "ERR_DUPLICATE_ID",
    "ERR_REJECTED",
    "IBVenue",
    "VenueEvent",
    "con_id",
]

ERR_DUPLICATE_ID = 103
ERR_REJECTED = 201
ERR_CANCELED = 202
ERR_CANCEL_UNKNOWN = 10147

_TYPES = {
    "MKT": OrderType.MARKET,
    "LMT": OrderType.LIMIT,
    "STP": OrderType.STOP,
    "STP LMT": OrderType.STOP_LIMIT,
    "TRAIL": OrderType.TRAILING_STOP,
}
_TIFS = {"DAY": "day", "GTC": "gtc", "IOC": "ioc", "FOK": "fok"}
_STATUS = {
    OrderStatus.NEW: "PreSubmitted",
    OrderStatus.HELD: "PreSubmitted",
    OrderStatus.ACCEPTED: "Submitted",
    OrderStatus.PARTIALLY_FILLED: "Submitted",
    OrderStatus.FILLED: "Filled",
    OrderStatus.CANCELED: "Cancelled",
    OrderStatus.EXPIRED: "Cancelled",
    OrderStatus.REPLACED: "Cancelled",
    OrderStatus.REJECTED: "Inactive",
}


_SHOWN = {OrderStatus.EXPIRED: "canceled"}


def con_id(symbol: str) -> int:
    """A symbol's contract id at the fake: the same in every run."""
    return 100_000 + zlib.crc32(symbol.encode()) % 900_000_000


@dataclass(frozen=True)
class VenueEvent:
    """Something TWS tells an API client. ``kind``: ``open_order``, ``order_status``,
    ``execution`` (with ``exec_id``, ``shares``, ``price``, ``cum_qty``, ``avg_price``, ``ts``),
    ``commission`` (``exec_id``, ``commission``) or ``error`` (``req_id``, ``code``,
    ``text``). ``client_id``: whose connection it is for."""

    kind: str
    client_id: int
    order: WireOrder | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Record:
    order: Order  # the exchange's
    wire: WireOrder
    executions: list[dict[str, Any]] = field(default_factory=list)


class IBVenue:
    """One IB paper account at a simulated venue (see the module docstring)."""

    def __init__(
        self,
        *,
        symbols: Iterable[str] | None = None,
        initial_cash: float = 100_000.0,
        account: str = "DU1234567",
        start: int = 0,
        commission: PerShareCommission | None = None,
        on_event: Callable[[VenueEvent], None] | None = None,
    ) -> None:
        self.symbols: tuple[str, ...] | None = tuple(symbols) if symbols is not None else None
        self.account = account
        self.portfolio = Portfolio(initial_cash, allow_short=True)
        self.exchange = SimulatedExchange(
            self.portfolio,
            symbols=self.symbols,
            fractional=False,
            commission=commission if commission is not None else PerShareCommission(0.005, 1.0),
            listener=self,
        )
        self.now = start
        self.bars = 0
        self.on_event = on_event
        self.events: list[VenueEvent] = []
        self.records: dict[int, _Record] = {}  # permId -> record
        self._by_internal: dict[str, int] = {}  # exchange order id -> permId
        self._by_client: dict[tuple[int, int], int] = {}  # (clientId, orderId) -> permId
        self._used: dict[int, set[int]] = {}  # clientId -> order ids ever used
        self._next_perm = 1_000_000_001
        self._exec_seq = 0
        self._after_fill: Order | None = None
        self._pending: tuple[int, WireOrder] | None = None
        self.executions: list[tuple[int, dict[str, Any]]] = []  # (permId, execution), in order
        self.fill_times: list[tuple[str, float, float]] = []  # (orderRef, cum qty, wall time)

    # -- ids -----------------------------------------------------------------------------------

    def next_order_id(self, client_id: int) -> int:
        """nextValidId for ``client_id``: above every id it ever used (persistent, per client)."""
        used = self._used.get(client_id)
        return max(used) + 1 if used else 1

    def _emit(self, event: VenueEvent) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _error(self, client_id: int, req_id: int, code: int, text: str) -> None:
        self._emit(
            VenueEvent("error", client_id, None, {"req_id": req_id, "code": code, "text": text})
        )

    # -- requests ------------------------------------------------------------------------------

    def place(self, client_id: int, req: PlaceOrderRequest) -> None:
        """placeOrder: a new order (its events follow), or error 103 for an id this client used
        before, 201 for an order the venue refuses (with the reason)."""
        key = (client_id, req.order_id)
        if key in self._by_client:
            rec = self.records[self._by_client[key]]
            if rec.order.is_open:  # a modify: the loopback venue does not change orders
                self._error(
                    client_id,
                    req.order_id,
                    321,
                    "Error validating request.-'modify' is not supported by the loopback server",
                )
                return
        used = self._used.setdefault(client_id, set())
        if req.order_id in used or req.order_id <= 0:
            self._error(client_id, req.order_id, ERR_DUPLICATE_ID, "Duplicate order id")
            return
        used.add(req.order_id)
        reason = self._refusal(req)
        if reason is not None:
            self._error(client_id, req.order_id, ERR_REJECTED, f"Order rejected - reason:{reason}")
            return
        otype = _TYPES[req.order_type]
        params: dict[str, Any] = {
            "tif": _TIFS[req.tif or "DAY"],
            "client_order_id": req.order_ref or None,
        }
        if otype in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            params["limit_price"] = req.lmt_price
        if otype in (OrderType.STOP, OrderType.STOP_LIMIT):
            params["stop_price"] = req.aux_price
        if otype is OrderType.TRAILING_STOP:
            params["trail_price"] = req.aux_price
        side = OrderSide.BUY if req.action == "BUY" else OrderSide.SELL
        perm = self._next_perm
        self._next_perm += 1
        wire = WireOrder(
            order_id=req.order_id,
            client_id=client_id,
            perm_id=perm,
            con_id=con_id(req.symbol),
            symbol=req.symbol,
            action=req.action,
            qty=req.qty,
            order_type=req.order_type,
            lmt_price=req.lmt_price,
            aux_price=req.aux_price,
            tif=req.tif or "DAY",
            account=req.account or self.account,
            order_ref=req.order_ref,
            status="PreSubmitted",
        )
        self._pending = (perm, wire)
        try:
            self.exchange.submit(req.symbol, side, req.qty, otype, now=self.now, **params)
        except InvalidOrderError as exc:
            self._pending = None
            self._error(client_id, req.order_id, ERR_REJECTED, f"Order rejected - reason:{exc}")

    def _refusal(self, req: PlaceOrderRequest) -> str | None:
        if self.symbols is not None and req.symbol not in self.symbols:
            return f"No security definition has been found for {req.symbol}"
        if req.action not in ("BUY", "SELL"):
            return f"invalid action {req.action!r}"
        if req.order_type not in _TYPES:
            return f"order type {req.order_type!r} is not supported here"
        if (req.tif or "DAY") not in _TIFS:
            return f"time in force {req.tif!r} is not supported here"
        if not req.qty > 0 or not float(req.qty).is_integer():
            return "the order size must be a whole number of shares > 0"
        return None

    def cancel(self, client_id: int, order_id: int) -> None:
        """cancelOrder: ``Cancelled`` (with error 202) follows, or error 10147 for an order
        that is not open."""
        perm = self._by_client.get((client_id, order_id))
        rec = self.records.get(perm) if perm is not None else None
        if rec is None or not rec.order.is_open:
            self._error(
                client_id,
                order_id,
                ERR_CANCEL_UNKNOWN,
                f"OrderId {order_id} that needs to be cancelled is not found.",
            )
            return
        self.exchange.cancel(rec.order, self.now)

    def global_cancel(self) -> None:
        for rec in list(self.records.values()):
            if rec.order.is_open:
                self.exchange.cancel(rec.order, self.now)

    # -- the exchange's listener ---------------------------------------------------------------

    def on_fill(self, fill: Fill) -> None:
        order = self.exchange.book.get(fill.order_id)
        self._after_fill = order
        perm = self._by_internal[order.id]
        rec = self.records[perm]
        w = rec.wire
        w.filled = order.filled_qty
        w.avg_fill_price = order.avg_fill_price or 0.0
        w.last_fill_price = fill.price
        w.status = _STATUS[order.status]
        self._exec_seq += 1
        execution = {
            "exec_id": f"0000e0d5.{self._exec_seq:08x}.01.01",
            "shares": fill.qty,
            "price": fill.price,
            "cum_qty": order.filled_qty,
            "avg_price": order.avg_fill_price or fill.price,
            "ts": fill.ts,
            "commission": fill.commission,
        }
        rec.executions.append(execution)
        self.executions.append((perm, execution))
        self.fill_times.append((w.order_ref, order.filled_qty, _wall.time()))
        if w.status == "Filled":
            w.completed_time = format_time(fill.ts)
            w.completed_status = "Filled"
        self._emit(VenueEvent("open_order", w.client_id, w))
        self._emit(VenueEvent("order_status", w.client_id, w))
        self._emit(VenueEvent("execution", w.client_id, w, execution))
        self._emit(VenueEvent("commission", w.client_id, w, execution))

    def on_order_update(self, order: Order) -> None:
        if order is self._after_fill:
            self._after_fill = None
            return
        perm = self._by_internal.get(order.id)
        if perm is None:  # a new order
            pending, self._pending = self._pending, None
            if pending is None:
                return
            perm, wire = pending
            if order.status is OrderStatus.REJECTED:
                self._error(
                    wire.client_id,
                    wire.order_id,
                    ERR_REJECTED,
                    f"Order rejected - reason:{order.reject_reason or 'refused'}",
                )
                return
            self.records[perm] = _Record(order, wire)
            self._by_internal[order.id] = perm
            self._by_client[(wire.client_id, wire.order_id)] = perm
        rec = self.records[perm]
        w = rec.wire
        w.status = _STATUS[order.status]
        if not order.is_open:
            w.completed_time = format_time(order.updated_at)
            w.completed_status = w.status
        if order.status in (OrderStatus.ACCEPTED, OrderStatus.NEW, OrderStatus.HELD):
            self._emit(VenueEvent("open_order", w.client_id, w))
        self._emit(VenueEvent("order_status", w.client_id, w))
        if order.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
            self._error(w.client_id, w.order_id, ERR_CANCELED, "Order Canceled - reason:")

    # -- queries -------------------------------------------------------------------------------

    def open_orders(self, client_id: int) -> list[WireOrder]:
        return [
            r.wire
            for r in self.records.values()
            if r.order.is_open and r.wire.client_id == client_id
        ]

    def completed_orders(self) -> list[WireOrder]:
        return [r.wire for r in self.records.values() if not r.order.is_open]

    def executions_of(self, client_id: int | None = None) -> list[tuple[WireOrder, dict[str, Any]]]:
        """Today's executions (all of them: the loopback venue's day is the replay), oldest
        first; only ``client_id``'s when given and nonzero."""
        out = []
        for perm, ex in self.executions:
            w = self.records[perm].wire
            if client_id and w.client_id != client_id:
                continue
            out.append((w, ex))
        return out

    def positions(self) -> list[tuple[str, float, float]]:
        return [
            (sym, p.qty, p.avg_price)
            for sym, p in sorted(self.portfolio.positions.items())
            if p.qty
        ]

    def summary(self) -> dict[str, float]:
        pf = self.portfolio
        return {
            "NetLiquidation": pf.equity,
            "TotalCashValue": pf.cash,
            "BuyingPower": max(0.0, pf.equity),
            "AvailableFunds": max(0.0, pf.cash),
        }

    # -- simulated time ------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        self.now = max(self.now, bar.ts)
        self.bars += 1
        self.exchange.on_bar(bar.symbol, bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume)

    def end_of_data(self) -> None:
        self.exchange.expire_all(self.now)

    def state(self) -> dict[str, Any]:
        """Plain values for tests and the chaos run (orders keyed by their orderRef)."""
        pf = self.portfolio
        return {
            "bars": self.bars,
            "cash": pf.cash,
            "equity": pf.equity,
            "orders": [
                {
                    "client_order_id": r.order.client_order_id,
                    "order_id": r.wire.order_id,
                    "perm_id": perm,
                    # as IB shows it: an order that expired is "Cancelled" there
                    "status": _SHOWN.get(r.order.status, r.order.status.value),
                    "filled_qty": r.order.filled_qty,
                    "commission": r.order.commission,
                }
                for perm, r in self.records.items()
            ],
            "positions": [{"symbol": s, "qty": q} for s, q, _ in self.positions()],
            "fill_times": [
                {"client_order_id": c, "cum_qty": q, "wall": w} for c, q, w in self.fill_times
            ],
            "executions": len(self.executions),
        }
