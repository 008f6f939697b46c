"""Protocols of the asynchronous path: what a broker and a bar source must offer.

Anything with these methods is a broker; there is no base class to inherit. A broker is built by
*holding* small parts (configuration, rate limiter, cache, connection) and wiring them.
Importing this module does not import asyncio or aiohttp.

Two design choices shape the protocol:

* **Events are pushed.** :meth:`AsyncBroker.connect` takes a plain callback and the broker calls it
  for every order event, in the order the venue reported them, from whatever task reads its stream.
  The engine applies each event at once and runs strategy callbacks at safe points. One ordered
  inbox, and no second queue between broker and engine, is what makes a simulated run
  deterministic and identical to a backtest.
* **Bars are pulled.** :meth:`AsyncBroker.bars` is an async iterator the engine advances only once
  it has dealt with the previous bar (its orders sent and answered). A replayed or simulated source
  therefore runs in lock-step with the strategy; a live source simply buffers.

A broker (or source) that knows where a timestamp's bars end, as a replay does, may say so with a
``timestamp_complete`` attribute that is true while the bar it last yielded is its timestamp's
last: ``on_bars`` then gets the cross-section before the next bar is pulled, exactly as in a
backtest. Without it, a cross-section ends when every symbol has a bar, a later bar arrives or a
timeout passes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol, runtime_checkable

from tradeloop.execution.core.reconcile import VenueFill
from tradeloop.execution.types import Account, Bar, BrokerEvent, Clock, Order, Position

__all__ = ["AsyncBarSource", "AsyncBroker", "AsyncMarketData", "BrokerEvent", "EventHandler"]

EventHandler = Callable[[BrokerEvent], None]
"""Receives a broker's order events. Must not block: it is called from the broker's own tasks."""


@runtime_checkable
class AsyncBarSource(Protocol):
    """Anything that streams bars: a replay of historical data, or a live market-data stream."""

    def bars(self, symbols: Sequence[str] | None = None) -> AsyncIterator[Bar]:
        """Bars in time order (bars sharing a timestamp in a stable symbol order)."""
        ...

    async def close(self) -> None: ...


AsyncMarketData = AsyncBarSource
"""Old name of :class:`AsyncBarSource`."""


@runtime_checkable
class AsyncBroker(Protocol):
    """A venue: orders in, order events and bars out.

    Order snapshots a broker returns are :class:`~tradeloop.execution.types.Order` objects whose
    ``id`` is the venue's id and whose ``client_order_id`` is the one the engine sent. Errors:
    :class:`~tradeloop.errors.OrderRejectedError` when the venue refuses an order,
    :class:`~tradeloop.errors.DuplicateOrderError` when a client order id is already used,
    :class:`~tradeloop.errors.BrokerConnectionError` when the outcome is unknown (the order may
    exist), :class:`~tradeloop.errors.OrderNotFoundError` for an unknown id.
    """

    @property
    def name(self) -> str: ...

    @property
    def connection_state(self) -> str:
        """``disconnected``, ``connecting``, ``connected``, ``reconnecting`` or ``closed``."""
        ...

    async def connect(self, on_event: EventHandler) -> None:
        """Open connections and start delivering order events to ``on_event``."""
        ...

    async def submit_order(self, order: Order) -> Order:
        """Send a new order (the venue answers with its snapshot of it)."""
        ...

    async def replace_order(self, order: Order, new: Order) -> Order:
        """Replace the open ``order`` by ``new`` (new client id, changed fields); the venue
        answers with the new order; the old one is reported ``replaced`` on the event stream."""
        ...

    async def cancel_order(self, order: Order) -> None:
        """Ask to cancel ``order``; the cancellation itself arrives on the event stream."""
        ...

    async def get_order(self, broker_order_id: str) -> Order: ...

    async def get_order_by_client_id(self, client_order_id: str) -> Order: ...

    async def get_open_orders(self) -> list[Order]: ...

    async def get_orders(self, since: int | None = None) -> list[Order]:
        """Orders of any status submitted at or after ``since`` (venue time, int ns), and every
        open one: what reconciliation compares against."""
        ...

    async def get_fills(self, since: int | None = None) -> list[VenueFill]:
        """The account's executions at or after ``since`` (venue time), oldest first."""
        ...

    async def get_positions(self) -> list[Position]: ...

    async def get_account(self) -> Account: ...

    async def get_clock(self) -> Clock: ...

    def bars(self, symbols: Sequence[str] | None = None) -> AsyncIterator[Bar]:
        """The bar stream this broker trades on (its market data, or a replay)."""
        ...

    async def close(self) -> None:
        """Close every connection. Safe to call twice."""
        ...
