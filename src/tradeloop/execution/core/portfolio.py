"""Portfolio accounting: cash, signed positions at average cost, realized/unrealized PnL, trades.

Identities that hold after any sequence of fills (checked by property tests)::

    equity == cash + sum(qty * last_price)
    equity == initial_cash + realized_pnl + unrealized_pnl - commission_paid

Shorts are negative quantities; selling short credits cash with the proceeds. Buying power is
``equity * leverage - gross_exposure``: with ``leverage=1`` a long-only account can spend its cash,
and a short position ties up capital equal to its market value.

Cost: ``market_value`` and ``gross_exposure`` are running sums. A mark and a fill update them by
the change of the one position they touch, so neither walks the other positions, however many
there are. Float rounding makes a running sum drift from the sum over the positions by a few
ulps per update, so once the fills since the last exact sum reach the number of positions, the
next fill sums them exactly again (an O(positions) walk every O(positions) fills: O(1) per fill
amortized). The drift the fills add between exact sums is bounded by about
``positions * eps * gross`` (relative: below 1e-12 for any realistic book); marks drift between
fills as they always did. With one position every fill is summed exactly, as before. The
result is a function of the sequence of fills and marks only, so two engines that apply the same
sequence (the synchronous and asynchronous ones) agree to the last bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from tradeloop.execution.types import Order, OrderSide, OrderType, Position, Trade

if TYPE_CHECKING:
    from tradeloop.results.log import TradeLog

__all__ = ["Portfolio", "TradeList"]


class TradeList(list[Trade]):
    """Where a portfolio records its trades by default: the trades themselves, in the order they
    opened. Rows are taken when a trade opens (:meth:`reserve`, which returns the row) and final
    once it closes (:meth:`commit`), as in a :class:`~tradeloop.results.log.TradeLog`."""

    def reserve(self, trade: Trade, /) -> int:
        self.append(trade)
        return len(self) - 1

    def commit(self, row: int, /) -> None:
        pass  # the list holds the live trade: nothing to write


_EPS = 1e-9


class Portfolio:
    __slots__ = (
        "_open_trades",
        "_since_sum",
        "_trade_rows",
        "allow_short",
        "cash",
        "commission_paid",
        "gross_exposure",
        "initial_cash",
        "leverage",
        "market_value",
        "positions",
        "realized_pnl",
        "touched",
        "trades",
    )

    def __init__(
        self,
        initial_cash: float,
        leverage: float = 1.0,
        allow_short: bool = True,
        *,
        trades: TradeList | TradeLog | None = None,
    ) -> None:
        """``trades`` records the round trips (default: a plain list); the backtest engine
        passes a compact :class:`~tradeloop.results.log.TradeLog`, spilled to Parquet past a
        size (storage is the shell's business: the core does no I/O)."""
        self.initial_cash = float(initial_cash)
        self.cash = float(initial_cash)
        self.leverage = float(leverage)
        self.allow_short = allow_short
        self.positions: dict[str, Position] = {}
        self.market_value = 0.0  # sum(qty * last_price), signed
        self.gross_exposure = 0.0  # sum(|qty| * last_price)
        self.realized_pnl = 0.0
        self.commission_paid = 0.0
        self.trades: TradeList | TradeLog = trades if trades is not None else TradeList()
        self._open_trades: dict[str, Trade] = {}
        self._trade_rows: dict[str, int] = {}  # each open trade's row in ``trades``
        self._since_sum = 0  # fills since market_value and gross_exposure were summed exactly
        # symbols whose quantity changed (what the exchange's reservations must look at again)
        self.touched: set[str] = set()

    # -- reading -------------------------------------------------------------------------------

    @property
    def equity(self) -> float:
        return self.cash + self.market_value

    @property
    def unrealized_pnl(self) -> float:
        return sum(p.unrealized_pnl for p in self.positions.values())

    @property
    def buying_power(self) -> float:
        return max(0.0, self.equity * self.leverage - self.gross_exposure)

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol)
        return pos

    def qty(self, symbol: str) -> float:
        pos = self.positions.get(symbol)
        return pos.qty if pos is not None else 0.0

    # -- marking (hot path) --------------------------------------------------------------------

    def mark(self, symbol: str, price: float) -> None:
        """Mark ``symbol`` to ``price`` (e.g. a bar's close), updating equity in O(1)."""
        pos = self.positions.get(symbol)
        if pos is not None:
            self.mark_position(pos, price)

    def mark_position(self, pos: Position, price: float) -> None:
        """:meth:`mark` for a position of this portfolio already at hand (no lookup by symbol)."""
        q = pos.qty
        if q:
            d = price - pos.last_price
            self.market_value += q * d
            self.gross_exposure += (q if q > 0 else -q) * d
        pos.last_price = price

    def _recompute_values(self) -> None:
        """Sum ``market_value`` and ``gross_exposure`` over the positions (O(positions))."""
        self._since_sum = 0
        mv = 0.0
        gross = 0.0
        for p in self.positions.values():
            v = p.qty * p.last_price
            mv += v
            gross += v if v > 0 else -v
        self.market_value = mv
        self.gross_exposure = gross

    def seed_position(self, symbol: str, qty: float, avg_price: float, last_price: float) -> None:
        """Start from a position the account already holds (a live account at startup).

        No trade is opened for it: its round trip began before this run.
        """
        pos = self.position(symbol)
        self._revalue(pos, float(qty), float(last_price))
        pos.avg_price = float(avg_price)
        self.touched.add(symbol)

    def _revalue(self, pos: Position, qty: float, price: float) -> None:
        """Set ``pos``'s quantity and last price, moving the running sums by its change."""
        old = pos.qty
        last = pos.last_price
        self.market_value += qty * price - old * last
        self.gross_exposure += (qty if qty > 0.0 else -qty) * price - (
            old if old > 0.0 else -old
        ) * last
        pos.qty = qty
        pos.last_price = price
        self._since_sum += 1
        if self._since_sum >= len(self.positions):
            self._recompute_values()  # bound the drift: O(positions) every O(positions) fills

    # -- fills ---------------------------------------------------------------------------------

    def apply_fill(
        self, symbol: str, side: OrderSide, qty: float, price: float, commission: float, ts: int
    ) -> None:
        """Book a fill of ``qty`` (> 0) at ``price``; ``commission`` is debited from cash."""
        pos = self.position(symbol)
        sign = 1.0 if side is OrderSide.BUY else -1.0
        old = pos.qty
        new = old + sign * qty
        if abs(new) < _EPS:
            new = 0.0
        self.cash -= sign * qty * price + commission
        self.commission_paid += commission

        trade = self._open_trades.get(symbol)
        if old == 0.0 and new == 0.0:
            pass  # a fill below the flat threshold: cash moves, no position or trade opens
        elif old == 0.0 or (old > 0.0) == (sign > 0.0):
            # opening or adding: average the entry price
            total = abs(old) + qty
            pos.avg_price = (pos.avg_price * abs(old) + price * qty) / total
            if trade is None:
                trade = self._open_trade(symbol, side, ts)
            trade._entry_notional += qty * price
            trade._entry_qty += qty
            trade.entry_price = trade._entry_notional / trade._entry_qty
            trade.max_qty = max(trade.max_qty, abs(new))
            trade.commission += commission
        else:
            closed = min(qty, abs(old))
            pnl = (price - pos.avg_price) * closed * (1.0 if old > 0.0 else -1.0)
            pos.realized_pnl += pnl
            self.realized_pnl += pnl
            closing_fee = commission * closed / qty
            if trade is not None:
                trade.pnl += pnl
                trade.commission += closing_fee
                trade._exit_notional += closed * price
                trade._exit_qty += closed
                trade.exit_price = trade._exit_notional / trade._exit_qty
            if new == 0.0:
                pos.avg_price = 0.0
                if trade is not None:
                    self._close_trade(trade, ts)
            elif (new > 0.0) != (old > 0.0):
                # flipped through zero: close the trade, open one on the other side
                pos.avg_price = price
                if trade is not None:
                    self._close_trade(trade, ts)
                opened = abs(new)
                t2 = self._open_trade(symbol, side, ts)
                t2._entry_notional = opened * price
                t2._entry_qty = opened
                t2.entry_price = price
                t2.max_qty = opened
                t2.commission = commission - closing_fee
        self._revalue(pos, new, price)
        self.touched.add(symbol)

    def _open_trade(self, symbol: str, side: OrderSide, ts: int) -> Trade:
        trade = Trade(symbol, side, ts)
        self._open_trades[symbol] = trade
        self._trade_rows[symbol] = self.trades.reserve(trade)
        return trade

    def _close_trade(self, trade: Trade, ts: int) -> None:
        """End the open ``trade`` at ``ts``: its row in ``trades`` is final."""
        trade.exit_ts = ts
        del self._open_trades[trade.symbol]
        self.trades.commit(self._trade_rows.pop(trade.symbol))

    # -- pre-trade checks ----------------------------------------------------------------------

    @staticmethod
    def estimate_price(order: Order, ref_price: float) -> float:
        """A conservative price for sizing checks: the order's own price when it has one."""
        if order.type is OrderType.LIMIT or order.type is OrderType.STOP_LIMIT:
            return order.limit_price if order.limit_price is not None else ref_price
        if order.type is OrderType.STOP and order.stop_price is not None:
            return max(order.stop_price, ref_price) if order.side is OrderSide.BUY else ref_price
        return ref_price

    def opening_qty(self, symbol: str, side: OrderSide, qty: float, pending: float = 0.0) -> float:
        """The part of ``qty`` that would increase |position| (after ``pending`` signed qty)."""
        held = self.qty(symbol) + pending
        if side is OrderSide.BUY:
            return qty if held >= 0.0 else max(0.0, qty + held)
        return qty if held <= 0.0 else max(0.0, qty - held)

    def committed(self, orders: Iterable[Order], ref_prices: Mapping[str, float]) -> float:
        """Buying power that open ``orders`` (in book order) would use if they all filled.

        Each order is judged as :meth:`reject_reason` judges a new one: only earlier orders on the
        same side are assumed to fill, so an opposite order never excuses a reservation.
        """
        same_side: dict[tuple[str, OrderSide], float] = {}
        total = 0.0
        for o in orders:
            key = (o.symbol, o.side)
            pending = same_side.get(key, 0.0)
            rem = o.remaining_qty
            opening = self.opening_qty(o.symbol, o.side, rem, pending)
            if opening > 0.0:
                total += opening * self.estimate_price(o, ref_prices.get(o.symbol, 0.0))
            same_side[key] = pending + o.side.sign * rem
        return total

    def reject_reason(
        self,
        order: Order,
        ref_price: float,
        reserved: float,
        pending: float,
        est_commission: float,
    ) -> str | None:
        """Why the account cannot take ``order`` now, or ``None`` if it can.

        ``reserved``: buying power already committed to other open orders; ``pending``: the signed
        quantity those open orders on the same symbol would add to the position.
        """
        # open orders that would move the position the other way may never fill: only those on
        # the same side as this order are assumed to (conservative in both directions)
        sell = order.side is OrderSide.SELL
        pending = min(pending, 0.0) if sell else max(pending, 0.0)
        opening = self.opening_qty(order.symbol, order.side, order.qty, pending)
        if opening <= 0.0:
            return None
        if sell and not self.allow_short and self.qty(order.symbol) + pending - order.qty < -_EPS:
            return f"short selling is disabled (allow_short=False): qty={order.qty} {order.symbol}"
        need = opening * self.estimate_price(order, ref_price) + est_commission
        # the part of the order that first closes an opposite position frees its capital
        available = self.buying_power - reserved + (order.qty - opening) * ref_price
        if need > available + _EPS:
            return f"insufficient buying power: order needs {need:.2f}, available {available:.2f}"
        return None
