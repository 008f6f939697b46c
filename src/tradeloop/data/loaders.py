"""Load and validate OHLCV bars from CSV, Parquet or DataFrames into a :class:`BarFeed`.

Every loader goes through :func:`validate_bars`, which normalises the input to a long frame
(``symbol``, ``ts`` as int64 nanoseconds UTC, ``open``, ``high``, ``low``, ``close``, ``volume``)
and rejects bad data with a :class:`~tradeloop.errors.DataError` that names the field, the value,
the 1-based data row, its timestamp and the source, e.g.::

    high=9.5: high is below low=10.0 at row 3 (timestamp 2020-01-06T21:00:00Z, symbol ACME)
    of bars.csv

Accepted input
    Column names are matched case-insensitively, ignoring surrounding spaces. The time column may
    be called ``timestamp``, ``time``, ``date``, ``datetime`` or ``ts``; a ``DatetimeIndex`` (or an
    index level with one of those names) works too. The symbol column (``symbol`` or ``ticker``) is
    optional when a ``symbol`` is passed. Timestamps are parsed with pandas: naive ones are taken
    as UTC, timezone-aware ones converted to UTC, integers are nanoseconds since the epoch.

Checks (vectorised; the first offending row is reported)
    missing columns, empty data, missing values, non-numeric or infinite values, unparseable
    timestamps, timestamps not strictly increasing within a symbol (in the order given: a file is
    never sorted before this check), prices <= 0, ``high < low``, ``open``/``close`` outside
    ``[low, high]`` and negative volume.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloop.data.feed import BarFeed
from tradeloop.errors import DataError

__all__ = [
    "SYMBOL_ALIASES",
    "TS_ALIASES",
    "from_dataframe",
    "load_bars",
    "load_csv",
    "load_parquet",
    "validate_bars",
]

PathLike: TypeAlias = str | os.PathLike[str]
TimeLike: TypeAlias = str | datetime | date | pd.Timestamp
Symbols: TypeAlias = str | Iterable[str]
BarSource: TypeAlias = PathLike | pd.DataFrame | Mapping[str, PathLike | pd.DataFrame]

TS_ALIASES = ("timestamp", "time", "date", "datetime", "ts")
SYMBOL_ALIASES = ("symbol", "ticker")
PRICE_COLUMNS = ("open", "high", "low", "close")
VALUE_COLUMNS = (*PRICE_COLUMNS, "volume")
OUTPUT_COLUMNS = ("symbol", "ts", *VALUE_COLUMNS)

_CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_DAY_NS = 86_400 * 10**9
_DATE_ONLY = re.compile(r"\s*\d{4}-\d{2}-\d{2}\s*")

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]


# --------------------------------------------------------------------------------------------------
# validation


def validate_bars(
    df: pd.DataFrame, source: str = "<dataframe>", symbol: str | None = None
) -> pd.DataFrame:
    """Check raw bars and normalise them to tradeloop's long format.

    Args:
        df: bars in any accepted layout (see the module docstring); not modified.
        source: name of the data's origin (a file name), used in error messages.
        symbol: the symbol of every row when ``df`` has no symbol column. If it has one, every
            row must hold this symbol.

    Returns:
        A new frame with columns ``symbol`` (str), ``ts`` (int64 ns UTC), ``open``, ``high``,
        ``low``, ``close``, ``volume`` (float64), sorted by symbol then ts, with a fresh index.

    Raises:
        DataError: on the first problem found, naming the field, value, row and source.
    """
    if len(df) == 0:
        raise DataError("rows", 0, f"no bars in {source}")
    raw = _pick_columns(df, source)
    n = len(raw)
    where = _RowDescriber(source, raw["timestamp"], raw.get("symbol"))

    # Missing values, in any column: the first row that has one.
    _raise_first(
        [
            (col, raw[col].isna().to_numpy(dtype=bool), lambda i: f"missing value {where(i)}")
            for col in raw.columns
        ],
        lambda col, i: raw[col].iloc[i],
    )

    # Symbols.
    if "symbol" in raw.columns:
        sym_col = raw["symbol"].astype(str)
        if symbol is not None:
            wrong = (sym_col != symbol).to_numpy(dtype=bool)
            if wrong.any():
                i = int(wrong.argmax())
                raise DataError("symbol", sym_col.iloc[i], f"expected {symbol!r} {where(i)}")
    elif symbol is None:
        raise DataError(
            "symbol",
            None,
            f"{source} has no symbol column ({' or '.join(SYMBOL_ALIASES)}): "
            "pass symbol= to name its symbol",
        )
    else:
        sym_col = pd.Series(np.full(n, symbol, dtype=object))

    # Numbers.
    values: dict[str, FloatArray] = {col: _as_float(raw[col]) for col in VALUE_COLUMNS}
    _raise_first(
        [
            (col, ~np.isfinite(values[col]), lambda i: f"is not a finite number {where(i)}")
            for col in VALUE_COLUMNS
        ],
        lambda col, i: raw[col].iloc[i],
    )

    # Timestamps, then their order within each symbol, in the order given.
    ts = _parse_timestamps(raw["timestamp"], where)
    where.ts = ts
    codes, uniques = pd.factorize(sym_col)
    _check_increasing(ts, np.asarray(codes, dtype=np.int64), len(uniques), where)

    # Values.
    o, h, lo, c, v = (values[col] for col in VALUE_COLUMNS)
    checks: list[tuple[str, BoolArray, Callable[[int], str]]] = [
        (col, values[col] <= 0, lambda i: f"price must be > 0 {where(i)}") for col in PRICE_COLUMNS
    ]
    checks += [
        ("high", h < lo, lambda i: f"high is below low={float(lo[i])!r} {where(i)}"),
        (
            "open",
            (o < lo) | (o > h),
            lambda i: f"open outside [low, high]={_span(lo, h, i)} {where(i)}",
        ),
        (
            "close",
            (c < lo) | (c > h),
            lambda i: f"close outside [low, high]={_span(lo, h, i)} {where(i)}",
        ),
        ("volume", v < 0, lambda i: f"volume must be >= 0 {where(i)}"),
    ]
    _raise_first(checks, lambda col, i: values[col][i])

    out = pd.DataFrame(
        {
            "symbol": sym_col.to_numpy(dtype=object),
            "ts": ts,
            **values,
        }
    )
    if len(uniques) > 1:
        out = out.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
    return out


class _RowDescriber:
    """Describes a row for error messages: ``at row 3 (timestamp ..., symbol ...) of source``."""

    def __init__(self, source: str, timestamps: pd.Series, symbols: pd.Series | None) -> None:
        self.source = source
        self.raw_ts = timestamps
        self.symbols = symbols
        self.ts: IntArray | None = None  # set once the timestamps are parsed

    def __call__(self, i: int) -> str:
        stamp = _fmt_ns(int(self.ts[i])) if self.ts is not None else str(self.raw_ts.iloc[i])
        details = f"timestamp {stamp}"
        if self.symbols is not None:
            details += f", symbol {self.symbols.iloc[i]}"
        return f"at row {i + 1} ({details}) of {self.source}"


def _pick_columns(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """The timestamp, optional symbol and OHLCV columns of ``df``, under their canonical names."""
    names = _normalised_names(df, source)
    if not any(a in names for a in TS_ALIASES):
        index_names = {str(n).strip().lower() for n in df.index.names if n is not None}
        if isinstance(df.index, pd.DatetimeIndex) and df.index.name is None:
            df = df.rename_axis("timestamp")
            index_names = {"timestamp"}
        if index_names & {*TS_ALIASES}:
            df = df.reset_index()
            names = _normalised_names(df, source)

    found = sorted(str(c) for c in df.columns)
    picked: dict[str, Any] = {}
    for canonical, aliases in (("timestamp", TS_ALIASES), ("symbol", SYMBOL_ALIASES)):
        present = [a for a in aliases if a in names]
        if len(present) > 1:
            raise DataError(
                "columns",
                sorted(str(names[a]) for a in present),
                f"ambiguous {canonical} columns in {source}: keep only one",
            )
        if present:
            picked[canonical] = names[present[0]]
    for col in VALUE_COLUMNS:
        if col in names:
            picked[col] = names[col]
    missing = sorted({"timestamp", *VALUE_COLUMNS} - picked.keys())
    if missing:
        raise DataError(
            "columns",
            missing,
            f"missing required column(s) in {source}; found columns: {found}",
        )
    return pd.DataFrame(
        {canonical: df[original].reset_index(drop=True) for canonical, original in picked.items()}
    )


def _normalised_names(df: pd.DataFrame, source: str) -> dict[str, Any]:
    """Stripped lower-case column name -> original label."""
    names: dict[str, Any] = {}
    for col in df.columns:
        key = str(col).strip().lower()
        if key in names:
            raise DataError(
                "columns", sorted([str(names[key]), str(col)]), f"duplicate column in {source}"
            )
        names[key] = col
    return names


def _as_float(col: pd.Series) -> FloatArray:
    """A column as float64; values that are not numbers become NaN."""
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy(dtype=np.float64)
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _parse_timestamps(raw: pd.Series, where: _RowDescriber) -> IntArray:
    """Parse a timestamp column to int64 ns UTC, reporting the first value pandas cannot read."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format"
        try:
            parsed = pd.to_datetime(raw, utc=True)
        except (ValueError, TypeError, OverflowError):
            # Mixed or odd formats: parse element by element, then find the culprit if any.
            try:
                parsed = pd.to_datetime(raw, utc=True, format="mixed", errors="coerce")
            except (ValueError, TypeError, OverflowError) as exc:
                raise DataError(
                    "timestamp", raw.iloc[0], f"cannot parse timestamps of {where.source}: {exc}"
                ) from exc
            bad = parsed.isna().to_numpy(dtype=bool)
            if bad.any():
                i = int(bad.argmax())
                raise DataError(
                    "timestamp", raw.iloc[i], f"cannot be parsed as a date/time {where(i)}"
                ) from None
    lo = pd.Timestamp.min.tz_localize("UTC")
    hi = pd.Timestamp.max.tz_localize("UTC")
    out = ((parsed < lo) | (parsed > hi)).to_numpy(dtype=bool)
    if out.any():
        i = int(out.argmax())
        raise DataError(
            "timestamp", raw.iloc[i], f"outside the supported range 1677..2262 {where(i)}"
        )
    return np.asarray(parsed.dt.as_unit("ns").astype("int64"), dtype=np.int64)


def _check_increasing(ts: IntArray, codes: IntArray, n_symbols: int, where: _RowDescriber) -> None:
    """Timestamps must strictly increase within each symbol, in the rows' given order."""
    if n_symbols > 1:
        order = np.argsort(codes, kind="stable")  # groups symbols, keeps each one's row order
        same = codes[order][1:] == codes[order][:-1]
    else:
        order = np.arange(len(ts))
        same = np.ones(max(len(ts) - 1, 0), dtype=bool)
    ts_o = ts[order]
    bad = same & (ts_o[1:] <= ts_o[:-1])
    if not bad.any():
        return
    rows, prev_rows = order[1:][bad], order[:-1][bad]
    k = int(rows.argmin())
    i, j = int(rows[k]), int(prev_rows[k])
    scope = " of the same symbol" if n_symbols > 1 else ""
    if ts[i] == ts[j]:
        reason = f"duplicate timestamp {where(i)}: same as row {j + 1}{scope}"
    else:
        reason = (
            f"unsorted timestamp {where(i)}: earlier than row {j + 1}{scope} "
            f"({_fmt_ns(int(ts[j]))}); timestamps must be strictly increasing"
        )
    raise DataError("timestamp", _fmt_ns(int(ts[i])), reason)


def _raise_first(
    checks: list[tuple[str, BoolArray, Callable[[int], str]]],
    value_of: Callable[[str, int], Any],
) -> None:
    """Raise for the earliest row failing any check (ties: the first check listed)."""
    best: tuple[int, str, Callable[[int], str]] | None = None
    for field, mask, reason in checks:
        if mask.any():
            i = int(mask.argmax())
            if best is None or i < best[0]:
                best = (i, field, reason)
    if best is not None:
        i, field, reason = best
        value = value_of(field, i)
        raise DataError(field, value.item() if isinstance(value, np.generic) else value, reason(i))


def _span(lo: FloatArray, hi: FloatArray, i: int) -> str:
    return f"[{float(lo[i])!r}, {float(hi[i])!r}]"


def _fmt_ns(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------------
# selection and feeds


def _to_ns(value: TimeLike | None, field: str, *, end_of_day: bool = False) -> int | None:
    """A start/end bound as int ns UTC; a date-only ``end`` includes that whole day."""
    if value is None:
        return None
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataError(field, value, f"not a date/time: {exc}") from None
    if pd.isna(t):
        raise DataError(field, value, "not a date/time")
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    ns = int(t.as_unit("ns").value)
    date_only = (isinstance(value, date) and not isinstance(value, datetime)) or (
        isinstance(value, str) and _DATE_ONLY.fullmatch(value) is not None
    )
    if end_of_day and date_only:
        ns += _DAY_NS - 1
    return ns


def _wanted(symbols: Symbols | None) -> list[str] | None:
    if symbols is None:
        return None
    return [symbols] if isinstance(symbols, str) else list(symbols)


def _check_available(wanted: list[str], available: Iterable[str], source: str) -> None:
    avail = sorted(available)
    missing = [s for s in wanted if s not in avail]
    if missing:
        raise DataError("symbols", missing, f"not in {source}; available: {', '.join(avail)}")


def _select(
    frame: pd.DataFrame,
    symbols: Symbols | None,
    start: TimeLike | None,
    end: TimeLike | None,
    source: str,
) -> pd.DataFrame:
    """Rows of a validated frame for ``symbols`` between ``start`` and ``end`` (inclusive)."""
    wanted = _wanted(symbols)
    if wanted is not None:
        _check_available(wanted, frame["symbol"].unique().tolist(), source)
        frame = frame[frame["symbol"].isin(wanted)]
    lo = _to_ns(start, "start")
    hi = _to_ns(end, "end", end_of_day=True)
    if lo is not None and hi is not None and hi < lo:
        raise DataError("end", end, f"is before start={start!r}")
    if lo is not None:
        frame = frame[frame["ts"] >= lo]
    if hi is not None:
        frame = frame[frame["ts"] <= hi]
    if len(frame) == 0:
        raise DataError(
            "rows",
            0,
            f"no bars in {source} for symbols={wanted!r}, start={start!r}, end={end!r}",
        )
    return frame.reset_index(drop=True)


def _build_feed(
    frame: pd.DataFrame,
    symbols: Symbols | None,
    start: TimeLike | None,
    end: TimeLike | None,
    source: str,
) -> BarFeed:
    return BarFeed.from_validated_frame(_select(frame, symbols, start, end, source))


# --------------------------------------------------------------------------------------------------
# readers


def _existing_file(path: PathLike) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataError("path", str(path), "no such file")
    return p


def _read_csv(path: PathLike) -> pd.DataFrame:
    p = _existing_file(path)
    try:
        header = pd.read_csv(p, nrows=0)
        # Symbols stay text ("0700" must not become 700).
        as_text = {c: str for c in header.columns if str(c).strip().lower() in SYMBOL_ALIASES}
        return pd.read_csv(p, dtype=as_text)
    except pd.errors.EmptyDataError:
        raise DataError("rows", 0, f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataError("path", str(path), f"cannot read CSV: {exc}") from None


def _read_parquet(path: PathLike) -> pd.DataFrame:
    p = _existing_file(path)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise DataError(
            "format", "parquet", "reading Parquet needs pyarrow: pip install 'tradeloop[parquet]'"
        ) from None
    try:
        return pd.read_parquet(p, engine="pyarrow")
    except (ValueError, OSError) as exc:
        raise DataError("path", str(path), f"cannot read Parquet: {exc}") from None


def _format_of(path: PathLike, format: str | None) -> str:
    if format is not None:
        fmt = format.strip().lower().lstrip(".")
        if fmt not in ("csv", "parquet"):
            raise DataError("format", format, "expected 'csv' or 'parquet'")
        return fmt
    name = Path(path).name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    suffix = "".join(Path(path).suffixes) or "(none)"
    raise DataError(
        "format",
        suffix,
        f"cannot tell the format of {path} from its suffix (known: "
        f"{', '.join(_CSV_SUFFIXES + _PARQUET_SUFFIXES)}); pass format='csv' or 'parquet'",
    )


def _validated_file(path: PathLike, symbol: str | None, format: str | None) -> pd.DataFrame:
    fmt = _format_of(path, format)
    raw = _read_csv(path) if fmt == "csv" else _read_parquet(path)
    return validate_bars(raw, str(path), symbol)


# --------------------------------------------------------------------------------------------------
# public loaders


def from_dataframe(
    df: pd.DataFrame,
    symbol: str | None = None,
    *,
    symbols: Symbols | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> BarFeed:
    """A feed from a DataFrame of bars (validated; see :func:`validate_bars`).

    ``symbol`` names the symbol of a frame without a symbol column. ``symbols`` keeps only those
    symbols; ``start``/``end`` keep bars in that time range, both inclusive (naive times are UTC,
    a date-only ``end`` includes that whole day).
    """
    return _build_feed(validate_bars(df, "<dataframe>", symbol), symbols, start, end, "<dataframe>")


def load_csv(
    path: PathLike,
    symbol: str | None = None,
    *,
    symbols: Symbols | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> BarFeed:
    """A feed from a CSV file (compressed ones, e.g. ``.csv.gz``, too).

    Filters as :func:`from_dataframe`.
    """
    frame = validate_bars(_read_csv(path), str(path), symbol)
    return _build_feed(frame, symbols, start, end, str(path))


def load_parquet(
    path: PathLike,
    symbol: str | None = None,
    *,
    symbols: Symbols | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> BarFeed:
    """A feed from a Parquet file (needs ``pip install 'tradeloop[parquet]'``).

    Filters as :func:`from_dataframe`.
    """
    frame = validate_bars(_read_parquet(path), str(path), symbol)
    return _build_feed(frame, symbols, start, end, str(path))


def load_bars(
    source: BarSource,
    *,
    symbol: str | None = None,
    symbols: Symbols | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    format: str | None = None,
) -> BarFeed:
    """A feed from a file path, a DataFrame, or a mapping ``symbol -> path or DataFrame``.

    Files are CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``), told apart by
    suffix unless ``format`` (``"csv"`` or ``"parquet"``) is given. In a mapping, each key is the
    symbol of its source (a symbol column there must agree). ``symbol``, ``symbols``, ``start``
    and ``end`` work as in :func:`from_dataframe`.
    """
    if isinstance(source, pd.DataFrame):
        return from_dataframe(source, symbol, symbols=symbols, start=start, end=end)
    if isinstance(source, str | os.PathLike):
        frame = _validated_file(source, symbol, format)
        return _build_feed(frame, symbols, start, end, str(source))
    if isinstance(source, Mapping):
        if symbol is not None:
            raise DataError(
                "symbol", symbol, "not allowed with a mapping source: its keys are the symbols"
            )
        if not source:
            raise DataError("rows", 0, "empty mapping of sources")
        keys = list(source)
        wanted = _wanted(symbols)
        if wanted is not None:
            _check_available(wanted, keys, "the mapping of sources")
            keys = [k for k in keys if k in wanted]
        parts = []
        for key in keys:
            item = source[key]
            if isinstance(item, pd.DataFrame):
                parts.append(validate_bars(item, f"<dataframe {key}>", key))
            else:
                parts.append(_validated_file(item, key, format))
        frame = pd.concat(parts, ignore_index=True)
        frame = frame.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
        return _build_feed(frame, None, start, end, "the mapping of sources")
    raise DataError(
        "source",
        type(source).__name__,
        "expected a path, a DataFrame or a mapping of symbol -> path/DataFrame",
    )
