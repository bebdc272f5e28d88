"""Train a signal model and judge it out of sample: the work behind `abidance train signal`.

    run = train_signal(bars, instrument, "models/eth-lr.joblib", kind="logistic", labeler=ForwardReturn(12))
    run.holdout_metrics     # AUC, hit rate... of the held-out tail (never trained on)
    run.comparison.table    # the model vs buy-and-hold vs ema_cross, backtested on that tail
    register_run(registry, "eth-lr", run, ml)      # a candidate with all of it, in the store

1. The dataset (abidance.ml.dataset, the node's own features) from the Bars, prices in ticks x
   tick size as the strategy sees them.
2. The last `holdout_fraction` of the bars is held out. Training rows are those whose label
   ends before it (purged: no training label reads a held-out price).
3. train_model on the training rows: purged k-fold metrics, then the final model on every row.
4. Held out: the model's classification metrics on the held-out rows, permutation feature
   importances there (drop in AUC when a feature is shuffled), and a learning curve (the model
   refitted on the most recent 1/k, 2/k... of the training rows, scored in sample and held out).
5. The model file is saved (sha256) and backtested on the held-out bars beside buy-and-hold and
   the rule strategy (abidance.ml.oos_backtest).
`charts()` is what the HTML report and the dashboard draw; `register_run` keeps it in the
registry with the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from abidance.ml.dataset import build_dataset
from abidance.ml.drift import reference_histograms
from abidance.ml.features import FeatureSpec
from abidance.ml.labels import ForwardReturn
from abidance.ml.models import classification_metrics, make_calibrated, save_model, train_model
from abidance.ml.oos_backtest import Comparison, JudgeSettings, compare_on_backtester

STAGES = ("dataset", "cross-validation", "held-out metrics", "learning curve", "feature importances",
          "backtest: model and rule")


@dataclass
class SignalRun:
    """Everything one training run produced (JSON-ready where it goes to the registry)."""

    result: object                        # abidance.ml.models.TrainResult (the model, CV metrics, folds)
    train: object                         # Dataset rows trained on
    test: object                          # Dataset rows held out
    holdout: dict                         # the held-out window: start/end ns, rows, cut bar, bars
    holdout_metrics: dict                 # classification metrics on the held-out rows
    importances: dict | None              # permutation importances on the held-out rows
    learning_curve: dict
    comparison: Comparison
    model_path: str
    sha256: str
    min_confidence: float
    horizon: int                          # ml_signal's exit after this many bars in the backtest
    labels: dict = field(default_factory=dict)
    train_end_ns: int = 0                 # open time of the last bar a training label reads

    def charts(self) -> dict:
        """The data behind the report's and the dashboard's charts (abidance.ml.train_report)."""
        folds = self.result.folds
        return {"cv_folds": {"fold": list(range(1, len(folds) + 1)), "auc": [f.get("auc") for f in folds],
                             "hit_rate": [f.get("hit_rate") for f in folds],
                             "log_loss": [f.get("log_loss") for f in folds],
                             "test_rows": [f.get("test_rows") for f in folds]},
                "learning_curve": self.learning_curve,
                "importances": self.importances,
                "equity": self.comparison.chart_data()}

    def out_of_sample(self) -> dict:
        """The registry's out-of-sample metrics: held-out rows at the top level (as retrain keeps
        them), the purged CV metrics under "cv", the held-out backtest under "backtest"."""
        return {**self.holdout_metrics, "cv": self.result.oos, "cv_folds": self.result.folds,
                "holdout": self.holdout, "backtest": {**self.comparison.table, "bars": self.comparison.bars,
                                                      "settings": self.comparison.settings.to_dict()},
                "charts": self.charts()}

    def params(self, symbol: str, interval: str) -> dict:
        return {"kind": self.result.kind, "labels": self.labels, "symbol": symbol, "interval": interval,
                "min_confidence": self.min_confidence, "exit_horizon": self.horizon,
                "holdout_fraction": self.holdout.get("fraction"), **self.result.params}


def split_holdout(dataset, holdout_fraction: float) -> tuple[np.ndarray, np.ndarray, int]:
    """(training rows, held-out rows, first held-out bar): the last `holdout_fraction` of the bars
    held out; training rows only where the label ends before it (purged)."""
    if not (isinstance(holdout_fraction, (int, float)) and 0.05 <= holdout_fraction <= 0.5):
        raise ValueError(f"holdout fraction must be within [0.05, 0.5], got {holdout_fraction!r}")
    cut = int(dataset.bars * (1.0 - holdout_fraction))
    return np.flatnonzero(dataset.label_end < cut), np.flatnonzero(dataset.index >= cut), cut


def learning_curve(train, test, kind: str, *, points: int, seed: int, params: dict, calibration: str,
                   calibration_splits: int, embargo: int) -> dict:
    """The model refitted on the most recent k/points of the training rows (k = 1..points): AUC on
    those rows and on the held-out rows. Most recent, so every point is as close to the held-out
    window: the curve shows what more history adds."""
    # Lazy: scikit-learn is the ml extra: only training or running a model needs it.
    from sklearn.metrics import roc_auc_score


    out = {"train_rows": [], "train_auc": [], "holdout_auc": []}
    n = len(train)
    both = len(np.unique(test.y)) == 2
    for k in range(1, points + 1):
        rows = np.arange(n - max(1, n * k // points), n)
        y = train.y[rows]
        if len(np.unique(y)) < 2 or len(rows) < 10 * calibration_splits:
            continue
        try:
            model = make_calibrated(kind, train.index[rows], train.label_end[rows], seed=seed, method=calibration,
                                    splits=calibration_splits, embargo=embargo, params=params)
            model.fit(train.X[rows], y)
        except ValueError:          # too few rows for the calibration folds at this size: no point
            continue
        out["train_rows"].append(int(len(rows)))
        out["train_auc"].append(float(roc_auc_score(y, model.predict_proba(train.X[rows])[:, 1])))
        out["holdout_auc"].append(float(roc_auc_score(test.y, model.predict_proba(test.X)[:, 1])) if both else None)
    return out


def permutation_importances(model, X, y, names, *, seed: int, repeats: int = 5) -> dict | None:
    """Mean and std drop in held-out AUC when each feature is shuffled; None when the held-out
    labels have one class only (no AUC)."""
    # Lazy: scikit-learn is the ml extra: only training or running a model needs it.
    from sklearn.inspection import permutation_importance

    if len(np.unique(y)) < 2:
        return None
    pi = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=repeats, random_state=seed, n_jobs=1)
    order = np.argsort(-pi.importances_mean, kind="stable")
    return {"metric": "drop in held-out AUC when shuffled", "names": [names[i] for i in order],
            "mean": [float(pi.importances_mean[i]) for i in order],
            "std": [float(pi.importances_std[i]) for i in order]}


def train_signal(bars, instrument, model_path: str | Path, *, kind: str = "logistic", spec=None, labeler=None,
                 seed: int = 0, n_splits: int = 5, holdout_fraction: float = 0.25, min_confidence: float = 0.55,
                 horizon: int | None = None, curve_points: int = 4, judge: JudgeSettings | None = None,
                 stage: Callable[[str], None] | None = None, bar_progress=None, threads: int = 1) -> SignalRun:
    """Train on `bars` (one symbol's Bars, in order) minus the held-out tail, save the model to
    `model_path`, judge it on the tail. `horizon`: ml_signal's exit after that many bars in the
    backtest (default the label horizon; 0 = only on p(up)). `stage(name)` is called as each of
    STAGES begins, `bar_progress(done, total)` during the backtests (progress bars)."""
    # Lazy: threadpoolctl comes with scikit-learn (the ml extra).
    from threadpoolctl import threadpool_limits

    stage = stage or (lambda _name: None)
    spec = spec or FeatureSpec()
    labeler = labeler or ForwardReturn()
    bars = list(bars)
    stage("dataset")
    data = build_dataset(bars, spec, labeler, tick_size=float(instrument.filters.price_fp.increment))
    train_rows, test_rows, cut = split_holdout(data, holdout_fraction)
    if len(train_rows) < 20 * n_splits or len(test_rows) < 50:
        raise ValueError(f"{len(bars)} bars give {len(train_rows)} training and {len(test_rows)} held-out rows: "
                         f"too few (need {20 * n_splits} and 50); use more bars or another --holdout")
    train, test = data.subset(train_rows), data.subset(test_rows)
    stage("cross-validation")
    result = train_model(train, kind, seed=seed, n_splits=n_splits, min_confidence=min_confidence, threads=threads)
    with threadpool_limits(limits=threads):
        stage("held-out metrics")
        p_test = result.model.predict_proba(test.X)[:, 1]
        holdout_metrics = classification_metrics(test.y, p_test, min_confidence)
        stage("learning curve")
        p = result.params
        curve = learning_curve(train, test, kind, points=curve_points, seed=seed, params=p["estimator"],
                               calibration=p["calibration"], calibration_splits=p["calibration_splits"],
                               embargo=p["embargo"]) if curve_points > 0 else {}
        stage("feature importances")
        importances = permutation_importances(result.model, test.X, test.y, list(spec.names), seed=seed)
    sha = save_model(model_path, result.model, spec, result.meta())
    labels = labeler.to_dict() if hasattr(labeler, "to_dict") else dict(data.labels)
    horizon = int(labels.get("horizon", 0)) if horizon is None else int(horizon)
    stage("backtest: model and rule")
    held_bars = bars[cut:]
    comparison = compare_on_backtester(held_bars, instrument, str(model_path), sha, min_confidence=min_confidence,
                                       horizon=horizon, settings=judge, progress=bar_progress)
    holdout = {"fraction": float(holdout_fraction), "cut_bar": int(cut), "bars": int(data.bars),
               "rows": int(len(test_rows)), "start_ns": int(held_bars[0].open_time),
               "end_ns": int(held_bars[-1].close_time)}
    # Training ends where its labels stop reading, not at its last feature row.
    train_end_ns = int(bars[int(train.label_end.max())].open_time)
    return SignalRun(result, train, test, holdout, holdout_metrics, importances, curve, comparison, str(model_path),
                     sha, float(min_confidence), horizon, labels, train_end_ns)


def register_run(registry, name: str, run: SignalRun, *, symbol: str, interval: str, drift_window: int = 500,
                 version: int | None = None, author: str | None = None):
    """Register the run's model as a candidate (metrics, training range, params, drift reference), then
    an `oos_backtest` event with the held-out backtest. Returns the ModelVersion."""
    mv = registry.register(
        name, run.model_path, expected_sha256=run.sha256, version=version, feature_set=run.train.spec.to_dict(),
        train_start=int(run.train.times[0]), train_end=run.train_end_ns, params=run.params(symbol, interval),
        in_sample=run.result.in_sample, out_of_sample=run.out_of_sample(),
        reference=reference_histograms(run.train.X, run.train.spec.names, window=drift_window),
        reason="trained by abidance train", author=author)
    t = run.comparison.table
    registry.record_event(name, mv.version, "oos_backtest", "held-out backtest: " + ", ".join(
        f"{k} {_pct(t[k]['total_return'])}" for k in t), {"backtest": t, "holdout": run.holdout}, author)
    return mv


def _pct(v) -> str:
    return "-" if v is None else f"{v:+.2%}"
