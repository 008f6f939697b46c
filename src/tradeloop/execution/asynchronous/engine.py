"""AsyncExecutionEngine: the same strategies on an event loop, against a broker.

The engine differs from the synchronous one only in where events come from and how orders leave
(the httpx ``Client``/``AsyncClient`` idea); the bookkeeping is the same pure core. Three tasks
share one thread, and every piece of engine or strategy code between two ``await`` points runs
to the end before another starts, so nothing needs a lock:

* the **bar pump** pulls the broker's bar stream. For each bar it marks the portfolio, records the
  history, delivers pending events and waits until whatever their callbacks asked for has been
  answered (and delivered), calls ``on_bar``, and settles again before it pulls the next bar.
  Where a backtest's answers are immediate, this waits for them: with a simulated broker the
  lock-step makes a run identical to a backtest, callback for callback; live, it means a strategy
  never acts on a bar while its earlier requests are still unanswered.
* the **sender** sends the strategy's requests one at a time, in order, and delivers the events
  the answers caused.
* the **notifier** delivers events that arrive on their own (a live fill between two bars).

Events reach the strategy only between callbacks, never from inside a ``ctx`` call, and each order
change exactly once: the contract of the synchronous engine.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Unpack

from tradeloop.data.feed import GrowingFeed
from tradeloop.errors import ConfigError, EngineError, TradeloopError
from tradeloop.execution.async_protocols import AsyncBroker
from tradeloop.execution.asynchronous.order_manager import AsyncOrderManager
from tradeloop.execution.context import BaseContext
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.core.validation import MAX_CLIENT_ORDER_ID_LEN, OrderValidator
from tradeloop.execution.types import (
    Bar,
    BrokerEvent,
    Fill,
    Order,
    OrderParams,
    OrderSide,
    OrderType,
)
from tradeloop.results.result import BacktestResult, EquityCurve
from tradeloop.strategy import Strategy

__all__ = ["AsyncContext", "AsyncEngine", "AsyncExecutionEngine", "LiveStatus"]

log = logging.getLogger("tradeloop.live")

_MAX_RUN_ID = MAX_CLIENT_ORDER_ID_LEN - 16  # room for "-" and the local id (O000001...)


class AsyncContext(BaseContext):
    """The :class:`~tradeloop.strategy.Context` a strategy gets on the asynchronous engine.

    Requests are queued for the broker: ``submit_order`` returns the order ``new`` (pending until
    the broker answers); ``cancel`` returns ``True`` if a cancel request was queued, and the order
    stays open until the broker reports it canceled.
    """

    __slots__ = ("_manager",)

    def __init__(self, feed: GrowingFeed, manager: AsyncOrderManager) -> None:
        super().__init__(feed, manager.book, manager.portfolio)
        self._manager = manager

    def submit_order(
        self,
        symbol: str,
        side: OrderSide | str,
        qty: float,
        type: OrderType | str = OrderType.MARKET,
        **params: Unpack[OrderParams],
    ) -> Order:
        return self._manager.submit(symbol, side, qty, type, now=self.now, **params)

    def cancel(self, order: Order | str) -> bool:
        return self._manager.cancel(order, self.now)

    def replace(self, order: Order | str, **changes: Any) -> Order:
        return self._manager.replace(order, self.now, **changes)


@dataclass
class LiveStatus:
    """What a status display shows about a running engine."""

    broker: str
    connection: str
    equity: float
    cash: float
    positions: dict[str, float] = field(default_factory=dict)
    open_orders: int = 0
    pending_requests: int = 0
    bars: int = 0
    last_bar_ts: int | None = None
    last_event: str = ""
    fills: int = 0


def _default_run_id() -> str:
    return f"tl{int(time.time() * 1000):x}"


class AsyncExecutionEngine:
    """Runs one strategy against one broker. ``await engine.run()`` once; it returns the same
    :class:`~tradeloop.results.result.BacktestResult` a backtest does.

    ``symbols``: what to trade and stream (default: the broker's own list, e.g. a replay's).
    ``run_id`` starts every client order id (default: derived from the start time).
    ``cancel_on_stop``: cancel the orders still open when the run stops.
    ``history_bars``: bars per symbol kept for ``ctx.history``.
    """

    def __init__(
        self,
        broker: AsyncBroker,
        strategy: Strategy,
        *,
        symbols: Sequence[str] | None = None,
        run_id: str | None = None,
        cancel_on_stop: bool = False,
        history_bars: int = 100_000,
    ) -> None:
        if not isinstance(broker, AsyncBroker):
            raise ConfigError(
                "broker", type(broker).__name__, "must implement the AsyncBroker protocol"
            )
        if not isinstance(strategy, Strategy):
            raise ConfigError("strategy", type(strategy).__name__, "must be a Strategy instance")
        if symbols is None:
            symbols = getattr(broker, "symbols", None)
        if not symbols:
            raise ConfigError("symbols", symbols, "name the symbols to trade (at least one)")
        run_id = run_id if run_id is not None else _default_run_id()
        if not (isinstance(run_id, str) and 0 < len(run_id) <= _MAX_RUN_ID):
            raise ConfigError("run_id", run_id, f"must be a string of 1..{_MAX_RUN_ID} chars")
        if not (isinstance(history_bars, int) and history_bars >= 1):
            raise ConfigError("history_bars", history_bars, "must be an integer >= 1")
        self.broker = broker
        self.strategy = strategy
        self.symbols: tuple[str, ...] = tuple(symbols)
        self.run_id = run_id
        self.cancel_on_stop = cancel_on_stop
        self.portfolio = Portfolio(0.0)
        self.history = GrowingFeed(self.symbols, max_bars=history_bars)
        validator = getattr(broker, "validator", None)
        if not isinstance(validator, OrderValidator):  # the venue will judge fractions itself
            validator = OrderValidator(self.symbols, fractional=True)
        self.manager = AsyncOrderManager(
            broker,
            self.portfolio,
            validator=validator,
            client_id_prefix=f"{run_id}-",
            clock=lambda: self.ctx.now,
        )
        self.ctx = AsyncContext(self.history, self.manager)
        self.manager.on_change = self._on_change
        self.bars_processed = 0
        self.curve = EquityCurve()
        self._idle = asyncio.Event()
        self._notify = asyncio.Event()
        self._stopping = False
        self._ran = False
        self._pump_task: asyncio.Task[None] | None = None
        self._sender_task: asyncio.Task[None] | None = None
        self._waiting_for_bar = False

    # -- status --------------------------------------------------------------------------------

    def status(self) -> LiveStatus:
        pf = self.portfolio
        mgr = self.manager
        return LiveStatus(
            broker=self.broker.name,
            connection=self.broker.connection_state,
            equity=pf.cash + pf.market_value,
            cash=pf.cash,
            positions={s: p.qty for s, p in pf.positions.items() if p.qty != 0.0},
            open_orders=sum(len(b) for b in mgr.book.open.values()),
            pending_requests=mgr.pending_requests,
            bars=self.bars_processed,
            last_bar_ts=self.curve.last_ts,
            last_event=mgr.last_event,
            fills=len(mgr.fills),
        )

    def stop(self) -> None:
        """Ask the run to stop after the bar in hand (``on_stop`` runs; results are returned).

        Call it from the engine's event loop (a signal handler, another task); from another
        thread use ``loop.call_soon_threadsafe(engine.stop)``.
        """
        self._stopping = True
        if self._waiting_for_bar and self._pump_task is not None:
            self._pump_task.cancel()

    # -- delivering events to the strategy ------------------------------------------------------

    def _drain(self) -> None:
        items = self.manager.notifications
        strategy = self.strategy
        ctx = self.ctx
        i = 0
        try:
            while i < len(items):  # callbacks may cause more; deliver those too, in order
                ev = items[i]
                i += 1
                if isinstance(ev, Fill):
                    strategy.on_fill(ctx, ev)
                else:
                    strategy.on_order_update(ctx, ev)
        finally:
            del items[:i]

    def _settle(self) -> None:
        self._drain()
        if self.manager.idle:
            self._idle.set()

    def _on_change(self) -> None:
        self._idle.clear()
        # the pump and the sender deliver what their own steps cause; anything else (an event
        # from a broker's stream task) is delivered by the notifier
        current = asyncio.current_task()
        if current is self._sender_task:
            return
        if current is self._pump_task and not self._waiting_for_bar:
            return
        # (a broker that pushes events from inside bars() while the stream waits gets them
        # delivered now; a simulated broker's are drained by the pump before on_bar anyway)
        self._notify.set()

    def _on_broker_event(self, event: BrokerEvent) -> None:
        try:
            self.manager.on_event(event)
        except Exception:  # a malformed event must not kill the broker's stream task
            log.exception("broker event %r could not be applied", event)

    async def _notifier(self) -> None:
        while True:
            await self._notify.wait()
            self._notify.clear()
            self._settle()

    async def _wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every request has been answered and every event delivered."""
        async with asyncio.timeout(timeout):
            while not self.manager.idle:
                self._idle.clear()
                if self.manager.notifications:
                    self._settle()
                    continue
                await self._idle.wait()
        return True

    # -- the run -------------------------------------------------------------------------------

    async def _start(self) -> None:
        broker = self.broker
        await broker.connect(self._on_broker_event)
        account = await broker.get_account()
        pf = self.portfolio
        pf.cash = pf.initial_cash = float(account.cash)
        pf.leverage = float(account.leverage)
        pf.allow_short = account.allow_short
        for pos in await broker.get_positions():
            pf.seed_position(pos.symbol, pos.qty, pos.avg_price, pos.last_price)
        pf.initial_cash = pf.equity
        for snap in await broker.get_open_orders():
            self.manager.adopt(snap)
        start = getattr(broker, "now", None)
        self.ctx.now = start if isinstance(start, int) else time.time_ns()

    def _mark(self, bar: Bar) -> None:
        sym = bar.symbol
        c = bar.close
        ctx = self.ctx
        if bar.ts > ctx.now or not self.bars_processed:  # bars set the clock, never back
            ctx.now = bar.ts
        pf = self.portfolio
        if sym in pf.positions:
            pf.mark(sym, c)
        ctx._rows[sym] = self.history.append(
            sym, bar.ts, bar.open, bar.high, bar.low, c, bar.volume
        )

    async def _settled(self) -> None:
        """Deliver pending events, then wait until what their callbacks asked is answered (and
        delivered): the asynchronous twin of a backtest's drain, where answers are immediate."""
        if self.manager.notifications:
            self._drain()
        if not self.manager.idle:
            await self._wait_idle()

    async def _pump(self, max_bars: int | None) -> None:
        stream = self.broker.bars(self.symbols)
        manager = self.manager
        try:
            while not self._stopping:
                self._waiting_for_bar = True
                try:
                    bar = await anext(stream)
                except StopAsyncIteration:
                    return
                finally:
                    self._waiting_for_bar = False
                if bar.symbol not in self.history.series:
                    continue
                self._mark(bar)
                if manager.notifications or not manager.idle:
                    await self._settled()
                self.strategy.on_bar(self.ctx, bar)
                if manager.notifications or not manager.idle:
                    await self._settled()
                pf = self.portfolio
                self.curve.record(self.ctx.now, pf.cash + pf.market_value, pf.gross_exposure)
                self.bars_processed += 1
                if max_bars is not None and self.bars_processed >= max_bars:
                    return
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _guarded(
        self, work: Coroutine[Any, Any, Any] | asyncio.Task[None], *helpers: asyncio.Task[None]
    ) -> None:
        """Run ``work`` to its end; if a helper task fails first, cancel it and raise that."""
        task = asyncio.ensure_future(work)
        try:
            await asyncio.wait({task, *helpers}, return_when=asyncio.FIRST_COMPLETED)
            for h in helpers:  # a helper's failure wins, even if the work ended in the same step
                if h.done():
                    if not task.done():
                        task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    h.result()  # raises the helper's exception
                    raise EngineError(f"engine task {h.get_name()} ended unexpectedly")
            await task
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def run(self, *, max_bars: int | None = None) -> BacktestResult:
        """Connect, run until the bar stream ends, ``max_bars`` bars or :meth:`stop`, then stop
        the strategy and return the results. The broker is closed on the way out."""
        if self._ran:
            raise EngineError("this engine has already run; create a new one for another run")
        if max_bars is not None and not (isinstance(max_bars, int) and max_bars >= 1):
            raise ConfigError("max_bars", max_bars, "must be an integer >= 1 or None")
        self._ran = True
        started = time.perf_counter()
        sender = asyncio.create_task(self.manager.run_sender(self._settle), name="sender")
        notifier = asyncio.create_task(self._notifier(), name="notifier")
        self._sender_task = sender
        try:
            await self._start()
            self.strategy.on_start(self.ctx)
            await self._guarded(self._wait_idle(), sender, notifier)
            self._pump_task = asyncio.create_task(self._pump(max_bars), name="bar-pump")
            await self._guarded(self._pump_task, sender, notifier)
            self.strategy.on_stop(self.ctx)
            await self._guarded(self._wait_idle(), sender, notifier)
            if self.cancel_on_stop:
                await self._guarded(self._cancel_open(), sender, notifier)
            if self.manager.book.open_orders():
                await self._guarded(self._refresh_open(), sender, notifier)
        finally:
            for task in (sender, notifier):
                task.cancel()
            await asyncio.gather(sender, notifier, return_exceptions=True)
            await self.broker.close()
        return self._result(time.perf_counter() - started)

    async def _refresh_open(self) -> None:
        """The results show open orders as the venue has them now (trailing stop levels)."""
        try:
            self.manager.refresh(await self.broker.get_open_orders())
        except (TradeloopError, OSError, TimeoutError) as exc:
            log.warning("could not refresh open orders at the end of the run: %s", exc)

    async def _cancel_open(self, timeout: float = 10.0) -> None:
        for order in self.manager.book.open_orders():
            self.manager.cancel(order, self.ctx.now)
        try:
            await self._wait_idle(timeout)
            async with asyncio.timeout(timeout):
                while self.manager.book.open_orders():  # cancellations arrive on the stream
                    await asyncio.sleep(0.05)
        except TimeoutError:
            left = len(self.manager.book.open_orders())
            log.warning("%d order(s) still open %.0f s after cancel_on_stop", left, timeout)

    def _result(self, elapsed: float) -> BacktestResult:
        pf = self.portfolio
        return BacktestResult(
            initial_cash=pf.initial_cash,
            symbols=self.symbols,
            equity_ts=self.curve.ts.tolist(),
            equity=self.curve.equity.tolist(),
            exposure=self.curve.exposure.tolist(),
            orders=list(self.manager.book.orders.values()),
            fills=list(self.manager.fills),
            trades=list(pf.trades),
            final_cash=pf.cash,
            bars_processed=self.bars_processed,
            elapsed_seconds=elapsed,
            strategy_name=self.strategy.name,
            params=self.strategy.params,
        )


AsyncEngine = AsyncExecutionEngine
