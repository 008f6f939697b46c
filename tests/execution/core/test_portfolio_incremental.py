"""Incremental account figures: market value, exposure and buying-power reservations.

The portfolio keeps ``market_value`` and ``gross_exposure`` as running sums, the exchange keeps
what open orders reserve per symbol (:class:`Reservations`) and the book counts its open orders,
so a fill, a submission and a mark cost O(1) in the number of positions and open orders. The
property tests replay random sequences of submissions (every order type and class), cancels,
replaces, bars (fills, partial fills, flips) and marks, and compare every incremental figure with
a full recomputation after each step. The cost tests are structural: they count the positions
and orders a fill or a submission looks at, with many other symbols in the book.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeloop.errors import InvalidOrderError
from tradeloop.execution.core.book import OrderBook
from tradeloop.execution.core.costs import PerShareCommission
from tradeloop.execution.core.exchange import SimulatedExchange
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.core.risk import RiskLimits, RiskManager, risk_reason
from tradeloop.execution.types import Order, OrderSide, OrderType, Position

BUY, SELL = OrderSide.BUY, OrderSide.SELL
SYMBOLS = ("A", "B", "C", "D")
MIN = 60_000_000_000
T0 = 19_000 * 86_400_000_000_000


def close(a: float, b: float, scale: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * max(1.0, scale))


def full_values(pf: Portfolio) -> tuple[float, float]:
    mv = math.fsum(p.qty * p.last_price for p in pf.positions.values())
    gross = math.fsum(abs(p.qty) * p.last_price for p in pf.positions.values())
    return mv, gross


def check_portfolio(pf: Portfolio) -> None:
    mv, gross = full_values(pf)
    scale = gross + abs(pf.cash)
    assert close(pf.market_value, mv, scale), (pf.market_value, mv)
    assert close(pf.gross_exposure, gross, scale), (pf.gross_exposure, gross)
    assert close(pf.equity, pf.cash + mv, scale)


def check_exchange(ex: SimulatedExchange) -> None:
    pf = ex.portfolio
    book = ex.book
    check_portfolio(pf)
    assert book.open_count == sum(len(b) for b in book.open.values())
    assert all(book.open.values()), "a symbol with no open order keeps no bucket"
    pending, orders = book.commitments()
    for sym in SYMBOLS:
        assert book.commitments_of(sym)[0] == pending.get(sym, 0.0)
    full = pf.committed(orders, ex.last_prices)
    scale = full + pf.gross_exposure + abs(pf.cash)
    assert close(ex.reservations.reserved(), full, scale), (ex.reservations.reserved(), full)
    for o in orders[:3]:  # leaving one order out (a replace)
        _, others = book.commitments(ignore=o)
        want = pf.committed(others, ex.last_prices)
        assert close(ex.reservations.reserved(o), want, scale)


# -- a random trading session ------------------------------------------------------------------

prices = st.floats(50.0, 150.0, allow_nan=False).map(lambda x: round(x, 2))
qtys = st.integers(1, 40).map(float)
symbols = st.sampled_from(SYMBOLS)

submit_op = st.tuples(
    st.just("submit"),
    symbols,
    st.sampled_from([BUY, SELL]),
    qtys,
    st.sampled_from(["market", "limit", "stop", "stop_limit", "trailing_stop"]),
    st.sampled_from(["simple", "simple", "bracket", "oto", "oco"]),
    st.floats(0.9, 1.1),
)
bar_op = st.tuples(
    st.just("bar"), symbols, prices, st.floats(0.0, 0.03), st.booleans(), st.integers(5, 200)
)
cancel_op = st.tuples(st.just("cancel"), st.integers(0, 50))
replace_op = st.tuples(st.just("replace"), st.integers(0, 50), qtys)
mark_op = st.tuples(st.just("mark"), symbols, prices)
session = st.lists(
    st.one_of(submit_op, bar_op, bar_op, cancel_op, replace_op, mark_op), max_size=60
)


def submit(ex: SimulatedExchange, op: tuple[Any, ...], now: int) -> None:
    _, sym, side, qty, kind, cls, k = op
    ref = ex.last_prices.get(sym, 100.0)
    up = 1.0 if side is BUY else -1.0
    params: dict[str, Any] = {}
    if kind == "limit":
        params["limit_price"] = round(ref * k, 2)
    elif kind in ("stop", "stop_limit"):
        params["stop_price"] = round(ref * (1.0 + up * abs(k - 1.0)), 2)
        if kind == "stop_limit":
            params["limit_price"] = round(params["stop_price"] * (1.0 + up * 0.01), 2)
    elif kind == "trailing_stop":
        params["trail_percent"] = 1.0 + abs(k - 1.0) * 10
    if cls in ("bracket", "oto"):
        kind, params = "market", {}
        params["stop_loss"] = {"stop_price": round(ref * (1.0 - up * 0.05), 2)}
        if cls == "bracket":
            params["take_profit"] = {"limit_price": round(ref * (1.0 + up * 0.05), 2)}
    elif cls == "oco":
        held = ex.portfolio.qty(sym)
        if held == 0.0:
            return
        side = SELL if held > 0 else BUY
        up = 1.0 if side is BUY else -1.0
        qty = min(qty, abs(held))
        kind = "limit"
        params = {
            "limit_price": round(ref * (1.0 - up * 0.03), 2),
            "stop_loss": {"stop_price": round(ref * (1.0 + up * 0.03), 2)},
        }
    with contextlib.suppress(InvalidOrderError):  # a combination the validator refuses
        ex.submit(sym, side, qty, kind, now=now, order_class=cls, **params)


def run_session(ex: SimulatedExchange, ops: list[tuple[Any, ...]]) -> None:
    now = T0
    for op in ops:
        now += MIN
        kind = op[0]
        if kind == "submit":
            submit(ex, op, now)
        elif kind == "bar":
            _, sym, c, spread, up, vol = op
            o = ex.last_prices.get(sym, 100.0)
            h = max(o, c) * (1.0 + spread)
            lo = min(o, c) * (1.0 - spread)
            if not up:
                o, c = c, o
            ex.on_bar(sym, now, o, h, lo, c, float(vol))
        elif kind == "cancel":
            open_ = ex.book.open_orders()
            if open_:
                ex.cancel(open_[op[1] % len(open_)], now)
        elif kind == "replace":
            simple = [o for o in ex.book.open_orders() if not o.legs and o.parent_id is None]
            if simple:
                old = simple[op[1] % len(simple)]
                with contextlib.suppress(InvalidOrderError):
                    ex.replace(old, now, qty=op[2] + old.remaining_qty)
        else:
            _, sym, c = op
            ex.portfolio.mark(sym, c)
            ex.last_prices[sym] = c
            ex.reservations.touch(sym)  # what a venue does when its price moves off a bar
        check_exchange(ex)


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(session, st.sampled_from([None, 0.05]), st.booleans())
def test_property_incremental_figures_equal_a_full_recomputation(
    ops: list[tuple[Any, ...]], participation: float | None, short: bool
) -> None:
    pf = Portfolio(20_000.0, leverage=2.0, allow_short=short)
    ex = SimulatedExchange(
        pf,
        symbols=SYMBOLS,
        commission=PerShareCommission(0.01, minimum=1.0),
        participation_rate=participation,
        risk=RiskManager(RiskLimits(max_open_orders=25)),
    )
    run_session(ex, ops)


fill_op = st.tuples(
    st.just("fill"), symbols, st.sampled_from([BUY, SELL]), st.floats(0.001, 50.0), prices
)
seed_op = st.tuples(st.just("seed"), symbols, st.floats(-50.0, 50.0), prices, prices)
pf_ops = st.lists(st.one_of(fill_op, fill_op, fill_op, mark_op, seed_op), max_size=80)


@PROPERTY
@given(pf_ops)
def test_property_portfolio_running_sums(ops: list[tuple[Any, ...]]) -> None:
    """Fills of any size (partial closes, flips through zero, dust), marks and seeded
    positions: the running sums stay the sums over the positions."""
    pf = Portfolio(100_000.0)
    for ts, op in enumerate(ops):
        if op[0] == "fill":
            _, sym, side, qty, px = op
            pf.apply_fill(sym, side, qty, px, 0.5, ts)
        elif op[0] == "mark":
            pf.mark(op[1], op[2])
        else:
            _, sym, qty, avg, last = op
            pf.seed_position(sym, qty, avg, last)
        check_portfolio(pf)


def test_one_position_is_summed_exactly_after_every_fill() -> None:
    # as before the running sums: single-symbol results are bit-for-bit what they were
    pf = Portfolio(10_000.0)
    pf.apply_fill("X", BUY, 3, 0.1, 0.0, 1)
    pf.mark("X", 0.7)
    pf.apply_fill("X", BUY, 7, 0.3, 0.0, 2)
    assert pf.market_value == 10 * 0.3 and pf.gross_exposure == 10 * 0.3


def test_drift_is_bounded_over_many_fills() -> None:
    pf = Portfolio(1e9)
    for i in range(20_000):
        sym = SYMBOLS[i % 4]
        side = BUY if (i * 7919) % 3 else SELL
        pf.apply_fill(sym, side, 1.0 + (i % 13) * 0.37, 100.0 + (i % 101) * 0.013, 0.0, i)
        pf.mark(SYMBOLS[(i + 1) % 4], 100.0 + (i % 37) * 0.11)
    mv, gross = full_values(pf)
    assert abs(pf.market_value - mv) <= 1e-12 * gross
    assert abs(pf.gross_exposure - gross) <= 1e-12 * gross


def test_reservations_are_zero_once_no_order_is_open() -> None:
    pf = Portfolio(1e6)
    ex = SimulatedExchange(pf, symbols=SYMBOLS, fractional=True)
    for i, sym in enumerate(SYMBOLS):
        ex.last_prices[sym] = 10.0 + i / 3
        ex.submit(sym, BUY, 3.0 + i / 7, "limit", limit_price=9.0 + i / 3, now=T0)
    assert ex.reservations.reserved() > 0.0
    for o in ex.book.open_orders():
        ex.cancel(o, T0 + 1)
    assert ex.reservations.reserved() == 0.0  # exactly: no drift left behind


def test_reservations_follow_the_price_of_a_market_order() -> None:
    pf = Portfolio(1e6)
    ex = SimulatedExchange(pf, symbols=SYMBOLS)
    ex.last_prices["A"] = 100.0
    o = ex.submit("A", BUY, 10.0, now=T0)
    assert ex.reservations.reserved() == 1_000.0
    # a bar that fills nothing yet (the order is not eligible): the price moves to its close
    ex.on_bar("A", T0, 100.0, 121.0, 99.0, 120.0, 1e6)
    assert o.is_open
    assert ex.reservations.reserved() == 1_200.0


def test_exchange_made_over_a_book_in_use_counts_what_is_there() -> None:
    pf = Portfolio(1e6)
    pf.seed_position("A", 5.0, 90.0, 100.0)
    ex = SimulatedExchange(pf, symbols=SYMBOLS)
    ex.last_prices["A"] = 100.0
    ex.submit("A", BUY, 10.0, now=T0)
    check_exchange(ex)


# -- cost: what a fill, a submission and a mark look at ----------------------------------------


class CountingDict(dict[str, Any]):
    """A dict that counts the entries its walks visit (values, items, keys, iteration)."""

    visited = 0

    def values(self) -> Any:
        CountingDict.visited += len(self)
        return super().values()

    def items(self) -> Any:
        CountingDict.visited += len(self)
        return super().items()

    def keys(self) -> Any:
        CountingDict.visited += len(self)
        return super().keys()

    def __iter__(self) -> Any:
        CountingDict.visited += len(self)
        return super().__iter__()


@pytest.fixture
def counting() -> Any:
    CountingDict.visited = 0
    yield CountingDict
    CountingDict.visited = 0


WIDE = 2_000


def test_a_fill_does_not_walk_the_other_positions(counting: Any) -> None:
    pf = Portfolio(1e9)
    for i in range(WIDE):
        pf.seed_position(f"S{i}", 10.0, 50.0, 50.0 + i % 7)
    pf.positions = counting(pf.positions)
    fills = 1_000
    for i in range(fills):
        pf.apply_fill("S7", BUY if i % 2 else SELL, 3.0, 50.0 + i % 5, 1.0, i)
        pf.mark("S8", 51.0 + i % 3)
    # an exact sum over every position at most once per WIDE fills: O(1) per fill, amortized
    assert counting.visited <= WIDE
    check_portfolio(pf)


def test_seeding_many_positions_is_linear(counting: Any) -> None:
    pf = Portfolio(1e9)
    pf.positions = counting(pf.positions)
    for i in range(WIDE):
        pf.seed_position(f"S{i}", 1.0, 10.0, 10.0)
    assert counting.visited <= 4 * WIDE  # a full sum each time the book doubles, at most
    check_portfolio(pf)


def wide_exchange(risk: RiskManager | None = None) -> SimulatedExchange:
    """An exchange with one open (resting) buy limit on each of WIDE symbols and a position in
    each."""
    names = tuple(f"S{i}" for i in range(WIDE))
    pf = Portfolio(1e9)
    ex = SimulatedExchange(pf, symbols=names, risk=risk)
    for i, sym in enumerate(names):
        ex.last_prices[sym] = 50.0
        pf.seed_position(sym, 10.0, 50.0, 50.0)
        ex.submit(sym, BUY, 5.0, "limit", limit_price=40.0 + i % 5, now=T0)
    assert ex.book.open_count == WIDE
    ex.reservations.reserved()  # settle what the setup touched
    return ex


def count_opening_qty(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = Portfolio.opening_qty

    def spy(self: Portfolio, *args: Any, **kw: Any) -> float:
        calls[0] += 1
        return real(self, *args, **kw)

    monkeypatch.setattr(Portfolio, "opening_qty", spy)
    return calls


def test_a_submission_does_not_walk_the_other_orders(
    monkeypatch: pytest.MonkeyPatch, counting: Any
) -> None:
    ex = wide_exchange(RiskManager(RiskLimits(max_open_orders=10 * WIDE, max_position=1e6)))
    ex.book.open = counting(ex.book.open)
    ex.portfolio.positions = counting(ex.portfolio.positions)
    calls = count_opening_qty(monkeypatch)

    def forbidden(*args: Any, **kw: Any) -> Any:
        raise AssertionError("a submission walked every open order")

    monkeypatch.setattr(OrderBook, "commitments", forbidden)
    n = 200
    for i in range(n):
        sym = f"S{i % 3}"
        o = ex.submit(sym, BUY, 1.0, "limit", limit_price=45.0, now=T0 + i + 1)
        assert o.status.value == "accepted"
        ex.cancel(o, T0 + i + 1)
    assert counting.visited == 0
    # each submission looks at its own symbol's orders (a couple) only
    assert calls[0] <= n * 6
    monkeypatch.undo()
    check_exchange(ex)


def test_a_bar_of_one_symbol_does_not_walk_the_others(
    monkeypatch: pytest.MonkeyPatch, counting: Any
) -> None:
    ex = wide_exchange()
    ex.book.open = counting(ex.book.open)
    ex.portfolio.positions = counting(ex.portfolio.positions)
    calls = count_opening_qty(monkeypatch)
    for i in range(100):  # bars of one symbol, a fill and a new order on it each time
        now = T0 + (i + 1) * MIN
        ex.on_bar("S1", now, 45.0, 46.0, 30.0, 44.0, 1e6)  # fills S1's limit
        ex.submit("S1", BUY, 5.0, "limit", limit_price=40.0, now=now)
    assert len(ex.fills) == 100
    # at most the one exact re-sum of the positions the amortization allows every WIDE fills
    assert counting.visited <= WIDE
    assert calls[0] <= 100 * 6


def test_risk_counts_open_orders_without_walking_them(counting: Any) -> None:
    ex = wide_exchange()
    ex.book.open = counting(ex.book.open)
    order = Order("x", "S3", BUY, 1.0, OrderType.MARKET)
    reason = risk_reason(
        RiskManager(RiskLimits(max_open_orders=WIDE)),
        order,
        book=ex.book,
        portfolio=ex.portfolio,
        ref_price=50.0,
        now=T0,
    )
    assert reason is not None and f"{WIDE:,} open orders" in reason
    assert counting.visited == 0


def test_positions_are_plain_positions() -> None:
    # the spies above replace the dicts; the real ones stay plain dicts of Position
    pf = Portfolio(1.0)
    pf.apply_fill("X", BUY, 1.0, 1.0, 0.0, 1)
    assert type(pf.positions) is dict and isinstance(pf.positions["X"], Position)
