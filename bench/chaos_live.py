"""Chaos: the live engine against the loopback Alpaca server with every fault and a SIGKILL.

A strategy that trades often (``ChaosTrader``) runs on the asynchronous engine against the
loopback Alpaca server, which injects every kind of fault at random (429 bursts, 5xx and
timeouts after an order was accepted, dropped streams that lose fills, 406 on reconnect,
duplicate, reordered, unknown and malformed stream events). The engine process is killed with
SIGKILL mid-run and started again with the same config, resuming from its order journal. At the
end the journal is compared with the venue, order by order and fill by fill.

Prints: orders sent, faults injected by kind, duplicates (must be 0), fills lost (must be 0),
reconnects, 429s received, and the longest time a fill took to reach the strategy. Exits 1 if
anything differs.

Usage: ``python bench/chaos_live.py [--broker alpaca|binance|ib] [--end DAY] [--speed X]
[--rate P] [--kills K] [--seed S]``
(defaults: the whole minute sample, about 1,500 orders, one kill; a few minutes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tradeloop.data.sample import load_sample
from tradeloop.testing.chaos import DEFAULT_FAULTS, run_chaos


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--end", help="last day of data, e.g. 2024-03-05 (default: all of March)")
    ap.add_argument("--speed", type=float, default=2000.0, help="replay pace, x real time")
    ap.add_argument("--rate", type=float, default=0.08, help="chance to act on a bar")
    ap.add_argument("--kills", type=int, default=1, help="SIGKILLs of the engine")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--faults", default=None, help="fault plan (default: the broker's)")
    ap.add_argument("--broker", choices=["alpaca", "binance", "ib"], default="alpaca")
    ap.add_argument("--min-orders", type=int, default=1000)
    ap.add_argument("--workdir", help="keep the run's files here (default: a temp folder)")
    args = ap.parse_args(argv)

    feed = load_sample("minute", end=args.end)  # the sample's March 2024 minute bars
    with tempfile.TemporaryDirectory(prefix="tradeloop-chaos-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        print(
            f"chaos: {len(feed):,} bars of {', '.join(feed.symbols)} at {args.speed:g}x, "
            f"rate {args.rate}, {args.kills} kill(s), seed {args.seed}"
        )
        if args.broker == "binance":  # in-process, no SIGKILL (see testing/binance/chaos.py)
            from tradeloop.testing.binance.chaos import DEFAULT_BINANCE_FAULTS, run_binance_chaos

            report = run_binance_chaos(
                workdir,
                feed,
                speed=args.speed,
                rate=args.rate,
                faults=args.faults or DEFAULT_BINANCE_FAULTS,
                seed=args.seed,
                min_orders=args.min_orders,
                timeout=3600.0,
                echo=print,
            )
        elif args.broker == "ib":
            from tradeloop.testing.ib.chaos import DEFAULT_IB_FAULTS, run_ib_chaos

            report = run_ib_chaos(
                workdir,
                feed,
                speed=args.speed,
                rate=args.rate,
                kills=args.kills,
                faults=args.faults or DEFAULT_IB_FAULTS,
                seed=args.seed,
                min_orders=args.min_orders,
                timeout=3600.0,
                echo=print,
            )
        else:
            report = run_chaos(
                workdir,
                feed,
                speed=args.speed,
                rate=args.rate,
                kills=args.kills,
                faults=args.faults or DEFAULT_FAULTS,
                seed=args.seed,
                min_orders=args.min_orders,
                timeout=3600.0,
                echo=print,
            )
    for line in report.lines():
        print("  " + line)
    for problem in report.problems[:20]:
        print("  problem: " + problem)
    print("OK: nothing doubled, nothing lost" if report.ok else "FAILED")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
