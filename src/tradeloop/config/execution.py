"""The ``execution:`` section: which engine, and the simulated account."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from tradeloop.config._base import Number, _Section

__all__ = ["MODE_ALIASES", "ExecutionConfig"]

MODE_ALIASES: dict[str, Literal["sync", "async"]] = {
    "sync": "sync",
    "backtest": "sync",
    "async": "async",
    "live": "async",
}


class ExecutionConfig(_Section):
    """Which engine runs, and the simulated account (the backtest's, or the simulated broker's).

    ``cancel_on_stop`` (asynchronous engine): cancel the orders still open when a run stops.
    ``journal`` (asynchronous engine): the SQLite order journal a live run writes and a restart
    resumes from; by default ``journal.sqlite`` in the run's output folder for a real broker.
    """

    mode: Literal["sync", "async"] = "sync"
    initial_cash: Number = Field(100_000.0, gt=0)
    participation_rate: Number | None = Field(None, gt=0, le=1)
    allow_short: bool = True
    leverage: Number = Field(1.0, ge=1)
    fractional: bool = False
    cancel_on_stop: bool = False
    journal: Path | None = None

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
