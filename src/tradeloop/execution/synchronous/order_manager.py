"""SyncOrderManager: orders, simulated matching and accounting for the backtest, by plain calls.

It is the pure core's :class:`~tradeloop.execution.core.exchange.SimulatedExchange` under the name
the synchronous engine has always used: in a backtest the engine's order manager and the venue
are one and the same object.
"""

from __future__ import annotations

from typing import Any

from tradeloop.execution.core.exchange import SimulatedExchange
from tradeloop.execution.types import Order

__all__ = ["SyncOrderManager"]


class SyncOrderManager(SimulatedExchange):
    """The synchronous engine's order manager: a :class:`SimulatedExchange` fed bar by bar.

    One thing a strategy's manager does that a venue does not: a cancel or replace of an order
    that was replaced acts on its newest replacement, so a handle kept across a replace works.

    Done orders move to a compact log (``retire_orders``): a backtest's orders never change
    once they have ended.
    """

    retire_orders = True

    __slots__ = ()

    def cancel(self, order: Order | str, now: int) -> bool:
        return super().cancel(self.book.current(order), now)

    def replace(self, order: Order | str, now: int, **changes: Any) -> Order:
        return super().replace(self.book.current(order), now, **changes)
