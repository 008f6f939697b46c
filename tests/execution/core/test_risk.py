"""RiskLimits / RiskManager: every rule at, just under and just over its limit, and the state."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloop.errors import ConfigError
from tradeloop.execution.core.risk import RISK_WINDOW_NS, RiskLimits, RiskManager
from tradeloop.execution.types import Order, OrderSide, OrderType

DAY = 86_400_000_000_000
SEC = 1_000_000_000
T0 = 19_000 * DAY + 14 * 3_600 * SEC  # 14:00 UTC


def order(
    side: str = "buy",
    qty: float = 10.0,
    type: str = "market",
    limit_price: float | None = None,
    stop_price: float | None = None,
    symbol: str = "X",
) -> Order:
    return Order(
        "O1",
        symbol,
        OrderSide(side),
        qty,
        OrderType(type),
        limit_price=limit_price,
        stop_price=stop_price,
    )


def check(rm: RiskManager, o: Order, **state: Any) -> str | None:
    kw: dict[str, Any] = {
        "ref_price": 100.0,
        "position": 0.0,
        "pending_same_side": 0.0,
        "open_orders": 0,
        "equity": 100_000.0,
        "now": T0,
    }
    kw.update(state)
    return rm.check(o, **kw)


def manager(**limits: Any) -> RiskManager:
    return RiskManager(RiskLimits(**limits))


# ----------------------------------------------------------------------------------- limits


def test_no_limits_check_nothing() -> None:
    rm = manager()
    assert not rm.limits.any_set
    huge = order(qty=1e9)
    assert check(rm, huge, ref_price=None, open_orders=10_000, equity=1.0) is None
    assert not rm.halted


def test_limits_are_normalised_and_any_set() -> None:
    lim = RiskLimits(max_order_notional=10_000, daily_loss_limit=500)
    assert lim.any_set
    assert isinstance(lim.max_order_notional, float)
    assert isinstance(lim.daily_loss_limit, float)
    assert RiskLimits(max_open_orders=1).any_set


@pytest.mark.parametrize("field", ["max_order_notional", "max_position", "daily_loss_limit"])
@pytest.mark.parametrize("value", [0, -1, -0.5, math.inf, math.nan, True, "100", [1]])
def test_bad_amount_limit_raises_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        RiskLimits(**{field: value})
    assert info.value.field == field
    assert info.value.value is value
    assert field in str(info.value)


@pytest.mark.parametrize("field", ["max_open_orders", "max_orders_per_minute"])
@pytest.mark.parametrize("value", [0, -3, 2.0, 1.5, True, "5"])
def test_bad_count_limit_raises_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        RiskLimits(**{field: value})
    assert info.value.field == field
    assert info.value.value is value
    assert "integer" in info.value.reason


def test_manager_needs_limits() -> None:
    with pytest.raises(ConfigError) as info:
        RiskManager({"max_open_orders": 3})  # type: ignore[arg-type]
    assert info.value.field == "limits"
    assert info.value.value == "dict"


def test_limits_are_frozen() -> None:
    lim = RiskLimits(max_open_orders=2)
    with pytest.raises(AttributeError):
        lim.max_open_orders = 5  # type: ignore[misc]


# --------------------------------------------------------------------------- max_order_notional


@pytest.mark.parametrize(
    ("qty", "limit_price", "refused"),
    [(100, 100.0, False), (100, 99.99, False), (100, 100.01, True), (101, 100.0, True)],
)
def test_notional_at_under_over_limit(qty: float, limit_price: float, refused: bool) -> None:
    rm = manager(max_order_notional=10_000)
    reason = check(rm, order(qty=qty, type="limit", limit_price=limit_price), ref_price=1.0)
    if refused:
        assert reason is not None
        assert reason.startswith("risk: max_order_notional: order notional ")
        assert reason.endswith("> limit 10,000.00")
    else:
        assert reason is None


def test_notional_reason_names_rule_and_numbers() -> None:
    rm = manager(max_order_notional=10_000)
    reason = check(rm, order(qty=125), ref_price=100.0)
    assert reason == "risk: max_order_notional: order notional 12,500.00 > limit 10,000.00"


@pytest.mark.parametrize(
    ("o", "estimate"),
    [
        (order(qty=10), 100.0),  # market: the last price
        (order(qty=10, type="limit", limit_price=120.0), 120.0),
        (order(qty=10, type="stop", stop_price=130.0), 130.0),
        (order(qty=10, type="stop_limit", limit_price=125.0, stop_price=130.0), 125.0),
    ],
)
def test_notional_price_estimate(o: Order, estimate: float) -> None:
    at = manager(max_order_notional=10 * estimate)
    below = manager(max_order_notional=10 * estimate - 0.01)
    assert check(at, o, ref_price=100.0) is None
    assert check(below, o, ref_price=100.0) is not None


@pytest.mark.parametrize("ref", [None, 0.0])
def test_notional_without_any_price_is_refused(ref: float | None) -> None:
    rm = manager(max_order_notional=10_000)
    reason = check(rm, order(qty=1, symbol="NEW"), ref_price=ref)
    assert reason is not None
    assert reason.startswith("risk: max_order_notional: no price")
    assert "NEW" in reason
    # with a limit price of its own it can be bounded
    assert check(rm, order(qty=1, type="limit", limit_price=5.0), ref_price=ref) is None


# ------------------------------------------------------------------------------- max_position


@pytest.mark.parametrize(
    ("qty", "refused"), [(100, False), (99, False), (100.5, True), (101, True)]
)
def test_position_at_under_over_limit(qty: float, refused: bool) -> None:
    # held 700, 200 more on open buy orders: this buy may take it to 1,000
    rm = manager(max_position=1_000)
    reason = check(rm, order("buy", qty), position=700.0, pending_same_side=200.0)
    assert (reason is not None) is refused
    if refused:
        assert reason is not None
        assert reason.startswith("risk: max_position: X position could reach")
        assert "> limit 1,000" in reason


def test_position_reason_numbers() -> None:
    rm = manager(max_position=1_000)
    reason = check(rm, order("buy", 300), position=700.0, pending_same_side=200.0)
    assert reason == (
        "risk: max_position: X position could reach 1,200, size 1,200 > limit 1,000 "
        "(held 700, open buy orders 200, this order 300)"
    )


@pytest.mark.parametrize("pending", [200.0, -200.0])  # magnitude only: either sign convention
def test_position_short_side(pending: float) -> None:
    rm = manager(max_position=1_000)
    assert check(rm, order("sell", 100), position=-700.0, pending_same_side=pending) is None
    reason = check(rm, order("sell", 101), position=-700.0, pending_same_side=pending)
    assert reason is not None and "could reach -1,001, size 1,001" in reason


def test_position_flip_beyond_limit_is_refused() -> None:
    rm = manager(max_position=1_000)
    assert check(rm, order("sell", 1_100), position=100.0) is None  # reaches -1,000
    assert check(rm, order("sell", 1_101), position=100.0) is not None


def test_reducing_a_position_above_the_limit_passes() -> None:
    rm = manager(max_position=1_000)
    assert check(rm, order("sell", 200), position=1_500.0) is None
    assert check(rm, order("buy", 200), position=-1_500.0) is None
    assert check(rm, order("buy", 1), position=1_500.0) is not None


# ---------------------------------------------------------------------------- max_open_orders


@pytest.mark.parametrize(("open_orders", "refused"), [(2, False), (1, False), (3, True), (9, True)])
def test_open_orders_at_under_over_limit(open_orders: int, refused: bool) -> None:
    rm = manager(max_open_orders=3)
    reason = check(rm, order(), open_orders=open_orders)
    assert (reason is not None) is refused
    if refused:
        assert reason == (f"risk: max_open_orders: {open_orders} open orders + this one > limit 3")


def test_open_orders_reason_singular() -> None:
    reason = check(manager(max_open_orders=1), order(), open_orders=1)
    assert reason == "risk: max_open_orders: 1 open order + this one > limit 1"


def test_open_orders_applies_to_closing_orders_too() -> None:
    rm = manager(max_open_orders=1)
    assert check(rm, order("sell", 10), position=10.0, open_orders=1) is not None


# ---------------------------------------------------------------------- max_orders_per_minute


def test_orders_per_minute_at_under_over_limit() -> None:
    rm = manager(max_orders_per_minute=3)
    assert check(rm, order(), now=T0) is None
    rm.record(T0)
    assert check(rm, order(), now=T0 + SEC) is None
    rm.record(T0 + SEC)
    assert check(rm, order(), now=T0 + 2 * SEC) is None  # the third: at the limit
    rm.record(T0 + 2 * SEC)
    reason = check(rm, order(), now=T0 + 3 * SEC)  # a fourth: over
    assert reason == "risk: max_orders_per_minute: 3 orders in the last 60 s + this one > limit 3"


def test_check_alone_counts_nothing() -> None:
    rm = manager(max_orders_per_minute=1)
    for i in range(5):
        assert check(rm, order(), now=T0 + i) is None
    assert rm.orders_in_window(T0 + 5) == 0


def test_orders_per_minute_window_rolls() -> None:
    rm = manager(max_orders_per_minute=2)
    rm.record(T0)
    rm.record(T0 + 30 * SEC)
    # a submission holds its slot for 60 s: still full 1 ns before T0's slot frees
    assert check(rm, order(), now=T0 + RISK_WINDOW_NS - 1) is not None
    assert check(rm, order(), now=T0 + RISK_WINDOW_NS) is None
    rm.record(T0 + RISK_WINDOW_NS)
    assert rm.orders_in_window(T0 + RISK_WINDOW_NS) == 2
    assert check(rm, order(), now=T0 + 89 * SEC) is not None
    assert check(rm, order(), now=T0 + 90 * SEC) is None
    assert rm.orders_in_window(T0 + 10 * RISK_WINDOW_NS) == 0


def test_record_out_of_order_keeps_the_window_sorted() -> None:
    rm = manager(max_orders_per_minute=2)
    rm.record(T0 + 10 * SEC)
    rm.record(T0)  # late: counted as if at T0 + 10 s (holds its slot a little longer, never less)
    assert check(rm, order(), now=T0 + 69 * SEC) is not None
    assert check(rm, order(), now=T0 + 70 * SEC) is None


# ---------------------------------------------------------------------------- daily_loss_limit


@pytest.mark.parametrize(
    ("equity", "halted"),
    [(99_000.01, False), (99_000.0, True), (98_999.99, True), (100_500.0, False)],
)
def test_daily_loss_at_under_over_limit(equity: float, halted: bool) -> None:
    rm = manager(daily_loss_limit=1_000)
    rm.observe(T0, 100_000.0)
    assert rm.start_equity == 100_000.0
    rm.observe(T0 + SEC, equity)
    assert rm.halted is halted
    reason = check(rm, order("buy", 1), equity=equity, now=T0 + 2 * SEC)
    assert (reason is not None) is halted


def test_daily_loss_reason_names_rule_and_numbers() -> None:
    rm = manager(daily_loss_limit=1_000)
    rm.observe(T0, 100_000.0)
    reason = check(rm, order("buy", 1), equity=98_500.0, now=T0 + SEC)  # check observes too
    assert rm.halted
    assert reason == (
        "risk: daily_loss_limit: equity fell to 98,500.00, 1,500.00 below the day's start "
        "100,000.00 (limit 1,000.00); until the next UTC day only orders that reduce a position "
        "pass"
    )


@pytest.mark.parametrize(
    ("side", "qty", "position", "pending", "passes"),
    [
        ("sell", 100, 100.0, 0.0, True),  # closes the long
        ("sell", 40, 100.0, 0.0, True),  # reduces it
        ("sell", 40, 100.0, 60.0, True),  # with the open sells: still flat at worst
        ("sell", 50, 100.0, 60.0, False),  # with the open sells it could go short
        ("sell", 150, 100.0, 0.0, False),  # a flip opens a short
        ("buy", 1, 100.0, 0.0, False),  # adds to the long
        ("buy", 100, -100.0, 0.0, True),  # covers the short
        ("buy", 101, -100.0, 0.0, False),
        ("sell", 1, -100.0, 0.0, False),  # adds to the short
        ("buy", 1, 0.0, 0.0, False),  # opens
        ("sell", 1, 0.0, 0.0, False),
    ],
)
def test_halt_lets_only_reducing_orders_through(
    side: str, qty: float, position: float, pending: float, passes: bool
) -> None:
    rm = manager(daily_loss_limit=1_000)
    rm.observe(T0, 100_000.0)
    rm.observe(T0 + SEC, 98_000.0)
    assert rm.halted
    reason = check(
        rm,
        order(side, qty),
        position=position,
        pending_same_side=pending,
        equity=98_000.0,
        now=T0 + 2 * SEC,
    )
    assert (reason is None) is passes
    if not passes:
        assert reason is not None and reason.startswith("risk: daily_loss_limit: ")


def test_halt_lasts_the_day_and_rollover_resets_the_start() -> None:
    rm = manager(daily_loss_limit=1_000)
    rm.observe(T0, 100_000.0)
    rm.observe(T0 + SEC, 98_000.0)
    assert rm.halted
    rm.observe(T0 + 2 * SEC, 100_200.0)  # recovered: still halted until the next UTC day
    assert rm.halted
    assert check(rm, order(), equity=100_200.0, now=T0 + 3 * SEC) is not None
    next_day = (T0 // DAY + 1) * DAY
    rm.observe(next_day - 1, 97_000.0)  # the last nanosecond of the day is still that day
    assert rm.halted
    assert rm.start_equity == 100_000.0
    rm.observe(next_day, 98_000.0)  # the first equity of the new day is its start
    assert not rm.halted
    assert rm.start_equity == 98_000.0
    assert check(rm, order(), equity=98_000.0, now=next_day + SEC) is None
    rm.observe(next_day + 2 * SEC, 97_000.01)
    assert not rm.halted
    rm.observe(next_day + 3 * SEC, 97_000.0)
    assert rm.halted


def test_check_rolls_the_day_over_itself() -> None:
    rm = manager(daily_loss_limit=1_000)
    rm.observe(T0, 100_000.0)
    rm.observe(T0 + SEC, 98_000.0)
    assert rm.halted
    # no observe on the new day: check's own equity starts it
    assert check(rm, order(), equity=98_000.0, now=T0 + DAY) is None
    assert not rm.halted
    assert rm.start_equity == 98_000.0


def test_an_earlier_time_does_not_restart_the_day() -> None:
    rm = manager(daily_loss_limit=1_000)
    rm.observe(T0, 100_000.0)
    rm.observe(T0 - DAY, 50_000.0)  # out of order: treated as today
    assert rm.start_equity == 100_000.0
    assert rm.halted


def test_losses_never_halt_without_a_daily_limit() -> None:
    rm = manager(max_open_orders=5)
    rm.observe(T0, 100_000.0)
    rm.observe(T0 + SEC, 1.0)
    assert not rm.halted
    assert check(rm, order(), equity=1.0, now=T0 + 2 * SEC) is None


# -------------------------------------------------------------------- against a naive reference

_DELTAS = [0, 1, SEC, 10 * SEC, 30 * SEC, RISK_WINDOW_NS - 1, RISK_WINDOW_NS, 61 * SEC]


@settings(max_examples=200, deadline=None)
@given(
    max_open=st.integers(1, 6),
    per_minute=st.integers(1, 6),
    steps=st.lists(
        st.tuples(st.sampled_from(_DELTAS), st.sampled_from(["submit", "submit", "close"])),
        max_size=60,
    ),
    picks=st.lists(st.integers(0, 1_000), min_size=60, max_size=60),
)
def test_random_order_flow_never_exceeds_the_count_limits(
    max_open: int, per_minute: int, steps: list[tuple[int, str]], picks: list[int]
) -> None:
    rm = manager(max_open_orders=max_open, max_orders_per_minute=per_minute)
    now = T0
    open_orders: list[int] = []  # ids of the orders the reference holds open
    sent: list[int] = []  # every recorded submission time
    for i, (delta, action) in enumerate(steps):
        now += delta
        if action == "close":  # an open order fills or is canceled
            if open_orders:
                open_orders.pop(picks[i] % len(open_orders))
            continue
        reason = check(rm, order(), open_orders=len(open_orders), now=now)
        in_window = sum(1 for t in sent if now - RISK_WINDOW_NS < t <= now)
        expect_refused = len(open_orders) + 1 > max_open or in_window + 1 > per_minute
        assert (reason is not None) is expect_refused, (reason, len(open_orders), in_window)
        if reason is None:
            rm.record(now)
            sent.append(now)
            open_orders.append(i)
        assert len(open_orders) <= max_open
        assert all(sum(1 for u in sent if t - RISK_WINDOW_NS < u <= t) <= per_minute for t in sent)
