"""Reconciliation: what the venue knows that the engine missed. Pure: no I/O, no event loop.

After a restart, and after every stream reconnect, the engine compares its own view of its
orders with the venue's (orders changed since a watermark, the account's fill activities, its
positions) and brings itself up to date. The rules (see the live rules): reconciliation only
*adopts and updates*; it never submits or cancels; each fill is applied once (by execution id,
and by cumulative quantity, since a venue's stream and its activity records may name the same
execution differently); a position that still does not match is *reported*, not traded away.

:func:`reconcile` takes plain values and returns a :class:`Plan`: the actions to apply, in venue
time order, and what could not be explained. The engine's async shell fetches the inputs and
applies the plan through its order manager, so every change reaches the strategy as the same
events a live stream would have delivered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tradeloop.execution.types import Fill, Order, OrderStatus

__all__ = [
    "Accept",
    "Adopt",
    "ApplyFill",
    "Finish",
    "LocalOrder",
    "Plan",
    "PositionMismatch",
    "VenueFill",
    "compare_positions",
    "reconcile",
]

_EPS = 1e-9
_TERMINAL_FROM_VENUE = frozenset(
    {OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED, OrderStatus.REPLACED}
)


@dataclass(frozen=True, slots=True)
class LocalOrder:
    """What the engine knows of one of its orders."""

    client_order_id: str
    status: OrderStatus
    filled_qty: float
    broker_order_id: str | None = None
    avg_fill_price: float | None = None


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One execution as the venue's records show it. ``cum_qty``: the order's filled quantity
    right after it (``None`` if the venue does not say)."""

    execution_id: str
    broker_order_id: str
    qty: float
    price: float
    ts: int
    cum_qty: float | None = None
    commission: float = 0.0


@dataclass(frozen=True, slots=True)
class Adopt:
    """An order of this engine (by its client-id prefix) the engine has no record of."""

    order: Order
    ts: int


@dataclass(frozen=True, slots=True)
class Accept:
    """The venue has an order the engine still holds as in flight (``new``), or a bracket leg
    it holds ``held`` that the venue has activated (its entry filled)."""

    client_order_id: str
    broker_order_id: str
    ts: int


@dataclass(frozen=True, slots=True)
class ApplyFill:
    """An execution the engine missed. ``fill.order_id`` is the venue's order id."""

    client_order_id: str
    fill: Fill
    ts: int


@dataclass(frozen=True, slots=True)
class Finish:
    """The venue ended an order the engine holds as open."""

    client_order_id: str
    status: OrderStatus
    ts: int
    reason: str | None = None
    replaced_by: str | None = None  # the venue's id of the replacement


Action = Adopt | Accept | ApplyFill | Finish


@dataclass(frozen=True, slots=True)
class PositionMismatch:
    """The venue's position differs from the engine's after reconciliation."""

    symbol: str
    engine_qty: float
    venue_qty: float

    def __str__(self) -> str:
        return (
            f"position {self.symbol}: engine holds {self.engine_qty:g}, "
            f"the venue {self.venue_qty:g} (reported, not traded away)"
        )


@dataclass(slots=True)
class Plan:
    """What :func:`reconcile` found: ``actions`` in venue time order, the engine's in-flight
    orders the venue does not know (``missing``), the venue's orders that are not this
    engine's (``foreign``), and the new watermark (the latest venue time seen)."""

    actions: list[Action] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    foreign: list[Order] = field(default_factory=list)
    mark: int | None = None

    @property
    def fills(self) -> list[ApplyFill]:
        return [a for a in self.actions if isinstance(a, ApplyFill)]


def _side_fill(order: Order, vf: VenueFill, qty: float, execution_id: str) -> Fill:
    return Fill(
        order.id,
        order.symbol,
        order.side,
        qty,
        vf.price,
        vf.commission * (qty / vf.qty) if vf.qty > 0 else 0.0,
        vf.ts,
        execution_id,
    )


def reconcile(
    local: Iterable[LocalOrder],
    venue_orders: Iterable[Order],
    venue_fills: Iterable[VenueFill],
    *,
    known_executions: frozenset[str] | set[str] = frozenset(),
    client_id_prefix: str = "",
) -> Plan:
    """Compare the engine's orders with the venue's (see the module docstring).

    ``venue_orders``: snapshots (``id`` = venue id) of orders changed since the watermark and of
    open ones; ``venue_fills``: fill activities since the watermark; ``known_executions``:
    execution ids the engine has applied; ``client_id_prefix``: how this engine's client ids
    start (a venue order with it that the engine does not know is adopted; others are foreign).
    """
    plan = Plan()
    mine = {o.client_order_id: o for o in local}
    by_client: dict[str, Order] = {}
    venue_to_client = {o.broker_order_id: c for c, o in mine.items() if o.broker_order_id}
    adopts: list[Adopt] = []
    marks: list[int] = []
    for snap in venue_orders:
        marks.append(snap.updated_at)
        # an order the engine knows by its venue id is its own, whatever client id the venue
        # shows (the venue names a bracket's legs itself)
        cid = venue_to_client.setdefault(snap.id, snap.client_order_id)
        if cid in mine:
            by_client[cid] = snap
        elif client_id_prefix and snap.client_order_id.startswith(client_id_prefix):
            adopts.append(Adopt(snap, snap.created_at))  # adopted unfilled; its fills follow
            by_client[snap.client_order_id] = snap
        else:
            plan.foreign.append(snap)
    timed: list[tuple[int, int, Action]] = []  # (venue time, tie-break, action)

    # in-flight orders the venue has: accepted first (before any of their fills)
    for cid, lo in mine.items():
        found = by_client.get(cid)
        if found is None:
            if lo.status is OrderStatus.NEW and lo.broker_order_id is None:
                plan.missing.append(cid)
            continue
        if lo.status is OrderStatus.NEW and found.status is not OrderStatus.REJECTED:
            timed.append((found.created_at, 0, Accept(cid, found.id, found.created_at)))

    # fills, per order in cumulative order; skip what the engine has (by id or by quantity)
    filled = {cid: lo.filled_qty for cid, lo in mine.items()}
    filled.update((a.order.client_order_id, 0.0) for a in adopts)
    grouped: dict[str, list[VenueFill]] = {}
    for vf in venue_fills:
        marks.append(vf.ts)
        owner = venue_to_client.get(vf.broker_order_id)
        if owner is None or owner not in filled:
            continue
        grouped.setdefault(owner, []).append(vf)
    for cid, fills in grouped.items():
        of = by_client.get(cid)
        have = filled[cid]
        fills.sort(key=lambda f: (f.ts, f.cum_qty if f.cum_qty is not None else 0.0))
        for vf in fills:
            if vf.execution_id in known_executions:
                continue
            if vf.cum_qty is not None:
                if vf.cum_qty <= have + _EPS:
                    continue  # applied already (the stream named it differently)
                qty = min(vf.qty, vf.cum_qty - have)
            else:
                qty = vf.qty
            if qty <= _EPS:
                continue
            if of is None:
                continue  # the venue's order was not fetched: its final state comes later
            fill = _side_fill(of, vf, qty, vf.execution_id)
            timed.append((vf.ts, 1, ApplyFill(cid, fill, vf.ts)))
            have += qty
        filled[cid] = have

    # what the venue's order says was filled beyond the fills found: one fill for the rest
    for cid, snap in by_client.items():
        have = filled.get(cid, 0.0)
        missing_qty = snap.filled_qty - have
        if missing_qty > _EPS and snap.avg_fill_price is not None:
            # the price of the part not seen: total notional minus what was applied
            known_notional = _notional_seen(cid, mine, timed, snap)
            price = (snap.filled_qty * snap.avg_fill_price - known_notional) / missing_qty
            if not price > 0:
                price = snap.avg_fill_price
            fill = Fill(
                snap.id,
                snap.symbol,
                snap.side,
                missing_qty,
                price,
                0.0,
                snap.updated_at,
                f"reconciled:{snap.id}:{snap.filled_qty:g}",
            )
            if fill.execution_id not in known_executions:
                timed.append((snap.updated_at, 1, ApplyFill(cid, fill, snap.updated_at)))
                filled[cid] = snap.filled_qty

    # held legs the venue activated while the engine did not hear of it (their entry filled):
    # accepted after the fills of that moment, also those rebuilt from an order just above (the
    # sort below is stable)
    for cid, lo in mine.items():
        found = by_client.get(cid)
        if (
            found is not None
            and lo.status is OrderStatus.HELD
            and found.status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)
        ):
            timed.append((found.updated_at, 1, Accept(cid, found.id, found.updated_at)))

    # orders the venue ended that the engine holds as open
    for cid, snap in by_client.items():
        known = mine.get(cid)
        open_here = known is None or known.status.is_open
        if snap.status in _TERMINAL_FROM_VENUE and open_here:
            timed.append(
                (
                    snap.updated_at,
                    2,
                    Finish(
                        cid,
                        snap.status,
                        snap.updated_at,
                        snap.reject_reason if snap.status is OrderStatus.REJECTED else None,
                        snap.replaced_by,
                    ),
                )
            )

    timed.sort(key=lambda t: (t[0], t[1]))
    plan.actions = [*adopts, *(a for _, _, a in timed)]
    plan.mark = max(marks) if marks else None
    return plan


def _notional_seen(
    cid: str, mine: Mapping[str, LocalOrder], timed: list[tuple[int, int, Action]], snap: Order
) -> float:
    """Notional of the fills of ``cid`` the engine has, or will have after this plan."""
    lo = mine.get(cid)
    before = lo.filled_qty if lo is not None else 0.0
    price = lo.avg_fill_price if lo is not None and lo.avg_fill_price else snap.avg_fill_price
    total = before * (price or 0.0)
    for _, _, a in timed:
        if isinstance(a, ApplyFill) and a.client_order_id == cid:
            total += a.fill.qty * a.fill.price
    return total


def compare_positions(
    engine: Mapping[str, float], venue: Mapping[str, float], tolerance: float = 1e-6
) -> list[PositionMismatch]:
    """Symbols whose quantities differ between the engine and the venue (sorted)."""
    out = []
    for sym in sorted(set(engine) | set(venue)):
        e = engine.get(sym, 0.0)
        v = venue.get(sym, 0.0)
        if abs(e - v) > tolerance:
            out.append(PositionMismatch(sym, e, v))
    return out
