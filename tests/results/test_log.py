"""The columnar logs of a run (fills, trades, done orders): exact read-back, spilling to Parquet,
DataFrames straight from the columns, cleanup, and a backtest that keeps few rows in memory."""

from __future__ import annotations

import dataclasses
import gc
import math
import os
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tradeloop.data.feed import BarFeed, SymbolSeries
from tradeloop.errors import ConfigError, EngineError, InvalidOrderError
from tradeloop.execution.core.book import OrderBook
from tradeloop.execution.core.validation import OrderValidator
from tradeloop.execution.synchronous import SyncExecutionEngine
from tradeloop.execution.types import (
    Bar,
    Fill,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
    Trade,
)
from tradeloop.results.frames import fills_frame, orders_frame, trades_frame
from tradeloop.results.log import (
    DEFAULT_SPILL_ROWS,
    FillLog,
    OrderLog,
    TradeLog,
    default_spill_rows,
)
from tradeloop.strategy import Context, Strategy

MINUTE = 60_000_000_000
T0 = 1_704_067_200 * 10**9  # 2024-01-01 UTC


def same(a: Any, b: Any) -> None:
    """``a`` and ``b`` hold equal values in every slot (an order's legs compared the same way)."""
    assert type(a) is type(b)
    for name in type(a).__slots__:
        x, y = getattr(a, name), getattr(b, name)
        if name == "legs":
            assert len(x) == len(y)
            for p, q in zip(x, y, strict=True):
                same(p, q)
        elif isinstance(x, float) and math.isnan(x):
            assert isinstance(y, float) and math.isnan(y), name
        else:
            assert x == y and type(x) is type(y), (name, x, y)


def fill(i: int, *, position: float | None = 1.0) -> Fill:
    return Fill(
        f"O{i // 2:06d}",
        "AAA" if i % 3 else "BBB",
        OrderSide.BUY if i % 2 else OrderSide.SELL,
        1.0 + i,
        100.0 + i / 7,
        0.01 * i,
        T0 + i * MINUTE,
        f"E{i:06d}",
        position if i % 4 else None,
    )


# -- fills ---------------------------------------------------------------------------------------


def test_fill_log_reads_back_exactly_in_memory_and_spilled(tmp_path: Any) -> None:
    fills = [fill(i) for i in range(23)]
    fills.append(Fill("custom-id", "CCC", OrderSide.BUY, 0.5, 1.25, 0.0, T0, "", None))
    log = FillLog(spill_rows=5, spill_dir=str(tmp_path))
    for f in fills:
        log.append(f)
    assert len(log) == len(fills) == 24
    assert log.spilled_rows == 20 and log.rows_in_memory == 4
    assert len(log.spill_files) == 4 and all(os.path.exists(p) for p in log.spill_files)
    for a, b in zip(fills, log, strict=True):
        same(a, b)
    for i in (0, 4, 5, 19, 20, 23, -1, -24):
        same(fills[i], log[i])
    assert [f.execution_id for f in log[3:12:2]] == [f.execution_id for f in fills[3:12:2]]
    assert [f.ts for f in reversed(log)] == [f.ts for f in reversed(fills)]
    with pytest.raises(IndexError):
        log[24]
    with pytest.raises(IndexError):
        log[-25]
    pd.testing.assert_frame_equal(log.frame(), fills_frame(fills))
    assert log != fills[:-1] and FillLog() == []  # (Fill has no __eq__: like a list of them)


def test_fill_log_without_spill_and_empty() -> None:
    log = FillLog()
    assert len(log) == 0 and list(log) == [] and log.spill_files == []
    pd.testing.assert_frame_equal(log.frame(), fills_frame([]), check_index_type=False)
    f = fill(5)
    log.append(f)
    same(log[0], f)
    assert log[0] is not f  # a row rebuilt: equal, not the same object
    assert log.spill_files == []


# -- trades --------------------------------------------------------------------------------------


def closed_trade(i: int) -> Trade:
    t = Trade("X" if i % 2 else "Y", OrderSide.BUY if i % 3 else OrderSide.SELL, T0 + i * MINUTE)
    t.entry_price, t.max_qty, t.pnl, t.commission = 10.0 + i, 2.0 + i, 1.5 * i - 3, 0.1
    t._entry_notional, t._entry_qty = t.entry_price * t.max_qty, t.max_qty
    t.exit_ts, t.exit_price = T0 + (i + 5) * MINUTE, 11.0 + i
    t._exit_notional, t._exit_qty = t.exit_price * t.max_qty, t.max_qty
    return t


def test_trade_log_keeps_opening_order_and_live_trades(tmp_path: Any) -> None:
    log = TradeLog(spill_rows=4, spill_dir=str(tmp_path))
    long_lived = Trade("Z", OrderSide.SELL, T0)
    row = log.reserve(long_lived)  # opens first, closes last: its row is spilled while live
    trades = [long_lived]
    for i in range(10):
        t = closed_trade(i)
        log.append(t)
        trades.append(t)
    open_trade = Trade("W", OrderSide.BUY, T0 + 99 * MINUTE)
    log.reserve(open_trade)
    trades.append(open_trade)
    assert log.spilled_rows == 12
    assert log[0] is long_lived and log[-1] is open_trade  # live trades are themselves
    long_lived.exit_ts, long_lived.exit_price, long_lived.pnl = T0 + 50 * MINUTE, 9.0, 4.0
    log.commit(row)
    same(log[0], long_lived)
    for a, b in zip(trades, log, strict=True):
        same(a, b)
    pd.testing.assert_frame_equal(log.frame(), trades_frame(trades))


def test_trade_log_frame_with_zero_basis_and_in_memory() -> None:
    log = TradeLog()
    t = closed_trade(1)
    t.entry_price = 0.0
    log.append(t)
    log.append(closed_trade(2))
    log.reserve(Trade("V", OrderSide.BUY, T0))
    expected = trades_frame(list(log))
    pd.testing.assert_frame_equal(log.frame(), expected)
    assert log.frame()["return_pct"].iloc[0] == 0.0


# -- orders --------------------------------------------------------------------------------------


def make_orders() -> list[Order]:
    a = Order("O000001", "AAA", OrderSide.BUY, 10.0, created_at=T0)
    a.status, a.filled_qty, a.avg_fill_price, a.commission = OrderStatus.FILLED, 10.0, 101.5, 1.0
    a.updated_at, a.session_day, a.eligible_after = T0 + MINUTE, 19_723, T0
    b = Order(
        "O000002",
        "BBB",
        OrderSide.SELL,
        3.0,
        OrderType.STOP_LIMIT,
        TimeInForce.DAY,
        limit_price=50.0,
        stop_price=51.0,
        client_order_id="my-own-id",
        tag="exit",
    )
    b.status, b.reject_reason, b.triggered = OrderStatus.REJECTED, "insufficient buying power", True
    c = Order(
        "O000003",
        "AAA",
        OrderSide.SELL,
        1.0,
        OrderType.TRAILING_STOP,
        trail_percent=2.5,
    )
    c.status, c.replaced_by, c.trail_ref, c.broker_order_id = (
        OrderStatus.REPLACED,
        "O000004",
        99.0,
        "venue-7",
    )
    d = Order("O000004", "AAA", OrderSide.SELL, 1.0, OrderType.TRAILING_STOP, trail_price=1.0)
    d.status, d.replaces = OrderStatus.CANCELED, "O000003"
    # a bracket: the entry, then its two legs
    e = Order("O000005", "BBB", OrderSide.BUY, 2.0, OrderType.LIMIT, limit_price=20.0)
    e.order_class, e.status = OrderClass.BRACKET, OrderStatus.FILLED
    tp = Order("O000006", "BBB", OrderSide.SELL, 2.0, OrderType.LIMIT, limit_price=25.0)
    sl = Order("O000007", "BBB", OrderSide.SELL, 2.0, OrderType.STOP, stop_price=18.0)
    for leg in (tp, sl):
        leg.order_class, leg.parent_id, leg.status = (
            OrderClass.BRACKET,
            "O000005",
            OrderStatus.CANCELED,
        )
    tp.status = OrderStatus.FILLED
    e.legs = (tp, sl)
    f = Order("X-1", "CCC", OrderSide.BUY, 1.0, client_order_id="X-1")  # an id of another scheme
    f.status = OrderStatus.EXPIRED
    return [a, b, c, d, e, tp, sl, f]


def test_order_log_reads_back_every_field(tmp_path: Any) -> None:
    orders = make_orders()
    log = OrderLog(spill_rows=3, spill_dir=str(tmp_path))
    for o in orders:
        if o.parent_id is None:
            log.append(o)  # its legs after it
    assert len(log) == len(orders) and log.spilled_rows == 6
    for a, b in zip(orders, log, strict=True):
        same(a, b)
    same(log[4], orders[4])  # the bracket's legs rebuilt with it (across a spill boundary)
    pd.testing.assert_frame_equal(log.frame(), orders_frame(orders))
    same(log.find("O000002"), orders[1])
    same(log.find("X-1"), orders[7])
    assert log.find("O000099") is None and log.find("nope") is None
    same(log.find_client("my-own-id"), orders[1])
    same(log.find_client("O000006"), orders[5])
    assert log.find_client("other") is None


def test_order_log_live_rows_are_the_orders_themselves() -> None:
    log = OrderLog()
    o = Order("O000001", "AAA", OrderSide.BUY, 1.0)
    row = log.reserve(o)
    assert log[row] is o and log.find("O000001") is None  # not done: only the book knows it
    o.status = OrderStatus.FILLED
    log.commit(row)
    assert log[row] is not o
    same(log[row], o)


# -- the book with a log -------------------------------------------------------------------------


def test_book_moves_done_orders_to_its_log_and_still_finds_them() -> None:
    book = OrderBook(OrderValidator(None, True))
    log = OrderLog(spill_rows=2)
    book.keep_log(log)
    first = book.new_order("AAA", "buy", 1.0, client_order_id="mine")
    book.register(first)
    book.set_status(first, OrderStatus.ACCEPTED, 1)
    book.set_status(first, OrderStatus.CANCELED, 2)
    assert book.orders["O000001"] is first  # moved at the next registration only
    second = book.new_order("AAA", "buy", 1.0, now=3)
    book.register(second)
    assert "O000001" not in book.orders and first.id not in book._client_ids
    found = book.get("O000001")
    same(found, first)
    same(book.by_client_id("mine"), first)
    assert book.current("O000001").status is OrderStatus.CANCELED
    with pytest.raises(InvalidOrderError) as err:  # a done order's client id stays taken
        book.new_order("AAA", "buy", 1.0, client_order_id="mine")
    assert err.value.field == "client_order_id" and err.value.value == "mine"
    assert list(book.all_orders())[1] is second
    with pytest.raises(EngineError):
        book.keep_log(OrderLog())
    with pytest.raises(EngineError):  # a second log, even on an empty book
        other = OrderBook(OrderValidator(None, True))
        other.keep_log(OrderLog())
        other.keep_log(OrderLog())


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "10"])
@pytest.mark.parametrize("cls", [FillLog, TradeLog, OrderLog])
def test_bad_spill_rows(cls: type[Any], value: Any) -> None:
    with pytest.raises(ConfigError) as err:
        cls(spill_rows=value)
    assert err.value.field == "spill_rows" and err.value.value == value


def test_bad_spill_dir(tmp_path: Any) -> None:
    missing = str(tmp_path / "missing")
    with pytest.raises(ConfigError) as err:
        FillLog(spill_dir=missing)
    assert err.value.field == "spill_dir" and err.value.value == missing
    with pytest.raises(ConfigError) as err:
        FillLog(spill_dir=3)  # type: ignore[arg-type]
    assert err.value.field == "spill_dir"


@pytest.mark.parametrize("raw", ["0", "-5", "lots", "1.5"])
def test_bad_spill_rows_from_the_environment(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("TRADELOOP_SPILL_ROWS", raw)
    with pytest.raises(ConfigError) as err:
        default_spill_rows()
    assert err.value.field == "TRADELOOP_SPILL_ROWS" and err.value.value == raw


def test_bad_spill_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("TRADELOOP_SPILL_DIR", str(tmp_path / "nope"))
    with pytest.raises(ConfigError) as err:
        TradeLog()
    assert err.value.field == "TRADELOOP_SPILL_DIR"


def test_spill_rows_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADELOOP_SPILL_ROWS", "1_000")
    assert default_spill_rows() == 1000 and FillLog().spill_rows == 1000
    monkeypatch.delenv("TRADELOOP_SPILL_ROWS")
    assert default_spill_rows() == DEFAULT_SPILL_ROWS == 250_000


def test_bad_column_name() -> None:
    with pytest.raises(ConfigError) as err:
        FillLog().columns(["price", "nope"])
    assert err.value.field == "names" and err.value.value == "nope"


def test_columns_subset_and_empty_frames(tmp_path: Any) -> None:
    log = FillLog(spill_rows=2, spill_dir=str(tmp_path))
    for i in range(5):
        log.append(fill(i))
    c = log.columns(["price", "ts"])
    assert list(c) == ["price", "ts"]
    assert c["price"].tolist() == [fill(i).price for i in range(5)]
    assert c["ts"].dtype == np.int64
    pd.testing.assert_frame_equal(OrderLog().frame(), orders_frame([]))
    pd.testing.assert_frame_equal(TradeLog().frame(), trades_frame([]))


def test_bad_index_type() -> None:
    log = FillLog()
    log.append(fill(1))
    with pytest.raises(TypeError):
        log["0"]  # type: ignore[call-overload]


# -- cleanup -------------------------------------------------------------------------------------


def test_close_removes_spilled_files_and_gc_too(tmp_path: Any) -> None:
    log = FillLog(spill_rows=2, spill_dir=str(tmp_path))
    for i in range(5):
        log.append(fill(i))
    files = log.spill_files
    assert len(files) == 2 and all(os.path.exists(p) for p in files)
    log.close()
    assert not any(os.path.exists(p) for p in files) and os.listdir(tmp_path) == []
    assert log.closed and log.spill_files == []
    same(log[4], fill(4))  # the rows in memory stay readable
    with pytest.raises(EngineError):
        log[0]
    log.close()  # idempotent

    other = TradeLog(spill_rows=1, spill_dir=str(tmp_path))
    other.append(closed_trade(1))
    assert len(os.listdir(tmp_path)) == 1
    del other
    gc.collect()
    assert os.listdir(tmp_path) == []


# -- a backtest ----------------------------------------------------------------------------------


def feed(n: int = 400) -> BarFeed:
    rng = np.random.default_rng(3)
    series = []
    for k, sym in enumerate(("AAA", "BBB")):
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))
        open_ = np.concatenate(([close[0]], close[:-1]))
        high = np.maximum(open_, close) * 1.002
        low = np.minimum(open_, close) * 0.998
        ts = (T0 + (np.arange(n) * 2 + k) * MINUTE).tolist()
        series.append(
            SymbolSeries(
                sym, ts, open_.tolist(), high.tolist(), low.tolist(), close.tolist(), [1e6] * n
            )
        )
    return BarFeed(series)


class Busy(Strategy):
    """Orders of many kinds: market flips, brackets, tagged limits canceled or replaced, custom
    client ids, and orders the account cannot afford (rejected)."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0
        self.waiting: list[Order] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.n += 1
        n = self.n
        sym = bar.symbol
        if n % 5 == 0:
            qty = ctx.position(sym).qty
            ctx.sell(sym, qty + 3) if qty > 0 else ctx.buy(sym, 3 - qty)
        if n % 13 == 0:
            ctx.buy(
                sym,
                2,
                order_class="bracket",
                take_profit={"limit_price": bar.close * 1.01},
                stop_loss={"stop_price": bar.close * 0.99},
            )
        if n % 7 == 0:
            o = ctx.buy(
                sym,
                1,
                type="limit",
                limit_price=bar.close * 0.97,
                tag="dip",
                client_order_id=f"dip-{n}",
                tif="day",
            )
            self.waiting.append(o)
        if n % 7 == 3 and self.waiting:
            o = self.waiting.pop(0)
            if o.is_open:
                if n % 2:
                    ctx.cancel(o)
                else:
                    ctx.replace(o, limit_price=bar.close * 0.96)
        if n % 41 == 0:
            ctx.buy(sym, 1e9)  # rejected: far beyond the buying power


def run(**kwargs: Any) -> Any:
    return SyncExecutionEngine(feed(), Busy(), initial_cash=100_000.0, **kwargs).run()


def test_backtest_with_a_tiny_spill_threshold_equals_one_in_memory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    whole = run()
    monkeypatch.setenv("TRADELOOP_SPILL_ROWS", "7")
    monkeypatch.setenv("TRADELOOP_SPILL_DIR", str(tmp_path))
    small = run()
    assert len(whole.orders) > 100 and len(whole.fills) > 100 and len(whole.trades) > 20
    assert any(o.status is OrderStatus.REJECTED for o in whole.orders)
    assert any(o.order_class is OrderClass.BRACKET for o in whole.orders)
    assert any(o.status is OrderStatus.REPLACED for o in whole.orders)
    for log in (small.orders, small.fills, small.trades):
        assert log.rows_in_memory < 7 and log.spilled_rows > 0  # type: ignore[attr-defined]
    for name in ("orders", "fills", "trades"):
        a, b = getattr(whole, name), getattr(small, name)
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            same(x, y)
    pd.testing.assert_frame_equal(small.orders_df(), orders_frame(list(whole.orders)))
    pd.testing.assert_frame_equal(small.fills_df(), fills_frame(list(whole.fills)))
    pd.testing.assert_frame_equal(small.trades_df(), trades_frame(list(whole.trades)))
    assert small.metrics() == whole.metrics()
    # the metrics from the columns are the metrics from the objects, to the last bit
    plain = dataclasses.replace(
        small, orders=list(small.orders), fills=list(small.fills), trades=list(small.trades)
    )
    assert plain.metrics() == small.metrics()
    assert small.metrics()["num_rejected"] > 0
    assert os.listdir(tmp_path)
    small.close()
    assert os.listdir(tmp_path) == []
    assert len(small.fills) == len(whole.fills)  # lengths stay; spilled rows are gone
    with pytest.raises(EngineError):
        small.fills[0]


def test_backtest_result_as_context_manager(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("TRADELOOP_SPILL_ROWS", "5")
    monkeypatch.setenv("TRADELOOP_SPILL_DIR", str(tmp_path))
    with run() as result:
        assert len(result.fills) > 5 and os.listdir(tmp_path)
    assert os.listdir(tmp_path) == []


def test_backtest_strategy_still_gets_orders_and_fills(monkeypatch: pytest.MonkeyPatch) -> None:
    got: list[Any] = []

    class Watch(Busy):
        def on_fill(self, ctx: Context, f: Fill) -> None:
            got.append(f)

        def on_order_update(self, ctx: Context, order: Order) -> None:
            got.append(order)

    monkeypatch.setenv("TRADELOOP_SPILL_ROWS", "3")
    result = SyncExecutionEngine(feed(100), Watch(), initial_cash=100_000.0).run()
    assert got and all(isinstance(x, Fill | Order) for x in got)
    fills = [x for x in got if isinstance(x, Fill)]
    assert len(fills) == len(result.fills)
    for a, b in zip(fills, result.fills, strict=True):
        same(a, b)
