"""Turning an exception that escaped a strategy callback into a :class:`StrategyError`.

Both engines call the strategy's callbacks directly (no wrapper per call: the bar loop stays as
fast as before), so when one raises, the engine finds out afterwards which callback it was from
the traceback: the first frame that is one of the strategy's callbacks. The symbol comes from
that callback's own argument (its bar, fill or order). The exception's traceback is cut to start
at that frame, so what a user reads is their code, not the engine's loop.
"""

from __future__ import annotations

from types import FrameType, TracebackType

from tradeloop.errors import StrategyError
from tradeloop.execution.types import Bar, Fill, Order

__all__ = ["CALLBACKS", "strategy_error"]

CALLBACKS = frozenset({"on_start", "on_bar", "on_bars", "on_fill", "on_order_update", "on_stop"})


def _is_callback(frame: FrameType, strategy: object) -> bool:
    code = frame.f_code
    if code.co_name not in CALLBACKS:
        return False
    func = getattr(type(strategy), code.co_name, None)
    if getattr(func, "__code__", None) is code:
        return True
    return frame.f_locals.get("self") is strategy  # a decorated callback, say


def _symbol(frame: FrameType) -> str | None:
    code = frame.f_code
    args = frame.f_locals
    for name in code.co_varnames[: code.co_argcount]:
        value = args.get(name)
        if isinstance(value, Bar | Fill | Order):
            return value.symbol
    return None


def strategy_error(exc: BaseException, strategy: object, now: int | None) -> StrategyError | None:
    """A :class:`StrategyError` for ``exc`` if it came out of one of ``strategy``'s callbacks
    (``None`` if not: an engine's own failure is not the strategy's). ``now`` is the engine's
    clock: the bar time the callback ran at (left out for ``on_start``, which runs before any)."""
    if isinstance(exc, StrategyError):
        return None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and not _is_callback(tb.tb_frame, strategy):
        tb = tb.tb_next
    if tb is None:
        return None
    frame = tb.tb_frame
    callback = frame.f_code.co_name
    exc.__traceback__ = tb
    return StrategyError(callback, _symbol(frame), None if callback == "on_start" else now, exc)
