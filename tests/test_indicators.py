"""Indicators: each one against a pandas reference on random series, plus warm-up, parameter
checks, bad input, drift and use from a strategy."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeloop import Context, Strategy
from tradeloop.data.feed import BarFeed
from tradeloop.errors import ConfigError, DataError
from tradeloop.execution import SyncEngine
from tradeloop.execution.types import Bar
from tradeloop.indicators import (
    ATR,
    EMA,
    MACD,
    RSI,
    SMA,
    WMA,
    Bands,
    BollingerBands,
    MACDValue,
    RollingMax,
    RollingMin,
    ZScore,
)

REL = 1e-9
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Prices in cents (ties and flat stretches are likely: hypothesis shrinks towards them) ...
cents = st.lists(st.integers(100, 100_000), min_size=1, max_size=150).map(
    lambda xs: [x / 100 for x in xs]
)
# ... and arbitrary floats spanning four orders of magnitude.
floats = st.lists(
    st.floats(0.01, 10_000.0, allow_nan=False, allow_infinity=False), min_size=1, max_size=150
)
prices = st.one_of(cents, floats)
periods = st.integers(1, 30)


def feed_all(update: Callable[[float], Any], xs: Sequence[float]) -> list[Any]:
    return [update(x) for x in xs]


def assert_matches(got: Sequence[float | None], want: Sequence[float] | Any, scale: float) -> None:
    """``got`` is None exactly where ``want`` is NaN, and close to it elsewhere: relative
    tolerance 1e-9, absolute 1e-9 of the data's scale (for values near 0)."""
    assert len(got) == len(want)
    assert [g is None for g in got] == [bool(np.isnan(w)) for w in want]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if g is not None:
            assert math.isclose(g, w, rel_tol=REL, abs_tol=REL * scale), (i, g, w)


def scale_of(xs: Sequence[float]) -> float:
    return max(1.0, max(abs(x) for x in xs))


# ------------------------------------------------------------------------- pandas references


def wilder(x: pd.Series, n: int) -> pd.Series:
    """Wilder's smoothing of ``x``: the mean of its first ``n`` values, then
    ``ewm(alpha=1/n, adjust=False)``; one value per element from the ``n``-th on."""
    seeded = pd.concat([pd.Series([x.iloc[:n].mean()]), x.iloc[n:]], ignore_index=True)
    return seeded.ewm(alpha=1.0 / n, adjust=False).mean()


def ref_rsi(xs: Sequence[float], n: int) -> np.ndarray:
    out = np.full(len(xs), np.nan)
    d = pd.Series(xs).diff().iloc[1:]
    if len(d) < n:
        return out
    ag = wilder(d.clip(lower=0.0), n).to_numpy()
    al = wilder((-d).clip(lower=0.0), n).to_numpy()
    total = ag + al
    with np.errstate(invalid="ignore", divide="ignore"):
        out[n:] = np.where(total > 0, 100.0 * ag / total, 50.0)
    return out


def ref_atr(bars: Sequence[tuple[float, float, float]], n: int) -> np.ndarray:
    df = pd.DataFrame(bars, columns=["high", "low", "close"])
    prev = df["close"].shift()
    tr = pd.concat(
        [df["high"] - df["low"], (df["high"] - prev).abs(), (df["low"] - prev).abs()], axis=1
    ).max(axis=1)
    out = np.full(len(df), np.nan)
    tr = tr.iloc[1:]
    if len(tr) >= n:
        out[n:] = wilder(tr, n).to_numpy()
    return out


def ref_macd(xs: Sequence[float], fast: int, slow: int, signal: int) -> pd.DataFrame:
    s = pd.Series(xs)
    line = s.ewm(span=fast, adjust=False).mean() - s.ewm(span=slow, adjust=False).mean()
    sig = line.ewm(span=signal, adjust=False).mean()
    out = pd.DataFrame({"line": line, "signal": sig, "histogram": line - sig})
    out.iloc[: slow + signal - 2] = np.nan
    return out


def window_stats(w: np.ndarray) -> tuple[float, float]:
    """Mean and population std of one window, two passes with exact sums (0 if all equal)."""
    mean = math.fsum(w) / len(w)
    if (w == w[0]).all():
        return mean, 0.0
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in w) / len(w))


def ref_std(xs: Sequence[float], n: int) -> pd.Series:
    # pandas' own rolling std updates a running sum of squares: it can be off by ~1e-8 just after
    # a large value leaves the window (e.g. [28.83, 1.01, 1.0] -> [1.01, 1.0, 1.0]).
    return pd.Series(xs).rolling(n).apply(lambda w: window_stats(w)[1], raw=True)


def ref_zscore(xs: Sequence[float], n: int) -> np.ndarray:
    def z(w: np.ndarray) -> float:
        mean, std = window_stats(w)
        return (w[-1] - mean) / std if std > 0 else 0.0

    return pd.Series(xs).rolling(n).apply(z, raw=True).to_numpy()


# ---------------------------------------------------------------------- properties vs pandas


@PROPERTY
@given(prices, periods)
def test_sma_is_rolling_mean(xs: list[float], n: int) -> None:
    want = pd.Series(xs).rolling(n).mean().to_numpy()
    assert_matches(feed_all(SMA(n).update, xs), want, scale_of(xs))


@PROPERTY
@given(prices, periods)
def test_ema_is_ewm_span_adjust_false(xs: list[float], n: int) -> None:
    want = pd.Series(xs).ewm(span=n, adjust=False, min_periods=n).mean().to_numpy()
    assert_matches(feed_all(EMA(n).update, xs), want, scale_of(xs))


@PROPERTY
@given(prices, periods)
def test_wma_is_linearly_weighted_rolling_mean(xs: list[float], n: int) -> None:
    weights = np.arange(1, n + 1, dtype=float)
    want = (
        pd.Series(xs)
        .rolling(n)
        .apply(lambda w: float(np.dot(w, weights) / weights.sum()), raw=True)
        .to_numpy()
    )
    assert_matches(feed_all(WMA(n).update, xs), want, scale_of(xs))


@PROPERTY
@given(prices, periods)
def test_rsi_is_wilder_rsi(xs: list[float], n: int) -> None:
    assert_matches(feed_all(RSI(n).update, xs), ref_rsi(xs, n), 100.0)


@PROPERTY
@given(prices, st.integers(1, 15), st.integers(1, 15), st.integers(1, 12))
def test_macd_is_the_pandas_recipe(xs: list[float], fast: int, extra: int, signal: int) -> None:
    slow = fast + extra
    got = feed_all(MACD(fast, slow, signal).update, xs)
    want = ref_macd(xs, fast, slow, signal)
    for field in MACDValue._fields:
        column = [None if g is None else getattr(g, field) for g in got]
        assert_matches(column, want[field].to_numpy(), scale_of(xs))


bars_strategy = st.lists(
    st.lists(st.integers(100, 100_000), min_size=3, max_size=3).map(
        lambda v: (max(v) / 100, min(v) / 100, sorted(v)[1] / 100)
    ),
    min_size=1,
    max_size=150,
)


@PROPERTY
@given(bars_strategy, periods)
def test_atr_is_wilder_atr(bars: list[tuple[float, float, float]], n: int) -> None:
    atr = ATR(n)
    got = [atr.update(h, lo, c) for h, lo, c in bars]
    assert_matches(got, ref_atr(bars, n), scale_of([b[0] for b in bars]))


@PROPERTY
@given(cents, st.integers(2, 30), st.sampled_from([0.5, 1.0, 2.0, 2.5]))
def test_bollinger_bands_use_population_std(xs: list[float], n: int, k: float) -> None:
    mid, std = pd.Series(xs).rolling(n).mean(), ref_std(xs, n)
    want = {"middle": mid, "upper": mid + k * std, "lower": mid - k * std}
    got = feed_all(BollingerBands(n, k).update, xs)
    for field in Bands._fields:
        column = [None if g is None else getattr(g, field) for g in got]
        assert_matches(column, want[field].to_numpy(), scale_of(xs))


@PROPERTY
@given(prices, periods)
def test_rolling_max_and_min(xs: list[float], n: int) -> None:
    s = pd.Series(xs)
    assert_matches(feed_all(RollingMax(n).update, xs), s.rolling(n).max().to_numpy(), 1.0)
    assert_matches(feed_all(RollingMin(n).update, xs), s.rolling(n).min().to_numpy(), 1.0)


@PROPERTY
@given(cents, st.integers(2, 30))
def test_zscore_is_population_zscore(xs: list[float], n: int) -> None:
    assert_matches(feed_all(ZScore(n).update, xs), ref_zscore(xs, n), 1.0)


# ------------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize(
    ("indicator", "warmup"),
    [
        (SMA(5), 4),
        (EMA(5), 4),
        (WMA(5), 4),
        (RSI(14), 14),
        (MACD(), 33),
        (MACD(3, 5, 2), 5),
        (ATR(14), 14),
        (BollingerBands(20), 19),
        (RollingMax(1), 0),
        (RollingMin(3), 2),
        (ZScore(10), 9),
    ],
)
def test_warmup_is_the_number_of_bars_without_a_value(indicator: Any, warmup: int) -> None:
    assert indicator.warmup == warmup
    results = []
    for i in range(warmup + 3):
        x = 100.0 + (i % 7) - (i % 3)
        results.append(
            indicator.update(x + 1, x - 1, x) if isinstance(indicator, ATR) else indicator.update(x)
        )
        assert indicator.ready == (i >= warmup)
        assert indicator.value == results[-1]
    assert [r is None for r in results] == [True] * warmup + [False] * 3


def test_reset_starts_over() -> None:
    for ind in (SMA(3), EMA(3), WMA(3), RSI(3), MACD(2, 3, 2), BollingerBands(3), ZScore(3)):
        first = feed_all(ind.update, [5.0, 7.0, 6.0, 9.0, 8.0])
        ind.reset()
        assert not ind.ready and ind.value is None
        assert feed_all(ind.update, [5.0, 7.0, 6.0, 9.0, 8.0]) == first, ind
    for ext in (RollingMax(2), RollingMin(2)):
        first = feed_all(ext.update, [5.0, 7.0, 6.0])
        ext.reset()
        assert feed_all(ext.update, [5.0, 7.0, 6.0]) == first
    atr = ATR(2)
    first = [atr.update(h, h - 2, h - 1) for h in (10.0, 12.0, 11.0, 15.0)]
    atr.reset()
    assert [atr.update(h, h - 2, h - 1) for h in (10.0, 12.0, 11.0, 15.0)] == first


def test_known_values() -> None:
    assert feed_all(SMA(3).update, [1, 2, 3, 4]) == [None, None, 2.0, 3.0]
    assert feed_all(WMA(3).update, [1, 2, 3, 4]) == [None, None, 14 / 6, 20 / 6]
    assert feed_all(EMA(3).update, [2, 4, 8])[-1] == 5.5  # 2 -> 3 -> 5.5 with alpha 0.5
    assert feed_all(RSI(2).update, [10, 11, 12, 11]) == [None, None, 100.0, 50.0]
    assert feed_all(RSI(2).update, [10, 10, 10])[-1] == 50.0  # nothing moved
    assert feed_all(RollingMax(2).update, [3, 1, 2, 5]) == [None, 3, 2, 5]
    assert feed_all(RollingMin(2).update, [3, 1, 2, 5]) == [None, 1, 1, 2]
    atr = ATR(2)
    got = [atr.update(h, lo, c) for h, lo, c in [(11, 9, 10), (12, 10, 11), (15, 11, 14)]]
    assert got == [None, None, 3.0]  # true ranges 2 and 4 (high 15 - previous close 11)
    assert repr(SMA(3)) == "SMA(period=3, value=None)"


def test_equal_values_have_zero_deviation_exactly() -> None:
    z = ZScore(3)
    assert feed_all(z.update, [1.0, 2.0, 3.0, 3.0, 3.0, 3.0])[-2:] == [0.0, 0.0]
    bb = BollingerBands(3)
    assert feed_all(bb.update, [0.1, 0.7, 0.3, 0.3, 0.3, 0.3])[-1] == Bands(0.3, 0.3, 0.3)


def test_long_runs_do_not_drift() -> None:
    # A huge value leaves the window: running sums alone would keep its rounding error forever.
    xs = [1e16] + [1.0, 2.0, 4.0] * 20
    assert SMA(3).update(1e16) is None
    sma, wma, bb = SMA(3), WMA(3), BollingerBands(3)
    for x in xs:
        sma.update(x)
        wma.update(x)
        bb.update(x)
    assert sma.value == 7.0 / 3.0
    assert wma.value == (1.0 * 1 + 2.0 * 2 + 4.0 * 3) / 6.0
    assert bb.value is not None
    assert math.isclose(
        bb.value.upper - bb.value.middle, 2 * np.std([1.0, 2.0, 4.0]), rel_tol=1e-12
    )


def test_state_is_bounded() -> None:
    sma, mx = SMA(10), RollingMax(10)
    rng = np.random.default_rng(1)
    for x in rng.normal(100, 5, 20_000).tolist():
        sma.update(x)
        mx.update(x)
    assert len(sma._buf) == 10
    assert len(mx._vals) <= 10 and len(mx._idx) <= 10
    decreasing = RollingMax(5)
    feed_all(decreasing.update, [float(100 - i) for i in range(50)])
    assert len(decreasing._vals) == 5


def test_numpy_numbers_are_accepted() -> None:
    sma = SMA(np.int64(2))  # type: ignore[arg-type]
    assert sma.period == 2 and type(sma.period) is int
    assert feed_all(sma.update, list(np.array([1.0, 3.0]))) == [None, 2.0]


@pytest.mark.parametrize(
    ("build", "field", "value"),
    [
        (lambda: SMA(0), "period", 0),
        (lambda: SMA(2.5), "period", 2.5),  # type: ignore[arg-type]
        (lambda: SMA(True), "period", True),
        (lambda: SMA("5"), "period", "5"),  # type: ignore[arg-type]
        (lambda: EMA(-1), "period", -1),
        (lambda: WMA(0), "period", 0),
        (lambda: RSI(0), "period", 0),
        (lambda: ATR(0), "period", 0),
        (lambda: MACD(26, 12), "fast", 26),
        (lambda: MACD(12, 12), "fast", 12),
        (lambda: MACD(signal=0), "signal", 0),
        (lambda: MACD(slow=None), "slow", None),  # type: ignore[arg-type]
        (lambda: BollingerBands(1), "period", 1),
        (lambda: BollingerBands(20, 0), "k", 0),
        (lambda: BollingerBands(20, math.inf), "k", math.inf),
        (lambda: BollingerBands(20, True), "k", True),
        (lambda: ZScore(1), "period", 1),
        (lambda: RollingMax(0), "period", 0),
        (lambda: RollingMin(-3), "period", -3),
    ],
)
def test_bad_parameters_name_the_field(build: Callable[[], Any], field: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        build()
    assert info.value.field == field
    assert info.value.value is value or info.value.value == value
    assert field in str(info.value)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "cls", [SMA, EMA, WMA, RSI, BollingerBands, ZScore, RollingMax, RollingMin]
)
def test_non_finite_values_are_rejected(cls: type[Any], bad: float) -> None:
    ind = cls(2)
    feed_all(ind.update, [1.0] * ind.warmup)
    with pytest.raises(DataError) as info:
        ind.update(bad)
    assert (info.value.field, info.value.value) == ("value", bad) or math.isnan(bad)
    assert info.value.field == "value"
    assert cls.__name__ in info.value.reason
    assert ind.update(2.0) is not None  # the bad value left no trace


def test_macd_rejects_non_finite_values() -> None:
    macd = MACD(2, 3, 2)
    feed_all(macd.update, [1.0, 2.0, 3.0])
    with pytest.raises(DataError):
        macd.update(math.nan)
    assert macd.update(4.0) == feed_all(MACD(2, 3, 2).update, [1.0, 2.0, 3.0, 4.0])[-1]


def test_atr_rejects_bad_bars() -> None:
    atr = ATR(2)
    with pytest.raises(DataError) as info:
        atr.update(10.0, math.nan, 10.0)
    assert info.value.field == "low"
    with pytest.raises(DataError) as info:
        atr.update(9.0, 10.0, 9.5)
    assert (info.value.field, info.value.value) == ("high", 9.0)


# --------------------------------------------------------------------------- in a strategy


class Recorder(Strategy):
    """One SMA and one RSI per symbol, built in on_start; records what they say."""

    def on_start(self, ctx: Context) -> None:
        self.sma = {s: SMA(3) for s in ctx.symbols}
        self.rsi = {s: RSI(2) for s in ctx.symbols}
        self.seen: dict[str, list[tuple[float | None, float | None]]] = {s: [] for s in ctx.symbols}

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        sma = self.sma[bar.symbol].update(bar.close)
        rsi = self.rsi[bar.symbol].update(bar.close)
        self.seen[bar.symbol].append((sma, rsi))
        if rsi is not None and rsi < 50 and not ctx.position(bar.symbol).qty:
            ctx.buy(bar.symbol, 1)


def test_one_instance_per_symbol_in_a_strategy() -> None:
    closes = {"A": [10.0, 11.0, 12.0, 11.0, 13.0], "B": [50.0, 49.0, 48.0, 49.0, 47.0]}
    feed = BarFeed(
        BarFeed.from_arrays(
            sym, list(range(1, 6)), cs, [c + 1 for c in cs], [c - 1 for c in cs], cs, [1e6] * 5
        ).series[sym]
        for sym, cs in closes.items()
    )
    strategy = Recorder()
    SyncEngine(feed, strategy).run()
    for sym, cs in closes.items():
        got = strategy.seen[sym]
        assert_matches([g[0] for g in got], pd.Series(cs).rolling(3).mean().to_numpy(), 1.0)
        assert_matches([g[1] for g in got], ref_rsi(cs, 2), 1.0)
