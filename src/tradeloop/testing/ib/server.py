"""IBServer: a loopback fake of TWS / IB Gateway speaking the TWS socket protocol.

::

    async with IBServer("sample:minute", port=0, speed=0) as server:
        ib = ib_async.IB()
        await ib.connectAsync("127.0.0.1", server.port, clientId=1)
        ...
        await server.step(4)   # four bars: orders matched, real-time bars sent

It answers the handshake (server version 178, or 157 for a client that offers no more), the
startup requests ib_async sends (positions, open and completed orders, account updates,
executions), placeOrder, cancelOrder, reqIds, reqExecutions, account summaries and real-time
bars, with the messages of :mod:`tradeloop.testing.ib.wire`. Orders are matched by the pure
core's SimulatedExchange against the replayed bars (:class:`~tradeloop.testing.ib.venue.IBVenue`),
so a run against it fills as a backtest does.

Each replayed bar is matched, then sent to real-time-bar subscribers as ``slots`` 5-second bars
ending at the bar's end (the first carries the bar's open, high, low and volume, the others stay
at its close): a client that aggregates 5-second bars to the bar size gets the bar back.

Faults (:mod:`tradeloop.testing.ib.faults`) disturb delivery, never the venue's truth. The server
listens on a loopback address only and stops by itself ``linger`` seconds after the replay ends
and ``max_seconds`` after it started. :class:`IBServerThread` runs one in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from tradeloop.data.feed import BarFeed
from tradeloop.errors import ConfigError, EngineError
from tradeloop.execution.asynchronous.sources import ReplayBarSource
from tradeloop.execution.types import Bar
from tradeloop.testing.ib import wire
from tradeloop.testing.ib.faults import IBFaultPlan
from tradeloop.testing.ib.venue import IBVenue, VenueEvent
from tradeloop.testing.replay import ReplayLifecycle
from tradeloop.testing.thread import ServerThread

__all__ = ["SUPPORTED_VERSIONS", "IBServer", "IBServerThread"]

log = logging.getLogger("tradeloop.testing.ib")

SUPPORTED_VERSIONS = (157, 178)
_SECOND = 1_000_000_000
T = TypeVar("T")


def _check_loopback(host: str) -> None:
    import ipaddress

    if host == "localhost":
        return
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError("host", host, "the test server listens on a loopback address only")


class _Conn:
    """One API client connection."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.version = 0
        self.client_id: int | None = None
        self.subs: dict[int, str] = {}  # reqId -> symbol of real-time bars
        self.closed = False
        self.frames = 0

    def send(self, fields: list[wire.Field]) -> None:
        if not self.closed:
            self.frames += 1
            self.writer.write(wire.encode(fields))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self.writer.close()


class IBServer(ReplayLifecycle):
    """A loopback TWS replaying ``data`` (see the module docstring).

    ``data``: a :class:`BarFeed` or ``sample:minute``/``sample:daily``/a bar file. ``speed``:
    replay pace (``0``: only :meth:`step` advances). ``bar_seconds``: the replayed bars' length.
    ``versions``: server versions it may answer (the highest the client accepts). ``faults``:
    an :class:`IBFaultPlan`. ``wait_for_subscriber``: a paced replay starts once a client asked
    for real-time bars.
    """

    def __init__(
        self,
        data: BarFeed | str | os.PathLike[str],
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        speed: float = 0.0,
        bar_seconds: int = 60,
        slots: int = 1,
        account: str = "DU1234567",
        initial_cash: float = 100_000.0,
        versions: Iterable[int] = SUPPORTED_VERSIONS,
        linger: float | None = 30.0,
        max_seconds: float | None = None,
        max_sleep: float = 1.0,
        wait_for_subscriber: bool = True,
        faults: IBFaultPlan | None = None,
    ) -> None:
        _check_loopback(host)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError("port", port, "must be an integer in 0..65535 (0: the OS picks)")
        if not speed >= 0:
            raise ConfigError("speed", speed, "must be >= 0")
        if not (isinstance(bar_seconds, int) and bar_seconds >= 5 and bar_seconds % 5 == 0):
            raise ConfigError("bar_seconds", bar_seconds, "must be a multiple of 5 seconds")
        if not 1 <= slots <= bar_seconds // 5:
            raise ConfigError("slots", slots, f"must be 1..{bar_seconds // 5}")
        if isinstance(data, str | os.PathLike):
            from tradeloop.testing.alpaca.server import load_data

            data = load_data(data)
        self.feed = data
        self.host = host
        self.speed = float(speed)
        self.bar_seconds = bar_seconds
        self.slots = slots
        self.versions = tuple(sorted(versions))
        self._init_lifecycle(linger, wait_for_subscriber)
        self.max_seconds = max_seconds
        self.faults = faults
        self.source = ReplayBarSource(data, speed=speed, max_sleep=max_sleep)
        self._total = len(data)
        self.venue = IBVenue(
            symbols=data.symbols,
            initial_cash=initial_cash,
            account=account,
            start=data.start - _SECOND,
            on_event=self._route,
        )
        self._port = port
        self.connections: list[_Conn] = []
        self.accepted = 0
        self._refuse_until = 0.0
        self._bars: AsyncIterator[Bar] | None = None
        self._lock = asyncio.Lock()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._replay_task: asyncio.Task[None] | None = None
        self._subscribed_event = asyncio.Event()

    @property
    def port(self) -> int:
        return self._port

    def __repr__(self) -> str:
        return f"IBServer({self.host}:{self._port}, speed={self.speed:g})"

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None or self._stopping:
            raise EngineError("IBServer: a server starts once")
        loop = asyncio.get_running_loop()
        self._bars = aiter(self.source.bars())
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self._port)
        except OSError as exc:
            raise ConfigError("port", self._port, f"cannot listen on {self.host}: {exc}") from None
        self._port = int(self._server.sockets[0].getsockname()[1])
        if self.speed > 0:
            self._replay_task = loop.create_task(self._replay(), name="ib-server-replay")
        if self.max_seconds is not None:
            self._timers.append(loop.call_later(self.max_seconds, self.request_stop))
        log.info("IB loopback server listening on %s:%d", self.host, self._port)

    async def stop(self) -> None:
        """Stop the replay, close every connection, stop listening. Safe to call twice."""
        if self._stopping or self._server is None:
            if self._server is None and not self._stopping:
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
            self._server.close()
            for conn in list(self.connections):
                conn.close()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            aclose = getattr(self._bars, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(RuntimeError):
                    await aclose()
            await self.source.close()
        finally:
            self._closed.set()
            log.info("IB loopback server stopped")

    def _subscribed(self) -> asyncio.Event:
        return self._subscribed_event

    def _end_of_data(self) -> None:
        self.venue.end_of_data()

    # -- the replay ----------------------------------------------------------------------------

    async def step(self, bars: int = 1) -> list[Bar]:
        """Play the next ``bars`` bars: match open orders, then send real-time bars."""
        if self._bars is None or self._stopping:
            raise EngineError("IBServer.step: the server is not running")
        played: list[Bar] = []
        async with self._lock:
            while len(played) < bars and not self.done:
                try:
                    bar = await anext(self._bars)
                except StopAsyncIteration:
                    self._finish()
                    break
                self._bar_faults()
                self.venue.on_bar(bar)
                self._publish(bar)
                played.append(bar)
                if self.venue.bars >= self._total:
                    self._finish()
            for conn in self.connections:  # let the loop write what piled up
                with contextlib.suppress(Exception):
                    await conn.writer.drain()
        return played

    def _publish(self, bar: Bar) -> None:
        start = bar.ts // _SECOND
        k = self.slots
        for conn in self.connections:
            for req_id, symbol in conn.subs.items():
                if symbol != bar.symbol:
                    continue
                for j in range(k):
                    t = start + self.bar_seconds - 5 * (k - j)
                    if j == 0:
                        o, h, lo, c, v = bar.open, bar.high, bar.low, bar.close, bar.volume
                    else:
                        o = h = lo = c = bar.close
                        v = 0.0
                    conn.send(wire.realtime_bar(req_id, t, o, h, lo, c, v))

    # -- faults --------------------------------------------------------------------------------

    def _bar_faults(self) -> None:
        plan = self.faults
        if plan is None:
            return
        loop = asyncio.get_running_loop()
        if plan.inject("restart"):
            self.restart(plan.restart_downtime)
        if plan.inject("connectivity"):
            self.connectivity_lost()
            self._timers.append(loop.call_later(plan.connectivity_gap, self.connectivity_restored))

    def drop_connections(self) -> int:
        """Close every client connection (as TWS going away would); returns how many."""
        n = 0
        for conn in list(self.connections):
            conn.close()
            n += 1
        return n

    def restart(self, downtime: float) -> int:
        """Close every connection and refuse new ones for ``downtime`` seconds."""
        self._refuse_until = time.monotonic() + downtime
        return self.drop_connections()

    def _broadcast_error(self, code: int, text: str) -> None:
        for conn in self.connections:
            if conn.client_id is not None:
                conn.send(wire.error(conn.version, -1, code, text))

    def connectivity_lost(self) -> None:
        self._broadcast_error(1100, "Connectivity between IB and Trader Workstation has been lost.")

    def connectivity_restored(self) -> None:
        self._broadcast_error(
            1102,
            "Connectivity between IB and Trader Workstation has been restored - data maintained.",
        )

    # -- connections ---------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = _Conn(writer)
        try:
            if self._stopping or time.monotonic() < self._refuse_until:
                conn.close()
                return
            self.connections.append(conn)
            self.accepted += 1
            buf = wire.FrameBuffer()
            while not conn.closed:
                data = await reader.read(65536)
                if not data:
                    break
                try:
                    messages = buf.feed(data)
                except ValueError as exc:
                    log.warning("IB server: closing a connection: %s", exc)
                    break
                for fields in messages:
                    self._handle(conn, fields)
                    if conn.closed:
                        break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            conn.close()
            if conn in self.connections:
                self.connections.remove(conn)
            self._tasks.discard(task)

    def _handle(self, conn: _Conn, f: list[str]) -> None:
        if conn.version == 0:
            version = wire.negotiate(f, self.versions)
            if version is None:
                conn.close()
                return
            conn.version = version
            stamp = datetime.now(UTC).strftime("%Y%m%d %H:%M:%S UTC")
            conn.send(wire.handshake_reply(version, stamp))
            return
        if not f:
            return
        msg = f[0]
        try:
            handler = _HANDLERS.get(msg)
            if conn.client_id is None and msg != "71":
                return  # nothing before START_API
            if handler is not None:
                handler(self, conn, f)
        except (ValueError, IndexError) as exc:
            log.warning("IB server: malformed message %s ignored: %s", msg, exc)

    def _start_api(self, conn: _Conn, f: list[str]) -> None:
        client_id = int(f[2])
        if any(c.client_id == client_id for c in self.connections if c is not conn):
            conn.send(
                wire.error(
                    conn.version,
                    -1,
                    326,
                    "Unable to connect as the client id is already in use. "
                    "Retry with a unique client id.",
                )
            )
            conn.close()
            return
        conn.client_id = client_id
        conn.send(wire.managed_accounts([self.venue.account]))
        conn.send(wire.next_valid_id(self.venue.next_order_id(client_id)))
        for code, text in (
            (2104, "Market data farm connection is OK:usfarm"),
            (2106, "HMDS data farm connection is OK:ushmds"),
            (2158, "Sec-def data farm connection is OK:secdefnj"),
        ):
            conn.send(wire.error(conn.version, -1, code, text))

    def _positions(self, conn: _Conn, f: list[str]) -> None:
        from tradeloop.testing.ib.venue import con_id

        for symbol, qty, avg in self.venue.positions():
            conn.send(wire.position(self.venue.account, con_id(symbol), symbol, qty, avg))
        conn.send(wire.position_end())

    def _open_orders(self, conn: _Conn, f: list[str]) -> None:
        assert conn.client_id is not None
        for w in self.venue.open_orders(conn.client_id):
            conn.send(wire.open_order(conn.version, w))
            conn.send(wire.order_status(w))
        conn.send(wire.open_order_end())

    def _completed_orders(self, conn: _Conn, f: list[str]) -> None:
        for w in self.venue.completed_orders():
            conn.send(wire.completed_order(conn.version, w))
        conn.send(wire.completed_orders_end())

    def _account_updates(self, conn: _Conn, f: list[str]) -> None:
        if len(f) > 2 and f[2] in ("0", "False", "false"):
            return
        acct = self.venue.account
        for tag, value in self.venue.summary().items():
            conn.send([6, 2, tag, f"{value:.2f}", "USD", acct])
        conn.send([8, 1, datetime.now(UTC).strftime("%H:%M")])
        conn.send([54, 1, acct])

    def _account_updates_multi(self, conn: _Conn, f: list[str]) -> None:
        req_id = int(f[2])
        acct = self.venue.account
        for tag, value in self.venue.summary().items():
            conn.send([73, 1, req_id, acct, "", tag, f"{value:.2f}", "USD"])
        conn.send([74, 1, req_id])

    def _executions(self, conn: _Conn, f: list[str]) -> None:
        req_id = int(f[2])
        wanted = int(f[3] or 0) if len(f) > 3 else 0
        for w, ex in self.venue.executions_of(wanted):
            conn.send(_exec_frame(conn.version, req_id, w, ex))
            conn.send(wire.commission_report(ex["exec_id"], ex["commission"]))
        conn.send(wire.exec_details_end(req_id))

    def _place(self, conn: _Conn, f: list[str]) -> None:
        assert conn.client_id is not None
        req = wire.parse_place_order(f)
        client_id = conn.client_id
        plan = self.faults
        if plan is not None and plan.inject("reject"):
            conn.send(
                wire.error(
                    conn.version, req.order_id, 201, "Order rejected - reason:loopback fault"
                )
            )
            return
        if plan is not None and plan.inject("delay"):
            loop = asyncio.get_running_loop()
            self._timers.append(
                loop.call_later(plan.delay_seconds, self.venue.place, client_id, req)
            )
            return
        self.venue.place(client_id, req)

    def _cancel(self, conn: _Conn, f: list[str]) -> None:
        assert conn.client_id is not None
        self.venue.cancel(conn.client_id, wire.parse_cancel(f))

    def _req_ids(self, conn: _Conn, f: list[str]) -> None:
        assert conn.client_id is not None
        conn.send(wire.next_valid_id(self.venue.next_order_id(conn.client_id)))

    def _current_time(self, conn: _Conn, f: list[str]) -> None:
        conn.send(wire.current_time(self.venue.now // _SECOND))

    def _account_summary(self, conn: _Conn, f: list[str]) -> None:
        req_id = int(f[2])
        acct = self.venue.account
        for tag, value in self.venue.summary().items():
            conn.send(wire.account_summary(req_id, acct, tag, f"{value:.2f}"))
        conn.send(wire.account_summary_end(req_id))

    def _realtime_bars(self, conn: _Conn, f: list[str]) -> None:
        req_id, symbol, _size = wire.parse_realtime_bars(f)
        conn.subs[req_id] = symbol
        self._subscribed_event.set()

    def _cancel_realtime_bars(self, conn: _Conn, f: list[str]) -> None:
        conn.subs.pop(int(f[2]), None)

    def _global_cancel(self, conn: _Conn, f: list[str]) -> None:
        self.venue.global_cancel()

    # -- venue events to connections -----------------------------------------------------------

    def _route(self, ev: VenueEvent) -> None:
        for conn in list(self.connections):
            if conn.client_id != ev.client_id or conn.closed:
                continue
            w = ev.order
            if ev.kind == "open_order" and w is not None:
                conn.send(wire.open_order(conn.version, w))
            elif ev.kind == "order_status" and w is not None:
                conn.send(wire.order_status(w))
            elif ev.kind == "execution" and w is not None:
                if self.faults is not None and self.faults.inject("drop_connection"):
                    conn.close()  # the execution is lost on this socket
                    continue
                conn.send(_exec_frame(conn.version, -1, w, ev.extra))
            elif ev.kind == "commission":
                conn.send(wire.commission_report(ev.extra["exec_id"], ev.extra["commission"]))
            elif ev.kind == "error":
                x = ev.extra
                conn.send(wire.error(conn.version, x["req_id"], x["code"], x["text"]))

    # -- for tests -----------------------------------------------------------------------------

    async def wait_for_client(self, symbols: Iterable[str] = (), timeout: float = 15.0) -> None:
        """Wait until an API client is connected and subscribed to the bars of ``symbols``."""
        wanted = set(symbols)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            ready = [c for c in self.connections if c.client_id is not None]
            subscribed = {s for c in ready for s in c.subs.values()}
            if ready and wanted <= subscribed:
                return
            if loop.time() >= deadline:
                raise EngineError(f"IBServer: no client for {sorted(wanted - subscribed)}")
            await asyncio.sleep(0.01)

    def state(self) -> dict[str, Any]:
        out = self.venue.state()
        out["done"] = self.done
        out["connections"] = [
            {"client_id": c.client_id, "version": c.version, "bars": sorted(c.subs.values())}
            for c in self.connections
        ]
        out["faults"] = dict(self.faults.counts) if self.faults is not None else {}
        return out


def _exec_frame(
    version: int, req_id: int, w: wire.WireOrder, ex: dict[str, Any]
) -> list[wire.Field]:
    return wire.exec_details(
        version,
        req_id,
        w,
        exec_id=ex["exec_id"],
        ts_ns=ex["ts"],
        shares=ex["shares"],
        price=ex["price"],
        cum_qty=ex["cum_qty"],
        avg_price=ex["avg_price"],
    )


_HANDLERS: dict[str, Callable[[IBServer, _Conn, list[str]], None]] = {
    "71": IBServer._start_api,
    "61": IBServer._positions,
    "5": IBServer._open_orders,
    "16": IBServer._open_orders,
    "99": IBServer._completed_orders,
    "6": IBServer._account_updates,
    "76": IBServer._account_updates_multi,
    "7": IBServer._executions,
    "3": IBServer._place,
    "4": IBServer._cancel,
    "8": IBServer._req_ids,
    "49": IBServer._current_time,
    "62": IBServer._account_summary,
    "50": IBServer._realtime_bars,
    "51": IBServer._cancel_realtime_bars,
    "58": IBServer._global_cancel,
}


class IBServerThread(ServerThread["IBServer"]):
    """An :class:`IBServer` on its own event loop in a background thread (for synchronous code
    such as the chaos run). ``options`` are :class:`IBServer`'s."""

    def __init__(self, data: BarFeed | str, **options: Any) -> None:
        super().__init__(IBServer(data, **options), "tradeloop-ib-server")

    @property
    def port(self) -> int:
        return self.server.port
