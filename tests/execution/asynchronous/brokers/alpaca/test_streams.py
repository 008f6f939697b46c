"""Alpaca's two stream protocols against a scriptable loopback WebSocket venue (aiohttp.web).

The protocols are driven both directly (``handshake`` on a raw client socket) and through
:class:`ManagedStream` (start, reconnect, 406 wait, fatal codes). The venue binds 127.0.0.1
port 0, is started and stopped by each test, follows one :class:`Script` per connection attempt
and records the messages each socket received and what arrived when it expected silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

from tradeloop.execution.asynchronous.brokers.alpaca.streams import (
    DataStreamProtocol,
    TradeStreamProtocol,
)
from tradeloop.execution.asynchronous.components.connection import (
    ConnectionManager,
    StreamClosedError,
)
from tradeloop.execution.core.backoff import CONNECTION_LIMIT_WAIT

T = TypeVar("T")

KEY = "PKSTREAMKEY987654321"
SECRET = "stream-SeCrEt-0123456789-abcdefghij"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 10.0))


async def until(cond: Callable[[], bool], what: str, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.01)


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)


# -- the scriptable venue ----------------------------------------------------------------------


@dataclass(frozen=True)
class Recv:
    """Read one client message and record it."""


@dataclass(frozen=True)
class Send:
    payload: Any
    binary: bool = False  # JSON in a binary frame (Alpaca paper does this)


@dataclass(frozen=True)
class SendRaw:
    text: str


@dataclass(frozen=True)
class Close:
    code: int


@dataclass(frozen=True)
class Quiet:
    """Expect no client message for ``seconds``; one that arrives is recorded as unexpected."""

    seconds: float


Step = Recv | Send | SendRaw | Close | Quiet


@dataclass(frozen=True)
class Script:
    steps: tuple[Step, ...] = ()
    status: int | None = None  # refuse the upgrade with this HTTP status


def script(*items: Any) -> Script:
    return Script(tuple(item if isinstance(item, Step) else Send(item) for item in items))


class Venue:
    def __init__(self, *scripts: Script) -> None:
        self.scripts = list(scripts)
        self.attempts = 0
        self.open_now = 0
        self.max_open = 0
        self.received: list[list[Any]] = []
        self.unexpected: list[Any] = []
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, path: str = "/stream") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._ws)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=aiohttp.WSCloseCode.GOING_AWAY), 1.0)
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def _decode(msg: aiohttp.WSMessage) -> Any:
        try:
            return json.loads(msg.data)
        except (TypeError, ValueError):
            return msg.data

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        n = self.attempts
        self.attempts += 1
        plan = self.scripts[n] if n < len(self.scripts) else Script(status=503)
        if plan.status is not None:
            return web.json_response({"message": "refused"}, status=plan.status)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        seen: list[Any] = []
        self.received.append(seen)
        self._sockets.add(ws)
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        try:
            for step in plan.steps:
                if not await self._step(ws, step, seen):
                    break
            else:
                async for msg in ws:
                    seen.append(self._decode(msg))
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            pass
        finally:
            self.open_now -= 1
            self._sockets.discard(ws)
        return ws

    async def _step(self, ws: web.WebSocketResponse, step: Step, seen: list[Any]) -> bool:
        if isinstance(step, Recv):
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                return False
            seen.append(self._decode(msg))
        elif isinstance(step, Quiet):
            try:
                msg = await ws.receive(timeout=step.seconds)
            except TimeoutError:
                return True
            if msg.type is not aiohttp.WSMsgType.TEXT:
                return False  # the client closed
            self.unexpected.append(self._decode(msg))
        elif isinstance(step, Send):
            text = json.dumps(step.payload)
            if step.binary:
                await ws.send_bytes(text.encode())
            else:
                await ws.send_str(text)
        elif isinstance(step, SendRaw):
            await ws.send_str(step.text)
        else:
            await ws.close(code=step.code, message=b"bye")
            return False
        return True


@asynccontextmanager
async def venue(*scripts: Script) -> AsyncIterator[Venue]:
    server = Venue(*scripts)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def raw_socket(url: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        yield ws


@asynccontextmanager
async def manager(sleep: FakeSleep) -> AsyncIterator[ConnectionManager]:
    cm = ConnectionManager(sleep=sleep)
    try:
        yield cm
    finally:
        await cm.close()


class Inbox:
    def __init__(self) -> None:
        self.items: list[Any] = []
        self.reconnected = 0

    def __call__(self, item: Any) -> None:
        self.items.append(item)

    async def on_reconnect(self) -> None:
        self.reconnected += 1


def frame(kind: aiohttp.WSMsgType, data: Any) -> aiohttp.WSMessage:
    return aiohttp.WSMessage(kind, data, None)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert KEY not in text and SECRET not in text, text


# -- Alpaca's messages -------------------------------------------------------------------------

AUTHENTICATE = {"action": "authenticate", "data": {"key_id": KEY, "secret_key": SECRET}}
LISTEN = {"action": "listen", "data": {"streams": ["trade_updates"]}}
AUTHORIZED = {"stream": "authorization", "data": {"status": "authorized", "action": "authenticate"}}
UNAUTHORIZED = {
    "stream": "authorization",
    "data": {"status": "unauthorized", "action": "authenticate"},
}
LISTENING = {"stream": "listening", "data": {"streams": ["trade_updates"]}}


def trade_update(event: str, n: int) -> dict[str, Any]:
    return {
        "stream": "trade_updates",
        "data": {"event": event, "order": {"id": f"o-{n}", "client_order_id": f"c-{n}"}},
    }


def trade_ok(*then: Any, binary: bool = False) -> Script:
    """The trade stream's handshake as Alpaca runs it, then ``then``."""
    return script(Recv(), Send(AUTHORIZED, binary), Recv(), Send(LISTENING, binary), *then)


def trade_error(code: int | None, message: str) -> Script:
    data: dict[str, Any] = {"message": message}
    if code is not None:
        data["code"] = code
    return script(Recv(), {"stream": "error", "data": data})


CONNECTED = [{"T": "success", "msg": "connected"}]
AUTHENTICATED = [{"T": "success", "msg": "authenticated"}]
SUBSCRIBED = [{"T": "subscription", "trades": [], "quotes": [], "bars": ["AAA", "BBB"]}]


def auth(key: str = KEY, secret: str = SECRET) -> dict[str, Any]:
    return {"action": "auth", "key": key, "secret": secret}


def subscribe(*symbols: str) -> dict[str, Any]:
    return {"action": "subscribe", "bars": list(symbols), "trades": [], "quotes": []}


def bar(symbol: str, close: float) -> dict[str, Any]:
    return {"T": "b", "S": symbol, "o": close, "h": close, "l": close, "c": close, "v": 100}


def data_ok(*then: Any) -> Script:
    return script(CONNECTED, Recv(), AUTHENTICATED, Recv(), SUBSCRIBED, *then)


def data_error(code: int | None, msg: str) -> list[dict[str, Any]]:
    item: dict[str, Any] = {"T": "error", "msg": msg}
    if code is not None:
        item["code"] = code
    return [item]


# ==============================================================================================
# TradeStreamProtocol
# ==============================================================================================


def test_trade_handshake_authenticates_then_listens() -> None:
    async def main() -> None:
        plan = script(Recv(), Quiet(0.15), AUTHORIZED, Recv(), Quiet(0.05))
        async with venue(plan) as v, raw_socket(v.url()) as ws:
            await TradeStreamProtocol(KEY, SECRET).handshake(ws)
            await until(lambda: len(v.received[0]) == 2, "authenticate and listen")
            assert v.received[0] == [AUTHENTICATE, LISTEN]
            assert v.unexpected == []  # nothing sent before the authorization reply

    run(main())


def test_trade_handshake_accepts_a_binary_authorization_reply() -> None:
    async def main() -> None:
        async with venue(script(Recv(), Send(AUTHORIZED, binary=True), Recv())) as v:
            async with raw_socket(v.url()) as ws:
                await TradeStreamProtocol(KEY, SECRET).handshake(ws)
            assert v.received[0] == [AUTHENTICATE, LISTEN]

    run(main())


def test_trade_handshake_unauthorized_is_401_and_does_not_listen() -> None:
    async def main() -> None:
        async with venue(script(Recv(), UNAUTHORIZED, Quiet(0.1))) as v:
            async with raw_socket(v.url()) as ws:
                with pytest.raises(StreamClosedError) as info:
                    await TradeStreamProtocol(KEY, SECRET).handshake(ws)
            assert (info.value.stream, info.value.code) == ("trade_updates", 401)
            assert v.received[0] == [AUTHENTICATE]
            assert v.unexpected == []  # no listen after a refusal
            assert_no_secret(str(info.value), repr(info.value))

    run(main())


@pytest.mark.parametrize(
    ("data", "code", "reason"),
    [
        ({"code": 406, "message": "connection limit exceeded"}, 406, "connection limit exceeded"),
        ({"code": 401, "msg": "unauthorized"}, 401, "unauthorized"),
        ({"code": 402, "message": "auth failed"}, 402, "auth failed"),
        ({"message": "internal error"}, None, "internal error"),
        ({"code": "406"}, None, "error"),
    ],
)
def test_trade_handshake_error_reply_carries_its_code(
    data: dict[str, Any], code: int | None, reason: str
) -> None:
    async def main() -> None:
        async with venue(script(Recv(), {"stream": "error", "data": data})) as v:
            async with raw_socket(v.url()) as ws:
                with pytest.raises(StreamClosedError) as info:
                    await TradeStreamProtocol(KEY, SECRET).handshake(ws)
            assert (info.value.code, info.value.reason) == (code, reason)
            assert v.received[0] == [AUTHENTICATE]

    run(main())


@pytest.mark.parametrize(
    "reply",
    [
        LISTENING,
        trade_update("fill", 1),
        [AUTHORIZED],
        {"stream": "authorization"},
        "authorized",
    ],
    ids=["listening", "trade-update", "list", "no-data", "string"],
)
def test_trade_handshake_unexpected_reply_is_refused(reply: Any) -> None:
    async def main() -> None:
        async with venue(script(Recv(), reply)) as v, raw_socket(v.url()) as ws:
            with pytest.raises(StreamClosedError) as info:
                await TradeStreamProtocol(KEY, SECRET).handshake(ws)
            assert info.value.code is None
            assert info.value.reason == "unexpected reply to authenticate"

    run(main())


@pytest.mark.parametrize("code", [1008, 1011, 4001])
def test_trade_handshake_closed_by_the_venue_carries_the_close_code(code: int) -> None:
    async def main() -> None:
        async with venue(script(Recv(), Close(code))) as v, raw_socket(v.url()) as ws:
            with pytest.raises(StreamClosedError) as info:
                await TradeStreamProtocol(KEY, SECRET).handshake(ws)
            assert info.value.code == code
            assert info.value.reason == "closed during the handshake"

    run(main())


def test_trade_decode_accepts_text_and_binary_and_swallows_listening() -> None:
    proto = TradeStreamProtocol(KEY, SECRET)
    update = trade_update("fill", 7)
    text = json.dumps(update)
    assert proto.decode(frame(aiohttp.WSMsgType.TEXT, text)) == [update]
    assert proto.decode(frame(aiohttp.WSMsgType.BINARY, text.encode())) == [update]
    assert proto.decode(frame(aiohttp.WSMsgType.TEXT, json.dumps(LISTENING))) == []
    assert proto.decode(frame(aiohttp.WSMsgType.BINARY, json.dumps(LISTENING).encode())) == []
    unknown = {"stream": "trade_updates", "data": {"event": "brand_new_event"}}
    assert proto.decode(frame(aiohttp.WSMsgType.TEXT, json.dumps(unknown))) == [unknown]
    assert proto.decode(frame(aiohttp.WSMsgType.TEXT, "[1, 2]")) == [[1, 2]]
    with pytest.raises(ValueError):
        proto.decode(frame(aiohttp.WSMsgType.TEXT, "{oops"))
    with pytest.raises(ValueError):
        proto.decode(frame(aiohttp.WSMsgType.PING, b""))


def test_trade_protocol_never_shows_the_keys() -> None:
    proto = TradeStreamProtocol(KEY, SECRET)
    assert proto.name == "trade_updates"
    assert proto.upgrade_headers() == {}
    assert repr(proto) == "TradeStreamProtocol(trade_updates)"
    assert_no_secret(repr(proto), str(proto), f"{proto!r}", repr([proto]), repr({"p": proto}))


def test_trade_stream_end_to_end_delivers_updates_from_text_and_binary_frames() -> None:
    sleep = FakeSleep()
    inbox = Inbox()
    updates = [trade_update("new", 1), trade_update("fill", 1), trade_update("canceled", 2)]

    async def main() -> None:
        plan = trade_ok(
            Send(updates[0], binary=True), Send(updates[1]), Send(updates[2], binary=True)
        )
        async with venue(plan) as v, manager(sleep) as cm:
            stream = cm.stream(v.url(), TradeStreamProtocol(KEY, SECRET), inbox)
            await stream.start()
            assert stream.state == "connected"
            await until(lambda: len(inbox.items) == 3, "three trade updates")
            assert inbox.items == updates  # the `listening` confirmation is not delivered
            assert (stream.messages, stream.bad_messages) == (3, 0)
            assert v.received[0] == [AUTHENTICATE, LISTEN]

    run(main())


def test_trade_stream_unauthorized_fails_start_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sleep = FakeSleep()

    async def main() -> None:
        async with venue(script(Recv(), UNAUTHORIZED), trade_ok()) as v, manager(sleep) as cm:
            stream = cm.stream(v.url(), TradeStreamProtocol(KEY, SECRET), Inbox())
            with pytest.raises(StreamClosedError) as info:
                await stream.start()
            assert info.value.code == 401
            assert stream.state == "failed"
            assert v.attempts == 1
            assert sleep.calls == []
            assert_no_secret(str(info.value), repr(info.value))

    run(main())
    for record in caplog.records:
        assert_no_secret(record.getMessage(), record.exc_text or "", repr(record.args))


def test_trade_stream_406_on_reconnect_waits_then_reauthenticates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sleep = FakeSleep()
    inbox = Inbox()

    async def main() -> None:
        plans = (
            trade_ok(trade_update("new", 1), Close(1001)),
            trade_error(406, "connection limit exceeded"),
            trade_ok(trade_update("fill", 1), binary=True),
        )
        async with venue(*plans) as v, manager(sleep) as cm:
            stream = cm.stream(
                v.url(),
                TradeStreamProtocol(KEY, SECRET),
                inbox,
                on_reconnect=inbox.on_reconnect,
            )
            await stream.start()
            await until(lambda: len(inbox.items) == 2, "the update after the 406")
            assert inbox.items == [trade_update("new", 1), trade_update("fill", 1)]
            assert v.attempts == 3
            assert len(sleep.calls) == 3 and sleep.calls[1] == CONNECTION_LIMIT_WAIT
            assert (stream.reconnects, inbox.reconnected) == (1, 1)
            assert v.received == [[AUTHENTICATE, LISTEN], [AUTHENTICATE], [AUTHENTICATE, LISTEN]]
            assert v.max_open == 1

    run(main())
    assert any("406" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert_no_secret(record.getMessage(), record.exc_text or "", repr(record.args))


def test_trade_stream_unauthorized_on_reconnect_stops_for_good() -> None:
    sleep = FakeSleep()
    inbox = Inbox()

    async def main() -> None:
        plans = (trade_ok(Close(1001)), script(Recv(), UNAUTHORIZED), trade_ok())
        async with venue(*plans) as v, manager(sleep) as cm:
            stream = cm.stream(
                v.url(), TradeStreamProtocol(KEY, SECRET), inbox, on_reconnect=inbox.on_reconnect
            )
            await stream.start()
            await until(lambda: stream.state == "failed", "the stream to fail")
            await asyncio.sleep(0.1)
            assert isinstance(stream.failure, StreamClosedError)
            assert stream.failure.code == 401
            assert v.attempts == 2
            assert (stream.reconnects, inbox.reconnected) == (0, 0)

    run(main())


# ==============================================================================================
# DataStreamProtocol
# ==============================================================================================


def test_data_handshake_waits_for_connected_then_auths_then_subscribes() -> None:
    async def main() -> None:
        plan = script(
            Quiet(0.15),  # the client must wait for `connected`
            CONNECTED,
            Recv(),
            Quiet(0.05),  # and for `authenticated` before subscribing
            AUTHENTICATED,
            Recv(),
            SUBSCRIBED,
        )
        async with venue(plan) as v, raw_socket(v.url("/v2/iex")) as ws:
            await DataStreamProtocol(KEY, SECRET, ["AAA", "BBB"]).handshake(ws)
            await until(lambda: len(v.received[0]) == 2, "auth and subscribe")
            assert v.received[0] == [auth(), subscribe("AAA", "BBB")]
            assert v.unexpected == []

    run(main())


def test_data_handshake_accepts_binary_json_frames() -> None:
    async def main() -> None:
        plan = script(
            Send(CONNECTED, True), Recv(), Send(AUTHENTICATED, True), Recv(), Send(SUBSCRIBED, True)
        )
        async with venue(plan) as v, raw_socket(v.url("/v2/iex")) as ws:
            await DataStreamProtocol(KEY, SECRET, ["AAA"]).handshake(ws)
            assert v.received[0] == [auth(), subscribe("AAA")]

    run(main())


@pytest.mark.parametrize(
    "greeting",
    [AUTHENTICATED, SUBSCRIBED, [{"T": "success", "msg": "hello"}], {"T": "success"}, [1, "x"]],
    ids=["authenticated", "subscription", "other-msg", "no-msg", "junk"],
)
def test_data_handshake_requires_connected_first(greeting: Any) -> None:
    async def main() -> None:
        async with venue(script(greeting, Quiet(0.1))) as v, raw_socket(v.url()) as ws:
            with pytest.raises(StreamClosedError) as info:
                await DataStreamProtocol(KEY, SECRET, ["AAA"]).handshake(ws)
            assert info.value.code is None
            assert info.value.reason == "expected success connected"
            assert v.unexpected == []  # no auth sent to a venue that did not greet

    run(main())


@pytest.mark.parametrize(
    ("plan", "sent", "code", "reason"),
    [
        (
            script(data_error(406, "connection limit exceeded")),
            [],
            406,
            "connection limit exceeded",
        ),
        (
            script(CONNECTED, Recv(), data_error(406, "connection limit exceeded")),
            [auth()],
            406,
            "connection limit exceeded",
        ),
        (script(CONNECTED, Recv(), data_error(402, "auth failed")), [auth()], 402, "auth failed"),
        (script(CONNECTED, Recv(), data_error(None, "auth failed")), [auth()], 402, "auth failed"),
        (
            script(CONNECTED, Recv(), data_error(None, "unauthorized")),
            [auth()],
            401,
            "unauthorized",
        ),
        (
            script(CONNECTED, Recv(), data_error(401, "not authenticated")),
            [auth()],
            401,
            "not authenticated",
        ),
        (
            script(
                CONNECTED,
                Recv(),
                AUTHENTICATED,
                Recv(),
                data_error(409, "insufficient subscription"),
            ),
            [auth(), subscribe("AAA")],
            409,
            "insufficient subscription",
        ),
        (script(CONNECTED, Recv(), data_error(None, "boom")), [auth()], None, "boom"),
    ],
    ids=[
        "406-at-greeting",
        "406-at-auth",
        "402-at-auth",
        "auth-failed-without-code",
        "unauthorized-without-code",
        "401-at-auth",
        "409-at-subscribe",
        "unknown-error",
    ],
)
def test_data_handshake_error_replies_map_to_codes(
    plan: Script, sent: list[Any], code: int | None, reason: str
) -> None:
    async def main() -> None:
        async with venue(plan) as v, raw_socket(v.url()) as ws:
            with pytest.raises(StreamClosedError) as info:
                await DataStreamProtocol(KEY, SECRET, ["AAA"]).handshake(ws)
            assert (info.value.stream, info.value.code, info.value.reason) == (
                "market_data",
                code,
                reason,
            )
            assert v.received[0] == sent
            assert_no_secret(str(info.value))

    run(main())


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not authenticated", 401),
        ("connection limit exceeded", 406),
        ("insufficient subscription", 409),
    ],
)
def test_data_handshake_error_without_code_maps_every_known_message(
    message: str, code: int
) -> None:
    async def main() -> None:
        async with venue(script(CONNECTED, Recv(), data_error(None, message))) as v:
            async with raw_socket(v.url()) as ws:
                with pytest.raises(StreamClosedError) as info:
                    await DataStreamProtocol(KEY, SECRET, ["AAA"]).handshake(ws)
            assert info.value.code == code

    run(main())


def test_data_handshake_needs_a_subscription_reply() -> None:
    async def main() -> None:
        plan = script(CONNECTED, Recv(), AUTHENTICATED, Recv(), AUTHENTICATED)
        async with venue(plan) as v, raw_socket(v.url()) as ws:
            with pytest.raises(StreamClosedError) as info:
                await DataStreamProtocol(KEY, SECRET, ["AAA"]).handshake(ws)
            assert (info.value.code, info.value.reason) == (None, "expected subscription")

    run(main())


def test_data_handshake_finds_its_reply_among_other_items() -> None:
    async def main() -> None:
        plan = script(
            [{"T": "note"}, "junk", {"T": "success", "msg": "connected"}],
            Recv(),
            AUTHENTICATED,
            Recv(),
            [{"T": "success", "msg": "x"}, {"T": "subscription", "bars": ["AAA"]}],
        )
        async with venue(plan) as v, raw_socket(v.url()) as ws:
            await DataStreamProtocol(KEY, SECRET, ["AAA"]).handshake(ws)
            assert v.received[0] == [auth(), subscribe("AAA")]

    run(main())


def test_data_handshake_closed_by_the_venue_carries_the_close_code() -> None:
    async def main() -> None:
        async with venue(script(CONNECTED, Recv(), Close(4003))) as v, raw_socket(v.url()) as ws:
            with pytest.raises(StreamClosedError) as info:
                await DataStreamProtocol(KEY, SECRET, ["AAA"]).handshake(ws)
            assert (info.value.code, info.value.reason) == (4003, "closed during the handshake")

    run(main())


def test_data_decode_returns_every_item_of_an_array_frame() -> None:
    proto = DataStreamProtocol(KEY, SECRET, ["AAA", "BBB"])
    bars = [bar("AAA", 10.0), bar("BBB", 20.0)]
    assert proto.decode(frame(aiohttp.WSMsgType.TEXT, json.dumps(bars))) == bars
    assert proto.decode(frame(aiohttp.WSMsgType.BINARY, json.dumps(bars).encode())) == bars
    assert proto.decode(frame(aiohttp.WSMsgType.TEXT, "[]")) == []
    one = bar("AAA", 1.0)
    assert proto.decode(frame(aiohttp.WSMsgType.TEXT, json.dumps(one))) == [one]
    with pytest.raises(ValueError):
        proto.decode(frame(aiohttp.WSMsgType.BINARY, b"\x81\xa1T\xa1b"))  # msgpack, not JSON


def test_data_protocol_never_shows_the_keys() -> None:
    proto = DataStreamProtocol(KEY, SECRET, ("AAA", "BBB"))
    assert proto.name == "market_data"
    assert proto.symbols == ["AAA", "BBB"]
    assert proto.upgrade_headers() == {}
    assert repr(proto) == "DataStreamProtocol(bars=['AAA', 'BBB'])"
    assert_no_secret(repr(proto), str(proto), repr([proto]))


def test_data_stream_end_to_end_delivers_bars_and_resubscribes_after_a_drop() -> None:
    sleep = FakeSleep()
    inbox = Inbox()
    first = [bar("AAA", 10.0), bar("BBB", 20.0)]
    second = [bar("AAA", 11.0)]

    async def main() -> None:
        plans = (data_ok(first, Close(1011)), data_ok(second))
        async with venue(*plans) as v, manager(sleep) as cm:
            stream = cm.stream(
                v.url("/v2/iex"),
                DataStreamProtocol(KEY, SECRET, ["AAA", "BBB"]),
                inbox,
                on_reconnect=inbox.on_reconnect,
            )
            await stream.start()
            await until(lambda: len(inbox.items) == 3, "three bars over two sockets")
            assert inbox.items == [*first, *second]
            assert (stream.reconnects, inbox.reconnected) == (1, 1)
            assert v.received == [[auth(), subscribe("AAA", "BBB")]] * 2
            assert v.max_open == 1
            assert len(sleep.calls) == 1

    run(main())


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (script(CONNECTED, Recv(), data_error(402, "auth failed")), 402),
        (script(CONNECTED, Recv(), AUTHENTICATED, Recv(), data_error(409, "no sip")), 409),
    ],
    ids=["402", "409"],
)
def test_data_stream_fatal_code_on_reconnect_stops_for_good(failure: Script, code: int) -> None:
    sleep = FakeSleep()

    async def main() -> None:
        async with venue(data_ok(Close(1001)), failure, data_ok()) as v, manager(sleep) as cm:
            stream = cm.stream(v.url(), DataStreamProtocol(KEY, SECRET, ["AAA"]), Inbox())
            await stream.start()
            await until(lambda: stream.state == "failed", "the stream to fail")
            await asyncio.sleep(0.1)
            assert isinstance(stream.failure, StreamClosedError)
            assert stream.failure.code == code
            assert v.attempts == 2
            assert len(sleep.calls) == 1

    run(main())
