"""Bar sources for the asynchronous engine: historical bars replayed as a stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from tradeloop.data.feed import BarFeed
from tradeloop.errors import ConfigError
from tradeloop.execution.types import Bar

__all__ = ["ReplayBarSource"]

_YIELD_EVERY = 256  # unpaced replays still let other tasks (status display, signals) run


class ReplayBarSource:
    """Replays a :class:`BarFeed` as an async bar stream, in the order a backtest visits it.

    ``speed`` paces the replay against the bars' own clock: ``speed=60`` plays one minute of bars
    per second; ``0`` (the default) replays as fast as the consumer takes them. ``max_sleep`` caps
    one pause, so nights and weekends do not stall a paced replay.
    """

    __slots__ = ("_closed", "feed", "max_sleep", "speed", "timestamp_complete")

    def __init__(self, feed: BarFeed, *, speed: float = 0.0, max_sleep: float = 1.0) -> None:
        if not isinstance(feed, BarFeed):
            raise ConfigError("feed", type(feed).__name__, "must be a BarFeed (see tradeloop.data)")
        if not (isinstance(speed, int | float) and speed >= 0):
            raise ConfigError("speed", speed, "must be a number >= 0 (0 = as fast as possible)")
        if not (isinstance(max_sleep, int | float) and max_sleep >= 0):
            raise ConfigError("max_sleep", max_sleep, "must be a number >= 0")
        self.feed = feed
        self.speed = float(speed)
        self.max_sleep = float(max_sleep)
        self._closed = False
        self.timestamp_complete = False  # the bar last yielded was its timestamp's last

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.feed.symbols

    @property
    def start(self) -> int:
        """Timestamp of the first bar (int ns): a replay's clock starts just before it."""
        return self.feed.start

    async def bars(self, symbols: Sequence[str] | None = None) -> AsyncIterator[Bar]:
        feed = self.feed
        names = feed.symbols
        wanted = None if symbols is None else frozenset(symbols)
        if wanted is not None and not wanted <= set(names):
            missing = sorted(wanted - set(names))
            raise ConfigError("symbols", missing, f"not in the replayed data ({', '.join(names)})")
        cols = [(s.open, s.high, s.low, s.close, s.volume) for s in (feed[n] for n in names)]
        ts_list, sym_idx, rows = feed.timeline()
        speed = self.speed
        prev_ts: int | None = None
        n = len(ts_list)
        for i in range(n):
            if self._closed:
                return
            si = sym_idx[i]
            name = names[si]
            if wanted is not None and name not in wanted:
                continue
            ts = ts_list[i]
            if speed > 0.0 and prev_ts is not None and ts > prev_ts:
                await asyncio.sleep(min((ts - prev_ts) / 1e9 / speed, self.max_sleep))
            elif i % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            prev_ts = ts
            r = rows[i]
            o, h, lo, c, v = cols[si]
            j = i + 1  # is another bar of this timestamp coming? (for on_bars)
            if wanted is not None:
                while j < n and ts_list[j] == ts and names[sym_idx[j]] not in wanted:
                    j += 1
            self.timestamp_complete = j == n or ts_list[j] != ts
            yield Bar(name, ts, o[r], h[r], lo[r], c[r], v[r])

    async def close(self) -> None:
        self._closed = True
