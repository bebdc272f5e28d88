"""MLSignal: the live features equal training's through the engine; decisions follow p(up); shadow mode."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import pytest

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import run_backtest, sim_instruments
from abidance.config import parse_config
from abidance.core.clock import TestClock
from abidance.ml.dataset import build_dataset, market_arrays_from_bars
from abidance.ml.features import FeatureSpec, batch_features
from abidance.ml.labels import TripleBarrier
from abidance.ml.models import ModelFileError, load_model, save_model, train_model
from abidance.strategy.base import StrategyContext
from abidance.strategy.builtin import BUILTINS
from abidance.ml.ml_signal import MLSignal
from abidance.strategy.loader import load_strategy_class
from tests.kit import load_candles
from tests.unit.backtest.kit import research_risk

CONFIG = """
config_version = 1
[node]
mode = "live"
""" + research_risk() + """[[strategies]]
id = "ml"
class = "ml_signal"
symbols = ["ETHBTC"]
timeframe = "5m"
params = {{ model_path = "{path}", model_sha256 = "{sha}", min_confidence = {conf} }}
"""


@pytest.fixture(scope="module")
def eth():
    frame = load_candles("ETH_BTC-5m")
    instrument = sim_instruments()["ETHBTC"]
    bars = bars_from_frame(frame, "ETHBTC", "5m", instrument)
    return SimpleNamespace(bars=bars, tick=float(instrument.filters.price_fp.increment))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, eth):
    """A small logistic model trained on the first 3000 bars (the node's tick prices); its
    out-of-sample AUC is ~0.58, so p(up) spreads from ~0.25 to ~0.65 over the other bars."""
    ds = build_dataset(eth.bars[:3000], FeatureSpec(), TripleBarrier(12, 0.005, 0.005), tick_size=eth.tick)
    result = train_model(ds, "logistic", seed=0, n_splits=3)
    path = tmp_path_factory.mktemp("models") / "eth.joblib"
    return SimpleNamespace(path=path, sha=save_model(path, result.model, ds.spec, result.meta()))


def test_ml_signal_is_a_registered_built_in():
    assert "ml_signal" not in BUILTINS and load_strategy_class("ml_signal") is MLSignal


def test_live_features_through_the_engine_equal_the_batch_features_and_drive_the_decisions(
        tmp_path, monkeypatch, eth, model_file):
    seen = []
    monkeypatch.setattr(MLSignal, "on_features", lambda self, symbol, bar, x: seen.append((bar.open_time, x.copy())))
    cfg = parse_config(CONFIG.format(path=model_file.path, sha=model_file.sha, conf=0.55), tmp_path, env={})
    result = asyncio.run(run_backtest(cfg, {"ETHBTC": eth.bars}, balances={"BTC": Decimal("1")}))
    assert result.bars == len(eth.bars) == 5760

    arrays = market_arrays_from_bars(eth.bars, eth.tick)
    matrix, valid = batch_features(FeatureSpec(), arrays)
    assert [t for t, _ in seen] == arrays["times"][valid].tolist()      # every warm bar, in order
    assert all(np.array_equal(x, matrix[i]) for (_, x), i in zip(seen, np.flatnonzero(valid)))

    # Each decision's confidence is the model's p(up) on the batch features of its bar.
    model = load_model(model_file.path, model_file.sha)
    row_of_close = {b.close_time: i for i, b in enumerate(eth.bars)}
    buys = [d for d in result.decisions if d.side == "BUY"]
    sells = [d for d in result.decisions if d.side == "SELL"]
    assert len(buys) > 5 and len(sells) > 5 and len(result.fills) > 10
    for d in result.decisions:
        p = model.predict_up(matrix[row_of_close[d.ts_event]])
        assert d.confidence == (p if d.side == "BUY" else 1.0 - p)
        assert d.confidence >= 0.55


class _Portfolio:
    """Holds what the test says it holds."""

    def __init__(self):
        self.held = Decimal(0)

    def tradable_position(self, symbol, strategy_id=None):
        return self.held


def _started(model_file, eth, **params) -> tuple[MLSignal, list, _Portfolio]:
    strategy = MLSignal("ml", ["ETHBTC"], {"model_path": str(model_file.path), **params}, "5m")
    emitted, portfolio = [], _Portfolio()
    strategy._abd_ctx = StrategyContext(lambda s, sig: emitted.append(sig), TestClock(0), portfolio,
                                        instruments={"ETHBTC": eth.tick})
    strategy.on_start()
    return strategy, emitted, portfolio


def test_buys_when_confident_and_flat_sells_when_confident_down_and_holding(eth, model_file):
    strategy, emitted, portfolio = _started(model_file, eth, min_confidence=0.55)
    ps = []
    for bar in eth.bars[:1500]:
        before = len(emitted)
        strategy.on_bar(bar)
        p = strategy.last_p.get("ETHBTC")
        if len(emitted) > before:
            sig = emitted[-1]
            if sig.side == "BUY":
                assert portfolio.held == 0 and p >= 0.55 and sig.confidence == p
                portfolio.held = Decimal(1)          # as if filled
            else:
                assert portfolio.held > 0 and p <= 0.45 and sig.confidence == 1.0 - p
                portfolio.held = Decimal(0)
        elif p is not None:
            ps.append(p)
            assert not (portfolio.held == 0 and p >= 0.55) and not (portfolio.held > 0 and p <= 0.45)
    assert sum(s.side == "BUY" for s in emitted) > 3 and sum(s.side == "SELL" for s in emitted) > 3


def test_horizon_sells_a_position_held_that_many_bars(eth, model_file):
    strategy, emitted, portfolio = _started(model_file, eth, min_confidence=1.0, horizon=5)
    portfolio.held = Decimal(1)
    first_sell = None
    for i, bar in enumerate(eth.bars[:60]):
        strategy.on_bar(bar)
        if emitted and first_sell is None:
            first_sell = i
    # Warm (and counting the holding) from bar 47: the 5th bar held is bar 51.
    assert first_sell == 51 and emitted[0].side == "SELL" and "held 5 bars (horizon 5)" in emitted[0].reason
    assert all(s.side == "SELL" and s.confidence == 1.0 for s in emitted)   # min_confidence 1.0: no model call


def test_shadow_mode_trades_nothing_and_records_what_it_would_do(eth, model_file):
    strategy, emitted, _ = _started(model_file, eth, min_confidence=0.55, predict_only=True)
    for bar in eth.bars[:1500]:
        strategy.on_bar(bar)
    assert emitted == []
    shadow = list(strategy.shadow_signals)
    assert len(shadow) > 6
    assert [s.side for s in shadow] == ["BUY", "SELL"] * (len(shadow) // 2) + ["BUY"] * (len(shadow) % 2)
    assert all(s.p_up >= 0.55 if s.side == "BUY" else s.p_up <= 0.45 for s in shadow)
    assert all(s.confidence == (s.p_up if s.side == "BUY" else 1.0 - s.p_up) for s in shadow)
    assert all(s.symbol == "ETHBTC" and s.reason.startswith("p(up)") for s in shadow)
    # The node can switch it to trading mid-run: real position from then on.
    strategy.predict_only = False
    before = len(shadow)
    for bar in eth.bars[1500:2500]:
        strategy.on_bar(bar)
    assert len(strategy.shadow_signals) == before and emitted and emitted[0].side == "BUY"


def test_in_shadow_the_horizon_exit_carries_the_live_exits_confidence(eth, model_file):
    strategy, emitted, _ = _started(model_file, eth, min_confidence=1.0, horizon=5, predict_only=True)
    strategy.shadow_held["ETHBTC"] = True
    for bar in eth.bars[:60]:
        strategy.on_bar(bar)
    (exit_,) = strategy.shadow_signals
    assert emitted == [] and exit_.side == "SELL" and "horizon 5" in exit_.reason
    assert exit_.confidence == 1.0 and exit_.p_up > 0.0     # a rule exit, as the live SELL carries it


def test_the_model_file_is_read_once(eth, model_file):
    strategy, _, _ = _started(model_file, eth)
    model = strategy.model
    strategy.on_start()                                     # a restart of the strategy: no second read
    assert strategy.model is model and strategy.load() is model and model.sha256 == model_file.sha


def test_a_model_file_that_is_missing_or_altered_stops_the_strategy_at_start(tmp_path, eth, model_file):
    with pytest.raises(ValueError, match=r"strategies.ml.params.model_path is required"):
        _started(SimpleNamespace(path=""), eth)
    wrong = "0" * 64
    with pytest.raises(ModelFileError, match=rf"its sha256 is {model_file.sha}, expected {wrong}"):
        _started(model_file, eth, model_sha256=wrong)
    with pytest.raises(ValueError, match=r"min_confidence must be within \[0.5, 1.0\]"):
        MLSignal("ml", ["ETHBTC"], {"model_path": "x", "min_confidence": 0.3})
