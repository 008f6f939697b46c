"""The ``risk:`` section: pre-trade risk limits (every key optional; none set = no risk checks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field

from tradeloop.config._base import Number, _Section
from tradeloop.errors import ConfigError

if TYPE_CHECKING:
    from tradeloop.config.loader import TradeloopConfig
    from tradeloop.execution.core.risk import RiskLimits

__all__ = ["RiskConfig", "build_risk"]


def _whole_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer")
    return value


Count = Annotated[int, BeforeValidator(_whole_number)]


class RiskConfig(_Section):
    """Pre-trade limits, checked before every order (see :mod:`tradeloop.execution.core.risk`).

    ``max_order_notional`` (currency: qty x the order's limit/stop price, else the last price),
    ``max_position`` (absolute shares per symbol, counting open orders on the same side),
    ``max_open_orders`` (account-wide, the new order included), ``max_orders_per_minute``
    (rolling 60 s of engine time), ``daily_loss_limit`` (currency below the UTC day's start
    equity; past it only orders that reduce a position pass until the next day).
    """

    max_order_notional: Number | None = Field(None, gt=0)
    max_position: Number | None = Field(None, gt=0)
    max_open_orders: Count | None = Field(None, ge=1)
    max_orders_per_minute: Count | None = Field(None, ge=1)
    daily_loss_limit: Number | None = Field(None, gt=0)

    @property
    def any_set(self) -> bool:
        """Whether at least one limit is set."""
        return any(getattr(self, name) is not None for name in type(self).model_fields)

    def describe(self) -> str:
        """The limits that are set, for a human (``"none"`` when there are none)."""
        parts = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            money = name in ("max_order_notional", "daily_loss_limit")
            parts.append(f"{name} {value:,.2f}" if money else f"{name} {value:,g}")
        return ", ".join(parts) or "none"


def _risk_section(cfg: TradeloopConfig | RiskConfig) -> RiskConfig:
    return cfg if isinstance(cfg, RiskConfig) else cfg.risk


def build_risk(cfg: TradeloopConfig | RiskConfig) -> RiskLimits | None:
    """The :class:`~tradeloop.execution.core.risk.RiskLimits` of ``risk``, or ``None`` if no
    limit is set."""
    from tradeloop.execution.core.risk import RiskLimits

    r = _risk_section(cfg)
    if not r.any_set:
        return None
    try:
        return RiskLimits(
            max_order_notional=r.max_order_notional,
            max_position=r.max_position,
            max_open_orders=r.max_open_orders,
            max_orders_per_minute=r.max_orders_per_minute,
            daily_loss_limit=r.daily_loss_limit,
        )
    except ConfigError as exc:
        raise ConfigError(f"risk.{exc.field}", exc.value, exc.reason) from None
