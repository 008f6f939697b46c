"""The strategy context's target helpers: order_target_qty / _value / _percent, both engines."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.errors import InvalidOrderError
from tradeloop.execution.asynchronous import AsyncEngine, SimulatedBroker
from tradeloop.execution.synchronous import SyncEngine
from tradeloop.execution.types import Bar, Order, OrderSide, OrderType
from tradeloop.results.result import BacktestResult
from tradeloop.strategy import Context, Strategy

DAY = 86_400_000_000_000
T0 = 19_000 * DAY


def feed(closes: list[float], symbols: tuple[str, ...] = ("ACME",)) -> BarFeed:
    n = len(closes)
    return BarFeed(
        [
            SymbolSeries(
                s,
                [T0 + i * DAY for i in range(n)],
                list(closes),
                [c + 1 for c in closes],
                [c - 1 for c in closes],
                list(closes),
                [1e7] * n,
            )
            for s in symbols
        ]
    )


class Targets(Strategy):
    """Calls one target helper with the i-th target on bar i; records what it returned."""

    helper: str = "qty"
    targets: tuple[float, ...] = ()

    def on_start(self, ctx: Context) -> None:
        self.i = 0
        self.orders: list[tuple[str, float] | None] = []
        self.positions: list[float] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.positions.append(ctx.position(bar.symbol).qty)
        if self.i < len(self.targets):
            target = self.targets[self.i]
            fn = getattr(ctx, f"order_target_{self.helper}")
            o: Order | None = fn(bar.symbol, target)
            self.orders.append(None if o is None else (o.side.value, o.qty))
        self.i += 1


def run(engine: str, closes: list[float], **params: Any) -> tuple[Targets, BacktestResult]:
    f = feed(closes)
    s = Targets(**params)
    if engine == "sync":
        return s, SyncEngine(f, s, initial_cash=10_000.0).run()
    broker = SimulatedBroker(f, initial_cash=10_000.0)
    got = asyncio.run(asyncio.wait_for(AsyncEngine(broker, s).run(), 30))
    return s, got


@pytest.mark.parametrize("engine", ["sync", "async"])
def test_target_qty_orders_the_difference_and_can_go_short(engine: str) -> None:
    s, _ = run(engine, [10.0] * 6, targets=(5.0, 5.0, 8.0, -3.0, 0.0))
    assert s.orders == [("buy", 5.0), None, ("buy", 3.0), ("sell", 11.0), ("buy", 3.0)]
    assert s.positions == [0.0, 5.0, 5.0, 8.0, -3.0, 0.0]


@pytest.mark.parametrize("engine", ["sync", "async"])
def test_target_value_sizes_at_the_latest_close_in_whole_shares(engine: str) -> None:
    s, _ = run(engine, [40.0, 50.0, 50.0, 50.0], helper="value", targets=(1_000.0, 1_000.0, -99))
    # 1000/40 = 25; then 1000/50 = 20 (sell 5); then -99/50 = -1.98 -> -1 (toward zero)
    assert s.orders == [("buy", 25.0), ("sell", 5.0), ("sell", 21.0)]
    assert s.positions == [0.0, 25.0, 20.0, -1.0]


@pytest.mark.parametrize("engine", ["sync", "async"])
def test_target_percent_is_a_share_of_equity(engine: str) -> None:
    s, result = run(engine, [100.0] * 4, helper="percent", targets=(0.5, 0.5, 0.0))
    assert s.orders == [("buy", 50.0), None, ("sell", 50.0)]
    assert result.final_equity == pytest.approx(10_000.0)


def test_open_orders_count_as_filled_so_a_repeat_does_not_order_twice() -> None:
    class Twice(Strategy):
        def on_start(self, ctx: Context) -> None:
            self.got: list[Order | None] = []

        def on_bar(self, ctx: Context, bar: Bar) -> None:
            if not self.got:  # a resting limit that will not fill, then the same target again
                self.got.append(ctx.order_target_qty(bar.symbol, 10, type="limit", limit_price=1.0))
                self.got.append(ctx.order_target_qty(bar.symbol, 10))
                self.got.append(ctx.order_target_qty(bar.symbol, 4))

    s = Twice()
    SyncEngine(feed([10.0] * 3), s).run()
    first, again, less = s.got
    assert first is not None and first.type is OrderType.LIMIT and first.limit_price == 1.0
    assert again is None
    assert less is not None and (less.side, less.qty) == (OrderSide.SELL, 6.0)


def test_fractional_accounts_get_fractional_targets() -> None:
    s = Targets(helper="value", targets=(1_000.0,))
    SyncEngine(feed([30.0] * 3), s, fractional=True).run()
    assert s.orders[0] is not None
    assert s.orders[0][1] == pytest.approx(1_000.0 / 30.0)


@pytest.mark.parametrize(
    ("call", "field", "value"),
    [
        (lambda ctx: ctx.order_target_qty("ACME", math.nan), "target", math.nan),
        (lambda ctx: ctx.order_target_qty("ACME", "5"), "target", "5"),
        (lambda ctx: ctx.order_target_qty("ACME", True), "target", True),
        (lambda ctx: ctx.order_target_value("ACME", math.inf), "value", math.inf),
        (lambda ctx: ctx.order_target_value("ACME", 100, price=0.0), "price", 0.0),
        (lambda ctx: ctx.order_target_value("ACME", 100, price=-5), "price", -5),
        (lambda ctx: ctx.order_target_value("ACME", 100, price=math.nan), "price", math.nan),
        (lambda ctx: ctx.order_target_percent("ACME", None), "percent", None),
        (lambda ctx: ctx.order_target_value("OTHER", 100), "symbol", "OTHER"),
    ],
)
def test_bad_targets_are_refused_naming_the_field(call: Any, field: str, value: object) -> None:
    class Bad(Strategy):
        def on_start(self, ctx: Context) -> None:
            self.error: InvalidOrderError | None = None

        def on_bar(self, ctx: Context, bar: Bar) -> None:
            if self.error is None and bar.symbol == "ACME":
                with pytest.raises(InvalidOrderError) as info:
                    call(ctx)
                self.error = info.value

    s = Bad()
    # OTHER has no bar yet on ACME's first bar: its value target needs a price
    f = BarFeed(
        [
            feed([10.0, 10.0]).series["ACME"],
            SymbolSeries("OTHER", [T0 + DAY], [5.0], [6.0], [4.0], [5.0], [1e6]),
        ]
    )
    result = SyncEngine(f, s).run()
    assert s.error is not None and s.error.field == field
    assert s.error.value is value or s.error.value == value
    assert result.orders == []  # nothing half-applied
