"""The whole config: its root model, reading YAML, and turning pydantic's errors into ours."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Annotated, Any, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from tradeloop.config._base import (
    _FIELD_ERROR,
    ConfigValidationError,
    _Section,
    error_reason,
    field_error,
    none_to_empty,
    unknown_key_reason,
)
from tradeloop.config.broker import AlpacaBrokerConfig, BrokerSection, SimulatedBrokerConfig
from tradeloop.config.costs import CostsConfig, build_commission, build_slippage
from tradeloop.config.data import DataConfig
from tradeloop.config.execution import ExecutionConfig
from tradeloop.config.risk import RiskConfig, build_risk
from tradeloop.config.strategy import StrategyConfig, build_strategy, resolve_strategy_class
from tradeloop.config.sweep import SweepConfig, check_sweep
from tradeloop.errors import ConfigError

__all__ = ["OutputConfig", "TradeloopConfig", "build_engine_kwargs", "load_config", "parse_config"]


class OutputConfig(_Section):
    dir: Path | None = None
    report: bool = True


class TradeloopConfig(_Section):
    """A whole run configuration. Build it with :func:`load_config` or :func:`parse_config`."""

    execution: Annotated[ExecutionConfig, BeforeValidator(none_to_empty)] = Field(
        default_factory=ExecutionConfig
    )
    data: DataConfig
    strategy: StrategyConfig
    costs: Annotated[CostsConfig, BeforeValidator(none_to_empty)] = Field(
        default_factory=CostsConfig
    )
    output: Annotated[OutputConfig, BeforeValidator(none_to_empty)] = Field(
        default_factory=OutputConfig
    )
    broker: Annotated[BrokerSection, BeforeValidator(none_to_empty)] = Field(
        default_factory=SimulatedBrokerConfig
    )
    risk: Annotated[RiskConfig, BeforeValidator(none_to_empty)] = Field(default_factory=RiskConfig)
    sweep: SweepConfig | None = None  # `tradeloop sweep` only

    @model_validator(mode="after")
    def _data_for_the_engine(self) -> TradeloopConfig:
        needs_data = self.execution.mode == "sync" or self.broker.needs_data
        given = self.data.sources
        if needs_data and not given:
            raise field_error(
                "data", {}, "give exactly one data source: sample, path or files (got none)"
            )
        if not needs_data:
            name = self.broker.name
            if given:
                raise field_error(
                    f"data.{given[0]}",
                    str(getattr(self.data, given[0])),
                    f"not used with broker {name!r}: its bars come from the broker's stream",
                )
            if not self.data.symbols:
                raise field_error(
                    "data.symbols", None, f"required with broker {name!r}: the symbols to trade"
                )
        return self

    _source: Path | None = PrivateAttr(default=None)
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @property
    def source(self) -> Path | None:
        """The config file this was loaded from (``None`` for :func:`parse_config`)."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """The directory relative paths were resolved against."""
        return self._base_dir

    @property
    def name(self) -> str:
        """The config file's stem, or ``"backtest"`` for a config that came from a mapping."""
        return self._source.stem if self._source is not None else "backtest"

    @property
    def output_dir(self) -> Path:
        """``output.dir``, defaulting to ``results/<name>`` (relative to the working directory)."""
        return self.output.dir if self.output.dir is not None else Path("results") / self.name


# ----------------------------------------------------------------------------- validation errors


# Sections that are unions told apart by their ``name`` (pydantic puts the tag in error locations)
_TAGGED: dict[tuple[str, ...], dict[str, type[BaseModel]]] = {
    ("broker",): {"simulated": SimulatedBrokerConfig, "alpaca": AlpacaBrokerConfig},
}


def _untag(loc: tuple[str, ...]) -> tuple[tuple[str, ...], type[BaseModel] | None]:
    """``loc`` without a union's tag (``broker.alpaca.timeout`` -> ``broker.timeout``), and the
    model the tag chose."""
    for prefix, models in _TAGGED.items():
        n = len(prefix)
        if loc[:n] == prefix and len(loc) > n and loc[n] in models:
            return loc[:n] + loc[n + 1 :], models[loc[n]]
    return loc, None


def _model_at(loc: tuple[str, ...]) -> type[BaseModel] | None:
    """The model class validating the mapping at ``loc`` (for 'did you mean' suggestions)."""
    model: type[BaseModel] = TradeloopConfig
    for i, part in enumerate(loc):
        tagged = _TAGGED.get(loc[: i + 1])
        if tagged is not None:
            return None  # the caller resolved the tag already (see _untag)
        info = model.model_fields.get(part)
        if info is None:
            return None
        ann = info.annotation
        options = [a for a in get_args(ann) if a is not type(None)]  # `X | None` (sweep)
        if len(options) == 1:
            ann = options[0]
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return model


def _reason(err: Mapping[str, Any], loc: tuple[str, ...]) -> str:
    model = _model_at(loc[:-1]) if err["type"] == "extra_forbidden" else None
    return error_reason(err, model.model_fields if model is not None else None)


def _convert_validation_error(exc: ValidationError) -> ConfigValidationError:
    items: list[tuple[str, Any, str]] = []
    for err in exc.errors(include_url=False):
        loc = tuple(str(p) for p in err["loc"])
        ctx = err.get("ctx") or {}
        if err["type"] == _FIELD_ERROR:
            sub = str(ctx.get("field", ""))
            full = loc + ((sub,) if sub else ())
            items.append((".".join(full) or "config", ctx.get("value"), str(ctx.get("reason"))))
            continue
        if err["type"] == "union_tag_invalid":
            tags = ", ".join(repr(t) for t in _TAGGED.get(loc, {}))
            items.append((".".join((*loc, "name")), ctx.get("tag"), f"must be one of {tags}"))
            continue
        loc, tagged = _untag(loc)
        value = None if err["type"] == "missing" else err.get("input")
        if tagged is not None and err["type"] == "extra_forbidden":
            reason = unknown_key_reason(loc[-1], tagged.model_fields)
        else:
            reason = _reason(err, loc)
        items.append((".".join(loc) or "config", value, reason))
    return ConfigValidationError(items)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects duplicate keys instead of silently keeping the last one."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
    return dict(loader.construct_mapping(node, deep=True))


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def _yaml_error(path: Path, exc: yaml.YAMLError) -> ConfigError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        return ConfigError("config", str(path), f"invalid YAML at {where}: {problem}")
    return ConfigError("config", str(path), f"invalid YAML: {problem}")


def load_config(path: str | Path) -> TradeloopConfig:
    """Read and validate a YAML config file. Relative paths inside resolve against its folder."""
    file = Path(path).expanduser()
    if not file.exists():
        raise ConfigError("config", str(path), "file not found")
    if not file.is_file():
        raise ConfigError("config", str(path), "not a file")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("config", str(path), f"cannot read: {exc}") from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise _yaml_error(file, exc) from None
    if data is None:
        raise ConfigError("config", str(path), "the file is empty; expected a YAML mapping")
    if not isinstance(data, Mapping):
        raise ConfigError(
            "config",
            str(path),
            f"the top level must be a mapping of sections, got {type(data).__name__}",
        )
    cfg = parse_config(data, base_dir=file.resolve().parent)
    cfg._source = file
    return cfg


def _resolve(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def parse_config(data: Mapping[str, Any], base_dir: str | Path | None = None) -> TradeloopConfig:
    """Validate a config mapping (as read from YAML).

    Relative data paths and strategy files resolve against ``base_dir`` (default: the working
    directory). The strategy class is imported and instantiated once with ``params`` so unknown
    or mistyped parameters are reported now.
    """
    if not isinstance(data, Mapping):
        raise ConfigError("config", type(data).__name__, "must be a mapping of sections")
    base = Path(base_dir).expanduser().resolve() if base_dir is not None else Path.cwd()
    try:
        cfg = TradeloopConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise _convert_validation_error(exc) from None
    cfg._base_dir = base
    if cfg.data.path is not None:
        cfg.data.path = _resolve(cfg.data.path, base)
    if cfg.data.files is not None:
        cfg.data.files = {sym: _resolve(p, base) for sym, p in cfg.data.files.items()}
    if cfg.output.dir is not None:
        cfg.output.dir = cfg.output.dir.expanduser()
    if cfg.execution.journal is not None:
        cfg.execution.journal = cfg.execution.journal.expanduser()
    cfg.strategy._cls = resolve_strategy_class(cfg.strategy.name, base)
    build_strategy(cfg)  # unknown / mistyped params raise ConfigError(strategy.params.<name>)
    check_sweep(cfg)  # sweep.grid names and values against the strategy's parameters
    return cfg


def build_engine_kwargs(cfg: TradeloopConfig) -> dict[str, Any]:
    """Keyword arguments for :class:`~tradeloop.execution.synchronous.SyncExecutionEngine`
    (``risk`` only when the ``risk`` section sets a limit)."""
    ex = cfg.execution
    kwargs: dict[str, Any] = {
        "initial_cash": ex.initial_cash,
        "commission": build_commission(cfg),
        "slippage": build_slippage(cfg),
        "participation_rate": ex.participation_rate,
        "allow_short": ex.allow_short,
        "leverage": ex.leverage,
        "fractional": ex.fractional,
    }
    risk = build_risk(cfg)
    if risk is not None:
        kwargs["risk"] = risk
    return kwargs
