"""CrossSection: one timestamp's bars, gathered from a bar stream for ``Strategy.on_bars``.

A backtest knows when a timestamp ends (the feed is sorted); a stream does not, so both engines'
stream loops ask this small, pure gatherer. A timestamp's cross-section is complete when every
traded symbol has a bar in it; it is also delivered, incomplete, when a later bar arrives, when
the stream ends or (the asynchronous engine only) when a timeout passes. A bar of a timestamp
already delivered, or older than the one being gathered, is late: it is not added.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from tradeloop.execution.types import Bar

__all__ = ["CrossSection", "overrides_on_bars"]


class CrossSection:
    """Gathers the bars of one timestamp. ``view`` is a read-only mapping of them by symbol."""

    __slots__ = ("_bars", "expected", "last", "ts", "view")

    def __init__(self, symbols: Iterable[str]) -> None:
        self.expected = len(set(symbols))
        self._bars: dict[str, Bar] = {}
        self.view: Mapping[str, Bar] = MappingProxyType(self._bars)
        self.ts: int | None = None  # the timestamp being gathered
        self.last: int | None = None  # the last timestamp delivered

    @property
    def pending(self) -> bool:
        """Bars are gathered and not delivered yet."""
        return self.ts is not None

    def due_before(self, ts: int) -> bool:
        """Whether what is gathered must be delivered before a bar at ``ts`` is handled."""
        return self.ts is not None and ts > self.ts

    def add(self, bar: Bar) -> bool:
        """Add a bar; ``True`` if the cross-section is now complete. A late bar is not added
        (``False``); a bar newer than the gathered timestamp must follow :meth:`due_before`."""
        ts = bar.ts
        if self.ts is None:
            if self.last is not None and ts <= self.last:
                return False
            self.ts = ts
        elif ts != self.ts:
            if ts > self.ts:
                raise ValueError(f"bar at {ts} added while {self.ts} is gathered: deliver first")
            return False
        self._bars[bar.symbol] = bar
        return len(self._bars) >= self.expected

    def delivered(self) -> None:
        """The gathered bars were handed to the strategy: start on the next timestamp."""
        self.last = self.ts
        self.ts = None
        self._bars.clear()


def overrides_on_bars(strategy: object) -> bool:
    """Whether ``strategy`` has its own ``on_bars`` (engines skip all cross-section work if not)."""
    from tradeloop.strategy import Strategy

    return getattr(type(strategy), "on_bars", Strategy.on_bars) is not Strategy.on_bars
