"""Market data: the :class:`BarFeed` the engines read, its loaders, an embedded sample, and
coarser timeframes: :class:`Resampler` bar by bar, ``tradeloop.data.resample.resample`` for a
whole feed (the module's name, so it is not re-exported here).

Importing this package stays light (no pandas, no numpy): the loaders and the sample helpers are
imported on first access (PEP 562), so ``from tradeloop.data import load_bars`` works but only
then pulls in pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradeloop._lazy import lazy_exports
from tradeloop.data.feed import BarFeed, SymbolSeries

if TYPE_CHECKING:
    from tradeloop.data.loaders import (
        from_dataframe,
        load_bars,
        load_csv,
        load_parquet,
        validate_bars,
    )
    from tradeloop.data.resample import Resampler
    from tradeloop.data.sample import SAMPLE_SYMBOLS, load_sample, sample_frame, sample_path
    from tradeloop.data.stream import BarDataset, open_dataset

__all__ = [
    "SAMPLE_SYMBOLS",
    "BarDataset",
    "BarFeed",
    "Resampler",
    "SymbolSeries",
    "from_dataframe",
    "load_bars",
    "load_csv",
    "load_parquet",
    "load_sample",
    "open_dataset",
    "sample_frame",
    "sample_path",
    "validate_bars",
]

_LAZY = {
    "from_dataframe": "tradeloop.data.loaders",
    "load_bars": "tradeloop.data.loaders",
    "load_csv": "tradeloop.data.loaders",
    "load_parquet": "tradeloop.data.loaders",
    "validate_bars": "tradeloop.data.loaders",
    "Resampler": "tradeloop.data.resample",
    "SAMPLE_SYMBOLS": "tradeloop.data.sample",
    "load_sample": "tradeloop.data.sample",
    "sample_frame": "tradeloop.data.sample",
    "sample_path": "tradeloop.data.sample",
    "BarDataset": "tradeloop.data.stream",
    "open_dataset": "tradeloop.data.stream",
}

__getattr__, __dir__ = lazy_exports("tradeloop.data", globals(), _LAZY)
