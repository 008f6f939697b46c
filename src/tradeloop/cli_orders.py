"""``tradeloop orders JOURNAL [--open] [--json]``: the orders of a live run's journal.

It opens the journal read-only, so it works while the engine is writing it. Registering it in
``cli.py`` takes a few lines (errors then print ``error: field=value: reason`` and exit 2)::

    from tradeloop.cli_orders import JournalArg, JsonOpt, OpenOpt

    @app.command()
    def orders(journal: JournalArg, open_only: OpenOpt = False, as_json: JsonOpt = False) -> None:
        \"\"\"Show the orders of a live run's journal (it may be running).\"\"\"
        with _errors_as_exit():
            from tradeloop.cli_orders import show_orders

            show_orders(journal, open_only=open_only, as_json=as_json, console=_stdout())

The table has one row per order (local id, client id, broker id, symbol, side, qty, type, status,
filled/qty, average price, reason, last update in ISO UTC) and a summary line (orders by status,
fills, run id, reconciliation mark). ``--json`` prints one JSON object per order instead (every
journal column, timestamps as ISO UTC strings and as ``*_ns`` integers), nothing else.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tradeloop.errors import ConfigError

if TYPE_CHECKING:
    from tradeloop.persistence.journal import JournalOrder

__all__ = [
    "COLUMNS",
    "JournalArg",
    "JsonOpt",
    "OpenOpt",
    "render_orders",
    "show_orders",
    "summary_line",
]

JournalArg = Annotated[
    Path,
    typer.Argument(help="Order journal of a live run (a SQLite file).", show_default=False),
]
OpenOpt = Annotated[bool, typer.Option("--open", help="Only orders still open.")]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="One JSON object per order instead of a table.")
]

COLUMNS: tuple[str, ...] = (
    "Id",
    "Client id",
    "Broker id",
    "Symbol",
    "Side",
    "Qty",
    "Type",
    "Status",
    "Filled",
    "Avg price",
    "Reason",
    "Updated (UTC)",
)

_STATUS_STYLE = {
    "new": "cyan",
    "accepted": "cyan",
    "partially_filled": "yellow",
    "filled": "green",
    "canceled": "dim",
    "expired": "dim",
    "replaced": "dim",
    "rejected": "red",
}


def _num(x: float | None) -> str:
    """A quantity or price without float noise: ``10``, ``101.25``, ``0.333333``; ``-`` if none."""
    if x is None:
        return "-"
    text = f"{x:,.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _when(ns: int) -> str:
    """ISO 8601 UTC to the millisecond (the fraction only when there is one)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    millis = rest // 1_000_000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def render_orders(orders: list[JournalOrder], title: str | None = None) -> Table:
    """The orders as a rich table (in journal order)."""
    table = Table(
        title=Text(title) if title is not None else None,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    right = {"Qty", "Filled", "Avg price"}
    for name in COLUMNS:
        table.add_column(name, justify="right" if name in right else "left", no_wrap=True)
    for o in orders:
        status = o.status.value
        cells = (
            o.local_id,
            o.client_order_id,
            o.broker_order_id or "-",
            o.symbol,
            o.side.value,
            _num(o.qty),
            o.type.value,
            status,
            f"{_num(o.filled_qty)}/{_num(o.qty)}",
            _num(o.avg_fill_price),
            o.reject_reason or "",
            _when(o.updated_at),
        )
        # Text, not str: a venue's reason (or any id) is shown as is, never read as rich markup
        styles = {7: _STATUS_STYLE.get(status, "")}
        table.add_row(*(Text(cell, style=styles.get(i, "")) for i, cell in enumerate(cells)))
    return table


def summary_line(
    orders: list[JournalOrder], fills: int, run_id: str, mark: int | None, shown: int
) -> str:
    """``4 orders: 1 accepted, 2 filled, 1 rejected; 3 fills; run ...; mark ...`` (every
    order of the journal, whatever is shown; ``shown`` when a filter hid some)."""
    from tradeloop.execution.types import OrderStatus

    counts = Counter(o.status for o in orders)
    by_status = ", ".join(f"{counts[s]} {s.value}" for s in OrderStatus if counts[s])
    head = f"{len(orders)} order{'' if len(orders) == 1 else 's'}"
    if by_status:
        head += f": {by_status}"
    if shown != len(orders):
        head += f" ({shown} open shown)"
    mark_text = _when(mark) if mark is not None else "none"
    return f"{head}; {fills} fill{'' if fills == 1 else 's'}; run {run_id}; mark {mark_text}"


def _print_table(console: Console, table: Table) -> None:
    """Print ``table`` at its natural width, wider than the console if need be, as ``ps`` or
    ``kubectl get`` do: no id or time is ever cut or folded (a narrow terminal wraps the lines;
    ``less -S`` shows them whole)."""
    natural = console.measure(table, options=console.options.update_width(10_000)).maximum
    width = console.width
    if natural <= width:
        console.print(table, highlight=False)
        return
    console.width = natural
    try:
        console.print(table, highlight=False)
    finally:
        console.width = width


def show_orders(path: Path | str, *, open_only: bool, as_json: bool, console: Console) -> None:
    """Print the orders of the journal at ``path``: a table and a summary line, or JSON lines.

    Raises :class:`~tradeloop.errors.ConfigError` naming the path when there is no such file,
    and :class:`~tradeloop.persistence.journal.JournalError` when it is not a journal.
    """
    journal_path = Path(path)
    if not journal_path.exists():
        raise ConfigError("journal", str(journal_path), "no such file")
    if not journal_path.is_file():
        raise ConfigError("journal", str(journal_path), "is not a file")
    from tradeloop.persistence.journal import OrderJournal

    with OrderJournal(journal_path, readonly=True) as journal:
        every = journal.orders()
        fills = len(journal.fills())
        run_id, mark = journal.run_id, journal.mark
    shown = [o for o in every if o.is_open] if open_only else every
    if as_json:
        for o in shown:
            console.out(json.dumps(o.to_dict()), highlight=False)
        return
    if shown:
        _print_table(console, render_orders(shown, title=str(journal_path)))
    else:
        console.print("no open orders" if open_only and every else "no orders")
    summary = summary_line(every, fills, run_id, mark, len(shown))
    console.print(Text(summary), soft_wrap=True, highlight=False)
