"""IB <-> tradeloop mapping, pure: error codes, statuses, orders, fills, bar aggregation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ib_async import CommissionReport, Contract, Execution, Fill, Trade
from ib_async import Order as IBOrder
from ib_async import OrderStatus as IBStatus

from tradeloop.errors import (
    BrokerConnectionError,
    DuplicateOrderError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderRejectedError,
)
from tradeloop.execution.asynchronous.brokers.ib import mapping as m
from tradeloop.execution.types import Order, OrderSide, OrderStatus, OrderType, TimeInForce


def test_error_codes_map_to_typed_errors() -> None:
    err = m.order_error(201, "Order rejected - reason:insufficient funds", "c1")
    assert isinstance(err, OrderRejectedError)
    assert err.reason == "insufficient funds" and err.code == 201 and err.client_order_id == "c1"
    assert isinstance(m.order_error(103, "Duplicate order id", "c1"), DuplicateOrderError)
    assert isinstance(m.order_error(10147, "not found", "c1"), OrderNotFoundError)
    assert isinstance(m.order_error(1100, "lost", "c1"), BrokerConnectionError)
    assert m.connectivity(1100) == "lost" and m.connectivity(1102) == "restored"
    assert m.connectivity(1101) == "restored_data_lost" and m.connectivity(201) is None
    assert m.is_warning(2104) and m.is_warning(321) and not m.is_warning(201)


def test_statuses() -> None:
    assert m.status_from_ib("Submitted", 0, 10) is OrderStatus.ACCEPTED
    assert m.status_from_ib("Submitted", 4, 10) is OrderStatus.PARTIALLY_FILLED
    assert m.status_from_ib("Filled", 10, 10) is OrderStatus.FILLED
    assert m.status_from_ib("Cancelled", 4, 10) is OrderStatus.CANCELED
    assert m.status_from_ib("Inactive", 0, 10) is OrderStatus.REJECTED
    assert m.status_from_ib("PendingSubmit", 0, 10) is OrderStatus.NEW


def test_order_fields_carry_the_client_id_in_order_ref() -> None:
    o = Order(
        "O1",
        "ACME",
        OrderSide.SELL,
        5,
        OrderType.STOP_LIMIT,
        TimeInForce.DAY,
        limit_price=9.5,
        stop_price=10.0,
        client_order_id="run-1",
    )
    f = m.ib_order_fields(o, "DU1")
    assert f["orderRef"] == "run-1" and f["orderType"] == "STP LMT" and f["action"] == "SELL"
    assert (f["lmtPrice"], f["auxPrice"], f["tif"], f["account"]) == (9.5, 10.0, "DAY", "DU1")
    bracket = Order("O2", "ACME", OrderSide.BUY, 1)
    bracket.legs = (Order("O3", "ACME", OrderSide.SELL, 1),)
    with pytest.raises(InvalidOrderError):
        m.ib_order_fields(bracket)


def _trade(status: str = "Submitted", filled: float = 0.0) -> Trade:
    order = IBOrder(
        orderId=3,
        action="BUY",
        totalQuantity=10,
        orderType="LMT",
        lmtPrice=101.0,
        tif="GTC",
        orderRef="run-7",
        permId=1000000001,
    )
    return Trade(Contract(symbol="ACME"), order, IBStatus(orderId=3, status=status, filled=filled))


def test_snapshot_and_fill_with_commission() -> None:
    snap = m.snapshot(_trade(), now=5)
    assert (snap.id, snap.client_order_id, snap.status) == (
        "1000000001",
        "run-7",
        OrderStatus.ACCEPTED,
    )
    assert snap.limit_price == 101.0 and snap.updated_at == 5 and snap.tif is TimeInForce.GTC
    trade = _trade("Submitted", 4)
    when = datetime(2024, 3, 1, 14, 31, tzinfo=UTC)
    ex = Execution(
        execId="e1",
        time=when,
        shares=4,
        price=100.5,
        permId=1000000001,
        cumQty=4,
        avgPrice=100.5,
        orderRef="run-7",
    )
    ib_fill = Fill(trade.contract, ex, CommissionReport(execId="e1", commission=1.0), when)
    trade.fills.append(ib_fill)
    fill, after = m.fill_from_ib(trade, ib_fill, 1.0)
    assert (fill.execution_id, fill.qty, fill.price, fill.commission) == ("e1", 4.0, 100.5, 1.0)
    assert fill.order_id == "1000000001" and fill.ts == int(when.timestamp()) * 10**9
    assert after.status is OrderStatus.PARTIALLY_FILLED and after.filled_qty == 4
    vf = m.venue_fill(ib_fill)
    assert (vf.execution_id, vf.broker_order_id, vf.cum_qty, vf.commission) == (
        "e1",
        "1000000001",
        4.0,
        1.0,
    )


def test_bar_aggregator_folds_five_second_bars() -> None:
    agg = m.BarAggregator(60)
    t0 = 1_709_303_400  # a minute boundary
    out = []
    for i in range(12):
        out += agg.add("A", t0 + 5 * i, 10 + i, 11 + i, 9 + i, 10.5 + i, 100)
    (bar,) = out
    assert bar.ts == t0 * 10**9 and (bar.open, bar.high, bar.low, bar.close) == (10, 22, 9, 21.5)
    assert bar.volume == 1200
    assert agg.add("A", t0 + 55, 1, 1, 1, 1, 1) == []  # a repeat of a bar that is out
    # one slot per bar (the loopback server's default) passes through; a gap flushes
    assert [b.ts for b in agg.add("A", t0 + 115, 1, 2, 0.5, 1.5, 7)] == [(t0 + 60) * 10**9]
    assert agg.add("A", t0 + 125, 1, 1, 1, 1, 1) == []
    late = [b.ts for b in agg.add("A", t0 + 235, 1, 1, 1, 1, 1)]
    assert late == [(t0 + 120) * 10**9, (t0 + 180) * 10**9]
