"""One run: the bars as flat arrays and back, the templates, errors as values."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from tradeloop.config import build_engine_kwargs, build_feed, parse_config
from tradeloop.data.sample import load_sample
from tradeloop.execution import SyncEngine
from tradeloop.results import compute_metrics
from tradeloop.strategies import SmaCross
from tradeloop.sweep.runner import (
    ConfigTemplate,
    FactoryTemplate,
    FeedArrays,
    RunSpec,
    factory_takes_feed,
    run_one,
)

from .conftest import small_config  # type: ignore[import-not-found]


def test_arrays_round_trip() -> None:
    feed = load_sample("daily")
    arrays = FeedArrays.from_feed(feed)
    back = arrays.to_feed()
    assert back.symbols == feed.symbols
    for sym in feed.symbols:
        for col in ("ts", "open", "high", "low", "close", "volume"):
            assert getattr(back[sym], col) == getattr(feed[sym], col)
    assert arrays.timestamps().size == len(feed.timeline()[0]) // len(feed.symbols)


def test_windows_cut_every_symbol() -> None:
    arrays = FeedArrays.from_feed(load_sample("daily"))
    t = arrays.timestamps()
    part = arrays.to_feed((int(t[10]), int(t[20])))
    for sym in part.symbols:
        assert part[sym].ts[0] >= t[10] and part[sym].ts[-1] < t[20]
    assert len(part) == 10 * 4


def _template(cfg: Any) -> ConfigTemplate:
    return ConfigTemplate(
        cfg.strategy.name, str(cfg.base_dir), dict(cfg.strategy.params), build_engine_kwargs(cfg)
    )


def test_run_one_matches_a_direct_backtest() -> None:
    cfg = parse_config(small_config())
    feed = build_feed(cfg)
    out = run_one(FeedArrays.from_feed(feed), _template(cfg), RunSpec(3, {"fast": 5}))
    assert out.ok and out.index == 3 and out.params == {"fast": 5}
    direct = SyncEngine(feed, SmaCross(fast=5, slow=30), **build_engine_kwargs(cfg)).run()
    assert out.metrics == compute_metrics(direct)
    assert out.equity is None


def test_run_one_reports_errors_and_returns_equity_when_asked() -> None:
    cfg = parse_config(small_config())
    arrays = FeedArrays.from_feed(build_feed(cfg))
    bad = run_one(arrays, _template(cfg), RunSpec(0, {"fast": 40}))  # fast >= slow
    assert not bad.ok and bad.metrics is None
    assert bad.error is not None and bad.error.startswith("ConfigError: strategy.params.fast=40")
    assert bad.traceback and "Traceback" in bad.traceback
    t = arrays.timestamps()
    good = run_one(arrays, _template(cfg), RunSpec(1, {}, (int(t[0]), int(t[100])), equity=True))
    assert good.equity_ts is not None and good.equity is not None
    assert len(good.equity) == 100 and good.initial_cash == 100_000


def _factory(params: dict[str, Any], feed: Any) -> SyncEngine:
    return SyncEngine(feed, SmaCross(**params), initial_cash=50_000)


def test_factory_template_and_pickling() -> None:
    assert factory_takes_feed(_factory)
    assert not factory_takes_feed(lambda params: None)
    arrays = FeedArrays.from_feed(load_sample("daily", symbols=["ACME"]))
    out = run_one(arrays, FactoryTemplate(_factory, pass_feed=True), RunSpec(0, {"fast": 5}))
    assert out.ok and out.metrics is not None
    cfg = parse_config(small_config())
    tpl = pickle.loads(pickle.dumps(_template(cfg)))
    assert tpl.strategy_class is SmaCross
    assert np.isfinite(out.metrics["sharpe"])
