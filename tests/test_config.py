"""YAML config: each accepted form, and one test per rejected input (checking ``.field``)."""

from __future__ import annotations

import copy
import textwrap
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tradeloop.config import (
    ConfigValidationError,
    TradeloopConfig,
    build_commission,
    build_engine_kwargs,
    build_feed,
    build_slippage,
    build_strategy,
    load_config,
    parse_config,
    resolve_strategy_class,
)
from tradeloop.errors import ConfigError, TradeloopError
from tradeloop.execution.core.costs import (
    FixedCommission,
    FixedSlippage,
    NoCommission,
    NoSlippage,
    PercentCommission,
    PercentSlippage,
    PerShareCommission,
)
from tradeloop.strategies import BuyAndHold, SmaCross

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

BASE: dict[str, Any] = {"data": {"sample": "daily"}, "strategy": {"name": "sma_cross"}}

CSV_HEADER = "timestamp,open,high,low,close,volume\n"


def cfg_with(**sections: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(sections)
    return data


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def write_bars(path: Path, n: int = 40, start_price: float = 100.0) -> Path:
    rows = [CSV_HEADER]
    price = start_price
    day = date(2022, 1, 3)
    for i in range(n):
        price *= 1.01 if (i // 5) % 2 == 0 else 0.99
        rows.append(
            f"{day + timedelta(days=i)},{price},{price * 1.01},{price * 0.99},{price},1000\n"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(rows), encoding="utf-8")
    return path


def expect_error(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value


# ----------------------------------------------------------------------------------- happy paths


def test_minimal_config_gets_defaults() -> None:
    cfg = parse_config(BASE)
    assert isinstance(cfg, TradeloopConfig)
    ex = cfg.execution
    assert (ex.mode, ex.initial_cash, ex.participation_rate) == ("sync", 100_000.0, None)
    assert (ex.allow_short, ex.leverage, ex.fractional) == (True, 1.0, False)
    assert cfg.costs.commission.type == "none"
    assert cfg.costs.slippage.type == "none"
    assert cfg.output.report is True
    assert cfg.output_dir == Path("results/backtest")
    assert cfg.strategy.strategy_class is SmaCross
    assert cfg.strategy.params == {}


def test_empty_sections_mean_defaults() -> None:
    cfg = parse_config(cfg_with(execution=None, costs=None, output=None))
    assert cfg.execution.initial_cash == 100_000.0
    assert cfg.strategy.params == {}


@pytest.mark.parametrize(
    ("mode", "normalised"),
    [
        ("sync", "sync"),
        ("backtest", "sync"),
        ("async", "async"),
        ("live", "async"),
        ("Backtest", "sync"),
    ],
)
def test_mode_aliases(mode: str, normalised: str) -> None:
    cfg = parse_config(cfg_with(execution={"mode": mode}))
    assert cfg.execution.mode == normalised
    assert cfg.execution.mode_input == mode


def test_execution_values() -> None:
    cfg = parse_config(
        cfg_with(
            execution={
                "initial_cash": 5000,
                "participation_rate": 1,
                "allow_short": False,
                "leverage": 2,
                "fractional": True,
            }
        )
    )
    kwargs = build_engine_kwargs(cfg)
    assert kwargs["initial_cash"] == 5000.0
    assert kwargs["participation_rate"] == 1.0
    assert kwargs["allow_short"] is False
    assert kwargs["leverage"] == 2.0
    assert kwargs["fractional"] is True
    assert isinstance(kwargs["commission"], NoCommission)
    assert isinstance(kwargs["slippage"], NoSlippage)


def test_sample_source_with_filters() -> None:
    cfg = parse_config(
        cfg_with(
            data={
                "sample": "daily",
                "symbols": ["ACME", "BOLT"],
                "start": "2021-01-01",
                "end": "2021-06-30",
            }
        )
    )
    feed = build_feed(cfg)
    assert feed.symbols == ("ACME", "BOLT")
    assert 100 < len(feed["ACME"]) < 130


def test_single_symbol_string_is_a_list() -> None:
    cfg = parse_config(cfg_with(data={"sample": "daily", "symbols": "CRUX"}))
    assert cfg.data.symbols == ["CRUX"]


def test_yaml_dates_become_iso_strings(tmp_path: Path) -> None:
    path = write(
        tmp_path / "run.yaml",
        """
        data: {sample: daily, start: 2021-03-01, end: 2021-03-31 12:00:00}
        strategy: {name: buy_and_hold}
        """,
    )
    cfg = load_config(path)
    assert cfg.data.start == "2021-03-01"
    assert cfg.data.end is not None and cfg.data.end.startswith("2021-03-31")


def test_path_source_resolved_against_config_dir(tmp_path: Path) -> None:
    write_bars(tmp_path / "cfg" / "data" / "spy.csv")
    path = write(
        tmp_path / "cfg" / "run.yaml",
        """
        data:
          path: data/spy.csv
          symbol: SPY
        strategy: {name: sma_cross, params: {fast: 2, slow: 5}}
        """,
    )
    cfg = load_config(path)
    assert cfg.data.path == (tmp_path / "cfg" / "data" / "spy.csv").resolve()
    assert cfg.source == path
    assert cfg.name == "run"
    assert cfg.output_dir == Path("results/run")
    feed = build_feed(cfg)
    assert feed.symbols == ("SPY",)
    assert len(feed) == 40


def test_path_source_with_format(tmp_path: Path) -> None:
    write_bars(tmp_path / "bars.txt")
    cfg = parse_config(
        cfg_with(data={"path": "bars.txt", "format": "csv", "symbol": "X"}), base_dir=tmp_path
    )
    assert build_feed(cfg).symbols == ("X",)


def test_path_source_multi_symbol_file() -> None:
    from tradeloop.data.sample import sample_path

    cfg = parse_config(cfg_with(data={"path": str(sample_path("daily")), "symbols": ["DYNA"]}))
    assert build_feed(cfg).symbols == ("DYNA",)


def test_files_source(tmp_path: Path) -> None:
    write_bars(tmp_path / "a.csv")
    write_bars(tmp_path / "b.csv", start_price=50.0)
    path = write(
        tmp_path / "multi.yaml",
        """
        data:
          files: {AAA: a.csv, BBB: b.csv}
        strategy: {name: buy_and_hold}
        """,
    )
    cfg = load_config(path)
    assert cfg.data.files == {"AAA": tmp_path / "a.csv", "BBB": tmp_path / "b.csv"}
    feed = build_feed(cfg)
    assert feed.symbols == ("AAA", "BBB")
    assert isinstance(build_strategy(cfg), BuyAndHold)


def test_missing_data_file_is_reported_when_loading(tmp_path: Path) -> None:
    cfg = parse_config(cfg_with(data={"path": "nope.csv"}), base_dir=tmp_path)
    with pytest.raises(ConfigError) as info:
        build_feed(cfg)
    assert info.value.field == "data.path"


@pytest.mark.parametrize(
    ("section", "cls", "attrs"),
    [
        ({"type": "none"}, NoCommission, {}),
        ("none", NoCommission, {}),
        (None, NoCommission, {}),
        (
            {"type": "per_share", "rate": 0.005, "minimum": 1, "maximum": 10},
            PerShareCommission,
            {"rate": 0.005, "minimum": 1.0, "maximum": 10.0},
        ),
        ({"type": "per_share", "rate": 0.01}, PerShareCommission, {"minimum": 0.0}),
        (
            {"type": "percent", "rate": 0.001, "minimum": 2},
            PercentCommission,
            {"rate": 0.001, "minimum": 2.0},
        ),
        ({"type": "fixed", "amount": 4.95}, FixedCommission, {"amount": 4.95}),
    ],
)
def test_commission_types(section: Any, cls: type, attrs: dict[str, float]) -> None:
    cfg = parse_config(cfg_with(costs={"commission": section}))
    model = build_commission(cfg)
    assert isinstance(model, cls)
    for name, value in attrs.items():
        assert getattr(model, name) == value
    assert isinstance(build_commission(cfg.costs.commission), cls)


@pytest.mark.parametrize(
    ("section", "cls", "attrs"),
    [
        ({"type": "none"}, NoSlippage, {}),
        ({"type": "fixed", "amount": 0.01}, FixedSlippage, {"amount": 0.01}),
        ({"type": "percent", "rate": 0.0005}, PercentSlippage, {"rate": 0.0005}),
    ],
)
def test_slippage_types(section: dict[str, Any], cls: type, attrs: dict[str, float]) -> None:
    cfg = parse_config(cfg_with(costs={"slippage": section}))
    model = build_slippage(cfg)
    assert isinstance(model, cls)
    for name, value in attrs.items():
        assert getattr(model, name) == value


def test_strategy_by_module_path() -> None:
    cfg = parse_config(
        cfg_with(
            strategy={"name": "tradeloop.strategies.sma_cross:SmaCross", "params": {"fast": 3}}
        )
    )
    strategy = build_strategy(cfg)
    assert isinstance(strategy, SmaCross)
    assert strategy.fast == 3


STRATEGY_FILE = """
from __future__ import annotations

from tradeloop import Strategy
from helper_mod import DEFAULT_LOOKBACK


class Breakout(Strategy):
    lookback: int = DEFAULT_LOOKBACK
    threshold: float = 1.5
"""


def test_strategy_by_file_path_relative_to_config(tmp_path: Path) -> None:
    write(tmp_path / "strats" / "breakout.py", STRATEGY_FILE)
    write(tmp_path / "strats" / "helper_mod.py", "DEFAULT_LOOKBACK = 20\n")
    path = write(
        tmp_path / "run.yaml",
        """
        data: {sample: daily}
        strategy:
          name: strats/breakout.py:Breakout
          params: {lookback: 55, threshold: 2}
        """,
    )
    cfg = load_config(path)
    strategy = build_strategy(cfg)
    assert type(strategy).__name__ == "Breakout"
    assert strategy.params == {"lookback": 55, "threshold": 2.0}


def test_each_build_strategy_gives_a_fresh_instance() -> None:
    cfg = parse_config(BASE)
    assert build_strategy(cfg) is not build_strategy(cfg)


def test_examples_load() -> None:
    cfg = load_config(EXAMPLES / "sma_cross.yaml")
    assert cfg.execution.mode == "sync"
    assert cfg.strategy.strategy_class is SmaCross
    assert isinstance(build_commission(cfg), PerShareCommission)
    custom = load_config(EXAMPLES / "custom_strategy.yaml")
    assert custom.strategy.strategy_class.__name__ == "RsiReversion"
    assert build_strategy(custom).params["stop_loss"] == 0.08


def test_resolve_strategy_class_builtin() -> None:
    assert resolve_strategy_class("buy_and_hold") is BuyAndHold


# ------------------------------------------------------------------------------ rejected inputs


def test_bad_mode() -> None:
    err = expect_error(cfg_with(execution={"mode": "paper"}))
    assert err.field == "execution.mode"
    assert err.value == "paper"
    assert "sync" in err.reason and "live" in err.reason


def test_negative_cash() -> None:
    err = expect_error(cfg_with(execution={"initial_cash": -100}))
    assert err.field == "execution.initial_cash"
    assert err.value == -100
    assert "> 0" in str(err)


@pytest.mark.parametrize("rate", [0, 1.5, -0.1])
def test_participation_out_of_range(rate: float) -> None:
    err = expect_error(cfg_with(execution={"participation_rate": rate}))
    assert err.field == "execution.participation_rate"
    assert err.value == rate


def test_leverage_below_one() -> None:
    assert expect_error(cfg_with(execution={"leverage": 0.5})).field == "execution.leverage"


def test_bool_is_not_a_number() -> None:
    err = expect_error(cfg_with(execution={"initial_cash": True}))
    assert err.field == "execution.initial_cash"


def test_unknown_key_typo_suggests_the_right_one() -> None:
    err = expect_error(cfg_with(execution={"inital_cash": 5000}))
    assert err.field == "execution.inital_cash"
    assert "did you mean 'initial_cash'" in str(err)


def test_unknown_top_level_section() -> None:
    assert expect_error(cfg_with(excution={"mode": "sync"})).field == "excution"


def test_two_data_sources() -> None:
    err = expect_error(cfg_with(data={"sample": "daily", "path": "bars.csv"}))
    assert err.field == "data"
    assert "exactly one" in err.reason


def test_no_data_source() -> None:
    err = expect_error(cfg_with(data={"symbols": ["ACME"]}))
    assert err.field == "data"
    assert "exactly one" in err.reason


def test_missing_data_section() -> None:
    assert expect_error({"strategy": {"name": "sma_cross"}}).field == "data"


def test_bad_sample_name() -> None:
    assert expect_error(cfg_with(data={"sample": "hourly"})).field == "data.sample"


def test_symbol_without_path() -> None:
    assert expect_error(cfg_with(data={"sample": "daily", "symbol": "X"})).field == "data.symbol"


def test_bad_start_date() -> None:
    err = expect_error(cfg_with(data={"sample": "daily", "start": "2021-31-01"}))
    assert err.field == "data.start"


def test_end_before_start() -> None:
    err = expect_error(cfg_with(data={"sample": "daily", "start": "2022-01-01", "end": "2021"}))
    assert err.field in ("data.end", "data.start")


def test_unknown_strategy_lists_builtins() -> None:
    err = expect_error(cfg_with(strategy={"name": "sma_crossover"}))
    assert err.field == "strategy.name"
    assert "sma_cross" in err.reason and "buy_and_hold" in err.reason


def test_missing_strategy_name() -> None:
    assert expect_error(cfg_with(strategy={"params": {}})).field == "strategy.name"


def test_bad_module() -> None:
    err = expect_error(cfg_with(strategy={"name": "no_such_pkg.strats:Thing"}))
    assert err.field == "strategy.name"
    assert "no_such_pkg" in err.reason


def test_missing_class_in_module() -> None:
    err = expect_error(cfg_with(strategy={"name": "tradeloop.strategies:NoSuchStrategy"}))
    assert err.field == "strategy.name"
    assert "NoSuchStrategy" in err.reason


def test_class_not_a_strategy() -> None:
    err = expect_error(cfg_with(strategy={"name": "tradeloop.errors:ConfigError"}))
    assert err.field == "strategy.name"
    assert "not a tradeloop Strategy" in err.reason


def test_strategy_file_missing(tmp_path: Path) -> None:
    err = expect_error(cfg_with(strategy={"name": str(tmp_path / "gone.py") + ":X"}))
    assert err.field == "strategy.name"
    assert "not found" in err.reason


def test_strategy_file_that_fails_to_import(tmp_path: Path) -> None:
    bad = write(tmp_path / "broken.py", "raise RuntimeError('boom')\n")
    err = expect_error(cfg_with(strategy={"name": f"{bad}:X"}))
    assert err.field == "strategy.name"
    assert "RuntimeError: boom" in err.reason


def test_unknown_strategy_param() -> None:
    err = expect_error(cfg_with(strategy={"name": "sma_cross", "params": {"fastt": 5}}))
    assert err.field == "strategy.params.fastt"
    assert "fast" in err.reason


def test_mistyped_strategy_param() -> None:
    err = expect_error(cfg_with(strategy={"name": "sma_cross", "params": {"slow": "30"}}))
    assert err.field == "strategy.params.slow"


def test_missing_commission_rate() -> None:
    err = expect_error(cfg_with(costs={"commission": {"type": "per_share", "minimum": 1}}))
    assert err.field == "costs.commission.rate"
    assert "per_share" in err.reason


def test_missing_fixed_commission_amount() -> None:
    err = expect_error(cfg_with(costs={"commission": {"type": "fixed"}}))
    assert err.field == "costs.commission.amount"


def test_missing_slippage_rate() -> None:
    err = expect_error(cfg_with(costs={"slippage": {"type": "percent"}}))
    assert err.field == "costs.slippage.rate"


def test_cost_field_that_does_not_apply() -> None:
    err = expect_error(cfg_with(costs={"commission": {"type": "fixed", "amount": 1, "rate": 0.1}}))
    assert err.field == "costs.commission.rate"


def test_negative_commission_rate() -> None:
    err = expect_error(cfg_with(costs={"commission": {"type": "per_share", "rate": -0.01}}))
    assert err.field == "costs.commission.rate"


def test_percent_commission_rate_must_be_a_fraction() -> None:
    err = expect_error(cfg_with(costs={"commission": {"type": "percent", "rate": 5}}))
    assert err.field == "costs.commission.rate"


def test_commission_maximum_below_minimum() -> None:
    err = expect_error(
        cfg_with(
            costs={"commission": {"type": "per_share", "rate": 0.01, "minimum": 5, "maximum": 1}}
        )
    )
    assert err.field == "costs.commission.maximum"


def test_unknown_commission_type() -> None:
    err = expect_error(cfg_with(costs={"commission": {"type": "tiered"}}))
    assert err.field == "costs.commission.type"


def test_all_errors_are_listed() -> None:
    err = expect_error(cfg_with(execution={"mode": "paper", "initial_cash": -1, "leverage": 0}))
    assert isinstance(err, ConfigValidationError)
    assert err.field == "execution.mode"
    assert [f for f, _, _ in err.errors] == [
        "execution.mode",
        "execution.initial_cash",
        "execution.leverage",
    ]
    assert "execution.initial_cash" in str(err) and "execution.leverage" in str(err)


def test_errors_are_tradeloop_errors() -> None:
    err = expect_error(cfg_with(execution={"mode": "paper"}))
    assert isinstance(err, TradeloopError)


def test_parse_config_rejects_non_mapping() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(["data"])  # type: ignore[arg-type]
    assert info.value.field == "config"


# --------------------------------------------------------------------------------- file problems


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert info.value.field == "config"
    assert "not found" in info.value.reason


def test_bad_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.yaml",
        """
        data:
          sample: daily
        strategy: {name: sma_cross
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == "config"
    assert "line" in info.value.reason and "column" in info.value.reason


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    path = write(
        tmp_path / "dup.yaml",
        """
        data: {sample: daily}
        strategy: {name: sma_cross}
        execution: {initial_cash: 1000, initial_cash: 2000}
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == "config"
    assert "duplicate key 'initial_cash'" in info.value.reason
    assert "line 4" in info.value.reason


@pytest.mark.parametrize("text", ["- data\n- strategy\n", "just a string\n", "42\n"])
def test_non_mapping_yaml(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "list.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == "config"
    assert "mapping" in info.value.reason


def test_empty_yaml(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.yaml", "# nothing here\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == "config"


def test_errors_from_a_file_keep_dotted_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path / "typo.yaml",
        """
        data: {sample: daily}
        strategy: {name: sma_cross}
        costs:
          commission: {type: percent, rte: 0.001}
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == "costs.commission.rte"
    assert "did you mean 'rate'" in str(info.value)


# ------------------------------------------------------------------------------------- broker


def test_broker_defaults_to_the_simulated_one() -> None:
    cfg = parse_config(cfg_with(execution={"mode": "live"}))
    assert (cfg.broker.name, cfg.broker.speed, cfg.broker.max_sleep) == ("simulated", 0.0, 1.0)
    assert cfg.execution.cancel_on_stop is False


def test_build_broker_replays_the_data_with_the_account_and_costs() -> None:
    from tradeloop.config import build_broker
    from tradeloop.execution.asynchronous import ReplayBarSource, SimulatedBroker

    cfg = parse_config(
        cfg_with(
            execution={"mode": "live", "initial_cash": 5_000, "leverage": 2, "fractional": True},
            broker={"name": "simulated", "speed": 60, "max_sleep": 0.25},
            data={"sample": "daily", "symbols": ["BOLT"]},
            costs={"commission": {"type": "fixed", "amount": 1.5}},
        )
    )
    broker = build_broker(cfg)
    assert isinstance(broker, SimulatedBroker)
    assert isinstance(broker.source, ReplayBarSource)
    assert (broker.source.speed, broker.source.max_sleep) == (60.0, 0.25)
    assert broker.symbols == ("BOLT",)
    ex = broker.exchange
    assert (ex.portfolio.cash, ex.portfolio.leverage, ex.fractional) == (5_000, 2.0, True)
    assert isinstance(ex.commission, FixedCommission)


@pytest.mark.parametrize(
    ("broker", "field"),
    [
        ({"name": "robinhood"}, "broker.name"),
        ({"name": "simulated", "speed": -1}, "broker.speed"),
        ({"name": "simulated", "max_sleep": "long"}, "broker.max_sleep"),
        ({"name": "simulated", "sped": 5}, "broker.sped"),
    ],
)
def test_bad_broker_settings(broker: dict[str, Any], field: str) -> None:
    err = expect_error(cfg_with(execution={"mode": "live"}, broker=broker))
    assert err.field == field


def test_cancel_on_stop_must_be_a_bool() -> None:
    err = expect_error(cfg_with(execution={"mode": "live", "cancel_on_stop": "sometimes"}))
    assert err.field == "execution.cancel_on_stop"


# --------------------------------------------------------------------------------------- risk


def test_risk_section_is_optional_and_off_by_default() -> None:
    for data in (BASE, cfg_with(risk=None), cfg_with(risk={})):
        cfg = parse_config(data)
        assert not cfg.risk.any_set
        assert cfg.risk.describe() == "none"
        assert "risk" not in build_engine_kwargs(cfg)


def test_risk_section_parsed_and_passed_to_the_engine() -> None:
    from tradeloop.config import RiskConfig, build_risk
    from tradeloop.execution.core.risk import RiskLimits, RiskManager
    from tradeloop.execution.factory import create_engine

    section = {
        "max_order_notional": 25_000,
        "max_position": 1_000.5,
        "max_open_orders": 10,
        "max_orders_per_minute": 30,
        "daily_loss_limit": 2_000,
    }
    cfg = parse_config(cfg_with(risk=section))
    assert isinstance(cfg.risk, RiskConfig)
    assert cfg.risk.model_dump() == section
    limits = RiskLimits(
        max_order_notional=25_000.0,
        max_position=1_000.5,
        max_open_orders=10,
        max_orders_per_minute=30,
        daily_loss_limit=2_000.0,
    )
    assert build_risk(cfg) == limits
    assert build_engine_kwargs(cfg)["risk"] == limits
    assert cfg.risk.describe() == (
        "max_order_notional 25,000.00, max_position 1,000.5, max_open_orders 10, "
        "max_orders_per_minute 30, daily_loss_limit 2,000.00"
    )
    engine = create_engine(cfg)
    assert isinstance(engine.risk, RiskManager)  # type: ignore[union-attr]
    assert engine.risk.limits == limits  # type: ignore[union-attr]


def test_one_risk_limit_is_enough() -> None:
    cfg = parse_config(cfg_with(risk={"max_open_orders": 3}))
    risk = build_engine_kwargs(cfg)["risk"]
    assert (risk.max_open_orders, risk.max_order_notional, risk.daily_loss_limit) == (3, None, None)


def test_risk_section_from_yaml(tmp_path: Path) -> None:
    path = write(
        tmp_path / "risky.yaml",
        """
        data: {sample: daily}
        strategy: {name: sma_cross}
        risk:
          max_orders_per_minute: 5
          daily_loss_limit: 1500.5
        """,
    )
    cfg = load_config(path)
    assert (cfg.risk.max_orders_per_minute, cfg.risk.daily_loss_limit) == (5, 1500.5)


def test_unknown_risk_key_suggests_the_right_one() -> None:
    err = expect_error(cfg_with(risk={"max_open_order": 5}))
    assert err.field == "risk.max_open_order"
    assert err.value == 5
    assert "did you mean 'max_open_orders'" in str(err)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("max_order_notional", 0, "must be > 0"),
        ("max_order_notional", -100, "must be > 0"),
        ("max_order_notional", "lots", "must be a number"),
        ("max_order_notional", True, "not true/false"),
        ("max_order_notional", float("inf"), "finite"),
        ("max_position", 0, "must be > 0"),
        ("max_position", [10], "must be a number"),
        ("daily_loss_limit", -1, "must be > 0"),
        ("daily_loss_limit", float("nan"), "finite"),
        ("max_open_orders", 0, "must be >= 1"),
        ("max_open_orders", 2.5, "must be an integer"),
        ("max_open_orders", 2.0, "must be an integer"),
        ("max_open_orders", True, "must be an integer"),
        ("max_orders_per_minute", "ten", "must be an integer"),
        ("max_orders_per_minute", -5, "must be >= 1"),
    ],
)
def test_bad_risk_values(key: str, value: Any, reason: str) -> None:
    err = expect_error(cfg_with(risk={key: value}))
    assert err.field == f"risk.{key}"
    assert err.value == value or (value != value and err.value != err.value)  # NaN
    assert reason in err.reason


def test_risk_section_must_be_a_mapping() -> None:
    err = expect_error(cfg_with(risk=[1, 2]))
    assert err.field == "risk"
    assert "mapping" in err.reason


def test_risk_limits_reach_the_asynchronous_engine() -> None:
    from tradeloop.execution import AsyncEngine, create_engine

    engine = create_engine(cfg_with(execution={"mode": "live"}, risk={"max_open_orders": 3}))
    assert isinstance(engine, AsyncEngine)
    assert engine.risk is not None and engine.risk.limits.max_open_orders == 3
    assert engine.manager.risk is engine.risk


def test_build_risk_prefixes_core_errors() -> None:
    from tradeloop.config import RiskConfig, build_risk

    section = RiskConfig.model_construct(max_open_orders=0)  # skips pydantic's own checks
    with pytest.raises(ConfigError) as info:
        build_risk(section)
    assert info.value.field == "risk.max_open_orders"
    assert info.value.value == 0


# ------------------------------------------------------------- data.timestamp_unit, resample


def write_epoch_bars(path: Path, unit_factor: int, n: int = 40) -> Path:
    """``write_bars`` with the dates as epoch numbers (``unit_factor`` per second)."""
    write_bars(path, n)
    lines = path.read_text(encoding="utf-8").splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        day, rest = line.split(",", 1)
        seconds = (date.fromisoformat(day) - date(1970, 1, 1)).days * 86_400
        out.append(f"{seconds * unit_factor},{rest}")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def test_timestamp_unit_reaches_the_loader(tmp_path: Path) -> None:
    write_bars(tmp_path / "iso.csv")
    write_epoch_bars(tmp_path / "ms.csv", 1000)
    want = build_feed(parse_config(cfg_with(data={"path": "iso.csv", "symbol": "X"}), tmp_path))
    for data in (
        {"path": "ms.csv", "symbol": "X", "timestamp_unit": "ms"},
        {"path": "ms.csv", "symbol": "X"},  # detected from the digits
        {"files": {"X": "ms.csv"}, "timestamp_unit": "ms"},
    ):
        cfg = parse_config(cfg_with(data=data), base_dir=tmp_path)
        assert build_feed(cfg)["X"].ts == want["X"].ts
    wrong = parse_config(
        cfg_with(data={"path": "ms.csv", "symbol": "X", "timestamp_unit": "s"}), tmp_path
    )
    with pytest.raises(TradeloopError) as info:
        build_feed(wrong)
    assert info.value.field == "timestamp"  # type: ignore[attr-defined]
    assert "timestamp_unit='s'" in str(info.value)


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"path": "bars.csv", "timestamp_unit": "sec"}, "data.timestamp_unit", "one of"),
        ({"path": "bars.csv", "timestamp_unit": 1000}, "data.timestamp_unit", "one of"),
        ({"sample": "daily", "timestamp_unit": "ms"}, "data.timestamp_unit", "data files"),
        ({"sample": "daily", "resample": "7min"}, "data.resample", "divide a day"),
        ({"sample": "daily", "resample": "5m"}, "data.resample", "'min'"),
        ({"sample": "daily", "resample": 60}, "data.resample", "string"),
        ({"symbols": ["X"], "resample": "1h"}, "data.resample", "Resampler"),
    ],
)
def test_bad_timestamp_unit_and_resample(data: dict[str, Any], field: str, reason: str) -> None:
    err = expect_error(cfg_with(data=data))
    assert err.field == field
    assert err.value == data[field.split(".")[1]]
    assert reason in err.reason


def test_resample_is_applied_by_build_feed() -> None:
    from tradeloop.data.resample import resample
    from tradeloop.data.sample import load_sample

    cfg = parse_config(cfg_with(data={"sample": "minute", "symbols": ["ACME"], "resample": "1h"}))
    assert cfg.data.resample == "1h"
    feed = build_feed(cfg)
    want = resample(load_sample("minute", symbols=["ACME"]), "1h")
    assert feed["ACME"].ts == want["ACME"].ts
    assert feed["ACME"].close == want["ACME"].close
    assert len(feed) == 140  # 20 sessions of 7 hourly buckets (UTC hours)
