"""The ``strategy:`` section: resolving a strategy class by name and building it."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field, PrivateAttr

from tradeloop.config._base import _Section, none_to_empty
from tradeloop.errors import ConfigError
from tradeloop.strategy import Strategy

if TYPE_CHECKING:
    from tradeloop.config.loader import TradeloopConfig

__all__ = ["StrategyConfig", "build_strategy", "resolve_strategy_class"]


class StrategyConfig(_Section):
    """Which strategy to run and its parameters."""

    name: str = Field(min_length=1)
    params: Annotated[dict[str, Any], BeforeValidator(none_to_empty)] = Field(default_factory=dict)

    _cls: type[Strategy] | None = PrivateAttr(default=None)

    @property
    def strategy_class(self) -> type[Strategy]:
        """The resolved class (resolved on first access if the config was built by hand)."""
        if self._cls is None:
            self._cls = resolve_strategy_class(self.name)
        return self._cls


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


def build_strategy(cfg: TradeloopConfig | StrategyConfig) -> Strategy:
    """A fresh strategy instance: the resolved class called with ``strategy.params``."""
    section = cfg if isinstance(cfg, StrategyConfig) else cfg.strategy
    cls = section.strategy_class
    params = {str(k): v for k, v in section.params.items()}
    try:
        return cls(**params)
    except ConfigError:
        raise
    except TypeError as exc:
        raise ConfigError("strategy.params", params, f"{cls.__name__}: {exc}") from exc
