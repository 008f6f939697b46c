"""Deprecated alias of :mod:`tradeloop.execution.synchronous`.

It re-exports that module's names and will be removed in a future release.
"""

import warnings

from tradeloop.execution.synchronous import *  # noqa: F403
from tradeloop.execution.synchronous import __all__ as __all__

warnings.warn(
    "tradeloop.execution.backtest is deprecated; "
    "import from tradeloop.execution.synchronous instead",
    DeprecationWarning,
    stacklevel=2,
)
