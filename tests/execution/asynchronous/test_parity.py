"""Parity: the asynchronous engine with the simulated broker gives exactly the backtest's results.

Same strategy, same bars, same costs: the fills (ids, quantities, prices, fees, times, execution
ids), the orders' final states, the round-trip trades, the equity curve and even the sequence of
callbacks the strategy sees must be identical, for every order type and time in force, several
symbols, partial fills, cancels and replaces, and strategies that act inside their callbacks.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.data.sample import load_sample
from tradeloop.execution.asynchronous import AsyncEngine, SimulatedBroker
from tradeloop.execution.core.costs import (
    FixedCommission,
    FixedSlippage,
    PercentSlippage,
    PerShareCommission,
)
from tradeloop.execution.synchronous import SyncEngine
from tradeloop.execution.types import Bar, Fill, Order, OrderStatus
from tradeloop.results.result import BacktestResult
from tradeloop.strategies import BuyAndHold, SmaCross
from tradeloop.strategy import Context, Strategy

HOUR = 3_600_000_000_000
T0 = 20_000 * 24 * HOUR


class Logged(Strategy):
    """Records every callback with what the strategy could see at that moment."""

    def on_start(self, ctx: Context) -> None:
        self.log: list[tuple[Any, ...]] = [("start", ctx.cash, ctx.equity)]

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.log.append(
            ("bar", bar.symbol, bar.ts, ctx.equity, ctx.cash, ctx.position(bar.symbol).qty)
        )

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        self.log.append(
            ("fill", fill.order_id, fill.qty, fill.price, fill.commission, fill.ts, ctx.equity)
        )

    def on_order_update(self, ctx: Context, order: Order) -> None:
        self.log.append(("order", order.id, order.status, order.filled_qty, order.reject_reason))

    def on_stop(self, ctx: Context) -> None:
        self.log.append(("stop", ctx.cash, ctx.equity, len(ctx.open_orders())))


def run_both(
    feed: BarFeed, make: Any, **kw: Any
) -> tuple[BacktestResult, BacktestResult, Strategy, Strategy]:
    s_sync, s_async = make(), make()
    expected = SyncEngine(feed, s_sync, **kw).run()
    broker = SimulatedBroker(feed, **kw)
    got = asyncio.run(asyncio.wait_for(AsyncEngine(broker, s_async, run_id="parity").run(), 60))
    return expected, got, s_sync, s_async


def order_view(o: Order) -> dict[str, object]:
    d = o.to_dict()
    d.pop("client_order_id")  # the async engine prefixes its client ids with the run id
    d.pop("broker_order_id")  # only orders sent to a broker have one
    return d


def assert_same(expected: BacktestResult, got: BacktestResult) -> None:
    assert [f.to_dict() for f in got.fills] == [f.to_dict() for f in expected.fills]
    assert [order_view(o) for o in got.orders] == [order_view(o) for o in expected.orders]
    assert [t.to_dict() for t in got.trades] == [t.to_dict() for t in expected.trades]
    assert list(got.equity_ts) == list(expected.equity_ts)
    assert list(got.equity) == list(expected.equity)
    assert list(got.exposure) == list(expected.exposure)
    assert got.final_cash == expected.final_cash
    assert got.bars_processed == expected.bars_processed


# ------------------------------------------------------------------------- strategies over samples

COSTS: dict[str, Any] = {
    "commission": PerShareCommission(0.005, minimum=1.0),
    "slippage": PercentSlippage(0.0005),
    "participation_rate": 0.1,
}


class LoggedSma(SmaCross, Logged):
    def on_start(self, ctx: Context) -> None:
        Logged.on_start(self, ctx)
        SmaCross.on_start(self, ctx)

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        Logged.on_bar(self, ctx, bar)
        SmaCross.on_bar(self, ctx, bar)

    def on_order_update(self, ctx: Context, order: Order) -> None:
        Logged.on_order_update(self, ctx, order)
        SmaCross.on_order_update(self, ctx, order)


class Breakout(Logged):
    """The README's strategy: breakout entries, a trailing stop placed in on_fill."""

    lookback: int = 20
    risk_fraction: float = 0.2

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        super().on_bar(ctx, bar)
        highs = ctx.history(bar.symbol, self.lookback + 1, field="high")
        if len(highs) <= self.lookback or ctx.position(bar.symbol).qty:
            return
        if ctx.open_orders(bar.symbol):
            return
        if bar.close > max(highs[:-1]):
            qty = int(ctx.equity * self.risk_fraction / bar.close)
            if qty:
                ctx.buy(bar.symbol, qty)

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        super().on_fill(ctx, fill)
        if fill.side == "buy":
            ctx.sell(fill.symbol, fill.qty, type="trailing_stop", trail_percent=5.0)


class Bracketish(Logged):
    """Acts inside callbacks: on an entry's fill it places a take-profit limit and a stop, on a
    fill of either it cancels the other, and it re-prices a resting limit with replace()."""

    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        self.exits: dict[str, list[Order]] = {}
        self.count = 0

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        super().on_bar(ctx, bar)
        self.count += 1
        sym = bar.symbol
        resting = [o for o in ctx.open_orders(sym) if o.type.value == "limit" and o.side == "buy"]
        if resting and self.count % 3 == 0:
            price = round(bar.close * 0.995, 2)
            if price != resting[0].limit_price:  # a replace that changes nothing is refused
                ctx.replace(resting[0], limit_price=price)
            return
        if ctx.position(sym).qty == 0 and not ctx.open_orders(sym) and self.count % 5 == 0:
            ctx.buy(sym, 10, type="limit", limit_price=round(bar.close * 0.99, 2), tif="day")

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        super().on_fill(ctx, fill)
        sym = fill.symbol
        if fill.side == "buy":
            qty = fill.qty
            tp = ctx.sell(sym, qty, type="limit", limit_price=round(fill.price * 1.02, 2))
            sl = ctx.sell(sym, qty, type="stop", stop_price=round(fill.price * 0.98, 2))
            self.exits[sym] = [tp, sl]
        else:
            for o in self.exits.pop(sym, []):
                if o.is_open and o.id != fill.order_id:
                    ctx.cancel(o)

    def on_order_update(self, ctx: Context, order: Order) -> None:
        super().on_order_update(ctx, order)
        if order.status is OrderStatus.REJECTED and order.side == "sell":
            ctx.close_position(order.symbol)


@pytest.mark.parametrize("timeframe", ["daily", "minute"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: LoggedSma(allow_short=True),
        lambda: LoggedSma(fast=5, slow=20),
        Breakout,
        Bracketish,
    ],
    ids=["sma-long-short", "sma-long", "breakout-trailing", "bracket-in-callbacks"],
)
def test_sample_strategies_match_the_backtest(timeframe: str, make: Any) -> None:
    feed = load_sample(timeframe)
    expected, got, s_sync, s_async = run_both(feed, make, **COSTS)
    assert expected.fills  # the comparison is about something
    assert_same(expected, got)
    assert s_async.log == s_sync.log  # type: ignore[attr-defined]


def test_buy_and_hold_with_leverage_and_fixed_costs() -> None:
    feed = load_sample("daily", symbols=["ACME", "BOLT"])
    kw = {"commission": FixedCommission(2.0), "slippage": FixedSlippage(0.01), "leverage": 2.0}
    expected, got, _, _ = run_both(feed, lambda: BuyAndHold(allocation=1.8), **kw)
    assert len(expected.fills) == 2
    assert_same(expected, got)


def test_fractional_account_and_no_shorting() -> None:
    feed = load_sample("daily", symbols=["CRUX"])
    kw = {"fractional": True, "allow_short": False, "participation_rate": 0.05}
    expected, got, s_sync, s_async = run_both(feed, lambda: LoggedSma(allow_short=True), **kw)
    assert any(o.status is OrderStatus.REJECTED for o in expected.orders)  # shorts refused
    assert_same(expected, got)
    assert s_async.log == s_sync.log  # type: ignore[attr-defined]


# --------------------------------------------------------- every order type and time in force

ORDER_KINDS: list[dict[str, Any]] = [
    {"type": "market"},
    {"type": "limit", "limit_price": 0.99},
    {"type": "limit", "limit_price": 1.01},
    {"type": "stop", "stop_price": 1.01},
    {"type": "stop", "stop_price": 0.99},
    {"type": "stop_limit", "stop_price": 1.01, "limit_price": 1.02},
    {"type": "stop_limit", "stop_price": 0.99, "limit_price": 0.98},
    {"type": "trailing_stop", "trail_percent": 1.5},
    {"type": "trailing_stop", "trail_price": 1.0},
]


class Matrix(Logged):
    """Places every order type with every allowed time in force, both sides, on each symbol."""

    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        self.n = 0

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        super().on_bar(ctx, bar)
        self.n += 1
        if self.n % 4:
            return
        step = self.n // 4
        kind = dict(ORDER_KINDS[step % len(ORDER_KINDS)])
        tifs = ["day", "gtc"] if kind["type"] == "trailing_stop" else ["day", "gtc", "ioc", "fok"]
        tif = tifs[step % len(tifs)]
        side = "buy" if step % 2 else "sell"
        for key in ("limit_price", "stop_price"):
            if key in kind:
                kind[key] = round(bar.close * kind[key], 2)
        ctx.submit_order(bar.symbol, side, 5 + step % 7, tif=tif, **kind)


def wavy_series(symbol: str, n: int, phase: float, volume: float) -> SymbolSeries:
    ts, o, h, lo, c, v = [], [], [], [], [], []
    prev = 100.0
    for i in range(n):
        op = prev * (1 + 0.004 * math.sin(i * 0.7 + phase))
        cl = op * (1 + 0.012 * math.sin(i * 0.31 + phase))
        ts.append(T0 + i * 6 * HOUR)  # four bars a day: day orders expire along the way
        o.append(op)
        c.append(cl)
        h.append(max(op, cl) * 1.006)
        lo.append(min(op, cl) * 0.994)
        v.append(volume * (1 + (i % 5)))
        prev = cl
    return SymbolSeries(symbol, ts, o, h, lo, c, v)


@pytest.mark.parametrize("rate", [None, 0.3])
def test_every_order_type_and_time_in_force(rate: float | None) -> None:
    feed = BarFeed([wavy_series("A", 400, 0.0, 20.0), wavy_series("B", 400, 1.3, 30.0)])
    kw = {
        "participation_rate": rate,
        "commission": PerShareCommission(0.01, minimum=0.5),
        "slippage": PercentSlippage(0.001),
    }
    expected, got, s_sync, s_async = run_both(feed, Matrix, **kw)
    seen = {(o.type.value, o.tif.value, o.status.value) for o in expected.orders}
    statuses = {s for _, _, s in seen}
    assert {"filled", "canceled", "expired"} <= statuses  # the matrix reaches the outcomes
    assert {t for t, _, _ in seen} == {k["type"] for k in ORDER_KINDS}
    if rate is not None:
        assert any(o.status is OrderStatus.PARTIALLY_FILLED or 0 < o.filled_qty < o.qty
                   for o in expected.orders)  # fmt: skip
    assert_same(expected, got)
    assert s_async.log == s_sync.log  # type: ignore[attr-defined]


# ------------------------------------------------------------------------- random order flow

bar_moves = st.lists(
    st.tuples(
        st.floats(-0.05, 0.05),  # open gap vs previous close
        st.floats(-0.05, 0.05),  # close vs open
        st.floats(0, 0.03),  # extra above
        st.floats(0, 0.03),  # extra below
        st.integers(0, 500),  # volume
    ),
    min_size=2,
    max_size=30,
)

actions = st.lists(
    st.tuples(
        st.sampled_from(
            ["market", "limit", "stop", "stop_limit", "trailing_stop", "cancel", "replace"]
        ),
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 60),
        st.floats(-0.06, 0.06),
        st.sampled_from(["gtc", "day", "ioc", "fok"]),
        st.sampled_from(["A", "B"]),
        st.booleans(),  # act again from the fill callback
    ),
    max_size=50,
)


def make_series(symbol: str, moves: list[tuple[float, float, float, float, int]]) -> SymbolSeries:
    ts, o, h, lo, c, v = [], [], [], [], [], []
    prev = 100.0
    for i, (gap, body, up, down, vol) in enumerate(moves):
        op = prev * (1 + gap)
        cl = op * (1 + body)
        ts.append(T0 + i * 6 * HOUR)
        o.append(op)
        c.append(cl)
        h.append(max(op, cl) * (1 + up))
        lo.append(min(op, cl) * (1 - down))
        v.append(float(vol))
        prev = cl
    return SymbolSeries(symbol, ts, o, h, lo, c, v)


class Random(Logged):
    """Follows a random plan, acting from on_bar and (when the plan says so) from on_fill.

    Like any strategy written for a broker that answers later, it remembers what it asked for:
    an order it canceled or replaced is not a target again, whether or not the answer is in
    yet. (In a backtest the answer is immediate, so this changes nothing there.)
    """

    def __init__(self, plan: list[tuple[str, str, int, float, str, str, bool]]) -> None:
        super().__init__()
        self.plan = plan

    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        self.step = 0
        self.mine: list[Order] = []
        self.asked: set[str] = set()  # ids of orders this strategy canceled or replaced

    def _act(self, ctx: Context, ref: float) -> None:
        if self.step >= len(self.plan):
            return
        kind, side, qty, off, tif, sym, _ = self.plan[self.step]
        self.step += 1
        px = round(ref * (1 + off), 4)
        opens = [o for o in self.mine if o.is_open and o.id not in self.asked]
        if kind == "cancel":
            if opens:
                ctx.cancel(opens[0])
                self.asked.add(opens[0].id)
            return
        if kind == "replace":
            target = next((o for o in opens if o.type.value in ("limit", "stop")), None)
            field = "limit_price" if target and target.type.value == "limit" else "stop_price"
            if target is not None and getattr(target, field) != px:  # a no-change is refused
                self.mine.append(ctx.replace(target, **{field: px}))
                self.asked.add(target.id)
            return
        kw: dict[str, object] = {"tif": tif}
        if kind in ("limit", "stop_limit"):
            kw["limit_price"] = px
        if kind in ("stop", "stop_limit"):
            kw["stop_price"] = px
        if kind == "trailing_stop":
            kw["trail_percent"] = 2.0
            if tif in ("ioc", "fok"):
                kw["tif"] = "gtc"
        self.mine.append(ctx.submit_order(sym, side, qty, kind, **kw))  # type: ignore[arg-type]

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        super().on_bar(ctx, bar)
        self._act(ctx, bar.close)

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        super().on_fill(ctx, fill)
        if self.step < len(self.plan) and self.plan[self.step][6]:
            self._act(ctx, fill.price)


def random_run_kwargs(rate: float | None, short: bool) -> dict[str, Any]:
    """The account of the random-flow tests: small, with costs, with or without shorting."""
    return {
        "initial_cash": 20_000.0,
        "commission": PerShareCommission(0.01, minimum=0.5),
        "slippage": PercentSlippage(0.001),
        "participation_rate": rate,
        "allow_short": short,
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(  # found by hypothesis: two fills in one batch, the second's callback cancels an order
    # the first's callback placed; each update must show the status it carried, in both engines
    moves_a=[(0.0, 0.0, 0.0, 0.0, 0)] * 2,
    moves_b=[(0.0, 0.0, 0.0, 0.0, 0)] * 2,
    plan=[
        ("market", "buy", 1, 0.0, "gtc", "A", False),
        ("market", "buy", 1, 0.0, "gtc", "A", False),
        ("market", "buy", 1, 0.0, "gtc", "A", True),
        ("cancel", "buy", 1, 0.0, "gtc", "A", True),
    ],
    rate=None,
    short=False,
)
@given(
    moves_a=bar_moves,
    moves_b=bar_moves,
    plan=actions,
    rate=st.sampled_from([None, 0.2]),
    short=st.booleans(),
)
def test_random_order_flow_matches_the_backtest(
    moves_a: list[tuple[float, float, float, float, int]],
    moves_b: list[tuple[float, float, float, float, int]],
    plan: list[tuple[str, str, int, float, str, str, bool]],
    rate: float | None,
    short: bool,
) -> None:
    feed = BarFeed([make_series("A", moves_a), make_series("B", moves_b)])
    kw = random_run_kwargs(rate, short)
    expected, got, s_sync, s_async = run_both(feed, lambda: Random(plan), **kw)
    assert_same(expected, got)
    assert s_async.log == s_sync.log  # type: ignore[attr-defined]


def test_a_handle_kept_across_replaces_acts_on_the_newest_order_in_both_engines() -> None:
    """Replacing or cancelling through an old handle follows the chain to the newest order,
    also while a replacement is still on its way to the broker (same callback)."""

    class Chain(Logged):
        def on_start(self, ctx: Context) -> None:
            super().on_start(ctx)
            self.n = 0
            self.first: Order | None = None

        def on_bar(self, ctx: Context, bar: Bar) -> None:
            super().on_bar(ctx, bar)
            self.n += 1
            if self.n == 1:
                self.first = ctx.buy("X", 1, type="limit", limit_price=1.0)
            elif self.n == 3 and self.first is not None:
                ctx.replace(self.first, limit_price=1.01)
                ctx.replace(self.first, limit_price=1.02)  # follows the pending replacement
                ctx.replace(self.first, qty=2)
            elif self.n == 5 and self.first is not None:
                self.log.append(("cancel", ctx.cancel(self.first), ctx.cancel(self.first)))

    feed = BarFeed([wavy_series("X", 8, 0.0, 100.0)])
    expected, got, s_sync, s_async = run_both(feed, Chain)
    assert [(o.id, o.status.value, o.replaces) for o in expected.orders] == [
        ("O000001", "replaced", None),
        ("O000002", "replaced", "O000001"),
        ("O000003", "replaced", "O000002"),
        ("O000004", "canceled", "O000003"),
    ]
    assert expected.orders[-1].qty == 2 and expected.orders[-1].limit_price == 1.02
    assert_same(expected, got)
    assert s_async.log == s_sync.log  # type: ignore[attr-defined]


def test_risk_limits_refuse_the_same_orders_in_both_engines() -> None:
    from tradeloop.execution.core.risk import RiskLimits

    feed = load_sample("daily", symbols=["ACME", "BOLT"])
    limits = RiskLimits(
        max_order_notional=900.0,
        max_position=25.0,
        max_open_orders=3,
        max_orders_per_minute=2,
        daily_loss_limit=60.0,
    )
    s_sync, s_async = Matrix(), Matrix()
    expected = SyncEngine(feed, s_sync, risk=limits).run()
    broker = SimulatedBroker(feed)
    got = asyncio.run(asyncio.wait_for(AsyncEngine(broker, s_async, risk=limits).run(), 60))
    reasons = [o.reject_reason or "" for o in expected.orders]
    rules = {r.split(":")[1].strip() for r in reasons if r.startswith("risk")}
    assert {"max_order_notional", "max_position", "max_open_orders"} <= rules  # they bite
    assert_same(expected, got)
    assert s_async.log == s_sync.log


# ------------------------------------------------------------ order classes: bracket, oco, oto


def class_view(o: Order) -> tuple[object, ...]:
    """What ``to_dict`` leaves out of an order of a class: its class, links and legs."""
    return (o.id, o.order_class.value, o.parent_id, o.qty, [leg.id for leg in o.legs])


def assert_same_classes(expected: BacktestResult, got: BacktestResult) -> None:
    assert_same(expected, got)
    assert [class_view(o) for o in got.orders] == [class_view(o) for o in expected.orders]
    assert [f.position_qty for f in got.fills] == [f.position_qty for f in expected.fills]


class LoggedClasses(Logged):
    """Logs what order classes add: each update's class, size and legs, each fill's position."""

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        super().on_fill(ctx, fill)
        self.log.append(("position", fill.order_id, fill.position_qty))

    def on_order_update(self, ctx: Context, order: Order) -> None:
        super().on_order_update(ctx, order)
        legs = tuple((leg.id, leg.status, leg.qty, leg.filled_qty) for leg in order.legs)
        self.log.append(("class", order.id, order.order_class, order.parent_id, order.qty, legs))


class Brackets(LoggedClasses):
    """Enters with bracket orders (limit or market entries, stop or stop-limit losses, day or
    gtc), now and then cancels an entry or a leg, and closes what an exit left with an oco."""

    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        self.n = 0
        self.entries: dict[str, Order] = {}

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        super().on_bar(ctx, bar)
        self.n += 1
        sym = bar.symbol
        entry = self.entries.get(sym)
        if entry is not None and entry.is_open and self.n % 17 == 0:
            ctx.cancel(entry)
            return
        if entry is not None and self.n % 23 == 0:
            legs = [leg for leg in entry.legs if leg.is_open]
            if legs:
                ctx.cancel(legs[-1])  # one cancels the other
                return
        if ctx.position(sym).qty or ctx.open_orders(sym):
            return
        if entry is not None and any(leg.is_open for leg in entry.legs):
            return  # its legs are held: the entry is still to fill
        if self.n % 3:
            return
        c = bar.close
        kw: dict[str, Any] = {
            "order_class": "bracket",
            "take_profit": {"limit_price": round(c * 1.01, 2)},
            "stop_loss": {"stop_price": round(c * 0.99, 2)},
            "tif": "day" if self.n % 2 else "gtc",
        }
        if self.n % 4 == 0:
            kw["stop_loss"]["limit_price"] = round(c * 0.985, 2)
        if self.n % 5:
            kw.update(type="limit", limit_price=round(c * 0.998, 2))
        self.entries[sym] = ctx.buy(sym, 20 + self.n % 15, **kw)

    def on_order_update(self, ctx: Context, order: Order) -> None:
        super().on_order_update(ctx, order)
        held = ctx.position(order.symbol).qty
        leg_gone = order.status is OrderStatus.CANCELED and order.parent_id is not None
        if leg_gone and held > 0 and not ctx.open_orders(order.symbol):
            c = ctx.history(order.symbol, 1)[-1]  # exits gone, shares left: an oco for them
            ctx.sell(
                order.symbol,
                held,
                type="limit",
                order_class="oco",
                take_profit={"limit_price": round(c * 1.02, 2)},
                stop_loss={"stop_price": round(c * 0.98, 2)},
            )


class OtoShorts(LoggedClasses):
    """Shorts with oto orders whose one leg is a protective buy stop or a take-profit."""

    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        self.n = 0

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        super().on_bar(ctx, bar)
        self.n += 1
        if self.n % 5 or ctx.position(bar.symbol).qty or ctx.open_orders(bar.symbol):
            return
        c = bar.close
        leg: dict[str, Any] = (
            {"stop_loss": {"stop_price": round(c * 1.01, 2)}}
            if self.n % 2
            else {"take_profit": {"limit_price": round(c * 0.99, 2)}}
        )
        ctx.sell(bar.symbol, 10 + self.n % 7, order_class="oto", tif="gtc", **leg)


@pytest.mark.parametrize("timeframe", ["daily", "minute"])
@pytest.mark.parametrize("make", [Brackets, OtoShorts], ids=["brackets-oco", "oto"])
def test_order_class_strategies_match_the_backtest(timeframe: str, make: Any) -> None:
    feed = load_sample(timeframe)
    expected, got, s_sync, s_async = run_both(feed, make, **COSTS)
    classes = {o.order_class.value for o in expected.orders}
    statuses = {(o.parent_id is not None, o.status.value) for o in expected.orders}
    assert classes >= ({"bracket", "oco"} if make is Brackets else {"oto"})
    assert (True, "filled") in statuses  # exits traded
    if make is Brackets:
        assert (True, "canceled") in statuses  # and canceled one another
    assert_same_classes(expected, got)
    assert s_async.log == s_sync.log  # type: ignore[attr-defined]


class_actions = st.lists(
    st.tuples(
        st.sampled_from(["bracket", "bracket_limit", "oto_sl", "oto_tp", "oco", "cancel", "leg"]),
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 40),
        st.floats(0.002, 0.05),
        st.sampled_from(["gtc", "day"]),
        st.sampled_from(["A", "B"]),
    ),
    max_size=40,
)


class RandomClasses(LoggedClasses):
    """Follows a random plan of order-class requests (and cancels of entries and legs)."""

    def __init__(self, plan: list[tuple[str, str, int, float, str, str]]) -> None:
        super().__init__()
        self.plan = plan

    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        self.step = 0
        self.mine: list[Order] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        super().on_bar(ctx, bar)
        if self.step >= len(self.plan):
            return
        kind, side, qty, off, tif, sym = self.plan[self.step]
        self.step += 1
        last = ctx.history(sym, 1)
        ref = bar.close if sym == bar.symbol or not len(last) else last[-1]
        up, down = round(ref * (1 + off), 2), round(ref * (1 - off), 2)
        buy = side == "buy"
        tp = {"limit_price": up if buy else down}
        sl: dict[str, Any] = {"stop_price": down if buy else up}
        if kind == "cancel" or kind == "leg":
            for o in self.mine:
                target = o if kind == "cancel" else next(iter(o.legs), None)
                if target is not None and target.is_open:
                    ctx.cancel(target)
                    break
            return
        kw: dict[str, Any] = {"tif": tif}
        if kind == "oco":  # closes (part of) the position, whichever side it is
            held = ctx.position(sym).qty
            if held == 0:
                return
            buy = held < 0
            tp = {"limit_price": down if buy else up}
            sl = {"stop_price": up if buy else down}
            kw.update(type="limit", order_class="oco", take_profit=tp, stop_loss=sl)
            qty = min(qty, int(abs(held))) or 1
        elif kind.startswith("bracket"):
            kw.update(order_class="bracket", take_profit=tp, stop_loss=sl)
            if kind == "bracket_limit":
                kw.update(type="limit", limit_price=round(ref, 2))
        else:
            kw.update(order_class="oto", **({"stop_loss": sl} if kind == "oto_sl" else {
                "take_profit": tp}))  # fmt: skip
        self.mine.append(ctx.submit_order(sym, "buy" if buy else "sell", qty, **kw))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    moves_a=bar_moves,
    moves_b=bar_moves,
    plan=class_actions,
    rate=st.sampled_from([None, 0.2]),
    short=st.booleans(),
)
def test_random_order_class_flow_matches_the_backtest(
    moves_a: list[tuple[float, float, float, float, int]],
    moves_b: list[tuple[float, float, float, float, int]],
    plan: list[tuple[str, str, int, float, str, str]],
    rate: float | None,
    short: bool,
) -> None:
    feed = BarFeed([make_series("A", moves_a), make_series("B", moves_b)])
    kw = random_run_kwargs(rate, short)
    expected, got, s_sync, s_async = run_both(feed, lambda: RandomClasses(plan), **kw)
    assert_same_classes(expected, got)
    assert s_async.log == s_sync.log  # type: ignore[attr-defined]
    for result in (expected, got):
        exits = {o.id for o in result.orders if o.is_exit_leg}
        for o in result.orders:
            if o.id in exits:
                assert o.filled_qty <= o.qty + 1e-9
        for f in result.fills:  # exits never flip a position: no exit fill trades past flat
            if f.order_id in exits:
                assert f.position_qty is not None
                before = f.position_qty - f.side.sign * f.qty
                assert before * f.position_qty >= -1e-9, (f, before)
                assert abs(f.position_qty) <= abs(before) + 1e-9


# ------------------------------------------------------- trailing stops, day orders, positions


class TrailFromAnotherSymbol(Logged):
    """Places a trailing stop on B from A's on_bar, at a timestamp where B's bar (which comes
    after A's) jumps: it must trail from B's price at that timestamp, not its previous close."""

    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        self.n = 0
        self.stop: Order | None = None

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        super().on_bar(ctx, bar)
        if bar.symbol == "A":
            self.n += 1
            if self.n == 3:
                self.stop = ctx.buy("B", 5, type="trailing_stop", trail_percent=5.0)


def jump_feed() -> BarFeed:
    """A flat at 100; B at 100, then 120 from the third timestamp on (A's bars come first)."""
    n = 8
    ts = [T0 + i * HOUR for i in range(n)]
    a = SymbolSeries("A", ts, [100.0] * n, [100.0] * n, [100.0] * n, [100.0] * n, [1e6] * n)
    b_close = [100.0, 100.0, 120.0, 120.0, 119.0, 121.0, 120.0, 120.0]
    b_open = [100.0, 100.0, 100.0, 118.0, 119.0, 120.0, 121.0, 120.0]
    b_high = [max(o, c) for o, c in zip(b_open, b_close, strict=True)]
    b_low = [min(o, c) for o, c in zip(b_open, b_close, strict=True)]
    b = SymbolSeries("B", ts, b_open, b_high, b_low, b_close, [1e6] * n)
    return BarFeed([a, b])


def test_a_trailing_stop_placed_from_another_symbols_bar_trails_from_the_price_then() -> None:
    expected, got, s_sync, s_async = run_both(jump_feed(), TrailFromAnotherSymbol)
    for strat in (s_sync, s_async):
        stop = strat.stop  # type: ignore[attr-defined]
        # it trails from B's 120 at the placement's timestamp (a buy stop at 126, 123.9 once
        # B's next open, 118, lowers it), not from B's previous close of 100 (a stop at 105
        # that the open of 118 would fill at once)
        assert stop is not None and stop.status is OrderStatus.ACCEPTED and stop.filled_qty == 0
        assert stop.stop_price == pytest.approx(118.0 * 1.05)
    assert s_sync.stop.trail_ref == 118.0  # type: ignore[attr-defined]
    assert expected.fills == [] and got.fills == []
    assert_same(expected, got)
    assert s_async.log == s_sync.log  # type: ignore[attr-defined]


class DayAtTheEnd(Logged):
    """Leaves a day and a gtc limit order (and a bracket's held legs) open when the data ends."""

    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        self.n = 0

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        super().on_bar(ctx, bar)
        self.n += 1
        if self.n == 6:
            ctx.buy("X", 3, type="limit", limit_price=1.0, tif="day")
            ctx.buy("X", 4, type="limit", limit_price=1.0, tif="gtc")
            ctx.buy(
                "X",
                5,
                type="limit",
                limit_price=1.0,
                tif="day",
                order_class="bracket",
                take_profit={"limit_price": 2.0},
                stop_loss={"stop_price": 0.5},
            )


def test_day_orders_expire_when_the_data_ends_in_both_engines() -> None:
    feed = BarFeed([wavy_series("X", 8, 0.0, 100.0)])
    expected, got, s_sync, s_async = run_both(feed, DayAtTheEnd)
    assert [(o.tif.value, o.status.value) for o in expected.orders] == [
        ("day", "expired"),
        ("gtc", "accepted"),
        ("day", "expired"),
        ("day", "expired"),  # the bracket's held legs go with their unfilled entry
        ("day", "expired"),
    ]
    assert_same_classes(expected, got)
    assert s_async.log == s_sync.log  # type: ignore[attr-defined]
    stop = s_sync.log[-1]  # type: ignore[attr-defined]
    assert stop[0] == "stop" and stop[3] == 1  # on_stop sees the gtc order alone still open
    expired = [e for e in s_sync.log if e[0] == "order" and e[2] is OrderStatus.EXPIRED]  # type: ignore[attr-defined]
    assert len(expired) == 4  # and each expiry was delivered before it


class PositionInOnFill(Logged):
    """Buys three times at one bar's open: each fill shows the position it left."""

    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        self.seen: list[tuple[float | None, float]] = []
        self.n = 0

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        super().on_bar(ctx, bar)
        self.n += 1
        if self.n == 2:
            for qty in (2, 3, 4):
                ctx.buy("X", qty)
        if self.n == 4:
            ctx.sell("X", 12)

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        super().on_fill(ctx, fill)
        self.seen.append((fill.position_qty, ctx.position(fill.symbol).qty))


def test_a_fill_carries_the_position_just_after_it_in_both_engines() -> None:
    feed = BarFeed([wavy_series("X", 6, 0.0, 100.0)])
    expected, got, s_sync, s_async = run_both(feed, PositionInOnFill)
    # inside on_fill the account holds all three fills of the bar; each fill its own step
    assert s_sync.seen == [(2.0, 9.0), (5.0, 9.0), (9.0, 9.0), (-3.0, -3.0)]  # type: ignore[attr-defined]
    assert s_async.seen == s_sync.seen  # type: ignore[attr-defined]
    assert_same_classes(expected, got)
