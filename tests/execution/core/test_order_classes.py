"""Order classes in the core: bracket, oto and oco orders with Alpaca's semantics.

The simulated exchange (the backtest's order manager, the simulated broker's and the loopback
venue's matching) activates exit legs by the entry's fill, sizes them to what filled, lets
linked exits cancel each other, never lets them flip a position or reserve buying power.
"""

from __future__ import annotations

from typing import Any

import pytest

from tradeloop.errors import InvalidOrderError
from tradeloop.execution.asynchronous.brokers.alpaca.validation import AlpacaOrderValidator
from tradeloop.execution.core.book import OrderBook, class_params
from tradeloop.execution.core.matching import touch_point
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.synchronous import SyncOrderManager
from tradeloop.execution.types import (
    Fill,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
)

S = OrderStatus
DAY_NS = 86_400_000_000_000
T0 = 19_000 * DAY_NS  # a UTC midnight
MIN = 60_000_000_000


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, object]] = []

    def on_fill(self, fill: Fill) -> None:
        self.events.append(("fill", fill.order_id, (fill.qty, fill.price, fill.position_qty)))

    def on_order_update(self, order: Order) -> None:
        self.events.append(("order", order.id, order.status))


def manager(cash: float = 1_000_000.0, **kw: Any) -> tuple[SyncOrderManager, Recorder]:
    rec = Recorder()
    pf = Portfolio(cash, allow_short=bool(kw.pop("allow_short", True)))
    m = SyncOrderManager(pf, symbols=("X", "Y"), listener=rec, **kw)
    m.last_prices["X"] = 100.0
    m.last_prices["Y"] = 50.0
    return m, rec


def bar(
    m: SyncOrderManager, ts: int, o: float, h: float, lo: float, c: float, v: float = 1e9
) -> None:
    m.process_bar("X", ts, o, h, lo, c, v)
    m.portfolio.mark("X", c)
    m.last_prices["X"] = c


def bracket(m: SyncOrderManager, qty: float = 10, **kw: Any) -> Order:
    params: dict[str, Any] = {
        "order_class": "bracket",
        "take_profit": {"limit_price": 110.0},
        "stop_loss": {"stop_price": 95.0},
        "now": T0,
    }
    params.update(kw)
    return m.submit("X", "buy", qty, params.pop("type", "market"), **params)


def hold(m: SyncOrderManager, qty: float) -> None:
    """Give the account a position in X (a market order filled at 100)."""
    m.submit("X", "buy" if qty > 0 else "sell", abs(qty), now=T0 - 2 * MIN)
    bar(m, T0 - MIN, 100, 100, 100, 100)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kw", "field", "value", "words"),
    [
        ({"order_class": "triple"}, "order_class", "triple", "must be one of"),
        ({"order_class": "simple"}, "take_profit", {"limit_price": 110.0}, "only allowed"),
        ({"stop_loss": None}, "stop_loss", None, "required for order_class 'bracket'"),
        ({"take_profit": None}, "take_profit", None, "required"),
        ({"tif": "ioc"}, "tif", "ioc", "bracket orders must be 'day' or 'gtc'"),
        ({"tif": "fok"}, "tif", "fok", "must be 'day' or 'gtc'"),
        ({"take_profit": {"limit_price": 90.0}}, "take_profit.limit_price", 90.0, "above"),
        ({"take_profit": 110.0}, "take_profit", 110.0, "must be a mapping"),
        ({"take_profit": {"price": 110.0}}, "take_profit.price", 110.0, "unknown field"),
        ({"take_profit": {"limit_price": -1}}, "take_profit.limit_price", -1, "> 0"),
        ({"take_profit": {"limit_price": "x"}}, "take_profit.limit_price", "x", "a number"),
        ({"take_profit": {}}, "take_profit.limit_price", None, "required"),
        ({"stop_loss": {"limit_price": 94.0}}, "stop_loss.stop_price", None, "required"),
        ({"stop_loss": {"stop_price": True}}, "stop_loss.stop_price", True, "a number"),
        (
            {"type": "limit", "limit_price": 100.0, "stop_loss": {"stop_price": 101.0}},
            "stop_loss.stop_price",
            101.0,
            "below the entry price 100.0",
        ),
        (
            {"type": "limit", "limit_price": 100.0, "take_profit": {"limit_price": 99.0}},
            "take_profit.limit_price",
            99.0,
            "above the entry price 100.0",
        ),
        (
            {"type": "trailing_stop", "trail_percent": 2.0},
            "type",
            "trailing_stop",
            "cannot be a trailing stop",
        ),
        (
            {"order_class": "oto"},
            "stop_loss",
            {"stop_price": 95.0},
            "exactly one of take_profit or stop_loss",
        ),
        (
            {"order_class": "oto", "take_profit": None, "stop_loss": None},
            "take_profit",
            None,
            "exactly one",
        ),
        ({"order_class": "oco"}, "type", "market", "oco orders must be type 'limit'"),
    ],
)
def test_bad_order_class_requests_name_the_field(
    kw: dict[str, Any], field: str, value: object, words: str
) -> None:
    m, rec = manager()
    with pytest.raises(InvalidOrderError) as info:
        bracket(m, **kw)
    assert (info.value.field, info.value.value) == (field, value)
    assert words in info.value.reason
    assert m.orders == [] and rec.events == []  # nothing registered


def test_sell_brackets_and_ocos_check_prices_the_other_way() -> None:
    m, _ = manager()
    with pytest.raises(InvalidOrderError) as info:  # a short's take-profit is below its stop
        m.submit(
            "X",
            "sell",
            5,
            order_class="bracket",
            take_profit={"limit_price": 105.0},
            stop_loss={"stop_price": 101.0},
            now=T0,
        )
    assert info.value.field == "take_profit.limit_price"
    assert "below stop_loss.stop_price 101.0" in info.value.reason
    with pytest.raises(InvalidOrderError) as info:  # an oco selling: limit above the stop
        m.submit(
            "X",
            "sell",
            5,
            "limit",
            order_class="oco",
            take_profit={"limit_price": 90.0},
            stop_loss={"stop_price": 95.0},
            now=T0,
        )
    assert info.value.field == "take_profit.limit_price"
    with pytest.raises(InvalidOrderError) as info:
        m.submit(
            "X",
            "sell",
            5,
            "limit",
            limit_price=111.0,
            order_class="oco",
            take_profit={"limit_price": 110.0},
            stop_loss={"stop_price": 95.0},
            now=T0,
        )
    assert (info.value.field, info.value.value) == ("limit_price", 111.0)


def test_leg_prices_follow_the_venues_tick_rules() -> None:
    book = OrderBook(AlpacaOrderValidator())
    with pytest.raises(InvalidOrderError) as info:
        book.new_order(
            "X",
            "buy",
            10,
            order_class="bracket",
            take_profit={"limit_price": 110.005},
            stop_loss={"stop_price": 95.0},
        )
    assert (info.value.field, info.value.value) == ("take_profit.limit_price", 110.005)
    assert "sub-penny" in info.value.reason


def test_a_bracket_comes_with_its_legs() -> None:
    book = OrderBook(OrderValidator(), client_id_prefix="run-")
    entry = book.new_order(
        "X",
        "buy",
        10,
        "limit",
        limit_price=100.0,
        tif="day",
        order_class="bracket",
        take_profit={"limit_price": 110.0},
        stop_loss={"stop_price": 95.0, "limit_price": 94.5},
        tag="t",
    )
    tp, sl = entry.legs
    assert entry.order_class is OrderClass.BRACKET and entry.parent_id is None
    assert (tp.id, sl.id) == ("O000002", "O000003") and entry.id == "O000001"
    assert (tp.client_order_id, sl.client_order_id) == ("run-O000002", "run-O000003")
    assert (tp.side, tp.type, tp.limit_price, tp.stop_price) == (
        OrderSide.SELL,
        OrderType.LIMIT,
        110.0,
        None,
    )
    assert (sl.side, sl.type, sl.limit_price, sl.stop_price) == (
        OrderSide.SELL,
        OrderType.STOP_LIMIT,
        94.5,
        95.0,
    )
    for leg in entry.legs:
        assert (leg.parent_id, leg.order_class, leg.qty, leg.tif.value, leg.tag) == (
            entry.id,
            OrderClass.BRACKET,
            10.0,
            "day",
            "t",
        )
    assert class_params(entry) == (
        OrderClass.BRACKET,
        {"limit_price": 110.0},
        {"stop_price": 95.0, "limit_price": 94.5},
    )
    snap = entry.snapshot()
    assert [leg.id for leg in snap.legs] == [tp.id, sl.id]
    assert snap.legs[0] is not tp  # snapshots of the legs, not the live ones


# ----------------------------------------------------------------------------- bracket lifecycle


def test_legs_are_held_until_the_entry_fills_then_follow_it() -> None:
    m, rec = manager()
    entry = bracket(m)
    tp, sl = entry.legs
    assert (entry.status, tp.status, sl.status) == (S.ACCEPTED, S.HELD, S.HELD)
    assert m.open_orders("X") == [entry]  # held legs do not work (nor count) yet
    assert rec.events == [("order", entry.id, S.ACCEPTED)]
    rec.events.clear()
    bar(m, T0 + MIN, 100, 100.5, 94.0, 100.0)  # entry fills at the open; the legs wait a bar
    assert entry.status is S.FILLED
    assert (tp.status, sl.status, tp.qty, sl.qty) == (S.ACCEPTED, S.ACCEPTED, 10, 10)
    assert sl.filled_qty == 0  # the bar reached 94 after the fill: not this bar
    assert rec.events == [
        ("fill", entry.id, (10, 100.0, 10.0)),
        ("order", entry.id, S.FILLED),
        ("order", tp.id, S.ACCEPTED),
        ("order", sl.id, S.ACCEPTED),
    ]
    rec.events.clear()
    bar(m, T0 + 2 * MIN, 104, 111, 103, 108)  # the take-profit fills; the stop is canceled
    assert (tp.status, tp.filled_qty, tp.avg_fill_price) == (S.FILLED, 10, 110.0)
    assert sl.status is S.CANCELED and sl.filled_qty == 0
    assert rec.events == [
        ("fill", tp.id, (10, 110.0, 0.0)),
        ("order", tp.id, S.FILLED),
        ("order", sl.id, S.CANCELED),
    ]
    assert m.portfolio.qty("X") == 0 and m.open_orders() == []


def test_partial_entry_fills_size_the_legs_and_exits_share_one_quantity() -> None:
    m, _ = manager(participation_rate=0.5)
    entry = bracket(m, type="limit", limit_price=100.0)
    tp, sl = entry.legs
    bar(m, T0 + MIN, 100, 101, 99, 100, v=8)  # 4 of 10
    assert (entry.status, entry.filled_qty) == (S.PARTIALLY_FILLED, 4)
    assert (tp.status, tp.qty, sl.qty) == (S.ACCEPTED, 4, 4)
    bar(m, T0 + 2 * MIN, 100, 101, 99, 100, v=6)  # 3 more: the legs grow to 7
    assert entry.filled_qty == 7 and (tp.qty, sl.qty) == (7, 7)
    bar(m, T0 + 3 * MIN, 108, 111, 108, 110, v=4)  # the entry does not trade up here;
    assert (tp.filled_qty, tp.status) == (2, S.PARTIALLY_FILLED)  # the take-profit 2 of 7
    assert (sl.qty, sl.remaining_qty, tp.remaining_qty) == (5, 5, 5)  # the stop shrinks to 5
    bar(m, T0 + 4 * MIN, 108, 111, 108, 110, v=100)  # the take-profit takes what is left
    assert (tp.status, tp.filled_qty) == (S.FILLED, 7)
    assert sl.status is S.CANCELED and sl.filled_qty == 0
    # the exits took all the entry had filled: the trade is over, its unfilled rest canceled
    assert entry.status is S.CANCELED and entry.filled_qty == 7
    assert m.portfolio.qty("X") == 0


def test_later_entry_fills_grow_exits_that_have_partly_traded() -> None:
    m, _ = manager(participation_rate=0.5)
    entry = bracket(m, type="limit", limit_price=100.0)
    tp, sl = entry.legs
    bar(m, T0 + MIN, 100, 101, 99, 100, v=8)  # 4 of 10
    bar(m, T0 + 2 * MIN, 108, 111, 108, 110, v=2)  # the take-profit sells 1 of 4
    assert (tp.qty, tp.filled_qty, sl.qty) == (4, 1, 3)
    bar(m, T0 + 3 * MIN, 96, 96, 94, 94, v=100)  # the entry fills its 6 at the open first
    assert entry.status is S.FILLED
    assert sl.status is S.FILLED and sl.filled_qty == 9  # grown to 9 (10 - 1), then filled
    assert tp.status is S.CANCELED and m.portfolio.qty("X") == 0


def test_a_bar_reaching_both_exits_fills_the_one_its_path_reaches_first() -> None:
    for o, h, lo, c, first in (
        (100, 112, 90, 105, "sl"),  # up bar: open -> low -> high -> close, the stop first
        (100, 112, 90, 95, "tp"),  # down bar: open -> high -> low -> close, the target first
        (113, 115, 90, 92, "tp"),  # gap above the target: it fills at the open
        (93, 112, 90, 110, "sl"),  # gap below the stop: it fills at the open
    ):
        m, _ = manager()
        entry = bracket(m)
        bar(m, T0 + MIN, 100, 100, 100, 100)
        tp, sl = entry.legs
        bar(m, T0 + 2 * MIN, o, h, lo, c)
        filled, other = (sl, tp) if first == "sl" else (tp, sl)
        assert (filled.status, other.status) == (S.FILLED, S.CANCELED), (o, h, lo, c)
        assert m.portfolio.qty("X") == 0
    assert touch_point(sl, 95.0, 100, 112, 90, 105) < touch_point(tp, 110.0, 100, 112, 90, 105)


def test_exits_never_flip_the_position() -> None:
    m, rec = manager()
    entry = bracket(m)
    bar(m, T0 + MIN, 100, 100, 100, 100)
    tp, sl = entry.legs
    m.submit("X", "sell", 6, now=T0 + MIN)  # the strategy sells 6 of the 10 by hand
    bar(m, T0 + 2 * MIN, 100, 100, 100, 100)
    assert m.portfolio.qty("X") == 4
    rec.events.clear()
    bar(m, T0 + 3 * MIN, 100, 100, 90, 92)  # the stop runs: it sells the 4 held, no more
    assert (sl.filled_qty, sl.status) == (4, S.CANCELED)
    assert tp.status is S.CANCELED
    assert m.portfolio.qty("X") == 0  # not -6
    assert rec.events == [
        ("fill", sl.id, (4, 95.0, 0.0)),
        ("order", sl.id, S.PARTIALLY_FILLED),
        ("order", tp.id, S.CANCELED),  # the group's open exits, in their order
        ("order", sl.id, S.CANCELED),
    ]


def test_exits_of_a_position_gone_are_canceled_without_a_fill() -> None:
    m, _ = manager()
    entry = bracket(m)
    bar(m, T0 + MIN, 100, 100, 100, 100)
    m.submit("X", "sell", 10, now=T0 + MIN)
    bar(m, T0 + 2 * MIN, 100, 100, 100, 100)
    bar(m, T0 + 3 * MIN, 100, 100, 90, 92)
    assert [leg.status for leg in entry.legs] == [S.CANCELED, S.CANCELED]
    assert all(leg.filled_qty == 0 for leg in entry.legs) and m.portfolio.qty("X") == 0


def test_cancel_an_entry_cancels_its_legs_and_an_exit_the_linked_one() -> None:
    m, rec = manager()
    entry = bracket(m, type="limit", limit_price=97.0)
    assert m.cancel(entry, T0)
    assert [o.status for o in (entry, *entry.legs)] == [S.CANCELED, S.CANCELED, S.CANCELED]
    assert [e[2] for e in rec.events[1:]] == [S.CANCELED] * 3
    assert not m.cancel(entry.legs[0], T0)

    m, _ = manager()
    entry = bracket(m)
    bar(m, T0 + MIN, 100, 100, 100, 100)
    tp, sl = entry.legs
    assert m.cancel(sl, T0 + MIN)  # one cancels the other
    assert (tp.status, sl.status, entry.status) == (S.CANCELED, S.CANCELED, S.FILLED)


def test_cancelling_a_partly_filled_entry_leaves_its_legs_protecting_what_filled() -> None:
    m, rec = manager(participation_rate=0.5)
    entry = bracket(m, type="limit", limit_price=100.0)
    bar(m, T0 + MIN, 100, 101, 99, 100, v=16)  # 8 of 10
    rec.events.clear()
    assert m.cancel(entry, T0 + MIN)
    assert (entry.status, entry.filled_qty) == (S.CANCELED, 8)
    assert [(leg.status, leg.qty) for leg in entry.legs] == [(S.ACCEPTED, 8), (S.ACCEPTED, 8)]
    assert rec.events == [("order", entry.id, S.CANCELED)]  # the legs were not touched
    bar(m, T0 + 2 * MIN, 96, 96, 90, 91, v=100)  # and the stop still protects the 8 shares
    tp, sl = entry.legs
    assert (sl.status, sl.filled_qty, tp.status) == (S.FILLED, 8, S.CANCELED)
    assert m.portfolio.qty("X") == 0


def test_an_entry_that_ends_unfilled_takes_its_held_legs_along() -> None:
    m, _ = manager(cash=500.0)  # cannot afford the entry
    entry = bracket(m)
    assert entry.status is S.REJECTED and entry.reject_reason
    assert [leg.status for leg in entry.legs] == [S.REJECTED, S.REJECTED]
    assert all(leg.reject_reason == entry.reject_reason for leg in entry.legs)

    m, _ = manager()
    entry = bracket(m, type="limit", limit_price=97.0, tif="day")
    bar(m, T0 + MIN, 100, 101, 99, 100)
    bar(m, T0 + DAY_NS + MIN, 100, 101, 99, 100)  # next day: the entry's session is over
    assert [o.status for o in (entry, *entry.legs)] == [S.EXPIRED] * 3


def test_a_day_entry_partly_filled_leaves_its_legs_working() -> None:
    m, _ = manager(participation_rate=0.5)
    entry = bracket(m, type="limit", limit_price=100.0, tif="day")
    bar(m, T0 + MIN, 100, 101, 99, 100, v=8)
    bar(m, T0 + DAY_NS + MIN, 101, 102, 101, 101, v=8)  # the entry's session is over
    assert entry.status is S.EXPIRED and entry.filled_qty == 4
    assert [(leg.status, leg.qty) for leg in entry.legs] == [(S.ACCEPTED, 4), (S.ACCEPTED, 4)]
    m.expire_all(T0 + DAY_NS + MIN)  # the end of the data: the legs' day is over too
    assert [leg.status for leg in entry.legs] == [S.EXPIRED, S.EXPIRED]


def test_expire_all_expires_held_legs_of_an_unfilled_day_entry() -> None:
    m, _ = manager()
    entry = bracket(m, type="limit", limit_price=97.0, tif="day")
    gtc = bracket(m, type="limit", limit_price=97.0)
    m.expire_all(T0 + MIN)
    assert [o.status for o in (entry, *entry.legs)] == [S.EXPIRED] * 3
    assert [o.status for o in (gtc, *gtc.legs)] == [S.ACCEPTED, S.HELD, S.HELD]


# ----------------------------------------------------------------------------- oto and oco


def test_an_oto_activates_its_one_leg() -> None:
    m, _ = manager()
    entry = m.submit(
        "X", "sell", 5, order_class="oto", stop_loss={"stop_price": 105.0}, now=T0
    )  # a short with a protective buy stop
    (sl,) = entry.legs
    assert (sl.side, sl.type, sl.status) == (OrderSide.BUY, OrderType.STOP, S.HELD)
    bar(m, T0 + MIN, 100, 100, 100, 100)
    assert (sl.status, sl.qty) == (S.ACCEPTED, 5)
    bar(m, T0 + 2 * MIN, 101, 107, 101, 106)
    assert (sl.status, sl.avg_fill_price) == (S.FILLED, 105.0)
    assert m.portfolio.qty("X") == 0


def oco(m: SyncOrderManager, qty: float, **kw: Any) -> Order:
    return m.submit(
        "X",
        "sell",
        qty,
        "limit",
        order_class="oco",
        take_profit={"limit_price": 110.0},
        stop_loss={"stop_price": 95.0},
        now=T0,
        **kw,
    )


def test_an_oco_closes_a_position_with_whichever_exit_trades() -> None:
    m, rec = manager(participation_rate=0.5)
    hold(m, 10)
    rec.events.clear()
    order = oco(m, 10)
    (sl,) = order.legs
    assert (order.type, order.limit_price, order.status) == (OrderType.LIMIT, 110.0, S.ACCEPTED)
    assert sl.status is S.ACCEPTED and m.open_orders("X") == [order, sl]
    assert rec.events == [("order", order.id, S.ACCEPTED), ("order", sl.id, S.ACCEPTED)]
    bar(m, T0 + MIN, 100, 111, 100, 110, v=8)  # 4 at the limit: the stop shrinks to 6
    assert (order.filled_qty, sl.qty, sl.remaining_qty) == (4, 6, 6)
    bar(m, T0 + 2 * MIN, 96, 96, 90, 91, v=100)
    assert (sl.status, sl.filled_qty, order.status) == (S.FILLED, 6, S.CANCELED)
    assert m.portfolio.qty("X") == 0


def test_an_oco_may_only_close_a_position() -> None:
    m, _ = manager()
    flat = oco(m, 10)
    assert flat.status is S.REJECTED and "only close a position" in (flat.reject_reason or "")
    assert flat.legs[0].status is S.REJECTED
    hold(m, 5)
    too_big = oco(m, 10)
    assert too_big.status is S.REJECTED
    first = oco(m, 5)
    assert first.status is S.ACCEPTED
    # the same 5 shares cannot be sold twice by exits: a second oco is refused (as at the venue)
    again = oco(m, 1)
    assert again.status is S.REJECTED
    assert "5 of it held by other exits" in (again.reject_reason or "")
    assert m.cancel(first, T0)
    assert oco(m, 5).status is S.ACCEPTED  # once the first is gone, its shares are free


def test_orders_of_a_class_cannot_be_replaced() -> None:
    m, _ = manager()
    entry = bracket(m, type="limit", limit_price=97.0)
    for target in (entry, entry.legs[1]):
        with pytest.raises(InvalidOrderError) as info:
            m.replace(target, T0, limit_price=91.0)
        assert (info.value.field, info.value.value) == ("order_class", "bracket")
        assert "cancel them and submit new ones" in info.value.reason
    assert [o.status for o in m.orders] == [S.ACCEPTED, S.HELD, S.HELD]


# ------------------------------------------------------------- the manual workaround's failure


def test_a_brackets_exits_neither_short_nor_double_reserve_unlike_two_manual_sells() -> None:
    """The issue's workaround: after a buy fills, a take-profit sell and a stop sell for the
    same shares. The second sell counts as a short (it reserves buying power, and is refused
    without shorting), and a bar reaching both fills both: the account ends short. A bracket's
    legs do neither."""
    # the workaround, on a margin account with just enough room for the position
    m, _ = manager(cash=1_500.0)
    hold(m, 10)  # 1,000 of 1,500 used
    tp = m.submit("X", "sell", 10, "limit", limit_price=110.0, now=T0)
    sl = m.submit("X", "sell", 10, "stop", stop_price=95.0, now=T0)
    assert tp.status is S.ACCEPTED
    assert sl.status is S.REJECTED  # counted as a 10-share short: 1,000 > the 500 left
    assert "insufficient buying power" in (sl.reject_reason or "")
    m, _ = manager(cash=5_000.0)
    hold(m, 10)
    tp = m.submit("X", "sell", 10, "limit", limit_price=110.0, now=T0)
    sl = m.submit("X", "sell", 10, "stop", stop_price=95.0, now=T0)
    pending, open_orders = m.book.commitments()
    assert m.portfolio.committed(open_orders, m.last_prices) == pytest.approx(1_000.0)
    bar(m, T0 + MIN, 100, 112, 90, 105)  # reaches both: both fill
    assert (tp.status, sl.status) == (S.FILLED, S.FILLED)
    assert m.portfolio.qty("X") == -10  # the accidental short

    # the same exits as a bracket's legs
    m, _ = manager(cash=1_500.0)
    entry = bracket(m)
    bar(m, T0 + MIN, 100, 100, 100, 100)
    assert [leg.status for leg in entry.legs] == [S.ACCEPTED, S.ACCEPTED]
    pending, open_orders = m.book.commitments()
    assert pending == {"X": -10.0}  # the two legs close the same 10 shares: counted once
    assert m.portfolio.committed(open_orders, m.last_prices) == 0.0  # and reserve nothing
    more = m.submit("X", "buy", 4, now=T0 + MIN)  # the 500 left is still there to use
    assert more.status is S.ACCEPTED
    m.cancel(more, T0 + MIN)
    bar(m, T0 + 2 * MIN, 100, 112, 90, 105)  # reaches both: one fills, the other is canceled
    assert sorted(leg.status for leg in entry.legs) == [S.CANCELED, S.FILLED]
    assert m.portfolio.qty("X") == 0  # never short


def test_risk_counts_linked_exits_once() -> None:
    from tradeloop.execution.core.risk import RiskLimits, RiskManager

    m, _ = manager(risk=RiskManager(RiskLimits(max_position=12)))
    entry = bracket(m)
    bar(m, T0 + MIN, 100, 100, 100, 100)
    assert [leg.status for leg in entry.legs] == [S.ACCEPTED, S.ACCEPTED]
    # the legs sell 10 (not 20): 5 more could take the position to -5, not -15
    more = m.submit("X", "sell", 5, "limit", limit_price=200.0, now=T0 + MIN)
    assert more.status is S.ACCEPTED
