"""The sweep itself: :func:`sweep` and its :class:`SweepResult`."""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloop.errors import ConfigError
from tradeloop.sweep.grid import (
    Constraint,
    compile_constraint,
    expand_grid,
    normalize_grid,
    validate_params,
)
from tradeloop.sweep.runner import (
    ConfigTemplate,
    FactoryTemplate,
    FeedArrays,
    RunOutcome,
    RunSpec,
    Template,
    factory_takes_feed,
)

if TYPE_CHECKING:
    import pandas as pd

    from tradeloop.config import TradeloopConfig
    from tradeloop.data.feed import BarFeed
    from tradeloop.sweep.executors import Executor

__all__ = [
    "LOWER_IS_BETTER",
    "Objective",
    "Progress",
    "SweepInterrupted",
    "SweepResult",
    "sweep",
]

LOWER_IS_BETTER = frozenset(
    {
        "max_drawdown",
        "max_drawdown_duration",
        "annual_volatility",
        "num_rejected",
        "total_commission",
        "turnover",
    }
)
"""Metrics an objective minimises unless told otherwise (every other one is maximised)."""

Progress = Callable[[int, int, RunOutcome], None]
"""``progress(done, total, outcome)``: called in the calling process as each run finishes."""

ConfigLike = "TradeloopConfig | Mapping[str, Any] | str | Path"


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: :attr:`result` holds the runs that had finished (marked
    ``interrupted``). A ``KeyboardInterrupt``, so code that does not look for it stops as usual."""

    def __init__(self, result: Any) -> None:
        super().__init__("sweep interrupted")
        self.result = result


@dataclass(frozen=True)
class Objective:
    """What the sweep optimises: a metric name, or a callable ``metrics -> float``."""

    name: str
    maximize: bool
    func: Callable[[Mapping[str, float]], float] | None = None

    @classmethod
    def of(
        cls,
        objective: str | Callable[[Mapping[str, float]], float],
        maximize: bool | None = None,
        field: str = "objective",
    ) -> Objective:
        if callable(objective):
            name = getattr(objective, "__name__", "objective")
            return cls(name, True if maximize is None else maximize, objective)
        from tradeloop.results.metrics import METRIC_KEYS

        if objective not in METRIC_KEYS:
            raise ConfigError(
                field, objective, f"unknown metric (metrics: {', '.join(METRIC_KEYS)})"
            )
        return cls(objective, objective not in LOWER_IS_BETTER if maximize is None else maximize)

    def score(self, metrics: Mapping[str, float] | None) -> float:
        if metrics is None:
            return math.nan
        try:
            v = float(self.func(metrics) if self.func is not None else metrics[self.name])
        except Exception:
            return math.nan
        return v

    @property
    def direction(self) -> str:
        return "maximize" if self.maximize else "minimize"


# ------------------------------------------------------------------------------------ planning


@dataclass
class Plan:
    """What a sweep (or walk-forward) runs: the template, the bars, the parameter sets."""

    template: Template
    data: FeedArrays | None
    points: list[dict[str, Any]]
    param_names: list[str]
    objective: Objective
    initial_cash: float | None = None
    strategy_name: str = ""


def _load_config(config: Any) -> TradeloopConfig:
    from tradeloop.config import TradeloopConfig, load_config, parse_config

    if isinstance(config, TradeloopConfig):
        return config
    if isinstance(config, str | Path):
        return load_config(config)
    if isinstance(config, Mapping):
        return parse_config(config)
    raise ConfigError(
        "config_or_engine_factory",
        type(config).__name__,
        "must be a config (a TradeloopConfig, a mapping or a YAML path) or a callable "
        "factory(params) -> engine",
    )


def plan(
    config_or_engine_factory: Any,
    grid: Mapping[str, Any],
    *,
    objective: str | Callable[[Mapping[str, float]], float] = "sharpe",
    maximize: bool | None = None,
    constraint: str | Constraint | None = None,
    n_samples: int | None = None,
    seed: int | None = 0,
    data: BarFeed | None = None,
    prefix: str = "",
    need_data: bool = False,
) -> Plan:
    """Validate everything and list the parameter sets (no run yet)."""
    grid_field = f"{prefix}grid"
    norm = normalize_grid(grid, grid_field)
    obj = Objective.of(objective, maximize, f"{prefix}objective")
    base: dict[str, Any] = {}
    names: set[str] = set(norm)
    initial_cash: float | None = None
    if callable(config_or_engine_factory) and not isinstance(config_or_engine_factory, type):
        factory = config_or_engine_factory
        takes_feed = factory_takes_feed(factory)
        if data is not None and not takes_feed:
            raise ConfigError(
                "data",
                type(data).__name__,
                "given, but the factory takes only params: define factory(params, feed)",
            )
        if need_data and data is None:
            raise ConfigError(
                "data", None, "walk-forward with a factory needs the bars: pass data=feed"
            )
        template: Template = FactoryTemplate(factory, pass_feed=data is not None)
        arrays = FeedArrays.from_feed(data) if data is not None else None
        strategy_name = getattr(factory, "__name__", "factory")
    else:
        from tradeloop.config import build_engine_kwargs, build_feed
        from tradeloop.config.data import require_in_memory

        cfg = _load_config(config_or_engine_factory)
        if data is None:
            require_in_memory(cfg, "a sweep (its runs share the bars as arrays)")
        cls = cfg.strategy.strategy_class
        norm = validate_params(norm, cls, grid_field)
        base = {str(k): v for k, v in cfg.strategy.params.items()}
        names |= set(cls._param_defaults)
        kwargs = build_engine_kwargs(cfg)
        initial_cash = float(kwargs["initial_cash"])
        template = ConfigTemplate(cfg.strategy.name, str(cfg.base_dir), base, kwargs)
        arrays = FeedArrays.from_feed(data if data is not None else build_feed(cfg))
        strategy_name = cls.__name__
        base = {**cls._param_defaults, **base}
    if isinstance(constraint, str):
        constraint = compile_constraint(constraint, f"{prefix}constraint", sorted(names))
    elif constraint is not None and not callable(constraint):
        raise ConfigError(f"{prefix}constraint", constraint, "must be an expression or a callable")
    if n_samples is not None and (isinstance(n_samples, bool) or n_samples < 1):
        raise ConfigError(f"{prefix}n_samples", n_samples, "must be >= 1")
    points = expand_grid(norm, constraint, n_samples, seed, base, f"{prefix}constraint")
    if not points:
        raise ConfigError(
            f"{prefix}constraint",
            getattr(constraint, "text", constraint),
            "no parameter set of the grid satisfies it",
        )
    return Plan(template, arrays, points, list(norm), obj, initial_cash, strategy_name)


def make_executor(
    executor: str,
    data: FeedArrays | None,
    template: Template,
    max_workers: int | None = None,
    address: str | None = None,
    prefix: str = "",
) -> Executor:
    """The executor named ``executor`` (``local``, ``ray`` or ``serial``)."""
    if address is not None and executor != "ray":
        raise ConfigError(f"{prefix}address", address, "only applies with executor: ray")
    if max_workers is not None and (isinstance(max_workers, bool) or max_workers < 1):
        raise ConfigError(f"{prefix}max_workers", max_workers, "must be >= 1")
    if executor == "serial":
        from tradeloop.sweep.executors import SerialExecutor

        return SerialExecutor(data)
    if executor not in ("local", "ray"):
        raise ConfigError(f"{prefix}executor", executor, "must be one of local, ray, serial")
    try:
        pickle.dumps(template)
    except Exception as exc:
        raise ConfigError(
            "config_or_engine_factory",
            getattr(template, "factory", template),
            f"cannot be sent to worker processes ({type(exc).__name__}: {exc}); define the "
            "factory at the top level of an importable module, or use executor='serial'",
        ) from exc
    if executor == "ray":
        from tradeloop.sweep.ray_executor import RayExecutor

        return RayExecutor(data, max_workers=max_workers, address=address)
    from tradeloop.sweep.executors import LocalExecutor

    return LocalExecutor(data, max_workers=max_workers)


def collect(
    ex: Executor,
    template: Template,
    specs: Sequence[RunSpec],
    progress: Progress | None,
    done_before: int = 0,
    total: int | None = None,
) -> tuple[list[RunOutcome], BaseException | None]:
    """Run ``specs`` on ``ex``; return the outcomes and the KeyboardInterrupt that stopped it
    (``None`` if all finished)."""
    outcomes: list[RunOutcome] = []
    total = len(specs) if total is None else total
    try:
        for out in ex.run(template, specs):
            outcomes.append(out)
            if progress is not None:
                progress(done_before + len(outcomes), total, out)
    except KeyboardInterrupt as stop:
        return outcomes, stop
    return outcomes, None


# ------------------------------------------------------------------------------------ results


@dataclass
class SweepResult:
    """A sweep's results.

    :attr:`table`: one row per run, sorted by run index (the same table whatever the executor):
    ``run``, the parameters, ``objective`` (the objective's value), ``rank`` (1 = best), every
    metric of :func:`~tradeloop.results.compute_metrics`, ``error`` (empty for a run that worked)
    and ``seconds``. A run that failed has NaN metrics and its error's type and message.
    """

    table: pd.DataFrame
    params: list[str]
    objective: str
    maximize: bool
    total: int
    interrupted: bool = False
    strategy: str = ""
    executor: str = ""
    workers: int = 1
    elapsed: float = 0.0
    tracebacks: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def best(self) -> pd.Series | None:
        """The best run's row, or ``None`` if no run gave a finite objective."""
        ranked = self.table[self.table["rank"].notna()]
        if ranked.empty:
            return None
        return ranked.sort_values(["rank", "run"]).iloc[0]

    @property
    def best_params(self) -> dict[str, Any] | None:
        """The best run's parameters (``None`` if every run failed)."""
        row = self.best
        if row is None:
            return None
        return {p: _plain(row[p]) for p in self.params}

    @property
    def failures(self) -> pd.DataFrame:
        """The runs that failed: their parameters and errors."""
        return self.table[self.table["error"] != ""][["run", *self.params, "error"]]

    @property
    def n_failed(self) -> int:
        return int((self.table["error"] != "").sum())

    def top(self, n: int = 5) -> pd.DataFrame:
        """The ``n`` best runs, best first."""
        ranked = self.table[self.table["rank"].notna()]
        return ranked.sort_values(["rank", "run"]).head(n)

    def to_csv(self, path: str | Path) -> Path:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.table.to_csv(out, index=False)
        return out

    def to_parquet(self, path: str | Path) -> Path:
        """Write the table as Parquet (needs pyarrow: ``pip install 'tradeloop[parquet]'``)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.table.to_parquet(out, index=False)
        return out

    def write_html(
        self, path: str | Path, title: str | None = None, heatmaps: Sequence[str] | None = None
    ) -> Path:
        """The sweep page: heatmaps of the objective over pairs of parameters, the top runs,
        the failures (self-contained HTML, like the backtest report)."""
        from tradeloop.sweep.page import render_sweep_html

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_sweep_html(self, title, heatmaps), encoding="utf-8")
        return out

    def write(
        self,
        out_dir: str | Path,
        title: str | None = None,
        heatmaps: Sequence[str] | None = None,
        stem: str = "sweep",
    ) -> dict[str, Path]:
        """Write ``sweep.csv``, ``sweep.parquet`` (when pyarrow is installed) and
        ``sweep.html`` into ``out_dir``; return their paths by kind."""
        d = Path(out_dir)
        paths = {"csv": self.to_csv(d / f"{stem}.csv")}
        if parquet_available():
            paths["parquet"] = self.to_parquet(d / f"{stem}.parquet")
        paths["html"] = self.write_html(d / f"{stem}.html", title, heatmaps)
        return paths

    def __repr__(self) -> str:
        best = self.best_params
        return (
            f"<SweepResult {self.strategy} {len(self.table)}/{self.total} runs, "
            f"{self.n_failed} failed, {self.objective} ({self.objective_direction}), "
            f"best {best}{' INTERRUPTED' if self.interrupted else ''}>"
        )

    @property
    def objective_direction(self) -> str:
        return "maximize" if self.maximize else "minimize"


def parquet_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("pyarrow") is not None
    except (ImportError, ValueError):
        return False


def _plain(v: Any) -> Any:
    """numpy scalars as Python ones (``np.int64(5)`` -> ``5``)."""
    item = getattr(v, "item", None)
    return item() if callable(item) and not isinstance(v, str | bytes) else v


def build_table(
    outcomes: Iterable[RunOutcome],
    param_names: Sequence[str],
    objective: Objective,
) -> pd.DataFrame:
    """The results table, sorted by run index, objective and rank filled in."""
    import numpy as np
    import pandas as pd

    from tradeloop.results.metrics import METRIC_KEYS

    rows: list[dict[str, Any]] = []
    for out in sorted(outcomes, key=lambda o: o.index):
        row: dict[str, Any] = {"run": out.index}
        row.update({p: out.params.get(p) for p in param_names})
        row["objective"] = objective.score(out.metrics)
        row["rank"] = math.nan
        metrics = out.metrics or {}
        row.update({k: float(metrics.get(k, math.nan)) for k in METRIC_KEYS})
        row["error"] = out.error or ""
        row["seconds"] = round(out.seconds, 6)
        rows.append(row)
    columns = ["run", *param_names, "objective", "rank", *METRIC_KEYS, "error", "seconds"]
    table = pd.DataFrame(rows, columns=columns)
    score = table["objective"].astype("float64")
    ok = np.isfinite(score.to_numpy())
    if ok.any():
        key = -score if objective.maximize else score
        ranks = key[ok].rank(method="first")  # ties: the lower run index first (rows are sorted)
        table.loc[ok, "rank"] = ranks
    table["run"] = table["run"].astype("int64")
    table["rank"] = table["rank"].astype("Int64")
    return table.reset_index(drop=True)


# ---------------------------------------------------------------------------------- the sweep


def sweep(
    config_or_engine_factory: Any,
    grid: Mapping[str, Any],
    *,
    objective: str | Callable[[Mapping[str, float]], float] = "sharpe",
    maximize: bool | None = None,
    constraint: str | Constraint | None = None,
    n_samples: int | None = None,
    seed: int | None = 0,
    executor: str = "local",
    max_workers: int | None = None,
    address: str | None = None,
    data: BarFeed | None = None,
    out: str | Path | None = None,
    progress: Progress | None = None,
    title: str | None = None,
    field_prefix: str = "",
) -> SweepResult:
    """Run a strategy once per parameter set of ``grid`` and tabulate every metric.

    ``config_or_engine_factory``: a config (a YAML path, a mapping or a
    :class:`~tradeloop.config.TradeloopConfig`; the grid's parameters override its
    ``strategy.params``), or a factory ``factory(params) -> engine`` (``factory(params, feed)``
    when ``data=`` is given: the bars are then shared with the workers once). For the ``local``
    and ``ray`` executors the factory must be picklable: a function at the top level of an
    importable module (not a lambda, not defined in ``__main__`` of an interactive session).

    ``grid``: ``{"fast": range(5, 30, 5), "slow": [20, 50, 100], ...}`` (see
    :mod:`tradeloop.sweep.grid`); ``n_samples``: a random search of that many parameter sets,
    drawn with ``seed``. ``constraint``: ``"fast < slow"`` or a callable ``params -> bool``.
    ``objective``: a metric name (or a callable ``metrics -> float``), maximised unless it is a
    drawdown, volatility or cost metric, or ``maximize`` says otherwise.

    ``executor``: ``"local"`` (a process per core, ``max_workers`` of them), ``"ray"``
    (``address`` of a cluster, or a local Ray), or ``"serial"`` (this process).

    A run that raises is reported in the table with its error; the sweep goes on. Ctrl-C raises
    :class:`SweepInterrupted` whose ``result`` holds what finished. ``out``: a folder to write
    ``sweep.csv``, ``sweep.parquet`` and ``sweep.html`` to. ``field_prefix``: put in front of
    the field of every :class:`~tradeloop.errors.ConfigError` (the CLI passes ``"sweep."``).
    """
    import time

    p = plan(
        config_or_engine_factory,
        grid,
        objective=objective,
        maximize=maximize,
        constraint=constraint,
        n_samples=n_samples,
        seed=seed,
        data=data,
        prefix=field_prefix,
    )
    ex = make_executor(executor, p.data, p.template, max_workers, address, field_prefix)
    specs = [RunSpec(i, params) for i, params in enumerate(p.points)]
    started = time.perf_counter()
    with ex:
        outcomes, stop = collect(ex, p.template, specs, progress)
    result = SweepResult(
        table=build_table(outcomes, p.param_names, p.objective),
        params=p.param_names,
        objective=p.objective.name,
        maximize=p.objective.maximize,
        total=len(specs),
        interrupted=stop is not None,
        strategy=p.strategy_name,
        executor=ex.name,
        workers=ex.workers,
        elapsed=time.perf_counter() - started,
        tracebacks={o.index: o.traceback for o in outcomes if o.traceback},
    )
    if out is not None:
        result.write(out, title)
    if stop is not None:
        raise SweepInterrupted(result) from None
    return result
