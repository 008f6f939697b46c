"""The strategy API, shared by the synchronous (backtest) and asynchronous (live) engines.

A strategy is a class with six callbacks. It talks to the market only through the
:class:`Context` it is handed, whose methods are plain (non-async) calls in both engines:
``submit_order`` returns an :class:`~tradeloop.execution.types.Order` handle at once, and fills and
status changes arrive later as ``on_fill`` / ``on_order_update`` events. In a backtest they arrive
on the next bar; live, when the broker reports them. Code written this way runs unchanged on both.

Parameters are declared as annotated class attributes with defaults::

    class SmaCross(Strategy):
        fast: int = 10
        slow: int = 30

``SmaCross(fast=5)`` overrides one; an unknown name or a value of the wrong type raises
:class:`~tradeloop.errors.ConfigError` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, Unpack, get_type_hints

from tradeloop.data.history import HistoryView
from tradeloop.errors import ConfigError
from tradeloop.execution.types import (
    Bar,
    Fill,
    Order,
    OrderParams,
    OrderSide,
    OrderType,
    Position,
    TimeInForce,
)

__all__ = ["Context", "Strategy"]


class Context(Protocol):
    """What a strategy can see and do. Implemented by each engine."""

    @property
    def now(self) -> int:
        """Current time, int nanoseconds since the epoch (UTC)."""
        ...

    @property
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def cash(self) -> float: ...

    @property
    def equity(self) -> float: ...

    @property
    def buying_power(self) -> float: ...

    def position(self, symbol: str) -> Position: ...

    def positions(self) -> dict[str, Position]:
        """Open (non-flat) positions by symbol."""
        ...

    def open_orders(self, symbol: str | None = None) -> list[Order]: ...

    def get_order(self, order_id: str) -> Order: ...

    def history(self, symbol: str, length: int, field: str = "close") -> HistoryView:
        """The last ``length`` values (oldest first) of a bar field, up to and including now:
        a :class:`~tradeloop.data.history.HistoryView`, made in O(1) whatever ``length`` is,
        indexed like a list (``[-1]`` is the latest). Keep it no longer than the callback."""
        ...

    def submit_order(
        self,
        symbol: str,
        side: OrderSide | str,
        qty: float,
        type: OrderType | str = OrderType.MARKET,
        **params: Unpack[OrderParams],
    ) -> Order:
        """Place an order; returns its handle at once. ``params``: ``tif`` (default ``gtc``),
        ``limit_price``, ``stop_price``, ``trail_price``, ``trail_percent``, ``client_order_id``,
        ``tag``, and ``order_class`` (``bracket``, ``oco``, ``oto``) with ``take_profit`` /
        ``stop_loss`` (see :class:`~tradeloop.execution.types.OrderParams`).

        The synchronous engine answers at once (``accepted`` or ``rejected``); the asynchronous
        one returns the order ``new`` and the broker's answer arrives as an order update."""
        ...

    def buy(self, symbol: str, qty: float, **kwargs: Any) -> Order: ...

    def sell(self, symbol: str, qty: float, **kwargs: Any) -> Order: ...

    def cancel(self, order: Order | str) -> bool:
        """Cancel an open order; ``False`` if it had already reached a terminal state."""
        ...

    def replace(
        self,
        order: Order | str,
        *,
        qty: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_price: float | None = None,
        trail_percent: float | None = None,
        tif: TimeInForce | str | None = None,
    ) -> Order: ...

    def close_position(self, symbol: str, **kwargs: Any) -> Order | None: ...

    def order_target_qty(self, symbol: str, target: float, **kwargs: Any) -> Order | None:
        """Order what takes the position to ``target`` shares (open orders counted as filled)."""
        ...

    def order_target_value(
        self, symbol: str, value: float, *, price: float | None = None, **kwargs: Any
    ) -> Order | None:
        """Order what makes the position worth ``value`` (at ``price``, default the last close)."""
        ...

    def order_target_percent(
        self, symbol: str, percent: float, *, price: float | None = None, **kwargs: Any
    ) -> Order | None:
        """Order what makes the position ``percent`` of equity (``0.25`` = 25%)."""
        ...


_PARAM_TYPES = (int, float, str, bool)


class Strategy:
    """Base class for strategies. Override the callbacks you need; all default to doing nothing."""

    _param_defaults: ClassVar[dict[str, Any]] = {}
    _param_types: ClassVar[dict[str, type]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        defaults: dict[str, Any] = {}
        types: dict[str, type] = {}
        for klass in reversed(cls.__mro__):
            if klass is object or klass is Strategy:
                continue
            hints = get_type_hints(klass) if "__annotations__" in klass.__dict__ else {}
            for name, hint in hints.items():
                if name.startswith("_") or getattr(hint, "__origin__", None) is ClassVar:
                    continue
                if name in klass.__dict__:
                    defaults[name] = klass.__dict__[name]
                    if hint in _PARAM_TYPES:
                        types[name] = hint
        cls._param_defaults = defaults
        cls._param_types = types

    def __init__(self, **params: Any) -> None:
        known = type(self)._param_defaults
        for name, value in params.items():
            if name not in known:
                allowed = ", ".join(sorted(known)) or "none"
                raise ConfigError(
                    f"strategy.params.{name}", value, f"unknown parameter (known: {allowed})"
                )
            setattr(self, name, self._coerce(name, value))

    @classmethod
    def _coerce(cls, name: str, value: Any) -> Any:
        want = cls._param_types.get(name)
        if want is None:
            return value
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
            raise ConfigError(f"strategy.params.{name}", value, f"must be of type {want.__name__}")
        return value

    @property
    def params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in type(self)._param_defaults}

    @property
    def name(self) -> str:
        return type(self).__name__

    def on_start(self, ctx: Context) -> None:
        """Called once before the first bar."""

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        """Called for every bar of every symbol, after orders have been matched against it."""

    def on_bars(self, ctx: Context, bars: Mapping[str, Bar]) -> None:
        """Called once per timestamp with every symbol's bar of that time (``bars[symbol]``),
        after each has been matched, marked and passed to ``on_bar``: a consistent
        cross-section for pairs and ranking strategies. A symbol without a bar at that time is
        absent (its last close is ``ctx.history(symbol, 1)``). Not overriding it costs nothing.

        On a bar stream (paper, live) a timestamp's cross-section is complete when every symbol
        has sent its bar, when a later bar arrives, when the stream ends, or, on the
        asynchronous engine, ``cross_section_timeout`` seconds after its first bar; a bar that
        arrives after its timestamp was delivered reaches ``on_bar`` only."""

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        """Called for every (partial) fill of one of this strategy's orders."""

    def on_order_update(self, ctx: Context, order: Order) -> None:
        """Called when an order changes status (accepted, filled, canceled, expired, ...).

        ``order`` is a snapshot of the order as this update left it, so two updates delivered
        together each show their own status; the live order is ``ctx.get_order(order.id)`` (and
        the handle ``submit_order`` returned). Compare orders by ``id``."""

    def on_stop(self, ctx: Context) -> None:
        """Called once after the last bar."""
