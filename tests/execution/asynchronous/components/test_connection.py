"""ConnectionManager and ManagedStream against a scriptable loopback venue (aiohttp.web).

The venue (:class:`Venue`) binds 127.0.0.1 port 0 and is started and stopped by each test. Its
WebSocket endpoints follow one :class:`Script` per connection attempt (refuse the upgrade, answer
the handshake, send frames, close with a code, stay silent) and record what they saw: upgrade
attempts, the messages each socket received, and how many sockets were open at once. Its HTTP
endpoints answer with scripted :class:`Reply` objects. The manager gets a fake ``sleep`` that
records backoff delays instead of waiting them, so every test runs in well under a second or two.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

from tradeloop.errors import BrokerConnectionError, ConfigError
from tradeloop.execution.asynchronous.components.connection import (
    ConnectionManager,
    HttpResponse,
    ManagedStream,
    StreamClosedError,
    decode_json_frame,
)
from tradeloop.execution.asynchronous.components.rate_limiter import RateLimiter
from tradeloop.execution.core.backoff import CONNECTION_LIMIT_WAIT, Backoff

T = TypeVar("T")

KEY = "PKTESTKEY0123456789"
SECRET = "sEcReT-abcdefghijklmnopqrstuvwxyz-42"
CREDENTIALS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
EPOCH = 1_700_000_000.0


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 10.0))


async def until(cond: Callable[[], bool], what: str, timeout: float = 2.0) -> None:
    """Poll ``cond`` (real time) until it holds; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.01)


class FakeSleep:
    """Records every requested wait and returns at once (yielding to the loop)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)


class FakeClock:
    """A monotonic clock, a wall clock EPOCH ahead, and a sleep that advances both."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return EPOCH + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)
        self.now += seconds


# -- the scriptable venue ----------------------------------------------------------------------


@dataclass(frozen=True)
class Recv:
    """Read one client message and record it (a close from the client ends the script)."""


@dataclass(frozen=True)
class Send:
    payload: Any  # sent as JSON text


@dataclass(frozen=True)
class SendRaw:
    text: str  # sent as-is in a text frame


@dataclass(frozen=True)
class SendBytes:
    data: bytes  # sent in a binary frame


@dataclass(frozen=True)
class Close:
    code: int


@dataclass(frozen=True)
class Pause:
    seconds: float


Step = Recv | Send | SendRaw | SendBytes | Close | Pause


@dataclass(frozen=True)
class Script:
    """One WebSocket connection attempt: refuse the upgrade with ``status``, or accept and run
    ``steps``; a script that does not close keeps reading (silent) until the client closes."""

    steps: tuple[Step, ...] = ()
    status: int | None = None


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: JSON ``body`` (str/bytes sent as-is), or hang, or drop the connection."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: bool = False
    drop: bool = False


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: str
    peer: Any
    at: float


def refuse(status: int) -> Script:
    return Script(status=status)


def hello(*then: Any, close: int | None = None) -> Script:
    """Accept, answer HelloProtocol's handshake, then send ``then`` (payloads or steps)."""
    steps: list[Step] = [Recv(), Send({"ok": True})]
    for item in then:
        steps.append(item if isinstance(item, Step) else Send(item))
    if close is not None:
        steps.append(Close(close))
    return Script(tuple(steps))


def hello_error(code: int) -> Script:
    """Accept the upgrade, refuse the handshake with an error message carrying ``code``."""
    return Script((Recv(), Send({"error": code, "message": "refused"})))


class Venue:
    """The loopback server. WebSocket scripts are per path ("/ws" unless ``paths`` says)."""

    def __init__(
        self,
        *scripts: Script,
        paths: Mapping[str, Sequence[Script]] | None = None,
        http: Mapping[str, Sequence[Reply]] | None = None,
        default: Script | None = None,
        clock: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.scripts: dict[str, list[Script]] = {"/ws": list(scripts)}
        for path, items in (paths or {}).items():
            self.scripts[path] = list(items)
        self.default = default if default is not None else Script(status=503)
        self.http = {path: list(replies) for path, replies in (http or {}).items()}
        self.clock = clock
        self.attempts: dict[str, int] = {}
        self.open_now: dict[str, int] = {}
        self.max_open: dict[str, int] = {}
        self.received: list[list[Any]] = []  # per accepted socket, in order of acceptance
        self.upgrade_headers: list[dict[str, str]] = []
        self.requests: list[Seen] = []
        self._sockets: set[web.WebSocketResponse] = set()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, path: str = "/ws", scheme: str = "ws") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def http_url(self, path: str) -> str:
        return self.url(path, "http")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws{tail:.*}", self._ws)
        app.router.add_route("*", "/{tail:.*}", self._http)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._stopping.set()
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=aiohttp.WSCloseCode.GOING_AWAY), 1.0)
        if self._runner is not None:
            await self._runner.cleanup()

    # -- WebSocket -------------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        n = self.attempts.get(path, 0)
        self.attempts[path] = n + 1
        scripts = self.scripts.get(path, [])
        script = scripts[n] if n < len(scripts) else self.default
        self.upgrade_headers.append(dict(request.headers))
        if script.status is not None:
            return web.json_response({"message": "refused"}, status=script.status)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        seen: list[Any] = []
        self.received.append(seen)
        self._sockets.add(ws)
        self.open_now[path] = self.open_now.get(path, 0) + 1
        self.max_open[path] = max(self.max_open.get(path, 0), self.open_now[path])
        try:
            for step in script.steps:
                if not await self._step(ws, step, seen):
                    break
            else:
                async for msg in ws:
                    seen.append(self._decode(msg))
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            pass  # the client went away mid-script
        finally:
            self.open_now[path] -= 1
            self._sockets.discard(ws)
        return ws

    @staticmethod
    def _decode(msg: aiohttp.WSMessage) -> Any:
        try:
            return json.loads(msg.data)
        except (TypeError, ValueError):
            return msg.data

    async def _step(self, ws: web.WebSocketResponse, step: Step, seen: list[Any]) -> bool:
        """Run one step; False ends the script (the socket is closed)."""
        if isinstance(step, Recv):
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                return False
            seen.append(self._decode(msg))
        elif isinstance(step, Send):
            await ws.send_str(json.dumps(step.payload))
        elif isinstance(step, SendRaw):
            await ws.send_str(step.text)
        elif isinstance(step, SendBytes):
            await ws.send_bytes(step.data)
        elif isinstance(step, Pause):
            await asyncio.sleep(step.seconds)
        else:
            await ws.close(code=step.code, message=b"bye")
            return False
        return True

    # -- HTTP ------------------------------------------------------------------------------

    async def _http(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        self.requests.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                body,
                request.transport.get_extra_info("peername") if request.transport else None,
                self.clock(),
            )
        )
        replies = self.http.get(request.path)
        if not replies:
            return web.json_response({"code": 40410000, "message": "not found"}, status=404)
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if reply.hang:
            await self._stopping.wait()
        if reply.drop:
            assert request.transport is not None
            request.transport.close()
            await asyncio.sleep(0.05)
        if isinstance(reply.body, str | bytes):
            return web.Response(status=reply.status, body=reply.body, headers=reply.headers)
        if reply.body is None:
            return web.Response(status=reply.status, headers=reply.headers)
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)


@asynccontextmanager
async def venue(*scripts: Script, **kw: Any) -> AsyncIterator[Venue]:
    server = Venue(*scripts, **kw)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def manager(**kw: Any) -> AsyncIterator[ConnectionManager]:
    cm = ConnectionManager(**kw)
    try:
        yield cm
    finally:
        await cm.close()


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# -- a minimal stream protocol -----------------------------------------------------------------


class HelloProtocol:
    """Sends ``{"hello": token}``; ``{"ok": true}`` accepts, ``{"error": code}`` refuses."""

    name = "hello"

    def __init__(self, token: str = "tok") -> None:
        self.token = token

    def upgrade_headers(self) -> Mapping[str, str]:
        return {"X-Stream-Token": self.token}

    async def handshake(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await ws.send_str(json.dumps({"hello": self.token}))
        msg = await ws.receive()
        if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            raise StreamClosedError(self.name, ws.close_code, "closed during the handshake")
        reply = decode_json_frame(msg)
        if "error" in reply:
            raise StreamClosedError(self.name, reply["error"], str(reply.get("message")))
        if reply != {"ok": True}:
            raise StreamClosedError(self.name, None, "unexpected reply")

    def decode(self, msg: aiohttp.WSMessage) -> list[Any]:
        value = decode_json_frame(msg)
        return value if isinstance(value, list) else [value]


class Inbox:
    """on_message and on_reconnect callbacks that record what they got."""

    def __init__(self, fail_on: Any = None) -> None:
        self.items: list[Any] = []
        self.reconnected = 0
        self.fail_on = fail_on

    def __call__(self, item: Any) -> None:
        if self.fail_on is not None and item == self.fail_on:
            raise RuntimeError("handler exploded")
        self.items.append(item)

    async def on_reconnect(self) -> None:
        self.reconnected += 1


def seeded_backoff(seed: int = 7) -> Backoff:
    return Backoff(base=0.5, factor=2.0, cap=30.0, jitter=0.5, rng=random.Random(seed))


def assert_backoff_delays(delays: Sequence[float], base: float = 0.5) -> None:
    """Delay ``n`` of an equal-jitter backoff lies in ``[d/2, d]`` with ``d = base * 2**n``."""
    for n, delay in enumerate(delays):
        nominal = base * 2**n
        assert nominal / 2 <= delay <= nominal, (n, delay, list(delays))
    assert list(delays) == sorted(delays), delays


def stream_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("stream-") and not t.done()]


def msg(kind: aiohttp.WSMsgType, data: Any) -> aiohttp.WSMessage:
    return aiohttp.WSMessage(kind, data, None)


# ==============================================================================================
# HttpResponse, decode_json_frame, construction
# ==============================================================================================


def test_http_response_is_a_frozen_record() -> None:
    resp = HttpResponse(200, {"A": "b"}, {"x": 1})
    assert (resp.status, resp.headers, resp.data) == (200, {"A": "b"}, {"x": 1})
    with pytest.raises(AttributeError):
        resp.status = 500  # type: ignore[misc]


def test_decode_json_frame_reads_text_and_binary_frames() -> None:
    assert decode_json_frame(msg(aiohttp.WSMsgType.TEXT, '{"a": [1, 2]}')) == {"a": [1, 2]}
    assert decode_json_frame(msg(aiohttp.WSMsgType.BINARY, b'[{"T": "b"}]')) == [{"T": "b"}]
    assert decode_json_frame(msg(aiohttp.WSMsgType.BINARY, '"é"'.encode())) == "é"


@pytest.mark.parametrize(
    "kind", [aiohttp.WSMsgType.PING, aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR]
)
def test_decode_json_frame_rejects_control_frames(kind: aiohttp.WSMsgType) -> None:
    with pytest.raises(ValueError, match=kind.name):
        decode_json_frame(msg(kind, b""))


def test_decode_json_frame_rejects_malformed_json() -> None:
    with pytest.raises(ValueError):
        decode_json_frame(msg(aiohttp.WSMsgType.TEXT, "{not json"))
    with pytest.raises(ValueError):
        decode_json_frame(msg(aiohttp.WSMsgType.BINARY, b"\xff\xfe"))


def test_bad_timeout_and_watchdog_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        ConnectionManager(timeout=0)
    cm = ConnectionManager()
    with pytest.raises(ConfigError):
        ManagedStream(cm, "ws://127.0.0.1:1/ws", HelloProtocol(), Inbox(), watchdog=0)


def test_stream_closed_error_carries_code_and_reason() -> None:
    exc = StreamClosedError("hello", 406, "connection limit exceeded")
    assert (exc.stream, exc.code, exc.reason) == ("hello", 406, "connection limit exceeded")
    assert str(exc) == "stream hello: connection limit exceeded (code 406)"
    assert str(StreamClosedError("hello", None, "dropped")) == "stream hello: dropped"


# ==============================================================================================
# request()
# ==============================================================================================


def test_request_success_returns_status_headers_and_data() -> None:
    async def main() -> None:
        replies = {"/v2/orders": [Reply(201, {"id": "o-1", "qty": "3"}, {"X-Venue-Trace": "r9"})]}
        async with venue(http=replies) as v, manager(headers=CREDENTIALS) as cm:
            resp = await cm.request(
                "POST",
                v.http_url("/v2/orders"),
                params={"nested": "false"},
                json_body={"symbol": "AAA", "qty": 3},
            )
            assert isinstance(resp, HttpResponse)
            assert resp.status == 201
            assert resp.data == {"id": "o-1", "qty": "3"}
            assert resp.headers["X-Venue-Trace"] == "r9"
            assert cm.requests == 1
            (seen,) = v.requests
            assert (seen.method, seen.path) == ("POST", "/v2/orders")
            assert seen.query == {"nested": "false"}
            assert json.loads(seen.body) == {"symbol": "AAA", "qty": 3}

    run(main())


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"code": 40010001, "message": "qty must be > 0"}),
        (401, {"message": "unauthorized"}),
        (403, {"code": 40310000, "message": "insufficient buying power"}),
        (404, {"code": 40410000, "message": "order not found"}),
        (422, {"code": 40010001, "message": "client_order_id must be unique"}),
    ],
)
def test_request_returns_4xx_json_errors(status: int, body: dict[str, Any]) -> None:
    async def main() -> None:
        async with venue(http={"/v2/x": [Reply(status, body)]}) as v, manager() as cm:
            resp = await cm.request("GET", v.http_url("/v2/x"))
            assert (resp.status, resp.data) == (status, body)

    run(main())


def test_response_headers_are_case_insensitive() -> None:
    async def main() -> None:
        headers = {"X-Ratelimit-Remaining": "199", "X-Request-Id": "r9"}
        async with venue(http={"/v2/x": [Reply(200, {}, headers)]}) as v, manager() as cm:
            resp = await cm.request("GET", v.http_url("/v2/x"))
            assert resp.headers.get("X-Ratelimit-Remaining") == "199"
            assert resp.headers.get("x-request-id") == "r9"

    run(main())


def test_request_empty_body_is_none() -> None:
    async def main() -> None:
        async with venue(http={"/v2/orders/1": [Reply(204)]}) as v, manager() as cm:
            resp = await cm.request("DELETE", v.http_url("/v2/orders/1"))
            assert (resp.status, resp.data) == (204, None)

    run(main())


@pytest.mark.parametrize("status", [200, 400, 502])
def test_request_tolerates_a_non_json_body(status: int) -> None:
    page = "<html><body>" + "gateway trouble " * 30 + "</body></html>"

    async def main() -> None:
        async with venue(http={"/v2/x": [Reply(status, page)]}) as v, manager() as cm:
            if status >= 500:
                with pytest.raises(BrokerConnectionError, match=f"venue error {status}"):
                    await cm.request("GET", v.http_url("/v2/x"))
                return
            resp = await cm.request("GET", v.http_url("/v2/x"))
            assert resp.status == status
            assert resp.data == {"message": page[:200]}

    run(main())


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_request_5xx_is_a_connection_error(status: int) -> None:
    async def main() -> None:
        replies = {"/v2/account": [Reply(status, {"message": "internal"})]}
        async with venue(http=replies) as v, manager() as cm:
            with pytest.raises(BrokerConnectionError) as info:
                await cm.request("GET", v.http_url("/v2/account"))
            assert str(info.value) == f"GET /v2/account: venue error {status}"
            assert len(v.requests) == 1  # a 5xx is not retried (the outcome is unknown)

    run(main())


def test_request_timeout_names_the_path_but_not_query_or_headers() -> None:
    async def main() -> None:
        replies = {"/v2/orders": [Reply(hang=True)]}
        async with venue(http=replies) as v, manager(headers=CREDENTIALS, timeout=0.2) as cm:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(BrokerConnectionError) as info:
                await cm.request(
                    "GET", v.http_url("/v2/orders"), params={"client_order_id": "QSECRET-77"}
                )
            assert loop.time() - t0 < 2.0
            text = str(info.value)
            assert text == "GET /v2/orders: no answer within 0.2 s"
            assert info.value.__cause__ is None
            assert info.value.__suppress_context__
            assert len(v.requests) == 1
            assert v.requests[0].query == {"client_order_id": "QSECRET-77"}

    run(main())


def test_request_timeout_message_omits_a_query_written_into_the_url() -> None:
    async def main() -> None:
        replies = {"/v2/orders": [Reply(hang=True)]}
        async with venue(http=replies) as v, manager(timeout=0.2) as cm:
            with pytest.raises(BrokerConnectionError) as info:
                await cm.request("GET", v.http_url("/v2/orders") + "?signature=QSECRET-77")
            assert "/v2/orders" in str(info.value)
            assert "QSECRET-77" not in str(info.value)
            assert "?" not in str(info.value)

    run(main())


def test_request_connection_refused_is_a_connection_error() -> None:
    async def main() -> None:
        async with manager(headers=CREDENTIALS) as cm:
            url = f"http://127.0.0.1:{free_port()}/v2/account"
            with pytest.raises(BrokerConnectionError) as info:
                await cm.request("GET", url)
            assert str(info.value).startswith("GET /v2/account: connection failed (")
            assert info.value.__cause__ is None

    run(main())


def test_request_dropped_connection_is_a_connection_error() -> None:
    async def main() -> None:
        async with venue(http={"/v2/orders": [Reply(drop=True)]}) as v, manager() as cm:
            with pytest.raises(BrokerConnectionError, match=r"POST /v2/orders: connection failed"):
                await cm.request("POST", v.http_url("/v2/orders"), json_body={"qty": 1})
            assert len(v.requests) == 1  # not resent

    run(main())


def ratelimit_headers(clock: FakeClock, remaining: int, reset_in: float) -> dict[str, str]:
    return {
        "X-Ratelimit-Limit": "200",
        "X-Ratelimit-Remaining": str(remaining),
        "X-Ratelimit-Reset": str(int(clock.wall() + reset_in)),
    }


def test_request_429_waits_for_the_limiter_and_retries() -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        200, 60.0, clock=clock.monotonic, wall=clock.wall, sleep=clock.sleep, jitter_429=0.0
    )
    sleep = FakeSleep()

    async def main() -> None:
        replies = {
            "/v2/orders": [
                Reply(429, {"message": "too many requests"}, ratelimit_headers(clock, 0, 5)),
                Reply(200, {"id": "o-1"}, ratelimit_headers(clock, 198, 60)),
            ]
        }
        async with (
            venue(http=replies, clock=clock.monotonic) as v,
            manager(limiter=limiter, sleep=sleep, headers=CREDENTIALS) as cm,
        ):
            resp = await cm.request("POST", v.http_url("/v2/orders"), json_body={"qty": 1})
            assert (resp.status, resp.data) == (200, {"id": "o-1"})
            assert [r.method for r in v.requests] == ["POST", "POST"]
            # The retry went out only once the limiter's clock reached the reset.
            assert v.requests[0].at == 100.0
            assert v.requests[1].at == pytest.approx(105.0)
            assert clock.sleeps == [pytest.approx(5.0)]
            assert (limiter.throttled, limiter.requests) == (1, 2)
            assert sleep.calls == []  # the limiter did the waiting
            assert cm.requests == 2

    run(main())


def test_request_429_without_a_limiter_sleeps_and_retries() -> None:
    sleep = FakeSleep()

    async def main() -> None:
        replies = {"/v2/clock": [Reply(429, {"message": "slow down"}), Reply(200, {"ok": 1})]}
        async with venue(http=replies) as v, manager(sleep=sleep) as cm:
            resp = await cm.request("GET", v.http_url("/v2/clock"))
            assert (resp.status, resp.data) == (200, {"ok": 1})
            assert len(v.requests) == 2
            assert sleep.calls == [1.0]

    run(main())


def test_request_429_forever_sends_the_request_retry_429_plus_one_times() -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        200, 60.0, clock=clock.monotonic, wall=clock.wall, sleep=clock.sleep, jitter_429=0.0
    )

    async def main() -> None:
        replies = {"/v2/orders": [Reply(429, {"message": "too many"}, {"Retry-After": "2"})]}
        async with venue(http=replies) as v, manager(limiter=limiter, retry_429=2) as cm:
            with contextlib.suppress(BrokerConnectionError):
                await cm.request("GET", v.http_url("/v2/orders"))
            assert len(v.requests) == 3  # the first try and retry_429 retries
            assert limiter.throttled == 2
            assert clock.sleeps == [pytest.approx(2.0), pytest.approx(2.0)]

    run(main())


def test_request_429_forever_raises_connection_error() -> None:
    sleep = FakeSleep()

    async def main() -> None:
        replies = {"/v2/orders": [Reply(429, {"message": "too many"})]}
        async with venue(http=replies) as v, manager(sleep=sleep, retry_429=2) as cm:
            try:
                with pytest.raises(BrokerConnectionError, match="429"):
                    await cm.request("GET", v.http_url("/v2/orders"))
            finally:
                assert len(v.requests) == 3

    run(main())


def test_credentials_go_in_every_request_and_never_in_errors_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sleep = FakeSleep()
    errors: list[BaseException] = []

    async def main() -> None:
        replies = {
            "/v2/ok": [Reply(200, {"ok": True})],
            "/v2/bad": [Reply(422, {"code": 40010001, "message": "bad qty"})],
            "/v2/limited": [Reply(429, {"message": "too many"}), Reply(200, {})],
            "/v2/down": [Reply(503, "Service Unavailable")],
            "/v2/slow": [Reply(hang=True)],
            "/v2/drop": [Reply(drop=True)],
        }
        async with (
            venue(http=replies) as v,
            manager(headers=CREDENTIALS, timeout=0.2, sleep=sleep) as cm,
        ):
            for path in replies:
                try:
                    await cm.request("POST", v.http_url(path), json_body={"qty": 1})
                except BrokerConnectionError as exc:
                    errors.append(exc)
            assert len(v.requests) == 7
            for seen in v.requests:
                assert seen.headers.get("APCA-API-KEY-ID") == KEY, seen.path
                assert seen.headers.get("APCA-API-SECRET-KEY") == SECRET, seen.path
        with contextlib.suppress(BrokerConnectionError):
            async with manager(headers=CREDENTIALS) as cm:
                await cm.request("GET", f"http://127.0.0.1:{free_port()}/v2/ok")

    run(main())
    assert len(errors) == 3  # 503, timeout, drop
    for exc in errors:
        for text in (str(exc), repr(exc), repr(exc.args)):
            assert KEY not in text and SECRET not in text
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "") + repr(record.args)
        assert KEY not in text and SECRET not in text, record


def test_session_is_created_once_and_reused() -> None:
    async def main() -> None:
        async with venue(http={"/v2/a": [Reply(200, {})]}) as v, manager() as cm:
            first = await cm.session()
            assert await cm.session() is first
            await cm.request("GET", v.http_url("/v2/a"))
            await cm.request("GET", v.http_url("/v2/a"))
            assert await cm.session() is first
            # One session, one pool: the second call reused the first call's connection.
            assert v.requests[0].peer == v.requests[1].peer
            assert not first.closed

    run(main())


# ==============================================================================================
# ManagedStream.start()
# ==============================================================================================


def test_start_completes_the_handshake_and_delivers_messages() -> None:
    sleep = FakeSleep()
    inbox = Inbox()

    async def main() -> None:
        async with venue(hello({"n": 1}, [{"n": 2}, {"n": 3}])) as v, manager(sleep=sleep) as cm:
            stream = cm.stream(v.url(), HelloProtocol("abc"), inbox)
            assert stream.state == "disconnected"
            await stream.start()
            assert stream.state == "connected"
            assert stream.last_message_at is not None
            assert stream.name == "hello"
            await until(lambda: len(inbox.items) == 3, "three messages")
            assert inbox.items == [{"n": 1}, {"n": 2}, {"n": 3}]
            assert stream.messages == 3
            assert v.received[0] == [{"hello": "abc"}]
            assert v.upgrade_headers[0]["X-Stream-Token"] == "abc"
            assert (stream.reconnects, stream.bad_messages, sleep.calls) == (0, 0, [])

    run(main())


@pytest.mark.parametrize(
    "failure",
    [refuse(500), refuse(503), refuse(429), Script((Recv(), Close(4001)))],
    ids=["upgrade-500", "upgrade-503", "upgrade-429", "handshake-close-4001"],
)
def test_start_retries_transient_failures_with_backoff(failure: Script) -> None:
    sleep = FakeSleep()
    inbox = Inbox()

    async def main() -> None:
        async with venue(failure, failure, hello({"n": 1})) as v, manager(sleep=sleep) as cm:
            backoff = seeded_backoff()
            stream = cm.stream(v.url(), HelloProtocol(), inbox, backoff=backoff, connect_attempts=3)
            await stream.start()
            assert stream.state == "connected"
            assert v.attempts["/ws"] == 3
            assert len(sleep.calls) == 2
            assert_backoff_delays(sleep.calls)
            assert backoff.attempts == 0  # reset once connected
            await until(lambda: inbox.items == [{"n": 1}], "the message")
            assert stream.reconnects == 0

    run(main())


@pytest.mark.parametrize(
    "failure",
    [refuse(500), Script((Recv(), Close(1011)))],
    ids=["upgrade-500", "handshake-close-1011"],
)
def test_start_gives_up_after_connect_attempts(failure: Script) -> None:
    sleep = FakeSleep()

    async def main() -> None:
        async with venue(default=failure) as v, manager(sleep=sleep) as cm:
            stream = cm.stream(v.url(), HelloProtocol(), Inbox(), connect_attempts=4)
            with pytest.raises(StreamClosedError) as info:
                await stream.start()
            assert info.value.code == (500 if failure.status else 1011)
            assert stream.state == "failed"
            assert v.attempts["/ws"] == 4
            assert len(sleep.calls) == 3
            assert_backoff_delays(sleep.calls)
            assert stream_tasks() == []

    run(main())


def test_start_connection_refused_is_retried_then_raised() -> None:
    sleep = FakeSleep()

    async def main() -> None:
        async with manager(sleep=sleep) as cm:
            url = f"ws://127.0.0.1:{free_port()}/ws"
            stream = cm.stream(url, HelloProtocol(), Inbox(), connect_attempts=3)
            with pytest.raises(BrokerConnectionError, match="stream hello: cannot connect"):
                await stream.start()
            assert stream.state == "failed"
            assert len(sleep.calls) == 2
            assert_backoff_delays(sleep.calls)

    run(main())


@pytest.mark.parametrize(
    "failure",
    [refuse(401), refuse(402), refuse(409), hello_error(401), hello_error(402), hello_error(409)],
    ids=["upgrade-401", "upgrade-402", "upgrade-409", "reply-401", "reply-402", "reply-409"],
)
def test_start_fails_at_once_on_fatal_codes(failure: Script) -> None:
    sleep = FakeSleep()

    async def main() -> None:
        async with venue(failure, hello()) as v, manager(sleep=sleep) as cm:
            stream = cm.stream(v.url(), HelloProtocol(), Inbox(), connect_attempts=5)
            with pytest.raises(StreamClosedError) as info:
                await stream.start()
            code = failure.status or failure.steps[1].payload["error"]  # type: ignore[union-attr]
            assert info.value.code == code
            assert stream.state == "failed"
            assert v.attempts["/ws"] == 1
            assert sleep.calls == []
            assert v.open_now.get("/ws", 0) == 0  # the refused socket was closed
            assert stream_tasks() == []

    run(main())


def test_start_handshake_that_never_answers_times_out() -> None:
    sleep = FakeSleep()

    async def main() -> None:
        silent = Script((Recv(),))  # reads the hello, never answers
        async with venue(silent, silent) as v, manager(sleep=sleep) as cm:
            stream = cm.stream(
                v.url(), HelloProtocol(), Inbox(), connect_attempts=2, handshake_timeout=0.2
            )
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(BrokerConnectionError, match="handshake timed out"):
                await stream.start()
            assert 0.35 < loop.time() - t0 < 3.0
            assert stream.state == "failed"
            assert v.attempts["/ws"] == 2
            assert len(sleep.calls) == 1
            assert v.max_open["/ws"] == 1  # the silent socket was closed before the retry
            await until(lambda: v.open_now["/ws"] == 0, "the venue sees the sockets closed")

    run(main())


# ==============================================================================================
# keep-alive
# ==============================================================================================


@pytest.mark.parametrize("code", [1000, 1001, 1011, 4001])
def test_venue_close_reconnects_and_calls_the_hook(code: int) -> None:
    sleep = FakeSleep()
    inbox = Inbox()

    async def main() -> None:
        scripts = (hello({"n": 1}, close=code), hello({"n": 2}))
        async with venue(*scripts) as v, manager(sleep=sleep) as cm:
            stream = cm.stream(v.url(), HelloProtocol(), inbox, on_reconnect=inbox.on_reconnect)
            await stream.start()
            await until(lambda: len(inbox.items) == 2, "the message after the reconnect")
            assert inbox.items == [{"n": 1}, {"n": 2}]
            assert (stream.reconnects, inbox.reconnected) == (1, 1)
            assert stream.state == "connected"
            assert v.attempts["/ws"] == 2
            assert v.received == [[{"hello": "tok"}], [{"hello": "tok"}]]  # handshake redone
            assert v.max_open["/ws"] == 1
            assert len(sleep.calls) == 1
            assert_backoff_delays(sleep.calls)

    run(main())


def test_reconnect_backs_off_exponentially_and_resets_after_success() -> None:
    sleep = FakeSleep()
    inbox = Inbox()

    async def main() -> None:
        scripts = (
            hello({"n": 1}, close=1001),
            refuse(500),
            Script((Recv(), Close(1011))),
            refuse(503),
            hello({"n": 2}, close=1001),
            hello({"n": 3}),
        )
        async with venue(*scripts) as v, manager(sleep=sleep) as cm:
            stream = cm.stream(
                v.url(),
                HelloProtocol(),
                inbox,
                on_reconnect=inbox.on_reconnect,
                backoff=seeded_backoff(3),
            )
            await stream.start()
            await until(lambda: len(inbox.items) == 3, "three messages over three sockets")
            assert inbox.items == [{"n": 1}, {"n": 2}, {"n": 3}]
            assert v.attempts["/ws"] == 6
            assert (stream.reconnects, inbox.reconnected) == (2, 2)  # failed tries don't count
            assert len(sleep.calls) == 5
            assert_backoff_delays(sleep.calls[:4])  # growing while the venue refuses
            assert sleep.calls[0] < sleep.calls[3]
            assert_backoff_delays(sleep.calls[4:])  # from the base again after a success
            assert v.max_open["/ws"] == 1

    run(main())


@pytest.mark.parametrize("failure", [refuse(406), hello_error(406)], ids=["upgrade", "reply"])
def test_406_on_reconnect_waits_for_the_old_socket(failure: Script) -> None:
    sleep = FakeSleep()
    inbox = Inbox()

    async def main() -> None:
        scripts = (hello({"n": 1}, close=1001), failure, hello({"n": 2}))
        async with venue(*scripts) as v, manager(sleep=sleep) as cm:
            stream = cm.stream(v.url(), HelloProtocol(), inbox, on_reconnect=inbox.on_reconnect)
            await stream.start()
            await until(lambda: len(inbox.items) == 2, "the message after the 406")
            assert v.attempts["/ws"] == 3
            assert len(sleep.calls) == 3
            backoff_1, long_wait, backoff_2 = sleep.calls
            assert long_wait == CONNECTION_LIMIT_WAIT == 90.0
            assert_backoff_delays([backoff_1, backoff_2])
            assert (stream.reconnects, inbox.reconnected) == (1, 1)
            assert v.max_open["/ws"] == 1

    run(main())


@pytest.mark.parametrize(
    "failure",
    [refuse(401), refuse(402), refuse(409), hello_error(401), hello_error(402), hello_error(409)],
    ids=["upgrade-401", "upgrade-402", "upgrade-409", "reply-401", "reply-402", "reply-409"],
)
def test_fatal_code_on_reconnect_stops_the_stream(
    failure: Script, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tradeloop.live")
    sleep = FakeSleep()
    inbox = Inbox()

    async def main() -> None:
        scripts = (hello({"n": 1}, close=1001), failure, hello({"n": 2}))
        async with venue(*scripts) as v, manager(sleep=sleep) as cm:
            stream = cm.stream(v.url(), HelloProtocol(), inbox, on_reconnect=inbox.on_reconnect)
            await stream.start()
            await until(lambda: stream.state == "failed", "the stream to fail")
            await asyncio.sleep(0.1)  # time for any (wrong) further attempt
            assert v.attempts["/ws"] == 2
            assert isinstance(stream.failure, StreamClosedError)
            code = failure.status or failure.steps[1].payload["error"]  # type: ignore[union-attr]
            assert stream.failure.code == code
            assert len(sleep.calls) == 1
            assert (stream.reconnects, inbox.reconnected) == (0, 0)
            assert inbox.items == [{"n": 1}]
            assert stream_tasks() == []
            assert v.open_now["/ws"] == 0

    run(main())
    assert any(
        r.levelno == logging.ERROR and "not retrying" in r.getMessage() for r in caplog.records
    )


def test_watchdog_reconnects_a_silent_stream_closing_the_old_socket_first() -> None:
    sleep = FakeSleep()
    inbox = Inbox()

    async def main() -> None:
        scripts = (hello({"n": 1}), hello({"n": 2}))  # the first falls silent after one message
        async with venue(*scripts) as v, manager(sleep=sleep) as cm:
            stream = cm.stream(
                v.url(), HelloProtocol(), inbox, on_reconnect=inbox.on_reconnect, watchdog=0.4
            )
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await stream.start()
            await until(lambda: len(inbox.items) == 2, "the message after the watchdog")
            assert loop.time() - t0 >= 0.35
            assert (stream.reconnects, inbox.reconnected) == (1, 1)
            assert v.attempts["/ws"] == 2
            # The silent socket is open at the venue until the client closes it: had the
            # client opened the new one first, the venue would have seen two at once.
            assert v.max_open["/ws"] == 1
            await stream.close()
            assert v.attempts["/ws"] == 2

    run(main())


def test_watchdog_does_not_fire_while_messages_keep_coming() -> None:
    inbox = Inbox()

    async def main() -> None:
        ticks = [item for n in range(6) for item in (Pause(0.12), {"n": n})]
        async with venue(hello(*ticks)) as v, manager(sleep=FakeSleep()) as cm:
            stream = cm.stream(v.url(), HelloProtocol(), inbox, watchdog=0.4)
            await stream.start()
            await until(lambda: len(inbox.items) == 6, "six spaced messages")
            assert stream.reconnects == 0
            assert v.attempts["/ws"] == 1

    run(main())


def test_rest_timeout_does_not_cut_a_long_lived_stream() -> None:
    inbox = Inbox()

    async def main() -> None:
        ticks = [item for n in range(5) for item in (Pause(0.15), {"n": n})]
        async with venue(hello(*ticks)) as v, manager(sleep=FakeSleep(), timeout=0.25) as cm:
            stream = cm.stream(v.url(), HelloProtocol(), inbox)
            await stream.start()
            await until(lambda: len(inbox.items) == 5, "five spaced messages")
            assert (stream.reconnects, v.attempts["/ws"]) == (0, 1)

    run(main())


def test_bad_frames_and_handler_errors_are_logged_counted_and_survived(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tradeloop.live")
    inbox = Inbox(fail_on={"boom": True})

    async def main() -> None:
        frames = (
            SendRaw("not json"),
            {"n": 1},
            SendBytes(b"\xff\xfe\x00"),
            SendBytes(b'{"n": 2}'),
            SendRaw("[1, 2"),
            {"boom": True},
            [{"n": 3}, {"n": 4}],
        )
        async with venue(hello(*frames)) as v, manager(sleep=FakeSleep()) as cm:
            stream = cm.stream(v.url(), HelloProtocol(), inbox)
            await stream.start()
            await until(lambda: len(inbox.items) == 4, "the good messages")
            assert inbox.items == [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]
            assert stream.bad_messages == 4  # three undecodable frames, one handler failure
            assert stream.messages == 5  # every decoded message, the failed one included
            assert (stream.state, stream.reconnects, v.attempts["/ws"]) == ("connected", 0, 1)

    run(main())
    undecodable = [r for r in caplog.records if "undecodable frame ignored" in r.getMessage()]
    assert len(undecodable) == 3
    assert all(r.levelno == logging.WARNING for r in undecodable)
    (handler,) = [r for r in caplog.records if "could not be handled" in r.getMessage()]
    assert handler.levelno == logging.ERROR
    assert handler.exc_info is not None and isinstance(handler.exc_info[1], RuntimeError)


def test_failing_reconnect_hook_is_logged_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tradeloop.live")
    inbox = Inbox()
    calls: list[int] = []

    async def hook() -> None:
        calls.append(1)
        raise RuntimeError("reconcile failed")

    async def main() -> None:
        scripts = (hello({"n": 1}, close=1001), hello({"n": 2}, close=1001), hello({"n": 3}))
        async with venue(*scripts) as v, manager(sleep=FakeSleep()) as cm:
            stream = cm.stream(v.url(), HelloProtocol(), inbox, on_reconnect=hook)
            await stream.start()
            await until(lambda: len(inbox.items) == 3, "messages after two reconnects")
            assert (stream.reconnects, len(calls), stream.state) == (2, 2, "connected")

    run(main())
    failed = [r for r in caplog.records if "reconnect hook failed" in r.getMessage()]
    assert len(failed) == 2


def test_garbled_handshake_reply_on_reconnect_is_retried() -> None:
    inbox = Inbox()

    async def main() -> None:
        garbled = Script((Recv(), SendRaw("<html>502 Bad Gateway</html>")))
        scripts = (hello({"n": 1}, close=1001), garbled, hello({"n": 2}))
        async with venue(*scripts) as v, manager(sleep=FakeSleep()) as cm:
            stream = cm.stream(v.url(), HelloProtocol(), inbox)
            await stream.start()
            await until(lambda: len(inbox.items) == 2, "the message after the retry", 1.5)
            assert v.attempts["/ws"] == 3
            assert stream.reconnects == 1

    run(main())


# ==============================================================================================
# close()
# ==============================================================================================


def test_stream_close_stops_everything_and_is_idempotent() -> None:
    inbox = Inbox()

    async def main() -> None:
        async with venue(hello({"n": 1})) as v, manager(sleep=FakeSleep()) as cm:
            stream = cm.stream(v.url(), HelloProtocol(), inbox, watchdog=0.2)
            await stream.start()
            await until(lambda: inbox.items == [{"n": 1}], "the message")
            assert len(stream_tasks()) == 1
            await stream.close()
            assert stream.state == "closed"
            assert stream_tasks() == []
            await until(lambda: v.open_now["/ws"] == 0, "the venue sees the socket closed")
            await stream.close()
            assert stream.state == "closed"
            await asyncio.sleep(0.4)  # past the watchdog: nothing wakes up again
            assert v.attempts["/ws"] == 1
            assert stream.reconnects == 0

    run(main())


def test_close_while_reconnecting_stops_the_retries() -> None:
    sleep = FakeSleep()

    async def main() -> None:
        async with venue(hello(close=1001), default=refuse(500)) as v, manager(sleep=sleep) as cm:
            stream = cm.stream(v.url(), HelloProtocol(), Inbox())
            await stream.start()
            await until(lambda: v.attempts["/ws"] >= 4, "a few refused reconnects")
            assert stream.state in ("reconnecting", "connecting")
            await stream.close()
            assert stream.state == "closed"
            assert stream_tasks() == []
            await asyncio.sleep(0.05)  # an upgrade already on the wire may still land
            attempts = v.attempts["/ws"]
            await asyncio.sleep(0.2)
            assert v.attempts["/ws"] == attempts
            assert stream.reconnects == 0

    run(main())


def test_manager_close_closes_streams_and_session() -> None:
    async def main() -> None:
        before = asyncio.all_tasks()
        paths = {"/ws/a": [hello({"a": 1})], "/ws/b": [hello({"b": 1})]}
        async with venue(paths=paths) as v:
            cm = ConnectionManager(sleep=FakeSleep())
            a_in, b_in = Inbox(), Inbox()
            a = cm.stream(v.url("/ws/a"), HelloProtocol(), a_in)
            b = cm.stream(v.url("/ws/b"), HelloProtocol(), b_in)
            await a.start()
            await b.start()
            await until(lambda: len(a_in.items) == len(b_in.items) == 1, "both streams")
            session = await cm.session()
            assert (v.open_now["/ws/a"], v.open_now["/ws/b"]) == (1, 1)
            await cm.close()
            assert (a.state, b.state) == ("closed", "closed")
            assert session.closed
            assert stream_tasks() == []
            await until(lambda: not any(v.open_now.values()), "the venue sees both closed")
            await cm.close()  # idempotent
            fresh = await cm.session()  # a closed manager can open a new session
            assert fresh is not session and not fresh.closed
            await cm.close()
            assert fresh.closed
            assert v.attempts == {"/ws/a": 1, "/ws/b": 1}
        leftovers = [t for t in asyncio.all_tasks() - before if not t.done()]
        assert leftovers == []

    run(main())
