"""Property tests: random order flow through the whole synchronous engine.

Whatever a strategy does, fills never precede the bar after the decision, terminal orders stay
terminal, fills respect the bar's range and the volume cap, and the books balance.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.execution.core.costs import PercentSlippage, PerShareCommission
from tradeloop.execution.synchronous import SyncExecutionEngine
from tradeloop.execution.types import Bar, Order, OrderStatus
from tradeloop.strategy import Context, Strategy

HOUR = 3_600_000_000_000
T0 = 20_000 * 24 * HOUR

bar_moves = st.lists(
    st.tuples(
        st.floats(-0.05, 0.05),  # open gap vs previous close
        st.floats(-0.05, 0.05),  # close vs open
        st.floats(0, 0.03),  # extra above
        st.floats(0, 0.03),  # extra below
        st.integers(0, 500),  # volume
    ),
    min_size=2,
    max_size=40,
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
    ),
    max_size=60,
)


def make_series(symbol: str, moves: list[tuple[float, float, float, float, int]]) -> SymbolSeries:
    ts, o, h, lo, c, v = [], [], [], [], [], []
    prev = 100.0
    for i, (gap, body, up, down, vol) in enumerate(moves):
        op = prev * (1 + gap)
        cl = op * (1 + body)
        ts.append(T0 + i * 6 * HOUR)  # four bars per day: DAY orders expire along the way
        o.append(op)
        c.append(cl)
        h.append(max(op, cl) * (1 + up))
        lo.append(min(op, cl) * (1 - down))
        v.append(float(vol))
        prev = cl
    return SymbolSeries(symbol, ts, o, h, lo, c, v)


class Random(Strategy):
    def __init__(self, plan: list[tuple[str, str, int, float, str, str]]) -> None:
        super().__init__()
        self.plan = plan

    def on_start(self, ctx: Context) -> None:
        self.step = 0
        self.placed: dict[str, int] = {}
        self.snap: dict[str, OrderStatus] = {}
        self.mine: list[Order] = []

    def on_order_update(self, ctx: Context, order: Order) -> None:
        before = self.snap.get(order.id)
        assert before is None or not before.is_terminal or before == order.status
        self.snap[order.id] = order.status

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        for o in self.mine:  # terminal orders never change
            if self.snap.get(o.id, o.status).is_terminal:
                assert o.status == self.snap[o.id]
        if self.step >= len(self.plan):
            return
        kind, side, qty, off, tif, sym = self.plan[self.step]
        self.step += 1
        ref = bar.close if sym == bar.symbol else (ctx.history(sym, 1) or [bar.close])[0]
        px = round(ref * (1 + off), 4)
        opens = [o for o in self.mine if o.is_open]
        if kind == "cancel":
            if opens:
                ctx.cancel(opens[0])
            return
        if kind == "replace":
            target = next((o for o in opens if o.type.value in ("limit", "stop")), None)
            field = "limit_price" if target and target.type.value == "limit" else "stop_price"
            if target is not None and getattr(target, field) != px:  # a no-change is refused
                new = ctx.replace(target, **{field: px})
                self.mine.append(new)
                self.placed[new.id] = ctx.now
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
        order = ctx.submit_order(sym, side, qty, kind, **kw)  # type: ignore[arg-type]
        self.mine.append(order)
        self.placed[order.id] = ctx.now


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(moves_a=bar_moves, moves_b=bar_moves, plan=actions, rate=st.sampled_from([None, 0.2]))
def test_random_order_flow_keeps_invariants(
    moves_a: list[tuple[float, float, float, float, int]],
    moves_b: list[tuple[float, float, float, float, int]],
    plan: list[tuple[str, str, int, float, str, str]],
    rate: float | None,
) -> None:
    feed = BarFeed([make_series("A", moves_a), make_series("B", moves_b)])
    strat = Random(plan)
    engine = SyncExecutionEngine(
        feed,
        strat,
        initial_cash=50_000,
        commission=PerShareCommission(0.01, minimum=0.5),
        slippage=PercentSlippage(0.001),
        participation_rate=rate,
    )
    result = engine.run()
    pf = engine.portfolio

    bars = {(s, feed[s].ts[i]): i for s in feed.symbols for i in range(len(feed[s]))}
    per_bar: dict[tuple[str, int], float] = {}
    for f in result.fills:
        assert f.ts > strat.placed[f.order_id]  # never on or before the decision's bar
        i = bars[(f.symbol, f.ts)]
        s = feed[f.symbol]
        assert s.low[i] - 1e-9 <= f.price <= s.high[i] + 1e-9
        per_bar[(f.symbol, f.ts)] = per_bar.get((f.symbol, f.ts), 0.0) + f.qty
    if rate is not None:
        for (sym, ts), qty in per_bar.items():
            assert qty <= math.floor(rate * feed[sym].volume[bars[(sym, ts)]]) + 1e-9

    for o in result.orders:
        assert o.filled_qty <= o.qty + 1e-9
        if o.status is OrderStatus.FILLED:
            assert math.isclose(o.filled_qty, o.qty)
        fills = [f for f in result.fills if f.order_id == o.id]
        assert math.isclose(sum(f.qty for f in fills), o.filled_qty, abs_tol=1e-9)
        if o.tif.value in ("ioc", "fok") and o.status.is_open:
            # one bar only: still open means no later bar of its symbol ever came
            assert o.filled_qty == 0
            assert o.eligible_after >= feed[o.symbol].ts[-1]
        if o.tif.value == "fok":
            assert o.filled_qty in (0.0, o.qty)

    scale = 1.0 + abs(pf.cash) + pf.gross_exposure
    marked = pf.cash + sum(p.qty * p.last_price for p in pf.positions.values())
    assert math.isclose(result.final_equity, marked, rel_tol=1e-9, abs_tol=1e-7 * scale)
    identity = pf.initial_cash + pf.realized_pnl + pf.unrealized_pnl - pf.commission_paid
    assert math.isclose(result.final_equity, identity, rel_tol=1e-9, abs_tol=1e-7 * scale)
    assert math.isclose(sum(f.commission for f in result.fills), pf.commission_paid, abs_tol=1e-9)
