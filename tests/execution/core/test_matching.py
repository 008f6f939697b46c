"""Every order type against hand-computed fills on one bar (pure matcher, no quantities)."""

from __future__ import annotations

import pytest

from tradeloop.execution.core.matching import match, path
from tradeloop.execution.types import Order, OrderSide, OrderType

BUY, SELL = OrderSide.BUY, OrderSide.SELL


def order(side: OrderSide, type: OrderType, **kw: float) -> Order:
    return Order("o1", "X", side, 10, type, **kw)  # type: ignore[arg-type]


def test_path_up_bar_visits_low_first() -> None:
    assert path(10, 12, 9, 11) == (10, 9, 12, 11)
    assert path(10, 12, 9, 9.5) == (10, 12, 9, 9.5)
    assert path(10, 12, 9, 10) == (10, 9, 12, 10)  # flat close counts as up


@pytest.mark.parametrize("side", [BUY, SELL])
def test_market_fills_at_open(side: OrderSide) -> None:
    assert match(order(side, OrderType.MARKET), 100, 105, 95, 101) == 100


@pytest.mark.parametrize(
    ("side", "limit", "bar", "expected"),
    [
        (BUY, 98.0, (100, 105, 95, 101), 98.0),  # touched intrabar: the limit
        (BUY, 94.0, (100, 105, 95, 101), None),  # never reached
        (BUY, 95.0, (100, 105, 95, 101), 95.0),  # low exactly at the limit
        (BUY, 102.0, (100, 105, 95, 101), 100.0),  # open already better: the open
        (SELL, 103.0, (100, 105, 95, 101), 103.0),
        (SELL, 106.0, (100, 105, 95, 101), None),
        (SELL, 97.0, (100, 105, 95, 101), 100.0),  # gap above the limit: the open
    ],
)
def test_limit(
    side: OrderSide, limit: float, bar: tuple[float, ...], expected: float | None
) -> None:
    assert match(order(side, OrderType.LIMIT, limit_price=limit), *bar) == expected


@pytest.mark.parametrize(
    ("side", "stop", "bar", "expected"),
    [
        (BUY, 103.0, (100, 105, 95, 101), 103.0),  # triggered intrabar at the stop
        (BUY, 106.0, (100, 105, 95, 101), None),
        (BUY, 98.0, (100, 105, 95, 101), 100.0),  # gapped through: the open
        (SELL, 97.0, (100, 105, 95, 101), 97.0),
        (SELL, 94.0, (100, 105, 95, 101), None),
        (SELL, 102.0, (100, 105, 95, 101), 100.0),  # gap down through the stop: the open
    ],
)
def test_stop(side: OrderSide, stop: float, bar: tuple[float, ...], expected: float | None) -> None:
    o = order(side, OrderType.STOP, stop_price=stop)
    assert match(o, *bar) == expected
    assert o.triggered is (expected is not None)


def test_triggered_stop_remainder_is_market_next_bar() -> None:
    o = order(SELL, OrderType.STOP, stop_price=97.0)
    assert match(o, 100, 105, 95, 101) == 97.0
    assert match(o, 99, 100, 98, 99.5) == 99.0  # stop above the whole bar, yet fills at the open


def test_stop_limit_buy_triggers_and_fills_at_stop_within_limit() -> None:
    o = order(BUY, OrderType.STOP_LIMIT, stop_price=103.0, limit_price=104.0)
    assert match(o, 100, 105, 95, 101) == 103.0


def test_stop_limit_buy_gap_above_limit_waits_for_pullback_on_path() -> None:
    # opens 106 above stop 103 and limit 104; down bar path 106 -> 107 -> 103.5 -> 104
    o = order(BUY, OrderType.STOP_LIMIT, stop_price=103.0, limit_price=104.0)
    assert match(o, 106, 107, 103.5, 104) == 104.0


def test_stop_limit_buy_gap_above_limit_no_pullback_stays_triggered() -> None:
    o = order(BUY, OrderType.STOP_LIMIT, stop_price=103.0, limit_price=104.0)
    assert match(o, 106, 108, 105, 107) is None
    assert o.triggered
    # next bar: a plain limit 104 buy; open 104.5, low 103.8 -> fills at the limit
    assert match(o, 104.5, 105, 103.8, 104.9) == 104.0


def test_stop_limit_sell_path_order_matters() -> None:
    # up bar: 100 -> 95 -> 105 -> 101. Sell stop 97 triggers on the way down at 97, limit 96:
    # 97 >= 96 so it fills at 97.
    o = order(SELL, OrderType.STOP_LIMIT, stop_price=97.0, limit_price=96.0)
    assert match(o, 100, 105, 95, 101) == 97.0
    # sell stop 97 limit 98: triggered at 97 (below the limit 98); the path then rises to 105,
    # crossing 98 -> fills at 98.
    o2 = order(SELL, OrderType.STOP_LIMIT, stop_price=97.0, limit_price=98.0)
    assert match(o2, 100, 105, 95, 101) == 98.0
    # same on a down bar 100 -> 105 -> 95 -> 96: after the trigger at 97 the price only falls
    o3 = order(SELL, OrderType.STOP_LIMIT, stop_price=97.0, limit_price=98.0)
    assert match(o3, 100, 105, 95, 96) is None
    assert o3.triggered


def test_stop_limit_not_triggered() -> None:
    o = order(BUY, OrderType.STOP_LIMIT, stop_price=110.0, limit_price=111.0)
    assert match(o, 100, 105, 95, 101) is None
    assert not o.triggered


def test_trailing_stop_sell_amount_trails_the_high() -> None:
    o = order(SELL, OrderType.TRAILING_STOP, trail_price=3.0)
    o.trail_ref = 100.0
    # up bar 100 -> 99 -> 104 -> 103: ref rises to 104, stop 101, close 103 above it
    assert match(o, 100, 104, 99, 103) is None
    assert o.trail_ref == 104.0
    assert o.stop_price == 101.0
    # down bar 103 -> 106 -> 100 -> 100.5: ref 106, stop 103, hit on the way down
    assert match(o, 103, 106, 100, 100.5) == 103.0


def test_trailing_stop_sell_percent_gap_fills_at_open() -> None:
    o = order(SELL, OrderType.TRAILING_STOP, trail_percent=10.0)
    o.trail_ref = 100.0  # stop 90
    assert match(o, 85, 88, 84, 87) == 85.0


def test_trailing_stop_buy_trails_the_low() -> None:
    o = order(BUY, OrderType.TRAILING_STOP, trail_price=2.0)
    o.trail_ref = 100.0
    # down bar 100 -> 100.5 -> 95 -> 96: ref 95, stop 97; close 96 below it
    assert match(o, 100, 100.5, 95, 96) is None
    assert o.stop_price == 97.0
    # up bar 96 -> 95.5 -> 99 -> 98: 95.5 is no new low, the stop stays 97, hit on the way up
    assert match(o, 96, 99, 95.5, 98) == 97.0


def test_trailing_stop_open_above_reference_moves_reference() -> None:
    o = order(SELL, OrderType.TRAILING_STOP, trail_price=5.0)
    o.trail_ref = 100.0
    # opens at 110 (new high); down bar to 104: stop is 105 after the open -> fills at 105
    assert match(o, 110, 110, 104, 104.5) == 105.0
