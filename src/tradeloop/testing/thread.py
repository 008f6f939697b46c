"""A loopback server on its own event loop in a background thread, for synchronous code.

The Alpaca, Binance and IB test servers are asyncio servers; a blocking client, a test or a chaos
run drives them from plain code through a :class:`ServerThread`: ``start()`` waits until the
server listens, ``call()`` runs a coroutine on the server's loop, ``stop()`` stops the server and
joins the thread (raising if it does not end in time). A server starts once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from tradeloop.errors import EngineError

__all__ = ["LoopbackServer", "ServerThread"]

T = TypeVar("T")


class LoopbackServer(Protocol):
    """What :class:`ServerThread` needs of a server."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def wait_closed(self) -> None: ...

    def state(self) -> Any: ...


S = TypeVar("S", bound=LoopbackServer)


class ServerThread(Generic[S]):
    """``server`` on its own event loop in a daemon thread named ``name``."""

    def __init__(self, server: S, name: str) -> None:
        self.server = server
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def start(self, timeout: float = 10.0) -> Self:
        """Start the thread and wait until the server listens."""
        if self._thread is not None:
            raise EngineError(f"{type(self).__name__}: a server starts once")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise EngineError(f"{type(self).__name__}: the server did not start in {timeout:g} s")
        if self._error is not None:
            self._thread.join(timeout)
            raise self._error
        return self

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            try:
                await self.server.start()
            except BaseException as exc:
                self._error = exc
                return
            finally:
                self._ready.set()
            await self.server.wait_closed()

        asyncio.run(main())

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        """Run ``make()`` on the server's loop and wait for its result."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise EngineError(f"{type(self).__name__}: the server is not running")

        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    def state(self, timeout: float = 30.0) -> Any:
        """The server's ``state()``, read on its loop."""

        async def read() -> Any:
            return self.server.state()

        return self.call(read, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and join the thread (raises if it does not end in ``timeout``)."""
        thread = self._thread
        if thread is None:
            return
        loop = self._loop
        if thread.is_alive() and loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: it stopped
                future = asyncio.run_coroutine_threadsafe(self.server.stop(), loop)
                with contextlib.suppress(Exception):
                    future.result(timeout)
        thread.join(timeout)
        if thread.is_alive():
            raise EngineError(
                f"{type(self).__name__}: the server thread did not end in {timeout:g} s"
            )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
