"""The blocking runner behind ``tradeloop ib-server``: serve until done, Ctrl-C or a limit.

It prints one line (host, port, account) and then nothing more; the server stops on Ctrl-C or
SIGTERM, ``linger`` seconds after the replay ends, or after ``max_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable

from tradeloop.testing.ib.faults import parse_faults
from tradeloop.testing.ib.server import IBServer

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
    echo: Callable[[str], None] = _print_line,
) -> None:
    """Serve ``data`` (``sample:minute``, ``sample:daily`` or a bar file) as a fake TWS on
    ``host:port`` at ``speed`` times real time. ``faults``: the text form of
    :func:`~tradeloop.testing.ib.faults.parse_faults`. Raises ConfigError for a bad setting or
    a busy port."""
    plan = parse_faults(faults) if faults else None
    bar_seconds = 86_400 if data == "sample:daily" else 60
    server = IBServer(
        data,
        port=port,
        host=host,
        speed=speed,
        bar_seconds=bar_seconds,
        initial_cash=initial_cash,
        linger=linger,
        max_seconds=max_seconds,
        faults=plan,
    )

    async def main() -> None:
        await server.start()
        loop = asyncio.get_running_loop()
        handled = []
        for sig in [signal.SIGINT] + ([signal.SIGTERM] if sys.platform != "win32" else []):
            try:
                loop.add_signal_handler(sig, server.request_stop)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            handled.append(sig)
        note = f"; faults {faults}" if faults else ""
        echo(
            f"IB loopback server (fake TWS) at {host}:{server.port} (account "
            f"{server.venue.account}; data {data}, speed {speed:g}{note})"
        )
        try:
            await server.wait_closed()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
