"""The TWS socket protocol as the loopback IB server speaks it: framing and messages, pure.

Facts from ``/work/shared/specs/ib.md`` (ib_async 2.1.0's ``client.py``/``decoder.py``): every
message but the client's first 4 bytes (``API\\0``) is a 4-byte big-endian length and a payload
of NUL-terminated text fields. Numbers are sent as ``str()``, booleans as ``1``/``0``, unset
values as ``""``. The builders below return the field lists the server sends (message id
first) in exactly the order and count ib_async's decoder unpacks at the negotiated server
version; ``encode`` frames them. Nothing here does I/O.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

__all__ = [
    "HELLO",
    "MAX_CLIENT_VERSION",
    "MIN_CLIENT_VERSION",
    "FrameBuffer",
    "PlaceOrderRequest",
    "WireOrder",
    "account_summary",
    "account_summary_end",
    "commission_report",
    "completed_order",
    "completed_orders_end",
    "current_time",
    "encode",
    "error",
    "exec_details",
    "exec_details_end",
    "format_time",
    "handshake_reply",
    "managed_accounts",
    "negotiate",
    "next_valid_id",
    "open_order",
    "open_order_end",
    "order_status",
    "parse_cancel",
    "parse_place_order",
    "parse_realtime_bars",
    "position",
    "position_end",
    "realtime_bar",
    "to_field",
]

HELLO: Final = b"API\0"
MIN_CLIENT_VERSION: Final = 157
MAX_CLIENT_VERSION: Final = 178

Field = str | int | float | bool | None


def to_field(value: Field) -> str:
    """One field's text: ``None`` -> ``""``, bools ``1``/``0``, ``inf`` -> ``Infinite``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and math.isinf(value):
        return "Infinite"
    return str(value)


def encode(fields: Iterable[Field]) -> bytes:
    """A framed message: 4-byte big-endian length, then NUL-terminated fields."""
    payload = b"".join(to_field(f).encode() + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


class FrameBuffer:
    """Bytes in, messages (lists of text fields) out. ``hello`` is true until the client's
    ``API\\0`` prefix was consumed (it is the only unframed part of the stream)."""

    def __init__(self, *, expect_hello: bool = True, max_frame: int = 1 << 24) -> None:
        self._data = b""
        self.hello = expect_hello
        self.max_frame = max_frame

    def feed(self, data: bytes) -> list[list[str]]:
        """Add received bytes; the complete messages they finish, in order. Raises
        ``ValueError`` for a stream that does not start with ``API\\0`` or an oversized frame."""
        self._data += data
        out: list[list[str]] = []
        if self.hello:
            if len(self._data) < len(HELLO):
                if not HELLO.startswith(self._data):
                    raise ValueError("not a TWS API client (no API\\0 prefix)")
                return out
            if not self._data.startswith(HELLO):
                raise ValueError("not a TWS API client (no API\\0 prefix)")
            self._data = self._data[len(HELLO) :]
            self.hello = False
        while len(self._data) >= 4:
            (size,) = struct.unpack(">I", self._data[:4])
            if size > self.max_frame:
                raise ValueError(f"frame of {size} bytes is too large")
            if len(self._data) < 4 + size:
                break
            payload = self._data[4 : 4 + size]
            self._data = self._data[4 + size :]
            fields = payload.decode(errors="backslashreplace").split("\0")
            if fields and fields[-1] == "":
                fields.pop()
            out.append(fields)
        return out


def negotiate(fields: Sequence[str], supported: Sequence[int]) -> int | None:
    """The server version to answer the client's ``v157..178`` (+ options) with: the highest of
    ``supported`` inside the client's range; ``None`` if none is."""
    if len(fields) != 1 or not fields[0].startswith("v"):
        return None
    text = fields[0][1:].split(" ", 1)[0]
    lo_text, sep, hi_text = text.partition("..")
    try:
        lo = int(lo_text)
        hi = int(hi_text) if sep else lo
    except ValueError:
        return None
    fits = [v for v in supported if lo <= v <= hi]
    return max(fits) if fits else None


def format_time(ts_ns: int) -> str:
    """Venue time (int ns) as an execution time ib_async parses: ``YYYYMMDD HH:MM:SS UTC``."""
    return datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=UTC).strftime("%Y%m%d %H:%M:%S UTC")


# ------------------------------------------------------------------ client -> server requests


@dataclass(frozen=True)
class PlaceOrderRequest:
    """The fields of placeOrder (3) a venue needs: 1-28 of the spec, the tail ignored."""

    order_id: int
    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    currency: str
    action: str
    qty: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    account: str
    order_ref: str
    transmit: bool
    parent_id: int


def _float(text: str) -> float | None:
    if text == "" or text == "1.7976931348623157e+308":
        return None
    if text == "Infinite":
        return math.inf
    return float(text)


def parse_place_order(fields: Sequence[str]) -> PlaceOrderRequest:
    """placeOrder ``[3, orderId, contract(12), secIdType, secId, action, totalQuantity,
    orderType, lmtPrice, auxPrice, tif, ocaGroup, account, openClose, origin, orderRef,
    transmit, parentId, ...]`` -> its head. ``ValueError`` if too short or not numbers."""
    if len(fields) < 29 or fields[0] != "3":
        raise ValueError(f"placeOrder needs at least 29 fields, got {len(fields)}")
    qty = _float(fields[17])
    if qty is None:
        raise ValueError("placeOrder: no totalQuantity")
    return PlaceOrderRequest(
        order_id=int(fields[1]),
        con_id=int(fields[2] or 0),
        symbol=fields[3],
        sec_type=fields[4],
        exchange=fields[9],
        currency=fields[11],
        action=fields[16],
        qty=qty,
        order_type=fields[18],
        lmt_price=_float(fields[19]),
        aux_price=_float(fields[20]),
        tif=fields[21],
        account=fields[23],
        order_ref=fields[26],
        transmit=fields[27] != "0",
        parent_id=int(fields[28] or 0),
    )


def parse_cancel(fields: Sequence[str]) -> int:
    """cancelOrder ``[4, 1, orderId(, manualCancelOrderTime)]`` -> the order id."""
    if len(fields) < 3 or fields[0] != "4":
        raise ValueError("cancelOrder needs [4, 1, orderId]")
    return int(fields[2])


def parse_realtime_bars(fields: Sequence[str]) -> tuple[int, str, int]:
    """reqRealTimeBars ``[50, 3, reqId, contract(12), barSize, whatToShow, useRTH, options]``
    -> (reqId, symbol, barSize)."""
    if len(fields) < 16 or fields[0] != "50":
        raise ValueError("reqRealTimeBars needs 16 fields")
    return int(fields[2]), fields[4], int(fields[15] or 5)


# ------------------------------------------------------------------ server -> client messages


@dataclass
class WireOrder:
    """An order as the fake shows it in openOrder, orderStatus and completedOrder."""

    order_id: int
    client_id: int
    perm_id: int
    con_id: int
    symbol: str
    action: str  # BUY / SELL
    qty: float
    order_type: str  # MKT, LMT, STP, STP LMT, TRAIL
    lmt_price: float | None
    aux_price: float | None
    tif: str
    account: str
    order_ref: str
    status: str  # Submitted, Filled, Cancelled, ...
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    exchange: str = "SMART"
    primary_exchange: str = "NASDAQ"
    currency: str = "USD"
    completed_time: str = ""
    completed_status: str = ""

    @property
    def remaining(self) -> float:
        return max(0.0, self.qty - self.filled) if self.status not in _DONE else 0.0


_DONE = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})


def _num(x: float | None) -> str:
    if x is None:
        return ""
    return repr(float(x)) if not float(x).is_integer() else str(float(x))


def _qty(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def handshake_reply(version: int, connection_time: str) -> list[Field]:
    """The server's first message: exactly ``serverVersion, connectionTime``."""
    return [version, connection_time]


def managed_accounts(accounts: Sequence[str]) -> list[Field]:
    return [15, 1, ",".join(accounts)]


def next_valid_id(order_id: int) -> list[Field]:
    return [9, 1, order_id]


def current_time(epoch: int) -> list[Field]:
    return [49, 1, epoch]


def error(version: int, req_id: int, code: int, text: str) -> list[Field]:
    """error 4: ``2, reqId, code, text`` (+ ``advancedOrderRejectJson`` from 166)."""
    out: list[Field] = [4, 2, req_id, code, text]
    if version >= 166:
        out.append("")
    return out


def order_status(o: WireOrder) -> list[Field]:
    """orderStatus 3 (no version field): 11 fields after the id."""
    return [
        3,
        o.order_id,
        o.status,
        _qty(o.filled),
        _qty(o.remaining),
        _num(o.avg_fill_price),
        o.perm_id,
        0,  # parentId
        _num(o.last_fill_price),
        o.client_id,
        "",  # whyHeld
        "",  # mktCapPrice
    ]


def _contract11(o: WireOrder) -> list[Field]:
    # conId, symbol, secType, lastTradeDate, strike, right, multiplier, exchange, currency,
    # localSymbol, tradingClass (no primaryExchange)
    return [o.con_id, o.symbol, "STK", "", "0", "", "", o.exchange, o.currency, o.symbol, "NMS"]


def open_order(version: int, o: WireOrder) -> list[Field]:
    """openOrder 5, field for field as ib_async's ``Decoder.openOrder`` unpacks it."""
    f: list[Field] = [5, o.order_id, *_contract11(o)]
    f += [
        o.action,
        _qty(o.qty),
        o.order_type,
        _num(o.lmt_price),
        _num(o.aux_price),
        o.tif,
        "",  # ocaGroup
        o.account,
        "O",  # openClose
        0,  # origin
        o.order_ref,
        o.client_id,
        o.perm_id,
        0,  # outsideRth
        0,  # hidden
        0,  # discretionaryAmt
        "",  # goodAfterTime
        "",  # (ignored)
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
    ]
    if version < 177:
        f.append("")  # faProfile
    f += [
        "",  # modelCode
        "",  # goodTillDate
        "0",  # rule80A
        "",  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        0,  # auctionStrategy
        "",  # startingPrice
        "",  # stockRefPrice
        "",  # delta
        "",  # stockRangeLower
        "",  # stockRangeUpper
        "",  # displaySize
        0,  # blockOrder
        0,  # sweepToFill
        0,  # allOrNone
        "",  # minQty
        3,  # ocaType
        0,  # eTradeOnly
        0,  # firmQuoteOnly
        "",  # nbboPriceCap
        0,  # parentId
        0,  # triggerMethod
        "",  # volatility
        0,  # volatilityType
        "",  # deltaNeutralOrderType: "" skips the 8 delta-neutral fields
        "",  # deltaNeutralAuxPrice
        0,  # continuousUpdate
        0,  # referencePriceType
        "",  # trailStopPrice
        "",  # trailingPercent
        "",  # basisPoints
        "",  # basisPointsType
        "",  # comboLegsDescrip
        0,  # numComboLegs
        0,  # numOrderComboLegs
        0,  # numSmartComboRoutingParams
        "",  # scaleInitLevelSize
        "",  # scaleSubsLevelSize
        "",  # scalePriceIncrement: "" skips the 7 scale fields
        "",  # hedgeType
        0,  # optOutSmartRouting
        "",  # clearingAccount
        "",  # clearingIntent
        0,  # notHeld
        0,  # deltaNeutralContractPresent
        "",  # algoStrategy
        0,  # solicited
        0,  # whatIf
        o.status,
        *([""] * 9),  # margin fields
        "",  # commission
        "",  # minCommission
        "",  # maxCommission
        "",  # commissionCurrency
        "",  # warningText
        0,  # randomizeSize
        0,  # randomizePrice
        0,  # numConditions
        "",  # adjustedOrderType
        "",  # triggerPrice
        "",  # trailStopPrice
        "",  # lmtPriceOffset
        "",  # adjustedStopPrice
        "",  # adjustedStopLimitPrice
        "",  # adjustedTrailingAmount
        0,  # adjustableTrailingUnit
        "",  # softDollarTier name
        "",  # softDollarTier value
        "",  # softDollarTier displayName
        "",  # cashQty
        0,  # dontUseAutoPriceForHedge
        0,  # isOmsContainer
        0,  # discretionaryUpToLimitPrice
        0,  # usePriceMgmtAlgo
    ]
    if version >= 159:
        f.append("")  # duration
    if version >= 160:
        f.append(0)  # postToAts
    if version >= 162:
        f.append(0)  # autoCancelParent
    if version >= 170:
        f += ["", "", 0, "", ""]  # minTradeQty .. midOffsetAtHalf
    return f


def completed_order(version: int, o: WireOrder) -> list[Field]:
    """completedOrder 101 (no orderId, no clientId: keyed by permId), as ib_async's
    ``Decoder.completedOrder`` unpacks it."""
    f: list[Field] = [101, *_contract11(o)]
    f += [
        o.action,
        _qty(o.qty),
        o.order_type,
        _num(o.lmt_price),
        _num(o.aux_price),
        o.tif,
        "",  # ocaGroup
        o.account,
        "O",  # openClose
        0,  # origin
        o.order_ref,
        o.perm_id,
        0,  # outsideRth
        0,  # hidden
        0,  # discretionaryAmt
        "",  # goodAfterTime
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
    ]
    if version < 177:
        f.append("")  # faProfile
    f += [
        "",  # modelCode
        "",  # goodTillDate
        "0",  # rule80A
        "",  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        "",  # startingPrice
        "",  # stockRefPrice
        "",  # delta
        "",  # stockRangeLower
        "",  # stockRangeUpper
        "",  # displaySize
        0,  # sweepToFill
        0,  # allOrNone
        "",  # minQty
        3,  # ocaType
        0,  # triggerMethod
        "",  # volatility
        0,  # volatilityType
        "",  # deltaNeutralOrderType
        "",  # deltaNeutralAuxPrice
        0,  # continuousUpdate
        0,  # referencePriceType
        "",  # trailStopPrice
        "",  # trailingPercent
        "",  # comboLegsDescrip
        0,  # numComboLegs
        0,  # numOrderComboLegs
        0,  # numSmartComboRoutingParams
        "",  # scaleInitLevelSize
        "",  # scaleSubsLevelSize
        "",  # scalePriceIncrement
        "",  # hedgeType
        "",  # clearingAccount
        "",  # clearingIntent
        0,  # notHeld
        0,  # deltaNeutralContractPresent
        "",  # algoStrategy
        0,  # solicited
        o.status,
        0,  # randomizeSize
        0,  # randomizePrice
        0,  # numConditions
        "",  # trailStopPrice
        "",  # lmtPriceOffset
        "",  # cashQty
        0,  # dontUseAutoPriceForHedge
        0,  # isOmsContainer
        "",  # autoCancelDate
        _qty(o.filled),  # filledQuantity
        0,  # refFuturesConId
        0,  # autoCancelParent
        "",  # shareholder
        0,  # imbalanceOnly
        0,  # routeMarketableToBbo
        0,  # parentPermId
        o.completed_time,
        o.completed_status or o.status,
    ]
    if version >= 170:
        f += ["", "", 0, "", ""]
    return f


def completed_orders_end() -> list[Field]:
    return [102]


def open_order_end() -> list[Field]:
    return [53, 1]


def exec_details(
    version: int,
    req_id: int,
    o: WireOrder,
    *,
    exec_id: str,
    ts_ns: int,
    shares: float,
    price: float,
    cum_qty: float,
    avg_price: float,
) -> list[Field]:
    """execDetails 11 (no version field; ``pendingPriceRevision`` from 178)."""
    f: list[Field] = [
        11,
        req_id,
        o.order_id,
        *_contract11(o),
        exec_id,
        format_time(ts_ns),
        o.account,
        o.primary_exchange,  # where it executed
        "BOT" if o.action == "BUY" else "SLD",
        _qty(shares),
        _num(price),
        o.perm_id,
        o.client_id,
        0,  # liquidation
        _qty(cum_qty),
        _num(avg_price),
        o.order_ref,
        "",  # evRule
        "",  # evMultiplier
        "",  # modelCode
        1,  # lastLiquidity
    ]
    if version >= 178:
        f.append(0)  # pendingPriceRevision
    return f


def exec_details_end(req_id: int) -> list[Field]:
    return [55, 1, req_id]


def commission_report(exec_id: str, commission: float, currency: str = "USD") -> list[Field]:
    """commissionReport 59: strict, 8 fields in all."""
    return [59, 1, exec_id, _num(commission), currency, "", "", ""]


def position(account: str, con_id: int, symbol: str, qty: float, avg_cost: float) -> list[Field]:
    """position 61: strict, 16 fields in all."""
    return [
        61,
        3,
        account,
        con_id,
        symbol,
        "STK",
        "",
        "0",
        "",
        "",
        "SMART",
        "USD",
        symbol,
        "NMS",
        _qty(qty),
        _num(avg_cost),
    ]


def position_end() -> list[Field]:
    return [62, 1]


def account_summary(req_id: int, account: str, tag: str, value: str) -> list[Field]:
    return [63, 1, req_id, account, tag, value, "USD"]


def account_summary_end(req_id: int) -> list[Field]:
    return [64, 1, req_id]


def realtime_bar(
    req_id: int, epoch: int, o: float, h: float, lo: float, c: float, volume: float
) -> list[Field]:
    """realtimeBar 50: ``3, reqId, time, open, high, low, close, volume, wap, count``."""
    wap = (h + lo + c) / 3.0
    return [50, 3, req_id, epoch, _num(o), _num(h), _num(lo), _num(c), _qty(volume), _num(wap), 1]
