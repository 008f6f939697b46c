"""Reservations: the buying power an account's open orders reserve, kept per symbol.

:meth:`Portfolio.committed <tradeloop.execution.core.portfolio.Portfolio.committed>` over all open
orders answers the same question in O(open orders); asked on every submission, that makes a wide
universe's backtest quadratic. An order's reservation depends only on its own symbol (the orders
open on it, the position held in it, its last price), so this keeps one figure per symbol and
their running total, and recomputes a symbol's figure only after something of its changed:

* its open orders (the book notes those symbols in :attr:`OrderBook.touched`);
* its position (the portfolio notes those in :attr:`Portfolio.touched`);
* its price: :meth:`touch`, which the exchange calls for every bar of a symbol with open orders
  (a symbol without open orders reserves nothing, whatever its price).

A submission then costs O(open orders on the symbols that changed since the previous one): each
change is paid for once, by the bar or request that made it, never by every later submission.

The total is a running sum of per-symbol changes. Its float drift from the exact sum is bounded
the way the portfolio bounds its own (an exact sum over the symbols once the updates since the
last one reach their number, O(1) amortized), and it is exactly 0.0 whenever no order reserves
anything. It is a function of the sequence of changes only: two exchanges fed the same sequence
reserve the same amount to the last bit.
"""

from __future__ import annotations

from collections.abc import Mapping

from tradeloop.execution.core.book import OrderBook
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.types import Order

__all__ = ["Reservations"]


class Reservations:
    """The buying power ``book``'s open orders reserve against ``portfolio`` at ``prices``
    (a mapping the owner keeps up to date: the exchange's last prices)."""

    __slots__ = ("_book", "_by_symbol", "_portfolio", "_prices", "_since_sum", "_stale", "total")

    def __init__(self, book: OrderBook, portfolio: Portfolio, prices: Mapping[str, float]) -> None:
        self._book = book
        self._portfolio = portfolio
        self._prices = prices
        self._by_symbol: dict[str, float] = {}
        self._stale: set[str] = set()  # symbols whose price moved
        self._since_sum = 0
        self.total = 0.0  # the sum of ``_by_symbol`` as of the last refresh
        # anything the book or portfolio already holds counts as changed
        book.touched.update(book.open)
        portfolio.touched.update(portfolio.positions)

    def touch(self, symbol: str) -> None:
        """``symbol``'s price moved (or is about to): look at its orders again."""
        self._stale.add(symbol)

    def symbol(self, symbol: str, ignore: Order | None = None) -> float:
        """What ``symbol``'s open orders (but ``ignore``) reserve now, computed afresh
        (O(open orders on ``symbol``)), as :meth:`Portfolio.committed` counts them."""
        _, orders = self._book.commitments_of(symbol, ignore)
        if not orders:
            return 0.0
        return self._portfolio.committed(orders, self._prices)

    def reserved(self, ignore: Order | None = None) -> float:
        """What all open orders (but ``ignore``, an order being replaced) reserve now."""
        self._refresh()
        if ignore is None or not ignore.is_open:
            return self.total
        sym = ignore.symbol
        return self.total - self._by_symbol.get(sym, 0.0) + self.symbol(sym, ignore)

    def _refresh(self) -> None:
        book = self._book
        pf = self._portfolio
        if not (book.touched or pf.touched or self._stale):
            return
        # sorted: the running total's rounding must not depend on string hashing (a set's order)
        changed = sorted(book.touched | pf.touched | self._stale)
        book.touched.clear()
        pf.touched.clear()
        self._stale.clear()
        by_symbol = self._by_symbol
        total = self.total
        for sym in changed:
            new = self.symbol(sym)
            old = by_symbol.pop(sym, 0.0)
            if new:
                by_symbol[sym] = new
            if new != old:
                total += new - old
                self._since_sum += 1
        if not by_symbol:
            total = 0.0
            self._since_sum = 0
        elif self._since_sum >= len(by_symbol):
            total = sum(by_symbol.values())  # bound the drift: O(symbols) every O(symbols)
            self._since_sum = 0
        self.total = total
