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

* **order classes.** A bracket, oto or oco order is sent as one request with its legs; the
  venue names the legs, and the engine learns their ids from the order's snapshots (its legs);
  a leg's event that arrives before that waits until the leg is known. The legs' quantities
  follow the same core rules as the venue's (:meth:`OrderBook.resize_exits`), their status
  changes come from the venue; an order the venue refuses takes its legs with it.

Everything here but :meth:`AsyncOrderManager.run_sender` is synchronous: applying an event never
awaits, so no two changes can interleave.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, Unpack

from tradeloop.errors import (
    BrokerConnectionError,
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
from tradeloop.execution.core.reconcile import (
    Accept,
    Adopt,
    ApplyFill,
    Finish,
    LocalOrder,
    Plan,
)
from tradeloop.execution.core.risk import RiskManager, risk_reason
from tradeloop.execution.core.state import can_transition
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.types import (
    BrokerEvent,
    EventKind,
    Fill,
    Order,
    OrderClass,
    OrderParams,
    OrderSide,
    OrderStatus,
    OrderType,
)

__all__ = ["AsyncOrderManager", "JournalLike"]

log = logging.getLogger("tradeloop.live")

_ACCEPTED_KINDS = frozenset({EventKind.NEW, EventKind.ACCEPTED, "pending_new"})
_FILL_KINDS = frozenset({EventKind.FILL, EventKind.PARTIAL_FILL})
_FINAL_KINDS: dict[str, OrderStatus] = {
    EventKind.CANCELED: OrderStatus.CANCELED,
    EventKind.EXPIRED: OrderStatus.EXPIRED,
    EventKind.REJECTED: OrderStatus.REJECTED,
    EventKind.REPLACED: OrderStatus.REPLACED,
}
_OPEN_STATUSES = frozenset(
    {OrderStatus.NEW, OrderStatus.HELD, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED}
)
_WAITING = frozenset({OrderStatus.NEW, OrderStatus.HELD})
_MAX_WAITING_EVENTS = 1000  # events of legs not known yet, kept until their ids are
# an execution reported after the order ended (events out of order): quantities still count
_LATE_FILL_STATUSES = frozenset({OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REPLACED})


def _positive(x: object) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


# A queued request: (kind, order, replacement)
_Request = tuple[str, Order, Order | None]

RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
"""Seconds between resends of a submission whose outcome is unknown (same client order id)."""


class JournalLike(Protocol):
    """Where the order manager writes what it does, durably, as it does it (see
    :class:`tradeloop.persistence.journal.OrderJournal`)."""

    def record_intent(self, order: Order, *, replaces: str | None = None) -> None: ...

    def record_broker_id(self, client_order_id: str, broker_order_id: str) -> None: ...

    def record_status(
        self, client_order_id: str, status: OrderStatus, ts: int, *, reason: str | None = None
    ) -> object: ...

    def record_fill(self, client_order_id: str, fill: Fill) -> bool: ...

    def record_qty(self, client_order_id: str, qty: float, ts: int) -> object: ...

    def record_event(
        self, client_order_id: str, kind: str, ts: int, detail: str | None = None
    ) -> None: ...


class AsyncOrderManager:
    """Orders of one account, kept in step with a broker (see the module docstring).

    ``validator`` checks requests before they are queued (the broker's own rules, ideally), so a
    malformed request raises at the ``ctx`` call, as in a backtest.

    ``client_id_prefix`` starts every generated client order id (a venue refuses a reused id
    forever, so ids must differ between runs); the local ``id`` of an order follows the backtest's
    sequence (``O000001``, ...), so the same strategy numbers its orders the same way in both
    engines.

    ``journal``: every order intent is written there *before* it is sent, then its broker id,
    status changes and fills as they arrive. A submission whose outcome is unknown is resent with
    the same client order id after each of ``retry_delays``; ``ready`` (the venue's order stream
    is up) holds new orders back while it says no.
    """

    def __init__(
        self,
        broker: AsyncBroker,
        portfolio: Portfolio,
        *,
        validator: OrderValidator | None = None,
        client_id_prefix: str = "",
        clock: Callable[[], int] | None = None,
        journal: JournalLike | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        ready: Callable[[], bool] | None = None,
        risk: RiskManager | None = None,
        last_price: Callable[[str], float | None] | None = None,
    ) -> None:
        self.broker = broker
        self.risk = risk
        self.last_price: Callable[[str], float | None] = (
            last_price if last_price is not None else (lambda symbol: None)
        )
        self.journal = journal
        self.retry_delays = tuple(retry_delays)
        self.sleep = sleep
        self.ready = ready  # is the venue's order stream up? new orders wait while it is not
        self.retries = 0
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
        self._unmatched: list[BrokerEvent] = []  # events of legs whose venue id is not known yet

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
        refused = self._risk_refusal(order, now, None)
        if self.journal is not None:
            self.journal.record_intent(order)  # with its legs; durable before anything is sent
        self.book.register(order)
        if refused is not None:
            self._refuse(order, refused, now)
        else:
            self._queue(("submit", order, None))
        return order

    def _risk_refusal(self, order: Order, now: int, ignore: Order | None) -> str | None:
        risk = self.risk
        if risk is None:
            return None
        reason = risk_reason(
            risk,
            order,
            book=self.book,
            portfolio=self.portfolio,
            ref_price=self.last_price(order.symbol),
            now=now,
            ignore=ignore,
        )
        if reason is None:
            risk.record(now)
        return reason

    def _refuse(self, order: Order, reason: str, now: int) -> None:
        """A pre-trade risk check refused ``order``: it ends ``rejected`` here, never sent."""
        self.book.set_status(order, OrderStatus.REJECTED, now, reason=reason)
        self._noted(order, reason)

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
        refused = self._risk_refusal(new, now, old)
        if self.journal is not None:
            self.journal.record_intent(new, replaces=old.client_order_id)
        self.book.register(new)
        if refused is not None:
            self._refuse(new, refused, now)  # the old order keeps working
            return new
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

    async def _stream_ready(self) -> None:
        """Hold new orders while the venue's order stream is down (their fills could not be
        heard); the reconnect reconciles first. Cancels are never held."""
        ready = self.ready
        if ready is None or ready():
            return
        log.info("order stream down: new orders wait for it")
        while not ready():
            if self.broker.connection_state in ("failed", "closed"):
                return  # it will not come back: let the request meet its fate
            await self.sleep(0.05)

    async def _with_retries(
        self,
        kind: str,
        target: Order,
        call: Callable[[], Awaitable[Order]],
        resends: list[int],
    ) -> Order:
        """Send a submission, resending it (same client order id) while its outcome is unknown;
        after the last attempt the error propagates and the order stays in flight."""
        attempt = 0
        while True:
            try:
                return await call()
            except (BrokerConnectionError, OSError, TimeoutError) as exc:
                if attempt >= len(self.retry_delays):
                    raise
                delay = self.retry_delays[attempt]
                attempt += 1
                resends[0] = attempt
                self.retries += 1
                log.warning(
                    "%s %s: outcome unknown (%s); resending the same client order id in %.1f s",
                    kind,
                    target.id,
                    exc,
                    delay,
                )
                await self.sleep(delay)
                if self.journal is not None:
                    self.journal.record_event(
                        target.client_order_id, "resend", self.clock(), str(exc)
                    )

    async def _found_at_venue(self, kind: str, target: Order, resends: int) -> bool:
        """Before ending an order ``rejected``: does the venue have it after all?

        A refusal is proof only for a request that was sent once. After a resend, the first
        attempt may have gone through (the resend is then refused: the order it replaces is
        already replaced, say), and a replacement can be refused for a reason that does not
        concern it: look it up by its client order id, and adopt it if the venue has it."""
        if resends == 0 and kind == "submit":
            return False
        try:
            snap = await self.broker.get_order_by_client_id(target.client_order_id)
        except (TradeloopError, OSError, TimeoutError):
            return False
        if snap.status is OrderStatus.REJECTED:
            return False
        log.info("%s %s: the venue has it after all; adopted", kind, target.id)
        self.apply_snapshot(target, snap)
        return True

    async def _send(self, request: _Request) -> None:
        kind, order, new = request
        target = new if new is not None else order
        broker = self.broker
        cancel_sent = False
        resends = [0]  # how many times the request was sent again after an unknown outcome
        try:
            if kind == "submit":
                await self._stream_ready()
                snap = await self._with_retries(
                    kind, order, lambda: broker.submit_order(order), resends
                )
                self.apply_snapshot(order, snap)
            elif kind == "replace":
                assert new is not None
                if new.status is not OrderStatus.NEW:
                    return
                if not order.is_open:  # the old order finished while the request waited
                    why = f"order {order.id} is {order.status.value}: nothing left to replace"
                    self._finish(new, OrderStatus.REJECTED, reason=why)
                    return
                await self._stream_ready()
                snap = await self._with_retries(
                    kind, new, lambda: broker.replace_order(order, new), resends
                )
                self.apply_snapshot(new, snap)
            elif kind == "cancel":
                while order.status is OrderStatus.REJECTED and order.replaces is not None:
                    order = self.book.get(order.replaces)  # its replacement never came to be
                if order.is_open:
                    await broker.cancel_order(order)  # ``canceled`` arrives as an event
                    cancel_sent = True
        except OrderRejectedError as exc:
            if kind == "cancel":  # a refused cancel says nothing about the order itself
                log.info("cancel %s refused by the venue: %s", order.id, exc.reason)
            elif not await self._found_at_venue(kind, target, resends[0]):
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
                if not await self._found_at_venue(kind, target, resends[0]):
                    self._finish(target, OrderStatus.REJECTED, reason=str(exc))
            else:
                log.info("%s %s: %s", kind, target.id, exc)
        except (BrokerError, OSError, TimeoutError) as exc:
            # unknown outcome: never assume rejected; the order stays in flight until the broker
            # (stream, lookup or reconciliation) tells what happened
            log.warning("%s %s: outcome unknown (%s); it stays in flight", kind, target.id, exc)
        except InvalidOrderError as exc:
            if not await self._found_at_venue(kind, target, resends[0]):
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

    def adopt(self, snap: Order, *, unfilled: bool = False) -> Order:
        """Take over an open order the broker already has (placed by an earlier run).

        ``unfilled``: adopt it as accepted with nothing filled, so that its fills, applied
        next, reach the portfolio (reconciliation does this)."""
        known = self._lookup(snap)
        if known is not None:
            return known
        copy = snap.snapshot()
        copy.legs = ()  # a leg adopted is tracked as an order of its own
        copy.parent_id = None
        if unfilled:
            copy.status = OrderStatus.ACCEPTED
            copy.filled_qty = 0.0
            copy.avg_fill_price = None
            copy.commission = 0.0
        order = self.book.adopt(copy)
        order.broker_order_id = None
        if self.journal is not None:
            self.journal.record_intent(order)
            self.journal.record_event(order.client_order_id, "adopted", snap.updated_at, snap.id)
            self.journal.record_status(order.client_order_id, order.status, snap.updated_at)
        self._set_broker_id(order, snap.id)
        return order

    def _set_broker_id(self, order: Order, broker_order_id: str) -> None:
        order.broker_order_id = broker_order_id
        self._by_broker_id[broker_order_id] = order
        if self.journal is not None:
            self.journal.record_broker_id(order.client_order_id, broker_order_id)

    def _lookup(self, snap: Order) -> Order | None:
        order = self._by_broker_id.get(snap.id)
        if order is None:
            order = self.book.by_client_id(snap.client_order_id)
            if order is not None and order.broker_order_id is None:
                self._set_broker_id(order, snap.id)
        return order

    def _mirror(self, order: Order, snap: Order) -> None:
        """Copy what the venue changes on its own: a trailing stop's current stop level, an
        exit leg's size; learn the venue ids of an order's legs."""
        if order.type is OrderType.TRAILING_STOP and snap.stop_price is not None:
            order.stop_price = snap.stop_price
        if order.order_class is not OrderClass.SIMPLE:
            if (
                order.is_exit_leg
                and _positive(snap.qty)
                and snap.qty >= order.filled_qty
                and snap.qty != order.qty
            ):
                order.qty = snap.qty
                self._journal_qty(order, snap.updated_at)
            if order.legs and snap.legs:
                self._learn_legs(order, snap.legs)

    def _journal_qty(self, order: Order, ts: int) -> None:
        """An exit leg's size changed: journal it (a restart takes it back)."""
        if self.journal is not None:
            self.journal.record_qty(order.client_order_id, order.qty, ts or self.clock())

    def _learn_legs(self, order: Order, venue_legs: tuple[Order, ...]) -> None:
        """Pair ``order``'s legs with the venue's (a take-profit is the limit leg, a stop-loss
        the other) and record their venue ids; then apply the events that waited for them."""
        learned = False
        for leg in order.legs:
            if leg.broker_order_id is not None:
                continue
            limit = leg.type is OrderType.LIMIT
            for venue in venue_legs:
                if (venue.type is OrderType.LIMIT) is limit and venue.id not in self._by_broker_id:
                    self._set_broker_id(leg, venue.id)
                    learned = True
                    break
        if learned and self._unmatched:
            waiting, self._unmatched = self._unmatched, []
            for event in waiting:
                self.on_event(event)

    def apply_snapshot(self, order: Order, snap: Order) -> None:
        """Apply a broker's answer about ``order`` (accepted, rejected, or already further)."""
        if order.broker_order_id is None:
            self._set_broker_id(order, snap.id)
        self._mirror(order, snap)
        status = snap.status
        if status is OrderStatus.REJECTED:
            self._finish(order, OrderStatus.REJECTED, reason=snap.reject_reason or "rejected")
        elif status is OrderStatus.HELD:
            if order.status is OrderStatus.NEW:
                self.book.set_status(order, OrderStatus.HELD, snap.updated_at)
        elif status is not OrderStatus.NEW:
            self._accept(order, snap.updated_at)

    def on_event(self, event: BrokerEvent) -> None:
        """Apply one broker event. Unknown orders and kinds are logged and ignored."""
        snap = event.order
        order = self._lookup(snap)
        kind = event.kind
        if order is None:
            if snap.order_class is not OrderClass.SIMPLE:
                # a leg reported before the answer that names it: wait for its id
                self._unmatched.append(event)
                del self._unmatched[:-_MAX_WAITING_EVENTS]
                return
            self.counts[kind] = self.counts.get(kind, 0) + 1
            log.info("event %s for an order this engine does not know: %s", kind, snap.id)
            return
        self.counts[kind] = self.counts.get(kind, 0) + 1
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
        if order.status in _WAITING:
            held = order.status is OrderStatus.HELD
            self.book.set_status(order, OrderStatus.ACCEPTED, ts or self.clock())
            parent = self.book.parent_of(order) if held else None
            if parent is not None and parent.filled_qty > 0:
                # a leg activated by its entry's fill (reported late, or found by
                # reconciliation): sized to what the entry filled, as the venue sizes it
                before = order.qty
                self.book.resize_exits(parent)
                if order.qty != before:
                    self._journal_qty(order, order.updated_at)
            if order.legs and order.order_class is not OrderClass.OCO:
                for leg in order.legs:  # they wait for the entry's fill, as at the venue
                    if leg.status is OrderStatus.NEW:
                        self.book.set_status(leg, OrderStatus.HELD, order.updated_at)
                        if self.journal is not None:
                            self.journal.record_status(
                                leg.client_order_id, leg.status, leg.updated_at
                            )
            self._noted(order)

    def _noted(self, order: Order, reason: str | None = None) -> None:
        """An order changed status: journal it and queue the update for the strategy."""
        if self.journal is not None:
            self.journal.record_status(
                order.client_order_id, order.status, order.updated_at, reason=reason
            )
        self.notifications.append(order.snapshot())
        self.on_change()

    def _finish(
        self, order: Order, status: OrderStatus, reason: str | None = None, ts: int = 0
    ) -> None:
        if order.status is status:
            return  # reported twice (answer and stream): once is enough
        if status is not OrderStatus.REJECTED:
            reason = None
        if order.status in _WAITING and status is not OrderStatus.REJECTED:
            if order.status is OrderStatus.HELD and status is not OrderStatus.REPLACED:
                pass  # a held leg may end without being accepted
            else:
                self._accept(order, ts)
        if not can_transition(order.status, status):
            log.warning("order %s: %s reported while %s; ignored", order.id, status, order.status)
            return
        self.book.set_status(order, status, ts or self.clock(), reason=reason)
        self._canceling.discard(order.id)
        self._replacing.pop(order.id, None)  # a finished old order's pending replacement
        if order.replaces is not None and self._replacing.get(order.replaces) is order:
            del self._replacing[order.replaces]  # a replacement that finished (rejected)
        self._noted(order, reason)
        if status is OrderStatus.REJECTED and order.legs:
            for leg in order.legs:  # a refused order's legs never existed at the venue either
                if leg.is_open:
                    self._finish(leg, OrderStatus.REJECTED, reason=reason, ts=order.updated_at)

    def _apply_fill(self, order: Order, event: BrokerEvent) -> None:
        vf = event.fill
        if vf is None:
            log.warning("fill event for %s without a usable fill; ignored", order.id)
            return
        self.apply_fill(order, vf.qty, vf.price, vf.commission, vf.ts, vf.execution_id)

    def apply_fill(
        self,
        order: Order,
        qty: float,
        price: float,
        commission: float,
        ts: int,
        execution_id: str,
    ) -> bool:
        """Apply one execution to ``order`` and the portfolio, once (by execution id); queue
        ``on_fill`` and ``on_order_update``. ``False`` if it was not applied (known, unusable,
        or the order cannot take it)."""
        if not _positive(qty) or not _positive(price) or not commission >= 0:
            log.warning(
                "fill event for %s without a usable fill (%s); ignored", order.id, execution_id
            )
            return False
        if execution_id:
            if execution_id in self._executions:
                return False  # the same execution reported twice
            self._executions.add(execution_id)
        late = order.status in _LATE_FILL_STATUSES
        if not late and order.status not in _OPEN_STATUSES:
            log.warning("fill %s for %s order %s; ignored", execution_id, order.status, order.id)
            return False
        try:
            if late:  # it happened before the cancel; the report came after: still ours
                self.book.record_late_fill(order, qty, price, commission, ts)
            else:
                self._accept(order, ts)
                self.book.record_fill(order, qty, price, commission, ts)
        except OrderStateError as exc:
            log.warning("fill %s not applied: %s", execution_id, exc)
            return False
        pf = self.portfolio
        pf.apply_fill(order.symbol, order.side, qty, price, commission, ts)
        if not order.is_open:
            self._canceling.discard(order.id)
        fill = Fill(
            order.id,
            order.symbol,
            order.side,
            qty,
            price,
            commission,
            ts,
            execution_id,
            pf.positions[order.symbol].qty,
        )
        self.fills.append(fill)
        if self.journal is not None:
            self.journal.record_fill(order.client_order_id, fill)
            self.journal.record_status(order.client_order_id, order.status, ts)
        self.notifications.append(fill)
        self.notifications.append(order.snapshot())
        if order.order_class is not OrderClass.SIMPLE and not late:
            sizes = [(m, m.qty) for m in self.book.exit_group(order)]
            self.book.resize_exits(order)  # as the venue does; the venue's events end exits
            for m, qty in sizes:
                if m.qty != qty:
                    self._journal_qty(m, ts)
        self.on_change()
        return True

    # -- reconciliation and restart -----------------------------------------------------------

    def local_view(self) -> list[LocalOrder]:
        """The engine's orders as reconciliation compares them."""
        return [
            LocalOrder(
                o.client_order_id, o.status, o.filled_qty, o.broker_order_id, o.avg_fill_price
            )
            for o in self.book.orders.values()
        ]

    @property
    def known_executions(self) -> frozenset[str]:
        return frozenset(self._executions)

    def apply_plan(self, plan: Plan, *, abandon_missing: bool = False) -> int:
        """Apply a reconciliation plan, in its order; each change reaches the strategy as the
        event a live stream would have delivered. ``abandon_missing`` (at startup): in-flight
        orders the venue never had end ``canceled`` — they are never resent. Returns the number
        of changes applied."""
        applied = 0
        for action in plan.actions:
            if isinstance(action, Adopt):
                self.adopt(action.order, unfilled=True)
                applied += 1
            elif isinstance(action, Accept):
                order = self.book.by_client_id(action.client_order_id)
                if order is not None:
                    if order.broker_order_id is None:
                        self._set_broker_id(order, action.broker_order_id)
                    self._accept(order, action.ts)
                    applied += 1
            elif isinstance(action, ApplyFill):
                order = self.book.by_client_id(action.client_order_id)
                f = action.fill
                if order is not None and self.apply_fill(
                    order, f.qty, f.price, f.commission, f.ts, f.execution_id
                ):
                    applied += 1
            elif isinstance(action, Finish):
                order = self.book.by_client_id(action.client_order_id)
                if order is None:
                    continue
                if action.status is OrderStatus.REPLACED:
                    new = self._by_broker_id.get(action.replaced_by or "")
                    order.replaced_by = new.id if new is not None else action.replaced_by
                before = order.status
                self._finish(order, action.status, reason=action.reason, ts=action.ts)
                applied += order.status is not before
        if abandon_missing:
            for cid in plan.missing:
                order = self.book.by_client_id(cid)
                if order is not None and order.status is OrderStatus.NEW:
                    self.book.set_status(order, OrderStatus.CANCELED, self.clock())
                    if self.journal is not None:
                        self.journal.record_event(
                            cid, "abandoned", self.clock(), "not at the venue after a restart"
                        )
                    self._noted(order)
                    applied += 1
        return applied

    def restore(self, orders: Iterable[Order], fills: Iterable[Fill]) -> None:
        """Take back the orders and fills of an earlier run of this journal (after a restart):
        registered as they were, local ids kept, fills known by execution id. Nothing is sent
        and the strategy is not told (it saw these before).

        Order classes come back linked: a leg (``parent_id`` set, as the journal's orders have
        it) goes back into its parent's ``legs``, the take-profit before the stop-loss; a
        ``held`` leg stays held (out of the open set) and an active one is in it once. Orders
        whose ``legs`` are set already (or legs given only through their parent) are taken as
        they are."""
        restored: dict[str, Order] = {}
        for order in orders:
            restored.setdefault(order.id, order)
            for leg in order.legs:
                leg.parent_id = order.id
                restored.setdefault(leg.id, leg)
        legs: dict[str, list[Order]] = {}
        for order in restored.values():
            # the book registers a parent's legs with it: every order is registered once, on its
            # own, and the links are set after
            order.legs = ()
            if order.parent_id is not None:
                legs.setdefault(order.parent_id, []).append(order)
        for order in restored.values():
            self.book.restore(order)
            if order.broker_order_id:
                self._by_broker_id[order.broker_order_id] = order
        for parent_id, found in legs.items():
            parent = self.book.orders.get(parent_id)
            if parent is None:
                log.warning("restore: the parent %s of %s is unknown", parent_id, found[0].id)
                continue
            # a take-profit (the limit leg) before a stop-loss, as OrderBook.new_order makes them
            parent.legs = tuple(sorted(found, key=lambda leg: leg.type is not OrderType.LIMIT))
        for fill in fills:
            self.fills.append(fill)
            if fill.execution_id:
                self._executions.add(fill.execution_id)
        for order in self.book.orders.values():
            if order.replaces is not None and order.status is OrderStatus.NEW:
                old = self.book.orders.get(order.replaces)
                if old is not None and old.is_open:
                    self._replacing[old.id] = order
