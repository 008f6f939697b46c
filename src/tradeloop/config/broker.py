"""The ``broker:`` section: which venue the asynchronous engine trades on, and how.

Only ``mode: async`` / ``live`` uses it. ``name`` picks the broker; each broker has its own keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from tradeloop.config._base import Number, _Section

if TYPE_CHECKING:
    from tradeloop.config.loader import TradeloopConfig
    from tradeloop.data.feed import BarFeed
    from tradeloop.execution.async_protocols import AsyncBroker

__all__ = ["AlpacaBrokerConfig", "BrokerSection", "SimulatedBrokerConfig", "build_broker"]


def _default_name(value: Any) -> Any:
    if isinstance(value, Mapping) and "name" not in value:
        return {**value, "name": "simulated"}
    return value


class SimulatedBrokerConfig(_Section):
    """``simulated``: the backtest's own matching behind the broker protocol, fed by ``data``
    replayed as a stream. ``speed`` paces the replay against the bars' clock (``60`` plays a
    minute of bars per second; ``0`` replays as fast as the engine goes); ``max_sleep`` caps one
    pause so nights and weekends do not stall a paced replay."""

    name: Literal["simulated"] = "simulated"
    speed: Number = Field(0.0, ge=0)
    max_sleep: Number = Field(1.0, ge=0)

    @property
    def needs_data(self) -> bool:
        return True


class AlpacaBrokerConfig(_Section):
    """``alpaca``: Alpaca's Trading API (paper unless ``paper: false``). Bars come from its
    market-data stream, so ``data`` names only ``symbols``. Keys are read from the environment
    variables ``key_id_env`` / ``secret_key_env`` (default ``APCA_API_KEY_ID`` /
    ``APCA_API_SECRET_KEY``), or from ``key_file``, a file of ``NAME=value`` lines defining them;
    never write keys into a config. ``base_url`` (or ``tradeloop live --base-url``) points
    everything elsewhere, e.g. at the loopback server of ``tradeloop alpaca-server``, whose
    public test keys are used when no keys are set and the URL is a loopback one."""

    name: Literal["alpaca"]
    paper: bool = True
    base_url: str | None = None
    data_url: str | None = None
    feed: Literal["iex", "sip"] = "iex"
    key_id_env: str = Field("APCA_API_KEY_ID", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    secret_key_env: str = Field("APCA_API_SECRET_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    key_file: Path | None = None
    rate_limit: int = Field(200, ge=1)
    timeout: Number = Field(10.0, gt=0)
    data_watchdog: Number | None = Field(180.0, gt=0)
    connection_limit_wait: Number = Field(90.0, ge=0)

    @property
    def needs_data(self) -> bool:
        return False


BrokerSection = Annotated[
    SimulatedBrokerConfig | AlpacaBrokerConfig,
    BeforeValidator(_default_name),
    Field(discriminator="name"),
]


def build_broker(cfg: TradeloopConfig, feed: BarFeed | None = None) -> AsyncBroker:
    """The broker ``cfg.broker`` describes. A simulated broker replays ``feed`` (default: the
    config's ``data``) with the account and costs of ``execution`` and ``costs``; Alpaca's is
    built from its section and the keys in the environment (or ``key_file``)."""
    section = cfg.broker
    if isinstance(section, AlpacaBrokerConfig):
        return _build_alpaca(section, cfg.data.symbols or [])
    from tradeloop.config.data import build_feed
    from tradeloop.config.loader import build_engine_kwargs
    from tradeloop.execution.asynchronous.brokers.simulated import SimulatedBroker
    from tradeloop.execution.asynchronous.sources import ReplayBarSource

    if feed is None:
        feed = build_feed(cfg)
    source = ReplayBarSource(feed, speed=section.speed, max_sleep=section.max_sleep)
    kwargs = build_engine_kwargs(cfg)
    kwargs.pop("risk", None)  # the engine's limits, not the venue's
    return SimulatedBroker(source, **kwargs)


def read_key_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines (``export`` and quotes allowed, ``#`` comments) -> a mapping. Errors
    name the file and line, never the value."""
    from tradeloop.errors import ConfigError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("broker.key_file", str(path), f"cannot read: {exc.strerror}") from None
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        name, sep, value = line.partition("=")
        if not sep or not name.strip().isidentifier():
            raise ConfigError("broker.key_file", str(path), f"line {n}: expected NAME=value")
        out[name.strip()] = value.strip().strip("'\"")
    return out


def _build_alpaca(section: AlpacaBrokerConfig, symbols: list[str]) -> AsyncBroker:
    import os

    from tradeloop.execution.asynchronous.brokers.alpaca.broker import AlpacaBroker
    from tradeloop.execution.asynchronous.components.broker_config import BrokerConfig, _is_loopback

    kw: dict[str, Any] = {
        "paper": section.paper,
        "feed": section.feed,
        "rate_limit": section.rate_limit,
        "timeout": section.timeout,
        "key_id_env": section.key_id_env,
        "secret_key_env": section.secret_key_env,
    }
    if section.base_url is not None:
        kw["base_url"] = section.base_url
    if section.data_url is not None:
        kw["data_url"] = section.data_url
    if section.key_file is not None:
        keys = read_key_file(section.key_file)
        if section.key_id_env in keys:
            kw["key_id"] = keys[section.key_id_env]
        if section.secret_key_env in keys:
            kw["secret_key"] = keys[section.secret_key_env]
    has_env = os.environ.get(section.key_id_env) and os.environ.get(section.secret_key_env)
    if "key_id" not in kw and not has_env and section.base_url and _is_loopback(section.base_url):
        from tradeloop.testing.alpaca.app import DEFAULT_KEY_ID, DEFAULT_SECRET

        kw["key_id"], kw["secret_key"] = DEFAULT_KEY_ID, DEFAULT_SECRET  # public, loopback only
    config = BrokerConfig(**kw)
    return AlpacaBroker(
        config,
        symbols=symbols,
        data_watchdog=section.data_watchdog,
        connection_limit_wait=section.connection_limit_wait,
    )
