"""One exception hierarchy for tradeloop, rooted in :class:`TradeloopError`.

Every error that is about a bad value carries ``field`` and ``value`` so callers (and the CLI) can
say exactly what was wrong, e.g. ``qty=-5: must be > 0``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = [
    "BrokerConnectionError",
    "BrokerError",
    "ConfigError",
    "DataError",
    "DuplicateOrderError",
    "EngineError",
    "InsufficientFundsError",
    "InvalidOrderError",
    "InvalidTransitionError",
    "OrderNotFoundError",
    "OrderRejectedError",
    "OrderStateError",
    "StrategyError",
    "TradeloopError",
]


class TradeloopError(Exception):
    """Root of every error raised by tradeloop."""


class FieldError(TradeloopError):
    """An error about one named field holding a bad value."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={value!r}: {reason}")


class InvalidOrderError(FieldError):
    """An order request is malformed (wrong type, missing price, bad quantity, ...)."""


class InsufficientFundsError(TradeloopError):
    """Buying power does not cover an order."""


class ConfigError(FieldError):
    """A configuration value is missing or invalid."""


class DataError(FieldError):
    """Market data is malformed: missing columns, NaN, unsorted or duplicate timestamps, ..."""


class OrderStateError(TradeloopError):
    """An operation does not fit the order's current state."""


class InvalidTransitionError(OrderStateError):
    """The order state machine was asked for a transition it does not allow."""

    def __init__(self, order_id: str, current: str, target: str) -> None:
        self.order_id = order_id
        self.current = current
        self.target = target
        super().__init__(f"order {order_id}: illegal transition status={current!r} -> {target!r}")


class OrderNotFoundError(OrderStateError):
    """No order with this id is known."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"order_id={order_id!r}: no such order")


class EngineError(TradeloopError):
    """The engine was used in a way it does not support (e.g. run twice)."""


class StrategyError(TradeloopError):
    """A strategy callback raised. Names the callback, the symbol and the bar time; the
    strategy's own exception is ``__cause__`` (and :attr:`error`), its traceback cut to start at
    the callback, so it shows the strategy's frames, not the engine's.

    :attr:`result` holds the results up to the failure, marked partial (``result.partial``),
    or ``None`` if the run had not started.
    """

    def __init__(
        self,
        callback: str,
        symbol: str | None,
        ts: int | None,
        error: BaseException,
        result: Any = None,
    ) -> None:
        self.callback = callback
        self.symbol = symbol
        self.ts = ts
        self.error = error
        self.result = result
        where = f" for symbol={symbol!r}" if symbol is not None else ""
        when = f" at bar {_iso(ts)}" if ts is not None else ""
        super().__init__(
            f"strategy callback {callback}{where}{when} raised {type(error).__name__}: {error}"
        )


def _iso(ns: int) -> str:
    """``2024-01-03T14:30:00Z`` (with milli- or nanoseconds when the time has them)."""
    sec, frac = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(sec, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac % 1_000_000 == 0:
        return f"{text}.{frac // 1_000_000:03d}Z" if frac else f"{text}Z"
    return f"{text}.{frac:09d}Z"


class BrokerError(TradeloopError):
    """A broker (or the simulated one) refused or failed a request."""


class OrderRejectedError(BrokerError):
    """The venue rejected an order: the order ends ``rejected`` with :attr:`reason`.

    Raised only when the venue says so (an HTTP 403/422 with a reason, say), never for a timeout.
    """

    def __init__(self, client_order_id: str, reason: str, code: int | None = None) -> None:
        self.client_order_id = client_order_id
        self.reason = reason
        self.code = code
        super().__init__(f"client_order_id={client_order_id!r}: rejected by the venue: {reason}")


class DuplicateOrderError(BrokerError):
    """The venue already has an order with this client order id (a retried submission)."""

    def __init__(self, client_order_id: str) -> None:
        self.client_order_id = client_order_id
        super().__init__(f"client_order_id={client_order_id!r}: already used at the venue")


class BrokerConnectionError(BrokerError):
    """A request's outcome is unknown (timeout, 5xx, dropped connection): it may have happened.

    An order whose submission ends this way stays in flight; it is never assumed rejected.
    """
