"""Where an order would trade inside one OHLC bar (pure; quantities are the caller's business).

The bar's intrabar path is assumed to be ``open -> low -> high -> close`` when the bar closes at or
above its open and ``open -> high -> low -> close`` otherwise (the convention backtrader uses).
Prices move continuously along each leg, so a level between two path points is touched exactly.

* market: the open.
* limit: the open if it is already at or better than the limit (a gap), else the limit if the
  bar reaches it.
* stop: the open if the bar gaps through the stop, else the stop price if the bar reaches it.
* stop-limit: the stop triggers as above; from the trigger point on, the order is a limit order for
  the rest of the path (and for later bars, if it did not fill).
* a stop or trailing stop that fired but was only partly filled (volume cap) is a market order
  for its remainder on later bars.
* trailing stop: the stop trails the best price seen since placement (highest for a sell, lowest for
  a buy) by ``trail_price`` or ``trail_percent``; it is checked along the path as the
  reference moves.

``match`` returns the raw fill price or ``None``; it also updates the order's trigger/trail state.
"""

from __future__ import annotations

from tradeloop.execution.types import Order, OrderSide, OrderType

__all__ = ["match", "path", "touch_point"]


def path(o: float, h: float, lo: float, c: float) -> tuple[float, float, float, float]:
    return (o, lo, h, c) if c >= o else (o, h, lo, c)


def _limit(is_buy: bool, limit: float, o: float, h: float, lo: float) -> float | None:
    if is_buy:
        if o <= limit:
            return o
        return limit if lo <= limit else None
    if o >= limit:
        return o
    return limit if h >= limit else None


def _touch(pts: tuple[float, ...], start: int, price: float, level: float, up: bool) -> int:
    """Index of the leg (``pts[i] -> pts[i+1]``, starting from ``price`` on leg ``start``) on
    which the price first reaches ``level`` moving up (``up``) or down; -1 if it never does."""
    cur = price
    for i in range(start, len(pts) - 1):
        nxt = pts[i + 1]
        if (up and cur <= level <= nxt) or (not up and cur >= level >= nxt):
            return i
        cur = nxt
    return -1


def _stop_limit(
    order: Order, is_buy: bool, o: float, h: float, lo: float, c: float
) -> float | None:
    stop = order.stop_price
    limit = order.limit_price
    assert stop is not None and limit is not None
    if order.triggered:
        return _limit(is_buy, limit, o, h, lo)
    pts = path(o, h, lo, c)
    if (is_buy and o >= stop) or (not is_buy and o <= stop):
        leg, trig = 0, o
    else:
        leg = _touch(pts, 0, o, stop, up=is_buy)
        if leg < 0:
            return None
        trig = stop
    order.triggered = True
    if (is_buy and trig <= limit) or (not is_buy and trig >= limit):
        return trig
    # triggered beyond the limit: wait for the rest of the path to come back to it
    return limit if _touch(pts, leg, trig, limit, up=not is_buy) >= 0 else None


def _trail_stop(order: Order, ref: float) -> float:
    if order.trail_price is not None:
        return ref - order.trail_price if order.side is OrderSide.SELL else ref + order.trail_price
    pct = (order.trail_percent or 0.0) / 100.0
    return ref * (1.0 - pct) if order.side is OrderSide.SELL else ref * (1.0 + pct)


def _trailing(order: Order, o: float, h: float, lo: float, c: float) -> float | None:
    sell = order.side is OrderSide.SELL
    ref = order.trail_ref if order.trail_ref is not None else o
    stop = _trail_stop(order, ref)
    if (sell and o <= stop) or (not sell and o >= stop):
        order.stop_price = stop
        return o
    ref = max(ref, o) if sell else min(ref, o)
    cur = o
    for nxt in path(o, h, lo, c)[1:]:
        if sell:
            if nxt > cur:
                ref = max(ref, nxt)
            else:
                stop = _trail_stop(order, ref)
                if nxt <= stop:
                    order.trail_ref = ref
                    order.stop_price = stop
                    return stop
        elif nxt < cur:
            ref = min(ref, nxt)
        else:
            stop = _trail_stop(order, ref)
            if nxt >= stop:
                order.trail_ref = ref
                order.stop_price = stop
                return stop
        cur = nxt
    order.trail_ref = ref
    order.stop_price = _trail_stop(order, ref)
    return None


def match(order: Order, o: float, h: float, lo: float, c: float) -> float | None:
    """The price at which ``order`` trades in bar (o, h, lo, c), or ``None`` if it does not."""
    t = order.type
    is_buy = order.side is OrderSide.BUY
    if t is OrderType.MARKET:
        return o
    if order.triggered and t is not OrderType.STOP_LIMIT:
        return o  # a stop that fired on an earlier bar is a market order for its remainder
    if t is OrderType.LIMIT:
        assert order.limit_price is not None
        return _limit(is_buy, order.limit_price, o, h, lo)
    if t is OrderType.STOP:
        stop = order.stop_price
        assert stop is not None
        if is_buy:
            px = o if o >= stop else (stop if h >= stop else None)
        else:
            px = o if o <= stop else (stop if lo <= stop else None)
    elif t is OrderType.STOP_LIMIT:
        return _stop_limit(order, is_buy, o, h, lo, c)
    else:
        px = _trailing(order, o, h, lo, c)
    if px is not None:
        order.triggered = True
    return px


def touch_point(
    order: Order,
    price: float,
    o: float,
    h: float,
    lo: float,
    c: float,
    triggered: bool = False,
) -> float:
    """How far along the bar's path (0 = the open, 3 = the close) ``order`` trades at ``price``
    (what :func:`match` returned): which of two linked exits the bar reaches first.

    A limit order waits for the price to come to it (a sell limit from below), a stop for the
    price to run through it (a sell stop from above); a stop-limit counts from its trigger, or,
    if it had ``triggered`` on an earlier bar (``order.triggered`` before :func:`match`), it is
    a limit order."""
    if price == o:
        return 0.0
    is_buy = order.side is OrderSide.BUY
    level = price
    up = not is_buy  # a sell limit is reached by a rise, a buy limit by a fall
    if order.type is OrderType.STOP or (order.type is OrderType.STOP_LIMIT and not triggered):
        if order.type is OrderType.STOP_LIMIT and order.stop_price is not None:
            level = order.stop_price
        up = is_buy  # a buy stop is reached by a rise, a sell stop by a fall
    pts = path(o, h, lo, c)
    leg = _touch(pts, 0, o, level, up)
    if leg < 0:
        return 3.0
    start, end = pts[leg], pts[leg + 1]
    span = abs(end - start)
    return leg + (abs(level - start) / span if span else 0.0)
