"""The loopback Alpaca venue takes bracket, oco and oto orders and executes them with the core:
legs in the answers (``legs``), leg events on the stream, Alpaca's refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tradeloop.execution.asynchronous.brokers.alpaca.mapping import (
    order_from_json,
    trade_update_from_json,
)
from tradeloop.execution.types import Bar, OrderClass, OrderStatus, OrderType
from tradeloop.testing.alpaca.exchange import (
    ERR_FORBIDDEN,
    ERR_INVALID,
    AlpacaError,
    AlpacaVenue,
    parse_order_request,
)

MIN = 60_000_000_000
T0 = int(datetime(2024, 3, 4, 14, 30, tzinfo=UTC).timestamp()) * 1_000_000_000  # a Monday


def venue(events: list[dict[str, Any]] | None = None) -> AlpacaVenue:
    return AlpacaVenue(
        symbols=("ACME",),
        start=T0 - 1_000_000_000,
        seed=3,
        reference_prices={"ACME": 100.0},
        on_event=events.append if events is not None else None,
    )


def bar(i: int, o: float, h: float, lo: float, c: float) -> Bar:
    return Bar("ACME", T0 + i * MIN, o, h, lo, c, 10_000.0)


def bracket(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": "ACME",
        "qty": "10",
        "side": "buy",
        "type": "market",
        "time_in_force": "gtc",
        "order_class": "bracket",
        "take_profit": {"limit_price": "110"},
        "stop_loss": {"stop_price": "95", "limit_price": "94.5"},
        "client_order_id": "b1",
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def refused(call: Any, *args: Any) -> AlpacaError:
    with pytest.raises(AlpacaError) as info:
        call(*args)
    return info.value


def test_a_bracket_is_answered_with_its_held_legs() -> None:
    v = venue()
    answer = v.submit(bracket())
    assert (answer["order_class"], answer["status"], answer["client_order_id"]) == (
        "bracket",
        "new",
        "b1",
    )
    tp, sl = answer["legs"]
    assert (tp["type"], tp["side"], tp["limit_price"], tp["status"]) == (
        "limit",
        "sell",
        "110",
        "held",
    )
    assert (sl["type"], sl["stop_price"], sl["limit_price"], sl["status"]) == (
        "stop_limit",
        "95",
        "94.5",
        "held",
    )
    assert tp["order_class"] == sl["order_class"] == "bracket" and tp["legs"] is None
    parsed = order_from_json(answer)
    assert parsed.order_class is OrderClass.BRACKET
    assert [(leg.id, leg.status, leg.parent_id) for leg in parsed.legs] == [
        (tp["id"], OrderStatus.HELD, answer["id"]),
        (sl["id"], OrderStatus.HELD, answer["id"]),
    ]
    assert v.get_order(answer["id"]) == answer
    flat = v.list_orders({"status": "all", "direction": "asc"})
    assert [o["id"] for o in flat] == [answer["id"], tp["id"], sl["id"]]
    assert flat[0]["legs"] is None  # listed on their own, not nested
    nested = v.list_orders({"status": "all", "nested": "true"})
    assert [o["id"] for o in nested] == [answer["id"]] and nested[0]["legs"] == [tp, sl]
    # held legs are open orders (they do not trade yet)
    open_ids = [o["id"] for o in v.list_orders({"status": "open"})]
    assert open_ids == [sl["id"], tp["id"], answer["id"]]


def test_the_entrys_fill_activates_the_legs_and_one_exit_cancels_the_other() -> None:
    events: list[dict[str, Any]] = []
    v = venue(events)
    answer = v.submit(bracket())
    tp_id, sl_id = (leg["id"] for leg in answer["legs"])
    v.on_bar(bar(0, 100, 101, 99, 100))
    v.on_bar(bar(1, 104, 111, 103, 108))
    kinds = [(e["event"], e["order"]["id"]) for e in events]
    assert kinds == [
        ("new", answer["id"]),
        ("fill", answer["id"]),
        ("new", tp_id),
        ("new", sl_id),
        ("fill", tp_id),
        ("canceled", sl_id),
    ]
    first = trade_update_from_json(events[0])
    assert [leg.id for leg in first.order.legs] == [tp_id, sl_id]  # the stream names the legs
    fill = trade_update_from_json(events[4])
    assert fill.fill is not None and fill.fill.position_qty == 0.0
    assert trade_update_from_json(events[1]).fill.position_qty == 10.0  # type: ignore[union-attr]
    assert v.positions() == []


def test_an_oco_closes_a_held_position_and_is_refused_beyond_it() -> None:
    v = venue()
    v.submit({"symbol": "ACME", "qty": 5, "side": "buy", "type": "market", "time_in_force": "day"})
    v.on_bar(bar(0, 100, 101, 99, 100))
    body = {
        "symbol": "ACME",
        "qty": "5",
        "side": "sell",
        "type": "limit",
        "time_in_force": "gtc",
        "order_class": "oco",
        "take_profit": {"limit_price": "110"},
        "stop_loss": {"stop_price": "95"},
    }
    err = refused(v.submit, {**body, "qty": "6"})
    assert (err.status, err.code) == (403, ERR_FORBIDDEN)
    answer = v.submit(body)
    assert (answer["limit_price"], answer["status"]) == ("110", "new")
    (sl,) = answer["legs"]
    assert (sl["type"], sl["status"]) == ("stop", "new")  # works at once
    # the position's 5 shares are held once for both exits: no more can be sold
    simple = {"symbol": "ACME", "qty": "1", "side": "sell", "type": "limit", "limit_price": "120",
              "time_in_force": "gtc"}  # fmt: skip
    assert refused(v.submit, simple).code == ERR_FORBIDDEN
    v.on_bar(bar(1, 99, 99, 90, 92))
    assert v.get_order(sl["id"])["status"] == "filled"
    assert v.get_order(answer["id"])["status"] == "canceled"
    assert v.positions() == []


@pytest.mark.parametrize(
    ("over", "words"),
    [
        ({"stop_loss": None}, "stop_loss=None: required for order_class 'bracket'"),
        ({"time_in_force": "ioc"}, "bracket orders must be 'day' or 'gtc'"),
        ({"take_profit": {"limit_price": "90"}}, "take_profit.limit_price=90.0"),
        ({"order_class": "oco"}, "oco orders must be type 'limit'"),
        ({"order_class": "oto"}, "exactly one of take_profit or stop_loss"),
    ],
)
def test_alpacas_order_class_rules_are_422s(over: dict[str, Any], words: str) -> None:
    err = refused(venue().submit, bracket(**over))
    assert (err.status, err.code) == (422, ERR_INVALID)
    assert words in err.message


def test_legs_cannot_be_replaced_and_a_cancel_takes_the_linked_exit() -> None:
    v = venue()
    answer = v.submit(bracket())
    v.on_bar(bar(0, 100, 101, 99, 100))
    tp_id, sl_id = (leg["id"] for leg in answer["legs"])
    err = refused(v.replace, sl_id, {"stop_price": "96"})
    assert (err.status, err.code) == (422, ERR_INVALID) and "cannot be replaced" in err.message
    v.cancel(tp_id)
    assert [v.get_order(i)["status"] for i in (tp_id, sl_id)] == ["canceled", "canceled"]


def test_the_request_parser_keeps_the_legs() -> None:
    req = parse_order_request(bracket())
    assert req.order_class is OrderClass.BRACKET and req.type is OrderType.MARKET
    assert req.take_profit == {"limit_price": 110.0}
    assert req.stop_loss == {"stop_price": 95.0, "limit_price": 94.5}
    err = refused(parse_order_request, bracket(qty="1.5"))
    assert "fractional orders" in err.message
