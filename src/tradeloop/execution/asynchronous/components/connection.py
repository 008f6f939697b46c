"""ConnectionManager: one HTTP session for a broker's REST calls, and its WebSocket streams.

What it owns, so that a broker does not have to:

* **one aiohttp session** for every REST call, with a timeout on each, the rate limiter in front
  (wait before sending; corrected from the answer's headers; a 429 waits until the reset and is
  retried, which is safe because order requests carry their client order id), and errors turned
  into tradeloop's: a timeout, a dropped connection or a 5xx is a
  :class:`~tradeloop.errors.BrokerConnectionError` (the outcome is unknown), never a rejection.
* **streams** (:class:`ManagedStream`) that connect, authenticate and subscribe through a small
  protocol object, then deliver every message; when a stream fails they close the old socket
  *before* opening a new one (a venue allows one socket per key and endpoint), back off
  exponentially with jitter, wait long after a 406 "connection limit exceeded" (the old socket
  lingers at the venue), stop for good on fatal codes (401/402 auth, 409 subscription), reconnect
  when a stream falls silent longer than its watchdog allows, and call a reconnect hook once the
  new socket is ready (where a broker reconciles what it may have missed).

Credentials travel only in the headers and handshake messages given to it; they are never logged
and never put into an exception message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict

from tradeloop.errors import BrokerConnectionError, BrokerError, ConfigError
from tradeloop.execution.asynchronous.components.rate_limiter import RateLimiter
from tradeloop.execution.core.backoff import CONNECTION_LIMIT_WAIT, Backoff, after_close

__all__ = [
    "BrokerAuthError",
    "ConnectionManager",
    "HttpResponse",
    "ManagedStream",
    "StreamClosedError",
    "StreamProtocol",
    "decode_json_frame",
]

T = TypeVar("T")

log = logging.getLogger("tradeloop.live")


class BrokerAuthError(BrokerError):
    """The venue refused the credentials (or the subscription): retrying cannot help."""


class StreamClosedError(BrokerError):
    """A stream ended or refused us; ``code`` says why (Alpaca's 401/402/406/409, ...)."""

    def __init__(self, stream: str, code: int | None, reason: str) -> None:
        self.stream = stream
        self.code = code
        self.reason = reason
        where = f" (code {code})" if code is not None else ""
        super().__init__(f"stream {stream}: {reason}{where}")


@dataclass(frozen=True)
class HttpResponse:
    """A REST answer: status, headers and the decoded JSON body (``None`` if empty)."""

    status: int
    headers: Mapping[str, str]
    data: Any


def decode_json_frame(msg: aiohttp.WSMessage) -> Any:
    """A text or binary WebSocket frame holding JSON -> the decoded value."""
    if msg.type is aiohttp.WSMsgType.TEXT:
        return json.loads(msg.data)
    if msg.type is aiohttp.WSMsgType.BINARY:
        return json.loads(msg.data.decode("utf-8"))
    raise ValueError(f"not a data frame: {msg.type.name}")


class StreamProtocol(Protocol):
    """How one kind of stream opens and what its frames hold. Implemented per venue and stream."""

    name: str

    def upgrade_headers(self) -> Mapping[str, str]:
        """Extra headers of the WebSocket upgrade request."""
        ...

    async def handshake(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Authenticate and subscribe on a fresh socket; raise :class:`StreamClosedError` with
        the venue's code when refused."""
        ...

    def decode(self, msg: aiohttp.WSMessage) -> list[Any]:
        """The messages one data frame holds (a frame may carry several)."""
        ...


_CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)


class ManagedStream:
    """One WebSocket stream kept alive (see the module docstring)."""

    def __init__(
        self,
        manager: ConnectionManager,
        url: str,
        protocol: StreamProtocol,
        on_message: Callable[[Any], None],
        *,
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
        watchdog: float | None = None,
        backoff: Backoff | None = None,
        connect_attempts: int = 3,
        handshake_timeout: float = 10.0,
        limit_wait: float = CONNECTION_LIMIT_WAIT,
        on_bad_frame: Callable[[], None] | None = None,
    ) -> None:
        if watchdog is not None and not watchdog > 0:
            raise ConfigError("watchdog", watchdog, "must be > 0 seconds or None")
        self.manager = manager
        self.url = url
        self.protocol = protocol
        self.on_message = on_message
        self.on_reconnect = on_reconnect
        self.watchdog = watchdog
        self.backoff = backoff if backoff is not None else Backoff()
        self.connect_attempts = connect_attempts
        self.handshake_timeout = handshake_timeout
        self.limit_wait = limit_wait  # after a 406: how long the venue keeps the old socket
        self.on_bad_frame = on_bad_frame  # a frame could not be read: something may be lost
        self.state = "disconnected"
        self.reconnects = 0
        self.messages = 0
        self.bad_messages = 0
        self.last_message_at: float | None = None
        self.failure: BaseException | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def name(self) -> str:
        return self.protocol.name

    # -- lifetime ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and complete the handshake (retrying transient failures a few times), then
        keep the stream alive in a background task. Raises if the venue refuses for good."""
        last: BaseException | None = None
        for attempt in range(self.connect_attempts):
            try:
                await self._open()
                break
            except (BrokerAuthError, StreamClosedError) as exc:
                verdict = after_close(exc.code) if isinstance(exc, StreamClosedError) else "fatal"
                if verdict == "fatal":
                    self.state = "failed"
                    raise
                last = exc
                if verdict == "wait_long" and attempt + 1 < self.connect_attempts:
                    await self.manager.sleep(self.limit_wait)  # the old socket must go first
                    continue
            except BrokerConnectionError as exc:
                last = exc
            if attempt + 1 < self.connect_attempts:
                await self.manager.sleep(self.backoff.next_delay())
        else:
            self.state = "failed"
            assert last is not None
            raise last
        self.backoff.reset()
        self._task = asyncio.create_task(self._keep_alive(), name=f"stream-{self.name}")

    async def deliver(self, queue: asyncio.Queue[T]) -> AsyncGenerator[T, None]:
        """Start the stream and yield what its messages put into ``queue`` until the stream
        ends: closed (the iteration ends) or failed for good (its failure is raised). The stream
        is closed when the iteration stops, whichever way (iterate it under
        :func:`contextlib.aclosing` so that happens at once)."""
        await self.start()
        try:
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), 1.0)
                except TimeoutError:
                    if self.state in ("failed", "closed"):
                        if self.failure is not None:
                            raise self.failure from None
                        return
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop the stream and close its socket. Safe to call twice."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._close_socket()
        self.state = "closed"

    async def _close_socket(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
                await asyncio.wait_for(ws.close(), 5.0)
        self.manager._sockets.pop(self.url, None)

    async def _open(self) -> None:
        """Close whatever socket we had, open a new one and run the handshake."""
        await self._close_socket()
        other = self.manager._sockets.get(self.url)
        if other is not None and not other.closed:  # one socket per key and endpoint
            await other.close()
        self.state = "connecting"
        session = await self.manager.session()
        try:
            ws = await session.ws_connect(
                self.url,
                headers=dict(self.protocol.upgrade_headers()),
                heartbeat=30.0,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 402, 403, 409):
                raise StreamClosedError(self.name, exc.status, "upgrade refused") from None
            raise StreamClosedError(self.name, exc.status, "upgrade failed") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise BrokerConnectionError(
                f"stream {self.name}: cannot connect ({type(exc).__name__})"
            ) from None
        self._ws = ws
        self.manager._sockets[self.url] = ws
        try:
            async with asyncio.timeout(self.handshake_timeout):
                await self.protocol.handshake(ws)
        except TimeoutError:
            await self._close_socket()
            raise BrokerConnectionError(f"stream {self.name}: handshake timed out") from None
        except (ValueError, OSError, aiohttp.ClientError) as exc:  # a garbled or broken reply
            await self._close_socket()
            raise BrokerConnectionError(
                f"stream {self.name}: handshake failed ({type(exc).__name__})"
            ) from None
        except BaseException:
            await self._close_socket()
            raise
        self.state = "connected"
        self.last_message_at = time.monotonic()

    # -- the reader ----------------------------------------------------------------------------

    async def _read(self) -> None:
        """Deliver messages until the socket fails; raises what ended it."""
        ws = self._ws
        assert ws is not None
        while True:
            try:
                msg = await ws.receive(timeout=self.watchdog)
            except TimeoutError:
                raise StreamClosedError(
                    self.name, None, f"silent for {self.watchdog:g} s (watchdog)"
                ) from None
            if msg.type in _CLOSED:
                code = ws.close_code
                raise StreamClosedError(self.name, code, "closed by the venue")
            if msg.type is aiohttp.WSMsgType.ERROR:
                raise StreamClosedError(self.name, None, f"socket error ({msg.data!r})")
            self.last_message_at = time.monotonic()
            try:
                items = self.protocol.decode(msg)
            except Exception as exc:  # malformed frame: log and survive
                self.bad_messages += 1
                log.warning("stream %s: undecodable frame ignored: %s", self.name, exc)
                if self.on_bad_frame is not None:
                    self.on_bad_frame()
                continue
            for item in items:
                self.messages += 1
                try:
                    self.on_message(item)
                except Exception:
                    self.bad_messages += 1
                    log.exception("stream %s: message could not be handled", self.name)

    async def _keep_alive(self) -> None:
        while not self._closing:
            try:
                await self._read()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("stream %s lost: %s", self.name, exc)
            if self._closing:
                return
            await self._reconnect()
            if self.state == "failed":
                return

    async def _reconnect(self) -> None:
        """Reconnect with backoff until it works, a fatal code arrives or we are closed."""
        self.state = "reconnecting"
        await self._close_socket()  # close before reconnecting
        while not self._closing:
            await self.manager.sleep(self.backoff.next_delay())
            try:
                await self._open()
            except StreamClosedError as exc:
                verdict = after_close(exc.code)
                if verdict == "fatal":
                    self.state = "failed"
                    self.failure = exc
                    log.error("stream %s: %s; not retrying", self.name, exc)
                    return
                if verdict == "wait_long":
                    log.warning(
                        "stream %s: %s; waiting %.0f s for the old socket to go",
                        self.name,
                        exc,
                        self.limit_wait,
                    )
                    await self.manager.sleep(self.limit_wait)
                continue
            except (BrokerConnectionError, BrokerAuthError) as exc:
                log.warning("stream %s: reconnect failed: %s", self.name, exc)
                continue
            except Exception as exc:  # anything else a broken peer can cause: keep trying
                log.warning("stream %s: reconnect failed: %r", self.name, exc)
                continue
            self.reconnects += 1
            self.backoff.reset()
            log.info("stream %s reconnected (%d)", self.name, self.reconnects)
            if self.on_reconnect is not None:
                try:
                    await self.on_reconnect()
                except Exception:
                    log.exception("stream %s: reconnect hook failed", self.name)
            return


class ConnectionManager:
    """The HTTP session and streams of one broker connection (see the module docstring).

    ``headers`` are sent with every REST call (the credentials); ``timeout`` bounds each call.
    """

    def __init__(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        limiter: RateLimiter | None = None,
        retry_429: int = 3,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not timeout > 0:
            raise ConfigError("timeout", timeout, "must be > 0 seconds")
        self._headers = dict(headers or {})
        self.timeout = timeout
        self.limiter = limiter
        self.retry_429 = retry_429
        self.sleep = sleep
        self.requests = 0
        self._session: aiohttp.ClientSession | None = None
        self._streams: list[ManagedStream] = []
        self._sockets: dict[str, aiohttp.ClientWebSocketResponse] = {}

    async def session(self) -> aiohttp.ClientSession:
        """The one session (created on first use, in the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                raise_for_status=False,
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> HttpResponse:
        """One REST call: rate limited, timed out, 429 waited out and retried.

        Raises :class:`BrokerConnectionError` when the outcome is unknown (timeout, network
        error, 5xx); every other answer, error or not, is returned for the caller to read.
        """
        session = await self.session()
        path = urlsplit(url).path.lstrip("/")  # never the query: it may hold a signature
        for attempt in range(self.retry_429 + 1):
            if self.limiter is not None:
                await self.limiter.acquire()
            self.requests += 1
            try:
                async with session.request(
                    method, url, params=params, json=json_body, headers=self._headers
                ) as resp:
                    headers = CIMultiDict(resp.headers)
                    text = await resp.text()
                    status = resp.status
            except TimeoutError:
                raise BrokerConnectionError(
                    f"{method} /{path}: no answer within {self.timeout:g} s"
                ) from None
            except (aiohttp.ClientError, OSError) as exc:
                raise BrokerConnectionError(
                    f"{method} /{path}: connection failed ({type(exc).__name__})"
                ) from None
            if self.limiter is not None:
                self.limiter.update(headers)
            if status == 429:
                if attempt >= self.retry_429:
                    break
                if self.limiter is not None:
                    await self.limiter.on_429(headers)
                else:
                    await self.sleep(1.0)
                continue
            if status >= 500:
                raise BrokerConnectionError(f"{method} /{path}: venue error {status}")
            try:
                data = json.loads(text) if text.strip() else None
            except ValueError:
                data = {"message": text[:200]}
            return HttpResponse(status, headers, data)
        raise BrokerConnectionError(f"{method} /{path}: still rate limited (429)")

    def stream(
        self,
        url: str,
        protocol: StreamProtocol,
        on_message: Callable[[Any], None],
        **options: Any,
    ) -> ManagedStream:
        """A stream on this connection (start it with ``await stream.start()``)."""
        stream = ManagedStream(self, url, protocol, on_message, **options)
        self._streams.append(stream)
        return stream

    async def close(self) -> None:
        """Close every stream, then the session. Safe to call twice."""
        for stream in self._streams:
            await stream.close()
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
