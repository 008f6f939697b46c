# ruff: noqa: E501  (a table of whole error messages, one per line)
"""Error reasons, asserted whole: each tells the user which field is wrong, the value given and
what to do, so a reworded or emptied reason is a failing test (not only the field and value)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tradeloop.errors import (
    ConfigError,
    InvalidOrderError,
    InvalidTransitionError,
    OrderStateError,
)
from tradeloop.execution.core.backoff import Backoff, after_close
from tradeloop.execution.core.book import OrderBook
from tradeloop.execution.core.costs import (
    FixedSlippage,
    PercentCommission,
    PercentSlippage,
    PerShareCommission,
)
from tradeloop.execution.core.cross import CrossSection
from tradeloop.execution.core.exchange import SimulatedExchange
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.core.ratelimit import RollingWindow
from tradeloop.execution.core.risk import RiskLimits, RiskManager
from tradeloop.execution.core.validation import OrderValidator, check_order_class, coerce_enum
from tradeloop.execution.types import (
    Bar,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)

V = OrderValidator
BUY, SELL = OrderSide.BUY, OrderSide.SELL
GTC = TimeInForce.GTC


def O(type: str = "market", qty: Any = 10, symbol: Any = "X", tif: str = "gtc", **kw: Any) -> Order:  # noqa: E743
    return Order("o1", symbol, BUY, qty, OrderType(type), TimeInForce(tif), **kw)


def cls(
    order_class: OrderClass,
    side: OrderSide = BUY,
    type: OrderType = OrderType.MARKET,
    tif: TimeInForce = GTC,
    limit_price: float | None = None,
    stop_price: float | None = None,
    take_profit: object = None,
    stop_loss: object = None,
) -> None:
    check_order_class(
        order_class,
        side=side,
        type=type,
        tif=tif,
        limit_price=limit_price,
        stop_price=stop_price,
        take_profit=take_profit,
        stop_loss=stop_loss,
    )


def ex(**kw: Any) -> SimulatedExchange:
    e = SimulatedExchange(Portfolio(1e6), **kw)
    e.last_prices["X"] = 100.0
    return e


def replace_bracket() -> None:
    e = ex()
    o = e.submit(
        "X",
        "buy",
        10,
        now=1,
        order_class="bracket",
        take_profit={"limit_price": 110},
        stop_loss={"stop_price": 90},
    )
    e.replace(o, 2, qty=5)


def replace_same() -> None:
    e = ex()
    o = e.submit("X", "buy", 10, "limit", limit_price=99.0, now=1)
    e.replace(o, 2, qty=10, limit_price=99.0)


def replace_same_trailing() -> None:
    e = ex()
    o = e.submit("X", "sell", 10, "trailing_stop", trail_percent=2.0, tif="day", now=1)
    e.replace(o, 2, trail_percent=2.0, tif="day")


def replace_same_stop() -> None:
    e = ex()
    o = e.submit("X", "buy", 10, "stop", stop_price=120.0, now=1)
    e.replace(o, 2, stop_price=120.0)


def replace_same_trail_price() -> None:
    e = ex()
    o = e.submit("X", "sell", 10, "trailing_stop", trail_price=2.0, now=1)
    e.replace(o, 2, trail_price=2.0)


def replace_done() -> None:
    e = ex()
    o = e.submit("X", "buy", 10, "limit", limit_price=99.0, now=1)
    e.cancel(o, 2)
    e.replace(o, 3, qty=5)


def duplicate_client_id() -> None:
    e = ex()
    e.submit("X", "buy", 1, now=1, client_order_id="a")
    e.submit("X", "buy", 1, now=1, client_order_id="a")


def adopt_duplicate() -> None:
    b = OrderBook(V())
    b.register(b.new_order("X", "buy", 1, client_order_id="a"))
    b.adopt(Order("", "X", BUY, 1, OrderType.MARKET, client_order_id="a"))


def overfill() -> None:
    b = OrderBook(V())
    o = b.new_order("X", "buy", 1)
    b.register(o)
    o.status = OrderStatus.ACCEPTED
    b.record_fill(o, 2, 1.0, 0.0, 5)


def fill_new() -> None:
    b = OrderBook(V())
    o = b.new_order("X", "buy", 1)
    b.register(o)
    b.record_fill(o, 1, 1.0, 0.0, 5)


def late_fill_open() -> None:
    b = OrderBook(V())
    o = b.new_order("X", "buy", 1)
    b.register(o)
    b.record_late_fill(o, 1, 1.0, 0.0, 5)


def cross_newer_bar() -> None:
    c = CrossSection(["A", "B"])
    c.add(Bar("A", 2, 1, 1, 1, 1, 1))
    c.add(Bar("A", 3, 1, 1, 1, 1, 1))


TP = {"limit_price": 110}
SL = {"stop_price": 90}
B = OrderClass.BRACKET

CASES: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    (
        "qty_not_number",
        lambda: V().check_qty("10"),
        InvalidOrderError,
        "qty='10': must be a number",
    ),
    (
        "qty_nan",
        lambda: V().check_qty(float("nan")),
        InvalidOrderError,
        "qty=nan: must be a finite number > 0",
    ),
    (
        "qty_fraction",
        lambda: V().check_qty(1.5),
        InvalidOrderError,
        "qty=1.5: must be a whole number (fractional quantities are disabled)",
    ),
    (
        "symbol_empty",
        lambda: V().validate(O(symbol="")),
        InvalidOrderError,
        "symbol='': must be a non-empty string",
    ),
    (
        "symbol_unknown",
        lambda: V(("B", "A")).validate(O(symbol="Z")),
        InvalidOrderError,
        "symbol='Z': unknown symbol (known: A, B)",
    ),
    (
        "limit_not_number",
        lambda: V().validate(O("limit", limit_price="1")),
        InvalidOrderError,
        "limit_price='1': must be a number",
    ),
    (
        "limit_zero",
        lambda: V().validate(O("limit", limit_price=0.0)),
        InvalidOrderError,
        "limit_price=0.0: must be a finite number > 0",
    ),
    (
        "trail_percent_100",
        lambda: V().validate(O("trailing_stop", trail_percent=100.0)),
        InvalidOrderError,
        "trail_percent=100.0: must be a number in (0, 100)",
    ),
    (
        "limit_required",
        lambda: V().validate(O("limit")),
        InvalidOrderError,
        "limit_price=None: required for type='limit'",
    ),
    (
        "limit_not_allowed",
        lambda: V().validate(O("market", limit_price=5.0)),
        InvalidOrderError,
        "limit_price=5.0: not allowed for type='market'",
    ),
    (
        "stop_required",
        lambda: V().validate(O("stop")),
        InvalidOrderError,
        "stop_price=None: required for type='stop'",
    ),
    (
        "stop_not_allowed",
        lambda: V().validate(O("limit", limit_price=5.0, stop_price=4.0)),
        InvalidOrderError,
        "stop_price=4.0: not allowed for type='limit'",
    ),
    (
        "trailing_both",
        lambda: V().validate(O("trailing_stop", trail_price=1.0, trail_percent=1.0)),
        InvalidOrderError,
        "trail_price=1.0: trailing_stop needs exactly one of trail_price or trail_percent",
    ),
    (
        "trailing_ioc",
        lambda: V().validate(O("trailing_stop", trail_price=1.0, tif="ioc")),
        InvalidOrderError,
        "tif='ioc': trailing_stop orders must be 'day' or 'gtc'",
    ),
    (
        "trail_on_market",
        lambda: V().validate(O("market", trail_percent=1.0)),
        InvalidOrderError,
        "trail_percent=1.0: only allowed for type='trailing_stop', not 'market'",
    ),
    (
        "coid_long",
        lambda: V().validate(O(client_order_id="x" * 49)),
        InvalidOrderError,
        "client_order_id='xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx': must be a string of 1..48 chars",
    ),
    (
        "enum",
        lambda: coerce_enum(OrderSide, "side", "hold"),
        InvalidOrderError,
        "side='hold': must be one of: buy, sell",
    ),
    (
        "leg_not_mapping",
        lambda: cls(B, take_profit=5),
        InvalidOrderError,
        "take_profit=5: must be a mapping such as {'limit_price': 101.5}",
    ),
    (
        "leg_unknown_key",
        lambda: cls(B, take_profit={"price": 5}),
        InvalidOrderError,
        "take_profit.price=5: unknown field (allowed: limit_price)",
    ),
    (
        "leg_required_price",
        lambda: cls(B, take_profit={}, stop_loss=SL),
        InvalidOrderError,
        "take_profit.limit_price=None: required",
    ),
    (
        "leg_price_str",
        lambda: cls(B, take_profit={"limit_price": "5"}, stop_loss=SL),
        InvalidOrderError,
        "take_profit.limit_price='5': must be a number",
    ),
    (
        "leg_price_zero",
        lambda: cls(B, take_profit=TP, stop_loss={"stop_price": 0}),
        InvalidOrderError,
        "stop_loss.stop_price=0: must be a finite number > 0",
    ),
    (
        "simple_with_leg",
        lambda: cls(OrderClass.SIMPLE, stop_loss=SL),
        InvalidOrderError,
        "stop_loss={'stop_price': 90}: only allowed with order_class bracket, oco or oto",
    ),
    (
        "class_tif",
        lambda: cls(B, tif=TimeInForce.IOC, take_profit=TP, stop_loss=SL),
        InvalidOrderError,
        "tif='ioc': bracket orders must be 'day' or 'gtc'",
    ),
    (
        "oto_both",
        lambda: cls(OrderClass.OTO, take_profit=TP, stop_loss=SL),
        InvalidOrderError,
        "stop_loss={'stop_price': 90}: an oto order needs exactly one of take_profit or stop_loss",
    ),
    (
        "oto_none",
        lambda: cls(OrderClass.OTO),
        InvalidOrderError,
        "take_profit=None: an oto order needs exactly one of take_profit or stop_loss",
    ),
    (
        "bracket_missing_sl",
        lambda: cls(B, take_profit=TP),
        InvalidOrderError,
        "stop_loss=None: required for order_class 'bracket'",
    ),
    (
        "oco_type",
        lambda: cls(OrderClass.OCO, SELL, take_profit=TP, stop_loss=SL),
        InvalidOrderError,
        "type='market': oco orders must be type 'limit'",
    ),
    (
        "oco_limit_differs",
        lambda: cls(
            OrderClass.OCO, SELL, OrderType.LIMIT, limit_price=111.0, take_profit=TP, stop_loss=SL
        ),
        InvalidOrderError,
        "limit_price=111.0: an oco order's limit price is its take-profit's (110.0); give one",
    ),
    (
        "bracket_trailing",
        lambda: cls(B, type=OrderType.TRAILING_STOP, take_profit=TP, stop_loss=SL),
        InvalidOrderError,
        "type='trailing_stop': a bracket entry cannot be a trailing stop",
    ),
    (
        "buy_tp_below_entry",
        lambda: cls(
            B,
            BUY,
            OrderType.LIMIT,
            limit_price=100.0,
            take_profit={"limit_price": 100},
            stop_loss=SL,
        ),
        InvalidOrderError,
        "take_profit.limit_price=100.0: must be above the entry price 100.0 for a buy bracket order",
    ),
    (
        "buy_sl_above_entry",
        lambda: cls(
            B,
            BUY,
            OrderType.LIMIT,
            limit_price=100.0,
            take_profit=TP,
            stop_loss={"stop_price": 100},
        ),
        InvalidOrderError,
        "stop_loss.stop_price=100.0: must be below the entry price 100.0 for a buy bracket order",
    ),
    (
        "sell_tp_above_entry",
        lambda: cls(
            B,
            SELL,
            OrderType.STOP,
            stop_price=100.0,
            take_profit={"limit_price": 100},
            stop_loss={"stop_price": 110},
        ),
        InvalidOrderError,
        "take_profit.limit_price=100.0: must be below the entry price 100.0 for a sell bracket order",
    ),
    (
        "sell_sl_below_entry",
        lambda: cls(
            B,
            SELL,
            OrderType.STOP,
            stop_price=100.0,
            take_profit={"limit_price": 90},
            stop_loss={"stop_price": 100},
        ),
        InvalidOrderError,
        "stop_loss.stop_price=100.0: must be above the entry price 100.0 for a sell bracket order",
    ),
    (
        "oco_sell_tp_below_sl",
        lambda: cls(
            OrderClass.OCO, SELL, OrderType.LIMIT, take_profit={"limit_price": 90}, stop_loss=SL
        ),
        InvalidOrderError,
        "take_profit.limit_price=90.0: must be above stop_loss.stop_price 90.0 (exits that sell)",
    ),
    (
        "oco_buy_tp_above_sl",
        lambda: cls(
            OrderClass.OCO, BUY, OrderType.LIMIT, take_profit=TP, stop_loss={"stop_price": 110}
        ),
        InvalidOrderError,
        "take_profit.limit_price=110.0: must be below stop_loss.stop_price 110.0 (exits that buy)",
    ),
    (
        "cost_negative",
        lambda: FixedSlippage(-1),
        ConfigError,
        "slippage.amount=-1: must be a finite number >= 0",
    ),
    (
        "pct_slip_1",
        lambda: PercentSlippage(1.0),
        ConfigError,
        "slippage.rate=1.0: must be < 1 (it is a fraction of the price)",
    ),
    (
        "pershare_max",
        lambda: PerShareCommission(0.01, minimum=2.0, maximum=1.0),
        ConfigError,
        "commission.maximum=1.0: must be >= commission.minimum",
    ),
    (
        "pct_comm_1",
        lambda: PercentCommission(1.0),
        ConfigError,
        "commission.rate=1.0: must be < 1 (it is a fraction of notional)",
    ),
    (
        "risk_str",
        lambda: RiskLimits(max_position="5"),
        ConfigError,
        "max_position='5': must be a number > 0 or None",
    ),
    (
        "risk_inf",
        lambda: RiskLimits(daily_loss_limit=float("inf")),
        ConfigError,
        "daily_loss_limit=inf: must be a finite number > 0 or None",
    ),
    (
        "risk_zero",
        lambda: RiskLimits(max_order_notional=0),
        ConfigError,
        "max_order_notional=0: must be a finite number > 0 or None",
    ),
    (
        "risk_count",
        lambda: RiskLimits(max_open_orders=0),
        ConfigError,
        "max_open_orders=0: must be an integer >= 1 or None",
    ),
    (
        "risk_count_float",
        lambda: RiskLimits(max_orders_per_minute=2.0),
        ConfigError,
        "max_orders_per_minute=2.0: must be an integer >= 1 or None",
    ),
    (
        "risk_limits_type",
        lambda: RiskManager({}),
        ConfigError,
        "limits='dict': must be a RiskLimits",
    ),
    (
        "backoff_base",
        lambda: Backoff(base=0),
        ConfigError,
        "backoff.base=0: must be a finite number > 0",
    ),
    (
        "backoff_factor",
        lambda: Backoff(factor=0.5),
        ConfigError,
        "backoff.factor=0.5: must be a finite number >= 1",
    ),
    (
        "backoff_cap",
        lambda: Backoff(base=2.0, cap=1.0),
        ConfigError,
        "backoff.cap=1.0: must be >= backoff.base=2.0",
    ),
    (
        "backoff_cap0",
        lambda: Backoff(cap=0),
        ConfigError,
        "backoff.cap=0: must be a finite number > 0",
    ),
    (
        "backoff_jitter",
        lambda: Backoff(jitter=1.5),
        ConfigError,
        "backoff.jitter=1.5: must be between 0 and 1",
    ),
    (
        "backoff_jitter_neg",
        lambda: Backoff(jitter=-0.1),
        ConfigError,
        "backoff.jitter=-0.1: must be a finite number >= 0",
    ),
    ("backoff_rng", lambda: Backoff(rng=1), ConfigError, "backoff.rng=1: must be a random.Random"),
    (
        "after_close_type",
        lambda: after_close(1.5),
        ConfigError,
        "code=1.5: must be an int, a string or None",
    ),
    (
        "window_limit",
        lambda: RollingWindow(limit=0),
        ConfigError,
        "limit=0: must be an integer >= 1",
    ),
    (
        "window_window",
        lambda: RollingWindow(window=0),
        ConfigError,
        "window=0: must be a finite number of seconds > 0",
    ),
    (
        "window_now",
        lambda: RollingWindow().delay(float("nan")),
        ConfigError,
        "now=nan: must be a finite number of seconds",
    ),
    ("cross_add", cross_newer_bar, ValueError, "bar at 3 added while 2 is gathered: deliver first"),
    (
        "participation",
        lambda: ex(participation_rate=0.0),
        InvalidOrderError,
        "participation_rate=0.0: must be in (0, 1] or None",
    ),
    (
        "replace_bracket",
        replace_bracket,
        InvalidOrderError,
        "order_class='bracket': orders of a bracket, oco or oto (the entry and its legs) cannot be replaced; cancel them and submit new ones",
    ),
    (
        "replace_same",
        replace_same,
        InvalidOrderError,
        "changes={'qty': 10, 'limit_price': 99.0}: nothing would change: order O000001 already has these values (a replace needs a new qty, price, trail or tif)",
    ),
    (
        "dup_coid",
        duplicate_client_id,
        InvalidOrderError,
        "client_order_id='a': already used (client order ids are unique)",
    ),
    (
        "adopt_dup",
        adopt_duplicate,
        InvalidOrderError,
        "client_order_id='a': already used (client order ids are unique)",
    ),
    ("overfill", overfill, OrderStateError, "order O000001: fill qty=2 exceeds remaining 1.0"),
    (
        "fill_new",
        fill_new,
        InvalidTransitionError,
        "order O000001: illegal transition status='new' -> 'filled'",
    ),
    (
        "late_fill_open",
        late_fill_open,
        OrderStateError,
        "order O000001: status='new' is not canceled, expired or replaced; record the fill normally",
    ),
    (
        "replace_done",
        replace_done,
        OrderStateError,
        "order O000001: status='canceled', only open orders can be replaced",
    ),
    (
        "replace_same_trailing",
        replace_same_trailing,
        InvalidOrderError,
        "changes={'trail_percent': 2.0, 'tif': 'day'}: nothing would change: order O000001 already has these values (a replace needs a new qty, price, trail or tif)",
    ),
    (
        "replace_same_stop",
        replace_same_stop,
        InvalidOrderError,
        "changes={'stop_price': 120.0}: nothing would change: order O000001 already has these values (a replace needs a new qty, price, trail or tif)",
    ),
    (
        "replace_same_trail_price",
        replace_same_trail_price,
        InvalidOrderError,
        "changes={'trail_price': 2.0}: nothing would change: order O000001 already has these values (a replace needs a new qty, price, trail or tif)",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error_reason(call: Callable[[], object], error: type[Exception], message: str) -> None:
    with pytest.raises(error) as ei:
        call()
    assert type(ei.value) is error
    assert str(ei.value) == message
