"""OrderBook: creation, registry, state changes, fills, replacements and commitments."""

from __future__ import annotations

import math

import pytest

from tradeloop.errors import (
    InvalidOrderError,
    InvalidTransitionError,
    OrderNotFoundError,
    OrderStateError,
)
from tradeloop.execution.core.book import OrderBook
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.types import Order, OrderSide, OrderStatus, OrderType, TimeInForce

S = OrderStatus
BUY, SELL = OrderSide.BUY, OrderSide.SELL


def book(fractional: bool = False) -> OrderBook:
    return OrderBook(OrderValidator({"AAPL", "MSFT"}, fractional=fractional))


def placed(b: OrderBook, *args: object, **kw: object) -> Order:
    """A new order, registered and accepted (what a manager does on submission)."""
    o = b.new_order(*args, **kw)  # type: ignore[arg-type]
    b.register(o)
    b.set_status(o, S.ACCEPTED, 1)
    return o


# -- creation ---------------------------------------------------------------------------------


def test_new_order_assigns_sequential_ids_and_client_ids() -> None:
    b = book()
    o1 = b.new_order("AAPL", "buy", 10, now=5)
    o2 = b.new_order("MSFT", SELL, 3.0, "limit", limit_price=100.0, tif="DAY")
    assert (o1.id, o2.id) == ("O000001", "O000002")
    assert o1.client_order_id == o1.id and o2.client_order_id == o2.id
    assert o1.status is S.NEW and o1.created_at == o1.updated_at == 5
    assert o2.side is SELL and o2.type is OrderType.LIMIT and o2.tif is TimeInForce.DAY
    assert o1.qty == 10.0 and type(o1.qty) is float
    assert b.orders == {}  # not registered yet


def test_new_order_id_prefix() -> None:
    b = OrderBook(OrderValidator(), id_prefix="BT-")
    assert b.new_order("X", BUY, 1).id == "BT-000001"


def test_new_order_keeps_given_client_order_id_and_tag() -> None:
    o = book().new_order("AAPL", BUY, 1, client_order_id="my-id-1", tag="entry")
    assert o.client_order_id == "my-id-1"
    assert o.id == "O000001"
    assert o.tag == "entry"


def test_new_order_validates() -> None:
    b = book()
    with pytest.raises(InvalidOrderError) as ei:
        b.new_order("TSLA", BUY, 1)
    assert ei.value.field == "symbol"
    with pytest.raises(InvalidOrderError) as ei:
        b.new_order("AAPL", "hold", 1)
    assert ei.value.field == "side"
    with pytest.raises(InvalidOrderError) as ei:
        b.new_order("AAPL", BUY, 1, "limit")
    assert ei.value.field == "limit_price"
    with pytest.raises(InvalidOrderError) as ei:
        b.new_order("AAPL", BUY, 1, client_order_id="")
    assert ei.value.field == "client_order_id"
    assert b._seq == 0  # rejected requests consume no id


def test_duplicate_client_order_id_rejected_after_register() -> None:
    b = book()
    b.register(b.new_order("AAPL", BUY, 1, client_order_id="dup"))
    with pytest.raises(InvalidOrderError) as ei:
        b.new_order("MSFT", SELL, 2, client_order_id="dup")
    assert ei.value.field == "client_order_id"
    assert "'dup'" in str(ei.value)


def test_client_order_id_cannot_reuse_a_generated_id() -> None:
    b = book()
    first = b.new_order("AAPL", BUY, 1)
    b.register(first)
    with pytest.raises(InvalidOrderError) as ei:
        b.new_order("AAPL", BUY, 1, client_order_id=first.id)
    assert ei.value.field == "client_order_id"


def test_generated_client_order_id_does_not_collide_with_supplied_one() -> None:
    b = book()
    b.register(b.new_order("AAPL", BUY, 1, client_order_id="O000002"))  # gets id O000001
    try:
        auto = b.new_order("AAPL", BUY, 1)  # gets id O000002 -> client id O000002
    except InvalidOrderError:
        return  # refusing is acceptable too
    b.register(auto)
    coids = [o.client_order_id for o in b.orders.values()]
    assert len(coids) == len(set(coids)), coids


# -- registry ---------------------------------------------------------------------------------


def test_register_indexes_open_orders_by_symbol() -> None:
    b = book()
    a1 = b.new_order("AAPL", BUY, 1)
    a2 = b.new_order("AAPL", SELL, 2)
    m1 = b.new_order("MSFT", BUY, 3)
    for o in (a1, a2, m1):
        b.register(o)
    assert b.orders == {a1.id: a1, a2.id: a2, m1.id: m1}
    assert b.open == {"AAPL": [a1, a2], "MSFT": [m1]}
    assert b.open_orders("AAPL") == [a1, a2]
    assert b.open_orders("NONE") == []
    assert b.open_orders() == [a1, a2, m1]
    assert b.has_open("AAPL") and not b.has_open("NONE")
    # open_orders returns a copy
    b.open_orders("AAPL").clear()
    assert b.open["AAPL"] == [a1, a2]


def test_register_terminal_order_is_not_open() -> None:
    b = book()
    o = b.new_order("AAPL", BUY, 1)
    o.status = S.REJECTED
    b.register(o)
    assert b.get(o.id) is o
    assert not b.has_open("AAPL")


def test_get_and_resolve() -> None:
    b = book()
    o = b.new_order("AAPL", BUY, 1)
    b.register(o)
    assert b.get(o.id) is o
    assert b.resolve(o.id) is o
    assert b.resolve(o) is o


@pytest.mark.parametrize("call", ["get", "resolve"])
def test_unknown_id_raises_order_not_found(call: str) -> None:
    b = book()
    with pytest.raises(OrderNotFoundError) as ei:
        getattr(b, call)("O999999")
    assert ei.value.order_id == "O999999"
    assert "'O999999'" in str(ei.value)
    assert isinstance(ei.value, OrderStateError)


def test_resolve_unregistered_order_object_raises() -> None:
    b = book()
    o = b.new_order("AAPL", BUY, 1)
    with pytest.raises(OrderNotFoundError):
        b.resolve(o)


# -- state changes ----------------------------------------------------------------------------


@pytest.mark.parametrize("terminal", [S.CANCELED, S.EXPIRED, S.REPLACED, S.REJECTED])
def test_set_status_terminal_removes_from_open(terminal: OrderStatus) -> None:
    b = book()
    keep = placed(b, "AAPL", BUY, 1)
    o = placed(b, "AAPL", BUY, 2)
    b.set_status(o, terminal, 7, reason="why" if terminal is S.REJECTED else None)
    assert o.status is terminal and o.updated_at == 7
    assert b.open_orders("AAPL") == [keep]
    assert b.get(o.id) is o  # still known
    if terminal is S.REJECTED:
        assert o.reject_reason == "why"


def test_set_status_non_terminal_keeps_open() -> None:
    b = book()
    o = b.new_order("AAPL", BUY, 1)
    b.register(o)
    b.set_status(o, S.ACCEPTED, 3)
    assert b.open_orders("AAPL") == [o]


def test_set_status_illegal_raises_and_keeps_open() -> None:
    b = book()
    o = b.new_order("AAPL", BUY, 1)
    b.register(o)
    with pytest.raises(InvalidTransitionError):
        b.set_status(o, S.FILLED, 3)
    assert o.status is S.NEW
    assert b.open_orders("AAPL") == [o]


def test_record_fill_partial_then_full() -> None:
    b = book()
    o = placed(b, "AAPL", BUY, 10)
    b.record_fill(o, 4, 100.0, 1.0, 10)
    assert o.status is S.PARTIALLY_FILLED
    assert o.filled_qty == 4 and o.remaining_qty == 6
    assert o.avg_fill_price == 100.0
    assert o.commission == 1.0
    assert o.updated_at == 10
    assert b.open_orders("AAPL") == [o]

    b.record_fill(o, 2, 106.0, 0.5, 11)
    assert o.status is S.PARTIALLY_FILLED
    assert o.filled_qty == 6
    assert math.isclose(o.avg_fill_price, (4 * 100 + 2 * 106) / 6)
    assert o.commission == 1.5

    b.record_fill(o, 4, 101.0, 0.25, 12)
    assert o.status is S.FILLED
    assert o.filled_qty == o.qty == 10
    assert o.remaining_qty == 0
    assert math.isclose(o.avg_fill_price, (400 + 212 + 404) / 10)
    assert o.commission == 1.75
    assert o.updated_at == 12
    assert not b.has_open("AAPL")


def test_record_fill_whole_order_at_once() -> None:
    b = book()
    o = placed(b, "MSFT", SELL, 5)
    b.record_fill(o, 5, 50.0, 0.0, 3)
    assert o.status is S.FILLED and o.avg_fill_price == 50.0 and o.filled_qty == 5


def test_record_fill_within_epsilon_snaps_to_full() -> None:
    b = book(fractional=True)
    o = placed(b, "AAPL", BUY, 0.3)
    b.record_fill(o, 0.1, 10.0, 0.0, 2)
    b.record_fill(o, 0.2, 10.0, 0.0, 3)  # 0.1 + 0.2 != 0.3 in floating point
    assert o.status is S.FILLED
    assert o.filled_qty == 0.3
    assert o.remaining_qty == 0.0


@pytest.mark.parametrize("qty", [11.0, 10.5, 0.0, -1.0, math.nan])
def test_record_fill_bad_qty_raises(qty: float) -> None:
    b = book()
    o = placed(b, "AAPL", BUY, 10)
    with pytest.raises(OrderStateError):
        b.record_fill(o, qty, 100.0, 0.0, 5)
    assert o.filled_qty == 0.0 and o.avg_fill_price is None and o.status is S.ACCEPTED


def test_record_fill_overfill_after_partial() -> None:
    b = book()
    o = placed(b, "AAPL", BUY, 10)
    b.record_fill(o, 7, 100.0, 0.0, 5)
    with pytest.raises(OrderStateError) as ei:
        b.record_fill(o, 4, 100.0, 0.0, 6)
    assert "remaining 3" in str(ei.value)
    assert o.filled_qty == 7 and o.status is S.PARTIALLY_FILLED


@pytest.mark.parametrize("status", [S.NEW, S.CANCELED])
def test_record_fill_illegal_status_leaves_order_untouched(status: OrderStatus) -> None:
    b = book()
    o = b.new_order("AAPL", BUY, 10)
    b.register(o)
    if status is S.CANCELED:
        b.set_status(o, S.CANCELED, 2)
    with pytest.raises(OrderStateError):
        b.record_fill(o, 4, 100.0, 1.0, 5)
    assert o.status is status
    assert o.filled_qty == 0.0
    assert o.avg_fill_price is None
    assert o.commission == 0.0


# -- replacement ------------------------------------------------------------------------------


def test_replacement_copies_fields_and_applies_changes() -> None:
    b = book()
    old = placed(
        b, "AAPL", SELL, 10, "stop_limit", stop_price=95.0, limit_price=94.0, tif="day", tag="x"
    )
    b.record_fill(old, 4, 94.5, 0.0, 2)
    new = b.replacement(old, 9, limit_price=93.0)
    assert new.id == "O000002" and new.client_order_id == new.id
    assert new.replaces == old.id
    assert new.status is S.NEW and new.created_at == 9
    assert (new.symbol, new.side, new.type, new.tif) == (
        "AAPL",
        SELL,
        OrderType.STOP_LIMIT,
        TimeInForce.DAY,
    )
    assert new.qty == 6.0  # the remaining quantity by default
    assert new.stop_price == 95.0 and new.limit_price == 93.0
    assert new.tag == "x"
    assert old.status is S.PARTIALLY_FILLED and old.qty == 10.0  # old untouched
    assert new.id not in b.orders  # not registered


def test_replacement_with_new_qty_and_tif() -> None:
    b = book()
    old = placed(b, "AAPL", BUY, 10, "limit", limit_price=100.0)
    new = b.replacement(old, 3, qty=20, tif="day", stop_price=None)
    assert new.qty == 20.0 and new.tif is TimeInForce.DAY and new.limit_price == 100.0


def test_replacement_is_validated() -> None:
    b = book()
    old = placed(b, "AAPL", BUY, 10, "limit", limit_price=100.0)
    with pytest.raises(InvalidOrderError) as ei:
        b.replacement(old, 3, qty=-1)
    assert ei.value.field == "qty"
    with pytest.raises(InvalidOrderError) as ei:
        b.replacement(old, 3, stop_price=90.0)
    assert ei.value.field == "stop_price"


def test_trailing_stop_replacement_switches_price_to_percent() -> None:
    b = book()
    old = placed(b, "AAPL", SELL, 10, "trailing_stop", trail_price=2.0)
    new = b.replacement(old, 5, trail_percent=3.0)
    assert new.trail_percent == 3.0 and new.trail_price is None
    assert new.type is OrderType.TRAILING_STOP


def test_trailing_stop_replacement_switches_percent_to_price() -> None:
    b = book()
    old = placed(b, "AAPL", SELL, 10, "trailing_stop", trail_percent=3.0)
    new = b.replacement(old, 5, trail_price=1.5)
    assert new.trail_price == 1.5 and new.trail_percent is None


def test_trailing_stop_replacement_keeps_trail_when_unchanged() -> None:
    b = book()
    old = placed(b, "AAPL", SELL, 10, "trailing_stop", trail_percent=3.0)
    new = b.replacement(old, 5, qty=4)
    assert new.trail_percent == 3.0 and new.trail_price is None and new.qty == 4


def test_trail_on_non_trailing_replacement_rejected() -> None:
    b = book()
    old = placed(b, "AAPL", BUY, 10, "limit", limit_price=100.0)
    with pytest.raises(InvalidOrderError) as ei:
        b.replacement(old, 3, trail_price=1.0)
    assert ei.value.field == "trail_price"


@pytest.mark.parametrize("final", [S.FILLED, S.CANCELED, S.REPLACED])
def test_replacing_a_closed_order_raises(final: OrderStatus) -> None:
    b = book()
    old = placed(b, "AAPL", BUY, 10, "limit", limit_price=100.0)
    if final is S.FILLED:
        b.record_fill(old, 10, 100.0, 0.0, 2)
    else:
        b.set_status(old, final, 2)
    with pytest.raises(OrderStateError) as ei:
        b.replacement(old, 3, limit_price=99.0)
    assert f"status={final.value!r}" in str(ei.value)
    assert b._seq == 1


# -- commitments ------------------------------------------------------------------------------


def test_commitments() -> None:
    b = book()
    a_buy = placed(b, "AAPL", BUY, 10)
    a_sell = placed(b, "AAPL", SELL, 4)
    m_sell = placed(b, "MSFT", SELL, 7)
    done = placed(b, "MSFT", BUY, 100)
    b.record_fill(done, 100, 1.0, 0.0, 2)
    b.record_fill(a_buy, 3, 1.0, 0.0, 3)  # only the remaining 7 is still pending

    pending, orders = b.commitments()
    assert pending == {"AAPL": 7 - 4, "MSFT": -7}
    assert orders == [a_buy, a_sell, m_sell]

    pending, orders = b.commitments(ignore=a_sell)
    assert pending == {"AAPL": 7, "MSFT": -7}
    assert orders == [a_buy, m_sell]


def test_commitments_empty_book() -> None:
    assert book().commitments() == ({}, [])


# -- client ids for live venues, lookups, adoption ----------------------------------------------


def test_client_id_prefix_and_lookup_by_client_id() -> None:
    b = OrderBook(OrderValidator(), client_id_prefix="run7-")
    o = b.new_order("AAPL", "buy", 1)
    b.register(o)
    assert (o.id, o.client_order_id) == ("O000001", "run7-O000001")
    assert b.by_client_id("run7-O000001") is o
    assert b.by_client_id("O000001") is None
    mine = b.new_order("AAPL", "buy", 1, client_order_id="run7-O000003")
    b.register(mine)
    auto = b.new_order("AAPL", "buy", 1)  # O000003 would collide with the caller's client id
    assert auto.client_order_id == "run7-O000004"


def test_replacement_takes_a_client_order_id() -> None:
    b = book()
    old = placed(b, "AAPL", "buy", 10, "limit", limit_price=100.0)
    new = b.replacement(old, 2, limit_price=99.0, client_order_id="fresh-1")
    assert new.client_order_id == "fresh-1" and new.replaces == old.id


def test_adopt_registers_an_outside_order_under_a_fresh_id() -> None:
    b = book()
    placed(b, "AAPL", "buy", 1)
    outside = Order("venue-9", "MSFT", BUY, 5.0, client_order_id="earlier-run-1")
    outside.status = S.ACCEPTED
    adopted = b.adopt(outside)
    assert adopted.id == "O000002" and adopted.client_order_id == "earlier-run-1"
    assert b.get("O000002") is adopted and b.open_orders("MSFT") == [adopted]
    with pytest.raises(InvalidOrderError) as info:
        b.adopt(Order("x", "MSFT", BUY, 1.0, client_order_id="earlier-run-1"))
    assert info.value.field == "client_order_id"


def test_snapshot_is_an_independent_copy() -> None:
    b = book()
    o = placed(b, "AAPL", "buy", 10, "limit", limit_price=100.0)
    o.broker_order_id = "venue-1"
    snap = o.snapshot()
    assert snap is not o
    assert {n: getattr(snap, n) for n in Order.__slots__} == {
        n: getattr(o, n) for n in Order.__slots__
    }
    b.record_fill(o, 4, 100.0, 0.0, 3)
    assert snap.filled_qty == 0 and snap.status is S.ACCEPTED
