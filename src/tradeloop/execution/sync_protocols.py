"""Protocols of the synchronous (backtest) path: pluggable cost models and event listeners.

Anything with the right methods works; there is nothing to inherit from.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tradeloop.execution.types import Fill, Order, OrderSide

__all__ = ["CommissionModel", "ExecutionListener", "SlippageModel"]


@runtime_checkable
class SlippageModel(Protocol):
    def apply(self, price: float, qty: float, side: OrderSide) -> float:
        """The executed price for a raw fill at ``price`` (worse for the trader, or equal)."""
        ...


@runtime_checkable
class CommissionModel(Protocol):
    def compute(self, order: Order, qty: float, price: float) -> float:
        """Cash fee for filling ``qty`` of ``order`` at ``price``. Called before the fill is
        applied to the order, so ``order.filled_qty`` is what was filled before this fill."""
        ...


class ExecutionListener(Protocol):
    """Receives the events a SyncOrderManager produces, synchronously, as they happen."""

    def on_fill(self, fill: Fill) -> None: ...

    def on_order_update(self, order: Order) -> None: ...
