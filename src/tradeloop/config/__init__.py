"""YAML run configuration: what to trade, on which data, with which costs, and where to write.

A config file has eight sections, one module each; only ``data`` and ``strategy`` are required::

    execution:
      mode: sync              # sync | backtest (alias of sync) | async | live (alias of async)
      initial_cash: 100000    # > 0
      participation_rate: 0.1 # null (no volume cap) or 0 < x <= 1
      allow_short: true
      leverage: 1.0           # >= 1
      fractional: false
      cancel_on_stop: false   # async/live: cancel open orders when the run stops
    broker:                   # async/live only
      name: simulated         # simulated (replays `data`; fills like a backtest)
      speed: 0                # replay pace, x the bars' clock; 0 = as fast as possible
    data:                     # exactly one of sample / path / files
      sample: daily           # the embedded sample: daily | minute
      # path: bars.csv        # one file (.csv, .csv.gz, .parquet), with `format`, `symbol`
      # files: {AAPL: aapl.csv, MSFT: msft.parquet}
      symbols: [ACME, BOLT]   # optional subset
      start: 2021-01-01       # optional, inclusive
      end: 2022-12-31         # optional, inclusive
      # timestamp_unit: ms    # files only: unit of numeric timestamps, s | ms | us | ns
      #                       # (default: told from their number of digits)
      # resample: 1h          # optional: coarser bars in UTC buckets (5min, 15min, 1h, 1d, ...)
    strategy:
      name: sma_cross         # built-in name | package.module:ClassName | file.py:ClassName
      params: {fast: 10, slow: 30}
    costs:
      commission: {type: per_share, rate: 0.005, minimum: 1.0, maximum: null}
      slippage: {type: percent, rate: 0.0005}
    risk:                     # pre-trade limits, each optional (sync only for now)
      max_order_notional: 25000   # qty x limit/stop price (else last price), currency
      max_position: 1000          # |shares| per symbol, counting same-side open orders
      max_open_orders: 10         # account-wide, the new order included
      max_orders_per_minute: 30   # rolling 60 s of engine time
      daily_loss_limit: 2000      # below the UTC day's start equity: only reducing orders
    output:
      dir: results/sma_cross  # default results/<config file stem>, relative to the working dir
      report: true
    sweep:                    # `tradeloop sweep` only: a parameter grid, see config/sweep.py
      grid: {fast: [5, 10, 20], slow: [40, 80]}

Every section forbids unknown keys, so typos fail loudly. Relative data paths and strategy file
paths are resolved against the directory of the config file. Every problem is reported as a
:class:`~tradeloop.errors.ConfigError` whose ``field`` is the dotted path of the offending key
(``execution.mode``, ``costs.commission.rate``, ...); when there are several problems, the message
lists them all and :attr:`ConfigValidationError.errors` holds each one.

An order the ``risk`` limits refuse is not an error: it ends ``rejected`` (delivered to
``on_order_update`` like any rejection) with a ``reject_reason`` naming the rule and the numbers,
e.g. ``risk: max_open_orders: 10 open orders + this one > limit 10``.

:func:`load_config` reads a file, :func:`parse_config` a mapping. Both resolve the strategy class
and check its parameters, so a config that loads is ready to run. ``build_*`` turn the sections into
the objects the engine takes.
"""

from tradeloop.config._base import ConfigValidationError
from tradeloop.config.broker import AlpacaBrokerConfig, SimulatedBrokerConfig, build_broker
from tradeloop.config.costs import (
    CommissionConfig,
    CostsConfig,
    SlippageConfig,
    build_commission,
    build_slippage,
)
from tradeloop.config.data import DataConfig, build_feed, build_source, require_in_memory
from tradeloop.config.execution import MODE_ALIASES, ExecutionConfig
from tradeloop.config.loader import (
    OutputConfig,
    TradeloopConfig,
    build_engine_kwargs,
    load_config,
    parse_config,
)
from tradeloop.config.risk import RiskConfig, build_risk
from tradeloop.config.strategy import StrategyConfig, build_strategy, resolve_strategy_class
from tradeloop.config.sweep import SweepConfig, WalkForwardConfig

__all__ = [
    "MODE_ALIASES",
    "AlpacaBrokerConfig",
    "CommissionConfig",
    "ConfigValidationError",
    "CostsConfig",
    "DataConfig",
    "ExecutionConfig",
    "OutputConfig",
    "RiskConfig",
    "SimulatedBrokerConfig",
    "SlippageConfig",
    "StrategyConfig",
    "SweepConfig",
    "TradeloopConfig",
    "WalkForwardConfig",
    "build_broker",
    "build_commission",
    "build_engine_kwargs",
    "build_feed",
    "build_risk",
    "build_slippage",
    "build_source",
    "build_strategy",
    "load_config",
    "parse_config",
    "require_in_memory",
    "resolve_strategy_class",
]
