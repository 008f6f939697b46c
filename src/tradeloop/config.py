"""YAML run configuration: what to trade, on which data, with which costs, and where to write.

A config file has five sections; only ``data`` and ``strategy`` are required::

    execution:
      mode: sync              # sync | backtest (alias of sync) | async | live (alias of async)
      initial_cash: 100000    # > 0
      participation_rate: 0.1 # null (no volume cap) or 0 < x <= 1
      allow_short: true
      leverage: 1.0           # >= 1
      fractional: false
    data:                     # exactly one of sample / path / files
      sample: daily           # the embedded sample: daily | minute
      # path: bars.csv        # one file (.csv, .csv.gz, .parquet), with `format`, `symbol`
      # files: {AAPL: aapl.csv, MSFT: msft.parquet}
      symbols: [ACME, BOLT]   # optional subset
      start: 2021-01-01       # optional, inclusive
      end: 2022-12-31         # optional, inclusive
    strategy:
      name: sma_cross         # built-in name | package.module:ClassName | file.py:ClassName
      params: {fast: 10, slow: 30}
    costs:
      commission: {type: per_share, rate: 0.005, minimum: 1.0, maximum: null}
      slippage: {type: percent, rate: 0.0005}
    output:
      dir: results/sma_cross  # default results/<config file stem>, relative to the working dir
      report: true

Every section forbids unknown keys, so typos fail loudly. Relative data paths and strategy file
paths are resolved against the directory of the config file. Every problem is reported as a
:class:`~tradeloop.errors.ConfigError` whose ``field`` is the dotted path of the offending key
(``execution.mode``, ``costs.commission.rate``, ...); when there are several problems, the message
lists them all and :attr:`ConfigValidationError.errors` holds each one.

:func:`load_config` reads a file, :func:`parse_config` a mapping. Both resolve the strategy class
and check its parameters, so a config that loads is ready to run. ``build_*`` turn the sections into
the objects the engine takes.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Hashable, Mapping
from datetime import date, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tradeloop.errors import ConfigError
from tradeloop.strategy import Strategy

if TYPE_CHECKING:
    from tradeloop.data.feed import BarFeed
    from tradeloop.execution.sync_protocols import CommissionModel, SlippageModel

__all__ = [
    "CommissionConfig",
    "ConfigValidationError",
    "CostsConfig",
    "DataConfig",
    "ExecutionConfig",
    "OutputConfig",
    "SlippageConfig",
    "StrategyConfig",
    "TradeloopConfig",
    "build_commission",
    "build_engine_kwargs",
    "build_feed",
    "build_slippage",
    "build_strategy",
    "load_config",
    "parse_config",
    "resolve_strategy_class",
]

MODE_ALIASES: dict[str, Literal["sync", "async"]] = {
    "sync": "sync",
    "backtest": "sync",
    "async": "async",
    "live": "async",
}

_FIELD_ERROR = "tradeloop_field_error"  # PydanticCustomError type carrying a sub-field and value


class ConfigValidationError(ConfigError):
    """A :class:`ConfigError` for one or more invalid values found while validating a config.

    ``field``, ``value`` and ``reason`` describe the first problem; :attr:`errors` lists all of
    them as ``(field, value, reason)``.
    """

    def __init__(self, errors: list[tuple[str, Any, str]]) -> None:
        self.errors = errors
        field, value, reason = errors[0]
        if len(errors) > 1:
            others = "; ".join(f"{f}={v!r}: {r}" for f, v, r in errors[1:])
            reason = f"{reason} (and {len(errors) - 1} more: {others})"
        super().__init__(field, value, reason)


def _field_error(field: str, value: Any, reason: str) -> PydanticCustomError:
    """A validation error about ``field`` (relative to the model being validated)."""
    return PydanticCustomError(
        _FIELD_ERROR, "{reason}", {"field": field, "value": value, "reason": reason}
    )


def _reject_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


Number = Annotated[float, BeforeValidator(_reject_bool), Field(allow_inf_nan=False)]


def _none_to_empty(value: Any) -> Any:
    return {} if value is None else value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --------------------------------------------------------------------------------------- sections


class ExecutionConfig(_Section):
    """How the engine simulates (or, later, runs) trading."""

    mode: Literal["sync", "async"] = "sync"
    initial_cash: Number = Field(100_000.0, gt=0)
    participation_rate: Number | None = Field(None, gt=0, le=1)
    allow_short: bool = True
    leverage: Number = Field(1.0, ge=1)
    fractional: bool = False

    _mode_input: str = PrivateAttr(default="sync")

    @field_validator("mode", mode="before")
    @classmethod
    def _normalise_mode(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in MODE_ALIASES:
            return MODE_ALIASES[value.strip().lower()]
        raise ValueError("must be one of sync, backtest, async, live")

    @model_validator(mode="wrap")
    @classmethod
    def _remember_mode(cls, data: Any, handler: Any) -> Any:
        inst = handler(data)
        if isinstance(inst, ExecutionConfig):
            raw = data.get("mode") if isinstance(data, Mapping) else None
            inst._mode_input = raw.strip() if isinstance(raw, str) else inst.mode
        return inst

    @property
    def mode_input(self) -> str:
        """``mode`` as written in the config (``live`` rather than the normalised ``async``)."""
        return self._mode_input


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
        raise _field_error(
            field, value, "must be an ISO date or timestamp, e.g. 2021-01-31 or 2021-01-31T15:30"
        ) from None


def _single_to_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class DataConfig(_Section):
    """Where the bars come from: the embedded ``sample``, one file (``path``) or ``files``."""

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

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        given = [k for k in ("sample", "path", "files") if getattr(self, k) is not None]
        if len(given) != 1:
            got = f"got {' and '.join(given)}" if given else "got none"
            raise _field_error(
                "",
                {k: str(getattr(self, k)) for k in given},
                f"give exactly one data source: sample, path or files ({got})",
            )
        if self.symbol is not None and self.path is None:
            raise _field_error(
                "symbol", self.symbol, "only applies with data.path (a single-symbol file)"
            )
        if self.format is not None and self.sample is not None:
            raise _field_error("format", self.format, "does not apply to the embedded sample")
        if self.symbols is not None:
            dupes = sorted({s for s in self.symbols if self.symbols.count(s) > 1})
            if dupes:
                raise _field_error("symbols", self.symbols, f"duplicate symbols: {dupes}")
        if self.files is not None:
            for sym in self.files:
                if not sym.strip():
                    raise _field_error("files", sym, "symbol names must not be empty")
        start = None if self.start is None else _parse_when("start", self.start)
        end = None if self.end is None else _parse_when("end", self.end)
        if (
            start is not None
            and end is not None
            and (start.tzinfo is None) == (end.tzinfo is None)
            and end < start
        ):
            raise _field_error("end", self.end, f"must not be before start={self.start!r}")
        return self

    @property
    def source(self) -> str:
        """A short description of the data source, for summaries."""
        if self.sample is not None:
            return f"sample: {self.sample}"
        if self.path is not None:
            return f"path: {self.path}"
        return "files: " + ", ".join(f"{s}={p}" for s, p in (self.files or {}).items())


class StrategyConfig(_Section):
    """Which strategy to run and its parameters."""

    name: str = Field(min_length=1)
    params: Annotated[dict[str, Any], BeforeValidator(_none_to_empty)] = Field(default_factory=dict)

    _cls: type[Strategy] | None = PrivateAttr(default=None)

    @property
    def strategy_class(self) -> type[Strategy]:
        """The resolved class (resolved on first access if the config was built by hand)."""
        if self._cls is None:
            self._cls = resolve_strategy_class(self.name)
        return self._cls


_COMMISSION_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # type: (required fields, optional fields)
    "none": ((), ()),
    "per_share": (("rate",), ("minimum", "maximum")),
    "percent": (("rate",), ("minimum",)),
    "fixed": (("amount",), ()),
}
_SLIPPAGE_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "none": ((), ()),
    "fixed": (("amount",), ()),
    "percent": (("rate",), ()),
}


def _check_cost_fields(
    model: BaseModel, kind: str, table: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
) -> None:
    required, optional = table[kind]
    for name in required:
        if getattr(model, name) is None:
            raise _field_error(name, None, f"required when type is {kind!r}")
    allowed = set(required) | set(optional)
    for name in sorted(model.model_fields_set - allowed - {"type"}):
        if getattr(model, name) is None:
            continue
        what = ", ".join(sorted(allowed)) or "no other keys"
        raise _field_error(name, getattr(model, name), f"does not apply to type {kind!r} ({what})")


def _type_shorthand(value: Any) -> Any:
    if value is None:
        return {"type": "none"}
    if isinstance(value, str):
        return {"type": value}
    return value


class CommissionConfig(_Section):
    """``none``; ``per_share`` (rate, minimum, maximum); ``percent`` (rate, minimum); ``fixed``
    (amount per order)."""

    type: Literal["none", "per_share", "percent", "fixed"] = "none"
    rate: Number | None = Field(None, ge=0)
    minimum: Number | None = Field(None, ge=0)
    maximum: Number | None = Field(None, ge=0)
    amount: Number | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _check(self) -> CommissionConfig:
        _check_cost_fields(self, self.type, _COMMISSION_FIELDS)
        if self.type == "percent" and self.rate is not None and self.rate >= 1:
            raise _field_error("rate", self.rate, "must be < 1 (a fraction of notional)")
        if self.maximum is not None and self.minimum is not None and self.maximum < self.minimum:
            raise _field_error("maximum", self.maximum, f"must be >= minimum={self.minimum}")
        return self


class SlippageConfig(_Section):
    """``none``; ``fixed`` (amount per share); ``percent`` (rate, a fraction of the price)."""

    type: Literal["none", "fixed", "percent"] = "none"
    amount: Number | None = Field(None, ge=0)
    rate: Number | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _check(self) -> SlippageConfig:
        _check_cost_fields(self, self.type, _SLIPPAGE_FIELDS)
        if self.type == "percent" and self.rate is not None and self.rate >= 1:
            raise _field_error("rate", self.rate, "must be < 1 (a fraction of the price)")
        return self


class CostsConfig(_Section):
    commission: Annotated[CommissionConfig, BeforeValidator(_type_shorthand)] = Field(
        default_factory=CommissionConfig
    )
    slippage: Annotated[SlippageConfig, BeforeValidator(_type_shorthand)] = Field(
        default_factory=SlippageConfig
    )


class OutputConfig(_Section):
    dir: Path | None = None
    report: bool = True


class TradeloopConfig(_Section):
    """A whole run configuration. Build it with :func:`load_config` or :func:`parse_config`."""

    execution: Annotated[ExecutionConfig, BeforeValidator(_none_to_empty)] = Field(
        default_factory=ExecutionConfig
    )
    data: DataConfig
    strategy: StrategyConfig
    costs: Annotated[CostsConfig, BeforeValidator(_none_to_empty)] = Field(
        default_factory=CostsConfig
    )
    output: Annotated[OutputConfig, BeforeValidator(_none_to_empty)] = Field(
        default_factory=OutputConfig
    )

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


def _model_at(loc: tuple[str, ...]) -> type[BaseModel] | None:
    """The model class validating the mapping at ``loc`` (for 'did you mean' suggestions)."""
    model: type[BaseModel] = TradeloopConfig
    for part in loc:
        info = model.model_fields.get(part)
        if info is None:
            return None
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return model


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _reason(err: Mapping[str, Any], loc: tuple[str, ...]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        if model is None:
            return "unknown key"
        known = sorted(model.model_fields)
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown key ({hint}allowed: {', '.join(known)})"
    if kind == "greater_than":
        return f"must be > {_num(ctx.get('gt'))}"
    if kind == "greater_than_equal":
        return f"must be >= {_num(ctx.get('ge'))}"
    if kind == "less_than":
        return f"must be < {_num(ctx.get('lt'))}"
    if kind == "less_than_equal":
        return f"must be <= {_num(ctx.get('le'))}"
    if kind in ("float_type", "float_parsing", "int_type", "int_parsing"):
        return "must be a number"
    if kind == "finite_number":
        return "must be a finite number"
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false"
    if kind == "string_type":
        return "must be a string (quote it in YAML)"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping"
    if kind == "list_type":
        return "must be a list"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind == "too_short":
        return "must not be empty"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    msg = str(err.get("msg", "invalid value"))
    return msg[:1].lower() + msg[1:]


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
        value = None if err["type"] == "missing" else err.get("input")
        items.append((".".join(loc) or "config", value, _reason(err, loc)))
    return ConfigValidationError(items)


# ------------------------------------------------------------------------------------- strategies


def _builtin_names() -> str:
    from tradeloop.strategies import REGISTRY

    return ", ".join(sorted(REGISTRY))


def _load_file_module(file: Path, name: str) -> ModuleType:
    digest = hashlib.sha1(str(file).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", file.stem)
    mod_name = f"tradeloop_user_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, file)
    if spec is None or spec.loader is None:
        raise ConfigError("strategy.name", name, f"cannot import {file} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # before exec: get_type_hints() looks the module up there
    folder = str(file.parent)
    sys.path.insert(0, folder)  # let the file import its sibling modules
    try:
        spec.loader.exec_module(module)
    except ConfigError:
        sys.modules.pop(mod_name, None)
        raise
    except BaseException as exc:
        sys.modules.pop(mod_name, None)
        if not isinstance(exc, Exception):
            raise
        raise ConfigError(
            "strategy.name", name, f"importing {file} failed: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
    return module


def resolve_strategy_class(name: str, base_dir: str | Path | None = None) -> type[Strategy]:
    """The strategy class for a config ``strategy.name``.

    ``name`` is a built-in (``sma_cross``, ...), ``package.module:ClassName``, or
    ``path/to/file.py:ClassName`` (relative to ``base_dir``, default the working directory).
    """
    from tradeloop.strategies import REGISTRY

    if name in REGISTRY:
        return REGISTRY[name]
    if ":" not in name:
        raise ConfigError(
            "strategy.name",
            name,
            f"unknown strategy (built-in: {_builtin_names()}; or give "
            "'package.module:ClassName' or 'path/to/file.py:ClassName')",
        )
    target, _, cls_name = name.rpartition(":")
    target, cls_name = target.strip(), cls_name.strip()
    if not target or not cls_name.isidentifier():
        raise ConfigError(
            "strategy.name", name, "expected 'package.module:ClassName' or 'file.py:ClassName'"
        )
    if target.endswith(".py") or "/" in target or "\\" in target:
        file = Path(target).expanduser()
        if not file.is_absolute():
            file = Path(base_dir if base_dir is not None else Path.cwd()) / file
        file = file.resolve()
        if not file.is_file():
            raise ConfigError("strategy.name", name, f"strategy file not found: {file}")
        module = _load_file_module(file, name)
        where = str(file)
    else:
        try:
            module = importlib.import_module(target)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(
                "strategy.name",
                name,
                f"cannot import module {target!r}: {type(exc).__name__}: {exc}",
            ) from exc
        where = f"module {target!r}"
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise ConfigError("strategy.name", name, f"{where} has no attribute {cls_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(
            "strategy.name", name, f"{cls_name!r} in {where} is not a tradeloop Strategy subclass"
        )
    return cls


# ------------------------------------------------------------------------------------ loading


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
    cfg.strategy._cls = resolve_strategy_class(cfg.strategy.name, base)
    build_strategy(cfg)  # unknown / mistyped params raise ConfigError(strategy.params.<name>)
    return cfg


# ------------------------------------------------------------------------------------- builders


def _commission_section(cfg: TradeloopConfig | CommissionConfig) -> CommissionConfig:
    return cfg.costs.commission if isinstance(cfg, TradeloopConfig) else cfg


def _slippage_section(cfg: TradeloopConfig | SlippageConfig) -> SlippageConfig:
    return cfg.costs.slippage if isinstance(cfg, TradeloopConfig) else cfg


def _prefixed(exc: ConfigError, prefix: str) -> ConfigError:
    return ConfigError(f"{prefix}.{exc.field}", exc.value, exc.reason)


def build_commission(cfg: TradeloopConfig | CommissionConfig) -> CommissionModel:
    """The commission model of ``costs.commission``."""
    from tradeloop.execution.core.costs import (
        FixedCommission,
        NoCommission,
        PercentCommission,
        PerShareCommission,
    )

    c = _commission_section(cfg)
    try:
        if c.type == "per_share":
            assert c.rate is not None
            return PerShareCommission(c.rate, minimum=c.minimum or 0.0, maximum=c.maximum)
        if c.type == "percent":
            assert c.rate is not None
            return PercentCommission(c.rate, minimum=c.minimum or 0.0)
        if c.type == "fixed":
            assert c.amount is not None
            return FixedCommission(c.amount)
    except ConfigError as exc:
        raise _prefixed(exc, "costs") from None
    return NoCommission()


def build_slippage(cfg: TradeloopConfig | SlippageConfig) -> SlippageModel:
    """The slippage model of ``costs.slippage``."""
    from tradeloop.execution.core.costs import FixedSlippage, NoSlippage, PercentSlippage

    s = _slippage_section(cfg)
    try:
        if s.type == "fixed":
            assert s.amount is not None
            return FixedSlippage(s.amount)
        if s.type == "percent":
            assert s.rate is not None
            return PercentSlippage(s.rate)
    except ConfigError as exc:
        raise _prefixed(exc, "costs") from None
    return NoSlippage()


def build_strategy(cfg: TradeloopConfig | StrategyConfig) -> Strategy:
    """A fresh strategy instance: the resolved class called with ``strategy.params``."""
    section = cfg.strategy if isinstance(cfg, TradeloopConfig) else cfg
    cls = section.strategy_class
    params = {str(k): v for k, v in section.params.items()}
    try:
        return cls(**params)
    except ConfigError:
        raise
    except TypeError as exc:
        raise ConfigError("strategy.params", params, f"{cls.__name__}: {exc}") from exc


def build_feed(cfg: TradeloopConfig | DataConfig) -> BarFeed:
    """Load the bars described by ``data`` (this is where pandas gets imported)."""
    d = cfg.data if isinstance(cfg, TradeloopConfig) else cfg
    symbols = list(d.symbols) if d.symbols is not None else None
    if d.sample is not None:
        from tradeloop.data.sample import load_sample

        return load_sample(d.sample, symbols=symbols, start=d.start, end=d.end)

    from tradeloop.data.loaders import load_bars

    if d.path is not None:
        if not d.path.is_file():
            raise ConfigError("data.path", str(d.path), "file not found")
        return load_bars(
            d.path, symbol=d.symbol, symbols=symbols, start=d.start, end=d.end, format=d.format
        )
    files = d.files or {}
    for sym, p in files.items():
        if not p.is_file():
            raise ConfigError(f"data.files.{sym}", str(p), "file not found")
    return load_bars(dict(files), symbols=symbols, start=d.start, end=d.end, format=d.format)


def build_engine_kwargs(cfg: TradeloopConfig) -> dict[str, Any]:
    """Keyword arguments for :class:`~tradeloop.execution.synchronous.SyncExecutionEngine`."""
    ex = cfg.execution
    return {
        "initial_cash": ex.initial_cash,
        "commission": build_commission(cfg),
        "slippage": build_slippage(cfg),
        "participation_rate": ex.participation_rate,
        "allow_short": ex.allow_short,
        "leverage": ex.leverage,
        "fractional": ex.fractional,
    }
