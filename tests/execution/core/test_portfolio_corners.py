"""Average-cost accounting in the corners, against an independent model.

The generators steer each position into the corners where money is lost: partial closes that leave
a remainder in (0, 1], flips through zero followed by adds on the new side, closes to exactly flat
and re-opens, all with fractional quantities and fees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.types import OrderSide

BUY, SELL = OrderSide.BUY, OrderSide.SELL
CASH = 1_000_000.0


@dataclass
class ModelTrade:
    side: OrderSide
    entry_ts: int
    entry_qty: float = 0.0
    entry_notional: float = 0.0
    exit_qty: float = 0.0
    exit_notional: float = 0.0
    max_qty: float = 0.0
    pnl: float = 0.0
    commission: float = 0.0
    exit_ts: int | None = None


@dataclass
class Model:
    qty: float = 0.0
    avg: float = 0.0
    realized: float = 0.0
    cash: float = CASH
    fees: float = 0.0
    trades: list[ModelTrade] = field(default_factory=list)

    def fill(self, side: OrderSide, q: float, p: float, fee: float, ts: int) -> None:
        s = 1.0 if side is BUY else -1.0
        self.cash -= s * q * p + fee
        self.fees += fee
        new = self.qty + s * q
        if abs(new) < 1e-9:
            new = 0.0
        if self.qty == 0.0 or (self.qty > 0) == (s > 0):  # open or add
            self.avg = (self.avg * abs(self.qty) + p * q) / (abs(self.qty) + q)
            if not self.trades or self.trades[-1].exit_ts is not None:
                self.trades.append(ModelTrade(side, ts))
            t = self.trades[-1]
            t.entry_qty += q
            t.entry_notional += q * p
            t.max_qty = max(t.max_qty, abs(new))
            t.commission += fee
        else:  # reduce, close or flip
            closed = min(q, abs(self.qty))
            pnl = (p - self.avg) * closed * (1.0 if self.qty > 0 else -1.0)
            self.realized += pnl
            t = self.trades[-1]
            t.pnl += pnl
            t.commission += fee * closed / q
            t.exit_qty += closed
            t.exit_notional += closed * p
            if new == 0.0 or (new > 0) != (self.qty > 0):
                t.exit_ts = ts
            if new == 0.0:
                self.avg = 0.0
            elif (new > 0) != (self.qty > 0):
                self.avg = p
                n = ModelTrade(side, ts, abs(new), abs(new) * p, max_qty=abs(new))
                n.commission = fee - fee * closed / q
                self.trades.append(n)
        self.qty = new


prices = st.floats(min_value=0.5, max_value=500.0, allow_nan=False).map(lambda x: round(x, 2))
fees = st.sampled_from([0.0, 0.0, 1.0, 0.37])
remainders = st.floats(min_value=0.001, max_value=1.0)  # what a partial close leaves: (0, 1]
sizes = st.floats(min_value=0.01, max_value=50.0).map(lambda x: round(x, 3))
ACTIONS = ["open", "add", "close_leaving", "flip", "close_all", "reduce"]


def close(a: float, b: float, scale: float = 1.0) -> bool:
    return a == pytest.approx(b, rel=1e-9, abs=1e-9 * max(1.0, scale))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_average_cost_accounting_in_the_corners(data: st.DataObject) -> None:
    pf = Portfolio(CASH)
    m = Model()
    for ts in range(1, data.draw(st.integers(3, 14)) + 1):
        action = data.draw(st.sampled_from(ACTIONS))
        held = m.qty
        side = BUY if held >= 0 else SELL  # the side that adds to the position
        back = SELL if side is BUY else BUY  # the side that reduces it
        if held == 0.0 or action in ("open", "add"):
            if held == 0.0:
                side = data.draw(st.sampled_from([BUY, SELL]))
            trade = (side, data.draw(sizes))
        elif action == "close_leaving" and abs(held) > 1.0:
            trade = (back, abs(held) - data.draw(remainders))  # leaves (0, 1]
        elif action == "flip":
            trade = (back, abs(held) + data.draw(sizes))  # through zero onto the other side
        elif action == "close_all":
            trade = (back, abs(held))
        else:
            trade = (back, abs(held) * data.draw(st.floats(0.1, 0.9)))
        q = trade[1]
        if q <= 0.0:
            continue
        p = data.draw(prices)
        fee = data.draw(fees)
        pf.apply_fill("X", trade[0], q, p, fee, ts)
        m.fill(trade[0], q, p, fee, ts)

        pos = pf.positions["X"]
        scale = CASH
        assert close(pos.qty, m.qty)
        assert close(pos.avg_price, m.avg, 500.0)
        assert close(pf.realized_pnl, m.realized, scale)
        assert close(pos.realized_pnl, m.realized, scale)
        assert close(pf.cash, m.cash, scale)
        assert close(pf.commission_paid, m.fees, scale)
        assert close(pf.market_value, m.qty * p, scale)
        assert close(pf.gross_exposure, abs(m.qty) * p, scale)
        assert len(pf.trades) == len(m.trades)
        for got, want in zip(pf.trades, m.trades, strict=True):
            assert got.side is want.side
            assert got.entry_ts == want.entry_ts
            assert got.exit_ts == want.exit_ts
            assert close(got.entry_price, want.entry_notional / want.entry_qty, 500.0)
            if want.exit_qty:
                assert got.exit_price is not None
                assert close(got.exit_price, want.exit_notional / want.exit_qty, 500.0)
            else:
                assert got.exit_price is None
            assert close(got.max_qty, want.max_qty)
            assert close(got.pnl, want.pnl, scale)
            assert close(got.commission, want.commission, scale)


def test_a_remainder_below_one_share_keeps_the_trade_open_at_its_cost() -> None:
    pf = Portfolio(10_000.0)
    pf.apply_fill("X", BUY, 10, 100.0, 0.0, 1)
    pf.apply_fill("X", SELL, 9.25, 110.0, 0.0, 2)
    assert pf.qty("X") == pytest.approx(0.75)
    assert pf.positions["X"].avg_price == 100.0  # a reduction keeps the average cost
    assert pf.realized_pnl == pytest.approx(92.5)
    (t,) = pf.trades
    assert t.exit_ts is None and t.exit_price == 110.0
    pf.apply_fill("X", SELL, 0.75, 90.0, 0.0, 3)
    assert pf.qty("X") == 0.0 and pf.positions["X"].avg_price == 0.0
    assert t.exit_ts == 3 and t.pnl == pytest.approx(92.5 - 7.5)
    assert t.exit_price == pytest.approx((9.25 * 110 + 0.75 * 90) / 10)


def test_a_flip_then_an_add_averages_from_the_flip_price() -> None:
    pf = Portfolio(10_000.0)
    pf.apply_fill("X", BUY, 10, 100.0, 2.0, 1)
    pf.apply_fill("X", SELL, 15, 110.0, 3.0, 2)  # closes 10 (+100), opens 5 short at 110
    pf.apply_fill("X", SELL, 5, 120.0, 1.0, 3)  # adds: short 10 at 115
    pos = pf.positions["X"]
    assert pos.qty == -10 and pos.avg_price == 115.0
    long, short = pf.trades
    assert (long.side, short.side) == (BUY, SELL)
    assert long.exit_ts == 2 and long.pnl == 100.0 and long.commission == pytest.approx(2.0 + 2.0)
    assert short.entry_ts == 2 and short.exit_ts is None
    assert short.entry_price == 115.0 and short.max_qty == 10
    assert short.commission == pytest.approx(1.0 + 1.0)
    pf.apply_fill("X", BUY, 4, 100.0, 0.0, 4)  # covering 4 of a short at 115 gains 60
    assert pf.realized_pnl == pytest.approx(160.0)
    assert short.pnl == pytest.approx(60.0)


def test_one_position_is_valued_exactly_after_every_fill() -> None:
    # with a single position every fill re-sums exactly: no drift at all, however many fills
    pf = Portfolio(1_000.0)
    for i, (q, p) in enumerate([(0.1, 0.7), (0.2, 3.3), (0.3, 1.1), (0.7, 2.9), (1.3, 0.3)] * 8):
        pf.apply_fill("X", BUY if i % 3 else SELL, q, p, 0.0, i)
        pos = pf.positions["X"]
        assert pf.market_value == pos.qty * pos.last_price
        assert pf.gross_exposure == abs(pos.qty) * pos.last_price
