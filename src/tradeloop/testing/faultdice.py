"""Seeded fault decisions shared by the loopback servers (Alpaca's and IB's).

A :class:`FaultDice` knows a fixed set of fault *kinds*; for each it keeps a probability, a count
of sure injections to come ("next N") and its own random stream, seeded from one seed, so a run
is reproducible given the seed and the sequence of candidates even when several kinds
interleave. ``counts`` holds how many of each were injected. :func:`parse_items` reads the text
form ``kind=P,kind=next:N,setting=value,seed=S``. The servers' fault plans hold one of these and
add their own settings; nothing here knows what a fault does on the wire.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from tradeloop.errors import ConfigError

__all__ = ["FaultDice", "check_next_count", "check_probability", "check_seed", "parse_items"]

_SEED_BITS = 63


def check_probability(field: str, value: object) -> float:
    """``value`` as a probability from 0 to 1, or :class:`ConfigError` naming ``field``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0.0 <= value <= 1.0
    ):
        raise ConfigError(field, value, "must be a probability from 0 to 1")
    return float(value)


def check_next_count(field: str, value: object) -> int:
    """``value`` as a count of sure injections (an integer >= 0)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{field}.next", value, "must be an integer >= 0")
    return value


def check_seed(value: object) -> int | random.Random | None:
    """A plan's seed: an integer, a ``random.Random`` to draw from, or ``None``."""
    if value is None or isinstance(value, random.Random):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError("faults.seed", value, "must be an integer (or a random.Random)")
    return value


class FaultDice:
    """Per-kind probabilities, sure counts and seeded random streams (see the module
    docstring). ``seed=None`` picks one at random and keeps it in :attr:`seed`."""

    def __init__(self, kinds: Sequence[str], seed: int | random.Random | None = None) -> None:
        self.kinds = tuple(kinds)
        self.probabilities: dict[str, float] = dict.fromkeys(self.kinds, 0.0)
        self.next: dict[str, int] = dict.fromkeys(self.kinds, 0)
        self.counts: dict[str, int] = dict.fromkeys(self.kinds, 0)
        self._rngs: dict[str, random.Random] = {}
        self.seed: int | random.Random = 0
        self.reseed(seed)

    def check_kind(self, kind: object) -> str:
        if not isinstance(kind, str) or kind not in self.kinds:
            raise ConfigError(
                "faults", kind, f"unknown fault kind; expected one of {', '.join(self.kinds)}"
            )
        return kind

    def reseed(self, seed: int | random.Random | None) -> None:
        """Restart every kind's random stream from ``seed``."""
        seed = check_seed(seed)
        if seed is None:
            seed = random.SystemRandom().getrandbits(_SEED_BITS)
        self.seed = seed
        for kind in self.kinds:
            if isinstance(seed, random.Random):
                self._rngs[kind] = random.Random(seed.getrandbits(64))
            else:
                self._rngs[kind] = random.Random(f"tradeloop-faults/{seed}/{kind}")

    def set(self, kind: str, *, probability: float | None = None, next: int | None = None) -> None:
        self.check_kind(kind)
        if probability is not None:
            self.probabilities[kind] = check_probability(f"faults.{kind}", probability)
        if next is not None:
            self.next[kind] = check_next_count(f"faults.{kind}", next)

    def clear(self) -> None:
        self.probabilities = dict.fromkeys(self.kinds, 0.0)
        self.next = dict.fromkeys(self.kinds, 0)

    def decide(self, kind: str) -> bool:
        """Inject ``kind`` at this candidate? A sure one if due, else a seeded draw."""
        due = self.next.get(kind, 0)
        if due > 0:
            self.next[kind] = due - 1
            return True
        p = self.probabilities.get(kind, 0.0)
        return p > 0.0 and self._rngs[kind].random() < p

    def record(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _number(field: str, text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ConfigError(field, text, "must be a number") from None


def parse_items(
    text: str, kinds: Sequence[str], settings: Sequence[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, str], int | None]:
    """The text form ``kind=P,kind=next:N,setting=value,seed=S`` -> (kind changes
    ``{"probability", "next"}``, settings as raw text, seed). Errors name the bad item."""
    if not isinstance(text, str):
        raise ConfigError("faults", text, "must be a string of name=value items")
    changes: dict[str, dict[str, Any]] = {}
    raw_settings: dict[str, str] = {}
    seed: int | None = None
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name or not value:
            raise ConfigError("faults", item, "expected name=value")
        if name in kinds:
            change = changes.setdefault(name, {})
            if value.lower().startswith("next:"):
                key, count_text = "next", value[5:].strip()
                try:
                    parsed: Any = int(count_text)
                except ValueError:
                    raise ConfigError(
                        f"faults.{name}.next", count_text, "must be an integer >= 0"
                    ) from None
                parsed = check_next_count(f"faults.{name}", parsed)
            else:
                key = "probability"
                parsed = check_probability(f"faults.{name}", _number(f"faults.{name}", value))
            if key in change:
                raise ConfigError(f"faults.{name}", value, f"{key} given twice")
            change[key] = parsed
        elif name in settings:
            if name in raw_settings:
                raise ConfigError(f"faults.{name}", value, "given twice")
            raw_settings[name] = value
        elif name == "seed":
            try:
                seed = int(value)
            except ValueError:
                raise ConfigError("faults.seed", value, "must be an integer") from None
        else:
            raise ConfigError(
                "faults",
                name,
                f"unknown fault kind or setting; expected one of {', '.join(kinds)}, "
                f"{', '.join((*settings, 'seed'))}",
            )
    return changes, raw_settings, seed
