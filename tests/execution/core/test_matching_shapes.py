"""The matcher on varied bar shapes, computed by hand along the assumed intrabar path.

Up bars (close >= open) go open -> low -> high -> close, down bars open -> high -> low -> close.
Each case names the shape it exercises: gaps through both stop and limit, stop == limit, touches
exactly at the high or the low, a limit reached only on the last leg, trailing stops with
``trail_percent`` on both sides (the stop level asserted), and where on the path linked exits
trade (``touch_point``).
"""

from __future__ import annotations

import pytest

from tradeloop.execution.core.matching import match, path, touch_point
from tradeloop.execution.types import Order, OrderSide, OrderType

BUY, SELL = OrderSide.BUY, OrderSide.SELL
MKT, LMT, STP, STL, TRL = (
    OrderType.MARKET,
    OrderType.LIMIT,
    OrderType.STOP,
    OrderType.STOP_LIMIT,
    OrderType.TRAILING_STOP,
)
UP = (100.0, 105.0, 95.0, 101.0)  # path 100 -> 95 -> 105 -> 101
DOWN = (100.0, 105.0, 95.0, 96.0)  # path 100 -> 105 -> 95 -> 96


def order(side: OrderSide, type: OrderType, **kw: float) -> Order:
    return Order("o1", "X", side, 10, type, **kw)  # type: ignore[arg-type]


# -- limit and stop: exact touches ------------------------------------------------------------


def test_sell_limit_touched_exactly_at_the_high_fills_at_the_limit() -> None:
    assert match(order(SELL, LMT, limit_price=105.0), *UP) == 105.0
    assert match(order(SELL, LMT, limit_price=105.01), *UP) is None


def test_buy_stop_touched_exactly_at_the_high_triggers_at_the_stop() -> None:
    o = order(BUY, STP, stop_price=105.0)
    assert match(o, *DOWN) == 105.0
    assert o.triggered


def test_sell_stop_touched_exactly_at_the_low_triggers_at_the_stop() -> None:
    o = order(SELL, STP, stop_price=95.0)
    assert match(o, *UP) == 95.0
    assert o.triggered
    assert match(order(SELL, STP, stop_price=94.99), *UP) is None


def test_a_stop_that_does_not_trigger_stays_untriggered_and_waits() -> None:
    o = order(BUY, STP, stop_price=106.0)
    assert match(o, *UP) is None
    assert not o.triggered
    assert match(o, 104, 107, 103, 106) == 106.0  # the next bar reaches it


# -- stop-limit -------------------------------------------------------------------------------


def test_buy_stop_limit_gap_through_stop_and_limit_fills_at_the_limit_on_the_first_leg() -> None:
    # opens 100 above stop 99 and limit 98 (triggered at the open, beyond the limit); the first
    # leg falls 100 -> 95 through 98
    o = order(BUY, STL, stop_price=99.0, limit_price=98.0)
    assert match(o, *UP) == 98.0
    assert o.triggered


def test_buy_stop_limit_stop_at_the_open_limit_below_fills_on_the_first_leg() -> None:
    o = order(BUY, STL, stop_price=100.0, limit_price=98.0)
    assert match(o, *UP) == 98.0


def test_sell_stop_limit_gap_down_through_both_then_a_rise_to_the_limit() -> None:
    # opens 95 below stop 97 and limit 96; up bar 95 -> 94 -> 99 -> 98 comes back to 96
    o = order(SELL, STL, stop_price=97.0, limit_price=96.0)
    assert match(o, 95, 99, 94, 98) == 96.0
    # same gap, the bar never comes back up to the limit: triggered, no fill
    o2 = order(SELL, STL, stop_price=97.0, limit_price=96.0)
    assert match(o2, 95, 95.5, 90, 91) is None
    assert o2.triggered


def test_sell_stop_limit_open_exactly_at_the_stop_fills_at_the_open() -> None:
    o = order(SELL, STL, stop_price=100.0, limit_price=99.0)
    assert match(o, *DOWN) == 100.0


def test_stop_equal_to_limit_fills_at_that_price_when_the_bar_ends_there() -> None:
    # up bar closing at its high: 100 -> 95 -> 105 -> 105; buy stop = limit = 103, triggered on
    # the rise: the trigger price is the limit itself, it fills there (nothing comes back down)
    o = order(BUY, STL, stop_price=103.0, limit_price=103.0)
    assert match(o, 100, 105, 95, 105) == 103.0
    o2 = order(SELL, STL, stop_price=97.0, limit_price=97.0)
    assert match(o2, 100, 100, 95, 95) == 97.0  # down bar closing at its low


def test_buy_stop_reached_only_on_the_rise_of_a_bar_closing_at_its_high() -> None:
    # the rise 95 -> 105 is the only leg through 104.5: the stop triggers there
    o = order(BUY, STL, stop_price=104.5, limit_price=104.5)
    assert match(o, 100, 105, 95, 105) == 104.5


def test_sell_stop_limit_limit_reached_only_on_the_last_leg() -> None:
    # down bar 100 -> 101 -> 90 -> 95: the stop 94 triggers on the fall (below the limit 95);
    # only the last leg 90 -> 95 comes back up to the limit
    o = order(SELL, STL, stop_price=94.0, limit_price=95.0)
    assert match(o, 100, 101, 90, 95) == 95.0
    o2 = order(SELL, STL, stop_price=94.0, limit_price=95.5)  # the last leg stops short of it
    assert match(o2, 100, 101, 90, 95) is None
    assert o2.triggered


def test_sell_stop_limit_limit_touched_exactly_at_the_high_after_the_trigger() -> None:
    # up bar 100 -> 95 -> 105 -> 101: stop 97 triggers on the way down, the limit 105 is met
    # exactly at the high
    o = order(SELL, STL, stop_price=97.0, limit_price=105.0)
    assert match(o, *UP) == 105.0


def test_a_triggered_stop_limit_on_a_later_bar_is_a_limit_order() -> None:
    o = order(SELL, STL, stop_price=97.0, limit_price=98.0)
    o.triggered = True
    assert match(o, 96, 99, 95.5, 98.5) == 98.0  # reaches 98 on the way up
    o2 = order(SELL, STL, stop_price=97.0, limit_price=98.0)
    o2.triggered = True
    assert match(o2, 96, 97.5, 95, 97) is None  # never back at 98
    o3 = order(BUY, STL, stop_price=103.0, limit_price=102.0)
    o3.triggered = True
    assert match(o3, 101, 104, 100, 103) == 101.0  # opens below the buy limit: the open


# -- trailing stops ---------------------------------------------------------------------------


def test_sell_trailing_percent_trails_the_high_and_fills_at_the_stop() -> None:
    o = order(SELL, TRL, trail_percent=10.0)
    o.trail_ref = 100.0
    # up bar 100 -> 99 -> 110 -> 108: the high 110 moves the stop to 99; the close stays above
    assert match(o, 100, 110, 99, 108) is None
    assert o.trail_ref == 110.0
    assert o.stop_price == pytest.approx(99.0)
    # down bar 108 -> 112 -> 95 -> 96: the stop moves to 100.8 at 112, hit on the fall
    assert match(o, 108, 112, 95, 96) == pytest.approx(100.8)
    assert o.stop_price == pytest.approx(100.8)
    assert o.trail_ref == 112.0
    assert o.triggered


def test_buy_trailing_percent_trails_the_low_and_fills_at_the_stop() -> None:
    o = order(BUY, TRL, trail_percent=10.0)
    o.trail_ref = 100.0
    # down bar 100 -> 101 -> 90 -> 92: the low 90 moves the stop to 99; the close is below
    assert match(o, 100, 101, 90, 92) is None
    assert o.trail_ref == 90.0
    assert o.stop_price == pytest.approx(99.0)
    # up bar 92 -> 91 -> 100 -> 99.5: 91 is no new low, the stop stays 99, hit on the rise
    assert match(o, 92, 100, 91, 99.5) == pytest.approx(99.0)
    assert o.trail_ref == 90.0
    assert o.stop_price == pytest.approx(99.0)


def test_trailing_percent_gap_through_the_stop_fills_at_the_open_on_both_sides() -> None:
    sell = order(SELL, TRL, trail_percent=5.0)
    sell.trail_ref = 100.0  # stop 95
    assert match(sell, 94, 96, 93, 95) == 94.0
    assert sell.stop_price == pytest.approx(95.0)
    buy = order(BUY, TRL, trail_percent=5.0)
    buy.trail_ref = 100.0  # stop 105
    assert match(buy, 106, 107, 104, 105) == 106.0
    assert buy.stop_price == pytest.approx(105.0)


def test_trailing_stop_open_exactly_at_the_stop_fills_at_the_open() -> None:
    # the stop is 95; the bar opens there and only rises: filled at the open, not missed
    o = order(SELL, TRL, trail_price=5.0)
    o.trail_ref = 100.0
    assert match(o, 95, 99, 95, 97) == 95.0
    assert o.stop_price == 95.0
    b = order(BUY, TRL, trail_price=5.0)
    b.trail_ref = 100.0
    assert match(b, 105, 105, 101, 102) == 105.0
    assert b.stop_price == 105.0


def test_trailing_stop_touched_exactly_at_the_low_and_the_high() -> None:
    # sell: down bar 99 -> 100 -> 95 -> 96, the reference stays 100, stop 95 = the low
    o = order(SELL, TRL, trail_price=5.0)
    o.trail_ref = 100.0
    assert match(o, 99, 100, 95, 96) == 95.0
    assert (o.trail_ref, o.stop_price) == (100.0, 95.0)
    # buy: up bar 101 -> 100 -> 105 -> 104, the reference stays 100, stop 105 = the high
    b = order(BUY, TRL, trail_price=5.0)
    b.trail_ref = 100.0
    assert match(b, 101, 105, 100, 104) == 105.0
    assert (b.trail_ref, b.stop_price) == (100.0, 105.0)


def test_trailing_stop_without_a_reference_trails_from_the_open() -> None:
    o = order(SELL, TRL, trail_price=2.0)
    assert match(o, 50, 51, 49.5, 50.5) is None  # ref 51 after the high, stop 49
    assert (o.trail_ref, o.stop_price) == (51.0, 49.0)
    b = order(BUY, TRL, trail_percent=50.0)
    assert match(b, 10, 11, 9, 10.5) is None  # ref 9 at the low, stop 13.5
    assert (b.trail_ref, b.stop_price) == (9.0, pytest.approx(13.5))


def test_a_fired_trailing_stop_is_a_market_order_for_its_remainder() -> None:
    o = order(SELL, TRL, trail_price=5.0)
    o.trail_ref = 100.0
    assert match(o, 94, 96, 93, 95) == 94.0
    assert match(o, 120, 121, 119, 120) == 120.0  # far above the old stop: the open


# -- where linked exits trade: touch_point -----------------------------------------------------


@pytest.mark.parametrize(
    ("side", "type", "kw", "bar", "price", "expected"),
    [
        # a fill at the open is at 0, whatever the order
        (SELL, LMT, {"limit_price": 90.0}, UP, 100.0, 0.0),
        # buy limit 98 on the first leg 100 -> 95: 2/5 of the way
        (BUY, LMT, {"limit_price": 98.0}, UP, 98.0, 0.4),
        # sell limit 103 on the second leg 95 -> 105: 1 + 8/10
        (SELL, LMT, {"limit_price": 103.0}, UP, 103.0, 1.8),
        # sell limit 103 on a down bar: the first leg 100 -> 105, 3/5
        (SELL, LMT, {"limit_price": 103.0}, DOWN, 103.0, 0.6),
        # buy limit 98 on a down bar: the second leg 105 -> 95, 1 + 7/10
        (BUY, LMT, {"limit_price": 98.0}, DOWN, 98.0, 1.7),
        # sell stop 97 falls through on the first leg of an up bar: 3/5
        (SELL, STP, {"stop_price": 97.0}, UP, 97.0, 0.6),
        # sell stop 97 on a down bar: the fall 105 -> 95, 1 + 8/10
        (SELL, STP, {"stop_price": 97.0}, DOWN, 97.0, 1.8),
        # buy stop 103 on an up bar: the rise 95 -> 105, 1 + 8/10
        (BUY, STP, {"stop_price": 103.0}, UP, 103.0, 1.8),
        # a stop-limit counts from its trigger (stop 97 at 0.6), not where its limit 98 is met
        (SELL, STL, {"stop_price": 97.0, "limit_price": 98.0}, UP, 98.0, 0.6),
        # only the last leg: sell limit 100.5 on 99 -> 95 -> 100 -> 101, met on 100 -> 101
        (SELL, LMT, {"limit_price": 100.5}, (99.0, 100.0, 95.0, 101.0), 100.5, 2.5),
        # a flat leg (open = low): the stop at the open is met at once
        (
            BUY,
            STL,
            {"stop_price": 100.0, "limit_price": 99.0},
            (100.0, 105.0, 100.0, 101.0),
            99.0,
            0.0,
        ),
    ],
)
def test_touch_point(
    side: OrderSide,
    type: OrderType,
    kw: dict[str, float],
    bar: tuple[float, float, float, float],
    price: float,
    expected: float,
) -> None:
    assert touch_point(order(side, type, **kw), price, *bar) == pytest.approx(expected)


def test_touch_point_of_a_level_the_path_never_reaches_is_the_close() -> None:
    # a stop-limit that triggered on an earlier bar, taken by its stop (not triggered=True)
    o = order(SELL, STL, stop_price=97.0, limit_price=98.0)
    assert touch_point(o, 98.0, 96, 99, 95.5, 98.5) == 3.0


def test_touch_point_of_a_stop_limit_triggered_earlier_is_its_limit() -> None:
    # up bar 96 -> 95.5 -> 99 -> 98.5: as a sell limit 98 it is met on the rise, 1 + 2.5/3.5
    o = order(SELL, STL, stop_price=97.0, limit_price=98.0)
    assert touch_point(o, 98.0, 96, 99, 95.5, 98.5, triggered=True) == pytest.approx(1 + 2.5 / 3.5)
    b = order(BUY, STL, stop_price=103.0, limit_price=102.0)
    assert touch_point(b, 102.0, 104, 105, 101, 101.5, triggered=True) == pytest.approx(1 + 3 / 4)


def test_path_of_up_and_down_bars() -> None:
    assert path(*UP) == (100.0, 95.0, 105.0, 101.0)
    assert path(*DOWN) == (100.0, 105.0, 95.0, 96.0)


@pytest.mark.parametrize("side", [BUY, SELL])
def test_market_is_the_open_on_any_shape(side: OrderSide) -> None:
    for bar in (UP, DOWN, (7.0, 7.0, 7.0, 7.0)):
        assert match(order(side, MKT), *bar) == bar[0]


def test_sell_stop_limit_stop_exactly_at_the_low() -> None:
    o = order(SELL, STL, stop_price=95.0, limit_price=94.0)
    assert match(o, *UP) == 95.0  # triggered at the low itself, within the limit


def test_sell_stop_limit_stop_at_the_open_then_a_rise_to_the_limit() -> None:
    # down bar 100 -> 105 -> 95 -> 96: triggered at the open (below its limit 102); the rise
    # that follows reaches the limit on the first leg
    o = order(SELL, STL, stop_price=100.0, limit_price=102.0)
    assert match(o, *DOWN) == 102.0


def test_trailing_stop_open_at_the_stop_fills_there_before_a_new_high_can_move_it() -> None:
    # stop 95; the bar opens at 95, then makes a new high 101: the order traded at the open
    o = order(SELL, TRL, trail_price=5.0)
    o.trail_ref = 100.0
    assert match(o, 95, 101, 90, 92) == 95.0
    b = order(BUY, TRL, trail_price=5.0)
    b.trail_ref = 100.0  # stop 105; opens there, then a new low 99
    assert match(b, 105, 110, 99, 108) == 105.0
