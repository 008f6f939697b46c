"""Deprecated alias of :mod:`tradeloop.execution.asynchronous`.

It re-exports that module's names and will be removed in a future release.
"""

import warnings

from tradeloop.execution.asynchronous import *  # noqa: F403
from tradeloop.execution.asynchronous import __all__ as __all__

warnings.warn(
    "tradeloop.execution.live is deprecated; import from tradeloop.execution.asynchronous instead",
    DeprecationWarning,
    stacklevel=2,
)
