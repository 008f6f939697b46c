"""Columnar bar storage the engines read from.

A :class:`BarFeed` holds, per symbol, compact numpy columns: timestamps (int64 ns, UTC) and OHLCV
(float64), 48 bytes a bar. Each column is a :class:`Column`: it indexes, slices, iterates and
compares like the list it used to be (``series.close[-1]`` is a Python float, ``series.ts ==
[...]`` a bool), and ``numpy.asarray(series.close)`` is the array itself, without a copy.

The engines never index these columns bar by bar. They walk the feed in chunks
(:meth:`BarFeed.chunks`): a :class:`BarChunk` is a stretch of the merged timeline, and the
synchronous engine turns each chunk's slices into Python lists once (list indexing is the fastest
thing CPython offers for one element at a time), so memory stays at the arrays plus one chunk.
Build feeds with the loaders in :mod:`tradeloop.data.loaders`, which validate; the constructors
here trust their input.

Importing this module does not import numpy: the first feed built does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

__all__ = [
    "DEFAULT_CHUNK",
    "BarChunk",
    "BarFeed",
    "ChunkSource",
    "Column",
    "GrowingFeed",
    "GrowingSeries",
    "SymbolSeries",
    "merge_pieces",
]

DEFAULT_CHUNK = 65_536  # bars per chunk of the merged timeline the engine walks

_T = TypeVar("_T", int, float)


class Column(Sequence[_T], Generic[_T]):
    """One column of a :class:`SymbolSeries`: a numpy array that reads like a list.

    Indexing gives Python numbers, slicing a smaller column (a view, no copy), ``==`` against a
    list, tuple, array or column a single bool. ``values`` (or ``numpy.asarray(column)``) is the
    array itself.
    """

    __slots__ = ("values",)

    def __init__(self, values: npt.NDArray[Any]) -> None:
        self.values = values

    @classmethod
    def view(cls, values: Any) -> Column[Any]:
        """A column over the memory of ``values`` (a numpy array, which keeps its dtype; an
        ``array.array`` of ``"q"`` or ``"d"``; or anything else with the buffer protocol, read as
        float64), without a copy. ``values`` must not be resized while the column lives (the
        buffer stays exported)."""
        import numpy as np

        if isinstance(values, np.ndarray):
            return cls(values)
        dtype = np.int64 if getattr(values, "typecode", "d") == "q" else np.float64
        return cls(np.frombuffer(values, dtype=dtype))

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> _T: ...

    @overload
    def __getitem__(self, index: slice) -> Column[_T]: ...

    def __getitem__(self, index: int | slice) -> _T | Column[_T]:
        if isinstance(index, slice):
            return Column(self.values[index])
        value: _T = self.values.item(index)
        return value

    def __setitem__(self, index: int, value: _T) -> None:
        self.values[index] = value

    def __iter__(self) -> Iterator[_T]:
        values = self.values
        for a in range(0, len(values), DEFAULT_CHUNK):  # bounded: one chunk of Python numbers
            yield from values[a : a + DEFAULT_CHUNK].tolist()

    def __contains__(self, value: object) -> bool:
        try:
            return bool((self.values == value).any())
        except (TypeError, ValueError):
            return False

    def __eq__(self, other: object) -> bool:
        import numpy as np

        if isinstance(other, Column):
            other = other.values
        if isinstance(other, np.ndarray | list | tuple):
            if len(other) != len(self.values):
                return False
            return bool(np.array_equal(self.values, np.asarray(other)))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to lists, so unhashable like them

    def __repr__(self) -> str:
        n = len(self.values)
        if n <= 6:
            return f"Column({self.values.tolist()!r})"
        head = ", ".join(repr(x) for x in self.values[:3].tolist())
        tail = ", ".join(repr(x) for x in self.values[-2:].tolist())
        return f"Column([{head}, ..., {tail}], len={n})"

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> npt.NDArray[Any]:
        if dtype is None or dtype == self.values.dtype:
            return self.values
        return self.values.astype(dtype)

    def tolist(self) -> list[_T]:
        """The values as a new list."""
        out: list[_T] = self.values.tolist()
        return out


def _int_array(values: Any) -> npt.NDArray[np.int64]:
    import numpy as np

    if isinstance(values, Column):
        values = values.values
    return np.ascontiguousarray(values, dtype=np.int64).reshape(-1)


def _float_array(values: Any) -> npt.NDArray[np.float64]:
    import numpy as np

    if isinstance(values, Column):
        values = values.values
    return np.ascontiguousarray(values, dtype=np.float64).reshape(-1)


class SymbolSeries:
    """The bars of one symbol, as parallel columns sorted by strictly increasing ``ts``.

    Takes any sequences (lists, numpy arrays, columns); arrays of the right dtype are kept
    without a copy.
    """

    __slots__ = ("close", "high", "low", "open", "symbol", "ts", "volume")

    def __init__(
        self,
        symbol: str,
        ts: Sequence[int] | Any,
        open: Sequence[float] | Any,
        high: Sequence[float] | Any,
        low: Sequence[float] | Any,
        close: Sequence[float] | Any,
        volume: Sequence[float] | Any,
    ) -> None:
        self.symbol = symbol
        self.ts: Column[int] = Column(_int_array(ts))
        self.open: Column[float] = Column(_float_array(open))
        self.high: Column[float] = Column(_float_array(high))
        self.low: Column[float] = Column(_float_array(low))
        self.close: Column[float] = Column(_float_array(close))
        self.volume: Column[float] = Column(_float_array(volume))

    def __len__(self) -> int:
        return len(self.ts)

    def arrays(self) -> tuple[npt.NDArray[Any], ...]:
        """``(ts, open, high, low, close, volume)`` as numpy arrays (the storage, not copies)."""
        return (
            self.ts.values,
            self.open.values,
            self.high.values,
            self.low.values,
            self.close.values,
            self.volume.values,
        )


class BarChunk:
    """A stretch of the merged timeline: bars of every symbol in time order.

    ``ts`` holds the chunk's timestamps in order (bars sharing one in symbol order); ``sym`` the
    symbol index of each bar and ``pos`` its position in that symbol's piece (both ``None`` for a
    one-symbol source: every bar is the symbol's, in order). ``pieces[i]`` is, for symbol ``i``,
    ``(first_row, (ts, open, high, low, close, volume))``: its consecutive rows in this chunk, or
    ``None`` if it has none. ``first_row`` counts the symbol's bars from the start of the data.
    """

    __slots__ = ("pieces", "pos", "sym", "ts")

    def __init__(
        self,
        ts: npt.NDArray[np.int64],
        sym: npt.NDArray[np.int64] | None,
        pos: npt.NDArray[np.int64] | None,
        pieces: list[tuple[int, tuple[npt.NDArray[Any], ...]] | None],
    ) -> None:
        self.ts = ts
        self.sym = sym
        self.pos = pos
        self.pieces = pieces

    def __len__(self) -> int:
        return len(self.ts)


def merge_pieces(
    pieces: list[tuple[int, tuple[npt.NDArray[Any], ...]] | None],
) -> BarChunk:
    """A :class:`BarChunk` from per-symbol pieces: bars ordered by time, then symbol index."""
    import numpy as np

    present = [i for i, p in enumerate(pieces) if p is not None and len(p[1][0])]
    if len(pieces) == 1:
        p = pieces[0]
        ts = p[1][0] if p is not None else np.empty(0, np.int64)
        return BarChunk(ts, None, None, pieces)
    if len(present) == 1:
        i = present[0]
        p = pieces[i]
        assert p is not None
        n = len(p[1][0])
        return BarChunk(p[1][0], np.full(n, i, np.int64), np.arange(n, dtype=np.int64), pieces)
    if not present:
        empty = np.empty(0, np.int64)
        return BarChunk(empty, empty, empty, pieces)
    parts_ts = [p[1][0] for p in pieces if p is not None and len(p[1][0])]
    first = parts_ts[0]
    if all(len(t) == len(first) and np.array_equal(t, first) for t in parts_ts[1:]):
        # aligned (every symbol has a bar at every timestamp, as a universe of daily bars
        # mostly does): the order is known without sorting
        k = len(present)
        return BarChunk(
            np.repeat(first, k),
            np.tile(np.asarray(present, dtype=np.int64), len(first)),
            np.repeat(np.arange(len(first), dtype=np.int64), k),
            pieces,
        )
    lengths = [len(t) for t in parts_ts]
    ts = np.concatenate(parts_ts)
    order = np.argsort(ts, kind="stable")  # symbol order within a timestamp: parts are in it
    sym = np.repeat(np.asarray(present, dtype=np.int64), lengths)
    pos = np.concatenate([np.arange(n, dtype=np.int64) for n in lengths])
    return BarChunk(ts[order], sym[order], pos[order], pieces)


class ChunkSource:
    """What the synchronous engine walks: symbols, and chunks of the merged timeline.

    :class:`BarFeed` (bars in memory) and :class:`tradeloop.data.stream.BarDataset` (bars read
    from files as the run goes) are the two kinds.
    """

    __slots__ = ()

    symbols: tuple[str, ...]

    def chunks(self, size: int = DEFAULT_CHUNK) -> Iterator[BarChunk]:
        raise NotImplementedError

    def total_bars(self) -> int | None:
        """How many bars :meth:`chunks` yields, if known without reading them all."""
        return None


class BarFeed(ChunkSource):
    """Bars of one or more symbols, merged into a single timeline for the engine."""

    __slots__ = ("series", "symbols")

    def __init__(self, series: Iterable[SymbolSeries]) -> None:
        self.series: dict[str, SymbolSeries] = {}
        for s in series:
            self.series[s.symbol] = s
        self.symbols: tuple[str, ...] = tuple(self.series)

    def __len__(self) -> int:
        return sum(len(s) for s in self.series.values())

    def __getitem__(self, symbol: str) -> SymbolSeries:
        return self.series[symbol]

    def total_bars(self) -> int | None:
        return len(self)

    @property
    def nbytes(self) -> int:
        """Bytes of bar storage (48 a bar)."""
        return 48 * len(self)

    @property
    def start(self) -> int:
        return min(s.ts[0] for s in self.series.values() if len(s))

    @property
    def end(self) -> int:
        return max(s.ts[-1] for s in self.series.values() if len(s))

    def timeline_arrays(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """All bars in time order as three int64 arrays: timestamp, symbol index, row index.

        Bars sharing a timestamp come in the order of :attr:`symbols`.
        """
        import numpy as np

        ts_parts, sym_parts, row_parts = [], [], []
        for i, sym in enumerate(self.symbols):
            s = self.series[sym]
            n = len(s)
            ts_parts.append(s.ts.values)
            sym_parts.append(np.full(n, i, dtype=np.int64))
            row_parts.append(np.arange(n, dtype=np.int64))
        if not ts_parts:
            e = np.empty(0, np.int64)
            return e, e, e
        ts = np.concatenate(ts_parts)
        order = np.argsort(ts, kind="stable")
        return ts[order], np.concatenate(sym_parts)[order], np.concatenate(row_parts)[order]

    def timeline(self) -> tuple[list[int], list[int], list[int]]:
        """:meth:`timeline_arrays` as Python lists (three objects a bar: for small feeds and
        tests; the engines walk :meth:`chunks` instead)."""
        ts, sym, rows = self.timeline_arrays()
        return ts.tolist(), sym.tolist(), rows.tolist()

    def chunks(self, size: int = DEFAULT_CHUNK) -> Iterator[BarChunk]:
        """The merged timeline in chunks of at most ``size`` bars (views of the columns)."""
        if size < 1:
            raise ValueError("chunk size must be >= 1")
        import numpy as np

        arrays = [self.series[s].arrays() for s in self.symbols]
        lengths = [len(a[0]) for a in arrays]
        cursor = [0] * len(arrays)
        step = max(1, size // max(1, len(arrays)))
        while True:
            live = [i for i in range(len(arrays)) if cursor[i] < lengths[i]]
            if not live:
                return
            # every bar up to the earliest "step bars ahead" of any symbol can go: no symbol has
            # an unread bar before it
            cut = min(int(arrays[i][0][min(cursor[i] + step, lengths[i]) - 1]) for i in live)
            pieces: list[tuple[int, tuple[npt.NDArray[Any], ...]] | None] = [None] * len(arrays)
            for i in live:
                a = cursor[i]
                b = a + int(np.searchsorted(arrays[i][0][a : a + step], cut, side="right"))
                if b > a:
                    pieces[i] = (a, tuple(col[a:b] for col in arrays[i]))
                    cursor[i] = b
            yield merge_pieces(pieces)

    @classmethod
    def from_arrays(
        cls,
        symbol: str,
        ts: Sequence[int] | Any,
        open: Sequence[float] | Any,
        high: Sequence[float] | Any,
        low: Sequence[float] | Any,
        close: Sequence[float] | Any,
        volume: Sequence[float] | Any,
    ) -> BarFeed:
        """A one-symbol feed from parallel sequences or arrays (trusted: no validation)."""
        return cls([SymbolSeries(symbol, ts, open, high, low, close, volume)])

    @classmethod
    def from_validated_frame(cls, df: pd.DataFrame) -> BarFeed:
        """A feed from a long frame already checked by :func:`tradeloop.data.loaders.validate_bars`.

        Columns: ``symbol``, ``ts`` (int64 ns UTC), ``open``, ``high``, ``low``, ``close``,
        ``volume``; rows sorted by symbol then ts.
        """
        import numpy as np

        ts = df["ts"].to_numpy(dtype=np.int64)
        names = ("open", "high", "low", "close", "volume")
        cols = [df[c].to_numpy(dtype=np.float64) for c in names]
        sym = df["symbol"].to_numpy()
        series = []
        if len(sym):
            bounds = np.flatnonzero(sym[1:] != sym[:-1]) + 1
            starts = [0, *bounds.tolist()]
            ends = [*bounds.tolist(), len(sym)]
            for a, b in zip(starts, ends, strict=True):
                series.append(SymbolSeries(str(sym[a]), ts[a:b], *(c[a:b] for c in cols)))
        return cls(series)

    def symbol_mapping(self) -> Mapping[str, SymbolSeries]:
        return self.series


class GrowingSeries(SymbolSeries):
    """The bars of one symbol of a :class:`GrowingFeed`: plain lists, appended to bar by bar."""

    __slots__ = ()

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.ts: list[int] = []  # type: ignore[assignment]
        self.open: list[float] = []  # type: ignore[assignment]
        self.high: list[float] = []  # type: ignore[assignment]
        self.low: list[float] = []  # type: ignore[assignment]
        self.close: list[float] = []  # type: ignore[assignment]
        self.volume: list[float] = []  # type: ignore[assignment]


class GrowingFeed(BarFeed):
    """A :class:`BarFeed` that bars are appended to as they arrive (paper and live trading).

    It gives ``ctx.history`` the same columns a backtest has, as plain lists. Each symbol keeps
    at most ``max_bars`` bars (oldest dropped, in amortised O(1)), so a long live run has bounded
    memory.
    """

    __slots__ = ("max_bars",)

    def __init__(self, symbols: Iterable[str], max_bars: int = 100_000) -> None:
        super().__init__(GrowingSeries(s) for s in symbols)
        self.max_bars = max_bars

    def append(
        self, symbol: str, ts: int, o: float, h: float, lo: float, c: float, v: float
    ) -> int:
        """Add one bar (a symbol not seen before is added); returns its row index."""
        s: Any = self.series.get(symbol)
        if s is None:
            s = self.series[symbol] = GrowingSeries(symbol)
            self.symbols = (*self.symbols, symbol)
        s.ts.append(ts)
        s.open.append(o)
        s.high.append(h)
        s.low.append(lo)
        s.close.append(c)
        s.volume.append(v)
        n = len(s.ts)
        if n > 2 * self.max_bars:
            drop = n - self.max_bars
            for col in (s.ts, s.open, s.high, s.low, s.close, s.volume):
                del col[:drop]
            n -= drop
        return n - 1

    def timeline_arrays(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        import numpy as np

        ts_parts, sym_parts, row_parts = [], [], []
        for i, sym in enumerate(self.symbols):
            s = self.series[sym]
            ts_parts.append(np.asarray(s.ts, dtype=np.int64))
            sym_parts.append(np.full(len(s), i, dtype=np.int64))
            row_parts.append(np.arange(len(s), dtype=np.int64))
        if not ts_parts:
            e = np.empty(0, np.int64)
            return e, e, e
        ts = np.concatenate(ts_parts)
        order = np.argsort(ts, kind="stable")
        return ts[order], np.concatenate(sym_parts)[order], np.concatenate(row_parts)[order]

    def chunks(self, size: int = DEFAULT_CHUNK) -> Iterator[BarChunk]:
        raise NotImplementedError("a GrowingFeed is read bar by bar, not in chunks")
