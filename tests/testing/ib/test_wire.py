"""The fake's TWS messages, decoded by ib_async's own Decoder at server versions 157 and 178."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest
from ib_async.decoder import Decoder

from tradeloop.testing.ib import wire
from tradeloop.testing.ib.checks import DecoderErrors


class Recorder:
    """A wrapper stand-in: records every call the decoder makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


def decode(version: int, fields: list[wire.Field]) -> list[tuple[str, tuple[Any, ...]]]:
    rec = Recorder()
    frames = wire.FrameBuffer(expect_hello=False).feed(wire.encode(fields))
    assert len(frames) == 1
    with DecoderErrors() as errors:
        Decoder(rec, version).interpret(frames[0])  # type: ignore[arg-type]
    assert not errors.records, errors.records
    return rec.calls


def order(**kw: Any) -> wire.WireOrder:
    base: dict[str, Any] = dict(
        order_id=3,
        client_id=7,
        perm_id=1000000001,
        con_id=265598,
        symbol="AAPL",
        action="BUY",
        qty=10.0,
        order_type="LMT",
        lmt_price=101.5,
        aux_price=None,
        tif="DAY",
        account="DU1",
        order_ref="tl-abc-1",
        status="Submitted",
    )
    base.update(kw)
    return wire.WireOrder(**base)


def test_framing_round_trip_and_hello() -> None:
    buf = wire.FrameBuffer()
    data = wire.HELLO + wire.encode(["v157..178"]) + wire.encode([71, 2, 7, ""])
    out = buf.feed(data[:3]) + buf.feed(data[3:10]) + buf.feed(data[10:])
    assert out == [["v157..178"], ["71", "2", "7", ""]]
    with pytest.raises(ValueError):
        wire.FrameBuffer().feed(b"GET / HTTP/1.1\r\n")
    assert wire.to_field(True) == "1" and wire.to_field(None) == ""
    assert wire.to_field(float("inf")) == "Infinite"


def test_negotiate() -> None:
    assert wire.negotiate(["v157..178"], (157, 178)) == 178
    assert wire.negotiate(["v100..170 +PACEAPI"], (157, 178)) == 157
    assert wire.negotiate(["v100..150"], (157, 178)) is None
    assert wire.negotiate(["garbage"], (157, 178)) is None


def test_parse_place_order_of_the_spec_example() -> None:
    text = "3,3,265598,AAPL,STK,,0.0,,,SMART,,USD,,,,,BUY,10,MKT,,,,,,O,0,tl-abc-1,1,0,0,0"
    req = wire.parse_place_order(text.split(","))
    assert (req.order_id, req.symbol, req.action, req.qty, req.order_type) == (
        3,
        "AAPL",
        "BUY",
        10.0,
        "MKT",
    )
    assert req.order_ref == "tl-abc-1" and req.transmit and req.lmt_price is None
    assert wire.parse_cancel(["4", "1", "4", ""]) == 4


@pytest.mark.parametrize("version", [157, 178])
def test_open_order_and_status_decode(version: int) -> None:
    o = order()
    ((name, args),) = decode(version, wire.open_order(version, o))
    assert name == "openOrder"
    order_id, contract, ib_order, state = args
    assert order_id == 3 and contract.symbol == "AAPL" and contract.conId == 265598
    assert ib_order.orderRef == "tl-abc-1" and ib_order.permId == 1000000001
    assert ib_order.clientId == 7 and ib_order.lmtPrice == 101.5 and state.status == "Submitted"
    assert len(wire.open_order(version, o)) == {157: 120, 178: 127}[version]
    ((name, args),) = decode(version, wire.order_status(o))
    assert name == "orderStatus" and args[:2] == (3, "Submitted") and args[5] == 1000000001


@pytest.mark.parametrize("version", [157, 178])
def test_completed_order_decodes(version: int) -> None:
    o = order(status="Filled", filled=10.0, completed_status="Filled")
    ((name, args),) = decode(version, wire.completed_order(version, o))
    _contract, ib_order, state = args
    assert name == "completedOrder" and ib_order.permId == 1000000001
    assert ib_order.orderRef == "tl-abc-1" and ib_order.filledQuantity == 10.0
    assert state.status == "Filled"


class _IB:
    TimezoneTWS = None


@pytest.mark.parametrize("version", [157, 178])
def test_execution_commission_position_error_bar_decode(version: int) -> None:
    o = order(order_type="MKT", lmt_price=None)
    frame = wire.exec_details(
        version,
        -1,
        o,
        exec_id="e1",
        ts_ns=1_709_303_400 * 10**9,
        shares=10,
        price=101.25,
        cum_qty=10,
        avg_price=101.25,
    )
    rec = Recorder()
    rec.ib = _IB()  # type: ignore[attr-defined]
    rec.defaultTimezone = UTC  # type: ignore[attr-defined]
    fields = wire.FrameBuffer(expect_hello=False).feed(wire.encode(frame))[0]
    with DecoderErrors() as errors:
        Decoder(rec, version).interpret(fields)  # type: ignore[arg-type]
    assert not errors.records
    ((name, (req_id, _contract, ex)),) = rec.calls
    assert name == "execDetails" and req_id == -1 and ex.execId == "e1" and ex.side == "BOT"
    assert ex.orderRef == "tl-abc-1" and ex.permId == 1000000001 and ex.cumQty == 10
    assert int(ex.time.timestamp()) == 1_709_303_400
    ((name, (report,)),) = decode(version, wire.commission_report("e1", 1.0))
    assert name == "commissionReport" and report.execId == "e1" and report.commission == 1.0
    ((name, args),) = decode(version, wire.position("DU1", 5, "AAPL", 10, 101.25))
    assert name == "position" and args[2] == 10.0
    ((name, args),) = decode(version, wire.error(version, 3, 201, "Order rejected - reason:x"))
    assert name == "error" and args[:2] == (3, 201)
    ((name, args),) = decode(version, wire.realtime_bar(4, 1_709_303_455, 1, 2, 0.5, 1.5, 100))
    assert name == "realtimeBar" and args[:2] == (4, 1_709_303_455) and args[6] == 100.0
