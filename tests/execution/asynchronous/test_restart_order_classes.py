"""A restart keeps order classes: a bracket comes back from the journal as one entry with its two
legs (linked both ways, sized and in the status they had), counted once in commitments and risk,
and the entry's later fills resize its legs as before the restart.

(The restart's steps are controlled one by one against the loopback Alpaca server, as in
``test_restart.py``; the order manager's part is also checked directly.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.execution.async_protocols import AsyncBroker
from tradeloop.execution.asynchronous import AsyncEngine
from tradeloop.execution.asynchronous.brokers.alpaca.broker import AlpacaBroker
from tradeloop.execution.asynchronous.components import BrokerConfig
from tradeloop.execution.asynchronous.order_manager import AsyncOrderManager
from tradeloop.execution.core.book import OrderBook
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.core.risk import RiskLimits, RiskManager, risk_reason
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.types import (
    Bar,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
)
from tradeloop.persistence.journal import OrderJournal
from tradeloop.strategy import Context, Strategy
from tradeloop.testing.alpaca import DEFAULT_KEY_ID, DEFAULT_SECRET, AlpacaServer

T = TypeVar("T")
MIN = 60_000_000_000
T0 = 1_709_303_400_000_000_000
VOLUME = 4.0  # with a participation rate of 1: the entry fills 4 shares a bar


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


def feed(n: int = 8) -> BarFeed:
    """A flat market: neither the take-profit (150) nor the stop (50) is ever reached."""
    return BarFeed(
        [
            SymbolSeries(
                "AAA",
                [T0 + i * MIN for i in range(n)],
                [100.0] * n,
                [101.0] * n,
                [99.0] * n,
                [100.0] * n,
                [VOLUME] * n,
            )
        ]
    )


def broker(url: str) -> AlpacaBroker:
    cfg = BrokerConfig(key_id=DEFAULT_KEY_ID, secret_key=DEFAULT_SECRET, base_url=url)
    return AlpacaBroker(cfg, symbols=["AAA"])


class Entry(Strategy):
    """A bracket buy of 10 on its first bar."""

    def on_start(self, ctx: Context) -> None:
        self.bracket: Order | None = None

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if self.bracket is None:
            self.bracket = ctx.buy(
                "AAA",
                10,
                order_class="bracket",
                take_profit={"limit_price": 150.0},
                stop_loss={"stop_price": 50.0},
            )


class Watcher(Strategy):
    """Submits nothing; notes what it sees at its start."""

    def on_start(self, ctx: Context) -> None:
        self.open_at_start = sorted(o.id for o in ctx.open_orders())
        self.started = True


async def until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def view(o: Order) -> tuple[Any, ...]:
    return (o.id, o.status, o.qty, o.filled_qty, o.order_class, o.parent_id)


def test_a_restart_brings_a_partly_filled_bracket_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"

    async def scenario() -> dict[str, Any]:
        got: dict[str, Any] = {}
        async with AlpacaServer(feed(), port=0, speed=0) as server:
            server.venue.exchange.participation_rate = 1.0  # partial fills: 4 shares a bar
            # run 1: the bracket is sent on bar 1; its entry fills 4 of 10 on bar 2
            strategy = Entry()
            first = AsyncEngine(broker(server.url), strategy, journal=OrderJournal(path))
            task = asyncio.create_task(first.run())
            await server.wait_for_client(["AAA"])
            await server.step(1)
            await until(
                lambda: (
                    strategy.bracket is not None and strategy.bracket.status is OrderStatus.ACCEPTED
                ),
                "the bracket accepted",
            )
            await server.step(1)
            entry = strategy.bracket
            assert entry is not None
            await until(
                lambda: (
                    entry.filled_qty == 4
                    and all(leg.status is OrderStatus.ACCEPTED for leg in entry.legs)
                ),
                "the first partial fill and the legs active",
            )
            got["before"] = [view(o) for o in (entry, *entry.legs)]
            first.stop()
            await task
            with OrderJournal(path, readonly=True) as journal:
                got["journaled"] = [
                    (o.local_id, o.order_class, o.parent, o.qty, o.status) for o in journal.orders()
                ]
            posted = len(server.state()["orders"])

            # run 2: the same journal (once run 1's streams are gone, so that the new ones are
            # the ones counted)
            await server.wait_streams_closed()
            watcher = Watcher()
            second = AsyncEngine(broker(server.url), watcher, journal=OrderJournal(path))
            task = asyncio.create_task(second.run())
            await until(lambda: getattr(watcher, "started", False), "the second run's start")
            await server.wait_for_client(["AAA"])
            book = second.manager.book
            restored = book.get("O000001")
            got["restored"] = [view(o) for o in (restored, *restored.legs)]
            got["legs_are_the_books"] = all(book.get(leg.id) is leg for leg in restored.legs)
            got["open"] = sorted(o.id for o in book.open_orders())
            got["open_at_start"] = watcher.open_at_start
            got["commitments"] = book.commitments()
            got["held_by_exits"] = book.held_by_exits("AAA", OrderSide.SELL)
            sell = Order("X", "AAA", OrderSide.SELL, 5.0, OrderType.MARKET)
            got["risk"] = risk_reason(
                RiskManager(RiskLimits(max_position=6.0)),
                sell,
                book=book,
                portfolio=second.portfolio,
                ref_price=100.0,
                now=T0 + 10 * MIN,
            )
            got["position"] = second.portfolio.qty("AAA")
            # the entry fills 4 more: its restored legs follow
            await server.step(1)
            await until(
                lambda: restored.filled_qty == 8 and all(leg.qty == 8 for leg in restored.legs),
                "the second partial fill and the legs resized",
            )
            second.stop()
            await task
            got["after"] = [view(o) for o in (restored, *restored.legs)]
            venue = server.venue.exchange.book
            got["venue_legs"] = [
                (o.status, o.qty) for o in venue.orders.values() if o.parent_id is not None
            ]
            got["posted"] = (posted, len(server.state()["orders"]))
            got["warnings"] = second.warnings
            got["ids"] = {o.id: o.client_order_id for o in book.orders.values()}
        with OrderJournal(path, readonly=True) as journal:
            got["journaled_after"] = [
                (o.local_id, o.qty, o.filled_qty, o.status) for o in journal.orders()
            ]
            got["qty_events"] = [
                (e.client_order_id, e.detail) for e in journal.events() if e.kind == "qty"
            ]
        return got

    got = run(scenario())
    bracket, accepted = OrderClass.BRACKET, OrderStatus.ACCEPTED
    partial = OrderStatus.PARTIALLY_FILLED
    linked = [
        ("O000001", partial, 10.0, 4.0, bracket, None),
        ("O000002", accepted, 4.0, 0.0, bracket, "O000001"),  # the take-profit first
        ("O000003", accepted, 4.0, 0.0, bracket, "O000001"),  # then the stop-loss
    ]
    assert got["before"] == linked
    cid = got["ids"]["O000001"]
    assert got["journaled"] == [
        ("O000001", bracket, None, 10.0, partial),
        ("O000002", bracket, cid, 4.0, accepted),  # the leg's size, not the size it was sent at
        ("O000003", bracket, cid, 4.0, accepted),
    ]
    # restored: one entry and its two legs, as they were
    assert got["restored"] == linked
    assert got["legs_are_the_books"]
    assert got["open"] == got["open_at_start"] == ["O000001", "O000002", "O000003"]  # once each
    pending, counted = got["commitments"]
    assert pending == {"AAA": pytest.approx(6.0 - 4.0)}  # the entry's 6 to buy, the exits' 4 once
    assert [o.id for o in counted] == ["O000001", "O000002"]
    assert got["held_by_exits"] == 4.0
    assert got["position"] == 4.0
    assert got["risk"] is None  # a sell of 5 with the exits' 4 counted once: position -5, <= 6
    # the entry's next fill resized the restored legs, as the venue did
    assert got["after"] == [
        ("O000001", partial, 10.0, 8.0, bracket, None),
        ("O000002", accepted, 8.0, 0.0, bracket, "O000001"),
        ("O000003", accepted, 8.0, 0.0, bracket, "O000001"),
    ]
    assert got["venue_legs"] == [(accepted, 8.0), (accepted, 8.0)]
    assert got["posted"][0] == got["posted"][1]  # nothing sent again
    assert got["warnings"] == []
    assert got["journaled_after"] == [
        ("O000001", 10.0, 8.0, partial),
        ("O000002", 8.0, 0.0, accepted),
        ("O000003", 8.0, 0.0, accepted),
    ]
    legs = [got["ids"]["O000002"], got["ids"]["O000003"]]
    assert got["qty_events"] == [
        (legs[0], "10.0 -> 4.0"),
        (legs[1], "10.0 -> 4.0"),
        (legs[0], "4.0 -> 8.0"),
        (legs[1], "4.0 -> 8.0"),
    ]


# ------------------------------------------------------------- the order manager, directly


def manager(journal: OrderJournal | None = None) -> AsyncOrderManager:
    return AsyncOrderManager(
        cast(AsyncBroker, object()),  # restore and apply_fill never reach the broker
        Portfolio(100_000.0),
        client_id_prefix="run1-",
        journal=journal,
    )


def journaled_bracket(path: Path, *, filled: float) -> OrderJournal:
    """A journal with a bracket buy of 10 whose entry was accepted (its legs held) and, if
    ``filled``, filled that much (its legs then active and sized to it)."""
    journal = OrderJournal(path)
    book = OrderBook(OrderValidator(), client_id_prefix="run1-")
    entry = book.new_order(
        "AAA",
        "buy",
        10,
        "limit",
        limit_price=100.0,
        order_class="bracket",
        take_profit={"limit_price": 150.0},
        stop_loss={"stop_price": 50.0},
        now=T0,
    )
    journal.record_intent(entry)
    journal.record_broker_id(entry.client_order_id, "V1")
    journal.record_status(entry.client_order_id, OrderStatus.ACCEPTED, T0 + 1)
    for n, leg in enumerate(entry.legs, start=2):
        journal.record_broker_id(leg.client_order_id, f"V{n}")
        journal.record_status(leg.client_order_id, OrderStatus.HELD, T0 + 1)
    if filled:
        from tradeloop.execution.types import Fill

        f = Fill(entry.id, "AAA", OrderSide.BUY, filled, 100.0, 0.0, T0 + 2, "E1")
        journal.record_fill(entry.client_order_id, f)
        for leg in entry.legs:
            journal.record_qty(leg.client_order_id, filled, T0 + 2)
            journal.record_status(leg.client_order_id, OrderStatus.ACCEPTED, T0 + 2)
    return journal


@pytest.mark.parametrize("linked", [False, True], ids=["rows", "load_orders"])
def test_held_legs_come_back_held_and_out_of_the_open_set(tmp_path: Path, linked: bool) -> None:
    with journaled_bracket(tmp_path / "j.db", filled=0.0) as journal:
        orders = journal.load_orders() if linked else [o.to_order() for o in journal.orders()]
        m = manager()
        m.restore(orders, journal.fills())
    entry = m.book.get("O000001")
    tp, sl = entry.legs
    assert [(o.id, o.status, o.qty, o.parent_id) for o in (entry, tp, sl)] == [
        ("O000001", OrderStatus.ACCEPTED, 10.0, None),
        ("O000002", OrderStatus.HELD, 10.0, "O000001"),
        ("O000003", OrderStatus.HELD, 10.0, "O000001"),
    ]
    assert (tp.type, sl.type) == (OrderType.LIMIT, OrderType.STOP)
    assert m.book.open_orders() == [entry]  # held legs wait outside the open set
    assert m.book.commitments()[0] == {"AAA": 10.0}
    assert m.book.exit_group(tp) == (tp, sl)
    assert {bid: o.id for bid, o in m._by_broker_id.items()} == {
        "V1": "O000001",
        "V2": "O000002",
        "V3": "O000003",
    }
    # the venue activates them: once each in the open set
    for leg in (tp, sl):
        m.book.set_status(leg, OrderStatus.ACCEPTED, T0 + 3)
    assert m.book.open_orders() == [entry, tp, sl]
    assert m.book.new_order("AAA", "buy", 1, now=T0 + 4).id == "O000004"  # ids continue


@pytest.mark.parametrize("linked", [False, True], ids=["rows", "load_orders"])
def test_a_restored_entrys_fill_resizes_its_legs_and_journals_it(
    tmp_path: Path, linked: bool
) -> None:
    path = tmp_path / "j.db"
    journaled_bracket(path, filled=4.0).close()
    with OrderJournal(path) as journal:
        orders = journal.load_orders() if linked else [o.to_order() for o in journal.orders()]
        m = manager(journal)
        m.restore(orders, journal.fills())
        entry = m.book.get("O000001")
        assert [(leg.status, leg.qty) for leg in entry.legs] == [(OrderStatus.ACCEPTED, 4.0)] * 2
        open_ids = [o.id for o in m.book.open_orders()]
        assert open_ids == ["O000001", "O000002", "O000003"]  # each once
        assert m.book.commitments()[0] == {"AAA": pytest.approx(6.0 - 4.0)}
        assert m.apply_fill(entry, 3.0, 100.0, 0.0, T0 + 5, "E2") is True
        assert [leg.qty for leg in entry.legs] == [7.0, 7.0]
        assert m.apply_fill(entry, 3.0, 100.0, 0.0, T0 + 5, "E2") is False  # known: once
        rows = {o.local_id: o for o in journal.orders()}
        assert [rows[k].qty for k in ("O000002", "O000003")] == [7.0, 7.0]
        assert rows["O000001"].filled_qty == 7.0
    with OrderJournal(path) as journal:  # and a second restart has it all
        m = manager(journal)
        m.restore(journal.load_orders(), journal.fills())
        entry = m.book.get("O000001")
        assert [(leg.id, leg.qty) for leg in entry.legs] == [("O000002", 7.0), ("O000003", 7.0)]
        assert m.known_executions == {"E1", "E2"}


def test_submit_journals_a_bracket_and_its_legs_in_one_intent(tmp_path: Path) -> None:
    with OrderJournal(tmp_path / "j.db") as journal:
        m = manager(journal)
        entry = m.submit(
            "AAA",
            "buy",
            10,
            "limit",
            limit_price=100.0,
            order_class="bracket",
            take_profit={"limit_price": 150.0},
            stop_loss={"stop_price": 50.0},
            now=T0,
        )
        rows = journal.orders()
        assert [(r.local_id, r.parent_local_id, r.status) for r in rows] == [
            (entry.id, None, OrderStatus.NEW),
            (entry.legs[0].id, entry.id, OrderStatus.NEW),
            (entry.legs[1].id, entry.id, OrderStatus.NEW),
        ]
        assert [e.kind for e in journal.events()] == ["intent"] * 3


def test_legs_activated_while_the_engine_was_down_come_back_active(tmp_path: Path) -> None:
    """The entry's first fill happens while the engine is down: the venue activates the legs.
    After the restart, reconciliation applies the fill and accepts the legs (they were held in
    the journal), sized to what filled."""
    path = tmp_path / "journal.sqlite"

    async def scenario() -> dict[str, Any]:
        got: dict[str, Any] = {}
        async with AlpacaServer(feed(), port=0, speed=0) as server:
            server.venue.exchange.participation_rate = 1.0  # partial fills: 4 shares a bar
            strategy = Entry()
            first = AsyncEngine(broker(server.url), strategy, journal=OrderJournal(path))
            task = asyncio.create_task(first.run())
            await server.wait_for_client(["AAA"])
            await server.step(1)
            await until(
                lambda: (
                    strategy.bracket is not None
                    and strategy.bracket.status is OrderStatus.ACCEPTED
                    and all(leg.status is OrderStatus.HELD for leg in strategy.bracket.legs)
                ),
                "the bracket accepted, its legs held",
            )
            first.stop()
            await task
            await server.wait_streams_closed()
            await server.step(1)  # down: the entry fills 4, the venue activates the legs
            watcher = Watcher()
            second = AsyncEngine(broker(server.url), watcher, journal=OrderJournal(path))
            task = asyncio.create_task(second.run())
            await until(lambda: getattr(watcher, "started", False), "the second run's start")
            restored = second.manager.book.get("O000001")
            got["restored"] = [view(o) for o in (restored, *restored.legs)]
            got["open_at_start"] = watcher.open_at_start
            got["venue_legs"] = [
                (o.status, o.qty)
                for o in server.venue.exchange.book.orders.values()
                if o.parent_id is not None
            ]
            second.stop()
            await task
            got["warnings"] = second.warnings
        return got

    got = run(scenario())
    bracket, accepted = OrderClass.BRACKET, OrderStatus.ACCEPTED
    assert got["venue_legs"] == [(accepted, 4.0), (accepted, 4.0)]
    assert got["restored"] == [
        ("O000001", OrderStatus.PARTIALLY_FILLED, 10.0, 4.0, bracket, None),
        ("O000002", accepted, 4.0, 0.0, bracket, "O000001"),
        ("O000003", accepted, 4.0, 0.0, bracket, "O000001"),
    ]
    assert got["open_at_start"] == ["O000001", "O000002", "O000003"]
    assert got["warnings"] == []
