"""AlpacaBroker: Alpaca's Trading API v2 as an async broker, assembled from small parts.

It *holds* its parts and wires them; it inherits from nothing:

* :class:`~tradeloop.execution.asynchronous.components.broker_config.BrokerConfig` — URLs, paper
  or live, the keys (secret values, never printed);
* :class:`~tradeloop.execution.asynchronous.components.rate_limiter.RateLimiter` — 200 requests a
  minute, corrected from the ``X-Ratelimit-*`` headers;
* :class:`~tradeloop.execution.asynchronous.components.cache.CacheManager` — account, clock and
  positions with short TTLs, invalidated by fills;
* :class:`~tradeloop.execution.asynchronous.components.connection.ConnectionManager` — the HTTP
  session and the two streams (trade updates, market-data bars), reconnects and watchdogs;
* :class:`~tradeloop.execution.asynchronous.brokers.alpaca.validation.AlpacaOrderValidator` —
  Alpaca's order rules, checked before anything is sent.

Everything venue-specific beyond that is the JSON mapping (:mod:`.mapping`, pure) and the
stream handshakes (:mod:`.streams`). Swapping a part (another limiter, a shared session) needs no
subclass: pass it in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from tradeloop.errors import (
    BrokerError,
    ConfigError,
    DuplicateOrderError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderStateError,
)
from tradeloop.execution.async_protocols import EventHandler
from tradeloop.execution.asynchronous.brokers.alpaca.mapping import (
    MalformedMessageError,
    account_from_json,
    bar_from_json,
    clock_from_json,
    fill_activity_from_json,
    format_ts,
    order_from_json,
    order_request_json,
    position_from_json,
    replace_request_json,
    trade_update_from_json,
)
from tradeloop.execution.asynchronous.brokers.alpaca.streams import (
    DataStreamProtocol,
    TradeStreamProtocol,
)
from tradeloop.execution.asynchronous.brokers.alpaca.validation import AlpacaOrderValidator
from tradeloop.execution.asynchronous.components.broker_config import BrokerConfig
from tradeloop.execution.asynchronous.components.cache import CacheManager
from tradeloop.execution.asynchronous.components.connection import (
    BrokerAuthError,
    ConnectionManager,
    HttpResponse,
    ManagedStream,
    StreamClosedError,
)
from tradeloop.execution.asynchronous.components.rate_limiter import RateLimiter
from tradeloop.execution.core.backoff import CONNECTION_LIMIT_WAIT
from tradeloop.execution.core.reconcile import VenueFill
from tradeloop.execution.types import (
    Account,
    Bar,
    Clock,
    EventKind,
    Order,
    Position,
)

__all__ = ["AlpacaBroker"]

log = logging.getLogger("tradeloop.live")

_DUPLICATE = 40010001


def _message(resp: HttpResponse) -> tuple[int | None, str]:
    data = resp.data
    if isinstance(data, Mapping):
        code = data.get("code")
        return (code if isinstance(code, int) else None), str(data.get("message") or "")
    return None, ""


def _fail(resp: HttpResponse, what: str, client_order_id: str | None = None) -> None:
    """Raise the tradeloop error an Alpaca error answer means (no-op for a success)."""
    if resp.status < 300:
        return
    code, message = _message(resp)
    text = message or f"HTTP {resp.status}"
    if resp.status == 401:
        raise BrokerAuthError(
            f"{what}: not authorized (check APCA_API_KEY_ID / APCA_API_SECRET_KEY)"
        )
    if resp.status == 404:
        raise OrderNotFoundError(what)
    if client_order_id is not None:
        if resp.status == 422 and code == _DUPLICATE and "unique" in message.lower():
            raise DuplicateOrderError(client_order_id)
        if resp.status in (403, 422):
            raise OrderRejectedError(client_order_id, text, code)
    if resp.status == 422:
        raise OrderStateError(f"{what}: {text}")
    raise BrokerError(f"{what}: HTTP {resp.status}: {text}")


class AlpacaBroker:
    """Alpaca as an :class:`~tradeloop.execution.async_protocols.AsyncBroker` (see the module
    docstring). ``symbols``: what ``bars()`` streams and orders may name. ``data_watchdog``:
    seconds of market-data silence after which the data stream is reconnected."""

    def __init__(
        self,
        config: BrokerConfig,
        *,
        symbols: Sequence[str] | None = None,
        limiter: RateLimiter | None = None,
        cache: CacheManager | None = None,
        connection: ConnectionManager | None = None,
        validator: AlpacaOrderValidator | None = None,
        data_watchdog: float | None = 180.0,
        connection_limit_wait: float = CONNECTION_LIMIT_WAIT,
    ) -> None:
        config.require_keys()
        self.config = config
        self.symbols: tuple[str, ...] | None = tuple(symbols) if symbols else None
        self.limiter = limiter if limiter is not None else RateLimiter(config.rate_limit)
        self.cache = cache if cache is not None else CacheManager()
        self.connection = (
            connection
            if connection is not None
            else ConnectionManager(
                headers=config.auth_headers(), timeout=config.timeout, limiter=self.limiter
            )
        )
        self.validator = validator if validator is not None else AlpacaOrderValidator(symbols)
        self.data_watchdog = data_watchdog
        self.connection_limit_wait = connection_limit_wait
        self.on_reconnect: Callable[[], Awaitable[None]] | None = None
        self.on_gap: Callable[[], None] | None = None  # a trade update was lost: reconcile
        self.malformed = 0
        self._handler: EventHandler | None = None
        self._trade_stream: ManagedStream | None = None
        self._data_stream: ManagedStream | None = None
        self._bars: asyncio.Queue[Bar] | None = None
        self._closed = False

    def __repr__(self) -> str:
        mode = "paper" if self.config.paper else "live"
        return f"AlpacaBroker({mode}, {self.config.trading_url})"

    # -- connection ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return "alpaca"

    @property
    def connection_state(self) -> str:
        if self._closed:
            return "closed"
        stream = self._trade_stream
        return stream.state if stream is not None else "disconnected"

    @property
    def streams(self) -> list[ManagedStream]:
        return [s for s in (self._trade_stream, self._data_stream) if s is not None]

    async def connect(self, on_event: EventHandler) -> None:
        """Open the trade-updates stream (authenticated and listening before this returns)."""
        self._handler = on_event
        key, secret = self.config.stream_auth()
        self._trade_stream = self.connection.stream(
            self.config.trade_stream_url,
            TradeStreamProtocol(key, secret),
            self._on_trade_message,
            on_reconnect=self._reconnected,
            limit_wait=self.connection_limit_wait,
            on_bad_frame=self._gap,
        )
        try:
            await self._trade_stream.start()
        except StreamClosedError as exc:
            if exc.code in (401, 402, 403):
                raise BrokerAuthError(
                    "trade_updates stream: not authorized "
                    "(check APCA_API_KEY_ID / APCA_API_SECRET_KEY)"
                ) from None
            raise

    async def _reconnected(self) -> None:
        self.cache.invalidate("account", "positions")
        if self.on_reconnect is not None:
            await self.on_reconnect()

    def _gap(self) -> None:
        """A trade update could not be read: whatever it said must be fetched over REST."""
        if self.on_gap is not None:
            self.on_gap()

    def _on_trade_message(self, message: Any) -> None:
        if not isinstance(message, Mapping) or message.get("stream") != "trade_updates":
            log.debug("trade stream: message ignored: %.200r", message)
            return
        try:
            event = trade_update_from_json(message.get("data"))  # type: ignore[arg-type]
        except MalformedMessageError as exc:
            self.malformed += 1
            log.warning("trade stream: malformed trade update ignored: %s", exc)
            self._gap()
            return
        if event.kind in (EventKind.FILL, EventKind.PARTIAL_FILL):
            self.cache.on_fill()
        if self._handler is not None:
            self._handler(event)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.connection.close()

    # -- REST ----------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.config.trading_url}{path}"

    async def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        client_order_id: str | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Any:
        resp = await self.connection.request(
            method, self._url(path), params=params, json_body=json_body
        )
        _fail(resp, what, client_order_id)
        return resp.data

    async def submit_order(self, order: Order) -> Order:
        data = await self._call(
            "POST",
            "/orders",
            what=f"submit {order.client_order_id}",
            client_order_id=order.client_order_id,
            json_body=order_request_json(order),
        )
        return order_from_json(data)

    async def replace_order(self, order: Order, new: Order) -> Order:
        venue_id = await self._venue_id(order)
        data = await self._call(
            "PATCH",
            f"/orders/{quote(venue_id)}",
            what=f"replace {venue_id}",
            client_order_id=new.client_order_id,
            json_body=replace_request_json(order, new),
        )
        return order_from_json(data)

    async def cancel_order(self, order: Order) -> None:
        venue_id = await self._venue_id(order)
        await self._call("DELETE", f"/orders/{quote(venue_id)}", what=f"cancel {venue_id}")

    async def _venue_id(self, order: Order) -> str:
        if order.broker_order_id:
            return order.broker_order_id
        return (await self.get_order_by_client_id(order.client_order_id)).id

    async def get_order(self, broker_order_id: str) -> Order:
        data = await self._call("GET", f"/orders/{quote(broker_order_id)}", what=broker_order_id)
        return order_from_json(data)

    async def get_order_by_client_id(self, client_order_id: str) -> Order:
        data = await self._call(
            "GET",
            "/orders:by_client_order_id",
            what=client_order_id,
            params={"client_order_id": client_order_id},
        )
        return order_from_json(data)

    async def get_open_orders(self) -> list[Order]:
        data = await self._call(
            "GET", "/orders", what="open orders", params={"status": "open", "limit": "500"}
        )
        out = []
        for item in data or []:
            try:
                out.append(order_from_json(item))
            except MalformedMessageError as exc:
                self.malformed += 1
                log.warning("open order ignored: %s", exc)
        return out

    async def get_orders(self, since: int | None = None) -> list[Order]:
        """Every open order, and every order submitted at or after ``since`` (paged)."""
        found: dict[str, Order] = {o.id: o for o in await self.get_open_orders()}
        params = {"status": "all", "limit": "500", "direction": "asc"}
        after = None if since is None else format_ts(since - 1)
        while True:
            page = dict(params)
            if after is not None:
                page["after"] = after
            data = await self._call("GET", "/orders", what="orders", params=page)
            items = list(data or [])
            for item in items:
                try:
                    order = order_from_json(item)
                except MalformedMessageError as exc:
                    self.malformed += 1
                    log.warning("order ignored: %s", exc)
                    continue
                found[order.id] = order
            if len(items) < 500:
                return list(found.values())
            last = items[-1].get("submitted_at") or items[-1].get("created_at")
            if not last or last == after:
                return list(found.values())
            after = str(last)

    async def get_fills(self, since: int | None = None) -> list[VenueFill]:
        """The account's FILL activities at or after ``since``, oldest first (paged)."""
        out: list[VenueFill] = []
        params = {"direction": "asc", "page_size": "100"}
        if since is not None:
            params["after"] = format_ts(since - 1)
        token: str | None = None
        while True:
            page = dict(params)
            if token is not None:
                page["page_token"] = token
            data = await self._call(
                "GET", "/account/activities/FILL", what="fill activities", params=page
            )
            items = list(data or [])
            for item in items:
                try:
                    out.append(fill_activity_from_json(item))
                except MalformedMessageError as exc:
                    self.malformed += 1
                    log.warning("fill activity ignored: %s", exc)
            if len(items) < 100:
                return out
            token = str(items[-1].get("id"))

    async def get_positions(self) -> list[Position]:
        async def load() -> list[Position]:
            data = await self._call("GET", "/positions", what="positions")
            return [position_from_json(item) for item in data or []]

        return list(await self.cache.get("positions", load))

    async def get_account(self) -> Account:
        async def load() -> Account:
            return account_from_json(await self._call("GET", "/account", what="account"))

        return await self.cache.get("account", load)

    async def get_clock(self) -> Clock:
        async def load() -> Clock:
            return clock_from_json(await self._call("GET", "/clock", what="clock"))

        return await self.cache.get("clock", load)

    # -- market data ---------------------------------------------------------------------------

    def _on_data_message(self, message: Any) -> None:
        if not isinstance(message, Mapping):
            return
        kind = message.get("T")
        if kind == "b":
            try:
                bar = bar_from_json(message)
            except MalformedMessageError as exc:
                self.malformed += 1
                log.warning("market data: malformed bar ignored: %s", exc)
                return
            if self._bars is not None:
                self._bars.put_nowait(bar)
        elif kind == "error":
            log.warning("market data error: %s %s", message.get("code"), message.get("msg"))

    async def bars(self, symbols: Sequence[str] | None = None) -> AsyncIterator[Bar]:
        """Live bars of ``symbols`` (default: the broker's) from the market-data stream."""
        names = list(symbols) if symbols is not None else list(self.symbols or ())
        if not names:
            raise ConfigError("symbols", names, "name the symbols whose bars to stream")
        queue: asyncio.Queue[Bar] = asyncio.Queue()
        self._bars = queue
        key, secret = self.config.stream_auth()
        stream = self.connection.stream(
            self.config.data_stream_url,
            DataStreamProtocol(key, secret, names),
            self._on_data_message,
            watchdog=self.data_watchdog,
            limit_wait=self.connection_limit_wait,
        )
        self._data_stream = stream
        async with contextlib.aclosing(stream.deliver(queue)) as bars:
            async for bar in bars:
                yield bar
