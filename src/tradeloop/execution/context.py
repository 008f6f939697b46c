"""The strategy context both engines use: the account, the orders, the bar history.

A :class:`~tradeloop.strategy.Context` is the strategy's whole view of the market. The two engines
differ only in what their order manager does with a request (a call into the simulated exchange,
or a request queued for a broker on the event loop), so the context is written once, here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, Unpack

from tradeloop.data.feed import BarFeed
from tradeloop.errors import ConfigError
from tradeloop.execution.core.book import OrderBook
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.types import (
    Order,
    OrderParams,
    OrderSide,
    OrderType,
    Position,
)

__all__ = ["HISTORY_FIELDS", "BaseContext", "OrderRouter"]

HISTORY_FIELDS = ("open", "high", "low", "close", "volume")


class OrderRouter(Protocol):
    """Where a context sends requests: an engine's order manager (both engines have one)."""

    @property
    def book(self) -> OrderBook: ...

    @property
    def portfolio(self) -> Portfolio: ...

    def submit(
        self,
        symbol: str,
        side: OrderSide | str,
        qty: float,
        type: OrderType | str = OrderType.MARKET,
        *,
        now: int,
        **params: Unpack[OrderParams],
    ) -> Order: ...

    def cancel(self, order: Order | str, now: int) -> bool: ...

    def replace(self, order: Order | str, now: int, **changes: Any) -> Order: ...


class BaseContext:
    """A strategy context: reads the account, the orders and the bar history, and hands order
    requests to the engine's order manager, stamped with the engine's clock.

    ``feed`` holds the bar history (a backtest's whole feed, or a growing one live) and ``rows``
    the row of each symbol's latest bar, so :meth:`history` never sees a future bar.
    """

    __slots__ = ("_book", "_feed", "_manager", "_portfolio", "_rows", "now")

    def __init__(self, feed: BarFeed, manager: OrderRouter) -> None:
        self._feed = feed
        self._manager = manager
        self._book = manager.book
        self._portfolio = manager.portfolio
        self._rows: dict[str, int] = {}  # symbol -> row index of its latest bar
        self.now = 0

    # -- the account ---------------------------------------------------------------------------

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._feed.symbols

    @property
    def cash(self) -> float:
        return self._portfolio.cash

    @property
    def equity(self) -> float:
        pf = self._portfolio
        return pf.cash + pf.market_value

    @property
    def buying_power(self) -> float:
        return self._portfolio.buying_power

    def position(self, symbol: str) -> Position:
        return self._portfolio.position(symbol)

    def positions(self) -> dict[str, Position]:
        return {s: p for s, p in self._portfolio.positions.items() if p.qty != 0.0}

    # -- orders --------------------------------------------------------------------------------

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self._book.open_orders(symbol)

    def get_order(self, order_id: str) -> Order:
        return self._book.get(order_id)

    def submit_order(
        self,
        symbol: str,
        side: OrderSide | str,
        qty: float,
        type: OrderType | str = OrderType.MARKET,
        **params: Unpack[OrderParams],
    ) -> Order:
        return self._manager.submit(symbol, side, qty, type, now=self.now, **params)

    def cancel(self, order: Order | str) -> bool:
        """Cancel ``order`` (or, if it was replaced, its newest replacement)."""
        return self._manager.cancel(order, self.now)

    def replace(self, order: Order | str, **changes: Any) -> Order:
        """Replace ``order`` (or, if it was replaced, its newest replacement)."""
        return self._manager.replace(order, self.now, **changes)

    def buy(self, symbol: str, qty: float, **kwargs: Any) -> Order:
        return self.submit_order(symbol, OrderSide.BUY, qty, **kwargs)

    def sell(self, symbol: str, qty: float, **kwargs: Any) -> Order:
        return self.submit_order(symbol, OrderSide.SELL, qty, **kwargs)

    def close_position(self, symbol: str, **kwargs: Any) -> Order | None:
        """Submit an order that flattens ``symbol`` (market unless ``type=`` says otherwise)."""
        qty = self._portfolio.qty(symbol)
        if qty == 0.0:
            return None
        side = OrderSide.SELL if qty > 0 else OrderSide.BUY
        return self.submit_order(symbol, side, abs(qty), **kwargs)

    # -- history -------------------------------------------------------------------------------

    def history(self, symbol: str, length: int, field: str = "close") -> Sequence[float]:
        if field not in HISTORY_FIELDS:
            raise ConfigError("field", field, f"must be one of: {', '.join(HISTORY_FIELDS)}")
        if length < 1:
            raise ConfigError("length", length, "must be >= 1")
        if symbol not in self._feed.series:
            raise ConfigError("symbol", symbol, "not in the feed")
        row = self._rows.get(symbol)
        if row is None:
            return []
        col: list[float] = getattr(self._feed.series[symbol], field)
        return col[max(0, row + 1 - length) : row + 1]
