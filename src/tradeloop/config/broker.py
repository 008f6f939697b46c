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

__all__ = [
    "AlpacaBrokerConfig",
    "BinanceBrokerConfig",
    "BrokerSection",
    "IBBrokerConfig",
    "SimulatedBrokerConfig",
    "build_broker",
]


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


class IBBrokerConfig(_Section):
    """``ib``: Interactive Brokers through TWS or IB Gateway (``pip install 'tradeloop[ib]'``).
    TWS holds the login, so there are no keys here: ``host``/``port`` of its API socket (7497:
    TWS paper, 4002: Gateway paper; or ``tradeloop live --port``, e.g. the loopback server of
    ``tradeloop ib-server``), the API ``client_id`` and, with several accounts, ``account``.
    ``bar_seconds``: the bar size TWS's 5-second real-time bars are folded into."""

    name: Literal["ib"]
    host: str = "127.0.0.1"
    port: int = Field(7497, ge=1, le=65535)
    client_id: int = Field(1, ge=0)
    account: str | None = None
    connect_timeout: Number = Field(10.0, gt=0)
    order_timeout: Number = Field(5.0, gt=0)
    bar_seconds: int = Field(60, ge=5, multiple_of=5)

    @property
    def needs_data(self) -> bool:
        return False


class BinanceBrokerConfig(_Section):
    """``binance``: Binance spot through ccxt (``pip install 'tradeloop[binance]'``); the testnet
    unless ``testnet: false``. Symbols are pair ids (``BTCUSDT``; the loopback server lists its
    sample symbols as ``ACMEUSDT`` ...), bars come from its kline stream at ``interval``. Keys
    are read from ``key_env`` / ``secret_env`` (default ``BINANCE_API_KEY`` /
    ``BINANCE_API_SECRET``) or from ``key_file``; ``base_url`` (or ``tradeloop live
    --base-url``) points everything elsewhere, e.g. at ``tradeloop binance-server``, whose
    public test keys are used when no keys are set and the URL is a loopback one."""

    name: Literal["binance"]
    testnet: bool = True
    base_url: str | None = None
    key_env: str = Field("BINANCE_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    secret_env: str = Field("BINANCE_API_SECRET", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    key_file: Path | None = None
    interval: Literal["1s", "1m", "3m", "5m", "15m", "1h", "1d"] = "1m"
    quote: str = Field("USDT", min_length=2)
    weight_limit: int = Field(6000, ge=1)
    recv_window: int = Field(5000, ge=1, le=60000)
    timeout: Number = Field(10.0, gt=0)
    ban_wait: Number = Field(120.0, ge=0)
    data_watchdog: Number | None = Field(180.0, gt=0)

    @property
    def needs_data(self) -> bool:
        return False


BrokerSection = Annotated[
    SimulatedBrokerConfig | AlpacaBrokerConfig | IBBrokerConfig | BinanceBrokerConfig,
    BeforeValidator(_default_name),
    Field(discriminator="name"),
]


REPLAY_NEEDS_MEMORY = "broker: simulated (it replays bars held in memory)"


def build_broker(cfg: TradeloopConfig, feed: BarFeed | None = None) -> AsyncBroker:
    """The broker ``cfg.broker`` describes. A simulated broker replays ``feed`` (default: the
    config's ``data``) with the account and costs of ``execution`` and ``costs``; Alpaca's is
    built from its section and the keys in the environment (or ``key_file``)."""
    section = cfg.broker
    if isinstance(section, AlpacaBrokerConfig):
        return _build_alpaca(section, cfg.data.symbols or [])
    if isinstance(section, IBBrokerConfig):
        return _build_ib(section, cfg.data.symbols or [])
    if isinstance(section, BinanceBrokerConfig):
        return _build_binance(section, cfg.data.symbols or [])
    from tradeloop.config.data import build_feed
    from tradeloop.config.loader import build_engine_kwargs
    from tradeloop.execution.asynchronous.brokers.simulated import SimulatedBroker
    from tradeloop.execution.asynchronous.sources import ReplayBarSource

    if feed is None:
        feed = build_feed(cfg, REPLAY_NEEDS_MEMORY)
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


def _build_ib(section: IBBrokerConfig, symbols: list[str]) -> AsyncBroker:
    from tradeloop.errors import ConfigError

    try:
        import ib_async  # noqa: F401
    except ImportError:
        raise ConfigError(
            "broker.name", "ib", "the IB broker needs ib_async: pip install 'tradeloop[ib]'"
        ) from None
    from tradeloop.execution.asynchronous.brokers.ib.broker import IBBroker, IBSettings

    settings = IBSettings(
        host=section.host,
        port=section.port,
        client_id=section.client_id,
        account=section.account or "",
        connect_timeout=float(section.connect_timeout),
        order_timeout=float(section.order_timeout),
        bar_seconds=section.bar_seconds,
    )
    return IBBroker(settings, symbols=symbols)


def _build_binance(section: BinanceBrokerConfig, symbols: list[str]) -> AsyncBroker:
    import os

    from tradeloop.errors import ConfigError

    try:
        import ccxt  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        raise ConfigError(
            "broker.name",
            "binance",
            "the Binance broker needs ccxt: pip install 'tradeloop[binance]'",
        ) from None
    from tradeloop.execution.asynchronous.brokers.binance.broker import BinanceBroker
    from tradeloop.execution.asynchronous.brokers.binance.config import BinanceConfig
    from tradeloop.execution.asynchronous.components.broker_config import _is_loopback

    kw: dict[str, Any] = {}
    if section.key_file is not None:
        keys = read_key_file(section.key_file)
        kw["api_key"] = keys.get(section.key_env)
        kw["secret"] = keys.get(section.secret_env)
    has_env = os.environ.get(section.key_env) and os.environ.get(section.secret_env)
    loopback = section.base_url is not None and _is_loopback(section.base_url)
    if not kw.get("api_key") and not has_env and loopback:
        from tradeloop.testing.binance.server import DEFAULT_API_KEY, DEFAULT_SECRET

        kw["api_key"], kw["secret"] = DEFAULT_API_KEY, DEFAULT_SECRET  # public, loopback only
    config = BinanceConfig(
        testnet=section.testnet,
        base_url=section.base_url,
        key_env=section.key_env,
        secret_env=section.secret_env,
        weight_limit=section.weight_limit,
        timeout=float(section.timeout),
        recv_window=section.recv_window,
        quote=section.quote,
        ban_wait=float(section.ban_wait),
        **kw,
    )
    return BinanceBroker(
        config,
        symbols=symbols,
        interval=section.interval,
        data_watchdog=None if section.data_watchdog is None else float(section.data_watchdog),
    )
