"""OrderJournal: the SQLite order journal of live runs (durable, deduplicated, readable)."""

from __future__ import annotations

import math
import re
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from tradeloop.errors import InvalidTransitionError, OrderStateError, TradeloopError
from tradeloop.execution.core.book import OrderBook
from tradeloop.execution.core.state import can_transition
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.types import (
    Fill,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from tradeloop.persistence import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    DuplicateIntentError,
    JournalError,
    JournalFormatError,
    OrderJournal,
    UnknownOrderError,
    iso_utc,
)
from tradeloop.persistence.journal import _new_run_id

T0 = 1_700_000_000_000_000_000
SUBPROCESS_TIMEOUT = 60


def order(
    n: int,
    *,
    symbol: str = "ACME",
    side: OrderSide = OrderSide.BUY,
    qty: float = 10.0,
    prefix: str = "run1-",
    **kw: Any,
) -> Order:
    """Order ``O<n>`` with client id ``<prefix>O<n>``, created at T0 + n seconds."""
    local = f"O{n:06d}"
    return Order(
        local,
        symbol,
        side,
        qty,
        client_order_id=prefix + local,
        created_at=T0 + n * 1_000_000_000,
        **kw,
    )


def fill_of(
    o: Order, qty: float, price: float, exec_id: str, ts: int = 0, fee: float = 0.0
) -> Fill:
    return Fill(o.id, o.symbol, o.side, qty, price, fee, ts or o.created_at + 1, exec_id)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.db"


@pytest.fixture
def journal(path: Path) -> Iterator[OrderJournal]:
    with OrderJournal(path) as j:
        yield j


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


# ------------------------------------------------------------------------------ file and meta


def test_first_open_creates_a_wal_journal_with_meta(path: Path) -> None:
    before = time.time_ns()
    with OrderJournal(path) as j:
        assert path.is_file()
        assert j.schema_version == SCHEMA_VERSION == 2
        assert before <= j.created_at <= time.time_ns()
        meta = j.meta()
        assert meta["schema"] == "2"
        assert meta["run_id"] == j.run_id
        assert int(meta["created_at"]) == j.created_at
        assert "mark" not in meta
        assert j.mark is None
        assert j.last_local_seq == 0
        assert j.orders() == [] and j.fills() == [] and j.events() == []
        assert not j.readonly and not j.closed
    con = raw(path)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"meta", "orders", "events", "fills"} <= tables
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    fill_cols = con.execute("PRAGMA table_info(fills)").fetchall()
    assert [c[1] for c in fill_cols if c[5]] == ["execution_id"]  # the primary key
    order_cols = {c[1]: c for c in con.execute("PRAGMA table_info(orders)")}
    assert order_cols["order_class"][3:5] == (1, "'simple'")  # NOT NULL DEFAULT 'simple'
    assert order_cols["parent"][3:5] == (0, None)
    con.close()


def test_writer_uses_synchronous_normal(journal: OrderJournal) -> None:
    conn = journal._conn
    assert conn is not None
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_run_id_is_short_alphanumeric_and_unique() -> None:
    ids = [_new_run_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for rid in ids:
        assert re.fullmatch(r"[A-Za-z0-9]{1,16}", rid), rid


def test_run_id_is_kept_by_the_file(tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    with OrderJournal(a) as ja, OrderJournal(b) as jb:
        first_a, first_b = ja.run_id, jb.run_id
    assert first_a != first_b
    with OrderJournal(a) as ja:
        assert ja.run_id == first_a
    with OrderJournal(a, readonly=True) as ja:
        assert ja.run_id == first_a


def test_run_id_starts_with_the_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.5)  # the module the journal reads
    before = _new_run_id()
    monkeypatch.setattr(time, "time", lambda: 1_700_000_001.0)
    after = _new_run_id()
    assert before[:7] == "0s44we8"  # 1_700_000_000 in base 36
    assert before[:7] < after[:7]  # ids of later runs sort after earlier ones


# -------------------------------------------------------------------------------- intents


def test_record_intent_round_trips_every_field(journal: OrderJournal) -> None:
    o = order(
        3,
        side=OrderSide.SELL,
        qty=7.5,
        type=OrderType.STOP_LIMIT,
        tif=TimeInForce.DAY,
        limit_price=99.5,
        stop_price=100.25,
        tag="exit",
    )
    journal.record_intent(o)
    got = journal.order(o.client_order_id)
    assert got is not None
    assert got.local_id == "O000003"
    assert got.status is OrderStatus.NEW and got.is_open
    assert got.remaining_qty == 7.5
    assert got.to_order().to_dict() == o.to_dict()
    trailing = order(4, type=OrderType.TRAILING_STOP, trail_percent=1.5)
    journal.record_intent(trailing)
    assert journal.order(trailing.client_order_id).to_order().to_dict() == trailing.to_dict()  # type: ignore[union-attr]
    [event] = journal.events(o.client_order_id)
    assert (event.kind, event.status, event.ts, event.detail) == (
        "intent",
        OrderStatus.NEW,
        o.created_at,
        None,
    )


def test_record_intent_keeps_an_adopted_orders_state(journal: OrderJournal) -> None:
    o = order(1)
    o.status = OrderStatus.PARTIALLY_FILLED
    o.filled_qty = 4.0
    o.avg_fill_price = 101.0
    o.commission = 0.4
    o.broker_order_id = "venue-1"
    o.updated_at = o.created_at + 5
    journal.record_intent(o)
    journal.record_event(o.client_order_id, "adopted", o.updated_at, "open at the venue")
    assert journal.order(o.client_order_id).to_order().to_dict() == o.to_dict()  # type: ignore[union-attr]
    journal.record_fill(o.client_order_id, fill_of(o, 6.0, 103.0, "E1"))
    got = journal.order(o.client_order_id)
    assert got is not None
    assert got.status is OrderStatus.FILLED and got.filled_qty == 10.0
    assert got.avg_fill_price == pytest.approx((4 * 101 + 6 * 103) / 10)


def test_duplicate_client_id_is_refused(journal: OrderJournal) -> None:
    first = order(1, limit_price=5.0, type=OrderType.LIMIT)
    journal.record_intent(first)
    again = order(2, qty=99.0)
    again.client_order_id = first.client_order_id
    with pytest.raises(DuplicateIntentError) as info:
        journal.record_intent(again)
    assert info.value.field == "client_order_id"
    assert info.value.value == first.client_order_id
    assert isinstance(info.value, JournalError) and isinstance(info.value, TradeloopError)
    with pytest.raises(DuplicateIntentError):
        journal.record_intent(first)  # the very same intent twice
    [row] = journal.orders()
    assert row.qty == 10.0 and row.local_id == "O000001"
    assert len(journal.events()) == 1
    assert journal.last_local_seq == 1  # the refused O000002 reserved nothing


def test_duplicate_local_id_is_refused(journal: OrderJournal) -> None:
    journal.record_intent(order(1))
    with pytest.raises(DuplicateIntentError) as info:
        journal.record_intent(order(1, prefix="other-"))
    assert info.value.field == "id"
    assert len(journal.orders()) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"qty": 0.0}, "qty"),
        ({"qty": -1.0}, "qty"),
        ({"qty": math.inf}, "qty"),
        ({"limit_price": math.nan}, "limit_price"),
        ({"stop_price": "100"}, "stop_price"),
        ({"client_order_id": ""}, "client_order_id"),
        ({"id": ""}, "id"),
        ({"symbol": 5}, "symbol"),
        ({"side": "long"}, "side"),
        ({"status": "pending"}, "status"),
        ({"created_at": 1.5}, "created_at"),
        ({"created_at": -1}, "created_at"),
        ({"updated_at": True}, "updated_at"),
        ({"tag": SecretStr("hunter2")}, "tag"),
        ({"reject_reason": SecretStr("hunter2")}, "reject_reason"),
        ({"broker_order_id": ""}, "broker_order_id"),
    ],
)
def test_record_intent_refuses_bad_values(
    journal: OrderJournal, path: Path, change: dict[str, object], field: str
) -> None:
    o = order(1)
    for key, value in change.items():
        setattr(o, key, value)
    with pytest.raises(JournalError) as info:
        journal.record_intent(o)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}=")
    assert journal.orders() == [] and journal.events() == []
    assert b"hunter2" not in path.read_bytes()


def test_record_intent_refuses_a_non_order(journal: OrderJournal) -> None:
    with pytest.raises(JournalError, match="must be an Order"):
        journal.record_intent({"id": "O1"})  # type: ignore[arg-type]


# -------------------------------------------------------------------------- replacements


def test_replacement_links_both_ways(journal: OrderJournal) -> None:
    old = order(1, type=OrderType.LIMIT, limit_price=10.0)
    journal.record_intent(old)
    journal.record_status(old.client_order_id, OrderStatus.ACCEPTED, T0 + 10)
    new = order(2, type=OrderType.LIMIT, limit_price=11.0)
    new.replaces = old.id  # the engine's convention: a local id
    journal.record_intent(new)
    got_new = journal.order(new.client_order_id)
    assert got_new is not None
    assert got_new.replaces == old.client_order_id  # stored as the client id
    assert got_new.to_order().replaces == old.id
    assert journal.events(new.client_order_id)[0].detail == f"replaces {old.client_order_id}"
    # not replaced yet: replaced_by waits for the confirmation, as on an Order
    assert journal.order(old.client_order_id).replaced_by is None  # type: ignore[union-attr]
    journal.record_status(old.client_order_id, OrderStatus.REPLACED, T0 + 20)
    got_old = journal.order(old.client_order_id)
    assert got_old is not None
    assert got_old.replaced_by == new.client_order_id
    assert got_old.replaced_by_local_id == new.id
    rebuilt = got_old.to_order()
    assert (rebuilt.status, rebuilt.replaced_by) == (OrderStatus.REPLACED, new.id)


def test_replaced_by_skips_a_rejected_replacement(journal: OrderJournal) -> None:
    old = order(1)
    journal.record_intent(old)
    journal.record_status(old.client_order_id, OrderStatus.ACCEPTED, T0 + 1)
    bad, good = order(2), order(3)
    journal.record_intent(bad, replaces=old.client_order_id)
    journal.record_status(bad.client_order_id, OrderStatus.REJECTED, T0 + 2, reason="no")
    journal.record_intent(good, replaces=old.client_order_id)
    journal.record_status(old.client_order_id, OrderStatus.REPLACED, T0 + 3)
    assert journal.order(old.client_order_id).replaced_by == good.client_order_id  # type: ignore[union-attr]
    assert journal.order(bad.client_order_id).to_order().replaces == old.id  # type: ignore[union-attr]
    late = order(4)  # a replacement refused after the good one: still the good one
    journal.record_intent(late, replaces=old.client_order_id)
    journal.record_status(late.client_order_id, OrderStatus.REJECTED, T0 + 4, reason="late")
    assert journal.order(old.client_order_id).replaced_by == good.client_order_id  # type: ignore[union-attr]


def test_replaces_must_name_a_journaled_order(journal: OrderJournal) -> None:
    orphan = order(2)
    orphan.replaces = "O000001"
    with pytest.raises(UnknownOrderError) as info:
        journal.record_intent(orphan)
    assert info.value.field == "replaces"
    with pytest.raises(UnknownOrderError):
        journal.record_intent(order(3), replaces="run1-O000001")
    journal.record_intent(order(1))
    journal.record_intent(order(4))
    mismatch = order(5)
    mismatch.replaces = "O000004"
    with pytest.raises(JournalError, match="replaces"):
        journal.record_intent(mismatch, replaces="run1-O000001")
    assert [o.local_id for o in journal.orders()] == ["O000001", "O000004"]


# ----------------------------------------------------------------------- broker id, status


def test_record_broker_id(journal: OrderJournal) -> None:
    o = order(1)
    journal.record_intent(o)
    journal.record_broker_id(o.client_order_id, "b-1")
    journal.record_broker_id(o.client_order_id, "b-1")  # again: nothing new
    got = journal.order(o.client_order_id)
    assert got is not None and got.broker_order_id == "b-1"
    assert got.to_order().broker_order_id == "b-1"
    assert [(e.kind, e.detail) for e in journal.events()] == [
        ("intent", None),
        ("broker_id", "b-1"),
    ]
    with pytest.raises(JournalError) as info:
        journal.record_broker_id(o.client_order_id, "b-2")
    assert info.value.field == "broker_order_id"
    assert journal.order(o.client_order_id).broker_order_id == "b-1"  # type: ignore[union-attr]
    with pytest.raises(UnknownOrderError):
        journal.record_broker_id("nope", "b-3")


def test_record_status_follows_the_state_machine(journal: OrderJournal) -> None:
    o = order(1)
    journal.record_intent(o)
    cid = o.client_order_id
    assert journal.record_status(cid, OrderStatus.ACCEPTED, T0 + 5) is True
    assert journal.record_status(cid, "accepted", T0 + 6) is False  # reported twice
    with pytest.raises(InvalidTransitionError):
        journal.record_status(cid, OrderStatus.NEW, T0 + 7)
    assert journal.record_status(cid, OrderStatus.CANCELED, T0 + 8, reason="user") is True
    with pytest.raises(InvalidTransitionError):
        journal.record_status(cid, OrderStatus.ACCEPTED, T0 + 9)
    got = journal.order(cid)
    assert got is not None
    assert (got.status, got.updated_at, got.reject_reason) == (OrderStatus.CANCELED, T0 + 8, "user")
    assert not got.is_open
    assert [(e.kind, e.status.value, e.ts, e.detail) for e in journal.events(cid)] == [
        ("intent", "new", o.created_at, None),
        ("status", "accepted", T0 + 5, None),
        ("status", "canceled", T0 + 8, "user"),
    ]


def test_record_status_rejection_keeps_the_reason(journal: OrderJournal) -> None:
    o = order(1)
    journal.record_intent(o)
    journal.record_status(o.client_order_id, OrderStatus.REJECTED, T0 + 1, reason="no shorts")
    rebuilt = journal.order(o.client_order_id).to_order()  # type: ignore[union-attr]
    assert (rebuilt.status, rebuilt.reject_reason) == (OrderStatus.REJECTED, "no shorts")


def test_record_status_refuses_bad_values(journal: OrderJournal) -> None:
    o = order(1)
    journal.record_intent(o)
    with pytest.raises(JournalError) as info:
        journal.record_status(o.client_order_id, "done", T0)
    assert info.value.field == "status"
    with pytest.raises(JournalError) as info:
        journal.record_status(o.client_order_id, OrderStatus.ACCEPTED, float(T0))  # type: ignore[arg-type]
    assert info.value.field == "ts"
    with pytest.raises(UnknownOrderError) as info:
        journal.record_status("nope", OrderStatus.ACCEPTED, T0)
    assert info.value.field == "client_order_id"
    assert journal.order(o.client_order_id).status is OrderStatus.NEW  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------ fills


def test_record_fill_updates_the_order_consistently(journal: OrderJournal) -> None:
    o = order(1, qty=10.0)
    journal.record_intent(o)
    cid = o.client_order_id
    assert not journal.has_execution("E1")
    assert journal.record_fill(cid, fill_of(o, 4.0, 100.0, "E1", T0 + 10, fee=0.5)) is True
    assert journal.has_execution("E1")
    got = journal.order(cid)
    assert got is not None
    assert (got.status, got.filled_qty, got.avg_fill_price, got.commission, got.updated_at) == (
        OrderStatus.PARTIALLY_FILLED,
        4.0,
        100.0,
        0.5,
        T0 + 10,
    )
    assert journal.record_fill(cid, fill_of(o, 6.0, 105.0, "E2", T0 + 20, fee=0.25)) is True
    got = journal.order(cid)
    assert got is not None
    assert got.status is OrderStatus.FILLED and got.filled_qty == 10.0
    assert got.avg_fill_price == pytest.approx(103.0)
    assert got.commission == 0.75
    # a new order is accepted first, as the order manager does
    assert [(e.kind, e.status.value, e.detail) for e in journal.events(cid)] == [
        ("intent", "new", None),
        ("status", "accepted", None),
        ("fill", "partially_filled", "E1"),
        ("fill", "filled", "E2"),
    ]
    fills = journal.fills(cid)
    assert [(f.execution_id, f.order_id, f.qty, f.price, f.commission, f.ts) for f in fills] == [
        ("E1", "O000001", 4.0, 100.0, 0.5, T0 + 10),
        ("E2", "O000001", 6.0, 105.0, 0.25, T0 + 20),
    ]
    assert all(f.side is OrderSide.BUY and f.symbol == "ACME" for f in fills)


def test_duplicate_execution_is_recorded_once(journal: OrderJournal, path: Path) -> None:
    o = order(1, qty=10.0)
    journal.record_intent(o)
    cid = o.client_order_id
    assert journal.record_fill(cid, fill_of(o, 4.0, 100.0, "X-1")) is True
    assert journal.record_fill(cid, fill_of(o, 4.0, 100.0, "X-1")) is False
    assert journal.record_fill(cid, fill_of(o, 5.0, 999.0, "X-1")) is False  # same id wins
    journal.close()
    with OrderJournal(path) as again:  # and after a restart
        assert again.record_fill(cid, fill_of(o, 4.0, 100.0, "X-1")) is False
        got = again.order(cid)
        assert got is not None
        assert (got.filled_qty, got.avg_fill_price) == (4.0, 100.0)
        assert [f.execution_id for f in again.fills()] == ["X-1"]
        assert [e.kind for e in again.events()].count("fill") == 1


def test_record_fill_refuses_what_the_order_manager_would_not_apply(
    journal: OrderJournal,
) -> None:
    o = order(1, qty=10.0)
    journal.record_intent(o)
    cid = o.client_order_id
    with pytest.raises(OrderStateError, match="exceeds remaining"):
        journal.record_fill(cid, fill_of(o, 10.5, 100.0, "E1"))
    got = journal.order(cid)
    assert got is not None and got.status is OrderStatus.NEW  # nothing half-written
    assert not journal.has_execution("E1")
    assert len(journal.events()) == 1
    journal.record_fill(cid, fill_of(o, 10.0, 100.0, "E2"))
    with pytest.raises(OrderStateError, match="filled"):
        journal.record_fill(cid, fill_of(o, 1.0, 100.0, "E3"))
    rejected = order(2)
    journal.record_intent(rejected)
    journal.record_status(rejected.client_order_id, OrderStatus.REJECTED, T0 + 5, reason="no")
    with pytest.raises(OrderStateError, match="rejected"):
        journal.record_fill(rejected.client_order_id, fill_of(rejected, 1.0, 100.0, "E4"))
    assert [f.execution_id for f in journal.fills()] == ["E2"]


@pytest.mark.parametrize("final", [OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REPLACED])
def test_a_late_fill_counts_and_the_status_stays(journal: OrderJournal, final: OrderStatus) -> None:
    """An execution that happened before the cancel but was reported after it (the order
    manager's rule, OrderBook.record_late_fill): quantities change, the final status stays."""
    o = order(1, qty=10.0)
    journal.record_intent(o)
    cid = o.client_order_id
    journal.record_fill(cid, fill_of(o, 4.0, 100.0, "E1", T0 + 10, fee=0.1))
    journal.record_status(cid, final, T0 + 20)
    assert journal.record_fill(cid, fill_of(o, 2.0, 106.0, "E2", T0 + 15, fee=0.2)) is True
    got = journal.order(cid)
    assert got is not None
    assert (got.status, got.filled_qty, got.updated_at) == (final, 6.0, T0 + 20)
    assert got.avg_fill_price == pytest.approx(102.0)
    assert got.commission == pytest.approx(0.3)
    assert journal.events(cid)[-1].kind == "fill" and journal.events(cid)[-1].status is final
    assert journal.record_fill(cid, fill_of(o, 2.0, 106.0, "E2")) is False  # once
    journal.record_fill(cid, fill_of(o, 4.0 + 5e-10, 100.0, "E3", T0 + 16))  # float noise
    got = journal.order(cid)
    assert got is not None and (got.status, got.filled_qty) == (final, 10.0)  # never above qty
    with pytest.raises(OrderStateError, match="exceeds remaining"):
        journal.record_fill(cid, fill_of(o, 0.5, 100.0, "E4"))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"execution_id": ""}, "execution_id"),
        ({"qty": 0.0}, "fill.qty"),
        ({"price": -1.0}, "fill.price"),
        ({"price": math.nan}, "fill.price"),
        ({"commission": -0.01}, "fill.commission"),
        ({"ts": 1.0}, "fill.ts"),
        ({"side": "short"}, "fill.side"),
        ({"symbol": "BOLT"}, "fill"),
        ({"side": OrderSide.SELL}, "fill"),
    ],
)
def test_record_fill_refuses_bad_fills(
    journal: OrderJournal, change: dict[str, object], field: str
) -> None:
    o = order(1)
    journal.record_intent(o)
    f = fill_of(o, 1.0, 100.0, "E1")
    for key, value in change.items():
        setattr(f, key, value)
    with pytest.raises(JournalError) as info:
        journal.record_fill(o.client_order_id, f)
    assert info.value.field == field
    assert journal.fills() == []
    assert journal.order(o.client_order_id).filled_qty == 0.0  # type: ignore[union-attr]


def test_record_fill_of_an_unknown_order(journal: OrderJournal) -> None:
    o = order(1)
    with pytest.raises(UnknownOrderError):
        journal.record_fill(o.client_order_id, fill_of(o, 1.0, 1.0, "E1"))
    with pytest.raises(JournalError, match="must be a Fill"):
        journal.record_fill(o.client_order_id, object())  # type: ignore[arg-type]
    assert not journal.has_execution("E1")


# ---------------------------------------------------------------------- events, seq, mark


def test_record_event(journal: OrderJournal) -> None:
    o = order(1)
    journal.record_intent(o)
    journal.record_status(o.client_order_id, OrderStatus.ACCEPTED, T0 + 1)
    journal.record_event(o.client_order_id, "reconciled", T0 + 2, "venue agrees")
    journal.record_event(o.client_order_id, "adopted", T0 + 3)
    events = journal.events(o.client_order_id)
    assert [(e.kind, e.status, e.ts, e.detail) for e in events[2:]] == [
        ("reconciled", OrderStatus.ACCEPTED, T0 + 2, "venue agrees"),
        ("adopted", OrderStatus.ACCEPTED, T0 + 3, None),
    ]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert journal.order(o.client_order_id).status is OrderStatus.ACCEPTED  # type: ignore[union-attr]
    for kind in ("fill", "status", "intent", "broker_id", "qty"):
        with pytest.raises(JournalError) as info:
            journal.record_event(o.client_order_id, kind, T0)
        assert info.value.field == "kind"
    with pytest.raises(JournalError):
        journal.record_event(o.client_order_id, "", T0)
    journal.record_event(o.client_order_id, "resend", T0 + 4, "")  # str(TimeoutError()) is ""
    assert journal.events(o.client_order_id)[-1].detail == ""
    with pytest.raises(JournalError):
        journal.record_event(o.client_order_id, "note", T0, SecretStr("x"))  # type: ignore[arg-type]
    with pytest.raises(UnknownOrderError):
        journal.record_event("nope", "adopted", T0)
    assert len(journal.events()) == 5


def test_local_seq_continues_across_runs(path: Path) -> None:
    with OrderJournal(path) as j:
        assert j.last_local_seq == 0
        assert j.next_local_seq() == 1
        assert j.next_local_seq() == 2
        assert j.last_local_seq == 2
        j.record_intent(order(10))  # the engine numbered it itself: the journal follows
        assert j.last_local_seq == 10
        j.record_intent(order(4))  # a lower number does not move it back
        custom = order(99)
        custom.id = "strategy-order"
        custom.client_order_id = "run1-strategy-order"
        j.record_intent(custom)  # not an O-number: ignored
        assert j.last_local_seq == 10
    with OrderJournal(path) as j:
        assert j.last_local_seq == 10
        assert j.next_local_seq() == 11


def test_mark(path: Path) -> None:
    with OrderJournal(path) as j:
        assert j.mark is None
        j.set_mark(T0)
        assert j.mark == T0
        j.set_mark(T0 + 5)
        bad_marks: list[Any] = [-1, 1.5, "1", None, True]
        for bad in bad_marks:
            with pytest.raises(JournalError) as info:
                j.set_mark(bad)
            assert info.value.field == "mark"
    with OrderJournal(path) as j:
        assert j.mark == T0 + 5
        assert j.meta()["mark"] == str(T0 + 5)


def test_set_meta_keeps_short_labels_only(journal: OrderJournal) -> None:
    journal.set_meta("strategy", "SmaCross")
    journal.set_meta("strategy", "MeanRevert")
    assert journal.meta()["strategy"] == "MeanRevert"
    bad_keys = ["run_id", "schema", "mark", "local_seq", "created_at", "api_key", "secret",
                "alpaca_token", "password", "auth", "Strategy", "1x", "a" * 33, ""]  # fmt: skip
    for key in bad_keys:
        with pytest.raises(JournalError) as info:
            journal.set_meta(key, "x")
        assert info.value.field == "key", key
    journal.set_meta("positions", "")  # empty is a value too
    assert journal.meta()["positions"] == ""
    for value in ["x" * 201, "two\nlines", SecretStr("x"), 5]:
        with pytest.raises(JournalError) as info:
            journal.set_meta("note", value)  # type: ignore[arg-type]
        assert info.value.field == "value"
    assert set(journal.meta()) == {
        "schema", "run_id", "created_at", "local_seq", "strategy", "positions"
    }  # fmt: skip


# ---------------------------------------------------------------------------------- reading


def test_reading(journal: OrderJournal) -> None:
    a, b, c = order(1), order(2, symbol="BOLT", side=OrderSide.SELL), order(3)
    for o in (a, b, c):
        journal.record_intent(o)
    journal.record_fill(a.client_order_id, fill_of(a, 10.0, 50.0, "E1"))
    journal.record_fill(b.client_order_id, fill_of(b, 2.0, 60.0, "E2"))
    journal.record_status(c.client_order_id, OrderStatus.REJECTED, T0 + 9, reason="x")
    assert [o.local_id for o in journal.orders()] == ["O000001", "O000002", "O000003"]
    assert [o.local_id for o in journal.orders(open_only=True)] == ["O000002"]
    assert journal.order("nope") is None
    assert [f.execution_id for f in journal.fills()] == ["E1", "E2"]
    assert [f.execution_id for f in journal.fills(b.client_order_id)] == ["E2"]
    assert journal.fills(c.client_order_id) == []
    assert [e.client_order_id for e in journal.events(c.client_order_id)] == [c.client_order_id] * 2
    seqs = [e.seq for e in journal.events()]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    d = journal.orders()[1].to_dict()
    assert d["side"] == "sell" and d["status"] == "partially_filled"
    assert d["created_at"] == iso_utc(b.created_at) and d["created_at_ns"] == b.created_at


def test_iso_utc_is_exact() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00Z"
    assert iso_utc(T0) == "2023-11-14T22:13:20Z"
    assert iso_utc(T0 + 123_456_789) == "2023-11-14T22:13:20.123456Z"
    assert iso_utc(T0 + 999_999_999) == "2023-11-14T22:13:20.999999Z"


def test_durable_across_reopen(path: Path) -> None:
    with OrderJournal(path) as j:
        run_id = j.run_id
        a, b = order(1), order(2, type=OrderType.LIMIT, limit_price=9.5)
        j.record_intent(a)
        j.record_broker_id(a.client_order_id, "ba")
        j.record_fill(a.client_order_id, fill_of(a, 3.0, 10.0, "E1", fee=0.1))
        j.record_intent(b, replaces=None)
        j.record_status(b.client_order_id, OrderStatus.ACCEPTED, T0 + 50)
        j.record_event(b.client_order_id, "reconciled", T0 + 60, "ok")
        j.set_mark(T0 + 70)
        j.set_meta("strategy", "SmaCross")
        orders, fills, events = j.orders(), j.fills(), j.events()
    assert not Path(f"{path}-wal").exists()  # a clean close checkpoints
    with OrderJournal(path) as j:
        assert j.run_id == run_id
        assert j.orders() == orders
        assert [f.to_dict() for f in j.fills()] == [f.to_dict() for f in fills]
        assert j.events() == events
        assert (j.mark, j.last_local_seq, j.meta()["strategy"]) == (T0 + 70, 2, "SmaCross")
        # and it keeps working
        j.record_fill(a.client_order_id, fill_of(a, 7.0, 20.0, "E2"))
        assert j.order(a.client_order_id).status is OrderStatus.FILLED  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- open / close


def test_close_and_context_manager(path: Path) -> None:
    j = OrderJournal(path)
    assert "open" in repr(j) and j.run_id in repr(j)
    j.close()
    j.close()  # idempotent
    assert j.closed and "closed" in repr(j)
    with pytest.raises(JournalError, match="closed"):
        j.record_intent(order(1))
    with pytest.raises(JournalError, match="closed"):
        j.orders()
    with OrderJournal(path) as k:
        k.record_intent(order(1))
    assert k.closed


def test_readonly_reads_and_refuses_writes(path: Path) -> None:
    with OrderJournal(path) as j:
        j.record_intent(order(1))
    with OrderJournal(path, readonly=True) as r:
        assert r.readonly and "read-only" in repr(r)
        assert len(r.orders()) == 1
        for write in (
            lambda: r.record_intent(order(2)),
            lambda: r.set_mark(1),
            lambda: r.next_local_seq(),
            lambda: r.record_status("run1-O000001", OrderStatus.ACCEPTED, T0),
        ):
            with pytest.raises(JournalError, match="read-only"):
                write()
        assert r._conn is not None
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            r._conn.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')")  # the file too
    with OrderJournal(path) as j:
        assert len(j.orders()) == 1


def test_readonly_never_creates(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(JournalError) as info:
        OrderJournal(missing, readonly=True)
    assert info.value.field == "path" and info.value.value == str(missing)
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(JournalFormatError, match="empty"):
        OrderJournal(empty, readonly=True)
    with OrderJournal(empty) as j:  # opened for writing, an empty file becomes a journal
        assert j.schema_version == SCHEMA_VERSION


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="directory") as info:
        OrderJournal(tmp_path)
    assert info.value.field == "path"
    with pytest.raises(JournalError, match="does not exist"):
        OrderJournal(tmp_path / "no" / "such" / "journal.db")
    assert not (tmp_path / "no").exists()


def test_not_a_journal(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a database\n" * 100)
    with pytest.raises(JournalFormatError) as info:
        OrderJournal(text)
    assert info.value.field == "path" and "not a tradeloop journal" in str(info.value)
    assert text.read_text().startswith("hello")  # untouched
    other = tmp_path / "other.db"
    con = raw(other)
    con.execute("CREATE TABLE t(x)")
    con.close()
    for readonly in (False, True):
        with pytest.raises(JournalFormatError, match="not a tradeloop journal"):
            OrderJournal(other, readonly=readonly)
    con = raw(other)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not converted
    con.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT)")  # a lookalike
    con.execute("INSERT INTO meta VALUES ('schema', '1'), ('run_id', 'x'), ('created_at', '1')")
    con.close()
    with pytest.raises(JournalFormatError, match="not a tradeloop journal"):
        OrderJournal(other)


def test_newer_or_damaged_schema(path: Path) -> None:
    OrderJournal(path).close()
    con = raw(path)
    con.execute(f"UPDATE meta SET value = '{SCHEMA_VERSION + 1}' WHERE key = 'schema'")
    with pytest.raises(JournalFormatError, match="newer"):
        OrderJournal(path)
    with pytest.raises(JournalFormatError, match="newer"):
        OrderJournal(path, readonly=True)
    con.execute("UPDATE meta SET value = 'x' WHERE key = 'schema'")
    with pytest.raises(JournalFormatError, match="damaged"):
        OrderJournal(path)
    con.execute(f"UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema'")
    con.execute("DELETE FROM meta WHERE key = 'run_id'")
    with pytest.raises(JournalFormatError, match="run_id"):
        OrderJournal(path)
    con.close()


def test_unknown_stored_value_is_a_format_error(journal: OrderJournal, path: Path) -> None:
    journal.record_intent(order(1))
    con = raw(path)
    con.execute("UPDATE orders SET status = 'parked'")
    con.close()
    with pytest.raises(JournalFormatError) as info:
        journal.orders()
    assert info.value.field == "status" and info.value.value == "parked"


def test_nothing_secret_in_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-live-0123456789abcdef"
    monkeypatch.setenv("APCA_API_SECRET_KEY", secret)
    monkeypatch.setenv("APCA_API_KEY_ID", "PKTESTKEYID0123")
    path = tmp_path / "j.db"
    with OrderJournal(path) as j:
        o = order(1)
        j.record_intent(o)
        j.record_fill(o.client_order_id, fill_of(o, 1.0, 2.0, "E1"))
        j.set_meta("strategy", "SmaCross")
        with pytest.raises(JournalError):
            j.set_meta("strategy", SecretStr(secret))  # type: ignore[arg-type]
        with pytest.raises(JournalError):
            j.record_event(o.client_order_id, "note", T0, SecretStr(secret))  # type: ignore[arg-type]
        data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in data and b"PKTESTKEYID0123" not in data
    assert b"SmaCross" in data  # the check does see what is written


def test_public_methods_write_nothing_unasked() -> None:
    """The journal's writing API is exactly this: no method takes a config or a mapping."""
    writers = sorted(
        name
        for name in dir(OrderJournal)
        if not name.startswith("_") and (name.startswith(("record_", "set_")) or "seq" in name)
    )
    assert writers == [
        "last_local_seq",
        "next_local_seq",
        "record_broker_id",
        "record_event",
        "record_fill",
        "record_intent",
        "record_qty",
        "record_status",
        "set_mark",
        "set_meta",
    ]


# ----------------------------------------------------------------------------- order classes


def bracket(book: OrderBook | None = None, qty: float = 10.0, **kw: Any) -> Order:
    """A bracket buy of ``qty`` made by the core (ids O000001 and its legs O000002, O000003)."""
    book = book if book is not None else OrderBook(OrderValidator(), client_id_prefix="run1-")
    params: dict[str, Any] = {
        "order_class": "bracket",
        "take_profit": {"limit_price": 110.0},
        "stop_loss": {"stop_price": 95.0, "limit_price": 94.5},
    }
    params.update(kw)
    return book.new_order("ACME", "buy", qty, "limit", limit_price=100.0, now=T0, **params)


def test_an_intent_journals_the_legs_with_their_entry(journal: OrderJournal) -> None:
    entry = bracket(tag="swing")
    take_profit, stop_loss = entry.legs
    journal.record_intent(entry)
    rows = journal.orders()
    assert [(r.local_id, r.order_class, r.parent, r.parent_local_id) for r in rows] == [
        ("O000001", OrderClass.BRACKET, None, None),
        ("O000002", OrderClass.BRACKET, "run1-O000001", "O000001"),
        ("O000003", OrderClass.BRACKET, "run1-O000001", "O000001"),
    ]
    assert journal.last_local_seq == 3
    intents = [(e.client_order_id, e.kind, e.detail) for e in journal.events()]
    assert intents == [
        ("run1-O000001", "intent", None),
        ("run1-O000002", "intent", "leg of run1-O000001"),
        ("run1-O000003", "intent", "leg of run1-O000001"),
    ]
    # one row makes one order, its class and parent kept
    leg = rows[2].to_order()
    assert (leg.order_class, leg.parent_id, leg.legs) == (OrderClass.BRACKET, "O000001", ())
    assert leg.to_dict() == stop_loss.to_dict()
    d = rows[1].to_dict()
    assert (d["order_class"], d["parent"], d["parent_local_id"]) == (
        "bracket",
        "run1-O000001",
        "O000001",
    )
    # load_orders links them back: the take-profit first, then the stop-loss
    loaded = journal.load_orders()
    assert [o.id for o in loaded] == ["O000001", "O000002", "O000003"]
    back = loaded[0]
    assert back.legs == (loaded[1], loaded[2])
    assert [(o.id, o.type, o.parent_id) for o in back.legs] == [
        (take_profit.id, OrderType.LIMIT, "O000001"),
        (stop_loss.id, OrderType.STOP_LIMIT, "O000001"),
    ]
    for mine, ref in zip(loaded, (entry, take_profit, stop_loss), strict=True):
        assert mine.to_dict() == ref.to_dict()
        assert mine.order_class is OrderClass.BRACKET


def test_load_orders_puts_the_take_profit_first_and_links_an_oco(journal: OrderJournal) -> None:
    entry = bracket()
    entry.legs = entry.legs[::-1]  # journaled stop-loss first
    journal.record_intent(entry)
    book = OrderBook(OrderValidator(), client_id_prefix="run1-")
    book._seq = 3
    oco = book.new_order(
        "ACME",
        "sell",
        10,
        "limit",
        order_class="oco",
        take_profit={"limit_price": 120.0},
        stop_loss={"stop_price": 90.0},
        now=T0,
    )
    journal.record_intent(oco)
    loaded = {o.id: o for o in journal.load_orders()}
    assert [leg.id for leg in loaded["O000001"].legs] == ["O000002", "O000003"]
    assert [leg.type for leg in loaded["O000001"].legs] == [OrderType.LIMIT, OrderType.STOP_LIMIT]
    assert loaded["O000004"].order_class is OrderClass.OCO
    assert [(leg.id, leg.parent_id) for leg in loaded["O000004"].legs] == [("O000005", "O000004")]
    assert loaded["O000004"].is_exit_leg and loaded["O000005"].is_exit_leg


def test_a_leg_is_journaled_with_its_entry_or_not_at_all(journal: OrderJournal) -> None:
    journal.record_intent(order(3, prefix="run1-"))  # takes the stop-loss leg's ids
    entry = bracket()
    with pytest.raises(DuplicateIntentError) as dup:
        journal.record_intent(entry)
    assert (dup.value.field, dup.value.value) == ("client_order_id", "run1-O000003")
    assert [o.local_id for o in journal.orders()] == ["O000003"]  # the entry was not written
    twins = bracket()
    twins.legs[1].id = twins.legs[0].id  # two legs with one local id
    twins.legs[1].client_order_id = "run1-other"
    with pytest.raises(DuplicateIntentError) as dup:
        journal.record_intent(twins)
    assert (dup.value.field, dup.value.value) == ("id", "O000002")
    stray = bracket()
    stray.legs[0].parent_id = "O000042"
    with pytest.raises(JournalError) as info:
        journal.record_intent(stray)
    assert (info.value.field, info.value.value) == ("legs[0].parent_id", "O000042")
    bad_leg = bracket()
    bad_leg.legs[1].qty = -1.0
    with pytest.raises(JournalError) as info:
        journal.record_intent(bad_leg)
    assert (info.value.field, info.value.value) == ("legs[1].qty", -1.0)
    nested = bracket()
    nested.parent_id = "O000003"
    with pytest.raises(JournalError) as info:
        journal.record_intent(nested)
    assert info.value.field == "legs"
    bad_class = order(7)
    bad_class.order_class = "ladder"  # type: ignore[assignment]
    with pytest.raises(JournalError) as info:
        journal.record_intent(bad_class)
    assert (info.value.field, info.value.value) == ("order_class", "ladder")
    assert [o.local_id for o in journal.orders()] == ["O000003"]


def test_a_leg_journaled_on_its_own_names_its_parent(journal: OrderJournal) -> None:
    entry = bracket()
    legs, entry.legs = entry.legs, ()
    journal.record_intent(entry)
    journal.record_intent(legs[0])
    assert journal.order("run1-O000002").parent == "run1-O000001"  # type: ignore[union-attr]
    orphan = legs[1]
    orphan.parent_id = "O000099"
    with pytest.raises(UnknownOrderError) as info:
        journal.record_intent(orphan)
    assert (info.value.field, info.value.value) == ("parent_id", "O000099")
    assert journal.order(orphan.client_order_id) is None


def test_record_qty_keeps_a_legs_size(path: Path) -> None:
    entry = bracket()
    tp, sl = entry.legs
    with OrderJournal(path) as j:
        j.record_intent(entry)
        j.record_status(entry.client_order_id, OrderStatus.ACCEPTED, T0 + 1)
        for leg in (tp, sl):  # they wait for the entry's fill
            j.record_status(leg.client_order_id, OrderStatus.HELD, T0 + 1)
        j.record_fill(entry.client_order_id, fill_of(entry, 4.0, 100.0, "E1"))
        for leg in (tp, sl):
            assert j.record_qty(leg.client_order_id, 4.0, T0 + 7) is True
            assert j.record_status(leg.client_order_id, OrderStatus.ACCEPTED, T0 + 7)
        assert j.record_qty(tp.client_order_id, 4.0, T0 + 8) is False  # no change, no write
        [event] = [e for e in j.events(tp.client_order_id) if e.kind == "qty"]
        assert (event.status, event.ts, event.detail) == (OrderStatus.HELD, T0 + 7, "10.0 -> 4.0")
        # a fill is checked against the size now
        with pytest.raises(OrderStateError):
            j.record_fill(sl.client_order_id, fill_of(sl, 5.0, 95.0, "E2"))
        j.record_fill(sl.client_order_id, fill_of(sl, 1.0, 95.0, "E3"))
        with pytest.raises(JournalError) as info:
            j.record_qty(sl.client_order_id, 0.5, T0 + 9)  # below what it filled
        assert (info.value.field, info.value.value) == ("qty", 0.5)
        simple = order(9)
        j.record_intent(simple)
        with pytest.raises(JournalError, match="simple order") as info:
            j.record_qty(simple.client_order_id, 5.0, T0 + 9)
        assert info.value.field == "qty"
        bad: list[tuple[Any, Any, Any, str]] = [
            (tp.client_order_id, 0.0, T0, "qty"),
            (tp.client_order_id, math.nan, T0, "qty"),
            (tp.client_order_id, "4", T0, "qty"),
            (tp.client_order_id, 4.0, -1, "ts"),
            ("", 4.0, T0, "client_order_id"),
        ]
        for cid, qty, ts, field in bad:
            with pytest.raises(JournalError) as info:
                j.record_qty(cid, qty, ts)
            assert info.value.field == field
        with pytest.raises(UnknownOrderError):
            j.record_qty("nope", 4.0, T0)
    with OrderJournal(path) as j:  # the size survives a reopen
        back = {o.id: o for o in j.load_orders()}
        assert [(leg.qty, leg.filled_qty, leg.status) for leg in back["O000001"].legs] == [
            (4.0, 0.0, OrderStatus.ACCEPTED),
            (4.0, 1.0, OrderStatus.PARTIALLY_FILLED),
        ]


# -------------------------------------------------------------------------------- migration

# The schema of version 1 exactly as tradeloop wrote it (before order classes were journaled).
SCHEMA_V1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE orders (
        client_order_id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        local_id TEXT NOT NULL UNIQUE,
        broker_order_id TEXT,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        qty REAL NOT NULL,
        type TEXT NOT NULL,
        tif TEXT NOT NULL,
        limit_price REAL,
        stop_price REAL,
        trail_price REAL,
        trail_percent REAL,
        tag TEXT,
        replaces TEXT REFERENCES orders(client_order_id),
        status TEXT NOT NULL,
        filled_qty REAL NOT NULL DEFAULT 0,
        avg_fill_price REAL,
        commission REAL NOT NULL DEFAULT 0,
        reject_reason TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    "CREATE INDEX orders_status ON orders(status)",
    "CREATE INDEX orders_replaces ON orders(replaces)",
    "CREATE INDEX orders_broker ON orders(broker_order_id)",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        client_order_id TEXT NOT NULL REFERENCES orders(client_order_id),
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        ts INTEGER NOT NULL,
        detail TEXT
    )""",
    "CREATE INDEX events_order ON events(client_order_id)",
    """CREATE TABLE fills (
        execution_id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        client_order_id TEXT NOT NULL REFERENCES orders(client_order_id),
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        qty REAL NOT NULL,
        price REAL NOT NULL,
        commission REAL NOT NULL,
        ts INTEGER NOT NULL
    )""",
    "CREATE INDEX fills_order ON fills(client_order_id)",
)


def make_v1_journal(path: Path) -> None:
    """A journal of schema 1 with one partly filled order, as tradeloop 1 left it."""
    con = raw(path)
    con.execute("PRAGMA journal_mode=WAL")
    for statement in SCHEMA_V1:
        con.execute(statement)
    con.execute(f"PRAGMA application_id={APPLICATION_ID}")
    con.executemany(
        "INSERT INTO meta(key, value) VALUES (?, ?)",
        [
            ("schema", "1"),
            ("run_id", "0s44we8abcdefgh"),
            ("created_at", str(T0)),
            ("local_seq", "1"),
            ("mark", str(T0 + 5)),
        ],
    )
    con.execute(
        """INSERT INTO orders(client_order_id, seq, local_id, broker_order_id, symbol, side, qty,
            type, tif, limit_price, status, filled_qty, avg_fill_price, commission, created_at,
            updated_at)
        VALUES ('run1-O000001', 1, 'O000001', 'B1', 'ACME', 'buy', 10, 'limit', 'gtc', 100,
            'partially_filled', 4, 99.5, 0.4, ?, ?)""",
        (T0, T0 + 3),
    )
    con.execute(
        "INSERT INTO events(client_order_id, kind, status, ts) "
        "VALUES ('run1-O000001', 'intent', 'new', ?)",
        (T0,),
    )
    con.execute(
        "INSERT INTO fills VALUES ('E1', 1, 'run1-O000001', 'ACME', 'buy', 4, 99.5, 0.4, ?)",
        (T0 + 3,),
    )
    con.close()


def test_a_schema_1_journal_is_migrated_when_opened_for_writing(tmp_path: Path) -> None:
    path, copy = tmp_path / "v1.db", tmp_path / "v1-readonly.db"
    make_v1_journal(path)
    make_v1_journal(copy)
    # read-only: read as it is, orders simple, the file untouched
    with OrderJournal(copy, readonly=True) as j:
        assert j.schema_version == 1
        [row] = j.orders()
        assert (row.order_class, row.parent, row.parent_local_id) == (OrderClass.SIMPLE, None, None)
        assert j.load_orders()[0].to_dict() == row.to_order().to_dict()
    con = raw(copy)
    assert "order_class" not in {c[1] for c in con.execute("PRAGMA table_info(orders)")}
    con.close()
    # for writing: migrated, everything kept, the new columns with their defaults
    with OrderJournal(path) as j:
        assert j.schema_version == SCHEMA_VERSION == 2
        assert j.meta()["schema"] == "2"
        assert (j.run_id, j.created_at, j.mark, j.last_local_seq) == (
            "0s44we8abcdefgh",
            T0,
            T0 + 5,
            1,
        )
        [row] = j.orders(open_only=True)
        assert (row.order_class, row.parent, row.qty, row.filled_qty) == (
            OrderClass.SIMPLE,
            None,
            10.0,
            4.0,
        )
        o = row.to_order()
        assert (o.status, o.broker_order_id, o.order_class, o.parent_id) == (
            OrderStatus.PARTIALLY_FILLED,
            "B1",
            OrderClass.SIMPLE,
            None,
        )
        assert [f.execution_id for f in j.fills()] == ["E1"]
        assert [e.kind for e in j.events()] == ["intent"]
        # and it journals order classes now
        book = OrderBook(OrderValidator(), client_id_prefix="run1-")
        book._seq = 1
        j.record_intent(bracket(book))
        assert [o.parent for o in j.orders()] == [None, None, "run1-O000002", "run1-O000002"]
        j.record_qty("run1-O000003", 2.0, T0 + 9)
    con = raw(path)
    cols = {c[1]: c for c in con.execute("PRAGMA table_info(orders)")}
    assert cols["order_class"][2:5] == ("TEXT", 1, "'simple'")
    assert cols["parent"][2:5] == ("TEXT", 0, None)
    indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "orders_parent" in indexes
    [fk] = [r for r in con.execute("PRAGMA foreign_key_list(orders)") if r[3] == "parent"]
    assert (fk[2], fk[4]) == ("orders", "client_order_id")
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    con.close()
    with OrderJournal(path) as j:  # opened again: nothing left to migrate
        assert j.schema_version == 2 and len(j.orders()) == 4
    with OrderJournal(path, readonly=True) as j:
        assert [o.order_class for o in j.orders()][1:] == [OrderClass.BRACKET] * 3


def test_a_failed_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    make_v1_journal(path)
    con = raw(path)
    con.execute("CREATE INDEX orders_parent ON orders(status)")  # in the migration's way
    con.close()
    with pytest.raises(JournalError, match="cannot migrate from schema 1") as info:
        OrderJournal(path)
    assert info.value.field == "path" and info.value.value == str(path)
    con = raw(path)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == "1"
    assert "order_class" not in {c[1] for c in con.execute("PRAGMA table_info(orders)")}
    con.close()


# ---------------------------------------------------------------------- crash, concurrency


def run_python(code: str, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=SUBPROCESS_TIMEOUT,
        **kw,
    )


KILLED_WRITER = """
    import os, sqlite3, sys
    from tradeloop.execution.types import Fill, Order, OrderSide
    from tradeloop.persistence import OrderJournal

    path = sys.argv[1]
    j = OrderJournal(path)
    print(j.run_id, flush=True)
    for n in range(1, 6):
        cid = f"{j.run_id}-O{n:06d}"
        j.record_intent(Order(f"O{n:06d}", "ACME", OrderSide.BUY, 10.0, client_order_id=cid,
                              created_at=n))
        j.record_broker_id(cid, f"B{n}")
        j.record_fill(cid, Fill(f"O{n:06d}", "ACME", OrderSide.BUY, 4.0, 100.0 + n, 0.5,
                                10 + n, f"E{n}"))
        j.record_fill(cid, Fill(f"O{n:06d}", "ACME", OrderSide.BUY, 4.0, 100.0 + n, 0.5,
                                10 + n, f"E{n}"))  # a duplicate report
    j.set_mark(99)
    cid = f"{j.run_id}-O000006"
    j.record_intent(Order("O000006", "ACME", OrderSide.SELL, 3.0, client_order_id=cid))
    # a write in flight when the process dies: begun, never committed
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO meta(key, value) VALUES ('half', 'written')")
    other.execute("UPDATE orders SET status = 'filled'")
    print("killing", flush=True)
    os._exit(1)  # no close, no commit, no atexit
"""


def test_killed_process_loses_nothing_committed(path: Path) -> None:
    proc = run_python(KILLED_WRITER, str(path))
    assert proc.returncode == 1, proc.stderr
    run_id, last = proc.stdout.split()
    assert last == "killing"
    assert Path(f"{path}-wal").stat().st_size > 0  # never checkpointed: the WAL holds it all
    with OrderJournal(path) as j:
        assert j.run_id == run_id
        orders = j.orders()
        assert [o.client_order_id for o in orders] == [f"{run_id}-O{n:06d}" for n in range(1, 7)]
        for n, o in enumerate(orders[:5], start=1):
            assert (o.status, o.filled_qty, o.avg_fill_price, o.broker_order_id) == (
                OrderStatus.PARTIALLY_FILLED,
                4.0,
                100.0 + n,
                f"B{n}",
            )
        assert orders[5].status is OrderStatus.NEW and orders[5].side is OrderSide.SELL
        assert [f.execution_id for f in j.fills()] == [f"E{n}" for n in range(1, 6)]
        assert j.mark == 99
        assert "half" not in j.meta()  # the uncommitted write is gone
        assert j.last_local_seq == 6
        # the restarted run goes on where the killed one stopped
        assert j.next_local_seq() == 7
        assert (
            j.record_fill(
                orders[0].client_order_id,
                Fill("O000001", "ACME", OrderSide.BUY, 4.0, 101.0, 0.5, 11, "E1"),
            )
            is False
        )
        assert (
            j.record_fill(
                orders[5].client_order_id,
                Fill("O000006", "ACME", OrderSide.SELL, 3.0, 90.0, 0.0, 20, "E6"),
            )
            is True
        )


READER = """
    import json, sys
    from tradeloop.persistence import OrderJournal

    with OrderJournal(sys.argv[1], readonly=True) as j:
        for line in sys.stdin:  # one report per line the test sends
            orders = j.orders()
            print(json.dumps([len(orders), len(j.fills()), [o.status.value for o in orders],
                              j.mark]), flush=True)
"""


def test_a_reader_process_sees_committed_rows_while_the_writer_runs(path: Path) -> None:
    with OrderJournal(path) as j:
        a, b = order(1), order(2)
        j.record_intent(a)
        j.record_intent(b)
        reader = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(READER), str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert reader.stdin is not None and reader.stdout is not None
        try:
            reader.stdin.write("report\n")
            reader.stdin.flush()
            assert reader.stdout.readline().strip() == '[2, 0, ["new", "new"], null]'
            # the writer keeps writing while the reader has the file open
            j.record_fill(a.client_order_id, fill_of(a, 10.0, 5.0, "E1"))
            j.record_intent(order(3))
            j.set_mark(42)
            reader.stdin.write("report\n")
            reader.stdin.flush()
            line = reader.stdout.readline().strip()
            assert line == '[3, 1, ["filled", "new", "new"], 42]'
            _, err = reader.communicate(timeout=SUBPROCESS_TIMEOUT)
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.wait(timeout=SUBPROCESS_TIMEOUT)
        assert reader.returncode == 0, err
        # and the writer was never blocked
        j.record_status(b.client_order_id, OrderStatus.ACCEPTED, T0 + 1)


def test_a_reader_process_does_not_block_the_writer(path: Path) -> None:
    with OrderJournal(path) as j:
        j.record_intent(order(1))
    hold = """
        import sqlite3, sys
        con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, isolation_level=None)
        con.execute("BEGIN")
        print(con.execute("SELECT count(*) FROM orders").fetchone()[0], flush=True)
        sys.stdin.readline()  # holds its read transaction until told
        print(con.execute("SELECT count(*) FROM orders").fetchone()[0], flush=True)
    """
    reader = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(hold), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdin is not None and reader.stdout is not None
    try:
        assert reader.stdout.readline().strip() == "1"
        started = time.monotonic()
        with OrderJournal(path) as j:
            j.record_intent(order(2))  # commits although a reader holds a snapshot
            assert len(j.orders()) == 2
        assert time.monotonic() - started < 4.0  # well under the 5 s busy timeout
        out, _ = reader.communicate("go\n", timeout=SUBPROCESS_TIMEOUT)
        assert out.strip() == "1"  # its snapshot is consistent
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait(timeout=SUBPROCESS_TIMEOUT)


# ------------------------------------------------------------------------ property: model


_STATUSES = list(OrderStatus)
LATE_FILL_STATUSES = {OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REPLACED}

ORDER_INDEX = st.integers(0, 2)
op_strategy = st.one_of(
    st.tuples(st.just("intent"), ORDER_INDEX, st.sampled_from([1.0, 3.0, 10.0, 0.3])),
    st.tuples(
        st.just("status"), ORDER_INDEX, st.sampled_from(_STATUSES), st.sampled_from(["", "r"])
    ),
    st.tuples(
        st.just("fill"),
        ORDER_INDEX,
        st.sampled_from(["rest", "half", "any"]),
        st.floats(0.01, 12.0),
        st.floats(0.5, 500.0),
        st.integers(0, 8),  # execution ids from a small pool: duplicates happen
    ),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op_strategy, min_size=1, max_size=30))
@example(  # a partial fill, a cancel, then a fill reported late
    ops=[
        ("intent", 0, 10.0),
        ("fill", 0, "half", 1.0, 100.0, 1),
        ("status", 0, OrderStatus.CANCELED, ""),
        ("fill", 0, "half", 1.0, 104.0, 2),
        ("fill", 0, "rest", 1.0, 108.0, 3),
        ("fill", 0, "any", 1.0, 108.0, 4),
    ]
)
@example(  # a late fill of a new order replaced before any fill
    ops=[
        ("intent", 1, 3.0),
        ("status", 1, OrderStatus.ACCEPTED, ""),
        ("status", 1, OrderStatus.REPLACED, ""),
        ("fill", 1, "any", 2.0, 50.0, 0),
        ("status", 1, OrderStatus.CANCELED, "r"),
    ]
)
def test_journal_matches_the_core_applied_directly(ops: list[tuple[Any, ...]]) -> None:
    """Random intents, status changes and fills: the journal's orders, rebuilt by to_order(),
    match orders the core (OrderBook, state machine) changed directly, as the order manager
    does: same status, filled qty, average price, commission, time, fills."""
    book = OrderBook(OrderValidator())
    seen: set[str] = set()
    ts = T0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "j.db"
        journal = OrderJournal(path)
        try:
            for op in ops:
                ts += 1
                kind, n = op[0], op[1]
                ref = book.orders.get(f"O{n:06d}")
                if kind == "intent":
                    new = order(n, qty=op[2])
                    if ref is not None:
                        with pytest.raises(DuplicateIntentError):
                            journal.record_intent(new)
                    else:
                        journal.record_intent(new)
                        book.register(new)
                    continue
                if ref is None:
                    continue
                cid = ref.client_order_id
                if kind == "status":
                    target, reason = op[2], op[3] or None
                    if ref.status is target:
                        assert journal.record_status(cid, target, ts, reason=reason) is False
                    elif can_transition(ref.status, target):
                        assert journal.record_status(cid, target, ts, reason=reason) is True
                        book.set_status(ref, target, ts, reason=reason)
                    else:
                        with pytest.raises(InvalidTransitionError):
                            journal.record_status(cid, target, ts, reason=reason)
                    continue
                mode, x, price, eid = op[2], op[3], op[4], f"E{op[5]}"
                qty = {"rest": ref.remaining_qty, "half": ref.remaining_qty / 2, "any": x}[mode]
                if qty <= 0:
                    qty = x
                fee = round(qty * 0.01, 6)
                f = Fill(ref.id, ref.symbol, ref.side, qty, price, fee, ts, eid)
                late = ref.status in LATE_FILL_STATUSES
                if eid in seen:
                    assert journal.record_fill(cid, f) is False
                elif (not ref.is_open and not late) or qty > ref.remaining_qty + 1e-9:
                    with pytest.raises(OrderStateError):
                        journal.record_fill(cid, f)
                else:
                    assert journal.record_fill(cid, f) is True
                    seen.add(eid)
                    if late:
                        book.record_late_fill(ref, qty, price, fee, ts)
                    else:
                        if ref.status in (OrderStatus.NEW, OrderStatus.HELD):
                            book.set_status(ref, OrderStatus.ACCEPTED, ts)
                        book.record_fill(ref, qty, price, fee, ts)
            journal.close()
            journal = OrderJournal(path)  # and it all survives a reopen
            got = {o.local_id: o.to_order() for o in journal.orders()}
            assert set(got) == set(book.orders)
            for oid, ref in book.orders.items():
                mine = got[oid]
                assert mine.status is ref.status, oid
                assert mine.filled_qty == ref.filled_qty, oid
                assert mine.avg_fill_price == ref.avg_fill_price, oid
                assert mine.commission == ref.commission, oid
                assert mine.updated_at == ref.updated_at, oid
                assert mine.reject_reason == ref.reject_reason, oid
                assert mine.is_open == ref.is_open, oid
            assert {f.execution_id for f in journal.fills()} == seen
            open_ids = {o.local_id for o in journal.orders(open_only=True)}
            assert open_ids == {oid for oid, o in book.orders.items() if o.is_open}
        finally:
            journal.close()
