"""Pre-trade risk checks: limits a strategy's orders must respect before they reach a venue.

Pure (no I/O, no clock): both engines ask :meth:`RiskManager.check` before an order goes out and
:meth:`RiskManager.record` once it went; the caller passes the account's state, so each check is
O(1) in the number of orders and positions. A refused order ends ``rejected`` with the reason,
which names the rule and the numbers, e.g.
``"risk: max_order_notional: order notional 12,500.00 > limit 10,000.00"``.

The rules (every limit optional; an unset one checks nothing), in the order they are checked:

* ``max_order_notional``: ``qty x`` a price estimate (the order's limit price, else its stop price,
  else the last price) must not exceed the limit. An order with no price estimate at all (a market
  order before the symbol's first bar) is refused: its notional cannot be bounded.
* ``max_position``: the absolute position the symbol could reach if this order and the open orders
  on the same side all filled must not exceed the limit. An order that leaves the position
  smaller than it is now always passes (a limit lowered below a holding never blocks reducing it).
* ``max_open_orders``: the account's open orders, this one included, must not exceed the limit.
* ``max_orders_per_minute``: orders submitted (recorded) in the last 60 s of engine time, this one
  included, must not exceed the limit; the window rolls: a submission at ``t`` counts until
  ``t + 60 s``.
* ``daily_loss_limit``: once equity has fallen this much (or more) below the equity at the start of
  the UTC day, the manager is :attr:`~RiskManager.halted` until the next UTC day: orders that open
  or increase a position are refused; orders that only reduce one still pass. The start-of-day
  equity is the first equity seen on that day (by :meth:`RiskManager.observe`, which engines call
  once per timestamp before its bars are matched, or by :meth:`RiskManager.check`).

Timestamps are integer nanoseconds since the Unix epoch (UTC), the engines' clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradeloop.errors import ConfigError
from tradeloop.execution.types import Order, OrderClass, OrderSide

if TYPE_CHECKING:
    from tradeloop.execution.core.book import OrderBook
    from tradeloop.execution.core.portfolio import Portfolio

__all__ = ["RISK_WINDOW_NS", "RiskLimits", "RiskManager"]

#: The ``max_orders_per_minute`` window, in nanoseconds.
RISK_WINDOW_NS = 60_000_000_000
_NS_PER_DAY = 86_400_000_000_000
_SIMPLE = OrderClass.SIMPLE  # a module constant: ``OrderClass.SIMPLE`` is a slow lookup
_NO_DAY = -(2**62)  # before any observation
_EPS = 1e-9


def _positive_number(field: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(field, value, "must be a number > 0 or None")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(field, value, "must be a finite number > 0 or None")
    return float(value)


def _positive_count(field: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(field, value, "must be an integer >= 1 or None")
    return value


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The limits a :class:`RiskManager` enforces; ``None`` (the default) switches a rule off.

    Raises :class:`~tradeloop.errors.ConfigError` naming the field for a bad value: currency and
    share limits must be finite numbers > 0, counts integers >= 1.
    """

    max_order_notional: float | None = None
    max_position: float | None = None
    max_open_orders: int | None = None
    max_orders_per_minute: int | None = None
    daily_loss_limit: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_order_notional", "max_position", "daily_loss_limit"):
            object.__setattr__(self, name, _positive_number(name, getattr(self, name)))
        for name in ("max_open_orders", "max_orders_per_minute"):
            _positive_count(name, getattr(self, name))

    @property
    def any_set(self) -> bool:
        """Whether at least one limit is set."""
        return any(
            v is not None
            for v in (
                self.max_order_notional,
                self.max_position,
                self.max_open_orders,
                self.max_orders_per_minute,
                self.daily_loss_limit,
            )
        )


def _tol(limit: float) -> float:
    """Float rounding allowance when comparing a computed amount with ``limit``."""
    return _EPS * max(1.0, abs(limit))


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _qty(x: float) -> str:
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.6g}"


class RiskManager:
    """Enforces one account's :class:`RiskLimits` over one run (it keeps state: use one per run).

    The engine calls :meth:`check` before an order goes out (``None``: it may), :meth:`record`
    when it went, and :meth:`observe` once per timestamp with the account's equity.
    """

    __slots__ = (
        "_day",
        "_halt_equity",
        "_halt_floor",
        "_halted",
        "_sent",
        "_start_equity",
        "limits",
    )

    def __init__(self, limits: RiskLimits) -> None:
        if not isinstance(limits, RiskLimits):
            raise ConfigError("limits", type(limits).__name__, "must be a RiskLimits")
        self.limits = limits
        self._sent: deque[int] = deque()  # recorded submission times inside the window, ascending
        self._day = _NO_DAY  # the UTC day (days since the epoch) being tracked
        self._start_equity = 0.0
        self._halt_floor = -math.inf  # equity at or below which the day halts
        self._halted = False
        self._halt_equity = 0.0  # the equity that tripped the halt

    # -- reading -------------------------------------------------------------------------------

    @property
    def halted(self) -> bool:
        """Whether the daily loss limit has stopped new entries for the current UTC day."""
        return self._halted

    @property
    def start_equity(self) -> float | None:
        """The equity at the start of the current UTC day (``None`` before any was seen)."""
        return self._start_equity if self._day != _NO_DAY else None

    def orders_in_window(self, now: int) -> int:
        """How many recorded submissions fall in the 60 s window ending at ``now``."""
        self._expire(now)
        return len(self._sent)

    # -- engine calls --------------------------------------------------------------------------

    def observe(self, now: int, equity: float) -> None:
        """Track the day's start equity and the daily loss halt at time ``now``.

        The first equity seen on a new UTC day becomes that day's start (and lifts a halt); a time
        earlier than the day being tracked is treated as part of it.
        """
        day = now // _NS_PER_DAY
        if day > self._day:
            self._day = day
            self._start_equity = equity
            self._halted = False
            limit = self.limits.daily_loss_limit
            if limit is not None:
                self._halt_floor = equity - limit + _tol(limit)
        if equity <= self._halt_floor and not self._halted:
            self._halted = True
            self._halt_equity = equity

    _observe = observe  # what check calls (an override of observe sees only the engine's calls)

    def record(self, now: int) -> None:
        """Count a submission that was sent at ``now`` (for ``max_orders_per_minute``)."""
        sent = self._sent
        if sent and now < sent[-1]:
            now = sent[-1]  # keep the window sorted; a late record holds its slot a bit longer
        sent.append(now)
        self._expire(now)

    def _expire(self, now: int) -> None:
        sent = self._sent
        cutoff = now - RISK_WINDOW_NS
        while sent and sent[0] <= cutoff:
            sent.popleft()

    def check(
        self,
        order: Order,
        *,
        ref_price: float | None,
        position: float,
        pending_same_side: float,
        open_orders: int,
        equity: float,
        now: int,
    ) -> str | None:
        """Why ``order`` must not go out now (a reason naming the rule), or ``None``.

        ``ref_price``: the symbol's last price (``None`` or <= 0 if unknown); ``position``: the
        signed quantity held; ``pending_same_side``: the remaining quantity of the open orders on
        the same symbol and side as ``order`` (only its magnitude is used); ``open_orders``: the
        account's open orders, not counting ``order`` (nor an order it replaces); ``equity``: the
        account's equity now. It also observes ``equity`` at ``now`` (as :meth:`observe` does)
        but counts no submission: call :meth:`record` once the order was sent.
        """
        self._observe(now, equity)
        lim = self.limits
        qty = order.qty
        sign = 1.0 if order.side is OrderSide.BUY else -1.0
        projected = position + sign * (abs(pending_same_side) + qty)

        if lim.max_order_notional is not None:
            price = order.limit_price
            if price is None:
                price = order.stop_price
            if price is None:
                price = ref_price
            if price is None or price <= 0.0:
                return (
                    "risk: max_order_notional: no price to estimate the order's notional "
                    f"(no last price for {order.symbol} and no limit or stop price)"
                )
            notional = qty * price
            if notional > lim.max_order_notional + _tol(lim.max_order_notional):
                return (
                    f"risk: max_order_notional: order notional {_money(notional)} > "
                    f"limit {_money(lim.max_order_notional)}"
                )

        if (
            lim.max_position is not None
            and abs(projected) > lim.max_position + _tol(lim.max_position)
            and abs(projected) > abs(position) + _EPS
        ):
            return (
                f"risk: max_position: {order.symbol} position could reach {_qty(projected)}, "
                f"size {_qty(abs(projected))} > limit {_qty(lim.max_position)} "
                f"(held {_qty(position)}, open {order.side.value} orders "
                f"{_qty(abs(pending_same_side))}, this order {_qty(qty)})"
            )

        if lim.max_open_orders is not None and open_orders + 1 > lim.max_open_orders:
            return (
                f"risk: max_open_orders: {_count(open_orders, 'open order')} + this one > "
                f"limit {lim.max_open_orders}"
            )

        if lim.max_orders_per_minute is not None:
            recent = self.orders_in_window(now)
            if recent + 1 > lim.max_orders_per_minute:
                return (
                    f"risk: max_orders_per_minute: {_count(recent, 'order')} in the last 60 s "
                    f"+ this one > limit {lim.max_orders_per_minute}"
                )

        if self._halted and lim.daily_loss_limit is not None:
            reduces = (position > 0.0 and -_EPS <= projected <= position + _EPS) or (
                position < 0.0 and position - _EPS <= projected <= _EPS
            )
            if not reduces:
                start = self._start_equity
                fell = self._halt_equity
                return (
                    f"risk: daily_loss_limit: equity fell to {_money(fell)}, "
                    f"{_money(start - fell)} below the day's start {_money(start)} "
                    f"(limit {_money(lim.daily_loss_limit)}); until the next UTC day only orders "
                    "that reduce a position pass"
                )
        return None


def risk_reason(
    risk: RiskManager,
    order: Order,
    *,
    book: OrderBook,
    portfolio: Portfolio,
    ref_price: float | None,
    now: int,
    ignore: Order | None = None,
) -> str | None:
    """Why ``risk`` refuses ``order`` given an account's ``book`` and ``portfolio`` (``None``:
    it passes). ``ignore``: an open order the new one would replace (it counts neither as an
    open order nor as pending quantity). Counts no submission (``record`` the ones sent).

    The same question for both engines: the synchronous one asks it of its simulated exchange's
    book, the asynchronous one of the book it keeps in step with a broker.
    """
    symbol = order.symbol
    side = order.side
    pending = 0.0
    groups: set[str] | None = None
    for o in book.open.get(symbol, ()):
        if o.side is side and o is not ignore:
            if o.order_class is not _SIMPLE and o.is_exit_leg:
                key = o.parent_id or o.id  # linked exits trade the same shares: count them once
                if groups is None:
                    groups = set()
                elif key in groups:
                    continue
                groups.add(key)
            pending += o.remaining_qty
    open_count = book.open_count  # kept by the book: O(1), not a walk over every symbol
    if ignore is not None and ignore.is_open:
        open_count -= 1
    return risk.check(
        order,
        ref_price=ref_price,
        position=portfolio.qty(symbol),
        pending_same_side=pending,
        open_orders=open_count,
        equity=portfolio.equity,
        now=now,
    )
