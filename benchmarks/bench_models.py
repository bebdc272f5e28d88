"""Tree-model inference: compiled trees (abidance._core.trees) beside scikit-learn's predict_proba.

Target (issue 9): inference latency of the deployed model inside the node p99 <= 100 us.
Models: "hgb" and "gb" from train_model (defaults: sigmoid calibration over 3 purged folds,
so 3 ensembles of 100 trees each) on the first 2500 real ETH/BTC 5m bars, prices through the
instrument's ticks as the node sees them.

Figures:
  1. One prediction: LoadedModel.predict_up (the compiled trees and the calibrators, what
     ml_signal calls) timed call by call over the feature vectors of all 5760 bars, 3 passes;
     p50 and p99. Baseline in the same run: predict_proba of one row with one thread (what
     predict_up ran before, and still runs for a model the trees cannot serve) over the
     first PROBA_ROWS vectors (it is ~1000x slower).
  2. The whole ml_signal on_bar with the hgb model, p50 and p99 against the 100 us target:
     deployed live as bench_deployment.py measures the logistic model (ModelDeployment,
     abidance/ml/model_deployment.py, around the strategy: streaming features, p(up), the
     decision and its signal, then the drift watch: PSI window of 500 over the 14 features,
     the confident calls labelled bar by bar), and the strategy alone. Every bar of the 5760
     timed, 3 passes, warm-up bars left out. Baseline in the same run: the same, with
     predict_proba in place of the compiled path, over PROBA_BARS (800 bars in which the
     model signals, started cold like the node).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import sim_instruments
from abidance.ml.dataset import build_dataset
from abidance.ml.drift import reference_histograms
from abidance.ml.features import FeatureSpec
from abidance.ml.labels import ForwardReturn
from abidance.ml.models import load_model, save_model, train_model
from abidance.ml.registry import ModelVersion
from benchmarks.bench_deployment import ML, time_ml_signal   # the same deployment settings
from tests.kit import load_candles

TRAIN = 2500
PASSES = 3
WARM = 100                  # bars before the features are warm (and the call timed is the real one)
PROBA_ROWS = 500
PROBA_BARS = slice(1700, 2500)      # 800 bars in which this hgb model's p(up) reaches 0.51 (it signals)
# The smoke pass (--benchmark-disable) times fewer calls: it checks the path runs, it measures nothing.
SMOKE_ROWS, SMOKE_PROBA_ROWS, SMOKE_BARS = 600, 40, slice(0, 2500)
SMOKE_PROBA_BARS = slice(2100, 2500)
# Drift never demotes here (the registry is not involved): the watch runs in full on every bar.


@pytest.fixture(scope="module")
def market():
    instruments = sim_instruments()
    tick = float(instruments["ETHBTC"].filters.price_fp.increment)
    bars = bars_from_frame(load_candles("ETH_BTC-5m"), "ETHBTC", "5m", instruments["ETHBTC"])
    return bars, tick


@pytest.fixture(scope="module")
def models(market, tmp_path_factory):
    """kind -> (path, sha256, registry record, feature vectors of every bar)."""
    bars, tick = market
    spec, labels = FeatureSpec(), ForwardReturn(horizon=6)
    data = build_dataset(bars[:TRAIN], spec, labels, tick_size=tick)
    every_bar = build_dataset(bars, spec, labels, tick_size=tick).X
    out = {}
    for kind in ("hgb", "gb"):
        result = train_model(data, kind, seed=0, n_splits=3, min_confidence=ML.min_confidence)
        path = tmp_path_factory.mktemp("models") / f"eth-{kind}.joblib"
        sha = save_model(path, result.model, spec, result.meta())
        record = ModelVersion(f"eth-{kind}", 1, "live", str(path), sha, spec.to_dict(), int(data.times[0]),
                              int(data.times[-1]), {"labels": labels.to_dict()}, result.in_sample, result.oos,
                              reference_histograms(data.X, spec.names, window=ML.drift_window))
        out[kind] = (path, sha, record, every_bar)
    return out


def _percentiles(times_ns: np.ndarray) -> tuple[float, float]:
    return tuple(float(np.percentile(times_ns, q)) / 1000 for q in (50, 99))


def _time_calls(fn, rows) -> np.ndarray:
    perf = time.perf_counter_ns
    times = np.empty(len(rows), dtype=np.int64)
    for i, x in enumerate(rows):
        t0 = perf()
        fn(x)
        times[i] = perf() - t0
    return times


@pytest.mark.parametrize("kind", ["hgb", "gb"])
def test_tree_model_prediction_latency(benchmark, report, models, kind):
    path, sha, _record, rows = models[kind]
    loaded = load_model(path, sha)
    assert loaded._fast is not None, f"the {kind} model did not get the compiled path"
    smoke = benchmark.disabled
    passes = 1 if smoke else PASSES
    fast = np.concatenate([_time_calls(loaded.predict_up, rows[:SMOKE_ROWS] if smoke else rows)
                           for _ in range(passes)])
    fallback = load_model(path, sha)
    fallback._fast = None                       # predict_up's fallback: predict_proba with one thread
    proba = _time_calls(fallback.predict_up, rows[:SMOKE_PROBA_ROWS if smoke else PROBA_ROWS])
    p50, p99 = _percentiles(fast)
    b50, b99 = _percentiles(proba)
    benchmark.extra_info.update(kind=kind, predictions=int(len(fast)), p50_us=p50, p99_us=p99,
                                proba_p50_us=b50, proba_p99_us=b99)
    report(f"{kind} one prediction p50 (compiled trees + calibrators)", p50, "us",
           baseline=("predict_proba, one thread", b50), benchmark=benchmark)
    report(f"{kind} one prediction p99", p99, "us", baseline=("predict_proba, one thread", b99), benchmark=benchmark)
    benchmark.pedantic(lambda: None, rounds=1)


def _run_strategy(bars, tick, path, sha, record, compiled: bool, deployed: bool) -> np.ndarray:
    times, dep = time_ml_signal(bars, tick, path, sha, record, deployed, compiled)
    if dep is not None:
        assert dep.is_live and not dep.demotions
    return times[WARM:]


@pytest.mark.parametrize("deployed", [True, False], ids=["deployed", "strategy-only"])
def test_hgb_model_per_bar_latency(benchmark, report, market, models, deployed):
    bars, tick = market
    path, sha, record, _rows = models["hgb"]
    smoke = benchmark.disabled
    passes = 1 if smoke else PASSES
    timed = bars[SMOKE_BARS] if smoke else bars
    compiled = np.concatenate([_run_strategy(timed, tick, path, sha, record, True, deployed) for _ in range(passes)])
    proba = _run_strategy(bars[SMOKE_PROBA_BARS if smoke else PROBA_BARS], tick, path, sha, record, False, deployed)
    p50, p99 = _percentiles(compiled)
    b50, b99 = _percentiles(proba)
    benchmark.extra_info.update(deployed=deployed, bars=int(len(compiled)), p50_us=p50, p99_us=p99,
                                proba_p50_us=b50, proba_p99_us=b99)
    what = ("deployed hgb model per bar", "(features, p(up), decision, drift watch)") if deployed else \
        ("ml_signal with hgb per bar", "(features, p(up), decision)")
    report(f"{what[0]} p50 {what[1]}", p50, "us", baseline=("same with predict_proba", b50), benchmark=benchmark)
    report(f"{what[0]} p99", p99, "us", target=100.0, baseline=("same with predict_proba", b99), benchmark=benchmark)
    benchmark.pedantic(lambda: None, rounds=1)
