"""The synchronous (backtest) execution path. Importing it never imports asyncio."""

from tradeloop.execution.synchronous.engine import SyncContext, SyncEngine, SyncExecutionEngine
from tradeloop.execution.synchronous.order_manager import SyncOrderManager

BacktestExecutionEngine = SyncExecutionEngine
BacktestEngine = SyncExecutionEngine
BacktestOrderManager = SyncOrderManager

__all__ = [
    "BacktestEngine",
    "BacktestExecutionEngine",
    "BacktestOrderManager",
    "SyncContext",
    "SyncEngine",
    "SyncExecutionEngine",
    "SyncOrderManager",
]
