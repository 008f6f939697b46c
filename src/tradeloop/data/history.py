"""HistoryView: what ``ctx.history`` returns, a window onto a bar column without a copy.

Making a view costs the same for a window of 5 bars or 50,000: it holds the column and two row
numbers. ``len``, indexing (negative too) and slicing (a smaller view) are O(1). Iterating it
(``sum``, ``max``, ``for``) walks the window once; CPython walks a list fastest from a C-level
slice of it, so iteration takes one, which it drops as soon as the loop ends.

A view shows the bars as they were when it was made. In a backtest that stays true for the whole
run. Live, the history drops its oldest bars now and then to bound memory, so keep a view no
longer than the callback that made it (``list(view)`` keeps the values).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

__all__ = ["ArrayHistoryView", "HistoryView"]


class HistoryView(Sequence[float]):
    """Rows ``start`` to ``stop - 1`` of a bar column, oldest first (``view[-1]`` is the latest)."""

    __slots__ = ("_col", "_start", "_stop")

    def __init__(self, col: list[float], start: int, stop: int) -> None:
        self._col = col
        self._start = start
        self._stop = stop

    def __len__(self) -> int:
        return self._stop - self._start

    @overload
    def __getitem__(self, index: int) -> float: ...

    @overload
    def __getitem__(self, index: slice) -> HistoryView: ...

    def __getitem__(self, index: int | slice) -> float | HistoryView:
        n = self._stop - self._start
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step == 1:
                return type(self)(self._col, self._start + start, self._start + max(start, stop))
            return HistoryView.of(self.to_list()[index])
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"history index out of range (length {n})")
        return self._col[self._start + index]

    def __iter__(self) -> Iterator[float]:
        return iter(self._col[self._start : self._stop])

    def __reversed__(self) -> Iterator[float]:
        return reversed(self._col[self._start : self._stop])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HistoryView):
            return self.to_list() == other.to_list()
        if isinstance(other, list | tuple):
            return self.to_list() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to lists, so unhashable like them

    def __repr__(self) -> str:
        n = len(self)
        if n <= 6:
            return f"HistoryView({self.to_list()!r})"
        head = ", ".join(repr(x) for x in self[:3])
        tail = ", ".join(repr(x) for x in self[-2:])
        return f"HistoryView([{head}, ..., {tail}], len={n})"

    def to_list(self) -> list[float]:
        """The values as a new list (a copy that stays valid however long it is kept)."""
        return self._col[self._start : self._stop]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Any:
        """``numpy.asarray(view)``: one conversion from the window, not a walk of the view."""
        import numpy as np

        return np.array(self._col[self._start : self._stop], dtype=dtype)

    @staticmethod
    def of(values: list[float]) -> HistoryView:
        """A view of a whole list."""
        return HistoryView(values, 0, len(values))


class ArrayHistoryView(HistoryView):
    """A :class:`HistoryView` onto a numpy column (history older than the engine's window of
    lists, in a feed held in memory): the same O(1) view, Python floats out."""

    __slots__ = ()

    def __init__(self, col: Any, start: int, stop: int) -> None:
        super().__init__(col, start, stop)

    def __getitem__(self, index: int | slice) -> Any:
        value = super().__getitem__(index)
        return value if isinstance(value, HistoryView) else float(value)

    def __iter__(self) -> Iterator[float]:
        return iter(self.to_list())

    def __reversed__(self) -> Iterator[float]:
        return reversed(self.to_list())

    def to_list(self) -> list[float]:
        col: Any = self._col
        out: list[float] = col[self._start : self._stop].tolist()
        return out

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Any:
        import numpy as np

        return np.array(self._col[self._start : self._stop], dtype=dtype)
