"""The broker's rate limiting from Binance's headers, on a fake clock (no server, no sleep)."""

from __future__ import annotations

import asyncio
import random

import pytest

from tradeloop.errors import BrokerConnectionError
from tradeloop.execution.asynchronous.brokers.binance.broker import BinanceBroker
from tradeloop.execution.asynchronous.brokers.binance.config import BinanceConfig
from tradeloop.execution.asynchronous.components.rate_limiter import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def broker(clock: FakeClock, limit: int = 100) -> BinanceBroker:
    config = BinanceConfig(
        base_url="http://127.0.0.1:9",
        api_key="key-abc",
        secret="sec-xyz",
        weight_limit=limit,
        ban_wait=30.0,
    )
    limiter = RateLimiter(
        limit,
        60.0,
        clock=clock,
        wall=lambda: 1_700_000_000.0 + (clock.now - 1000.0),
        sleep=clock.sleep,
        rng=random.Random(1),
        jitter_429=0.0,
    )
    return BinanceBroker(
        config, symbols=["ACMEUSDT"], limiter=limiter, clock=clock, sleep=clock.sleep
    )


def test_used_weight_header_corrects_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    b = broker(clock)
    monkeypatch.setattr("time.time", lambda: 1_700_000_000.0 + (clock.now - 1000.0))
    b.on_response(200, {"X-MBX-USED-WEIGHT-1M": "100"})  # the minute's budget is spent

    async def go() -> None:
        await b.limiter.acquire()

    asyncio.run(go())
    # 1_700_000_000 is 20 s into its minute: the next request waits for the minute's end
    assert clock.slept and sum(clock.slept) == pytest.approx(40.0, abs=1.0)


def test_429_waits_retry_after() -> None:
    clock = FakeClock()
    b = broker(clock)

    async def go() -> float:
        wait = await b.on_throttled(429, {"Retry-After": "7", "X-MBX-USED-WEIGHT-1M": "3"})
        await b.limiter.acquire()
        return wait

    assert asyncio.run(go()) == pytest.approx(7.0)
    assert sum(clock.slept) == pytest.approx(7.0)
    assert b.limiter.throttled == 1 and b.banned == 0


def test_418_bans_every_call() -> None:
    clock = FakeClock()
    b = broker(clock)

    async def go(retry: str) -> None:
        await b.on_throttled(418, {"Retry-After": retry})

    asyncio.run(go("20"))
    assert b.banned == 1
    asyncio.run(b._wait_ban("x"))  # 20 s <= ban_wait: waited out
    assert clock.now >= 1020.0
    asyncio.run(go("3600"))
    with pytest.raises(BrokerConnectionError, match="banned") as info:
        asyncio.run(b._wait_ban("submit run-1"))
    assert "key-abc" not in str(info.value) and "sec-xyz" not in str(info.value)
