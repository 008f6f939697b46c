"""Shared pieces of the sweep tests: a small config on the embedded sample, strategy files."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

FLAKY = textwrap.dedent(
    '''
    import os

    from tradeloop import Strategy


    class Flaky(Strategy):
        """Buys and holds; raises in on_bar when boom == 1, kills its process when boom == 2."""

        boom: int = 0
        size: int = 10

        def on_bar(self, ctx, bar):
            if self.boom == 1 and ctx.position(bar.symbol).qty:
                raise ValueError("boom on purpose")
            if self.boom == 2:
                os._exit(3)
            if not ctx.position(bar.symbol).qty and not ctx.open_orders(bar.symbol):
                ctx.buy(bar.symbol, self.size)
    '''
)


def small_config(**extra: Any) -> dict[str, Any]:
    """SMA crossover on one year of the daily sample (about 1,000 bars): quick runs."""
    cfg: dict[str, Any] = {
        "execution": {"initial_cash": 100_000, "participation_rate": 0.1},
        "data": {
            "sample": "daily",
            "symbols": ["ACME", "BOLT"],
            "start": "2021-01-01",
            "end": "2022-12-31",
        },
        "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 30}},
        "costs": {"commission": {"type": "per_share", "rate": 0.005, "minimum": 1.0}},
    }
    cfg.update(extra)
    return cfg


@pytest.fixture
def flaky_config(tmp_path: Path) -> dict[str, Any]:
    """A config whose strategy (from a file) fails for some parameter values."""
    (tmp_path / "flaky.py").write_text(FLAKY, encoding="utf-8")
    cfg = small_config()
    cfg["strategy"] = {"name": str(tmp_path / "flaky.py") + ":Flaky", "params": {}}
    return cfg
