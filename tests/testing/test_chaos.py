"""A chaos run in the test suite: faults of every kind and a SIGKILL, nothing doubled or lost.

(``bench/chaos_live.py`` runs the same scenario over the whole sample, >1,000 orders.)
"""

from __future__ import annotations

from pathlib import Path

from tradeloop.data.sample import load_sample
from tradeloop.testing.chaos import run_chaos


def test_faults_and_a_restart_lose_and_double_nothing(tmp_path: Path) -> None:
    feed = load_sample("minute", end="2024-03-04")  # two trading days, four symbols
    report = run_chaos(tmp_path, feed, speed=2500, rate=0.1, kills=1, seed=11, timeout=240)
    assert report.kills == 1 and report.restarts == 1
    assert report.orders_sent >= 100
    assert sum(report.faults.values()) >= 10
    assert report.duplicates == 0, report.problems
    assert report.lost_fills == 0, report.problems
    assert report.mismatched_orders == 0, report.problems
    assert report.position_mismatches == [] and abs(report.cash_difference) < 0.01
    assert report.reconciliations >= 1
