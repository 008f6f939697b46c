"""OrderBook with an order log (done orders leave the book for compact rows), late fills, client
ids of logged and linked orders, and the book's answers about order classes."""

from __future__ import annotations

import pytest

from tradeloop.errors import EngineError, InvalidOrderError, OrderNotFoundError, OrderStateError
from tradeloop.execution.core.book import OrderBook, class_params
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.types import Order, OrderClass, OrderSide, OrderStatus
from tradeloop.results.log import OrderLog

S = OrderStatus


def logged_book(prefix: str = "") -> OrderBook:
    b = OrderBook(OrderValidator(None, True), client_id_prefix=prefix)
    b.keep_log(OrderLog(client_id_prefix=prefix))
    return b


def placed(b: OrderBook, *args: object, **kw: object) -> Order:
    o = b.new_order(*args, **kw)  # type: ignore[arg-type]
    b.register(o)
    b.set_status(o, S.ACCEPTED, 1)
    return o


def bracket(b: OrderBook, qty: float = 10.0, **kw: object) -> Order:
    return placed(
        b,
        "AAA",
        "buy",
        qty,
        "limit",
        limit_price=100.0,
        order_class="bracket",
        take_profit={"limit_price": 110.0},
        stop_loss={"stop_price": 90.0},
        **kw,
    )


def same(a: Order | None, b: Order) -> None:
    assert a is not None
    for f in ("id", "client_order_id", "symbol", "side", "qty", "status", "filled_qty"):
        assert getattr(a, f) == getattr(b, f), f


# -- keep_log, all_orders -----------------------------------------------------------------------


def test_keep_log_refuses_a_book_that_has_orders_and_says_when_to_call_it() -> None:
    b = OrderBook(OrderValidator(None, True))
    b.register(b.new_order("AAA", "buy", 1.0))
    with pytest.raises(EngineError, match=r"^keep_log: the book must have no order and no log"):
        b.keep_log(OrderLog())
    assert b.log is None


def test_all_orders_lists_done_and_live_orders_in_registration_order() -> None:
    b = logged_book()
    first = placed(b, "AAA", "buy", 1.0)
    b.set_status(first, S.CANCELED, 2)
    second = placed(b, "AAA", "sell", 2.0)
    everything = list(b.all_orders())
    assert [o.id for o in everything] == [first.id, second.id]
    assert everything[0].status is S.CANCELED and everything[1] is second
    assert list(b.orders) == [second.id]  # the done order left the book for the log


def test_all_orders_without_a_log_is_every_order_of_the_book() -> None:
    b = OrderBook(OrderValidator(None, True))
    first = placed(b, "AAA", "buy", 1.0)
    b.set_status(first, S.CANCELED, 2)
    second = placed(b, "AAA", "sell", 2.0)
    assert list(b.all_orders()) == [first, second]


# -- retirement -------------------------------------------------------------------------------


def test_a_done_order_is_found_in_the_log_by_id_and_by_client_id() -> None:
    b = logged_book()
    mine = placed(b, "AAA", "buy", 1.0, client_order_id="mine")
    auto = placed(b, "AAA", "buy", 3.0)
    b.record_fill(auto, 3.0, 50.0, 0.5, 2)
    b.set_status(mine, S.CANCELED, 3)
    placed(b, "AAA", "buy", 1.0)  # the next registration moves them
    assert mine.id not in b.orders and auto.id not in b.orders
    got = b.get(auto.id)
    assert got is not auto  # the log's copy: the book let go of the order
    same(got, auto)
    assert got.avg_fill_price == 50.0 and got.status is S.FILLED
    found = b.by_client_id("mine")
    assert found is not mine
    same(found, mine)
    same(b.by_client_id(auto.client_order_id), auto)
    assert b.current(mine.id).status is S.CANCELED
    assert b.by_client_id("nobody") is None
    with pytest.raises(OrderNotFoundError):
        b.get("O999999")


def test_a_done_orders_client_id_stays_taken_custom_or_generated() -> None:
    b = logged_book()
    mine = placed(b, "AAA", "buy", 1.0, client_order_id="mine")
    gen = placed(b, "AAA", "buy", 1.0)
    b.set_status(mine, S.CANCELED, 2)
    b.set_status(gen, S.CANCELED, 2)
    placed(b, "AAA", "buy", 1.0, client_order_id="Ozzz")  # not a logged order's id: free
    for cid in ("mine", gen.client_order_id):
        with pytest.raises(InvalidOrderError, match="already used") as err:
            b.new_order("AAA", "buy", 1.0, client_order_id=cid)
        assert err.value.field == "client_order_id" and err.value.value == cid
        with pytest.raises(InvalidOrderError, match="already used"):
            b.adopt(Order("", "AAA", OrderSide.BUY, 1.0, client_order_id=cid))
    # a custom id that looks like a logged order's id but is not its client id is free
    assert b.new_order("AAA", "buy", 1.0, client_order_id=gen.id + "x").client_order_id


def test_with_a_client_id_prefix_done_orders_ids_stay_taken() -> None:
    b = logged_book("run7-")
    mine = placed(b, "AAA", "buy", 1.0, client_order_id="mine")
    gen = placed(b, "AAA", "buy", 1.0)
    assert gen.client_order_id == "run7-" + gen.id
    b.set_status(mine, S.CANCELED, 2)
    b.set_status(gen, S.CANCELED, 2)
    nxt = placed(b, "AAA", "buy", 1.0)
    assert mine.id not in b.orders and gen.id not in b.orders
    same(b.by_client_id("run7-" + gen.id), gen)
    for cid in ("mine", "run7-" + gen.id):
        with pytest.raises(InvalidOrderError, match="already used"):
            b.new_order("AAA", "buy", 1.0, client_order_id=cid)
    # the bare id is not a client id of anyone here (the prefix is part of it)
    assert b.new_order("AAA", "buy", 1.0, client_order_id=gen.id).client_order_id == gen.id
    assert nxt.client_order_id == "run7-" + nxt.id


def test_a_bracket_stays_in_the_book_until_all_its_orders_are_done() -> None:
    b = logged_book()
    entry = bracket(b)
    tp, sl = entry.legs
    b.record_fill(entry, 10.0, 100.0, 0.0, 2)
    for leg in entry.legs:
        b.set_status(leg, S.ACCEPTED, 2)
    placed(b, "BBB", "buy", 1.0)
    assert b.get(entry.id) is entry  # its exits are live: the entry stays an object
    assert b.parent_of(tp) is entry
    b.record_fill(tp, 10.0, 110.0, 0.0, 3)
    b.set_status(sl, S.CANCELED, 3)
    simple = placed(b, "BBB", "buy", 1.0)
    b.set_status(simple, S.CANCELED, 4)
    placed(b, "BBB", "buy", 1.0)
    for o in (entry, tp, sl, simple):
        assert o.id not in b.orders
        got = b.get(o.id)
        assert got is not o
        same(got, o)
    assert b.get(tp.id).status is S.FILLED and b.get(sl.id).status is S.CANCELED
    assert b.parent_of(b.get(tp.id)).id == entry.id  # type: ignore[union-attr]


def test_an_order_done_after_a_bracket_with_live_exits_is_still_moved() -> None:
    b = logged_book()
    entry = bracket(b)
    b.record_fill(entry, 10.0, 100.0, 0.0, 2)  # done, but its exits are not
    other = placed(b, "AAA", "sell", 1.0)
    b.set_status(other, S.CANCELED, 3)
    # both ended since the last registration: the entry must wait, the other must not
    b._done = [entry, other]
    b.register(b.new_order("AAA", "buy", 1.0))
    assert b.get(entry.id) is entry and other.id not in b.orders


# -- late fills ---------------------------------------------------------------------------------


def test_a_late_fill_adds_to_a_canceled_order_and_keeps_its_status() -> None:
    b = OrderBook(OrderValidator(None, True))
    o = placed(b, "AAA", "buy", 10.0, "limit", limit_price=100.0)
    b.record_fill(o, 4.0, 100.0, 1.0, 2)
    b.set_status(o, S.CANCELED, 5)
    b.record_late_fill(o, 3.0, 107.0, 0.5, 9)
    assert o.status is S.CANCELED
    assert o.filled_qty == 7.0
    assert o.avg_fill_price == pytest.approx((4 * 100.0 + 3 * 107.0) / 7)
    assert o.commission == 1.5
    assert o.updated_at == 9
    b.record_late_fill(o, 3.0, 100.0, 0.0, 6)  # exactly the rest; reported out of order
    assert o.filled_qty == 10.0 and o.updated_at == 9
    assert o.avg_fill_price == pytest.approx((4 * 100.0 + 3 * 107.0 + 3 * 100.0) / 10)


def test_a_late_fill_of_an_order_never_filled_and_of_a_fraction() -> None:
    b = OrderBook(OrderValidator(None, True))
    o = placed(b, "AAA", "sell", 2.0)
    b.set_status(o, S.EXPIRED, 3)
    b.record_late_fill(o, 0.5, 20.0, 0.1, 4)
    assert (o.filled_qty, o.avg_fill_price, o.commission) == (0.5, 20.0, 0.1)
    assert o.status is S.EXPIRED


def test_a_late_fill_must_fit_the_remaining_quantity() -> None:
    b = OrderBook(OrderValidator(None, True))
    o = placed(b, "AAA", "buy", 2.0)
    b.set_status(o, S.CANCELED, 3)
    for bad in (0.0, -1.0, 2.5):
        with pytest.raises(OrderStateError, match=r"exceeds remaining 2\.0"):
            b.record_late_fill(o, bad, 10.0, 0.0, 4)
    assert o.filled_qty == 0.0 and o.avg_fill_price is None
    live = placed(b, "AAA", "buy", 2.0)
    with pytest.raises(OrderStateError, match="record the fill normally"):
        b.record_late_fill(live, 1.0, 10.0, 0.0, 4)


def test_a_late_fill_over_the_rest_by_the_tolerance_is_accepted() -> None:
    b = OrderBook(OrderValidator(None, True))
    o = placed(b, "AAA", "buy", 2.0)
    b.set_status(o, S.CANCELED, 3)
    b.record_late_fill(o, 2.0 + 1e-9, 10.0, 0.0, 4)
    assert o.filled_qty == 2.0 and o.status is S.CANCELED


def test_fills_within_the_tolerance_complete_the_order() -> None:
    b = OrderBook(OrderValidator(None, True))
    o = placed(b, "AAA", "buy", 1.0)
    b.record_fill(o, 1.0 + 1e-9, 10.0, 0.0, 2)  # over by the tolerance: accepted
    assert o.status is S.FILLED and o.filled_qty == 1.0
    tiny = placed(b, "AAA", "buy", 2e-9)
    b.record_fill(tiny, 1e-9, 10.0, 0.0, 2)  # leaves exactly the tolerance: done
    assert tiny.status is S.FILLED and tiny.filled_qty == 2e-9


# -- creation -----------------------------------------------------------------------------------


def test_bad_type_and_tif_name_the_field() -> None:
    b = OrderBook(OrderValidator(None, True))
    with pytest.raises(InvalidOrderError, match="must be one of") as err:
        b.new_order("AAA", "buy", 1.0, "bogus")
    assert err.value.field == "type"
    with pytest.raises(InvalidOrderError, match="must be one of") as err:
        b.new_order("AAA", "buy", 1.0, tif="bogus")
    assert err.value.field == "tif"
    o = placed(b, "AAA", "buy", 1.0, "limit", limit_price=10.0)
    with pytest.raises(InvalidOrderError, match="must be one of") as err:
        b.replacement(o, 2, tif="bogus")
    assert err.value.field == "tif"


def test_exit_legs_need_an_order_class() -> None:
    b = OrderBook(OrderValidator(None, True))
    for kw in ({"take_profit": {"limit_price": 5.0}}, {"stop_loss": {"stop_price": 5.0}}):
        with pytest.raises(InvalidOrderError, match="only allowed with order_class") as err:
            b.new_order("AAA", "buy", 1.0, **kw)  # type: ignore[arg-type]
        assert err.value.field == next(iter(kw))


def test_a_stop_entry_brackets_exits_are_checked_against_its_stop_price() -> None:
    b = OrderBook(OrderValidator(None, True))
    with pytest.raises(InvalidOrderError, match="must be above the entry price 100") as err:
        b.new_order(
            "AAA",
            "buy",
            1.0,
            "stop",
            stop_price=100.0,
            order_class="bracket",
            take_profit={"limit_price": 95.0},
            stop_loss={"stop_price": 90.0},
        )
    assert err.value.field == "take_profit.limit_price"


def test_class_params_of_a_simple_limit_order_send_no_exits() -> None:
    b = OrderBook(OrderValidator(None, True))
    o = b.new_order("AAA", "buy", 1.0, "limit", limit_price=10.0)
    assert class_params(o) == (OrderClass.SIMPLE, None, None)
    oco = b.new_order(
        "AAA",
        "sell",
        1.0,
        "limit",
        order_class="oco",
        take_profit={"limit_price": 12.0},
        stop_loss={"stop_price": 9.0},
    )
    assert class_params(oco) == (
        OrderClass.OCO,
        {"limit_price": 12.0},
        {"stop_price": 9.0, "limit_price": None},
    )


def test_an_order_created_without_a_time_is_created_at_zero() -> None:
    b = OrderBook(OrderValidator(None, True))
    assert b.new_order("AAA", "buy", 1.0).created_at == 0


def test_a_replace_cannot_add_a_trail_to_a_limit_order() -> None:
    b = OrderBook(OrderValidator(None, True))
    o = placed(b, "AAA", "buy", 1.0, "limit", limit_price=10.0)
    with pytest.raises(InvalidOrderError, match="only allowed for type='trailing_stop'") as err:
        b.replacement(o, 2, trail_percent=1.0)
    assert err.value.field == "trail_percent"


def test_legs_skip_client_ids_already_in_use() -> None:
    b = OrderBook(OrderValidator(None, True))
    placed(b, "AAA", "buy", 1.0, client_order_id="O000003")  # id O000001
    entry = bracket(b, client_order_id="O000004")  # id O000002; legs must avoid both
    cids = [entry.client_order_id, *(leg.client_order_id for leg in entry.legs)]
    assert cids == ["O000004", "O000005", "O000006"]
    assert [leg.id for leg in entry.legs] == ["O000005", "O000006"]
    assert all(leg.parent_id == entry.id for leg in entry.legs)


# -- current ------------------------------------------------------------------------------------


def test_current_follows_replaced_orders_only_and_stops_at_an_unknown_replacement() -> None:
    b = OrderBook(OrderValidator(None, True))
    o = placed(b, "AAA", "buy", 1.0, "limit", limit_price=10.0)
    other = placed(b, "AAA", "buy", 1.0, "limit", limit_price=11.0)
    o.replaced_by = other.id  # named, but not replaced (the venue has not confirmed it)
    assert b.current(o) is o
    b.set_status(o, S.REPLACED, 2)
    o.replaced_by = "O999999"  # a replacement this book never saw
    assert b.current(o.id) is o


# -- order classes: commitments, resizing ----------------------------------------------------------


def test_a_partly_filled_entry_and_its_live_exits_both_count_in_commitments() -> None:
    b = OrderBook(OrderValidator(None, True))
    entry = bracket(b)
    b.record_fill(entry, 4.0, 100.0, 0.0, 2)
    for leg in entry.legs:
        b.set_status(leg, S.ACCEPTED, 2)
    b.touched.clear()
    assert b.resize_exits(entry) == 4.0
    assert [leg.qty for leg in entry.legs] == [4.0, 4.0]
    assert "AAA" in b.touched  # the exits changed: reservations must look again
    pending, orders = b.commitments()
    # the entry would still buy 6, one of its exits (counted once) would sell 4
    assert pending == {"AAA": pytest.approx(2.0)}
    assert orders == [entry, entry.legs[0]]
    assert b.commitments_of("AAA") == (pytest.approx(2.0), [entry, entry.legs[0]])


def test_held_exits_keep_their_size_when_the_entry_fills_in_part() -> None:
    b = OrderBook(OrderValidator(None, True))
    entry = bracket(b)
    for leg in entry.legs:
        b.set_status(leg, S.HELD, 1)
    b.record_fill(entry, 4.0, 100.0, 0.0, 2)
    assert b.resize_exits(entry) == 4.0
    assert [leg.qty for leg in entry.legs] == [10.0, 10.0]


def test_an_entry_fill_within_the_tolerance_does_not_resize_its_exits() -> None:
    b = OrderBook(OrderValidator(None, True))
    entry = bracket(b)
    for leg in entry.legs:
        b.set_status(leg, S.ACCEPTED, 1)
    b.record_fill(entry, 1e-9, 100.0, 0.0, 2)
    b.resize_exits(entry)
    assert [leg.qty for leg in entry.legs] == [10.0, 10.0]


# -- restore, adopt -----------------------------------------------------------------------------


def test_restored_orders_keep_their_ids_and_new_ids_follow_the_highest() -> None:
    b = OrderBook(OrderValidator(None, True))
    kept = Order("O000007", "AAA", OrderSide.BUY, 2.0, client_order_id="O000007")
    kept.status = S.ACCEPTED
    b.restore(kept)
    b.restore(Order("O000003", "AAA", OrderSide.SELL, 1.0, client_order_id="c3"))
    b.restore(Order("X000050", "AAA", OrderSide.SELL, 1.0, client_order_id="c50"))  # not ours
    b.restore(Order("Oabc", "AAA", OrderSide.SELL, 1.0, client_order_id="cabc"))
    assert b.get("O000007") is kept and b.open_orders("AAA")[0] is kept
    assert b.by_client_id("c50") is not None
    assert b.new_order("AAA", "buy", 1.0).id == "O000008"


def test_an_adopted_order_gets_a_fresh_id_and_keeps_its_client_id() -> None:
    b = OrderBook(OrderValidator(None, True))
    placed(b, "AAA", "buy", 1.0)
    venue = Order("", "AAA", OrderSide.SELL, 3.0, client_order_id="earlier-run-1")
    venue.status = S.ACCEPTED
    got = b.adopt(venue)
    assert got is venue and venue.id == "O000002"
    assert b.by_client_id("earlier-run-1") is venue and b.open_orders("AAA")[-1] is venue
