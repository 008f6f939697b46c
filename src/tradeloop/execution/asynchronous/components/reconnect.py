"""The reconnect loop of a broker that owns a socket itself (IB's TWS connection).

:class:`~tradeloop.execution.asynchronous.components.connection.ManagedStream` keeps WebSocket
streams alive; a broker whose client library has no reconnect of its own (ib_async) uses this
loop instead, with the same policy: close the old connection *before* opening a new one
(the caller's ``open`` does), exponential backoff with jitter between attempts
(:class:`~tradeloop.execution.core.backoff.Backoff`), stop for good on a fatal error, reset the
backoff once a connection works.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from tradeloop.execution.core.backoff import Backoff

__all__ = ["reconnect_with_backoff"]

log = logging.getLogger("tradeloop.live")


async def reconnect_with_backoff(
    open: Callable[[], Awaitable[None]],
    *,
    name: str,
    backoff: Backoff,
    closing: Callable[[], bool],
    fatal: tuple[type[BaseException], ...] = (),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_attempts: int | None = None,
) -> bool:
    """Call ``open`` after each backoff delay until it succeeds (``True``), ``closing()`` says
    stop, ``max_attempts`` failed or ``open`` raises one of ``fatal`` (``False``)."""
    attempts = 0
    while not closing():
        await sleep(backoff.next_delay())
        if closing():
            return False
        attempts += 1
        try:
            await open()
        except asyncio.CancelledError:
            raise
        except fatal as exc:
            log.error("%s: %s; not retrying", name, exc)
            return False
        except Exception as exc:  # anything a broken peer can cause: keep trying
            log.warning("%s: reconnect attempt %d failed: %s", name, attempts, exc)
            if max_attempts is not None and attempts >= max_attempts:
                return False
            continue
        backoff.reset()
        return True
    return False
