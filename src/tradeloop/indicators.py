"""Incremental technical indicators for ``on_bar``: O(1) per bar, the same code in both engines.

Each indicator is a small slotted object that is fed one value per bar and keeps only what it
needs (at most one window of values). ``update(...)`` returns the current value, or ``None``
while the indicator is warming up; the last result is also available as :attr:`value`, and
:attr:`ready` says whether there is one. :attr:`warmup` is the number of bars that return
``None`` before the first value, so ``warmup + 1`` bars are needed to get one.

=====================  ================================================  =====================
indicator              ``update`` takes -> returns                       ``warmup``
=====================  ================================================  =====================
``SMA(period)``        value -> mean of the last ``period`` values       ``period - 1``
``EMA(period)``        value -> exponential mean, alpha = 2/(period+1)   ``period - 1``
``WMA(period)``        value -> linearly weighted mean (newest: period)  ``period - 1``
``RSI(period=14)``     value -> Wilder's RSI, 0..100                     ``period``
``MACD(12, 26, 9)``    value -> ``MACDValue(line, signal, histogram)``   ``slow + signal - 2``
``ATR(period=14)``     high, low, close -> Wilder's average true range   ``period``
``BollingerBands``     value -> ``Bands(middle, upper, lower)``          ``period - 1``
``RollingMax(period)`` value -> max of the last ``period`` values        ``period - 1``
``RollingMin(period)`` value -> min of the last ``period`` values        ``period - 1``
``ZScore(period)``     value -> (value - mean) / std over the window     ``period - 1``
=====================  ================================================  =====================

Definitions (each is tested against a pandas reference in ``tests/test_indicators.py``):

* ``EMA`` is pandas' ``ewm(span=period, adjust=False)``: seeded with the first value, then
  ``ema += alpha * (x - ema)``; it is reported from the ``period``-th value on.
* ``RSI`` and ``ATR`` use Wilder's smoothing (alpha = 1/period) seeded with the plain mean of
  the first ``period`` gains/losses or true ranges, as TA-Lib and most charting tools do. The
  first bar only provides a previous close, hence ``warmup = period``. The RSI is
  ``100 * avg_gain / (avg_gain + avg_loss)``: 100 when nothing fell, 50 when nothing moved. The
  true range is ``max(high - low, |high - prev_close|, |low - prev_close|)``.
* ``MACD`` is the usual pandas recipe: ``line = EMA(fast) - EMA(slow)``, ``signal = EMA(signal)``
  of the line, ``histogram = line - signal``, all computed from the first bar (as ``EMA``); the
  first value comes once both the slow EMA and the signal have had their periods (TA-Lib's
  lookback, 33 bars for 12/26/9).
* ``BollingerBands`` and ``ZScore`` use the **population** standard deviation (``ddof=0``, as
  Bollinger defined the bands and TA-Lib computes them): ``middle = SMA``, ``upper/lower =
  middle +/- k * std``. A window of equal values has ``std = 0`` exactly and a z-score of 0.
* ``RollingMax``/``RollingMin`` keep a monotonic deque: amortised O(1) per value.

Running sums are re-added exactly (``math.fsum``) once per window, so nothing drifts on a long
live run; everything else is O(1) arithmetic on preallocated state. Parameters are checked when
the indicator is built (:class:`~tradeloop.errors.ConfigError` naming the parameter and value);
a value that is not a finite number raises :class:`~tradeloop.errors.DataError`.

Use them from a strategy with one instance per symbol, built in ``on_start``::

    from tradeloop import Context, Strategy
    from tradeloop.execution.types import Bar
    from tradeloop.indicators import RSI, SMA


    class RsiDip(Strategy):
        period: int = 14
        trend: int = 50

        def on_start(self, ctx: Context) -> None:
            self.rsi = {s: RSI(self.period) for s in ctx.symbols}
            self.sma = {s: SMA(self.trend) for s in ctx.symbols}

        def on_bar(self, ctx: Context, bar: Bar) -> None:
            rsi = self.rsi[bar.symbol].update(bar.close)
            sma = self.sma[bar.symbol].update(bar.close)
            if rsi is None or sma is None:  # still warming up
                return
            if rsi < 30 and bar.close > sma and not ctx.position(bar.symbol).qty:
                ctx.buy(bar.symbol, 10)

The strategy's first signal can come at bar ``max(RSI(14).warmup, SMA(50).warmup) + 1`` = 50;
to start trading at once, feed the indicators earlier data first (``ind.update(x)`` for each).
"""

from __future__ import annotations

import math
import operator
from collections import deque
from typing import Generic, NamedTuple, TypeVar

from tradeloop.errors import ConfigError, DataError

__all__ = [
    "ATR",
    "EMA",
    "MACD",
    "RSI",
    "SMA",
    "WMA",
    "Bands",
    "BollingerBands",
    "MACDValue",
    "RollingMax",
    "RollingMin",
    "ZScore",
]

T = TypeVar("T")

_CANCELLATION = 1e-4  # re-add a window whose squared deviations fell this far below their peak


class MACDValue(NamedTuple):
    """One MACD reading: ``line = EMA(fast) - EMA(slow)``, ``signal``, ``histogram``."""

    line: float
    signal: float
    histogram: float


class Bands(NamedTuple):
    """One Bollinger reading: ``middle`` (the SMA) and ``middle +/- k * std``."""

    middle: float
    upper: float
    lower: float


def _int_param(owner: str, name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, or a ConfigError naming ``name``."""
    if not isinstance(value, bool):
        try:
            number = operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            pass
        else:
            if number >= minimum:
                return int(number)
    raise ConfigError(name, value, f"{owner} {name} must be an integer >= {minimum}")


def _not_finite(owner: object, field: str, value: object) -> DataError:
    return DataError(field, value, f"{type(owner).__name__} needs a finite number")


class _Indicator(Generic[T]):
    """What every indicator has: :attr:`value`, :attr:`ready`, :attr:`warmup`, ``reset()``."""

    __slots__ = ("_value", "warmup")

    def __init__(self, warmup: int) -> None:
        self.warmup: int = warmup
        """Updates that return ``None`` before the first value (``warmup + 1`` bars needed)."""
        self._value: T | None = None

    @property
    def value(self) -> T | None:
        """The latest value, ``None`` while warming up."""
        return self._value

    @property
    def ready(self) -> bool:
        """Whether the indicator has produced a value."""
        return self._value is not None

    def reset(self) -> None:
        """Forget every value seen, as if just built."""
        self._value = None

    def _params(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._params()}, value={self._value!r})"


class _Windowed(_Indicator[T]):
    """An indicator over the last ``period`` values, held in a preallocated ring buffer."""

    __slots__ = ("_buf", "_i", "_n", "period")

    def __init__(self, period: int, minimum: int = 1) -> None:
        self.period: int = _int_param(type(self).__name__, "period", period, minimum)
        super().__init__(self.period - 1)
        self._buf: list[float] = [0.0] * self.period
        self._i = 0  # next slot to write (the oldest value once the window is full)
        self._n = 0  # values held, up to period

    def reset(self) -> None:
        super().reset()
        self._buf = [0.0] * self.period
        self._i = 0
        self._n = 0

    def _params(self) -> str:
        return f"period={self.period}"


# ---------------------------------------------------------------------------------- averages


class SMA(_Windowed[float]):
    """Simple moving average of the last ``period`` values (pandas ``rolling(period).mean()``)."""

    __slots__ = ("_sum",)

    def __init__(self, period: int = 20) -> None:
        super().__init__(period)
        self._sum = 0.0

    def reset(self) -> None:
        super().reset()
        self._sum = 0.0

    def update(self, value: float) -> float | None:
        """Add one value; returns the mean, or ``None`` for the first ``period - 1`` values."""
        if value - value != 0.0:
            raise _not_finite(self, "value", value)
        buf, i, p = self._buf, self._i, self.period
        if self._n < p:
            self._n += 1
            self._sum += value
        else:
            self._sum += value - buf[i]
        buf[i] = value
        i += 1
        if i == p:
            i = 0
            if self._n == p:
                self._sum = math.fsum(buf)  # once per window: no drift
        self._i = i
        if self._n < p:
            return None
        v = self._sum / p
        self._value = v
        return v


class EMA(_Indicator[float]):
    """Exponential moving average, alpha = 2 / (period + 1): pandas
    ``ewm(span=period, adjust=False).mean()``, seeded with the first value and reported from the
    ``period``-th on."""

    __slots__ = ("_alpha", "_beta", "_ema", "_left", "_norm", "period")

    def __init__(self, period: int = 20) -> None:
        self.period: int = _int_param("EMA", "period", period)
        super().__init__(self.period - 1)
        self._alpha = 2.0 / (self.period + 1)
        self._beta = 1.0 - self._alpha
        self._norm = self._beta + self._alpha  # 1 up to rounding; divided by as pandas does
        self._ema = math.nan
        self._left = self.period  # values still to see before the first result

    def reset(self) -> None:
        super().reset()
        self._ema = math.nan
        self._left = self.period

    def _params(self) -> str:
        return f"period={self.period}"

    def update(self, value: float) -> float | None:
        """Add one value; returns the EMA, or ``None`` for the first ``period - 1`` values."""
        if value - value != 0.0:
            raise _not_finite(self, "value", value)
        ema = self._ema
        if ema != ema:  # first value: the seed
            ema = float(value)
        elif ema != value:
            ema = (self._beta * ema + self._alpha * value) / self._norm
        self._ema = ema
        if self._left > 1:
            self._left -= 1
            return None
        self._left = 0
        self._value = ema
        return ema


class WMA(_Windowed[float]):
    """Linearly weighted moving average: weights 1 (oldest) .. ``period`` (newest), divided by
    ``period * (period + 1) / 2``."""

    __slots__ = ("_denom", "_sum", "_wsum")

    def __init__(self, period: int = 20) -> None:
        super().__init__(period)
        self._denom = self.period * (self.period + 1) / 2.0
        self._sum = 0.0  # plain sum of the window
        self._wsum = 0.0  # weighted sum of the window

    def reset(self) -> None:
        super().reset()
        self._sum = 0.0
        self._wsum = 0.0

    def update(self, value: float) -> float | None:
        """Add one value; returns the WMA, or ``None`` for the first ``period - 1`` values."""
        if value - value != 0.0:
            raise _not_finite(self, "value", value)
        buf, i, p = self._buf, self._i, self.period
        if self._n < p:
            self._n += 1
            self._wsum += self._n * value
            self._sum += value
        else:
            # every weight drops by one (minus the window's sum), the new value weighs p
            self._wsum += p * value - self._sum
            self._sum += value - buf[i]
        buf[i] = value
        i += 1
        if i == p:
            i = 0  # the buffer is now in order, oldest first: re-add exactly
            if self._n == p:
                self._sum = math.fsum(buf)
                self._wsum = math.fsum([(k + 1) * x for k, x in enumerate(buf)])
        self._i = i
        if self._n < p:
            return None
        v = self._wsum / self._denom
        self._value = v
        return v


# --------------------------------------------------------------------------- Wilder smoothing


class RSI(_Indicator[float]):
    """Wilder's relative strength index, 0..100.

    Gains and losses of close-to-close changes are averaged with Wilder's smoothing
    (``avg = (avg * (period - 1) + x) / period``) seeded with the plain mean of the first
    ``period`` changes. ``RSI = 100 * avg_gain / (avg_gain + avg_loss)`` (100 if nothing fell,
    50 if nothing moved). The first value comes with the ``period + 1``-th close.
    """

    __slots__ = ("_gain", "_left", "_loss", "_prev", "period")

    def __init__(self, period: int = 14) -> None:
        self.period: int = _int_param("RSI", "period", period)
        super().__init__(self.period)
        self._prev = math.nan
        self._gain = 0.0
        self._loss = 0.0
        self._left = self.period  # changes still to collect for the seed

    def reset(self) -> None:
        super().reset()
        self._prev = math.nan
        self._gain = 0.0
        self._loss = 0.0
        self._left = self.period

    def _params(self) -> str:
        return f"period={self.period}"

    def update(self, value: float) -> float | None:
        """Add one close; returns the RSI, or ``None`` for the first ``period`` closes."""
        if value - value != 0.0:
            raise _not_finite(self, "value", value)
        prev = self._prev
        self._prev = value
        if prev != prev:
            return None
        change = value - prev
        gain = change if change > 0.0 else 0.0
        loss = -change if change < 0.0 else 0.0
        p = self.period
        if self._left:
            self._gain += gain
            self._loss += loss
            self._left -= 1
            if self._left:
                return None
            self._gain /= p
            self._loss /= p
        else:
            self._gain = (self._gain * (p - 1) + gain) / p
            self._loss = (self._loss * (p - 1) + loss) / p
        total = self._gain + self._loss
        rsi = 100.0 * self._gain / total if total > 0.0 else 50.0
        self._value = rsi
        return rsi


class ATR(_Indicator[float]):
    """Wilder's average true range of ``(high, low, close)`` bars.

    The true range of a bar is ``max(high - low, |high - prev_close|, |low - prev_close|)``, so
    the first bar only provides a close; the ATR is the plain mean of the first ``period`` true
    ranges, then Wilder's smoothing. The first value comes with the ``period + 1``-th bar.
    """

    __slots__ = ("_atr", "_left", "_prev", "period")

    def __init__(self, period: int = 14) -> None:
        self.period: int = _int_param("ATR", "period", period)
        super().__init__(self.period)
        self._prev = math.nan
        self._atr = 0.0
        self._left = self.period

    def reset(self) -> None:
        super().reset()
        self._prev = math.nan
        self._atr = 0.0
        self._left = self.period

    def _params(self) -> str:
        return f"period={self.period}"

    def update(self, high: float, low: float, close: float) -> float | None:
        """Add one bar; returns the ATR, or ``None`` for the first ``period`` bars."""
        total = high + low + close
        if total - total != 0.0:
            bad = next(
                (n, v) for n, v in (("high", high), ("low", low), ("close", close)) if v - v != 0
            )
            raise _not_finite(self, *bad)
        if high < low:
            raise DataError("high", high, f"ATR: high is below low={low!r}")
        prev = self._prev
        self._prev = close
        if prev != prev:
            return None
        tr = high - low
        up = high - prev if high > prev else prev - high
        down = low - prev if low > prev else prev - low
        if up > tr:
            tr = up
        if down > tr:
            tr = down
        p = self.period
        if self._left:
            self._atr += tr
            self._left -= 1
            if self._left:
                return None
            self._atr /= p
        else:
            self._atr = (self._atr * (p - 1) + tr) / p
        self._value = self._atr
        return self._atr


# ------------------------------------------------------------------------------------- MACD


class MACD(_Indicator[MACDValue]):
    """Moving average convergence/divergence: ``line = EMA(fast) - EMA(slow)``, ``signal =
    EMA(signal)`` of the line, ``histogram = line - signal``.

    The pandas recipe exactly (``ewm(span=..., adjust=False)`` on the closes, then on the line,
    all from the first bar); values are reported once the slow EMA and then the signal have had
    their periods: ``warmup = slow + signal - 2``.
    """

    __slots__ = ("_fast", "_left", "_sig", "_slow", "_weights", "fast", "signal", "slow")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self.fast: int = _int_param("MACD", "fast", fast)
        self.slow: int = _int_param("MACD", "slow", slow)
        self.signal: int = _int_param("MACD", "signal", signal)
        if self.fast >= self.slow:
            raise ConfigError("fast", fast, f"MACD fast must be < slow={self.slow}")
        super().__init__(self.slow + self.signal - 2)
        # (alpha, 1 - alpha, their sum) for the fast, slow and signal EMAs
        self._weights = tuple(
            (a, 1.0 - a, (1.0 - a) + a)
            for a in (2.0 / (n + 1) for n in (self.fast, self.slow, self.signal))
        )
        self._fast = math.nan
        self._slow = math.nan
        self._sig = math.nan
        self._left = self.warmup

    def reset(self) -> None:
        super().reset()
        self._fast = self._slow = self._sig = math.nan
        self._left = self.warmup

    def _params(self) -> str:
        return f"fast={self.fast}, slow={self.slow}, signal={self.signal}"

    def update(self, value: float) -> MACDValue | None:
        """Add one close; returns ``MACDValue(line, signal, histogram)``, or ``None`` for the
        first ``slow + signal - 2`` closes."""
        if value - value != 0.0:
            raise _not_finite(self, "value", value)
        (af, bf, nf), (as_, bs, ns), (ag, bg, ng) = self._weights
        fast = self._fast
        if fast != fast:  # the first value seeds all three
            self._fast = self._slow = float(value)
            self._sig = 0.0
        else:
            if fast != value:
                self._fast = (bf * fast + af * value) / nf
            if self._slow != value:
                self._slow = (bs * self._slow + as_ * value) / ns
            line = self._fast - self._slow
            if self._sig != line:
                self._sig = (bg * self._sig + ag * line) / ng
        if self._left:
            self._left -= 1
            return None
        line = self._fast - self._slow
        out = MACDValue(line, self._sig, line - self._sig)
        self._value = out
        return out


# ------------------------------------------------------------------------ mean and deviation


class _MeanStd(_Windowed[T]):
    """Rolling mean and population standard deviation, O(1) per value.

    Welford's update for a sliding window, re-added exactly (two passes with ``math.fsum``) once
    per window and whenever the squared deviations fall below 1e-4 of their peak (a large value
    left the window: amortised O(1), as the peak must be built up again first). The relative
    error stays near ``1e4 * period`` ulps. A window of equal values has a standard deviation of
    exactly 0.
    """

    __slots__ = ("_last", "_m2", "_mean", "_peak", "_run", "_std", "_sum")

    def __init__(self, period: int) -> None:
        super().__init__(period, minimum=2)
        self._sum = 0.0
        self._mean = 0.0
        self._m2 = 0.0  # sum of squared deviations from the mean
        self._peak = 0.0  # the largest _m2 since it was last added up exactly
        self._std = 0.0
        self._last = math.nan
        self._run = 0  # how many equal values end the series

    def reset(self) -> None:
        super().reset()
        self._sum = self._mean = self._m2 = self._peak = self._std = 0.0
        self._last = math.nan
        self._run = 0

    def _push(self, x: float) -> bool:
        """Add ``x``; ``True`` once the window is full (then ``_mean`` and ``_std`` are set)."""
        if x - x != 0.0:
            raise _not_finite(self, "value", x)
        if x == self._last:
            self._run += 1
        else:
            self._run = 1
            self._last = x
        buf, i, p = self._buf, self._i, self.period
        old_mean = self._mean
        if self._n < p:
            n = self._n = self._n + 1
            s = self._sum + x
            mean = s / n
            self._m2 += (x - old_mean) * (x - mean)
        else:
            y = buf[i]
            s = self._sum + (x - y)
            mean = s / p
            self._m2 += (x - y) * (x - mean + y - old_mean)
        buf[i] = x
        i += 1
        m2 = self._m2
        if i == p:
            i = 0
            exact = self._n == p
        else:
            # A value that dominated the window has left: what remains is small next to the
            # rounding error it left behind, so add the window up again.
            exact = m2 < self._peak * _CANCELLATION and self._n == p
        if exact:
            s = math.fsum(buf)
            mean = s / p
            self._m2 = m2 = math.fsum([(v - mean) * (v - mean) for v in buf])
            self._peak = m2
        elif m2 > self._peak:
            self._peak = m2
        self._i = i
        self._sum = s
        self._mean = mean
        if self._n < p:
            return False
        self._std = 0.0 if self._run >= p or m2 <= 0.0 else math.sqrt(m2 / p)
        return True


class BollingerBands(_MeanStd[Bands]):
    """Bollinger bands: ``middle`` = SMA(period), ``upper``/``lower`` = middle +/- ``k`` times the
    **population** standard deviation of the window (``ddof=0``)."""

    __slots__ = ("k",)

    def __init__(self, period: int = 20, k: float = 2.0) -> None:
        super().__init__(period)
        if isinstance(k, bool) or not isinstance(k, int | float) or not 0 < k < math.inf:
            raise ConfigError("k", k, "BollingerBands k must be a finite number > 0")
        self.k = float(k)

    def _params(self) -> str:
        return f"period={self.period}, k={self.k}"

    def update(self, value: float) -> Bands | None:
        """Add one value; returns ``Bands(middle, upper, lower)``, or ``None`` for the first
        ``period - 1`` values."""
        if not self._push(value):
            return None
        mid = self._mean
        width = self.k * self._std
        out = Bands(mid, mid + width, mid - width)
        self._value = out
        return out


class ZScore(_MeanStd[float]):
    """How many (population) standard deviations the value is from the window's mean, the value
    itself included; 0 when the window holds equal values."""

    __slots__ = ()

    def __init__(self, period: int = 20) -> None:
        super().__init__(period)

    def update(self, value: float) -> float | None:
        """Add one value; returns its z-score, or ``None`` for the first ``period - 1`` values."""
        if not self._push(value):
            return None
        std = self._std
        z = (value - self._mean) / std if std > 0.0 else 0.0
        self._value = z
        return z


# ------------------------------------------------------------------------------ rolling max/min


class _Extreme(_Indicator[float]):
    """Max or min of the last ``period`` values with a monotonic deque (amortised O(1))."""

    __slots__ = ("_count", "_idx", "_vals", "period")

    _is_max = True

    def __init__(self, period: int = 20) -> None:
        self.period: int = _int_param(type(self).__name__, "period", period)
        super().__init__(self.period - 1)
        self._vals: deque[float] = deque()  # candidates, best first
        self._idx: deque[int] = deque()  # their positions in the series
        self._count = 0

    def reset(self) -> None:
        super().reset()
        self._vals.clear()
        self._idx.clear()
        self._count = 0

    def _params(self) -> str:
        return f"period={self.period}"

    def update(self, value: float) -> float | None:
        """Add one value; returns the window's extreme, or ``None`` for the first
        ``period - 1`` values."""
        if value - value != 0.0:
            raise _not_finite(self, "value", value)
        vals, idx = self._vals, self._idx
        if self._is_max:
            while vals and vals[-1] <= value:
                vals.pop()
                idx.pop()
        else:
            while vals and vals[-1] >= value:
                vals.pop()
                idx.pop()
        t = self._count
        vals.append(value)
        idx.append(t)
        if idx[0] <= t - self.period:
            vals.popleft()
            idx.popleft()
        self._count = t + 1
        if t < self.warmup:
            return None
        out = vals[0]
        self._value = out
        return out


class RollingMax(_Extreme):
    """Highest of the last ``period`` values (feed ``bar.high`` for an N-bar high)."""

    __slots__ = ()


class RollingMin(_Extreme):
    """Lowest of the last ``period`` values (feed ``bar.low`` for an N-bar low)."""

    __slots__ = ()
    _is_max = False
