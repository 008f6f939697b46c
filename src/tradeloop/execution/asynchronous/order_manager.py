"""AsyncOrderManager: the engine's side of live orders.

It keeps the account as the engine sees it with the same pure core the backtest uses (OrderBook,
OrderValidator, the order state machine, Portfolio) and adds what a remote venue needs:

* **requests leave in order.** ``submit``/``cancel``/``replace`` are plain calls that validate,
  register the order (status ``new``: pending until the broker answers) and queue a request.
  One sender task sends them one at a time, in the order the strategy made them.
* **the venue decides.** An order is ``rejected`` only when the broker says so; a request whose
  outcome is unknown (timeout, dropped connection) leaves the order in flight.
* **events are applied once, in order.** Broker events and answers are applied as they arrive
  (through the state machine; fills deduplicated by execution id) and each change is queued as a
  notification for the strategy, delivered by the engine at its next safe point.

Everything here but :meth:`AsyncOrderManager.run_sender` is synchronous: applying an event never
awaits, so no two changes can interleave.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable
from typing import Any, Unpack

from tradeloop.errors import (
    BrokerError,
    DuplicateOrderError,
    InvalidOrderError,
    OrderRejectedError,
    OrderStateError,
    TradeloopError,
)
from tradeloop.execution.async_protocols import AsyncBroker
from tradeloop.execution.core.book import OrderBook
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.core.state import can_transition
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.types import (
    BrokerEvent,
    EventKind,
    Fill,
    Order,
    OrderParams,
    OrderSide,
    OrderStatus,
    OrderType,
)

__all__ = ["AsyncOrderManager"]

log = logging.getLogger("tradeloop.live")

_ACCEPTED_KINDS = frozenset({EventKind.NEW, EventKind.ACCEPTED, "pending_new"})
_FILL_KINDS = frozenset({EventKind.FILL, EventKind.PARTIAL_FILL})
_FINAL_KINDS: dict[str, OrderStatus] = {
    EventKind.CANCELED: OrderStatus.CANCELED,
    EventKind.EXPIRED: OrderStatus.EXPIRED,
    EventKind.REJECTED: OrderStatus.REJECTED,
    EventKind.REPLACED: OrderStatus.REPLACED,
}
_OPEN_STATUSES = frozenset({OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED})


def _positive(x: object) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


# A queued request: (kind, order, replacement)
_Request = tuple[str, Order, Order | None]


class AsyncOrderManager:
    """Orders of one account, kept in step with a broker (see the module docstring).

    ``validator`` checks requests before they are queued (the broker's own rules, ideally), so a
    malformed request raises at the ``ctx`` call, as in a backtest.

    ``client_id_prefix`` starts every generated client order id (a venue refuses a reused id
    forever, so ids must differ between runs); the local ``id`` of an order follows the backtest's
    sequence (``O000001``, ...), so the same strategy numbers its orders the same way in both
    engines.
    """

    def __init__(
        self,
        broker: AsyncBroker,
        portfolio: Portfolio,
        *,
        validator: OrderValidator | None = None,
        client_id_prefix: str = "",
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.broker = broker
        self.portfolio = portfolio
        self.book = OrderBook(
            validator if validator is not None else OrderValidator(),
            client_id_prefix=client_id_prefix,
        )
        self.fills: list[Fill] = []
        self.notifications: list[Fill | Order] = []
        self.clock: Callable[[], int] = clock if clock is not None else (lambda: 0)
        self.on_change: Callable[[], None] = lambda: None
        self.last_event = ""
        self.counts: dict[str, int] = {}
        self._outbox: deque[_Request] = deque()
        self._wakeup = asyncio.Event()
        self._busy = False
        self._by_broker_id: dict[str, Order] = {}
        self._replacing: dict[str, Order] = {}  # old local id -> its pending replacement
        self._executions: set[str] = set()
        self._canceling: set[str] = set()  # ids of orders with a cancel request not yet settled

    # -- commands (plain calls, from strategy callbacks) ----------------------------------------

    def submit(
        self,
        symbol: str,
        side: OrderSide | str,
        qty: float,
        type: OrderType | str = OrderType.MARKET,
        *,
        now: int,
        **params: Unpack[OrderParams],
    ) -> Order:
        """Validate and register an order (``new``) and queue it for the broker.

        Malformed requests raise :class:`InvalidOrderError` and register nothing.
        """
        order = self.book.new_order(symbol, side, qty, type, now=now, **params)
        self.book.register(order)
        self._queue(("submit", order, None))
        return order

    def cancel(self, order: Order | str, now: int) -> bool:
        """Queue a cancel request. ``False`` if the order already reached a terminal state or
        a cancel of it is already on its way.

        The order stays open until the broker reports it ``canceled`` (or filled first).
        """
        o = self.current(order)
        if not o.is_open or o.id in self._canceling:
            return False  # done already, or a cancel is on its way: nothing new to ask
        self._canceling.add(o.id)
        self._queue(("cancel", o, None))
        return True

    def replace(self, order: Order | str, now: int, **changes: Any) -> Order:
        """Queue a replacement of an open order; returns the new order (``new``, new id).

        The old order ends ``replaced`` when the broker confirms; if the broker rejects the new
        order, the new one ends ``rejected`` and the old one keeps working.
        """
        old = self.current(order)
        new = self.book.replacement(old, now, **changes)
        self.book.register(new)
        self._replacing[old.id] = new
        self._queue(("replace", old, new))
        return new

    def current(self, order: Order | str) -> Order:
        """The order that now stands for ``order``: its replacement if it was replaced, or if a
        replacement is on its way (following the chain). A cancel or replace of a handle kept
        across a replace acts on the newest order, as in a backtest."""
        o = self.book.current(order)
        while (pending := self._replacing.get(o.id)) is not None:
            o = self.book.current(pending)
        return o

    def _queue(self, request: _Request) -> None:
        self._outbox.append(request)
        self._wakeup.set()

    @property
    def idle(self) -> bool:
        """No request waiting or in flight, and no notification undelivered."""
        return not self._outbox and not self._busy and not self.notifications

    @property
    def pending_requests(self) -> int:
        return len(self._outbox) + self._busy

    # -- the sender task -----------------------------------------------------------------------

    async def run_sender(self, after_each: Callable[[], None]) -> None:
        """Send queued requests one at a time, forever (cancel the task to stop it).

        ``after_each`` runs after every answer has been applied (the engine delivers
        notifications there).
        """
        while True:
            if not self._outbox:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            request = self._outbox.popleft()
            self._busy = True
            try:
                await self._send(request)
            finally:
                self._busy = False
            after_each()

    async def _send(self, request: _Request) -> None:
        kind, order, new = request
        target = new if new is not None else order
        broker = self.broker
        cancel_sent = False
        try:
            if kind == "submit":
                self.apply_snapshot(order, await broker.submit_order(order))
            elif kind == "replace":
                assert new is not None
                if new.status is not OrderStatus.NEW:
                    return
                if not order.is_open:  # the old order finished while the request waited
                    why = f"order {order.id} is {order.status.value}: nothing left to replace"
                    self._finish(new, OrderStatus.REJECTED, reason=why)
                    return
                self.apply_snapshot(new, await broker.replace_order(order, new))
            elif kind == "cancel":
                while order.status is OrderStatus.REJECTED and order.replaces is not None:
                    order = self.book.get(order.replaces)  # its replacement never came to be
                if order.is_open:
                    await broker.cancel_order(order)  # ``canceled`` arrives as an event
                    cancel_sent = True
        except OrderRejectedError as exc:
            if kind == "cancel":  # a refused cancel says nothing about the order itself
                log.info("cancel %s refused by the venue: %s", order.id, exc.reason)
            else:
                self._finish(target, OrderStatus.REJECTED, reason=exc.reason)
        except DuplicateOrderError:
            # the venue already has it (an earlier attempt went through): adopt the venue's view
            try:
                snap = await broker.get_order_by_client_id(target.client_order_id)
            except (TradeloopError, OSError, TimeoutError) as exc:
                log.warning("order %s: duplicate id, lookup failed: %s", target.id, exc)
            else:
                self.apply_snapshot(target, snap)
        except OrderStateError as exc:  # e.g. a cancel that crossed a fill; an unknown order
            if kind == "replace":  # the venue did not take the replacement: it never existed
                self._finish(target, OrderStatus.REJECTED, reason=str(exc))
            else:
                log.info("%s %s: %s", kind, target.id, exc)
        except (BrokerError, OSError, TimeoutError) as exc:
            # unknown outcome: never assume rejected; the order stays in flight until the broker
            # (stream, lookup or reconciliation) tells what happened
            log.warning("%s %s: outcome unknown (%s); it stays in flight", kind, target.id, exc)
        except InvalidOrderError as exc:
            self._finish(target, OrderStatus.REJECTED, reason=str(exc))
        finally:
            # a cancel the venue took keeps refusing duplicates until the order is done; one
            # that failed or was not needed may be asked again
            if kind == "cancel" and not (cancel_sent and order.is_open):
                self._canceling.discard(request[1].id)
                self._canceling.discard(order.id)

    # -- applying what the broker says (plain calls) --------------------------------------------

    def refresh(self, snaps: list[Order]) -> None:
        """Mirror the venue's current view of open orders (e.g. trailing stop levels)."""
        for snap in snaps:
            order = self._lookup(snap)
            if order is not None:
                self._mirror(order, snap)

    def adopt(self, snap: Order) -> Order:
        """Take over an open order the broker already has (placed by an earlier run)."""
        known = self._lookup(snap)
        if known is not None:
            return known
        order = self.book.adopt(snap.snapshot())
        order.broker_order_id = snap.id
        self._by_broker_id[snap.id] = order
        return order

    def _lookup(self, snap: Order) -> Order | None:
        order = self._by_broker_id.get(snap.id)
        if order is None:
            order = self.book.by_client_id(snap.client_order_id)
            if order is not None and order.broker_order_id is None:
                order.broker_order_id = snap.id
                self._by_broker_id[snap.id] = order
        return order

    @staticmethod
    def _mirror(order: Order, snap: Order) -> None:
        """Copy what the venue changes on its own: a trailing stop's current stop level."""
        if order.type is OrderType.TRAILING_STOP and snap.stop_price is not None:
            order.stop_price = snap.stop_price

    def apply_snapshot(self, order: Order, snap: Order) -> None:
        """Apply a broker's answer about ``order`` (accepted, rejected, or already further)."""
        if order.broker_order_id is None:
            order.broker_order_id = snap.id
            self._by_broker_id[snap.id] = order
        self._mirror(order, snap)
        status = snap.status
        if status is OrderStatus.REJECTED:
            self._finish(order, OrderStatus.REJECTED, reason=snap.reject_reason or "rejected")
        elif status is not OrderStatus.NEW:
            self._accept(order, snap.updated_at)

    def on_event(self, event: BrokerEvent) -> None:
        """Apply one broker event. Unknown orders and kinds are logged and ignored."""
        snap = event.order
        order = self._lookup(snap)
        kind = event.kind
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if order is None:
            log.info("event %s for an order this engine does not know: %s", kind, snap.id)
            return
        self.last_event = f"{kind} {order.id} {order.symbol}"
        self._mirror(order, snap)
        if kind in _FILL_KINDS:
            self._apply_fill(order, event)
        elif kind in _ACCEPTED_KINDS:
            self._accept(order, event.ts)
        elif kind in _FINAL_KINDS:
            status = _FINAL_KINDS[kind]
            if status is OrderStatus.REPLACED:
                new = self._by_broker_id.get(snap.replaced_by or "")
                if new is None:
                    new = self._replacing.get(order.id)
                order.replaced_by = new.id if new is not None else snap.replaced_by
            self._finish(order, status, reason=snap.reject_reason, ts=event.ts)
        else:
            log.debug("event %s for %s ignored", kind, order.id)

    def _accept(self, order: Order, ts: int) -> None:
        if order.status is OrderStatus.NEW:
            self.book.set_status(order, OrderStatus.ACCEPTED, ts or self.clock())
            self.notifications.append(order.snapshot())
            self.on_change()

    def _finish(
        self, order: Order, status: OrderStatus, reason: str | None = None, ts: int = 0
    ) -> None:
        if order.status is status:
            return  # reported twice (answer and stream): once is enough
        if status is not OrderStatus.REJECTED:
            reason = None
        if order.status is OrderStatus.NEW and status is not OrderStatus.REJECTED:
            self._accept(order, ts)
        if not can_transition(order.status, status):
            log.warning("order %s: %s reported while %s; ignored", order.id, status, order.status)
            return
        self.book.set_status(order, status, ts or self.clock(), reason=reason)
        self._canceling.discard(order.id)
        self._replacing.pop(order.id, None)  # a finished old order's pending replacement
        if order.replaces is not None and self._replacing.get(order.replaces) is order:
            del self._replacing[order.replaces]  # a replacement that finished (rejected)
        self.notifications.append(order.snapshot())
        self.on_change()

    def _apply_fill(self, order: Order, event: BrokerEvent) -> None:
        vf = event.fill
        if vf is None or not _positive(vf.qty) or not _positive(vf.price) or vf.commission < 0:
            log.warning("fill event for %s without a usable fill; ignored", order.id)
            return
        if vf.execution_id:
            if vf.execution_id in self._executions:
                return  # the same execution reported twice
            self._executions.add(vf.execution_id)
        if order.status not in _OPEN_STATUSES:
            log.warning("fill %s for %s order %s; ignored", vf.execution_id, order.status, order.id)
            return
        self._accept(order, vf.ts)
        try:
            self.book.record_fill(order, vf.qty, vf.price, vf.commission, vf.ts)
        except OrderStateError as exc:
            log.warning("fill %s not applied: %s", vf.execution_id, exc)
            return
        self.portfolio.apply_fill(order.symbol, order.side, vf.qty, vf.price, vf.commission, vf.ts)
        if not order.is_open:
            self._canceling.discard(order.id)
        fill = Fill(
            order.id, order.symbol, order.side, vf.qty, vf.price, vf.commission, vf.ts,
            vf.execution_id,
        )  # fmt: skip
        self.fills.append(fill)
        self.notifications.append(fill)
        self.notifications.append(order.snapshot())
        self.on_change()
