"""Blocking adapters: use async bar sources and brokers from plain synchronous code.

* :class:`BlockingBars` turns any async bar source into a plain iterator, so the synchronous
  engine can paper trade on live bars with its own simulated matching::

      with BlockingBars(source, symbols=["AAPL"]) as bars:
          result = SyncEngine(bars, strategy, symbols=["AAPL"]).run(max_bars=500)

* :class:`BlockingBroker` is a facade over any :class:`~tradeloop.execution.async_protocols.
  AsyncBroker` for scripts and notebooks: submit, cancel, replace and query orders, read events
  and bars, all without asyncio.

Both run an event loop on a background thread; every call hands a coroutine to that loop and
waits for its result, so bars are pulled only when the caller asks for the next one (a replayed
or simulated source stays in lock-step with the caller). ``close()`` (or leaving the ``with``
block) closes the source or broker on its loop, stops the loop and joins the thread.

This module imports asyncio; the synchronous engine itself does not import it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar, Unpack

from tradeloop.errors import EngineError
from tradeloop.execution.async_protocols import AsyncBarSource, AsyncBroker
from tradeloop.execution.core.book import OrderBook
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.types import (
    Account,
    Bar,
    BrokerEvent,
    Clock,
    Order,
    OrderParams,
    OrderSide,
    OrderType,
    Position,
)

__all__ = ["BlockingBars", "BlockingBroker"]

T = TypeVar("T")

_thread_ids = itertools.count(1)


class _LoopThread:
    """An asyncio event loop running on a daemon thread, and a way to call into it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._main, name=f"{name}-{next(_thread_ids)}", daemon=True
        )
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self.loop.is_closed()

    def submit(self, work: Awaitable[T]) -> concurrent.futures.Future[T]:
        """Start ``work`` on the loop; the returned future is its result."""
        if not self.running:
            close = getattr(work, "close", None)
            if close is not None:  # a coroutine that will never run: no "never awaited" warning
                close()
            raise EngineError("this adapter is closed")

        async def wrapped() -> T:
            return await work

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop)

    def call(self, work: Awaitable[T], timeout: float | None = None) -> T:
        """Run ``work`` on the loop and wait (at most ``timeout`` seconds) for its result;
        on a timeout the work is cancelled and :class:`TimeoutError` raised."""
        future = self.submit(work)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        if not self._thread.is_alive():
            return

        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self.loop.close()


class _BlockingIterator:
    """A plain iterator over an async iterator living on a :class:`_LoopThread`.

    A ``next()`` that times out leaves the request for the next bar running: the following
    ``next()`` waits for that same bar, so a quiet live stream is not mistaken for an ended one.
    """

    def __init__(self, runner: _LoopThread, stream: AsyncIterator[Bar], timeout: float | None):
        self._runner = runner
        self._stream = stream
        self._timeout = timeout
        self._done = False
        self._pending: concurrent.futures.Future[Bar] | None = None

    def __iter__(self) -> Iterator[Bar]:
        return self

    def __next__(self) -> Bar:
        if self._done:
            raise StopIteration
        if self._pending is None:
            self._pending = self._runner.submit(anext(self._stream))
        try:
            bar = self._pending.result(self._timeout)
        except TimeoutError:
            raise  # the request stays pending for the next call
        except StopAsyncIteration:
            self._pending = None
            self._done = True
            raise StopIteration from None
        except BaseException:
            self._pending = None
            raise
        self._pending = None
        return bar

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None and self._runner.running:
            self._runner.call(aclose(), self._timeout)


class BlockingBars:
    """A plain iterator over an async bar source (see the module docstring).

    ``timeout``: the longest wait for one bar, in seconds (``None``: no limit), after which
    ``next()`` raises :class:`TimeoutError`. ``start`` and ``symbols`` are passed through from the
    source when it has them, so the synchronous engine starts its clock where the source does.
    """

    def __init__(
        self,
        source: AsyncBarSource,
        symbols: Sequence[str] | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        self.source = source
        given = symbols if symbols is not None else getattr(source, "symbols", None)
        self.symbols: tuple[str, ...] | None = tuple(given) if given is not None else None
        start = getattr(source, "start", None)
        self.start: int | None = start if isinstance(start, int) else None
        stream = source.bars(symbols)  # inert until the first next(); may raise: no thread yet
        self._runner = _LoopThread("tradeloop-bars")
        self._iter = _BlockingIterator(self._runner, stream, timeout)

    def __iter__(self) -> Iterator[Bar]:
        return self._iter

    def close(self) -> None:
        """Close the stream and the source, stop the loop thread. Safe to call twice."""
        if not self._runner.running:
            return
        try:
            self._iter.close()
            self._runner.call(self.source.close(), 10.0)
        finally:
            self._runner.stop()

    def __enter__(self) -> BlockingBars:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class BlockingBroker:
    """A synchronous facade over an async broker (see the module docstring).

    Connects on construction; events the broker reports are kept until :meth:`events` takes them.
    Orders are built and checked with the broker's own validator, so a malformed request raises
    :class:`~tradeloop.errors.InvalidOrderError` before anything is sent. ``timeout`` bounds every
    call, in seconds.
    """

    def __init__(
        self, broker: AsyncBroker, *, timeout: float | None = 30.0, client_id_prefix: str = "bb-"
    ) -> None:
        self.broker = broker
        self.timeout = timeout
        self._events: queue.Queue[BrokerEvent] = queue.Queue()
        validator = getattr(broker, "validator", None)
        if not isinstance(validator, OrderValidator):
            validator = OrderValidator(fractional=True)
        self._book = OrderBook(validator, id_prefix="R", client_id_prefix=client_id_prefix)
        self._runner = _LoopThread("tradeloop-broker")
        self._streams: list[_BlockingIterator] = []
        try:
            self._call(broker.connect(self._events.put_nowait))
        except BaseException:
            self._runner.stop()
            raise

    def _call(self, work: Awaitable[T]) -> T:
        return self._runner.call(work, self.timeout)

    # -- orders --------------------------------------------------------------------------------

    def submit(
        self,
        symbol: str,
        side: OrderSide | str,
        qty: float,
        type: OrderType | str = OrderType.MARKET,
        **params: Unpack[OrderParams],
    ) -> Order:
        """Send an order; returns the broker's snapshot of it (its ``id`` is the broker's)."""
        order = self._book.new_order(symbol, side, qty, type, **params)
        self._book.register(order)
        return self._call(self.broker.submit_order(order))

    def cancel(self, order: Order) -> None:
        """Ask the broker to cancel ``order`` (a snapshot it returned)."""
        request = order.snapshot()
        request.broker_order_id = order.broker_order_id or order.id
        self._call(self.broker.cancel_order(request))

    def replace(self, order: Order, **changes: Any) -> Order:
        """Replace ``order`` (a snapshot the broker returned); returns the new order."""
        old = order.snapshot()
        old.broker_order_id = order.broker_order_id or order.id
        new = self._book.replacement(old, order.updated_at, **changes)
        self._book.register(new)
        return self._call(self.broker.replace_order(old, new))

    def get_order(self, broker_order_id: str) -> Order:
        return self._call(self.broker.get_order(broker_order_id))

    def get_order_by_client_id(self, client_order_id: str) -> Order:
        return self._call(self.broker.get_order_by_client_id(client_order_id))

    def open_orders(self) -> list[Order]:
        return self._call(self.broker.get_open_orders())

    # -- account -------------------------------------------------------------------------------

    def positions(self) -> list[Position]:
        return self._call(self.broker.get_positions())

    def account(self) -> Account:
        return self._call(self.broker.get_account())

    def clock(self) -> Clock:
        return self._call(self.broker.get_clock())

    # -- streams -------------------------------------------------------------------------------

    def events(self, timeout: float = 0.0) -> list[BrokerEvent]:
        """The events received since the last call; waits up to ``timeout`` s for a first one."""
        out: list[BrokerEvent] = []
        try:
            out.append(
                self._events.get(timeout=timeout) if timeout > 0 else self._events.get_nowait()
            )
        except queue.Empty:
            return out
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def bars(self, symbols: Sequence[str] | None = None) -> Iterator[Bar]:
        """The broker's bar stream as a plain iterator (a simulated broker matches its open
        orders against each bar before handing it over)."""
        it = _BlockingIterator(self._runner, self.broker.bars(symbols), self.timeout)
        self._streams.append(it)
        return it

    # -- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the bar streams and the broker, stop the loop thread. Safe to call twice."""
        if not self._runner.running:
            return
        try:
            for it in self._streams:
                it.close()
            self._call(self.broker.close())
        finally:
            self._runner.stop()

    def __enter__(self) -> BlockingBroker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
