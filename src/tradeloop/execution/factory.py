"""Build execution engines, directly or from a run configuration.

``create_engine(config)`` accepts a :class:`~tradeloop.config.TradeloopConfig`, a config mapping
or the path of a YAML file, and returns a ready-to-run engine for its ``execution.mode``: a
:class:`SyncExecutionEngine` for ``sync``/``backtest``, an
:class:`~tradeloop.execution.asynchronous.AsyncExecutionEngine` with the configured broker for
``async``/``live`` (which needs the ``live`` extra: ``pip install 'tradeloop[live]'``).

Importing this module is cheap: it imports neither asyncio nor pandas; the asynchronous engine and
the config machinery (pydantic, PyYAML) are imported only when asked for.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloop.data.feed import BarFeed, ChunkSource
from tradeloop.errors import ConfigError
from tradeloop.execution.synchronous.engine import SyncExecutionEngine
from tradeloop.strategy import Strategy

if TYPE_CHECKING:
    from tradeloop.config import TradeloopConfig
    from tradeloop.execution.async_protocols import AsyncBroker
    from tradeloop.execution.asynchronous.engine import AsyncExecutionEngine

__all__ = [
    "async_available",
    "create_async_engine",
    "create_backtest_engine",
    "create_engine",
    "create_live_engine",
    "create_sync_engine",
    "journal_path",
    "require_async_available",
    "require_sync_mode",
]

LIVE_EXTRA = "pip install 'tradeloop[live]'"
ASYNC_NEEDS_AIOHTTP = f"the asynchronous engine needs aiohttp, which is not installed: {LIVE_EXTRA}"
BACKTEST_NEEDS_SYNC = (
    "`tradeloop backtest` runs the synchronous engine (mode: sync); "
    "run mode async/live with `tradeloop live`"
)


def async_available() -> bool:
    """Whether aiohttp can be imported (checked without importing it, or asyncio)."""
    try:
        return importlib.util.find_spec("aiohttp") is not None
    except (ImportError, ValueError):  # ValueError: hidden by sys.modules["aiohttp"] = None
        return False


def require_async_available(field: str = "execution.mode", value: object = "async") -> None:
    """Raise ConfigError naming the ``live`` extra unless aiohttp is installed."""
    if not async_available():
        raise ConfigError(field, value, ASYNC_NEEDS_AIOHTTP)


def create_sync_engine(
    feed: BarFeed | ChunkSource, strategy: Strategy, **engine_kwargs: Any
) -> SyncExecutionEngine:
    """A :class:`SyncExecutionEngine` over ``feed`` (bars in memory, or a streamed
    :class:`~tradeloop.data.stream.BarDataset`) running ``strategy``.

    ``engine_kwargs`` are the engine's keyword arguments: ``initial_cash``, ``commission``,
    ``slippage``, ``participation_rate``, ``allow_short``, ``leverage``, ``fractional``.
    """
    return SyncExecutionEngine(feed, strategy, **engine_kwargs)


create_backtest_engine = create_sync_engine
"""Old name of :func:`create_sync_engine`."""


def create_async_engine(
    broker: AsyncBroker, strategy: Strategy, **engine_kwargs: Any
) -> AsyncExecutionEngine:
    """An :class:`~tradeloop.execution.asynchronous.AsyncExecutionEngine` running ``strategy``
    against ``broker``. ``engine_kwargs``: ``symbols``, ``run_id``, ``cancel_on_stop``,
    ``history_bars``. Raises ConfigError if aiohttp (the ``live`` extra) is missing."""
    require_async_available("mode", "async")
    from tradeloop.execution.asynchronous.engine import AsyncExecutionEngine

    return AsyncExecutionEngine(broker, strategy, **engine_kwargs)


create_live_engine = create_async_engine
"""Old name of :func:`create_async_engine`."""


def require_sync_mode(cfg: TradeloopConfig) -> None:
    """Raise ConfigError unless ``execution.mode`` is ``sync`` (for ``tradeloop backtest``)."""
    if cfg.execution.mode != "sync":
        raise ConfigError("execution.mode", cfg.execution.mode_input, BACKTEST_NEEDS_SYNC)


def journal_path(cfg: TradeloopConfig, out_dir: Path | None = None) -> Path | None:
    """Where a live run's order journal lives: ``execution.journal`` if set, else (for a real
    broker, whose orders outlive the process) ``journal.sqlite`` in ``out_dir`` or the config's
    output folder; ``None`` for the simulated broker without an explicit journal."""
    if cfg.execution.journal is not None:
        return cfg.execution.journal
    if cfg.broker.name == "simulated":
        return None
    return (out_dir if out_dir is not None else cfg.output_dir) / "journal.sqlite"


def _load(config: TradeloopConfig | Mapping[str, Any] | str | Path) -> TradeloopConfig:
    from tradeloop.config import TradeloopConfig, load_config, parse_config

    if isinstance(config, TradeloopConfig):
        return config
    if isinstance(config, str | Path):
        return load_config(config)
    if isinstance(config, Mapping):
        return parse_config(config)
    raise ConfigError(
        "config",
        type(config).__name__,
        "must be a TradeloopConfig, a mapping or the path of a YAML file",
    )


def create_engine(
    config: TradeloopConfig | Mapping[str, Any] | str | Path,
    *,
    feed: BarFeed | None = None,
    strategy: Strategy | None = None,
    broker: AsyncBroker | None = None,
    out_dir: Path | None = None,
) -> SyncExecutionEngine | AsyncExecutionEngine:
    """An engine built from a config (object, mapping, or YAML file path).

    ``feed``, ``strategy`` and ``broker`` replace the ones the config describes (the data is then
    not loaded, the strategy not instantiated, the broker not built from the config). Raises
    :class:`ConfigError` for an invalid config, and for ``async``/``live`` without aiohttp.
    With ``data.stream: true`` a sync engine runs the files as a streamed
    :class:`~tradeloop.data.stream.BarDataset`; the simulated broker refuses it (it replays bars
    held in memory).

    A live engine with a real broker keeps an order journal (see :func:`journal_path`; its
    default folder is ``out_dir``, else ``output.dir``) and resumes from it after a restart.
    """
    from tradeloop.config import build_broker, build_engine_kwargs, build_risk, build_strategy
    from tradeloop.config.data import build_source

    cfg = _load(config)
    if cfg.execution.mode == "async":
        require_async_available("execution.mode", cfg.execution.mode_input)
        from tradeloop.execution.asynchronous.engine import AsyncExecutionEngine

        if strategy is None:
            strategy = build_strategy(cfg)
        if broker is None:
            broker = build_broker(cfg, feed)
        path = journal_path(cfg, out_dir)
        journal = None
        if path is not None:
            from tradeloop.persistence.journal import OrderJournal

            path.parent.mkdir(parents=True, exist_ok=True)
            journal = OrderJournal(path)
        return AsyncExecutionEngine(
            broker,
            strategy,
            symbols=cfg.data.symbols,
            cancel_on_stop=cfg.execution.cancel_on_stop,
            journal=journal,
            risk=build_risk(cfg),
        )
    kwargs = build_engine_kwargs(cfg)
    if strategy is None:
        strategy = build_strategy(cfg)
    source = build_source(cfg) if feed is None else feed
    return create_sync_engine(source, strategy, **kwargs)
