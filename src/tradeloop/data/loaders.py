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
    as UTC, timezone-aware ones converted to UTC.

Numeric timestamps
    Numbers are times since the Unix epoch (UTC) in the unit ``timestamp_unit`` names (``s``,
    ``ms``, ``us`` or ``ns``), or, without it, the unit their number of digits gives: 9-10
    digits are seconds, 12-13 milliseconds, 15-16 microseconds, 18-19 nanoseconds (each range
    covers 1973-03-03 .. 2286; e.g. 1577998800, 1577998800000); when it is not set, 8-digit
    integers are ``YYYYMMDD`` dates (20200102). Rejected, naming the column, row and value and
    what to set: a value that fits none of these, a column mixing units, and any time before
    1970-01-02 or from 2200 on (e.g. seconds read as milliseconds).

Checks (vectorised; the first offending row is reported)
    missing columns, empty data, missing values, non-numeric or infinite values, unparseable or
    implausible timestamps, timestamps not strictly increasing within a symbol (in the order
    given: a file is never sorted before this check), prices <= 0, ``high < low``,
    ``open``/``close`` outside ``[low, high]`` and negative volume.
"""

from __future__ import annotations

import math
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
    "TIMESTAMP_UNITS",
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

TIMESTAMP_UNITS: tuple[str, ...] = ("s", "ms", "us", "ns")
_UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_EARLIEST_NS = 86_400 * 10**9  # 1970-01-02T00:00Z: anything earlier is a unit mistake
_LATEST_NS = 7_258_118_400 * 10**9  # 2200-01-01T00:00Z (exclusive)
# Magnitude classes of numeric timestamps, by number of digits: (lower bound, unit or None).
_DIGIT_CLASSES: tuple[tuple[float, str | None], ...] = (
    (-math.inf, None),
    (1e7, "yyyymmdd"),
    (1e8, "s"),
    (1e10, None),
    (1e11, "ms"),
    (1e13, None),
    (1e14, "us"),
    (1e16, None),
    (1e17, "ns"),
)
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
_SET_UNIT = (
    "pass timestamp_unit='s', 'ms', 'us' or 'ns' (data.timestamp_unit in a config) to say which"
)

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
    df: pd.DataFrame,
    source: str = "<dataframe>",
    symbol: str | None = None,
    *,
    timestamp_unit: str | None = None,
) -> pd.DataFrame:
    """Check raw bars and normalise them to tradeloop's long format.

    Args:
        df: bars in any accepted layout (see the module docstring); not modified.
        source: name of the data's origin (a file name), used in error messages.
        symbol: the symbol of every row when ``df`` has no symbol column. If it has one, every
            row must hold this symbol.
        timestamp_unit: the unit of numeric timestamps (``s``, ``ms``, ``us``, ``ns``); by
            default it is told from their number of digits. Text and datetime columns ignore it.

    Returns:
        A new frame with columns ``symbol`` (str), ``ts`` (int64 ns UTC), ``open``, ``high``,
        ``low``, ``close``, ``volume`` (float64), sorted by symbol then ts, with a fresh index.

    Raises:
        DataError: on the first problem found, naming the field, value, row and source.
    """
    unit = _check_unit(timestamp_unit)
    if len(df) == 0:
        raise DataError("rows", 0, f"no bars in {source}")
    raw, ts_column = _pick_columns(df, source)
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
    ts = _parse_timestamps(raw["timestamp"], where, unit, ts_column)
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


def _pick_columns(df: pd.DataFrame, source: str) -> tuple[pd.DataFrame, str]:
    """The timestamp, optional symbol and OHLCV columns of ``df``, under their canonical names,
    and the timestamp column's own name."""
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
    frame = pd.DataFrame(
        {canonical: df[original].reset_index(drop=True) for canonical, original in picked.items()}
    )
    return frame, str(picked["timestamp"])


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


def _check_unit(unit: str | None) -> str | None:
    if unit is None:
        return None
    if not isinstance(unit, str) or unit.strip().lower() not in TIMESTAMP_UNITS:
        raise DataError("timestamp_unit", unit, f"expected one of {', '.join(TIMESTAMP_UNITS)}")
    return unit.strip().lower()


def _parse_timestamps(
    raw: pd.Series, where: _RowDescriber, unit: str | None = None, column: str = "timestamp"
) -> IntArray:
    """Parse a timestamp column to int64 ns UTC, reporting the first value pandas cannot read.

    Numeric columns are epoch times (see :func:`_epoch_to_ns`); text and datetimes go through
    pandas."""
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        return _epoch_to_ns(raw, where, unit, column)
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


def _epoch_to_ns(raw: pd.Series, where: _RowDescriber, unit: str | None, column: str) -> IntArray:
    """Numeric epoch timestamps to int64 ns, in ``unit`` or the unit their digits give."""
    values = raw.to_numpy()
    if values.dtype.kind not in "iuf":  # an extension dtype without a numpy equivalent
        values = raw.to_numpy(dtype=np.float64)
    if (
        values.dtype.kind == "f"
        and bool(np.all(values == np.round(values)))
        and bool(np.all(np.abs(values) < 2.0**63))
    ):
        values = values.astype(np.int64)  # whole numbers stored as floats
    col = f"column {column!r}"
    given = unit is not None
    if unit is None:
        unit = _detect_unit(values, where, col)
        if unit == "yyyymmdd":
            return _yyyymmdd_to_ns(values, where, col)
    factor = _UNIT_NS[unit]
    if values.dtype.kind == "f":
        ns_f = values * float(factor)
        early, late = ns_f < _EARLIEST_NS, ns_f >= _LATEST_NS
    else:
        ints = values.astype(np.int64)
        early = ints < -(-_EARLIEST_NS // factor)
        late = ints > (_LATEST_NS - 1) // factor
    bad = early | late
    if bad.any():
        i = int(bad.argmax())
        when = "before 1970-01-02" if early[i] else "in 2200 or later"
        if given:
            fix = f"check timestamp_unit={unit!r} (s, ms, us, ns), or leave it unset to detect it"
        else:
            fix = f"is the unit right? If not, {_SET_UNIT}"
        raise DataError(
            "timestamp",
            values[i].item(),
            f"{col}: read as {_UNIT_NAMES[unit]} since 1970 this is {when} {where(i)}; {fix}",
        )
    if values.dtype.kind == "f":  # whole and fractional parts apart: ns exceed float precision
        whole = np.floor(values)
        ns = whole.astype(np.int64) * np.int64(factor)
        return np.asarray(ns + np.round((values - whole) * factor).astype(np.int64), np.int64)
    return np.asarray(values.astype(np.int64) * np.int64(factor), dtype=np.int64)


def _detect_unit(values: npt.NDArray[Any], where: _RowDescriber, col: str) -> str:
    """The one unit every value's number of digits gives (``yyyymmdd`` for 8-digit integers)."""
    bounds = np.array([b for b, _ in _DIGIT_CLASSES[1:]], dtype=np.float64)
    classes = np.searchsorted(bounds, values.astype(np.float64), side="right")
    units = [u for _, u in _DIGIT_CLASSES]
    if values.dtype.kind == "f":  # fractional: never a YYYYMMDD date
        classes[classes == units.index("yyyymmdd")] = 0
    unknown = np.isin(classes, [k for k, u in enumerate(units) if u is None])
    if unknown.any():
        i = int(unknown.argmax())
        raise DataError(
            "timestamp",
            values[i].item(),
            f"{col}: not an epoch time in s, ms, us or ns by its number of digits (9-10, 12-13, "
            f"15-16 or 18-19 for 1973..2286) {where(i)}; if it is one, {_SET_UNIT}",
        )
    mixed = classes != classes[0]
    if mixed.any():
        i = int(mixed.argmax())
        first, other = units[int(classes[0])], units[int(classes[i])]
        raise DataError(
            "timestamp",
            values[i].item(),
            f"{col} mixes units: {other} by its number of digits {where(i)}, but {first} at "
            f"row 1 ({values[0].item()!r}); write every value in one unit, then {_SET_UNIT}",
        )
    unit = units[int(classes[0])]
    assert unit is not None
    return unit


def _yyyymmdd_to_ns(values: npt.NDArray[Any], where: _RowDescriber, col: str) -> IntArray:
    """Eight-digit integers as ``YYYYMMDD`` dates (midnight UTC)."""
    parsed = pd.to_datetime(
        pd.Series(values.astype(np.int64)).astype(str), format="%Y%m%d", errors="coerce", utc=True
    )
    lo, hi = pd.Timestamp("1900-01-01", tz="UTC"), pd.Timestamp("2200-01-01", tz="UTC")
    bad = (parsed.isna() | (parsed < lo) | (parsed >= hi)).to_numpy(dtype=bool)
    if bad.any():
        i = int(bad.argmax())
        raise DataError(
            "timestamp",
            values[i].item(),
            f"{col}: an 8-digit number is read as a YYYYMMDD date (1900..2199), and this is not "
            f"one {where(i)}; if it is an epoch time, {_SET_UNIT}",
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


def _validated_file(
    path: PathLike, symbol: str | None, format: str | None, timestamp_unit: str | None = None
) -> pd.DataFrame:
    fmt = _format_of(path, format)
    raw = _read_csv(path) if fmt == "csv" else _read_parquet(path)
    return validate_bars(raw, str(path), symbol, timestamp_unit=timestamp_unit)


# --------------------------------------------------------------------------------------------------
# public loaders


def from_dataframe(
    df: pd.DataFrame,
    symbol: str | None = None,
    *,
    symbols: Symbols | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    timestamp_unit: str | None = None,
) -> BarFeed:
    """A feed from a DataFrame of bars (validated; see :func:`validate_bars`).

    ``symbol`` names the symbol of a frame without a symbol column. ``symbols`` keeps only those
    symbols; ``start``/``end`` keep bars in that time range, both inclusive (naive times are UTC,
    a date-only ``end`` includes that whole day). ``timestamp_unit`` (``s``, ``ms``, ``us``,
    ``ns``) is the unit of numeric timestamps, detected from their digits when not given.
    """
    frame = validate_bars(df, "<dataframe>", symbol, timestamp_unit=timestamp_unit)
    return _build_feed(frame, symbols, start, end, "<dataframe>")


def load_csv(
    path: PathLike,
    symbol: str | None = None,
    *,
    symbols: Symbols | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    timestamp_unit: str | None = None,
) -> BarFeed:
    """A feed from a CSV file (compressed ones, e.g. ``.csv.gz``, too).

    Filters as :func:`from_dataframe`.
    """
    frame = validate_bars(_read_csv(path), str(path), symbol, timestamp_unit=timestamp_unit)
    return _build_feed(frame, symbols, start, end, str(path))


def load_parquet(
    path: PathLike,
    symbol: str | None = None,
    *,
    symbols: Symbols | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    timestamp_unit: str | None = None,
) -> BarFeed:
    """A feed from a Parquet file (needs ``pip install 'tradeloop[parquet]'``).

    Filters as :func:`from_dataframe`.
    """
    frame = validate_bars(_read_parquet(path), str(path), symbol, timestamp_unit=timestamp_unit)
    return _build_feed(frame, symbols, start, end, str(path))


def load_bars(
    source: BarSource,
    *,
    symbol: str | None = None,
    symbols: Symbols | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    format: str | None = None,
    timestamp_unit: str | None = None,
) -> BarFeed:
    """A feed from a file path, a DataFrame, or a mapping ``symbol -> path or DataFrame``.

    Files are CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``), told apart by
    suffix unless ``format`` (``"csv"`` or ``"parquet"``) is given. In a mapping, each key is the
    symbol of its source (a symbol column there must agree). ``symbol``, ``symbols``, ``start``,
    ``end`` and ``timestamp_unit`` work as in :func:`from_dataframe`.
    """
    unit = _check_unit(timestamp_unit)
    if isinstance(source, pd.DataFrame):
        return from_dataframe(
            source, symbol, symbols=symbols, start=start, end=end, timestamp_unit=unit
        )
    if isinstance(source, str | os.PathLike):
        frame = _validated_file(source, symbol, format, unit)
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
                parts.append(validate_bars(item, f"<dataframe {key}>", key, timestamp_unit=unit))
            else:
                parts.append(_validated_file(item, key, format, unit))
        frame = pd.concat(parts, ignore_index=True)
        frame = frame.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
        return _build_feed(frame, None, start, end, "the mapping of sources")
    raise DataError(
        "source",
        type(source).__name__,
        "expected a path, a DataFrame or a mapping of symbol -> path/DataFrame",
    )
