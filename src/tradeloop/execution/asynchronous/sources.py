"""Bar sources for the asynchronous engine: historical bars replayed as a stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from itertools import repeat

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
        speed = self.speed
        prev_ts: int | None = None
        bars = _bar_tuples(feed, None if wanted is None else [n in wanted for n in names])
        cur = next(bars, None)
        i = 0
        while cur is not None:
            if self._closed:
                return
            nxt = next(bars, None)  # is another bar of this timestamp coming? (for on_bars)
            ts = cur[0]
            if speed > 0.0 and prev_ts is not None and ts > prev_ts:
                await asyncio.sleep(min((ts - prev_ts) / 1e9 / speed, self.max_sleep))
            elif i % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            prev_ts = ts
            self.timestamp_complete = nxt is None or nxt[0] != ts
            yield Bar(names[cur[1]], ts, cur[2], cur[3], cur[4], cur[5], cur[6])
            cur = nxt
            i += 1

    async def close(self) -> None:
        self._closed = True


def _bar_tuples(
    feed: BarFeed, keep: list[bool] | None
) -> Iterator[tuple[int, int, float, float, float, float, float]]:
    """``(ts, symbol index, open, high, low, close, volume)`` of every bar (of the symbols
    ``keep`` marks), in time order, read chunk by chunk."""
    for chunk in feed.chunks():
        lists = [None if p is None else [a.tolist() for a in p[1][1:]] for p in chunk.pieces]
        ts_list = chunk.ts.tolist()
        syms: Iterable[int] = repeat(0) if chunk.sym is None else chunk.sym.tolist()
        pos: Iterable[int] = range(len(ts_list)) if chunk.pos is None else chunk.pos.tolist()
        for ts, si, r in zip(ts_list, syms, pos, strict=False):
            if keep is not None and not keep[si]:
                continue
            cols = lists[si]
            assert cols is not None
            o, h, lo, c, v = cols
            yield ts, si, o[r], h[r], lo[r], c[r], v[r]
