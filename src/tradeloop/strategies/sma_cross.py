"""Example strategies. ``SmaCross`` is also what ``tradeloop demo`` and the benchmark run."""

from __future__ import annotations

from typing import Any

from tradeloop.errors import ConfigError
from tradeloop.execution.types import Bar, Fill, Order, OrderStatus
from tradeloop.strategy import Context, Strategy

__all__ = ["BuyAndHold", "SmaCross"]


class SmaCross(Strategy):
    """Long (or short, with ``allow_short``) when the fast SMA of closes is above the slow one.

    Sizes each entry to ``allocation`` of equity split evenly across symbols. The moving sums are
    kept incrementally per symbol, so each bar costs O(1) whatever the window lengths.
    """

    fast: int = 10
    slow: int = 30
    allocation: float = 0.95
    allow_short: bool = False

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if not 0 < self.fast < self.slow:  # refused when made, before any data is loaded
            raise ConfigError(
                "strategy.params.fast", self.fast, f"must be > 0 and < slow={self.slow}"
            )

    def on_start(self, ctx: Context) -> None:
        self._closes: dict[str, list[float]] = {s: [] for s in ctx.symbols}
        self._fast_sum: dict[str, float] = dict.fromkeys(ctx.symbols, 0.0)
        self._slow_sum: dict[str, float] = dict.fromkeys(ctx.symbols, 0.0)
        self._state: dict[str, int] = dict.fromkeys(ctx.symbols, 0)

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        sym = bar.symbol
        closes = self._closes[sym]
        close = bar.close
        closes.append(close)
        n = len(closes)
        fast, slow = self.fast, self.slow
        fs = self._fast_sum[sym] + close
        ss = self._slow_sum[sym] + close
        if n > fast:
            fs -= closes[n - 1 - fast]
        if n > slow:
            ss -= closes[n - 1 - slow]
            del closes[0]  # keep the window bounded: the list holds at most slow + 1 closes
        self._fast_sum[sym] = fs
        self._slow_sum[sym] = ss
        if n < slow:
            return
        want = 1 if fs * slow > ss * fast else (-1 if self.allow_short else 0)
        if want == self._state[sym] or ctx.open_orders(sym):
            return
        self._state[sym] = want
        held = ctx.position(sym).qty
        target = 0.0
        if want:
            # an equal share of equity, but never more than the account can take right now;
            # closing what is held (a flip from long to short) frees its capital first
            freed = abs(held) * close
            budget = min(ctx.equity * self.allocation / len(ctx.symbols), ctx.buying_power + freed)
            target = want * float(int(budget / close))
        delta = target - held
        if delta > 0:
            ctx.buy(sym, delta)
        elif delta < 0:
            ctx.sell(sym, -delta)

    def on_order_update(self, ctx: Context, order: Order) -> None:
        if order.status is OrderStatus.REJECTED:
            # not affordable now: forget the signal so the next bar can try again
            held = ctx.position(order.symbol).qty
            self._state[order.symbol] = (held > 0) - (held < 0)


class BuyAndHold(Strategy):
    """Buy ``allocation`` of equity split across all symbols on the first bar of each, and hold."""

    allocation: float = 0.95

    def on_start(self, ctx: Context) -> None:
        self._bought: set[str] = set()

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if bar.symbol in self._bought:
            return
        self._bought.add(bar.symbol)
        qty = float(int(ctx.equity * self.allocation / len(ctx.symbols) / bar.close))
        if qty > 0:
            ctx.buy(bar.symbol, qty)

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        pass
