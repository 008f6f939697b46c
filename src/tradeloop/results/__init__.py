"""Backtest results: the raw :class:`BacktestResult`, its metrics, and CSV/JSON/HTML output.

``import tradeloop.results`` stays light: numpy (metrics, files), pandas (the ``*_df`` views) and
matplotlib (plots) are imported only when :func:`compute_metrics`, :func:`write_results`,
:func:`load_result`, :func:`write_html_report` or a notebook helper of :class:`BacktestResult` is
first used (PEP 562 lazy attributes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradeloop._lazy import lazy_exports
from tradeloop.results.result import BacktestResult

if TYPE_CHECKING:
    from tradeloop.results.metrics import compute_metrics
    from tradeloop.results.reader import load_result
    from tradeloop.results.report import write_html_report
    from tradeloop.results.writer import write_results

__all__ = ["BacktestResult", "compute_metrics", "load_result", "write_html_report", "write_results"]

_LAZY = {
    "compute_metrics": "tradeloop.results.metrics",
    "write_results": "tradeloop.results.writer",
    "load_result": "tradeloop.results.reader",
    "write_html_report": "tradeloop.results.report",
}

__getattr__, __dir__ = lazy_exports("tradeloop.results", globals(), _LAZY)
