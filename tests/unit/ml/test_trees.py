"""Compiled tree ensembles: the same scores as scikit-learn on real candles, refusals that say why."""

from __future__ import annotations

import logging
import pickle
import re

import joblib
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from abidance._core.trees import TreeEnsemble
from abidance.ml.dataset import build_dataset
from abidance.ml.labels import ForwardReturn
from abidance.ml.models import calibrated_trees_predictor, fast_predictor, load_model, make_calibrated, save_model
from tests.kit import load_candles


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def dataset():
    return build_dataset(load_candles("ETH_BTC-5m"), labeler=ForwardReturn(12, 0.0), symbol="ETHBTC", interval="5m")


TRAIN_ROWS = 3000          # of 5701: the rest are rows the models never saw; every row is predicted
_FITTED = {}


def _calibrated(dataset, kind, method):
    """The models train_model builds (purged calibration folds), fitted once."""
    if (kind, method) not in _FITTED:
        rows = slice(0, TRAIN_ROWS)
        model = make_calibrated(kind, dataset.index[rows], dataset.label_end[rows], method=method, embargo=12)
        _FITTED[kind, method] = model.fit(dataset.X[rows], dataset.y[rows])
    return _FITTED[kind, method]


def _small_xy(n=600, classes=2, seed=7):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + rng.normal(size=n) > 0).astype(int) if classes == 2 else rng.integers(0, classes, n)
    return X, y


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize("kind", ["hgb", "gb"])
def test_fast_path_equals_predict_proba_on_every_real_row(dataset, kind, method):
    model = _calibrated(dataset, kind, method)
    X = dataset.X
    assert np.isfinite(X).all()             # warm features are never NaN (abidance/ml/features.py)
    for cc in model.calibrated_classifiers_:
        ens = TreeEnsemble.from_estimator(cc.estimator)
        assert ens.source == kind and ens.n_trees == 100 and ens.n_features == X.shape[1]
        # The trees alone: the very bits of decision_function, row by row.
        assert np.array_equal([ens.raw_score(x) for x in X], cc.estimator.decision_function(X))
    fast = calibrated_trees_predictor(model)
    assert fast is not None and fast_predictor(model) is not None      # what LoadedModel.predict_up runs
    got = np.array([fast(x) for x in X])
    reference = model.predict_proba(X)[:, 1]
    assert np.max(np.abs(got - reference)) <= 1e-12
    assert ((got >= 0.0) & (got <= 1.0)).all()


def test_hgb_sends_nan_where_it_learnt_missing_values_go(dataset):
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(11)
    X = dataset.X.copy()
    X[rng.random(X.shape) < 0.05] = np.nan          # trained with gaps: missing values get a learnt side
    est = HistGradientBoostingClassifier(max_iter=40, max_depth=3, random_state=0).fit(X, dataset.y)
    ens = TreeEnsemble.from_estimator(est)
    split = ens.arrays["feature"] >= 0
    assert set(np.unique(ens.arrays["missing_left"][split])) == {0, 1}     # both directions are exercised
    X[:50] = np.nan                                                        # and rows with every feature missing
    assert np.array_equal([ens.raw_score(x) for x in X], est.decision_function(X))


def test_calibrated_hgb_gives_predict_proba_on_rows_with_nan_and_infinity(dataset):
    model = _calibrated(dataset, "hgb", "isotonic")
    rng = np.random.default_rng(5)
    X = dataset.X[::10].copy()
    X[rng.random(X.shape) < 0.2] = np.nan
    X[rng.random(X.shape) < 0.02] = np.inf
    X[rng.random(X.shape) < 0.02] = -np.inf
    fast = calibrated_trees_predictor(model)
    got = np.array([fast(x) for x in X])
    assert np.max(np.abs(got - model.predict_proba(X)[:, 1])) <= 1e-12


def test_gb_refuses_what_scikit_learn_refuses_nan_infinity_and_beyond_float32(dataset):
    model = _calibrated(dataset, "gb", "sigmoid")
    fast = calibrated_trees_predictor(model)
    ens = TreeEnsemble.from_estimator(model.calibrated_classifiers_[0].estimator)
    for bad in (np.nan, np.inf, 1e39):
        x = dataset.X[0].copy()
        x[3] = bad
        with pytest.raises(ValueError), np.errstate(over="ignore"):     # 1e39 overflows its float32 cast
            model.predict_proba(x.reshape(1, -1))
        with pytest.raises(ValueError, match=re.escape(f"feature 3 is {bad!r}; this gb model takes finite values "
                                                       "within float32 range")):
            fast(x)
        with pytest.raises(ValueError, match="feature 3"):
            ens.raw_score(x)


def _edge_rows(ens, base_row):
    """For every tree's root split: a row exactly at its threshold, and a row a double's ulp on
    the side where rounding to float32 flips the comparison (so a walk on the unrounded double
    would go the other way)."""
    a = ens.arrays
    exact, flipped = [], []
    for node in a["roots"]:
        j, t = a["feature"][node], a["threshold"][node]
        if j < 0 or not np.isfinite(t):
            continue
        row = base_row.copy()
        row[j] = t
        exact.append(row)
        below = np.float32(t) if np.float32(t) <= t else np.nextafter(np.float32(t), np.float32(-np.inf))
        mid = (float(below) + float(np.nextafter(below, np.float32(np.inf)))) / 2.0
        x = np.nextafter(t, np.inf) if t < mid else np.nextafter(t, -np.inf)
        if (x <= t) != (float(np.float32(x)) <= t):
            flipped.append(base_row.copy())
            flipped[-1][j] = x
    return np.array(exact), np.array(flipped)


@pytest.mark.parametrize("kind", ["hgb", "gb"])
def test_rows_on_a_threshold_and_float32_rounding_go_where_scikit_learn_sends_them(dataset, kind):
    est = _calibrated(dataset, kind, "sigmoid").calibrated_classifiers_[0].estimator
    ens = TreeEnsemble.from_estimator(est)
    exact, flipped = _edge_rows(ens, dataset.X[100])
    assert len(exact) == ens.n_trees and len(flipped) >= 10         # 44 of the 100 gb roots here
    for rows in (exact, flipped):
        assert np.array_equal([ens.raw_score(x) for x in rows], est.decision_function(rows))


@pytest.mark.parametrize("params", [{"init": "zero"}, {"loss": "exponential"}, {"subsample": 1.0, "max_depth": 4}])
def test_gb_variants_equal_decision_function(dataset, params):
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = dataset.X[:2000], dataset.y[:2000]
    est = GradientBoostingClassifier(**{"n_estimators": 30, "max_depth": 2, "random_state": 0, **params}).fit(X, y)
    ens = TreeEnsemble.from_estimator(est)
    assert ens.float32_input and (ens.baseline == 0.0) == (params.get("init") == "zero")
    assert np.array_equal([ens.raw_score(x) for x in dataset.X], est.decision_function(dataset.X))


def test_unsupported_estimators_are_refused_naming_why():
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import (
        GradientBoostingClassifier, HistGradientBoostingClassifier, HistGradientBoostingRegressor,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression

    X, y = _small_xy()
    for other in (LogisticRegression(), RandomForestClassifier(), HistGradientBoostingRegressor()):
        with pytest.raises(TypeError, match=rf"{type(other).__name__} is not supported \(HistGradientBoostingClassifier"
                                            r" or GradientBoostingClassifier only\)"):
            TreeEnsemble.from_estimator(other)
    for unfitted in (HistGradientBoostingClassifier(), GradientBoostingClassifier()):
        with pytest.raises(ValueError, match=rf"this {type(unfitted).__name__} is not fitted"):
            TreeEnsemble.from_estimator(unfitted)
    X3, y3 = _small_xy(classes=3)
    for multi in (HistGradientBoostingClassifier(max_iter=5), GradientBoostingClassifier(n_estimators=5)):
        multi.fit(X3, y3)
        with pytest.raises(ValueError, match=rf"binary classification only; this {type(multi).__name__} has 3 classes"):
            TreeEnsemble.from_estimator(multi)
    Xc = X.copy()
    Xc[:, 0] = np.arange(len(Xc)) % 5
    categorical = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0]).fit(Xc, y)
    with pytest.raises(ValueError, match="categorical features are not supported"):
        TreeEnsemble.from_estimator(categorical)
    custom_init = GradientBoostingClassifier(n_estimators=5, init=DummyClassifier(strategy="most_frequent")).fit(X, y)
    with pytest.raises(ValueError, match=r"the init estimator DummyClassifier\(strategy='most_frequent'\) is not "
                                         r"supported \(its start depends on the row"):
        TreeEnsemble.from_estimator(custom_init)


def test_a_model_the_trees_cannot_serve_falls_back_to_predict_proba(tmp_path, dataset, caplog):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = dataset.X[:1500].copy(), dataset.y[:1500]
    X[:, 0] = np.arange(len(X)) % 4
    model = CalibratedClassifierCV(HistGradientBoostingClassifier(max_iter=10, categorical_features=[0]), cv=3)
    model.fit(X, y)
    with caplog.at_level(logging.WARNING, logger="abidance.ml"):
        assert calibrated_trees_predictor(model) is None
    assert "compiled trees cannot serve this model, predict_proba will: TreeEnsemble.from_estimator: " \
           "categorical features are not supported" in caplog.text
    sha = save_model(tmp_path / "cat.joblib", model, dataset.spec, {})
    loaded = load_model(tmp_path / "cat.joblib", sha)
    assert loaded.predict_up(X[7]) == model.predict_proba(X[7:8])[0, 1]


def test_flat_arrays_that_could_crash_the_walk_are_refused():
    ok = dict(feature=[0, -1, -1], threshold=[0.5, 0.0, 0.0], left=[1, -1, -1], right=[2, -1, -1],
              missing_left=[1, 0, 0], value=[0.0, -1.0, 1.0], roots=[0], baseline=0.25, n_features=1)
    ens = TreeEnsemble(**ok)
    assert ens.raw_score(np.array([0.5])) == 0.25 - 1.0 and ens.raw_score(np.array([0.6])) == 0.25 + 1.0
    assert ens.raw_score(np.array([np.nan])) == 0.25 - 1.0                   # missing_left
    for change, message in (
        ({"left": [0, -1, -1]}, r"node 0's left child 0 is not after it within its tree"),
        ({"right": [3, -1, -1]}, r"node 0's right child 3 is not after it within its tree"),
        ({"feature": [1, -1, -1]}, r"a node reads a feature >= n_features \(1\)"),
        ({"value": [0.0, 1.0]}, r"value has 2 nodes, feature has 3"),
        ({"roots": [0, 0]}, r"roots must start at 0 and increase"),
        ({"roots": []}, r"no trees"),
        ({"threshold": [np.nan, 0.0, 0.0]}, r"a split threshold is NaN"),
        ({"value": [0.0, np.inf, 1.0]}, r"a leaf value is not finite"),
        ({"baseline": np.nan}, r"baseline must be finite"),
        ({"n_features": 0}, r"n_features must be >= 1"),
        ({"feature": [0, -2, -1]}, r"feature holds -2..0, outside -1"),
    ):
        with pytest.raises(ValueError, match=message):
            TreeEnsemble(**{**ok, **change})
    with pytest.raises(TypeError, match=r"threshold must be a 1-D float array"):
        TreeEnsemble(**{**ok, "threshold": ["a", "b", "c"]})
    with pytest.raises(ValueError, match=r"expected 1 features, got 2"):
        ens.raw_score(np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="dtype mismatch"):
        ens.raw_score(np.array([1], dtype=np.int64))
    with pytest.raises(ValueError, match="not built"):
        TreeEnsemble.__new__(TreeEnsemble).raw_score(np.array([0.5]))


def test_strided_and_read_only_rows_score_the_same(dataset):
    model = _calibrated(dataset, "hgb", "sigmoid")
    ens = TreeEnsemble.from_estimator(model.calibrated_classifiers_[0].estimator)
    rows = np.asfortranarray(dataset.X[:200])       # each row a strided view
    frozen = dataset.X[:200].copy()
    frozen.flags.writeable = False
    expected = [ens.raw_score(np.ascontiguousarray(r)) for r in rows]
    assert [ens.raw_score(r) for r in rows] == expected == [ens.raw_score(r) for r in frozen]


@pytest.mark.parametrize("kind", ["hgb", "gb"])
def test_pickling_and_model_files_keep_the_fast_path(tmp_path, dataset, kind):
    model = _calibrated(dataset, kind, "sigmoid")
    ens = TreeEnsemble.from_estimator(model.calibrated_classifiers_[0].estimator)
    again = pickle.loads(pickle.dumps(ens))
    assert repr(again) == repr(ens) and again.float32_input == ens.float32_input and again.baseline == ens.baseline
    assert all(np.array_equal(again.arrays[k], v) for k, v in ens.arrays.items())
    joblib.dump(ens, tmp_path / "ens.joblib")
    from_file = joblib.load(tmp_path / "ens.joblib")
    X = dataset.X[::25]
    assert [again.raw_score(x) for x in X] == [ens.raw_score(x) for x in X] == [from_file.raw_score(x) for x in X]
    fast = calibrated_trees_predictor(model)
    sha = save_model(tmp_path / "m.joblib", model, dataset.spec, {})
    loaded = load_model(tmp_path / "m.joblib", sha)
    got = np.array([loaded.predict_up(x) for x in X])
    assert np.array_equal(got, [fast(x) for x in X])
    assert np.max(np.abs(got - model.predict_proba(X)[:, 1])) <= 1e-12
    assert loaded.predict_up(X[0].reshape(1, -1)) == got[0]          # a (1, n) row as predict_proba takes it
