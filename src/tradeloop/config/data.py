"""The ``data:`` section: where the bars come from, and loading them."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from tradeloop.config._base import _Section, field_error
from tradeloop.errors import ConfigError, DataError

if TYPE_CHECKING:
    from tradeloop.config.loader import TradeloopConfig
    from tradeloop.data.feed import BarFeed
    from tradeloop.data.stream import BarDataset

__all__ = ["DataConfig", "build_feed", "build_source", "require_in_memory"]

_GLOB_CHARS = "*?["


def _date_to_str(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _parse_when(field: str, value: str) -> datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise field_error(
            field, value, "must be an ISO date or timestamp, e.g. 2021-01-31 or 2021-01-31T15:30"
        ) from None


def _single_to_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class DataConfig(_Section):
    """Where the bars come from: the embedded ``sample``, one file (``path``) or ``files``.

    ``timestamp_unit`` (``s``, ``ms``, ``us``, ``ns``) is the unit of numeric timestamps in the
    files (detected from their number of digits when not given); ``resample`` (``5min``, ``1h``,
    ``1d``, ...) aggregates the loaded bars into coarser UTC buckets (see
    :mod:`tradeloop.data.resample`).

    ``stream: true`` reads ``path`` as the run goes instead of loading it (see
    :func:`tradeloop.data.stream.open_dataset`; needs pyarrow): ``path`` may then be a file, a
    folder (hive partitions such as ``symbol=ACME/`` or ``date=2020-01-02/``) or a glob, with
    ``symbols``/``start``/``end`` pushed down to the reader, and memory stays bounded whatever the
    data's length. :func:`build_source` then gives a :class:`~tradeloop.data.stream.BarDataset`,
    which the synchronous engine (``tradeloop backtest``) runs. Not with ``sample`` or ``files``,
    nor with ``resample``; sweeps and the simulated broker need the bars in memory and refuse it.
    """

    sample: Literal["daily", "minute"] | None = None
    path: Path | None = None
    format: Literal["csv", "parquet"] | None = None
    symbol: str | None = Field(None, min_length=1)
    files: dict[str, Path] | None = Field(None, min_length=1)
    symbols: Annotated[list[str] | None, BeforeValidator(_single_to_list)] = Field(
        None, min_length=1
    )
    start: Annotated[str | None, BeforeValidator(_date_to_str)] = None
    end: Annotated[str | None, BeforeValidator(_date_to_str)] = None
    timestamp_unit: Literal["s", "ms", "us", "ns"] | None = None
    resample: str | None = None
    stream: bool = False

    @property
    def sources(self) -> list[str]:
        """The data sources given (``sample``, ``path``, ``files``): one, or none for a broker
        that streams its own bars."""
        return [k for k in ("sample", "path", "files") if getattr(self, k) is not None]

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        given = self.sources
        if len(given) > 1:
            raise field_error(
                "",
                {k: str(getattr(self, k)) for k in given},
                f"give exactly one data source: sample, path or files (got {' and '.join(given)})",
            )
        if self.stream:
            if self.sample is not None:
                raise field_error(
                    "stream",
                    True,
                    "does not apply to the embedded sample (small, and loaded in memory); "
                    "stream a file, folder or glob given as data.path",
                )
            if self.files is not None:
                raise field_error(
                    "stream",
                    True,
                    "does not apply to data.files: give data.path a folder of symbol=NAME/ "
                    "partitions, or a folder or glob of files with a symbol column",
                )
            if self.path is None:
                raise field_error(
                    "stream", True, "needs data.path: the file, folder or glob to stream"
                )
            if self.resample is not None:
                raise field_error(
                    "resample",
                    self.resample,
                    "not supported with data.stream: true (streamed bars are not resampled); "
                    "resample the files beforehand, or use tradeloop.data.resample.Resampler "
                    "in the strategy",
                )
        if self.symbol is not None and self.path is None:
            raise field_error(
                "symbol", self.symbol, "only applies with data.path (a single-symbol file)"
            )
        if self.format is not None and self.sample is not None:
            raise field_error("format", self.format, "does not apply to the embedded sample")
        if self.timestamp_unit is not None and (self.sample is not None or not given):
            raise field_error(
                "timestamp_unit",
                self.timestamp_unit,
                "only applies to data files (data.path or data.files)",
            )
        if self.resample is not None:
            from tradeloop.data.resample import parse_rule

            try:
                parse_rule(self.resample)
            except ConfigError as exc:
                raise field_error("resample", self.resample, exc.reason) from None
            if not given:
                raise field_error(
                    "resample",
                    self.resample,
                    "needs a data source (sample, path or files); to aggregate a broker's bar "
                    "stream, use tradeloop.data.resample.Resampler in the strategy",
                )
        if self.symbols is not None:
            dupes = sorted({s for s in self.symbols if self.symbols.count(s) > 1})
            if dupes:
                raise field_error("symbols", self.symbols, f"duplicate symbols: {dupes}")
        if self.files is not None:
            for sym in self.files:
                if not sym.strip():
                    raise field_error("files", sym, "symbol names must not be empty")
        start = None if self.start is None else _parse_when("start", self.start)
        end = None if self.end is None else _parse_when("end", self.end)
        if (
            start is not None
            and end is not None
            and (start.tzinfo is None) == (end.tzinfo is None)
            and end < start
        ):
            raise field_error("end", self.end, f"must not be before start={self.start!r}")
        return self

    @property
    def source(self) -> str:
        """A short description of the data source, for summaries."""
        if not self.sources:
            return "the broker's market-data stream"
        if self.sample is not None:
            return f"sample: {self.sample}"
        if self.path is not None:
            return f"path: {self.path}{' (streamed)' if self.stream else ''}"
        return "files: " + ", ".join(f"{s}={p}" for s, p in (self.files or {}).items())


def build_feed(
    cfg: TradeloopConfig | DataConfig, needed_by: str = "build_feed (use build_source to stream)"
) -> BarFeed:
    """Load the bars described by ``data`` (this is where pandas gets imported), then resample
    them if ``data.resample`` says so (after the ``symbols``/``start``/``end`` selection).

    A ``data.stream: true`` config is refused (:class:`ConfigError` naming ``data.stream`` and
    ``needed_by``): use :func:`build_source` where a streamed dataset will do."""
    d = cfg if isinstance(cfg, DataConfig) else cfg.data
    require_in_memory(d, needed_by)
    feed = _load(d)
    if d.resample is not None:
        from tradeloop.data.resample import resample

        feed = resample(feed, d.resample)
    return feed


def build_source(cfg: TradeloopConfig | DataConfig) -> BarFeed | BarDataset:
    """What the synchronous engine runs: with ``data.stream: true`` a
    :class:`~tradeloop.data.stream.BarDataset` over ``data.path`` (opened, nothing read yet),
    otherwise the :class:`BarFeed` of :func:`build_feed`."""
    d = cfg if isinstance(cfg, DataConfig) else cfg.data
    if not d.stream:
        return build_feed(d)
    assert d.path is not None  # the model's check
    from tradeloop.data.stream import open_dataset

    text = str(d.path)
    if any(ch in text for ch in _GLOB_CHARS):
        import glob

        if not glob.glob(text, recursive=True):
            raise ConfigError("data.path", text, "no file matches the pattern")
    elif not d.path.exists():
        raise ConfigError("data.path", text, "no such file or folder")
    try:
        return open_dataset(
            d.path,
            symbols=list(d.symbols) if d.symbols is not None else None,
            start=d.start,
            end=d.end,
            symbol=d.symbol,
            format=d.format,
            timestamp_unit=d.timestamp_unit,
        )
    except DataError as exc:
        if exc.field == "path":  # cannot be opened as the format: name the config's field
            raise ConfigError("data.path", exc.value, exc.reason) from None
        raise


def require_in_memory(cfg: TradeloopConfig | DataConfig, needed_by: str) -> None:
    """Raise :class:`ConfigError` naming ``data.stream`` if the config streams its bars:
    ``needed_by`` (a sweep, the simulated broker, ...) needs them loaded in memory."""
    d = cfg if isinstance(cfg, DataConfig) else cfg.data
    if d.stream:
        raise ConfigError(
            "data.stream",
            True,
            f"{needed_by} needs the bars loaded in memory, not streamed: set data.stream: false "
            "(or leave it out)",
        )


def _load(d: DataConfig) -> BarFeed:
    symbols = list(d.symbols) if d.symbols is not None else None
    if d.sample is not None:
        from tradeloop.data.sample import load_sample

        return load_sample(d.sample, symbols=symbols, start=d.start, end=d.end)

    from tradeloop.data.loaders import load_bars

    if d.path is not None:
        if not d.path.is_file():
            if d.path.is_dir():
                hint = "is a folder: set data.stream: true to stream it"
            elif any(ch in str(d.path) for ch in _GLOB_CHARS):
                hint = "file not found (a glob needs data.stream: true)"
            else:
                hint = "file not found"
            raise ConfigError("data.path", str(d.path), hint)
        return load_bars(
            d.path,
            symbol=d.symbol,
            symbols=symbols,
            start=d.start,
            end=d.end,
            format=d.format,
            timestamp_unit=d.timestamp_unit,
        )
    files = d.files or {}
    for sym, p in files.items():
        if not p.is_file():
            raise ConfigError(f"data.files.{sym}", str(p), "file not found")
    return load_bars(
        dict(files),
        symbols=symbols,
        start=d.start,
        end=d.end,
        format=d.format,
        timestamp_unit=d.timestamp_unit,
    )
