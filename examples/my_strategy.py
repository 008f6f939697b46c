"""A custom strategy, loaded by ``custom_strategy.yaml`` as ``my_strategy.py:RsiReversion``.

RSI mean reversion, long only:

* when the RSI of closes drops below ``oversold`` and we are flat, place a DAY limit order a little
  below the close (``entry_discount``); if the market does not come down to it, it expires;
* every buy fill (re)places a protective stop ``stop_loss`` below the average entry price, sized
  to the whole position;
* when the RSI recovers above ``exit_level``, cancel the stop and close the position at market.

The RSI uses Wilder's smoothing, updated in O(1) per bar and per symbol.
"""

from __future__ import annotations

from dataclasses import dataclass

from tradeloop import Context, Strategy
from tradeloop.errors import ConfigError
from tradeloop.execution.types import Bar, Fill, Order, OrderSide


@dataclass
class _SymbolState:
    prev_close: float | None = None
    avg_gain: float = 0.0
    avg_loss: float = 0.0
    seen: int = 0  # price changes seen so far
    rsi: float | None = None
    stop: Order | None = None


class RsiReversion(Strategy):
    period: int = 14
    oversold: float = 30.0
    exit_level: float = 55.0
    entry_discount: float = 0.005  # limit price = close * (1 - entry_discount)
    stop_loss: float = 0.08  # stop price = average entry price * (1 - stop_loss)
    allocation: float = 0.9  # fraction of equity to use, split across symbols

    def on_start(self, ctx: Context) -> None:
        if self.period < 2:
            raise ConfigError("strategy.params.period", self.period, "must be >= 2")
        if not 0 < self.oversold < self.exit_level < 100:
            raise ConfigError(
                "strategy.params.oversold",
                self.oversold,
                f"must satisfy 0 < oversold < exit_level={self.exit_level} < 100",
            )
        if not 0 < self.stop_loss < 1:
            raise ConfigError("strategy.params.stop_loss", self.stop_loss, "must be in (0, 1)")
        self._state = {sym: _SymbolState() for sym in ctx.symbols}

    def _update_rsi(self, st: _SymbolState, close: float) -> None:
        if st.prev_close is not None:
            change = close - st.prev_close
            gain, loss = max(change, 0.0), max(-change, 0.0)
            st.seen += 1
            n = self.period
            if st.seen <= n:  # the first average is a plain mean of `period` changes
                st.avg_gain += gain / n
                st.avg_loss += loss / n
            else:
                st.avg_gain = (st.avg_gain * (n - 1) + gain) / n
                st.avg_loss = (st.avg_loss * (n - 1) + loss) / n
            if st.seen >= n:
                if st.avg_loss == 0.0:
                    st.rsi = 100.0
                else:
                    st.rsi = 100.0 - 100.0 / (1.0 + st.avg_gain / st.avg_loss)
        st.prev_close = close

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        st = self._state[bar.symbol]
        self._update_rsi(st, bar.close)
        if st.rsi is None:
            return
        held = ctx.position(bar.symbol).qty
        others = [o for o in ctx.open_orders(bar.symbol) if o is not st.stop]
        if others:  # an entry or an exit is still working
            return
        if held == 0 and st.rsi < self.oversold:
            limit = round(bar.close * (1.0 - self.entry_discount), 2)
            qty = int(ctx.equity * self.allocation / len(ctx.symbols) / limit)
            if qty > 0:
                ctx.buy(bar.symbol, qty, type="limit", limit_price=limit, tif="day")
        elif held > 0 and st.rsi > self.exit_level:
            self._cancel_stop(ctx, st)
            ctx.close_position(bar.symbol, tag="rsi exit")

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        st = self._state[fill.symbol]
        pos = ctx.position(fill.symbol)
        if fill.side is OrderSide.BUY and pos.qty > 0:
            # Protect the whole position, including this (possibly partial) fill.
            self._cancel_stop(ctx, st)
            stop_price = round(pos.avg_price * (1.0 - self.stop_loss), 2)
            st.stop = ctx.sell(fill.symbol, pos.qty, type="stop", stop_price=stop_price, tag="stop")
        elif pos.qty <= 0:
            self._cancel_stop(ctx, st)

    def _cancel_stop(self, ctx: Context, st: _SymbolState) -> None:
        if st.stop is not None and st.stop.is_open:
            ctx.cancel(st.stop)
        st.stop = None
