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
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from tradeloop.data.feed import Column, GrowingFeed
from tradeloop.errors import ConfigError, EngineError, OrderNotFoundError, TradeloopError
from tradeloop.execution.async_protocols import AsyncBroker
from tradeloop.execution.asynchronous.order_manager import RETRY_DELAYS, AsyncOrderManager
from tradeloop.execution.context import BaseContext
from tradeloop.execution.core.cross import CrossSection, overrides_on_bars
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.core.reconcile import PositionMismatch, compare_positions, reconcile
from tradeloop.execution.core.risk import RiskLimits, RiskManager
from tradeloop.execution.core.validation import MAX_CLIENT_ORDER_ID_LEN, OrderValidator
from tradeloop.execution.failures import strategy_error
from tradeloop.execution.types import (
    Bar,
    BrokerEvent,
    Fill,
    Position,
)
from tradeloop.persistence.journal import OrderJournal
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

    __slots__ = ()


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


_RECONCILE_SLACK = 5_000_000_000  # look back 5 s before the watermark: clocks and pages overlap
_RECONCILE_GAP = 2.0  # seconds between two reconciliations asked for by unreadable messages
_RECHECK = 0.5  # seconds before a position that differs is looked at again


def _encode_positions(pf: Portfolio) -> str:
    """Holdings at a journal's first start, as ``SYM:qty:avg;...`` (empty if it does not fit
    the journal's short meta values: a restart then starts from the venue's holdings)."""
    text = ";".join(
        f"{s}:{p.qty!r}:{p.avg_price!r}" for s, p in sorted(pf.positions.items()) if p.qty
    )
    return text if len(text) <= 200 else ""


def _decode_positions(text: str) -> list[tuple[str, float, float]]:
    out = []
    for item in filter(None, text.split(";")):
        sym, qty, avg = item.rsplit(":", 2)
        out.append((sym, float(qty), float(avg)))
    return out


class AsyncExecutionEngine:
    """Runs one strategy against one broker. ``await engine.run()`` once; it returns the same
    :class:`~tradeloop.results.result.BacktestResult` a backtest does.

    ``symbols``: what to trade and stream (default: the broker's own list, e.g. a replay's).
    ``run_id`` starts every client order id (default: derived from the start time).
    ``cancel_on_stop``: cancel the orders still open when the run stops.
    ``history_bars``: bars per symbol kept for ``ctx.history``.
    ``cross_section_timeout``: seconds after a timestamp's first bar after which ``on_bars``
    gets that timestamp's bars even if some symbols have sent none (``None``: wait for a later
    bar). Only a strategy that overrides ``on_bars`` is affected.
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
        journal: OrderJournal | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        reconcile_interval: float | None = None,
        risk: RiskLimits | RiskManager | None = None,
        cross_section_timeout: float | None = 2.0,
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
        if journal is not None:
            if run_id is not None and run_id != journal.run_id:
                raise ConfigError(
                    "run_id", run_id, f"the journal belongs to run {journal.run_id!r}"
                )
            run_id = journal.run_id
        run_id = run_id if run_id is not None else _default_run_id()
        if not (isinstance(run_id, str) and 0 < len(run_id) <= _MAX_RUN_ID):
            raise ConfigError("run_id", run_id, f"must be a string of 1..{_MAX_RUN_ID} chars")
        if reconcile_interval is not None and not (
            isinstance(reconcile_interval, int | float) and reconcile_interval > 0
        ):
            raise ConfigError(
                "reconcile_interval", reconcile_interval, "must be a number of seconds > 0"
            )
        if not (isinstance(history_bars, int) and history_bars >= 1):
            raise ConfigError("history_bars", history_bars, "must be an integer >= 1")
        if cross_section_timeout is not None and not (
            isinstance(cross_section_timeout, int | float)
            and not isinstance(cross_section_timeout, bool)
            and cross_section_timeout > 0
        ):
            raise ConfigError(
                "cross_section_timeout", cross_section_timeout, "must be seconds > 0 or None"
            )
        self.cross_section_timeout = cross_section_timeout
        self._cross_deadline = 0.0
        self._bar_step: asyncio.Future[Bar] | None = None
        self.partial_result: BacktestResult | None = None
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
        self.journal = journal
        if isinstance(risk, RiskLimits):
            risk = RiskManager(risk) if risk.any_set else None
        if risk is not None and not isinstance(risk, RiskManager):
            raise ConfigError("risk", type(risk).__name__, "must be RiskLimits or a RiskManager")
        self.risk = risk
        self.manager = AsyncOrderManager(
            broker,
            self.portfolio,
            validator=validator,
            client_id_prefix=f"{run_id}-",
            clock=lambda: self.ctx.now,
            journal=journal,
            retry_delays=retry_delays,
            ready=lambda: self.broker.connection_state == "connected",
            risk=risk,
            last_price=self._last_close,
        )
        self.reconcile_interval = reconcile_interval
        self.reconciliations = 0
        self.warnings: list[PositionMismatch] = []
        self._reconcile_wanted = asyncio.Event()
        self.watermark: int | None = journal.mark if journal is not None else None
        self._reconcile_lock = asyncio.Lock()
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
        self._strategy_started = False

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
        if not self._strategy_started:
            return  # events from startup (a restart's reconciliation) wait for on_start
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
        if current is not None and current is self._bar_step:
            return  # events a broker pushes while it makes the bar (a simulated match): the
            # pump settles them before on_bar, as it does for those of a plain bar step
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
        if hasattr(broker, "on_reconnect"):
            broker.on_reconnect = self._reconnected
        if hasattr(broker, "on_gap"):
            broker.on_gap = self.request_reconcile
        account = await broker.get_account()
        pf = self.portfolio
        pf.leverage = float(account.leverage)
        pf.allow_short = account.allow_short
        journal = self.journal
        start = getattr(broker, "now", None)
        self.ctx.now = start if isinstance(start, int) else time.time_ns()
        if journal is not None and journal.meta().get("initial_cash") is not None:
            self._restore(journal, await broker.get_positions())
        else:
            pf.cash = pf.initial_cash = float(account.cash)
            for pos in await broker.get_positions():
                pf.seed_position(pos.symbol, pos.qty, pos.avg_price, pos.last_price)
            pf.initial_cash = pf.equity
            if journal is not None:
                journal.set_meta("initial_cash", repr(pf.cash))
                journal.set_meta("initial_equity", repr(pf.initial_cash))
                journal.set_meta("initial_positions", _encode_positions(pf))
                journal.set_meta("strategy", self.strategy.name[:200])
            else:  # no journal to tell ours from others': take over every open order
                for snap in await broker.get_open_orders():
                    self.manager.adopt(snap)
        if journal is not None:
            await self.reconcile(startup=True)

    def _restore(self, journal: OrderJournal, venue_positions: list[Position]) -> None:
        """A restart: the account as it was at the journal's first start, then every journaled
        fill, then the orders as the journal left them."""
        meta = journal.meta()
        pf = self.portfolio
        pf.cash = float(meta["initial_cash"])
        for sym, qty, avg in _decode_positions(meta.get("initial_positions", "")):
            pf.seed_position(sym, qty, avg, avg)
        pf.initial_cash = float(meta.get("initial_equity", meta["initial_cash"]))
        fills = journal.fills()
        for f in sorted(fills, key=lambda f: f.ts):
            pf.apply_fill(f.symbol, f.side, f.qty, f.price, f.commission, f.ts)
        for pos in venue_positions:
            if pos.symbol in pf.positions and pos.last_price > 0:
                pf.mark(pos.symbol, pos.last_price)
        self.manager.restore([jo.to_order() for jo in journal.orders()], fills)
        log.info(
            "restarted from the journal: %d orders, %d fills", len(journal.orders()), len(fills)
        )

    def request_reconcile(self) -> None:
        """Ask for a reconciliation soon (a stream message could not be read, say)."""
        self._reconcile_wanted.set()

    async def _reconciler(self) -> None:
        """Reconcile when asked, and every ``reconcile_interval`` seconds if set; at most once
        every few seconds, however often it is asked (requests are rate limited)."""
        while True:
            try:
                async with asyncio.timeout(self.reconcile_interval):
                    await self._reconcile_wanted.wait()
            except TimeoutError:
                pass
            self._reconcile_wanted.clear()
            try:
                await self.reconcile()
            except (TradeloopError, OSError, TimeoutError) as exc:
                log.warning("reconciliation failed (it will be tried again): %s", exc)
                self._reconcile_wanted.set()
            await asyncio.sleep(_RECONCILE_GAP)

    async def _reconnected(self) -> None:
        """The broker's order stream came back: catch up on what it may have missed."""
        await self.reconcile()

    async def reconcile(self, *, startup: bool = False) -> int:
        """Catch up with the venue: its orders and fills since the watermark are compared with
        the engine's, and what the engine missed is applied (and reaches the strategy) once,
        in order. Never submits or cancels. Returns the number of changes applied.

        At startup, in-flight orders of an earlier run that the venue never had end
        ``canceled`` (they are never resent). A position that still differs from the venue's
        is logged and kept in :attr:`warnings`."""
        async with self._reconcile_lock:
            broker = self.broker
            since = None if self.watermark is None else self.watermark - _RECONCILE_SLACK
            open_here = self.manager.book.open_orders()
            if since is not None and open_here:  # their changes too, in the same paged query
                since = min(since, min(o.created_at for o in open_here) - _RECONCILE_SLACK)
            orders = {o.id: o for o in await broker.get_orders(since)}
            for order in self.manager.book.open_orders():  # open here, settled there?
                bid = order.broker_order_id
                if bid is not None and bid not in orders:
                    try:
                        orders[bid] = await broker.get_order(bid)
                    except OrderNotFoundError:
                        log.warning("order %s (%s) unknown to the venue", order.id, bid)
            fills = await broker.get_fills(since)
            plan = reconcile(
                self.manager.local_view(),
                list(orders.values()),
                fills,
                known_executions=self.manager.known_executions,
                client_id_prefix=f"{self.run_id}-",
            )
            applied = self.manager.apply_plan(plan, abandon_missing=startup)
            self.reconciliations += 1
            if plan.mark is not None and (self.watermark is None or plan.mark > self.watermark):
                self.watermark = plan.mark
                if self.journal is not None:
                    self.journal.set_mark(plan.mark)
            mismatches = await self._position_mismatches()
            if mismatches:  # a fill may have been on its way: look again before reporting
                await asyncio.sleep(_RECHECK)
                again = {(m.symbol, m.venue_qty) for m in await self._position_mismatches()}
                mismatches = [m for m in mismatches if (m.symbol, m.venue_qty) in again]
            for mismatch in mismatches:
                log.warning("reconciliation: %s", mismatch)
                self.warnings.append(mismatch)
            if applied:
                log.info("reconciliation applied %d change(s) the streams had missed", applied)
            return applied

    async def _position_mismatches(self) -> list[PositionMismatch]:
        cache = getattr(self.broker, "cache", None)
        if cache is not None:
            cache.invalidate("positions")
        venue = {p.symbol: p.qty for p in await self.broker.get_positions()}
        mine = {s: p.qty for s, p in self.portfolio.positions.items() if p.qty}
        return compare_positions(mine, venue)

    def _last_close(self, symbol: str) -> float | None:
        series = self.history.series.get(symbol)
        row = self.ctx._rows.get(symbol)
        return series.close[row] if series is not None and row is not None else None

    def _mark(self, bar: Bar) -> None:
        sym = bar.symbol
        c = bar.close
        ctx = self.ctx
        if bar.ts > ctx.now or not self.bars_processed:  # bars set the clock, never back
            ctx.now = bar.ts
            if self.risk is not None:  # once per timestamp, before its bars are marked
                self.risk.observe(bar.ts, self.portfolio.equity)
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

    async def _deliver_cross(self, cross: CrossSection) -> None:
        self.strategy.on_bars(self.ctx, cross.view)
        cross.delivered()
        if self.manager.notifications or not self.manager.idle:
            await self._settled()

    async def _next_bar(self, stream: AsyncIterator[Bar], cross: CrossSection | None) -> Bar:
        """The next bar; while a cross-section waits for its last symbols, it is delivered
        incomplete once ``cross_section_timeout`` has passed since its first bar."""
        timeout = self.cross_section_timeout
        if cross is None or not cross.pending or timeout is None:
            return await anext(stream)
        loop = asyncio.get_running_loop()
        # the stream's own step runs as a task that is never cancelled for a timeout (that
        # would close an async generator): the wait for it is what times out
        step: asyncio.Future[Bar] = asyncio.ensure_future(anext(stream))
        self._bar_step = step
        try:
            left = self._cross_deadline - loop.time()
            if left > 0:
                await asyncio.wait({step}, timeout=left)
            if not step.done():
                self._waiting_for_bar = False
                await self._deliver_cross(cross)
                self._waiting_for_bar = True
            return await step
        finally:
            self._bar_step = None
            if not step.done():
                step.cancel()
                await asyncio.gather(step, return_exceptions=True)

    async def _pump(self, max_bars: int | None) -> None:
        stream = self.broker.bars(self.symbols)
        manager = self.manager
        cross = CrossSection(self.symbols) if overrides_on_bars(self.strategy) else None
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping:
                self._waiting_for_bar = True
                try:
                    bar = await self._next_bar(stream, cross)
                except StopAsyncIteration:
                    break
                finally:
                    self._waiting_for_bar = False
                if bar.symbol not in self.history.series:
                    continue
                if cross is not None and cross.due_before(bar.ts):
                    await self._deliver_cross(cross)
                self._mark(bar)
                if manager.notifications or not manager.idle:
                    await self._settled()
                self.strategy.on_bar(self.ctx, bar)
                if manager.notifications or not manager.idle:
                    await self._settled()
                if cross is not None:
                    first = not cross.pending
                    if cross.add(bar) or (
                        cross.ts == bar.ts and getattr(self.broker, "timestamp_complete", False)
                    ):
                        await self._deliver_cross(cross)
                    elif first and cross.pending:
                        self._cross_deadline = loop.time() + (self.cross_section_timeout or 0.0)
                pf = self.portfolio
                self.curve.record(self.ctx.now, pf.cash + pf.market_value, pf.gross_exposure)
                self.bars_processed += 1
                if max_bars is not None and self.bars_processed >= max_bars:
                    break
            if cross is not None and cross.pending and not self._stopping:
                await self._deliver_cross(cross)
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
        try:
            await self._run(max_bars)
        except (Exception, asyncio.CancelledError, KeyboardInterrupt) as exc:
            err = None
            if isinstance(exc, Exception):
                err = strategy_error(exc, self.strategy, self.ctx.now)
                if err is None:
                    raise
            reason = str(err) if err is not None else "interrupted"
            self.partial_result = self._result(time.perf_counter() - started, partial=reason)
            if err is None:
                raise
            err.result = self.partial_result
            raise err from exc
        return self._result(time.perf_counter() - started)

    async def _run(self, max_bars: int | None) -> None:
        sender = asyncio.create_task(self.manager.run_sender(self._settle), name="sender")
        notifier = asyncio.create_task(self._notifier(), name="notifier")
        self._sender_task = sender
        helpers = [sender, notifier]
        try:
            await self._start()
            if self.journal is not None or self.reconcile_interval is not None:
                helpers.append(asyncio.create_task(self._reconciler(), name="reconciler"))
            self.strategy.on_start(self.ctx)
            self._strategy_started = True
            await self._guarded(self._wait_idle(), *helpers)
            self._pump_task = asyncio.create_task(self._pump(max_bars), name="bar-pump")
            await self._guarded(self._pump_task, *helpers)
            self.strategy.on_stop(self.ctx)
            await self._guarded(self._wait_idle(), *helpers)
            if self.cancel_on_stop:
                await self._guarded(self._cancel_open(), *helpers)
            if self.journal is not None:  # a last look: nothing the streams missed is left out
                await self._guarded(self._final_reconcile(), *helpers)
            if self.manager.book.open_orders():
                await self._guarded(self._refresh_open(), *helpers)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self.broker.close()
            if self.journal is not None:
                self.journal.close()

    async def _final_reconcile(self) -> None:
        try:
            await self.reconcile()
            await self._wait_idle(10.0)
        except (TradeloopError, OSError, TimeoutError) as exc:
            log.warning("the final reconciliation failed: %s", exc)

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

    def live_stats(self) -> dict[str, Any]:
        """What happened on the wire: for the results' ``run`` section and chaos reports."""
        broker = self.broker
        streams = getattr(broker, "streams", [])
        limiter = getattr(broker, "limiter", None)
        mgr = self.manager
        return {
            "broker": broker.name,
            "run_id": self.run_id,
            "reconnects": sum(getattr(s, "reconnects", 0) for s in streams),
            "resends": mgr.retries,
            "reconciliations": self.reconciliations,
            "rate_limited": getattr(limiter, "throttled", 0),
            "malformed_messages": getattr(broker, "malformed", 0)
            + sum(getattr(s, "bad_messages", 0) for s in streams),
            "events": dict(mgr.counts),
            "position_warnings": [str(w) for w in self.warnings],
        }

    def _result(self, elapsed: float, partial: str = "") -> BacktestResult:
        pf = self.portfolio
        result = BacktestResult(
            initial_cash=pf.initial_cash,
            symbols=self.symbols,
            equity_ts=Column.view(self.curve.ts),
            equity=Column.view(self.curve.equity),
            exposure=Column.view(self.curve.exposure),
            orders=list(self.manager.book.orders.values()),
            fills=list(self.manager.fills),
            trades=pf.trades,  # the portfolio's compact log
            final_cash=pf.cash,
            bars_processed=self.bars_processed,
            elapsed_seconds=elapsed,
            strategy_name=self.strategy.name,
            params=self.strategy.params,
            live=self.live_stats(),
            partial=partial,
        )
        return result


AsyncEngine = AsyncExecutionEngine
