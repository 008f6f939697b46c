"""Fault injection on the loopback Alpaca server, observed on the wire by raw aiohttp clients on
127.0.0.1: each fault kind, the counts, seeded reproducibility, the test API, the text form, and
the invariant that faults disturb delivery only, never the venue's own truth."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import (
    ClientSession,
    ClientTimeout,
    ClientWebSocketResponse,
    ServerDisconnectedError,
    WSMsgType,
    web,
)
from multidict import CIMultiDict

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.errors import ConfigError
from tradeloop.testing.alpaca import (
    DEFAULT_KEY_ID,
    DEFAULT_SECRET,
    FAULT_KINDS,
    AlpacaServer,
    AlpacaServerThread,
    FaultInjector,
    FaultPlan,
    ServerHooks,
    parse_faults,
)
from tradeloop.testing.alpaca.cli import run_server

KEY, SECRET = DEFAULT_KEY_ID, DEFAULT_SECRET
AUTH = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
MIN = 60_000_000_000
T0 = 1_709_303_400_000_000_000  # 2024-03-01 14:30 UTC
AUTHENTICATE = {"action": "authenticate", "data": {"key_id": KEY, "secret_key": SECRET}}
LISTEN = {"action": "listen", "data": {"streams": ["trade_updates"]}}
MARKET_BUY = {"symbol": "ACME", "qty": 2, "side": "buy", "type": "market", "time_in_force": "day"}
LIMIT_BUY = {**MARKET_BUY, "type": "limit", "limit_price": 1.5, "time_in_force": "gtc"}
FAULTS = "/_tradeloop/faults"
CLOSED = (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR)


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


def run(test: Callable[[], Awaitable[None]], timeout: float = 5.0) -> None:
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


async def order(session: ClientSession, server: AlpacaServer, **fields: Any) -> tuple[int, Any]:
    status, body, _ = await call(
        session, "POST", server.url + "/v2/orders", json={**MARKET_BUY, **fields}
    )
    return status, body


async def by_coid(session: ClientSession, server: AlpacaServer, coid: str) -> tuple[int, Any]:
    url = server.url + "/v2/orders:by_client_order_id"
    status, body, _ = await call(session, "GET", url, params={"client_order_id": coid})
    return status, body


async def frame(ws: ClientWebSocketResponse, timeout: float = 3.0) -> Any:
    """The next data frame's raw payload."""
    msg = await ws.receive(timeout=timeout)
    assert msg.type in (WSMsgType.BINARY, WSMsgType.TEXT), msg
    return msg.data


async def event(ws: ClientWebSocketResponse, timeout: float = 3.0) -> Any:
    """The next trade_updates message's ``data``."""
    message = json.loads(await frame(ws, timeout))
    assert message["stream"] == "trade_updates", message
    return message["data"]


async def no_frame(ws: ClientWebSocketResponse, timeout: float = 0.2) -> None:
    with pytest.raises(TimeoutError):
        await ws.receive(timeout=timeout)


async def listen(session: ClientSession, server: AlpacaServer) -> ClientWebSocketResponse:
    """A trade_updates socket, authenticated and listening."""
    ws = await session.ws_connect(server.stream_url)
    await ws.send_str(json.dumps(AUTHENTICATE))
    assert json.loads(await frame(ws))["data"]["status"] == "authorized"
    await ws.send_str(json.dumps(LISTEN))
    assert json.loads(await frame(ws))["stream"] == "listening"
    return ws


async def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def counts(**nonzero: int) -> dict[str, int]:
    return {kind: nonzero.get(kind, 0) for kind in FAULT_KINDS}


# ------------------------------------------------------------------------------ REST faults


def test_rate_limit_sends_a_burst_of_429s_per_key_with_ratelimit_headers() -> None:
    async def test() -> None:
        plan = FaultPlan(next={"rate_limit": 1}, rate_limit_burst=2, rate_limit_reset=2.0)
        keys = {KEY: SECRET, "second": "s2"}
        async with (
            AlpacaServer(feed(), faults=plan, rate_limit=50, keys=keys) as server,
            ClientSession() as s,
        ):
            clock = server.url + "/v2/clock"
            other = {"APCA-API-KEY-ID": "second", "APCA-API-SECRET-KEY": "s2"}
            before = time.time()
            first = await call(s, "GET", clock)
            assert (await call(s, "GET", clock, headers=other))[0] == 200  # another key
            assert (await call(s, "GET", clock, headers={}))[0] == 401  # not even a key
            second = await call(s, "GET", clock)
            after = time.time()
            for status, body, headers in (first, second):
                assert (status, body) == (429, {"code": 42910000, "message": "rate limit exceeded"})
                assert headers["X-Ratelimit-Limit"] == "50"
                assert headers["X-Ratelimit-Remaining"] == "0"
                assert before + 2 <= int(headers["X-Ratelimit-Reset"]) <= after + 3
            status, _, headers = await call(s, "GET", clock)
            assert (status, headers["X-Ratelimit-Remaining"]) == (200, "49")  # 429s not counted
            assert plan.counts == counts(rate_limit=2)
            assert server.faults is plan

    run(test)


def test_error_after_accept_places_the_order_once_and_answers_5xx() -> None:
    async def test() -> None:
        plan = FaultPlan(next={"error_after_accept": 1}, error_status=503)
        async with AlpacaServer(feed(), faults=plan) as server, ClientSession() as s:
            ws = await listen(s, server)
            status, body = await order(s, server, client_order_id="e1")
            assert (status, body) == (503, {"code": 50010000, "message": "internal server error"})
            new = await event(ws)
            assert (new["event"], new["order"]["client_order_id"]) == ("new", "e1")
            status, found = await by_coid(s, server, "e1")
            assert (status, found["id"], found["status"]) == (200, new["order"]["id"], "new")
            status, body = await order(s, server, client_order_id="e1")  # the safe retry
            assert (status, body) == (
                422,
                {"code": 40010001, "message": "client_order_id must be unique"},
            )
            _, orders, _ = await call(s, "GET", server.url + "/v2/orders", params={"status": "all"})
            assert [o["client_order_id"] for o in orders] == ["e1"]
            # a request the venue refuses is no candidate: the fault waits for an accepted one
            plan.set("error_after_accept", next=1)
            assert (await order(s, server, qty=-1))[0] == 422
            assert plan.next["error_after_accept"] == 1
            # PATCH: the replacement exists although the client got a 5xx
            status, resting = await order(s, server, **LIMIT_BUY, client_order_id="r0")
            assert status == 503
            plan.set("error_after_accept", next=1)
            _, resting = await by_coid(s, server, "r0")
            patch = {"limit_price": 1.75, "client_order_id": "r1"}
            status, _, _ = await call(
                s, "PATCH", f"{server.url}/v2/orders/{resting['id']}", json=patch
            )
            assert status == 503
            status, replacement = await by_coid(s, server, "r1")
            assert (status, replacement["replaces"], replacement["limit_price"]) == (
                200,
                resting["id"],
                "1.75",
            )
            assert (await by_coid(s, server, "r0"))[1]["status"] == "replaced"
            assert plan.counts == counts(error_after_accept=3)
            await ws.close()

    run(test)


def test_timeout_after_accept_holds_the_answer_then_drops_the_connection() -> None:
    async def test() -> None:
        plan = FaultPlan(next={"timeout_after_accept": 2}, timeout_delay=0.4)
        async with AlpacaServer(feed(), faults=plan) as server, ClientSession() as s:
            ws = await listen(s, server)
            started = time.monotonic()
            with pytest.raises(TimeoutError):  # the client gives up first
                await call(
                    s,
                    "POST",
                    server.url + "/v2/orders",
                    json={**MARKET_BUY, "client_order_id": "t1"},
                    timeout=ClientTimeout(total=0.15),
                )
            assert (await event(ws))["order"]["client_order_id"] == "t1"  # processed
            with pytest.raises(ServerDisconnectedError):  # the server gives up first
                await order(s, server, client_order_id="t2")
            assert time.monotonic() - started >= 0.4
            for coid in ("t1", "t2"):
                status, found = await by_coid(s, server, coid)
                assert (status, found["status"]) == (200, "new")
                status, body = await order(s, server, client_order_id=coid)
                assert (status, body["code"]) == (422, 40010001)
            assert [e["order"]["client_order_id"] for e in server.venue.events] == ["t1", "t2"]
            assert plan.counts == counts(timeout_after_accept=2)
            await ws.close()

    run(test)


def test_a_held_answer_is_released_when_the_server_stops() -> None:
    async def test() -> None:
        plan = FaultPlan(next={"timeout_after_accept": 1}, timeout_delay=60.0)
        async with ClientSession() as s:
            server = AlpacaServer(feed(), faults=plan)
            await server.start()
            pending = asyncio.ensure_future(order(s, server, client_order_id="held"))
            await wait_for(lambda: plan.counts["timeout_after_accept"] == 1)
            started = time.monotonic()
            await server.stop()
            with pytest.raises(ServerDisconnectedError):
                await pending
            assert time.monotonic() - started < 2.0

    run(test)


# ------------------------------------------------------------------------------ stream faults


def test_drop_stream_before_a_fill_loses_it_on_the_socket_not_at_the_venue() -> None:
    async def test() -> None:
        plan = FaultPlan(next={"drop_stream": 1})
        async with AlpacaServer(feed(), faults=plan) as server, ClientSession() as s:
            ws = await listen(s, server)
            _, placed = await order(s, server, client_order_id="d1")
            assert (await event(ws))["event"] == "new"  # not a fill: no candidate
            await server.step()
            msg = await ws.receive(timeout=3)
            assert msg.type in CLOSED, msg  # the connection is gone, the fill never came
            assert plan.counts == counts(drop_stream=1)
            _, acts, _ = await call(s, "GET", server.url + "/v2/account/activities")
            assert [(a["order_id"], a["type"], a["qty"]) for a in acts] == [
                (placed["id"], "fill", "2")
            ]
            assert (await by_coid(s, server, "d1"))[1]["status"] == "filled"
            assert [e["event"] for e in server.venue.events] == ["new", "fill"]  # recorded once
            await wait_for(lambda: server.state()["streams"] == [])
            ws2 = await listen(s, server)  # the client may reconnect, then reconcile over REST
            await order(s, server)
            assert (await event(ws2))["event"] == "new"
            await ws2.close()
            await ws.close()

    run(test)


def test_drop_stream_after_an_event_delivers_it_first() -> None:
    async def test() -> None:
        plan = FaultPlan(next={"drop_stream": 1}, drop_before_fill=False)
        async with AlpacaServer(feed(), faults=plan) as server, ClientSession() as s:
            ws = await listen(s, server)
            _, placed = await order(s, server)
            new = await event(ws)
            assert (new["event"], new["order"]["id"]) == ("new", placed["id"])
            assert (await ws.receive(timeout=3)).type in CLOSED
            assert plan.counts == counts(drop_stream=1)
            await ws.close()

    run(test)


def test_reject_reconnect_refuses_the_next_stream_connections_with_406() -> None:
    async def test() -> None:
        plan = FaultPlan(next={"reject_reconnect": 2})
        async with AlpacaServer(feed(), faults=plan) as server, ClientSession() as s:
            for _ in range(2):
                async with s.ws_connect(server.stream_url) as ws:
                    await ws.send_str(json.dumps(AUTHENTICATE))
                    assert json.loads(await frame(ws)) == {
                        "stream": "error",
                        "data": {"code": 406, "message": "connection limit exceeded"},
                    }
                    assert (await ws.receive(timeout=3)).type in CLOSED
            ws = await listen(s, server)  # the third attempt gets through
            plan.set("reject_reconnect", next=1)
            auth = {"action": "auth", "key": KEY, "secret": SECRET}
            for reply in (
                [{"T": "error", "code": 406, "msg": "connection limit exceeded"}],
                [{"T": "success", "msg": "authenticated"}],
            ):
                async with s.ws_connect(server.data_url()) as data:
                    assert json.loads(await frame(data)) == [{"T": "success", "msg": "connected"}]
                    await data.send_str(json.dumps(auth))
                    assert json.loads(await frame(data)) == reply
            assert plan.counts == counts(reject_reconnect=3)
            await ws.close()

    run(test)


def test_duplicate_event_sends_a_trade_update_twice() -> None:
    async def test() -> None:
        plan = FaultPlan(next={"duplicate_event": 1})
        async with AlpacaServer(feed(), faults=plan) as server, ClientSession() as s:
            ws = await listen(s, server)
            _, placed = await order(s, server)
            first, second = await event(ws), await event(ws)
            assert first == second and first["order"]["id"] == placed["id"]
            await server.step()
            assert (await event(ws))["event"] == "fill"
            await no_frame(ws)
            assert plan.counts == counts(duplicate_event=1)
            await ws.close()

    run(test)


def test_reorder_events_sends_a_held_event_after_the_next_one() -> None:
    async def test() -> None:
        plan = FaultPlan(next={"reorder_events": 1}, reorder_timeout=None)
        async with AlpacaServer(feed(), faults=plan) as server, ClientSession() as s:
            ws = await listen(s, server)
            _, a = await order(s, server, client_order_id="a")
            await no_frame(ws)  # held
            _, b = await order(s, server, client_order_id="b")
            assert [(await event(ws))["order"]["id"] for _ in range(2)] == [b["id"], a["id"]]
            # with a timeout, a held event goes out on its own when no other one comes
            plan.configure({"reorder_events": {"next": 1}, "reorder_timeout": 0.3})
            started = time.monotonic()
            _, c = await order(s, server, client_order_id="c")
            assert (await event(ws))["order"]["id"] == c["id"]
            assert time.monotonic() - started >= 0.25
            assert plan.counts == counts(reorder_events=2)
            await ws.close()

    run(test)


def test_the_event_after_a_reorder_is_never_held_even_once_the_timer_sent_the_first() -> None:
    async def test() -> None:
        plan = FaultPlan(probabilities={"reorder_events": 1.0}, reorder_timeout=0.1)
        async with AlpacaServer(feed(), faults=plan) as server, ClientSession() as s:
            ws = await listen(s, server)
            _, a = await order(s, server)
            await no_frame(ws, 0.05)
            assert (await event(ws))["order"]["id"] == a["id"]  # sent by the timer
            _, b = await order(s, server)  # the next one: sent at once, not a candidate
            assert (await event(ws, 0.08))["order"]["id"] == b["id"]
            await order(s, server)  # a candidate again
            await no_frame(ws, 0.05)
            assert plan.counts == counts(reorder_events=2)
            await ws.close()

    run(test)


def test_a_held_event_goes_out_before_the_socket_closes() -> None:
    async def test() -> None:
        plan = FaultPlan(next={"reorder_events": 1}, reorder_timeout=None)
        async with AlpacaServer(feed(), faults=plan) as server, ClientSession() as s:
            ws = await listen(s, server)
            _, a = await order(s, server)
            await no_frame(ws, 0.1)
            assert await server.drop_streams() == 1
            assert (await event(ws))["order"]["id"] == a["id"]
            assert (await ws.receive(timeout=3)).type in CLOSED
            await ws.close()

    run(test)


def test_unknown_event_precedes_the_real_one_with_a_valid_order() -> None:
    async def test() -> None:
        plan = FaultPlan(next={"unknown_event": 1})
        async with AlpacaServer(feed(), faults=plan) as server, ClientSession() as s:
            ws = await listen(s, server)
            _, placed = await order(s, server)
            gremlin, new = await event(ws), await event(ws)
            assert gremlin["event"] == "order_gremlin"
            assert gremlin["order"] == placed == new["order"]
            assert gremlin["timestamp"] == new["timestamp"]
            assert new["event"] == "new"
            assert plan.counts == counts(unknown_event=1)
            await ws.close()

    run(test)


def test_malformed_json_sends_bad_json_or_an_update_without_its_order() -> None:
    async def test() -> None:
        plan = FaultPlan(next={"malformed_json": 2})
        async with AlpacaServer(feed(), faults=plan) as server, ClientSession() as s:
            ws = await listen(s, server)
            _, a = await order(s, server)
            garbage = await frame(ws)
            assert isinstance(garbage, bytes)  # the connection's own frame type
            with pytest.raises(ValueError):
                json.loads(garbage)
            assert (await event(ws))["order"]["id"] == a["id"]
            _, b = await order(s, server)
            orderless = await event(ws)
            assert orderless["event"] == "new" and "order" not in orderless
            assert (await event(ws))["order"]["id"] == b["id"]
            assert plan.counts == counts(malformed_json=2)
            await ws.close()

    run(test)


def test_handshakes_and_market_data_are_never_disturbed() -> None:
    async def test() -> None:
        stream_kinds = ("duplicate_event", "reorder_events", "unknown_event", "malformed_json")
        plan = FaultPlan(probabilities=dict.fromkeys(stream_kinds, 1.0), reorder_timeout=None)
        async with AlpacaServer(feed(), faults=plan) as server, ClientSession() as s:
            ws = await listen(s, server)  # asserts the authorization and listening replies
            async with s.ws_connect(server.data_url()) as data:
                await frame(data)
                await data.send_str(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
                await frame(data)
                await data.send_str(json.dumps({"action": "subscribe", "bars": ["ACME"]}))
                assert json.loads(await frame(data))[0]["T"] == "subscription"
                await server.step(2)
                bars = json.loads(await frame(data))
                assert [b["S"] for b in bars] == ["ACME"]
                await no_frame(data)
            assert plan.total == 0
            await ws.close()

    run(test)


# ------------------------------------------------------------------------------ the plan


def test_probabilities_zero_inject_nothing() -> None:
    async def test() -> None:
        plan = FaultPlan(probabilities=dict.fromkeys(FAULT_KINDS, 0.0), seed=1)
        async with AlpacaServer(feed(), faults=plan) as server, ClientSession() as s:
            ws = await listen(s, server)
            placed = [(await order(s, server, client_order_id=f"z{i}"))[1] for i in range(5)]
            assert all("id" in p for p in placed)
            await server.step(2)
            got = [await event(ws) for _ in range(10)]
            assert [(e["event"], e["order"]["id"]) for e in got] == [
                *(("new", p["id"]) for p in placed),
                *(("fill", p["id"]) for p in placed),
            ]
            await no_frame(ws)
            assert plan.counts == counts() and plan.total == 0
            await ws.close()

    run(test)


def test_a_default_server_injects_nothing_but_takes_a_plan_at_run_time() -> None:
    async def test() -> None:
        async with AlpacaServer(feed()) as server, ClientSession() as s:
            status, state, _ = await call(s, "GET", server.url + FAULTS, headers=None)
            assert status == 200
            assert state["probabilities"] == dict.fromkeys(FAULT_KINDS, 0.0)
            assert state["next"] == counts() and state["counts"] == counts()
            assert isinstance(state["seed"], int) and state["total"] == 0

    run(test)


def _decisions(plan: FaultPlan, kinds: tuple[str, ...], n: int) -> dict[str, list[bool]]:
    out: dict[str, list[bool]] = {k: [] for k in kinds}
    for _ in range(n):
        for kind in kinds:
            out[kind].append(plan.decide(kind))
    return out


def test_decisions_are_reproducible_and_independent_per_kind() -> None:
    probabilities = dict.fromkeys(FAULT_KINDS, 0.3)
    one = _decisions(FaultPlan(probabilities=probabilities, seed=11), FAULT_KINDS, 200)
    two = _decisions(FaultPlan(probabilities=probabilities, seed=11), FAULT_KINDS, 200)
    assert one == two
    assert 20 < sum(one["rate_limit"]) < 100
    # a kind's decisions do not depend on how the other kinds' candidates interleave
    alone = _decisions(FaultPlan(probabilities=probabilities, seed=11), ("drop_stream",), 200)
    assert alone["drop_stream"] == one["drop_stream"]
    other = _decisions(FaultPlan(probabilities=probabilities, seed=12), FAULT_KINDS, 200)
    assert other != one
    # "next" comes first, then the draws
    plan = FaultPlan(probabilities={"rate_limit": 0.0}, next={"rate_limit": 2}, seed=1)
    assert [plan.decide("rate_limit") for _ in range(4)] == [True, True, False, False]
    # a random.Random as the seed is reproducible too
    a = _decisions(FaultPlan(probabilities=probabilities, seed=random.Random(5)), FAULT_KINDS, 50)
    b = _decisions(FaultPlan(probabilities=probabilities, seed=random.Random(5)), FAULT_KINDS, 50)
    assert a == b
    # reseeding restarts the streams; no seed picks one that repeats the run
    plan = FaultPlan(probabilities=probabilities)
    assert isinstance(plan.seed, int)
    first = _decisions(plan, FAULT_KINDS, 50)
    plan.reseed(plan.seed)
    assert _decisions(plan, FAULT_KINDS, 50) == first


async def _session_outcome(seed: int) -> tuple[list[Any], dict[str, int]]:
    """What a client sees of a fixed sequence of requests under a seeded plan."""
    plan = FaultPlan(
        probabilities={
            "rate_limit": 0.2,
            "error_after_accept": 0.3,
            "duplicate_event": 0.3,
            "unknown_event": 0.3,
            "malformed_json": 0.3,
        },
        rate_limit_burst=2,
        seed=seed,
    )
    seen: list[Any] = []
    async with AlpacaServer(feed(), faults=plan, seed=1) as server, ClientSession() as s:
        ws = await listen(s, server)
        for i in range(12):
            status, _ = await order(s, server, client_order_id=f"o{i}")
            seen.append(status)
        await call(s, "POST", server.url + FAULTS, json={"clear": True}, headers=None)
        assert (await order(s, server, client_order_id="end"))[0] == 200  # clear ends a burst
        while True:  # every frame up to the last order's event
            raw = await frame(ws)
            try:
                data = json.loads(raw)["data"]
            except ValueError:
                seen.append("garbage")
                continue
            seen.append((data["event"], data.get("order", {}).get("client_order_id")))
            if seen[-1] == ("new", "end"):
                break
        await ws.close()
    return seen, plan.counts


def test_a_seeded_plan_reproduces_a_session() -> None:
    async def test() -> None:
        one, counted = await _session_outcome(3)
        two, counted_again = await _session_outcome(3)
        assert one == two and counted == counted_again
        assert all(counted[k] > 0 for k in ("rate_limit", "error_after_accept", "duplicate_event"))
        assert "garbage" in one and ("order_gremlin", "o0") in one
        assert (await _session_outcome(5))[0] != one

    run(test)


def test_the_test_api_changes_the_plan_and_reports_counts() -> None:
    async def test() -> None:
        async with AlpacaServer(feed()) as server, ClientSession() as s:
            url = server.url + FAULTS
            change = {
                "rate_limit": {"next": 1},
                "error_after_accept": 0.25,
                "timeout_delay": 2,
                "rate_limit_burst": 1,
                "seed": 5,
            }
            status, state, _ = await call(s, "POST", url, json=change, headers=None)
            assert status == 200
            assert state["next"]["rate_limit"] == 1
            assert state["probabilities"]["error_after_accept"] == 0.25
            assert state["settings"]["timeout_delay"] == 2.0 and state["seed"] == 5
            assert server.faults is not None and server.faults.seed == 5
            # the test API itself is never faulted
            assert (await call(s, "GET", url, headers=None))[0] == 200
            assert (await call(s, "GET", server.url + "/v2/clock"))[0] == 429
            assert (await call(s, "GET", server.url + "/v2/clock"))[0] == 200
            _, state, _ = await call(s, "GET", url, headers=None)
            assert state["counts"] == counts(rate_limit=1) and state["total"] == 1
            assert state["next"]["rate_limit"] == 0
            # bad changes are refused whole, naming the field and the value
            for bad, message in (
                ({"rate_limit": 1.5}, "faults.rate_limit=1.5: must be a probability from 0 to 1"),
                ({"order_gremlin": 0.1}, "faults='order_gremlin': unknown fault kind"),
                ({"drop_stream": {"next": -1}}, "faults.drop_stream.next=-1"),
                ({"drop_stream": {"later": 1}}, "faults.drop_stream='later'"),
                ({"error_status": 404}, "faults.error_status=404"),
                ({"seed": "x"}, "faults.seed='x'"),
                ({"error_after_accept": 1.0, "timeout_delay": -1}, "faults.timeout_delay=-1"),
                ([1, 2], "faults=[1, 2]"),
            ):
                status, body, _ = await call(s, "POST", url, json=bad, headers=None)
                assert (status, body["code"]) == (422, 40010001), bad
                assert body["message"].startswith(message), body
            assert server.faults.probabilities["error_after_accept"] == 0.25  # unchanged
            status, body, _ = await call(s, "POST", url, data="{nope", headers=None)
            assert (status, body["code"]) == (400, 40010000)
            _, state, _ = await call(
                s, "POST", url, json={"clear": True, "reset_counts": True}, headers=None
            )
            assert state["probabilities"] == dict.fromkeys(FAULT_KINDS, 0.0)
            assert state["counts"] == counts() and state["seed"] == 5

    run(test)


def test_custom_hooks_have_no_fault_api_and_exclude_a_plan() -> None:
    async def test() -> None:
        async with AlpacaServer(feed(), hooks=ServerHooks()) as server, ClientSession() as s:
            assert server.faults is None
            assert (await call(s, "GET", server.url + FAULTS, headers=None))[0] == 404

    run(test)
    with pytest.raises(ConfigError) as err:
        AlpacaServer(feed(), hooks=ServerHooks(), faults=FaultPlan())
    assert err.value.field == "faults"
    with pytest.raises(ConfigError) as err:
        AlpacaServer(feed(), faults="rate_limit=0.1")  # type: ignore[arg-type]
    assert (err.value.field, err.value.value) == ("faults", "str")
    plan = FaultPlan(next={"rate_limit": 1})
    server = AlpacaServer(feed(), hooks=FaultInjector(plan))
    assert server.faults is plan


# ------------------------------------------------------------------------------ the invariant


def test_faults_never_duplicate_or_lose_an_order_or_a_fill_at_the_venue() -> None:
    """A client that retries with the same client_order_id and reconciles by it ends with
    exactly one order per id, and the venue lists every fill once, whatever was injected."""

    async def test() -> None:
        plan = FaultPlan(
            probabilities={
                "rate_limit": 0.1,
                "error_after_accept": 0.2,
                "timeout_after_accept": 0.1,
                "drop_stream": 0.2,
                "duplicate_event": 0.2,
                "reorder_events": 0.2,
                "unknown_event": 0.2,
                "malformed_json": 0.2,
            },
            rate_limit_burst=1,
            timeout_delay=0.1,
            reorder_timeout=0.05,
            seed=3,
        )
        async with AlpacaServer(feed(n=20), faults=plan) as server, ClientSession() as s:
            ws = await s.ws_connect(server.stream_url)
            await ws.send_str(json.dumps(AUTHENTICATE))
            await ws.send_str(json.dumps(LISTEN))
            placed: dict[str, str] = {}
            for i in range(40):
                coid = f"inv{i}"
                while coid not in placed:
                    try:
                        status, body = await order(s, server, client_order_id=coid, qty=1)
                    except (TimeoutError, ServerDisconnectedError):
                        status, body = 0, None
                    if status == 200:
                        placed[coid] = body["id"]
                    elif status in (0, 500, 422):  # unknown outcome, or "already there"
                        status, found = await by_coid(s, server, coid)
                        if status == 200:
                            placed[coid] = found["id"]
                if i % 4 == 3:
                    await server.step()
            await server.step(6)
            await ws.close()
            injected = {k for k, n in plan.counts.items() if n}
            assert {"rate_limit", "error_after_accept", "timeout_after_accept"} <= injected
            assert {"drop_stream", "duplicate_event", "reorder_events"} <= injected
            _, orders, _ = await call(
                s, "GET", server.url + "/v2/orders", params={"status": "all", "limit": 500}
            )
            assert sorted(o["client_order_id"] for o in orders) == sorted(placed)
            assert all(o["status"] == "filled" for o in orders)
            plan.clear()
            _, acts, _ = await call(s, "GET", server.url + "/v2/account/activities")
            assert sorted(a["order_id"] for a in acts) == sorted(placed.values())
            fills = [e for e in server.venue.events if e["event"] == "fill"]
            assert len(fills) == len({e["execution_id"] for e in fills}) == 40

    run(test)


# ------------------------------------------------------------------------------ the text form


def test_parse_faults_reads_kinds_counts_settings_and_a_seed() -> None:
    plan = parse_faults(
        " rate_limit=0.02, error_after_accept=0.05 ,drop_stream=0.01,drop_stream=next:2,"
        "timeout_delay=2.5,rate_limit_burst=1,drop_before_fill=false,reorder_timeout=none,seed=7"
    )
    assert plan.probabilities == {
        **dict.fromkeys(FAULT_KINDS, 0.0),
        "rate_limit": 0.02,
        "error_after_accept": 0.05,
        "drop_stream": 0.01,
    }
    assert plan.next == counts(drop_stream=2)
    assert (plan.timeout_delay, plan.rate_limit_burst, plan.drop_before_fill) == (2.5, 1, False)
    assert plan.reorder_timeout is None and plan.seed == 7
    assert parse_faults("").total == 0 and parse_faults("").probabilities["rate_limit"] == 0.0
    assert parse_faults("rate_limit=1").probabilities["rate_limit"] == 1.0


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("gremlins=0.1", "faults", "gremlins"),
        ("rate_limit=1.5", "faults.rate_limit", 1.5),
        ("rate_limit=-0.1", "faults.rate_limit", -0.1),
        ("rate_limit=often", "faults.rate_limit", "often"),
        ("rate_limit=nan", "faults.rate_limit", None),
        ("rate_limit", "faults", "rate_limit"),
        ("rate_limit=", "faults", "rate_limit="),
        ("drop_stream=next:x", "faults.drop_stream.next", "x"),
        ("drop_stream=next:-2", "faults.drop_stream.next", -2),
        ("rate_limit=0.1,rate_limit=0.2", "faults.rate_limit", "0.2"),
        ("timeout_delay=0", "faults.timeout_delay", 0),
        ("rate_limit_burst=0", "faults.rate_limit_burst", 0),
        ("rate_limit_burst=1.5", "faults.rate_limit_burst", 1.5),
        ("error_status=404", "faults.error_status", 404),
        ("drop_before_fill=maybe", "faults.drop_before_fill", "maybe"),
        ("seed=x", "faults.seed", "x"),
    ],
)
def test_parse_faults_names_the_bad_kind_or_value(text: str, field: str, value: Any) -> None:
    with pytest.raises(ConfigError) as err:
        parse_faults(text)
    assert err.value.field == field
    if value is not None:
        assert err.value.value == value


def test_a_plan_checks_its_fields() -> None:
    for kwargs, field in (
        ({"probabilities": {"gremlins": 0.1}}, "faults"),
        ({"probabilities": {"rate_limit": True}}, "faults.rate_limit"),
        ({"next": {"drop_stream": 1.5}}, "faults.drop_stream.next"),
        ({"reorder_timeout": -1}, "faults.reorder_timeout"),
        ({"seed": "7"}, "faults.seed"),
    ):
        with pytest.raises(ConfigError) as err:
            FaultPlan(**kwargs)
        assert err.value.field == field
    plan = FaultPlan()
    with pytest.raises(ConfigError):
        plan.set("gremlins", probability=0.1)
    with pytest.raises(ConfigError):
        plan.configure({"rate_limit": 0.5, "clear": "yes"})
    assert plan.probabilities["rate_limit"] == 0.0  # all or nothing


# ------------------------------------------------------------------------------ runners


def _csv(tmp_path: Path) -> str:
    path = tmp_path / "bars.csv"
    rows = ["timestamp,symbol,open,high,low,close,volume"]
    rows += [f"2024-03-01T14:3{i}:00Z,ACME,10{i},10{i + 2},9{i},10{i + 1},1000" for i in range(3)]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def test_run_server_takes_faults_and_a_seed(tmp_path: Path) -> None:
    lines: list[str] = []
    ready = threading.Event()

    def echo(line: str) -> None:
        lines.append(line)
        ready.set()

    data = _csv(tmp_path)
    thread = threading.Thread(
        target=run_server,
        args=(0, data, 0, 1.5),
        kwargs={"faults": "rate_limit=next:1,rate_limit_burst=1", "fault_seed": 9, "echo": echo},
    )
    thread.start()
    try:
        assert ready.wait(5)
        assert "faults rate_limit=next:1,rate_limit_burst=1, fault seed 9" in lines[0]
        base = lines[0].split(" ")[4]
        assert base.startswith("http://127.0.0.1:")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(
                urllib.request.Request(base + "/v2/clock", headers=AUTH), timeout=5
            )
        assert err.value.code == 429
        err.value.close()
        with urllib.request.urlopen(base + FAULTS, timeout=5) as resp:
            state = json.loads(resp.read())
        assert (state["seed"], state["counts"]["rate_limit"]) == (9, 1)
    finally:
        thread.join(5)
    assert not thread.is_alive()
    for faults, seed, field in (
        ("rate_limit=2", None, "faults.rate_limit"),
        ("bogus=1", None, "faults"),
        (None, "7", "fault_seed"),
    ):
        with pytest.raises(ConfigError) as err2:
            run_server(0, data, 0, 1.0, faults=faults, fault_seed=seed)  # type: ignore[arg-type]
        assert err2.value.field == field


def test_the_thread_runner_takes_a_plan() -> None:
    plan = FaultPlan(next={"error_after_accept": 1})
    with AlpacaServerThread(feed(), faults=plan) as server:
        body = json.dumps({**MARKET_BUY, "client_order_id": "th"}).encode()
        request = urllib.request.Request(
            server.url + "/v2/orders", data=body, headers=AUTH, method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 500
        err.value.close()
        assert [o["client_order_id"] for o in server.state()["orders"]] == ["th"]
        assert plan.counts == counts(error_after_accept=1)
    assert server.thread is not None and not server.thread.is_alive()


def test_a_stream_hook_sees_the_connection() -> None:
    class Tagger(ServerHooks):
        def on_stream_send(self, conn: Any, message: Any) -> list[Any]:
            conn.extra["sent"] = conn.extra.get("sent", 0) + 1
            return [message]

    async def test() -> None:
        async with AlpacaServer(feed(), hooks=Tagger()) as server, ClientSession() as s:
            ws = await listen(s, server)
            await order(s, server)
            assert (await event(ws))["event"] == "new"
            await ws.close()

    run(test)


def test_hook_routes_must_live_under_the_test_api() -> None:
    class Stray(ServerHooks):
        def routes(self) -> list[web.RouteDef]:
            async def handler(request: web.Request) -> web.Response:
                return web.Response()

            return [web.get("/v2/stray", handler)]

    with pytest.raises(ConfigError) as err:
        AlpacaServer(feed(), hooks=Stray())
    assert (err.value.field, err.value.value) == ("hooks.routes", "/v2/stray")
