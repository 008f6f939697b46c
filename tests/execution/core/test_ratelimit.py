"""RollingWindow (the pure rolling-window budget) and parse_ratelimit_headers, by hand-set clock."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloop.errors import ConfigError
from tradeloop.execution.core.ratelimit import (
    TIME_TOLERANCE,
    RollingWindow,
    parse_ratelimit_headers,
)

# -- construction ----------------------------------------------------------------------------


def test_defaults_are_alpacas_200_a_minute() -> None:
    w = RollingWindow()
    assert (w.limit, w.configured_limit, w.window) == (200, 200, 60.0)
    assert w.recorded == 0
    assert w.delay(0.0) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "field", "value"),
    [
        ({"limit": 0}, "limit", 0),
        ({"limit": -3}, "limit", -3),
        ({"limit": 2.5}, "limit", 2.5),
        ({"limit": True}, "limit", True),
        ({"limit": "200"}, "limit", "200"),
        ({"window": 0.0}, "window", 0.0),
        ({"window": -1.0}, "window", -1.0),
        ({"window": math.inf}, "window", math.inf),
        ({"window": True}, "window", True),
    ],
)
def test_bad_parameters_name_field_and_value(
    kwargs: dict[str, Any], field: str, value: Any
) -> None:
    with pytest.raises(ConfigError) as info:
        RollingWindow(**kwargs)
    assert info.value.field == field
    assert info.value.value == value
    assert field in str(info.value)


def test_nan_window_is_rejected() -> None:
    with pytest.raises(ConfigError, match="window"):
        RollingWindow(window=math.nan)


@pytest.mark.parametrize("method", ["delay", "record", "used", "block_until"])
def test_non_finite_times_are_rejected(method: str) -> None:
    w = RollingWindow()
    with pytest.raises(ConfigError) as info:
        getattr(w, method)(math.nan)
    assert info.value.field in ("now", "t")
    with pytest.raises(ConfigError):
        getattr(w, method)(math.inf)


# -- our own count ---------------------------------------------------------------------------


def test_full_window_waits_until_the_oldest_request_leaves() -> None:
    w = RollingWindow(limit=3, window=10.0)
    for t in (0.0, 1.0, 2.0):
        assert w.delay(t) == 0.0
        w.record(t)
    assert w.used(2.0) == 3
    assert w.delay(2.0) == pytest.approx(8.0)
    assert w.delay(9.5) == pytest.approx(0.5)
    assert w.delay(10.0) == 0.0  # the request of t=0 no longer counts
    w.record(10.0)
    assert w.delay(10.0) == pytest.approx(1.0)  # next free slot: the one of t=1
    assert w.used(10.5) == 3
    assert w.used(12.0) == 1
    assert w.recorded == 4


@pytest.mark.parametrize(
    ("sent", "now"),
    [(3.19295660295571, 25.3107277904458), (0.2248122594356028, 11.906795557772828)],
)
def test_waiting_exactly_the_delay_is_enough_despite_rounding(sent: float, now: float) -> None:
    # for these values now + (sent + 60 - now) < sent + 60 in floating point
    assert now + ((sent + 60.0) - now) < sent + 60.0
    w = RollingWindow(limit=1, window=60.0)
    w.record(sent)
    d = w.delay(now)
    assert d == pytest.approx(sent + 60.0 - now)
    assert w.delay(now + d) == 0.0


def test_a_clock_stepping_back_keeps_the_window_sorted() -> None:
    w = RollingWindow(limit=2, window=10.0)
    w.record(5.0)
    w.record(3.0)  # out of order
    assert w.delay(5.0) == pytest.approx(8.0)  # the slot of t=3 frees first
    assert w.used(13.0) == 1


def test_memory_is_bounded_by_the_limit() -> None:
    w = RollingWindow(limit=5, window=1e6)
    for t in range(1000):
        w.record(float(t))
    assert w.used(1000.0) == 5
    assert w.recorded == 1000


# -- server corrections ----------------------------------------------------------------------


def test_remaining_zero_blocks_until_reset_whatever_our_count_says() -> None:
    w = RollingWindow(limit=200, window=60.0)
    w.record(0.0)  # we used 1 of 200, another client used the rest
    w.correct(1.0, limit=200, remaining=0, reset_at=31.0)
    assert w.server_remaining == 0
    assert w.delay(1.0) == pytest.approx(30.0)
    assert w.delay(30.0) == pytest.approx(1.0)
    assert w.delay(31.0) == 0.0
    assert w.server_remaining is None  # the server's window is over
    assert w.server_reset_at is None


def test_server_remaining_is_counted_down_by_our_requests() -> None:
    w = RollingWindow(limit=200, window=60.0)
    w.correct(0.0, remaining=2, reset_at=20.0)
    w.record(0.0)
    assert w.server_remaining == 1
    assert w.delay(0.0) == 0.0
    w.record(0.5)
    assert w.server_remaining == 0
    assert w.delay(0.5) == pytest.approx(19.5)


def test_server_limit_below_ours_wins_and_above_ours_does_not() -> None:
    w = RollingWindow(limit=5, window=10.0)
    w.correct(0.0, limit=2)
    assert w.limit == 2
    assert w.server_limit == 2
    w.record(0.0)
    w.record(0.0)
    assert w.delay(0.0) == pytest.approx(10.0)
    w.correct(0.0, limit=1000)
    assert w.limit == 5  # never looser than configured
    assert w.delay(0.0) == 0.0


def test_a_stale_response_cannot_loosen_the_same_server_window() -> None:
    w = RollingWindow()
    w.correct(0.0, remaining=1, reset_at=60.0)
    w.correct(0.1, remaining=150, reset_at=60.4)  # older response, same window
    assert w.server_remaining == 1
    w.correct(0.2, remaining=0, reset_at=60.0)
    assert w.server_remaining == 0
    w.correct(0.3, remaining=199, reset_at=120.0)  # a new server window replaces it
    assert w.server_remaining == 199
    assert w.server_reset_at == 120.0


def test_remaining_without_reset_holds_for_one_window() -> None:
    w = RollingWindow(limit=10, window=60.0)
    w.correct(5.0, remaining=0)
    assert w.delay(5.0) == pytest.approx(60.0)


def test_a_reset_already_past_teaches_nothing() -> None:
    w = RollingWindow()
    w.correct(100.0, remaining=0, reset_at=99.0)
    assert w.server_remaining is None
    assert w.delay(100.0) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1.5}, "limit"),
        ({"remaining": -1}, "remaining"),
        ({"remaining": True}, "remaining"),
        ({"reset_at": math.nan}, "reset_at"),
    ],
)
def test_bad_corrections_are_rejected(kwargs: dict[str, Any], field: str) -> None:
    w = RollingWindow()
    with pytest.raises(ConfigError) as info:
        w.correct(0.0, **kwargs)
    assert info.value.field == field


# -- blocks ----------------------------------------------------------------------------------


def test_block_until_stops_everything_and_never_shortens() -> None:
    w = RollingWindow()
    w.block_until(12.0)
    w.block_until(5.0)  # an earlier block does not shorten the later one
    assert w.blocked_until == 12.0
    assert w.delay(2.0) == pytest.approx(10.0)
    assert w.delay(12.0) == 0.0


# -- headers ---------------------------------------------------------------------------------


def test_parse_headers() -> None:
    headers = {
        "X-Ratelimit-Limit": "200",
        "X-Ratelimit-Remaining": "17",
        "X-Ratelimit-Reset": "1700000060",
    }
    assert parse_ratelimit_headers(headers) == (200, 17, 1700000060.0)


def test_parse_headers_ignores_case() -> None:
    headers = {"x-ratelimit-limit": "100", "X-RATELIMIT-REMAINING": "0", "x-RateLimit-reset": "5.5"}
    assert parse_ratelimit_headers(headers) == (100, 0, 5.5)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, (None, None, None)),
        ({"Content-Type": "application/json"}, (None, None, None)),
        ({"X-Ratelimit-Limit": "abc"}, (None, None, None)),
        ({"X-Ratelimit-Limit": ""}, (None, None, None)),
        ({"X-Ratelimit-Limit": "0"}, (None, None, None)),
        ({"X-Ratelimit-Limit": "-5"}, (None, None, None)),
        ({"X-Ratelimit-Limit": "nan"}, (None, None, None)),
        ({"X-Ratelimit-Limit": "inf"}, (None, None, None)),
        ({"X-Ratelimit-Remaining": "2.5"}, (None, None, None)),
        ({"X-Ratelimit-Remaining": "-1"}, (None, None, None)),
        ({"X-Ratelimit-Remaining": "3.0"}, (None, 3, None)),
        ({"X-Ratelimit-Reset": "0"}, (None, None, None)),
        ({"X-Ratelimit-Reset": "soon"}, (None, None, None)),
        ({"X-Ratelimit-Limit": " 200 , 200"}, (200, None, None)),
        ({"X-Ratelimit-Limit": "200", "X-Ratelimit-Remaining": "x"}, (200, None, None)),
    ],
)
def test_parse_headers_tolerates_garbage(
    headers: dict[str, str], expected: tuple[int | None, int | None, float | None]
) -> None:
    assert parse_ratelimit_headers(headers) == expected


# -- properties ------------------------------------------------------------------------------


def drive(w: RollingWindow, gaps: list[float]) -> list[float]:
    """Send one request after each gap, waiting as ``delay`` says; check delay is tight."""
    now = 0.0
    sent: list[float] = []
    for gap in gaps:
        now += gap
        d = w.delay(now)
        assert d >= 0.0
        if d > 1e-6:
            assert w.delay(now + d - 1e-6) > 0.0  # waiting less would not do
        now += d
        assert w.delay(now) == 0.0  # waiting exactly d does
        w.record(now)
        sent.append(now)
    return sent


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(1, 6),
    window=st.floats(0.01, 100.0),
    gaps=st.lists(st.floats(0.0, 50.0), min_size=1, max_size=60),
)
def test_no_window_ever_holds_more_than_limit(limit: int, window: float, gaps: list[float]) -> None:
    w = RollingWindow(limit=limit, window=window)
    sent = drive(w, gaps)
    for i in range(len(sent) - limit):
        # requests i and i+limit are limit+1 requests: they must be a full window apart
        assert sent[i + limit] - sent[i] >= window - 2 * TIME_TOLERANCE


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 5),
    remaining=st.integers(0, 5),
    reset_in=st.floats(0.5, 30.0),
    block=st.floats(0.0, 30.0),
    gaps=st.lists(st.floats(0.0, 5.0), min_size=1, max_size=40),
)
def test_server_budget_and_blocks_are_respected(
    limit: int, remaining: int, reset_in: float, block: float, gaps: list[float]
) -> None:
    w = RollingWindow(limit=limit, window=10.0)
    w.correct(0.0, remaining=remaining, reset_at=reset_in)
    w.block_until(block)
    sent = drive(w, gaps)
    assert all(t >= block - TIME_TOLERANCE for t in sent)
    assert sum(1 for t in sent if t < reset_in - TIME_TOLERANCE) <= remaining
    for i in range(len(sent) - limit):
        assert sent[i + limit] - sent[i] >= 10.0 - 2 * TIME_TOLERANCE


def test_a_short_429_window_does_not_merge_into_a_longer_one() -> None:
    """A 429 burst says "nothing for one second" while the server's own window runs 40 s
    more: the limiter must wait one second, not 40 (found by a chaos run: the engine stalled)."""
    w = RollingWindow(limit=1200, window=60.0)
    w.correct(100.0, limit=1200, remaining=1000, reset_at=140.0)
    w.correct(100.0, limit=1200, remaining=0, reset_at=101.0)  # the burst
    assert 0.9 <= w.delay(100.0) <= 1.0 + 1e-6
    assert w.delay(101.0) == 0.0
    w.correct(101.5, limit=1200, remaining=999, reset_at=140.0)  # back to the real window
    assert w.delay(101.5) == 0.0
    # within one window (resets a second apart) the lower remaining still wins
    w.correct(102.0, limit=1200, remaining=0, reset_at=140.5)
    w.correct(102.0, limit=1200, remaining=5, reset_at=140.0)
    assert w.delay(102.0) > 30.0
