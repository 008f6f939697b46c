"""Binance wire formats <-> tradeloop types, and the kline assembler: pure, no event loop."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from tradeloop.execution.asynchronous.brokers.binance.mapping import (
    MalformedMessageError,
    account_from_binance,
    ccxt_symbol,
    error_body,
    event_from_execution_report,
    fill_from_trade,
    filters_from_symbol_info,
    order_from_binance,
    order_request,
    positions_from_balances,
    split_pair,
    split_venue_id,
    weight_headers,
    ws_signature,
)
from tradeloop.execution.asynchronous.brokers.binance.streams import KlineAssembler
from tradeloop.execution.types import Order, OrderSide, OrderStatus, OrderType, TimeInForce
from tradeloop.testing.binance.venue import default_filters


def test_names() -> None:
    assert split_pair("ACMEUSDT") == ("ACME", "USDT")
    assert split_pair("ETHBTC") == ("ETH", "BTC")
    assert ccxt_symbol("BTCFDUSD") == "BTC/FDUSD"
    assert split_venue_id("ACMEUSDT:17") == ("ACMEUSDT", "17")
    with pytest.raises(ValueError):
        split_pair("USDT")
    with pytest.raises(ValueError):
        split_venue_id("17")


def test_order_request() -> None:
    market = Order("a", "ACMEUSDT", OrderSide.BUY, 2.0, client_order_id="run-1")
    assert order_request(market) == (
        "ACME/USDT",
        "market",
        "buy",
        2.0,
        None,  # a price would make ccxt send quoteOrderQty
        {"newClientOrderId": "run-1"},
    )
    limit = Order("b", "ACMEUSDT", OrderSide.SELL, 1.5, OrderType.LIMIT, TimeInForce.IOC, 99.5)
    assert order_request(limit)[1:] == (
        "limit",
        "sell",
        1.5,
        99.5,
        {"newClientOrderId": "b", "timeInForce": "IOC"},
    )


ORDER = {
    "symbol": "ACMEUSDT",
    "orderId": 7,
    "orderListId": -1,
    "clientOrderId": "run-1",
    "price": "100.00000000",
    "origQty": "2.00000000",
    "executedQty": "1.00000000",
    "cummulativeQuoteQty": "99.50000000",
    "status": "PARTIALLY_FILLED",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
    "time": 1_700_000_000_000,
    "updateTime": 1_700_000_060_000,
}


def test_order_from_binance() -> None:
    o = order_from_binance(ORDER)
    assert (o.id, o.broker_order_id, o.client_order_id) == ("ACMEUSDT:7", "ACMEUSDT:7", "run-1")
    assert (o.type, o.side, o.qty, o.limit_price) == (OrderType.LIMIT, OrderSide.BUY, 2.0, 100.0)
    assert o.status is OrderStatus.PARTIALLY_FILLED and o.avg_fill_price == 99.5
    assert o.created_at == 1_700_000_000_000_000_000 and o.updated_at == 1_700_000_060_000_000_000
    # a cancel's answer: clientOrderId is the cancel's own id, origClientOrderId the order's
    canceled = order_from_binance(
        {**ORDER, "status": "CANCELED", "clientOrderId": "cxl", "origClientOrderId": "run-1"}
    )
    assert canceled.client_order_id == "run-1" and canceled.status is OrderStatus.CANCELED
    market = order_from_binance({**ORDER, "type": "MARKET", "price": "0", "status": "NEW"})
    assert market.limit_price is None and market.status is OrderStatus.PARTIALLY_FILLED
    fresh = order_from_binance({**ORDER, "executedQty": "0", "status": "NEW"})
    assert fresh.status is OrderStatus.ACCEPTED
    assert order_from_binance({**ORDER, "status": "EXPIRED_IN_MATCH"}).status is OrderStatus.EXPIRED
    with pytest.raises(MalformedMessageError, match="orderId"):
        order_from_binance({k: v for k, v in ORDER.items() if k != "orderId"})
    with pytest.raises(MalformedMessageError, match="type"):
        order_from_binance({**ORDER, "type": "OCO_THING"})


REPORT = {
    "e": "executionReport",
    "E": 1_700_000_000_100,
    "s": "ACMEUSDT",
    "c": "run-1",
    "S": "BUY",
    "o": "LIMIT",
    "f": "GTC",
    "q": "2.00000000",
    "p": "100.00000000",
    "C": "",
    "x": "NEW",
    "X": "NEW",
    "i": 7,
    "l": "0",
    "z": "0",
    "L": "0",
    "n": "0",
    "N": None,
    "T": 1_700_000_000_000,
    "t": -1,
    "O": 1_700_000_000_000,
    "Z": "0",
    "Y": "0",
}


def test_execution_reports() -> None:
    new = event_from_execution_report(REPORT)
    assert new is not None and new.kind == "new" and new.fill is None
    assert new.order.id == "ACMEUSDT:7" and new.order.status is OrderStatus.ACCEPTED
    trade = {**REPORT, "x": "TRADE", "X": "PARTIALLY_FILLED", "l": "1", "z": "1", "L": "99.5"}
    trade |= {"n": "0.0995", "N": "USDT", "t": 55, "Z": "99.5", "Y": "99.5"}
    ev = event_from_execution_report(trade)
    assert ev is not None and ev.kind == "partial_fill" and ev.fill is not None
    assert (ev.fill.execution_id, ev.fill.qty, ev.fill.price) == ("ACMEUSDT:55", 1.0, 99.5)
    assert ev.fill.commission == pytest.approx(0.0995)
    last = event_from_execution_report(
        {**trade, "X": "FILLED", "z": "2", "N": "ACME", "n": "0.001"}
    )
    assert last is not None and last.kind == "fill"
    assert last.fill is not None and last.fill.commission == pytest.approx(0.0995)  # base fee
    cancel = event_from_execution_report({**REPORT, "x": "CANCELED", "X": "CANCELED", "c": "cx"})
    assert cancel is not None and cancel.order.client_order_id == "cx"  # C empty: c is used...
    cancel = event_from_execution_report(
        {**REPORT, "x": "CANCELED", "X": "CANCELED", "c": "cx", "C": "run-1"}
    )
    assert cancel is not None and cancel.kind == "canceled"
    assert cancel.order.client_order_id == "run-1"  # ...C, the order's own id, when given
    assert event_from_execution_report({**REPORT, "x": "PENDING_NEW"}) is None
    with pytest.raises(MalformedMessageError, match=r"executionReport: i="):
        event_from_execution_report({k: v for k, v in REPORT.items() if k != "i"})


def test_trades_account_positions() -> None:
    fill = fill_from_trade(
        {
            "symbol": "ACMEUSDT",
            "id": 55,
            "orderId": 7,
            "price": "99.5",
            "qty": "1",
            "commission": "0.0995",
            "commissionAsset": "USDT",
            "time": 1_700_000_000_000,
        }
    )
    assert (fill.execution_id, fill.broker_order_id, fill.qty, fill.price) == (
        "ACMEUSDT:55",
        "ACMEUSDT:7",
        1.0,
        99.5,
    )
    assert fill.ts == 1_700_000_000_000_000_000
    raw = {
        "uid": 9,
        "balances": [
            {"asset": "USDT", "free": "900", "locked": "100"},
            {"asset": "ACME", "free": "2", "locked": "1"},
        ],
    }
    account = account_from_binance(raw, "USDT", {"ACMEUSDT": 10.0}, ["ACMEUSDT", "BOLTUSDT"])
    assert (account.cash, account.equity, account.buying_power) == (1000.0, 1030.0, 900.0)
    assert account.allow_short is False and account.leverage == 1.0
    (pos,) = positions_from_balances(raw, ["ACMEUSDT", "BOLTUSDT"], {"ACMEUSDT": 10.0})
    assert (pos.symbol, pos.qty, pos.last_price) == ("ACMEUSDT", 3.0, 10.0)
    with pytest.raises(MalformedMessageError, match="balances"):
        account_from_binance({}, "USDT", {}, [])


def test_filters_round_trip() -> None:
    f = filters_from_symbol_info({"filters": default_filters().to_json()})
    assert (f.tick_size, f.step_size, f.min_qty, f.min_notional) == (0.01, 0.001, 0.001, 5.0)
    legacy = filters_from_symbol_info(
        {"filters": [{"filterType": "MIN_NOTIONAL", "minNotional": "10"}]}
    )
    assert legacy.min_notional == 10.0


def test_ws_signature_sorted_unencoded() -> None:
    params = {"timestamp": 5, "apiKey": "k", "recvWindow": 10000, "signature": "x"}
    expected = hmac.new(b"s", b"apiKey=k&recvWindow=10000&timestamp=5", hashlib.sha256)
    assert ws_signature("s", params) == expected.hexdigest()


def test_weight_headers_and_error_body() -> None:
    wall = 1_700_000_030.0  # 30 s into a minute
    out = weight_headers({"x-mbx-used-weight-1m": "5990", "Retry-After": "7"}, 6000, wall)
    assert out == {
        "Retry-After": "7",
        "X-Ratelimit-Limit": "6000",
        "X-Ratelimit-Remaining": "10",
        "X-Ratelimit-Reset": "1700000040",  # the next minute boundary
    }
    assert weight_headers({"X-MBX-USED-WEIGHT-1M": "junk"}, 6000, wall) == {}
    assert weight_headers({}, 6000, wall) == {}
    assert error_body('binance {"code": -2010, "msg": "Duplicate order sent."}') == (
        -2010,
        "Duplicate order sent.",
    )
    assert error_body("binance GET http://x") == (None, "")


def kline(t: int, close: str, closed: bool) -> dict[str, object]:
    k = {"t": t, "s": "ACMEUSDT", "o": "1", "h": "2", "l": "0.5", "c": close, "v": "3", "x": closed}
    return {"e": "kline", "k": k}


def test_kline_assembler() -> None:
    a = KlineAssembler()
    assert a.feed(kline(0, "1.1", False)) == []
    assert a.feed(kline(0, "1.2", False)) == []
    (bar,) = a.feed(kline(60_000, "1.5", False))  # a later kline closes the earlier one
    assert (bar.ts, bar.close) == (0, 1.2)
    (bar,) = a.feed(kline(60_000, "1.6", True))  # or the closed flag
    assert (bar.ts, bar.close) == (60_000_000_000, 1.6)
    assert a.feed(kline(60_000, "1.7", True)) == []  # emitted once
    assert a.feed(kline(0, "9", True)) == []  # never back in time
    assert a.feed({"e": "24hrTicker"}) == []
    with pytest.raises(MalformedMessageError):
        a.feed({"e": "kline", "k": {"t": 1}})
