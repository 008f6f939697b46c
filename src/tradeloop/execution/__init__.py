"""Execution: order types, the pure core, the synchronous and the asynchronous engines.

Importing this package needs neither aiohttp nor asyncio. Names are resolved on first use
(PEP 562), so ``import tradeloop.execution`` is cheap and free of import cycles, and a backtest
never loads the asynchronous half. The old names (``BacktestEngine``, ``LiveEngine`` & co.)
remain available as aliases of the new ones. ``_ASYNC_AVAILABLE`` tells whether aiohttp (the
``live`` extra) is installed, without importing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradeloop._lazy import lazy_exports
from tradeloop.execution.types import (
    Bar,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
    Trade,
)

if TYPE_CHECKING:
    from tradeloop.execution.asynchronous import (
        AsyncContext,
        AsyncEngine,
        AsyncExecutionEngine,
        AsyncOrderManager,
        LiveEngine,
        LiveExecutionEngine,
        LiveOrderManager,
        ReplayBarSource,
        SimulatedBroker,
    )
    from tradeloop.execution.core.costs import (
        FixedCommission,
        FixedSlippage,
        NoCommission,
        NoSlippage,
        PercentCommission,
        PercentSlippage,
        PerShareCommission,
    )
    from tradeloop.execution.core.validation import OrderValidator
    from tradeloop.execution.factory import (
        create_async_engine,
        create_backtest_engine,
        create_engine,
        create_live_engine,
        create_sync_engine,
    )
    from tradeloop.execution.synchronous import (
        BacktestEngine,
        BacktestExecutionEngine,
        BacktestOrderManager,
        SyncContext,
        SyncEngine,
        SyncExecutionEngine,
        SyncOrderManager,
    )
    from tradeloop.execution.synchronous.paper import BlockingBars, BlockingBroker

_ASYNC = "tradeloop.execution.asynchronous"
_LAZY = {
    "AsyncContext": _ASYNC,
    "AsyncEngine": _ASYNC,
    "AsyncExecutionEngine": _ASYNC,
    "AsyncOrderManager": _ASYNC,
    "LiveEngine": _ASYNC,
    "LiveExecutionEngine": _ASYNC,
    "LiveOrderManager": _ASYNC,
    "ReplayBarSource": _ASYNC,
    "SimulatedBroker": _ASYNC,
    "BlockingBars": "tradeloop.execution.synchronous.paper",
    "BlockingBroker": "tradeloop.execution.synchronous.paper",
    "create_async_engine": "tradeloop.execution.factory",
    "create_live_engine": "tradeloop.execution.factory",
    "FixedCommission": "tradeloop.execution.core.costs",
    "FixedSlippage": "tradeloop.execution.core.costs",
    "NoCommission": "tradeloop.execution.core.costs",
    "NoSlippage": "tradeloop.execution.core.costs",
    "PercentCommission": "tradeloop.execution.core.costs",
    "PercentSlippage": "tradeloop.execution.core.costs",
    "PerShareCommission": "tradeloop.execution.core.costs",
    "OrderValidator": "tradeloop.execution.core.validation",
    "create_backtest_engine": "tradeloop.execution.factory",
    "create_engine": "tradeloop.execution.factory",
    "create_sync_engine": "tradeloop.execution.factory",
    "BacktestEngine": "tradeloop.execution.synchronous",
    "BacktestExecutionEngine": "tradeloop.execution.synchronous",
    "BacktestOrderManager": "tradeloop.execution.synchronous",
    "SyncContext": "tradeloop.execution.synchronous",
    "SyncEngine": "tradeloop.execution.synchronous",
    "SyncExecutionEngine": "tradeloop.execution.synchronous",
    "SyncOrderManager": "tradeloop.execution.synchronous",
}

_lazy_getattr, __dir__ = lazy_exports("tradeloop.execution", globals(), _LAZY)


def __getattr__(name: str) -> Any:
    if name == "_ASYNC_AVAILABLE":  # computed on each access: installing aiohttp later counts
        from tradeloop.execution.factory import async_available

        return async_available()
    return _lazy_getattr(name)


__all__ = [
    "AsyncContext",
    "AsyncEngine",
    "AsyncExecutionEngine",
    "AsyncOrderManager",
    "BacktestEngine",
    "BacktestExecutionEngine",
    "BacktestOrderManager",
    "Bar",
    "BlockingBars",
    "BlockingBroker",
    "Fill",
    "FixedCommission",
    "FixedSlippage",
    "LiveEngine",
    "LiveExecutionEngine",
    "LiveOrderManager",
    "NoCommission",
    "NoSlippage",
    "Order",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "OrderValidator",
    "PerShareCommission",
    "PercentCommission",
    "PercentSlippage",
    "Position",
    "ReplayBarSource",
    "SimulatedBroker",
    "SyncContext",
    "SyncEngine",
    "SyncExecutionEngine",
    "SyncOrderManager",
    "TimeInForce",
    "Trade",
    "create_async_engine",
    "create_backtest_engine",
    "create_engine",
    "create_live_engine",
    "create_sync_engine",
]
