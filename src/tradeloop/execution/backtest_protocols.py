"""Deprecated alias of :mod:`tradeloop.execution.sync_protocols`.

It re-exports that module's names and will be removed in a future release.
"""

import warnings

from tradeloop.execution.sync_protocols import *  # noqa: F403
from tradeloop.execution.sync_protocols import __all__ as __all__

warnings.warn(
    "tradeloop.execution.backtest_protocols is deprecated; "
    "import from tradeloop.execution.sync_protocols instead",
    DeprecationWarning,
    stacklevel=2,
)
