"""Deprecated alias of :mod:`tradeloop.execution.types`.

It re-exports that module's names and will be removed in a future release.
"""

import warnings

from tradeloop.execution.types import *  # noqa: F403
from tradeloop.execution.types import __all__ as __all__

warnings.warn(
    "tradeloop.execution.shared_types is deprecated; import from tradeloop.execution.types instead",
    DeprecationWarning,
    stacklevel=2,
)
