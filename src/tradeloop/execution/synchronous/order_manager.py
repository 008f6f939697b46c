"""SyncOrderManager: orders, simulated matching and accounting for the backtest, by plain calls.

It is the pure core's :class:`~tradeloop.execution.core.exchange.SimulatedExchange` under the name
the synchronous engine has always used: in a backtest the engine's order manager and the venue
are one and the same object, so there is nothing to add.
"""

from __future__ import annotations

from tradeloop.execution.core.exchange import SimulatedExchange

__all__ = ["SyncOrderManager"]


class SyncOrderManager(SimulatedExchange):
    """The synchronous engine's order manager: a :class:`SimulatedExchange` fed bar by bar."""

    __slots__ = ()
