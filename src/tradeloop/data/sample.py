"""Synthetic sample bars shipped with tradeloop, for demos and tests (no download needed).

Two gzipped CSV files in ``tradeloop/data/sample/``, generated once by ``scripts/make_sample.py``
(fixed seed) and committed; they are the source of truth:

``daily``
    4 fictitious symbols (:data:`SAMPLE_SYMBOLS`), business days 2020-01-02 .. 2023-12-29, one bar
    per day stamped 21:00 UTC.
``minute``
    The same symbols, the 20 NYSE sessions of March 2024, 390 one-minute bars per session
    (09:30-15:59 New York time, stamped in UTC).

Prices are geometric random walks with regime-switching drift, so trend-following strategies have
something to find. They are not market data.
"""

from __future__ import annotations

import gzip
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeAlias

from tradeloop.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd

    from tradeloop.data.feed import BarFeed
    from tradeloop.data.loaders import TimeLike

__all__ = ["SAMPLE_SYMBOLS", "load_sample", "sample_frame", "sample_path"]

SAMPLE_SYMBOLS: tuple[str, ...] = ("ACME", "BOLT", "CRUX", "DYNA")

Timeframe: TypeAlias = Literal["daily", "minute"]
_TIMEFRAMES: tuple[str, ...] = ("daily", "minute")


def _resource(timeframe: str) -> Traversable:
    if timeframe not in _TIMEFRAMES:
        raise DataError("timeframe", timeframe, f"expected one of {', '.join(_TIMEFRAMES)}")
    return files("tradeloop.data") / "sample" / f"{timeframe}.csv.gz"


def _read(timeframe: str) -> pd.DataFrame:
    """The file's rows as stored: timestamp (ISO-8601 text), symbol, open .. volume."""
    import pandas as pd

    with _resource(timeframe).open("rb") as fh, gzip.open(fh) as text:
        return pd.read_csv(text, dtype={"symbol": str})


def sample_path(timeframe: Timeframe = "daily") -> Path:
    """Filesystem path of a packaged sample file (``daily.csv.gz`` or ``minute.csv.gz``)."""
    return Path(str(_resource(timeframe)))


def sample_frame(timeframe: Timeframe = "daily") -> pd.DataFrame:
    """A sample as a DataFrame, rows in file order (by timestamp, then symbol).

    Columns ``timestamp`` (datetime64, UTC), ``symbol``, ``open``, ``high``, ``low``, ``close``
    (float) and ``volume`` (int). Valid input for :func:`tradeloop.data.loaders.from_dataframe`.
    """
    import pandas as pd

    frame = _read(timeframe)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def load_sample(
    timeframe: Timeframe = "daily",
    symbols: str | Iterable[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> BarFeed:
    """A feed of sample bars, validated like any other data.

    ``symbols`` keeps only those symbols (default: all of :data:`SAMPLE_SYMBOLS`); ``start`` and
    ``end`` keep bars in that time range, inclusive (see :func:`tradeloop.data.loaders.load_bars`).
    """
    from tradeloop.data.loaders import _build_feed, validate_bars

    name = f"{timeframe}.csv.gz"
    return _build_feed(validate_bars(_read(timeframe), name), symbols, start, end, name)
