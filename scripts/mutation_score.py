"""The mutation score of the pure core, per module, from the last ``mutmut run``.

    python scripts/mutation_score.py             # the table, and the survivors not explained
    python scripts/mutation_score.py --check     # ... and exit 1 below the committed floor

Score = killed / (mutants - listed equivalents). A timeout counts as killed (the tests noticed);
a mutant no test reaches counts as not killed. Equivalent mutants (no observable change) are listed
in ``mutation/equivalents.toml``, each with the line it changes and a one-line reason; an entry
matches a survivor by its function and that line, not by its number alone, so it survives the
renumbering an edit elsewhere in the function causes. The floor is ``mutation/floor.txt``: the
score reached (raise it as the tests get stronger, never lower it).

Run from the repository root, after ``mutmut run`` (``make mutation`` does both).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "mutation" / "equivalents.toml"
FLOOR = ROOT / "mutation" / "floor.txt"
CORE = Path("src/tradeloop/execution/core")

KILLED = {1, 3, 24, -24, 152, 255, 36, 37}  # killed, pytest error, timeouts, type check
SURVIVED = 0


def _change(name: str, path: Path) -> str:
    """The lines ``name`` changes, as mutmut shows them: ``-old / +new``."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diff = get_diff_for_mutant(name, path=path).splitlines()[2:]
    return " / ".join(
        line[0] + line[1:].strip() for line in diff if line[:1] in "+-" and line[1:].strip()
    )


def _function(name: str) -> str:
    return re.sub(r"__mutmut_\d+$", "", name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail below the floor in floor.txt")
    args = ap.parse_args()

    entries = tomllib.loads(EQUIVALENTS.read_text())["equivalent"] if EQUIVALENTS.exists() else []
    wanted = {(_function(e["mutant"]), e["change"]) for e in entries}
    used: set[tuple[str, str]] = set()

    rows = []
    unexplained: list[tuple[str, str]] = []
    unchecked = 0
    for meta in sorted((ROOT / "mutants" / CORE).glob("*.py.meta")):
        path = CORE / meta.name.removesuffix(".meta")
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        count: Counter[str] = Counter()
        for name, code in codes.items():
            if code is None:
                unchecked += 1
                count["unchecked"] += 1
            elif code in KILLED:
                count["killed"] += 1
            elif code == SURVIVED:
                key = (_function(name), _change(name, path))
                if key in wanted:
                    used.add(key)
                    count["equivalent"] += 1
                else:
                    count["survived"] += 1
                    unexplained.append((name, key[1]))
            else:  # no tests, suspicious, segfault, skipped: not killed
                count["other"] += 1
        rows.append((path.stem, len(codes), count))

    if not rows:
        print("no mutmut results under mutants/: run `make mutation`", file=sys.stderr)
        return 2
    head = f"{'module':<14}{'mutants':>8}{'killed':>8}{'equiv':>7}{'survived':>9}{'other':>7}"
    print(head + f"{'score':>9}")
    tot: Counter[str] = Counter()
    total = 0
    for mod, n, c in rows:
        tot.update(c)
        total += n
        den = n - c["equivalent"]
        score = 100.0 * c["killed"] / den if den else 100.0
        print(
            f"{mod:<14}{n:>8}{c['killed']:>8}{c['equivalent']:>7}{c['survived']:>9}"
            f"{c['other'] + c['unchecked']:>7}{score:>8.2f}%"
        )
    den = total - tot["equivalent"]
    score = 100.0 * tot["killed"] / den if den else 100.0
    print(
        f"{'total':<14}{total:>8}{tot['killed']:>8}{tot['equivalent']:>7}{tot['survived']:>9}"
        f"{tot['other'] + tot['unchecked']:>7}{score:>8.2f}%"
    )
    stale = [e["mutant"] for e in entries if (_function(e["mutant"]), e["change"]) not in used]
    if stale:
        print(f"\n{len(stale)} listed equivalents no longer survive as listed (killed or changed):")
        for name in stale:
            print(f"  {name}")
    if unexplained:
        print(f"\n{len(unexplained)} survivors, neither killed nor listed as equivalent:")
        for name, change in unexplained:
            print(f"  {name}: {change}")

    if not args.check:
        return 0
    if unchecked:
        print(f"\nFAIL: {unchecked} mutants were not run (an interrupted run?)", file=sys.stderr)
        return 1
    floor = float(FLOOR.read_text().split()[0])
    if score + 1e-9 < floor:
        print(f"\nFAIL: mutation score {score:.2f}% < floor {floor:.2f}%", file=sys.stderr)
        return 1
    print(f"\nmutation score {score:.2f}% >= floor {floor:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
