"""Where a Binance broker connects and with which keys.

Keys come from the arguments or from the environment (``BINANCE_API_KEY`` and
``BINANCE_API_SECRET``, or variables named by ``key_env`` / ``secret_env``), are held as
:class:`~pydantic.SecretStr` and never appear in a repr or an error message. Only
:meth:`BinanceConfig.keys` hands them out, to ccxt and to the WebSocket API signature.

The testnet is the default; real money needs ``testnet=False``. A loopback ``base_url``
(``http://127.0.0.1:PORT``, the server of ``tradeloop binance-server``) points every URL there.
"""

from __future__ import annotations

import os
from typing import Final
from urllib.parse import urlsplit

from pydantic import SecretStr

from tradeloop.errors import ConfigError
from tradeloop.execution.asynchronous.components.broker_config import REDACTED, _is_loopback

__all__ = ["KEY_ENV", "LIVE_URL", "SECRET_ENV", "TESTNET_URL", "BinanceConfig"]

LIVE_URL: Final = "https://api.binance.com"
TESTNET_URL: Final = "https://testnet.binance.vision"
KEY_ENV: Final = "BINANCE_API_KEY"
SECRET_ENV: Final = "BINANCE_API_SECRET"

# (streams, WebSocket API) of the known hosts
_WS: Final = {
    LIVE_URL: ("wss://stream.binance.com:9443", "wss://ws-api.binance.com:443"),
    TESTNET_URL: ("wss://stream.testnet.binance.vision", "wss://ws-api.testnet.binance.vision"),
}


def _secret(value: str | SecretStr | None, env: str) -> SecretStr | None:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None:
        value = os.environ.get(env)
    value = (value or "").strip()
    return SecretStr(value) if value else None


class BinanceConfig:
    """Connection settings of the Binance broker (immutable once built).

    ``base_url``: REST root without ``/api/v3`` (default the testnet, or the live API with
    ``testnet=False``). ``weight_limit``: request weight a minute (Binance: 6000), corrected from
    ``X-MBX-USED-WEIGHT-1M``. ``timeout``: seconds before a REST call's outcome is unknown.
    ``recv_window``: ms a signed request stays valid. ``quote``: the account's cash asset.
    ``ban_wait``: the longest IP ban (HTTP 418) waited out before calls fail instead.
    """

    __slots__ = (
        "_key",
        "_secret",
        "ban_wait",
        "base_url",
        "key_env",
        "quote",
        "recv_window",
        "secret_env",
        "testnet",
        "timeout",
        "weight_limit",
    )

    testnet: bool
    base_url: str
    key_env: str
    secret_env: str
    _key: SecretStr | None
    _secret: SecretStr | None
    weight_limit: int
    timeout: float
    recv_window: int
    quote: str
    ban_wait: float

    def __init__(
        self,
        *,
        testnet: bool = True,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        secret: str | SecretStr | None = None,
        key_env: str = KEY_ENV,
        secret_env: str = SECRET_ENV,
        weight_limit: int = 6000,
        timeout: float = 10.0,
        recv_window: int = 5000,
        quote: str = "USDT",
        ban_wait: float = 120.0,
    ) -> None:
        url = base_url if base_url is not None else (TESTNET_URL if testnet else LIVE_URL)
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = REDACTED if "@" in url else url
            raise ConfigError("base_url", shown, "must be an http(s) URL such as " + LIVE_URL)
        if parts.username or parts.password or parts.query:
            raise ConfigError("base_url", REDACTED, "must not hold credentials or a query")
        path = parts.path.rstrip("/")
        for suffix in ("/api/v3", "/api"):
            if path.endswith(suffix):
                path = path[: -len(suffix)]
        root = f"{parts.scheme}://{parts.netloc}{path}"
        if testnet and root == LIVE_URL:
            raise ConfigError(
                "base_url", root, "is Binance's live API (real money) but testnet is true"
            )
        if isinstance(weight_limit, bool) or not isinstance(weight_limit, int) or weight_limit < 1:
            raise ConfigError("weight_limit", weight_limit, "must be an integer >= 1")
        if not timeout > 0:
            raise ConfigError("timeout", timeout, "must be > 0 seconds")
        if not 0 < recv_window <= 60000:
            raise ConfigError("recv_window", recv_window, "must be 1..60000 ms")
        values = {
            "testnet": testnet,
            "base_url": root,
            "key_env": key_env,
            "secret_env": secret_env,
            "_key": _secret(api_key, key_env),
            "_secret": _secret(secret, secret_env),
            "weight_limit": weight_limit,
            "timeout": float(timeout),
            "recv_window": int(recv_window),
            "quote": quote,
            "ban_wait": float(ban_wait),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise ConfigError(name, REDACTED, "BinanceConfig is immutable; build a new one")

    def __repr__(self) -> str:
        keys = "keys set" if self.has_keys else "no keys"
        return f"BinanceConfig({self.base_url}, {keys})"

    # -- URLs ----------------------------------------------------------------------------------

    @property
    def loopback(self) -> bool:
        return _is_loopback(self.base_url)

    def _ws_roots(self) -> tuple[str, str]:
        known = _WS.get(self.base_url)
        if known is not None:
            return known
        ws = "wss://" if self.base_url.startswith("https://") else "ws://"
        root = ws + self.base_url.split("://", 1)[1]
        return root, root

    @property
    def stream_url(self) -> str:
        """The market streams' socket (``.../stream/ws``: ccxt reads ``/stream`` as spot)."""
        root = self._ws_roots()[0]
        return f"{root}/ws" if root in (v[0] for v in _WS.values()) else f"{root}/stream/ws"

    @property
    def ws_api_url(self) -> str:
        """The WebSocket API (user data), e.g. ``wss://ws-api.binance.com:443/ws-api/v3``."""
        return f"{self._ws_roots()[1]}/ws-api/v3"

    def ccxt_urls(self) -> dict[str, str]:
        """The ccxt ``urls['api']`` keys to override in place (the ``ws`` sub-dict is the
        caller's to update: replacing ``urls['api']`` whole would drop it)."""
        api = f"{self.base_url}/api"
        return {
            "public": f"{api}/v3",
            "private": f"{api}/v3",
            "v1": f"{api}/v1",
            "sapi": f"{self.base_url}/sapi/v1",
            "sapiV2": f"{self.base_url}/sapi/v2",
            "sapiV3": f"{self.base_url}/sapi/v3",
            "sapiV4": f"{self.base_url}/sapi/v4",
        }

    # -- keys ----------------------------------------------------------------------------------

    @property
    def has_keys(self) -> bool:
        return self._key is not None and self._secret is not None

    def require_keys(self) -> None:
        missing = [
            (name, env)
            for name, env, value in (
                ("api_key", self.key_env, self._key),
                ("secret", self.secret_env, self._secret),
            )
            if value is None
        ]
        if missing:
            name, env = missing[0]
            raise ConfigError(name, None, f"missing: set the environment variable {env}")

    def keys(self) -> tuple[str, str]:
        """``(api key, secret)`` in plain text, for ccxt and the WebSocket API signature."""
        self.require_keys()
        assert self._key is not None and self._secret is not None
        return self._key.get_secret_value(), self._secret.get_secret_value()
