"""Columnar logs of what grows with a run: fills, round-trip trades and done orders.

A long backtest makes millions of fills, trades and orders; as Python objects each costs a few
hundred bytes (an :class:`~tradeloop.execution.types.Order` over a kilobyte with its strings).
These logs keep them as rows of typed columns instead (``array`` buffers: int64 ids and times,
float64 prices, small integer codes for symbols and enums) and, once ``spill_rows`` rows are in
memory, write those rows to a Parquet file in a temporary directory and start again: a run holds
at most ``spill_rows`` rows per log in memory, whatever its length.

Each log is a read-only :class:`~collections.abc.Sequence` of the objects (``len``, indexing,
slices, iteration): a row is turned back into an object when asked for, equal field by field
to the one logged (not the same object). :meth:`ColumnLog.frame` gives a whole log as a pandas
DataFrame straight from the columns.

Rows are kept in the order objects were *reserved*: a trade's row is taken when it opens and an
order's when it is registered, and written once the object is done (a closed trade, an order in a
terminal state); until then the row stands for the live object itself, which the sequence
returns as is. An object still live when its row was spilled stays an object (the few positions
and orders open at a spill).

What stays in memory whatever the length: symbols, and ids that do not follow the engine's
``<prefix><number>`` scheme (a strategy's own client order ids), each kept once.

Temporary files go to ``spill_dir`` (default: the system's temporary directory, or the
``TRADELOOP_SPILL_DIR`` environment variable); ``TRADELOOP_SPILL_ROWS`` sets the default
``spill_rows`` (250,000). They are removed by :meth:`ColumnLog.close` (and
:meth:`tradeloop.results.result.BacktestResult.close`), or when the log is garbage-collected, or
at interpreter exit.
"""

from __future__ import annotations

import bisect
import math
import operator
import os
import shutil
import tempfile
import weakref
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from tradeloop.errors import ConfigError, EngineError
from tradeloop.execution.types import (
    Fill,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
    Trade,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "DEFAULT_SPILL_ROWS",
    "ColumnLog",
    "FillLog",
    "OrderLog",
    "TradeLog",
    "default_spill_dir",
    "default_spill_rows",
]

# rows per log in memory: at most ~45 MB of orders (179 B a row), ~15 MB of fills (61 B) and
# ~23 MB of trades (93 B); a spill writes one Parquet file of that many rows (tens of ms)
DEFAULT_SPILL_ROWS = 250_000
_NO_TS = -(2**63)  # an int64 time that is None (pandas' NaT)
_NAN = math.nan
_FIRST_ROW = operator.itemgetter(0)  # of a spilled part: (first row, rows, path)

T = TypeVar("T")
Col = Any  # array("q"/"d"/"b"/"i"), a list of str | None, or (read back) the same from Parquet


def default_spill_rows() -> int:
    """``TRADELOOP_SPILL_ROWS`` if set (an integer >= 1), else :data:`DEFAULT_SPILL_ROWS`."""
    raw = os.environ.get("TRADELOOP_SPILL_ROWS")
    if raw is None or raw.strip() == "":
        return DEFAULT_SPILL_ROWS
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        raise ConfigError("TRADELOOP_SPILL_ROWS", raw, "must be an integer >= 1") from None
    if value < 1:
        raise ConfigError("TRADELOOP_SPILL_ROWS", raw, "must be an integer >= 1")
    return value


def default_spill_dir() -> str | None:
    """``TRADELOOP_SPILL_DIR`` if set, else ``None`` (the system's temporary directory)."""
    raw = os.environ.get("TRADELOOP_SPILL_DIR")
    return raw if raw else None


def _check_rows(value: object) -> int:
    if value is None:
        return default_spill_rows()
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError("spill_rows", value, "must be an integer >= 1 (rows kept in memory)")
    return value


def _check_dir(value: object) -> str | None:
    if value is None:
        value = default_spill_dir()
        field = "TRADELOOP_SPILL_DIR"
        if value is None:
            return None
    else:
        field = "spill_dir"
    if not isinstance(value, str | os.PathLike):
        raise ConfigError(field, value, "must be a path to an existing directory")
    path = os.fspath(value)
    if not isinstance(path, str) or not os.path.isdir(path):
        raise ConfigError(field, value, "must be a path to an existing directory")
    return path


class _Ids:
    """Strings that are mostly ``prefix`` + a number of at least six digits (``O000042``): such
    a string is stored as its number, ``None`` as -1 and any other string as ``-2 - k``, ``k``
    its index in a table kept in memory (each distinct string once)."""

    __slots__ = ("_index", "_last", "_last_code", "others", "prefix")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.others: list[str] = []
        self._index: dict[str, int] = {}
        # the last string encoded (an order's id is encoded for its fill, then for the order)
        self._last: str | None = None
        self._last_code = -1

    def encode(self, s: str | None) -> int:
        if s is None:
            return -1
        if s is self._last:
            return self._last_code
        p = self.prefix
        if s.startswith(p):
            rest = s[len(p) :]
            # what f"{p}{n:06d}" makes (n < 10**18): ASCII digits, six, or more without a 0 first
            if (
                rest.isdigit()
                and rest.isascii()
                and (len(rest) == 6 or (6 < len(rest) <= 18 and rest[0] != "0"))
            ):
                n = int(rest)
                self._last = s
                self._last_code = n
                return n
        k = self._index.get(s)
        if k is None:
            k = self._index[s] = len(self.others)
            self.others.append(s)
        return -2 - k

    def code_of(self, s: str) -> int | None:
        """The code ``s`` has (``None``: a string never stored)."""
        k = self._index.get(s)
        if k is not None:
            return -2 - k
        code = self.encode(s)
        if code < -1:  # a string never stored: take it back out
            del self._index[s]
            self.others.pop()
            return None
        return code

    def decode(self, v: int) -> str | None:
        if v >= 0:
            return f"{self.prefix}{v:06d}"
        if v == -1:
            return None
        return self.others[-2 - v]

    def decode_all(self, codes: np.ndarray[Any, Any]) -> list[str | None]:
        p = self.prefix
        others = self.others
        return [
            f"{p}{v:06d}" if v >= 0 else (None if v == -1 else others[-2 - v])
            for v in codes.tolist()
        ]


class _Table:
    """Interned strings (symbols): code -> string, each distinct string once."""

    __slots__ = ("_index", "values")

    def __init__(self) -> None:
        self.values: list[str] = []
        self._index: dict[str, int] = {}

    def encode(self, s: str) -> int:
        k = self._index.get(s)
        if k is None:
            k = self._index[s] = len(self.values)
            self.values.append(s)
        return k


def _enum_codes(enum: Any) -> tuple[dict[Any, int], tuple[Any, ...]]:
    members = tuple(enum)
    return {m: i for i, m in enumerate(members)}, members


_SIDE, _SIDES = _enum_codes(OrderSide)
_TYPE, _TYPES = _enum_codes(OrderType)
_TIF, _TIFS = _enum_codes(TimeInForce)
_STATUS, _STATUSES = _enum_codes(OrderStatus)
_CLASS, _CLASSES = _enum_codes(OrderClass)
_BUY = OrderSide.BUY

_NUMPY_TYPE = {"q": "int64", "d": "float64", "b": "int8", "i": "int32"}


def _opt(v: float) -> float | None:
    return None if v != v else v


class ColumnLog(Sequence[T]):
    """Rows of typed columns, spilled to Parquet past ``spill_rows``; a read-only sequence of
    ``T`` (see the module docstring). Subclasses name the columns and encode/decode a row."""

    NAMES: tuple[str, ...] = ()
    TYPES: str = ""  # one array typecode per column, "O" for a list of str | None

    def __init__(self, spill_rows: int | None = None, spill_dir: str | None = None) -> None:
        self.spill_rows = _check_rows(spill_rows)
        self.spill_dir = _check_dir(spill_dir)
        self._cols: list[Col] = self._empty()
        self._cap = 0  # rows the in-memory columns have room for (the first _n - _base used)
        # (row, object) written since the columns were last brought up to date: rows are
        # encoded in batches (a row's columns are far apart in memory; one at a time, each
        # costs a cache miss, in a run that touches them once every many bars)
        self._pending: list[tuple[int, T]] = []
        self._base = 0  # rows spilled (the in-memory rows start there)
        self._n = 0  # rows in all
        self._live: dict[int, T] = {}  # reserved rows whose object is not written yet
        self._late: dict[int, T] = {}  # rows spilled while live, done since: kept as objects
        self._parts: list[tuple[int, int, str]] = []  # (first row, rows, path) of each spill
        self._dir: str | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._cache: tuple[int, list[Col]] | None = None  # a spilled part read back
        self._closed = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        assert len(cls.NAMES) == len(cls.TYPES), cls.__name__

    def _empty(self) -> list[Col]:
        return [[] if t == "O" else array(t) for t in self.TYPES]

    # -- writing -------------------------------------------------------------------------------

    def _flush(self) -> None:
        """Bring the columns up to date: room for every row in memory (zeros and ``None`` for
        rows still live; the columns grow in blocks), and the pending rows written."""
        rows = self._n - self._base
        while self._cap < rows:
            # by a quarter (at least 1,024 rows), up to spill_rows: little unused room
            k = max(rows - self._cap, min(max(self._cap // 4, 1024), self.spill_rows - self._cap))
            for col, t in zip(self._cols, self.TYPES, strict=True):
                if t == "O":
                    col.extend([None] * k)
                else:
                    col.frombytes(bytes(k * col.itemsize))
            self._cap += k
        pending = self._pending
        if pending:
            self._write(self._cols, self._base, pending)
            pending.clear()

    def reserve(self, obj: T) -> int:
        """Take the next row for ``obj``, still live: the row stands for the object itself until
        :meth:`commit` writes it. Returns the row."""
        row = self._n
        self._live[row] = obj
        self._n = row + 1
        if row + 1 - self._base >= self.spill_rows:
            self._spill()
        return row

    def commit(self, row: int) -> None:
        """Write the object of a reserved ``row`` (it is done: it will not change again)."""
        obj = self._live.pop(row)
        if row < self._base:
            self._late[row] = obj  # its row was spilled as a placeholder
        else:
            pending = self._pending
            pending.append((row, obj))
            if len(pending) >= 512:
                self._flush()

    def _add(self, obj: T) -> None:
        """Append a row for ``obj``, done already."""
        row = self._n
        self._n = row + 1
        pending = self._pending
        pending.append((row, obj))
        if row + 1 - self._base >= self.spill_rows:
            self._spill()
        elif len(pending) >= 512:
            self._flush()

    def _write(self, cols: list[Col], base: int, rows: list[tuple[int, T]]) -> None:
        """Encode each ``(row, object)`` of ``rows`` into ``cols`` at ``row - base`` (one loop
        per batch, the columns bound to locals: this is the per-row cost of a run)."""
        raise NotImplementedError

    def _read(self, cols: list[Col], i: int, row: int) -> T:
        raise NotImplementedError

    def _spill(self) -> None:
        """Write the rows in memory to a Parquet file and start again with empty columns."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._closed:
            raise EngineError("this log was closed: it cannot take more rows")
        rows = self._n - self._base
        if rows == 0:
            return
        self._flush()
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="tradeloop-results-", dir=self.spill_dir)
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, True)
        path = os.path.join(self._dir, f"{type(self).__name__}-{len(self._parts):05d}.parquet")
        arrays = []
        for col, t in zip(self._cols, self.TYPES, strict=True):
            if t == "O":
                arrays.append(pa.array(col[:rows], type=pa.string()))
            else:
                arrays.append(pa.array(np.frombuffer(col, dtype=_NUMPY_TYPE[t], count=rows)))
        pq.write_table(pa.Table.from_arrays(arrays, names=list(self.NAMES)), path)
        self._parts.append((self._base, rows, path))
        self._base = self._n
        self._cols = self._empty()
        self._cap = 0

    # -- reading -------------------------------------------------------------------------------

    def _part_cols(self, k: int) -> list[Col]:
        """The columns of spilled part ``k`` (one part is cached)."""
        cache = self._cache
        if cache is not None and cache[0] == k:
            return cache[1]
        cols = self._load_part(k, compact=True)
        self._cache = (k, cols)
        return cols

    def _load_part(self, k: int, compact: bool, names: Sequence[str] | None = None) -> list[Col]:
        """Spilled part ``k``'s columns (``names``: only those, in that order)."""
        import pyarrow.parquet as pq

        if self._closed:
            raise EngineError(
                f"{type(self).__name__}: the result was closed, its spilled rows are gone"
            )
        names = self.NAMES if names is None else names
        table = pq.read_table(self._parts[k][2], columns=list(names))
        cols: list[Col] = []
        for name in names:
            t = self.TYPES[self.NAMES.index(name)]
            column = table.column(name)
            if t == "O":
                cols.append(column.to_pylist())
            elif compact:
                a = array(t)
                a.frombytes(memoryview(column.to_numpy()).cast("B"))  # one copy, not two
                cols.append(a)
            else:
                cols.append(column.to_numpy())
        return cols

    def _locate(self, row: int) -> tuple[list[Col], int]:
        if row >= self._base:
            self._flush()
            return self._cols, row - self._base
        parts = self._parts
        k = bisect.bisect_right(parts, row, key=_FIRST_ROW) - 1  # the last part starting <= row
        return self._part_cols(k), row - parts[k][0]

    def _get(self, row: int) -> T:
        obj = self._live.get(row)
        if obj is None:
            obj = self._late.get(row)
        if obj is not None:
            return obj
        cols, i = self._locate(row)
        return self._read(cols, i, row)

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return [self._get(i) for i in range(*index.indices(self._n))]
        try:
            i = index.__index__()
        except AttributeError:
            raise TypeError(
                f"{type(self).__name__} indices must be integers or slices, "
                f"not {type(index).__name__}"
            ) from None
        n = self._n
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"{type(self).__name__} index out of range")
        return self._get(i)

    def __iter__(self) -> Iterator[T]:
        live = self._live
        late = self._late
        n = self._n
        for k, (first, rows, _path) in enumerate(self._parts):
            cols = self._part_cols(k)
            for i in range(rows):
                row = first + i
                if row >= n:
                    return
                obj = live.get(row) or late.get(row)
                yield obj if obj is not None else self._read(cols, i, row)
        base = self._base
        self._flush()
        row = base
        while row < self._n:
            obj = live.get(row) or late.get(row)
            yield obj if obj is not None else self._read(self._cols, row - base, row)
            row += 1

    def __reversed__(self) -> Iterator[T]:
        for row in range(self._n - 1, -1, -1):
            yield self._get(row)

    def __contains__(self, value: object) -> bool:
        return any(v is value or v == value for v in self)

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        for i in range(start, self._n if stop is None else min(stop, self._n)):
            if self._get(i) is value:
                return i
        raise ValueError(f"{value!r} is not in the log")

    def count(self, value: Any) -> int:
        return sum(1 for v in self if v is value)

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        if isinstance(other, ColumnLog | list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        spilled = f", {self._base:,} spilled" if self._base else ""
        return f"<{type(self).__name__} {self._n:,} rows{spilled}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))  # a pickled log is a plain list of its objects

    # -- whole columns -------------------------------------------------------------------------

    @property
    def rows_in_memory(self) -> int:
        """Rows held in the in-memory columns (at most ``spill_rows``)."""
        return self._n - self._base

    @property
    def spilled_rows(self) -> int:
        return self._base

    @property
    def spill_files(self) -> list[str]:
        """The Parquet files written so far (gone once the log is closed)."""
        return [] if self._closed else [p for _, _, p in self._parts]

    @property
    def closed(self) -> bool:
        return self._closed

    def columns(self, names: Sequence[str] | None = None) -> dict[str, Any]:
        """Every column (or those ``names``) over all rows as a numpy array (codes as stored;
        object arrays for the string columns). Rows still held as objects hold placeholders
        here (see :meth:`held_objects`)."""
        import numpy as np

        names = self.NAMES if names is None else tuple(names)
        for name in names:
            if name not in self.NAMES:
                raise ConfigError("names", name, f"not a column of {type(self).__name__}")
        self._flush()
        pieces: list[list[Col]] = [
            self._load_part(k, compact=False, names=names) for k in range(len(self._parts))
        ]
        rows = self._n - self._base
        out: dict[str, Any] = {}
        for j, name in enumerate(names):
            t = self.TYPES[self.NAMES.index(name)]
            mine = self._cols[self.NAMES.index(name)]
            if t == "O":
                values: list[Any] = []
                for p in pieces:
                    values.extend(p[j])
                values.extend(mine[:rows])
                arr = np.empty(len(values), dtype=object)
                arr[:] = values
                out[name] = arr
            else:
                mem = (
                    np.frombuffer(mine, dtype=_NUMPY_TYPE[t], count=rows)
                    if rows
                    else np.empty(0, dtype=_NUMPY_TYPE[t])
                )
                out[name] = np.concatenate([*(p[j] for p in pieces), mem]).astype(
                    _NUMPY_TYPE[t], copy=False
                )
        return out

    def held_objects(self) -> dict[int, T]:
        """Rows whose object is held as is (live, or done after their row was spilled)."""
        return {**self._late, **self._live}

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame: the same as the objects' frame, built from the columns."""
        raise NotImplementedError

    def _frame_from(
        self, build: Callable[[dict[str, Any]], pd.DataFrame], objects: Callable[[list[T]], Any]
    ) -> pd.DataFrame:
        import pandas as pd

        frame = build(self.columns())
        held = self.held_objects()
        if held:
            rows = sorted(held)
            patch = objects([held[r] for r in rows])
            patch.index = pd.Index(rows)
            frame = pd.concat([frame.drop(index=rows), patch]).sort_index(kind="stable")
            frame.index = pd.RangeIndex(len(frame))
        return frame

    def close(self) -> None:
        """Remove the spilled files; rows in memory stay readable, spilled ones do not."""
        self._closed = True
        self._cache = None
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> ColumnLog[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- fills ---------------------------------------------------------------------------------------


class FillLog(ColumnLog[Fill]):
    """The fills of a run, in order. ``append`` is what the exchange calls for each fill."""

    NAMES = (
        "execution_id",
        "order_id",
        "symbol",
        "side",
        "qty",
        "price",
        "commission",
        "ts",
        "position_qty",
    )
    TYPES = "qqibdddqd"

    def __init__(
        self,
        spill_rows: int | None = None,
        spill_dir: str | None = None,
        *,
        order_prefix: str = "O",
        execution_prefix: str = "E",
    ) -> None:
        super().__init__(spill_rows, spill_dir)
        self.execution_ids = _Ids(execution_prefix)
        self.order_ids = _Ids(order_prefix)
        self.symbols = _Table()

    append = ColumnLog._add  # one call per fill: the exchange's ``fills.append(fill)``

    def extend(self, fills: Sequence[Fill]) -> None:
        for f in fills:
            self._add(f)

    def _write(self, cols: list[Col], base: int, rows: list[tuple[int, Fill]]) -> None:
        exec_id = self.execution_ids.encode
        order_id = self.order_ids.encode
        symbols = self.symbols
        sym_index = symbols._index
        side = _SIDE
        nan = _NAN
        c0, c1, c2, c3, c4, c5, c6, c7, c8 = cols
        for row, f in rows:
            i = row - base
            c0[i] = exec_id(f.execution_id)
            c1[i] = order_id(f.order_id)
            sym = sym_index.get(f.symbol)
            c2[i] = symbols.encode(f.symbol) if sym is None else sym
            c3[i] = side[f.side]
            c4[i] = f.qty
            c5[i] = f.price
            c6[i] = f.commission
            c7[i] = f.ts
            pq = f.position_qty
            c8[i] = nan if pq is None else pq

    def _read(self, cols: list[Col], i: int, row: int) -> Fill:
        f = Fill.__new__(Fill)
        f.execution_id = self.execution_ids.decode(cols[0][i]) or ""
        f.order_id = self.order_ids.decode(cols[1][i]) or ""
        f.symbol = self.symbols.values[cols[2][i]]
        f.side = _SIDES[cols[3][i]]
        f.qty = cols[4][i]
        f.price = cols[5][i]
        f.commission = cols[6][i]
        f.ts = cols[7][i]
        f.position_qty = _opt(cols[8][i])
        return f

    def sums(self) -> tuple[float, float]:
        """``sum(abs(f.qty * f.price) for f in fills)`` and ``sum(f.commission for f in
        fills)``: the same sums of the same floats, in the same order, from the columns."""
        return sum(self._values(_traded)), sum(self._values(_commission))

    def _values(self, f: Callable[[list[Col], int, int], Iterator[float]]) -> Iterator[float]:
        """``f(cols, a, b)`` over every stretch of at most 65,536 rows, in order."""
        for k, (_first, rows, _path) in enumerate(self._parts):
            cols = self._part_cols(k)
            for a in range(0, rows, 65_536):
                yield from f(cols, a, min(rows, a + 65_536))
        self._flush()
        rows = self._n - self._base
        for a in range(0, rows, 65_536):
            yield from f(self._cols, a, min(rows, a + 65_536))

    def frame(self) -> pd.DataFrame:
        """Like :func:`tradeloop.results.frames.fills_frame` of the fills."""
        import numpy as np
        import pandas as pd

        from tradeloop.results.frames import FILL_FRAME_COLUMNS

        c = self.columns()
        symbols = np.array(self.symbols.values or [""], dtype=object)
        sides = np.array([s.value for s in _SIDES], dtype=object)
        return pd.DataFrame(
            {
                "execution_id": pd.Series(
                    [s or "" for s in self.execution_ids.decode_all(c["execution_id"])],
                    dtype="object",
                ),
                "order_id": pd.Series(
                    [s or "" for s in self.order_ids.decode_all(c["order_id"])], dtype="object"
                ),
                "symbol": pd.Series(symbols[c["symbol"]], dtype="object"),
                "side": pd.Series(sides[c["side"]], dtype="object"),
                "qty": c["qty"],
                "price": c["price"],
                "commission": c["commission"],
                "timestamp": _ns_index(c["ts"]),
                "position_qty": c["position_qty"],
            },
            columns=list(FILL_FRAME_COLUMNS),
        )


def _traded(cols: list[Col], a: int, b: int) -> Iterator[float]:
    return map(abs, map(operator.mul, cols[4][a:b].tolist(), cols[5][a:b].tolist()))


def _commission(cols: list[Col], a: int, b: int) -> Iterator[float]:
    return iter(cols[6][a:b].tolist())


def _ns_index(ns: np.ndarray[Any, Any]) -> pd.DatetimeIndex:
    import pandas as pd

    return pd.DatetimeIndex(ns.astype("int64").view("datetime64[ns]"), tz="UTC")


# -- trades --------------------------------------------------------------------------------------


class TradeLog(ColumnLog[Trade]):
    """The round trips of a run in the order they opened: :meth:`reserve` takes a trade's row
    when it opens, :meth:`commit` writes it once it is closed (an open trade is its live
    object)."""

    NAMES = (
        "symbol",
        "side",
        "entry_ts",
        "exit_ts",
        "entry_price",
        "exit_price",
        "max_qty",
        "pnl",
        "commission",
        "entry_notional",
        "entry_qty",
        "exit_notional",
        "exit_qty",
    )
    TYPES = "ibqqddddddddd"

    def __init__(self, spill_rows: int | None = None, spill_dir: str | None = None) -> None:
        super().__init__(spill_rows, spill_dir)
        self.symbols = _Table()

    def append(self, trade: Trade) -> None:
        """Add a trade already closed (or an open one, kept live)."""
        row = self.reserve(trade)
        if trade.is_closed:
            self.commit(row)

    def _write(self, cols: list[Col], base: int, rows: list[tuple[int, Trade]]) -> None:
        symbols = self.symbols
        side = _SIDE
        nan = _NAN
        no_ts = _NO_TS
        c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12 = cols
        for row, t in rows:
            i = row - base
            c0[i] = symbols.encode(t.symbol)
            c1[i] = side[t.side]
            c2[i] = t.entry_ts
            x = t.exit_ts
            c3[i] = no_ts if x is None else x
            c4[i] = t.entry_price
            p = t.exit_price
            c5[i] = nan if p is None else p
            c6[i] = t.max_qty
            c7[i] = t.pnl
            c8[i] = t.commission
            c9[i] = t._entry_notional
            c10[i] = t._entry_qty
            c11[i] = t._exit_notional
            c12[i] = t._exit_qty

    def _read(self, cols: list[Col], i: int, row: int) -> Trade:
        t = Trade.__new__(Trade)
        t.symbol = self.symbols.values[cols[0][i]]
        t.side = _SIDES[cols[1][i]]
        t.entry_ts = cols[2][i]
        x = cols[3][i]
        t.exit_ts = None if x == _NO_TS else x
        t.entry_price = cols[4][i]
        t.exit_price = _opt(cols[5][i])
        t.max_qty = cols[6][i]
        t.pnl = cols[7][i]
        t.commission = cols[8][i]
        t._entry_notional = cols[9][i]
        t._entry_qty = cols[10][i]
        t._exit_notional = cols[11][i]
        t._exit_qty = cols[12][i]
        return t

    def closed_pnl(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """``net_pnl`` and ``return_pct`` of the closed trades, in order, from the columns
        (the same floats the trades' properties give)."""
        import numpy as np

        c = self.columns(("pnl", "commission", "entry_price", "max_qty", "exit_ts"))
        pnl = c["pnl"]
        net = pnl - c["commission"]
        basis = c["entry_price"] * c["max_qty"]
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.where(basis != 0.0, 100.0 * pnl / np.where(basis != 0.0, basis, 1.0), 0.0)
        closed = c["exit_ts"] != _NO_TS
        for row, t in self.held_objects().items():
            closed[row] = t.is_closed
            net[row] = t.net_pnl
            pct[row] = t.return_pct
        return net[closed], pct[closed]

    def frame(self) -> pd.DataFrame:
        """Like :func:`tradeloop.results.frames.trades_frame` of the trades."""
        from tradeloop.results.frames import trades_frame

        return self._frame_from(self._build_frame, trades_frame)

    def _build_frame(self, c: dict[str, Any]) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        from tradeloop.results.frames import TRADE_FRAME_COLUMNS

        symbols = np.array(self.symbols.values or [""], dtype=object)
        direction = np.array(["long" if s is _BUY else "short" for s in _SIDES], dtype=object)
        entry = _ns_index(c["entry_ts"])
        exit_ = _ns_index(c["exit_ts"])
        basis = c["entry_price"] * c["max_qty"]
        with np.errstate(divide="ignore", invalid="ignore"):
            ret = np.where(basis != 0.0, 100.0 * c["pnl"] / np.where(basis != 0.0, basis, 1.0), 0.0)
        return pd.DataFrame(
            {
                "symbol": pd.Series(symbols[c["symbol"]], dtype="object"),
                "direction": pd.Series(direction[c["side"]], dtype="object"),
                "entry_time": entry,
                "exit_time": exit_,
                "duration": exit_ - entry,
                "is_open": c["exit_ts"] == _NO_TS,
                "qty": c["max_qty"],
                "entry_price": c["entry_price"],
                "exit_price": c["exit_price"],
                "pnl": c["pnl"],
                "commission": c["commission"],
                "net_pnl": c["pnl"] - c["commission"],
                "return_pct": ret,
            },
            columns=list(TRADE_FRAME_COLUMNS),
        )


# -- orders --------------------------------------------------------------------------------------


class OrderLog(ColumnLog[Order]):
    """The orders of a run in the order they were registered; an order's row is written once it
    is done (terminal, with the rest of its order class). Its legs are the rows after it."""

    NAMES = (
        "id",
        "client_order_id",
        "symbol",
        "side",
        "type",
        "tif",
        "qty",
        "limit_price",
        "stop_price",
        "trail_price",
        "trail_percent",
        "status",
        "filled_qty",
        "avg_fill_price",
        "commission",
        "created_at",
        "updated_at",
        "reject_reason",
        "replaces",
        "replaced_by",
        "broker_order_id",
        "tag",
        "order_class",
        "parent_id",
        "eligible_after",
        "session_day",
        "triggered",
        "trail_ref",
        "legs",
    )
    TYPES = "qqibbbdddddbdddqqOqqOObqqqbdb"

    def __init__(
        self,
        spill_rows: int | None = None,
        spill_dir: str | None = None,
        *,
        id_prefix: str = "O",
        client_id_prefix: str = "",
    ) -> None:
        super().__init__(spill_rows, spill_dir)
        self.ids = _Ids(id_prefix)
        self.client_prefix = client_id_prefix
        self.client_ids = _Ids(client_id_prefix + id_prefix)
        self.symbols = _Table()

    def append(self, order: Order) -> None:
        """Add an order that is done (and its legs after it)."""
        self.commit(self.reserve(order))
        for leg in order.legs:
            self.append(leg)

    def _write(self, cols: list[Col], base: int, rows: list[tuple[int, Order]]) -> None:
        enc = self.ids.encode
        client_enc = self.client_ids.encode
        client_prefix = self.client_prefix
        symbols = self.symbols
        sym_index = symbols._index
        side, otype, tif, status, oclass = _SIDE, _TYPE, _TIF, _STATUS, _CLASS
        nan = _NAN
        (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14) = cols[:15]
        (c15, c16, c17, c18, c19, c20, c21, c22, c23, c24, c25, c26, c27, c28) = cols[15:]
        for row, o in rows:
            i = row - base
            oid = o.id
            code = c0[i] = enc(oid)
            cid = o.client_order_id
            if code >= 0 and (cid is oid or cid == client_prefix + oid):
                c1[i] = code  # the generated client id: the same number
            else:
                c1[i] = client_enc(cid)
            sym = sym_index.get(o.symbol)
            c2[i] = symbols.encode(o.symbol) if sym is None else sym
            c3[i] = side[o.side]
            c4[i] = otype[o.type]
            c5[i] = tif[o.tif]
            c6[i] = o.qty
            v = o.limit_price
            c7[i] = nan if v is None else v
            v = o.stop_price
            c8[i] = nan if v is None else v
            v = o.trail_price
            c9[i] = nan if v is None else v
            v = o.trail_percent
            c10[i] = nan if v is None else v
            c11[i] = status[o.status]
            c12[i] = o.filled_qty
            v = o.avg_fill_price
            c13[i] = nan if v is None else v
            c14[i] = o.commission
            c15[i] = o.created_at
            c16[i] = o.updated_at
            c17[i] = o.reject_reason
            r = o.replaces
            c18[i] = -1 if r is None else enc(r)
            r = o.replaced_by
            c19[i] = -1 if r is None else enc(r)
            c20[i] = o.broker_order_id
            c21[i] = o.tag
            c22[i] = oclass[o.order_class]
            r = o.parent_id
            c23[i] = -1 if r is None else enc(r)
            c24[i] = o.eligible_after
            c25[i] = o.session_day
            c26[i] = 1 if o.triggered else 0
            v = o.trail_ref
            c27[i] = nan if v is None else v
            legs = o.legs
            c28[i] = len(legs) if legs else 0

    def _read(self, cols: list[Col], i: int, row: int) -> Order:
        ids = self.ids
        o = Order.__new__(Order)
        o.id = ids.decode(cols[0][i]) or ""
        o.client_order_id = self.client_ids.decode(cols[1][i]) or ""
        o.symbol = self.symbols.values[cols[2][i]]
        o.side = _SIDES[cols[3][i]]
        o.type = _TYPES[cols[4][i]]
        o.tif = _TIFS[cols[5][i]]
        o.qty = cols[6][i]
        o.limit_price = _opt(cols[7][i])
        o.stop_price = _opt(cols[8][i])
        o.trail_price = _opt(cols[9][i])
        o.trail_percent = _opt(cols[10][i])
        o.status = _STATUSES[cols[11][i]]
        o.filled_qty = cols[12][i]
        o.avg_fill_price = _opt(cols[13][i])
        o.commission = cols[14][i]
        o.created_at = cols[15][i]
        o.updated_at = cols[16][i]
        o.reject_reason = cols[17][i]
        o.replaces = ids.decode(cols[18][i])
        o.replaced_by = ids.decode(cols[19][i])
        o.broker_order_id = cols[20][i]
        o.tag = cols[21][i]
        o.order_class = _CLASSES[cols[22][i]]
        o.parent_id = ids.decode(cols[23][i])
        o.eligible_after = cols[24][i]
        o.session_day = cols[25][i]
        o.triggered = bool(cols[26][i])
        o.trail_ref = _opt(cols[27][i])
        nlegs = cols[28][i]
        o.legs = tuple([self._get(row + 1 + j) for j in range(nlegs)]) if nlegs else ()
        return o

    def count_status(self, status: OrderStatus) -> int:
        """How many orders are in ``status``, from the status column."""
        import numpy as np

        code = _STATUS[status]
        statuses = self.columns(("status",))["status"]
        n = int(np.count_nonzero(statuses == code))
        for row, o in self.held_objects().items():
            n += (o.status is status) - (int(statuses[row]) == code)
        return n

    def find(self, order_id: str) -> Order | None:
        """The done order with this id (``None`` if none is logged): a scan of the id column."""
        code = self.ids.code_of(order_id)
        return None if code is None else self._find(0, code, lambda o: o.id == order_id)

    def find_client(self, client_order_id: str) -> Order | None:
        """The done order with this client order id (``None`` if none is logged)."""
        code = self.client_ids.code_of(client_order_id)
        if code is None:
            return None
        return self._find(1, code, lambda o: o.client_order_id == client_order_id)

    def _find(self, j: int, code: int, match: Callable[[Order], bool]) -> Order | None:
        import numpy as np

        for obj in self._late.values():
            if match(obj):
                return obj
        self._flush()
        mem = self._cols[j]
        rows = self._n - self._base
        if rows:
            hits = np.flatnonzero(np.frombuffer(mem, dtype=np.int64, count=rows) == code)
            for i in hits.tolist():
                if self._base + i not in self._live:
                    return self._read(self._cols, i, self._base + i)
        for k in range(len(self._parts) - 1, -1, -1):
            first = self._parts[k][0]
            cols = self._part_cols(k)
            hits = np.flatnonzero(np.frombuffer(cols[j], dtype=np.int64) == code)
            for i in hits.tolist():
                if first + i not in self._live and first + i not in self._late:
                    return self._read(cols, i, first + i)
        return None

    def frame(self) -> pd.DataFrame:
        """Like :func:`tradeloop.results.frames.orders_frame` of the orders."""
        from tradeloop.results.frames import orders_frame

        return self._frame_from(self._build_frame, orders_frame)

    def _build_frame(self, c: dict[str, Any]) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        from tradeloop.results.frames import ORDER_FRAME_COLUMNS

        def codes(values: tuple[Any, ...], key: str) -> pd.Series[str]:
            table = np.array([v.value for v in values], dtype=object)
            return pd.Series(table[c[key]], dtype="object")

        def ids(codec: _Ids, key: str, none: str | None = None) -> pd.Series[str]:
            return pd.Series(
                [none if s is None else s for s in codec.decode_all(c[key])], dtype="object"
            )

        def strings(key: str) -> pd.Series[str]:
            return pd.Series(list(c[key]), dtype="object")

        symbols = np.array(self.symbols.values or [""], dtype=object)
        return pd.DataFrame(
            {
                "id": ids(self.ids, "id", ""),
                "client_order_id": ids(self.client_ids, "client_order_id", ""),
                "symbol": pd.Series(symbols[c["symbol"]], dtype="object"),
                "side": codes(_SIDES, "side"),
                "type": codes(_TYPES, "type"),
                "tif": codes(_TIFS, "tif"),
                "qty": c["qty"],
                "limit_price": c["limit_price"],
                "stop_price": c["stop_price"],
                "trail_price": c["trail_price"],
                "trail_percent": c["trail_percent"],
                "status": codes(_STATUSES, "status"),
                "filled_qty": c["filled_qty"],
                "avg_fill_price": c["avg_fill_price"],
                "commission": c["commission"],
                "created_at": _ns_index(c["created_at"]),
                "updated_at": _ns_index(c["updated_at"]),
                "reject_reason": strings("reject_reason"),
                "replaces": ids(self.ids, "replaces"),
                "replaced_by": ids(self.ids, "replaced_by"),
                "broker_order_id": strings("broker_order_id"),
                "tag": strings("tag"),
                "order_class": codes(_CLASSES, "order_class"),
                "parent_id": ids(self.ids, "parent_id"),
            },
            columns=list(ORDER_FRAME_COLUMNS),
        )
