"""BinanceBroker: Binance spot as an async broker, REST through ccxt, assembled from small parts.

It *holds* its parts and wires them; it inherits from nothing:

* :class:`~tradeloop.execution.asynchronous.brokers.binance.config.BinanceConfig` - URLs,
  testnet or live, the keys (secret values, never printed);
* :class:`~tradeloop.execution.asynchronous.components.rate_limiter.RateLimiter` - request
  *weight* a minute (each call acquires its endpoint's weight), corrected from
  ``X-MBX-USED-WEIGHT-1M``; 429/418 wait out ``Retry-After`` (ccxt ignores both headers: a
  per-instance ``on_rest_response`` hook reads them);
* :class:`~tradeloop.execution.asynchronous.components.cache.CacheManager` - the account's
  balances, invalidated by fills and balance events;
* :class:`~tradeloop.execution.asynchronous.components.connection.ConnectionManager` - the two
  sockets (user data on the WebSocket API, klines), reconnects and watchdogs;
* :class:`~tradeloop.execution.asynchronous.brokers.binance.validation.BinanceOrderValidator` -
  the symbol filters, checked before anything is sent;
* a ``ccxt.async_support.binance`` exchange (ccxt pinned to 4.5.90) for every REST call, with
  its URLs overridden in place and its startup cut to one ``GET /api/v3/exchangeInfo``.

Reliability is the engine's (order manager, journal, reconciliation); this broker gives it what
it needs: the client order id goes as ``newClientOrderId``; a resend (the same id after an
unknown outcome) first looks the id up, because Binance takes a filled order's id again;
``-2010 Duplicate order sent.`` is a :class:`~tradeloop.errors.DuplicateOrderError`; timeouts,
5xx and ``-1007`` are :class:`~tradeloop.errors.BrokerConnectionError` (outcome unknown); every
reconnect of the user-data socket asks for a reconciliation (Binance replays nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import ccxt.async_support as ccxt_async  # type: ignore[import-untyped]

from tradeloop.errors import (
    BrokerConnectionError,
    BrokerError,
    ConfigError,
    DuplicateOrderError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderStateError,
    TradeloopError,
)
from tradeloop.execution.async_protocols import EventHandler
from tradeloop.execution.asynchronous.brokers.binance.config import BinanceConfig
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
    split_venue_id,
    weight_headers,
)
from tradeloop.execution.asynchronous.brokers.binance.streams import (
    KlineAssembler,
    KlineStreamProtocol,
    UserDataProtocol,
)
from tradeloop.execution.asynchronous.brokers.binance.validation import BinanceOrderValidator
from tradeloop.execution.asynchronous.components.cache import CacheManager
from tradeloop.execution.asynchronous.components.connection import (
    BrokerAuthError,
    ConnectionManager,
    ManagedStream,
    StreamClosedError,
)
from tradeloop.execution.asynchronous.components.rate_limiter import RateLimiter
from tradeloop.execution.core.reconcile import VenueFill
from tradeloop.execution.types import Account, Bar, Clock, EventKind, Order, Position

__all__ = ["WEIGHTS", "BinanceBroker", "ccxt_options"]

log = logging.getLogger("tradeloop.live")

#: Request weight of each endpoint (Binance spot REST "LIMITS").
WEIGHTS = {
    "exchangeInfo": 20,
    "order": 1,
    "cancel": 1,
    "query": 4,
    "openOrders": 6,
    "allOrders": 20,
    "myTrades": 20,
    "account": 20,
    "klines": 2,
    "time": 1,
}

_PAGE = 1000
_RETRIES = 3  # 429s waited out (and -1021 resynced) before a call gives up
_AUTH_CODES = (-1022, -2014, -2015)
_REJECT_CODES = (-2010, -1013, -1121, -1100, -1102, -1104, -1106, -1111, -1116, -1117, -1013)

# (status, headers) of the REST answer the current task is waiting for
_ANSWER: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "binance_answer", default=None
)


def ccxt_options(config: BinanceConfig) -> dict[str, Any]:
    """The ccxt constructor settings (keys excluded): no throttle of its own, startup cut to
    one ``exchangeInfo`` request, no time sync request, open orders without a symbol allowed."""
    return {
        "enableRateLimit": False,
        "timeout": int(config.timeout * 1000),
        "options": {
            "fetchCurrencies": False,
            "fetchMarkets": {"types": ["spot"]},
            "fetchMargins": False,
            "adjustForTimeDifference": False,
            "recvWindow": config.recv_window,
            "fetchOpenOrders": {"warnWithoutSymbol": False},
        },
    }


class BinanceBroker:
    """Binance spot as an :class:`~tradeloop.execution.async_protocols.AsyncBroker` (see the
    module docstring). ``symbols``: pair ids (``ACMEUSDT``) that ``bars()`` streams and orders
    may name. ``interval``: the kline interval of the bars. ``clock``/``sleep``: the monotonic
    clock and sleep of IP-ban waits (tests pass fakes)."""

    def __init__(
        self,
        config: BinanceConfig,
        *,
        symbols: Sequence[str] | None = None,
        interval: str = "1m",
        limiter: RateLimiter | None = None,
        cache: CacheManager | None = None,
        connection: ConnectionManager | None = None,
        validator: BinanceOrderValidator | None = None,
        data_watchdog: float | None = 180.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        config.require_keys()
        self.config = config
        self.symbols: tuple[str, ...] | None = tuple(symbols) if symbols else None
        self.interval = interval
        self.limiter = limiter if limiter is not None else RateLimiter(config.weight_limit, 60.0)
        self.cache = cache if cache is not None else CacheManager()
        self.connection = (
            connection if connection is not None else ConnectionManager(timeout=config.timeout)
        )
        self.validator = validator if validator is not None else BinanceOrderValidator(symbols)
        self.data_watchdog = data_watchdog
        self.on_reconnect: Callable[[], Awaitable[None]] | None = None
        self.on_gap: Callable[[], None] | None = None
        self.malformed = 0
        self.banned = 0
        self.prices: dict[str, float] = {}
        self._clock = clock
        self._sleep = sleep
        self._banned_until = 0.0
        self._exchange: Any = None
        self._handler: EventHandler | None = None
        self._user_stream: ManagedStream | None = None
        self._data_stream: ManagedStream | None = None
        self._sent: set[str] = set()  # client order ids sent at least once
        self._symbol_of: dict[str, str] = {}  # client order id -> pair
        self._closed = False

    def __repr__(self) -> str:
        return f"BinanceBroker({self.config.base_url})"

    # -- ccxt ----------------------------------------------------------------------------------

    @property
    def exchange(self) -> Any:
        """The ccxt exchange (built on first use, inside the running loop)."""
        if self._exchange is None:
            key, secret = self.config.keys()
            ex = ccxt_async.binance({**ccxt_options(self.config), "apiKey": key, "secret": secret})
            ex.urls["api"].update(self.config.ccxt_urls())  # in place: keeps urls['api']['ws']
            ex.on_rest_response = self._rest_response
            self._exchange = ex
        return self._exchange

    def _rest_response(
        self,
        code: int,
        reason: str,
        url: str,
        method: str,
        response_headers: Mapping[str, str],
        response_body: str,
        request_headers: Any,
        request_body: Any,
    ) -> str:
        """ccxt's per-response hook: the headers it otherwise drops feed the limiter."""
        answer = _ANSWER.get()
        if answer is not None:
            answer["status"] = code
            answer["headers"] = dict(response_headers)
            answer["body"] = response_body if isinstance(response_body, str) else ""
        self.on_response(code, response_headers)
        return response_body.strip()

    def on_response(self, status: int, headers: Mapping[str, str]) -> None:
        """Correct the limiter from an answer's ``X-MBX-USED-WEIGHT-1M`` (weight units)."""
        translated = weight_headers(headers, self.config.weight_limit, time.time())
        translated.pop("Retry-After", None)
        if translated:
            self.limiter.update(translated)

    async def on_throttled(self, status: int, headers: Mapping[str, str]) -> float:
        """A 429 (or 418 ban): block every call for ``Retry-After`` (plus jitter); a 418 also
        bans calls for the whole ``Retry-After`` (beyond ``ban_wait`` they fail at once).
        Returns the wait."""
        retry = weight_headers(headers, self.config.weight_limit, time.time()).get("Retry-After")
        gate = {"X-Ratelimit-Remaining": "0", "X-Ratelimit-Limit": str(self.config.weight_limit)}
        if retry is not None:
            gate["Retry-After"] = retry
        wait = await self.limiter.on_429(gate)
        if status == 418:
            self.banned += 1
            try:
                seconds = float(retry) if retry is not None else 120.0
            except ValueError:
                seconds = 120.0
            self._banned_until = max(self._banned_until, self._clock() + seconds)
            log.warning("binance: IP banned for %.0f s (HTTP 418)", seconds)
        return wait

    async def _wait_ban(self, what: str) -> None:
        left = self._banned_until - self._clock()
        if left <= 0:
            return
        if left > self.config.ban_wait:
            raise BrokerConnectionError(f"{what}: IP banned by Binance for {left:.0f} s more")
        await self._sleep(left)

    async def _call(
        self,
        what: str,
        weight: int,
        fn: Callable[[], Awaitable[Any]],
        *,
        client_order_id: str | None = None,
    ) -> Any:
        """One REST call through ccxt: ban and weight waited for, errors translated."""
        if self._closed:
            raise BrokerConnectionError(f"{what}: the broker is closed")
        resynced = False
        for attempt in range(_RETRIES + 1):
            await self._wait_ban(what)
            for _ in range(weight):
                await self.limiter.acquire()
            answer: dict[str, Any] = {}
            token = _ANSWER.set(answer)
            try:
                return await fn()
            except ccxt_async.BaseError as exc:
                status = answer.get("status")
                code, msg = error_body(answer.get("body") or str(exc))
                if status in (418, 429) or code in (-1003, -1015):
                    await self.on_throttled(status or 429, answer.get("headers") or {})
                    if attempt < _RETRIES:
                        continue  # not executed: Binance refuses before it acts
                    raise BrokerConnectionError(f"{what}: still rate limited") from None
                if code == -1021 and not resynced:
                    resynced = True  # refused for the clock, not executed: sync and send again
                    await self._resync_time()
                    continue
                raise self._translate(what, exc, status, code, msg, client_order_id) from None
            except (TimeoutError, OSError) as exc:
                raise BrokerConnectionError(f"{what}: {type(exc).__name__}") from None
            finally:
                _ANSWER.reset(token)
        raise BrokerConnectionError(f"{what}: no answer")  # pragma: no cover - loop returns

    async def _resync_time(self) -> None:
        try:
            await self.exchange.load_time_difference()
        except ccxt_async.BaseError as exc:
            log.warning("binance: time sync failed: %s", type(exc).__name__)

    def _translate(
        self,
        what: str,
        exc: Exception,
        status: int | None,
        code: int | None,
        msg: str,
        client_order_id: str | None,
    ) -> TradeloopError:
        """A ccxt error (with the venue's status, code and message) -> tradeloop's."""
        text = msg or type(exc).__name__
        if status == 401 or code in _AUTH_CODES or isinstance(exc, ccxt_async.AuthenticationError):
            return BrokerAuthError(
                f"{what}: not authorized (check {self.config.key_env} / {self.config.secret_env})"
            )
        if code == -2013:
            return OrderNotFoundError(what)
        if code == -2011:
            return OrderStateError(f"{what}: {text}")
        if client_order_id is not None:
            if code == -2010 and "duplicate" in msg.lower():
                return DuplicateOrderError(client_order_id)
            if code in _REJECT_CODES:
                return OrderRejectedError(client_order_id, text, code)
            if status is None and isinstance(exc, ccxt_async.InvalidOrder):
                return OrderRejectedError(client_order_id, text, None)  # refused locally
        if (
            (status is not None and status >= 500)
            or code == -1007
            or (status is None and isinstance(exc, ccxt_async.NetworkError))
        ):
            return BrokerConnectionError(f"{what}: outcome unknown ({status or text})")
        return BrokerError(f"{what}: HTTP {status} code {code}: {text}")

    # -- connection ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return "binance"

    @property
    def connection_state(self) -> str:
        if self._closed:
            return "closed"
        stream = self._user_stream
        return stream.state if stream is not None else "disconnected"

    @property
    def streams(self) -> list[ManagedStream]:
        return [s for s in (self._user_stream, self._data_stream) if s is not None]

    def _venue_ms(self) -> int:
        offset = 0
        if self._exchange is not None:
            offset = int(self._exchange.options.get("timeDifference", 0) or 0)
        return int(time.time() * 1000) - offset

    async def load_markets(self) -> None:
        """``GET /api/v3/exchangeInfo`` (the only startup request): the symbols' filters go to
        the validator; a configured symbol the venue does not list is a ConfigError."""
        ex = self.exchange
        await self._call("exchangeInfo", WEIGHTS["exchangeInfo"], ex.load_markets)
        filters = {}
        missing = []
        for pair in self.symbols or ():
            market = ex.markets_by_id.get(pair) if ex.markets_by_id else None
            if not market:
                missing.append(pair)
                continue
            info = market[0]["info"] if isinstance(market, list) else market["info"]
            filters[pair] = filters_from_symbol_info(info)
        if missing:
            raise ConfigError("data.symbols", missing, "not listed by the venue's exchangeInfo")
        self.validator.set_filters(filters)

    async def connect(self, on_event: EventHandler) -> None:
        """Load the markets, then open the user-data subscription (listening before this
        returns)."""
        self._handler = on_event
        await self.load_markets()
        key, secret = self.config.keys()
        self._user_stream = self.connection.stream(
            self.config.ws_api_url,
            UserDataProtocol(key, secret, self.config.recv_window, clock=self._venue_ms),
            self._on_user_message,
            on_reconnect=self._reconnected,
            on_bad_frame=self._gap,
        )
        try:
            await self._user_stream.start()
        except StreamClosedError as exc:
            if exc.code in (401, 402, 403):
                raise BrokerAuthError(
                    "user data stream: not authorized "
                    f"(check {self.config.key_env} / {self.config.secret_env})"
                ) from None
            raise

    async def _reconnected(self) -> None:
        self.cache.invalidate("account", "positions")
        if self.on_reconnect is not None:
            await self.on_reconnect()

    def _gap(self) -> None:
        if self.on_gap is not None:
            self.on_gap()

    def _on_user_message(self, message: Any) -> None:
        if not isinstance(message, Mapping):
            return
        event = message.get("event")
        if not isinstance(event, Mapping):
            if "error" in message:
                log.warning("user data: error answer %s", message.get("error"))
            return
        kind = event.get("e")
        if kind == "executionReport":
            try:
                parsed = event_from_execution_report(event)
            except MalformedMessageError as exc:
                self.malformed += 1
                log.warning("user data: malformed executionReport ignored: %s", exc)
                self._gap()
                return
            if parsed is None:
                return
            if parsed.kind in (EventKind.FILL, EventKind.PARTIAL_FILL):
                self.cache.on_fill()
            if self._handler is not None:
                self._handler(parsed)
        elif kind in ("outboundAccountPosition", "balanceUpdate"):
            self.cache.invalidate("account", "positions")
        elif kind == "eventStreamTerminated":
            log.warning("user data: the venue ended the subscription")
            self._gap()
        else:
            log.debug("user data: event %r ignored", kind)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.connection.close()
        if self._exchange is not None:
            await self._exchange.close()

    # -- orders --------------------------------------------------------------------------------

    async def submit_order(self, order: Order) -> Order:
        coid = order.client_order_id
        self._symbol_of[coid] = order.symbol
        if coid in self._sent:
            # a resend after an unknown outcome: Binance takes the id of a *filled* order again,
            # so the first attempt must be looked for before sending a second
            try:
                return await self.get_order_by_client_id(coid)
            except OrderNotFoundError:
                pass
        symbol, otype, side, amount, price, params = order_request(order)
        self._sent.add(coid)
        ex = self.exchange
        raw = await self._call(
            f"submit {coid}",
            WEIGHTS["order"],
            lambda: ex.create_order(symbol, otype, side, amount, price, params),
            client_order_id=coid,
        )
        return order_from_binance(raw["info"])

    async def replace_order(self, order: Order, new: Order) -> Order:
        raise OrderRejectedError(
            new.client_order_id, "Binance spot cannot replace an order: cancel and submit", None
        )

    async def cancel_order(self, order: Order) -> None:
        ex = self.exchange
        if order.broker_order_id:
            pair, number = split_venue_id(order.broker_order_id)
            await self._call(
                f"cancel {order.broker_order_id}",
                WEIGHTS["cancel"],
                lambda: ex.cancel_order(number, ccxt_symbol(pair)),
            )
            return
        coid = order.client_order_id
        await self._call(
            f"cancel {coid}",
            WEIGHTS["cancel"],
            lambda: ex.cancel_order("", ccxt_symbol(order.symbol), {"clientOrderId": coid}),
        )

    async def get_order(self, broker_order_id: str) -> Order:
        try:
            pair, number = split_venue_id(broker_order_id)
        except ValueError:
            raise OrderNotFoundError(broker_order_id) from None
        ex = self.exchange
        raw = await self._call(
            broker_order_id, WEIGHTS["query"], lambda: ex.fetch_order(number, ccxt_symbol(pair))
        )
        return order_from_binance(raw["info"])

    async def get_order_by_client_id(self, client_order_id: str) -> Order:
        known = self._symbol_of.get(client_order_id)
        pairs = [known] if known else list(self.symbols or ())
        ex = self.exchange
        for pair in pairs:
            try:
                raw = await self._call(
                    client_order_id,
                    WEIGHTS["query"],
                    lambda p=pair: ex.fetch_order(  # type: ignore[misc]
                        "", ccxt_symbol(p), {"clientOrderId": client_order_id}
                    ),
                )
            except OrderNotFoundError:
                continue
            return order_from_binance(raw["info"])
        raise OrderNotFoundError(client_order_id)

    def _orders(self, items: Any) -> list[Order]:
        out = []
        for item in items or []:
            try:
                out.append(order_from_binance(item["info"]))
            except (MalformedMessageError, KeyError, TypeError) as exc:
                self.malformed += 1
                log.warning("order ignored: %s", exc)
        return out

    async def get_open_orders(self) -> list[Order]:
        ex = self.exchange
        out: list[Order] = []
        for pair in self.symbols or ():
            items = await self._call(
                "open orders",
                WEIGHTS["openOrders"],
                lambda p=pair: ex.fetch_open_orders(ccxt_symbol(p)),  # type: ignore[misc]
            )
            out.extend(self._orders(items))
        return out

    async def get_orders(self, since: int | None = None) -> list[Order]:
        """Every open order, and every order placed at or after ``since`` (``allOrders``, paged
        by ``orderId``)."""
        found: dict[str, Order] = {o.id: o for o in await self.get_open_orders()}
        ex = self.exchange
        since_ms = None if since is None else since // 1_000_000
        for pair in self.symbols or ():
            params: dict[str, Any] = {}
            start = since_ms
            while True:
                items = await self._call(
                    "orders",
                    WEIGHTS["allOrders"],
                    lambda p=pair, s=start, q=dict(params): ex.fetch_orders(  # type: ignore[misc]
                        ccxt_symbol(p), s, _PAGE, q
                    ),
                )
                for order in self._orders(items):
                    found[order.id] = order
                if len(items or ()) < _PAGE:
                    break
                last = int(items[-1]["info"]["orderId"])
                params = {"orderId": last + 1}
                start = None
        return list(found.values())

    async def get_fills(self, since: int | None = None) -> list[VenueFill]:
        """The account's trades of every symbol at or after ``since``, oldest first (``myTrades``,
        paged by ``fromId``)."""
        ex = self.exchange
        since_ms = None if since is None else since // 1_000_000
        out: list[VenueFill] = []
        for pair in self.symbols or ():
            params: dict[str, Any] = {}
            start = since_ms
            while True:
                items = await self._call(
                    "trades",
                    WEIGHTS["myTrades"],
                    lambda p=pair, s=start, q=dict(params): ex.fetch_my_trades(  # type: ignore[misc]
                        ccxt_symbol(p), s, _PAGE, q
                    ),
                )
                for item in items or ():
                    try:
                        out.append(fill_from_trade(item["info"]))
                    except (MalformedMessageError, KeyError, TypeError) as exc:
                        self.malformed += 1
                        log.warning("trade ignored: %s", exc)
                if len(items or ()) < _PAGE:
                    break
                params = {"fromId": int(items[-1]["info"]["id"]) + 1}
                start = None
        out.sort(key=lambda f: (f.ts, f.execution_id))
        return out

    # -- account -------------------------------------------------------------------------------

    async def _account_json(self) -> Any:
        ex = self.exchange
        raw = await self._call("account", WEIGHTS["account"], ex.fetch_balance)
        return raw["info"]

    async def get_account(self) -> Account:
        raw = await self.cache.get("account", self._account_json)
        return account_from_binance(raw, self.config.quote, self.prices, self.symbols or ())

    async def get_positions(self) -> list[Position]:
        raw = await self.cache.get("positions", self._account_json)
        return positions_from_balances(raw, self.symbols or (), self.prices)

    async def get_clock(self) -> Clock:
        """Crypto trades around the clock: the venue's time (local, corrected by the offset ccxt
        learnt at the last time sync), always open."""
        return Clock(self._venue_ms() * 1_000_000, True, None, None)

    # -- market data ---------------------------------------------------------------------------

    async def bars(self, symbols: Sequence[str] | None = None) -> AsyncIterator[Bar]:
        """Closed klines of ``symbols`` (default: the broker's) as bars."""
        names = list(symbols) if symbols is not None else list(self.symbols or ())
        if not names:
            raise ConfigError("symbols", names, "name the symbols whose bars to stream")
        queue: asyncio.Queue[Bar] = asyncio.Queue()
        assembler = KlineAssembler()

        def on_message(message: Any) -> None:
            try:
                closed = assembler.feed(message)
            except MalformedMessageError as exc:
                self.malformed += 1
                log.warning("market data: malformed kline ignored: %s", exc)
                return
            for bar in closed:
                self.prices[bar.symbol] = bar.close
                self.validator.set_price(bar.symbol, bar.close)
                queue.put_nowait(bar)

        stream = self.connection.stream(
            self.config.stream_url,
            KlineStreamProtocol(names, self.interval),
            on_message,
            watchdog=self.data_watchdog,
        )
        self._data_stream = stream
        async with contextlib.aclosing(stream.deliver(queue)) as bars:
            async for bar in bars:
                yield bar
