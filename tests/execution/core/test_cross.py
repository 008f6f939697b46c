"""CrossSection: gathering a timestamp's bars from a stream (pure)."""

from __future__ import annotations

import pytest

from tradeloop.execution.core.cross import CrossSection
from tradeloop.execution.types import Bar


def bar(sym: str, ts: int) -> Bar:
    return Bar(sym, ts, 1.0, 1.0, 1.0, 1.0, 1.0)


def test_complete_when_every_symbol_has_a_bar() -> None:
    cs = CrossSection(["A", "B", "A"])  # a repeated name counts once
    assert not cs.pending
    assert not cs.add(bar("A", 5))
    assert cs.pending and cs.ts == 5
    b = bar("B", 5)
    assert cs.add(b)
    assert set(cs.view) == {"A", "B"} and cs.view["B"] is b
    cs.delivered()
    assert not cs.pending and cs.last == 5 and len(cs.view) == 0


def test_a_later_bar_is_due_after_delivery_and_late_bars_are_left_out() -> None:
    cs = CrossSection(["A", "B"])
    cs.add(bar("A", 5))
    assert cs.due_before(6) and not cs.due_before(5) and not cs.due_before(4)
    with pytest.raises(ValueError):
        cs.add(bar("B", 6))  # the caller must deliver 5 first
    assert not cs.add(bar("B", 4))  # older than the timestamp gathered
    assert set(cs.view) == {"A"}
    cs.delivered()
    assert not cs.add(bar("B", 5))  # its timestamp was delivered already
    assert not cs.pending
    assert not cs.add(bar("B", 7))
    assert cs.ts == 7


def test_the_view_is_read_only() -> None:
    cs = CrossSection(["A"])
    cs.add(bar("A", 1))
    with pytest.raises(TypeError):
        cs.view["B"] = bar("B", 1)  # type: ignore[index]
