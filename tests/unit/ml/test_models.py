"""Signal models: deterministic on real candles, metrics out of sample only, hash-checked files."""

from __future__ import annotations

import hashlib

import joblib
import numpy as np
import pytest

from abidance.ml.dataset import build_dataset
from abidance.ml.labels import ForwardReturn
from abidance.ml.models import (
    ModelFileError, classification_metrics, linear_sigmoid_predictor, load_model, make_calibrated, save_model,
    train_model,
)
from abidance.ml.splits import PurgedKFold
from tests.kit import load_candles


@pytest.fixture(scope="module")
def dataset():
    return build_dataset(load_candles("ETH_BTC-5m"), labeler=ForwardReturn(12, 0.0), symbol="ETHBTC", interval="5m")


@pytest.fixture(scope="module")
def logistic(dataset):
    return train_model(dataset, "logistic", seed=0)


def test_training_is_deterministic_and_probabilities_are_calibrated_into_0_1(dataset, logistic):
    again = train_model(dataset, "logistic", seed=0)
    assert np.array_equal(again.oos_proba, logistic.oos_proba)
    assert again.oos == logistic.oos and again.folds == logistic.folds
    p = logistic.model.predict_proba(dataset.X)
    assert np.array_equal(p, again.model.predict_proba(dataset.X))
    assert ((p >= 0) & (p <= 1)).all() and np.allclose(p.sum(axis=1), 1.0)
    assert not np.isnan(logistic.oos_proba).any()             # every row predicted once, out of sample
    assert ((logistic.oos_proba > 0) & (logistic.oos_proba < 1)).all()
    assert logistic.oos["n"] == len(dataset) and sum(f["test_rows"] for f in logistic.folds) == len(dataset)


def test_boosting_is_deterministic_with_a_fixed_seed(dataset):
    small = dataset.subset(np.arange(2500))
    a = train_model(small, "hgb", seed=3, params={"max_iter": 20})
    b = train_model(small, "hgb", seed=3, params={"max_iter": 20})
    assert np.array_equal(a.oos_proba, b.oos_proba) and a.oos == b.oos
    assert a.oos["auc"] is not None and 0.0 <= a.oos["brier"] <= 1.0


def test_out_of_sample_metrics_come_from_models_that_never_saw_a_purged_neighbour(dataset, logistic):
    # Fold 1 recomputed by hand: a model trained on the purged, embargoed rows only.
    embargo = int((dataset.label_end - dataset.index).max())
    train, test = list(PurgedKFold(5, embargo).split(dataset.index, dataset.label_end))[1]
    model = make_calibrated("logistic", dataset.index[train], dataset.label_end[train], embargo=embargo)
    model.fit(dataset.X[train], dataset.y[train])
    assert np.array_equal(model.predict_proba(dataset.X[test])[:, 1], logistic.oos_proba[test])
    fold = logistic.folds[1]
    # 12 rows before the test reach into it, 12 after it start inside its window, then the embargo.
    assert fold["train_rows"] == len(train) and fold["dropped_rows"] == 12 + 12 + embargo
    assert logistic.params["embargo"] == 12


def test_metrics_by_hand():
    m = classification_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], min_confidence=0.6)
    assert m["auc"] == 0.75                                    # 3 of 4 (positive, negative) pairs ordered
    assert m["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.6, 0.35, 0.8])))
    # Confident calls: 0.8 up (right), 0.1 and 0.4 down (right), 0.35 down (wrong).
    assert (m["coverage"], m["n_acted"], m["hit_rate"]) == (1.0, 4, 0.75)
    quiet = classification_metrics([0, 1], [0.5, 0.55], min_confidence=0.6)
    assert quiet["hit_rate"] is None and quiet["n_acted"] == 0


def test_save_and_load_round_trip_with_the_hash(tmp_path, dataset, logistic):
    path = tmp_path / "models" / "eth.joblib"
    sha = save_model(path, logistic.model, dataset.spec, logistic.meta())
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = load_model(path, sha.upper())
    assert loaded.sha256 == sha and loaded.spec == dataset.spec and loaded.feature_names == dataset.feature_names
    assert loaded.meta["oos"] == logistic.oos and loaded.meta["data"]["rows"] == len(dataset)
    assert np.array_equal(loaded.model.predict_proba(dataset.X), logistic.model.predict_proba(dataset.X))
    assert load_model(path).sha256 == sha                       # no expectation: loaded, hash reported


def test_a_tampered_or_foreign_file_is_refused_naming_both_hashes(tmp_path, dataset, logistic):
    path = tmp_path / "eth.joblib"
    sha = save_model(path, logistic.model, dataset.spec, {})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    actual = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(ModelFileError, match=rf"its sha256 is {actual}, expected {sha}"):
        load_model(path, sha)
    with pytest.raises(ModelFileError, match=r"64 hex digits"):
        load_model(path, "abc")
    with pytest.raises(ModelFileError, match=r"cannot be read"):
        load_model(tmp_path / "missing.joblib", sha)
    foreign = tmp_path / "foreign.joblib"
    joblib.dump({"weights": [1, 2, 3]}, foreign)
    with pytest.raises(ModelFileError, match=r"not an abidance.ml.model/1 artifact"):
        load_model(foreign)


def test_the_fast_logistic_path_agrees_with_predict_proba(tmp_path, dataset, logistic):
    fast = linear_sigmoid_predictor(logistic.model)
    assert fast is not None
    reference = logistic.model.predict_proba(dataset.X)[:, 1]
    got = np.array([fast(x) for x in dataset.X])
    assert np.max(np.abs(got - reference)) < 1e-12
    sha = save_model(tmp_path / "m.joblib", logistic.model, dataset.spec, {})
    loaded = load_model(tmp_path / "m.joblib", sha)
    assert loaded.predict_up(dataset.X[0]) == fast(dataset.X[0])
    assert linear_sigmoid_predictor(make_calibrated("hgb", np.arange(30), np.arange(30))) is None


def test_bad_training_requests_say_what_is_wrong(dataset):
    with pytest.raises(ValueError, match=r"model kind must be one of logistic, hgb, gb, got 'svm'"):
        train_model(dataset, "svm")
    with pytest.raises(ValueError, match=r"min_confidence must be within \[0.5, 1\], got 0.3"):
        train_model(dataset, min_confidence=0.3)
    with pytest.raises(ValueError, match=r"calibration must be one of sigmoid, isotonic"):
        train_model(dataset, calibration="platt")
    with pytest.raises(ValueError, match=r"20 rows are too few for 5 folds"):
        train_model(dataset.subset(np.arange(20)))
    with pytest.raises(ValueError, match=r"train_model: n_splits must be an integer >= 2, got '5'"):
        train_model(dataset, n_splits="5")
    with pytest.raises(ValueError, match=r"train_model: calibration_splits must be an integer >= 2, got 1"):
        train_model(dataset, calibration_splits=1)
    with pytest.raises(ValueError, match=r"min_confidence must be within \[0.5, 1\], got '0.6'"):
        train_model(dataset, min_confidence="0.6")
    with pytest.raises(ValueError, match=r"PurgedKFold: embargo must be a finite number >= 0"):
        train_model(dataset, embargo="12")


# ---- datasets (the models' input) ----------------------------------------------------------------


def test_dataset_rows_have_both_features_and_labels_and_their_spans(dataset):
    # ETH/BTC 5m: 5760 bars; features warm from bar 47; 12-bar labels stop 12 bars before the end.
    assert dataset.bars == 5760 and len(dataset) == 5760 - 47 - 12
    assert dataset.index[0] == 47 and dataset.index[-1] == 5760 - 13
    assert np.array_equal(dataset.label_end, dataset.index + 12)
    assert dataset.X.shape == (len(dataset), len(dataset.feature_names)) and np.isfinite(dataset.X).all()
    assert np.all(np.diff(dataset.times) == 300 * 10**9)
    meta = dataset.meta()
    assert meta["rows"] == len(dataset) and meta["labels"]["horizon"] == 12 and meta["symbol"] == "ETHBTC"


def test_dataset_from_a_file_with_the_instrument_uses_the_node_s_tick_prices():
    from abidance.backtest.data import bars_from_frame
    from abidance.backtest.engine import sim_instruments
    from abidance.ml.dataset import dataset_from_file
    from tests.kit import shared_data

    path = shared_data("market", "ETH_BTC-5m.feather")
    instrument = sim_instruments()["ETHBTC"]
    from_file = dataset_from_file(str(path), symbol="ETHBTC", interval="5m", instrument=instrument)
    bars = bars_from_frame(load_candles("ETH_BTC-5m"), "ETHBTC", "5m", instrument)
    from_bars = build_dataset(bars, tick_size=float(instrument.filters.price_fp.increment))
    assert np.array_equal(from_file.X, from_bars.X) and np.array_equal(from_file.y, from_bars.y)
    assert from_file.symbol == from_bars.symbol == "ETHBTC"
    with pytest.raises(ValueError, match=r"needs symbol and interval"):
        dataset_from_file(str(path), instrument=instrument)


def test_dataset_from_store_style_bars_and_bad_frames():
    from decimal import Decimal

    import pandas as pd

    frame = load_candles("LTC_BTC-5m").iloc[:400]
    # The store's bars: `ts` for the time, Decimal prices.
    store = pd.DataFrame({"ts": frame.date, **{c: [Decimal(repr(v)) for v in frame[c]]
                                                 for c in ("open", "high", "low", "close", "volume")}})
    a, b = build_dataset(frame), build_dataset(store)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.times, b.times) and len(a) > 300
    with pytest.raises(ValueError, match=r"missing: volume"):
        build_dataset(frame.drop(columns=["volume"]))
    with pytest.raises(ValueError, match=r"strictly increasing time order; row 10 "):
        build_dataset(frame.iloc[list(range(10)) + [5] + list(range(10, 50))])
    with pytest.raises(ValueError, match=r"Bars need tick_size"):
        build_dataset([])


def test_a_gap_in_the_bars_cuts_the_dataset_there_and_no_row_reads_across_it():
    frame = load_candles("ETH_BTC-5m").iloc[:700]
    gapped = frame.drop(index=range(300, 310)).reset_index(drop=True)       # 10 bars missing after row 299
    ds = build_dataset(gapped, labeler=ForwardReturn(12))
    assert ds.extra["gaps"] == [{"row": 300, "after_ns": 11 * 300 * 10**9}]
    before, after = ds.index < 300, ds.index >= 300
    assert (ds.label_end[before] < 300).all()                   # no label reads past the gap
    assert ds.index[after].min() == 300 + 47                    # features warm up again after it
    # Each side is exactly the dataset of that run of bars alone.
    head = build_dataset(gapped.iloc[:300], labeler=ForwardReturn(12))
    tail = build_dataset(gapped.iloc[300:], labeler=ForwardReturn(12))
    assert np.array_equal(ds.X, np.concatenate([head.X, tail.X]))
    assert np.array_equal(ds.index, np.concatenate([head.index, tail.index + 300]))
    assert np.array_equal(ds.label_end, np.concatenate([head.label_end, tail.label_end + 300]))
    assert build_dataset(frame).extra == {}


def test_bars_closer_than_the_interval_or_with_a_bad_price_are_refused_naming_the_row():
    one_minute = load_candles("UNITTEST_BTC-1m").iloc[:200]
    with pytest.raises(ValueError, match=r"closer together than the interval \(300 s\): row 1 .* is 60 s after row 0"):
        build_dataset(one_minute, interval="5m")
    frame = load_candles("ETH_BTC-5m").iloc[:300].copy()
    frame.loc[120, "close"] = float("nan")
    # One missing price refuses the whole dataset: every later feature row would carry it.
    with pytest.raises(ValueError, match=r"build_dataset: invalid bar at row 120: close=nan"):
        build_dataset(frame)
