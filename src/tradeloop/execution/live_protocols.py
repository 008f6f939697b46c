"""Deprecated alias of :mod:`tradeloop.execution.async_protocols`.

It re-exports that module's names and will be removed in a future release.
"""

import warnings

from tradeloop.execution.async_protocols import *  # noqa: F403
from tradeloop.execution.async_protocols import __all__ as __all__

warnings.warn(
    "tradeloop.execution.live_protocols is deprecated; "
    "import from tradeloop.execution.async_protocols instead",
    DeprecationWarning,
    stacklevel=2,
)
