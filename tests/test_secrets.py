"""Keys never leak: a whole live session with known fake keys, then a search for them in every
log line, every file the run wrote (results, report, journal), the console output and the
messages of the errors a bad key causes."""

from __future__ import annotations

import asyncio
import logging
import textwrap
import traceback
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradeloop.cli import app
from tradeloop.execution.asynchronous.brokers.alpaca.broker import AlpacaBroker
from tradeloop.execution.asynchronous.components import BrokerConfig
from tradeloop.testing.alpaca import AlpacaServerThread

KEY = "PKFAKEKEYID42LEAKCHK"
SECRET = "sEcReT-never-leak-9f3a7c21d0"


def test_a_live_session_with_known_keys_leaks_them_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "out"
    errors: list[str] = []
    with AlpacaServerThread("sample:minute", port=0, speed=3000, keys=(KEY, SECRET)) as server:
        config = tmp_path / "live.yaml"
        config.write_text(
            textwrap.dedent(
                f"""
                execution: {{mode: live, cancel_on_stop: true}}
                broker: {{name: alpaca, base_url: "{server.url}"}}
                data: {{symbols: [ACME, BOLT]}}
                strategy: {{name: sma_cross, params: {{fast: 3, slow: 8}}}}
                """
            ),
            encoding="utf-8",
        )
        result = CliRunner().invoke(
            app, ["live", str(config), "--max-bars", "80", "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        console = result.output
        # the errors a wrong key causes, over REST and on the stream
        wrong = BrokerConfig(key_id=KEY, secret_key=SECRET + "x", base_url=server.url)
        broker = AlpacaBroker(wrong, symbols=["ACME"])

        async def fail() -> None:
            try:
                await broker.connect(lambda e: None)
            finally:
                await broker.close()

        with pytest.raises(Exception) as stream_error:
            asyncio.run(asyncio.wait_for(fail(), 20))
        errors += [str(stream_error.value), repr(stream_error.value)]
        errors += traceback.format_exception(stream_error.value)
        rest = AlpacaBroker(wrong, symbols=["ACME"])

        async def fail_rest() -> None:
            try:
                await rest.get_account()
            finally:
                await rest.close()

        with pytest.raises(Exception) as rest_error:
            asyncio.run(asyncio.wait_for(fail_rest(), 20))
        errors += [str(rest_error.value), repr(rest_error.value)]
        errors += traceback.format_exception(rest_error.value)
    written = sorted(p for p in out.rglob("*") if p.is_file())
    names = {p.name for p in written}
    assert {"report.html", "metrics.json", "orders.csv", "journal.sqlite"} <= names
    haystacks = {"console": console, "logs": caplog.text, "errors": "\n".join(errors)}
    for path in written:
        haystacks[str(path)] = path.read_bytes().decode("latin-1")
    for where, text in haystacks.items():
        assert SECRET not in text, f"the secret leaked into {where}"
        assert KEY not in text, f"the key id leaked into {where}"
    assert "not authorized" in haystacks["errors"]  # the errors say what is wrong, without it
