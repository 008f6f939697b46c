"""Shared pieces of the config sections: the error type, field errors, number parsing."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from tradeloop.errors import ConfigError

__all__ = ["ConfigValidationError", "Number", "field_error", "none_to_empty"]

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


def field_error(field: str, value: Any, reason: str) -> PydanticCustomError:
    """A validation error about ``field`` (relative to the model being validated)."""
    return PydanticCustomError(
        _FIELD_ERROR, "{reason}", {"field": field, "value": value, "reason": reason}
    )


def _reject_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


Number = Annotated[float, BeforeValidator(_reject_bool), Field(allow_inf_nan=False)]


def none_to_empty(value: Any) -> Any:
    return {} if value is None else value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --------------------------------------------------------------------------------------- sections
