"""``tradeloop orders``: the journal reader of the command line (show_orders)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from tradeloop.cli_orders import JournalArg, JsonOpt, OpenOpt, show_orders
from tradeloop.errors import ConfigError, TradeloopError
from tradeloop.execution.types import Fill, Order, OrderSide, OrderStatus, OrderType
from tradeloop.persistence import JournalFormatError, OrderJournal

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
SEC = 1_000_000_000
BROKER_ID = "b1b2c3d4-aaaa-bbbb-cccc-0123456789ab"


def build_journal(path: Path) -> str:
    """Three orders: partially filled (with a broker id), rejected, new. Returns the run id."""
    with OrderJournal(path) as j:
        a = Order(
            "O000001", "ACME", OrderSide.BUY, 10.0, OrderType.LIMIT, limit_price=102.0,
            client_order_id=f"{j.run_id}-O000001", created_at=T0,
        )  # fmt: skip
        b = Order(
            "O000002", "BOLT", OrderSide.SELL, 3.0, client_order_id=f"{j.run_id}-O000002",
            created_at=T0 + SEC,
        )  # fmt: skip
        c = Order(
            "O000003", "ACME", OrderSide.BUY, 1.0, client_order_id=f"{j.run_id}-O000003",
            created_at=T0 + 2 * SEC,
        )  # fmt: skip
        for o in (a, b, c):
            j.record_intent(o)
        j.record_broker_id(a.client_order_id, BROKER_ID)
        j.record_fill(
            a.client_order_id,
            Fill(a.id, "ACME", OrderSide.BUY, 3.0, 101.0, 0.1, T0 + 3 * SEC, "E1"),
        )
        j.record_fill(
            a.client_order_id,
            Fill(a.id, "ACME", OrderSide.BUY, 1.0, 102.0, 0.1, T0 + 4 * SEC + 250_000_000, "E2"),
        )
        j.record_status(b.client_order_id, OrderStatus.REJECTED, T0 + 5 * SEC, reason="no shorts")
        j.set_mark(T0 + 6 * SEC)
        return j.run_id


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.db"


def render(path: Path, *, open_only: bool = False, as_json: bool = False, width: int = 80) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    show_orders(path, open_only=open_only, as_json=as_json, console=console)
    assert console.width == width  # left as it was found
    return out.getvalue()


def test_table_and_summary(journal_path: Path) -> None:
    run_id = build_journal(journal_path)
    text = render(journal_path)
    lines = text.splitlines()
    assert lines[0].strip() == str(journal_path)
    header = lines[1].split()
    assert header[:5] == ["Id", "Client", "id", "Broker", "id"]
    assert "Updated" in header and "Avg" in header and "Reason" in header
    rows = {line.split()[0]: line.split() for line in lines if line.startswith(" O0")}
    assert set(rows) == {"O000001", "O000002", "O000003"}
    assert rows["O000001"] == [
        "O000001", f"{run_id}-O000001", BROKER_ID, "ACME", "buy", "10", "limit",
        "partially_filled", "4/10", "101.25", "2023-11-14T22:13:24.250Z",
    ]  # fmt: skip
    assert rows["O000002"] == [
        "O000002", f"{run_id}-O000002", "-", "BOLT", "sell", "3", "market", "rejected", "0/3",
        "-", "no", "shorts", "2023-11-14T22:13:25Z",
    ]  # fmt: skip
    assert rows["O000003"][7:10] == ["new", "0/1", "-"]
    assert lines[-1] == (
        f"3 orders: 1 new, 1 partially_filled, 1 rejected; 2 fills; run {run_id}; "
        "mark 2023-11-14T22:13:26Z"
    )
    # into a file or a pipe the table keeps its natural width: no id is cut or folded
    assert max(len(line) for line in lines) > 80


def test_open_only(journal_path: Path) -> None:
    build_journal(journal_path)
    text = render(journal_path, open_only=True)
    assert "O000001" in text and "O000003" in text
    assert "O000002" not in text and "no shorts" not in text
    assert "3 orders: 1 new, 1 partially_filled, 1 rejected (2 open shown); 2 fills;" in text


def test_json_lines(journal_path: Path) -> None:
    run_id = build_journal(journal_path)
    lines = render(journal_path, as_json=True).splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["local_id"] for r in records] == ["O000001", "O000002", "O000003"]
    first = records[0]
    assert first["client_order_id"] == f"{run_id}-O000001"
    assert first["broker_order_id"] == BROKER_ID
    assert (first["status"], first["filled_qty"], first["qty"]) == ("partially_filled", 4.0, 10.0)
    assert first["avg_fill_price"] == 101.25 and first["limit_price"] == 102.0
    assert first["updated_at"] == "2023-11-14T22:13:24.250000Z"
    assert first["updated_at_ns"] == T0 + 4 * SEC + 250_000_000
    assert records[1]["reject_reason"] == "no shorts"
    assert records[1]["side"] == "sell" and records[1]["type"] == "market"
    open_records = [
        json.loads(x) for x in render(journal_path, as_json=True, open_only=True).split("\n") if x
    ]
    assert [r["local_id"] for r in open_records] == ["O000001", "O000003"]


def test_empty_journal(journal_path: Path) -> None:
    with OrderJournal(journal_path) as j:
        run_id = j.run_id
    text = render(journal_path)
    assert text.splitlines() == ["no orders", f"0 orders; 0 fills; run {run_id}; mark none"]
    assert render(journal_path, as_json=True) == ""


def test_no_open_orders(journal_path: Path) -> None:
    with OrderJournal(journal_path) as j:
        o = Order("O000001", "ACME", OrderSide.BUY, 1.0, client_order_id="r-1", created_at=T0)
        j.record_intent(o)
        j.record_status("r-1", OrderStatus.CANCELED, T0 + SEC)
    assert render(journal_path, open_only=True).splitlines()[0] == "no open orders"


def test_a_narrow_terminal_still_gets_whole_ids(journal_path: Path) -> None:
    run_id = build_journal(journal_path)
    out = io.StringIO()
    console = Console(file=out, width=60, force_terminal=True, color_system=None)
    show_orders(journal_path, open_only=False, as_json=False, console=console)
    assert console.width == 60
    [row] = [line for line in out.getvalue().splitlines() if line.startswith(" O000001")]
    assert f" {run_id}-O000001 " in row and f" {BROKER_ID} " in row
    assert row.rstrip().endswith("2023-11-14T22:13:24.250Z")


def test_reads_while_the_engine_writes(journal_path: Path) -> None:
    with OrderJournal(journal_path) as writer:
        writer.record_intent(
            Order("O000001", "ACME", OrderSide.BUY, 1.0, client_order_id="r-1", created_at=T0)
        )
        assert "r-1" in render(journal_path)
        writer.record_intent(
            Order("O000002", "ACME", OrderSide.BUY, 1.0, client_order_id="r-2", created_at=T0)
        )
        assert "r-2" in render(journal_path)
        writer.record_status("r-2", OrderStatus.ACCEPTED, T0 + 1)  # not blocked by the reader


def test_text_is_shown_as_is(tmp_path: Path) -> None:
    path = tmp_path / "[odd] journal.db"
    reason = "price [/bold] out of [red]band[/red] :warning: 5%"
    with OrderJournal(path) as j:
        o = Order("O000001", "ACME", OrderSide.BUY, 1.0, client_order_id="r-[1]", created_at=T0)
        j.record_intent(o)
        j.record_status("r-[1]", OrderStatus.REJECTED, T0 + SEC, reason=reason)
    text = render(path, width=200)
    assert reason in text and " r-[1] " in text
    assert text.splitlines()[0].strip() == str(path)


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(ConfigError) as info:
        render(missing)
    assert (info.value.field, info.value.value) == ("journal", str(missing))
    assert str(missing) in str(info.value) and "no such file" in str(info.value)
    assert not missing.exists()  # reading never creates a journal


def test_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a file") as info:
        render(tmp_path)
    assert info.value.value == str(tmp_path)


def test_not_a_journal(tmp_path: Path) -> None:
    bogus = tmp_path / "orders.csv"
    bogus.write_text("id,symbol\nO1,ACME\n")
    with pytest.raises(JournalFormatError) as info:
        render(bogus)
    assert isinstance(info.value, TradeloopError)
    assert str(bogus) in str(info.value)
    assert bogus.read_text() == "id,symbol\nO1,ACME\n"
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(JournalFormatError, match="empty"):
        render(empty)
    assert empty.stat().st_size == 0  # the reader wrote nothing: it opens read-only


# --- registered as the other commands are (the few lines cli.py needs) ------------------------


def make_app() -> typer.Typer:
    from tradeloop.cli import _errors_as_exit, _stdout

    app = typer.Typer()

    @app.command()
    def orders(journal: JournalArg, open_only: OpenOpt = False, as_json: JsonOpt = False) -> None:
        """Show the orders of a live run's journal."""
        with _errors_as_exit():
            show_orders(journal, open_only=open_only, as_json=as_json, console=_stdout())

    @app.command()
    def other() -> None:  # a second command, so typer keeps ``orders`` as a subcommand
        """Unused."""

    return app


def test_registered_command(journal_path: Path) -> None:
    run_id = build_journal(journal_path)
    runner = CliRunner()
    app = make_app()
    result = runner.invoke(app, ["orders", str(journal_path)])
    assert result.exit_code == 0, result.output
    assert f"run {run_id}" in result.stdout and BROKER_ID in result.stdout
    result = runner.invoke(app, ["orders", str(journal_path), "--open", "--json"])
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["local_id"] for x in result.stdout.splitlines()] == [
        "O000001",
        "O000003",
    ]
    missing = journal_path.parent / "missing.db"
    result = runner.invoke(app, ["orders", str(missing)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: journal={str(missing)!r}: no such file"
    bogus = journal_path.parent / "bogus.db"
    bogus.write_bytes(b"\x00" * 200)
    result = runner.invoke(app, ["orders", str(bogus)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: path={str(bogus)!r}: not a tradeloop journal")
