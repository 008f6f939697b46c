"""The blocking runner behind ``tradeloop alpaca-server``: serve until done, Ctrl-C or a limit.

It prints one line (the URL and the key id, never the secret) and then nothing more; the server
stops on Ctrl-C or SIGTERM, ``linger`` seconds after the replay ends, or after ``max_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable

from tradeloop.testing.alpaca.app import DEFAULT_KEY_ID, DEFAULT_SECRET
from tradeloop.testing.alpaca.server import AlpacaServer

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
    key_id: str = DEFAULT_KEY_ID,
    secret: str = DEFAULT_SECRET,
    initial_cash: float = 100_000.0,
    rate_limit: int | None = 200,
    text_frames: bool = False,
    echo: Callable[[str], None] = _print_line,
) -> None:
    """Serve ``data`` (``sample:minute``, ``sample:daily`` or a bar file) on ``host:port``
    (``0``: the OS picks) at ``speed`` times real time (``0``: only ``POST /_tradeloop/step``
    advances it), until Ctrl-C, ``linger`` seconds after the replay ends, or ``max_seconds``.

    Raises :class:`~tradeloop.errors.ConfigError` for a bad setting or a busy port.
    """
    server = AlpacaServer(
        data,
        port=port,
        host=host,
        speed=speed,
        keys=(key_id, secret),
        initial_cash=initial_cash,
        rate_limit=rate_limit,
        linger=linger,
        max_seconds=max_seconds,
        text_frames=text_frames,
    )

    async def main() -> None:
        await server.start()
        loop = asyncio.get_running_loop()
        signals = [signal.SIGINT] + ([signal.SIGTERM] if sys.platform != "win32" else [])
        handled = []
        for sig in signals:
            try:
                loop.add_signal_handler(sig, server.request_stop)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                continue
            handled.append(sig)
        ws = server.url.replace("http://", "ws://", 1)
        echo(
            f"Alpaca loopback server at {server.url} (key id {server.key_id}; "
            f"trade stream {ws}/stream, market data {ws}/v2/iex; data {data}, speed {speed:g})"
        )
        try:
            await server.wait_closed()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
