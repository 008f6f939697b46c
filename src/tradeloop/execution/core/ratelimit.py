"""Rolling-window request budget: the arithmetic of a rate limit, with no I/O and no clock.

Alpaca allows 200 requests a minute per API key and reports its own count in the
``X-Ratelimit-Limit`` / ``X-Ratelimit-Remaining`` / ``X-Ratelimit-Reset`` response headers.
:class:`RollingWindow` keeps the send times of our own requests and answers "how long until the
next one may go?"; the server's headers correct it whenever the server is stricter than our own
count (other clients sharing the key use the same budget). A token bucket would allow bursts
that break a strict per-window limit, so this is a true rolling window: at most ``limit``
requests in *any* ``window`` seconds.

Every method takes ``now`` from the caller's clock (any monotonic clock, in seconds); the async
shell (:class:`~tradeloop.execution.asynchronous.components.rate_limiter.RateLimiter`) owns the
clock and the sleeping.
"""

from __future__ import annotations

import math
from bisect import insort
from collections import deque
from collections.abc import Mapping

from tradeloop.errors import ConfigError

__all__ = ["TIME_TOLERANCE", "RollingWindow", "parse_ratelimit_headers"]

#: Two instants closer than this (seconds) count as equal. It absorbs float rounding in
#: ``now + delay(now)``, so that waiting exactly :meth:`RollingWindow.delay` always suffices.
TIME_TOLERANCE = 1e-9

#: Two ``reset_at`` values within this many seconds belong to the same server window (the header
#: has whole-second resolution and its conversion to a monotonic clock jitters a little).
_SAME_PERIOD = 1.0

_HEADER_LIMIT = "x-ratelimit-limit"
_HEADER_REMAINING = "x-ratelimit-remaining"
_HEADER_RESET = "x-ratelimit-reset"


def _check_time(field: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(field, value, "must be a finite number of seconds")
    return float(value)


def _check_count(field: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(field, value, f"must be an integer >= {minimum}")
    return value


class RollingWindow:
    """At most ``limit`` requests in any ``window`` seconds, corrected by the server's view.

    A request recorded at ``t`` holds one slot until ``t + window``. On top of our own count the
    window keeps two stricter constraints it may learn of:

    * the server's budget (:meth:`correct`): ``remaining`` more requests until ``reset_at``, and
      a server ``limit`` below ours;
    * a block (:meth:`block_until`, after a 429): nothing at all before a given instant.

    :meth:`delay` is the wait that satisfies all of them, and never more.
    """

    __slots__ = (
        "_blocked_until",
        "_configured_limit",
        "_recorded",
        "_sent",
        "_server_limit",
        "_server_remaining",
        "_server_reset_at",
        "_window",
    )

    def __init__(self, limit: int = 200, window: float = 60.0) -> None:
        self._configured_limit = _check_count("limit", limit, 1)
        if (
            isinstance(window, bool)
            or not isinstance(window, int | float)
            or not (math.isfinite(window) and window > 0)
        ):
            raise ConfigError("window", window, "must be a finite number of seconds > 0")
        self._window = float(window)
        self._sent: deque[float] = deque()  # send times still inside the window, ascending
        self._recorded = 0
        self._blocked_until: float | None = None
        self._server_limit: int | None = None
        self._server_remaining: int | None = None
        self._server_reset_at: float | None = None

    # ------------------------------------------------------------------------------ stats

    @property
    def limit(self) -> int:
        """The limit in force: ours, or the server's when it reported a lower one."""
        if self._server_limit is not None and self._server_limit < self._configured_limit:
            return self._server_limit
        return self._configured_limit

    @property
    def configured_limit(self) -> int:
        """The ``limit`` this window was built with."""
        return self._configured_limit

    @property
    def window(self) -> float:
        """The window's length in seconds."""
        return self._window

    @property
    def recorded(self) -> int:
        """How many requests were recorded in total."""
        return self._recorded

    @property
    def blocked_until(self) -> float | None:
        """The latest instant passed to :meth:`block_until` (``None`` if never blocked)."""
        return self._blocked_until

    @property
    def server_limit(self) -> int | None:
        """The last limit the server reported, if any."""
        return self._server_limit

    @property
    def server_remaining(self) -> int | None:
        """Requests the server still allows before :attr:`server_reset_at` (our best estimate:
        the server's last figure, lowered by each request recorded since), or ``None``."""
        return self._server_remaining

    @property
    def server_reset_at(self) -> float | None:
        """When the server's budget resets (on the caller's clock), or ``None``."""
        return self._server_reset_at

    def used(self, now: float) -> int:
        """How many of our own requests still hold a slot at ``now``."""
        self._prune(_check_time("now", now))
        return len(self._sent)

    # ------------------------------------------------------------------------------ the budget

    def _prune(self, now: float) -> None:
        horizon = now - self._window + TIME_TOLERANCE
        sent = self._sent
        while sent and sent[0] <= horizon:
            sent.popleft()
        if self._server_reset_at is not None and now >= self._server_reset_at - TIME_TOLERANCE:
            self._server_remaining = None  # the server's window is over: its budget is back
            self._server_reset_at = None

    def delay(self, now: float) -> float:
        """Seconds to wait from ``now`` before the next request may be sent (0.0: send now)."""
        now = _check_time("now", now)
        self._prune(now)
        wait = 0.0
        if self._blocked_until is not None:
            wait = self._blocked_until - now
        limit = self.limit
        if len(self._sent) >= limit:
            wait = max(wait, self._sent[-limit] + self._window - now)
        if (
            self._server_remaining is not None
            and self._server_reset_at is not None
            and self._server_remaining <= 0
        ):
            wait = max(wait, self._server_reset_at - now)
        return wait if wait > TIME_TOLERANCE else 0.0

    def record(self, now: float) -> None:
        """A request was sent at ``now``: it holds a slot until ``now + window``."""
        now = _check_time("now", now)
        sent = self._sent
        if not sent or now >= sent[-1]:
            sent.append(now)
        else:  # a clock that stepped back a little: keep the deque sorted
            insort(sent, now)
        while len(sent) > self._configured_limit:  # older entries can never matter again
            sent.popleft()
        self._recorded += 1
        if self._server_remaining is not None and self._server_reset_at is not None:
            if now < self._server_reset_at:
                self._server_remaining = max(self._server_remaining - 1, 0)
            else:
                self._server_remaining = None
                self._server_reset_at = None

    def correct(
        self,
        now: float,
        limit: int | None = None,
        remaining: int | None = None,
        reset_at: float | None = None,
    ) -> None:
        """Correct the budget from the server's ``X-Ratelimit-*`` headers, received at ``now``.

        ``reset_at`` must already be on the caller's clock (the shell converts the header's epoch
        seconds). The server wins where it is stricter: a ``limit`` below ours lowers the limit
        in force; ``remaining`` caps how many more requests go before ``reset_at`` (``0`` means
        none, whatever our own count says). Within one server window (resets within a second of
        each other) the lower ``remaining`` wins, since a response can be older than requests sent
        since; an answer about another window (a later one, or a short 429 burst ending sooner)
        replaces it: merging them would block until the later reset with nothing remaining.
        ``remaining`` without ``reset_at`` is taken to hold for one ``window`` from ``now``;
        ``reset_at`` alone, or one already past, teaches nothing.
        """
        now = _check_time("now", now)
        if limit is not None:
            self._server_limit = _check_count("limit", limit, 1)
        if remaining is not None:
            remaining = _check_count("remaining", remaining, 0)
        reset = now + self._window if reset_at is None else _check_time("reset_at", reset_at)
        self._prune(now)
        if remaining is None or reset <= now + TIME_TOLERANCE:
            return
        current_reset = self._server_reset_at
        if (
            self._server_remaining is None
            or current_reset is None
            or abs(reset - current_reset) > _SAME_PERIOD  # another window: the latest word
        ):
            self._server_remaining = remaining
            self._server_reset_at = reset
        else:
            self._server_remaining = min(self._server_remaining, remaining)
            self._server_reset_at = max(current_reset, reset)

    def block_until(self, t: float) -> None:
        """Send nothing before ``t`` (after a 429). An earlier block never shortens a later one."""
        t = _check_time("t", t)
        if self._blocked_until is None or t > self._blocked_until:
            self._blocked_until = t

    def __repr__(self) -> str:
        return (
            f"RollingWindow(limit={self.limit}, window={self._window}, "
            f"recorded={self._recorded}, server_remaining={self._server_remaining})"
        )


# ------------------------------------------------------------------------------------- headers


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        for key, item in headers.items():
            if isinstance(key, str) and key.lower() == name:
                value = item
                break
    if not isinstance(value, str):
        return None
    return value.split(",", 1)[0].strip()  # a repeated header may arrive comma-joined


def _number(text: str | None) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _count(text: str | None, minimum: int) -> int | None:
    value = _number(text)
    if value is None or not value.is_integer() or value < minimum:
        return None
    return int(value)


def parse_ratelimit_headers(
    headers: Mapping[str, str],
) -> tuple[int | None, int | None, float | None]:
    """``(limit, remaining, reset_epoch_seconds)`` from Alpaca's ``X-Ratelimit-*`` headers.

    Header names match case-insensitively. Each value that is missing or unusable comes back as
    ``None``: a limit must be a whole number >= 1, remaining a whole number >= 0, the reset a
    finite epoch time > 0. Never raises.
    """
    limit = _count(_header(headers, _HEADER_LIMIT), 1)
    remaining = _count(_header(headers, _HEADER_REMAINING), 0)
    reset = _number(_header(headers, _HEADER_RESET))
    if reset is not None and reset <= 0:
        reset = None
    return limit, remaining, reset
