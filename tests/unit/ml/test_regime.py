"""Regime features and the regime model, on the real ETH/BTC and LTC/BTC 5-minute candles."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from abidance.ml.regime import RegimeFeatureSpec, RegimeFeatures, RegimeModel, features_from_bars, regime_features
from tests.kit import shared_data

PAIRS = ["ETH_BTC-5m", "LTC_BTC-5m"]


def candles(name: str) -> pd.DataFrame:
    return pd.read_feather(shared_data("market", f"{name}.feather"))


def batch(frame: pd.DataFrame, spec: RegimeFeatureSpec | None = None) -> np.ndarray:
    return regime_features(frame.close, frame.high, frame.low, frame.volume, spec)


@pytest.mark.parametrize("name", PAIRS)
def test_streaming_features_equal_batch_features_bit_for_bit(name):
    frame = candles(name)
    other = RegimeFeatureSpec(vol_period=20, fast=5, slow=30, atr_period=10, volume_period=24)
    for spec in (RegimeFeatureSpec(), other):
        x = batch(frame, spec)
        live = RegimeFeatures(spec)
        # (close, high, low, volume): the order of abidance.ml.features.StreamingFeatures.update.
        rows = [live.update(c, h, lo, v) for c, h, lo, v in
                zip(frame.close.tolist(), frame.high.tolist(), frame.low.tolist(), frame.volume.tolist())]
        stream = np.array([r if r is not None else (math.nan,) * 3 for r in rows])
        assert np.array_equal(x, stream, equal_nan=True)
        first = int(np.flatnonzero(np.isfinite(x).all(axis=1))[0])
        assert first == spec.warmup - 1        # the first complete row is where the spec says
        assert np.isfinite(x[first:]).all()


def test_features_of_bars_streamed_as_the_node_sees_them_equal_the_batch_of_those_bars():
    # The strategy streams Bars (ticks and steps); training and evaluation batch the same Bars.
    from abidance.backtest.data import bars_from_frame
    from abidance.backtest.engine import sim_instruments

    bars = bars_from_frame(candles("LTC_BTC-5m"), "LTCBTC", "5m", sim_instruments()["LTCBTC"])
    live = RegimeFeatures()
    stream = np.array([r if (r := live.update_bar(b)) is not None else (math.nan,) * 3 for b in bars])
    assert np.array_equal(features_from_bars(bars), stream, equal_nan=True)
    assert np.isfinite(stream).all(axis=1).sum() == len(bars) - RegimeFeatureSpec().warmup + 1


@pytest.mark.parametrize("name", PAIRS)
def test_predict_one_equals_batch_predict_on_every_bar(name):
    x = batch(candles(name))
    for method in ("kmeans", "gmm"):
        model = RegimeModel(3, method, seed=0).fit(x[:4000])
        labels = model.predict(x)
        assert (labels[~np.isfinite(x).all(axis=1)] == -1).all()
        one = [model.predict_one(r) if np.isfinite(r).all() else -1 for r in x]
        assert labels.tolist() == one
        assert set(labels[labels >= 0].tolist()) == {0, 1, 2}


@pytest.mark.parametrize("name", PAIRS)
def test_regimes_keep_their_numbers_when_refit_with_other_seeds_or_row_order(name):
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    x = batch(candles(name))
    ref = RegimeModel(3, "kmeans", seed=0).fit(x)
    labels = ref.predict(x)
    vols = [p["volatility"] for p in ref.profile]
    assert vols == sorted(vols)                 # regime 0 is the calmest
    rows = x[np.isfinite(x).all(axis=1)]
    z = (rows - rows.mean(axis=0)) / rows.std(axis=0)
    raw_agree = []
    for seed in (1, 2, 3):
        refit = RegimeModel(3, "kmeans", seed=seed).fit(x)
        assert np.mean(refit.predict(x) == labels) >= 0.98
        # scikit-learn's own numbering does change with the seed: the relabelling is what holds it.
        with threadpool_limits(1):
            raw = KMeans(3, random_state=seed, n_init=10).fit(z).labels_
            raw_agree.append(np.mean(raw == KMeans(3, random_state=0, n_init=10).fit(z).labels_))
    assert min(raw_agree) < 0.5
    shuffled = x[np.random.default_rng(7).permutation(len(x))]
    assert np.mean(RegimeModel(3, "kmeans", seed=0).fit(shuffled).predict(x) == labels) >= 0.98


def test_saved_model_loads_with_its_sha256_and_predicts_the_same(tmp_path):
    x = batch(candles("ETH_BTC-5m"))
    spec = RegimeFeatureSpec(vol_period=30)
    model = RegimeModel(4, "gmm", seed=3, spec=spec).fit(regime_features(*(
        candles("ETH_BTC-5m")[c] for c in ("close", "high", "low", "volume")), spec=spec))
    path = tmp_path / "regime.joblib"
    digest = model.save(path)
    assert (tmp_path / "regime.joblib.sha256").read_text().strip() == digest
    loaded = RegimeModel.load(path)
    assert (loaded.n_regimes, loaded.method, loaded.seed, loaded.spec) == (4, "gmm", 3, spec)
    assert loaded.predict(x).tolist() == model.predict(x).tolist()
    assert RegimeModel.load(path, sha256=digest.upper()).profile == model.profile
    with pytest.raises(ValueError, match=f"refused: its sha256 is {digest}, expected {'0' * 64}"):
        RegimeModel.load(path, sha256="0" * 64)
    with pytest.raises(ValueError, match="expected sha256 must be 64 hex digits, got 'abc'"):
        RegimeModel.load(path, sha256="abc")
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=f"refused: its sha256 is [0-9a-f]{{64}}, expected {digest}"):
        RegimeModel.load(path)
    (tmp_path / "other.joblib").write_bytes(b"x")
    with pytest.raises(ValueError, match="no sha256 given and no other.joblib.sha256"):
        RegimeModel.load(tmp_path / "other.joblib")
    with pytest.raises(ValueError, match="does not exist"):
        RegimeModel.load(tmp_path / "missing.joblib")


def _fitted(n_regimes: int) -> RegimeModel:
    return RegimeModel(n_regimes, "kmeans", seed=0).fit(batch(candles("LTC_BTC-5m").iloc[:1500]))


def test_load_unpickles_the_bytes_it_hashed_even_if_the_file_is_swapped_in_between(tmp_path, monkeypatch):
    import hashlib

    path, other = tmp_path / "regime.joblib", tmp_path / "other.joblib"
    digest = _fitted(3).save(path)
    _fitted(4).save(other)
    swapped = other.read_bytes()
    real_sha256 = hashlib.sha256

    def sha256_then_swap(data=b""):
        h = real_sha256(data)
        if data and path.read_bytes() == data:
            path.write_bytes(swapped)       # another process replaces the file right after the check
        return h

    monkeypatch.setattr(hashlib, "sha256", sha256_then_swap)
    loaded = RegimeModel.load(path, digest)
    assert loaded.n_regimes == 3            # what was verified, not what a re-read would have found


def test_save_is_atomic_a_failed_write_leaves_the_previous_model_whole(tmp_path, monkeypatch):
    import joblib

    path = tmp_path / "regime.joblib"
    digest = _fitted(3).save(path)

    def dump_fails_halfway(obj, target, *args, **kwargs):
        if isinstance(target, (str, Path)):
            Path(target).write_bytes(b"half a pickle")
        else:
            target.write(b"half a pickle")
        raise OSError("disk full")

    monkeypatch.setattr(joblib, "dump", dump_fails_halfway)
    with pytest.raises(OSError, match="disk full"):
        _fitted(4).save(path)
    assert RegimeModel.load(path, digest).n_regimes == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["regime.joblib", "regime.joblib.sha256"]


def test_bad_inputs_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="n_regimes must be"):
        RegimeModel(0)
    with pytest.raises(ValueError, match="method must be one of"):
        RegimeModel(3, "dbscan")
    with pytest.raises(ValueError, match="fast .12. must be below slow .12."):
        RegimeFeatureSpec(fast=12, slow=12)
    with pytest.raises(ValueError, match="vol_period must be a whole number of bars >= 2"):
        RegimeFeatureSpec(vol_period=1)
    with pytest.raises(ValueError, match="not fitted"):
        RegimeModel().predict_one((0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="needs at least 50 complete feature rows, got 0"):
        RegimeModel().fit(np.full((500, 3), np.nan))
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        RegimeModel().fit(np.zeros((100, 2)))
    with pytest.raises(ValueError, match="volume must have the length of close"):
        regime_features([1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [1.0])
    model = RegimeModel().fit(batch(candles("LTC_BTC-5m")))
    with pytest.raises(ValueError, match="features must be finite"):
        model.predict_one((math.nan, 0.1, 0.2))
    with pytest.raises(ValueError, match="expected 3 features"):
        model.predict_one((0.1, 0.2))
