"""A chaos run: the live engine against the loopback Alpaca server with faults and kills.

:func:`run_chaos` starts the loopback server (in this process, on its own thread) with a fault
plan, runs ``tradeloop live`` with :class:`~tradeloop.testing.strategies.ChaosTrader` in a child
process, kills that process with SIGKILL at least once mid-run and starts it again with the same
config (so it resumes from its order journal), stops it cleanly once the replay has ended, and
then compares, order by order and fill by fill, what the engine journaled with what the venue
holds. ``bench/chaos_live.py`` and the test suite both use it.

The report's two numbers that must be zero: **duplicates** (venue orders the engine never
journaled an intent for, or orders whose journaled fills exceed the venue's) and **lost fills**
(orders whose venue fills the journal lacks). Positions and cash derived from the journal must
equal the venue's too.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradeloop.data.feed import BarFeed
from tradeloop.errors import EngineError
from tradeloop.testing.alpaca.faults import FAULT_KINDS, parse_faults
from tradeloop.testing.alpaca.server import AlpacaServerThread

__all__ = ["DEFAULT_FAULTS", "ChaosReport", "run_chaos"]

DEFAULT_FAULTS = (
    "rate_limit=0.01,error_after_accept=0.03,timeout_after_accept=0.02,drop_stream=0.02,"
    "reject_reconnect=0.2,duplicate_event=0.03,reorder_events=0.03,unknown_event=0.02,"
    "malformed_json=0.02,timeout_delay=3"
)
"""Every fault kind, often enough that each happens many times in a thousand orders."""


@dataclass
class ChaosReport:
    """What a chaos run did and found."""

    orders_sent: int = 0
    orders_at_venue: int = 0
    fills: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    lost_fills: int = 0
    mismatched_orders: int = 0
    position_mismatches: list[str] = field(default_factory=list)
    cash_difference: float = 0.0
    kills: int = 0
    restarts: int = 0
    reconnects: int = 0
    rate_limited: int = 0
    resends: int = 0
    reconciliations: int = 0
    max_fill_latency: float = 0.0
    elapsed: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not any(p.startswith("only ") for p in self.problems)
            and self.duplicates == 0
            and self.lost_fills == 0
            and self.mismatched_orders == 0
            and not self.position_mismatches
            and abs(self.cash_difference) < 0.01
        )

    def lines(self) -> list[str]:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()) if v) or "none"
        return [
            f"orders sent          {self.orders_sent:,} "
            f"({self.orders_at_venue:,} reached the venue)",
            f"fills                {self.fills:,}",
            f"faults injected      {sum(self.faults.values()):,}: {faults}",
            f"duplicates           {self.duplicates}",
            f"fills lost           {self.lost_fills}",
            f"orders that differ   {self.mismatched_orders}",
            f"positions that differ {len(self.position_mismatches)}; cash difference "
            f"{self.cash_difference:.2f}",
            f"kills / restarts     {self.kills} / {self.restarts}",
            f"reconnects           {self.reconnects}",
            f"429s received        {self.rate_limited}",
            f"resends              {self.resends}",
            f"reconciliations      {self.reconciliations}",
            f"longest fill latency {self.max_fill_latency:.2f} s (venue fill -> strategy on_fill)",
            f"elapsed              {self.elapsed:.1f} s",
        ]


def _config(
    path: Path,
    url: str,
    symbols: list[str],
    workdir: Path,
    seed: int,
    rate: float,
    rate_limit: int,
) -> None:
    cfg = {
        "execution": {
            "mode": "live",
            "cancel_on_stop": False,
            "journal": str(workdir / "journal.sqlite"),
        },
        "broker": {
            "name": "alpaca",
            "base_url": url,
            "timeout": 2,
            "rate_limit": rate_limit,
            "connection_limit_wait": 1,
            "data_watchdog": 30,
        },
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
    path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")  # JSON is YAML


def _journal_orders(path: Path) -> int:
    if not path.exists():
        return 0
    from tradeloop.persistence.journal import OrderJournal

    try:
        with OrderJournal(path, readonly=True) as journal:
            return len(journal.orders())
    except Exception:  # being created by the engine right now
        return 0


def supervise_engine(
    *,
    config: Path,
    env: dict[str, str],
    state: Callable[[], dict[str, Any]],
    feed: BarFeed,
    kill_points: list[float],
    report: ChaosReport,
    workdir: Path,
    journal_path: Path,
    deadline: float,
    timeout: float,
    say: Callable[[str], None],
    where: str,
) -> int:
    """Run ``tradeloop live config`` as a child process against a venue whose replay progress
    ``state()`` reports: SIGKILL and restart it at each of ``kill_points`` (bars replayed),
    then, the replay over, let it work through the bars it has (until its progress file shows
    the last one), let it settle (no new journaled order for 3 s) and stop it cleanly with
    SIGINT. Counts kills and restarts in ``report``; returns the number of engine runs (logs
    ``engine<N>.log``, results ``out<N>``). :class:`EngineError` if the engine exits early or
    not with 0, or the whole run outlasts ``deadline``; the child never outlives this call."""
    segment = 0

    def spawn() -> subprocess.Popen[bytes]:
        nonlocal segment
        segment += 1
        log = (workdir / f"engine{segment}.log").open("wb")
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "tradeloop", "live", str(config), "--quiet"),
                *("--out", str(workdir / f"out{segment}")),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    proc = spawn()
    say(f"chaos: {where}, engine pid {proc.pid}")
    try:
        while True:
            if time.monotonic() > deadline:
                raise EngineError(f"the chaos run did not finish within {timeout:g} s")
            if proc.poll() is not None:
                raise EngineError(
                    f"the engine exited early ({proc.returncode}); see {workdir}/engine"
                    f"{segment}.log"
                )
            now = state()
            if kill_points and now["bars"] >= kill_points[0]:
                kill_points.pop(0)
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
                report.kills += 1
                say(f"chaos: SIGKILL after {_journal_orders(journal_path)} orders; restarting")
                time.sleep(0.5)
                proc = spawn()
                report.restarts += 1
                continue
            if now["done"] and not kill_points:
                break
            time.sleep(0.5)
        last_bar = max(feed[s].ts[-1] for s in feed.symbols)
        progress = workdir / "progress.txt"
        while time.monotonic() < deadline and proc.poll() is None:
            text = progress.read_text() if progress.exists() else ""
            if text.strip().isdigit() and int(text) >= last_bar:
                break
            time.sleep(0.5)
        quiet_since = time.monotonic()
        last = _journal_orders(journal_path)
        while time.monotonic() - quiet_since < 3.0 and time.monotonic() < deadline:
            time.sleep(0.5)
            orders = _journal_orders(journal_path)
            if orders != last:
                last, quiet_since = orders, time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(max(5.0, deadline - time.monotonic()))
        if proc.returncode != 0:
            raise EngineError(
                f"the engine stopped with {proc.returncode}; see {workdir}/engine{segment}.log"
            )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    return segment


def run_chaos(
    workdir: Path,
    feed: BarFeed,
    *,
    speed: float,
    rate: float,
    kills: int = 1,
    min_orders: int = 0,
    faults: str = DEFAULT_FAULTS,
    seed: int = 7,
    rate_limit: int = 1200,
    timeout: float = 600.0,
    echo: Callable[[str], None] | None = None,
) -> ChaosReport:
    """Run the chaos scenario (see the module docstring) in ``workdir``; returns its report.

    ``speed``: the replay's pace; ``rate``: the strategy's chance to act per bar; ``kills``:
    how many times the engine is killed (spread evenly over the replay); ``min_orders``: the
    report is not ``ok`` if fewer orders were sent; ``rate_limit``: requests a minute, for the
    venue and the engine alike (a replay runs many times faster than real time, so its orders
    come faster than Alpaca's 200 a minute would allow; the rate-limit faults still send 429
    bursts); ``timeout``: a bound on the whole run, in seconds.
    """
    say = echo or (lambda _text: None)
    workdir.mkdir(parents=True, exist_ok=True)
    plan = parse_faults(f"{faults},seed={seed}")
    started = time.monotonic()
    deadline = started + timeout
    report = ChaosReport()
    journal_path = workdir / "journal.sqlite"
    symbols = list(feed.symbols)
    kill_points = [len(feed) * (i + 1) / (kills + 1) for i in range(kills)]  # replay progress
    with AlpacaServerThread(
        feed,
        port=0,
        speed=speed,
        faults=plan,
        linger=None,
        max_seconds=timeout + 60,
        rate_limit=rate_limit,
    ) as server:
        config = workdir / "chaos.yaml"
        _config(config, server.url, symbols, workdir, seed, rate, rate_limit)
        segment = supervise_engine(
            config=config,
            env=dict(os.environ, APCA_API_KEY_ID="", APCA_API_SECRET_KEY=""),
            state=server.state,
            feed=feed,
            kill_points=kill_points,
            report=report,
            workdir=workdir,
            journal_path=journal_path,
            deadline=deadline,
            timeout=timeout,
            say=say,
            where=f"server {server.url}",
        )
        state = server.state()
        faults_seen = server.call(_read_faults(server), 30)
    _compare(report, state, journal_path, workdir, segment)
    report.faults = {k: int(faults_seen.get(k, 0)) for k in FAULT_KINDS}
    report.elapsed = time.monotonic() - started
    if report.orders_sent < min_orders:
        report.problems.append(f"only {report.orders_sent} orders were sent; wanted {min_orders}")
    return report


def _read_faults(server: AlpacaServerThread) -> Callable[[], Any]:
    async def read() -> dict[str, int]:
        plan = server.server.faults
        return dict(plan.counts) if plan is not None else {}

    return read


def _compare(
    report: ChaosReport, state: dict[str, Any], journal_path: Path, workdir: Path, segments: int
) -> None:
    from tradeloop.persistence.journal import OrderJournal

    with OrderJournal(journal_path, readonly=True) as journal:
        jorders = {o.client_order_id: o for o in journal.orders()}
        jfills = journal.fills()
        prefix = f"{journal.run_id}-"
        initial_cash = float(journal.meta().get("initial_cash", "nan"))
    venue = {o["client_order_id"]: o for o in state["orders"]}
    report.orders_sent = len(jorders)
    report.orders_at_venue = sum(1 for c in venue if c.startswith(prefix))
    report.fills = len(jfills)
    for cid, v in venue.items():
        if not cid.startswith(prefix):
            continue
        mine = jorders.get(cid)
        vfilled = float(v["filled_qty"])
        if mine is None:
            report.duplicates += 1
            report.problems.append(f"{cid}: at the venue, never journaled")
            continue
        if mine.filled_qty > vfilled + 1e-9:
            report.duplicates += 1
            report.problems.append(f"{cid}: journal filled {mine.filled_qty}, venue {vfilled}")
        elif mine.filled_qty < vfilled - 1e-9:
            report.lost_fills += 1
            report.problems.append(f"{cid}: journal filled {mine.filled_qty}, venue {vfilled}")
        vstatus = {"new": "accepted"}.get(v["status"], v["status"])
        if mine.status.value != vstatus:
            report.mismatched_orders += 1
            report.problems.append(f"{cid}: journal {mine.status.value}, venue {vstatus}")
    held: dict[str, float] = {}
    cash = initial_cash
    for f in jfills:
        sign = 1.0 if f.side.value == "buy" else -1.0
        held[f.symbol] = held.get(f.symbol, 0.0) + sign * f.qty
        cash -= sign * f.qty * f.price + f.commission
    venue_positions = {p["symbol"]: float(p["qty"]) for p in state["positions"]}
    for sym in sorted(set(held) | set(venue_positions)):
        mine_qty = held.get(sym, 0.0)
        theirs = venue_positions.get(sym, 0.0)
        if abs(mine_qty - theirs) > 1e-6:
            report.position_mismatches.append(f"{sym}: journal {mine_qty:g}, venue {theirs:g}")
    report.cash_difference = cash - float(state["cash"])
    # the engine's own counts, summed over its runs (a killed run wrote none)
    for i in range(1, segments + 1):
        metrics = workdir / f"out{i}" / "metrics.json"
        if metrics.exists():
            live = json.loads(metrics.read_text())["run"].get("live", {})
            report.reconnects += int(live.get("reconnects", 0))
            report.rate_limited += int(live.get("rate_limited", 0))
            report.resends += int(live.get("resends", 0))
            report.reconciliations += int(live.get("reconciliations", 0))
    # how long fills took to reach the strategy: the venue's wall time of each fill against
    # the first on_fill that covered it
    seen: dict[str, list[tuple[float, float]]] = {}
    log = workdir / "fills.jsonl"
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            seen.setdefault(item["cid"], []).append((float(item["cum"]), float(item["wall"])))
    worst = 0.0
    for entry in state.get("fill_times", []):
        cid, cum, wall = entry["client_order_id"], float(entry["cum_qty"]), float(entry["wall"])
        if not cid.startswith(prefix):
            continue
        covering = [w for c, w in seen.get(cid, []) if c >= cum - 1e-9]
        if covering:
            worst = max(worst, min(covering) - wall)
    report.max_fill_latency = worst if math.isfinite(worst) else 0.0
