"""Value types shared by the synchronous and asynchronous engines.

Plain slotted classes, no I/O and no validation: the pure core (``execution.core``) decides what is
legal; these only hold state. Timestamps are integer nanoseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import NotRequired, TypedDict

__all__ = [
    "TERMINAL_STATUSES",
    "Account",
    "Bar",
    "BrokerEvent",
    "Clock",
    "EventKind",
    "Fill",
    "Order",
    "OrderClass",
    "OrderParams",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Position",
    "StopLossParams",
    "TakeProfitParams",
    "TimeInForce",
    "Trade",
    "ns_to_datetime",
]


def ns_to_datetime(ts: int) -> datetime:
    """Nanoseconds since the epoch -> timezone-aware UTC datetime (microsecond precision)."""
    return datetime.fromtimestamp(ts / 1e9, tz=UTC)


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is OrderSide.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderClass(StrEnum):
    """How an order is linked to others (Alpaca's ``order_class``).

    * ``simple``: a single order.
    * ``bracket``: an entry and two exit legs, a take-profit limit and a stop-loss; the legs wait
      (``held``) until the entry fills, follow its filled quantity and cancel each other.
    * ``oto`` (one-triggers-other): an entry and one exit leg, activated by the entry's fill.
    * ``oco`` (one-cancels-other): two exits of an existing position, a take-profit limit (the
      order itself) and a stop-loss leg; a fill of one reduces or cancels the other.
    """

    SIMPLE = "simple"
    BRACKET = "bracket"
    OCO = "oco"
    OTO = "oto"


class OrderStatus(StrEnum):
    NEW = "new"
    HELD = "held"  # an exit leg waiting for its entry's fill (Alpaca's "held")
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    REPLACED = "replaced"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def is_open(self) -> bool:
        return self not in TERMINAL_STATUSES


# Enum members as module constants: an ``OrderClass.X`` attribute lookup costs ~1000 machine
# instructions on Python 3.11, and the per-order paths below test the class of every order.
_SIMPLE = OrderClass.SIMPLE
_OCO = OrderClass.OCO

TERMINAL_STATUSES = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.REJECTED,
        OrderStatus.REPLACED,
    }
)


class Bar:
    """One OHLCV bar. The synchronous engine reuses one Bar per symbol: :meth:`copy` to keep it."""

    __slots__ = ("close", "high", "low", "open", "symbol", "ts", "volume")

    def __init__(
        self,
        symbol: str,
        ts: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
    ) -> None:
        self.symbol = symbol
        self.ts = ts
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume

    @property
    def timestamp(self) -> datetime:
        return ns_to_datetime(self.ts)

    def copy(self) -> Bar:
        return Bar(self.symbol, self.ts, self.open, self.high, self.low, self.close, self.volume)

    def __repr__(self) -> str:
        return (
            f"Bar({self.symbol} {self.timestamp.isoformat()} o={self.open} h={self.high} "
            f"l={self.low} c={self.close} v={self.volume})"
        )


class Order:
    """An order and its live state. Returned by ``ctx.submit_order`` as the handle a strategy keeps.

    The engine updates it in place (status, filled quantity, average price) as events arrive, so a
    strategy can hold on to it in both engines. Only the core changes ``status``, through the state
    machine in :mod:`tradeloop.execution.core.state`.
    """

    __slots__ = (
        "avg_fill_price",
        "broker_order_id",
        "client_order_id",
        "commission",
        "created_at",
        "eligible_after",
        "filled_qty",
        "id",
        "legs",
        "limit_price",
        "order_class",
        "parent_id",
        "qty",
        "reject_reason",
        "replaced_by",
        "replaces",
        "session_day",
        "side",
        "status",
        "stop_price",
        "symbol",
        "tag",
        "tif",
        "trail_percent",
        "trail_price",
        "trail_ref",
        "triggered",
        "type",
        "updated_at",
    )

    def __init__(
        self,
        id: str,
        symbol: str,
        side: OrderSide,
        qty: float,
        type: OrderType = OrderType.MARKET,
        tif: TimeInForce = TimeInForce.GTC,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_price: float | None = None,
        trail_percent: float | None = None,
        client_order_id: str | None = None,
        tag: str | None = None,
        created_at: int = 0,
    ) -> None:
        self.id = id
        self.client_order_id = client_order_id if client_order_id is not None else id
        self.symbol = symbol
        self.side = side
        self.qty = qty
        self.type = type
        self.tif = tif
        self.limit_price = limit_price
        self.stop_price = stop_price
        self.trail_price = trail_price
        self.trail_percent = trail_percent
        self.tag = tag
        self.status = OrderStatus.NEW
        self.filled_qty = 0.0
        self.avg_fill_price: float | None = None
        self.commission = 0.0
        self.created_at = created_at
        self.updated_at = created_at
        self.reject_reason: str | None = None
        self.replaces: str | None = None
        self.replaced_by: str | None = None
        # the venue's id for this order, once a broker has answered (live engines only)
        self.broker_order_id: str | None = None
        # Simulation state (used by the synchronous matcher, ignored by live brokers):
        # bars at or before this timestamp are never matched (no look-ahead);
        self.eligible_after = created_at
        # UTC day number of the first bar a DAY order could trade on;
        self.session_day = -1
        # stop of a stop-limit has been triggered;
        self.triggered = False
        # best price seen since placement, for trailing stops.
        self.trail_ref: float | None = None
        # Order classes: the class, the exit legs of a bracket/oto/oco order (its take-profit
        # before its stop-loss), and, on a leg, the id of the order it belongs to.
        self.order_class = _SIMPLE
        self.legs: tuple[Order, ...] = ()
        self.parent_id: str | None = None

    @property
    def remaining_qty(self) -> float:
        return self.qty - self.filled_qty

    def snapshot(self) -> Order:
        """An independent copy of this order as it is now (what an event or a broker reports).

        Written out field by field: it runs for every order event, and this is ~3x faster than a
        loop over ``__slots__`` (a test checks that no field is missed).
        """
        c = Order.__new__(Order)
        c.avg_fill_price = self.avg_fill_price
        c.broker_order_id = self.broker_order_id
        c.client_order_id = self.client_order_id
        c.commission = self.commission
        c.created_at = self.created_at
        c.eligible_after = self.eligible_after
        c.filled_qty = self.filled_qty
        c.id = self.id
        legs = self.legs
        c.legs = tuple([leg.snapshot() for leg in legs]) if legs else legs
        c.limit_price = self.limit_price
        c.order_class = self.order_class
        c.parent_id = self.parent_id
        c.qty = self.qty
        c.reject_reason = self.reject_reason
        c.replaced_by = self.replaced_by
        c.replaces = self.replaces
        c.session_day = self.session_day
        c.side = self.side
        c.status = self.status
        c.stop_price = self.stop_price
        c.symbol = self.symbol
        c.tag = self.tag
        c.tif = self.tif
        c.trail_percent = self.trail_percent
        c.trail_price = self.trail_price
        c.trail_ref = self.trail_ref
        c.triggered = self.triggered
        c.type = self.type
        c.updated_at = self.updated_at
        return c

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL_STATUSES

    @property
    def is_exit_leg(self) -> bool:
        """One of the linked exits of an order class: a bracket's or oto's leg, or either
        order of an oco (whose take-profit is the order itself)."""
        return self.parent_id is not None or self.order_class is _OCO

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side.value,
            "type": self.type.value,
            "tif": self.tif.value,
            "qty": self.qty,
            "limit_price": self.limit_price,
            "stop_price": self.stop_price,
            "trail_price": self.trail_price,
            "trail_percent": self.trail_percent,
            "status": self.status.value,
            "filled_qty": self.filled_qty,
            "avg_fill_price": self.avg_fill_price,
            "commission": self.commission,
            "created_at": ns_to_datetime(self.created_at).isoformat(),
            "updated_at": ns_to_datetime(self.updated_at).isoformat(),
            "reject_reason": self.reject_reason,
            "replaces": self.replaces,
            "replaced_by": self.replaced_by,
            "broker_order_id": self.broker_order_id,
            "tag": self.tag,
            "order_class": self.order_class.value,
            "parent_id": self.parent_id,
        }

    def __repr__(self) -> str:
        px = ""
        if self.limit_price is not None:
            px += f" limit={self.limit_price}"
        if self.stop_price is not None:
            px += f" stop={self.stop_price}"
        if self.order_class is not OrderClass.SIMPLE:
            px += f" {self.order_class.value}"
            if self.parent_id is not None:
                px += f" leg of {self.parent_id}"
        return (
            f"Order({self.id} {self.side.value} {self.qty} {self.symbol} {self.type.value}{px} "
            f"{self.tif.value} status={self.status.value} filled={self.filled_qty})"
        )


class Fill:
    """One execution of (part of) an order.

    ``position_qty`` is the symbol's signed position just after this fill was applied (Alpaca's
    ``position_qty``): inside ``on_fill`` the account may already hold later fills of the same
    bar, this does not. ``None`` when unknown (a fill rebuilt from records).
    """

    __slots__ = (
        "commission",
        "execution_id",
        "order_id",
        "position_qty",
        "price",
        "qty",
        "side",
        "symbol",
        "ts",
    )

    def __init__(
        self,
        order_id: str,
        symbol: str,
        side: OrderSide,
        qty: float,
        price: float,
        commission: float,
        ts: int,
        execution_id: str = "",
        position_qty: float | None = None,
    ) -> None:
        self.execution_id = execution_id  # unique per execution at its venue: the dedupe key
        self.position_qty = position_qty
        self.order_id = order_id
        self.symbol = symbol
        self.side = side
        self.qty = qty
        self.price = price
        self.commission = commission
        self.ts = ts

    @property
    def timestamp(self) -> datetime:
        return ns_to_datetime(self.ts)

    def to_dict(self) -> dict[str, object]:
        return {
            "execution_id": self.execution_id,
            "order_id": self.order_id,
            "symbol": self.symbol,
            "side": self.side.value,
            "qty": self.qty,
            "price": self.price,
            "commission": self.commission,
            "timestamp": self.timestamp.isoformat(),
            "position_qty": self.position_qty,
        }

    def __repr__(self) -> str:
        return (
            f"Fill({self.order_id} {self.side.value} {self.qty} {self.symbol} @ {self.price} "
            f"fee={self.commission} {self.timestamp.isoformat()})"
        )


class Position:
    """Signed quantity (short < 0) and average entry price of one symbol."""

    __slots__ = ("avg_price", "last_price", "qty", "realized_pnl", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.qty = 0.0
        self.avg_price = 0.0
        self.realized_pnl = 0.0
        self.last_price = 0.0

    @property
    def market_value(self) -> float:
        return self.qty * self.last_price

    @property
    def unrealized_pnl(self) -> float:
        return (self.last_price - self.avg_price) * self.qty

    @property
    def is_flat(self) -> bool:
        return self.qty == 0.0

    def __repr__(self) -> str:
        return (
            f"Position({self.symbol} qty={self.qty} avg={self.avg_price} last={self.last_price} "
            f"realized={self.realized_pnl})"
        )


class Trade:
    """A round trip: a position opened from flat until it is flat again (or flips side)."""

    __slots__ = (
        "_entry_notional",
        "_entry_qty",
        "_exit_notional",
        "_exit_qty",
        "commission",
        "entry_price",
        "entry_ts",
        "exit_price",
        "exit_ts",
        "max_qty",
        "pnl",
        "side",
        "symbol",
    )

    def __init__(self, symbol: str, side: OrderSide, entry_ts: int) -> None:
        self.symbol = symbol
        self.side = side  # BUY = long trade, SELL = short trade
        self.entry_ts = entry_ts
        self.exit_ts: int | None = None
        self.entry_price = 0.0
        self.exit_price: float | None = None
        self.max_qty = 0.0
        self.pnl = 0.0
        self.commission = 0.0
        self._entry_notional = 0.0
        self._entry_qty = 0.0
        self._exit_notional = 0.0
        self._exit_qty = 0.0

    @property
    def is_closed(self) -> bool:
        return self.exit_ts is not None

    @property
    def net_pnl(self) -> float:
        return self.pnl - self.commission

    @property
    def return_pct(self) -> float:
        """Gross return on the capital committed at entry, in percent."""
        basis = self.entry_price * self.max_qty
        return 100.0 * self.pnl / basis if basis else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "direction": "long" if self.side is OrderSide.BUY else "short",
            "entry_time": ns_to_datetime(self.entry_ts).isoformat(),
            "exit_time": ns_to_datetime(self.exit_ts).isoformat() if self.exit_ts else None,
            "qty": self.max_qty,
            "entry_price": self.entry_price,
            "exit_price": self.exit_price,
            "pnl": self.pnl,
            "commission": self.commission,
            "net_pnl": self.net_pnl,
            "return_pct": self.return_pct,
        }

    def __repr__(self) -> str:
        d = "long" if self.side is OrderSide.BUY else "short"
        return f"Trade({self.symbol} {d} qty={self.max_qty} pnl={self.pnl:.2f})"


class TakeProfitParams(TypedDict):
    """The take-profit leg of a bracket, oco or oto order: a limit order at ``limit_price``."""

    limit_price: float


class StopLossParams(TypedDict):
    """The stop-loss leg of a bracket, oco or oto order: a stop order at ``stop_price``, or a
    stop-limit order when ``limit_price`` is given."""

    stop_price: float
    limit_price: NotRequired[float | None]


class OrderParams(TypedDict, total=False):
    """The optional fields of an order request, shared by every ``submit_order`` signature.

    ``order_class`` (default ``simple``) links exit legs to the order: ``bracket`` needs
    ``take_profit`` and ``stop_loss``, ``oto`` one of them, ``oco`` (a ``limit`` order closing a
    position) both; see :class:`OrderClass`.
    """

    tif: TimeInForce | str
    limit_price: float | None
    stop_price: float | None
    trail_price: float | None
    trail_percent: float | None
    client_order_id: str | None
    tag: str | None
    order_class: OrderClass | str
    take_profit: TakeProfitParams | None
    stop_loss: StopLossParams | None


class Account:
    """A broker account as the broker reports it: money, and what it lets the account do."""

    __slots__ = ("allow_short", "buying_power", "cash", "currency", "equity", "id", "leverage")

    def __init__(
        self,
        cash: float,
        equity: float,
        buying_power: float,
        *,
        leverage: float = 1.0,
        allow_short: bool = True,
        currency: str = "USD",
        id: str = "",
    ) -> None:
        self.cash = cash
        self.equity = equity
        self.buying_power = buying_power
        self.leverage = leverage
        self.allow_short = allow_short
        self.currency = currency
        self.id = id

    def __repr__(self) -> str:
        return (
            f"Account(cash={self.cash:.2f} equity={self.equity:.2f} "
            f"buying_power={self.buying_power:.2f} leverage={self.leverage:g} {self.currency})"
        )


class Clock:
    """The venue's clock: its time (int ns, UTC) and whether the market is open."""

    __slots__ = ("is_open", "next_close", "next_open", "ts")

    def __init__(self, ts: int, is_open: bool, next_open: int | None, next_close: int | None):
        self.ts = ts
        self.is_open = is_open
        self.next_open = next_open
        self.next_close = next_close

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"Clock({ns_to_datetime(self.ts).isoformat()} {state})"


class EventKind(StrEnum):
    """Kinds of broker events tradeloop acts on (Alpaca's trade_updates names).

    A broker may report others (``pending_new``, ``done_for_day``, ...): :class:`BrokerEvent`
    keeps the kind as a plain string, and the engine ignores what it does not know.
    """

    NEW = "new"
    ACCEPTED = "accepted"
    FILL = "fill"
    PARTIAL_FILL = "partial_fill"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REPLACED = "replaced"
    REJECTED = "rejected"


class BrokerEvent:
    """One message of a broker's order stream: what happened to which order.

    ``order`` is the broker's snapshot of the order after the event (its ``id`` is the broker's
    id; ``client_order_id`` ties it to the engine's order). ``fill`` is set for fill and
    partial_fill events; its ``execution_id`` is the deduplication key.
    """

    __slots__ = ("fill", "kind", "order", "ts")

    def __init__(self, kind: str, order: Order, ts: int, fill: Fill | None = None) -> None:
        self.kind = kind
        self.order = order
        self.ts = ts
        self.fill = fill

    def __repr__(self) -> str:
        extra = f" {self.fill!r}" if self.fill is not None else ""
        order = self.order
        about = (
            f"{order.client_order_id} {order.status}"
            if isinstance(order, Order)
            else f"order={order!r}"
        )
        return f"BrokerEvent({self.kind} {about}{extra})"
