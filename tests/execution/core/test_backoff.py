"""Backoff schedules (deterministic through an injected rng) and the stream-failure verdicts."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from tradeloop.errors import ConfigError
from tradeloop.execution.core.backoff import CONNECTION_LIMIT_WAIT, Backoff, after_close


class EdgeRandom(random.Random):
    """An rng whose ``uniform`` always returns one end of the range."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.calls.append((a, b))
        return b if self.high else a


def test_without_jitter_the_delays_double_up_to_the_cap() -> None:
    b = Backoff(base=0.5, factor=2.0, cap=30.0, jitter=0.0)
    assert [b.next_delay() for _ in range(9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert b.attempts == 9


def test_equal_jitter_by_default_stays_between_half_and_full_delay() -> None:
    high, low = Backoff(rng=EdgeRandom(high=True)), Backoff(rng=EdgeRandom(high=False))
    nominal = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert [high.next_delay() for _ in nominal] == nominal
    assert [low.next_delay() for _ in nominal] == [d / 2 for d in nominal]


def test_full_jitter_can_go_down_to_zero() -> None:
    rng = EdgeRandom(high=False)
    b = Backoff(base=1.0, factor=3.0, cap=10.0, jitter=1.0, rng=rng)
    assert [b.next_delay() for _ in range(4)] == [0.0, 0.0, 0.0, 0.0]
    assert rng.calls == [(0.0, 1.0), (0.0, 3.0), (0.0, 9.0), (0.0, 10.0)]


def test_seeded_rngs_give_the_same_schedule_and_delays_stay_in_bounds() -> None:
    a = Backoff(rng=random.Random(7))
    b = Backoff(rng=random.Random(7))
    c = Backoff(rng=random.Random(8))
    sa = [a.next_delay() for _ in range(20)]
    assert sa == [b.next_delay() for _ in range(20)]
    assert sa != [c.next_delay() for _ in range(20)]
    for n, d in enumerate(sa):
        nominal = min(30.0, 0.5 * 2.0**n)
        assert nominal / 2 <= d <= nominal


def test_never_above_cap_and_no_overflow_after_many_attempts() -> None:
    b = Backoff(base=1.0, factor=10.0, cap=60.0, jitter=1.0, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(5000)]
    assert max(delays) <= 60.0
    assert all(math.isfinite(d) and d >= 0 for d in delays)


def test_reset_starts_over() -> None:
    b = Backoff(jitter=0.0)
    for _ in range(5):
        b.next_delay()
    b.reset()
    assert b.attempts == 0
    assert b.next_delay() == 0.5
    assert b.next_delay() == 1.0


def test_factor_one_is_a_constant_delay() -> None:
    b = Backoff(base=2.0, factor=1.0, cap=5.0, jitter=0.0)
    assert [b.next_delay() for _ in range(3)] == [2.0, 2.0, 2.0]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"base": 0.0}, "backoff.base"),
        ({"base": -1.0}, "backoff.base"),
        ({"base": math.nan}, "backoff.base"),
        ({"base": True}, "backoff.base"),
        ({"factor": 0.5}, "backoff.factor"),
        ({"factor": math.inf}, "backoff.factor"),
        ({"cap": 0.1}, "backoff.cap"),  # below base=0.5
        ({"cap": math.inf}, "backoff.cap"),
        ({"jitter": -0.1}, "backoff.jitter"),
        ({"jitter": 1.5}, "backoff.jitter"),
        ({"jitter": "half"}, "backoff.jitter"),
        ({"rng": 42}, "backoff.rng"),
    ],
)
def test_bad_parameters_name_field_and_value(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Backoff(**kwargs)
    assert info.value.field == field
    (value,) = kwargs.values()
    assert info.value.value is value
    assert field in str(info.value)


# -- after_close ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        (401, "fatal"),
        (402, "fatal"),
        (409, "fatal"),
        (406, "wait_long"),
        (429, "retry"),
        (500, "retry"),
        (1000, "retry"),  # normal WebSocket close
        (1006, "retry"),  # abnormal close
        (None, "retry"),
        ("401", "fatal"),
        (" 406 ", "wait_long"),
        ("429", "retry"),
        ("auth failed", "fatal"),
        ("not authenticated", "fatal"),
        ("Connection limit exceeded", "wait_long"),
        ("insufficient subscription", "fatal"),
        ("something else", "retry"),
        ("", "retry"),
        ("²", "retry"),  # a digit to str.isdigit, not to int()
    ],
)
def test_after_close(code: int | str | None, verdict: str) -> None:
    assert after_close(code) == verdict


@pytest.mark.parametrize("code", [406.0, True, [406], b"406"])
def test_after_close_rejects_other_types(code: Any) -> None:
    with pytest.raises(ConfigError) as info:
        after_close(code)
    assert info.value.field == "code"
    assert info.value.value is code


def test_connection_limit_wait_outlasts_the_lingering_socket() -> None:
    assert CONNECTION_LIMIT_WAIT == 90.0
    # the longest ordinary backoff is far shorter: a 406 needs its own, longer wait
    assert Backoff().cap < CONNECTION_LIMIT_WAIT
