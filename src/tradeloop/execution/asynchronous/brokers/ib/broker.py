"""IBBroker: Interactive Brokers (TWS or IB Gateway) as an async broker, through ib_async.

It *holds* its parts and inherits from nothing: an :class:`IBSettings` (where TWS listens,
the API client id, the account), a :class:`~tradeloop.execution.asynchronous.components.cache.
CacheManager` (account and positions, short TTLs, invalidated by fills and reconnects), the
shared reconnect policy (:func:`~tradeloop.execution.asynchronous.components.reconnect.
reconnect_with_backoff` with :class:`~tradeloop.execution.core.backoff.Backoff`) and one
``ib_async.IB`` per session. Everything IB-specific that is not I/O is in :mod:`.mapping`.

What IB needs beyond those parts, and why:

* **Acknowledgements.** ``placeOrder`` returns at once and TWS never answers a request as such:
  acceptance is openOrder/orderStatus, refusal is an error message for the order id. So
  :meth:`IBBroker.submit_order` waits for one of them; silence or a dropped socket is a
  :class:`BrokerConnectionError` (the order may exist), never a rejection.
* **Idempotency by orderRef.** IB does not enforce unique ``orderRef`` values, so the broker
  does: before placing, it looks for the client order id among the session's trades and, after
  a reconnect, among TWS's open orders, completed orders and executions; a resend of an order
  TWS already has adopts it instead of placing it twice. Order ids come from ``nextValidId``;
  error 103 (id already used) asks TWS for a new id and places again, once.
* **Commissions on fills.** An execution (execDetails) is held until its commissionReport
  (joined by execId) arrives, so the engine gets one fill with its commission.
* **Reconnects.** ib_async has none: the broker notices the closed socket, reconnects with
  backoff and jitter on a fresh ``IB()`` (whose startup sync re-reads open orders, completed
  orders and executions), resubscribes bars and calls ``on_reconnect`` (the engine reconciles).
  Error 1100 (IB <-> TWS lost) holds new orders like a lost socket; 1101/1102 (restored)
  reconcile, and 1101 resubscribes market data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tradeloop.errors import (
    BrokerConnectionError,
    ConfigError,
    DuplicateOrderError,
    OrderNotFoundError,
    OrderStateError,
    TradeloopError,
)
from tradeloop.execution.async_protocols import EventHandler
from tradeloop.execution.asynchronous.brokers.ib.mapping import (
    BarAggregator,
    ack_status,
    connectivity,
    fill_from_ib,
    ib_order_fields,
    is_warning,
    last_error,
    order_error,
    snapshot,
    to_ns,
    venue_fill,
)
from tradeloop.execution.asynchronous.components.cache import CacheManager
from tradeloop.execution.asynchronous.components.reconnect import reconnect_with_backoff
from tradeloop.execution.core.backoff import Backoff
from tradeloop.execution.core.reconcile import VenueFill
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.types import (
    Account,
    Bar,
    BrokerEvent,
    Clock,
    EventKind,
    Order,
    OrderStatus,
    Position,
)

__all__ = ["IBBroker", "IBSettings"]

log = logging.getLogger("tradeloop.live")

_COMMISSION_WAIT = 2.0  # seconds an execution waits for its commission report


@dataclass(frozen=True)
class IBSettings:
    """Where TWS / IB Gateway listens and who we are there. ``order_timeout``: seconds to wait
    for TWS to take or refuse an order; ``bar_seconds``: the bar size the 5-second real-time
    bars are folded into."""

    host: str = "127.0.0.1"
    port: int = 7497
    client_id: int = 1
    account: str = ""
    connect_timeout: float = 10.0
    order_timeout: float = 5.0
    bar_seconds: int = 60
    exchange: str = "SMART"
    currency: str = "USD"


class IBBroker:
    """Interactive Brokers as an :class:`~tradeloop.execution.async_protocols.AsyncBroker`
    (see the module docstring). ``symbols``: what ``bars()`` streams and orders may name."""

    def __init__(
        self,
        settings: IBSettings | None = None,
        *,
        symbols: Sequence[str] | None = None,
        cache: CacheManager | None = None,
        backoff: Backoff | None = None,
        ib_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.settings = settings if settings is not None else IBSettings()
        if not 0 < self.settings.port < 65536:
            raise ConfigError("broker.port", self.settings.port, "must be a TCP port")
        self.symbols: tuple[str, ...] | None = tuple(symbols) if symbols else None
        self.cache = cache if cache is not None else CacheManager()
        self.backoff = backoff if backoff is not None else Backoff(base=0.25, cap=10.0)
        self.validator = OrderValidator(self.symbols, fractional=False)
        self._ib_factory = ib_factory
        self.on_reconnect: Callable[[], Awaitable[None]] | None = None
        self.on_gap: Callable[[], None] | None = None
        self.ib: Any = None
        self.reconnects = 0
        self.errors: list[tuple[int, int, str]] = []  # (reqId, code, text), the last 100
        self._handler: EventHandler | None = None
        self._state = "disconnected"
        self._upstream = True  # IB <-> TWS connectivity (1100 / 1102)
        self._closed = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._waiters: dict[int, asyncio.Future[Order]] = {}
        self._pending_fills: dict[str, tuple[Any, Any, asyncio.TimerHandle]] = {}
        self._emitted_fills: set[str] = set()
        self._acked: set[int] = set()  # permIds reported accepted this session
        self._bar_symbols: list[str] = []
        self._bars: asyncio.Queue[Bar] | None = None
        self._aggregator = BarAggregator(self.settings.bar_seconds)
        self._now = 0  # the venue's time as last seen (bars, executions), int ns
        self._orders_lock = asyncio.Lock()  # ib_async keeps one pending open-orders request

    def __repr__(self) -> str:
        s = self.settings
        return f"IBBroker({s.host}:{s.port}, client_id={s.client_id})"

    @property
    def name(self) -> str:
        return "ib"

    @property
    def streams(self) -> list[IBBroker]:
        """The one connection, as the engine counts its reconnects."""
        return [self]

    @property
    def connection_state(self) -> str:
        if self._closed:
            return "closed"
        if self._state == "connected" and not self._upstream:
            return "reconnecting"
        return self._state

    # -- connection ----------------------------------------------------------------------------

    def _new_ib(self) -> Any:
        if self._ib_factory is not None:
            return self._ib_factory()
        from ib_async import IB

        return IB()

    async def connect(self, on_event: EventHandler) -> None:
        """Connect (a few attempts with backoff) and start delivering order events."""
        self._handler = on_event
        self._state = "connecting"
        try:
            await self._open()
        except Exception as exc:
            ok = await reconnect_with_backoff(
                self._open,
                name="IB",
                backoff=self.backoff,
                closing=lambda: self._closed,
                max_attempts=3,
            )
            if not ok:
                self._state = "failed"
                raise BrokerConnectionError(
                    f"IB: cannot connect to {self.settings.host}:{self.settings.port} "
                    f"({type(exc).__name__})"
                ) from None

    async def _open(self) -> None:
        """Drop the old session, open a new one and wire its events."""
        old, self.ib = self.ib, None
        if old is not None:
            with contextlib.suppress(Exception):
                old.disconnect()
        ib = self._new_ib()
        # ib_async reads nextValidId only at startup; feed later ones (reqIds) to its counter
        ib.wrapper.nextValidId = lambda order_id: ib.client.updateReqId(int(order_id))
        s = self.settings
        try:
            await ib.connectAsync(
                s.host, s.port, clientId=s.client_id, timeout=s.connect_timeout, account=s.account
            )
        except BaseException:
            with contextlib.suppress(Exception):
                ib.disconnect()
            raise
        ib.orderStatusEvent += lambda trade: self._on_status(ib, trade)
        ib.execDetailsEvent += lambda trade, fill: self._on_execution(ib, trade, fill)
        ib.commissionReportEvent += lambda trade, fill, rep: self._on_commission(ib, fill, rep)
        ib.errorEvent += lambda req_id, code, msg, contract: self._on_error(ib, req_id, code, msg)
        ib.disconnectedEvent += lambda: self._on_disconnected(ib)
        self.ib = ib
        self._upstream = True
        self._state = "connected"
        self.cache.invalidate("account", "positions")
        for fill in ib.fills():  # what the startup sync brought: the venue's clock so far
            self._now = max(self._now, to_ns(fill.execution.time))
        if self._bar_symbols:
            self._subscribe(self._bar_symbols)

    def _on_disconnected(self, ib: Any) -> None:
        if ib is not self.ib or self._closed:
            return
        log.warning("IB: connection to TWS lost; reconnecting")
        self._state = "reconnecting"
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(BrokerConnectionError("IB: connection lost; outcome unknown"))
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.get_running_loop().create_task(
                self._reconnect(), name="ib-reconnect"
            )

    async def _reconnect(self) -> None:
        self._aggregator.reset()
        ok = await reconnect_with_backoff(
            self._open, name="IB", backoff=self.backoff, closing=lambda: self._closed
        )
        if not ok:
            if not self._closed:
                self._state = "failed"
            return
        self.reconnects += 1
        log.info("IB: reconnected (%d)", self.reconnects)
        await self._resync()

    async def _resync(self) -> None:
        if self.on_reconnect is not None:
            try:
                await self.on_reconnect()
            except Exception as exc:
                log.warning("IB: reconciliation after reconnect failed (asked again): %r", exc)
                if self.on_gap is not None:
                    self.on_gap()

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        task = self._reconnect_task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for _trade, _fill, timer in self._pending_fills.values():
            timer.cancel()
        self._pending_fills.clear()
        ib, self.ib = self.ib, None
        if ib is not None:
            with contextlib.suppress(Exception):
                ib.disconnect()
        self._state = "closed"

    def _session(self) -> Any:
        ib = self.ib
        if ib is None or self._state != "connected" or not ib.isConnected():
            raise BrokerConnectionError("IB: not connected to TWS")
        return ib

    # -- events from TWS -----------------------------------------------------------------------

    def _emit(self, event: BrokerEvent) -> None:
        if self._handler is not None:
            self._handler(event)

    def _on_status(self, ib: Any, trade: Any) -> None:
        if ib is not self.ib:
            return
        o = trade.order
        status = trade.orderStatus.status
        waiter = self._waiters.get(o.orderId)
        code, _ = last_error(trade)
        refused = (
            status in ("Cancelled", "ApiCancelled", "Inactive") and o.permId not in self._acked
        )
        if refused and code and waiter is not None:
            return  # a refusal: the error message settles the waiting submission
        snap = snapshot(trade, now=self._now)
        if ack_status(status) and o.permId and o.permId not in self._acked:
            self._acked.add(o.permId)
            if waiter is not None and not waiter.done():
                waiter.set_result(snap)
            if status != "Filled":
                self._emit(BrokerEvent(EventKind.NEW, snap, snap.updated_at))
            return
        if status in ("Cancelled", "ApiCancelled"):
            if waiter is not None and not waiter.done():
                waiter.set_result(snap)
            if o.permId:
                self._emit(BrokerEvent(EventKind.CANCELED, snap, snap.updated_at))
            else:  # refused before TWS gave it an id: a late refusal (no one waits for it)
                snap.status = OrderStatus.REJECTED
                snap.reject_reason = last_error(trade)[1] or "refused by TWS"
                self._emit(BrokerEvent(EventKind.REJECTED, snap, snap.updated_at))
        elif status == "Inactive":
            self._emit(BrokerEvent(EventKind.REJECTED, snap, snap.updated_at))

    def _on_execution(self, ib: Any, trade: Any, fill: Any) -> None:
        if ib is not self.ib:
            return
        exec_id = fill.execution.execId
        if exec_id in self._emitted_fills or exec_id in self._pending_fills:
            return
        self._now = max(self._now, to_ns(fill.execution.time))
        loop = asyncio.get_running_loop()
        timer = loop.call_later(_COMMISSION_WAIT, self._flush_fill, exec_id)
        self._pending_fills[exec_id] = (trade, fill, timer)

    def _on_commission(self, ib: Any, fill: Any, report: Any) -> None:
        if ib is not self.ib:
            return
        pending = self._pending_fills.pop(fill.execution.execId, None)
        if pending is None:
            return
        trade, ib_fill, timer = pending
        timer.cancel()
        self._deliver_fill(trade, ib_fill, float(report.commission or 0.0))

    def _flush_fill(self, exec_id: str) -> None:
        """No commission report came: deliver the execution without one (reconciliation
        reads the commission later from the executions TWS lists)."""
        pending = self._pending_fills.pop(exec_id, None)
        if pending is not None:
            log.warning("IB: execution %s came without a commission report", exec_id)
            trade, ib_fill, _ = pending
            self._deliver_fill(trade, ib_fill, 0.0)

    def _deliver_fill(self, trade: Any, ib_fill: Any, commission: float) -> None:
        self._emitted_fills.add(ib_fill.execution.execId)
        fill, snap = fill_from_ib(trade, ib_fill, commission)
        self.cache.on_fill()
        kind = EventKind.FILL if snap.status is OrderStatus.FILLED else EventKind.PARTIAL_FILL
        self._emit(BrokerEvent(kind, snap, fill.ts, fill))

    def _on_error(self, ib: Any, req_id: int, code: int, message: str) -> None:
        if ib is not self.ib:
            return
        self.errors.append((req_id, code, message))
        del self.errors[:-100]
        change = connectivity(code)
        if change == "lost":
            log.warning("IB: TWS lost its connection to IB (1100); new orders wait")
            self._upstream = False
            return
        if change is not None:
            log.info("IB: TWS connectivity restored (%d); reconciling", code)
            self._upstream = True
            if change == "restored_data_lost" and self._bar_symbols:
                self._aggregator.reset()
                self._subscribe(self._bar_symbols)
            self._spawn(self._resync(), "ib-resync")
            return
        waiter = self._waiters.get(req_id)
        if waiter is None or waiter.done() or is_warning(code):
            return
        waiter.set_exception(order_error(code, message, ""))

    # -- orders --------------------------------------------------------------------------------

    def _contract(self, symbol: str) -> Any:
        from ib_async import Stock

        return Stock(symbol, self.settings.exchange, self.settings.currency)

    def _trades_by_ref(self, client_order_id: str) -> list[Any]:
        ib = self.ib
        if ib is None:
            return []
        return [t for t in ib.trades() if t.order.orderRef == client_order_id]

    def _live_trade(self, client_order_id: str) -> Any | None:
        """This session's trade of a client order id that TWS took or may still take (not one
        it refused)."""
        for t in self._trades_by_ref(client_order_id):
            if t.order.permId or t.orderStatus.status in ("PendingSubmit", "ApiPending"):
                return t
            if not last_error(t)[0]:
                return t
        return None

    async def submit_order(self, order: Order) -> Order:
        """Place ``order`` (orderRef = its client order id) and wait until TWS takes it or
        refuses it. A resend finds the first attempt by its orderRef and adopts it."""
        ib = self._session()
        cid = order.client_order_id
        known = self._live_trade(cid)
        if known is None and self.reconnects:
            known = await self._find_at_venue(cid)
        if known is not None:
            if known.order.permId:
                return snapshot(known, now=self._now)
            return await self._await_ack(known, cid)
        fields = ib_order_fields(order, self.settings.account)
        from ib_async import Order as IBOrder

        contract = self._contract(order.symbol)
        for attempt in range(2):
            ib_order = IBOrder(**fields)
            ib_order.orderId = ib.client.getReqId()
            trade = ib.placeOrder(contract, ib_order)
            try:
                return await self._await_ack(trade, cid)
            except DuplicateOrderError:
                if attempt:
                    raise
                log.warning(
                    "IB: order id %d already used (103); asking for a new id", ib_order.orderId
                )
                await self._fresh_id(ib, ib_order.orderId)
        raise AssertionError("unreachable")

    async def _fresh_id(self, ib: Any, used: int) -> None:
        ib.client.reqIds(-1)
        for _ in range(50):
            if ib.client._reqIdSeq > used:
                break
            await asyncio.sleep(0.02)

    async def _await_ack(self, trade: Any, cid: str) -> Order:
        order_id = trade.order.orderId
        if trade.order.permId and ack_status(trade.orderStatus.status):
            return snapshot(trade, now=self._now)
        loop = asyncio.get_running_loop()
        fut = self._waiters.get(order_id)
        if fut is None or fut.done():
            fut = loop.create_future()
            self._waiters[order_id] = fut
        try:
            async with asyncio.timeout(self.settings.order_timeout):
                snap = await asyncio.shield(fut)
        except TimeoutError:
            raise BrokerConnectionError(
                f"IB: no answer to order {cid} within {self.settings.order_timeout:g} s; "
                "outcome unknown"
            ) from None
        except TradeloopError as exc:
            raise _with_client_id(exc, cid) from None
        finally:
            if fut.done():
                self._waiters.pop(order_id, None)
        return snap

    async def _find_at_venue(self, client_order_id: str) -> Any | None:
        """After a reconnect: does TWS have this order (open, completed or executed)?"""
        with contextlib.suppress(TradeloopError, TimeoutError, ConnectionError):
            await self._refresh_orders()
        for t in self._trades_by_ref(client_order_id):
            if t.order.permId:
                return t
        return None

    async def replace_order(self, order: Order, new: Order) -> Order:
        raise OrderStateError(
            "the IB broker does not modify orders: cancel this one and submit a new one"
        )

    async def cancel_order(self, order: Order) -> None:
        ib = self._session()
        trade = self._trade_of(order)
        if trade is None:
            raise OrderNotFoundError(order.broker_order_id or order.client_order_id)
        if trade.isDone():
            raise OrderStateError(f"order {order.client_order_id} is {trade.orderStatus.status}")
        ib.cancelOrder(trade.order)

    def _trade_of(self, order: Order) -> Any | None:
        ib = self.ib
        if ib is None:
            return None
        perm = order.broker_order_id
        for t in ib.trades():
            if perm and str(t.order.permId) == perm and t.order.orderId:
                return t
        live = self._live_trade(order.client_order_id)
        return live if live is not None and live.order.orderId else None

    async def get_order(self, broker_order_id: str) -> Order:
        for snap in await self.get_orders():
            if snap.id == broker_order_id:
                return snap
        raise OrderNotFoundError(broker_order_id)

    async def get_order_by_client_id(self, client_order_id: str) -> Order:
        trade = self._live_trade(client_order_id)
        if trade is None or not trade.order.permId:
            trade = await self._find_at_venue(client_order_id)
        if trade is None or not trade.order.permId:
            raise OrderNotFoundError(client_order_id)
        return snapshot(trade, now=self._now)

    async def get_open_orders(self) -> list[Order]:
        ib = await self._refresh_orders(completed=False)
        return self._snapshots(t for t in ib.openTrades())

    async def _refresh_orders(self, *, completed: bool = True) -> Any:
        """Ask TWS for its open (and completed) orders, one request at a time."""
        async with self._orders_lock:
            ib = self._session()
            timeout = self.settings.order_timeout
            await asyncio.wait_for(ib.reqOpenOrdersAsync(), timeout)
            if completed:
                await asyncio.wait_for(ib.reqCompletedOrdersAsync(False), timeout)
            return ib

    async def get_orders(self, since: int | None = None) -> list[Order]:
        """Every order of this session and of TWS's open and completed lists (``since`` is not
        needed: TWS lists today's orders only)."""
        ib = await self._refresh_orders()
        return self._snapshots(ib.trades())

    def _snapshots(self, trades: Any) -> list[Order]:
        out: dict[str, Order] = {}
        for t in trades:
            if not t.order.permId or not t.order.orderRef:
                continue
            snap = snapshot(t, now=self._now)
            have = out.get(snap.id)
            if (
                have is None
                or snap.filled_qty > have.filled_qty
                or (snap.status.is_terminal and not have.status.is_terminal)
            ):
                out[snap.id] = snap
        return list(out.values())

    async def get_fills(self, since: int | None = None) -> list[VenueFill]:
        """Today's executions TWS lists (with their commissions), oldest first."""
        ib = self._session()
        await asyncio.wait_for(ib.reqExecutionsAsync(), self.settings.order_timeout)
        fills = [venue_fill(f) for f in ib.fills()]  # the session's store, commissions joined
        fills = [f for f in fills if since is None or f.ts >= since]
        fills.sort(key=lambda f: (f.ts, f.cum_qty or 0.0))
        return fills

    async def get_positions(self) -> list[Position]:
        async def load() -> list[Position]:
            ib = self._session()
            items = await asyncio.wait_for(ib.reqPositionsAsync(), self.settings.order_timeout)
            out = []
            for p in items:
                if not p.position:
                    continue
                pos = Position(p.contract.symbol)
                pos.qty = float(p.position)
                pos.avg_price = float(p.avgCost)
                pos.last_price = pos.avg_price
                out.append(pos)
            return out

        return list(await self.cache.get("positions", load))

    async def get_account(self) -> Account:
        async def load() -> Account:
            ib = self._session()
            await asyncio.wait_for(ib.reqAccountSummaryAsync(), self.settings.order_timeout)
            values: dict[str, float] = {}
            account = ""
            for v in ib.wrapper.acctSummary.values():
                if self.settings.account and v.account != self.settings.account:
                    continue
                with contextlib.suppress(ValueError):
                    values[v.tag] = float(v.value)
                    account = v.account
            cash = values.get("TotalCashValue", 0.0)
            equity = values.get("NetLiquidation", cash)
            return Account(cash, equity, values.get("BuyingPower", cash), id=account)

        return await self.cache.get("account", load)

    async def get_clock(self) -> Clock:
        ib = self._session()
        when = await asyncio.wait_for(ib.reqCurrentTimeAsync(), self.settings.order_timeout)
        return Clock(to_ns(when), True, None, None)

    # -- market data ---------------------------------------------------------------------------

    def _subscribe(self, symbols: Sequence[str]) -> None:
        ib = self.ib
        if ib is None:
            return
        for symbol in symbols:
            bars = ib.reqRealTimeBars(self._contract(symbol), 5, "TRADES", False)
            bars.updateEvent += lambda items, has_new, sym=symbol, sess=ib: self._on_rt_bar(
                sess, sym, items, has_new
            )

    def _on_rt_bar(self, ib: Any, symbol: str, items: Any, has_new: bool) -> None:
        if ib is not self.ib or not has_new or not items:
            return
        b = items[-1]
        epoch = int(b.time.timestamp())
        for bar in self._aggregator.add(
            symbol, epoch, b.open_, b.high, b.low, b.close, float(b.volume)
        ):
            self._now = max(self._now, bar.ts)
            if self._bars is not None:
                self._bars.put_nowait(bar)

    async def bars(self, symbols: Sequence[str] | None = None) -> AsyncIterator[Bar]:
        """Bars of ``symbols`` (default: the broker's): TWS's 5-second real-time bars folded
        into ``bar_seconds`` bars; resubscribed after every reconnect."""
        names = list(symbols) if symbols is not None else list(self.symbols or ())
        if not names:
            raise ConfigError("symbols", names, "name the symbols whose bars to stream")
        queue: asyncio.Queue[Bar] = asyncio.Queue()
        self._bars = queue
        self._bar_symbols = names
        self._subscribe(names)
        while True:
            try:
                yield await asyncio.wait_for(queue.get(), 1.0)
            except TimeoutError:
                if self._closed or self._state == "failed":
                    return


def _with_client_id(exc: TradeloopError, cid: str) -> TradeloopError:
    """The error of an order refusal, naming the client order id."""
    from tradeloop.errors import OrderRejectedError

    if isinstance(exc, OrderRejectedError):
        return OrderRejectedError(cid, exc.reason, exc.code)
    if isinstance(exc, DuplicateOrderError):
        return DuplicateOrderError(cid)
    if isinstance(exc, OrderNotFoundError):
        return OrderNotFoundError(cid)
    return exc
