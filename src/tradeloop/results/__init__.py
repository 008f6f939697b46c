"""Backtest results: the raw :class:`BacktestResult`, its metrics, and CSV/JSON/HTML output.

``import tradeloop.results`` stays light: numpy (metrics, files) and matplotlib (report plots) are
imported only when :func:`compute_metrics`, :func:`write_results` or :func:`write_html_report` is
first used (PEP 562 lazy attributes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradeloop._lazy import lazy_exports
from tradeloop.results.result import BacktestResult

if TYPE_CHECKING:
    from tradeloop.results.metrics import compute_metrics
    from tradeloop.results.report import write_html_report
    from tradeloop.results.writer import write_results

__all__ = ["BacktestResult", "compute_metrics", "write_html_report", "write_results"]

_LAZY = {
    "compute_metrics": "tradeloop.results.metrics",
    "write_results": "tradeloop.results.writer",
    "write_html_report": "tradeloop.results.report",
}

__getattr__, __dir__ = lazy_exports("tradeloop.results", globals(), _LAZY)
