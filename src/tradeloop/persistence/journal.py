"""OrderJournal: a durable record of a live run's orders, in one SQLite file.

The journal is how "nothing doubled, nothing lost" survives a crash (see the live rules): an
order's intent is written *before* the order is sent, so a restarted run knows every client order
id it may have used; fills are keyed by the venue's execution id, so a fill reported twice (stream
and reconciliation, or two runs) is recorded once.

Storage: the standard library's :mod:`sqlite3`, WAL mode with ``synchronous=NORMAL``. Every write
method commits before it returns, and a committed write survives the process being killed (not a
power cut, which ``synchronous=FULL`` would need). Another process may read the file while the
engine writes (WAL readers never block the writer, nor it them).

Tables (schema version :data:`SCHEMA_VERSION`, kept in ``meta``):

``meta``
    ``key``/``value`` text pairs: ``run_id``, ``created_at`` (int ns), ``schema``, ``local_seq``,
    ``mark`` (once set) and a few short labels (:meth:`OrderJournal.set_meta`).
``orders``
    one row per client order id: the order's request fields, ``replaces`` (the *client* id of the
    order it replaces), its ``order_class`` (``simple``, ``bracket``, ``oco``, ``oto``) and
    ``parent`` (for an exit leg, the *client* id of the order it is a leg of), and its state
    (status, filled qty, average price, commission, reason, ``created_at``/``updated_at`` in
    int ns). ``qty`` is the order's size now: an exit leg's follows its entry's fills
    (:meth:`OrderJournal.record_qty`).
``events``
    append-only: ``seq``, ``client_order_id``, ``kind``, ``status`` (the order's status after the
    event), ``ts``, ``detail``. The journal writes ``intent``, ``broker_id``, ``status``, ``fill``
    and ``qty`` events itself; :meth:`OrderJournal.record_event` adds others (``adopted``, ...).
``fills``
    one row per ``execution_id`` (the primary key): the order's client id, symbol, side, qty,
    price, commission, ts.

Schema versions: 1, the first; 2 adds ``orders.order_class`` and ``orders.parent``. A journal of
an older version is migrated when it is opened for writing (its orders become ``simple`` ones
without a parent); opened read-only, it is read as it is.

Status changes and fills follow the core's order state machine, as the live order manager applies
them: an illegal transition raises :class:`~tradeloop.errors.InvalidTransitionError` and writes
nothing; a fill of a ``new`` order accepts it first, adds to the filled quantity and the average
price the way :meth:`~tradeloop.execution.core.book.OrderBook.record_fill` does, and moves the
order to ``partially_filled`` or ``filled``; a late fill (of an order canceled, expired or replaced
meanwhile) counts without changing the status, as ``OrderBook.record_late_fill`` does.

Nothing secret is written: the journal holds orders, never keys, and it has no method that stores
a configuration. Text fields must be plain ``str`` (a ``SecretStr`` is refused).
"""

from __future__ import annotations

import math
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeVar

from tradeloop.errors import InvalidTransitionError, OrderStateError, TradeloopError
from tradeloop.execution.core.state import can_transition
from tradeloop.execution.types import (
    TERMINAL_STATUSES,
    Fill,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "DuplicateIntentError",
    "JournalError",
    "JournalEvent",
    "JournalFormatError",
    "JournalOrder",
    "OrderJournal",
    "UnknownOrderError",
    "iso_utc",
]

SCHEMA_VERSION: Final = 2
"""The schema this module writes; it opens journals of this version or older (and migrates them
when it opens them for writing)."""

APPLICATION_ID: Final = 0x544C4A4E
"""``PRAGMA application_id`` of a tradeloop journal ("TLJN"): marks the file as one."""

_EPS: Final = 1e-9  # the tolerance of OrderBook.record_fill
_BUSY_TIMEOUT_S: Final = 5.0
_RUN_ID_RANDOM = 8
_BASE36: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
_LOCAL_ID = re.compile(r"O(\d+)")
_META_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")
_META_VALUE_MAX = 200
_RESERVED_META: Final = frozenset({"run_id", "created_at", "schema", "local_seq", "mark"})
_SECRET_WORDS: Final = ("key", "secret", "token", "pass", "auth", "cred", "cookie", "session")
_JOURNAL_KINDS: Final = frozenset({"intent", "broker_id", "status", "fill", "qty"})
_WAITING: Final = frozenset({OrderStatus.NEW, OrderStatus.HELD})
_LATE_FILL_STATUSES: Final = frozenset(
    {OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REPLACED}
)  # an execution reported after the order ended still counts (the order manager's rule)
_OPEN_VALUES: Final = tuple(s.value for s in OrderStatus if s not in TERMINAL_STATUSES)

_SCHEMA: Final = (
    """CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
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
        updated_at INTEGER NOT NULL,
        order_class TEXT NOT NULL DEFAULT 'simple',
        parent TEXT REFERENCES orders(client_order_id)
    )""",
    "CREATE INDEX orders_status ON orders(status)",
    "CREATE INDEX orders_replaces ON orders(replaces)",
    "CREATE INDEX orders_broker ON orders(broker_order_id)",
    "CREATE INDEX orders_parent ON orders(parent)",
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

# What turns a journal of schema version ``v`` (the key) into one of version ``v + 1``; applied in
# one transaction when an older journal is opened for writing. ``_SCHEMA`` is the end result.
_MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        "ALTER TABLE orders ADD COLUMN order_class TEXT NOT NULL DEFAULT 'simple'",
        "ALTER TABLE orders ADD COLUMN parent TEXT REFERENCES orders(client_order_id)",
        "CREATE INDEX orders_parent ON orders(parent)",
    ),
}

# Every order column, in table order, and the derived ones ``orders()`` adds.
_ORDER_COLUMNS: Final = (
    "client_order_id",
    "local_id",
    "broker_order_id",
    "symbol",
    "side",
    "qty",
    "type",
    "tif",
    "limit_price",
    "stop_price",
    "trail_price",
    "trail_percent",
    "tag",
    "replaces",
    "status",
    "filled_qty",
    "avg_fill_price",
    "commission",
    "reject_reason",
    "created_at",
    "updated_at",
)
_CLASS_COLUMNS: Final = ("order_class", "parent")  # schema 2


def _select_orders(version: int) -> str:
    """The query behind :meth:`OrderJournal.orders` for a journal of schema ``version`` (one of
    version 1, opened read-only, has no order-class columns: its orders are simple ones)."""
    if version >= 2:
        linked = ", ".join("o." + c for c in _CLASS_COLUMNS) + ", q.local_id AS parent_local_id"
        join = "LEFT JOIN orders q ON q.client_order_id = o.parent"
    else:
        linked = "'simple' AS order_class, NULL AS parent, NULL AS parent_local_id"
        join = ""
    return f"""
    SELECT {", ".join("o." + c for c in _ORDER_COLUMNS)}, {linked},
        p.local_id AS replaces_local_id,
        r.client_order_id AS replaced_by,
        r.local_id AS replaced_by_local_id
    FROM orders o
    LEFT JOIN orders p ON p.client_order_id = o.replaces
    LEFT JOIN orders r ON o.status = 'replaced' AND r.seq = (
        SELECT max(x.seq) FROM orders x
        WHERE x.replaces = o.client_order_id AND x.status != 'rejected'
    )
    {join}
"""


# ------------------------------------------------------------------------------------- errors


class JournalError(TradeloopError):
    """The journal cannot do what was asked: a bad value, an unusable file, a failed write.

    ``field``/``value`` name the value at fault when there is one; the message is then
    ``field=value: reason``, as for every tradeloop error about a value.
    """

    def __init__(self, reason: str, *, field: str | None = None, value: object = None) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(reason if field is None else f"{field}={value!r}: {reason}")


class JournalFormatError(JournalError):
    """The file is not a tradeloop journal, or one of a newer schema, or a damaged one."""


class DuplicateIntentError(JournalError):
    """An intent with this client order id (or local id) is journaled already."""


class UnknownOrderError(JournalError):
    """No order with this client order id is journaled."""


# --------------------------------------------------------------------------------- value types


def iso_utc(ns: int) -> str:
    """Int nanoseconds since the epoch -> ISO 8601 UTC with a ``Z`` (exact to the microsecond;
    the fraction is left out when it is zero)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    dt = datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=rest // 1000)
    return dt.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class JournalOrder:
    """One row of ``orders`` as it is now, plus the links to the orders it replaces / was
    replaced by and, for an exit leg, to its parent (client ids as stored, local ids for
    :meth:`to_order`)."""

    client_order_id: str
    local_id: str
    broker_order_id: str | None
    symbol: str
    side: OrderSide
    qty: float
    type: OrderType
    tif: TimeInForce
    limit_price: float | None
    stop_price: float | None
    trail_price: float | None
    trail_percent: float | None
    tag: str | None
    replaces: str | None
    status: OrderStatus
    filled_qty: float
    avg_fill_price: float | None
    commission: float
    reject_reason: str | None
    created_at: int
    updated_at: int
    replaces_local_id: str | None = None
    replaced_by: str | None = None
    replaced_by_local_id: str | None = None
    order_class: OrderClass = OrderClass.SIMPLE
    parent: str | None = None
    parent_local_id: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL_STATUSES

    @property
    def remaining_qty(self) -> float:
        return self.qty - self.filled_qty

    def to_order(self) -> Order:
        """An :class:`Order` in this state: status, filled qty, average price, commission,
        broker id, its order class, and ``replaces``/``replaced_by``/``parent_id`` as local ids
        (the engine's convention). A parent's ``legs`` are not set here: one row makes one
        order; :meth:`OrderJournal.load_orders` links them."""
        order = Order(
            self.local_id,
            self.symbol,
            self.side,
            self.qty,
            self.type,
            self.tif,
            limit_price=self.limit_price,
            stop_price=self.stop_price,
            trail_price=self.trail_price,
            trail_percent=self.trail_percent,
            client_order_id=self.client_order_id,
            tag=self.tag,
            created_at=self.created_at,
        )
        order.status = self.status
        order.filled_qty = self.filled_qty
        order.avg_fill_price = self.avg_fill_price
        order.commission = self.commission
        order.reject_reason = self.reject_reason
        order.updated_at = self.updated_at
        order.broker_order_id = self.broker_order_id
        order.replaces = self.replaces_local_id
        order.replaced_by = self.replaced_by_local_id
        order.order_class = self.order_class
        order.parent_id = self.parent_local_id
        return order

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: enums as strings, timestamps as ISO UTC and as int ns."""
        d = asdict(self)
        for key, value in d.items():
            if isinstance(value, StrEnum):
                d[key] = value.value
        d["created_at_ns"] = self.created_at
        d["updated_at_ns"] = self.updated_at
        d["created_at"] = iso_utc(self.created_at)
        d["updated_at"] = iso_utc(self.updated_at)
        return d


@dataclass(frozen=True, slots=True)
class JournalEvent:
    """One row of ``events``: what happened to an order, and its status after."""

    seq: int
    client_order_id: str
    kind: str
    status: OrderStatus
    ts: int
    detail: str | None


# ------------------------------------------------------------------------------------ helpers

E = TypeVar("E", bound=StrEnum)


def _new_run_id() -> str:
    """Seconds since the epoch in base 36 (7 characters, so ids sort by time) and 8 random
    base-36 characters: 15 characters of ``[0-9a-z]``."""
    n = int(time.time())
    digits = ""
    while n:
        n, r = divmod(n, 36)
        digits = _BASE36[r] + digits
    random_part = "".join(secrets.choice(_BASE36) for _ in range(_RUN_ID_RANDOM))
    return digits.rjust(7, "0")[-7:] + random_part


def _text(field: str, value: object, *, empty: bool = False) -> str:
    """A plain ``str``, non-empty unless ``empty``: no secret wrappers, no other objects."""
    if type(value) is not str and not isinstance(value, StrEnum):
        raise JournalError("must be a plain string", field=field, value=type(value).__name__)
    assert isinstance(value, str)
    if not value and not empty:
        raise JournalError("must not be empty", field=field, value=value)
    return str(value)


def _opt_text(field: str, value: object, *, empty: bool = False) -> str | None:
    return None if value is None else _text(field, value, empty=empty)


def _ns(field: str, value: object) -> int:
    if type(value) is not int or value < 0:
        raise JournalError("must be an int of nanoseconds >= 0", field=field, value=value)
    return value


def _float(field: str, value: object, *, positive: bool = False) -> float:
    """A finite int or float (``> 0`` if ``positive``), as a float."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and (number > 0 or not positive):
            return number
    need = "a finite number > 0" if positive else "a finite number"
    raise JournalError(f"must be {need}", field=field, value=value)


def _opt_float(field: str, value: object) -> float | None:
    return None if value is None else _float(field, value)


def _enum(enum: type[E], field: str, value: object) -> E:
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            pass
    allowed = ", ".join(m.value for m in enum)
    raise JournalError(f"must be one of: {allowed}", field=field, value=value)


def _stored_enum(enum: type[E], field: str, value: object) -> E:
    """An enum read back from the file: an unknown value means a damaged or foreign journal."""
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            pass
    raise JournalFormatError(
        "unknown value in the journal (written by a newer tradeloop?)", field=field, value=value
    )


def _row_to_order(row: sqlite3.Row) -> JournalOrder:
    return JournalOrder(
        client_order_id=row["client_order_id"],
        local_id=row["local_id"],
        broker_order_id=row["broker_order_id"],
        symbol=row["symbol"],
        side=_stored_enum(OrderSide, "side", row["side"]),
        qty=row["qty"],
        type=_stored_enum(OrderType, "type", row["type"]),
        tif=_stored_enum(TimeInForce, "tif", row["tif"]),
        limit_price=row["limit_price"],
        stop_price=row["stop_price"],
        trail_price=row["trail_price"],
        trail_percent=row["trail_percent"],
        tag=row["tag"],
        replaces=row["replaces"],
        status=_stored_enum(OrderStatus, "status", row["status"]),
        filled_qty=row["filled_qty"],
        avg_fill_price=row["avg_fill_price"],
        commission=row["commission"],
        reject_reason=row["reject_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        replaces_local_id=row["replaces_local_id"],
        replaced_by=row["replaced_by"],
        replaced_by_local_id=row["replaced_by_local_id"],
        order_class=_stored_enum(OrderClass, "order_class", row["order_class"]),
        parent=row["parent"],
        parent_local_id=row["parent_local_id"],
    )


def _leg_rank(leg: Order) -> int:
    """Where a leg goes in its parent's ``legs``: the take-profit (the limit leg) first, then
    the stop-loss, as :meth:`~tradeloop.execution.core.book.OrderBook.new_order` makes them."""
    return 0 if leg.type is OrderType.LIMIT else 1


def _link_legs(orders: list[Order]) -> None:
    """Set every parent's ``legs`` from its legs' ``parent_id`` (in journal order, ranked by
    :func:`_leg_rank`)."""
    by_id = {o.id: o for o in orders}
    legs: dict[str, list[Order]] = {}
    for o in orders:
        if o.parent_id is not None and o.parent_id in by_id:
            legs.setdefault(o.parent_id, []).append(o)
    for parent_id, found in legs.items():
        by_id[parent_id].legs = tuple(sorted(found, key=_leg_rank))


# ------------------------------------------------------------------------------------ journal


class OrderJournal:
    """A live run's orders, events and fills in the SQLite file at ``path`` (see the module
    docstring).

    Opening a path that does not exist creates a journal there (its directory must exist), with a
    fresh :attr:`run_id`; opening an existing journal reads it back, so a restarted run keeps its
    run id, its order numbering and its reconciliation mark. ``readonly=True`` opens an existing
    journal for reading only (another process may be writing it).

    Use one journal object from one thread (the event loop's); every write commits before it
    returns. Raises :class:`JournalError` (and its subclasses) for a bad file or a bad value.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self._path = Path(path)
        self._readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._select = _select_orders(SCHEMA_VERSION)
        self._conn = self._connect()
        try:
            self._prepare()
            self._run_id = self._meta_value("run_id")
            self._created_at = int(self._meta_value("created_at"))
        except ValueError:
            self.close()
            raise JournalFormatError(
                "damaged journal: bad created_at", field="path", value=str(self._path)
            ) from None
        except BaseException:
            self.close()
            raise

    # -- opening -------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        path = self._path
        where = str(path)
        if path.is_dir():
            raise JournalError("is a directory, not a journal file", field="path", value=where)
        if self._readonly:
            if not path.is_file():
                raise JournalError("no such journal file", field="path", value=where)
            target, uri = path.resolve().as_uri() + "?mode=ro", True
        else:
            if not path.parent.is_dir():
                raise JournalError(
                    f"directory {str(path.parent)!r} does not exist", field="path", value=where
                )
            target, uri = where, False
        try:
            conn = sqlite3.connect(target, timeout=_BUSY_TIMEOUT_S, isolation_level=None, uri=uri)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open: {exc}", field="path", value=where) from exc
        conn.row_factory = sqlite3.Row
        return conn

    def _prepare(self) -> None:
        """Check the file is a journal of a schema this module reads; create one if empty."""
        conn = self._live()
        where = str(self._path)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as exc:
            raise JournalFormatError(
                f"not a tradeloop journal ({exc})", field="path", value=where
            ) from exc
        if not tables and app_id == 0:
            if self._readonly:
                raise JournalFormatError(
                    "not a tradeloop journal (empty file)", field="path", value=where
                )
            self._create()
        elif app_id != APPLICATION_ID or "meta" not in tables:
            raise JournalFormatError("not a tradeloop journal", field="path", value=where)
        if not self._readonly:
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as exc:
                raise JournalError(f"cannot configure: {exc}", field="path", value=where) from exc
            if str(mode).lower() != "wal":
                raise JournalError(
                    f"WAL mode unavailable here (journal_mode={mode})", field="path", value=where
                )
        raw = self._meta_get("schema")
        if raw is None or not raw.isdigit() or int(raw) < 1:
            raise JournalFormatError(f"damaged journal: schema={raw!r}", field="path", value=where)
        if int(raw) > SCHEMA_VERSION:
            raise JournalFormatError(
                f"journal schema {raw} is newer than this tradeloop reads ({SCHEMA_VERSION}); "
                "upgrade tradeloop",
                field="path",
                value=where,
            )
        for key in ("run_id", "created_at"):
            if self._meta_get(key) is None:
                raise JournalFormatError(f"damaged journal: no {key}", field="path", value=where)
        version = int(raw)
        if version < SCHEMA_VERSION and not self._readonly:
            version = self._migrate()
        self._select = _select_orders(version)

    def _migrate(self) -> int:
        """Bring a journal of an older schema to :data:`SCHEMA_VERSION`, in one transaction
        (all of it or, on any error, nothing). Returns the version the file has then."""
        conn = self._live()
        where = str(self._path)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise JournalError(f"cannot migrate: {exc}", field="path", value=where) from exc
        version = 0
        try:
            # another process may have migrated it while this one waited for the lock
            version = int(conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0])
            while version < SCHEMA_VERSION:
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement)
                version += 1
            self._put_meta(conn, "schema", str(version))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise JournalError(
                f"cannot migrate from schema {version}: {exc}", field="path", value=where
            ) from exc
        return version

    def _create(self) -> None:
        conn = self._live()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise JournalError(
                f"cannot create: {exc}", field="path", value=str(self._path)
            ) from exc
        try:
            # another process may have created it while this one waited for the lock
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.executemany(
                    "INSERT INTO meta(key, value) VALUES (?, ?)",
                    [
                        ("schema", str(SCHEMA_VERSION)),
                        ("run_id", _new_run_id()),
                        ("created_at", str(time.time_ns())),
                        ("local_seq", "0"),
                    ],
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise JournalError(
                f"cannot create: {exc}", field="path", value=str(self._path)
            ) from exc

    # -- plumbing ------------------------------------------------------------------------------

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError("the journal is closed", field="path", value=str(self._path))
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction: everything in the block, or (on any error) nothing."""
        conn = self._live()
        if self._readonly:
            raise JournalError("opened read-only", field="path", value=str(self._path))
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise JournalError(f"write failed: {exc}", field="path", value=str(self._path)) from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise JournalError(
                    f"write failed: {exc}", field="path", value=str(self._path)
                ) from exc
            raise

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        conn = self._live()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise JournalError(f"read failed: {exc}", field="path", value=str(self._path)) from exc

    def _meta_get(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def _meta_value(self, key: str) -> str:
        value = self._meta_get(key)
        if value is None:
            raise JournalFormatError(
                f"damaged journal: no {key}", field="path", value=str(self._path)
            )
        return value

    @staticmethod
    def _put_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _state(self, conn: sqlite3.Connection, client_order_id: str) -> sqlite3.Row:
        row = conn.execute(
            "SELECT status, qty, filled_qty, avg_fill_price, symbol, side, broker_order_id, "
            "updated_at FROM orders WHERE client_order_id = ?",
            (client_order_id,),
        ).fetchone()
        if row is None:
            raise UnknownOrderError(
                "no such order in the journal", field="client_order_id", value=client_order_id
            )
        assert isinstance(row, sqlite3.Row)
        return row

    @staticmethod
    def _append_event(
        conn: sqlite3.Connection,
        client_order_id: str,
        kind: str,
        status: str,
        ts: int,
        detail: str | None,
    ) -> None:
        conn.execute(
            "INSERT INTO events(client_order_id, kind, status, ts, detail) VALUES (?, ?, ?, ?, ?)",
            (client_order_id, kind, status, ts, detail),
        )

    # -- identity ------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def readonly(self) -> bool:
        return self._readonly

    @property
    def run_id(self) -> str:
        """This journal's run id: 15 characters of ``[0-9a-z]`` (time, then randomness), made
        when the file was created and read back on every reopen."""
        return self._run_id

    @property
    def created_at(self) -> int:
        """When the journal file was created (int ns, UTC)."""
        return self._created_at

    @property
    def schema_version(self) -> int:
        return int(self._meta_value("schema"))

    # -- writing -------------------------------------------------------------------------------

    def record_intent(self, order: Order, *, replaces: str | None = None) -> None:
        """Journal ``order`` as it is now (normally ``new``, before it is sent), with its
        ``legs`` (a bracket's, oto's or oco's exit legs) in the same transaction; durable on
        return.

        ``replaces`` is the client id of the order it replaces; by default it is found from
        ``order.replaces`` (the replaced order's local id). The order class is kept, and a leg's
        parent: the order whose ``legs`` it is in, or, for a leg journaled on its own, the
        journaled order its ``parent_id`` (a local id) names. A local id of the form ``O<n>``
        raises :attr:`last_local_seq` to ``n`` if it was lower.

        Raises :class:`DuplicateIntentError` if a client id or local id is journaled already,
        :class:`UnknownOrderError` if the replaced order or the parent is not, and
        :class:`JournalError` for a bad value (a leg that names another parent, a leg with legs).
        """
        if not isinstance(order, Order):
            raise JournalError("must be an Order", field="order", value=type(order).__name__)
        rows = [(order, self._intent_values(order, "order"))]
        legs = order.legs
        if not isinstance(legs, tuple):
            raise JournalError("must be a tuple of Orders", field="legs", value=type(legs).__name__)
        if legs and order.parent_id is not None:
            raise JournalError(
                f"order {order.id} is a leg of {order.parent_id}; a leg has no legs",
                field="legs",
                value=len(legs),
            )
        for i, leg in enumerate(legs):
            where = f"legs[{i}]"
            if not isinstance(leg, Order):
                raise JournalError("must be an Order", field=where, value=type(leg).__name__)
            if leg.legs:
                raise JournalError("a leg has no legs", field=f"{where}.legs", value=len(leg.legs))
            if leg.parent_id is not None and leg.parent_id != order.id:
                raise JournalError(
                    f"is not order {order.id}'s id", field=f"{where}.parent_id", value=leg.parent_id
                )
            rows.append((leg, self._intent_values(leg, where)))
        if replaces is not None:
            replaces = _text("replaces", replaces)
        with self._write() as conn:
            seen: set[tuple[str, str]] = set()
            for _, values in rows:
                cid, local_id = str(values[0]), str(values[1])
                if ("cid", cid) in seen or conn.execute(
                    "SELECT 1 FROM orders WHERE client_order_id = ?", (cid,)
                ).fetchone():
                    raise DuplicateIntentError(
                        "already journaled (client order ids are never reused)",
                        field="client_order_id",
                        value=cid,
                    )
                if ("local", local_id) in seen or conn.execute(
                    "SELECT 1 FROM orders WHERE local_id = ?", (local_id,)
                ).fetchone():
                    raise DuplicateIntentError(
                        "local id already journaled for another order", field="id", value=local_id
                    )
                seen.update((("cid", cid), ("local", local_id)))
            entry_cid = str(rows[0][1][0])
            replaces_cid = self._resolve_replaces(conn, order, replaces)
            parent_cid = self._resolve_parent(conn, order)
            highest = 0
            for o, values in rows:
                is_entry = o is order
                parent = parent_cid if is_entry else entry_cid
                replaced = replaces_cid if is_entry else None
                conn.execute(
                    """INSERT INTO orders(client_order_id, local_id, broker_order_id, symbol,
                        side, qty, type, tif, limit_price, stop_price, trail_price,
                        trail_percent, tag, status, filled_qty, avg_fill_price, commission,
                        reject_reason, created_at, updated_at, order_class, replaces, parent,
                        seq)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                        (SELECT coalesce(max(seq), 0) + 1 FROM orders))""",
                    (*values, replaced, parent),
                )
                if replaced is not None:
                    detail: str | None = f"replaces {replaced}"
                elif parent is not None:
                    detail = f"leg of {parent}"
                else:
                    detail = None
                self._append_event(
                    conn, str(values[0]), "intent", str(values[13]), o.created_at, detail
                )
                match = _LOCAL_ID.fullmatch(str(values[1]))
                if match is not None:
                    highest = max(highest, int(match.group(1)))
            if highest:
                current = conn.execute("SELECT value FROM meta WHERE key = 'local_seq'").fetchone()
                if current is None or highest > int(current[0]):
                    self._put_meta(conn, "local_seq", str(highest))

    @staticmethod
    def _intent_values(order: Order, where: str) -> tuple[object, ...]:
        """``order``'s column values, checked (``where`` names a leg's place in errors), in
        the order of the INSERT of :meth:`record_intent`: ``order_class`` last."""
        pre = "" if where == "order" else where + "."
        return (
            _text(pre + "client_order_id", order.client_order_id),
            _text(pre + "id", order.id),
            _opt_text(pre + "broker_order_id", order.broker_order_id),
            _text(pre + "symbol", order.symbol),
            _enum(OrderSide, pre + "side", order.side).value,
            _float(pre + "qty", order.qty, positive=True),
            _enum(OrderType, pre + "type", order.type).value,
            _enum(TimeInForce, pre + "tif", order.tif).value,
            _opt_float(pre + "limit_price", order.limit_price),
            _opt_float(pre + "stop_price", order.stop_price),
            _opt_float(pre + "trail_price", order.trail_price),
            _opt_float(pre + "trail_percent", order.trail_percent),
            _opt_text(pre + "tag", order.tag, empty=True),
            _enum(OrderStatus, pre + "status", order.status).value,
            _float(pre + "filled_qty", order.filled_qty),
            _opt_float(pre + "avg_fill_price", order.avg_fill_price),
            _float(pre + "commission", order.commission),
            _opt_text(pre + "reject_reason", order.reject_reason, empty=True),
            _ns(pre + "created_at", order.created_at),
            _ns(pre + "updated_at", order.updated_at),
            _enum(OrderClass, pre + "order_class", order.order_class).value,
        )

    @staticmethod
    def _resolve_parent(conn: sqlite3.Connection, order: Order) -> str | None:
        """The client id of the journaled order a leg journaled on its own belongs to."""
        if order.parent_id is None:
            return None
        local = _text("parent_id", order.parent_id)
        row = conn.execute(
            "SELECT client_order_id FROM orders WHERE local_id = ?", (local,)
        ).fetchone()
        if row is None:
            raise UnknownOrderError(
                "the parent order is not in the journal", field="parent_id", value=local
            )
        return str(row[0])

    @staticmethod
    def _resolve_replaces(
        conn: sqlite3.Connection, order: Order, replaces: str | None
    ) -> str | None:
        if replaces is not None:
            row = conn.execute(
                "SELECT local_id FROM orders WHERE client_order_id = ?", (replaces,)
            ).fetchone()
            if row is None:
                raise UnknownOrderError(
                    "the replaced order is not in the journal", field="replaces", value=replaces
                )
            if order.replaces is not None and order.replaces != row[0]:
                raise JournalError(
                    f"names order {row[0]}, but the order replaces {order.replaces}",
                    field="replaces",
                    value=replaces,
                )
            return replaces
        if order.replaces is None:
            return None
        row = conn.execute(
            "SELECT client_order_id FROM orders WHERE local_id = ?", (order.replaces,)
        ).fetchone()
        if row is None:
            raise UnknownOrderError(
                "the replaced order is not in the journal", field="replaces", value=order.replaces
            )
        return str(row[0])

    def record_broker_id(self, client_order_id: str, broker_order_id: str) -> None:
        """Record the venue's id for an order. Recording the same id again does nothing; a
        different one raises :class:`JournalError` (a venue does not renumber an order)."""
        cid = _text("client_order_id", client_order_id)
        bid = _text("broker_order_id", broker_order_id)
        with self._write() as conn:
            row = self._state(conn, cid)
            known = row["broker_order_id"]
            if known == bid:
                return
            if known is not None:
                raise JournalError(
                    f"order {cid} already has broker id {known!r}",
                    field="broker_order_id",
                    value=bid,
                )
            conn.execute(
                "UPDATE orders SET broker_order_id = ? WHERE client_order_id = ?", (bid, cid)
            )
            self._append_event(conn, cid, "broker_id", row["status"], row["updated_at"], bid)

    def record_status(
        self,
        client_order_id: str,
        status: OrderStatus | str,
        ts: int,
        *,
        reason: str | None = None,
    ) -> bool:
        """Move an order to ``status`` at ``ts`` (a legal transition of the order state machine),
        keep ``reason`` (a rejection's, say) and append a ``status`` event.

        Returns ``False`` and writes nothing when the order is in that status already (an
        answer and a stream event reporting the same change). Raises
        :class:`~tradeloop.errors.InvalidTransitionError` for an illegal transition.
        """
        cid = _text("client_order_id", client_order_id)
        target = _enum(OrderStatus, "status", status)
        when = _ns("ts", ts)
        why = _opt_text("reason", reason, empty=True)
        with self._write() as conn:
            row = self._state(conn, cid)
            current = _stored_enum(OrderStatus, "status", row["status"])
            if current is target:
                return False
            if not can_transition(current, target):
                raise InvalidTransitionError(cid, current.value, target.value)
            conn.execute(
                "UPDATE orders SET status = ?, updated_at = ?, "
                "reject_reason = coalesce(?, reject_reason) WHERE client_order_id = ?",
                (target.value, when, why, cid),
            )
            self._append_event(conn, cid, "status", target.value, when, why)
        return True

    def record_qty(self, client_order_id: str, qty: float, ts: int) -> bool:
        """Record that an exit leg of an order class (or an oco) now trades ``qty``: its size
        follows its entry's filled quantity, less what the linked exits filled
        (:meth:`~tradeloop.execution.core.book.OrderBook.resize_exits`, or the venue's word).
        Appends a ``qty`` event (``old -> new``); the order's status and ``updated_at`` stay.

        Returns ``False`` and writes nothing when the order has that size already. Raises
        :class:`JournalError` for a simple order (its size never changes: it is replaced), or
        a ``qty`` below what the order has filled.
        """
        cid = _text("client_order_id", client_order_id)
        size = _float("qty", qty, positive=True)
        when = _ns("ts", ts)
        with self._write() as conn:
            row = self._state(conn, cid)
            before = float(row["qty"])
            if before == size:
                return False
            cls = conn.execute(
                "SELECT order_class FROM orders WHERE client_order_id = ?", (cid,)
            ).fetchone()[0]
            if cls == OrderClass.SIMPLE.value:
                raise JournalError(
                    f"order {cid} is a simple order: its size does not change (it is replaced)",
                    field="qty",
                    value=size,
                )
            filled = float(row["filled_qty"])
            if size < filled - _EPS:
                raise JournalError(
                    f"is below order {cid}'s filled quantity {filled!r}", field="qty", value=size
                )
            conn.execute("UPDATE orders SET qty = ? WHERE client_order_id = ?", (size, cid))
            self._append_event(conn, cid, "qty", row["status"], when, f"{before!r} -> {size!r}")
        return True

    def record_fill(self, client_order_id: str, fill: Fill) -> bool:
        """Record one execution of an order, once: ``True`` if it is new, ``False`` if its
        ``execution_id`` is journaled already (nothing is written then).

        A new fill is applied as the live order manager does: a ``new`` or ``held`` order is
        accepted first, the quantity is added, the average price updated, the commission summed
        and the order becomes ``partially_filled`` or ``filled``. A *late* fill, of an order already
        ``canceled``, ``expired`` or ``replaced`` (it happened before, was reported after), adds
        its quantity, price and commission and leaves the status as it is
        (:meth:`~tradeloop.execution.core.book.OrderBook.record_late_fill`). A fill of a
        ``filled`` or ``rejected`` order, or larger than what remains, raises
        :class:`~tradeloop.errors.OrderStateError` and writes nothing; an empty execution id, or
        a symbol or side other than the order's, raises :class:`JournalError`.
        """
        cid = _text("client_order_id", client_order_id)
        if not isinstance(fill, Fill):
            raise JournalError("must be a Fill", field="fill", value=type(fill).__name__)
        exec_id = _text("execution_id", fill.execution_id)
        qty = _float("fill.qty", fill.qty, positive=True)
        price = _float("fill.price", fill.price, positive=True)
        commission = _float("fill.commission", fill.commission)
        if commission < 0:
            raise JournalError("must be >= 0", field="fill.commission", value=fill.commission)
        when = _ns("fill.ts", fill.ts)
        side = _enum(OrderSide, "fill.side", fill.side)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM fills WHERE execution_id = ?", (exec_id,)).fetchone():
                return False  # the same execution reported twice
            row = self._state(conn, cid)
            if fill.symbol != row["symbol"] or side.value != row["side"]:
                raise JournalError(
                    f"is not order {cid}'s ({row['side']} {row['symbol']})",
                    field="fill",
                    value=f"{side.value} {fill.symbol}",
                )
            status = _stored_enum(OrderStatus, "status", row["status"])
            late = status in _LATE_FILL_STATUSES
            if status in TERMINAL_STATUSES and not late:
                raise OrderStateError(f"order {cid}: fill {exec_id} for a {status.value} order")
            order_qty, prev = float(row["qty"]), float(row["filled_qty"])
            remaining = order_qty - prev
            if not qty <= remaining + _EPS:
                raise OrderStateError(f"order {cid}: fill qty={qty} exceeds remaining {remaining}")
            avg = row["avg_fill_price"]
            if late:
                # the arithmetic of OrderBook.record_late_fill: the final status stays
                target = status
                filled = min(order_qty, prev + qty)
                avg = price if avg is None else (avg * prev + price * qty) / (prev + qty)
                updated = max(int(row["updated_at"]), when)
            else:
                # the arithmetic of OrderBook.record_fill
                if status in _WAITING:  # accepted first, as the live order manager does
                    self._append_event(conn, cid, "status", OrderStatus.ACCEPTED.value, when, None)
                filled = prev + qty
                done = order_qty - filled <= _EPS
                target = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
                filled = order_qty if done else filled
                avg = price if avg is None else (avg * prev + price * qty) / (prev + qty)
                updated = when
            conn.execute(
                "UPDATE orders SET status = ?, filled_qty = ?, avg_fill_price = ?, "
                "commission = commission + ?, updated_at = ? WHERE client_order_id = ?",
                (target.value, filled, avg, commission, updated, cid),
            )
            conn.execute(
                """INSERT INTO fills(execution_id, client_order_id, symbol, side, qty, price,
                    commission, ts, seq)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM fills))""",
                (exec_id, cid, row["symbol"], side.value, qty, price, commission, when),
            )
            self._append_event(conn, cid, "fill", target.value, when, exec_id)
        return True

    def has_execution(self, execution_id: str) -> bool:
        """Whether a fill with this execution id is journaled."""
        exec_id = _text("execution_id", execution_id)
        return bool(self._query("SELECT 1 FROM fills WHERE execution_id = ?", (exec_id,)))

    def record_event(
        self, client_order_id: str, kind: str, ts: int, detail: str | None = None
    ) -> None:
        """Append an event about a journaled order (``adopted``, ``reconciled``, ...): the order
        itself is not changed. ``kind`` is a word other than those the journal writes itself
        (``intent``, ``broker_id``, ``status``, ``fill``)."""
        cid = _text("client_order_id", client_order_id)
        what = _text("kind", kind)
        if what in _JOURNAL_KINDS:
            raise JournalError(
                "is written by the journal itself; use its record_* method",
                field="kind",
                value=kind,
            )
        when = _ns("ts", ts)
        text = _opt_text("detail", detail, empty=True)
        with self._write() as conn:
            row = self._state(conn, cid)
            self._append_event(conn, cid, what, row["status"], when, text)

    def next_local_seq(self) -> int:
        """Reserve and return the next order number (1 more than :attr:`last_local_seq`)."""
        with self._write() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'local_seq'").fetchone()
            seq = (int(row[0]) if row is not None else 0) + 1
            self._put_meta(conn, "local_seq", str(seq))
        return seq

    @property
    def last_local_seq(self) -> int:
        """The highest order number used so far (by :meth:`next_local_seq` or a journaled
        ``O<n>`` local id); a restarted run continues after it."""
        value = self._meta_get("local_seq")
        return int(value) if value is not None else 0

    def set_mark(self, ts: int) -> None:
        """Store the reconciliation watermark (int ns): changes before it are settled."""
        value = _ns("mark", ts)
        with self._write() as conn:
            self._put_meta(conn, "mark", str(value))

    @property
    def mark(self) -> int | None:
        """The reconciliation watermark (int ns), or ``None`` if none was ever set."""
        value = self._meta_get("mark")
        return int(value) if value is not None else None

    def set_meta(self, key: str, value: str) -> None:
        """Keep a short label about the run (a strategy name, a tradeloop version).

        Deliberately narrow, so nothing secret and no configuration ends up in the file: the
        key is ``[a-z][a-z0-9_]{0,31}``, not one the journal keeps itself and containing none
        of ``key``, ``secret``, ``token``, ``pass``, ``auth``, ``cred``, ``cookie``,
        ``session``; the value is a plain one-line string of at most 200 characters (it may be
        empty).
        """
        name = _text("key", key)
        if not _META_KEY.fullmatch(name):
            raise JournalError("must match [a-z][a-z0-9_]{0,31}", field="key", value=name)
        if name in _RESERVED_META:
            raise JournalError("is kept by the journal itself", field="key", value=name)
        if any(word in name for word in _SECRET_WORDS):
            raise JournalError(
                "looks like a credential; the journal keeps none", field="key", value=name
            )
        text = _text("value", value, empty=True)
        if len(text) > _META_VALUE_MAX or "\n" in text or "\r" in text:
            raise JournalError(
                f"must be one line of at most {_META_VALUE_MAX} characters",
                field="value",
                value=text[:40] + ("..." if len(text) > 40 else ""),
            )
        with self._write() as conn:
            self._put_meta(conn, name, text)

    def meta(self) -> dict[str, str]:
        """Every ``meta`` key and value (a copy)."""
        return {str(r[0]): str(r[1]) for r in self._query("SELECT key, value FROM meta")}

    # -- reading -------------------------------------------------------------------------------

    def orders(self, open_only: bool = False) -> list[JournalOrder]:
        """Every journaled order in the order the intents were written (open ones only if
        ``open_only``)."""
        if open_only:
            marks = ", ".join("?" * len(_OPEN_VALUES))
            sql = f"{self._select} WHERE o.status IN ({marks}) ORDER BY o.seq"
            rows = self._query(sql, _OPEN_VALUES)
        else:
            rows = self._query(f"{self._select} ORDER BY o.seq")
        return [_row_to_order(r) for r in rows]

    def load_orders(self) -> list[Order]:
        """Every journaled order as an :class:`Order` (:meth:`JournalOrder.to_order`), in
        journal order, with the links of order classes rebuilt: a leg's ``parent_id`` (its
        parent's local id) and each parent's ``legs``, the take-profit before the stop-loss
        as :meth:`~tradeloop.execution.core.book.OrderBook.new_order` makes them, sized and in
        the status the journal has (a ``held`` leg stays ``held``)."""
        orders = [jo.to_order() for jo in self.orders()]
        _link_legs(orders)
        return orders

    def order(self, client_order_id: str) -> JournalOrder | None:
        """The journaled order with this client id, or ``None``."""
        cid = _text("client_order_id", client_order_id)
        rows = self._query(f"{self._select} WHERE o.client_order_id = ?", (cid,))
        return _row_to_order(rows[0]) if rows else None

    def fills(self, client_order_id: str | None = None) -> list[Fill]:
        """Journaled fills (of one order, or all) in the order they were recorded; a fill's
        ``order_id`` is its order's local id, as the engine's fills have."""
        sql = (
            "SELECT o.local_id, f.symbol, f.side, f.qty, f.price, f.commission, f.ts, "
            "f.execution_id FROM fills f JOIN orders o ON o.client_order_id = f.client_order_id"
        )
        if client_order_id is not None:
            cid = _text("client_order_id", client_order_id)
            rows = self._query(f"{sql} WHERE f.client_order_id = ? ORDER BY f.seq", (cid,))
        else:
            rows = self._query(f"{sql} ORDER BY f.seq")
        return [
            Fill(
                r[0],
                r[1],
                _stored_enum(OrderSide, "side", r[2]),
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
            )
            for r in rows
        ]

    def events(self, client_order_id: str | None = None) -> list[JournalEvent]:
        """Journaled events (of one order, or all) in the order they were written."""
        sql = "SELECT seq, client_order_id, kind, status, ts, detail FROM events"
        if client_order_id is not None:
            cid = _text("client_order_id", client_order_id)
            rows = self._query(f"{sql} WHERE client_order_id = ? ORDER BY seq", (cid,))
        else:
            rows = self._query(f"{sql} ORDER BY seq")
        return [
            JournalEvent(r[0], r[1], r[2], _stored_enum(OrderStatus, "status", r[3]), r[4], r[5])
            for r in rows
        ]

    # -- closing -------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        """Close the file (idempotent). Everything recorded is on disk already."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else ("read-only" if self._readonly else "open")
        return f"OrderJournal({str(self._path)!r}, run_id={self._run_id!r}, {state})"
