"""Columnar bar storage the engines read from.

A :class:`BarFeed` holds, per symbol, plain Python lists of timestamps (int ns, UTC) and
OHLCV floats.
Lists, not numpy arrays or DataFrames, because the synchronous engine reads one element at a time
and list indexing is the fastest thing CPython offers for that. Build feeds with the loaders in
:mod:`tradeloop.data.loaders`, which validate; the constructors here trust their input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BarFeed", "SymbolSeries"]


class SymbolSeries:
    """The bars of one symbol, as parallel lists sorted by strictly increasing ``ts``."""

    __slots__ = ("close", "high", "low", "open", "symbol", "ts", "volume")

    def __init__(
        self,
        symbol: str,
        ts: Sequence[int],
        open: Sequence[float],
        high: Sequence[float],
        low: Sequence[float],
        close: Sequence[float],
        volume: Sequence[float],
    ) -> None:
        self.symbol = symbol
        self.ts: list[int] = list(ts)
        self.open: list[float] = list(open)
        self.high: list[float] = list(high)
        self.low: list[float] = list(low)
        self.close: list[float] = list(close)
        self.volume: list[float] = list(volume)

    def __len__(self) -> int:
        return len(self.ts)


class BarFeed:
    """Bars of one or more symbols, merged into a single timeline for the engine."""

    __slots__ = ("_timeline", "series", "symbols")

    def __init__(self, series: Iterable[SymbolSeries]) -> None:
        self.series: dict[str, SymbolSeries] = {}
        for s in series:
            self.series[s.symbol] = s
        self.symbols: tuple[str, ...] = tuple(self.series)
        self._timeline: tuple[list[int], list[int], list[int]] | None = None

    def __len__(self) -> int:
        return sum(len(s) for s in self.series.values())

    def __getitem__(self, symbol: str) -> SymbolSeries:
        return self.series[symbol]

    @property
    def start(self) -> int:
        return min(s.ts[0] for s in self.series.values() if len(s))

    @property
    def end(self) -> int:
        return max(s.ts[-1] for s in self.series.values() if len(s))

    def timeline(self) -> tuple[list[int], list[int], list[int]]:
        """All bars in time order as three parallel lists: timestamp, symbol index, row index.

        Bars sharing a timestamp come in the order of :attr:`symbols`.
        """
        if self._timeline is None:
            if len(self.symbols) == 1:
                s = self.series[self.symbols[0]]
                n = len(s)
                self._timeline = (list(s.ts), [0] * n, list(range(n)))
            else:
                import numpy as np

                ts_parts, sym_parts, row_parts = [], [], []
                for i, sym in enumerate(self.symbols):
                    n = len(self.series[sym])
                    ts_parts.append(np.asarray(self.series[sym].ts, dtype=np.int64))
                    sym_parts.append(np.full(n, i, dtype=np.int64))
                    row_parts.append(np.arange(n, dtype=np.int64))
                ts = np.concatenate(ts_parts) if ts_parts else np.empty(0, np.int64)
                sym_idx = np.concatenate(sym_parts) if sym_parts else np.empty(0, np.int64)
                rows = np.concatenate(row_parts) if row_parts else np.empty(0, np.int64)
                order = np.lexsort((sym_idx, ts))
                self._timeline = (
                    ts[order].tolist(),
                    sym_idx[order].tolist(),
                    rows[order].tolist(),
                )
        return self._timeline

    @classmethod
    def from_arrays(
        cls,
        symbol: str,
        ts: Sequence[int],
        open: Sequence[float],
        high: Sequence[float],
        low: Sequence[float],
        close: Sequence[float],
        volume: Sequence[float],
    ) -> BarFeed:
        """A one-symbol feed from parallel sequences (trusted: no validation)."""
        return cls([SymbolSeries(symbol, ts, open, high, low, close, volume)])

    @classmethod
    def from_validated_frame(cls, df: pd.DataFrame) -> BarFeed:
        """A feed from a long frame already checked by :func:`tradeloop.data.loaders.validate_bars`.

        Columns: ``symbol``, ``ts`` (int64 ns UTC), ``open``, ``high``, ``low``, ``close``,
        ``volume``;        rows sorted by symbol then ts.
        """
        series = []
        for sym, g in df.groupby("symbol", sort=False):
            series.append(
                SymbolSeries(
                    str(sym),
                    g["ts"].astype("int64").tolist(),
                    g["open"].astype("float64").tolist(),
                    g["high"].astype("float64").tolist(),
                    g["low"].astype("float64").tolist(),
                    g["close"].astype("float64").tolist(),
                    g["volume"].astype("float64").tolist(),
                )
            )
        return cls(series)

    def symbol_mapping(self) -> Mapping[str, SymbolSeries]:
        return self.series


class GrowingFeed(BarFeed):
    """A :class:`BarFeed` that bars are appended to as they arrive (paper and live trading).

    It gives ``ctx.history`` the same columns a backtest has. Each symbol keeps at most
    ``max_bars`` bars (oldest dropped, in amortised O(1)), so a long live run has bounded memory.
    """

    __slots__ = ("max_bars",)

    def __init__(self, symbols: Iterable[str], max_bars: int = 100_000) -> None:
        super().__init__(SymbolSeries(s, (), (), (), (), (), ()) for s in symbols)
        self.max_bars = max_bars

    def append(
        self, symbol: str, ts: int, o: float, h: float, lo: float, c: float, v: float
    ) -> int:
        """Add one bar (a symbol not seen before is added); returns its row index."""
        s = self.series.get(symbol)
        if s is None:
            s = self.series[symbol] = SymbolSeries(symbol, (), (), (), (), (), ())
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
        self._timeline = None
        return n - 1
