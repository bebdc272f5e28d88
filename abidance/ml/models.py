"""scikit-learn signal models: calibrated p(up), judged only out of sample, hashed on disk.

    result = train_model(dataset, "logistic", seed=0)    # or "hgb", "gb"
    result.oos            # AUC, log loss, Brier, hit rate at min_confidence: purged test folds only
    sha = save_model("eth.joblib", result.model, dataset.spec, result.meta())
    loaded = load_model("eth.joblib", sha)                # refuses a file whose hash differs
    p_up = loaded.predict_up(feature_vector)

Every model is wrapped in CalibratedClassifierCV whose calibration folds are purged
splits of its own training rows, so its probability can be a signal's confidence.
Out-of-sample metrics come from purged k-fold: each row is predicted by a model that
never trained on it, on an overlapping label window, or inside the embargo after it.
The final model is then trained on every row. Seeds are fixed: same data, same model.

A model file is a pickle (joblib): loading one runs code. `load_model` hashes the bytes
and compares them with the expected sha256 BEFORE unpickling, and unpickles those very
bytes (no second read of the file); `save_model` writes atomically (abidance.ml.artifacts).
"""

from __future__ import annotations

import logging
import math
import platform
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from abidance._core.trees import TreeEnsemble
from abidance.ml import artifacts
from abidance.ml.features import FeatureSpec
from abidance.ml.splits import PurgedKFold

log = logging.getLogger("abidance.ml")

MODEL_FORMAT = "abidance.ml.model/1"
KINDS = ("logistic", "hgb", "gb")
CALIBRATIONS = ("sigmoid", "isotonic")


class ModelFileError(artifacts.ArtifactError):
    """A model file that is missing, altered or not a model of this format."""


# ---- estimators ------------------------------------------------------------------------------


def make_estimator(kind: str = "logistic", seed: int = 0, **params):
    """An uncalibrated classifier: logistic regression on standardised features, or
    gradient boosting (histogram-based "hgb", classic "gb"); small, regularised defaults."""
    # Lazy: scikit-learn is the ml extra: only training or running a model needs it.
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(**{"C": 1.0, "max_iter": 1000, **params}))
    if kind == "hgb":
        defaults = {"max_iter": 100, "learning_rate": 0.05, "max_depth": 3, "min_samples_leaf": 50,
                    "l2_regularization": 1.0, "early_stopping": False}
        return HistGradientBoostingClassifier(**{**defaults, **params, "random_state": seed})
    if kind == "gb":
        defaults = {"n_estimators": 100, "learning_rate": 0.05, "max_depth": 2, "subsample": 0.8}
        return GradientBoostingClassifier(**{**defaults, **params, "random_state": seed})
    raise ValueError(f"model kind must be one of {', '.join(KINDS)}, got {kind!r}")


def make_calibrated(kind: str, start: np.ndarray, end: np.ndarray, *, seed: int = 0, method: str = "sigmoid",
                    splits: int = 3, embargo=0, params: dict | None = None):
    """CalibratedClassifierCV over purged folds of the rows it will be fitted on (spans start/end)."""
    # Lazy: scikit-learn is the ml extra: only training or running a model needs it.
    from sklearn.calibration import CalibratedClassifierCV

    if method not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {', '.join(CALIBRATIONS)}, got {method!r}")
    folds = list(PurgedKFold(splits, embargo).split(start, end))
    for i, (train, _test) in enumerate(folds):
        if len(train) == 0:
            raise ValueError(f"calibration fold {i} has no training rows left after purging "
                             f"({len(start)} rows, embargo {embargo}): use fewer splits or more data")
    return CalibratedClassifierCV(make_estimator(kind, seed, **(params or {})), method=method, cv=folds)


# ---- metrics ---------------------------------------------------------------------------------


def classification_metrics(y, p, min_confidence: float = 0.55) -> dict:
    """AUC, log loss, Brier score, and the hit rate of the calls confident enough to act on:
    p >= min_confidence says up, p <= 1 - min_confidence says down."""
    # Lazy: scikit-learn is the ml extra: only training or running a model needs it.
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    both = len(np.unique(y)) == 2
    acted = (p >= min_confidence) | (p <= 1.0 - min_confidence)
    right = np.where(p >= min_confidence, y == 1, y == 0)[acted]
    return {
        "n": int(len(y)),
        "base_rate": float(y.mean()) if len(y) else None,
        "auc": float(roc_auc_score(y, p)) if both else None,
        "log_loss": float(log_loss(y, p, labels=[0, 1])) if len(y) else None,
        "brier": float(brier_score_loss(y, p, pos_label=1)) if len(y) else None,
        "min_confidence": float(min_confidence),
        "coverage": float(acted.mean()) if len(y) else None,
        "hit_rate": float(right.mean()) if len(right) else None,
        "n_acted": int(acted.sum()),
    }


# ---- training --------------------------------------------------------------------------------


@dataclass
class TrainResult:
    model: object                   # fitted CalibratedClassifierCV, trained on every row
    kind: str
    params: dict
    oos: dict                       # pooled over the purged test folds
    folds: list                     # per fold: metrics and row counts
    in_sample: dict                 # the final model on its own training rows (for comparison only)
    oos_proba: np.ndarray           # out-of-sample p(up) of every dataset row
    dataset_meta: dict = field(default_factory=dict)

    def meta(self) -> dict:
        """What save_model / the registry keep about this model."""
        return {"kind": self.kind, "params": self.params, "oos": self.oos, "folds": self.folds,
                "in_sample": self.in_sample, "data": self.dataset_meta}


def out_of_sample_proba(fit_predict, X, y, splits) -> tuple[np.ndarray, list]:
    """p(up) of each test row from a model fitted on that fold's training rows only.
    `fit_predict(train_rows, test_rows) -> p`; returns (p with NaN for never-tested rows, folds)."""
    p = np.full(len(y), np.nan)
    folds = []
    for train, test in splits:
        if len(train) == 0 or len(np.unique(y[train])) < 2:
            raise ValueError(f"a training fold ({len(train)} rows) lacks one of the classes: "
                             "use fewer folds, a smaller embargo or more data")
        p[test] = fit_predict(train, test)
        folds.append((train, test))
    return p, folds


def train_model(dataset, kind: str = "logistic", *, seed: int = 0, n_splits: int = 5, embargo=None,
                calibration: str = "sigmoid", calibration_splits: int = 3, min_confidence: float = 0.55,
                params: dict | None = None, threads: int | None = 1) -> TrainResult:
    """Fit a calibrated model on `dataset` (abidance.ml.dataset.Dataset); metrics out of sample.

    embargo: bars after each test window kept out of training; default the longest label span.
    threads: BLAS/OpenMP threads while training (None: the libraries' default). One by
    default: these models are small, and OpenMP's spinning threads on a busy machine made
    a 0.07 s boosting fit take 8 s (measured on 2 shared cores).
    """
    # Lazy: threadpoolctl comes with scikit-learn (the ml extra).
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        return _train_model(dataset, kind, seed, n_splits, embargo, calibration, calibration_splits,
                            min_confidence, params)


def _whole(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"train_model: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _train_model(dataset, kind, seed, n_splits, embargo, calibration, calibration_splits, min_confidence,
                 params) -> TrainResult:
    if kind not in KINDS:
        raise ValueError(f"model kind must be one of {', '.join(KINDS)}, got {kind!r}")
    n_splits = _whole("n_splits", n_splits, 2)
    calibration_splits = _whole("calibration_splits", calibration_splits, 2)
    if isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float, np.number)) \
            or not 0.5 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be within [0.5, 1], got {min_confidence!r}")
    X, y = dataset.X, dataset.y
    start, end = dataset.index, dataset.label_end
    if len(y) < 10 * n_splits:
        raise ValueError(f"train_model: {len(y)} rows are too few for {n_splits} folds")
    if embargo is None:
        embargo = int((end - start).max())
    params = dict(params or {})

    def fit(rows):
        model = make_calibrated(kind, start[rows], end[rows], seed=seed, method=calibration,
                                splits=calibration_splits, embargo=embargo, params=params)
        return model.fit(X[rows], y[rows])

    def fit_predict(train, test):
        return fit(train).predict_proba(X[test])[:, 1]

    splits = PurgedKFold(n_splits, embargo).split(start, end)
    oos_p, used = out_of_sample_proba(fit_predict, X, y, splits)
    folds = []
    for train, test in used:
        m = classification_metrics(y[test], oos_p[test], min_confidence)
        m.update(train_rows=int(len(train)), test_rows=int(len(test)),
                 dropped_rows=int(len(y) - len(train) - len(test)))
        folds.append(m)
    oos = classification_metrics(y, oos_p, min_confidence)
    final = fit(np.arange(len(y)))
    in_sample = classification_metrics(y, final.predict_proba(X)[:, 1], min_confidence)
    meta = dataset.meta() if hasattr(dataset, "meta") else {}
    full_params = {"seed": seed, "n_splits": n_splits, "embargo": embargo, "calibration": calibration,
                   "calibration_splits": calibration_splits, "estimator": params}
    return TrainResult(final, kind, full_params, oos, folds, in_sample, oos_p, meta)


# ---- files -----------------------------------------------------------------------------------


def _versions() -> dict:
    # Lazy: scikit-learn is the ml extra: only training or running a model needs it.
    import sklearn

    return {"sklearn": sklearn.__version__, "numpy": np.__version__, "python": platform.python_version()}


def save_model(path, model, spec: FeatureSpec, meta: dict | None = None) -> str:
    """Write the model with its feature spec and metadata (joblib, atomically); returns the file's sha256."""
    if not hasattr(model, "predict_proba"):
        raise ValueError(f"save_model: {type(model).__name__} has no predict_proba")
    artifact = {"format": MODEL_FORMAT, "model": model, "features": spec.to_dict(),
                "feature_names": list(spec.names), "meta": dict(meta or {}), "versions": _versions()}
    return artifacts.dump_joblib(path, artifact)


@dataclass
class LoadedModel:
    model: object
    spec: FeatureSpec
    meta: dict
    sha256: str
    versions: dict
    path: str = ""

    def __post_init__(self):
        self._fast = fast_predictor(self.model)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.spec.names

    def predict_up(self, x: np.ndarray) -> float:
        """Calibrated p(up) of one feature vector."""
        if self._fast is not None:
            return self._fast(x)
        with _one_thread():
            return float(self.model.predict_proba(np.asarray(x, dtype=np.float64).reshape(1, -1))[0, 1])


_CONTROLLER = None


def _one_thread():
    # One row gains nothing from threads; OpenMP's wake-up made single-row boosting
    # predictions take up to 250 ms at p99 on a busy machine (2 ms with one thread).
    global _CONTROLLER
    if _CONTROLLER is None:
        # Lazy: threadpoolctl comes with scikit-learn (the ml extra).
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1)


def load_model(path, expected_sha256: str | None = None) -> LoadedModel:
    """Read a model file; with `expected_sha256`, refuse it unless its bytes hash to that."""
    path = Path(path)
    artifact, actual = artifacts.load_joblib(path, expected_sha256, error=ModelFileError)
    if not isinstance(artifact, dict) or artifact.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"model file {path} is not an {MODEL_FORMAT} artifact")
    try:
        spec = FeatureSpec.from_dict(artifact["features"])
    except (KeyError, ValueError) as exc:
        raise ModelFileError(f"model file {path} has a bad feature spec: {exc}") from None
    if tuple(artifact.get("feature_names", ())) != spec.names:
        raise ModelFileError(f"model file {path}: its feature names do not match its feature spec")
    model = artifact.get("model")
    classes = getattr(model, "classes_", None)
    if not hasattr(model, "predict_proba") or classes is None or list(classes) != [0, 1]:
        raise ModelFileError(f"model file {path}: the model is not a fitted binary classifier with classes [0, 1]")
    versions = artifact.get("versions", {})
    if versions.get("sklearn") != _versions()["sklearn"]:
        log.warning("model file %s was written with scikit-learn %s, running %s", path,
                    versions.get("sklearn"), _versions()["sklearn"])
    return LoadedModel(model, spec, artifact.get("meta", {}), actual, versions, str(path))


# ---- fast path for the live node -------------------------------------------------------------


def fast_predictor(model):
    """p(up) of one feature vector without predict_proba's per-call cost, or None when only
    predict_proba can serve `model`: the logistic path, else the compiled trees."""
    return linear_sigmoid_predictor(model) or calibrated_trees_predictor(model)


def linear_sigmoid_predictor(model):
    """For a sigmoid-calibrated logistic pipeline: p(up) in numpy, ~50x faster than
    predict_proba's per-call validation (~1 ms for one row). None for any other model
    (then predict_proba is used). Same arithmetic up to summation order (|diff| < 1e-12,
    checked in tests/unit/ml/test_models.py)."""
    # Lazy: scikit-learn is the ml extra: only training or running a model needs it.
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if not isinstance(model, CalibratedClassifierCV) or model.method != "sigmoid":
        return None
    rows = []
    for cc in getattr(model, "calibrated_classifiers_", ()):
        est = cc.estimator
        if not (isinstance(est, Pipeline) and len(est.steps) == 2 and len(cc.calibrators) == 1):
            return None
        scaler, lr = est.steps[0][1], est.steps[1][1]
        if not (isinstance(scaler, StandardScaler) and isinstance(lr, LogisticRegression)
                and lr.coef_.shape[0] == 1 and scaler.with_mean and scaler.with_std):
            return None
        cal = cc.calibrators[0]
        rows.append((scaler.mean_, scaler.scale_, lr.coef_[0], lr.intercept_[0], cal.a_, cal.b_))
    if not rows:
        return None
    mean, scale, coef = (np.array([r[i] for r in rows], dtype=np.float64) for i in range(3))
    intercept, a, b = (np.array([float(r[i]) for r in rows]) for i in range(3, 6))
    k = float(len(rows))

    def predict_up(x) -> float:
        z = (((x - mean) / scale) * coef).sum(axis=1) + intercept
        p = float((1.0 / (1.0 + np.exp(a * z + b))).sum() / k)
        return min(p, 1.0)      # a probability, whatever the float rounding of the folds' average

    return predict_up


def calibrated_trees_predictor(model):
    """For a sigmoid- or isotonic-calibrated HistGradientBoosting ("hgb") or GradientBoosting
    ("gb") model: p(up) from compiled trees (abidance._core.trees.TreeEnsemble, about 1 us per
    calibration fold) and each fold's calibrator in Python floats, the operations of
    predict_proba in its order, so the same bits (checked on real candles in
    tests/unit/ml/test_trees.py). None for any other model; a tree model the compiled trees
    cannot reproduce (categorical features, a custom init) is logged and left to predict_proba."""
    # Lazy: scikit-learn is the ml extra: only training or running a model needs it.
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier


    if not isinstance(model, CalibratedClassifierCV) or model.method not in CALIBRATIONS:
        return None
    folds = []
    for cc in getattr(model, "calibrated_classifiers_", ()):
        if not isinstance(cc.estimator, (HistGradientBoostingClassifier, GradientBoostingClassifier)) \
                or len(cc.calibrators) != 1:
            return None
        calibrate = _sigmoid(cc.calibrators[0]) if model.method == "sigmoid" else _isotonic(cc.calibrators[0])
        if calibrate is None:
            return None
        try:
            trees = TreeEnsemble.from_estimator(cc.estimator)
        except ValueError as exc:
            log.warning("compiled trees cannot serve this model, predict_proba will: %s", exc)
            return None
        folds.append((trees.raw_score, calibrate))
    if not folds:
        return None
    k = float(len(folds))

    def predict_up(x) -> float:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 1:
            x = x.reshape(-1)
        total = 0.0
        for raw_score, calibrate in folds:
            p = calibrate(raw_score(x))
            if 1.0 < p <= 1.0 + 1e-5:       # predict_proba's own clip of rounding just above 1
                p = 1.0
            total += p
        return total / k

    return predict_up


def _sigmoid(calibrator):
    """scikit-learn's expit(-(a z + b)): scipy computes it as 1 / (1 + exp(a z + b)) with libm's
    exp, which math.exp is."""
    a, b = getattr(calibrator, "a_", None), getattr(calibrator, "b_", None)
    if a is None or b is None:
        return None
    a, b = float(a), float(b)

    def calibrate(z: float) -> float:
        try:
            return 1.0 / (1.0 + math.exp(a * z + b))
        except OverflowError:       # exp beyond the float range: scipy's 1 / inf
            return 0.0

    return calibrate


def _isotonic(calibrator):
    """IsotonicRegression(out_of_bounds="clip").predict: the score clipped to the fitted range,
    then np.interp over the thresholds (scipy's interp1d delegates to it), step for step."""
    xs, ys = getattr(calibrator, "X_thresholds_", None), getattr(calibrator, "y_thresholds_", None)
    if xs is None or ys is None or getattr(calibrator, "out_of_bounds", None) != "clip" \
            or xs.dtype != np.float64 or ys.dtype != np.float64 or len(xs) != len(ys) or len(xs) == 0:
        return None
    xs, ys = xs.tolist(), ys.tolist()
    lo, hi, last = float(calibrator.X_min_), float(calibrator.X_max_), len(xs) - 1
    if last == 0:
        return lambda z: ys[0]      # one threshold: a constant, as IsotonicRegression predicts

    def calibrate(z: float) -> float:
        z = min(max(z, lo), hi)
        j = bisect_right(xs, z) - 1         # xs[j] <= z < xs[j + 1], as numpy's binary search
        if j < 0:
            return ys[0]
        if j >= last:
            return ys[last]
        if xs[j] == z:
            return ys[j]
        slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j])
        return slope * (z - xs[j]) + ys[j]

    return calibrate
