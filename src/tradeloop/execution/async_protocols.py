"""Protocols of the asynchronous (live) path.

Only the interfaces live here; the asynchronous engine and its brokers arrive in a later release.
Importing this module does not import asyncio or aiohttp.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from tradeloop.execution.types import Bar, Fill, Order, Position

__all__ = ["AsyncBroker", "AsyncMarketData", "BrokerEvent"]

BrokerEvent = Fill | Order
"""What a broker's event stream yields: fills, and orders whose status changed."""


class AsyncBroker(Protocol):
    """A live broker connection, composed from small parts (rate limiter, cache, connection)."""

    async def submit_order(self, order: Order) -> Order: ...

    async def cancel_order(self, order_id: str) -> None: ...

    async def replace_order(self, order: Order, new: Order) -> Order: ...

    async def get_order(self, order_id: str) -> Order: ...

    async def get_open_orders(self) -> list[Order]: ...

    async def get_positions(self) -> list[Position]: ...

    async def get_cash(self) -> float: ...

    def events(self) -> AsyncIterator[BrokerEvent]: ...

    async def close(self) -> None: ...


class AsyncMarketData(Protocol):
    def bars(self, symbols: list[str]) -> AsyncIterator[Bar]: ...

    async def close(self) -> None: ...
