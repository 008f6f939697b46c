"""Parameter sweeps and walk-forward analysis, on all local cores or on a Ray cluster.

::

    from tradeloop.sweep import sweep, walk_forward

    res = sweep("examples/sweep.yaml", grid={"fast": range(5, 30, 5), "slow": [40, 60, 80]},
                objective="sharpe", constraint="fast < slow")
    res.table          # a DataFrame: run, the parameters, objective, rank, every metric, error
    res.best_params    # {"fast": 10, "slow": 60}
    res.write("results/sweep")  # sweep.csv, sweep.parquet (with pyarrow), sweep.html

    wf = walk_forward("examples/sweep.yaml", grid={...}, in_sample="1y", out_of_sample="6mo")
    wf.summary         # in-sample vs out-of-sample metrics, side by side

:func:`sweep` and :func:`walk_forward` run on a local process pool by default
(``executor="local"``, one process per core; the bars shared once through shared memory), on
Ray with ``executor="ray"`` (``pip install 'tradeloop[ray]'``; ``address=`` of a cluster, or a
local Ray), or in the calling process with ``executor="serial"``. The same grid gives the same
table whatever the executor.
"""

from tradeloop.sweep.core import Objective, SweepInterrupted, SweepResult, sweep
from tradeloop.sweep.grid import compile_constraint, expand_grid
from tradeloop.sweep.walkforward import WalkForwardResult, Window, make_windows, walk_forward

__all__ = [
    "Objective",
    "SweepInterrupted",
    "SweepResult",
    "WalkForwardResult",
    "Window",
    "compile_constraint",
    "expand_grid",
    "make_windows",
    "sweep",
    "walk_forward",
]
