"""Backtest results: the raw :class:`BacktestResult`, its metrics, and CSV/JSON/HTML output.

``import tradeloop.results`` stays light: numpy (metrics, files) and matplotlib (report plots) are
imported only when :func:`compute_metrics`, :func:`write_results` or :func:`write_html_report` is
first used (PEP 562 lazy attributes).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tradeloop.results' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
