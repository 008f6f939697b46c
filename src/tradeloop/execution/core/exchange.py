"""SimulatedExchange: a simulated venue's orders, matching and accounting, by plain calls.

The one implementation of simulated trading, pure (no I/O, no asyncio): the synchronous engine's
order manager *is* one, the asynchronous engine's simulated broker holds one behind the async
broker protocol, and the loopback broker servers match with one. That is what makes a backtest,
a simulated live run and a loopback dry run fill identically.

It composes the rest of the core (OrderBook, OrderValidator, matching, Portfolio), decides *when*
things happen in simulated time and reports every change to a listener synchronously, in order.

Timing rules (no look-ahead):

* an order submitted at time ``t`` is matched only against bars with timestamp ``> t``;
* ``ioc`` and ``fok`` orders get exactly one bar: their first eligible one. ``ioc`` cancels what it
  could not fill there; ``fok`` fills completely there or is canceled without a fill;
* ``day`` orders expire when a bar of a later UTC calendar day than their first eligible bar
  arrives for their symbol (before that bar is matched);
* with a ``participation_rate``, all orders on a symbol share at most ``rate * bar volume`` per bar
  (whole units unless ``fractional``); the rest stays open for later bars.

With a :class:`~tradeloop.execution.core.risk.RiskManager` (``risk``; the synchronous engine's, a
venue has none), every submission and replacement is risk-checked first: a refused order is
registered ``rejected`` with the risk reason, exactly like an order the account cannot afford.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Unpack

from tradeloop.errors import InvalidOrderError
from tradeloop.execution.core.book import OrderBook
from tradeloop.execution.core.costs import NoCommission, NoSlippage
from tradeloop.execution.core.matching import match
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.core.risk import RiskManager, risk_reason
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.sync_protocols import CommissionModel, ExecutionListener, SlippageModel
from tradeloop.execution.types import (
    Fill,
    Order,
    OrderParams,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)

__all__ = ["SimulatedExchange"]

_NS_PER_DAY = 86_400_000_000_000
_EPS = 1e-9


class _NullListener:
    def on_fill(self, fill: Fill) -> None:
        pass

    def on_order_update(self, order: Order) -> None:
        pass


class SimulatedExchange:
    __slots__ = (
        "_exec_seq",
        "book",
        "commission",
        "fills",
        "fractional",
        "last_prices",
        "listener",
        "participation_rate",
        "portfolio",
        "risk",
        "slippage",
    )

    def __init__(
        self,
        portfolio: Portfolio,
        *,
        symbols: tuple[str, ...] | None = None,
        commission: CommissionModel | None = None,
        slippage: SlippageModel | None = None,
        participation_rate: float | None = None,
        fractional: bool = False,
        listener: ExecutionListener | None = None,
        risk: RiskManager | None = None,
    ) -> None:
        if participation_rate is not None and not 0.0 < participation_rate <= 1.0:
            raise InvalidOrderError(
                "participation_rate", participation_rate, "must be in (0, 1] or None"
            )
        self.portfolio = portfolio
        self.book = OrderBook(OrderValidator(symbols, fractional))
        self.commission: CommissionModel = commission if commission is not None else NoCommission()
        self.slippage: SlippageModel = slippage if slippage is not None else NoSlippage()
        self.participation_rate = participation_rate
        self.fractional = fractional
        self.listener: ExecutionListener = listener if listener is not None else _NullListener()
        self.risk = risk
        self.fills: list[Fill] = []
        self.last_prices: dict[str, float] = {}
        self._exec_seq = 0

    # -- commands ------------------------------------------------------------------------------

    def submit(
        self,
        symbol: str,
        side: OrderSide | str,
        qty: float,
        type: OrderType | str = OrderType.MARKET,
        *,
        now: int,
        **params: Unpack[OrderParams],
    ) -> Order:
        """Validate, risk-check and register an order; returns it accepted or rejected.

        Malformed requests raise :class:`InvalidOrderError` and register nothing.
        """
        order = self.book.new_order(symbol, side, qty, type, now=now, **params)
        self._admit(order, now, ignore=None)
        return order

    def cancel(self, order: Order | str, now: int) -> bool:
        """Cancel an open order. ``False`` if it already reached a terminal state."""
        o = self.book.resolve(order)
        if not o.is_open:
            return False
        self.book.set_status(o, OrderStatus.CANCELED, now)
        self.listener.on_order_update(o)
        return True

    def replace(self, order: Order | str, now: int, **changes: Any) -> Order:
        """Replace an open order by a new one (new id); the old one ends ``replaced``.

        ``changes``: ``qty``, ``limit_price``, ``stop_price``, ``trail_price``, ``trail_percent``,
        ``tif``, and the new order's ``client_order_id``. If the account cannot afford the new
        order it is returned ``rejected`` and the old order stays as it was.
        """
        old = self.book.resolve(order)
        new = self.book.replacement(old, now, **changes)
        if self._admit(new, now, ignore=old):
            self.book.set_status(old, OrderStatus.REPLACED, now)
            old.replaced_by = new.id
            self.listener.on_order_update(old)
        return new

    def admission_reason(
        self,
        order: Order,
        ignore: Order | None = None,
        fallback_prices: Mapping[str, float] | None = None,
    ) -> str | None:
        """Why the account cannot take ``order`` now (buying power, shorting), or ``None``.

        The check :meth:`submit` and :meth:`replace` make, without registering anything (a venue
        that answers "no" before it books an order asks this first). ``ignore``: an open order
        the new one would replace. ``fallback_prices``: reference prices for symbols that have
        no bar yet (otherwise such an order is checked only against its own limit/stop).
        """
        prices: Mapping[str, float] = self.last_prices
        if fallback_prices:
            prices = {**fallback_prices, **self.last_prices}
        ref = self.last_prices.get(order.symbol)
        if ref is None:
            ref = order.limit_price or order.stop_price or prices.get(order.symbol, 0.0)
        if ref <= 0.0:
            return None
        pending, open_orders = self.book.commitments(ignore=ignore)
        reserved = self.portfolio.committed(open_orders, prices)
        fee = self.commission.compute(order, order.qty, self.portfolio.estimate_price(order, ref))
        return self.portfolio.reject_reason(
            order, ref, reserved, pending.get(order.symbol, 0.0), fee
        )

    def risk_reason(self, order: Order, now: int, ignore: Order | None = None) -> str | None:
        """Why :attr:`risk` refuses ``order`` at ``now`` (``None``: it passes, or no risk is set).

        ``ignore``: an open order the new one would replace. Counts no submission:
        :meth:`submit` and :meth:`replace` record the ones that pass.
        """
        if self.risk is None:
            return None
        return risk_reason(
            self.risk,
            order,
            book=self.book,
            portfolio=self.portfolio,
            ref_price=self.last_prices.get(order.symbol),
            now=now,
            ignore=ignore,
        )

    def _admit(self, order: Order, now: int, ignore: Order | None) -> bool:
        risk = self.risk
        reason = self.risk_reason(order, now, ignore) if risk is not None else None
        if reason is None:
            reason = self.admission_reason(order, ignore)
            if risk is not None:
                risk.record(now)  # it went to the venue (whose buying-power check may refuse it)
        ref = self.last_prices.get(order.symbol)
        if ref is None:
            ref = order.limit_price or order.stop_price or 0.0
        order.eligible_after = now
        if order.type is OrderType.TRAILING_STOP:
            order.trail_ref = ref if ref > 0.0 else None
        self.book.register(order)
        if reason is None:
            self.book.set_status(order, OrderStatus.ACCEPTED, now)
        else:
            self.book.set_status(order, OrderStatus.REJECTED, now, reason=reason)
        self.listener.on_order_update(order)
        return reason is None

    # -- simulated time ------------------------------------------------------------------------

    def process_bar(
        self, symbol: str, ts: int, o: float, h: float, lo: float, c: float, v: float
    ) -> None:
        """Match the open orders of ``symbol`` against one bar. Call before marking the bar."""
        orders = self.book.open.get(symbol)
        if not orders:
            return
        book = self.book
        listener = self.listener
        day = ts // _NS_PER_DAY
        capacity = math.inf
        if self.participation_rate is not None:
            capacity = self.participation_rate * v
            if not self.fractional:
                capacity = float(math.floor(capacity + _EPS))
        for order in orders[:]:  # callbacks may submit or cancel orders while we iterate
            if not order.is_open or ts <= order.eligible_after:
                continue
            tif = order.tif
            if tif is TimeInForce.DAY:
                if order.session_day < 0:
                    order.session_day = day
                elif day > order.session_day:
                    book.set_status(order, OrderStatus.EXPIRED, ts)
                    listener.on_order_update(order)
                    continue
            price = match(order, o, h, lo, c)
            qty = 0.0
            if price is not None:
                qty = min(order.remaining_qty, capacity)
                if tif is TimeInForce.FOK and qty < order.remaining_qty - _EPS:
                    qty = 0.0
            if qty > 0.0 and price is not None:
                capacity -= qty
                self._fill(order, qty, price, h, lo, ts)
            if (tif is TimeInForce.IOC or tif is TimeInForce.FOK) and order.is_open:
                book.set_status(order, OrderStatus.CANCELED, ts)
                listener.on_order_update(order)

    def _fill(self, order: Order, qty: float, price: float, h: float, lo: float, ts: int) -> None:
        side = order.side
        if order.type is not OrderType.LIMIT and order.type is not OrderType.STOP_LIMIT:
            # slippage applies to orders that take liquidity at any price; it cannot push the fill
            # outside the bar's range, and limit orders never fill worse than their limit.
            price = self.slippage.apply(price, qty, side)
            price = min(price, h) if side is OrderSide.BUY else max(price, lo)
        fee = self.commission.compute(order, qty, price)
        self.book.record_fill(order, qty, price, fee, ts)
        self.portfolio.apply_fill(order.symbol, side, qty, price, fee, ts)
        self._exec_seq += 1
        fill = Fill(order.id, order.symbol, side, qty, price, fee, ts, f"E{self._exec_seq:06d}")
        self.fills.append(fill)
        self.listener.on_fill(fill)
        self.listener.on_order_update(order)

    def on_bar(
        self, symbol: str, ts: int, o: float, h: float, lo: float, c: float, v: float
    ) -> None:
        """Everything a venue does with one bar: match open orders, then mark to the close.

        The synchronous engine inlines these steps in its bar loop; brokers and servers call this.
        """
        if self.book.open.get(symbol):
            self.process_bar(symbol, ts, o, h, lo, c, v)
        self.portfolio.mark(symbol, c)
        self.last_prices[symbol] = c

    def expire_all(self, ts: int) -> None:
        """End of data: DAY orders expire; GTC orders stay open (they are reported as such)."""
        for order in self.book.open_orders():
            if order.tif is TimeInForce.DAY:
                self.book.set_status(order, OrderStatus.EXPIRED, ts)
                self.listener.on_order_update(order)

    # -- reading -------------------------------------------------------------------------------

    @property
    def orders(self) -> list[Order]:
        return list(self.book.orders.values())

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self.book.open_orders(symbol)

    def get_order(self, order_id: str) -> Order:
        return self.book.get(order_id)
