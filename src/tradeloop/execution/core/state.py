"""The order state machine.

::

    new ──► accepted ──► partially_filled ──► filled
     │ │       │  │             │  ▲──┘ (more partial fills)
     │ │       │  │             ├──► canceled / expired / replaced
     │ │       │  └──► filled / canceled / expired / replaced / rejected
     │ └──► rejected / canceled
     └──► held ──► accepted (its entry filled) / canceled / expired / rejected

``held`` is an exit leg of a bracket or oto order waiting for its entry's first fill.

Terminal states (filled, canceled, expired, rejected, replaced) have no way out. Every change of
``Order.status`` goes through :func:`transition`, which raises :class:`InvalidTransitionError`
for anything not drawn above and leaves the order untouched when it does.
"""

from __future__ import annotations

from tradeloop.errors import InvalidTransitionError
from tradeloop.execution.types import Order, OrderStatus

__all__ = ["ALLOWED_TRANSITIONS", "can_transition", "transition"]

_S = OrderStatus

ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.NEW: frozenset({_S.ACCEPTED, _S.REJECTED, _S.CANCELED, _S.HELD}),
    _S.HELD: frozenset({_S.ACCEPTED, _S.CANCELED, _S.EXPIRED, _S.REJECTED}),
    _S.ACCEPTED: frozenset(
        {_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED, _S.REPLACED, _S.REJECTED}
    ),
    _S.PARTIALLY_FILLED: frozenset(
        {_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED, _S.REPLACED}
    ),
    _S.FILLED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.EXPIRED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.REPLACED: frozenset(),
}


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in ALLOWED_TRANSITIONS[current]


def transition(order: Order, target: OrderStatus, ts: int) -> None:
    """Move ``order`` to ``target`` at time ``ts`` or raise without changing it."""
    if target not in ALLOWED_TRANSITIONS[order.status]:
        raise InvalidTransitionError(order.id, order.status.value, target.value)
    order.status = target
    order.updated_at = ts
