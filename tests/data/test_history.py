"""HistoryView: ``ctx.history`` without copying the window."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeloop.data.history import HistoryView


@given(
    st.lists(st.floats(allow_nan=False), max_size=40),
    st.integers(0, 45),
    st.integers(0, 45),
    st.integers(-50, 50),
)
def test_a_view_behaves_like_the_list_slice(
    col: list[float], start: int, stop: int, index: int
) -> None:
    start, stop = min(start, len(col)), min(max(start, stop), len(col))
    view, ref = HistoryView(col, start, stop), col[start:stop]
    assert len(view) == len(ref) and bool(view) == bool(ref)
    assert list(view) == ref and view == ref and view.to_list() == ref
    assert list(reversed(view)) == ref[::-1]
    if -len(ref) <= index < len(ref):
        assert view[index] == ref[index]
    else:
        with pytest.raises(IndexError):
            view[index]
    for sl in (slice(None, -1), slice(1, None), slice(index, None), slice(None, None, 2)):
        assert list(view[sl]) == ref[sl]
    assert np.array_equal(np.asarray(view), np.array(ref, dtype=float))


def test_making_a_view_does_not_copy_the_window() -> None:
    col = [float(i) for i in range(1_000_000)]
    view = HistoryView(col, 0, len(col))
    assert sys.getsizeof(view) < 100  # a handful of slots, not a million floats
    assert view[:-1]._col is col  # a slice of a view is a view of the same column
    assert view[-1] == 999_999.0 and view[0] == 0.0 and len(view[10:20]) == 10


def test_a_view_is_unhashable_and_equal_to_sequences_of_its_values() -> None:
    view = HistoryView.of([1.0, 2.0])
    assert view == [1.0, 2.0] and view == (1.0, 2.0) and view == HistoryView.of([1.0, 2.0])
    assert view != [1.0] and view != "12"
    with pytest.raises(TypeError):
        hash(view)
    assert repr(view) == "HistoryView([1.0, 2.0])"
    assert repr(HistoryView.of([float(i) for i in range(10)])) == (
        "HistoryView([0.0, 1.0, 2.0, ..., 8.0, 9.0], len=10)"
    )
