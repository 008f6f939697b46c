"""A small time-to-live cache for broker reads (account, clock, assets, positions).

Every REST call costs one of 200 requests a minute, and a strategy may ask for its account on
every bar. :class:`CacheManager` serves a value while it is fresh, loads it once when several
callers ask at the same time (single flight), caches nothing when a load fails, and forgets the
account and positions on every fill (:meth:`CacheManager.on_fill`), when they change for sure.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar, cast

from tradeloop.errors import ConfigError

__all__ = ["DEFAULT_TTLS", "CacheManager"]

T = TypeVar("T")

#: Seconds each known key stays fresh.
DEFAULT_TTLS: Final[Mapping[str, float]] = {
    "account": 5.0,
    "clock": 30.0,
    "assets": 3600.0,
    "positions": 5.0,
}

_MISSING: Final = object()


class _Entry:
    __slots__ = ("expires_at", "value")

    def __init__(self, value: Any, expires_at: float) -> None:
        self.value = value
        self.expires_at = expires_at


class CacheManager:
    """Values by key, each fresh for its key's TTL (seconds on ``clock``).

    ``ttls`` adds keys or overrides the defaults (:data:`DEFAULT_TTLS`: account 5 s, clock 30 s,
    assets 3600 s, positions 5 s); a TTL of 0 caches nothing but still shares concurrent loads,
    ``math.inf`` never expires. A key ``"family:detail"`` (e.g. ``"assets:AAPL"``) without a TTL
    of its own uses the family's, and invalidating ``"assets"`` forgets every ``"assets:..."``.
    Any other key raises :class:`~tradeloop.errors.ConfigError`.

    A value is fresh for its TTL from the moment its load *started* (it cannot reflect anything
    later). A key invalidated while its load is in flight keeps the load's result from being
    cached: the waiting callers get it, the next caller loads again.
    """

    __slots__ = ("_clock", "_entries", "_generation", "_hits", "_inflight", "_loads", "_ttls")

    def __init__(
        self,
        ttls: Mapping[str, float] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not callable(clock):
            raise ConfigError("clock", clock, "must be callable")
        if ttls is not None and not isinstance(ttls, Mapping):
            raise ConfigError("ttls", ttls, "must be a mapping of key -> seconds")
        merged = dict(DEFAULT_TTLS)
        for key, ttl in (ttls or {}).items():
            if not isinstance(key, str) or not key:
                raise ConfigError("ttls", key, "keys must be non-empty strings")
            if (
                isinstance(ttl, bool)
                or not isinstance(ttl, int | float)
                or math.isnan(ttl)
                or ttl < 0
            ):
                raise ConfigError(f"ttls.{key}", ttl, "must be a number of seconds >= 0")
            merged[key] = float(ttl)
        self._ttls = merged
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Task[Any]] = {}
        self._generation: dict[str, int] = {}
        self._hits = 0
        self._loads = 0

    # ------------------------------------------------------------------------------ stats

    @property
    def ttls(self) -> Mapping[str, float]:
        """The TTL of every known key (a copy)."""
        return dict(self._ttls)

    @property
    def hits(self) -> int:
        """Gets answered from the cache or by joining a load already in flight."""
        return self._hits

    @property
    def loads(self) -> int:
        """Loads started (each one ``loader()`` call)."""
        return self._loads

    def ttl(self, key: str) -> float:
        """The TTL of ``key`` (its own, else its family's); ConfigError for an unknown key."""
        if not isinstance(key, str) or not key:
            raise ConfigError("key", key, "must be a non-empty string")
        ttl = self._ttls.get(key)
        if ttl is None:
            family = key.split(":", 1)[0]
            ttl = self._ttls.get(family) if family != key else None
        if ttl is None:
            known = ", ".join(sorted(self._ttls))
            raise ConfigError(
                "key", key, f"no TTL for this cache key (known: {known}; pass ttls={{...}})"
            )
        return ttl

    # ------------------------------------------------------------------------------ reads

    def _fresh(self, key: str, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now < entry.expires_at:
            return entry
        del self._entries[key]
        return None

    def peek(self, key: str, default: Any = None) -> Any:
        """The fresh cached value of ``key`` without loading anything, else ``default``."""
        self.ttl(key)  # unknown keys are errors here too
        entry = self._fresh(key, self._clock())
        return default if entry is None else entry.value

    async def get(self, key: str, loader: Callable[[], Awaitable[T]]) -> T:
        """The cached value of ``key`` while fresh, else the result of awaiting ``loader()``.

        Concurrent gets of one key share one load. A load that raises caches nothing and every
        caller waiting on it gets the exception. A caller cancelled while waiting does not
        cancel the load for the others.
        """
        ttl = self.ttl(key)
        entry = self._fresh(key, self._clock())
        if entry is not None:
            self._hits += 1
            return cast(T, entry.value)
        task = self._inflight.get(key)
        if task is None:
            if not callable(loader):
                raise ConfigError("loader", loader, "must be a callable returning an awaitable")
            self._loads += 1
            # stamp the load now: an invalidation before the task even starts must count
            started, generation = self._clock(), self._generation.get(key, 0)
            task = asyncio.create_task(self._load(key, ttl, loader, started, generation))
            self._inflight[key] = task
        else:
            self._hits += 1
        return cast(T, await asyncio.shield(task))

    async def _load(
        self,
        key: str,
        ttl: float,
        loader: Callable[[], Awaitable[T]],
        started: float,
        generation: int,
    ) -> T:
        try:
            value = await loader()
        finally:
            if self._inflight.get(key) is asyncio.current_task():
                del self._inflight[key]
        if self._generation.get(key, 0) == generation and ttl > 0:
            self._entries[key] = _Entry(value, started + ttl)
        return value

    # ------------------------------------------------------------------------------ writes

    def _matching(self, key: str, keys: set[str]) -> list[str]:
        prefix = key + ":"
        return [k for k in keys if k == key or k.startswith(prefix)]

    def invalidate(self, *keys: str) -> None:
        """Forget ``keys`` (and their ``"key:..."`` members); loads in flight will not be cached."""
        for key in keys:
            self.ttl(key)
            known = set(self._entries) | set(self._inflight) | set(self._generation) | {key}
            for k in self._matching(key, known):
                self._entries.pop(k, None)
                self._inflight.pop(k, None)
                self._generation[k] = self._generation.get(k, 0) + 1

    def on_fill(self) -> None:
        """A fill changed cash and holdings: forget the account and the positions."""
        self.invalidate("account", "positions")

    def clear(self) -> None:
        """Forget everything (loads in flight will not be cached)."""
        keys = set(self._entries) | set(self._inflight)
        self._entries.clear()
        self._inflight.clear()
        for k in keys:
            self._generation[k] = self._generation.get(k, 0) + 1

    def __repr__(self) -> str:
        return f"CacheManager(keys={sorted(self._entries)}, hits={self._hits}, loads={self._loads})"
