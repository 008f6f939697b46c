"""Grids: values, ranges, distributions, constraints, random search, checks against a strategy."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloop.errors import ConfigError
from tradeloop.strategies import SmaCross
from tradeloop.sweep.grid import (
    Distribution,
    compile_constraint,
    expand_grid,
    grid_size,
    normalize_grid,
    validate_params,
)


def test_values_ranges_and_scalars() -> None:
    g = normalize_grid(
        {
            "fast": range(5, 30, 5),
            "slow": {"start": 20, "stop": 50, "step": 10},
            "alloc": {"start": 0.1, "stop": 0.5, "step": 0.1},
            "flag": True,
            "names": ["a", "b"],
        }
    )
    assert g["fast"] == [5, 10, 15, 20, 25]
    assert g["slow"] == [20, 30, 40]
    assert g["alloc"] == [0.1, 0.2, 0.3, 0.4]
    assert g["flag"] == [True]
    assert g["names"] == ["a", "b"]
    assert grid_size(g) == 5 * 3 * 4 * 1 * 2


@pytest.mark.parametrize(
    ("grid", "field", "reason"),
    [
        ({"fast": []}, "grid.fast", "no values"),
        ({"fast": [5, 5]}, "grid.fast", "duplicate"),
        ({"fast": {"start": 5}}, "grid.fast", "start and stop"),
        ({"fast": {"start": 5, "stop": 10, "step": 0}}, "grid.fast.step", "> 0"),
        ({"fast": {"start": 5, "stop": 10, "stpe": 1}}, "grid.fast", "unknown key"),
        ({"fast": {"low": 5, "high": 1}}, "grid.fast.high", ">= low"),
        ({"fast": {"low": 0, "high": 1, "log": True}}, "grid.fast.low", "> 0"),
        ({"fast": [math.nan]}, "grid.fast", "finite"),
        ({}, "grid", "at least one"),
    ],
)
def test_bad_grids_name_the_field(grid: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        normalize_grid(grid)
    assert err.value.field == field
    assert reason in err.value.reason


def test_validate_against_the_strategy() -> None:
    g = validate_params(normalize_grid({"fast": [5, 10], "allocation": [1, 0.5]}), SmaCross)
    assert g["allocation"] == [1.0, 0.5] and isinstance(g["allocation"][0], float)
    with pytest.raises(ConfigError) as err:
        validate_params(normalize_grid({"fsat": [5]}, "sweep.grid"), SmaCross, "sweep.grid")
    assert err.value.field == "sweep.grid.fsat"
    assert "known: allocation, allow_short, fast, slow" in err.value.reason
    with pytest.raises(ConfigError) as err:
        validate_params(normalize_grid({"fast": [5, 7.5]}), SmaCross)
    assert (err.value.field, err.value.value) == ("grid.fast", 7.5)
    with pytest.raises(ConfigError, match="whole-number"):
        validate_params(normalize_grid({"fast": {"low": 1.5, "high": 9}}), SmaCross)


def test_constraint_expressions() -> None:
    c = compile_constraint("fast < slow and not (fast * 3 > slow) or slow == 99")
    assert c({"fast": 5, "slow": 20})
    assert not c({"fast": 10, "slow": 20})
    assert c({"fast": 50, "slow": 99})
    assert compile_constraint("abs(fast - slow) >= max(2, 1)")({"fast": 1, "slow": 3})
    assert compile_constraint("5 < fast <= 10")({"fast": 10})
    assert not compile_constraint("5 < fast <= 10")({"fast": 11})
    assert compile_constraint("mode == 'x' or flag == true")({"mode": "y", "flag": True})


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "fast.__class__",
        "open('x')",
        "[fast][0] < 1",
        "(lambda: 1)()",
        "fast if slow else 1",
        "fast < slow; 1",
        "",
    ],
)
def test_constraints_refuse_code(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        compile_constraint(text, "sweep.constraint")
    assert err.value.field == "sweep.constraint"


def test_constraint_unknown_name() -> None:
    with pytest.raises(ConfigError, match="unknown name 'fsat'"):
        compile_constraint("fsat < slow", names=["fast", "slow"])


def test_expand_order_and_constraint() -> None:
    g = normalize_grid({"fast": [5, 10, 20], "slow": [10, 20]})
    points = expand_grid(g, compile_constraint("fast < slow"))
    assert points == [
        {"fast": 5, "slow": 10},
        {"fast": 5, "slow": 20},
        {"fast": 10, "slow": 20},
    ]
    # the constraint may use parameters that are not swept (the config's values)
    assert expand_grid(g, compile_constraint("fast < slow < cap"), base={"cap": 15}) == [
        {"fast": 5, "slow": 10}
    ]


def test_random_search_is_seeded_and_without_replacement() -> None:
    g = normalize_grid({"a": range(20), "b": range(20)})
    one = expand_grid(g, n_samples=30, seed=7)
    assert one == expand_grid(g, n_samples=30, seed=7)
    assert one != expand_grid(g, n_samples=30, seed=8)
    assert len({tuple(p.values()) for p in one}) == 30
    assert len(expand_grid(g, n_samples=1000)) == 400  # the whole grid, no more


def test_random_search_large_grids_and_distributions() -> None:
    g = normalize_grid({f"p{i}": range(10) for i in range(7)})  # 10 million points
    pts = expand_grid(g, compile_constraint("p0 < p1"), n_samples=50, seed=1)
    assert len(pts) == 50 and all(p["p0"] < p["p1"] for p in pts)
    d = normalize_grid({"x": {"low": 1, "high": 100, "log": True}, "y": {"low": 0.0, "high": 1}})
    assert isinstance(d["x"], Distribution) and d["x"].integer
    pts = expand_grid(d, n_samples=40, seed=3)
    assert all(1 <= p["x"] <= 100 and isinstance(p["x"], int) for p in pts)
    assert all(0.0 <= p["y"] <= 1.0 for p in pts)
    with pytest.raises(ConfigError, match="needs n_samples"):
        expand_grid(d)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c"]),
        st.lists(st.integers(-5, 5), min_size=1, max_size=4, unique=True),
        min_size=1,
    )
)
def test_expansion_is_the_filtered_product(raw: dict[str, list[int]]) -> None:
    g = normalize_grid(raw)
    names = list(raw)
    c = compile_constraint(f"{names[0]} >= 0")
    want = [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*raw.values())
        if combo[0] >= 0
    ]
    assert expand_grid(g, c) == want
