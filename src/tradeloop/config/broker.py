"""The ``broker:`` section: which venue the asynchronous engine trades on, and how.

Only ``mode: async`` / ``live`` uses it. ``name`` picks the broker; each broker has its own keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from tradeloop.config._base import Number, _Section

if TYPE_CHECKING:
    from tradeloop.config.loader import TradeloopConfig
    from tradeloop.data.feed import BarFeed
    from tradeloop.execution.async_protocols import AsyncBroker

__all__ = ["SimulatedBrokerConfig", "build_broker"]


class SimulatedBrokerConfig(_Section):
    """``simulated``: the backtest's own matching behind the broker protocol, fed by ``data``
    replayed as a stream. ``speed`` paces the replay against the bars' clock (``60`` plays a
    minute of bars per second; ``0`` replays as fast as the engine goes); ``max_sleep`` caps one
    pause so nights and weekends do not stall a paced replay."""

    name: Literal["simulated"] = "simulated"
    speed: Number = Field(0.0, ge=0)
    max_sleep: Number = Field(1.0, ge=0)


def build_broker(cfg: TradeloopConfig, feed: BarFeed | None = None) -> AsyncBroker:
    """The broker ``cfg.broker`` describes. A simulated broker replays ``feed`` (default: the
    config's ``data``) with the account and costs of ``execution`` and ``costs``."""
    from tradeloop.config.data import build_feed
    from tradeloop.config.loader import build_engine_kwargs
    from tradeloop.execution.asynchronous.brokers.simulated import SimulatedBroker
    from tradeloop.execution.asynchronous.sources import ReplayBarSource

    section = cfg.broker
    if feed is None:
        feed = build_feed(cfg)
    source = ReplayBarSource(feed, speed=section.speed, max_sleep=section.max_sleep)
    return SimulatedBroker(source, **build_engine_kwargs(cfg))
