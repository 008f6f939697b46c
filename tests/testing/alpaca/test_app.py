"""The loopback Alpaca server over real sockets, driven by raw aiohttp clients on 127.0.0.1:
auth, rate limits, error bodies, both stream handshakes and encodings, the connection limit,
the test API, and the server's own shutdown. Every test leaves no task, thread or process."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import selectors
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from aiohttp import ClientConnectorError, ClientSession, ClientWebSocketResponse, WSMsgType, web
from multidict import CIMultiDict

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.errors import ConfigError, EngineError
from tradeloop.testing.alpaca import DEFAULT_KEY_ID, DEFAULT_SECRET, AlpacaServer, ServerHooks
from tradeloop.testing.alpaca.app import _is_loopback
from tradeloop.testing.alpaca.server import AlpacaServerThread

KEY, SECRET = DEFAULT_KEY_ID, DEFAULT_SECRET
AUTH = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
MIN = 60_000_000_000
T0 = 1_709_303_400_000_000_000  # 2024-03-01 14:30 UTC


def feed(n: int = 6, symbols: tuple[str, ...] = ("ACME", "BOLT")) -> BarFeed:
    series = []
    for k, sym in enumerate(symbols):
        opens = [100.0 + 10 * k + i for i in range(n)]
        series.append(
            SymbolSeries(
                sym,
                [T0 + i * MIN for i in range(n)],
                opens,
                [o + 2 for o in opens],
                [o - 2 for o in opens],
                [o + 1 for o in opens],
                [1000.0] * n,
            )
        )
    return BarFeed(series)


def run(test: Callable[[], Awaitable[None]], timeout: float = 30.0) -> None:
    """Run an async test, bounded in time, and check it left no task behind."""

    async def main() -> None:
        await asyncio.wait_for(test(), timeout)
        me = asyncio.current_task()
        leftover = [t for t in asyncio.all_tasks() if t is not me]
        assert leftover == []

    asyncio.run(main())


async def call(
    session: ClientSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = AUTH,
    **kwargs: Any,
) -> tuple[int, Any, CIMultiDict[str]]:
    async with session.request(method, url, headers=headers, **kwargs) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if text else None, CIMultiDict(resp.headers)


async def receive_json(ws: ClientWebSocketResponse, kind: WSMsgType = WSMsgType.BINARY) -> Any:
    msg = await ws.receive(timeout=5)
    assert msg.type is kind, msg
    return json.loads(msg.data)


async def receive_msgpack(ws: ClientWebSocketResponse) -> Any:
    msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.BINARY, msg
    return msgpack.unpackb(msg.data)


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


AUTHENTICATE = {"action": "authenticate", "data": {"key_id": KEY, "secret_key": SECRET}}
LISTEN = {"action": "listen", "data": {"streams": ["trade_updates"]}}
MARKET_BUY = {"symbol": "ACME", "qty": 2, "side": "buy", "type": "market", "time_in_force": "day"}


# ------------------------------------------------------------------------------ REST


def test_every_rest_call_needs_a_configured_key_pair() -> None:
    async def test() -> None:
        keys = {KEY: SECRET, "second": "other-secret"}
        async with AlpacaServer(feed(), keys=keys) as server, ClientSession() as s:
            url = server.url + "/v2/account"
            for headers in (
                {},
                {"APCA-API-KEY-ID": KEY},
                {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": "wrong"},
                {"APCA-API-KEY-ID": "second", "APCA-API-SECRET-KEY": SECRET},
            ):
                status, body, _ = await call(s, "GET", url, headers=headers)
                assert status == 401
                assert body == {"code": 40110000, "message": "request is not authorized"}
            assert (await call(s, "GET", url))[0] == 200
            other = {"APCA-API-KEY-ID": "second", "APCA-API-SECRET-KEY": "other-secret"}
            assert (await call(s, "GET", url, headers=other))[0] == 200
            assert server.key_id == KEY

    run(test)


def test_rate_limit_headers_on_every_answer_and_429_past_the_limit() -> None:
    async def test() -> None:
        keys = {KEY: SECRET, "second": "s2"}
        async with AlpacaServer(feed(), rate_limit=3, keys=keys) as server, ClientSession() as s:
            started = time.time()
            answers = [
                await call(s, "GET", server.url + "/v2/clock"),
                await call(s, "GET", server.url + "/v2/nothing-here"),
                await call(s, "POST", server.url + "/v2/orders", json={"symbol": "ACME"}),
            ]
            assert [a[0] for a in answers] == [200, 404, 422]
            assert [a[2]["X-Ratelimit-Remaining"] for a in answers] == ["2", "1", "0"]
            for _, _, headers in answers:
                assert headers["X-Ratelimit-Limit"] == "3"
                assert started + 59 <= int(headers["X-Ratelimit-Reset"]) <= time.time() + 61
            status, body, headers = await call(s, "GET", server.url + "/v2/clock")
            assert status == 429 and body == {"code": 42910000, "message": "rate limit exceeded"}
            assert (headers["X-Ratelimit-Limit"], headers["X-Ratelimit-Remaining"]) == ("3", "0")
            assert headers["X-Ratelimit-Reset"] == answers[0][2]["X-Ratelimit-Reset"]
            other = {"APCA-API-KEY-ID": "second", "APCA-API-SECRET-KEY": "s2"}
            status, _, headers = await call(s, "GET", server.url + "/v2/clock", headers=other)
            assert (status, headers["X-Ratelimit-Remaining"]) == (200, "2")  # per key

    run(test)


def test_error_bodies_of_unknown_routes_wrong_methods_and_bad_json() -> None:
    async def test() -> None:
        async with AlpacaServer(feed()) as server, ClientSession() as s:
            for path in ("/v2/nothing", "/elsewhere", "/v2/orders/x/y"):
                status, body, _ = await call(s, "GET", server.url + path)
                assert (status, body) == (404, {"code": 40410000, "message": "endpoint not found"})
            status, body, headers = await call(s, "PUT", server.url + "/v2/orders")
            assert (status, body) == (405, {"code": 40510000, "message": "method not allowed"})
            assert "POST" in headers["Allow"]
            status, body, _ = await call(s, "POST", server.url + "/v2/orders", data="{not json")
            assert (status, body["code"]) == (400, 40010000)
            status, body, _ = await call(s, "GET", server.stream_url.replace("ws:", "http:"))
            assert (status, body["code"]) == (400, 40010000)  # not a WebSocket upgrade
            status, body, _ = await call(s, "GET", server.url + "/v2/orders/not-an-order")
            assert (status, body) == (404, {"code": 40410000, "message": "order not found"})

    run(test)


def test_orders_positions_and_activities_over_http() -> None:
    async def test() -> None:
        async with AlpacaServer(feed(), seed=3) as server, ClientSession() as s:
            v2 = server.url + "/v2"
            body = {**MARKET_BUY, "qty": "2", "client_order_id": "first"}
            status, placed, _ = await call(s, "POST", v2 + "/orders", json=body)
            assert (status, placed["status"], placed["qty"]) == (200, "new", "2")
            status, dup, _ = await call(s, "POST", v2 + "/orders", json=body)
            assert (status, dup) == (
                422,
                {"code": 40010001, "message": "client_order_id must be unique"},
            )
            url = v2 + "/orders:by_client_order_id"
            status, found, _ = await call(s, "GET", url, params={"client_order_id": "first"})
            assert (status, found["id"]) == (200, placed["id"])
            assert (await call(s, "GET", url, params={"client_order_id": "nope"}))[0] == 404
            limit = {**MARKET_BUY, "type": "limit", "limit_price": "1.5", "time_in_force": "gtc"}
            _, resting, _ = await call(s, "POST", v2 + "/orders", json=limit)
            status, replaced, _ = await call(
                s, "PATCH", f"{v2}/orders/{resting['id']}", json={"limit_price": 1.75}
            )
            assert (status, replaced["replaces"], replaced["limit_price"]) == (
                200,
                resting["id"],
                "1.75",
            )
            status, none, _ = await call(s, "DELETE", f"{v2}/orders/{replaced['id']}")
            assert (status, none) == (204, None)
            _, again, _ = await call(s, "DELETE", f"{v2}/orders/{replaced['id']}")
            assert again["code"] == 42210000
            await call(s, "POST", server.url + "/_tradeloop/step", params={"bars": "2"})
            _, position, _ = await call(s, "GET", v2 + "/positions/ACME")
            assert (position["qty"], position["side"], position["symbol"]) == ("2", "long", "ACME")
            _, listed, _ = await call(s, "GET", v2 + "/orders", params={"status": "all"})
            assert [o["status"] for o in listed] == ["canceled", "replaced", "filled"]
            for path in ("/account/activities?activity_types=FILL", "/account/activities/FILL"):
                _, acts, _ = await call(s, "GET", v2 + path)
                assert [(a["order_id"], a["qty"], a["type"]) for a in acts] == [
                    (placed["id"], "2", "fill")
                ]
            _, canceled, _ = await call(s, "DELETE", v2 + "/orders")
            assert canceled == []
            status, closing, _ = await call(
                s, "DELETE", v2 + "/positions", params={"cancel_orders": "True"}
            )
            assert status == 207 and [(c["symbol"], c["status"]) for c in closing] == [
                ("ACME", 200)
            ]
            _, clock, _ = await call(s, "GET", v2 + "/clock")
            assert clock["timestamp"] == "2024-03-01T14:30:00Z" and clock["is_open"] is True
            _, asset, _ = await call(s, "GET", v2 + "/assets/ACME")
            assert (asset["symbol"], asset["class"], asset["id"]) == (
                "ACME",
                "us_equity",
                placed["asset_id"],
            )
            _, account, _ = await call(s, "GET", v2 + "/account")
            assert account["status"] == "ACTIVE" and isinstance(account["cash"], str)

    run(test)


# ------------------------------------------------------------------------------ trade_updates


def test_trade_stream_handshake_and_events_in_binary_frames() -> None:
    async def test() -> None:
        async with (
            AlpacaServer(feed()) as server,
            ClientSession() as s,
            s.ws_connect(server.stream_url) as ws,
        ):
            with pytest.raises(TimeoutError):
                await ws.receive(timeout=0.3)  # nothing before the authorization reply
            await ws.send_str(json.dumps(AUTHENTICATE))
            assert await receive_json(ws) == {
                "stream": "authorization",
                "data": {"status": "authorized", "action": "authenticate"},
            }
            await ws.send_bytes(json.dumps(LISTEN).encode())  # binary frames are read too
            assert await receive_json(ws) == {
                "stream": "listening",
                "data": {"streams": ["trade_updates"]},
            }
            _, placed, _ = await call(s, "POST", server.url + "/v2/orders", json=MARKET_BUY)
            new = await receive_json(ws)
            assert new["stream"] == "trade_updates"
            assert (new["data"]["event"], new["data"]["order"]) == ("new", placed)
            await call(s, "POST", server.url + "/_tradeloop/step")
            fill = (await receive_json(ws))["data"]
            assert (fill["event"], fill["price"], fill["qty"], fill["position_qty"]) == (
                "fill",
                "100",
                "2",
                "2",
            )
            assert fill["order"]["status"] == "filled" and len(fill["execution_id"]) == 36
            assert fill["timestamp"] == "2024-03-01T14:30:00Z"
            await ws.send_str(json.dumps({"action": "listen", "data": {"streams": []}}))
            assert (await receive_json(ws))["data"] == {"streams": []}
            await call(s, "POST", server.url + "/v2/orders", json=MARKET_BUY)
            await ws.send_str("not json")
            assert (await receive_json(ws))["data"]["code"] == 400  # no event in between

    run(test)


def test_trade_stream_text_frames_and_the_older_auth_form() -> None:
    async def test() -> None:
        async with (
            AlpacaServer(feed(), text_frames=True) as server,
            ClientSession() as s,
            s.ws_connect(server.stream_url) as ws,
        ):
            await ws.send_str(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
            reply = await receive_json(ws, WSMsgType.TEXT)
            assert reply["data"]["status"] == "authorized"

    run(test)


def test_trade_stream_refuses_a_bad_key_and_closes() -> None:
    async def test() -> None:
        async with AlpacaServer(feed()) as server, ClientSession() as s:
            async with s.ws_connect(server.stream_url) as ws:
                bad = {"action": "authenticate", "data": {"key_id": KEY, "secret_key": "nope"}}
                await ws.send_str(json.dumps(bad))
                assert (await receive_json(ws))["data"] == {
                    "status": "unauthorized",
                    "action": "authenticate",
                }
                assert (await ws.receive(timeout=5)).type is WSMsgType.CLOSE
            async with s.ws_connect(server.stream_url) as ws:
                await ws.send_str(json.dumps(LISTEN))  # listening before authenticating
                assert (await receive_json(ws))["data"]["status"] == "unauthorized"
                assert (await ws.receive(timeout=5)).type is WSMsgType.CLOSE

    run(test)


def test_a_second_trade_connection_with_the_same_key_gets_406() -> None:
    async def test() -> None:
        async with AlpacaServer(feed()) as server, ClientSession() as s:
            async with s.ws_connect(server.stream_url) as first:
                await first.send_str(json.dumps(AUTHENTICATE))
                await receive_json(first)
                async with s.ws_connect(server.stream_url) as second:
                    await second.send_str(json.dumps(AUTHENTICATE))
                    assert await receive_json(second) == {
                        "stream": "error",
                        "data": {"code": 406, "message": "connection limit exceeded"},
                    }
                    assert (await second.receive(timeout=5)).type is WSMsgType.CLOSE
                await first.send_str(json.dumps(LISTEN))
                assert (await receive_json(first))["stream"] == "listening"  # still served
            await wait_for(lambda: server.state()["streams"] == [])
            async with s.ws_connect(server.stream_url) as third:
                await third.send_str(json.dumps(AUTHENTICATE))
                assert (await receive_json(third))["data"]["status"] == "authorized"

    run(test)


# ------------------------------------------------------------------------------ market data


def test_market_data_in_json_text_frames() -> None:
    async def test() -> None:
        async with (
            AlpacaServer(feed()) as server,
            ClientSession() as s,
            s.ws_connect(server.data_url("sip")) as ws,
        ):
            connected = await receive_json(ws, WSMsgType.TEXT)
            assert connected == [{"T": "success", "msg": "connected"}]
            await ws.send_str(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
            auth = await receive_json(ws, WSMsgType.TEXT)
            assert auth == [{"T": "success", "msg": "authenticated"}]
            sub = {"action": "subscribe", "bars": ["ACME"], "trades": [], "quotes": []}
            await ws.send_str(json.dumps(sub))
            [reply] = await receive_json(ws, WSMsgType.TEXT)
            assert reply["T"] == "subscription"
            assert (reply["bars"], reply["trades"], reply["quotes"]) == (["ACME"], [], [])
            await call(s, "POST", server.url + "/_tradeloop/step", params={"bars": "4"})
            bars = [await receive_json(ws, WSMsgType.TEXT) for _ in range(2)]
            assert [b[0]["t"] for b in bars] == ["2024-03-01T14:30:00Z", "2024-03-01T14:31:00Z"]
            assert bars[0] == [
                {
                    "T": "b",
                    "S": "ACME",
                    "o": 100.0,
                    "h": 102.0,
                    "l": 98.0,
                    "c": 101.0,
                    "v": 1000,
                    "t": "2024-03-01T14:30:00Z",
                    "n": None,
                    "vw": None,
                }
            ]
            await ws.send_str(json.dumps({"action": "unsubscribe", "bars": ["ACME"]}))
            [reply] = await receive_json(ws, WSMsgType.TEXT)
            assert reply["bars"] == []

    run(test)


def test_market_data_in_msgpack_with_a_subscribe_split_over_frames() -> None:
    async def test() -> None:
        headers = {"Content-Type": "application/msgpack"}
        async with (
            AlpacaServer(feed()) as server,
            ClientSession() as s,
            s.ws_connect(server.data_url(), headers=headers) as ws,
        ):
            assert await receive_msgpack(ws) == [{"T": "success", "msg": "connected"}]
            await ws.send_bytes(msgpack.packb({"action": "auth", "key": KEY, "secret": SECRET}))
            assert await receive_msgpack(ws) == [{"T": "success", "msg": "authenticated"}]
            packed = msgpack.packb({"bars": ["BOLT"], "action": "subscribe"})
            await ws.send_bytes(packed[:7])
            await ws.send_bytes(packed[7:])
            [reply] = await receive_msgpack(ws)
            assert (reply["T"], reply["bars"]) == ("subscription", ["BOLT"])
            await call(s, "POST", server.url + "/_tradeloop/step", params={"bars": "2"})
            [bar] = await receive_msgpack(ws)
            assert (bar["T"], bar["S"], bar["o"]) == ("b", "BOLT", 110.0)
            assert isinstance(bar["t"], msgpack.Timestamp)
            assert bar["t"].to_unix_nano() == T0
            assert "n" in bar and "vw" in bar

    run(test)


def test_market_data_errors_and_the_connection_limit() -> None:
    async def test() -> None:
        async with AlpacaServer(feed(), auth_timeout=0.5) as server, ClientSession() as s:
            url = server.data_url()
            async with s.ws_connect(url) as ws:
                await receive_json(ws, WSMsgType.TEXT)
                await ws.send_str(json.dumps({"action": "subscribe", "bars": ["ACME"]}))
                assert await receive_json(ws, WSMsgType.TEXT) == [
                    {"T": "error", "code": 401, "msg": "not authenticated"}
                ]
                await ws.send_str("{")
                assert (await receive_json(ws, WSMsgType.TEXT))[0]["code"] == 400
                await ws.send_str(json.dumps({"action": "auth", "key": KEY, "secret": "bad"}))
                assert await receive_json(ws, WSMsgType.TEXT) == [
                    {"T": "error", "code": 402, "msg": "auth failed"}
                ]
                assert (await ws.receive(timeout=5)).type is WSMsgType.CLOSE
            async with s.ws_connect(url) as idle:
                await receive_json(idle, WSMsgType.TEXT)
                assert await receive_json(idle, WSMsgType.TEXT) == [
                    {"T": "error", "code": 404, "msg": "auth timeout"}
                ]
                assert (await idle.receive(timeout=5)).type is WSMsgType.CLOSE
            auth = json.dumps({"action": "auth", "key": KEY, "secret": SECRET})
            async with s.ws_connect(url) as first, s.ws_connect(url) as second:
                for ws in (first, second):
                    await receive_json(ws, WSMsgType.TEXT)
                await first.send_str(auth)
                assert (await receive_json(first, WSMsgType.TEXT))[0]["msg"] == "authenticated"
                await second.send_str(auth)
                assert await receive_json(second, WSMsgType.TEXT) == [
                    {"T": "error", "code": 406, "msg": "connection limit exceeded"}
                ]
                assert (await second.receive(timeout=5)).type is WSMsgType.CLOSE
                await first.send_str(auth)
                assert (await receive_json(first, WSMsgType.TEXT))[0]["code"] == 403
            async with s.ws_connect(server.data_url("sip")) as other_endpoint:
                await receive_json(other_endpoint, WSMsgType.TEXT)
                await other_endpoint.send_str(auth)
                msg = (await receive_json(other_endpoint, WSMsgType.TEXT))[0]
                assert msg["msg"] == "authenticated"  # the limit is per endpoint

    run(test)


def test_hooks_can_replace_a_request_and_drop_a_stream_message() -> None:
    class Flaky(ServerHooks):
        def __init__(self) -> None:
            self.failed = False

        async def on_request(self, request: web.Request) -> web.StreamResponse | None:
            if request.method == "POST" and not self.failed:
                self.failed = True
                return web.json_response({"code": 50010000, "message": "injected"}, status=503)
            return None

        def on_stream_message(self, stream: str, message: Any) -> Any:
            if message.get("stream") == "trade_updates" and message["data"]["event"] == "new":
                return None
            return message

    async def test() -> None:
        async with (
            AlpacaServer(feed(), hooks=Flaky()) as server,
            ClientSession() as s,
            s.ws_connect(server.stream_url) as ws,
        ):
            await ws.send_str(json.dumps(AUTHENTICATE))
            await receive_json(ws)
            await ws.send_str(json.dumps(LISTEN))
            await receive_json(ws)
            orders = server.url + "/v2/orders"
            assert (await call(s, "POST", orders, json=MARKET_BUY))[:2] == (
                503,
                {"code": 50010000, "message": "injected"},
            )
            assert (await call(s, "POST", orders, json=MARKET_BUY))[0] == 200
            await server.step()
            assert (await receive_json(ws))["data"]["event"] == "fill"  # "new" was dropped

    run(test)


# ------------------------------------------------------------------------------ test API


def test_step_and_state_api() -> None:
    async def test() -> None:
        async with AlpacaServer(feed(n=2)) as server, ClientSession() as s:
            step = server.url + "/_tradeloop/step"
            _, placed, _ = await call(s, "POST", server.url + "/v2/orders", json=MARKET_BUY)
            late = {**MARKET_BUY, "type": "limit", "limit_price": 1}
            _, resting, _ = await call(s, "POST", server.url + "/v2/orders", json=late)
            status, result, _ = await call(s, "POST", step, params={"bars": "3"}, headers=None)
            assert status == 200 and result["done"] is False
            assert [(b["S"], b["t"]) for b in result["bars"]] == [
                ("ACME", "2024-03-01T14:30:00Z"),
                ("BOLT", "2024-03-01T14:30:00Z"),
                ("ACME", "2024-03-01T14:31:00Z"),
            ]
            assert [(e["event"], e["order"]["id"]) for e in result["events"]] == [
                ("fill", placed["id"])
            ]
            assert result["clock"] == "2024-03-01T14:31:00Z"
            _, state, _ = await call(s, "GET", server.url + "/_tradeloop/state", headers=None)
            assert state["positions"] == [
                {"symbol": "ACME", "qty": 2.0, "avg_entry_price": 100.0, "current_price": 102.0}
            ]
            assert state["cash"] == pytest.approx(100_000.0 - 200.0)
            assert [o["status"] for o in state["orders"]] == ["filled", "new"]
            assert (state["bars"], state["done"], state["is_open"]) == (3, False, True)
            _, result, _ = await call(s, "POST", step, params={"bars": "10"})
            assert (len(result["bars"]), result["done"]) == (1, True)
            assert [(e["event"], e["order"]["id"]) for e in result["events"]] == [
                ("expired", resting["id"])  # the market closed: day orders expire
            ]
            _, result, _ = await call(s, "POST", step)
            assert (result["bars"], result["events"], result["done"]) == ([], [], True)
            _, clock, _ = await call(s, "GET", server.url + "/v2/clock")
            assert clock["is_open"] is False
            for bad in ("0", "x", "-2"):
                status, body, _ = await call(s, "POST", step, params={"bars": bad})
                assert (status, body["code"]) == (422, 40010001)
            assert (await call(s, "GET", step))[0] == 405

    run(test)


def test_the_test_api_serves_loopback_clients_only() -> None:
    assert _is_loopback("127.0.0.1") and _is_loopback("::1")
    assert not _is_loopback("192.168.1.10") and not _is_loopback(None)
    assert not _is_loopback("not-an-address")


def test_a_paced_replay_plays_in_time_and_the_server_lingers_then_stops() -> None:
    async def test() -> None:
        server = AlpacaServer(
            feed(n=5, symbols=("ACME",)), speed=600.0, linger=0.3, wait_for_subscriber=False
        )
        async with server, ClientSession() as s:
            started = time.monotonic()
            await wait_for(lambda: server.done)
            assert time.monotonic() - started >= 0.35  # 4 gaps of 0.1 s
            assert server.venue.bars == 5 and server.venue.is_open is False
            await asyncio.wait_for(server.wait_closed(), 5)
            assert server.closed
            with pytest.raises(ClientConnectorError):
                await call(s, "GET", server.url + "/v2/clock")

    run(test)


def test_a_paced_replay_waits_for_a_bar_subscriber() -> None:
    async def test() -> None:
        server = AlpacaServer(feed(n=3, symbols=("ACME",)), speed=6000.0, linger=None)
        async with server, ClientSession() as s:
            await asyncio.sleep(0.3)
            assert server.venue.bars == 0  # nobody listens yet: nothing is played
            async with s.ws_connect(server.data_url()) as ws:
                await receive_json(ws, WSMsgType.TEXT)
                await ws.send_str(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
                await receive_json(ws, WSMsgType.TEXT)
                await ws.send_str(json.dumps({"action": "subscribe", "bars": ["ACME"]}))
                assert (await receive_json(ws, WSMsgType.TEXT))[0]["T"] == "subscription"
                got = [await receive_json(ws, WSMsgType.TEXT) for _ in range(3)]
            assert [m[0]["T"] for m in got] == ["b", "b", "b"]  # every bar, from the first
            assert server.done

    run(test)


def test_max_seconds_stops_the_server_and_closes_its_streams() -> None:
    async def test() -> None:
        async with AlpacaServer(feed(), max_seconds=0.5) as server, ClientSession() as s:
            async with s.ws_connect(server.stream_url) as ws:
                await ws.send_str(json.dumps(AUTHENTICATE))
                await receive_json(ws)
                closing = await ws.receive(timeout=5)
                assert closing.type is WSMsgType.CLOSE and closing.data == 1001
            await asyncio.wait_for(server.wait_closed(), 5)

    run(test)


def test_server_settings_are_checked() -> None:
    for kwargs, field in (
        ({"host": "0.0.0.0"}, "host"),
        ({"host": "example.com"}, "host"),
        ({"port": 70000}, "port"),
        ({"speed": -1}, "speed"),
        ({"linger": -1}, "linger"),
        ({"keys": {}}, "keys"),
        ({"keys": ("k", "")}, "keys"),
    ):
        with pytest.raises(ConfigError) as info:
            AlpacaServer(feed(), **kwargs)
        assert info.value.field == field
    with pytest.raises(ConfigError, match="sample:minute"):
        AlpacaServer("sample:hourly")
    with pytest.raises(ConfigError, match="feed"):
        AlpacaServer(feed()).data_url("otc")


def test_a_busy_port_is_a_config_error() -> None:
    async def test() -> None:
        async with AlpacaServer(feed()) as first:
            with pytest.raises(ConfigError, match="cannot listen"):
                await AlpacaServer(feed(), port=first.port).start()

    run(test)


def test_the_secret_is_never_logged_or_echoed(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    async def test() -> None:
        async with AlpacaServer(feed()) as server, ClientSession() as s:
            seen.append(repr(server))
            wrong = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET + "x"}
            for headers in (AUTH, wrong):
                for method, path in (("GET", "/v2/account"), ("POST", "/v2/orders")):
                    async with s.request(method, server.url + path, headers=headers) as r:
                        seen.append(await r.text() + repr(dict(r.headers)))
            async with s.ws_connect(server.stream_url) as ws:
                await ws.send_str(json.dumps({"action": SECRET, "secret": SECRET}))
                seen.append(repr(await ws.receive(timeout=5)))
            async with s.ws_connect(server.data_url()) as ws:
                await ws.receive(timeout=5)
                await ws.send_str(json.dumps({"action": "auth", "key": SECRET, "secret": "no"}))
                seen.append(repr(await ws.receive(timeout=5)))
            seen.append(json.dumps(server.state()))

    with caplog.at_level(logging.DEBUG):
        run(test)
    assert len(seen) == 8
    assert all(SECRET not in text for text in seen)
    assert SECRET not in caplog.text


# ------------------------------------------------------------------------------ runners


def test_thread_runner_serves_synchronous_code_and_joins() -> None:
    with AlpacaServerThread(feed(), seed=5) as server:
        request = urllib.request.Request(server.url + "/v2/clock", headers=AUTH)
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert json.loads(resp.read())["timestamp"] == "2024-03-01T14:29:59Z"
        result = server.step(2)
        assert [b.symbol for b in result.bars] == ["ACME", "BOLT"]
        assert server.state()["bars"] == 2
        thread = server.thread
        assert thread is not None and thread.is_alive()
    assert not thread.is_alive()
    assert all(t.name != "tradeloop-alpaca-server" for t in threading.enumerate())


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout), "the server printed nothing"
    return proc.stdout.readline()


def _cli(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_runner_prints_one_line_and_stops_on_ctrl_c() -> None:
    proc = _cli(
        """
        from tradeloop.testing.alpaca.cli import run_server
        run_server(0, "sample:daily", 0, 60)
        """
    )
    try:
        line = _first_line(proc, 30)
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match is not None and f"key id {KEY}" in line
        request = urllib.request.Request(match.group(0) + "/v2/clock", headers=AUTH)
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out == "" and SECRET not in line + err


def test_cli_runner_stops_by_itself_at_max_seconds() -> None:
    proc = _cli(
        """
        from tradeloop.testing.alpaca.cli import run_server
        run_server(0, "sample:daily", 0, 0.5, secret="custom-secret")
        """
    )
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert len(out.splitlines()) == 1 and "custom-secret" not in out + err


def test_importing_the_package_is_light() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, tradeloop.testing.alpaca as a; "
            "print(sorted(m for m in ('aiohttp', 'asyncio', 'msgpack') if m in sys.modules)); "
            "print(a.AlpacaServer.__name__, 'aiohttp' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["[]", "AlpacaServer True"]


def test_waiting_for_a_client_and_for_its_streams_to_close() -> None:
    async def test() -> None:
        async with AlpacaServer(feed()) as server, ClientSession() as s:
            with pytest.raises(EngineError, match=r"waiting for a client for \['trade_updates'"):
                await server.wait_for_client(["ACME"], timeout=0.05)
            trades = await s.ws_connect(server.stream_url)
            await trades.send_bytes(json.dumps(AUTHENTICATE).encode())
            await receive_json(trades)
            await trades.send_bytes(json.dumps(LISTEN).encode())
            await receive_json(trades)
            with pytest.raises(EngineError, match=r"a client for \['ACME'\]"):
                await server.wait_for_client(["ACME"], timeout=0.05)
            async with s.ws_connect(server.data_url("sip")) as data:
                await receive_json(data, WSMsgType.TEXT)
                await data.send_str(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
                await receive_json(data, WSMsgType.TEXT)
                await data.send_str(json.dumps({"action": "subscribe", "bars": ["ACME"]}))
                await receive_json(data, WSMsgType.TEXT)
                await server.wait_for_client(["ACME"], timeout=5)  # both streams are up
                with pytest.raises(EngineError, match="streams closed"):
                    await server.wait_streams_closed(timeout=0.05)
            await trades.close()
            await server.wait_streams_closed(timeout=5)

    run(test)
