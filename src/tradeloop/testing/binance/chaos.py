"""Chaos for the Binance broker: the live engine against the loopback Binance server with faults.

In-process (no SIGKILL/restart, unlike the Alpaca run: a kill needs the journal's restart path,
which the Binance broker supports but this runner does not exercise yet). ``ChaosTrader``
trades often; the server injects 429 bursts, 5xx and timeouts after an order was accepted,
dropped user-data sockets that lose fills, and duplicate, unknown and malformed events. At the
end the engine's fills are compared with the venue's trades: none doubled, none lost (every
venue trade up to the engine's last bar must have reached it).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tradeloop.data.feed import BarFeed
from tradeloop.execution.types import Bar, Order
from tradeloop.strategy import Context
from tradeloop.testing.alpaca.faults import parse_faults
from tradeloop.testing.chaos import ChaosReport

__all__ = ["DEFAULT_BINANCE_FAULTS", "run_binance_chaos"]

DEFAULT_BINANCE_FAULTS = (
    "rate_limit=0.01,error_after_accept=0.03,timeout_after_accept=0.01,drop_stream=0.01,"
    "duplicate_event=0.02,unknown_event=0.02,malformed_json=0.01,timeout_delay=1,"
    "rate_limit_burst=2,rate_limit_reset=1"
)


class _GtcContext:
    """The strategy's context with ``day`` limit orders sent as ``gtc`` (Binance has no day
    orders); everything else passes through."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    def buy(self, symbol: str, qty: float, **kw: Any) -> Order:
        if kw.get("tif") == "day":
            kw["tif"] = "gtc"
        return self._ctx.buy(symbol, qty, **kw)


def _trader(**params: Any) -> Any:
    from tradeloop.testing.strategies import ChaosTrader

    class BinanceChaosTrader(ChaosTrader):
        def on_bar(self, ctx: Context, bar: Bar) -> None:
            super().on_bar(_GtcContext(ctx), bar)

    return BinanceChaosTrader(**params)


async def _run(
    workdir: Path, feed: BarFeed, speed: float, rate: float, faults: str, seed: int, timeout: float
) -> ChaosReport:
    from tradeloop.execution.asynchronous import AsyncEngine
    from tradeloop.execution.asynchronous.brokers.binance.broker import BinanceBroker
    from tradeloop.execution.asynchronous.brokers.binance.config import BinanceConfig
    from tradeloop.execution.asynchronous.components.rate_limiter import RateLimiter
    from tradeloop.testing.binance.server import DEFAULT_API_KEY, DEFAULT_SECRET, BinanceServer

    plan = parse_faults(faults)
    plan.reseed(seed)
    started = time.monotonic()
    server = BinanceServer(feed, speed=speed, faults=plan, linger=None, max_seconds=timeout)
    await server.start()
    report = ChaosReport()
    try:
        config = BinanceConfig(
            base_url=server.url, api_key=DEFAULT_API_KEY, secret=DEFAULT_SECRET, timeout=5
        )
        pairs = tuple(server.pairs.values())
        broker = BinanceBroker(
            config, symbols=pairs, limiter=RateLimiter(6000, 60.0, rng=random.Random(seed))
        )
        log = workdir / "fills.jsonl"
        strategy = _trader(seed=seed, rate=rate, max_qty=20, log=str(log))
        engine = AsyncEngine(broker, strategy, run_id=f"bc{seed}", symbols=pairs)
        margin = 8 * len(pairs)  # the last bars: orders sent then may fill after the stop
        result = await asyncio.wait_for(engine.run(max_bars=len(feed) - margin), timeout)
        last_ts = max((f.ts for f in result.fills), default=0)
        last_bar = engine.ctx.now
        venue_trades = {f"{t['symbol']}:{t['id']}": t for t in server.venue.trades}
        ids = [f.execution_id for f in result.fills]
        report.orders_sent = len(result.orders) if hasattr(result, "orders") else 0
        report.orders_at_venue = len(server.venue.exchange.book.orders)
        report.fills = len(ids)
        report.duplicates = len(ids) - len(set(ids))
        report.lost_fills = sum(
            1
            for tid, t in venue_trades.items()
            if t["time"] * 1_000_000 < last_bar and tid not in set(ids)
        )
        unknown = set(ids) - set(venue_trades)
        if unknown:
            report.problems.append(f"fills the venue never made: {sorted(unknown)[:5]}")
        report.faults = {k: v for k, v in plan.counts.items() if v}
        report.reconnects = sum(s.reconnects for s in broker.streams)
        report.rate_limited = broker.limiter.throttled
        report.resends = engine.manager.retries
        report.reconciliations = engine.reconciliations
        del last_ts
    finally:
        await server.stop()
    report.elapsed = time.monotonic() - started
    return report


def run_binance_chaos(
    workdir: Path,
    feed: BarFeed,
    *,
    speed: float = 2000.0,
    rate: float = 0.08,
    faults: str = DEFAULT_BINANCE_FAULTS,
    seed: int = 7,
    min_orders: int = 0,
    timeout: float = 600.0,
    echo: Callable[[str], None] = print,
) -> ChaosReport:
    """Run the chaos (see the module docstring) and return its report."""
    echo(f"binance chaos: faults {faults}")
    report = asyncio.run(_run(Path(workdir), feed, speed, rate, faults, seed, timeout))
    if report.orders_at_venue < min_orders:
        report.problems.append(f"only {report.orders_at_venue} orders reached the venue")
    return report
