"""Build execution engines, directly or from a run configuration.

``create_engine(config)`` accepts a :class:`~tradeloop.config.TradeloopConfig`, a config mapping
or the path of a YAML file, and returns a ready-to-run engine for its ``execution.mode``. This
release ships the synchronous (backtest) engine only; ``mode: async`` / ``live`` is rejected with a
:class:`~tradeloop.errors.ConfigError`.

Importing this module is cheap: it imports neither asyncio nor pandas, and the config machinery
(pydantic, PyYAML) only when :func:`create_engine` is called.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloop.data.feed import BarFeed
from tradeloop.errors import ConfigError
from tradeloop.execution.synchronous.engine import SyncExecutionEngine
from tradeloop.strategy import Strategy

if TYPE_CHECKING:
    from tradeloop.config import TradeloopConfig

__all__ = ["create_backtest_engine", "create_engine", "create_sync_engine"]

ASYNC_UNAVAILABLE = (
    "the asynchronous (live) engine is not available in this release; use mode: sync"
)


def create_sync_engine(
    feed: BarFeed, strategy: Strategy, **engine_kwargs: Any
) -> SyncExecutionEngine:
    """A :class:`SyncExecutionEngine` over ``feed`` running ``strategy``.

    ``engine_kwargs`` are the engine's keyword arguments: ``initial_cash``, ``commission``,
    ``slippage``, ``participation_rate``, ``allow_short``, ``leverage``, ``fractional``.
    """
    return SyncExecutionEngine(feed, strategy, **engine_kwargs)


create_backtest_engine = create_sync_engine
"""Old name of :func:`create_sync_engine`."""


def require_sync_mode(cfg: TradeloopConfig) -> None:
    """Raise ConfigError unless ``execution.mode`` is one this release can run."""
    if cfg.execution.mode != "sync":
        raise ConfigError("execution.mode", cfg.execution.mode_input, ASYNC_UNAVAILABLE)


def create_engine(
    config: TradeloopConfig | Mapping[str, Any] | str | Path,
    *,
    feed: BarFeed | None = None,
    strategy: Strategy | None = None,
) -> SyncExecutionEngine:
    """An engine built from a config (object, mapping, or YAML file path).

    ``feed`` and ``strategy`` replace the ones the config describes (the data is then not loaded,
    or the strategy not instantiated, from the config). Raises :class:`ConfigError` for an invalid
    config and for ``execution.mode`` ``async``/``live``, not available in this release.
    """
    from tradeloop.config import (
        TradeloopConfig,
        build_engine_kwargs,
        build_feed,
        build_strategy,
        load_config,
        parse_config,
    )

    if isinstance(config, TradeloopConfig):
        cfg = config
    elif isinstance(config, str | Path):
        cfg = load_config(config)
    elif isinstance(config, Mapping):
        cfg = parse_config(config)
    else:
        raise ConfigError(
            "config",
            type(config).__name__,
            "must be a TradeloopConfig, a mapping or the path of a YAML file",
        )
    require_sync_mode(cfg)
    kwargs = build_engine_kwargs(cfg)
    if strategy is None:
        strategy = build_strategy(cfg)
    if feed is None:
        feed = build_feed(cfg)
    return create_sync_engine(feed, strategy, **kwargs)
