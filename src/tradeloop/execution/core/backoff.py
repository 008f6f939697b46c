"""Reconnect schedules: exponential backoff with jitter, and what a stream failure calls for.

Pure: :class:`Backoff` only computes delays (the caller sleeps), and :func:`after_close` only
classifies a failure. The rules come from other systems' failures (see ``live-rules.md``,
"Streams"): a client that reconnects every 10 ms with no backoff gets 429s; Alpaca allows one
stream connection per key and answers a second with 406 while the old socket lingers for about
90 s; bad keys (401/402) and a missing subscription (409) never get better by retrying.
"""

from __future__ import annotations

import math
import random
from typing import Final, Literal

from tradeloop.errors import ConfigError

__all__ = [
    "CONNECTION_LIMIT_WAIT",
    "MESSAGE_CODES",
    "Backoff",
    "CloseAction",
    "after_close",
]

#: Seconds to wait after a 406 "connection limit exceeded": the previous socket of this key
#: lingers at Alpaca for about 90 s before a new connection is accepted.
CONNECTION_LIMIT_WAIT: Final = 90.0

CloseAction = Literal["fatal", "retry", "wait_long"]
"""What a stream failure calls for: give up, reconnect after a backoff, or wait out 406."""

_FATAL_CODES: Final = frozenset({401, 402, 409})
_WAIT_LONG_CODES: Final = frozenset({406})

# The messages Alpaca's data stream sends with those codes ({"T":"error","code":N,"msg":...}).
MESSAGE_CODES: Final = {
    "not authenticated": 401,
    "unauthorized": 401,
    "auth failed": 402,
    "connection limit exceeded": 406,
    "insufficient subscription": 409,
}


def _positive(field: str, value: float, minimum: float, *, strict: bool) -> float:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and (value > minimum if strict else value >= minimum)
    )
    if not ok:
        op = ">" if strict else ">="
        raise ConfigError(field, value, f"must be a finite number {op} {minimum:g}")
    return float(value)


class Backoff:
    """Exponential backoff with jitter, capped: the waits between reconnect attempts.

    Attempt ``n`` (counting from 0) has the nominal delay ``d = min(cap, base * factor**n)``;
    :meth:`next_delay` returns ``d * (1 - jitter) + uniform(0, d * jitter)``, i.e. a value in
    ``[d * (1 - jitter), d]``. ``jitter=0.5`` (the default) is **equal jitter**: half the delay
    is fixed, half random, so a crowd of clients spreads out while each still waits at least
    half the nominal delay. ``jitter=1`` is full jitter (``uniform(0, d)``), ``jitter=0`` none.
    No delay ever exceeds ``cap``. :meth:`reset` after a connection proved healthy.
    """

    __slots__ = ("_attempts", "_base", "_cap", "_factor", "_jitter", "_nominal", "_rng")

    def __init__(
        self,
        base: float = 0.5,
        factor: float = 2.0,
        cap: float = 30.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        self._base = _positive("backoff.base", base, 0.0, strict=True)
        self._factor = _positive("backoff.factor", factor, 1.0, strict=False)
        self._cap = _positive("backoff.cap", cap, 0.0, strict=True)
        if self._cap < self._base:
            raise ConfigError("backoff.cap", cap, f"must be >= backoff.base={base!r}")
        self._jitter = _positive("backoff.jitter", jitter, 0.0, strict=False)
        if self._jitter > 1.0:
            raise ConfigError("backoff.jitter", jitter, "must be between 0 and 1")
        if rng is not None and not isinstance(rng, random.Random):
            raise ConfigError("backoff.rng", rng, "must be a random.Random")
        self._rng = rng if rng is not None else random.Random()
        self._attempts = 0
        self._nominal = self._base

    @property
    def attempts(self) -> int:
        """How many delays were handed out since construction or the last :meth:`reset`."""
        return self._attempts

    @property
    def base(self) -> float:
        """The first nominal delay (seconds)."""
        return self._base

    @property
    def factor(self) -> float:
        """How much each nominal delay grows over the previous one."""
        return self._factor

    @property
    def cap(self) -> float:
        """No delay is ever longer (seconds)."""
        return self._cap

    @property
    def jitter(self) -> float:
        """The random fraction of each delay (0.5: equal jitter, 1: full jitter)."""
        return self._jitter

    def next_delay(self) -> float:
        """The wait before the next attempt (seconds, in ``[d * (1 - jitter), d]``, <= cap)."""
        nominal = min(self._nominal, self._cap)
        # Grow step by step from a capped value: never overflows, however many attempts.
        self._nominal = min(nominal * self._factor, self._cap)
        self._attempts += 1
        spread = nominal * self._jitter
        return min(nominal - spread + self._rng.uniform(0.0, spread), self._cap)

    def reset(self) -> None:
        """Start over from ``base`` (call once a connection has proved healthy)."""
        self._attempts = 0
        self._nominal = self._base

    def __repr__(self) -> str:
        return (
            f"Backoff(base={self._base}, factor={self._factor}, cap={self._cap}, "
            f"jitter={self._jitter}, attempts={self._attempts})"
        )


def after_close(code_or_status: int | str | None) -> CloseAction:
    """What a stream failure with this code calls for.

    ``code_or_status`` is an HTTP status of the upgrade, a WebSocket close code, the ``code`` of
    an Alpaca stream error message (as a number or a numeric string), one of the messages Alpaca
    sends with those codes (``"auth failed"``, ``"connection limit exceeded"``, ...), or
    ``None`` when the connection simply dropped.

    * ``"fatal"`` — 401/402 (authentication) and 409 (insufficient subscription): retrying
      cannot help; stop and report.
    * ``"wait_long"`` — 406 (connection limit exceeded): wait :data:`CONNECTION_LIMIT_WAIT`
      for the old socket to die before reconnecting.
    * ``"retry"`` — everything else, 429 included: reconnect after a :class:`Backoff` delay.
    """
    if code_or_status is None:
        return "retry"
    if isinstance(code_or_status, bool) or not isinstance(code_or_status, int | str):
        raise ConfigError("code", code_or_status, "must be an int, a string or None")
    code: int | None
    if isinstance(code_or_status, int):
        code = code_or_status
    else:
        text = code_or_status.strip().lower()
        code = int(text) if text.isascii() and text.isdigit() else MESSAGE_CODES.get(text)
    if code in _FATAL_CODES:
        return "fatal"
    if code in _WAIT_LONG_CODES:
        return "wait_long"
    return "retry"
