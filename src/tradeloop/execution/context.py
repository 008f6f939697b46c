"""The strategy context both engines use: the account, the orders, the bar history.

A :class:`~tradeloop.strategy.Context` is the strategy's whole view of the market. The two engines
differ only in what their order manager does with a request (a call into the simulated exchange,
or a request queued for a broker on the event loop), so the context is written once, here.
"""

from __future__ import annotations

import math
from array import array
from typing import Any, Protocol, Unpack

from tradeloop.data.feed import BarFeed, ChunkSource
from tradeloop.data.history import ArrayHistoryView, HistoryView
from tradeloop.errors import ConfigError, InvalidOrderError
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
_FIELD_INDEX = {f: i for i, f in enumerate(HISTORY_FIELDS)}


class RowIndex(Protocol):
    """Where :class:`BaseContext` finds the row of a symbol's latest bar (``None``: no bar yet). A
    dict does; the synchronous engine's chunked loop reads it off each symbol's reused bar."""

    def get(self, symbol: str, /) -> int | None: ...

    def __setitem__(self, symbol: str, row: int, /) -> None: ...


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

    ``feed`` holds the bar history (a backtest's feed or dataset, or a growing one live).
    ``_cols`` maps a symbol to the lists :meth:`history` reads (``open``, ``high``, ``low``,
    ``close``, ``volume``: the synchronous engine's window of the recent bars; without an entry,
    the feed's own columns), ``_rows`` the row of each symbol's latest bar in them, so
    :meth:`history` never sees a future bar, and ``_base`` the row in the whole feed of the
    window's first one. ``max_history`` bounds ``length`` (a streamed dataset keeps only that
    many bars: the strategy's declared ``lookback``).
    """

    __slots__ = (
        "_base",
        "_book",
        "_cols",
        "_feed",
        "_lists",
        "_manager",
        "_portfolio",
        "_rows",
        "max_history",
        "now",
    )

    def __init__(self, feed: ChunkSource, manager: OrderRouter) -> None:
        self._feed = feed
        self._manager = manager
        self._book = manager.book
        self._portfolio = manager.portfolio
        self._rows: RowIndex = {}  # symbol -> row index of its latest bar
        self._cols: dict[str, tuple[array[float], ...]] = {}
        self._lists: dict[str, list[list[float] | None]] = {}  # _cols as lists, made on demand
        self._base: dict[str, int] = {}
        self.max_history = 1 << 62  # unbounded: the whole feed is in memory
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

    # -- targets -------------------------------------------------------------------------------

    def order_target_qty(self, symbol: str, target: float, **kwargs: Any) -> Order | None:
        """Order what takes ``symbol``'s position to ``target`` shares (negative: short).

        Open orders on the symbol count as if they fill, so calling it again on the next bar
        does not order twice. Returns the order, or ``None`` if nothing is missing. ``kwargs``
        are :meth:`submit_order`'s (a limit price, say)."""
        target = _finite("target", target)
        pending = sum(o.side.sign * o.remaining_qty for o in self._book.open_orders(symbol))
        delta = target - self._portfolio.qty(symbol) - pending
        if abs(delta) < 1e-9:
            return None
        side = OrderSide.BUY if delta > 0 else OrderSide.SELL
        return self.submit_order(symbol, side, abs(delta), **kwargs)

    def order_target_value(
        self, symbol: str, value: float, *, price: float | None = None, **kwargs: Any
    ) -> Order | None:
        """Order what makes ``symbol``'s position worth ``value`` (negative: short) at ``price``
        (default: its latest close). Whole shares unless the account trades fractions."""
        value = _finite("value", value)
        px = price if price is not None else self._last_close(symbol)
        if isinstance(px, bool) or not (
            isinstance(px, int | float) and math.isfinite(px) and px > 0
        ):
            raise InvalidOrderError("price", px, f"must be a finite price > 0 for {symbol!r}")
        qty = value / px
        if not self._book.validator.fractional:
            qty = float(math.trunc(qty))  # toward zero: never more than asked
        return self.order_target_qty(symbol, qty, **kwargs)

    def order_target_percent(
        self, symbol: str, percent: float, *, price: float | None = None, **kwargs: Any
    ) -> Order | None:
        """Order what makes ``symbol``'s position ``percent`` of equity (``0.25`` = 25%)."""
        percent = _finite("percent", percent)
        return self.order_target_value(symbol, self.equity * percent, price=price, **kwargs)

    def _last_close(self, symbol: str) -> float:
        row = self._rows.get(symbol)
        if row is None:
            raise InvalidOrderError(
                "symbol", symbol, "has no bar yet: pass price= to size the order"
            )
        cols = self._cols.get(symbol)
        if cols is not None:
            return cols[3][row]
        feed = self._feed
        assert isinstance(feed, BarFeed)
        close: float = feed.series[symbol].close[row]
        return close

    # -- history -------------------------------------------------------------------------------

    def history(self, symbol: str, length: int, field: str = "close") -> HistoryView:
        fi = _FIELD_INDEX.get(field)
        if fi is None:
            raise ConfigError("field", field, f"must be one of: {', '.join(HISTORY_FIELDS)}")
        if length < 1:
            raise ConfigError("length", length, "must be >= 1")
        if length > self.max_history:
            raise ConfigError(
                "lookback",
                length,
                f"history({symbol!r}, {length}) asks for more bars than the strategy's lookback "
                f"keeps ({self.max_history}): set `lookback = {length}` on the strategy class "
                "(or the engine's lookback=)",
            )
        row = self._rows.get(symbol)
        cols = self._cols.get(symbol)
        feed = self._feed
        if cols is None:
            series = feed.series.get(symbol) if isinstance(feed, BarFeed) else None
            if row is None or series is None:
                if series is None and symbol not in feed.symbols:
                    raise ConfigError("symbol", symbol, "not in the feed")
                return HistoryView([], 0, 0)
            col: Any = getattr(series, field)
            if not isinstance(col, list):  # a feed's numpy column (no engine window yet)
                return ArrayHistoryView(col.values, max(0, row + 1 - length), row + 1)
            return HistoryView(col, max(0, row + 1 - length), row + 1)
        if row is None:
            return HistoryView([], 0, 0)
        lists = self._lists[symbol]
        values = lists[fi]
        if values is None:
            values = lists[fi] = cols[fi].tolist()
        start = row + 1 - length
        if start >= 0:
            return HistoryView(values, start, row + 1)
        base = self._base.get(symbol, 0)
        if base > 0 and isinstance(feed, BarFeed):  # older bars are outside the window
            g = base + row
            full = getattr(feed.series[symbol], field).values
            return ArrayHistoryView(full, max(0, g + 1 - length), g + 1)
        return HistoryView(values, 0, row + 1)


def _finite(name: str, value: object) -> float:
    """``value`` as a float, or :class:`InvalidOrderError` naming ``name`` if it is not a finite
    number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidOrderError(name, value, "must be a finite number")
    return float(value)
