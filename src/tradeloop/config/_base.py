"""Shared pieces of the config sections: the error type, field errors, number parsing."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from tradeloop.errors import ConfigError

__all__ = [
    "ConfigValidationError",
    "Number",
    "error_reason",
    "field_error",
    "none_to_empty",
    "unknown_key_reason",
]

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


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def unknown_key_reason(key: str, allowed: Iterable[str]) -> str:
    """``unknown key (did you mean 'speed'? allowed: ...)``."""
    known = sorted(allowed)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key ({hint}allowed: {', '.join(known)})"


def error_reason(err: Mapping[str, Any], allowed: Iterable[str] | None = None) -> str:
    """What one pydantic error means, in tradeloop's words. ``allowed``: the keys of the model
    an unknown key was found in (for a 'did you mean' hint)."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        loc = err.get("loc") or ("",)
        return unknown_key_reason(str(loc[-1]), allowed) if allowed is not None else "unknown key"
    bounds = {
        "greater_than": ("must be >", "gt"),
        "greater_than_equal": ("must be >=", "ge"),
        "less_than": ("must be <", "lt"),
        "less_than_equal": ("must be <=", "le"),
    }
    if kind in bounds:
        text, key = bounds[kind]
        return f"{text} {_num(ctx.get(key))}"
    simple = {
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "int_type": "must be a number",
        "int_parsing": "must be a number",
        "int_from_float": "must be a whole number",
        "finite_number": "must be a finite number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "string_type": "must be a string (quote it in YAML)",
        "string_pattern_mismatch": "must be a name of letters, digits and _",
        "dict_type": "must be a mapping",
        "model_type": "must be a mapping",
        "model_attributes_type": "must be a mapping",
        "list_type": "must be a list",
        "too_short": "must not be empty",
    }
    if kind in simple:
        return simple[kind]
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    msg = str(err.get("msg", "invalid value"))
    return msg[:1].lower() + msg[1:]
