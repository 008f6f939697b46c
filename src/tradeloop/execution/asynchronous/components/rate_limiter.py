"""The asynchronous shell around :class:`~tradeloop.execution.core.ratelimit.RollingWindow`.

It owns the clocks and the sleeping; the window math lives in the pure core. A broker calls
:meth:`RateLimiter.acquire` before every REST request, :meth:`RateLimiter.update` with every
response's headers, and :meth:`RateLimiter.on_429` when the server says "too many requests".
The limiter never retries anything itself: whether a request may be sent again (a GET may, an
order POST only with its same client_order_id) is the caller's decision.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping

from tradeloop.errors import ConfigError
from tradeloop.execution.core.ratelimit import RollingWindow, parse_ratelimit_headers

__all__ = ["DEFAULT_429_JITTER", "DEFAULT_429_WAIT", "RateLimiter"]

#: Seconds to block after a 429 that carries no usable ``X-Ratelimit-Reset`` header.
DEFAULT_429_WAIT = 1.0
#: Upper bound of the random extra wait added after a 429, so clients sharing a key spread out.
DEFAULT_429_JITTER = 1.0


def _seconds(field: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value >= 0)
    ):
        raise ConfigError(field, value, "must be a finite number of seconds >= 0")
    return float(value)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """A ``Retry-After`` given in seconds, if present and sane."""
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == "retry-after" and isinstance(value, str):
            try:
                seconds = float(value.strip())
            except ValueError:
                return None
            return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None


class RateLimiter:
    """Waits as a rolling window says before each request; learns from the server's headers.

    ``limit`` requests in any ``window`` seconds (Alpaca: 200 a minute per key). ``clock`` is the
    monotonic clock the window runs on and ``sleep`` the coroutine that waits on it; ``wall``
    gives epoch seconds, used only to turn the ``X-Ratelimit-Reset`` header (an epoch time) into
    a ``clock`` time. Tests pass a fake clock whose ``sleep`` advances it. ``rng`` draws the
    jitter added after a 429.

    Stats: :attr:`requests` (acquired slots), :attr:`throttled` (429s seen) and
    :attr:`waited_seconds` (time spent sleeping in :meth:`acquire`).
    """

    __slots__ = (
        "_clock",
        "_default_wait",
        "_jitter",
        "_lock",
        "_requests",
        "_rng",
        "_sleep",
        "_throttled",
        "_waited",
        "_wall",
        "_window",
    )

    def __init__(
        self,
        limit: int = 200,
        window: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: random.Random | None = None,
        default_429_wait: float = DEFAULT_429_WAIT,
        jitter_429: float = DEFAULT_429_JITTER,
    ) -> None:
        self._window = RollingWindow(limit, window)
        for name, fn in (("clock", clock), ("wall", wall), ("sleep", sleep)):
            if not callable(fn):
                raise ConfigError(name, fn, "must be callable")
        if rng is not None and not isinstance(rng, random.Random):
            raise ConfigError("rng", rng, "must be a random.Random")
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._default_wait = _seconds("default_429_wait", default_429_wait)
        self._jitter = _seconds("jitter_429", jitter_429)
        self._lock = asyncio.Lock()
        self._requests = 0
        self._throttled = 0
        self._waited = 0.0

    # ------------------------------------------------------------------------------ stats

    @property
    def requests(self) -> int:
        """How many requests :meth:`acquire` let through."""
        return self._requests

    @property
    def throttled(self) -> int:
        """How many 429 responses were reported through :meth:`on_429`."""
        return self._throttled

    @property
    def waited_seconds(self) -> float:
        """Total time :meth:`acquire` spent sleeping (on ``clock``)."""
        return self._waited

    @property
    def window(self) -> RollingWindow:
        """The pure window state (read it; change it only through this limiter)."""
        return self._window

    # ------------------------------------------------------------------------------ the gate

    async def acquire(self) -> None:
        """Wait until a request may be sent, then count it as sent.

        Callers queue in order behind one lock, so two of them never take the last slot. A
        correction arriving while one sleeps is honoured: it re-checks after every sleep.
        Cancelled while waiting, it counts nothing.
        """
        async with self._lock:
            while True:
                now = self._clock()
                wait = self._window.delay(now)
                if wait <= 0.0:
                    break
                await self._sleep(wait)
                self._waited += max(self._clock() - now, 0.0)
            self._window.record(self._clock())
            self._requests += 1

    def _to_clock(self, epoch: float, now: float) -> float:
        """An epoch time as a ``clock`` time, at most one window from ``now``.

        The cap guards against garbage (a reset in milliseconds, a far-off wall clock): no
        rolling window of ``window`` seconds can need a longer wait.
        """
        at = now + (epoch - self._wall())
        return min(at, now + self._window.window)

    def update(self, headers: Mapping[str, str]) -> None:
        """Correct the window from a response's ``X-Ratelimit-*`` headers (missing ones: no-op)."""
        limit, remaining, reset_epoch = parse_ratelimit_headers(headers)
        if limit is None and remaining is None:
            return
        now = self._clock()
        reset_at = None if reset_epoch is None else self._to_clock(reset_epoch, now)
        self._window.correct(now, limit=limit, remaining=remaining, reset_at=reset_at)

    async def on_429(self, headers: Mapping[str, str]) -> float:
        """A request got 429: block every caller until the reset, plus jitter; return the wait.

        The reset comes from ``X-Ratelimit-Reset`` (or ``Retry-After`` in seconds); without a
        usable one the block lasts ``default_429_wait``. Jitter is uniform in
        ``[0, jitter_429]``. This does not sleep and does not retry: the next :meth:`acquire`
        waits out the block, and the caller decides whether the request may be sent again.
        """
        self._throttled += 1
        now = self._clock()
        limit, remaining, reset_epoch = parse_ratelimit_headers(headers)
        until: float | None = None
        if reset_epoch is not None:
            until = self._to_clock(reset_epoch, now)
        else:
            retry_after = _retry_after(headers)
            if retry_after is not None:
                until = now + min(retry_after, self._window.window)
        if until is None or until <= now:
            until = now + self._default_wait
        self._window.correct(now, limit=limit, remaining=remaining, reset_at=until)
        until += self._rng.uniform(0.0, self._jitter)
        self._window.block_until(until)
        return until - now

    def __repr__(self) -> str:
        return (
            f"RateLimiter(limit={self._window.limit}, window={self._window.window}, "
            f"requests={self._requests}, throttled={self._throttled})"
        )
