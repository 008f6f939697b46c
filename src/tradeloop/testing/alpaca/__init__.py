"""A loopback Alpaca-compatible server: dry runs and tests with no account and no network.

It speaks the subset of Alpaca's Trading API v2, trade_updates stream and market-data stream
that tradeloop's Alpaca broker and the official alpaca-py client use, on 127.0.0.1 only. It
replays bars (tradeloop's samples or a file) and fills orders with tradeloop's own matching core,
so a dry run against it fills as a backtest does.

``AlpacaServer`` (async, in-process), ``AlpacaServerThread`` (for synchronous code) and
``run_server`` (the blocking command-line runner) start it; ``AlpacaVenue`` is its pure state.
``FaultPlan`` (with ``parse_faults``, its text form) injects faults to prove a client reliable.
Importing this package imports neither aiohttp nor asyncio; its names load on first use.
"""

from typing import TYPE_CHECKING

from tradeloop._lazy import lazy_exports

if TYPE_CHECKING:
    from tradeloop.testing.alpaca.app import (
        DEFAULT_KEY_ID,
        DEFAULT_SECRET,
        AlpacaApp,
        ServerHooks,
    )
    from tradeloop.testing.alpaca.cli import run_server
    from tradeloop.testing.alpaca.exchange import AlpacaError, AlpacaVenue
    from tradeloop.testing.alpaca.faults import (
        FAULT_KINDS,
        FaultInjector,
        FaultPlan,
        parse_faults,
    )
    from tradeloop.testing.alpaca.server import (
        AlpacaServer,
        AlpacaServerThread,
        StepResult,
        load_data,
    )

__all__ = [
    "DEFAULT_KEY_ID",
    "DEFAULT_SECRET",
    "FAULT_KINDS",
    "AlpacaApp",
    "AlpacaError",
    "AlpacaServer",
    "AlpacaServerThread",
    "AlpacaVenue",
    "FaultInjector",
    "FaultPlan",
    "ServerHooks",
    "StepResult",
    "load_data",
    "parse_faults",
    "run_server",
]

_APP = "tradeloop.testing.alpaca.app"
_SERVER = "tradeloop.testing.alpaca.server"
_EXCHANGE = "tradeloop.testing.alpaca.exchange"
_FAULTS = "tradeloop.testing.alpaca.faults"

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "DEFAULT_KEY_ID": _APP,
        "DEFAULT_SECRET": _APP,
        "AlpacaApp": _APP,
        "ServerHooks": _APP,
        "AlpacaError": _EXCHANGE,
        "AlpacaVenue": _EXCHANGE,
        "FAULT_KINDS": _FAULTS,
        "FaultInjector": _FAULTS,
        "FaultPlan": _FAULTS,
        "parse_faults": _FAULTS,
        "AlpacaServer": _SERVER,
        "AlpacaServerThread": _SERVER,
        "StepResult": _SERVER,
        "load_data": _SERVER,
        "run_server": "tradeloop.testing.alpaca.cli",
    },
)
