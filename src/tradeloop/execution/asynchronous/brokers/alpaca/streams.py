"""Alpaca's two WebSocket streams: how each one opens and what its frames hold.

* ``trade_updates`` (``{base}/stream``): authenticate, then listen; JSON arrives in text *or*
  binary frames (paper sends binary). Nothing is expected before the authorization reply.
* market data (``{data}/v2/{feed}``): the venue greets with ``connected``, then auth and a bar
  subscription; every message is a JSON array. tradeloop speaks JSON (no msgpack header).

Both are :class:`~tradeloop.execution.asynchronous.components.connection.StreamProtocol`
implementations; the connection manager owns the sockets, reconnects and watchdogs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from tradeloop.execution.asynchronous.components.connection import (
    StreamClosedError,
    decode_json_frame,
)
from tradeloop.execution.core.backoff import MESSAGE_CODES

__all__ = ["DataStreamProtocol", "TradeStreamProtocol"]


async def _next_json(ws: aiohttp.ClientWebSocketResponse, stream: str) -> Any:
    msg = await ws.receive()
    if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
        return decode_json_frame(msg)
    raise StreamClosedError(stream, ws.close_code, "closed during the handshake")


class TradeStreamProtocol:
    """The ``trade_updates`` stream."""

    name = "trade_updates"

    def __init__(self, key_id: str, secret_key: str) -> None:
        self._key_id = key_id
        self._secret = secret_key

    def __repr__(self) -> str:  # never show the credentials
        return "TradeStreamProtocol(trade_updates)"

    def upgrade_headers(self) -> Mapping[str, str]:
        return {}

    async def handshake(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await ws.send_str(
            json.dumps(
                {
                    "action": "authenticate",
                    "data": {"key_id": self._key_id, "secret_key": self._secret},
                }
            )
        )
        reply = await _next_json(ws, self.name)
        data = reply.get("data") if isinstance(reply, dict) else None
        if isinstance(data, dict) and reply.get("stream") == "error":
            code = data.get("code")
            text = str(data.get("message") or data.get("msg") or "error")
            raise StreamClosedError(self.name, code if isinstance(code, int) else None, text)
        if not (isinstance(data, dict) and reply.get("stream") == "authorization"):
            raise StreamClosedError(self.name, None, "unexpected reply to authenticate")
        if data.get("status") != "authorized":
            raise StreamClosedError(self.name, 401, "not authorized")
        await ws.send_str(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))

    def decode(self, msg: aiohttp.WSMessage) -> list[Any]:
        value = decode_json_frame(msg)
        if isinstance(value, dict) and value.get("stream") == "listening":
            return []  # the optional confirmation of `listen`
        return [value]


class DataStreamProtocol:
    """The market-data stream, subscribed to the bars of ``symbols``."""

    name = "market_data"

    def __init__(self, key_id: str, secret_key: str, symbols: Sequence[str]) -> None:
        self._key_id = key_id
        self._secret = secret_key
        self.symbols = list(symbols)

    def __repr__(self) -> str:  # never show the credentials
        return f"DataStreamProtocol(bars={self.symbols})"

    def upgrade_headers(self) -> Mapping[str, str]:
        return {}

    async def _expect(self, ws: aiohttp.ClientWebSocketResponse, kind: str, msg: str) -> None:
        reply = await _next_json(ws, self.name)
        items = reply if isinstance(reply, list) else [reply]
        for item in items:
            if not isinstance(item, dict):
                continue
            if item.get("T") == "error":
                code = item.get("code")
                text = str(item.get("msg") or "error")
                if not isinstance(code, int):
                    code = MESSAGE_CODES.get(text.strip().lower())
                raise StreamClosedError(self.name, code, text)
            if item.get("T") == kind and (not msg or item.get("msg") == msg):
                return
        raise StreamClosedError(self.name, None, f"expected {kind} {msg}".strip())

    async def handshake(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await self._expect(ws, "success", "connected")
        await ws.send_str(
            json.dumps({"action": "auth", "key": self._key_id, "secret": self._secret})
        )
        await self._expect(ws, "success", "authenticated")
        await ws.send_str(
            json.dumps({"action": "subscribe", "bars": self.symbols, "trades": [], "quotes": []})
        )
        await self._expect(ws, "subscription", "")

    def decode(self, msg: aiohttp.WSMessage) -> list[Any]:
        value = decode_json_frame(msg)
        return value if isinstance(value, list) else [value]
