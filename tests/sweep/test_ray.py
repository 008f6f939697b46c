"""The Ray executor: a small sweep on a local Ray with 2 CPUs equals the local pool's table."""

from __future__ import annotations

import importlib.util
import subprocess
import time

import pandas as pd
import pytest

from tradeloop.sweep import sweep

from .conftest import small_config  # type: ignore[import-not-found]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="Ray is not installed (pip install 'tradeloop[ray]')",
)


def _ray_processes() -> set[str]:
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return {
        line.split()[0]
        for line in out.splitlines()
        if any(k in line for k in ("raylet", "gcs_server", "ray::", "default_worker.py"))
    }


@pytest.mark.timeout(90)
def test_ray_equals_local() -> None:
    import ray

    before = _ray_processes()
    grid = {"fast": [5, 10, 20], "slow": [15, 30, 60]}
    local = sweep(small_config(), grid, constraint="fast < slow", max_workers=2)
    started = time.perf_counter()
    on_ray = sweep(small_config(), grid, constraint="fast < slow", executor="ray", max_workers=2)
    assert time.perf_counter() - started < 60
    pd.testing.assert_frame_equal(
        local.table.drop(columns="seconds"), on_ray.table.drop(columns="seconds")
    )
    assert on_ray.executor == "ray" and on_ray.workers == 2
    assert not ray.is_initialized()  # it started Ray, so it shut it down
    deadline = time.monotonic() + 20
    while _ray_processes() - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not (_ray_processes() - before), "Ray processes left behind"
