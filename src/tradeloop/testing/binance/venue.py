"""The loopback Binance venue's state and rules, pure: no I/O, no event loop.

:class:`BinanceVenue` is what the server's routes call. It holds a
:class:`~tradeloop.execution.core.exchange.SimulatedExchange` (fractions allowed, no shorting,
a percentage fee charged in the quote asset), the balances, Binance's numeric order and trade
ids, and Binance's request rules with its error codes (:class:`BinanceError` carries the HTTP
status and the ``{"code", "msg"}`` body). Every order change becomes an ``executionReport``
(and every fill an ``outboundAccountPosition``) handed to ``on_event`` as it happens, in order.

Matching is the exchange's, as in the Alpaca venue: an order placed at time ``t`` trades on the
first bar after ``t`` (a market order at that bar's open), exactly as in a backtest.

Deviation from Binance, on purpose: a ``newClientOrderId`` is refused (``-2010 Duplicate order
sent.``) as long as *any* order holds it, not only an open one; Binance would take a filled
order's id again (the broker guards against that by looking an id up before resending it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tradeloop.errors import InvalidOrderError, TradeloopError
from tradeloop.execution.asynchronous.brokers.binance.mapping import OrderFilters
from tradeloop.execution.asynchronous.brokers.binance.validation import CLIENT_ORDER_ID, on_step
from tradeloop.execution.core.costs import PercentCommission
from tradeloop.execution.core.exchange import SimulatedExchange
from tradeloop.execution.core.portfolio import Portfolio
from tradeloop.execution.types import (
    Bar,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)

__all__ = ["BinanceError", "BinanceVenue", "default_filters", "pair_name"]

JSON = dict[str, Any]
_NS_PER_MS = 1_000_000

_STATUS = {
    OrderStatus.NEW: "NEW",
    OrderStatus.HELD: "NEW",
    OrderStatus.ACCEPTED: "NEW",
    OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    OrderStatus.FILLED: "FILLED",
    OrderStatus.CANCELED: "CANCELED",
    OrderStatus.EXPIRED: "EXPIRED",
    OrderStatus.REJECTED: "REJECTED",
    OrderStatus.REPLACED: "CANCELED",
}
_EXEC = {
    OrderStatus.ACCEPTED: "NEW",
    OrderStatus.CANCELED: "CANCELED",
    OrderStatus.EXPIRED: "EXPIRED",
    OrderStatus.REJECTED: "REJECTED",
}
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "EUR")


class BinanceError(TradeloopError):
    """An error answer of the Binance API: HTTP ``status`` and the body ``{"code", "msg"}``."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        self.status = status
        self.code = code
        self.msg = msg
        super().__init__(f"HTTP {status} code={code}: {msg}")

    def body(self) -> JSON:
        return {"code": self.code, "msg": self.msg}


def _bad(code: int, msg: str) -> BinanceError:
    return BinanceError(400, code, msg)


def _mandatory(name: str) -> BinanceError:
    return _bad(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def pair_name(symbol: str, quote: str = "USDT") -> str:
    """The pair a data symbol trades as: ``ACME`` -> ``ACMEUSDT``; a symbol that already ends
    in a known quote asset (``BTCUSDT``) is kept."""
    upper = symbol.upper()
    if any(upper.endswith(q) and len(upper) > len(q) for q in _QUOTES):
        return upper
    return f"{upper}{quote}"


def default_filters() -> OrderFilters:
    """The loopback server's filters: cents, thousandths of a unit, 5 of quote at least."""
    return OrderFilters(
        min_price=0.01,
        max_price=1_000_000.0,
        tick_size=0.01,
        min_qty=0.001,
        max_qty=1_000_000.0,
        step_size=0.001,
        min_notional=5.0,
    )


def _d(value: float | None) -> str:
    return f"{(value or 0.0):.8f}"


def _ms(ns: int) -> int:
    return ns // _NS_PER_MS


class _Listener:
    __slots__ = ("_after_fill", "venue")

    def __init__(self, venue: BinanceVenue) -> None:
        self.venue = venue
        self._after_fill: Order | None = None

    def on_fill(self, fill: Fill) -> None:
        order = self.venue.exchange.book.get(fill.order_id)
        self._after_fill = order
        self.venue._record_fill(fill, order)

    def on_order_update(self, order: Order) -> None:
        if order is self._after_fill:
            self._after_fill = None
            return
        x = _EXEC.get(order.status)
        if x is not None:
            cancel = self.venue._cancel_as if x == "CANCELED" else ""
            self.venue._report(order, x, cancel=cancel)


class BinanceVenue:
    """One Binance spot account at a simulated venue (see the module docstring).

    ``pairs``: the pair ids traded (``ACMEUSDT``); ``quote``: the cash asset; ``filters``: the
    order filters of every pair; ``commission_rate``: the fee per fill, a fraction of its
    notional, in the quote asset. ``start``: the venue's time (int ns) before the first bar.
    """

    def __init__(
        self,
        pairs: Iterable[str],
        *,
        quote: str = "USDT",
        initial_cash: float = 100_000.0,
        commission_rate: float = 0.001,
        filters: OrderFilters | None = None,
        start: int = 0,
        interval_ms: int = 60_000,
        on_event: Callable[[JSON], None] | None = None,
    ) -> None:
        self.pairs: tuple[str, ...] = tuple(pairs)
        self.quote = quote
        self.filters = filters if filters is not None else default_filters()
        self.portfolio = Portfolio(initial_cash, leverage=1.0, allow_short=False)
        self._listener = _Listener(self)
        self.exchange = SimulatedExchange(
            self.portfolio,
            symbols=self.pairs,
            commission=PercentCommission(commission_rate) if commission_rate else None,
            fractional=True,
            listener=self._listener,
        )
        self.commission_rate = commission_rate
        self.now = start
        self.interval_ms = interval_ms
        self.on_event = on_event
        self.events: list[JSON] = []
        self.trades: list[JSON] = []
        self.klines: dict[str, list[list[Any]]] = {p: [] for p in self.pairs}
        self.bars = 0
        self.is_open = True
        self._order_ids: dict[str, int] = {}  # exchange id -> orderId
        self._by_number: dict[int, str] = {}
        self._order_seq = itertools.count(1)
        self._trade_seq = itertools.count(1)
        self._cancel_seq = itertools.count(1)

    # -- ids and rendering ---------------------------------------------------------------------

    def order_id(self, order: Order) -> int:
        number = self._order_ids.get(order.id)
        if number is None:
            number = self._order_ids[order.id] = next(self._order_seq)
            self._by_number[number] = order.id
        return number

    def order_json(self, order: Order) -> JSON:
        quote_qty = order.filled_qty * (order.avg_fill_price or 0.0)
        created = _ms(order.created_at)
        return {
            "symbol": order.symbol,
            "orderId": self.order_id(order),
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "price": _d(order.limit_price),
            "origQty": _d(order.qty),
            "executedQty": _d(order.filled_qty),
            "cummulativeQuoteQty": _d(quote_qty),
            "status": _STATUS[order.status],
            "timeInForce": order.tif.value.upper() if order.type is OrderType.LIMIT else "GTC",
            "type": order.type.value.upper(),
            "side": order.side.value.upper(),
            "stopPrice": _d(0.0),
            "icebergQty": _d(0.0),
            "time": created,
            "updateTime": _ms(order.updated_at),
            "isWorking": True,
            "workingTime": created,
            "origQuoteOrderQty": _d(0.0),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def _emit(self, event: JSON) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _report(
        self, order: Order, x: str, fill: Fill | None = None, trade_id: int = -1, cancel: str = ""
    ) -> None:
        ts = _ms(order.updated_at if fill is None else fill.ts)
        last_qty = fill.qty if fill is not None else 0.0
        last_px = fill.price if fill is not None else 0.0
        self._emit(
            {
                "e": "executionReport",
                "E": ts,
                "s": order.symbol,
                "c": cancel or order.client_order_id,
                "S": order.side.value.upper(),
                "o": order.type.value.upper(),
                "f": order.tif.value.upper() if order.type is OrderType.LIMIT else "GTC",
                "q": _d(order.qty),
                "p": _d(order.limit_price),
                "P": _d(0.0),
                "F": _d(0.0),
                "g": -1,
                "C": order.client_order_id if cancel else "",
                "x": x,
                "X": _STATUS[order.status],
                "r": "NONE"
                if order.status is not OrderStatus.REJECTED
                else "INSUFFICIENT_BALANCES",
                "i": self.order_id(order),
                "l": _d(last_qty),
                "z": _d(order.filled_qty),
                "L": _d(last_px),
                "n": _d(fill.commission if fill is not None else 0.0),
                "N": self.quote if fill is not None else None,
                "T": ts,
                "t": trade_id,
                "I": len(self.events) + 1,
                "w": order.is_open,
                "m": False,
                "M": fill is not None,
                "O": _ms(order.created_at),
                "Z": _d(order.filled_qty * (order.avg_fill_price or 0.0)),
                "Y": _d(last_qty * last_px),
                "Q": _d(0.0),
                "W": _ms(order.created_at),
                "V": "EXPIRE_MAKER",
            }
        )

    def _record_fill(self, fill: Fill, order: Order) -> None:
        trade_id = next(self._trade_seq)
        self.trades.append(
            {
                "symbol": order.symbol,
                "id": trade_id,
                "orderId": self.order_id(order),
                "orderListId": -1,
                "price": _d(fill.price),
                "qty": _d(fill.qty),
                "quoteQty": _d(fill.qty * fill.price),
                "commission": _d(fill.commission),
                "commissionAsset": self.quote,
                "time": _ms(fill.ts),
                "isBuyer": order.side is OrderSide.BUY,
                "isMaker": False,
                "isBestMatch": True,
            }
        )
        self._report(order, "TRADE", fill, trade_id)
        self._emit(self.account_position(_ms(fill.ts)))

    # -- balances ------------------------------------------------------------------------------

    def _last(self, pair: str) -> float:
        return self.exchange.last_prices.get(pair, 0.0)

    def balances(self) -> dict[str, tuple[float, float]]:
        """asset -> (free, locked)."""
        locked_quote = 0.0
        out: dict[str, tuple[float, float]] = {}
        locked_base: dict[str, float] = {}
        for o in self.exchange.book.open_orders():
            if o.side is OrderSide.BUY:
                px = o.limit_price if o.limit_price is not None else self._last(o.symbol)
                locked_quote += o.remaining_qty * px * (1 + self.commission_rate)
            else:
                locked_base[o.symbol] = locked_base.get(o.symbol, 0.0) + o.remaining_qty
        cash = self.portfolio.cash
        out[self.quote] = (max(cash - locked_quote, 0.0), min(locked_quote, max(cash, 0.0)))
        for pair in self.pairs:
            base = pair[: -len(self.quote)] if pair.endswith(self.quote) else pair
            held = self.portfolio.qty(pair)
            locked = min(locked_base.get(pair, 0.0), held)
            out[base] = (max(held - locked, 0.0), locked)
        return out

    def account(self) -> JSON:
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": _ms(self.now),
            "accountType": "SPOT",
            "balances": [
                {"asset": a, "free": _d(f), "locked": _d(lk)}
                for a, (f, lk) in self.balances().items()
            ],
            "permissions": ["SPOT"],
            "uid": 1,
        }

    def account_position(self, ts_ms: int) -> JSON:
        return {
            "e": "outboundAccountPosition",
            "E": ts_ms,
            "u": ts_ms,
            "B": [{"a": a, "f": _d(f), "l": _d(lk)} for a, (f, lk) in self.balances().items()],
        }

    # -- exchangeInfo --------------------------------------------------------------------------

    def exchange_info(self, server_time_ms: int) -> JSON:
        symbols = []
        for pair in self.pairs:
            base = pair[: -len(self.quote)] if pair.endswith(self.quote) else pair
            symbols.append(
                {
                    "symbol": pair,
                    "status": "TRADING",
                    "baseAsset": base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": self.quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "orderTypes": ["LIMIT", "MARKET"],
                    "icebergAllowed": False,
                    "ocoAllowed": False,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "filters": self.filters.to_json(),
                    "permissions": [],
                    "permissionSets": [["SPOT"]],
                    "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                    "allowedSelfTradePreventionModes": ["EXPIRE_MAKER"],
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": server_time_ms,
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": symbols,
        }

    # -- orders --------------------------------------------------------------------------------

    def _pair(self, params: Mapping[str, str]) -> str:
        pair = params.get("symbol")
        if not pair:
            raise _mandatory("symbol")
        if pair not in self.pairs:
            raise _bad(-1121, "Invalid symbol.")
        return pair

    def _number(self, params: Mapping[str, str], name: str, required: bool) -> float | None:
        text = params.get(name)
        if text is None or text == "":
            if required:
                raise _mandatory(name)
            return None
        try:
            value = float(text)
        except ValueError:
            raise _mandatory(name) from None
        if not value > 0:
            raise _bad(-1013, f"Invalid {name}.")
        return value

    def _check_filters(self, pair: str, qty: float, price: float | None) -> None:
        f = self.filters
        if price is not None and (
            (f.min_price and price < f.min_price - 1e-12)
            or (f.max_price and price > f.max_price + 1e-9)
            or not on_step(price, f.tick_size)
        ):
            raise _bad(-1013, "Filter failure: PRICE_FILTER")
        if (
            (f.min_qty and qty < f.min_qty - 1e-12)
            or (f.max_qty and qty > f.max_qty + 1e-9)
            or not on_step(qty, f.step_size)
        ):
            raise _bad(-1013, "Filter failure: LOT_SIZE")
        ref = price if price is not None else self._last(pair)
        if ref > 0 and f.min_notional and qty * ref < f.min_notional - 1e-9:
            raise _bad(-1013, "Filter failure: NOTIONAL")

    def _find(self, params: Mapping[str, str], unknown: BinanceError) -> Order:
        pair = self._pair(params)
        number = params.get("orderId")
        coid = params.get("origClientOrderId")
        order: Order | None = None
        if number:
            try:
                internal = self._by_number.get(int(number))
            except ValueError:
                raise _mandatory("orderId") from None
            order = self.exchange.book.orders.get(internal) if internal else None
        elif coid:
            order = self.exchange.book.by_client_id(coid)
        else:
            raise _bad(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if order is None or order.symbol != pair:
            raise unknown
        return order

    def new_order(self, params: Mapping[str, str]) -> JSON:
        """``POST /api/v3/order``: the order (``NEW``); its executionReport goes to ``on_event``."""
        pair = self._pair(params)
        side_text = (params.get("side") or "").upper()
        if side_text not in ("BUY", "SELL"):
            raise _mandatory("side")
        side = OrderSide(side_text.lower())
        type_text = (params.get("type") or "").upper()
        if not type_text:
            raise _mandatory("type")
        if type_text not in ("LIMIT", "MARKET"):
            raise _bad(-1116, "Invalid orderType.")
        otype = OrderType(type_text.lower())
        if params.get("quoteOrderQty"):
            raise _bad(-1106, "Parameter 'quoteOrderQty' sent when not required.")
        qty = self._number(params, "quantity", True)
        assert qty is not None
        price: float | None = None
        tif = TimeInForce.GTC
        if otype is OrderType.LIMIT:
            price = self._number(params, "price", True)
            tif_text = params.get("timeInForce")
            if not tif_text:
                raise _mandatory("timeInForce")
            if tif_text.upper() not in ("GTC", "IOC", "FOK"):
                raise _bad(-1115, "Invalid timeInForce.")
            tif = TimeInForce(tif_text.lower())
        elif params.get("price"):
            raise _bad(-1106, "Parameter 'price' sent when not required.")
        coid = params.get("newClientOrderId") or f"web_{next(self._cancel_seq)}"
        if not CLIENT_ORDER_ID.match(coid):
            raise _bad(-1100, "Illegal characters found in parameter 'newClientOrderId'.")
        if self.exchange.book.by_client_id(coid) is not None:
            raise _bad(-2010, "Duplicate order sent.")
        self._check_filters(pair, qty, price)
        insufficient = _bad(-2010, "Account has insufficient balance for requested action.")
        free = self.balances()
        if side is OrderSide.SELL:
            base = pair[: -len(self.quote)]
            if qty > free.get(base, (0.0, 0.0))[0] + 1e-9:
                raise insufficient
        else:
            ref = price if price is not None else self._last(pair)
            if ref > 0 and qty * ref * (1 + self.commission_rate) > free[self.quote][0] + 1e-9:
                raise insufficient
        try:
            candidate = self.exchange.book.new_order(
                pair,
                side,
                qty,
                otype,
                now=self.now,
                tif=tif,
                limit_price=price,
                client_order_id=coid,
            )
        except InvalidOrderError as exc:
            raise _bad(-1013, str(exc)) from None
        if self.exchange.admission_reason(candidate) is not None:
            raise insufficient
        order = self.exchange.submit(
            pair, side, qty, otype, now=self.now, tif=tif, limit_price=price, client_order_id=coid
        )
        kind = (params.get("newOrderRespType") or "FULL").upper()
        body = self.order_json(order)
        if kind == "ACK":
            return {k: body[k] for k in ("symbol", "orderId", "orderListId", "clientOrderId")} | {
                "transactTime": body["time"]
            }
        body["transactTime"] = body.pop("time")
        body.pop("updateTime")
        body.pop("isWorking")
        body.pop("stopPrice")
        body.pop("icebergQty")
        if kind == "FULL":
            body["fills"] = []
        return body

    def cancel(self, params: Mapping[str, str]) -> JSON:
        """``DELETE /api/v3/order``: the order ``CANCELED``; -2011 if unknown or finished."""
        unknown = _bad(-2011, "Unknown order sent.")
        order = self._find(params, unknown)
        if not order.is_open:
            raise unknown
        cancel_id = params.get("newClientOrderId") or f"cancel_{next(self._cancel_seq)}"
        self._cancel_as = cancel_id
        try:
            self.exchange.cancel(order, self.now)
        finally:
            self._cancel_as = ""
        body = self.order_json(order)
        body["origClientOrderId"] = order.client_order_id
        body["clientOrderId"] = cancel_id
        body["transactTime"] = _ms(self.now)
        return body

    _cancel_as = ""

    def query(self, params: Mapping[str, str]) -> JSON:
        """``GET /api/v3/order``; -2013 if unknown."""
        return self.order_json(self._find(params, _bad(-2013, "Order does not exist.")))

    def open_orders(self, params: Mapping[str, str]) -> list[JSON]:
        pair = self._pair(params) if params.get("symbol") else None
        return [self.order_json(o) for o in self.exchange.book.open_orders(pair)]

    def _window(self, params: Mapping[str, str]) -> tuple[int | None, int | None, int]:
        def opt(name: str) -> int | None:
            text = params.get(name)
            if not text:
                return None
            try:
                return int(text)
            except ValueError:
                raise _mandatory(name) from None

        limit = opt("limit") or 500
        if not 1 <= limit <= 1000:
            raise _bad(-1100, "Illegal characters found in parameter 'limit'.")
        return opt("startTime"), opt("endTime"), limit

    def all_orders(self, params: Mapping[str, str]) -> list[JSON]:
        """``GET /api/v3/allOrders``: ``symbol``, ``orderId`` (>=), ``startTime``/``endTime``
        (order time, ms, inclusive), ``limit`` (500, at most 1000), oldest first."""
        pair = self._pair(params)
        start, end, limit = self._window(params)
        from_id = int(params.get("orderId") or 0)
        picked = [
            self.order_json(o)
            for o in self.exchange.book.orders.values()
            if o.symbol == pair and o.parent_id is None
        ]
        picked = [
            d
            for d in picked
            if d["orderId"] >= from_id
            and (start is None or d["time"] >= start)
            and (end is None or d["time"] <= end)
        ]
        picked.sort(key=lambda d: d["orderId"])
        if start is None and not from_id:
            return picked[-limit:]
        return picked[:limit]

    def my_trades(self, params: Mapping[str, str]) -> list[JSON]:
        """``GET /api/v3/myTrades``: ``symbol`` (required), ``orderId``, ``fromId`` (>=),
        ``startTime``/``endTime`` (ms, inclusive), ``limit`` (500, at most 1000), oldest first."""
        pair = self._pair(params)
        start, end, limit = self._window(params)
        if params.get("fromId") and (start is not None or end is not None):
            raise _bad(-1128, "Combination of optional parameters invalid.")
        from_id = int(params.get("fromId") or 0)
        order_number = params.get("orderId")
        picked = [
            t
            for t in self.trades
            if t["symbol"] == pair
            and t["id"] >= from_id
            and (order_number is None or str(t["orderId"]) == order_number)
            and (start is None or t["time"] >= start)
            and (end is None or t["time"] <= end)
        ]
        if start is None and not from_id:
            return picked[-limit:]
        return picked[:limit]

    def kline_rows(self, params: Mapping[str, str]) -> list[list[Any]]:
        pair = self._pair(params)
        start, end, limit = self._window(params)
        rows = [
            r
            for r in self.klines[pair]
            if (start is None or r[0] >= start) and (end is None or r[0] <= end)
        ]
        return rows[:limit] if start is not None else rows[-limit:]

    # -- simulated time ------------------------------------------------------------------------

    def kline(self, bar: Bar) -> JSON:
        """A bar as a closed stream kline (``k``)."""
        t = _ms(bar.ts)
        return {
            "t": t,
            "T": t + self.interval_ms - 1,
            "s": bar.symbol,
            "o": _d(bar.open),
            "c": _d(bar.close),
            "h": _d(bar.high),
            "l": _d(bar.low),
            "v": _d(bar.volume),
            "n": 1,
            "x": True,
            "q": _d(bar.volume * bar.close),
            "V": _d(0.0),
            "Q": _d(0.0),
            "B": "0",
        }

    def on_bar(self, bar: Bar) -> None:
        """One bar of the replay (its symbol already a pair): the clock moves to it, open
        orders are matched against it (events go to ``on_event``)."""
        self.now = max(self.now, bar.ts)
        self.bars += 1
        k = self.kline(bar)
        self.klines[bar.symbol].append(
            [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], 1, "0", "0", "0"]
        )
        self.exchange.on_bar(bar.symbol, bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume)

    def end_of_data(self) -> None:
        self.is_open = False

    def state(self) -> JSON:
        """What the venue holds, for tests and the chaos bench (``GET /_tradeloop/state``)."""
        orders = list(self.exchange.book.orders.values())
        return {
            "now": self.now,
            "bars": self.bars,
            "cash": self.portfolio.cash,
            "positions": {s: p.qty for s, p in self.portfolio.positions.items() if p.qty},
            "orders": len(orders),
            "open_orders": sum(1 for o in orders if o.is_open),
            "client_order_ids": [o.client_order_id for o in orders],
            "fills": len(self.trades),
            "filled_qty": {o.client_order_id: o.filled_qty for o in orders if o.filled_qty},
        }
