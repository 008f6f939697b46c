"""BrokerConfig: URLs for paper, live and a loopback server; keys from the environment; errors
as ConfigError naming the field; and the keys never showing up anywhere they could leak."""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tradeloop.errors import ConfigError
from tradeloop.execution.asynchronous.components import BrokerConfig

FAKE_KEY = "PKFAKE7QX2LM9ZT4KEYID"
FAKE_SECRET = "fAkEsEcReT/8h3Jq0PzWv6NbY1rKdLmXcT5sUe"
ENV_NAMES = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "MY_KEY", "MY_SECRET")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    yield


def keyed(**kw: Any) -> BrokerConfig:
    return BrokerConfig(key_id=FAKE_KEY, secret_key=FAKE_SECRET, **kw)


# -- URLs ------------------------------------------------------------------------------------


def test_paper_is_the_default() -> None:
    cfg = BrokerConfig()
    assert cfg.paper is True
    assert cfg.base_url == "https://paper-api.alpaca.markets"
    assert cfg.trading_url == "https://paper-api.alpaca.markets/v2"
    assert cfg.trade_stream_url == "wss://paper-api.alpaca.markets/stream"
    assert cfg.data_url == "https://data.alpaca.markets"
    assert cfg.data_stream_url == "wss://stream.data.alpaca.markets/v2/iex"
    assert (cfg.feed, cfg.rate_limit, cfg.timeout) == ("iex", 200, 10.0)


def test_live_only_with_paper_false() -> None:
    cfg = BrokerConfig(paper=False, feed="sip")
    assert cfg.trading_url == "https://api.alpaca.markets/v2"
    assert cfg.trade_stream_url == "wss://api.alpaca.markets/stream"
    assert cfg.data_stream_url == "wss://stream.data.alpaca.markets/v2/sip"


@pytest.mark.parametrize("paper", [True, False])
@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:8765", "http://127.0.0.1:8765/", "http://127.0.0.1:8765/v2/"]
)
def test_a_loopback_base_url_points_every_url_there(base: str, paper: bool) -> None:
    cfg = BrokerConfig(base_url=base, paper=paper)
    assert cfg.base_url == "http://127.0.0.1:8765"
    assert cfg.trading_url == "http://127.0.0.1:8765/v2"
    assert cfg.trade_stream_url == "ws://127.0.0.1:8765/stream"
    assert cfg.data_url == "http://127.0.0.1:8765"
    assert cfg.data_stream_url == "ws://127.0.0.1:8765/v2/iex"


@pytest.mark.parametrize("base", ["http://localhost:9000", "http://[::1]:9000"])
def test_other_loopback_spellings(base: str) -> None:
    cfg = BrokerConfig(base_url=base)
    assert cfg.data_url == base
    assert cfg.data_stream_url == base.replace("http", "ws") + "/v2/iex"


def test_a_given_data_url_wins_over_the_loopback_base() -> None:
    cfg = BrokerConfig(base_url="http://127.0.0.1:8765", data_url="https://127.0.0.1:9999")
    assert cfg.trading_url == "http://127.0.0.1:8765/v2"
    assert cfg.data_stream_url == "wss://127.0.0.1:9999/v2/iex"


def test_a_non_loopback_base_keeps_alpacas_data() -> None:
    cfg = BrokerConfig(base_url="https://proxy.example.com/alpaca/")
    assert cfg.trading_url == "https://proxy.example.com/alpaca/v2"
    assert cfg.trade_stream_url == "wss://proxy.example.com/alpaca/stream"
    assert cfg.data_stream_url == "wss://stream.data.alpaca.markets/v2/iex"


def test_paper_flag_must_match_alpacas_endpoint() -> None:
    with pytest.raises(ConfigError) as info:
        BrokerConfig(base_url="https://api.alpaca.markets")  # live URL, paper by default
    assert info.value.field == "base_url"
    assert "paper" in info.value.reason
    with pytest.raises(ConfigError) as info:
        BrokerConfig(paper=False, base_url="https://paper-api.alpaca.markets")
    assert info.value.field == "base_url"


# -- keys ------------------------------------------------------------------------------------


def test_keys_from_the_standard_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", FAKE_KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", f"  {FAKE_SECRET}\n")
    for cfg in (BrokerConfig(), BrokerConfig.from_env()):
        assert cfg.has_keys
        assert cfg.stream_auth() == (FAKE_KEY, FAKE_SECRET)
        assert cfg.auth_headers() == {
            "APCA-API-KEY-ID": FAKE_KEY,
            "APCA-API-SECRET-KEY": FAKE_SECRET,
        }


def test_keys_from_variables_the_user_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", FAKE_KEY)
    monkeypatch.setenv("MY_SECRET", FAKE_SECRET)
    monkeypatch.setenv("APCA_API_KEY_ID", "not-this-one")
    cfg = BrokerConfig.from_env(key_id_env="MY_KEY", secret_key_env="MY_SECRET")
    assert cfg.stream_auth() == (FAKE_KEY, FAKE_SECRET)


def test_given_keys_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", "env-key")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "env-secret")
    assert keyed().stream_auth() == (FAKE_KEY, FAKE_SECRET)
    assert BrokerConfig.from_env(secret_key=FAKE_SECRET).stream_auth() == ("env-key", FAKE_SECRET)


def test_missing_keys_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", "")  # set but empty counts as missing
    cfg = BrokerConfig(secret_key=FAKE_SECRET)
    assert not cfg.has_keys
    for call in (cfg.require_keys, cfg.auth_headers, cfg.stream_auth):
        with pytest.raises(ConfigError) as info:
            call()
        assert info.value.field == "key_id"
        assert info.value.value is None
        assert "APCA_API_KEY_ID" in str(info.value)
        assert FAKE_SECRET not in str(info.value)
    with pytest.raises(ConfigError, match="MY_SECRET"):
        BrokerConfig(key_id=FAKE_KEY, secret_key_env="MY_SECRET").require_keys()


def test_require_keys_passes_with_both() -> None:
    keyed().require_keys()


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "value"),
    [
        ({"paper": "false"}, "paper", "false"),
        ({"paper": 0}, "paper", 0),
        ({"paper": None}, "paper", None),
        ({"timeout": 0}, "timeout", 0),
        ({"timeout": -1.5}, "timeout", -1.5),
        ({"timeout": True}, "timeout", True),
        ({"timeout": float("inf")}, "timeout", float("inf")),
        ({"rate_limit": 0}, "rate_limit", 0),
        ({"rate_limit": "200"}, "rate_limit", "200"),
        ({"rate_limit": 2.5}, "rate_limit", 2.5),
        ({"feed": "otc"}, "feed", "otc"),
        ({"base_url": "ftp://example.com"}, "base_url", "ftp://example.com"),
        ({"base_url": "paper-api.alpaca.markets"}, "base_url", "paper-api.alpaca.markets"),
        ({"base_url": "http://127.0.0.1:99999"}, "base_url", "http://127.0.0.1:99999"),
        ({"base_url": "https://x.com/?a=1"}, "base_url", "https://x.com/?a=1"),
        ({"base_url": 8080}, "base_url", 8080),
        ({"data_url": "ws://127.0.0.1:1"}, "data_url", "ws://127.0.0.1:1"),
        ({"key_id_env": "1BAD NAME"}, "key_id_env", "1BAD NAME"),
        ({"secret_key_env": ""}, "secret_key_env", ""),
    ],
)
def test_bad_values_raise_config_error_naming_field_and_value(
    kwargs: dict[str, Any], field: str, value: Any
) -> None:
    with pytest.raises(ConfigError) as info:
        BrokerConfig(**kwargs)
    assert info.value.field == field
    assert info.value.value == value
    assert f"{field}=" in str(info.value)


def test_every_problem_is_listed() -> None:
    with pytest.raises(ConfigError) as info:
        BrokerConfig(timeout=0, feed="x", rate_limit=-1)
    fields = [f for f, _, _ in info.value.errors]  # type: ignore[attr-defined]
    assert sorted(fields) == ["feed", "rate_limit", "timeout"]


def test_model_validate_and_json_raise_config_error() -> None:
    assert BrokerConfig.model_validate({"feed": "sip"}).feed == "sip"
    assert BrokerConfig.model_validate_json('{"paper": false}').paper is False
    with pytest.raises(ConfigError) as info:
        BrokerConfig.model_validate({"timeout": "soon"})
    assert info.value.field == "timeout"
    with pytest.raises(ConfigError) as info:
        BrokerConfig.model_validate_json('{"feed": 3}')
    assert info.value.field == "feed"
    with pytest.raises(ConfigError) as info:
        BrokerConfig.model_validate(["not", "a", "mapping"])
    assert info.value.field == "broker"


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ConfigError) as info:
        BrokerConfig(timout=3)
    assert info.value.field == "timout"
    assert "timeout" in info.value.reason


def test_the_config_is_immutable() -> None:
    cfg = keyed()
    with pytest.raises(ConfigError) as info:
        cfg.paper = False  # type: ignore[misc]
    assert info.value.field == "paper"
    with pytest.raises(ConfigError):
        del cfg.base_url
    assert cfg.paper is True


# -- secrets ---------------------------------------------------------------------------------


def secret_free(text: str) -> bool:
    return FAKE_KEY not in text and FAKE_SECRET not in text


def test_keys_never_appear_in_repr_str_or_dumps() -> None:
    cfg = keyed()
    for text in (
        repr(cfg),
        str(cfg),
        f"{cfg}",
        f"{cfg!r}",
        repr(cfg.model_dump()),
        json.dumps(cfg.model_dump(mode="json")),
        cfg.model_dump_json(),
        repr(cfg.key_id),
        str(cfg.secret_key),
    ):
        assert secret_free(text), text
    assert cfg.stream_auth() == (FAKE_KEY, FAKE_SECRET)  # the keys are really in there


def all_text(exc: BaseException) -> str:
    """Every way an error might get printed or logged."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc)), repr(exc.args)]
    for name in ("field", "value", "reason", "errors"):
        parts.append(repr(getattr(exc, name, None)))
    return "\n".join(parts)


BAD_CALLS: list[tuple[str, Callable[[], object]]] = [
    ("bad timeout with keys", lambda: keyed(timeout=-1)),
    ("bad paper with keys", lambda: keyed(paper="yes")),
    ("key_id of the wrong type", lambda: BrokerConfig(key_id=[FAKE_KEY], secret_key=FAKE_SECRET)),
    ("secret_key as a mapping", lambda: BrokerConfig(secret_key={"value": FAKE_SECRET})),
    ("secret_key as a number", lambda: BrokerConfig(key_id=FAKE_KEY, secret_key=12345)),
    ("misspelt secret field", lambda: BrokerConfig(secret=FAKE_SECRET, key=FAKE_KEY)),
    ("credentials in the URL", lambda: keyed(base_url=f"https://{FAKE_KEY}:{FAKE_SECRET}@x.io")),
    ("credentials, bad scheme", lambda: BrokerConfig(base_url=f"ftp://u:{FAKE_SECRET}@x.io")),
    ("credentials, bad port", lambda: BrokerConfig(data_url=f"http://{FAKE_KEY}@x.io:99999")),
    ("live URL while paper", lambda: keyed(base_url="https://api.alpaca.markets")),
    ("not a mapping", lambda: BrokerConfig.model_validate(FAKE_SECRET)),
    (
        "mapping with errors",
        lambda: BrokerConfig.model_validate(
            {"key_id": FAKE_KEY, "secret_key": FAKE_SECRET, "feed": FAKE_SECRET}
        ),
    ),
    (
        "a key used as a field name",
        lambda: BrokerConfig.model_validate({FAKE_SECRET: 1, "secret_key": FAKE_SECRET}),
    ),
    ("broken JSON", lambda: BrokerConfig.model_validate_json(f'{{"secret_key": "{FAKE_SECRET}"')),
    (
        "JSON with a wrong type",
        lambda: BrokerConfig.model_validate_json(f'{{"key_id": ["{FAKE_KEY}"], "paper": 3}}'),
    ),
    ("assigning a key", lambda: setattr(keyed(), "secret_key", FAKE_SECRET)),
    ("missing key id", lambda: BrokerConfig(secret_key=FAKE_SECRET).require_keys()),
    ("missing secret", lambda: BrokerConfig(key_id=FAKE_KEY).auth_headers()),
]


@pytest.mark.parametrize("call", [c for _, c in BAD_CALLS], ids=[n for n, _ in BAD_CALLS])
def test_keys_never_appear_in_error_messages(call: Callable[[], object]) -> None:
    with pytest.raises(ConfigError) as info:
        call()
    assert secret_free(all_text(info.value)), all_text(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None  # the raw pydantic error (with inputs) is not chained


def test_keys_read_from_the_environment_never_appear_in_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", FAKE_KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", FAKE_SECRET)
    with pytest.raises(ConfigError) as info:
        BrokerConfig(timeout="x", feed=None, bogus=1)
    assert len(info.value.errors) == 3  # type: ignore[attr-defined]
    assert secret_free(all_text(info.value))
    # a key from the environment pasted into another field is hidden as well
    with pytest.raises(ConfigError) as info:
        BrokerConfig(feed=FAKE_KEY, key_id_env="APCA_API_KEY_ID")
    assert info.value.field == "feed"
    assert secret_free(all_text(info.value))
