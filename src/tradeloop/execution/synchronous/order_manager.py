"""SyncOrderManager: orders, simulated matching and accounting for the backtest, by plain calls.

It is the pure core's :class:`~tradeloop.execution.core.exchange.SimulatedExchange` under the name
the synchronous engine has always used: in a backtest the engine's order manager and the venue
are one and the same object.
"""

from __future__ import annotations

from typing import Any

from tradeloop.execution.core.exchange import SimulatedExchange
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.types import Order

__all__ = ["SyncOrderManager"]


class SyncOrderManager(SimulatedExchange):
    """The synchronous engine's order manager: a :class:`SimulatedExchange` fed bar by bar.

    One thing a strategy's manager does that a venue does not: a cancel or replace of an order
    that was replaced acts on its newest replacement, so a handle kept across a replace works.

    Its fills and done orders are kept in compact logs (a backtest's orders never change once
    they have ended), spilled to Parquet past ``spill_rows`` rows in ``spill_dir`` (defaults:
    :func:`~tradeloop.results.log.default_spill_rows`).
    """

    __slots__ = ()

    def __init__(
        self,
        portfolio: Portfolio,
        *,
        spill_rows: int | None = None,
        spill_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        from tradeloop.results.log import FillLog, OrderLog

        super().__init__(portfolio, **kwargs)
        prefix = self.book.id_prefix
        fills = FillLog(spill_rows, spill_dir, order_prefix=prefix)
        self.fills = fills
        log = OrderLog(spill_rows, spill_dir, id_prefix=prefix)
        log.ids = fills.order_ids  # one id table (a fill's order id is the order's)
        self.book.keep_log(log)

    def cancel(self, order: Order | str, now: int) -> bool:
        return super().cancel(self.book.current(order), now)

    def replace(self, order: Order | str, now: int, **changes: Any) -> Order:
        return super().replace(self.book.current(order), now, **changes)
