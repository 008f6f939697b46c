"""Fault injection for the loopback IB server: prove the IB broker's reliability against it.

Faults disturb only the *delivery* of what TWS says, never the venue's truth: an order placed
exists once, every execution stays listed by reqExecutions, so a client can always reconcile
after it reconnects. The kinds (:data:`FAULT_KINDS`):

``drop_connection``
    The client's TCP connection is closed as an execution is about to be sent to it; that
    execution (and its commission report) is never delivered on that socket.
``reject``
    A placeOrder is answered with error 201 ``Order rejected - reason:loopback fault``; the venue
    does not take the order.
``delay``
    A placeOrder is taken only ``delay_seconds`` later (its openOrder/orderStatus come late: a
    client waiting for them times out and does not know whether the order exists).
``restart``
    At a bar, every connection is closed and new ones are refused for ``restart_downtime``
    seconds (TWS restarting, or its nightly reset).
``connectivity``
    At a bar, every client gets error 1100 (connectivity between IB and TWS lost), then 1102
    (restored, data maintained) ``connectivity_gap`` seconds later.

Decisions come from :class:`~tradeloop.testing.faultdice.FaultDice`: seeded per kind and
reproducible; ``counts`` holds what was injected.
"""

from __future__ import annotations

import math
from typing import Final

from tradeloop.errors import ConfigError
from tradeloop.testing.faultdice import FaultDice, parse_items

__all__ = ["FAULT_KINDS", "FAULT_SETTINGS", "IBFaultPlan", "parse_faults"]

FAULT_KINDS: Final = ("drop_connection", "reject", "delay", "restart", "connectivity")
FAULT_SETTINGS: Final = ("delay_seconds", "restart_downtime", "connectivity_gap")


def _seconds(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not value > 0
    ):
        raise ConfigError(f"faults.{name}", value, "must be a number of seconds > 0")
    return float(value)


class IBFaultPlan:
    """Which faults to inject and how often (see the module docstring)."""

    def __init__(
        self,
        probabilities: dict[str, float] | None = None,
        next: dict[str, int] | None = None,
        *,
        seed: int | None = None,
        delay_seconds: float = 3.0,
        restart_downtime: float = 1.0,
        connectivity_gap: float = 0.5,
    ) -> None:
        self.dice = FaultDice(FAULT_KINDS, seed)
        for kind, p in (probabilities or {}).items():
            self.dice.set(kind, probability=p)
        for kind, n in (next or {}).items():
            self.dice.set(kind, next=n)
        self.delay_seconds = _seconds("delay_seconds", delay_seconds)
        self.restart_downtime = _seconds("restart_downtime", restart_downtime)
        self.connectivity_gap = _seconds("connectivity_gap", connectivity_gap)

    @property
    def counts(self) -> dict[str, int]:
        return self.dice.counts

    @property
    def seed(self) -> object:
        return self.dice.seed

    def set(self, kind: str, *, probability: float | None = None, next: int | None = None) -> None:
        self.dice.set(kind, probability=probability, next=next)

    def clear(self) -> None:
        self.dice.clear()

    def inject(self, kind: str) -> bool:
        """Decide for one candidate of ``kind`` and count it if injected."""
        if self.dice.decide(kind):
            self.dice.record(kind)
            return True
        return False


def parse_faults(text: str) -> IBFaultPlan:
    """A plan from ``kind=P,kind=next:N,setting=seconds,seed=S`` items, e.g.
    ``"drop_connection=0.02,reject=0.01,delay=next:1,delay_seconds=2,seed=7"``."""
    kinds, settings, seed = parse_items(text, FAULT_KINDS, FAULT_SETTINGS)
    values: dict[str, float] = {}
    for name, raw in settings.items():
        try:
            values[name] = float(raw)
        except ValueError:
            raise ConfigError(f"faults.{name}", raw, "must be a number of seconds > 0") from None
    plan = IBFaultPlan(
        seed=seed,
        delay_seconds=values.get("delay_seconds", 3.0),
        restart_downtime=values.get("restart_downtime", 1.0),
        connectivity_gap=values.get("connectivity_gap", 0.5),
    )
    for kind, change in kinds.items():
        plan.set(kind, probability=change.get("probability"), next=change.get("next"))
    return plan
