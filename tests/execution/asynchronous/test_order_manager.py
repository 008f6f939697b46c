"""AsyncOrderManager on its own: a Portfolio, a small fake venue and hand-made broker events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

import pytest

from tradeloop.errors import (
    BrokerConnectionError,
    DuplicateOrderError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderStateError,
)
from tradeloop.execution.asynchronous import AsyncOrderManager
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.core.reconcile import VenueFill
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.types import (
    Account,
    Bar,
    BrokerEvent,
    Clock,
    EventKind,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    Position,
)

NOW = 1_700_000_000_000_000_000


class Venue:
    """A fake broker: answers requests with accepted snapshots unless told otherwise.

    ``errors[kind]`` holds exceptions the next calls of that kind raise; ``hooks[kind]`` runs
    inside a call. Every call is recorded in ``calls`` and concurrency in ``max_in_flight``.
    """

    name = "venue"
    connection_state = "connected"

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.errors: dict[str, list[BaseException]] = {
            "submit": [],
            "replace": [],
            "cancel": [],
            "lookup": [],
        }
        self.hooks: dict[str, Callable[[Order], None]] = {}
        self.records: dict[str, Order] = {}  # client order id -> the venue's record
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self._seq = 0

    def record(self, order: Order, status: OrderStatus | None = None) -> Order:
        rec = self.records.get(order.client_order_id)
        if rec is None:
            rec = order.snapshot()
            self._seq += 1
            rec.id = f"V{self._seq}"
            rec.broker_order_id = None
            rec.status = OrderStatus.ACCEPTED
            self.records[order.client_order_id] = rec
        if status is not None:
            rec.status = status
        return rec

    def event(
        self,
        kind: str,
        order: Order,
        *,
        status: OrderStatus | None = None,
        fill: tuple[float, float, str] | None = None,
        ts: int = NOW,
        reason: str | None = None,
        replaced_by: str | None = None,
    ) -> BrokerEvent:
        """A broker event about ``order``; ``fill`` is (qty, price, execution id)."""
        rec = self.record(order, status)
        rec.reject_reason = reason
        rec.replaced_by = replaced_by
        vf = None
        if fill is not None:
            qty, price, exec_id = fill
            vf = Fill(rec.id, rec.symbol, rec.side, qty, price, 1.0, ts, exec_id)
        return BrokerEvent(kind, rec.snapshot(), ts, vf)

    async def _call(self, kind: str, order: Order, answer: Callable[[], Any]) -> Any:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            hook = self.hooks.get(kind)
            if hook is not None:
                hook(order)
            if self.errors[kind]:
                raise self.errors[kind].pop(0)
            return answer()
        finally:
            self.in_flight -= 1

    async def connect(self, on_event: Callable[[BrokerEvent], None]) -> None:
        pass

    async def submit_order(self, order: Order) -> Order:
        self.calls.append(("submit", order.id))
        return await self._call("submit", order, lambda: self.record(order).snapshot())

    async def replace_order(self, order: Order, new: Order) -> Order:
        self.calls.append(("replace", order.id, new.id))
        return await self._call("replace", new, lambda: self.record(new).snapshot())

    async def cancel_order(self, order: Order) -> None:
        self.calls.append(("cancel", order.id))
        await self._call("cancel", order, lambda: None)

    async def get_order(self, broker_order_id: str) -> Order:
        raise OrderNotFoundError(broker_order_id)

    async def get_order_by_client_id(self, client_order_id: str) -> Order:
        self.calls.append(("lookup", client_order_id))
        if self.errors["lookup"]:
            raise self.errors["lookup"].pop(0)
        rec = self.records.get(client_order_id)
        if rec is None:
            raise OrderNotFoundError(client_order_id)
        return rec.snapshot()

    async def get_open_orders(self) -> list[Order]:
        return []

    async def get_orders(self, since: int | None = None) -> list[Order]:
        return await self.get_open_orders()

    async def get_fills(self, since: int | None = None) -> list[VenueFill]:
        return []

    async def get_positions(self) -> list[Position]:
        return []

    async def get_account(self) -> Account:
        return Account(10_000.0, 10_000.0, 10_000.0)

    async def get_clock(self) -> Clock:
        return Clock(NOW, True, None, None)

    async def bars(self, symbols: Sequence[str] | None = None) -> AsyncIterator[Bar]:
        return
        yield

    async def close(self) -> None:
        pass


def make(
    venue: Venue | None = None, cash: float = 10_000.0, **kw: Any
) -> tuple[AsyncOrderManager, Venue]:
    venue = venue if venue is not None else Venue()
    kw.setdefault("retry_delays", ())  # no resends unless a test asks for them
    manager = AsyncOrderManager(
        venue,  # type: ignore[arg-type]
        Portfolio(cash),
        validator=OrderValidator(["X", "Y"], fractional=True),
        client_id_prefix="run7-",
        clock=lambda: NOW + 1,
        **kw,
    )
    return manager, venue


def scenario(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``body`` on a fresh loop, bounded, and check it leaves no task behind."""

    async def main() -> None:
        await asyncio.wait_for(body(), 10)
        leftover = asyncio.all_tasks() - {asyncio.current_task()}
        assert not leftover, f"tasks left running: {leftover}"

    asyncio.run(main())


async def flush(manager: AsyncOrderManager, after: Callable[[], None] | None = None) -> None:
    """Run the sender until every queued request has been answered, then stop it."""
    task = asyncio.create_task(manager.run_sender(after or (lambda: None)))
    try:
        async with asyncio.timeout(5):
            while manager.pending_requests:
                await asyncio.sleep(0.001)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def notes(manager: AsyncOrderManager) -> list[tuple[str, str, object]]:
    """The undelivered notifications: ("order", id, status) or ("fill", order id, qty)."""
    return [
        ("fill", n.order_id, n.qty) if isinstance(n, Fill) else ("order", n.id, n.status)
        for n in manager.notifications
    ]


def accepted(manager: AsyncOrderManager, venue: Venue, *args: Any, **kw: Any) -> Order:
    """An order submitted and accepted (applied from the venue's answer), notifications cleared."""
    order = manager.submit(*args, now=NOW, **kw)
    manager._outbox.clear()
    manager.apply_snapshot(order, venue.record(order).snapshot())
    manager.notifications.clear()
    return order


# -- commands ----------------------------------------------------------------------------------


def test_submit_registers_a_new_order_and_queues_it_without_sending() -> None:
    manager, venue = make()
    changes: list[None] = []
    manager.on_change = lambda: changes.append(None)
    order = manager.submit("X", "buy", 5, "limit", now=NOW, limit_price=99.0, tag="t")
    assert order.status is OrderStatus.NEW
    assert (order.id, order.client_order_id) == ("O000001", "run7-O000001")
    assert (order.side, order.limit_price, order.tag, order.created_at) == (
        OrderSide.BUY,
        99.0,
        "t",
        NOW,
    )
    assert manager.book.get(order.id) is order
    assert manager.book.open_orders() == [order]
    assert manager.pending_requests == 1
    assert manager.idle is False
    assert venue.calls == []  # nothing leaves before the sender runs
    assert manager.notifications == []
    assert changes == []
    second = manager.submit("Y", "sell", 1, now=NOW, client_order_id="mine")
    assert (second.id, second.client_order_id) == ("O000002", "mine")
    assert manager.pending_requests == 2


def test_a_malformed_request_raises_and_registers_nothing() -> None:
    manager, _ = make()
    for kwargs, field in [
        ({"symbol": "Q", "side": "buy", "qty": 1}, "symbol"),
        ({"symbol": "X", "side": "hold", "qty": 1}, "side"),
        ({"symbol": "X", "side": "buy", "qty": -1}, "qty"),
    ]:
        with pytest.raises(InvalidOrderError) as err:
            manager.submit(now=NOW, **kwargs)
        assert err.value.field == field
    assert manager.book.orders == {}
    assert manager.pending_requests == 0
    assert manager.idle is True


def test_the_sender_sends_in_order_one_at_a_time_and_reports_after_each() -> None:
    manager, venue = make()
    venue.delay = 0.005
    after: list[tuple[int, list[str]]] = []

    def after_each() -> None:
        after.append((manager.pending_requests, [str(n.status) for n in manager.notifications]))
        manager.notifications.clear()

    async def body() -> None:
        a = manager.submit("X", "buy", 1, "limit", now=NOW, limit_price=90.0)
        b = manager.submit("X", "buy", 2, "limit", now=NOW, limit_price=91.0)
        assert manager.cancel(a, NOW) is True
        c = manager.replace(b, NOW, limit_price=92.0)
        assert manager.pending_requests == 4
        await flush(manager, after_each)
        assert venue.calls == [
            ("submit", a.id),
            ("submit", b.id),
            ("cancel", a.id),
            ("replace", b.id, c.id),
        ]
        assert venue.max_in_flight == 1
        assert a.status is OrderStatus.ACCEPTED  # canceled only when the venue says so
        assert c.status is OrderStatus.ACCEPTED
        assert b.status is OrderStatus.ACCEPTED  # `replaced` arrives on the stream

    scenario(body)
    # pending_requests counts the queue; the request just answered no longer counts
    assert after == [(3, ["accepted"]), (2, ["accepted"]), (1, []), (0, ["accepted"])]
    assert manager.idle is True


def test_idle_and_pending_requests_follow_a_request_in_flight() -> None:
    manager, venue = make()
    states: list[tuple[int, bool]] = []
    venue.hooks["submit"] = lambda o: states.append((manager.pending_requests, manager.idle))

    async def body() -> None:
        assert (manager.pending_requests, manager.idle) == (0, True)
        manager.submit("X", "buy", 1, now=NOW)
        assert (manager.pending_requests, manager.idle) == (1, False)
        await flush(manager)
        # answered, but the accept is not delivered yet
        assert (manager.pending_requests, manager.idle) == (0, False)
        manager.notifications.clear()
        assert manager.idle is True

    scenario(body)
    assert states == [(1, False)]  # while the request is in flight it still counts


def test_cancel_returns_false_for_a_terminal_order_and_queues_nothing() -> None:
    manager, venue = make()
    order = accepted(manager, venue, "X", "buy", 1)
    manager.on_event(venue.event("canceled", order, status=OrderStatus.CANCELED))
    assert manager.cancel(order, NOW) is False
    assert manager.cancel(order.id, NOW) is False
    assert manager.pending_requests == 0
    with pytest.raises(OrderNotFoundError):
        manager.cancel("O999999", NOW)


def test_replace_registers_a_new_order_and_queues_the_request() -> None:
    manager, venue = make()
    old = accepted(manager, venue, "X", "buy", 10, "limit", limit_price=90.0)
    new = manager.replace(old, NOW, qty=4)
    assert new.status is OrderStatus.NEW
    assert (new.id, new.client_order_id, new.replaces) == ("O000002", "run7-O000002", old.id)
    assert (new.qty, new.limit_price) == (4, 90.0)
    assert manager.book.get(new.id) is new
    assert manager.pending_requests == 1
    assert old.status is OrderStatus.ACCEPTED
    old_done = accepted(manager, venue, "X", "buy", 1)
    manager.on_event(venue.event("canceled", old_done, status=OrderStatus.CANCELED))
    with pytest.raises(OrderStateError):
        manager.replace(old_done, NOW, qty=2)


def test_a_replace_whose_old_order_finished_meanwhile_is_rejected_locally() -> None:
    manager, venue = make()
    old = accepted(manager, venue, "X", "buy", 10, "limit", limit_price=90.0)

    async def body() -> None:
        new = manager.replace(old, NOW, limit_price=91.0)
        manager.on_event(venue.event("fill", old, fill=(10, 90.0, "E1")))  # before it was sent
        await flush(manager)
        assert new.status is OrderStatus.REJECTED
        assert new.reject_reason is not None
        assert "nothing left to replace" in new.reject_reason
        assert venue.calls == []  # never sent

    scenario(body)


# -- the broker's answers ----------------------------------------------------------------------


def test_apply_snapshot_accepts_sets_the_broker_id_and_notifies_once() -> None:
    manager, venue = make()
    changes: list[None] = []
    manager.on_change = lambda: changes.append(None)
    order = manager.submit("X", "buy", 1, now=NOW)
    snap = venue.record(order).snapshot()
    snap.updated_at = NOW + 5
    manager.apply_snapshot(order, snap)
    assert order.status is OrderStatus.ACCEPTED
    assert order.broker_order_id == "V1"
    assert order.updated_at == NOW + 5
    manager.apply_snapshot(order, snap)  # the same answer again (answer and stream)
    assert notes(manager) == [("order", order.id, OrderStatus.ACCEPTED)]
    assert len(changes) == 1


def test_notifications_are_snapshots_of_the_order_at_each_change() -> None:
    manager, venue = make()
    order = manager.submit("X", "buy", 2, now=NOW)
    manager.on_event(venue.event("new", order))
    manager.on_event(venue.event("partial_fill", order, fill=(1, 10.0, "E1")))
    manager.on_event(venue.event("fill", order, fill=(1, 12.0, "E2")))
    updates = [n for n in manager.notifications if isinstance(n, Order)]
    assert all(u is not order for u in updates)  # the handle changes later; these do not
    assert [(u.status, u.filled_qty, u.avg_fill_price) for u in updates] == [
        (OrderStatus.ACCEPTED, 0.0, None),
        (OrderStatus.PARTIALLY_FILLED, 1.0, 10.0),
        (OrderStatus.FILLED, 2.0, 11.0),
    ]
    assert {u.broker_order_id for u in updates} == {"V1"}


def test_apply_snapshot_of_a_still_pending_order_only_records_the_broker_id() -> None:
    manager, venue = make()
    order = manager.submit("X", "buy", 1, now=NOW)
    manager.apply_snapshot(order, venue.record(order, OrderStatus.NEW).snapshot())
    assert order.status is OrderStatus.NEW
    assert order.broker_order_id == "V1"
    assert manager.notifications == []
    # a later event with that broker id finds the order
    manager.on_event(venue.event("new", order, status=OrderStatus.ACCEPTED))
    assert order.status is OrderStatus.ACCEPTED


@pytest.mark.parametrize(
    ("reason", "expected"), [("market closed", "market closed"), (None, "rejected")]
)
def test_apply_snapshot_rejected(reason: str | None, expected: str) -> None:
    manager, venue = make()
    order = manager.submit("X", "buy", 1, now=NOW)
    snap = venue.record(order, OrderStatus.REJECTED).snapshot()
    snap.reject_reason = reason
    manager.apply_snapshot(order, snap)
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == expected
    assert manager.book.open_orders() == []
    assert notes(manager) == [("order", order.id, OrderStatus.REJECTED)]


def test_apply_snapshot_of_an_order_already_filled_at_the_venue_only_accepts() -> None:
    manager, venue = make()
    order = manager.submit("X", "buy", 1, now=NOW)
    manager.apply_snapshot(order, venue.record(order, OrderStatus.FILLED).snapshot())
    assert order.status is OrderStatus.ACCEPTED  # the fill itself comes as an event
    assert order.filled_qty == 0
    assert manager.portfolio.qty("X") == 0


@pytest.mark.parametrize(
    ("error", "status", "log_text"),
    [
        (OrderRejectedError("c", "no shorting"), OrderStatus.REJECTED, ""),
        (InvalidOrderError("qty", 1, "lot size is 100"), OrderStatus.REJECTED, ""),
        (BrokerConnectionError("502"), OrderStatus.NEW, "outcome unknown"),
        (TimeoutError("timed out"), OrderStatus.NEW, "outcome unknown"),
        (ConnectionResetError("reset"), OrderStatus.NEW, "outcome unknown"),
    ],
    ids=["rejected", "invalid", "connection", "timeout", "oserror"],
)
def test_submit_errors(
    error: Exception, status: OrderStatus, log_text: str, caplog: pytest.LogCaptureFixture
) -> None:
    manager, venue = make()
    venue.errors["submit"].append(error)
    order = manager.submit("X", "sell", 1, now=NOW)

    async def body() -> None:
        with caplog.at_level(logging.WARNING, logger="tradeloop.live"):
            await flush(manager)

    scenario(body)
    assert order.status is status
    assert order.broker_order_id is None
    if status is OrderStatus.REJECTED:
        assert order.reject_reason is not None
        assert ("no shorting" in order.reject_reason) or ("lot size" in order.reject_reason)
        assert notes(manager) == [("order", order.id, OrderStatus.REJECTED)]
    else:
        assert order.reject_reason is None
        assert manager.notifications == []
        assert manager.book.open_orders() == [order]
    assert log_text in caplog.text
    assert manager.pending_requests == 0


def test_duplicate_client_id_adopts_the_venues_view() -> None:
    manager, venue = make()
    order = manager.submit("X", "buy", 1, now=NOW)
    venue.record(order, OrderStatus.ACCEPTED)  # an earlier attempt reached the venue
    venue.errors["submit"].append(DuplicateOrderError(order.client_order_id))
    scenario(lambda: flush(manager))
    assert venue.calls == [("submit", order.id), ("lookup", "run7-O000001")]
    assert order.status is OrderStatus.ACCEPTED
    assert order.broker_order_id == "V1"


def test_duplicate_client_id_with_a_failing_lookup_leaves_the_order_in_flight(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager, venue = make()
    order = manager.submit("X", "buy", 1, now=NOW)
    venue.errors["submit"].append(DuplicateOrderError(order.client_order_id))
    venue.errors["lookup"].append(BrokerConnectionError("down"))
    with caplog.at_level(logging.WARNING, logger="tradeloop.live"):
        scenario(lambda: flush(manager))
    assert order.status is OrderStatus.NEW
    assert "lookup failed" in caplog.text


def test_cancel_errors_leave_the_order_as_it_is(caplog: pytest.LogCaptureFixture) -> None:
    manager, venue = make()
    a = accepted(manager, venue, "X", "buy", 1, "limit", limit_price=90.0)
    b = accepted(manager, venue, "X", "buy", 2, "limit", limit_price=90.0)
    venue.errors["cancel"] += [OrderStateError("too late"), BrokerConnectionError("502")]
    assert manager.cancel(a, NOW) and manager.cancel(b, NOW)
    with caplog.at_level(logging.INFO, logger="tradeloop.live"):
        scenario(lambda: flush(manager))
    assert (a.status, b.status) == (OrderStatus.ACCEPTED, OrderStatus.ACCEPTED)
    assert "too late" in caplog.text
    assert "outcome unknown" in caplog.text
    assert manager.notifications == []
    # a cancel that failed may be asked again
    assert manager.cancel(a, NOW) and manager.cancel(b, NOW)


def test_a_cancel_on_its_way_is_not_asked_twice() -> None:
    manager, venue = make()
    a = accepted(manager, venue, "X", "buy", 1, "limit", limit_price=90.0)
    assert manager.cancel(a, NOW) is True
    assert manager.cancel(a, NOW) is False  # queued already
    assert manager.pending_requests == 1
    scenario(lambda: flush(manager))  # the venue took the request; `canceled` not yet reported
    assert a.is_open
    assert manager.cancel(a, NOW) is False  # still on its way


def test_a_cancel_of_an_order_that_finished_before_it_was_sent_is_not_sent() -> None:
    manager, venue = make()
    order = accepted(manager, venue, "X", "buy", 1)

    async def body() -> None:
        assert manager.cancel(order, NOW)
        manager.on_event(venue.event("fill", order, fill=(1, 100.0, "E1")))
        await flush(manager)

    scenario(body)
    assert venue.calls == []
    assert order.status is OrderStatus.FILLED


def test_a_refused_cancel_does_not_reject_the_working_order() -> None:
    manager, venue = make()
    order = accepted(manager, venue, "X", "buy", 1, "limit", limit_price=90.0)
    venue.errors["cancel"].append(OrderRejectedError(order.client_order_id, "not cancelable"))
    assert manager.cancel(order, NOW)
    scenario(lambda: flush(manager))
    assert order.status is OrderStatus.ACCEPTED
    # the venue filled it (which is why it refused the cancel): the fill must still be applied
    manager.on_event(venue.event("fill", order, fill=(1, 90.0, "E1")))
    assert order.status is OrderStatus.FILLED
    assert manager.portfolio.qty("X") == 1


@pytest.mark.parametrize(
    "error",
    [OrderStateError("order is filled"), OrderNotFoundError("V1")],
    ids=["state", "not-found"],
)
def test_a_replace_the_venue_refuses_does_not_leave_the_replacement_open(
    error: Exception,
) -> None:
    manager, venue = make()
    old = accepted(manager, venue, "X", "buy", 10, "limit", limit_price=90.0)
    venue.errors["replace"].append(error)

    async def body() -> None:
        manager.replace(old, NOW, limit_price=91.0)
        await flush(manager)

    scenario(body)
    new = manager.book.get("O000002")
    assert not new.is_open  # the venue never created it
    assert manager.book.open_orders() == [old]


def test_a_replacement_the_venue_rejects_ends_rejected_and_the_old_one_keeps_working() -> None:
    manager, venue = make()
    old = accepted(manager, venue, "X", "buy", 10, "limit", limit_price=90.0)
    venue.errors["replace"].append(OrderRejectedError("c", "price band"))

    async def body() -> None:
        new = manager.replace(old, NOW, limit_price=1.0)
        await flush(manager)
        assert new.status is OrderStatus.REJECTED
        assert new.reject_reason == "price band"

    scenario(body)
    assert old.status is OrderStatus.ACCEPTED
    assert manager.book.open_orders() == [old]


# -- events ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [EventKind.NEW, EventKind.ACCEPTED, "pending_new"])
def test_accept_events(kind: str) -> None:
    manager, venue = make()
    changes: list[None] = []
    manager.on_change = lambda: changes.append(None)
    order = manager.submit("X", "buy", 1, now=NOW)
    manager.on_event(venue.event(kind, order, ts=NOW + 9))
    assert order.status is OrderStatus.ACCEPTED
    assert order.updated_at == NOW + 9
    assert order.broker_order_id == "V1"  # found by client order id, linked to the venue id
    assert notes(manager) == [("order", order.id, OrderStatus.ACCEPTED)]
    assert changes == [None]
    manager.on_event(venue.event(kind, order))  # again: no second change
    assert notes(manager) == [("order", order.id, OrderStatus.ACCEPTED)]
    assert manager.last_event == f"{kind} O000001 X"
    assert manager.counts == {kind: 2}


def test_an_event_with_ts_0_uses_the_clock() -> None:
    manager, venue = make()
    order = manager.submit("X", "buy", 1, now=NOW)
    manager.on_event(venue.event("new", order, ts=0))
    assert order.updated_at == NOW + 1


def test_fill_events_update_order_portfolio_and_notifications() -> None:
    manager, venue = make()
    changes: list[None] = []
    order = accepted(manager, venue, "X", "buy", 10)
    manager.on_change = lambda: changes.append(None)
    manager.on_event(venue.event("partial_fill", order, fill=(4, 100.0, "E1"), ts=NOW + 1))
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert (order.filled_qty, order.avg_fill_price, order.commission) == (4, 100.0, 1.0)
    fill = manager.notifications[0]
    assert isinstance(fill, Fill)
    assert (fill.order_id, fill.qty, fill.price, fill.execution_id, fill.ts) == (
        order.id,
        4,
        100.0,
        "E1",
        NOW + 1,
    )
    assert notes(manager) == [("fill", order.id, 4), ("order", order.id, "partially_filled")]
    manager.on_event(venue.event("fill", order, fill=(6, 110.0, "E2")))
    assert order.status is OrderStatus.FILLED
    assert order.avg_fill_price == pytest.approx(106.0)
    assert manager.book.open_orders() == []
    pf = manager.portfolio
    assert pf.qty("X") == 10
    assert pf.cash == pytest.approx(10_000 - 400 - 660 - 2.0)
    assert [f.execution_id for f in manager.fills] == ["E1", "E2"]
    assert len(changes) == 2
    assert manager.last_event == "fill O000001 X"


def test_the_same_execution_id_is_applied_once_and_an_empty_one_every_time() -> None:
    manager, venue = make()
    order = accepted(manager, venue, "X", "buy", 10)
    manager.on_event(venue.event("partial_fill", order, fill=(2, 100.0, "E1")))
    manager.on_event(venue.event("partial_fill", order, fill=(2, 100.0, "E1")))
    assert order.filled_qty == 2
    manager.on_event(venue.event("partial_fill", order, fill=(1, 100.0, "")))
    manager.on_event(venue.event("partial_fill", order, fill=(1, 100.0, "")))
    assert order.filled_qty == 4  # no execution id: nothing to deduplicate on
    assert len(manager.fills) == 3
    assert manager.portfolio.qty("X") == 4


def test_a_fill_for_a_new_order_accepts_it_first() -> None:
    manager, venue = make()
    order = manager.submit("X", "buy", 3, now=NOW)
    manager.on_event(venue.event("fill", order, fill=(3, 50.0, "E1")))
    assert order.status is OrderStatus.FILLED
    assert order.broker_order_id == "V1"
    assert notes(manager) == [  # the accept, then the fill and its update
        ("order", order.id, OrderStatus.ACCEPTED),
        ("fill", order.id, 3),
        ("order", order.id, OrderStatus.FILLED),
    ]


@pytest.mark.parametrize(
    "fill", [None, (0.0, 100.0, "E0"), (float("nan"), 100.0, "En")], ids=["none", "zero", "nan"]
)
def test_fill_events_without_a_usable_fill_are_ignored(
    fill: tuple[float, float, str] | None, caplog: pytest.LogCaptureFixture
) -> None:
    manager, venue = make()
    order = accepted(manager, venue, "X", "buy", 10)
    with caplog.at_level(logging.WARNING, logger="tradeloop.live"):
        manager.on_event(venue.event("fill", order, fill=fill))
    assert "without a usable fill" in caplog.text
    assert (order.status, order.filled_qty) == (OrderStatus.ACCEPTED, 0)
    assert manager.fills == [] and manager.notifications == []
    assert manager.portfolio.cash == 10_000


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (EventKind.CANCELED, OrderStatus.CANCELED),
        (EventKind.EXPIRED, OrderStatus.EXPIRED),
        (EventKind.REJECTED, OrderStatus.REJECTED),
    ],
)
def test_final_events(kind: str, status: OrderStatus) -> None:
    manager, venue = make()
    order = accepted(manager, venue, "X", "buy", 10)
    manager.on_event(venue.event(kind, order, status=status, reason="risk", ts=NOW + 3))
    assert order.status is status
    assert order.updated_at == NOW + 3
    assert order.reject_reason == ("risk" if status is OrderStatus.REJECTED else None)
    assert manager.book.open_orders() == []
    assert notes(manager) == [("order", order.id, status)]
    manager.on_event(venue.event(kind, order, status=status))  # reported twice
    assert notes(manager) == [("order", order.id, status)]


def test_a_cancel_for_a_still_new_order_accepts_it_first() -> None:
    manager, venue = make()
    order = manager.submit("X", "buy", 1, now=NOW)
    manager.on_event(venue.event("canceled", order, status=OrderStatus.CANCELED))
    assert order.status is OrderStatus.CANCELED
    assert notes(manager) == [
        ("order", order.id, OrderStatus.ACCEPTED),
        ("order", order.id, OrderStatus.CANCELED),
    ]


def test_replaced_event_links_the_new_local_order() -> None:
    manager, venue = make()
    old = accepted(manager, venue, "X", "buy", 10, "limit", limit_price=90.0)
    other = accepted(manager, venue, "X", "buy", 1, "limit", limit_price=80.0)

    async def body() -> None:
        new = manager.replace(old, NOW, limit_price=95.0)
        await flush(manager)  # the answer gives the new order its venue id
        manager.notifications.clear()
        event = venue.event(
            "replaced", old, status=OrderStatus.REPLACED, replaced_by=new.broker_order_id
        )
        manager.on_event(event)
        assert old.status is OrderStatus.REPLACED
        assert old.replaced_by == new.id
        assert notes(manager) == [("order", old.id, OrderStatus.REPLACED)]
        assert manager.book.open_orders() == [other, new]

    scenario(body)


def test_replaced_event_before_the_answer_uses_the_pending_replacement() -> None:
    manager, venue = make()
    old = accepted(manager, venue, "X", "buy", 10, "limit", limit_price=90.0)
    new = manager.replace(old, NOW, limit_price=95.0)
    manager.on_event(venue.event("replaced", old, status=OrderStatus.REPLACED, replaced_by="V?"))
    assert old.status is OrderStatus.REPLACED
    assert old.replaced_by == new.id


def test_replaced_event_of_an_order_replaced_elsewhere_keeps_the_venue_id() -> None:
    manager, venue = make()
    old = accepted(manager, venue, "X", "buy", 10, "limit", limit_price=90.0)
    manager.on_event(venue.event("replaced", old, status=OrderStatus.REPLACED, replaced_by="V99"))
    assert old.status is OrderStatus.REPLACED
    assert old.replaced_by == "V99"


@pytest.mark.parametrize("kind", ["done_for_day", "something_new", "pending_cancel"])
def test_unknown_kinds_change_nothing(kind: str) -> None:
    manager, venue = make()
    order = accepted(manager, venue, "X", "buy", 10)
    manager.on_event(venue.event(kind, order, fill=(1, 1.0, "E1")))
    assert order.status is OrderStatus.ACCEPTED
    assert order.filled_qty == 0
    assert manager.notifications == []
    assert manager.counts == {kind: 1}
    assert manager.last_event == f"{kind} O000001 X"


def test_events_for_unknown_orders_are_logged_and_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager, venue = make()
    stranger = Order("Z1", "X", OrderSide.BUY, 5, client_order_id="elsewhere-1")
    with caplog.at_level(logging.INFO, logger="tradeloop.live"):
        manager.on_event(venue.event("fill", stranger, fill=(5, 1.0, "E1")))
        manager.on_event(venue.event("canceled", stranger, status=OrderStatus.CANCELED))
    assert caplog.text.count("does not know") == 2
    assert manager.book.orders == {}
    assert manager.fills == [] and manager.notifications == []
    assert manager.portfolio.cash == 10_000
    assert manager.counts == {"fill": 1, "canceled": 1}
    assert manager.last_event == ""


@pytest.mark.parametrize(
    ("setup", "event_kind", "status", "expected", "log_text"),
    [
        ("filled", "canceled", OrderStatus.CANCELED, OrderStatus.FILLED, "reported while"),
        ("filled", "expired", OrderStatus.EXPIRED, OrderStatus.FILLED, "reported while"),
        ("partial", "rejected", OrderStatus.REJECTED, OrderStatus.PARTIALLY_FILLED, "reported"),
        ("canceled", "new", OrderStatus.ACCEPTED, OrderStatus.CANCELED, ""),
        ("partial", "fill", OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED, "not applied"),
    ],
    ids=[
        "cancel-after-fill",
        "expire-after-fill",
        "reject-partial",
        "accept-after-cancel",
        "overfill",
    ],
)
def test_invalid_transitions_reported_by_the_broker_are_ignored_with_a_log(
    setup: str,
    event_kind: str,
    status: OrderStatus,
    expected: OrderStatus,
    log_text: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager, venue = make()
    order = accepted(manager, venue, "X", "buy", 10)
    if setup == "filled":
        manager.on_event(venue.event("fill", order, fill=(10, 100.0, "E1")))
    elif setup == "partial":
        manager.on_event(venue.event("partial_fill", order, fill=(5, 100.0, "E1")))
    else:
        manager.on_event(venue.event("canceled", order, status=OrderStatus.CANCELED))
    manager.notifications.clear()
    fills_before = len(manager.fills)
    cash_before = manager.portfolio.cash
    fill = (10, 100.0, "E2") if event_kind == "fill" else None
    with caplog.at_level(logging.INFO, logger="tradeloop.live"):
        manager.on_event(venue.event(event_kind, order, status=status, fill=fill))
    assert order.status is expected
    assert manager.notifications == []
    assert len(manager.fills) == fills_before
    assert manager.portfolio.cash == cash_before
    assert log_text in caplog.text


# -- adopting ----------------------------------------------------------------------------------


def test_adopt_takes_over_a_venue_order_under_a_local_id() -> None:
    manager, _ = make()
    snap = Order("V50", "Y", OrderSide.SELL, 3, client_order_id="earlier-O000009")
    snap.status = OrderStatus.PARTIALLY_FILLED
    snap.filled_qty = 1
    order = manager.adopt(snap)
    assert order is not snap
    assert (order.id, order.client_order_id, order.broker_order_id) == (
        "O000001",
        "earlier-O000009",
        "V50",
    )
    assert (order.status, order.filled_qty) == (OrderStatus.PARTIALLY_FILLED, 1)
    assert manager.adopt(snap) is order  # idempotent
    assert manager.book.open_orders() == [order]
    event = BrokerEvent("fill", snap, NOW, Fill("V50", "Y", OrderSide.SELL, 2, 10.0, 0.0, NOW, "E"))
    manager.on_event(event)
    assert order.status is OrderStatus.FILLED
    assert manager.portfolio.qty("Y") == -2
    assert manager.submit("X", "buy", 1, now=NOW).id == "O000002"


def test_an_unknown_outcome_is_resent_with_the_same_client_id_after_each_delay() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    manager, venue = make(retry_delays=(0.5, 1.0, 2.0), sleep=fake_sleep)
    venue.errors["submit"] += [BrokerConnectionError("504"), TimeoutError("slow")]
    order = manager.submit("X", "buy", 1, now=NOW)
    scenario(lambda: flush(manager))
    assert slept == [0.5, 1.0]
    assert order.status is OrderStatus.ACCEPTED and manager.retries == 2


def test_new_orders_wait_while_the_order_stream_is_down() -> None:
    up = {"value": False}
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            up["value"] = True  # the stream comes back

    manager, _ = make(ready=lambda: up["value"], sleep=fake_sleep)
    order = manager.submit("X", "buy", 1, now=NOW)
    scenario(lambda: flush(manager))
    assert len(slept) == 3 and order.status is OrderStatus.ACCEPTED


def test_a_fill_reported_after_the_cancel_still_counts_and_the_order_stays_canceled() -> None:
    """Events out of order: the execution happened before the cancel; losing it would leave
    the engine's position wrong."""
    manager, venue = make()
    order = accepted(manager, venue, "X", "buy", 10)
    manager.on_event(venue.event("canceled", order, status=OrderStatus.CANCELED))
    manager.notifications.clear()
    manager.on_event(venue.event("partial_fill", order, fill=(4, 100.0, "E9")))
    assert order.status is OrderStatus.CANCELED
    assert (order.filled_qty, order.avg_fill_price) == (4, 100.0)
    assert manager.portfolio.qty("X") == 4 and manager.portfolio.cash == 10_000 - 400 - 1
    assert [f.execution_id for f in manager.fills] == ["E9"]
    assert [type(n).__name__ for n in manager.notifications] == ["Fill", "Order"]
    manager.on_event(venue.event("partial_fill", order, fill=(4, 100.0, "E9")))  # again
    assert manager.portfolio.qty("X") == 4
