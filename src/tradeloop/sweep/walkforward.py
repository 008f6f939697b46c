"""Walk-forward analysis: optimise in-sample, trade the winner out-of-sample, repeat.

The bars' timeline (their distinct timestamps) is cut into windows. Each window has an in-sample
part, where the grid is swept and the best parameter set chosen by the objective, followed
directly by an out-of-sample part, where that parameter set runs on bars it was not chosen on.
The out-of-sample parts follow each other without gaps or overlap:

* ``rolling``: the in-sample part has a fixed length and slides forward by the out-of-sample
  length;
* ``anchored``: the in-sample part always starts at the first bar and grows.

Lengths are a number of bars (distinct timestamps) or a duration: ``"2y"``, ``"6mo"``, ``"13w"``,
``"90d"``, ``"12h"``, ``"30min"`` (calendar arithmetic for months and years). Both lengths must
be of the same kind. The last out-of-sample part may be shorter (it ends with the data).

Each out-of-sample run is a fresh backtest with the configured cash, starting flat: indicators
warm up inside the window, as they would for a strategy started live on that day. The stitched
out-of-sample equity chains the windows: each starts from the capital the previous one ended
with (its returns are kept), so the curve is what trading the walk-forward choice would have
given. Its metrics, next to the in-sample ones, are the honest number to look at.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from tradeloop.errors import ConfigError
from tradeloop.sweep.core import (
    Objective,
    SweepInterrupted,
    SweepResult,
    build_table,
    collect,
    make_executor,
    plan,
)
from tradeloop.sweep.grid import Constraint
from tradeloop.sweep.runner import RunOutcome, RunSpec

if TYPE_CHECKING:
    import pandas as pd

    from tradeloop.data.feed import BarFeed
    from tradeloop.sweep.core import Progress

__all__ = [
    "SUMMARY_METRICS",
    "WalkForwardResult",
    "Window",
    "make_windows",
    "parse_length",
    "walk_forward",
]

Mode = Literal["rolling", "anchored"]

SUMMARY_METRICS = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "annual_volatility",
    "max_drawdown",
    "calmar",
    "num_trades",
)
"""The metrics the in-sample vs out-of-sample summary shows (after the objective)."""

_EQUITY_METRICS = frozenset(
    {
        "total_return",
        "cagr",
        "annual_volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "max_drawdown_duration",
        "calmar",
        "final_equity",
    }
)
_SUMMED = frozenset({"num_trades", "num_orders", "num_fills", "num_rejected", "total_commission"})

_UNITS = {
    "min": ("minutes", 1),
    "h": ("hours", 1),
    "d": ("days", 1),
    "w": ("weeks", 1),
    "mo": ("months", 1),
    "y": ("years", 1),
}
_LENGTH = re.compile(r"^\s*(\d+)\s*(min|h|d|w|mo|y)\s*$", re.I)


def parse_length(value: Any, field: str) -> int | tuple[int, str]:
    """A window length: a whole number of bars (``252``), or ``(n, unit)`` for ``"2y"`` etc."""
    if isinstance(value, bool):
        raise ConfigError(field, value, "must be a number of bars or a duration such as '2y'")
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(field, value, "must be >= 1 bar")
        return value
    if isinstance(value, str):
        if value.strip().isdigit():
            return parse_length(int(value), field)
        m = _LENGTH.match(value)
        if m and int(m.group(1)) > 0:
            return int(m.group(1)), m.group(2).lower()
    raise ConfigError(
        field,
        value,
        "must be a number of bars or a duration: <n>min, <n>h, <n>d, <n>w, <n>mo or <n>y "
        "(e.g. 2y, 6mo, 90d)",
    )


@dataclass(frozen=True)
class Window:
    """One walk-forward window, as positions in the timeline (ends excluded)."""

    index: int
    is_start: int
    is_end: int
    oos_start: int
    oos_end: int

    @property
    def is_bars(self) -> int:
        return self.is_end - self.is_start

    @property
    def oos_bars(self) -> int:
        return self.oos_end - self.oos_start


def _add(t: Any, length: tuple[int, str], times: int = 1) -> Any:
    import pandas as pd

    n, unit = length
    kwargs: dict[str, Any] = {_UNITS[unit][0]: n * times}
    return t + pd.DateOffset(**kwargs)


def make_windows(
    timeline: Sequence[int] | npt.NDArray[np.int64],
    in_sample: int | str | tuple[int, str],
    out_of_sample: int | str | tuple[int, str],
    mode: Mode = "rolling",
    prefix: str = "",
) -> list[Window]:
    """The windows over ``timeline`` (sorted distinct timestamps, int ns)."""
    is_len = in_sample if isinstance(in_sample, tuple) else parse_length(in_sample, "in_sample")
    oos_len = (
        out_of_sample
        if isinstance(out_of_sample, tuple)
        else parse_length(out_of_sample, "out_of_sample")
    )
    if mode not in ("rolling", "anchored"):
        raise ConfigError(f"{prefix}mode", mode, "must be rolling or anchored")
    if isinstance(is_len, int) != isinstance(oos_len, int):
        raise ConfigError(
            f"{prefix}out_of_sample",
            out_of_sample,
            f"give both lengths as bars or both as durations (in_sample is {in_sample!r})",
        )
    t = np.asarray(timeline, dtype=np.int64)
    n = int(t.size)
    windows: list[Window] = []
    if isinstance(is_len, int) and isinstance(oos_len, int):
        k = 0
        while True:
            start = 0 if mode == "anchored" else k * oos_len
            is_end = k * oos_len + is_len
            if is_end >= n:
                break
            windows.append(Window(k, start, is_end, is_end, min(is_end + oos_len, n)))
            k += 1
        return windows
    assert isinstance(is_len, tuple) and isinstance(oos_len, tuple)
    if n == 0:
        return windows
    import pandas as pd

    t0 = pd.Timestamp(int(t[0]), unit="ns", tz="UTC")
    first_is_end = _add(t0, is_len)

    def pos(ts: Any) -> int:
        return int(np.searchsorted(t, ts.value, side="left"))

    k = 0
    while True:
        is_end_ts = _add(first_is_end, oos_len, k)
        is_end = pos(is_end_ts)
        if is_end >= n:
            break
        start = 0 if mode == "anchored" else pos(_add(t0, oos_len, k))
        # the next window's in-sample end, computed the same way: out-of-sample parts meet
        # exactly even where calendar months differ in length
        oos_end = pos(_add(first_is_end, oos_len, k + 1))
        if is_end > start and oos_end > is_end:
            windows.append(Window(len(windows), start, is_end, is_end, oos_end))
        k += 1
    return windows


# ------------------------------------------------------------------------------------ results


@dataclass
class WalkForwardResult:
    """A walk-forward analysis.

    * :attr:`windows`: one row per window: its in-sample and out-of-sample periods (UTC) and
      bars, the parameters chosen in-sample, and ``is_<metric>`` / ``oos_<metric>`` side by
      side (``oos_error`` if the out-of-sample run failed).
    * :attr:`summary`: metrics (rows) of the in-sample runs that were chosen (mean over windows),
      of the out-of-sample runs (mean over windows), and of the stitched out-of-sample equity
      curve: the honest figure.
    * :attr:`equity`: the stitched out-of-sample equity curve (a Series, UTC index);
      :attr:`equity_window` the window each point belongs to.
    * :attr:`sweeps`: the in-sample sweep of each window (a :class:`SweepResult`).
    """

    windows: pd.DataFrame
    summary: pd.DataFrame
    equity: pd.Series
    equity_window: pd.Series
    sweeps: list[SweepResult]
    params: list[str]
    objective: str
    maximize: bool
    mode: str
    in_sample: str
    out_of_sample: str
    interrupted: bool = False
    strategy: str = ""
    elapsed: float = 0.0
    runs: int = 0

    @property
    def efficiency(self) -> float:
        """Walk-forward efficiency: the stitched out-of-sample CAGR over the mean in-sample CAGR
        of the chosen runs (NaN when that is not positive)."""
        try:
            is_cagr = _cell(self.summary, "cagr", "in_sample")
            oos_cagr = _cell(self.summary, "cagr", "out_of_sample_stitched")
        except KeyError:
            return math.nan
        return oos_cagr / is_cagr if is_cagr > 0 else math.nan

    @property
    def in_sample_runs(self) -> pd.DataFrame:
        """Every in-sample run of every window (a ``window`` column in front)."""
        import pandas as pd

        frames = [s.table.assign(window=i) for i, s in enumerate(self.sweeps)]
        if not frames:
            return pd.DataFrame()
        df = pd.concat(frames, ignore_index=True)
        return df[["window", *[c for c in df.columns if c != "window"]]]

    def write(self, out_dir: str | Path, title: str | None = None) -> dict[str, Path]:
        """Write ``walkforward.csv`` (the windows), ``walkforward_summary.csv``,
        ``walkforward_equity.csv`` (the stitched out-of-sample curve),
        ``walkforward_runs.csv`` (every in-sample run) and ``walkforward.html``."""
        import pandas as pd

        from tradeloop.sweep.page import render_walkforward_html

        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        paths["windows"] = d / "walkforward.csv"
        self.windows.to_csv(paths["windows"], index=False)
        paths["summary"] = d / "walkforward_summary.csv"
        self.summary.to_csv(paths["summary"], index_label="metric")
        paths["equity"] = d / "walkforward_equity.csv"
        eq = pd.DataFrame(
            {
                "timestamp": _iso(self.equity.index),
                "equity": self.equity.round(2).to_numpy(),
                "window": self.equity_window.to_numpy(),
            }
        )
        eq.to_csv(paths["equity"], index=False)
        paths["runs"] = d / "walkforward_runs.csv"
        self.in_sample_runs.to_csv(paths["runs"], index=False)
        paths["html"] = d / "walkforward.html"
        paths["html"].write_text(render_walkforward_html(self, title), encoding="utf-8")
        return paths

    def __repr__(self) -> str:
        s = self.summary
        key = self.objective if self.objective in s.index else "objective"
        try:
            line = (
                f"in-sample {self.objective} {_cell(s, key, 'in_sample'):.3g} vs "
                f"out-of-sample {_cell(s, key, 'out_of_sample_stitched'):.3g}"
            )
        except KeyError:
            line = ""
        return (
            f"<WalkForwardResult {self.strategy} {len(self.windows)} {self.mode} windows "
            f"({self.in_sample} / {self.out_of_sample}): {line}>"
        )


def _cell(df: pd.DataFrame, row: str, col: str) -> float:
    value: Any = df.at[row, col]
    return float(value)


def _iso(index: Any) -> list[str]:
    return [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in index]


def stitch(
    outcomes: Sequence[RunOutcome], initial_cash: float
) -> tuple[list[int], list[float], list[int]]:
    """Chain the out-of-sample equity curves: each window starts from the capital the previous
    one ended with (its equity scaled by ``capital / its initial cash``). Returns timestamps,
    equity and the window of each point (outcomes without a curve are skipped)."""
    ts: list[int] = []
    eq: list[float] = []
    win: list[int] = []
    capital = initial_cash
    for k, out in enumerate(outcomes):
        if out.equity is None or out.equity_ts is None or not out.equity:
            continue
        base = out.initial_cash if out.initial_cash else initial_cash
        scale = capital / base
        ts.extend(out.equity_ts)
        eq.extend(e * scale for e in out.equity)
        win.extend([k] * len(out.equity))
        capital = eq[-1]
    return ts, eq, win


def _stitched_metrics(
    ts: list[int], eq: list[float], initial_cash: float, oos: Sequence[RunOutcome]
) -> dict[str, float]:
    from tradeloop.results.metrics import METRIC_KEYS, compute_metrics
    from tradeloop.results.result import BacktestResult

    curve = BacktestResult(
        initial_cash=initial_cash,
        symbols=(),
        equity_ts=ts,
        equity=eq,
        exposure=[0.0] * len(eq),
        orders=[],
        fills=[],
        trades=[],
        final_cash=eq[-1] if eq else initial_cash,
        bars_processed=0,
        elapsed_seconds=0.0,
    )
    m = compute_metrics(curve)
    out = {k: math.nan for k in METRIC_KEYS}
    for k in _EQUITY_METRICS:
        out[k] = m[k]
    for k in _SUMMED:
        out[k] = float(sum((o.metrics or {}).get(k, 0.0) for o in oos if o.metrics))
    return out


def walk_forward(
    config_or_engine_factory: Any,
    grid: Mapping[str, Any],
    *,
    in_sample: int | str,
    out_of_sample: int | str,
    mode: Mode = "rolling",
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
    windows_prefix: str | None = None,
) -> WalkForwardResult:
    """Walk-forward analysis of ``grid`` (the arguments of :func:`~tradeloop.sweep.sweep`, plus
    the window lengths ``in_sample``/``out_of_sample`` and ``mode``).

    Every in-sample sweep of every window runs in one batch on the executor, then one
    out-of-sample run per window with the parameters its in-sample sweep chose. ``progress`` sees
    both batches as one count. Ctrl-C raises :class:`~tradeloop.sweep.SweepInterrupted` holding
    the windows whose out-of-sample run finished (its ``result`` is a WalkForwardResult).
    ``field_prefix`` / ``windows_prefix``: put in front of the fields of errors about the grid
    and about the windows (the CLI passes ``"sweep."`` and ``"sweep.walk_forward."``).
    """
    import pandas as pd

    started = time.perf_counter()
    p = plan(
        config_or_engine_factory,
        grid,
        objective=objective,
        maximize=maximize,
        constraint=constraint,
        n_samples=n_samples,
        seed=seed,
        data=data,
        need_data=True,
        prefix=field_prefix,
    )
    assert p.data is not None
    wp = field_prefix if windows_prefix is None else windows_prefix
    timeline = p.data.timestamps()
    is_len = parse_length(in_sample, f"{wp}in_sample")
    oos_len = parse_length(out_of_sample, f"{wp}out_of_sample")
    windows = make_windows(timeline, is_len, oos_len, mode, wp)
    if not windows:
        first = pd.Timestamp(int(timeline[0]), unit="ns", tz="UTC") if timeline.size else None
        last = pd.Timestamp(int(timeline[-1]), unit="ns", tz="UTC") if timeline.size else None
        raise ConfigError(
            f"{wp}in_sample",
            in_sample,
            f"leaves no out-of-sample bars: the data has {timeline.size:,} bars "
            f"({first} to {last})",
        )
    end_ts = int(timeline[-1]) + 1

    def ts_at(i: int) -> int:
        return int(timeline[i]) if i < timeline.size else end_ts

    npts = len(p.points)
    specs = [
        RunSpec(w.index * npts + i, params, (ts_at(w.is_start), ts_at(w.is_end)))
        for w in windows
        for i, params in enumerate(p.points)
    ]
    total = len(specs) + len(windows)
    ex = make_executor(executor, p.data, p.template, max_workers, address, field_prefix)
    oos: list[RunOutcome] = []
    with ex:
        is_out, stop = collect(ex, p.template, specs, progress, 0, total)
        sweeps = _window_sweeps(is_out, windows, npts, p.param_names, p.objective, p.strategy_name)
        if stop is None:
            oos_specs = []
            for w, s in zip(windows, sweeps, strict=True):
                best = s.best_params
                if best is not None:
                    window = (ts_at(w.oos_start), ts_at(w.oos_end))
                    oos_specs.append(RunSpec(w.index, best, window, equity=True))
            oos, stop = collect(ex, p.template, oos_specs, progress, len(is_out), total)
    oos_by_window = {o.index: o for o in oos}
    result = _assemble(
        p.param_names,
        p.objective,
        windows,
        sweeps,
        oos_by_window,
        timeline,
        p.initial_cash,
        mode,
        str(in_sample),
        str(out_of_sample),
    )
    result.interrupted = stop is not None
    result.strategy = p.strategy_name
    result.elapsed = time.perf_counter() - started
    result.runs = len(is_out) + len(oos)
    if out is not None:
        result.write(out, title)
    if stop is not None:
        raise SweepInterrupted(result) from None
    return result


def _window_sweeps(
    outcomes: Sequence[RunOutcome],
    windows: Sequence[Window],
    npts: int,
    params: list[str],
    objective: Objective,
    strategy: str,
) -> list[SweepResult]:
    by_window: dict[int, list[RunOutcome]] = {w.index: [] for w in windows}
    for o in outcomes:
        local = RunOutcome(
            o.index % npts, o.params, o.metrics, o.error, o.seconds, traceback=o.traceback
        )
        by_window[o.index // npts].append(local)
    return [
        SweepResult(
            table=build_table(by_window[w.index], params, objective),
            params=params,
            objective=objective.name,
            maximize=objective.maximize,
            total=npts,
            interrupted=len(by_window[w.index]) < npts,
            strategy=strategy,
        )
        for w in windows
    ]


def _assemble(
    params: list[str],
    objective: Objective,
    windows: Sequence[Window],
    sweeps: Sequence[SweepResult],
    oos: Mapping[int, RunOutcome],
    timeline: npt.NDArray[np.int64],
    initial_cash: float | None,
    mode: str,
    in_sample: str,
    out_of_sample: str,
) -> WalkForwardResult:
    import pandas as pd

    keys = _summary_keys(objective)

    def when(i: int) -> pd.Timestamp:
        return pd.Timestamp(int(timeline[min(i, timeline.size - 1)]), unit="ns", tz="UTC")

    rows: list[dict[str, Any]] = []
    chosen_is: list[dict[str, float]] = []
    done_oos: list[RunOutcome] = []
    for w, s in zip(windows, sweeps, strict=True):
        row: dict[str, Any] = {
            "window": w.index,
            "is_start": when(w.is_start),
            "is_end": when(w.is_end - 1),
            "oos_start": when(w.oos_start),
            "oos_end": when(w.oos_end - 1),
            "is_bars": w.is_bars,
            "oos_bars": w.oos_bars,
        }
        best = s.best
        bp = s.best_params or {}
        row.update({p: bp.get(p) for p in params})
        is_m: dict[str, float] = {}
        if best is not None:
            is_m = {k: float(best[k]) for k in keys if k in best.index}
            is_m["objective"] = float(best["objective"])
            chosen_is.append(is_m)
        o = oos.get(w.index)
        oos_m: dict[str, float] = dict(o.metrics) if o is not None and o.metrics else {}
        if o is not None and o.metrics:
            oos_m["objective"] = objective.score(o.metrics)
            done_oos.append(o)
        for k in _rows(objective, keys):
            row[f"is_{k}"] = is_m.get(k, math.nan)
            row[f"oos_{k}"] = oos_m.get(k, math.nan)
        row["is_failed"] = s.n_failed
        if best is None:
            row["oos_error"] = "no in-sample run succeeded"
        elif o is None:
            row["oos_error"] = "not run (interrupted)"
        else:
            row["oos_error"] = o.error or ""
        rows.append(row)
    windows_df = pd.DataFrame(rows)

    cash = initial_cash
    if cash is None:
        cash = next((o.initial_cash for o in done_oos if o.initial_cash), 100_000.0)
    ts, eq, win = stitch(done_oos, cash)
    idx = pd.to_datetime(np.asarray(ts, dtype=np.int64), unit="ns", utc=True)
    equity = pd.Series(eq, index=idx, name="equity", dtype="float64")
    equity_window = pd.Series([done_oos[k].index for k in win], index=idx, name="window")
    stitched = _stitched_metrics(ts, eq, cash, done_oos) if eq else {}
    if objective.func is None:
        stitched["objective"] = stitched.get(objective.name, math.nan)
    else:
        stitched["objective"] = objective.score(stitched) if stitched else math.nan

    def mean(items: Sequence[Mapping[str, float]], k: str) -> float:
        vals = [v for v in (m.get(k, math.nan) for m in items) if math.isfinite(v)]
        return float(np.mean(vals)) if vals else math.nan

    oos_ms = [{**(o.metrics or {}), "objective": objective.score(o.metrics)} for o in done_oos]
    summary_rows = _rows(objective, keys)
    summary = pd.DataFrame(
        {
            "in_sample": [mean(chosen_is, k) for k in summary_rows],
            "out_of_sample": [mean(oos_ms, k) for k in summary_rows],
            "out_of_sample_stitched": [stitched.get(k, math.nan) for k in summary_rows],
        },
        index=pd.Index(summary_rows, name="metric"),
    )
    return WalkForwardResult(
        windows=windows_df,
        summary=summary,
        equity=equity,
        equity_window=equity_window,
        sweeps=list(sweeps),
        params=params,
        objective=objective.name,
        maximize=objective.maximize,
        mode=mode,
        in_sample=in_sample,
        out_of_sample=out_of_sample,
    )


def _rows(objective: Objective, keys: list[str]) -> list[str]:
    """The metrics shown: the objective's own row only for a callable objective."""
    return keys if objective.func is None else ["objective", *keys]


def _summary_keys(objective: Objective) -> list[str]:
    keys = list(SUMMARY_METRICS)
    if objective.func is None:  # the objective first
        keys = [objective.name, *(k for k in keys if k != objective.name)]
    return keys
