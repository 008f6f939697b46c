"""Parameter grids: exhaustive or random, filtered by a constraint, checked against a strategy.

A grid maps parameter names to the values to try:

* a list (``[5, 10, 20]``) or any iterable, a Python ``range``;
* a single value (held fixed);
* ``{"start": 5, "stop": 30, "step": 5}``: like Python's ``range`` (``stop`` excluded), floats
  allowed (``{"start": 0.1, "stop": 0.5, "step": 0.1}`` is 0.1, 0.2, 0.3, 0.4);
* ``{"low": 5, "high": 50}`` (``"log": true`` for a log-uniform draw): a distribution, for random
  search only (``n_samples``); whole numbers when both bounds are whole and the parameter is an
  ``int``, both bounds included.

:func:`expand_grid` gives every combination (in the order of the grid's keys, the last one varying
fastest), keeps those the constraint accepts, and with ``n_samples`` draws that many of them at
random without replacement (seeded: the same seed, the same draw).

A constraint is a Python callable ``(params) -> bool`` or a small expression over parameter names
such as ``"fast < slow"`` or ``"fast * 2 <= slow and stop_loss > 0.01"``: comparisons, ``and``,
``or``, ``not``, arithmetic (``+ - * / // % **``), ``abs``/``min``/``max``, numbers, strings,
``true``/``false``. It is parsed with :mod:`ast` and evaluated by a small interpreter: no
``eval``, no attribute access, no other calls.
"""

from __future__ import annotations

import ast
import itertools
import math
import operator
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tradeloop.errors import ConfigError

__all__ = [
    "Constraint",
    "Distribution",
    "ParamGrid",
    "compile_constraint",
    "expand_grid",
    "normalize_grid",
    "validate_params",
]

MAX_ENUMERATED = 1_000_000
"""A random search over a grid larger than this draws points instead of listing them all."""

Constraint = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Distribution:
    """A continuous (or whole-number) range to draw from in a random search."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def draw(self, rng: random.Random) -> float | int:
        if self.integer:
            if self.log:
                x = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
                return min(int(self.high), max(int(self.low), int(x)))
            return rng.randint(int(self.low), int(self.high))
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)


ParamGrid = dict[str, "list[Any] | Distribution"]


def _is_whole(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _range_values(field: str, spec: Mapping[str, Any]) -> list[Any]:
    unknown = set(spec) - {"start", "stop", "step"}
    if unknown:
        raise ConfigError(field, dict(spec), f"unknown key {sorted(unknown)[0]!r} in a range")
    if "start" not in spec or "stop" not in spec:
        raise ConfigError(field, dict(spec), "a range needs start and stop (and optional step)")
    start, stop, step = spec["start"], spec["stop"], spec.get("step", 1)
    for name, v in (("start", start), ("stop", stop), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ConfigError(f"{field}.{name}", v, "must be a finite number")
    if step <= 0:
        raise ConfigError(f"{field}.step", step, "must be > 0")
    if all(_is_whole(v) for v in (start, stop, step)):
        return list(range(start, stop, step))
    n = math.ceil((stop - start) / step - 1e-9)
    return [round(start + i * step, 12) for i in range(max(n, 0))]


def _distribution(field: str, spec: Mapping[str, Any]) -> Distribution:
    unknown = set(spec) - {"low", "high", "log"}
    if unknown:
        raise ConfigError(field, dict(spec), f"unknown key {sorted(unknown)[0]!r} in a range")
    if "low" not in spec or "high" not in spec:
        raise ConfigError(field, dict(spec), "a distribution needs low and high")
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ConfigError(f"{field}.{name}", v, "must be a finite number")
    if not isinstance(log, bool):
        raise ConfigError(f"{field}.log", log, "must be true or false")
    if high < low:
        raise ConfigError(f"{field}.high", high, f"must be >= low={low}")
    if log and low <= 0:
        raise ConfigError(f"{field}.low", low, "must be > 0 for a log-uniform draw")
    return Distribution(float(low), float(high), log, _is_whole(low) and _is_whole(high))


def normalize_grid(grid: Mapping[str, Any], prefix: str = "grid") -> ParamGrid:
    """The grid with every entry as a list of values or a :class:`Distribution`.

    Raises :class:`ConfigError` naming ``<prefix>.<param>`` for an empty list, a bad range, ...
    """
    if not isinstance(grid, Mapping):
        raise ConfigError(prefix, grid, "must be a mapping of parameter name to values")
    if not grid:
        raise ConfigError(prefix, {}, "must name at least one parameter")
    out: ParamGrid = {}
    for name, spec in grid.items():
        field = f"{prefix}.{name}"
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(field, name, "parameter names must be identifiers")
        values: list[Any] | Distribution
        if isinstance(spec, Distribution):
            values = spec
        elif isinstance(spec, Mapping):
            values = _distribution(field, spec) if "low" in spec else _range_values(field, spec)
        elif isinstance(spec, str | bytes) or not isinstance(spec, Iterable):
            values = [spec]
        else:
            values = list(spec)
        if isinstance(values, list):
            if not values:
                raise ConfigError(field, spec, "no values to try")
            for v in values:
                if isinstance(v, float) and not math.isfinite(v):
                    raise ConfigError(field, v, "values must be finite")
            dupes = [v for i, v in enumerate(values) if v in values[:i]]
            if dupes:
                raise ConfigError(field, dupes[0], "duplicate value")
        out[name] = values
    return out


def validate_params(
    grid: ParamGrid,
    strategy_cls: type[Any],
    prefix: str = "grid",
) -> ParamGrid:
    """Check the grid's names against the strategy's declared parameters and coerce the values
    to their declared types (``int`` values for a ``float`` parameter become floats).

    Raises :class:`ConfigError` naming ``<prefix>.<param>`` and the bad value.
    """
    known: Mapping[str, Any] = getattr(strategy_cls, "_param_defaults", {})
    types: Mapping[str, type] = getattr(strategy_cls, "_param_types", {})
    out: ParamGrid = {}
    for name, values in grid.items():
        field = f"{prefix}.{name}"
        if name not in known:
            allowed = ", ".join(sorted(known)) or "none"
            raise ConfigError(
                field, name, f"{strategy_cls.__name__} has no such parameter (known: {allowed})"
            )
        want = types.get(name)
        if isinstance(values, Distribution):
            if want is bool or want is str:
                raise ConfigError(field, values, f"a range needs a numeric parameter, not {want}")
            if want is int and not values.integer:
                raise ConfigError(field, values, "an int parameter needs whole-number bounds")
            if want is float and values.integer:
                values = Distribution(values.low, values.high, values.log, integer=False)
            out[name] = values
            continue
        coerced: list[Any] = []
        for v in values:
            if want is None:
                coerced.append(v)
                continue
            if want is float and _is_whole(v):
                v = float(v)
            if not isinstance(v, want) or (want is not bool and isinstance(v, bool)):
                raise ConfigError(field, v, f"must be of type {want.__name__}")
            coerced.append(v)
        out[name] = coerced
    return out


# ----------------------------------------------------------------------------------- constraint

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_FUNCS: dict[str, Callable[..., Any]] = {"abs": abs, "min": min, "max": max}
_CONSTS = {"true": True, "false": False, "True": True, "False": False}


class _Expr:
    """A parsed constraint expression; calling it evaluates it over a parameter mapping."""

    def __init__(self, text: str, tree: ast.expr) -> None:
        self.text = text
        self.tree = tree
        self.names = sorted(
            {
                n.id
                for n in ast.walk(tree)
                if isinstance(n, ast.Name) and n.id not in _CONSTS and n.id not in _FUNCS
            }
        )

    def __call__(self, params: Mapping[str, Any]) -> bool:
        return bool(self._eval(self.tree, params))

    def __repr__(self) -> str:
        return f"constraint({self.text!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (compile_constraint, (self.text,))

    def _eval(self, node: ast.expr, p: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in _CONSTS:
                return _CONSTS[node.id]
            return p[node.id]
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                return all(self._eval(v, p) for v in node.values)
            return any(self._eval(v, p) for v in node.values)
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, p)
            if isinstance(node.op, ast.Not):
                return not v
            if isinstance(node.op, ast.USub):
                return -v
            return +v
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](self._eval(node.left, p), self._eval(node.right, p))
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, p)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = self._eval(comp, p)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            return _FUNCS[node.func.id](*(self._eval(a, p) for a in node.args))
        raise AssertionError(f"unchecked node {type(node).__name__}")  # pragma: no cover


def _check_node(node: ast.AST, field: str, text: str) -> None:
    allowed = (
        ast.Expression,
        ast.Constant,
        ast.Name,
        ast.Load,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.USub,
        ast.UAdd,
        ast.BinOp,
        ast.Compare,
        ast.Call,
        *_BINOPS,
        *_CMPOPS,
    )
    for n in ast.walk(node):
        if not isinstance(n, allowed):
            raise ConfigError(
                field,
                text,
                f"{type(n).__name__} is not allowed in a constraint (use parameter names, "
                "numbers, comparisons, and/or/not, arithmetic, abs/min/max)",
            )
        if isinstance(n, ast.Constant) and not isinstance(n.value, int | float | str | bool):
            raise ConfigError(field, text, f"constant {n.value!r} is not allowed")
        if isinstance(n, ast.Call) and (
            not isinstance(n.func, ast.Name) or n.func.id not in _FUNCS or n.keywords
        ):
            raise ConfigError(field, text, "only abs(), min() and max() may be called")


def compile_constraint(
    text: str, field: str = "constraint", names: Iterable[str] | None = None
) -> Constraint:
    """Parse a constraint expression such as ``"fast < slow"`` into a callable.

    ``names``: the parameter names it may use (an unknown name raises :class:`ConfigError`).
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(field, text, "must be an expression such as 'fast < slow'")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConfigError(field, text, f"not a valid expression: {exc.msg}") from None
    _check_node(tree, field, text)
    expr = _Expr(text.strip(), tree.body)
    if names is not None:
        known = set(names)
        for name in expr.names:
            if name not in known:
                raise ConfigError(
                    field, text, f"unknown name {name!r} (parameters: {', '.join(sorted(known))})"
                )
    return expr


def _accepts(
    constraint: Constraint | None, point: dict[str, Any], base: Mapping[str, Any], field: str
) -> bool:
    if constraint is None:
        return True
    try:
        return bool(constraint({**base, **point}))
    except Exception as exc:
        raise ConfigError(
            field, point, f"the constraint raised {type(exc).__name__}: {exc}"
        ) from exc


# ----------------------------------------------------------------------------------- expansion


def grid_size(grid: ParamGrid) -> int | None:
    """How many combinations the grid has (``None`` with a distribution)."""
    n = 1
    for values in grid.values():
        if isinstance(values, Distribution):
            return None
        n *= len(values)
    return n


def expand_grid(
    grid: ParamGrid,
    constraint: Constraint | None = None,
    n_samples: int | None = None,
    seed: int | None = 0,
    base: Mapping[str, Any] | None = None,
    field: str = "constraint",
) -> list[dict[str, Any]]:
    """The parameter sets to run, in a fixed order.

    Without ``n_samples``: every combination the constraint accepts. With it: ``n_samples`` of
    them drawn at random without replacement (fewer if fewer exist), in the order drawn.
    ``base``: the other parameters the constraint may refer to (e.g. the config's defaults).
    """
    base = dict(base or {})
    names = list(grid)
    size = grid_size(grid)
    if n_samples is None:
        if size is None:
            raise ConfigError(
                "n_samples", None, "a grid with low/high distributions needs n_samples"
            )
        return [p for p in _product(grid, names) if _accepts(constraint, p, base, field)]
    if n_samples < 1:
        raise ConfigError("n_samples", n_samples, "must be >= 1")
    rng = random.Random(seed)
    if size is not None and size <= MAX_ENUMERATED:
        points = [p for p in _product(grid, names) if _accepts(constraint, p, base, field)]
        if n_samples >= len(points):
            return points
        picks = rng.sample(range(len(points)), n_samples)
        return [points[i] for i in picks]
    # too many to list (or continuous): draw points and keep new accepted ones
    out: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    attempts = 0
    while len(out) < n_samples and attempts < 100 * n_samples + 1000:
        attempts += 1
        point = {
            n: v.draw(rng) if isinstance(v, Distribution) else v[rng.randrange(len(v))]
            for n, v in grid.items()
        }
        key = tuple(point.values())
        if key in seen or not _accepts(constraint, point, base, field):
            continue
        seen.add(key)
        out.append(point)
    return out


def _product(grid: ParamGrid, names: Sequence[str]) -> Iterator[dict[str, Any]]:
    lists: list[list[Any]] = []
    for n in names:
        values = grid[n]
        assert not isinstance(values, Distribution)
        lists.append(values)
    for combo in itertools.product(*lists):
        yield dict(zip(names, combo, strict=True))
