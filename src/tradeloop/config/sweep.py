"""The ``sweep:`` section: the parameter grid ``tradeloop sweep`` runs, and how.

::

    sweep:
      grid:                       # strategy parameters (they override strategy.params)
        fast: {start: 5, stop: 30, step: 5}   # 5, 10, ..., 25 (stop excluded, as range())
        slow: [40, 60, 80, 100]
        # allocation: {low: 0.5, high: 1.0}  # a distribution: random search only
      constraint: fast < slow     # optional: comparisons, and/or/not, arithmetic (no eval)
      n_samples: null             # a random search of this many parameter sets (seeded)
      seed: 0
      objective: sharpe           # any metric of results.compute_metrics
      maximize: null              # default: true, false for drawdown/volatility/cost metrics
      executor: local             # local (all cores) | ray | serial
      max_workers: null           # default: every core (local), the cluster's CPUs (ray)
      address: null               # ray only: a cluster ("ray://host:10001", "auto");
                                  # null starts a local Ray
      heatmap: null               # [x, y]: one heatmap of these two; default every pair
      top: 5                      # runs shown in the summary
      walk_forward:               # optional
        in_sample: 2y             # bars (252) or a duration: 30min, 12h, 90d, 13w, 6mo, 2y
        out_of_sample: 6mo
        mode: rolling             # rolling | anchored

The grid's names are checked against the strategy's declared parameters when the config is
loaded (:func:`check_sweep`), so ``sweep.grid.fsat`` fails before anything runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from tradeloop.config._base import _Section, field_error
from tradeloop.errors import ConfigError

if TYPE_CHECKING:
    from tradeloop.config.loader import TradeloopConfig

__all__ = ["SweepConfig", "WalkForwardConfig", "check_sweep"]


class WalkForwardConfig(_Section):
    """Walk-forward windows: in-sample and out-of-sample lengths, rolling or anchored."""

    in_sample: int | str
    out_of_sample: int | str
    mode: Literal["rolling", "anchored"] = "rolling"

    @model_validator(mode="after")
    def _check(self) -> WalkForwardConfig:
        from tradeloop.sweep.walkforward import parse_length

        kinds = []
        for name in ("in_sample", "out_of_sample"):
            value = getattr(self, name)
            try:
                kinds.append(isinstance(parse_length(value, name), int))
            except ConfigError as exc:
                raise field_error(name, value, exc.reason) from None
        if kinds[0] != kinds[1]:
            raise field_error(
                "out_of_sample",
                self.out_of_sample,
                f"give both lengths as bars or both as durations (in_sample is {self.in_sample!r})",
            )
        return self


class SweepConfig(_Section):
    """What ``tradeloop sweep`` runs: the grid, the objective, the executor, walk-forward."""

    grid: dict[str, Any] = Field(min_length=1)
    constraint: str | None = None
    n_samples: int | None = Field(None, ge=1)
    seed: int = 0
    objective: str = "sharpe"
    maximize: bool | None = None
    executor: Literal["local", "ray", "serial"] = "local"
    max_workers: int | None = Field(None, ge=1)
    address: str | None = None
    heatmap: list[str] | None = Field(None, min_length=2, max_length=2)
    top: int = Field(5, ge=1)
    walk_forward: WalkForwardConfig | None = None

    @model_validator(mode="after")
    def _check(self) -> SweepConfig:
        from tradeloop.results.metrics import METRIC_KEYS
        from tradeloop.sweep.grid import compile_constraint, grid_size, normalize_grid

        try:
            norm = normalize_grid(self.grid, "grid")
        except ConfigError as exc:
            raise field_error(exc.field, exc.value, exc.reason) from None
        if grid_size(norm) is None and self.n_samples is None:
            raise field_error(
                "n_samples", None, "required with a low/high distribution in the grid"
            )
        if self.objective not in METRIC_KEYS:
            raise field_error(
                "objective", self.objective, f"unknown metric (metrics: {', '.join(METRIC_KEYS)})"
            )
        if self.address is not None and self.executor != "ray":
            raise field_error(
                "address", self.address, f"only applies with executor: ray (not {self.executor})"
            )
        if self.constraint is not None:
            try:
                compile_constraint(self.constraint, "constraint")
            except ConfigError as exc:
                raise field_error(exc.field, exc.value, exc.reason) from None
        if self.heatmap is not None:
            for name in self.heatmap:
                if name not in self.grid:
                    raise field_error(
                        "heatmap", self.heatmap, f"{name!r} is not a parameter of the grid"
                    )
            if self.heatmap[0] == self.heatmap[1]:
                raise field_error("heatmap", self.heatmap, "name two different parameters")
        return self


def check_sweep(cfg: TradeloopConfig) -> None:
    """Check ``sweep.grid`` and ``sweep.constraint`` against the strategy's declared parameters
    (raises :class:`ConfigError` naming ``sweep.grid.<name>`` or ``sweep.constraint``)."""
    s = cfg.sweep
    if s is None:
        return
    from tradeloop.sweep.grid import compile_constraint, normalize_grid, validate_params

    cls = cfg.strategy.strategy_class
    validate_params(normalize_grid(s.grid, "sweep.grid"), cls, "sweep.grid")
    if s.constraint is not None:
        names = set(s.grid) | set(cls._param_defaults)
        compile_constraint(s.constraint, "sweep.constraint", sorted(names))
