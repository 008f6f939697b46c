"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 2
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile("\n".join(blocks), str(README), "exec"), namespace)
    result = namespace["result"]
    assert result.bars_processed == 4168  # type: ignore[attr-defined]
    assert len(result.fills) > 0  # type: ignore[attr-defined]
