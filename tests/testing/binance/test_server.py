"""The loopback Binance server: its wire protocol with raw aiohttp, and ccxt 4.5.90 itself
(REST and ccxt.pro's watch_*) as the conformance client."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
import ccxt.pro as ccxtpro  # type: ignore[import-untyped]
import pytest

from tradeloop.execution.asynchronous.brokers.binance.mapping import ws_signature
from tradeloop.testing.binance import DEFAULT_API_KEY, DEFAULT_SECRET, BinanceServer

pytestmark = pytest.mark.timeout(60)
T = TypeVar("T")
KEY, SECRET = DEFAULT_API_KEY, DEFAULT_SECRET


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def signed(params: dict[str, Any], secret: str = SECRET) -> str:
    query = urlencode({**params, "timestamp": int(time.time() * 1000), "recvWindow": 5000})
    sig = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={sig}"


def test_rest_signing_errors_weights_and_bans() -> None:
    async def go() -> None:
        async with (
            BinanceServer(
                "sample:minute", linger=None, weight_limit=66, ban_after=2, ban_seconds=5
            ) as server,
            aiohttp.ClientSession() as http,
        ):
            base = f"{server.url}/api/v3"
            hdr = {"X-MBX-APIKEY": KEY}
            async with http.get(f"{base}/exchangeInfo") as r:
                info = await r.json()
                assert r.status == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == "20"
            assert [s["symbol"] for s in info["symbols"]] == [
                "ACMEUSDT",
                "BOLTUSDT",
                "CRUXUSDT",
                "DYNAUSDT",
            ]
            async with http.get(f"{base}/account?{signed({}, 'wrong')}", headers=hdr) as r:
                assert (r.status, await r.json()) == (
                    400,
                    {"code": -1022, "msg": "Signature for this request is not valid."},
                )
            async with http.get(f"{base}/account?{signed({})}") as r:  # no key header
                assert r.status == 401 and (await r.json())["code"] == -2014
            old = urlencode({"symbol": "ACMEUSDT", "timestamp": int(time.time() * 1000) - 60_000})
            sig = hmac.new(SECRET.encode(), old.encode(), hashlib.sha256).hexdigest()
            async with http.get(f"{base}/openOrders?{old}&signature={sig}", headers=hdr) as r:
                assert (await r.json())["code"] == -1021
            body = signed({"symbol": "ACMEUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1"})
            async with http.post(f"{base}/order", data=body, headers=hdr) as r:
                assert r.status == 429  # 66 weight spent: -1003 and Retry-After
                assert (await r.json())["code"] == -1003 and int(r.headers["Retry-After"]) >= 1
            for _ in range(2):  # ignoring Retry-After earns a ban
                async with http.get(f"{base}/time") as r:
                    status = r.status
            assert status == 418 and r.headers["Retry-After"] == "5"

    run(go())


def test_rest_order_rules() -> None:
    async def go() -> None:
        async with (
            BinanceServer("sample:minute", linger=None) as server,
            aiohttp.ClientSession(headers={"X-MBX-APIKEY": KEY}) as http,
        ):
            await server.step(4)
            url = f"{server.url}/api/v3/order"

            async def post(**p: Any) -> tuple[int, Any]:
                params = {"symbol": "ACMEUSDT", "side": "BUY", "type": "LIMIT"} | p
                async with http.post(url, data=signed(params)) as r:
                    return r.status, await r.json()

            ok = await post(quantity="1", price="100", timeInForce="GTC", newClientOrderId="a-1")
            assert ok[0] == 200 and ok[1]["status"] == "NEW" and ok[1]["fills"] == []
            assert (
                await post(quantity="1", price="100", timeInForce="GTC", newClientOrderId="a-1")
            )[1] == {"code": -2010, "msg": "Duplicate order sent."}
            assert (await post(quantity="1.0005", price="100", timeInForce="GTC"))[1]["msg"] == (
                "Filter failure: LOT_SIZE"
            )
            assert (await post(quantity="1", price="100.001", timeInForce="GTC"))[1]["msg"] == (
                "Filter failure: PRICE_FILTER"
            )
            assert (await post(quantity="0.01", price="100", timeInForce="GTC"))[1]["msg"] == (
                "Filter failure: NOTIONAL"
            )
            assert (await post(quantity="9999", price="100", timeInForce="GTC"))[1]["code"] == -2010
            assert (await post(quantity="1", price="100"))[1]["code"] == -1102  # timeInForce
            assert (await post(quantity="1", price="1", timeInForce="GTC", symbol="NOPE"))[1] == {
                "code": -1121,
                "msg": "Invalid symbol.",
            }
            q = signed({"symbol": "ACMEUSDT", "origClientOrderId": "zz"})
            async with http.get(f"{url}?{q}") as r:
                assert (await r.json())["code"] == -2013
            async with http.delete(f"{url}?{q}") as r:
                assert (await r.json())["code"] == -2011

    run(go())


def test_ws_api_and_streams_raw() -> None:
    async def go() -> None:
        async with (
            BinanceServer("sample:minute", linger=None) as server,
            aiohttp.ClientSession(headers={"X-MBX-APIKEY": KEY}) as http,
        ):
            api = await http.ws_connect(f"{server.ws_url}/ws-api/v3")
            params: dict[str, Any] = {
                "apiKey": KEY,
                "recvWindow": 10000,
                "timestamp": int(time.time() * 1000),
            }
            await api.send_json(
                {"id": "x", "method": "userDataStream.subscribe.signature", "params": params}
            )
            bad = await api.receive_json()
            assert bad["status"] == 400 and bad["error"]["code"] == -1022
            params["signature"] = ws_signature(SECRET, params)
            await api.send_json(
                {"id": "y", "method": "userDataStream.subscribe.signature", "params": params}
            )
            assert await api.receive_json() == {
                "id": "y",
                "status": 200,
                "result": {"subscriptionId": 0},
            }
            market = await http.ws_connect(f"{server.ws_url}/stream/ws/0")
            await market.send_json(
                {"method": "SUBSCRIBE", "params": ["acmeusdt@kline_1m"], "id": 1}
            )
            assert await market.receive_json() == {"result": None, "id": 1}
            body = signed({"symbol": "ACMEUSDT", "side": "BUY", "type": "MARKET", "quantity": "2"})
            async with http.post(f"{server.url}/api/v3/order", data=body) as r:
                assert r.status == 200
            new = await api.receive_json()
            assert new["subscriptionId"] == 0 and new["event"]["x"] == "NEW"
            await server.step(4)
            kline = await market.receive_json()
            assert kline["e"] == "kline" and kline["k"]["x"] is True and kline["s"] == "ACMEUSDT"
            trade = (await api.receive_json())["event"]
            assert (trade["x"], trade["X"], trade["l"], trade["t"]) == (
                "TRADE",
                "FILLED",
                "2.00000000",
                1,
            )
            assert (await api.receive_json())["event"]["e"] == "outboundAccountPosition"
            await api.close()
            await market.close()

    run(go())


def ccxt_client(server: BinanceServer) -> Any:
    ex = ccxtpro.binance(
        {
            "apiKey": KEY,
            "secret": SECRET,
            "enableRateLimit": False,
            "options": {
                "fetchCurrencies": False,
                "fetchMarkets": {"types": ["spot"]},
                "fetchMargins": False,
                "fetchOpenOrders": {"warnWithoutSymbol": False},
            },
        }
    )
    urls = server.ccxt_urls()
    api = ex.urls["api"]
    for key in ("public", "private", "v1", "sapi"):
        api[key] = urls[key]
    api["ws"]["spot"] = urls["ws_spot"]
    api["ws"]["ws-api"]["spot"] = urls["ws_api_spot"]
    return ex


def test_ccxt_conformance() -> None:
    async def go() -> None:
        async with BinanceServer("sample:minute", linger=None) as server:
            ex = ccxt_client(server)
            try:
                await ex.load_markets()
                assert server.requests == [("GET", "exchangeInfo")]
                assert ex.markets["ACME/USDT"]["precision"]["price"] == 0.01
                orders = asyncio.create_task(ex.watch_orders())
                trades = asyncio.create_task(ex.watch_my_trades())
                ohlcv = asyncio.create_task(ex.watch_ohlcv("ACME/USDT", "1m"))
                await server.wait_for_client(("ACMEUSDT",))
                await server.step(4)
                assert (await asyncio.wait_for(ohlcv, 5))[0][4] == 121.56
                rest = await ex.create_order(
                    "ACME/USDT", "limit", "buy", 1, 100.0, {"newClientOrderId": "c-1"}
                )
                assert (rest["clientOrderId"], rest["status"]) == ("c-1", "open")
                assert [o["clientOrderId"] for o in await asyncio.wait_for(orders, 5)] == ["c-1"]
                await ex.create_order(
                    "ACME/USDT", "market", "buy", 2, None, {"clientOrderId": "c-2"}
                )
                await server.step(4)
                (trade,) = await asyncio.wait_for(trades, 5)
                assert (trade["price"], trade["amount"], trade["fee"]["currency"]) == (
                    121.56,
                    2.0,
                    "USDT",
                )
                got = await ex.fetch_order("", "ACME/USDT", {"clientOrderId": "c-2"})
                assert got["status"] == "closed" and got["average"] == 121.56
                assert len(await ex.fetch_open_orders("ACME/USDT")) == 1
                canceled = await ex.cancel_order(rest["id"], "ACME/USDT")
                assert canceled["status"] == "canceled"
                assert canceled["info"]["origClientOrderId"] == "c-1"
                balance = await ex.fetch_balance()
                assert balance["ACME"]["total"] == 2.0
                assert len(await ex.fetch_my_trades("ACME/USDT")) == 1
                assert len(await ex.fetch_orders("ACME/USDT")) == 2
                assert len(await ex.fetch_ohlcv("ACME/USDT", "1m")) == 2
                assert (await ex.fetch_time()) > 0
                for call, cls in [
                    (
                        ex.create_order(
                            "ACME/USDT", "market", "buy", 2, None, {"clientOrderId": "c-2"}
                        ),
                        ccxtpro.InvalidOrder,
                    ),
                    (
                        ex.create_order("ACME/USDT", "market", "buy", 5000),
                        ccxtpro.InsufficientFunds,
                    ),
                    (
                        ex.fetch_order("", "ACME/USDT", {"clientOrderId": "zz"}),
                        ccxtpro.OrderNotFound,
                    ),
                    (ex.cancel_order("999", "ACME/USDT"), ccxtpro.OrderNotFound),
                ]:
                    with pytest.raises(cls):
                        await call
                server.faults.set("rate_limit", next=1)
                with pytest.raises(ccxtpro.DDoSProtection):
                    await ex.fetch_balance()
            finally:
                await ex.close()

    run(go())


def test_cli_run_server_prints_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    from tradeloop.testing.binance.cli import run_server

    lines: list[str] = []
    run_server(0, "sample:daily", 0.0, max_seconds=0.3, linger=0.1, echo=lines.append)
    assert lines and KEY in lines[0] and SECRET not in lines[0] and "ACMEUSDT" in lines[0]
    assert json.dumps(lines)  # plain text
