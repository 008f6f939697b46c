"""A chaos run against the loopback TWS: :func:`tradeloop.testing.chaos.run_chaos`'s scenario
for the IB broker (faults, SIGKILL and restart of the engine, then the journal compared with
the venue order by order and fill by fill), reusing its report and comparison."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from tradeloop.data.feed import BarFeed
from tradeloop.testing.chaos import ChaosReport, _compare, supervise_engine
from tradeloop.testing.ib.faults import FAULT_KINDS, parse_faults
from tradeloop.testing.ib.server import IBServerThread

__all__ = ["DEFAULT_IB_FAULTS", "run_ib_chaos"]

DEFAULT_IB_FAULTS = (
    "drop_connection=0.03,reject=0.01,delay=0.01,restart=0.0005,connectivity=0.001,"
    "delay_seconds=3,restart_downtime=1,connectivity_gap=0.5"
)
"""Every IB fault kind, often enough that each happens in a few hundred orders."""


def _config(
    path: Path, port: int, symbols: list[str], workdir: Path, seed: int, rate: float
) -> None:
    cfg = {
        "execution": {
            "mode": "live",
            "cancel_on_stop": False,
            "journal": str(workdir / "journal.sqlite"),
        },
        "broker": {"name": "ib", "port": port, "client_id": 11, "order_timeout": 2},
        "data": {"symbols": symbols},
        "strategy": {
            "name": "tradeloop.testing.strategies:ChaosTrader",
            "params": {
                "seed": seed,
                "rate": rate,
                "log": str(workdir / "fills.jsonl"),
                "progress": str(workdir / "progress.txt"),
            },
        },
        "output": {"dir": str(workdir / "out"), "report": False},
    }
    path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")


def run_ib_chaos(
    workdir: Path,
    feed: BarFeed,
    *,
    speed: float,
    rate: float,
    kills: int = 1,
    min_orders: int = 0,
    faults: str = DEFAULT_IB_FAULTS,
    seed: int = 7,
    timeout: float = 600.0,
    echo: Callable[[str], None] | None = None,
) -> ChaosReport:
    """The chaos scenario against :class:`~tradeloop.testing.ib.server.IBServer`."""
    say = echo or (lambda _text: None)
    workdir.mkdir(parents=True, exist_ok=True)
    plan = parse_faults(f"{faults},seed={seed}")
    started = time.monotonic()
    deadline = started + timeout
    report = ChaosReport()
    journal_path = workdir / "journal.sqlite"
    symbols = list(feed.symbols)
    kill_points = [len(feed) * (i + 1) / (kills + 1) for i in range(kills)]
    with IBServerThread(
        feed, port=0, speed=speed, faults=plan, linger=None, max_seconds=timeout + 60
    ) as server:
        config = workdir / "chaos.yaml"
        _config(config, server.port, symbols, workdir, seed, rate)
        segment = supervise_engine(
            config=config,
            env=dict(os.environ),
            state=server.state,
            feed=feed,
            kill_points=kill_points,
            report=report,
            workdir=workdir,
            journal_path=journal_path,
            deadline=deadline,
            timeout=timeout,
            say=say,
            where=f"IB server 127.0.0.1:{server.port}",
        )
        state = server.state()
    _compare(report, state, journal_path, workdir, segment)
    report.faults = {k: int(state["faults"].get(k, 0)) for k in FAULT_KINDS}
    report.elapsed = time.monotonic() - started
    if report.orders_sent < min_orders:
        report.problems.append(f"only {report.orders_sent} orders were sent; wanted {min_orders}")
    return report
