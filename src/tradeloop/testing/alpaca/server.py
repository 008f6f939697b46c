"""AlpacaServer: the loopback Alpaca server with its replay, to run in-process or in a thread.

::

    async with AlpacaServer("sample:minute", port=0, speed=0) as server:
        client = TradingClient(KEY, SECRET, paper=True, url_override=server.url)
        ...
        result = await server.step(4)   # four bars: orders matched, bars streamed

The replay plays bars in the order a backtest visits them. For each bar the venue first matches
its open orders (events go to the trade stream), then the bar goes to market-data subscribers.
``speed`` paces the replay against the bars' own clock (``60``: a minute of bars per second);
``0`` replays only when asked, by :meth:`AlpacaServer.step` or ``POST /_tradeloop/step``.

The server stops by itself: ``linger`` seconds after the replay ends, and ``max_seconds`` after
it started (if set). :class:`AlpacaServerThread` runs one on its own event loop in a thread for
synchronous code; :func:`tradeloop.testing.alpaca.cli.run_server` is the command-line runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from aiohttp import web

from tradeloop.data.feed import BarFeed
from tradeloop.errors import ConfigError, EngineError
from tradeloop.execution.async_protocols import AsyncBarSource
from tradeloop.execution.asynchronous.brokers.alpaca.mapping import bar_to_json, format_ts
from tradeloop.execution.asynchronous.sources import ReplayBarSource
from tradeloop.execution.types import Bar
from tradeloop.testing.alpaca.app import (
    DATA_STREAM_PATHS,
    DEFAULT_KEY_ID,
    DEFAULT_SECRET,
    TRADE_STREAM_PATH,
    AlpacaApp,
    KeyRing,
    ServerHooks,
)
from tradeloop.testing.alpaca.exchange import AlpacaVenue, RateLimitWindow
from tradeloop.testing.alpaca.faults import FaultInjector, FaultPlan
from tradeloop.testing.replay import ReplayLifecycle
from tradeloop.testing.thread import ServerThread

__all__ = ["AlpacaServer", "AlpacaServerThread", "DataLike", "StepResult", "load_data"]

JSON = dict[str, Any]
T = TypeVar("T")
DataLike: TypeAlias = BarFeed | AsyncBarSource | str | os.PathLike[str]

log = logging.getLogger("tradeloop.testing.alpaca")

_SECOND = 1_000_000_000


def load_data(spec: str | os.PathLike[str], symbols: Sequence[str] | None = None) -> BarFeed:
    """Bars for the server: ``sample:minute`` or ``sample:daily`` (tradeloop's sample data), or
    the path of a bar file (CSV or Parquet, see :func:`tradeloop.data.loaders.load_bars`)."""
    text = os.fspath(spec)
    if text.startswith("sample:"):
        from tradeloop.data.sample import load_sample

        timeframe = text.partition(":")[2]
        if timeframe == "minute":
            return load_sample("minute", symbols)
        if timeframe == "daily":
            return load_sample("daily", symbols)
        raise ConfigError("data", text, "expected sample:minute, sample:daily or a file path")
    from tradeloop.data.loaders import load_bars

    return load_bars(text, symbols=symbols)


@dataclass(frozen=True)
class StepResult:
    """What one step of the replay did: the bars played, the trade_updates payloads they (and
    the end of the data) caused, whether the replay is over, and the venue's clock (int ns)."""

    bars: list[Bar]
    events: list[JSON]
    done: bool
    clock: int

    def to_json(self) -> JSON:
        """The answer of ``POST /_tradeloop/step``."""
        return {
            "bars": [bar_to_json(b) for b in self.bars],
            "events": self.events,
            "done": self.done,
            "clock": format_ts(self.clock),
        }


def _key_ring(keys: Mapping[str, str] | tuple[str, str] | None) -> KeyRing:
    if keys is None:
        return KeyRing({DEFAULT_KEY_ID: DEFAULT_SECRET})
    pairs = dict([keys]) if isinstance(keys, tuple) else dict(keys)
    if not pairs or not all(isinstance(k, str) and k for k in pairs):
        raise ConfigError("keys", list(pairs), "need at least one (key id, secret) pair")
    if not all(isinstance(s, str) and s for s in pairs.values()):
        raise ConfigError("keys", list(pairs), "every secret must be a non-empty string")
    return KeyRing(pairs)


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError("host", host, "the test server listens on a loopback address only")


def _non_negative(name: str, value: float | None, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigError(name, value, "must be a number >= 0" + (" or None" if allow_none else ""))


class AlpacaServer(ReplayLifecycle):
    """A loopback Alpaca venue replaying ``data`` (see the module docstring).

    ``data``: a :class:`BarFeed`, ``"sample:minute"``/``"sample:daily"``, a bar file's path,
    or any async bar source (replayed as it yields when ``speed > 0``, stepped otherwise).
    ``keys``: a ``(key id, secret)`` pair or a mapping of them (default
    ``tradeloop-test-key``/``tradeloop-test-secret``). ``rate_limit`` requests per key in any
    ``rate_window`` seconds (``None``: unlimited). ``initial_cash``, ``leverage`` and
    ``allow_short`` make the account; ``seed`` fixes its UUIDs. ``text_frames`` sends
    trade_updates in text frames instead of binary ones. ``faults``: a
    :class:`~tradeloop.testing.alpaca.faults.FaultPlan` of faults to inject (none by default;
    ``POST /_tradeloop/faults`` changes it at run time). ``hooks`` may alter traffic instead
    (a :class:`~tradeloop.testing.alpaca.faults.FaultInjector` brings its own plan).
    ``wait_for_subscriber``: a paced replay starts only once a client subscribed to bars, so a
    client that connects a little after the server misses nothing.
    """

    def __init__(
        self,
        data: DataLike,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        speed: float = 0.0,
        keys: Mapping[str, str] | tuple[str, str] | None = None,
        initial_cash: float = 100_000.0,
        leverage: float = 1.0,
        allow_short: bool = True,
        rate_limit: int | None = 200,
        rate_window: float = 60.0,
        linger: float | None = 30.0,
        wait_for_subscriber: bool = True,
        max_seconds: float | None = None,
        max_sleep: float = 1.0,
        text_frames: bool = False,
        auth_timeout: float = 10.0,
        seed: int | None = None,
        hooks: ServerHooks | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        _check_loopback(host)
        if faults is not None and not isinstance(faults, FaultPlan):
            raise ConfigError("faults", type(faults).__name__, "must be a FaultPlan or None")
        if faults is not None and hooks is not None:
            raise ConfigError(
                "faults", "FaultPlan", "give faults or hooks, not both (a FaultInjector has a plan)"
            )
        if hooks is None:
            hooks = FaultInjector(faults)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError("port", port, "must be an integer in 0..65535 (0: the OS picks)")
        _non_negative("speed", speed, allow_none=False)
        _non_negative("linger", linger, allow_none=True)
        _non_negative("max_seconds", max_seconds, allow_none=True)
        if isinstance(data, str | os.PathLike):
            data = load_data(data)
        bars = data if isinstance(data, BarFeed) else getattr(data, "feed", None)
        first_opens = (
            {s.symbol: s.open[0] for s in bars.series.values() if len(s)}
            if isinstance(bars, BarFeed)
            else {}
        )
        self._total: int | None = None
        if isinstance(data, BarFeed):
            self._total = len(data)
            data = ReplayBarSource(data, speed=speed, max_sleep=max_sleep)
        if not isinstance(data, AsyncBarSource):
            raise ConfigError(
                "data", type(data).__name__, "must be a BarFeed, a data spec or a bar source"
            )
        self.source: AsyncBarSource = data
        self.host = host
        self.speed = float(speed)
        self._init_lifecycle(linger, wait_for_subscriber)
        self.max_seconds = max_seconds
        first = getattr(data, "start", None)
        start = first - _SECOND if isinstance(first, int) else time.time_ns()
        symbols = getattr(data, "symbols", None)
        self.venue = AlpacaVenue(
            symbols=symbols,
            initial_cash=initial_cash,
            leverage=leverage,
            allow_short=allow_short,
            start=start,
            reference_prices=first_opens,
            seed=seed,
        )
        self._keys = _key_ring(keys)
        self._app = AlpacaApp(
            self.venue,
            keys=self._keys,
            limiter=None if rate_limit is None else RateLimitWindow(rate_limit, rate_window),
            text_frames=text_frames,
            step=self._step_json,
            state=self.state,
            hooks=hooks,
            auth_timeout=auth_timeout,
        )
        self._port = port
        self._bars: AsyncIterator[Bar] | None = None
        self._lock = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        self._replay_task: asyncio.Task[None] | None = None

    # -- addresses -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on (known once started when created with ``port=0``)."""
        return self._port

    @property
    def key_id(self) -> str:
        """The (first) key id clients authenticate with; the secret is not exposed."""
        return self._keys.key_ids[0]

    def _base(self, scheme: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self._port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: a TradingClient's ``url_override`` (it appends ``/v2``)."""
        return self._base("http")

    @property
    def stream_url(self) -> str:
        """The trade_updates stream: a TradingStream's ``url_override``."""
        return self._base("ws") + TRADE_STREAM_PATH

    def data_url(self, feed: str = "iex") -> str:
        """The market-data stream of ``feed`` (``iex`` or ``sip``): a StockDataStream's
        ``url_override``."""
        path = f"/v2/{feed}"
        if path not in DATA_STREAM_PATHS:
            raise ConfigError("feed", feed, "expected iex or sip")
        return self._base("ws") + path

    @property
    def faults(self) -> FaultPlan | None:
        """The plan of the faults injected (``None`` when custom ``hooks`` that are not a
        :class:`~tradeloop.testing.alpaca.faults.FaultInjector` were given)."""
        hooks = self._app.hooks
        return hooks.plan if isinstance(hooks, FaultInjector) else None

    def __repr__(self) -> str:
        return f"AlpacaServer({self.url}, key_id={self.key_id!r}, speed={self.speed:g})"

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen, start the replay (``speed > 0``) and the ``max_seconds`` timer."""
        if self._runner is not None or self._stopping:
            raise EngineError("AlpacaServer: a server starts once")
        loop = asyncio.get_running_loop()
        self._bars = aiter(self.source.bars())
        runner = web.AppRunner(self._app.app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self._port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError("port", self._port, f"cannot listen on {self.host}: {exc}") from None
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        if self.speed > 0:
            self._replay_task = loop.create_task(self._replay(), name="alpaca-server-replay")
        if self.max_seconds is not None:
            self._timers.append(loop.call_later(self.max_seconds, self.request_stop))
        log.info("alpaca loopback server listening on %s", self.url)

    async def stop(self) -> None:
        """Stop the replay, close every stream, stop listening. Safe to call more than once."""
        if self._stopping or self._runner is None:
            if self._runner is None and not self._stopping:
                self._stopping = True
                self._closed.set()
            await self._closed.wait()
            return
        self._stopping = True
        try:
            for timer in self._timers:
                timer.cancel()
            task = self._replay_task
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await self._app.hub.close_all()
            await self._runner.cleanup()
            aclose: Callable[[], Awaitable[None]] | None = getattr(self._bars, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(RuntimeError):
                    await aclose()
            await self.source.close()
        finally:
            self._closed.set()
            log.info("alpaca loopback server stopped")

    def _subscribed(self) -> asyncio.Event:
        return self._app.hub.bars_wanted

    def _end_of_data(self) -> None:
        self.venue.end_of_data()

    # -- the replay ----------------------------------------------------------------------------

    async def step(self, bars: int = 1) -> StepResult:
        """Play the next ``bars`` bars now: for each, match open orders, then stream the bar."""
        if self._bars is None or self._stopping:
            raise EngineError("AlpacaServer.step: the server is not running")
        if isinstance(bars, bool) or not isinstance(bars, int) or bars < 1:
            raise ConfigError("bars", bars, "must be an integer >= 1")
        venue = self.venue
        async with self._lock:
            first_event = len(venue.events)
            played: list[Bar] = []
            while len(played) < bars and not self.done:
                try:
                    bar = await anext(self._bars)
                except StopAsyncIteration:
                    self._finish()
                    break
                venue.on_bar(bar)
                self._app.hub.publish_bar(bar)
                played.append(bar)
                if self._total is not None and venue.bars >= self._total:
                    self._finish()
            return StepResult(played, venue.events[first_event:], self.done, venue.now)

    async def _step_json(self, bars: int) -> JSON:
        return (await self.step(bars)).to_json()

    async def drop_streams(self) -> int:
        """Close every open stream connection (code 1001), as a venue restart would; returns
        how many were closed. Clients are expected to reconnect."""
        count = len(self._app.hub.connections)
        await self._app.hub.close_all()
        return count

    async def wait_for_client(self, symbols: Iterable[str] = (), timeout: float = 15.0) -> None:
        """Wait until a client listens to trade updates and has subscribed to the bars of every
        one of ``symbols``: a bar stepped before that would never reach it. A test that steps
        the replay itself calls this first. :class:`EngineError` after ``timeout`` seconds,
        naming what is still missing."""
        wanted = set(symbols)

        def missing() -> list[str]:
            streams = self._app.hub.describe()
            out = (
                []
                if any("trade_updates" in s.get("streams", ()) for s in streams)
                else ["trade_updates"]
            )
            subscribed = {sym for s in streams for sym in s.get("bars", ())}
            return out + sorted(wanted - subscribed)

        await self._wait(lambda: not missing(), timeout, lambda: f"a client for {missing()}")

    async def wait_streams_closed(self, timeout: float = 15.0) -> None:
        """Wait until no stream connection is open (a client that stopped has let go of its
        sockets; a new one will not be refused as a second connection of the same key)."""
        await self._wait(lambda: not self._app.hub.describe(), timeout, lambda: "streams closed")

    async def _wait(
        self, done: Callable[[], bool], timeout: float, what: Callable[[], str]
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            if loop.time() >= deadline:
                raise EngineError(
                    f"AlpacaServer: timed out after {timeout:g} s waiting for {what()}"
                )
            await asyncio.sleep(0.01)

    def state(self) -> JSON:
        """The venue's state (see :meth:`AlpacaVenue.state`), the replay's progress and the
        open stream connections: the answer of ``GET /_tradeloop/state``."""
        out = self.venue.state()
        out["done"] = self.done
        out["streams"] = self._app.hub.describe()
        return out


class AlpacaServerThread(ServerThread[AlpacaServer]):
    """An :class:`AlpacaServer` on its own event loop in a background thread, for synchronous
    code (a blocking client, a test)::

        with AlpacaServerThread("sample:minute", speed=0) as server:
            client = TradingClient(KEY, SECRET, paper=True, url_override=server.url)
            server.step(4)

    ``options`` are :class:`AlpacaServer`'s. Leaving the block stops the server and joins the
    thread.
    """

    def __init__(self, data: DataLike, **options: Any) -> None:
        super().__init__(AlpacaServer(data, **options), "tradeloop-alpaca-server")

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def stream_url(self) -> str:
        return self.server.stream_url

    def data_url(self, feed: str = "iex") -> str:
        return self.server.data_url(feed)

    @property
    def port(self) -> int:
        return self.server.port

    def step(self, bars: int = 1, timeout: float = 30.0) -> StepResult:
        """:meth:`AlpacaServer.step`, from this thread."""
        return self.call(lambda: self.server.step(bars), timeout)
