"""Bars streamed from Parquet or CSV files, batch by batch, in bounded memory.

:func:`open_dataset` opens one file, a folder of files (hive-partitioned folders such as
``symbol=ACME/`` or ``date=2020-01-02/`` included) or a glob, with pyarrow. Nothing is read until
a run starts; then each symbol is read in batches of at most ``batch_size`` rows, with the
symbol and the ``start``/``end`` filters pushed down to the reader (partitions and row groups
that cannot match are skipped), and the symbols are merged in timestamp order chunk by chunk.
Parquet files are read one row group at a time, column by column, so memory is bounded by the
number of symbols times one row group (or ``batch_size`` rows, if more) of six columns, whatever
the length of the data: files written with smaller row groups stream in less memory. CSV files
go through pyarrow's scanner, ``batch_size`` rows at a time. :meth:`BarDataset.load` reads the
bars into a :class:`~tradeloop.data.BarFeed` instead, filling columns allocated once.

The synchronous engine runs a :class:`BarDataset` as it runs a :class:`~tradeloop.data.BarFeed`.
``ctx.history`` then reaches back the strategy's declared ``lookback`` (default 1,000 bars), no
further. Files are read as they are: each batch is checked (missing values, timestamps not
strictly increasing within a symbol, ``high < low``, non-positive prices, negative volume) and a
bad one raises a :class:`~tradeloop.errors.DataError` naming the symbol and the timestamp.

Needs pyarrow: ``pip install 'tradeloop[parquet]'``.
"""

from __future__ import annotations

import glob as globmod
import os
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeloop.data.feed import (
    DEFAULT_CHUNK,
    BarChunk,
    BarFeed,
    ChunkSource,
    SymbolSeries,
    merge_pieces,
)
from tradeloop.data.loaders import SYMBOL_ALIASES, TS_ALIASES, TimeLike, _fmt_ns, _to_ns
from tradeloop.errors import DataError

__all__ = ["BarDataset", "open_dataset"]

_FIELDS = ("open", "high", "low", "close", "volume")
_UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_Arrays = tuple[npt.NDArray[Any], ...]


def _read_column(pf: Any, group: int, name: str) -> Any:
    """Column ``name`` of row group ``group`` of an open Parquet file, read alone."""
    return pf.read_row_group(group, columns=[name], use_threads=False).column(0)


def _pyarrow() -> Any:
    try:
        import pyarrow.dataset as ds
    except ImportError:
        raise DataError(
            "format", "parquet", "streaming bars needs pyarrow: pip install 'tradeloop[parquet]'"
        ) from None
    return ds


def open_dataset(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    symbols: str | Sequence[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    symbol: str | None = None,
    batch_size: int = DEFAULT_CHUNK,
    format: str | None = None,
    timestamp_unit: str | None = None,
) -> BarDataset:
    """A :class:`BarDataset` over a Parquet or CSV file, a folder of them, a glob or a list.

    Columns are matched as by :func:`tradeloop.data.load_bars` (a timestamp, ``open``, ``high``,
    ``low``, ``close``, ``volume``, and ``symbol`` or a ``symbol=`` hive partition). Without a
    symbol column, ``symbol`` names the data's one symbol (default: the file's stem).
    ``symbols`` keeps those; ``start``/``end`` (inclusive; a date-only ``end`` includes the day)
    keep that time range. ``format`` is ``parquet`` or ``csv`` (default: from the suffix).
    Numeric timestamps are in ``timestamp_unit`` (default: told from their number of digits).
    """
    ds = _pyarrow()
    if isinstance(path, str | os.PathLike):
        text = os.fspath(path)
        if any(ch in text for ch in "*?["):
            sources: Any = sorted(globmod.glob(text, recursive=True))
            if not sources:
                raise DataError("path", text, "no file matches the pattern")
            first = Path(sources[0])
        else:
            p = Path(text)
            if not p.exists():
                raise DataError("path", text, "no such file or folder")
            sources = text
            first = p if p.is_file() else next((f for f in p.rglob("*") if f.is_file()), p)
    else:
        sources = [os.fspath(s) for s in path]
        if not sources:
            raise DataError("path", [], "no files given")
        first = Path(sources[0])
    fmt = format or ("csv" if first.name.lower().endswith((".csv", ".csv.gz")) else "parquet")
    if fmt not in ("csv", "parquet"):
        raise DataError("format", format, "expected 'csv' or 'parquet'")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise DataError("batch_size", batch_size, "must be an integer >= 1")
    if timestamp_unit is not None and timestamp_unit not in _UNIT_NS:
        raise DataError("timestamp_unit", timestamp_unit, "expected 's', 'ms', 'us' or 'ns'")
    try:
        dataset = ds.dataset(sources, format=fmt, partitioning="hive")
    except (OSError, ValueError) as exc:
        raise DataError("path", str(path), f"cannot open as {fmt}: {exc}") from None
    default = symbol or first.name.split(".")[0]
    return BarDataset(dataset, str(path), symbols, start, end, default, batch_size, timestamp_unit)


class BarDataset(ChunkSource):
    """Bars read from files as a run goes (see :func:`open_dataset`)."""

    __slots__ = (
        "_count",
        "_counts",
        "_dataset",
        "_default",
        "_filter",
        "_names",
        "_ts_type",
        "_unit",
        "batch_size",
        "hi",
        "lo",
        "source",
        "symbols",
    )

    def __init__(
        self,
        dataset: Any,
        source: str,
        symbols: str | Sequence[str] | None,
        start: TimeLike | None,
        end: TimeLike | None,
        default_symbol: str,
        batch_size: int,
        unit: str | None,
    ) -> None:
        import pyarrow as pa
        import pyarrow.dataset as ds

        self._dataset = dataset
        self.source = source
        self.batch_size = batch_size
        self._unit = unit
        self._count: int | None = None
        self._counts: dict[str, int] | None = None  # rows per symbol the filters keep, once known
        by_name = {n.strip().lower(): n for n in dataset.schema.names}
        names: dict[str, str] = {}
        for alias in TS_ALIASES:
            if alias in by_name:
                names["ts"] = by_name[alias]
                break
        else:
            raise DataError("timestamp", None, f"no timestamp column in {source}")
        for f in _FIELDS:
            if f not in by_name:
                raise DataError(f, None, f"missing column {f!r} in {source}")
            names[f] = by_name[f]
        for alias in SYMBOL_ALIASES:
            if alias in by_name:
                names["symbol"] = by_name[alias]
                break
        self._names = names
        ts_type = dataset.schema.field(names["ts"]).type
        self._ts_type = ts_type
        self.lo = _to_ns(start, "start")
        self.hi = _to_ns(end, "end", end_of_day=True)
        if self.lo is not None and self.hi is not None and self.hi < self.lo:
            raise DataError("end", end, f"is before start={start!r}")
        flt = None
        ts_field = ds.field(names["ts"])
        for bound, ge in ((self.lo, True), (self.hi, False)):
            if bound is None:
                continue
            if pa.types.is_timestamp(ts_type):
                value: Any = pa.scalar(bound, pa.timestamp("ns", tz=ts_type.tz)).cast(ts_type)
            elif pa.types.is_integer(ts_type):
                value = self._raw_bound(bound, ge)
            else:
                raise DataError(
                    "timestamp",
                    str(ts_type),
                    f"start/end need a time or integer column in {source}",
                )
            cond = ts_field >= value if ge else ts_field <= value
            flt = cond if flt is None else flt & cond
        self._filter = flt
        wanted = (
            [symbols] if isinstance(symbols, str) else None if symbols is None else list(symbols)
        )
        if "symbol" not in names:
            self._default = default_symbol
            if wanted is not None and wanted != [default_symbol]:
                raise DataError(
                    "symbols", wanted, f"not in {source} (its one symbol: {default_symbol})"
                )
            self.symbols: tuple[str, ...] = (default_symbol,)
        else:
            self._default = ""
            if wanted is None:
                found = self._partition_counts()
                if found is None:
                    found = self._symbol_counts(flt)
                self._counts = found  # every symbol's: bars_per_symbol need not count again
                wanted = sorted(s for s, n in found.items() if n)
            self.symbols = tuple(wanted)
        if not self.symbols:
            raise DataError("rows", 0, f"no bars in {source}")

    def _raw_bound(self, ns: int, ge: bool) -> int:
        unit = self._unit or self._detect_unit()
        f = _UNIT_NS[unit]
        return -(-ns // f) if ge else ns // f

    def _detect_unit(self) -> str:
        if self._unit is None:
            head = self._dataset.head(1, columns=[self._names["ts"]])
            if head.num_rows == 0:
                self._unit = "ns"
            else:
                v = abs(int(head.column(0)[0].as_py()))
                digits = len(str(v))
                self._unit = (
                    "s"
                    if digits <= 10
                    else "ms"
                    if digits <= 13
                    else "us"
                    if digits <= 16
                    else "ns"
                )
        return self._unit

    def _symbol_filter(self, sym: str) -> Any:
        import pyarrow.dataset as ds

        if "symbol" not in self._names:
            return self._filter
        cond = ds.field(self._names["symbol"]) == sym
        return cond if self._filter is None else cond & self._filter

    def total_bars(self) -> int | None:
        if self._count is None:
            flt = self._filter
            if "symbol" in self._names:
                import pyarrow.dataset as ds

                cond = ds.field(self._names["symbol"]).isin(list(self.symbols))
                flt = cond if flt is None else cond & flt
            self._count = int(self._dataset.count_rows(filter=flt))
        return self._count

    def __len__(self) -> int:
        n = self.total_bars()
        return 0 if n is None else n

    def bars_per_symbol(self) -> dict[str, int]:
        """How many bars of each symbol the filters keep, counted without reading the bars: from
        the files' metadata when the symbols are hive partitions (``symbol=ACME/``), else by a
        scan of the symbol column, batch by batch."""
        if "symbol" not in self._names:
            return {self.symbols[0]: len(self)}
        import pyarrow.dataset as ds

        counts = dict.fromkeys(self.symbols, 0)
        found = self._counts
        if found is None:
            found = self._partition_counts()
        if found is None:
            cond = ds.field(self._names["symbol"]).isin(list(self.symbols))
            found = self._symbol_counts(cond if self._filter is None else cond & self._filter)
        self._counts = found
        counts.update((s, n) for s, n in found.items() if s in counts)
        return counts

    def _partition_counts(self) -> dict[str, int] | None:
        """Rows the filters keep per symbol when every file's symbol is in its path (a hive
        partition such as ``symbol=ACME/``): one count per file, from its metadata (a time
        filter reads the timestamps of the row groups it cuts). None if a file holds its symbols
        in a column."""
        flt = self._filter
        counts: dict[str, int] = {}
        for frag in self._dataset.get_fragments():
            value = self._path_symbol(frag)
            if value is None:
                return None
            counts[value] = counts.get(value, 0) + int(frag.count_rows(filter=flt))
        return counts

    def _path_symbol(self, fragment: Any) -> str | None:
        """The symbol a file's path names (a hive partition such as ``symbol=ACME/``), if any."""
        import pyarrow.dataset as ds

        value = ds.get_partition_keys(fragment.partition_expression).get(self._names["symbol"])
        return None if value is None else str(value)

    def _symbol_counts(self, flt: Any) -> dict[str, int]:
        """Rows per symbol that ``flt`` keeps: a scan of the symbol column, batch by batch."""
        import pyarrow as pa
        import pyarrow.compute as pc

        counts: dict[str, int] = {}
        scanner = self._dataset.scanner(
            columns=[self._names["symbol"]],
            filter=flt,
            batch_size=self.batch_size,
            batch_readahead=1,
            fragment_readahead=1,
        )
        for batch in scanner.to_batches():
            col = batch.column(0)
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode()
            for item in pc.value_counts(col).to_pylist():
                key = str(item["values"])
                counts[key] = counts.get(key, 0) + int(item["counts"])
        return counts

    def load(self) -> BarFeed:
        """All the bars in memory, as a :class:`~tradeloop.data.BarFeed`, checked as a run checks
        them. Each symbol's six columns are allocated once at their final size (counted first,
        without reading the bars) and filled batch by batch: the peak is the feed itself (48
        bytes a bar) plus one symbol's reading buffers, never a table or a DataFrame beside it."""
        counts = self.bars_per_symbol()
        series = []
        for sym in self.symbols:
            n = counts.get(sym, 0)
            if n == 0:
                raise DataError("symbols", sym, f"no bars for it in {self.source}")
            cols = [np.empty(n, np.int64), *(np.empty(n, np.float64) for _ in _FIELDS)]
            at = 0
            for batch in self.batches(sym):
                m = len(batch[0])
                if at + m > n:  # more than counted: the files changed since
                    at += m
                    break
                for col, part in zip(cols, batch, strict=True):
                    col[at : at + m] = part
                at += m
            if at != n:
                raise DataError("rows", n, f"bars of {sym} changed in {self.source} as it was read")
            series.append(SymbolSeries(sym, *cols))
        import pyarrow as pa

        pa.default_memory_pool().release_unused()  # the reader's buffers, back to the system
        return BarFeed(series)

    def batches(self, sym: str) -> Iterator[_Arrays]:
        """``(ts, open, high, low, close, volume)`` arrays of ``sym``, at most ``batch_size`` rows
        each, checked. Parquet files are read one row group at a time and column by column (what
        is held: one row group of ``sym``'s six columns, and one column being decoded); CSV files
        ``batch_size`` rows at a time by pyarrow's scanner."""
        import pyarrow.dataset as ds

        parts = (
            self._parquet_parts(sym)
            if isinstance(self._dataset.format, ds.ParquetFileFormat)
            else self._scanned_parts(sym)
        )
        last: int | None = None
        size = self.batch_size
        for ts, values in parts:
            if len(ts) == 0:
                continue
            self._check(sym, ts, values, last)
            last = int(ts[-1])
            for a in range(0, len(ts), size):
                yield (ts[a : a + size], *(v[a : a + size] for v in values))

    def _ts_ns(self, arr: Any, sym: str) -> npt.NDArray[np.int64]:
        """A timestamp column (a pyarrow time or integer type) as int64 nanoseconds."""
        import pyarrow as pa

        if arr.null_count:
            raise DataError("timestamp", None, f"missing timestamp for {sym} in {self.source}")
        if pa.types.is_timestamp(arr.type):
            ts = arr.cast(pa.timestamp("ns", tz=arr.type.tz)).cast(pa.int64())
            return np.asarray(ts.to_numpy(zero_copy_only=False), dtype=np.int64)
        if pa.types.is_integer(arr.type):
            raw = arr.to_numpy(zero_copy_only=False).astype(np.int64)
            return raw * _UNIT_NS[self._detect_unit()]  # type: ignore[no-any-return]
        raise DataError("timestamp", str(arr.type), f"not a time column in {self.source}")

    def _floats(self, arr: Any, field: str, sym: str) -> npt.NDArray[np.float64]:
        if arr.null_count:
            raise DataError(field, None, f"missing {field} for {sym} in {self.source}")
        return arr.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)  # type: ignore[no-any-return]

    def _parquet_parts(self, sym: str) -> Iterator[tuple[npt.NDArray[Any], list[npt.NDArray[Any]]]]:
        """``sym``'s rows of the files, one row group at a time, read column by column. Files
        and row groups the filters rule out (by partition or by the files' statistics) are not
        read; in the rest, rows of other symbols or out of ``start``/``end`` are dropped."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        names = self._names
        flt = self._symbol_filter(sym)
        schema = self._dataset.schema
        lo, hi = self.lo, self.hi
        pool = pa.default_memory_pool()
        for frag in self._dataset.get_fragments(filter=flt):
            inner = "symbol" in names and self._path_symbol(frag) is None
            groups = [g.row_groups[0].id for g in frag.split_by_row_group(flt, schema=schema)]
            if not groups:
                continue
            with frag.filesystem.open_input_file(frag.path) as fh:
                pf = pq.ParquetFile(fh)
                for g in groups:
                    column = partial(_read_column, pf, g)
                    ts = self._ts_ns(column(names["ts"]), sym)
                    keep: npt.NDArray[np.bool_] | None = None
                    if inner:
                        col = column(names["symbol"])
                        if pa.types.is_dictionary(col.type):
                            col = col.cast(col.type.value_type)
                        same = pc.fill_null(pc.equal(col.cast(pa.string()), sym), False)
                        keep = same.to_numpy(zero_copy_only=False)
                    if lo is not None:
                        keep = ts >= lo if keep is None else keep & (ts >= lo)
                    if hi is not None:
                        keep = ts <= hi if keep is None else keep & (ts <= hi)
                    if keep is not None and keep.all():
                        keep = None
                    if keep is not None:
                        ts = ts[keep]
                        if len(ts) == 0:
                            continue
                    values = []
                    for f in _FIELDS:
                        v = self._floats(column(names[f]), f, sym)
                        values.append(v if keep is None else v[keep])
                    # pyarrow's allocator keeps freed pages for reuse: decoding buffers,
                    # returned to the system, do not add up over the symbols being read
                    pool.release_unused()
                    yield ts, values

    def _scanned_parts(self, sym: str) -> Iterator[tuple[npt.NDArray[Any], list[npt.NDArray[Any]]]]:
        """``sym``'s rows by pyarrow's scanner, ``batch_size`` at a time (CSV files)."""
        names = self._names
        cols = [names["ts"], *(names[f] for f in _FIELDS)]
        scanner = self._dataset.scanner(
            columns=cols,
            filter=self._symbol_filter(sym),
            batch_size=self.batch_size,
            batch_readahead=1,  # bounded memory: one batch ahead per symbol, not sixteen
            fragment_readahead=1,
            use_threads=False,
        )
        for batch in scanner.to_batches():
            if batch.num_rows:
                ts = self._ts_ns(batch.column(0), sym)
                yield ts, [self._floats(batch.column(j), f, sym) for j, f in enumerate(_FIELDS, 1)]

    def _check(
        self,
        sym: str,
        ts: npt.NDArray[np.int64],
        values: list[npt.NDArray[np.float64]],
        last: int | None,
    ) -> None:
        o, h, lo, c, v = values

        def fail(field: str, i: int, why: str) -> None:
            raise DataError(
                field, None, f"{why} at {_fmt_ns(int(ts[i]))}, symbol {sym}, in {self.source}"
            )

        bad = np.flatnonzero(np.diff(ts) <= 0)
        if bad.size:
            fail("timestamp", int(bad[0]) + 1, "timestamps not strictly increasing")
        if last is not None and ts[0] <= last:
            fail("timestamp", 0, "timestamps not strictly increasing")
        for name, arr in zip(_FIELDS, values, strict=True):
            nan = np.flatnonzero(~np.isfinite(arr))
            if nan.size:
                fail(name, int(nan[0]), f"{name} is not a finite number")
        for name, arr in zip(_FIELDS[:4], values[:4], strict=True):
            neg = np.flatnonzero(arr <= 0)
            if neg.size:
                fail(name, int(neg[0]), f"{name} is not > 0")
        bad = np.flatnonzero(h < lo)
        if bad.size:
            fail("high", int(bad[0]), "high is below low")
        bad = np.flatnonzero((o < lo) | (o > h) | (c < lo) | (c > h))
        if bad.size:
            fail("open", int(bad[0]), "open/close outside [low, high]")
        bad = np.flatnonzero(v < 0)
        if bad.size:
            fail("volume", int(bad[0]), "volume is negative")

    def chunks(self, size: int = DEFAULT_CHUNK) -> Iterator[BarChunk]:
        """The merged timeline in chunks of at most ``size`` bars, read as it goes."""
        n = len(self.symbols)
        step = max(1, size // n)
        its = [self.batches(s) for s in self.symbols]
        bufs: list[_Arrays | None] = [None] * n
        pos = [0] * n
        rows = [0] * n
        done = [False] * n

        def fill(i: int) -> None:
            """At least ``step`` unread rows in symbol ``i``'s buffer, or all it has left."""
            while not done[i]:
                buf = bufs[i]
                left = 0 if buf is None else len(buf[0]) - pos[i]
                if left >= step:
                    return
                nxt = next(its[i], None)
                if nxt is None:
                    done[i] = True
                    return
                if buf is None or left == 0:
                    bufs[i] = nxt
                else:
                    bufs[i] = tuple(
                        np.concatenate((a[pos[i] :], b)) for a, b in zip(buf, nxt, strict=True)
                    )
                pos[i] = 0

        while True:
            live = []
            for i in range(n):
                fill(i)
                buf = bufs[i]
                if buf is not None and pos[i] < len(buf[0]):
                    live.append(i)
            if not live:
                return
            cut = min(
                int(bufs[i][0][min(pos[i] + step, len(bufs[i][0])) - 1])  # type: ignore[index]
                for i in live
            )
            pieces: list[tuple[int, _Arrays] | None] = [None] * n
            for i in live:
                buf = bufs[i]
                assert buf is not None
                a = pos[i]
                b = a + int(np.searchsorted(buf[0][a : a + step], cut, side="right"))
                if b > a:
                    pieces[i] = (rows[i], tuple(col[a:b] for col in buf))
                    rows[i] += b - a
                    pos[i] = b
            yield merge_pieces(pieces)
