"""The parts an asynchronous broker is built from, each usable on its own.

* :class:`BrokerConfig` — URLs, paper or live, and the keys (held as secrets).
* :class:`RateLimiter` — a rolling-window request budget, corrected by the server's headers.
* :class:`CacheManager` — TTL cache with single-flight loads for account, clock, assets, positions.

A broker holds one of each and wires them; swapping a part needs no subclass.
"""

from tradeloop.execution.asynchronous.components.broker_config import BrokerConfig
from tradeloop.execution.asynchronous.components.cache import CacheManager
from tradeloop.execution.asynchronous.components.rate_limiter import RateLimiter

__all__ = ["BrokerConfig", "CacheManager", "RateLimiter"]
