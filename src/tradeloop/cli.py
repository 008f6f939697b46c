"""The ``tradeloop`` command: ``backtest``, ``demo``, ``live``, ``sweep``, ``validate`` and
``--version``.

Every tradeloop error (bad config, bad data, ...) ends the command with one red line
``error: <message>`` on stderr and exit code 2, never a traceback. An exception in a strategy
callback also exits 2, after the strategy's own traceback (its frames only) and the partial
results; Ctrl-C during a backtest writes the partial results and exits 130.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from tradeloop import __version__
from tradeloop.errors import ConfigError, StrategyError, TradeloopError

if TYPE_CHECKING:
    from tradeloop.config import TradeloopConfig
    from tradeloop.data.feed import BarFeed
    from tradeloop.data.stream import BarDataset
    from tradeloop.results.result import BacktestResult

__all__ = ["app", "main"]

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # as a shell reports a process ended by SIGINT

app = typer.Typer(
    name="tradeloop",
    help="Backtest trading strategies fast; run them live on an asynchronous engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

# (label, metric key) rows of the summary table, in display order.
SUMMARY_ROWS: tuple[tuple[str, str], ...] = (
    ("Total return", "total_return"),
    ("CAGR", "cagr"),
    ("Sharpe", "sharpe"),
    ("Sortino", "sortino"),
    ("Max drawdown", "max_drawdown"),
    ("Win rate", "win_rate"),
    ("Trades", "num_trades"),
    ("Exposure", "exposure"),
    ("Turnover", "turnover"),
    ("Commission", "total_commission"),
    ("Final equity", "final_equity"),
)


class Timeframe(StrEnum):
    daily = "daily"
    minute = "minute"


DEMO_COSTS: dict[str, Any] = {
    "commission": {"type": "per_share", "rate": 0.005, "minimum": 1.0},
    "slippage": {"type": "percent", "rate": 0.0005},
}


def _stdout() -> Console:
    # Created per command (not at import) so it binds to the current sys.stdout, as test runners
    # swap it.
    return Console(highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def _errors_as_exit() -> Iterator[None]:
    """Turn tradeloop (and file system) errors into ``error: ...`` and exit code 2."""
    try:
        yield
    except TradeloopError as exc:
        _stderr().print(Text(f"error: {exc}", style="bold red"))
        raise typer.Exit(EXIT_ERROR) from None
    except OSError as exc:
        _stderr().print(Text(f"error: {exc}", style="bold red"))
        raise typer.Exit(EXIT_ERROR) from None


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"tradeloop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            help="Show the version and exit.",
            callback=_version_callback,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Backtest trading strategies on a fast synchronous engine."""


# ------------------------------------------------------------------------------------- helpers


def _fmt_ts(ns: int, *, time_of_day: bool = True) -> str:
    """A UTC timestamp (int ns) for display; the time is left out at midnight or if not wanted."""
    dt = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    if not time_of_day or dt.hour == dt.minute == dt.second == 0:
        return dt.date().isoformat()
    return dt.strftime("%Y-%m-%d %H:%M UTC")


def _describe_strategy(name: str, params: dict[str, Any]) -> str:
    inner = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return f"{name}({inner})"


class _RateColumn(ProgressColumn):
    """Bars per second, averaged over the run so far."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if not task.completed or elapsed <= 0:
            return Text("-- bars/s", style="progress.data.speed")
        return Text(f"{task.completed / elapsed:,.0f} bars/s", style="progress.data.speed")


class _Interrupted(Exception):
    """Ctrl-C during a backtest: carries the engine's partial results (``None`` if none)."""

    def __init__(self, result: BacktestResult | None) -> None:
        super().__init__("interrupted")
        self.result = result


def _run_engine(
    cfg: TradeloopConfig, feed: BarFeed | BarDataset, console: Console, quiet: bool
) -> BacktestResult:
    """Build the engine from ``cfg`` over ``feed`` and run it, with a progress bar unless quiet.

    Ctrl-C becomes :class:`_Interrupted` with the results so far; a strategy's exception comes
    out as the engine raises it, a :class:`~tradeloop.errors.StrategyError` holding them.
    """
    from tradeloop.config import build_engine_kwargs, build_strategy
    from tradeloop.execution.factory import create_sync_engine

    engine = create_sync_engine(feed, build_strategy(cfg), **build_engine_kwargs(cfg))
    try:
        if quiet:
            return engine.run()
        progress = Progress(
            TextColumn("[bold]backtest"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("bars"),
            _RateColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        with progress:
            task = progress.add_task("backtest", total=len(feed))

            def report(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            return engine.run(progress=report)
    except KeyboardInterrupt:
        raise _Interrupted(engine.partial_result) from None


def _summary_table(result: BacktestResult, metrics: dict[str, float], title: str | None) -> Table:
    from tradeloop.results.report import format_metric

    table = Table(title=title, title_justify="left", show_header=True, header_style="bold")
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    for label, key in SUMMARY_ROWS:
        table.add_row(label, format_metric(key, metrics.get(key, float("nan"))))
    rejected = len(result.rejected_orders)
    table.add_row("Rejected orders", f"{rejected:,} of {len(result.orders):,}")
    rate = result.bars_processed / result.elapsed_seconds if result.elapsed_seconds > 0 else 0.0
    table.add_row("Bars/s", f"{rate:,.0f}")
    return table


def _rejections_line(result: BacktestResult, top: int = 3) -> Text | None:
    """``N of M orders were rejected: reason (count), ...`` (the top reasons), or None."""
    from tradeloop.results.analysis import rejection_counts

    counts = rejection_counts(result.rejected_orders)
    if not counts:
        return None
    n = sum(c for _, c in counts)
    reasons = ", ".join(f"{kind} ({count:,})" for kind, count in counts[:top])
    more = f", {len(counts) - top} more reason(s)" if len(counts) > top else ""
    return Text(
        f"{n:,} of {len(result.orders):,} orders were rejected: {reasons}{more}", style="yellow"
    )


def _run_settings(cfg: TradeloopConfig) -> dict[str, Any]:
    """What the report and metrics.json record of the run's setup (``BacktestResult.settings``)."""
    ex = cfg.execution
    return {
        "data": cfg.data.source,
        "initial_cash": ex.initial_cash,
        "commission": cfg.costs.commission.model_dump(exclude_none=True),
        "slippage": cfg.costs.slippage.model_dump(exclude_none=True),
        "participation_rate": ex.participation_rate,
        "leverage": ex.leverage,
        "allow_short": ex.allow_short,
        "fractional": ex.fractional,
        "risk": cfg.risk.describe(),
    }


def _backtest(
    cfg: TradeloopConfig, out: Path | None, report: bool, quiet: bool, title: str
) -> dict[str, Path]:
    """Load data, run, write results (and the HTML report); print progress and a summary.

    If the strategy raises, or the run is interrupted (Ctrl-C), the results up to that point
    are written, marked partial, and the command exits 2 (the strategy's error, its traceback
    cut to the strategy's own frames) or 130 (interrupted).
    """
    console = _stdout()
    out_dir = out if out is not None else cfg.output_dir
    _check_out_dir(out_dir)  # before spending time on the data and the run
    feed = _load_source(cfg, console, quiet)
    try:
        result = _run_engine(cfg, feed, console, quiet)
    except StrategyError as err:
        tb = "".join(traceback.format_exception(err.error))
        _stderr().print(Text(tb.rstrip()), soft_wrap=True)
        _stderr().print(Text(f"error: {err}", style="bold red"))
        _write_partial(err.result, cfg, out_dir, report, title, _in_memory(feed))
        raise typer.Exit(EXIT_ERROR) from None
    except _Interrupted as stop:
        _stderr().print(Text("interrupted (Ctrl-C)", style="bold yellow"))
        _write_partial(stop.result, cfg, out_dir, report, title, _in_memory(feed))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    result.settings = _run_settings(cfg)
    return _write_outputs(result, out_dir, report, quiet, title, console, feed=_in_memory(feed))


def _in_memory(feed: BarFeed | BarDataset) -> BarFeed | None:
    """``feed`` if its bars are in memory, else ``None``: the report then leaves out the buy and
    hold benchmark and the price charts, which would need every close of a streamed dataset."""
    from tradeloop.data.feed import BarFeed

    return feed if isinstance(feed, BarFeed) else None


def _write_partial(
    result: BacktestResult | None,
    cfg: TradeloopConfig,
    out_dir: Path,
    report: bool,
    title: str,
    feed: BarFeed | None,
) -> None:
    """Write the results of a run that stopped early (marked partial) and say where."""
    err = _stderr()
    if result is None:
        err.print("nothing written: the run had not started", soft_wrap=True)
        return
    result.settings = _run_settings(cfg)
    _write_outputs(result, out_dir, report, True, title, err, feed=feed)
    upto = f" up to {_fmt_ts(result.equity_ts[-1])}" if len(result.equity_ts) else ""
    err.print(
        f"partial results ({result.bars_processed:,} bars{upto}) written to {out_dir}",
        soft_wrap=True,
    )


def _load_feed(cfg: TradeloopConfig, console: Console, quiet: bool, needed_by: str) -> BarFeed:
    """The bars loaded in memory, for ``needed_by`` (a streamed config is refused, naming it)."""
    from tradeloop.config import build_feed

    if quiet:
        return build_feed(cfg, needed_by)
    started = time.perf_counter()
    with console.status("loading data ..."):
        feed = build_feed(cfg, needed_by)
    _print_loaded(feed, console, started)
    return feed


def _load_source(cfg: TradeloopConfig, console: Console, quiet: bool) -> BarFeed | BarDataset:
    """What a backtest runs: the bars in memory, or (``data.stream``) a dataset read as it goes."""
    from tradeloop.config.data import build_source

    if quiet:
        return build_source(cfg)
    started = time.perf_counter()
    with console.status("loading data ..." if not cfg.data.stream else "opening data ..."):
        feed = build_source(cfg)
        total = feed.total_bars()  # a count (pushed-down filters) for a dataset: no bar read
    _print_loaded(feed, console, started, total)
    return feed


def _print_loaded(
    feed: BarFeed | BarDataset, console: Console, started: float, total: int | None = None
) -> None:
    from tradeloop.data.feed import BarFeed

    secs = f"({time.perf_counter() - started:.2f}s)"
    if isinstance(feed, BarFeed):
        first = _fmt_ts(feed.start, time_of_day=False)
        last = _fmt_ts(feed.end, time_of_day=False)
        console.print(
            f"loaded {len(feed):,} bars: {', '.join(feed.symbols)}, {first} to {last} {secs}",
            soft_wrap=True,
        )
        return
    count = "? bars" if total is None else f"{total:,} bars"
    console.print(
        f"streaming {count}: {', '.join(feed.symbols)}{_dataset_period(feed, ', ')}, "
        f"read as the run goes {secs}",
        soft_wrap=True,
    )


def _dataset_period(feed: BarDataset, sep: str) -> str:
    """The ``start``/``end`` filters of a dataset for display (its bars are not read for it)."""
    if feed.lo is None and feed.hi is None:
        return ""
    sec = 10**9  # whole seconds: a date-only end is the day's last nanosecond
    first = None if feed.lo is None else _fmt_ts(feed.lo // sec * sec, time_of_day=False)
    last = None if feed.hi is None else _fmt_ts(feed.hi // sec * sec, time_of_day=False)
    if first is None:
        return f"{sep}up to {last}"
    return f"{sep}{first} on" if last is None else f"{sep}{first} to {last}"


def _write_outputs(
    result: BacktestResult,
    out_dir: Path,
    report: bool,
    quiet: bool,
    title: str,
    console: Console,
    feed: BarFeed | None = None,
) -> dict[str, Path]:
    """Write result files (and the HTML report, with price charts when ``feed`` is given); print
    the summary unless quiet."""
    from tradeloop.results import compute_metrics, write_html_report, write_results

    metrics = compute_metrics(result)
    paths = write_results(result, out_dir, metrics)
    if report:
        paths["report"] = write_html_report(
            result, out_dir / "report.html", metrics, title=title, feed=feed
        )
    if quiet:
        return paths
    console.print(_describe_strategy(result.strategy_name, result.params), soft_wrap=True)
    console.print(_summary_table(result, metrics, title=None))
    rejections = _rejections_line(result)
    if rejections is not None:
        console.print(rejections, soft_wrap=True)
    console.print(f"results written to {out_dir}:", soft_wrap=True)
    for path in paths.values():
        console.print(f"  {path}", soft_wrap=True)
    return paths


def _check_out_dir(out_dir: Path) -> None:
    """Fail before any work if results could not be written to ``out_dir``."""
    probe = out_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError("out", str(out_dir), f"{probe} exists and is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError("out", str(out_dir), f"{probe} is not writable")


# ------------------------------------------------------------------------------------ commands


ConfigArg = Annotated[
    Path, typer.Argument(help="YAML config file.", metavar="CONFIG", show_default=False)
]
QuietOpt = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="No progress bar or summary: only print the files written."),
]


@app.command()
def backtest(
    config: ConfigArg,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output directory (default: output.dir of the config)."),
    ] = None,
    no_report: Annotated[
        bool, typer.Option("--no-report", help="Do not write report.html.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Run the backtest a config file describes and write its results."""
    with _errors_as_exit():
        from tradeloop.config import load_config

        cfg = load_config(config)
        from tradeloop.execution.factory import require_sync_mode

        require_sync_mode(cfg)  # refuse before spending time on loading data
        title = f"{cfg.strategy.strategy_class.__name__} - {cfg.name}"
        paths = _backtest(cfg, out, cfg.output.report and not no_report, quiet, title)
        if quiet:
            for path in paths.values():
                typer.echo(str(path))


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path(
        "results/demo"
    ),
    timeframe: Annotated[
        Timeframe, typer.Option("--timeframe", "-t", help="Embedded sample to use.")
    ] = Timeframe.daily,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only print the path of report.html.")
    ] = False,
) -> None:
    """Backtest an SMA crossover on the embedded sample data and write an HTML report."""
    with _errors_as_exit():
        from tradeloop.config import parse_config

        tf = timeframe.value
        cfg = parse_config(
            {
                "execution": {"mode": "sync", "initial_cash": 100_000, "participation_rate": 0.1},
                "data": {"sample": tf},
                "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 30}},
                "costs": DEMO_COSTS,
                "output": {"dir": str(out), "report": True},
            }
        )
        paths = _backtest(cfg, out, True, quiet, f"tradeloop demo: SMA crossover ({tf} sample)")
        if quiet:
            typer.echo(str(paths["report"]))
        else:
            _stdout().print(f"open the report: {paths['report']}", soft_wrap=True)


@app.command()
def live(
    config: ConfigArg,
    max_bars: Annotated[
        int | None,
        typer.Option("--max-bars", "-n", min=1, help="Stop after this many bars (default: none)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output directory (default: output.dir of the config)."),
    ] = None,
    no_report: Annotated[
        bool, typer.Option("--no-report", help="Do not write report.html.")
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No status display or summary; print the files written."
        ),
    ] = False,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Broker URL, overriding broker.base_url (e.g. the loopback server's "
            "http://127.0.0.1:PORT).",
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            min=1,
            max=65535,
            help="TWS / IB Gateway API port, overriding broker.port (broker ib; e.g. the port "
            "of `tradeloop ib-server`).",
        ),
    ] = None,
) -> None:
    """Run a strategy on the asynchronous engine against the configured broker (mode: live).

    A status display shows equity, positions, open orders, the connection and the last event.
    Ctrl-C stops cleanly: on_stop runs, open orders are canceled if execution.cancel_on_stop, and
    the results and report are written as for a backtest.
    """
    with _errors_as_exit():
        from tradeloop.config import load_config

        cfg = load_config(config)
        if base_url is not None:
            from tradeloop.config import AlpacaBrokerConfig
            from tradeloop.config.broker import BinanceBrokerConfig

            if not isinstance(cfg.broker, AlpacaBrokerConfig | BinanceBrokerConfig):
                raise ConfigError(
                    "--base-url", base_url, f"does not apply to broker {cfg.broker.name!r}"
                )
            cfg.broker.base_url = base_url
        if port is not None:
            from tradeloop.config.broker import IBBrokerConfig

            if not isinstance(cfg.broker, IBBrokerConfig):
                raise ConfigError("--port", port, f"does not apply to broker {cfg.broker.name!r}")
            cfg.broker.port = port
        if cfg.execution.mode != "async":
            raise ConfigError(
                "execution.mode",
                cfg.execution.mode_input,
                "`tradeloop live` runs mode async/live; run mode sync with `tradeloop backtest`",
            )
        from tradeloop.execution.factory import create_engine, require_async_available

        require_async_available("execution.mode", cfg.execution.mode_input)
        out_dir = out if out is not None else cfg.output_dir
        _check_out_dir(out_dir)
        from tradeloop.cli_live import run_live
        from tradeloop.config.broker import REPLAY_NEEDS_MEMORY
        from tradeloop.execution.asynchronous.engine import AsyncExecutionEngine

        console = _stdout()
        feed = (
            _load_feed(cfg, console, quiet, REPLAY_NEEDS_MEMORY)
            if cfg.broker.name == "simulated"
            else None
        )
        engine = create_engine(cfg, feed=feed, out_dir=out_dir)
        assert isinstance(engine, AsyncExecutionEngine)
        title = f"{cfg.strategy.strategy_class.__name__} - {cfg.name}"
        run = run_live(engine, max_bars=max_bars, console=console, quiet=quiet, title=title)
        if run.interrupted and not quiet:
            console.print("stopped by Ctrl-C: results cover the bars processed so far")
        paths = _write_outputs(
            run.result, out_dir, cfg.output.report and not no_report, quiet, title, console
        )
        if quiet:
            for path in paths.values():
                typer.echo(str(path))


# the options the three loopback servers share (each command sets its own default port)
_PortOpt = Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port.")]
_DataOpt = Annotated[
    str,
    typer.Option("--data", "-d", help="Bars to replay: sample:minute, sample:daily or a bar file."),
]
_SpeedOpt = Annotated[
    float,
    typer.Option(
        "--speed",
        "-s",
        min=0,
        help="Replay pace, x the bars' own clock (0: the bars advance only when stepped).",
    ),
]
_MaxSecondsOpt = Annotated[
    float, typer.Option("--max-seconds", min=1, help="Stop after this long, whatever.")
]
_LingerOpt = Annotated[
    float, typer.Option("--linger", min=0, help="Seconds to stay up after the replay ends.")
]
_CashOpt = Annotated[
    float, typer.Option("--cash", min=1, help="The account's cash (Binance: its USDT balance).")
]
_FaultSeedOpt = Annotated[
    int | None, typer.Option("--fault-seed", help="Seed of the fault plan (reproducible).")
]


@app.command("alpaca-server")
def alpaca_server(
    port: _PortOpt = 8765,
    data: _DataOpt = "sample:minute",
    speed: _SpeedOpt = 60.0,
    max_seconds: _MaxSecondsOpt = 3600.0,
    linger: _LingerOpt = 30.0,
    cash: _CashOpt = 100_000.0,
    faults: Annotated[
        str | None,
        typer.Option(
            "--faults",
            help="Inject faults, e.g. 'rate_limit=0.02,error_after_accept=0.05,drop_stream=0.01'"
            " (kinds: rate_limit, error_after_accept, timeout_after_accept, drop_stream, "
            "reject_reconnect, duplicate_event, reorder_events, unknown_event, malformed_json).",
        ),
    ] = None,
    fault_seed: _FaultSeedOpt = None,
) -> None:
    """Run a loopback Alpaca-compatible server on 127.0.0.1 (no account, no network).

    It speaks Alpaca's Trading API v2, the trade_updates stream and the market-data stream,
    replays the bars and fills orders with tradeloop's own matching. Point `tradeloop live
    --base-url`, alpaca-py (url_override) or any client at it; its test keys are public.
    """
    with _errors_as_exit():
        from tradeloop.execution.factory import require_async_available

        require_async_available("alpaca-server", "aiohttp")
        from tradeloop.testing.alpaca.cli import run_server

        run_server(
            port,
            data,
            speed,
            max_seconds,
            linger=linger,
            initial_cash=cash,
            faults=faults,
            fault_seed=fault_seed,
            echo=typer.echo,
        )


@app.command("binance-server")
def binance_server(
    port: _PortOpt = 8766,
    data: _DataOpt = "sample:minute",
    speed: _SpeedOpt = 60.0,
    max_seconds: _MaxSecondsOpt = 3600.0,
    linger: _LingerOpt = 30.0,
    cash: _CashOpt = 100_000.0,
    faults: Annotated[
        str | None,
        typer.Option(
            "--faults",
            help="Inject faults, e.g. 'rate_limit=0.02,error_after_accept=0.05,drop_stream=0.01'"
            " (kinds: rate_limit, error_after_accept, timeout_after_accept, drop_stream, "
            "duplicate_event, unknown_event, malformed_json).",
        ),
    ] = None,
    fault_seed: _FaultSeedOpt = None,
) -> None:
    """Run a loopback Binance spot server on 127.0.0.1 (no account, no network).

    It speaks the REST subset, WebSocket API user-data subscription and kline streams that
    ccxt's binance uses, lists the data's symbols as USDT pairs (ACME -> ACMEUSDT), replays the
    bars and fills orders with tradeloop's own matching. Point `tradeloop live --base-url`
    (broker binance) or ccxt at it; its test keys are public.
    """
    with _errors_as_exit():
        from tradeloop.execution.factory import require_async_available

        require_async_available("binance-server", "aiohttp")
        from tradeloop.testing.binance.cli import run_server

        run_server(
            port,
            data,
            speed,
            max_seconds,
            linger=linger,
            initial_cash=cash,
            faults=faults,
            fault_seed=fault_seed,
            echo=typer.echo,
        )


@app.command("ib-server")
def ib_server(
    port: _PortOpt = 7497,
    data: _DataOpt = "sample:minute",
    speed: _SpeedOpt = 60.0,
    max_seconds: _MaxSecondsOpt = 3600.0,
    linger: _LingerOpt = 30.0,
    cash: _CashOpt = 100_000.0,
    faults: Annotated[
        str | None,
        typer.Option(
            "--faults",
            help="Inject faults, e.g. 'drop_connection=0.02,reject=0.01,seed=7' (kinds: "
            "drop_connection, reject, delay, restart, connectivity).",
        ),
    ] = None,
) -> None:
    """Run a loopback fake of TWS / IB Gateway on 127.0.0.1 (no account, no network).

    It speaks the TWS socket protocol (server version 178 or 157), replays the bars as
    real-time bars and fills orders with tradeloop's own matching. Point `tradeloop live
    --port` (broker ib) or ib_async at it.
    """
    with _errors_as_exit():
        from tradeloop.testing.ib.cli import run_server

        run_server(
            port,
            data,
            speed,
            max_seconds,
            linger=linger,
            initial_cash=cash,
            faults=faults,
            echo=typer.echo,
        )


@app.command()
def orders(
    journal: Annotated[
        Path,
        typer.Argument(
            help="A live run's order journal (journal.sqlite).",
            metavar="JOURNAL",
            show_default=False,
        ),
    ],
    open_only: Annotated[bool, typer.Option("--open", help="Only the orders still open.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per order.")] = False,
) -> None:
    """List the orders a live run journaled and their states (also after a crash)."""
    with _errors_as_exit():
        from tradeloop.cli_orders import show_orders

        show_orders(journal, open_only=open_only, as_json=as_json, console=_stdout())


@app.command()
def validate(config: ConfigArg) -> None:
    """Check a config file and its data without running anything."""
    with _errors_as_exit():
        from tradeloop.config import (
            AlpacaBrokerConfig,
            build_commission,
            build_slippage,
            build_strategy,
            load_config,
        )
        from tradeloop.config.data import build_source
        from tradeloop.data.feed import BarFeed

        cfg = load_config(config)
        if cfg.execution.mode != "sync" and cfg.broker.name == "simulated":
            from tradeloop.config.broker import REPLAY_NEEDS_MEMORY
            from tradeloop.config.data import require_in_memory

            require_in_memory(cfg, REPLAY_NEEDS_MEMORY)
        console = _stdout()
        feed = build_source(cfg) if cfg.data.sources else None
        strategy_cls = cfg.strategy.strategy_class
        params = build_strategy(cfg).params
        ex = cfg.execution
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("config", f"{config} is valid")
        grid.add_row(
            "mode", ex.mode if ex.mode == ex.mode_input else f"{ex.mode_input} ({ex.mode})"
        )
        grid.add_row("data", cfg.data.source)
        if feed is not None:
            if isinstance(feed, BarFeed):
                counts = {s: len(feed[s]) for s in feed.symbols}
                how, period = "", f"{_fmt_ts(feed.start)} to {_fmt_ts(feed.end)}"
            else:  # data.stream: counted, not read
                counts = feed.bars_per_symbol()
                how = ", streamed"
                period = _dataset_period(feed, "") or "all of the data (read as the run goes)"
            per_symbol = ", ".join(f"{s} {counts.get(s, 0):,}" for s in feed.symbols)
            grid.add_row("symbols", ", ".join(feed.symbols))
            grid.add_row("bars", f"{sum(counts.values()):,} ({per_symbol}){how}")
            grid.add_row("period", period)
        else:
            grid.add_row("symbols", ", ".join(cfg.data.symbols or ()))
        grid.add_row(
            "strategy",
            f"{cfg.strategy.name} -> {_describe_strategy(strategy_cls.__name__, params)}",
        )
        simulated = not isinstance(cfg.broker, AlpacaBrokerConfig) or ex.mode == "sync"
        grid.add_row(
            "account" if simulated else "account (not used: the broker's)",
            f"cash {ex.initial_cash:,.2f}, leverage {ex.leverage:g}, "
            f"short {'allowed' if ex.allow_short else 'not allowed'}, "
            f"participation {'none' if ex.participation_rate is None else ex.participation_rate}"
            f"{', fractional' if ex.fractional else ''}",
        )
        grid.add_row("costs", f"{build_commission(cfg)!r}, {build_slippage(cfg)!r}")
        grid.add_row("risk", cfg.risk.describe())
        grid.add_row(
            "output", f"{cfg.output_dir}{' (with report.html)' if cfg.output.report else ''}"
        )
        if ex.mode != "sync":
            desc: str = cfg.broker.name
            if isinstance(cfg.broker, AlpacaBrokerConfig):
                where = cfg.broker.base_url or ("paper API" if cfg.broker.paper else "LIVE API")
                desc = f"alpaca ({where}; keys from ${cfg.broker.key_id_env})"
            grid.add_row("broker", desc)
        console.print(grid, soft_wrap=True)
        if ex.mode != "sync":
            from tradeloop.execution.factory import async_available

            if not async_available():
                _stderr().print(
                    Text(
                        f"warning: mode {ex.mode_input!r} needs aiohttp: "
                        "pip install 'tradeloop[live]'",
                        style="yellow",
                    )
                )


# --------------------------------------------------------------------------------------- sweep


class _RunsRateColumn(ProgressColumn):
    """Runs per second, averaged over the sweep so far."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if not task.completed or elapsed <= 0:
            return Text("-- runs/s", style="progress.data.speed")
        return Text(f"{task.completed / elapsed:,.1f} runs/s", style="progress.data.speed")


@contextmanager
def _runs_progress(console: Console, label: str, quiet: bool) -> Iterator[Any]:
    """A progress bar over runs (``None`` when quiet); yields the sweep's progress callback."""
    if quiet:
        yield None
        return
    progress = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TextColumn("runs"),
        _RunsRateColumn(),
        TextColumn("{task.fields[failed]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )
    failed = 0
    with progress:
        task = progress.add_task(label, total=None, failed="")

        def report(done: int, total: int, outcome: Any) -> None:
            nonlocal failed
            failed += 0 if outcome.ok else 1
            progress.update(
                task, completed=done, total=total, failed=f"{failed} failed" if failed else ""
            )

        yield report


def _fmt_param(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _top_table(res: Any, n: int) -> Table:
    from tradeloop.results.report import format_metric

    table = Table(
        title=f"top {n} of {len(res.table):,} runs by {res.objective}",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("#", justify="right")
    for p in res.params:
        table.add_column(p, justify="right")
    metrics = [res.objective] if res.objective in res.table.columns else ["objective"]
    metrics += [
        m for m in ("sharpe", "total_return", "max_drawdown", "num_trades") if m not in metrics
    ]
    for m in metrics:
        table.add_column(m, justify="right")
    for _, row in res.top(n).iterrows():
        cells = [str(row["rank"]), *(_fmt_param(row[p]) for p in res.params)]
        cells += [format_metric(m, float(row[m])) for m in metrics]
        table.add_row(*cells)
    return table


def _print_failures(res: Any, console: Console, limit: int = 3) -> None:
    failures = res.failures
    if failures.empty:
        return
    console.print(Text(f"{len(failures):,} of {len(res.table):,} runs failed:", style="yellow"))
    for _, row in failures.head(limit).iterrows():
        params = ", ".join(f"{p}={_fmt_param(row[p])}" for p in res.params)
        console.print(
            Text(f"  run {row['run']} ({params}): {row['error']}", style="yellow"), soft_wrap=True
        )
    if len(failures) > limit:
        console.print(
            Text(f"  ... and {len(failures) - limit} more (see the table)", style="yellow")
        )


def _wf_table(wf: Any) -> Table:
    from tradeloop.results.report import format_metric

    table = Table(
        title=f"walk-forward: {len(wf.windows)} {wf.mode} windows "
        f"({wf.in_sample} in-sample / {wf.out_of_sample} out-of-sample)",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("metric")
    table.add_column("in-sample", justify="right")
    table.add_column("out-of-sample", justify="right")
    table.add_column("stitched OOS", justify="right")
    for key, row in wf.summary.iterrows():
        fmt_key = wf.objective if key == "objective" else str(key)
        label = f"{key} ({wf.objective})" if key == "objective" else str(key)
        table.add_row(
            label,
            *(
                format_metric(fmt_key, float(row[c]))
                for c in ("in_sample", "out_of_sample", "out_of_sample_stitched")
            ),
        )
    return table


@app.command("sweep")
def sweep_command(
    config: ConfigArg,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output directory (default: output.dir of the config)."),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option("--executor", "-e", help="local | ray | serial (default: sweep.executor)."),
    ] = None,
    max_workers: Annotated[
        int | None, typer.Option("--max-workers", "-j", min=1, help="Worker processes.")
    ] = None,
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster address (executor ray).")
    ] = None,
    no_walk_forward: Annotated[
        bool, typer.Option("--no-walk-forward", help="Skip sweep.walk_forward.")
    ] = False,
    top: Annotated[
        int | None, typer.Option("--top", min=1, help="Runs in the summary (default: sweep.top).")
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Run the parameter sweep of a config's sweep: section (and its walk-forward analysis).

    Writes sweep.csv, sweep.parquet (with pyarrow) and sweep.html (heatmaps of the objective,
    the top runs, the failures); with sweep.walk_forward also walkforward.csv (in-sample vs
    out-of-sample per window), walkforward_summary.csv, walkforward_equity.csv (the stitched
    out-of-sample equity) and walkforward.html. A failing parameter set is reported with its
    error; Ctrl-C writes what finished and exits 130.
    """
    with _errors_as_exit():
        from tradeloop.config import load_config

        cfg = load_config(config)
        s = cfg.sweep
        if s is None:
            raise ConfigError(
                "sweep", None, "the config has no sweep: section (see examples/sweep.yaml)"
            )
        ex_name = executor if executor is not None else s.executor
        if ex_name not in ("local", "ray", "serial"):
            raise ConfigError("--executor", ex_name, "must be one of local, ray, serial")
        workers = max_workers if max_workers is not None else s.max_workers
        addr = address if address is not None else s.address
        n_top = top if top is not None else s.top
        out_dir = out if out is not None else cfg.output_dir
        _check_out_dir(out_dir)
        console = _stdout()
        feed = _load_feed(
            cfg, console, quiet, "`tradeloop sweep` (its runs share the bars as arrays)"
        )
        _run_sweep(cfg, feed, ex_name, workers, addr, out_dir, n_top, quiet, console)
        wf = s.walk_forward
        if wf is not None and not no_walk_forward:
            _run_walk_forward(cfg, feed, ex_name, workers, addr, out_dir, quiet, console)


def _sweep_kwargs(cfg: TradeloopConfig, ex: str, workers: int | None, addr: str | None) -> Any:
    s = cfg.sweep
    assert s is not None
    return {
        "grid": s.grid,
        "objective": s.objective,
        "maximize": s.maximize,
        "constraint": s.constraint,
        "n_samples": s.n_samples,
        "seed": s.seed,
        "executor": ex,
        "max_workers": workers,
        "address": addr,
        "field_prefix": "sweep.",
    }


def _run_sweep(
    cfg: TradeloopConfig,
    feed: BarFeed,
    ex: str,
    workers: int | None,
    addr: str | None,
    out_dir: Path,
    n_top: int,
    quiet: bool,
    console: Console,
) -> None:
    from tradeloop.sweep import SweepInterrupted, sweep

    s = cfg.sweep
    assert s is not None
    title = f"Parameter sweep: {cfg.strategy.strategy_class.__name__} - {cfg.name}"
    interrupted = False
    with _runs_progress(console, "sweep", quiet) as report:
        try:
            res = sweep(cfg, data=feed, progress=report, **_sweep_kwargs(cfg, ex, workers, addr))
        except SweepInterrupted as stop:
            res, interrupted = stop.result, True
    paths = res.write(out_dir, title, s.heatmap)
    if quiet:
        for path in paths.values():
            typer.echo(str(path))
    else:
        rate = len(res.table) / res.elapsed if res.elapsed > 0 else 0.0
        console.print(
            f"{len(res.table):,} runs of {res.strategy} on {res.executor} "
            f"({res.workers} workers) in {res.elapsed:,.1f}s ({rate:,.1f} runs/s)",
            soft_wrap=True,
        )
        if not res.top(1).empty:
            console.print(_top_table(res, n_top))
            best = ", ".join(f"{k}={_fmt_param(v)}" for k, v in (res.best_params or {}).items())
            console.print(f"best: {best}", soft_wrap=True)
        _print_failures(res, console)
        if "parquet" not in paths:
            console.print("pyarrow is not installed: CSV only (pip install 'tradeloop[parquet]')")
        console.print(f"results written to {out_dir}:", soft_wrap=True)
        for path in paths.values():
            console.print(f"  {path}", soft_wrap=True)
    if interrupted:
        _stderr().print(
            Text(
                f"interrupted (Ctrl-C): {len(res.table):,} of {res.total:,} runs finished",
                style="bold yellow",
            )
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    if res.best is None:
        first = res.failures["error"].iloc[0] if not res.failures.empty else "no objective value"
        raise ConfigError(
            "sweep.grid", s.grid, f"all {len(res.table):,} runs failed; the first: {first}"
        )


def _run_walk_forward(
    cfg: TradeloopConfig,
    feed: BarFeed,
    ex: str,
    workers: int | None,
    addr: str | None,
    out_dir: Path,
    quiet: bool,
    console: Console,
) -> None:
    from tradeloop.sweep import SweepInterrupted, walk_forward

    s = cfg.sweep
    assert s is not None and s.walk_forward is not None
    w = s.walk_forward
    title = f"Walk-forward: {cfg.strategy.strategy_class.__name__} - {cfg.name}"
    interrupted = False
    with _runs_progress(console, "walk-forward", quiet) as report:
        try:
            wf = walk_forward(
                cfg,
                data=feed,
                progress=report,
                in_sample=w.in_sample,
                out_of_sample=w.out_of_sample,
                mode=w.mode,
                windows_prefix="sweep.walk_forward.",
                **_sweep_kwargs(cfg, ex, workers, addr),
            )
        except SweepInterrupted as stop:
            wf, interrupted = stop.result, True
    paths = wf.write(out_dir, title)
    if quiet:
        for path in paths.values():
            typer.echo(str(path))
    else:
        console.print(_wf_table(wf))
        console.print(
            "in-sample: the chosen runs (mean over windows); out-of-sample: the same parameters "
            "on the next, unseen bars; stitched: the windows chained into one equity curve",
            style="dim",
            soft_wrap=True,
        )
        console.print(f"walk-forward written to {out_dir}:", soft_wrap=True)
        for path in paths.values():
            console.print(f"  {path}", soft_wrap=True)
    if interrupted:
        _stderr().print(Text("interrupted (Ctrl-C) during the walk-forward", style="bold yellow"))
        raise typer.Exit(EXIT_INTERRUPTED)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``tradeloop``)."""
    app(args=argv, prog_name="tradeloop")
