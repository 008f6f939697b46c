"""The replay lifecycle the loopback venue servers share (Alpaca, Binance, IB).

Each server replays bars into its venue (a :class:`SimulatedExchange` behind the venue's wire
protocol): :meth:`ReplayLifecycle._replay` steps it bar by bar once a client subscribed (if the
server waits for one) until the data ends; then the market closes and the server lingers for
``linger`` seconds before it stops by itself. The wire protocol, ``step``, ``start`` and ``stop``
are each server's own.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any, Self

__all__ = ["ReplayLifecycle"]

log = logging.getLogger(__name__)


class ReplayLifecycle:
    """Mixin: the replay loop, the end of the data, stopping by itself, ``async with``.

    A server calls :meth:`_init_lifecycle` in its constructor and provides ``start``, ``stop``,
    ``step``, :meth:`_subscribed` (the event a client's subscription sets) and
    :meth:`_end_of_data` (the venue's market close).
    """

    done: bool
    linger: float | None
    wait_for_subscriber: bool
    _stopping: bool
    _stop_task: asyncio.Task[None] | None
    _timers: list[asyncio.TimerHandle]
    _closed: asyncio.Event

    def _init_lifecycle(self, linger: float | None, wait_for_subscriber: bool) -> None:
        self.done = False
        self.linger = linger
        self.wait_for_subscriber = wait_for_subscriber
        self._stopping = False
        self._stop_task = None
        self._timers = []
        self._closed = asyncio.Event()

    # -- what each server provides ------------------------------------------------------------

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def step(self, bars: int = 1) -> Any:
        raise NotImplementedError

    def _subscribed(self) -> asyncio.Event:
        raise NotImplementedError

    def _end_of_data(self) -> None:
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def request_stop(self) -> None:
        """Ask the server to stop, from a callback, a signal handler or another task."""
        if not self._stopping and self._stop_task is None:
            self._stop_task = asyncio.get_running_loop().create_task(self.stop())

    async def _replay(self) -> None:
        try:
            if self.wait_for_subscriber:
                await self._subscribed().wait()
            while not self.done:
                await self.step(1)
        except Exception:
            log.exception("the replay failed; ending it")
            self._finish()

    def _finish(self) -> None:
        """The replay is over: the market closes, and the server lingers, then stops."""
        if self.done:
            return
        self.done = True
        self._end_of_data()
        if self.linger is not None and not self._stopping:
            loop = asyncio.get_running_loop()
            self._timers.append(loop.call_later(self.linger, self.request_stop))

    async def wait_closed(self) -> None:
        """Wait until the server has stopped (by ``stop``, ``linger`` or ``max_seconds``)."""
        await self._closed.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
