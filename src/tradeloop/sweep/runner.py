"""One run of a sweep, as a pure, picklable function: :func:`run_one`.

Workers (a local process, a Ray task, or the calling process) receive the bars as flat numpy
arrays (:class:`FeedArrays`: shared memory, the Ray object store, or plain arrays), a *template*
saying how to build the engine (:class:`ConfigTemplate` from a config file, or
:class:`FactoryTemplate` around a user's factory) and a :class:`RunSpec` (the parameters, and for
walk-forward the time window). They return a :class:`RunOutcome`: the parameters and every metric
of :func:`~tradeloop.results.compute_metrics`, or the error the run raised; never an exception.

Each worker process turns the arrays into a :class:`~tradeloop.data.feed.BarFeed` (the lists the
engine reads) once per data set and window, and reuses it for every run that follows.
"""

from __future__ import annotations

import copy
import inspect
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from tradeloop.data.feed import BarFeed, SymbolSeries

__all__ = [
    "ConfigTemplate",
    "FactoryTemplate",
    "FeedArrays",
    "FeedSource",
    "RunOutcome",
    "RunSpec",
    "run_one",
]

COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class FeedArrays:
    """A :class:`BarFeed` as flat arrays: the bars of symbol ``i`` are rows
    ``offsets[i]:offsets[i + 1]`` of ``ts`` (int64 ns) and ``ohlcv`` (float64, 5 x n)."""

    symbols: tuple[str, ...]
    offsets: npt.NDArray[np.int64]
    ts: npt.NDArray[np.int64]
    ohlcv: npt.NDArray[np.float64]
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def key(self) -> str:
        return self.token

    def arrays(self) -> FeedArrays:
        return self

    @classmethod
    def from_feed(cls, feed: BarFeed) -> FeedArrays:
        symbols = tuple(feed.symbols)
        lengths = [len(feed[s]) for s in symbols]
        offsets = np.zeros(len(symbols) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(lengths)
        n = int(offsets[-1])
        ts = np.empty(n, dtype=np.int64)
        ohlcv = np.empty((len(COLUMNS), n), dtype=np.float64)
        for i, sym in enumerate(symbols):
            s = feed[sym]
            a, b = int(offsets[i]), int(offsets[i + 1])
            ts[a:b] = s.ts
            for j, col in enumerate(COLUMNS):
                ohlcv[j, a:b] = getattr(s, col)
        return cls(symbols, offsets, ts, ohlcv)

    @property
    def nbytes(self) -> int:
        return int(self.ts.nbytes + self.ohlcv.nbytes)

    def timestamps(self) -> npt.NDArray[np.int64]:
        """The distinct timestamps of all symbols, sorted (the engine's timeline)."""
        return np.unique(self.ts)

    def to_feed(self, window: tuple[int, int] | None = None) -> BarFeed:
        """The bars (of ``[start, end)`` ns when ``window`` is given) as a BarFeed."""
        series = []
        for i, sym in enumerate(self.symbols):
            a, b = int(self.offsets[i]), int(self.offsets[i + 1])
            ts = self.ts[a:b]
            if window is not None:
                lo = a + int(np.searchsorted(ts, window[0], side="left"))
                hi = a + int(np.searchsorted(ts, window[1], side="left"))
                a, b = lo, hi
                if a >= b:
                    continue
            cols = [self.ohlcv[j, a:b].tolist() for j in range(len(COLUMNS))]
            series.append(SymbolSeries(sym, self.ts[a:b].tolist(), *cols))
        return BarFeed(series)


class FeedSource(Protocol):
    """Where a worker gets the arrays: :class:`FeedArrays` itself, or a handle to shared memory."""

    @property
    def key(self) -> str: ...

    def arrays(self) -> FeedArrays: ...


@dataclass(frozen=True)
class RunSpec:
    """One run: its index in the sweep, its parameters, and optionally a window ``[start, end)``
    of bar timestamps (ns) and whether to return the equity curve."""

    index: int
    params: dict[str, Any]
    window: tuple[int, int] | None = None
    equity: bool = False


@dataclass
class RunOutcome:
    """What a run returns: ``metrics`` or ``error`` (the error's type and message)."""

    index: int
    params: dict[str, Any]
    metrics: dict[str, float] | None
    error: str | None
    seconds: float
    equity_ts: list[int] | None = None
    equity: list[float] | None = None
    initial_cash: float | None = None
    traceback: str | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None


_CLASSES: dict[tuple[str, str], type[Any]] = {}


@dataclass(frozen=True)
class ConfigTemplate:
    """Build runs from a config: the strategy (by its config name, resolved in the worker), the
    config's strategy parameters (the run's override them) and the engine's keyword arguments."""

    strategy_name: str
    base_dir: str
    base_params: dict[str, Any]
    engine_kwargs: dict[str, Any]

    @property
    def strategy_class(self) -> type[Any]:
        key = (self.strategy_name, self.base_dir)
        cls = _CLASSES.get(key)
        if cls is None:
            from tradeloop.config.strategy import resolve_strategy_class

            cls = _CLASSES[key] = resolve_strategy_class(self.strategy_name, Path(self.base_dir))
        return cls

    def build(self, feed: BarFeed | None, params: Mapping[str, Any]) -> Any:
        from tradeloop.execution.factory import create_sync_engine

        assert feed is not None
        strategy = self.strategy_class(**{**self.base_params, **params})
        return create_sync_engine(feed, strategy, **copy.deepcopy(self.engine_kwargs))


@dataclass(frozen=True)
class FactoryTemplate:
    """Build runs with a user's factory: ``factory(params)`` or, when the sweep is given the
    bars, ``factory(params, feed)``. It must be importable (defined at a module's top level) for
    the process and Ray executors."""

    factory: Callable[..., Any]
    pass_feed: bool = False

    def build(self, feed: BarFeed | None, params: Mapping[str, Any]) -> Any:
        if self.pass_feed:
            return self.factory(dict(params), feed)
        return self.factory(dict(params))


def factory_takes_feed(factory: Callable[..., Any]) -> bool:
    """Whether ``factory`` accepts a second positional argument (the feed)."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in positional)


Template = ConfigTemplate | FactoryTemplate

# per process: the feeds built from shared arrays, by (data key, window); a few kept
_FEEDS: OrderedDict[tuple[str, tuple[int, int] | None], BarFeed] = OrderedDict()
MAX_CACHED_FEEDS = 4


def feed_for(source: FeedSource | None, window: tuple[int, int] | None) -> BarFeed | None:
    """The BarFeed of ``source`` (cut to ``window``), built once per process and reused."""
    if source is None:
        return None
    key = (source.key, window)
    feed = _FEEDS.get(key)
    if feed is None:
        feed = source.arrays().to_feed(window)
        _FEEDS[key] = feed
        while len(_FEEDS) > MAX_CACHED_FEEDS:
            _FEEDS.popitem(last=False)
    else:
        _FEEDS.move_to_end(key)
    return feed


def clear_cache() -> None:
    """Forget the cached feeds (the executors call it when their data goes away)."""
    _FEEDS.clear()


def run_one(source: FeedSource | None, template: Template, spec: RunSpec) -> RunOutcome:
    """Run one parameter set; every exception becomes :attr:`RunOutcome.error`."""
    from tradeloop.results.metrics import compute_metrics

    started = time.perf_counter()
    try:
        feed = feed_for(source, spec.window)
        engine = template.build(feed, spec.params)
        result = engine.run()
        metrics = compute_metrics(result)
    except Exception as exc:
        return RunOutcome(
            spec.index,
            dict(spec.params),
            None,
            f"{type(exc).__name__}: {exc}",
            time.perf_counter() - started,
            traceback="".join(traceback.format_exception(exc)),
        )
    out = RunOutcome(spec.index, dict(spec.params), metrics, None, time.perf_counter() - started)
    if spec.equity:
        out.equity_ts = list(result.equity_ts)
        out.equity = list(result.equity)
        out.initial_cash = float(result.initial_cash)
    return out
