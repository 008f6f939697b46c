"""CacheManager: TTLs on a fake clock, single-flight loads, failures, invalidation."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from tradeloop.errors import ConfigError
from tradeloop.execution.asynchronous.components.cache import DEFAULT_TTLS, CacheManager

T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts its calls; returns ``value-N``; optionally waits for ``gate`` or raises."""

    def __init__(
        self, gate: asyncio.Event | None = None, fail: bool = False, prefix: str = "value"
    ) -> None:
        self.prefix = prefix
        self.calls = 0
        self.gate = gate
        self.fail = fail

    async def __call__(self) -> str:
        self.calls += 1
        n = self.calls
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError(f"load {n} failed")
        return f"{self.prefix}-{n}"


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout=5.0)

    return asyncio.run(bounded())


def test_default_ttls() -> None:
    cache = CacheManager()
    assert dict(cache.ttls) == {"account": 5.0, "clock": 30.0, "assets": 3600.0, "positions": 5.0}
    assert dict(DEFAULT_TTLS) == dict(cache.ttls)


@pytest.mark.parametrize(("key", "ttl"), [("account", 5.0), ("clock", 30.0), ("assets", 3600.0)])
def test_value_is_served_while_fresh_and_reloaded_after(key: str, ttl: float) -> None:
    clock = Clock()
    cache = CacheManager(clock=clock)
    load = Loader()

    async def main() -> list[str]:
        got = [await cache.get(key, load)]
        clock.now += ttl - 0.001
        got.append(await cache.get(key, load))
        clock.now += 0.001
        got.append(await cache.get(key, load))
        return got

    assert run(main()) == ["value-1", "value-1", "value-2"]
    assert load.calls == 2
    assert (cache.loads, cache.hits) == (2, 1)


def test_freshness_counts_from_the_start_of_the_load() -> None:
    clock = Clock()
    cache = CacheManager(clock=clock)

    async def slow() -> int:
        clock.now += 3.0  # the request took 3 s
        return 1

    async def main() -> None:
        await cache.get("account", slow)
        assert cache.peek("account") == 1
        clock.now += 2.0  # 5 s after the load started
        assert cache.peek("account") is None

    run(main())


def test_concurrent_gets_share_one_load() -> None:
    cache = CacheManager(clock=Clock())

    async def main() -> list[str]:
        gate = asyncio.Event()
        load = Loader(gate)
        tasks = [asyncio.create_task(cache.get("positions", load)) for _ in range(5)]
        await asyncio.sleep(0)
        gate.set()
        got = await asyncio.gather(*tasks)
        assert load.calls == 1
        return got

    assert run(main()) == ["value-1"] * 5
    assert (cache.loads, cache.hits) == (1, 4)


def test_a_failed_load_reaches_every_waiter_and_caches_nothing() -> None:
    cache = CacheManager(clock=Clock())

    async def main() -> None:
        gate = asyncio.Event()
        bad = Loader(gate, fail=True)
        tasks = [asyncio.create_task(cache.get("account", bad)) for _ in range(3)]
        await asyncio.sleep(0)
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert bad.calls == 1
        assert all(isinstance(r, RuntimeError) and str(r) == "load 1 failed" for r in results)
        assert cache.peek("account") is None
        good = Loader()
        assert await cache.get("account", good) == "value-1"  # tries again
        assert good.calls == 1

    run(main())


def test_a_cancelled_waiter_does_not_cancel_the_load_for_others() -> None:
    cache = CacheManager(clock=Clock())

    async def main() -> None:
        gate = asyncio.Event()
        load = Loader(gate)
        first = asyncio.create_task(cache.get("clock", load))
        second = asyncio.create_task(cache.get("clock", load))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        gate.set()
        assert await second == "value-1"
        assert first.cancelled()
        assert cache.peek("clock") == "value-1"
        assert load.calls == 1

    run(main())


def test_invalidate_and_on_fill() -> None:
    cache = CacheManager(clock=Clock())
    load = Loader()

    async def main() -> None:
        for key in ("account", "positions", "clock", "assets"):
            await cache.get(key, load)
        cache.on_fill()
        assert cache.peek("account") is None
        assert cache.peek("positions") is None
        assert cache.peek("clock") == "value-3"
        assert cache.peek("assets") == "value-4"
        cache.invalidate("clock", "assets")
        assert cache.peek("clock") is None
        assert cache.peek("assets") is None
        assert await cache.get("account", load) == "value-5"

    run(main())


def test_invalidated_during_a_load_its_result_is_not_cached() -> None:
    cache = CacheManager(clock=Clock())

    async def main() -> None:
        gate = asyncio.Event()
        old = Loader(gate, prefix="old")
        before = asyncio.create_task(cache.get("account", old))
        await asyncio.sleep(0)
        cache.on_fill()  # a fill lands while the account is being fetched
        new = Loader(prefix="new")
        assert await cache.get("account", new) == "new-1"  # a fresh load, not the stale one
        gate.set()
        assert await before == "old-1"  # the waiter still gets what it asked for
        assert old.calls == 1
        assert cache.peek("account") == "new-1"  # the stale result did not overwrite it
        assert cache.loads == 2

    run(main())


def test_family_keys_use_the_family_ttl_and_invalidate_with_it() -> None:
    clock = Clock()
    cache = CacheManager(clock=clock)
    load = Loader()

    async def main() -> None:
        assert await cache.get("assets:AAPL", load) == "value-1"
        assert await cache.get("positions:AAPL", load) == "value-2"
        assert cache.ttl("assets:AAPL") == 3600.0
        clock.now += 100.0
        assert cache.peek("assets:AAPL") == "value-1"
        assert cache.peek("positions:AAPL") is None  # 5 s TTL
        await cache.get("positions:AAPL", load)
        cache.on_fill()
        assert cache.peek("positions:AAPL") is None
        cache.invalidate("assets")
        assert cache.peek("assets:AAPL") is None

    run(main())


def test_ttl_overrides_extra_keys_zero_and_infinity() -> None:
    clock = Clock()
    cache = CacheManager({"account": 0.0, "calendar": 60.0, "assets": math.inf}, clock=clock)
    load = Loader()

    async def main() -> None:
        assert cache.ttl("positions") == 5.0  # defaults survive
        await cache.get("account", load)
        await cache.get("account", load)
        assert load.calls == 2  # ttl 0: never cached
        await cache.get("calendar", load)
        await cache.get("assets", load)
        clock.now += 1e9
        assert cache.peek("assets") == "value-4"
        assert cache.peek("calendar") is None

    run(main())


def test_peek_default_and_clear() -> None:
    cache = CacheManager(clock=Clock())
    assert cache.peek("account", default="nothing") == "nothing"
    run(cache.get("account", Loader()))
    assert cache.peek("account") == "value-1"
    cache.clear()
    assert cache.peek("account") is None


@pytest.mark.parametrize("key", ["orders", "accounts", "", "x:account"])
def test_unknown_key_is_a_config_error_naming_it(key: str) -> None:
    cache = CacheManager()
    for call in (
        lambda: cache.ttl(key),
        lambda: cache.peek(key),
        lambda: cache.invalidate(key),
        lambda: run(cache.get(key, Loader())),
    ):
        with pytest.raises(ConfigError) as info:
            call()
        assert info.value.field == "key"
        assert info.value.value == key
        assert repr(key) in str(info.value)


@pytest.mark.parametrize(
    ("ttls", "field", "value"),
    [
        ({"account": -1.0}, "ttls.account", -1.0),
        ({"clock": True}, "ttls.clock", True),
        ({"clock": "30"}, "ttls.clock", "30"),
        ({"": 3.0}, "ttls", ""),
    ],
)
def test_bad_ttls(ttls: dict[str, Any], field: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        CacheManager(ttls)
    assert info.value.field == field
    assert info.value.value == value


def test_nan_ttl_and_bad_arguments() -> None:
    with pytest.raises(ConfigError, match=r"ttls\.assets"):
        CacheManager({"assets": math.nan})
    with pytest.raises(ConfigError, match="ttls"):
        CacheManager([("account", 1.0)])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="clock"):
        CacheManager(clock=3.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="loader"):
        run(CacheManager().get("account", "not callable"))  # type: ignore[arg-type]
