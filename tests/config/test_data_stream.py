"""``data.stream``: which configs stream, which are refused (and where), and what they build."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tradeloop.config import build_feed, parse_config
from tradeloop.config.data import build_source
from tradeloop.data.feed import BarFeed
from tradeloop.errors import ConfigError
from tradeloop.execution.factory import create_engine, create_sync_engine
from tradeloop.execution.synchronous import SyncExecutionEngine

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
from tradeloop.data.stream import BarDataset  # noqa: E402
from tradeloop.testing.bars import bars_table  # noqa: E402


def write_hive(root: Path, symbols: dict[str, int]) -> Path:
    """``root/symbol=NAME/part.parquet`` per symbol (``{name: bars}``)."""
    for i, (sym, n) in enumerate(symbols.items()):
        (root / f"symbol={sym}").mkdir(parents=True, exist_ok=True)
        pq.write_table(bars_table(sym, n, i), root / f"symbol={sym}" / "part.parquet")
    return root


def write_flat(path: Path, symbols: dict[str, int]) -> Path:
    """One Parquet file with a symbol column (the same bars as :func:`write_hive`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tables = [bars_table(s, n, i, with_symbol=True) for i, (s, n) in enumerate(symbols.items())]
    pq.write_table(pa.concat_tables(tables), path)
    return path


SYMS = {"ACME": 300, "BOLT": 250}


def cfg(data: dict[str, Any], base: Path, **sections: Any) -> Any:
    body = {"data": data, "strategy": {"name": "sma_cross", "params": {"fast": 5, "slow": 20}}}
    body.update(sections)
    return parse_config(body, base_dir=base)


def expect_error(data: dict[str, Any], base: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        cfg(data, base)
    return info.value


# ------------------------------------------------------------------------------------- accepted


def test_stream_defaults_to_false(tmp_path: Path) -> None:
    write_flat(tmp_path / "bars.parquet", SYMS)
    c = cfg({"path": "bars.parquet"}, tmp_path)
    assert c.data.stream is False
    assert isinstance(build_source(c), BarFeed)


@pytest.mark.parametrize("kind", ["file", "folder", "glob"])
def test_stream_accepts_a_file_a_folder_and_a_glob(tmp_path: Path, kind: str) -> None:
    write_hive(tmp_path / "hive", SYMS)
    write_flat(tmp_path / "flat" / "bars.parquet", SYMS)
    path = {"file": "flat/bars.parquet", "folder": "hive", "glob": "hive/symbol=*/*.parquet"}
    c = cfg({"path": path[kind], "stream": True}, tmp_path)
    assert c.data.stream is True
    assert "(streamed)" in c.data.source
    ds = build_source(c)
    assert isinstance(ds, BarDataset)
    assert ds.symbols == ("ACME", "BOLT")
    assert ds.total_bars() == 550
    assert ds.bars_per_symbol() == SYMS


def test_stream_passes_symbols_start_end_to_the_reader(tmp_path: Path) -> None:
    write_hive(tmp_path / "hive", SYMS)
    data = {"path": "hive", "stream": True, "symbols": ["BOLT"]}
    ds = build_source(cfg({**data, "start": "2020-01-12", "end": "2020-01-21"}, tmp_path))
    assert isinstance(ds, BarDataset)
    assert ds.symbols == ("BOLT",)
    assert ds.total_bars() == 10
    assert ds.bars_per_symbol() == {"BOLT": 10}


def test_stream_single_symbol_file_takes_data_symbol(tmp_path: Path) -> None:
    pq.write_table(bars_table("X", 40, 0), tmp_path / "x.parquet")
    ds = build_source(cfg({"path": "x.parquet", "stream": True, "symbol": "ACME"}, tmp_path))
    assert isinstance(ds, BarDataset)
    assert ds.symbols == ("ACME",)
    assert ds.bars_per_symbol() == {"ACME": 40}


# ------------------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("data", "field", "value", "reason"),
    [
        ({"sample": "daily", "stream": True}, "data.stream", True, "embedded sample"),
        ({"files": {"A": "a.parquet"}, "stream": True}, "data.stream", True, "symbol=NAME/"),
        ({"path": "hive", "stream": True, "resample": "1h"}, "data.resample", "1h", "not supp"),
        ({"stream": True, "symbols": ["A"]}, "data.stream", True, "needs data.path"),
        ({"path": "hive", "stream": "maybe"}, "data.stream", "maybe", "true or false"),
    ],
)
def test_stream_rejections_name_the_field(
    tmp_path: Path, data: dict[str, Any], field: str, value: Any, reason: str
) -> None:
    err = expect_error(data, tmp_path)
    assert err.field == field
    assert err.value == value
    assert reason in err.reason


def test_stream_needs_a_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "execution": {"mode": "live"},
                "broker": {"name": "alpaca"},
                "data": {"stream": True, "symbols": ["AAPL"]},
                "strategy": {"name": "sma_cross"},
            }
        )
    assert info.value.field == "data.stream"
    assert "needs data.path" in info.value.reason


@pytest.mark.parametrize(
    ("path", "reason"),
    [("missing", "no such file or folder"), ("hive/*.nothing", "no file matches the pattern")],
)
def test_stream_path_not_found_names_data_path(tmp_path: Path, path: str, reason: str) -> None:
    write_hive(tmp_path / "hive", SYMS)
    with pytest.raises(ConfigError) as info:
        build_source(cfg({"path": path, "stream": True}, tmp_path))
    assert info.value.field == "data.path"
    assert info.value.value == str(tmp_path / path)
    assert reason in info.value.reason


def test_a_folder_without_stream_says_to_stream_it(tmp_path: Path) -> None:
    write_hive(tmp_path / "hive", SYMS)
    with pytest.raises(ConfigError) as info:
        build_feed(cfg({"path": "hive"}, tmp_path))
    assert info.value.field == "data.path"
    assert "data.stream: true" in info.value.reason


def test_build_feed_refuses_a_streamed_config(tmp_path: Path) -> None:
    write_hive(tmp_path / "hive", SYMS)
    with pytest.raises(ConfigError) as info:
        build_feed(cfg({"path": "hive", "stream": True}, tmp_path))
    assert info.value.field == "data.stream"
    assert "build_source" in info.value.reason


def test_sweep_refuses_a_streamed_config(tmp_path: Path) -> None:
    from tradeloop.sweep import sweep

    write_hive(tmp_path / "hive", SYMS)
    c = cfg({"path": "hive", "stream": True}, tmp_path)
    with pytest.raises(ConfigError) as info:
        sweep(c, grid={"fast": [3, 5]}, executor="serial")
    assert info.value.field == "data.stream"
    assert "a sweep" in info.value.reason and "in memory" in info.value.reason


def test_simulated_broker_refuses_a_streamed_config(tmp_path: Path) -> None:
    pytest.importorskip("aiohttp")
    from tradeloop.config import build_broker

    write_hive(tmp_path / "hive", SYMS)
    c = cfg({"path": "hive", "stream": True}, tmp_path, execution={"mode": "async"})
    for build in (lambda: build_broker(c), lambda: create_engine(c)):
        with pytest.raises(ConfigError) as info:
            build()
        assert info.value.field == "data.stream"
        assert "broker: simulated" in info.value.reason


# ------------------------------------------------------------------------------------- engines


def test_create_engine_streams_and_equals_the_in_memory_run(tmp_path: Path) -> None:
    write_hive(tmp_path / "hive", SYMS)
    write_flat(tmp_path / "bars.parquet", SYMS)
    streamed = create_engine(cfg({"path": "hive", "stream": True}, tmp_path))
    loaded = create_engine(cfg({"path": "bars.parquet"}, tmp_path))
    assert isinstance(streamed, SyncExecutionEngine)
    assert isinstance(loaded, SyncExecutionEngine)
    a, b = streamed.run(), loaded.run()
    assert a.bars_processed == b.bars_processed == 550
    assert list(a.equity) == list(b.equity)
    assert [(f.symbol, f.ts, f.qty, f.price) for f in a.fills] == [
        (f.symbol, f.ts, f.qty, f.price) for f in b.fills
    ]
    assert len(a.fills) > 0


def test_create_sync_engine_takes_a_streamed_source(tmp_path: Path) -> None:
    from tradeloop.config import build_engine_kwargs, build_strategy

    write_hive(tmp_path / "hive", SYMS)
    c = cfg({"path": "hive", "stream": True, "end": "2020-06-30"}, tmp_path)
    engine = create_sync_engine(build_source(c), build_strategy(c), **build_engine_kwargs(c))
    result = engine.run()
    assert result.bars_processed == 2 * 181  # 2020-01-02 .. 2020-06-30, every day, both
