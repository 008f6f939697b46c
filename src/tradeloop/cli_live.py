"""``tradeloop live``: run the asynchronous engine with a status display and a clean stop.

Ctrl-C (or SIGTERM) asks the engine to stop: the bar in hand is finished, the strategy's
``on_stop`` runs, open orders are canceled if the config says so, and the results are written as
for a backtest. A second Ctrl-C aborts at once. SIGUSR1 prints where each of the engine's tasks
is waiting, to stderr (for a run that seems stuck).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tradeloop.execution.asynchronous.engine import AsyncExecutionEngine, LiveStatus
from tradeloop.results.result import BacktestResult

__all__ = ["LiveRun", "render_status", "run_live"]

REFRESH_PER_SECOND = 4


@dataclass
class LiveRun:
    result: BacktestResult
    interrupted: bool


def _when(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render_status(status: LiveStatus, title: str) -> Group:
    """The live status panel: account, positions, orders, connection and the last event."""
    head = Text.assemble(
        (f"{title}  ", "bold"),
        (f"{status.broker}: ", ""),
        (status.connection, "green" if status.connection == "connected" else "yellow"),
    )
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("equity", f"{status.equity:,.2f}  (cash {status.cash:,.2f})")
    positions = ", ".join(f"{s} {q:g}" for s, q in sorted(status.positions.items())) or "none"
    grid.add_row("positions", positions)
    grid.add_row(
        "orders",
        f"{status.open_orders} open, {status.pending_requests} request(s) in flight, "
        f"{status.fills} fill(s)",
    )
    grid.add_row("bars", f"{status.bars:,}  last {_when(status.last_bar_ts)}")
    grid.add_row("last event", status.last_event or "-")
    return Group(head, grid)


async def _run(
    engine: AsyncExecutionEngine, max_bars: int | None, console: Console, quiet: bool, title: str
) -> LiveRun:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    interrupted = False

    def on_signal() -> None:
        nonlocal interrupted
        if interrupted and main is not None:
            main.cancel()  # second Ctrl-C: abort
            return
        interrupted = True
        if not quiet:
            console.print("stopping: finishing the bar in hand (Ctrl-C again to abort)")
        engine.stop()

    def dump_tasks() -> None:
        """SIGUSR1: print where every task of the engine waits (to see what a run waits on)."""
        for task in asyncio.all_tasks():
            print(f"--- task {task.get_name()}", file=sys.stderr)
            task.print_stack(limit=12, file=sys.stderr)
        sys.stderr.flush()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
    with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
        loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
    try:
        if quiet:
            result = await engine.run(max_bars=max_bars)
        else:
            with Live(
                render_status(engine.status(), title),
                console=console,
                refresh_per_second=REFRESH_PER_SECOND,
                transient=False,
            ) as live:
                run = asyncio.create_task(engine.run(max_bars=max_bars))
                while not run.done():
                    await asyncio.wait({run}, timeout=1 / REFRESH_PER_SECOND)
                    live.update(render_status(engine.status(), title))
                result = run.result()
            console.line()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return LiveRun(result, interrupted)


def run_live(
    engine: AsyncExecutionEngine,
    *,
    max_bars: int | None,
    console: Console,
    quiet: bool,
    title: str,
) -> LiveRun:
    """Run ``engine`` on a fresh event loop until its stream ends, ``max_bars`` or Ctrl-C."""
    return asyncio.run(_run(engine, max_bars, console, quiet, title))
