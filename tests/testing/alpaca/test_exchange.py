"""The loopback Alpaca venue's pure parts: request rules and codes, account refusals, UUIDs,
activities, the rolling-window rate limit and the market session clock. No server, no loop."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tradeloop.execution.asynchronous.brokers.alpaca.mapping import (
    order_from_json,
    parse_ts,
    trade_update_from_json,
)
from tradeloop.execution.types import Bar, OrderSide, OrderStatus, OrderType, TimeInForce
from tradeloop.testing.alpaca.exchange import (
    ERR_FORBIDDEN,
    ERR_INVALID,
    ERR_NOT_FOUND,
    ERR_UNPROCESSABLE,
    AlpacaError,
    AlpacaVenue,
    RateLimitWindow,
    check_price_increment,
    market_session,
    parse_order_request,
)

MIN = 60_000_000_000
T0 = int(datetime(2024, 3, 4, 14, 30, tzinfo=UTC).timestamp()) * 1_000_000_000  # a Monday
DAY = 86_400_000_000_000


def venue(**kwargs: Any) -> AlpacaVenue:
    kwargs.setdefault("symbols", ("ACME", "BOLT"))
    kwargs.setdefault("start", T0 - 1_000_000_000)
    kwargs.setdefault("seed", 7)
    return AlpacaVenue(**kwargs)


def bar(symbol: str, i: int, price: float = 100.0, day: int = 0) -> Bar:
    return Bar(symbol, T0 + day * DAY + i * MIN, price, price + 1, price - 1, price, 10_000.0)


def order(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": "ACME",
        "qty": 10,
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def refused(call: Any, *args: Any) -> AlpacaError:
    with pytest.raises(AlpacaError) as info:
        call(*args)
    return info.value


def is_uuid4(text: str) -> bool:
    return uuid.UUID(text).version == 4 and str(uuid.UUID(text)) == text


# ------------------------------------------------------------------------------ request rules


def test_valid_requests_accept_numbers_and_strings() -> None:
    req = parse_order_request(order(qty="3", type="limit", limit_price="101.5"))
    assert (req.qty, req.type, req.limit_price, req.tif) == (3.0, OrderType.LIMIT, 101.5, "day")
    req = parse_order_request(
        order(side="sell", type="stop_limit", stop_price=99, limit_price=98.75, time_in_force="gtc")
    )
    assert (req.side, req.stop_price, req.limit_price) == (OrderSide.SELL, 99.0, 98.75)
    req = parse_order_request(order(type="trailing_stop", trail_percent=1.5, side="sell"))
    assert (req.trail_percent, req.trail_price) == (1.5, None)
    assert parse_order_request(order(qty=1.0)).qty == 1.0  # alpaca-py sends floats
    assert parse_order_request(order(qty=0.5)).qty == 0.5  # fractional: market + day


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ({"type": "limit"}, ERR_INVALID, "limit_price is required"),
        ({"type": "stop_limit", "limit_price": 10}, ERR_INVALID, "stop_price is required"),
        ({"type": "stop"}, ERR_INVALID, "stop_price is required"),
        ({"limit_price": 10}, ERR_INVALID, "limit_price is not allowed"),
        ({"type": "trailing_stop"}, ERR_INVALID, "exactly one of trail_price"),
        (
            {"type": "trailing_stop", "trail_price": 1, "trail_percent": 1},
            ERR_INVALID,
            "exactly one of trail_price",
        ),
        (
            {"type": "trailing_stop", "trail_price": 1, "time_in_force": "ioc"},
            ERR_INVALID,
            "time_in_force day or gtc",
        ),
        ({"notional": 100, "qty": None}, ERR_INVALID, "notional orders are not supported"),
        ({"notional": 100}, ERR_INVALID, "mutually exclusive"),
        ({"qty": None}, ERR_INVALID, "qty is required"),
        ({"qty": -1}, ERR_INVALID, "must be > 0"),
        ({"qty": "ten"}, ERR_INVALID, "must be a number"),
        ({"time_in_force": "opg"}, ERR_INVALID, "opg is not supported by this server"),
        ({"time_in_force": "cls"}, ERR_INVALID, "cls is not supported by this server"),
        ({"time_in_force": "week"}, ERR_INVALID, "invalid time_in_force"),
        ({"order_class": "mleg"}, ERR_INVALID, "mleg is not supported by this server"),
        ({"order_class": "triple"}, ERR_INVALID, "invalid order_class"),
        ({"take_profit": {"limit_price": 1}}, ERR_INVALID, "take_profit"),
        ({"legs": [{"symbol": "X"}]}, ERR_INVALID, "mleg"),
        (
            {"order_class": "bracket", "take_profit": {"limit_price": "x"}},
            ERR_INVALID,
            "invalid take_profit.limit_price",
        ),
        ({"order_class": "oto", "stop_loss": {"stop": 1}}, ERR_INVALID, "stop_loss.stop"),
        ({"order_class": "oto", "stop_loss": [1]}, ERR_INVALID, "stop_loss must be an object"),
        (
            {"order_class": "oto", "stop_loss": {"stop_price": 9.999}},
            ERR_UNPROCESSABLE,
            "sub-penny",
        ),
        ({"side": "short"}, ERR_INVALID, "invalid side"),
        ({"type": "pegged"}, ERR_INVALID, "invalid type"),
        ({"symbol": ""}, ERR_INVALID, "symbol is required"),
        ({"qty": 0.5, "type": "limit", "limit_price": 10}, ERR_INVALID, "fractional orders"),
        ({"qty": 0.5, "time_in_force": "gtc"}, ERR_INVALID, "fractional orders"),
        ({"client_order_id": "x" * 49}, ERR_INVALID, "no more than 48 characters"),
        ({"extended_hours": True}, ERR_INVALID, "extended hours orders must be limit"),
        ({"type": "limit", "limit_price": 100.123}, ERR_UNPROCESSABLE, "sub-penny"),
        ({"type": "limit", "limit_price": "0.12345"}, ERR_UNPROCESSABLE, "sub-penny"),
        ({"type": "stop", "stop_price": 10.001}, ERR_UNPROCESSABLE, "sub-penny"),
    ],
)
def test_invalid_requests_get_alpacas_code(fields: dict[str, Any], code: int, words: str) -> None:
    err = refused(parse_order_request, order(**fields))
    assert (err.status, err.code) == (422, code)
    assert words in err.message
    assert err.body() == {"code": code, "message": err.message}


def test_a_body_that_is_not_an_object_is_invalid() -> None:
    assert refused(parse_order_request, [1, 2]).code == ERR_INVALID


@pytest.mark.parametrize("price", [1.0, 1.25, 101.5, "100.10", 0.1234, 0.5, 12345.67])
def test_prices_with_allowed_increments(price: Any) -> None:
    check_price_increment("limit_price", float(price))


@pytest.mark.parametrize("price", [1.001, 100.005, 0.12345, 1.2500001])
def test_sub_penny_prices(price: float) -> None:
    err = refused(check_price_increment, "limit_price", price)
    assert (err.status, err.code) == (422, ERR_UNPROCESSABLE)


# ------------------------------------------------------------------------------ orders and ids


def test_submit_answers_a_new_order_and_streams_new() -> None:
    events: list[dict[str, Any]] = []
    v = venue(on_event=events.append)
    placed = v.submit(order(client_order_id="c-1"))
    assert placed["status"] == "new" and placed["client_order_id"] == "c-1"
    assert is_uuid4(placed["id"]) and placed["asset_id"] == AlpacaVenue.asset_id("ACME")
    assert placed["created_at"] == "2024-03-04T14:29:59Z"  # the venue's clock, before any bar
    assert [e["event"] for e in events] == ["new"]
    assert events[0]["order"] == placed and "execution_id" not in events[0]
    parsed = order_from_json(placed)  # the broker's own parser reads it
    assert (parsed.id, parsed.status) == (placed["id"], OrderStatus.ACCEPTED)


def test_fill_event_and_lookups() -> None:
    events: list[dict[str, Any]] = []
    v = venue(on_event=events.append)
    placed = v.submit(order(qty=4))
    v.on_bar(bar("ACME", 0, price=50.0))
    fill = events[-1]
    assert fill["event"] == "fill"
    assert (fill["price"], fill["qty"], fill["position_qty"]) == ("50", "4", "4")
    assert is_uuid4(fill["execution_id"]) and fill["timestamp"] == "2024-03-04T14:30:00Z"
    event = trade_update_from_json(fill)
    assert event.fill is not None and event.fill.execution_id == fill["execution_id"]
    assert v.get_order(placed["id"])["status"] == "filled"
    assert v.get_order_by_client_id(placed["client_order_id"])["filled_avg_price"] == "50"
    assert v.clock()["timestamp"] == "2024-03-04T14:30:00Z"


def test_venue_ids_are_uuids_and_internal_ids_never_show() -> None:
    v = venue()
    a = v.submit(order())
    b = v.submit(order(symbol="BOLT"))
    v.on_bar(bar("ACME", 0))
    text = repr([a, b, v.events, v.activities, v.state()])
    assert "O0000" not in text and "E0000" not in text
    assert a["id"] != b["id"] and a["client_order_id"] != b["client_order_id"]
    assert is_uuid4(a["client_order_id"])  # Alpaca names orders sent without one
    assert a["asset_id"] != b["asset_id"]
    assert venue().asset_id("ACME") == a["asset_id"]  # stable per symbol, across venues
    assert venue(seed=7).submit(order())["id"] == a["id"]  # seeded: reproducible
    assert venue(seed=8).submit(order())["id"] != a["id"]
    assert is_uuid4(v.account()["id"])


def test_duplicate_client_order_id_is_refused_forever() -> None:
    v = venue()
    placed = v.submit(order(client_order_id="dup", type="limit", limit_price=1))
    err = refused(v.submit, order(client_order_id="dup"))
    assert (err.status, err.code, err.message) == (
        422,
        ERR_INVALID,
        "client_order_id must be unique",
    )
    v.cancel(placed["id"])
    assert refused(v.submit, order(client_order_id="dup")).code == ERR_INVALID


def test_unknown_orders_and_symbols() -> None:
    v = venue()
    missing = str(uuid.uuid4())
    for call, args in (
        (v.get_order, (missing,)),
        (v.cancel, (missing,)),
        (v.replace, (missing, {})),
        (v.get_order_by_client_id, ("nope",)),
    ):
        err = refused(call, *args)
        assert (err.status, err.code) == (404, ERR_NOT_FOUND)
    assert refused(v.submit, order(symbol="ZZZZ")).code == ERR_INVALID
    assert refused(v.asset, "ZZZZ").code == ERR_NOT_FOUND
    assert v.asset("ACME")["symbol"] == "ACME"
    assert v.asset(AlpacaVenue.asset_id("BOLT"))["symbol"] == "BOLT"


def test_cancel_is_refused_once_an_order_is_done() -> None:
    events: list[dict[str, Any]] = []
    v = venue(on_event=events.append)
    filled = v.submit(order())
    v.on_bar(bar("ACME", 0))
    err = refused(v.cancel, filled["id"])
    assert (err.status, err.code) == (422, ERR_UNPROCESSABLE)
    assert '"filled"' in err.message
    resting = v.submit(order(type="limit", limit_price=1, time_in_force="gtc"))
    v.cancel(resting["id"])
    assert events[-1]["event"] == "canceled" and events[-1]["order"]["canceled_at"] is not None
    assert refused(v.cancel, resting["id"]).code == ERR_UNPROCESSABLE


def test_replace_makes_a_new_order_and_the_old_one_replaced() -> None:
    events: list[dict[str, Any]] = []
    v = venue(on_event=events.append)
    old = v.submit(order(type="limit", limit_price=90, time_in_force="gtc"))
    new = v.replace(old["id"], {"limit_price": "91.5", "qty": 5, "client_order_id": "r-1"})
    assert new["id"] != old["id"] and new["replaces"] == old["id"]
    assert (new["limit_price"], new["qty"], new["client_order_id"]) == ("91.5", "5", "r-1")
    stale = v.get_order(old["id"])
    assert (stale["status"], stale["replaced_by"]) == ("replaced", new["id"])
    assert [e["event"] for e in events[-2:]] == ["new", "replaced"]
    assert refused(v.replace, old["id"], {"qty": 1}).code == ERR_UNPROCESSABLE
    assert refused(v.replace, new["id"], {"client_order_id": "r-1"}).code == ERR_INVALID
    assert refused(v.replace, new["id"], {"stop_price": 80}).code == ERR_INVALID
    assert refused(v.replace, new["id"], {"limit_price": 91.555}).code == ERR_UNPROCESSABLE
    trailing = v.submit(order(side="buy", type="trailing_stop", trail_price=2, time_in_force="gtc"))
    moved = v.replace(trailing["id"], {"trail": 3})
    assert (moved["trail_price"], moved["trail_percent"]) == ("3", None)


def test_list_orders_filters() -> None:
    v = venue()
    a = v.submit(order(type="limit", limit_price=1, time_in_force="gtc"))
    b = v.submit(order(symbol="BOLT", side="sell", qty=1))
    v.on_bar(bar("BOLT", 0))
    c = v.submit(order(type="limit", limit_price=2, time_in_force="gtc"))
    ids = lambda **q: [o["id"] for o in v.list_orders(q)]  # noqa: E731
    assert ids() == [c["id"], a["id"]]  # open, newest first
    assert ids(status="closed") == [b["id"]]
    assert ids(status="all", direction="asc") == [a["id"], b["id"], c["id"]]
    assert ids(status="all", limit="1") == [c["id"]]
    assert ids(status="all", symbols="BOLT,CRUX") == [b["id"]]
    assert ids(status="all", side="sell") == [b["id"]]
    assert ids(status="all", after="2024-03-04T14:29:59Z") == [c["id"]]
    assert ids(status="all", until="2024-03-04T14:30:00+00:00") == [b["id"], a["id"]]
    assert ids(status="all", nested="True") == [c["id"], b["id"], a["id"]]
    for bad in ({"limit": "501"}, {"status": "done"}, {"after": "yesterday"}, {"side": "x"}):
        assert refused(v.list_orders, bad).code == ERR_INVALID


# ------------------------------------------------------------------------------ account refusals


def test_insufficient_buying_power_is_a_403_and_registers_nothing() -> None:
    v = venue(initial_cash=1_000.0)
    v.on_bar(bar("ACME", 0, price=100.0))
    err = refused(v.submit, order(qty=11, client_order_id="big"))
    assert (err.status, err.code) == (403, ERR_FORBIDDEN)
    assert err.message.startswith("insufficient buying power")
    assert v.list_orders({"status": "all"}) == [] and v.events == []
    v.submit(order(qty=6, client_order_id="big"))  # the id was not used up
    assert refused(v.submit, order(qty=5)).code == ERR_FORBIDDEN  # open orders hold power
    assert float(v.account()["buying_power"]) == pytest.approx(400.0)


def test_an_order_cannot_flip_a_long_position_to_short() -> None:
    v = venue()
    v.submit(order(qty=10))
    v.on_bar(bar("ACME", 0))
    err = refused(v.submit, order(side="sell", qty=15))
    assert (err.status, err.code) == (403, ERR_FORBIDDEN)
    assert "insufficient qty available" in err.message and "long to short" in err.message
    v.submit(order(side="sell", qty=6, type="limit", limit_price=500, time_in_force="gtc"))
    err = refused(v.submit, order(side="sell", qty=5))  # 6 of 10 are held for that order
    assert "available: 4" in err.message
    assert v.positions()[0]["qty_available"] == "4"
    v.submit(order(side="sell", qty=4))


def test_an_order_cannot_flip_a_short_position_to_long() -> None:
    v = venue()
    v.submit(order(side="sell", qty=5))
    v.on_bar(bar("ACME", 0))
    pos = v.position("ACME")
    assert (pos["side"], pos["qty"], pos["market_value"]) == ("short", "-5", "-500")
    err = refused(v.submit, order(side="buy", qty=6))
    assert err.code == ERR_FORBIDDEN and "short to long" in err.message
    v.submit(order(side="buy", qty=5))


def test_short_selling_rules() -> None:
    v = venue(allow_short=False)
    err = refused(v.submit, order(side="sell", qty=1))
    assert (err.code, err.message) == (ERR_FORBIDDEN, "account is not allowed to short")
    assert v.asset("ACME")["shortable"] is False
    err = refused(venue().submit, order(side="sell", qty=0.5))
    assert (err.code, err.message) == (ERR_FORBIDDEN, "fractional orders cannot be sold short")


def test_positions_close_and_account() -> None:
    v = venue()
    v.submit(order(qty=10))
    v.on_bar(bar("ACME", 0, price=100.0))
    v.on_bar(bar("ACME", 1, price=110.0))
    pos = v.position("ACME")
    assert (pos["qty"], pos["avg_entry_price"], pos["current_price"]) == ("10", "100", "110")
    assert (pos["unrealized_pl"], pos["exchange"], pos["asset_class"]) == (
        "100",
        "NASDAQ",
        "us_equity",
    )
    assert v.position(AlpacaVenue.asset_id("ACME"))["symbol"] == "ACME"
    assert refused(v.position, "BOLT").code == ERR_NOT_FOUND
    account = v.account()
    assert (account["status"], account["cash"], account["equity"]) == ("ACTIVE", "99000", "100100")
    assert account["long_market_value"] == "1100" and account["shorting_enabled"] is True
    half = v.close_position("ACME", {"percentage": "50"})
    assert (half["side"], half["qty"], half["type"]) == ("sell", "5", "market")
    assert refused(v.close_position, "ACME", {"qty": "9"}).code == ERR_FORBIDDEN  # 5 are held
    rest = v.close_all({"cancel_orders": "true"})
    assert [(r["symbol"], r["status"], r["body"]["qty"]) for r in rest] == [("ACME", 200, "10")]
    v.on_bar(bar("ACME", 2, price=120.0))
    assert v.positions() == []
    assert refused(v.close_position, "ACME", {}).code == ERR_NOT_FOUND


def test_cancel_all_answers_one_entry_per_open_order() -> None:
    v = venue()
    a = v.submit(order(type="limit", limit_price=1, time_in_force="gtc"))
    b = v.submit(order(type="limit", limit_price=2, time_in_force="gtc"))
    out = v.cancel_all()
    assert [(e["id"], e["status"], e["body"]["status"]) for e in out] == [
        (a["id"], 200, "canceled"),
        (b["id"], 200, "canceled"),
    ]
    assert v.cancel_all() == []


# ------------------------------------------------------------------------------ simulated time


def test_day_orders_expire_on_the_next_day_and_at_the_end_of_data() -> None:
    events: list[dict[str, Any]] = []
    v = venue(on_event=events.append)
    day = v.submit(order(type="limit", limit_price=1))
    gtc = v.submit(order(type="limit", limit_price=1, time_in_force="gtc"))
    v.on_bar(bar("ACME", 0))
    v.on_bar(bar("ACME", 0, day=1))
    assert v.get_order(day["id"])["status"] == "expired" and events[-1]["event"] == "expired"
    late = v.submit(order(type="limit", limit_price=1))
    assert v.clock()["is_open"] is True
    v.end_of_data()
    assert v.get_order(late["id"])["status"] == "expired"
    assert v.get_order(gtc["id"])["status"] == "new"
    clock = v.clock()
    assert clock["is_open"] is False and clock["timestamp"] == "2024-03-05T14:30:00Z"


def test_every_order_type_fills_through_the_exchange() -> None:
    v = venue()
    ids = [
        v.submit(order(type="limit", limit_price=101, time_in_force="gtc"))["id"],
        v.submit(order(type="stop", stop_price=100.5, qty=1))["id"],
        v.submit(order(type="stop_limit", stop_price=100.5, limit_price=101, qty=1))["id"],
        v.submit(order(type="trailing_stop", trail_price=0.5, qty=1))["id"],
        v.submit(order(time_in_force="ioc", qty=1))["id"],
        v.submit(order(time_in_force="fok", qty=1))["id"],
    ]
    v.on_bar(Bar("ACME", T0, 100.0, 102.0, 99.0, 101.0, 1e6))
    assert [v.get_order(i)["status"] for i in ids] == ["filled"] * 6
    assert parse_order_request(order(time_in_force="fok")).tif is TimeInForce.FOK


def test_fill_activities_page_and_filter() -> None:
    v = venue()
    for i in range(5):
        v.submit(order(qty=1))
        v.on_bar(bar("ACME", i, price=100.0 + i))
    acts = v.fill_activities({})
    assert [a["price"] for a in acts] == ["104", "103", "102", "101", "100"]  # newest first
    first = acts[-1]
    assert first["activity_type"] == "FILL" and first["type"] == "fill"
    assert (first["qty"], first["side"], first["symbol"], first["cum_qty"]) == (
        "1",
        "buy",
        "ACME",
        "1",
    )
    assert (first["leaves_qty"], first["order_status"]) == ("0", "filled")
    assert first["id"].startswith("20240304143000000::") and is_uuid4(first["account_id"])
    assert v.get_order(first["order_id"])["status"] == "filled"
    assert first["transaction_time"] == "2024-03-04T14:30:00Z"
    page1 = v.fill_activities({"direction": "asc", "page_size": "2"})
    page2 = v.fill_activities({"direction": "asc", "page_size": "2", "page_token": page1[-1]["id"]})
    page3 = v.fill_activities({"direction": "asc", "page_size": "2", "page_token": page2[-1]["id"]})
    assert [a["price"] for a in page1 + page2 + page3] == ["100", "101", "102", "103", "104"]
    after = v.fill_activities({"after": "2024-03-04T14:31:00Z", "until": "2024-03-04T14:34:00Z"})
    assert [a["price"] for a in after] == ["103", "102"]
    assert v.fill_activities({"activity_types": "FILL,DIV"}) == acts
    assert v.fill_activities({"activity_types": "DIV"}) == []
    assert v.fill_activities({}, "FILL") == acts and v.fill_activities({}, "DIV") == []
    assert refused(v.fill_activities, {"page_token": "nope"}).code == ERR_INVALID
    assert refused(v.fill_activities, {"page_size": "101"}).code == ERR_INVALID


def test_state_reports_what_the_venue_holds() -> None:
    v = venue()
    v.submit(order(qty=2))
    v.on_bar(bar("ACME", 0, price=50.0))
    state = v.state()
    assert state["cash"] == pytest.approx(99_900.0) and state["bars"] == 1
    assert state["positions"] == [
        {"symbol": "ACME", "qty": 2.0, "avg_entry_price": 50.0, "current_price": 50.0}
    ]
    assert [o["status"] for o in state["orders"]] == ["filled"]
    assert parse_ts(state["clock"]) == T0


# ------------------------------------------------------------------------------ rate limit, clock


def test_rate_limit_is_a_rolling_window() -> None:
    window = RateLimitWindow(3, 60.0)
    answers = [window.hit("k", t) for t in (100.0, 110.0, 120.0, 130.0)]
    assert [a.allowed for a in answers] == [True, True, True, False]
    assert [a.remaining for a in answers] == [2, 1, 0, 0]
    assert {a.reset for a in answers} == {160}
    assert answers[3].headers() == {
        "X-Ratelimit-Limit": "3",
        "X-Ratelimit-Remaining": "0",
        "X-Ratelimit-Reset": "160",
    }
    assert window.hit("k", 160.5).allowed  # the first request left the window
    assert not window.hit("k", 161.0).allowed  # the refused one was not counted, 110 still is
    assert window.hit("other", 161.0).remaining == 2  # per key
    assert window.hit("k", 170.5).reset == 180  # 110 left; 120 is now the oldest


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_rate_limit_settings_are_checked(bad: Any) -> None:
    from tradeloop.errors import ConfigError

    with pytest.raises(ConfigError, match="rate_limit"):
        RateLimitWindow(bad)


def ns(text: str) -> int:
    return parse_ts(text)


@pytest.mark.parametrize(
    ("now", "next_open", "next_close"),
    [
        ("2024-03-01T14:29:00Z", "2024-03-01T14:30:00Z", "2024-03-01T21:00:00Z"),  # Fri, EST
        ("2024-03-01T15:00:00Z", "2024-03-04T14:30:00Z", "2024-03-01T21:00:00Z"),
        ("2024-03-01T21:00:00Z", "2024-03-04T14:30:00Z", "2024-03-04T21:00:00Z"),
        ("2024-03-09T12:00:00Z", "2024-03-11T13:30:00Z", "2024-03-11T20:00:00Z"),  # to EDT
    ],
)
def test_market_session(now: str, next_open: str, next_close: str) -> None:
    assert market_session(ns(now)) == (ns(next_open), ns(next_close))
