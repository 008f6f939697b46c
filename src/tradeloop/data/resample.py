"""Bars of a coarser timeframe from finer ones: a whole feed at once, or bar by bar in a strategy.

A *rule* is a whole number and a unit: ``s``, ``min``, ``h`` or ``d`` (``"30s"``, ``"5min"``,
``"15min"``, ``"1h"``, ``"4h"``, ``"1d"``). Buckets are aligned to the Unix epoch in UTC, so a
bucket's width must divide a day (``"7min"`` and ``"5h"`` are refused) and ``"1d"`` is the UTC
calendar day; there is no exchange calendar, so an hourly bucket of a 09:30 New York session
opens at 13:00 or 14:00 UTC with half an hour of bars.

Each coarse bar has ``open`` = the first bar's open, ``high`` = the highest high, ``low`` = the
lowest low, ``close`` = the last bar's close, ``volume`` = the sum, and is **labelled with the
start of its bucket** (the 10:00-10:59 bars become one bar stamped 10:00, as pandas labels
them). It is complete only at the end of its bucket: in a backtest of a resampled feed that is
what the engine assumes anyway (orders decided on a bar fill on the next one).

* :func:`resample` turns a whole :class:`~tradeloop.data.feed.BarFeed` into a coarser one
  (vectorised with numpy); ``data: {resample: 1h}`` in a config does this to the loaded bars.
* :class:`Resampler` does the same one bar at a time inside ``on_bar``, so a strategy can use
  two timeframes at once, in a backtest and live alike::

      def on_start(self, ctx):
          self.hourly = Resampler("1h")
          self.trend = {s: SMA(20) for s in ctx.symbols}

      def on_bar(self, ctx, bar):  # minute bars
          hour = self.hourly.update(bar)  # the completed hourly bar of bar.symbol, or None
          if hour is not None:
              self.trend[hour.symbol].update(hour.close)

  A bucket is known to be complete when the symbol's first bar of a later bucket arrives, so
  :meth:`Resampler.update` returns the previous bucket's bar on that bar (before the strategy
  acts on it); :meth:`Resampler.flush` returns buckets still open (at the end of a run), and
  :meth:`Resampler.current` the bucket in progress. Fed every bar of a feed, a resampler gives
  exactly the bars :func:`resample` gives.

Importing this module does not import numpy or pandas; :func:`resample` imports numpy.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.errors import ConfigError, DataError
from tradeloop.execution.types import Bar

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["RULE_UNITS", "BarLike", "Resampler", "parse_rule", "resample"]

_SECOND = 10**9
_DAY = 86_400 * _SECOND
RULE_UNITS: dict[str, int] = {"s": _SECOND, "min": 60 * _SECOND, "h": 3_600 * _SECOND, "d": _DAY}
"""Rule units and their length in nanoseconds."""
_ALIASES = {"sec": "s", "t": "min", "hour": "h", "day": "d"}
_RULE = re.compile(r"\s*(\d+)\s*([a-z]+)\s*")


def parse_rule(rule: str) -> int:
    """The bucket width of ``rule`` (``"5min"``, ``"1h"``, ``"1d"``...) in nanoseconds.

    Raises:
        ConfigError: (field ``rule``) for anything but a whole number > 0 and a unit ``s``,
            ``min``, ``h`` or ``d`` whose width divides a day.
    """
    if not isinstance(rule, str):
        raise ConfigError("rule", rule, "must be a string such as '5min', '1h' or '1d'")
    m = _RULE.fullmatch(rule.lower())
    if m is None:
        raise ConfigError(
            "rule", rule, "expected a number and a unit (s, min, h, d), e.g. '5min', '1h', '1d'"
        )
    count, unit = int(m.group(1)), _ALIASES.get(m.group(2), m.group(2))
    if unit not in RULE_UNITS:
        hint = " ('m' would be ambiguous: minutes are 'min')" if unit == "m" else ""
        raise ConfigError("rule", rule, f"unknown unit {unit!r}; use s, min, h or d{hint}")
    if count == 0:
        raise ConfigError("rule", rule, "the bucket must be longer than 0")
    width = count * RULE_UNITS[unit]
    if width > _DAY or _DAY % width:
        raise ConfigError(
            "rule",
            rule,
            "buckets are aligned to UTC midnight: the width must divide a day "
            "(e.g. 1, 2, 3, 5, 10, 15, 30 min; 1, 2, 3, 4, 6, 8, 12 h; 1d)",
        )
    return width


# ---------------------------------------------------------------------------------- whole feed


def resample(feed: BarFeed, rule: str) -> BarFeed:
    """A new feed with the bars of ``feed`` aggregated into ``rule`` buckets (see the module
    docstring): open first, high max, low min, close last, volume summed, stamped with the
    bucket's start (UTC). Empty buckets produce no bar. ``feed`` is not changed.
    """
    width = parse_rule(rule)
    if not isinstance(feed, BarFeed):
        raise DataError("feed", type(feed).__name__, "expected a BarFeed")
    import numpy as np

    out = []
    for sym, s in feed.series.items():
        if not len(s):
            out.append(SymbolSeries(sym, (), (), (), (), (), ()))
            continue
        ts = np.asarray(s.ts, dtype=np.int64)
        bucket = ts - ts % width
        starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
        ends = np.append(starts[1:], len(ts)) - 1

        def col(values: Sequence[float]) -> npt.NDArray[np.float64]:
            return np.asarray(values, dtype=np.float64)

        out.append(
            SymbolSeries(
                sym,
                bucket[starts].tolist(),
                col(s.open)[starts].tolist(),
                np.maximum.reduceat(col(s.high), starts).tolist(),
                np.minimum.reduceat(col(s.low), starts).tolist(),
                col(s.close)[ends].tolist(),
                np.add.reduceat(col(s.volume), starts).tolist(),
            )
        )
    return BarFeed(out)


# ---------------------------------------------------------------------------------- bar by bar


class BarLike(Protocol):
    """What :meth:`Resampler.update` reads from a bar (a :class:`~tradeloop.execution.types.Bar`
    has it)."""

    @property
    def symbol(self) -> str: ...
    @property
    def ts(self) -> int: ...
    @property
    def open(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def close(self) -> float: ...
    @property
    def volume(self) -> float: ...


class _Bucket:
    """The bucket in progress of one symbol."""

    __slots__ = ("close", "high", "last_ts", "low", "open", "start", "volume")

    def __init__(self, start: int, bar: BarLike) -> None:
        self.start = start
        self.last_ts = bar.ts
        self.open = bar.open
        self.high = bar.high
        self.low = bar.low
        self.close = bar.close
        self.volume = bar.volume

    def bar(self, symbol: str) -> Bar:
        return Bar(symbol, self.start, self.open, self.high, self.low, self.close, self.volume)


class Resampler:
    """Aggregates the bars a strategy receives into ``rule`` buckets, for every symbol at once.

    ``update(bar)`` returns the completed coarse :class:`~tradeloop.execution.types.Bar` of
    ``bar.symbol`` when ``bar`` is the first of a later bucket, else ``None``. Bars of one symbol
    must come in increasing time order (the engines guarantee it).
    """

    __slots__ = ("_open", "rule", "width")

    def __init__(self, rule: str) -> None:
        self.width: int = parse_rule(rule)
        """Bucket width in nanoseconds."""
        self.rule = rule
        self._open: dict[str, _Bucket] = {}

    def update(self, bar: BarLike) -> Bar | None:
        """Add one bar; returns the bar of the bucket it closes, or ``None``.

        Raises:
            DataError: (field ``ts``) if ``bar`` is not later than the symbol's previous bar.
        """
        ts = bar.ts
        start = ts - ts % self.width
        b = self._open.get(bar.symbol)
        if b is None:
            self._open[bar.symbol] = _Bucket(start, bar)
            return None
        if ts <= b.last_ts:
            raise DataError(
                "ts",
                ts,
                f"bar of {bar.symbol} not later than the previous one (ts={b.last_ts}): "
                "bars of a symbol must come in increasing time order",
            )
        if start == b.start:
            b.last_ts = ts
            if bar.high > b.high:
                b.high = bar.high
            if bar.low < b.low:
                b.low = bar.low
            b.close = bar.close
            b.volume += bar.volume
            return None
        done = b.bar(bar.symbol)
        self._open[bar.symbol] = _Bucket(start, bar)
        return done

    def current(self, symbol: str) -> Bar | None:
        """The bucket in progress of ``symbol`` as a bar so far (a copy), or ``None``."""
        b = self._open.get(symbol)
        return None if b is None else b.bar(symbol)

    def flush(self, symbol: str | None = None) -> list[Bar]:
        """Close and return the buckets in progress (of ``symbol``, or of every symbol, in the
        order they were first seen): at the end of a run they hold the last coarse bars."""
        if symbol is not None:
            b = self._open.pop(symbol, None)
            return [] if b is None else [b.bar(symbol)]
        bars = [b.bar(sym) for sym, b in self._open.items()]
        self._open.clear()
        return bars

    def __repr__(self) -> str:
        return f"Resampler({self.rule!r})"
