"""Built-in strategies: SmaCross against a naive reference, BuyAndHold, parameter checks."""

from __future__ import annotations

import math

import pytest

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.errors import ConfigError
from tradeloop.execution.synchronous import SyncExecutionEngine
from tradeloop.strategies import REGISTRY, BuyAndHold, SmaCross

DAY = 86_400_000_000_000


def feed(closes: dict[str, list[float]]) -> BarFeed:
    out = []
    for sym, cl in closes.items():
        n = len(cl)
        opens = [cl[0], *cl[:-1]]
        out.append(
            SymbolSeries(
                sym,
                [(19_000 + i) * DAY for i in range(n)],
                opens,
                [max(o, c) for o, c in zip(opens, cl, strict=True)],
                [min(o, c) for o, c in zip(opens, cl, strict=True)],
                cl,
                [1e9] * n,
            )
        )
    return BarFeed(out)


def naive_signals(closes: list[float], fast: int, slow: int, short: bool) -> list[int]:
    """Desired position sign after each bar, from plain slicing (no incremental sums)."""
    want = []
    for i in range(len(closes)):
        if i + 1 < slow:
            want.append(0)
            continue
        f = sum(closes[i + 1 - fast : i + 1]) / fast
        s = sum(closes[i + 1 - slow : i + 1]) / slow
        want.append(1 if f > s else (-1 if short else 0))
    return want


@pytest.mark.parametrize("short", [False, True])
@pytest.mark.parametrize(("fast", "slow"), [(3, 9), (1, 2), (5, 6), (10, 30)])
def test_sma_cross_trades_exactly_where_the_naive_signal_changes(
    short: bool, fast: int, slow: int
) -> None:
    closes = [100 + 8 * math.sin(i / 5) + 3 * math.sin(i / 1.7) for i in range(300)]
    # two symbols, interleaved bar by bar, each with its own state
    other = [200 - c for c in closes]
    result = SyncExecutionEngine(
        feed({"X": closes, "Y": other}),
        SmaCross(fast=fast, slow=slow, allow_short=short),
        initial_cash=1e6,
        leverage=4.0,  # room for both to flip at once: no order waits on buying power
    ).run()
    for sym, cl in (("X", closes), ("Y", other)):
        signal = naive_signals(cl, fast, slow, short)
        # the strategy starts flat and first decides on bar slow - 1
        first = slow - 1
        changes = [
            i for i in range(first, len(signal)) if signal[i] != (signal[i - 1] if i > first else 0)
        ]
        # each change is traded on the next bar's open, which is that bar's previous close
        fills = [f for f in result.fills if f.symbol == sym]
        fill_days = [f.ts // DAY - 19_000 for f in fills]
        assert fill_days == [i + 1 for i in changes if i + 1 < len(cl)]
        assert len(fill_days) > 10
        for f in fills:
            i = f.ts // DAY - 19_000
            assert f.price == cl[i - 1]


def test_sma_cross_sizes_by_equity_and_allocation() -> None:
    closes = [10.0] * 10 + [float(v) for v in range(11, 31)]
    result = SyncExecutionEngine(
        feed({"X": closes}), SmaCross(fast=2, slow=5, allocation=0.5), initial_cash=10_000
    ).run()
    first = result.fills[0]
    assert first.side == "buy"
    assert first.qty == float(int(10_000 * 0.5 / closes[10]))


def test_sma_cross_rejects_bad_windows() -> None:
    with pytest.raises(ConfigError) as err:
        SyncExecutionEngine(feed({"X": [1.0, 2.0]}), SmaCross(fast=30, slow=10)).run()
    assert err.value.field == "strategy.params.fast"


def test_buy_and_hold_buys_each_symbol_once() -> None:
    f = feed({"A": [10.0, 11.0, 12.0, 13.0], "B": [20.0, 19.0, 18.0, 21.0]})
    result = SyncExecutionEngine(f, BuyAndHold(allocation=0.5), initial_cash=10_000).run()
    assert sorted((x.symbol, x.qty) for x in result.fills) == [("A", 250.0), ("B", 125.0)]
    assert result.final_equity == pytest.approx(10_000 + 250 * 3 + 125 * 1)


def test_registry_names() -> None:
    assert {"sma_cross": SmaCross, "buy_and_hold": BuyAndHold} == REGISTRY


def test_sma_cross_sizes_shorts_like_longs_when_it_flips() -> None:
    """A flip from long to short frees the long's capital first: shorts are not starved."""
    from tradeloop.data.sample import load_sample
    from tradeloop.execution.synchronous import SyncEngine

    feed = load_sample("daily", symbols=["ACME"])
    result = SyncEngine(feed, SmaCross(allow_short=True)).run()
    longs = [t.entry_price * t.max_qty for t in result.trades if t.side.value == "buy"]
    shorts = [t.entry_price * t.max_qty for t in result.trades if t.side.value == "sell"]
    assert longs and shorts
    ratio = (sum(shorts) / len(shorts)) / (sum(longs) / len(longs))
    assert 0.8 < ratio < 1.25  # before the fix, about a tenth
