"""BinanceServer: a loopback Binance spot venue (aiohttp) with its replay, in-process or threaded.

::

    async with BinanceServer("sample:minute", speed=0) as server:
        ex = ccxt.pro.binance({...}); ex.urls["api"].update(server.ccxt_urls()) ...
        await server.step(4)     # four bars: orders matched, klines streamed

It speaks what ccxt 4.5.90's binance uses (``/work/shared/specs/binance.md``):

* REST ``/api/v3``: ``time``, ``ping``, ``exchangeInfo``, ``klines`` (unsigned) and, signed with
  HMAC-SHA256 and checked against ``recvWindow``, ``order`` (POST/GET/DELETE), ``openOrders``,
  ``allOrders``, ``myTrades``, ``account``. Every answer carries ``X-MBX-USED-WEIGHT-1M`` (weight
  per calendar minute, per IP); past ``weight_limit`` it answers 429 ``-1003`` with
  ``Retry-After``; ``ban_after`` requests inside a 429's ``Retry-After`` earn a 418 ban of
  ``ban_seconds``. Errors are Binance's ``{"code", "msg"}`` bodies.
* the WebSocket API ``/ws-api/v3``: ``userDataStream.subscribe.signature`` (and ``ping``,
  ``time``, ``userDataStream.unsubscribe``); events then come as ``{"subscriptionId", "event"}``.
* market streams ``/ws``, ``/ws/<n>``, ``/stream/ws``, ``/stream/ws/<n>``: ``SUBSCRIBE`` /
  ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS``; closed klines (``x: true``) of the replay.

Symbols: a data symbol ``ACME`` trades as the pair ``ACMEUSDT`` (:func:`.venue.pair_name`), and
bars stream under the pair's name. Faults: a
:class:`~tradeloop.testing.alpaca.faults.FaultPlan` (the Alpaca server's, reused), kinds
``rate_limit`` (429), ``error_after_accept`` (the order placed, then ``error_status`` with
``-1007``), ``timeout_after_accept``, ``drop_stream`` (the user-data socket dropped, before a
fill with ``drop_before_fill``), ``duplicate_event``, ``unknown_event``, ``malformed_json``.

The server stops by itself ``linger`` seconds after the replay ends and ``max_seconds`` after
it started (if set).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tradeloop.data.feed import BarFeed
from tradeloop.errors import ConfigError, EngineError
from tradeloop.execution.asynchronous.brokers.binance.mapping import ws_signature
from tradeloop.execution.asynchronous.sources import ReplayBarSource
from tradeloop.execution.types import Bar
from tradeloop.testing.alpaca.faults import FaultPlan
from tradeloop.testing.alpaca.server import _check_loopback, load_data
from tradeloop.testing.binance.venue import BinanceError, BinanceVenue, pair_name
from tradeloop.testing.replay import ReplayLifecycle
from tradeloop.testing.thread import ServerThread

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_SECRET",
    "SUPPORTED_FAULTS",
    "BinanceServer",
    "BinanceServerThread",
]

JSON = dict[str, Any]
T = TypeVar("T")
log = logging.getLogger("tradeloop.testing.binance")

DEFAULT_API_KEY: Final = "tradeloop-binance-key"
DEFAULT_SECRET: Final = "tradeloop-binance-secret"  # public: it guards a loopback server only
SUPPORTED_FAULTS: Final = (
    "rate_limit",
    "error_after_accept",
    "timeout_after_accept",
    "drop_stream",
    "duplicate_event",
    "unknown_event",
    "malformed_json",
)
_INTERVALS: Final = {"1s": 1, "1m": 60, "3m": 180, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
_WEIGHTS: Final = {
    ("GET", "time"): 1,
    ("GET", "ping"): 1,
    ("GET", "exchangeInfo"): 20,
    ("GET", "klines"): 2,
    ("POST", "order"): 1,
    ("DELETE", "order"): 1,
    ("GET", "order"): 4,
    ("GET", "openOrders"): 6,
    ("GET", "allOrders"): 20,
    ("GET", "myTrades"): 20,
    ("GET", "account"): 20,
}
_PUBLIC: Final = ("time", "ping", "exchangeInfo", "klines")
_TIMEOUT_MSG: Final = (
    "Timeout waiting for response from backend server. Send status unknown; "
    "execution status unknown."
)


def _ban_message(until: float) -> str:
    return f"Way too much request weight used; IP banned until {int(until * 1000)}."


def _error(exc: BinanceError, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(exc.body(), status=exc.status, headers=dict(headers or {}))


class _UserConn:
    """One WebSocket API connection with a user-data subscription: events queue here and a
    writer task sends them (faults applied there)."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, sub_id: int) -> None:
        self.ws = ws
        self.request = request
        self.sub_id = sub_id
        self.subscribed = False
        self.queue: asyncio.Queue[JSON] = asyncio.Queue()
        self.malformed_toggle = False


class BinanceServer(ReplayLifecycle):
    """A loopback Binance spot venue replaying ``data`` (see the module docstring).

    ``data``: a :class:`BarFeed`, ``"sample:minute"``/``"sample:daily"`` or a bar file's path.
    ``speed``: replay pace against the bars' clock (``0``: only :meth:`step` or ``POST
    /_tradeloop/step`` advance it). ``keys``: ``(api key, secret)``. ``clock_skew``: seconds
    the server's clock runs ahead (a skewed client then gets ``-1021``).
    """

    def __init__(
        self,
        data: BarFeed | str | os.PathLike[str] = "sample:minute",
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        speed: float = 0.0,
        keys: tuple[str, str] | None = None,
        quote: str = "USDT",
        interval: str = "1m",
        initial_cash: float = 100_000.0,
        commission_rate: float = 0.001,
        weight_limit: int = 6000,
        ban_after: int = 3,
        ban_seconds: float = 10.0,
        linger: float | None = 30.0,
        max_seconds: float | None = None,
        max_sleep: float = 1.0,
        wait_for_subscriber: bool = True,
        faults: FaultPlan | None = None,
        clock_skew: float = 0.0,
    ) -> None:
        _check_loopback(host)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError("port", port, "must be an integer in 0..65535 (0: the OS picks)")
        if interval not in _INTERVALS:
            raise ConfigError("interval", interval, f"expected one of {', '.join(_INTERVALS)}")
        if not (isinstance(speed, int | float) and speed >= 0):
            raise ConfigError("speed", speed, "must be a number >= 0")
        if faults is not None:
            if not isinstance(faults, FaultPlan):
                raise ConfigError("faults", type(faults).__name__, "must be a FaultPlan or None")
            unsupported = [
                k
                for k in faults.probabilities
                if k not in SUPPORTED_FAULTS and (faults.probabilities[k] or faults.next.get(k))
            ]
            if unsupported:
                raise ConfigError(
                    "faults", unsupported[0], f"not supported here ({', '.join(SUPPORTED_FAULTS)})"
                )
        feed = load_data(data) if isinstance(data, str | os.PathLike) else data
        if not isinstance(feed, BarFeed):
            raise ConfigError("data", type(data).__name__, "must be a BarFeed or a data spec")
        self.feed = feed
        self.pairs = {s: pair_name(s, quote) for s in feed.symbols}
        self.source = ReplayBarSource(feed, speed=speed, max_sleep=max_sleep)
        self._total = len(feed)
        start = getattr(self.source, "start", None)
        self.venue = BinanceVenue(
            self.pairs.values(),
            quote=quote,
            initial_cash=initial_cash,
            commission_rate=commission_rate,
            start=(start - 1_000_000_000) if isinstance(start, int) else 0,
            interval_ms=_INTERVALS[interval] * 1000,
            on_event=self._on_venue_event,
        )
        self.host = host
        self.speed = float(speed)
        self.interval = interval
        self.keys = keys if keys is not None else (DEFAULT_API_KEY, DEFAULT_SECRET)
        self.weight_limit = weight_limit
        self.ban_after = ban_after
        self.ban_seconds = ban_seconds
        self._init_lifecycle(linger, wait_for_subscriber)
        self.max_seconds = max_seconds
        self.faults = faults if faults is not None else FaultPlan()
        self.clock_skew = clock_skew
        self.requests: list[tuple[str, str]] = []  # (method, path) of every REST request
        self.status_counts: dict[int, int] = {}
        self._port = port
        self._weight: dict[int, int] = {}  # minute -> weight used
        self._retry_until = 0.0
        self._violations = 0
        self._banned_until = 0.0
        self._user_conns: list[_UserConn] = []
        self._market: dict[web.WebSocketResponse, set[str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sub_seq = 0
        self.bars_wanted = asyncio.Event()
        self._lock = asyncio.Lock()
        self._bars: AsyncIterator[Bar] | None = None
        self._runner: web.AppRunner | None = None
        self._replay_task: asyncio.Task[None] | None = None
        self._release = asyncio.Event()
        self.app = self._make_app()

    # -- addresses -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: ``broker.base_url`` / ``tradeloop live --base-url``."""
        return f"http://{self.host}:{self._port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self._port}"

    def ccxt_urls(self) -> dict[str, Any]:
        """The ccxt ``urls['api']`` keys pointing here (``ws`` ones to merge into the sub-dict)."""
        base = self.url
        return {
            "public": f"{base}/api/v3",
            "private": f"{base}/api/v3",
            "v1": f"{base}/api/v1",
            "sapi": f"{base}/sapi/v1",
            "ws_spot": f"{self.ws_url}/stream/ws",
            "ws_api_spot": f"{self.ws_url}/ws-api/v3",
        }

    def __repr__(self) -> str:
        return f"BinanceServer({self.url}, speed={self.speed:g})"

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None or self._stopping:
            raise EngineError("BinanceServer: a server starts once")
        loop = asyncio.get_running_loop()
        self._bars = aiter(self.source.bars())
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self._port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError("port", self._port, f"cannot listen on {self.host}: {exc}") from None
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        if self.speed > 0:
            self._replay_task = loop.create_task(self._replay(), name="binance-server-replay")
        if self.max_seconds is not None:
            self._timers.append(loop.call_later(self.max_seconds, self.request_stop))
        log.info("binance loopback server listening on %s", self.url)

    async def stop(self) -> None:
        if self._stopping or self._runner is None:
            if self._runner is None and not self._stopping:
                self._stopping = True
                self._closed.set()
            await self._closed.wait()
            return
        self._stopping = True
        self._release.set()
        try:
            for timer in self._timers:
                timer.cancel()
            task = self._replay_task
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await self.drop_streams()
            current = asyncio.current_task()
            pending = [t for t in self._tasks if t is not current]
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self._runner.cleanup()
            aclose: Callable[[], Awaitable[None]] | None = getattr(self._bars, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(RuntimeError):
                    await aclose()
            await self.source.close()
        finally:
            self._closed.set()
            log.info("binance loopback server stopped")

    def _subscribed(self) -> asyncio.Event:
        return self.bars_wanted

    def _end_of_data(self) -> None:
        self.venue.end_of_data()

    # -- the replay ----------------------------------------------------------------------------

    async def step(self, bars: int = 1) -> list[Bar]:
        """Play the next ``bars`` bars: for each, match open orders, then stream its kline."""
        if self._bars is None or self._stopping:
            raise EngineError("BinanceServer.step: the server is not running")
        played: list[Bar] = []
        async with self._lock:
            while len(played) < bars and not self.done:
                try:
                    bar = await anext(self._bars)
                except StopAsyncIteration:
                    self._finish()
                    break
                pair = self.pairs.get(bar.symbol, bar.symbol)
                bar = Bar(pair, bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume)
                self.venue.on_bar(bar)
                self._publish_kline(bar)
                played.append(bar)
                if self.venue.bars >= self._total:
                    self._finish()
        return played

    async def drop_streams(self) -> int:
        """Close every WebSocket (code 1001), as a venue restart would; returns how many."""
        sockets = [c.ws for c in self._user_conns] + list(self._market)
        for ws in sockets:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=1001, message=b"going away"), 2.0)
        return len(sockets)

    def state(self) -> JSON:
        out = self.venue.state()
        out["done"] = self.done
        out["user_streams"] = sum(1 for c in self._user_conns if c.subscribed)
        out["market_streams"] = [sorted(s) for s in self._market.values()]
        out["faults"] = self.faults.to_json()
        out["status_counts"] = {str(k): v for k, v in sorted(self.status_counts.items())}
        return out

    async def wait_for_client(self, symbols: tuple[str, ...] = (), timeout: float = 15.0) -> None:
        """Wait until a user-data subscription exists and klines of ``symbols`` (pairs) are
        subscribed; EngineError after ``timeout`` seconds."""
        wanted = {f"{s.lower()}@kline_{self.interval}" for s in symbols}
        deadline = time.monotonic() + timeout
        while True:
            subscribed = set().union(*self._market.values()) if self._market else set()
            if any(c.subscribed for c in self._user_conns) and wanted <= subscribed:
                return
            if time.monotonic() > deadline:
                raise EngineError(f"BinanceServer: no client for {sorted(wanted - subscribed)}")
            await asyncio.sleep(0.01)

    # -- events --------------------------------------------------------------------------------

    def _on_venue_event(self, event: JSON) -> None:
        for conn in self._user_conns:
            if conn.subscribed:
                conn.queue.put_nowait(event)

    def _publish_kline(self, bar: Bar) -> None:
        stream = f"{bar.symbol.lower()}@kline_{self.interval}"
        k = self.venue.kline(bar)
        k["i"] = self.interval
        k["f"], k["L"] = 0, 0
        payload = {"e": "kline", "E": int(time.time() * 1000), "s": bar.symbol, "k": k}
        text = json.dumps(payload)
        for ws, streams in list(self._market.items()):
            if stream in streams and not ws.closed:
                task = asyncio.get_running_loop().create_task(ws.send_str(text))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    # -- the app -------------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/v3/{name}", self._rest)
        app.router.add_route("*", "/sapi/{tail:.*}", self._sapi)
        app.router.add_get("/ws-api/v3", self._ws_api)
        for path in ("/ws", "/ws/{n}", "/stream/ws", "/stream/ws/{n}", "/stream"):
            app.router.add_get(path, self._ws_market)
        app.router.add_get("/_tradeloop/state", self._t_state)
        app.router.add_post("/_tradeloop/step", self._t_step)
        app.router.add_get("/_tradeloop/faults", self._t_faults)
        app.router.add_post("/_tradeloop/faults", self._t_faults)
        app.router.add_post("/_tradeloop/drop", self._t_drop)
        return app

    def server_ms(self) -> int:
        return int((time.time() + self.clock_skew) * 1000)

    def _weight_headers(self, now: float) -> dict[str, str]:
        used = self._weight.get(int(now // 60), 0)
        return {"X-MBX-USED-WEIGHT-1M": str(used), "X-MBX-USED-WEIGHT": str(used)}

    def _gate(self, weight: int) -> web.Response | None:
        """Weight accounting; a 429 or 418 answer when the client must wait."""
        now = time.time()
        if now < self._banned_until:
            left = math.ceil(self._banned_until - now)
            msg = _ban_message(self._banned_until)
            return _error(BinanceError(418, -1003, msg), {"Retry-After": str(left)})
        if now < self._retry_until:
            self._violations += 1
            if self._violations >= self.ban_after:
                self._banned_until = now + self.ban_seconds
                self._violations = 0
                msg = _ban_message(self._banned_until)
                return _error(
                    BinanceError(418, -1003, msg), {"Retry-After": str(math.ceil(self.ban_seconds))}
                )
        minute = int(now // 60)
        for old in [m for m in self._weight if m < minute]:
            del self._weight[old]
        self._weight[minute] = self._weight.get(minute, 0) + weight
        headers = self._weight_headers(now)
        if self._weight[minute] > self.weight_limit or self.faults.rate_limited("ip"):
            wait = max(1, math.ceil((minute + 1) * 60 - now))
            if self._weight[minute] <= self.weight_limit:
                wait = max(1, math.ceil(self.faults.rate_limit_reset))
            self._retry_until = max(self._retry_until, now + wait)
            msg = (
                f"Too much request weight used; current limit is {self.weight_limit} request "
                "weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid "
                "polling the API."
            )
            return _error(BinanceError(429, -1003, msg), {**headers, "Retry-After": str(wait)})
        return None

    def _check_timestamp(self, params: Mapping[str, str]) -> None:
        try:
            ts = int(params["timestamp"])
        except (KeyError, ValueError):
            raise BinanceError(
                400,
                -1102,
                "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
            ) from None
        try:
            window = int(params.get("recvWindow") or 5000)
        except ValueError:
            window = -1
        if not 0 < window <= 60000:
            raise BinanceError(400, -1131, "recvWindow must be less than 60000")
        server = self.server_ms()
        if not (ts < server + 1000 and server - ts <= window):
            raise BinanceError(
                400, -1021, "Timestamp for this request is outside of the recvWindow."
            )

    async def _signed_params(self, request: web.Request) -> dict[str, str]:
        key = request.headers.get("X-MBX-APIKEY")
        if key != self.keys[0]:
            raise BinanceError(401, -2014, "API-key format invalid.")
        query = request.query_string
        body = (await request.text()) if request.method in ("POST", "PUT") else ""
        total = query + body if not (query and body) else f"{query}&{body}"
        payload, sep, signature = total.rpartition("&signature=")
        if not sep or not signature:
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        expected = hmac.new(self.keys[1].encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(payload, keep_blank_values=True))
        self._check_timestamp(params)
        return params

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        method = request.method
        self.requests.append((method, name))
        weight = _WEIGHTS.get((method, name))
        if weight is None:
            return self._count(_error(BinanceError(404, -5000, "Path not found.")))
        if name == "openOrders" and "symbol" not in request.query:
            weight = 80
        throttled = self._gate(weight)
        if throttled is not None:
            return self._count(throttled)
        headers = self._weight_headers(time.time())
        venue = self.venue
        try:
            if name in _PUBLIC:
                params: Mapping[str, str] = request.query
                if name == "time":
                    data: Any = {"serverTime": self.server_ms()}
                elif name == "ping":
                    data = {}
                elif name == "exchangeInfo":
                    data = venue.exchange_info(self.server_ms())
                else:
                    data = venue.kline_rows(params)
            else:
                params = await self._signed_params(request)
                if name == "order" and method == "POST":
                    data = venue.new_order(params)
                    headers["X-MBX-ORDER-COUNT-10S"] = "1"
                    headers["X-MBX-ORDER-COUNT-1D"] = str(len(venue.exchange.book.orders))
                    return self._count(await self._after_accept(request, data, headers))
                if name == "order" and method == "DELETE":
                    data = venue.cancel(params)
                elif name == "order":
                    data = venue.query(params)
                elif name == "openOrders":
                    data = venue.open_orders(params)
                elif name == "allOrders":
                    data = venue.all_orders(params)
                elif name == "myTrades":
                    data = venue.my_trades(params)
                else:
                    data = venue.account()
        except BinanceError as exc:
            return self._count(_error(exc, headers))
        return self._count(web.json_response(data, headers=headers))

    def _count(self, response: web.StreamResponse) -> web.StreamResponse:
        self.status_counts[response.status] = self.status_counts.get(response.status, 0) + 1
        return response

    async def _after_accept(
        self, request: web.Request, data: JSON, headers: Mapping[str, str]
    ) -> web.StreamResponse:
        """An order the venue took: answered, or (faults) answered 5xx / never answered."""
        plan = self.faults
        if plan.decide("timeout_after_accept"):
            plan.record("timeout_after_accept")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), plan.timeout_delay)
            if request.transport is not None:
                request.transport.close()
            return web.json_response(data, headers=dict(headers))
        if plan.decide("error_after_accept"):
            plan.record("error_after_accept")
            body = {"code": -1007, "msg": _TIMEOUT_MSG}
            return web.json_response(body, status=plan.error_status, headers=dict(headers))
        return web.json_response(data, headers=dict(headers))

    async def _sapi(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, "sapi/" + request.match_info["tail"]))
        return _error(BinanceError(404, -5000, "Path not supported by the loopback server."))

    # -- WebSocket API -------------------------------------------------------------------------

    async def _ws_api(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        self._sub_seq += 1
        conn = _UserConn(ws, request, self._sub_seq - 1)
        self._user_conns.append(conn)
        writer = asyncio.get_running_loop().create_task(self._user_writer(conn))
        self._tasks.add(writer)
        writer.add_done_callback(self._tasks.discard)
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                except ValueError:
                    await ws.send_json(
                        {"id": None, "status": 400, "error": {"code": -1000, "msg": "Invalid JSON"}}
                    )
                    continue
                await ws.send_json(self._ws_api_call(conn, req))
        finally:
            conn.subscribed = False
            writer.cancel()
            if conn in self._user_conns:
                self._user_conns.remove(conn)
        return ws

    def _ws_api_call(self, conn: _UserConn, req: Any) -> JSON:
        if not isinstance(req, Mapping):
            return {"id": None, "status": 400, "error": {"code": -1000, "msg": "Invalid request"}}
        rid = req.get("id")
        method = req.get("method")
        params = req.get("params") if isinstance(req.get("params"), Mapping) else {}
        assert isinstance(params, Mapping)
        if method == "ping":
            return {"id": rid, "status": 200, "result": {}}
        if method == "time":
            return {"id": rid, "status": 200, "result": {"serverTime": self.server_ms()}}
        if method == "userDataStream.unsubscribe":
            conn.subscribed = False
            return {"id": rid, "status": 200, "result": {}}
        if method != "userDataStream.subscribe.signature":
            return {"id": rid, "status": 400, "error": {"code": -1100, "msg": "Unknown method."}}
        try:
            if params.get("apiKey") != self.keys[0]:
                raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
            given = str(params.get("signature") or "")
            if not hmac.compare_digest(ws_signature(self.keys[1], params), given.lower()):
                raise BinanceError(400, -1022, "Signature for this request is not valid.")
            self._check_timestamp({k: str(v) for k, v in params.items()})
        except BinanceError as exc:
            return {"id": rid, "status": exc.status, "error": exc.body()}
        conn.subscribed = True
        return {"id": rid, "status": 200, "result": {"subscriptionId": conn.sub_id}}

    async def _user_writer(self, conn: _UserConn) -> None:
        plan = self.faults
        ws = conn.ws
        while not ws.closed:
            event = await conn.queue.get()
            message = {"subscriptionId": conn.sub_id, "event": event}
            text = json.dumps(message)
            trade = event.get("e") == "executionReport"
            is_fill = trade and event.get("x") == "TRADE"
            if trade and (is_fill or not plan.drop_before_fill) and plan.decide("drop_stream"):
                plan.record("drop_stream")
                if not plan.drop_before_fill:
                    await ws.send_str(text)
                if conn.request.transport is not None:
                    conn.request.transport.close()
                return
            if trade and plan.decide("unknown_event"):
                plan.record("unknown_event")
                gremlin = {"subscriptionId": conn.sub_id, "event": {**event, "e": "gremlinEvent"}}
                await ws.send_str(json.dumps(gremlin))
            if trade and plan.decide("malformed_json"):
                plan.record("malformed_json")
                conn.malformed_toggle = not conn.malformed_toggle
                if conn.malformed_toggle:
                    await ws.send_str(text[: len(text) // 2])
                else:
                    broken = {k: v for k, v in event.items() if k != "i"}
                    await ws.send_str(json.dumps({"subscriptionId": conn.sub_id, "event": broken}))
            await ws.send_str(text)
            if trade and plan.decide("duplicate_event"):
                plan.record("duplicate_event")
                await ws.send_str(text)

    # -- market streams ------------------------------------------------------------------------

    async def _ws_market(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        streams: set[str] = set()
        self._market[ws] = streams
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                except ValueError:
                    await ws.send_json({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None})
                    continue
                if not isinstance(req, Mapping):
                    continue
                rid = req.get("id")
                method = req.get("method")
                names = [str(p) for p in req.get("params") or ()]
                if method == "SUBSCRIBE":
                    streams.update(names)
                    if any("@kline_" in n for n in names):
                        self.bars_wanted.set()
                    await ws.send_json({"result": None, "id": rid})
                elif method == "UNSUBSCRIBE":
                    streams.difference_update(names)
                    await ws.send_json({"result": None, "id": rid})
                elif method == "LIST_SUBSCRIPTIONS":
                    await ws.send_json({"result": sorted(streams), "id": rid})
                else:
                    await ws.send_json({"error": {"code": 1, "msg": "Invalid request"}, "id": rid})
        finally:
            self._market.pop(ws, None)
        return ws

    # -- test API ------------------------------------------------------------------------------

    async def _t_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _t_step(self, request: web.Request) -> web.Response:
        try:
            n = int(request.query.get("bars", "1"))
        except ValueError:
            n = 0
        if n < 1:
            return web.json_response({"error": "bars must be an integer >= 1"}, status=400)
        played = await self.step(n)
        return web.json_response({"bars": len(played), "done": self.done})

    async def _t_faults(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                self.faults.configure(await request.json())
            except (ValueError, ConfigError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.faults.to_json())

    async def _t_drop(self, request: web.Request) -> web.Response:
        return web.json_response({"dropped": await self.drop_streams()})


class BinanceServerThread(ServerThread["BinanceServer"]):
    """A :class:`BinanceServer` on its own event loop in a thread (for synchronous code and the
    chaos bench). ``with BinanceServerThread(data, ...) as server: ...``."""

    def __init__(
        self, data: BarFeed | str | os.PathLike[str] = "sample:minute", **options: Any
    ) -> None:
        super().__init__(BinanceServer(data, **options), "tradeloop-binance-server")

    @property
    def url(self) -> str:
        return self.server.url
