"""Risk limits in the synchronous engine: refused orders end ``rejected`` naming the rule, and the
rest of the run is exactly what it would have been without them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.errors import ConfigError
from tradeloop.execution.core.risk import RiskLimits, RiskManager
from tradeloop.execution.synchronous import SyncExecutionEngine
from tradeloop.execution.types import Bar, Order, OrderStatus
from tradeloop.results.result import BacktestResult
from tradeloop.strategy import Context, Strategy

DAY = 86_400_000_000_000
MINUTE = 60_000_000_000
T0 = 19_000 * DAY + 14 * 3_600_000_000_000  # 14:00 UTC


def series(symbol: str, closes: list[float], start: int = T0, step: int = MINUTE) -> SymbolSeries:
    n = len(closes)
    opens = [closes[0], *closes[:-1]]  # each bar opens at the previous close
    return SymbolSeries(
        symbol,
        [start + i * step for i in range(n)],
        opens,
        [max(o, c) + 1 for o, c in zip(opens, closes, strict=True)],
        [min(o, c) - 1 for o, c in zip(opens, closes, strict=True)],
        closes,
        [1e6] * n,
    )


Action = Callable[[Context], Order | None]


class Script(Strategy):
    """Runs ``plan[(symbol, bar index)]``: (label, action) pairs; logs what it sees."""

    def __init__(self, plan: dict[tuple[str, int], list[tuple[str, Action]]]) -> None:
        super().__init__()
        self.plan = plan
        self.submitted: dict[str, str] = {}  # label -> order id
        self.statuses_at_submit: dict[str, OrderStatus] = {}
        self.updates: list[Order] = []

    def on_start(self, ctx: Context) -> None:
        self.seen: dict[str, int] = {}

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        i = self.seen.get(bar.symbol, 0)
        self.seen[bar.symbol] = i + 1
        for label, action in self.plan.get((bar.symbol, i), []):
            o = action(ctx)
            if o is not None:
                self.submitted[label] = o.id
                self.statuses_at_submit[label] = o.status

    def on_order_update(self, ctx: Context, order: Order) -> None:
        self.updates.append(order)

    def rejected(self) -> dict[str, str]:
        """label -> reject reason, for the orders whose update said ``rejected``."""
        ids = {oid: label for label, oid in self.submitted.items()}
        return {
            ids[u.id]: u.reject_reason or ""
            for u in self.updates
            if u.status is OrderStatus.REJECTED and u.id in ids
        }


def fills_of(result: BacktestResult) -> list[tuple[Any, ...]]:
    """Fills without order ids (a rejected order still takes an id)."""
    return [(f.symbol, f.side, f.qty, f.price, f.commission, f.ts) for f in result.fills]


def same_run(a: BacktestResult, b: BacktestResult) -> None:
    assert fills_of(a) == fills_of(b)
    assert a.equity_ts == b.equity_ts
    assert a.equity == b.equity
    assert a.exposure == b.exposure
    assert a.final_cash == b.final_cash
    assert [(t.symbol, t.side, t.entry_ts, t.exit_ts, t.pnl) for t in a.trades] == [
        (t.symbol, t.side, t.entry_ts, t.exit_ts, t.pnl) for t in b.trades
    ]
    kept = [o for o in a.orders if o.status is not OrderStatus.REJECTED]
    assert [(o.symbol, o.side, o.qty, o.type, o.status, o.filled_qty) for o in kept] == [
        (o.symbol, o.side, o.qty, o.type, o.status, o.filled_qty) for o in b.orders
    ]


def buy(symbol: str, qty: float) -> Action:
    return lambda ctx: ctx.buy(symbol, qty)


def sell(symbol: str, qty: float) -> Action:
    return lambda ctx: ctx.sell(symbol, qty)


def limit_buy(symbol: str, qty: float, price: float) -> Action:
    return lambda ctx: ctx.buy(symbol, qty, type="limit", limit_price=price)


def buy_and_cancel(symbol: str) -> Action:
    """A resting order canceled at once: a submission that leaves no open order behind."""

    def act(ctx: Context) -> Order:
        o = ctx.buy(symbol, 1, type="limit", limit_price=10.0)
        ctx.cancel(o)
        return o

    return act


def cancel_all_but(symbol: str, label: str, script: list[Script]) -> Action:
    def act(ctx: Context) -> None:
        keep = script[0].submitted[label]
        for o in ctx.open_orders(symbol):
            if o.id != keep:
                ctx.cancel(o)

    return act


LIMITS = RiskLimits(
    max_order_notional=5_000,
    max_position=60,
    max_open_orders=3,
    max_orders_per_minute=4,
)


def plan_for(script: list[Script]) -> dict[tuple[str, int], list[tuple[str, Action]]]:
    """Trading that stays inside LIMITS, and attempts to break each rule (labels in caps).

    A and B have bars at the same minutes; at each minute A's bar comes first.
    """
    return {
        ("A", 0): [("a-buy", buy("A", 20))],  # 20 x 100, fills at minute 1
        ("B", 0): [("b-buy", buy("B", 10))],  # 10 x 50
        ("A", 1): [("NOTIONAL", buy("A", 51))],  # 51 x 100 = 5,100 > 5,000
        ("B", 1): [
            ("POSITION", buy("B", 51)),  # 10 held + 51 > 60
            ("POSITION-SHORT", sell("B", 71)),  # 10 held - 71 = -61
        ],
        ("A", 2): [("a-rest", limit_buy("A", 10, 50.0))],  # rests far below the market
        ("B", 2): [("b-sell", sell("B", 10))],  # fills at minute 3
        ("B", 3): [
            ("rest-1", limit_buy("A", 1, 40.0)),
            ("rest-2", limit_buy("A", 1, 40.0)),  # with a-rest: 3 open
            ("OPEN-ORDERS", limit_buy("A", 1, 40.0)),  # a fourth
        ],
        ("A", 4): [("cancel", cancel_all_but("A", "a-rest", script))],
        ("B", 4): [
            *((f"rate-{i}", buy_and_cancel("B")) for i in range(1, 5)),
            ("PER-MINUTE", buy_and_cancel("B")),  # a fifth within the minute
        ],
        ("A", 5): [("a-sell", sell("A", 20))],  # fills at minute 6
        ("B", 5): [("rate-ok", limit_buy("B", 1, 10.0))],  # a minute later: room again
    }


def feed() -> BarFeed:
    return BarFeed(
        [
            series("A", [100, 100, 101, 102, 101, 103, 104]),
            series("B", [50, 50, 51, 52, 53, 52, 51]),
        ]
    )


def scripted(drop: set[str] | None = None) -> Script:
    holder: list[Script] = []
    plan = {
        key: [(label, act) for label, act in actions if label not in (drop or set())]
        for key, actions in plan_for(holder).items()
    }
    holder.append(Script(plan))
    return holder[0]


def test_each_rule_rejects_and_the_run_otherwise_matches() -> None:
    guarded = scripted()
    risky = SyncExecutionEngine(feed(), guarded, initial_cash=100_000, risk=LIMITS)
    result = risky.run()

    rejected = guarded.rejected()
    assert set(rejected) == {
        "NOTIONAL",
        "POSITION",
        "POSITION-SHORT",
        "OPEN-ORDERS",
        "PER-MINUTE",
    }
    assert rejected["NOTIONAL"] == (
        "risk: max_order_notional: order notional 5,100.00 > limit 5,000.00"
    )
    assert rejected["POSITION"].startswith(
        "risk: max_position: B position could reach 61, size 61 > limit 60 (held 10"
    )
    assert rejected["POSITION-SHORT"].startswith(
        "risk: max_position: B position could reach -61, size 61 > limit 60"
    )
    assert rejected["OPEN-ORDERS"] == "risk: max_open_orders: 3 open orders + this one > limit 3"
    assert rejected["PER-MINUTE"] == (
        "risk: max_orders_per_minute: 4 orders in the last 60 s + this one > limit 4"
    )
    # refused at once: the handle comes back rejected, with exactly one update, and never fills
    for label in rejected:
        assert guarded.statuses_at_submit[label] is OrderStatus.REJECTED
        oid = guarded.submitted[label]
        assert [u.status for u in guarded.updates if u.id == oid] == [OrderStatus.REJECTED]
        assert risky.manager.get_order(oid).filled_qty == 0
    assert guarded.statuses_at_submit["rate-ok"] is OrderStatus.ACCEPTED
    assert guarded.statuses_at_submit["a-sell"] is OrderStatus.ACCEPTED

    # the same strategy without risk, not sending the refused orders: the very same run
    plain = SyncExecutionEngine(feed(), scripted(drop=set(rejected)), initial_cash=100_000)
    same_run(result, plain.run())
    assert [(f.symbol, f.side.value, f.qty) for f in result.fills] == [
        ("A", "buy", 20),
        ("B", "buy", 10),
        ("B", "sell", 10),
        ("A", "sell", 20),
    ]


def test_without_risk_the_breaking_orders_go_through() -> None:
    # the scenario really breaks the limits: with no risk every order is accepted
    strat = scripted()
    SyncExecutionEngine(feed(), strat, initial_cash=100_000).run()
    assert strat.rejected() == {}


def test_limits_never_hit_change_nothing() -> None:
    loose = RiskLimits(
        max_order_notional=1e9,
        max_position=1e6,
        max_open_orders=100,
        max_orders_per_minute=100,
        daily_loss_limit=1e9,
    )
    a = SyncExecutionEngine(feed(), scripted(), risk=loose).run()
    b = SyncExecutionEngine(feed(), scripted()).run()
    same_run(a, b)
    assert [o.id for o in a.orders] == [o.id for o in b.orders]


def test_daily_loss_halts_entries_until_the_next_day() -> None:
    # daily bars at 21:00 UTC; X opens at the previous close
    closes = [100, 100, 90, 90, 95]
    plan: dict[tuple[str, int], list[tuple[str, Action]]] = {
        ("X", 0): [("entry", buy("X", 100))],  # fills at bar 1's open, 100
        ("X", 2): [("add", buy("X", 10)), ("trim", sell("X", 50)), ("flip", sell("X", 60))],
        ("X", 3): [("next-day", buy("X", 10))],
    }
    strat = Script(plan)
    engine = SyncExecutionEngine(
        BarFeed([series("X", closes, start=T0 + 7 * 3_600_000_000_000, step=DAY)]),
        strat,
        initial_cash=100_000,
        risk=RiskLimits(daily_loss_limit=500),
    )
    result = engine.run()
    rejected = strat.rejected()
    assert set(rejected) == {"add", "flip"}
    # day 2 started at 100,000 (the previous close's equity) and closed at 99,000
    assert rejected["add"] == (
        "risk: daily_loss_limit: equity fell to 99,000.00, 1,000.00 below the day's start "
        "100,000.00 (limit 500.00); until the next UTC day only orders that reduce a position "
        "pass"
    )
    # the trim only reduces the position; the flip, after the pending trim, could go short
    assert strat.statuses_at_submit["trim"] is OrderStatus.ACCEPTED
    assert rejected["flip"].startswith("risk: daily_loss_limit:")
    # next day: its start is the equity after day 2 (99,000), the halt is lifted
    assert strat.statuses_at_submit["next-day"] is OrderStatus.ACCEPTED
    assert engine.risk is not None and not engine.risk.halted
    assert engine.risk.start_equity == pytest.approx(99_000.0)
    assert [f.qty for f in result.fills] == [100, 50, 10]


def test_replace_is_risk_checked_and_a_refusal_keeps_the_old_order() -> None:
    class Replacer(Strategy):
        def on_bar(self, ctx: Context, bar: Bar) -> None:
            if not hasattr(self, "resting"):
                self.resting = ctx.buy("X", 10, type="limit", limit_price=50.0)
                self.small = ctx.replace(self.resting, limit_price=60.0)  # 600: fine
                self.big = ctx.replace(self.small, qty=20)  # 20 x 60 = 1,200 > 1,000

    strat = Replacer()
    engine = SyncExecutionEngine(
        BarFeed([series("X", [100, 100, 100])]),
        strat,
        risk=RiskLimits(max_order_notional=1_000, max_open_orders=1),  # a replace adds none
    )
    engine.run()
    assert strat.resting.status is OrderStatus.REPLACED
    assert strat.big.status is OrderStatus.REJECTED
    assert strat.big.reject_reason is not None
    assert strat.big.reject_reason.startswith("risk: max_order_notional:")
    assert strat.small.status is OrderStatus.ACCEPTED
    assert strat.small.replaced_by is None


def test_max_position_counts_same_side_open_orders_only() -> None:
    class Scaler(Strategy):
        def on_bar(self, ctx: Context, bar: Bar) -> None:
            self.i = getattr(self, "i", -1) + 1
            if self.i == 0:
                ctx.buy("X", 50)  # fills at bar 1's open
            elif self.i == 1:
                self.target = ctx.sell("X", 50, type="limit", limit_price=500.0)  # rests
                self.rest = ctx.buy("X", 5, type="limit", limit_price=10.0)  # rests
                self.add = ctx.buy("X", 5)  # 50 held + 5 resting + 5 = 60: at the limit
                self.more = ctx.buy("X", 1)  # 61
                self.bigger = ctx.replace(self.rest, qty=6)  # 50 + 5 + 6 = 61 (not 66)
                # the replaced order is not pending (same size; a replace must change something)
                self.same = ctx.replace(self.add, qty=5, tif="day")

    strat = Scaler()
    SyncExecutionEngine(
        BarFeed([series("X", [100, 100, 100])]), strat, risk=RiskLimits(max_position=60)
    ).run()
    assert strat.target.status is OrderStatus.ACCEPTED
    assert strat.add.status is OrderStatus.REPLACED
    assert strat.same.status is not OrderStatus.REJECTED
    assert strat.more.status is OrderStatus.REJECTED
    assert strat.more.reject_reason == (
        "risk: max_position: X position could reach 61, size 61 > limit 60 "
        "(held 50, open buy orders 10, this order 1)"
    )
    assert strat.bigger.status is OrderStatus.REJECTED
    assert strat.bigger.reject_reason is not None
    assert "could reach 61" in strat.bigger.reject_reason


class Counting(RiskManager):
    """A RiskManager that logs the engine's observe calls."""

    def __init__(self, limits: RiskLimits) -> None:
        super().__init__(limits)
        self.calls: list[tuple[int, float]] = []

    def observe(self, now: int, equity: float) -> None:
        self.calls.append((now, equity))
        super().observe(now, equity)


def two_symbols() -> BarFeed:
    return BarFeed([series("A", [10, 11, 12]), series("B", [20, 21, 22])])


def test_observe_once_per_timestamp_before_matching() -> None:
    rm = Counting(RiskLimits(daily_loss_limit=1_000))

    class Hold(Strategy):
        def on_start(self, ctx: Context) -> None:
            ctx.buy("A", 100)  # fills at A's first open, 10

    engine = SyncExecutionEngine(two_symbols(), Hold(), initial_cash=10_000, risk=rm)
    result = engine.run(progress=lambda done, total: None)  # one bar per chunk
    assert engine.risk is rm and engine.manager.risk is rm
    assert [t for t, _ in rm.calls] == [T0, T0 + MINUTE, T0 + 2 * MINUTE]
    # each observation is the equity before that timestamp's bars: the previous point's
    assert [e for _, e in rm.calls] == [10_000, *result.equity[:-1]]


def test_observe_once_per_timestamp_in_a_stream() -> None:
    rm = Counting(RiskLimits(max_open_orders=5))
    bars = [
        Bar("A", T0, 10, 11, 9, 10, 100),
        Bar("B", T0, 20, 21, 19, 20, 100),
        Bar("A", T0 + MINUTE, 10, 11, 9, 10, 100),
        Bar("B", T0, 20, 21, 19, 20, 100),  # a repeat: skipped
        Bar("B", T0 + MINUTE, 20, 21, 19, 20, 100),
    ]
    SyncExecutionEngine(bars, Strategy(), symbols=["A", "B"], risk=rm).run()
    assert [t for t, _ in rm.calls] == [T0, T0 + MINUTE]


def test_no_risk_by_default_and_limits_are_wrapped() -> None:
    plain = SyncExecutionEngine(two_symbols(), Strategy())
    assert plain.risk is None and plain.manager.risk is None
    wrapped = SyncExecutionEngine(two_symbols(), Strategy(), risk=RiskLimits(max_open_orders=2))
    assert isinstance(wrapped.risk, RiskManager)
    assert wrapped.risk.limits.max_open_orders == 2


def test_bad_risk_argument() -> None:
    with pytest.raises(ConfigError) as info:
        SyncExecutionEngine(two_symbols(), Strategy(), risk={"max_open_orders": 2})  # type: ignore[arg-type]
    assert info.value.field == "risk"
    assert info.value.value == "dict"
