"""RateLimiter, the async shell of the rolling window, on a fake clock whose sleep advances it."""

from __future__ import annotations

import asyncio
import heapq
import random
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from tradeloop.errors import ConfigError
from tradeloop.execution.asynchronous.components.rate_limiter import RateLimiter

T = TypeVar("T")

EPOCH = 1_700_000_000.0  # the wall clock reads EPOCH + the monotonic clock


class FakeClock:
    """A monotonic clock, a wall clock ahead of it by EPOCH, and a sleep that advances both."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return EPOCH + self.now

    async def sleep(self, seconds: float) -> None:
        """Wake at ``now + seconds`` (concurrent sleepers share one timeline)."""
        self.sleeps.append(seconds)
        wake = self.now + seconds
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would
        self.now = max(self.now, wake)


class MaxRandom(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout=5.0)

    return asyncio.run(bounded())


def make(clock: FakeClock, limit: int = 3, window: float = 10.0, **kw: Any) -> RateLimiter:
    return RateLimiter(
        limit, window, clock=clock.monotonic, wall=clock.wall, sleep=clock.sleep, **kw
    )


def test_under_the_limit_nothing_waits() -> None:
    clock = FakeClock()
    limiter = make(clock)

    async def main() -> None:
        for _ in range(3):
            await limiter.acquire()

    run(main())
    assert clock.sleeps == []
    assert limiter.requests == 3
    assert limiter.waited_seconds == 0.0
    assert limiter.window.used(clock.now) == 3


def test_a_full_window_waits_for_the_oldest_slot() -> None:
    clock = FakeClock(start=0.0)
    limiter = make(clock, limit=2, window=10.0)

    async def main() -> None:
        await limiter.acquire()
        clock.now = 4.0
        await limiter.acquire()
        await limiter.acquire()  # window full until t=10
        assert clock.now == pytest.approx(10.0)
        await limiter.acquire()  # next slot frees at t=14
        assert clock.now == pytest.approx(14.0)

    run(main())
    assert clock.sleeps == pytest.approx([6.0, 4.0])
    assert limiter.waited_seconds == pytest.approx(10.0)
    assert limiter.requests == 4


def test_concurrent_callers_never_share_the_last_slot() -> None:
    clock = FakeClock(start=0.0)
    limiter = make(clock, limit=2, window=10.0)
    sent: list[float] = []
    order: list[int] = []

    async def one(i: int) -> None:
        await limiter.acquire()
        sent.append(clock.now)
        order.append(i)

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(7)))

    run(main())
    assert sent == pytest.approx([0.0, 0.0, 10.0, 10.0, 20.0, 20.0, 30.0])
    assert order == list(range(7))  # first come, first served
    for i in range(len(sent) - 2):
        assert sent[i + 2] - sent[i] >= 10.0 - 1e-9
    assert limiter.requests == 7


class TimerClock:
    """Sleeps end only when :meth:`drive` fires their timer; timers due at the same instant
    fire newest first (asyncio promises no order among equal deadlines)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self.seq = 0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.seq += 1
        heapq.heappush(self.timers, (self.now + seconds, -self.seq, fut))
        await fut

    async def drive(self, until: asyncio.Future[Any]) -> None:
        while not until.done():
            for _ in range(20):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
            if self.timers:
                wake, _, fut = heapq.heappop(self.timers)
                self.now = max(self.now, wake)
                fut.set_result(None)


def test_waiters_are_served_in_arrival_order_whatever_order_timers_fire_in() -> None:
    clock = TimerClock()
    limiter = RateLimiter(1, 10.0, clock=clock.monotonic, wall=clock.monotonic, sleep=clock.sleep)
    order: list[int] = []
    sent: list[float] = []

    async def one(i: int) -> None:
        await limiter.acquire()
        order.append(i)
        sent.append(clock.now)

    async def main() -> None:
        callers = asyncio.gather(*(one(i) for i in range(5)))
        await clock.drive(callers)
        await callers

    run(main())
    assert order == [0, 1, 2, 3, 4]  # one sleeper at a time, queued behind the lock
    assert sent == pytest.approx([0.0, 10.0, 20.0, 30.0, 40.0])


def test_update_corrects_from_the_servers_headers() -> None:
    clock = FakeClock(start=50.0)
    limiter = make(clock, limit=200, window=60.0)
    headers = {
        "X-Ratelimit-Limit": "200",
        "X-Ratelimit-Remaining": "0",  # other clients used the budget
        "X-Ratelimit-Reset": str(EPOCH + 57.0),  # epoch seconds: 7 s from now
    }

    async def main() -> None:
        await limiter.acquire()
        limiter.update(headers)
        await limiter.acquire()

    run(main())
    assert clock.sleeps == pytest.approx([7.0])
    assert clock.now == pytest.approx(57.0)
    assert limiter.requests == 2


def test_update_with_a_lower_limit_and_with_garbage() -> None:
    clock = FakeClock()
    limiter = make(clock, limit=200, window=60.0)
    limiter.update({"X-Ratelimit-Limit": "nonsense", "X-Ratelimit-Remaining": ""})
    assert limiter.window.limit == 200
    assert limiter.window.server_remaining is None
    limiter.update({"x-ratelimit-limit": "50"})
    assert limiter.window.limit == 50


def test_a_reset_far_in_the_future_is_capped_at_one_window() -> None:
    clock = FakeClock()
    limiter = make(clock, limit=10, window=60.0)
    # a reset in milliseconds by mistake would otherwise block for decades
    limiter.update({"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": str(EPOCH * 1000)})
    assert limiter.window.delay(clock.now) == pytest.approx(60.0)


def test_on_429_blocks_until_reset_plus_jitter_without_sleeping() -> None:
    clock = FakeClock(start=10.0)
    limiter = make(clock, limit=200, window=60.0, rng=MaxRandom(), jitter_429=0.5)
    headers = {"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": str(EPOCH + 13.0)}

    async def main() -> float:
        wait = await limiter.on_429(headers)
        assert clock.now == 10.0  # on_429 itself does not sleep
        await limiter.acquire()
        return wait

    wait = run(main())
    assert wait == pytest.approx(3.5)
    assert clock.sleeps == pytest.approx([3.5])
    assert limiter.throttled == 1
    assert limiter.requests == 1


def test_on_429_jitter_is_drawn_from_the_injected_rng() -> None:
    waits = []
    for _ in range(2):
        clock = FakeClock()
        limiter = make(clock, rng=random.Random(3))
        waits.append(run(limiter.on_429({"X-Ratelimit-Reset": str(EPOCH + clock.now + 2.0)})))
    assert waits[0] == waits[1]
    assert 2.0 <= waits[0] <= 3.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 1.0),  # no header: the short default
        ({"X-Ratelimit-Reset": "garbage"}, 1.0),
        ({"X-Ratelimit-Reset": str(EPOCH)}, 1.0),  # a reset already past
        ({"Retry-After": "4"}, 4.0),
        ({"retry-after": "soon"}, 1.0),
    ],
)
def test_on_429_without_a_usable_reset(headers: dict[str, str], expected: float) -> None:
    clock = FakeClock()
    limiter = make(clock, jitter_429=0.0)
    assert run(limiter.on_429(headers)) == pytest.approx(expected)
    assert limiter.window.delay(clock.now) == pytest.approx(expected)


def test_a_cancelled_acquire_counts_nothing_and_frees_the_lock() -> None:
    clock = FakeClock(start=0.0)
    stuck = asyncio.Event()

    async def stuck_sleep(seconds: float) -> None:
        await stuck.wait()

    limiter = RateLimiter(1, 10.0, clock=clock.monotonic, wall=clock.wall, sleep=stuck_sleep)

    async def main() -> None:
        await limiter.acquire()
        waiter = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert limiter.requests == 1
        clock.now = 10.0  # the window has room again: nothing left holds the lock
        await limiter.acquire()

    run(main())
    assert limiter.requests == 2


def test_limiter_works_across_event_loops() -> None:
    clock = FakeClock(start=0.0)
    limiter = make(clock, limit=1, window=5.0)
    run(limiter.acquire())
    run(limiter.acquire())
    assert clock.now == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"window": -1.0}, "window"),
        ({"clock": 5}, "clock"),
        ({"wall": None}, "wall"),
        ({"sleep": "zzz"}, "sleep"),
        ({"rng": 1}, "rng"),
        ({"default_429_wait": -1.0}, "default_429_wait"),
        ({"jitter_429": float("nan")}, "jitter_429"),
    ],
)
def test_bad_parameters_name_field_and_value(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        RateLimiter(**kwargs)
    assert info.value.field == field
    assert field in str(info.value)


def test_repr_shows_stats() -> None:
    limiter = RateLimiter()
    assert repr(limiter) == "RateLimiter(limit=200, window=60.0, requests=0, throttled=0)"
