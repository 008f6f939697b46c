"""Example strategies. ``SmaCross`` is also what ``tradeloop demo`` and the benchmark run."""

from __future__ import annotations

from typing import Any

from tradeloop.errors import ConfigError
from tradeloop.execution.types import Bar, Fill, Order, OrderStatus
from tradeloop.strategy import Context, Strategy

__all__ = ["BuyAndHold", "SmaCross"]


class _SmaState:
    """One symbol's moving sums: the last ``slow + 1`` closes in a ring (``closes[p]`` the
    latest), how many bars it has seen (up to ``slow``), the fast and slow sums, and the position
    the signal last asked for (1 long, -1 short, 0 flat)."""

    __slots__ = ("closes", "fast_sum", "n", "p", "slow_sum", "state")

    def __init__(self, slow: int) -> None:
        self.closes = [0.0] * (slow + 1)
        self.p = 0
        self.n = 0
        self.fast_sum = 0.0
        self.slow_sum = 0.0
        self.state = 0


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
        self._sym: dict[str, _SmaState] = {s: _SmaState(self.slow) for s in ctx.symbols}

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        # One lookup gets all of a symbol's state, and a bar touches three of its closes: over a
        # wide universe a symbol's state has left the CPU's nearest caches by its next bar, and
        # each object touched is a miss.
        st = self._sym[bar.symbol]
        closes = st.closes
        close = bar.close
        fast, slow = self.fast, self.slow
        p = st.p + 1
        if p > slow:
            p = 0
        st.p = p
        closes[p] = close  # over the close slow + 1 bars ago, which no sum holds any more
        fs = st.fast_sum + close
        ss = st.slow_sum + close
        n = st.n
        if n < slow:  # filling up
            st.n = n = n + 1
            if n > fast:
                fs -= closes[p - fast]  # a negative index wraps round the ring
            st.fast_sum = fs
            st.slow_sum = ss
            if n < slow:
                return
        else:
            fs -= closes[p - fast]
            ss -= closes[p - slow]
            st.fast_sum = fs
            st.slow_sum = ss
        want = 1 if fs * slow > ss * fast else (-1 if self.allow_short else 0)
        sym = bar.symbol
        if want == st.state or ctx.open_orders(sym):
            return
        st.state = want
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
            self._sym[order.symbol].state = (held > 0) - (held < 0)


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
