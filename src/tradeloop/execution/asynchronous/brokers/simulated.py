"""SimulatedBroker: the pure core's simulated exchange behind the async broker protocol.

It is fed by any async bar source: historical bars replayed (a backtest on the event loop, which
must and does give exactly the synchronous engine's fills) or a live market-data stream (paper
trading with local fills on live data). For every bar it first matches its open orders, reporting
each change to the engine, and only then hands the bar on, so a strategy always sees the fills a
bar caused before the bar itself, as in a backtest.

Semantics follow a real venue where they are observable: every order change (``new``, fills,
``canceled``, ``replaced``, ``rejected``, ``expired``) is reported on the event stream, a cancel
is a request whose result arrives as an event, and order snapshots carry the venue's own ids.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from tradeloop.data.feed import BarFeed
from tradeloop.errors import (
    ConfigError,
    DuplicateOrderError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderStateError,
)
from tradeloop.execution.async_protocols import AsyncBarSource, EventHandler
from tradeloop.execution.asynchronous.sources import ReplayBarSource
from tradeloop.execution.core.book import class_params
from tradeloop.execution.core.exchange import SimulatedExchange
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.core.reconcile import VenueFill
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.sync_protocols import CommissionModel, SlippageModel
from tradeloop.execution.types import (
    Account,
    Bar,
    BrokerEvent,
    Clock,
    EventKind,
    Fill,
    Order,
    OrderStatus,
    Position,
)

__all__ = ["SimulatedBroker"]

_KIND = {
    OrderStatus.ACCEPTED: EventKind.NEW,
    OrderStatus.CANCELED: EventKind.CANCELED,
    OrderStatus.EXPIRED: EventKind.EXPIRED,
    OrderStatus.REPLACED: EventKind.REPLACED,
    OrderStatus.REJECTED: EventKind.REJECTED,
}


class _Relay:
    """The exchange's listener: turns its synchronous callbacks into broker events."""

    __slots__ = ("_after_fill", "exchange", "handler")

    def __init__(self) -> None:
        self.handler: EventHandler | None = None
        self.exchange: SimulatedExchange | None = None
        self._after_fill: Order | None = None

    def on_fill(self, fill: Fill) -> None:
        assert self.exchange is not None
        order = self.exchange.book.get(fill.order_id)
        self._after_fill = order  # the order update that follows belongs to this fill
        kind = EventKind.FILL if order.status is OrderStatus.FILLED else EventKind.PARTIAL_FILL
        if self.handler is not None:
            self.handler(BrokerEvent(kind, order.snapshot(), fill.ts, fill))

    def on_order_update(self, order: Order) -> None:
        if order is self._after_fill:
            self._after_fill = None
            return
        kind = _KIND.get(order.status)
        if kind is not None and self.handler is not None:
            self.handler(BrokerEvent(kind, order.snapshot(), order.updated_at))


def _with_fee(vf: VenueFill, commission: float) -> VenueFill:
    return VenueFill(
        vf.execution_id, vf.broker_order_id, vf.qty, vf.price, vf.ts, vf.cum_qty, commission
    )


class SimulatedBroker:
    """A simulated venue on the event loop (see the module docstring).

    ``source``: a :class:`BarFeed` (replayed as fast as the engine takes it) or any
    :class:`~tradeloop.execution.async_protocols.AsyncBarSource`. The account and the simulation
    settings are those of :class:`~tradeloop.execution.synchronous.SyncEngine`.
    """

    def __init__(
        self,
        source: AsyncBarSource | BarFeed,
        *,
        initial_cash: float = 100_000.0,
        commission: CommissionModel | None = None,
        slippage: SlippageModel | None = None,
        participation_rate: float | None = None,
        allow_short: bool = True,
        leverage: float = 1.0,
        fractional: bool = False,
        symbols: Sequence[str] | None = None,
    ) -> None:
        if isinstance(source, BarFeed):
            source = ReplayBarSource(source)
        if not isinstance(source, AsyncBarSource):
            raise ConfigError(
                "source", type(source).__name__, "must be a BarFeed or an async bar source"
            )
        if symbols is None:
            symbols = getattr(source, "symbols", None)
        self.source = source
        self.symbols: tuple[str, ...] | None = tuple(symbols) if symbols is not None else None
        self._relay = _Relay()
        self.exchange = SimulatedExchange(
            Portfolio(initial_cash, leverage=leverage, allow_short=allow_short),
            symbols=self.symbols,
            commission=commission,
            slippage=slippage,
            participation_rate=participation_rate,
            fractional=fractional,
            listener=self._relay,
        )
        self._relay.exchange = self.exchange
        start = getattr(source, "start", None)
        self.now = start - 1 if isinstance(start, int) else 0
        self._state = "disconnected"

    @property
    def validator(self) -> OrderValidator:
        """The venue's request rules; the engine checks requests with them before sending."""
        return self.exchange.book.validator

    # -- connection ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return "simulated"

    @property
    def connection_state(self) -> str:
        return self._state

    async def connect(self, on_event: EventHandler) -> None:
        self._relay.handler = on_event
        self._state = "connected"

    async def close(self) -> None:
        if self._state != "closed":
            self._state = "closed"
            self._relay.handler = None
            await self.source.close()

    # -- orders --------------------------------------------------------------------------------

    async def submit_order(self, order: Order) -> Order:
        ex = self.exchange
        if ex.book.by_client_id(order.client_order_id) is not None:
            raise DuplicateOrderError(order.client_order_id)
        order_class, take_profit, stop_loss = class_params(order)
        try:
            placed = ex.submit(
                order.symbol,
                order.side,
                order.qty,
                order.type,
                now=self.now,
                tif=order.tif,
                limit_price=order.limit_price,
                stop_price=order.stop_price,
                trail_price=order.trail_price,
                trail_percent=order.trail_percent,
                client_order_id=order.client_order_id,
                tag=order.tag,
                order_class=order_class,
                take_profit=take_profit,
                stop_loss=stop_loss,
            )
        except InvalidOrderError as exc:
            raise OrderRejectedError(order.client_order_id, str(exc)) from None
        return placed.snapshot()

    async def replace_order(self, order: Order, new: Order) -> Order:
        ex = self.exchange
        old = self._venue_order(order)
        if ex.book.by_client_id(new.client_order_id) is not None:
            raise DuplicateOrderError(new.client_order_id)
        try:
            placed = ex.replace(
                old,
                self.now,
                qty=new.qty,
                tif=new.tif,
                limit_price=new.limit_price,
                stop_price=new.stop_price,
                trail_price=new.trail_price,
                trail_percent=new.trail_percent,
                client_order_id=new.client_order_id,
            )
        except InvalidOrderError as exc:
            raise OrderRejectedError(new.client_order_id, str(exc)) from None
        return placed.snapshot()

    async def cancel_order(self, order: Order) -> None:
        venue = self._venue_order(order)
        if not self.exchange.cancel(venue, self.now):
            raise OrderStateError(
                f"order {venue.id}: status={venue.status.value!r}, it can no longer be canceled"
            )

    def _venue_order(self, order: Order) -> Order:
        book = self.exchange.book
        found = book.orders.get(order.broker_order_id or "")
        if found is None:
            found = book.by_client_id(order.client_order_id)
        if found is None:
            raise OrderNotFoundError(order.broker_order_id or order.client_order_id)
        return found

    async def get_order(self, broker_order_id: str) -> Order:
        return self.exchange.book.get(broker_order_id).snapshot()

    async def get_order_by_client_id(self, client_order_id: str) -> Order:
        found = self.exchange.book.by_client_id(client_order_id)
        if found is None:
            raise OrderNotFoundError(client_order_id)
        return found.snapshot()

    async def get_open_orders(self) -> list[Order]:
        return [o.snapshot() for o in self.exchange.book.open_orders()]

    async def get_orders(self, since: int | None = None) -> list[Order]:
        start = since if since is not None else -1
        return [
            o.snapshot()
            for o in self.exchange.book.orders.values()
            if o.created_at >= start or o.is_open
        ]

    async def get_fills(self, since: int | None = None) -> list[VenueFill]:
        out = []
        cum: dict[str, float] = {}
        for f in self.exchange.fills:
            total = cum[f.order_id] = cum.get(f.order_id, 0.0) + f.qty
            if since is None or f.ts >= since:
                fee = f.commission
                out.append(VenueFill(f.execution_id, f.order_id, f.qty, f.price, f.ts, total, fee))
        return out

    # -- account -------------------------------------------------------------------------------

    async def get_positions(self) -> list[Position]:
        out = []
        for pos in self.exchange.portfolio.positions.values():
            if pos.qty != 0.0:
                copy = Position(pos.symbol)
                copy.qty, copy.avg_price, copy.last_price = pos.qty, pos.avg_price, pos.last_price
                copy.realized_pnl = pos.realized_pnl
                out.append(copy)
        return out

    async def get_account(self) -> Account:
        pf = self.exchange.portfolio
        return Account(
            pf.cash,
            pf.equity,
            pf.buying_power,
            leverage=pf.leverage,
            allow_short=pf.allow_short,
            id="simulated",
        )

    async def get_clock(self) -> Clock:
        return Clock(self.now, True, None, None)

    # -- market data ---------------------------------------------------------------------------

    @property
    def timestamp_complete(self) -> bool:
        """Whether the bar last streamed was its timestamp's last (when the source knows)."""
        return bool(getattr(self.source, "timestamp_complete", False))

    async def bars(self, symbols: Sequence[str] | None = None) -> AsyncIterator[Bar]:
        on_bar = self.exchange.on_bar
        async for bar in self.source.bars(symbols):
            self.now = bar.ts
            on_bar(bar.symbol, bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume)
            yield bar
        # the data ended: the session of every open day order is over, as in a backtest
        self.exchange.expire_all(self.now)
