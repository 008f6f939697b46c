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

from tradeloop.errors import ConfigError
from tradeloop.testing.alpaca.app import DEFAULT_KEY_ID, DEFAULT_SECRET
from tradeloop.testing.alpaca.faults import FaultPlan, parse_faults
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
    faults: str | None = None,
    fault_seed: int | None = None,
    echo: Callable[[str], None] = _print_line,
) -> None:
    """Serve ``data`` (``sample:minute``, ``sample:daily`` or a bar file) on ``host:port``
    (``0``: the OS picks) at ``speed`` times real time (``0``: only ``POST /_tradeloop/step``
    advances it), until Ctrl-C, ``linger`` seconds after the replay ends, or ``max_seconds``.

    ``faults`` injects faults, in the text form of
    :func:`~tradeloop.testing.alpaca.faults.parse_faults` (e.g.
    ``"rate_limit=0.02,error_after_accept=0.05,drop_stream=0.01"``), seeded with ``fault_seed``
    (if given, it overrides a ``seed=`` item); the line printed then names the plan and its
    seed. ``POST /_tradeloop/faults`` can change the plan at run time in any case.

    Raises :class:`~tradeloop.errors.ConfigError` for a bad setting or a busy port.
    """
    plan = _fault_plan(faults, fault_seed)
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
        faults=plan,
    )
    fault_note = "" if faults is None and fault_seed is None else f"; faults {faults or 'none'}"
    if fault_note:
        fault_note += f", fault seed {plan.seed}"

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
            f"trade stream {ws}/stream, market data {ws}/v2/iex; data {data}, speed {speed:g}"
            f"{fault_note})"
        )
        try:
            await server.wait_closed()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def _fault_plan(faults: str | None, fault_seed: int | None) -> FaultPlan:
    """The plan of ``run_server``'s ``faults`` and ``fault_seed``."""
    if faults is not None and not isinstance(faults, str):
        raise ConfigError("faults", faults, "must be a string of name=value items or None")
    if fault_seed is not None and (isinstance(fault_seed, bool) or not isinstance(fault_seed, int)):
        raise ConfigError("fault_seed", fault_seed, "must be an integer or None")
    plan = parse_faults(faults) if faults is not None else FaultPlan()
    if fault_seed is not None:
        plan.reseed(fault_seed)
    return plan
