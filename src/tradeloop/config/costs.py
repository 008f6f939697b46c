"""The ``costs:`` section: commission and slippage models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from tradeloop.config._base import Number, _Section, field_error
from tradeloop.errors import ConfigError

if TYPE_CHECKING:
    from tradeloop.config.loader import TradeloopConfig
    from tradeloop.execution.sync_protocols import CommissionModel, SlippageModel

__all__ = [
    "CommissionConfig",
    "CostsConfig",
    "SlippageConfig",
    "build_commission",
    "build_slippage",
]

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
            raise field_error(name, None, f"required when type is {kind!r}")
    allowed = set(required) | set(optional)
    for name in sorted(model.model_fields_set - allowed - {"type"}):
        if getattr(model, name) is None:
            continue
        what = ", ".join(sorted(allowed)) or "no other keys"
        raise field_error(name, getattr(model, name), f"does not apply to type {kind!r} ({what})")


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
            raise field_error("rate", self.rate, "must be < 1 (a fraction of notional)")
        if self.maximum is not None and self.minimum is not None and self.maximum < self.minimum:
            raise field_error("maximum", self.maximum, f"must be >= minimum={self.minimum}")
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
            raise field_error("rate", self.rate, "must be < 1 (a fraction of the price)")
        return self


class CostsConfig(_Section):
    commission: Annotated[CommissionConfig, BeforeValidator(_type_shorthand)] = Field(
        default_factory=CommissionConfig
    )
    slippage: Annotated[SlippageConfig, BeforeValidator(_type_shorthand)] = Field(
        default_factory=SlippageConfig
    )


def _commission_section(cfg: TradeloopConfig | CommissionConfig) -> CommissionConfig:
    return cfg if isinstance(cfg, CommissionConfig) else cfg.costs.commission


def _slippage_section(cfg: TradeloopConfig | SlippageConfig) -> SlippageConfig:
    return cfg if isinstance(cfg, SlippageConfig) else cfg.costs.slippage


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
