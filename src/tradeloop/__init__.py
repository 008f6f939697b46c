"""tradeloop: write a trading strategy once; backtest it fast, run it live.

The top-level package stays light: it imports neither pandas nor asyncio. Heavy pieces are
imported from their modules (``tradeloop.data``, ``tradeloop.results``) or loaded on first use.
"""

from tradeloop.errors import (
    ConfigError,
    DataError,
    InvalidOrderError,
    OrderStateError,
    TradeloopError,
)
from tradeloop.strategy import Context, Strategy

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Context",
    "DataError",
    "InvalidOrderError",
    "OrderStateError",
    "Strategy",
    "TradeloopError",
    "__version__",
]
