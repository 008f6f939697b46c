"""The asynchronous execution path: the engine, its order manager, brokers and bar sources.

It needs asyncio (and, for real brokers, aiohttp: ``pip install 'tradeloop[live]'``); the
synchronous path never imports it.
"""

from tradeloop.execution.asynchronous.brokers.simulated import SimulatedBroker
from tradeloop.execution.asynchronous.engine import (
    AsyncContext,
    AsyncEngine,
    AsyncExecutionEngine,
    LiveStatus,
)
from tradeloop.execution.asynchronous.order_manager import AsyncOrderManager
from tradeloop.execution.asynchronous.sources import ReplayBarSource

LiveExecutionEngine = AsyncExecutionEngine
LiveEngine = AsyncExecutionEngine
LiveOrderManager = AsyncOrderManager

__all__ = [
    "AsyncContext",
    "AsyncEngine",
    "AsyncExecutionEngine",
    "AsyncOrderManager",
    "LiveEngine",
    "LiveExecutionEngine",
    "LiveOrderManager",
    "LiveStatus",
    "ReplayBarSource",
    "SimulatedBroker",
]
