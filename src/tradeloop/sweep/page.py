"""The HTML pages of a sweep and of a walk-forward analysis.

Self-contained like the backtest report (:mod:`tradeloop.results.report`): one file, plots as
inline PNG, no scripts, nothing fetched. The sweep page shows the run, a heatmap of the objective
over every pair of swept parameters (the best value over the other parameters in each cell; a
line for a single parameter), the top runs and the failures with their errors. The walk-forward
page shows in-sample vs out-of-sample metrics side by side, the stitched out-of-sample equity
curve with its windows, and the parameters each window chose.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tradeloop.results.report import _CSS, NO_PLOTS_NOTE, format_metric

if TYPE_CHECKING:
    import pandas as pd

    from tradeloop.sweep.core import SweepResult
    from tradeloop.sweep.walkforward import WalkForwardResult

__all__ = ["MAX_HEATMAPS", "TOP_ROWS", "render_sweep_html", "render_walkforward_html"]

TOP_ROWS = 20
"""The sweep page lists this many of the best runs."""

MAX_HEATMAPS = 10
"""At most this many parameter pairs get a heatmap."""

MAX_FAILURE_ROWS = 50

TABLE_METRICS = (
    "sharpe",
    "total_return",
    "cagr",
    "max_drawdown",
    "sortino",
    "calmar",
    "win_rate",
    "num_trades",
    "profit_factor",
)

_EXTRA_CSS = """
td.err { color: #a00; white-space: normal; max-width: 40rem; }
tr.best td { background: #eaf6ea; font-weight: 600; }
"""


def _head(title: str) -> list[str]:
    t = html.escape(title)
    return [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{t}</title>",
        f"<style>{_CSS}{_EXTRA_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{t}</h1>",
    ]


def _kv(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>\n" for k, v in rows
    )
    return f"<table>\n{body}</table>"


def _value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:g}"
    return str(v)


def _frame_html(
    df: pd.DataFrame,
    formats: dict[str, str] | None = None,
    row_classes: Sequence[str] | None = None,
) -> str:
    """A DataFrame as a table: metric columns formatted as the report does."""
    from tradeloop.results.metrics import METRIC_KEYS

    formats = formats or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    parts = [f'<div class="wide"><table>\n<tr>{head}</tr>\n']
    for i, (_, row) in enumerate(df.iterrows()):
        rc = row_classes[i] if row_classes else ""
        parts.append(f'<tr class="{rc}">' if rc else "<tr>")
        for col in df.columns:
            v = row[col]
            key = formats.get(str(col), str(col))
            if col == "error" or col == "oos_error":
                parts.append(f'<td class="err">{html.escape(str(v))}</td>')
            elif key in METRIC_KEYS and isinstance(v, int | float) and not isinstance(v, bool):
                parts.append(f'<td class="num">{html.escape(format_metric(key, float(v)))}</td>')
            elif isinstance(v, int | float) and not isinstance(v, bool):
                parts.append(f'<td class="num">{html.escape(_value(v))}</td>')
            else:
                parts.append(f"<td>{html.escape(_value(v))}</td>")
        parts.append("</tr>\n")
    parts.append("</table></div>")
    return "".join(parts)


def _plots_available() -> bool:
    from tradeloop.results.plots import require_matplotlib

    try:
        require_matplotlib()
    except ImportError:
        return False
    return True


def _img(caption: str, data: str) -> str:
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f'<figcaption class="muted">{html.escape(caption)}</figcaption></figure>'
    )


# ---------------------------------------------------------------------------------- heatmaps


def _varying(result: SweepResult) -> list[str]:
    t = result.table
    return [p for p in result.params if t[p].nunique(dropna=False) > 1]


def heatmap_pairs(
    result: SweepResult, chosen: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """The parameter pairs to draw: ``chosen`` (x, y) if given, else every pair of parameters
    that vary (at most :data:`MAX_HEATMAPS`)."""
    if chosen:
        return [(chosen[0], chosen[1])]
    return list(itertools.combinations(_varying(result), 2))[:MAX_HEATMAPS]


def _sorted_values(values: Sequence[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def objective_grid(result: SweepResult, x: str, y: str) -> pd.DataFrame:
    """The objective over ``x`` (columns) and ``y`` (rows): the best value over the other
    parameters in each cell, NaN where no run gave one."""

    t = result.table[[x, y, "objective"]].copy()
    t["objective"] = t["objective"].astype("float64")
    agg = "max" if result.maximize else "min"
    grid = t.groupby([y, x], dropna=False)["objective"].agg(agg).unstack(x)
    cols = _sorted_values(list(grid.columns))
    rows = _sorted_values(list(grid.index))
    out: pd.DataFrame = grid.reindex(index=rows, columns=cols)
    return out


def _draw_heatmap(result: SweepResult, x: str, y: str) -> str:
    import numpy as np

    from tradeloop.results.plots import new_figure, png_base64

    grid = objective_grid(result, x, y)
    z = grid.to_numpy(dtype=np.float64)
    ny, nx = z.shape
    width = min(11.0, max(5.0, 1.0 + 0.55 * nx))
    height = min(8.0, max(3.5, 1.2 + 0.4 * ny))
    fig, ax = new_figure(width, height)
    masked = np.ma.masked_invalid(z)
    import matplotlib

    name = "viridis" if result.maximize else "viridis_r"
    cmap = matplotlib.colormaps[name].with_extremes(bad="#dddddd")  # grey: no value
    im = ax.imshow(masked, aspect="auto", origin="lower", cmap=cmap, interpolation="nearest")
    ax.set_xticks(range(nx), [_value(v) for v in grid.columns], rotation=45 if nx > 12 else 0)
    ax.set_yticks(range(ny), [_value(v) for v in grid.index])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    other = "the best" if len(result.params) > 2 else "the value"
    ax.set_title(f"{result.objective}: {other} over the other parameters")
    fig.colorbar(im, ax=ax, label=result.objective)
    if nx * ny <= 225:
        finite = z[np.isfinite(z)]
        mid = float(np.median(finite)) if finite.size else 0.0
        for (i, j), v in np.ndenumerate(z):
            if math.isfinite(v):
                color = "black" if (v > mid) == result.maximize else "white"
                ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=7, color=color)
    return png_base64(fig)


def _draw_line(result: SweepResult, x: str) -> str:
    import numpy as np

    from tradeloop.results.plots import new_figure, png_base64

    t = result.table[[x, "objective"]].copy()
    t["objective"] = t["objective"].astype("float64")
    agg = "max" if result.maximize else "min"
    s = t.groupby(x, dropna=False)["objective"].agg(agg)
    s = s.reindex(_sorted_values(list(s.index)))
    fig, ax = new_figure(8.0, 3.5)
    xs = np.arange(len(s))
    ax.plot(xs, s.to_numpy(dtype=np.float64), marker="o")
    ax.set_xticks(xs, [_value(v) for v in s.index])
    ax.set_xlabel(x)
    ax.set_ylabel(result.objective)
    ax.grid(True, alpha=0.3)
    return png_base64(fig)


def _heatmaps_html(result: SweepResult, chosen: Sequence[str] | None) -> str:
    varying = _varying(result)
    if result.table["objective"].astype("float64").notna().sum() == 0:
        return '<p class="note">No run gave a value of the objective: nothing to plot.</p>'
    if not _plots_available():
        return f'<p class="note">{html.escape(NO_PLOTS_NOTE)}</p>'
    parts: list[str] = []
    if chosen or len(varying) >= 2:
        for x, y in heatmap_pairs(result, chosen):
            caption = f"{result.objective} over {x} (x) and {y} (y)"
            parts.append(_img(caption, _draw_heatmap(result, x, y)))
        more = len(list(itertools.combinations(varying, 2))) - MAX_HEATMAPS
        if not chosen and more > 0:
            parts.append(f'<p class="muted">{more} more pairs not drawn.</p>')
    elif len(varying) == 1:
        parts.append(_img(f"{result.objective} by {varying[0]}", _draw_line(result, varying[0])))
    else:
        parts.append('<p class="muted">Only one parameter set: nothing to plot.</p>')
    return "\n".join(parts)


# ------------------------------------------------------------------------------------ pages


def _top_columns(result: SweepResult) -> list[str]:
    cols = ["rank", "run", *result.params, "objective"]
    cols += [m for m in TABLE_METRICS if m != result.objective]
    return cols


def render_sweep_html(
    result: SweepResult, title: str | None = None, heatmaps: Sequence[str] | None = None
) -> str:
    """The sweep page as an HTML string."""
    title = title or f"Parameter sweep: {result.strategy}"
    best = result.best_params
    rows = [
        ("Strategy", result.strategy),
        ("Runs", f"{len(result.table):,} of {result.total:,}"),
        ("Failed runs", f"{result.n_failed:,}"),
        ("Objective", f"{result.objective} ({result.objective_direction})"),
        ("Parameters", ", ".join(result.params)),
        ("Best parameters", "none (no run succeeded)" if best is None else _params_text(best)),
        ("Executor", f"{result.executor} ({result.workers} workers)" if result.executor else ""),
        ("Elapsed", f"{result.elapsed:,.1f} s"),
    ]
    parts = _head(title)
    if result.interrupted:
        parts.append(
            '<p class="partial">Interrupted (Ctrl-C): the table holds the runs that had '
            "finished.</p>"
        )
    parts += ['<h2 id="run">Sweep</h2>', _kv(rows)]
    parts += ['<h2 id="heatmaps">Objective heatmaps</h2>', _heatmaps_html(result, heatmaps)]
    top = result.top(TOP_ROWS)
    parts.append(f'<h2 id="top">Top {len(top)} runs</h2>')
    if top.empty:
        parts.append('<p class="note">No run succeeded.</p>')
    else:
        formats = {"objective": result.objective if result.objective in top.columns else ""}
        classes = ["best"] + [""] * (len(top) - 1)
        parts.append(_frame_html(top[_top_columns(result)], formats, classes))
    failures = result.failures
    parts.append(f'<h2 id="failures">Failed runs ({len(failures):,})</h2>')
    if failures.empty:
        parts.append('<p class="muted">None.</p>')
    else:
        parts.append(_frame_html(failures.head(MAX_FAILURE_ROWS)))
        if len(failures) > MAX_FAILURE_ROWS:
            parts.append(f'<p class="muted">The first {MAX_FAILURE_ROWS} are listed.</p>')
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in params.items())


def _draw_walkforward(wf: WalkForwardResult) -> str:
    import numpy as np

    from tradeloop.results.plots import draw_equity, new_figure, png_base64

    fig, ax = new_figure(10.0, 4.0)
    ts = np.asarray(wf.equity.index.to_numpy(dtype="datetime64[ns]"), dtype=np.int64)
    draw_equity(ax, ts, wf.equity.to_numpy(dtype=np.float64))
    win = wf.equity_window.to_numpy()
    dates = ts.astype("datetime64[ns]")
    for k, w in enumerate(np.unique(win)):
        sel = np.flatnonzero(win == w)
        if k % 2 == 0 and sel.size:
            ax.axvspan(dates[sel[0]], dates[sel[-1]], color="#1f77b4", alpha=0.06, lw=0)
    ax.set_title("stitched out-of-sample equity (shaded: alternate windows)")
    return png_base64(fig)


def render_walkforward_html(wf: WalkForwardResult, title: str | None = None) -> str:
    """The walk-forward page as an HTML string."""
    import pandas as pd

    title = title or f"Walk-forward analysis: {wf.strategy}"
    eff = wf.efficiency
    rows = [
        ("Strategy", wf.strategy),
        ("Windows", f"{len(wf.windows):,} ({wf.mode})"),
        ("In-sample / out-of-sample", f"{wf.in_sample} / {wf.out_of_sample}"),
        ("Objective", f"{wf.objective} ({'maximize' if wf.maximize else 'minimize'})"),
        ("Runs", f"{wf.runs:,}"),
        ("Walk-forward efficiency", "n/a" if math.isnan(eff) else f"{eff:.2f}"),
    ]
    parts = _head(title)
    if wf.interrupted:
        parts.append(
            '<p class="partial">Interrupted (Ctrl-C): only the windows that finished are shown.</p>'
        )
    parts += ['<h2 id="run">Walk-forward</h2>', _kv(rows)]
    parts.append('<h2 id="summary">In-sample vs out-of-sample</h2>')
    parts.append(
        '<p class="muted">In-sample: the mean over windows of the chosen run\'s metrics (what an '
        "optimiser promises). Out-of-sample: the same parameters on the following, unseen bars; "
        "stitched: the windows chained into one curve. Look at the stitched column.</p>"
    )
    summary = wf.summary.reset_index()
    parts.append(_metric_rows_html(summary))
    parts.append('<h2 id="equity">Out-of-sample equity</h2>')
    if wf.equity.empty:
        parts.append('<p class="note">No out-of-sample run finished.</p>')
    elif not _plots_available():
        parts.append(f'<p class="note">{html.escape(NO_PLOTS_NOTE)}</p>')
    else:
        parts.append(_img("stitched out-of-sample equity", _draw_walkforward(wf)))
    parts.append('<h2 id="windows">Windows</h2>')
    df = wf.windows.copy()
    for c in ("is_start", "is_end", "oos_start", "oos_end"):
        if c in df:
            df[c] = [
                t.strftime("%Y-%m-%d") if isinstance(t, pd.Timestamp) else str(t) for t in df[c]
            ]
    formats = {f"is_{k}": k for k in _metric_names(wf)} | {f"oos_{k}": k for k in _metric_names(wf)}
    parts.append(_frame_html(df, formats))
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _metric_names(wf: WalkForwardResult) -> list[str]:
    return [str(k) for k in wf.summary.index]


def _metric_rows_html(summary: pd.DataFrame) -> str:
    head = "<tr><th>metric</th><th>in-sample</th><th>out-of-sample</th><th>stitched</th></tr>"
    body = []
    for _, row in summary.iterrows():
        key = str(row["metric"])
        cells = [
            format_metric(key, float(row[c]))
            for c in ("in_sample", "out_of_sample", "out_of_sample_stitched")
        ]
        body.append(
            f"<tr><th>{html.escape(key)}</th>"
            + "".join(f'<td class="num">{html.escape(c)}</td>' for c in cells)
            + "</tr>"
        )
    return "<table>\n" + head + "\n" + "\n".join(body) + "\n</table>"
