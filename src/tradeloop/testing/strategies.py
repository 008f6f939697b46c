"""Strategies for testing the live path: ones that trade a lot, on purpose.

``ChaosTrader`` places, cancels and replaces orders at random (seeded), long only (Alpaca refuses
an order that flips a position), and logs when each fill reaches it, so a chaos run can measure
how long fills take to arrive through faults, reconnects and restarts.
"""

from __future__ import annotations

import json
import random
import time
from typing import IO

from tradeloop.errors import InvalidOrderError
from tradeloop.execution.types import Bar, Fill
from tradeloop.strategy import Context, Strategy

__all__ = ["ChaosTrader"]


class ChaosTrader(Strategy):
    """Trades often and at random: market and limit buys, sells of what it holds, cancels and
    replaces of resting orders. ``rate``: chance to act on a bar; ``max_qty``: the largest
    order; ``log``: a JSON-lines file (appended) of ``{"cid", "cum", "wall"}`` per fill;
    ``progress``: a file holding the timestamp of the latest bar seen (a chaos run waits for the
    last one before it stops the engine)."""

    seed: int = 7
    rate: float = 0.05
    max_qty: int = 20
    log: str = ""
    progress: str = ""

    def on_start(self, ctx: Context) -> None:
        self._rng = random.Random(self.seed)
        self._seen = 0
        self._cum: dict[str, float] = {}
        self._out: IO[str] | None = open(self.log, "a", encoding="utf-8") if self.log else None  # noqa: SIM115

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if self.progress and bar.ts > self._seen:
            self._seen = bar.ts
            with open(self.progress, "w", encoding="utf-8") as fh:
                fh.write(str(bar.ts))
        rng = self._rng
        if rng.random() >= self.rate:
            return
        sym = bar.symbol
        qty = float(rng.randint(1, self.max_qty))
        action = rng.random()
        held = ctx.position(sym).qty
        selling = sum(o.remaining_qty for o in ctx.open_orders(sym) if o.side == "sell")
        free = held - selling  # what a sell can take without going short (a flip is refused)
        affordable = qty * bar.close < 0.2 * ctx.buying_power
        resting = [o for o in ctx.open_orders(sym) if o.type.value == "limit"]
        if action < 0.35 and affordable:
            ctx.buy(sym, qty)
        elif action < 0.55 and affordable:
            price = round(bar.close * (1 - rng.uniform(0.0, 0.004)), 2)
            ctx.buy(sym, qty, type="limit", limit_price=price, tif=rng.choice(["day", "gtc"]))
        elif action < 0.85 and free >= 1:  # also when buying is not affordable: keep turning
            ctx.sell(sym, min(free, qty))
        elif resting:
            target = rng.choice(resting)
            if rng.random() < 0.5:
                ctx.cancel(target)
            else:
                try:
                    ctx.replace(target, limit_price=round(bar.close * 0.997, 2))
                except InvalidOrderError as exc:
                    if exc.field != "changes":
                        raise
                    ctx.cancel(target)  # already at that price: a replace would change nothing

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        order = ctx.get_order(fill.order_id)
        base = self._cum.get(order.id)
        if base is None:  # first fill of it this process sees (after a restart: earlier fills)
            base = max(0.0, order.filled_qty - fill.qty)
        cum = self._cum[order.id] = base + fill.qty
        if self._out is not None:
            self._out.write(
                json.dumps({"cid": order.client_order_id, "cum": cum, "wall": time.time()}) + "\n"
            )
            self._out.flush()

    def on_stop(self, ctx: Context) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
