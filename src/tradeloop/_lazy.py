"""PEP 562 lazy exports: a package names what it offers without importing it up front.

Used by the packages whose contents pull in heavy dependencies (pandas, numpy, matplotlib) or
would create import cycles, so that ``import tradeloop.<package>`` stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, namespace: dict[str, Any], exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose ``exports`` maps name -> module.

    A name is imported from its module on first access and cached in ``namespace`` (the package's
    ``globals()``), so later lookups cost nothing.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
