"""A loopback Binance spot server: dry runs and tests of the Binance broker, and of ccxt itself,
with no account and no network (127.0.0.1 only).

``BinanceServer`` (async, in-process), ``BinanceServerThread`` (for synchronous code) and
``run_server`` (the blocking command-line runner) start it; ``BinanceVenue`` is its pure state.
Importing this package imports neither aiohttp nor asyncio; its names load on first use.
"""

from typing import TYPE_CHECKING

from tradeloop._lazy import lazy_exports

if TYPE_CHECKING:
    from tradeloop.testing.binance.cli import run_server
    from tradeloop.testing.binance.server import (
        DEFAULT_API_KEY,
        DEFAULT_SECRET,
        SUPPORTED_FAULTS,
        BinanceServer,
        BinanceServerThread,
    )
    from tradeloop.testing.binance.venue import BinanceError, BinanceVenue, pair_name

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_SECRET",
    "SUPPORTED_FAULTS",
    "BinanceError",
    "BinanceServer",
    "BinanceServerThread",
    "BinanceVenue",
    "pair_name",
    "run_server",
]

_SERVER = "tradeloop.testing.binance.server"
_VENUE = "tradeloop.testing.binance.venue"

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "DEFAULT_API_KEY": _SERVER,
        "DEFAULT_SECRET": _SERVER,
        "SUPPORTED_FAULTS": _SERVER,
        "BinanceServer": _SERVER,
        "BinanceServerThread": _SERVER,
        "BinanceError": _VENUE,
        "BinanceVenue": _VENUE,
        "pair_name": _VENUE,
        "run_server": "tradeloop.testing.binance.cli",
    },
)
