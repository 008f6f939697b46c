"""Restart from the journal: open orders adopted, fills made while down delivered, nothing resent.

(The SIGKILL of a real process is in ``tests/testing/test_chaos.py``; here the steps are
controlled one by one against the loopback server.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.execution.asynchronous import AsyncEngine
from tradeloop.execution.asynchronous.brokers.alpaca.broker import AlpacaBroker
from tradeloop.execution.asynchronous.components import BrokerConfig
from tradeloop.execution.types import Bar, Fill, Order, OrderSide, OrderStatus, OrderType
from tradeloop.persistence.journal import OrderJournal
from tradeloop.strategy import Context, Strategy
from tradeloop.testing.alpaca import DEFAULT_KEY_ID, DEFAULT_SECRET, AlpacaServer

T = TypeVar("T")
MIN = 60_000_000_000
T0 = 1_709_303_400_000_000_000


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 30))


def feed(n: int = 12) -> BarFeed:
    closes = [100.0 + i for i in range(n)]
    opens = [closes[0], *closes[:-1]]
    return BarFeed(
        [
            SymbolSeries(
                "AAA",
                [T0 + i * MIN for i in range(n)],
                opens,
                [c + 1 for c in closes],
                [o - 1 for o in opens],
                closes,
                [1e6] * n,
            )
        ]
    )


class FirstRun(Strategy):
    """Buys 10 at market and rests a limit sell of 5 above the market, on its first bar."""

    def on_start(self, ctx: Context) -> None:
        self.done = False

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if not self.done:
            self.done = True
            ctx.buy("AAA", 10)
            ctx.sell("AAA", 5, type="limit", limit_price=bar.close + 2.5)  # fills on a rise


class SecondRun(Strategy):
    """Only watches: what it is told before its first bar is what happened while it was down."""

    def on_start(self, ctx: Context) -> None:
        self.before_first_bar: list[tuple[str, Any]] = []
        self.open_at_start = [o.client_order_id for o in ctx.open_orders()]
        self.bars = 0

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.bars += 1

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        if not self.bars:
            self.before_first_bar.append(("fill", (fill.qty, fill.price)))

    def on_order_update(self, ctx: Context, order: Order) -> None:
        if not self.bars:
            self.before_first_bar.append(("order", (order.id, order.status.value)))


def broker(url: str) -> AlpacaBroker:
    cfg = BrokerConfig(key_id=DEFAULT_KEY_ID, secret_key=DEFAULT_SECRET, base_url=url)
    return AlpacaBroker(cfg, symbols=["AAA"])


async def play(server: AlpacaServer, engine: AsyncEngine, task: asyncio.Task[Any], n: int) -> None:
    """Step the venue one bar at a time, each once the engine has taken the last, ``n`` bars;
    then wait for the run to end."""
    async with asyncio.timeout(20):
        await server.wait_for_client(["AAA"])  # a bar stepped before would never reach it
        for i in range(n):
            await server.step(1)
            while engine.bars_processed <= i:
                await asyncio.sleep(0.01)
        await task


def test_a_restart_adopts_open_orders_delivers_missed_fills_and_resends_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"

    async def scenario() -> tuple[Any, ...]:
        async with AlpacaServer(feed(), port=0, speed=0) as server:
            # run 1: two orders; the market order fills, the limit rests
            first = AsyncEngine(broker(server.url), FirstRun(), journal=OrderJournal(path))
            await play(server, first, asyncio.create_task(first.run(max_bars=2)), 2)
            # a decision journaled just before a crash, never sent
            with OrderJournal(path) as journal:
                ghost = Order(
                    "O000009",
                    "AAA",
                    OrderSide.BUY,
                    1.0,
                    OrderType.MARKET,
                    client_order_id=f"{journal.run_id}-O000009",
                )
                journal.record_intent(ghost)
            # the engine is down: the market rises through the limit and it fills
            await server.wait_streams_closed()
            await server.step(3)
            posted = len(server.state()["orders"])
            # run 2: the same journal
            second_strategy = SecondRun()
            second = AsyncEngine(broker(server.url), second_strategy, journal=OrderJournal(path))
            await play(server, second, asyncio.create_task(second.run(max_bars=1)), 1)
            return second, second_strategy, server.state(), posted

    engine, strategy, state, posted = run(scenario())
    assert len(state["orders"]) == posted == 2  # nothing was sent again (not the ghost either)
    orders = {o.client_order_id: o for o in engine.manager.book.orders.values()}
    run_id = next(iter(orders)).split("-")[0]
    limit = orders[f"{run_id}-O000002"]
    assert limit.status is OrderStatus.FILLED and limit.filled_qty == 5
    assert orders[f"{run_id}-O000009"].status is OrderStatus.CANCELED  # never reached the venue
    assert strategy.open_at_start == []  # the fill while down was applied before on_start
    kinds = [k for k, _ in strategy.before_first_bar]
    assert "fill" in kinds  # ... and reached the strategy before its first bar
    assert engine.portfolio.qty("AAA") == 5 == state["positions"][0]["qty"]
    assert engine.portfolio.cash == state["cash"]
    assert engine.warnings == []
    with OrderJournal(path, readonly=True) as journal:
        assert {f.execution_id for f in journal.fills()} == {
            f.execution_id for f in engine.manager.fills
        }
        assert len(journal.fills()) == 2
