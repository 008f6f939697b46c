"""Reconciliation (pure): adopt and update, never submit or cancel; each fill applied once."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tradeloop.execution.core.reconcile import (
    Accept,
    Adopt,
    ApplyFill,
    Finish,
    LocalOrder,
    PositionMismatch,
    VenueFill,
    compare_positions,
    reconcile,
)
from tradeloop.execution.types import Order, OrderSide, OrderStatus, OrderType

S = OrderStatus
T = 1_700_000_000_000_000_000


def venue(
    vid: str,
    cid: str,
    status: OrderStatus = S.ACCEPTED,
    qty: float = 10,
    filled: float = 0,
    avg: float | None = None,
    ts: int = T,
    **kw: Any,
) -> Order:
    o = Order(vid, "X", OrderSide.BUY, qty, OrderType.MARKET, client_order_id=cid, created_at=ts)
    o.status = status
    o.filled_qty = filled
    o.avg_fill_price = avg
    o.updated_at = kw.pop("updated", ts)
    for k, v in kw.items():
        setattr(o, k, v)
    return o


def test_nothing_to_do_when_the_views_agree() -> None:
    plan = reconcile(
        [LocalOrder("r-1", S.FILLED, 10, "v1")],
        [venue("v1", "r-1", S.FILLED, filled=10, avg=5.0)],
        [VenueFill("e1", "v1", 10, 5.0, T, cum_qty=10)],
        known_executions={"e1"},
        client_id_prefix="r-",
    )
    assert plan.actions == [] and plan.missing == [] and plan.foreign == []
    assert plan.mark == T


def test_a_missed_fill_is_applied_once_and_a_renamed_one_not_at_all() -> None:
    local = [LocalOrder("r-1", S.PARTIALLY_FILLED, 4, "v1")]
    snap = venue("v1", "r-1", S.FILLED, filled=10, avg=5.6, updated=T + 3)
    fills = [
        # the stream delivered this one under another id: its cum_qty says it is known
        VenueFill("act-1", "v1", 4, 5.0, T + 1, cum_qty=4),
        VenueFill("act-2", "v1", 6, 6.0, T + 2, cum_qty=10),
    ]
    plan = reconcile(local, [snap], fills, known_executions={"e-stream"})
    assert [type(a) for a in plan.actions] == [ApplyFill]
    fill = plan.fills[0].fill
    assert (fill.qty, fill.price, fill.ts, fill.execution_id) == (6, 6.0, T + 2, "act-2")
    assert fill.order_id == "v1" and plan.fills[0].client_order_id == "r-1"
    # the same inputs, once the fill is known, plan nothing
    again = reconcile(
        [LocalOrder("r-1", S.FILLED, 10, "v1")], [snap], fills, known_executions={"act-2"}
    )
    assert again.actions == []


def test_known_execution_ids_are_skipped_even_without_cum_qty() -> None:
    plan = reconcile(
        [LocalOrder("r-1", S.PARTIALLY_FILLED, 3, "v1")],
        [venue("v1", "r-1", S.PARTIALLY_FILLED, filled=3, avg=2.0)],
        [VenueFill("e1", "v1", 3, 2.0, T)],
        known_executions={"e1"},
    )
    assert plan.actions == []


def test_an_in_flight_order_the_venue_has_is_accepted_then_filled_in_time_order() -> None:
    local = [LocalOrder("r-1", S.NEW, 0), LocalOrder("r-2", S.NEW, 0)]
    snaps = [
        venue("v2", "r-2", S.FILLED, filled=10, avg=7.0, ts=T + 5, updated=T + 6),
        venue("v1", "r-1", S.ACCEPTED, ts=T + 1),
    ]
    fills = [VenueFill("e2", "v2", 10, 7.0, T + 6, cum_qty=10)]
    plan = reconcile(local, snaps, fills)
    assert plan.actions == [
        Accept("r-1", "v1", T + 1),
        Accept("r-2", "v2", T + 5),
        plan.actions[2],
    ]
    assert isinstance(plan.actions[2], ApplyFill) and plan.actions[2].fill.qty == 10
    assert plan.mark == T + 6


def test_a_held_leg_the_venue_activated_meanwhile_is_accepted_after_its_entrys_fill() -> None:
    # down during the entry's fill: the venue activated the take-profit and stop-loss legs
    local = [
        LocalOrder("r-1", S.ACCEPTED, 0, "v1"),
        LocalOrder("r-2", S.HELD, 0, "v2"),
        LocalOrder("r-3", S.HELD, 0, "v3"),
        LocalOrder("r-4", S.HELD, 0, "v4"),  # another bracket's leg, still held at the venue
    ]
    snaps = [
        venue("v1", "r-1", S.FILLED, filled=10, avg=5.0, updated=T + 4),
        venue("v2", "r-2", S.ACCEPTED, updated=T + 4),
        venue("v3", "r-3", S.ACCEPTED, updated=T + 4),
        venue("v4", "r-4", S.HELD, updated=T + 2),
    ]
    fills = [VenueFill("e1", "v1", 10, 5.0, T + 4, cum_qty=10)]
    plan = reconcile(local, snaps, fills)
    assert isinstance(plan.actions[0], ApplyFill) and plan.actions[0].client_order_id == "r-1"
    assert plan.actions[1:] == [Accept("r-2", "v2", T + 4), Accept("r-3", "v3", T + 4)]
    # once the engine has them accepted, nothing more
    done = [
        LocalOrder("r-1", S.FILLED, 10, "v1"),
        LocalOrder("r-2", S.ACCEPTED, 0, "v2"),
        LocalOrder("r-3", S.ACCEPTED, 0, "v3"),
        LocalOrder("r-4", S.HELD, 0, "v4"),
    ]
    assert reconcile(done, snaps, fills, known_executions={"e1"}).actions == []


def test_the_venue_ending_an_open_order_finishes_it() -> None:
    local = [
        LocalOrder("r-1", S.ACCEPTED, 0, "v1"),
        LocalOrder("r-2", S.PARTIALLY_FILLED, 2, "v2"),
        LocalOrder("r-3", S.ACCEPTED, 0, "v3"),
        LocalOrder("r-4", S.CANCELED, 0, "v4"),
    ]
    snaps = [
        venue("v1", "r-1", S.CANCELED, updated=T + 1),
        venue("v2", "r-2", S.EXPIRED, filled=2, avg=1.0, updated=T + 2),
        venue("v3", "r-3", S.REPLACED, updated=T + 3, replaced_by="v9"),
        venue("v4", "r-4", S.CANCELED, updated=T + 4),  # already known: nothing
    ]
    plan = reconcile(local, snaps, [])
    assert plan.actions == [
        Finish("r-1", S.CANCELED, T + 1),
        Finish("r-2", S.EXPIRED, T + 2),
        Finish("r-3", S.REPLACED, T + 3, None, "v9"),
    ]


def test_a_rejection_carries_the_venues_reason() -> None:
    snap = venue("v1", "r-1", S.REJECTED, updated=T + 1, reject_reason="insufficient funds")
    plan = reconcile([LocalOrder("r-1", S.NEW, 0)], [snap], [])
    assert plan.actions == [Finish("r-1", S.REJECTED, T + 1, "insufficient funds")]


def test_own_unknown_orders_are_adopted_with_their_fills_and_others_are_foreign() -> None:
    ours = venue("v1", "run7-O000009", S.PARTIALLY_FILLED, filled=4, avg=3.0)
    theirs = venue("v2", "manual-order", S.ACCEPTED)
    plan = reconcile(
        [],
        [ours, theirs],
        [VenueFill("e1", "v1", 4, 3.0, T + 1, cum_qty=4), VenueFill("e2", "v2", 1, 1.0, T)],
        client_id_prefix="run7-",
    )
    assert isinstance(plan.actions[0], Adopt) and plan.actions[0].order is ours
    assert [type(a) for a in plan.actions] == [Adopt, ApplyFill]
    assert plan.fills[0].fill.qty == 4
    assert plan.foreign == [theirs]


def test_in_flight_orders_the_venue_does_not_know_are_missing() -> None:
    plan = reconcile(
        [LocalOrder("r-1", S.NEW, 0), LocalOrder("r-2", S.NEW, 0, "v2")],
        [],
        [],
    )
    assert plan.missing == ["r-1"]  # r-2 had an answer: the venue had it
    assert plan.actions == [] and plan.mark is None


def test_a_fill_without_an_activity_is_rebuilt_from_the_order_at_the_right_price() -> None:
    # 4 @ 5.0 known locally; the venue says 10 filled at 5.6 average: 6 more at 6.0
    plan = reconcile(
        [LocalOrder("r-1", S.PARTIALLY_FILLED, 4, "v1", avg_fill_price=5.0)],
        [venue("v1", "r-1", S.FILLED, filled=10, avg=5.6, updated=T + 9)],
        [],
    )
    (action,) = plan.actions
    assert isinstance(action, ApplyFill)
    assert action.fill.qty == 6 and abs(action.fill.price - 6.0) < 1e-9 and action.ts == T + 9
    assert action.fill.execution_id.startswith("reconciled:v1:")


def test_compare_positions_reports_differences() -> None:
    assert compare_positions({"X": 10, "Y": 0}, {"X": 10}) == []
    assert compare_positions({"X": 10}, {"X": 7, "Z": -2}) == [
        PositionMismatch("X", 10, 7),
        PositionMismatch("Z", 0, -2),
    ]
    assert "reported, not traded away" in str(PositionMismatch("X", 1, 2))


@given(
    fills=st.lists(st.tuples(st.integers(1, 9), st.floats(1, 100)), min_size=1, max_size=8),
    seen=st.integers(0, 8),
    renamed=st.booleans(),
)
def test_reconciliation_brings_the_filled_quantity_to_the_venues_exactly_once(
    fills: list[tuple[int, float]], seen: int, renamed: bool
) -> None:
    """The engine saw the first ``seen`` fills (under the venue's ids, or renamed as a stream
    might); after reconciling, its filled quantity equals the venue's, and reconciling again
    plans nothing."""
    seen = min(seen, len(fills))
    total = float(sum(q for q, _ in fills))
    notional = sum(q * p for q, p in fills)
    cum = 0.0
    venue_fills = []
    for i, (q, p) in enumerate(fills):
        cum += q
        venue_fills.append(VenueFill(f"e{i}", "v1", q, p, T + i, cum_qty=cum))
    have = float(sum(q for q, _ in fills[:seen]))
    known = {f"stream{i}" if renamed else f"e{i}" for i in range(seen)}
    status = S.FILLED
    snap = venue("v1", "r-1", status, qty=total, filled=total, avg=notional / total, ts=T)
    local_status = S.ACCEPTED if have == 0 else (S.FILLED if have == total else S.PARTIALLY_FILLED)
    plan = reconcile(
        [LocalOrder("r-1", local_status, have, "v1")], [snap], venue_fills, known_executions=known
    )
    applied = sum(a.fill.qty for a in plan.fills)
    assert abs(have + applied - total) < 1e-9
    assert [a.fill.execution_id for a in plan.fills] == [f"e{i}" for i in range(seen, len(fills))]
    times = [a.ts for a in plan.actions]
    assert times == sorted(times)
    again = reconcile(
        [LocalOrder("r-1", S.FILLED, total, "v1")],
        [snap],
        venue_fills,
        known_executions=known | {a.fill.execution_id for a in plan.fills},
    )
    assert again.actions == []
