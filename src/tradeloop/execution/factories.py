"""Deprecated alias of :mod:`tradeloop.execution.factory`.

It re-exports that module's names and will be removed in a future release.
"""

import warnings

from tradeloop.execution.factory import *  # noqa: F403
from tradeloop.execution.factory import __all__ as __all__

warnings.warn(
    "tradeloop.execution.factories is deprecated; import from tradeloop.execution.factory instead",
    DeprecationWarning,
    stacklevel=2,
)
