"""A strategy that raises: a StrategyError naming the callback, symbol and bar time, the user's
frames in its cause's traceback, and partial results, on both engines."""

from __future__ import annotations

import asyncio
import functools
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.errors import InvalidOrderError, StrategyError, _iso
from tradeloop.execution.asynchronous import AsyncEngine, SimulatedBroker
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.synchronous import SyncEngine
from tradeloop.execution.types import Bar, Fill, Order
from tradeloop.strategy import Context, Strategy

DAY = 86_400_000_000_000
T0 = 19_725 * DAY  # 2024-01-03


def feed(days: int = 6) -> BarFeed:
    ts = [T0 + d * DAY for d in range(days)]
    px = [100.0 + d for d in range(days)]
    return BarFeed(SymbolSeries(s, ts, px, px, px, px, [1e6] * days) for s in ("X", "Y"))


class Faulty(Strategy):
    """Buys X on the first bar; raises in the callback named ``where`` once ``after`` bars
    (on_bar / on_bars) have been seen."""

    where: str = "on_bar"
    after: int = 3

    def on_start(self, ctx: Context) -> None:
        self.seen = 0
        if self.where == "on_start":
            raise ZeroDivisionError("boom in on_start")

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.seen += 1
        if self.seen == 1:
            ctx.buy("X", 10)
        if self.where == "on_bar" and self.seen >= self.after and bar.symbol == "Y":
            self.explode()
        if self.where == "bad_order" and self.seen == self.after:
            ctx.buy(bar.symbol, -5)

    def explode(self) -> None:
        raise ZeroDivisionError("boom in a helper")

    def on_bars(self, ctx: Context, bars: Mapping[str, Bar]) -> None:
        if self.where == "on_bars" and self.seen >= 2 * self.after:
            raise KeyError("missing")

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        if self.where == "on_fill":
            raise ValueError(f"cannot take {fill.qty}")

    def on_order_update(self, ctx: Context, order: Order) -> None:
        if self.where == "on_order_update" and order.status == "accepted":
            raise RuntimeError("bad update")

    def on_stop(self, ctx: Context) -> None:
        if self.where == "on_stop":
            raise ZeroDivisionError("boom in on_stop")


def run_sync(strategy: Strategy) -> Any:
    return SyncEngine(feed(), strategy).run()


def run_async(strategy: Strategy) -> Any:
    engine = AsyncEngine(SimulatedBroker(feed()), strategy, run_id="fail")
    return asyncio.run(asyncio.wait_for(engine.run(), 30))


ENGINES: dict[str, Callable[[Strategy], Any]] = {"sync": run_sync, "async": run_async}

# (where, callback, symbol, bar time, bars fully processed before it, exception type)
CASES = [
    ("on_start", "on_start", None, None, 0, ZeroDivisionError),
    ("on_bar", "on_bar", "Y", T0 + DAY, 3, ZeroDivisionError),  # Y's second bar
    ("on_bars", "on_bars", None, T0 + 2 * DAY, 5, KeyError),  # after Y's third bar
    ("on_fill", "on_fill", "X", T0 + DAY, 2, ValueError),  # the buy fills on X's second bar
    ("on_order_update", "on_order_update", "X", T0, 0, RuntimeError),  # accepted, first bar
    ("bad_order", "on_bar", "X", T0 + DAY, 2, InvalidOrderError),
    ("on_stop", "on_stop", None, T0 + 5 * DAY, 12, ZeroDivisionError),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("where", "callback", "symbol", "ts", "bars", "error"), CASES)
def test_a_raising_callback_is_named_with_its_symbol_and_bar_time(
    engine: str,
    where: str,
    callback: str,
    symbol: str | None,
    ts: int | None,
    bars: int,
    error: type[Exception],
) -> None:
    with pytest.raises(StrategyError) as info:
        ENGINES[engine](Faulty(where=where, after=3))
    err = info.value
    assert (err.callback, err.symbol, err.ts) == (callback, symbol, ts)
    assert isinstance(err.error, error) and err.__cause__ is err.error
    assert f"strategy callback {callback}" in str(err) and type(err.error).__name__ in str(err)
    if symbol is not None:
        assert f"symbol={symbol!r}" in str(err)
    if ts is not None:
        assert _iso(ts) in str(err)
    # the cause's traceback starts at the strategy's callback: no engine frames before it
    frames = traceback.extract_tb(err.error.__traceback__)
    assert frames[0].name == callback and frames[0].filename == __file__
    assert not any("engine.py" in f.filename for f in frames)
    # partial results, marked as such, up to the failure
    result = err.result
    assert result is not None and result.partial == str(err)
    assert result.bars_processed == bars
    assert len(result.equity) == len(result.equity_ts) <= len(feed().timeline()[0])


def test_the_helper_a_callback_called_is_shown_after_it() -> None:
    with pytest.raises(StrategyError) as info:
        run_sync(Faulty(where="on_bar", after=3))
    names = [f.name for f in traceback.extract_tb(info.value.error.__traceback__)]
    assert names == ["on_bar", "explode"]


def test_a_bad_order_shows_the_users_line_then_the_check_that_refused_it() -> None:
    with pytest.raises(StrategyError) as info:
        run_sync(Faulty(where="bad_order", after=3))
    frames = traceback.extract_tb(info.value.error.__traceback__)
    assert frames[0].name == "on_bar" and "ctx.buy(bar.symbol, -5)" in (frames[0].line or "")
    assert info.value.error.field == "qty"  # type: ignore[attr-defined]


def test_partial_results_hold_what_happened_before_the_failure() -> None:
    with pytest.raises(StrategyError) as info:
        run_sync(Faulty(where="on_bar", after=5))
    result = info.value.result
    assert [f.symbol for f in result.fills] == ["X"]  # the first bar's buy filled on the next
    assert result.equity_ts[-1] == T0 + 2 * DAY
    assert result.equity[-1] == pytest.approx(result.final_cash + 10 * 102.0)


def test_a_decorated_callback_is_still_found() -> None:
    def logged(fn: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(fn)
        def wrapper(self: Strategy, ctx: Context, bar: Bar) -> None:
            fn(self, ctx, bar)

        return wrapper

    class Decorated(Strategy):
        @logged
        def on_bar(self, ctx: Context, bar: Bar) -> None:
            raise ArithmeticError("x")

    with pytest.raises(StrategyError) as info:
        run_sync(Decorated())
    assert (info.value.callback, info.value.symbol, info.value.ts) == ("on_bar", "X", T0)


def test_an_engine_failure_is_not_blamed_on_the_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = SyncEngine(feed(), Faulty(where="nowhere"))

    def broken(*args: Any) -> None:
        raise RuntimeError("engine bug")

    monkeypatch.setattr(Portfolio, "mark_position", broken)  # called once X is held
    with pytest.raises(RuntimeError, match="engine bug"):
        engine.run()
    assert engine.partial_result is None


@pytest.mark.parametrize("stream", [False, True])
def test_ctrl_c_leaves_partial_results_on_the_engine(stream: bool) -> None:
    class Interrupted(Strategy):
        def on_bar(self, ctx: Context, bar: Bar) -> None:
            if bar.ts == T0 + 2 * DAY:
                raise KeyboardInterrupt

    data = feed()
    if stream:
        ts, sym, rows = data.timeline()
        bars: Any = [
            Bar(data.symbols[s], t, *(getattr(data[data.symbols[s]], f)[r] for f in FIELDS))
            for t, s, r in zip(ts, sym, rows, strict=True)
        ]
        engine = SyncEngine(bars, Interrupted(), symbols=data.symbols)
    else:
        engine = SyncEngine(data, Interrupted())
    with pytest.raises(KeyboardInterrupt):
        engine.run()
    result = engine.partial_result
    assert result is not None and result.partial == "interrupted"
    assert result.bars_processed == 4  # X's third bar was in hand
    assert result.equity_ts[-1] <= T0 + 2 * DAY


FIELDS = ("open", "high", "low", "close", "volume")


def test_iso_times_in_messages() -> None:
    assert _iso(T0) == "2024-01-03T00:00:00Z"
    assert _iso(T0 + 1_500_000_000) == "2024-01-03T00:00:01.500Z"
    assert _iso(T0 + 7) == "2024-01-03T00:00:00.000000007Z"
