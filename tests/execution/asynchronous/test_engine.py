"""AsyncExecutionEngine end to end against a scriptable in-process fake broker.

Every run is bounded (``asyncio.wait_for(..., 10)``) and checks that it leaves no task behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any

import pytest

from tradeloop.errors import (
    BrokerConnectionError,
    ConfigError,
    DuplicateOrderError,
    EngineError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderRejectedError,
    StrategyError,
)
from tradeloop.execution.asynchronous import AsyncExecutionEngine, LiveStatus
from tradeloop.execution.core import book as book_module
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
    OrderType,
    Position,
)
from tradeloop.results.result import BacktestResult
from tradeloop.strategy import Context, Strategy

DAY = 86_400_000_000_000
T0 = 19_000 * DAY + 21 * 3_600_000_000_000
RUN_ID = "t1"

Step = Bar | Callable[[], Awaitable[None] | None]
Action = Callable[[Context], None]


def bar(symbol: str, i: int, close: float) -> Bar:
    return Bar(symbol, T0 + i * DAY, close, close + 1, close - 1, close, 1_000.0)


class Boom(Exception):
    """What a misbehaving strategy raises."""


# -- the fake broker ---------------------------------------------------------------------------


class FakeBroker:
    """An in-process venue whose behaviour each test scripts.

    ``script`` is what ``bars()`` does: a :class:`Bar` is yielded, anything else is called (and
    awaited if it returns an awaitable), so a test can push events between bars or block.
    ``errors[kind]`` holds exceptions the next ``submit``/``replace``/``cancel`` calls raise;
    ``hooks[kind]`` runs inside a call (to push events while the engine waits for the answer).
    ``log`` is shared with the strategy so the interleaving of calls and callbacks is visible.
    """

    name = "fake"

    def __init__(
        self,
        script: Sequence[Step] = (),
        *,
        symbols: Sequence[str] | None = ("X",),
        cash: float = 100_000.0,
        leverage: float = 1.0,
        allow_short: bool = True,
        positions: Sequence[Position] = (),
        open_orders: Sequence[Order] = (),
    ) -> None:
        if symbols is not None:
            self.symbols = tuple(symbols)
        self.script = list(script)
        self.handler: Callable[[BrokerEvent], None] | None = None
        self.connection_state = "disconnected"
        self.account = Account(
            cash, cash, cash * leverage, leverage=leverage, allow_short=allow_short, id="fake"
        )
        self.positions = list(positions)
        self.open_orders = list(open_orders)
        self.log: list[tuple[Any, ...]] = []
        self.calls: list[tuple[str, ...]] = []
        self.errors: dict[str, list[BaseException]] = {"submit": [], "replace": [], "cancel": []}
        self.hooks: dict[str, Callable[[Order], None]] = {}
        self.delay = 0.0
        self.auto_cancel = True  # a cancel request is confirmed by a `canceled` event at once
        self.replaced_event = True  # a replace pushes `replaced` for the old order at once
        self.in_flight = 0
        self.max_in_flight = 0
        self.closes = 0
        self.venue: dict[str, Order] = {o.client_order_id: o for o in open_orders}
        self._seq = 0
        self.now = T0 - 1

    # -- scripting helpers -----------------------------------------------------------------------

    def snap(self, order: Order, status: OrderStatus | None = None) -> Order:
        """The venue's record of ``order`` (created with a venue id on first sight)."""
        rec = self.venue.get(order.client_order_id)
        if rec is None:
            rec = order.snapshot()
            self._seq += 1
            rec.id = f"V{self._seq}"
            rec.broker_order_id = None
            rec.status = OrderStatus.ACCEPTED
            self.venue[order.client_order_id] = rec
        if status is not None:
            rec.status = status
        return rec

    def push(
        self,
        kind: str,
        client_order_id: str,
        *,
        status: OrderStatus | None = None,
        fill: Fill | None = None,
        replaced_by: str | None = None,
    ) -> None:
        assert self.handler is not None, "not connected"
        rec = self.venue[client_order_id]
        if status is not None:
            rec.status = status
        if replaced_by is not None:
            rec.replaced_by = replaced_by
        self.handler(BrokerEvent(kind, rec.snapshot(), self.now, fill))

    def push_fill(
        self, order: Order, qty: float, price: float, exec_id: str, commission: float = 0.0
    ) -> None:
        rec = self.snap(order)
        rec.filled_qty += qty
        done = rec.filled_qty >= rec.qty
        rec.status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        kind = EventKind.FILL if done else EventKind.PARTIAL_FILL
        fill = Fill(rec.id, rec.symbol, rec.side, qty, price, commission, self.now, exec_id)
        self.push(kind, order.client_order_id, fill=fill)

    # -- the AsyncBroker protocol ------------------------------------------------------------------

    async def connect(self, on_event: Callable[[BrokerEvent], None]) -> None:
        self.handler = on_event
        self.connection_state = "connected"

    async def _call(self, kind: str, order: Order, answer: Callable[[], Any]) -> Any:
        self.log.append((f"{kind}>", order.client_order_id))
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
            self.log.append((f"{kind}<", order.client_order_id))

    async def submit_order(self, order: Order) -> Order:
        self.calls.append(("submit", order.client_order_id))
        return await self._call("submit", order, lambda: self.snap(order).snapshot())

    async def replace_order(self, order: Order, new: Order) -> Order:
        self.calls.append(("replace", order.client_order_id, new.client_order_id))

        def answer() -> Order:
            rec = self.snap(new)
            if self.replaced_event:
                self.push(
                    "replaced",
                    order.client_order_id,
                    status=OrderStatus.REPLACED,
                    replaced_by=rec.id,
                )
            return rec.snapshot()

        return await self._call("replace", order, answer)

    async def cancel_order(self, order: Order) -> None:
        self.calls.append(("cancel", order.client_order_id))

        def answer() -> None:
            if self.auto_cancel:
                self.push("canceled", order.client_order_id, status=OrderStatus.CANCELED)

        await self._call("cancel", order, answer)

    async def get_order(self, broker_order_id: str) -> Order:
        for rec in self.venue.values():
            if rec.id == broker_order_id:
                return rec.snapshot()
        raise OrderNotFoundError(broker_order_id)

    async def get_order_by_client_id(self, client_order_id: str) -> Order:
        self.calls.append(("lookup", client_order_id))
        rec = self.venue.get(client_order_id)
        if rec is None:
            raise OrderNotFoundError(client_order_id)
        return rec.snapshot()

    async def get_open_orders(self) -> list[Order]:
        return [o.snapshot() for o in self.open_orders]

    async def get_orders(self, since: int | None = None) -> list[Order]:
        return await self.get_open_orders()

    async def get_fills(self, since: int | None = None) -> list[VenueFill]:
        return []

    async def get_positions(self) -> list[Position]:
        return list(self.positions)

    async def get_account(self) -> Account:
        return self.account

    async def get_clock(self) -> Clock:
        return Clock(self.now, True, None, None)

    async def bars(self, symbols: Sequence[str] | None = None) -> AsyncIterator[Bar]:
        for step in self.script:
            if isinstance(step, Bar):
                self.now = step.ts
                yield step
            else:
                result = step()
                if result is not None:
                    await result

    async def close(self) -> None:
        self.closes += 1
        self.connection_state = "closed"


# -- the strategy ------------------------------------------------------------------------------


class Recorder(Strategy):
    """Logs every callback into ``log`` and runs ``actions[i]`` on the i-th bar."""

    def __init__(
        self,
        log: list[tuple[Any, ...]] | None = None,
        actions: dict[int, Action] | None = None,
        *,
        start: Action | None = None,
        on_fill_do: Callable[[Context, Fill], None] | None = None,
        on_update_do: Callable[[Context, Order], None] | None = None,
    ) -> None:
        super().__init__()
        self.log: list[tuple[Any, ...]] = log if log is not None else []
        self.actions = actions or {}
        self.start = start
        self.on_fill_do = on_fill_do
        self.on_update_do = on_update_do
        self.i = 0
        self.in_callback = False
        self.violations: list[str] = []
        self.stopped = 0

    def on_start(self, ctx: Context) -> None:
        self.log.append(("start",))
        if self.start is not None:
            self.start(ctx)

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.log.append(("bar", bar.symbol, self.i))
        self.in_callback = True
        try:
            action = self.actions.get(self.i)
            if action is not None:
                action(ctx)
        finally:
            self.in_callback = False
        self.log.append(("bar-end", self.i))
        self.i += 1

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        if self.in_callback:
            self.violations.append(f"on_fill during a callback: {fill!r}")
        self.log.append(("fill", fill.order_id, fill.qty, fill.price))
        if self.on_fill_do is not None:
            self.on_fill_do(ctx, fill)

    def on_order_update(self, ctx: Context, order: Order) -> None:
        if self.in_callback:
            self.violations.append(f"on_order_update during a callback: {order!r}")
        self.log.append(("update", order.id, order.status))
        if self.on_update_do is not None:
            self.on_update_do(ctx, order)

    def on_stop(self, ctx: Context) -> None:
        self.stopped += 1
        self.log.append(("stop",))

    def kinds(self) -> list[str]:
        return [entry[0] for entry in self.log]


# -- helpers -----------------------------------------------------------------------------------


def make_engine(
    fake: FakeBroker, strategy: Strategy | None = None, **kwargs: Any
) -> AsyncExecutionEngine:
    if strategy is None:
        strategy = Recorder(fake.log)
    kwargs.setdefault("run_id", RUN_ID)
    return AsyncExecutionEngine(fake, strategy, **kwargs)  # type: ignore[arg-type]


def run(
    engine: AsyncExecutionEngine,
    *side: Callable[[], Coroutine[Any, Any, None]],
    max_bars: int | None = None,
) -> BacktestResult:
    """Run the engine (bounded) with ``side`` coroutines alongside; check nothing is left over."""

    async def main() -> BacktestResult:
        tasks = [asyncio.create_task(s()) for s in side]
        try:
            return await asyncio.wait_for(engine.run(max_bars=max_bars), 10)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            leftover = asyncio.all_tasks() - {asyncio.current_task()}
            assert not leftover, f"tasks left running: {leftover}"

    return asyncio.run(main())


def keep(store: dict[str, Order], name: str, make: Callable[[Context], Order]) -> Action:
    """An action that places an order and keeps it under ``name``."""

    def action(ctx: Context) -> None:
        store[name] = make(ctx)

    return action


def limit_buy(qty: float = 10, price: float = 90) -> Callable[[Context], Order]:
    return lambda ctx: ctx.buy("X", qty, type="limit", limit_price=price)


def open_at_end(result: BacktestResult) -> list[Order]:
    return [o for o in result.orders if o.is_open]


# -- submitting --------------------------------------------------------------------------------


def test_submit_returns_new_at_once_and_the_accept_arrives_after_the_callback() -> None:
    fake = FakeBroker([bar("X", 0, 100), bar("X", 1, 101)])
    seen: dict[str, Any] = {}

    def buy(ctx: Context) -> None:
        order = ctx.buy("X", 10)
        seen["order"] = order
        seen["status"] = order.status
        seen["broker_id"] = order.broker_order_id
        seen["open"] = [o.id for o in ctx.open_orders()]

    strat = Recorder(fake.log, {0: buy})
    result = run(make_engine(fake, strat))
    order: Order = seen["order"]
    coid = order.client_order_id
    assert seen["status"] is OrderStatus.NEW
    assert seen["broker_id"] is None
    assert seen["open"] == [order.id]  # registered at once, before the broker answers
    assert order.status is OrderStatus.ACCEPTED
    assert order.broker_order_id == fake.venue[coid].id == "V1"
    assert coid.startswith(RUN_ID)
    assert coid == f"{RUN_ID}-{order.id}"
    assert order.created_at == T0  # ctx.now of the bar it was placed on
    assert strat.violations == []
    assert fake.log == [
        ("start",),
        ("bar", "X", 0),
        ("bar-end", 0),
        ("submit>", coid),
        ("submit<", coid),
        ("update", order.id, OrderStatus.ACCEPTED),
        ("bar", "X", 1),
        ("bar-end", 1),
        ("stop",),
    ]
    assert result.orders == [order]
    assert result.bars_processed == 2


def test_requests_leave_in_the_order_they_were_made_one_at_a_time() -> None:
    fake = FakeBroker([bar("X", 0, 100), bar("X", 1, 101)])
    fake.delay = 0.01
    fake.auto_cancel = False
    made: dict[str, Order] = {}

    def act(ctx: Context) -> None:
        made["a"] = limit_buy(1, 90)(ctx)
        made["b"] = limit_buy(2, 91)(ctx)
        assert ctx.cancel(made["a"])
        made["c"] = ctx.replace(made["b"], limit_price=92)
        made["d"] = ctx.sell("X", 3, type="limit", limit_price=120)

    run(make_engine(fake, Recorder(fake.log, {0: act})))
    a, b, c, d = (made[k].client_order_id for k in "abcd")
    assert fake.calls == [
        ("submit", a),
        ("submit", b),
        ("cancel", a),
        ("replace", b, c),
        ("submit", d),
    ]
    assert fake.max_in_flight == 1
    assert made["b"].status is OrderStatus.REPLACED
    assert made["c"].status is OrderStatus.ACCEPTED
    assert made["a"].status is OrderStatus.ACCEPTED  # no `canceled` event: still open


def test_next_bar_waits_until_every_request_of_the_previous_bar_is_answered() -> None:
    fake = FakeBroker([bar("X", 0, 100), bar("X", 1, 101), bar("X", 2, 102)])
    fake.delay = 0.05
    made: dict[str, Order] = {}

    def two(ctx: Context) -> None:
        made["a"] = ctx.buy("X", 1)
        made["b"] = ctx.buy("X", 2)

    run(make_engine(fake, Recorder(fake.log, {0: two, 1: keep(made, "c", limit_buy())})))
    a, b, c = (made[k] for k in "abc")
    assert fake.log == [
        ("start",),
        ("bar", "X", 0),
        ("bar-end", 0),
        ("submit>", a.client_order_id),
        ("submit<", a.client_order_id),
        ("update", a.id, OrderStatus.ACCEPTED),
        ("submit>", b.client_order_id),
        ("submit<", b.client_order_id),
        ("update", b.id, OrderStatus.ACCEPTED),
        ("bar", "X", 1),  # only now: both answers are in
        ("bar-end", 1),
        ("submit>", c.client_order_id),
        ("submit<", c.client_order_id),
        ("update", c.id, OrderStatus.ACCEPTED),
        ("bar", "X", 2),
        ("bar-end", 2),
        ("stop",),
    ]


def test_orders_placed_in_on_start_are_answered_before_the_first_bar() -> None:
    fake = FakeBroker([bar("X", 0, 100)])
    fake.delay = 0.02
    made: dict[str, Order] = {}
    strat = Recorder(fake.log, start=keep(made, "a", lambda ctx: ctx.buy("X", 1)))
    run(make_engine(fake, strat))
    assert made["a"].created_at == T0 - 1  # the broker's `now` before the first bar
    assert strat.kinds() == ["start", "submit>", "submit<", "update", "bar", "bar-end", "stop"]


def test_venue_rejection_ends_the_order_rejected_with_the_venues_reason() -> None:
    fake = FakeBroker([bar("X", 0, 100), bar("X", 1, 101)])
    made: dict[str, Order] = {}
    fake.hooks["submit"] = lambda o: fake.errors["submit"].append(
        OrderRejectedError(o.client_order_id, "insufficient buying power", code=403)
    )
    strat = Recorder(fake.log, {0: keep(made, "a", lambda ctx: ctx.buy("X", 10))})
    result = run(make_engine(fake, strat))
    order = made["a"]
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == "insufficient buying power"
    assert ("update", order.id, OrderStatus.REJECTED) in fake.log
    assert fake.log.index(("update", order.id, OrderStatus.REJECTED)) < fake.log.index(
        ("bar", "X", 1)
    )
    assert result.fills == []
    assert result.final_cash == 100_000
    assert order.id not in [o.id for o in open_at_end(result)]


@pytest.mark.parametrize(
    "error",
    [BrokerConnectionError("connection reset"), TimeoutError("read timed out")],
    ids=["connection", "timeout"],
)
def test_unknown_outcome_leaves_the_order_in_flight_never_rejected(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeBroker([bar("X", 0, 100), bar("X", 1, 101), bar("X", 2, 102)])
    fake.errors["submit"] += [error] * 3  # the first try and both resends
    made: dict[str, Order] = {}
    seen: dict[str, Any] = {}

    def look(ctx: Context) -> None:
        seen["open"] = [o.id for o in ctx.open_orders()]

    strat = Recorder(fake.log, {0: keep(made, "a", lambda ctx: ctx.buy("X", 10)), 1: look})
    with caplog.at_level(logging.WARNING, logger="tradeloop.live"):
        result = run(make_engine(fake, strat, retry_delays=(0.01, 0.01)))
    order = made["a"]
    assert order.status is OrderStatus.NEW
    assert order.broker_order_id is None
    assert order.reject_reason is None
    assert seen["open"] == [order.id]  # still in flight on the next bar
    assert not [e for e in fake.log if e[0] == "update"]
    assert result.bars_processed == 3  # the run went on
    assert "outcome unknown" in caplog.text
    sends = [c for c in fake.calls if c[0] == "submit"]
    assert len(sends) == 3 and len({c[1] for c in sends}) == 1  # resent with the same id


def test_a_submission_whose_outcome_was_unknown_is_resent_with_the_same_client_id() -> None:
    fake = FakeBroker([bar("X", 0, 100), bar("X", 1, 101)])
    fake.errors["submit"].append(BrokerConnectionError("502 Bad Gateway"))
    made: dict[str, Order] = {}
    strat = Recorder(fake.log, {0: keep(made, "a", lambda ctx: ctx.buy("X", 10))})
    run(make_engine(fake, strat, retry_delays=(0.01,)))
    order = made["a"]
    assert order.status is OrderStatus.ACCEPTED and order.broker_order_id
    sends = [c for c in fake.calls if c[0] == "submit"]
    assert [c[1] for c in sends] == [order.client_order_id] * 2


def test_duplicate_client_id_adopts_the_venues_snapshot() -> None:
    fake = FakeBroker([bar("X", 0, 100), bar("X", 1, 101)])

    def already_there(order: Order) -> None:  # an earlier attempt went through
        fake.snap(order, OrderStatus.ACCEPTED)
        fake.errors["submit"].append(DuplicateOrderError(order.client_order_id))

    fake.hooks["submit"] = already_there
    made: dict[str, Order] = {}
    strat = Recorder(fake.log, {0: keep(made, "a", lambda ctx: ctx.buy("X", 10))})
    run(make_engine(fake, strat))
    order = made["a"]
    coid = order.client_order_id
    assert fake.calls == [("submit", coid), ("lookup", coid)]
    assert order.status is OrderStatus.ACCEPTED
    assert order.broker_order_id == fake.venue[coid].id
    assert ("update", order.id, OrderStatus.ACCEPTED) in fake.log


def test_invalid_requests_raise_at_the_ctx_call_and_register_nothing() -> None:
    fake = FakeBroker([bar("X", 0, 100)])
    fake.validator = OrderValidator(["X"], fractional=False)  # type: ignore[attr-defined]
    errors: list[InvalidOrderError] = []

    def bad(ctx: Context) -> None:
        for call in (
            lambda: ctx.buy("X", 1.5),  # the broker's validator: no fractions
            lambda: ctx.buy("Q", 1),
            lambda: ctx.buy("X", 1, type="limit"),
        ):
            with pytest.raises(InvalidOrderError) as err:
                call()
            errors.append(err.value)

    result = run(make_engine(fake, Recorder(fake.log, {0: bad})))
    assert [e.field for e in errors] == ["qty", "symbol", "limit_price"]
    assert result.orders == []
    assert fake.calls == []


def test_without_a_broker_validator_fractions_are_allowed_and_symbols_checked() -> None:
    fake = FakeBroker([bar("X", 0, 100)])
    made: dict[str, Order] = {}
    fields: list[str] = []

    def act(ctx: Context) -> None:
        made["a"] = ctx.buy("X", 0.5)
        with pytest.raises(InvalidOrderError) as err:
            ctx.buy("Y", 1)
        fields.append(err.value.field)

    run(make_engine(fake, Recorder(fake.log, {0: act})))
    assert made["a"].qty == 0.5
    assert made["a"].status is OrderStatus.ACCEPTED
    assert fields == ["symbol"]


# -- fills and other events ----------------------------------------------------------------------


def test_fill_events_update_order_and_portfolio_and_reach_the_strategy() -> None:
    made: dict[str, Order] = {}
    fake = FakeBroker(
        [
            bar("X", 0, 100),
            lambda: fake.push_fill(made["a"], 4, 100.0, "E1", commission=0.5),
            bar("X", 1, 101),
            lambda: fake.push_fill(made["a"], 6, 101.0, "E2", commission=0.5),
            bar("X", 2, 105),
        ]
    )
    strat = Recorder(fake.log, {0: keep(made, "a", lambda ctx: ctx.buy("X", 10))})
    engine = make_engine(fake, strat)
    result = run(engine)
    order = made["a"]
    oid = order.id
    after_accept = fake.log[fake.log.index(("update", oid, OrderStatus.ACCEPTED)) + 1 :]
    assert after_accept == [
        ("fill", oid, 4, 100.0),
        ("update", oid, OrderStatus.PARTIALLY_FILLED),
        ("bar", "X", 1),
        ("bar-end", 1),
        ("fill", oid, 6, 101.0),
        ("update", oid, OrderStatus.FILLED),
        ("bar", "X", 2),
        ("bar-end", 2),
        ("stop",),
    ]
    assert order.status is OrderStatus.FILLED
    assert order.filled_qty == 10
    assert order.avg_fill_price == pytest.approx(100.6)
    assert order.commission == pytest.approx(1.0)
    pf = engine.portfolio
    assert pf.cash == pytest.approx(100_000 - 400 - 606 - 1.0)
    assert pf.qty("X") == 10
    assert [(f.order_id, f.qty, f.price, f.execution_id) for f in result.fills] == [
        (oid, 4, 100.0, "E1"),
        (oid, 6, 101.0, "E2"),
    ]
    # each point: cash after the fills so far + the position marked to the bar's close
    assert result.equity == pytest.approx([100_000.0, 99_599.5 + 4 * 101, 98_993.0 + 10 * 105])
    assert result.final_cash == pytest.approx(98_993.0)


def test_the_same_execution_reported_twice_is_applied_once() -> None:
    made: dict[str, Order] = {}

    def twice() -> None:
        fake.push_fill(made["a"], 4, 100.0, "E1")
        rec = fake.venue[made["a"].client_order_id]
        rec.filled_qty -= 4  # the venue's record is unchanged by a repeated report
        fake.push_fill(made["a"], 4, 100.0, "E1")

    fake = FakeBroker([bar("X", 0, 100), twice, bar("X", 1, 101)])
    strat = Recorder(fake.log, {0: keep(made, "a", lambda ctx: ctx.buy("X", 10))})
    engine = make_engine(fake, strat)
    result = run(engine)
    assert made["a"].filled_qty == 4
    assert made["a"].status is OrderStatus.PARTIALLY_FILLED
    assert engine.portfolio.qty("X") == 4
    assert engine.portfolio.cash == pytest.approx(100_000 - 400)
    assert len(result.fills) == 1
    assert strat.kinds().count("fill") == 1


def test_a_fill_before_the_accept_is_applied_after_accepting_the_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transitions: list[tuple[str, OrderStatus, OrderStatus]] = []
    real = book_module.transition

    def spy(order: Order, target: OrderStatus, ts: int) -> None:
        transitions.append((order.id, order.status, target))
        real(order, target, ts)

    monkeypatch.setattr(book_module, "transition", spy)
    fake = FakeBroker([bar("X", 0, 100), bar("X", 1, 101)])
    # the venue fills the order while the engine still waits for the submit answer
    fake.hooks["submit"] = lambda o: fake.push_fill(o, 10, 99.5, "E1")
    made: dict[str, Order] = {}
    strat = Recorder(fake.log, {0: keep(made, "a", lambda ctx: ctx.buy("X", 10))})
    engine = make_engine(fake, strat)
    result = run(engine)
    order = made["a"]
    assert transitions == [
        (order.id, OrderStatus.NEW, OrderStatus.ACCEPTED),
        (order.id, OrderStatus.ACCEPTED, OrderStatus.FILLED),
    ]
    assert order.status is OrderStatus.FILLED
    assert order.broker_order_id == fake.venue[order.client_order_id].id
    # the strategy sees the order as it was at each change: accepted, then filled
    assert [e for e in fake.log if e[0] in ("update", "fill")] == [
        ("update", order.id, OrderStatus.ACCEPTED),
        ("fill", order.id, 10, 99.5),
        ("update", order.id, OrderStatus.FILLED),
    ]
    assert engine.portfolio.qty("X") == 10
    assert len(result.fills) == 1
    assert strat.violations == []


def test_a_fill_for_an_order_the_engine_does_not_know_is_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stranger = Order("Z1", "X", OrderSide.BUY, 5, client_order_id="someone-else-1")
    fake = FakeBroker(
        [bar("X", 0, 100), lambda: fake.push_fill(stranger, 5, 100.0, "E9"), bar("X", 1, 101)]
    )
    strat = Recorder(fake.log)
    engine = make_engine(fake, strat)
    with caplog.at_level(logging.INFO, logger="tradeloop.live"):
        result = run(engine)
    assert result.fills == []
    assert result.orders == []
    assert engine.portfolio.cash == 100_000
    assert engine.portfolio.qty("X") == 0
    assert "fill" not in strat.kinds()
    assert result.bars_processed == 2
    assert "does not know" in caplog.text
    assert engine.manager.counts == {"fill": 1}


def test_fill_event_without_a_fill_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    made: dict[str, Order] = {}
    fake = FakeBroker(
        [
            bar("X", 0, 100),
            lambda: fake.push("fill", made["a"].client_order_id, status=OrderStatus.FILLED),
            bar("X", 1, 101),
            lambda: fake.push_fill(made["a"], 10, 101.0, "E1"),
            bar("X", 2, 102),
        ]
    )
    strat = Recorder(fake.log, {0: keep(made, "a", lambda ctx: ctx.buy("X", 10))})
    engine = make_engine(fake, strat)
    with caplog.at_level(logging.WARNING, logger="tradeloop.live"):
        result = run(engine)
    assert "without a usable fill" in caplog.text
    assert result.bars_processed == 3
    # the later, real fill is applied: nothing was half-applied by the empty one
    assert made["a"].status is OrderStatus.FILLED
    assert made["a"].filled_qty == 10
    assert [f.execution_id for f in result.fills] == ["E1"]
    assert engine.portfolio.qty("X") == 10


def test_a_malformed_event_does_not_kill_the_run(caplog: pytest.LogCaptureFixture) -> None:
    made: dict[str, Order] = {}

    def garbage() -> None:  # a kind that is not even a string: on_event raises TypeError
        assert fake.handler is not None
        rec = fake.venue[made["a"].client_order_id]
        fake.handler(BrokerEvent(["fill"], rec.snapshot(), fake.now))  # type: ignore[arg-type]

    async def garbage_from_a_task() -> None:
        async def stream() -> None:
            garbage()

        await asyncio.create_task(stream())

    fake = FakeBroker(
        [
            bar("X", 0, 100),
            garbage,
            garbage_from_a_task,
            bar("X", 1, 101),
            lambda: fake.push_fill(made["a"], 10, 101.0, "E1"),
            bar("X", 2, 102),
        ]
    )
    strat = Recorder(fake.log, {0: keep(made, "a", lambda ctx: ctx.buy("X", 10))})
    engine = make_engine(fake, strat)
    with caplog.at_level(logging.ERROR, logger="tradeloop.live"):
        result = run(engine)
    assert caplog.text.count("could not be applied") == 2
    assert result.bars_processed == 3
    assert made["a"].status is OrderStatus.FILLED
    assert engine.portfolio.qty("X") == 10


@pytest.mark.parametrize("kind", ["pending_new", "done_for_day", "something_new"])
def test_events_of_other_kinds_are_tolerated(kind: str) -> None:
    made: dict[str, Order] = {}
    fake = FakeBroker(
        [
            bar("X", 0, 100),
            lambda: fake.push(kind, made["a"].client_order_id),
            bar("X", 1, 101),
            lambda: fake.push_fill(made["a"], 10, 101.0, "E1"),
            bar("X", 2, 102),
        ]
    )
    strat = Recorder(fake.log, {0: keep(made, "a", limit_buy(10, 90))})
    engine = make_engine(fake, strat)
    seen: dict[str, Any] = {}
    strat.actions[1] = lambda ctx: seen.update(status=made["a"].status)
    result = run(engine)
    assert engine.manager.counts[kind] == 1
    assert seen["status"] is OrderStatus.ACCEPTED  # nothing changed
    updates = [e for e in strat.log if e[0] == "update"]
    assert updates == [
        ("update", made["a"].id, OrderStatus.ACCEPTED),
        ("update", made["a"].id, OrderStatus.FILLED),
    ]
    assert result.bars_processed == 3
    assert made["a"].status is OrderStatus.FILLED


def test_events_from_a_stream_task_reach_the_strategy_without_waiting_for_a_bar() -> None:
    accepted = asyncio.Event()
    filled = asyncio.Event()
    release = asyncio.Event()
    seen: dict[str, Any] = {}
    made: dict[str, Order] = {}

    async def wait_for_release() -> None:
        await release.wait()

    fake = FakeBroker([bar("X", 0, 100), wait_for_release, bar("X", 1, 101)])
    strat = Recorder(
        fake.log,
        {0: keep(made, "a", lambda ctx: ctx.buy("X", 10))},
        on_fill_do=lambda ctx, f: filled.set(),
        on_update_do=lambda ctx, o: accepted.set() if o.status == "accepted" else None,
    )
    engine = make_engine(fake, strat)

    async def live_stream() -> None:
        try:
            await accepted.wait()
            await asyncio.sleep(0.01)  # the engine is now waiting for the next bar
            fake.push_fill(made["a"], 10, 100.5, "E1")
            await asyncio.wait_for(filled.wait(), 2)
            seen["bars_at_fill"] = engine.bars_processed
            seen["position_at_fill"] = engine.portfolio.qty("X")
        finally:
            release.set()

    run(engine, live_stream)
    assert seen == {"bars_at_fill": 1, "position_at_fill": 10}
    assert fake.log.index(("fill", made["a"].id, 10, 100.5)) < fake.log.index(("bar", "X", 1))
    assert strat.violations == []


def test_an_event_pushed_inside_bars_while_the_stream_waits_is_delivered_promptly() -> None:
    release = asyncio.Event()
    pushed = asyncio.Event()
    filled = asyncio.Event()
    seen: dict[str, Any] = {}
    made: dict[str, Order] = {}

    async def fill_then_wait() -> None:  # one connection carrying both bars and order events
        fake.push_fill(made["a"], 10, 100.5, "E1")
        pushed.set()
        await release.wait()

    fake = FakeBroker([bar("X", 0, 100), fill_then_wait, bar("X", 1, 101)])
    strat = Recorder(
        fake.log,
        {0: keep(made, "a", lambda ctx: ctx.buy("X", 10))},
        on_fill_do=lambda ctx, f: filled.set(),
    )
    engine = make_engine(fake, strat)

    async def watch() -> None:
        try:
            await pushed.wait()
            try:
                await asyncio.wait_for(filled.wait(), 0.5)
                seen["delivered"] = True
            except TimeoutError:
                seen["delivered"] = False
        finally:
            release.set()

    run(engine, watch)
    assert seen["delivered"]


# -- cancel and replace --------------------------------------------------------------------------


def test_cancel_queues_a_request_and_the_order_stays_open_until_the_venue_cancels_it() -> None:
    made: dict[str, Order] = {}
    seen: dict[str, Any] = {}
    fake = FakeBroker(
        [
            bar("X", 0, 100),
            bar("X", 1, 101),
            bar("X", 2, 102),
            lambda: fake.push("canceled", made["a"].client_order_id, status=OrderStatus.CANCELED),
            bar("X", 3, 103),
        ]
    )
    fake.auto_cancel = False

    def cancel(ctx: Context) -> None:
        seen["first"] = ctx.cancel(made["a"])
        seen["status_after_cancel"] = made["a"].status

    def look(ctx: Context) -> None:
        seen["status_next_bar"] = made["a"].status
        seen["open_next_bar"] = [o.id for o in ctx.open_orders()]

    def again(ctx: Context) -> None:
        seen["again"] = ctx.cancel(made["a"].id)  # by id, on a terminal order

    strat = Recorder(fake.log, {0: keep(made, "a", limit_buy()), 1: cancel, 2: look, 3: again})
    result = run(make_engine(fake, strat))
    order = made["a"]
    assert seen["first"] is True
    assert seen["status_after_cancel"] is OrderStatus.ACCEPTED
    assert seen["status_next_bar"] is OrderStatus.ACCEPTED
    assert seen["open_next_bar"] == [order.id]
    assert seen["again"] is False
    assert fake.calls == [("submit", order.client_order_id), ("cancel", order.client_order_id)]
    assert order.status is OrderStatus.CANCELED
    assert fake.log.index(("update", order.id, OrderStatus.CANCELED)) < fake.log.index(
        ("bar", "X", 3)
    )
    assert open_at_end(result) == []


def test_replace_returns_a_new_order_and_the_old_one_ends_replaced_when_confirmed() -> None:
    made: dict[str, Order] = {}
    seen: dict[str, Any] = {}

    def confirm() -> None:  # the venue reports the old order replaced, after the answer
        new_venue_id = fake.venue[made["new"].client_order_id].id
        fake.push(
            "replaced",
            made["old"].client_order_id,
            status=OrderStatus.REPLACED,
            replaced_by=new_venue_id,
        )

    fake = FakeBroker([bar("X", 0, 100), bar("X", 1, 101), confirm, bar("X", 2, 102)])
    fake.replaced_event = False

    def replace(ctx: Context) -> None:
        new = ctx.replace(made["old"], limit_price=95)
        made["new"] = new
        seen["status"] = new.status
        seen["old_status"] = made["old"].status

    def look(ctx: Context) -> None:
        seen["old_at_bar2"] = made["old"].status

    strat = Recorder(fake.log, {0: keep(made, "old", limit_buy(10, 90)), 1: replace, 2: look})
    result = run(make_engine(fake, strat))
    old, new = made["old"], made["new"]
    assert seen["status"] is OrderStatus.NEW
    assert seen["old_status"] is OrderStatus.ACCEPTED
    assert new.id != old.id
    assert new.client_order_id != old.client_order_id
    assert new.replaces == old.id
    assert (new.qty, new.limit_price, new.type) == (10, 95, OrderType.LIMIT)
    assert new.status is OrderStatus.ACCEPTED
    assert new.broker_order_id == fake.venue[new.client_order_id].id
    assert seen["old_at_bar2"] is OrderStatus.REPLACED
    assert old.status is OrderStatus.REPLACED
    assert old.replaced_by == new.id  # the local id, not the venue's
    assert [o.id for o in open_at_end(result)] == [new.id]


def test_replace_confirmed_during_the_call_links_the_new_local_id() -> None:
    made: dict[str, Order] = {}
    fake = FakeBroker([bar("X", 0, 100), bar("X", 1, 101), bar("X", 2, 102)])
    strat = Recorder(
        fake.log,
        {
            0: keep(made, "old", limit_buy(10, 90)),
            1: keep(made, "new", lambda ctx: ctx.replace(made["old"], qty=5)),
        },
    )
    run(make_engine(fake, strat))
    old, new = made["old"], made["new"]
    assert old.status is OrderStatus.REPLACED
    assert old.replaced_by == new.id
    assert new.status is OrderStatus.ACCEPTED
    assert new.qty == 5


def test_a_replacement_the_venue_rejects_leaves_the_old_order_working() -> None:
    made: dict[str, Order] = {}
    fake = FakeBroker([bar("X", 0, 100), bar("X", 1, 101), bar("X", 2, 102)])
    fake.errors["replace"].append(OrderRejectedError("x", "price out of band"))
    strat = Recorder(
        fake.log,
        {
            0: keep(made, "old", limit_buy(10, 90)),
            1: keep(made, "new", lambda ctx: ctx.replace(made["old"], limit_price=1)),
        },
    )
    run(make_engine(fake, strat))
    old, new = made["old"], made["new"]
    assert new.status is OrderStatus.REJECTED
    assert new.reject_reason == "price out of band"
    assert old.status is OrderStatus.ACCEPTED
    assert old.replaced_by is None


# -- strategy exceptions -------------------------------------------------------------------------


def _raise(*_: Any) -> None:
    raise Boom("strategy bug")


def test_an_exception_in_on_bar_propagates_and_the_broker_is_closed() -> None:
    fake = FakeBroker([bar("X", 0, 100), bar("X", 1, 101), bar("X", 2, 102)])
    strat = Recorder(fake.log, {1: _raise})
    with pytest.raises(StrategyError, match="raised Boom: strategy bug"):
        run(make_engine(fake, strat))
    assert fake.closes == 1
    assert ("bar", "X", 2) not in fake.log


def test_an_exception_in_on_fill_delivered_after_an_answer_propagates() -> None:
    fake = FakeBroker([bar("X", 0, 100), bar("X", 1, 101)])
    fake.hooks["submit"] = lambda o: fake.push_fill(o, 10, 100.0, "E1")
    made: dict[str, Order] = {}
    strat = Recorder(
        fake.log, {0: keep(made, "a", lambda ctx: ctx.buy("X", 10))}, on_fill_do=_raise
    )
    with pytest.raises(StrategyError, match="raised Boom: strategy bug"):
        run(make_engine(fake, strat))
    assert fake.closes == 1
    assert ("fill", made["a"].id, 10, 100.0) in fake.log
    assert ("bar", "X", 1) not in fake.log


def test_an_exception_in_on_order_update_delivered_by_the_notifier_propagates() -> None:
    waiting = asyncio.Event()
    never = asyncio.Event()
    made: dict[str, Order] = {}

    async def block() -> None:
        waiting.set()
        await never.wait()

    fake = FakeBroker([bar("X", 0, 100), block, bar("X", 1, 101)])
    strat = Recorder(
        fake.log,
        {0: keep(made, "a", limit_buy())},
        on_update_do=lambda ctx, o: _raise() if o.status == "canceled" else None,
    )

    async def stream() -> None:
        await waiting.wait()
        fake.push("canceled", made["a"].client_order_id, status=OrderStatus.CANCELED)

    with pytest.raises(StrategyError, match="raised Boom: strategy bug"):
        run(make_engine(fake, strat), stream)
    assert fake.closes == 1
    assert ("update", made["a"].id, OrderStatus.CANCELED) in fake.log
    assert ("bar", "X", 1) not in fake.log


def test_an_exception_in_the_notifier_as_the_bar_stream_ends_still_propagates() -> None:
    made: dict[str, Order] = {}
    last = asyncio.Event()

    fake = FakeBroker([bar("X", 0, 100), last.set])  # the stream ends right after this
    strat = Recorder(
        fake.log,
        {0: keep(made, "a", limit_buy())},
        on_update_do=lambda ctx, o: _raise() if o.status == "canceled" else None,
    )

    async def stream() -> None:  # a live stream reports a cancel just as the bars run out
        await last.wait()
        fake.push("canceled", made["a"].client_order_id, status=OrderStatus.CANCELED)

    with pytest.raises(StrategyError, match="raised Boom: strategy bug"):
        run(make_engine(fake, strat), stream)


# -- stopping ------------------------------------------------------------------------------------


def test_stop_while_waiting_for_a_bar_ends_the_run_cleanly() -> None:
    waiting = asyncio.Event()
    never = asyncio.Event()

    async def block() -> None:
        waiting.set()
        await never.wait()

    fake = FakeBroker([bar("X", 0, 100), bar("X", 1, 101), block, bar("X", 2, 102)])
    strat = Recorder(fake.log)
    engine = make_engine(fake, strat)

    async def operator() -> None:
        await waiting.wait()
        engine.stop()

    result = run(engine, operator)
    assert isinstance(result, BacktestResult)
    assert result.bars_processed == 2
    assert result.equity_ts == [T0, T0 + DAY]
    assert strat.stopped == 1
    assert strat.log[-1] == ("stop",)
    assert ("bar", "X", 2) not in strat.log
    assert fake.closes == 1


def test_stop_from_on_bar_finishes_that_bar_and_stops() -> None:
    fake = FakeBroker([bar("X", i, 100 + i) for i in range(5)])
    engine: AsyncExecutionEngine
    strat = Recorder(fake.log, {1: lambda ctx: engine.stop()})
    engine = make_engine(fake, strat)
    result = run(engine)
    assert result.bars_processed == 2
    assert strat.stopped == 1


@pytest.mark.parametrize("cancel_on_stop", [True, False])
def test_cancel_on_stop_cancels_the_orders_still_open(cancel_on_stop: bool) -> None:
    made: dict[str, Order] = {}
    fake = FakeBroker([bar("X", 0, 100), bar("X", 1, 101)])
    strat = Recorder(
        fake.log,
        {0: keep(made, "a", limit_buy(10, 90)), 1: keep(made, "b", limit_buy(5, 80))},
    )
    result = run(make_engine(fake, strat, cancel_on_stop=cancel_on_stop))
    a, b = made["a"], made["b"]
    cancels = [c for c in fake.calls if c[0] == "cancel"]
    if cancel_on_stop:
        assert cancels == [("cancel", a.client_order_id), ("cancel", b.client_order_id)]
        assert a.status is OrderStatus.CANCELED
        assert b.status is OrderStatus.CANCELED
        assert open_at_end(result) == []
        assert strat.log.index(("stop",)) < strat.log.index(("update", a.id, "canceled"))
    else:
        assert cancels == []
        assert a.status is OrderStatus.ACCEPTED
        assert len(open_at_end(result)) == 2
    assert fake.closes == 1


def test_max_bars_stops_after_that_many_bars() -> None:
    fake = FakeBroker([bar("X", i, 100 + i) for i in range(5)])
    strat = Recorder(fake.log)
    result = run(make_engine(fake, strat), max_bars=2)
    assert result.bars_processed == 2
    assert [e for e in strat.log if e[0] == "bar"] == [("bar", "X", 0), ("bar", "X", 1)]
    assert strat.stopped == 1
    assert fake.closes == 1


def test_an_engine_runs_once() -> None:
    fake = FakeBroker([bar("X", 0, 100)])
    engine = make_engine(fake)
    run(engine)
    with pytest.raises(EngineError):
        asyncio.run(engine.run())
    assert fake.closes == 1  # the refused second run touched nothing


def test_bad_max_bars_raises_before_anything_starts() -> None:
    fake = FakeBroker([bar("X", 0, 100)])
    engine = make_engine(fake)
    for bad in (0, -1, 1.5):
        with pytest.raises(ConfigError) as err:
            asyncio.run(engine.run(max_bars=bad))  # type: ignore[arg-type]
        assert err.value.field == "max_bars"
    assert fake.handler is None
    assert fake.closes == 0
    assert run(engine).bars_processed == 1  # still usable


class _NoClock(FakeBroker):
    get_clock = None  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: AsyncExecutionEngine(FakeBroker(), Strategy(), symbols=[]), "symbols"),
        (lambda: AsyncExecutionEngine(FakeBroker(symbols=None), Strategy()), "symbols"),
        (lambda: AsyncExecutionEngine(FakeBroker(), Strategy(), run_id="r" * 33), "run_id"),
        (lambda: AsyncExecutionEngine(FakeBroker(), Strategy(), run_id=""), "run_id"),
        (lambda: AsyncExecutionEngine(FakeBroker(), Strategy(), history_bars=0), "history_bars"),
        (lambda: AsyncExecutionEngine(object(), Strategy()), "broker"),
        (lambda: AsyncExecutionEngine(_NoClock(), Strategy()), "broker"),
        (lambda: AsyncExecutionEngine(FakeBroker(), object()), "strategy"),
    ],
    ids=[
        "no-symbols",
        "broker-without-symbols",
        "run-id-too-long",
        "run-id-empty",
        "history-bars-0",
        "not-a-broker",
        "broker-missing-a-method",
        "not-a-strategy",
    ],
)
def test_bad_engine_arguments_name_the_field(make: Callable[[], object], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        make()
    assert err.value.field == field


def test_symbols_default_to_the_brokers_and_a_32_char_run_id_is_accepted() -> None:
    engine = AsyncExecutionEngine(FakeBroker(symbols=("X", "Y")), Strategy(), run_id="r" * 32)
    assert engine.symbols == ("X", "Y")
    engine = AsyncExecutionEngine(FakeBroker(symbols=("X", "Y")), Strategy(), symbols=["Y"])
    assert engine.symbols == ("Y",)


# -- startup -------------------------------------------------------------------------------------


def test_the_account_the_broker_reports_becomes_the_portfolio() -> None:
    fake = FakeBroker([bar("X", 0, 100)], cash=50_000.0, leverage=2.0, allow_short=False)
    seen: dict[str, float] = {}

    def look(ctx: Context) -> None:
        seen.update(cash=ctx.cash, equity=ctx.equity, buying_power=ctx.buying_power)

    engine = make_engine(fake, Recorder(fake.log, start=look))
    result = run(engine)
    assert seen == {"cash": 50_000.0, "equity": 50_000.0, "buying_power": 100_000.0}
    assert engine.portfolio.leverage == 2.0
    assert engine.portfolio.allow_short is False
    assert result.initial_cash == 50_000.0


def test_existing_positions_are_seeded_and_count_in_equity() -> None:
    pos = Position("X")
    pos.qty, pos.avg_price, pos.last_price = 10.0, 90.0, 100.0
    fake = FakeBroker([bar("X", 0, 105), bar("X", 1, 95)], cash=10_000.0, positions=[pos])
    seen: dict[str, float] = {}

    def look(ctx: Context) -> None:
        seen.update(equity=ctx.equity, qty=ctx.position("X").qty)
        seen["avg"] = ctx.position("X").avg_price

    engine = make_engine(fake, Recorder(fake.log, start=look))
    result = run(engine)
    assert seen == {"equity": 11_000.0, "qty": 10.0, "avg": 90.0}
    assert result.initial_cash == 11_000.0
    assert result.equity == [11_050.0, 10_950.0]  # marked to each close
    assert engine.portfolio.trades == []  # the round trip began before this run


def test_open_orders_at_the_venue_are_adopted_and_their_fills_applied() -> None:
    venue_order = Order(
        "V77",
        "X",
        OrderSide.BUY,
        5,
        OrderType.LIMIT,
        limit_price=95.0,
        client_order_id="old-run-O000003",
    )
    venue_order.status = OrderStatus.ACCEPTED
    fake = FakeBroker(
        [bar("X", 0, 100), lambda: fake.push_fill(venue_order, 5, 95.0, "E7"), bar("X", 1, 96)],
        open_orders=[venue_order],
    )
    seen: dict[str, Any] = {}
    made: dict[str, Order] = {}

    def look(ctx: Context) -> None:
        seen["open"] = [
            (o.id, o.client_order_id, o.broker_order_id, o.status, o.qty) for o in ctx.open_orders()
        ]
        made["new"] = ctx.buy("X", 1)

    engine = make_engine(fake, Recorder(fake.log, start=look))
    result = run(engine)
    assert seen["open"] == [("O000001", "old-run-O000003", "V77", OrderStatus.ACCEPTED, 5)]
    adopted = engine.ctx.get_order("O000001")
    assert adopted.status is OrderStatus.FILLED
    assert engine.portfolio.qty("X") == 5  # the new order was accepted, never filled
    assert ("fill", "O000001", 5, 95.0) in fake.log
    assert [f.order_id for f in result.fills if f.execution_id == "E7"] == ["O000001"]
    assert made["new"].id == "O000002"
    assert made["new"].client_order_id == f"{RUN_ID}-O000002"


# -- status and results --------------------------------------------------------------------------


def test_status_reports_the_running_engine() -> None:
    made: dict[str, Order] = {}
    snapshots: list[LiveStatus] = []
    fake = FakeBroker(
        [
            bar("X", 0, 100),
            lambda: fake.push_fill(made["a"], 10, 100.0, "E1"),
            lambda: snapshots.append(engine.status()),
            bar("X", 1, 110),
        ]
    )

    def act(ctx: Context) -> None:
        made.update(a=ctx.buy("X", 10), b=limit_buy(1, 50)(ctx))
        ctx.position("Y")  # looking creates a flat position; status lists only held ones

    strat = Recorder(fake.log, {0: act})
    engine = make_engine(fake, strat)
    in_flight: list[int] = []
    fake.hooks["submit"] = lambda o: in_flight.append(engine.status().pending_requests)
    before = engine.status()
    run(engine)
    after = engine.status()
    assert in_flight == [2, 1]  # the request in flight and those queued behind it
    assert "Y" in engine.portfolio.positions
    assert before.connection == "disconnected"
    assert before.bars == 0 and before.last_bar_ts is None
    assert snapshots == [
        LiveStatus(
            broker="fake",
            connection="connected",
            equity=100_000.0,
            cash=99_000.0,
            positions={"X": 10.0},
            open_orders=1,
            pending_requests=0,
            bars=1,
            last_bar_ts=T0,
            last_event=f"fill {made['a'].id} X",
            fills=1,
        )
    ]
    assert after.connection == "closed"
    assert after.bars == 2
    assert after.last_bar_ts == T0 + DAY
    assert after.equity == 99_000.0 + 10 * 110
    assert after.open_orders == 1


def test_equity_curve_has_one_point_per_distinct_timestamp() -> None:
    pos = Position("X")
    pos.qty, pos.avg_price, pos.last_price = 10.0, 100.0, 100.0
    fake = FakeBroker(
        [
            bar("X", 0, 100),
            bar("Y", 0, 50),
            bar("Z", 0, 1),  # not traded: skipped
            bar("X", 1, 110),
            bar("Y", 1, 55),
            bar("X", 2, 90),
        ],
        symbols=("X", "Y"),
        cash=0.0,
        positions=[pos],
    )
    strat = Recorder(fake.log)
    result = run(make_engine(fake, strat))
    assert result.equity_ts == [T0, T0 + DAY, T0 + 2 * DAY]
    assert result.equity == [1_000.0, 1_100.0, 900.0]
    assert result.exposure == [1_000.0, 1_100.0, 900.0]
    assert result.bars_processed == 5
    assert [e[1] for e in strat.log if e[0] == "bar"] == ["X", "Y", "X", "Y", "X"]
