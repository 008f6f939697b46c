"""The blocking runner behind ``tradeloop binance-server``: serve until done, Ctrl-C or a limit.

It prints one line (the URL and the API key, never the secret) and then nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable

from tradeloop.testing.alpaca.cli import _fault_plan
from tradeloop.testing.binance.server import DEFAULT_API_KEY, BinanceServer

__all__ = ["run_server"]


def _print_line(line: str) -> None:
    print(line, flush=True)


def run_server(
    port: int,
    data: str,
    speed: float,
    max_seconds: float | None = 3600.0,
    *,
    host: str = "127.0.0.1",
    linger: float | None = 30.0,
    initial_cash: float = 100_000.0,
    faults: str | None = None,
    fault_seed: int | None = None,
    echo: Callable[[str], None] = _print_line,
) -> None:
    """Serve ``data`` (``sample:minute``, ``sample:daily`` or a bar file) on ``host:port`` at
    ``speed`` times real time (``0``: only ``POST /_tradeloop/step`` advances it), until Ctrl-C,
    ``linger`` seconds after the replay ends, or ``max_seconds``. ``faults``: the text form of
    :func:`~tradeloop.testing.alpaca.faults.parse_faults` (the kinds of
    :data:`~tradeloop.testing.binance.server.SUPPORTED_FAULTS`)."""
    plan = _fault_plan(faults, fault_seed)
    server = BinanceServer(
        data,
        port=port,
        host=host,
        speed=speed,
        initial_cash=initial_cash,
        linger=linger,
        max_seconds=max_seconds,
        faults=plan,
    )
    note = "" if faults is None and fault_seed is None else f"; faults {faults or 'none'}"
    if note:
        note += f", fault seed {plan.seed}"

    async def main() -> None:
        await server.start()
        loop = asyncio.get_running_loop()
        signals = [signal.SIGINT] + ([signal.SIGTERM] if sys.platform != "win32" else [])
        handled = []
        for sig in signals:
            try:
                loop.add_signal_handler(sig, server.request_stop)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            handled.append(sig)
        pairs = ", ".join(server.pairs.values())
        echo(
            f"Binance loopback server at {server.url} (API key {DEFAULT_API_KEY}; "
            f"WebSocket API {server.ws_url}/ws-api/v3, streams {server.ws_url}/stream/ws; "
            f"pairs {pairs}; data {data}, speed {speed:g}{note})"
        )
        try:
            await server.wait_closed()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
