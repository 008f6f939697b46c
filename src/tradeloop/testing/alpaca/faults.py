"""Fault injection for the loopback Alpaca server: prove a client's reliability against it.

A :class:`FaultPlan` says which faults to inject and how often; a :class:`FaultInjector` (the
server's :class:`~tradeloop.testing.alpaca.app.ServerHooks`) injects them. Faults disturb only
the *delivery* of the venue's answers and events, never the venue's own truth: an order
accepted despite an injected 5xx or timeout exists exactly once, every fill is recorded once
and stays listed by ``GET /v2/account/activities``, so a client can always reconcile over REST.

The kinds (:data:`FAULT_KINDS`) and what each does on the wire:

``rate_limit``
    An authenticated REST request (``/v2/...``) is answered ``429 {"code": 42910000, "message":
    "rate limit exceeded"}`` with ``X-Ratelimit-Limit`` (the server's limit), ``X-Ratelimit-
    Remaining: 0`` and ``X-Ratelimit-Reset`` ``rate_limit_reset`` seconds ahead (epoch seconds,
    rounded up); the route does not run. One injection starts a burst: that request and the
    key's next ``rate_limit_burst - 1`` requests all get the 429. Each 429 counts once.
``error_after_accept``
    An order ``POST /v2/orders`` or ``PATCH /v2/orders/{id}`` that the venue accepted (the order
    exists, its events are streamed) is answered ``error_status`` (500) with ``{"code":
    50010000, "message": "internal server error"}`` instead of the order.
``timeout_after_accept``
    Such an accepted order request gets no answer for ``timeout_delay`` seconds, after which the
    server closes the TCP connection without answering (sooner when the server stops).
``drop_stream``
    A trade_updates connection's TCP connection is closed, with no WebSocket close frame, as a
    trade event is about to be sent. With ``drop_before_fill`` (the default) only ``fill`` and
    ``partial_fill`` events are candidates and that event is never delivered on that socket
    (nor anything queued after it); otherwise any event is, and it is sent before the drop.
``reject_reconnect``
    A trade_updates or market-data connection that authenticated is refused as a second
    connection of the key is: ``{"stream": "error", "data": {"code": 406, "message":
    "connection limit exceeded"}}`` (market data: ``[{"T": "error", "code": 406, "msg":
    "connection limit exceeded"}]``), then a close frame 1008.
``duplicate_event``
    A trade event is sent twice in a row.
``reorder_events``
    A trade event is held back and sent right after the connection's next trade event (or on
    its own after ``reorder_timeout`` seconds, or before the connection closes). That next
    event is no candidate itself, whether or not the timer sent the held one first.
``unknown_event``
    Before a trade event, an extra one is sent: the same ``order`` and ``timestamp`` under the
    event name ``order_gremlin``.
``malformed_json``
    Before a trade event, an extra frame is sent: alternately the event's encoding cut in half
    (not valid JSON; the first, third, ... injection) and the event without its ``order``.

Only trade events (``{"stream": "trade_updates", ...}`` messages) are candidates for the
stream faults; the handshake replies are never disturbed.

A kind is injected at each candidate with its probability, and unconditionally at the next N
candidates when told "next N" (those come first). Each kind draws from its own random stream,
seeded from the plan's ``seed``, so a plan is reproducible given the seed and the sequence of
requests and messages, even when REST calls and stream messages interleave differently.
``counts`` holds how many faults were actually injected, by kind.

Three ways to configure it: ``AlpacaServer(..., faults=FaultPlan(...))``; the text form of
:func:`parse_faults` (``run_server(faults="rate_limit=0.02,drop_stream=next:1", fault_seed=7)``);
and, at run time, the test API ``GET``/``POST /_tradeloop/faults`` (loopback only, no auth).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from tradeloop.errors import ConfigError
from tradeloop.testing.alpaca.app import (
    DROP_CONNECTION,
    TEST_API_PREFIX,
    RawFrame,
    ServerHooks,
    StreamConnection,
)
from tradeloop.testing.alpaca.exchange import (
    ERR_INTERNAL,
    ERR_INVALID,
    ERR_MALFORMED,
    ERR_RATE_LIMIT,
    AlpacaError,
)
from tradeloop.testing.faultdice import check_next_count, check_probability, check_seed

if TYPE_CHECKING:
    from tradeloop.testing.alpaca.app import AlpacaApp

__all__ = [
    "FAULTS_PATH",
    "FAULT_KINDS",
    "FAULT_SETTINGS",
    "UNKNOWN_EVENT",
    "FaultInjector",
    "FaultPlan",
    "parse_faults",
]

JSON = dict[str, Any]

FAULT_KINDS: Final = (
    "rate_limit",
    "error_after_accept",
    "timeout_after_accept",
    "drop_stream",
    "reject_reconnect",
    "duplicate_event",
    "reorder_events",
    "unknown_event",
    "malformed_json",
)
"""The fault kinds, by name (the names are the API)."""

FAULT_SETTINGS: Final = (
    "timeout_delay",
    "rate_limit_burst",
    "rate_limit_reset",
    "error_status",
    "drop_before_fill",
    "reorder_timeout",
)
"""The plan's settings that the text form and the test API may change, besides ``seed``."""

FAULTS_PATH: Final = f"{TEST_API_PREFIX}faults"
UNKNOWN_EVENT: Final = "order_gremlin"

_FILL_EVENTS = ("fill", "partial_fill")
_DEFAULT_RATE_LIMIT = 200  # Alpaca's, reported when the server has no limiter
_SEED_BITS = 63


# ------------------------------------------------------------------------------ validation


def _field(kind: str) -> str:
    return f"faults.{kind}"


def _check_kind(kind: object) -> str:
    if not isinstance(kind, str) or kind not in FAULT_KINDS:
        raise ConfigError("faults", kind, f"unknown fault kind; expected one of {_names()}")
    return kind


def _names() -> str:
    return ", ".join(FAULT_KINDS)


def _probability(kind: str, value: object) -> float:
    return check_probability(_field(kind), value)


def _next_count(kind: str, value: object) -> int:
    return check_next_count(_field(kind), value)


def _seconds(name: str, value: object, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not value > 0
    ):
        extra = " or null" if allow_none else ""
        raise ConfigError(_field(name), value, f"must be a number of seconds > 0{extra}")
    return float(value)


def _setting(name: str, value: object) -> Any:
    """``value`` checked (and normalized) for the setting ``name``."""
    if name in ("timeout_delay", "rate_limit_reset"):
        return _seconds(name, value)
    if name == "reorder_timeout":
        return _seconds(name, value, allow_none=True)
    if name == "rate_limit_burst":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(_field(name), value, "must be an integer >= 1")
        return value
    if name == "error_status":
        if isinstance(value, bool) or not isinstance(value, int) or not 500 <= value <= 599:
            raise ConfigError(_field(name), value, "must be an HTTP status from 500 to 599")
        return value
    if name == "drop_before_fill":
        if not isinstance(value, bool):
            raise ConfigError(_field(name), value, "must be true or false")
        return value
    raise ConfigError("faults", name, f"unknown setting; expected one of {_settings()}")


def _settings() -> str:
    return ", ".join((*FAULT_SETTINGS, "seed"))


_seed = check_seed


# ------------------------------------------------------------------------------ the plan


@dataclass(eq=False)
class FaultPlan:
    """Which faults to inject, how often, and how many were injected.

    ``probabilities``: kind -> the probability (0..1) of injecting it at each candidate request
    or message. ``next``: kind -> how many of the next candidates get it for sure (counted
    down; these come before the probability). ``seed``: an integer, or a ``random.Random`` to
    draw the kinds' seeds from; ``None`` picks an integer at random and keeps it here so that
    the run can be repeated. Settings: ``timeout_delay`` (s, how long ``timeout_after_accept``
    holds the answer), ``rate_limit_burst`` (429s per ``rate_limit`` injection),
    ``rate_limit_reset`` (s ahead in ``X-Ratelimit-Reset``), ``error_status``
    (``error_after_accept``'s status), ``drop_before_fill`` (``drop_stream`` hits fills only,
    which are then lost) and ``reorder_timeout`` (s, how long ``reorder_events`` holds an event
    at most; ``None``: until the next one). ``counts``: kind -> faults injected so far.

    Raises :class:`~tradeloop.errors.ConfigError` naming the bad kind, setting or value. Change
    a plan in use with :meth:`set`, :meth:`configure`, :meth:`reseed`, :meth:`clear`.
    """

    probabilities: dict[str, float] = field(default_factory=dict)
    next: dict[str, int] = field(default_factory=dict)
    seed: int | random.Random | None = None
    timeout_delay: float = 10.0
    rate_limit_burst: int = 3
    rate_limit_reset: float = 1.0
    error_status: int = 500
    drop_before_fill: bool = True
    reorder_timeout: float | None = 1.0
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        given_p = dict(self.probabilities)
        given_n = dict(self.next)
        self.probabilities = dict.fromkeys(FAULT_KINDS, 0.0)
        self.next = dict.fromkeys(FAULT_KINDS, 0)
        for kind, p in given_p.items():
            self.probabilities[_check_kind(kind)] = _probability(kind, p)
        for kind, n in given_n.items():
            self.next[_check_kind(kind)] = _next_count(kind, n)
        for name in FAULT_SETTINGS:
            setattr(self, name, _setting(name, getattr(self, name)))
        self.counts = dict.fromkeys(FAULT_KINDS, 0)
        self._rngs: dict[str, random.Random] = {}
        self._bursts: dict[str, int] = {}  # key id -> rate_limit 429s still due in its burst
        self.reseed(self.seed)

    # -- changes -------------------------------------------------------------------------------

    def reseed(self, seed: int | random.Random | None) -> None:
        """Restart every kind's random stream from ``seed`` (see the class docstring)."""
        seed = _seed(seed)
        if seed is None:
            seed = random.SystemRandom().getrandbits(_SEED_BITS)
        self.seed = seed
        for kind in FAULT_KINDS:
            if isinstance(seed, random.Random):
                self._rngs[kind] = random.Random(seed.getrandbits(64))
            else:
                self._rngs[kind] = random.Random(f"tradeloop-faults/{seed}/{kind}")

    def set(self, kind: str, *, probability: float | None = None, next: int | None = None) -> None:
        """Set ``kind``'s probability and/or its count of sure injections to come."""
        _check_kind(kind)
        if probability is not None:
            self.probabilities[kind] = _probability(kind, probability)
        if next is not None:
            self.next[kind] = _next_count(kind, next)

    def clear(self) -> None:
        """Inject nothing from now on: every probability and count to come back to 0, and a
        ``rate_limit`` burst under way ends."""
        self.probabilities = dict.fromkeys(FAULT_KINDS, 0.0)
        self.next = dict.fromkeys(FAULT_KINDS, 0)
        self._bursts.clear()

    def reset_counts(self) -> None:
        """Forget the faults injected so far."""
        self.counts = dict.fromkeys(FAULT_KINDS, 0)

    def configure(self, changes: Mapping[str, Any]) -> None:
        """Apply ``changes``, all or nothing, in the JSON form of the test API::

            {"rate_limit": 0.02,                          # a probability
             "drop_stream": {"next": 2},                  # the next 2 candidates
             "duplicate_event": {"probability": 0.1, "next": 1},
             "timeout_delay": 1.5, "seed": 7,             # settings
             "clear": true, "reset_counts": true}         # first: clear, then reset counts

        Raises :class:`~tradeloop.errors.ConfigError` naming the bad kind, setting or value.
        """
        if not isinstance(changes, Mapping):
            raise ConfigError("faults", changes, "must be an object of kinds and settings")
        kinds: dict[str, tuple[float | None, int | None]] = {}
        settings: dict[str, Any] = {}
        flags = {"clear": False, "reset_counts": False}
        seed: tuple[int | random.Random | None] | None = None
        for name, value in changes.items():
            if name in FAULT_KINDS:
                kinds[name] = _kind_change(name, value)
            elif name in FAULT_SETTINGS:
                settings[name] = _setting(name, value)
            elif name == "seed":
                seed = (_seed(value),)
            elif name in flags:
                if not isinstance(value, bool):
                    raise ConfigError(_field(name), value, "must be true or false")
                flags[name] = value
            else:
                raise ConfigError(
                    "faults",
                    name,
                    f"unknown fault kind or setting; expected one of {_names()}, "
                    f"{_settings()}, clear, reset_counts",
                )
        if flags["clear"]:
            self.clear()
        if flags["reset_counts"]:
            self.reset_counts()
        if seed is not None:
            self.reseed(seed[0])
        for name, value in settings.items():
            setattr(self, name, value)
        for kind, (probability, count) in kinds.items():
            self.set(kind, probability=probability, next=count)

    # -- injection -----------------------------------------------------------------------------

    def decide(self, kind: str) -> bool:
        """Whether to inject ``kind`` at this candidate: a sure one if any is due, else a draw
        from the kind's random stream (none when its probability is 0)."""
        due = self.next.get(kind, 0)
        if due > 0:
            self.next[kind] = due - 1
            return True
        probability = self.probabilities.get(kind, 0.0)
        return probability > 0.0 and self._rngs[kind].random() < probability

    def rate_limited(self, key_id: str) -> bool:
        """Whether this request of ``key_id`` gets a ``rate_limit`` 429: it is in a burst, or
        starts one (a candidate; the burst is this request and the key's next
        ``rate_limit_burst - 1``). Counts the 429."""
        due = self._bursts.pop(key_id, 0)
        if due == 0 and self.decide("rate_limit"):
            due = self.rate_limit_burst
        if due == 0:
            return False
        if due > 1:
            self._bursts[key_id] = due - 1
        self.record("rate_limit")
        return True

    def record(self, kind: str, n: int = 1) -> None:
        """Count ``n`` injected faults of ``kind``."""
        self.counts[kind] = self.counts.get(kind, 0) + n

    @property
    def total(self) -> int:
        """How many faults were injected, all kinds together."""
        return sum(self.counts.values())

    def to_json(self) -> JSON:
        """The plan and its counts: the answer of ``GET /_tradeloop/faults``."""
        return {
            "seed": self.seed if isinstance(self.seed, int) else None,
            "probabilities": dict(self.probabilities),
            "next": dict(self.next),
            "settings": {name: getattr(self, name) for name in FAULT_SETTINGS},
            "counts": dict(self.counts),
            "total": self.total,
        }


def _kind_change(kind: str, value: object) -> tuple[float | None, int | None]:
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in ("probability", "next")]
        if unknown:
            raise ConfigError(_field(kind), unknown[0], "expected probability and/or next")
        probability = value.get("probability")
        count = value.get("next")
        return (
            None if probability is None else _probability(kind, probability),
            None if count is None else _next_count(kind, count),
        )
    return _probability(kind, value), None


# ------------------------------------------------------------------------------ the text form


def _parse_number(name: str, text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ConfigError(_field(name), text, "must be a number") from None


def _parse_setting(name: str, text: str) -> Any:
    if name == "drop_before_fill":
        lowered = text.lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off"):
            return False
        raise ConfigError(_field(name), text, "must be true or false")
    if name == "reorder_timeout" and text.lower() in ("none", "null"):
        return None
    return _setting(name, _parse_number(name, text))


def parse_faults(text: str) -> FaultPlan:
    """A plan from its text form: comma-separated ``name=value`` items.

    ``kind=P`` sets a kind's probability (0..1), ``kind=next:N`` makes its next N candidates
    sure (a kind may be named twice, once each way); the settings take ``name=value``
    (``timeout_delay=2.5``, ``rate_limit_burst=1``, ``drop_before_fill=false``,
    ``reorder_timeout=none``, ...) and ``seed=N`` seeds the plan. For example
    ``"rate_limit=0.02,error_after_accept=0.05,drop_stream=0.01,drop_stream=next:1,seed=7"``.
    An empty text is a plan that injects nothing.

    Raises :class:`~tradeloop.errors.ConfigError` naming the bad item, kind, setting or value.
    """
    if not isinstance(text, str):
        raise ConfigError("faults", text, "must be a string of name=value items")
    changes: dict[str, Any] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name or not value:
            raise ConfigError("faults", item, "expected name=value")
        if name in FAULT_KINDS:
            change = changes.setdefault(name, {})
            if value.lower().startswith("next:"):
                key, count_text = "next", value[5:].strip()
                try:
                    parsed: Any = int(count_text)
                except ValueError:
                    raise ConfigError(
                        f"{_field(name)}.next", count_text, "must be an integer >= 0"
                    ) from None
                parsed = _next_count(name, parsed)
            else:
                key, parsed = "probability", _probability(name, _parse_number(name, value))
            if key in change:
                raise ConfigError(_field(name), value, f"{key} given twice")
            change[key] = parsed
        elif name in FAULT_SETTINGS:
            if name in changes:
                raise ConfigError(_field(name), value, "given twice")
            changes[name] = _parse_setting(name, value)
        elif name == "seed":
            try:
                changes["seed"] = int(value)
            except ValueError:
                raise ConfigError("faults.seed", value, "must be an integer") from None
        else:
            raise ConfigError(
                "faults",
                name,
                f"unknown fault kind or setting; expected one of {_names()}, {_settings()}",
            )
    plan = FaultPlan()
    plan.configure(changes)
    return plan


# ------------------------------------------------------------------------------ the injector


class _Reorder:
    """A ``reorder_events`` under way on one connection: the event held back (``None`` once
    the timer sent it). The connection's next trade event ends it, whether or not the timer
    fired first, so that the decisions do not depend on timing."""

    __slots__ = ("held",)

    def __init__(self, held: Any) -> None:
        self.held = held


_REORDER = "faults.reorder"  # StreamConnection.extra key


def _is_trade_event(conn: StreamConnection, message: Any) -> bool:
    return (
        conn.stream == "trade_updates"
        and isinstance(message, dict)
        and message.get("stream") == "trade_updates"
        and isinstance(message.get("data"), dict)
    )


def _is_order_write(request: web.Request) -> bool:
    path = request.path
    if request.method == "POST":
        return path == "/v2/orders"
    return request.method == "PATCH" and path.startswith("/v2/orders/")


class FaultInjector(ServerHooks):
    """The server hooks that inject :class:`FaultPlan` ``plan``'s faults (see the module
    docstring), and serve ``GET``/``POST /_tradeloop/faults``. One injector serves one server.
    """

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self.plan = plan if plan is not None else FaultPlan()
        self._app: AlpacaApp | None = None
        self._release: asyncio.Event | None = None
        self._closed = False

    def bind(self, app: AlpacaApp) -> None:
        self._app = app

    def routes(self) -> list[web.RouteDef]:
        return [web.get(FAULTS_PATH, self._get_faults), web.post(FAULTS_PATH, self._post_faults)]

    async def close(self) -> None:
        """Release every held answer (their connections are dropped)."""
        self._closed = True
        if self._release is not None:
            self._release.set()

    # -- REST ----------------------------------------------------------------------------------

    async def on_authorized(self, request: web.Request, key_id: str) -> web.StreamResponse | None:
        plan = self.plan
        if not plan.rate_limited(key_id):
            return None
        app = self._app
        limit = app.limiter.limit if app is not None and app.limiter is not None else None
        now = app.clock() if app is not None else time.time()
        headers = {
            "X-Ratelimit-Limit": str(limit if limit is not None else _DEFAULT_RATE_LIMIT),
            "X-Ratelimit-Remaining": "0",
            "X-Ratelimit-Reset": str(math.ceil(now + plan.rate_limit_reset)),
        }
        body = AlpacaError(429, ERR_RATE_LIMIT, "rate limit exceeded").body()
        return web.json_response(body, status=429, headers=headers)

    async def on_response(
        self, request: web.Request, key_id: str, response: web.StreamResponse
    ) -> web.StreamResponse:
        if response.status != 200 or not _is_order_write(request):
            return response
        plan = self.plan
        if plan.decide("timeout_after_accept"):
            plan.record("timeout_after_accept")
            await self._hold(plan.timeout_delay)
            if request.transport is not None:
                request.transport.close()
            return response  # its write fails quietly: the connection is gone
        if plan.decide("error_after_accept"):
            plan.record("error_after_accept")
            body = {"code": ERR_INTERNAL, "message": "internal server error"}
            return web.json_response(body, status=plan.error_status)
        return response

    async def _hold(self, delay: float) -> None:
        if self._closed:
            return
        if self._release is None:
            self._release = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), delay)

    # -- streams -------------------------------------------------------------------------------

    def admit_stream(self, conn: StreamConnection, endpoint: str, key_id: str) -> bool:
        if self.plan.decide("reject_reconnect"):
            self.plan.record("reject_reconnect")
            return False
        return True

    def on_stream_send(self, conn: StreamConnection, message: Any) -> Sequence[Any]:
        message = self.on_stream_message(conn.stream, message)
        if message is None:
            return []
        if not _is_trade_event(conn, message):
            return [message]
        plan = self.plan
        frames: list[Any] = []
        event = message["data"].get("event")
        drop = False
        if (not plan.drop_before_fill or event in _FILL_EVENTS) and plan.decide("drop_stream"):
            plan.record("drop_stream")
            if plan.drop_before_fill:
                conn.extra.pop(_REORDER, None)
                return [DROP_CONNECTION]
            drop = True
        if plan.decide("malformed_json"):
            frames.append(self._malformed(conn, message))
            plan.record("malformed_json")
        if plan.decide("unknown_event"):
            plan.record("unknown_event")
            frames.append(_gremlin(message))
        copies = [message]
        if plan.decide("duplicate_event"):
            plan.record("duplicate_event")
            copies.append(message)
        reorder = conn.extra.pop(_REORDER, None)
        if isinstance(reorder, _Reorder):  # this is the next event: the held one follows it
            conn.cancel_flush()
            frames.extend(copies)
            if reorder.held is not None:
                frames.append(reorder.held)
        elif not drop and plan.decide("reorder_events"):
            plan.record("reorder_events")
            conn.extra[_REORDER] = _Reorder(copies[0])
            frames.extend(copies[1:])
            if plan.reorder_timeout is not None:
                conn.flush_later(plan.reorder_timeout)
        else:
            frames.extend(copies)
        if drop:
            frames.append(DROP_CONNECTION)
        return frames

    def on_stream_flush(self, conn: StreamConnection) -> Sequence[Any]:
        reorder = conn.extra.get(_REORDER)
        if not isinstance(reorder, _Reorder) or reorder.held is None:
            return []
        held, reorder.held = reorder.held, None
        return [held]

    def _malformed(self, conn: StreamConnection, message: JSON) -> Any:
        """Alternately the event's encoding cut in half and the event without its order."""
        if self.plan.counts.get("malformed_json", 0) % 2 == 0:
            data = conn.encode(message)
            return RawFrame(data[: len(data) // 2])
        body = {k: v for k, v in message["data"].items() if k != "order"}
        return {"stream": "trade_updates", "data": body}

    # -- the test API --------------------------------------------------------------------------

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.plan.to_json())

    async def _post_faults(self, request: web.Request) -> web.Response:
        text = await request.text()
        try:
            changes = json.loads(text) if text.strip() else {}
        except ValueError:
            raise AlpacaError(400, ERR_MALFORMED, "request body format is invalid") from None
        try:
            self.plan.configure(changes)
        except ConfigError as exc:
            raise AlpacaError(422, ERR_INVALID, str(exc)) from None
        return web.json_response(self.plan.to_json())


def _gremlin(message: JSON) -> JSON:
    """An event named :data:`UNKNOWN_EVENT` about ``message``'s order."""
    data = message["data"]
    return {
        "stream": "trade_updates",
        "data": {
            "event": UNKNOWN_EVENT,
            "order": data.get("order"),
            "timestamp": data.get("timestamp"),
        },
    }
