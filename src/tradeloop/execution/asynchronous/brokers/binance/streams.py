"""Binance's two sockets as ``StreamProtocol`` handshakes for the shared ``ManagedStream``
(:mod:`tradeloop.execution.asynchronous.components.connection`, which owns reconnects, backoff
and the watchdog), and the kline assembler that decides when a bar is closed.

* **User data** on the WebSocket API (``/ws-api/v3``): ``userDataStream.subscribe.signature``
  signed like ccxt 4.5.90 signs it; events then arrive on the same socket as
  ``{"subscriptionId": n, "event": {...}}``.
* **Klines** on the market streams (``/ws``): ``SUBSCRIBE ["acmeusdt@kline_1m", ...]``.

ccxt.pro's ``watch_*`` would read the same sockets, but it drops the kline's closed flag ``x``
and keeps one entry per order id (two fills between two awaits would look like one); reading
the raw events keeps every execution, in order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp

from tradeloop.execution.asynchronous.brokers.binance.mapping import (
    MalformedMessageError,
    bar_from_kline,
    ws_signature,
)
from tradeloop.execution.asynchronous.components.connection import (
    StreamClosedError,
    decode_json_frame,
)
from tradeloop.execution.types import Bar

__all__ = ["KlineAssembler", "KlineStreamProtocol", "UserDataProtocol"]


async def _reply(ws: aiohttp.ClientWebSocketResponse, request_id: object, name: str) -> Any:
    """The answer to request ``request_id`` (other frames before it are skipped)."""
    while True:
        msg = await ws.receive()
        if msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.CLOSED,
        ):
            raise StreamClosedError(name, ws.close_code, "closed during the handshake")
        if msg.type is aiohttp.WSMsgType.ERROR:
            raise StreamClosedError(name, None, "socket error during the handshake")
        data = decode_json_frame(msg)
        if isinstance(data, Mapping) and data.get("id") == request_id:
            return data


class UserDataProtocol:
    """The WebSocket API user-data subscription (see the module docstring). ``clock`` gives
    epoch milliseconds (the venue's, adjusted by the broker when it knows the offset)."""

    name = "user_data"

    def __init__(
        self,
        api_key: str,
        secret: str,
        recv_window: int = 10000,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self._key = api_key
        self._secret = secret
        self.recv_window = recv_window
        self.clock = clock if clock is not None else (lambda: int(time.time() * 1000))
        self.subscription_id: int | None = None
        self._seq = 0

    def __repr__(self) -> str:
        return "UserDataProtocol()"

    def upgrade_headers(self) -> Mapping[str, str]:
        return {}

    async def handshake(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._seq += 1
        request_id = f"tl-sub-{self._seq}"
        params: dict[str, object] = {
            "apiKey": self._key,
            "recvWindow": self.recv_window,
            "timestamp": self.clock(),
        }
        params["signature"] = ws_signature(self._secret, params)
        await ws.send_str(
            json.dumps(
                {"id": request_id, "method": "userDataStream.subscribe.signature", "params": params}
            )
        )
        reply = await _reply(ws, request_id, self.name)
        status = reply.get("status")
        result = reply.get("result")
        if status == 200 and isinstance(result, Mapping) and "subscriptionId" in result:
            self.subscription_id = int(result["subscriptionId"])
            return
        error = reply.get("error") if isinstance(reply.get("error"), Mapping) else {}
        code = error.get("code") if isinstance(error, Mapping) else None
        # -1022 bad signature, -2014/-2015 bad key: the credentials, not the network
        http = 401 if code in (-1022, -2014, -2015) or status in (401, 403) else status
        raise StreamClosedError(
            self.name,
            http if isinstance(http, int) else None,
            f"subscription refused ({code})",
        )

    def decode(self, msg: aiohttp.WSMessage) -> list[Any]:
        return [decode_json_frame(msg)]


class KlineStreamProtocol:
    """The market-stream kline subscription of ``symbols`` at ``interval``."""

    name = "klines"

    def __init__(self, symbols: Sequence[str], interval: str = "1m") -> None:
        self.streams = [f"{s.lower()}@kline_{interval}" for s in symbols]
        self._seq = 0

    def upgrade_headers(self) -> Mapping[str, str]:
        return {}

    async def handshake(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._seq += 1
        await ws.send_str(
            json.dumps({"method": "SUBSCRIBE", "params": self.streams, "id": self._seq})
        )
        reply = await _reply(ws, self._seq, self.name)
        if reply.get("result", 0) is not None:
            error = reply.get("error")
            code = error.get("code") if isinstance(error, Mapping) else None
            raise StreamClosedError(self.name, None, f"subscription refused ({code})")

    def decode(self, msg: aiohttp.WSMessage) -> list[Any]:
        data = decode_json_frame(msg)
        if isinstance(data, Mapping) and "stream" in data and "data" in data:
            return [data["data"]]  # a combined stream's envelope
        return [data]


class KlineAssembler:
    """Kline events -> closed bars, each once.

    A kline is closed when its event says so (``x``), or when a later kline of the same symbol
    starts (its ``t`` is later): then the last update of the earlier one is the bar. Updates of
    a bar already emitted are ignored, as are klines older than it."""

    __slots__ = ("_last_emitted", "_open")

    def __init__(self) -> None:
        self._open: dict[str, Bar] = {}
        self._last_emitted: dict[str, int] = {}

    def feed(self, message: Any) -> list[Bar]:
        """The bars one stream message closes (raises MalformedMessageError for a bad kline)."""
        if not isinstance(message, Mapping) or message.get("e") != "kline":
            return []
        k = message.get("k")
        if not isinstance(k, Mapping):
            raise MalformedMessageError("kline", "k", k, "must be an object")
        bar = bar_from_kline(k)
        sym = bar.symbol
        done = self._last_emitted.get(sym)
        if done is not None and bar.ts <= done:
            return []
        out: list[Bar] = []
        pending = self._open.get(sym)
        if pending is not None and pending.ts < bar.ts:
            out.append(pending)
            self._last_emitted[sym] = pending.ts
        if k.get("x") is True:
            self._open.pop(sym, None)
            out.append(bar)
            self._last_emitted[sym] = bar.ts
        else:
            self._open[sym] = bar
        return out
