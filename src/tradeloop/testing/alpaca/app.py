"""The loopback Alpaca server on aiohttp.web: REST routes, the two WebSocket streams, a test API.

Routes (everything the venue answers comes from :class:`~.exchange.AlpacaVenue`):

``/v2/...``
    Alpaca's Trading API subset: orders, positions, account, clock, assets and FILL
    activities. Every call needs a configured key pair in ``APCA-API-KEY-ID`` /
    ``APCA-API-SECRET-KEY`` (else 401) and counts against that key's rolling-window rate limit,
    reported in ``X-Ratelimit-Limit/Remaining/Reset`` on every answer (429 past the limit).
    Errors, including unknown routes (404) and wrong methods (405), are ``{"code", "message"}``.
``/stream``
    ``trade_updates``: authenticate, listen, then one message per order event. JSON in binary
    frames, as Alpaca's paper venue sends it (text frames if ``text_frames``). Nothing is sent
    before the authorization reply.
``/v2/iex``, ``/v2/sip``
    Market data: ``connected``, then auth, then subscriptions; bars as the replay plays them.
    msgpack in binary frames when the upgrade request says ``Content-Type:
    application/msgpack`` (as alpaca-py does), JSON text otherwise.
``/_tradeloop/step``, ``/_tradeloop/state``
    The test API, without auth and for loopback clients only: advance the replay, read the
    venue's state. Hooks may add routes under ``/_tradeloop/`` (the fault injector's
    ``/_tradeloop/faults``), served on the same terms.

Each key may hold one connection per stream endpoint; a second one is told ``406 connection
limit exceeded`` and closed. Secrets are compared in constant time and never logged or echoed.

:class:`ServerHooks` marks where a request or a stream message could be altered on its way
(:mod:`tradeloop.testing.alpaca.faults` builds on it); the default alters nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler

from tradeloop.errors import ConfigError
from tradeloop.execution.asynchronous.brokers.alpaca.mapping import bar_to_json
from tradeloop.execution.types import Bar
from tradeloop.testing.alpaca.exchange import (
    ERR_FORBIDDEN,
    ERR_INTERNAL,
    ERR_INVALID,
    ERR_MALFORMED,
    ERR_METHOD,
    ERR_NOT_FOUND,
    ERR_RATE_LIMIT,
    ERR_UNAUTHORIZED,
    AlpacaError,
    AlpacaVenue,
    RateLimitWindow,
)

__all__ = [
    "DATA_STREAM_PATHS",
    "DEFAULT_KEY_ID",
    "DEFAULT_SECRET",
    "DROP_CONNECTION",
    "TEST_API_PREFIX",
    "TRADE_STREAM_PATH",
    "AlpacaApp",
    "KeyRing",
    "RawFrame",
    "ServerHooks",
    "StreamConnection",
    "StreamHub",
]

JSON = dict[str, Any]

log = logging.getLogger("tradeloop.testing.alpaca")

DEFAULT_KEY_ID = "tradeloop-test-key"
DEFAULT_SECRET = "tradeloop-test-secret"  # public: it guards a loopback test server only
TRADE_STREAM_PATH = "/stream"
DATA_STREAM_PATHS = ("/v2/iex", "/v2/sip")
DATA_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
TEST_API_PREFIX = "/_tradeloop/"

_WS_CLOSE_TIMEOUT = 3.0  # how long a closing socket waits for the client's close frame


@dataclass(frozen=True, slots=True)
class RawFrame:
    """A stream frame sent exactly as given (``bytes``: a binary frame, ``str``: a text frame),
    bypassing the connection's encoding: how a hook sends something that is not valid JSON."""

    data: bytes | str


class _DropConnection:
    __slots__ = ()

    def __repr__(self) -> str:
        return "DROP_CONNECTION"


DROP_CONNECTION: Final = _DropConnection()
"""Returned among a hook's frames: close the stream's TCP connection at that point, with no
WebSocket close frame (what a network failure looks like); frames still queued are lost."""


class ServerHooks:
    """Points where traffic may be altered on its way; this default alters nothing.

    A fault injector (:class:`~tradeloop.testing.alpaca.faults.FaultInjector`) subclasses it and
    is passed to the server as ``hooks``. Every method runs on the server's event loop. The
    venue's own state is never a hook's to change: hooks see requests, responses and stream
    messages only.
    """

    def bind(self, app: AlpacaApp) -> None:
        """Called once by the :class:`AlpacaApp` these hooks serve, before it serves anything."""

    def routes(self) -> list[web.RouteDef]:
        """Extra routes, each under ``/_tradeloop/`` (served to loopback clients only, without
        auth, like the rest of the test API)."""
        return []

    async def close(self) -> None:
        """Called when the server shuts down: release whatever the hooks hold back."""

    async def on_request(self, request: web.Request) -> web.StreamResponse | None:
        """Called for every REST request before it is authenticated. A response returned here
        is sent instead of the route's (no rate-limit accounting)."""
        return None

    async def on_authorized(self, request: web.Request, key_id: str) -> web.StreamResponse | None:
        """Called for every authenticated REST request (``/v2/...``) before it counts against
        ``key_id``'s rate limit. A response returned here is sent instead of the route's (no
        rate-limit accounting, the route does not run)."""
        return None

    async def on_response(
        self, request: web.Request, key_id: str, response: web.StreamResponse
    ) -> web.StreamResponse:
        """Called with the route's answer to an authenticated REST request, after the route ran
        (the venue has acted on it). Returns the response to send (this one or another); it may
        take its time, or close ``request.transport`` to drop the connection."""
        return response

    def admit_stream(self, conn: StreamConnection, endpoint: str, key_id: str) -> bool:
        """Called when ``key_id`` authenticated on a stream ``endpoint`` that it holds no
        connection to yet; ``False`` refuses it as Alpaca refuses a second connection (406
        connection limit exceeded, then close)."""
        return True

    def on_stream_message(self, stream: str, message: Any) -> Any:
        """Called with every outgoing stream message before it is encoded (``stream``:
        ``"trade_updates"`` or ``"data"``). Returns the message to send (this one or another),
        or ``None`` to drop it."""
        return message

    def on_stream_send(self, conn: StreamConnection, message: Any) -> Sequence[Any]:
        """The frames to send on ``conn`` for one outgoing ``message``, in order: JSON-ready
        messages (encoded as the connection encodes), :class:`RawFrame` s, and
        :data:`DROP_CONNECTION`. The default is :meth:`on_stream_message`'s answer, if any."""
        out = self.on_stream_message(conn.stream, message)
        return [] if out is None else [out]

    def on_stream_flush(self, conn: StreamConnection) -> Sequence[Any]:
        """The frames held back on ``conn`` that are due now: called when the timer of
        :meth:`StreamConnection.flush_later` fires, and before the connection closes."""
        return []


class KeyRing:
    """The API key pairs the server accepts (key id -> secret).

    Secrets are compared in constant time and appear in no repr, log or message.
    """

    __slots__ = ("_secrets",)

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._secrets = {str(k): str(v).encode() for k, v in keys.items()}

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._secrets)

    def check(self, key_id: object, secret: object) -> str | None:
        """The key id if the pair is valid, else ``None``."""
        if not isinstance(key_id, str) or not isinstance(secret, str):
            return None
        expected = self._secrets.get(key_id)
        if expected is None or not hmac.compare_digest(expected, secret.encode()):
            return None
        return key_id

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={list(self._secrets)!r})"


# ------------------------------------------------------------------------------ streams


def _msgpack() -> Any:
    """The msgpack module, imported on first use: only msgpack clients need it."""
    import msgpack  # type: ignore[import-untyped]

    return msgpack


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: bytes) -> None:
        self.code = code
        self.reason = reason


_FLUSH: Final = object()  # queued by StreamConnection.flush_later's timer


class StreamConnection:
    """One stream client: an ordered outbox that a writer task drains into the socket, so that
    publishing is a plain synchronous call and every client gets messages in venue order.

    The writer passes each message through :meth:`ServerHooks.on_stream_send`; ``extra`` is
    room for the hooks' own per-connection state.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        stream: str,
        *,
        binary: bool,
        use_msgpack: bool,
        hooks: ServerHooks,
        max_queue: int,
        transport: asyncio.BaseTransport | None = None,
    ) -> None:
        self.ws = ws
        self.stream = stream
        self.binary = binary
        self.use_msgpack = use_msgpack
        self.hooks = hooks
        self.max_queue = max_queue
        self.transport = transport
        self.key_id: str | None = None
        self.listening = False  # trade_updates
        self.channels: dict[str, set[str]] = {c: set() for c in DATA_CHANNELS}  # market data
        self.extra: dict[str, Any] = {}
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._closing = False
        self._flush_timer: asyncio.TimerHandle | None = None
        self._writer = asyncio.create_task(self._write())

    @property
    def closing(self) -> bool:
        """Whether the connection is closing (or was dropped): it takes no more messages."""
        return self._closing

    def send(self, message: Any) -> None:
        """Queue ``message`` (JSON-ready; a msgpack client's may hold msgpack values)."""
        if self._closing:
            return
        if self._queue.qsize() >= self.max_queue:
            log.warning("%s client %s is too slow: closing it", self.stream, self.key_id)
            self.close_soon(1008, b"slow client")
            return
        self._queue.put_nowait(message)

    def flush_later(self, delay: float) -> None:
        """Have :meth:`ServerHooks.on_stream_flush` called after ``delay`` seconds, in turn
        with the queued messages (a later call replaces the pending timer)."""
        self.cancel_flush()
        if not self._closing:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(delay, self._queue.put_nowait, _FLUSH)

    def cancel_flush(self) -> None:
        """Cancel the timer of :meth:`flush_later`, if pending."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None

    def close_soon(self, code: int = 1000, reason: bytes = b"") -> None:
        """Close the socket once the messages queued before this call are sent."""
        if not self._closing:
            self._closing = True
            self._queue.put_nowait(_Close(code, reason))

    async def close(self, code: int = 1000, reason: bytes = b"") -> None:
        """Close (after the queued messages) and wait for the writer, at most a few seconds."""
        self.close_soon(code, reason)
        try:
            await asyncio.wait_for(asyncio.shield(self._writer), _WS_CLOSE_TIMEOUT + 1.0)
        except TimeoutError:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)

    def encode(self, message: Any) -> bytes | str:
        """``message`` as this connection sends it: msgpack bytes, JSON bytes or JSON text."""
        if self.use_msgpack:
            return bytes(_msgpack().packb(message, use_bin_type=True))
        text = json.dumps(message, separators=(",", ":"))
        return text.encode() if self.binary else text

    async def _write(self) -> None:
        hooks = self.hooks
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, _Close):
                    if await self._send_all(hooks.on_stream_flush(self)):
                        await self.ws.close(code=item.code, message=item.reason)
                    return
                frames = (
                    hooks.on_stream_flush(self)
                    if item is _FLUSH
                    else hooks.on_stream_send(self, item)
                )
                if not await self._send_all(frames):
                    return
        except (ConnectionError, RuntimeError) as exc:  # the client went away
            log.debug("%s stream: client gone (%s)", self.stream, type(exc).__name__)
        finally:
            self.cancel_flush()

    async def _send_all(self, frames: Sequence[Any]) -> bool:
        """Send ``frames``; ``False`` once one of them dropped the connection."""
        ws = self.ws
        for frame in frames:
            if frame is DROP_CONNECTION:
                self._drop()
                return False
            data = frame.data if isinstance(frame, RawFrame) else self.encode(frame)
            if isinstance(data, bytes):
                await ws.send_bytes(data)
            else:
                await ws.send_str(data)
        return True

    def _drop(self) -> None:
        """Close the TCP connection now, without a close frame (what was sent still goes out)."""
        self._closing = True
        self.cancel_flush()
        log.debug("%s stream of %s: dropping the connection", self.stream, self.key_id)
        if self.transport is not None:
            self.transport.close()


class StreamHub:
    """The open stream connections: who may connect (one connection per key and endpoint) and
    who gets which message."""

    def __init__(self) -> None:
        self.connections: set[StreamConnection] = set()
        self._claims: dict[tuple[str, str], StreamConnection] = {}
        self.bars_wanted = asyncio.Event()  # set once a client subscribed to some bars

    def track(self, conn: StreamConnection) -> None:
        self.connections.add(conn)

    def holds(self, endpoint: str, key_id: str) -> bool:
        """Whether ``key_id`` already holds a connection to ``endpoint``."""
        return (endpoint, key_id) in self._claims

    def claim(self, endpoint: str, key_id: str, conn: StreamConnection) -> bool:
        """Register ``conn`` as ``key_id``'s connection to ``endpoint``; ``False`` if the key
        already has one there."""
        if (endpoint, key_id) in self._claims:
            return False
        self._claims[endpoint, key_id] = conn
        conn.key_id = key_id
        return True

    def release(self, conn: StreamConnection) -> None:
        self.connections.discard(conn)
        for slot, held in list(self._claims.items()):
            if held is conn:
                del self._claims[slot]

    def publish_trade(self, data: JSON) -> None:
        """One trade_updates event to every client listening to ``trade_updates``."""
        message = {"stream": "trade_updates", "data": data}
        for conn in self._claims.values():
            if conn.listening:
                conn.send(message)

    def publish_bar(self, bar: Bar) -> None:
        """One bar to every market-data client subscribed to its symbol (or to ``*``)."""
        as_json: JSON | None = None
        as_msgpack: JSON | None = None
        for conn in self._claims.values():
            bars = conn.channels["bars"]
            if conn.stream != "data" or not (bar.symbol in bars or "*" in bars):
                continue
            if as_json is None:
                as_json = bar_to_json(bar)
            if conn.use_msgpack:
                if as_msgpack is None:
                    stamp = _msgpack().Timestamp.from_unix_nano(bar.ts)
                    as_msgpack = {**as_json, "t": stamp}
                conn.send([as_msgpack])
            else:
                conn.send([as_json])

    async def close_all(self) -> None:
        """Close every connection (code 1001, going away)."""
        await asyncio.gather(
            *(c.close(1001, b"server shutdown") for c in list(self.connections)),
            return_exceptions=True,
        )

    def describe(self) -> list[JSON]:
        """The authenticated connections, for the state API (key ids, never secrets)."""
        out: list[JSON] = []
        for (endpoint, key_id), conn in self._claims.items():
            entry: JSON = {"endpoint": endpoint, "key_id": key_id}
            if conn.stream == "trade_updates":
                entry["streams"] = ["trade_updates"] if conn.listening else []
            else:
                entry["encoding"] = "msgpack" if conn.use_msgpack else "json"
                entry.update({c: sorted(s) for c, s in conn.channels.items()})
            out.append(entry)
        return out


class _Decoder:
    """Client messages of one socket: JSON (text or binary frames) or a msgpack byte stream,
    whose values may be split across frames."""

    def __init__(self, use_msgpack: bool) -> None:
        self.use_msgpack = use_msgpack
        self._unpacker: Any = None

    def feed(self, msg_type: WSMsgType, data: Any) -> list[Any]:
        """The complete messages received so far; raises ValueError on a malformed one."""
        if msg_type is WSMsgType.TEXT or not self.use_msgpack:
            return [json.loads(data)]
        if self._unpacker is None:
            self._unpacker = _msgpack().Unpacker(raw=False, max_buffer_size=1 << 20)
        try:
            self._unpacker.feed(data)
            return list(self._unpacker)
        except Exception as exc:
            self._unpacker = None  # start over with the next frame
            raise ValueError(f"malformed msgpack: {type(exc).__name__}") from None


def _data_error(code: int, msg: str) -> list[JSON]:
    return [{"T": "error", "code": code, "msg": msg}]


def _trade_error(code: int, message: str) -> JSON:
    return {"stream": "error", "data": {"code": code, "message": message}}


def _authorization(status: str, action: str = "authenticate") -> JSON:
    return {"stream": "authorization", "data": {"status": status, "action": action}}


# ------------------------------------------------------------------------------ the app


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def _error(exc: AlpacaError, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(exc.body(), status=exc.status, headers=headers)


async def _json_body(request: web.Request) -> Any:
    text = await request.text()
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except ValueError:
        raise AlpacaError(400, ERR_MALFORMED, "request body format is invalid") from None


class AlpacaApp:
    """The aiohttp application of the loopback server, around one :class:`AlpacaVenue`.

    It sets the venue's ``on_event`` to publish on the trade stream. ``step`` (advance the
    replay by N bars, answering JSON) and ``state`` (JSON) serve the test API; the server
    provides them. ``clock`` gives the wall time for rate limiting.
    """

    def __init__(
        self,
        venue: AlpacaVenue,
        *,
        keys: KeyRing,
        limiter: RateLimitWindow | None = None,
        text_frames: bool = False,
        step: Callable[[int], Awaitable[JSON]] | None = None,
        state: Callable[[], JSON] | None = None,
        hooks: ServerHooks | None = None,
        auth_timeout: float = 10.0,
        max_queue: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.venue = venue
        self.keys = keys
        self.limiter = limiter
        self.text_frames = text_frames
        self.hooks = hooks if hooks is not None else ServerHooks()
        self.auth_timeout = auth_timeout
        self.max_queue = max_queue
        self.clock = clock
        self.hub = StreamHub()
        venue.on_event = self.hub.publish_trade
        self._step = step
        self._state = state
        self.hooks.bind(self)
        self.app = web.Application(middlewares=[self._middleware])
        self.app.add_routes(self._routes())
        extra = self.hooks.routes()
        for route in extra:
            if not route.path.startswith(TEST_API_PREFIX):
                raise ConfigError("hooks.routes", route.path, f"must be under {TEST_API_PREFIX}")
        self.app.add_routes(extra)
        self.app.on_shutdown.append(self._on_shutdown)

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.hooks.close()

    def _routes(self) -> list[web.RouteDef]:
        v = "/v2"
        return [
            web.post(f"{v}/orders", self._create_order),
            web.get(f"{v}/orders", self._list_orders),
            web.delete(f"{v}/orders", self._cancel_all),
            web.get(f"{v}/orders:by_client_order_id", self._order_by_client_id),
            web.get(f"{v}/orders/{{order_id}}", self._get_order),
            web.patch(f"{v}/orders/{{order_id}}", self._replace_order),
            web.delete(f"{v}/orders/{{order_id}}", self._cancel_order),
            web.get(f"{v}/positions", self._positions),
            web.delete(f"{v}/positions", self._close_all),
            web.get(f"{v}/positions/{{symbol}}", self._position),
            web.delete(f"{v}/positions/{{symbol}}", self._close_position),
            web.get(f"{v}/account", self._account),
            web.get(f"{v}/clock", self._clock),
            web.get(f"{v}/assets", self._assets),
            web.get(f"{v}/assets/{{symbol}}", self._asset),
            web.get(f"{v}/account/activities", self._activities),
            web.get(f"{v}/account/activities/{{activity_type}}", self._activities),
            web.get(TRADE_STREAM_PATH, self._trade_stream),
            *(web.get(path, self._data_stream) for path in DATA_STREAM_PATHS),
            web.post(f"{TEST_API_PREFIX}step", self._test_step),
            web.get(f"{TEST_API_PREFIX}state", self._test_state),
        ]

    # -- middleware: auth, rate limit, error bodies ---------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith(TEST_API_PREFIX):
            if not _is_loopback(request.remote):
                message = "the test API serves loopback clients only"
                return _error(AlpacaError(403, ERR_FORBIDDEN, message))
            return await self._guard(request, handler)
        if path == TRADE_STREAM_PATH or path in DATA_STREAM_PATHS:
            return await self._guard(request, handler)  # streams authenticate in-band
        replaced = await self.hooks.on_request(request)
        if replaced is not None:
            return replaced
        key_id = self.keys.check(
            request.headers.get("APCA-API-KEY-ID"), request.headers.get("APCA-API-SECRET-KEY")
        )
        if key_id is None:
            return _error(AlpacaError(401, ERR_UNAUTHORIZED, "request is not authorized"))
        replaced = await self.hooks.on_authorized(request, key_id)
        if replaced is not None:
            return replaced
        rate = None if self.limiter is None else self.limiter.hit(key_id, self.clock())
        if rate is not None and not rate.allowed:
            return _error(AlpacaError(429, ERR_RATE_LIMIT, "rate limit exceeded"), rate.headers())
        response = await self._guard(request, handler)
        response = await self.hooks.on_response(request, key_id, response)
        if rate is not None:
            response.headers.update(rate.headers())
        return response

    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Run ``handler``; every failure becomes an Alpaca error body."""
        try:
            return await handler(request)
        except AlpacaError as exc:
            return _error(exc)
        except web.HTTPException as exc:
            if exc.status == 404:
                return _error(AlpacaError(404, ERR_NOT_FOUND, "endpoint not found"))
            if exc.status == 405:
                allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
                return _error(AlpacaError(405, ERR_METHOD, "method not allowed"), allow)
            return _error(AlpacaError(exc.status, exc.status * 100_000, exc.reason))
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return _error(AlpacaError(500, ERR_INTERNAL, "internal server error"))

    # -- REST ----------------------------------------------------------------------------------

    async def _create_order(self, request: web.Request) -> web.Response:
        return web.json_response(self.venue.submit(await _json_body(request)))

    async def _list_orders(self, request: web.Request) -> web.Response:
        return web.json_response(self.venue.list_orders(request.query))

    async def _order_by_client_id(self, request: web.Request) -> web.Response:
        coid = request.query.get("client_order_id")
        return web.json_response(self.venue.get_order_by_client_id(coid))

    async def _get_order(self, request: web.Request) -> web.Response:
        return web.json_response(self.venue.get_order(request.match_info["order_id"]))

    async def _replace_order(self, request: web.Request) -> web.Response:
        order_id = request.match_info["order_id"]
        return web.json_response(self.venue.replace(order_id, await _json_body(request)))

    async def _cancel_order(self, request: web.Request) -> web.Response:
        self.venue.cancel(request.match_info["order_id"])
        return web.Response(status=204)

    async def _cancel_all(self, request: web.Request) -> web.Response:
        return web.json_response(self.venue.cancel_all(), status=207)

    async def _positions(self, request: web.Request) -> web.Response:
        return web.json_response(self.venue.positions())

    async def _position(self, request: web.Request) -> web.Response:
        return web.json_response(self.venue.position(request.match_info["symbol"]))

    async def _close_position(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        return web.json_response(self.venue.close_position(symbol, request.query))

    async def _close_all(self, request: web.Request) -> web.Response:
        return web.json_response(self.venue.close_all(request.query), status=207)

    async def _account(self, request: web.Request) -> web.Response:
        return web.json_response(self.venue.account())

    async def _clock(self, request: web.Request) -> web.Response:
        return web.json_response(self.venue.clock())

    async def _assets(self, request: web.Request) -> web.Response:
        return web.json_response(self.venue.assets())

    async def _asset(self, request: web.Request) -> web.Response:
        return web.json_response(self.venue.asset(request.match_info["symbol"]))

    async def _activities(self, request: web.Request) -> web.Response:
        kind = request.match_info.get("activity_type")
        return web.json_response(self.venue.fill_activities(request.query, kind))

    # -- test API ------------------------------------------------------------------------------

    async def _test_step(self, request: web.Request) -> web.Response:
        raw = request.query.get("bars", "1")
        try:
            bars = int(raw)
        except ValueError:
            bars = 0
        if bars < 1:
            raise AlpacaError(422, ERR_INVALID, f"invalid bars {raw!r}: must be an integer >= 1")
        if self._step is None:
            raise AlpacaError(404, ERR_NOT_FOUND, "this server cannot step")
        return web.json_response(await self._step(bars))

    async def _test_state(self, request: web.Request) -> web.Response:
        state = self._state() if self._state is not None else self.venue.state()
        return web.json_response(state)

    # -- streams -------------------------------------------------------------------------------

    async def _open(
        self, request: web.Request, stream: str, *, binary: bool, use_msgpack: bool
    ) -> StreamConnection:
        ws = web.WebSocketResponse(timeout=_WS_CLOSE_TIMEOUT, max_msg_size=1 << 20)
        if not ws.can_prepare(request).ok:
            raise AlpacaError(400, ERR_MALFORMED, "this endpoint speaks WebSocket only")
        await ws.prepare(request)
        conn = StreamConnection(
            ws,
            stream,
            binary=binary,
            use_msgpack=use_msgpack,
            hooks=self.hooks,
            max_queue=self.max_queue,
            transport=request.transport,
        )
        self.hub.track(conn)
        return conn

    def _admit(self, conn: StreamConnection, endpoint: str, key_id: str) -> bool:
        """Claim ``key_id``'s one connection to ``endpoint`` for ``conn``, unless it holds one
        already or the hooks refuse it."""
        if self.hub.holds(endpoint, key_id) or not self.hooks.admit_stream(conn, endpoint, key_id):
            return False
        return self.hub.claim(endpoint, key_id, conn)

    async def _receive(
        self, conn: StreamConnection, timeout: float | None
    ) -> tuple[WSMsgType, Any]:
        """The next data frame's type and payload (``CLOSE`` when the socket ends)."""
        msg = await conn.ws.receive(timeout=timeout)
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            return msg.type, msg.data
        return WSMsgType.CLOSE, None

    async def _trade_stream(self, request: web.Request) -> web.StreamResponse:
        conn = await self._open(
            request, "trade_updates", binary=not self.text_frames, use_msgpack=False
        )
        try:
            await self._serve_trade(conn)
        except Exception:
            log.exception("trade_updates stream failed")
        finally:
            self.hub.release(conn)
            await conn.close()
        return conn.ws

    async def _serve_trade(self, conn: StreamConnection) -> None:
        decoder = _Decoder(use_msgpack=False)
        try:
            kind, data = await self._receive(conn, self.auth_timeout)
        except TimeoutError:
            conn.close_soon(1008, b"auth timeout")
            return
        if kind is WSMsgType.CLOSE:
            return
        try:
            first = decoder.feed(kind, data)[0]
        except ValueError:
            first = None
        if not isinstance(first, dict):
            first = {}
        action = first.get("action")
        raw = first.get("data")
        auth = raw if isinstance(raw, dict) else {}
        if action == "authenticate":
            key_id = self.keys.check(auth.get("key_id"), auth.get("secret_key"))
        elif action == "auth":  # the older form
            key_id = self.keys.check(first.get("key"), first.get("secret"))
        else:
            key_id = None
        if key_id is None:
            conn.send(_authorization("unauthorized"))
            conn.close_soon(1008, b"unauthorized")
            return
        if not self._admit(conn, TRADE_STREAM_PATH, key_id):
            conn.send(_trade_error(406, "connection limit exceeded"))
            conn.close_soon(1008, b"connection limit exceeded")
            return
        conn.send(_authorization("authorized"))
        while True:
            kind, data = await self._receive(conn, None)
            if kind is WSMsgType.CLOSE:
                return
            try:
                message = decoder.feed(kind, data)[0]
            except ValueError:
                message = None
            if not isinstance(message, dict):
                conn.send(_trade_error(400, "invalid syntax"))
                continue
            action = message.get("action")
            if action == "listen":
                body = message.get("data")
                streams = body.get("streams") if isinstance(body, dict) else None
                conn.listening = isinstance(streams, list) and "trade_updates" in streams
                listening = ["trade_updates"] if conn.listening else []
                conn.send({"stream": "listening", "data": {"streams": listening}})
            elif action in ("authenticate", "auth"):
                conn.send(_authorization("authorized"))
            else:
                conn.send(_trade_error(400, "invalid action"))

    async def _data_stream(self, request: web.Request) -> web.StreamResponse:
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        use_msgpack = content_type == "application/msgpack"
        conn = await self._open(request, "data", binary=use_msgpack, use_msgpack=use_msgpack)
        try:
            conn.send([{"T": "success", "msg": "connected"}])
            await self._serve_data(conn, request.path)
        except Exception:
            log.exception("market data stream failed")
        finally:
            self.hub.release(conn)
            await conn.close()
        return conn.ws

    async def _serve_data(self, conn: StreamConnection, endpoint: str) -> None:
        decoder = _Decoder(conn.use_msgpack)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.auth_timeout
        while True:
            timeout = None if conn.key_id else max(deadline - loop.time(), 0.001)
            try:
                kind, data = await self._receive(conn, timeout)
            except TimeoutError:
                conn.send(_data_error(404, "auth timeout"))
                conn.close_soon(1008, b"auth timeout")
                return
            if kind is WSMsgType.CLOSE:
                return
            try:
                messages = decoder.feed(kind, data)
            except ValueError:
                conn.send(_data_error(400, "invalid syntax"))
                continue
            for message in messages:
                if not self._data_message(conn, endpoint, message):
                    return

    def _data_message(self, conn: StreamConnection, endpoint: str, message: Any) -> bool:
        """Answer one market-data client message; ``False`` when the connection must end."""
        action = message.get("action") if isinstance(message, dict) else None
        if action == "auth":
            if conn.key_id is not None:
                conn.send(_data_error(403, "already authenticated"))
                return True
            key_id = self.keys.check(message.get("key"), message.get("secret"))
            if key_id is None:
                conn.send(_data_error(402, "auth failed"))
                conn.close_soon(1008, b"auth failed")
                return False
            if not self._admit(conn, endpoint, key_id):
                conn.send(_data_error(406, "connection limit exceeded"))
                conn.close_soon(1008, b"connection limit exceeded")
                return False
            conn.send([{"T": "success", "msg": "authenticated"}])
            return True
        if action in ("subscribe", "unsubscribe"):
            assert isinstance(message, dict)
            if conn.key_id is None:
                conn.send(_data_error(401, "not authenticated"))
                return True
            for channel, symbols in conn.channels.items():
                names = message.get(channel)
                if not isinstance(names, list):
                    continue
                wanted = {s for s in names if isinstance(s, str)}
                if action == "subscribe":
                    symbols |= wanted
                else:
                    symbols -= wanted
            if conn.channels["bars"]:
                self.hub.bars_wanted.set()
            reply: JSON = {"T": "subscription"}
            reply.update({c: sorted(s) for c, s in conn.channels.items()})
            reply["corrections"] = sorted(conn.channels["trades"])
            reply["cancelErrors"] = sorted(conn.channels["trades"])
            conn.send([reply])
            return True
        conn.send(_data_error(400, "invalid syntax"))
        return True
