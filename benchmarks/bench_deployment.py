"""The deployed model's per-bar latency inside the node, with its deployment safeguards.

Target (issue 9): inference latency of the deployed model inside the node p99 <= 100 us.
Measured: one closed bar into the ML strategy (abidance/ml/ml_signal.py, a
calibrated logistic regression from train_model on the first 2500 real ETH/BTC 5m bars),
wrapped by its ModelDeployment (abidance/ml/model_deployment.py) in live mode: streaming
features, p(up), the decision and its signal, then the drift watch (PSI window of 500 over the
14 features, and the confident calls labelled bar by bar by the training label rule), the
whole call timed per bar over the 5760 real bars, 3 passes. The drift watch runs after the
signal is emitted, so the signal itself waits only for the features and the prediction; the
figure is the whole call, the conservative one.

Baseline in the same run: the same strategy without the deployment (features, p(up), decision).
"""

from __future__ import annotations

import time

import numpy as np

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import sim_instruments
from abidance.config.sections import MlSection
from abidance.core.bus import MessageBus
from abidance.core.clock import TestClock
from abidance.ml.dataset import build_dataset
from abidance.ml.model_deployment import ModelDeployment
from abidance.ml.drift import reference_histograms
from abidance.ml.features import FeatureSpec
from abidance.ml.labels import ForwardReturn
from abidance.ml.models import save_model, train_model
from abidance.ml.registry import ModelVersion
from abidance.ml.registry_link import InlineRegistry
from abidance.strategy.base import StrategyContext
from abidance.ml.ml_signal import MLSignal
from tests.kit import load_candles

TRAIN = 2500
PASSES = 3
# Drift never demotes here (the registry is not involved): the watch runs in full on every bar.
ML = MlSection(min_confidence=0.51, drift_window=500, drift_psi_threshold=1e9, min_live_hit_rate_ratio=0.0)


def _setup(tmp_path):
    instruments = sim_instruments()
    tick = float(instruments["ETHBTC"].filters.price_fp.increment)
    bars = bars_from_frame(load_candles("ETH_BTC-5m"), "ETHBTC", "5m", instruments["ETHBTC"])
    spec, labels = FeatureSpec(), ForwardReturn(horizon=6)
    data = build_dataset(bars[:TRAIN], spec, labels, tick_size=tick)
    result = train_model(data, "logistic", seed=0, n_splits=3, min_confidence=ML.min_confidence)
    path = tmp_path / "eth.joblib"
    sha = save_model(path, result.model, spec, result.meta())
    record = ModelVersion("eth-lr", 1, "live", str(path), sha, spec.to_dict(), int(data.times[0]),
                          int(data.times[-1]), {"labels": labels.to_dict()}, result.in_sample, result.oos,
                          reference_histograms(data.X, spec.names, window=ML.drift_window))
    return bars, tick, path, sha, record


def time_ml_signal(bars, tick, path, sha, record, deployed: bool, compiled: bool = True):
    """ml_signal's on_bar time per bar (ns), with or without its deployment (drift watch), on the
    model's compiled fast path or on scikit-learn's predict_proba; and the deployment (or None)."""
    clock, signals = TestClock(bars[0].open_time), []
    s = MLSignal("ml", ["ETHBTC"], {"model_path": str(path), "model_sha256": sha, "min_confidence": 0.51})
    s._abd_ctx = StrategyContext(lambda strategy, signal: signals.append(signal), clock, None, {}, {"ETHBTC": tick})
    if not compiled:
        s.load()._fast = None           # the fallback: predict_proba with one thread
    dep = None
    if deployed:
        dep = ModelDeployment(MessageBus(), clock, s, record, ML, InlineRegistry(None))
        dep.start()
    s.on_start()
    perf = time.perf_counter_ns
    times = np.empty(len(bars), dtype=np.int64)
    for i, bar in enumerate(bars):
        clock.advance_to(bar.close_time)
        t0 = perf()
        s.on_bar(bar)
        times[i] = perf() - t0
    assert signals, "the strategy never signalled: the benchmark would not cover the signal path"
    return times, dep


def _run(bars, tick, path, sha, record, deployed: bool) -> np.ndarray:
    times, dep = time_ml_signal(bars, tick, path, sha, record, deployed)
    if dep is not None:
        assert dep.is_live and dep.monitor.vectors == ML.drift_window and not dep.demotions
    return times[100:]                  # past the features' warm-up


def test_deployed_model_latency(benchmark, report, tmp_path):
    bars, tick, path, sha, record = _setup(tmp_path)
    passes = 1 if benchmark.disabled else PASSES
    deployed = np.concatenate([_run(bars, tick, path, sha, record, True) for _ in range(passes)])
    bare = np.concatenate([_run(bars, tick, path, sha, record, False) for _ in range(passes)])
    p50, p99 = (float(np.percentile(deployed, q)) / 1000 for q in (50, 99))
    b50, b99 = (float(np.percentile(bare, q)) / 1000 for q in (50, 99))
    benchmark.extra_info.update(bars=int(len(deployed)), p50_us=p50, p99_us=p99, bare_p50_us=b50, bare_p99_us=b99)
    report("deployed model per bar p50 (features, p(up), decision, drift watch)", p50, "us",
           baseline=("strategy without the deployment", b50), benchmark=benchmark)
    report("deployed model per bar p99", p99, "us", target=100.0,
           baseline=("strategy without the deployment", b99), benchmark=benchmark)
    benchmark.pedantic(lambda: None, rounds=1)
