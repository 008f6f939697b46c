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
  (whole units unless ``fractional``); the rest stays open for later bars;
* a trailing stop trails from the price at its placement: its symbol's close at that timestamp
  (a bar of the same timestamp that arrives after the order was placed, e.g. when another
  symbol's ``on_bar`` placed it, sets its reference; it is never matched against that bar).

Order classes (``bracket``, ``oto``, ``oco``), with Alpaca's semantics:

* a bracket's or oto's exit legs are ``held`` until the entry's first fill; they are then
  ``accepted``, may trade from the next bar on, and are sized to what the entry has filled
  (later fills of the entry grow them); an oco's two orders are active at once;
* linked exits share one quantity: a fill of one reduces the others, and once that quantity
  is exited the others are canceled (and a bracket's entry still open is canceled with them:
  the trade is over). When one bar reaches two linked exits, the one its path reaches first
  trades first;
* an exit never trades more than the position it closes (it never flips the position); when
  that position is gone, its open exits are canceled. Exits reserve no buying power;
* canceling an entry cancels its legs; canceling an exit cancels the linked ones; an entry
  rejected, or canceled or expired before any fill, takes its held legs with it. An oco may
  only close a position (an oco larger than the position it closes is rejected).

Buying power is checked when an order is placed, against its limit or stop price, else its
symbol's last price. An order that has none of these (a market order or a trailing stop on a
symbol that has had no bar yet) is checked at its first fill instead, against that fill's price
(before slippage): if the account cannot afford it then, or may not short it, it ends
``rejected`` with the reason, and nothing of it fills.

With a :class:`~tradeloop.execution.core.risk.RiskManager` (``risk``; the synchronous engine's, a
venue has none), every submission and replacement is risk-checked first: a refused order is
registered ``rejected`` with the risk reason, exactly like an order the account cannot afford.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Unpack

from tradeloop.errors import InvalidOrderError
from tradeloop.execution.core.book import OrderBook
from tradeloop.execution.core.costs import NoCommission, NoSlippage
from tradeloop.execution.core.matching import match, touch_point
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.core.reservations import Reservations
from tradeloop.execution.core.risk import RiskManager, risk_reason
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.sync_protocols import CommissionModel, ExecutionListener, SlippageModel
from tradeloop.execution.types import (
    Fill,
    Order,
    OrderClass,
    OrderParams,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)

if TYPE_CHECKING:
    from tradeloop.results.log import FillLog

__all__ = ["SimulatedExchange"]

_NS_PER_DAY = 86_400_000_000_000
_EPS = 1e-9
# enum members as module constants (an ``OrderClass.X`` lookup is slow on Python 3.11)
_SIMPLE = OrderClass.SIMPLE
_OCO = OrderClass.OCO


class _NullListener:
    def on_fill(self, fill: Fill) -> None:
        pass

    def on_order_update(self, order: Order) -> None:
        pass


class SimulatedExchange:
    """See the module docstring.

    ``fills`` is a list here; the backtest's order manager, a shell with storage, swaps in a
    compact :class:`~tradeloop.results.log.FillLog` and gives the book an
    :class:`~tradeloop.results.log.OrderLog` for its done orders (the core does no I/O: those
    spill to Parquet). A venue keeps its orders live and its fills in the list.
    """

    __slots__ = (
        "_exec_seq",
        "_unpriced",
        "book",
        "commission",
        "fills",
        "fractional",
        "last_prices",
        "listener",
        "participation_rate",
        "portfolio",
        "reservations",
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
        self.fills: list[Fill] | FillLog = []
        self.commission: CommissionModel = commission if commission is not None else NoCommission()
        self.slippage: SlippageModel = slippage if slippage is not None else NoSlippage()
        self.participation_rate = participation_rate
        self.fractional = fractional
        self.listener: ExecutionListener = listener if listener is not None else _NullListener()
        self.risk = risk
        self.last_prices: dict[str, float] = {}
        # what open orders reserve, kept per symbol: a submission costs O(1) in the number of
        # symbols and open orders (process_bar tells it which prices moved)
        self.reservations = Reservations(self.book, portfolio, self.last_prices)
        self._exec_seq = 0
        self._unpriced: set[str] = set()  # ids of orders admitted with no price to check

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
        if o.order_class is not _SIMPLE:
            # an exit takes the exits linked to it; an entry its legs, unless it has filled in
            # part: then they stay, protecting the shares that did fill
            if o.is_exit_leg:
                self._end_all(self.book.exit_group(o), now)
            elif o.filled_qty <= 0.0:
                self._end_all(o.legs, now)
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
        if order.order_class is _OCO:
            held = self.portfolio.qty(order.symbol)
            closable = max(held, 0.0) if order.side is OrderSide.SELL else max(-held, 0.0)
            taken = self.book.held_by_exits(order.symbol, order.side, ignore)
            if order.qty > closable - taken + _EPS:
                other = f", {taken:g} of it held by other exits" if taken > _EPS else ""
                return (
                    f"oco orders only close a position: qty={order.qty:g} {order.symbol}, "
                    f"the position it closes is {closable:g}{other}"
                )
        prices: Mapping[str, float] = self.last_prices
        if fallback_prices:
            prices = {**fallback_prices, **self.last_prices}
        ref = self.last_prices.get(order.symbol)
        if ref is None:
            ref = order.limit_price or order.stop_price or prices.get(order.symbol, 0.0)
        if ref <= 0.0:
            return None
        if fallback_prices:  # prices of its own: the full count (a venue's, not a backtest's)
            pending_by, open_orders = self.book.commitments(ignore=ignore)
            reserved = self.portfolio.committed(open_orders, prices)
            pending = pending_by.get(order.symbol, 0.0)
        else:
            pending = self.book.commitments_of(order.symbol, ignore)[0]
            reserved = self.reservations.reserved(ignore)
        fee = self.commission.compute(order, order.qty, self.portfolio.estimate_price(order, ref))
        return self.portfolio.reject_reason(order, ref, reserved, pending, fee)

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
        if ref <= 0.0 and reason is None:
            self._unpriced.add(order.id)  # checked at its first fill (see _refused_at_fill)
        book = self.book
        book.register(order)
        legs = order.legs
        listener = self.listener
        if reason is None:
            book.set_status(order, OrderStatus.ACCEPTED, now)
            oco = order.order_class is _OCO
            if legs and not oco:
                for leg in legs:  # they wait for the entry's fill
                    book.set_status(leg, OrderStatus.HELD, now)
            listener.on_order_update(order)
            if legs and oco:
                for leg in legs:  # an oco's stop works at once, as the order itself
                    leg.eligible_after = now
                    book.set_status(leg, OrderStatus.ACCEPTED, now)
                    listener.on_order_update(leg)
        else:
            book.set_status(order, OrderStatus.REJECTED, now, reason=reason)
            listener.on_order_update(order)
            for leg in legs:  # the order's legs go with it
                book.set_status(leg, OrderStatus.REJECTED, now, reason=reason)
                listener.on_order_update(leg)
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
        linked: set[str] | None = None  # exits matched with the others of their group
        for order in orders[:]:  # callbacks may submit or cancel orders while we iterate
            if not order.is_open:
                continue
            if ts <= order.eligible_after:
                if ts == order.eligible_after and order.type is OrderType.TRAILING_STOP:
                    # this symbol's bar of the timestamp the order was placed at (it was placed
                    # from another symbol's bar): it trails from this price, not an older one
                    order.trail_ref = c
                continue
            tif = order.tif
            if tif is TimeInForce.DAY:
                if order.session_day < 0:
                    order.session_day = day
                elif day > order.session_day:
                    book.set_status(order, OrderStatus.EXPIRED, ts)
                    listener.on_order_update(order)
                    if order.legs and not order.is_exit_leg and order.filled_qty <= 0.0:
                        self._end_all(order.legs, ts, OrderStatus.EXPIRED)
                    continue
            if order.order_class is not _SIMPLE and order.is_exit_leg:
                if linked is None:
                    linked = set()
                elif order.id in linked:
                    continue
                capacity = self._match_exits(order, linked, ts, day, o, h, lo, c, capacity)
                continue
            price = match(order, o, h, lo, c)
            qty = 0.0
            if price is not None:
                qty = min(order.remaining_qty, capacity)
                if tif is TimeInForce.FOK and qty < order.remaining_qty - _EPS:
                    qty = 0.0
            if qty > 0.0 and price is not None:
                if order.id in self._unpriced and self._refused_at_fill(order, price, ts):
                    continue
                capacity -= qty
                self._fill(order, qty, price, h, lo, ts)
            if (tif is TimeInForce.IOC or tif is TimeInForce.FOK) and order.is_open:
                book.set_status(order, OrderStatus.CANCELED, ts)
                listener.on_order_update(order)
        # the symbol's price moves to this bar's close once it is matched (after any callback
        # made here): what its open orders reserve must be looked at again
        self.reservations.touch(symbol)

    def _refused_at_fill(self, order: Order, price: float, ts: int) -> bool:
        """An order admitted with no price to check it against (a market order or trailing stop
        on a symbol without a bar yet) is checked once, at its first fill, against that fill's
        price: if the account cannot afford it (or may not short it), it ends ``rejected`` with
        the reason, its legs with it, and nothing of it fills. ``True`` if it was refused."""
        self._unpriced.discard(order.id)
        pending = self.book.commitments_of(order.symbol, order)[0]
        reserved = self.reservations.reserved(order)
        fee = self.commission.compute(order, order.qty, price)
        reason = self.portfolio.reject_reason(order, price, reserved, pending, fee)
        if reason is None:
            return False
        reason += f" at its first fill, {price:g} ({order.symbol} had no price when it was placed)"
        for m in (order, *order.legs):
            if m.is_open:
                self.book.set_status(m, OrderStatus.REJECTED, ts, reason=reason)
                self.listener.on_order_update(m)
        return True

    def _closable(self, order: Order) -> float:
        """How much of its symbol's position ``order`` (an exit) can close."""
        held = self.portfolio.qty(order.symbol)
        return max(held, 0.0) if order.side is OrderSide.SELL else max(-held, 0.0)

    def _match_exits(
        self,
        first: Order,
        linked: set[str],
        ts: int,
        day: int,
        o: float,
        h: float,
        lo: float,
        c: float,
        capacity: float,
    ) -> float:
        """Match ``first`` and the open exits linked to it against one bar, in the order the
        bar's path reaches them; returns the capacity left. (Linked exits share their time in
        force and session: what ``process_bar`` decided about ``first`` holds for all.)"""
        group = [
            m
            for m in self.book.exit_group(first)
            if m.is_open and m.status is not OrderStatus.HELD and ts > m.eligible_after
        ]
        hits: list[tuple[float, int, Order, float]] = []
        for i, m in enumerate(group):
            linked.add(m.id)
            if m.tif is TimeInForce.DAY and m.session_day < 0:
                m.session_day = day
            triggered = m.triggered  # a stop-limit triggered on an earlier bar is a limit now
            price = match(m, o, h, lo, c)
            if price is not None:
                hits.append((touch_point(m, price, o, h, lo, c, triggered), i, m, price))
        hits.sort(key=lambda hit: (hit[0], hit[1]))
        for _, _, m, price in hits:
            if not m.is_open:
                continue  # ended by an exit that traded before it
            closable = self._closable(m)
            if closable <= _EPS:
                self._end_all(self.book.exit_group(m), ts)  # the position is gone
                break
            qty = min(m.remaining_qty, capacity, closable)
            if qty > 0.0:
                capacity -= qty
                self._fill(m, qty, price, h, lo, ts)
        return capacity

    def _end_all(
        self,
        orders: tuple[Order, ...],
        ts: int,
        status: OrderStatus = OrderStatus.CANCELED,
    ) -> None:
        """End the open ``orders`` (a group's legs) with ``status``, reporting each."""
        for m in orders:
            if m.is_open:
                self.book.set_status(m, status, ts)
                self.listener.on_order_update(m)

    def _after_linked_fill(self, order: Order, ts: int) -> None:
        """A fill of an entry with legs, or of a linked exit: activate, resize or end the
        linked orders (see the module docstring)."""
        book = self.book
        if not order.is_exit_leg:  # an entry: its legs follow what it has filled
            rest = book.resize_exits(order)
            for leg in order.legs:
                if leg.status is OrderStatus.HELD:
                    leg.qty = rest
                    leg.eligible_after = ts  # from the next bar on
                    book.set_status(leg, OrderStatus.ACCEPTED, ts)
                    self.listener.on_order_update(leg)
            return
        rest = book.resize_exits(order)
        if rest <= _EPS or self._closable(order) <= _EPS:
            self._end_all(book.exit_group(order), ts)
            parent = book.parent_of(order)
            if rest <= _EPS and parent is not None and not parent.is_exit_leg:
                self._end_all((parent,), ts)  # the bracket's trade is over

    def _fill(self, order: Order, qty: float, price: float, h: float, lo: float, ts: int) -> None:
        side = order.side
        if order.type is not OrderType.LIMIT and order.type is not OrderType.STOP_LIMIT:
            # slippage applies to orders that take liquidity at any price; it cannot push the fill
            # outside the bar's range, and limit orders never fill worse than their limit.
            price = self.slippage.apply(price, qty, side)
            price = min(price, h) if side is OrderSide.BUY else max(price, lo)
        fee = self.commission.compute(order, qty, price)
        self.book.record_fill(order, qty, price, fee, ts)
        pf = self.portfolio
        pf.apply_fill(order.symbol, side, qty, price, fee, ts)
        self._exec_seq += 1
        fill = Fill(
            order.id,
            order.symbol,
            side,
            qty,
            price,
            fee,
            ts,
            f"E{self._exec_seq:06d}",
            pf.positions[order.symbol].qty,
        )
        self.fills.append(fill)
        self.listener.on_fill(fill)
        self.listener.on_order_update(order)
        if order.order_class is not _SIMPLE:
            self._after_linked_fill(order, ts)

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
        """End of data: DAY orders expire (their session is over; held legs of an entry that
        expires unfilled with them); GTC orders stay open (they are reported as such)."""
        for order in self.book.open_orders():
            if order.is_open and order.tif is TimeInForce.DAY:
                self.book.set_status(order, OrderStatus.EXPIRED, ts)
                self.listener.on_order_update(order)
                if order.legs and not order.is_exit_leg and order.filled_qty <= 0.0:
                    self._end_all(order.legs, ts, OrderStatus.EXPIRED)

    # -- reading -------------------------------------------------------------------------------

    @property
    def orders(self) -> Sequence[Order]:
        """Every order, in registration order (done ones rebuilt from the log, if it has one)."""
        return self.book.all_orders()

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self.book.open_orders(symbol)

    def get_order(self, order_id: str) -> Order:
        return self.book.get(order_id)
