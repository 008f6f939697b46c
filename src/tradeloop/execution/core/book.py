"""OrderBook: the bookkeeping of one account's orders, shared by both engines' order managers.

It creates validated orders, keeps every order by id and the *open* ones by symbol (so per-bar work
is proportional to open orders, not to all orders ever placed), applies fills to orders and drives
their state machine. It does no I/O and emits no events: managers decide how to deliver them.

Order classes (``bracket``, ``oto``, ``oco``): :meth:`OrderBook.new_order` creates the exit legs
with the order (``order.legs``, each with ``parent_id``). A leg joins the open set only once it is
active (``accepted``); a ``held`` leg waits for its entry's fill. The exits of one order share one
quantity: the entry's filled quantity (bracket, oto) or the oco's, less what the exits have
filled, and :meth:`OrderBook.resize_exits` keeps every open exit sized to that.

Cost: nothing here that a submission or a fill calls walks the orders of other symbols. The book
counts its open orders (:attr:`OrderBook.open_count`), drops a symbol's bucket once its last open
order ends, and notes in :attr:`OrderBook.touched` every symbol whose open orders changed (the
exchange's buying-power reservations recompute only those).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradeloop.errors import (
    EngineError,
    InvalidOrderError,
    InvalidTransitionError,
    OrderNotFoundError,
    OrderStateError,
)
from tradeloop.execution.core.state import can_transition, transition
from tradeloop.execution.core.validation import (
    ExitLegs,
    OrderValidator,
    check_order_class,
    coerce_enum,
)
from tradeloop.execution.types import (
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    StopLossParams,
    TakeProfitParams,
    TimeInForce,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tradeloop.results.log import OrderLog

__all__ = ["OrderBook", "class_params"]

_EPS = 1e-9
_ACTIVE = frozenset({OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED})
_WAITING = frozenset({OrderStatus.NEW, OrderStatus.HELD})
# enum members as module constants (an ``OrderClass.X`` lookup is slow on Python 3.11)
_SIMPLE = OrderClass.SIMPLE
_OCO = OrderClass.OCO
_ACCEPTED = OrderStatus.ACCEPTED
_NO_EXITS = ExitLegs(None, None, None)


def class_params(
    order: Order,
) -> tuple[OrderClass, TakeProfitParams | None, StopLossParams | None]:
    """``order``'s ``order_class``, ``take_profit`` and ``stop_loss`` request fields, from the
    legs :meth:`OrderBook.new_order` made: what a broker sends for it."""
    take_profit: TakeProfitParams | None = None
    stop_loss: StopLossParams | None = None
    if order.order_class is OrderClass.OCO and order.limit_price is not None:
        take_profit = {"limit_price": order.limit_price}
    for leg in order.legs:
        if leg.type is OrderType.LIMIT and leg.limit_price is not None:
            take_profit = {"limit_price": leg.limit_price}
        elif leg.stop_price is not None:
            stop_loss = {"stop_price": leg.stop_price, "limit_price": leg.limit_price}
    return order.order_class, take_profit, stop_loss


class OrderBook:
    """The orders of one account (see the module docstring).

    With a :class:`~tradeloop.results.log.OrderLog` (:meth:`keep_log`; the backtest's book has
    one), an order that is done (terminal, and so is every order of its order class) leaves
    ``orders`` for the log, where it is a compact row; :meth:`get`, :meth:`by_client_id` and
    :meth:`current` still find it there (as an equal copy, by a scan: slower than a live one).
    The move happens at the next registration, so code that changes an order just after ending
    it (a replaced order's ``replaced_by``) still changes the object. Only a book whose
    terminal orders never change again may have a log: not a live engine's (late fills).
    """

    __slots__ = (
        "_client_ids",
        "_custom_done",
        "_done",
        "_rows",
        "_seq",
        "client_id_prefix",
        "id_prefix",
        "log",
        "open",
        "open_count",
        "orders",
        "touched",
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
        # the open orders by symbol, in the order they opened (a symbol with none has no entry)
        self.open: dict[str, list[Order]] = {}
        self.open_count = 0  # how many orders ``open`` holds
        # symbols whose open orders changed (joined, left, filled, resized) since the owner of
        # this set last emptied it: what buying-power reservations must look at again
        self.touched: set[str] = set()
        self._client_ids: dict[str, Order] = {}
        self._seq = 0
        self.log: OrderLog | None = None
        self._rows: dict[str, int] = {}  # with a log: each order of ``orders``' row in it
        self._done: list[Order] = []  # with a log: orders ended since the last registration
        self._custom_done: set[str] = set()  # logged orders' client ids of the caller's own

    def keep_log(self, log: OrderLog) -> None:
        """Keep orders in ``log`` from now on (see the class docstring). Only before the first
        order is registered, and once: an :class:`EngineError` otherwise."""
        if self.orders or self.log is not None:
            raise EngineError(
                "keep_log: the book must have no order and no log yet (call it once, first)"
            )
        self.log = log

    def all_orders(self) -> Sequence[Order]:
        """Every order registered, in registration order: the log (done orders as rows, the
        others as themselves), or, without one, a list of ``orders``."""
        return self.log if self.log is not None else list(self.orders.values())

    def _retire(self) -> None:
        """Move the orders that ended, and whose order class has ended too, to the log."""
        done = self._done
        self._done = []
        orders = self.orders
        rows = self._rows
        log = self.log
        assert log is not None
        client_ids = self._client_ids
        prefix = self.client_id_prefix
        for o in done:
            pid = o.parent_id
            root = o if pid is None else orders.get(pid, o)
            legs = root.legs
            if legs:
                if root.is_open or any(leg.is_open for leg in legs):
                    continue
                group: tuple[Order, ...] = (root, *legs)
            else:
                group = (root,)
            for m in group:
                mid = m.id
                row = rows.pop(mid, None)
                if row is None:
                    continue  # logged already
                if orders.get(mid) is m:
                    del orders[mid]
                cid = m.client_order_id
                if client_ids.get(cid) is m:
                    del client_ids[cid]
                if cid is not mid and cid != prefix + mid:
                    self._custom_done.add(cid)
                log.commit(row)

    def _find(self, order_id: str) -> Order | None:
        o = self.orders.get(order_id)
        if o is None and self.log is not None:
            o = self.log.find(order_id)
        return o

    def _client_id_taken(self, client_order_id: str, auto: bool = False) -> bool:
        """Some order has this client id. ``auto``: it is ``client_id_prefix`` + a new order
        id, so no logged order can have it as its own generated one (no scan)."""
        if client_order_id in self._client_ids:
            return True
        if self.log is None:
            return False
        if client_order_id in self._custom_done:
            return True
        prefix = self.client_id_prefix
        if auto or not client_order_id.startswith(prefix):
            return False
        # a logged order's generated client id: prefix + its id (a scan, for such ids only)
        done = self.log.find(client_order_id[len(prefix) :])
        return done is not None and done.client_order_id == client_order_id

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
        order_class: OrderClass | str = OrderClass.SIMPLE,
        take_profit: TakeProfitParams | None = None,
        stop_loss: StopLossParams | None = None,
        now: int = 0,
    ) -> Order:
        """A validated order in status ``new``, not yet registered. Raises InvalidOrderError.

        With an ``order_class`` other than ``simple``, the order comes with its exit legs
        (``order.legs``, status ``new``, ids following the order's), validated too.
        """
        cls = (
            order_class
            if order_class is _SIMPLE
            else coerce_enum(OrderClass, "order_class", order_class)
        )
        side_ = coerce_enum(OrderSide, "side", side)
        type_ = coerce_enum(OrderType, "type", type)
        tif_ = coerce_enum(TimeInForce, "tif", tif)
        if cls is _SIMPLE and take_profit is None and stop_loss is None:
            exits = _NO_EXITS  # a simple order: nothing to check (the common case, kept fast)
        else:
            exits = check_order_class(
                cls,
                side=side_,
                type=type_,
                tif=tif_,
                limit_price=limit_price,
                stop_price=stop_price,
                take_profit=take_profit,
                stop_loss=stop_loss,
            )
        if cls is _OCO:
            limit_price = exits.take_profit  # an oco is its own take-profit
        order = Order(
            "",
            symbol,
            side_,
            qty,
            type_,
            tif_,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_price=trail_price,
            trail_percent=trail_percent,
            client_order_id=client_order_id if client_order_id is not None else "-",
            tag=tag,
            created_at=now,
        )
        self.validator.validate(order)
        if client_order_id is not None and self._client_id_taken(client_order_id):
            raise InvalidOrderError(
                "client_order_id", client_order_id, "already used (client order ids are unique)"
            )
        legs: tuple[Order, ...] = ()
        if cls is not _SIMPLE:  # (a new Order is simple already)
            order.order_class = cls
            legs = self._legs(order, exits)
        order.qty = float(qty)
        order.id = self._next_id()
        if client_order_id is None:
            prefix = self.client_id_prefix
            while self._client_id_taken(prefix + order.id, True):  # a caller used it already
                order.id = self._next_id()
            order.client_order_id = prefix + order.id
        if legs:
            taken = {order.client_order_id}
            for leg in legs:
                leg.qty = order.qty
                leg.parent_id = order.id
                leg.id = self._next_id()
                while self._client_id_taken(self.client_id_prefix + leg.id, True) or (
                    self.client_id_prefix + leg.id in taken
                ):
                    leg.id = self._next_id()
                leg.client_order_id = self.client_id_prefix + leg.id
                taken.add(leg.client_order_id)
            order.legs = legs
        return order

    def _legs(self, order: Order, exits: ExitLegs) -> tuple[Order, ...]:
        """The exit legs of ``order`` (validated; ids and quantities are set by the caller)."""
        cls = order.order_class
        # a bracket's or oto's exits close the entry's position; an oco's are on its own side
        side = order.side
        if cls is not OrderClass.OCO:
            side = OrderSide.SELL if side is OrderSide.BUY else OrderSide.BUY
        specs: list[tuple[str, OrderType, float | None, float | None]] = []
        if exits.take_profit is not None and cls is not OrderClass.OCO:
            specs.append(("take_profit", OrderType.LIMIT, exits.take_profit, None))
        if exits.stop_loss is not None:
            kind = OrderType.STOP if exits.stop_loss_limit is None else OrderType.STOP_LIMIT
            specs.append(("stop_loss", kind, exits.stop_loss_limit, exits.stop_loss))
        legs = []
        for name, kind, limit, stop in specs:
            leg = Order(
                "",
                order.symbol,
                side,
                order.qty,
                kind,
                order.tif,
                limit_price=limit,
                stop_price=stop,
                client_order_id="-",
                tag=order.tag,
                created_at=order.created_at,
            )
            leg.order_class = cls
            try:
                self.validator.validate(leg)
            except InvalidOrderError as exc:
                field = f"{name}.{exc.field}" if exc.field.endswith("_price") else exc.field
                raise InvalidOrderError(field, exc.value, exc.reason) from None
            legs.append(leg)
        return tuple(legs)

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
        if old.order_class is not OrderClass.SIMPLE:
            raise InvalidOrderError(
                "order_class",
                old.order_class.value,
                "orders of a bracket, oco or oto (the entry and its legs) cannot be replaced; "
                "cancel them and submit new ones",
            )
        asked = {
            k: v
            for k, v in (
                ("qty", qty),
                ("limit_price", limit_price),
                ("stop_price", stop_price),
                ("trail_price", trail_price),
                ("trail_percent", trail_percent),
                ("tif", tif),
            )
            if v is not None
        }
        trailing = old.type is OrderType.TRAILING_STOP
        if trailing and trail_price is not None:
            trail_percent = None
        elif trailing and trail_percent is not None:
            trail_price = None
        else:
            trail_price = old.trail_price if trail_price is None else trail_price
            trail_percent = old.trail_percent if trail_percent is None else trail_percent
        new_qty = old.remaining_qty if qty is None else qty
        new_tif = old.tif if tif is None else coerce_enum(TimeInForce, "tif", tif)
        new_limit = old.limit_price if limit_price is None else limit_price
        # a trailing stop's stop_price is the matcher's current level, not a request field
        new_stop = None if trailing else (old.stop_price if stop_price is None else stop_price)
        if (
            new_qty == old.remaining_qty
            and new_tif is old.tif
            and new_limit == old.limit_price
            and (trailing or new_stop == old.stop_price)
            and trail_price == old.trail_price
            and trail_percent == old.trail_percent
        ):
            raise InvalidOrderError(
                "changes",
                asked,
                f"nothing would change: order {old.id} already has these values "
                "(a replace needs a new qty, price, trail or tif)",
            )
        new = self.new_order(
            old.symbol,
            old.side,
            new_qty,
            old.type,
            tif=new_tif,
            limit_price=new_limit,
            stop_price=new_stop,
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
        """Keep ``order`` (and its legs). A leg joins the open set once it is accepted."""
        log = self.log
        if log is not None:
            if self._done:
                self._retire()
            self._rows[order.id] = log.reserve(order)
        self.orders[order.id] = order
        self._client_ids[order.client_order_id] = order
        if order.is_open and not (order.parent_id is not None and order.status in _WAITING):
            self.open.setdefault(order.symbol, []).append(order)
            self.open_count += 1
            self.touched.add(order.symbol)
        for leg in order.legs:
            self.register(leg)

    def adopt(self, order: Order) -> Order:
        """Register an order that exists elsewhere (a venue's open order from an earlier run)
        under a fresh local id; its client order id is kept. Returns it."""
        if self._client_id_taken(order.client_order_id):
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
        o = self._find(order_id)
        if o is None:
            raise OrderNotFoundError(order_id)
        return o

    def by_client_id(self, client_order_id: str) -> Order | None:
        """The registered order with this client order id, or ``None``."""
        o = self._client_ids.get(client_order_id)
        if o is None and self.log is not None:
            o = self.log.find_client(client_order_id)
        return o

    def resolve(self, order: Order | str) -> Order:
        if isinstance(order, Order):
            order = order.id
        return self.get(order)

    def current(self, order: Order | str) -> Order:
        """The order that now stands for ``order``: itself, or, if it was replaced, its
        replacement (following the chain), so a handle kept across a replace still works."""
        o = self.resolve(order)
        while o.status is OrderStatus.REPLACED and o.replaced_by is not None:
            nxt = self._find(o.replaced_by)
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
        symbol = order.symbol
        if not order.is_open:
            if self.log is not None:
                self._done.append(order)
            bucket = self.open.get(symbol)
            if bucket is not None and order in bucket:
                bucket.remove(order)
                self.open_count -= 1
                self.touched.add(symbol)
                if not bucket:
                    del self.open[symbol]
        elif order.parent_id is not None and status is _ACCEPTED:
            bucket = self.open.setdefault(symbol, [])
            if order not in bucket:  # a leg becomes active
                bucket.append(order)
                self.open_count += 1
                self.touched.add(symbol)

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
        self.touched.add(order.symbol)
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
        """Signed quantity that open orders would add per symbol, and those orders in book order.

        Linked exits (a bracket's take-profit and stop-loss, an oco's two orders) close the same
        shares, at most one of them can trade them: each group counts once. O(open orders): a
        submission asks :meth:`commitments_of` about its own symbol instead."""
        pending: dict[str, float] = {}
        orders: list[Order] = []
        groups: set[str] | None = None
        for bucket in self.open.values():
            for o in bucket:
                if o is ignore:
                    continue
                if o.order_class is not _SIMPLE and o.is_exit_leg:
                    key = o.parent_id or o.id
                    if groups is None:
                        groups = set()
                    elif key in groups:
                        continue
                    groups.add(key)
                pending[o.symbol] = pending.get(o.symbol, 0.0) + o.side.sign * o.remaining_qty
                orders.append(o)
        return pending, orders

    def commitments_of(self, symbol: str, ignore: Order | None = None) -> tuple[float, list[Order]]:
        """:meth:`commitments` for ``symbol`` alone: the signed quantity its open orders would
        add and those orders in book order (O(open orders on ``symbol``))."""
        bucket = self.open.get(symbol)
        if not bucket:
            return 0.0, []
        pending = 0.0
        orders: list[Order] = []
        groups: set[str] | None = None
        for o in bucket:
            if o is ignore:
                continue
            if o.order_class is not _SIMPLE and o.is_exit_leg:
                key = o.parent_id or o.id
                if groups is None:
                    groups = set()
                elif key in groups:
                    continue
                groups.add(key)
            pending += o.side.sign * o.remaining_qty
            orders.append(o)
        return pending, orders

    # -- order classes -------------------------------------------------------------------------

    def parent_of(self, order: Order) -> Order | None:
        """The order ``order`` is a leg of (``None`` for an order that is no leg)."""
        return None if order.parent_id is None else self._find(order.parent_id)

    def exit_group(self, order: Order) -> tuple[Order, ...]:
        """The linked exits of ``order``'s order class, whatever their status: a bracket's or
        oto's legs (also when ``order`` is the entry), or an oco and its leg; ``()`` for a
        simple order."""
        if order.parent_id is not None:
            parent = self._find(order.parent_id)
            if parent is None:
                return (order,)
        elif order.legs:
            parent = order
        else:
            return ()
        if parent.order_class is OrderClass.OCO:
            return (parent, *parent.legs)
        return parent.legs

    def held_by_exits(self, symbol: str, side: OrderSide, ignore: Order | None = None) -> float:
        """Shares of ``symbol``'s position that active linked exits on ``side`` already hold
        (a group's exits hold the same shares: counted once). Held legs, waiting for an entry
        that has not filled, hold none yet."""
        total = 0.0
        seen: set[str] = set()
        for o in self.open.get(symbol, ()):
            if o is ignore or o.side is not side or not o.is_exit_leg or o.status not in _ACTIVE:
                continue
            key = o.parent_id or o.id
            if key not in seen:
                seen.add(key)
                total += o.remaining_qty
        return total

    def resize_exits(self, filled: Order) -> float:
        """After a fill of ``filled`` (an entry or one of its exits): the quantity its exits may
        still trade (the entry's filled quantity or the oco's, less what the exits filled), and
        every other active exit resized to trade exactly that. Held legs keep their size."""
        group = self.exit_group(filled)
        if filled.is_exit_leg:
            rest = 0.0 if not filled.is_open else filled.qty - filled.filled_qty
        else:
            rest = filled.filled_qty - sum(m.filled_qty for m in group)
        if rest > _EPS:
            for m in group:
                if m is not filled and m.status in _ACTIVE:
                    m.qty = m.filled_qty + rest
                    self.touched.add(m.symbol)
        return max(rest, 0.0)
