"""SyncExecutionEngine: the backtest loop. Plain function calls, no event loop, no I/O.

For every bar of the feed, in time order (bars sharing a timestamp in symbol order):

1. open orders of the bar's symbol are matched against it (they were all placed earlier);
2. the position is marked to the bar's close;
3. queued events are delivered (``on_order_update``, ``on_fill``), then ``on_bar`` is called;
4. after the last bar of a timestamp, ``on_bars`` gets all of that timestamp's bars (only if the
   strategy overrides it: otherwise the loop does no cross-section work).

Events are queued and delivered after the callback that caused them returns, never from inside a
``ctx`` call, as a live broker would deliver them. The loop allocates nothing per bar: one
:class:`Bar` per symbol is reused and equity is written into preallocated arrays.

With ``risk`` (:class:`~tradeloop.execution.core.risk.RiskLimits` or a
:class:`~tradeloop.execution.core.risk.RiskManager`), every order is risk-checked before the
buying-power check, and the manager observes the equity once per timestamp, before that
timestamp's bars are matched (so the first observation of a UTC day is the previous close's
equity). Without it the loop does no risk work at all.
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from itertools import count, islice, repeat
from types import MappingProxyType
from typing import Any

from tradeloop.data.feed import DEFAULT_CHUNK, BarChunk, BarFeed, ChunkSource, Column, GrowingFeed
from tradeloop.errors import ConfigError, DataError, EngineError
from tradeloop.execution.context import BaseContext
from tradeloop.execution.core.cross import CrossSection, overrides_on_bars
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.core.risk import RiskLimits, RiskManager
from tradeloop.execution.failures import strategy_error
from tradeloop.execution.sync_protocols import CommissionModel, SlippageModel
from tradeloop.execution.synchronous.order_manager import SyncOrderManager
from tradeloop.execution.types import Bar, Fill, Order, Position
from tradeloop.results.log import TradeLog
from tradeloop.results.result import BacktestResult, EquityCurve
from tradeloop.strategy import Strategy

__all__ = ["DEFAULT_LOOKBACK", "SyncContext", "SyncEngine", "SyncExecutionEngine"]

DEFAULT_LOOKBACK = 1_000  # bars of history per symbol kept as lists (and, streamed, at all)
# A chunk costs the loop some work per symbol in it (its piece, its window), whatever its length:
# an automatic chunk gives every symbol at least this many bars, so a universe of a thousand
# symbols pays that cost once every 512 of its bars, as one symbol does once every 65,536.
MIN_SYMBOL_BARS = 512


class _WindowBar(Bar):
    """The reused :class:`Bar` of one symbol in a chunked run: ``ts`` and ``close`` are set each
    bar; ``open``, ``high``, ``low`` and ``volume`` are read from the symbol's window only when
    asked for (most strategies never do, and making those floats is most of a bar's cost).

    It also carries what the bar loop needs of its symbol, so that a bar costs no lookup by
    symbol name (over a wide universe each is a cache miss): ``_r``, the row of the latest bar
    in the window (-1 before the first; ``ctx.history`` reads it through :class:`_BarRows`),
    ``_c``, the window's closes, and ``_pos``, the symbol's position once the portfolio has
    one (positions are never dropped, so it stays the same object)."""

    __slots__ = ("_c", "_pos", "_r", "_w")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.ts = 0
        self.close = 0.0
        self._w: tuple[array[float], ...] = (array("d", [0.0]),) * 5
        self._c = self._w[3]  # the window's closes, read every bar
        self._r = -1
        self._pos: Position | None = None

    @property
    def open(self) -> float:  # type: ignore[override]
        return self._w[0][self._r]

    @property
    def high(self) -> float:  # type: ignore[override]
        return self._w[1][self._r]

    @property
    def low(self) -> float:  # type: ignore[override]
        return self._w[2][self._r]

    @property
    def volume(self) -> float:  # type: ignore[override]
        return self._w[4][self._r]


class _BarRows:
    """``ctx._rows`` of a chunked run: a symbol's latest row is its reused bar's ``_r``."""

    __slots__ = ("_bars",)

    def __init__(self, bars: Iterable[_WindowBar]) -> None:
        self._bars = {b.symbol: b for b in bars}

    def get(self, symbol: str, /) -> int | None:
        bar = self._bars.get(symbol)
        return None if bar is None or bar._r < 0 else bar._r

    def __setitem__(self, symbol: str, row: int, /) -> None:
        self._bars[symbol]._r = row


class _EventQueue:
    """Listener that queues events for delivery once the current callback has returned."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[Fill | Order] = []

    def on_fill(self, fill: Fill) -> None:
        self.items.append(fill)

    def on_order_update(self, order: Order) -> None:
        # a snapshot: the strategy sees the order as this update left it, even if a later event
        # of the same batch changes it again before delivery
        self.items.append(order.snapshot())


def _distinct(ts: Any) -> Any:
    """The distinct values of a sorted numpy array, in order."""
    import numpy as np

    if len(ts) < 2:
        return ts
    return ts[np.concatenate(([True], ts[1:] != ts[:-1]))]


def _own_timeline(source: ChunkSource) -> Any:
    """The timestamps of a one-symbol feed held in memory (numpy int64), which are the equity
    curve's own: the curve can view them instead of keeping a copy. None for anything else (a
    stream, a feed that grows, several symbols)."""
    import numpy as np

    if type(source) is not BarFeed or len(source.series) != 1:
        return None
    (series,) = source.series.values()
    ts = series.ts.values
    return ts if ts.dtype == np.int64 else None


def _raw(values: Any) -> memoryview:
    """A contiguous numpy array's bytes, not copied (``array.frombytes`` copies them once)."""
    return memoryview(values).cast("B")


def _int_array(values: Any) -> array[int]:
    """An int64 numpy array as a compact ``array('q')``."""
    import numpy as np

    out: array[int] = array("q")
    out.frombytes(_raw(np.ascontiguousarray(values, dtype=np.int64)))
    return out


class SyncContext(BaseContext):
    """The :class:`~tradeloop.strategy.Context` a strategy gets in a backtest.

    Requests are plain calls into the simulated exchange: an order comes back ``accepted`` or
    ``rejected`` at once, and a cancel takes effect at once.
    """

    __slots__ = ()


class SyncExecutionEngine:
    """Runs one strategy over one feed. ``run()`` once; it returns a :class:`BacktestResult`.

    ``feed`` is a :class:`BarFeed` (a backtest on bars in memory), a
    :class:`~tradeloop.data.stream.BarDataset` (a backtest on files read as the run goes, see
    :func:`tradeloop.data.stream.open_dataset`) or any iterable of :class:`Bar` (a *stream*:
    paper trading on live bars through :class:`~tradeloop.execution.synchronous.paper.BlockingBars`,
    say), in which case ``symbols`` names what it carries (default: its ``symbols`` attribute) and
    ``history_bars`` bounds what ``ctx.history`` keeps per symbol. Orders fill with the same
    simulated matching either way.

    A feed or dataset is walked in chunks of ``chunk_size`` bars of the merged timeline, each
    turned into Python lists once. By default (``None``) a chunk holds 65,536 bars, or 512 per
    symbol if that is more (a universe of a thousand symbols walks chunks of 512,000 bars: a
    chunk's set-up costs per symbol, and must be spread over enough of each one's bars).
    ``lookback`` (default: the strategy class's ``lookback`` attribute, else 1,000) is how many
    past bars per symbol ``ctx.history`` reads from those lists; on a dataset it is all there
    is, and asking for more raises a ``ConfigError`` naming ``lookback``. On a feed in memory,
    longer histories come from its arrays.
    """

    __slots__ = (
        "_at",
        "_bars",
        "_chunk_size",
        "_cross",
        "_curve",
        "_events",
        "_flushing",
        "_lookback",
        "_own_ts",
        "_ran",
        "_started",
        "_stream",
        "ctx",
        "feed",
        "manager",
        "partial_result",
        "portfolio",
        "risk",
        "strategy",
    )

    def __init__(
        self,
        feed: BarFeed | ChunkSource | Iterable[Bar],
        strategy: Strategy,
        *,
        initial_cash: float = 100_000.0,
        commission: CommissionModel | None = None,
        slippage: SlippageModel | None = None,
        participation_rate: float | None = None,
        allow_short: bool = True,
        leverage: float = 1.0,
        fractional: bool = False,
        symbols: Sequence[str] | None = None,
        history_bars: int = 100_000,
        risk: RiskLimits | RiskManager | None = None,
        chunk_size: int | None = None,
        lookback: int | None = None,
    ) -> None:
        self._stream: Iterable[Bar] | None = None
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not (isinstance(chunk_size, int) and chunk_size >= 1)
        ):
            raise ConfigError("chunk_size", chunk_size, "must be an integer >= 1 or None")
        if lookback is None:
            lookback = getattr(strategy, "lookback", None) or DEFAULT_LOOKBACK
        if isinstance(lookback, bool) or not (isinstance(lookback, int) and lookback >= 1):
            raise ConfigError("lookback", lookback, "must be an integer >= 1")
        self._chunk_size = chunk_size
        self._lookback = lookback
        if not isinstance(feed, ChunkSource) or isinstance(feed, GrowingFeed):
            if not isinstance(feed, Iterable) or (
                isinstance(feed, Sequence) and not all(isinstance(b, Bar) for b in feed)
            ):
                raise ConfigError(
                    "feed",
                    type(feed).__name__,
                    "must be a BarFeed (see tradeloop.data) or an iterable of Bar",
                )
            names = symbols if symbols is not None else getattr(feed, "symbols", None)
            if not names:
                raise ConfigError("symbols", names, "a bar stream needs the symbols it carries")
            if not (isinstance(history_bars, int) and history_bars >= 1):
                raise ConfigError("history_bars", history_bars, "must be an integer >= 1")
            self._stream = feed
            feed = GrowingFeed(names, max_bars=history_bars)
        elif feed.total_bars() == 0:
            raise DataError("rows", 0, "the feed has no bars")
        if not isinstance(strategy, Strategy):
            raise ConfigError("strategy", type(strategy).__name__, "must be a Strategy instance")
        if not (isinstance(initial_cash, int | float) and math.isfinite(initial_cash)):
            raise ConfigError("initial_cash", initial_cash, "must be a finite number")
        if initial_cash <= 0:
            raise ConfigError("initial_cash", initial_cash, "must be > 0")
        if not (isinstance(leverage, int | float) and math.isfinite(leverage) and leverage >= 1):
            raise ConfigError("leverage", leverage, "must be a finite number >= 1")
        if participation_rate is not None and not 0.0 < participation_rate <= 1.0:
            raise ConfigError("participation_rate", participation_rate, "must be in (0, 1] or null")
        if isinstance(risk, RiskLimits):
            risk = RiskManager(risk)
        elif risk is not None and not isinstance(risk, RiskManager):
            raise ConfigError(
                "risk", type(risk).__name__, "must be a RiskLimits, a RiskManager or None"
            )
        self.risk: RiskManager | None = risk
        self.feed = feed
        self.strategy = strategy
        self.portfolio = Portfolio(
            initial_cash, leverage=leverage, allow_short=allow_short, trades=TradeLog()
        )
        self._events = _EventQueue()
        self.manager = SyncOrderManager(
            self.portfolio,
            symbols=feed.symbols,
            commission=commission,
            slippage=slippage,
            participation_rate=participation_rate,
            fractional=fractional,
            listener=self._events,
            risk=risk,
        )
        self.ctx = SyncContext(feed, self.manager)
        if not isinstance(feed, BarFeed):  # streamed: only the lookback is kept
            self.ctx.max_history = lookback
        self._bars = [_WindowBar(sym) for sym in feed.symbols]
        self._cross: dict[str, Bar] = {}  # a timestamp's bars for on_bars
        self._ran = False
        self._flushing = False
        self._started = 0.0
        self._curve: EquityCurve | tuple[array[int], array[float], array[float]] = EquityCurve()
        self._own_ts: Any = None  # the feed's timestamps, when they are the curve's (run)
        self._at = (-1, 0)  # (last equity point, bars handed to the strategy) when it stopped
        self.partial_result: BacktestResult | None = None

    def _drain(self) -> None:
        items = self._events.items
        strategy = self.strategy
        ctx = self.ctx
        i = 0
        while i < len(items):  # callbacks may queue more events; deliver those too, in order
            ev = items[i]
            i += 1
            if isinstance(ev, Fill):
                strategy.on_fill(ctx, ev)
            else:
                strategy.on_order_update(ctx, ev)
        items.clear()

    def run(
        self, progress: Callable[[int, int], None] | None = None, *, max_bars: int | None = None
    ) -> BacktestResult:
        """Run the backtest. ``progress(done, total)`` is called about every 1% of the bars (of a
        feed; a stream's length is unknown). ``max_bars``: stop after that many bars."""
        if self._ran:
            raise EngineError("this engine has already run; create a new one for another run")
        if max_bars is not None and not (isinstance(max_bars, int) and max_bars >= 1):
            raise ConfigError("max_bars", max_bars, "must be an integer >= 1 or None")
        self._ran = True
        self._started = time.perf_counter()
        try:
            if self._stream is not None:
                return self._run_stream(self._stream, max_bars)
            return self._run_feed(progress, max_bars)
        except (Exception, KeyboardInterrupt) as exc:
            err = None
            if isinstance(exc, Exception):
                err = strategy_error(exc, self.strategy, self.ctx.now)
                if err is None:
                    raise
            self.partial_result = self._partial(str(err) if err else "interrupted")
            if err is None:
                raise
            err.result = self.partial_result
            raise err from exc

    def _run_feed(
        self, progress: Callable[[int, int], None] | None, max_bars: int | None
    ) -> BacktestResult:
        source = self.feed
        assert isinstance(source, ChunkSource)
        total = source.total_bars()
        expect = total if max_bars is None else min(total or max_bars, max_bars)
        size = self._chunk_size or max(DEFAULT_CHUNK, MIN_SYMBOL_BARS * len(source.symbols))
        # progress about every 1% of the bars: a chunk is walked in that many bars at a time
        step = max(1, expect // 100) if progress is not None and expect else None
        chunks = source.chunks(size)
        # a one-symbol feed in memory: the curve's timestamps are the feed's (while each chunk's
        # timestamps are distinct), viewed, not copied; and its length is known, so its arrays
        # are allocated once (repeated, not copied from a buffer of zeros: a large temporary
        # freed makes the allocator keep later ones in memory)
        self._own_ts = own = _own_timeline(source)
        n = 0 if own is None else len(own)
        eq_ts: array[int] = array("q")
        eq: array[float] = array("d", (0.0,)) * n
        gross: array[float] = array("d", (0.0,)) * n
        self._curve = (eq_ts, eq, gross)
        last_ts: int | None = None

        cur = next(chunks, None)
        while cur is not None and len(cur) == 0:
            cur = next(chunks, None)
        if cur is None:
            raise DataError("rows", 0, "the feed has no bars")
        self.ctx.now = int(cur.ts[0]) - 1
        self.ctx._rows = _BarRows(self._bars)
        self.strategy.on_start(self.ctx)
        self._drain()

        windows: list[tuple[array[float], ...] | None] = [None] * len(source.symbols)
        k = -1
        done = 0
        ended = True
        while cur is not None:
            m = len(cur)
            if max_bars is not None and done + m >= max_bars:
                m = max_bars - done
                ended = m == len(cur) and next(chunks, None) is None
            ts_list, sym_list, row_list = self._load_chunk(cur, m, windows)
            # the chunk's equity points, one per timestamp, not per bar (over twenty symbols,
            # sized by bars, the curve's arrays were twenty times what they hold): their
            # timestamps written here, their values by the loop
            stamps = _distinct(cur.ts[:m])
            if own is not None and len(stamps) != m:  # not one bar per timestamp: a copy after all
                eq_ts.frombytes(_raw(own[: k + 1]))
                self._own_ts = own = None
            if own is None:
                eq_ts.frombytes(_raw(stamps))
            if len(eq) < len(eq_ts):
                grow = bytes(8 * (len(eq_ts) - len(eq)))
                eq.frombytes(grow)
                gross.frombytes(grow)
                del grow
            del stamps
            if progress is None or step is None or step >= m:
                k, last_ts = self._run_range(
                    done, ts_list, sym_list, row_list, k, last_ts, eq, gross
                )
                done += m
                self._at = (k, done)
            else:  # the chunk in stretches of `step` bars, progress after each
                ts_it, sym_it, row_it = iter(ts_list), iter(sym_list), iter(row_list)
                for a in range(0, m, step):
                    n = min(step, m - a)
                    k, last_ts = self._run_range(
                        done, islice(ts_it, n), sym_it, row_it, k, last_ts, eq, gross
                    )
                    done += n
                    self._at = (k, done)
                    if a + n < m:
                        progress(done, total if total is not None else done)
            if progress is not None:
                progress(done, total if total is not None else done)
            if max_bars is not None and done >= max_bars:
                break
            cur = next(chunks, None)
        del cur
        self._flush_cross()

        if ended:  # the data ended: day orders expire (session over)
            self.manager.expire_all(self.ctx.now)
            self._drain()
        self.strategy.on_stop(self.ctx)
        self._drain()
        m = k + 1
        del eq_ts[m:], eq[m:], gross[m:]
        return self._result(self._stamps(m), eq, gross, done, self._started)

    def _stamps(self, m: int) -> Any:
        """The timestamps of the curve's first ``m`` points."""
        own = self._own_ts
        return self._curve[0][:m] if own is None else own[:m]  # type: ignore[index]

    def _load_chunk(
        self, chunk: BarChunk, m: int, windows: list[tuple[array[float], ...] | None]
    ) -> tuple[array[int], Iterable[int], Iterable[int]]:
        """The first ``m`` bars of ``chunk`` for the bar loop: timestamps, symbol indexes and
        rows in each symbol's window, after setting up the windows: per symbol, compact arrays
        of open, high, low, close and volume holding the last ``lookback`` bars before the
        chunk, then the chunk's, held by the symbol's reused bar. ``ctx.history`` reads them too
        (as lists, made on its first call in a chunk)."""
        import numpy as np

        ctx = self.ctx
        keep = self._lookback
        symbols = self.feed.symbols
        bars = self._bars
        prefix = [0] * len(symbols)
        for si, piece in enumerate(chunk.pieces):
            if piece is None:
                continue
            first_row, arrays = piece
            old = windows[si]
            p = 0 if old is None else min(keep, len(old[0]))
            new = []
            for j in range(5):
                w = array("d") if old is None else old[j][len(old[j]) - p :]
                w.frombytes(_raw(np.ascontiguousarray(arrays[j + 1], dtype=np.float64)))
                new.append(w)
            window = tuple(new)
            windows[si] = window
            prefix[si] = p
            bar = bars[si]
            bar._w = window
            bar._c = window[3]
            sym = symbols[si]
            ctx._cols[sym] = window
            ctx._lists[sym] = [None] * 5
            ctx._base[sym] = first_row - p
            if bar._r >= 0:
                bar._r = p - 1  # its latest bar, now the last of the window's prefix
        ts_list = _int_array(chunk.ts[:m])
        if chunk.sym is None or chunk.pos is None:
            return ts_list, repeat(0, m), range(prefix[0], prefix[0] + m)
        sym_idx = chunk.sym[:m]
        local = chunk.pos[:m] + np.asarray(prefix, dtype=np.int64)[sym_idx]
        # compact arrays, not lists: a list of half a million ints is as many objects, which the
        # garbage collector walks (a cache miss each) whenever the strategy's orders trigger it
        return ts_list, _int_array(sym_idx), _int_array(local)

    def _flush_cross(self) -> None:
        """``on_bars`` for the last timestamp's bars, if the strategy has it and they wait."""
        if self._cross and overrides_on_bars(self.strategy):
            k, bars = self._at
            self._at = (k, bars - 1)  # a failure in it is the last bar's
            self.strategy.on_bars(self.ctx, MappingProxyType(self._cross))
            self._at = (k, bars)
            if self._events.items:
                self._drain()
            self._cross.clear()

    def _partial(self, reason: str) -> BacktestResult:
        """The results so far, marked partial with ``reason`` (a run that failed or was
        interrupted): the equity curve up to the last timestamp reached, marked to now."""
        pf = self.portfolio
        curve = self._curve
        k, bars = self._at
        if isinstance(curve, EquityCurve):
            result = self._result(
                curve.ts, curve.equity, curve.exposure, bars, self._started, reason
            )
        else:
            _, eq, gross = curve
            m = k + 1
            if m:
                eq[k] = pf.cash + pf.market_value
                gross[k] = pf.gross_exposure
            result = self._result(self._stamps(m), eq[:m], gross[:m], bars, self._started, reason)
        return result

    def _result(
        self,
        eq_ts: Any,
        eq: array[float],
        gross: array[float],
        bars: int,
        started: float,
        partial: str = "",
    ) -> BacktestResult:
        pf = self.portfolio
        return BacktestResult(
            initial_cash=pf.initial_cash,
            symbols=self.feed.symbols,
            # compact: views of the arrays, not millions of Python numbers
            equity_ts=Column.view(eq_ts),
            equity=Column.view(eq),
            exposure=Column.view(gross),
            # compact too: the logs of the run (rows rebuilt into objects when read)
            orders=self.manager.orders,
            fills=self.manager.fills,
            trades=pf.trades,
            final_cash=pf.cash,
            bars_processed=bars,
            elapsed_seconds=time.perf_counter() - started,
            strategy_name=self.strategy.name,
            params=self.strategy.params,
            partial=partial,
        )

    def _run_stream(self, stream: Iterable[Bar], max_bars: int | None) -> BacktestResult:
        """Paper trading: the same steps as a backtest's bar loop, for bars as they come.

        A bar of a symbol not traded, or not newer than that symbol's last bar (a repeat, or a
        late bar), is skipped. A bar older than another symbol's latest one is processed, but
        the clock (``ctx.now``, the equity curve) never goes back.
        """
        started = self._started
        feed = self.feed
        assert isinstance(feed, GrowingFeed)
        ctx = self.ctx
        pf = self.portfolio
        mgr = self.manager
        events = self._events.items
        risk = self.risk
        curve = self._curve = EquityCurve()
        latest: dict[str, int] = {}
        cross = CrossSection(feed.symbols) if overrides_on_bars(self.strategy) else None
        start = getattr(stream, "start", None)
        ctx.now = start - 1 if isinstance(start, int) else 0
        self.strategy.on_start(ctx)
        self._drain()
        n = 0
        for bar in stream:
            sym = bar.symbol
            ts = bar.ts
            if sym not in feed.series or ts <= latest.get(sym, ts - 1):
                continue
            if cross is not None and cross.due_before(ts):
                self._deliver_cross(cross)
            latest[sym] = ts
            c = bar.close
            if ts > ctx.now:  # a late bar of one symbol does not turn the clock back
                ctx.now = ts
                if risk is not None:
                    risk.observe(ts, pf.cash + pf.market_value)
            if mgr.book.open.get(sym):
                mgr.process_bar(sym, ts, bar.open, bar.high, bar.low, c, bar.volume)
            if sym in pf.positions:
                pf.mark(sym, c)
            mgr.last_prices[sym] = c
            ctx._rows[sym] = feed.append(sym, ts, bar.open, bar.high, bar.low, c, bar.volume)
            if events:
                self._drain()
            self.strategy.on_bar(ctx, bar)
            if events:
                self._drain()
            if cross is not None and cross.add(bar):
                self._deliver_cross(cross)
            curve.record(ctx.now, pf.cash + pf.market_value, pf.gross_exposure)
            n += 1
            self._at = (-1, n)
            if max_bars is not None and n >= max_bars:
                break
        if cross is not None and cross.pending:
            self._deliver_cross(cross)
        if max_bars is None or n < max_bars:  # the stream ended: day orders expire
            mgr.expire_all(ctx.now)
            self._drain()
        self.strategy.on_stop(ctx)
        self._drain()
        return self._result(curve.ts, curve.equity, curve.exposure, n, started)

    def _deliver_cross(self, cross: CrossSection) -> None:
        self.strategy.on_bars(self.ctx, cross.view)
        if self._events.items:
            self._drain()
        cross.delivered()

    def _run_range(
        self,
        start: int,
        ts_list: Iterable[int],
        sym_list: Iterable[int],
        row_list: Iterable[int],
        k: int,
        last_ts: int | None,
        eq: array[float],
        gross: array[float],
    ) -> tuple[int, int | None]:
        # Everything the loop touches is bound to a local once: attribute and global lookups are
        # the main per-bar cost in CPython.
        bars = self._bars
        ctx = self.ctx
        pf = self.portfolio
        mark = pf.mark_position
        positions = pf.positions
        mgr = self.manager
        open_books = mgr.book.open
        process_bar = mgr.process_bar
        last_prices = mgr.last_prices
        events = self._events.items
        drain = self._drain
        on_bar = self.strategy.on_bar
        on_bars = self.strategy.on_bars if overrides_on_bars(self.strategy) else None
        cross = self._cross
        cross_view = MappingProxyType(cross)
        observe = self.risk.observe if self.risk is not None else None
        i = start
        try:
            for i, ts, si, r in zip(count(start), ts_list, sym_list, row_list):  # noqa: B007
                if ts != last_ts:  # once per timestamp: the curve's point, the clock, risk
                    if k >= 0:  # the previous timestamp is complete: its equity point
                        eq[k] = pf.cash + pf.market_value
                        gross[k] = pf.gross_exposure
                    if cross and on_bars is not None:  # the previous timestamp is complete
                        self._flushing = True  # a failure here is the previous bar's
                        on_bars(ctx, cross_view)
                        if events:
                            drain()
                        cross.clear()
                        self._flushing = False
                    k += 1
                    last_ts = ts
                    ctx.now = ts
                    if observe is not None:
                        observe(ts, pf.cash + pf.market_value)
                # one symbol's objects are touched per bar, and only these: over a wide universe
                # each was last touched a timestamp ago and is out of the CPU's nearest caches
                bar = bars[si]
                sym = bar.symbol
                c = bar._c[r]
                if open_books.get(sym):
                    w = bar._w
                    process_bar(sym, ts, w[0][r], w[1][r], w[2][r], c, w[4][r])
                pos = bar._pos
                if pos is not None:
                    mark(pos, c)
                elif sym in positions:  # the portfolio has had one since the last bar
                    pos = bar._pos = positions[sym]
                    mark(pos, c)
                last_prices[sym] = c
                bar.ts = last_ts  # the timestamp's one int, shared by its bars (ts is a copy)
                bar.close = c
                bar._r = r
                if events:
                    drain()
                on_bar(ctx, bar)
                if events:
                    drain()
                if on_bars is not None:
                    cross[sym] = bar
        except BaseException:
            # where it stopped (bar i unfinished; on_bars: the bar before), for partial results
            self._at = (k, i - 1 if self._flushing else i)
            raise
        if k >= 0:  # the last timestamp reached (the next chunk may hold more of its bars)
            eq[k] = pf.cash + pf.market_value
            gross[k] = pf.gross_exposure
        return k, last_ts


SyncEngine = SyncExecutionEngine
