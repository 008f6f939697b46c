"""overrides_on_bars: engines skip cross-section work for a strategy without its own on_bars."""

from __future__ import annotations

from typing import Any

from tradeloop.execution.core.cross import overrides_on_bars
from tradeloop.strategy import Strategy


class Plain(Strategy):
    def on_bar(self, ctx: Any, bar: Any) -> None:
        pass


class Bars(Strategy):
    def on_bars(self, ctx: Any, bars: Any) -> None:
        pass


class Child(Bars):
    pass


class NotAStrategy:
    pass


def test_only_a_strategy_with_its_own_on_bars_overrides_it() -> None:
    assert overrides_on_bars(Bars()) is True
    assert overrides_on_bars(Child()) is True
    assert overrides_on_bars(Plain()) is False
    assert overrides_on_bars(Strategy()) is False
    assert overrides_on_bars(NotAStrategy()) is False  # duck typing: no on_bars at all
