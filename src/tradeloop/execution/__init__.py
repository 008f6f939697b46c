"""Execution: order types, the pure core, and the synchronous (backtest) engine.

Importing this package needs neither aiohttp nor asyncio. Names are resolved on first use
(PEP 562), so ``import tradeloop.execution`` is cheap and free of import cycles. The old names
(``BacktestEngine`` & co.) remain available as aliases of the new ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
        create_backtest_engine,
        create_engine,
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

_LAZY = {
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

__getattr__, __dir__ = lazy_exports("tradeloop.execution", globals(), _LAZY)


__all__ = [
    "BacktestEngine",
    "BacktestExecutionEngine",
    "BacktestOrderManager",
    "Bar",
    "Fill",
    "FixedCommission",
    "FixedSlippage",
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
    "SyncContext",
    "SyncEngine",
    "SyncExecutionEngine",
    "SyncOrderManager",
    "TimeInForce",
    "Trade",
    "create_backtest_engine",
    "create_engine",
    "create_sync_engine",
]
