"""Where an Alpaca broker connects and with which keys: URLs, paper or live, keys, limits.

Keys come from the arguments or from the environment (``APCA_API_KEY_ID`` and
``APCA_API_SECRET_KEY``, or variables the user names with ``key_id_env`` / ``secret_key_env``),
are held as :class:`~pydantic.SecretStr`, and never appear in a repr, a dump or an error message:
errors about the key fields say ``'**********'`` where the value would be. Only
:meth:`BrokerConfig.auth_headers` and :meth:`BrokerConfig.stream_auth` hand out the plain keys,
for the request headers and the stream handshake.

Paper trading is the default; real money needs ``paper: false``. Pointing ``base_url`` at a
loopback test server (``http://127.0.0.1:PORT``) points every URL there (trading, trade stream,
market data and its stream) unless ``data_url`` is given as well.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, Self
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tradeloop.config._base import (
    _FIELD_ERROR,
    ConfigValidationError,
    Number,
    error_reason,
    field_error,
)
from tradeloop.errors import ConfigError

__all__ = [
    "DATA_URL",
    "KEY_ID_ENV",
    "LIVE_URL",
    "PAPER_URL",
    "REDACTED",
    "SECRET_KEY_ENV",
    "BrokerConfig",
]

PAPER_URL: Final = "https://paper-api.alpaca.markets"
LIVE_URL: Final = "https://api.alpaca.markets"
DATA_URL: Final = "https://data.alpaca.markets"
KEY_ID_ENV: Final = "APCA_API_KEY_ID"
SECRET_KEY_ENV: Final = "APCA_API_SECRET_KEY"
#: What error messages show instead of a value that may be a secret.
REDACTED: Final = "**********"

_PAPER_HOST: Final = "paper-api.alpaca.markets"
_LIVE_HOST: Final = "api.alpaca.markets"
# Alpaca's market-data REST hosts; their WebSocket lives on "stream." + host.
_ALPACA_DATA_HOSTS: Final = frozenset({"data.alpaca.markets", "data.sandbox.alpaca.markets"})
_SECRET_FIELDS: Final = frozenset({"key_id", "secret_key"})
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _is_loopback(url: str) -> bool:
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return False
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ws(url: str) -> str:
    """``url`` with its scheme turned into the WebSocket one (http -> ws, https -> wss)."""
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    return "ws://" + url[len("http://") :]


def _plain_secret(value: Any) -> Any:
    """A key as given, stripped; empty means "not given" (``None``)."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        return value.strip() or None
    return value


class BrokerConfig(BaseModel):
    """Connection settings of the Alpaca broker (immutable; validate once, share freely).

    Build it directly, with :meth:`from_env`, or from a mapping with :meth:`model_validate`;
    any invalid value raises :class:`~tradeloop.errors.ConfigError` naming the field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    paper: StrictBool = True
    """Trade on the paper account. Live trading (real money) only with ``paper=False``."""
    key_id: SecretStr | None = None
    """API key id; read from the variable named by ``key_id_env`` when not given."""
    secret_key: SecretStr | None = None
    """API secret key; read from the variable named by ``secret_key_env`` when not given."""
    key_id_env: Annotated[str, Field(pattern=_ENV_NAME)] = KEY_ID_ENV
    secret_key_env: Annotated[str, Field(pattern=_ENV_NAME)] = SECRET_KEY_ENV
    base_url: str = PAPER_URL
    """Trading API root without ``/v2`` (default: the paper or the live endpoint)."""
    data_url: str = DATA_URL
    """Market-data API root (default: Alpaca's, or ``base_url`` when that is a loopback URL)."""
    feed: Literal["iex", "sip"] = "iex"
    rate_limit: Annotated[StrictInt, Field(ge=1)] = 200
    """Requests a minute allowed for this key."""
    timeout: Annotated[Number, Field(gt=0)] = 10.0
    """Seconds before a REST request counts as timed out (its outcome is then unknown)."""

    # ------------------------------------------------------------------------------ validation

    def __init__(self, **data: Any) -> None:
        error: ConfigError | None = None
        try:
            super().__init__(**data)
        except ValidationError as exc:
            error = _convert_validation_error(exc, _known_secrets(data))
        if error is not None:
            raise error  # outside the except block: no __context__ holding the raw input

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        """Validate a mapping (e.g. a YAML section); errors are :class:`ConfigError`."""
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            error = _convert_validation_error(exc, _known_secrets(obj))
        raise error

    @classmethod
    def model_validate_json(cls, json_data: Any, *args: Any, **kwargs: Any) -> Self:
        """Validate a JSON document; errors are :class:`ConfigError`."""
        try:
            return super().model_validate_json(json_data, *args, **kwargs)
        except ValidationError as exc:
            try:
                parsed: Any = json.loads(json_data)
            except (ValueError, TypeError):
                parsed = None
            error = _convert_validation_error(exc, _known_secrets(parsed))
        raise error

    def __setattr__(self, name: str, value: Any) -> None:
        shown = REDACTED if name in _SECRET_FIELDS else value
        raise ConfigError(name, shown, "BrokerConfig is immutable; build a new one")

    def __delattr__(self, name: str) -> None:
        raise ConfigError(name, None, "BrokerConfig is immutable; build a new one")

    @classmethod
    def from_env(cls, **overrides: Any) -> Self:
        """A config whose keys come from the environment unless ``overrides`` give them.

        The variables are ``APCA_API_KEY_ID`` and ``APCA_API_SECRET_KEY``, or those named by
        ``key_id_env`` / ``secret_key_env``. (Plain construction reads them the same way; this
        name says so at the call site.)
        """
        return cls(**overrides)

    @model_validator(mode="before")
    @classmethod
    def _fill_from_environment(cls, data: Any) -> Any:
        """Keys from the environment, and the URLs' defaults (which depend on paper/base_url)."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        for field, env_field, default_env in (
            ("key_id", "key_id_env", KEY_ID_ENV),
            ("secret_key", "secret_key_env", SECRET_KEY_ENV),
        ):
            value = _plain_secret(data.get(field))
            if value is None:
                name = data.get(env_field, default_env)
                if isinstance(name, str) and name:
                    value = _plain_secret(os.environ.get(name))
            data[field] = value
        if data.get("base_url") is None:
            data["base_url"] = LIVE_URL if data.get("paper", True) is False else PAPER_URL
        if data.get("data_url") is None:
            base = data["base_url"]
            data["data_url"] = base if isinstance(base, str) and _is_loopback(base) else DATA_URL
        return data

    @field_validator("base_url", "data_url", mode="before")
    @classmethod
    def _normalize_url(cls, value: Any) -> Any:
        """An http(s) root URL: no trailing slash, no ``/v2`` (added where needed)."""
        if not isinstance(value, str):
            return value  # the str field reports the type error
        text = value.strip()
        shown = REDACTED if "@" in text else text  # user:password@host stays hidden

        def bad(reason: str) -> PydanticCustomError:
            return field_error("", shown, reason)

        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 -- raises ValueError for a bad port
        except ValueError as exc:
            raise bad(f"not a valid URL: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad("must be an http(s) URL such as https://paper-api.alpaca.markets")
        if parts.username is not None or parts.password is not None:
            raise bad("must not contain credentials (use key_id/secret_key)")
        if parts.query or parts.fragment:
            raise bad("must not have a query string or fragment")
        path = parts.path.rstrip("/")
        if path.endswith("/v2"):
            path = path[: -len("/v2")]
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    @model_validator(mode="after")
    def _paper_matches_endpoint(self) -> Self:
        """Refuse a paper config on the live endpoint (and the reverse): money is at stake."""
        host = urlsplit(self.base_url).hostname
        if self.paper and host == _LIVE_HOST:
            raise field_error(
                "base_url",
                self.base_url,
                "is Alpaca's live endpoint (real money) but paper is true; "
                "set paper: false to trade live",
            )
        if not self.paper and host == _PAPER_HOST:
            raise field_error(
                "base_url",
                self.base_url,
                "is Alpaca's paper endpoint but paper is false; drop base_url to trade live",
            )
        return self

    # ------------------------------------------------------------------------------ URLs

    @property
    def trading_url(self) -> str:
        """REST root of the trading API, e.g. ``https://paper-api.alpaca.markets/v2``."""
        return f"{self.base_url}/v2"

    @property
    def trade_stream_url(self) -> str:
        """The ``trade_updates`` WebSocket, e.g. ``wss://paper-api.alpaca.markets/stream``."""
        return f"{_ws(self.base_url)}/stream"

    @property
    def data_stream_url(self) -> str:
        """The market-data WebSocket for :attr:`feed`, e.g.
        ``wss://stream.data.alpaca.markets/v2/iex`` (Alpaca serves it on ``stream.`` + the data
        host; any other ``data_url``, a loopback server say, serves it itself)."""
        host = urlsplit(self.data_url).hostname
        if host in _ALPACA_DATA_HOSTS:
            return f"wss://stream.{host}/v2/{self.feed}"
        return f"{_ws(self.data_url)}/v2/{self.feed}"

    # ------------------------------------------------------------------------------ keys

    @property
    def has_keys(self) -> bool:
        """Whether both keys are present."""
        return self.key_id is not None and self.secret_key is not None

    def require_keys(self) -> None:
        """Raise :class:`ConfigError` naming the environment variable of each missing key."""
        missing: list[tuple[str, Any, str]] = []
        if self.key_id is None:
            missing.append(
                ("key_id", None, f"missing: set the environment variable {self.key_id_env}")
            )
        if self.secret_key is None:
            missing.append(
                (
                    "secret_key",
                    None,
                    f"missing: set the environment variable {self.secret_key_env}",
                )
            )
        if missing:
            raise ConfigValidationError(missing)

    def _keys(self) -> tuple[str, str]:
        self.require_keys()
        assert self.key_id is not None and self.secret_key is not None
        return self.key_id.get_secret_value(), self.secret_key.get_secret_value()

    def auth_headers(self) -> dict[str, str]:
        """The REST authentication headers (plain keys: never log them)."""
        key_id, secret_key = self._keys()
        return {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret_key}

    def stream_auth(self) -> tuple[str, str]:
        """``(key_id, secret_key)`` in plain text, for the stream handshakes."""
        return self._keys()


# ---------------------------------------------------------------------------------- errors


def _reason(err: Mapping[str, Any]) -> str:
    if err["type"] == "string_pattern_mismatch":
        return "must be an environment variable name (letters, digits and _)"
    return error_reason(err, BrokerConfig.model_fields)


def _known_secrets(data: Any) -> frozenset[str]:
    """The keys a config input carries or points at (given, or in the environment)."""
    found: set[str] = set()
    names = {KEY_ID_ENV, SECRET_KEY_ENV}
    if isinstance(data, Mapping):
        for field in _SECRET_FIELDS:
            value = _plain_secret(data.get(field))
            if isinstance(value, str):
                found.add(value)
        for env_field in ("key_id_env", "secret_key_env"):
            name = data.get(env_field)
            if isinstance(name, str):
                names.add(name)
    for name in names:
        value = _plain_secret(os.environ.get(name))
        if isinstance(value, str):
            found.add(value)
    return frozenset(found)


def _scrub(text: str, secrets: frozenset[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _convert_validation_error(
    exc: ValidationError, secrets: frozenset[str] = frozenset()
) -> ConfigValidationError:
    """pydantic's errors as one :class:`ConfigError`, with anything secret-like redacted.

    Never shown: values of the key fields, of unknown fields (a misspelt ``secret_key`` is still
    a secret), of the whole input, and any value containing one of ``secrets`` (a key pasted
    into the wrong field).
    """
    items: list[tuple[str, Any, str]] = []
    for err in exc.errors(include_url=False):
        loc = tuple(str(p) for p in err["loc"])
        ctx = err.get("ctx") or {}
        value: Any
        if err["type"] == _FIELD_ERROR:  # our own: the value in it is meant to be shown
            sub = str(ctx.get("field", ""))
            field = ".".join(loc + ((sub,) if sub else ())) or "broker"
            value, reason = ctx.get("value"), str(ctx.get("reason"))
        else:
            field = ".".join(loc) or "broker"
            value = None if err["type"] == "missing" else err.get("input")
            if not loc or loc[0] in _SECRET_FIELDS or err["type"] == "extra_forbidden":
                value = REDACTED
            reason = _reason(err)
        if any(secret in str(value) or secret in repr(value) for secret in secrets):
            value = REDACTED
        items.append((_scrub(field, secrets), value, _scrub(reason, secrets)))
    return ConfigValidationError(items)
