"""Generate tradeloop's embedded sample bars (``src/tradeloop/data/sample/*.csv.gz``).

Run once; the committed files are the source of truth and tests never regenerate them. The output
is deterministic (fixed seed, gzip without a timestamp), so re-running gives identical bytes.

    python scripts/make_sample.py [OUTPUT_DIR]

Prices are geometric random walks whose drift switches between bull, flat and bear regimes (a
persistent Markov chain), with a different volatility per symbol. Bars satisfy
``low <= min(open, close) <= max(open, close) <= high``, prices have 2 decimals and volumes are
integers (U-shaped over the session for minute bars).
"""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

SEED = 20240229
OUT_DIR = Path(__file__).resolve().parents[1] / "src" / "tradeloop" / "data" / "sample"

# symbol: (first price, annual volatility, average daily volume)
SYMBOLS: dict[str, tuple[float, float, float]] = {
    "ACME": (120.0, 0.22, 2_000_000),
    "BOLT": (45.0, 0.35, 4_500_000),
    "CRUX": (210.0, 0.28, 900_000),
    "DYNA": (30.0, 0.45, 6_000_000),
}
REGIME_DRIFT = np.array([0.45, 0.0, -0.35])  # annualised drift of the bull, flat, bear regimes
TRADING_DAYS = 252
MINUTES = 390
GOOD_FRIDAY_2024 = "2024-03-29"  # NYSE holiday: no session

Floats = npt.NDArray[np.float64]


def regimes(rng: np.random.Generator, n: int, stay: float) -> npt.NDArray[np.int64]:
    """A Markov chain over the 3 regimes: keep the current one with probability ``stay``."""
    out = np.empty(n, dtype=np.int64)
    state = int(rng.integers(3))
    switch = rng.random(n) > stay
    jumps = rng.integers(1, 3, size=n)  # move to one of the two other regimes
    for i in range(n):
        if switch[i]:
            state = (state + int(jumps[i])) % 3
        out[i] = state
    return out


def ohlc(
    rng: np.random.Generator, opens: Floats, closes: Floats, wick: float
) -> tuple[Floats, Floats, Floats, Floats]:
    """Round to cents and add wicks, keeping ``low <= open, close <= high``."""
    o, c = np.round(opens, 2), np.round(closes, 2)
    up = np.abs(rng.normal(0.0, wick, len(o)))
    down = np.abs(rng.normal(0.0, wick, len(o)))
    h = np.maximum(np.round(np.maximum(o, c) * np.exp(up), 2), np.maximum(o, c))
    lo = np.minimum(np.round(np.minimum(o, c) * np.exp(-down), 2), np.minimum(o, c))
    return o, h, lo, c


def daily(rng: np.random.Generator) -> pd.DataFrame:
    days = pd.bdate_range("2020-01-02", "2023-12-29")
    stamps = (days + pd.Timedelta(hours=21)).strftime("%Y-%m-%dT%H:%M:%SZ")
    n, dt = len(days), 1.0 / TRADING_DAYS
    frames = []
    for symbol, (price, vol, avg_volume) in SYMBOLS.items():
        drift = REGIME_DRIFT[regimes(rng, n, stay=0.985)]
        sd = vol * np.sqrt(dt)
        gaps = rng.normal(0.0, 0.3 * sd, n)
        moves = (drift - 0.5 * vol**2) * dt + rng.normal(0.0, 0.95 * sd, n)
        log_close = np.log(price) + np.cumsum(gaps + moves)
        closes = np.exp(log_close)
        opens = np.exp(log_close - moves)
        o, h, lo, c = ohlc(rng, opens, closes, 0.5 * sd)
        activity = 1.0 + np.abs(gaps + moves) / sd  # busier on big moves
        volume = np.round(avg_volume * activity / 2.0 * rng.lognormal(0.0, 0.3, n))
        frames.append(frame(stamps, symbol, o, h, lo, c, volume))
    return pd.concat(frames)


def minute(rng: np.random.Generator) -> pd.DataFrame:
    days = pd.bdate_range("2024-03-01", "2024-03-29")
    days = days[days != pd.Timestamp(GOOD_FRIDAY_2024)]
    stamps = np.concatenate(
        [
            pd.date_range(f"{d.date()} 09:30", periods=MINUTES, freq="min", tz="America/New_York")
            .tz_convert("UTC")
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_numpy()
            for d in days
        ]
    )
    n, dt = len(stamps), 1.0 / (TRADING_DAYS * MINUTES)
    first_minute = np.arange(n) % MINUTES == 0
    x = (np.arange(n) % MINUTES - (MINUTES - 1) / 2) / ((MINUTES - 1) / 2)
    u_shape = 0.5 + 2.0 * x**2  # busy open and close, quiet lunch; averages ~1.2
    frames = []
    for symbol, (price, vol, avg_volume) in SYMBOLS.items():
        # Intraday trends: regimes last ~ 2 hours; drift strong enough to trend within a session.
        drift = 20.0 * REGIME_DRIFT[regimes(rng, n, stay=0.992)]
        sd = vol * np.sqrt(dt)
        gaps = np.where(first_minute, rng.normal(0.0, 0.5 * vol / np.sqrt(TRADING_DAYS), n), 0.0)
        gaps += rng.normal(0.0, 0.1 * sd, n)
        moves = (drift - 0.5 * vol**2) * dt + rng.normal(0.0, sd, n)
        log_close = np.log(price) + np.cumsum(gaps + moves)
        closes = np.exp(log_close)
        opens = np.exp(log_close - moves)
        o, h, lo, c = ohlc(rng, opens, closes, 0.6 * sd)
        per_minute = avg_volume / MINUTES / 1.2
        volume = np.maximum(np.round(per_minute * u_shape * rng.lognormal(0.0, 0.4, n)), 1.0)
        frames.append(frame(stamps, symbol, o, h, lo, c, volume))
    return pd.concat(frames)


def frame(
    stamps: npt.ArrayLike,
    symbol: str,
    o: Floats,
    h: Floats,
    lo: Floats,
    c: Floats,
    volume: Floats,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": stamps,
            "symbol": symbol,
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": volume.astype(np.int64),
        }
    )


def write(df: pd.DataFrame, path: Path) -> None:
    """Rows by timestamp then symbol, as gzipped CSV with a fixed (zero) gzip timestamp."""
    df = df.sort_values(["timestamp", "symbol"], kind="stable")
    assert (df["low"] >= 1.0).all(), "prices drifted too low for 2-decimal rounding"
    text = df.to_csv(index=False, float_format="%.2f", lineterminator="\n")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("ascii"))
    path.write_bytes(buf.getvalue())
    print(f"{path}: {len(df)} rows, {path.stat().st_size / 1024:.0f} KiB")


def main(out_dir: Path = OUT_DIR) -> None:
    rng = np.random.Generator(np.random.PCG64(SEED))
    out_dir.mkdir(parents=True, exist_ok=True)
    write(daily(rng), out_dir / "daily.csv.gz")
    write(minute(rng), out_dir / "minute.csv.gz")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR)
