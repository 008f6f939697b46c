"""OrderBook: the bookkeeping of one account's orders, shared by both engines' order managers.

It creates validated orders, keeps every order by id and the *open* ones by symbol (so per-bar work
is proportional to open orders, not to all orders ever placed), applies fills to orders and drives
their state machine. It does no I/O and emits no events: managers decide how to deliver them.
"""

from __future__ import annotations

from tradeloop.errors import (
    InvalidOrderError,
    InvalidTransitionError,
    OrderNotFoundError,
    OrderStateError,
)
from tradeloop.execution.core.state import can_transition, transition
from tradeloop.execution.core.validation import OrderValidator, coerce_enum
from tradeloop.execution.types import (
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)

__all__ = ["OrderBook"]

_EPS = 1e-9


class OrderBook:
    __slots__ = (
        "_client_ids",
        "_seq",
        "client_id_prefix",
        "id_prefix",
        "open",
        "orders",
        "validator",
    )

    def __init__(
        self, validator: OrderValidator, id_prefix: str = "O", client_id_prefix: str = ""
    ) -> None:
        """``id_prefix`` starts order ids; an order given no client order id gets
        ``client_id_prefix + id`` (a live venue needs client ids unique across runs)."""
        self.validator = validator
        self.id_prefix = id_prefix
        self.client_id_prefix = client_id_prefix
        self.orders: dict[str, Order] = {}
        self.open: dict[str, list[Order]] = {}
        self._client_ids: dict[str, Order] = {}
        self._seq = 0

    # -- creation ------------------------------------------------------------------------------

    def _next_id(self) -> str:
        self._seq += 1
        return f"{self.id_prefix}{self._seq:06d}"

    def new_order(
        self,
        symbol: str,
        side: OrderSide | str,
        qty: float,
        type: OrderType | str = OrderType.MARKET,
        *,
        tif: TimeInForce | str = TimeInForce.GTC,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_price: float | None = None,
        trail_percent: float | None = None,
        client_order_id: str | None = None,
        tag: str | None = None,
        now: int = 0,
    ) -> Order:
        """A validated order in status ``new``, not yet registered. Raises InvalidOrderError."""
        order = Order(
            "",
            symbol,
            coerce_enum(OrderSide, "side", side),
            qty,
            coerce_enum(OrderType, "type", type),
            coerce_enum(TimeInForce, "tif", tif),
            limit_price=limit_price,
            stop_price=stop_price,
            trail_price=trail_price,
            trail_percent=trail_percent,
            client_order_id=client_order_id if client_order_id is not None else "-",
            tag=tag,
            created_at=now,
        )
        self.validator.validate(order)
        if client_order_id is not None and client_order_id in self._client_ids:
            raise InvalidOrderError(
                "client_order_id", client_order_id, "already used (client order ids are unique)"
            )
        order.qty = float(qty)
        order.id = self._next_id()
        if client_order_id is None:
            prefix = self.client_id_prefix
            while prefix + order.id in self._client_ids:  # a caller already used it as a client id
                order.id = self._next_id()
            order.client_order_id = prefix + order.id
        return order

    def replacement(
        self,
        old: Order,
        now: int,
        *,
        qty: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_price: float | None = None,
        trail_percent: float | None = None,
        tif: TimeInForce | str | None = None,
        client_order_id: str | None = None,
    ) -> Order:
        """A validated new order that would replace the open order ``old`` (not registered).

        ``client_order_id`` names the new order (a live venue needs a fresh one); by default the
        book gives it one.
        """
        if not old.is_open:
            raise OrderStateError(
                f"order {old.id}: status={old.status.value!r}, only open orders can be replaced"
            )
        trailing = old.type is OrderType.TRAILING_STOP
        if trailing and trail_price is not None:
            trail_percent = None
        elif trailing and trail_percent is not None:
            trail_price = None
        else:
            trail_price = old.trail_price if trail_price is None else trail_price
            trail_percent = old.trail_percent if trail_percent is None else trail_percent
        new = self.new_order(
            old.symbol,
            old.side,
            old.remaining_qty if qty is None else qty,
            old.type,
            tif=old.tif if tif is None else tif,
            limit_price=old.limit_price if limit_price is None else limit_price,
            # a trailing stop's stop_price is the matcher's current level, not a request field
            stop_price=None if trailing else (old.stop_price if stop_price is None else stop_price),
            trail_price=trail_price,
            trail_percent=trail_percent,
            client_order_id=client_order_id,
            tag=old.tag,
            now=now,
        )
        new.replaces = old.id
        return new

    # -- registry ------------------------------------------------------------------------------

    def register(self, order: Order) -> None:
        self.orders[order.id] = order
        self._client_ids[order.client_order_id] = order
        if order.is_open:
            self.open.setdefault(order.symbol, []).append(order)

    def adopt(self, order: Order) -> Order:
        """Register an order that exists elsewhere (a venue's open order from an earlier run)
        under a fresh local id; its client order id is kept. Returns it."""
        if order.client_order_id in self._client_ids:
            raise InvalidOrderError(
                "client_order_id",
                order.client_order_id,
                "already used (client order ids are unique)",
            )
        order.id = self._next_id()
        self.register(order)
        return order

    def restore(self, order: Order) -> None:
        """Register an order kept from an earlier run under its own id (a restart); later ids
        continue after the highest one seen."""
        self.register(order)
        digits = order.id[len(self.id_prefix) :]
        if order.id.startswith(self.id_prefix) and digits.isdigit():
            self._seq = max(self._seq, int(digits))

    def get(self, order_id: str) -> Order:
        try:
            return self.orders[order_id]
        except KeyError:
            raise OrderNotFoundError(order_id) from None

    def by_client_id(self, client_order_id: str) -> Order | None:
        """The registered order with this client order id, or ``None``."""
        return self._client_ids.get(client_order_id)

    def resolve(self, order: Order | str) -> Order:
        if isinstance(order, Order):
            order = order.id
        return self.get(order)

    def current(self, order: Order | str) -> Order:
        """The order that now stands for ``order``: itself, or, if it was replaced, its
        replacement (following the chain), so a handle kept across a replace still works."""
        o = self.resolve(order)
        while o.status is OrderStatus.REPLACED and o.replaced_by is not None:
            nxt = self.orders.get(o.replaced_by)
            if nxt is None:
                break
            o = nxt
        return o

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        if symbol is not None:
            return list(self.open.get(symbol, ()))
        return [o for orders in self.open.values() for o in orders]

    def has_open(self, symbol: str) -> bool:
        return bool(self.open.get(symbol))

    # -- state changes -------------------------------------------------------------------------

    def set_status(
        self, order: Order, status: OrderStatus, now: int, reason: str | None = None
    ) -> None:
        """Transition ``order`` (raises if illegal); drop it from the open set once it is done."""
        transition(order, status, now)
        if reason is not None:
            order.reject_reason = reason
        if not order.is_open:
            bucket = self.open.get(order.symbol)
            if bucket is not None and order in bucket:
                bucket.remove(order)

    def record_fill(
        self, order: Order, qty: float, price: float, commission: float, now: int
    ) -> None:
        """Add a fill of ``qty`` at ``price`` to ``order`` and move it to partially/fully filled."""
        if not 0.0 < qty <= order.remaining_qty + _EPS:
            raise OrderStateError(
                f"order {order.id}: fill qty={qty} exceeds remaining {order.remaining_qty}"
            )
        prev = order.filled_qty
        filled = prev + qty
        done = order.qty - filled <= _EPS
        target = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        if not can_transition(order.status, target):  # check first: nothing half-applied
            raise InvalidTransitionError(order.id, order.status.value, target.value)
        avg = order.avg_fill_price
        order.avg_fill_price = price if avg is None else (avg * prev + price * qty) / filled
        order.commission += commission
        order.filled_qty = order.qty if done else filled
        self.set_status(order, target, now)

    def record_late_fill(
        self, order: Order, qty: float, price: float, commission: float, now: int
    ) -> None:
        """Add an execution that happened before ``order`` ended (canceled, expired, replaced)
        but was reported after that: quantities change, the final status stays."""
        if order.status not in (OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REPLACED):
            raise OrderStateError(
                f"order {order.id}: status={order.status.value!r} is not canceled, expired "
                "or replaced; record the fill normally"
            )
        if not 0.0 < qty <= order.remaining_qty + _EPS:
            raise OrderStateError(
                f"order {order.id}: fill qty={qty} exceeds remaining {order.remaining_qty}"
            )
        prev = order.filled_qty
        filled = min(order.qty, prev + qty)
        avg = order.avg_fill_price
        order.avg_fill_price = price if avg is None else (avg * prev + price * qty) / (prev + qty)
        order.commission += commission
        order.filled_qty = filled
        order.updated_at = max(order.updated_at, now)

    def commitments(self, ignore: Order | None = None) -> tuple[dict[str, float], list[Order]]:
        """Signed quantity that open orders would add per symbol, and those orders in book order."""
        pending: dict[str, float] = {}
        orders: list[Order] = []
        for bucket in self.open.values():
            for o in bucket:
                if o is ignore:
                    continue
                pending[o.symbol] = pending.get(o.symbol, 0.0) + o.side.sign * o.remaining_qty
                orders.append(o)
        return pending, orders
